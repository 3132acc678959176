/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netem's model, the parts beyond the basics: the correlated keys against a
 * reference simulation of netem's formula written here (doubles, another
 * generator), gap, the pareto/paretonormal tables against iproute2's shipped
 * .dist files, .dist files read with distribution=@file, delay quantiles,
 * slots, the link cost (overhead, cellsize) and loss-ecn; and the
 * vocabulary of the new keys (parse, errors, format round trip, equality).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "impair.h"
#include "netem-tables.h"
#include "rule.h"
#include "ruleline.h"
#include "tap.h"
#include "util.h"

#define MS 1000000ULL
#define T0 (1000ULL * 1000000000ULL)
#define SHIPPED "/usr/lib/x86_64-linux-gnu/tc"

static char tmpdir[] = "/tmp/test-netem-XXXXXX";

/* A file in tmpdir with that text; its path in a static buffer of 4. */
static const char *tmpfile_with(const char *name, const char *text)
{
	static char paths[4][128];
	static unsigned int k;
	char *p = paths[k++ % 4];
	FILE *f;

	snprintf(p, 128, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	if (!f)
		return "/nonexistent";
	fputs(text, f);
	fclose(f);
	return p;
}

static struct rule *flow_rule(const char *line, struct impair_flow *f)
{
	struct rule *r = rule_of(line);

	if (r && impair_flow_init(f, &r->impair) < 0) {
		diag("impair_flow_init failed for '%s'", line);
		r = rule_free(r);
	}
	return r;
}

/* ---- reference: netem's correlated uniform, in doubles ------------------------ */

static uint64_t ref_state = 0x2545f4914f6cdd1dULL;

/* xorshift64*: not the generator impair.c uses. */
static double ref_u32(void)
{
	ref_state ^= ref_state >> 12;
	ref_state ^= ref_state << 25;
	ref_state ^= ref_state >> 27;
	return (double)((ref_state * 0x2545f4914f6cdd1dULL) >> 32);
}

struct ref_crnd {
	double rho, last;
};

/* netem: value = (1 - rho) u + rho last, all in units of 2^32. */
static double ref_crnd(struct ref_crnd *c)
{
	c->last = (1 - c->rho) * ref_u32() + c->rho * c->last;
	return c->last;
}

/* Mean length of runs of true in a sequence. */
struct runs {
	unsigned long events, runs;
	bool prev;
};

static void runs_add(struct runs *r, bool e)
{
	r->events += e;
	r->runs += e && !r->prev;
	r->prev = e;
}

static void test_loss_corr(void)
{
	const double p = 0.1, rho = 0.5;
	const unsigned int N = 2000000, NREF = 20000000;
	struct ref_crnd rc = { rho, ref_u32() };
	struct runs ref = { 0 }, got = { 0 };
	struct impair_flow f;
	struct impair_rng g;
	struct impair_result res;
	struct rule *r = flow_rule("loss=0.1 loss-corr=0.5", &f);
	double ref_mean, got_mean, ref_rate, got_rate;

	for (unsigned int i = 0; i < NREF; i++)
		runs_add(&ref, p * 4294967295.0 >= ref_crnd(&rc));
	ref_mean = (double)ref.events / (double)ref.runs;
	ref_rate = (double)ref.events / NREF;
	if (!r) {
		ok(0, "loss-corr rule");
		return;
	}
	impair_rng_seed(&g, 11);
	for (unsigned int i = 0; i < N; i++) {
		impair_decide(&f, &r->impair, &g, T0 + i * MS, 100, &res);
		runs_add(&got, res.n == 0);
	}
	got_mean = (double)got.events / (double)got.runs;
	got_rate = (double)got.events / N;
	diag("loss=0.1 loss-corr=0.5: netem's model loses %.2f %% in runs of %.3f; "
	     "ipmodd %.2f %% in runs of %.3f", 100 * ref_rate, ref_mean, 100 * got_rate, got_mean);
	ok(fabs(got_mean - ref_mean) <= 0.15 * ref_mean,
	   "loss-corr: mean burst %.3f within 15 %% of netem's model %.3f (%u packets)", got_mean,
	   ref_mean, N);
	ok(fabs(got_rate - ref_rate) <= 0.15 * ref_rate,
	   "loss-corr: loss rate %.5f within 15 %% of netem's model %.5f (far below the naive 0.1)",
	   got_rate, ref_rate);
	ok(ref_rate < 0.01 && ref_mean > 1.0 / (1 - ref_rate) + 0.05,
	   "netem's model: correlation lowers the loss rate and lengthens bursts");
	is_int(f.cnt.dropped_loss, got.events, "dropped_loss counts the losses");
	impair_flow_done(&f);
	rule_free(r);

	/* duplicate and corrupt use the same generator: their rates follow the same model. */
	r = flow_rule("duplicate=0.1 duplicate-corr=0.5 corrupt=0.1 corrupt-corr=0.5", &f);
	if (r) {
		impair_rng_seed(&g, 12);
		for (unsigned int i = 0; i < N; i++)
			impair_decide(&f, &r->impair, &g, T0, 100, &res);
		ok(fabs((double)f.cnt.duplicated / N - ref_rate) <= 0.15 * ref_rate &&
		   fabs((double)f.cnt.corrupted / N - ref_rate) <= 0.15 * ref_rate,
		   "duplicate-corr, corrupt-corr: %.5f and %.5f, netem's model %.5f",
		   (double)f.cnt.duplicated / N, (double)f.cnt.corrupted / N, ref_rate);
		impair_flow_done(&f);
		rule_free(r);
	}
	r = flow_rule("delay=10 reorder=0.1 reorder-corr=0.5 limit=100000", &f);
	if (r) {
		impair_rng_seed(&g, 13);
		for (unsigned int i = 0; i < N; i++)
			impair_decide(&f, &r->impair, &g, T0 + i * 100 * MS, 100, &res);
		ok(fabs((double)f.cnt.reordered / N - ref_rate) <= 0.15 * ref_rate,
		   "reorder-corr: %.5f, netem's model %.5f", (double)f.cnt.reordered / N, ref_rate);
		impair_flow_done(&f);
		rule_free(r);
	}
}

static double lag1(const double *x, size_t n)
{
	double m = 0, num = 0, den = 0;

	for (size_t i = 0; i < n; i++)
		m += x[i];
	m /= (double)n;
	for (size_t i = 0; i < n; i++) {
		den += (x[i] - m) * (x[i] - m);
		if (i)
			num += (x[i] - m) * (x[i - 1] - m);
	}
	return num / den;
}

static void test_delay_corr(void)
{
	/* netem reduces the correlated value modulo 2 * jitter: only a wide jitter keeps much. */
	const double mu = 2000e6, sigma = 1000e6, rho = 0.75;
	enum { N = 50000 };
	static double ref[N], got[N], plain[N];
	struct ref_crnd rc = { rho, ref_u32() };
	struct impair_flow f;
	struct impair_rng g;
	struct impair_result res;
	struct rule *r;
	double a_ref, a_got, a_plain;

	for (unsigned int i = 0; i < N; i++)
		ref[i] = mu - sigma + fmod(floor(ref_crnd(&rc)), 2 * sigma);
	a_ref = lag1(ref, N);

	r = flow_rule("delay=2000 jitter=1000 delay-corr=0.75 limit=100000", &f);
	if (!r) {
		ok(0, "delay-corr rule");
		return;
	}
	impair_rng_seed(&g, 21);
	for (unsigned int i = 0; i < N; i++) {
		/* Far apart: nothing is held at the next packet. */
		impair_decide(&f, &r->impair, &g, T0 + i * 100000 * MS, 100, &res);
		got[i] = (double)(res.copy[0].at_ns - (T0 + i * 100000 * MS));
	}
	a_got = lag1(got, N);
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("delay=2000 jitter=1000 limit=100000", &f);
	if (r) {
		for (unsigned int i = 0; i < N; i++) {
			impair_decide(&f, &r->impair, &g, T0 + i * 100000 * MS, 100, &res);
			plain[i] = (double)(res.copy[0].at_ns - (T0 + i * 100000 * MS));
		}
		impair_flow_done(&f);
		rule_free(r);
	}
	a_plain = lag1(plain, N);
	ok(fabs(a_got - a_ref) <= 0.03 && a_ref > 0.2,
	   "delay-corr=0.75 jitter=1000: lag-1 autocorrelation %.3f, netem's model %.3f", a_got,
	   a_ref);
	ok(fabs(a_plain) <= 0.03, "without delay-corr: %.3f", a_plain);

	/* The small jitter everyone uses: netem's modulo leaves almost nothing. */
	rc = (struct ref_crnd){ rho, ref_u32() };
	for (unsigned int i = 0; i < N; i++)
		ref[i] = 100e6 - 10e6 + fmod(floor(ref_crnd(&rc)), 20e6);
	r = flow_rule("delay=100 jitter=10 delay-corr=0.75", &f);
	if (r) {
		for (unsigned int i = 0; i < N; i++) {
			impair_decide(&f, &r->impair, &g, T0 + i * 1000000000ULL, 100, &res);
			got[i] = (double)(res.copy[0].at_ns - (T0 + i * 1000000000ULL));
		}
		impair_flow_done(&f);
		rule_free(r);
	}
	ok(fabs(lag1(got, N) - lag1(ref, N)) <= 0.03,
	   "delay-corr=0.75 jitter=10: %.3f, netem's model %.3f (the modulo destroys it)",
	   lag1(got, N), lag1(ref, N));
}

/* ---- tables --------------------------------------------------------------------- */

/* The entries of a .dist file, as iproute2 reads them; -1 when missing. */
static long read_dist(const char *path, int16_t *v, long max)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	long n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;

		if (*line == '#')
			continue;
		for (;;) {
			long x = strtol(p, &end, 10);

			if (end == p || n >= max)
				break;
			v[n++] = (int16_t)x;
			p = end;
		}
	}
	fclose(f);
	return n;
}

