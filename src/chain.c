/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rule chain: a contiguous, immutable array of compiled rules, tried in
 * order through an index (family, proto, ports, prefixes; chain-index.c)
 * that skips only rules a packet cannot match.  Matching reads only struct rule_match
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

#include "chain-index.h"
#include "chain.h"
#include "hello.h"
#include "forge.h"
#include "hostset.h"
#include "prefixset.h"
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
	struct chain_sets_info sets;	/* sets (issue 14) */
	uint64_t rng;		/* splitmix64 state */
	struct impair_rng irng;	/* impairment */
	uint64_t bucket_ns;	/* forge credit, in nanoseconds of refill */
	uint64_t bucket_last_ns;
	bool bucket_started;
	/* chain_inherit_match(): the rule of match_old each rule inherits from, or -1. */
	int32_t *match;
	const struct chain *match_old;
	struct rule rules[];
};

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
		return err_set(err, errlen, -EEXIST, "rule %zu: name '%s' is already used by rule %zu",
			       refs[i].i + 1, refs[i].name, refs[i - 1].i + 1);
	}
	return 0;
}

void chain_index_info(const struct chain *c, struct chain_index_info *ret)
{
	*ret = *chain_index_get_info(c->ix[PKT_DIR_OUT]);
}

void chain_index_info_dir(const struct chain *c, unsigned int dir, struct chain_index_info *ret)
{
	*ret = *chain_index_get_info(c->ix[dir == PKT_DIR_IN]);
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

	/* A super-packet's segments have their own positions and byte offsets. */
	if (r->flow.flags & (RULE_F_PACKETS | RULE_F_BYTES))
		v |= RULE_M_FLOW;

	if ((r->m.flags & RULE_M_TCP_FLAGS) && tcp && (r->m.tcp_mask & ~GSO_TCP_FLAGS_SAME))
		v |= RULE_M_TCP_FLAGS;
	return v;
}

/*
 * A rule that works on segments: a match that differs between them, a
 * forged answer (to one segment), impairment (per packet), surgery
 * (surgery_apply() takes one packet; set-field of tcp.seq or ip.id, or a
 * strip, differ per segment or would be undone by the segmentation).  set-ttl,
 * set-dscp, set-ecn, accept and drop do the same to every segment;
 * clamp-mss acts on SYNs, which are never GSO.
 */
static bool rule_gso_segments(const struct rule *r, uint32_t vary)
{
	return vary || r->a.verdict == RULE_VERDICT_REPLY || r->a.verdict == RULE_VERDICT_REJECT ||
	       rule_impairs(r) || surgery_active(&r->surg);
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
	char msg[ERR_MAX];
	int r;

	if (have) {
		tl_trace_share(&tr, have);
		r = 0;
	} else {
		r = tl_trace_load(cfg->trace, &tr, msg, sizeof(msg));
	}
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return err_set(err, errlen, -EBADMSG, "rule '%s': rate: trace %s", name, msg);
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

/* sets (issue 14) */
static int set_ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const struct rule_set *const *)a;
	uintptr_t y = (uintptr_t)*(const struct rule_set *const *)b;

	return (x > y) - (x < y);
}

/*
 * The distinct lists of c's rules: sorted pointers, so n rules cost n log n.
 * At most RULE_SET_SCOPE_FILES of them: live rules cannot pile up copies.
 */
static int count_sets(struct chain *c, char *err, size_t errlen)
{
	const struct rule_set **v;
	size_t k = 0;

	memset(&c->sets, 0, sizeof(c->sets));
	for (size_t i = 0; i < c->n; i++)
		k += !!c->rules[i].m.src_set + !!c->rules[i].m.dst_set + !!c->rules[i].m.host_set;
	if (!k)
		return 0;
	v = calloc(k, sizeof(*v));
	if (!v)
		return -ENOMEM;
	k = 0;
	for (size_t i = 0; i < c->n; i++) {
		const struct rule_match *m = &c->rules[i].m;

		if (m->src_set)
			v[k++] = m->src_set;
		if (m->dst_set)
			v[k++] = m->dst_set;
		if (m->host_set)
			v[k++] = m->host_set;
	}
	qsort(v, k, sizeof(*v), set_ptr_cmp);
	for (size_t i = 0; i < k; i++) {
		if (i && v[i] == v[i - 1])
			continue;
		c->sets.sets++;
		c->sets.bytes += v[i]->bytes;
		if (v[i]->kind == RULE_SET_HOST)
			c->sets.names += v[i]->entries;
		else
			c->sets.prefixes += v[i]->entries;
	}
	free(v);
	if (c->sets.sets > RULE_SET_SCOPE_FILES)
		return err_set(err, errlen, -E2BIG, "%llu list files (src-set, dst-set, host-set), "
			       "at most %d", (unsigned long long)c->sets.sets, RULE_SET_SCOPE_FILES);
	return 0;
}

