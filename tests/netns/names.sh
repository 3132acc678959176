#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Host names in the daemon (issue 14): the host runs ipmodd with
#   tls-sni = "*.blocked.test"   verdict = reject, reject-with = tcp-reset
#   http-host = "*.blocked.test" verdict = reject, reject-with = tcp-reset
#   quic-sni = "example.com"     verdict = drop
#  - an openssl s_server in the peer (a certificate for a.blocked.test and
#    ok.test made here with openssl req), reached by curl --resolve: the
#    connection to a.blocked.test is reset, ok.test answers;
#  - the same over plain HTTP (python3 -m http.server in the peer);
#  - a ClientHello for b.blocked.test sent in 3 TCP segments (python: ssl
#    MemoryBIO for the bytes, TCP_NODELAY, three send() calls 0.2 s apart)
#    is still matched (reset); the same split for ok.test is answered;
#  - the RFC 9001 client Initial (tests/data, SNI example.com) sent over UDP
#    from the host never reaches the peer; a copy with one byte of its
#    protected payload changed does, and the daemon keeps running;
#  - ipmodctl flows host=blocked.test lists the flows by their names;
#  - with the fast path on: a 2 MB HTTPS download from ok.test (a second
#    s_server, -WWW) costs the daemon only the packets up to the ClientHello
#    (status rx-packets before and after, printed): the kernel carries the
#    rest once the daemon decided the flow's name matches no name rule;
#    the same over IPv6 (the kernel's v6 flow key must be the daemon's, or
#    the decision never reaches the kernel), and a.blocked.test over IPv6
#    is reset.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd python3 curl openssl nft
: "${IPMODCTL:?IPMODCTL must point at the ipmodctl binary}"
"$IPMODD" --version >/dev/null || skip_all "no ipmodd"
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

SOCK=$WORKDIR/control.sock
ctl() { hx "$IPMODCTL" -s "$SOCK" "$@"; }
TLS_PORT=8443
HTTP_PORT=8080

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=a.blocked.test" \
	-addext "subjectAltName=DNS:a.blocked.test,DNS:b.blocked.test,DNS:ok.test" \
	-keyout "$WORKDIR/key.pem" -out "$WORKDIR/cert.pem" >/dev/null 2>&1 ||
	{ echo "Bail out! openssl req failed"; exit 1; }
bg "$PEER_NS" openssl s_server -accept "$TLS_PORT" -cert "$WORKDIR/cert.pem" -key "$WORKDIR/key.pem" \
	-www -quiet >"$WORKDIR/s_server.log" 2>&1
mkdir -p "$WORKDIR/www"
echo "hello from the peer" >"$WORKDIR/www/index.html"
head -c $((2 << 20)) /dev/urandom >"$WORKDIR/www/blob"
TLS_BIG_PORT=8444
bg "$PEER_NS" bash -c 'cd "$1" && exec openssl s_server -accept "$2" -cert "$3" -key "$4" -WWW -quiet' _ \
	"$WORKDIR/www" "$TLS_BIG_PORT" "$WORKDIR/cert.pem" "$WORKDIR/key.pem" >"$WORKDIR/s_server_big.log" 2>&1
bg "$PEER_NS" python3 -m http.server "$HTTP_PORT" --bind 0.0.0.0 --directory "$WORKDIR/www" \
	>"$WORKDIR/http.log" 2>&1
for _ in $(seq 100); do
	px ss -ltn 2>/dev/null | grep -q ":$TLS_PORT " && px ss -ltn | grep -q ":$HTTP_PORT " &&
		px ss -ltn | grep -q ":$TLS_BIG_PORT " && break
	sleep 0.05
done
px nft -f - <<'NFT'
table inet names {
	counter quic { }
	chain input {
		type filter hook input priority 0; policy accept;
		udp dport 443 counter name "quic"
	}
}
NFT
quic_got() { px nft list counter inet names quic | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }

write_config "$WORKDIR/n.conf" 'rules = (
	{ name = "sni"; tls-sni = "*.blocked.test"; verdict = "reject"; reject-with = "tcp-reset"; },
	{ name = "host"; http-host = "*.blocked.test"; verdict = "reject"; reject-with = "tcp-reset"; },
	{ name = "quic"; quic-sni = "example.com"; verdict = "drop"; }
);'
if start_ipmodd "$WORKDIR/n.conf"; then
	ok "ipmodd starts with tls-sni, http-host and quic-sni rules"
