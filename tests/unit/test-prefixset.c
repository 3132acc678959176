// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * prefixset: parsing (comments, blank lines, white space, host bits, errors
 * naming the line, bounds), family separation (v4-mapped), merging edges,
 * equality with a linear scan on random sets, and a generated set of
 * 1,000,000 prefixes loaded from a file (time and memory printed).
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "prefixset.h"
#include "rng.h"
#include "settest.h"
#include "tap.h"
#include "util.h"

static bool has4(const struct prefixset *s, const char *a)
{
	uint8_t b[4];

	if (inet_pton(AF_INET, a, b) != 1)
		abort();
	return prefixset_contains(s, AF_INET, b);
}

static bool has6(const struct prefixset *s, const char *a)
{
	uint8_t b[16];

	if (inet_pton(AF_INET6, a, b) != 1)
		abort();
	return prefixset_contains(s, AF_INET6, b);
}

static struct prefixset *from(const char *text)
{
	struct prefixset *s = NULL;
	char err[512] = "";
	int ret = prefixset_from_text(text, strlen(text), "t.txt", &s, err, sizeof(err));

	if (ret < 0)
		diag("from_text: %d %s", ret, err);
	return s;
}

/* The error for TEXT: its return code, and whether the message has WANT. */
static void bad(const char *text, size_t len, int want, const char *msg)
{
	struct prefixset *s = NULL;
	char err[512] = "";
	int ret;

	if (len == SIZE_MAX)
		len = strlen(text);
	ret = prefixset_from_text(text, len, "bad.txt", &s, err, sizeof(err));

	if (!tap_ok(ret == want && !s && strstr(err, msg), "error %d \"%s\"", want, msg))
		diag("got %d \"%s\"", ret, err);
}

static void test_parse(void)
{
	struct prefixset_stats st;
	struct prefixset *s;

	s = from("# a list\n"
		 "\n"
		 "   10.1.2.3/8   \n"
		 "\t192.0.2.1\t# one host\n"
		 "2001:db8::1/32\n"
		 "2001:db8:ffff::5/128 #\n"
		 "   # indented comment\n"
		 "198.51.100.0/24");	/* no final newline */
	ok(s, "comments, blank lines, white space, no final newline");
	if (!s)
		return;
	ok(has4(s, "10.0.0.0") && has4(s, "10.255.255.255"), "host bits cleared: 10.1.2.3/8 is 10/8");
	ok(!has4(s, "9.255.255.255") && !has4(s, "11.0.0.0"), "10/8 edges");
	ok(has4(s, "192.0.2.1") && !has4(s, "192.0.2.2") && !has4(s, "192.0.2.0"), "bare address is /32");
	ok(has4(s, "198.51.100.77"), "last line without newline");
	ok(has6(s, "2001:db8:1234::") && !has6(s, "2001:db9::"), "v6 /32, host bits cleared");
	ok(has6(s, "2001:db8:ffff::5"), "v6 /128 inside the /32");
	prefixset_stats(s, &st);
	is_int(st.prefixes4, 3, "3 v4 prefixes");
	is_int(st.prefixes6, 2, "2 v6 prefixes");
	is_int(st.intervals6, 1, "nested v6 merged into one interval");
	prefixset_free(s);

	s = from("# nothing\n\n");
	ok(s && !has4(s, "1.2.3.4") && !has6(s, "::1"), "empty set matches nothing");
	prefixset_free(s);
	s = from("");
	ok(s && !has4(s, "0.0.0.0"), "empty text is an empty set");
	if (s)
		ok(!prefixset_contains(s, AF_UNIX, (const uint8_t *)"abcd"), "other family: false");
	prefixset_free(s);
}

