#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Hosts as they are shipped (DESIGN.md 6), with the shipped configuration:
# (a) a strict reverse-path filter (all and the uplink at 1, RHEL's default):
#     ipmodd makes it loose while it runs, traffic flows both ways in both
#     families with the TTL rewritten on the wire, and every sysctl, rule and
#     route is as before once it stops, after kill -9 too; rp-filter = "keep"
#     refuses to start; the same with all = 2 (systemd's default), which
#     drops every written-back packet on the tun;
# (b) a forward policy that drops (an nftables forward chain with policy
#     drop; iptables-nft -P FORWARD DROP as Docker leaves it), on the
#     forwarding path (no CAP_BPF): the self-check refuses to start, names
#     the hook and the fix, and leaves the host as it was; with
#     self-check = false the host is cut off, which is what the check
#     prevents; without CAP_NET_RAW (no AF_PACKET socket) it warns that it
#     cannot check; a gateway that does not answer ARP/ND is reported as
#     such, not as a firewall, and does not stop the start;
# (c) both at once, with every privilege: the BPF re-injection carries the
#     host's traffic through the dropping forward chains under a strict
#     rp_filter, both ways, both families, TTL rewritten on the wire; where
#     the kernel or the build has no re-injection, the self-check refuses.
# Every sysctl and firewall rule is set inside the test's namespaces.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping tcpdump tshark sysctl nft iptables-nft ip6tables-nft setpriv
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }
# A way out for the self-check: the peer is the default gateway.
hx ip route add default via "$PEER4"
hx ip -6 route add default via "$PEER6"
LOG=$WORKDIR/ipmodd.log
CAPLOG=$WORKDIR/capped.log
TTL=33

# shipped_config FILE [SED-EXPRESSION...]: etc/ipmodd.conf with the test's
# control socket and a set-ttl rule, edited further by the expressions.
shipped_config() {
	local f=$1 e args=()
	shift
	for e in "$@"; do
		args+=(-e "$e")
	done
	sed -e "s|^control = {|control = {\n\tsocket = \"$WORKDIR/control.sock\";|" \
		-e "s|^rules = (|rules = ( { name = \"ttl\"; set-ttl = $TTL; }|" \
		"${args[@]}" "$SRCDIR/etc/ipmodd.conf" >"$f"
}

# Until IPv6 duplicate address detection is over: link-local routes come with its end.
settle() {
	local i
	for i in $(seq 50); do
		[ -z "$(hx ip -6 addr show tentative)" ] && return 0
		sleep 0.1
	done
	return 1
}
# Every IPv4/IPv6 devconf value, the rules and the main routes of the host namespace.
snapshot() {
	hx sysctl -a 2>/dev/null | grep -E '^net\.ipv(4|6)\.conf\.' | grep -v '\.tun0\.' | sort
	hx ip -4 rule show
	hx ip -6 rule show
	hx ip -4 route show table all | grep -v 'dev tun0'
	hx ip -6 route show table all | grep -v 'dev tun0'
}
same_as_before() {
	local now
	now=$(snapshot)
	[ "$now" = "$BEFORE" ] && return 0
	diff <(echo "$BEFORE") <(echo "$now") | head -20 >&2
	return 1
}
# probes_on_wire PCAP: the self-check's probes reached the gateway with TTL 1,
# and the rule chain (set-ttl) never saw them.
probes_on_wire() {
	check "the IPv4 probe arrived with TTL 1" test \
		"$(pcap_count "$1" "udp.dstport == 33434 && ip.ttl == 1 && !icmp")" -ge 1
	check "the IPv6 probe arrived with hop limit 1" test \
		"$(pcap_count "$1" "udp.dstport == 33434 && ipv6.hlim == 1 && !icmpv6")" -ge 1
	check_eq "the rule chain did not count them (ttl would be $TTL)" \
		"$(pcap_count "$1" "udp.dstport == 33434 && !icmp && !icmpv6 && (ip.ttl == $TTL || ipv6.hlim == $TTL)")" 0
}
rpf() { hx cat "/proc/sys/net/ipv4/conf/$1/rp_filter"; }
# reach NS ADDR...: one ping to each address from NS answered.
reach() {
	local ns=$1 a
	shift
	for a in "$@"; do
		ip netns exec "$ns" ping -c1 -W1 "$a" >/dev/null 2>&1 || return 1
	done
}
# cut_off NS ADDR...: no ping from NS to any of the addresses answered.
cut_off() {
	local ns=$1 a
	shift
	for a in "$@"; do
		ip netns exec "$ns" ping -c1 -W1 "$a" >/dev/null 2>&1 && return 1
	done
	return 0
}
# ready LOG: wait (2 s at most) until the daemon said it diverts, after its
# self-check: start_ipmodd returns once the routes are there, before that.
ready() {
	local i
	for i in $(seq 40); do
		grep -q 'diverting IPv4' "$1" && return 0
		sleep 0.05
	done
	return 1
}
# run_refused CONF: ipmodd in the foreground (bounded), its exit status.
run_refused() {
	: >"$WORKDIR/refused.log"
	ip netns exec "$HOST_NS" timeout 20 "$@" >"$WORKDIR/refused.log" 2>&1
}

