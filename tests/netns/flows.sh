#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemon's flow table (issue 14).  The host runs ipmodd with
# inbound = { interfaces = [ "veth0" ]; }, so both directions of a
# connection go through the chain, and one rule
#   direction=both proto=tcp flow-packets=1-3 set-dscp=cs1
# With fastpath = "off", then "on" (skipped where there is none):
#  - a 5 MB download host <- peer (curl, python's http.server; TSO/GSO off on
#    the peer, GRO off on the host, so that a segment is a packet): in a
#    capture at the peer exactly the first 3 packets host -> peer carry CS1;
#    in an NFLOG capture of what the host receives (its prerouting: after
#    the daemon's re-injection, or after the fast path on veth0's ingress)
#    exactly the first 3 packets peer -> host do; the data is byte-exact; with the fast
#    path on, the kernel counts each flow's packets and carries them on past
#    position 3 (fastpath*-flow-passed), the daemon reads only a handful;
#  - status has flows-* counters, and "ipmodctl flows" (text and --json, with
#    filters) lists the connection with the peer's segments on its reply side.
#  - the same over IPv6 with the fast path on (python's http.server on the
#    peer's v6 address): the first 3 packets host -> peer carry CS1 in the
#    traffic class, no later one; the kernel carries the rest, the daemon
#    reads only a handful of each direction.
# Then a flood: flows.max = 1024 and 20,000 UDP flows (one datagram each,
# python, host -> peer, about 5 s): flows-evicted counts them, flows-entries
# stays at the bound, the daemon's VmRSS after the second half is within
# 1 MiB of the first half's, every datagram reached the peer (nftables
# counter there) and a download still works.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd python3 curl nft tshark tcpdump ethtool sha256sum
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
"$IPMODD" --version >/dev/null || skip_all "no ipmodd"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { hx "$IPMODCTL" -s "$SOCK" "$@"; }
HTTP_PORT=8080
INTUN=tun0i0
INBOUND='inbound = { interfaces = [ "veth0" ]; };'
RULES='rules = (
	{ name = "first3"; direction = "both"; proto = "tcp"; flow-packets = "1-3"; set-dscp = "cs1"; }
);'

mkdir -p "$WORKDIR/www"
head -c $((5 << 20)) /dev/urandom >"$WORKDIR/www/blob"
BLOB_SHA=$(sha256sum <"$WORKDIR/www/blob" | cut -d' ' -f1)
bg "$PEER_NS" python3 -m http.server "$HTTP_PORT" --bind 0.0.0.0 --directory "$WORKDIR/www" \
	>"$WORKDIR/http.log" 2>&1
for _ in $(seq 100); do
	px ss -ltn 2>/dev/null | grep -q ":$HTTP_PORT " && break
	sleep 0.05
done

# download TAG: the blob by curl in the host from a fixed local port; prints its sha256.
download() {
	hx timeout 60 curl -s --local-port "$2" -o "$WORKDIR/got-$1" "http://$PEER4:$HTTP_PORT/blob"
	sha256sum <"$WORKDIR/got-$1" 2>/dev/null | cut -d' ' -f1
	rm -f "$WORKDIR/got-$1"
}

# dscp_seq PCAP FILTER [FIELD]: the DSCP (FIELD: ip.dsfield.dscp) of each TCP
# packet FILTER matches, one a line, in the order its sender sent them: by
# relative sequence number, then acknowledgement, then length (SYN, its ACK,
# the request; data in sequence order).  Not in capture order: where the
# daemon hands a flow back to the fast path, packet 4 (the kernel's) may
# overtake packet 3 (the daemon's), as in any split of a flow between two
# paths (ipmodd.conf(5), FLOWS); which packets carry CS1 is what counts.
dscp_seq() {
	tshark -r "$1" -Y "$2" -T fields -E separator=, -e tcp.seq -e tcp.ack -e tcp.len \
		-e "${3:-ip.dsfield.dscp}" 2>/dev/null | sort -s -t, -k1,1n -k2,2n -k3,3n | cut -d, -f4
}

# first3 SEQFILE: "ok" when exactly 3 lines are 8, all among the first 5, and
# every other is 0.  The file is in the sender's order; the daemon counts in
# the order packets reach it, and two packets sent back to back from two CPUs
# may reach it swapped (CI: the 3rd and 4th, "8 8 0 8 0").
first3() {
	awk '$1 == 8 { n++; if (NR > 5) bad = 1; next } $1 != 0 { bad = 1 }
	     END { if (NR < 10 || n != 3) bad = 1
		   print bad ? "bad (" NR " packets, " n + 0 " with CS1)" : "ok" }' "$1"
}

