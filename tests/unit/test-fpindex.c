/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fast path's index (fpindex.c) against a linear scan: for random rule
 * sets and random packets, the candidates the kernel would gather (looked
 * up here as the tc program does: the two generic lists of the packet's
 * family and proto, the port entries, the longest dst and src prefix entry
 * of its family) must hold every rule chain_rule_matches() says the packet
 * matches, in rule order, each once, unless a list was too long (the
 * packet goes to userspace).  Then the bench's 10,000 rules, a covering
 * prefix with more specific ones inside it (leaf pushing), and a small
 * order array that forces the too-long marker.  TEST_SEED=N picks another
 * seed.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "chain.h"
#include "fastpath.h"
#include "fpindex.h"
#include "packet.h"
#include "rule.h"
#include "rng.h"
#include "ruleline.h"
#include "tap.h"
#include "util.h"

static const char *const v4pool[] = { "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.1.0.1",
				      "192.0.2.1", "192.0.2.77", "203.0.113.5" };
static const char *const v6pool[] = { "fd00::1", "fd00::2", "fd00:0:0:1::1", "2001:db8::5",
				      "2001:db8:1::5" };
static const uint16_t portpool[] = { 22, 53, 80, 443, 1000, 1001, 8080 };

/* ---- the kernel's lookups, on the index as fpindex.h describes it ---------- */

static bool prefix_holds(const struct fpindex_prefix *e, int family, const uint8_t *addr)
{
	unsigned int len = e->len;

	if (e->family != family)
		return false;
	if (memcmp(e->addr, addr, len / 8) != 0)
		return false;
	return len % 8 == 0 ||
	       ((e->addr[len / 8] ^ addr[len / 8]) & (uint8_t)(0xff00 >> (len % 8))) == 0;
}

/* The LPM trie's answer: the longest entry holding addr. */
static const struct fpindex_list *lpm(const struct fpindex *ix, bool src, int family,
				      const uint8_t *addr)
{
	const struct fpindex_prefix *best = NULL;

	for (size_t i = 0; i < ix->nprefixes[src]; i++) {
		const struct fpindex_prefix *e = &ix->prefixes[src][i];

		if (prefix_holds(e, family, addr) && (!best || e->len > best->len))
			best = e;
	}
	return best ? &best->l : NULL;
}

