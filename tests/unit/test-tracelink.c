/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Trace-driven links (tracelink.c): the trace parser and its limits, the
 * link's departure times against a schedule computed by hand, CoDel against
 * RFC 8289, and the rule keys of trace links, seed= and expire=; seed
 * determinism of impair_decide().
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "impair.h"
#include "rule.h"
#include "ruleline.h"
#include "tap.h"
#include "tracelink.h"
#include "util.h"

#define MS 1000000ULL

static int parse(const char *text, struct tl_trace *t, size_t *line, char *err, size_t errlen)
{
	*line = 0;
	return tl_trace_parse(text, strlen(text), t, line, err, errlen);
}

static void test_parse_good(void)
{
	struct tl_trace t;
	size_t line;
	char err[128];

	is_int(parse("2\n2\n5\n10\n", &t, &line, err, sizeof(err)), 0, "a trace with duplicates");
	ok(t.n == 4 && t.ms[0] == 2 && t.ms[1] == 2 && t.ms[2] == 5 && t.ms[3] == 10 &&
	   t.period_ns == 10 * MS, "four opportunities, period 10 ms");
	tl_trace_free(&t);

	is_int(parse("0\n1\r\n1", &t, &line, err, sizeof(err)), 0,
	       "0 first, CRLF, a last line without a newline");
	ok(t.n == 3 && t.ms[0] == 0 && t.ms[2] == 1 && t.period_ns == MS, "three, period 1 ms");
	tl_trace_free(&t);

	is_int(parse("604800000\n", &t, &line, err, sizeof(err)), 0, "7 days is the largest time");
	tl_trace_free(&t);
}

static void test_parse_errors(void)
{
	static const struct {
		const char *text;
		size_t line;
		const char *msg;
	} bad[] = {
		{ "", 0, "empty trace" },
		{ "1\n\n2\n", 2, "empty line" },
		{ "1\n2\nx\n", 3, "not a time" },
		{ "1\n-2\n", 2, "not a time" },
		{ " 1\n", 1, "not a time" },
		{ "1 \n", 1, "not a time" },
		{ "1\n# c\n", 2, "not a time" },
		{ "5\n3\n", 2, "goes back" },
		{ "0\n0\n", 2, "period" },
		{ "604800001\n", 1, "7 days" },
		{ "99999999999999999999999\n", 1, "7 days" },
	};
	struct tl_trace t;
	size_t line;
	char err[128];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r = parse(bad[i].text, &t, &line, err, sizeof(err));

		ok(r == -EINVAL && line == bad[i].line && strstr(err, bad[i].msg),
		   "trace %zu refused at line %zu (%s): got %d, line %zu, '%s'", i, bad[i].line,
		   bad[i].msg, r, line, err);
	}
}

static void test_parse_limits(void)
{
	size_t n = TL_TRACE_LINES_MAX + 1, line;
	char *buf = malloc(2 * n), err[128];
	struct tl_trace t;
	int r;

	if (!buf) {
		ok(0, "malloc");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = '1';
		buf[2 * i + 1] = '\n';
	}
	r = tl_trace_parse(buf, 2 * n, &t, &line, err, sizeof(err));
	ok(r == -E2BIG && strstr(err, "lines"), "%zu lines: -E2BIG (%s)", n, err);
	r = tl_trace_parse(buf, 2 * (n - 1), &t, &line, err, sizeof(err));
	ok(r == 0 && t.n == n - 1, "%zu lines: read", n - 1);
	if (r == 0)
		tl_trace_free(&t);
	free(buf);
}

static void test_load(void)
{
	char path[] = "/tmp/test-tracelink-XXXXXX", want[128], err[256];
	struct tl_trace t;
	int fd = mkstemp(path);

	if (fd < 0) {
		ok(0, "mkstemp");
		return;
	}
	ok(write(fd, "1\n2\n1\n", 6) == 6, "wrote a bad trace");
	close(fd);
	is_int(tl_trace_load(path, &t, err, sizeof(err)), -EINVAL, "load: refused");
	snprintf(want, sizeof(want), "%s:3: time goes back (times must not decrease)", path);
	is_str(err, want, "load: the message names file:line");
	unlink(path);
	ok(tl_trace_load(path, &t, err, sizeof(err)) == -ENOENT && strstr(err, path),
	   "load: a missing file is -ENOENT, named (%s)", err);
	ok(tl_trace_load("/tmp", &t, err, sizeof(err)) == -EINVAL && strstr(err, "regular"),
	   "load: a directory is refused (%s)", err);
}

