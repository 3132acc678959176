// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hostset: "name" and "*.name" semantics (the tls-sni rule value's),
 * case, trailing dots, comments, errors naming the line, bounds, equality
 * with a naive matcher on random names, and 1,000,000 names from a file.
 */
#include "hostset.h"
#include "rng.h"
#include "settest.h"
#include "tap.h"
#include "util.h"

static struct hostset *from(const char *text)
{
	struct hostset *s = NULL;
	char err[512] = "";
	int ret = hostset_from_text(text, strlen(text), "h.txt", &s, err, sizeof(err));

	if (ret < 0)
		diag("from_text: %d %s", ret, err);
	return s;
}

static bool has(const struct hostset *s, const char *name)
{
	return hostset_contains(s, name, strlen(name));
}

static void bad(const char *text, size_t len, int want, const char *msg)
{
	struct hostset *s = NULL;
	char err[512] = "";
	int ret;

	if (len == SIZE_MAX)
		len = strlen(text);
	ret = hostset_from_text(text, len, "bad.txt", &s, err, sizeof(err));
	if (!tap_ok(ret == want && !s && strstr(err, msg), "error %d \"%s\"", want, msg))
		diag("got %d \"%s\"", ret, err);
}

static void test_semantics(void)
{
	struct hostset_stats st;
	struct hostset *s;

	s = from("# blocked\n"
		 "\n"
		 "  *.Example.COM  # all below\n"
		 "exact.test\n"
		 "*.both.test\n"
		 "both.test\n"
		 "fqdn.test.\n"
		 "exact.test\n"
		 "under_score-x.t");
	if (!ok(s, "list with comments, blank lines, case, duplicates builds"))
		return;
	ok(has(s, "a.example.com") && has(s, "a.b.example.com"), "*.example.com: a. and a.b. below");
	ok(!has(s, "example.com"), "*.example.com does not match example.com");
	ok(!has(s, "aexample.com") && !has(s, "xample.com"), "suffix only at a label boundary");
	ok(!has(s, ".example.com"), "no empty label before the suffix");
	ok(has(s, "A.EXAMPLE.com") && has(s, "a.example.com."), "case-insensitive; trailing dot ignored");
	ok(has(s, "exact.test") && has(s, "EXACT.Test."), "exact name, any case, trailing dot");
	ok(!has(s, "a.exact.test") && !has(s, "exact.test.x") && !has(s, "xexact.test"),
	   "exact name matches only itself");
	ok(has(s, "both.test") && has(s, "x.both.test"), "name and *.name: both");
	ok(has(s, "fqdn.test") && has(s, "fqdn.test.") && !has(s, "a.fqdn.test"),
	   "a trailing dot on a line is ignored too");
	ok(has(s, "under_score-x.t"), "'_' and '-' in labels; last line without newline");
	ok(!has(s, "") && !has(s, ".") && !has(s, "com") && !has(s, "test"), "empty, root, TLDs: no");
	ok(!hostset_contains(s, "a.example.com\0x", 15), "bytes after a NUL are part of the name");
	hostset_stats(s, &st);
	is_int(st.names, 7, "7 names loaded");
	is_int(st.exact, 4, "4 distinct exact names (duplicate merged)");
	is_int(st.suffix, 2, "2 suffix names");
	hostset_free(s);

	s = from("");
	ok(s && !has(s, "a.b"), "empty set");
	hostset_free(s);
}

