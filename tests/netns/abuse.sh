#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Abuse of a running ipmodd while ping -i 0.01 runs (issue 18): a second
# instance with tun.queues = 4 is refused before it touches anything (the
# first keeps its rules, its traffic and its tc filter); "ip link del tun0"
# neither makes the daemon spin nor leaves the host cut off; 256
# unprivileged clients that hold every slot they get do not lock root out of
# the control socket, nor do unprivileged streams or unread replies go
# beyond their share; a trace pauses the fast path only when it must; a
# stream nobody reads is closed.
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
# ttl-ping: the fast path carries it out; rej: it leaves it to userspace.
RULES='rules = (
	{ name = "ttl-ping"; proto = "icmp"; icmp-type = "echo-request"; set-ttl = 33; },
	{ name = "rej"; proto = "tcp"; dport = 23; verdict = "reject"; }
);'
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
# failure = "closed": the exit keeps the block, as a crash does.
tun_conf "$CONF" 1 "$SOCK"
echo 'routing = { table = '"$TABLE"'; priority = '"$PRIO"'; families = [ "ipv4", "ipv6" ]; failure = "closed"; };' >>"$CONF"
sed -i '0,/^routing = /{/^routing = /d}' "$CONF"
check "ipmodd starts (fail-closed)" start_ipmodd "$CONF"
pid=$IPMODD_PID
hx ip link del tun0
for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
stop_ipmodd; rc=$?
check_eq "[closed] the daemon exited with status 1 within 5 s" "$rc" 1
check "[closed] ... and the diverted traffic stays blocked (unreachable) until a new start" \
	bash -c "! ip netns exec '$HOST_NS' ping -c 1 -W 1 $PEER4 >/dev/null 2>&1 &&
		ip netns exec '$HOST_NS' ip route show table $TABLE | grep -q '^unreachable default'"
check "[closed] a new start takes over" start_ipmodd "$CONF"
check "[closed] ... and traffic flows through it" hx ping -c 1 -W 1 "$PEER4"
stop_ipmodd
hx "$IPMODD" -c "$CONF" --unblock 2>/dev/null

