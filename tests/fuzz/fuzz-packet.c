/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the parser, the rewrites, the forges and the rule
 * chain.  Any input
 * either fails pkt_parse() with a known class, or survives every setter and
 * forge, with these invariants:
 * - rewrites keep the packet parseable, and once its checksums are right,
 *   the incremental updates equal a full recompute byte for byte;
 * - a forged packet parses, its checksums are already what a full recompute
 *   gives, and it is never itself answered with an error, a reset or a
 *   reply to a reply; it needs exactly the room it takes;
 * - the rule chain (every match and action kind) leaves an accepted packet
 *   parseable with the checksums a full recompute gives, and what it forges
 *   parses too;
 * - impairment hands out 0..2 copies, none due before the packet came, and
 *   a corrupted copy parses as the same packet (same protocol, ports and
 *   length), only its checksum no longer matches.
 *
 * By hand: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *	tests/fuzz/fuzz-packet.c src/packet.c src/forge.c src/rule.c src/chain.c \
 *	src/impair.c -o fuzz-packet
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "chain.h"
#include "forge.h"
#include "util.h"

#define check(cond)                    \
	do {                           \
		if (!(cond))           \
			abort();       \
	} while (0)

/*
 * The input, its re-parsed copies and the exact-room forges sit at the end
 * of their buffers, so that ASan sees any access past len or cap as a
 * global buffer overflow.
 */
static uint8_t pbuf[PKT_MAX], cbuf[PKT_MAX], obuf[PKT_MAX], o2buf[PKT_MAX], tbuf[PKT_MAX];
static uint8_t chbuf[PKT_MAX], fbuf[PKT_MAX];


enum { ECHO, RESET, UNREACH };

