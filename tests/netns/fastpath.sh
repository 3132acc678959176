#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The eBPF fast path: the same rules on the same fixed packets put the same
# bytes on the wire with fastpath = "off" and "on", with the same per-rule
# counters, while the kernel really handles them in the "on" run, also for
# bulk TCP (GSO) under rules decided per segment; a rule the kernel cannot
# carry out (reply) still works through userspace; two quick updates wait
# for the packets still walking the old rules; edits and
# reloads change what the kernel does at once without losing counters; a
# trace sees every packet; and with the BPF load refused by the kernel (no
# CAP_BPF), "auto" runs in userspace and "on" refuses to start.
. "$(dirname "$0")/lib.sh"

daemon_test ping python3 tcpdump tshark setpriv unshare
status_key() { ctl --json status | json_field "$1" ""; }
# "name packets bytes" per rule, in chain order.
rule_counts() {
	ctl --json rules | python3 -c '
import json, sys
for r in json.load(sys.stdin)["rules"]:
    print(r["name"], r["packets"], r["bytes"])'
}

RULES='rules = (
	{ name = "fake-ping"; proto = "icmp"; icmp-type = "echo-request"; dst = "198.18.1.0/24"; verdict = "reply"; },
	{ name = "fake-ping6"; proto = "icmpv6"; icmp-type = "echo-request"; dst = "2001:db8:1::/64"; verdict = "reply"; },
	{ name = "drop-port"; proto = "udp"; dport = "7003"; verdict = "drop"; },
	{ name = "accept-port"; proto = "tcp"; dport = "7004"; verdict = "accept"; },
	{ name = "ttl"; proto = "udp"; dport = "7001-7002"; set-ttl = "77"; },
	{ name = "ttl-tcp"; proto = "tcp"; dport = "7001-7002"; set-ttl = "77"; },
	{ name = "ttl-echo"; icmp-type = "echo-request"; set-ttl = "50"; },
	{ name = "dscp"; proto = "udp"; dport = "7001"; set-dscp = "10"; set-ecn = "1"; },
	{ name = "ttl-match"; proto = "tcp"; ttl = "77"; set-dscp = "46"; },
	{ name = "dec"; proto = "tcp"; dport = "7002"; set-ttl = "-3"; }
);'

# conf FILE MODE [RULES]
conf() {
	write_config "$1" "fastpath = \"$2\";
${3:-$RULES}"
}

# Fixed packets from the host namespace through the diversion to the peer:
# raw sockets with the whole IP header given (fixed IDs, payloads, TTL 64).
# send_fixed PORT...: UDP and TCP to each port, v4 and v6, then an echo request each.
send_fixed() {
	send_fixed_ip hx "fast path" 0x4242 "$HOST4" "$PEER4" "$HOST6" "$PEER6" "$@"
}

# The IP packets of a capture that the fixed traffic produced, one hex line each.
ip_packets() {
	python3 - "$1" <<'PY'
import struct, sys
from netpkt import ip_fields, pcap_ip

for pkt in pcap_ip(sys.argv[1]):
    f = ip_fields(pkt)
    if not f:
        continue
    proto, l4 = f[:2]
    if proto in (6, 17) and 7000 <= struct.unpack("!H", l4[2:4])[0] <= 7010 or \
       proto in (1, 58) and l4[0] in (8, 128) and l4[4:6] == b"\x42\x42":
        print(pkt.hex())
PY
}

# What the rules must have done, read from the "on" capture: "family proto dport ttl tclass".
wire_summary() {
	python3 - "$1" <<'PY'
import struct, sys
from netpkt import ip_fields

for line in open(sys.argv[1]):
    p = bytes.fromhex(line.strip())
    proto, l4, ttl, tc, ok = ip_fields(p)
    port = struct.unpack("!H", l4[2:4])[0] if proto in (6, 17) else 0
    print(p[0] >> 4, proto, port, ttl, tc, ok)
PY
}