static void test_errors(void)
{
	char *big;

	bad("1.2.3.0/24\n# fine\nnot-an-address\n", SIZE_MAX, -EINVAL, "bad.txt:3: not an IPv4 or IPv6");
	bad("1.2.3.4/33\n", SIZE_MAX, -EINVAL, "bad.txt:1: prefix length out of range");
	bad("\n::/129\n", SIZE_MAX, -EINVAL, "bad.txt:2: prefix length out of range");
	bad("1.2.3.4/\n", SIZE_MAX, -EINVAL, "bad.txt:1: bad prefix length");
	bad("1.2.3.4/x\n", SIZE_MAX, -EINVAL, "bad prefix length");
	bad("1.2.3.4/-1\n", SIZE_MAX, -EINVAL, "bad prefix length");
	bad("1.2.3.4/0008\n", SIZE_MAX, -EINVAL, "bad prefix length");
	bad("1.2.3\n", SIZE_MAX, -EINVAL, "not an IPv4");
	bad("1.2.3.4 5.6.7.8\n", SIZE_MAX, -EINVAL, "bad.txt:1:");
	bad("10.0.0.0/8\n\n\n\n1.2.3.4.5\n", SIZE_MAX, -EINVAL, "bad.txt:5:");
	bad("1.2.3.4\n5.6.7.8\0\n", 17, -EINVAL, "bad.txt:2: NUL byte");

	big = malloc(2000);
	memset(big, ' ', 1999);
	memcpy(big + 1000, "1.2.3.4", 7);
	big[1999] = '\n';
	bad(big, 2000, -EINVAL, "bad.txt:1: line longer than");
	free(big);
}

static void test_bounds(void)
{
	struct prefixset *s = NULL;
	char err[512] = "";
	struct text t = { 0 };
	double t0;
	int ret;

	/* PREFIXSET_MAX + 1 lines: refused with a clear message. */
	t0 = now_s();
	for (unsigned int i = 0; i <= PREFIXSET_MAX; i++)
		text_add(&t, "1.2.3.4\n");
	ret = prefixset_from_text(t.p, t.len, "huge.txt", &s, err, sizeof(err));
	is_int(ret, -E2BIG, "more than %u prefixes refused", PREFIXSET_MAX);
	ok(!s && strstr(err, "huge.txt:4000001: more than 4000000 prefixes"), "error names the line: %s",
	   err);
	diag("%u lines refused in %.2f s", PREFIXSET_MAX + 1, now_s() - t0);
	free(t.p);

	ret = prefixset_load("/nonexistent/ipmodd-set", &s, err, sizeof(err));
	is_int(ret, -ENOENT, "missing file: -ENOENT");
	ok(strstr(err, "/nonexistent/ipmodd-set"), "error names the file: %s", err);
	ret = prefixset_load("/", &s, err, sizeof(err));
	is_int(ret, -EISDIR, "a directory: -EISDIR (%s)", err);
}