static int link_of(struct tl_link *l, const char *text, uint32_t qpkts, uint64_t qbytes, int aqm)
{
	struct tl_config cfg = { .queue_pkts = qpkts, .queue_bytes = qbytes, .aqm = aqm,
				 .codel_target_ns = 5 * MS, .codel_interval_ns = 100 * MS };
	struct tl_trace t;
	size_t line;
	char err[128];
	int r = parse(text, &t, &line, err, sizeof(err));

	if (r < 0)
		return r;
	return tl_link_init(l, &t, &cfg);
}

/*
 * Opportunities at 2, 2, 5 and 10 ms, period 10 ms; 1504 bytes each, a
 * packet costs its length + 4.  B is the first arrival, the trace's 0.
 */
static void test_link_schedule(void)
{
	static const struct {
		uint64_t at_us;		/* arrival after B */
		size_t len;
		uint64_t want_us;	/* departure after B */
		const char *why;
	} pkts[] = {
		{ 0, 1500, 2000, "first packet: the opportunity at 2 ms, filled exactly" },
		{ 500, 1500, 2000, "link busy: the second opportunity at 2 ms" },
		{ 1000, 100, 5000, "busy, 2 ms used up: 5 ms, 1400 bytes left" },
		{ 3000, 1000, 5000, "busy: shares the 5 ms opportunity, 396 left" },
		{ 4000, 1500, 10000, "busy: 396 bytes at 5 ms, the rest at 10 ms" },
		{ 10000, 100, 12000, "arrives at 10 ms: that one is gone with its leftover; 12 ms (loop)" },
		{ 30500, 100, 32000, "idle for two periods: the 2 ms of the fourth period" },
		{ 39000, 1500, 40000, "the 10 ms of the fourth period" },
		{ 39500, 3100, 45000, "3104 bytes span 3 opportunities: 12, 12 and 15 ms of the next period" },
	};
	const uint64_t B = 1000000000ULL;
	struct tl_link l;
	uint64_t at;

	if (link_of(&l, "2\n2\n5\n10\n", 100, 0, TL_AQM_DROPTAIL) < 0) {
		ok(0, "link init");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(pkts); i++) {
		int r = tl_link_send(&l, B + pkts[i].at_us * 1000, pkts[i].len, &at);

		ok(r == 0 && at == B + pkts[i].want_us * 1000, "%s: %llu us (got %d, %lld us)",
		   pkts[i].why, (unsigned long long)pkts[i].want_us, r,
		   (long long)(at - B) / 1000);
	}
	tl_link_done(&l);

	/* 0 first: it coincides with the period's end; both are opportunities. */
	if (link_of(&l, "0\n5\n", 100, 0, TL_AQM_DROPTAIL) < 0) {
		ok(0, "link init");
		return;
	}
	ok(tl_link_send(&l, B, 1500, &at) == 0 && at == B + 5 * MS,
	   "trace 0,5: the 0 at the first arrival is gone, 5 ms");
	ok(tl_link_send(&l, B + 1, 1500, &at) == 0 && at == B + 5 * MS,
	   "trace 0,5: the next loop's 0 is at 5 ms too");
	ok(tl_link_send(&l, B + 2, 1500, &at) == 0 && at == B + 10 * MS,
	   "trace 0,5: then 10 ms");
	tl_link_done(&l);
}

static void test_link_queue(void)
{
	const uint64_t B = 5000;
	struct tl_link l;
	uint64_t at;

	/* 12 Mbit/s: one opportunity per ms. */
	if (link_of(&l, "1\n", 2, 0, TL_AQM_DROPTAIL) < 0) {
		ok(0, "link init");
		return;
	}
	ok(tl_link_send(&l, B, 1500, &at) == 0 && at == B + MS, "queue 2: first at 1 ms");
	ok(tl_link_send(&l, B, 1500, &at) == 0 && at == B + 2 * MS, "queue 2: second at 2 ms");
	is_int(tl_link_send(&l, B, 1500, &at), -ENOBUFS, "queue 2: the third is dropped");
	is_int(tl_link_queued(&l, B), 2, "two queued");
	ok(tl_link_send(&l, B + MS, 1500, &at) == 0 && at == B + 3 * MS,
	   "at 1 ms the first left the queue: room again, 3 ms");
	ok(l.dropped_queue == 1, "dropped_queue counts it");
	tl_link_done(&l);

	if (link_of(&l, "1\n", 100, 3000, TL_AQM_DROPTAIL) < 0) {
		ok(0, "link init");
		return;
	}
	ok(tl_link_send(&l, B, 1400, &at) == 0 && tl_link_send(&l, B, 1400, &at) == 0,
	   "queue-bytes 3000: two of 1404");
	is_int(tl_link_send(&l, B, 1400, &at), -ENOBUFS, "queue-bytes 3000: not a third");
	ok(tl_link_send(&l, B, 100, &at) == 0, "queue-bytes 3000: 104 more fit");
	tl_link_done(&l);
}

