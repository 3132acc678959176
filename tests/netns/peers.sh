#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/run's peers do what they stand for, so that their figures compare
# like with like: bench/peer-ttl.nft loads and sets TTL 65 on every IPv4
# packet the host sends (ICMP, UDP, TCP), with valid checksums on the wire;
# bench/nfqloop behind bench/peer-queue.nft (or iptables-nft's NFQUEUE
# target where the kernel has no nft queue expression) does the same through
# NFQUEUE: with the host's veth offloading checksums as by default every
# datagram arrives (the L4 checksum nfqloop must complete is right), without
# it every frame on the wire has valid checksums; every frame has TTL 65,
# none passed unchanged (FAIL_OPEN), and nfqloop reports no error.  Both leave nothing behind.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd nft tcpdump tshark iperf3 python3 ethtool
NFQLOOP=${NFQLOOP:-$(dirname "$IPMODD")/bench/nfqloop}
UDPBLAST=${UDPBLAST:-$(dirname "$IPMODD")/bench/udpblast}
[ -x "$UDPBLAST" ] || skip_all "needs bench/udpblast (make bench/udpblast)"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

NFQ_PID=""
peers_cleanup() {
	[ -n "$NFQ_PID" ] && kill "$NFQ_PID" 2>/dev/null && wait "$NFQ_PID" 2>/dev/null
	cleanup
}
trap peers_cleanup EXIT
if [ "$(hx readlink /proc/self/ns/net)" = "$(readlink /proc/self/ns/net)" ]; then
	echo "Bail out! the host namespace is the machine's own"
	exit 1
fi

ip netns exec "$PEER_NS" iperf3 -s -p 5201 >"$WORKDIR/iperf3.log" 2>&1 &
BG_PIDS+=($!)
for _ in $(seq 50); do
	px ss -ltn 2>/dev/null | grep -q ":5201 " && break
	sleep 0.1
done

# traffic NAME: 200 pings, 300 UDP datagrams (python, no burst beyond the
# queue's 1024) to a sink, 4 MB of iperf3, captured on the peer's veth.
# Sets SENT and RECV (datagrams).  Not in a subshell: tcpdump must not hold
# a pipe of the caller's open.
traffic() {
	local so=$WORKDIR/sink-$1.out sink
	SENT=300 RECV=none
	pcap_start "$1" "$PEER_NS" veth0 "src host $HOST4" || { not_ok "$1: tcpdump started"; return 1; }
	hx ping -n -q -i 0.002 -c 200 -W 1 "$PEER4" >"$WORKDIR/ping-$1.out" 2>&1
	ip netns exec "$PEER_NS" "$UDPBLAST" sink 9000 20 >"$so" 2>&1 &
	sink=$!
	for _ in $(seq 50); do
		grep -q ready "$so" && break
		sleep 0.05
	done
	hx python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(300):
    s.sendto(b"x" * 64, (sys.argv[1], 9000))
    if i % 50 == 49:
        time.sleep(0.01)' "$PEER4"
	sleep 0.3
	kill -INT "$sink" 2>/dev/null
	wait "$sink"
	timeout 20 ip netns exec "$HOST_NS" iperf3 -c "$PEER4" -p 5201 -n 4M -J >"$WORKDIR/iperf-$1.json" 2>&1
	pcap_stop "$1"
	RECV=$(sed -n 's/^received=//p' "$so")
}
# check_wire NAME [nocsum]: TTL 65 and valid checksums on every captured
# frame (not with the veth's tx offload on, where partial ones read as bad).
check_wire() {
	local f=$WORKDIR/$1.pcap n
	n=$(pcap_count "$f" "ip")
	check "$1: frames captured ($n)" [ "$n" -gt 300 ]
	check_eq "$1: ICMP, UDP and TCP frames all present" \
		"$(for p in icmp udp tcp; do [ "$(pcap_count "$f" "$p")" -gt 0 ] && echo "$p"; done | tr '\n' ' ')" \
		"icmp udp tcp "
	check_eq "$1: every frame with TTL 65" "$(pcap_count "$f" "ip && ip.ttl != 65")" 0
	[ "${2:-}" = nocsum ] || check_eq "$1: no bad checksum" "$(pcap_bad_checksums "$f")" 0
	check_eq "$1: iperf3 transferred" "$(python3 -c 'import json, sys
print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"] > 0))' "$WORKDIR/iperf-$1.json" 2>/dev/null)" 1
}
counter() {
	# shellcheck disable=SC2086 # "FAMILY NAME"
	hx nft list chain $1 "$2" 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\) .*/\1/p' | head -1
}