start_with() {
	FASTPATH=$1 write_config "$WORKDIR/$1.conf" "$INBOUND
${2:-}
$RULES"
	: >"$WORKDIR/ipmodd.log"
	start_ipmodd "$WORKDIR/$1.conf" || return 1
	for _ in $(seq 100); do
		hx test -e "/sys/class/net/$INTUN" && return 0
		sleep 0.05
	done
	return 1
}

# first_packets MODE PORT
first_packets() {
	local m=$1 port=$2
	px ethtool -K veth0 tso off gso off >/dev/null 2>&1
	hx ethtool -K veth0 gro off >/dev/null 2>&1
	pcap_start "out$m" "$PEER_NS" veth0 -s 128 "tcp port $HTTP_PORT"
	NFLOG_SNAPLEN=128 nflog_start "in$m" "$HOST_NS" 6 "tcp sport $HTTP_PORT"
	check_eq "[$m] 5 MB download peer -> host: sha256 equal" "$(download "$m" "$port")" "$BLOB_SHA"
	pcap_stop "out$m"
	nflog_stop "in$m"
	dscp_seq "$WORKDIR/out$m.pcap" "ip.src == $HOST4 && tcp.srcport == $port" >"$WORKDIR/out$m.seq"
	dscp_seq "$WORKDIR/in$m.pcap" "ip.src == $PEER4 && tcp.dstport == $port" >"$WORKDIR/in$m.seq"
	n=$(dscp_seq "$WORKDIR/out$m.pcap" "ip.src == $PEER4 && tcp.dstport == $port" | wc -l)
	diag "[$m] host -> peer: $(wc -l <"$WORKDIR/out$m.seq") packets, DSCP $(head -5 "$WORKDIR/out$m.seq" | tr '\n' ' ')..." \
		"[$m] peer -> host (as received): $(wc -l <"$WORKDIR/in$m.seq") of the $n the peer sent, DSCP $(head -5 "$WORKDIR/in$m.seq" | tr '\n' ' ')..."
	check_eq "[$m] host -> peer, captured at the peer: exactly 3 packets carry CS1, among the first 5" \
		"$(first3 "$WORKDIR/out$m.seq")" ok
	check_eq "[$m] peer -> host, as the host received them: exactly 3 packets carry CS1, among the first 5" \
		"$(first3 "$WORKDIR/in$m.seq")" ok
	check "[$m] the peer sent thousands of segments ($n)" test "$n" -ge 3000
	check_eq "[$m] ... and every one reached the host's prerouting, once" "$(wc -l <"$WORKDIR/in$m.seq")" "$n"
	rx=$(status_field rx-packets)
	inrx=$(status_field in-rx-packets)
	diag "[$m] the daemon read $rx outbound and $inrx inbound packets"
	if [ "$m" = on ]; then
		# The kernel counts each flow's packets: past position 3 it carries them on.
		# The packets that reach the kernel while the daemon decides the flow are
		# punted too (15 under ASan in one CI run): both bounds below are the same
		# handful of 20.
		diag "[$m] fastpath: handled $(status_field fastpath-handled) punted $(status_field fastpath-punted) flow-punted $(status_field fastpath-flow-punted) flow-passed $(status_field fastpath-flow-passed);" \
			"fastpath-in: handled $(status_field fastpath-in-handled) punted $(status_field fastpath-in-punted) flow-punted $(status_field fastpath-in-flow-punted) flow-passed $(status_field fastpath-in-flow-passed)"
		check "[$m] the inbound fast path carried the peer's packets past position 3 ($(status_field fastpath-in-flow-passed) of $n)" \
			test "$(status_field fastpath-in-flow-passed)" -ge $((n - 20))
		check "[$m] the outbound fast path carried the host's packets past position 3 ($(status_field fastpath-flow-passed) of $(wc -l <"$WORKDIR/out$m.seq"))" \
			test "$(status_field fastpath-flow-passed)" -ge $(($(wc -l <"$WORKDIR/out$m.seq") - 20))
		check "[$m] the daemon read only a handful of the transfer's packets ($inrx in, $rx out; $n sent)" \
			test "$inrx" -le 20 -a "$rx" -le 20
	else
		check "[$m] every packet went through the daemon ($inrx)" test "$inrx" -ge "$n"
	fi
	px ethtool -K veth0 tso on gso on >/dev/null 2>&1
	hx ethtool -K veth0 gro on >/dev/null 2>&1
}

