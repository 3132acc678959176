/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The chain's rule index against the linear scan it stands for: the same
 * rules in two chains, one forced to try every rule (chain_set_linear()),
 * the same seed, the same packets, and everything compared after each
 * packet - verdict, the packet's bytes, the forged packet, the trace, the
 * impairment decision - and the counters at the end.  Random rule sets
 * (families, protos, prefixes and ports with and without "!", ranges, icmp
 * types, tcp flags, ttl, length, dscp, probability, actions that continue,
 * verdicts, impairment) meet random packets (IPv4/IPv6, TCP/UDP/ICMP/ICMPv6
 * and others, fragments); then edge cases: an empty chain, CHAIN_RULES_MAX rules,
 * rules none of which has a key, one prefix or port shared by many rules,
 * overlapping ports and prefixes.  TEST_SEED=N in the environment picks
 * another seed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "chain.h"
#include "packet.h"
#include "rule.h"
#include "rng.h"
#include "ruleline.h"
#include "tap.h"
#include "util.h"

#define BUF 2048

/* test_directions(): rules get direction= and packets either direction. */
static bool mixed_dirs;

/* ---- rules ------------------------------------------------------------------ */

static struct rule *parse_rule(const char *line, char *err, size_t errlen)
{
	struct rule *r = NULL;
	size_t bad;

	if (rule_parse_line(line, &r, &bad, err, errlen) < 0)
		return NULL;
	return r;
}

/* Addresses the packets use too, so that prefixes match often. */
static const char *const v4pool[] = {
	"10.0.0.1", "10.0.0.2", "10.0.1.1", "10.1.0.1", "192.0.2.1", "192.0.2.77",
	"203.0.113.5", "198.51.100.9",
};
static const char *const v6pool[] = {
	"fd00::1", "fd00::2", "fd00:0:0:1::1", "2001:db8::5", "2001:db8:1::5", "2001:db8::1:5",
};
static const uint16_t portpool[] = { 22, 53, 80, 443, 1000, 1001, 1002, 1005, 8080, 40000 };

struct style {
	unsigned int prefix;	/* % of rules with a dst (src: half as often) */
	unsigned int neg;	/* % of prefixes and ports negated */
	unsigned int range;	/* % of ports given as a range */
	unsigned int port;	/* % of port-capable rules with a dport (sport: half as often) */
	unsigned int verdict;	/* % of rules with a verdict */
};

static void gen_prefix(char **o, const char *end, const char *key, int family, bool neg)
{
	static const unsigned int l4[] = { 0, 8, 16, 24, 24, 30, 32, 32, 32 };
	static const unsigned int l6[] = { 0, 16, 32, 48, 64, 64, 112, 128, 128 };
	bool v6 = family == AF_INET6;
	unsigned int len = pct(20) ? rnd(v6 ? 129 : 33) : v6 ? PICK(l6) : PICK(l4);

	put(o, end, " %s=%s%s/%u", key, neg ? "!" : "", v6 ? PICK(v6pool) : PICK(v4pool), len);
}

static void gen_port(char **o, const char *end, const char *key, const struct style *st)
{
	uint16_t lo = PICK(portpool);

	if (pct(st->range)) {
		unsigned int hi = lo + rnd(pct(50) ? 4 : 3000);

		put(o, end, " %s=%s%u-%u", key, pct(st->neg) ? "!" : "", lo, hi > 65535 ? 65535 : hi);
		return;
	}
	put(o, end, " %s=%s%u", key, pct(st->neg) ? "!" : "", lo);
}

