#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Re-injection (routing.reinject): with a firewall whose forward chain drops
# (an nftables chain with "policy drop", then iptables-nft's FORWARD DROP)
# in the host namespace, the host's own traffic still flows through ipmodd,
# fast path on and off: ping and ping -6 on-link and through a gateway, 2 MB
# of TCP each way per family byte-exact, TTL and hop limit on the wire 64
# without a rule and 33 with set-ttl = 33, GSO leaving as frames of at most
# 1514 bytes with valid checksums.  With reinject = "forward" the same
# firewall drops it all (and the status says forward).  The host as a router
# (a LAN client, global forwarding on, the peer routing back to the LAN)
# keeps the kernel's forwarding, with the program and without: the client
# reaches the peer, set-ttl lands, and the forward chain still decides.
# With the fast path on, the host's own packets leave straight from the
# tun's egress (the fast path's tail call into the re-injection program,
# reinject-direct), none through the tun's ingress; the LAN's do not.  A burst
# of the host's datagrams is served mostly without the reverse lookup of its
# source (reinject-source-known), and LAN packets sent meanwhile on the same
# CPU are still dropped by the forward chain, IPv4 and IPv6; an IP_TRANSPARENT
# socket's datagrams from a foreign address are still left to the kernel's
# forwarding, fast path on and off.  The forward's route is kept the same
# way (reinject-route-known), and a route made a blackhole in the middle of a
# flow stops it within 0.2 s and the same flow arrives again once the
# route is back, IPv4 and IPv6.  Without CAP_BPF,
# "auto" falls back to forwarding and "bpf" refuses to start.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping tcpdump tshark socat sha256sum python3 nft iptables-nft ip6tables-nft setpriv ethtool
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
"$IPMODD" --version >/dev/null || skip_all "no ipmodd"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }
setup_far || { echo "Bail out! cannot build the gateway namespace"; exit 1; }
# The peer counts the datagrams to port 9 that reach it (peer_udp9).
px nft -f - <<'NFT' || { echo "Bail out! cannot add the peer's counter"; exit 1; }
table inet ipmodcount {
	counter udp9 { }
	chain in {
		type filter hook input priority 0;
		udp dport 9 counter name udp9
	}
}
NFT
# Segmentation and checksums in software on the uplink: the peer sees the frames as they are.
hx ethtool -K veth0 tx off tso off gso off >/dev/null 2>&1 ||
	{ echo "Bail out! cannot turn the uplink's offloads off"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { hx "$IPMODCTL" -s "$SOCK" "$@"; }
status_key() { ctl --json status | json_field "$1" ""; }

# The rule lands on the second range only: the first shows the untouched TTL.
RULES='rules = (
	{ name = "ttl4"; dst = "198.18.1.0/24"; set-ttl = 33; },
	{ name = "ttl6"; dst = "2001:db8:1::/64"; set-ttl = 33; }
);'

fw_clear() { hx nft flush ruleset; }
fw_nft() {
	hx nft -f - <<'NFT'
table inet ipmodtest {
	chain fw {
		type filter hook forward priority 0; policy drop;
	}
}
NFT
}
fw_ipt() { hx iptables-nft -P FORWARD DROP && hx ip6tables-nft -P FORWARD DROP; }

# ping_ok FAMILY DST: two echo requests, at least one answered.
ping_ok() {
	local fam=$1 dst=$2
	hx ping "-$fam" -c 2 -i 0.2 -W 1 "$dst" >/dev/null 2>&1
}
ping_fails() { ! ping_ok "$@"; }
# echo_ttls FILE DST: the TTLs / hop limits of the echo requests to DST, unique.
echo_ttls() {
	case $2 in
	*:*) tshark -r "$1" -Y "icmpv6.type == 128 && ipv6.dst == $2" -T fields -e ipv6.hlim ;;
	*) tshark -r "$1" -Y "icmp.type == 8 && ip.dst == $2" -T fields -e ip.ttl ;;
	esac 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//'
}

