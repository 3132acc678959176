#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Usage (root): tests/data/capture-clienthello.sh tests/data/tls-clienthello-openssl.hex
# Capture a real ClientHello from openssl s_client -servername a.blocked.test
set -eu
ns=hello-cap-$$
out=$1
cleanup() { if [ -n "${lpid:-}" ]; then kill $lpid 2>/dev/null || true; fi; if [ -n "${tpid:-}" ]; then kill $tpid 2>/dev/null || true; fi; ip netns del $ns 2>/dev/null || true; }
trap cleanup EXIT
ip netns add $ns
ip -n $ns link set lo up
ip netns exec $ns python3 -c '
import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",4433)); s.listen(1)
c,_=s.accept(); time.sleep(1); c.close()' & lpid=$!
ip netns exec $ns tcpdump -i lo -w /tmp/hello-cap.pcap -U 'tcp port 4433' 2>/dev/null & tpid=$!
sleep 1
ip netns exec $ns timeout 3 openssl s_client -connect 127.0.0.1:4433 -servername a.blocked.test </dev/null >/dev/null 2>&1 || true
sleep 1
kill $tpid; wait $tpid 2>/dev/null || true; tpid=
tshark -r /tmp/hello-cap.pcap -Y 'tcp.dstport==4433 && tcp.len>0' -T fields -e tcp.payload | tr -d ':\n' > "$out"
rm -f /tmp/hello-cap.pcap