static void gen_line(char *buf, size_t len, const struct style *st)
{
	static const char *const flags[] = { "syn", "syn,!ack", "ack", "!syn", "fin,ack", "rst" };
	static const char *const icmp4[] = { "echo-request", "echo-reply", "dest-unreachable", "0",
					     "8", "11" };
	static const char *const icmp6[] = { "echo-request", "echo-reply", "packet-too-big", "128",
					     "135" };
	static const char *const rejects[] = { "port-unreachable", "net-unreachable",
					       "host-unreachable", "admin-prohibited" };
	static const char *const impairs[] = { "loss=0.5", "duplicate=0.5", "corrupt=0.5",
					       "delay=10", "delay=5 jitter=5", "rate=10kbit",
					       "reorder=0.5 delay=20" };
	char *o = buf;
	const char *end = buf + len;
	int family = PICK(((const int[]){ 0, 0, 0, AF_INET, AF_INET6 }));
	int afam = family ? family : pct(50) ? AF_INET : AF_INET6;
	unsigned int proto = PICK(((const unsigned int[]){ 0, 0, 0, IPPROTO_TCP, IPPROTO_TCP,
							   IPPROTO_UDP, IPPROTO_UDP, IPPROTO_ICMP,
							   IPPROTO_SCTP, 47 }));
	bool ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
	unsigned int v;

	*o = '\0';
	if (proto == IPPROTO_ICMP && afam == AF_INET6)
		proto = IPPROTO_ICMPV6;
	if (family)
		put(&o, end, " family=%s", family == AF_INET ? "ip" : "ip6");
	if (proto)
		put(&o, end, " proto=%u", proto);
	if (pct(st->prefix))
		gen_prefix(&o, end, "dst", afam, pct(st->neg));
	if (pct(st->prefix / 2))
		gen_prefix(&o, end, "src", afam, pct(st->neg));
	if (ports && pct(st->port))
		gen_port(&o, end, "dport", st);
	if (ports && pct(st->port / 2))
		gen_port(&o, end, "sport", st);
	if ((proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) && pct(50))
		put(&o, end, " icmp-type=%s", proto == IPPROTO_ICMP ? PICK(icmp4) : PICK(icmp6));
	if (!proto && pct(10))
		put(&o, end, " icmp-type=echo-request");
	if ((proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) && pct(10))
		put(&o, end, " icmp-code=%u", rnd(4));
	if (proto == IPPROTO_TCP && pct(25))
		put(&o, end, " tcp-flags=%s", PICK(flags));
	if (pct(12)) {
		v = rnd(256);
		put(&o, end, " ttl=%u-%u", v, v + rnd(256 - v));
	}
	if (pct(6)) {
		v = 20 + rnd(200);
		put(&o, end, " length=%u-%u", v, v + rnd(1000));
	}
	if (pct(6))
		put(&o, end, " dscp=%u", rnd(4) ? 0 : rnd(64));
	if (pct(12))
		put(&o, end, " probability=%s", PICK(((const char *const[]){ "0.5", "0.25", "0.9" })));

	if (pct(20)) {
		static const char *const ttls[] = { "64", "+1", "-1", "5", "255", "-255", "+3" };

		put(&o, end, " set-ttl=%s", PICK(ttls));
	}
	if (pct(10))
		put(&o, end, " set-dscp=%u", rnd(64));
	if (pct(6))
		put(&o, end, " set-ecn=%u", rnd(4));
	if (pct(10))
		put(&o, end, " clamp-mss=%u", 500 + rnd(1000));
	if (pct(st->verdict)) {
		switch (rnd(8)) {
		case 0:
		case 1:
			put(&o, end, " verdict=accept");
			break;
		case 2:
		case 3:
		case 4:
			put(&o, end, " verdict=drop");
			break;
		case 5:
			put(&o, end, " verdict=reply");
			break;
		default:
			if (proto == IPPROTO_TCP && pct(50))
				put(&o, end, " verdict=reject reject-with=tcp-reset");
			else
				put(&o, end, " verdict=reject reject-with=%s", PICK(rejects));
		}
	}
	if (pct(4) && !strstr(buf, "verdict=drop"))
		put(&o, end, " %s", PICK(impairs));
	if (!buf[0])
		put(&o, end, " verdict=drop");
	if (mixed_dirs && pct(60))
		put(&o, end, " direction=%s", pct(60) ? "in" : pct(50) ? "both" : "out");
	memmove(buf, buf + 1, strlen(buf));	/* the leading space */
}

static struct rule *gen_rule(const struct style *st, char *line, size_t len)
{
	char err[256];

	for (;;) {
		struct rule *r;

		gen_line(line, len, st);
		r = parse_rule(line, err, sizeof(err));
		if (r)
			return r;
	}
}

/* ---- packets --------------------------------------------------------------- */

struct tpkt {
	uint8_t buf[BUF];
	struct pkt p;
};

static void addr_near(int family, uint8_t *a)
{
	const char *base = family == AF_INET ? PICK(v4pool) : PICK(v6pool);
	size_t n = family == AF_INET ? 4 : 16;

	inet_pton(family, base, a);
	if (pct(25))		/* nearby: same long prefixes, different host */
		a[n - 1 - rnd(family == AF_INET ? 2 : 8)] ^= (uint8_t)(1 + rnd(255));
	else if (pct(10))	/* anywhere */
		for (size_t i = 0; i < n; i++)
			a[i] = (uint8_t)rnd(256);
}

