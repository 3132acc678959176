#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Loops and MTU: a route in main that sends written-back packets into tun0
# again makes each packet come back once, and no more (counted as loops,
# dropped, no storm, little CPU); path-MTU discovery works through the daemon
# (ICMP fragmentation-needed and ICMPv6 packet-too-big reach the sender, TCP
# adapts, transfers arrive byte-exact); packets larger than tun0's MTU are
# fragmented before it and arrive.
. "$(dirname "$0")/lib.sh"
# The daemon's loop guard and MTU handling, proved by tun0's counters; the
# eBPF fast path's part of a loop is checked in fastpath.sh.
FASTPATH=off

require_root
require_cmd ping python3 socat sha256sum timeout
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }
setup_far || { echo "Bail out! cannot reach the far namespace"; exit 1; }
fx() { ip netns exec "$FAR_NS" "$@"; }

CONF=$WORKDIR/ipmodd.conf
write_config "$CONF"
LOG=$WORKDIR/ipmodd.log

status_of() {
	"$IPMODCTL" -s "$WORKDIR/control.sock" --json status |
		python3 -c "import json, sys; print(json.load(sys.stdin).get('$1', ''))"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$IPMODD_PID/stat"; }
now_ms() { date +%s%3N; }
# ICMP errors about the path MTU the host received: fragmentation-needed is
# counted among IPv4's destination-unreachables, packet-too-big on its own.
icmp_mtu_errors() {
	if [ "$1" = 4 ]; then
		hx awk '$1 == "Icmp:" && !n++ { for (i = 2; i <= NF; i++) k[i] = $i; next }
			$1 == "Icmp:" { for (i = 2; i <= NF; i++) if (k[i] == "InDestUnreachs") print $i }' /proc/net/snmp
	else
		hx awk '$1 == "Icmp6InPktTooBigs" { print $2 }' /proc/net/snmp6
	fi
}

# --- the rule order is checked at start ----------------------------------------
hx ip -6 rule add pref 100 lookup "$TABLE"
out=$(hx "$IPMODD" -c "$CONF" 2>&1)
check_eq "a rule looking up table $TABLE before the bypass: start refused" "$?" 1
check "... with the culprit named ($out)" grep -q "rule 'from all lookup $TABLE pref 100' (IPv6) comes before the bypass" <<<"$out"
hx ip -6 rule del pref 100 lookup "$TABLE"
check_eq "... and nothing of ours left behind" "$(our_state)" ""

check "ipmodd starts" start_ipmodd "$CONF"

# --- a deliberate loop ---------------------------------------------------------
hx ip route add 198.18.9.0/24 dev tun0
hx ip -6 route add 2001:db8:9::/64 dev tun0
for fam in 4 6; do
	if [ $fam = 4 ]; then dst=198.18.9.1; else dst=2001:db8:9::1; fi
	loops0=$(status_of loops)
	tx0=$(tun_tx_packets)
	rx0=$(status_of rx-packets)
	cpu0=$(cpu_ticks)
	hx ping -$fam -c 10 -i 0.2 -W 1 "$dst" >/dev/null 2>&1
	sleep 0.3
	loops=$(($(status_of loops) - loops0))
	tx=$(($(tun_tx_packets) - tx0))
	rx=$(($(status_of rx-packets) - rx0))
	cpu=$(($(cpu_ticks) - cpu0))
	check_eq "IPv$fam loop: each of 10 echo requests came back once, counted as a loop" "$loops" 10
	check "... no storm: $tx packets on tun0 in 2 s (each request and its one return)" \
		test "$tx" -ge 20 -a "$tx" -le 24
	check_eq "... the daemon read exactly those" "$rx" "$tx"
	check "... and spent $cpu ticks of CPU on them" test "$cpu" -le 10
done
t=$(now_ms)
"$IPMODCTL" -s "$WORKDIR/control.sock" status >/dev/null
check "the daemon answers ($(($(now_ms) - t)) ms)" test $(($(now_ms) - t)) -lt 1000
check "the loop is logged, rate-limited ($(grep -c 'came back' "$LOG") lines)" \
	test "$(grep -c 'came back' "$LOG")" -ge 1 -a "$(grep -c 'came back' "$LOG")" -le 5
diag "$(grep -m1 'came back' "$LOG")"
hx ip route del 198.18.9.0/24 dev tun0
hx ip -6 route del 2001:db8:9::/64 dev tun0
check "traffic elsewhere is unaffected" hx ping -q -c 2 -i 0.2 -W 1 "$PEER4"

# --- the same link-local packet twice is the host's, not a loop -----------------
# As the kernel's own MLD reports on tun0 (the same bytes, moments apart):
# two equal packets to ff02::1 out of tun0 (it has no address of its own: a
# raw socket bound to the host's), back to back.  The kernel never forwards
# them, so neither can have come back.
loops0=$(status_of loops)
rx0=$(status_of rx-packets)
tx0=$(status_of tx-packets)
hx python3 - "$HOST6" <<'PYEOF'
import socket, struct, sys
src, dst = socket.inet_pton(socket.AF_INET6, sys.argv[1]), socket.inet_pton(socket.AF_INET6, "ff02::1")
udp = struct.pack("!HHHH", 40999, 9999, 13, 0) + b"twice"
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.bind((sys.argv[1], 0))
pkt = struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 1, src, dst) + udp
for _ in range(2):
    s.sendto(pkt, ("ff02::1", 0, 0, socket.if_nametoindex("tun0")))
