#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The operator's trail: every change over the control socket (and SIGHUP's
# reload) is logged with the client's uid, pid and command line, the rule
# and the generation, as structured fields (here on stderr: " KEY=value");
# the command line is /proc's when the daemon may read it, else the one the
# client declared (client-cmdline=), with CLIENT_CMDLINE_SOURCE saying which
# (a daemon as nobody under a hidepid=invisible /proc, as the unit runs it);
# "ipmodctl monitor" streams the same events, and a reader that does not
# read loses events with a note, not the daemon; "ipmodctl metrics" is
# valid OpenMetrics (tests/helpers/openmetrics-check.py) with the rules'
# counters, and "metrics --http" answers GET /metrics, 404 and 405.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping python3 setpriv socat curl timeout bc
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
LOG=$WORKDIR/ipmodd.log
OMCHECK=$SRCDIR/tests/helpers/openmetrics-check.py
ID_APPLIED=919b9154b784416496dae4a910ba5b9e
ID_REFUSED=20a00973ac7d4f7f9a5c3b2ff4bdd7db
RULES='rules = (
	{ name = "ttl-ping"; proto = "icmp"; icmp-type = "echo-request"; dst = "198.18.0.2"; set-ttl = 33; },
	{ name = "drop-udp"; proto = "udp"; dport = 7009; verdict = "drop"; },
	{ name = "lossy"; proto = "udp"; dport = 7010; loss = 0.5; }
);'
write_config "$CONF" "$RULES"
# World-connectable, group nogroup: an unprivileged user may read, not change.
sed -i 's|^control = .*|control = { socket = "'"$SOCK"'"; group = "nogroup"; mode = "0666"; };|' "$CONF"
chmod 0711 "$WORKDIR"

ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }
# nobody with a group that is not control.group: may read, not change.
as_nobody() { ip netns exec "$HOST_NS" setpriv --reuid=nobody --regid=54321 --clear-groups "$IPMODCTL" -s "$SOCK" "$@"; }
# The last log line with ACTION=$1 (and, with $2, that text too).
audit_line() { grep "ACTION=$1 " "$LOG" | grep -F -- "${2:-}" | tail -1; }
# field LINE KEY: a key's value in a log line (quotes and escapes undone).
field() {
	python3 - "$1" "$2" <<'PY'
import re, sys
line, key = sys.argv[1], sys.argv[2]
m = re.search(r'(?:^| )' + re.escape(key) + r'=("((?:[^"\\]|\\.)*)"|(\S*))', line)
if not m:
    sys.exit(1)
v = m.group(2) if m.group(2) is not None else m.group(3)
print(re.sub(r'\\(.)', r'\1', v) if m.group(2) is not None else v)
PY
}

export -f field ctl as_nobody audit_line
export HOST_NS SOCK IPMODCTL LOG

check "ipmodd starts" start_ipmodd "$CONF" || { done_testing; exit 1; }

# --- monitor: started first, it sees what follows ----------------------------------
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" monitor >"$WORKDIR/mon.txt" 2>"$WORKDIR/mon.err" &
MON=$!
BG_PIDS+=("$MON")
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" monitor --json >"$WORKDIR/mon.json" 2>&1 &
MONJ=$!
BG_PIDS+=("$MONJ")
for i in $(seq 50); do
	[ "$(ctl status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("streams"))')" = 2 ] && break
	sleep 0.1
done
check_eq "both monitors are streams" \
	"$(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("streams"))')" 2

