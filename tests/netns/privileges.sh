#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Least privilege: the hardened systemd unit passes "systemd-analyze verify"
# and "security" (exposure 2.5 or lower), its sysusers.d file creates the
# user, and the daemon does its whole job as an unprivileged user with
# CAP_NET_ADMIN alone, also with /proc/sys read-only but for the IPv6
# per-device settings (as ProtectKernelTunables= + ReadWritePaths= leave it,
# the host-wide all/default read-only), and with a strict reverse-path
# filter (all/rp_filter writable, as there).
# Where systemd is PID 1, the unit's own sandbox runs it too, inside the test
# namespace (NetworkNamespacePath=); elsewhere that part is skipped.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping setpriv unshare
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # SKIP $*"; }

MAX_EXPOSURE=2.5
UNIT_IN=$SRCDIR/systemd/ipmodd.service.in
SYSUSERS=$SRCDIR/systemd/ipmodd.sysusers
# The unit as "make" generates it, pointing at the binaries under test;
# gen_unit SYSCONFDIR [SOCKET]: ExecReload='s ipmodctl with -s SOCKET (the
# drop-in a control.socket other than the default needs).
gen_unit() {
	local sock=()
	[ -n "${2:-}" ] && sock=(-e "s|/ipmodctl reload\$|/ipmodctl -s $2 reload|")
	sed -e "s|@sbindir[@]|$(dirname "$IPMODD")|g" -e "s|@sysconfdir[@]|$1|g" \
		-e "s|@ipmodctldir[@]|$(dirname "$IPMODCTL")|g" "${sock[@]}" "$UNIT_IN"
}

# --- the unit file -------------------------------------------------------------
mkdir -p "$WORKDIR/unit"
UNIT=$WORKDIR/unit/ipmodd.service
gen_unit /etc >"$UNIT"
if command -v systemd-analyze >/dev/null; then
	out=$(systemd-analyze verify --man=no "$UNIT" 2>&1)
	rc=$?
	check_eq "systemd-analyze verify: the unit is clean (exit 0, no message)" "$rc:$out" "0:"

	sec=$(systemd-analyze security --offline=yes "$UNIT" 2>&1)
	level=$(sed -n 's/^.*Overall exposure level for ipmodd.service: \([0-9.]*\).*/\1/p' <<<"$sec")
	if [ -z "$level" ] && grep -qiE 'unrecognized option|unknown option|offline' <<<"$sec"; then
		skip "systemd-analyze security has no --offline here ($(systemd-analyze --version | head -1))"
		skip "systemd-analyze security has no --offline here"
	else
		printf '%s\n' "$sec" >&2
		# Tenths: systemd prints one decimal.
		tenths() { [[ $1 =~ ^([0-9]+)\.([0-9])$ ]] && echo $((BASH_REMATCH[1] * 10 + BASH_REMATCH[2])); }
		check "systemd-analyze security: exposure ${level:-?} <= $MAX_EXPOSURE" \
			test "$(tenths "$level")" -le "$(tenths $MAX_EXPOSURE)"
		missing=""
		for item in 'User=/DynamicUser=' 'NoNewPrivileges=' 'CapabilityBoundingSet=~CAP_SYS_ADMIN' \
			'CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)' 'ProtectSystem=' 'ProtectHome=' \
			'PrivateTmp=' 'PrivateDevices=' 'ProtectKernelTunables=' \
			'ProtectKernelModules=' 'RestrictAddressFamilies=~AF_(INET|INET6)' \
			'SystemCallFilter=~@mount' \
			'SystemCallArchitectures=' 'MemoryDenyWriteExecute=' 'RestrictNamespaces=~user' \
			'LockPersonality=' 'IPAddressDeny='; do
			grep -qF "✓ $item " <<<"$sec" || missing="$missing $item"
		done
		check_eq "... including the settings that matter here" "${missing# }" ""
	fi
else
	skip "no systemd-analyze"
	skip "no systemd-analyze"
fi