PYEOF
sleep 0.3
check_eq "two equal packets to ff02::1 out of tun0: read and written back, neither a loop" \
	"$(($(status_of rx-packets) - rx0)) $(($(status_of tx-packets) - tx0)) $(($(status_of loops) - loops0))" "2 2 0"

# --- path MTU: the peer's link to far carries 1280 bytes ------------------------
# On the peer's side only: veth drops what exceeds the receiver's MTU, so far
# still sends up to 1500 bytes but the host's packets meet a 1280-byte hop
# with a router in front of it (fragmentation-needed, packet-too-big).
px ip link set veth1 mtu 1280
head -c 4000000 /dev/urandom >"$WORKDIR/blob"
for fam in 4 6; do
	if [ $fam = 4 ]; then dst=$FAR4; udst=$FAR4; else dst=$FAR6; udst="[$FAR6]"; fi
	rm -f "$WORKDIR/recv$fam"
	ip netns exec "$FAR_NS" timeout 30 socat -u "TCP$fam-LISTEN:5001,reuseaddr" \
		"OPEN:$WORKDIR/recv$fam,creat" &
	srv=$!
	sleep 0.3
	# Segments the daemon read: with offload, tun0 counts super-packets.
	rx0=$(status_of rx-packets)
	icmp0=$(icmp_mtu_errors $fam)
	t0=$(now_ms)
	hx timeout 25 socat -u "FILE:$WORKDIR/blob" "TCP$fam:$udst:5001"
	wait $srv
	tx=$(($(status_of rx-packets) - rx0))
	check_eq "IPv$fam: 4 MB over TCP through a 1280-byte hop arrive byte-exact ($(($(now_ms) - t0)) ms)" \
		"$(sha256sum <"$WORKDIR/recv$fam" | cut -d' ' -f1)" "$(sha256sum <"$WORKDIR/blob" | cut -d' ' -f1)"
	check "... through tun0 ($tx packets)" test "$tx" -ge 2000
	icmp=$(($(icmp_mtu_errors $fam) - icmp0))
	check "... after the peer's ICMP errors reached the host ($icmp)" test "$icmp" -ge 1
	check "... and it learnt the path MTU ($(hx ip -$fam route get "$dst" | grep -o 'mtu [0-9]*'))" \
		bash -c "ip netns exec $HOST_NS ip -$fam route get $dst | grep -q 'mtu 1280'"

	hx ip -$fam route flush cache 2>/dev/null
	out=$(hx ping -$fam -c 3 -i 0.3 -W 1 -M do -s 1400 "$dst" 2>&1)
	check "IPv$fam: ping -M do -s 1400 is told of the 1280-byte hop" \
		grep -qiE 'frag needed|packet too big|message too long' <<<"$out"
	diag "$(grep -iE -m2 'frag needed|packet too big|message too long' <<<"$out")"
done

# --- larger than tun0's MTU: fragmented before tun0, through the daemon -----------
ip netns exec "$FAR_NS" ip link set veth1 mtu 1280
for fam in 4 6; do
	if [ $fam = 4 ]; then dst=$FAR4; else dst=$FAR6; fi
	tx0=$(tun_tx_packets)
	out=$(hx ping -$fam -c 3 -i 0.3 -W 2 -M dont -s 2000 "$dst" 2>&1)
	tx=$(($(tun_tx_packets) - tx0))
	check "IPv$fam: ping -s 2000 (above tun0's MTU of 1500) is fragmented and answered" \
		grep -q ' 3 received' <<<"$out"
	diag "$(grep 'received' <<<"$out")"
	check "... its fragments went through tun0 ($tx packets for 3 requests)" test "$tx" -ge 6
done
px ip link set veth1 mtu 1500
ip netns exec "$FAR_NS" ip link set veth1 mtu 1500

check_eq "no write errors" "$(status_of write-errors)" 0
stop_ipmodd TERM
check_eq "SIGTERM exits 0" "$?" 0
check_eq "nothing of ours is left" "$(our_state)" ""

done_testing