/* Average rate of a trace: a long backlogged run delivers 1504 bytes per opportunity. */
static void test_link_rate(void)
{
	struct tl_link l;
	uint64_t at = 0, now = 0;
	size_t sent = 0;

	/* A varying trace: 3 opportunities in 10 ms, then 1 in the next 10. */
	if (link_of(&l, "3\n3\n7\n20\n", 100000, 0, TL_AQM_DROPTAIL) < 0) {
		ok(0, "link init");
		return;
	}
	for (int i = 0; i < 4000; i++) {
		if (tl_link_send(&l, now, 1500, &at) < 0)
			break;
		sent++;
	}
	ok(sent == 4000, "a queue of 100000: all 4000 taken (%zu)", sent);
	/* 4000 packets, 4 per 20 ms: the last goes in the 1000th period, at its 20 ms. */
	ok(at == 1000 * 20 * MS, "4000 full packets take 1000 periods of 20 ms (%llu ns)",
	   (unsigned long long)at);
	tl_link_done(&l);
}

/* RFC 8289 with target 5 ms, interval 100 ms, one packet a ms with the given sojourn. */
static void test_codel(void)
{
	/* The first drop an interval after the sojourn went above target, then t + 100/sqrt(count). */
	static const uint64_t want_ms[] = { 100, 200, 271, 329, 379, 424 };
	struct tl_codel c;
	uint64_t drops[16];
	size_t nd = 0;
	bool any = false;

	tl_codel_init(&c, 5 * MS, 100 * MS);
	for (uint64_t t = 0; t <= 430; t++)
		if (tl_codel_drop(&c, t * MS, 10 * MS, 100000) && nd < ARRAY_SIZE(drops))
			drops[nd++] = t;
	ok(nd == ARRAY_SIZE(want_ms), "sojourn 10 ms for 430 ms: %zu drops", nd);
	for (size_t i = 0; i < ARRAY_SIZE(want_ms) && i < nd; i++)
		ok(drops[i] == want_ms[i], "drop %zu at %llu ms (want %llu)", i + 1,
		   (unsigned long long)drops[i], (unsigned long long)want_ms[i]);
	ok(c.count == 6, "count 6 after six drops");
	ok(!tl_codel_drop(&c, 431 * MS, 1 * MS, 100000) && !c.dropping,
	   "a sojourn below target ends the drop state");

	/* Above target for less than an interval: nothing. */
	tl_codel_init(&c, 5 * MS, 100 * MS);
	for (uint64_t t = 0; t < 100; t++)
		any |= tl_codel_drop(&c, t * MS, 6 * MS, 100000);
	any |= tl_codel_drop(&c, 100 * MS, 4 * MS, 100000);
	for (uint64_t t = 101; t < 200; t++)
		any |= tl_codel_drop(&c, t * MS, 6 * MS, 100000);
	ok(!any, "above target 99 ms, below once, above 99 ms again: no drop");
	ok(tl_codel_drop(&c, 201 * MS, 6 * MS, 100000), "above target a full interval: a drop");

	/* At most one MTU queued: no drop however long the sojourn. */
	tl_codel_init(&c, 5 * MS, 100 * MS);
	any = false;
	for (uint64_t t = 0; t < 500; t++)
		any |= tl_codel_drop(&c, t * MS, 50 * MS, TL_OPP_BYTES);
	ok(!any, "backlog of one MTU: never a drop");

	/* Back in the drop state soon after leaving it: count resumes at count - lastcount. */
	tl_codel_init(&c, 5 * MS, 100 * MS);
	for (uint64_t t = 0; t <= 430; t++)
		tl_codel_drop(&c, t * MS, 10 * MS, 100000);
	tl_codel_drop(&c, 431 * MS, 1 * MS, 100000);
	for (uint64_t t = 432; t < 700 && !c.dropping; t++)
		tl_codel_drop(&c, t * MS, 10 * MS, 100000);
	ok(c.dropping && c.count == 5, "re-entry within 16 intervals: count %u (6 - 1)", c.count);
}