# --- (a) strict reverse-path filter ------------------------------------------
test_strict_rp_filter() {
	local rc t

	hx sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.veth0.rp_filter=1
	BEFORE=$(snapshot)
	check_eq "the host namespace is strict (all 1, veth0 1)" "$(rpf all) $(rpf veth0)" "1 1"
	shipped_config "$WORKDIR/loose.conf"

	pcap_start wire "$PEER_NS" veth0 icmp or icmp6 or udp port 33434
	check "ipmodd starts with the shipped config and strict rp_filter" \
		start_ipmodd "$WORKDIR/loose.conf"
	ready "$LOG"
	check_eq "veth0 is loose, all 0, while it runs" "$(rpf all) $(rpf veth0)" "0 2"
	check "it says so, once for veth0" test "$(grep -c 'rp_filter: veth0 strict -> loose while ipmodd runs' "$LOG")" -eq 1
	check "and once for all" test "$(grep -c 'rp_filter: all 1 -> 0 while ipmodd runs' "$LOG")" -eq 1
	check "the old values are in the state file" grep -qx '2 veth0 1' "$WORKDIR/tun0.rp_filter"
	check "the host reaches the peer (IPv4, IPv6)" reach "$HOST_NS" "$PEER4" "$PEER6"
	check "the peer reaches the host (IPv4, IPv6)" reach "$PEER_NS" "$HOST4" "$HOST6"
	pcap_stop wire
	check "TTL $TTL on the wire: host's echo request and reply (IPv4)" test \
		"$(pcap_count "$WORKDIR/wire.pcap" "ip.src == $HOST4 && ip.ttl == $TTL && (icmp.type == 8 || icmp.type == 0)")" -ge 2
	check "hop limit $TTL on the wire: host's echo request and reply (IPv6)" test \
		"$(pcap_count "$WORKDIR/wire.pcap" "ipv6.src == $HOST6 && ipv6.hlim == $TTL && (icmpv6.type == 128 || icmpv6.type == 129)")" -ge 2
	check_eq "no echo of the host's left with another TTL (IPv4)" \
		"$(pcap_count "$WORKDIR/wire.pcap" "ip.src == $HOST4 && (icmp.type == 8 || icmp.type == 0) && ip.ttl != $TTL")" 0
	if grep -q 're-injection program on its ingress' "$LOG"; then
		check_eq "re-injection sends the written-back packets: no self-check probe" \
			"$(pcap_count "$WORKDIR/wire.pcap" "udp.dstport == 33434")" 0
	else
		probes_on_wire "$WORKDIR/wire.pcap"
	fi

	# A strict link that appears later, and veth0 made strict again.
	hx ip link add hst0 type veth peer name hst1
	hx sysctl -qw net.ipv4.conf.hst0.rp_filter=1 net.ipv4.conf.veth0.rp_filter=1
	for t in $(seq 40); do
		[ "$(rpf hst0) $(rpf veth0)" = "2 2" ] && break
		sleep 0.05
	done
	check_eq "a new strict link and veth0 made strict again are loose within 2 s" \
		"$(rpf hst0) $(rpf veth0)" "2 2"
	check "the new link is logged once" test "$(grep -c 'rp_filter: hst0 strict -> loose' "$LOG")" -eq 1
	check "the peer still reaches the host (IPv4)" reach "$PEER_NS" "$HOST4"

	stop_ipmodd TERM
	check_eq "SIGTERM exits 0" "$?" 0
	check_eq "the new link is strict again" "$(rpf hst0)" 1
	hx ip link del hst0
	check "every sysctl, rule and route is as before" same_as_before
	check "the state file is gone" test ! -e "$WORKDIR/tun0.rp_filter"

	# rp-filter = "keep" refuses, naming the interface and the fix.
	shipped_config "$WORKDIR/keep.conf" 's|rp-filter = "loose"|rp-filter = "keep"|'
	run_refused "$IPMODD" -c "$WORKDIR/keep.conf"
	rc=$?
	check_eq "rp-filter = \"keep\" with a strict veth0: exit 1" "$rc" 1
	check "the message names veth0 and both fixes" grep -q \
		'rp_filter: veth0 is strict (net.ipv4.conf.veth0.rp_filter=1, all=1).*set routing.rp-filter = "loose", or net.ipv4.conf.veth0.rp_filter=2' \
		"$WORKDIR/refused.log"
	diag "$(grep -o 'rp_filter: veth0 is strict.*' "$WORKDIR/refused.log")"
	check "nothing changed" same_as_before

	# kill -9: the next "ipmodd --cleanup" (ExecStopPost=) puts the values back.
	check "ipmodd starts again" start_ipmodd "$WORKDIR/loose.conf"
	kill -9 "$IPMODD_PID"
	wait "$IPMODD_PID" 2>/dev/null
	IPMODD_PID=""
	check_eq "after kill -9 veth0 and all are still as ipmodd left them" "$(rpf all) $(rpf veth0)" "0 2"
	check "ipmodd --cleanup" hx "$IPMODD" -c "$WORKDIR/loose.conf" --cleanup
	check "every sysctl, rule and route is as before" same_as_before
	# ... and so does the next start.
	check "ipmodd starts again" start_ipmodd "$WORKDIR/loose.conf"
	kill -9 "$IPMODD_PID"
	wait "$IPMODD_PID" 2>/dev/null
	IPMODD_PID=""
	check "and after another kill -9, a start" start_ipmodd "$WORKDIR/loose.conf"
	check "... which takes the values from before the crash (state file: veth0 1)" \
		grep -qx '2 veth0 1' "$WORKDIR/tun0.rp_filter"
	check "the peer reaches the host (IPv4)" reach "$PEER_NS" "$HOST4"
	stop_ipmodd TERM
	check "and a stop: every sysctl, rule and route is as before" same_as_before
	hx sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.veth0.rp_filter=0
}