/* A random packet that pkt_parse() accepts, with right checksums. */
static void gen_packet(struct tpkt *t)
{
	for (;;) {
		int family = pct(50) ? AF_INET : AF_INET6;
		bool v6 = family == AF_INET6, frag = pct(10), later = frag && pct(50);
		unsigned int kind = rnd(100), proto;
		size_t hl = v6 ? 40 + (frag ? 8 : 0) : 20, l4len = 0, pay = rnd(4) ? rnd(48) : rnd(1200);
		uint8_t *d = t->buf, *l4 = d + hl;

		memset(t->buf, 0, sizeof(t->buf));
		if (kind < 32)
			proto = IPPROTO_TCP;
		else if (kind < 60)
			proto = IPPROTO_UDP;
		else if (kind < 85)
			proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		else if (kind < 88)
			proto = v6 ? IPPROTO_ICMP : IPPROTO_ICMPV6;	/* in the wrong family */
		else
			proto = PICK(((const unsigned int[]){ IPPROTO_SCTP, 47, 50, 0, 253 }));
		if (v6 && proto == 0)
			proto = 253;	/* hop-by-hop must come first with its own format */

		if (later) {
			l4len = 8 + pay;
			for (size_t i = 0; i < l4len; i++)
				l4[i] = (uint8_t)rnd(256);
		} else if (proto == IPPROTO_TCP) {
			bool mss = pct(40);

			put_be16(l4, pct(70) ? PICK(portpool) : (uint16_t)rnd(65536));
			put_be16(l4 + 2, pct(70) ? PICK(portpool) : (uint16_t)rnd(65536));
			l4[12] = (uint8_t)((mss ? 24 : 20) / 4 << 4);
			l4[13] = (uint8_t)(pct(30) ? 0x02 : rnd(256));
			put_be16(l4 + 14, 65535);
			if (mss) {
				l4[20] = 2;
				l4[21] = 4;
				put_be16(l4 + 22, (uint16_t)(500 + rnd(1200)));
			}
			l4len = (mss ? 24 : 20) + pay;
			for (size_t i = mss ? 24 : 20; i < l4len; i++)
				l4[i] = (uint8_t)rnd(256);
		} else if (proto == IPPROTO_UDP || proto == IPPROTO_SCTP) {
			put_be16(l4, pct(70) ? PICK(portpool) : (uint16_t)rnd(65536));
			put_be16(l4 + 2, pct(70) ? PICK(portpool) : (uint16_t)rnd(65536));
			l4len = (proto == IPPROTO_UDP ? 8 : 12) + pay;
			if (proto == IPPROTO_UDP)
				put_be16(l4 + 4, (uint16_t)l4len);
			for (size_t i = 8; i < l4len; i++)
				l4[i] = (uint8_t)rnd(256);
		} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
			static const uint8_t types[] = { 0, 8, 8, 3, 11, 128, 128, 129, 1, 135, 2, 42 };

			l4[0] = pct(90) ? PICK(types) : (uint8_t)rnd(256);
			l4[1] = (uint8_t)rnd(4);
			put_be16(l4 + 4, (uint16_t)rnd(65536));
			put_be16(l4 + 6, (uint16_t)rnd(65536));
			l4len = 8 + pay;
			for (size_t i = 8; i < l4len; i++)
				l4[i] = (uint8_t)rnd(256);
		} else {
			l4len = pay;
			for (size_t i = 0; i < l4len; i++)
				l4[i] = (uint8_t)rnd(256);
		}

		if (!v6) {
			uint16_t off = later ? (uint16_t)(1 + rnd(100)) : 0;

			d[0] = 0x45;
			d[1] = (uint8_t)rnd(256);
			put_be16(d + 2, (uint16_t)(hl + l4len));
			put_be16(d + 4, (uint16_t)rnd(65536));
			put_be16(d + 6, (uint16_t)(off | (frag && (!later || pct(50)) ? 0x2000 : 0)));
			d[8] = (uint8_t)(pct(20) ? 255 : 1 + rnd(255));
			d[9] = (uint8_t)proto;
			addr_near(AF_INET, d + 12);
			addr_near(AF_INET, d + 16);
		} else {
			uint8_t tc = (uint8_t)rnd(256);

			d[0] = (uint8_t)(0x60 | tc >> 4);
			d[1] = (uint8_t)(tc << 4);
			put_be16(d + 4, (uint16_t)(hl - 40 + l4len));
			d[6] = (uint8_t)proto;
			d[7] = (uint8_t)(pct(20) ? 255 : 1 + rnd(255));
			addr_near(AF_INET6, d + 8);
			addr_near(AF_INET6, d + 24);
			if (frag) {
				d[6] = IPPROTO_FRAGMENT;
				d[40] = (uint8_t)proto;
				put_be16(d + 42, (uint16_t)((later ? 1 + rnd(100) : 0) << 3 |
							    (!later || pct(50))));
				put_be16(d + 44, (uint16_t)rnd(65536));
			}
		}
		t->p = (struct pkt){ .data = t->buf, .len = hl + l4len, .cap = sizeof(t->buf),
				     .dir = mixed_dirs && pct(50) ? PKT_DIR_IN : PKT_DIR_OUT };
		if (pkt_parse(&t->p) != PKT_OK)
			continue;
		pkt_csum_full(&t->p);
		return;
	}
}

