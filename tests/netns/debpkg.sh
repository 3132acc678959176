#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package as an administrator uses it, under a real systemd:
# "dpkg -i" (the ipmodd user from sysusers.d, /etc/ipmodd.conf a conffile,
# ipmodctl in /usr/bin, the unit neither enabled nor started), "systemctl
# enable --now ipmodd" (it starts and ipmodctl gets its status), "dpkg -i"
# again (an upgrade restarts it), "dpkg --remove" while it runs (stopped
# first, the routing state it added gone), then "dpkg --purge ipmodd":
# every file it installed gone, the conffile and the unit's enablement too.
#
# It installs into / and starts ipmodd.service, which diverts the whole
# network namespace's traffic: it runs only inside the throwaway container
# of "tests/container/run --deb FILE", never in "make check".
#
#   DEB   the ipmodd_*.deb to install (required)
IPMODD=/usr/sbin/ipmodd
. "$(dirname "$0")/lib.sh"

require_systemd_container "tests/container/run --deb"
: "${DEB:?DEB must name the package to install}"
require_cmd dpkg dpkg-query systemctl python3

WORKDIR=$(mktemp -d /tmp/ipmodd-debpkg.XXXXXX)
deb_cleanup() {
	systemctl stop ipmodd.service >/dev/null 2>&1
	dpkg --purge ipmodd >/dev/null 2>&1
	[ -e "$WORKDIR/policy-rc.d" ] && mv "$WORKDIR/policy-rc.d" /usr/sbin/policy-rc.d
	cleanup
}
trap deb_cleanup EXIT
trap 'exit 130' INT TERM

# A machine built as a Docker image has a policy-rc.d that forbids every
# service action of maintainer scripts (exit 101); the container's root is
# that machine's.  A Debian system has none: set it aside in the container's
# throwaway overlay, so that the package's scripts run as they would there.
if [ -e /usr/sbin/policy-rc.d ]; then
	diag "setting aside /usr/sbin/policy-rc.d (in the container only): $(tail -1 /usr/sbin/policy-rc.d)"
	mv /usr/sbin/policy-rc.d "$WORKDIR/policy-rc.d"
fi

# ipmodd's policy rules of the shipped config (priority 10000 and 9999).
our_rules() { { ip -4 rule show; ip -6 rule show; } | grep -cE '^(9999|10000):'; }

check_eq "ipmodd is not installed before" \
	"$(dpkg-query -W -f='${Status}' ipmodd 2>/dev/null)" ""
check "dpkg -i $(basename "$DEB")" dpkg -i "$DEB"
check_eq "... dpkg: install ok installed" \
	"$(dpkg-query -W -f='${Status}' ipmodd 2>/dev/null)" "install ok installed"
dpkg -L ipmodd >"$WORKDIR/list"
# The files (not directories) the package owns, to check after the purge.
while read -r f; do [ -d "$f" ] || echo "$f"; done <"$WORKDIR/list" >"$WORKDIR/files"
diag "$(wc -l <"$WORKDIR/files") files installed"
check "... ipmodd in /usr/sbin, ipmodctl in /usr/bin (none in sbin)" bash -c \
	"[ -x /usr/sbin/ipmodd ] && [ -x /usr/bin/ipmodctl ] && [ ! -e /usr/sbin/ipmodctl ]"
check "... the unit, the sysusers.d file, the man pages and the three completions are the package's" bash -c \
	"grep -qx '/lib/systemd/system/ipmodd.service' '$WORKDIR/files' &&
	 grep -qx '/usr/lib/sysusers.d/ipmodd.conf' '$WORKDIR/files' &&
	 grep -q '/usr/share/man/man8/ipmodctl.8' '$WORKDIR/files' &&
	 grep -q '/usr/share/man/man7/ipmodd-protocol.7' '$WORKDIR/files' &&
	 grep -qx '/usr/share/bash-completion/completions/ipmodctl' '$WORKDIR/files' &&
	 grep -qx '/usr/share/zsh/vendor-completions/_ipmodctl' '$WORKDIR/files' &&
	 grep -qx '/usr/share/fish/vendor_completions.d/ipmodctl.fish' '$WORKDIR/files'"