else
	not_ok "ipmodd starts with tls-sni, http-host and quic-sni rules"
	diag "$(tail -5 "$WORKDIR/ipmodd.log")"
	done_testing
	exit 1
fi

# fetch SCHEME NAME PORT: curl's exit status and its error, "0" when it got the page.
fetch() {
	local out
	out=$(hx curl -sS -k --max-time 10 --resolve "$2:$3:$PEER4" "$1://$2:$3/" 2>&1 >/dev/null)
	echo "$? $out"
}


# A ClientHello in three segments (split3 NAME): reset, data N, closed or timeout.
split3() {
	hx python3 -c '
import socket, ssl, sys, time
name = sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_hostname=name)
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
s = socket.create_connection((sys.argv[1], int(sys.argv[3])), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
third = len(hello) // 3
for part in (hello[:third], hello[third:2 * third], hello[2 * third:]):
    s.send(part)
    time.sleep(0.2)
try:
    data = s.recv(4096)
    print("data %d" % len(data) if data else "closed")
except ConnectionResetError:
    print("reset")
except socket.timeout:
    print("timeout")
print("hello %d bytes" % len(hello), file=sys.stderr)
' "$PEER4" "$1" "$TLS_PORT"
}
# --- TLS (ok.test first: s_server serves one connection at a time, and a
# blocked client's server side waits for the rest of its ClientHello) ------
r=$(fetch https ok.test $TLS_PORT)
check_eq "tls-sni: curl to ok.test succeeds" "$r" "0 "
r=$(split3 ok.test 2>/dev/null)
check "a ClientHello for ok.test in 3 segments is answered ($r)" grep -q "^data " <<<"$r"
check_eq "the sni rule matched nothing of ok.test" "$(rule_counter sni packets)" 0
r=$(fetch https a.blocked.test $TLS_PORT)
diag "https://a.blocked.test: $r"
check "tls-sni: curl to a.blocked.test fails with a reset" grep -qi "reset" <<<"$r"
check_eq "the sni rule matched the ClientHello packet of a.blocked.test" \
	"$(rule_counter sni packets)" 1
pcap_start split "$PEER_NS" veth0 "tcp dst port $TLS_PORT and greater 60"
r=$(split3 b.blocked.test 2>"$WORKDIR/hello.err")
pcap_stop split
diag "b.blocked.test in 3 segments: $r ($(cat "$WORKDIR/hello.err"))"
check_eq "a ClientHello for b.blocked.test in 3 segments is still matched: reset" "$r" reset
check_eq "... the peer got the first 2 segments, not the third" \
	"$(tcpdump -r "$WORKDIR/split.pcap" -n 2>/dev/null | grep -c 'Flags \[P')" 2

# big_download LABEL ADDR: 2 MB over HTTPS from ok.test at ADDR (v6 in
# brackets) arrives whole, the kernel carried the flow past the name rules and
# the daemon read only a handful of its packets.  LABEL prefixes the checks.
big_download() {
	local label=$1 addr=$2 rx0 rx1 passed0 passed1 r
	rx0=$(status_field rx-packets)
	passed0=$(status_field fastpath-flow-passed)
	r=$(hx curl -sS -k --max-time 30 --resolve "ok.test:$TLS_BIG_PORT:$addr" \
		-o "$WORKDIR/got-blob" "https://ok.test:$TLS_BIG_PORT/blob" 2>&1; echo "rc $?")
	rx1=$(status_field rx-packets)
	passed1=$(status_field fastpath-flow-passed)
	diag "${label}2 MB over HTTPS from ok.test: the daemon read $((rx1 - rx0)) packets (rx-packets $rx0 -> $rx1)," \
		"the kernel carried $((passed1 - passed0)) past the name rules;" \
		"fastpath-flow-punted $(status_field fastpath-flow-punted) fastpath-decide-failed $(status_field fastpath-decide-failed)"
	check_eq "${label}https://ok.test/blob (2 MB) arrives whole" \
		"$(cmp -s "$WORKDIR/got-blob" "$WORKDIR/www/blob" && echo same) $r" "same rc 0"
	rm -f "$WORKDIR/got-blob"
	check "${label}... the kernel carried the host's packets past the name rules ($((passed1 - passed0)))" \
		test $((passed1 - passed0)) -ge 20
	check "${label}... the daemon read only a handful of them ($((rx1 - rx0)))" test $((rx1 - rx0)) -le 12
}

