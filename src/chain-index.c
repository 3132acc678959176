/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rule chain's index (chain-index.h): per direction, the lists of rule
 * indices a packet's family, proto, ports and addresses can reach, built
 * once per chain and looked up per packet.  chain.c owns the chain, the
 * matching and the actions.  No I/O, no logging.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "chain-index.h"
#include "util.h"

/*
 * The index.  Every rule sits in exactly one list of rule indices, kept in
 * rule order: under a key (one of its exact matches on a field that no
 * action rewrites, so the keys a packet has when it enters the chain stay
 * right to its end) or, without one, in the generic list of its family and
 * proto.  A packet gathers the lists whose key it has - four generic ones,
 * one per port kind, one per prefix length in use that its address could
 * fall in (a filter by its first bits tells which) - and tries their rules
 * merged in rule order with the full rule_match().  The
 * index only leaves out rules that fail rule_match() on family, proto,
 * address or port, before any probability= draw, so the results are the
 * linear scan's to the bit.  There is one index per direction, of the
 * rules whose direction= has it: a packet never gathers a rule of the other
 * direction (rule_match() tests the direction too, for the linear scan).
 */
enum {
	IX_DST = 1,		/* the preference between keys shared by as many rules */
	IX_SRC,
	IX_DPORT,
	IX_SPORT,
};

#define IX_ANY 256		/* generic lists of rules without proto */
#define IX_PROTOS 257
/*
 * From two prefix lengths in one field on, a filter picks the lengths worth
 * a lookup, by the first bits of the address that all but at most this many
 * of them cover (a short prefix or two should not make the filter useless).
 */
#define IX_FILTER_ALWAYS 2
#define IX_FILTER_SLOTS_MAX 65536

struct ix_list {
	uint32_t start, count;	/* in order[] */
};

/* meta: kind << 24 | v6 << 16 | prefix length, or kind << 24 | proto; never 0 in use. */
struct ix_slot {
	uint64_t k0, k1;	/* the masked address as struct rule_prefix keeps it, or the port */
	uint32_t meta;
	struct ix_list l;
};

/* A prefix length in use: how to look a packet's address up. */
struct ix_probe {
	uint64_t m0, m1;
	uint32_t meta;
};

/*
 * Which prefix lengths of one field can hold a packet's address, as bit
 * L - 1 for length L, so that an address far from every prefix costs one
 * load instead of a lookup per length.  By a hash of the address's first
 * bits, as many as the shortest length, or with four lengths or more the
 * third shortest (the two shorter ones are looked up for every packet); a
 * collision only costs lookups.
 */
struct ix_filter {
	uint64_t (*slot)[2];		/* [mask + 1] */
	uint32_t mask;
	unsigned int shift;		/* of the hash, for mask + 1 slots */
	unsigned int bits;		/* how many first bits, 1..64 */
	uint64_t keep;			/* those bits of ix_top() */
	uint64_t always[2];		/* the lengths below them */
};

struct chain_index {
	uint32_t *order;		/* every rule once, list after list, each ended by IX_END */
	struct ix_slot *slots;		/* open addressing, at most half full */
	uint32_t mask;			/* slots - 1; 0 without keyed rules */
	unsigned int shift;		/* 64 - log2(slots): the hash's top bits pick the slot */
	bool ports[2];			/* [sport]: some key is a dport, a sport */
	struct chain_index_info info;
	uint64_t lens[2][2][2];			/* [v6][src]: bit L - 1 for each length L in use */
	struct ix_filter filter[2][2];		/* [v6][src], with two lengths or more */
	struct ix_probe probes[2][2][IX_LENS];	/* [v6][src][L] */
	struct ix_list generic[3][IX_PROTOS];	/* [any, ip, ip6][proto or IX_ANY] */
};

/* A key a rule could be reached through, while the index is built. */
struct ix_cand {
	uint64_t k0, k1;
	uint32_t meta;
	uint32_t rule;
	uint32_t shared;	/* rules with this key */
};

/* Fibonacci hashing, the top bits: two multiplies; every packet costs a few. */
static inline uint32_t ix_hash(const struct chain_index *ix, uint32_t meta, uint64_t k0,
			       uint64_t k1)
{
	uint64_t h = k0 ^ (k1 * 0xc2b2ae3d27d4eb4fULL) ^ (uint64_t)meta << 32;

	return (uint32_t)((h * 0x9e3779b97f4a7c15ULL) >> ix->shift);
}