# --- 256 unprivileged clients hold every slot they get ----------------------------------
as_nobody() { ip netns exec "$HOST_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
check "ipmodd starts again" start_ipmodd "$CONF"
touch "$WORKDIR/hold"
# Each client keeps its slot with a request every 2 s, and reconnects when
# it loses it; they stop when the test removes $WORKDIR/hold (at most 40 s).
as_nobody "$NOBODY_PY" - "$SOCK" "$WORKDIR/hold" >"$WORKDIR/crowd.log" 2>&1 <<'PY' &
import os, select, socket, sys, time
SOCK, HOLD = sys.argv[1], sys.argv[2]
N = 256
conns = [None] * N
last = [0.0] * N
deadline = time.time() + 40
while os.path.exists(HOLD) and time.time() < deadline:
    now = time.time()
    for i in range(N):
        s = conns[i]
        if s is not None:
            try:
                while select.select([s], [], [], 0)[0]:
                    b = s.recv(65536)
                    if not b or b.startswith(b"errno=16"):
                        raise ConnectionResetError
            except OSError:
                s.close()
                conns[i] = s = None
        if s is None:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.setblocking(False)
                s.connect(SOCK)
                conns[i] = s
                last[i] = 0.0
            except OSError:
                s.close()
                continue
        if now - last[i] >= 2.0:
            try:
                s.send(b"get=status\n\n")
                last[i] = now
            except OSError:
                pass
    time.sleep(0.2)
    held = sum(1 for s in conns if s is not None)
    print("held", held, flush=True)
PY
CROWD_PID=$!
BG_PIDS+=("$CROWD_PID")
ping_start crowd 1000
sleep 3
answered=0
slow=0
for i in $(seq 10); do
	t0=$(date +%s%N)
	if timeout 1 ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" status >/dev/null 2>"$WORKDIR/root-status.err"; then
		answered=$((answered + 1))
	else
		diag "root's status $i: $(head -c 100 "$WORKDIR/root-status.err")"
	fi
	t1=$(date +%s%N)
	[ $(( (t1 - t0) / 1000000 )) -ge 1000 ] && slow=$((slow + 1))
	sleep 0.5
done
# What the crowd holds, as it counts (its last line: "held N").
held=$(awk '$1 == "held" { n = $2 } END { print n + 0 }' "$WORKDIR/crowd.log")
check_eq "root's ipmodctl status answered 10 times of 10, each within 1 s" "$answered/$slow" "10/0"
check "the unprivileged crowd held slots meanwhile ($held)" test "$held" -ge 200
check_eq "... but no more than those not kept for root (224, and this status)" \
	"$(status_field control-clients)" 225
out=$(as_nobody "$IPMODCTL" -s "$SOCK" status 2>&1)
check "one more unprivileged client is told why it is refused" \
	grep -q "too many unprivileged clients (224" <<<"$out"
rm -f "$WORKDIR/hold"
wait "$CROWD_PID"
ping_wait
lost=$(ping_lost crowd)
check_eq "ping -i 0.01 lost nothing meanwhile" "$lost" 0

# --- unprivileged streams, and what pauses the fast path ----------------------------------
# 16 unprivileged traces of rej, which the kernel leaves to userspace: 12
# get a stream (4 are kept for root), and the fast path stays on for them.
touch "$WORKDIR/hold"
as_nobody "$NOBODY_PY" - "$SOCK" "$WORKDIR/hold" >"$WORKDIR/traces.log" 2>&1 <<'PY' &
import os, socket, sys, time
SOCK, HOLD = sys.argv[1], sys.argv[2]
held, errnos = [], []
for i in range(16):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(SOCK)
    s.sendall(b"trace=1\nrule=rej\n\n")
    d = b""
    while b"\n\n" not in d:
        b = s.recv(1)
        if not b:
            break
        d += b
    e = [l for l in d.split(b"\n") if l.startswith(b"errno=")]
    errnos.append(e[0].decode() if e else "none")
    held.append(s)
print(" ".join(sorted(set(f"{errnos.count(e)}x{e}" for e in errnos))), flush=True)
deadline = time.time() + 30
while os.path.exists(HOLD) and time.time() < deadline:
    time.sleep(0.1)
PY
TRACES_PID=$!
BG_PIDS+=("$TRACES_PID")
for i in $(seq 50); do [ -s "$WORKDIR/traces.log" ] && break; sleep 0.1; done
check_eq "16 unprivileged traces: 12 streams, 4 refused with EBUSY" \
	"$(head -n 1 "$WORKDIR/traces.log")" "12xerrno=0 4xerrno=16"
check_eq "status: 12 streams" "$(status_field streams)" 12
if [ "$(status_field fastpath)" = on ]; then
	check_eq "traces of a rule the kernel leaves to userspace keep the fast path on" \
		"$(status_field fastpath-paused)" 0
	ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" trace rule=ttl-ping >/dev/null 2>&1 &
	trace_pid=$!
	for i in $(seq 50); do [ "$(status_field fastpath-paused)" = 1 ] && break; sleep 0.1; done
	check_eq "root still gets a stream: its trace of ttl-ping, which the kernel carries out, pauses it" \
		"$(status_field fastpath-paused)" 1
	kill "$trace_pid"
	wait "$trace_pid" 2>/dev/null
	for i in $(seq 50); do [ "$(status_field fastpath-paused)" = 0 ] && break; sleep 0.1; done
	check_eq "... and its end resumes it" "$(status_field fastpath-paused)" 0
	# An edit moves rej into the kernel: the traces of it pause the fast path.
	ctl replace rej proto=tcp dport=23 verdict=drop >/dev/null
	check_eq "rej, now carried out by the kernel, pauses it for their traces" \
		"$(status_field fastpath-paused)" 1
	ctl replace rej proto=tcp dport=23 verdict=reject >/dev/null
	check_eq "... and back in userspace, resumes it" "$(status_field fastpath-paused)" 0
else
	diag "no fast path here: the pause checks are skipped"
fi
rm -f "$WORKDIR/hold"
wait "$TRACES_PID"
stop_ipmodd; rc=$?
check_eq "ipmodd exits 0" "$rc" 0

# --- replies nobody reads, and a capture nobody reads --------------------------------------
# 6000 rules: a get=rules reply of about 500 KB.
{
	echo 'rules = ('
	for i in $(seq 6000); do
		printf '\t{ name = "r%d"; proto = "udp"; dport = %d; set-ttl = 9; },\n' "$i" $((20000 + i))
	done
	echo '	{ name = "last"; proto = "udp"; dport = 9; set-ttl = 9; }'
	echo ');'
} >"$WORKDIR/big-rules"
tun_conf "$CONF" 1 "$SOCK"
sed -i '/^rules = (/,$d' "$CONF"
cat "$WORKDIR/big-rules" >>"$CONF"
check "ipmodd starts with 6001 rules" start_ipmodd "$CONF"
# A privileged capture that never reads: datagrams until its socket stays
# full for a second (the daemon's writes fail from then on), then the time
# until the daemon hangs up.
ip netns exec "$HOST_NS" python3 - "$SOCK" >"$WORKDIR/stall.log" 2>&1 <<'PY' &
import fcntl, select, socket, struct, sys, termios, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"capture=all\n\n")
d = b""
while b"\n\n" not in d:
    d += s.recv(1)
