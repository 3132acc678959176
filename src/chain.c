/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rule chain: a contiguous, immutable array of compiled rules, tried in
 * order through an index (family, proto, ports, prefixes) that skips only
 * rules a packet cannot match.  Matching reads only struct rule_match
 * (cheapest tests first); the per-rule counters, ids and the impairment
 * state of impairing rules live in separate arrays so that the rules stay
 * read-only.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "chain.h"
#include "forge.h"
#include "tracelink.h"
#include "util.h"

#define NSEC_PER_SEC 1000000000ULL
#define FORGE_COST_NS (NSEC_PER_SEC / CHAIN_FORGE_RATE)
#define FORGE_BUCKET_NS (FORGE_COST_NS * CHAIN_FORGE_BURST)

#define TCP_FLAG_SYN 0x02

#define NO_FLOW UINT32_MAX

_Static_assert(RULE_DIR_OUT == 1u << PKT_DIR_OUT && RULE_DIR_IN == 1u << PKT_DIR_IN,
	       "struct rule.dir_mask has a bit per enum pkt_dir");

struct chain_counter {
	uint64_t pkts;
	uint64_t bytes;
};

struct chain_slot {
	uint32_t id;		/* chain_rule_id() */
	uint32_t flow;		/* index in flows, NO_FLOW when the rule does not impair */
	uint64_t expire_at_ns;	/* expire=: when it goes (chain_expiry_start()); 0 never */
};

struct chain_id {
	uint32_t id;
	uint32_t i;		/* index of the rule */
};

struct name_ref {
	const char *name;
	size_t i;
};

struct chain_index;

struct chain {
	unsigned int refs;
	size_t n;
	bool linear;		/* chain_set_linear() */
	bool gso_variant;	/* some rule needs the segments of a GSO packet (chain_gso_whole()) */
	struct chain_index *ix[2];	/* [enum pkt_dir]: the rules of that direction */
	struct name_ref *names;	/* sorted by name, for chain_find() */
	struct chain_counter *ctr;
	struct chain_slot *slot;
	struct chain_id *by_id;	/* sorted by id, for chain_find_id() */
	struct impair_flow *flows;
	size_t nflows;
	uint32_t next_id;	/* the lowest id no rule of this chain or its ancestors had */
	struct chain_stats stats;
	uint64_t rng;		/* splitmix64 state */
	struct impair_rng irng;	/* impairment */
	uint64_t bucket_ns;	/* forge credit, in nanoseconds of refill */
	uint64_t bucket_last_ns;
	bool bucket_started;
	struct rule rules[];
};

/* splitmix64 (Steele, Lea, Flood): one add and two multiplies, good enough for probability=. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int name_ref_cmp(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Sorting keeps this O(n log n) for large chains; it runs on load, not per
 * packet.  The sorted names stay for chain_find(), which chain_inherit()
 * calls for every rule.
 */