gen0=$(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')

# --- the audit trail of an add by uid 0 ----------------------------------------------
check "add aud1 as root" ctl add name=aud1 proto=udp dport=7001 verdict=drop
line=$(audit_line add aud1)
diag "log: $line"
check "the add is logged with MESSAGE_ID=$ID_APPLIED" grep -q "MESSAGE_ID=$ID_APPLIED" <<<"$line"
check_eq "... CLIENT_UID=0" "$(field "$line" CLIENT_UID)" 0
check "... CLIENT_PID= a pid" bash -c "[ \"\$(field '$line' CLIENT_PID 2>/dev/null)\" -gt 1 ] 2>/dev/null" 
cl=$(field "$line" CLIENT_CMDLINE)
check "... CLIENT_CMDLINE= the command line ($cl)" bash -c \
	"[[ '$cl' == *ipmodctl\ -s\ *\ add\ name=aud1\ proto=udp\ dport=7001\ verdict=drop ]]"
check_eq "... CLIENT_CMDLINE_SOURCE=proc (root may read it)" "$(field "$line" CLIENT_CMDLINE_SOURCE)" proc
rule=$(field "$line" RULE)
check "... RULE= the rule as the daemon runs it ($rule)" bash -c \
	"[[ '$rule' == name=aud1\ * && '$rule' == *proto=udp* && '$rule' == *dport=7001* && '$rule' == *verdict=drop* ]]"
check_eq "... RULE_NAME=aud1" "$(field "$line" RULE_NAME)" aud1
check_eq "... GENERATION= the new generation" "$(field "$line" GENERATION)" $((gen0 + 1))
check_eq "... RESULT=applied" "$(field "$line" RESULT)" applied
check_eq "... RULES=4" "$(field "$line" RULES)" 4
check_eq "... CLIENT_SOURCE=control" "$(field "$line" CLIENT_SOURCE)" control
# The rule as logged is what "rules" shows.
check_eq "... the same spec as ipmodctl rules" "$rule" \
	"$(ctl rules --json | python3 -c 'import json,sys; print([r["spec"] for r in json.load(sys.stdin)["rules"] if r["name"]=="aud1"][0])')"

# --- every other change -----------------------------------------------------------------
check "replace aud1" ctl replace aud1 name=aud1 proto=udp dport=7002 verdict=drop
line=$(audit_line replace aud1)
check "replace: RULE= the new rule, OLD_RULE= the old one" bash -c \
	"[[ \"\$(field '$line' RULE)\" == *dport=7002* && \"\$(field '$line' OLD_RULE)\" == *dport=7001* ]]"
check_eq "replace: GENERATION" "$(field "$line" GENERATION)" $((gen0 + 2))
check "del aud1" ctl del aud1
line=$(audit_line del aud1)
check "del: RULE= the rule deleted" bash -c "[[ \"\$(field '$line' RULE)\" == *dport=7002* ]]"
check_eq "del: GENERATION" "$(field "$line" GENERATION)" $((gen0 + 3))
check "reset" ctl reset
check_eq "reset: logged with CLIENT_UID=0" "$(field "$(audit_line reset)" CLIENT_UID)" 0
check "reload" ctl reload
line=$(audit_line reload)
check_eq "reload: GENERATION" "$(field "$line" GENERATION)" $((gen0 + 4))
check_eq "reload: RULES=3 (the file's)" "$(field "$line" RULES)" 3

# --- refused changes are logged too -----------------------------------------------------
check "an add with an unknown key is refused" bash -c "! ctl add name=bad1 proto=udp sport=7001 dport=99999 verdict=drop 2>/dev/null"
line=$(audit_line add bad1)
diag "log: $line"
check "... logged with MESSAGE_ID=$ID_REFUSED, RESULT=refused" bash -c \
	"grep -q 'MESSAGE_ID=$ID_REFUSED' <<<'$line' && [ \"\$(field '$line' RESULT)\" = refused ]"
check_eq "... ERRNO=22" "$(field "$line" ERRNO)" 22
check "... RULE= what was asked for" bash -c "[[ \"\$(field '$line' RULE)\" == *dport=99999* ]]"
check "... ERROR= the daemon's message" bash -c "[[ \"\$(field '$line' ERROR)\" == *99999* ]]"
check "an add by nobody is refused" bash -c "! as_nobody add name=bad2 proto=udp dport=7002 verdict=drop 2>/dev/null"
line=$(audit_line add bad2)
check_eq "... logged with CLIENT_UID=$(id -u nobody)" "$(field "$line" CLIENT_UID)" "$(id -u nobody)"
check_eq "... ERRNO=1 (EPERM)" "$(field "$line" ERRNO)" 1
check "a del of a rule that does not exist is logged" bash -c \
	"! ctl del ghost 2>/dev/null; grep 'ACTION=del ' '$LOG' | grep -q 'ERRNO=2'"
gen=$(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
check_eq "refused changes leave the generation" "$gen" $((gen0 + 4))

# Refusals are rate-limited in the log (20 in 10 s), not in the monitor:
# 45 within a second span at most two windows, so at most 40 are logged.
r0=$(grep -c 'RESULT=refused' "$LOG")
ip netns exec "$HOST_NS" python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
for i in range(45):
    s.sendall(b"del=ghost%d\n\n" % i)
    while f.readline() not in (b"\n", b""):
        pass
PY
r1=$(grep -c 'RESULT=refused' "$LOG")
burst_end=$(date +%s)
diag "45 refused dels: $((r1 - r0)) logged"
check "45 refused changes at once: at most 40 logged" bash -c "[ $((r1 - r0)) -ge 1 ] && [ $((r1 - r0)) -le 40 ]"

# A command line with bytes that are not printable, escaped.
check "add with a tab in argv[0]" ip netns exec "$HOST_NS" bash -c \
	"exec -a \$'ipm\\tctl' '$IPMODCTL' -s '$SOCK' add name=aud3 proto=udp dport=7003 verdict=drop"
line=$(audit_line add aud3)
check "... CLIENT_CMDLINE escapes it (ipm\\x09ctl)" grep -qF 'CLIENT_CMDLINE="ipm\\x09ctl -s' <<<"$line"

# SIGHUP: a reload by a signal, with the sender's uid and pid.
kill -HUP "$IPMODD_PID"
for i in $(seq 50); do grep -q "CLIENT_SOURCE=signal" "$LOG" && break; sleep 0.1; done
line=$(grep "CLIENT_SOURCE=signal" "$LOG" | tail -1)
check "SIGHUP's reload is logged with CLIENT_SOURCE=signal, CLIENT_UID=0" bash -c \
	"[ \"\$(field '$line' ACTION)\" = reload ] && [ \"\$(field '$line' CLIENT_UID)\" = 0 ]"
check "flush" ctl flush
check_eq "flush: RULES=0" "$(field "$(audit_line flush)" RULES)" 0

# --- client-cmdline= ------------------------------------------------------------------
# A client whose /proc the daemon reads cannot pass off another command line:
# /proc's wins, and the line is no rule key (the add goes through without it).
raw() { printf "$1" | ip netns exec "$HOST_NS" socat -t 5 - UNIX-CONNECT:"$SOCK"; }
out=$(raw 'add=end\nname=forge1\nproto=udp\ndport=7004\nclient-cmdline=forged\nverdict=drop\n\n')
check "a raw add with client-cmdline=forged is applied (the line is not a rule key)" \
	grep -qx 'errno=0' <<<"$out"
line=$(audit_line add forge1)
diag "log: $line"
check "... CLIENT_CMDLINE is /proc's (socat), not the claim" bash -c \
	"[[ \"\$(field '$line' CLIENT_CMDLINE)\" == socat* ]]"
check_eq "... CLIENT_CMDLINE_SOURCE=proc" "$(field "$line" CLIENT_CMDLINE_SOURCE)" proc
check "... RULE= without it" bash -c "! grep -q 'cmdline' <<<\"\$(field '$line' RULE)\""
check "... nor in ipmodctl rules" bash -c "! ctl rules | grep -q forged"
out=$(raw 'del=forge1\nclient-cmdline=a\nclient-cmdline=b\n\n')
check "client-cmdline= twice is refused" grep -qx 'errno=22' <<<"$out"
check "... and the rule stays" bash -c "ctl rules | grep -q forge1"
out=$(raw 'explain=1\nproto=icmp\ndst=198.18.0.2\nclient-cmdline=x\n\n')
check "explain (a command that takes keys, not changing) does not see it" grep -qx 'errno=0' <<<"$out"
out=$(raw 'reset=counters\nclient-cmdline=x\n\n')
check "reset (a command that takes no keys) does not see it" grep -qx 'errno=0' <<<"$out"
check "del forge1 (ipmodctl: with its own client-cmdline=)" ctl del forge1

# --- monitor --------------------------------------------------------------------------
sleep 0.3
head -3 "$WORKDIR/mon.txt" | sed "s/^/# monitor: /"
check "monitor shows the add with its generation and uid" \
	grep -qE "^[0-9T:.-]+Z add name=aud1 generation=$((gen0 + 1)) rules=4 uid=0 pid=[0-9]+ cmdline=\".*add name=aud1.*\" cmdline-source=proc source=control rule=\"name=aud1 " "$WORKDIR/mon.txt"
check "monitor shows the del with its generation" \
	grep -qE " del name=aud1 generation=$((gen0 + 3)) .*rule=\"name=aud1 .*dport=7002" "$WORKDIR/mon.txt"
check "monitor shows the refused add" grep -qE " add refused .*uid=$(id -u nobody) .*errno=1 " "$WORKDIR/mon.txt"
check "monitor shows the reload by SIGHUP" grep -qE " reload generation=[0-9]+ .*source=signal" "$WORKDIR/mon.txt"
check_eq "monitor: one line per change (59)" "$(wc -l <"$WORKDIR/mon.txt")" 59
check "monitor --json: one object per line, numbers as numbers" python3 - "$WORKDIR/mon.json" "$gen0" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
gen0 = int(sys.argv[2])
assert len(ev) == 59, len(ev)
add = [e for e in ev if e["change"] == "add" and e.get("name") == "aud1"][0]
assert add["generation"] == gen0 + 1 and add["uid"] == 0 and isinstance(add["pid"], int), add
assert add["result"] == "applied" and add["rule"].startswith("name=aud1 "), add
assert add["cmdline-source"] == "proc" and "add name=aud1" in add["cmdline"], add
d = [e for e in ev if e["change"] == "del" and e.get("name") == "aud1"][0]
assert d["generation"] == gen0 + 3, d
r = [e for e in ev if e["result"] == "refused"]
assert len(r) == 48 and all(isinstance(e["errno"], int) for e in r), r
PY
check "monitor takes no words" bash -c "! ctl monitor foo 2>/dev/null"
check "an unprivileged user may monitor (runs until stopped)" bash -c \
	"timeout 1 ip netns exec '$HOST_NS' setpriv --reuid=nobody --regid=54321 --clear-groups '$IPMODCTL' -s '$SOCK' monitor; [ \$? = 124 ]"

# A monitor client that does not read: events it has no room for are lost
# and counted (a lost=N note before the next one that fits), the changes and
# the other monitor go on.  Delivered + lost = every event, for both.
ip netns exec "$HOST_NS" python3 - "$SOCK" "$WORKDIR/slow.out" "$WORKDIR/churned" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"monitor=changes\n\n")
open(sys.argv[2] + ".ready", "w").close()
for i in range(600):		# meanwhile, thousands of changes
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.1)
s.settimeout(1)
data = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
except socket.timeout:
    pass
