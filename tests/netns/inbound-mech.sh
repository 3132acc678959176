#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The inbound diversion's mechanism (inbound.interfaces, ipmodd.conf(5)):
# with the host's veth end listed and no rule for inbound packets, received
# traffic goes through the daemon and on into the stack as if it had never
# left the uplink.  Ping and 2 MB of TCP each way per family, byte-exact;
# the daemon's inbound counter equals what the peer sent; ARP and neighbour
# discovery are not diverted (neighbour resolution works); a socket bound to
# the uplink (SO_BINDTODEVICE) receives; an nftables input rule on iifname
# counts the diverted packets; the host as a router forwards received
# traffic to a namespace behind it.  Failure handling: kill -9 with tcx
# links (failure = open): a running transfer goes on within a second;
# failure = closed (tc filters): received traffic is dropped after kill -9
# and flows again after "ipmodd --unblock"; a stopped daemon (SIGSTOP,
# stall-timeout 300 ms): closed drops, open passes.  A removed tc filter is
# put back by the watch.  --cleanup (also without CAP_SYS_ADMIN) leaves no
# filter; SIGTERM detaches all.  GRO super-packets arrive whole; two tun
# queues and two inbound interfaces work; the unit's capabilities suffice.
# Without CAP_BPF, without eBPF in the build, or with a missing interface
# the start is refused, saying why.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping socat sha256sum python3 nft tc setpriv
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
"$IPMODD" --version >/dev/null || skip_all "no ipmodd"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { hx "$IPMODCTL" -s "$SOCK" "$@"; }
INBOUND='inbound = { interfaces = [ "veth0" ]; };'
# The daemon's part of the mechanism: with the fast path the kernel would
# carry the inbound packets itself (tests/netns/fastpath-in.sh).
FASTPATH=off

write_config "$WORKDIR/in.conf" "$INBOUND"
# A probe start: a build without eBPF refuses inbound, which is all there is to test then.
if ! start_ipmodd "$WORKDIR/in.conf"; then
	if grep -q 'built without eBPF' "$WORKDIR/ipmodd.log"; then
		check "without eBPF the start is refused, saying so" grep -q 'inbound.interfaces is set' "$WORKDIR/ipmodd.log"
		done_testing
		exit
	fi
	echo "Bail out! ipmodd with inbound.interfaces does not start"
	exit 1
fi
# The loop reads the inbound tun a moment after the routing is up.
for i in $(seq 50); do
	[ "$(status_field inbound)" = veth0 ] && break
	sleep 0.1
done
check_eq "status: inbound interfaces" "$(status_field inbound)" veth0
check_eq "status: inbound tuns" "$(status_field inbound-tuns)" tun0i0
ATTACH=$(status_field inbound-attach)
check "status: attach mode tcx or tc ($ATTACH)" test "$ATTACH" = tcx -o "$ATTACH" = tc
check "the inbound tun is up" bash -c "ip netns exec '$HOST_NS' ip link show tun0i0 | grep -q ',UP'"
check "the summary names the inbound interface" bash -c \
	"ip netns exec '$HOST_NS' '$IPMODCTL' -s '$SOCK' status | grep -q 'inbound: veth0 through tun0i0'"

# ping_from NS FAMILY DST [COUNT]
ping_from() {
	ip netns exec "$1" ping "-$2" -c "${4:-3}" -i 0.2 -W 1 "$3" >/dev/null 2>&1
}

