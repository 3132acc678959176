#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Packet surgery checked by an independent implementation: scapy builds each
# packet, tests/helpers/surgery-apply (src/surgery.c) operates on it, scapy
# parses the outputs back.  set-field for every field of the table
# (surgery-apply -F), strip-tcp-option, split (+ disorder), ipfrag (scapy's
# defragment / defragment6), fake decoys.  Checksums are compared with the
# ones scapy computes itself.  TAP.
#   surgery-scapy.py PATH-TO-surgery-apply
import os
import re
import struct
import subprocess
import sys

from scapy.all import (IP, IPv6, TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply, Raw, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt,
                       defragment, defragment6, conf)

conf.verb = 0
HELPER = sys.argv[1]
n = 0
failed = 0


def ok(cond, what, detail=None):
    global n, failed
    n += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, what))
    if not cond:
        failed += 1
        if detail:
            print("#   " + str(detail).replace("\n", "\n#   "))
    sys.stdout.flush()
    return cond


def run(pkt, *keys, marks=None, seed=1):
    args = [HELPER, "-s", str(seed)]
    if marks:
        args += ["-m", ",".join(str(x) for x in marks)]
    args += list(keys)
    r = subprocess.run(args, input=bytes(pkt), capture_output=True)
    if r.returncode:
        raise RuntimeError("surgery-apply %s: %s" % (" ".join(keys), r.stderr.decode()))
    out, b = [], r.stdout
    while b:
        (ln,) = struct.unpack(">I", b[:4])
        out.append(b[4:4 + ln])
        b = b[4 + ln:]
    skipped = int(r.stderr.decode().split("skipped=")[1].split()[0], 16)
    return out, skipped


def l3(raw):
    return IP(raw) if raw[0] >> 4 == 4 else IPv6(raw)


def csums_ok(raw):
    """Every checksum in raw is what scapy computes for the same bytes."""
    p = l3(raw)
    q = p.copy()
    if IP in q:
        del q[IP].chksum
    frag = (IP in p and (p[IP].flags.MF or p[IP].frag)) or IPv6ExtHdrFragment in p
    for layer in (TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply):
        if layer in q and not frag:
            if layer is UDP and IP in p and p[UDP].chksum == 0:
                continue
            delattr(q[layer], "chksum" if layer in (TCP, UDP, ICMP) else "cksum")
    return bytes(q.__class__(bytes(q))) == raw


S4, D4 = "192.0.2.1", "198.51.100.7"
S6, D6 = "2001:db8::1", "2001:db8:1::2"
PAYLOAD = b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n"


def tcp(v, payload=PAYLOAD, flags="PA", opts=None):
    t = TCP(sport=40000, dport=80, seq=0xfffffff0, ack=77, flags=flags, window=501,
            options=opts if opts is not None else [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 2)),
                                                   ("NOP", None), ("WScale", 7)])
    ip = IP(src=S4, dst=D4, id=0x1234, flags="DF", tos=0xb9) if v == 4 else \
        IPv6(src=S6, dst=D6, tc=0xb9, fl=0x12345)
    return ip / t / Raw(payload)


def udp(v, payload=PAYLOAD):
    ip = IP(src=S4, dst=D4, id=0x4321) if v == 4 else IPv6(src=S6, dst=D6)
    return ip / UDP(sport=5353, dport=53) / Raw(payload)


def icmp(v):
    if v == 4:
        return IP(src=S4, dst=D4) / ICMP(type=8, id=0x77, seq=3) / Raw(b"ping payload")
    return IPv6(src=S6, dst=D6) / ICMPv6EchoRequest(id=0x77, seq=3) / Raw(b"ping payload")


def other(v):
    return (IP(src=S4, dst=D4, proto=253) if v == 4 else IPv6(src=S6, dst=D6, nh=253)) / Raw(b"x" * 16)


# field -> (packet builder, value to set, getter on the parsed packet, expected)
def echo(p):
    return p.payload