def queued():
    return struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0" * 4))[0]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
last, since, end = -1, time.monotonic(), time.monotonic() + 30
while time.monotonic() < end:
    for i in range(50):
        u.sendto(b"u" * 1400, ("198.18.0.2", 9))
    time.sleep(0.05)
    q = queued()
    if q != last:
        last, since = q, time.monotonic()
    elif q > 0 and time.monotonic() - since >= 1:
        break
t0 = since
p = select.poll()
p.register(s, select.POLLHUP)
while time.monotonic() - t0 < 60 and not p.poll(200):
    pass
print(f"full at {last} bytes; closed after {time.monotonic() - t0:.0f}", flush=True)
PY
STALL_PID=$!
BG_PIDS+=("$STALL_PID")
# 224 unprivileged clients pipeline get=rules and read nothing.
as_nobody "$NOBODY_PY" - "$SOCK" >"$WORKDIR/budget.log" 2>&1 <<'PY'
import select, socket, sys, time
held = []
for i in range(224):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.setblocking(False)
    for _ in range(4):
        try:
            s.send(b"get=rules\n\n")
        except BlockingIOError:
            break
    held.append(s)
time.sleep(1)
refused = 0
for s in held:
    if select.select([s], [], [], 0)[0] and s.recv(32).startswith(b"errno=105\n"):
        refused += 1
print(refused, flush=True)
time.sleep(1)
PY
refused=$(tail -n 1 "$WORKDIR/budget.log")
check "224 unprivileged non-readers of 500 KB replies: some are refused with ENOBUFS ($refused)" \
	test "${refused:-0}" -gt 0 -a "${refused:-0}" -lt 224
diag "VmRSS after them: $(awk '/^VmRSS/ { print $2 }' "/proc/$IPMODD_PID/status") KiB"
wait "$STALL_PID"
secs=$(sed -n 's/.*closed after \([0-9]*\)$/\1/p' "$WORKDIR/stall.log")
check "a capture whose reader takes nothing is closed after its 30 s stall bound ($(tail -n 1 "$WORKDIR/stall.log") s)" \
	test "${secs:-99}" -ge 28 -a "${secs:-99}" -le 34
check "ipmodd is alive" kill -0 "$IPMODD_PID"
stop_ipmodd; rc=$?
check_eq "ipmodd exits 0" "$rc" 0
done_testing