# run MODE [TAG RULES]: the fixed traffic through a daemon started with
# fastpath = MODE (and RULES instead of $RULES); files named after TAG.
run() {
	local mode=$1 tag=${2:-$1} rules=${3:-$RULES}
	conf "$WORKDIR/$tag.conf" "$mode" "$rules"
	check "ipmodd starts with fastpath = \"$mode\"" start_ipmodd "$WORKDIR/$tag.conf"
	pcap_start "$tag" "$PEER_NS" veth0 "src host $HOST4 or src host $HOST6"
	send_fixed 7001 7002 7003 7004 7005
	# Through the reply rule: the echo request goes to userspace and comes back forged.
	check "[$mode] a ping to 198.18.1.5 gets the forged reply" hx ping -c1 -W2 198.18.1.5
	check "[$mode] a ping6 to 2001:db8:1::5 gets the forged reply" hx ping -6 -c1 -W2 2001:db8:1::5
	pcap_stop "$tag"
	check_eq "[$tag] the echo requests answered by the rule did not reach the peer" \
		"$(tcpdump -r "$WORKDIR/$tag.pcap" -n 'dst host 198.18.1.5 or dst host 2001:db8:1::5' 2>/dev/null | wc -l)" 0
	ip_packets "$WORKDIR/$tag.pcap" >"$WORKDIR/$tag.hex"
	rule_counts >"$WORKDIR/$tag.rules"
	ctl status >"$WORKDIR/$tag.status"
	STATUS_FASTPATH=$(status_key fastpath)
	STATUS_HANDLED=$(status_key fastpath-handled)
	STATUS_DROPPED=$(status_key fastpath-dropped)
	STATUS_RULES=$(status_key fastpath-rules)
	STATUS_PUNT_RULES=$(status_key fastpath-punt-rules)
	STATUS_WHOLE=$(status_key fastpath-whole)
	STATUS_ATTACH=$(status_key fastpath-attach):$(status_key reinject-attach)
	STATUS_FILTERS=$(hx tc filter show dev tun0 egress | grep -c 'bpf.*fastpath')
	stop_ipmodd
	check_eq "[$tag] ipmodd exits 0" "$?" 0
}

# --- (1) the same bytes on the wire, userspace and kernel ---------------------------
run off
check_eq "[off] status says fastpath=off" "$STATUS_FASTPATH" off
check_eq "[off] no kernel totals" "$STATUS_HANDLED" ""
run on
check_eq "[on] status says fastpath=on" "$STATUS_FASTPATH" on
# A tcx link where the kernel has tcx (as the re-injection program's), a tc filter elsewhere.
case $STATUS_ATTACH in
tcx:tcx) check_eq "[on] attached by a tcx link, no tc filter on the tun's egress" "$STATUS_FILTERS" 0 ;;
tc:tc) check_eq "[on] a kernel without tcx: one tc filter on the tun's egress" "$STATUS_FILTERS" 1 ;;
*) not_ok "[on] fastpath-attach:reinject-attach is tcx:tcx or tc:tc, not '$STATUS_ATTACH'" ;;
esac
# 9 TCP/UDP packets per family pass (5 ports, 7003/udp dropped) + 1 echo each = 20.
check "[on] the kernel sent on the fixed traffic (handled=$STATUS_HANDLED >= 20)" \
	test "${STATUS_HANDLED:-0}" -ge 20
check "[on] the kernel dropped the udp/7003 packets (dropped=$STATUS_DROPPED >= 2)" \
	test "${STATUS_DROPPED:-0}" -ge 2
check_eq "the fixed traffic reached the peer (20 packets)" "$(wc -l <"$WORKDIR/on.hex")" 20
check "the peer received the same IP packets, byte for byte, in both runs" \
	cmp "$WORKDIR/off.hex" "$WORKDIR/on.hex"
check "the per-rule counters are the same in both runs" \
	diff -u "$WORKDIR/off.rules" "$WORKDIR/on.rules"