head -c 2000000 /dev/urandom >"$WORKDIR/blob"
BLOB_SUM=$(sha256sum <"$WORKDIR/blob" | cut -d' ' -f1)
tun_rx_packets() { hx cat /sys/class/net/tun0/statistics/rx_packets 2>/dev/null || echo 0; }
# transfer FAMILY up|down: 2 MB host -> peer (up) or peer -> host (down), sha256 of what arrived.
transfer() {
	local fam=$1 dir=$2 rx=$WORKDIR/rx srv dst
	rm -f "$rx"
	if [ "$dir" = up ]; then
		if [ "$fam" = 4 ]; then dst=$PEER4; else dst="[$PEER6]"; fi
		ip netns exec "$PEER_NS" timeout 30 socat -u "TCP$fam-LISTEN:5101,reuseaddr" "OPEN:$rx,creat" &
		srv=$!
		sleep 0.3
		hx timeout 20 socat -u "FILE:$WORKDIR/blob" "TCP$fam:$dst:5101"
	else
		if [ "$fam" = 4 ]; then dst=$HOST4; else dst="[$HOST6]"; fi
		ip netns exec "$HOST_NS" timeout 30 socat -u "TCP$fam-LISTEN:5102,reuseaddr" "OPEN:$rx,creat" &
		srv=$!
		sleep 0.3
		px timeout 20 socat -u "FILE:$WORKDIR/blob" "TCP$fam:$dst:5102"
	fi
	wait "$srv"
	sha256sum <"$rx" 2>/dev/null | cut -d' ' -f1
}

# udp_burst NETNS DST N: N datagrams of 64 bytes (each different: ipmodd's loop
# guard takes a repeated IPv6 datagram for a loop) to DST port 9 as fast as one
# process sends them (at most 5 s), on CPU 0 (taskset): packets of the same
# CPU and the same jiffy, which the re-injection program's kept answer serves.
udp_burst() {
	ip netns exec "$1" taskset -c 0 python3 -c '
import socket, sys, time
dst, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + 5
for i in range(n):
	try:
		s.sendto(i.to_bytes(64, "big"), (dst, 9))
	except OSError:
		pass
	if time.monotonic() > end:
		break' "$2" "$3"
}

# udp_flow NETNS DST STOPFILE: 64-byte datagrams (each different) to DST port 9
# from one socket, in bursts of 10 every 5 ms (about 2,000 a second: the
# bursts' packets share a jiffy), until STOPFILE exists (20 s at most).
udp_flow() {
	ip netns exec "$1" python3 -c '
import os, socket, sys, time
dst, stop = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + 20
i = 0
while time.monotonic() < end and not os.path.exists(stop):
	for _ in range(10):
		try:
			s.sendto(i.to_bytes(64, "big"), (dst, 9))
		except OSError:
			pass
		i += 1
	time.sleep(0.005)' "$2" "$3"
}
# peer_udp9: the datagrams to port 9 the peer's input hook has counted.
peer_udp9() { px nft list counter inet ipmodcount udp9 | awk '/packets/ { print $2 }'; }
# peer_grew N K: at least K more than N.
peer_grew() { [ $(($(peer_udp9) - $1)) -ge "$2" ]; }

# ingress_sent: the packets the program on the tun's ingress sent out of the
# uplink (redirected less those sent from the egress by the fast path's tail call).
ingress_sent() { echo $(($(status_key reinject-redirected) - $(status_key reinject-direct))); }

