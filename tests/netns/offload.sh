#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Offloaded tun I/O: with the virtio-net header, TSO and USO on, TCP
# transfers in both families arrive byte-exact through a set-ttl rule, every
# frame on the wire has valid checksums and the TTL the rule set, and rule
# counters count segments, whether the super-packets go through whole or
# are split for a rule that needs the segments.  UDP GSO (UDP_SEGMENT) and
# offload = false too.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd tcpdump tshark socat sha256sum python3 ethtool
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { "$IPMODCTL" -s "$SOCK" "$@"; }

# The host's veth computes no checksum and segments nothing: the capture on
# the peer then shows real checksums on every frame (a partial one reads as
# bad), and the segments are those the kernel or ipmodd cut.
hx ethtool -K veth0 tx off >/dev/null 2>&1

# OFFLOAD_MB: the size of each transfer (8 MB; runtests' kernel matrix uses 2:
# the guest under TCG spends most of this test in tshark reading the captures).
SIZE_MB=${OFFLOAD_MB:-8}
case $SIZE_MB in
[1-9] | [1-5][0-9] | 6[0-4]) ;;
*) echo "Bail out! OFFLOAD_MB must be 1 to 64 (MB), not '$SIZE_MB'"; exit 1 ;;
esac
head -c $((SIZE_MB << 20)) /dev/urandom >"$WORKDIR/data"
want_sum=$(sha256sum <"$WORKDIR/data" | cut -d' ' -f1)

# transfer NAME FAMILY PORT: send the data from host to peer over TCP, compare the sums.
transfer() {
	local name=$1 fam=$2 port=$3 addr listen connect got
	if [ "$fam" = 4 ]; then
		addr=$PEER4 listen="TCP4-LISTEN:$port,reuseaddr" connect="TCP4:$PEER4:$port"
	else
		addr=$PEER6 listen="TCP6-LISTEN:$port,reuseaddr" connect="TCP6:[$PEER6]:$port"
	fi
	rm -f "$WORKDIR/recv-$name"
	ip netns exec "$PEER_NS" timeout 60 socat -u "$listen" "CREATE:$WORKDIR/recv-$name" &
	local srv=$!
	BG_PIDS+=($srv)
	local i
	for i in $(seq 50); do
		px ss -ltn | grep -q ":$port " && break
		sleep 0.1
	done
	hx timeout 60 socat -u -b 65536 "OPEN:$WORKDIR/data" "$connect"
	wait "$srv"
	got=$(sha256sum <"$WORKDIR/recv-$name" | cut -d' ' -f1)
	check_eq "$name: the $SIZE_MB MB arrive byte-exact (sha256) to $addr" "$got" "$want_sum"
}

# frames FILE FILTER: frames of the host's data direction matching FILTER.
frames() { pcap_count "$1" "$2"; }
# TCP segments the peer received (GRO-merged ones count as their segments).
peer_insegs() { px awk '/^Tcp: [0-9]/ { print $11 }' /proc/net/snmp; }