if command -v systemd-sysusers >/dev/null; then
	mkdir -p "$WORKDIR/sysroot/etc"
	check "systemd-sysusers accepts the sysusers.d file" \
		systemd-sysusers --root="$WORKDIR/sysroot" "$SYSUSERS"
	check "... and creates the system user ipmodd with its group, no login" bash -c \
		"grep -q '^ipmodd:x:[0-9]*:[0-9]*:.*:/:/usr/sbin/nologin\$' '$WORKDIR/sysroot/etc/passwd' &&
		 grep -q '^ipmodd:x:' '$WORKDIR/sysroot/etc/group'"
else
	skip "no systemd-sysusers"
	skip "no systemd-sysusers"
fi

# --- unprivileged, CAP_NET_ADMIN only -------------------------------------------
# nobody/nogroup, or any unused ids: nothing here needs a passwd entry.
RUID=65534
RGID=65534
RGROUP=$(getent group "$RGID" | cut -d: -f1)
chmod 0711 "$WORKDIR"
UDIR=$WORKDIR/unpriv
mkdir -m 0755 "$UDIR"
chown "$RUID:$RGID" "$UDIR"
# The socket's directory does not exist yet: the daemon makes it, unprivileged.
USOCK=$UDIR/run/control.sock
UCONF=$WORKDIR/unpriv.conf
GROUPLINE=""
[ -n "$RGROUP" ] && GROUPLINE="group = \"$RGROUP\"; "
write_config "$UCONF"
sed -i "s|^control = .*|control = { socket = \"$USOCK\"; ${GROUPLINE}mode = \"0660\"; };|" "$UCONF"
chmod 0644 "$UCONF"

# udev makes /dev/net/tun 0666; where it is not (a container's /dev), the
# daemon runs with such a node of its own in a private /dev/net.
TUN=()
if [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
	diag "/dev/net/tun is $(stat -c %a /dev/net/tun) here, not 0666 as udev makes it: using a private 0666 node"
	TUN=(unshare --mount --propagation private sh -c 'mount -t tmpfs -o mode=0755 tun /dev/net &&
		mknod -m 0666 /dev/net/tun c 10 200 && exec "$@"' sh)
fi

# as_user [CAPS] -- COMMAND...: run as RUID/RGID, no supplementary group, with
# exactly CAPS (default net_admin; "" for none), no way to gain more.
as_user() {
	local caps=net_admin set
	if [ "$1" != -- ]; then caps=$1; shift; fi
	shift
	set="-all"
	[ -n "$caps" ] && set="-all,+$caps"
	setpriv --reuid="$RUID" --regid="$RGID" --clear-groups --no-new-privs \
		--inh-caps="$set" --ambient-caps="$set" --bounding-set="$set" -- "$@"
}

# start_as CONFIG CAPS [WRAP...]: like start_ipmodd, as RUID/RGID with exactly
# CAPS ("" for none); WRAP... runs the rest, inside the namespace, as root.
start_as() {
	local conf=$1 set="-all${2:+,+$2}"
	shift 2
	ip netns exec "$HOST_NS" "${TUN[@]}" "$@" env ${IPMODD_ENV:-} setpriv --reuid="$RUID" --regid="$RGID" \
		--clear-groups --no-new-privs --inh-caps="$set" --ambient-caps="$set" \
		--bounding-set="$set" -- "$IPMODD" -c "$conf" >>"$WORKDIR/ipmodd.log" 2>&1 &
	IPMODD_PID=$!
	wait_routing "$IPMODD_PID" rule_up 6 && return 0
	diag "ipmodd did not come up:" "$(tail -5 "$WORKDIR/ipmodd.log")"
	return 1
}
# fail_as CONFIG CAPS [WRAP...]: start_as for a start that must fail; its status.
fail_as() {
	local rc
	: >"$WORKDIR/ipmodd.log"
	start_as "$@" >/dev/null 2>&1
	wait "$IPMODD_PID"
	rc=$?
	IPMODD_PID=""
	diag "as expected, it said: $(tail -1 "$WORKDIR/ipmodd.log")"
	return $rc
}

WANT_STATE="$((PRIO - 1)):	from all iif tun0 lookup main
$PRIO:	from all lookup $TABLE
$((PRIO - 1)):	from all iif tun0 lookup main
$PRIO:	from all lookup $TABLE
default dev tun0 proto 73 scope link"
# our_state with the IPv6 route reduced to its first words.
state() { our_state | sed -e 's/ *$//' -e '/^default dev tun0 proto 73 metric/d'; }
devconf() {
	hx cat /proc/sys/net/ipv4/conf/tun0/forwarding /proc/sys/net/ipv4/conf/tun0/accept_local \
		/proc/sys/net/ipv4/conf/tun0/rp_filter /proc/sys/net/ipv6/conf/tun0/force_forwarding |
		tr '\n' ' '
}
status_of() {
	"$IPMODCTL" -s "$1" --json status | python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])"
}
# traffic_through: IPv4 and IPv6 pings answered, and counted on tun0.
traffic_through() {
	local tx0 tx1
	tx0=$(tun_tx_packets)
	hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null || return 1
	hx ping -6 -c 2 -i 0.2 -W 1 "$PEER6" >/dev/null || return 1
	tx1=$(tun_tx_packets)
	[ $((tx1 - tx0)) -ge 4 ]
}

