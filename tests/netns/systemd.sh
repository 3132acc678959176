#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ipmodd as a user installs and runs it, under a real systemd: "make install"
# of the build, the sysusers.d file's user, the installed ipmodd.service with
# the shipped config, "systemctl start/reload/stop", a broken config on
# reload (systemctl reload fails, its status and an error at journal
# priority 3 name file:line, the old rules kept; the reload thread at
# SCHED_IDLE under the unit's system call filter), the audit trail's journal
# fields of an add and a del, the metrics socket unit answering curl, the
# watchdog restart after SIGSTOP, "systemd-analyze security" of the
# installed unit, and the journal's priorities.
#
# It installs into / and starts ipmodd.service, which diverts the whole
# network namespace's traffic: it runs only inside the throwaway container
# of tests/container/run (systemd as PID 1, a volatile overlay over /, a
# private network namespace), never in "make check".  Elsewhere it skips.
#
#   BUILDDIR   the configured build tree to "make install" (required)
. "$(dirname "$0")/lib.sh"

require_systemd_container "tests/container/run"
: "${BUILDDIR:?BUILDDIR must point at the build tree}"
require_cmd ping python3 journalctl systemctl systemd-sysusers systemd-analyze curl

# The bound the README states for "systemd-analyze security ipmodd.service"
# (1.6 since sched_setscheduler() and setpriority() came back from
# @resources for the reload thread's SCHED_IDLE: systemd counts 0.1 for it).
MAX_EXPOSURE=1.6
# Longest wait for the watchdog: WatchdogSec= + RestartSec= + start, with margin.
WATCHDOG_WAIT=30

PEER_NS=ipmct$$-p
WORKDIR=$(mktemp -d /tmp/ipmodd-systemd.XXXXXX)
CONF=""
CONF_SAVED=$WORKDIR/ipmodd.conf.installed
sd_cleanup() {
	systemctl stop ipmodd.service >/dev/null 2>&1
	[ -n "$CONF" ] && [ -f "$CONF_SAVED" ] && cp "$CONF_SAVED" "$CONF"
	cleanup
}
trap sd_cleanup EXIT
trap 'exit 130' INT TERM

prop() { systemctl show -P "$1" ipmodd.service; }
# The daemon's journal since the boot, as JSON lines.
journal_json() { journalctl -q -b -u ipmodd.service -o json --no-pager; }
# The container's namespace is the daemon's: the state the shipped config
# (table 100, priority 10000, IPv4 and IPv6) gives.
state() {
	{
		{ ip -4 rule show; ip -6 rule show; } | grep -E "^(9999|10000):"
		ip -4 route show table 100 2>/dev/null
		ip -6 route show table 100 2>/dev/null
	} | sed -e 's/ *$//' -e 's/ metric .*//'
}
WANT_STATE="9999:	from all iif tun0 lookup main
10000:	from all lookup 100
9999:	from all iif tun0 lookup main
10000:	from all lookup 100
default dev tun0 proto 73 scope link
default dev tun0 proto 73"
gen() { status generation; }
# journal_has PRIORITY REGEX: a journal entry of ipmodd.service at PRIORITY
# whose MESSAGE matches.
journal_has() {
	journal_json | python3 -c '
import json, re, sys
for line in sys.stdin:
    e = json.loads(line)
    m = e.get("MESSAGE")
    if isinstance(m, list):
        m = bytes(m).decode(errors="replace")
    if e.get("PRIORITY") == sys.argv[1] and re.search(sys.argv[2], m or ""):
        sys.exit(0)
sys.exit(1)' "$1" "$2"
}

# --- make install, the unit and the user ----------------------------------------
check "make install (into the container's volatile overlay)" \
	make -C "$BUILDDIR" install
systemctl daemon-reload
unitdir=$(sed -n 's/^systemdsystemunitdir = //p' "$BUILDDIR/Makefile")
check_eq "systemd loads the installed ipmodd.service from $unitdir" \
	"$(prop LoadState) $(prop FragmentPath)" "loaded $unitdir/ipmodd.service"