/* ---- the comparison -------------------------------------------------------- */

struct pair {
	struct chain *ix, *lin;
	size_t n;
	uint64_t now;
};

static int pair_new(struct pair *pr, struct rule *const *rules, size_t n, uint64_t seed)
{
	char err[256];
	int r;

	memset(pr, 0, sizeof(*pr));
	r = chain_new(rules, n, &pr->ix, err, sizeof(err));
	if (r >= 0)
		r = chain_new(rules, n, &pr->lin, err, sizeof(err));
	if (r < 0) {
		diag("chain_new: %s", err);
		chain_unref(pr->ix);
		pr->ix = NULL;
		return r;
	}
	chain_set_linear(pr->lin, true);
	chain_seed(pr->ix, seed);
	chain_seed(pr->lin, seed);
	pr->n = n;
	pr->now = 1000000000ULL;
	return 0;
}

static void pair_free(struct pair *pr)
{
	chain_unref(pr->ix);
	chain_unref(pr->lin);
}

static void dump(const char *what, const uint8_t *d, size_t len)
{
	char hex[3 * 80 + 1] = "";

	for (size_t i = 0; i < len && i < 80; i++)
		snprintf(hex + 3 * i, 4, "%02x ", d[i]);
	diag("%s (%zu bytes): %s", what, len, hex);
}

static void dump_chain(const struct chain *c)
{
	char line[RULE_FORMAT_MAX];

	for (size_t i = 0; i < chain_size(c) && i < 64; i++) {
		rule_format(chain_rule(c, i), line, sizeof(line));
		diag("rule %zu: %s", i, line);
	}
}

static bool same_trace(const struct chain_trace *a, const struct chain_trace *b)
{
	size_t n = a->n < CHAIN_TRACE_MAX ? a->n : CHAIN_TRACE_MAX;

	return a->n == b->n && a->result == b->result &&
	       memcmp(a->idx, b->idx, n * sizeof(a->idx[0])) == 0;
}

static bool same_impair(const struct chain_impair *a, const struct chain_impair *b)
{
	if (a->impaired != b->impaired)
		return false;
	if (!a->impaired)
		return true;
	if (a->events != b->events || a->rule != b->rule || a->id != b->id ||
	    a->now_ns != b->now_ns || a->res.n != b->res.n)
		return false;
	for (unsigned int k = 0; k < a->res.n; k++)
		if (a->res.copy[k].at_ns != b->res.copy[k].at_ns ||
		    a->res.copy[k].corrupt != b->res.copy[k].corrupt)
			return false;
	return true;
}

/* What the packets met, so that a test cannot pass by matching nothing. */
static struct {
	uint64_t runs, matched, multi, dropped, forged, impaired, rewritten;
} seen;

/*
 * One packet through both chains; NULL when everything agrees, else what
 * differs.  how: 0 chain_run_impair(), 1 chain_run_trace(), 2 chain_run().
 */
static const char *run_both(struct pair *pr, const struct tpkt *t, int how)
{
	static struct tpkt a, b, fa, fb;
	struct chain_trace ta = { 0 }, tb = { 0 };
	struct chain_impair ia = { 0 }, ib = { 0 };
	enum chain_verdict va, vb;

	a = *t;
	b = *t;
	a.p.data = a.buf;
	b.p.data = b.buf;
	fa.p = (struct pkt){ .data = fa.buf, .cap = sizeof(fa.buf) };
	fb.p = (struct pkt){ .data = fb.buf, .cap = sizeof(fb.buf) };
	pr->now += rnd(4) ? rnd(2000000) : rnd(200000000);
	switch (how) {
	case 0:
		va = chain_run_impair(pr->ix, &a.p, &fa.p, pr->now, &ta, &ia);
		vb = chain_run_impair(pr->lin, &b.p, &fb.p, pr->now, &tb, &ib);
		break;
	case 1:
		va = chain_run_trace(pr->ix, &a.p, &fa.p, pr->now, &ta);
		vb = chain_run_trace(pr->lin, &b.p, &fb.p, pr->now, &tb);
		break;
	default:
		va = chain_run(pr->ix, &a.p, &fa.p, pr->now);
		vb = chain_run(pr->lin, &b.p, &fb.p, pr->now);
		break;
	}
	if (va != vb)
		return "verdict";
	if (a.p.len != b.p.len || memcmp(a.buf, b.buf, a.p.len) != 0)
		return "packet bytes";
	if (va == CHAIN_FORGED &&
	    (fa.p.len != fb.p.len || memcmp(fa.buf, fb.buf, fa.p.len) != 0))
		return "forged bytes";
	if (how < 2 && !same_trace(&ta, &tb))
		return "trace";
	if (!same_impair(&ia, &ib))
		return "impairment";
	seen.runs++;
	seen.matched += ta.n > 0 || (how == 2 && memcmp(a.buf, t->buf, t->p.len) != 0);
	seen.multi += ta.n > 1;
	seen.dropped += va == CHAIN_DROP;
	seen.forged += va == CHAIN_FORGED;
	seen.impaired += ia.impaired;
	seen.rewritten += memcmp(a.buf, t->buf, t->p.len) != 0;
	return NULL;
}

