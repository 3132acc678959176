#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The inbound eBPF fast path (issue 13): with inbound = veth0, fixed packets
# from the peer to the host (UDP, TCP, ICMP echo; IPv4 and IPv6) through
# direction=in and both rules (set-ttl, set-dscp, drop) arrive at the host
# exactly alike with fastpath = "off" and "on" (an NFLOG capture in the host's
# prerouting sees each packet once, as the rules left it: after the daemon's
# re-injection, or after the fast path on veth0's ingress), with the same
# per-rule counters; in the "on" run the inbound program really carried them
# out on veth0's ingress (status fastpath-in*, where-in=kernel; the inbound
# tun saw only the punted packets, the "off" run all of them) and added no hop
# (set-ttl=33 arrives as 33), an outbound rule on the same packets is
# ignored inbound, and the packets of a rule it cannot carry out (delay=)
# went to the daemon untouched.  A trace pauses it; edits reach it at once.
# The same again with the inbound programs as netlink tc filters
# (failure = "closed").  kill -9 with the fast path on fails open (tcx) and
# closed (tc filters) as without it.
. "$(dirname "$0")/lib.sh"

daemon_test python3 tcpdump tc ping nft
INTUN=tun0i0
status_key() { ctl --json status | json_field "$1" ""; }
# Packets through the inbound tun, both ways (its kernel counters).
tun_packets() {
	echo $(( $(hx cat /sys/class/net/$INTUN/statistics/rx_packets) + \
		 $(hx cat /sys/class/net/$INTUN/statistics/tx_packets) ))
}
# "name packets bytes" per rule, in chain order.
rule_counts() {
	ctl --json rules | python3 -c '
import json, sys
for r in json.load(sys.stdin)["rules"]:
    print(r["name"], r["packets"], r["bytes"])'
}
# rule_key NAME KEY: a key of rule NAME in "ipmodctl rules --json".
rule_key() {
	ctl --json rules | python3 -c '
import json, sys
for r in json.load(sys.stdin)["rules"]:
    if r["name"] == sys.argv[1]:
        print(r.get(sys.argv[2], ""))' "$1" "$2"
}

# The first rule is outbound only: the inbound program must not apply it.
RULES='rules = (
	{ name = "out-ttl"; proto = "udp"; dport = "9101"; set-ttl = "99"; },
	{ name = "ttl-udp"; direction = "in"; proto = "udp"; dport = "9101"; set-ttl = "33"; },
	{ name = "dscp-udp"; direction = "in"; proto = "udp"; dport = "9102"; set-dscp = "10"; },
	{ name = "drop-udp"; direction = "in"; proto = "udp"; dport = "9103"; verdict = "drop"; },
	{ name = "ttl-tcp"; direction = "in"; proto = "tcp"; dport = "9104"; set-ttl = "44"; },
	{ name = "dscp-both"; direction = "both"; proto = "tcp"; dport = "9105"; set-dscp = "12"; },
	{ name = "drop-tcp"; direction = "in"; proto = "tcp"; dport = "9106"; verdict = "drop"; },
	{ name = "dec-udp"; direction = "in"; proto = "udp"; dport = "9107"; set-ttl = "-3"; },
	{ name = "ttl-echo"; direction = "in"; icmp-type = "echo-request"; set-ttl = "50"; },
	{ name = "slow-udp"; direction = "in"; proto = "udp"; dport = "9108"; delay = "1"; }
);'
# 9108: a rule the kernel cannot carry out (it impairs): those packets go to the daemon.
PORTS="9100 9101 9102 9103 9104 9105 9106 9107 9108"

# Fixed packets from the peer to the host: raw sockets with the whole IP
# header given (fixed IDs, payloads, TTL 64): UDP and TCP to each port, v4
# and v6, then an echo request each.
send_fixed() {
	send_fixed_ip px "inbound fast path" 0x4343 "$PEER4" "$HOST4" "$PEER6" "$HOST6" "$@"
}

