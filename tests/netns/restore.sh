#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Restoration while traffic runs: what another program removes or changes of
# ipmodd's routing (the diversion rule, the routes of table T, tun0's up flag,
# its forwarding sysctl) is back within 2 s and packets go through tun0 again;
# a program that deletes the rule in a tight loop meets the back-off, which
# status reports, and the daemon neither spins nor floods its log.
. "$(dirname "$0")/lib.sh"
# Restoration is proved by traffic counted on tun0's TX counter, which the
# eBPF fast path's redirect bypasses.
FASTPATH=off

require_root
require_cmd ping python3 sysctl
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
write_config "$CONF"
LOG=$WORKDIR/ipmodd.log

status_of() {
	"$IPMODCTL" -s "$WORKDIR/control.sock" --json status |
		python3 -c "import json, sys; print(json.load(sys.stdin).get('$1', ''))"
}
now_ms() { date +%s%3N; }
# CPU time of the daemon so far, in clock ticks (utime + stime).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$IPMODD_PID/stat"; }

check "ipmodd starts" start_ipmodd "$CONF"
# The traffic of the whole test, bounded.
bg "$HOST_NS" ping -q -i 0.05 -w 50 "$PEER4" >/dev/null 2>&1
sleep 0.5

rule_ok() { hx ip -4 rule show | grep -qE "^$PRIO:[[:space:]]+from all lookup $TABLE\$"; }
routes_ok() {
	hx ip -4 route show table "$TABLE" | grep -q '^default dev tun0' &&
		hx ip -6 route show table "$TABLE" | grep -q '^default dev tun0'
}
link_ok() { hx ip link show tun0 | grep -q ',UP'; }
fwd_ok() { [ "$(hx cat /proc/sys/net/ipv4/conf/tun0/forwarding)" = 1 ]; }

# undone DESCRIPTION BREAK CONDITION: run BREAK in the host namespace, then
# wait at most 2 s for CONDITION (a shell function) to hold again.
undone() {
	local what=$1 brk=$2 cond=$3 t0 t
	t0=$(now_ms)
	hx sh -c "$brk"
	while :; do
		t=$(($(now_ms) - t0))
		if $cond; then
			ok "$what is undone in $t ms"
			return
		fi
		[ "$t" -gt 2000 ] && break
		sleep 0.02
	done
	not_ok "$what is undone within 2 s"
	diag "$(tail -5 "$LOG")"
}

undone "ip rule del of the IPv4 diversion" "ip -4 rule del pref $PRIO lookup $TABLE" rule_ok
undone "ip route flush table $TABLE (IPv4 and IPv6)" \
	"ip -4 route flush table $TABLE; ip -6 route flush table $TABLE" routes_ok
both_ok() { link_ok && routes_ok; }
undone "ip link set tun0 down (and the routes it took along)" "ip link set tun0 down" both_ok
undone "net.ipv4.conf.tun0.forwarding=0" "sysctl -qw net.ipv4.conf.tun0.forwarding=0" fwd_ok

tx0=$(tun_tx_packets)
sleep 1
tx1=$(tun_tx_packets)
check "traffic goes through tun0 again ($((tx1 - tx0)) packets in 1 s)" test $((tx1 - tx0)) -ge 10
check_eq "status: restore=ok" "$(status_of restore)" ok
restores=$(status_of restores)
check "status counts the items put back (restores=$restores)" test "$restores" -ge 6
check_eq "status names the last one" "$(status_of restore-last)" \
	"IPv4 devconf of tun0 (forwarding 1, accept_local 1, rp_filter 0)"
check_eq "one log line per restoration" "$(grep -c 'restored' "$LOG")" 4
diag "$(grep 'restored' "$LOG")"

# --- a program that keeps deleting the rule -----------------------------------
cpu0=$(cpu_ticks)
lines0=$(wc -l <"$LOG")
t0=$(now_ms)
ip netns exec "$HOST_NS" timeout 12 sh -c \
	"while :; do ip -4 rule del pref $PRIO lookup $TABLE 2>/dev/null; done" &
DELETER=$!
BG_PIDS+=($DELETER)
state=""
for i in $(seq 100); do
	state=$(status_of restore)
	[ "$state" = backoff ] && break
	sleep 0.05
done
check_eq "the fight leads to a back-off within 5 s ($(($(now_ms) - t0)) ms)" "$state" backoff
check_eq "status counts it" "$(status_of restore-backoffs)" 1
check "and says when it checks again ($(status_of restore-retry-sec) s)" \
	test "$(status_of restore-retry-sec)" -ge 1
t=$(now_ms)
"$IPMODCTL" -s "$WORKDIR/control.sock" status >/dev/null
check "the daemon answers meanwhile ($(($(now_ms) - t)) ms)" test $(($(now_ms) - t)) -lt 1000
wait "$DELETER"
cpu=$(($(cpu_ticks) - cpu0))
lines=$(($(wc -l <"$LOG") - lines0))
hz=$(getconf CLK_TCK)
check "12 s of fighting cost the daemon $cpu ticks of CPU (at most 5%)" \
	test "$cpu" -le $((12 * hz / 20))
check "and $lines log lines (at most 8)" test "$lines" -le 8
diag "$(tail -n "$lines" "$LOG")"
restores=$(status_of restores)
check "restorations stayed bounded ($restores items in all)" test "$restores" -le 16

t0=$(now_ms)
for i in $(seq 250); do
	rule_ok && break
	sleep 0.1
done
check "once the program stops, the rule is back when the back-off ends ($(($(now_ms) - t0)) ms)" rule_ok
tx0=$(tun_tx_packets)
sleep 1
tx1=$(tun_tx_packets)
check "traffic goes through tun0 again ($((tx1 - tx0)) packets in 1 s)" test $((tx1 - tx0)) -ge 10

lines0=$(wc -l <"$LOG")
stop_ipmodd TERM
check_eq "SIGTERM exits 0" "$?" 0
check_eq "nothing of ours is left" "$(our_state)" ""
check "its own removals at exit are no restoration" bash -c \
	"! tail -n +$((lines0 + 1)) '$LOG' | grep -q 'restored'"
diag "$(tail -n +$((lines0 + 1)) "$LOG")"

done_testing
