#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Malformed packets in the diverted path.  Crafted IPv4 and IPv6 packets are
# sent from the host namespace with raw sockets (IP_HDRINCL, so the route to
# tun0 is the real one), and, for the shapes the kernel will not route, put
# straight on tun0's transmit queue with a packet socket (as any local root
# process can).  For each class the daemon stays alive, "ipmodctl status"
# counts it under the right malformed-* counter and writes nothing back;
# odd but valid packets (option padding, long extension chains, zero-length
# and 64 KiB payloads, overlapping fragments) pass byte for byte; tshark finds
# no malformed frame among those the daemon wrote (tun0, inbound) or the peer
# received; normal traffic still flows afterwards.
#
# Destinations tell the packets apart in the captures:
#   198.18.1.66  2001:db8:1::66   malformed: must never be written back
#   198.18.1.77  2001:db8:1::77   odd but valid: passed on unchanged
#   198.18.1.78                   valid TCP SYNs that the clamp-mss rule rewrites
#   198.18.1.79                   valid for the daemon, refused by the kernel
#                                 when it is written back (never at the peer)
#   198.18.1.80                   valid, but the kernel's forwarding rewrites it
#   198.18.1.88                   the echo-reply rule's address
. "$(dirname "$0")/lib.sh"
# What the daemon's parser does with odd and malformed packets, counted as
# written back by it: the eBPF fast path would send the valid ones on itself.
FASTPATH=off

require_root
require_cmd ping tcpdump tshark python3 nstat
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
# MTU 65535 end to end, so a 64 KiB packet is routed whole and arrives whole.
write_config "$CONF" 'rules = (
	{ name = "mss"; proto = "tcp"; tcp-flags = "syn"; clamp-mss = 536; },
	{ name = "echo"; proto = "icmp"; icmp-type = "echo-request"; dst = "198.18.1.88"; verdict = "reply"; }
);'
sed -i 's/mtu = 1500;/mtu = 65535;/' "$CONF"
hx ip link set veth0 mtu 65535
px ip link set veth0 mtu 65535
# The peer answers for the whole IPv6 range too, as it does for 198.18.1.0/24.
px ip -6 route add local 2001:db8:1::/64 dev lo

check "ipmodd starts with tun0 at MTU 65535" start_ipmodd "$CONF"
check "ping works before the crafted packets" hx ping -c 2 -i 0.2 -W 1 "$PEER4"

pcap_start tunout "$HOST_NS" tun0 -Q out
pcap_start tunin "$HOST_NS" tun0 -Q in
pcap_start peer "$PEER_NS" veth0 "src host $HOST4 or src host $HOST6"

cat >"$WORKDIR/craft.py" <<'PY'
# Crafts, sends and checks.  Prints "ok - ...", "not ok - ...", "skip - ... # why"
# and "diag - ..." lines for the shell to number.
import errno, os, socket, struct, sys, time

SOCK, PID = sys.argv[1], int(sys.argv[2])
H4, H6 = "198.18.0.1", "2001:db8:77::1"
BAD4, ODD4, MSS4, KREJ4, ECHO4 = "198.18.1.66", "198.18.1.77", "198.18.1.78", "198.18.1.79", "198.18.1.88"
ODD4X = "198.18.1.80"
BAD6, ODD6 = "2001:db8:1::66", "2001:db8:1::77"
CLASSES = ["truncated", "bad-version", "bad-hdrlen", "bad-length", "bad-options", "bad-exthdr", "bad-l4"]
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
HBH, TCP, UDP, RT, FRAG, AH, ICMP6, NONXT, DSTOPTS = 0, 6, 17, 43, 44, 51, 58, 59, 60

def out(kind, text):
    print(f"{kind} - {text}", flush=True)

# ---- control socket ----------------------------------------------------------
def status():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(SOCK)
    s.sendall(b"get=status\n\n")
    data = b""
    while not data.endswith(b"\n\n"):
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    st = {}
    for line in data.decode().splitlines():
        k, _, v = line.partition("=")
        if k:
            st[k] = int(v) if v.isdigit() else v
    return st

