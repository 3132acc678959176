/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Impairment: the generator, sqrt/ln against libm, Bernoulli and
 * Gilbert-Elliott loss (exact transitions and long-run statistics), delay
 * distributions, the token bucket (exact departure times), impair_decide(),
 * corruption, the timer queue (against a sorted reference), and the rule
 * vocabulary of the impairment keys (parse, errors, format round trip).
 *
 * Statistical checks use fixed seeds and bounds of about 5 standard
 * deviations: they are deterministic, and a wrong formula misses them by far.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "impair.h"
#include "packet.h"
#include "rule.h"
#include "ruleline.h"
#include "tap.h"
#include "util.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (1000 * SEC)		/* a monotonic clock some time after boot */

/* ---- rule helpers --------------------------------------------------------- */

/* ---- random numbers -------------------------------------------------------- */

static void test_rng(void)
{
	/* xoshiro256** through splitmix64, computed independently. */
	static const uint64_t want42[] = { 0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL,
					   0xae17533239e499a1ULL, 0xecb8ad4703b360a1ULL };
	struct impair_rng g, h;
	unsigned int differ = 0, bad_uniform = 0, never = 0, always = 0;
	unsigned int hist[3] = { 0 };
	bool ok_seq = true;

	impair_rng_seed(&g, 42);
	for (size_t i = 0; i < ARRAY_SIZE(want42); i++)
		ok_seq &= impair_rng_next(&g) == want42[i];
	ok(ok_seq, "seed 42: the first values are xoshiro256**'s");
	impair_rng_seed(&g, 0);
	is_int(impair_rng_next(&g) == 0x99ec5f36cb75f2b4ULL, 1, "seed 0: the first value");

	impair_rng_seed(&g, 7);
	impair_rng_seed(&h, 7);
	ok_seq = true;
	for (int i = 0; i < 1000; i++)
		ok_seq &= impair_rng_next(&g) == impair_rng_next(&h);
	ok(ok_seq, "the same seed gives the same sequence");
	impair_rng_seed(&g, 7);
	impair_rng_seed(&h, 8);
	for (int i = 0; i < 1000; i++)
		differ += impair_rng_next(&g) != impair_rng_next(&h);
	is_int(differ, 1000, "another seed gives another sequence");

	impair_rng_seed(&g, 1);
	for (int i = 0; i < 100000; i++) {
		double u = impair_rng_uniform(&g);

		if (!(u >= 0 && u < 1) || u * 0x1p53 != (double)(uint64_t)(u * 0x1p53))
			bad_uniform++;
		never += impair_rng_chance(&g, 0);
		always += impair_rng_chance(&g, 1);
	}
	is_int(bad_uniform, 0, "uniform: in [0, 1), multiples of 2^-53");
	is_int(never, 0, "chance(0) is never true");
	is_int(always, 100000, "chance(1) is always true");

	/* chance() draws exactly one value. */
	impair_rng_seed(&g, 3);
	impair_rng_seed(&h, 3);
	impair_rng_chance(&g, 0.5);
	impair_rng_next(&h);
	is_int(impair_rng_next(&g) == impair_rng_next(&h), 1, "chance() draws one value");

	ok_seq = true;
	for (int i = 0; i < 1000; i++)
		ok_seq &= impair_rng_below(&g, 1) == 0;
	ok(ok_seq, "below(1) is 0");
	for (int i = 0; i < 300000; i++)
		hist[impair_rng_below(&g, 3)]++;
	/* sigma = sqrt(300000 * 1/3 * 2/3) = 258 */
	ok(hist[0] > 98700 && hist[0] < 101300 && hist[1] > 98700 && hist[1] < 101300 &&
	   hist[2] > 98700 && hist[2] < 101300,
	   "below(3) is uniform (%u %u %u)", hist[0], hist[1], hist[2]);
	{
		uint64_t big = (1ULL << 63) + 1, hi = 0;

		for (int i = 0; i < 1000; i++) {
			uint64_t v = impair_rng_below(&g, big);

			if (v >= big)
				hi = v;
		}
		is_int(hi, 0, "below(2^63 + 1) stays below");
	}
}

static void test_math(void)
{
	struct impair_rng g;
	double worst_sqrt = 0, worst_ln = 0;

	is_int(impair_sqrt(4) == 2 && impair_sqrt(1) == 1 && impair_sqrt(0.25) == 0.5, 1,
	       "sqrt of squares is exact");
	is_int(impair_ln(1) == 0, 1, "ln(1) is 0");
	ok(impair_sqrt(0) == 0 && isnan(impair_sqrt(-1)) && isinf(impair_sqrt(INFINITY)),
	   "sqrt: 0, negative, infinity");
	ok(isinf(impair_ln(0)) && impair_ln(0) < 0 && isnan(impair_ln(-1)) && isinf(impair_ln(INFINITY)),
	   "ln: 0, negative, infinity");

	impair_rng_seed(&g, 11);
	for (int i = 0; i < 200000; i++) {
		/* Across the whole range, subnormals included. */
		int e = (int)impair_rng_below(&g, 2100) - 1074;
		double x = ldexp(1 + impair_rng_uniform(&g), e), d;

		if (x == 0 || isinf(x))
			continue;
		d = fabs(impair_sqrt(x) - sqrt(x)) / sqrt(x);
		if (d > worst_sqrt)
			worst_sqrt = d;
		d = fabs(impair_ln(x) - log(x)) / fmax(1, fabs(log(x)));
		if (d > worst_ln)
			worst_ln = d;
	}
	ok(worst_sqrt <= 2.3e-16, "sqrt within 1 ulp of libm (worst %.3g)", worst_sqrt);
	ok(worst_ln <= 4.5e-16, "ln within 2 ulp of libm (worst %.3g)", worst_ln);
	/* Near 1, where ln is small: relative error. */
	worst_ln = 0;
	for (int i = 0; i < 100000; i++) {
		double x = 1 + (i - 50000) * 1e-9, d;

		if (x == 1)
			continue;
		d = fabs(impair_ln(x) - log(x)) / fabs(log(x));
		if (d > worst_ln)
			worst_ln = d;
	}
	ok(worst_ln <= 4.5e-16, "ln near 1 within 2 ulp (worst relative error %.3g)", worst_ln);
}

static void test_normal(void)
{
	struct impair_rng g;
	double sum = 0, sum2 = 0, tail = 0;
	const int n = 1000000;

	impair_rng_seed(&g, 5);
	for (int i = 0; i < n; i++) {
		double z = impair_rng_normal(&g);

		sum += z;
		sum2 += z * z;
		tail += fabs(z) > 1.959963985;
	}
	/* sd(mean) = 0.001, sd(var) = sqrt(2/n) = 0.0014, sd(tail) = sqrt(.05*.95/n) = 0.00022 */
	ok(fabs(sum / n) < 0.005, "normal: mean 0 (%.5f)", sum / n);
	ok(fabs(sum2 / n - 1) < 0.007, "normal: variance 1 (%.5f)", sum2 / n);
	ok(fabs(tail / n - 0.05) < 0.0011, "normal: 5%% beyond 1.96 sigma (%.5f)", tail / n);
}

/* ---- loss ------------------------------------------------------------------ */

static void test_bernoulli(void)
{
	struct impair_rng g;
	unsigned int lost = 0;

	impair_rng_seed(&g, 99);
	for (int i = 0; i < 100000; i++)
		lost += impair_rng_chance(&g, 0.3);
	/* sigma = sqrt(0.3 * 0.7 / 1e5) = 0.00145 */
	ok(lost > 29275 && lost < 30725, "Bernoulli 0.3 over 100k draws: %u lost", lost);
}

/* The states and losses of n steps as strings of G/B and x (lost) or . */
static void ge_run(double p, double r, double bad, double good, int n, char *states, char *losses)
{
	struct impair_ge ge;
	struct impair_rng g;

	impair_rng_seed(&g, 1);
	impair_ge_init(&ge, p, r, bad, good);
	for (int i = 0; i < n; i++) {
		losses[i] = impair_ge_lose(&ge, &g) ? 'x' : '.';
		states[i] = ge.bad ? 'B' : 'G';
	}
	states[n] = losses[n] = '\0';
}