check "... /etc/ipmodd.conf is a conffile" bash -c \
	"dpkg-query -W -f='\${Conffiles}\n' ipmodd | grep -q '^ /etc/ipmodd.conf [0-9a-f]\{32\}\$'"
pw=$(getent passwd ipmodd)
IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
check "... postinst's systemd-sysusers made the system user ipmodd (uid ${uid:-?}, home /, nologin)" bash -c \
	"[ -n '$pw' ] && [ '${uid:-0}' -gt 0 ] && [ '${uid:-0}' -lt 1000 ] &&
	 [ '$home' = / ] && [ '$shell' = /usr/sbin/nologin ] && getent group ipmodd >/dev/null"
check_eq "... the unit is loaded, not enabled" \
	"$(systemctl show -P LoadState ipmodd.service) $(systemctl is-enabled ipmodd.service 2>&1)" \
	"loaded disabled"
check_eq "... not started: no traffic diverted by installing" \
	"$(systemctl is-active ipmodd.service 2>&1) $(our_rules)" "inactive 0"

check "systemctl enable --now ipmodd" systemctl enable --now ipmodd.service
check_eq "... active" "$(systemctl is-active ipmodd.service 2>&1)" active
check "... /usr/bin/ipmodctl status answers (tun0)" wait_for 10 bash -c \
	"/usr/bin/ipmodctl --json status | python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)[\"tun\"] != \"tun0\")'"
/usr/bin/ipmodctl status >&2
check_eq "... its policy rules are in place (IPv4 and IPv6)" "$(our_rules)" 4
check "... the enablement symlink exists" \
	test -L /etc/systemd/system/multi-user.target.wants/ipmodd.service
# An upgrade (the same package again) restarts a running ipmodd.
pid=$(systemctl show -P MainPID ipmodd.service)
check "dpkg -i again while it runs (an upgrade)" dpkg -i "$DEB"
check "... it runs again, restarted (pid $pid -> $(systemctl show -P MainPID ipmodd.service))" \
	wait_for 10 bash -c "[ \"\$(systemctl is-active ipmodd.service)\" = active ] &&
		[ \"\$(systemctl show -P MainPID ipmodd.service)\" != '$pid' ] &&
		/usr/bin/ipmodctl status >/dev/null"
check_eq "... still enabled" "$(systemctl is-enabled ipmodd.service 2>&1)" enabled

# Removal stops it first, while its binary can still clean up.
check "dpkg --remove ipmodd while it runs" dpkg --remove ipmodd
check_eq "... it is stopped" "$(systemctl is-active ipmodd.service 2>&1)" inactive
check_eq "... its policy rules are gone" "$(our_rules)" 0
check "... the conffile stays until the purge" test -f /etc/ipmodd.conf

check "dpkg --purge ipmodd" dpkg --purge ipmodd
check_eq "... dpkg knows no ipmodd" \
	"$(dpkg-query -W -f='${Status}' ipmodd 2>/dev/null)" ""
left=$(while read -r f; do [ -e "$f" ] && echo "$f"; done <"$WORKDIR/files")
check_eq "... every file it installed is gone" "$left" ""
check "... /etc/ipmodd.conf is gone" test ! -e /etc/ipmodd.conf
check "... the enablement symlink is gone" \
	test ! -e /etc/systemd/system/multi-user.target.wants/ipmodd.service
systemctl daemon-reload
check_eq "... systemd no longer finds the unit" \
	"$(systemctl show -P LoadState ipmodd.service)" not-found
check "... /run/ipmodd is gone" test ! -e /run/ipmodd

done_testing
