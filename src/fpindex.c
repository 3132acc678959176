/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fast path's rule index (fpindex.h): which bucket each rule goes to,
 * and the lists the kernel looks up, with the prefix lists leaf-pushed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fpindex.h"
#include "util.h"

/* Kinds of keys, in the order of preference between keys shared by as many rules. */
enum {
	K_DPORT,
	K_SPORT,
	K_DST,
	K_SRC,
};

#define NONE UINT32_MAX
#define ABSENT (UINT32_MAX - 1)	/* best[] of a rule not in the index (m[i] NULL) */

/* A key rule could be reached through. */
struct cand {
	uint8_t kind, family, len, proto;
	uint16_t port;
	uint8_t addr[16];
	uint32_t rule;
	uint32_t shared;	/* rules with this key */
};

static int key_cmp(const struct cand *x, const struct cand *y)
{
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->kind <= K_SPORT) {
		if (x->proto != y->proto)
			return x->proto < y->proto ? -1 : 1;
		return (x->port > y->port) - (x->port < y->port);
	}
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/* By key, then rule: each key's rules come out in rule order. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int r = key_cmp(x, y);

	if (r)
		return r;
	return (x->rule > y->rule) - (x->rule < y->rule);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void mask_addr(uint8_t *a, unsigned int len)
{
	for (unsigned int i = 0; i < 16; i++) {
		if (len >= 8 * (i + 1))
			continue;
		a[i] &= len > 8 * i ? (uint8_t)(0xff00 >> (len - 8 * i)) : 0;
	}
}

/* A src or dst prefix without "!" of a known family, in its canonical form (rule_parse() makes them so). */
static bool prefix_key(const struct rule_match *m, bool src, struct cand *k)
{
	const struct rule_prefix *pf = src ? &m->src : &m->dst;
	uint32_t has = src ? RULE_M_SRC : RULE_M_DST, neg = src ? RULE_M_SRC_NOT : RULE_M_DST_NOT;
	unsigned int max = m->family == AF_INET ? 32 : m->family == AF_INET6 ? 128 : 0;
	uint8_t mk[16];

	if (!(m->flags & has) || (m->flags & neg) || pf->len == 0 || pf->len > max)
		return false;
	memset(mk, 0xff, sizeof(mk));
	mask_addr(mk, pf->len);
	if (memcmp(mk, pf->mask, sizeof(mk)) != 0)
		return false;
	memset(k, 0, sizeof(*k));
	k->kind = src ? K_SRC : K_DST;
	k->family = m->family;
	k->len = pf->len;
	memcpy(k->addr, pf->addr, sizeof(k->addr));
	mask_addr(k->addr, pf->len);
	return true;
}

/* A single port without "!", with the proto it belongs to. */
static bool port_key(const struct rule_match *m, bool sport, struct cand *k)
{
	uint32_t has = sport ? RULE_M_SPORT : RULE_M_DPORT;
	uint32_t neg = sport ? RULE_M_SPORT_NOT : RULE_M_DPORT_NOT;
	uint16_t lo = sport ? m->sport_lo : m->dport_lo, hi = sport ? m->sport_hi : m->dport_hi;

	if (!(m->flags & RULE_M_PROTO) || !(m->flags & has) || (m->flags & neg) || lo != hi)
		return false;
	memset(k, 0, sizeof(*k));
	k->kind = sport ? K_SPORT : K_DPORT;
	k->proto = m->proto;
	k->port = lo;
	return true;
}

/* Append a list to order[], or mark it too long. */
static struct fpindex_list put_list(struct fpindex *ix, size_t order_max, const uint32_t *v,
				    size_t n)
{
	struct fpindex_list l = { .start = (uint32_t)ix->norder, .count = (uint32_t)n };

	if (n > order_max - ix->norder) {
		ix->punts++;
		return (struct fpindex_list){ .count = FPINDEX_PUNT };
	}
	memcpy(ix->order + ix->norder, v, n * sizeof(*v));
	ix->norder += n;
	return l;
}