# --- (a') all = 2, systemd's default: loose everywhere, and the tun too -------
# Loose mode on the tun drops every written-back packet as well (its source
# is local, the tun has no address): "all" must go to 0, veth0 keeps loose.
test_loose_all() {
	local rc

	hx sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.veth0.rp_filter=0
	BEFORE=$(snapshot)
	shipped_config "$WORKDIR/keep.conf" 's|rp-filter = "loose"|rp-filter = "keep"|'
	run_refused "$IPMODD" -c "$WORKDIR/keep.conf"
	rc=$?
	check_eq "all = 2, rp-filter = \"keep\": exit 1" "$rc" 1
	check "the message names all and the fix" grep -q \
		'rp_filter: net.ipv4.conf.all.rp_filter=2: packets written back to tun0.*set routing.rp-filter = "loose", or all=0' \
		"$WORKDIR/refused.log"
	check "nothing changed" same_as_before
	: >"$LOG"
	check "all = 2, rp-filter = \"loose\": ipmodd starts" start_ipmodd "$WORKDIR/loose.conf"
	ready "$LOG"
	check_eq "all is 0 and veth0 loose of its own" "$(rpf all) $(rpf veth0)" "0 2"
	check "it says veth0 keeps loose mode" grep -q 'rp_filter: veth0 keeps loose mode' "$LOG"
	check "the host reaches the peer (IPv4, IPv6)" reach "$HOST_NS" "$PEER4" "$PEER6"
	check "the peer reaches the host (IPv4, IPv6)" reach "$PEER_NS" "$HOST4" "$HOST6"
	stop_ipmodd TERM
	check_eq "SIGTERM exits 0" "$?" 0
	check "every sysctl, rule and route is as before" same_as_before
	hx sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.veth0.rp_filter=0
}