static void test_ge_exact(void)
{
	char st[16], lo[16];
	struct impair_ge ge;
	struct impair_rng g, h;
	bool two = true;

	/* The loss of a packet follows the state it arrived in, before the move. */
	ge_run(1, 1, 1, 0, 8, st, lo);
	is_str(st, "BGBGBGBG", "p=1 r=1: the state alternates");
	is_str(lo, ".x.x.x.x", "p=1 r=1: lost in the bad state it arrived in");
	ge_run(1, 0, 1, 0, 8, st, lo);
	is_str(st, "BBBBBBBB", "p=1 r=0: bad for good after the first packet");
	is_str(lo, ".xxxxxxx", "p=1 r=0: the first packet arrives in good and passes");
	ge_run(0, 1, 1, 0, 8, st, lo);
	is_str(lo, "........", "p=0: never bad, no good-state loss");
	ge_run(0, 0, 1, 1, 8, st, lo);
	is_str(lo, "xxxxxxxx", "p=0, GOODLOSS=1: every packet lost in good");
	ge_run(1, 0, 0, 0, 8, st, lo);
	is_str(st, "BBBBBBBB", "p=1 r=0 BADLOSS=0: bad ...");
	is_str(lo, "........", "... and nothing lost");
	ge_run(1, 1, 0, 1, 8, st, lo);
	is_str(lo, "x.x.x.x.", "BADLOSS=0 GOODLOSS=1: lost in good only");

	/* Two draws per packet, whatever the state. */
	impair_rng_seed(&g, 2);
	impair_rng_seed(&h, 2);
	impair_ge_init(&ge, 0.5, 0.5, 0.5, 0.5);
	for (int i = 0; i < 1000; i++) {
		impair_ge_lose(&ge, &g);
		impair_rng_next(&h);
		impair_rng_next(&h);
		two &= g.s[0] == h.s[0] && g.s[1] == h.s[1] && g.s[2] == h.s[2] && g.s[3] == h.s[3];
	}
	ok(two, "Gilbert-Elliott draws two values per packet");
}

static void test_ge_stats(void)
{
	const int n = 1000000;
	struct impair_ge ge;
	struct impair_rng g;
	unsigned long lost = 0, bursts = 0, gaps = 0, burst_len = 0, gap_len = 0;
	bool prev = false;
	double rate, mean_burst, mean_gap;

	/* Gilbert: p=0.01 r=0.3, loss p/(p+r) = 0.032258, bursts 1/r = 3.333, gaps 1/p = 100. */
	impair_rng_seed(&g, 2024);
	impair_ge_init(&ge, 0.01, 0.3, 1, 0);
	for (int i = 0; i < n; i++) {
		bool l = impair_ge_lose(&ge, &g);

		lost += l;
		if (l) {
			burst_len++;
			bursts += !prev;
		} else {
			gap_len++;
			gaps += prev;
		}
		prev = l;
	}
	rate = (double)lost / n;
	mean_burst = (double)burst_len / (double)bursts;
	mean_gap = (double)gap_len / (double)gaps;
	/*
	 * About 9700 bursts: sd of the mean burst (sd 2.79) is 0.028, of the
	 * loss rate about 1.3% relative; of the mean gap (sd 99.5) 1.0.
	 */
	ok(fabs(rate - 0.01 / 0.31) < 0.0021, "Gilbert loss rate %.5f, theory %.5f", rate,
	   0.01 / 0.31);
	ok(fabs(mean_burst - 1 / 0.3) < 0.14, "Gilbert mean burst %.4f, theory %.4f", mean_burst,
	   1 / 0.3);
	ok(fabs(mean_gap - 100) < 5, "Gilbert mean gap %.3f, theory 100", mean_gap);

	/* Elliott: both states lose; (p * bad + r * good) / (p + r) = 0.156. */
	impair_rng_seed(&g, 77);
	impair_ge_init(&ge, 0.05, 0.2, 0.7, 0.02);
	lost = 0;
	for (int i = 0; i < n; i++)
		lost += impair_ge_lose(&ge, &g);
	rate = (double)lost / n;
	ok(fabs(rate - 0.156) < 0.004, "Gilbert-Elliott loss rate %.5f, theory 0.156", rate);
}

/* ---- delay ----------------------------------------------------------------- */

static void test_delay(void)
{
	struct impair_rng g, h;
	unsigned int seen[3] = { 0 }, other = 0, zeros = 0, neg = 0;
	uint64_t lo = UINT64_MAX, hi = 0;
	double sum = 0, sum2 = 0;
	const int n = 200000;

	impair_rng_seed(&g, 4);
	impair_rng_seed(&h, 4);
	is_int(impair_delay_ns(&g, 50 * MS, 0, RULE_DIST_UNIFORM), 50 * MS, "no jitter: the delay");
	is_int(impair_delay_ns(&g, 50 * MS, 0, RULE_DIST_NORMAL), 50 * MS, "no jitter, normal: the delay");
	is_int(impair_rng_next(&g) == impair_rng_next(&h), 1, "no jitter: no draw");

	for (int i = 0; i < 3000; i++) {
		uint64_t d = impair_delay_ns(&g, 1000, 1, RULE_DIST_UNIFORM);

		if (d >= 999 && d <= 1001)
			seen[d - 999]++;
		else
			other++;
	}
	ok(!other && seen[0] > 800 && seen[1] > 800 && seen[2] > 800,
	   "uniform jitter 1 ns: 999, 1000 and 1001 ns, both ends included");

	for (int i = 0; i < n; i++) {
		uint64_t d = impair_delay_ns(&g, 50 * MS, 10 * MS, RULE_DIST_UNIFORM);
		double x = (double)d / MS;

		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += x;
		sum2 += x * x;
	}
	ok(lo >= 40 * MS && hi <= 60 * MS && lo < 40 * MS + 100000 && hi > 60 * MS - 100000,
	   "uniform 50 +- 10 ms: within [40, 60] ms and reaching both ends");
	/* sd = 20 / sqrt(12) = 5.77 ms; sd(mean) = 0.013 */
	ok(fabs(sum / n - 50) < 0.065, "uniform: mean %.4f ms", sum / n);
	ok(fabs(sqrt(sum2 / n - (sum / n) * (sum / n)) - 5.7735) < 0.05, "uniform: sd %.4f ms",
	   sqrt(sum2 / n - (sum / n) * (sum / n)));

	/* Jitter above the delay: the part below 0 is clamped to 0. */
	for (int i = 0; i < 21000; i++)
		zeros += impair_delay_ns(&g, 5, 10, RULE_DIST_UNIFORM) == 0;
	/* -5..15 ns: 6 of the 21 values are <= 0; sd = 65 */
	ok(zeros > 5675 && zeros < 6325, "uniform clamps at 0: %u of 21000 (theory 6000)", zeros);

	sum = sum2 = 0;
	for (int i = 0; i < n; i++) {
		double x = (double)impair_delay_ns(&g, 50 * MS, 10 * MS, RULE_DIST_NORMAL) / MS;

		sum += x;
		sum2 += x * x;
	}
	/* sd(mean) = 10 / sqrt(n) = 0.022 ms; sd(sd) = 10 / sqrt(2n) = 0.016 ms */
	ok(fabs(sum / n - 50) < 0.11, "normal 50 ms sigma 10: mean %.4f ms", sum / n);
	ok(fabs(sqrt(sum2 / n - (sum / n) * (sum / n)) - 10) < 0.08, "normal: sd %.4f ms",
	   sqrt(sum2 / n - (sum / n) * (sum / n)));
	zeros = 0;
	for (int i = 0; i < 20000; i++) {
		uint64_t d = impair_delay_ns(&g, 0, 10 * MS, RULE_DIST_NORMAL);

		zeros += d == 0;
		neg += d > 100 * MS;	/* a wrapped negative would be huge */
	}
	ok(zeros > 9650 && zeros < 10350 && !neg, "normal around 0: half clamped to 0 (%u)", zeros);
}

/* ---- token bucket ------------------------------------------------------------ */

/* ceil(a / b) */
static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* Departure of packet k of a train all arriving at T0: see impair.h. */
static uint64_t train(uint64_t cum_cost, uint64_t burst, uint64_t den)
{
	return T0 + (cum_cost > burst ? div_up(cum_cost - burst, den) : 0);
}