static const char *same_counters(const struct pair *pr)
{
	struct chain_stats sa, sb;

	for (size_t i = 0; i < pr->n; i++) {
		struct impair_counters ca, cb;
		uint64_t pa, ba, pb, bb;

		chain_counters(pr->ix, i, &pa, &ba);
		chain_counters(pr->lin, i, &pb, &bb);
		if (pa != pb || ba != bb)
			return "rule counters";
		if (chain_impair_counters(pr->ix, i, &ca) != chain_impair_counters(pr->lin, i, &cb) ||
		    memcmp(&ca, &cb, sizeof(ca)) != 0)
			return "impairment counters";
	}
	chain_stats(pr->ix, &sa);
	chain_stats(pr->lin, &sb);
	if (memcmp(&sa, &sb, sizeof(sa)) != 0)
		return "chain stats";
	return NULL;
}

/* npkts random packets through pr; 0 or the number of the first that differs, reported. */
static size_t compare(struct pair *pr, size_t npkts, const char *name)
{
	static struct tpkt t;
	const char *why;

	for (size_t k = 0; k < npkts; k++) {
		gen_packet(&t);
		why = run_both(pr, &t, (int)rnd(3));
		if (why) {
			diag("%s: packet %zu: %s differs", name, k, why);
			dump("packet", t.buf, t.p.len);
			dump_chain(pr->ix);
			return k + 1;
		}
	}
	why = same_counters(pr);
	if (why) {
		diag("%s: %s differ", name, why);
		dump_chain(pr->ix);
		return npkts;
	}
	return 0;
}

static struct rule **rules_new(size_t n)
{
	return calloc(n ? n : 1, sizeof(struct rule *));
}

static void rules_free(struct rule **rules, size_t n)
{
	for (size_t i = 0; rules && i < n; i++)
		rule_free(rules[i]);
	free(rules);
}

/* ---- the tests ------------------------------------------------------------- */

static const struct style styles[] = {
	{ .prefix = 50, .neg = 20, .range = 20, .port = 50, .verdict = 40 },	/* mixed */
	{ .prefix = 70, .neg = 3, .range = 5, .port = 70, .verdict = 20 },	/* mostly keyed */
	{ .prefix = 40, .neg = 50, .range = 50, .port = 40, .verdict = 60 },	/* mostly generic */
	{ .prefix = 80, .neg = 0, .range = 0, .port = 0, .verdict = 10 },	/* prefixes only */
	{ .prefix = 0, .neg = 0, .range = 0, .port = 90, .verdict = 10 },	/* ports only */
};

static void test_random(void)
{
	size_t sets = 0, packets = 0, failed = 0, rules_total = 0;

	for (size_t s = 0; s < 600; s++) {
		const struct style *st = &styles[s % ARRAY_SIZE(styles)];
		size_t n = pct(10) ? rnd(400) : 1 + rnd(60), npk = 100;
		struct rule **rules = rules_new(n);
		char line[1024], name[64];
		struct pair pr;

		for (size_t i = 0; i < n; i++)
			rules[i] = gen_rule(st, line, sizeof(line));
		if (pair_new(&pr, rules, n, rnd64()) < 0) {
			failed++;
			rules_free(rules, n);
			continue;
		}
		snprintf(name, sizeof(name), "set %zu (%zu rules, style %zu)", s, n,
			 s % ARRAY_SIZE(styles));
		if (compare(&pr, npk, name))
			failed++;
		sets++;
		packets += npk;
		rules_total += n;
		pair_free(&pr);
		rules_free(rules, n);
	}
	ok(failed == 0, "random rule sets: %zu sets (%zu rules), %zu packets: index == linear scan",
	   sets, rules_total, packets);
	diag("%" PRIu64 " runs: %" PRIu64 " matched a rule, %" PRIu64 " several, %" PRIu64
	     " rewritten, %" PRIu64 " dropped, %" PRIu64 " forged, %" PRIu64 " impaired",
	     seen.runs, seen.matched, seen.multi, seen.rewritten, seen.dropped, seen.forged,
	     seen.impaired);
	ok(seen.matched > seen.runs / 4 && seen.multi > seen.runs / 20 &&
	   seen.rewritten > seen.runs / 20 && seen.dropped > seen.runs / 20 &&
	   seen.forged > 100 && seen.impaired > 100,
	   "random rule sets: packets matched, were rewritten, dropped, forged, impaired");
}