check "--check-config works as the unprivileged user" as_user "" -- "$IPMODD" --check-config -c "$UCONF"

# Without CAP_NET_ADMIN it must fail, cleanly: proves the drop is real.
before=$(state)
fail_as "$UCONF" ""
check "without CAP_NET_ADMIN it exits non-zero ($?)" test "$?" -ne 0
check "... saying why" grep -q "Operation not permitted" "$WORKDIR/ipmodd.log"
check_eq "... and leaves the namespace as it was" "$(state)" "$before"
: >"$WORKDIR/ipmodd.log"

# A notify socket the unprivileged daemon may send to.
notify_listen "$UDIR/notify.sock" "$WORKDIR/notify.log"

IPMODD_ENV="NOTIFY_SOCKET=$UDIR/notify.sock"
check "it starts as uid $RUID with CAP_NET_ADMIN only" start_as "$UCONF" net_admin
IPMODD_ENV=""
st=$(grep -E '^(Uid|Gid|Groups|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/"$IPMODD_PID"/status 2>/dev/null |
	tr -s '\t ' ' ' | sed 's/ $//')
check_eq "... really (uid, gid, groups, capabilities)" "$st" "Uid: $RUID $RUID $RUID $RUID
Gid: $RGID $RGID $RGID $RGID
Groups:
CapPrm: 0000000000001000
CapEff: 0000000000001000
CapBnd: 0000000000001000
CapAmb: 0000000000001000
NoNewPrivs: 1"
check_eq "the rules and routes are installed" "$(state)" "$WANT_STATE"
check_eq "tun0 forwarding=1 accept_local=1 rp_filter=0, and force_forwarding=1 written through /proc/sys" \
	"$(devconf)" "1 1 0 1 "
