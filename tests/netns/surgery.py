# SPDX-License-Identifier: GPL-2.0-or-later
"""Endpoints and capture readers of tests/netns/surgery.sh.

  sink PORT OUT [CERT KEY]    one TCP connection (TLS with CERT/KEY), v4 or
                              v6; writes "LENGTH SHA256" of what arrived to OUT
  send HOST PORT FILE [SNI]   uploads FILE (through TLS naming SNI), waits for
                              the server to close
  serve PORT FILE OUT         one TCP connection, v4 or v6: sends FILE to
                              it and closes (a download's server)
  fetch HOST PORT OUT         reads what the server at HOST PORT sends until
                              it closes: "LENGTH SHA256" to OUT
  udprecv PORT OUT            one UDP datagram: "LENGTH SHA256" to OUT
  udpsend HOST PORT FILE      FILE as one UDP datagram
  firstsegs PCAP PORT NAME [src]
                              the first two data segments to PORT (from PORT
                              with "src") in a capture as "SEQ:LEN SEQ:LEN
                              OFF", OFF the offset of NAME in the captured
                              stream (-1 if absent)

Servers write OUT.ready once they listen and give up after 30 s."""
import hashlib
import os
import socket
import ssl
import subprocess
import sys

TIMEOUT = 30


def listener(kind, port, out):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    if kind == socket.SOCK_STREAM:
        s.listen(1)
    s.settimeout(TIMEOUT)
    open(out + ".ready", "w").close()
    return s


def result(out, n, h):
    with open(out + ".tmp", "w") as f:
        f.write("%d %s\n" % (n, h.hexdigest()))
    # Whole or absent: the test polls for OUT.
    os.rename(out + ".tmp", out)


def sink(port, out, cert=None, key=None):
    s = listener(socket.SOCK_STREAM, int(port), out)
    c, _ = s.accept()
    c.settimeout(TIMEOUT)
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        c = ctx.wrap_socket(c, server_side=True)
    h, n = hashlib.sha256(), 0
    while True:
        try:
            b = c.recv(65536)
        except ssl.SSLEOFError:
            # A ragged end: the digest tells whether anything is missing.
            break
        if not b:
            break
        h.update(b)
        n += len(b)
    result(out, n, h)
    c.close()


def send(host, port, path, sni=None):
    data = open(path, "rb").read()
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((host, int(port)))
    raw = s
    if sni:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname=sni)
    s.sendall(data)
    if sni:
        try:
            raw = s.unwrap()
        except (ssl.SSLError, OSError):
            raw = s
    raw.shutdown(socket.SHUT_WR)
    while raw.recv(65536):
        pass
    raw.close()


def serve(port, path, out):
    data = open(path, "rb").read()
    s = listener(socket.SOCK_STREAM, int(port), out)
    c, _ = s.accept()
    c.settimeout(TIMEOUT)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
    c.close()


def fetch(host, port, out):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((host, int(port)))
    h, n = hashlib.sha256(), 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
    result(out, n, h)
    s.close()


def udprecv(port, out):
    s = listener(socket.SOCK_DGRAM, int(port), out)
    b, _ = s.recvfrom(65535)
    result(out, len(b), hashlib.sha256(b))


def udpsend(host, port, path):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.sendto(open(path, "rb").read(), (host, int(port)))


def firstsegs(pcap, port, name, side="dst"):
    out = subprocess.run(["tshark", "-r", pcap, "-Y",
                          "tcp.%sport == %d && tcp.len > 0" % (side, int(port)),
                          "-T", "fields", "-e", "tcp.seq", "-e", "tcp.len",
                          "-e", "tcp.payload"],
                         capture_output=True, text=True, check=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split("\t")
        segs.append((int(f[0]), int(f[1]), bytes.fromhex(f[2].replace(":", ""))))
    # The stream from its first byte (relative sequence number 1), as far as
    # the captured segments reach without a hole.
    stream = b""
    for q, n, p in sorted(segs):
        if q <= 1 + len(stream) < q + n:
            stream += p[1 + len(stream) - q:]
    off = stream.find(name.encode()) if stream else -1
    print(" ".join("%d:%d" % (q, n) for q, n, _ in segs[:2]), off)


if __name__ == "__main__":
    cmds = {"sink": sink, "send": send, "serve": serve, "fetch": fetch, "udprecv": udprecv,
            "udpsend": udpsend, "firstsegs": firstsegs}
    cmds[sys.argv[1]](*sys.argv[2:])
