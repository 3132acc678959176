#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ipmodctl against a running ipmodd: live edits change the traffic at once,
# counters match what was sent, 100 reloads lose no ping, a broken reload
# keeps the chain, access control, trace, capture, save, and clients that
# crowd or stall the socket do not stall the packets.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd ping tcpdump tshark socat python3 setpriv
setup_topology || { echo "Bail out! cannot build the namespace topology"; exit 1; }

CONF=$WORKDIR/ipmodd.conf
SOCK=$WORKDIR/control.sock
RULES='rules = (
	{ name = "ttl-ping"; proto = "icmp"; icmp-type = "echo-request"; dst = "198.18.0.2"; set-ttl = 33; },
	{ name = "hl-ping"; proto = "icmpv6"; icmp-type = "echo-request"; dst = "2001:db8:77::2"; set-ttl = 44; }
);'
# The socket is world-connectable (0666) so that an unprivileged user can
# read; the group is "nogroup", so only root and its members may change.
write_config "$CONF" "$RULES"
sed -i 's|^control = .*|control = { socket = "'"$SOCK"'"; group = "nogroup"; mode = "0666"; };|' "$CONF"
chmod 0711 "$WORKDIR"

ctl() { ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" "$@"; }
# rule_field NAME FIELD: a rule's field from "ipmodctl rules --json".
rule_field() {
	ctl rules --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in d["rules"]:
    if r["name"] == sys.argv[1]:
        print(r[sys.argv[2]])' "$1" "$2"
}
rule_names() { ctl rules --json | python3 -c 'import json,sys; print(" ".join(r["name"] for r in json.load(sys.stdin)["rules"]))'; }
# peer_ttls PCAP: the TTLs of echo requests the peer received, sorted and unique.
peer_ttls() { tshark -r "$1" -Y 'icmp.type == 8' -T fields -e ip.ttl 2>/dev/null | sort -u | tr '\n' ' '; }

check "ipmodd starts" start_ipmodd "$CONF"
check "the socket is mode 0666, group nogroup" \
	bash -c "[ \"\$(stat -c '%a %G' '$SOCK')\" = '666 nogroup' ]"

# --- status and rules ------------------------------------------------------------
out=$(ctl status 2>&1)
check "ipmodctl status answers" grep -q tun0 <<<"$out"
out=$(ctl rules 2>&1)
check "ipmodctl rules lists both rules" bash -c "grep -q ttl-ping <<<'$out' && grep -q hl-ping <<<'$out'"
check_eq "rules in config order" "$(rule_names)" "ttl-ping hl-ping"
check_eq "list is an alias of rules" "$(ctl list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["rules"]))')" "2"

# --- live edits change the traffic at once ------------------------------------------
pcap_start edit "$PEER_NS" veth0 icmp
hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
check "add after ttl-ping with a name" ctl add after ttl-ping name=drop-udp proto=udp dport=7001 verdict=drop
check_eq "the new rule sits after ttl-ping" "$(rule_names)" "ttl-ping drop-udp hl-ping"
check "add at 1" ctl add at 1 name=first proto=icmp icmp-type=echo-request dst=198.18.0.2 set-ttl=77
hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
check "replace ttl-ping" ctl replace first name=first proto=icmp icmp-type=echo-request dst=198.18.0.2 set-ttl=55 verdict=accept
hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
check "del first" ctl del first
hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
check "flush" ctl flush
check_eq "the chain is empty after flush" "$(rule_names)" ""
hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
pcap_stop edit
# TTLs in order: 33 (config), 77 is overwritten by ttl-ping's 33 (the chain
# goes on after an action), then 55 (accept ends it), then 33, then 64 after flush.
seq=$(tshark -r "$WORKDIR/edit.pcap" -Y 'icmp.type == 8' -T fields -e ip.ttl 2>/dev/null | tr '\n' ' ')
check_eq "the peer saw each edit take effect at the next packet" "$seq" "33 33 33 33 55 55 33 33 64 64 "

# --- bad edits change nothing and say why ----------------------------------------
ctl reload >/dev/null
before=$(ctl rules --json | python3 -c 'import json,sys; print([r["spec"] for r in json.load(sys.stdin)["rules"]])')
out=$(ctl add proto=udp dport=70000 verdict=drop 2>&1); rc=$?
check_eq "a bad rule exits 1" "$rc" 1
check "... and names the bad key" grep -q "dport: '70000'" <<<"$out"
out=$(ctl add name=ttl-ping proto=udp verdict=drop 2>&1); rc=$?
check "a duplicate name is refused" bash -c "[ $rc = 1 ] && grep -qi 'exists' <<<'$out'"
out=$(ctl del nosuch 2>&1); rc=$?
check "del of an unknown rule is refused" bash -c "[ $rc = 1 ] && grep -q nosuch <<<'$out'"
out=$(ctl add before nosuch proto=udp verdict=drop 2>&1); rc=$?
check "add before an unknown rule is refused" bash -c "[ $rc = 1 ] && grep -q nosuch <<<'$out'"
out=$(ctl add at 9 proto=udp verdict=drop 2>&1); rc=$?
check "add at a position past the end is refused" bash -c "[ $rc = 1 ]"
after=$(ctl rules --json | python3 -c 'import json,sys; print([r["spec"] for r in json.load(sys.stdin)["rules"]])')
check_eq "none of them changed the chain" "$after" "$before"
ctl add proto >/dev/null 2>&1; rc=$?
check_eq "a word without = is a usage error (exit 2)" "$rc" 2
ctl frobnicate >/dev/null 2>&1; rc=$?
check_eq "an unknown command is a usage error (exit 2)" "$rc" 2

# --- 100 reloads under ping -i 0.01: no loss, exact counters -------------------------
ctl reset >/dev/null
ip netns exec "$HOST_NS" ping -i 0.01 -c 400 -W 1 "$PEER4" >"$WORKDIR/ping-reload.out" 2>&1 &
ping_pid=$!
fails=0
for i in $(seq 100); do
	ctl reload >/dev/null || fails=$((fails + 1))
done
wait "$ping_pid"
check_eq "100 reloads succeeded" "$fails" 0
check "ping -i 0.01 lost nothing during 100 reloads" grep -q '400 packets transmitted, 400 received' "$WORKDIR/ping-reload.out"
gen=$(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
check "the generation counted the reloads ($gen)" test "$gen" -ge 101
check_eq "ttl-ping counted every ping across the reloads" "$(rule_field ttl-ping packets)" 400
check_eq "... and their bytes" "$(rule_field ttl-ping bytes)" $((400 * 84))
check "reset" ctl reset
check_eq "reset zeroes the counters" "$(rule_field ttl-ping packets)" 0

# --- a broken reload keeps the chain and names file:line -------------------------------
cp "$CONF" "$CONF.good"
printf 'rules = (\n\t{ name = "x"; proto = "udp"; dport = 99999; verdict = "drop"; }\n);\n' >>"$CONF"
out=$(ctl reload 2>&1); rc=$?
check_eq "a broken reload exits 1" "$rc" 1
check "... and names file:line" grep -q "$CONF:[0-9]" <<<"$out"
check_eq "the running chain is kept" "$(rule_names)" "ttl-ping hl-ping"
hx ping -c 1 -W 1 "$PEER4" >/dev/null
check_eq "... and still works" "$(rule_field ttl-ping packets)" 1
cp "$CONF.good" "$CONF"

# --- save round-trips through reload ------------------------------------------------
ctl add name=mss proto=tcp dport=5002 tcp-flags=syn clamp-mss=1000 >/dev/null
ctl add name=dscp family=ip6 dst=2001:db8::/32 set-dscp=ef set-ecn=ect0 >/dev/null
ctl add name=rej proto=tcp dport=23 verdict=reject reject-with=tcp-reset >/dev/null
ctl add proto=udp sport=1000-2000 dport=!53 probability=0.5 verdict=drop >/dev/null
ctl add name=in-mss direction=in proto=tcp tcp-flags=syn,ack clamp-mss=1360 >/dev/null
ctl add name=both-dscp direction=both proto=udp dport=5003 set-dscp=cs1 >/dev/null
ctl add name=out-dscp direction=out proto=udp dport=5004 set-dscp=cs2 >/dev/null
check_eq "rules --json: direction is a match, the default out is not written" \
	"$(ctl rules --json | python3 -c 'import json,sys; r = {x["name"]: x for x in json.load(sys.stdin)["rules"]}; print(r["in-mss"]["match"].get("direction"), r["both-dscp"]["match"].get("direction"), r["out-dscp"]["match"].get("direction"), "direction" in r["in-mss"]["actions"])')" \
	"in both None False"
ctl rules --json | python3 -c 'import json,sys; print("\n".join(r["spec"] for r in json.load(sys.stdin)["rules"]))' >"$WORKDIR/live.specs"
ctl save >"$WORKDIR/saved.conf"; rc=$?
check_eq "save exits 0" "$rc" 0
check "save writes direction in and both, and leaves the default out out" \
	bash -c 'grep -q "name = \"in-mss\"; direction = \"in\";" "$1" && grep -q "direction = \"both\"" "$1" && ! grep -q "direction = \"out\"" "$1"' _ "$WORKDIR/saved.conf"
{ sed -n '1,/^control/p' "$CONF.good"; cat "$WORKDIR/saved.conf"; } >"$CONF"
check "the saved chain is a valid config" hx "$IPMODD" --check-config -c "$CONF"
check "reload of the saved chain" ctl reload
ctl rules --json | python3 -c 'import json,sys; print("\n".join(r["spec"] for r in json.load(sys.stdin)["rules"]))' >"$WORKDIR/reloaded.specs"
check "save and reload give the identical chain ($(wc -l <"$WORKDIR/live.specs") rules)" \
	cmp "$WORKDIR/live.specs" "$WORKDIR/reloaded.specs"
cp "$CONF.good" "$CONF"
ctl reload >/dev/null

# --- access control ---------------------------------------------------------------------
as_user() { ip netns exec "$HOST_NS" setpriv --reuid=nobody --regid="$1" --clear-groups "$IPMODCTL" -s "$SOCK" "${@:2}"; }
out=$(as_user users status 2>&1)
check "a user outside the group reads status" grep -q tun0 <<<"$out"
check "... and rules" as_user users rules
refused=0
for cmd in "add proto=udp verdict=drop" "del ttl-ping" "replace ttl-ping proto=udp verdict=drop" \
	   "flush" "reload" "reset"; do
	out=$(as_user users $cmd 2>&1); rc=$?
	if [ "$rc" = 1 ] && grep -qi 'permission denied' <<<"$out"; then
		refused=$((refused + 1))
	else
		diag "'$cmd' as nobody: exit $rc: $out"
	fi
done
check_eq "every mutation is refused to a user outside the group" "$refused" 6
check_eq "the chain is untouched" "$(rule_names)" "ttl-ping hl-ping"
check "a member of the group may change the chain" as_user nogroup add name=by-group proto=udp dport=9 verdict=drop
check "... and delete" as_user nogroup del by-group

# --- trace --------------------------------------------------------------------------
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" trace proto=icmp >"$WORKDIR/trace.out" 2>&1 &
trace_pid=$!
sleep 0.3
hx ping -c 2 -i 0.2 -W 1 "$PEER4" >/dev/null
hx ping -6 -c 1 -W 1 "$PEER6" >/dev/null
echo x | hx socat -u - "UDP4:$PEER4:7002"
sleep 0.3
kill "$trace_pid"; wait "$trace_pid" 2>/dev/null
check "trace shows the rule that matched a ping" \
	grep -q "src=198.18.0.1 dst=198.18.0.2 proto=icmp icmp-type=echo-request icmp-code=0 len=84 rule=ttl-ping set-ttl=33 result=accept" "$WORKDIR/trace.out"
check_eq "trace shows both pings" "$(grep -c 'rule=ttl-ping' "$WORKDIR/trace.out")" 2
check "the proto=icmp filter kept out ICMPv6 and UDP" \
	bash -c "! grep -q -e 'family=ip6' -e 'proto=udp' '$WORKDIR/trace.out'"

# --- capture ----------------------------------------------------------------------------
umask 022
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" capture -c 10 -w "$WORKDIR/cap10.pcapng" 2>"$WORKDIR/cap10.err" &
cap_pid=$!
sleep 0.3
hx ping -c 8 -i 0.05 -W 1 "$PEER4" >/dev/null
wait "$cap_pid"; rc=$?
check_eq "capture -c 10 exits 0 by itself" "$rc" 0
check_eq "tcpdump -r reads 10 packets" "$(tcpdump -n -r "$WORKDIR/cap10.pcapng" 2>/dev/null | wc -l)" 10
check "ipmodctl says how many it captured" grep -q '10 packets captured' "$WORKDIR/cap10.err"
ttls=$(tshark -r "$WORKDIR/cap10.pcapng" -T fields -e frame.comment -e ip.ttl 2>/dev/null | sort -u | tr '\t\n' ': ')
check_eq "before has TTL 64, after has the rewritten 33" "$ttls" "after:33 before:64 "
# Payloads are private: 0600 whatever the umask, and no symbolic link followed.
check_eq "the capture file is mode 0600 (umask 022)" "$(stat -c %a "$WORKDIR/cap10.pcapng")" 600
echo keep >"$WORKDIR/victim"
chmod 0644 "$WORKDIR/victim"
ln -s "$WORKDIR/victim" "$WORKDIR/link.pcapng"
# Bounded: a capture that follows the link waits for a packet.
out=$(timeout 5 ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" capture -c 1 -w "$WORKDIR/link.pcapng" 2>&1); rc=$?
check "capture -w onto a symbolic link is refused (exit 1)" \
	bash -c "[ $rc = 1 ] && grep -q 'symbolic link' <<<'$out'"
check_eq "... and the file it points to is untouched" "$(cat "$WORKDIR/victim")" keep
echo old >"$WORKDIR/shared.pcapng"
chmod 0644 "$WORKDIR/shared.pcapng"
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" capture -c 1 -w "$WORKDIR/shared.pcapng" >/dev/null 2>&1 &
cap_pid=$!
sleep 0.3
hx ping -c 1 -W 1 "$PEER4" >/dev/null
wait "$cap_pid"
check_eq "an existing 0644 file written by capture becomes 0600" "$(stat -c %a "$WORKDIR/shared.pcapng")" 600
ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" capture rule=hl-ping --when after -c 3 -w - >"$WORKDIR/pipe.pcapng" 2>/dev/null &
cap_pid=$!
sleep 0.3
hx ping -c 2 -i 0.1 -W 1 "$PEER4" >/dev/null
hx ping -6 -c 3 -i 0.1 -W 1 "$PEER6" >/dev/null
wait "$cap_pid"
out=$(tcpdump -n -r - <"$WORKDIR/pipe.pcapng" 2>/dev/null)
check_eq "capture rule=hl-ping -w - | tcpdump -r - reads 3 packets" "$(wc -l <<<"$out")" 3
check "... only that rule's IPv6 pings" bash -c "[ \$(grep -c 'ICMP6, echo request' <<<'$out') = 3 ]"
check_eq "... with the rewritten hop limit" \
	"$(tshark -r "$WORKDIR/pipe.pcapng" -T fields -e ipv6.hlim 2>/dev/null | sort -u)" 44

# --- crowds and stalled clients do not stall traffic -----------------------------------------
ip netns exec "$HOST_NS" ping -i 0.01 -c 300 -W 1 "$PEER4" >"$WORKDIR/ping-crowd.out" 2>&1 &
ping_pid=$!
# A client that asks for a capture and never reads, one that pipelines requests
# without reading the replies, and 200 clients at once.
# They hold on until the test removes $WORKDIR/hold (at most 60 s).
touch "$WORKDIR/hold"
ip netns exec "$HOST_NS" python3 - "$SOCK" "$WORKDIR/hold" <<'EOF' &
import os, socket, sys, time
caps = socket.socket(socket.AF_UNIX); caps.connect(sys.argv[1])
caps.sendall(b"capture=all\n\n")
spam = socket.socket(socket.AF_UNIX); spam.connect(sys.argv[1])
spam.setblocking(False)
try:
    for _ in range(20000):
        spam.send(b"get=rules\n\n")
except BlockingIOError:
    pass
deadline = time.time() + 60
while os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.1)
EOF
stall_pid=$!
BG_PIDS+=("$stall_pid")
sleep 0.5
pids=()
for i in $(seq 200); do
	ip netns exec "$HOST_NS" "$IPMODCTL" -s "$SOCK" status >/dev/null 2>&1 &
	pids+=($!)
done
answered=0
for p in "${pids[@]}"; do wait "$p" && answered=$((answered + 1)); done
check_eq "200 concurrent clients are all answered" "$answered" 200
wait "$ping_pid"
check "ping -i 0.01 lost nothing meanwhile" grep -q '300 packets transmitted, 300 received' "$WORKDIR/ping-crowd.out"
out=$(ctl status --json 2>&1)
check "status still answers while the stalled clients hold on" grep -q '"streams": *1' <<<"$out"
rm -f "$WORKDIR/hold"
wait "$stall_pid"

# A capture client that reads too slowly loses packets and is told so in-band
# (epb_dropcount); the transfer it watches is unaffected.
head -c 8000000 /dev/urandom >"$WORKDIR/blob"
ip netns exec "$PEER_NS" socat -u TCP4-LISTEN:5005,reuseaddr OPEN:"$WORKDIR/blob.rx",creat,trunc &
srv=$!
sleep 0.3
touch "$WORKDIR/hold"
ip netns exec "$HOST_NS" python3 - "$SOCK" "$WORKDIR/slow.pcapng" "$WORKDIR/hold" <<'EOF' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"capture=all\n\n")
deadline = time.time() + 60	# reads nothing until the transfer is over
while os.path.exists(sys.argv[3]) and time.time() < deadline:
    time.sleep(0.1)
def drain():
    got = b""
    s.settimeout(1.0)
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    return got
data = drain()
# The loss is told on the next packet delivered: ask for one more, now that there is room.
open(sys.argv[3] + ".drained", "w").close()
while not os.path.exists(sys.argv[3] + ".pinged") and time.time() < deadline:
    time.sleep(0.05)
data += drain()
open(sys.argv[2], "wb").write(data.split(b"\n\n", 1)[1])
EOF
slow_pid=$!
# The transfer only once the capture stream is open (a loaded machine starts python slowly).
capture_open() { ctl status --json 2>/dev/null | grep -q '"streams": *1'; }
check "the slow capture client's stream is open" wait_for 20 capture_open
t0=$SECONDS
hx socat -u OPEN:"$WORKDIR/blob" TCP4:"$PEER4":5005
wait "$srv"
diag "the 8 MB transfer took $((SECONDS - t0)) s"
check "the 8 MB transfer arrived intact under a stalled capture" cmp "$WORKDIR/blob" "$WORKDIR/blob.rx"
rm -f "$WORKDIR/hold"
for i in $(seq 100); do [ -e "$WORKDIR/hold.drained" ] && break; sleep 0.1; done
hx ping -c2 -i0.1 -W1 "$PEER4" >/dev/null
touch "$WORKDIR/hold.pinged"
wait "$slow_pid"
lost=$(python3 - "$WORKDIR/slow.pcapng" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
off, lost, pkts = 0, 0, 0
while off + 12 <= len(d):
    btype, blen = struct.unpack_from("<II", d, off)
    if blen < 12 or off + blen > len(d):
        break
    if btype == 6:
        pkts += 1
        caplen = struct.unpack_from("<I", d, off + 20)[0]
        o = off + 28 + (caplen + 3) // 4 * 4
        while o + 4 <= off + blen - 4:
            code, olen = struct.unpack_from("<HH", d, o)
            if code == 0:
                break
            if code == 4:
                lost += struct.unpack_from("<Q", d, o + 4)[0]
            o += 4 + (olen + 3) // 4 * 4
    off += blen
print(pkts, lost)
EOF
)
diag "stalled capture: $lost (packets received, lost)"
check "the stalled capture client is told how many packets it lost" \
	bash -c "[ '${lost#* }' -gt 0 ] && [ '${lost% *}' -gt 0 ]"

stop_ipmodd; rc=$?
check_eq "ipmodd exits 0" "$rc" 0
done_testing