static int forge(int what, const struct pkt *req, int kind, struct pkt *out)
{
	switch (what) {
	case ECHO:
		return forge_echo_reply(req, out);
	case RESET:
		return forge_tcp_reset(req, out);
	}
	return forge_unreachable(req, kind, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A re-parsed copy of p recomputed in full must equal p. */
static void check_csum_stable(const struct pkt *p)
{
	struct pkt c = { .data = cbuf + sizeof(cbuf) - p->len, .len = p->len, .cap = p->len };

	memcpy(c.data, p->data, p->len);
	check(pkt_parse(&c) == PKT_OK);
	check(c.family == p->family && c.l4proto == p->l4proto && c.l4off == p->l4off &&
	      c.l4_complete == p->l4_complete && c.fragment == p->fragment);
	pkt_csum_full(&c);
	check(memcmp(c.data, p->data, p->len) == 0);
}

/* What we forged must not provoke another forge. */
static void check_no_answer(const struct pkt *f)
{
	struct pkt o = { .data = o2buf, .cap = sizeof(o2buf) };
	int k;

	if (f->l4proto == IPPROTO_ICMP || f->l4proto == IPPROTO_ICMPV6) {
		check(forge_echo_reply(f, &o) == -EPERM);
		if (f->icmp_type != 0 && f->icmp_type != 129)
			for (k = FORGE_UNREACH_NET; k <= FORGE_UNREACH_ADMIN; k++)
				check(forge_unreachable(f, k, &o) == -EPERM);
	}
	if (f->l4proto == IPPROTO_TCP)
		check(forge_tcp_reset(f, &o) == -EPERM);
}

static void check_forged(const struct pkt *req, const struct pkt *f, int r, int what, int kind)
{
	struct pkt t;

	check(r == 0 || r == -EPERM);
	if (r)
		return;
	check(f->len <= f->cap && f->len >= 28);
	check(f->family == req->family && !f->fragment && f->l4_complete);
	check(memcmp(pkt_saddr(f), pkt_daddr(req), f->family == AF_INET ? 4 : 16) == 0);
	check(memcmp(pkt_daddr(f), pkt_saddr(req), f->family == AF_INET ? 4 : 16) == 0);
	check(pkt_ttl(f) == FORGE_TTL);
	check(f->len <= (f->family == AF_INET ? 576u : 1280u) || f->icmp_type == 0 ||
	      f->icmp_type == 129);
	check_csum_stable(f);
	check_no_answer(f);

	/* Exactly enough room works; one byte less is refused. */
	t = (struct pkt){ .data = tbuf + sizeof(tbuf) - f->len, .cap = f->len };
	check(forge(what, req, kind, &t) == 0 && t.len == f->len);
	t = (struct pkt){ .data = tbuf + sizeof(tbuf) - (f->len - 1), .cap = f->len - 1 };
	check(forge(what, req, kind, &t) == -ENOSPC);
}

static void forge_all(const struct pkt *req)
{
	struct pkt out = { .data = obuf, .cap = sizeof(obuf) };
	int k, r;

	r = forge_echo_reply(req, &out);
	check_forged(req, &out, r, ECHO, 0);
	if (r == 0) {
		check(out.len == (req->family == AF_INET ? 20u : 40u) + req->len - req->l4off);
		check(memcmp(obuf + out.l4off + 4, req->data + req->l4off + 4,
			     out.len - out.l4off - 4) == 0);
	}

	r = forge_tcp_reset(req, &out);
	check_forged(req, &out, r, RESET, 0);
	if (r == 0)
		check(out.l4proto == IPPROTO_TCP && (out.tcp_flags & 0x04));

	for (k = FORGE_UNREACH_NET; k <= FORGE_UNREACH_ADMIN; k++) {
		r = forge_unreachable(req, k, &out);
		check_forged(req, &out, r, UNREACH, k);
		if (r == 0)
			check(memcmp(obuf + out.l4off + 8, req->data,
				     out.len - out.l4off - 8) == 0);
	}
}

/* The edits a rule chain may apply, with arguments taken from the input. */
static void edit(struct pkt *p, const uint8_t *data, size_t size)
{
	uint8_t a = data[size / 2], b = data[size - 1], *addr;
	uint32_t old, new;

	pkt_set_ttl(p, a);
	pkt_set_dscp(p, b);
	pkt_set_ecn(p, (uint8_t)(a ^ b));
	pkt_clamp_mss(p, (uint16_t)(a << 8 | b));
	pkt_clamp_mss(p, 536);
	pkt_forward_compensate(p);

	/* An address and a port rewritten, as a NAT would. */
	addr = p->data + (p->family == AF_INET ? 12 : 8);
	old = (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 | (uint32_t)addr[2] << 8 | addr[3];
	new = old ^ (uint32_t)b << 24 ^ a;
	addr[0] = (uint8_t)(new >> 24);
	addr[3] = (uint8_t)new;
	if (p->family == AF_INET) {
		uint16_t c = csum_replace4((uint16_t)(p->data[10] << 8 | p->data[11]), old, new);

		p->data[10] = (uint8_t)(c >> 8);
		p->data[11] = (uint8_t)c;
	}
	pkt_l4_csum_replace4(p, old, new, true);
	if (p->l4_complete && (p->l4proto == IPPROTO_TCP || p->l4proto == IPPROTO_UDP)) {
		uint8_t *port = p->data + p->l4off;
		uint8_t *ck = port + (p->l4proto == IPPROTO_TCP ? 16 : 6);
		uint16_t op = (uint16_t)(port[0] << 8 | port[1]);
		uint16_t want = csum_udp_replace2((uint16_t)(ck[0] << 8 | ck[1]), op,
						  (uint16_t)(op ^ a), p->family);

		port[1] ^= a;
		pkt_l4_csum_replace2(p, op, (uint16_t)(op ^ a), false);
		if (p->l4proto == IPPROTO_UDP)
			check((uint16_t)(ck[0] << 8 | ck[1]) == want);
	}
}

/* One rule of every match and action kind; most never end the chain. */
static const char *const rule_texts[] = {
	"name=ttl-all set-ttl=+1",
	"name=in-ttl direction=in set-ttl=64",
	"name=both-mss direction=both proto=tcp tcp-flags=syn clamp-mss=600",
	"name=in-rst direction=in proto=tcp dport=22 verdict=reject reject-with=tcp-reset",
	"name=in-drop direction=in family=ip dst=10.0.0.0/8 proto=udp dport=9 verdict=drop",
	"name=v4 family=ip src=0.0.0.0/1 dst=!10.0.0.0/8 set-dscp=ef",
	"name=v6 family=ip6 dst=2000::/3 set-ecn=ce length=40-1500",
	"name=syn proto=tcp tcp-flags=syn,!ack clamp-mss=536",
	"name=ports proto=udp sport=1-1024 dport=!53 ttl=1-200 set-ttl=-3",
	"name=dscp dscp=af41 set-dscp=cs1",
	"name=maybe probability=0.5 set-ecn=ect1",
	"name=slow proto=udp dport=0-99 delay=1 jitter=2 distribution=normal duplicate=0.5 "
		"loss=0.2 reorder=0.3 rate=1mbit limit=10",
	"name=flip proto=tcp dport=2000-3000 corrupt=0.7 duplicate=0.3 loss=gemodel:0.1,0.3",
	"name=flip-gre proto=47 corrupt=1",
	"name=flip-v6 family=ip6 length=1000-1500 corrupt=1 duplicate=0.5",
	"name=late-pong family=ip proto=icmp icmp-type=echo-request dst=128.0.0.0/1 "
		"verdict=reply delay=2 corrupt=0.5",
	"name=ping4 proto=icmp icmp-type=echo-request verdict=reply",
	"name=ping6 proto=icmpv6 icmp-type=echo-request icmp-code=0 verdict=reply",
	"name=rst proto=tcp dport=0-1000 verdict=reject reject-with=tcp-reset",
	"name=unreach proto=udp verdict=reject reject-with=admin-prohibited",
	"name=drop family=ip6 proto=tcp verdict=drop",
};

static struct chain *build_chain(bool linear)
{
	struct chain *chain = NULL;
	struct rule *rules[ARRAY_SIZE(rule_texts)];
	struct rule_kv kv[RULE_KV_MAX];
	char text[256], err[256], *tok, *save;
	size_t i, n, bad;

	for (i = 0; i < ARRAY_SIZE(rule_texts); i++) {
		snprintf(text, sizeof(text), "%s", rule_texts[i]);
		n = 0;
		for (tok = strtok_r(text, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			char *eq = strchr(tok, '=');

			check(eq && n < RULE_KV_MAX);
			*eq = '\0';
			kv[n++] = (struct rule_kv){ tok, eq + 1 };
		}
		check(rule_parse(kv, n, &rules[i], &bad, err, sizeof(err)) == 0);
	}
	check(chain_new(rules, ARRAY_SIZE(rules), &chain, err, sizeof(err)) == 0);
	chain_seed(chain, 1);
	chain_set_linear(chain, linear);
	for (i = 0; i < ARRAY_SIZE(rules); i++)
		rule_free(rules[i]);
	return chain;
}

static struct chain *fuzz_chain(void)
{
	static struct chain *chain;

	if (!chain)
		chain = build_chain(false);
	return chain;
}

/*
 * The rule index must only skip rules that cannot match: the same packet
 * through an indexed chain and a linear one gives the same verdict, bytes
 * and matched rules.  Both are reseeded for every packet.
 */
static void check_index(const struct pkt *in)
{
	static struct chain *indexed, *linear;
	static uint8_t b1[PKT_MAX], b2[PKT_MAX], f1[PKT_MAX], f2[PKT_MAX];
	struct pkt p1 = { .data = b1, .len = in->len, .cap = in->len, .dir = in->dir };
	struct pkt p2 = { .data = b2, .len = in->len, .cap = in->len, .dir = in->dir };
	struct pkt q1 = { .data = f1, .cap = sizeof(f1) }, q2 = { .data = f2, .cap = sizeof(f2) };
	struct chain_trace t1, t2;
	int v1, v2;

	if (!indexed) {
		indexed = build_chain(false);
		linear = build_chain(true);
	}
	chain_seed(indexed, in->len);
	chain_seed(linear, in->len);
	memcpy(b1, in->data, in->len);
	memcpy(b2, in->data, in->len);
	check(pkt_parse(&p1) == PKT_OK && pkt_parse(&p2) == PKT_OK);
	v1 = (int)chain_run_trace(indexed, &p1, &q1, 1, &t1);
	v2 = (int)chain_run_trace(linear, &p2, &q2, 1, &t2);
	check(v1 == v2 && t1.n == t2.n && t1.result == t2.result);
	check(memcmp(t1.idx, t2.idx, (t1.n < CHAIN_TRACE_MAX ? t1.n : CHAIN_TRACE_MAX) * sizeof(t1.idx[0])) == 0);
	check(p1.len == p2.len && memcmp(b1, b2, p1.len) == 0);
	if (v1 == CHAIN_FORGED)
		check(q1.len == q2.len && memcmp(f1, f2, q1.len) == 0);
}

/*
 * The copies an impairing rule hands out for q; a corrupted one still parses
 * as q.  Returns whether q was corrupted (its checksum is wrong on purpose).
 */
static bool check_impaired(struct pkt *q, const struct chain_impair *imp, uint64_t now_ns)
{
	struct pkt was = *q, again;

	check(imp->res.n >= 1 && imp->res.n <= IMPAIR_COPIES_MAX && imp->now_ns == now_ns);
	for (unsigned int k = 0; k < imp->res.n; k++)
		check(imp->res.copy[k].at_ns >= now_ns);
	check(imp->res.n == 1 || !imp->res.copy[1].corrupt);
	if (!imp->res.copy[0].corrupt)
		return false;
	check(chain_impair_corrupt(fuzz_chain(), q) >= 0 || q->l4off >= q->len);
	again = (struct pkt){ .data = q->data, .len = q->len, .cap = q->cap };
	check(pkt_parse(&again) == PKT_OK);
	check(again.l4proto == was.l4proto && again.l4off == was.l4off &&
	      again.l4_complete == was.l4_complete && again.len == was.len);
	if (was.l4_complete && (was.l4proto == IPPROTO_TCP || was.l4proto == IPPROTO_UDP))
		check(again.sport == was.sport && again.dport == was.dport);
	return true;
}

static void run_chain(const struct pkt *in, bool comparable, uint64_t now_ns)
{
	struct pkt p = { .data = chbuf + sizeof(chbuf) - in->len, .len = in->len, .cap = in->len,
			 .dir = in->dir };
	struct pkt f = { .data = fbuf, .cap = sizeof(fbuf) };
	struct chain_impair imp;

	memcpy(p.data, in->data, in->len);
	check(pkt_parse(&p) == PKT_OK);
	switch (chain_run_impair(fuzz_chain(), &p, &f, now_ns, NULL, &imp)) {
	case CHAIN_ACCEPT:
		if (imp.impaired && check_impaired(&p, &imp, now_ns))
			break;
		if (comparable)
			check_csum_stable(&p);
		else
			check(pkt_parse(&p) == PKT_OK);
		break;
	case CHAIN_FORGED:
		check(f.len <= f.cap);
		check(pkt_parse(&f) == PKT_OK);
		if (imp.impaired && check_impaired(&f, &imp, now_ns))
			break;
		check_csum_stable(&f);
		break;
	case CHAIN_DROP:
		check(!imp.impaired || imp.res.n == 0);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt p;
	bool comparable;
	int r;

	if (size > sizeof(pbuf))
		return 0;
	/* Inbound or outbound, by the last byte: each direction has its own rules and index. */
	p = (struct pkt){ .data = pbuf + sizeof(pbuf) - size, .len = size, .cap = size,
			  .dir = size && (data[size - 1] & 1) ? PKT_DIR_IN : PKT_DIR_OUT };
	memcpy(p.data, data, size);
	r = pkt_parse(&p);
	check(r >= 0 && r < PKT_CLASS_MAX);
	check(strcmp(pkt_class_name(r), "unknown") != 0);
	if (r != PKT_OK)
		return 0;
	check(p.family == AF_INET || p.family == AF_INET6);
	check(p.l4off <= p.len && pkt_ip_len(&p) == p.len);
	check(!p.l4_complete || p.first_fragment);
	(void)pkt_is_icmp_error(&p);
	check(pkt_ip6_nexthdr_offset(&p) < p.len);
	check_index(&p);

	/* The request as it came, checksums and all. */
	forge_all(&p);

	/*
	 * Make every checksum right, then edit: the incremental result must be
	 * the full one.  Not where pkt_csum_full() leaves L4 alone: fragments,
	 * and IPv6 with extension headers (a routing header may name another
	 * final destination).
	 */
	pkt_csum_full(&p);
	check_csum_stable(&p);
	comparable = !p.fragment && (p.family == AF_INET || p.l4off == 40);
	if (comparable) {
		edit(&p, data, size);
		check_csum_stable(&p);
	} else {
		edit(&p, data, size);
		check(pkt_parse(&p) == PKT_OK);
		pkt_csum_full(&p);
	}
	forge_all(&p);
	run_chain(&p, comparable, (uint64_t)data[0] * 7919 * 1000000ULL);
	return 0;
}