# --- (b) a forward policy that drops, on the forwarding path ------------------
# ipmodd in the foreground without CAP_BPF (as fastpath.sh does): packets are
# written back through forwarding whatever the build or the kernel offers.
start_capped_ready() {
	: >"$CAPLOG"
	start_capped "$1" "$CAPLOG" || return 1
	wait_routing "$IPMODD_PID" rule_up_ready
}
rule_up_ready() { rule_up 6 && ready "$CAPLOG"; }

# refused WHAT FAMILY TOOL: the self-check refused, named the hook and the fix, left nothing.
refused() {
	local what=$1 fam=$2 tool=$3 rc=$4 lines
	check_eq "$what: ipmodd refuses to start (exit 1)" "$rc" 1
	check "... the message names $fam, the FORWARD hook and the fix" grep -q \
		"self-check ($fam): packets written back to tun0 do not leave the host.*the FORWARD hook of netfilter drops them.*nft insert rule inet filter forward iifname \"tun0\" accept, or $tool -I FORWARD -i tun0 -j ACCEPT" \
		"$WORKDIR/refused.log"
	mapfile -t lines < <(grep -o 'self-check.*' "$WORKDIR/refused.log" | cut -c1-200)
	diag "${lines[@]}"
	check "... it did not report ready" bash -c "! grep -q 'diverting IPv4' '$WORKDIR/refused.log'"
	check "... every sysctl, rule and route is as before" same_as_before
	check "... the host reaches the peer (IPv4, IPv6)" reach "$HOST_NS" "$PEER4" "$PEER6"
}