/* The generic lists: rules without a key, by the family and proto of the packets they may match. */
static void build_generic(struct fpindex *ix, const struct rule_match *const *m, size_t n,
			  const uint32_t *best, size_t order_max, uint32_t *tmp, uint32_t *byproto)
{
	size_t at[FPINDEX_ANY + 1] = { 0 };

	/* The rules with a proto, sorted by proto (counting sort, stable). */
	for (size_t i = 0; i < n; i++)
		if (best[i] == NONE && (m[i]->flags & RULE_M_PROTO))
			at[m[i]->proto + 1]++;
	for (size_t p = 1; p <= FPINDEX_ANY; p++)
		at[p] += at[p - 1];
	for (size_t i = 0; i < n; i++)
		if (best[i] == NONE && (m[i]->flags & RULE_M_PROTO))
			byproto[at[m[i]->proto]++] = (uint32_t)i;
	/* at[p] is now the end of proto p's rules. */
	for (unsigned int v6 = 0; v6 < 2; v6++) {
		int family = v6 ? AF_INET6 : AF_INET;
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (best[i] == NONE && !(m[i]->flags & RULE_M_PROTO) &&
			    (!m[i]->family || m[i]->family == family))
				tmp[k++] = (uint32_t)i;
		if (k)
			ix->generic[v6][FPINDEX_ANY] = put_list(ix, order_max, tmp, k);
		for (size_t p = 0, from = 0; p < FPINDEX_ANY; from = at[p], p++) {
			k = 0;
			for (size_t j = from; j < at[p]; j++)
				if (!m[byproto[j]]->family || m[byproto[j]]->family == family)
					tmp[k++] = byproto[j];
			if (k)
				ix->generic[v6][p] = put_list(ix, order_max, tmp, k);
		}
	}
}

/* The port entries: one per key some rule chose. */
static int build_ports(struct fpindex *ix, const struct cand *cand, size_t nc, const uint32_t *best,
		       size_t order_max, uint32_t *tmp)
{
	size_t a, b, groups = 0;

	for (a = 0; a < nc && cand[a].kind <= K_SPORT; a = b)
		for (b = a + 1, groups++; b < nc && !key_cmp(&cand[a], &cand[b]); b++)
			;
	ix->ports = calloc(groups ? groups : 1, sizeof(*ix->ports));
	if (!ix->ports)
		return -ENOMEM;
	for (a = 0; a < nc && cand[a].kind <= K_SPORT; a = b) {
		size_t k = 0;

		for (b = a; b < nc && !key_cmp(&cand[a], &cand[b]); b++)
			if (best[cand[b].rule] == b)
				tmp[k++] = cand[b].rule;
		if (!k)
			continue;
		ix->ports[ix->nports++] = (struct fpindex_port){
			.sport = cand[a].kind == K_SPORT, .proto = cand[a].proto, .port = cand[a].port,
			.l = put_list(ix, order_max, tmp, k),
		};
	}
	return 0;
}

/* A distinct prefix some rule chose, with its own rules (in own[]). */
struct group {
	const struct cand *key;
	size_t start, count;
};

static int group_cmp(const void *a, const void *b)
{
	return key_cmp(((const struct group *)a)->key, ((const struct group *)b)->key);
}