# --- the counters: exactly the echo requests, not ARP nor ND ----------------------
hx nft -f - <<'NFT'
table inet ipmodin {
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "veth0" icmp type echo-request counter
		iifname "veth0" icmpv6 type echo-request counter
		iifname "tun0i0" counter
	}
}
NFT
nft_counts() {
	hx nft list chain inet ipmodin input | sed -n 's/.*iifname "\([^"]*\)".*packets \([0-9]*\).*/\1 \2/p' |
		tr '\n' ' ' | sed 's/ $//'
}
for fam in 4 6; do
	if [ $fam = 4 ]; then dst=$HOST4; else dst=$HOST6; fi
	# Forget the neighbours on both sides: resolution has to go through.
	hx ip neigh flush dev veth0
	px ip neigh flush dev veth0
	rx0=$(status_field in-rx-packets)
	tx0=$(status_field in-tx-packets)
	passed0=$(status_field inbound-passed)
	check "IPv$fam: the peer pings the host (neighbours resolved anew)" ping_from "$PEER_NS" $fam "$dst" 5
	rx1=$(status_field in-rx-packets)
	tx1=$(status_field in-tx-packets)
	check_eq "IPv$fam: the daemon read the 5 echo requests, nothing else" $((rx1 - rx0)) 5
	check_eq "IPv$fam: and wrote the 5 back" $((tx1 - tx0)) 5
	check "IPv$fam: ARP / neighbour discovery went past the diversion (passed $(( $(status_field inbound-passed) - passed0 )))" \
		test "$(status_field inbound-passed)" -gt "$passed0"
	check "IPv$fam: the host resolved the peer" bash -c \
		"ip netns exec '$HOST_NS' ip neigh show dev veth0 | grep -v FAILED | grep -q ."
done
check_eq "nftables input: iifname veth0 counts the diverted echo requests, tun0i0 nothing" \
	"$(nft_counts)" "veth0 5 veth0 5 tun0i0 0"
hx nft delete table inet ipmodin
check "the host pings the peer" ping_from "$HOST_NS" 4 "$PEER4"
check "the host pings the peer over IPv6" ping_from "$HOST_NS" 6 "$PEER6"

# --- TCP, both ways, both families ----------------------------------------------
head -c 2000000 /dev/urandom >"$WORKDIR/blob"
BLOB_SUM=$(sha256sum <"$WORKDIR/blob" | cut -d' ' -f1)
# transfer FAMILY up|down: host -> peer (up) or peer -> host (down), sha256 of what arrived.
transfer() {
	local fam=$1 dir=$2 rx=$WORKDIR/rx srv dst sns cns
	rm -f "$rx"
	if [ "$dir" = up ]; then
		sns=$PEER_NS cns=$HOST_NS
		if [ "$fam" = 4 ]; then dst=$PEER4; else dst="[$PEER6]"; fi
	else
		sns=$HOST_NS cns=$PEER_NS
		if [ "$fam" = 4 ]; then dst=$HOST4; else dst="[$HOST6]"; fi
	fi
	ip netns exec "$sns" timeout 30 socat -u "TCP$fam-LISTEN:5201,reuseaddr" "OPEN:$rx,creat" &
	srv=$!
	sleep 0.3
	ip netns exec "$cns" timeout 20 socat -u "FILE:$WORKDIR/blob" "TCP$fam:$dst:5201"
	wait "$srv"
	sha256sum <"$rx" 2>/dev/null | cut -d' ' -f1
}
for fam in 4 6; do
	rx0=$(status_field in-rx-bytes)
	p0=$(status_field in-rx-packets)
	g0=$(status_field gso-whole)
	w0=$(hx cat /sys/class/net/tun0i0/statistics/tx_packets)
	check_eq "2 MB TCP over IPv$fam peer -> host arrives byte-exact" "$(transfer $fam down)" "$BLOB_SUM"
	rx1=$(status_field in-rx-bytes)
	p1=$(status_field in-rx-packets)
	g1=$(status_field gso-whole)
	w1=$(hx cat /sys/class/net/tun0i0/statistics/tx_packets)
	check "... through the daemon ($((rx1 - rx0)) bytes read inbound)" test $((rx1 - rx0)) -ge 2000000
	# GRO ran before tc ingress: the inbound tun hands over super-packets whole.
	check "... in $((w1 - w0)) reads of $((p1 - p0)) segments, $((g1 - g0)) super-packets run whole" \
		test $((w1 - w0)) -lt $((p1 - p0)) -a $((g1 - g0)) -gt 0
	check_eq "2 MB TCP over IPv$fam host -> peer arrives byte-exact" "$(transfer $fam up)" "$BLOB_SUM"
done

