#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Hostile control clients while ping -i 0.01 runs: lines over 2048 bytes,
# endless lines streamed for seconds, binary junk, too many lines, 1000
# connections at once (256 served, the rest refused with errno=16), clients
# that never read their replies, trace and capture clients that never read.
# Throughout: ping loses nothing, "ipmodctl status" answers within 1 s, and
# the daemon stays up; after each wave its open descriptors return to their
# count before it.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping python3 timeout
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
# 300 rules, so that get=rules replies are large (tens of KiB).
{
	echo 'rules = ('
	for i in $(seq 300); do
		printf '\t{ name = "r%d"; proto = "udp"; dport = %d; set-ttl = 9; },\n' "$i" $((20000 + i))
	done
	echo '	{ name = "ttl-ping"; proto = "icmp"; icmp-type = "echo-request"; set-ttl = 33; }'
	echo ');'
} >"$WORKDIR/rules"
write_config "$CONF" "$(cat "$WORKDIR/rules")"
check "ipmodd starts with 301 rules" start_ipmodd "$CONF"

fds() { ls "/proc/$IPMODD_PID/fd" 2>/dev/null | wc -l; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$IPMODD_PID/status" 2>/dev/null; }
sleep 0.2
FD0=$(fds)
RSS0=$(rss_kib)
RSS_MAX=$RSS0
diag "baseline: $FD0 open descriptors, VmRSS $RSS0 KiB"

# --- liveness prober: ipmodctl status every 0.2 s, its latency and result -----
# Each line: phase milliseconds exit-status first-words-of-stderr.  A refusal
# ("too many clients") is an answer too, but only allowed while the 1000
# connections hold every slot.
echo setup >"$WORKDIR/phase"
ip netns exec "$HOST_NS" bash -c '
	end=$((SECONDS + 120))
	while [ ! -e "$1/stop" ] && [ $SECONDS -lt $end ]; do
		p0=$(cat "$1/phase")
		t0=$(date +%s%N)
		timeout 10 "$2" -s "$3" status >/dev/null 2>"$1/probe.err"
		rc=$?
		t1=$(date +%s%N)
		# A probe that began in the flood belongs to it, whenever it ends.
		p1=$(cat "$1/phase")
		[ "$p0" = flood ] && p1=flood
		echo "$p1 $(( (t1 - t0) / 1000000 )) $rc $(head -c 60 "$1/probe.err" | tr "\n" " ")"
		sleep 0.2
	done' prober "$WORKDIR" "$IPMODCTL" "$SOCK" >"$WORKDIR/probe.log" 2>&1 &
PROBER_PID=$!
BG_PIDS+=("$PROBER_PID")

# phase NAME PINGS: mark the phase and start a ping -i 0.01 -c PINGS for it.
# The mark is replaced whole (rename): the prober never reads it empty.
phase() {
	echo "$1" >"$WORKDIR/phase.new" && mv "$WORKDIR/phase.new" "$WORKDIR/phase"
	PHASE=$1
	ip netns exec "$HOST_NS" ping -i 0.01 -c "$2" -W 1 "$PEER4" >"$WORKDIR/ping-$1.out" 2>&1 &
	PING_PID=$!
	BG_PIDS+=("$PING_PID")
}
# phase_end: ping lost nothing; descriptors back to the baseline (the prober
# may hold one more for a moment); the daemon is alive.
phase_end() {
	local i n
	wait "$PING_PID"
	check "$PHASE: ping -i 0.01 lost nothing ($(grep -o '[0-9]* packets transmitted, [0-9]* received' "$WORKDIR/ping-$PHASE.out"))" \
		grep -q ' 0% packet loss' "$WORKDIR/ping-$PHASE.out"
	for i in $(seq 150); do
		n=$(fds)
		[ "$n" -le $((FD0 + 1)) ] && break
		sleep 0.1
	done
	check "$PHASE: the daemon's descriptors are back to the baseline ($n, baseline $FD0 and maybe the prober's)" \
		test "$n" -le $((FD0 + 1))
	check "$PHASE: ipmodd is alive" kill -0 "$IPMODD_PID"
	n=$(rss_kib)
	[ "${n:-0}" -gt "$RSS_MAX" ] && RSS_MAX=$n
}
# hostile WAVE: run a wave of clients; their verdicts become TAP lines.
hostile() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "$PHASE: ${line#ok - }" ;;
		"not ok - "*) not_ok "$PHASE: ${line#not ok - }" ;;
		"todo - "*) TAP_N=$((TAP_N + 1)); echo "not ok $TAP_N - $PHASE: ${line#todo - }" ;;
		"xpass - "*) ok "$PHASE: ${line#xpass - }" ;;
		"diag - "*) diag "${line#diag - }" ;;
		*) diag "$line" ;;
		esac
	done < <(ip netns exec "$HOST_NS" timeout 60 python3 "$WORKDIR/hostile.py" "$SOCK" "$IPMODD_PID" "$1" 2>&1)
}

