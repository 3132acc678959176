#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The operator's view: every command's --json output validates against
# doc/ipmodctl.schema.json with a chain holding every kind of rule (and a
# wrong type fails it); status is a summary with -a the full list; rules
# says where each rule runs and shows impairment columns only when a rule
# impairs; explain answers for both directions; -i redraws.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping timeout
# The python that has jsonschema (python3-jsonschema).
PY=""
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import jsonschema' 2>/dev/null; then
		PY=$p
		break
	fi
done
[ -n "$PY" ] || skip_all "no python3 with jsonschema (apt install python3-jsonschema)"
SCHEMA=$SRCDIR/doc/ipmodctl.schema.json
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
RULES='rules = (
	{ name = "ttl-web"; proto = "tcp"; dst = "198.18.1.0/24"; dport = 443; tcp-flags = "syn,!ack"; set-ttl = 33; clamp-mss = 1200; },
	{ name = "mark"; family = "ip"; proto = "udp"; src = "198.18.0.1"; sport = "1000-2000"; ttl = "1-255"; length = "28-1500"; dscp = "cs0"; set-dscp = "ef"; set-ecn = "ect0"; },
	{ name = "drop-8080"; proto = "tcp"; dport = 8080; verdict = "drop"; },
	{ name = "pong"; proto = "icmp"; icmp-type = "echo-request"; icmp-code = 0; dst = "198.18.1.9"; verdict = "reply"; },
	{ name = "rst"; proto = "tcp"; dport = 23; verdict = "reject"; reject-with = "tcp-reset"; },
	{ name = "unreach"; proto = "udp"; dport = 9; verdict = "reject"; },
	{ name = "flaky"; proto = "udp"; dport = 53; probability = 0.5; verdict = "drop"; },
	{ name = "slow"; proto = "icmp"; dst = "198.18.1.1"; delay = 20; jitter = 5; loss = 0.01; duplicate = 0.01; reorder = 0.01; corrupt = 0.001; rate = "10mbit"; limit = 100; },
	{ name = "v6-hl"; proto = "icmpv6"; dst = "2001:db8:1::/64"; set-ttl = "-1"; },
	{ name = "ecn"; proto = "udp"; dport = 7777; loss = 0.5; loss-ecn = true; loss-corr = 0.2; slot = "1,2"; seed = 7; expire = "1h"; },
	{ name = "link"; proto = "udp"; dport = 7778; rate = "@'"$(cd "$SRCDIR" && pwd)"'/etc/examples/traces/steady-12mbit.trace"; queue = 50; aqm = "codel"; distribution = "pareto"; delay = 5; jitter = 1; }
);'
write_config "$CONF" "$RULES"
start_ipmodd "$CONF" || { echo "Bail out! ipmodd did not start"; exit 1; }
ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }

# validate DEF [--lines] < JSON: against $defs/DEF of the schema; prints why not.
VALIDATE_PY='import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
s = {k: v for k, v in schema.items() if k != "oneOf"}
s["$ref"] = "#/$defs/" + sys.argv[2]
v = jsonschema.Draft202012Validator(s)
text = sys.stdin.read()
lines = "--lines" in sys.argv
docs = [json.loads(l) for l in text.splitlines() if l.strip()] if lines else [json.loads(text)]
if not docs:
    print("no JSON at all"); sys.exit(1)
