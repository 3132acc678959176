#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# netem's model on real traffic: slots (bursts at slot starts, timed on the
# peer), loss-ecn (ECT datagrams arrive CE-marked, not-ECT ones are lost),
# distribution=@file with an iproute2 .dist table (ping RTT quantiles), and
# loss-corr (loss runs against netem's model, simulated here).  Nothing here
# uses tc netem.  Figures go to the log as diagnostics.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping tcpdump tshark python3 awk
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { "$IPMODCTL" -s "$SOCK" "$@"; }
fcmp() { awk "BEGIN { exit !($1) }"; }
not_cmd() { ! "$@" >/dev/null 2>&1; }
# udp_send DST PORT COUNT TOS INTERVAL: sequence-numbered datagrams from the host, IP_TOS set.
udp_send() {
	hx python3 - "$@" <<'PY'
import socket, sys, time
dst, port, count, tos, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
for i in range(count):
    s.sendto(("seq=%06d " % i).encode().ljust(100, b"x"), (dst, port))
    time.sleep(gap)
PY
}

# A .dist table: iproute2's own when installed, else one in its format.
DIST=/usr/lib/x86_64-linux-gnu/tc/normal.dist
[ -r "$DIST" ] || DIST=$(ls /usr/lib/*/tc/normal.dist /usr/lib/tc/normal.dist 2>/dev/null | head -1)
if [ -z "$DIST" ] || [ ! -r "$DIST" ]; then
	DIST=$WORKDIR/own.dist
	python3 -c '
import random
random.seed(5)
v = sorted(max(-32768, min(32767, int(random.gauss(0, 1) * 8192))) for _ in range(4096))
print("# a normal table in iproute2 format")
for i in range(0, 4096, 8):
    print(" ".join(str(x) for x in v[i:i + 8]))' >"$DIST"
fi
diag "table: $DIST"

CONF=$WORKDIR/ipmodd.conf
write_config "$CONF" "rules = (
	{ name = \"slotted\"; proto = \"udp\"; dport = 7101; slot = \"20\"; },
	{ name = \"marking\"; proto = \"udp\"; dport = \"7102-7103\"; loss = 0.5; loss-ecn = true; },
	{ name = \"table\"; proto = \"icmp\"; dst = \"198.18.1.7\"; delay = 50; jitter = 10; distribution = \"@$DIST\"; },
	{ name = \"bursty\"; proto = \"icmp\"; dst = \"198.18.1.8\"; loss = 0.5; loss-corr = 0.9; }
);"
check "the test config is valid" hx "$IPMODD" --check-config -c "$CONF"

# A missing table is an error that names the file and line of the rule.
write_config "$WORKDIR/bad.conf" 'rules = (
	{ name = "x"; delay = 5; jitter = 1;
	  distribution = "@/nonexistent/table.dist"; }
);'
bad_out=$(hx "$IPMODD" --check-config -c "$WORKDIR/bad.conf" 2>&1)
diag "missing table: $bad_out"
check "a missing .dist file fails the config check at its file:line" \
	grep -q "bad.conf:[0-9]*:.*distribution.*No such file" <<<"$bad_out"

check "ipmodd starts with the netem rules" start_ipmodd "$CONF"

# --- slot: bursts at slot starts ----------------------------------------------------
check "tcpdump listens on the peer" pcap_start slot "$PEER_NS" veth0 udp dst port 7101
udp_send "$PEER4" 7101 60 0 0.002
sleep 0.2
pcap_stop slot
# Arrival times on the peer, and the gaps between them.
tshark -r "$WORKDIR/slot.pcap" -T fields -e frame.time_epoch 2>/dev/null >"$WORKDIR/slot.times"
slot_stats=$(awk 'NR > 1 { g = ($1 - p) * 1000; if (g < 1) inb++; else if (g >= 18) { nb++; if (min == "" || g < min) min = g } else mid++ }
	{ p = $1 } END { printf "%d %d %d %d %s", NR, inb, nb, mid, min }' "$WORKDIR/slot.times")
read -r n_slot in_burst n_bursts mid_gaps min_gap <<<"$slot_stats"
diag "slot=20: $n_slot datagrams, $in_burst gaps under 1 ms, $n_bursts gaps of 18 ms or more (smallest $min_gap ms), $mid_gaps between"
check_eq "every datagram arrived" "$n_slot" 60
check "they arrive in bursts: no gap between 1 and 18 ms (sent every 2 ms)" test "$mid_gaps" -eq 0
check "bursts are a slot (20 ms and the wait for the next packet) apart: $n_bursts boundaries" \
	test "$n_bursts" -ge 3 -a "$n_bursts" -le 8
check "most datagrams share a burst ($in_burst of 59 gaps under 1 ms)" test "$in_burst" -ge 45

# --- loss-ecn: ECT marked, not-ECT lost -----------------------------------------------
check "tcpdump listens for the ECN datagrams" pcap_start ecn "$PEER_NS" veth0 udp dst portrange 7102-7103
"$IPMODCTL" -s "$SOCK" trace rule=marking >"$WORKDIR/trace.txt" 2>&1 &
trace_pid=$!
sleep 0.3
udp_send "$PEER4" 7102 300 2 0.001
udp_send "$PEER4" 7103 300 0 0.001
pcap_stop ecn
kill "$trace_pid" 2>/dev/null
wait "$trace_pid" 2>/dev/null
diag "a trace line: $(grep -m1 ce-marked "$WORKDIR/trace.txt")"
check "the trace shows the marks (impair=ce-marked)" grep -q ' rule=marking .* impair=ce-marked' "$WORKDIR/trace.txt"
check "... and the losses (impair=lost)" grep -q ' rule=marking .* impair=lost' "$WORKDIR/trace.txt"
ect_in=$(pcap_count "$WORKDIR/ecn.pcap" "udp.dstport == 7102")
ce_in=$(pcap_count "$WORKDIR/ecn.pcap" "udp.dstport == 7102 && ip.dsfield.ecn == 3")
ect0_in=$(pcap_count "$WORKDIR/ecn.pcap" "udp.dstport == 7102 && ip.dsfield.ecn == 2")
plain_in=$(pcap_count "$WORKDIR/ecn.pcap" "udp.dstport == 7103")
plain_ce=$(pcap_count "$WORKDIR/ecn.pcap" "udp.dstport == 7103 && ip.dsfield.ecn != 0")
bad=$(pcap_bad_checksums "$WORKDIR/ecn.pcap")
diag "loss=0.5 loss-ecn=true: ECT(0) $ect_in of 300 arrived, $ce_in CE, $ect0_in ECT(0); not-ECT $plain_in of 300"
check_eq "every ECT(0) datagram arrived" "$ect_in" 300
check "about half were marked CE ($ce_in of 300)" test "$ce_in" -ge 110 -a "$ce_in" -le 190
check_eq "... the others kept ECT(0)" "$((ce_in + ect0_in))" 300
check "about half of the not-ECT datagrams were lost ($((300 - plain_in)))" \
	test "$plain_in" -ge 110 -a "$plain_in" -le 190
check_eq "none of them marked" "$plain_ce" 0
check_eq "no bad IPv4 or UDP checksum on the peer" "$bad" 0
check_eq "ce-marked counts the CE marks the peer saw" "$(rule_counter marking ce-marked)" "$ce_in"
check_eq "dropped-loss counts the lost not-ECT ones" "$(rule_counter marking dropped-loss)" "$((300 - plain_in))"

# IPv6: ECT(1) in the traffic class.
check "tcpdump listens for the IPv6 ECN datagrams" pcap_start ecn6 "$PEER_NS" veth0 ip6 and udp dst port 7102
hx python3 - "$PEER6" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0xb8 | 1)
for i in range(200):
    s.sendto(("seq=%06d " % i).encode().ljust(100, b"x"), (sys.argv[1], 7102))
    time.sleep(0.001)
PY
pcap_stop ecn6
in6=$(pcap_count "$WORKDIR/ecn6.pcap" "udp.dstport == 7102")
ce6=$(pcap_count "$WORKDIR/ecn6.pcap" "udp.dstport == 7102 && ipv6.tclass.ecn == 3 && ipv6.tclass.dscp == 46")
ect1_6=$(pcap_count "$WORKDIR/ecn6.pcap" "udp.dstport == 7102 && ipv6.tclass.ecn == 1 && ipv6.tclass.dscp == 46")
bad6=$(pcap_bad_checksums "$WORKDIR/ecn6.pcap")
diag "IPv6 ECT(1), DSCP EF: $in6 of 200 arrived, $ce6 CE, $ect1_6 ECT(1)"
check_eq "every IPv6 ECT(1) datagram arrived" "$in6" 200
check "about half CE in the traffic class, DSCP EF kept ($ce6, $ect1_6)" \
	test "$ce6" -ge 60 -a "$ce6" -le 140 -a "$((ce6 + ect1_6))" -eq 200
check_eq "no bad UDP checksum over IPv6" "$bad6" 0

# --- distribution=@file: RTT quantiles follow the table ---------------------------------
base=$(hx ping -c 20 -i 0.02 -W 1 198.18.1.1 | sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
hx ping -c 1000 -i 0.005 -W 2 198.18.1.7 | sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' >"$WORKDIR/table.rtt"
quant=$(python3 - "$DIST" "$WORKDIR/table.rtt" "$base" <<'PY'
import sys
t = sorted(int(x) for l in open(sys.argv[1]) if not l.startswith("#") for x in l.split())
r = sorted(float(x) for x in open(sys.argv[2]))
base = float(sys.argv[3])
out = [str(len(r))]
for q in (0.1, 0.5, 0.9):
    want = base + 50 + 10 * t[int(q * len(t))] / 8192
    have = r[int(q * len(r))]
    out.append("%.2f %.2f" % (have, want))
print(" ".join(out))
PY
)
read -r n_rtt h10 w10 h50 w50 h90 w90 <<<"$quant"
diag "delay=50 jitter=10 distribution=@$DIST over $n_rtt pings (base $base ms): p10 $h10 (table $w10), p50 $h50 ($w50), p90 $h90 ($w90) ms"
check "at least 990 of 1000 pings answered ($n_rtt)" test "${n_rtt:-0}" -ge 990
check "p10, p50, p90 of the RTT within 2.5 ms of the table's" \
	fcmp "${h10:-0} - ${w10:-99} <= 2.5 && ${w10:-99} - ${h10:-0} <= 2.5 && ${h50:-0} - ${w50:-99} <= 2.5 && ${w50:-99} - ${h50:-0} <= 2.5 && ${h90:-0} - ${w90:-99} <= 2.5 && ${w90:-99} - ${h90:-0} <= 2.5"
check "the spread is the table's, not uniform's (p90 - p10 $h10..$h90 ms)" \
	fcmp "${h90:-0} - ${h10:-0} >= 20 && ${h90:-0} - ${h10:-0} <= 30"

# --- loss-corr: loss runs as netem's model has them --------------------------------------
hx ping -c 10000 -i 0.001 -W 1 198.18.1.8 | sed -n 's/.*icmp_seq=\([0-9]*\) .*/\1/p' >"$WORKDIR/bursty.seq"
read -r got_rate got_mean ref_rate ref_mean <<<"$(python3 - "$WORKDIR/bursty.seq" <<'PY'
import random, sys
got = set(int(x) for x in open(sys.argv[1]))
def runs(lost):
    n = sum(lost)
    r = sum(1 for i, l in enumerate(lost) if l and (i == 0 or not lost[i - 1]))
    return n / len(lost), n / max(r, 1)
g = runs([s not in got for s in range(1, 10001)])
# netem: value = (1 - rho) u + rho last over 32-bit uniforms; lost when P >= value.
random.seed(3)
rho, p, last, lost = 0.9, 0.5 * 4294967295, random.random() * 2**32, []
for _ in range(400000):
    last = (1 - rho) * random.random() * 2**32 + rho * last
    lost.append(p >= last)
m = runs(lost)
print("%.4f %.3f %.4f %.3f" % (g[0], g[1], m[0], m[1]))
PY
)"
diag "loss=0.5 loss-corr=0.9 on 10000 pings: lost $got_rate in runs of $got_mean; netem's model $ref_rate in runs of $ref_mean (Bernoulli: runs of 2)"
check "the loss rate is the model's within 0.1 ($got_rate, $ref_rate)" \
	fcmp "$got_rate - $ref_rate <= 0.1 && $ref_rate - $got_rate <= 0.1"
