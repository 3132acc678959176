#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Packet surgery against scapy (python3-scapy): tests/misc/surgery-scapy.py
# builds packets, tests/helpers/surgery-apply cuts them, scapy reads them back.
set -u
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SURGERY_APPLY:?SURGERY_APPLY must point at tests/helpers/surgery-apply}"
py=
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import scapy.all' 2>/dev/null; then
		py=$p
		break
	fi
done
[ -n "$py" ] || { echo "1..0 # SKIP needs python3-scapy"; exit 0; }
exec "$py" "$SRCDIR/tests/misc/surgery-scapy.py" "$SURGERY_APPLY"
