#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The core packet path: diversion through tun0 is installed exactly, is
# transparent on the wire, and leaves nothing behind on exit, crash or error.
. "$(dirname "$0")/lib.sh"
# The daemon's own packet path: these checks count packets on tun0 and in
# rx-packets to prove they went through it, which the eBPF fast path bypasses;
# fastpath.sh compares the fast path's wire bytes with this path's.
FASTPATH=off

require_root
require_cmd ping tcpdump tshark socat sha256sum python3 traceroute
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
write_config "$CONF"

# Capture what the peer receives from the host, as fields from an independent parser.
capture_start() {
	CAP=$WORKDIR/$1.pcap
	CAP_NAME=$1
	pcap_start "$1" "$PEER_NS" veth0 "src host $HOST4 or src host $HOST6"
}
capture_stop() { pcap_stop "$CAP_NAME"; }
fields() {
	tshark -r "$1" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
		-o udp.check_checksum:TRUE \
		-Y 'icmp.type == 8 || icmpv6.type == 128 || udp' -T fields -E separator=' ' \
		-e ip.ttl -e ip.dsfield -e ip.len -e ip.flags -e ipv6.hlim -e ipv6.tclass \
		-e ipv6.plen -e icmp.type -e icmpv6.type -e icmp.seq -e icmpv6.echo.sequence_number \
		-e data.len -e udp.length -e udp.payload 2>/dev/null
}
traffic() {
	hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
	hx ping -c 2 -i 0.2 -W 1 -t 1 "$PEER4" >/dev/null
	hx ping -c 2 -i 0.2 -W 1 -Q 0x28 "$PEER4" >/dev/null
	hx ping -6 -c 2 -i 0.2 -W 1 "$PEER6" >/dev/null
	hx ping -6 -c 2 -i 0.2 -W 1 -t 1 "$PEER6" >/dev/null
	echo ipmodd-transparent | hx socat -u - "UDP4:$PEER4:9" 2>/dev/null
	echo ipmodd-transparent | hx socat -u - "UDP6:[$PEER6]:9" 2>/dev/null
}

# --- configuration errors leave the namespace untouched ----------------------
ns_state() { hx ip -4 rule; hx ip -6 rule; hx ip -o link | cut -d: -f2; hx ip route; hx ip -6 route; }
before=$(ns_state)
printf 'tun = { name = "tun0"; mtu = 1500; };\nrouting = {\n\ttable = 100;\n\tbogus = 1;\n};\n' \
	>"$WORKDIR/bad.conf"
out=$(hx "$IPMODD" -c "$WORKDIR/bad.conf" 2>&1)
rc=$?
check_eq "a config error exits 1" "$rc" 1
check "the error names file:line ($out)" grep -q "bad.conf:4" <<<"$out"
out=$(hx "$IPMODD" --check-config -c "$WORKDIR/bad.conf" 2>&1)
check_eq "--check-config exits 1 on the bad file" "$?" 1
{ sed '/^fastpath/d' "$CONF"; echo 'fastpath = "sometimes";'; } >"$WORKDIR/fastpath-bad.conf"
out=$(hx "$IPMODD" -c "$WORKDIR/fastpath-bad.conf" 2>&1)
check_eq "an unknown fastpath value exits 1" "$?" 1
check "... and says why ($out)" grep -q 'fastpath: "sometimes" is not off, auto or on' <<<"$out"
check_eq "the namespace is untouched after config errors" "$(ns_state)" "$before"
hx "$IPMODD" -c "$WORKDIR/missing.conf" >/dev/null 2>&1
check_eq "a missing config file exits 1" "$?" 1
check "--check-config accepts the test config" hx "$IPMODD" --check-config -c "$CONF"
check "--check-config accepts the shipped config" "$IPMODD" --check-config -c "$SRCDIR/etc/ipmodd.conf"
"$IPMODD" --bogus >/dev/null 2>&1
check_eq "an unknown option exits 2" "$?" 2
check "--version prints the version" bash -c "'$IPMODD' --version | grep -q '^ipmodd [0-9]'"

# --- baseline without ipmodd --------------------------------------------------
capture_start base
traffic
capture_stop
base_fields=$(fields "$CAP")
check "the baseline capture has the probe packets" test "$(wc -l <<<"$base_fields")" -ge 12