static void test_shaper(void)
{
	struct impair_shaper s;
	struct impair_rng g;
	unsigned int wrong = 0;
	uint64_t cum = 0, prev = 0;
	const uint64_t burst = 1500 * 8000000000ULL;

	ok(impair_shaper_init(&s, 0, false) == -EINVAL &&
	   impair_shaper_init(&s, IMPAIR_RATE_MAX + 1, true) == -EINVAL &&
	   impair_shaper_init(&s, IMPAIR_RATE_MAX, false) == 0, "rates 1..IMPAIR_RATE_MAX");

	/* 1 Mbit/s, 1500 bytes: 12 ms each, the first at once (the burst). */
	impair_shaper_init(&s, 1000000, false);
	for (uint64_t k = 0; k < 100; k++)
		wrong += impair_shaper_departure(&s, T0, 1500) != T0 + k * 12 * MS;
	is_int(wrong, 0, "1 Mbit/s, 1500-byte train: departures every 12 ms exactly");

	/* 1000 bytes: the burst leaves credit for half a packet. */
	impair_shaper_init(&s, 1000000, false);
	is_int(impair_shaper_departure(&s, T0, 1000), T0, "1000 bytes: the first at once");
	is_int(impair_shaper_departure(&s, T0, 1000), T0 + 4 * MS, "the second after 4 ms");
	is_int(impair_shaper_departure(&s, T0, 1000), T0 + 12 * MS, "then every 8 ms");
	is_int(impair_shaper_departure(&s, T0, 1000), T0 + 20 * MS, "then every 8 ms (2)");
	/* Arriving after its turn: the bucket refilled meanwhile, up to the burst only. */
	is_int(impair_shaper_departure(&s, T0 + 1 * SEC, 1500), T0 + 1 * SEC, "idle: at once");
	is_int(impair_shaper_departure(&s, T0 + 1 * SEC, 1), T0 + 1 * SEC + 8000,
	       "the bucket held one burst, not a second of tokens");

	/* An odd rate and size: 7 kbit/s, 100 bytes, no drift over 1000 packets. */
	impair_shaper_init(&s, 7000, false);
	wrong = 0;
	for (uint64_t k = 0; k < 1000; k++)
		wrong += impair_shaper_departure(&s, T0, 100) !=
			 train((k + 1) * 100 * 8000000000ULL, burst, 7000);
	is_int(wrong, 0, "7 kbit/s, 100 bytes: exact departures, no drift");

	/* Random sizes at an odd rate, all queued at T0. */
	impair_rng_seed(&g, 8);
	impair_shaper_init(&s, 3333333, false);
	wrong = 0;
	for (int k = 0; k < 5000; k++) {
		size_t len = 1 + impair_rng_below(&g, 1500);
		uint64_t d = impair_shaper_departure(&s, T0, len);

		cum += len * 8000000000ULL;
		wrong += d != train(cum, burst, 3333333);
	}
	is_int(wrong, 0, "random sizes at 3333333 bit/s: departure = T0 + ceil((sum - burst) / rate)");

	/* pps: 3 per second, departures ceil(k / 3 s). */
	impair_shaper_init(&s, 3, true);
	wrong = 0;
	for (uint64_t k = 0; k < 1000; k++)
		wrong += impair_shaper_departure(&s, T0, 1 + k % 1500) != T0 + div_up(k * SEC, 3);
	is_int(wrong, 0, "3 pps: departures at ceil(k * 1e9 / 3) ns whatever the size");
	impair_shaper_init(&s, 1000, true);
	is_int(impair_shaper_departure(&s, T0, 60000), T0, "pps burst: one packet at once");
	is_int(impair_shaper_departure(&s, T0, 60000), T0 + 1 * MS, "the next after 1/rate");

	/* A packet above the burst waits for a full bucket and leaves it in debt. */
	impair_shaper_init(&s, 1000000, false);
	is_int(impair_shaper_departure(&s, T0, 9000), T0, "9000 bytes at 1 Mbit/s: at once");
	is_int(impair_shaper_departure(&s, T0, 1500), T0 + 72 * MS, "the next pays its 72 ms");
	is_int(impair_shaper_departure(&s, T0 + 72 * MS, 9000), T0 + 84 * MS,
	       "a big one waits for a full bucket");

	/* FIFO with random arrivals, sizes and a slow clock. */
	impair_shaper_init(&s, 2000000, false);
	wrong = 0;
	for (uint64_t k = 0, now = T0; k < 20000; k++) {
		uint64_t d;

		now += impair_rng_below(&g, 8 * MS);
		d = impair_shaper_departure(&s, now, 40 + impair_rng_below(&g, 1460));
		wrong += d < prev || d < now;
		prev = d;
	}
	is_int(wrong, 0, "random arrivals: departures in order and never before arrival");
	/* A clock that steps back does not reorder. */
	impair_shaper_init(&s, 1000000, false);
	prev = impair_shaper_departure(&s, T0 + SEC, 1500);
	ok(impair_shaper_departure(&s, T0, 1500) >= prev, "an earlier now: still FIFO");
}

/* ---- flow ------------------------------------------------------------------ */

static struct rule *flow_rule(const char *line, struct impair_flow *f)
{
	struct rule *r = rule_of(line);

	if (r && impair_flow_init(f, &r->impair) < 0) {
		diag("impair_flow_init failed for '%s'", line);
		r = rule_free(r);
	}
	return r;
}