static void test_builtin_tables(void)
{
	static int16_t v[RULE_TABLE_MAX];
	static const struct {
		const char *name;
		const int16_t *t;
	} tabs[] = { { "pareto", netem_pareto }, { "paretonormal", netem_paretonormal } };

	for (size_t k = 0; k < ARRAY_SIZE(tabs); k++) {
		char path[256];
		long n;

		snprintf(path, sizeof(path), SHIPPED "/%s.dist", tabs[k].name);
		n = read_dist(path, v, RULE_TABLE_MAX);
		if (n < 0) {
			ok(1, "# SKIP %s not installed: built-in %s not compared", path,
			   tabs[k].name);
			continue;
		}
		ok(n == NETEM_TABLE_SIZE &&
		   memcmp(v, tabs[k].t, sizeof(int16_t) * NETEM_TABLE_SIZE) == 0,
		   "built-in %s equals iproute2's %s", tabs[k].name, path);
	}
	ok(netem_pareto[0] == -5461 && netem_pareto[NETEM_TABLE_SIZE - 1] == 32767,
	   "pareto: from -1.5 * 4/3 * 8192 up to the clamp");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_i16(const void *a, const void *b)
{
	return *(const int16_t *)a - *(const int16_t *)b;
}

/* 5,000 delays of line against the quantiles of its table t[0..n). */
static void check_quantiles(const char *line, const int16_t *t, uint32_t n, double mu, double sigma)
{
	enum { N = 5000 };
	static uint64_t d[N];
	static int16_t s[RULE_TABLE_MAX];
	static const double qs[] = { 0.5, 0.9, 0.99 };
	struct impair_flow f;
	struct impair_rng g;
	struct impair_result res;
	struct rule *r = flow_rule(line, &f);

	if (!r) {
		ok(0, "parse %s", line);
		return;
	}
	static uint64_t seed = 31;

	/* Another seed for each table: the same draws would repeat one error in all. */
	impair_rng_seed(&g, seed++);
	for (unsigned int i = 0; i < N; i++) {
		impair_decide(&f, &r->impair, &g, T0 + i * 1000000000ULL, 100, &res);
		d[i] = res.copy[0].at_ns - (T0 + i * 1000000000ULL);
	}
	impair_flow_done(&f);
	rule_free(r);
	qsort(d, N, sizeof(d[0]), cmp_u64);
	memcpy(s, t, n * sizeof(s[0]));
	qsort(s, n, sizeof(s[0]), cmp_i16);
	for (size_t k = 0; k < ARRAY_SIZE(qs); k++) {
		double want = mu + sigma * s[(size_t)(qs[k] * n)] / 8192.0;
		double have = (double)d[(size_t)(qs[k] * N)];

		ok(fabs(have - want) <= 0.1 * want, "%s: p%g %.2f ms, the table's %.2f ms", line,
		   qs[k] * 100, have / 1e6, want / 1e6);
	}
}

static void test_table_delays(void)
{
	static int16_t v[RULE_TABLE_MAX];
	char line[512];
	const char *path = SHIPPED "/normal.dist";
	long n;

	check_quantiles("delay=100 jitter=20 distribution=pareto", netem_pareto, NETEM_TABLE_SIZE,
			100e6, 20e6);
	check_quantiles("delay=100 jitter=20 distribution=paretonormal", netem_paretonormal,
			NETEM_TABLE_SIZE, 100e6, 20e6);
	n = read_dist(path, v, RULE_TABLE_MAX);
	if (n < 0) {
		/* No iproute2: a table of our own in its format. */
		char text[4096] = "# a small table\n";

		for (int i = 0; i < 64; i++)
			snprintf(text + strlen(text), sizeof(text) - strlen(text), "%d%s",
				 (i - 32) * 256, i % 8 == 7 ? "\n" : " ");
		path = tmpfile_with("small.dist", text);
		n = read_dist(path, v, RULE_TABLE_MAX);
	}
	snprintf(line, sizeof(line), "delay=100 jitter=20 distribution=@%s", path);
	check_quantiles(line, v, (uint32_t)n, 100e6, 20e6);

	/* netem's rounding: sigma % 8192 * t rounded half away from zero, then / 8192. */
	ok(impair_tabledist(1000, 8192 + 4096, 0, (const int16_t[]){ 1 }, 1) == 1000 + 1 + 1 &&
	   impair_tabledist(1000, 8192 + 4095, 0, (const int16_t[]){ 1 }, 1) == 1000 + 1 + 0 &&
	   impair_tabledist(1000, 8192 + 4096, 0, (const int16_t[]){ -1 }, 1) == 1000 - 1 - 1 &&
	   impair_tabledist(10, 100000, 0, (const int16_t[]){ -32768 }, 1) == 0,
	   "tabledist rounds as netem and clamps at 0");
	ok(impair_tabledist(60000 * MS, 60000 * MS, UINT32_MAX, NULL, 0) < 120000 * MS &&
	   impair_tabledist(60000 * MS, 60000 * MS, UINT32_MAX, NULL, 0) > 119900 * MS &&
	   impair_tabledist(60000 * MS, 60000 * MS, 1u << 31, NULL, 0) == 60000 * MS,
	   "tabledist without a table, jitter 60 s: no overflow");
	ok(impair_tabledist(50, 10, 7, NULL, 0) == 50 - 10 + 7 &&
	   impair_tabledist(50, 10, 25, NULL, 0) == 50 - 10 + 5,
	   "tabledist without a table: uniform");
}

/* ---- gap, slot, cost, ecn ---------------------------------------------------------- */

static void test_gap(void)
{
	struct impair_flow f;
	struct impair_rng g;
	struct impair_result res;
	struct rule *r = flow_rule("delay=10 reorder=1 gap=5", &f);
	unsigned int at_once = 0, wrong = 0;

	if (!r) {
		ok(0, "gap rule");
		return;
	}
	impair_rng_seed(&g, 41);
	for (unsigned int i = 0; i < 100; i++) {
		bool now;

		impair_decide(&f, &r->impair, &g, T0 + i * MS, 100, &res);
		now = res.copy[0].at_ns == T0 + i * MS;
		at_once += now;
		wrong += now != (i % 5 == 4);
	}
	ok(at_once == 20 && wrong == 0, "reorder=1 gap=5: every 5th packet at once (%u, %u wrong)",
	   at_once, wrong);
	impair_flow_done(&f);
	rule_free(r);

	/* With slots a reordered packet skips the delay but waits for a slot. */
	r = flow_rule("delay=10 reorder=1 slot=3", &f);
	if (r) {
		impair_decide(&f, &r->impair, &g, T0, 100, &res);
		ok(res.n == 1 && res.copy[0].at_ns == T0 + 3 * MS && f.cnt.reordered == 1 &&
		   f.cnt.delayed == 1, "reorder=1 slot=3: at the slot 3 ms on, not 10 ms");
		impair_flow_done(&f);
		rule_free(r);
	}
}

static void test_slot(void)
{
	struct impair_flow f;
	struct impair_rng g;
	struct impair_result res;
	struct rule *r = flow_rule("slot=10", &f);
	unsigned int wrong = 0;
	uint64_t first = 0, prev = 0, gapmin = UINT64_MAX, gapmax = 0;

	if (!r) {
		ok(0, "slot rule");
		return;
	}
	impair_rng_seed(&g, 51);
	/* Arrivals every 1 ms: the first opens a slot 10 ms on, the 11th the next one. */
	for (unsigned int i = 0; i < 40; i++) {
		impair_decide(&f, &r->impair, &g, T0 + i * MS, 100, &res);
		if (res.n != 1 || res.copy[0].at_ns != T0 + (i / 11 + 1) * 11 * MS - MS) {
			wrong++;
			diag("packet %u at %.3f ms", i,
			     res.n ? (double)(res.copy[0].at_ns - T0) / 1e6 : -1.0);
		}
	}
	ok(wrong == 0, "slot=10: released at slot starts 10, 21, 32, 43 ms");
	impair_flow_done(&f);
	rule_free(r);

	/* Backlogged, 3 packets a slot, slot times 5..15 ms. */
	r = flow_rule("slot=5,15,3 limit=10000", &f);
	if (!r)
		return;
	wrong = 0;
	for (unsigned int i = 0; i < 3000; i++) {
		uint64_t at;

		impair_decide(&f, &r->impair, &g, T0 + i * 10000, 100, &res);
		at = res.copy[0].at_ns;
		if (!first)
			first = at;
		if (at < prev)
			wrong++;
		if (at != prev && prev) {
			gapmin = at - prev < gapmin ? at - prev : gapmin;
			gapmax = at - prev > gapmax ? at - prev : gapmax;
		}
		prev = at;
	}
	ok(wrong == 0 && gapmin >= 5 * MS && gapmax <= 15 * MS && gapmax > 12 * MS &&
	   gapmin < 8 * MS, "backlog: slots %.2f..%.2f ms apart, in order", gapmin / 1e6,
	   gapmax / 1e6);
	impair_flow_done(&f);
	rule_free(r);

	/* The widest slots: 0..60 s, no overflow. */
	r = flow_rule("slot=0.001,60000", &f);
	if (r) {
		uint64_t lo = UINT64_MAX, hi = 0;

		for (unsigned int i = 0; i < 200; i++) {
			uint64_t now = T0 + i * 200000 * MS, d;

			impair_decide(&f, &r->impair, &g, now, 100, &res);
			d = res.copy[0].at_ns - now;
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		ok(lo >= 1000 && hi <= 60000 * MS && hi > 50000 * MS && lo < 10000 * MS,
		   "slot=0.001,60000: slot times %.3f..%.3f s", lo / 1e9, hi / 1e9);
		impair_flow_done(&f);
		rule_free(r);
	}

	/* Exactly 3 packets (or 250 bytes: 2 of 100) per slot. */
	for (int k = 0; k < 2; k++) {
		unsigned int cnt = 0, bad = 0;
		uint64_t cur = 0;

		r = flow_rule(k ? "slot=5,15,0,250 limit=10000" : "slot=5,15,3 limit=10000", &f);
		if (!r)
			return;
		for (unsigned int i = 0; i < 3000; i++) {
			impair_decide(&f, &r->impair, &g, T0 + i * 10000, 100, &res);
			if (res.copy[0].at_ns != cur) {
				bad += cur && cnt != 3;
				cur = res.copy[0].at_ns;
				cnt = 0;
			}
			cnt++;
		}
		ok(bad == 0, "%s: every slot releases %s", k ? "slot=5,15,0,250" : "slot=5,15,3",
		   k ? "3 packets of 100 bytes (the third crosses 250)" : "3 packets");
		impair_flow_done(&f);
		rule_free(r);
	}
}

static void test_cost(void)
{
	struct impair_flow f;
	struct impair_rng g;
	struct impair_result res;
	struct rule *r;

	is_int(impair_wire_len(100, 0, 0, 0), 100, "wire: plain");
	is_int(impair_wire_len(100, 14, 0, 0), 114, "wire: overhead 14");
	is_int(impair_wire_len(100, -120, 0, 0), 0, "wire: negative overhead clamps at 0");
	/* ATM: 48-byte cells of 53 bytes, 10 bytes of AAL5 overhead. */
	is_int(impair_wire_len(100, 10, 48, 5), 3 * 53, "wire: 110 bytes in 3 cells of 53");
	is_int(impair_wire_len(86, 10, 48, 5), 2 * 53, "wire: 96 bytes fill 2 cells exactly");
	is_int(impair_wire_len(97, 0, 48, 5), 3 * 53, "wire: 97 bytes need a third cell");
	is_int(impair_wire_len(100, 0, 50, -10), 2 * 40, "wire: negative cell overhead");

	/* 8mbit: a byte a microsecond.  Back to back, after the 1500-byte burst. */
	r = flow_rule("rate=8mbit overhead=20 cellsize=48 cell-overhead=5", &f);
	if (!r) {
		ok(0, "cost rule");
		return;
	}
	impair_rng_seed(&g, 61);
	for (unsigned int i = 0; i < 20; i++)
		impair_decide(&f, &r->impair, &g, T0, 100, &res);
	/* 120 bytes: 3 cells of 53 = 159 us each; packet k leaves at (k+1)*159 - 1500 us. */
	is_int(res.copy[0].at_ns - T0, (20 * 159 - 1500) * 1000ULL,
	       "rate=8mbit overhead=20 cellsize=48 cell-overhead=5: 159 us a packet");
	impair_flow_done(&f);
	rule_free(r);
}

static void test_ecn(void)
{
	struct impair_flow f;
	struct impair_rng g;
	struct impair_result res;
	struct rule *r = flow_rule("loss=1 loss-ecn=true duplicate=0", &f);

	if (!r) {
		ok(0, "loss-ecn rule");
		return;
	}
	impair_rng_seed(&g, 71);
	impair_decide_ecn(&f, &r->impair, &g, T0, 100, 2, &res);
	ok(res.ce && res.n == 1 && f.cnt.ce_marked == 1 && f.cnt.dropped_loss == 0,
	   "ECT(0): marked CE, sent");
	impair_decide_ecn(&f, &r->impair, &g, T0, 100, 1, &res);
	ok(res.ce && res.n == 1 && f.cnt.ce_marked == 2, "ECT(1): marked CE");
	impair_decide_ecn(&f, &r->impair, &g, T0, 100, 3, &res);
	ok(res.ce && res.n == 1 && f.cnt.ce_marked == 3, "CE: stays CE, sent (as netem)");
	impair_decide_ecn(&f, &r->impair, &g, T0, 100, 0, &res);
	ok(!res.ce && res.n == 0 && f.cnt.dropped_loss == 1, "not-ECT: dropped");
	impair_flow_done(&f);
	rule_free(r);
	r = flow_rule("loss=1", &f);
	if (r) {
		impair_decide_ecn(&f, &r->impair, &g, T0, 100, 2, &res);
		ok(!res.ce && res.n == 0, "without loss-ecn ECT is dropped");
		impair_flow_done(&f);
		rule_free(r);
	}
}

/* ---- vocabulary ---------------------------------------------------------------------- */

static const struct {
	const char *in, *out;
} good[] = {
	{ "delay=10 jitter=5 delay-corr=0.25", "" },
	{ "delay=10 jitter=5 distribution=pareto", "" },
	{ "delay=10 jitter=5 distribution=paretonormal delay-corr=0", "" },
	{ "loss-corr=0.5 loss=0.1", "loss=0.1 loss-corr=0.5" },
	{ "loss=0.1 loss-ecn=true", "" },
	{ "loss=gemodel:0.1,0.2 loss-ecn=TRUE", "loss=gemodel:0.1,0.2 loss-ecn=true" },
	{ "loss=0.1 loss-ecn=false", "loss=0.1" },
	{ "duplicate=0.1 duplicate-corr=1", "" },
	{ "corrupt=0.1 corrupt-corr=0.3", "" },
	{ "delay=10 reorder=0.25 reorder-corr=0.5 gap=5", "" },
	{ "gap=1 delay=10 reorder=1", "delay=10 reorder=1 gap=1" },
	{ "slot=5", "" },
	{ "slot=5,5", "slot=5" },
	{ "slot=5,10", "" },
	{ "slot=0.5,10.25,4", "" },
	{ "slot=5,5,0,3000", "" },
	{ "slot=0,1,7,0", "slot=0,1,7" },
	{ "slot=5 limit=10", "" },
	{ "rate=1mbit overhead=-4", "" },
	{ "cellsize=48 rate=1mbit cell-overhead=5 overhead=10",
	  "rate=1mbit overhead=10 cellsize=48 cell-overhead=5" },
	{ "delay=1 jitter=1 delay-corr=0.1 loss=0.2 loss-corr=0.3 loss-ecn=true duplicate=0.4 "
	  "duplicate-corr=0.5 reorder=0.6 reorder-corr=0.7 gap=3 corrupt=0.8 corrupt-corr=0.9 "
	  "rate=10mbit overhead=1 cellsize=2 cell-overhead=3 slot=1,2,3,4 limit=50", "" },
};

static void test_vocab_good(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct rule *r = NULL, *r2 = NULL, *d;
		char err[256] = "", out[RULE_FORMAT_MAX], out2[RULE_FORMAT_MAX];
		const char *want = *good[i].out ? good[i].out : good[i].in;
		size_t bad;

		if (!ok(rule_parse_line(good[i].in, &r, &bad, err, sizeof(err)) == 0, "parse '%s'",
			good[i].in)) {
			diag("%s", err);
			continue;
		}
		is_int(rule_format(r, out, sizeof(out)), strlen(want), "format length of '%s'",
		       good[i].in);
		is_str(out, want, "canonical form of '%s'", good[i].in);
		d = rule_dup(r);
		ok(rule_impairs(r) && rule_parse_line(out, &r2, &bad, err, sizeof(err)) == 0 &&
		   rule_equal(r, r2) && d && rule_equal(r, d) &&
		   rule_format(r2, out2, sizeof(out2)) >= 0 && strcmp(out, out2) == 0,
		   "'%s' round-trips", out);
		rule_free(d);
		rule_free(r);
		rule_free(r2);
	}
}

static void test_vocab_values(void)
{
	struct rule *r = rule_of("slot=0.5,10.25,4,1500");

	ok(r && r->impair.slot_min_us == 500 && r->impair.slot_max_us == 10250 &&
	   r->impair.slot_pkts == 4 && r->impair.slot_bytes == 1500 &&
	   r->impair.flags == RULE_I_SLOT && r->impair.limit == RULE_LIMIT_DEFAULT,
	   "slot: times in us, packets, bytes; the default limit");
	rule_free(r);
	r = rule_of("delay=10 reorder=0.5 gap=7");
	ok(r && r->impair.gap == 7, "gap");
	rule_free(r);
	r = rule_of("rate=1mbit overhead=-4096 cellsize=65535 cell-overhead=4096");
	ok(r && r->impair.overhead == -4096 && r->impair.cellsize == 65535 &&
	   r->impair.cell_overhead == 4096, "overhead and cell bounds");
	rule_free(r);
}

static const struct rule_refusal fixed_forms[] = {
	{ "delay=5 jitter=1 delay-corr=1.5", 2, "delay-corr: '1.5': out of range 0-1" },
	{ "delay=5 delay-corr=0.5", 1, "delay-corr: '0.5': needs jitter" },
	{ "delay=5 jitter=1 distribution=normal delay-corr=0.5", 3,
	  "delay-corr: '0.5': not with distribution=normal" },
	{ "loss-corr=0.5", 0, "loss-corr: '0.5': needs loss=P" },
	{ "loss=gemodel:0.1,0.2 loss-corr=0.5", 1, "loss-corr: '0.5': needs loss=P (not gemodel)" },
	{ "loss-ecn=true", 0, "loss-ecn: 'true': needs loss" },
	{ "loss=0.1 loss-ecn=yes", 1, "loss-ecn: 'yes': must be true or false" },
	{ "duplicate-corr=0.1", 0, "duplicate-corr: '0.1': needs duplicate" },
	{ "corrupt-corr=0.1", 0, "corrupt-corr: '0.1': needs corrupt" },
	{ "delay=5 reorder-corr=0.1", 1, "reorder-corr: '0.1': needs reorder" },
	{ "delay=5 gap=3", 1, "gap: '3': needs reorder" },
	{ "delay=5 reorder=0.1 gap=0", 2, "gap: '0': out of range 1-1000000" },
	{ "overhead=10", 0, "overhead: '10': needs rate in bits" },
	{ "rate=100pps overhead=10", 1, "overhead: '10': needs rate in bits" },
	{ "rate=1mbit overhead=4097", 1, "overhead: '4097': out of range -4096-4096" },
	{ "rate=1mbit overhead=x", 1, "overhead: 'x': not a number" },
	{ "rate=1mbit cell-overhead=5", 1, "cell-overhead: '5': needs cellsize" },
	{ "rate=1mbit cellsize=0", 1, "cellsize: '0': out of range 1-65535" },
	{ "slot=0", 0, "slot: '0': needs a slot time above 0" },
	{ "slot=10,5", 0, "slot: '10,5': MAX below MIN" },
	{ "slot=1,2,3,4,5", 0, "slot: '1,2,3,4,5': must be MIN[,MAX" },
	{ "slot=1,,3", 0, "slot: '1,,3': not a number of milliseconds" },
	{ "slot=1,2,x", 0, "slot: '1,2,x': must be MIN[,MAX" },
	{ "slot=1,2,1000001", 0, "slot: '1,2,1000001': PACKETS 0-1000000" },
	{ "slot=70000", 0, "slot: '70000': out of range 0-60000 ms" },
	{ "delay=5 jitter=1 distribution=@relative.dist", 2,
	  "distribution: '@relative.dist': a file must be @/absolute/path" },
	{ "delay=5 jitter=1 distribution=@/nonexistent/x.dist", 2,
	  "distribution: '@/nonexistent/x.dist': No such file or directory" },
	{ "delay=5 distribution=pareto", 1, "distribution: 'pareto': needs jitter" },
	{ "delay=5 jitter=1 distribution=@/dev/zero", 2,
	  "distribution: '@/dev/zero': not a regular file" },
	{ "delay=5 jitter=1 distribution=@/tmp", 2, "distribution: '@/tmp': not a regular file" },
};

static void test_vocab_bad(void)
{
	char big[64 * 1024], l[24][400];
	const char *p;
	size_t n = 0;
	struct rule_refusal forms[8];

	p = tmpfile_with("bad1.dist", "# ok\n1 2 3\n4 five 6\n");
	snprintf(l[0], sizeof(l[0]), "delay=5 jitter=1 distribution=@%s", p);
	forms[n++] = (struct rule_refusal){ l[0], 2, "distribution:" };
	p = tmpfile_with("bad2.dist", "1 2\n40000\n");
	snprintf(l[1], sizeof(l[1]), "delay=5 jitter=1 distribution=@%s", p);
	forms[n++] = (struct rule_refusal){ l[1], 2, "distribution:" };
	p = tmpfile_with("bad3.dist", "# nothing\n\n");
	snprintf(l[2], sizeof(l[2]), "delay=5 jitter=1 distribution=@%s", p);
	forms[n++] = (struct rule_refusal){ l[2], 2, "distribution:" };
	memset(big, 0, sizeof(big));
	for (size_t i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "1 ", 2);
	p = tmpfile_with("bad4.dist", big);
	snprintf(l[3], sizeof(l[3]), "delay=5 jitter=1 distribution=@%s", p);
	forms[n++] = (struct rule_refusal){ l[3], 2, "distribution:" };
	rule_check_refusals(fixed_forms, ARRAY_SIZE(fixed_forms));
	rule_check_refusals(forms, n);

	/* A FIFO is refused at once, not read (it would block). */
	{
		char fifo[128], line[300];
		struct rule *r = NULL;
		char err[512] = "";
		size_t bad;

		snprintf(fifo, sizeof(fifo), "%s/fifo.dist", tmpdir);
		snprintf(line, sizeof(line), "delay=5 jitter=1 distribution=@%s", fifo);
		ok(mkfifo(fifo, 0600) == 0 && rule_parse_line(line, &r, &bad, err, sizeof(err)) < 0 &&
		   strstr(err, "not a regular file"), "a FIFO: %s", err);
		unlink(fifo);
	}

	/* The messages of the files name the line. */
	{
		struct rule *r = NULL;
		char err[512];
		size_t bad;

		rule_parse_line(l[0], &r, &bad, err, sizeof(err));
		ok(strstr(err, "line 3: not an integer") != NULL, "malformed file: %s", err);
		rule_parse_line(l[1], &r, &bad, err, sizeof(err));
		ok(strstr(err, "line 2: out of range -32768-32767") != NULL, "range: %s", err);
		rule_parse_line(l[2], &r, &bad, err, sizeof(err));
		ok(strstr(err, "no values") != NULL, "empty: %s", err);
		rule_parse_line(l[3], &r, &bad, err, sizeof(err));
		ok(strstr(err, "more than 16384 values") != NULL, "too many: %s", err);
	}
}

static void test_vocab_equal(void)
{
	const char *a = tmpfile_with("a.dist", "1 2 3\n");
	char la[300], lb[300], lc[300];
	const char *lines[] = {
		"delay=5 jitter=1", "delay=5 jitter=1 delay-corr=0.5", "delay=5 jitter=1 delay-corr=0.6",
		"delay=5 jitter=1 distribution=pareto", "delay=5 jitter=1 distribution=paretonormal",
		la, lc, "loss=0.1", "loss=0.1 loss-corr=0.5", "loss=0.1 loss-ecn=true",
		"duplicate=0.1 duplicate-corr=0.5", "corrupt=0.1 corrupt-corr=0.5",
		"delay=5 reorder=0.1", "delay=5 reorder=0.1 gap=2", "delay=5 reorder=0.1 gap=3",
		"delay=5 reorder=0.1 reorder-corr=0.5", "slot=5", "slot=5,6", "slot=5,5,1",
		"slot=5,5,0,1", "rate=1mbit", "rate=1mbit overhead=1", "rate=1mbit cellsize=48",
		"rate=1mbit cellsize=48 cell-overhead=1",
	};
	unsigned int wrong = 0;
	struct rule *x, *y;

	snprintf(la, sizeof(la), "delay=5 jitter=1 distribution=@%s", a);
	snprintf(lb, sizeof(lb), "%s", la);
	/* The same path with other contents: another table. */
	x = rule_of(la);
	tmpfile_with("a.dist", "1 2 4\n");
	y = rule_of(lb);
	ok(x && y && !rule_equal(x, y), "a file whose contents changed is another table");
	rule_free(y);
	tmpfile_with("a.dist", "1 2 3\n");
	y = rule_of(lb);
	ok(x && y && rule_equal(x, y), "the same contents again: equal");
	rule_free(x);
	rule_free(y);
	snprintf(lc, sizeof(lc), "delay=5 jitter=1 distribution=@%s",
		 tmpfile_with("c.dist", "1 2 3\n"));

	wrong = rules_told_apart_wrong(lines, ARRAY_SIZE(lines));
	ok(wrong == 0, "rule_equal tells %zu rules apart", ARRAY_SIZE(lines));
}

/* Random rules from pools of the new keys' values mixed with the old ones. */
static void test_roundtrip_random(void)
{
	static char table[160];
	static const char *pool[][8] = {
		{ "delay", "50", "0.5", NULL },
		{ "jitter", "0", "10", "0.25", NULL },
		{ "distribution", "uniform", "normal", "pareto", "paretonormal", table, NULL },
		{ "delay-corr", "0", "0.5", "1", NULL },
		{ "loss", "0.3", "gemodel:0.01,0.3", NULL },
		{ "loss-corr", "0.25", "0", NULL },
		{ "loss-ecn", "true", "false", NULL },
		{ "duplicate", "0.01", NULL },
		{ "duplicate-corr", "0.5", NULL },
		{ "reorder", "0.25", "1", NULL },
		{ "reorder-corr", "0.1", NULL },
		{ "gap", "1", "5", "1000000", NULL },
		{ "corrupt", "0.001", NULL },
		{ "corrupt-corr", "0.75", NULL },
		{ "rate", "1500kbit", "1gbit", NULL },
		{ "overhead", "-4096", "0", "14", NULL },
		{ "cellsize", "48", "1", NULL },
		{ "cell-overhead", "5", "-3", NULL },
		{ "slot", "5", "1,2", "0.5,10.25,4", "1,1,0,1500", "7,8,9,10", NULL },
		{ "limit", "1", "77", NULL },
	};
	unsigned int tried = 30000, failed, parsed;

	snprintf(table, sizeof(table), "@%s", tmpfile_with("rt.dist", "# t\n-5 0 5\n"));
	parsed = RULE_RANDOM_ROUND_TRIPS(pool, 6, false, 0xdecafbad, tried, &failed);
	ok(parsed > 1000, "random rules with the new keys: %u of %u parse", parsed, tried);
	ok(failed == 0, "random rules: %u failed the format/parse round trip", failed);
}

/* The longest rule of 32 keys, a 255-character table path among them, fits RULE_FORMAT_MAX. */
static void test_format_max(void)
{
	char path[256], line[2048], out[RULE_FORMAT_MAX];
	struct rule *r;
	int n;

	snprintf(path, sizeof(path), "%s/", tmpdir);
	while (strlen(path) < sizeof(path) - 1)
		strcat(path, "x");
	{
		FILE *f = fopen(path, "w");

		if (f) {
			fputs("1\n", f);
			fclose(f);
		}
	}
	snprintf(line, sizeof(line),
		 "name=abcdefghijklmnopqrstuvwxyz01234 proto=tcp "
		 "src=!ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127 "
		 "dst=!ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127 sport=!65534-65535 "
		 "dport=!65534-65535 tcp-flags=!fin,!syn,!rst,!psh,!ack,!urg,!ece,!cwr "
		 "length=65534-65535 probability=0.33333333333333331 "
		 "set-ecn=not-ect clamp-mss=65535 verdict=reject reject-with=admin-prohibited "
		 "delay=59999.999 jitter=59999.999 distribution=@%s "
		 "delay-corr=0.33333333333333331 "
		 "loss=gemodel:0.33333333333333331,0.66666666666666663,0.11111111111111110,0.22222222222222221 "
		 "loss-ecn=true duplicate=0.33333333333333331 duplicate-corr=0.33333333333333331 "
		 "reorder=0.33333333333333331 reorder-corr=0.33333333333333331 "
		 "corrupt=0.33333333333333331 corrupt-corr=0.33333333333333331 "
		 "rate=99999999999bit overhead=-4096 cellsize=65535 cell-overhead=-4096 "
		 "slot=59999.999,60000,1000000,1073741824", path);
	r = rule_of(line);
	n = r ? rule_format(r, out, sizeof(out)) : -1;
	ok(n > 0 && n < RULE_FORMAT_MAX, "the longest rule with the new keys takes %d of %d bytes",
	   n, RULE_FORMAT_MAX);
	rule_free(r);

	/* Every key at once, the trace link's and the longest paths included. */
	{
		char trace[RULE_TRACE_MAX], all[4096];

		memset(trace, 't', sizeof(trace) - 1);
		trace[0] = '/';
		trace[sizeof(trace) - 1] = '\0';
		snprintf(all, sizeof(all),
			 RULE_LONGEST_HEAD
			 "delay=59999.999 jitter=59999.999 distribution=@%s "
			 "delay-corr=0.33333333333333331 "
			 "loss=gemodel:0.33333333333333331,0.66666666666666663,0.11111111111111110,0.22222222222222221 "
			 "loss-ecn=true duplicate=0.33333333333333331 duplicate-corr=0.33333333333333331 "
			 "reorder=0.33333333333333331 reorder-corr=0.33333333333333331 gap=1000000 "
			 "corrupt=0.33333333333333331 corrupt-corr=0.33333333333333331 "
			 "rate=@%s overhead=-4096 cellsize=65535 cell-overhead=-4096 "
			 "slot=59999.999,60000,1000000,1073741824 limit=99999 queue=99999 "
			 "queue-bytes=67108863 aqm=codel codel-target=59999.999 codel-interval=59999.999 "
			 "seed=18446744073709551615 expire=604799999ms", path, trace);
		r = rule_of(all);
		n = r ? rule_format(r, out, sizeof(out)) : -1;
		if (!r)
			diag("refused: %s", all);
		ok(n > 0 && n < RULE_FORMAT_MAX, "a rule with every key takes %d of %d bytes", n,
		   RULE_FORMAT_MAX);
		rule_free(r);
	}
	unlink(path);
}

static void cleanup(void)
{
	static const char *const names[] = { "small.dist", "bad1.dist", "bad2.dist", "bad3.dist",
					     "bad4.dist", "a.dist", "c.dist", "rt.dist" };
	char p[128];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	rmdir(tmpdir);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	test_loss_corr();
	test_delay_corr();
	test_builtin_tables();
	test_table_delays();
	test_gap();
	test_slot();
	test_cost();
	test_ecn();
	test_vocab_good();
	test_vocab_values();
	test_vocab_bad();
	test_vocab_equal();
	test_roundtrip_random();
	test_format_max();
	cleanup();
	return tap_done();
}