# own_traffic LABEL FASTPATH: the host's own traffic through a dropping forward chain.
own_traffic() {
	local label=$1 fp=$2 r0 r1 fam dir d0 d1 i0 i1
	r0=$(status_key reinject-redirected)
	# One echo request to a neighbour not yet resolved: the direct path
	# leaves it to the ingress, where the queued packet has no route into the tun.
	hx ip neigh flush dev veth0
	hx ip -6 neigh flush dev veth0
	check "$label: one ping $PEER4 to an unresolved neighbour is answered" \
		hx ping -c 1 -W 2 "$PEER4"
	check "$label: one ping -6 $PEER6 to an unresolved neighbour is answered" \
		hx ping -6 -c 1 -W 2 "$PEER6"
	d0=$(status_key reinject-direct)
	pcap_start wire "$PEER_NS" veth0 icmp or icmp6
	check "$label: ping $PEER4" ping_ok 4 "$PEER4"
	check "$label: ping -6 $PEER6" ping_ok 6 "$PEER6"
	check "$label: ping 198.18.1.1 (set-ttl 33)" ping_ok 4 198.18.1.1
	check "$label: ping -6 2001:db8:1::1 (set-ttl 33)" ping_ok 6 2001:db8:1::1
	check "$label: ping $FAR4 through the gateway" ping_ok 4 "$FAR4"
	check "$label: ping -6 $FAR6 through the gateway" ping_ok 6 "$FAR6"
	pcap_stop wire
	d1=$(status_key reinject-direct)
	# The fast path hands its packets straight on (no trip through the tun's ingress), or none.
	if [ "$fp" = auto ]; then
		check "$label: the 12 echo requests went from the fast path straight out ($((d1 - d0)))" \
			test $((d1 - d0)) -ge 12
	else
		check_eq "$label: nothing takes the direct path without the fast path" "$((d1 - d0))" 0
	fi
	check_eq "$label: TTL 64 on the wire without a rule" "$(echo_ttls "$WORKDIR/wire.pcap" "$PEER4")" 64
	check_eq "$label: hop limit 64 on the wire without a rule" \
		"$(echo_ttls "$WORKDIR/wire.pcap" "$PEER6")" 64
	check_eq "$label: TTL 33 on the wire with set-ttl = 33" \
		"$(echo_ttls "$WORKDIR/wire.pcap" 198.18.1.1)" 33
	check_eq "$label: hop limit 33 on the wire with set-ttl = 33" \
		"$(echo_ttls "$WORKDIR/wire.pcap" 2001:db8:1::1)" 33
	check_eq "$label: TTL 64 toward the gateway" "$(echo_ttls "$WORKDIR/wire.pcap" "$FAR4")" 64
	check_eq "$label: hop limit 64 toward the gateway" "$(echo_ttls "$WORKDIR/wire.pcap" "$FAR6")" 64
	check_eq "$label: no bad checksum on the wire" "$(pcap_bad_checksums "$WORKDIR/wire.pcap")" 0
	# The host's own source, looked up once per jiffy and CPU, not once per packet.
	# So is the forward's route, for packets of the same addresses and ports.
	for dst in "$PEER4" "$PEER6"; do
		k0=$(status_key reinject-source-known)
		q0=$(status_key reinject-route-known)
		r0b=$(status_key reinject-redirected)
		udp_burst "$HOST_NS" "$dst" 500
		k1=$(status_key reinject-source-known)
		q1=$(status_key reinject-route-known)
		r1b=$(status_key reinject-redirected)
		check "$label: 500 datagrams to $dst sent out by the program ($((r1b - r0b))), $((k1 - k0)) without the source's lookup, $((q1 - q0)) without the route's" \
			test $((r1b - r0b)) -ge 400 -a $((k1 - k0)) -ge 100 -a $((q1 - q0)) -ge 100
	done
	# A kept route serves one jiffy at most: a route replaced in the middle
	# of a flow is the one its next packets take.  The flow's route becomes
	# a blackhole while it runs: from 0.2 s later on, nothing more arrives;
	# the same flow arrives again once the route is back.
	for dst in 198.18.1.1 2001:db8:1::1; do
		case $dst in *:*) net=2001:db8:1::/64 gw=$PEER6 v=-6 ;; *) net=198.18.1.0/24 gw=$PEER4 v=-4 ;; esac
		q0=$(status_key reinject-route-known)
		n0=$(peer_udp9)
		rm -f "$WORKDIR/flow.stop"
		udp_flow "$HOST_NS" "$dst" "$WORKDIR/flow.stop" &
		flow=$!
		wait_for 10 peer_grew "$n0" 200
		n1=$(peer_udp9)
		hx ip "$v" route replace blackhole "$net"
		sleep 0.2
		n2=$(peer_udp9)
		sleep 0.5
		n3=$(peer_udp9)
		hx ip "$v" route replace "$net" via "$gw" dev veth0
		wait_for 10 peer_grew "$n3" 200
		n4=$(peer_udp9)
		touch "$WORKDIR/flow.stop"
		wait "$flow"
		q1=$(status_key reinject-route-known)
		check "$label: a flow to $dst reached the peer on its route ($((n1 - n0)) datagrams)" \
			test $((n1 - n0)) -ge 200
		check_eq "$label: ... nothing of it once that route is a blackhole" "$((n3 - n2))" 0
		check "$label: ... and it arrives again once the route is back ($((n4 - n3)))" \
			test $((n4 - n3)) -ge 200
		check "$label: ... $((q1 - q0)) of its datagrams without the route lookup" \
			test $((q1 - q0)) -ge 100
	done
	for fam in 4 6; do
		pcap_start tcp "$PEER_NS" veth0 tcp port 5101
		w0=$(tun_rx_packets)
		d0=$(status_key reinject-direct)
		i0=$(ingress_sent)
		check_eq "$label: 2 MB TCP over IPv$fam up arrives byte-exact" \
			"$(transfer $fam up)" "$BLOB_SUM"
		w1=$(tun_rx_packets)
		d1=$(status_key reinject-direct)
		i1=$(ingress_sent)
		pcap_stop tcp
		if [ "$fp" = auto ]; then
			# 2 MB are at least 31 super-packets of 64 KiB; the handshake may take the daemon.
			check "$label: ... sent from the tun's egress: $((d1 - d0)) packets direct, $((i1 - i0)) through its ingress" \
				test $((d1 - d0)) -ge 31 -a $((i1 - i0)) -le 5
		else
			check "$label: ... sent from the tun's ingress: $((i1 - i0)) packets, none direct" \
				test $((d1 - d0)) -eq 0 -a $((i1 - i0)) -ge 31
		fi
		# tcpdump may miss frames on a busy machine: what it saw is checked, not how many.
		frames=$(pcap_count "$WORKDIR/tcp.pcap" "tcp.len > 0")
		maxlen=$(tshark -r "$WORKDIR/tcp.pcap" -T fields -e frame.len 2>/dev/null | sort -n | tail -1)
		check "$label: ... $frames data frames seen, none over 1514 bytes (largest ${maxlen:-none})" \
			test "${maxlen:-99999}" -le 1514 -a "$frames" -ge 50
		if [ $fam = 4 ]; then src="ip.src == $HOST4"; else src="ipv6.src == $HOST6"; fi
		bad=$(pcap_bad_checksums "$WORKDIR/tcp.pcap" "$src")
		check_eq "$label: ... with valid checksums" "$bad" 0
		# Seen once in a loaded CI run (1 frame): say which, for the next time.
		[ "$bad" = 0 ] || diag "$(tshark -r "$WORKDIR/tcp.pcap" -o tcp.check_checksum:TRUE \
			-o ip.check_checksum:TRUE -Y "($src) && (ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\")" \
			-T fields -e frame.number -e frame.len -e frame.cap_len -e ip.len -e tcp.seq -e tcp.len \
			-e tcp.flags -e tcp.checksum 2>/dev/null | head -5)"
		# 2 MB are at least 1382 segments of 1448 bytes.
		check "$label: ... $((w1 - w0)) writes to the tun (0: the fast path), GSO, not segments" \
			test $((w1 - w0)) -lt 691
		check_eq "$label: 2 MB TCP over IPv$fam down arrives byte-exact" \
			"$(transfer $fam down)" "$BLOB_SUM"
	done
	r1=$(status_key reinject-redirected)
	check "$label: the program sent them out of the uplink ($((r1 - r0)) packets)" \
		test $((r1 - r0)) -ge 12
}

