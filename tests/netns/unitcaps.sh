#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# With the shipped unit's capabilities only (CAP_NET_ADMIN, CAP_BPF,
# CAP_NET_RAW: no CAP_PERFMON, no CAP_SYS_ADMIN) every eBPF program loads:
# the fast path, the re-injection program and the inbound pair, and traffic
# flows through each, both directions.  Kernels differ in what their
# verifier allows without CAP_PERFMON (Debian 12's 6.1 refused three
# constructs that 6.18 takes), so runtests also runs this under 6.1
# (tests/vm).
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping setpriv python3
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
"$IPMODD" --version >/dev/null || skip_all "no ipmodd"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { hx "$IPMODCTL" -s "$SOCK" "$@"; }
FASTPATH=on
REINJECT=bpf
write_config "$WORKDIR/caps.conf" 'inbound = { interfaces = [ "veth0" ]; };
rules = (
	{ name = "out"; proto = "icmp"; set-ttl = 50; },
	{ name = "in"; direction = "in"; proto = "icmp"; set-dscp = 10; },
	{ name = "out6"; proto = "icmpv6"; icmp-type = "echo-request"; set-ttl = 50; },
	{ name = "in6"; direction = "in"; proto = "icmpv6"; icmp-type = "echo-request"; set-dscp = 10; }
);'

ip netns exec "$HOST_NS" setpriv --bounding-set=-all,+net_admin,+bpf,+net_raw --inh-caps=-all -- \
	"$IPMODD" -c "$WORKDIR/caps.conf" >>"$WORKDIR/ipmodd.log" 2>&1 &
IPMODD_PID=$!
# Up to 60 s: loading the programs is slow in a TCG guest (tests/vm).
for i in $(seq 600); do
	[ "$(status_field inbound 2>/dev/null)" = veth0 ] && break
	kill -0 "$IPMODD_PID" 2>/dev/null || break
	sleep 0.1
done
if ! kill -0 "$IPMODD_PID" 2>/dev/null; then
	not_ok "ipmodd starts with CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW only"
	diag "$(tail -5 "$WORKDIR/ipmodd.log")"
	done_testing
	exit
fi
ok "ipmodd starts with CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW only"
check_eq "the fast path is on" "$(status_field fastpath)" on
check_eq "the re-injection program is on" "$(status_field reinject)" bpf
# The verifier took reinject_egress too (bpf_jiffies64 needs CAP_BPF; else
# the fast path falls back to redirecting to the tun's ingress).
check_eq "the fast path hands its packets to the re-injection program's egress variant" \
	"$(status_field fastpath-direct)" 1
# Attached the same way as the re-injection program: tcx links where the kernel has them.
check_eq "the fast path is attached as the re-injection program is (tcx or tc)" \
	"$(status_field fastpath-attach)" "$(status_field reinject-attach)"
check_eq "the inbound fast path is on" "$(status_field fastpath-in)" on
check_eq "the inbound diversion is on" "$(status_field inbound)" veth0
# The verifier took fastpath_uplink too (else the inbound fast path falls
# back to the inbound tun's egress, saying so in the log).
check "the inbound fast path runs on veth0's ingress (divert's tail call)" \
	grep -q "inbound eBPF fast path on the ingress of 1 uplink" "$WORKDIR/ipmodd.log"
inrx0=$(status_field in-rx-packets)

for fam in 4 6; do
	[ "$fam" = 4 ] && dst=$PEER4 || dst=$PEER6
	[ "$fam" = 4 ] && src=$HOST4 || src=$HOST6
	check "IPv$fam: the host pings the peer" hx ping "-$fam" -c 3 -i 0.2 -W 2 "$dst"
	check "IPv$fam: the peer pings the host" px ping "-$fam" -c 3 -i 0.2 -W 2 "$src"
done
# Each rule saw its direction's packets: the IPv4 ones the host's 3 echo
# requests and the peer's 3 replies, or the reverse; the IPv6 ones the echo
# requests of their direction.
rules=$(ctl rules --json)
ctl rules >&2
count() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(next(r["packets"] for r in d["rules"] if r["name"]==sys.argv[1]))' "$1" <<<"$rules"; }
check_eq "the outbound ICMP rule counted 6 packets" "$(count out)" 6
check_eq "the inbound ICMP rule counted 6 packets" "$(count in)" 6
check_eq "the outbound ICMPv6 echo-request rule counted 3 packets" "$(count out6)" 3
check_eq "the inbound ICMPv6 echo-request rule counted 3 packets" "$(count in6)" 3
check_eq "the daemon read none of the peer's packets (the kernel finished them on veth0)" \
	"$(( $(status_field in-rx-packets) - inrx0 ))" 0
redirected=$(status_field reinject-redirected)
check "the re-injection program carried packets out (${redirected:-?})" test "${redirected:-0}" -gt 0
stop_ipmodd
done_testing