# The fixed packets in a capture, "family proto dport ttl tclass csum" each,
# sorted (the daemon's copies may interleave differently with the next
# arrivals than the kernel's).
summary() {
	python3 - "$1" <<'PY' | sort
import struct, sys
from netpkt import ip_fields, pcap_ip

for p in pcap_ip(sys.argv[1]):
    f = ip_fields(p)
    if not f:
        continue
    proto, l4, ttl, tc, ok = f
    if proto in (6, 17) and 9100 <= struct.unpack("!H", l4[2:4])[0] <= 9108:
        port = struct.unpack("!H", l4[2:4])[0]
    elif proto in (1, 58) and l4[0] in (8, 128) and l4[4:6] == b"\x43\x43":
        port = 0
    else:
        continue
    # The whole packet too: anything else the path changed shows.
    print(p[0] >> 4, proto, port, ttl, tc, ok, p.hex())
PY
}

# What the rules must make of the fixed packets: each arrives once, as the
# rules left it, unless dropped.
expected() {
	local f proto port ttl tc ok
	for f in 4 6; do
		[ "$f" = 4 ] && ok=csum-ok || ok=-
		for port in $PORTS; do
			for proto in 17 6; do
				ttl=64 tc=0
				case "$proto/$port" in
				17/9101) ttl=33 ;;
				17/9102) tc=40 ;;
				17/9103 | 6/9106) continue ;;
				6/9104) ttl=44 ;;
				6/9105) tc=48 ;;
				17/9107) ttl=61 ;;
				esac
				echo "$f $proto $port $ttl $tc $ok"
			done
		done
		[ "$f" = 4 ] && proto=1 || proto=58
		echo "$f $proto 0 50 0 $ok"
	done | sort
}

# run MODE [TAG FAILURE]: the fixed traffic through a daemon with fastpath =
# MODE (and routing.failure = FAILURE); files named after TAG.
run() {
	local mode=$1 tag=${2:-$1} i
	FASTPATH=$mode write_config "$WORKDIR/$tag.conf" "inbound = { interfaces = [ \"veth0\" ]; };
$RULES"
	[ -n "${3:-}" ] && sed -i "s/^routing = {/routing = { failure = \"$3\";/" "$WORKDIR/$tag.conf"
	check "[$tag] ipmodd starts with inbound = veth0" start_ipmodd "$WORKDIR/$tag.conf"
	for i in $(seq 100); do
		hx test -e "/sys/class/net/$INTUN" && break
		sleep 0.05
	done
	nflog_start "$tag" "$HOST_NS" 5 "ip saddr $PEER4" "ip6 saddr $PEER6"
	TUN0=$(tun_packets)
	send_fixed $PORTS
	TUN_DELTA=$(( $(tun_packets) - TUN0 ))
	nflog_stop "$tag"
	summary "$WORKDIR/$tag.pcap" >"$WORKDIR/$tag.sum"
	rule_counts >"$WORKDIR/$tag.rules"
	ctl --json status >"$WORKDIR/$tag.status.json"
	ctl --json rules >"$WORKDIR/$tag.rules.json"
	IN_STATE=$(status_key fastpath-in)
	IN_ATTACH=$(status_key inbound-attach)
	IN_HANDLED=$(status_key fastpath-in-handled)
	IN_DROPPED=$(status_key fastpath-in-dropped)
	IN_PUNTED=$(status_key fastpath-in-punted)
	IN_RULES=$(status_key fastpath-in-rules)
	IN_PUNT_RULES=$(status_key fastpath-in-punt-rules)
	OUT_RULES=$(status_key fastpath-rules)
	WHERE_IN=$(rule_key ttl-udp where-in)
	WHERE=$(rule_key ttl-udp where)
	WHERE_OUT=$(rule_key out-ttl where)
	WHERE_BOTH_IN=$(rule_key dscp-both where-in)
}

# --- (0) the program of each direction, without a daemon --------------------------
# tests/helpers/fp-dir: one UDP packet through the outbound and the inbound
# program (BPF_PROG_TEST_RUN on loopback of a namespace of its own): the
# outbound one adds the hop and ignores the inbound rule, the inbound one
# adds none and ignores the outbound rule; each counts its own rules; the
# uplink's program (fastpath_uplink) delivers, counts GSO segments, punts to
# the tun divert names and drops as divert's tail call needs.
FP_DIR=${FP_DIR:-$(dirname "$IPMODD")/tests/helpers/fp-dir}
if [ -x "$FP_DIR" ]; then
	unshare -n "$FP_DIR" >"$WORKDIR/fp-dir.tap" 2>&1
	rc=$?
	while read -r line; do
		case $line in
		"ok "*) ok "fp-dir: ${line#ok * - }" ;;
		"not ok "*) not_ok "fp-dir: ${line#not ok * - }" ;;
		"# "*) echo "$line" ;;
		esac
	done <"$WORKDIR/fp-dir.tap"
	check_eq "fp-dir exits 0 after its 30 tests" "$rc:$(grep -c '^ok' "$WORKDIR/fp-dir.tap")" "0:30"
