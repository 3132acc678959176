#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ipmodctl explain agrees with the daemon: 1,000 random packets (IPv4 and
# IPv6; TCP, UDP, ICMP, ICMPv6; random ports, flags, TTL or hop limit, DSCP,
# length, types) are sent through
# a chain whose rules rewrite fields that later rules match, drop, accept,
# reject and reply; each packet's trace line (the rules it matched, the
# result) must equal what explain answers for the same fields.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd python3
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

N=${EXPLAIN_PACKETS:-1000}
CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
# No probability= or impairment: their outcome is drawn, explain's is not.
RULES='rules = (
	{ name = "ttl-low"; ttl = "1-5"; set-ttl = 64; },
	{ name = "high-ttl-drop"; proto = "udp"; ttl = "60-64"; dport = "5000-5010"; verdict = "drop"; },
	{ name = "mark-ef"; proto = "tcp"; dport = "!22"; set-dscp = "ef"; },
	{ name = "ef-udp"; dscp = "ef"; proto = "udp"; verdict = "accept"; },
	{ name = "ef-syn-80"; dscp = "ef"; proto = "tcp"; tcp-flags = "syn,!ack"; dport = 80; verdict = "reject"; reject-with = "tcp-reset"; },
	{ name = "rst-23"; proto = "tcp"; dport = 23; verdict = "reject"; reject-with = "tcp-reset"; },
	{ name = "pong"; proto = "icmp"; icmp-type = "echo-request"; dst = "198.18.1.128/25"; verdict = "reply"; },
	{ name = "icmp-unreach"; proto = "icmp"; dst = "198.18.1.0/26"; verdict = "reject"; },
	{ name = "pong6"; proto = "icmpv6"; icmp-type = "echo-request"; dst = "2001:db8:1::80/121"; verdict = "reply"; },
	{ name = "v6-unreach"; family = "ip6"; proto = "udp"; dst = "2001:db8:1::/122"; dport = "7000"; verdict = "reject"; reject-with = "admin-prohibited"; },
	{ name = "big"; length = "1000-1500"; set-ecn = "ect0"; },
	{ name = "dns-low-sport"; proto = "udp"; sport = "1000-1999"; dport = 53; verdict = "drop"; },
	{ name = "udp-9"; proto = "udp"; dport = 9; verdict = "reject"; reject-with = "port-unreachable"; },
	{ name = "tail-ttl"; ttl = 64; set-ttl = "-1"; },
	{ name = "last-drop"; proto = "tcp"; dst = "198.18.1.200/29"; verdict = "drop"; }
);'
write_config "$CONF" "$RULES"
start_ipmodd "$CONF" || { echo "Bail out! ipmodd did not start"; exit 1; }
ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }

# The trace of the test's packets only; ip netns exec execs ipmodctl, so $! is it.
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" --json trace dst=198.18.1.0/24 \
	>"$WORKDIR/trace.json" 2>"$WORKDIR/trace.err" &
TRACE_PID=$!
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" --json trace dst=2001:db8:1::/64 \
	>"$WORKDIR/trace6.json" 2>"$WORKDIR/trace6.err" &
TRACE6_PID=$!
for i in $(seq 50); do [ "$(status_field streams)" = 2 ] && break; sleep 0.1; done
check_eq "the traces (IPv4, IPv6) are running" "$(status_field streams)" 2

# Send the packets (raw IPv4 and IPv6, header included), as explain would build them:
# no options, zero payload, DF; their fields into packets.json.  Each has its
# own IP ID (no field a rule matches): two equal packets moments apart would
# look like one coming back to the loop guard.
hx python3 - "$N" "$WORKDIR/packets.json" <<'PYEOF'
import json, random, socket, struct, sys, time
from netpkt import csum