open(sys.argv[2], "wb").write(data)
PY
SLOW=$!
BG_PIDS+=("$SLOW")
for i in $(seq 50); do [ -e "$WORKDIR/slow.out.ready" ] && break; sleep 0.1; done
sleep 0.2
before=$(wc -l <"$WORKDIR/mon.txt")
CHURN=${CHURN:-400}
t0=$(date +%s.%N)
ip netns exec "$HOST_NS" python3 - "$SOCK" "$CHURN" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
for i in range(int(sys.argv[2])):
    for req in (b"add=end\nname=churn\nproto=udp\ndport=7100\nsrc=198.18.1.0/24\ndst=198.18.0.0/24\nverdict=drop\n\n",
                b"del=churn\n\n"):
        s.sendall(req)
        reply = []
        while True:
            l = f.readline()
            if l in (b"\n", b""):
                break
            reply.append(l)
        if b"errno=0\n" not in reply:
            sys.exit("churn refused: %r" % reply)
PY
check_eq "the churn of $CHURN adds and dels went through" "$?" 0
diag "the churn took $(echo "$(date +%s.%N) - $t0" | bc) s"
# The slow reader reads now; one more change, and a note of what it lost
# goes out before that change.
touch "$WORKDIR/churned"
sleep 0.5
check "reload after the churn" ctl reload
wait "$SLOW"
total=$((2 * CHURN + 1))
got=$(grep -caE '^change=' "$WORKDIR/slow.out")
lost=$(grep -aE '^lost=' "$WORKDIR/slow.out" | cut -d= -f2 | paste -sd+ | bc)
diag "slow monitor: $got events delivered, ${lost:-0} lost of $total"
check "the slow monitor got lost=N notes" bash -c "[ '${lost:-0}' -gt 0 ]"
check_eq "... delivered + lost = every event" "$((got + ${lost:-0}))" "$total"
got=$(( $(wc -l <"$WORKDIR/mon.txt") - before ))
lost=$(sed -n 's/^lost \([0-9]*\) events.*/\1/p' "$WORKDIR/mon.err" | paste -sd+ | bc)
diag "reading monitor: $got events printed, ${lost:-0} lost of $total"
check_eq "the reading monitor: printed + lost = every event" "$((got + ${lost:-0}))" "$total"
check "the reading monitor still runs" kill -0 "$MON"