static void test_decide(void)
{
	struct impair_flow f;
	struct impair_result res;
	struct impair_rng g;
	struct rule *r;
	unsigned int wrong = 0;

	impair_rng_seed(&g, 1);

	/* limit with rate: the one leaving at once is not held. */
	r = flow_rule("rate=1mbit limit=3", &f);
	for (int k = 0; k < 10; k++) {
		impair_decide(&f, &r->impair, &g, T0, 1500, &res);
		if (k < 4)
			wrong += res.n != 1 || res.copy[0].at_ns != T0 + (uint64_t)k * 12 * MS;
		else
			wrong += res.n != 0;
	}
	is_int(wrong, 0, "rate=1mbit limit=3: one at once, three held, six refused");
	is_int(f.cnt.dropped_limit, 6, "dropped_limit counts the refused");
	is_int(f.cnt.delayed, 3, "delayed counts the held");
	is_int(impair_flow_held(&f, T0), 3, "three held at T0");
	is_int(impair_flow_held(&f, T0 + 12 * MS), 2, "two once the first left");
	impair_decide(&f, &r->impair, &g, T0 + 12 * MS, 1500, &res);
	ok(res.n == 1 && res.copy[0].at_ns == T0 + 48 * MS, "a freed slot: queued behind the others");
	impair_flow_done(&f);
	rule_free(r);

	/* limit with delay only. */
	r = flow_rule("delay=10 limit=2", &f);
	wrong = 0;
	for (int k = 0; k < 3; k++) {
		impair_decide(&f, &r->impair, &g, T0, 100, &res);
		wrong += k < 2 ? res.n != 1 || res.copy[0].at_ns != T0 + 10 * MS : res.n != 0;
	}
	is_int(wrong, 0, "delay=10 limit=2: two delayed by exactly 10 ms, the third refused");
	is_int(impair_flow_held(&f, T0 + 10 * MS - 1), 2, "held until their time ...");
	is_int(impair_flow_held(&f, T0 + 10 * MS), 0, "... and not after");
	impair_flow_done(&f);
	rule_free(r);

	/* A large limit costs only what is held: the heap grows by doubling, up to the limit. */
	r = flow_rule("delay=10 limit=100000", &f);
	ok(f.cap <= 16 && f.limit == 100000, "limit=100000: a heap of %u to start with", f.cap);
	wrong = 0;
	for (int k = 0; k < 3000; k++) {
		impair_decide(&f, &r->impair, &g, T0 + (uint64_t)k, 100, &res);
		wrong += res.n != 1 || res.copy[0].at_ns != T0 + (uint64_t)k + 10 * MS;
	}
	is_int(wrong, 0, "3,000 copies held in order of arrival, each delayed by exactly 10 ms");
	ok(f.nheld == 3000 && f.cap >= 3000 && f.cap <= 6000, "the heap grew to %u for 3,000 held", f.cap);
	is_int(impair_flow_held(&f, T0 + 10 * MS + 1499), 1500, "the earliest 1,500 leave first");
	impair_flow_done(&f);
	rule_free(r);

	/* A reload hands the held departures to the new chain's flow, whose heap grows for them. */
	{
		struct impair_flow g2;

		r = flow_rule("delay=10 limit=100000", &f);
		for (int k = 0; k < 3000; k++)
			impair_decide(&f, &r->impair, &g, T0 + (uint64_t)k, 100, &res);
		ok(impair_flow_init(&g2, &r->impair) == 0 && g2.cap <= 16, "a new flow starts small");
		impair_flow_copy_held(&g2, &f);
		ok(g2.nheld == 3000 && g2.cap >= 3000, "it takes over 3,000 held departures (heap %u)",
		   g2.cap);
		is_int(impair_flow_held(&g2, T0 + 10 * MS + 999), 2000, "and lets them go in order");
		impair_flow_done(&g2);
		impair_flow_done(&f);
		rule_free(r);
	}

	r = flow_rule("delay=10 limit=20", &f);
	for (int k = 0; k < 25; k++)
		impair_decide(&f, &r->impair, &g, T0, 100, &res);
	ok(f.nheld == 20 && f.cap == 20 && f.cnt.dropped_limit == 5,
	   "limit=20: the heap stops at the limit (%u), the rest refused", f.cap);
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("delay=10 duplicate=1", &f);
	impair_decide(&f, &r->impair, &g, T0, 100, &res);
	ok(res.n == 2 && res.copy[0].at_ns == T0 + 10 * MS && res.copy[1].at_ns == T0 + 10 * MS &&
	   f.cnt.duplicated == 1 && f.cnt.delayed == 2, "duplicate=1: two copies, both delayed");
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("loss=1", &f);
	impair_decide(&f, &r->impair, &g, T0, 100, &res);
	ok(res.n == 0 && f.cnt.dropped_loss == 1, "loss=1: no copy, dropped_loss");
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("duplicate=1 loss=1", &f);
	impair_decide(&f, &r->impair, &g, T0, 100, &res);
	ok(res.n == 1 && res.copy[0].at_ns == T0 && f.cnt.duplicated == 1 && f.cnt.dropped_loss == 1,
	   "duplicated and lost: one copy at once (netem)");
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("loss=gemodel:1,0", &f);
	impair_decide(&f, &r->impair, &g, T0, 100, &res);
	is_int(res.n, 1, "gemodel p=1 r=0: the first passes");
	impair_decide(&f, &r->impair, &g, T0, 100, &res);
	is_int(res.n, 0, "then all are lost");
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("delay=10 reorder=1", &f);
	impair_decide(&f, &r->impair, &g, T0, 100, &res);
	ok(res.n == 1 && res.copy[0].at_ns == T0 && f.cnt.reordered == 1 && f.cnt.delayed == 0 &&
	   impair_flow_held(&f, T0) == 0, "reorder=1: at once, not held");
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("corrupt=1 duplicate=1", &f);
	impair_decide(&f, &r->impair, &g, T0, 100, &res);
	ok(res.n == 2 && res.copy[0].corrupt && !res.copy[1].corrupt && f.cnt.corrupted == 1,
	   "corrupt=1: the original is marked, not the duplicate");
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("delay=0.5 rate=1mbit", &f);
	impair_decide(&f, &r->impair, &g, T0, 1500, &res);
	impair_decide(&f, &r->impair, &g, T0, 1500, &res);
	ok(res.n == 1 && res.copy[0].at_ns == T0 + 12 * MS + 500000, "rate then delay: 12 ms + 0.5 ms");
	impair_flow_done(&f);
	rule_free(r);

	r = flow_rule("delay=0 jitter=1", &f);
	wrong = 0;
	for (int k = 0; k < 1000; k++) {
		impair_decide(&f, &r->impair, &g, T0, 100, &res);
		wrong += res.n != 1 || res.copy[0].at_ns > T0 + MS;
	}
	ok(!wrong && f.cnt.delayed > 400 && f.cnt.delayed < 600,
	   "delay=0 jitter=1: about half held (%llu)", (unsigned long long)f.cnt.delayed);
	impair_flow_done(&f);
	rule_free(r);

	/* The balance of the counters, and determinism, on a mixed rule. */
	{
		const char *line = "delay=5 jitter=5 loss=0.1 duplicate=0.2 reorder=0.1 corrupt=0.05 "
				   "rate=10mbit limit=20";
		uint64_t sent = 0, in = 0, sum_at[2] = { 0 };

		for (int run = 0; run < 2; run++) {
			impair_rng_seed(&g, 123);
			r = flow_rule(line, &f);
			sent = in = 0;
			for (uint64_t k = 0, now = T0; k < 20000; k++) {
				now += impair_rng_below(&g, 2 * MS);
				impair_decide(&f, &r->impair, &g, now, 200 + k % 1300, &res);
				in++;
				sent += res.n;
				for (unsigned int i = 0; i < res.n; i++)
					sum_at[run] += res.copy[i].at_ns - now;
			}
			impair_flow_done(&f);
			rule_free(r);
		}
		ok(in + f.cnt.duplicated == sent + f.cnt.dropped_loss + f.cnt.dropped_limit,
		   "1 + duplicated = sent + dropped_loss + dropped_limit (%llu + %llu = %llu + %llu + %llu)",
		   (unsigned long long)in, (unsigned long long)f.cnt.duplicated,
		   (unsigned long long)sent, (unsigned long long)f.cnt.dropped_loss,
		   (unsigned long long)f.cnt.dropped_limit);
		ok(f.cnt.dropped_limit > 0 && f.cnt.reordered > 0 && f.cnt.corrupted > 0 &&
		   f.cnt.delayed > 0, "every counter moved");
		ok(sum_at[0] == sum_at[1], "the same seed gives the same departures");
	}

	/* A flow never initialized for its rule drops what it would hold, never sends it early. */
	r = rule_of("delay=10");
	memset(&f, 0, sizeof(f));
	impair_decide(&f, &r->impair, &g, T0, 100, &res);
	ok(res.n == 0 && f.cnt.dropped_limit == 1, "uninitialized flow: dropped, not sent undelayed");
	rule_free(r);

	{
		struct rule_impair bad = { .flags = RULE_I_DELAY, .delay_us = 1000 };

		is_int(impair_flow_init(&f, &bad), -EINVAL, "delay without a limit: -EINVAL");
		bad = (struct rule_impair){ .flags = RULE_I_RATE, .limit = 5 };
		is_int(impair_flow_init(&f, &bad), -EINVAL, "rate 0: -EINVAL");
	}
}

/* ---- corruption ------------------------------------------------------------ */

struct cpkt {
	uint8_t buf[256];
	struct pkt p;
};

static void ip4(struct cpkt *c, uint8_t proto, size_t optlen, size_t l4len, uint16_t frag)
{
	uint8_t *b = c->buf;
	size_t hl = 20 + optlen;

	memset(c, 0, sizeof(*c));
	b[0] = (uint8_t)(0x40 | hl / 4);
	put_be16(b + 2, (uint16_t)(hl + l4len));
	put_be16(b + 6, frag);
	b[8] = 64;
	b[9] = proto;
	memcpy(b + 12, "\x0a\x00\x00\x01\xc0\x00\x02\x07", 8);
	for (size_t i = 20; i < hl; i++)
		b[i] = 1;	/* NOP options */
	for (size_t i = hl; i < hl + l4len; i++)
		b[i] = (uint8_t)(i * 7);
	c->p = (struct pkt){ .data = b, .len = hl + l4len, .cap = sizeof(c->buf) };
}

static void ip6(struct cpkt *c, uint8_t nh, bool hbh, size_t l4len)
{
	uint8_t *b = c->buf;
	size_t hl = 40 + (hbh ? 8 : 0);

	memset(c, 0, sizeof(*c));
	b[0] = 0x60;
	put_be16(b + 4, (uint16_t)(hl - 40 + l4len));
	b[6] = hbh ? 0 : nh;
	b[7] = 64;
	b[8] = 0x20, b[9] = 0x01, b[10] = 0x0d, b[11] = 0xb8, b[23] = 1;
	b[24] = 0x20, b[25] = 0x01, b[26] = 0x0d, b[27] = 0xb8, b[39] = 2;
	if (hbh) {
		b[40] = nh;
		b[41] = 0;
		b[42] = 1;	/* PadN of 4 */
		b[43] = 4;
	}
	for (size_t i = hl; i < hl + l4len; i++)
		b[i] = (uint8_t)(i * 5);
	c->p = (struct pkt){ .data = b, .len = hl + l4len, .cap = sizeof(c->buf) };
}

/* Fill in the L4 header fields the parser checks, then the checksums. */
static void l4(struct cpkt *c, size_t l4off)
{
	uint8_t *b = c->buf + l4off;
	size_t l4len = c->p.len - l4off;

	switch (c->p.data[0] >> 4 == 4 ? c->buf[9] : (c->buf[6] ? c->buf[6] : c->buf[40])) {
	case IPPROTO_TCP:
		b[12] = 0x60;	/* 24 bytes: MSS option */
		b[13] = 0x02;
		b[20] = 2;
		b[21] = 4;
		put_be16(b + 22, 1460);
		break;
	case IPPROTO_UDP:
		put_be16(b + 4, (uint16_t)l4len);
		break;
	case IPPROTO_ICMP:
		b[0] = 8;
		b[1] = 0;
		break;
	case IPPROTO_ICMPV6:
		b[0] = 128;
		b[1] = 0;
		break;
	}
}

static int prepare(struct cpkt *c, size_t l4off)
{
	int cls;

	l4(c, l4off);
	cls = pkt_parse(&c->p);
	if (cls == PKT_OK)
		pkt_csum_full(&c->p);
	return cls;
}

/*
 * Corrupt fresh copies of c many times: exactly one bit flips, always in
 * [lo, hi) (bit indexes), every bit of that range is hit, the packet still
 * parses with the same L4 view and the IP header is untouched.
 */
