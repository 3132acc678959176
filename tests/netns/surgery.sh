#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Packet surgery (issue 15) on real connections, seen by the receiving side:
# split at 1, 5 and at the TLS server name, with and without disorder, v4 and
# v6 (2 MB uploads arrive exact, the peer's capture shows the cuts with good
# checksums); ipfrag of UDP and TCP (the peer reassembles); fake decoys with
# fake-ttl through a router (time-exceeded there, never at the far end),
# fake-badsum (the peer's kernel counts the checksum error), fake-badseq and
# fake-md5sig; set-field on a live connection; strip-tcp-option on SYNs; a
# split on the inbound path (a download cut before the host reads it, seen
# on the inbound tun); and a split with the fast path on.  Every case also checks, in the capture, that
# the surgery happened, so none passes with its rule taken away.
# surgery.py (beside this file) holds the endpoints and the segment reader.
. "$(dirname "$0")/lib.sh"

daemon_test tcpdump tshark python3 openssl nstat timeout ethtool
setup_far || { echo "Bail out! cannot build the router namespace"; exit 1; }

# The host's veth computes no checksum and segments nothing: the peer's
# capture shows the checksums and segments ipmodd or the kernel's software
# made (a partial checksum would read as bad).
hx ethtool -K veth0 tx off >/dev/null 2>&1 ||
	{ echo "Bail out! cannot turn the host veth's checksum offload off"; exit 1; }

HELPER=$(cd "$(dirname "$0")" && pwd)/surgery.py
NAME=a.blocked.test
# The decoys' payload, found in captures with "frame contains".
DECOY=IPMODD-DECOY-15
DECOY_HEX=$(printf %s "$DECOY" | od -An -tx1 | tr -d ' \n')

BIG=$WORKDIR/big.bin
SMALL=$WORKDIR/small.bin
DGRAM=$WORKDIR/dgram.bin
head -c 2097152 /dev/urandom >"$BIG"
head -c 262144 /dev/urandom >"$SMALL"
head -c 1200 /dev/urandom >"$DGRAM"
# An HTTP request naming $NAME, then the small file.
HTTP=$WORKDIR/http.bin
printf 'POST /up HTTP/1.1\r\nHost: %s\r\nContent-Length: 262144\r\n\r\n' "$NAME" >"$HTTP"
cat "$SMALL" >>"$HTTP"
# want FILE: what surgery.py writes for FILE arriving whole.
want() { echo "$(stat -c %s "$1") $(sha256sum <"$1" | cut -d' ' -f1)"; }
CERT=$WORKDIR/cert.pem
KEY=$WORKDIR/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj "/CN=$NAME" -keyout "$KEY" -out "$CERT" >/dev/null 2>&1 ||
	{ echo "Bail out! cannot make a certificate"; exit 1; }

# xfer TAG NS DST PORT FILE [SNI]: upload FILE from the host namespace to a
# sink at DST:PORT in NS (TLS naming SNI when given); the sink's "LENGTH
# SHA256" is in $WORKDIR/TAG.sum.
xfer() {
	local tag=$1 ns=$2 dst=$3 port=$4 file=$5 sni=${6:-} out=$WORKDIR/$1.sum
	local tls=()
	[ -n "$sni" ] && tls=("$CERT" "$KEY")
	bg "$ns" timeout 40 python3 "$HELPER" sink "$port" "$out" "${tls[@]}"
	wait_for 5 test -e "$out.ready" || return 1
	hx timeout 40 python3 "$HELPER" send "$dst" "$port" "$file" ${sni:+"$sni"} >&2 || return 1
	wait_for 5 test -e "$out"
}
# got TAG: the sink's result ("none" when it wrote none).
got() { cat "$WORKDIR/$1.sum" 2>/dev/null || echo none; }
# udp_xfer TAG DST PORT: $DGRAM to a receiver in the peer namespace.
udp_xfer() {
	local out=$WORKDIR/$1.sum
	bg "$PEER_NS" timeout 20 python3 "$HELPER" udprecv "$3" "$out"
	wait_for 5 test -e "$out.ready" || return 1
	hx python3 "$HELPER" udpsend "$2" "$3" "$DGRAM" >&2
	wait_for 5 test -e "$out"
}
# tsh PCAP FILTER: frames matching FILTER, checksums verified.
tsh() {
	tshark -r "$1" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
		-o udp.check_checksum:TRUE -Y "$2" 2>/dev/null | wc -l
}
# all_good PCAP [FILTER]: every TCP frame (matching FILTER) of the capture
# has good TCP and IPv4 checksums.
all_good() {
	local all good f="tcp && (${2:-frame})"
	all=$(tsh "$1" "$f")
	good=$(tsh "$1" "$f"' && tcp.checksum.status == "Good" && (ipv6 || ip.checksum.status == "Good")')
	diag "$1: $good of $all TCP frames with good checksums"
	[ "$all" -gt 0 ] && [ "$all" = "$good" ]
}
# counter RUN NAME: a kernel counter (nstat's name) in a namespace.
counter() {
	local v
	v=$("$1" nstat -asz "$2" 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }')
	echo "${v:-0}"
}
fx() { ip netns exec "$FAR_NS" "$@"; }
ge() { [ "$1" -ge "$2" ]; }