# --- metrics ---------------------------------------------------------------------------
check "reload the file's rules" ctl reload
hx ping -c 3 -i 0.2 -W 1 198.18.0.2 >/dev/null 2>&1
for p in 1 2 3 4; do hx bash -c "echo x >/dev/udp/198.18.1.1/7009" 2>/dev/null; done
ctl metrics >"$WORKDIR/metrics.txt" 2>&1
head -3 "$WORKDIR/metrics.txt" | sed "s/^/# metrics: /"
check "ipmodctl metrics is valid OpenMetrics" python3 "$OMCHECK" "$WORKDIR/metrics.txt"
check "... ends with # EOF" bash -c "[ \"\$(tail -1 '$WORKDIR/metrics.txt')\" = '# EOF' ]"
if [ "$(status_field reinject)" = bpf ]; then
	check "... the direct path's share of the re-injected packets" grep -qE \
		'^ipmodd_reinject_direct_packets_total [0-9]+$' "$WORKDIR/metrics.txt"
fi
check "... per-rule packets with index, name and spec labels" grep -qE \
	'^ipmodd_rule_packets_total\{index="1",name="ttl-ping",spec="name=ttl-ping [^"]*set-ttl=33[^"]*"\} [1-9][0-9]*$' "$WORKDIR/metrics.txt"