static const struct fpindex_list *port(const struct fpindex *ix, bool sport, uint8_t proto,
				       uint16_t v)
{
	for (size_t i = 0; i < ix->nports; i++) {
		const struct fpindex_port *e = &ix->ports[i];

		if (e->sport == sport && e->proto == proto && e->port == v)
			return &e->l;
	}
	return NULL;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The candidates in rule order, or -1 when a list is too long (userspace). */
static long candidates(const struct fpindex *ix, const struct pkt *p, uint32_t *out)
{
	bool v6 = p->family == AF_INET6, l4 = p->l4_complete && p->first_fragment;
	const struct fpindex_list *l[6] = {
		&ix->generic[v6][FPINDEX_ANY], &ix->generic[v6][p->l4proto],
		l4 ? port(ix, false, p->l4proto, p->dport) : NULL,
		l4 ? port(ix, true, p->l4proto, p->sport) : NULL,
		lpm(ix, false, p->family, pkt_daddr(p)), lpm(ix, true, p->family, pkt_saddr(p)),
	};
	size_t n = 0;

	for (size_t k = 0; k < 6; k++) {
		if (!l[k] || !l[k]->count)
			continue;
		if (l[k]->count == FPINDEX_PUNT)
			return -1;
		if (l[k]->start + l[k]->count > ix->norder)
			return -2;
		memcpy(out + n, ix->order + l[k]->start, l[k]->count * sizeof(*out));
		n += l[k]->count;
	}
	qsort(out, n, sizeof(*out), u32_cmp);
	return (long)n;
}

/* ---- rules and packets -------------------------------------------------------- */

static struct rule *gen_rule(void)
{
	static const unsigned int l4[] = { 8, 16, 24, 30, 32, 32 };
	static const unsigned int l6[] = { 16, 32, 48, 64, 112, 128, 128 };

	for (;;) {
		char line[512], *o = line;
		const char *end = line + sizeof(line);
		int family = PICK(((const int[]){ 0, 0, AF_INET, AF_INET6 }));
		int afam = family ? family : pct(50) ? AF_INET : AF_INET6;
		unsigned int proto = PICK(((const unsigned int[]){ 0, 0, IPPROTO_TCP, IPPROTO_UDP,
								   IPPROTO_ICMP, 47 }));
		bool ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP;
		struct rule *r;

		if (proto == IPPROTO_ICMP && afam == AF_INET6)
			proto = IPPROTO_ICMPV6;
		put(&o, end, "verdict=%s", pct(50) ? "drop" : "accept");
		if (pct(50))	/* one that continues */
			o = line + snprintf(line, sizeof(line), "set-ttl=-1");
		if (family)
			put(&o, end, " family=%s", family == AF_INET ? "ip" : "ip6");
		if (proto)
			put(&o, end, " proto=%u", proto);
		for (unsigned int src = 0; src < 2; src++) {
			bool v6 = afam == AF_INET6;

			if (!pct(src ? 25 : 50))
				continue;
			put(&o, end, " %s=%s%s/%u", src ? "src" : "dst", pct(10) ? "!" : "",
			    v6 ? PICK(v6pool) : PICK(v4pool),
			    pct(15) ? 1 + rnd(v6 ? 128 : 32) : v6 ? PICK(l6) : PICK(l4));
		}
		if (ports && pct(50))
			put(&o, end, " dport=%s%u%s", pct(10) ? "!" : "", PICK(portpool),
			    pct(15) ? "-9000" : "");
		if (ports && pct(25))
			put(&o, end, " sport=%u", PICK(portpool));
		if (pct(10))
			put(&o, end, " ttl=1-%u", 1 + rnd(255));
		r = rule_of(line);
		if (r)
			return r;
	}
}

static void addr_near(int family, uint8_t *a)
{
	size_t n = family == AF_INET ? 4 : 16;

	inet_pton(family, family == AF_INET ? PICK(v4pool) : PICK(v6pool), a);
	if (pct(25))
		a[n - 1 - rnd(family == AF_INET ? 2 : 8)] ^= (uint8_t)(1 + rnd(255));
	else if (pct(10))
		for (size_t i = 0; i < n; i++)
			a[i] = (uint8_t)rnd(256);
}

/* A TCP, UDP, ICMP(v6) or GRE packet that pkt_parse() accepts. */
static void gen_packet(uint8_t *buf, size_t cap, struct pkt *p)
{
	for (;;) {
		int family = pct(50) ? AF_INET : AF_INET6;
		bool v6 = family == AF_INET6;
		unsigned int proto = PICK(((const unsigned int[]){ IPPROTO_TCP, IPPROTO_UDP,
								   IPPROTO_ICMP, 47 }));
		size_t hl = v6 ? 40 : 20, l4len = proto == IPPROTO_TCP ? 20 : 8;
		uint8_t *l4 = buf + hl;

		memset(buf, 0, cap);
		if (proto == IPPROTO_ICMP && v6)
			proto = IPPROTO_ICMPV6;
		if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
			put_be16(l4, pct(70) ? PICK(portpool) : (uint16_t)rnd(65536));
			put_be16(l4 + 2, pct(70) ? PICK(portpool) : (uint16_t)rnd(65536));
			if (proto == IPPROTO_TCP)
				l4[12] = 5 << 4;
			else
				put_be16(l4 + 4, (uint16_t)l4len);
		} else {
			l4[0] = v6 ? 128 : 8;
		}
		if (!v6) {
			buf[0] = 0x45;
			put_be16(buf + 2, (uint16_t)(hl + l4len));
			buf[8] = (uint8_t)(1 + rnd(255));
			buf[9] = (uint8_t)proto;
			addr_near(AF_INET, buf + 12);
			addr_near(AF_INET, buf + 16);
		} else {
			buf[0] = 0x60;
			put_be16(buf + 4, (uint16_t)l4len);
			buf[6] = (uint8_t)proto;
			buf[7] = (uint8_t)(1 + rnd(255));
			addr_near(AF_INET6, buf + 8);
			addr_near(AF_INET6, buf + 24);
		}
		*p = (struct pkt){ .data = buf, .len = hl + l4len, .cap = cap };
		if (pkt_parse(p) == PKT_OK)
			return;
	}
}

/* ---- the comparison -------------------------------------------------------------- */

static struct {
	uint64_t packets, matched, punted, candidates, absent;
} seen;

/*
 * npkts random packets against rules: 0 when every packet's candidates hold
 * its matches.  With absent_pct, that share of the rules is left out of the
 * index (a NULL match: a rule of the other direction) and must be no
 * packet's candidate.
 */
