/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the rule index buys: chain_run() over a fixed mix of packets against
 * 10 rules and against the same 10 rules behind 9,990 others that the mix
 * does not match (distinct ports and prefixes, as a large block list
 * would have), in ns per packet and as a ratio, measured in one run: many
 * short rounds, the two chains taking turns, so that a busy neighbour or a
 * clock change hits both alike (the median of the rounds' ratios is the
 * figure; the minimums are the quietest rounds).  Then the index's harder
 * case, 10,000 rules over 50 prefix lengths (a lookup per length an address
 * could fall in, after the filter); the linear scan for comparison; and
 * what building and swapping in a chain of 10,000 rules costs (chain_new(),
 * chain_inherit()): how long the packet loop stands still on a reload.
 *
 * Then how the cost grows with the chain: the same 10 rules behind N - 10
 * fillers for N = 10, 100, 1,000, 10,000 and 100,000, the five chains taking
 * turns in every round (the order rotating), ns per packet and the ratio to
 * the 10-rule chain (median of the rounds' ratios; the quickest round too),
 * and a reload (chain_new(), chain_inherit() from the chain it replaces) at
 * each size.  A size above CHAIN_RULES_MAX (10,000 today: the daemon's own
 * limit) is reported as refused, not measured.  Before timing, it checks
 * that the 99,990 fillers are distinct and that none matches a packet of
 * the mix (and afterwards that the measured chains' fillers counted no
 * packet): it exits 1 otherwise.  A measurement, not a test: no threshold.
 *
 *   make bench/rules-bench && ./bench/rules-bench [options] [rounds]
 *
 *   rounds        1..201 (default 41)
 *   --packets N   packets per chain and round (1,000..10,000,000; 500,000)
 *   --sweep       the chain-size sweep only (bench/run --short: seconds)
 *   --tsv         the sweep's rows as tab-separated "rules" lines for
 *                 bench/run (N, ns median, ns min, x of 10 median, x of 10
 *                 of the minimums, chain_new ms, chain_inherit ms; or N and
 *                 "refused" and the limit); every other line then starts
 *                 with '#'
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "chain.h"
#include "packet.h"
#include "rule.h"
#include "util.h"

#define BIG 10000
#define MIX 16
#define PKTS_PER_ROUND 500000
#define PKTS_MIN 1000
#define PKTS_MAX 10000000
#define SWEEP_MAX 100000
#define RELOADS_MAX 5
#define FILLER_LEN 80

static const size_t sweep_sizes[] = { 10, 100, 1000, 10000, SWEEP_MAX };

static const char *const real_rules[] = {
	"name=mss proto=tcp tcp-flags=syn clamp-mss=1360",
	"name=ttl family=ip set-ttl=64",
	"name=hoplimit family=ip6 set-ttl=64",
	"name=dns proto=udp dport=53 set-dscp=ef",
	"name=web proto=tcp dport=443 set-dscp=af21",
	"name=block dst=198.51.100.0/24 verdict=drop",
	"name=block6 dst=2001:db8:dead::/48 verdict=drop",
	"name=lowttl ttl=1-2 verdict=drop",
	"name=ssh proto=tcp dport=22 verdict=accept",
	"name=lab src=10.9.0.0/16 verdict=accept",
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct rule *parse(const char *line)
{
	struct rule_kv kv[16];
	struct rule *r = NULL;
	char buf[256], *save = NULL, *tok, err[256];
	size_t n = 0, bad;

	snprintf(buf, sizeof(buf), "%s", line);
	for (tok = strtok_r(buf, " ", &save); tok && n < ARRAY_SIZE(kv);
	     tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		*eq = '\0';
		kv[n].key = tok;
		kv[n++].value = eq + 1;
	}
	if (rule_parse(kv, n, &r, &bad, err, sizeof(err)) < 0) {
		fprintf(stderr, "'%s': %s\n", line, err);
		exit(1);
	}
	return r;
}

/*
 * Rules the mix never matches: ports, v4 and v6 prefixes, sources; distinct
 * for i < 200,000 (a port range is used again one above, in another residue
 * mod 5, by each further span; the IPv4 addresses repeat only after
 * 5 * 65,536; the IPv6 prefixes move to 2001:db8:2:: past 65,535).
 * The first 9,990 are bench/run's ipmodd-10000 fillers.
 */
static void filler(size_t i, char *line, size_t len)
{
	switch (i % 5) {
	case 0:
		snprintf(line, len, "proto=tcp dport=%zu verdict=drop",
			 10000 + i % 50000 + i / 50000);
		break;
	case 1:
		snprintf(line, len, "dst=100.64.%zu.%zu verdict=drop", i / 256 % 256, i % 256);
		break;
	case 2:
		snprintf(line, len, "dst=2001:db8:%zx:%zx::/64 set-dscp=cs1", 1 + i / 65536,
			 i % 65536);
		break;
	case 3:
		snprintf(line, len, "proto=udp dport=%zu set-ttl=-1", 20000 + i % 40000 + i / 40000);
		break;
	default:
		snprintf(line, len, "src=172.16.%zu.%zu verdict=accept", i / 256 % 256, i % 256);
	}
}

/* The same, prefixes of 23 IPv4 and 27 IPv6 lengths. */
static void filler_lengths(size_t i, char *line, size_t len)
{
	if (i % 2)
		snprintf(line, len, "dst=100.64.%zu.%zu/%zu verdict=drop", i / 256 % 256, i % 256,
			 10 + i / 2 % 23);
	else
		snprintf(line, len, "dst=2001:db8:1:%zx::%zx/%zu set-dscp=cs1", i, i,
			 48 + i / 2 % 27 * 3);
}

/* n rules: n - 10 filler rules, then the 10 real ones. */
static struct rule **rules_make(size_t n, void (*fill)(size_t i, char *line, size_t len))
{
	struct rule **v = calloc(n, sizeof(*v));
	char line[256];

	if (!v)
		exit(1);
	for (size_t i = 0; i + ARRAY_SIZE(real_rules) < n; i++) {
		fill(i, line, sizeof(line));
		v[i] = parse(line);
	}
	for (size_t k = 0; k < ARRAY_SIZE(real_rules); k++)
		v[n - ARRAY_SIZE(real_rules) + k] = parse(real_rules[k]);
	return v;
}

static void rules_free(struct rule **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rule_free(v[i]);
	free(v);
}

static struct chain *chain_make(struct rule **v, size_t n)
{
	struct chain *c;
	char err[256];

	if (chain_new(v, n, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "chain_new: %s\n", err);
		exit(1);
	}
	chain_seed(c, 1);
	return c;
}

struct spec {
	int family;
	uint8_t proto, tcp_flags, icmp_type;
	const char *src, *dst;
	uint16_t sport, dport, payload;
};

static const struct spec mix[MIX] = {
	{ AF_INET, IPPROTO_TCP, 0x02, 0, "192.168.1.10", "93.184.216.34", 40001, 443, 0 },
	{ AF_INET, IPPROTO_TCP, 0x10, 0, "192.168.1.10", "93.184.216.34", 40001, 443, 1200 },
	{ AF_INET, IPPROTO_TCP, 0x18, 0, "192.168.1.10", "151.101.1.69", 40002, 80, 400 },
	{ AF_INET, IPPROTO_UDP, 0, 0, "192.168.1.10", "9.9.9.9", 5353, 53, 40 },
	{ AF_INET, IPPROTO_ICMP, 0, 8, "192.168.1.10", "1.1.1.1", 0, 0, 56 },
	{ AF_INET, IPPROTO_UDP, 0, 0, "192.168.1.10", "142.250.1.1", 50000, 443, 1200 },
	{ AF_INET, IPPROTO_TCP, 0x10, 0, "192.168.1.10", "198.51.100.7", 40003, 8443, 0 },
	{ AF_INET, IPPROTO_TCP, 0x18, 0, "10.9.3.4", "192.0.2.80", 50022, 22, 100 },
	{ AF_INET6, IPPROTO_TCP, 0x02, 0, "fd00::10", "2606:2800:220:1::1", 40004, 443, 0 },
	{ AF_INET6, IPPROTO_TCP, 0x10, 0, "fd00::10", "2606:2800:220:1::1", 40004, 443, 1200 },
	{ AF_INET6, IPPROTO_UDP, 0, 0, "fd00::10", "2620:fe::fe", 5353, 53, 40 },
	{ AF_INET6, IPPROTO_ICMPV6, 0, 128, "fd00::10", "2001:4860:4860::8888", 0, 0, 56 },
	{ AF_INET6, IPPROTO_UDP, 0, 0, "fd00::10", "2a00:1450:4001::1", 50001, 443, 1200 },
	{ AF_INET6, IPPROTO_TCP, 0x10, 0, "fd00::10", "2001:db8:dead::1", 40005, 80, 0 },
	{ AF_INET, IPPROTO_UDP, 0, 0, "192.168.1.10", "192.0.2.1", 123, 123, 48 },
	{ AF_INET6, IPPROTO_TCP, 0x18, 0, "fd00::10", "2001:db8:beef::1", 40006, 22, 100 },
};

struct tpkt {
	uint8_t buf[1600];
	struct pkt p;
};

static void pkt_build(struct tpkt *t, const struct spec *s)
{
	bool v6 = s->family == AF_INET6;
	size_t hl = v6 ? 40 : 20, l4len;
	uint8_t *d = t->buf, *l4 = d + hl;

	memset(t->buf, 0, sizeof(t->buf));
	if (s->proto == IPPROTO_TCP) {
		bool syn = s->tcp_flags & 0x02;

		put_be16(l4, s->sport);
		put_be16(l4 + 2, s->dport);
		l4[12] = (uint8_t)((syn ? 24 : 20) / 4 << 4);
		l4[13] = s->tcp_flags;
		put_be16(l4 + 14, 65535);
		if (syn) {
			l4[20] = 2;
			l4[21] = 4;
			put_be16(l4 + 22, 1460);
		}
		l4len = (syn ? 24u : 20u) + s->payload;
	} else if (s->proto == IPPROTO_UDP) {
		put_be16(l4, s->sport);
		put_be16(l4 + 2, s->dport);
		l4len = 8u + s->payload;
		put_be16(l4 + 4, (uint16_t)l4len);
	} else {
		l4[0] = s->icmp_type;
		l4len = 8u + s->payload;
	}
	if (!v6) {
		d[0] = 0x45;
		put_be16(d + 2, (uint16_t)(hl + l4len));
		d[8] = 64;
		d[9] = s->proto;
		inet_pton(AF_INET, s->src, d + 12);
		inet_pton(AF_INET, s->dst, d + 16);
	} else {
		d[0] = 0x60;
		put_be16(d + 4, (uint16_t)l4len);
		d[6] = s->proto;
		d[7] = 64;
		inet_pton(AF_INET6, s->src, d + 8);
		inet_pton(AF_INET6, s->dst, d + 24);
	}
	t->p = (struct pkt){ .data = t->buf, .len = hl + l4len, .cap = sizeof(t->buf) };
	if (pkt_parse(&t->p) != PKT_OK) {
		fprintf(stderr, "a packet of the mix does not parse\n");
		exit(1);
	}
	pkt_csum_full(&t->p);
}

static struct tpkt pkts[MIX];
static volatile unsigned int sink;

/*
 * ns per packet over npkts packets of the mix.  The rules' actions are
 * idempotent (set-ttl=64, set-dscp, clamp-mss), so after the first round
 * every packet takes the same path each time without being rebuilt.
 */
static double run(struct chain *c, size_t npkts)
{
	uint64_t t0, t1, now = 1000000000ULL;
	unsigned int acc = 0;

	t0 = now_ns();
	for (size_t k = 0; k < npkts; k++)
		acc += chain_run(c, &pkts[k % MIX].p, NULL, now);
	t1 = now_ns();
	sink = acc;
	return (double)(t1 - t0) / (double)npkts;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), dcmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define ROUNDS_MAX 201

struct figures {
	double small, big;		/* medians, ns per packet */
	double small_min, big_min;	/* the quietest rounds */
	double ratio;			/* median of the rounds' big / small */
};

/* Rounds of npkts packets through small and big by turns, the order alternating. */
static void pair_rounds(struct chain *cs, struct chain *cb, size_t rounds, size_t npkts,
			struct figures *ret)
{
	double small[ROUNDS_MAX], big[ROUNDS_MAX], ratio[ROUNDS_MAX];

	run(cs, npkts / 4);	/* warm up */
	run(cb, npkts / 4);
	for (size_t r = 0; r < rounds; r++) {
		if (r % 2) {
			big[r] = run(cb, npkts);
			small[r] = run(cs, npkts);
		} else {
			small[r] = run(cs, npkts);
			big[r] = run(cb, npkts);
		}
		ratio[r] = big[r] / small[r];
	}
	ret->ratio = median(ratio, rounds);
	ret->small = median(small, rounds);	/* sorted: [0] is the minimum */
	ret->big = median(big, rounds);
	ret->small_min = small[0];
	ret->big_min = big[0];
}

/* "# " before every line but the sweep's rows in --tsv mode. */
static const char *pfx = "";

/* The existing sections: 10 against 10,000 rules, prefix lengths, the scan, a reload. */
static int sections(size_t rounds, size_t npkts)
{
	size_t nsmall = ARRAY_SIZE(real_rules);
	double build[ROUNDS_MAX], inherit[ROUNDS_MAX];
	double lin, parse_ms;
	struct rule **vs, **vb, **vl;
	struct chain *cs, *cb, *cl, *cn;
	struct chain_index_info info, infol;
	struct figures fb, fl;
	uint64_t t0;

	vs = rules_make(nsmall, filler);
	t0 = now_ns();
	vb = rules_make(BIG, filler);
	parse_ms = (double)(now_ns() - t0) / 1e6;
	vl = rules_make(BIG, filler_lengths);
	cs = chain_make(vs, nsmall);
	cb = chain_make(vb, BIG);
	cl = chain_make(vb, BIG);
	chain_set_linear(cl, true);
	cn = chain_make(vl, BIG);
	chain_index_info(cb, &info);
	chain_index_info(cn, &infol);

	pair_rounds(cs, cb, rounds, npkts, &fb);
	pair_rounds(cs, cn, rounds, npkts / 4, &fl);
	lin = run(cl, 20000);

	printf("%spacket mix: %d packets (TCP, UDP, ICMP; IPv4 and IPv6), %zu rounds of %zu packets\n",
	       pfx, MIX, rounds, npkts);
	printf("%sindex of %d rules: %zu keyed, %zu generic, %zu keys, %zu prefix lengths\n", pfx,
	       BIG, info.keyed, info.generic, info.keys, info.lengths);
	printf("%schain_run, %5zu rules:          %7.1f ns/packet (median; min %.1f)\n", pfx,
	       nsmall, fb.small, fb.small_min);
	printf("%schain_run, %5d rules:          %7.1f ns/packet (median; min %.1f)\n", pfx, BIG,
	       fb.big, fb.big_min);
	printf("%sratio %d / %zu rules:           %7.3f (median of the rounds' ratios; "
	       "of the minimums %.3f)\n", pfx, BIG, nsmall, fb.ratio, fb.big_min / fb.small_min);
	printf("%sthe same over %zu prefix lengths: %7.1f ns/packet against %.1f, ratio %.3f\n",
	       pfx, infol.lengths, fl.big, fl.small, fl.ratio);
	printf("%schain_run, %5d rules, linear:  %7.1f ns/packet (the scan the index replaces)\n",
	       pfx, BIG, lin);

	/*
	 * Building and swapping: what a reload makes the packet loop wait for
	 * (the rules found unchanged, by name, and their state carried over).
	 */
	for (size_t r = 0; r < rounds; r++) {
		struct chain *c;
		char err[256];

		t0 = now_ns();
		if (chain_new(vb, BIG, &c, err, sizeof(err)) < 0)
			return -1;
		build[r] = (double)(now_ns() - t0) / 1e6;
		t0 = now_ns();
		chain_inherit(c, cb);
		inherit[r] = (double)(now_ns() - t0) / 1e6;
		chain_unref(c);
	}
	printf("%srule_parse of %d rules:          %7.2f ms (config or control side, once)\n", pfx,
	       BIG, parse_ms);
	printf("%schain_new, %d rules:             %7.2f ms (median of %zu)\n", pfx, BIG,
	       median(build, rounds), rounds);
	printf("%schain_inherit, %d rules:         %7.2f ms (median; every name looked up)\n", pfx,
	       BIG, median(inherit, rounds));

	chain_unref(cs);
	chain_unref(cb);
	chain_unref(cl);
	chain_unref(cn);
	rules_free(vl, BIG);
	rules_free(vs, nsmall);
	rules_free(vb, BIG);
	return 0;
}

static int strcmp_p(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * The sweep's fillers, checked: no two alike (their text sorted), and none
 * matching a packet of the mix (chain_rule_matches(), the matches alone).
 */
static struct rule **fillers_make(size_t n)
{
	char (*text)[FILLER_LEN] = calloc(n, sizeof(*text));
	struct rule **v = calloc(n, sizeof(*v));

	if (!text || !v) {
		fprintf(stderr, "rules-bench: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		filler(i, text[i], sizeof(text[i]));
		v[i] = parse(text[i]);
		for (size_t k = 0; k < MIX; k++) {
			if (chain_rule_matches(v[i], &pkts[k].p)) {
				fprintf(stderr, "rules-bench: filler %zu '%s' matches packet %zu of the mix\n",
					i, text[i], k);
				exit(1);
			}
		}
	}
	qsort(text, n, sizeof(*text), strcmp_p);
	for (size_t i = 1; i < n; i++) {
		if (!strcmp(text[i - 1], text[i])) {
			fprintf(stderr, "rules-bench: filler '%s' twice\n", text[i]);
			exit(1);
		}
	}
	free(text);
	return v;
}

#define NSIZES ARRAY_SIZE(sweep_sizes)

/* The sizes chain_new() accepts: a prefix of sweep_sizes. */
static size_t sweep_measured(void)
{
	size_t j = 0;

	while (j < NSIZES && sweep_sizes[j] <= CHAIN_RULES_MAX)
		j++;
	return j;
}

struct sweep_row {
	double ns, ns_min;	/* median, quickest round */
	double x, x_min;	/* median of the rounds' ratios to 10 rules; of the minimums */
	double build_ms, inherit_ms;	/* medians */
};

/* The rules of the n-rule chain into v: its n - 10 fillers, then the 10 real ones. */
static void sweep_rules(struct rule **v, struct rule **fill, struct rule **real, size_t n)
{
	size_t nreal = ARRAY_SIZE(real_rules);

	memcpy(v, fill, (n - nreal) * sizeof(*v));
	memcpy(v + n - nreal, real, nreal * sizeof(*v));
}

/*
 * The 10 rules behind n - 10 fillers for each size, the chains taking turns
 * in every round (the first one rotating), ratios to the 10-rule chain
 * within each round.  Then a reload at each size: chain_new() of the same
 * rules and chain_inherit() from the chain it replaces.
 */
static void sweep(size_t rounds, size_t npkts, struct sweep_row *rows)
{
	static double t[NSIZES][ROUNDS_MAX], x[NSIZES][ROUNDS_MAX];
	size_t nreal = ARRAY_SIZE(real_rules), reloads = rounds < RELOADS_MAX ? rounds : RELOADS_MAX;
	size_t nm = sweep_measured();
	struct rule **fill = fillers_make(SWEEP_MAX - nreal), **real = rules_make(nreal, filler);
	struct rule **v = calloc(SWEEP_MAX, sizeof(*v));
	struct chain *c[NSIZES];

	if (!v) {
		fprintf(stderr, "rules-bench: out of memory\n");
		exit(1);
	}
	for (size_t j = 0; j < nm; j++) {
		size_t n = sweep_sizes[j];

		sweep_rules(v, fill, real, n);
		c[j] = chain_make(v, n);
		run(c[j], npkts / 4);	/* warm up */
	}
	for (size_t r = 0; r < rounds; r++) {
		for (size_t k = 0; k < nm; k++) {
			size_t j = (r + k) % nm;

			t[j][r] = run(c[j], npkts);
		}
		for (size_t j = 0; j < nm; j++)
			x[j][r] = t[j][r] / t[0][r];
	}
	for (size_t j = 0; j < nm; j++) {
		rows[j].x = median(x[j], rounds);
		rows[j].ns = median(t[j], rounds);	/* sorted: [0] is the minimum */
		rows[j].ns_min = t[j][0];
	}
	for (size_t j = 0; j < nm; j++)
		rows[j].x_min = rows[j].ns_min / rows[0].ns_min;

	/* No filler counted a packet; the real rules did. */
	for (size_t j = 0; j < nm; j++) {
		size_t n = sweep_sizes[j];
		uint64_t pk, by, real_pk = 0;

		for (size_t i = 0; i < n; i++) {
			chain_counters(c[j], i, &pk, &by);
			if (i < n - nreal && pk) {
				fprintf(stderr, "rules-bench: filler %zu of %zu counted %llu packets\n",
					i, n, (unsigned long long)pk);
				exit(1);
			}
			if (i >= n - nreal)
				real_pk += pk;
		}
		if (!real_pk) {
			fprintf(stderr, "rules-bench: no rule of the %zu-rule chain counted a packet\n", n);
			exit(1);
		}
	}

	for (size_t j = 0; j < nm; j++) {
		size_t n = sweep_sizes[j];
		double build[RELOADS_MAX], inherit[RELOADS_MAX];

		sweep_rules(v, fill, real, n);
		for (size_t r = 0; r < reloads; r++) {
			struct chain *nc;
			uint64_t t0 = now_ns();

			nc = chain_make(v, n);
			build[r] = (double)(now_ns() - t0) / 1e6;
			t0 = now_ns();
			chain_inherit(nc, c[j]);
			inherit[r] = (double)(now_ns() - t0) / 1e6;
			chain_unref(c[j]);
			c[j] = nc;
		}
		rows[j].build_ms = median(build, reloads);
		rows[j].inherit_ms = median(inherit, reloads);
		chain_unref(c[j]);
	}
	free(v);
	rules_free(real, nreal);
	rules_free(fill, SWEEP_MAX - nreal);
}

static void sweep_print(const struct sweep_row *rows, size_t rounds, size_t npkts, bool tsv)
{
	size_t reloads = rounds < RELOADS_MAX ? rounds : RELOADS_MAX;

	printf("%schain size: the 10 rules behind N - 10 distinct fillers the mix never matches; "
	       "%zu rounds of %zu packets, the sizes taking turns; a reload = chain_new + "
	       "chain_inherit, median of %zu\n", pfx, rounds, npkts, reloads);
	if (tsv)
		printf("# rules\tns_median\tns_min\tx10_median\tx10_min\tbuild_ms\tinherit_ms\n");
	else
		printf("\n| rules | ns/packet (median) | ns/packet (min) | x of 10 (median) "
		       "| x of 10 (min) | chain_new ms | chain_inherit ms |\n"
		       "|--:|--:|--:|--:|--:|--:|--:|\n");
	for (size_t j = 0; j < NSIZES; j++) {
		const struct sweep_row *w = &rows[j];

		if (j >= sweep_measured())
			printf(tsv ? "rules\t%zu\trefused\t%d\n" :
				     "| %zu | refused: chain_new() takes at most %d rules | | | | | |\n",
			       sweep_sizes[j], CHAIN_RULES_MAX);
		else
			printf(tsv ? "rules\t%zu\t%.2f\t%.2f\t%.4f\t%.4f\t%.3f\t%.3f\n" :
				     "| %zu | %.1f | %.1f | %.3f | %.3f | %.2f | %.2f |\n",
			       sweep_sizes[j], w->ns, w->ns_min, w->x, w->x_min, w->build_ms,
			       w->inherit_ms);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: rules-bench [--sweep] [--tsv] [--packets N] [rounds]\n"
			"  rounds 1..%d (41), --packets %d..%d (%d)\n",
		ROUNDS_MAX, PKTS_MIN, PKTS_MAX, PKTS_PER_ROUND);
}

int main(int argc, char **argv)
{
	size_t rounds = 41, npkts = PKTS_PER_ROUND;
	struct sweep_row rows[NSIZES];
	bool only_sweep = false, tsv = false;

	for (int i = 1; i < argc; i++) {
		char *end;
		unsigned long v;

		if (!strcmp(argv[i], "--sweep")) {
			only_sweep = true;
		} else if (!strcmp(argv[i], "--tsv")) {
			tsv = true;
			pfx = "# ";
		} else if (!strcmp(argv[i], "--packets") && i + 1 < argc) {
			v = strtoul(argv[++i], &end, 10);
			if (*end || v < PKTS_MIN || v > PKTS_MAX) {
				usage();
				return 2;
			}
			npkts = v;
		} else if (argv[i][0] != '-') {
			v = strtoul(argv[i], &end, 10);
			if (*end || v < 1 || v > ROUNDS_MAX) {
				usage();
				return 2;
			}
			rounds = v;
		} else {
			usage();
			return 2;
		}
	}
	for (size_t k = 0; k < MIX; k++)
		pkt_build(&pkts[k], &mix[k]);

	if (!only_sweep) {
		if (sections(rounds, npkts) < 0)
			return 1;
		printf("%s\n", tsv ? "#" : "");
	}
	sweep(rounds, npkts, rows);
	sweep_print(rows, rounds, npkts, tsv);
	return 0;
}
