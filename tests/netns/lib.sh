# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for the namespace tests: TAP output, a host namespace that
# runs ipmodd and a peer namespace behind a veth pair.  Everything a test
# creates is removed by the EXIT trap; the machine's own namespace is never
# touched.  Addresses: 198.18.0.0/15 (RFC 2544 lab range) and 2001:db8::/32.

set -u

: "${IPMODD:?IPMODD must point at the ipmodd binary}"
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
# netpkt.py, for the tests' Python.
PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH

TAP_N=0
TAP_FAILED=0
HOST_NS=""
PEER_NS=""
IPMODD_PID=""
WORKDIR=""
BG_PIDS=()

HOST4=198.18.0.1
PEER4=198.18.0.2
HOST6=2001:db8:77::1
PEER6=2001:db8:77::2
TABLE=100
PRIO=10000

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
diag() { printf '# %s\n' "$@"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's status.
check() {
	local what=$1
	shift
	# Command output goes to the test log (stderr), never into the TAP stream.
	if "$@" >&2; then ok "$what"; else not_ok "$what"; fi
}
# check_eq DESCRIPTION GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:" "$2" "want:" "$3"
	fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
done_testing() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }

require_root() {
	[ "$(id -u)" -eq 0 ] || skip_all "needs root for network namespaces"
	command -v ip >/dev/null || skip_all "needs iproute2"
	[ -c /dev/net/tun ] || skip_all "needs /dev/net/tun"
}

# Only inside tests/container/run's throwaway container (systemd as PID 1),
# never on the machine itself: the scripts that install ipmodd and start
# ipmodd.service.  $1 names the container run for the skip message.
require_systemd_container() {
	[ "${IPMODD_CONTAINER:-}" = 1 ] ||
		skip_all "only in $1's container (installs ipmodd and starts ipmodd.service)"
	[ "$(id -u)" -eq 0 ] || skip_all "needs root"
	[ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ] || skip_all "systemd is not PID 1 here"
	local virt
	virt=$(systemd-detect-virt --container 2>/dev/null)
	[ -n "$virt" ] && [ "$virt" != none ] ||
		skip_all "not in a container: refusing to install ipmodd and divert this machine's traffic"
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || skip_all "needs $c"
	done
}

cleanup() {
	local p
	stop_ipmodd 2>/dev/null
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ -n "$HOST_NS" ] && ip netns del "$HOST_NS" 2>/dev/null
	[ -n "$PEER_NS" ] && ip netns del "$PEER_NS" 2>/dev/null
	[ -n "$WORKDIR" ] && rm -rf "$WORKDIR"
	return 0
}

# Run in a namespace.  Never background these functions ("hx cmd &"): $! would
# be a subshell's pid, not the command's; background "ip netns exec" directly.
hx() { ip netns exec "$HOST_NS" "$@"; }
px() { ip netns exec "$PEER_NS" "$@"; }