check "... per-rule bytes with a UNIT" bash -c "grep -q '^# UNIT ipmodd_rule_bytes bytes' '$WORKDIR/metrics.txt' && grep -qE '^ipmodd_rule_bytes_total\{index=\"1\",[^}]*\} [1-9]' '$WORKDIR/metrics.txt'"
check "... the drop rule's drops (reason=verdict) are its packets" bash -c \
	"v=\$(grep -E '^ipmodd_rule_dropped_packets_total\{index=\"2\",.*reason=\"verdict\"\}' '$WORKDIR/metrics.txt' | awk '{print \$NF}'); \
	 p=\$(grep -E '^ipmodd_rule_packets_total\{index=\"2\",' '$WORKDIR/metrics.txt' | awk '{print \$NF}'); [ \"\$v\" -ge 4 ] && [ \"\$v\" = \"\$p\" ]"
check "... per-path counters (kernel, daemon)" bash -c \
	"grep -q '^ipmodd_path_packets_total{path=\"daemon\"} [1-9]' '$WORKDIR/metrics.txt'"
check "... queue depth, restore and stall counters" bash -c \
	"grep -q '^ipmodd_impair_queue_packets ' '$WORKDIR/metrics.txt' && grep -q '^ipmodd_restores_total ' '$WORKDIR/metrics.txt' && grep -q '^ipmodd_stall_trips_total ' '$WORKDIR/metrics.txt'"
