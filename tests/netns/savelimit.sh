#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One rule limit for the file and the live chain (RULES_MAX, 10,000): a
# daemon started from a file of 9,999 long rules (many keys, long values)
# takes one more with "ipmodctl add" and refuses the next (E2BIG), and
# "ipmodctl save" of that full chain is a file "ipmodd --check-config"
# accepts and a reload reads back into the identical chain.  A file of
# 10,001 rules is refused.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd python3
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

MAX=10000
CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }
specs() { ctl rules --json | python3 -c 'import json,sys; print("\n".join(r["spec"] for r in json.load(sys.stdin)["rules"]))'; }

# rules N: N rules as long as the vocabulary makes them, none matching the
# test's traffic (IPv6 TCP between documentation prefixes no one uses),
# numbered from $2, as libconfig groups.
rules() {
	python3 - "$1" "${2:-0}" <<'PY'
import sys
n, base = int(sys.argv[1]), int(sys.argv[2])
for i in range(base, base + n):
    kv = [
        ("name", "limit-rule-with-a-long-nam%05d" % i),
        ("family", "ip6"),
        ("proto", "tcp"),
        ("src", "!2001:db8:ffff:ffff:ffff:ffff:%04x:%04x/128" % (i >> 16, i & 0xffff)),
        ("dst", "!2001:db8:eeee:eeee:eeee:eeee:eeee:%04x/127" % (i & 0xfffe)),
        ("sport", "!10000-20000"),
        ("dport", "!30000-40000"),
        ("tcp-flags", "syn,ack,fin,rst,psh,urg,ece,cwr"),
        ("ttl", "100-200"),
        ("length", "1000-1400"),
        ("dscp", "af41"),
        ("probability", "0.123456"),
        ("set-ttl", "-3"),
        ("set-dscp", "cs7"),
        ("set-ecn", "ect1"),
        ("clamp-mss", "1220"),
        ("delay", "123.456"),
        ("jitter", "45.678"),
        ("distribution", "normal"),
        ("loss", "gemodel:0.012345,0.345678"),
        ("duplicate", "0.032512"),
        ("reorder", "0.077512"),
        ("corrupt", "0.015123"),
        ("rate", "123456kbit"),
        ("limit", "99999"),
    ]
    print("\t{ " + " ".join('%s = "%s";' % p for p in kv) + " }" + ("," if i + 1 < base + n else ""))
PY
}
spec_words() { rules 1 "$1" | python3 -c 'import re,sys; print(" ".join("%s=%s" % m for m in re.findall(r"([a-z-]+) = \"([^\"]*)\";", sys.stdin.read())))'; }

write_config "$CONF.head"
{ cat "$CONF.head"; echo "rules = ("; rules 1; echo ");"; } >"$CONF"
if ! ip netns exec "$HOST_NS" "$IPMODD" --check-config -c "$CONF" >&2; then
	echo "Bail out! the long rule is not valid"
	exit 1
fi

{ cat "$CONF.head"; echo "rules = ("; rules $((MAX + 1)); echo ");"; } >"$CONF.over"
out=$(ip netns exec "$HOST_NS" "$IPMODD" --check-config -c "$CONF.over" 2>&1)
check "a file of $((MAX + 1)) rules is refused (${out##*: })" \
	grep -q "too many rules (at most $MAX)" <<<"$out"

{ cat "$CONF.head"; echo "rules = ("; rules $((MAX - 1)); echo ");"; } >"$CONF"
diag "$((MAX - 1)) rules: $(wc -c <"$CONF") bytes"
t0=$(date +%s%N)
check "ipmodd starts with $((MAX - 1)) long rules" start_ipmodd "$CONF"
diag "start: $((($(date +%s%N) - t0) / 1000000)) ms"
check "ipmodctl add: rule $MAX" ctl add $(spec_words $((MAX - 1)))
out=$(ctl add $(spec_words $MAX) 2>&1)
rc=$?
check "ipmodctl add: rule $((MAX + 1)) is refused ($out)" \
	bash -c "[ $rc -ne 0 ] && grep -q 'at most $MAX' <<<'$out'"
check_eq "... the chain holds $MAX rules" "$(specs | wc -l)" "$MAX"

specs >"$WORKDIR/live.specs"
ctl save >"$WORKDIR/saved.rules"
check_eq "ipmodctl save exits 0" "$?" 0
{ cat "$CONF.head"; cat "$WORKDIR/saved.rules"; } >"$CONF.saved"
diag "the saved file: $(wc -c <"$CONF.saved") bytes"
check "ipmodd --check-config accepts the saved chain of $MAX rules" \
	ip netns exec "$HOST_NS" "$IPMODD" --check-config -c "$CONF.saved"
cp "$CONF.saved" "$CONF"
# "ipmodctl reload" answers within its 5 s wait: the rules' held-copy heaps
# grow with what they hold (10,000 rules with limit=99999 once reserved 8 GB
# and took 12.8 s to swap in).
gen() { ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
g0=$(gen)
t0=$(date +%s%N)
check "ipmodctl reload of the saved chain succeeds" ctl reload
diag "reload of the saved chain: $((($(date +%s%N) - t0) / 1000000)) ms"
g1=$(gen)
check "the reload read it: generation $g0 -> $g1" \
	bash -c "[ -n '$g0' ] && [ -n '$g1' ] && [ '$g1' != '$g0' ]"
specs >"$WORKDIR/reloaded.specs"
check "... back into the identical chain" cmp "$WORKDIR/live.specs" "$WORKDIR/reloaded.specs"
# The daemon's memory with the full chain (a measure, not a check).
diag "ipmodd with $MAX rules: $(grep -E '^Vm(RSS|HWM)' "/proc/$IPMODD_PID/status" 2>/dev/null | tr -s ' \t' ' ' | tr '\n' ' ')"
check "ipmodd stops cleanly" stop_ipmodd

done_testing