void chain_sets_info(const struct chain *c, struct chain_sets_info *ret)
{
	*ret = c->sets;
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

	if (n > CHAIN_RULES_MAX)
		return err_set(err, errlen, -E2BIG, "%zu rules, at most %d", n, CHAIN_RULES_MAX);
	for (size_t i = 0; i < n; i++)
		if (!rules[i])
			return err_set(err, errlen, -EINVAL, "rule %zu missing", i + 1);

	c = calloc(1, sizeof(*c) + n * sizeof(struct rule));
	if (!c)
		return -ENOMEM;
	c->refs = 1;
	c->n = n;
	c->ctr = calloc(n ? n : 1, sizeof(*c->ctr));
	c->slot = calloc(n ? n : 1, sizeof(*c->slot));
	c->by_id = calloc(n ? n : 1, sizeof(*c->by_id));
	c->match = calloc(n ? n : 1, sizeof(*c->match));
	if (!c->ctr || !c->slot || !c->by_id || !c->match) {
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
	if (r == 0)
		r = count_sets(c, err, errlen);
	if (r < 0) {
		chain_unref(c);
		return r;
	}
	r = chain_index_new(c->rules, c->n, PKT_DIR_OUT, &c->ix[PKT_DIR_OUT]);
	if (r == 0)
		r = chain_index_new(c->rules, c->n, PKT_DIR_IN, &c->ix[PKT_DIR_IN]);
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
			err_set(err, errlen, r, "rule '%s': impairment: %s", c->rules[i].name,
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
	chain_index_free(c->ix[PKT_DIR_OUT]);
	chain_index_free(c->ix[PKT_DIR_IN]);
	for (size_t i = 0; i < c->n; i++)
		rule_unref_tables(&c->rules[i]);
	free(c->names);
	free(c->match);
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

void chain_inherit_match(struct chain *c, const struct chain *old)
{
	uint32_t next = old->next_id;
	size_t guess = 0;
	int j;

	for (size_t i = 0; i < c->n; i++) {
		j = find_near(old, c->rules[i].name, guess);
		if (j >= 0)
			guess = (size_t)j + 1;
		if (j < 0 || !rule_equal(&c->rules[i], &old->rules[j])) {
			c->match[i] = -1;
			c->slot[i].id = next++;
			continue;
		}
		c->match[i] = j;
		c->slot[i].id = old->slot[j].id;
	}
	c->next_id = next;
	for (size_t i = 0; i < c->n; i++)
		c->by_id[i] = (struct chain_id){ .id = c->slot[i].id, .i = (uint32_t)i };
	qsort(c->by_id, c->n, sizeof(*c->by_id), id_cmp);
	c->match_old = old;
}

void chain_inherit(struct chain *c, const struct chain *old)
{
	size_t j;

	if (c->match_old != old)
		chain_inherit_match(c, old);
	for (size_t i = 0; i < c->n; i++) {
		if (c->match[i] < 0)
			continue;
		j = (size_t)c->match[i];
		c->slot[i].expire_at_ns = old->slot[j].expire_at_ns;
		c->ctr[i] = old->ctr[j];
		if (c->slot[i].flow != NO_FLOW && old->slot[j].flow != NO_FLOW)
			flow_inherit(&c->flows[c->slot[i].flow], &old->flows[old->slot[j].flow]);
	}
	c->match_old = NULL;
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


static inline bool prefix_match(const struct rule_prefix *pf, const uint8_t *addr, int family)
{
	uint64_t a[2];

	addr_words(addr, family, a);
	return (((a[0] ^ pf->addr[0]) & pf->mask[0]) | ((a[1] ^ pf->addr[1]) & pf->mask[1])) == 0;
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
	return splitmix64(&c->rng) >> 11;
}

/* p's direction as a RULE_DIR_* bit; anything but PKT_DIR_IN is out, as the index has it. */
static inline unsigned int pkt_dir_bit(const struct pkt *p)
{
	return p->dir == PKT_DIR_IN ? RULE_DIR_IN : RULE_DIR_OUT;
}

/*
 * tls-sni, http-host, quic-sni: the flow's host name came from that kind of
 * hello and one of the key's names matches it.  A rule with several of the
 * keys matches when any of them does (a name comes from one kind only).
 */
static bool names_match(const struct rule_flow *fm, const struct pkt_flow *pf)
{
	static const struct {
		uint8_t flag, kind, names;
	} kinds[] = {
		{ RULE_F_TLS_SNI, PKT_NAME_TLS, RULE_NAME_TLS },
		{ RULE_F_HTTP_HOST, PKT_NAME_HTTP, RULE_NAME_HTTP },
		{ RULE_F_QUIC_SNI, PKT_NAME_QUIC, RULE_NAME_QUIC },
	};

	if (!pf->name_kind || !pf->name_len)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (!(fm->flags & kinds[i].flag) || pf->name_kind != kinds[i].kind)
			continue;
		for (const char *n = fm->names[kinds[i].names]; *n; n += strlen(n) + 1)
			if (hello_name_match(n, pf->name, pf->name_len))
				return true;
	}
	return false;
}

/* flow-packets, flow-bytes, flow-state, flow-dir: never without a flow. */
static bool flow_match(const struct rule_flow *fm, const struct pkt_flow *pf)
{
	if (!pf)
		return false;
	if ((fm->flags & RULE_F_PACKETS) && (pf->pos < fm->pkts_lo || pf->pos > fm->pkts_hi))
		return false;
	if ((fm->flags & RULE_F_BYTES) &&
	    (pf->bytes_before < fm->bytes_lo || pf->bytes_before > fm->bytes_hi))
		return false;
	if ((fm->flags & RULE_F_STATE) && pf->state != fm->state)
		return false;
	if ((fm->flags & RULE_F_DIR) && pf->fdir != fm->dir)
		return false;
	if (fm->flags & (RULE_F_TLS_SNI | RULE_F_HTTP_HOST | RULE_F_QUIC_SNI))
		return names_match(fm, pf);
	return true;
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
	/* sets (issue 14) */
	if ((f & RULE_M_SRC_SET) &&
	    prefixset_contains(m->src_set->prefixes, p->family, pkt_saddr(p)) ==
		    !!(f & RULE_M_SRC_SET_NOT))
		return false;
	if ((f & RULE_M_DST_SET) &&
	    prefixset_contains(m->dst_set->prefixes, p->family, pkt_daddr(p)) ==
		    !!(f & RULE_M_DST_SET_NOT))
		return false;
	if ((f & RULE_M_HOST_SET) &&
	    (!p->flow || !p->flow->name_len ||
	     !hostset_contains(m->host_set->hosts, p->flow->name, p->flow->name_len)))
		return false;
	if ((f & RULE_M_TTL) && !in_range(pkt_ttl(p), m->ttl_lo, m->ttl_hi))
		return false;
	if ((f & RULE_M_LENGTH) && !in_range(pkt_ip_len(p), m->len_lo, m->len_hi))
		return false;
	if ((f & RULE_M_DSCP) && pkt_dscp(p) != m->dscp)
		return false;
	if ((f & RULE_M_FLOW) && !flow_match(&r->flow, p->flow))
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

bool chain_names_may_match(const struct chain *c, uint8_t kind, const char *name, size_t len)
{
	const struct pkt_flow pf = { .name_kind = kind, .name = name,
				     .name_len = len > UINT8_MAX ? 0 : (uint8_t)len };

	if (!kind || !pf.name_len)
		return false;
	for (size_t i = 0; i < c->n; i++) {
		const struct rule *r = &c->rules[i];

		if ((r->flow.flags & (RULE_F_TLS_SNI | RULE_F_HTTP_HOST | RULE_F_QUIC_SNI)) &&
		    names_match(&r->flow, &pf))
			return true;
		if ((r->m.flags & RULE_M_HOST_SET) && hostset_contains(r->m.host_set->hosts, name, len))
			return true;
	}
	return false;
}

bool chain_rule_matches(const struct rule *r, const struct pkt *p)
{
	return rule_match(NULL, r, p);
}

static void rule_apply(const struct rule *r, struct pkt *p)
{
	const struct rule_action *a = &r->a;

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
	/* set-field, strip-tcp-option: after set-ttl and the others, as rule_format() lists them */
	if (rule_rewrites(r))
		surgery_rewrite(&r->surg, p);
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
		rule_apply(r, p);
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
	return chain_run_cut(c, p, forged, now_ns, trace, NULL, NULL);
}

enum chain_verdict chain_run_impair(struct chain *c, struct pkt *p, struct pkt *forged,
				    uint64_t now_ns, struct chain_trace *trace,
				    struct chain_impair *impair)
{
	return chain_run_cut(c, p, forged, now_ns, trace, impair, NULL);
}

/* Rule i matched p: count it, apply its actions; true when it ends the chain, with *v. */
static inline bool rule_hit(struct chain *c, uint32_t i, struct pkt *p, struct pkt *forged,
			    uint64_t now_ns, struct chain_trace *trace,
			    struct chain_impair *impair, struct chain_cut *cut,
			    enum chain_verdict *v)
{
	const struct rule *r = &c->rules[i];

	c->ctr[i].pkts += pkt_segs(p);
	c->ctr[i].bytes += pkt_seg_bytes(p);
	if (trace->n < CHAIN_TRACE_MAX)
		trace->idx[trace->n] = i;
	trace->n++;
	rule_apply(r, p);

	switch (r->a.verdict) {
	case RULE_VERDICT_ACCEPT:
		trace->result = CHAIN_RESULT_ACCEPT;
		*v = CHAIN_ACCEPT;
		if (cut && rule_cuts(r)) {
			cut->cut = true;
			cut->rule = i;
			cut->s = &r->surg;
		}
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


enum chain_verdict chain_run_cut(struct chain *c, struct pkt *p, struct pkt *forged,
				 uint64_t now_ns, struct chain_trace *trace,
				 struct chain_impair *impair, struct chain_cut *cut)
{
	const uint32_t *cur[IX_CURSORS];
	struct chain_trace none;
	enum chain_verdict v;
	uint32_t i;
	size_t k;

	if (impair)
		impair->impaired = false;
	if (cut)
		*cut = (struct chain_cut){ .cut = false };
	if (!trace)
		trace = &none;
	trace->n = 0;
	trace->result = CHAIN_RESULT_DEFAULT;

	if (unlikely(c->linear)) {
		for (i = 0; i < c->n; i++)
			if (rule_match(c, &c->rules[i], p) &&
			    rule_hit(c, i, p, forged, now_ns, trace, impair, cut, &v))
				return v;
		return CHAIN_ACCEPT;
	}

	/* Merge the lists (each in rule order): the lowest head next, until all are at IX_END. */
	k = chain_index_gather(c->ix[p->dir == PKT_DIR_IN], p, cur);
	if (!k)
		return CHAIN_ACCEPT;
	i = ix_next(cur, k);
	while (i != IX_END) {
		uint32_t last = i;

		if (!rule_match(c, &c->rules[i], p)) {
			i = ix_next(cur, k);
			continue;
		}
		if (rule_hit(c, i, p, forged, now_ns, trace, impair, cut, &v))
			return v;
		i = ix_next(cur, k);
		if (likely(!rule_rewrites(&c->rules[last])))
			continue;
		/* set-field may have changed what the index keys on: gather again, past rule last. */
		k = chain_index_gather(c->ix[p->dir == PKT_DIR_IN], p, cur);
		if (!k)
			return CHAIN_ACCEPT;
		do
			i = ix_next(cur, k);
		while (i != IX_END && i <= last);
	}
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
	k = chain_index_gather(c->ix[p->dir == PKT_DIR_IN], p, cur);
	if (!k)
		return true;
	while ((i = ix_next(cur, k)) != IX_END)
		if ((r = gso_step(c, i, p)) != 0)
			return r > 0;
	return true;
}