else
	diag "no $FP_DIR: the programs are not tested without the daemon"
fi

# --- (1) userspace and kernel: the same packets, the same counters ---------------
run off
check_eq "[off] status says fastpath-in=off" "$IN_STATE" off
check_eq "[off] the packets arrive as the rules make them" \
	"$(cut -d' ' -f1-6 "$WORKDIR/off.sum")" "$(expected)"
check_eq "[off] where-in of an inbound rule: daemon" "$WHERE_IN" daemon
# 19 packets per family to the daemon, 17 written back (2 dropped).
check_eq "[off] every fixed packet went through the inbound tun, and back" "$TUN_DELTA" 72
stop_ipmodd
check_eq "[off] ipmodd exits 0" "$?" 0

run on
check_eq "[on] status says fastpath-in=on" "$IN_STATE" on
check_eq "[on] the packets arrive as the rules make them (set-ttl=33 arrives as 33: no hop added)" \
	"$(cut -d' ' -f1-6 "$WORKDIR/on.sum")" "$(expected)"
check_eq "[on] the same packets, byte for byte, as with fastpath = off" \
	"$(cat "$WORKDIR/on.sum")" "$(cat "$WORKDIR/off.sum")"
check_eq "[on] the same per-rule counters as with fastpath = off" \
	"$(cat "$WORKDIR/on.rules")" "$(cat "$WORKDIR/off.rules")"
# 9 ports x 2 protocols + 1 echo = 19 per family: 2 dropped, 1 to the daemon.
check_eq "[on] the inbound program sent on the rest of the fixed traffic" "$IN_HANDLED" 32
check_eq "[on] the inbound program dropped the 4 packets of the drop rules" "$IN_DROPPED" 4
check_eq "[on] it handed the daemon the 2 UDP packets to 9108 (delay=1), and nothing else" \
	"$IN_PUNTED" 2
check_eq "[on] the inbound tun carried only those 2, both ways (the rest stayed on veth0's ingress)" \
	"$TUN_DELTA" 4
check_eq "[on] it carries out the 8 inbound rules it can express, not the outbound one" "$IN_RULES" 8
check_eq "[on] it leaves one inbound rule to the daemon" "$IN_PUNT_RULES" 1
check_eq "[on] where-in of slow-udp: daemon (impairs)" \
	"$(rule_key slow-udp where-in) ($(rule_key slow-udp where-in-reason))" "daemon (impairs)"
check_eq "[on] the outbound program holds the 2 outbound rules" "$OUT_RULES" 2
check_eq "[on] where-in of ttl-udp: kernel" "$WHERE_IN" kernel
check_eq "[on] where of ttl-udp (in only) says the same" "$WHERE" kernel
check_eq "[on] where-in of dscp-both: kernel" "$WHERE_BOTH_IN" kernel
check_eq "[on] out-ttl has no where-in" "$(rule_key out-ttl where-in)" ""
check_eq "[on] out-ttl counted nothing (outbound only)" \
	"$(awk '$1 == "out-ttl" { print $2 }' "$WORKDIR/on.rules")" 0
check_eq "[on] ttl-udp counted its 2 packets" \
	"$(awk '$1 == "ttl-udp" { print $2 }' "$WORKDIR/on.rules")" 2
check_eq "[on] ttl-echo counted its 2 packets" \
	"$(awk '$1 == "ttl-echo" { print $2 }' "$WORKDIR/on.rules")" 2
# The new keys (fastpath-in*, where-in*) as doc/ipmodctl.schema.json says.
if python3 -c 'import jsonschema' 2>/dev/null; then
	for def in status rules; do
		check "[on] $def --json validates against the schema" python3 -c '
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
s = {k: v for k, v in schema.items() if k != "oneOf"}
s["$ref"] = "#/$defs/" + sys.argv[2]
errs = list(jsonschema.Draft202012Validator(s).iter_errors(json.load(open(sys.argv[3]))))
for e in errs:
    print("/".join(map(str, e.absolute_path)), e.message)
