#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Impairment on real traffic, with real clients: delay against a baseline of
# the same run, jitter, loss, a rate limit under iperf3, duplication,
# reordering, corruption seen by the peer, the queue's bounds under a flood,
# and what a rule deletion, a reload and a shutdown do to queued packets.
# Figures go to the log as diagnostics.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping tcpdump tshark iperf3 python3 awk
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { "$IPMODCTL" -s "$SOCK" "$@"; }
# The RTTs of a ping's replies, one per line, in ms.
rtts() { sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Interquartile range of numbers, one per line: a spread that outliers do not move.
iqr() { sort -n | awk '{ v[NR] = $1 } END { if (NR < 4) print "nan"; else print v[int(NR * 3 / 4)] - v[int(NR / 4) + 1] }'; }
# mdev of a ping summary line ("... ms" or "... ms, pipe 3").
mdev() { sed -n 's|^rtt .* = [0-9.]*/[0-9.]*/[0-9.]*/\([0-9.]*\) ms.*|\1|p'; }
# fcmp EXPR: a floating-point condition, for check.
fcmp() { awk "BEGIN { exit !($1) }"; }
# udp_send DST PORT COUNT [SIZE] [INTERVAL]: sequence-numbered datagrams from the host.
udp_send() {
	hx python3 - "$@" <<'PY'
import socket, sys, time
dst, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = int(sys.argv[4]) if len(sys.argv) > 4 else 64
gap = float(sys.argv[5]) if len(sys.argv) > 5 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    s.sendto(("seq=%06d " % i).encode().ljust(size, b"x"), (dst, port))
    if gap:
        time.sleep(gap)
PY
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$IPMODD_PID/status"; }

CONF=$WORKDIR/ipmodd.conf
write_config "$CONF" 'rules = (
	{ name = "slow-ref"; proto = "icmp"; dst = "198.18.1.6"; delay = 50; },
	{ name = "jittery"; proto = "icmp"; dst = "198.18.1.2"; delay = 50; jitter = 10; },
	{ name = "lossy"; proto = "icmp"; dst = "198.18.1.3"; loss = 0.3; },
	{ name = "dup"; proto = "icmp"; dst = "198.18.1.4"; duplicate = 1; },
	{ name = "shuffle"; proto = "icmp"; dst = "198.18.1.5"; delay = 100; reorder = 0.5; },
	{ name = "shaped"; proto = "tcp"; dport = 5201; rate = "1mbit"; limit = 30; },
	{ name = "flood"; proto = "udp"; dport = 7001; delay = 1000; limit = 100; },
	{ name = "flip"; proto = "udp"; dport = 7002; corrupt = 1; },
	{ name = "hold"; proto = "udp"; dport = 7003; delay = 6000; },
	{ name = "keep"; proto = "udp"; dport = 7004; delay = 5000; }
);'
check "the test config is valid" hx "$IPMODD" --check-config -c "$CONF"
check "ipmodd starts with the impairment rules" start_ipmodd "$CONF"
check_eq "IPMODD_PID is the daemon" "$(cat "/proc/$IPMODD_PID/comm" 2>/dev/null)" ipmodd

# --- delay: 50 ms on one flow, against a baseline of the same run ----------------
base=$(hx ping -c 50 -i 0.02 -W 1 "$PEER4" | rtts | median)
diag "baseline median RTT to $PEER4: $base ms"
check "ipmodctl add puts a delay=50 rule on ICMP to $PEER4" \
	ctl add at 1 name=slow proto=icmp dst="$PEER4" delay=50
"$IPMODCTL" -s "$SOCK" trace rule=slow >"$WORKDIR/trace.txt" 2>&1 &
trace_pid=$!
sleep 0.3
slow_out=$(hx ping -c 50 -i 0.02 -W 2 "$PEER4")
slow=$(rtts <<<"$slow_out" | median)
diag "median RTT with delay=50: $slow ms"
check "delay=50 adds 50 +- 5 ms to the median RTT ($base -> $slow ms)" \
	fcmp "$slow - $base >= 45 && $slow - $base <= 55"
other=$(hx ping -c 50 -i 0.02 -W 1 198.18.1.1 | rtts | median)
other6=$(hx ping -6 -c 50 -i 0.02 -W 1 "$PEER6" | rtts | median)
diag "median RTT meanwhile to 198.18.1.1: $other ms, ICMPv6 to $PEER6: $other6 ms"
check "another destination keeps its RTT ($other ms)" fcmp "$other < $base + 5"
check "another protocol to the same host keeps its RTT ($other6 ms)" fcmp "$other6 < $base + 5"
kill "$trace_pid" 2>/dev/null
wait "$trace_pid" 2>/dev/null
check "the trace shows the delay (impair=delayed delay=50)" \
	grep -q ' rule=slow delay=50 result=accept impair=delayed delay=50 *$' "$WORKDIR/trace.txt"
check_eq "the rule counted 50 delayed" "$(rule_counter slow delayed)" 50

# --- jitter: the spread widens -------------------------------------------------------
ref_out=$(hx ping -c 50 -i 0.02 -W 2 198.18.1.6)
jit_out=$(hx ping -c 50 -i 0.02 -W 2 198.18.1.2)
ref_mdev=$(mdev <<<"$ref_out")
jit_mdev=$(mdev <<<"$jit_out")
ref_iqr=$(rtts <<<"$ref_out" | iqr)
jit_iqr=$(rtts <<<"$jit_out" | iqr)
jit_median=$(rtts <<<"$jit_out" | median)
diag "delay=50: mdev $ref_mdev ms, IQR $ref_iqr ms; delay=50 jitter=10: mdev $jit_mdev ms, IQR $jit_iqr ms (median $jit_median ms)"
# Uniform over 40..60 ms: a standard deviation of 10 / sqrt(3) = 5.8 ms and
# an interquartile range of 10 ms; without jitter both are near 0.
check "jitter=10 widens the spread (mdev $ref_mdev -> $jit_mdev ms, IQR $ref_iqr -> $jit_iqr ms)" \
	fcmp "$jit_mdev >= 3 && $jit_iqr >= 5 && $jit_iqr >= 10 * $ref_iqr"
check "... around the same median ($jit_median ms)" fcmp "$jit_median >= 43 && $jit_median <= 57"

# --- loss: 0.3 of 1000 -------------------------------------------------------------
loss_out=$(hx ping -q -c 1000 -i 0.002 -W 1 198.18.1.3)
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$loss_out")
lost=$((1000 - ${received:-0}))
diag "loss=0.3: $lost of 1000 lost"
check "loss=0.3 loses 30 +- 5 % of 1000 pings ($lost)" test "$lost" -ge 250 -a "$lost" -le 350
check_eq "dropped-loss counts exactly the lost pings" "$(rule_counter lossy dropped-loss)" "$lost"

# --- rate: iperf3 through a 1 Mbit/s shaper ---------------------------------------------
bg "$PEER_NS" iperf3 -s -1 -B "$PEER4" -p 5201 --logfile "$WORKDIR/iperf3.log"
for i in $(seq 50); do
	px ss -ltn 2>/dev/null | grep -q "$PEER4:5201" && break
	sleep 0.1
done
# The shaper counts whole IP packets: 1448 bytes of TCP payload in 1500 make
# about 0.965 Mbit/s of goodput, and limit=30 keeps the queue short.
iperf_json=$(hx timeout 20 iperf3 -c "$PEER4" -p 5201 -t 5 -J)
rate=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])' <<<"$iperf_json" 2>/dev/null)
diag "iperf3 TCP through rate=1mbit: receiver ${rate:-none} bit/s"
check "rate=1mbit holds iperf3 within 10 % of 1 Mbit/s (${rate:-none} bit/s)" \
	fcmp "${rate:-0} >= 900000 && ${rate:-0} <= 1100000"
