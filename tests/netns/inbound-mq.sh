#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The inbound userspace path on several queues: with tun.queues = 4 and
# inbound = { interfaces = [ "veth0" ]; } the inbound tun tun0i0 has 4
# queues too, a packet worker each.  Parallel TCP transfers peer -> host in
# both families arrive byte-exact and spread over the inbound queues (status
# inbound-queue-rx-packets: more than one queue busy, the sum is
# in-rx-packets; ipmodctl metrics has a sample per queue); 64 UDP flows keep
# exact rule counters and their rewritten TTL; a direction=in delay from a
# worker adds its 40 ms; trace sees the packets the workers run; SIGTERM
# leaves nothing behind, kill -9 leaves the peer able to reach the host
# (fail-open).  Then tun.io = "uring" on the
# inbound tun (one queue: the loop's ring; two: a ring per worker): status
# says uring, a transfer arrives byte-exact.  The fast path is off: every
# inbound packet is the daemon's.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd socat sha256sum python3 ping
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
"$IPMODD" --version >/dev/null || skip_all "no ipmodd"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
CONF=$WORKDIR/ipmodd.conf
ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }
# The script sets tun.io itself.
unset TUN_IO

# write_conf QUEUES [IO]
write_conf() {
	cat >"$CONF" <<CONF
tun = { name = "tun0"; mtu = 1500; queues = $1; io = "${2:-readwrite}"; };
routing = { table = $TABLE; priority = $PRIO; families = [ "ipv4", "ipv6" ]; };
control = { socket = "$SOCK"; };
fastpath = "off";
inbound = { interfaces = [ "veth0" ]; };
rules = (
	{ name = "drop9"; direction = "in"; proto = "udp"; dport = 9; verdict = "drop"; },
	{ name = "u7000"; direction = "in"; proto = "udp"; dport = 7000; set-ttl = 33; },
	{ name = "slow"; direction = "in"; proto = "icmp"; icmp-type = "echo-request"; delay = 40; },
	{ name = "tcpin"; direction = "in"; proto = "tcp"; set-dscp = 10; }
);
CONF
}

# start CONF: ipmodd up with its inbound diversion in place.
start() {
	start_ipmodd "$CONF" || return 1
	for _ in $(seq 50); do
		[ "$(status_field inbound)" = veth0 ] && return 0
		sleep 0.1
	done
	return 1
}

write_conf 4
start || { echo "Bail out! ipmodd did not start with 4 queues and inbound"; exit 1; }
check_eq "status: 4 queues" "$(status_field queues)" 4
check_eq "status: inbound-queues 4" "$(status_field inbound-queues)" 4
check_eq "status: inbound-tun-io readwrite" "$(status_field inbound-tun-io)" readwrite
check_eq "tun0i0 has 4 transmit queues" "$(hx ls /sys/class/net/tun0i0/queues | grep -c '^tx-')" 4
check "the log names the inbound workers" \
	grep -q "veth0: received IPv4/IPv6 packets diverted through tun0i0 (.*, 4 queues, a packet worker each)" \
	"$WORKDIR/ipmodd.log"

# --- parallel TCP peer -> host, both families, byte-exact ---------------------
N=8
head -c $((3 << 20)) /dev/urandom >"$WORKDIR/data"
# transfer FAMILY ADDR: N parallel connections, peer -> host, each copy compared.
transfer() { parallel_transfers "$N" hx px "$1" "$2" "$WORKDIR/data"; }

check_eq "IPv4: $N parallel 3 MB transfers peer -> host arrive byte-exact" "$(transfer 4 "$HOST4")" 0
check_eq "IPv6: $N parallel 3 MB transfers peer -> host arrive byte-exact" "$(transfer 6 "[$HOST6]")" 0
list=$(status_field inbound-queue-rx-packets)
diag "inbound packets per queue: $list"
busy=$(tr ',' '\n' <<<"$list" | awk '$1 > 0' | wc -l)
check "the inbound flows spread over more than one queue" test "$busy" -ge 2
check_eq "inbound-queue-rx-packets lists 4 queues" "$(tr ',' '\n' <<<"$list" | wc -l)" 4
check_eq "in-rx-packets is the sum over the inbound queues" \
	"$(tr ',' '\n' <<<"$list" | awk '{ s += $1 } END { print s }')" "$(status_field in-rx-packets)"
check "tcpin counted the segments" test "$(rule_counter tcpin packets)" -gt 1000
ctl metrics >"$WORKDIR/metrics.txt" 2>&1
check_eq "metrics: ipmodd_inbound_queue_rx_packets_total for each of the 4 queues" \
	"$(grep -c '^ipmodd_inbound_queue_rx_packets_total{queue="[0-3]"} [0-9]' "$WORKDIR/metrics.txt")" 4
check "ipmodctl metrics is valid OpenMetrics" python3 "$SRCDIR/tests/helpers/openmetrics-check.py" \
	"$WORKDIR/metrics.txt"

# --- exact counters from many flows -------------------------------------------
ctl reset >/dev/null
hx python3 "$SRCDIR/tests/helpers/udp-flows.py" recv 33 >"$WORKDIR/recv.out" 2>&1 &
recv_pid=$!
for _ in $(seq 50); do grep -q ready "$WORKDIR/recv.out" && break; sleep 0.05; done
px python3 "$SRCDIR/tests/helpers/udp-flows.py" send "$HOST4"
wait "$recv_pid"
check_eq "the host got all 1280 datagrams of 64 flows, none with a TTL other than 33" \
	"$(tail -1 "$WORKDIR/recv.out")" "1280 0"
