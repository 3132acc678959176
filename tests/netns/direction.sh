#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The direction of a packet in the tools (issue 13), on real inbound packets:
# ipmodd with inbound = { interfaces = [ "veth0" ]; } and rules of each
# direction; the peer pings the host and connects to it.
#  - trace: the peer's echo requests are dir=in and meet only the inbound
#    rule, the host's replies dir=out and only the outbound one; a
#    direction=in filter keeps the inbound ones; --json says "dir" (and
#    validates against doc/ipmodctl.schema.json when jsonschema is there);
#  - capture: epb_flags inbound (1) for the request, outbound (2) for the
#    reply, before and after alike, and the summary counts each way;
#  - explain direction=in: the inbound rule, not the outbound one;
#  - reject of an inbound SYN: the peer's connect() is refused by a reset
#    addressed to it; a direction=in drop keeps the host from seeing UDP;
#  - per-rule counters count each rule's own direction.
. "$(dirname "$0")/lib.sh"

daemon_test ping python3 tshark tcpdump
INTUN=tun0i0
# rule_pkts NAME: the packets counted by rule NAME.
rule_pkts() {
	ctl --json rules | python3 -c '
import json, sys
for r in json.load(sys.stdin)["rules"]:
    if r["name"] == sys.argv[1]:
        print(r["packets"])' "$1"
}

RULES='rules = (
	{ name = "in-ping"; direction = "in"; proto = "icmp"; icmp-type = "echo-request"; set-dscp = 10; },
	{ name = "out-ping"; proto = "icmp"; icmp-type = "echo-request"; set-dscp = 12; },
	{ name = "out-reply"; proto = "icmp"; icmp-type = "echo-reply"; set-ttl = 33; },
	{ name = "in-reply"; direction = "in"; proto = "icmp"; icmp-type = "echo-reply"; set-dscp = 14; },
	{ name = "in-rst"; direction = "in"; proto = "tcp"; dport = 2222; verdict = "reject"; reject-with = "tcp-reset"; },
	{ name = "in-drop"; direction = "in"; proto = "udp"; dport = 9999; verdict = "drop"; },
	{ name = "both-udp"; direction = "both"; proto = "udp"; dport = 9998; set-dscp = 20; }
);'
# The daemon sees every packet: the fast path stays out of the counts.
FASTPATH=off write_config "$WORKDIR/ipmodd.conf" 'inbound = { interfaces = [ "veth0" ]; };
'"$RULES"
start_ipmodd "$WORKDIR/ipmodd.conf" || { echo "Bail out! ipmodd did not start"; exit 1; }
for i in $(seq 100); do
	hx test -e "/sys/class/net/$INTUN" && break
	sleep 0.05
done
if ! hx test -e "/sys/class/net/$INTUN"; then
	diag "$(tail -5 "$WORKDIR/ipmodd.log")"
	skip_all "ipmodd runs without its inbound tun $INTUN (no inbound diversion here)"
fi

# --- trace ---------------------------------------------------------------------------
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" trace proto=icmp >"$WORKDIR/trace.out" 2>&1 &
trace_pid=$!
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" trace direction=in >"$WORKDIR/trace-in.out" 2>&1 &
trace_in_pid=$!
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" trace --json proto=icmp >"$WORKDIR/trace.json" 2>&1 &
trace_json_pid=$!
sleep 0.5
px ping -c 3 -i 0.2 -W 1 "$HOST4" >"$WORKDIR/ping.out" 2>&1
check_eq "the peer's 3 pings to the host are answered through ipmodd" \
	"$(grep -c 'bytes from' "$WORKDIR/ping.out")" 3
sleep 0.3
kill "$trace_pid" "$trace_in_pid" "$trace_json_pid"
wait "$trace_pid" "$trace_in_pid" "$trace_json_pid" 2>/dev/null
check_eq "trace: 3 inbound echo requests, dir=in, the inbound rule only" \
	"$(grep -c "dir=in family=ip src=$PEER4 dst=$HOST4 proto=icmp icmp-type=echo-request .* rule=in-ping set-dscp=af11 result=accept\$" "$WORKDIR/trace.out")" 3
check_eq "trace: 3 outbound echo replies, dir=out, the outbound rule only" \
	"$(grep -c "dir=out family=ip src=$HOST4 dst=$PEER4 proto=icmp icmp-type=echo-reply .* rule=out-reply set-ttl=33 result=accept\$" "$WORKDIR/trace.out")" 3
check "trace: no packet met a rule of the other direction" \
	bash -c '! grep -q -e "dir=in.*rule=out-" -e "dir=out.*rule=in-" "$1"' _ "$WORKDIR/trace.out"
check "trace direction=in: the inbound requests, no outbound packet" \
	bash -c '[ "$(grep -c "dir=in .*icmp-type=echo-request" "$1")" = 3 ] && ! grep -q "dir=out" "$1"' _ "$WORKDIR/trace-in.out"
check_eq "trace --json: \"dir\" of each line" \
	"$(python3 -c 'import json,sys; print(" ".join(sorted(set("%s:%s" % (d["dir"], d["icmp-type"]) for d in map(json.loads, open(sys.argv[1]) ) if "dir" in d))))' "$WORKDIR/trace.json")" \
	"in:echo-request out:echo-reply"
