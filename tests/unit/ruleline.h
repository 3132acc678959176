/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Rules written as one line of "key=value" words, for the unit tests. */
#ifndef IPMODD_TEST_RULELINE_H
#define IPMODD_TEST_RULELINE_H

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rule.h"
#include "tap.h"
#include "util.h"

#define RULELINE_KV_MAX 80

/* Split "k=v k=v" (values without spaces) into kv, pointing into buf; "k" alone has value "". */
static inline size_t rule_split(const char *line, char *buf, size_t buflen, struct rule_kv *kv)
{
	size_t n = 0;
	char *save = NULL, *tok;

	snprintf(buf, buflen, "%s", line);
	for (tok = strtok_r(buf, " ", &save); tok && n < RULELINE_KV_MAX;
	     tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		kv[n].key = tok;
		kv[n].value = "";
		if (eq) {
			*eq = '\0';
			kv[n].value = eq + 1;
		}
		n++;
	}
	return n;
}

static inline int rule_parse_line(const char *line, struct rule **ret, size_t *bad, char *err,
				  size_t errlen)
{
	struct rule_kv kv[RULELINE_KV_MAX];
	char buf[2048];
	size_t n = rule_split(line, buf, sizeof(buf), kv);

	return rule_parse(kv, n, ret, bad, err, errlen);
}

/* The rule, or NULL after a diagnostic saying why. */
static inline struct rule *rule_of(const char *line)
{
	struct rule *r = NULL;
	char err[256];
	size_t bad;

	if (rule_parse_line(line, &r, &bad, err, sizeof(err)) < 0) {
		diag("cannot parse '%s': %s", line, err);
		return NULL;
	}
	return r;
}

/* A rule line rule_parse() must refuse: the offending pair and how the message starts. */
struct rule_refusal {
	const char *in;
	size_t bad;
	const char *msg;
};

/*
 * How many pairs of lines rule_equal() gets wrong: every rule must equal
 * itself (parsed twice) and differ from every other line's.
 */
static inline unsigned int rules_told_apart_wrong(const char *const *lines, size_t n)
{
	unsigned int wrong = 0;

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			struct rule *a = rule_of(lines[i]), *b = rule_of(lines[j]);

			if (!a || !b || rule_equal(a, b) != (i == j)) {
				wrong++;
				diag("rule_equal('%s', '%s') wrong", lines[i], lines[j]);
			}
			rule_free(a);
			rule_free(b);
		}
	}
	return wrong;
}

/*
 * r formats into out, that line parses back into an equal rule which formats
 * the same, and rule_dup(r) equals r.  The rule parsed back goes to *ret_back
 * when it is not NULL (the caller frees it; NULL when it did not parse).
 */
static inline bool rule_round_trips(const struct rule *r, char *out, size_t outlen,
				    struct rule **ret_back)
{
	char out2[RULE_FORMAT_MAX];
	struct rule *r2 = NULL, *d = rule_dup(r);
	size_t bad;
	bool good;

	good = rule_format(r, out, outlen) >= 0 &&
	       rule_parse_line(out, &r2, &bad, NULL, 0) >= 0 && rule_equal(r, r2) &&
	       rule_format(r2, out2, sizeof(out2)) >= 0 && strcmp(out, out2) == 0 &&
	       d && rule_equal(r, d);
	rule_free(d);
	if (ret_back)
		*ret_back = r2;
	else
		rule_free(r2);
	return good;
}

static inline void rule_check_refusals(const struct rule_refusal *forms, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct rule *sentinel = (struct rule *)&sentinel, *r = sentinel;
		char err[256] = "";
		size_t bad = 999;
		int ret = rule_parse_line(forms[i].in, &r, &bad, err, sizeof(err));

		if (!ok(ret == -EINVAL && r == sentinel, "'%s' is rejected", forms[i].in)) {
			if (ret == 0 && r != sentinel)
				rule_free(r);
			continue;
		}
		is_int(bad, forms[i].bad, "'%s': offending pair", forms[i].in);
		if (!ok(strncmp(err, forms[i].msg, strlen(forms[i].msg)) == 0, "'%s': message",
			forms[i].in))
			diag("got \"%s\", want \"%s...\"", err, forms[i].msg);
	}
}

/* Append to the line being written at *o (up to end); what does not fit is left out. */
static inline _printf_(3, 4) void put(char **o, const char *end, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(*o, (size_t)(end - *o), fmt, ap);
	va_end(ap);
	if (k > 0 && *o + k < end)
		*o += k;
}