# ---- packet building -------------------------------------------------------------
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def a4(a): return socket.inet_aton(a)
def a6(a): return socket.inet_pton(socket.AF_INET6, a)

def ip4(dst, proto, payload=b"", opts=b"", ihl=None, tot=None, ver=4, frag=0, ident=0x4242, ttl=64):
    if ihl is None:
        ihl = 5 + len(opts) // 4
    if tot is None:
        tot = 20 + len(opts) + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", ver << 4 | ihl, 0, tot & 0xFFFF, ident, frag, ttl, proto, 0,
                    a4(H4), a4(dst)) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload

def ip6(dst, nh, payload=b"", plen=None, hlim=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload) if plen is None else plen, nh, hlim,
                       a6(H6), a6(dst)) + payload

def l4sum(fam, dst, proto, seg):
    if fam == 4:
        ph = struct.pack("!4s4sBBH", a4(H4), a4(dst), 0, proto, len(seg))
    else:
        ph = struct.pack("!16s16sIxxxB", a6(H6), a6(dst), len(seg), proto)
    return csum(ph + seg)

def udp(fam, dst, data=b"", length=None, sport=40000, dport=9):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data) if length is None else length, 0) + data
    c = l4sum(fam, dst, UDP, seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]

def tcp(fam, dst, flags=0x02, opts=b"", doff=None, data=b"", sport=40001, dport=80):
    if doff is None:
        doff = 5 + len(opts) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, doff << 4, flags, 64240, 0, 0) + opts + data
    return seg[:16] + struct.pack("!H", l4sum(fam, dst, TCP, seg)) + seg[18:]

def icmp_echo(data=b"ping"):
    m = struct.pack("!BBHHH", 8, 0, 0, 0x77, 1) + data
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]