static int check(struct rule *const *rules, size_t n, size_t order_max, unsigned int npkts,
		 unsigned int absent_pct)
{
	_cleanup_(freep) const struct rule_match **m = calloc(n ? n : 1, sizeof(*m));
	_cleanup_(freep) uint32_t *cand = calloc(n ? n : 1, sizeof(*cand));
	struct fpindex *ix = NULL;
	uint8_t buf[128];
	struct pkt p;
	int r = 0;

	if (!m || !cand)
		return -1;
	for (size_t i = 0; i < n; i++)
		m[i] = rnd(100) < absent_pct ? NULL : &rules[i]->m;
	if (fpindex_build(m, n, order_max, &ix) < 0)
		return -1;
	if (ix->norder > order_max) {
		diag("%zu indices in an order array of %zu", ix->norder, order_max);
		r = -1;
	}
	for (unsigned int t = 0; t < npkts && !r; t++) {
		long nc;
		size_t j = 0;

		gen_packet(buf, sizeof(buf), &p);
		nc = candidates(ix, &p, cand);
		seen.packets++;
		if (nc == -1) {
			seen.punted++;
			continue;
		}
		if (nc < 0) {
			diag("a list outside the order array");
			r = -1;
			break;
		}
		seen.candidates += (uint64_t)nc;
		for (long k = 1; k < nc; k++) {
			if (cand[k] <= cand[k - 1]) {
				diag("candidates out of order or twice: %u after %u", cand[k], cand[k - 1]);
				r = -1;
			}
		}
		for (long k = 0; k < nc; k++) {
			if (cand[k] >= n || !m[cand[k]]) {
				diag("rule %u is a candidate but not in the index", cand[k]);
				r = -1;
				break;
			}
		}
		for (size_t i = 0; i < n && !r; i++) {
			char line[RULE_FORMAT_MAX];

			if (!m[i]) {
				seen.absent++;
				continue;
			}
			if (!chain_rule_matches(rules[i], &p))
				continue;
			seen.matched++;
			while (j < (size_t)nc && cand[j] < i)
				j++;
			if (j < (size_t)nc && cand[j] == i)
				continue;
			rule_format(rules[i], line, sizeof(line));
			diag("packet %u matches rule %zu (%s) but it is no candidate", t, i, line);
			r = -1;
		}
	}
	fpindex_free(ix);
	return r;
}

static void free_rules(struct rule **rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rule_free(rules[i]);
}

/* fastpath_rule_flow_cond(): which punt entries the kernel hands up only by position. */
static void test_flow_cond(void)
{
	static const struct {
		const char *line;
		enum fastpath_flow_cond cond;
		uint32_t hi;
	} cases[] = {
		{ "proto=tcp flow-packets=1-3 set-dscp=cs1", FASTPATH_FC_POS, 3 },
		{ "direction=both proto=tcp flow-packets=1-3 set-dscp=cs1", FASTPATH_FC_POS, 3 },
		{ "flow-packets=2-7 flow-dir=reply verdict=drop", FASTPATH_FC_POS, 7 },
		{ "proto=udp dport=53 flow-packets=1-1 set-ttl=5", FASTPATH_FC_POS, 1 },
		/* Actions the kernel cannot carry out: past position 3 the rule does nothing anyway. */
		{ "proto=tcp flow-packets=1-3 verdict=reject", FASTPATH_FC_POS, 3 },
		{ "proto=tcp flow-packets=1-3 clamp-mss=1000", FASTPATH_FC_POS, 3 },
		/* Another match the kernel cannot evaluate: handed up always. */
		{ "flow-packets=1-3 flow-bytes=0-100 set-ttl=5", FASTPATH_FC_NONE, 0 },
		{ "flow-packets=1-3 flow-state=new set-ttl=5", FASTPATH_FC_NONE, 0 },
		{ "flow-packets=1-3 probability=0.5 set-ttl=5", FASTPATH_FC_NONE, 0 },
		{ "flow-packets=1-3 tls-sni=a.test verdict=drop", FASTPATH_FC_NONE, 0 },
		/* No flow-packets: nothing to bound the positions by. */
		{ "flow-dir=reply set-ttl=5", FASTPATH_FC_NONE, 0 },
		{ "proto=tcp set-dscp=cs1", FASTPATH_FC_NONE, 0 },
		/* Names only (with matches and actions the kernel has): until the daemon decides. */
		{ "proto=tcp tls-sni=*.blocked.test verdict=drop", FASTPATH_FC_NAME, 0 },
		{ "dport=443 proto=tcp tls-sni=a.test,b.test set-dscp=cs1", FASTPATH_FC_NAME, 0 },
		{ "http-host=a.test set-ttl=5", FASTPATH_FC_NAME, 0 },
		{ "quic-sni=example.com verdict=drop", FASTPATH_FC_NAME, 0 },
		{ "tls-sni=*.blocked.test verdict=reject reject-with=tcp-reset", FASTPATH_FC_NAME, 0 },
		{ "tls-sni=a.test probability=0.5 verdict=drop", FASTPATH_FC_NONE, 0 },
		{ "tls-sni=a.test flow-state=new verdict=drop", FASTPATH_FC_NONE, 0 },
	};
	unsigned int bad = 0;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct rule *r = rule_of(cases[i].line);
		enum fastpath_flow_cond c;
		uint32_t hi = 99;

		if (!r) {
			diag("not parsed: %s", cases[i].line);
			bad++;
			continue;
		}
		c = fastpath_rule_flow_cond(r, &hi);
		if (c != cases[i].cond || hi != cases[i].hi) {
			diag("%s: cond %d hi %u, want %d %u", cases[i].line, (int)c, hi,
			     (int)cases[i].cond, cases[i].hi);
			bad++;
		}
		/* A conditioned rule is one the kernel leaves to userspace. */
		if (c == FASTPATH_FC_POS && !fastpath_rule_why_not(r)) {
			diag("%s: conditioned but carried out", cases[i].line);
			bad++;
		}
		rule_free(r);
	}
	ok(!bad, "flow conditions: flow-packets (with flow-dir) alone bounds the punt by position, names alone by the daemon's decision, any other word neither (%zu rules)",
	   ARRAY_SIZE(cases));
}