/* The same rule set, packets that run into every kind of key over a long time. */
static void test_long_run(void)
{
	const size_t n = 300;
	struct rule **rules = rules_new(n);
	char line[1024];
	struct pair pr;

	for (size_t i = 0; i < n; i++)
		rules[i] = gen_rule(&styles[i % ARRAY_SIZE(styles)], line, sizeof(line));
	if (pair_new(&pr, rules, n, 7) < 0) {
		ok(0, "long run");
		rules_free(rules, n);
		return;
	}
	ok(compare(&pr, 20000, "long run") == 0,
	   "300 rules of every style, 20000 packets, counters and probability draws agree");
	pair_free(&pr);
	rules_free(rules, n);
}

static void test_empty(void)
{
	struct pair pr;
	struct chain_index_info info;

	if (pair_new(&pr, NULL, 0, 1) < 0) {
		ok(0, "empty chain");
		return;
	}
	chain_index_info(pr.ix, &info);
	ok(info.keyed == 0 && info.generic == 0 && info.keys == 0, "empty chain: an empty index");
	ok(compare(&pr, 1000, "empty") == 0, "empty chain: 1000 packets accepted alike");
	pair_free(&pr);
}

/* Rules made from lines by a generator function. */
typedef void (*linegen)(size_t i, char *line, size_t len);

static struct rule **rules_of(linegen g, size_t n)
{
	struct rule **rules = rules_new(n);
	char line[256], err[256];

	for (size_t i = 0; rules && i < n; i++) {
		g(i, line, sizeof(line));
		rules[i] = parse_rule(line, err, sizeof(err));
		if (!rules[i]) {
			diag("'%s': %s", line, err);
			rules_free(rules, i);
			return NULL;
		}
	}
	return rules;
}

/* A pair of chains of n generated rules, compared over npkts packets. */
static void check_gen(linegen g, size_t n, size_t npkts, const char *what,
		      struct chain_index_info *info)
{
	struct rule **rules = rules_of(g, n);
	struct pair pr;

	memset(info, 0, sizeof(*info));
	if (!rules || pair_new(&pr, rules, n, 3) < 0) {
		ok(0, "%s: chains built", what);
		rules_free(rules, n);
		return;
	}
	chain_index_info(pr.ix, info);
	ok(compare(&pr, npkts, what) == 0, "%s: %zu rules, %zu packets: index == linear scan", what,
	   n, npkts);
	pair_free(&pr);
	rules_free(rules, n);
}

/*
 * direction=: each direction has its own index, of the rules that match it.
 * Random sets of rules in, out and both meet packets of both directions,
 * against the linear scan; then the indexes hold exactly the rules of their
 * direction.
 */
static void gen_dirs(size_t i, char *line, size_t len)
{
	static const char *const dirs[] = { "", " direction=in", " direction=both", " direction=out" };

	snprintf(line, len, "%sdst=10.%zu.0.0/16 set-ttl=+1%s", i % 5 == 4 ? "proto=udp dport=53 " : "",
		 i % 7, dirs[i % 4]);
}

static void test_directions(void)
{
	size_t sets = 0, packets = 0, failed = 0, rules_total = 0;
	struct chain_index_info out, in;
	struct rule **rules;
	struct pair pr;

	mixed_dirs = true;
	for (size_t s = 0; s < 200; s++) {
		const struct style *st = &styles[s % ARRAY_SIZE(styles)];
		size_t n = 1 + rnd(80), npk = 100;
		char line[1024], name[64];

		rules = rules_new(n);
		for (size_t i = 0; i < n; i++)
			rules[i] = gen_rule(st, line, sizeof(line));
		if (pair_new(&pr, rules, n, rnd64()) < 0) {
			failed++;
			rules_free(rules, n);
			continue;
		}
		snprintf(name, sizeof(name), "directions set %zu (%zu rules)", s, n);
		if (compare(&pr, npk, name))
			failed++;
		sets++;
		packets += npk;
		rules_total += n;
		pair_free(&pr);
		rules_free(rules, n);
	}
	ok(failed == 0, "mixed directions: %zu sets (%zu rules), %zu packets of both directions: "
	   "index == linear scan", sets, rules_total, packets);

	/* 40 rules: 10 of each of "", in, both, out: out has 30, in 20. */
	rules = rules_of(gen_dirs, 40);
	if (!rules || pair_new(&pr, rules, 40, 5) < 0) {
		ok(0, "direction indexes built");
		rules_free(rules, 40);
		mixed_dirs = false;
		return;
	}
	chain_index_info_dir(pr.ix, PKT_DIR_OUT, &out);
	chain_index_info_dir(pr.ix, PKT_DIR_IN, &in);
	is_int(out.keyed + out.generic, 30, "the outbound index: the 30 rules out or both");
	is_int(in.keyed + in.generic, 20, "the inbound index: the 20 rules in or both");
	ok(compare(&pr, 2000, "direction indexes") == 0,
	   "direction indexes: 2000 packets of both directions: index == linear scan");
	pair_free(&pr);
	rules_free(rules, 40);
	mixed_dirs = false;
}