wire_summary "$WORKDIR/on.hex" >"$WORKDIR/on.summary"
# "version proto dport ttl tclass checksum": set-ttl is the TTL on the wire.
want="4 1 0 50 0 csum-ok
4 17 7001 77 41 csum-ok
4 17 7002 77 0 csum-ok
4 17 7004 64 0 csum-ok
4 17 7005 64 0 csum-ok
4 6 7001 77 184 csum-ok
4 6 7002 74 184 csum-ok
4 6 7003 64 0 csum-ok
4 6 7004 64 0 csum-ok
4 6 7005 64 0 csum-ok
6 17 7001 77 41 -
6 17 7002 77 0 -
6 17 7004 64 0 -
6 17 7005 64 0 -
6 58 0 50 0 -
6 6 7001 77 184 -
6 6 7002 74 184 -
6 6 7003 64 0 -
6 6 7004 64 0 -
6 6 7005 64 0 -"
check_eq "on the wire: TTL set, matched after set, decremented; DSCP/ECN set; drop, accept; checksums right" \
	"$(sort -u "$WORKDIR/on.summary")" "$(sort -u <<<"$want")"
check "no udp/7003 packet reached the peer" bash -c "! grep -q '^[46] 17 7003 ' '$WORKDIR/on.summary'"
check_eq "the reply rules counted the pings that took the userspace path" \
	"$(grep -E '^fake-ping6? ' "$WORKDIR/on.rules" | cut -d' ' -f2 | tr '\n' ' ')" "1 1 "