sys.exit(1 if errs else 0)' "$SRCDIR/doc/ipmodctl.schema.json" "$def" "$WORKDIR/on.$def.json"
	done
else
	diag "no python3 jsonschema: the schema is not checked"
fi

# explain: the fast path of the packet's direction.
explain_where() {
	ctl --json explain "$@" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("where"), d.get("where-reason", "-"))'
}
check_eq "[on] explain direction=in dport=9101: the kernel" \
	"$(explain_where direction=in src=$PEER4 dst=$HOST4 proto=udp dport=9101)" "kernel -"
check_eq "[on] explain direction=in dport=9108: the daemon, for slow-udp" \
	"$(explain_where direction=in src=$PEER4 dst=$HOST4 proto=udp dport=9108)" "daemon rule slow-udp: impairs"
check_eq "[on] explain direction=out dport=9108 (slow-udp is inbound only): the kernel" \
	"$(explain_where direction=out dst=$PEER4 proto=udp dport=9108)" "kernel -"

# --- (2) a trace pauses the inbound program; an edit reaches it at once ------------
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" trace >"$WORKDIR/trace.out" 2>&1 &
TRACE_PID=$!
BG_PIDS+=($TRACE_PID)
for i in $(seq 50); do
	[ "$(rule_key ttl-udp where-in)" = daemon ] && break
	sleep 0.05
done
check_eq "[trace] where-in says daemon while a trace runs" "$(rule_key ttl-udp where-in)" daemon
before=$(status_key fastpath-in-handled)
send_fixed 9101
sleep 0.3
check_eq "[trace] the inbound program handled nothing while paused" \
	"$(status_key fastpath-in-handled)" "$before"
kill "$TRACE_PID"
wait "$TRACE_PID" 2>/dev/null
check "[trace] the trace saw the inbound packets" grep -q "rule=ttl-udp" "$WORKDIR/trace.out"
for i in $(seq 50); do
	[ "$(rule_key ttl-udp where-in)" = kernel ] && break
	sleep 0.05
done
check_eq "[trace] where-in says kernel again after the trace" "$(rule_key ttl-udp where-in)" kernel

ctl del ttl-udp >/dev/null
nflog_start edit "$HOST_NS" 5 "udp dport 9101"
send_fixed 9101
nflog_stop edit
check_eq "[edit] ttl-udp deleted: the packets to 9101 arrive with TTL 64 only" \
	"$(summary "$WORKDIR/edit.pcap" | cut -d' ' -f4 | sort | uniq -c | awk '{ print $1, $2 }')" "2 64"
check_eq "[edit] the inbound program now carries out 7 rules" "$(status_key fastpath-in-rules)" 7

stop_ipmodd
check_eq "[on] ipmodd exits 0" "$?" 0
check "the inbound tun is gone after the stop" bash -c "! ip netns exec $HOST_NS test -e /sys/class/net/$INTUN"

# --- (3) the inbound programs as netlink tc filters (failure = "closed") ---------
# The inbound tun's clsact qdisc then holds reinject_in (ingress) and the
# fast path (egress): both work, and each goes without taking the other.
run on tc closed
check_eq "[tc] the inbound programs are tc filters" "$IN_ATTACH" tc
check_eq "[tc] fastpath-in=on" "$IN_STATE" on
check_eq "[tc] the same packets, byte for byte, as with fastpath = off" \
	"$(cat "$WORKDIR/tc.sum")" "$(cat "$WORKDIR/off.sum")"
check_eq "[tc] the same per-rule counters" "$(cat "$WORKDIR/tc.rules")" "$(cat "$WORKDIR/off.rules")"
check_eq "[tc] the inbound program sent on the same packets" "$IN_HANDLED" 32
check_eq "[tc] ... on veth0's ingress: the inbound tun carried only the 2 punted ones" "$TUN_DELTA" 4
stop_ipmodd
check_eq "[tc] ipmodd exits 0" "$?" 0
check_eq "[tc] no tc filter left on veth0's ingress" \
	"$(hx tc filter show dev veth0 ingress 2>/dev/null | wc -l)" 0