# fake-md5's decoy comes from a file (fake = "@PATH"), the others' from hex.
printf %s "$DECOY" >"$WORKDIR/decoy.bin"
CONF=$WORKDIR/ipmodd.conf
write_config "$CONF" "rules = (
	{ name = \"split1\"; proto = \"tcp\"; dport = 7101; split = \"1\"; },
	{ name = \"split1d\"; proto = \"tcp\"; dport = 7102; split = \"1\"; disorder = true; },
	{ name = \"split5\"; proto = \"tcp\"; dport = 7103; split = \"5\"; },
	{ name = \"split5d\"; proto = \"tcp\"; dport = 7104; split = \"5\"; disorder = true; },
	{ name = \"splitsni\"; proto = \"tcp\"; dport = 7105; split = \"sni\"; },
	{ name = \"splitsnid\"; proto = \"tcp\"; dport = 7106; split = \"sni\"; disorder = true; },
	{ name = \"split-host\"; proto = \"tcp\"; dport = 7107; split = \"host\"; },
	{ name = \"split-sld\"; proto = \"tcp\"; dport = 7108; split = \"sni+2,midsld\"; },
	{ name = \"frag-udp\"; proto = \"udp\"; dport = 7201; ipfrag = 64; },
	{ name = \"frag-tcp\"; proto = \"tcp\"; dport = 7202; ipfrag = 24; },
	{ name = \"fake-ttl\"; proto = \"tcp\"; dport = 7301; length = \"100-65535\";
	  fake = \"hex:$DECOY_HEX\"; fake-ttl = 1; },
	{ name = \"fake-sum\"; proto = \"tcp\"; dport = 7302; length = \"100-65535\";
	  fake = \"hex:$DECOY_HEX\"; fake-badsum = true; },
	{ name = \"fake-seq\"; proto = \"tcp\"; dport = 7303; length = \"100-65535\";
	  fake = \"hex:$DECOY_HEX\"; fake-badseq = true; },
	{ name = \"fake-md5\"; proto = \"tcp\"; dport = 7304; length = \"100-65535\";
	  fake = \"@$WORKDIR/decoy.bin\"; fake-md5sig = true; },
	{ name = \"setf\"; proto = \"tcp\"; dport = 7401;
	  set-field = \"tcp.window=1234 ip.id=4321 ip6.flowlabel=0x12345\"; },
	{ name = \"strip-ts\"; proto = \"tcp\"; dport = 7402; tcp-flags = \"syn\";
	  strip-tcp-option = \"timestamp\"; }
);"
check "the surgery config is valid" hx "$IPMODD" --check-config -c "$CONF"
start_ipmodd "$CONF" || { echo "Bail out! ipmodd does not start with the surgery rules"; exit 1; }
ok "ipmodd starts with the surgery rules"

# --- split: 2 MB uploads, every data segment cut ------------------------------
diag "at ${SECONDS}s: split: 2 MB uploads, every data segment cut"
# split_case TAG FAMILY PORT POS DISORDER: an upload to PORT (the rule there
# splits at POS: 1, 5 or sni; DISORDER 0/1), captured at the peer's veth.
split_case() {
	local tag=$1 fam=$2 port=$3 pos=$4 dis=$5 dst=$PEER4 sni="" segs cut first rest
	[ "$fam" = 6 ] && dst=$PEER6
	[ "$pos" = sni ] && sni=$NAME
	pcap_start "$tag" "$PEER_NS" veth0 -c 40 tcp dst port "$port"
	xfer "$tag" "$PEER_NS" "$dst" "$port" "$BIG" ${sni:+"$sni"}
	pcap_stop "$tag"
	check_eq "[$tag] the 2 MB upload arrives exact (split=$pos disorder=$dis, IPv$fam)" \
		"$(got "$tag")" "$(want "$BIG")"
	# "SEQ:LEN SEQ:LEN OFF": the first two data segments, the name's offset.
	segs=$(python3 "$HELPER" firstsegs "$WORKDIR/$tag.pcap" "$port" "$NAME")
	diag "[$tag] first data segments at the peer: $segs"
	cut=$pos
	if [ "$pos" = sni ]; then
		cut=${segs##* }
		check "[$tag] the ClientHello names $NAME (offset $cut)" ge "$cut" 1
	fi
	first="1:$cut"
	rest="$((1 + cut)):[0-9]*"
	if [ "$dis" = 1 ]; then
		check "[$tag] the tail from byte $cut comes first, then the $cut-byte head" \
			grep -Eqx "$rest $first -?[0-9]+" <<<"$segs"
	else
		check "[$tag] the first segment holds $cut bytes, the next starts there" \
			grep -Eqx "$first $rest -?[0-9]+" <<<"$segs"
	fi
	check "[$tag] checksums good in the peer's capture" all_good "$WORKDIR/$tag.pcap"
}
split_case s1_4 4 7101 1 0
split_case s1_6 6 7101 1 0
split_case s1d_4 4 7102 1 1
split_case s1d_6 6 7102 1 1
split_case s5_4 4 7103 5 0
split_case s5_6 6 7103 5 0
split_case s5d_4 4 7104 5 1
split_case s5d_6 6 7104 5 1
split_case sni_4 4 7105 sni 0
split_case sni_6 6 7105 sni 0
split_case snid_4 4 7106 sni 1
split_case snid_6 6 7106 sni 1

# cut_case TAG FAMILY PORT SNI FILE A B: an upload of FILE to PORT (through
# TLS naming SNI, or plain for "-"), whose rule cuts at the name's offset
# OFF plus A and plus B (B "-" for one cut): the first segment holds OFF+A
# bytes, the second B-A.
cut_case() {
	local tag=$1 fam=$2 port=$3 sni=$4 file=$5 a=$6 b=$7 dst=$PEER4 segs off second what
	[ "$fam" = 6 ] && dst=$PEER6
	[ "$sni" = - ] && sni=""
	pcap_start "$tag" "$PEER_NS" veth0 -c 40 tcp dst port "$port"
	xfer "$tag" "$PEER_NS" "$dst" "$port" "$file" ${sni:+"$sni"}
	pcap_stop "$tag"
	check_eq "[$tag] the upload arrives exact (IPv$fam)" "$(got "$tag")" "$(want "$file")"
	segs=$(python3 "$HELPER" firstsegs "$WORKDIR/$tag.pcap" "$port" "$NAME")
	diag "[$tag] first data segments at the peer: $segs"
	off=${segs##* }
	check "[$tag] the stream names $NAME (offset $off)" ge "$off" 1
	second="[0-9]+" what="+$a"
	[ "$b" != - ] && second=$((b - a)) what="+$a and +$b"
	check "[$tag] cut at the name's offset $what" \
		grep -Eqx "1:$((off + a)) $((1 + off + a)):$second -?[0-9]+" <<<"$segs"
	check "[$tag] checksums good in the peer's capture" all_good "$WORKDIR/$tag.pcap"
}
# split = host: at the Host header's value, traced.
"$IPMODCTL" -s "$SOCK" trace rule=split-host >"$WORKDIR/trace.txt" 2>&1 &
trace_pid=$!
BG_PIDS+=("$trace_pid")
sleep 0.3
cut_case host_4 4 7107 - "$HTTP" 0 -
sleep 0.3
kill "$trace_pid" 2>/dev/null
wait "$trace_pid" 2>/dev/null
check "[host_4] the trace shows the request cut in two (surgery-out=2)" \
	grep -q ' rule=split-host split=host result=accept surgery-out=2$' "$WORKDIR/trace.txt"
# split = "sni+2,midsld": a.blocked.test cut after "a." and after "a.blo".
cut_case sld_6 6 7108 "$NAME" "$SMALL" 2 5

# --- ipfrag: UDP and TCP, reassembled by the peer -----------------------------
diag "at ${SECONDS}s: ipfrag: UDP and TCP, reassembled by the peer"
for fam in 4 6; do
	if [ "$fam" = 4 ]; then
		src=$HOST4 dst=$PEER4 first="ip.flags.mf == 1" later="ip.frag_offset > 0"
	else
		src=$HOST6 dst=$PEER6 first="ipv6.fraghdr.more == 1" later="ipv6.fraghdr.offset > 0"
	fi
	pcap_start fu$fam "$PEER_NS" veth0 src host "$src" and not tcp
	udp_xfer fu$fam "$dst" 7201
	pcap_stop fu$fam
	check_eq "[fu$fam] the 1200-byte datagram arrives whole (ipfrag=64, IPv$fam)" \
		"$(got fu$fam)" "$(want "$DGRAM")"
	check_eq "[fu$fam] the peer's capture shows a first fragment" \
		"$(pcap_count "$WORKDIR/fu$fam.pcap" "$first")" 1
	check_eq "[fu$fam] ... and a last one" "$(pcap_count "$WORKDIR/fu$fam.pcap" "$later")" 1
	[ "$fam" = 4 ] && check_eq "[fu4] the fragments have DF cleared" \
		"$(pcap_count "$WORKDIR/fu4.pcap" "ip.flags.df == 1")" 0
	check_eq "[fu$fam] no bad checksum" "$(pcap_bad_checksums "$WORKDIR/fu$fam.pcap")" 0

	pcap_start ft$fam "$PEER_NS" veth0 -c 60 src host "$src"
	xfer ft$fam "$PEER_NS" "$dst" 7202 "$SMALL"
	pcap_stop ft$fam
	check_eq "[ft$fam] a 256 KB upload arrives exact (ipfrag=24, IPv$fam)" \
		"$(got ft$fam)" "$(want "$SMALL")"
	n=$(pcap_count "$WORKDIR/ft$fam.pcap" "$first")
	check "[ft$fam] the peer's capture shows the segments fragmented ($n first fragments)" ge "$n" 5
	check_eq "[ft$fam] no bad checksum" "$(pcap_bad_checksums "$WORKDIR/ft$fam.pcap")" 0
done

# --- fake-ttl=1 through the router (the peer namespace) to the far one --------
diag "at ${SECONDS}s: fake-ttl=1 through the router (the peer namespace) to the far one"
for fam in 4 6; do
	if [ "$fam" = 4 ]; then dst=$FAR4 te=IcmpOutTimeExcds; else dst=$FAR6 te=Icmp6OutTimeExcds; fi
	te0=$(counter px "$te")
	pcap_start fr$fam "$PEER_NS" veth0 -c 100 tcp dst port 7301
	pcap_start ff$fam "$FAR_NS" veth1 tcp dst port 7301
	xfer ff$fam "$FAR_NS" "$dst" 7301 "$SMALL"
	pcap_stop fr$fam
	pcap_stop ff$fam
	te1=$(counter px "$te")
	check_eq "[ff$fam] a 256 KB upload through the router arrives exact (fake-ttl=1, IPv$fam)" \
		"$(got ff$fam)" "$(want "$SMALL")"
	n=$(pcap_count "$WORKDIR/fr$fam.pcap" "frame contains \"$DECOY\"")
	check "[ff$fam] the router receives decoys ($n)" ge "$n" 1
	check_eq "[ff$fam] the decoys reach it with TTL 1" \
		"$(pcap_count "$WORKDIR/fr$fam.pcap" "frame contains \"$DECOY\" && !(ip.ttl == 1 || ipv6.hlim == 1)")" 0
	check "[ff$fam] the router sent time-exceeded ($te $te0 -> $te1)" ge "$te1" $((te0 + 1))
	check_eq "[ff$fam] the far end never sees a decoy" \
		"$(pcap_count "$WORKDIR/ff$fam.pcap" "frame contains \"$DECOY\"")" 0
	n=$(pcap_count "$WORKDIR/ff$fam.pcap" "tcp.len > 0")
	check "[ff$fam] ... while it sees the data ($n segments)" ge "$n" 10
done

# --- fake-badsum, fake-badseq, fake-md5sig: decoys at the peer, refused -------
diag "at ${SECONDS}s: fake-badsum, fake-badseq, fake-md5sig: decoys at the peer, refused"
# fake_case TAG FAMILY PORT: an upload to PORT captured at the peer.
fake_case() {
	local tag=$1 fam=$2 port=$3 dst=$PEER4
	[ "$fam" = 6 ] && dst=$PEER6
	pcap_start "$tag" "$PEER_NS" veth0 -c 100 tcp dst port "$port"
	xfer "$tag" "$PEER_NS" "$dst" "$port" "$SMALL"
	pcap_stop "$tag"
	check_eq "[$tag] a 256 KB upload arrives exact (IPv$fam)" "$(got "$tag")" "$(want "$SMALL")"
	DECOYS=$(pcap_count "$WORKDIR/$tag.pcap" "frame contains \"$DECOY\"")
	check "[$tag] the peer's capture shows decoys ($DECOYS)" ge "$DECOYS" 1
}
for fam in 4 6; do
	c0=$(counter px TcpInCsumErrors)
	fake_case fs$fam $fam 7302
	c1=$(counter px TcpInCsumErrors)
	check_eq "[fs$fam] every decoy has a bad TCP checksum" \
		"$(tsh "$WORKDIR/fs$fam.pcap" "frame contains \"$DECOY\" && tcp.checksum.status == \"Bad\"")" "$DECOYS"
	check_eq "[fs$fam] ... and nothing else" \
		"$(tsh "$WORKDIR/fs$fam.pcap" "tcp.checksum.status == \"Bad\"")" "$DECOYS"
	check "[fs$fam] the peer's kernel counts them (TcpInCsumErrors $c0 -> $c1)" ge "$c1" $((c0 + 1))
done
for fam in 4 6; do
	fake_case fq$fam $fam 7303
	# Each decoy's sequence number is 10000000 before a real segment's.
	tshark -r "$WORKDIR/fq$fam.pcap" -Y "tcp.len > 0 && !(frame contains \"$DECOY\")" \
		-T fields -e tcp.seq_raw 2>/dev/null >"$WORKDIR/fq$fam.real"
	tshark -r "$WORKDIR/fq$fam.pcap" -Y "frame contains \"$DECOY\"" \
		-T fields -e tcp.seq_raw 2>/dev/null >"$WORKDIR/fq$fam.decoy"
	n=$(python3 -c 'import sys
real = {int(x) for x in open(sys.argv[1]).read().split()}
print(sum((int(x) + 10000000) % 2**32 in real for x in open(sys.argv[2]).read().split()))' \
		"$WORKDIR/fq$fam.real" "$WORKDIR/fq$fam.decoy")
	check_eq "[fq$fam] every decoy's sequence number is 10000000 before a real segment's" "$n" "$DECOYS"
	check "[fq$fam] checksums good" all_good "$WORKDIR/fq$fam.pcap"

	fake_case fm$fam $fam 7304
	check_eq "[fm$fam] every decoy carries the MD5 option (kind 19)" \
		"$(pcap_count "$WORKDIR/fm$fam.pcap" "frame contains \"$DECOY\" && tcp.option_kind == 19")" "$DECOYS"
	check_eq "[fm$fam] ... and no real segment" \
		"$(pcap_count "$WORKDIR/fm$fam.pcap" "tcp.option_kind == 19")" "$DECOYS"
	check "[fm$fam] checksums good" all_good "$WORKDIR/fm$fam.pcap"
done

# --- set-field on a live connection -------------------------------------------
diag "at ${SECONDS}s: set-field on a live connection"
for fam in 4 6; do
	if [ "$fam" = 4 ]; then
		dst=$PEER4 want_f="ip.id == 4321"
	else
		dst=$PEER6 want_f="ipv6.flow == 0x12345"
	fi
	pcap_start sf$fam "$PEER_NS" veth0 -c 60 tcp dst port 7401
	xfer sf$fam "$PEER_NS" "$dst" 7401 "$SMALL"
	pcap_stop sf$fam
	check_eq "[sf$fam] a 256 KB upload arrives exact (set-field, IPv$fam)" \
		"$(got sf$fam)" "$(want "$SMALL")"
	all=$(pcap_count "$WORKDIR/sf$fam.pcap" tcp)
	check "[sf$fam] captured $all segments" ge "$all" 20
	check_eq "[sf$fam] every one has window 1234 and $want_f" \
		"$(pcap_count "$WORKDIR/sf$fam.pcap" "tcp.window_size_value == 1234 && $want_f")" "$all"
	check "[sf$fam] checksums good" all_good "$WORKDIR/sf$fam.pcap"
done

# --- strip-tcp-option = timestamp on SYNs -------------------------------------
diag "at ${SECONDS}s: strip-tcp-option = timestamp on SYNs"
# 7403 has no rule: its SYN keeps the timestamp (the control).
pcap_start st "$PEER_NS" veth0 -c 40 tcp port 7402 or tcp port 7403
xfer st "$PEER_NS" "$PEER4" 7402 "$DGRAM"
xfer stc "$PEER_NS" "$PEER4" 7403 "$DGRAM"
pcap_stop st
check_eq "[st] the upload after the stripped SYN arrives exact" "$(got st)" "$(want "$DGRAM")"
syn=$(tshark -r "$WORKDIR/st.pcap" -Y "tcp.dstport == 7402 && tcp.flags.syn == 1" \
	-T fields -e tcp.option_kind 2>/dev/null | head -1)
ctl_syn=$(tshark -r "$WORKDIR/st.pcap" -Y "tcp.dstport == 7403 && tcp.flags.syn == 1" \
	-T fields -e tcp.option_kind 2>/dev/null | head -1)
diag "option kinds of the SYN to 7402: $syn; to 7403: $ctl_syn"
# has_ts KINDS: the comma-separated option kinds hold 8 (timestamp).
has_ts() { grep -Eq '(^|,)8(,|$)' <<<"$1"; }
no_ts() { ! has_ts "$1"; }
check "[st] the control SYN (no rule) carries a timestamp" has_ts "$ctl_syn"
check "[st] the stripped SYN carries none" no_ts "$syn"
n=$(tr , '\n' <<<"$syn" | grep -cx 1)
m=$(tr , '\n' <<<"$ctl_syn" | grep -cx 1)
check "[st] ... but 10 NOPs more in its place ($m -> $n)" test "$n" -eq $((m + 10))
check_eq "[st] the peer's SYN-ACK has no timestamp (the peer saw none)" \
	"$(pcap_count "$WORKDIR/st.pcap" "tcp.srcport == 7402 && tcp.flags.syn == 1 && tcp.option_kind == 8")" 0
check "[st] checksums good (the host's frames)" all_good "$WORKDIR/st.pcap" "tcp.dstport == 7402 || tcp.dstport == 7403"

# The daemon's own counters of all the above.
ctl status --json >"$WORKDIR/status.json"
sf() { json_field "surgery-$1" <"$WORKDIR/status.json"; }
S_split=$(sf split) S_parts=$(sf parts) S_ipfrag=$(sf ipfrag) S_fragments=$(sf fragments)
S_fakes=$(sf fakes) S_whole=$(sf whole) S_errors=$(sf errors)
diag "status: surgery-split=$S_split parts=$S_parts ipfrag=$S_ipfrag fragments=$S_fragments fakes=$S_fakes whole=$S_whole errors=$S_errors"
check "status: surgery-split counts the cut packets ($S_split)" ge "$S_split" 10000
check "status: surgery-parts counts at least two parts each ($S_parts)" ge "$S_parts" $((2 * S_split))
check "status: surgery-ipfrag counts the fragmented packets ($S_ipfrag)" ge "$S_ipfrag" 100
check "status: surgery-fragments counts two each ($S_fragments)" ge "$S_fragments" $((2 * S_ipfrag))
check "status: surgery-fakes counts the decoys ($S_fakes)" ge "$S_fakes" 100
check "status: surgery-whole counts the segments without a server name ($S_whole)" ge "$S_whole" 1
check_eq "status: surgery-errors" "$S_errors" 0
check "ipmodd exits cleanly" stop_ipmodd

# --- split on the inbound path: a download cut before the host reads it ------
diag "at ${SECONDS}s: split=5 disorder on the inbound path"
INTUN=tun0i0
write_config "$WORKDIR/in.conf" 'inbound = { interfaces = [ "veth0" ]; };
rules = (
	{ name = "in-split5d"; direction = "in"; proto = "tcp"; sport = 7501; split = "5"; disorder = true; }
);'
if start_ipmodd "$WORKDIR/in.conf" && wait_for 5 hx test -e "/sys/class/net/$INTUN"; then
	ok "ipmodd starts with inbound = veth0 and an inbound split rule"
	# What the daemon wrote to the inbound tun: the host's stack reads that.
	pcap_start in_s5d "$HOST_NS" "$INTUN" -Q in -c 40 tcp src port 7501
	bg "$PEER_NS" timeout 40 python3 "$HELPER" serve 7501 "$BIG" "$WORKDIR/in_s5d.srv"
	wait_for 5 test -e "$WORKDIR/in_s5d.srv.ready"
	hx timeout 40 python3 "$HELPER" fetch "$PEER4" 7501 "$WORKDIR/in_s5d.sum" >&2
	pcap_stop in_s5d
	check_eq "[in_s5d] the 2 MB download arrives exact (inbound split=5 disorder=1, IPv4)" \
		"$(got in_s5d)" "$(want "$BIG")"
	segs=$(python3 "$HELPER" firstsegs "$WORKDIR/in_s5d.pcap" 7501 "$NAME" src)
	diag "[in_s5d] first data segments the daemon wrote to $INTUN: $segs"
	check "[in_s5d] the tail from byte 5 comes first, then the 5-byte head" \
		grep -Eqx "6:[0-9]+ 1:5 -?[0-9]+" <<<"$segs"
	check "[in_s5d] checksums good in the inbound tun's capture" all_good "$WORKDIR/in_s5d.pcap"
	check "[in_s5d] the rule cut the peer's segments ($(rule_counter in-split5d packets))" \
		ge "$(rule_counter in-split5d packets)" 10
	check "ipmodd exits cleanly" stop_ipmodd
else
	not_ok "ipmodd starts with inbound = veth0 and an inbound split rule"
	diag "$(tail -5 "$WORKDIR/ipmodd.log")"
fi

# --- the same split with the fast path on -------------------------------------
diag "at ${SECONDS}s: the same split with the fast path on"
# FASTPATH=off in the environment (runtests' valgrind step) skips it.
if [ "${FASTPATH:-}" = off ]; then
	ok "# SKIP the fast path case: FASTPATH=off"
	done_testing
	exit
fi
FASTPATH=on write_config "$WORKDIR/fp.conf" "rules = (
	{ name = \"split5d\"; proto = \"tcp\"; dport = 7104; split = \"5\"; disorder = true; }
);"
if start_ipmodd "$WORKDIR/fp.conf"; then
	ok "ipmodd starts with fastpath = \"on\" and a split rule"
	check_eq "status: fastpath=on" "$(status_field fastpath)" on
	check_eq "status: the split rule is handed to userspace (fastpath-punt-rules)" \
		"$(status_field fastpath-punt-rules)" 1
	split_case fp_s5d 4 7104 5 1
	check "ipmodd exits cleanly" stop_ipmodd
else
	not_ok "ipmodd starts with fastpath = \"on\" and a split rule"
fi

done_testing