static inline const struct ix_slot *ix_find(const struct chain_index *ix, uint32_t meta,
					    uint64_t k0, uint64_t k1)
{
	for (uint32_t i = ix_hash(ix, meta, k0, k1);; i++) {
		const struct ix_slot *s = &ix->slots[i & ix->mask];

		if (s->meta == meta && s->k0 == k0 && s->k1 == k1)
			return s;
		if (!s->meta)
			return NULL;
	}
}

static bool ix_same_key(const struct ix_cand *x, const struct ix_cand *y)
{
	return x->meta == y->meta && x->k0 == y->k0 && x->k1 == y->k1;
}

/* By key, then rule: each key's rules come out in rule order. */
static int ix_cand_cmp(const void *a, const void *b)
{
	const struct ix_cand *x = a, *y = b;

	if (x->meta != y->meta)
		return x->meta < y->meta ? -1 : 1;
	if (x->k0 != y->k0)
		return x->k0 < y->k0 ? -1 : 1;
	if (x->k1 != y->k1)
		return x->k1 < y->k1 ? -1 : 1;
	return (x->rule > y->rule) - (x->rule < y->rule);
}

static void ix_prefix_mask(unsigned int len, uint64_t m[2])
{
	uint8_t b[16] = { 0 };

	for (unsigned int i = 0; i < len / 8; i++)
		b[i] = 0xff;
	if (len % 8)
		b[len / 8] = (uint8_t)(0xff00 >> (len % 8));
	memcpy(m, b, sizeof(b));
}

/* A src or dst prefix without "!" that a key can stand for (rule_parse() makes them all so). */
static bool ix_prefix_key(const struct rule_match *m, bool src, struct ix_cand *k)
{
	const struct rule_prefix *pf = src ? &m->src : &m->dst;
	uint32_t has = src ? RULE_M_SRC : RULE_M_DST, neg = src ? RULE_M_SRC_NOT : RULE_M_DST_NOT;
	bool v6 = m->family == AF_INET6;
	uint64_t mk[2];

	if (!(m->flags & has) || (m->flags & neg))
		return false;
	if ((!v6 && m->family != AF_INET) || pf->len == 0 || pf->len > (v6 ? 128 : 32))
		return false;
	ix_prefix_mask(pf->len, mk);
	if (mk[0] != pf->mask[0] || mk[1] != pf->mask[1])
		return false;
	k->k0 = pf->addr[0] & mk[0];
	k->k1 = pf->addr[1] & mk[1];
	k->meta = (uint32_t)(src ? IX_SRC : IX_DST) << 24 | (uint32_t)v6 << 16 | pf->len;
	return true;
}

/* A single port without "!", with the proto it belongs to. */
static bool ix_port_key(const struct rule_match *m, bool sport, struct ix_cand *k)
{
	uint32_t has = sport ? RULE_M_SPORT : RULE_M_DPORT;
	uint32_t neg = sport ? RULE_M_SPORT_NOT : RULE_M_DPORT_NOT;
	uint16_t lo = sport ? m->sport_lo : m->dport_lo, hi = sport ? m->sport_hi : m->dport_hi;

	if (!(m->flags & RULE_M_PROTO) || !(m->flags & has) || (m->flags & neg) || lo != hi)
		return false;
	k->k0 = lo;
	k->k1 = 0;
	k->meta = (uint32_t)(sport ? IX_SPORT : IX_DPORT) << 24 | m->proto;
	return true;
}

static size_t ix_family(int family)
{
	return family == AF_INET ? 1 : family == AF_INET6 ? 2 : 0;
}

/* The keys rule i could be reached through, into k (room for 4). */
static size_t ix_keys(const struct rule_match *m, uint32_t i, struct ix_cand *k)
{
	size_t nk = 0;

	nk += ix_prefix_key(m, false, &k[nk]);
	nk += ix_prefix_key(m, true, &k[nk]);
	nk += ix_port_key(m, false, &k[nk]);
	nk += ix_port_key(m, true, &k[nk]);
	for (size_t j = 0; j < nk; j++)
		k[j].rule = i;
	return nk;
}

