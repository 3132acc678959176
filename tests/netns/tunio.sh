#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tun.io = "uring" (issue 17): the daemon reads (and writes) its tun through
# io_uring.  Where the build lacks liburing the key is a configuration error
# naming file:line, and that is all there is to test.  Otherwise, in each
# mode (one queue with the multishot read, one queue with the plain reads of
# a kernel without it (IPMODD_URING_READS=plain), one queue writing with
# write() (IPMODD_URING_WRITES=plain), two queues with a worker each):
# status says uring and how it reads and writes, a 4 MB (TUNIO_MB) TCP
# transfer in each family arrives byte-exact, a one-second flood of 64-byte
# datagrams goes through, 50 pings a family are all answered, what the
# daemon read equals what it wrote (its counters and the tun's), no read or
# write error, and SIGTERM exits 0 with the tun gone at once (the ring's
# reads end before the tun closes).  Then the fallbacks: io_uring_setup refused by a seccomp
# filter (EPERM, as a unit's SystemCallFilter=; ENOSYS, as a kernel without
# io_uring) starts the daemon on read/write with one log line and the
# reason in the status; and the tun deleted under the ring ends the daemon
# as with read/write.  The fast path is off: every packet is the daemon's.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd socat sha256sum python3 ping
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
UDPBLAST=${UDPBLAST:-$(dirname "$IPMODD")/bench/udpblast}
REFUSE_SYSCALL=${REFUSE_SYSCALL:-$(dirname "$IPMODD")/tests/helpers/refuse-syscall}
[ -x "$UDPBLAST" ] || skip_all "needs bench/udpblast (make bench/udpblast)"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
CONF=$WORKDIR/ipmodd.conf
ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }
# The script sets tun.io itself.
unset TUN_IO

# write_conf QUEUES (REINJECT as write_config has it: runtests' valgrind step)
write_conf() {
	local ri=""
	[ -n "${REINJECT:-}" ] && ri="reinject = \"$REINJECT\";"
	cat >"$CONF" <<CONF
tun = { name = "tun0"; mtu = 1500; queues = $1; io = "uring"; };
routing = { table = $TABLE; priority = $PRIO; families = [ "ipv4", "ipv6" ]; $ri };
control = { socket = "$SOCK"; };
fastpath = "off";
rules = ( { name = "ttl"; set-ttl = 33; } );
CONF
}

write_conf 1
out=$("$IPMODD" --check-config -c "$CONF" 2>&1)
if [ $? -ne 0 ]; then
	check "a build without liburing: tun.io = \"uring\" is an error naming file:line" \
		bash -c "grep -q '$CONF:1: .*lacks liburing' <<<'$out'"
	diag "$out"
	done_testing
	exit
fi
ok "tun.io = \"uring\" is a valid configuration (built with liburing)"

