#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Faults with traffic running: kill -9 ten times during an iperf3 transfer
# (fail-open: the host reaches the peer within 1 s of each kill, one set of
# entries after each restart); the same in fail-closed mode blocks, and a
# restart unblocks; SIGSTOP stops WATCHDOG=1 and the guardian takes the
# diversion away, SIGCONT brings it back; failed tun writes are counted.
. "$(dirname "$0")/lib.sh"
# A stopped or killed daemon stalls the traffic that goes through it; with the
# eBPF fast path the kernel would carry the empty chain's traffic on by itself.
FASTPATH=off

require_root
require_cmd ping iperf3 python3
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }
status_key() { ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# routing KEY=VALUE...: the test config with extra routing keys.
routing() {
	write_config "$CONF" "${RULES:-}"
	sed -i "s/^routing = { \(.*\) };/routing = { \1 $* };/" "$CONF"
}
rules_lines() { { hx ip rule; hx ip -6 rule; } | grep -c -e "lookup $TABLE" -e "iif tun0 lookup main"; }
# reach_ms: milliseconds until one ping to the peer succeeds (bounded by 3 s).
reach_ms() {
	local t0=$(date +%s%N) i
	for i in $(seq 300); do
		hx ping -c1 -W0.05 -i0.01 "$PEER4" >/dev/null 2>&1 && { echo $(( ($(date +%s%N) - t0) / 1000000 )); return 0; }
	done
	echo 99999
}
kill9() { kill -9 "$IPMODD_PID"; wait "$IPMODD_PID" 2>/dev/null; IPMODD_PID=""; }

# --- fail-open: kill -9 ten times during an iperf3 transfer ---------------------------
routing
ip netns exec "$PEER_NS" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
BG_PIDS+=($!)
sleep 0.3
check "ipmodd starts (fail-open)" start_ipmodd "$CONF"
ip netns exec "$HOST_NS" iperf3 -c "$PEER4" -p 5201 -t 25 -b 50M --json >"$WORKDIR/iperf.json" 2>&1 &
iperf_pid=$!
sleep 1
slow=0 bad_state=0 failed_start=0 worst=0
for i in $(seq 10); do
	kill9
	ms=$(reach_ms)
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "$ms" -le 1000 ] || slow=$((slow + 1))
	start_ipmodd "$CONF" || failed_start=$((failed_start + 1))
	[ "$(rules_lines)" = 4 ] || { bad_state=$((bad_state + 1)); diag "after restart $i: $(hx ip rule)"; }
	sleep 0.8
done
diag "slowest recovery after kill -9: $worst ms"
check_eq "after each of 10 kills the host reached the peer within 1 s" "$slow" 0
check_eq "each of the 10 restarts succeeded" "$failed_start" 0
check_eq "each restart left exactly one set of rules" "$bad_state" 0
wait "$iperf_pid"; rc=$?
check_eq "the iperf3 transfer ran to its end through the kills" "$rc" 0
check "the transfer went through ipmodd for a while" test "$(tun_tx_bytes)" -gt 150000
kill9
check "--cleanup after the last kill" hx "$IPMODD" -c "$CONF" --cleanup
check_eq "nothing is left" "$(our_state)" ""

# --- fail-closed: a crash blocks, a restart unblocks ------------------------------------
routing 'failure = "closed";'
check "ipmodd starts (fail-closed)" start_ipmodd "$CONF"
check "the peer is reachable through it" hx ping -c1 -W1 "$PEER4"
check_eq "table $TABLE has the tun route and an unreachable one per family" \
	"$({ hx ip route show table $TABLE; hx ip -6 route show table $TABLE; } | grep -c -e unreachable -e 'dev tun0')" 4
kill9
sleep 0.2
out=$(hx ping -c1 -W1 "$PEER4" 2>&1); rc=$?
check "after kill -9 the peer is not reachable (IPv4)" bash -c "[ $rc != 0 ]"
diag "$out"
check "... nor over IPv6" bash -c "! ip netns exec $HOST_NS ping -6 -c1 -W1 $PEER6 >/dev/null 2>&1"
check "... the kernel says no route to host" grep -qi 'no route to host\|unreachable' <<<"$out"
check "a restart succeeds" start_ipmodd "$CONF"
check "the peer is reachable again" hx ping -c1 -W1 "$PEER4"
check_eq "one set of rules after the restart" "$(rules_lines)" 4
check_eq "one unreachable route per family" \
	"$({ hx ip route show table $TABLE; hx ip -6 route show table $TABLE; } | grep -c unreachable)" 2

# Ten more kills during an iperf3 transfer: blocked each time, open after each restart.
ip netns exec "$PEER_NS" iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
BG_PIDS+=($!)
sleep 0.3
ip netns exec "$HOST_NS" iperf3 -c "$PEER4" -p 5202 -t 25 -b 20M --json >"$WORKDIR/iperf-closed.json" 2>&1 &
iperf_pid=$!
sleep 1
leaked=0 failed_start=0 bad_state=0 closed=0
for i in $(seq 10); do
	kill9
	# While it is down: no route for the peer, and no ping through.
	hx ip route get "$PEER4" >/dev/null 2>&1 && leaked=$((leaked + 1))
	hx ping -c3 -i0.1 -W0.3 "$PEER4" >/dev/null 2>&1 && leaked=$((leaked + 1))
	start_ipmodd "$CONF" || failed_start=$((failed_start + 1))
	[ "$(rules_lines)" = 4 ] || bad_state=$((bad_state + 1))
	hx ping -c1 -W1 "$PEER4" >/dev/null 2>&1 || closed=$((closed + 1))
	sleep 0.5