bad = 0
for d in docs:
    for e in v.iter_errors(d):
        print("%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)); bad += 1
sys.exit(1 if bad else 0)'
validate() {
	"$PY" -c "$VALIDATE_PY" "$SCHEMA" "$@"
}
export -f validate
export PY SCHEMA VALIDATE_PY
check_valid() {
	local what=$1 def=$2 out
	shift 2
	if out=$(validate "$def" "$@" 2>&1 <"$WORKDIR/out.json"); then
		ok "$what validates against the schema ($def)"
	else
		not_ok "$what validates against the schema ($def)"
		diag "$out" "$(head -c 600 "$WORKDIR/out.json")"
	fi
}

# Some traffic through the rules, with a trace and a capture watching.
# ip netns exec execs ipmodctl: $! is ipmodctl itself.
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" --json trace >"$WORKDIR/trace.json" 2>"$WORKDIR/trace.err" &
TRACE_PID=$!
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" --json capture -c 4 -w "$WORKDIR/cap.pcapng" \
	2>"$WORKDIR/capture.json" &
CAP_PID=$!
sleep 0.5
hx ping -c 3 -i 0.2 -W 1 198.18.1.9 >/dev/null 2>&1
hx ping -c 3 -i 0.2 -W 1 198.18.1.1 >/dev/null 2>&1
hx ping -6 -c 2 -i 0.2 -W 1 2001:db8:1::1 >/dev/null 2>&1
hx bash -c 'echo x >/dev/udp/198.18.1.1/9; echo x >/dev/udp/198.18.1.1/53' 2>/dev/null
sleep 0.3
kill -INT "$TRACE_PID" 2>/dev/null
wait "$TRACE_PID" 2>/dev/null
timeout 5 tail --pid="$CAP_PID" -f /dev/null
kill -INT "$CAP_PID" 2>/dev/null
wait "$CAP_PID" 2>/dev/null

cp "$WORKDIR/trace.json" "$WORKDIR/out.json"
check "trace --json printed packets ($(wc -l <"$WORKDIR/trace.json"))" test -s "$WORKDIR/trace.json"
check_valid "trace --json, every line" trace --lines
check "a trace line of the impairing rule has delay as an array of numbers" \
	"$PY" -c 'import json, sys
ls = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if any(isinstance(l.get("delay"), list) and all(isinstance(x, (int, float)) for x in l["delay"]) for l in ls) else 1)' "$WORKDIR/trace.json"
cp "$WORKDIR/capture.json" "$WORKDIR/out.json"
check_valid "capture --json summary" capture

ctl status --json >"$WORKDIR/out.json"
check_valid "status --json" status
cp "$WORKDIR/out.json" "$WORKDIR/status.json"
check_eq "status --json: modified is a boolean" "$("$PY" -c 'import json,sys; print(type(json.load(open(sys.argv[1]))["modified"]).__name__)' "$WORKDIR/status.json")" bool
check_eq "status --json: families is an array" "$(json_field families <"$WORKDIR/status.json")" "ipv4,ipv6"
ctl status -a --json >"$WORKDIR/out.json"
check_valid "status -a --json" status
ctl rules --json >"$WORKDIR/out.json"
check_valid "rules --json" rules
cp "$WORKDIR/out.json" "$WORKDIR/rules.json"
check_eq "rules --json: a rule has match and actions objects beside its spec" \
	"$("$PY" -c 'import json,sys
r = [r for r in json.load(open(sys.argv[1]))["rules"] if r["name"] == "ttl-web"][0]
print(r["match"]["dport"], r["match"]["tcp-flags"], r["actions"]["set-ttl"], r["actions"]["clamp-mss"])' "$WORKDIR/rules.json")" \
	"443 syn,!ack 33 1200"
WHERE=$("$PY" -c 'import json,sys
print(" ".join("%s:%s" % (r["name"], r.get("where-reason", r["where"])) for r in json.load(open(sys.argv[1]))["rules"]))' "$WORKDIR/rules.json")
if [ "$(json_field fastpath <"$WORKDIR/status.json")" = on ]; then
	check_eq "rules --json: where each rule runs, or why not in the kernel" "$WHERE" \
		"ttl-web:clamp-mss mark:kernel drop-8080:kernel pong:verdict=reply rst:verdict=reject unreach:verdict=reject flaky:probability slow:impairs v6-hl:kernel ecn:impairs link:impairs"
else
	diag "no fast path here ($(json_field fastpath-reason <"$WORKDIR/status.json")): every rule runs in the daemon"
	check_eq "rules --json: where each rule runs, or why not in the kernel" "$WHERE" \
		"ttl-web:clamp-mss mark:fast path unavailable drop-8080:fast path unavailable pong:verdict=reply rst:verdict=reject unreach:verdict=reject flaky:probability slow:impairs v6-hl:fast path unavailable ecn:impairs link:impairs"
fi

for words in "proto=tcp dst=198.18.1.7 dport=443 flags=syn" \
	     "proto=udp dst=198.18.1.7 dport=53" \
	     "proto=icmp dst=198.18.1.9" \
	     "proto=icmp dst=198.18.1.1 len=1000" \
	     "proto=udp src=198.18.0.1 dst=198.18.1.7 sport=1500 dport=7 ttl=9" \
	     "proto=icmpv6 dst=2001:db8:1::5 icmp-type=echo-request" \
	     "proto=47 dst=198.18.1.7"; do
	ctl explain $words --json >"$WORKDIR/out.json"
	check_valid "explain $words --json" explain
done
ctl explain proto=udp dst=198.18.1.7 dport=53 --json >"$WORKDIR/out.json"
check_eq "explain: a probability rule says its probability" \
	"$("$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); print(d["rules"][0]["name"], d["rules"][0]["probability"], d["result"], d["where"])' "$WORKDIR/out.json")" \
	"flaky 0.5 accept daemon"