diag "tun0i0 dropped $(hx cat /sys/class/net/tun0i0/statistics/tx_dropped) (queue full);" \
	"the daemon read $(status_field in-rx-packets) inbound packets, UDP receive errors on the host:" \
	"$(hx nstat -az UdpRcvbufErrors UdpInErrors 2>/dev/null | awk '/^Udp/ { printf "%s %s ", $1, $2 }')"
check_eq "u7000 counted exactly 1280 packets" "$(rule_counter u7000 packets)" 1280
check_eq "drop9 counted exactly 1280 packets" "$(rule_counter drop9 packets)" 1280

# --- a delay from an inbound worker: its timer is armed beside the sleeping loop
slow=$(ping_median px "$HOST4")
diag "median RTT peer -> host through a direction=in delay = 40: $slow ms"
check "a direction=in delay = 40 rule adds 40 ms from a worker" \
	test "$slow" != lost -a "$slow" -ge 40 -a "$slow" -lt 70

# --- trace from the inbound workers ---------------------------------------------
ctl trace proto=icmp >"$WORKDIR/trace.out" 2>&1 &
trace_pid=$!
sleep 0.3
px ping -n -c 3 -i 0.1 -W 2 "$HOST4" >/dev/null
sleep 0.3
kill "$trace_pid"
wait "$trace_pid" 2>/dev/null
check_eq "trace shows the 3 echo requests coming in" \
	"$(grep -c "dst=$HOST4 proto=icmp icmp-type=echo-request.*rule=slow" "$WORKDIR/trace.out")" 3

# --- stop -------------------------------------------------------------------------
stop_ipmodd
check_eq "SIGTERM: exit status 0" "$?" 0
check_eq "no rule or route left behind" "$(our_state)" ""
check "the inbound tun is gone" bash -c "! ip netns exec '$HOST_NS' ip link show tun0i0 2>/dev/null"
check "the log reports no error (nor a sanitizer)" \
	bash -c "! grep -Ei 'error|assert|sanitizer' '$WORKDIR/ipmodd.log'"

# --- kill -9 with the workers: fail-open ---------------------------------------------
: >"$WORKDIR/ipmodd.log"
start || { echo "Bail out! ipmodd did not start again"; exit 1; }
kill -9 "$IPMODD_PID"
wait "$IPMODD_PID" 2>/dev/null
IPMODD_PID=""
for _ in $(seq 100); do
	hx ip link show tun0i0 >/dev/null 2>&1 || break
	sleep 0.01
done
check "kill -9: the inbound tun went with the daemon" \
	bash -c "! ip netns exec '$HOST_NS' ip link show tun0i0 2>/dev/null"
# tcx: the links went with the daemon; tc: divert finds its tun gone and passes.
check "kill -9: the peer reaches the host" bash -c "ip netns exec '$PEER_NS' ping -c 3 -i 0.2 -W 1 $HOST4 >/dev/null"
check "ipmodd --cleanup after kill -9" hx "$IPMODD" -c "$CONF" --cleanup
check_eq "... no tc ingress filter left on veth0" "$(hx tc filter show dev veth0 ingress)" ""

# --- tun.io = "uring" on the inbound tun ---------------------------------------------
write_conf 1 uring
if ! "$IPMODD" --check-config -c "$CONF" >/dev/null 2>&1; then
	diag "built without liburing: no io_uring on the inbound tun to test"
	done_testing
	exit
fi
N=2
for queues in 1 2; do
	write_conf "$queues" uring
	: >"$WORKDIR/ipmodd.log"
	start || { echo "Bail out! ipmodd did not start with tun.io = uring, $queues queue(s)"; exit 1; }
	if [ "$(status_field tun-io-fallback)" != none ]; then
		diag "io_uring refused here: $(status_field tun-io-fallback)"
		stop_ipmodd
		continue
	fi
	check_eq "uring, $queues queue(s): status tun-io" "$(status_field tun-io)" uring
	before=$(status_field in-rx-packets)
	check_eq "uring, $queues queue(s): $N 3 MB transfers peer -> host arrive byte-exact" \
		"$(transfer 4 "$HOST4")" 0
	check "uring, $queues queue(s): the daemon read them from the inbound tun" \
		test "$(status_field in-rx-packets)" -gt $((before + 100))
	check_eq "uring, $queues queue(s): status inbound-tun-io" "$(status_field inbound-tun-io)" uring
	check_eq "uring, $queues queue(s): no read or write error" \
		"$(status_field read-errors) $(status_field write-errors)" "0 0"
	stop_ipmodd
	check_eq "uring, $queues queue(s): SIGTERM: exit status 0" "$?" 0
	check "uring, $queues queue(s): the inbound tun is gone" \
		bash -c "! ip netns exec '$HOST_NS' ip link show tun0i0 2>/dev/null"
	check "uring, $queues queue(s): the log reports no error (nor a sanitizer)" \
		bash -c "! grep -Ei 'error|assert|sanitizer' '$WORKDIR/ipmodd.log'"
done

done_testing