kv=$(uname -r | sed -n 's/^\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
multishot=0
if [ "${kv% *}" -gt 6 ] || { [ "${kv% *}" -eq 6 ] && [ "${kv#* }" -ge 7 ]; }; then
	multishot=1
fi

# TUNIO_MB: the transfers' size (1..64, default 4; smaller in a TCG guest).
MB=${TUNIO_MB:-4}
[[ $MB =~ ^[1-9][0-9]?$ ]] && [ "$MB" -le 64 ] || { echo "Bail out! TUNIO_MB: 1..64"; exit 1; }
head -c $((MB * 1000000)) /dev/urandom >"$WORKDIR/blob"
want=$(sha256sum <"$WORKDIR/blob" | cut -d' ' -f1)
SINK=$WORKDIR/sink.out

# transfer FAMILY ADDR PORT: the blob to the peer over TCP; its SHA-256 there matches.
transfer() {
	local got
	rm -f "$WORKDIR/recv"
	ip netns exec "$PEER_NS" timeout 30 socat -u "TCP$1-LISTEN:$3,reuseaddr" \
		"OPEN:$WORKDIR/recv,creat,trunc" 2>>"$WORKDIR/socat.err" &
	local lp=$!
	for _ in $(seq 50); do
		px ss -ltn 2>/dev/null | grep -q ":$3 " && break
		sleep 0.05
	done
	timeout 30 ip netns exec "$HOST_NS" socat -u "FILE:$WORKDIR/blob" "TCP$1:$2:$3" \
		2>>"$WORKDIR/socat.err"
	wait "$lp"
	got=$(sha256sum <"$WORKDIR/recv" 2>/dev/null | cut -d' ' -f1)
	[ "$got" = "$want" ]
}

# flood: a second of 64-byte datagrams to a sink on the peer; prints how many arrived.
flood() {
	ip netns exec "$PEER_NS" "$UDPBLAST" sink 9000 20 >"$SINK" 2>&1 &
	local sp=$!
	for _ in $(seq 50); do
		grep -q ready "$SINK" && break
		sleep 0.05
	done
	timeout 15 ip netns exec "$HOST_NS" "$UDPBLAST" send "$PEER4" 9000 1 64 >/dev/null
	sleep 0.2
	kill -INT "$sp" 2>/dev/null
	wait "$sp"
	sed -n 's/^received=//p' "$SINK"
}

# pings FAMILY ADDR: 50 quick pings, the percentage lost.
pings() {
	hx ping "$1" -n -q -i 0.01 -c 50 -W 1 "$2" | sed -n 's/.* \([0-9]*\)% packet loss.*/\1/p'
}

# mode NAME QUEUES READS [ENV]: one run of the daemon, READS multishot or
# plain, ENV more VAR=value words for it.
mode() {
	local name=$1 queues=$2 reads=$3 env=${4:-} got s rx tx krx ktx rc
	write_conf "$queues"
	: >"$WORKDIR/ipmodd.log"
	[ "$reads" = plain ] && env="$env IPMODD_URING_READS=plain"
	IPMODD_ENV="$env" start_ipmodd "$CONF" || { not_ok "$name: ipmodd starts"; return; }
	check_eq "$name: status tun-io" "$(status_field tun-io)" uring
	if [ "$reads" = plain ] || [ "$multishot" = 1 ]; then
		check_eq "$name: status tun-io-reads" "$(status_field tun-io-reads)" "$reads"
	else
		check_eq "$name: status tun-io-reads (no multishot read before 6.7)" \
			"$(status_field tun-io-reads)" plain
	fi
	# Through the ring where the kernel completes them in the submit (6.7+).
	case $env in
	*IPMODD_URING_WRITES=plain*) check_eq "$name: status tun-io-writes" "$(status_field tun-io-writes)" write ;;
	*) check_eq "$name: status tun-io-writes" "$(status_field tun-io-writes)" \
		"$([ "$multishot" = 1 ] && echo ring || echo write)" ;;
	esac
	check_eq "$name: no fallback in the status" "$(status_field tun-io-fallback)" none
	check "$name: the log says io_uring" grep -q 'tun0: reads through io_uring' "$WORKDIR/ipmodd.log"
	check "$name: $MB MB over TCP/IPv4, SHA-256 equal" transfer 4 "$PEER4" 7001
	check "$name: $MB MB over TCP/IPv6, SHA-256 equal" transfer 6 "[$PEER6]" 7002
	got=$(flood)
	check "$name: a UDP flood of 64 B went through (${got:-0} datagrams arrived)" \
		test "${got:-0}" -gt 100
	check_eq "$name: ping IPv4, 50 of 50 answered" "$(pings -4 "$PEER4")" 0
	check_eq "$name: ping IPv6, 50 of 50 answered" "$(pings -6 "$PEER6")" 0
	s=$(ctl status --json)
	rx=$(json_field rx-packets <<<"$s")
	tx=$(json_field tx-packets <<<"$s")
	# A packet the loop guard took for one of its own coming back is not
	# written (status loops, and a log line).  Once in the 6.1 guest one was
	# (reinject-kernel 1, loops 1; which packet is not known): counted, and
	# at most a few, so that a guard gone wrong still fails here.
	loops=$(json_field loops <<<"$s")
	check "$name: the daemon wrote what it read ($rx read, $tx written, ${loops:-?} dropped as loops)" \
		test "$rx" -gt 1000 -a "${loops:-9}" -le 3 -a "$rx" = "$((tx + ${loops:-0}))"
	[ "$rx" = "$tx" ] || diag "status: $(tr ',' '\n' <<<"$s" | grep -vE ': (0|"0")}?$' | tr -d '\n')" \
		"log: $(tail -5 "$WORKDIR/ipmodd.log" | tr '\n' '|')"
	check_eq "$name: no read or write error" \
		"$(json_field read-errors <<<"$s") $(json_field write-errors <<<"$s")" "0 0"
	ktx=$(hx cat /sys/class/net/tun0/statistics/tx_packets)
	krx=$(hx cat /sys/class/net/tun0/statistics/rx_packets)
	check "$name: the tun took back what it handed over ($ktx handed, $krx back, ${loops:-?} loops)" \
		test "$ktx" = "$((krx + ${loops:-0}))"
	stop_ipmodd
	rc=$?
	check_eq "$name: SIGTERM: exit 0" "$rc" 0
	check "$name: tun0 is gone when the daemon is" bash -c "! ip netns exec $HOST_NS ip link show tun0 2>/dev/null"
	check_eq "$name: nothing left behind" "$(our_state)" ""
}

