#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers of tests/netns/inbound.sh, run inside its namespaces.
#
#   inbound.py send FAMILY ADDR PORT N        N numbered UDP datagrams, paced
#   inbound.py recv FAMILY PORT N [READY]     receive them (3 s idle timeout);
#                                             prints "received=K bad=B ttl=T,..."
#   inbound.py rst-server FAMILY PORT READY   accept one connection, read
#                                             "hello", then wait 2 s on recv;
#                                             prints reset | eof | timeout | data
#   inbound.py rst-client FAMILY ADDR PORT    connect, "hello", then abort
#                                             (SO_LINGER 0: the kernel sends an RST)
#   inbound.py listen PORT SECONDS            a TCP listener and a UDP socket on
#                                             PORT (both families), for SECONDS
#   inbound.py connect FAMILY ADDR PORT       prints "maxseg=N" or "refused"
#   inbound.py udp-probe FAMILY ADDR PORT     one datagram; prints "refused"
#                                             (an ICMP error came back) or "silent"
#   inbound.py mrecv PORT GROUP IFADDR READY  IPv4 UDP on PORT, GROUP joined on
#                                             IFADDR; prints what it got per kind
#   inbound.py msend PORT BCAST GROUP IFADDR UNICAST N
#                                             N datagrams to each, tagged b/m/u
import errno
import os
import socket
import struct
import sys
import time

IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_TTL = getattr(socket, "IP_TTL", 2)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
PAYLOAD_LEN = 200


def fam(name):
    return socket.AF_INET6 if name == "6" else socket.AF_INET


def payload(i):
    head = b"inbound %08d " % i
    return (head * (PAYLOAD_LEN // len(head) + 1))[:PAYLOAD_LEN]


def ready(path):
    if path:
        with open(path + ".tmp", "w") as f:
            f.write("ready\n")
        os.rename(path + ".tmp", path)


def send(family, addr, port, n):
    s = socket.socket(fam(family), socket.SOCK_DGRAM)
    for i in range(n):
        s.sendto(payload(i), (addr, port))
        if i % 50 == 49:
            time.sleep(0.002)
    print("sent=%d" % n)


def recv(family, port, n, ready_path):
    f = fam(family)
    s = socket.socket(f, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    if f == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        s.bind(("0.0.0.0", port))
    else:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        s.bind(("::", port))
    s.settimeout(3)
    ready(ready_path)
    seen = set()
    bad = 0
    ttls = set()
    while len(seen) < n:
        try:
            data, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(4))
        except socket.timeout:
            break
        for level, typ, val in anc:
            if (level, typ) in ((socket.IPPROTO_IP, IP_TTL), (socket.IPPROTO_IPV6, IPV6_HOPLIMIT)):
                ttls.add(struct.unpack("i", val[:4])[0])
        try:
            i = int(data[8:16])
        except ValueError:
            bad += 1
            continue
        if data != payload(i) or i in seen:
            bad += 1
        seen.add(i)
    print("received=%d bad=%d ttl=%s" % (len(seen), bad, ",".join(map(str, sorted(ttls))) or "none"))


def rst_server(family, port, ready_path):
    f = fam(family)
    ls = socket.socket(f, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::" if f == socket.AF_INET6 else "0.0.0.0", port))
    ls.listen(1)
    ls.settimeout(5)
    ready(ready_path)
    c, _ = ls.accept()
    c.settimeout(5)
    got = b""
    while len(got) < 5:
        d = c.recv(5 - len(got))
        if not d:
            break
        got += d
    if got != b"hello":
        print("no-hello")
        return
    # The peer aborts now; its RST is dropped or not.
    c.settimeout(2)
    try:
        d = c.recv(100)
        print("data" if d else "eof")
    except socket.timeout:
        print("timeout")
    except ConnectionResetError:
        print("reset")
    except OSError as e:
        print("reset" if e.errno == errno.ECONNRESET else "error-%d" % e.errno)


def rst_client(family, addr, port):
    s = socket.socket(fam(family), socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((addr, port))
    s.sendall(b"hello")
    time.sleep(0.5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("aborted")


def listen(port, seconds):
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("::", port))
    t.listen(16)
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.bind(("::", port))
    time.sleep(seconds)


def connect(family, addr, port):
    s = socket.socket(fam(family), socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((addr, port))
    except ConnectionRefusedError:
        print("refused")
        return
    except socket.timeout:
        print("timeout")
        return
    print("maxseg=%d" % s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))


def udp_probe(family, addr, port):
    s = socket.socket(fam(family), socket.SOCK_DGRAM)
    s.settimeout(1)
    s.connect((addr, port))
    s.send(b"probe")
    try:
        s.recv(100)
        print("data")
    except ConnectionRefusedError:
        print("refused")
    except socket.timeout:
        print("silent")


def mrecv(port, group, ifaddr, ready_path):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    u.bind(("0.0.0.0", port))
    u.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + socket.inet_aton(ifaddr))
    u.settimeout(2)
    ready(ready_path)
    got = {b"b": 0, b"m": 0, b"u": 0}
    try:
        while True:
            d = u.recv(100)
            got[d] = got.get(d, 0) + 1
    except socket.timeout:
        pass
    print("broadcast=%d multicast=%d unicast=%d" % (got[b"b"], got[b"m"], got[b"u"]))


def msend(port, bcast, group, ifaddr, unicast, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ifaddr))
    for _ in range(n):
        s.sendto(b"b", (bcast, port))
        s.sendto(b"m", (group, port))
        s.sendto(b"u", (unicast, port))


def main():
    a = sys.argv[1:]
    if a[0] == "send":
        send(a[1], a[2], int(a[3]), int(a[4]))
    elif a[0] == "recv":
        recv(a[1], int(a[2]), int(a[3]), a[4] if len(a) > 4 else None)
    elif a[0] == "rst-server":
        rst_server(a[1], int(a[2]), a[3])
    elif a[0] == "rst-client":
        rst_client(a[1], a[2], int(a[3]))
    elif a[0] == "listen":
        listen(int(a[1]), float(a[2]))
    elif a[0] == "connect":
        connect(a[1], a[2], int(a[3]))
    elif a[0] == "mrecv":
        mrecv(int(a[1]), a[2], a[3], a[4])
    elif a[0] == "msend":
        msend(int(a[1]), a[2], a[3], a[4], a[5], int(a[6]))
    elif a[0] == "udp-probe":
        udp_probe(a[1], a[2], int(a[3]))
    else:
        sys.exit("unknown command " + a[0])


if __name__ == "__main__":
    main()