/* Fewer rules to try behind it, then the kind's preference. */
static bool ix_better(const struct ix_cand *x, const struct ix_cand *y)
{
	return x->shared < y->shared || (x->shared == y->shared && x->meta >> 24 < y->meta >> 24);
}

#define IX_NONE UINT32_MAX

static void ix_set_longest(struct chain_index *ix, size_t count)
{
	if (count > ix->info.longest)
		ix->info.longest = count;
}

/* Lists of one key, from its candidates cand[a..b): only those chosen for their rule. */
static void ix_add_key(struct chain_index *ix, const struct ix_cand *cand, size_t a, size_t b,
		       const uint32_t *best, size_t *pos)
{
	const struct ix_cand *k = &cand[a];
	struct ix_list l = { .start = (uint32_t)*pos };
	unsigned int kind = k->meta >> 24;
	uint32_t i;

	for (size_t j = a; j < b; j++)
		if (best[cand[j].rule] == j)
			ix->order[(*pos)++] = cand[j].rule;
	l.count = (uint32_t)(*pos - l.start);
	if (!l.count)
		return;
	ix->order[(*pos)++] = IX_END;
	for (i = ix_hash(ix, k->meta, k->k0, k->k1); ix->slots[i & ix->mask].meta; i++)
		;
	ix->slots[i & ix->mask] = (struct ix_slot){ .k0 = k->k0, .k1 = k->k1, .meta = k->meta, .l = l };
	ix->info.keys++;
	ix->info.keyed += l.count;
	ix_set_longest(ix, l.count);
	if (kind == IX_DPORT || kind == IX_SPORT) {
		ix->ports[kind == IX_SPORT] = true;
	} else {
		unsigned int v6 = (k->meta >> 16) & 1, src = kind == IX_SRC, len = k->meta & 0xff;
		uint64_t *used = &ix->lens[v6][src][(len - 1) / 64], bit = 1ULL << ((len - 1) % 64);
		uint64_t m[2];

		if (*used & bit)
			return;
		*used |= bit;
		ix_prefix_mask(len, m);
		ix->probes[v6][src][len] = (struct ix_probe){ .m0 = m[0], .m1 = m[1], .meta = k->meta };
		ix->info.lengths++;
	}
}

static unsigned int ix_popcount(const uint64_t m[2])
{
	return (unsigned int)(__builtin_popcountll(m[0]) + __builtin_popcountll(m[1]));
}

/* The first 64 bits of an address (IPv4: 32, then 0) as a number. */
static inline uint64_t ix_top(const uint8_t *addr, bool v6)
{
	uint64_t hi = get_be32(addr);

	return hi << 32 | (v6 ? get_be32(addr + 4) : 0);
}

static inline uint32_t ix_filter_at(const struct ix_filter *f, uint64_t top)
{
	return (uint32_t)(((top & f->keep) * 0x9e3779b97f4a7c15ULL) >> f->shift) & f->mask;
}

/* The address bytes of a keyed prefix, as a packet carries them. */
static const uint8_t *ix_slot_addr(const struct ix_slot *s, uint8_t b[16])
{
	memcpy(b, &s->k0, 8);
	memcpy(b + 8, &s->k1, 8);
	return b;
}

