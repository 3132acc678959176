#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The rule chain on real traffic: forged echo replies, set-ttl, clamp-mss,
# drop, reject with TCP RST and ICMP/ICMPv6 unreachables; every frame the
# peer and the host see carries correct checksums.
. "$(dirname "$0")/lib.sh"
# The rewrites and forged packets as the daemon writes them, checksums included,
# captured on tun0: the eBPF fast path would send most of this traffic past
# the daemon (fastpath.sh covers its rewrites against this path's).
FASTPATH=off

require_root
require_cmd ping tcpdump tshark socat traceroute python3 nc ethtool
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }
# With tun offload the host's packets carry partial checksums until a device
# computes them: let the host's veth do it in software, so that the peer's
# capture shows what a real NIC would send.
hx ethtool -K veth0 tx off >/dev/null
setup_far || { echo "Bail out! cannot build the far namespace"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
write_config "$CONF" 'rules = (
	{ name = "fake-ping4"; proto = "icmp"; icmp-type = "echo-request"; dst = "198.18.1.1"; verdict = "reply"; },
	{ name = "fake-ping6"; proto = "icmpv6"; icmp-type = "echo-request"; dst = "2001:db8:1::1"; verdict = "reply"; },
	{ name = "ttl-ping"; proto = "icmp"; dst = "198.18.0.2"; icmp-type = "echo-request"; set-ttl = 33; },
	{ name = "hl-ping"; proto = "icmpv6"; dst = "2001:db8:77::2"; icmp-type = "echo-request"; set-ttl = 44; },
	{ name = "ttl-trace"; proto = "udp"; dst = "198.18.2.2"; dport = "33434-33534"; set-ttl = 64; },
	{ name = "mss"; proto = "tcp"; dport = 5002; tcp-flags = "syn"; clamp-mss = 1000; },
	{ name = "drop-udp"; proto = "udp"; dport = 7001; verdict = "drop"; },
	{ name = "rst"; proto = "tcp"; dport = 5003; verdict = "reject"; reject-with = "tcp-reset"; },
	{ name = "unreach-udp"; proto = "udp"; dport = 7003; verdict = "reject"; },
	{ name = "unreach-host"; proto = "icmp"; dst = "198.18.1.2"; verdict = "reject"; reject-with = "host-unreachable"; },
	{ name = "unreach-admin6"; proto = "icmpv6"; dst = "2001:db8:1::2"; verdict = "reject"; reject-with = "admin-prohibited"; },
	{ name = "rst6"; family = "ip6"; proto = "tcp"; dport = 5003; verdict = "reject"; reject-with = "tcp-reset"; }
);'
check "the test config is valid" hx "$IPMODD" --check-config -c "$CONF"

# Traceroute to far before ipmodd: the first hop is the peer router.
trace_before=$(hx traceroute -n -q1 -w1 -m3 "$FAR4" 2>/dev/null | awk 'NR > 1 { print $2 }' | head -1)
check_eq "without ipmodd traceroute's first hop is the router" "$trace_before" "198.18.0.2"

check "ipmodd starts with the rule set" start_ipmodd "$CONF"
pcap_start peer "$PEER_NS" veth0
pcap_start tun "$HOST_NS" tun0

# --- reply: forged echo replies, the peer never sees the request ---------------
out=$(hx ping -c 3 -i 0.2 -W 1 198.18.1.1 2>&1)
check "ping to a reply rule's address is answered (IPv4)" grep -q '3 received' <<<"$out"
check "the forged IPv4 replies carry TTL 64" grep -q 'ttl=64' <<<"$out"
out=$(hx ping -6 -c 3 -i 0.2 -W 1 2001:db8:1::1 2>&1)
check "ping -6 to a reply rule's address is answered (IPv6)" grep -q '3 received' <<<"$out"
out=$(hx ping -c 2 -s 1000 -p c0ffee -W 1 198.18.1.1 2>&1)
check "a 1000-byte ping with a pattern is answered with the same payload" \
	bash -c "grep -q '2 received' <<<'$out' && ! grep -qi 'wrong data' <<<'$out'"

# --- set-ttl -------------------------------------------------------------------
hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
hx ping -6 -c 2 -i 0.2 -W 1 "$PEER6" >/dev/null
# A UDP probe to the same address keeps its TTL: only the rule's traffic changes.
echo probe | hx socat -u - "UDP4:$PEER4:7002"

# traceroute: every probe leaves with TTL 64, so the first hop is already far.
trace_after=$(hx traceroute -n -q1 -w1 -m3 "$FAR4" 2>/dev/null | awk 'NR > 1 { print $2 }' | head -1)
check_eq "with set-ttl=64 on its probes traceroute reaches far at hop 1" "$trace_after" "$FAR4"

# --- clamp-mss -----------------------------------------------------------------
ip netns exec "$PEER_NS" socat -u TCP4-LISTEN:5002,reuseaddr OPEN:/dev/null &
srv=$!
sleep 0.3
head -c 100000 /dev/urandom | hx timeout 10 socat -u - "TCP4:$PEER4:5002"
wait $srv

# --- drop ----------------------------------------------------------------------
for i in 1 2 3 4 5; do echo "drop-$i" | hx socat -u - "UDP4:$PEER4:7001"; done