test_forward_drop() {
	local rc i lines

	shipped_config "$WORKDIR/fwd.conf"
	shipped_config "$WORKDIR/nocheck.conf" 's|self-check = true|self-check = false|'
	BEFORE=$(snapshot)

	# Without a firewall the check passes: the probe is seen leaving.
	pcap_start probe "$PEER_NS" veth0 udp port 33434
	check "no firewall: ipmodd starts without CAP_BPF" start_capped_ready "$WORKDIR/fwd.conf"
	check "... the self-check saw both probes leave through veth0" test \
		"$(grep -c 'self-check (IPv[46]): a packet written back to tun0 left through veth0' "$CAPLOG")" -eq 2
	mapfile -t lines < <(grep -o 'self-check.*' "$CAPLOG" | cut -c1-200)
	diag "${lines[@]}"
	check "... the host reaches the peer (IPv4, IPv6)" reach "$HOST_NS" "$PEER4" "$PEER6"
	pcap_stop probe
	probes_on_wire "$WORKDIR/probe.pcap"
	stop_ipmodd TERM

	hx nft add table inet filter
	hx nft add chain inet filter forward '{ type filter hook forward priority 0; policy drop; }'
	BEFORE=$(snapshot)
	run_refused setpriv --bounding-set=-bpf,-sys_admin,-perfmon --inh-caps=-all -- \
		"$IPMODD" -c "$WORKDIR/fwd.conf"
	rc=$?
	refused "nftables forward chain with policy drop" IPv4 iptables "$rc"

	# failure = "closed": the block stays (nothing unmodified leaks) until --unblock.
	shipped_config "$WORKDIR/closed.conf" 's|failure = "open"|failure = "closed"|'
	run_refused setpriv --bounding-set=-bpf,-sys_admin,-perfmon --inh-caps=-all -- \
		"$IPMODD" -c "$WORKDIR/closed.conf"
	rc=$?
	check_eq "failure = \"closed\": refused too (exit 1)" "$rc" 1
	check "... the block stays (diversion rule, unreachable route)" bash -c \
		"ip netns exec '$HOST_NS' ip -4 rule show | grep -qE '^$PRIO:.*lookup $TABLE' &&
		 ip netns exec '$HOST_NS' ip -4 route show table $TABLE | grep -q '^unreachable default'"
	check "... ipmodd --unblock removes it" hx "$IPMODD" -c "$WORKDIR/closed.conf" --unblock
	check "... then every sysctl, rule and route is as before" same_as_before

	# Proof that the check is what protects: without it the host is cut off.
	check "self-check = false: ipmodd starts" start_capped_ready "$WORKDIR/nocheck.conf"
	check "... and says the check is off" grep -q 'self-check off' "$CAPLOG"
	check "... the host is cut off (IPv4, IPv6)" cut_off "$HOST_NS" "$PEER4" "$PEER6"
	stop_ipmodd TERM
	check "... after the stop it reaches the peer again" reach "$HOST_NS" "$PEER4" "$PEER6"
	# Without CAP_NET_RAW there is no AF_PACKET socket: no check, and a warning.
	: >"$CAPLOG"
	ip netns exec "$HOST_NS" setpriv --bounding-set=-bpf,-sys_admin,-perfmon,-net_raw \
		--inh-caps=-all -- "$IPMODD" -c "$WORKDIR/fwd.conf" >>"$CAPLOG" 2>&1 &
	IPMODD_PID=$!
	wait_routing "$IPMODD_PID" rule_up 6
	ready "$CAPLOG"
	check "without CAP_NET_RAW: no check, a warning saying why" grep -q \
		'self-check not possible, packets written back to tun0 are not checked: open an AF_PACKET socket: Operation not permitted' \
		"$CAPLOG"
	stop_ipmodd TERM
	hx nft delete table inet filter

	# Docker's iptables FORWARD DROP (iptables-nft), IPv4 only, then IPv6 only.
	hx iptables-nft -P FORWARD DROP
	BEFORE=$(snapshot)
	run_refused setpriv --bounding-set=-bpf,-sys_admin,-perfmon --inh-caps=-all -- \
		"$IPMODD" -c "$WORKDIR/fwd.conf"
	rc=$?
	refused "iptables-nft -P FORWARD DROP" IPv4 iptables "$rc"
	hx iptables-nft -P FORWARD ACCEPT
	hx ip6tables-nft -P FORWARD DROP
	BEFORE=$(snapshot)
	run_refused setpriv --bounding-set=-bpf,-sys_admin,-perfmon --inh-caps=-all -- \
		"$IPMODD" -c "$WORKDIR/fwd.conf"
	rc=$?
	refused "ip6tables-nft -P FORWARD DROP" IPv6 ip6tables "$rc"
	check "... IPv4 passed its check first" grep -q \
		'self-check (IPv4): a packet written back to tun0 left through veth0' "$WORKDIR/refused.log"
	hx ip6tables-nft -P FORWARD ACCEPT
}

# --- (b') a gateway that does not answer ARP/ND: not the firewall's doing ------
test_dead_gateway() {
	local lines

	hx ip route replace default via 198.18.0.99
	hx ip -6 route replace default via 2001:db8:77::99
	check "a dead gateway: ipmodd starts" start_capped_ready "$WORKDIR/fwd.conf"
	check "... the check says it is inconclusive, for both families" test \
		"$(grep -c 'self-check (IPv[46]) inconclusive: .*does not answer' "$CAPLOG")" -eq 2
	mapfile -t lines < <(grep -o 'self-check.*' "$CAPLOG" | cut -c1-200)
	diag "${lines[@]}"
	stop_ipmodd TERM
	hx ip route replace default via "$PEER4"
	hx ip -6 route replace default via "$PEER6"
}