for fw in nft ipt; do
	for fp in auto off; do
		fw_clear
		fw_$fw
		FASTPATH=$fp write_config "$WORKDIR/ri.conf" "$RULES"
		if ! start_ipmodd "$WORKDIR/ri.conf"; then
			not_ok "$fw forward drop, fastpath $fp: ipmodd starts"
			continue
		fi
		check_eq "$fw forward drop, fastpath $fp: status reinject" "$(status_key reinject)" bpf
		if [ "$fp" = auto ]; then
			check_eq "... fastpath on" "$(status_key fastpath)" on
			check_eq "... handing its packets straight to the re-injection program" \
				"$(status_key fastpath-direct)" 1
		fi
		own_traffic "$fw forward drop, fastpath $fp" "$fp"
		# A socket does not make the source the host's: an IP_TRANSPARENT
		# socket's datagrams from 198.18.9.9 (routed back via the peer, not
		# local) carry their socket on the tun's egress, and the lookup still
		# leaves them to the kernel's forwarding (which drops them here).
		if [ "$fw" = nft ]; then
			hx ip route replace 198.18.9.0/24 via "$PEER4"
			f0=$(status_key reinject-forwarded)
			d0=$(status_key reinject-direct)
			ip netns exec "$HOST_NS" python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
s.bind(("198.18.9.9", 5000))
for i in range(20):
	s.sendto(i.to_bytes(64, "big"), ("'"$PEER4"'", 9))'
			check "fastpath $fp: 20 IP_TRANSPARENT datagrams from 198.18.9.9 left to the forwarding ($(($(status_key reinject-forwarded) - f0)) forwarded, $(($(status_key reinject-direct) - d0)) direct)" \
				test $(($(status_key reinject-forwarded) - f0)) -ge 20 -a $(($(status_key reinject-direct) - d0)) -eq 0
			hx ip route del 198.18.9.0/24
		fi
		stop_ipmodd
	done