/* CoDel inside the link: a backlogged 12 Mbit/s link with a queue builds sojourn, CoDel drops. */
static void test_link_codel(void)
{
	struct tl_link l;
	uint64_t at = 0, now, first = 0, prev = 0;
	size_t dropped = 0, sent = 0;

	if (link_of(&l, "1\n", 10000, 0, TL_AQM_CODEL) < 0) {
		ok(0, "link init");
		return;
	}
	/* 2 packets a ms into a 1-packet-a-ms link, for 1 s. */
	for (now = 0; now < 1000 * MS; now += MS / 2) {
		int r = tl_link_send(&l, now, 1500, &at);

		/* A dropped packet's dequeue: the opportunity after its predecessor's. */
		if (r == -ECONNRESET && !dropped++)
			first = prev + MS;
		else if (r == 0)
			sent++;
		if (r == 0)
			prev = at;
	}
	ok(dropped > 0 && l.dropped_aqm == dropped, "CoDel dropped %zu of %zu", dropped,
	   dropped + sent);
	/* Sojourns reach 5 ms at a dequeue at ~10 ms; the first drop an interval later. */
	ok(first >= 105 * MS && first <= 115 * MS, "the first drop dequeued at 105-115 ms (%llu ms)",
	   (unsigned long long)(first / MS));
	/* Without CoDel all 2000 would go, the last at 2000 ms. */
	ok(at == (sent) * MS, "the survivors leave back to back: the last at %zu ms (%llu)", sent,
	   (unsigned long long)(at / MS));
	tl_link_done(&l);
}

