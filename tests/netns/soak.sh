#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A soak: for SOAK_SECONDS (default 60) traffic runs through the daemon
# (iperf3 TCP capped at 100 Mbit/s, ping and ping -6, UDP through a delay
# rule), while "ipmodctl reload" runs every 2 s, a rule is added and deleted
# every second, the counters are reset every 5 s, and trace and capture
# clients connect and go away over and over.  VmRSS and the open descriptors
# of the daemon are sampled every 2 s.
#
# Growth criterion: the samples after a 10 s warm-up are cut in thirds; the
# largest VmRSS of the last third may exceed the largest of the first third
# by at most 1 MiB (SOAK_RSS_SLACK_KIB), and once every client has gone the
# descriptors are back to their count before the soak.  The figures measured
# are in the diagnostics.  "make soak SOAK_SECONDS=600" runs a longer one.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping iperf3 python3 awk timeout
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
SOAK_SECONDS=${SOAK_SECONDS:-60}
SOAK_RSS_SLACK_KIB=${SOAK_RSS_SLACK_KIB:-1024}
WARMUP=10
SAMPLE_EVERY=2
case $SOAK_SECONDS in
'' | *[!0-9]*) echo "Bail out! SOAK_SECONDS must be a number of seconds"; exit 1 ;;
esac
[ "$SOAK_SECONDS" -ge 20 ] || { echo "Bail out! SOAK_SECONDS must be at least 20"; exit 1; }
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
write_config "$CONF" 'rules = (
	{ name = "ttl-ping"; proto = "icmp"; icmp-type = "echo-request"; dst = "198.18.0.2"; set-ttl = 33; },
	{ name = "hl-ping"; proto = "icmpv6"; icmp-type = "echo-request"; set-ttl = 44; },
	{ name = "mss"; proto = "tcp"; tcp-flags = "syn"; clamp-mss = 1200; },
	{ name = "fake-ping"; proto = "icmp"; icmp-type = "echo-request"; dst = "198.18.1.9"; verdict = "reply"; },
	{ name = "delay-udp"; proto = "udp"; dport = 7100; delay = 20; jitter = 5; },
	{ name = "drop-udp"; proto = "udp"; dport = 7101; verdict = "drop"; }
);'
# Under AddressSanitizer, freed blocks wait in a quarantine of up to 256 MiB:
# the 4 MiB capture rings of sessions that come and go would read as growth.
# Without the quarantine, RSS is the daemon's own again (other builds ignore it).
IPMODD_ENV="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
check "ipmodd starts" start_ipmodd "$CONF"
IPMODD_ENV=""
ctl() { "$IPMODCTL" -s "$SOCK" "$@"; }
fds() { ls "/proc/$IPMODD_PID/fd" 2>/dev/null | wc -l; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$IPMODD_PID/status" 2>/dev/null; }
sleep 0.3
FD0=$(fds)
RSS0=$(rss_kib)
diag "soak of $SOAK_SECONDS s; before it: $FD0 open descriptors, VmRSS $RSS0 KiB"

START=$(date +%s)
END=$((START + SOAK_SECONDS))
# Every loop below runs until END and no longer.

# --- traffic ------------------------------------------------------------------------
ip netns exec "$PEER_NS" timeout $((SOAK_SECONDS + 15)) iperf3 -s -1 >"$WORKDIR/iperf3-s.out" 2>&1 &
BG_PIDS+=($!)
sleep 0.5
ip netns exec "$HOST_NS" timeout $((SOAK_SECONDS + 15)) iperf3 -c "$PEER4" -t "$SOAK_SECONDS" -b 100M \
	-i 0 >"$WORKDIR/iperf3.out" 2>&1 &
IPERF_PID=$!
BG_PIDS+=($IPERF_PID)
ip netns exec "$HOST_NS" ping -i 0.02 -c $((SOAK_SECONDS * 40)) -W 2 "$PEER4" >"$WORKDIR/ping4.out" 2>&1 &
PING4_PID=$!
BG_PIDS+=($PING4_PID)
ip netns exec "$HOST_NS" ping -6 -i 0.05 -c $((SOAK_SECONDS * 18)) -W 2 "$PEER6" >"$WORKDIR/ping6.out" 2>&1 &
PING6_PID=$!
BG_PIDS+=($PING6_PID)
# UDP through the delay rule and the drop rule, 100 datagrams a second each;
# echo requests to the reply rule, 20 a second.
ip netns exec "$HOST_NS" python3 - "$END" <<'PY' >"$WORKDIR/udp.out" 2>&1 &
import socket, sys, time
end = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n = 0
while time.time() < end:
    for port in (7100, 7101):
        u.sendto(b"soak %d" % n, ("198.18.1.1", port))
    n += 1
    time.sleep(0.01)
print(n * 2)
PY
UDP_PID=$!
BG_PIDS+=($UDP_PID)
ip netns exec "$HOST_NS" ping -i 0.05 -c $((SOAK_SECONDS * 18)) -W 2 198.18.1.9 >"$WORKDIR/fake.out" 2>&1 &
FAKE_PID=$!
BG_PIDS+=($FAKE_PID)

# --- control: reload every 2 s, add and del every second, reset every 5 s -------------
ip netns exec "$HOST_NS" bash -c '
	end=$1 i=0 reloads=0 edits=0 resets=0 fails=0
	while [ "$(date +%s)" -lt "$end" ]; do
		i=$((i + 1))
		if "$2" -s "$3" add name=live-$i proto=udp dport=$((30000 + i % 1000)) set-ttl=7 >/dev/null &&
		   "$2" -s "$3" del live-$i >/dev/null; then
			edits=$((edits + 1))
		else
			fails=$((fails + 1))
		fi
		if [ $((i % 2)) = 0 ]; then
			"$2" -s "$3" reload >/dev/null && reloads=$((reloads + 1)) || fails=$((fails + 1))
		fi
		if [ $((i % 5)) = 0 ]; then
			"$2" -s "$3" reset >/dev/null && resets=$((resets + 1)) || fails=$((fails + 1))
		fi
		sleep 1
	done
	echo "$reloads $edits $resets $fails"' control "$END" "$IPMODCTL" "$SOCK" >"$WORKDIR/control.out" 2>&1 &
CONTROL_PID=$!
BG_PIDS+=($CONTROL_PID)

# --- trace and capture clients that come and go ----------------------------------------
# A trace for 0.5 s, a capture of 20 packets, a capture of one rule, a
# trace of a rule, each client going away on its own or by SIGTERM.
ip netns exec "$HOST_NS" bash -c '
	end=$1 ctl=$2 sock=$3 err=$4/session.err sessions=0 fails=0
	# session WANT-STATUS COMMAND...: one client, its exit status as expected.
	session() {
		local want=$1 rc
		shift
		"$@" >/dev/null 2>"$err"
		rc=$?
		if [ $rc = "$want" ]; then
			sessions=$((sessions + 1))
		else
			fails=$((fails + 1))
			echo "# exit $rc, not $want, $((end - $(date +%s))) s before the end: $*: $(head -c 200 "$err")" >&2
		fi
	}
	# The last session begins while traffic still runs to feed it.
	while [ "$(date +%s)" -lt $((end - 6)) ]; do
		session 124 timeout 0.5 "$ctl" -s "$sock" trace proto=icmp
		session 0 timeout 5 "$ctl" -s "$sock" capture -c 20 -w -
		session 0 timeout 5 "$ctl" -s "$sock" capture rule=delay-udp --when after -c 5 --snaplen 64 -w /dev/null
		session 124 timeout 0.3 "$ctl" -s "$sock" --json trace rule=ttl-ping
		sleep 0.2
	done
	echo "$sessions $fails"' streams "$END" "$IPMODCTL" "$SOCK" "$WORKDIR" >"$WORKDIR/streams.out" 2>"$WORKDIR/streams.err" &
STREAMS_PID=$!
BG_PIDS+=($STREAMS_PID)

# --- samples ------------------------------------------------------------------------------
# "seconds-since-start VmRSS-KiB descriptors", every SAMPLE_EVERY s.
: >"$WORKDIR/samples"
while now=$(date +%s) && [ "$now" -lt "$END" ]; do
	r=$(rss_kib)
	[ -n "$r" ] || break
	echo "$((now - START)) $r $(fds)" >>"$WORKDIR/samples"
	sleep "$SAMPLE_EVERY"
done

for p in "$CONTROL_PID" "$STREAMS_PID" "$UDP_PID" "$IPERF_PID" "$PING4_PID" "$PING6_PID" "$FAKE_PID"; do
	wait "$p"
done

# --- verdicts ---------------------------------------------------------------------------------
check "ipmodd is alive after $SOAK_SECONDS s" kill -0 "$IPMODD_PID"
read -r reloads edits resets cfails <"$WORKDIR/control.out"
diag "control: $reloads reloads, $edits add+del pairs, $resets resets, $cfails failures"
check_eq "every reload, add, del and reset succeeded" "$cfails" 0
check "a reload every 2 s ($reloads)" test "$reloads" -ge $((SOAK_SECONDS / 4))
read -r sessions sfails <"$WORKDIR/streams.out"
diag "streams: $sessions trace and capture sessions, $sfails failures"
head -5 "$WORKDIR/streams.err"
check_eq "every trace and capture session ran and ended" "$sfails" 0
bw=$(sed -n 's/.* \([0-9.]* [MG]bits\/sec\) .*receiver$/\1/p' "$WORKDIR/iperf3.out" | tail -1)
diag "iperf3: ${bw:-no result} received; $(grep -h 'packets transmitted' "$WORKDIR/ping4.out" "$WORKDIR/ping6.out" "$WORKDIR/fake.out" | tr '\n' ';')"
check "iperf3 ran the whole soak" grep -q 'receiver$' "$WORKDIR/iperf3.out"
check "ping lost nothing" grep -q ' 0% packet loss' "$WORKDIR/ping4.out"
check "ping -6 lost nothing" grep -q ' 0% packet loss' "$WORKDIR/ping6.out"
check "the reply rule answered every echo request" grep -q ' 0% packet loss' "$WORKDIR/fake.out"

# VmRSS: first third against last third, after the warm-up.
read -r n first last growth <<<"$(awk -v w="$WARMUP" '$1 >= w { t[++n] = $1; r[n] = $2 }
	END {
		k = int(n / 3)
		if (k < 2) { print n, 0, 0, 0; exit }
		for (i = 1; i <= k; i++) if (r[i] > a) a = r[i]
		for (i = n - k + 1; i <= n; i++) if (r[i] > b) b = r[i]
		print n, a, b, b - a
	}' "$WORKDIR/samples")"
read -r rss_min rss_max fd_max <<<"$(awk 'NR == 1 { lo = $2; hi = $2; f = $3 }
	{ if ($2 < lo) lo = $2; if ($2 > hi) hi = $2; if ($3 > f) f = $3 }
	END { print lo, hi, f }' "$WORKDIR/samples")"
diag "VmRSS samples after the ${WARMUP} s warm-up: $n; max of the first third $first KiB, of the last third $last KiB, growth $growth KiB (allowed $SOAK_RSS_SLACK_KIB)"
diag "VmRSS over the whole soak: $rss_min..$rss_max KiB (before: $RSS0 KiB); descriptors at most $fd_max (before: $FD0)"
step=$(( ($(wc -l <"$WORKDIR/samples") + 59) / 60 ))
diag "samples (s:KiB:fds, one in $step): $(awk -v s="$step" '(NR - 1) % s == 0 { printf "%s:%s:%s ", $1, $2, $3 }' "$WORKDIR/samples")"
if [ "$first" -gt 0 ]; then
	check "VmRSS does not grow: the last third's max is within $SOAK_RSS_SLACK_KIB KiB of the first third's" \
		test "$growth" -le "$SOAK_RSS_SLACK_KIB"
else
	ok "VmRSS growth # SKIP only $n samples after the warm-up, need 6"
fi
for i in $(seq 50); do
	[ "$(fds)" -le "$FD0" ] && break
	sleep 0.1
done
check_eq "the descriptors are back to their count before the soak" "$(fds)" "$FD0"
diag "after the soak: $(fds) open descriptors, VmRSS $(rss_kib) KiB"
out=$(ctl status --json)
check "status shows no read or write errors" \
	bash -c "grep -q '\"read-errors\":0,\"write-errors\":0' <<<'$out'"
check "status shows no client left but this one, no stream" grep -q '"control-clients":1,"streams":0' <<<"$out"

stop_ipmodd; rc=$?
check_eq "ipmodd exits 0" "$rc" 0
done_testing