n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(19)
SRC = "198.18.0.1"
SRC6 = "2001:db8:77::1"

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
# IPPROTO_RAW: the IPv6 header is ours too (IPV6_HDRINCL).
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
pkts = []
for i in range(n):
    v6 = rng.random() < 0.3
    proto = rng.choices(["tcp", "udp", "icmpv6" if v6 else "icmp"], [45, 35, 20])[0]
    if v6:
        dst = "2001:db8:1::%x" % rng.choice([1, 5, 0x3f, 0x81, 0xc8])
    else:
        dst = "198.18.1.%d" % rng.choice([1, 5, 60, 130, 201, 250])
    ttl = rng.choice([1, 3, 5, 10, 60, 63, 64])
    dscp = rng.choice([0, 46, 10])
    extra = rng.choice([0, 0, 100, 980, 1200])
    src = SRC6 if v6 else SRC
    f = {"proto": proto, "src": src, "dst": dst, "ttl": ttl, "dscp": dscp, "v6": v6}
    if proto == "tcp":
        sport, dport = rng.choice([1000, 1500, 2500, 40000]), rng.choice([22, 23, 53, 80, 443, 5005, 9])
        flags = rng.choice([0x02, 0x12, 0x10, 0x04, 0x18, 0x11, 0x01, 0x03])
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0) + bytes(extra)
        f.update(sport=sport, dport=dport, flags=flags)
        num = 6
    elif proto == "udp":
        sport, dport = rng.choice([1000, 1500, 2500, 40000]), rng.choice([53, 5005, 9, 7000, 80])
        l4 = struct.pack("!HHHH", sport, dport, 8 + extra, 0) + bytes(extra)
        f.update(sport=sport, dport=dport)
        num = 17
    elif v6:
        t = rng.choice([128, 128, 129, 1, 3])
        l4 = struct.pack("!BBHHH", t, 0, 0, 1, 1) + bytes(extra)
        f.update(icmp_type=t)
        num = 58
    else:
        t = rng.choice([8, 8, 0, 3, 11, 13])
        l4 = struct.pack("!BBHHH", t, 0, 0, 1, 1) + bytes(extra)
        f.update(icmp_type=t)
        num = 1
    if v6:
        # Each packet its own flow label: no two are equal for the loop guard.
        src_b, dst_b = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
        pseudo = src_b + dst_b + struct.pack("!IxxxB", len(l4), num)
    else:
        src_b, dst_b = socket.inet_aton(src), socket.inet_aton(dst)
        pseudo = src_b + dst_b + struct.pack("!BBH", 0, num, len(l4))
    f["len"] = (40 if v6 else 20) + len(l4)
    if num in (6, 17, 58):
        c = csum(pseudo + l4)
        off = {6: 16, 17: 6, 58: 2}[num]
        l4 = l4[:off] + struct.pack("!H", c or 0xffff) + l4[off + 2:]
    else:
        l4 = l4[:2] + struct.pack("!H", csum(l4)) + l4[4:]
    if v6:
        tc = dscp << 2
        ip = struct.pack("!IHBB16s16s", 6 << 28 | tc << 20 | (i + 1), len(l4), num, ttl, src_b, dst_b)
        s6.sendto(ip + l4, (dst, 0))
    else:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, dscp << 2, f["len"], i + 1, 0x4000, ttl, num, 0,
                         src_b, dst_b)
        s.sendto(ip + l4, (dst, 0))
    pkts.append(f)
    time.sleep(0.003)
json.dump(pkts, open(out, "w"))
PYEOF
check "$N packets sent" test -s "$WORKDIR/packets.json"
sleep 1
kill -INT "$TRACE_PID" "$TRACE6_PID" 2>/dev/null
wait "$TRACE_PID" "$TRACE6_PID" 2>/dev/null
# The daemon names the packet it took (one line, rate-limited).
took=$(grep -m1 -o 'came back.*' "$WORKDIR/ipmodd.log")
check_eq "the loop guard took none for a loop${took:+ ($took)}" "$(status_field loops)" 0
check "the traces lost no event" bash -c '! grep -q "lost" "$1" "$2"' _ "$WORKDIR/trace.json" "$WORKDIR/trace6.json"