# phase NAME CONFIG-RULES: one daemon run with a transfer per family, captured on the peer.
run_phase() {
	local name=$1 conf=$WORKDIR/$1.conf bad ttl4 ttl6 n4 n6 c4 c6 segs drops
	write_config "$conf" "$2"
	sed -i "s/mtu = 1500;/mtu = 1500; offload = ${OFFLOAD:-true};/" "$conf"
	# The userspace path is under test, not the eBPF fast path.
	grep -q '^fastpath' "$conf" && sed -i 's/^fastpath = .*/fastpath = "off";/' "$conf" ||
		echo 'fastpath = "off";' >>"$conf"
	check "$name: ipmodd starts" start_ipmodd "$conf"
	segs=$(peer_insegs)
	pcap_start "$name" "$PEER_NS" veth0 -s 0 -B 65536 \
		"tcp and (src host $HOST4 or src host $HOST6) and (dst port 5001 or dst port 5002)"
	transfer "$name IPv4" 4 5001
	transfer "$name IPv6" 6 5002
	segs=$(($(peer_insegs) - segs))
	pcap_stop "$name"
	local cap=$WORKDIR/$name.pcap
	drops=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$WORKDIR/$name.err")
	n4=$(frames "$cap" "tcp.dstport == 5001")
	n6=$(frames "$cap" "tcp.dstport == 5002")
	check "$name: the capture has both transfers ($n4 and $n6 frames, ${drops:-?} lost by tcpdump)" \
		test "$n4" -gt $((SIZE_MB * 100)) -a "$n6" -gt $((SIZE_MB * 100))
	bad=$(pcap_bad_checksums "$cap")
	check_eq "$name: no frame with a bad checksum" "$bad" 0
	ttl4=$(frames "$cap" "ip && ip.ttl != 33")
	ttl6=$(frames "$cap" "ipv6 && ipv6.hlim != 33")
	check_eq "$name: every frame has the TTL / hop limit set-ttl=33 set" "$ttl4 $ttl6" "0 0"
	big=$(frames "$cap" "frame.len > 1514")
	check_eq "$name: no frame larger than the MTU" "$big" 0
	# Every segment of each flow went through the rule, counted as one.
	c4=$(rule_counter flow4 packets)
	c6=$(rule_counter flow6 packets)
	check_eq "$name: the rules counted the segments the peer received" "$((c4 + c6))" "$segs"
	# tcpdump may miss frames under load, and does not always say so: only a
	# capture that holds every segment the peer received is compared per flow.
	if [ "${drops:-1}" = 0 ] && [ $((n4 + n6)) -eq "$segs" ]; then
		check_eq "$name: ... and those captured, per flow" "$c4 $c6" "$n4 $n6"
	else
		diag "the capture has $((n4 + n6)) frames for the $segs segments the peer received" \
			"(tcpdump: ${drops:-?} lost): no per-flow comparison with it"
	fi
	CAP=$cap
	CAP_DROPS=${drops:-1}
}

RULES_WHOLE='rules = (
	{ name = "ttl"; set-ttl = 33; },
	{ name = "flow4"; proto = "tcp"; dport = 5001; set-dscp = 0; },
	{ name = "flow6"; proto = "tcp"; dport = 5002; set-dscp = 0; }
);'

# --- whole: nothing needs the segments -----------------------------------------
run_phase whole "$RULES_WHOLE"
off=$(status_field offload)
check "whole: status shows TSO on ($off)" grep -q 'csum,tso4,tso6' <<<"$off"
whole=$(status_field gso-whole)
split=$(status_field gso-split)
check "whole: super-packets went through whole ($whole), none split ($split)" \
	test "$whole" -gt 0 -a "$split" -eq 0
rx=$(status_field rx-packets)
tx=$(status_field tx-packets)
# Every segment read is written or counted where it went (once, under ASan,
# one of 11,682 was neither written nor, then, looked for).
gone=0
for k in dropped-rule loops write-errors; do
	gone=$((gone + $(status_field "$k")))
done
check "whole: rx and tx count segments ($rx, $tx; $gone dropped, loops or write errors) beyond the super-packets" \
	test "$rx" -gt "$whole" -a $((tx + gone)) -ge "$rx"
check_eq "whole: no malformed headers" "$(status_field malformed-bad-vnet)" 0

# UDP GSO: one send of 8 segments, where the kernel has USO.
if grep -q uso4 <<<"$off"; then
	ip netns exec "$PEER_NS" timeout 20 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5003))
s.settimeout(10)
got = []
try:
    while len(got) < 16:
        got.append(s.recv(4096))
except socket.timeout:
    pass
want = [bytes((i * 7 + k) & 0xff for i in range(1000)) for k in range(8)] * 2
print("ok" if got == want else "bad %d datagrams %s" % (len(got), [len(g) for g in got]))
' >"$WORKDIR/uso.out" &
	uso_pid=$!
	BG_PIDS+=($uso_pid)
	sleep 0.5
	before=$(status_field gso-whole)
	hx python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_UDP, 103, 1000)    # UDP_SEGMENT
buf = b"".join(bytes((i * 7 + k) & 0xff for i in range(1000)) for k in range(8))
for _ in range(2):
    s.sendto(buf, (sys.argv[1], 5003))