FIELDS = {
    "ip.tos": (tcp, "0x5c", lambda p: p[IP].tos, 0x5c),
    "ip.dscp": (tcp, "10", lambda p: p[IP].tos >> 2, 10),
    "ip.ecn": (tcp, "2", lambda p: p[IP].tos & 3, 2),
    "ip.id": (tcp, "0", lambda p: p[IP].id, 0),
    "ip.df": (tcp, "0", lambda p: int(p[IP].flags.DF), 0),
    "ip.mf": (tcp, "1", lambda p: int(p[IP].flags.MF), 1),
    "ip.ttl": (tcp, "3", lambda p: p[IP].ttl, 3),
    "ip.proto": (other, "254", lambda p: p[IP].proto, 254),
    "ip.src": (tcp, "203.0.113.9", lambda p: p[IP].src, "203.0.113.9"),
    "ip.dst": (udp, "203.0.113.10", lambda p: p[IP].dst, "203.0.113.10"),
    "ip6.tc": (tcp, "0x3c", lambda p: p[IPv6].tc, 0x3c),
    "ip6.dscp": (tcp, "46", lambda p: p[IPv6].tc >> 2, 46),
    "ip6.ecn": (tcp, "3", lambda p: p[IPv6].tc & 3, 3),
    "ip6.flowlabel": (tcp, "0xabcde", lambda p: p[IPv6].fl, 0xabcde),
    "ip6.hlim": (tcp, "1", lambda p: p[IPv6].hlim, 1),
    "ip6.nxt": (other, "254", lambda p: p[IPv6].nh, 254),
    "ip6.src": (tcp, "2001:db8:ffff::5", lambda p: p[IPv6].src, "2001:db8:ffff::5"),
    "ip6.dst": (udp, "2001:db8:ffff::6", lambda p: p[IPv6].dst, "2001:db8:ffff::6"),
    "tcp.sport": (tcp, "1234", lambda p: p[TCP].sport, 1234),
    "tcp.dport": (tcp, "8080", lambda p: p[TCP].dport, 8080),
    "tcp.seq": (tcp, "0x80000001", lambda p: p[TCP].seq, 0x80000001),
    "tcp.ack": (tcp, "0", lambda p: p[TCP].ack, 0),
    "tcp.flags": (tcp, "0x11", lambda p: int(p[TCP].flags), 0x11),
    "tcp.window": (tcp, "1024", lambda p: p[TCP].window, 1024),
    "tcp.urg": (tcp, "7", lambda p: p[TCP].urgptr, 7),
    "udp.sport": (udp, "999", lambda p: p[UDP].sport, 999),
    "udp.dport": (udp, "1000", lambda p: p[UDP].dport, 1000),
    "icmp.type": (icmp, "0", lambda p: echo(p).type, 0),
    "icmp.code": (icmp, "5", lambda p: echo(p).code, 5),
    "icmp.id": (icmp, "4660", lambda p: echo(p).id, 4660),
    "icmp.seq": (icmp, "9", lambda p: echo(p).seq, 9),
}

table = subprocess.run([HELPER, "-F"], capture_output=True, text=True, check=True).stdout.split()
ok(sorted(table) == sorted(FIELDS), "the script knows every field of the table (%d)" % len(table),
   set(table) ^ set(FIELDS))