/* The src or dst prefix entries, each listing the rules of every prefix that covers it. */
static int build_prefixes(struct fpindex *ix, bool src, const struct cand *cand, size_t nc,
			  const uint32_t *best, size_t order_max, uint32_t *tmp)
{
	_cleanup_(freep) struct group *g = NULL;
	_cleanup_(freep) uint32_t *own = NULL;
	uint8_t kind = src ? K_SRC : K_DST;
	uint64_t lens[2][3] = { { 0 } };	/* [v6]: bit L % 64 of word L / 64 for each length L in use */
	size_t a, b, ng = 0, nown = 0, first;

	for (first = 0; first < nc && cand[first].kind != kind; first++)
		;
	for (a = first; a < nc && cand[a].kind == kind; a++)
		ng += a == first || key_cmp(&cand[a - 1], &cand[a]) != 0;
	g = calloc(ng ? ng : 1, sizeof(*g));
	own = calloc(nc ? nc : 1, sizeof(*own));
	ix->prefixes[src] = calloc(ng ? ng : 1, sizeof(*ix->prefixes[src]));
	if (!g || !own || !ix->prefixes[src])
		return -ENOMEM;
	ng = 0;
	for (a = first; a < nc && cand[a].kind == kind; a = b) {
		struct group *gr = &g[ng];

		gr->key = &cand[a];
		gr->start = nown;
		for (b = a; b < nc && !key_cmp(&cand[a], &cand[b]); b++)
			if (best[cand[b].rule] == b)
				own[nown++] = cand[b].rule;
		gr->count = nown - gr->start;
		if (!gr->count)
			continue;
		ng++;
		lens[cand[a].family == AF_INET6][cand[a].len / 64] |= 1ULL << (cand[a].len % 64);
	}
	/* Sorted by key already: the groups can be searched. */
	for (size_t i = 0; i < ng; i++) {
		const struct cand *k = g[i].key;
		bool v6 = k->family == AF_INET6;
		struct fpindex_prefix *e = &ix->prefixes[src][ix->nprefixes[src]++];
		size_t nt = 0, lists = 0;

		for (unsigned int len = 1; len <= k->len; len++) {
			struct cand probe = *k;
			struct group pg = { .key = &probe }, *hit;

			if (!(lens[v6][len / 64] & 1ULL << (len % 64)))
				continue;
			probe.len = (uint8_t)len;
			mask_addr(probe.addr, len);
			hit = len == k->len ? &g[i] : bsearch(&pg, g, ng, sizeof(*g), group_cmp);
			if (!hit)
				continue;
			memcpy(tmp + nt, own + hit->start, hit->count * sizeof(*tmp));
			nt += hit->count;
			lists++;
		}
		if (lists > 1)
			qsort(tmp, nt, sizeof(*tmp), u32_cmp);
		*e = (struct fpindex_prefix){ .family = k->family, .len = k->len,
					      .l = put_list(ix, order_max, tmp, nt) };
		memcpy(e->addr, k->addr, sizeof(e->addr));
	}
	return 0;
}

int fpindex_build(const struct rule_match *const *m, size_t n, size_t order_max,
		  struct fpindex **ret)
{
	_cleanup_(freep) struct cand *cand = NULL;
	_cleanup_(freep) uint32_t *best = NULL, *tmp = NULL, *byproto = NULL;
	struct fpindex *ix;
	size_t nc = 0;
	int r = -ENOMEM;

	ix = calloc(1, sizeof(*ix));
	cand = calloc(n ? 4 * n : 1, sizeof(*cand));
	best = calloc(n ? n : 1, sizeof(*best));
	tmp = calloc(n ? n : 1, sizeof(*tmp));
	byproto = calloc(n ? n : 1, sizeof(*byproto));
	if (!ix || !cand || !best || !tmp || !byproto)
		goto out;
	ix->order = calloc(order_max ? order_max : 1, sizeof(*ix->order));
	if (!ix->order)
		goto out;

	for (size_t i = 0; i < n; i++) {
		size_t k = nc;

		if (!m[i]) {
			best[i] = ABSENT;
			continue;
		}
		nc += port_key(m[i], false, &cand[nc]);
		nc += port_key(m[i], true, &cand[nc]);
		nc += prefix_key(m[i], false, &cand[nc]);
		nc += prefix_key(m[i], true, &cand[nc]);
		for (; k < nc; k++)
			cand[k].rule = (uint32_t)i;
		best[i] = NONE;
	}
	qsort(cand, nc, sizeof(*cand), cand_cmp);
	for (size_t a = 0, b; a < nc; a = b) {
		for (b = a + 1; b < nc && !key_cmp(&cand[a], &cand[b]); b++)
			;
		for (size_t j = a; j < b; j++)
			cand[j].shared = (uint32_t)(b - a);
	}
	/* Fewest rules behind the key, then the kind's preference (cand is sorted by kind). */
	for (size_t j = 0; j < nc; j++) {
		uint32_t *bj = &best[cand[j].rule];

		if (*bj == NONE || cand[j].shared < cand[*bj].shared)
			*bj = (uint32_t)j;
	}

	build_generic(ix, m, n, best, order_max, tmp, byproto);
	r = build_ports(ix, cand, nc, best, order_max, tmp);
	if (r < 0)
		goto out;
	for (unsigned int src = 0; src < 2; src++) {
		r = build_prefixes(ix, src, cand, nc, best, order_max, tmp);
		if (r < 0)
			goto out;
	}
	*ret = ix;
	return 0;
out:
	fpindex_free(ix);
	return r;
}

struct fpindex *fpindex_free(struct fpindex *ix)
{
	if (ix) {
		free(ix->order);
		free(ix->ports);
		free(ix->prefixes[0]);
		free(ix->prefixes[1]);
		free(ix);
	}
	return NULL;
}