static void test_errors(void)
{
	char line[600];

	bad("ok.test\n# x\nbad name\n", SIZE_MAX, -EINVAL, "bad.txt:3: not a host name character");
	bad("*\n", SIZE_MAX, -EINVAL, "bad.txt:1: '*' only as the whole first label");
	bad("a.*.b\n", SIZE_MAX, -EINVAL, "'*' only");
	bad("*a.b\n", SIZE_MAX, -EINVAL, "'*' only");
	bad("*.*.b\n", SIZE_MAX, -EINVAL, "'*' only");
	bad("\n\na..b\n", SIZE_MAX, -EINVAL, "bad.txt:3: empty label");
	bad(".a\n", SIZE_MAX, -EINVAL, "empty label");
	bad("*.\n", SIZE_MAX, -EINVAL, "empty name");
	bad("a.b..\n", SIZE_MAX, -EINVAL, "empty label");
	bad("h\xc3\xa9.test\n", SIZE_MAX, -EINVAL, "not a host name character");
	bad("ok\0.test\n", 9, -EINVAL, "bad.txt:1: NUL byte");

	/* a label of 63 is fine, 64 is not */
	memset(line, 'a', 63);
	strcpy(line + 63, ".t\n");
	{
		struct hostset *s = from(line);

		ok(s && hostset_contains(s, line, 65), "63-byte label");
		hostset_free(s);
	}
	memset(line, 'a', 64);
	strcpy(line + 64, ".t\n");
	bad(line, SIZE_MAX, -EINVAL, "bad.txt:1: label longer than 63");

	/* 253 bytes is fine (with "*." before it too), 254 is not */
	for (int i = 0; i < 253; i++)
		line[i] = i % 2 ? '.' : 'a';
	strcpy(line + 253, "\n");
	{
		struct hostset *s = from(line);
		char sub[300];

		ok(s && hostset_contains(s, line, 253), "253-byte name");
		snprintf(sub, sizeof(sub), "x.%.253s", line);
		ok(s && !hostset_contains(s, sub, strlen(sub)), "a looked-up name past 253 bytes: no");
		hostset_free(s);
	}
	snprintf(line, sizeof(line), "*.");
	for (int i = 0; i < 253; i++)
		line[2 + i] = i % 2 ? '.' : 'a';
	strcpy(line + 255, "\n");
	{
		struct hostset *s = from(line);

		ok(s && hostset_contains(s, "b.a.a", 5) == false, "*.253-byte name builds");
		hostset_free(s);
	}
	for (int i = 0; i < 254; i++)
		line[i] = i % 2 ? 'a' : 'b';
	strcpy(line + 254, "\n");
	bad(line, SIZE_MAX, -EINVAL, "name longer than 253");

	memset(line, 'a', 599);
	line[599] = '\n';
	bad(line, 600, -EINVAL, "bad.txt:1: line longer than");
}

static void test_bounds(void)
{
	struct hostset *s = NULL;
	struct text t = { 0 };
	char err[512] = "";
	int ret;

	for (unsigned int i = 0; i <= HOSTSET_MAX; i++)
		text_add(&t, "same.test\n");
	ret = hostset_from_text(t.p, t.len, "huge.txt", &s, err, sizeof(err));
	is_int(ret, -E2BIG, "more than %u names refused", HOSTSET_MAX);
	ok(!s && strstr(err, "huge.txt:1000001: more than 1000000 names"), "error names the line: %s",
	   err);
	free(t.p);

	ret = hostset_load("/nonexistent/ipmodd-hosts", &s, err, sizeof(err));
	is_int(ret, -ENOENT, "missing file: -ENOENT");
	ok(strstr(err, "/nonexistent/ipmodd-hosts"), "error names the file: %s", err);
}

/* The naive reference: hello_name_match's semantics, over every pattern. */
static bool ref_match(const char *pat, const char *name, size_t len)
{
	size_t plen = strlen(pat);

	if (len && name[len - 1] == '.')
		len--;
	if (pat[0] == '*') {
		/* ".suffix" at the end, after at least one byte */
		plen--;
		pat++;
		return len > plen && !strncasecmp(name + len - plen, pat, plen);
	}
	return len == plen && !strncasecmp(name, pat, len);
}

static const char *const labels[] = { "a", "b", "com", "net", "Example", "cdn", "x-y", "www", "A",
				      "org", "io", "de", "ru", "mail", "api", "s3", "img" };

/* A name of 1..5 labels; a pattern of 2..4 (so that no single label covers half the names). */
static void rand_name(char *buf, size_t cap, bool pattern, bool wild)
{
	unsigned int n = pattern ? 2 + rnd(3) : 1 + rnd(5);

	buf[0] = '\0';
	if (wild)
		snprintf(buf, cap, "*.");
	for (unsigned int i = 0; i < n; i++) {
		strncat(buf, PICK(labels), cap - strlen(buf) - 1);
		if (i + 1 < n)
			strncat(buf, ".", cap - strlen(buf) - 1);
	}
}