/* The filters of the fields with two prefix lengths or more, from the keyed prefixes. */
static int ix_filters(struct chain_index *ix)
{
	for (unsigned int v6 = 0; v6 < 2; v6++) {
		for (unsigned int src = 0; src < 2; src++) {
			struct ix_filter *f = &ix->filter[v6][src];
			const uint64_t *lens = ix->lens[v6][src];
			unsigned int below = 0, nlens = ix_popcount(lens), always;
			size_t n = 0, size;

			if (nlens < 2)
				continue;
			always = nlens - 2 < IX_FILTER_ALWAYS ? nlens - 2 : IX_FILTER_ALWAYS;
			for (unsigned int len = 1; len < IX_LENS; len++) {
				if (!(lens[(len - 1) / 64] & 1ULL << ((len - 1) % 64)))
					continue;
				if (below++ == always) {
					f->bits = len < 64 ? len : 64;
					break;
				}
			}
			f->keep = f->bits < 64 ? ~(~0ULL >> f->bits) : ~0ULL;
			for (uint32_t i = 0; i <= ix->mask; i++) {
				const struct ix_slot *s = &ix->slots[i];

				n += s->meta >> 24 == (src ? IX_SRC : IX_DST) &&
				     ((s->meta >> 16) & 1) == v6 && (s->meta & 0xff) >= f->bits;
			}
			for (size = 64, f->shift = 64 - 6; size < 2 * n && size < IX_FILTER_SLOTS_MAX;
			     size *= 2)
				f->shift--;
			f->slot = calloc(size, sizeof(*f->slot));
			if (!f->slot)
				return -ENOMEM;
			f->mask = (uint32_t)(size - 1);
		}
	}
	for (uint32_t i = 0; i <= ix->mask; i++) {
		const struct ix_slot *s = &ix->slots[i];
		unsigned int kind = s->meta >> 24, v6 = (s->meta >> 16) & 1, len = s->meta & 0xff;
		uint64_t bit = 1ULL << ((len - 1) % 64);
		struct ix_filter *f;
		uint8_t b[16];

		if (kind != IX_DST && kind != IX_SRC)
			continue;
		f = &ix->filter[v6][kind == IX_SRC];
		if (!f->slot)
			continue;
		if (len < f->bits)
			f->always[(len - 1) / 64] |= bit;
		else
			f->slot[ix_filter_at(f, ix_top(ix_slot_addr(s, b), v6))][(len - 1) / 64] |= bit;
	}
	return 0;
}

static int ix_build(struct chain_index *ix, const struct rule *rules, size_t n, unsigned int dir)
{
	_cleanup_(freep) struct ix_cand *cand = NULL;
	_cleanup_(freep) uint32_t *best = NULL;
	size_t nc = 0, pos = 0, nkeys = 0, size;

	/* Each rule once, and an IX_END after each list: at most one per rule. */
	ix->order = calloc(2 * n + 1, sizeof(*ix->order));
	cand = calloc(n ? 4 * n : 1, sizeof(*cand));
	best = malloc((n ? n : 1) * sizeof(*best));
	if (!ix->order || !cand || !best)
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		best[i] = IX_NONE;
		if (rule_dir_mask(&rules[i]) & (1u << dir))
			nc += ix_keys(&rules[i].m, (uint32_t)i, &cand[nc]);
	}
	qsort(cand, nc, sizeof(*cand), ix_cand_cmp);
	for (size_t a = 0, b; a < nc; a = b) {
		for (b = a + 1; b < nc && ix_same_key(&cand[a], &cand[b]); b++)
			;
		for (size_t j = a; j < b; j++)
			cand[j].shared = (uint32_t)(b - a);
	}
	for (size_t j = 0; j < nc; j++) {
		uint32_t *bj = &best[cand[j].rule];

		if (*bj == IX_NONE || ix_better(&cand[j], &cand[*bj]))
			*bj = (uint32_t)j;
	}

	/* Generic rules first, each list in rule order. */
	for (size_t i = 0; i < n; i++) {
		const struct rule_match *m = &rules[i].m;

		if (best[i] == IX_NONE && (rule_dir_mask(&rules[i]) & (1u << dir)))
			ix->generic[ix_family(m->family)][m->flags & RULE_M_PROTO ? m->proto : IX_ANY]
				.count++;
	}
	for (size_t f = 0; f < 3; f++) {
		for (size_t pr = 0; pr < IX_PROTOS; pr++) {
			struct ix_list *l = &ix->generic[f][pr];

			l->start = (uint32_t)pos;
			pos += l->count ? l->count + 1 : 0;
			ix->info.generic += l->count;
			ix_set_longest(ix, l->count);
			l->count = 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct rule_match *m = &rules[i].m;
		struct ix_list *l;

		if (best[i] != IX_NONE || !(rule_dir_mask(&rules[i]) & (1u << dir)))
			continue;
		l = &ix->generic[ix_family(m->family)][m->flags & RULE_M_PROTO ? m->proto : IX_ANY];
		ix->order[l->start + l->count++] = (uint32_t)i;
		ix->order[l->start + l->count] = IX_END;
	}

	/* Then one list per key some rule chose, in a table at most half full. */
	for (size_t a = 0, b; a < nc; a = b) {
		bool chosen = false;

		for (b = a; b < nc && ix_same_key(&cand[a], &cand[b]); b++)
			chosen |= best[cand[b].rule] == b;
		nkeys += chosen;
	}
	if (!nkeys)
		return 0;
	for (size = 16, ix->shift = 64 - 4; size < 2 * nkeys; size *= 2)
		ix->shift--;
	ix->slots = calloc(size, sizeof(*ix->slots));
	if (!ix->slots)
		return -ENOMEM;
	ix->mask = (uint32_t)(size - 1);
	for (size_t a = 0, b; a < nc; a = b) {
		for (b = a + 1; b < nc && ix_same_key(&cand[a], &cand[b]); b++)
			;
		ix_add_key(ix, cand, a, b, best, &pos);
	}
	return ix_filters(ix);
}