# --- a socket bound to the uplink --------------------------------------------------
cat >"$WORKDIR/bound.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"veth0")
s.bind(("0.0.0.0", 5300))
s.settimeout(5)
print("ready", flush=True)
data, _ = s.recvfrom(100)
print(data.decode())
PY
rx0=$(status_field in-rx-packets)
ip netns exec "$HOST_NS" python3 "$WORKDIR/bound.py" >"$WORKDIR/bound.out" 2>&1 &
bpid=$!
for i in $(seq 50); do grep -q ready "$WORKDIR/bound.out" && break; sleep 0.1; done
px bash -c "echo bound-hello | socat -u - UDP4:$HOST4:5300"
wait "$bpid"
check "a socket bound to veth0 (SO_BINDTODEVICE) receives the datagram" grep -q bound-hello "$WORKDIR/bound.out"
check "... which the daemon read" test "$(status_field in-rx-packets)" -gt "$rx0"

# --- the host as a router -----------------------------------------------------------
LAN_NS="${HOST_NS%-h}-l"
trap 'cleanup; ip netns del "$LAN_NS" 2>/dev/null' EXIT
setup_lan
rx0=$(status_field in-rx-packets)
ok=0
for i in $(seq 20); do
	ping_from "$PEER_NS" 4 198.18.3.2 1 && ping_from "$PEER_NS" 6 2001:db8:3::2 1 && { ok=1; break; }
	sleep 0.1
done
check "router: the peer reaches the LAN behind the host, v4 and v6" test $ok = 1
check "router: ... its packets went through the daemon" test "$(status_field in-rx-packets)" -gt "$rx0"
hx sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0

# --- two tun queues (workers on the tun, the inbound tun on the loop) --------------------
stop_ipmodd
write_config "$WORKDIR/mq.conf" "$INBOUND"
sed -i 's/tun = {/tun = { queues = 2;/' "$WORKDIR/mq.conf"
if start_ipmodd "$WORKDIR/mq.conf"; then
	for i in $(seq 50); do [ "$(status_field inbound)" = veth0 ] && break; sleep 0.1; done
	rx0=$(status_field in-rx-packets)
	check "tun.queues = 2: the peer pings the host" ping_from "$PEER_NS" 4 "$HOST4" 5
	check_eq "... the daemon read the 5 echo requests" $(( $(status_field in-rx-packets) - rx0 )) 5
	check_eq "... 2 MB TCP over IPv4 peer -> host arrives byte-exact" "$(transfer 4 down)" "$BLOB_SUM"
	check_eq "... 2 MB TCP over IPv6 host -> peer arrives byte-exact" "$(transfer 6 up)" "$BLOB_SUM"
	stop_ipmodd
else
	not_ok "tun.queues = 2 with inbound: ipmodd starts"
fi
start_ipmodd "$WORKDIR/in.conf" || { echo "Bail out! ipmodd does not start again"; exit 1; }
for i in $(seq 50); do [ "$(status_field inbound)" = veth0 ] && break; sleep 0.1; done

# --- kill -9 during a transfer (failure = open) ------------------------------------
# A sender that writes 16 KiB every 20 ms for 3 s; the receiver notes the
# longest pause between arrivals.
cat >"$WORKDIR/recv.py" <<'PY'
import socket, sys, time
fam = socket.AF_INET if ":" not in sys.argv[1] else socket.AF_INET6
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5400))
s.listen(1)
s.settimeout(10)
print("ready", flush=True)
c, _ = s.accept()
c.settimeout(10)
total, last, gap = 0, None, 0.0
while True:
    d = c.recv(65536)
    if not d:
        break
    now = time.monotonic()
    if last is not None:
        gap = max(gap, now - last)
    last = now
    total += len(d)
print(total, "%.3f" % gap)
PY
cat >"$WORKDIR/send.py" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 5400), timeout=10)
buf = b"x" * 16384
end = time.monotonic() + 3
n = 0
while time.monotonic() < end:
    s.sendall(buf)
    n += len(buf)
    time.sleep(0.02)