# For each packet, explain's answer beside its trace line.
python3 - "$WORKDIR/packets.json" "$WORKDIR/trace.json" "$WORKDIR/trace6.json" "$IPMODCTL" "$SOCK" "$HOST_NS" <<'PYEOF' >"$WORKDIR/compare.txt"
import json, subprocess, sys

pkts = json.load(open(sys.argv[1]))
# Each family's packets in the order sent, beside its trace's lines in order.
traces = {}
for v6, path in ((False, sys.argv[2]), (True, sys.argv[3])):
    traces[v6] = [t for t in (json.loads(l) for l in open(path) if l.strip()) if "rules" in t]
ctl, sock, ns = sys.argv[4], sys.argv[5], sys.argv[6]
pairs = []
for v6 in (False, True):
    pairs += zip([p for p in pkts if p["v6"] == v6], traces[v6])
print("packets %d trace %d (IPv6 %d)" % (len(pkts), len(traces[False]) + len(traces[True]),
                                         len(traces[True])))
agree = differ = misaligned = 0
for i, (p, t) in enumerate(pairs):
    # The trace must be of this very packet: same addresses, proto, ports, length.
    same = (t["dst"] == p["dst"] and t["proto"] == p["proto"] and t["len"] == p["len"] and
            t.get("sport") == p.get("sport") and t.get("dport") == p.get("dport"))
    if not same:
        misaligned += 1
        if misaligned <= 3:
            print("misaligned %d: sent %s, traced %s" % (i, p, t))
        continue
    words = ["proto=" + p["proto"], "src=" + p["src"], "dst=" + p["dst"], "ttl=%d" % p["ttl"],
             "dscp=%d" % p["dscp"], "len=%d" % p["len"]]
    if "sport" in p:
        words += ["sport=%d" % p["sport"], "dport=%d" % p["dport"]]
    if "flags" in p:
        names = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"]
        fl = [names[b] for b in range(8) if p["flags"] >> b & 1]
        words.append("flags=" + ",".join(fl))
    if "icmp_type" in p:
        words.append("icmp-type=%d" % p["icmp_type"])
    r = subprocess.run(["ip", "netns", "exec", ns, ctl, "-s", sock, "--json", "explain"] + words,
                       capture_output=True, text=True)
    if r.returncode != 0:
        differ += 1
        print("explain failed for %s: %s" % (" ".join(words), r.stderr.strip()))
        continue
    e = json.loads(r.stdout)
    got = ([x["name"] for x in e["rules"]], e["result"])
    want = ([x["name"] for x in t["rules"]], t["result"])
    if got == want:
        agree += 1
    else:
        differ += 1
        if differ <= 5:
            print("differ %d: %s: explain %s, trace %s" % (i, " ".join(words), got, want))
print("agree %d differ %d misaligned %d" % (agree, differ, misaligned))
PYEOF
diag "$(tail -8 "$WORKDIR/compare.txt")"
diag "$(ctl status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print({k: v for k, v in d.items() if isinstance(v, int) and v and not k.startswith(("pid", "uptime", "table", "prio"))})')"
read -r _ sent _ traced _ < <(head -1 "$WORKDIR/compare.txt")
check_eq "every packet sent was traced" "$traced" "$sent"
read -r _ agree _ differ _ misaligned < <(tail -1 "$WORKDIR/compare.txt")
check_eq "each trace line is of the packet sent in that order" "$misaligned" 0
check_eq "explain agrees with the trace for all $N packets (matched rules, result)" "$agree/$differ" "$N/0"
# Not all one way: the random packets reached many rules and results.
check "the packets met at least 12 rules (both IPv6 ones) and 5 results" python3 -c '
import json, sys
t = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.strip()]
rules = {r["name"] for x in t for r in x.get("rules", [])}
results = {x.get("result") for x in t}
print("# rules", sorted(rules), "results", sorted(results))
sys.exit(0 if len(rules) >= 12 and {"pong6", "v6-unreach"} <= rules and len(results) >= 5 else 1)' \
	"$WORKDIR/trace.json" "$WORKDIR/trace6.json"

stop_ipmodd
check_eq "ipmodd exits 0" "$?" 0
done_testing