static void check_corrupt(const struct cpkt *c0, size_t lo, size_t hi, bool has_csum,
			  const char *what)
{
	static bool hit[256 * 8];
	struct impair_rng g;
	unsigned int wrong = 0, missed = 0, unparsed = 0;
	bool csum_right = false;

	memset(hit, 0, sizeof(hit));
	impair_rng_seed(&g, 31);
	for (int i = 0; i < 20000; i++) {
		struct cpkt c = *c0, ref;
		int bit, diff = 0;

		c.p.data = c.buf;
		bit = impair_corrupt(&c.p, &g);
		for (size_t j = 0; j < c.p.len; j++)
			diff += __builtin_popcount(c.buf[j] ^ c0->buf[j]);
		if (bit < 0 || diff != 1 || (size_t)bit < lo || (size_t)bit >= hi ||
		    !(c.buf[bit / 8] ^ c0->buf[bit / 8]) ||
		    (c.buf[bit / 8] ^ c0->buf[bit / 8]) != 1 << (bit % 8)) {
			wrong++;
			continue;
		}
		hit[bit] = true;
		if (pkt_parse(&c.p) != PKT_OK || c.p.l4off != c0->p.l4off ||
		    c.p.l4proto != c0->p.l4proto || memcmp(c.buf, c0->buf, c0->p.l4off) != 0)
			unparsed++;
		/* The checksums are left as they were: a full recompute disagrees. */
		ref = c;
		ref.p.data = ref.buf;
		pkt_csum_full(&ref.p);
		csum_right |= memcmp(ref.buf, c.buf, c.p.len) == 0;
	}
	for (size_t b = lo; b < hi; b++)
		missed += !hit[b];
	ok(!wrong, "%s: one bit flipped, within bits %zu..%zu", what, lo, hi - 1);
	ok(!missed, "%s: every bit of the range is hit (%u missed)", what, missed);
	ok(!unparsed, "%s: still parses, IP headers untouched", what);
	if (has_csum)
		ok(!csum_right, "%s: the checksum is left wrong", what);
}

static void test_corrupt(void)
{
	struct cpkt c, c2;
	struct impair_rng g;

	impair_rng_seed(&g, 1);

	ip4(&c, IPPROTO_UDP, 0, 8 + 4, 0);
	if (ok(prepare(&c, 20) == PKT_OK, "v4 UDP with 4 bytes of payload parses"))
		check_corrupt(&c, 28 * 8, 32 * 8, true, "v4 UDP payload");

	ip4(&c, IPPROTO_TCP, 4, 24, 0);
	if (ok(prepare(&c, 24) == PKT_OK, "v4 with options, TCP SYN without payload parses"))
		check_corrupt(&c, (24 + 16) * 8, (24 + 18) * 8, true,
			      "v4 TCP without payload: checksum field");

	ip4(&c, IPPROTO_ICMP, 0, 8, 0);
	if (ok(prepare(&c, 20) == PKT_OK, "v4 echo request without data parses"))
		check_corrupt(&c, (20 + 2) * 8, (20 + 4) * 8, true,
			      "v4 ICMP without data: checksum field");

	ip6(&c, IPPROTO_TCP, false, 24 + 3);
	if (ok(prepare(&c, 40) == PKT_OK, "v6 TCP with 3 bytes of payload parses"))
		check_corrupt(&c, (40 + 24) * 8, (40 + 27) * 8, true, "v6 TCP payload");

	ip6(&c, IPPROTO_UDP, true, 8 + 2);
	if (ok(prepare(&c, 48) == PKT_OK, "v6 hop-by-hop then UDP parses"))
		check_corrupt(&c, (48 + 8) * 8, (48 + 10) * 8, true,
			      "v6 UDP after an extension header");

	ip6(&c, IPPROTO_ICMPV6, false, 8 + 1);
	if (ok(prepare(&c, 40) == PKT_OK, "v6 echo request with 1 byte parses"))
		check_corrupt(&c, (40 + 8) * 8, (40 + 9) * 8, true, "ICMPv6 payload");

	ip4(&c, IPPROTO_GRE, 0, 6, 0);
	if (ok(prepare(&c, 20) == PKT_OK, "v4 GRE parses"))
		check_corrupt(&c, 20 * 8, 26 * 8, false,
			      "unknown protocol: after the IP header");

	ip4(&c, IPPROTO_UDP, 0, 16, 100);	/* fragment offset 800 */
	if (ok(prepare(&c, 20) == PKT_OK, "v4 non-first UDP fragment parses"))
		check_corrupt(&c, 20 * 8, 36 * 8, false,
			      "non-first fragment: all of its data");

	ip6(&c, 59, false, 0);
	if (ok(prepare(&c, 40) == PKT_OK, "v6 with no next header parses")) {
		c2 = c;
		c2.p.data = c2.buf;
		is_int(impair_corrupt(&c2.p, &g), -ENODATA, "nothing after the IP header: -ENODATA");
		ok(memcmp(c.buf, c2.buf, sizeof(c.buf)) == 0, "... and nothing changed");
	}
}

/* ---- queue ----------------------------------------------------------------- */

struct flushed {
	unsigned int n, wrong_owner;
	size_t bytes;
	uint32_t owner;
};

static void on_flush(void *userdata, uint32_t owner, const uint8_t *data, size_t len)
{
	struct flushed *fl = userdata;

	fl->n++;
	fl->bytes += len;
	fl->wrong_owner += owner != fl->owner || data[0] != (uint8_t)owner;
}

/* Picks the odd owners, and counts what it is asked and what the flush hands over. */
struct picked {
	unsigned int asked, flushed, even;
};

static bool pick_odd(void *userdata, uint32_t owner)
{
	struct picked *pk = userdata;

	pk->asked++;
	return owner % 2 == 1;
}

static void on_pick_flush(void *userdata, uint32_t owner, const uint8_t *data, size_t len)
{
	struct picked *pk = userdata;

	pk->flushed++;
	pk->even += owner % 2 == 0 || data[0] != (uint8_t)owner || len == 0;
}

/* The reference: entries sorted by (at, seq). */
struct ref {
	uint64_t at, seq;
	uint32_t owner;
};