check "the shaper delayed packets" test "$(rule_counter shaped delayed)" -gt 0

# --- duplicate ----------------------------------------------------------------------
dup_out=$(hx ping -c 5 -i 0.1 -W 1 198.18.1.4)
check "duplicate=1: ping reports DUP!" grep -q 'DUP!' <<<"$dup_out"
check_eq "duplicated counts each ping" "$(rule_counter dup duplicated)" 5

# --- reorder ---------------------------------------------------------------------------
reorder_out=$(hx ping -c 50 -i 0.01 -W 2 198.18.1.5)
inversions=$(sed -n 's/.*icmp_seq=\([0-9]*\) .*/\1/p' <<<"$reorder_out" |
	awk '$1 < max { n++ } $1 > max { max = $1 } END { print n + 0 }')
diag "delay=100 reorder=0.5: $inversions replies arrived after a later one"
check "reorder=0.5 makes replies arrive out of order ($inversions)" test "$inversions" -gt 5
check "reordered counted" test "$(rule_counter shuffle reordered)" -gt 5

# --- corrupt: the peer sees a bad checksum and an intact IP header --------------------------
pcap_start peer "$PEER_NS" veth0 udp
udp_send "$PEER4" 7002 20 200 0.01
pcap_stop peer
P=$WORKDIR/peer.pcap
check_eq "the 20 corrupted datagrams reached the peer" \
	"$(pcap_count "$P" "udp.dstport == 7002 && ip.src == $HOST4 && ip.dst == $PEER4 && ip.len == 228")" 20
