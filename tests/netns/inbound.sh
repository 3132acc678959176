#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Inbound diversion (issue 13): the host runs ipmodd with
# inbound = { interfaces = [ "veth0" ]; } and the peer namespace sends to it.
# IPv4 and IPv6 each:
#  - peer -> host ping, UDP (1000 numbered datagrams) and a 20 MB TCP download
#    by curl from a server in the peer, through direction=in set-dscp rules:
#    the data is byte-exact, the host's nftables input rules on
#    iifname "veth0" see the rewritten DSCP, and every rule's counter equals
#    the packets the peer sent (TCP: its segments counted by a capture on the
#    peer's veth, with the peer's TSO/GSO off so a segment is a packet, less
#    those the host's kernel counted as dropped before the daemon; then once
#    more with them on, GSO super-packets, byte-exact);
#  - direction=in delay=50 on ICMP raises the RTT of the host's pings by
#    50 ms (+-5), only the replies delayed; direction=both delay=25 also 50;
#  - direction=in set-ttl=7: a UDP socket on the host reads TTL (hop limit) 7;
#  - direction=in proto=tcp tcp-flags=rst verdict=drop: the RST of a peer that
#    aborts its connection never reaches the host's socket (without the rule
#    it does: ECONNRESET);
#  - direction=in reject answers the peer (forged RST, port unreachable),
#    clamp-mss rewrites the SYN-ACKs coming in;
#  - broadcast and multicast are not diverted (the host gets them, the rule
#    does not count them);
#  - fastpath = "off" and "on" give the same results and per-rule counters
#    (all of the above runs in both).
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping python3 tcpdump curl nft ethtool sha256sum
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
"$IPMODD" --version >/dev/null || skip_all "no ipmodd"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
HELPER=$SRCDIR/tests/netns/inbound.py
ctl() { hx "$IPMODCTL" -s "$SOCK" "$@"; }
rtts() { sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fcmp() { awk "BEGIN { exit !($1) }"; }
# "name packets bytes" per rule, in chain order.
rule_counts() {
	ctl --json rules | python3 -c '
import json, sys
for r in json.load(sys.stdin)["rules"]:
    print(r["name"], r["packets"], r["bytes"])'
}

UDP_N=1000
HTTP_PORT=8080
INTUN=tun0i0

RULES='rules = (
	{ name = "tcp4"; direction = "in"; family = "ip"; proto = "tcp"; sport = 8080; set-dscp = 10; set-ttl = 33; },
	{ name = "tcp6"; direction = "in"; family = "ip6"; proto = "tcp"; sport = 8080; set-dscp = 10; set-ttl = 33; },
	{ name = "udp4"; direction = "in"; family = "ip"; proto = "udp"; dport = 9001; set-dscp = 10; },
	{ name = "udp6"; direction = "in"; family = "ip6"; proto = "udp"; dport = 9001; set-dscp = 10; },
	{ name = "ping4"; direction = "in"; proto = "icmp"; icmp-type = "echo-request"; set-dscp = 10; },
	{ name = "ping6"; direction = "in"; proto = "icmpv6"; icmp-type = "echo-request"; set-dscp = 10; },
	{ name = "ping-both"; direction = "both"; proto = "icmp"; set-ecn = 1; },
	{ name = "ttl"; direction = "in"; proto = "udp"; dport = 9100; set-ttl = 7; },
	{ name = "rst-drop"; direction = "in"; proto = "tcp"; tcp-flags = "rst"; verdict = "drop"; }
);'
INBOUND='inbound = { interfaces = [ "veth0" ]; };'