done
check_eq "while down after each of 10 kills, no route and no ping got through" "$leaked" 0
check_eq "each of the 10 restarts succeeded" "$failed_start" 0
check_eq "each restart left exactly one set of rules" "$bad_state" 0
check_eq "after each restart the peer was reachable again" "$closed" 0
wait "$iperf_pid"; rc=$?
check_eq "the iperf3 transfer survived the ten blocks" "$rc" 0
stop_ipmodd; rc=$?
check_eq "SIGTERM exits 0" "$rc" 0
check "after SIGTERM traffic stays blocked" bash -c "! ip netns exec $HOST_NS ping -c1 -W1 $PEER4 >/dev/null 2>&1"
check "--cleanup keeps the block" hx "$IPMODD" -c "$CONF" --cleanup
check "... traffic still blocked" bash -c "! ip netns exec $HOST_NS ping -c1 -W1 $PEER4 >/dev/null 2>&1"
check "--unblock removes it" hx "$IPMODD" -c "$CONF" --unblock
check "the peer is reachable without ipmodd" hx ping -c1 -W1 "$PEER4"
check_eq "nothing is left" "$(our_state)" ""

# --- SIGSTOP: the watchdog stops, the guardian takes the diversion away -------------------
notify_listen "$WORKDIR/notify.sock" "$WORKDIR/notify.log"
routing 'stall-timeout = 1000;'
IPMODD_ENV="NOTIFY_SOCKET=$WORKDIR/notify.sock WATCHDOG_USEC=1000000"
check "ipmodd starts with a watchdog and a 1 s stall timeout" start_ipmodd "$CONF"
IPMODD_ENV=""
sleep 1
wd() { grep -c 'WATCHDOG=1' "$WORKDIR/notify.log"; }
check "WATCHDOG=1 arrives while it runs" test "$(wd)" -ge 2
kill -STOP "$IPMODD_PID"
before=$(wd)
t0=$(date +%s%N)
gone=""
for i in $(seq 60); do
	hx ip rule | grep -q "^$PRIO:" || { gone=$(( ($(date +%s%N) - t0) / 1000000 )); break; }
	sleep 0.05
done
diag "the diversion was removed ${gone:-never} ms after SIGSTOP (stall timeout 1000 ms)"
check "the guardian removed the diversion within 2 s of SIGSTOP" test -n "$gone"
tx=$(tun_tx_packets)
check "the peer is reachable while ipmodd is stopped" hx ping -c2 -i0.2 -W1 "$PEER4"
check_eq "... over main, not through the stopped daemon" "$(tun_tx_packets)" "$tx"
sleep 0.5
check_eq "no WATCHDOG=1 arrived while it was stopped" "$(wd)" "$before"
kill -CONT "$IPMODD_PID"
back=""
t0=$(date +%s%N)
for i in $(seq 40); do
	hx ip rule | grep -q "^$PRIO:" && { back=$(( ($(date +%s%N) - t0) / 1000000 )); break; }
	sleep 0.05
done
diag "the diversion was back ${back:-never} ms after SIGCONT"
check "after SIGCONT the diversion is back within 2 s" test -n "$back"
sleep 0.6
check "WATCHDOG=1 arrives again" test "$(wd)" -gt "$before"
check "traffic goes through ipmodd again" bash -c \
	"t=\$(ip -n $HOST_NS -s link show tun0 | awk '/TX:/ { getline; print \$2 }'); ip netns exec $HOST_NS ping -c2 -i0.2 -W1 $PEER4 >/dev/null && [ \$(ip -n $HOST_NS -s link show tun0 | awk '/TX:/ { getline; print \$2 }') -gt \$t ]"
check_eq "status counts the stall" "$(status_key stall-trips)" 1
check_eq "one set of rules" "$(rules_lines)" 4

# --- failed tun writes are counted, never fatal ----------------------------------------------
ctl add name=slow proto=icmp dst="$PEER4" delay=400 >/dev/null
hx ping -c5 -i0.05 -W1 "$PEER4" >/dev/null 2>&1 &
sleep 0.15
# Writes to a tun that is down fail with EIO while the delayed copies leave;
# ipmodd's watch brings the link back up within ~100 ms, so keep taking it down.
for i in $(seq 50); do
	ip -n "$HOST_NS" link set tun0 down
	sleep 0.02
done
errs=$(status_key write-errors)
diag "write errors: $errs"
check "writes to a downed tun are counted as write errors" test "$errs" -gt 0
check "ipmodd is still running" kill -0 "$IPMODD_PID"
check "and answers" ctl status
stop_ipmodd; rc=$?
check_eq "ipmodd exits 0" "$rc" 0
check_eq "nothing is left" "$(our_state)" ""
done_testing