static bool ref_before(const struct ref *a, const struct ref *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void test_queue(void)
{
	struct impair_queue q;
	struct impair_item it;
	struct impair_rng g;
	uint8_t buf[PKT_MAX + 1];
	uint64_t next = 0;
	unsigned int wrong = 0;

	memset(buf, 0, sizeof(buf));
	ok(impair_queue_init(&q, 0, 100) == -EINVAL && impair_queue_init(&q, 10, 0) == -EINVAL,
	   "init: both bounds must be at least 1");
	impair_queue_done(&q);
	ok(impair_queue_init(&q, 8, 100000) == 0, "init");
	ok(!impair_queue_next(&q, &next) && impair_queue_pop(&q, UINT64_MAX, &it) == 0,
	   "empty: no next, nothing to pop");
	is_int(impair_queue_push(&q, 1, 0, buf, 0), -EINVAL, "len 0: -EINVAL");
	is_int(impair_queue_push(&q, 1, 0, buf, PKT_MAX + 1), -EINVAL, "above PKT_MAX: -EINVAL");

	/* By time. */
	{
		static const uint64_t at[] = { 50, 30, 90, 10, 70 };

		for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
			buf[0] = (uint8_t)at[i];
			impair_queue_push(&q, at[i], 0, buf, 1 + i);
		}
		buf[0] = 0;
		ok(impair_queue_next(&q, &next) && next == 10, "next is the earliest");
		is_int(impair_queue_pop(&q, 9, &it), 0, "nothing due before 10");
		for (uint64_t t = 10; t <= 90; t += 20) {
			if (impair_queue_pop(&q, 100, &it) != 1 || it.at_ns != t || it.data[0] != t)
				wrong++;
			else
				free(it.data);
		}
		is_int(wrong, 0, "popped by time: 10 30 50 70 90, each with its own data");
		ok(impair_queue_len(&q) == 0 && impair_queue_bytes(&q) == 0, "empty again, 0 bytes");
	}

	/* The queue keeps its own copy. */
	buf[0] = 'a';
	impair_queue_push(&q, 5, 3, buf, 10);
	buf[0] = 'b';
	ok(impair_queue_pop(&q, 5, &it) == 1 && it.data[0] == 'a' && it.len == 10 && it.owner == 3 &&
	   it.at_ns == 5, "a popped copy is the data as pushed, with its owner and length");
	free(it.data);
	/* The destination travels with the copy (ipmodd: the tun or an inbound tun). */
	impair_queue_push_to(&q, 7, 4, 3, buf, 5);
	impair_queue_push(&q, 6, 4, buf, 5);
	ok(impair_queue_pop(&q, 7, &it) == 1 && it.at_ns == 6 && it.dest == 0,
	   "push: destination 0");
	free(it.data);
	ok(impair_queue_pop(&q, 7, &it) == 1 && it.at_ns == 7 && it.dest == 3 && it.owner == 4,
	   "push_to: its destination comes back with the copy");
	free(it.data);
	impair_queue_done(&q);

	/* FIFO among equal times. */
	impair_queue_init(&q, 300, 1000000);
	for (unsigned int i = 0; i < 300; i++) {
		buf[0] = (uint8_t)i;
		buf[1] = (uint8_t)(i >> 8);
		impair_queue_push(&q, i % 2 ? 20 : 10, 0, buf, 2);
	}
	wrong = 0;
	for (unsigned int i = 0; i < 300; i++) {
		unsigned int want = i < 150 ? 2 * i : 2 * (i - 150) + 1;

		if (impair_queue_pop(&q, 20, &it) != 1 || (unsigned int)(it.data[0] | it.data[1] << 8) != want)
			wrong++;
		else
			free(it.data);
	}
	is_int(wrong, 0, "equal times leave in the order they were pushed");
	impair_queue_done(&q);

	/* Bounds. */
	impair_queue_init(&q, 4, 3000);
	ok(impair_queue_push(&q, 1, 0, buf, 1500) == 0 && impair_queue_push(&q, 2, 0, buf, 1500) == 0,
	   "two of 1500 bytes fit 3000");
	is_int(impair_queue_push(&q, 3, 0, buf, 1), -ENOBUFS, "one byte more: -ENOBUFS");
	ok(impair_queue_len(&q) == 2 && impair_queue_bytes(&q) == 3000, "nothing was queued");
	impair_queue_pop(&q, 1, &it);
	free(it.data);
	ok(impair_queue_push(&q, 3, 0, buf, 1) == 0 && impair_queue_push(&q, 4, 0, buf, 1) == 0 &&
	   impair_queue_push(&q, 5, 0, buf, 1) == 0, "after a pop, small ones fit");
	is_int(impair_queue_push(&q, 6, 0, buf, 1), -ENOBUFS, "the fifth packet: -ENOBUFS");
	is_int(impair_queue_bytes(&q), 1503, "bytes add up");
	impair_queue_done(&q);
	impair_queue_done(&q);

	/* Random pushes and pops against a sorted reference. */
	{
		enum { CAP = 500 };
		static struct ref ref[CAP];
		size_t nref = 0, bytes = 0;
		uint64_t now = 0, seq = 0;
		unsigned int mismatch = 0, refused = 0, pops = 0;

		impair_rng_seed(&g, 17);
		impair_queue_init(&q, CAP, 200000);
		for (int op = 0; op < 100000; op++) {
			if (impair_rng_below(&g, 100) < 55) {
				uint64_t at = now + 50 * impair_rng_below(&g, 60);	/* many ties */
				size_t len = 1 + impair_rng_below(&g, 1500);
				uint32_t owner = (uint32_t)seq;
				int ret;

				memcpy(buf, &owner, sizeof(owner));
				ret = impair_queue_push(&q, at, owner, buf, len < 4 ? 4 : len);
				if (ret == -ENOBUFS) {
					refused++;
					mismatch += nref < CAP && bytes + (len < 4 ? 4 : len) <= 200000;
					continue;
				}
				if (ret < 0) {
					mismatch++;
					continue;
				}
				ref[nref++] = (struct ref){ at, seq++, owner };
				bytes += len < 4 ? 4 : len;
			} else {
				size_t best = SIZE_MAX;

				now += impair_rng_below(&g, 10);
				for (size_t i = 0; i < nref; i++)
					if (ref[i].at <= now && (best == SIZE_MAX || ref_before(&ref[i], &ref[best])))
						best = i;
				while (impair_queue_pop(&q, now, &it) == 1) {
					uint32_t owner;

					memcpy(&owner, it.data, sizeof(owner));
					if (best == SIZE_MAX || it.owner != ref[best].owner ||
					    owner != it.owner || it.at_ns != ref[best].at)
						mismatch++;
					if (best != SIZE_MAX) {
						bytes -= it.len;
						ref[best] = ref[--nref];
					}
					free(it.data);
					pops++;
					best = SIZE_MAX;
					for (size_t i = 0; i < nref; i++)
						if (ref[i].at <= now &&
						    (best == SIZE_MAX || ref_before(&ref[i], &ref[best])))
							best = i;
				}
				mismatch += best != SIZE_MAX;	/* one was due and not popped */
			}
			mismatch += impair_queue_len(&q) != nref || impair_queue_bytes(&q) != bytes;
		}
		ok(mismatch == 0 && pops > 10000 && refused > 0,
		   "100000 random operations agree with a sorted reference (%u pops, %u refused)",
		   pops, refused);
		impair_queue_done(&q);
	}

	/* Flush by owner. */
	{
		struct flushed fl = { .owner = 2 };
		size_t counts[4] = { 0 }, bytes[4] = { 0 }, n;
		uint64_t last = 0;
		uint32_t bad_owner = 0;

		impair_rng_seed(&g, 5);
		impair_queue_init(&q, 1000, 10000000);
		for (int i = 0; i < 900; i++) {
			uint32_t owner = (uint32_t)impair_rng_below(&g, 4);
			size_t len = 1 + impair_rng_below(&g, 200);

			buf[0] = (uint8_t)owner;
			impair_queue_push(&q, impair_rng_below(&g, 1000), owner, buf, len);
			counts[owner]++;
			bytes[owner] += len;
		}
		n = impair_queue_flush_owner(&q, 2, on_flush, &fl);
		ok(n == counts[2] && fl.n == counts[2] && fl.bytes == bytes[2] && !fl.wrong_owner,
		   "flush owner 2: exactly its %zu copies, %zu bytes", counts[2], bytes[2]);
		ok(impair_queue_len(&q) == 900 - counts[2] &&
		   impair_queue_bytes(&q) == bytes[0] + bytes[1] + bytes[3], "the others stay, bytes too");
		is_int(impair_queue_flush_owner(&q, 2, NULL, NULL), 0, "flushing owner 2 again: none");
		/* Still a heap: pops in order, none of owner 2. */
		wrong = 0;
		for (int i = 0; i < 100; i++) {
			if (impair_queue_pop(&q, UINT64_MAX, &it) != 1 || it.at_ns < last)
				wrong++;
			else
				last = it.at_ns;
			bad_owner += it.owner == 2;
			free(it.data);
		}
		ok(!wrong && !bad_owner, "after the flush the heap still pops in order");
		fl = (struct flushed){ .owner = 1 };
		n = impair_queue_flush_owner(&q, 1, on_flush, &fl);
		ok(n == fl.n && !fl.wrong_owner, "flush owner 1 with the callback");
		n = impair_queue_len(&q);
		is_int(impair_queue_flush(&q, NULL, NULL), n, "flush all: every remaining copy");
		ok(impair_queue_len(&q) == 0 && impair_queue_bytes(&q) == 0, "empty, 0 bytes");
		/* Left in the queue at done: freed (ASan checks). */
		impair_queue_push(&q, 1, 0, buf, 100);
		impair_queue_done(&q);
	}

	/* Flush the owners a predicate picks, in one pass. */
	{
		struct picked pk = { 0 };
		size_t odd = 0, odd_bytes = 0, total_bytes = 0, n;
		uint64_t last = 0;
		unsigned int pops = 0;

		impair_rng_seed(&g, 6);
		impair_queue_init(&q, 1000, 10000000);
		for (int i = 0; i < 700; i++) {
			uint32_t owner = (uint32_t)impair_rng_below(&g, 10);
			size_t len = 1 + impair_rng_below(&g, 200);

			buf[0] = (uint8_t)owner;
			impair_queue_push(&q, impair_rng_below(&g, 1000), owner, buf, len);
			odd += owner % 2;
			odd_bytes += owner % 2 ? len : 0;
			total_bytes += len;
		}
		n = impair_queue_flush_pick(&q, pick_odd, on_pick_flush, &pk);
		ok(n == odd && pk.flushed == odd && pk.even == 0 && pk.asked == 700,
		   "flush_pick: the %zu copies of odd owners, each asked once", odd);
		ok(impair_queue_len(&q) == 700 - odd && impair_queue_bytes(&q) == total_bytes - odd_bytes,
		   "the even owners stay, bytes too");
		wrong = 0;
		while (impair_queue_pop(&q, UINT64_MAX, &it) == 1) {
			wrong += it.at_ns < last || it.owner % 2 == 1;
			last = it.at_ns;
			pops++;
			free(it.data);
		}
		ok(!wrong && pops == 700 - odd, "and still pop in order");
		is_int(impair_queue_flush_pick(&q, pick_odd, NULL, &pk), 0, "an empty queue: none");
		impair_queue_done(&q);
	}
}

/* ---- vocabulary ------------------------------------------------------------ */