ctl explain proto=icmp dst=198.18.1.9 --json >"$WORKDIR/out.json"
check_eq "explain: the echo request to pong is answered" \
	"$("$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); print([r["name"] for r in d["rules"]], d["result"])' "$WORKDIR/out.json")" \
	"['pong'] reply"
ctl explain proto=tcp dst=198.18.1.7 dport=8080 --json >"$WORKDIR/out.json"
check_eq "explain: drop-8080 drops, in the kernel when the fast path is on" \
	"$("$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); print(d["result"], d["where"])' "$WORKDIR/out.json")" \
	"drop $([ "$(json_field fastpath <"$WORKDIR/status.json")" = on ] && echo kernel || echo daemon)"
out=$(ctl explain proto=tcp dst=198.18.1.7 dport=443 flags=syn 2>&1)
check "explain (text) names the rule, the verdict and the path" \
	bash -c 'grep -q "ttl-web" <<<"$1" && grep -q "^verdict: accept" <<<"$1" && grep -q "^handled by: daemon (rule ttl-web: clamp-mss)" <<<"$1"' _ "$out"
out=$(ctl explain proto=tcp dst=198.18.1.7 dport=443 direction=in 2>&1)
check_eq "explain direction=in answers (exit 0)" "$?" 0
check "... for an inbound packet, which no outbound rule matches" \
	bash -c 'grep -q "^packet: .* direction=in" <<<"$1" && ! grep -q "ttl-web" <<<"$1" && grep -q "^verdict: accept" <<<"$1"' _ "$out"
ctl explain proto=tcp dst=198.18.1.7 dport=443 direction=in --json >"$WORKDIR/out.json"
check_valid "explain direction=in --json" explain
out=$(ctl explain proto=tcp dst=198.18.1.7 direction=both 2>&1)
check "explain direction=both is refused: a packet goes one way" grep -q "expected out or in" <<<"$out"
out=$(ctl explain proto=tcp dst=198.18.1.0/24 2>&1)
check "explain refuses a prefix for an address" grep -q "not prefixes" <<<"$out"
out=$(ctl explain proto=tcp dst=198.18.1.7 verdict=drop 2>&1)
check "explain refuses a key that is no packet field" grep -q "not a packet field" <<<"$out"

ctl version --json >"$WORKDIR/out.json"
check_valid "version --json" version
# The changes below, as monitor --json sees them.
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" --json monitor >"$WORKDIR/monitor.json" 2>&1 &
MON_PID=$!
for i in $(seq 50); do [ "$(status_field streams)" = 1 ] && break; sleep 0.1; done
ctl add --json name=extra proto=udp dport=4444 verdict=drop >"$WORKDIR/out.json"
check_valid "add --json" change
ctl replace --json extra proto=udp dport=4445 verdict=drop >"$WORKDIR/out.json"
check_valid "replace --json" change
ctl del --json extra >"$WORKDIR/out.json"
check_valid "del --json" change
ctl reset --json >"$WORKDIR/out.json"
check_valid "reset --json" change
ctl reload --json >"$WORKDIR/out.json"
check_valid "reload --json" change
ctl add bad=1 >/dev/null 2>&1
sleep 0.3
kill -INT "$MON_PID" 2>/dev/null
wait "$MON_PID" 2>/dev/null
cp "$WORKDIR/monitor.json" "$WORKDIR/out.json"
check "monitor --json saw the 5 changes and the refused one ($(wc -l <"$WORKDIR/monitor.json") lines)" \
	test "$(wc -l <"$WORKDIR/monitor.json")" -ge 6
check_valid "monitor --json, every line" monitor --lines
out=$(ctl metrics --json 2>&1)
check_eq "metrics --json is refused (exit 2)" "$?" 2
out=$(ctl save --json 2>&1)
check_eq "save --json is refused (exit 2)" "$?" 2
check "... with a clear error" grep -q -- "--json is not available" <<<"$out"

# The schema is no rubber stamp: a wrong type fails it.
"$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); d["modified"] = 0; print(json.dumps(d))' \
	"$WORKDIR/status.json" >"$WORKDIR/out.json"