check "the mean loss run is the model's within 25 % ($got_mean, $ref_mean), far above Bernoulli's 2" \
	fcmp "$got_mean >= 0.75 * $ref_mean && $got_mean <= 1.25 * $ref_mean && $ref_mean > 3"

# --- the control socket: add with a table, rules, save ----------------------------------
check "ipmodctl add takes the new keys, a table file included" \
	ctl add name=added proto=udp dport=7200 delay=10 jitter=5 distribution="@$DIST" \
	loss=0.1 loss-ecn=true rate=1mbit overhead=-4 cellsize=48 cell-overhead=5 slot=1,2,3
spec=$(ctl rules --json | python3 -c '
import json, sys
for r in json.load(sys.stdin)["rules"]:
    if r["name"] == "added":
        print(r["spec"], r.get("ce-marked", "none"))' )
diag "added: $spec"
check_eq "ipmodctl rules shows it as given, with a ce-marked counter" "$spec" \
	"name=added proto=udp dport=7200 delay=10 jitter=5 distribution=@$DIST loss=0.1 loss-ecn=true rate=1mbit overhead=-4 cellsize=48 cell-overhead=5 slot=1,2,3 0"
check "ipmodctl add refuses a missing table" not_cmd ctl add name=nofile delay=10 jitter=5 distribution=@/nonexistent.dist
ctl save >"$WORKDIR/saved.rules"
write_config "$WORKDIR/saved.conf" "$(cat "$WORKDIR/saved.rules")"
check "ipmodctl save writes rules that read back" hx "$IPMODD" --check-config -c "$WORKDIR/saved.conf"
check "... with the table and every new key" grep -q "distribution = \"@$DIST\";.*loss-ecn = \"true\";.*slot = \"1,2,3\"" "$WORKDIR/saved.rules"

check "ipmodd still runs" kill -0 "$IPMODD_PID"
done_testing