# Two namespaces joined by veth: host (runs ipmodd) and peer.
setup_topology() {
	local tag
	tag="ipm$$-$RANDOM"
	HOST_NS="$tag-h"
	PEER_NS="$tag-p"
	WORKDIR=$(mktemp -d /tmp/ipmodd-test.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	ip netns add "$HOST_NS" || return 1
	ip netns add "$PEER_NS" || return 1
	hx ip link set lo up
	px ip link set lo up
	ip link add veth0 netns "$HOST_NS" type veth peer name veth0 netns "$PEER_NS" || return 1
	hx ip addr add "$HOST4/24" dev veth0
	hx ip addr add "$HOST6/64" dev veth0 nodad
	px ip addr add "$PEER4/24" dev veth0
	px ip addr add "$PEER6/64" dev veth0 nodad
	hx ip link set veth0 up
	px ip link set veth0 up
	# The peer answers for a whole range so tests can use several "remote" hosts.
	px ip addr add 198.18.1.1/24 dev lo
	px ip addr add 2001:db8:1::1/64 dev lo nodad
	hx ip route add 198.18.1.0/24 via "$PEER4"
	hx ip -6 route add 2001:db8:1::/64 via "$PEER6"
	# Wait until IPv6 neighbour discovery works on the link.
	local i
	for i in $(seq 50); do
		hx ping -6 -c1 -W1 "$PEER6" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# write_config FILE [EXTRA-TEXT]: a config for the test namespace, with the
# default fastpath ("auto"), routing.reinject ("auto") and tun.io
# ("readwrite") unless FASTPATH, REINJECT or TUN_IO say otherwise.
write_config() {
	local f=$1 fp="" ri="" io=""
	shift
	[ -n "${FASTPATH:-}" ] && fp="fastpath = \"$FASTPATH\";"
	[ -n "${REINJECT:-}" ] && ri="reinject = \"$REINJECT\";"
	[ -n "${TUN_IO:-}" ] && io="io = \"$TUN_IO\";"
	cat >"$f" <<CONF
tun = { name = "tun0"; mtu = 1500; $io };
routing = { table = $TABLE; priority = $PRIO; families = [ "ipv4", "ipv6" ]; $ri };
control = { socket = "$WORKDIR/control.sock"; };
$fp
${1:-}
CONF
}

# routing_up: the host namespace has the default route of table $TABLE
# through tun0 (ipmodd installs it for IPv4 first, before any rule).
routing_up() {
	hx ip route show table "$TABLE" 2>/dev/null | grep -q '^default dev tun0'
}
# rule_up 4|6: the diversion rule at $PRIO is there in that family (IPv6's
# is the last thing a start installs when both families are diverted).
rule_up() {
	hx ip -"$1" rule show 2>/dev/null | grep -q "^$PRIO:"
}

# wait_routing PID [CHECK...]: the one "wait until routing is up": polls (5 s
# at most) until routing_up and CHECK..., if given, hold (e.g. "rule_up 6");
# returns 1 at once when PID (the daemon) has exited.
wait_routing() {
	local pid=$1 i
	shift
	for i in $(seq 100); do
		routing_up && { [ $# -eq 0 ] || "$@"; } && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# wait_for SECONDS COMMAND...: poll every 0.2 s until COMMAND succeeds.
wait_for() {
	local n=$(($1 * 5)) _
	shift
	for _ in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# notify_listen SOCKET LOG: the one stand-in for systemd's NOTIFY_SOCKET, in
# the background: a datagram socket at SOCKET (mode 0666, so that a daemon
# run unprivileged may send to it) that appends each message to LOG as one
# line, its newlines as '|'.  It listens 60 s at most (the EXIT trap ends it
# sooner); returns once SOCKET exists.
notify_listen() {
	local i
	python3 -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
s.settimeout(0.2)
end = time.time() + 60
with open(sys.argv[2], "a", buffering=1) as f:
    while time.time() < end:
        try:
            f.write(s.recv(4096).decode().replace("\n", "|") + "\n")
        except socket.timeout:
            pass
' "$1" "$2" &
	BG_PIDS+=($!)
	for i in $(seq 50); do
		[ -S "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# tun_io_apply CONFIG: with TUN_IO set (TUN_IO=uring runs a whole script with
# tun.io = "uring"), a config a script wrote itself gets it too, when its tun
# section is one line "tun = { ... };" without io (write_config's has it).
tun_io_apply() {
	[ -n "${TUN_IO:-}" ] && [ -f "$1" ] || return 0
	grep -q '^tun = {.*io = ' "$1" && return 0
	sed -i "s/^tun = { /tun = { io = \"$TUN_IO\"; /" "$1"
}

# tun_io_settle: after a kill -9 with TUN_IO=uring, wait (1 s at most) for
# tun0 to go.  The kernel drops the ring's references to the tun's file in
# the background once the process is gone, about 10 ms later; with read()
# the tun is gone when wait returns.  No-op without TUN_IO.
tun_io_settle() {
	local i
	[ -n "${TUN_IO:-}" ] || return 0
	for i in $(seq 100); do
		hx ip link show tun0 >/dev/null 2>&1 || return 0
		sleep 0.01
	done
}

# start_capped CONFIG [LOG]: start_ipmodd without CAP_BPF, CAP_SYS_ADMIN or
# CAP_PERFMON in any set (no fast path, no re-injection program), its output
# appended to LOG ($WORKDIR/capped.log).
start_capped() {
	local conf=$1 log=${2:-$WORKDIR/capped.log}
	tun_io_apply "$conf"
	ip netns exec "$HOST_NS" setpriv --bounding-set=-bpf,-sys_admin,-perfmon --inh-caps=-all -- \
		"$IPMODD" -c "$conf" >>"$log" 2>&1 &
	IPMODD_PID=$!
	wait_routing "$IPMODD_PID"
}

# capped_exit CONFIG: start_capped for a start that must fail, with a fresh
# $WORKDIR/capped.log; prints the daemon's exit status.  Use as rc=$(...).
capped_exit() {
	: >"$WORKDIR/capped.log"
	start_capped "$1"
	wait "$IPMODD_PID" 2>/dev/null
	echo $?
}

# thread_nices PID: the distinct nice values of the process's threads but
# SCHED_IDLE ones (the reload's), one line each ("nice count"), for tun.nice.
thread_nices() {
	local t
	for t in /proc/"$1"/task/*; do
		grep -qsE '^policy +: +5$' "$t/sched" && continue
		# The fields after the command's closing parenthesis: nice is the 17th.
		sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{ print $17 }'
	done | sort -n | uniq -c | awk '{ print $2, $1 }'
}

# start_ipmodd CONFIG [ARGS...]: start in the host namespace, wait for routing.
start_ipmodd() {
	local conf=$1
	shift
	tun_io_apply "$conf"
	# IPMODD_ENV: extra VAR=value words for the daemon's environment.
	ip netns exec "$HOST_NS" env ${IPMODD_ENV:-} "$IPMODD" -c "$conf" "$@" >>"$WORKDIR/ipmodd.log" 2>&1 &
	IPMODD_PID=$!
	wait_routing "$IPMODD_PID" rule_up 6 && return 0
	diag "ipmodd did not come up:" "$(tail -5 "$WORKDIR/ipmodd.log")"
	return 1
}

# stop_ipmodd [SIGNAL]: returns the daemon's exit status.
stop_ipmodd() {
	local sig=${1:-TERM} rc
	[ -n "$IPMODD_PID" ] || return 0
	kill -s "$sig" "$IPMODD_PID" 2>/dev/null
	wait "$IPMODD_PID"
	rc=$?
	IPMODD_PID=""
	return $rc
}

# Our policy rules and routes as "ip rule" prints them, v4 then v6.
our_state() {
	hx ip -4 rule show | grep -E "^($((PRIO - 1))|$PRIO):" || true
	hx ip -6 rule show | grep -E "^($((PRIO - 1))|$PRIO):" || true
	hx ip -4 route show table "$TABLE" 2>/dev/null || true
	hx ip -6 route show table "$TABLE" 2>/dev/null || true
}

# Packets the kernel handed to the daemon (tun0 TX counter).
tun_tx_packets() {
	hx cat /sys/class/net/tun0/statistics/tx_packets 2>/dev/null || echo 0
}
# Bytes the kernel handed to the daemon (a TSO super-packet is one packet).
tun_tx_bytes() {
	hx cat /sys/class/net/tun0/statistics/tx_bytes 2>/dev/null || echo 0
}

# rule_counter NAME KEY: a counter of a rule, from 'ipmodctl rules --json'
# through the test's ctl function.
rule_counter() {
	ctl rules --json | python3 -c '
import json, sys
for r in json.load(sys.stdin)["rules"]:
    if r["name"] == sys.argv[1]:
        print(r.get(sys.argv[2], "none"))
        break
else:
    print("none")' "$1" "$2"
}
# json_field KEY [DEFAULT]: one value of the JSON object on stdin, as the
# text status printed it: booleans 1/0, lists joined by ','.
json_field() {
	python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1], sys.argv[2])
print(int(v) if isinstance(v, bool) else ",".join(map(str, v)) if isinstance(v, list) else v)' "$1" "${2-none}"
}

# status_field KEY: one value of 'ipmodctl status --json' (the test's ctl).
status_field() {
	ctl status --json | json_field "$1"
}

# bg NETNS COMMAND...: a background server, ended by the EXIT trap.
bg() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@" &
	BG_PIDS+=($!)
}

# A third namespace two hops away: host -> peer (router) -> far (198.18.2.2, 2001:db8:2::2).
FAR4=198.18.2.2
FAR6=2001:db8:2::2
FAR_NS=""
setup_far() {
	FAR_NS="${HOST_NS%-h}-f"
	ip netns add "$FAR_NS" || return 1
	trap 'cleanup; ip netns del "$FAR_NS" 2>/dev/null' EXIT
	ip netns exec "$FAR_NS" ip link set lo up
	ip link add veth1 netns "$PEER_NS" type veth peer name veth1 netns "$FAR_NS" || return 1
	px ip addr add 198.18.2.1/24 dev veth1
	px ip addr add 2001:db8:2::1/64 dev veth1 nodad
	ip netns exec "$FAR_NS" ip addr add "$FAR4/24" dev veth1
	ip netns exec "$FAR_NS" ip addr add "$FAR6/64" dev veth1 nodad
	px ip link set veth1 up
	ip netns exec "$FAR_NS" ip link set veth1 up
	ip netns exec "$FAR_NS" ip route add default via 198.18.2.1
	ip netns exec "$FAR_NS" ip -6 route add default via 2001:db8:2::1
	px sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	hx ip route add 198.18.2.0/24 via "$PEER4"
	hx ip -6 route add 2001:db8:2::/64 via "$PEER6"
	local i
	for i in $(seq 50); do
		hx ping -c1 -W1 "$FAR4" >/dev/null 2>&1 && hx ping -6 -c1 -W1 "$FAR6" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# parallel_transfers N RECEIVER SENDER FAMILY ADDR FILE: N TCP connections at
# once (ports 6001..6000+N) carry FILE from SENDER's namespace to RECEIVER's
# (hx or px) at ADDR (FAMILY 4 or 6; an IPv6 ADDR in brackets); prints how
# many of the N copies differ from FILE.
parallel_transfers() {
	local n=$1 recv=$2 send=$3 fam=$4 addr=$5 file=$6 i pids=() bad=0 want got
	want=$(sha256sum <"$file" | cut -d' ' -f1)
	for i in $(seq "$n"); do
		rm -f "$WORKDIR/got.$i"
		"$recv" timeout 60 socat -u "TCP$fam-LISTEN:$((6000 + i)),reuseaddr" "CREATE:$WORKDIR/got.$i" &
		pids+=($!)
	done
	for i in $(seq "$n"); do
		for _ in $(seq 50); do
			"$recv" ss -ltn | grep -q ":$((6000 + i)) " && break
			sleep 0.05
		done
	done
	for i in $(seq "$n"); do
		"$send" timeout 60 socat -u "FILE:$file" "TCP$fam:$addr:$((6000 + i))" &
	done
	wait "${pids[@]}"
	for i in $(seq "$n"); do
		got=$(sha256sum <"$WORKDIR/got.$i" | cut -d' ' -f1)
		[ "$got" = "$want" ] || bad=$((bad + 1))
	done
	echo "$bad"
}

# ping_median RUNNER ADDR: the median RTT in whole ms of 10 pings to ADDR
# (RUNNER: hx or px), "lost" when fewer than 8 came back.
ping_median() {
	"$1" ping -n -c 10 -i 0.2 -W 2 "$2" | python3 -c '
import re, statistics, sys
t = [float(x) for x in re.findall(r"time=([0-9.]+) ms", sys.stdin.read())]
print("%d" % statistics.median(t) if len(t) >= 8 else "lost")'
}

# pcap_start NAME NETNS IFACE [FILTER]: background tcpdump, waits until it listens.
pcap_start() {
	local name=$1 ns=$2 ifc=$3 i
	shift 3
	ip netns exec "$ns" tcpdump --immediate-mode -B 16384 -i "$ifc" -U -n -w "$WORKDIR/$name.pcap" "$@" 2>"$WORKDIR/$name.err" &
	eval "PCAP_PID_$name=$!"
	BG_PIDS+=($!)
	for i in $(seq 50); do
		grep -q listening "$WORKDIR/$name.err" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
pcap_stop() {
	local pid
	eval "pid=\$PCAP_PID_$1"
	sleep 0.3
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
# nflog_start NAME NS GROUP MATCH...: what NS's IP stack receives, as it
# receives it: packets each nft MATCH (one rule each, e.g. "ip saddr 1.2.3.4")
# selects in a prerouting chain of NS (its own table, ipmodd_nflog_NAME) are
# logged to NFLOG group GROUP (each at once: queue-threshold 1) and written by tcpdump to $WORKDIR/NAME.pcap
# (link type NFLOG; netpkt.pcap_ip and tshark read it).  Unlike a capture on
# an interface it sees a packet after tc ingress: once, as the inbound path
# left it, whichever way the path took.  nflog_stop NAME ends it.
# NFLOG_SNAPLEN=N: only the first N bytes of each packet, 16 to a netlink
# message: a message of one packet costs the socket a whole buffer (about
# 4 KiB), so a fast transfer on a busy machine overflowed tcpdump's socket
# (flows.sh lost 759 of 3661 headers once); nflog_stop then waits the second
# the kernel may hold the last batch.
nflog_start() {
	local name=$1 ns=$2 group=$3 rules="" m log="queue-threshold 1"
	shift 3
	[ -n "${NFLOG_SNAPLEN:-}" ] && log="snaplen $NFLOG_SNAPLEN queue-threshold 16"
	eval "NFLOG_BATCHED_$name=\${NFLOG_SNAPLEN:+1}"
	for m in "$@"; do
		rules="$rules		$m log group $group $log
"
	done
	printf 'table inet ipmodd_nflog_%s {\n\tchain pre {\n\t\ttype filter hook prerouting priority -300; policy accept;\n%s\t}\n}\n' \
		"$name" "$rules" | ip netns exec "$ns" nft -f - || return 1
	eval "NFLOG_NS_$name=\$ns"
	pcap_start "$name" "$ns" "nflog:$group"
}
nflog_stop() {
	local ns batched
	eval "ns=\$NFLOG_NS_$1 batched=\$NFLOG_BATCHED_$1"
	# The kernel sends a batch short of its threshold after 1 s (NFULNL_TIMEOUT_DEFAULT).
	[ -n "$batched" ] && sleep 1.2
	pcap_stop "$1"
	ip netns exec "$ns" nft delete table inet "ipmodd_nflog_$1" 2>/dev/null
	return 0
}
# pcap_bad_checksums FILE [FILTER]: frames (matching FILTER) whose IPv4, TCP,
# UDP, ICMP or ICMPv6 checksum tshark finds bad.
pcap_bad_checksums() {
	tshark -r "$1" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
		-o udp.check_checksum:TRUE \
		-Y "(${2:-frame}) && (ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || icmp.checksum.status == \"Bad\" || icmpv6.checksum.status == \"Bad\")" \
		2>/dev/null | wc -l
}
pcap_count() {
	tshark -r "$1" -Y "$2" 2>/dev/null | wc -l
}

# send_fixed_ip RUN TAG IDENT SRC4 DST4 SRC6 DST6 PORT...: fixed packets from
# SRC to DST, sent by "RUN python3" (hx or px), through raw sockets with the
# whole IP header given (fixed IDs, payloads "ipmodd TAG port/proto", TTL 64):
# UDP and TCP to each port, v4 and v6, then an echo request (ICMP ID IDENT) each.
send_fixed_ip() {
	"$1" python3 - "${@:2}" <<'PY'
import socket, struct, sys
from netpkt import csum

tag, ident = sys.argv[1].encode(), int(sys.argv[2], 0)
h4, p4, h6, p6 = sys.argv[3:7]
ports = [int(x) for x in sys.argv[7:]]

def l4(proto, src, dst, seg, off):
    if len(src) == 4:
        ph = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    else:
        ph = src + dst + struct.pack("!IxxxB", len(seg), proto)
    c = csum(ph + seg)
    if proto == 17 and c == 0:
        c = 0xffff
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]

def udp(sp, dp, pay):
    return struct.pack("!HHHH", sp, dp, 8 + len(pay), 0) + pay

def tcp(sp, dp, pay):
    return struct.pack("!HHIIBBHHH", sp, dp, 1000, 2000, 5 << 4, 0x18, 8192, 0, 0) + pay

def echo(ident, pay, v6):
    e = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, 1) + pay
    # ICMPv4 has no pseudo-header; ICMPv6 gets its checksum from l4().
    return e if v6 else e[:2] + struct.pack("!H", csum(e)) + e[4:]

s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
a4, b4 = socket.inet_pton(socket.AF_INET, h4), socket.inet_pton(socket.AF_INET, p4)
a6, b6 = socket.inet_pton(socket.AF_INET6, h6), socket.inet_pton(socket.AF_INET6, p6)

def send4(ident, proto, seg):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), ident, 0x4000, 64, proto, 0, a4, b4)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    s4.sendto(hdr + seg, (p4, 0))

def send6(flow, proto, seg):
    hdr = struct.pack("!IHBB16s16s", 6 << 28 | flow, len(seg), proto, 64, a6, b6)
    s6.sendto(hdr + seg, (p6, 0))

n = 0
for port in ports:
    for proto, mk in ((17, udp), (6, tcp)):
        n += 1
        pay = b"ipmodd %s %d/%d " % (tag, port, proto) * 3
        seg = mk(40000 + n, port, pay)
        send4(0x1000 + n, proto, l4(proto, a4, b4, seg, 6 if proto == 17 else 16))
        send6(0x12345 + n, proto, l4(proto, a6, b6, seg, 6 if proto == 17 else 16))
n += 1
send4(0x1000 + n, 1, echo(ident, b"fixed echo", False))
send6(0x12345 + n, 58, l4(58, a6, b6, echo(ident, b"fixed echo", True), 2))
PY
}

# daemon_test CMD...: the start of a test of a daemon driven by ipmodctl: root,
# the commands named, both binaries, the topology; SOCK is the control socket
# and ctl ARGS runs ipmodctl on it in the host namespace.
daemon_test() {
	require_root
	require_cmd "$@"
	: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
	"$IPMODD" --version >/dev/null || skip_all "no ipmodd"
	setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }
	SOCK=$WORKDIR/control.sock
	ctl() { hx "$IPMODCTL" -s "$SOCK" "$@"; }
}

# side_ns NS IFNAME WHAT: a namespace NS (lo up) joined to the host
# namespace by the veth pair IFNAME (no addresses, down); WHAT names NS in
# the bail-out.  The caller's EXIT trap deletes NS.
side_ns() {
	ip netns add "$1" || { echo "Bail out! cannot add the $3 namespace"; exit 1; }
	ip netns exec "$1" ip link set lo up
	ip link add "$2" netns "$HOST_NS" type veth peer name "$2" netns "$1" ||
		{ echo "Bail out! cannot add the $3 veth $2"; exit 1; }
}

# setup_lan: the namespace LAN_NS (set it, and an EXIT trap deleting it, first)
# as a LAN behind the host: LAN4/LAN6 on its lan0, the host 198.18.3.1 and
# 2001:db8:3::1 on the other end as its default route, the peer's routes to it
# through the host, forwarding on in the host namespace.  lx runs in it.
LAN4=198.18.3.2
LAN6=2001:db8:3::2
lx() { ip netns exec "$LAN_NS" "$@"; }
setup_lan() {
	side_ns "$LAN_NS" lan0 LAN
	hx ip addr add 198.18.3.1/24 dev lan0
	hx ip addr add 2001:db8:3::1/64 dev lan0 nodad
	lx ip addr add "$LAN4/24" dev lan0
	lx ip addr add "$LAN6/64" dev lan0 nodad
	hx ip link set lan0 up
	lx ip link set lan0 up
	lx ip route add default via 198.18.3.1
	lx ip -6 route add default via 2001:db8:3::1
	px ip route add 198.18.3.0/24 via "$HOST4"
	px ip -6 route add 2001:db8:3::/64 via "$HOST6"
	hx sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}