# --- the fast path: the kernel carries a decided flow -------------------------
if [ "$(status_field fastpath)" = on ]; then
	big_download "" "$PEER4"
	r=$(fetch https a.blocked.test $TLS_PORT)
	check "... and a.blocked.test is still reset after it ($r)" grep -qi "reset" <<<"$r"
	# The same over IPv6: the kernel's flow key for a v6 flow must be the
	# daemon's, or the decision never reaches the kernel and the daemon
	# reads the whole transfer.
	big_download "IPv6: " "[$PEER6]"
	r=$(hx curl -sS -k --max-time 10 --resolve "a.blocked.test:$TLS_PORT:[$PEER6]" \
		"https://a.blocked.test:$TLS_PORT/" 2>&1 >/dev/null; echo "rc $?")
	diag "https://a.blocked.test over IPv6: $r"
	check "IPv6: tls-sni: curl to a.blocked.test fails with a reset" grep -qi "reset" <<<"$r"
else
	ok "# SKIP the fast path's flow decisions: fastpath $(status_field fastpath)"
	ok "# SKIP the fast path's flow decisions"
	ok "# SKIP the fast path's flow decisions"
	ok "# SKIP the fast path's flow decisions"
	ok "# SKIP the fast path's flow decisions"
	ok "# SKIP the fast path's flow decisions"
	ok "# SKIP the fast path's flow decisions"
	ok "# SKIP the fast path's flow decisions"
fi

# --- HTTP ------------------------------------------------------------------
r=$(fetch http a.blocked.test $HTTP_PORT)
diag "http://a.blocked.test: $r"
check "http-host: curl to a.blocked.test fails with a reset" grep -qi "reset" <<<"$r"
r=$(fetch http ok.test $HTTP_PORT)
check_eq "http-host: curl to ok.test succeeds" "$r" "0 "

# --- QUIC ------------------------------------------------------------------
send_quic() {
	hx python3 -c '
import socket, sys
d = bytearray.fromhex(open(sys.argv[1]).read().replace("\n", "").replace(" ", ""))
if sys.argv[4] == "damaged":
    d[600] ^= 0x5a
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[3])))
s.sendto(bytes(d), (sys.argv[2], 443))
' "$SRCDIR/tests/data/quic-v1-initial.hex" "$PEER4" "$1" "$2"
}
q0=$(quic_got)
send_quic 50001 good
sleep 0.3
if hx "$IPMODD" --version | grep -q "quic: yes"; then
	check_eq "quic-sni: the RFC 9001 Initial (example.com) never reaches the peer" "$(quic_got)" "$q0"
	check_eq "... the quic rule dropped it" "$(rule_counter quic packets)" 1
else
	ok "# SKIP quic-sni: built without libcrypto ($(hx "$IPMODD" --version | grep quic))"
	ok "# SKIP quic-sni: built without libcrypto"
fi
send_quic 50002 damaged
sleep 0.3
check_eq "a damaged copy is not matched: it reaches the peer" "$(quic_got)" "$((q0 + 1))"
check "... and the daemon still runs" kill -0 "$IPMODD_PID"

# --- the names in ipmodctl flows ----------------------------------------------
out=$(ctl flows host=blocked.test)
diag "ipmodctl flows host=blocked.test:" "$out"
check "ipmodctl flows host=blocked.test lists the TLS and HTTP flows by name" \
	eval "grep -q ':$TLS_PORT .* host a.blocked.test' <<<\"\$out\" && grep -q ':$HTTP_PORT .* host a.blocked.test' <<<\"\$out\""
check "... and no ok.test flow" eval "! grep -q 'host ok.test' <<<\"\$out\""
check "ipmodctl flows host=example.com lists the QUIC flow" \
	eval "ctl flows host=example.com proto=udp | grep -q ':50001 -> .* host example.com'"

stop_ipmodd
check_eq "ipmodd exits 0" "$?" 0
done_testing
