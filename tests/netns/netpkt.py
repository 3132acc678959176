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


def pcap_ip(path):
    """The packets of a pcap file of Ethernet frames, Ethernet header cut off."""
    d = open(path, "rb").read()
    le = d[:4] == b"\xd4\xc3\xb2\xa1"
    off = 24
    while off + 16 <= len(d):
        incl = struct.unpack("<I" if le else ">I", d[off + 8:off + 12])[0]
        yield d[off + 16:off + 16 + incl][14:]
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