# --- (1b) thousands of rules: the kernel's index finds the few a packet can match ---------
# bench/run's filler kinds (ports, /32s, /64s, src addresses none of the
# traffic uses), and among them rules that do match it: a /32 and the /16
# around it (and the reply rule's /24) with different actions, a dport and a
# sport rule, a /128 and its /48, a src rule, and a rule the kernel cannot
# carry out (clamp-mss) in the middle; then the small chain above.
BIG_RULES=$(awk -v n=3000 'BEGIN {
	extra[300] = "dst = \"198.18.0.2\"; set-ttl = \"70\";"
	extra[700] = "proto = \"udp\"; dport = \"7005\"; set-ttl = \"-2\";"
	extra[1100] = "dst = \"198.18.0.0/16\"; set-dscp = \"12\";"
	extra[1400] = "proto = \"tcp\"; dport = \"7004\"; clamp-mss = 1000;"
	extra[1800] = "dst = \"2001:db8:77::2/128\"; set-ttl = \"71\";"
	extra[2100] = "dst = \"2001:db8:77::/48\"; set-ecn = 1;"
	extra[2400] = "proto = \"tcp\"; sport = \"40010\"; set-dscp = \"20\";"
	extra[2700] = "src = \"198.18.0.1\"; ttl = \"1-2\"; verdict = \"drop\";"
	print "rules = ("
	for (i = 0; i < n; i++) {
		if (i in extra)
			printf "\t{ %s },\n", extra[i]
		m = i % 5; a = int(i / 256) % 256; b = i % 256
		if (m == 0) printf "\t{ proto = \"tcp\"; dport = %d; verdict = \"drop\"; },\n", 10000 + i
		else if (m == 1) printf "\t{ dst = \"100.64.%d.%d\"; verdict = \"drop\"; },\n", a, b
		else if (m == 2) printf "\t{ dst = \"2001:db8:1:%x::/64\"; set-dscp = \"cs1\"; },\n", i
		else if (m == 3) printf "\t{ proto = \"udp\"; dport = %d; set-ttl = \"-1\"; },\n", 20000 + i
		else printf "\t{ src = \"172.16.%d.%d\"; verdict = \"accept\"; },\n", a, b
	}
}')
BIG_RULES+=${RULES#rules = (}
run off bigoff "$BIG_RULES"
run on bigon "$BIG_RULES"
check_eq "[big] the kernel holds the 3,015 rules it can carry out, 3 left to userspace, every list" \
	"$STATUS_RULES $STATUS_PUNT_RULES $STATUS_WHOLE" "3015 3 1"
# 20 packets reach the peer; tcp/7004 (v4, v6) goes to userspace for clamp-mss.
check "[big] the kernel sent on the fixed traffic but tcp/7004 (handled=$STATUS_HANDLED >= 18)" \
	test "${STATUS_HANDLED:-0}" -ge 18
check "[big] the kernel dropped the udp/7003 packets (dropped=$STATUS_DROPPED >= 2)" \
	test "${STATUS_DROPPED:-0}" -ge 2
check_eq "[big] the fixed traffic reached the peer (20 packets)" "$(wc -l <"$WORKDIR/bigon.hex")" 20
# Sorted: tcp/7004 takes the slower userspace path and arrives after later packets.
sort "$WORKDIR/bigoff.hex" >"$WORKDIR/bigoff.sorted"
sort "$WORKDIR/bigon.hex" >"$WORKDIR/bigon.sorted"
check "[big] the peer received the same IP packets, byte for byte, in both runs" \
	cmp "$WORKDIR/bigoff.sorted" "$WORKDIR/bigon.sorted"
check "[big] the per-rule counters of the 3,018 rules are the same in both runs" \
	diff -u "$WORKDIR/bigoff.rules" "$WORKDIR/bigon.rules"
wire_summary "$WORKDIR/bigon.hex" >"$WORKDIR/bigon.summary"
# udp/7005: /32 set-ttl 70, dport -2, /16 DSCP 12; v6: dport -2, /128 71, /48 ECN 1.
check_eq "[big] on the wire: the /32, port and /16 rules (v4), the /128, port and /48 rules (v6)" \
	"$(grep -E '^[46] 17 7005 ' "$WORKDIR/bigon.summary" | sort -u)" \
	"4 17 7005 68 48 csum-ok
6 17 7005 71 1 -"
check_eq "[big] the sport rule (after the /16 and /48 ones) set DSCP 20 on tcp/7005" \
	"$(grep -E '^[46] 6 7005 ' "$WORKDIR/bigon.summary" | sort -u)" \
	"4 6 7005 70 80 csum-ok
6 6 7005 71 81 -"

# --- (1c) GSO super-packets: matches that differ between their segments ---------------
# Bulk TCP leaves the host as TSO super-packets.  A length or tcp-flags=psh
# match is decided per segment in userspace (chain_gso_whole()): the kernel
# must not decide it on the super-packet's length or first header.  The
# same marked segments on the wire and the same counters, off and on.
GSO_RULES='rules = (
	{ name = "len"; proto = "tcp"; dport = 5001; length = "1-1500"; set-dscp = "cs1"; },
	{ name = "psh"; proto = "tcp"; dport = 5002; tcp-flags = "psh"; set-dscp = "cs2"; },
	{ name = "ttl"; proto = "tcp"; set-ttl = "40"; }
);'
GSO_MB=4
head -c $((GSO_MB << 20)) /dev/urandom >"$WORKDIR/gso-data"
# gso_send PORT: the data to the peer over TCP (v4), each byte once.
gso_send() {
	local srv i
	ip netns exec "$PEER_NS" timeout 30 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1]))); s.listen(1); c, _ = s.accept(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    n += len(b)
print(n)' "$1" >"$WORKDIR/gso-recv-$1" &
	srv=$!
	BG_PIDS+=($srv)
	for i in $(seq 50); do
		px ss -ltn | grep -q ":$1 " && break
		sleep 0.1
	done
	hx timeout 30 python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(open(sys.argv[3], "rb").read()); s.close()' "$PEER4" "$1" "$WORKDIR/gso-data"
	wait "$srv"
}
# gso_run MODE: both transfers through a daemon with fastpath = MODE, captured on the peer.
gso_run() {
	local tag=gso$1
	conf "$WORKDIR/$tag.conf" "$1" "$GSO_RULES"
	check "[$tag] ipmodd starts" start_ipmodd "$WORKDIR/$tag.conf"
	pcap_start "$tag" "$PEER_NS" veth0 -s 64 -B 65536 \
		"tcp and src host $HOST4 and (dst port 5001 or dst port 5002)"
	gso_send 5001
	gso_send 5002
	pcap_stop "$tag"
	# No rule that varies by segment: the kernel may carry the super-packets whole.
	GSO_HANDLED=$(status_key fastpath-handled)
	gso_send 5003
	GSO_HANDLED=$(($(status_key fastpath-handled) - ${GSO_HANDLED:-0}))
	check_eq "[$tag] the peer received both transfers whole" \
		"$(cat "$WORKDIR/gso-recv-5001" "$WORKDIR/gso-recv-5002" | tr '\n' ' ')" \
		"$((GSO_MB << 20)) $((GSO_MB << 20)) "
	check_eq "[$tag] tcpdump lost no frame" \
		"$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$WORKDIR/$tag.err")" 0
	rule_counts >"$WORKDIR/$tag.rules"
	GSO_SPLIT=$(status_key gso-split)
	stop_ipmodd
	# "dport dscp psh frames ip-bytes", per kind of frame seen on the wire.
	tshark -r "$WORKDIR/$tag.pcap" -T fields -e tcp.dstport -e ip.dsfield.dscp \
		-e tcp.flags.push -e ip.len 2>/dev/null |
		awk '{ k = $1 " " $2 " " ($3 == "1" || $3 == "True" ? 1 : 0); n[k]++; b[k] += $4 }
		     END { for (k in n) print k, n[k], b[k] }' | sort >"$WORKDIR/$tag.wire"
}
gso_run off
gso_run on
# 4 MiB in segments of at most 1448 bytes: 2,897 or more.
check "[gsoon] the kernel carried tcp/5003 (only the ttl rule) itself ($GSO_HANDLED segments)" \
	test "$GSO_HANDLED" -ge $(((GSO_MB << 20) / 1448))