# --- running: exactly our entries ---------------------------------------------
check "ipmodd starts and installs routing" start_ipmodd "$CONF"
want="$((PRIO - 1)):	from all iif tun0 lookup main
$PRIO:	from all lookup $TABLE
$((PRIO - 1)):	from all iif tun0 lookup main
$PRIO:	from all lookup $TABLE"
got=$(hx ip -4 rule show | grep -E "^($((PRIO - 1))|$PRIO):"; hx ip -6 rule show | grep -E "^($((PRIO - 1))|$PRIO):")
check_eq "ip rule / ip -6 rule show exactly the two rules per family" "$got" "$want"
check_eq "table $TABLE has one IPv4 route" "$(hx ip -4 route show table $TABLE | sed 's/ *$//')" "default dev tun0 proto 73 scope link"
check "table $TABLE has one IPv6 route" bash -c "[ \"\$(ip netns exec $HOST_NS ip -6 route show table $TABLE | grep -c '^default dev tun0')\" = 1 ] && [ \"\$(ip netns exec $HOST_NS ip -6 route show table $TABLE | wc -l)\" = 1 ]"
check "tun0 has no address" bash -c "! ip netns exec $HOST_NS ip addr show dev tun0 | grep -q 'inet'"
check_eq "tun0 forwarding=1 accept_local=1 rp_filter=0" \
	"$(hx cat /proc/sys/net/ipv4/conf/tun0/forwarding /proc/sys/net/ipv4/conf/tun0/accept_local \
		/proc/sys/net/ipv4/conf/tun0/rp_filter | tr '\n' ' ')" "1 1 0 "
ctl() { "$IPMODCTL" -s "$WORKDIR/control.sock" "$@"; }
# IPv6 leaves through the re-injection program (the tun's own forwarding
# flag, which its lookup needs) or the kernel's forwarding (force_forwarding,
# 6.17): each that the kernel and the status say is in use is set.
v6conf() {
	local c=/proc/sys/net/ipv6/conf/tun0
	hx test -e $c/force_forwarding && echo "force_forwarding=$(hx cat $c/force_forwarding)"
	[ "$(status_field reinject)" = bpf ] && echo "forwarding=$(hx cat $c/forwarding)"
}
want6=$(hx test -e /proc/sys/net/ipv6/conf/tun0/force_forwarding && echo force_forwarding=1
	[ "$(status_field reinject)" = bpf ] && echo forwarding=1)
diag "IPv6 on tun0: $(echo ${want6:-neither force_forwarding nor re-injection})"
check "tun0: IPv6 has a way out (force_forwarding or re-injection)" test -n "$want6"
check_eq "tun0: $(echo $want6)" "$(v6conf)" "$want6"
check_eq "global IPv4 forwarding is left off" "$(hx cat /proc/sys/net/ipv4/ip_forward)" 0
check_eq "global IPv6 forwarding is never set" \
	"$(hx cat /proc/sys/net/ipv6/conf/all/forwarding /proc/sys/net/ipv6/conf/default/forwarding | tr '\n' ' ')" "0 0 "
check "route lookups for the peer go through tun0" bash -c \
	"ip netns exec $HOST_NS ip route get $PEER4 | grep -q 'dev tun0 table $TABLE src $HOST4'"
check "a second instance refuses to start and leaves the first alone" bash -c \
	"! ip netns exec $HOST_NS '$IPMODD' -c '$CONF' 2>/dev/null"
check_eq "the first instance's entries are intact" "$(hx ip -4 rule show | grep -cE "^($((PRIO - 1))|$PRIO):")" 2

# --- transparent on the wire --------------------------------------------------
tx0=$(tun_tx_packets)
capture_start through
traffic
capture_stop
tx1=$(tun_tx_packets)
check "the probes went through the daemon ($((tx1 - tx0)) packets on tun0)" test $((tx1 - tx0)) -ge 12
through_fields=$(fields "$CAP")
check_eq "TTL, hop limit, TOS, lengths and payloads on the wire are unchanged" "$through_fields" "$base_fields"
bad=$(tshark -r "$CAP" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o icmpv6.checksum:TRUE \
	-Y 'ip.checksum.status == "Bad" || udp.checksum.status == "Bad" || icmp.checksum.status == "Bad" || icmpv6.checksum.status == "Bad"' 2>/dev/null | wc -l)
check_eq "no bad checksum in the capture" "$bad" 0

head -c 2000000 /dev/urandom >"$WORKDIR/blob"
for fam in 4 6; do
	if [ $fam = 4 ]; then dst=$PEER4; else dst="[$PEER6]"; fi
	rm -f "$WORKDIR/recv$fam"
	ip netns exec "$PEER_NS" socat -u "TCP$fam-LISTEN:5001,reuseaddr" "OPEN:$WORKDIR/recv$fam,creat" &
	srv=$!
	sleep 0.3
	# Bytes, not packets: with TSO the tun hands over super-packets of up to 64 KiB.
	tx0=$(tun_tx_bytes)
	hx timeout 20 socat -u "FILE:$WORKDIR/blob" "TCP$fam:$dst:5001"
	wait $srv
	tx1=$(tun_tx_bytes)
	check_eq "a 2 MB TCP transfer over IPv$fam arrives byte-exact" \
		"$(sha256sum <"$WORKDIR/recv$fam" | cut -d' ' -f1)" "$(sha256sum <"$WORKDIR/blob" | cut -d' ' -f1)"
	check "the IPv$fam transfer went through tun0 ($((tx1 - tx0)) bytes)" test $((tx1 - tx0)) -ge 2000000