# The man page names the same fields (ipmodd.conf(5), set-field), no more, no less.
srcdir = os.environ.get("SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
with open(os.path.join(srcdir, "man", "ipmodd.conf.5")) as f:
    man = f.read()
start = man.index(".BR set\\-field ")
section = man[start:man.index("\n.TP", start)]
documented = re.findall(r"^\.BR? ((?:ip6?|tcp|udp|icmp)\.[a-z]+)", section, re.M)
ok(set(documented) == set(table), "ipmodd.conf(5) names every field of the table under set-field (%d)"
   % len(set(documented)), set(documented) ^ set(table))
for name in table:
    if name not in FIELDS:
        continue
    build, val, get, want = FIELDS[name]
    fams = [4] if name.startswith("ip.") else [6] if name.startswith("ip6.") else [4, 6]
    for v in fams:
        pkt = build(v)
        if name == "icmp.type" and v == 6:
            val, want = "129", 129	# echo reply: scapy still has a class for it
        out, skipped = run(pkt, "set-field=%s=%s" % (name, val))
        if not ok(len(out) == 1 and len(out[0]) == len(bytes(pkt)) and not skipped,
                  "v%d set-field %s=%s: one packet, same length" % (v, name, val)):
            continue
        p = l3(out[0])
        got = get(p)
        ok(got == want, "v%d %s: scapy reads %r" % (v, name, want), "got %r" % (got,))
        ok(csums_ok(out[0]), "v%d %s: checksums equal scapy's" % (v, name), l3(out[0]).show2(dump=True))
        # the other family's packet: skipped, unchanged
    if name.startswith(("ip.", "ip6.")):
        pkt = build(6 if name.startswith("ip.") else 4)
        out, skipped = run(pkt, "set-field=%s=%s" % (name, val))
        ok(out == [bytes(pkt)] and skipped & 0x20, "%s on the other family: skipped, unchanged" % name)

# several at once
pkt = tcp(4)
out, _ = run(pkt, "set-field=tcp.window=1024 ip.df=1 ip.id=0 ip.ttl=9 ip.src=10.1.2.3 tcp.seq=5")
p = l3(out[0])
ok(p[TCP].window == 1024 and p[IP].id == 0 and p[IP].ttl == 9 and p[IP].src == "10.1.2.3" and p[TCP].seq == 5
   and csums_ok(out[0]), "six fields at once: values and checksums")

# strip-tcp-option
for v in (4, 6):
    out, _ = run(tcp(v), "strip-tcp-option=timestamp,sack-perm")
    p = l3(out[0])
    names = [o[0] for o in p[TCP].options]
    ok("Timestamp" not in names and "SAckOK" not in names and "MSS" in names and "WScale" in names
       and len(out[0]) == len(bytes(tcp(v))) and csums_ok(out[0]),
       "v%d strip-tcp-option: timestamp and sack-perm gone (NOPs), mss/wscale kept, sums right" % v, names)

# split and disorder
sni = PAYLOAD.index(b"www.example.com")
for v in (4, 6):
    for spec, marks, cuts in (("1", None, [1]), ("5,-3", None, [5, len(PAYLOAD) - 3]),
                              ("host", (-1, -1, sni, 15), [sni]), ("sni+2", (sni, 15, -1, -1), [sni + 2]),
                              ("midsld", (sni, 15, -1, -1), [sni + 7])):
        for dis in (False, True):
            keys = ["split=" + spec] + (["disorder=true"] if dis else [])
            out, _ = run(tcp(v), *keys, marks=marks)
            parts = [l3(o) for o in out]
            if dis:
                parts.reverse()
            bounds = [0] + cuts + [len(PAYLOAD)]
            ok(len(parts) == len(cuts) + 1
               and all(bytes(p[TCP].payload) == PAYLOAD[bounds[i]:bounds[i + 1]] for i, p in enumerate(parts))
               and all(p[TCP].seq == (0xfffffff0 + bounds[i]) % 2**32 for i, p in enumerate(parts))
               and all(("P" in p[TCP].flags) == (i == len(parts) - 1) for i, p in enumerate(parts))
               and all(csums_ok(o) for o in out),
               "v%d split=%s%s: payloads, seqs, PSH only last, sums (scapy)" % (v, spec, " disorder" if dis else ""))

# ipfrag
big = bytes(range(256)) * 5
for v in (4, 6):
    for kind, build in (("UDP", udp), ("TCP", tcp)):
        pkt = build(v, big)
        out, _ = run(pkt, "ipfrag=64")
        frags = [l3(o) for o in out]
        if v == 4:
            ok(len(frags) == 2 and frags[0][IP].flags.MF and not frags[0][IP].flags.DF and frags[1][IP].frag == 8
               and frags[0][IP].id == frags[1][IP].id == pkt[IP].id and all(csums_ok(o) for o in out),
               "v4 %s ipfrag=64: two fragments, MF, DF clear, offset 8, ID kept, header sums" % kind)
            whole = defragment(frags)
            whole = [w for w in whole if not (w[IP].flags.MF or w[IP].frag)]
        else:
            ok(len(frags) == 2 and IPv6ExtHdrFragment in frags[0] and frags[0][IPv6ExtHdrFragment].m == 1
               and frags[1][IPv6ExtHdrFragment].offset == 8
               and frags[0][IPv6ExtHdrFragment].id == frags[1][IPv6ExtHdrFragment].id,
               "v6 %s ipfrag=64: two fragments with fragment headers, M, offset 8, one ID" % kind)
            whole = [defragment6(frags)]
        w = whole[0] if whole else None
        ok(w is not None and bytes(w[kind == "UDP" and UDP or TCP].payload) == big and csums_ok(bytes(w)),
           "v%d %s: scapy reassembles the original data, L4 checksum right" % (v, kind))

# IPv6 with extension headers: the fragment header goes after hop-by-hop, before destination options
pkt = IPv6(src=S6, dst=D6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(sport=1, dport=2) / Raw(big)
out, _ = run(pkt, "ipfrag=64")
frags = [l3(o) for o in out]
ok(len(frags) == 2 and all(f[IPv6].nh == 0 and f[IPv6ExtHdrHopByHop].nh == 44 for f in frags)
   and frags[0][IPv6ExtHdrFragment].nh == 60,
   "v6 hop-by-hop + destination options: fragment header after hop-by-hop, next header 60",
   [f.summary() for f in frags])
w = defragment6(frags)
ok(IPv6ExtHdrDestOpt in w and bytes(w[UDP].payload) == big and csums_ok(bytes(w)),
   "v6 with extension headers: scapy reassembles the original data")

# fake decoys
for v in (4, 6):
    pkt = tcp(v)
    out, _ = run(pkt, "fake=zero", "fake-ttl=1", "fake-badseq=true", "fake-repeats=2")
    d = [l3(o) for o in out]
    ttl = (lambda p: p[IP].ttl) if v == 4 else (lambda p: p[IPv6].hlim)
    ok(len(out) == 3 and out[2] == bytes(pkt) and out[0] == out[1] and ttl(d[0]) == 1
       and d[0][TCP].seq == (0xfffffff0 - 10000000) % 2**32 and bytes(d[0][TCP].payload) == b"\0" * len(PAYLOAD)
       and csums_ok(out[0]),
       "v%d fake=zero fake-ttl=1 fake-badseq fake-repeats=2: two decoys, then the real packet" % v)
    out, _ = run(tcp(v, opts=[("MSS", 1460)]), "fake=hex:16030100", "fake-badsum=true", "fake-md5sig=true")
    d = l3(out[0])
    names = [o[0] for o in d[TCP].options]
    ok(bytes(d[TCP].payload) == b"\x16\x03\x01\x00" and 19 in [o[0] if isinstance(o[0], int) else
                                                                {"MD5": 19}.get(o[0]) for o in d[TCP].options]
       and not csums_ok(out[0]),
       "v%d fake=hex fake-md5sig fake-badsum: hex payload, option 19, scapy finds the sum wrong" % v, names)
    out, _ = run(udp(v), "fake=random")
    d = l3(out[0])
    ok(len(out) == 2 and len(out[0]) == len(out[1]) and bytes(d[UDP].payload) != PAYLOAD and csums_ok(out[0]),
       "v%d UDP fake=random: same length, other bytes, checksums right" % v)

print("1..%d" % n)
sys.exit(1 if failed else 0)
