// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Address sets as sorted, disjoint intervals with binary search: see
 * prefixset.h.
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "listfile.h"
#include "prefixset.h"
#include "util.h"

struct u128 {
	uint64_t hi, lo;
};

struct iv4 {
	uint32_t lo, hi;
};

struct iv6 {
	struct u128 lo, hi;
};

/*
 * Past INDEX_MIN intervals, a family gets a first-level index on the top 16
 * bits of the address: first[b] is the first interval starting at or above
 * b << (width - 16), so a lookup searches one bucket, and falls back on the
 * interval just before it (which may reach into the bucket).
 */
#define INDEX_BITS 16
#define INDEX_SIZE ((1u << INDEX_BITS) + 1)
#define INDEX_MIN 1024

struct prefixset {
	struct iv4 *v4;
	struct iv6 *v6;
	uint32_t *first4, *first6;	/* INDEX_SIZE entries, or NULL */
	size_t n4, n6;
	uint64_t prefixes4, prefixes6;
};

struct builder {
	struct iv4 *v4;
	struct iv6 *v6;
	size_t n4, n6, cap4, cap6;
};

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 1024;
	p = reallocarray(*arr, ncap, size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int parse_len(const char *s, unsigned int max, unsigned int *ret)
{
	unsigned int v = 0;
	size_t i;

	if (!*s || strlen(s) > 3)
		return -EINVAL;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int add_entry(void *ctx, const char *line, size_t len, char *err, size_t errlen)
{
	struct builder *b = ctx;
	char buf[INET6_ADDRSTRLEN + 8], quoted[64];
	uint8_t a[16] = { 0 };
	unsigned int plen, max;
	char *slash;
	int family, ret;

	str_sanitize(quoted, sizeof(quoted), line);
	if (len >= sizeof(buf)) {
		return err_set(err, errlen, -EINVAL, "not an address or prefix: \"%s\"", quoted);
	}
	if (b->n4 + b->n6 >= PREFIXSET_MAX) {
		return err_set(err, errlen, -E2BIG, "more than %u prefixes in one set", PREFIXSET_MAX);
	}
	memcpy(buf, line, len + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, a) == 1) {
		family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, a) == 1) {
		family = AF_INET6;
		max = 128;
	} else {
		return err_set(err, errlen, -EINVAL, "not an IPv4 or IPv6 address: \"%s\"", quoted);
	}
	plen = max;
	if (slash) {
		ret = parse_len(slash + 1, max, &plen);
		if (ret < 0) {
			return err_set(err, errlen, -EINVAL, "%s: \"%s\"",
				 ret == -ERANGE ? "prefix length out of range" : "bad prefix length",
				 quoted);
		}
	}

	if (family == AF_INET) {
		uint32_t v = get_be32(a);
		uint32_t host = plen == 32 ? 0 : UINT32_MAX >> plen;

		if (grow((void **)&b->v4, &b->cap4, b->n4, sizeof(*b->v4)) < 0)
			return -ENOMEM;
		b->v4[b->n4++] = (struct iv4){ .lo = v & ~host, .hi = v | host };
	} else {
		uint64_t hi = (uint64_t)get_be32(a) << 32 | get_be32(a + 4);
		uint64_t lo = (uint64_t)get_be32(a + 8) << 32 | get_be32(a + 12);
		uint64_t hhost, lhost;

		/* Host bits of each half: all of it, some of it, or none. */
		hhost = plen >= 64 ? 0 : plen == 0 ? UINT64_MAX : UINT64_MAX >> plen;
		lhost = plen <= 64 ? UINT64_MAX : plen == 128 ? 0 : UINT64_MAX >> (plen - 64);
		if (grow((void **)&b->v6, &b->cap6, b->n6, sizeof(*b->v6)) < 0)
			return -ENOMEM;
		b->v6[b->n6++] = (struct iv6){
			.lo = { hi & ~hhost, lo & ~lhost },
			.hi = { hi | hhost, lo | lhost },
		};
	}
	return 0;
}

static int u128_cmp(const struct u128 *a, const struct u128 *b)
{
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

static int cmp4(const void *x, const void *y)
{
	const struct iv4 *a = x, *b = y;

	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

static int cmp6(const void *x, const void *y)
{
	const struct iv6 *a = x, *b = y;

	return u128_cmp(&a->lo, &b->lo);
}

/* Sort by start and merge overlapping or adjacent intervals in place; the new count. */
static size_t merge4(struct iv4 *v, size_t n)
{
	size_t m = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp4);
	for (size_t i = 1; i < n; i++) {
		/* v[m].hi + 1 would wrap at the top of the space: all that follows is inside. */
		if (v[m].hi == UINT32_MAX || v[i].lo <= v[m].hi + 1) {
			if (v[i].hi > v[m].hi)
				v[m].hi = v[i].hi;
		} else {
			v[++m] = v[i];
		}
	}
	return m + 1;
}

static struct u128 u128_inc(struct u128 a)
{
	a.lo++;
	if (!a.lo)
		a.hi++;
	return a;
}

static size_t merge6(struct iv6 *v, size_t n)
{
	size_t m = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp6);
	for (size_t i = 1; i < n; i++) {
		bool top = v[m].hi.hi == UINT64_MAX && v[m].hi.lo == UINT64_MAX;
		struct u128 next = u128_inc(v[m].hi);

		if (top || u128_cmp(&v[i].lo, &next) <= 0) {
			if (u128_cmp(&v[i].hi, &v[m].hi) > 0)
				v[m].hi = v[i].hi;
		} else {
			v[++m] = v[i];
		}
	}
	return m + 1;
}