static int check_names(struct chain *c, char *err, size_t errlen)
{
	struct name_ref *refs;

	refs = calloc(c->n ? c->n : 1, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	c->names = refs;
	for (size_t i = 0; i < c->n; i++)
		refs[i] = (struct name_ref){ .name = c->rules[i].name, .i = i };
	qsort(refs, c->n, sizeof(*refs), name_ref_cmp);
	for (size_t i = 1; i < c->n; i++) {
		if (strcmp(refs[i - 1].name, refs[i].name) != 0)
			continue;
		if (err && errlen)
			snprintf(err, errlen, "rule %zu: name '%s' is already used by rule %zu",
				 refs[i].i + 1, refs[i].name, refs[i - 1].i + 1);
		return -EEXIST;
	}
	return 0;
}

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
#define IX_LENS 129
/* The lists one packet can gather: 4 generic, 2 port kinds, dst and src lengths of a family. */
#define IX_CURSORS (4 + 2 + 2 * IX_LENS)
/*
 * From two prefix lengths in one field on, a filter picks the lengths worth
 * a lookup, by the first bits of the address that all but at most this many
 * of them cover (a short prefix or two should not make the filter useless).
 */
#define IX_FILTER_ALWAYS 2
#define IX_FILTER_SLOTS_MAX 65536

/* Lists end with IX_END, so that merging them needs no bounds: it sorts last. */
#define IX_END UINT32_MAX

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

/* The index of the rules that match direction dir (enum pkt_dir). */
static int ix_build(struct chain *c, unsigned int dir)
{
	_cleanup_(freep) struct ix_cand *cand = NULL;
	_cleanup_(freep) uint32_t *best = NULL;
	struct chain_index *ix;
	size_t n = c->n, nc = 0, pos = 0, nkeys = 0, size;

	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	c->ix[dir] = ix;
	/* Each rule once, and an IX_END after each list: at most one per rule. */
	ix->order = calloc(2 * n + 1, sizeof(*ix->order));
	cand = calloc(n ? 4 * n : 1, sizeof(*cand));
	best = malloc((n ? n : 1) * sizeof(*best));
	if (!ix->order || !cand || !best)
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		best[i] = IX_NONE;
		if (rule_dir_mask(&c->rules[i]) & (1u << dir))
			nc += ix_keys(&c->rules[i].m, (uint32_t)i, &cand[nc]);
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
		const struct rule_match *m = &c->rules[i].m;

		if (best[i] == IX_NONE && (rule_dir_mask(&c->rules[i]) & (1u << dir)))
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
		const struct rule_match *m = &c->rules[i].m;
		struct ix_list *l;

		if (best[i] != IX_NONE || !(rule_dir_mask(&c->rules[i]) & (1u << dir)))
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

static struct chain_index *ix_free(struct chain_index *ix)
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

void chain_index_info(const struct chain *c, struct chain_index_info *ret)
{
	*ret = c->ix[PKT_DIR_OUT]->info;
}

void chain_index_info_dir(const struct chain *c, unsigned int dir, struct chain_index_info *ret)
{
	*ret = c->ix[dir == PKT_DIR_IN]->info;
}

void chain_set_linear(struct chain *c, bool linear)
{
	c->linear = linear;
}

/*
 * The TCP flags every segment of a TSO super-packet has as the super-packet
 * has them: the kernel leaves CWR on the first segment only, FIN and PSH on
 * the last only, and URG where the urgent pointer falls.  A tcp-flags match
 * on these alone (syn, !syn, ack, rst, ece) is the same for all segments.
 */
#define GSO_TCP_FLAGS_SAME (0x02 | 0x04 | 0x10 | 0x40)

uint32_t chain_rule_gso_vary(const struct rule *r, bool tcp)
{
	uint32_t v = r->m.flags & (RULE_M_LENGTH | RULE_M_PROBABILITY);

	if ((r->m.flags & RULE_M_TCP_FLAGS) && tcp && (r->m.tcp_mask & ~GSO_TCP_FLAGS_SAME))
		v |= RULE_M_TCP_FLAGS;
	return v;
}

/*
 * A rule that works on segments: a match that differs between them, a
 * forged answer (to one segment), impairment (per packet).  set-ttl,
 * set-dscp, set-ecn, accept and drop do the same to every segment;
 * clamp-mss acts on SYNs, which are never GSO.
 */
static bool rule_gso_segments(const struct rule *r, uint32_t vary)
{
	return vary || r->a.verdict == RULE_VERDICT_REPLY || r->a.verdict == RULE_VERDICT_REJECT ||
	       rule_impairs(r);
}

/*
 * The trace link of a rule with rate=@PATH: read the trace now (the one
 * file chain.c reads).  -EBADMSG with the message in err for a bad trace.
 */
static int flow_link(struct impair_flow *f, const struct rule_impair *cfg, const char *name,
		     const struct tl_trace *have, char *err, size_t errlen)
{
	struct tl_config tc = {
		.queue_pkts = cfg->queue_pkts ? cfg->queue_pkts : cfg->limit,
		.queue_bytes = cfg->queue_bytes,
		.aqm = cfg->aqm == RULE_AQM_CODEL ? TL_AQM_CODEL : TL_AQM_DROPTAIL,
		.codel_target_ns = (uint64_t)(cfg->codel_target_us ? cfg->codel_target_us :
					      TL_CODEL_TARGET_US) * 1000,
		.codel_interval_ns = (uint64_t)(cfg->codel_interval_us ? cfg->codel_interval_us :
						TL_CODEL_INTERVAL_US) * 1000,
	};
	struct tl_trace tr;
	char msg[256];
	int r;

	if (have) {
		tl_trace_share(&tr, have);
		r = 0;
	} else {
		r = tl_trace_load(cfg->trace, &tr, msg, sizeof(msg));
	}
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		if (err && errlen)
			snprintf(err, errlen, "rule '%s': rate: trace %s", name, msg);
		return -EBADMSG;
	}
	f->link = malloc(sizeof(*f->link));
	if (!f->link) {
		tl_trace_free(&tr);
		return -ENOMEM;
	}
	r = tl_link_init(f->link, &tr, &tc);
	if (r < 0) {
		free(f->link);
		f->link = NULL;
	}
	return r;
}

/* The trace of the rule old has unchanged (name and definition), or NULL. */
static const struct tl_trace *old_trace(const struct chain *old, const struct rule *r)
{
	int j;

	if (!old)
		return NULL;
	j = chain_find(old, r->name);
	if (j < 0 || !rule_equal(r, &old->rules[j]) || old->slot[j].flow == NO_FLOW ||
	    !old->flows[old->slot[j].flow].link)
		return NULL;
	return &old->flows[old->slot[j].flow].link->tr;
}

int chain_new(struct rule *const *rules, size_t n, struct chain **ret, char *err, size_t errlen)
{
	return chain_new_from(rules, n, NULL, ret, err, errlen);
}

int chain_new_from(struct rule *const *rules, size_t n, const struct chain *old,
		   struct chain **ret, char *err, size_t errlen)
{
	struct chain *c;
	struct timespec ts;
	int r;

	if (n > CHAIN_RULES_MAX) {
		if (err && errlen)
			snprintf(err, errlen, "%zu rules, at most %d", n, CHAIN_RULES_MAX);
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++) {
		if (!rules[i]) {
			if (err && errlen)
				snprintf(err, errlen, "rule %zu missing", i + 1);
			return -EINVAL;
		}
	}

	c = calloc(1, sizeof(*c) + n * sizeof(struct rule));
	if (!c)
		return -ENOMEM;
	c->refs = 1;
	c->n = n;
	c->ctr = calloc(n ? n : 1, sizeof(*c->ctr));
	c->slot = calloc(n ? n : 1, sizeof(*c->slot));
	c->by_id = calloc(n ? n : 1, sizeof(*c->by_id));
	if (!c->ctr || !c->slot || !c->by_id) {
		chain_unref(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(&c->rules[i], rules[i], sizeof(struct rule));
		rule_ref_tables(&c->rules[i]);
		if (!c->rules[i].name[0])
			snprintf(c->rules[i].name, sizeof(c->rules[i].name), "rule-%zu", i + 1);
		c->slot[i] = (struct chain_slot){ .id = (uint32_t)i + 1, .flow = NO_FLOW };
		c->by_id[i] = (struct chain_id){ .id = (uint32_t)i + 1, .i = (uint32_t)i };
		if (rule_impairs(&c->rules[i]))
			c->nflows++;
		if (rule_gso_segments(&c->rules[i], chain_rule_gso_vary(&c->rules[i], true)))
			c->gso_variant = true;
	}
	c->next_id = (uint32_t)n + 1;
	r = check_names(c, err, errlen);
	if (r < 0) {
		chain_unref(c);
		return r;
	}
	r = ix_build(c, PKT_DIR_OUT);
	if (r == 0)
		r = ix_build(c, PKT_DIR_IN);
	if (r < 0) {
		chain_unref(c);
		return r;
	}

	if (c->nflows) {
		c->flows = calloc(c->nflows, sizeof(*c->flows));
		if (!c->flows) {
			chain_unref(c);
			return -ENOMEM;
		}
	}
	for (size_t i = 0, k = 0; i < n; i++) {
		if (!rule_impairs(&c->rules[i]))
			continue;
		r = impair_flow_init(&c->flows[k], &c->rules[i].impair);
		if (r == 0 && c->rules[i].impair.trace[0])
			r = flow_link(&c->flows[k], &c->rules[i].impair, c->rules[i].name,
				      old_trace(old, &c->rules[i]), err, errlen);
		if (r == -EBADMSG) {
			/* flow_link() wrote the message. */
			chain_unref(c);
			return -EINVAL;
		}
		if (r < 0) {
			if (err && errlen)
				snprintf(err, errlen, "rule '%s': impairment: %s", c->rules[i].name,
					 strerror(-r));
			/* The failed flow and those after it are zeroed: done() frees nothing there. */
			chain_unref(c);
			return r;
		}
		c->slot[i].flow = (uint32_t)k++;
	}

	clock_gettime(CLOCK_MONOTONIC, &ts);
	chain_seed(c, (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec);
	c->bucket_ns = FORGE_BUCKET_NS;
	*ret = c;
	return 0;
}

struct chain *chain_ref(struct chain *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

struct chain *chain_unref(struct chain *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return NULL;
	for (size_t k = 0; c->flows && k < c->nflows; k++)
		impair_flow_done(&c->flows[k]);
	free(c->flows);
	ix_free(c->ix[PKT_DIR_OUT]);
	ix_free(c->ix[PKT_DIR_IN]);
	for (size_t i = 0; i < c->n; i++)
		rule_unref_tables(&c->rules[i]);
	free(c->names);
	free(c->by_id);
	free(c->slot);
	free(c->ctr);
	free(c);
	return NULL;
}

size_t chain_size(const struct chain *c)
{
	return c ? c->n : 0;
}

const struct rule *chain_rule(const struct chain *c, size_t i)
{
	return i < c->n ? &c->rules[i] : NULL;
}

static int name_key_cmp(const void *key, const void *e)
{
	return strcmp(key, ((const struct name_ref *)e)->name);
}

int chain_find(const struct chain *c, const char *name)
{
	const struct name_ref *e = bsearch(name, c->names, c->n, sizeof(*c->names), name_key_cmp);

	return e ? (int)e->i : -ENOENT;
}

void chain_counters(const struct chain *c, size_t i, uint64_t *ret_pkts, uint64_t *ret_bytes)
{
	const struct chain_counter *ctr = i < c->n ? &c->ctr[i] : &(struct chain_counter){ 0 };

	if (ret_pkts)
		*ret_pkts = ctr->pkts;
	if (ret_bytes)
		*ret_bytes = ctr->bytes;
}

void chain_stats(const struct chain *c, struct chain_stats *ret)
{
	*ret = c->stats;
}

bool chain_impair_counters(const struct chain *c, size_t i, struct impair_counters *ret)
{
	if (i >= c->n || c->slot[i].flow == NO_FLOW) {
		memset(ret, 0, sizeof(*ret));
		return false;
	}
	*ret = c->flows[c->slot[i].flow].cnt;
	return true;
}

void chain_reset_counters(struct chain *c)
{
	memset(c->ctr, 0, c->n * sizeof(*c->ctr));
	memset(&c->stats, 0, sizeof(c->stats));
	for (size_t k = 0; k < c->nflows; k++)
		memset(&c->flows[k].cnt, 0, sizeof(c->flows[k].cnt));
}

uint32_t chain_rule_id(const struct chain *c, size_t i)
{
	return i < c->n ? c->slot[i].id : 0;
}

static int id_cmp(const void *a, const void *b)
{
	const struct chain_id *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

int chain_find_id(const struct chain *c, uint32_t id)
{
	const struct chain_id key = { .id = id }, *e;

	e = bsearch(&key, c->by_id, c->n, sizeof(*c->by_id), id_cmp);
	return e ? (int)e->i : -ENOENT;
}

/* The state of an unchanged impairing rule: the same cfg, so the same limit. */
static void flow_inherit(struct impair_flow *f, const struct impair_flow *old)
{
	f->ge = old->ge;
	f->shaper = old->shaper;
	f->rng = old->rng;
	if (f->link && old->link)
		tl_link_inherit(f->link, old->link);
	impair_flow_copy_held(f, old);
	f->cnt = old->cnt;
}

/*
 * chain_find(old, name), trying guess first (just past where the previous
 * name was found): an edit inserts, removes or changes a few rules and
 * shifts the rest, so most lookups of a large reload cost one strcmp().
 */
static int find_near(const struct chain *old, const char *name, size_t guess)
{
	if (guess < old->n && strcmp(old->rules[guess].name, name) == 0)
		return (int)guess;
	return chain_find(old, name);
}

void chain_inherit(struct chain *c, const struct chain *old)
{
	uint32_t next = old->next_id;
	size_t guess = 0;
	int j;

	for (size_t i = 0; i < c->n; i++) {
		j = find_near(old, c->rules[i].name, guess);
		if (j >= 0)
			guess = (size_t)j + 1;
		if (j < 0 || !rule_equal(&c->rules[i], &old->rules[j])) {
			c->slot[i].id = next++;
			continue;
		}
		c->slot[i].id = old->slot[j].id;
		c->slot[i].expire_at_ns = old->slot[j].expire_at_ns;
		c->ctr[i] = old->ctr[j];
		if (c->slot[i].flow != NO_FLOW && old->slot[j].flow != NO_FLOW)
			flow_inherit(&c->flows[c->slot[i].flow], &old->flows[old->slot[j].flow]);
	}
	c->next_id = next;
	for (size_t i = 0; i < c->n; i++)
		c->by_id[i] = (struct chain_id){ .id = c->slot[i].id, .i = (uint32_t)i };
	qsort(c->by_id, c->n, sizeof(*c->by_id), id_cmp);
	c->stats = old->stats;
	c->bucket_ns = old->bucket_ns;
	c->bucket_last_ns = old->bucket_last_ns;
	c->bucket_started = old->bucket_started;
}

static const char *const result_names[CHAIN_RESULT_MAX] = {
	[CHAIN_RESULT_DEFAULT] = "accept",
	[CHAIN_RESULT_ACCEPT] = "accept",
	[CHAIN_RESULT_DROP] = "drop",
	[CHAIN_RESULT_REPLY] = "reply",
	[CHAIN_RESULT_REJECT] = "reject",
	[CHAIN_RESULT_REFUSED] = "refused",
	[CHAIN_RESULT_LIMITED] = "limited",
};

const char *chain_result_name(int result)
{
	return result >= 0 && result < CHAIN_RESULT_MAX ? result_names[result] : "?";
}

void chain_seed(struct chain *c, uint64_t seed)
{
	c->rng = seed;
	impair_rng_seed(&c->irng, seed);
}

static inline bool in_range(unsigned int v, unsigned int lo, unsigned int hi)
{
	return v - lo <= hi - lo;
}

/*
 * An address as the two words struct rule_prefix keeps (memory order, an
 * IPv4 address in the first 4 bytes).  Loaded whole: a 4-byte copy into a
 * zeroed word read back at once stalls the store forwarding.
 */
static inline void addr_words(const uint8_t *addr, int family, uint64_t a[2])
{
	if (family == AF_INET) {
		uint32_t x;

		memcpy(&x, addr, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		a[0] = x;
#else
		a[0] = (uint64_t)x << 32;
#endif
		a[1] = 0;
		return;
	}
	memcpy(&a[0], addr, 8);
	memcpy(&a[1], addr + 8, 8);
}

static inline bool prefix_match(const struct rule_prefix *pf, const uint8_t *addr, int family)
{
	uint64_t a[2];

	addr_words(addr, family, a);
	return (((a[0] ^ pf->addr[0]) & pf->mask[0]) | ((a[1] ^ pf->addr[1]) & pf->mask[1])) == 0;
}

static inline bool l4_usable(const struct pkt *p)
{
	return p->l4_complete && (!p->fragment || p->first_fragment);
}

/*
 * A negated match (!) is still a match on the field, so a packet without an
 * L4 header never matches sport/dport/icmp-type/icmp-code/tcp-flags, even
 * negated ones.  Only the matches in f count.
 */
/*
 * 53 random bits for probability=: from the rule's own generator when it
 * has seed= (every random decision of a seeded rule is its own), else the
 * chain's.  m is c->rules[i].m (the first member of struct rule).
 */
_Static_assert(offsetof(struct rule, m) == 0, "prob_draw() finds the rule from its match");

static uint64_t prob_draw(struct chain *c, const struct rule_match *m)
{
	uintptr_t at = (uintptr_t)m, base = (uintptr_t)c->rules;
	size_t i = (at - base) / sizeof(struct rule);

	if (at >= base && i < c->n && c->slot[i].flow != NO_FLOW &&
	    c->flows[c->slot[i].flow].seeded)
		return impair_rng_next(&c->flows[c->slot[i].flow].rng) >> 11;
	return rng_next(&c->rng) >> 11;
}

/* p's direction as a RULE_DIR_* bit; anything but PKT_DIR_IN is out, as the index has it. */
static inline unsigned int pkt_dir_bit(const struct pkt *p)
{
	return p->dir == PKT_DIR_IN ? RULE_DIR_IN : RULE_DIR_OUT;
}

static inline bool match_some(struct chain *c, const struct rule *r, const struct pkt *p,
			      uint32_t f)
{
	const struct rule_match *m = &r->m;

	if (!(rule_dir_mask(r) & pkt_dir_bit(p)))
		return false;
	if (m->family && m->family != p->family)
		return false;
	if ((f & RULE_M_PROTO) && m->proto != p->l4proto)
		return false;

	if (f & RULE_M_L4) {
		if (!l4_usable(p))
			return false;
		if ((f & RULE_M_SPORT) &&
		    in_range(p->sport, m->sport_lo, m->sport_hi) == !!(f & RULE_M_SPORT_NOT))
			return false;
		if ((f & RULE_M_DPORT) &&
		    in_range(p->dport, m->dport_lo, m->dport_hi) == !!(f & RULE_M_DPORT_NOT))
			return false;
		if (f & (RULE_M_ICMP4_TYPE | RULE_M_ICMP6_TYPE)) {
			if (p->l4proto == IPPROTO_ICMP) {
				if (!(f & RULE_M_ICMP4_TYPE) || p->icmp_type != m->icmp_type[0])
					return false;
			} else if (p->l4proto == IPPROTO_ICMPV6) {
				if (!(f & RULE_M_ICMP6_TYPE) || p->icmp_type != m->icmp_type[1])
					return false;
			} else {
				return false;
			}
		}
		if ((f & RULE_M_ICMP_CODE) &&
		    ((p->l4proto != IPPROTO_ICMP && p->l4proto != IPPROTO_ICMPV6) ||
		     p->icmp_code != m->icmp_code))
			return false;
		if ((f & RULE_M_TCP_FLAGS) && (p->tcp_flags & m->tcp_mask) != m->tcp_set)
			return false;
	}

	if ((f & RULE_M_SRC) &&
	    prefix_match(&m->src, pkt_saddr(p), p->family) == !!(f & RULE_M_SRC_NOT))
		return false;
	if ((f & RULE_M_DST) &&
	    prefix_match(&m->dst, pkt_daddr(p), p->family) == !!(f & RULE_M_DST_NOT))
		return false;
	if ((f & RULE_M_TTL) && !in_range(pkt_ttl(p), m->ttl_lo, m->ttl_hi))
		return false;
	if ((f & RULE_M_LENGTH) && !in_range(pkt_ip_len(p), m->len_lo, m->len_hi))
		return false;
	if ((f & RULE_M_DSCP) && pkt_dscp(p) != m->dscp)
		return false;
	/* Last, so the generator only runs for packets that match otherwise. */
	if ((f & RULE_M_PROBABILITY) && c && prob_draw(c, m) >= m->prob_threshold)
		return false;
	return true;
}

static bool rule_match(struct chain *c, const struct rule *r, const struct pkt *p)
{
	return match_some(c, r, p, r->m.flags);
}

bool chain_rule_matches(const struct rule *r, const struct pkt *p)
{
	return rule_match(NULL, r, p);
}

static void rule_apply(const struct rule_action *a, struct pkt *p)
{
	if (a->ttl_op != RULE_TTL_KEEP) {
		unsigned int ttl = pkt_ttl(p), t = a->ttl;

		switch (a->ttl_op) {
		case RULE_TTL_INC:
			t = ttl + t > 255 ? 255 : ttl + t;
			break;
		case RULE_TTL_DEC:
			t = ttl > t ? ttl - t : 1;
			break;
		}
		if (t != ttl)
			pkt_set_ttl(p, (uint8_t)t);
	}
	if (a->set_dscp && pkt_dscp(p) != a->dscp)
		pkt_set_dscp(p, a->dscp);
	if (a->set_ecn && pkt_ecn(p) != a->ecn)
		pkt_set_ecn(p, a->ecn);
	if (a->clamp_mss && p->l4proto == IPPROTO_TCP && l4_usable(p) &&
	    (p->tcp_flags & TCP_FLAG_SYN))
		pkt_clamp_mss(p, a->clamp_mss);
}

/* Refill the token bucket up to now; a clock going backwards refills nothing. */
static bool bucket_has_token(struct chain *c, uint64_t now_ns)
{
	if (!c->bucket_started) {
		c->bucket_started = true;
		c->bucket_last_ns = now_ns;
	}
	if (now_ns > c->bucket_last_ns) {
		uint64_t d = now_ns - c->bucket_last_ns;

		c->bucket_ns = d >= FORGE_BUCKET_NS - c->bucket_ns ? FORGE_BUCKET_NS : c->bucket_ns + d;
	}
	c->bucket_last_ns = now_ns;
	return c->bucket_ns >= FORGE_COST_NS;
}

static bool is_echo_request(const struct pkt *p)
{
	if (!p->l4_complete)
		return false;
	if (p->family == AF_INET)
		return p->l4proto == IPPROTO_ICMP && p->icmp_type == 8;
	return p->l4proto == IPPROTO_ICMPV6 && p->icmp_type == 128;
}

static const enum forge_unreach unreach_kind[] = {
	[RULE_REJECT_PORT_UNREACH] = FORGE_UNREACH_PORT,
	[RULE_REJECT_NET_UNREACH] = FORGE_UNREACH_NET,
	[RULE_REJECT_HOST_UNREACH] = FORGE_UNREACH_HOST,
	[RULE_REJECT_PROTO_UNREACH] = FORGE_UNREACH_PROTO,
	[RULE_REJECT_ADMIN_PROHIBITED] = FORGE_UNREACH_ADMIN,
};

static enum chain_verdict chain_forge(struct chain *c, const struct rule_action *a,
				      const struct pkt *p, struct pkt *forged, uint64_t now_ns,
				      uint8_t *result)
{
	int r;

	*result = CHAIN_RESULT_REFUSED;
	if (!forged || !forged->data || (a->verdict == RULE_VERDICT_REPLY && !is_echo_request(p))) {
		c->stats.forge_refused++;
		return CHAIN_DROP;
	}
	/* Checked before forging so that a flood costs no forging work. */
	if (!bucket_has_token(c, now_ns)) {
		*result = CHAIN_RESULT_LIMITED;
		c->stats.forge_limited++;
		return CHAIN_DROP;
	}
	if (a->verdict == RULE_VERDICT_REPLY)
		r = forge_echo_reply(p, forged);
	else if (a->reject == RULE_REJECT_TCP_RESET)
		r = forge_tcp_reset(p, forged);
	else
		r = forge_unreachable(p, unreach_kind[a->reject], forged);
	if (r < 0) {
		c->stats.forge_refused++;
		return CHAIN_DROP;
	}
	c->bucket_ns -= FORGE_COST_NS;
	c->stats.forged++;
	*result = a->verdict == RULE_VERDICT_REPLY ? CHAIN_RESULT_REPLY : CHAIN_RESULT_REJECT;
	return CHAIN_FORGED;
}

void chain_explain(const struct chain *c, struct pkt *p, struct pkt *forged,
		   struct chain_explain *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->result = CHAIN_RESULT_DEFAULT;
	ret->end = -1;
	for (size_t i = 0; i < c->n; i++) {
		const struct rule *r = &c->rules[i];
		bool maybe = r->m.flags & RULE_M_PROBABILITY;
		int e;

		if (!rule_match(NULL, r, p))
			continue;
		if (ret->n < CHAIN_EXPLAIN_MAX) {
			ret->idx[ret->n] = (uint32_t)i;
			ret->maybe[ret->n] = maybe;
		}
		ret->n++;
		if (maybe)
			continue;
		rule_apply(&r->a, p);
		switch (r->a.verdict) {
		case RULE_VERDICT_NONE:
			continue;
		case RULE_VERDICT_ACCEPT:
			ret->result = CHAIN_RESULT_ACCEPT;
			break;
		case RULE_VERDICT_DROP:
			ret->result = CHAIN_RESULT_DROP;
			break;
		default:
			pkt_csum_complete(p);
			e = -EPERM;
			if (r->a.verdict == RULE_VERDICT_REPLY && is_echo_request(p))
				e = forge_echo_reply(p, forged);
			else if (r->a.verdict == RULE_VERDICT_REJECT && r->a.reject == RULE_REJECT_TCP_RESET)
				e = forge_tcp_reset(p, forged);
			else if (r->a.verdict == RULE_VERDICT_REJECT)
				e = forge_unreachable(p, unreach_kind[r->a.reject], forged);
			ret->result = e < 0 ? CHAIN_RESULT_REFUSED :
			      r->a.verdict == RULE_VERDICT_REPLY ? CHAIN_RESULT_REPLY : CHAIN_RESULT_REJECT;
			break;
		}
		ret->end = (int32_t)i;
		ret->impaired = rule_impairs(r) && ret->result != CHAIN_RESULT_REFUSED &&
				ret->result != CHAIN_RESULT_DROP;
		return;
	}
}

int chain_impair_corrupt(struct chain *c, struct pkt *p)
{
	return impair_corrupt(p, &c->irng);
}

int chain_impair_corrupt_imp(struct chain *c, const struct chain_impair *imp, struct pkt *p)
{
	struct impair_rng *g = &c->irng;

	if (imp->impaired && imp->rule < c->n && c->slot[imp->rule].flow != NO_FLOW &&
	    imp->id == c->slot[imp->rule].id)
		g = impair_flow_rng(&c->flows[c->slot[imp->rule].flow], g);
	return impair_corrupt(p, g);
}

void chain_expiry_start(struct chain *c, uint64_t now_ns)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->rules[i].expire_ms && !c->slot[i].expire_at_ns)
			c->slot[i].expire_at_ns = now_ns + (uint64_t)c->rules[i].expire_ms * 1000000;
}

uint64_t chain_rule_expire_at(const struct chain *c, size_t i)
{
	return c->slot[i].expire_at_ns;
}

bool chain_next_expiry(const struct chain *c, uint64_t *ret_at_ns)
{
	bool any = false;

	for (size_t i = 0; i < c->n; i++) {
		uint64_t t = c->slot[i].expire_at_ns;

		if (t && (!any || t < *ret_at_ns)) {
			*ret_at_ns = t;
			any = true;
		}
	}
	return any;
}

void chain_impair_refused(struct chain *c, struct chain_impair *imp, unsigned int k)
{
	struct impair_flow *f;

	if (!imp->impaired || k >= imp->res.n || imp->rule >= c->n ||
	    c->slot[imp->rule].flow == NO_FLOW)
		return;
	f = &c->flows[c->slot[imp->rule].flow];
	/* Its departure time stays among the flow's held ones: it counts against the limit until then. */
	if (f->cnt.delayed)
		f->cnt.delayed--;
	f->cnt.dropped_limit++;
	imp->events |= CHAIN_IMPAIR_LIMITED;
	memmove(&imp->res.copy[k], &imp->res.copy[k + 1],
		(imp->res.n - k - 1) * sizeof(imp->res.copy[0]));
	imp->res.n--;
}

static uint8_t impair_events(const struct impair_counters *a, const struct impair_counters *b)
{
	return (b->duplicated != a->duplicated ? CHAIN_IMPAIR_DUPLICATED : 0) |
	       (b->dropped_loss != a->dropped_loss ? CHAIN_IMPAIR_LOST : 0) |
	       (b->reordered != a->reordered ? CHAIN_IMPAIR_REORDERED : 0) |
	       (b->delayed != a->delayed ? CHAIN_IMPAIR_DELAYED : 0) |
	       (b->dropped_limit != a->dropped_limit ? CHAIN_IMPAIR_LIMITED : 0) |
	       (b->corrupted != a->corrupted ? CHAIN_IMPAIR_CORRUPTED : 0) |
	       (b->ce_marked != a->ce_marked ? CHAIN_IMPAIR_CE : 0);
}

/* Rule i impairs out, the packet verdict v sends. */
static enum chain_verdict chain_impair(struct chain *c, size_t i, struct pkt *out,
				       enum chain_verdict v, uint64_t now_ns,
				       struct chain_impair *imp)
{
	struct impair_flow *f = &c->flows[c->slot[i].flow];
	struct impair_counters before = f->cnt;
	struct chain_impair local;
	bool hold = imp != NULL;

	if (!imp)
		imp = &local;
	imp->impaired = true;
	imp->rule = (uint32_t)i;
	imp->id = c->slot[i].id;
	imp->now_ns = now_ns;
	impair_decide_ecn(f, &c->rules[i].impair, impair_flow_rng(f, &c->irng), now_ns, out->len,
			  pkt_ecn(out), &imp->res);
	/* loss-ecn: every copy carries the mark (the checksum follows). */
	if (imp->res.ce && pkt_ecn(out) != 3)
		pkt_set_ecn(out, 3);
	imp->events = impair_events(&before, &f->cnt);
	if (hold)
		return imp->res.n ? v : CHAIN_DROP;

	/* Nowhere to hold a copy: only one that leaves at once goes. */
	for (unsigned int k = 0; k < imp->res.n; k++) {
		if (imp->res.copy[k].at_ns > now_ns)
			continue;
		if (imp->res.copy[k].corrupt)
			impair_corrupt(out, impair_flow_rng(f, &c->irng));
		return v;
	}
	return CHAIN_DROP;
}

enum chain_verdict chain_run_trace(struct chain *c, struct pkt *p, struct pkt *forged,
				   uint64_t now_ns, struct chain_trace *trace)
{
	return chain_run_impair(c, p, forged, now_ns, trace, NULL);
}

/* Rule i matched p: count it, apply its actions; true when it ends the chain, with *v. */
static inline bool rule_hit(struct chain *c, uint32_t i, struct pkt *p, struct pkt *forged,
			    uint64_t now_ns, struct chain_trace *trace,
			    struct chain_impair *impair, enum chain_verdict *v)
{
	const struct rule *r = &c->rules[i];

	c->ctr[i].pkts += pkt_segs(p);
	c->ctr[i].bytes += pkt_seg_bytes(p);
	if (trace->n < CHAIN_TRACE_MAX)
		trace->idx[trace->n] = i;
	trace->n++;
	rule_apply(&r->a, p);

	switch (r->a.verdict) {
	case RULE_VERDICT_ACCEPT:
		trace->result = CHAIN_RESULT_ACCEPT;
		*v = CHAIN_ACCEPT;
		if (c->slot[i].flow != NO_FLOW)
			*v = chain_impair(c, i, p, CHAIN_ACCEPT, now_ns, impair);
		return true;
	case RULE_VERDICT_DROP:
		trace->result = CHAIN_RESULT_DROP;
		*v = CHAIN_DROP;
		return true;
	case RULE_VERDICT_REPLY:
	case RULE_VERDICT_REJECT:
		/* An unreachable quotes p: with its real checksum. */
		pkt_csum_complete(p);
		*v = chain_forge(c, &r->a, p, forged, now_ns, &trace->result);
		if (*v == CHAIN_FORGED && c->slot[i].flow != NO_FLOW)
			*v = chain_impair(c, i, forged, CHAIN_FORGED, now_ns, impair);
		return true;
	}
	return false;
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
static size_t ix_gather(const struct chain_index *ix, const struct pkt *p, const uint32_t **cur)
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

/* The lowest head of the k lists, which moves on; IX_END when all are done. */
static inline uint32_t ix_next(const uint32_t **cur, size_t k)
{
	uint32_t i = *cur[0];
	size_t j = 0;

	for (size_t t = 1; t < k; t++) {
		if (*cur[t] < i) {
			i = *cur[t];
			j = t;
		}
	}
	if (i != IX_END)
		cur[j]++;
	return i;
}

enum chain_verdict chain_run_impair(struct chain *c, struct pkt *p, struct pkt *forged,
				    uint64_t now_ns, struct chain_trace *trace,
				    struct chain_impair *impair)
{
	const uint32_t *cur[IX_CURSORS];
	struct chain_trace none;
	enum chain_verdict v;
	uint32_t i;
	size_t k;

	if (impair)
		impair->impaired = false;
	if (!trace)
		trace = &none;
	trace->n = 0;
	trace->result = CHAIN_RESULT_DEFAULT;

	if (unlikely(c->linear)) {
		for (i = 0; i < c->n; i++)
			if (rule_match(c, &c->rules[i], p) &&
			    rule_hit(c, i, p, forged, now_ns, trace, impair, &v))
				return v;
		return CHAIN_ACCEPT;
	}

	/* Merge the lists (each in rule order): the lowest head next, until all are at IX_END. */
	k = ix_gather(c->ix[p->dir == PKT_DIR_IN], p, cur);
	if (!k)
		return CHAIN_ACCEPT;
	while ((i = ix_next(cur, k)) != IX_END)
		if (rule_match(c, &c->rules[i], p) &&
		    rule_hit(c, i, p, forged, now_ns, trace, impair, &v))
			return v;
	return CHAIN_ACCEPT;
}

/*
 * Rule i in a dry walk for a GSO packet: -1 split, 1 whole, 0 go on.  The
 * walk sees the packet before any action, so a match it cannot be sure of
 * (one that varies between segments, or ttl and dscp, which an earlier
 * action may change) counts as a possible match that does not end the walk.
 */
static int gso_step(const struct chain *c, uint32_t i, const struct pkt *p)
{
	const struct rule *r = &c->rules[i];
	uint32_t vary = chain_rule_gso_vary(r, p->l4proto == IPPROTO_TCP), f = r->m.flags;
	uint32_t unsure = vary | RULE_M_TTL | RULE_M_DSCP;

	if (!match_some(NULL, r, p, f & ~unsure))
		return 0;
	if (rule_gso_segments(r, vary))
		return -1;
	if ((r->a.verdict == RULE_VERDICT_ACCEPT || r->a.verdict == RULE_VERDICT_DROP) &&
	    !(f & unsure))
		return 1;
	return 0;
}

bool chain_gso_whole(const struct chain *c, const struct pkt *p)
{
	const uint32_t *cur[IX_CURSORS];
	uint32_t i;
	size_t k;
	int r;

	if (!c->gso_variant)
		return true;
	if (c->linear) {
		for (i = 0; i < c->n; i++)
			if ((r = gso_step(c, i, p)) != 0)
				return r > 0;
		return true;
	}
	k = ix_gather(c->ix[p->dir == PKT_DIR_IN], p, cur);
	if (!k)
		return true;
	while ((i = ix_next(cur, k)) != IX_END)
		if ((r = gso_step(c, i, p)) != 0)
			return r > 0;
	return true;
}