s.close()
print(n)
PY
ip netns exec "$HOST_NS" python3 "$WORKDIR/recv.py" "$HOST4" >"$WORKDIR/recv.out" 2>&1 &
rpid=$!
for i in $(seq 50); do grep -q ready "$WORKDIR/recv.out" && break; sleep 0.1; done
ip netns exec "$PEER_NS" python3 "$WORKDIR/send.py" "$HOST4" >"$WORKDIR/send.out" 2>&1 &
spid=$!
sleep 1
kill -9 "$IPMODD_PID"
wait "$IPMODD_PID" 2>/dev/null
IPMODD_PID=""
wait "$spid"
wait "$rpid"
sent=$(cat "$WORKDIR/send.out")
tail -1 "$WORKDIR/recv.out" > "$WORKDIR/recv.last"
read -r got gap < "$WORKDIR/recv.last"
check_eq "kill -9 ($ATTACH): the transfer peer -> host completes" "$got" "$sent"
check "... without a pause of a second or more (longest ${gap:-?} s)" \
	python3 -c "import sys; sys.exit(0 if float('${gap:-9}') < 1.0 else 1)"
if [ "$ATTACH" = tcx ]; then
	check "... the tcx links went with the daemon: ping from the peer" ping_from "$PEER_NS" 4 "$HOST4"
fi
check "the inbound tun went with the daemon" bash -c "! ip netns exec '$HOST_NS' ip link show tun0i0 2>/dev/null"
check "ipmodd --cleanup after kill -9" hx "$IPMODD" -c "$WORKDIR/in.conf" --cleanup
check_eq "... no tc ingress filter left on veth0" "$(hx tc filter show dev veth0 ingress)" ""

# --- failure = closed: tc filters, which outlive the daemon --------------------------
write_config "$WORKDIR/closed.conf" "$INBOUND"
sed -i 's/routing = {/routing = { failure = "closed"; stall-timeout = 300;/' "$WORKDIR/closed.conf"
if start_ipmodd "$WORKDIR/closed.conf"; then
	for i in $(seq 50); do [ -n "$(status_field inbound-attach)" ] && [ "$(status_field inbound-attach)" != none ] && break; sleep 0.1; done
	check_eq "failure = closed: tc filters" "$(status_field inbound-attach)" tc
	check "... the filter is on veth0's ingress" bash -c \
		"ip netns exec '$HOST_NS' tc filter show dev veth0 ingress | grep -q 'divert'"
	check "... the peer pings the host through it" ping_from "$PEER_NS" 4 "$HOST4"

	# Someone removes the filter: the watch puts it back.
	rep0=$(status_field inbound-repairs)
	hx tc filter del dev veth0 ingress
	for i in $(seq 30); do
		hx tc filter show dev veth0 ingress | grep -q divert && break
		sleep 0.1
	done
	check "a removed inbound tc filter is put back" bash -c \
		"ip netns exec '$HOST_NS' tc filter show dev veth0 ingress | grep -q 'divert'"
	check_eq "... and counted (inbound-repairs)" "$(status_field inbound-repairs)" $((rep0 + 1))
	check "... traffic flows through it again" ping_from "$PEER_NS" 4 "$HOST4"

	# What reaches the host's input from veth0: the replies would be blocked
	# too (the tun is not read, or the closed block), so the drop is seen there.
	hx nft -f - <<'NFT'