# --- nft -------------------------------------------------------------------------
# The host's veth computes the checksums: the capture then shows real ones.
hx ethtool -K veth0 tx off >/dev/null 2>&1
check "nft: bench/peer-ttl.nft loads in the host namespace" hx nft -f "$SRCDIR/bench/peer-ttl.nft"
traffic nft
check_eq "nft: every datagram arrives" "${RECV:-none}" "$SENT"
check_wire nft
n=$(counter "inet ipmodd_bench" post)
check "nft: the ttl rule counted the packets (${n:-none})" [ "${n:-0}" -gt 300 ]
hx nft delete table inet ipmodd_bench
check_eq "nft: no table left" "$(hx nft list tables)" ""

# --- nfqueue -----------------------------------------------------------------------
if [ ! -x "$NFQLOOP" ]; then
	echo "ok $((TAP_N + 1)) # SKIP nfqueue: bench/nfqloop not built (no libnetfilter-queue)"
	TAP_N=$((TAP_N + 1))
	done_testing
	exit
fi
ip netns exec "$HOST_NS" "$NFQLOOP" 0 2>"$WORKDIR/nfqloop.out" &
NFQ_PID=$!
for _ in $(seq 100); do
	grep -q ready "$WORKDIR/nfqloop.out" && break
	sleep 0.05
done
check "nfqueue: nfqloop bound queue 0" grep -q ready "$WORKDIR/nfqloop.out"
if hx nft -f "$SRCDIR/bench/peer-queue.nft" 2>/dev/null; then
	table="inet ipmodd_bench" chain=post
	ok "nfqueue: bench/peer-queue.nft loads"
elif command -v iptables-nft >/dev/null; then
	table="ip mangle" chain=POSTROUTING
	check "nfqueue: iptables-nft NFQUEUE (no nft queue expression in this kernel)" \
		hx iptables-nft -w -t mangle -A POSTROUTING -j NFQUEUE --queue-num 0 --queue-bypass
else
	not_ok "nfqueue: neither nft's queue expression nor iptables-nft"
	done_testing
	exit
fi
# Checksums left to the veth's offload, as by default: UDP's is what nfqloop
# must complete (a verdict with the packet marks it complete), and a wrong
# one would be dropped by the peer.
hx ethtool -K veth0 tx on >/dev/null 2>&1
traffic nfqoffload
check_eq "nfqueue, tx offload: every datagram arrives (the L4 checksum is complete)" "${RECV:-none}" "$SENT"
check_wire nfqoffload nocsum
# And with the checksums done in software, as the capture can check them.
hx ethtool -K veth0 tx off >/dev/null 2>&1
traffic nfqueue
check_eq "nfqueue: every datagram arrives" "${RECV:-none}" "$SENT"
check_wire nfqueue
queued=$(counter "$table" "$chain")
# shellcheck disable=SC2086 # "FAMILY NAME"
hx nft delete table $table
kill "$NFQ_PID"
wait "$NFQ_PID"
check_eq "nfqloop exits 0 on SIGTERM" "$?" 0
NFQ_PID=""
diag "$(tail -1 "$WORKDIR/nfqloop.out")"
stats=$(tail -1 "$WORKDIR/nfqloop.out")
field() { sed -n "s/.* $1=\\([0-9]*\\).*/\\1/p" <<<"$stats"; }
check_eq "nfqueue: nfqloop handled every queued packet (none passed by FAIL_OPEN)" \
	"$(sed -n 's/.*packets=\([0-9]*\) .*/\1/p' <<<"$stats")" "${queued:-none}"
check_eq "nfqueue: every packet rewritten" "$(field rewritten)" "${queued:-none}"
check "nfqueue: L4 checksums completed ($(field l4csum))" [ "$(field l4csum)" -gt 0 ]
check_eq "nfqueue: nothing truncated, no error" "$(field truncated) $(field errors)" "0 0"
check_eq "nfqueue: no table left" "$(hx nft list tables)" ""

done_testing