PY=""
for p in python3 /usr/bin/python3; do
	"$p" -c 'import jsonschema' 2>/dev/null && { PY=$p; break; }
done
if [ -n "$PY" ]; then
	check "trace --json lines validate against the schema" "$PY" -c '
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
s = {k: v for k, v in schema.items() if k != "oneOf"}
s["$ref"] = "#/$defs/trace"
v = jsonschema.Draft202012Validator(s)
bad = [e.message for l in open(sys.argv[2]) if l.strip() for e in v.iter_errors(json.loads(l))]
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)' "$SRCDIR/doc/ipmodctl.schema.json" "$WORKDIR/trace.json"
else
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N # SKIP no python3 with jsonschema"
fi

# --- capture ---------------------------------------------------------------------------
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" capture -c 4 -w "$WORKDIR/cap.pcapng" 2>"$WORKDIR/cap.err" &
cap_pid=$!
sleep 0.5
px ping -c 1 -W 1 "$HOST4" >/dev/null 2>&1
wait "$cap_pid"
check_eq "capture of one inbound ping: request and reply, before and after, by direction" \
	"$(tshark -r "$WORKDIR/cap.pcapng" -T fields -e frame.comment -e frame.packet_flags_direction -e icmp.type -e ip.dsfield.dscp -e ip.ttl 2>/dev/null | tr '\t' ' ' | sort | tr '\n' ';')" \
	"after 0x00000001 8 10 64;after 0x00000002 0 10 33;before 0x00000001 8 0 64;before 0x00000002 0 10 64;"
check "ipmodctl capture counts each way" grep -q '4 packets captured (2 out, 2 in), 0 lost' "$WORKDIR/cap.err"
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" capture rule=in-rst -c 2 -w "$WORKDIR/rst.pcapng" 2>/dev/null &
cap_pid=$!
sleep 0.5
px python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(2)
try:
    s.connect((sys.argv[1], 2222))
except OSError:
    pass' "$HOST4"
wait "$cap_pid"
check_eq "capture of a rejected inbound SYN: the SYN inbound, the forged reset outbound" \
	"$(tshark -r "$WORKDIR/rst.pcapng" -T fields -e frame.comment -e frame.packet_flags_direction -e tcp.flags.reset -e ip.dst 2>/dev/null | tr '\t' ' ' | tr '\n' ';')" \
	"before 0x00000001 0 $HOST4;after 0x00000002 1 $PEER4;"

# --- explain ----------------------------------------------------------------------------
out=$(ctl explain direction=in proto=icmp src="$PEER4" dst="$HOST4" 2>&1)
check "explain direction=in: the inbound rule" \
	bash -c 'grep -q "^packet: .*direction=in" <<<"$1" && grep -q "in-ping" <<<"$1" && ! grep -q "out-ping" <<<"$1"' _ "$out"
out=$(ctl explain proto=icmp src="$HOST4" dst="$PEER4" 2>&1)
check "explain without direction=: outbound, the outbound rule" \
	bash -c 'grep -q "^packet: .*direction=out" <<<"$1" && grep -q "out-ping" <<<"$1" && ! grep -q "in-ping" <<<"$1"' _ "$out"

# --- verdicts inbound -------------------------------------------------------------------
pcap_start rst "$PEER_NS" veth0 tcp port 2222
out=$(px python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], 2222))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print(type(e).__name__)' "$HOST4")
pcap_stop rst
check_eq "reject of an inbound SYN: the peer's connect() is refused" "$out" refused
check_eq "... by a reset from the host's address to the peer's" \
	"$(tcpdump -n -r "$WORKDIR/rst.pcap" "tcp[tcpflags] & tcp-rst != 0 and src host $HOST4 and dst host $PEER4" 2>/dev/null | wc -l)" 1
ip netns exec "$HOST_NS" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
s.settimeout(1.5)
n = 0
try:
    while True:
        s.recv(100); n += 1
except socket.timeout:
    pass
print(n)' >"$WORKDIR/udp.out" &
recv_pid=$!
sleep 0.3
px python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    s.sendto(b"x", (sys.argv[1], 9999))' "$HOST4"
wait "$recv_pid"
check_eq "a direction=in drop: the host reads none of 5 datagrams" "$(cat "$WORKDIR/udp.out")" 0

# --- counters ---------------------------------------------------------------------------
check_eq "per-rule counters: in-ping 4, out-ping 0, out-reply 4, in-reply 0, in-rst 2, in-drop 5" \
	"$(for r in in-ping out-ping out-reply in-reply in-rst in-drop; do rule_pkts $r; done | tr '\n' ' ')" \
	"4 0 4 0 2 5 "
hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null 2>&1
check_eq "the host's own pings: out-ping and in-reply count them, the inbound request rule does not" \
	"$(for r in in-ping out-ping in-reply; do rule_pkts $r; done | tr '\n' ' ')" "4 2 2 "

stop_ipmodd
check_eq "ipmodd stops cleanly" "$?" 0
done_testing
