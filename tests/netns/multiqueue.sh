#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Multi-queue: with tun.queues = 4 a worker thread per queue runs packets
# beside the event loop.  Parallel TCP transfers in both families arrive
# byte-exact and spread over the queues; rule counters stay exact; reloads
# and live edits under load lose nothing; trace and a delaying rule (whose
# timer a worker arms) work from the workers; SIGTERM leaves nothing behind;
# queues = "auto" opens a queue per CPU.  The userspace path: the fast path
# is off.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd socat sha256sum python3 ping
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
CONF=$WORKDIR/ipmodd.conf
ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }

# write_conf QUEUES
write_conf() {
	cat >"$CONF" <<CONF
tun = { name = "tun0"; mtu = 1500; queues = $1; };
routing = { table = $TABLE; priority = $PRIO; families = [ "ipv4", "ipv6" ]; };
control = { socket = "$SOCK"; };
fastpath = "off";
rules = (
	{ name = "drop9"; proto = "udp"; dport = 9; verdict = "drop"; },
	{ name = "u7000"; proto = "udp"; dport = 7000; set-ttl = 33; },
	{ name = "slow"; dst = "198.18.1.77"; proto = "icmp"; delay = 40; },
	{ name = "ttl"; set-ttl = 33; }
);
CONF
}

write_conf 4
start_ipmodd "$CONF" || { echo "Bail out! ipmodd did not start"; exit 1; }
check_eq "status: 4 queues" "$(status_field queues)" 4
check_eq "tun0 has 4 transmit queues" "$(hx ls /sys/class/net/tun0/queues | grep -c '^tx-')" 4
check "the log names the workers" grep -q "tun0: 4 queues, a packet worker each" "$WORKDIR/ipmodd.log"
# tun.nice, -5 by default: the loop and the four workers (every thread but
# a SCHED_IDLE reload thread) at -5, nothing else.
nices=$(thread_nices "$IPMODD_PID")
check_eq "every packet thread at tun.nice's default -5 ($(echo $nices))" \
	"$(echo "$nices" | awk '{ print $1 }' | tr '\n' ' ')" "-5 "
check "at least the loop and the 4 workers" test "$(echo "$nices" | awk '{ print $2 }')" -ge 5

# --- parallel TCP, both families, byte-exact ---------------------------------
N=8
head -c $((3 << 20)) /dev/urandom >"$WORKDIR/data"
# transfer FAMILY ADDR: N parallel connections, host -> peer, each copy compared.
transfer() { parallel_transfers "$N" px hx "$1" "$2" "$WORKDIR/data"; }

# Reloads and live edits while the transfers run: the chain changes under the workers.
churn() {
	local i
	for i in $(seq 15); do
		ctl reload >/dev/null || echo "reload $i failed"
		ctl add name=tmp$i proto=tcp dport=1 verdict=drop >/dev/null || echo "add $i failed"
		ctl del tmp$i >/dev/null || echo "del $i failed"
		sleep 0.05
	done
}

churn >"$WORKDIR/churn.out" 2>&1 &
churn_pid=$!
check_eq "IPv4: $N parallel 3 MB transfers arrive byte-exact" "$(transfer 4 "$PEER4")" 0
check_eq "IPv6: $N parallel 3 MB transfers arrive byte-exact" "$(transfer 6 "[$PEER6]")" 0
wait "$churn_pid"
check_eq "15 reloads, adds and deletes under load all answered" "$(cat "$WORKDIR/churn.out")" ""

busy=$(status_field queue-rx-packets | tr ',' '\n' | awk '$1 > 0' | wc -l)
diag "packets per queue: $(status_field queue-rx-packets)"
check "the flows spread over more than one queue" test "$busy" -ge 2
check_eq "the daemon's rx-packets is the sum over the queues" \
	"$(status_field queue-rx-packets | tr ',' '\n' | awk '{ s += $1 } END { print s }')" \
	"$(status_field rx-packets)"

# --- exact counters from many flows -------------------------------------------
ctl reset >/dev/null
ip netns exec "$PEER_NS" python3 "$SRCDIR/tests/helpers/udp-flows.py" recv 33 >"$WORKDIR/recv.out" 2>&1 &
recv_pid=$!
for _ in $(seq 50); do grep -q ready "$WORKDIR/recv.out" && break; sleep 0.05; done
hx python3 "$SRCDIR/tests/helpers/udp-flows.py" send "$PEER4"
wait "$recv_pid"
check_eq "the peer got all 1280 datagrams of 64 flows, none with a TTL other than 33" \
	"$(tail -1 "$WORKDIR/recv.out")" "1280 0"
check_eq "u7000 counted exactly 1280 packets" "$(rule_counter u7000 packets)" 1280
check_eq "drop9 counted exactly 1280 packets" "$(rule_counter drop9 packets)" 1280
check_eq "dropped-rule: 1280" "$(status_field dropped-rule)" 1280

# --- a delay from a worker: its timer is armed beside the sleeping loop -------
slow=$(ping_median hx 198.18.1.77)
fast=$(ping_median hx 198.18.1.1)
diag "median RTT: delayed $slow ms, other $fast ms"
# Without the wake-up the loop would sleep until its next timer (the health
# check, every 250 ms): the median was 125 ms when the wake-up was left out.
check "a delay = 40 rule adds 40 ms, not a sleeping loop's wait" \
	test "$slow" != lost -a "$slow" -ge 40 -a "$slow" -lt 70
check "other traffic is not delayed" test "$fast" != lost -a "$fast" -lt 20

# --- trace from the workers -----------------------------------------------------
ctl trace proto=icmp >"$WORKDIR/trace.out" 2>&1 &
trace_pid=$!
sleep 0.3
hx ping -n -c 3 -i 0.1 "$PEER4" >/dev/null
sleep 0.3
kill "$trace_pid"
wait "$trace_pid" 2>/dev/null
check_eq "trace shows the 3 pings" "$(grep -c 'dst=198.18.0.2 proto=icmp icmp-type=echo-request.*rule=ttl set-ttl=33 result=accept' "$WORKDIR/trace.out")" 3

# --- stop ---------------------------------------------------------------------------
stop_ipmodd
check_eq "SIGTERM: exit status 0" "$?" 0
check_eq "no rule or route left behind" "$(our_state)" ""
check "the log reports no error (nor a sanitizer)" \
	bash -c "! grep -Ei 'error|assert|sanitizer' '$WORKDIR/ipmodd.log'"

# --- queues = "auto", and tun.nice = 3 --------------------------------------------------
: >"$WORKDIR/ipmodd.log"
write_conf '"auto"'
sed -i 's/^tun = { /&nice = 3; /' "$CONF"
start_ipmodd "$CONF" || { echo "Bail out! ipmodd did not start with queues = auto"; exit 1; }
cpus=$(nproc)
[ "$cpus" -gt 16 ] && cpus=16
check_eq "queues = auto: one per CPU" "$(status_field queues)" "$cpus"
check "a ping goes through" bash -c "ip netns exec $HOST_NS ping -q -c 2 -i 0.2 -W 2 $PEER4 >/dev/null"
nices=$(thread_nices "$IPMODD_PID")
check_eq "tun.nice = 3: every packet thread at 3 ($(echo $nices))" \
	"$(echo "$nices" | awk '{ print $1 }' | tr '\n' ' ')" "3 "
stop_ipmodd
check_eq "no rule or route left behind" "$(our_state)" ""
check "the log reports no error (nor a sanitizer)" \
	bash -c "! grep -Ei 'error|assert|sanitizer' '$WORKDIR/ipmodd.log'"

done_testing