check "IPv4 and IPv6 pings go through the daemon (tun0 TX counter)" traffic_through
sleep 0.2
# tun.nice's default -5 needs CAP_SYS_NICE from a start at nice 0 (or an
# RLIMIT_NICE of 25): refused, said once, and the packet threads keep the
# nice they were given.
given=$(thread_nices $$ | awk '{ print $1 }')
nicelim=$(ulimit -e)
if [ "$given" -gt -5 ] && [ "$nicelim" != unlimited ] && [ "$nicelim" -lt 25 ]; then
	check_eq "without CAP_SYS_NICE tun.nice = -5 is refused and said once" \
		"$(grep -c "tun.nice = -5: the packet threads stay at nice $given (a lower value needs CAP_SYS_NICE" \
			"$WORKDIR/ipmodd.log")" 1
	check_eq "... and the packet threads run at nice $given" \
		"$(thread_nices "$IPMODD_PID" | awk '{ print $1 }')" "$given"
else
	skip "the test runs at nice $given, RLIMIT_NICE $nicelim: -5 may be allowed"
	skip "the test runs at nice $given, RLIMIT_NICE $nicelim: -5 may be allowed"
fi
check "READY=1 reaches the notify socket" grep -q 'READY=1' "$WORKDIR/notify.log"
if [ -n "$RGROUP" ]; then
	check_eq "it made the socket's directory and the socket (owner, group, mode)" \
		"$(stat -c '%u %A' "$UDIR/run") $(stat -c '%u %G %a' "$USOCK")" \
		"$RUID drwxr-xr-x $RUID $RGROUP 660"
else
	skip "no group $RGID"
fi
check_eq "ipmodctl (root) gets the status" "$(status_of "$USOCK" tun)" tun0
check "ipmodctl reload works" "$IPMODCTL" -s "$USOCK" reload
kill -HUP "$IPMODD_PID"
sleep 0.3
check_eq "SIGHUP reloads (generation 3)" "$(status_of "$USOCK" generation)" 3
stop_ipmodd TERM
check_eq "SIGTERM: exit 0" "$?" 0
check_eq "... nothing of ours is left" "$(state)" ""
check "... tun0 is gone and the socket removed" bash -c \
	"! ip netns exec $HOST_NS ip link show tun0 >/dev/null 2>&1 && [ ! -e '$USOCK' ]"

# A crash leaves rules behind; --cleanup (ExecStopPost=) removes them, unprivileged.
check "it starts again" start_as "$UCONF" net_admin
kill -9 "$IPMODD_PID"; wait "$IPMODD_PID" 2>/dev/null; IPMODD_PID=""
check "the rules outlive a kill -9" test -n "$(state)"
check "--cleanup works as the unprivileged user" hx setpriv --reuid="$RUID" --regid="$RGID" \
	--clear-groups --no-new-privs --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
	--bounding-set=-all,+net_admin -- "$IPMODD" --cleanup -c "$UCONF"
check_eq "... and leaves nothing" "$(state)" ""

# The unit's capabilities, CAP_NET_ADMIN and CAP_BPF: the fast path loads,
# without CAP_PERFMON or CAP_SYS_ADMIN, as the unprivileged user.
{ cat "$UCONF"; echo 'fastpath = "on";'; } >"$WORKDIR/fastpath.conf"
if "$IPMODD" --version >/dev/null && start_as "$WORKDIR/fastpath.conf" net_admin,+bpf; then
	ok "with CAP_NET_ADMIN and CAP_BPF, fastpath = \"on\" starts as uid $RUID"
	check_eq "... with the fast path on" "$(status_of "$USOCK" fastpath)" on
	hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
	check "... which handles the pings in the kernel" \
		test "$(status_of "$USOCK" fastpath-handled)" -ge 2
	check_eq "... and keeps CAP_BPF, which the fast path's map updates need" \
		"$(awk '/^CapPrm/ { print $2 }' /proc/"$IPMODD_PID"/status)" 0000008000001000
	stop_ipmodd TERM
	check_eq "... and stops cleanly (exit 0)" "$?" 0
else
	not_ok "with CAP_NET_ADMIN and CAP_BPF, fastpath = \"on\" starts as uid $RUID"
	diag "$(tail -3 "$WORKDIR/ipmodd.log")"
fi
# The unit grants CAP_BPF and CAP_NET_RAW whatever the file says: with
# fastpath = "off" and reinject = "forward" the daemon gives CAP_BPF up at
# start, CAP_NET_RAW once its self-check is done, and nothing it runs gets
# them back.
{ sed -e 's|reinject = "[a-z]*"; ||' -e 's|^routing = { |routing = { reinject = "forward"; |' "$UCONF"
  echo 'fastpath = "off";'; } >"$WORKDIR/nofastpath.conf"
check "with CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW, fastpath = \"off\", reinject = \"forward\" starts" \
	start_as "$WORKDIR/nofastpath.conf" net_admin,+bpf,+net_raw
st=$(grep -E '^(CapPrm|CapEff|CapAmb):' /proc/"$IPMODD_PID"/status 2>/dev/null | tr -s '\t ' ' ')
check_eq "... and drops CAP_BPF and CAP_NET_RAW (permitted, effective, ambient)" "$st" "CapPrm: 0000000000001000
CapEff: 0000000000001000
CapAmb: 0000000000001000"
stop_ipmodd TERM
check_eq "... and stops cleanly (exit 0)" "$?" 0
# --check-config (the unit's ExecStartPre=) drops every capability first: as
# root, without CAP_DAC_OVERRIDE, it cannot read a file of mode 000.
cp "$UCONF" "$WORKDIR/mode000.conf"
chmod 000 "$WORKDIR/mode000.conf"
out=$("$IPMODD" --check-config -c "$WORKDIR/mode000.conf" 2>&1); rc=$?
check "--check-config runs without capabilities, even as root (exit $rc: $out)" \
	bash -c "[ $rc = 1 ] && grep -qi 'permission denied' <<<'$out'"

# control.group naming a group it is not in: chown needs CAP_CHOWN, which it
# lacks.  It refuses to start, cleanly (the unit's comment: SupplementaryGroups=).
OTHER=$(getent group 0 | cut -d: -f1)
if [ -n "$OTHER" ]; then
	sed -e "s|group = \"$RGROUP\"; ||" -e "s|mode = \"0660\"|group = \"$OTHER\"; mode = \"0660\"|" \
		"$UCONF" >"$WORKDIR/othergroup.conf"
	fail_as "$WORKDIR/othergroup.conf" net_admin
	check "control.group = \"$OTHER\", not its group: exits non-zero ($?)" test "$?" -ne 0
	check "... saying why" grep -q "Operation not permitted" "$WORKDIR/ipmodd.log"
	check_eq "... and leaves nothing" "$(state)" ""
else
	skip "no group 0"; skip "no group 0"; skip "no group 0"
fi

# --- /proc/sys read-only but for net/ipv6/conf ----------------------------------
# What ProtectKernelTunables=yes with ReadWritePaths=/proc/sys/net/ipv6/conf
# and ReadOnlyPaths=.../conf/all .../conf/default leave: a read-only bind of
# /proc/sys, in it a writable bind of the subtree, in that read-only binds
# of the host-wide entries (systemd skips ReadWritePaths= when it makes the
# parent read-only, and mounts parents first).
RO_ALL=(unshare --mount --propagation private sh -c 'mount --bind /proc/sys /proc/sys &&
	mount -o remount,bind,ro /proc/sys && exec "$@"' sh)
RO_BUT_IPV6=(unshare --mount --propagation private sh -c 'mount --bind /proc/sys /proc/sys &&
	mount -o remount,bind,ro /proc/sys &&
	mount --bind /proc/sys/net/ipv6/conf /proc/sys/net/ipv6/conf &&
	mount -o remount,bind,rw /proc/sys/net/ipv6/conf &&
	for d in all default; do
		mount --bind /proc/sys/net/ipv6/conf/$d /proc/sys/net/ipv6/conf/$d &&
		mount -o remount,bind,ro /proc/sys/net/ipv6/conf/$d || exit 1
	done && exec "$@"' sh)
: >"$WORKDIR/ipmodd.log"
check "/proc/sys read-only except net/ipv6/conf: it starts" start_as "$UCONF" net_admin "${RO_BUT_IPV6[@]}"
check_eq "... and writes force_forwarding=1" "$(devconf)" "1 1 0 1 "
check "... while the rest of /proc/sys is read-only, even to root" \
	hx "${RO_BUT_IPV6[@]}" sh -c '! echo 0 2>/dev/null >/proc/sys/net/ipv4/ip_forward'
check "... and so are the host-wide net.ipv6.conf.all and .default" \
	hx "${RO_BUT_IPV6[@]}" sh -c '! echo 0 2>/dev/null >/proc/sys/net/ipv6/conf/all/forwarding &&
		! echo 0 2>/dev/null >/proc/sys/net/ipv6/conf/default/forwarding'
stop_ipmodd TERM
check_eq "... SIGTERM: exit 0, nothing left" "$?:$(state)" "0:"
fail_as "$UCONF" net_admin "${RO_ALL[@]}"
check "/proc/sys all read-only: it fails ($?), so ReadWritePaths= is needed" \
	grep -q "force_forwarding.*Read-only file system" "$WORKDIR/ipmodd.log"
check_eq "... and leaves nothing" "$(state)" ""

# A strict reverse-path filter (RHEL's all = 1, uplink 1) under the same
# sandbox plus ReadWritePaths=/proc/sys/net/ipv4/conf/all/rp_filter: the
# uplink is made loose over netlink, all = 0 through the writable file.
RO_BUT_UNIT=(unshare --mount --propagation private sh -c 'mount --bind /proc/sys /proc/sys &&
	mount -o remount,bind,ro /proc/sys &&
	mount --bind /proc/sys/net/ipv6/conf /proc/sys/net/ipv6/conf &&
	mount -o remount,bind,rw /proc/sys/net/ipv6/conf &&
	f=/proc/sys/net/ipv4/conf/all/rp_filter && mount --bind $f $f &&
	mount -o remount,bind,rw $f && exec "$@"' sh)
rpf() { hx cat /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/conf/veth0/rp_filter | tr '\n' ' '; }
hx sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.veth0.rp_filter=1
: >"$WORKDIR/ipmodd.log"
check "strict rp_filter, as the unit runs it: it starts" start_as "$UCONF" net_admin "${RO_BUT_UNIT[@]}"
check_eq "... all 0, veth0 loose" "$(rpf)" "0 2 "
check "... traffic flows" traffic_through
check "... and the peer reaches the host" px ping -c 1 -W 1 "$HOST4"
stop_ipmodd TERM
check_eq "... SIGTERM: exit 0, nothing left, all and veth0 strict again" "$?:$(state):$(rpf)" "0::1 1 "
hx sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.veth0.rp_filter=0

# --- under systemd: the unit's own sandbox ------------------------------------
# Where systemd is PID 1: the unit from the file, as a transient service
# joined to the test namespace (NetworkNamespacePath=), as uid/gid 65534 (the
# ipmodd user need not exist), with its own runtime directory, no restart.
SD_TESTS=15
SDNAME=ipmodd-test-$$-$RANDOM
SDETC=/run/$SDNAME-etc
SDSOCK=/run/$SDNAME/control.sock
sd_cleanup() {
	systemctl stop "$SDNAME.service" >/dev/null 2>&1
	rm -rf "$SDETC"
}
sd_skip() { local i; for i in $(seq $SD_TESTS); do skip "$*"; done; }
# sd_start: start the transient unit, wait for READY=1 (Type=notify).
sd_start() {
	local props=() line
	while IFS= read -r line; do
		case $line in '' | '#'* | '['*) continue ;; esac
		case ${line%%=*} in ExecStart | User | Group | RuntimeDirectory | Restart) continue ;; esac
		props+=(-p "$line")
	done < <(sed -n '/^\[Service\]/,/^\[Install\]/p' "$SDUNIT")
	# The binaries under test may be in /tmp (PrivateTmp=) or a home (ProtectHome=).
	props+=(-p BindReadOnlyPaths="${IPMODD%/*}")
	case $IPMODD in /home/* | /root/* | /run/user/*) props+=(-p ProtectHome=tmpfs) ;; esac
	systemd-run --quiet --collect --unit="$SDNAME" -p NetworkNamespacePath="/run/netns/$HOST_NS" \
		-p User="$RUID" -p Group="$RGID" -p RuntimeDirectory="$SDNAME" "${props[@]}" \
		-- "$IPMODD" -c "$SDETC/ipmodd.conf"
}
# sd_traffic_through: pings answered, counted on tun0 or by the fast path.
sd_handled() {
	local fp=0
	# The status has no fastpath-handled without a fast path.
	[ "$(status_of "$SDSOCK" fastpath)" = on ] && { fp=$(status_of "$SDSOCK" fastpath-handled) || return 1; }
	echo $(($(tun_tx_packets) + fp))
}
sd_traffic_through() {
	local n0 n1
	n0=$(sd_handled) || return 1
	hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null || return 1
	hx ping -6 -c 2 -i 0.2 -W 1 "$PEER6" >/dev/null || return 1
	n1=$(sd_handled) || return 1
	diag "the fast path is $(status_of "$SDSOCK" fastpath); $((n1 - n0)) packets through the daemon"
	[ $((n1 - n0)) -ge 4 ]
}
sd_mainpid() { systemctl show -P MainPID "$SDNAME.service"; }
# sd_gone: wait until the unit is no more (--collect).
sd_gone() {
	local i
	for i in $(seq 100); do
		[ "$(systemctl show -P LoadState "$SDNAME.service" 2>/dev/null)" = not-found ] && return 0
		[ "$(systemctl show -P ActiveState "$SDNAME.service" 2>/dev/null)" = inactive ] && return 0
		sleep 0.1
	done
	return 1
}
if [ "$(ps -p 1 -o comm= 2>/dev/null)" != systemd ] || [ ! -d /run/systemd/system ]; then
	sd_skip "systemd is not PID 1 here (PID 1: $(ps -p 1 -o comm= 2>/dev/null))"
elif ! command -v systemd-run >/dev/null; then
	sd_skip "no systemd-run"
elif [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
	sd_skip "/dev/net/tun is $(stat -c %a /dev/net/tun), not 0666 as udev makes it: User= cannot open it"
else
	trap 'sd_cleanup; cleanup' EXIT
	mkdir -m 0755 "$SDETC"
	# fastpath = "off", reinject = "forward": the unit grants CAP_BPF and
	# CAP_NET_RAW, the daemon drops them at start.
	FASTPATH=off REINJECT=forward write_config "$SDETC/ipmodd.conf"
	sed -i "s|^control = .*|control = { socket = \"$SDSOCK\"; };|" "$SDETC/ipmodd.conf"
	SDUNIT=$WORKDIR/unit/sd/ipmodd.service
	mkdir -p "${SDUNIT%/*}"
	gen_unit "$SDETC" "$SDSOCK" >"$SDUNIT"
	check "systemd starts the unit in the test namespace" sd_start
	pid=$(sd_mainpid)
	st=$(grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/"$pid"/status 2>/dev/null |
		tr -s '\t ' ' ' | sed 's/ $//')
	check_eq "... as uid $RUID, CAP_NET_ADMIN only (CAP_BPF and CAP_NET_RAW dropped), no new privileges, seccomp" "$st" \
		"Uid: $RUID $RUID $RUID $RUID
CapEff: 0000000000001000
CapBnd: 0000008000003000
NoNewPrivs: 1
Seccomp: 2"
	check_eq "... the rules and routes are installed" "$(state)" "$WANT_STATE"
	check_eq "... force_forwarding=1 written (ProtectKernelTunables= + ReadWritePaths=)" \
		"$(devconf)" "1 1 0 1 "
	# The unit has CAP_BPF and the config fastpath = "auto": the kernel's
	# fast path or the userspace path (tun0) handles them.
	check "... pings go through the daemon (its fast path or tun0)" sd_traffic_through
	check_eq "... its packet threads at the unit's Nice=-5 (tun.nice's default), no warning" \
		"$(thread_nices "$pid" | awk '{ print $1 }'):$(journalctl -q -u "$SDNAME.service" --no-pager |
			grep -c 'tun.nice')" "-5:0"
	check_eq "... ipmodctl reaches the socket in its RuntimeDirectory=" "$(status_of "$SDSOCK" tun)" tun0
	check_eq "... the socket: owner $RUID, mode 0660" "$(stat -c '%u %a' "$SDSOCK")" "$RUID 660"
	check "... its /proc/sys is read-only, /proc/sys/net/ipv6/conf writable" bash -c \
		"grep -q ' /proc/sys ro,' /proc/$pid/mountinfo && grep -q ' /proc/sys/net/ipv6/conf rw,' /proc/$pid/mountinfo"
	check "systemctl reload (ExecReload=: ipmodctl reload as the unit's user, in the sandbox) succeeds" \
		timeout 30 systemctl reload "$SDNAME.service"
	check_eq "... and reloads" "$(status_of "$SDSOCK" generation)" 2
	systemctl stop "$SDNAME.service"
	sd_gone
	check_eq "systemctl stop leaves nothing" "$(state)" ""
	check "it starts again" sd_start
	check_eq "... with its entries" "$(state)" "$WANT_STATE"
	systemctl kill -s KILL --kill-who=main "$SDNAME.service"
	sd_gone
	check_eq "after SIGKILL, ExecStopPost=ipmodd --cleanup in the sandbox removes them" "$(state)" ""
	journalctl -q -u "$SDNAME.service" --no-pager 2>/dev/null | tail -30 >&2
	check "the journal shows no system call or permission refused" bash -c \
		"! journalctl -q -u '$SDNAME.service' --no-pager | grep -Ei 'permission denied|not permitted|read-only'"
fi

done_testing