done
check "the tun's IPv6 forwarding flag went with the tun" \
	bash -c "! ip netns exec '$HOST_NS' test -e /proc/sys/net/ipv6/conf/tun0/forwarding"

# --- reinject = "forward": the same firewall drops the host's own traffic --------
fw_clear
fw_nft
REINJECT=forward write_config "$WORKDIR/fwd.conf" "$RULES"
if start_ipmodd "$WORKDIR/fwd.conf"; then
	check_eq "reinject = forward: status reinject" "$(status_key reinject)" forward
	check_eq "... with the reason" "$(status_key reinject-reason)" 'routing.reinject = "forward"'
	check_eq "... the fast path redirects to the tun's ingress: no re-injection program" \
		"$(status_key fastpath-direct):$(status_key fastpath-direct-reason)" "0:no re-injection program"
	check "... a forward chain with policy drop drops ping" ping_fails 4 "$PEER4"
	check "... and ping -6" ping_fails 6 "$PEER6"
	fw_clear
	check "... which passes without the firewall" ping_ok 4 "$PEER4"
	check "... ping -6 too" ping_ok 6 "$PEER6"
	stop_ipmodd
else
	not_ok "reinject = forward: ipmodd starts"
fi

# --- the host as a router ----------------------------------------------------------
# Global forwarding in the host namespace only; the forward chain lets the LAN
# out (also when it comes back from the tun) and its replies in.
# The LAN: a client namespace routed through the host (added only now: its
# address would otherwise be the host's source toward 2001:db8:1::/64), and
# the peer's routes back to it.
LAN_NS="${HOST_NS%-h}-l"
trap 'cleanup; ip netns del "$FAR_NS" 2>/dev/null; ip netns del "$LAN_NS" 2>/dev/null' EXIT
setup_lan
fw_clear
hx nft -f - <<'NFT'
table inet ipmodtest {
	chain fw {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname { "lan0", "tun0" } ip saddr 198.18.3.0/24 accept
		iifname { "lan0", "tun0" } ip6 saddr 2001:db8:3::/64 accept
	}
}
NFT
for run in "auto auto" "auto off" "forward auto"; do
	set -- $run
	ri=$1 fp=$2
	REINJECT=$ri FASTPATH=$fp write_config "$WORKDIR/router.conf" "$RULES"
	if ! start_ipmodd "$WORKDIR/router.conf"; then
		not_ok "router, reinject $ri, fastpath $fp: ipmodd starts"
		continue
	fi
	f0=$(status_key reinject-forwarded)
	d0=$(status_key reinject-direct)
	pcap_start lan "$PEER_NS" veth0 icmp or icmp6
	check "router, reinject $ri, fastpath $fp: the LAN client pings the peer" \
		lx ping -c 2 -i 0.2 -W 1 "$PEER4"
	check "router, reinject $ri, fastpath $fp: ... and 198.18.1.1 (set-ttl 33)" \
		lx ping -c 2 -i 0.2 -W 1 198.18.1.1
	check "router, reinject $ri, fastpath $fp: ... ping -6 the peer" \
		lx ping -6 -c 2 -i 0.2 -W 1 "$PEER6"
	check "router, reinject $ri, fastpath $fp: ... and 2001:db8:1::1 (set-ttl 33)" \
		lx ping -6 -c 2 -i 0.2 -W 1 2001:db8:1::1
	pcap_stop lan
	f1=$(status_key reinject-forwarded)
	if [ "$ri" = auto ]; then
		check "router, reinject $ri, fastpath $fp: the program left them to the kernel's forwarding ($((f1 - f0)))" \
			test $((f1 - f0)) -ge 8
		# Another host's packets: from the fast path to the tun's ingress, as without the direct path.
		check_eq "router, reinject $ri, fastpath $fp: none of them left by the direct path" \
			"$(($(status_key reinject-direct) - d0))" 0
	fi
	check_eq "router, reinject $ri, fastpath $fp: the client's packets leave with its address" \
		"$(tshark -r "$WORKDIR/lan.pcap" -Y "icmp.type == 8" -T fields -e ip.src 2>/dev/null | sort -u)" \
		"$LAN4"
	# The client's 64, less the host's hop, as without ipmodd.
	check_eq "router, reinject $ri, fastpath $fp: TTL 63 on the wire without a rule" \
		"$(echo_ttls "$WORKDIR/lan.pcap" "$PEER4")" 63
	check_eq "router, reinject $ri, fastpath $fp: set-ttl 33 lands on the client's packets" \
		"$(echo_ttls "$WORKDIR/lan.pcap" 198.18.1.1)" 33
	check_eq "router, reinject $ri, fastpath $fp: set-ttl 33 lands on IPv6 too" \
		"$(echo_ttls "$WORKDIR/lan.pcap" 2001:db8:1::1)" 33
	stop_ipmodd