# --- reject with a TCP reset -------------------------------------------------------
bg "$PEER_NS" socat TCP4-LISTEN:5003,reuseaddr,fork /dev/null
bg "$PEER_NS" socat TCP6-LISTEN:5003,reuseaddr,fork /dev/null
sleep 0.3
out=$(hx nc -v -z -w 3 "$PEER4" 5003 2>&1)
rc=$?
check "nc to a tcp-reset port fails" test $rc -ne 0
check "... with connection refused ($out)" grep -qi 'refused' <<<"$out"
out=$(hx nc -6 -v -z -w 3 "$PEER6" 5003 2>&1)
check "nc -6 to a tcp-reset port fails with connection refused ($out)" grep -qi 'refused' <<<"$out"

# --- reject with ICMP / ICMPv6 unreachables ------------------------------------------
out=$(hx python3 - "$PEER4" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], 7003))
s.send(b"x")
try:
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
PY
)
check_eq "a UDP socket gets ECONNREFUSED from the forged port unreachable" "$out" refused
out=$(hx ping -c 1 -W 2 198.18.1.2 2>&1)
check "ping reports the forged host unreachable" grep -q 'Destination Host Unreachable' <<<"$out"
out=$(hx ping -6 -c 1 -W 2 2001:db8:1::2 2>&1)
check "ping -6 reports the forged administratively prohibited" grep -qi 'Administratively prohibited' <<<"$out"

pcap_stop peer
pcap_stop tun
P=$WORKDIR/peer.pcap
T=$WORKDIR/tun.pcap

check_eq "the peer saw no echo request to the faked IPv4 address" \
	"$(pcap_count "$P" 'icmp.type == 8 && ip.dst == 198.18.1.1')" 0
check_eq "the peer saw no echo request to the faked IPv6 address" \
	"$(pcap_count "$P" 'icmpv6.type == 128 && ipv6.dst == 2001:db8:1::1')" 0
check_eq "the peer saw every ping to it with TTL 33" \
	"$(pcap_count "$P" "icmp.type == 8 && ip.dst == $PEER4 && ip.ttl == 33")" 2
check_eq "the peer saw every ping -6 to it with hop limit 44" \
	"$(pcap_count "$P" "icmpv6.type == 128 && ipv6.dst == $PEER6 && ipv6.hlim == 44")" 2
check_eq "other traffic to the peer keeps TTL 64" \
	"$(pcap_count "$P" "ip.src == $HOST4 && !icmp && udp.dstport == 7002 && ip.ttl == 64")" 1
check "tcpdump -vv in the peer shows ttl 33" bash -c \
	"tcpdump -vv -n -r '$P' 'icmp[icmptype] == icmp-echo and dst host $PEER4' 2>/dev/null | grep -q 'ttl 33'"
check_eq "the SYN to port 5002 arrived with MSS 1000" \
	"$(pcap_count "$P" 'tcp.dstport == 5002 && tcp.flags.syn == 1 && tcp.options.mss_val == 1000')" 1
check_eq "... and a correct TCP checksum" \
	"$(tshark -r "$P" -o tcp.check_checksum:TRUE -Y 'tcp.dstport == 5002 && tcp.flags.syn == 1 && tcp.checksum.status == "Good"' 2>/dev/null | wc -l)" 1
check "the clamped connection carried data" test "$(pcap_count "$P" 'tcp.dstport == 5002 && tcp.len > 0')" -gt 0
check_eq "the dropped UDP flow never reached the peer" "$(pcap_count "$P" 'udp.dstport == 7001')" 0
check_eq "no SYN to the tcp-reset port reached the peer" "$(pcap_count "$P" 'tcp.dstport == 5003')" 0
# Frames the peer itself sends carry offloaded (partial) checksums in a capture;
# what matters is every frame that arrived from the host.
check "the peer capture has frames from the host" test "$(pcap_count "$P" "ip.src == $HOST4 || ipv6.src == $HOST6")" -gt 50
check_eq "no frame the peer received has a bad checksum" "$(pcap_bad_checksums "$P" "ip.src == $HOST4 || ipv6.src == $HOST6")" 0

check "the host received forged IPv4 echo replies on tun0" test "$(pcap_count "$T" 'icmp.type == 0 && ip.src == 198.18.1.1')" -ge 5
check "the host received forged IPv6 echo replies on tun0" test "$(pcap_count "$T" 'icmpv6.type == 129 && ipv6.src == 2001:db8:1::1')" -ge 3
check "the forged RSTs came from the peer's address" test "$(pcap_count "$T" "tcp.flags.reset == 1 && tcp.srcport == 5003")" -ge 2
check "the forged port unreachable quotes the datagram" test "$(pcap_count "$T" 'icmp.type == 3 && icmp.code == 3 && udp.dstport == 7003')" -ge 1
# On tun0 the host's own TCP and UDP frames carry partial checksums (offload);
# the peer's capture checks those.  What the daemon forged must be complete.
check_eq "no frame forged onto tun0 has a bad checksum" \
	"$(pcap_bad_checksums "$T" "!(ip.src#1 == $HOST4 || ipv6.src#1 == $HOST6)")" 0

stop_ipmodd TERM
check_eq "ipmodd exits 0" "$?" 0
done_testing