check_eq "... each with a bad UDP checksum (tshark)" \
	"$(tshark -r "$P" -o udp.check_checksum:TRUE -Y 'udp.dstport == 7002 && udp.checksum.status == "Bad"' 2>/dev/null | wc -l)" 20
check_eq "... and a good IPv4 header checksum" \
	"$(tshark -r "$P" -o ip.check_checksum:TRUE -Y 'udp.dstport == 7002 && ip.checksum.status == "Good"' 2>/dev/null | wc -l)" 20
check_eq "corrupted counted" "$(rule_counter flip corrupted)" 20

# --- the queue limit under a flood ------------------------------------------------------------
# impair-queued counts every rule's copies: first let the earlier tests' ones
# (the shaped TCP flow's segments) leave, so that what follows is the flood's.
for _ in $(seq 50); do
	[ "$(status_field impair-queued)" = 0 ] && break
	sleep 0.1
done
diag "queued before the flood: $(status_field impair-queued)"
rss_before=$(rss_kb)
ip netns exec "$HOST_NS" python3 - "$PEER4" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + 2
while time.monotonic() < end:
    try:
        s.sendto(b"f" * 1000, (sys.argv[1], 7001))
    except OSError:
        pass
PY
flood_pid=$!
max_queued=0
for i in $(seq 15); do
	q=$(status_field impair-queued)
	[ "$q" -gt "$max_queued" ] 2>/dev/null && max_queued=$q
	sleep 0.1
done
wait "$flood_pid"
rss_after=$(rss_kb)
flood_in=$(rule_counter flood packets)
diag "flood: $flood_in datagrams matched, impair-queued at most $max_queued, VmRSS $rss_before -> $rss_after kB"
check "the flood matched many datagrams ($flood_in)" test "${flood_in:-0}" -gt 1000
check "limit=100: dropped-limit > 0 ($(rule_counter flood dropped-limit))" \
	test "$(rule_counter flood dropped-limit)" -gt 0
check "impair-queued never above the limit ($max_queued)" test "$max_queued" -le 100 -a "$max_queued" -gt 0
check "the daemon's RSS stays bounded ($rss_before -> $rss_after kB)" \
	test $((rss_after - rss_before)) -lt 4096
sleep 1.1
check_eq "the queue drains" "$(status_field impair-queued)" 0

# --- deletion flushes, a reload keeps the rules it leaves unchanged, shutdown frees ---------------
pcap_start late "$PEER_NS" veth0 udp
flushed0=$(status_field impair-flushed)
udp_send "$PEER4" 7003 20
udp_send "$PEER4" 7004 10
sleep 0.2
check_eq "30 packets wait in the queue" "$(status_field impair-queued)" 30
check_eq "... $((30 * 92)) bytes of them" "$(status_field impair-queued-bytes)" $((30 * 92))
check "ipmodctl del hold" ctl del hold
check_eq "the deleted rule's 20 packets left the queue" "$(status_field impair-queued)" 10
check_eq "impair-flushed counts them" "$(status_field impair-flushed)" $((flushed0 + 20))
check "ipmodctl reload" ctl reload
check_eq "a reload keeps the packets of the unchanged rule queued" "$(status_field impair-queued)" 10
check_eq "... flushes nothing more" "$(status_field impair-flushed)" $((flushed0 + 20))
check_eq "... and keeps its counters" "$(rule_counter keep delayed)" 10
# The kept ones leave 5 s after they were sent (delays long enough for the
# steps above on a loaded machine).
queue_empty() { [ "$(status_field impair-queued)" = 0 ]; }
wait_for 10 queue_empty
sleep 0.3
pcap_stop late
L=$WORKDIR/late.pcap
check_eq "none of the flushed packets reached the peer" "$(pcap_count "$L" 'udp.dstport == 7003')" 0
check_eq "the kept ones did, after their delay" "$(pcap_count "$L" 'udp.dstport == 7004')" 10

udp_send "$PEER4" 7004 5
sleep 0.1
stop_ipmodd TERM
check_eq "ipmodd exits 0 with packets queued" "$?" 0
check "at shutdown the queued packets are freed, not sent" \
	grep -q 'discarding 5 delayed packets' "$WORKDIR/ipmodd.log"
done_testing