done
# The forward chain still decides for forwarded traffic: without the tun's accept, the LAN is cut off.
hx nft delete table inet ipmodtest
hx nft -f - <<'NFT'
table inet ipmodtest {
	chain fw {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" accept
	}
}
NFT
write_config "$WORKDIR/router.conf" "$RULES"
if start_ipmodd "$WORKDIR/router.conf"; then
	check "router: a forward chain that drops the LAN's packets from the tun still drops them" \
		bash -c "! ip netns exec '$LAN_NS' ping -c 2 -i 0.2 -W 1 $PEER4 >/dev/null 2>&1"
	check "... while the host's own traffic passes" ping_ok 4 "$PEER4"
	# A LAN packet on the CPU and in the jiffy of the host's own (whose
	# source's answer the program keeps) is still another host's: the
	# forward chain drops it.  Both on CPU 0, the host's burst throughout.
	for fam in 4 6; do
		if [ $fam = 4 ]; then dst=$PEER4; else dst=$PEER6; fi
		k0=$(status_key reinject-source-known)
		udp_burst "$HOST_NS" "$dst" 200000 &
		burst=$!
		check "router, the host's own datagrams to $dst meanwhile: the LAN's ping -$fam is still dropped" \
			bash -c "! ip netns exec '$LAN_NS' taskset -c 0 ping -$fam -c 20 -i 0.05 -W 1 $dst >/dev/null 2>&1"
		wait "$burst"
		k1=$(status_key reinject-source-known)
		check "... while the program kept the host's source's answer ($((k1 - k0)) lookups skipped)" \
			test $((k1 - k0)) -ge 100
	done
	check "... and the LAN's ping passes again once allowed (the check above can fail)" \
		bash -c "ip netns exec '$HOST_NS' nft insert rule inet ipmodtest fw iifname tun0 accept &&
			ip netns exec '$LAN_NS' ping -c 2 -i 0.2 -W 1 $PEER4 >/dev/null 2>&1 &&
			ip netns exec '$LAN_NS' ping -6 -c 2 -i 0.2 -W 1 $PEER6 >/dev/null 2>&1"
	stop_ipmodd
else
	not_ok "router: ipmodd starts"
fi
hx sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
fw_clear

# --- without CAP_BPF -------------------------------------------------------------------
write_config "$WORKDIR/auto.conf"
: >"$WORKDIR/capped.log"
check "reinject = auto without CAP_BPF: ipmodd starts" start_capped "$WORKDIR/auto.conf"
check "... and logs why it forwards" \
	grep -q 're-injection program unavailable: loading the BPF program: Operation not permitted' \
	"$WORKDIR/capped.log"
check_eq "... status: forward" "$(status_key reinject)" forward
check "... with the reason" bash -c "ip netns exec '$HOST_NS' '$IPMODCTL' -s '$SOCK' status -a | grep -q 'reinject-reason:.*Operation not permitted'"
check "... and traffic flows (no firewall)" ping_ok 4 "$PEER4"
stop_ipmodd
REINJECT=bpf write_config "$WORKDIR/bpf.conf"
rc=$(capped_exit "$WORKDIR/bpf.conf")
check_eq "reinject = bpf without CAP_BPF refuses to start (exit 1)" "$rc" 1
check "... naming the cause" \
	grep -q 'routing.reinject = "bpf", but the re-injection program is unavailable: loading the BPF program: Operation not permitted' \
	"$WORKDIR/capped.log"
check "... and leaves no routing behind" bash -c "[ -z \"\$(ip netns exec '$HOST_NS' ip rule show | grep '^$PRIO:')\" ]"

done_testing
