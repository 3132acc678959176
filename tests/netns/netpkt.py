# SPDX-License-Identifier: GPL-2.0-or-later
"""Packets for the Python of the network tests (lib.sh puts this folder on
PYTHONPATH): the Internet checksum, the IP packets of a tcpdump capture and
the fields the tests compare."""
import struct


def csum(b):
    """The Internet checksum of b (an odd length padded with a zero byte)."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def nflog_payload(rec):
    """The packet of an NFLOG record (lib.sh's nflog_start): its NFULA_PAYLOAD TLV."""
    off = 4
    while off + 4 <= len(rec):
        # TLV length and type in the capturing host's order (little-endian here).
        tlen, ttype = struct.unpack("<HH", rec[off:off + 4])
        if tlen < 4:
            break
        if ttype & 0x7fff == 9:
            return rec[off + 4:off + tlen]
        off += (tlen + 3) & ~3
    return b""


def pcap_ip(path):
    """The packets of a pcap file of Ethernet frames, Ethernet header cut off,
    or of NFLOG records (link type 239), their payload."""
    d = open(path, "rb").read()
    le = d[:4] == b"\xd4\xc3\xb2\xa1"
    linktype = struct.unpack("<I" if le else ">I", d[20:24])[0] if len(d) >= 24 else 1
    off = 24
    while off + 16 <= len(d):
        incl = struct.unpack("<I" if le else ">I", d[off + 8:off + 12])[0]
        rec = d[off + 16:off + 16 + incl]
        yield nflog_payload(rec) if linktype == 239 else rec[14:]
        off += 16 + incl


def ip_fields(p):
    """(protocol, L4 bytes, TTL, TOS or traffic class, "csum-ok" or
    "csum-BAD" for the IPv4 header and "-" for IPv6) of the IPv4 or IPv6
    packet p, None for anything else."""
    if p and p[0] >> 4 == 4:
        return p[9], p[20:], p[8], p[1], "csum-ok" if csum(p[:20]) == 0 else "csum-BAD"
    if p and p[0] >> 4 == 6:
        return p[6], p[40:], p[7], (p[0] & 0xf) << 4 | p[1] >> 4, "-"
    return None