/* 65536 rules: every key kind, and generic rules between them. */
static void gen_max(size_t i, char *line, size_t len)
{
	switch (i % 8) {
	case 0:
		snprintf(line, len, "proto=%s dport=%zu verdict=drop", i & 8 ? "udp" : "tcp",
			 i % 65536);
		break;
	case 1:
		snprintf(line, len, "dst=10.%zu.%zu.0/24 set-ttl=+1", (i >> 8) & 255, i & 255);
		break;
	case 2:
		snprintf(line, len, "src=fd00::%zx/128 set-dscp=%zu", i, i % 64);
		break;
	case 3:
		snprintf(line, len, "proto=udp sport=%zu dport=53 verdict=accept", i % 65536);
		break;
	case 4:
		snprintf(line, len, "dst=2001:db8:%zx::/48 verdict=drop", i & 0xffff);
		break;
	case 5:
		snprintf(line, len, "ttl=%zu probability=0.5 set-ttl=-1", i % 256);
		break;
	case 6:
		snprintf(line, len, "dst=192.0.2.%zu verdict=drop", i % 256);
		break;
	default:
		snprintf(line, len, "proto=tcp dport=!%zu-%zu tcp-flags=syn set-dscp=0", i % 60000,
			 i % 60000 + 100);
	}
}

static void test_max(void)
{
	struct chain_index_info info;

	check_gen(gen_max, CHAIN_RULES_MAX, 3000, "CHAIN_RULES_MAX rules", &info);
	ok(info.keyed + info.generic == CHAIN_RULES_MAX && info.generic == CHAIN_RULES_MAX / 4,
	   "%d rules: %zu keyed, %zu generic (ttl and negated ranges)", CHAIN_RULES_MAX,
	   info.keyed, info.generic);
}

/* Nothing a key can stand for. */
static void gen_keyless(size_t i, char *line, size_t len)
{
	static const char *const f[] = {
		"dst=!10.0.0.0/8", "src=!fd00::/16", "proto=tcp dport=1000-1005", "proto=udp sport=!53",
		"ttl=1-64", "length=40-100", "proto=tcp tcp-flags=syn", "icmp-type=echo-request",
		"dst=0.0.0.0/0", "family=ip6", "proto=udp", "dscp=0 probability=0.5",
	};

	snprintf(line, len, "%s %s", f[i % ARRAY_SIZE(f)],
		 i % 5 == 0 ? "verdict=drop" : i % 3 ? "set-ttl=+1" : "set-dscp=1");
}

static void test_keyless(void)
{
	struct chain_index_info info;

	check_gen(gen_keyless, 500, 5000, "no rule has a key", &info);
	ok(info.keyed == 0 && info.generic == 500 && info.keys == 0,
	   "no rule has a key: all 500 generic (%zu keyed)", info.keyed);
}

/* Many rules under one prefix, others under one port: duplicates keep their order. */
static void gen_dup(size_t i, char *line, size_t len)
{
	if (i % 3 == 0)
		snprintf(line, len, "dst=192.0.2.0/24 ttl=%zu-255 set-ttl=-1", i % 200);
	else if (i % 3 == 1)
		snprintf(line, len, "dst=2001:db8::5/128 set-dscp=%zu%s", i % 64,
			 i % 97 == 0 ? " verdict=accept" : "");
	else
		snprintf(line, len, "proto=udp dport=53 probability=0.9 set-ecn=%zu%s", i % 4,
			 i % 101 == 0 ? " verdict=drop" : "");
}

static void test_duplicates(void)
{
	struct chain_index_info info;

	check_gen(gen_dup, 900, 5000, "duplicate keys", &info);
	ok(info.keys == 3 && info.longest == 300, "duplicate keys: 3 keys of 300 rules each");
}