# The host's view after the daemon: nftables input counters on iifname "veth0"
# for packets carrying the DSCP the rules set.
nft_setup() {
	hx nft delete table inet intest 2>/dev/null
	hx nft -f - <<'NFT'
table inet intest {
	counter tcp4 { }
	counter tcp6 { }
	counter udp4 { }
	counter udp6 { }
	counter ping4 { }
	counter ping6 { }
	counter tcpttl { }
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "veth0" ip dscp 10 tcp sport 8080 counter name "tcp4"
		iifname "veth0" ip6 dscp 10 tcp sport 8080 counter name "tcp6"
		iifname "veth0" ip dscp 10 udp dport 9001 counter name "udp4"
		iifname "veth0" ip6 dscp 10 udp dport 9001 counter name "udp6"
		iifname "veth0" ip dscp 10 icmp type echo-request counter name "ping4"
		iifname "veth0" ip6 dscp 10 icmpv6 type echo-request counter name "ping6"
		iifname "veth0" tcp sport 8080 ip ttl != 33 counter name "tcpttl"
		iifname "veth0" tcp sport 8080 ip6 hoplimit != 33 counter name "tcpttl"
	}
}
NFT
}
nft_counter() {
	hx nft list counter inet intest "$1" 2>/dev/null | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

# start_inbound MODE: ipmodd with the rules, fastpath = MODE, and the inbound
# tun up.  Fails (with the log in the TAP diagnostics) when ipmodd refuses.
start_inbound() {
	FASTPATH=$1 write_config "$WORKDIR/$1.conf" "$INBOUND
$RULES"
	: >"$WORKDIR/ipmodd.log"
	start_ipmodd "$WORKDIR/$1.conf" || return 1
	for _ in $(seq 100); do
		hx test -e "/sys/class/net/$INTUN" && return 0
		sleep 0.05
	done
	diag "no inbound tun $INTUN:" "$(tail -5 "$WORKDIR/ipmodd.log")"
	return 1
}

# drops IFACE rx|tx: the host's drop counter of an interface.
drops() {
	hx cat "/sys/class/net/$1/statistics/$2_dropped" 2>/dev/null || echo 0
}

# Waits for a helper's ready file.
wait_ready() {
	for _ in $(seq 100); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# udp_run FAMILY ADDR PORT N: N datagrams peer -> host; prints the receiver's line.
udp_run() {
	local out=$WORKDIR/recv-$1-$3.out rdy=$WORKDIR/recv-$1-$3.ready pid
	rm -f "$rdy"
	ip netns exec "$HOST_NS" python3 "$HELPER" recv "$1" "$3" "$4" "$rdy" >"$out" 2>&1 &
	pid=$!
	wait_ready "$rdy"
	px python3 "$HELPER" send "$1" "$2" "$3" "$4" >/dev/null
	wait "$pid"
	cat "$out"
}

# The web server in the peer, serving a 20 MB file of random bytes.
mkdir -p "$WORKDIR/www"
head -c $((20 << 20)) /dev/urandom >"$WORKDIR/www/blob"
BLOB_SHA=$(sha256sum <"$WORKDIR/www/blob" | cut -d' ' -f1)
bg "$PEER_NS" python3 -m http.server "$HTTP_PORT" --bind :: --directory "$WORKDIR/www" \
	>"$WORKDIR/http.log" 2>&1
for _ in $(seq 100); do
	px ss -ltn 2>/dev/null | grep -q ":$HTTP_PORT " && break
	sleep 0.05
done

# download FAMILY TAG: the blob by curl in the host; prints its sha256.
download() {
	local url
	if [ "$1" = 6 ]; then url="http://[$PEER6]:$HTTP_PORT/blob"; else url="http://$PEER4:$HTTP_PORT/blob"; fi
	hx timeout 60 curl -g -s -o "$WORKDIR/got-$2" "$url"
	sha256sum <"$WORKDIR/got-$2" 2>/dev/null | cut -d' ' -f1
	rm -f "$WORKDIR/got-$2"
}

# traffic MODE: ping, UDP, TTL and the counted TCP downloads through a daemon
# with fastpath = MODE; leaves it running.  Files: $WORKDIR/MODE.*.
traffic() {
	local m=$1 f a r out n
	if start_inbound "$m"; then
		ok "[$m] ipmodd starts with inbound = veth0 (fastpath = $m)"
	else
		not_ok "[$m] ipmodd starts with inbound = veth0 (fastpath = $m)"
		stop_ipmodd
		return 1
	fi
	nft_setup
	for f in 4 6; do
		if [ $f = 4 ]; then a=$HOST4; else a=$HOST6; fi
		out=$(px ping -$f -q -c 20 -i 0.05 -W 2 "$a")
		check_eq "[$m] peer -> host ping -$f: 20 of 20 answered" \
			"$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")" 20
		check_eq "[$m] ping$f rule counted the 20 echo requests" "$(rule_counter ping$f packets)" 20
		[ $f = 4 ] && check_eq "[$m] the direction=both rule counted 20 requests in and 20 replies out" \
			"$(rule_counter ping-both packets)" 40
		check_eq "[$m] nft input on iifname veth0 saw 20 requests with DSCP 10 (v$f)" \
			"$(nft_counter ping$f)" 20

		r=$(udp_run $f "$a" 9001 "$UDP_N")
		check_eq "[$m] UDP v$f: $UDP_N of $UDP_N datagrams arrived byte-exact" "${r% ttl=*}" \
			"received=$UDP_N bad=0"
		check_eq "[$m] udp$f rule counted the $UDP_N datagrams sent" "$(rule_counter udp$f packets)" "$UDP_N"
		check_eq "[$m] nft input on iifname veth0 saw $UDP_N with DSCP 10 (v$f)" \
			"$(nft_counter udp$f)" "$UDP_N"

		r=$(udp_run $f "$a" 9100 5)
		check_eq "[$m] direction=in set-ttl=7: the host's socket reads TTL/hop limit 7 (v$f)" \
			"$r" "received=5 bad=0 ttl=7"
		r=$(udp_run $f "$a" 9101 5)
		check_eq "[$m] ... and 64 on a port the rule does not match (v$f)" "$r" "received=5 bad=0 ttl=64"
	done
	check_eq "[$m] the ttl rule counted the 10 datagrams" "$(rule_counter ttl packets)" 10
	local d0 lost

	# TCP, one segment a packet: TSO and GSO off on the peer's veth, GRO off
	# on the host's, so the capture on the peer, the rule and nftables count
	# the same units.
	px ethtool -K veth0 tso off gso off >/dev/null 2>&1
	hx ethtool -K veth0 gro off >/dev/null 2>&1
	for f in 4 6; do
		d0=$(($(drops $INTUN tx) + $(drops veth0 rx)))
		pcap_start "tcp$f$m" "$PEER_NS" veth0 -s 128 "ip$([ $f = 6 ] && echo 6) and tcp src port $HTTP_PORT"
		check_eq "[$m] 20 MB TCP download peer -> host (v$f): sha256 equal" "$(download $f "$m$f")" "$BLOB_SHA"
		pcap_stop "tcp$f$m"
		n=$(tcpdump -r "$WORKDIR/tcp$f$m.pcap" -n 2>/dev/null | wc -l)
		check "[$m] the capture on the peer lost nothing (v$f)" \
			grep -q '^0 packets dropped by kernel' "$WORKDIR/tcp$f$m.err"
		diag "[$m] v$f: the peer sent $n segments from port $HTTP_PORT"
		check "[$m] ... thousands of them (v$f: $n)" test "$n" -ge 14000
		# A segment the kernel dropped before the daemon (the inbound tun's
		# queue full, the veth's backlog) is sent again: the peer counts both.
		lost=$(($(drops $INTUN tx) + $(drops veth0 rx) - d0))
		r=$(rule_counter tcp$f packets)
		diag "[$m] v$f: the tcp$f rule counted $r, the kernel dropped $lost before the daemon"
		check_eq "[$m] tcp$f rule counted every segment the peer sent, less the $lost dropped before the daemon" \
			"$((r + lost))" "$n"
		check_eq "[$m] nft input on iifname veth0 saw them all with DSCP 10 (v$f)" "$(nft_counter tcp$f)" "$r"
	done
	px ethtool -K veth0 tso on gso on >/dev/null 2>&1
	hx ethtool -K veth0 gro on >/dev/null 2>&1
	rule_counts >"$WORKDIR/$m.rules"
	if [ "$m" = off ]; then
		# Everything above came in through the daemon and went on.
		r="$(status_field in-rx-packets) $(status_field in-tx-packets)"
		diag "[$m] status in-rx-packets in-tx-packets: $r"
		check "[$m] status counts the inbound packets read and written (>= $((2 * UDP_N + 60)) each)" \
			test "${r% *}" -ge $((2 * UDP_N + 60)) -a "${r#* }" -ge $((2 * UDP_N + 60))
	fi
	return 0
}

# rst_probe FAMILY ADDR PORT: the host's socket after the peer aborted; prints
# reset | eof | timeout | data.
rst_probe() {
	local rdy=$WORKDIR/rst-$1-$3.ready out=$WORKDIR/rst-$1-$3.out pid
	rm -f "$rdy"
	ip netns exec "$HOST_NS" python3 "$HELPER" rst-server "$1" "$3" "$rdy" >"$out" 2>&1 &
	pid=$!
	wait_ready "$rdy"
	px python3 "$HELPER" rst-client "$1" "$2" "$3" >/dev/null 2>&1
	wait "$pid"
	cat "$out"
}

# more MODE: TSO on, delay and RST through the running daemon.
more() {
	local m=$1 f a p before after base slow both
	# GSO super-packets from the peer (TSO on): still byte-exact, counted per segment.
	for f in 4 6; do
		before=$(rule_counter tcp$f packets)
		check_eq "[$m] 20 MB download with the peer's TSO on (v$f): sha256 equal" "$(download $f tso$f)" "$BLOB_SHA"
		after=$(rule_counter tcp$f packets)
		check "[$m] ... the tcp$f rule counted its segments ($before -> $after)" \
			test "$after" -ge $((before + 14000))
	done
	check_eq "[$m] every TCP packet from port 8080, super-packets too, reached the host with TTL/hop limit 33" \
		"$(nft_counter tcpttl)" 0

	# Delay: a ping from the host goes out untouched, its reply comes in delayed.
	for f in 4 6; do
		if [ $f = 4 ]; then a=$PEER4 p=icmp; else a=$PEER6 p=icmpv6; fi
		base=$(hx ping -$f -c 30 -i 0.02 -W 1 "$a" | rtts | median)
		check "[$m] ipmodctl add: direction=in delay=50 on $p" ctl add name=slow direction=in proto=$p delay=50
		slow=$(hx ping -$f -c 30 -i 0.02 -W 2 "$a" | rtts | median)
		diag "[$m] v$f: median RTT $base ms, with direction=in delay=50: $slow ms"
		check "[$m] direction=in delay=50 adds 50 +- 5 ms (v$f: $base -> $slow ms)" \
			fcmp "$slow - $base >= 45 && $slow - $base <= 55"
		# Only the 30 echo replies were delayed: the requests went out untouched.
		check_eq "[$m] ... the rule delayed the 30 replies, not the requests (v$f)" "$(rule_counter slow delayed)" 30
		check "[$m] ipmodctl del slow" ctl del slow
		check "[$m] ipmodctl add: direction=both delay=25 on $p" ctl add name=both direction=both proto=$p delay=25
		both=$(hx ping -$f -c 30 -i 0.02 -W 2 "$a" | rtts | median)
		diag "[$m] v$f: median RTT with direction=both delay=25: $both ms"
		check "[$m] direction=both delay=25 adds 50 +- 5 ms (v$f: $base -> $both ms)" \
			fcmp "$both - $base >= 45 && $both - $base <= 55"
		check_eq "[$m] ... the rule delayed the 30 requests and the 30 replies (v$f)" \
			"$(rule_counter both delayed)" 60
		check "[$m] ipmodctl del both" ctl del both
	done

	for f in 4 6; do
		if [ $f = 4 ]; then a=$HOST4; else a=$HOST6; fi
		before=$(rule_counter rst-drop packets)
		check_eq "[$m] the peer's RST never reaches the host's socket: recv times out (v$f)" \
			"$(rst_probe $f "$a" 920$f)" timeout
		after=$(rule_counter rst-drop packets)
		check "[$m] ... the rst-drop rule dropped it ($before -> $after)" test "$after" -gt "$before"
	done
	check "[$m] ipmodctl del rst-drop" ctl del rst-drop
	for f in 4 6; do
		if [ $f = 4 ]; then a=$HOST4; else a=$HOST6; fi
		check_eq "[$m] without the rule the RST resets the host's socket (v$f)" \
			"$(rst_probe $f "$a" 921$f)" reset
	done

	# reject (the forged answer goes back to the peer) and clamp-mss on the
	# SYN-ACK coming in; first without the rules, then with them.
	for f in 4 6; do
		if [ $f = 4 ]; then a=$HOST4 p=$PEER4; else a=$HOST6 p=$PEER6; fi
		check_eq "[$m] without rules the peer connects to the host's port 9301 (v$f)" \
			"$(px python3 "$HELPER" connect $f "$a" 9301 | cut -d= -f1)" maxseg
		check_eq "[$m] ... and its datagram to 9302 gets no answer (v$f)" \
			"$(px python3 "$HELPER" udp-probe $f "$a" 9302)" silent
		r=$(hx python3 "$HELPER" connect $f "$p" 9303)
		check "[$m] ... the host's MSS to the peer is above 1000 (v$f: $r)" test "${r#maxseg=}" -gt 1000
	done
	check "[$m] ipmodctl add: direction=in reject-with=tcp-reset" \
		ctl add name=rej direction=in proto=tcp dport=9301 verdict=reject reject-with=tcp-reset
	check "[$m] ipmodctl add: direction=in reject (port-unreachable)" \
		ctl add name=rejudp direction=in proto=udp dport=9302 verdict=reject
	check "[$m] ipmodctl add: direction=in clamp-mss=1000 on the SYN-ACKs" \
		ctl add name=mss direction=in proto=tcp sport=9303 tcp-flags=syn,ack clamp-mss=1000
	for f in 4 6; do
		if [ $f = 4 ]; then a=$HOST4 p=$PEER4; else a=$HOST6 p=$PEER6; fi
		check_eq "[$m] direction=in reject: the peer's connect is refused by the forged RST (v$f)" \
			"$(px python3 "$HELPER" connect $f "$a" 9301)" refused
		check_eq "[$m] direction=in reject: the peer's datagram gets the forged unreachable (v$f)" \
			"$(px python3 "$HELPER" udp-probe $f "$a" 9302)" refused
		r=$(hx python3 "$HELPER" connect $f "$p" 9303)
		check "[$m] direction=in clamp-mss=1000: the host's MSS to the peer is at most 1000 (v$f: $r)" \
			test "${r#maxseg=}" -le 1000
	done
	check_eq "[$m] the reject rules counted the SYN and the datagram of each family" \
		"$(rule_counter rej packets) $(rule_counter rejudp packets)" "2 2"
	check_eq "[$m] the clamp-mss rule counted the two SYN-ACKs" "$(rule_counter mss packets)" 2
	for r in rej rejudp mss; do
		ctl del $r >/dev/null
	done
}

# Listeners for the reject and clamp-mss parts (ended by the EXIT trap).
bg "$HOST_NS" python3 "$HELPER" listen 9301 600
bg "$HOST_NS" python3 "$HELPER" listen 9302 600
bg "$PEER_NS" python3 "$HELPER" listen 9303 600

# --- (1) userspace: data, counters, delay, TTL, RST ------------------------------
traffic off || { echo "Bail out! ipmodd did not start with an inbound interface"; exit 1; }
more off

# Broadcast and multicast are never diverted; unicast to the host is.
check "[off] ipmodctl add: direction=in udp dport=9500" ctl add name=bmu direction=in proto=udp dport=9500 set-dscp=10
rm -f "$WORKDIR/bmu.ready"
ip netns exec "$HOST_NS" python3 "$HELPER" mrecv 9500 239.1.2.3 "$HOST4" "$WORKDIR/bmu.ready" >"$WORKDIR/bmu.out" 2>&1 &
bmu_pid=$!
wait_ready "$WORKDIR/bmu.ready"
px python3 "$HELPER" msend 9500 198.18.0.255 239.1.2.3 "$PEER4" "$HOST4" 5
wait "$bmu_pid"
check_eq "[off] the host received 5 broadcast, 5 multicast and 5 unicast datagrams" \
	"$(cat "$WORKDIR/bmu.out")" "broadcast=5 multicast=5 unicast=5"
check_eq "[off] ... and only the unicast ones went through the daemon's rule" "$(rule_counter bmu packets)" 5
stop_ipmodd
check_eq "[off] ipmodd exits 0" "$?" 0

# --- (2) the fast path: the same results and counters ----------------------------
# fastpath = "on" refuses to start where the build or the kernel has no fast
# path; with it, status fastpath-in says whether the inbound rules have theirs.
if ! traffic on; then
	diag "$(tail -3 "$WORKDIR/ipmodd.log")"
elif [ "$(status_field fastpath-in)" != on ]; then
	ok "# SKIP inbound fast path: status fastpath-in=$(status_field fastpath-in) ($(status_field fastpath-in-reason))"
	stop_ipmodd
else
	check "per-rule packets and bytes are the same with fastpath off and on (UDP, ICMP, TTL)" \
		diff -u <(grep -E '^(udp|ping|ttl)' "$WORKDIR/off.rules") <(grep -E '^(udp|ping|ttl)' "$WORKDIR/on.rules")
	handled=$(status_field fastpath-in-handled)
	diag "[on] fastpath-in-handled=$handled fastpath-in-punted=$(status_field fastpath-in-punted)"
	# 2 x (20 pings + 1000 UDP + 10 TTL) at least, all of them rules the kernel can carry out.
	check "[on] the kernel carried the inbound packets out (fastpath-in-handled=$handled >= $((2 * (UDP_N + 25))))" \
		test "${handled:-0}" -ge $((2 * (UDP_N + 25)))
	more on
		stop_ipmodd
	check_eq "[on] ipmodd exits 0" "$?" 0
fi

done_testing