check "[gsoon] userspace split the super-packets the kernel handed up ($GSO_SPLIT)" \
	test "${GSO_SPLIT:-0}" -gt 0
diag "$(sed 's/^/off: /' "$WORKDIR/gsooff.wire")" "$(sed 's/^/on: /' "$WORKDIR/gsoon.wire")"
# length=1-1500: every segment (all fit the MTU) is cs1 (8); psh: only PSH segments are cs2 (16).
for tag in off on; do
	check_eq "[gso$tag] every tcp/5001 segment on the wire is marked by the length rule" \
		"$(awk '$1 == 5001 && $2 != 8' "$WORKDIR/gso$tag.wire")" ""
	check_eq "[gso$tag] on tcp/5002 exactly the PSH segments are marked by the tcp-flags rule" \
		"$(awk '$1 == 5002 && ($2 == 16) != ($3 == 1)' "$WORKDIR/gso$tag.wire")" ""
	check_eq "[gso$tag] the length rule counted every tcp/5001 segment and its bytes" \
		"$(awk '$1 == "len" { print $2, $3 }' "$WORKDIR/gso$tag.rules")" \
		"$(awk '$1 == 5001 { n += $4; b += $5 } END { print n + 0, b + 0 }' "$WORKDIR/gso$tag.wire")"
	check_eq "[gso$tag] the tcp-flags rule counted the PSH segments and their bytes" \
		"$(awk '$1 == "psh" { print $2, $3 }' "$WORKDIR/gso$tag.rules")" \
		"$(awk '$1 == 5002 && $3 == 1 { n += $4; b += $5 } END { print n + 0, b + 0 }' "$WORKDIR/gso$tag.wire")"
done