unit=$unitdir/ipmodd.service
BIN=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
CONF=$(sed -n 's/^ExecStart=.* -c //p' "$unit")
# ipmodctl goes to bindir (its users are not all administrators).
mkvar() { sed -n "s/^$1 = //p" "$BUILDDIR/Makefile"; }
prefix=$(mkvar prefix)
exec_prefix=$(mkvar exec_prefix)
exec_prefix=${exec_prefix//'${prefix}'/$prefix}
bindir=$(mkvar bindir)
bindir=${bindir//'${exec_prefix}'/$exec_prefix}
IPMODCTL=$bindir/ipmodctl
diag "ExecStart: $BIN, config $CONF, ipmodctl $IPMODCTL"
check "... whose ExecStart= is the installed build ($BIN), and ipmodctl in bindir" bash -c \
	"cmp '$BUILDDIR/ipmodd' '$BIN' && cmp '$BUILDDIR/ipmodctl' '$IPMODCTL' && [ -f '$CONF' ]"
cp "$CONF" "$CONF_SAVED"

if getent passwd ipmodd >/dev/null; then
	diag "an ipmodd user exists already: $(getent passwd ipmodd)"
fi
check "systemd-sysusers ipmodd.conf (as the README says) succeeds" systemd-sysusers ipmodd.conf
pw=$(getent passwd ipmodd)
IFS=: read -r _ _ UID_IPMODD GID_IPMODD _ home shell <<<"$pw"
check "... the system user ipmodd: uid ${UID_IPMODD:-?} < 1000, its group, home /, no login" bash -c \
	"[ -n '$pw' ] && [ '$UID_IPMODD' -gt 0 ] && [ '$UID_IPMODD' -lt 1000 ] &&
	 [ \"\$(getent group ipmodd | cut -d: -f3)\" = '$GID_IPMODD' ] &&
	 [ '$home' = / ] && [ '$shell' = /usr/sbin/nologin ]"

# --- systemd-analyze security of the installed, loaded unit ------------------------
sec=$(systemd-analyze security --no-pager ipmodd.service 2>&1)
printf '%s\n' "$sec" >&2
level=$(sed -n 's/^.*Overall exposure level for ipmodd.service: \([0-9.]*\) \(.*\)$/\1 \2/p' <<<"$sec")
diag "systemd-analyze security ipmodd.service: ${level:-no score}"
tenths() { [[ $1 =~ ^([0-9]+)\.([0-9])$ ]] && echo $((BASH_REMATCH[1] * 10 + BASH_REMATCH[2])); }
check "systemd-analyze security ipmodd.service: exposure ${level:-?} <= $MAX_EXPOSURE" \
	test "$(tenths "${level%% *}")" -le "$(tenths $MAX_EXPOSURE)"

# --- a peer behind veth, for traffic through the daemon ---------------------------
ip netns add "$PEER_NS"
ip link set lo up
ip link add ve0 type veth peer name ve0 netns "$PEER_NS"
ip addr add "$HOST4/24" dev ve0
ip addr add "$HOST6/64" dev ve0 nodad
ip link set ve0 up
px ip link set lo up
px ip addr add "$PEER4/24" dev ve0
px ip addr add "$PEER6/64" dev ve0 nodad
px ip link set ve0 up
wait_for 10 ping -6 -c1 -W1 "$PEER6"
status() { "$IPMODCTL" --json status | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# Packets through the daemon: to userspace over tun0, or handled by the fast path.
handled() {
	local tx fp
	tx=$(cat /sys/class/net/tun0/statistics/tx_packets) && fp=$(status fastpath-handled) || return 1
	echo $((tx + fp))
}
traffic_through() {
	local n0 n1
	n0=$(handled) || return 1
	ping -c 2 -i 0.2 -W 1 "$PEER4" && ping -6 -c 2 -i 0.2 -W 1 "$PEER6" || return 1
	n1=$(handled) || return 1
	diag "$((n1 - n0)) packets through the daemon (fast path $(status fastpath))"
	[ $((n1 - n0)) -ge 4 ]
}

# --- systemctl start ----------------------------------------------------------------
if ! timeout 60 systemctl start ipmodd.service; then
	not_ok "systemctl start ipmodd (Type=notify: returns after READY=1)"
	journalctl -q -b -u ipmodd.service --no-pager | tail -30 >&2
	echo "Bail out! ipmodd.service does not start: the rest depends on it"
	exit 1
fi
ok "systemctl start ipmodd (Type=notify: returns after READY=1)"
pid=$(prop MainPID)
check_eq "... active, running" "$(prop ActiveState)/$(prop SubState)" active/running
st=$(grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/"$pid"/status 2>/dev/null |
	tr -s '\t ' ' ' | sed 's/ $//')
check_eq "... as the ipmodd user, CAP_NET_ADMIN and CAP_BPF only (CAP_NET_RAW dropped at start), no new privileges, seccomp" "$st" \
	"Uid: $UID_IPMODD $UID_IPMODD $UID_IPMODD $UID_IPMODD
Gid: $GID_IPMODD $GID_IPMODD $GID_IPMODD $GID_IPMODD
CapEff: 0000008000001000
CapBnd: 0000008000003000
NoNewPrivs: 1
Seccomp: 2"
check "... its STATUS= (\"$(prop StatusText)\")" bash -c "systemctl show -P StatusText ipmodd.service | grep -q '^Diverting .* via tun0'"
check_eq "... the rules and routes in the container's namespace" "$(state)" "$WANT_STATE"
check_eq "... ipmodctl reaches /run/ipmodd/control.sock" "$(status tun)" tun0
check_eq "... the eBPF fast path loads (CAP_BPF, bpf() in SystemCallFilter=)" "$(status fastpath)" on
check "... pings (IPv4, IPv6) to a peer go through the daemon" traffic_through

# --- systemctl reload, also of a broken config ----------------------------------------
g0=$(gen)
check "systemctl reload (ExecReload=: ipmodctl reload, as the unit's user) succeeds" \
	timeout 30 systemctl reload ipmodd.service
gen_is() { [ "$(gen)" = "$1" ]; }
wait_for 5 gen_is $((g0 + 1))
check_eq "systemctl reload: generation $((g0 + 1)), same process" "$(gen) $(prop MainPID)" "$((g0 + 1)) $pid"
check "... the journal has \"reloaded\" at priority 6 (info)" wait_for 5 journal_has 6 "^reloaded $CONF: .*generation $((g0 + 1))"
# The unit lets the reload thread lower itself (sched_setscheduler() back from @resources).
check "... the reload thread waits at SCHED_IDLE under the unit's SystemCallFilter=" \
	grep -qsE '^policy +: +5$' /proc/"$pid"/task/*/sched
echo 'rules = ( { name = "broken"; match = ; } );' >>"$CONF"
check "systemctl reload of a broken config fails" bash -c "! timeout 30 systemctl reload ipmodd.service"
st=$(systemctl status --no-pager -n 20 ipmodd.service 2>&1)
printf '%s\n' "$st" >&2
check "... and systemctl status names the file and line ($CONF:N)" grep -qE "$CONF:[0-9]+" <<<"$st"
check "a broken config on reload: an error at priority 3 (err) naming the file and line" \
	wait_for 5 journal_has 3 "reload failed.*$CONF:[0-9]+"
check_eq "... the old rules kept: generation $((g0 + 1)), same process, active" \
	"$(gen) $(prop MainPID) $(prop ActiveState)" "$((g0 + 1)) $pid active"
check "... and traffic still flows" traffic_through
cp "$CONF_SAVED" "$CONF"
# Every entry of the daemon's (not systemd's) has a PRIORITY and no "<N>"
# left in its text: journald took the level from the prefix.
all_have_priority() {
	journal_json | python3 -c '
import json, re, sys
n = bad = 0
seen = set()
for line in sys.stdin:
    e = json.loads(line)
    if e.get("_PID") == "1":
        continue
    n += 1
    m = e.get("MESSAGE")
    if isinstance(m, list):
        m = bytes(m).decode(errors="replace")
    p = e.get("PRIORITY")
    seen.add(p)
    if p not in list("01234567") or re.match(r"<[0-7]>", m or ""):
        bad += 1
        print("bad entry:", p, m, file=sys.stderr)
print(n, "entries from the daemon, priorities", sorted(seen, key=str), file=sys.stderr)
sys.exit(0 if n > 0 and bad == 0 else 1)'
}
# --- the audit trail in the journal ---------------------------------------------------------
# journal_field_entry MESSAGE_ID KEY=VALUE...: an entry of ipmodd.service
# with that MESSAGE_ID and those fields (a value with '*': a pattern, "x*" a prefix).
journal_field_entry() {
	journal_json | python3 -c '
import fnmatch, json, sys
want = dict(a.split("=", 1) for a in sys.argv[2:])
for line in sys.stdin:
    e = json.loads(line)
    if e.get("MESSAGE_ID") != sys.argv[1]:
        continue
    if all(e.get(k) == v or ("*" in v and k in e and fnmatch.fnmatchcase(str(e[k]), v))
           for k, v in want.items()):
        print(json.dumps(e), file=sys.stderr)
        sys.exit(0)
sys.exit(1)' "$@"
}
ga=$(gen)
check "ipmodctl add as root" "$IPMODCTL" add name=audit-ct proto=udp dport=7777 verdict=drop
check "... its journal entry: MESSAGE_ID, ACTION=add, CLIENT_UID=0, RULE=, GENERATION=" wait_for 5 \
	journal_field_entry 919b9154b784416496dae4a910ba5b9e ACTION=add RESULT=applied CLIENT_UID=0 \
	"RULE=name=audit-ct proto=udp dport=7777*" RULE_NAME=audit-ct GENERATION=$((ga + 1)) "CLIENT_PID=*"
# ProtectProc=invisible hides root's /proc/PID from the daemon: the command
# line is the one ipmodctl declared (client-cmdline=), and says so.
check "... CLIENT_CMDLINE= ipmodctl's own, CLIENT_CMDLINE_SOURCE=client" \
	journal_field_entry 919b9154b784416496dae4a910ba5b9e ACTION=add RULE_NAME=audit-ct \
	"CLIENT_CMDLINE=$IPMODCTL add name=audit-ct proto=udp dport=7777 verdict=drop" \
	CLIENT_CMDLINE_SOURCE=client
check "ipmodctl del" "$IPMODCTL" del audit-ct
check "... its journal entry: ACTION=del, the rule, the command line" wait_for 5 \
	journal_field_entry 919b9154b784416496dae4a910ba5b9e ACTION=del CLIENT_UID=0 \
	"RULE=name=audit-ct *" GENERATION=$((ga + 2)) "CLIENT_CMDLINE=$IPMODCTL del audit-ct" \
	CLIENT_CMDLINE_SOURCE=client
check "the refused reload is in the journal too, with the file and line" \
	journal_field_entry 20a00973ac7d4f7f9a5c3b2ff4bdd7db ACTION=reload RESULT=refused \
	"CLIENT_UID=$UID_IPMODD" "ERROR=$CONF:*" "CLIENT_CMDLINE=*ipmodctl reload" \
	"CLIENT_CMDLINE_SOURCE=*"

# --- the metrics socket unit ------------------------------------------------------------------
check "ipmodd-metrics.socket is installed, not enabled" bash -c \
	"[ \"\$(systemctl is-enabled ipmodd-metrics.socket)\" = disabled ]"
check "systemctl start ipmodd-metrics.socket" systemctl start ipmodd-metrics.socket
check "add a rule to count (the shipped config has none)" "$IPMODCTL" add name=metrics-ct proto=icmp verdict=accept
ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
check "GET http://127.0.0.1:9465/metrics: valid OpenMetrics" bash -c \
	"curl -sf --max-time 10 http://127.0.0.1:9465/metrics >'$WORKDIR/metrics.txt' &&
	 python3 '$SRCDIR/tests/helpers/openmetrics-check.py' '$WORKDIR/metrics.txt'"
head -5 "$WORKDIR/metrics.txt" >&2
check "... with the rules' counters and the generation" bash -c \
	"grep -q '^ipmodd_rule_packets_total{index=\"1\",' '$WORKDIR/metrics.txt' &&
	 grep -q '^ipmodd_generation $(gen)\$' '$WORKDIR/metrics.txt'"
"$IPMODCTL" del metrics-ct >/dev/null
check_eq "... Content-Type" \
	"$(curl -s --max-time 10 -o /dev/null -w '%{content_type}' http://127.0.0.1:9465/metrics)" \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"
check_eq "... GET /: 404" "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' http://127.0.0.1:9465/)" 404
journalctl -q -b -u 'ipmodd-metrics@*' --no-pager | tail -10 >&2
systemctl stop ipmodd-metrics.socket

check "every journal entry of the daemon has a PRIORITY, no \"<N>\" left in the text" all_have_priority
check "... its start logs at 6 (info)" journal_has 6 "^diverting "

# --- the watchdog: SIGSTOP, systemd restarts it -----------------------------------------
check_eq "WatchdogSec= of the installed unit is in force" "$(prop WatchdogUSec)" 10s
restarts=$(prop NRestarts)
kill -STOP "$pid"
t0=$(date +%s)
restarted() {
	local p
	p=$(prop MainPID)
	[ "$p" != 0 ] && [ "$p" != "$pid" ] && [ "$(prop ActiveState)" = active ] &&
		[ "$(prop NRestarts)" -gt "$restarts" ]
}
wait_for $WATCHDOG_WAIT restarted
diag "restarted after $(($(date +%s) - t0)) s (NRestarts $(prop NRestarts), MainPID $(prop MainPID))"
check "after SIGSTOP, systemd restarts it (new MainPID, NRestarts +1, active)" restarted
check "... the journal says why (watchdog timeout)" bash -c \
	"journalctl -q -b -u ipmodd.service --no-pager | grep -q 'Watchdog timeout'"
check_eq "... the restarted daemon has its rules and routes" "$(state)" "$WANT_STATE"
check "... and traffic flows through it" traffic_through

# --- systemctl stop ------------------------------------------------------------------------
check "systemctl stop ipmodd" timeout 60 systemctl stop ipmodd.service
check_eq "... inactive" "$(prop ActiveState)" inactive
check_eq "... nothing of ours is left in the namespace" "$(state)" ""
check "... tun0 is gone, and /run/ipmodd (RuntimeDirectory=) with the socket" bash -c \
	"! ip link show tun0 >/dev/null 2>&1 && [ ! -e /run/ipmodd ]"
journalctl -q -b -u ipmodd.service --no-pager -o short-monotonic | tail -40 >&2
check "the journal shows no system call, permission or read-only refusal" bash -c \
	"! journalctl -q -b -u ipmodd.service --no-pager | grep -Ei 'permission denied|not permitted|read-only'"

done_testing