def ext(nh, body):
    """An 8-octet-unit extension header (hop-by-hop, routing, destination options) around body."""
    body = body + b"\0" * (-(len(body) + 2) % 8)
    return bytes([nh, (len(body) + 2) // 8 - 1]) + body

def padn(n):
    """Option bytes filling n octets: PadN (or Pad1 for a single octet)."""
    return b"\0" if n == 1 else bytes([1, n - 2]) + b"\0" * (n - 2)

def skipopts(n):
    """Unknown options that a receiver skips (type 0x1e), filling n octets (n != 1)."""
    o = b""
    while n > 0:
        k = min(n, 257)
        if n - k == 1:
            k -= 2
        o += bytes([0x1E, k - 2]) + b"\xee" * (k - 2)
        n -= k
    return o

def dstopts_chain(n, last):
    """n destination options headers, each 8 octets of PadN, ending in protocol last."""
    d = b""
    for i in range(n):
        d += ext(DSTOPTS if i < n - 1 else last, padn(6))
    return d

def frag6(nh, off8, more, ident=0x4242):
    return struct.pack("!BBHI", nh, 0, off8 << 3 | (1 if more else 0), ident)

# ---- sending -------------------------------------------------------------------------
def dst_of(pkt):
    if pkt and pkt[0] >> 4 == 6 and len(pkt) >= 40:
        return socket.AF_INET6, socket.inet_ntop(socket.AF_INET6, pkt[24:40])
    if len(pkt) >= 20:
        return socket.AF_INET, socket.inet_ntoa(pkt[16:20])
    return socket.AF_INET, BAD4

def send_routed(pkt, fam=None, dst=None):
    """A raw socket with IP_HDRINCL (implied by IPPROTO_RAW): routed like any local packet."""
    f, d = dst_of(pkt)
    fam, dst = fam or f, dst or d
    s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    try:
        s.sendto(pkt, (dst, 0))
        return 0
    except OSError as e:
        return e.errno
    finally:
        s.close()

def send_injected(pkt):
    """A packet socket on tun0: bypasses routing, the bytes reach the daemon as they are."""
    proto = ETH_P_IPV6 if pkt and pkt[0] >> 4 == 6 else ETH_P_IP
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(proto))
    try:
        s.sendto(pkt, ("tun0", proto))
        return 0
    except OSError as e:
        return e.errno
    finally:
        s.close()

def ename(e):
    return errno.errorcode.get(e, str(e))

FIGURES = {"sent": 0, "malformed": 0, "passed": 0}

def deltas(a, b):
    d = {c: b["malformed-" + c] - a["malformed-" + c] for c in CLASSES}
    d["tx"] = b["tx-packets"] - a["tx-packets"]
    d["rx"] = b["rx-packets"] - a["rx-packets"]
    d["dropped"] = b["dropped-rule"] - a["dropped-rule"]
    d["forge-refused"] = b["forge-refused"] - a["forge-refused"]
    return d

def run(what, pkts, expect, send=send_routed, extra=None):
    """Send pkts; expect is a malformed class (each counted there, none written back),
    "pass" (all written back) or "refused" (a forging rule refused: dropped)."""
    before = status()
    errs = [e for e in (send(p) for p in pkts) if e]
    if errs:
        out("not ok", f"{what}: the kernel refused {len(errs)} of {len(pkts)} ({ename(errs[0])})")
        return
    n = len(pkts)
    deadline = time.time() + 5
    while True:
        d = deltas(before, status())
        if d["rx"] >= n or time.time() > deadline:
            break
        time.sleep(0.02)
    time.sleep(0.05)
    d = deltas(before, status())
    want = {c: 0 for c in CLASSES}
    want.update(rx=n, tx=0, dropped=0)
    want["forge-refused"] = 0
    if expect == "pass":
        want["tx"] = n
    elif expect == "refused":
        want["forge-refused"] = n
    else:
        want[expect] = n
    if extra:
        want.update(extra)
    # The host's own traffic may cross the daemon meanwhile (it is diverted
    # too): a packet read and written back whole.  When no crafted packet may
    # be written, every write is such a packet, read as well; a crafted one
    # written back instead would be missing from its malformed class.
    stray = d["tx"] if expect in CLASSES else 0
    if stray:
        want.update(rx=n + stray, tx=stray)
        out("diag", f"{what}: {stray} packet(s) of the host's own traffic crossed the daemon meanwhile")
    alive = os.path.exists(f"/proc/{PID}")
    bad = {k: (d[k], v) for k, v in want.items() if d[k] != v}
    FIGURES["sent"] += n
    if expect in CLASSES:
        FIGURES["malformed"] += n
        tail = f"malformed-{expect} +{n}, nothing written"
    elif expect == "pass":
        FIGURES["passed"] += n
        tail = f"all {n} written back"
    else:
        tail = f"forge-refused +{n}, nothing written"
    if alive and not bad:
        out("ok", f"{what}: {tail}")
    else:
        out("not ok", f"{what}: {tail}")
        out("diag", f"alive={alive} (got, want): {bad}")

def refused_by_kernel(what, pkts, why, send=send_routed):
    """Shapes the routed path never hands to a tun: check that, and say so as a SKIP."""
    errs = [send(p) for p in pkts]
    if all(e == errno.EINVAL for e in errs):
        out("skip", f"{what} # SKIP the kernel never routes this shape to a tun: {why} "
                    f"(sendto: EINVAL for all {len(pkts)}); injected below")
    else:
        out("not ok", f"{what}: expected EINVAL from the kernel, got {[ename(e) for e in errs]}")

# ============================ IPv4, routed ============================================
dgram = ip4(BAD4, UDP, udp(4, BAD4, b"x" * 20))	# 48 bytes
refused_by_kernel("routed IPv4 cut inside the IP header (1..19 bytes)",
                  [dgram[:n] for n in range(1, 20)], "raw_send_hdrinc() needs 20 bytes")
refused_by_kernel("routed IPv4 with IHL 0..4",
                  [ip4(BAD4, UDP, udp(4, BAD4, b"x" * 12), ihl=i) for i in range(5)],
                  "raw_send_hdrinc() needs IHL >= 5")
refused_by_kernel("routed IPv4 whose IHL runs past the buffer (IHL 15, 20..59 bytes)",
                  [ip4(BAD4, UDP, ihl=15, opts=b"\1" * 40)[:n] for n in range(20, 60)],
                  "raw_send_hdrinc() refuses IHL*4 > length")
out("skip", "routed IPv4 whose total length disagrees with the buffer # SKIP the kernel never "
            "routes this shape to a tun: raw(7) with IP_HDRINCL always fills in Total Length; "
            "injected below")

# A whole datagram cut at every length the kernel routes: the kernel makes the
# total length match, so what is cut is the L4 header or, for UDP, the data
# its length field announces.
syn = tcp(4, BAD4, opts=b"\x02\x04\x05\xb4")
run("routed IPv4 TCP cut at every length 20..43", [ip4(BAD4, TCP, syn)[:n] for n in range(20, 44)], "bad-l4")
run("routed IPv4 UDP cut at every length 20..47", [dgram[:n] for n in range(20, 48)], "bad-l4")
echo = ip4(BAD4, 1, icmp_echo())
run("routed IPv4 ICMP echo cut at every length 20..27", [echo[:n] for n in range(20, 28)], "bad-l4")
unreach = ip4(BAD4, 1, struct.pack("!BBHI", 3, 1, 0, 0))
run("routed IPv4 ICMP unreachable cut at every length 20..23", [unreach[:n] for n in range(20, 24)], "bad-l4")

run("routed IP versions 0-3, 5 and 7-15",
    [ip4(BAD4, UDP, udp(4, BAD4, b"v"), ver=v) for v in range(16) if v not in (4, 6)], "bad-version")

# Option TLVs that do not fit the header.
u = udp(4, BAD4, b"opts")
run("routed IPv4 options with a TLV length of 0, 1, past the header, or a type byte alone at the end",
    [ip4(BAD4, UDP, u, opts=o) for o in (
        b"\x07\x00\x00\x00",			# RR, length 0
        b"\x44\x01\x00\x00",			# timestamp, length 1
        b"\x07\x08\x04\x00",			# RR, length 8 in 4 octets
        b"\x01\x01\x01\x83",			# NOPs, then LSRR's type with no length
        b"\x01" * 36 + b"\x86\x05\x00\x00",	# CIPSO, 5 octets in the last 4 (IHL 15)
        b"\x94\x29" + b"\0" * 38,		# router alert, length 41 in 40 octets (IHL 15)
    )], "bad-options")

# L4 headers that lie.
run("routed IPv4 TCP with data offset 0..4 and 15 (past the segment)",
    [ip4(BAD4, TCP, tcp(4, BAD4, doff=d, data=b"x" * 20)) for d in range(5)] +
    [ip4(BAD4, TCP, tcp(4, BAD4, doff=15))], "bad-l4")
run("routed IPv4 UDP with length 0..7 and one past the datagram",
    [ip4(BAD4, UDP, udp(4, BAD4, b"abcd", length=l)) for l in list(range(8)) + [13]], "bad-l4")

# Odd but valid: passed on unchanged.
u = udp(4, ODD4, b"odd")
run("routed IPv4 with NOP options, an unknown option, 40 octets of NOPs",
    [ip4(ODD4, UDP, u, opts=o) for o in (b"\x01" * 4, b"\x9e\x04\x00\x00", b"\x01" * 40)], "pass")
# After EOL the rest of the options is padding, whatever it holds: valid (the
# kernel forwards it with the padding zeroed, so it is not compared byte for byte).
run("routed IPv4 with EOL then junk in the options",
    [ip4(ODD4X, UDP, udp(4, ODD4X, b"eol"), opts=b"\x00\xff\xff\xff")], "pass")
run("routed IPv4 zero-length payloads: protocol 253, UDP, TCP ACK, ICMP echo to a passing address",
    [ip4(ODD4, 253), ip4(ODD4, UDP, udp(4, ODD4)),
     ip4(ODD4, TCP, tcp(4, ODD4, flags=0x10)), ip4(ODD4, 1, icmp_echo(b""))], "pass")
run("routed IPv4 of 65535 bytes (UDP)", [ip4(ODD4, UDP, udp(4, ODD4, b"J" * (65535 - 28)))], "pass")
# Fragments: overlapping ones, a first fragment cut inside its TCP header, a
# last fragment that ends past 64 KiB.  Each is passed on as it is; the peer's
# reassembly discards them.
body = udp(4, ODD4, b"A" * 40)
run("routed IPv4 fragments: overlapping pair, tiny first, one ending past 64 KiB",
    [ip4(ODD4, UDP, body[:24], frag=0x2000, ident=0x100),
     ip4(ODD4, UDP, b"B" * 32, frag=1, ident=0x100),
     ip4(ODD4, TCP, tcp(4, ODD4, flags=0x10)[:8], frag=0x2000, ident=0x101),
     ip4(ODD4, UDP, b"C" * 24, frag=8191, ident=0x102)], "pass")
# clamp-mss on SYNs with odd option layouts: the MSS behind a NOP (odd
# offset), an MSS whose value lies past the data offset, an MSS after
# timestamps.  (An MSS hidden in the padding after EOL would test the same
# bound, but tshark rightly calls non-zero padding an error.)
run("routed IPv4 SYNs with odd option layouts through clamp-mss",
    [ip4(MSS4, TCP, tcp(4, MSS4, opts=o)) for o in (
        b"\x01\x02\x04\x05\xb4\x01\x01\x01",	# NOP, MSS 1460 at an odd offset
        b"\x01\x01\x01\x01\x01\x01\x02\x04",	# MSS whose value lies past the header
        b"\x01\x01\x08\x0a" + b"\0" * 8 + b"\x02\x04\xff\xff",	# timestamps, then MSS 65535
    )], "pass")
# A reply rule never answers a fragment (RFC 792 echo: the whole payload is needed).
run("routed IPv4 echo request in a first fragment to a reply rule",
    [ip4(ECHO4, 1, icmp_echo(b"F" * 16), frag=0x2000)], "refused", extra={"dropped": 1})
# Valid for the daemon, not for the kernel: a record-route option whose
# pointer is before the first slot.  The daemon passes it on (its TLV is
# sound); the kernel's input path drops it with a parameter problem.
run("routed IPv4 record-route option with pointer 1 (the kernel drops it on write-back)",
    [ip4(KREJ4, UDP, udp(4, KREJ4, b"rr"), opts=b"\x07\x07\x01\0\0\0\0\0")], "pass")

# ============================ IPv6, routed ============================================
d6 = ip6(BAD6, DSTOPTS, ext(UDP, padn(6)) + udp(6, BAD6, b"y" * 24))	# 80 bytes
refused_by_kernel("routed IPv6 cut inside the IPv6 header (1..39 bytes)",
                  [d6[:n] for n in range(1, 40)], "rawv6_send_hdrinc() needs 40 bytes")
# The kernel leaves the payload length as it is: every cut reaches the daemon.
run("routed IPv6 cut at every length 40..79 (payload length says 40)", [d6[:n] for n in range(40, 80)],
    "truncated")
run("routed IPv6 with a payload length short of the buffer by 1, by 8, or 0",
    [ip6(BAD6, UDP, udp(6, BAD6, b"z" * 16), plen=p) for p in (23, 16, 0)], "bad-length")
cut = lambda pkt, n: pkt[:4] + struct.pack("!H", n - 40) + pkt[6:n]
run("routed IPv6 cut inside a destination options header (41..47, lengths consistent)",
    [cut(d6, n) for n in range(41, 48)], "bad-exthdr")
run("routed IPv6 cut inside UDP or short of its length (48..79, lengths consistent)",
    [cut(d6, n) for n in range(48, 80)], "bad-l4")

u6 = udp(6, BAD6, b"chain")
run("routed IPv6 extension chains: 9, 64 and 200 destination options headers",
    [ip6(BAD6, DSTOPTS, dstopts_chain(k, UDP) + u6) for k in (9, 64, 200)], "bad-exthdr")
run("routed IPv6 extension chains that loop back: hop-by-hop after another header, twice, "
    "two fragment headers, 9 routing headers",
    [ip6(BAD6, DSTOPTS, ext(HBH, padn(6)) + ext(UDP, padn(6)) + u6),
     ip6(BAD6, HBH, ext(HBH, padn(6)) + ext(UDP, padn(6)) + u6),
     ip6(BAD6, FRAG, frag6(FRAG, 0, True) + frag6(UDP, 0, True) + u6),
     ip6(BAD6, RT, b"".join(ext(RT if i < 8 else UDP, b"\0\0" + b"\0" * 4) for i in range(9)) + u6)],
    "bad-exthdr")
run("routed IPv6 extension headers cut short: length past the packet, 4 bytes of a header, "
    "a fragment header of 4, an AH past the end",
    [ip6(BAD6, DSTOPTS, bytes([UDP, 1]) + padn(6)),
     ip6(BAD6, DSTOPTS, bytes([UDP, 255]) + padn(6) + u6),
     ip6(BAD6, DSTOPTS, bytes([UDP, 0, 1, 0])),
     ip6(BAD6, FRAG, frag6(UDP, 0, True)[:4]),
     ip6(BAD6, AH, bytes([UDP, 4]) + b"\0" * 10)], "bad-exthdr")
run("routed IPv6 option TLVs past their header (hop-by-hop, destination options)",
    [ip6(BAD6, HBH, bytes([UDP, 0, 1, 5]) + b"\0" * 4 + u6),
     ip6(BAD6, DSTOPTS, bytes([UDP, 0, 0x1e, 5]) + b"\0" * 4 + u6)], "bad-exthdr")
jumbo = bytes([UDP, 0, 0xC2, 4]) + struct.pack("!I", 70000)
run("routed IPv6 jumbogram option, payload length 0 or the real one",
    [ip6(BAD6, HBH, jumbo + u6, plen=0), ip6(BAD6, HBH, jumbo + u6)], "bad-length")
run("routed IPv6 UDP with length 0..7 and TCP with data offset 0..4",
    [ip6(BAD6, UDP, udp(6, BAD6, b"abcd", length=l)) for l in range(8)] +
    [ip6(BAD6, TCP, tcp(6, BAD6, doff=d, data=b"x" * 20)) for d in range(5)], "bad-l4")

u6 = udp(6, ODD6, b"odd")
run("routed IPv6 odd but valid: 8 destination options headers, one of 2048 octets, "
    "a routing header with no segments left",
    [ip6(ODD6, DSTOPTS, dstopts_chain(8, UDP) + u6),
     ip6(ODD6, DSTOPTS, bytes([UDP, 255]) + skipopts(2046) + u6),
     ip6(ODD6, RT, bytes([UDP, 0, 0, 0]) + b"\0" * 4 + u6)], "pass")
run("routed IPv6 zero-length payloads: no next header, UDP, TCP ACK",
    [ip6(ODD6, NONXT), ip6(ODD6, UDP, udp(6, ODD6)), ip6(ODD6, TCP, tcp(6, ODD6, flags=0x10))], "pass")
run("routed IPv6 of 65535 bytes (UDP)", [ip6(ODD6, UDP, udp(6, ODD6, b"J" * (65535 - 48)))], "pass")
body6 = udp(6, ODD6, b"A" * 40)
run("routed IPv6 fragments: overlapping pair, a first fragment cut inside UDP",
    [ip6(ODD6, FRAG, frag6(UDP, 0, True, 0x200) + body6[:24]),
     ip6(ODD6, FRAG, frag6(UDP, 1, False, 0x200) + b"B" * 32),
     ip6(ODD6, FRAG, frag6(UDP, 0, True, 0x201) + body6[:4])], "pass")

# ============================ injected on tun0 ============================================
# Shapes the routed path cannot make, on tun0's transmit queue directly.
ok4 = ip4(BAD4, UDP, udp(4, BAD4, b"inj"))
ok6 = ip6(BAD6, UDP, udp(6, BAD6, b"inj"))
run("injected control: a valid UDP datagram on tun0's queue",
    [ip4(ODD4, UDP, udp(4, ODD4, b"inj"))], "pass", send=send_injected)
e = send_injected(b"")
if e == errno.EINVAL:
    out("skip", "a 0-byte packet # SKIP the kernel never hands one to a tun: packet_snd() refuses "
                "it (EINVAL) and routing needs a header")
else:
    out("not ok", f"a 0-byte packet on tun0: expected EINVAL, got {ename(e) if e else 'sent'}")
run("injected IPv4 cut at every length 1..19", [ok4[:n] for n in range(1, 20)], "truncated",
    send=send_injected)
run("injected IPv6 cut at every length 1..39", [ok6[:n] for n in range(1, 40)], "truncated",
    send=send_injected)
run("injected IPv4 with IHL 0..4", [ip4(BAD4, UDP, ihl=i, tot=20) for i in range(5)], "bad-hdrlen",
    send=send_injected)
run("injected IPv4 whose IHL 6..15 runs past the 20-byte buffer",
    [ip4(BAD4, UDP, ihl=i, tot=20) for i in range(6, 16)], "bad-hdrlen", send=send_injected)
run("injected IPv4 with a total length larger than the buffer (by 1, 65535)",
    [ip4(BAD4, UDP, udp(4, BAD4, b"inj"), tot=t) for t in (32, 65535)], "truncated", send=send_injected)
run("injected IPv4 with a total length smaller than the buffer or its header (30, 20 or 19 of 31, 0)",
    [ip4(BAD4, UDP, udp(4, BAD4, b"inj"), tot=t) for t in (30, 20, 19, 0)], "bad-length",
    send=send_injected)
e = send_injected(b"\x45" + b"\0" * 65535)
if e == errno.EMSGSIZE:
    out("skip", "a packet longer than 65535 bytes # SKIP no tun takes one: the MTU of a tun is at most "
                "65535 (packet_snd: EMSGSIZE), and nothing longer is routed to it")
else:
    out("not ok", f"a 65536-byte packet on tun0: expected EMSGSIZE, got {ename(e) if e else 'sent'}")

st = status()
out("diag", f"sent {FIGURES['sent']} crafted packets: {FIGURES['malformed']} malformed, "
            f"{FIGURES['passed']} passed; totals: " +
            " ".join(f"{c}={st['malformed-' + c]}" for c in CLASSES) +
            f" rx={st['rx-packets']} tx={st['tx-packets']} write-errors={st['write-errors']}")
PY

while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	"skip - "*) ok "${line#skip - }" ;;
	"diag - "*) diag "${line#diag - }" ;;
	*) diag "$line" ;;
	esac