int main(void)
{
	static struct rule *rules[12000];
	const char *env = getenv("TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed;
	struct fpindex *ix = NULL;
	char line[256];
	size_t n;
	int bad;

	diag("seed %" PRIu64, seed);
	rs = seed;

	bad = 0;
	for (unsigned int round = 0; round < 200 && !bad; round++) {
		n = 1 + rnd(round < 100 ? 20 : 300);
		for (size_t i = 0; i < n; i++)
			rules[i] = gen_rule();
		bad = check(rules, n, 4 * n, 200, 0) < 0;
		free_rules(rules, n);
	}
	ok(!bad, "random rule sets: every matching rule is a candidate, in order, once");
	ok(seen.matched > 10000 && seen.punted == 0 && seen.candidates < seen.packets * 60,
	   "the packets matched rules (%" PRIu64 "), none punted, few candidates (%" PRIu64
	   " for %" PRIu64 " packets)", seen.matched, seen.candidates, seen.packets);

	/* A direction's index: the rules of the other direction are in no list. */
	bad = 0;
	seen.absent = 0;
	for (unsigned int round = 0; round < 100 && !bad; round++) {
		n = 1 + rnd(round < 50 ? 20 : 300);
		for (size_t i = 0; i < n; i++)
			rules[i] = gen_rule();
		bad = check(rules, n, 4 * n, 200, 20 + rnd(60)) < 0;
		free_rules(rules, n);
	}
	ok(!bad && seen.absent > 1000, "rules left out of the index (%" PRIu64
	   " checks) are no candidates, the others still are", seen.absent);

	/* An order array too small: lists are marked, never cut. */
	seen.punted = 0;
	bad = 0;
	for (unsigned int round = 0; round < 50 && !bad; round++) {
		n = 50 + rnd(200);
		for (size_t i = 0; i < n; i++)
			rules[i] = gen_rule();
		bad = check(rules, n, n / 4, 100, 0) < 0;
		free_rules(rules, n);
	}
	ok(!bad && seen.punted > 0, "a small order array: too long lists punt (%" PRIu64 " packets)",
	   seen.punted);

	/* A /16 with a /32 and a /24 inside it, and a /8 around: the /32 entry lists all four. */
	n = 0;
	rules[n++] = rule_of("dst=10.1.0.0/16 verdict=drop");
	rules[n++] = rule_of("dst=10.1.2.3/32 set-ttl=5");
	rules[n++] = rule_of("dst=10.0.0.0/8 set-dscp=1");
	rules[n++] = rule_of("dst=10.1.2.0/24 verdict=accept");
	rules[n++] = rule_of("dst=10.2.0.0/16 verdict=accept");
	for (size_t i = 0; i < n; i++) {
		if (!rules[i]) {
			diag("rule %zu not parsed", i);
			return 1;
		}
	}
	{
		const struct rule_match *m[5];
		const struct fpindex_list *l;
		uint8_t a[16] = { 10, 1, 2, 3 };

		for (size_t i = 0; i < n; i++)
			m[i] = &rules[i]->m;
		if (fpindex_build(m, n, 100, &ix) < 0)
			return 1;
		l = lpm(ix, false, AF_INET, a);
		ok(l && l->count == 4 && ix->order[l->start] == 0 && ix->order[l->start + 1] == 1 &&
		   ix->order[l->start + 2] == 2 && ix->order[l->start + 3] == 3,
		   "leaf pushing: 10.1.2.3 finds rules 0 1 2 3 in order");
		a[1] = 2;
		l = lpm(ix, false, AF_INET, a);
		ok(l && l->count == 2 && ix->order[l->start] == 2 && ix->order[l->start + 1] == 4,
		   "10.2.2.3 finds rules 2 4");
		ix = fpindex_free(ix);
	}
	free_rules(rules, n);

	/* Rules 1 and 3 of the other direction: the lists hold only 0 and 2. */
	n = 0;
	rules[n++] = rule_of("proto=udp dport=53 set-ttl=5");
	rules[n++] = rule_of("proto=udp dport=53 verdict=drop");
	rules[n++] = rule_of("family=ip set-dscp=1");
	rules[n++] = rule_of("family=ip verdict=drop");
	for (size_t i = 0; i < n; i++) {
		if (!rules[i]) {
			diag("rule %zu not parsed", i);
			return 1;
		}
	}
	{
		const struct rule_match *m[4] = { &rules[0]->m, NULL, &rules[2]->m, NULL };
		const struct fpindex_list *l;

		if (fpindex_build(m, n, 100, &ix) < 0)
			return 1;
		l = port(ix, false, IPPROTO_UDP, 53);
		ok(l && l->count == 1 && ix->order[l->start] == 0 &&
		   ix->generic[0][FPINDEX_ANY].count == 1 && ix->order[ix->generic[0][FPINDEX_ANY].start] == 2 &&
		   ix->generic[1][FPINDEX_ANY].count == 0 && ix->norder == 2,
		   "left-out rules: dport 53 lists rule 0 only, IPv4's generic list rule 2 only");
		ix = fpindex_free(ix);
	}
	free_rules(rules, n);

	/* bench/run's 9,990 filler rules, then rules every packet may meet. */
	n = 0;
	for (unsigned int i = 0; i < 9990; i++) {
		unsigned int a = i / 256 % 256, b = i % 256;

		switch (i % 5) {
		case 0:
			snprintf(line, sizeof(line), "proto=tcp dport=%u verdict=drop", 10000 + i);
			break;
		case 1:
			snprintf(line, sizeof(line), "dst=100.64.%u.%u verdict=drop", a, b);
			break;
		case 2:
			snprintf(line, sizeof(line), "dst=2001:db8:1:%x::/64 set-dscp=8", i);
			break;
		case 3:
			snprintf(line, sizeof(line), "proto=udp dport=%u set-ttl=-1", 20000 + i);
			break;
		default:
			snprintf(line, sizeof(line), "src=172.16.%u.%u verdict=accept", a, b);
		}
		rules[n++] = rule_of(line);
	}
	rules[n++] = rule_of("proto=tcp tcp-flags=syn clamp-mss=1460");
	rules[n++] = rule_of("family=ip set-ttl=65");
	rules[n++] = rule_of("family=ip6 set-ttl=65");
	rules[n++] = rule_of("proto=udp dport=53 set-dscp=ef");
	rules[n++] = rule_of("dst=10.0.0.0/16 verdict=drop");
	rules[n++] = rule_of("ttl=1-2 verdict=drop");
	for (size_t i = 0; i < n; i++) {
		if (!rules[i]) {
			diag("rule %zu not parsed", i);
			return 1;
		}
	}
	seen = (typeof(seen)){ 0 };
	bad = check(rules, n, 4 * 65536, 3000, 0) < 0;
	ok(!bad && seen.punted == 0 && seen.matched > 3000,
	   "10,000 rules: every match a candidate, none punted (%" PRIu64 " matches)", seen.matched);
	ok(seen.candidates < seen.packets * 8,
	   "10,000 rules: a few candidates per packet (%" PRIu64 " for %" PRIu64 ")",
	   seen.candidates, seen.packets);
	free_rules(rules, n);
	test_flow_cond();
	return tap_done();
}