static void test_rule_keys(void)
{
	static const char *const good[] = {
		"rate=@/usr/share/ipmodd/traces/steady-12mbit.trace",
		"rate=@/t/x.trace limit=500 queue=100 queue-bytes=150000 aqm=codel codel-target=10 codel-interval=200",
		"rate=@/t/x.trace aqm=codel",
		"delay=10 loss=0.3 seed=42",
		"loss=0.3 seed=18446744073709551615",
		"verdict=drop expire=30s",
		"delay=50 expire=2h",
		"delay=50 expire=1500ms",
		"delay=50 expire=90m",
	};
	static const char *const canon[] = {
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "delay=50 expire=90m",
	};
	static const struct rule_refusal bad[] = {
		{ "rate=@x.trace", 0, "rate: '@x.trace': a trace needs an absolute path" },
		{ "rate=@/a%b", 0, "rate: '@/a%b': trace path of letters" },
		{ "queue=10 delay=1", 0, "queue: '10': needs a trace link" },
		{ "rate=1mbit queue=10", 1, "queue: '10': needs a trace link" },
		{ "rate=@/t queue=0", 1, "queue: '0'" },
		{ "rate=@/t queue-bytes=100", 1, "queue-bytes: '100'" },
		{ "rate=@/t aqm=red", 1, "aqm: 'red': must be droptail or codel" },
		{ "rate=@/t codel-target=5", 1, "codel-target: '5': needs aqm=codel" },
		{ "rate=@/t aqm=codel codel-interval=0", 2, "codel-interval: '0': must be above 0" },
		{ "seed=1 verdict=accept", 0, "seed: needs an impairment" },
		{ "loss=0.1 seed=-1", 1, "seed: '-1': not a number" },
		{ "loss=0.1 seed=18446744073709551616", 1, "seed: '18446744073709551616': out of range" },
		{ "verdict=drop expire=30", 1, "expire: '30': not a duration" },
		{ "verdict=drop expire=0s", 1, "expire: '0s': out of range" },
		{ "verdict=drop expire=8d", 1, "expire: '8d': not a duration" },
		{ "verdict=drop expire=169h", 1, "expire: '169h': out of range" },
	};
	char buf[RULE_FORMAT_MAX];
	struct rule *r, *r2;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		r = rule_of(good[i]);
		if (!r) {
			ok(0, "'%s' parses", good[i]);
			continue;
		}
		rule_format(r, buf, sizeof(buf));
		if (canon[i])
			is_str(buf, canon[i], "'%s' formats canonically", good[i]);
		r2 = rule_of(buf);
		ok(r2 && rule_equal(r, r2), "'%s' round-trips as '%s'", good[i], buf);
		rule_free(r2);
		rule_free(r);
	}
	rule_check_refusals(bad, ARRAY_SIZE(bad));

	{
		/* test-impair's longest rule with a trace link and every key of this issue. */
		char longest[2048], path[RULE_TRACE_MAX];
		int n;

		memset(path, 'p', sizeof(path) - 1);
		path[0] = '/';
		path[sizeof(path) - 1] = '\0';
		snprintf(longest, sizeof(longest),
			 RULE_LONGEST_HEAD RULE_LONGEST_IMPAIR
			 "rate=@%s limit=99999 queue=99999 queue-bytes=67108863 aqm=codel "
			 "codel-target=59999.999 codel-interval=59999.999 seed=18446744073709551615 "
			 "expire=604799999ms", path);
		r = rule_of(longest);
		n = r ? rule_format(r, buf, sizeof(buf)) : -1;
		ok(n > 0 && n < RULE_FORMAT_MAX, "the longest rule takes %d of %d bytes", n,
		   RULE_FORMAT_MAX);
		r2 = n > 0 ? rule_of(buf) : NULL;
		ok(r2 && rule_equal(r, r2), "... and round-trips");
		rule_free(r2);
		rule_free(r);
	}

	r = rule_of("delay=10 loss=0.3 seed=42");
	r2 = rule_of("delay=10 loss=0.3 seed=43");
	ok(r && r2 && !rule_equal(r, r2), "seeds tell rules apart");
	rule_free(r2);
	r2 = rule_of("delay=10 loss=0.3");
	ok(r && r2 && !rule_equal(r, r2), "a seeded rule differs from the unseeded");
	rule_free(r2);
	rule_free(r);
	r = rule_of("delay=10 expire=1m");
	r2 = rule_of("delay=10 expire=60s");
	ok(r && r2 && rule_equal(r, r2) && r->expire_ms == 60000, "expire=1m is expire=60s");
	rule_free(r2);
	rule_free(r);
}

/* The losses of 2000 packets of "loss=0.3 [seed=N]" as a bit string. */
static void losses(const char *line, uint64_t global_seed, char *out, size_t n)
{
	struct rule *r = rule_of(line);
	struct impair_flow f;
	struct impair_rng g;
	struct impair_result res;

	impair_rng_seed(&g, global_seed);
	if (!r || impair_flow_init(&f, &r->impair) < 0) {
		memset(out, '?', n);
		rule_free(r);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		impair_decide(&f, &r->impair, impair_flow_rng(&f, &g), i * MS, 100, &res);
		out[i] = res.n ? '.' : 'x';
		/* Draws of other rules from the shared generator between packets. */
		impair_rng_next(&g);
	}
	impair_flow_done(&f);
	rule_free(r);
}

static void test_seed(void)
{
	enum { N = 2000 };
	static char a[N], b[N], c[N], d[N], e[N];
	size_t lost = 0;

	losses("loss=0.3 seed=42", 1, a, N);
	losses("loss=0.3 seed=42", 2, b, N);
	losses("loss=0.3 seed=43", 1, c, N);
	losses("loss=0.3", 1, d, N);
	losses("loss=0.3", 2, e, N);
	for (size_t i = 0; i < N; i++)
		lost += a[i] == 'x';
	ok(memcmp(a, b, N) == 0, "seed=42: the same packets lost, whatever the shared generator");
	ok(lost > N * 0.25 && lost < N * 0.35, "seed=42: %zu of %d lost", lost, N);
	ok(memcmp(a, c, N) != 0, "seed=43 loses other packets");
	ok(memcmp(d, e, N) != 0, "without seed the losses follow the shared generator");
}

