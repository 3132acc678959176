#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Many UDP flows at once, for the packet workers' exact counters
(multiqueue.sh, inbound-mq.sh).

  udp-flows.py send DST   64 sockets (64 flows), 20 rounds of one 100-byte
                          datagram each to DST port 7000 and one to port 9,
                          5 ms apart: 1280 datagrams to each port
  udp-flows.py recv TTL   counts the IPv4 datagrams arriving on port 7000
                          until 3 s pass without one; prints "ready" once
                          bound, then "N BAD" (BAD: those whose TTL was not
                          TTL)
"""
import socket
import sys
import time


def send(dst):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(64)]
    for _ in range(20):
        for s in socks:
            s.sendto(b"x" * 100, (dst, 7000))
            s.sendto(b"y" * 100, (dst, 9))
        time.sleep(0.005)


def recv(want_ttl):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.setsockopt(socket.SOL_IP, 12, 1)  # IP_RECVTTL
    s.bind(("0.0.0.0", 7000))
    s.settimeout(3)
    n = bad = 0
    print("ready", flush=True)
    try:
        while True:
            _, anc, _, _ = s.recvmsg(2048, 64)
            n += 1
            ttl = [int.from_bytes(d[:4], sys.byteorder) for _, t, d in anc if t == socket.IP_TTL]
            if ttl != [want_ttl]:
                bad += 1
    except socket.timeout:
        pass
    print(n, bad)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "send":
        send(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "recv":
        recv(int(sys.argv[2]))
    else:
        sys.exit("usage: udp-flows.py send DST | recv TTL")