check "... the generation gauge matches status" bash -c \
	"[ \"\$(awk '/^ipmodd_generation /{print \$2}' '$WORKDIR/metrics.txt')\" = \"\$(ip netns exec '$HOST_NS' '$IPMODCTL' -s '$SOCK' status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"generation\"])')\" ]"
check "an unprivileged user may read the metrics" bash -c "as_nobody metrics | python3 '$OMCHECK'"
check "metrics --json is refused" bash -c "! ctl metrics --json 2>/dev/null"

# The checker itself refuses what is wrong (om_bad LINE...).
om_bad() { printf '%s\n' "$@" >"$WORKDIR/bad.om"; ! python3 "$OMCHECK" "$WORKDIR/bad.om" >/dev/null; }
check "checker: refuses a missing # EOF" om_bad '# TYPE a counter' '# HELP a x' 'a_total 1'
check "checker: refuses a counter sample without _total" om_bad '# TYPE a counter' '# HELP a x' 'a 1' '# EOF'
check "checker: refuses a bad escape in a label" om_bad '# TYPE a gauge' '# HELP a x' 'a{l="\q"} 1' '# EOF'
check "checker: refuses a unit the name does not end with" om_bad '# TYPE a gauge' '# UNIT a bytes' '# HELP a x' 'a 1' '# EOF'
check "checker: refuses a family split in two" om_bad '# TYPE a gauge' '# HELP a x' 'a 1' '# TYPE b gauge' '# HELP b x' 'b 1' 'a 2' '# EOF'
check "checker: refuses a sample twice" om_bad '# TYPE a gauge' '# HELP a x' 'a{l="1"} 1' 'a{l="1"} 2' '# EOF'
check "checker: refuses a blank line" om_bad '# TYPE a gauge' '# HELP a x' '' 'a 1' '# EOF'
printf '%s\n' '# TYPE a_bytes counter' '# UNIT a_bytes bytes' '# HELP a_bytes x' \
	'a_bytes_total{l="\\ \" \n",m="x"} 1' '# EOF' >"$WORKDIR/good.om"
check "checker: accepts a good one" python3 "$OMCHECK" "$WORKDIR/good.om"