/* An unchanged trace rule shares the old chain's trace: its file is not read again. */
static void test_chain_share(void)
{
	char path[] = "/tmp/test-tracelink-XXXXXX", line[256], line2[256], err[256];
	struct rule *r[3] = { NULL, NULL, NULL };
	struct chain *a = NULL, *b = NULL, *c = NULL;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, "1\n2\n", 4) != 4) {
		ok(0, "a trace file");
		return;
	}
	close(fd);
	snprintf(line, sizeof(line), "name=t rate=@%s", path);
	snprintf(line2, sizeof(line2), "name=t rate=@%s queue=5", path);
	r[0] = rule_of(line);
	r[1] = rule_of("name=other verdict=drop");
	r[2] = rule_of(line2);
	if (!r[0] || !r[1] || !r[2])
		goto out;
	is_int(chain_new(r, 1, &a, err, sizeof(err)), 0, "a chain with a trace rule");
	unlink(path);
	is_int(chain_new_from(r, 2, a, &b, err, sizeof(err)), 0,
	       "the file gone, adding a rule still works: the unchanged rule shares the trace");
	ok(chain_new(r, 1, &c, err, sizeof(err)) < 0 && strstr(err, path),
	   "without the old chain the file is read, and missed (%s)", err);
	ok(chain_new_from(&r[2], 1, a, &c, err, sizeof(err)) < 0 && strstr(err, path),
	   "a changed rule reads its file again (%s)", err);
	chain_unref(a);
	/* b still holds the trace: run a packet through it. */
	if (b) {
		struct chain_impair imp;
		uint8_t buf[64] = { 0x45, 0, 0, 64, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
				    0, 1, 0, 2, 0, 44, 0, 0 };
		struct pkt p = { .data = buf, .len = 64, .cap = sizeof(buf) };

		if (pkt_parse(&p) == PKT_OK) {
			chain_run_impair(b, &p, NULL, 1000, NULL, &imp);
			ok(imp.impaired && imp.res.n == 1 && imp.res.copy[0].at_ns == 1000 + 1000000,
			   "the shared trace carries a packet after the old chain is gone (%llu)",
			   (unsigned long long)imp.res.copy[0].at_ns);
		} else {
			ok(0, "pkt_parse");
		}
	}
	chain_unref(b);
out:
	for (int i = 0; i < 3; i++)
		rule_free(r[i]);
}

/* Which of n packets a "probability=0.5 loss=0.5 [seed=]" rule matched and kept, chain seeded with g. */
static void chain_decisions(const char *line, uint64_t g, char *out, size_t n)
{
	struct rule *r = rule_of(line);
	struct chain *c = NULL;
	char err[256];

	memset(out, '?', n);
	if (!r || chain_new(&r, 1, &c, err, sizeof(err)) < 0) {
		rule_free(r);
		return;
	}
	chain_seed(c, g);
	for (size_t i = 0; i < n; i++) {
		uint8_t buf[64] = { 0x45, 0, 0, 64, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
				    0, 1, 0, 2, 0, 44, 0, 0 };
		struct pkt p = { .data = buf, .len = 64, .cap = sizeof(buf) };
		struct chain_impair imp;

		if (pkt_parse(&p) != PKT_OK)
			break;
		chain_run_impair(c, &p, NULL, i * MS, NULL, &imp);
		out[i] = !imp.impaired ? '-' : imp.res.n ? '.' : 'x';
	}
	chain_unref(c);
	rule_free(r);
}

static void test_chain_seed(void)
{
	enum { N = 500 };
	static char a[N], b[N], d[N], e[N];

	chain_decisions("probability=0.5 loss=0.5 seed=42", 1, a, N);
	chain_decisions("probability=0.5 loss=0.5 seed=42", 2, b, N);
	chain_decisions("probability=0.5 loss=0.5", 1, d, N);
	chain_decisions("probability=0.5 loss=0.5", 2, e, N);
	ok(memchr(a, '-', N) && memchr(a, 'x', N) && memchr(a, '.', N),
	   "probability=0.5 loss=0.5: some packets unmatched, some lost, some sent");
	ok(memcmp(a, b, N) == 0,
	   "seed=42: the same matches (probability=) and losses whatever the chain's seed");
	ok(memcmp(d, e, N) != 0, "without seed they follow the chain's generator");
}

int main(void)
{
	test_parse_good();
	test_parse_errors();
	test_parse_limits();
	test_load();
	test_link_schedule();
	test_link_queue();
	test_link_rate();
	test_codel();
	test_link_codel();
	test_rule_keys();
	test_seed();
	test_chain_share();
	test_chain_seed();
	return tap_done();
}