# --- (1) the first packets of each direction, fastpath off and on -------------
for m in off on; do
	if ! start_with $m; then
		if [ $m = on ]; then
			ok "# SKIP fastpath = on: $(tail -1 "$WORKDIR/ipmodd.log")"
			continue
		fi
		not_ok "[$m] ipmodd starts"
		diag "$(tail -5 "$WORKDIR/ipmodd.log")"
		continue
	fi
	ok "[$m] ipmodd starts with inbound = veth0 and a flow-packets rule"
	port=$([ $m = off ] && echo 41001 || echo 41002)
	first_packets $m $port
	check "[$m] status: flows-created counts the connection ($(status_field flows-created))" \
		test "$(status_field flows-created)" -ge 1
	check_eq "[$m] status: flows-max is the default" "$(status_field flows-max)" 262144
	diag "[$m] VmRSS with the default table (262,144 entries): $(awk '/^VmRSS:/ { print $2 }' "/proc/$IPMODD_PID/status") kB"
	out=$(ctl flows proto=tcp port=$port)
	diag "[$m] ipmodctl flows proto=tcp port=$port:" "$out"
	# With the fast path on the daemon sees only the packets the kernel handed up.
	if [ "$m" = off ]; then
		orig=$(wc -l <"$WORKDIR/out$m.seq")
		reply=$n
	else
		orig='[0-9]*'
		reply='[0-9]*'
	fi
	check "[$m] ipmodctl flows lists the connection, opened by the host, with the packets it saw each way" \
		grep -q "^tcp $HOST4:$port -> $PEER4:$HTTP_PORT .* orig $orig/[0-9]* reply $reply/" <<<"$out"
	got=$(ctl --json flows proto=tcp port=$port | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(len(d["flows"]), d["listed"], d["flows"][0]["src"], d["flows"][0]["reply-packets"])')
	if [ "$m" = off ]; then
		check_eq "[$m] ... --json: its reply-packets are the segments the peer sent" "$got" "1 1 $HOST4 $n"
	else
		set -- $got
		check "[$m] ... --json: one flow from the host, the daemon saw a handful of the peer's segments ($got)" \
			test "$1 $2 $3" = "1 1 $HOST4" -a "${4:-0}" -ge 3 -a "${4:-0}" -le 20
	fi
	check_eq "[$m] a filter nothing matches lists none" \
		"$(ctl --json flows proto=udp port=$port | python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d["flows"]), d["listed"])')" "0 0"
	check "[$m] an unknown filter is refused" eval "! ctl flows color=red 2>/dev/null"
	if python3 -c 'import jsonschema' 2>/dev/null; then
		ctl --json flows >"$WORKDIR/flows.json"
		check "[$m] flows --json follows doc/ipmodctl.schema.json" python3 -c '
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
schema = {k: v for k, v in schema.items() if k != "oneOf"}
jsonschema.validate(json.load(open(sys.argv[2])), {**schema, "$ref": "#/$defs/flows"})' \
			"$SRCDIR/doc/ipmodctl.schema.json" "$WORKDIR/flows.json"
	fi
	stop_ipmodd
	check_eq "[$m] ipmodd exits 0" "$?" 0
done

# --- (1b) the same over IPv6, fastpath on --------------------------------------
# The kernel's flow key for IPv6 and its position count: the first 3 packets
# of the host's direction carry CS1 (the traffic class), no later one.
HTTP6_PORT=8086
bg "$PEER_NS" python3 -m http.server "$HTTP6_PORT" --bind "$PEER6" --directory "$WORKDIR/www" \
	>"$WORKDIR/http6.log" 2>&1
wait_for 5 eval "px ss -ltn | grep -q ':$HTTP6_PORT '"
if start_with on; then
	ok "[v6] ipmodd starts with fastpath = on, inbound = veth0 and a flow-packets rule"
	port=41004
	px ethtool -K veth0 tso off gso off >/dev/null 2>&1
	hx ethtool -K veth0 gro off >/dev/null 2>&1
	pcap_start out6 "$PEER_NS" veth0 -s 128 "tcp port $HTTP6_PORT"
	r=$(hx timeout 60 curl -s --local-port "$port" -o "$WORKDIR/got-v6" "http://[$PEER6]:$HTTP6_PORT/blob"
	    sha256sum <"$WORKDIR/got-v6" 2>/dev/null | cut -d' ' -f1)
	pcap_stop out6
	px ethtool -K veth0 tso on gso on >/dev/null 2>&1
	hx ethtool -K veth0 gro on >/dev/null 2>&1
	check_eq "[v6] 5 MB download peer -> host over IPv6: sha256 equal" "$r" "$BLOB_SHA"
	dscp_seq "$WORKDIR/out6.pcap" "ipv6.src == $HOST6 && tcp.srcport == $port" ipv6.tclass.dscp \
		>"$WORKDIR/out6.seq"
	diag "[v6] host -> peer: $(wc -l <"$WORKDIR/out6.seq") packets, DSCP $(head -5 "$WORKDIR/out6.seq" | tr '\n' ' ')...;" \
		"the daemon read $(status_field rx-packets) outbound, $(status_field in-rx-packets) inbound;" \
		"fastpath-flow-passed $(status_field fastpath-flow-passed) fastpath-in-flow-passed $(status_field fastpath-in-flow-passed)"
	check_eq "[v6] host -> peer, captured at the peer: exactly 3 packets carry CS1, among the first 5" \
		"$(first3 "$WORKDIR/out6.seq")" ok
	check "[v6] the outbound fast path carried the host's packets past position 3 ($(status_field fastpath-flow-passed) of $(wc -l <"$WORKDIR/out6.seq"))" \
		test "$(status_field fastpath-flow-passed)" -ge $(($(wc -l <"$WORKDIR/out6.seq") - 20))
	check "[v6] the daemon read only a handful of the host's packets ($(status_field rx-packets))" \
		test "$(status_field rx-packets)" -le 20
	check "[v6] ... and only a handful of the peer's ($(status_field in-rx-packets))" \
		test "$(status_field in-rx-packets)" -le 20
	stop_ipmodd
	check_eq "[v6] ipmodd exits 0" "$?" 0
else
	ok "# SKIP [v6] fastpath = on: $(tail -1 "$WORKDIR/ipmodd.log")"
fi

# --- (2) a flood of new flows at the table's bound -----------------------------
px nft -f - <<'NFT'
table inet flood {
	counter got { }
	chain input {
		type filter hook input priority 0; policy accept;
		udp dport 10000-29999 counter name "got"
	}
}
NFT
if start_with off 'flows = { max = 1024; };'; then
	ok "[flood] ipmodd starts with flows.max = 1024"
else
	not_ok "[flood] ipmodd starts with flows.max = 1024"
	diag "$(tail -5 "$WORKDIR/ipmodd.log")"
fi
check_eq "[flood] status flows-max 1024" "$(status_field flows-max)" 1024
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$IPMODD_PID/status"; }
# flood FIRST N: N datagrams host -> peer to ports FIRST.., each its own flow, in ~2.5 s.
flood() {
	hx python3 -c '
import socket, sys, time
first, n = int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t0 = time.time()
for i in range(n):
    s.sendto(b"flood %d" % i, (sys.argv[1], first + i))
    if i % 100 == 99:
        # paced: 100 datagrams every 12.5 ms
        d = t0 + (i + 1) * 0.000125 - time.time()
        if d > 0:
            time.sleep(d)
' "$PEER4" "$1" "$2"
}
flood 10000 10000
sleep 0.5
rss1=$(rss)
ev1=$(status_field flows-evicted)
flood 20000 10000
sleep 0.5
rss2=$(rss)
ev2=$(status_field flows-evicted)
diag "[flood] VmRSS ${rss1} kB after 10,000 flows, ${rss2} kB after 20,000; flows-evicted $ev1, $ev2"
check "[flood] flows-evicted counts the flows pushed out (>= 18,000: $ev2)" test "${ev2:-0}" -ge 18000
check "[flood] ... in both halves ($ev1 then $ev2)" test "${ev1:-0}" -ge 8000 -a "${ev2:-0}" -ge $((ev1 + 9000))
check_eq "[flood] flows-entries stays at the bound" "$(status_field flows-entries)" 1024
check "[flood] VmRSS flat between the halves (${rss1} -> ${rss2} kB, within 1024)" \
	test "$((rss2 - rss1))" -le 1024 -a "$((rss1 - rss2))" -le 1024
got=$(px nft list counter inet flood got | sed -n 's/.*packets \([0-9]*\).*/\1/p')
check_eq "[flood] every datagram reached the peer" "$got" 20000
check_eq "[flood] a download still works" "$(download flood 41003)" "$BLOB_SHA"
stop_ipmodd
check_eq "[flood] ipmodd exits 0" "$?" 0

done_testing