done < <(ip netns exec "$HOST_NS" timeout 60 python3 "$WORKDIR/craft.py" "$SOCK" "$IPMODD_PID" 2>&1)

check "ipmodd is still running" kill -0 "$IPMODD_PID"
pcap_stop tunout
pcap_stop tunin
pcap_stop peer

# --- what the daemon wrote and what the peer received -------------------------------
# Frames by destination from a capture (tun0: raw IP; the peer: Ethernet), as hex.
cat >"$WORKDIR/frames.py" <<'PY'
import socket, struct, sys
def frames(path):
    d = open(path, "rb").read()
    e = "<" if d[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    link = struct.unpack(e + "I", d[20:24])[0]
    off = 24
    while off + 16 <= len(d):
        incl = struct.unpack(e + "I", d[off + 8:off + 12])[0]
        f = d[off + 16:off + 16 + incl]
        off += 16 + incl
        if link == 1:
            if f[12:14] not in (b"\x08\x00", b"\x86\xdd"):
                continue
            f = f[14:]
        yield f
def dst(f):
    if f and f[0] >> 4 == 4 and len(f) >= 20:
        return socket.inet_ntoa(f[16:20])
    if f and f[0] >> 4 == 6 and len(f) >= 40:
        return socket.inet_ntop(socket.AF_INET6, f[24:40])
    return "?"
want = set(sys.argv[2:])
for f in frames(sys.argv[1]):
    if dst(f) in want:
        print(f.hex())
PY
frames() { python3 "$WORKDIR/frames.py" "$@" | sort; }
TSHARK_OPTS=(-o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE
	-o ip.defragment:FALSE -o ipv6.defragment:FALSE)
# malformed_frames FILE: frames tshark calls malformed, or that carry an error
# (a bad checksum is one).
malformed_frames() {
	tshark -r "$1" "${TSHARK_OPTS[@]}" -Y '_ws.malformed || _ws.expert.severity == "Error"' \
		-T fields -e frame.number -e ip.dst -e ipv6.dst -e _ws.expert.message 2>/dev/null >"$1.bad"
	sed 's/^/# malformed: /' "$1.bad" >&2
	wc -l <"$1.bad"
}

written=$(tshark -r "$WORKDIR/tunin.pcap" 2>/dev/null | wc -l)
diag "tun0: $(tshark -r "$WORKDIR/tunout.pcap" 2>/dev/null | wc -l) frames to the daemon, $written from it"
check_eq "the daemon wrote none of the malformed packets back" \
	"$(frames "$WORKDIR/tunin.pcap" 198.18.1.66 2001:db8:1::66 | wc -l)" 0
check_eq "tshark finds no malformed frame among those the daemon wrote ($written)" \
	"$(malformed_frames "$WORKDIR/tunin.pcap")" 0
check_eq "no malformed packet reached the peer" \
	"$(frames "$WORKDIR/peer.pcap" 198.18.1.66 2001:db8:1::66 | wc -l)" 0
check_eq "tshark finds no malformed frame at the peer" "$(malformed_frames "$WORKDIR/peer.pcap")" 0
frames "$WORKDIR/tunout.pcap" 198.18.1.77 2001:db8:1::77 >"$WORKDIR/odd.sent"
frames "$WORKDIR/peer.pcap" 198.18.1.77 2001:db8:1::77 >"$WORKDIR/odd.peer"
check_eq "the daemon was handed the 23 odd but valid packets" "$(wc -l <"$WORKDIR/odd.sent")" 23
check "... and they reached the peer byte for byte" cmp "$WORKDIR/odd.sent" "$WORKDIR/odd.peer"
mss=$(tshark -r "$WORKDIR/peer.pcap" "${TSHARK_OPTS[@]}" -Y 'ip.dst == 198.18.1.78' \
	-T fields -e tcp.options.mss_val -e tcp.checksum.status 2>/dev/null | tr '\t\n' ', ')
# tcp.checksum.status 1 is "Good".
check_eq "clamp-mss rewrote the whole MSS options only, checksums good" "$mss" "536,1 ,1 536,1 "
check_eq "the record-route packet the kernel refuses was written back" \
	"$(frames "$WORKDIR/tunin.pcap" 198.18.1.79 | wc -l)" 1
check_eq "... and never reached the peer" "$(frames "$WORKDIR/peer.pcap" 198.18.1.79 | wc -l)" 0
check "... the kernel counted it as a header error" \
	bash -c "ip netns exec '$HOST_NS' nstat -asz IpInHdrErrors | grep -q 'IpInHdrErrors *1 '"
diag "peer reassembly: $(px nstat -asz IpReasmFails IpExtReasmOverlaps Ip6ReasmFails 2>/dev/null | awk 'NR > 1 { printf "%s=%s ", $1, $2 }')"

# --- normal traffic afterwards ----------------------------------------------------------
check "ping still works afterwards" hx ping -c 3 -i 0.2 -W 1 "$PEER4"
check "ping -6 still works afterwards" hx ping -6 -c 3 -i 0.2 -W 1 "$PEER6"
status=$(ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" status --json)
check "status reports no read or write errors" \
	bash -c "grep -q '\"read-errors\":0' <<<'$status' && grep -q '\"write-errors\":0' <<<'$status'"

stop_ipmodd; rc=$?
check_eq "ipmodd exits 0" "$rc" 0
done_testing