static const struct {
	const char *in, *out;	/* out: the canonical form, "" when the same */
} good[] = {
	{ "delay=50", "" },
	{ "delay=50 loss=0.3", "" },
	{ "delay=0", "" },
	{ "delay=0.001", "" },
	{ "delay=12.340", "delay=12.34" },
	{ "delay=012.5", "delay=12.5" },
	{ "delay=60000", "" },
	{ "delay=60000.000", "delay=60000" },
	{ "delay=100 jitter=10", "" },
	{ "delay=100 jitter=10 distribution=uniform", "delay=100 jitter=10" },
	{ "distribution=NORMAL jitter=10 delay=100", "delay=100 jitter=10 distribution=normal" },
	{ "delay=5 jitter=20", "" },
	{ "loss=0", "" },
	{ "loss=1", "" },
	{ "loss=1e-3", "loss=0.001" },
	{ "loss=gemodel:0.01,0.3", "" },
	{ "loss=gemodel:0.01,0.3,1", "loss=gemodel:0.01,0.3" },
	{ "loss=gemodel:0.01,0.3,1,0", "loss=gemodel:0.01,0.3" },
	{ "loss=gemodel:0.01,0.3,0.9", "" },
	{ "loss=gemodel:0.01,0.3,1,0.001", "" },
	{ "loss=GeModel:0.5,0.5", "loss=gemodel:0.5,0.5" },
	{ "duplicate=0.01", "" },
	{ "delay=10 reorder=0.25", "" },
	{ "corrupt=0.001", "" },
	{ "rate=1mbit", "" },
	{ "rate=1000kbit", "rate=1mbit" },
	{ "rate=1500kbit", "" },
	{ "rate=1000bit", "rate=1kbit" },
	{ "rate=1001bit", "" },
	{ "rate=100gbit", "" },
	{ "rate=100000mbit", "rate=100gbit" },
	{ "rate=5MBIT", "rate=5mbit" },
	{ "rate=1pps", "" },
	{ "rate=10000000pps", "" },
	{ "rate=100pps limit=1", "" },
	{ "rate=100pps limit=1000", "rate=100pps" },
	{ "delay=1 limit=100000", "" },
	{ "verdict=accept delay=5", "delay=5" },
	{ "proto=icmp icmp-type=echo-request verdict=reply delay=100 duplicate=1",
	  "proto=icmp icmp-type=echo-request verdict=reply delay=100 duplicate=1" },
	{ "proto=tcp verdict=reject reject-with=tcp-reset delay=20",
	  "proto=tcp verdict=reject reject-with=tcp-reset delay=20" },
	{ "set-ttl=64 corrupt=0.5", "" },
	{ "limit=5 rate=1mbit name=shape dst=10.0.0.0/8 delay=1 jitter=0.5 distribution=normal "
	  "loss=gemodel:0.1,0.2,0.3,0.4 duplicate=0.1 reorder=0.2 corrupt=0.3 set-dscp=ef",
	  "name=shape dst=10.0.0.0/8 set-dscp=ef delay=1 jitter=0.5 distribution=normal "
	  "loss=gemodel:0.1,0.2,0.3,0.4 duplicate=0.1 reorder=0.2 corrupt=0.3 rate=1mbit limit=5" },
};

static void test_vocab_good(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct rule *r = NULL, *r2 = NULL;
		char err[256] = "", out[RULE_FORMAT_MAX], out2[RULE_FORMAT_MAX];
		const char *want = *good[i].out ? good[i].out : good[i].in;
		size_t bad = 99;

		if (!ok(rule_parse_line(good[i].in, &r, &bad, err, sizeof(err)) == 0, "parse '%s'",
			good[i].in)) {
			diag("%s", err);
			continue;
		}
		ok(rule_impairs(r) && (r->a.verdict == RULE_VERDICT_ACCEPT ||
				       r->a.verdict == RULE_VERDICT_REPLY ||
				       r->a.verdict == RULE_VERDICT_REJECT),
		   "'%s' impairs and ends the chain", good[i].in);
		is_int(rule_format(r, out, sizeof(out)), strlen(want), "format length of '%s'", good[i].in);
		is_str(out, want, "canonical form of '%s'", good[i].in);
		ok(rule_parse_line(out, &r2, &bad, err, sizeof(err)) == 0 && rule_equal(r, r2) &&
		   rule_format(r2, out2, sizeof(out2)) >= 0 && strcmp(out, out2) == 0,
		   "'%s' round-trips", out);
		rule_free(r);
		rule_free(r2);
	}
}

static void test_vocab_values(void)
{
	struct rule *r;

	r = rule_of("delay=12.345 jitter=0.007 distribution=normal");
	ok(r && r->impair.delay_us == 12345 && r->impair.jitter_us == 7 &&
	   r->impair.dist == RULE_DIST_NORMAL && r->impair.limit == RULE_LIMIT_DEFAULT &&
	   r->impair.flags == (RULE_I_DELAY | RULE_I_JITTER), "delay and jitter in microseconds");
	rule_free(r);
	r = rule_of("loss=gemodel:0.25,0.5,0.75");
	ok(r && r->impair.loss_ge && r->impair.ge_p == 0.25 && r->impair.ge_r == 0.5 &&
	   r->impair.ge_bad_loss == 0.75 && r->impair.ge_good_loss == 0 && r->impair.limit == 0,
	   "gemodel: P, R, BADLOSS, GOODLOSS 0 by default; no limit without delay or rate");
	rule_free(r);
	r = rule_of("rate=3gbit");
	ok(r && r->impair.rate == 3000000000ULL && !r->impair.rate_pps, "rate=3gbit in bits/s");
	rule_free(r);
	r = rule_of("rate=250pps limit=7");
	ok(r && r->impair.rate == 250 && r->impair.rate_pps && r->impair.limit == 7, "rate in pps, limit");
	rule_free(r);
	r = rule_of("set-ttl=64");
	ok(r && !rule_impairs(r) && r->a.verdict == RULE_VERDICT_NONE,
	   "no impairment key: does not impair, no verdict implied");
	rule_free(r);
}

static const struct rule_refusal bad_forms[] = {
	{ "delay=-5", 0, "delay: '-5': not a number of milliseconds" },
	{ "delay=", 0, "delay: '': " },
	{ "delay=.5", 0, "delay: '.5': " },
	{ "delay=5.", 0, "delay: '5.': " },
	{ "delay=1.2345", 0, "delay: '1.2345': not a number of milliseconds (at most 3 decimals)" },
	{ "delay=5ms", 0, "delay: '5ms': " },
	{ "delay=1e3", 0, "delay: '1e3': " },
	{ "delay=60000.001", 0, "delay: '60000.001': out of range 0-60000 ms" },
	{ "delay=99999999999999999999", 0, "delay: '99999999999999999999': out of range" },
	{ "jitter=5", 0, "jitter: '5': needs delay" },
	{ "delay=5 jitter=-1", 1, "jitter: '-1': " },
	{ "delay=5 jitter=70000", 1, "jitter: '70000': out of range" },
	{ "delay=5 distribution=normal", 1, "distribution: 'normal': needs jitter" },
	{ "delay=5 jitter=1 distribution=lognormal", 2, "distribution: 'lognormal': must be uniform, normal," },
	{ "loss=1.5", 0, "loss: '1.5': out of range 0-1" },
	{ "loss=-0.1", 0, "loss: '-0.1': " },
	{ "loss=30%", 0, "loss: '30%': not a number" },
	{ "loss=nan", 0, "loss: 'nan': " },
	{ "loss=", 0, "loss: '': " },
	{ "loss=gemodel", 0, "loss: 'gemodel': must be gemodel:P,R" },
	{ "loss=gemodel:", 0, "loss: 'gemodel:': " },
	{ "loss=gemodel:0.1", 0, "loss: 'gemodel:0.1': must be gemodel:P,R" },
	{ "loss=gemodel:0.1,", 0, "loss: 'gemodel:0.1,': " },
	{ "loss=gemodel:0.1,,0.3", 0, "loss: 'gemodel:0.1,,0.3': " },
	{ "loss=gemodel:,0.1,0.3", 0, "loss: 'gemodel:,0.1,0.3': " },
	{ "loss=gemodel:0.1,0.2,0.3,0.4,0.5", 0, "loss: 'gemodel:0.1,0.2,0.3,0.4,0.5': " },
	{ "loss=gemodel:0.1,1.2", 0, "loss: 'gemodel:0.1,1.2': gemodel: R out of range 0-1" },
	{ "loss=gemodel:2,0.2", 0, "loss: 'gemodel:2,0.2': gemodel: P out of range" },
	{ "loss=gemodel:0.1,0.2,3", 0, "loss: 'gemodel:0.1,0.2,3': gemodel: BADLOSS out of range" },
	{ "loss=gemodel:0.1,0.2,1,-1", 0, "loss: 'gemodel:0.1,0.2,1,-1': gemodel: GOODLOSS out of" },
	{ "loss=gemodel:0.1,x", 0, "loss: 'gemodel:0.1,x': " },
	{ "duplicate=2", 0, "duplicate: '2': out of range 0-1" },
	{ "duplicate=yes", 0, "duplicate: 'yes': not a number" },
	{ "reorder=0.1", 0, "reorder: '0.1': needs delay above 0" },
	{ "delay=0 reorder=0.1", 1, "reorder: '0.1': needs delay above 0" },
	{ "delay=0 jitter=5 reorder=0.1", 2, "reorder: '0.1': needs delay above 0" },
	{ "delay=5 reorder=1.1", 1, "reorder: '1.1': out of range" },
	{ "corrupt=-1", 0, "corrupt: '-1': " },
	{ "rate=10", 0, "rate: '10': needs a unit: bit, kbit, mbit, gbit or pps" },
	{ "rate=mbit", 0, "rate: 'mbit': not a number with a unit" },
	{ "rate=", 0, "rate: '': " },
	{ "rate=5mbps", 0, "rate: '5mbps': unit must be bit, kbit, mbit, gbit or pps" },
	{ "rate=1.5mbit", 0, "rate: '1.5mbit': unit must be" },
	{ "rate=-1mbit", 0, "rate: '-1mbit': not a number" },
	{ "rate=999bit", 0, "rate: '999bit': out of range 1kbit-100gbit" },
	{ "rate=0kbit", 0, "rate: '0kbit': out of range 1kbit-100gbit" },
	{ "rate=101gbit", 0, "rate: '101gbit': out of range" },
	{ "rate=100000001kbit", 0, "rate: '100000001kbit': out of range" },
	{ "rate=18446744073709551617bit", 0, "rate: '18446744073709551617bit': out of range" },
	{ "rate=0pps", 0, "rate: '0pps': out of range 1-10000000pps" },
	{ "rate=10000001pps", 0, "rate: '10000001pps': out of range 1-10000000pps" },
	{ "limit=10", 0, "limit: '10': needs delay, rate or slot" },
	{ "loss=0.1 limit=10", 1, "limit: '10': needs delay, rate or slot" },
	{ "delay=1 limit=0", 1, "limit: '0': out of range 1-100000" },
	{ "delay=1 limit=100001", 1, "limit: '100001': out of range 1-100000" },
	{ "delay=1 limit=ten", 1, "limit: 'ten': not a number" },
	{ "verdict=drop delay=10", 1, "delay: '10': impairment needs verdict accept, reply or reject" },
	{ "loss=0.5 verdict=drop", 0, "loss: '0.5': impairment needs verdict accept, reply or reject" },
	{ "rate=1mbit corrupt=0.1 verdict=drop", 1, "corrupt: '0.1': impairment needs verdict" },
	{ "delay=1 delay=2", 1, "delay: given twice" },
	{ "Delay=1", 0, "'Delay': unknown key" },
	{ "name=x", 1, "rule does nothing" },
};

