#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Abuse of a running ipmodd while ping -i 0.01 runs (issue 18): a second
# instance with tun.queues = 4 is refused before it touches anything (the
# first keeps its rules, its traffic and its tc filter); "ip link del tun0"
# neither makes the daemon spin nor leaves the host cut off.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping python3 setpriv timeout tc
# The unprivileged clients need an interpreter outside root's home (pyenv shims).
NOBODY_PY=/usr/bin/python3
[ -x "$NOBODY_PY" ] || NOBODY_PY=$(command -v python3)
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
RULES='rules = ( { name = "ttl-ping"; proto = "icmp"; icmp-type = "echo-request"; set-ttl = 33; } );'
# tun_conf FILE QUEUES SOCKET: the test's config with that many queues and socket.
tun_conf() {
	write_config "$1" "$RULES"
	sed -i "s|^tun = .*|tun = { name = \"tun0\"; mtu = 1500; queues = $2; };|" "$1"
	sed -i "s|^control = .*|control = { socket = \"$3\"; mode = \"0666\"; };|" "$1"
}
ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }
# cpu_ticks PID: utime + stime of a process, in clock ticks (empty when gone).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
# cpu_percent PID: its CPU use over the next second (0 when it is gone).
cpu_percent() {
	local t0 t1 hz
	hz=$(getconf CLK_TCK)
	t0=$(cpu_ticks "$1")
	sleep 1
	t1=$(cpu_ticks "$1")
	[ -n "$t0" ] && [ -n "$t1" ] || { echo 0; return; }
	echo $(( (t1 - t0) * 100 / hz ))
}
# ping_start NAME COUNT: ping -i 0.01 in the background; ping_lost NAME: how many it lost.
ping_start() {
	ip netns exec "$HOST_NS" ping -i 0.01 -c "$2" -W 1 "$PEER4" >"$WORKDIR/ping-$1.out" 2>&1 &
	PING_PID=$!
	BG_PIDS+=("$PING_PID")
}
# Not from a subshell ($(...)): the ping is this shell's child.
ping_wait() { wait "$PING_PID"; }
ping_lost() {
	awk '/packets transmitted/ { print $1 - $4 }' "$WORKDIR/ping-$1.out"
}
chmod 0711 "$WORKDIR"

# --- a second instance ----------------------------------------------------------------
# The first runs two queues (a multi-queue tun, which TUNSETIFF lets anyone
# attach to) and, where it can, the fast path's tc filter.
tun_conf "$CONF" 2 "$SOCK"
check "the first ipmodd starts (2 queues)" start_ipmodd "$CONF"
FIRST_PID=$IPMODD_PID
state0=$(our_state)
filter0=$(hx tc filter show dev tun0 egress)
diag "tc egress filter on tun0: ${filter0:-none (no fast path here)}"
ping_start second 600
sleep 0.5
# Another control socket: the tun alone tells there is a live instance.
tun_conf "$WORKDIR/second.conf" 4 "$WORKDIR/second.sock"
timeout 20 ip netns exec "$HOST_NS" "$IPMODD" -c "$WORKDIR/second.conf" >"$WORKDIR/second.log" 2>&1
rc=$?
check_eq "a second instance (queues = 4, another socket) exits 1" "$rc" 1
check "... saying that tun0 is held by a running process" grep -q "tun0 is held by a running process" "$WORKDIR/second.log"
# The same socket: the live instance answers, with its pid.
tun_conf "$WORKDIR/same.conf" 4 "$SOCK"
timeout 20 ip netns exec "$HOST_NS" "$IPMODD" -c "$WORKDIR/same.conf" >"$WORKDIR/same.log" 2>&1
rc=$?
check_eq "a second instance on the same socket exits 1" "$rc" 1
check "... naming the live instance's pid" grep -q "another ipmodd (pid $FIRST_PID) answers" "$WORKDIR/same.log"
ping_wait
lost=$(ping_lost second)
check_eq "ping -i 0.01 lost nothing meanwhile" "$lost" 0
check_eq "the first instance's rules and routes are untouched" "$(our_state)" "$state0"
check_eq "its tc egress filter is still attached" "$(hx tc filter show dev tun0 egress)" "$filter0"
check_eq "tun0 still has only the first instance's 2 queues" \
	"$(hx ip -d link show tun0 | grep -o 'numqueues [0-9]*')" "numqueues 2"
# Counted in the daemon or in its fast path: a second instance's queues would take some.
n0=$(rule_counter ttl-ping packets)
hx ping -c 20 -i 0.02 -W 1 "$PEER4" >/dev/null
check_eq "the first instance still handles every ping" "$(rule_counter ttl-ping packets)" $((n0 + 20))
check "the first instance is alive" kill -0 "$FIRST_PID"

# --- ip link del tun0 -----------------------------------------------------------------
# tun_deleted TAG: delete tun0 under ping; the daemon must not spin, and
# traffic flows again within 5 s (a restored diversion or a clean exit).
tun_deleted() {
	local tag=$1 pct i back=0 pid=$IPMODD_PID log0
	log0=$(wc -l <"$WORKDIR/ipmodd.log")
	ping_start "del-$tag" 1000
	sleep 0.5
	hx ip link del tun0
	sleep 1
	pct=$(cpu_percent "$pid")
	check "[$tag] the daemon's CPU over 1 s, 1 s after the deletion: ${pct}% < 5%" test "$pct" -lt 5
	for i in $(seq 40); do
		if hx ping -c 1 -W 1 "$PEER4" >/dev/null 2>&1; then
			back=1
			break
		fi
		sleep 0.1
	done
	check "[$tag] traffic flows again within 5 s" test "$back" = 1
	if kill -0 "$pid" 2>/dev/null; then
		check "[$tag] the daemon runs on, diverting through a new tun0" \
			bash -c "ip netns exec '$HOST_NS' ip route show table $TABLE | grep -q '^default dev tun0'"
		stop_ipmodd
	else
		stop_ipmodd; rc=$?
		check_eq "[$tag] the daemon exited with status 1 (Restart=on-failure restarts it)" "$rc" 1
		check "[$tag] ... saying why" bash -c "tail -n +$((log0 + 1)) '$WORKDIR/ipmodd.log' | grep -q 'tun0 disappeared'"
		check_eq "[$tag] ... and left no diversion behind" "$(our_state)" ""
	fi
	kill "$PING_PID" 2>/dev/null
	wait "$PING_PID" 2>/dev/null
}
tun_deleted "2 queues"
tun_conf "$CONF" 1 "$SOCK"
check "ipmodd starts (1 queue)" start_ipmodd "$CONF"
tun_deleted "1 queue"

done_testing
