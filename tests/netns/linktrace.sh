#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Issue 16: trace-driven links (rate=@FILE) under TCP, reproducible loss with
# seed=, and faults that end (expire=, add --for, flush --impairments).
# Transfers are short (a few seconds): the machine is small and shared.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping python3 awk
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { "$IPMODCTL" -s "$SOCK" "$@"; }
fcmp() { awk "BEGIN { exit !($1) }"; }
differ() { ! cmp -s "$1" "$2"; }
rtts() { sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
TRACES=$(cd "$SRCDIR/etc/examples/traces" && pwd)
STEADY=$TRACES/steady-12mbit.trace
VARYING=$TRACES/varying-12-6-18-3mbit.trace

# tcp_bins PORT SECONDS: a TCP receiver in the peer and a sender in the host
# that sends as fast as it can for SECONDS; prints the bytes received in
# each 1 s bin from the connection's start, one per line.
tcp_bins() {
	local port=$1 secs=$2 out=$WORKDIR/bins.$1
	ip netns exec "$PEER_NS" python3 - "$PEER4" "$port" "$secs" >"$out" <<'PY' &
import socket, sys, time
addr, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(1)
s.settimeout(20)
c, _ = s.accept()
c.settimeout(30)
t0 = time.monotonic()
bins = [0] * (int(secs) + 8)
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    k = int(time.monotonic() - t0)
    if k < len(bins):
        bins[k] += len(d)
for b in bins[:int(secs)]:
    print(b)
PY
	local rpid=$! i
	for i in $(seq 50); do
		px ss -ltn 2>/dev/null | grep -q "$PEER4:$port" && break
		sleep 0.1
	done
	hx timeout $((secs + 20)) python3 - "$PEER4" "$port" "$secs" <<'PY'
import socket, sys, time
addr, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((addr, port), timeout=10)
buf = b"x" * 65536
end = time.monotonic() + secs
while time.monotonic() < end:
    s.send(buf)
s.close()
PY
	wait "$rpid"
	cat "$out"
}

CONF=$WORKDIR/ipmodd.conf
write_config "$CONF" "rules = (
	{ name = \"steady\"; proto = \"tcp\"; dport = 5301; rate = \"@$STEADY\"; },
	{ name = \"varying\"; proto = \"tcp\"; dport = 5302; rate = \"@$VARYING\"; },
	{ name = \"seeded\"; proto = \"icmp\"; dst = \"198.18.1.3\"; loss = 0.3; seed = 42; },
	{ name = \"unseeded\"; proto = \"icmp\"; dst = \"198.18.1.4\"; loss = 0.3; },
	{ name = \"keep\"; proto = \"udp\"; dport = 9; set-dscp = \"ef\"; },
	{ name = \"codel\"; dst = \"198.18.1.7\"; rate = \"@$STEADY\"; aqm = \"codel\"; },
	{ name = \"tail\"; dst = \"198.18.1.8\"; rate = \"@$STEADY\"; queue = 100; }
);"
check "the test config is valid" hx "$IPMODD" --check-config -c "$CONF"

# A bad trace: the error names the trace's file:line and the config's rule line.
BAD=$WORKDIR/bad.trace
printf '1\n2\nx\n' >"$BAD"
write_config "$WORKDIR/bad.conf" "rules = (
	{ name = \"bad\"; rate = \"@$BAD\"; }
);"
bad_out=$(hx "$IPMODD" --check-config -c "$WORKDIR/bad.conf" 2>&1)
diag "bad trace: $bad_out"
check "a bad trace is refused, naming $BAD:3" grep -q "$BAD:3: not a time" <<<"$bad_out"
check "... and the config file's line of the rule" grep -q "bad.conf:[0-9]*:" <<<"$bad_out"

check "ipmodd starts with trace, seed and keep rules" start_ipmodd "$CONF"

# --- steady 12 Mbit/s trace: TCP goodput within 5 % of 12 Mbit/s minus headers ----------
# 1500-byte IP packets with 1448 bytes of TCP payload (timestamps on):
# 12e6 * 1448 / 1500 = 11.584 Mbit/s.  Bin 0 holds the slow start: bins 1-3 count.
mapfile -t sb < <(tcp_bins 5301 4)
diag "steady trace, bytes per second: ${sb[*]}"
steady=$(awk -v a="${sb[1]:-0}" -v b="${sb[2]:-0}" -v c="${sb[3]:-0}" 'BEGIN { print (a + b + c) * 8 / 3 }')
diag "steady trace: goodput $steady bit/s over seconds 1-3 (expected 11584000)"
check "steady-12mbit: TCP goodput within 5 % of 11.584 Mbit/s ($steady)" \
	fcmp "$steady >= 11584000 * 0.95 && $steady <= 11584000 * 1.05"

# --- varying trace: 1 s bins follow 12, 6, 18, 3 Mbit/s within 15 % -----------------------
# The trace starts with the SYN; the queue (1000 packets) never runs dry
# once TCP has filled it, so each second delivers the trace's opportunities.
mapfile -t vb < <(tcp_bins 5302 4)
diag "varying trace, bytes per second: ${vb[*]}"
want=(12 6 18 3)
for k in 1 2 3; do
	got=$(awk -v b="${vb[$k]:-0}" 'BEGIN { print b * 8 }')
	exp=$(awk -v m="${want[$k]}" 'BEGIN { print m * 1e6 * 1448 / 1500 }')
	check "varying: second $k carries ${want[$k]} Mbit/s minus headers within 15 % ($got of $exp bit/s)" \
		fcmp "$got >= $exp * 0.85 && $got <= $exp * 1.15"
done
got0=$(awk -v b="${vb[0]:-0}" 'BEGIN { print b * 8 }')
diag "varying: second 0 (slow start included): $got0 bit/s of 11584000"
check "varying: second 0 (slow start included) carries 12 Mbit/s minus headers within 15 % ($got0)" \
	fcmp "$got0 >= 11584000 * 0.85 && $got0 <= 11584000 * 1.15"

# --- CoDel against droptail: pings sharing a trace link with a TCP flow ------------------------
# bulk_rtt DST PORT: a 4 s TCP flow to DST through its rule's link, and the
# median RTT of pings that share the link meanwhile.
bulk_rtt() {
	ip netns exec "$PEER_NS" timeout 15 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# A fixed, large window (no autotuning): the sender, not the receiver, fills the queue.
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(10)
c, _ = s.accept()
while c.recv(1 << 16): pass' "$1" "$2" &
	local rpid=$! i
	for i in $(seq 50); do
		px ss -ltn 2>/dev/null | grep -q "$1:$2" && break
		sleep 0.1
	done
	ip netns exec "$HOST_NS" timeout 15 python3 -c '
import socket, sys, time
s = socket.socket()
# Reno, without HyStart: slow start runs to a loss, so a droptail queue fills.
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno")
s.settimeout(10)
s.connect((sys.argv[1], int(sys.argv[2])))
end = time.monotonic() + 4
while time.monotonic() < end: s.send(b"x" * 65536)
s.close()' "$1" "$2" &
	local spid=$!
	sleep 1.5
	hx ping -c 20 -i 0.1 -W 3 "$1" | rtts | median
	wait "$spid" "$rpid" 2>/dev/null
}
codel_rtt=$(bulk_rtt 198.18.1.7 5303)
tail_rtt=$(bulk_rtt 198.18.1.8 5304)
diag "median RTT under a TCP flow on the 12 Mbit/s trace: aqm=codel $codel_rtt ms, droptail queue=100 $tail_rtt ms; CoDel drops $(rule_counter codel dropped-aqm)"
# droptail: Reno keeps 50 to 100 packets of 1 ms each in the queue; CoDel
# keeps the standing queue near its 5 ms target.
check "droptail queue=100: the pings wait behind a standing queue ($tail_rtt ms)" fcmp "$tail_rtt >= 40"
check "aqm=codel keeps the queue short ($codel_rtt ms)" fcmp "$codel_rtt <= 30"
check "CoDel dropped packets (dropped-aqm)" test "$(rule_counter codel dropped-aqm)" -gt 0
check "droptail dropped over its queue (dropped-limit)" test "$(rule_counter tail dropped-limit)" -gt 0

# --- seed: two runs of 2000 pings lose the same sequence numbers ---------------------------------
# lost_seqs DST: the icmp_seq numbers of 2000 pings that got no reply.
lost_seqs() {
	hx ping -c 2000 -i 0.002 -W 1 "$1" 2>/dev/null | sed -n 's/.*icmp_seq=\([0-9]*\) .*/\1/p' |
		sort -n | awk 'BEGIN { for (i = 1; i <= 2000; i++) want[i] = 1 } { delete want[$1] } END { for (i = 1; i <= 2000; i++) if (i in want) print i }'
}
reinstall() {
	# replace re-installs the rule: a seeded one starts its generator again.
	ctl replace "$1" "${@:2}" >/dev/null
}
lost_seqs 198.18.1.3 >"$WORKDIR/seed1"
reinstall seeded name=seeded proto=icmp dst=198.18.1.3 loss=0.3 seed=43
reinstall seeded name=seeded proto=icmp dst=198.18.1.3 loss=0.3 seed=42
lost_seqs 198.18.1.3 >"$WORKDIR/seed2"
n1=$(wc -l <"$WORKDIR/seed1")
n2=$(wc -l <"$WORKDIR/seed2")
diag "seed=42: $n1 and $n2 of 2000 lost"
check "seed=42 loses about 30 % of 2000 pings ($n1)" test "$n1" -ge 500 -a "$n1" -le 700
check "seed=42: the second run loses exactly the same sequence numbers" cmp -s "$WORKDIR/seed1" "$WORKDIR/seed2"
lost_seqs 198.18.1.4 >"$WORKDIR/noseed1"
reinstall unseeded name=unseeded proto=icmp dst=198.18.1.4 loss=0.3
lost_seqs 198.18.1.4 >"$WORKDIR/noseed2"
u1=$(wc -l <"$WORKDIR/noseed1")
u2=$(wc -l <"$WORKDIR/noseed2")
diag "no seed: $u1 and $u2 of 2000 lost"
check "without seed both runs lose about 30 % ($u1, $u2)" \
	test "$u1" -ge 500 -a "$u1" -le 700 -a "$u2" -ge 500 -a "$u2" -le 700
check "without seed the lost sequence numbers differ" differ "$WORKDIR/noseed1" "$WORKDIR/noseed2"

# --- expire: a delay rule goes by itself after 2 s --------------------------------------------
base=$(hx ping -c 5 -i 0.05 -W 1 198.18.1.5 | rtts | median)
# gone_after NAME START: seconds from START (date +%s.%N) until the rule is not listed.
gone_after() {
	local i
	for i in $(seq 100); do
		ctl rules | grep -q "  $1  " || { awk -v s="$2" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", e - s }'; return; }
		sleep 0.02
	done
	echo 99
}
t0=$(date +%s.%N)
check "add name=exp1 delay=100 expire=2s" ctl add name=exp1 proto=icmp dst=198.18.1.5 delay=100 expire=2s
held=$(hx ping -c 3 -i 0.05 -W 1 198.18.1.5 | rtts | median)
check "exp1 delays while it lives ($base -> $held ms)" fcmp "$held >= $base + 90"
gone=$(gone_after exp1 "$t0")
diag "exp1 (expire=2s) gone after $gone s"
check "expire=2s: the rule is gone after 2 s, -0.2 to +0.6 s with the polls ($gone s)" fcmp "$gone >= 1.8 && $gone <= 2.6"
after=$(hx ping -c 5 -i 0.05 -W 1 198.18.1.5 | rtts | median)
check "the delay stopped with it ($after ms)" fcmp "$after < $base + 20"
check "the daemon's log names it" grep -q "rule 'exp1' expired" "$WORKDIR/ipmodd.log"

t0=$(date +%s.%N)
check "add --for 2s name=exp2" ctl add --for 2s name=exp2 proto=icmp dst=198.18.1.5 delay=100
check "add --for puts expire=2s on the rule" grep -q "exp2 .*expire=2s" <(ctl rules)
gone=$(gone_after exp2 "$t0")
diag "exp2 (--for 2s) gone after $gone s"
check "--for 2s: gone after 2 s, -0.2 to +0.6 s with the polls ($gone s)" fcmp "$gone >= 1.8 && $gone <= 2.6"
check_eq "status counts two expired rules" "$(status_field rules-expired)" 2

# save writes the time left, not the duration given.
check "add --for 1h name=exp3" ctl add --for 1h name=exp3 proto=icmp dst=198.18.1.6 delay=10
sleep 1.2
saved=$(ctl save)
diag "save: $(grep exp3 <<<"$saved")"
check "save writes the time left of an expiring rule (3599s or less)" \
	grep -Eq 'name = "exp3";.*expire = "35[0-9][0-9]s"' <<<"$saved"

# --- flush --impairments: impairing rules and their held packets go, the rest stays ----------------
check "add a delay=2000 rule on UDP 7003" ctl add name=hold proto=udp dport=7003 delay=2000
hx python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    s.sendto(b"x" * 100, ("'"$PEER4"'", 7003))'
sleep 0.2
flushed0=$(status_field impair-flushed)
out=$(ctl flush --impairments)
diag "flush --impairments: $out"
check "flush --impairments reports the 8 it removed" grep -q "deleted 8 impairing rules" <<<"$out"
rules_left=$(ctl rules --json | python3 -c 'import json, sys; print(" ".join(r["name"] for r in json.load(sys.stdin)["rules"]))')
check_eq "only the non-impairing rule is left" "$rules_left" keep
flushed1=$(status_field impair-flushed)
check "the held packets were flushed ($flushed0 -> $flushed1)" test "$flushed1" -ge $((flushed0 + 5))

check "ipmodd stops cleanly" stop_ipmodd
done_testing