# --- (3a) two quick updates wait for the packets still walking the old rules ----------
# tests/helpers/fp-race: packets walk 10,000 rules (the longest chain)
# through BPF_PROG_TEST_RUN on loopback of a namespace of its own while two
# updates follow each other; the second must not rewrite the set such a
# packet walks, nor give its rules' counter slots away, before it is done.
FP_RACE=${FP_RACE:-$(dirname "$IPMODD")/tests/helpers/fp-race}
if [ -x "$FP_RACE" ]; then
	unshare -n "$FP_RACE" >"$WORKDIR/fp-race.tap" 2>&1
	rc=$?
	grep -E '^not ok|counted [1-9]' "$WORKDIR/fp-race.tap" | sed 's/^/# fp-race: /'
	# What failed, in the line the summary shows.
	failed=$(sed -n 's/^not ok \([0-9]*\) - \(.*\)/\1 (\2)/p' "$WORKDIR/fp-race.tap" | paste -sd';')
	check_eq "a packet of the old rules never counts into a new rule's slot (fp-race: exit $rc${failed:+; not ok $failed})" \
		"$rc:$(grep -c '^ok' "$WORKDIR/fp-race.tap")" "0:4"
else
	diag "no $FP_RACE: the update race is not tested"
fi

# --- (3) edits and reloads change the kernel's rules at once --------------------------
conf "$WORKDIR/edit.conf" on
check "ipmodd starts for the edits" start_ipmodd "$WORKDIR/edit.conf"
wire_count() { # wire_count NAME: fixed packets that reached the peer
	ip_packets "$WORKDIR/$1.pcap" | wc -l
}
pcap_start e1 "$PEER_NS" veth0 "src host $HOST4 or src host $HOST6"
send_fixed 7005
pcap_stop e1
check_eq "udp/7005 and tcp/7005 pass before the edit (4 + 2 echoes)" "$(wire_count e1)" 6
before=$(rule_counts | grep -E '^(ttl-echo|dscp) ')
check "ipmodctl add: a drop rule in front" ctl add at 1 name=drop7005 proto=udp dport=7005 verdict=drop
check_eq "the kernel holds the new rule" "$(status_key fastpath-rules)" 9
dropped0=$(status_key fastpath-dropped)
pcap_start e2 "$PEER_NS" veth0 "src host $HOST4 or src host $HOST6"
send_fixed 7005
pcap_stop e2
check_eq "after the add, udp/7005 no longer passes" "$(wire_count e2)" 4
check_eq "the kernel dropped the two" "$(($(status_key fastpath-dropped) - dropped0))" 2
check_eq "the new rule counted them" "$(rule_counts | grep '^drop7005 ' | cut -d' ' -f2)" 2
after=$(rule_counts | grep -E '^(ttl-echo|dscp) ')
echo_before=$(grep '^ttl-echo ' <<<"$before" | cut -d' ' -f2)
check_eq "an unchanged rule kept its counts across the edit (+2 echoes since)" \
	"$(grep '^ttl-echo ' <<<"$after" | cut -d' ' -f2)" "$((echo_before + 2))"
check_eq "... and one that saw nothing since kept them exactly" \
	"$(grep '^dscp ' <<<"$after")" "$(grep '^dscp ' <<<"$before")"
check "ipmodctl del: the drop goes" ctl del drop7005
pcap_start e3 "$PEER_NS" veth0 "src host $HOST4 or src host $HOST6"
send_fixed 7005
pcap_stop e3
check_eq "after the del, udp/7005 passes again" "$(wire_count e3)" 6