' "$PEER4"
	wait "$uso_pid"
	check_eq "USO: 16 datagrams of 1000 bytes arrive intact" "$(cat "$WORKDIR/uso.out")" ok
	after=$(status_field gso-whole)
	check_eq "USO: the two sends went through as super-packets" "$((after - before))" 2
else
	diag "the kernel offers no USO: UDP_SEGMENT not tested"
fi
stop_ipmodd

# --- split: a tcp-flags rule needs the segments --------------------------------
RULES_SPLIT='rules = (
	{ name = "ttl"; set-ttl = 33; },
	{ name = "psh"; proto = "tcp"; tcp-flags = "psh"; set-dscp = 0; },
	{ name = "flow4"; proto = "tcp"; dport = 5001; set-dscp = 0; },
	{ name = "flow6"; proto = "tcp"; dport = 5002; set-dscp = 0; }
);'
run_phase split "$RULES_SPLIT"
split=$(status_field gso-split)
whole=$(status_field gso-whole)
check "split: super-packets were split ($split), none went whole ($whole)" \
	test "$split" -gt 0 -a "$whole" -eq 0
psh=$(frames "$CAP" "tcp.flags.push == 1")
if [ "$CAP_DROPS" = 0 ]; then
	check_eq "split: the tcp-flags=psh rule counted the PSH segments captured" \
		"$(rule_counter psh packets)" "$psh"
else
	check "split: the tcp-flags=psh rule counted PSH segments ($psh captured)" \
		test "$(rule_counter psh packets)" -ge "$psh"
fi
stop_ipmodd

# --- a kernel that refuses offloads ----------------------------------------------
# tests/helpers/refuse-ioctl makes the kernel answer TUNSETOFFLOAD with EINVAL
# (seccomp): with the USO bits only, as a kernel before 6.2 does, or always.
REFUSE=${REFUSE_IOCTL:-$(dirname "$IPMODD")/tests/helpers/refuse-ioctl}
TUNSETOFFLOAD=0x400454d0
if [ -x "$REFUSE" ]; then
	printf '#!/bin/sh\nexec "%s" %s 0x60 22 "%s" "$@"\n' "$REFUSE" "$TUNSETOFFLOAD" "$IPMODD" \
		>"$WORKDIR/ipmodd-nouso"
	printf '#!/bin/sh\nexec "%s" %s 0 22 "%s" "$@"\n' "$REFUSE" "$TUNSETOFFLOAD" "$IPMODD" \
		>"$WORKDIR/ipmodd-nooffload"
	chmod +x "$WORKDIR/ipmodd-nouso" "$WORKDIR/ipmodd-nooffload"

	IPMODD=$WORKDIR/ipmodd-nouso run_phase nouso "$RULES_WHOLE"
	check_eq "no USO: status shows TSO without USO" "$(status_field offload)" \
		"csum,tso4,tso6,tso-ecn"
	check "no USO: super-packets still go through whole" test "$(status_field gso-whole)" -gt 0
	check "no USO: not reported as a refusal" \
		bash -c "! grep -q 'refused the virtio-net header' '$WORKDIR/ipmodd.log'"
	stop_ipmodd

	: >"$WORKDIR/ipmodd.log"
	IPMODD=$WORKDIR/ipmodd-nooffload run_phase refused "$RULES_WHOLE"
	check_eq "refused: status says offload off" "$(status_field offload)" off
	check_eq "refused: no super-packets" "$(status_field gso-whole) $(status_field gso-split)" "0 0"
	check "refused: the log says the kernel refused the offloads" \
		grep -q "refused the virtio-net header or offloads" "$WORKDIR/ipmodd.log"
	stop_ipmodd
else
	diag "no $REFUSE: the refused-offload phases are skipped"
fi

# --- offload = false: the plain path --------------------------------------------
OFFLOAD=false run_phase plain "$RULES_WHOLE"
check_eq "plain: status says offload off" "$(status_field offload)" off
check_eq "plain: no super-packets" "$(status_field gso-whole) $(status_field gso-split)" "0 0"
stop_ipmodd

done_testing