static void test_families(void)
{
	struct prefixset *s;

	s = from("10.0.0.0/8\n");
	ok(s && has4(s, "10.0.0.1"), "v4 10/8 holds 10.0.0.1");
	ok(s && !has6(s, "::ffff:10.0.0.1"), "v4 10/8 does not hold v4-mapped ::ffff:10.0.0.1");
	ok(s && !has6(s, "::10.0.0.1"), "nor v4-compatible ::10.0.0.1");
	ok(s && !has6(s, "a00::1"), "nor a v6 address with the same first bytes");
	prefixset_free(s);

	s = from("::ffff:10.0.0.0/104\n");
	ok(s && has6(s, "::ffff:10.9.8.7"), "v6 ::ffff:10.0.0.0/104 holds ::ffff:10.9.8.7");
	ok(s && !has4(s, "10.9.8.7"), "but not the IPv4 address 10.9.8.7");
	prefixset_free(s);

	s = from("0.0.0.0/0\n");
	ok(s && has4(s, "0.0.0.0") && has4(s, "255.255.255.255"), "0/0 holds every v4 address");
	ok(s && !has6(s, "::") && !has6(s, "::ffff:1.2.3.4"), "0/0 holds no v6 address");
	prefixset_free(s);

	s = from("::/0\n");
	ok(s && has6(s, "::") && has6(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "::/0 holds all v6");
	ok(s && !has4(s, "1.2.3.4"), "::/0 holds no v4");
	prefixset_free(s);
}

static void test_merge_edges(void)
{
	struct prefixset_stats st;
	struct prefixset *s;

	/* Adjacent halves merge; the top of each space does not wrap. */
	s = from("10.0.0.0/9\n10.128.0.0/9\n255.255.255.255\n255.255.255.0/24\n"
		 "0.0.0.0/32\n8000::/1\n::/128\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\n"
		 "2001:db8::/64\n2001:db8:0:1::/64\n");
	if (!ok(s, "edge set builds"))
		return;
	prefixset_stats(s, &st);
	is_int(st.intervals4, 3, "v4: 10/9+10.128/9 merged, 255.255.255/24 absorbs the /32, 0.0.0.0");
	is_int(st.intervals6, 3, "v6: 8000::/1 absorbs the top /128; ::/128; two adjacent /64s merged");
	ok(has4(s, "10.127.255.255") && has4(s, "10.128.0.0") && !has4(s, "11.0.0.0"), "merged halves");
	ok(has4(s, "255.255.255.255") && has4(s, "255.255.255.0") && !has4(s, "255.255.254.255"),
	   "top of v4");
	ok(has4(s, "0.0.0.0") && !has4(s, "0.0.0.1"), "bottom of v4");
	ok(has6(s, "::") && !has6(s, "::1") && !has6(s, "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	   "bottom of v6");
	ok(has6(s, "8000::") && has6(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "top of v6");
	ok(has6(s, "2001:db8::1:ffff:ffff:ffff:ffff") && !has6(s, "2001:db8::2:0:0:0:0"),
	   "adjacent /64s");
	prefixset_free(s);

	/* A gap of one address stays a gap. */
	s = from("10.0.0.0\n10.0.0.2\n2001:db8::\n2001:db8::2\n2001:db8::1:0:0:0:0/64\n"
		 "2001:db8::ffff:ffff:ffff:fffe/127\n");
	if (!ok(s, "one-address gaps build"))
		return;
	prefixset_stats(s, &st);
	is_int(st.intervals4, 2, "v4: two intervals around a one-address gap");
	is_int(st.intervals6, 3, "v6: two around a one-address gap, /127 and /64 touching merged");
	ok(has4(s, "10.0.0.0") && !has4(s, "10.0.0.1") && has4(s, "10.0.0.2"), "v4 gap of one");
	ok(has6(s, "2001:db8::") && !has6(s, "2001:db8::1") && has6(s, "2001:db8::2"), "v6 gap of one");
	ok(has6(s, "2001:db8::ffff:ffff:ffff:ffff") && has6(s, "2001:db8::1:0:0:0:0") &&
	   !has6(s, "2001:db8::ffff:ffff:ffff:fffd"), "v6 merge across the 64-bit word");
	prefixset_free(s);
}

/* Sets big enough for the first-level index: prefixes reaching across its buckets. */
static void test_index(void)
{
	struct text t = { 0 };
	struct prefixset *s = NULL;
	char line[64], err[512] = "";

	text_add(&t, "10.0.0.0/8\n2001:db8::/32\nffff::/16\n255.255.0.0/16\n");
	for (unsigned int i = 0; i < 2000; i++) {
		snprintf(line, sizeof(line), "11.%u.%u.1\n2001:db9:%x::1\n", i / 256, i % 256, i);
		text_add(&t, line);
	}
	ok(prefixset_from_text(t.p, t.len, "index.txt", &s, err, sizeof(err)) == 0, "2004-line set");
	free(t.p);
	if (!s)
		return;
	ok(has4(s, "10.0.0.0") && has4(s, "10.200.3.4") && has4(s, "10.255.255.255"),
	   "a /8 across 256 buckets, found from each");
	ok(!has4(s, "11.0.0.0") && has4(s, "11.0.0.1") && !has4(s, "11.0.0.2") && has4(s, "11.7.207.1"),
	   "one-address intervals after it");
	ok(!has4(s, "9.255.255.255") && !has4(s, "0.0.0.0") && !has4(s, "12.0.0.0"), "outside");
	ok(has4(s, "255.255.255.255") && !has4(s, "255.254.255.255"), "the last bucket");
	ok(has6(s, "2001:db8:ffff::") && has6(s, "2001:db8::") && !has6(s, "2001:db7:ffff::"),
	   "v6 /32 inside one bucket");
	ok(has6(s, "2001:db9:7cf::1") && !has6(s, "2001:db9:7cf::2") && !has6(s, "2001:db9:7d0::1"),
	   "v6 one-address intervals");
	ok(has6(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") && !has6(s, "fffe::") && !has6(s, "::"),
	   "v6 last and first buckets");
	prefixset_free(s);
}

/* The reference: every prefix as (family, bytes, len), scanned in order. */
struct ref {
	int family;
	uint8_t addr[16];
	unsigned int len;
};

/*
 * The linear scan: every prefix as network and mask words, compared one by
 * one (no sorting, no merging: nothing shared with the set's build).
 */
struct scan {
	uint32_t *net4, *mask4;
	uint64_t (*net6)[2], (*mask6)[2];
	size_t n4, n6;
};

static void mask_words(const uint8_t *a, unsigned int len, unsigned int bytes, uint64_t *w)
{
	uint8_t m[16] = { 0 };

	for (unsigned int b = 0; b < len; b++)
		m[b / 8] |= (uint8_t)(0x80 >> (b % 8));
	for (unsigned int k = 0; k < bytes / 8 + (bytes == 4); k++) {
		w[k] = 0;
		for (unsigned int i = 0; i < (bytes == 4 ? 4u : 8u); i++)
			w[k] = w[k] << 8 | (a ? (a[k * 8 + i] & m[k * 8 + i]) : m[k * 8 + i]);
	}
}

static void scan_init(struct scan *sc, const struct ref *r, size_t n)
{
	memset(sc, 0, sizeof(*sc));
	sc->net4 = calloc(n, sizeof(*sc->net4));
	sc->mask4 = calloc(n, sizeof(*sc->mask4));
	sc->net6 = calloc(n, sizeof(*sc->net6));
	sc->mask6 = calloc(n, sizeof(*sc->mask6));
	for (size_t i = 0; i < n; i++) {
		uint64_t w[2];

		if (r[i].family == AF_INET) {
			mask_words(r[i].addr, r[i].len, 4, w);
			sc->net4[sc->n4] = (uint32_t)w[0];
			mask_words(NULL, r[i].len, 4, w);
			sc->mask4[sc->n4++] = (uint32_t)w[0];
		} else {
			mask_words(r[i].addr, r[i].len, 16, sc->net6[sc->n6]);
			mask_words(NULL, r[i].len, 16, sc->mask6[sc->n6++]);
		}
	}
}

static void scan_free(struct scan *sc)
{
	free(sc->net4);
	free(sc->mask4);
	free(sc->net6);
	free(sc->mask6);
}

static bool ref_contains(const struct scan *sc, int family, const uint8_t *a)
{
	if (family == AF_INET) {
		uint32_t v = get_be32(a);

		for (size_t i = 0; i < sc->n4; i++)
			if ((v & sc->mask4[i]) == sc->net4[i])
				return true;
	} else {
		uint64_t hi = (uint64_t)get_be32(a) << 32 | get_be32(a + 4);
		uint64_t lo = (uint64_t)get_be32(a + 8) << 32 | get_be32(a + 12);

		for (size_t i = 0; i < sc->n6; i++)
			if ((hi & sc->mask6[i][0]) == sc->net6[i][0] &&
			    (lo & sc->mask6[i][1]) == sc->net6[i][1])
				return true;
	}
	return false;
}

/* A random prefix: v4 lengths mostly 16..32 with a few short ones; v6 24..128. */
static void rand_prefix(struct ref *p, bool shortish)
{
	uint64_t x = rnd64(), y = rnd64();

	memset(p, 0, sizeof(*p));
	p->family = pct(50) ? AF_INET : AF_INET6;
	if (p->family == AF_INET) {
		put_be32(p->addr, (uint32_t)x);
		p->len = shortish && pct(1) ? 10 + rnd(6) : 16 + rnd(17);
	} else {
		/* Mostly inside 2000::/3, so that v6 prefixes nest and touch. */
		put_be32(p->addr, (uint32_t)(x >> 32));
		p->addr[0] = (uint8_t)(0x20 | (p->addr[0] & 0x01));
		put_be32(p->addr + 4, (uint32_t)x);
		put_be32(p->addr + 8, (uint32_t)(y >> 32));
		put_be32(p->addr + 12, (uint32_t)y);
		p->len = shortish && pct(1) ? 16 + rnd(8) : 24 + rnd(105);
	}
}

static void ref_text(struct text *t, const struct ref *p)
{
	char a[INET6_ADDRSTRLEN], line[INET6_ADDRSTRLEN + 16];

	inet_ntop(p->family, p->addr, a, sizeof(a));
	/* Host bits stay set in the file: the set must clear them. */
	if (p->len == (p->family == AF_INET ? 32u : 128u) && pct(50))
		snprintf(line, sizeof(line), "%s\n", a);
	else
		snprintf(line, sizeof(line), "%s/%u\n", a, p->len);
	text_add(t, line);
}

/* A test address: random, or inside / just below / just above a prefix of R. */
static int rand_addr(const struct ref *r, size_t n, uint8_t *a)
{
	const struct ref *p = &r[rnd((unsigned int)n)];
	unsigned int alen, full, rest;
	int family;

	switch (rnd(4)) {
	case 0:
		family = pct(50) ? AF_INET : AF_INET6;
		for (unsigned int i = 0; i < 16; i++)
			a[i] = (uint8_t)rnd64();
		if (family == AF_INET6 && pct(80))
			a[0] = (uint8_t)(0x20 | (a[0] & 1));
		return family;
	case 1: /* inside: the prefix bits, random host bits */
		family = p->family;
		for (unsigned int i = 0; i < 16; i++)
			a[i] = (uint8_t)rnd64();
		full = p->len / 8;
		rest = p->len % 8;
		memcpy(a, p->addr, full);
		if (rest)
			a[full] = (uint8_t)((p->addr[full] & (0xff00 >> rest)) |
					    (a[full] & ~(0xff00 >> rest)));
		return family;
	default: { /* one below the first or one above the last address */
		bool below = rnd(4) == 2;
		int i;

		family = p->family;
		alen = family == AF_INET ? 4 : 16;
		memset(a, 0, 16);
		for (unsigned int b = 0; b < alen * 8; b++) {
			bool net = b < p->len;
			unsigned int bit = (p->addr[b / 8] >> (7 - b % 8)) & 1;

			if (!net)
				bit = below ? 0 : 1;
			a[b / 8] |= (uint8_t)(bit << (7 - b % 8));
		}
		/* +-1 with carry across the bytes (wraps at the ends of the space) */
		for (i = (int)alen - 1; i >= 0; i--) {
			if (below) {
				if (a[i]-- != 0)
					break;
			} else {
				if (++a[i] != 0)
					break;
			}
		}
		return family;
	}
	}
}

static void test_random(void)
{
	enum { NPREFIX = 20000, NADDR = 100000 };
	struct ref *r = calloc(NPREFIX, sizeof(*r));
	struct text t = { 0 };
	struct prefixset *s = NULL;
	char err[512] = "";
	unsigned long hits = 0, wrong = 0;
	struct scan sc;
	double t0;
	int ret;

	rs = 0x5e75;
	for (size_t i = 0; i < NPREFIX; i++) {
		rand_prefix(&r[i], true);
		ref_text(&t, &r[i]);
	}
	ret = prefixset_from_text(t.p, t.len, "random.txt", &s, err, sizeof(err));
	is_int(ret, 0, "%d random prefixes build (%s)", NPREFIX, err);
	scan_init(&sc, r, NPREFIX);
	if (ret < 0)
		goto out;
	t0 = now_s();
	for (size_t i = 0; i < NADDR; i++) {
		uint8_t a[16];
		int family = rand_addr(r, NPREFIX, a);
		bool got = prefixset_contains(s, family, a);
		bool want = ref_contains(&sc, family, a);

		hits += want;
		if (got != want && wrong++ < 5) {
			char str[INET6_ADDRSTRLEN];

			inet_ntop(family, a, str, sizeof(str));
			diag("%s: set says %d, linear scan %d", str, got, want);
		}
	}
	is_int(wrong, 0, "%d addresses (%lu inside): the set agrees with a linear scan", NADDR, hits);
	ok(hits > NADDR / 10 && hits < NADDR * 9 / 10, "both answers well represented (%lu hits)", hits);
	diag("%d addresses checked against the linear scan in %.2f s", NADDR, now_s() - t0);
out:
	scan_free(&sc);
	prefixset_free(s);
	free(t.p);
	free(r);
}

static void test_million(void)
{
	enum { NBIG = 1000000, NSPOT = 10000, NSCAN = 100 };
	struct ref *r = calloc(NBIG, sizeof(*r));
	struct prefixset_stats st;
	struct prefixset *s = NULL;
	struct text t = { 0 };
	char path[256], err[512] = "";
	unsigned long wrong = 0, hits = 0;
	struct scan sc;
	double t0, dt;
	int ret;

	rs = 0x10ad;
	text_add(&t, "# generated by test-prefixset, seed 0x10ad\n");
	for (size_t i = 0; i < NBIG; i++) {
		rand_prefix(&r[i], false);
		ref_text(&t, &r[i]);
	}
	if (!ok(write_temp(path, sizeof(path), t.p, t.len) == 0, "1,000,000-prefix file written")) {
		free(t.p);
		free(r);
		return;
	}
	free(t.p);
	t0 = now_s();
	ret = prefixset_load(path, &s, err, sizeof(err));
	dt = now_s() - t0;
	unlink(path);
	is_int(ret, 0, "1,000,000 prefixes load from a file (%s)", err);
	if (ret < 0)
		goto out;
	prefixset_stats(s, &st);
	diag("1,000,000 prefixes (%llu v4, %llu v6) loaded and built in %.3f s",
	     (unsigned long long)st.prefixes4, (unsigned long long)st.prefixes6, dt);
	diag("intervals after merging: %llu v4, %llu v6; %llu bytes, %.1f bytes per prefix",
	     (unsigned long long)st.intervals4, (unsigned long long)st.intervals6,
	     (unsigned long long)st.bytes, (double)st.bytes / NBIG);
	is_int(st.prefixes4 + st.prefixes6, NBIG, "every line counted");
	/* Timing is asserted only in a plain build, and generously: bench/ is for speed. */
	if (slowed_down())
		ok(1, "load time not asserted under a sanitizer or valgrind (%.3f s)", dt);
	else
		ok(dt < 10.0, "load and build under 10 s (%.3f s; the goal is 2 s)", dt);

	/* Spot checks: an address inside each of NSPOT prefixes is found. */
	for (size_t i = 0; i < NSPOT; i++) {
		uint8_t a[16];
		const struct ref *p = &r[rnd(NBIG)];
		int family;

		/* rand_addr case 1 on one prefix */
		family = p->family;
		memcpy(a, p->addr, 16);
		for (unsigned int b = p->len; b < (family == AF_INET ? 32u : 128u); b++)
			if (pct(50))
				a[b / 8] ^= (uint8_t)(0x80 >> (b % 8));
		wrong += !prefixset_contains(s, family, a);
	}
	is_int(wrong, 0, "%d addresses inside listed prefixes are found", NSPOT);

	/* The lookup rate, printed only: random and edge addresses, both families. */
	{
		enum { NLOOK = 1000000 };
		uint8_t (*addrs)[16] = malloc((size_t)NLOOK * 16);
		uint8_t *fam = malloc(NLOOK);
		unsigned long found = 0;

		for (size_t i = 0; i < NLOOK; i++)
			fam[i] = (uint8_t)rand_addr(r, NBIG, addrs[i]);
		t0 = now_s();
		for (size_t i = 0; i < NLOOK; i++)
			found += prefixset_contains(s, fam[i], addrs[i]);
		dt = now_s() - t0;
		diag("%d lookups in %.3f s: %.0f ns each (%lu found)", NLOOK, dt, dt * 1e9 / NLOOK,
		     found);
		free(addrs);
		free(fam);
	}

	/* And NSCAN random or edge addresses against the linear scan of all 1,000,000. */
	wrong = 0;
	scan_init(&sc, r, NBIG);
	for (size_t i = 0; i < NSCAN; i++) {
		uint8_t a[16];
		int family = rand_addr(r, NBIG, a);
		bool want = ref_contains(&sc, family, a);

		hits += want;
		wrong += prefixset_contains(s, family, a) != want;
	}
	is_int(wrong, 0, "%d addresses agree with a linear scan of the big set (%lu inside)", NSCAN,
	       hits);
	scan_free(&sc);
out:
	prefixset_free(s);
	free(r);
}

int main(void)
{
	test_parse();
	test_errors();
	test_families();
	test_merge_edges();
	test_index();
	test_random();
	test_million();
	test_bounds();
	return tap_done();
}