# --- (c) both at once, the shipped config with every privilege ----------------
# A strict rp_filter and a forward policy that drops (nftables and Docker's
# iptables-nft, both families) at the same time: with the BPF re-injection
# (reinject = "auto" where the kernel and the build have it) ipmodd starts
# and the host reaches the peer both ways with the TTL rewritten; where it
# has to forward, the self-check refuses.  Never a cut-off host while
# ipmodd runs.
test_both_at_once() {
	local rc

	hx sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.veth0.rp_filter=1
	hx nft add table inet filter
	hx nft add chain inet filter forward '{ type filter hook forward priority 0; policy drop; }'
	hx iptables-nft -P FORWARD DROP
	hx ip6tables-nft -P FORWARD DROP
	BEFORE=$(snapshot)
	shipped_config "$WORKDIR/both.conf"
	pcap_start both "$PEER_NS" veth0 icmp or icmp6
	: >"$LOG"
	ip netns exec "$HOST_NS" "$IPMODD" -c "$WORKDIR/both.conf" >>"$LOG" 2>&1 &
	IPMODD_PID=$!
	for rc in $(seq 100); do
		grep -q 'diverting IPv4' "$LOG" && break
		kill -0 "$IPMODD_PID" 2>/dev/null || break
		sleep 0.05
	done
	if grep -q 're-injection program on its ingress' "$LOG"; then
		check "both at once: ipmodd starts with the BPF re-injection" grep -q 'diverting IPv4 and IPv6' "$LOG"
		check "... the host reaches the peer (IPv4, IPv6)" reach "$HOST_NS" "$PEER4" "$PEER6"
		check "... the peer reaches the host (IPv4, IPv6)" reach "$PEER_NS" "$HOST4" "$HOST6"
		check "... 20 pings each way of family, none lost" bash -c \
			"ip netns exec '$HOST_NS' ping -q -c 20 -i 0.01 -W 1 $PEER4 >/dev/null &&
			 ip netns exec '$HOST_NS' ping -6 -q -c 20 -i 0.01 -W 1 $PEER6 >/dev/null"
		pcap_stop both
		check "... TTL $TTL on the wire (IPv4)" test \
			"$(pcap_count "$WORKDIR/both.pcap" "ip.src == $HOST4 && ip.ttl == $TTL && icmp.type == 8")" -ge 20
		check "... hop limit $TTL on the wire (IPv6)" test \
			"$(pcap_count "$WORKDIR/both.pcap" "ipv6.src == $HOST6 && ipv6.hlim == $TTL && icmpv6.type == 128")" -ge 20
		check_eq "... no echo of the host's with another TTL" \
			"$(pcap_count "$WORKDIR/both.pcap" "(ip.src == $HOST4 && icmp.type == 8 && ip.ttl != $TTL) || (ipv6.src == $HOST6 && icmpv6.type == 128 && ipv6.hlim != $TTL)")" 0
		stop_ipmodd TERM
		check_eq "... SIGTERM exits 0" "$?" 0
	else
		pcap_stop both
		wait "$IPMODD_PID" 2>/dev/null
		rc=$?
		IPMODD_PID=""
		diag "$(grep -o 're-injection program unavailable.*' "$LOG" | cut -c1-200)"
		check_eq "both at once without the re-injection: the self-check refuses (exit 1)" "$rc" 1
		check "... naming the FORWARD hook" grep -q 'FORWARD hook of netfilter drops them' "$LOG"
	fi
	check "... afterwards every sysctl, rule and route is as before" same_as_before
	hx ip6tables-nft -P FORWARD ACCEPT
	hx iptables-nft -P FORWARD ACCEPT
	hx nft delete table inet filter
}

settle || { echo "Bail out! IPv6 addresses stay tentative"; exit 1; }
test_strict_rp_filter
test_loose_all
test_forward_drop
test_dead_gateway
test_both_at_once

done_testing