struct chain_index *chain_index_free(struct chain_index *ix)
{
	if (ix) {
		for (size_t v6 = 0; v6 < 2; v6++)
			for (size_t src = 0; src < 2; src++)
				free(ix->filter[v6][src].slot);
		free(ix->slots);
		free(ix->order);
		free(ix);
	}
	return NULL;
}

int chain_index_new(const struct rule *rules, size_t n, unsigned int dir,
		    struct chain_index **ret)
{
	struct chain_index *ix;
	int r;

	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	r = ix_build(ix, rules, n, dir);
	if (r < 0) {
		chain_index_free(ix);
		return r;
	}
	*ret = ix;
	return 0;
}

const struct chain_index_info *chain_index_get_info(const struct chain_index *ix)
{
	return &ix->info;
}

/* The head of each list being merged. */
static inline void ix_take(const struct chain_index *ix, struct ix_list l, const uint32_t **cur,
			   size_t *k)
{
	if (l.count)
		cur[(*k)++] = ix->order + l.start;
}

/*
 * The lists of the rules p could match, into cur (room for IX_CURSORS).
 * Only fields that no action rewrites are looked at: addresses, proto,
 * ports.
 */
size_t chain_index_gather(const struct chain_index *ix, const struct pkt *p, const uint32_t **cur)
{
	const struct ix_slot *s;
	unsigned int v6 = p->family == AF_INET6, pr = p->l4proto;
	size_t k = 0;

	ix_take(ix, ix->generic[0][IX_ANY], cur, &k);
	ix_take(ix, ix->generic[0][pr], cur, &k);
	ix_take(ix, ix->generic[1 + v6][IX_ANY], cur, &k);
	ix_take(ix, ix->generic[1 + v6][pr], cur, &k);
	if (!ix->mask)
		return k;
	if (l4_usable(p)) {
		if (ix->ports[0] && (s = ix_find(ix, (uint32_t)IX_DPORT << 24 | pr, p->dport, 0)))
			ix_take(ix, s->l, cur, &k);
		if (ix->ports[1] && (s = ix_find(ix, (uint32_t)IX_SPORT << 24 | pr, p->sport, 0)))
			ix_take(ix, s->l, cur, &k);
	}
	for (unsigned int src = 0; src < 2; src++) {
		const struct ix_filter *f = &ix->filter[v6][src];
		const uint8_t *addr;
		uint64_t a[2], m[2] = { ix->lens[v6][src][0], ix->lens[v6][src][1] };

		if (!(m[0] | m[1]))
			continue;
		addr = src ? pkt_saddr(p) : pkt_daddr(p);
		if (f->slot) {
			const uint64_t *w = f->slot[ix_filter_at(f, ix_top(addr, v6))];

			m[0] = f->always[0] | w[0];
			m[1] = f->always[1] | w[1];
		}
		addr_words(addr, p->family, a);
		for (unsigned int w = 0; w < 2; w++) {
			for (; m[w]; m[w] &= m[w] - 1) {
				unsigned int len = 64 * w + (unsigned int)__builtin_ctzll(m[w]) + 1;
				const struct ix_probe *pb = &ix->probes[v6][src][len];

				s = ix_find(ix, pb->meta, a[0] & pb->m0, a[1] & pb->m1);
				if (s)
					ix_take(ix, s->l, cur, &k);
			}
		}
	}
	return k;
}