mode "one queue" 1 multishot
mode "plain reads" 1 plain
mode "write()" 1 multishot IPMODD_URING_WRITES=plain
mode "two queues" 2 multishot
check "two queues: each worker's ring (no fallback logged)" \
	bash -c "! grep -q 'io_uring refused' '$WORKDIR/ipmodd.log'"

# --- io_uring refused: the daemon reads with read() ------------------------------
# io_uring_setup is 425 on x86_64 and arm64 alike.
refused() {
	local err=$1 text=$2 rc
	write_conf 1
	: >"$WORKDIR/ipmodd.log"
	ip netns exec "$HOST_NS" "$REFUSE_SYSCALL" 425 "$err" "$IPMODD" -c "$CONF" \
		>>"$WORKDIR/ipmodd.log" 2>&1 &
	IPMODD_PID=$!
	if ! wait_routing "$IPMODD_PID" rule_up 6; then
		not_ok "io_uring_setup refused ($text): ipmodd starts anyway"
		diag "$(tail -5 "$WORKDIR/ipmodd.log")"
		IPMODD_PID=""
		return
	fi
	ok "io_uring_setup refused ($text): ipmodd starts anyway"
	check_eq "... status tun-io" "$(status_field tun-io)" readwrite
	check_eq "... status tun-io-fallback says why" "$(status_field tun-io-fallback)" \
		"1 queue(s) read with read(): io_uring_setup: $text"
	check_eq "... one log line says why" \
		"$(grep -c "io_uring refused (io_uring_setup: $text); reading with read() and write() instead" "$WORKDIR/ipmodd.log")" 1
	check "... $MB MB over TCP/IPv4, SHA-256 equal" transfer 4 "$PEER4" 7003
	check_eq "... ping IPv6, 50 of 50 answered" "$(pings -6 "$PEER6")" 0
	stop_ipmodd
	rc=$?
	check_eq "... SIGTERM: exit 0" "$rc" 0
}
refused 1 "Operation not permitted"
refused 38 "Function not implemented"

# --- the tun deleted under the ring -----------------------------------------------
write_conf 1
: >"$WORKDIR/ipmodd.log"
start_ipmodd "$CONF" || { echo "Bail out! ipmodd did not start"; exit 1; }
check_eq "ping IPv4 through the ring before the tun goes" "$(pings -4 "$PEER4")" 0
hx ip link del tun0
for _ in $(seq 50); do
	kill -0 "$IPMODD_PID" 2>/dev/null || break
	sleep 0.1
done
check "the tun deleted: ipmodd exits" bash -c "! kill -0 $IPMODD_PID 2>/dev/null"
stop_ipmodd
rc=$?
check "... with an error" test "$rc" -ne 0
check "... saying why" grep -q 'tun0 disappeared' "$WORKDIR/ipmodd.log"
check_eq "... the host reaches the peer" "$(pings -4 "$PEER4")" 0

done_testing