# A reload that changes drop-port to 7005: 7003 passes from then on, 7005 does not.
echo_before=$(rule_counts | grep '^ttl-echo ' | cut -d' ' -f2)
conf "$WORKDIR/edit.conf" on "${RULES/dport = \"7003\"; verdict = \"drop\"/dport = \"7005\"; verdict = \"drop\"}"
check "ipmodctl reload" ctl reload
pcap_start e4 "$PEER_NS" veth0 "src host $HOST4 or src host $HOST6"
send_fixed 7003 7005
pcap_stop e4
ip_packets "$WORKDIR/e4.pcap" >"$WORKDIR/e4.hex"
wire_summary "$WORKDIR/e4.hex" >"$WORKDIR/e4.summary"
check_eq "after the reload: udp/7003 passes, udp/7005 is dropped" \
	"$(grep -c '^[46] 17 7003 ' "$WORKDIR/e4.summary"):$(grep -c '^[46] 17 7005 ' "$WORKDIR/e4.summary")" "2:0"
check_eq "the unchanged ttl-echo rule kept its counts across the reload (+2 echoes)" \
	"$(rule_counts | grep '^ttl-echo ' | cut -d' ' -f2)" "$((echo_before + 2))"
check_eq "the changed drop-port rule starts from its new traffic (2 packets)" \
	"$(rule_counts | grep '^drop-port ' | cut -d' ' -f2)" 2

# A trace sees every packet: the fast path steps aside while it runs.
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" trace >"$WORKDIR/trace.out" 2>&1 &
trace_pid=$!
for i in $(seq 50); do
	[ "$(status_key fastpath-paused)" = 1 ] && break
	sleep 0.1
done
check_eq "status: paused while a trace runs" "$(status_key fastpath-paused)" 1
handled0=$(status_key fastpath-handled)
send_fixed 7001
sleep 0.5
kill "$trace_pid"
wait "$trace_pid" 2>/dev/null
check_eq "the trace saw the four 7001 packets" "$(grep -c 'dport=7001 ' "$WORKDIR/trace.out")" 4
check_eq "... and the kernel handled none of the traffic meanwhile" \
	"$(status_key fastpath-handled)" "$handled0"
for i in $(seq 50); do
	[ "$(status_key fastpath-paused)" = 0 ] && break
	sleep 0.1
done
check_eq "the fast path resumes when the trace ends" "$(status_key fastpath-paused)" 0
check "ipmodctl reset" ctl reset
check_eq "... zeroes the kernel's totals" "$(status_key fastpath-handled):$(status_key fastpath-dropped)" "0:0"
check_eq "... and the rule counters" "$(rule_counts | awk '{ s += $2 } END { print s }')" 0
stop_ipmodd
check_eq "ipmodd exits 0 after the edits, reload and trace" "$?" 0
check "the filter left with the daemon" bash -c "! ip netns exec '$HOST_NS' tc filter show dev tun0 egress 2>/dev/null | grep -q bpf"

# --- a crash takes the filter along with the tun ---------------------------------------
check "ipmodd starts again" start_ipmodd "$WORKDIR/edit.conf"
kill -9 "$IPMODD_PID"
wait "$IPMODD_PID" 2>/dev/null
IPMODD_PID=""
check "after SIGKILL the tun, and with it the filter, is gone" bash -c "! ip netns exec '$HOST_NS' ip link show tun0 2>/dev/null"
check "a new instance starts and attaches" start_ipmodd "$WORKDIR/edit.conf"
if [ "$(status_key fastpath-attach)" = tc ]; then
	check_eq "... one filter on the new tun" "$(hx tc filter show dev tun0 egress | grep -c 'bpf.*fastpath')" 1
else
	check_eq "... a tcx link on the new tun, no filter" \
		"$(status_key fastpath-attach):$(hx tc filter show dev tun0 egress | grep -c 'bpf.*fastpath')" "tcx:0"
fi
stop_ipmodd

# --- a routing loop: the kernel does not circle a packet, the loop guard ends it -------
check "ipmodd starts for the loop" start_ipmodd "$WORKDIR/edit.conf"
hx ip route add 198.18.9.0/24 dev tun0
handled0=$(status_key fastpath-handled)
loops0=$(status_key loops)
direct0=$(status_key reinject-direct)
hx ping -c 5 -i 0.2 -W 1 198.18.9.1 >/dev/null 2>&1
sleep 1
handled=$(($(status_key fastpath-handled) - handled0))
check_eq "each of 5 echo requests into a loop came back and was dropped once" \
	"$(($(status_key loops) - loops0))" 5