check "status with modified as 0 fails the schema" bash -c '! validate status <"$1/out.json" >/dev/null' _ "$WORKDIR"
"$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); d["rx-packets"] = str(d["rx-packets"]); print(json.dumps(d))' \
	"$WORKDIR/status.json" >"$WORKDIR/out.json"
check "status with a counter as a string fails the schema" bash -c '! validate status <"$1/out.json" >/dev/null' _ "$WORKDIR"
"$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); d["families"] = "ipv4,ipv6"; print(json.dumps(d))' \
	"$WORKDIR/status.json" >"$WORKDIR/out.json"
check "status with families as a comma string fails the schema" bash -c '! validate status <"$1/out.json" >/dev/null' _ "$WORKDIR"
"$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); d["rules"][0]["packets"] = "7"; print(json.dumps(d))' \
	"$WORKDIR/rules.json" >"$WORKDIR/out.json"
check "rules with packets as a string fails the schema" bash -c '! validate rules <"$1/out.json" >/dev/null' _ "$WORKDIR"
"$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); d["rules"][0]["where"] = "gpu"; print(json.dumps(d))' \
	"$WORKDIR/rules.json" >"$WORKDIR/out.json"
check "rules with where=gpu fails the schema" bash -c '! validate rules <"$1/out.json" >/dev/null' _ "$WORKDIR"

# --- text -------------------------------------------------------------------
out=$(ctl status)
lines=$(wc -l <<<"$out")
check "status is a summary of at most 12 lines ($lines)" test "$lines" -le 12
check "... with the daemon's path counters and the rules in the kernel" \
	bash -c 'grep -q "diverted: kernel [0-9]* packets, daemon [0-9]* packets" <<<"$1" && grep -q "^  rules: 11" <<<"$1"' _ "$out"
check "... without the zero counters" bash -c '! grep -q "malformed" <<<"$1"' _ "$out"
out=$(ctl status -a)
check "status -a is the full list" bash -c 'grep -q "malformed-truncated:" <<<"$1" && grep -q "rx-packets:" <<<"$1"' _ "$out"
out=$(ctl status -h)
check "status -h answers" grep -q "diverted:" <<<"$out"
out=$(ctl rules)
check "rules has a where column" bash -c 'grep -q "^index .* where  *spec$" <<<"$1" && grep -q "daemon (impairs)" <<<"$1"' _ "$out"
check "... and impairment columns while a rule impairs" bash -c 'grep -q "delayed" <<<"$1"' _ "$out"
check "... with values only on the rule that impairs" \
	bash -c 'grep " drop-8080 " <<<"$1" | grep -qv "  0  *0  *0  *0  *0  *0  "' _ "$out"
check "rules --json: expires-in-ms of the expiring rule is a number" "$PY" -c 'import json, sys
r = [r for r in json.load(open(sys.argv[1]))["rules"] if r["name"] == "ecn"][0]
sys.exit(0 if isinstance(r["expires-in-ms"], int) and 0 < r["expires-in-ms"] <= 3600000 and isinstance(r["ce-marked"], int) else 1)' "$WORKDIR/rules.json"
ctl flush --impairments --json >"$WORKDIR/out.json"
check_valid "flush --impairments --json" change
check_eq "... removed the three impairing rules" "$(json_field removed <"$WORKDIR/out.json")" 3
out=$(ctl rules)
check "without an impairing rule, no impairment columns" bash -c '! grep -q "delayed" <<<"$1"' _ "$out"

# -i: successive blocks when the output is no terminal, ended by ^C.
timeout -s INT 2.6 ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" status -i 1 >"$WORKDIR/watch.txt"
check "status -i 1 printed a block a second ($(grep -c '^ipmodd ' "$WORKDIR/watch.txt"))" \
	test "$(grep -c '^ipmodd ' "$WORKDIR/watch.txt")" -ge 2
check "... with rates from the second on" grep -q "rates: kernel" "$WORKDIR/watch.txt"
timeout -s INT 2.6 ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" rules -i 1 >"$WORKDIR/watch.txt"
check "rules -i 1 has per-rule rates" grep -q "packets/s" "$WORKDIR/watch.txt"
out=$(ctl status -i 0 2>&1)
check "status -i 0 is refused" grep -q "an interval is seconds" <<<"$out"
out=$(ctl status --json -i 1 2>&1)
check "--json with -i is refused" grep -q "do not go together" <<<"$out"

ctl flush --json >"$WORKDIR/out.json"
check_valid "flush --json" change

stop_ipmodd
check_eq "ipmodd exits 0" "$?" 0
done_testing