done

# --- status and reload (SIGHUP) ------------------------------------------------
# status_of KEY: one value from "ipmodctl --json status".
status_of() {
	"$IPMODCTL" -s "$WORKDIR/control.sock" --json status | json_field "$1"
}
wait_generation() {
	local i
	for i in $(seq 50); do
		[ "$(status_of generation 2>/dev/null)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
check "ipmodctl status answers" "$IPMODCTL" -s "$WORKDIR/control.sock" status
check_eq "status shows the tun" "$(status_of tun)" tun0
check "status counts the packets read" test "$(status_of rx-packets)" -ge 100
check_eq "status shows no write errors" "$(status_of write-errors)" 0
cp "$CONF" "$WORKDIR/ipmodd.conf.orig"
write_config "$CONF" 'rules = ( { name = "drop-udp"; proto = "udp"; dport = 7001; verdict = "drop"; } );'
kill -HUP "$IPMODD_PID"
check "SIGHUP loads the new file (generation 2)" wait_generation 2
check_eq "the reloaded chain has one rule" "$(status_of rules)" 1
for i in 1 2 3; do echo "x$i" | hx socat -u - "UDP4:$PEER4:7001"; done
sleep 0.2
check_eq "the reloaded drop rule drops the flow" "$(status_of dropped-rule)" 3
printf 'rules = (\n\t{ name = "bad"; set-ttl = 999; }\n);\n' >"$CONF"
kill -HUP "$IPMODD_PID"
sleep 0.5
check "a broken reload is logged with file:line" grep -q "ipmodd.conf:2:" "$WORKDIR/ipmodd.log"
check_eq "a broken reload keeps the running chain" "$(status_of generation) $(status_of rules)" "2 1"
check "the daemon still runs after a broken reload" kill -0 "$IPMODD_PID"
cp "$WORKDIR/ipmodd.conf.orig" "$CONF"

# --- orderly exit removes everything -----------------------------------------
stop_ipmodd TERM
check_eq "SIGTERM exits 0" "$?" 0
check_eq "nothing of ours is left after SIGTERM" "$(our_state)" ""
check "tun0 is gone" bash -c "! ip netns exec $HOST_NS ip link show tun0 >/dev/null 2>&1"
check "the peer is reachable without ipmodd" hx ping -c1 -W1 "$PEER4"

# --- systemd notification protocol -------------------------------------------
notify_listen "$WORKDIR/notify.sock" "$WORKDIR/notify.log"
IPMODD_ENV="NOTIFY_SOCKET=$WORKDIR/notify.sock WATCHDOG_USEC=400000"
check "ipmodd starts under a notify socket" start_ipmodd "$CONF"
IPMODD_ENV=""
sleep 1.5
check "READY=1 is sent with a STATUS= summary" grep -q 'READY=1|STATUS=Diverting IPv4+IPv6 via tun0' "$WORKDIR/notify.log"
check "WATCHDOG=1 keeps arriving while it runs" test "$(grep -c 'WATCHDOG=1' "$WORKDIR/notify.log")" -ge 3
kill -HUP "$IPMODD_PID"
sleep 0.3
check "a reload sends RELOADING=1 and READY=1 again" bash -c \
	"grep -q 'RELOADING=1' '$WORKDIR/notify.log' && [ \$(grep -c 'READY=1' '$WORKDIR/notify.log') -ge 2 ]"
stop_ipmodd TERM
check_eq "it exits 0" "$?" 0
check "STOPPING=1 is sent on SIGTERM" grep -q 'STOPPING=1' "$WORKDIR/notify.log"
check_eq "and nothing is left" "$(our_state)" ""

# --- crash: traffic falls back to main, restart, cleanup ----------------------
check "ipmodd starts again" start_ipmodd "$CONF"
kill -9 "$IPMODD_PID"; wait "$IPMODD_PID" 2>/dev/null; IPMODD_PID=""; tun_io_settle
check "after kill -9 the host still reaches the peer (IPv4)" hx ping -c1 -W1 "$PEER4"
check "after kill -9 the host still reaches the peer (IPv6)" hx ping -6 -c1 -W1 "$PEER6"
check "a restart after kill -9 succeeds" start_ipmodd "$CONF"
check_eq "after the restart there is exactly one set of entries" "$(our_state | sed 's/ *$//')" "$(printf '%s\n' \
	"$((PRIO - 1)):	from all iif tun0 lookup main" "$PRIO:	from all lookup $TABLE" \
	"$((PRIO - 1)):	from all iif tun0 lookup main" "$PRIO:	from all lookup $TABLE" \
	"default dev tun0 proto 73 scope link")
$(hx ip -6 route show table $TABLE | sed 's/ *$//')"
check "traffic flows after the restart" hx ping -c1 -W1 "$PEER4"
kill -9 "$IPMODD_PID"; wait "$IPMODD_PID" 2>/dev/null; IPMODD_PID=""; tun_io_settle
check "ipmodd --cleanup succeeds" hx "$IPMODD" --cleanup -c "$CONF"
check_eq "nothing is left after --cleanup" "$(our_state)" ""
check "a second --cleanup finds nothing and succeeds" hx "$IPMODD" --cleanup -c "$CONF"

# --- the shipped configuration, unchanged but for the control socket ---------
# Both families diverted (families = "auto": re-injection or force_forwarding),
# ping, ping -6, 2 MB each way of each family, traceroute, crash fallback,
# cleanup; global IPv6 forwarding never set.
sed "s|^\([[:space:]]*\)#*[[:space:]]*socket = \"[^\"]*\";|\1socket = \"$WORKDIR/control.sock\";|" \
	"$SRCDIR/etc/ipmodd.conf" >"$WORKDIR/shipped.conf"
# FASTPATH and REINJECT as for the other tests (valgrind runs set both off).
[ -n "${FASTPATH:-}" ] && sed -i "s|^fastpath = \"[a-z]*\";|fastpath = \"$FASTPATH\";|" "$WORKDIR/shipped.conf"
[ -n "${REINJECT:-}" ] && sed -i "s|reinject = \"[a-z]*\";|reinject = \"$REINJECT\";|" "$WORKDIR/shipped.conf"
check "the shipped config starts" start_ipmodd "$WORKDIR/shipped.conf"
check_eq "... and diverts both families" "$(status_of families)" "ipv4,ipv6"
diag "re-injection: $(status_of reinject)"
check "... ping and ping -6 the peer" bash -c \
	"ip netns exec $HOST_NS ping -c2 -i0.2 -W1 $PEER4 >/dev/null && ip netns exec $HOST_NS ping -6 -c2 -i0.2 -W1 $PEER6 >/dev/null"
for fam in 4 6; do
	for dir in up down; do
		if [ $fam = 4 ]; then p=$PEER4 h=$HOST4; else p="[$PEER6]" h="[$HOST6]"; fi
		rm -f "$WORKDIR/recv"
		if [ $dir = up ]; then
			ip netns exec "$PEER_NS" socat -u "TCP$fam-LISTEN:5002,reuseaddr" "OPEN:$WORKDIR/recv,creat" &
			srv=$!
			sleep 0.3
			hx timeout 20 socat -u "FILE:$WORKDIR/blob" "TCP$fam:$p:5002"
		else
			hx socat -u "TCP$fam-LISTEN:5002,reuseaddr" "OPEN:$WORKDIR/recv,creat" &
			srv=$!
			sleep 0.3
			ip netns exec "$PEER_NS" timeout 20 socat -u "FILE:$WORKDIR/blob" "TCP$fam:$h:5002"
		fi
		wait $srv
		check_eq "... 2 MB TCP over IPv$fam, $dir, byte-exact" \
			"$(sha256sum <"$WORKDIR/recv" | cut -d' ' -f1)" "$(sha256sum <"$WORKDIR/blob" | cut -d' ' -f1)"
	done
done
check "... traceroute reaches the peer in one hop" bash -c \
	"ip netns exec $HOST_NS traceroute -n -q1 -w1 -m3 $PEER4 2>/dev/null | grep -qE '^ 1  $PEER4 '"
check "... traceroute -6 reaches the peer in one hop" bash -c \
	"ip netns exec $HOST_NS traceroute -6 -n -q1 -w1 -m3 $PEER6 2>/dev/null | grep -qE '^ 1  $PEER6 '"
check_eq "... global IPv6 forwarding never set" \
	"$(hx cat /proc/sys/net/ipv6/conf/all/forwarding /proc/sys/net/ipv6/conf/default/forwarding | tr '\n' ' ')" "0 0 "
kill -9 "$IPMODD_PID"; wait "$IPMODD_PID" 2>/dev/null; IPMODD_PID=""; tun_io_settle
check "... after kill -9 the host still reaches the peer (IPv4, IPv6)" bash -c \
	"ip netns exec $HOST_NS ping -c1 -W1 $PEER4 >/dev/null && ip netns exec $HOST_NS ping -6 -c1 -W1 $PEER6 >/dev/null"
check "... ipmodd --cleanup succeeds" hx "$IPMODD" --cleanup -c "$WORKDIR/shipped.conf"
check_eq "... nothing is left" "$(our_state)" ""

done_testing