static void test_vocab_bad(void)
{
	rule_check_refusals(bad_forms, ARRAY_SIZE(bad_forms));
}

static void test_vocab_equal(void)
{
	static const char *const lines[] = {
		"delay=5", "delay=6", "delay=5.001", "delay=5 jitter=1", "delay=5 jitter=2",
		"delay=5 jitter=1 distribution=normal", "delay=5 limit=10", "delay=5 limit=11",
		"loss=0.1", "loss=0.2", "loss=0", "loss=gemodel:0.1,0.2", "loss=gemodel:0.1,0.3",
		"loss=gemodel:0.2,0.2", "loss=gemodel:0.1,0.2,0.5", "loss=gemodel:0.1,0.2,1,0.5",
		"duplicate=0.1", "duplicate=0.2", "corrupt=0.1", "delay=5 reorder=0.1",
		"delay=5 reorder=0.2", "rate=1mbit", "rate=2mbit", "rate=1000pps", "rate=1kbit",
		"verdict=reply delay=5", "verdict=accept", "set-ttl=64 delay=5", "set-ttl=64",
	};
	unsigned int wrong = 0;
	struct rule *a = rule_of("delay=5"), *b = rule_of("verdict=accept delay=5 limit=1000");

	ok(a && b && rule_equal(a, b), "implied accept and the default limit compare equal");
	rule_free(a);
	rule_free(b);
	wrong = rules_told_apart_wrong(lines, ARRAY_SIZE(lines));
	ok(wrong == 0, "rule_equal tells %zu impairment rules apart", ARRAY_SIZE(lines));
}

static void test_format_actions(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "proto=icmp dst=10.0.0.0/8 set-ttl=64 verdict=reply", "set-ttl=64 verdict=reply" },
		{ "name=x dst=10.0.0.0/8 delay=50 loss=0.3", "delay=50 loss=0.3" },
		{ "proto=tcp dport=22 verdict=drop", "verdict=drop" },
		{ "proto=tcp verdict=reject reject-with=tcp-reset rate=8kbit",
		  "verdict=reject reject-with=tcp-reset rate=8kbit" },
		{ "set-dscp=ef set-ecn=ce clamp-mss=1400", "set-dscp=ef set-ecn=ce clamp-mss=1400" },
	};
	char out[RULE_FORMAT_MAX], small[8];

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct rule *r = rule_of(t[i].in);

		if (!r)
			continue;
		is_int(rule_format_actions(r, out, sizeof(out)), strlen(t[i].want),
		       "actions of '%s': length", t[i].in);
		is_str(out, t[i].want, "actions of '%s'", t[i].in);
		ok(rule_format_actions(r, small, sizeof(small)) == -ENOSPC && small[0] == '\0',
		   "actions of '%s' in 8 bytes: -ENOSPC, empty", t[i].in);
		rule_free(r);
	}
}

/* The longest rule still formats within RULE_FORMAT_MAX. */
static void test_format_max(void)
{
	struct rule *r = rule_of(
		RULE_LONGEST_HEAD RULE_LONGEST_IMPAIR
		"rate=99999999999bit limit=99999");
	char out[RULE_FORMAT_MAX];
	int n = r ? rule_format(r, out, sizeof(out)) : -1;

	ok(n > 0 && n < RULE_FORMAT_MAX, "the longest rule takes %d of %d bytes", n,
	   RULE_FORMAT_MAX);
	rule_free(r);
}

/* Random rules from pools of values, matches and verdicts mixed in. */
static void test_roundtrip_random(void)
{
	static const char *const pool[][10] = {
		{ "name", "r1", "x.y", NULL },
		{ "proto", "tcp", "udp", "icmp", NULL },
		{ "dst", "198.51.100.0/24", "!2001:db8:1::/48", NULL },
		{ "set-ttl", "64", "+1", NULL },
		{ "verdict", "accept", "drop", "reply", "reject", NULL },
		{ "delay", "0", "50", "0.5", "12.345", "60000", "0.001", NULL },
		{ "jitter", "0", "10", "0.25", "100", NULL },
		{ "distribution", "uniform", "normal", NULL },
		{ "loss", "0", "0.3", "1", "gemodel:0.01,0.3", "gemodel:0.1,0.2,0.9",
		  "gemodel:0.1,0.2,1,0.01", "gemodel:0,0,0,0", "gemodel:1,1,1,1", NULL },
		{ "duplicate", "0", "0.01", "1", NULL },
		{ "reorder", "0.25", "0", "1", NULL },
		{ "corrupt", "0.001", "0.3333333333333333", NULL },
		{ "rate", "1kbit", "1500kbit", "1000kbit", "100gbit", "7pps", "10000000pps", "1001bit",
		  NULL },
		{ "limit", "1", "1000", "100000", "77", NULL },
	};
	uint64_t s = 0xfeedface;
	unsigned int parsed = 0, tried, failed = 0, impairing = 0;

	for (tried = 0; tried < 30000; tried++) {
		struct rule_kv kv[ARRAY_SIZE(pool)];
		struct rule *r = NULL, *r2 = NULL;
		char out[RULE_FORMAT_MAX], act[RULE_FORMAT_MAX];
		size_t n, bad;

		n = RULE_KV_RANDOM(pool, 9, true, &s, kv);
		if (rule_parse(kv, n, &r, &bad, NULL, 0) < 0)
			continue;
		parsed++;
		impairing += rule_impairs(r);
		if ((!rule_round_trips(r, out, sizeof(out), &r2) ||
		     rule_format_actions(r, act, sizeof(act)) < 0 || !strstr(out, act) ||
		     memcmp(&r->impair, &r2->impair, sizeof(r->impair)) != 0) && failed++ < 3)
			diag("round trip failed: %s", out);
		rule_free(r);
		rule_free(r2);
	}
	ok(parsed > 1000 && impairing > 1000, "random rules: %u of %u parse, %u impair", parsed,
	   tried, impairing);
	ok(failed == 0, "random rules: %u failed the format/parse round trip", failed);
}

int main(void)
{
	test_rng();
	test_math();
	test_normal();
	test_bernoulli();
	test_ge_exact();
	test_ge_stats();
	test_delay();
	test_shaper();
	test_decide();
	test_corrupt();
	test_queue();
	test_vocab_good();
	test_vocab_values();
	test_vocab_bad();
	test_vocab_equal();
	test_format_actions();
	test_format_max();
	test_roundtrip_random();
	return tap_done();
}