/* Overlapping prefixes and ports: single ports inside ranges, nested prefixes. */
static void gen_overlap(size_t i, char *line, size_t len)
{
	static const unsigned int l4[] = { 8, 16, 24, 32 }, l6[] = { 16, 32, 48, 64, 128 };

	switch (i % 6) {
	case 0:
		snprintf(line, len, "proto=tcp dport=%s set-ttl=+1", PICK(((const char *const[]){
				 "80", "443", "80-443", "1000-1005", "1002", "!80" })));
		break;
	case 1:
		snprintf(line, len, "dst=%s/%u set-dscp=%zu", PICK(v4pool), PICK(l4), i % 64);
		break;
	case 2:
		snprintf(line, len, "src=%s/%u dst=%s/%u set-ttl=-1", PICK(v6pool), PICK(l6),
			 PICK(v6pool), PICK(l6));
		break;
	case 3:
		snprintf(line, len, "proto=udp sport=%u dport=%u probability=0.5 set-ecn=1",
			 PICK(portpool), PICK(portpool));
		break;
	case 4:
		snprintf(line, len, "dst=%s/%u proto=tcp dport=%u verdict=%s", PICK(v4pool), PICK(l4),
			 PICK(portpool), pct(50) ? "accept" : "drop");
		break;
	default: {
		unsigned int lo = PICK(portpool);

		snprintf(line, len, "proto=udp dport=%u-%u set-ttl=64", lo, lo + rnd(3000));
	}
	}
}

static void test_overlap(void)
{
	struct chain_index_info info;

	for (int k = 0; k < 20; k++)
		check_gen(gen_overlap, 50 + rnd(200), 2000, "overlapping keys", &info);
}

/* The key each rule is reached through is the one fewest rules share. */
static void gen_choice(size_t i, char *line, size_t len)
{
	if (i < 1000)		/* one dst, distinct ports: the port keys them */
		snprintf(line, len, "dst=192.0.2.1 proto=tcp dport=%zu verdict=drop", 2000 + i);
	else			/* one port, distinct dsts: the prefix keys them */
		snprintf(line, len, "dst=10.0.%zu.%zu proto=udp dport=53 verdict=drop",
			 (i - 1000) / 256, (i - 1000) % 256);
}

static void test_choice(void)
{
	struct chain_index_info info;

	check_gen(gen_choice, 2000, 5000, "keys by selectivity", &info);
	ok(info.keyed == 2000 && info.keys == 2000 && info.longest == 1 && info.lengths == 1,
	   "keys by selectivity: 2000 keys of one rule each (%zu keys, longest %zu)", info.keys,
	   info.longest);
}

/* Each prefix length is a probe per packet: all 129 v6 and 33 v4 lengths at once. */
static void gen_lengths(size_t i, char *line, size_t len)
{
	if (i <= 128)
		snprintf(line, len, "dst=%s/%zu set-ttl=+1", PICK(v6pool), i);
	else if (i <= 128 + 33)
		snprintf(line, len, "src=%s/%zu set-dscp=3", PICK(v4pool), i - 129);
	else
		snprintf(line, len, "src=%s/%zu verdict=%s", PICK(v6pool), (i - 162) % 129,
			 pct(50) ? "accept" : "drop");
}

static void test_lengths(void)
{
	struct chain_index_info info;

	check_gen(gen_lengths, 500, 5000, "every prefix length", &info);
	ok(info.lengths == 128 + 32 + 128, "every prefix length: %zu lengths (0 is no key)",
	   info.lengths);
}

/* chain_find() and chain_inherit() on a large chain: the sorted names. */
static void gen_named(size_t i, char *line, size_t len)
{
	snprintf(line, len, "name=r%zu proto=tcp dport=%zu verdict=drop", (i * 7919) % 20000, i);
}

static void test_names(void)
{
	/* The largest chain; names spread over 0..19999 (7919 is prime to it). */
	const size_t n = CHAIN_RULES_MAX;
	struct rule **rules = rules_of(gen_named, n);
	struct chain *a = NULL, *b = NULL;
	char err[256];
	bool found = true;

	if (!rules || chain_new(rules, n, &a, err, sizeof(err)) < 0 ||
	    chain_new(rules + 1, n - 1, &b, err, sizeof(err)) < 0) {
		ok(0, "named chains built");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "r%zu", (i * 7919) % 20000);
		found &= chain_find(a, name) == (int)i;
	}
	ok(found, "chain_find() finds each of %zu rules", n);
	ok(chain_find(a, "r20000") == -ENOENT && chain_find(a, "") == -ENOENT,
	   "chain_find() of a missing name: -ENOENT");
	chain_inherit(b, a);
	found = true;
	for (size_t i = 0; i + 1 < n; i++)
		found &= chain_rule_id(b, i) == chain_rule_id(a, i + 1);
	ok(found, "chain_inherit() keeps the ids of %zu rules found by name", n - 1);
out:
	chain_unref(a);
	chain_unref(b);
	rules_free(rules, n);
}

int main(void)
{
	const char *s = getenv("TEST_SEED");

	rs = s ? strtoull(s, NULL, 0) : 20240501;
	diag("TEST_SEED=%" PRIu64, rs);
	test_empty();
	test_random();
	test_directions();
	test_long_run();
	test_keyless();
	test_duplicates();
	test_overlap();
	test_choice();
	test_lengths();
	test_max();
	test_names();
	return tap_done();
}