table inet ipmodin {
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "veth0" icmp type echo-request counter
	}
}
NFT
	input_echoes() {
		hx nft list chain inet ipmodin input | sed -n 's/.*packets \([0-9]*\).*/\1/p'
	}
	e0=$(input_echoes)
	ping_from "$PEER_NS" 4 "$HOST4"
	check_eq "... nftables input sees the 3 echo requests" $(( $(input_echoes) - e0 )) 3

	# A stopped daemon: after the stall timeout the filter drops.
	kill -STOP "$IPMODD_PID"
	sleep 0.6
	e0=$(input_echoes)
	check "SIGSTOP, failure = closed: ping fails" bash -c \
		"! ip netns exec '$PEER_NS' ping -c 3 -i 0.2 -W 1 '$HOST4' >/dev/null 2>&1"
	check_eq "... the echo requests never reached the host's input" $(( $(input_echoes) - e0 )) 0
	kill -CONT "$IPMODD_PID"
	ok=0
	for i in $(seq 20); do ping_from "$PEER_NS" 4 "$HOST4" 1 && { ok=1; break; }; sleep 0.1; done
	check "SIGCONT: they flow again" test $ok = 1

	kill -9 "$IPMODD_PID"
	wait "$IPMODD_PID" 2>/dev/null
	IPMODD_PID=""
	check "kill -9, failure = closed: the filter stays" bash -c \
		"ip netns exec '$HOST_NS' tc filter show dev veth0 ingress | grep -q 'divert'"
	e0=$(input_echoes)
	check "... and drops what the peer sends (ping fails)" bash -c \
		"! ip netns exec '$PEER_NS' ping -c 2 -i 0.2 -W 1 '$HOST4' >/dev/null 2>&1"
	check_eq "... the echo requests never reached the host's input" $(( $(input_echoes) - e0 )) 0
	# A new start over the leftover filter replaces it (BPF_TC_F_REPLACE).
	if start_ipmodd "$WORKDIR/closed.conf"; then
		ok=0
		for i in $(seq 30); do ping_from "$PEER_NS" 4 "$HOST4" 1 && { ok=1; break; }; sleep 0.1; done
		check "a new start replaces the leftover filter: the peer pings the host" test $ok = 1
		check_eq "... one filter on veth0's ingress" \
			"$(hx tc filter show dev veth0 ingress | grep -c 'divert')" 1
		kill -9 "$IPMODD_PID"
		wait "$IPMODD_PID" 2>/dev/null
		IPMODD_PID=""
	else
		not_ok "failure = closed: ipmodd starts over the leftover filter"
	fi
	# As the unit's ExecStopPost= runs it: CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW only.
	check "ipmodd --unblock without CAP_SYS_ADMIN (as the unit runs it)" \
		hx setpriv --bounding-set=-all,+net_admin,+bpf,+net_raw --inh-caps=-all -- \
		"$IPMODD" -c "$WORKDIR/closed.conf" --unblock
	check_eq "... no tc ingress filter left on veth0" "$(hx tc filter show dev veth0 ingress)" ""
	check "... and nothing of ours in bpftool net" bash -c \
		"! ip netns exec '$HOST_NS' bpftool net 2>/dev/null | grep -Eq 'divert|reinject_in'"
	check "... the peer pings the host again" ping_from "$PEER_NS" 4 "$HOST4"
	hx nft delete table inet ipmodin
else
	not_ok "failure = closed: ipmodd starts"
fi

# --- failure = open with a stall timeout: a stopped daemon lets traffic pass ------------
write_config "$WORKDIR/open.conf" "$INBOUND"
sed -i 's/routing = {/routing = { stall-timeout = 300;/' "$WORKDIR/open.conf"
if start_ipmodd "$WORKDIR/open.conf"; then
	for i in $(seq 50); do [ "$(status_field inbound)" = veth0 ] && break; sleep 0.1; done
	kill -STOP "$IPMODD_PID"
	sleep 0.6
	check "SIGSTOP, failure = open: received packets pass" ping_from "$PEER_NS" 4 "$HOST4"
	kill -CONT "$IPMODD_PID"
	sleep 0.3
	fo=$(status_field inbound-failed-open)
	check "... counted as failed open ($fo)" test "${fo:-0}" -ge 3
	stop_ipmodd
	check "SIGTERM: the inbound tun is gone" bash -c "! ip netns exec '$HOST_NS' ip link show tun0i0 2>/dev/null"
	check_eq "... no tc ingress filter on veth0" "$(hx tc filter show dev veth0 ingress)" ""
	check "... the peer pings the host" ping_from "$PEER_NS" 4 "$HOST4"
else
	not_ok "failure = open, stall-timeout 300: ipmodd starts"
fi

# --- the unit's capabilities only (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW) ---------------
ip netns exec "$HOST_NS" setpriv --bounding-set=-all,+net_admin,+bpf,+net_raw --inh-caps=-all -- \
	"$IPMODD" -c "$WORKDIR/in.conf" >>"$WORKDIR/unitcaps.log" 2>&1 &