cat >"$WORKDIR/hostile.py" <<'PY'
import os, resource, select, socket, struct, sys, threading, time

SOCK, PID, WAVE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
REFUSAL = b"errno=16\nerror=too many clients (256)\n\n"
# Room for 1000 sockets.
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard == resource.RLIM_INFINITY or hard >= 4096:
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))

def out(kind, text):
    print(f"{kind} - {text}", flush=True)

def connect(timeout=5.0):
    """A blocking connect bounded by SO_SNDTIMEO (a full backlog makes it wait)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(timeout), 0))
    s.connect(SOCK)
    return s

def read_reply(s, limit=5.0, whole=False):
    """Bytes until the peer closes (or, whole, a reply is complete) or limit seconds
    pass; (data, closed, seconds)."""
    s.setblocking(False)
    t0, data = time.monotonic(), b""
    while time.monotonic() - t0 < limit:
        if whole and data.endswith(b"\n\n"):
            break
        r, _, _ = select.select([s], [], [], 0.05)
        if not r:
            continue
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return data, True, time.monotonic() - t0
        except BlockingIOError:
            continue
        if not b:
            return data, True, time.monotonic() - t0
        data += b
    return data, False, time.monotonic() - t0

def errno_of(reply):
    for line in reply.decode(errors="replace").splitlines():
        if line.startswith("errno="):
            return int(line[6:])
    return None

def status():
    s = connect()
    s.sendall(b"get=status\n\n")
    s.settimeout(5)
    d = b""
    while not d.endswith(b"\n\n"):
        b = s.recv(65536)
        if not b:
            break
        d += b
    s.close()
    return dict(l.split("=", 1) for l in d.decode().splitlines() if "=" in l)

# ---- malformed requests ---------------------------------------------------------------
def abuse():
    cases = [
        ("a 2048-byte line (the limit) is read", b"get=status\nk=" + b"v" * 2045 + b"\n\n", 22),
        ("a 2049-byte line is refused", b"get=status\nk=" + b"v" * 2046 + b"\n\n", 90),
        ("a 64 KiB command line is refused", b"get=" + b"s" * 65536 + b"\n\n", 90),
        ("binary junk is refused", b"\xff" + os.urandom(4096), 74),
        ("NUL bytes are refused", b"\0" * 4096, 74),
        ("a request of 100 lines is refused", b"add=end\n" + b"".join(b"k%d=v\n" % i for i in range(100)) + b"\n", 7),
        ("a request over 16 KiB is refused", b"add=end\n" + b"".join(b"k%d=%s\n" % (i, b"v" * 2000) for i in range(10)) + b"\n", 90),
        ("a request cut by the end of input is refused", b"get=status\n", 74),
    ]
    for what, req, want in cases:
        s = connect()
        try:
            s.sendall(req)
            if want == 74 and req == b"get=status\n":
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply, closed, secs = read_reply(s, 3.0, whole=want == 22)
        s.close()
        got = errno_of(reply)
        hangup = want == 22 or closed
        if got == want and hangup:
            out("ok", f"{what} (errno={got}{', hung up' if want != 22 else ''})")
        else:
            out("not ok", f"{what}: errno={got} closed={closed} ({reply[:80]!r})")

    # Endless lines, streamed without a line feed for up to 4 s: fast, and at
    # 2 KB/s (the 2048-byte bound is reached after about a second).
    def stream(rate, res):
        s = connect()
        t0, sent = time.monotonic(), 0
        s.setblocking(False)
        reply, cut = b"", None
        while time.monotonic() - t0 < 4.0:
            try:
                sent += s.send(b"x" * (65536 if rate is None else 100))
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                cut = time.monotonic() - t0
                break
            try:
                b = s.recv(4096)
                if b:
                    reply += b
                else:
                    cut = time.monotonic() - t0
                    break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                cut = time.monotonic() - t0
                break
            time.sleep(0.001 if rate is None else 0.05)
        try:
            reply += s.recv(4096)
        except OSError:
            pass
        s.close()
        res.append((rate, sent, cut, errno_of(reply)))
    res, threads = [], []
    for rate in (None, None, 2000, 2000):
        t = threading.Thread(target=stream, args=(rate, res))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(10)
    for rate, sent, cut, e in sorted(res, key=lambda r: r[0] or 0):
        what = f"an endless line at {'full speed' if rate is None else '2 KB/s'}"
        if e == 90 and cut is not None and cut < 4.0:
            out("ok", f"{what} is cut off with errno=90 after {cut:.2f} s ({sent} bytes sent)")
        else:
            out("not ok", f"{what}: errno={e} cut={cut} sent={sent}")

# ---- 1000 connections at once --------------------------------------------------------
def flood():
    socks, failed = [], 0
    t0 = time.monotonic()
    for _ in range(1000):
        try:
            socks.append(connect(5.0))
        except OSError:
            failed += 1
    t_conn = time.monotonic() - t0
    # Refusals arrive at once; a served client hears nothing until it asks.
    pending = {s.fileno(): s for s in socks}
    refused, served, unclean = 0, [], 0
    data = {fd: b"" for fd in pending}
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        p = select.poll()
        for fd in pending:
            p.register(fd, select.POLLIN)
        r = [fd for fd, _ in p.poll(200)]
        if not r and time.monotonic() - t0 > 1.0:
            break
        for fd in r:
            s = pending[fd]
            try:
                b = s.recv(4096)
            except ConnectionResetError:
                b = b""
            if b:
                data[fd] += b
                continue
            del pending[fd]
            if data[fd] == REFUSAL:
                refused += 1
            else:
                unclean += 1
    served = list(pending.values())
    # Every served client asks for status and gets it.
    for s in served:
        s.sendall(b"get=status\n\n")
    answered, clients, hung = 0, set(), 0
    for s in served:
        reply = b""
        s.settimeout(5)
        try:
            while not reply.endswith(b"\n\n"):
                b = s.recv(65536)
                if not b:
                    break
                reply += b
        except OSError:
            pass
        if errno_of(reply) == 0:
            answered += 1
            for l in reply.decode().splitlines():
                if l.startswith("control-clients="):
                    clients.add(int(l.split("=")[1]))
        else:
            hung += 1
    for s in socks:
        s.close()
    out("diag", f"1000 connects in {t_conn:.2f} s: {len(served)} served, {refused} refused, "
                f"{unclean} closed otherwise, {failed} failed to connect; "
                f"control-clients seen by the served: {min(clients) if clients else '-'}..{max(clients) if clients else '-'}")
    if failed == 0 and len(served) + refused + unclean == 1000:
        out("ok", "all 1000 connections were accepted by the kernel and settled (none hangs)")
    else:
        out("not ok", f"connections: {failed} failed, {len(served)} + {refused} + {unclean} settled")
    if 240 <= len(served) <= 256 and refused == 1000 - len(served) and unclean == 0:
        out("ok", f"{len(served)} served (256 less the other clients), {refused} refused with exactly "
                  "errno=16 'too many clients (256)' and a hang-up")
    else:
        out("not ok", f"{len(served)} served, {refused} refused cleanly, {unclean} unclean")
    if answered == len(served) and clients and max(clients) <= 256:
        out("ok", f"every served connection got its status (control-clients at most {max(clients)})")
    else:
        out("not ok", f"{answered} of {len(served)} served connections answered, {hung} not; clients {clients}")

# ---- clients that never read ---------------------------------------------------------------
def nonreaders():
    """64 clients pipeline get=rules until their socket is full and never read."""
    held, sent = [], 0
    for _ in range(64):
        s = connect()
        s.setblocking(False)
        for _ in range(2000):
            try:
                s.send(b"get=rules\n\n")
                sent += 1
            except BlockingIOError:
                break
        held.append(s)
    time.sleep(0.5)
    st = status()
    ok = int(st["control-clients"]) >= 65
    out("ok" if ok else "not ok", f"64 clients sent {sent} get=rules without reading; the daemon keeps "
        f"serving others (control-clients={st['control-clients']})")
    # Half of them go away; the daemon hangs up on the rest once they were
    # stuck for its 10 s idle timeout.
    for s in held[:32]:
        s.close()
    t0 = time.monotonic()
    rest = held[32:]
    hung_up = set()
    while time.monotonic() - t0 < 15 and len(hung_up) < len(rest):
        p = select.poll()
        for s in rest:
            if s.fileno() not in hung_up:
                p.register(s, select.POLLHUP)
        for fd, ev in p.poll(200):
            if ev & (select.POLLHUP | select.POLLERR):
                hung_up.add(fd)
    secs = time.monotonic() - t0
    for s in rest:
        s.close()
    if len(hung_up) == len(rest):
        out("ok", f"the daemon hung up on the 32 stalled readers after {secs:.1f} s (idle timeout 10 s)")
    else:
        out("not ok", f"{len(rest) - len(hung_up)} of 32 stalled readers still connected after {secs:.1f} s")

def streams():
    """16 trace and capture clients that never read, then 4 more than the daemon streams."""
    held, refused, accepted = [], 0, 0
    for i in range(20):
        s = connect()
        s.sendall(b"trace=1\n\n" if i % 2 == 0 else b"capture=all\n\n")
        reply, closed, _ = read_reply_until_blank(s)
        e = errno_of(reply)
        if e == 0:
            accepted += 1
        elif e == 16:
            refused += 1
        held.append(s)
    out("ok" if (accepted, refused) == (16, 4) else "not ok",
        f"16 of 20 trace/capture clients are accepted, 4 refused with errno=16 (got {accepted}, {refused})")
    # Traffic for them to miss: 3000 UDP datagrams of 1400 bytes through the
    # daemon (at most 2000/s), about 8 MB of capture they never read.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.monotonic()
    for i in range(3000):
        u.sendto(b"u" * 1400, ("198.18.0.2", 9))
        if i % 100 == 99:
            time.sleep(max(0, t0 + (i + 1) / 2000 - time.monotonic()))
    u.close()
    time.sleep(0.5)
    st = status()
    out("ok" if st["streams"] == "16" else "not ok",
        f"the daemon still answers with 16 unread streams (streams={st['streams']})")
    with open(f"/proc/{PID}/status") as f:
        rss = [l.split()[1] for l in f if l.startswith("VmRSS")][0]
    out("diag", f"VmRSS with 16 unread streams after 3000 datagrams: {rss} KiB")
    for s in held:
        s.close()

def read_reply_until_blank(s):
    s.settimeout(5)
    d = b""
    try:
        while b"\n\n" not in d:
            b = s.recv(1)
            if not b:
                return d, True, 0
            d += b
    except OSError:
        pass
    return d, False, 0

# ---- a request dribbled a byte at a time ---------------------------------------------------
def dribble():
    s = connect()
    t0 = time.monotonic()
    req = b"get=status\nk=" + b"v" * 200
    for i in range(len(req)):
        if time.monotonic() - t0 > 15:
            break
        try:
            s.send(req[i:i + 1])
        except OSError:
            break
        r, _, _ = select.select([s], [], [], 0.5)
        if r:
            break
    reply, closed, _ = read_reply(s, 0.2)
    secs = time.monotonic() - t0
    s.close()
    # The deadline is 10 s from the first byte; its timer may fire up to 1 s late.
    text = "a request dribbled a byte every 0.5 s is cut off within 12.5 s"
    if closed and secs < 12.5 and errno_of(reply) == 110:
        out("ok", f"{text} (after {secs:.1f} s, errno={errno_of(reply)})")
    else:
        out("not ok", f"{text}: closed={closed} after {secs:.1f} s, errno={errno_of(reply)}")

{"abuse": abuse, "flood": flood, "nonreaders": nonreaders, "streams": streams, "dribble": dribble}[WAVE]()
PY

# A client dribbling one request a byte at a time runs beside the first waves.
ip netns exec "$HOST_NS" timeout 30 python3 "$WORKDIR/hostile.py" "$SOCK" "$IPMODD_PID" dribble \
	>"$WORKDIR/dribble.out" 2>&1 &
DRIBBLE_PID=$!
BG_PIDS+=("$DRIBBLE_PID")

phase abuse 400
hostile abuse
phase_end

phase flood 400
hostile flood
phase_end

phase nonreaders 1200
hostile nonreaders
phase_end

phase streams 500
hostile streams
phase_end

PHASE=dribble
wait "$DRIBBLE_PID"
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	*) not_ok "dribble: $line" ;;
	esac
done <"$WORKDIR/dribble.out"

# --- throughout -------------------------------------------------------------------------------
echo done >"$WORKDIR/phase.new" && mv "$WORKDIR/phase.new" "$WORKDIR/phase"
touch "$WORKDIR/stop"
wait "$PROBER_PID"
probes=$(wc -l <"$WORKDIR/probe.log")
slow=$(awk '$2 >= 1000' "$WORKDIR/probe.log" | wc -l)
failed=$(awk '$3 != 0 && !($1 == "flood" && /too many clients/)' "$WORKDIR/probe.log" | wc -l)
busy=$(awk '$3 != 0 && $1 == "flood" && /too many clients/' "$WORKDIR/probe.log" | wc -l)
max_ms=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$WORKDIR/probe.log")
med_ms=$(awk '{ print $2 }' "$WORKDIR/probe.log" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
diag "ipmodctl status probes: $probes, median $med_ms ms, max $max_ms ms, $busy refused as busy during the flood"
check "ipmodctl status was probed throughout ($probes times)" test "$probes" -ge 20
check_eq "every ipmodctl status answered within 1 s" "$slow" 0
check_eq "every ipmodctl status succeeded (busy refusals only while 1000 clients held the slots)" "$failed" 0
[ "$failed" -eq 0 ] || awk '$3 != 0' "$WORKDIR/probe.log" | head -5 | sed 's/^/# /'
sleep 0.2
check_eq "the daemon's descriptors are back to the baseline" "$(fds)" "$FD0"
diag "VmRSS: $RSS0 KiB at the start, $RSS_MAX KiB at most between waves, $(rss_kib) KiB at the end"
check "ipmodd is alive" kill -0 "$IPMODD_PID"
out=$(ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" status --json)
check "status shows no clients left but this one" grep -q '"control-clients":1,"streams":0' <<<"$out"

stop_ipmodd; rc=$?
check_eq "ipmodd exits 0" "$rc" 0
done_testing