static void test_random(void)
{
	enum { NPAT = 300, NNAME = 20000 };
	char (*pat)[64] = calloc(NPAT, 64);
	struct hostset *s = NULL;
	struct text t = { 0 };
	char err[512] = "";
	unsigned long wrong = 0, hits = 0;

	rs = 0x4057;
	for (size_t i = 0; i < NPAT; i++) {
		rand_name(pat[i], 64, true, pct(50));
		text_add(&t, pat[i]);
		text_add(&t, "\n");
	}
	if (!ok(hostset_from_text(t.p, t.len, "r.txt", &s, err, sizeof(err)) == 0, "random list builds"))
		goto out;
	for (size_t i = 0; i < NNAME; i++) {
		char name[80], *dot;
		bool want = false, got;

		rand_name(name, sizeof(name) - 2, false, false);
		if (pct(10))
			strcat(name, ".");
		/* odd names too: a leading dot, an empty label, an upper-case copy */
		dot = strchr(name, '.');
		if (pct(3)) {
			memmove(name + 1, name, strlen(name) + 1);
			name[0] = '.';
		} else if (pct(3) && dot) {
			memmove(dot + 1, dot, strlen(dot) + 1);
		} else if (pct(5)) {
			for (char *c = name; *c; c++)
				*c = (char)toupper((unsigned char)*c);
		}
		for (size_t j = 0; j < NPAT && !want; j++)
			want = ref_match(pat[j], name, strlen(name));
		got = has(s, name);
		hits += want;
		if (got != want && wrong++ < 5)
			diag("%s: set %d, naive %d", name, got, want);
	}
	is_int(wrong, 0, "%d random names agree with the naive matcher (%lu match)", NNAME, hits);
	ok(hits > NNAME / 10 && hits < NNAME * 9 / 10, "both answers well represented (%lu hits)", hits);
out:
	hostset_free(s);
	free(t.p);
	free(pat);
}

static void test_million(void)
{
	enum { NBIG = 1000000 };
	struct hostset_stats st;
	struct hostset *s = NULL;
	struct text t = { 0 };
	char path[256], err[512] = "", name[128];
	unsigned long wrong = 0;
	double t0, dt;
	int ret;

	rs = 0x40571;
	for (size_t i = 0; i < NBIG; i++) {
		/* distinct: the index in the first label */
		snprintf(name, sizeof(name), "%sh%zx-%x.%s.%s\n", i % 2 ? "*." : "", i,
			 (unsigned int)rnd(1000), PICK(labels), i % 3 ? "com" : "net");
		text_add(&t, name);
	}
	if (!ok(write_temp(path, sizeof(path), t.p, t.len) == 0, "1,000,000-name file written")) {
		free(t.p);
		return;
	}
	t0 = now_s();
	ret = hostset_load(path, &s, err, sizeof(err));
	dt = now_s() - t0;
	unlink(path);
	is_int(ret, 0, "1,000,000 names load from a file (%s)", err);
	if (ret < 0)
		goto out;
	hostset_stats(s, &st);
	diag("1,000,000 names (%llu exact, %llu *.) loaded and built in %.3f s; %llu bytes, %.1f per name",
	     (unsigned long long)st.exact, (unsigned long long)st.suffix, dt,
	     (unsigned long long)st.bytes, (double)st.bytes / NBIG);
	if (slowed_down())
		ok(1, "load time not asserted under a sanitizer or valgrind (%.3f s)", dt);
	else
		ok(dt < 10.0, "load and build under 10 s (%.3f s)", dt);
	/* Every line of the file, read back: exact lines match themselves, *. lines a child. */
	for (const char *p = t.p; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = (size_t)(nl - p);

		if (p[0] == '*') {
			char sub[140];

			snprintf(sub, sizeof(sub), "Www%.*s", (int)(len - 1), p + 1);
			wrong += !has(s, sub) || hostset_contains(s, p + 2, len - 2);
		} else {
			wrong += !hostset_contains(s, p, len);
		}
		p = nl + 1;
	}
	is_int(wrong, 0, "every one of the 1,000,000 lines means what it says");

	/*
	 * The lookup rate, printed only: the listed names again (same seed),
	 * exact ones as themselves or with "www." before them, "*." ones with
	 * "www." in place of the star: three in four are found.
	 */
	{
		enum { NLOOK = NBIG };
		unsigned long found = 0;
		char (*names)[64] = malloc((size_t)NLOOK * 64);

		rs = 0x40571;
		for (size_t i = 0; i < NLOOK; i++)
			snprintf(names[i], 64, "%sh%zx-%x.%s.%s", i % 4 == 0 ? "" : "www.", i,
				 (unsigned int)rnd(1000), PICK(labels), i % 3 ? "com" : "net");
		t0 = now_s();
		for (size_t i = 0; i < NLOOK; i++)
			found += has(s, names[i]);
		dt = now_s() - t0;
		diag("%d lookups of 3- and 4-label names in %.3f s: %.0f ns each (%lu found)", NLOOK, dt,
		     dt * 1e9 / NLOOK, found);
		free(names);
	}
	ok(!has(s, "h0-0.a.com.x") && !has(s, "nothing.example"), "names not listed: no");
out:
	free(t.p);
	hostset_free(s);
}

int main(void)
{
	test_semantics();
	test_errors();
	test_random();
	test_million();
	test_bounds();
	return tap_done();
}