IPMODD_PID=$!
# Up to 60 s: loading the programs is slow in a TCG guest (tests/vm).
for i in $(seq 600); do [ "$(status_field inbound 2>/dev/null)" = veth0 ] && break; sleep 0.1; done
[ "$(status_field inbound 2>/dev/null)" = veth0 ] || diag "not up: $(tail -5 "$WORKDIR/unitcaps.log")"
rx0=$(status_field in-rx-packets)
check "with the unit's capabilities only: the peer pings the host" ping_from "$PEER_NS" 4 "$HOST4" 3
check_eq "... through the daemon" $(( $(status_field in-rx-packets) - rx0 )) 3
stop_ipmodd

# --- without CAP_BPF: refused, saying why -------------------------------------------
rc=$(capped_exit "$WORKDIR/in.conf")
check "without CAP_BPF the start is refused (exit $rc)" test "$rc" != 0
check "... naming the inbound interface and CAP_BPF" grep -q 'inbound.interfaces: veth0: .*CAP_BPF' "$WORKDIR/capped.log"
grep -q 'inbound.interfaces: veth0: .*CAP_BPF' "$WORKDIR/capped.log" || diag "capped.log: $(tail -5 "$WORKDIR/capped.log")"
check_eq "... leaving no filter behind" "$(hx tc filter show dev veth0 ingress)" ""
check "... and no inbound tun" bash -c "! ip netns exec '$HOST_NS' ip link show tun0i0 2>/dev/null"

# --- two interfaces: a second peer behind up1 -------------------------------------------
P2_NS="${HOST_NS%-h}-q"
trap 'cleanup; ip netns del "$LAN_NS" 2>/dev/null; ip netns del "$P2_NS" 2>/dev/null' EXIT
side_ns "$P2_NS" up1 "second peer"
hx ip addr add 198.18.4.1/24 dev up1
hx ip addr add 2001:db8:4::1/64 dev up1 nodad
ip netns exec "$P2_NS" ip addr add 198.18.4.2/24 dev up1
ip netns exec "$P2_NS" ip addr add 2001:db8:4::2/64 dev up1 nodad
hx ip link set up1 up
ip netns exec "$P2_NS" ip link set up1 up
write_config "$WORKDIR/two.conf" 'inbound = { interfaces = [ "veth0", "up1" ]; };'
if start_ipmodd "$WORKDIR/two.conf"; then
	for i in $(seq 50); do [ "$(status_field inbound)" = veth0,up1 ] && break; sleep 0.1; done
	check_eq "two interfaces: status inbound" "$(status_field inbound)" veth0,up1
	check_eq "... their tuns" "$(status_field inbound-tuns)" tun0i0,tun0i1
	rx0=$(status_field in-rx-packets)
	check "... the first peer pings the host" ping_from "$PEER_NS" 4 "$HOST4" 3
	ok=0
	for i in $(seq 20); do ping_from "$P2_NS" 6 2001:db8:4::1 3 && { ok=1; break; }; sleep 0.1; done
	check "... the second peer pings the host over IPv6" test $ok = 1
	check "... the daemon read both ($(( $(status_field in-rx-packets) - rx0 )) echo requests)" \
		test $(( $(status_field in-rx-packets) - rx0 )) -ge 6
	check "... the second tun carried its part" \
		test "$(hx cat /sys/class/net/tun0i1/statistics/tx_packets)" -ge 3
	stop_ipmodd
else
	not_ok "two inbound interfaces: ipmodd starts"
fi

# --- an interface that is not there: refused before anything is touched -------------------
write_config "$WORKDIR/nosuch.conf" 'inbound = { interfaces = [ "nosuch0" ]; };'
hx "$IPMODD" -c "$WORKDIR/nosuch.conf" >"$WORKDIR/nosuch.log" 2>&1
rc=$?
check "an inbound interface that does not exist: refused (exit $rc)" test "$rc" != 0
check "... naming it" grep -q 'inbound.interfaces: no interface nosuch0' "$WORKDIR/nosuch.log"
check "... before the tun was created" bash -c "! grep -q 'offload' '$WORKDIR/nosuch.log'"

done_testing