check "... the kernel sent each on at most twice, no storm ($handled)" test "$handled" -le 10
# The direct path finds the route back into the tun and leaves them to the ingress as before.
check_eq "... with the fast path's direct path on, which sent none of them" \
	"$(status_key fastpath-direct):$(($(status_key reinject-direct) - direct0))" "1:0"
hx ip route del 198.18.9.0/24 dev tun0
stop_ipmodd
check_eq "... and ipmodd exits 0" "$?" 0

# --- (2) the kernel refuses the BPF load (no CAP_BPF, no CAP_SYS_ADMIN) ---------------
diag "kernel.unprivileged_bpf_disabled = $(cat /proc/sys/kernel/unprivileged_bpf_disabled)"
conf "$WORKDIR/auto.conf" auto
# Without CAP_BPF there is no re-injection either: IPv6 then needs the
# kernel's force_forwarding (6.17), and an explicit "ipv6" refuses without it.
fam_filter=cat
if ! hx test -e /proc/sys/net/ipv6/conf/lo/force_forwarding; then
	rc=$(capped_exit "$WORKDIR/auto.conf")
	check_eq "no force_forwarding (kernel < 6.17), no CAP_BPF: families ipv6 refuses (exit 1)" "$rc" 1
	check "... naming the fix" grep -q \
		'routing.families: ipv6: kernel < 6.17 has no force_forwarding: enable routing.reinject' \
		"$WORKDIR/capped.log"
	sed -i 's/families = \[ "ipv4", "ipv6" \]/families = [ "ipv4" ]/' "$WORKDIR/auto.conf"
	fam_filter="grep ^4"
fi
: >"$WORKDIR/capped.log"
check "fastpath = auto without CAP_BPF: ipmodd starts" start_capped "$WORKDIR/auto.conf"
check "... and logs why the fast path is unavailable" \
	grep -q 'eBPF fast path unavailable.*loading the BPF program: Operation not permitted' "$WORKDIR/capped.log"
check_eq "... status: unavailable" "$(status_key fastpath)" unavailable
check "... with the reason" bash -c "ip netns exec '$HOST_NS' '$IPMODCTL' -s '$SOCK' status -a | grep -q 'fastpath-reason:.*Operation not permitted'"
pcap_start cap "$PEER_NS" veth0 "src host $HOST4 or src host $HOST6"
send_fixed 7001 7003
pcap_stop cap
ip_packets "$WORKDIR/cap.pcap" >"$WORKDIR/cap.hex"
wire_summary "$WORKDIR/cap.hex" | sort -u >"$WORKDIR/cap.summary"
want="4 1 0 50 0 csum-ok
4 17 7001 77 41 csum-ok
4 6 7001 77 184 csum-ok
4 6 7003 64 0 csum-ok
6 58 0 50 0 -
6 17 7001 77 41 -
6 6 7001 77 184 -
6 6 7003 64 0 -"
check_eq "... traffic flows with the rules applied in userspace" "$($fam_filter "$WORKDIR/cap.summary")" \
	"$(sort -u <<<"$want" | $fam_filter)"
stop_ipmodd
conf "$WORKDIR/on-capped.conf" on
rc=$(capped_exit "$WORKDIR/on-capped.conf")
check_eq "fastpath = on without CAP_BPF refuses to start (exit 1)" "$rc" 1
check "... naming the step and the cause" \
	grep -q 'fastpath = "on", but the eBPF fast path is unavailable: loading the BPF program: Operation not permitted' \
	"$WORKDIR/capped.log"
check "... and leaves no routing behind" bash -c "[ -z \"\$(ip netns exec '$HOST_NS' ip rule show | grep '^$PRIO:')\" ]"

done_testing