/*
 * The longest rule's matches and actions, test-impair's impairments after
 * them: the start of the longest rules of test-impair, test-netem and
 * test-tracelink.
 */
#define RULE_LONGEST_HEAD \
	"name=abcdefghijklmnopqrstuvwxyz01234 family=ip6 proto=tcp " \
	"src=!ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127 " \
	"dst=!ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127 sport=!65534-65535 " \
	"dport=!65534-65535 tcp-flags=!fin,!syn,!rst,!psh,!ack,!urg,!ece,!cwr ttl=254-255 " \
	"length=65534-65535 dscp=63 probability=0.33333333333333331 set-ttl=-255 set-dscp=63 " \
	"set-ecn=not-ect clamp-mss=65535 verdict=reject reject-with=admin-prohibited "
#define RULE_LONGEST_IMPAIR \
	"delay=59999.999 jitter=59999.999 distribution=normal " \
	"loss=gemodel:0.33333333333333331,0.66666666666666663,0.11111111111111110,0.22222222222222221 " \
	"duplicate=0.33333333333333331 reorder=0.33333333333333331 " \
	"corrupt=0.33333333333333331 "

/*
 * Random "key=value" pairs into kv (room for npool) from pool, npool rows of
 * width strings each: the key, its values, NULL.  Each row steps the LCG *s
 * (Knuth's MMIX constants) and is left out when the step's top four bits are
 * below skip, else gives one of its values; with shuffle the pairs are then
 * shuffled (the key order given must not matter).  Returns how many.
 */
static inline size_t rule_kv_random(const char *const *pool, size_t npool, size_t width,
				    unsigned int skip, bool shuffle, uint64_t *s,
				    struct rule_kv *kv)
{
	size_t n = 0;

	for (size_t k = 0; k < npool; k++) {
		const char *const *row = pool + k * width;
		size_t nv = 0;

		*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((*s >> 60) < skip)
			continue;
		while (row[nv + 1])
			nv++;
		kv[n].key = row[0];
		kv[n++].value = row[1 + (*s >> 33) % nv];
	}
	for (size_t i = n; shuffle && i > 1; i--) {
		struct rule_kv tmp;
		size_t j;

		*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
		j = (*s >> 33) % i;
		tmp = kv[i - 1];
		kv[i - 1] = kv[j];
		kv[j] = tmp;
	}
	return n;
}

/* rule_kv_random() on a two-dimensional array pool. */
#define RULE_KV_RANDOM(pool, skip, shuffle, s, kv)                                             \
	rule_kv_random(&(pool)[0][0], ARRAY_SIZE(pool), ARRAY_SIZE((pool)[0]), skip, shuffle, \
		       s, kv)

/*
 * tries rules of rule_kv_random() pairs from seed s: how many parsed; how
 * many of those failed rule_round_trips() goes to *failed (the first three
 * in a diagnostic).  0 when pool has more rows than RULELINE_KV_MAX.
 */
static inline unsigned int rule_random_round_trips(const char *const *pool, size_t npool,
						   size_t width, unsigned int skip, bool shuffle,
						   uint64_t s, unsigned int tries,
						   unsigned int *failed)
{
	unsigned int parsed = 0;

	*failed = 0;
	if (npool > RULELINE_KV_MAX)
		return 0;
	for (unsigned int tried = 0; tried < tries; tried++) {
		struct rule_kv kv[RULELINE_KV_MAX];
		struct rule *r = NULL;
		char out[RULE_FORMAT_MAX];
		size_t n, bad;

		n = rule_kv_random(pool, npool, width, skip, shuffle, &s, kv);
		if (rule_parse(kv, n, &r, &bad, NULL, 0) < 0)
			continue;
		parsed++;
		if (!rule_round_trips(r, out, sizeof(out), NULL) && (*failed)++ < 3)
			diag("round trip failed: %s", out);
		rule_free(r);
	}
	return parsed;
}

/* rule_random_round_trips() on a two-dimensional array pool. */
#define RULE_RANDOM_ROUND_TRIPS(pool, skip, shuffle, s, tries, failed)                      \
	rule_random_round_trips(&(pool)[0][0], ARRAY_SIZE(pool), ARRAY_SIZE((pool)[0]), skip, \
				shuffle, s, tries, failed)

#endif