# --- metrics --http, as the socket unit runs it (stdin/stdout the connection) ---------------
http() { printf "$1" | ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" metrics --http; }
http 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' | tr -d '\r' >"$WORKDIR/http.out"
out=$(cat "$WORKDIR/http.out")
check "GET /metrics: 200" grep -q '^HTTP/1.1 200 OK$' <<<"$out"
check "... Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8" \
	grep -qx 'Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8' <<<"$out"
check "... the body is valid OpenMetrics" bash -c "sed '1,/^\$/d' '$WORKDIR/http.out' | python3 '$OMCHECK'"
check "GET /other: 404" bash -c "$(declare -f http); HOST_NS=$HOST_NS IPMODCTL=$IPMODCTL SOCK=$SOCK; http 'GET /other HTTP/1.1\r\n\r\n' | head -1 | grep -q '^HTTP/1.1 404'"
check "POST /metrics: 405" bash -c "$(declare -f http); HOST_NS=$HOST_NS IPMODCTL=$IPMODCTL SOCK=$SOCK; http 'POST /metrics HTTP/1.1\r\n\r\n' | head -1 | grep -q '^HTTP/1.1 405'"
check "garbage: 400" bash -c "$(declare -f http); HOST_NS=$HOST_NS IPMODCTL=$IPMODCTL SOCK=$SOCK; http 'hello\r\n\r\n' | head -1 | grep -q '^HTTP/1.1 400'"
check "a request that never ends: 408 within the timeout" bash -c \
	"(printf 'GET /metrics HTTP/1.1\r\n'; sleep 8) | timeout 7 ip netns exec '$HOST_NS' '$IPMODCTL' -s '$SOCK' metrics --http | head -1 | grep -q '^HTTP/1.1 408'"
check "a request larger than 8 KiB: 431" bash -c \
	"head -c 20000 /dev/zero | tr '\\0' a | ip netns exec '$HOST_NS' '$IPMODCTL' -s '$SOCK' metrics --http | head -1 | grep -q '^HTTP/1.1 431'"
# Over TCP, one process per connection as with Accept=yes, and curl.
ip netns exec "$HOST_NS" socat TCP-LISTEN:9465,bind=127.0.0.1,reuseaddr,fork \
	EXEC:"$IPMODCTL -s $SOCK metrics --http" 2>/dev/null &
BG_PIDS+=("$!")
for i in $(seq 50); do hx bash -c 'echo >/dev/tcp/127.0.0.1/9465' 2>/dev/null && break; sleep 0.1; done
check "curl http://127.0.0.1:9465/metrics: valid OpenMetrics" bash -c \
	"ip netns exec '$HOST_NS' curl -sf http://127.0.0.1:9465/metrics | python3 '$OMCHECK'"
check_eq "curl: the content type" \
	"$(hx curl -s -o /dev/null -w '%{content_type}' http://127.0.0.1:9465/metrics)" \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"
check_eq "curl /: 404" "$(hx curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9465/)" 404

# The rate limit's window is over by now: the next refusal says how many went unlogged.
while [ "$(date +%s)" -le $((burst_end + 11)) ]; do sleep 0.5; done
ctl del ghost-last 2>/dev/null
line=$(audit_line del ghost-last)
check_eq "the next refusal logged says how many were not (SUPPRESSED=)" \
	"$(field "$line" SUPPRESSED)" "$((45 - (r1 - r0)))"

stop_ipmodd
for i in $(seq 50); do kill -0 "$MON" 2>/dev/null || break; sleep 0.1; done
check "the monitors end when ipmodd does" bash -c "! kill -0 $MON 2>/dev/null"
check "... saying so" grep -q "ipmodd ended the monitor" "$WORKDIR/mon.err"

# --- a daemon that may not read its clients' /proc -------------------------------------
# As the unit runs it: its own user (nobody here), CAP_NET_ADMIN, and a /proc
# with hidepid=invisible (ProtectProc=invisible): root's processes are not
# there for it.  The command line logged is then the one ipmodctl declared.
HDIR=$WORKDIR/hidden
mkdir -m 0755 "$HDIR"
chown 65534:65534 "$HDIR"
HSOCK=$HDIR/control.sock
HCONF=$WORKDIR/hidden.conf
HLOG=$WORKDIR/hidden.log
write_config "$HCONF" "$RULES"
sed -i 's|^control = .*|control = { socket = "'"$HSOCK"'"; };|' "$HCONF"
chmod 0644 "$HCONF"
# The private /proc, and where /dev/net/tun is not 0666 (a container's /dev),
# a 0666 node of its own in a private /dev/net.
HIDE='mount -t proc -o hidepid=invisible proc /proc &&
	{ [ "$(stat -c %a /dev/net/tun)" = 666 ] || { mount -t tmpfs -o mode=0755 tun /dev/net &&
	  mknod -m 0666 /dev/net/tun c 10 200; }; } && exec "$@"'
ip netns exec "$HOST_NS" unshare --mount --propagation private sh -c "$HIDE" sh \
	setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs \
	--inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin -- \
	"$IPMODD" -c "$HCONF" >"$HLOG" 2>&1 &
IPMODD_PID=$!
wait_routing "$IPMODD_PID" test -S "$HSOCK"
# ip netns exec, unshare, sh and setpriv each exec the next: the pid is ipmodd's.
check "ipmodd runs as nobody under a hidepid=invisible /proc" bash -c \
	"[ -S '$HSOCK' ] && [ \"\$(cat /proc/$IPMODD_PID/comm)\" = ipmodd ] &&
	 grep -qE '^Uid:\s+65534\s' /proc/$IPMODD_PID/status" || diag "$(tail -5 "$HLOG")"
hctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$HSOCK" "$@"; }
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$HSOCK" monitor --json >"$WORKDIR/hmon.json" 2>&1 &
BG_PIDS+=("$!")
for i in $(seq 50); do
	[ "$(hctl status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("streams"))')" = 1 ] && break
	sleep 0.1
done
# Root's client, its /proc hidden: a raw request without the line has no command line.
out=$(printf 'add=end\nname=hraw\nproto=udp\ndport=7005\nverdict=drop\n\n' |
	ip netns exec "$HOST_NS" socat -t 5 - UNIX-CONNECT:"$HSOCK")
check "a raw add without client-cmdline= is applied" grep -qx 'errno=0' <<<"$out"
line=$(grep "ACTION=add " "$HLOG" | grep -F hraw | tail -1)
diag "log: $line"
check "... the daemon could not read the client's /proc: no CLIENT_CMDLINE" bash -c \
	'[ -n "$1" ] && ! grep -q CLIENT_CMDLINE <<<"$1"' _ "$line"
check "ipmodctl add as root" hctl add name=hid1 proto=udp dport=7006 verdict=drop
line=$(grep "ACTION=add " "$HLOG" | grep -F hid1 | tail -1)
diag "log: $line"
cl=$(field "$line" CLIENT_CMDLINE)
check "... CLIENT_CMDLINE= the one ipmodctl declared ($cl)" bash -c \
	"[[ '$cl' == *ipmodctl\ -s\ $HSOCK\ add\ name=hid1\ proto=udp\ dport=7006\ verdict=drop ]]"
check_eq "... CLIENT_CMDLINE_SOURCE=client" "$(field "$line" CLIENT_CMDLINE_SOURCE)" client
check_eq "... CLIENT_UID=0 (the kernel's)" "$(field "$line" CLIENT_UID)" 0
check "... RULE= without it" bash -c "[[ \"\$(field '$line' RULE)\" != *cmdline* ]]"
# A declared line is a claim, escaped by the daemon too: bytes not ASCII as \xHH, cut at 512.
long=$(printf 'x%.0s' $(seq 600))
out=$(printf 'del=hraw\nclient-cmdline=forged caf\xc3\xa9 %s\n\n' "$long" |
	ip netns exec "$HOST_NS" socat -t 5 - UNIX-CONNECT:"$HSOCK")
check "a raw del declaring its own command line is applied" grep -qx 'errno=0' <<<"$out"
line=$(grep "ACTION=del " "$HLOG" | grep -F hraw | tail -1)
cl=$(field "$line" CLIENT_CMDLINE)
check "... logged as declared, escaped (caf\\xc3\\xa9) and cut (...)" bash -c \
	"[[ '$cl' == 'forged caf\\xc3\\xa9 xxx'*'...' ]] && [ \${#cl} -le 520 ]"
check_eq "... CLIENT_CMDLINE_SOURCE=client" "$(field "$line" CLIENT_CMDLINE_SOURCE)" client
check "ipmodctl flush as root" hctl flush
check_eq "... CLIENT_CMDLINE_SOURCE=client" \
	"$(field "$(grep 'ACTION=flush ' "$HLOG" | tail -1)" CLIENT_CMDLINE_SOURCE)" client
sleep 0.3
check "monitor --json: cmdline and cmdline-source=client" python3 - "$WORKDIR/hmon.json" "$HSOCK" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
add = [e for e in ev if e["change"] == "add" and e.get("name") == "hid1"][0]
assert add["cmdline-source"] == "client", add
assert add["cmdline"].endswith("ipmodctl -s %s add name=hid1 proto=udp dport=7006 verdict=drop" % sys.argv[2]), add
raw = [e for e in ev if e["change"] == "add" and e.get("name") == "hraw"][0]
assert "cmdline" not in raw and "cmdline-source" not in raw, raw
PY
stop_ipmodd
done_testing