# --- (4) one program on two inbound tuns: a second peer behind up1 ----------------
P2_NS="${HOST_NS%-h}-q"
trap 'cleanup; ip netns del "$P2_NS" 2>/dev/null' EXIT
side_ns "$P2_NS" up1 "second peer"
hx ip addr add 198.18.4.1/24 dev up1
ip netns exec "$P2_NS" ip addr add 198.18.4.2/24 dev up1
hx ip link set up1 up
ip netns exec "$P2_NS" ip link set up1 up
FASTPATH=on write_config "$WORKDIR/two.conf" "inbound = { interfaces = [ \"veth0\", \"up1\" ]; };
$RULES"
check "[two] ipmodd starts with inbound = veth0, up1" start_ipmodd "$WORKDIR/two.conf"
for i in $(seq 50); do [ "$(status_key inbound-tuns)" = tun0i0,tun0i1 ] && break; sleep 0.1; done
check_eq "[two] two inbound tuns, one inbound fast path" \
	"$(status_key inbound-tuns) $(status_key fastpath-in)" "tun0i0,tun0i1 on"
handled0=$(status_key fastpath-in-handled)
rx0=$(status_key in-rx-packets)
nflog_start two "$HOST_NS" 5 "iifname up1 icmp type echo-request"
check "[two] the second peer pings the host" ip netns exec "$P2_NS" ping -c 3 -i 0.2 -W 2 198.18.4.1
check "[two] the first peer too" px ping -c 3 -i 0.2 -W 2 "$HOST4"
nflog_stop two
check_eq "[two] the second peer's echo requests arrived on up1 with TTL 50 (ttl-echo)" \
	"$(tcpdump -r "$WORKDIR/two.pcap" -n -v 2>/dev/null | grep -c 'ttl 50,')" 3
check_eq "[two] the kernel carried all 6 (fastpath-in-handled)" \
	"$(( $(status_key fastpath-in-handled) - handled0 ))" 6
check_eq "[two] ... and the daemon read none (in-rx-packets)" "$(( $(status_key in-rx-packets) - rx0 ))" 0
check_eq "[two] ttl-echo counted the 6" "$(rule_key ttl-echo packets)" 6
stop_ipmodd
check_eq "[two] ipmodd exits 0" "$?" 0

# --- (5) kill -9 with the inbound fast path on veth0's ingress ---------------------
# failure = "open": the tcx links go with the daemon, divert and its tail call
# with them (a tc filter would stay, find no tun and pass).  failure =
# "closed": the tc filter stays and drops, fast path or not: divert finds no
# tun before it would tail-call (and the prog array is flushed with the
# daemon's last reference to it).
ping_host() { px ping -c 3 -i 0.2 -W 1 "$HOST4" >/dev/null 2>&1; }
echo_requests() {
	hx nft list chain inet ipmodk9 pre | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}
hx nft -f - <<NFT
table inet ipmodk9 {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		ip saddr $PEER4 icmp type echo-request counter
	}
}
NFT
run on k9open
check_eq "[k9 open] the kernel carried the fixed traffic on veth0's ingress" "$IN_HANDLED:$TUN_DELTA" 32:4
kill -9 "$IPMODD_PID"
wait "$IPMODD_PID" 2>/dev/null
IPMODD_PID=""
e0=$(echo_requests)
check "[k9 open] kill -9 ($IN_ATTACH): the peer still pings the host" ping_host
check_eq "[k9 open] ... its echo requests reached the host's stack" $(( $(echo_requests) - e0 )) 3
hx "$IPMODD" -c "$WORKDIR/k9open.conf" --cleanup >/dev/null 2>&1

run on k9closed closed
check_eq "[k9 closed] tc filters, the kernel carried the fixed traffic" \
	"$IN_ATTACH:$IN_HANDLED:$TUN_DELTA" tc:32:4
kill -9 "$IPMODD_PID"
wait "$IPMODD_PID" 2>/dev/null
IPMODD_PID=""
e0=$(echo_requests)
check "[k9 closed] kill -9: the peer's pings fail" bash -c \
	"! ip netns exec '$PEER_NS' ping -c 2 -i 0.2 -W 1 '$HOST4' >/dev/null 2>&1"
check_eq "[k9 closed] ... dropped on veth0's ingress: none reached the host's stack" \
	$(( $(echo_requests) - e0 )) 0
hx "$IPMODD" -c "$WORKDIR/k9closed.conf" --unblock >/dev/null 2>&1
check_eq "[k9 closed] --unblock: no tc ingress filter left on veth0" \
	"$(hx tc filter show dev veth0 ingress)" ""
check "[k9 closed] ... and the peer pings the host again" ping_host
hx nft delete table inet ipmodk9

done_testing