/* Shrink to N elements; an empty array is freed (NULL is a valid empty set). */
static void *shrink(void *p, size_t n, size_t size)
{
	void *q;

	if (!n) {
		free(p);
		return NULL;
	}
	q = reallocarray(p, n, size);
	return q ? q : p;
}

/* first[b] for every bucket b, from the sorted starts' top bits (TOP(i)). */
static uint32_t *make_index(size_t n, const void *arr, uint32_t (*top)(const void *, size_t))
{
	uint32_t *first;
	size_t i = 0;

	if (n < INDEX_MIN)
		return NULL;
	first = reallocarray(NULL, INDEX_SIZE, sizeof(*first));
	if (!first)
		return NULL;	/* the plain binary search still works */
	for (uint32_t bk = 0; bk < INDEX_SIZE; bk++) {
		while (i < n && top(arr, i) < bk)
			i++;
		first[bk] = (uint32_t)i;
	}
	return first;
}

static uint32_t top4(const void *arr, size_t i)
{
	return ((const struct iv4 *)arr)[i].lo >> (32 - INDEX_BITS);
}

static uint32_t top6(const void *arr, size_t i)
{
	return (uint32_t)(((const struct iv6 *)arr)[i].lo.hi >> (64 - INDEX_BITS));
}

static int build(struct builder *b, int loaded, struct prefixset **ret)
{
	struct prefixset *s;

	if (loaded < 0)
		goto fail;
	s = calloc(1, sizeof(*s));
	if (!s) {
		loaded = -ENOMEM;
		goto fail;
	}
	s->prefixes4 = b->n4;
	s->prefixes6 = b->n6;
	s->n4 = merge4(b->v4, b->n4);
	s->n6 = merge6(b->v6, b->n6);
	s->v4 = shrink(b->v4, s->n4, sizeof(*s->v4));
	s->v6 = shrink(b->v6, s->n6, sizeof(*s->v6));
	s->first4 = make_index(s->n4, s->v4, top4);
	s->first6 = make_index(s->n6, s->v6, top6);
	*ret = s;
	return 0;
fail:
	free(b->v4);
	free(b->v6);
	return loaded;
}

int prefixset_load(const char *path, struct prefixset **ret, char *err, size_t errlen)
{
	struct builder b = { 0 };

	return build(&b, listfile_load(path, add_entry, &b, err, errlen), ret);
}

int prefixset_from_text(const char *buf, size_t len, const char *name, struct prefixset **ret,
			char *err, size_t errlen)
{
	struct builder b = { 0 };

	return build(&b, listfile_text(buf, len, name, add_entry, &b, err, errlen), ret);
}

/* The search range of a lookup: one bucket of the index, or everything. */
static void range(const uint32_t *first, size_t n, uint32_t bk, size_t *lo, size_t *hi)
{
	if (first) {
		*lo = first[bk];
		*hi = first[bk + 1];
	} else {
		*lo = 0;
		*hi = n;
	}
}

bool prefixset_contains(const struct prefixset *s, int family, const uint8_t *addr)
{
	size_t lo, hi, base;

	if (family == AF_INET) {
		uint32_t v = get_be32(addr);

		/* The last interval starting at or below v, if it reaches v. */
		range(s->first4, s->n4, v >> (32 - INDEX_BITS), &lo, &hi);
		base = lo;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (s->v4[mid].lo <= v)
				lo = mid + 1;
			else
				hi = mid;
		}
		/* None in the bucket: the one before it, which starts below v. */
		if (lo == base && !base)
			return false;
		return v <= s->v4[lo - 1].hi;
	}
	if (family == AF_INET6) {
		struct u128 v = {
			(uint64_t)get_be32(addr) << 32 | get_be32(addr + 4),
			(uint64_t)get_be32(addr + 8) << 32 | get_be32(addr + 12),
		};

		range(s->first6, s->n6, (uint32_t)(v.hi >> (64 - INDEX_BITS)), &lo, &hi);
		base = lo;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (u128_cmp(&s->v6[mid].lo, &v) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == base && !base)
			return false;
		return u128_cmp(&v, &s->v6[lo - 1].hi) <= 0;
	}
	return false;
}

void prefixset_stats(const struct prefixset *s, struct prefixset_stats *st)
{
	*st = (struct prefixset_stats){
		.prefixes4 = s->prefixes4,
		.prefixes6 = s->prefixes6,
		.intervals4 = s->n4,
		.intervals6 = s->n6,
		.bytes = sizeof(*s) + s->n4 * sizeof(*s->v4) + s->n6 * sizeof(*s->v6) +
			 ((s->first4 ? INDEX_SIZE : 0) + (s->first6 ? INDEX_SIZE : 0)) *
				 sizeof(*s->first4),
	};
}

struct prefixset *prefixset_free(struct prefixset *s)
{
	if (s) {
		free(s->v4);
		free(s->v6);
		free(s->first4);
		free(s->first6);
		free(s);
	}
	return NULL;
}
