/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A compiled rule chain: immutable once built (only its counters, rate
 * limiter and impairment state change), so that a new chain can be swapped
 * in atomically.
 * No I/O, no logging.
 */
#ifndef IPMODD_CHAIN_H
#define IPMODD_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "impair.h"
#include "packet.h"
#include "rule.h"

#define CHAIN_RULES_MAX RULES_MAX

/*
 * Forged packets (reply, reject) per chain: a token bucket of
 * CHAIN_FORGE_BURST packets refilled at CHAIN_FORGE_RATE per second.  It
 * bounds what the daemon sends toward the local host when a rule matches a
 * flood, like the kernel's icmp_ratelimit/icmp_msgs_per_sec.
 */
#define CHAIN_FORGE_RATE 1000
#define CHAIN_FORGE_BURST 100

struct chain;

enum chain_verdict {
	CHAIN_ACCEPT,		/* write p back (forwarded: compensate TTL) */
	CHAIN_DROP,		/* consume p */
	CHAIN_FORGED,		/* p consumed; write *forged back toward the local host as is */
};

/* How a packet left the chain, for the live trace. */
enum chain_result {
	CHAIN_RESULT_DEFAULT,	/* no verdict matched: accepted */
	CHAIN_RESULT_ACCEPT,
	CHAIN_RESULT_DROP,
	CHAIN_RESULT_REPLY,
	CHAIN_RESULT_REJECT,
	CHAIN_RESULT_REFUSED,	/* reply/reject had nothing to answer: dropped */
	CHAIN_RESULT_LIMITED,	/* reply/reject over the rate limit: dropped */
	CHAIN_RESULT_MAX,
};

#define CHAIN_TRACE_MAX 32

/* What chain_run() did with one packet: the rules that matched, in order. */
struct chain_trace {
	uint32_t n;			/* matched rules; only the first CHAIN_TRACE_MAX are in idx */
	uint32_t idx[CHAIN_TRACE_MAX];
	uint8_t result;			/* enum chain_result */
};

const char *chain_result_name(int result);

/*
 * What the impairing rule that ended the chain did to one packet
 * (chain_run_impair()), for the caller to carry out and for the trace.
 */
enum {
	CHAIN_IMPAIR_DUPLICATED = 1 << 0,	/* a second copy was made */
	CHAIN_IMPAIR_LOST = 1 << 1,		/* a copy was lost (loss) */
	CHAIN_IMPAIR_REORDERED = 1 << 2,	/* a copy goes at once, past the delayed ones */
	CHAIN_IMPAIR_DELAYED = 1 << 3,		/* a copy waits (delay, jitter, rate) */
	CHAIN_IMPAIR_LIMITED = 1 << 4,		/* a copy was over the rule's limit or the queue's bounds */
	CHAIN_IMPAIR_CORRUPTED = 1 << 5,	/* the first copy gets a bit flipped */
	CHAIN_IMPAIR_CE = 1 << 6,		/* loss-ecn: marked CE instead of lost */
};

struct chain_impair {
	bool impaired;			/* the packet ended on an impairing rule; the rest is valid only then */
	uint8_t events;			/* CHAIN_IMPAIR_* */
	uint32_t rule;			/* that rule's index */
	uint32_t id;			/* and its id (chain_rule_id()) */
	uint64_t now_ns;		/* when it was decided */
	struct impair_result res;	/* the copies to send, in order; copy 0 the original */
};

/*
 * A packet that ended on a rule that cuts (split, ipfrag, fake: rule_cuts()):
 * the verdict is CHAIN_ACCEPT, and the caller sends what surgery_apply()
 * makes of p instead of p.  s points into the chain (valid while it is
 * referenced).
 */
struct chain_cut {
	bool cut;			/* the rest is valid only then */
	uint32_t rule;			/* the rule's index */
	const struct rule_surgery *s;
};

/* Chain-wide counters of the reply and reject verdicts. */
struct chain_stats {
	uint64_t forged;		/* replies and rejects built */
	uint64_t forge_refused;		/* not answerable (ICMP error, multicast, fragment, not an echo request): dropped */
	uint64_t forge_limited;		/* over the rate limit: dropped */
};

/*
 * Copies the rules (they are only read); checks that names are unique.  A
 * rule without a name is named "rule-N" after its 1-based position.  -E2BIG
 * beyond CHAIN_RULES_MAX.  Each rule gets an id, 1..n in order (see
 * chain_inherit()); each impairing rule the state of its impairment (an
 * impair_flow: loss model, shaper, the copies it holds, counters), and the
 * chain one generator for all of them.
 */
int chain_new(struct rule *const *rules, size_t n, struct chain **ret, char *err, size_t errlen);
/*
 * The same, for the chain that will replace old (chain_inherit()): a rule
 * old has unchanged (same name, rule_equal()) shares old's trace (rate=@FILE)
 * rather than reading its file again, so a change to other rules neither
 * waits for nor depends on that file.  old may be NULL.
 */
int chain_new_from(struct rule *const *rules, size_t n, const struct chain *old,
		   struct chain **ret, char *err, size_t errlen);
struct chain *chain_ref(struct chain *c);
struct chain *chain_unref(struct chain *c);
size_t chain_size(const struct chain *c);

/* Rule i (i < chain_size()), with its final name; valid while c is referenced. */
const struct rule *chain_rule(const struct chain *c, size_t i);
/* Index of the rule named name, or -ENOENT. */
int chain_find(const struct chain *c, const char *name);
/* Packets and bytes (as read, before rewrites) that matched rule i. */
void chain_counters(const struct chain *c, size_t i, uint64_t *ret_pkts, uint64_t *ret_bytes);
void chain_stats(const struct chain *c, struct chain_stats *ret);
/*
 * sets (issue 14): the distinct lists (src-set, dst-set, host-set files)
 * the chain's rules use, each counted once however many rules share it.
 */
struct chain_sets_info {
	uint64_t sets;		/* distinct lists */
	uint64_t prefixes;	/* entries of the address lists, as loaded */
	uint64_t names;		/* entries of the host-name lists, as loaded */
	uint64_t bytes;		/* memory of the built lists */
};
void chain_sets_info(const struct chain *c, struct chain_sets_info *ret);
/* Impairment counters of rule i: false (and zeroes) when it does not impair. */
bool chain_impair_counters(const struct chain *c, size_t i, struct impair_counters *ret);
/* Packet and impairment counters of every rule, and the chain-wide ones. */
void chain_reset_counters(struct chain *c);
/*
 * A rule's id: the owner tag of its delayed copies.  It stays with the rule
 * as long as chain_inherit() finds it unchanged, and a rule that is new or
 * changed gets an id that no chain it inherits from (directly or not) has
 * used, so that copies queued for a rule that is gone can be told apart.
 */
uint32_t chain_rule_id(const struct chain *c, size_t i);
/* Index of the rule with that id, or -ENOENT. */
int chain_find_id(const struct chain *c, uint32_t id);
/*
 * Carry state from the chain c replaces, before c runs a packet: for every
 * rule of old that c has unchanged (same name, rule_equal()) its id, its
 * counters and, for an impairing rule, the state of its impairment (loss
 * model, shaper, copies held, impairment counters); new and changed rules
 * get new ids and start from zero.  Also the chain-wide counters and the
 * forge rate limiter.
 */
void chain_inherit(struct chain *c, const struct chain *old);
/*
 * The part of chain_inherit() that only reads what never changes in old
 * (names, rules, ids): which rule of old each rule of c inherits from, and
 * c's ids.  For a chain built in another thread while old runs; a
 * chain_inherit(c, old) for the same old then only copies state (counters,
 * impairment), and one for another chain matches again.  old must stay
 * referenced from here to that chain_inherit(): the plan knows it by address.
 */
void chain_inherit_match(struct chain *c, const struct chain *old);
/*
 * The index chain_new() builds, so that a packet costs about the same
 * against 10 rules as against 10,000: a packet is tried only against the
 * rules it could match, in rule order, with exactly the results of trying
 * every rule (verdict, rewrites, counters, trace, probability= draws).
 * Each rule is reached through one key: among its exact matches on a field
 * no action rewrites (src or dst prefix without "!", a single sport or
 * dport of its proto), the one the fewest rules share.  A rule without
 * such a match (negations, port ranges, ttl, icmp-type... only) is generic:
 * tried for every packet of its family and proto.  A packet costs one
 * lookup per port kind, one per prefix length in use that its address
 * could fall in (a filter by the address's first bits tells which), then
 * its candidates.  Memory is linear in the rules.  There is one index per
 * direction (enum pkt_dir), of the rules whose direction= has it
 * (rule_dir_mask()): a packet (p->dir) never meets a rule of the other way.
 */
struct chain_index_info {
	size_t keyed;		/* rules reached through a key */
	size_t generic;		/* rules tried for every packet of their family and proto */
	size_t keys;		/* distinct keys */
	size_t lengths;		/* distinct prefix lengths in use, over families and src/dst */
	size_t longest;		/* the most rules one key or generic list holds */
};
/* Of the index of outbound packets; _dir: of direction dir (enum pkt_dir). */
void chain_index_info(const struct chain *c, struct chain_index_info *ret);
void chain_index_info_dir(const struct chain *c, unsigned int dir, struct chain_index_info *ret);
/* Try every rule in order instead of the index (tests, measurements): same results. */
void chain_set_linear(struct chain *c, bool linear);

/*
 * Whether a rule's tls-sni, http-host, quic-sni or host-set (its other
 * matches aside) matches the host name name[0..len) found in a hello of
 * kind (packet.h's PKT_NAME_*); false without a name.  For the fast path's
 * flow decisions: false means no name rule can match any packet of the flow.
 */
bool chain_names_may_match(const struct chain *c, uint8_t kind, const char *name, size_t len);

/*
 * Whether p matches r's matches, direction= included (probability= aside),
 * without counting; for trace filters.
 */
bool chain_rule_matches(const struct rule *r, const struct pkt *p);
/*
 * What the chain would do with p, without doing it: no counter, rate
 * limiter, impairment state or generator changes.  Rules are tried in
 * order, each matching rule's actions applied to p (later rules see them),
 * up to the rule with a verdict.  A rule with probability= is listed as a
 * match that happens with its probability, and the walk goes on as if it
 * had not matched (its actions and verdict left out).  reply and reject
 * are forged into forged (caller's data/cap) to tell CHAIN_RESULT_REPLY or
 * REJECT from REFUSED; the forge rate limit is not consulted.
 */
#define CHAIN_EXPLAIN_MAX 256

struct chain_explain {
	uint32_t n;			/* matched rules; the first CHAIN_EXPLAIN_MAX are listed */
	uint32_t idx[CHAIN_EXPLAIN_MAX];
	bool maybe[CHAIN_EXPLAIN_MAX];	/* a probability= rule: matches with its probability */
	uint8_t result;			/* enum chain_result */
	int32_t end;			/* the rule whose verdict ended the chain, -1 for none */
	bool impaired;			/* that rule impairs (delay, loss ... apply) */
};
void chain_explain(const struct chain *c, struct pkt *p, struct pkt *forged,
		   struct chain_explain *ret);

/* Reseed the generators behind probability= and impairment (chain_new() seeds from the clock). */
void chain_seed(struct chain *c, uint64_t seed);

/*
 * Run a packet that pkt_parse() accepted through the chain.  p may be
 * modified in place (checksums are kept right).  For CHAIN_FORGED, the reply
 * is built in forged, whose data/cap the caller provides.
 *
 * Rules are tried in order; a matching rule counts the packet, applies its
 * actions (later rules see the rewritten fields) and, if it has a verdict,
 * ends the chain.  No match means accept.  reply and reject always consume
 * the packet: when nothing may be forged (ICMP error, fragment, multicast,
 * not an echo request for reply) or the forge rate limit is exhausted, the
 * result is CHAIN_DROP, counted in chain_stats().
 *
 * chain_run_trace() also fills in trace.
 *
 * Not thread-safe for one chain: counters, the rate limiter, the
 * impairment state and the generators are plain state.  Only
 * chain_ref()/chain_unref() are atomic.
 */
enum chain_verdict chain_run_trace(struct chain *c, struct pkt *p, struct pkt *forged,
				   uint64_t now_ns, struct chain_trace *trace);

static inline enum chain_verdict chain_run(struct chain *c, struct pkt *p, struct pkt *forged,
					   uint64_t now_ns)
{
	return chain_run_trace(c, p, forged, now_ns, NULL);
}

/*
 * chain_run_trace() for a caller that carries out impairment.  When the
 * packet ends on an impairing rule, impair->impaired is set and
 * impair_decide() has been applied to the packet the verdict names (p for
 * CHAIN_ACCEPT, forged for CHAIN_FORGED): impair->res lists the copies of it
 * to send, each at its time (now_ns or before: at once) and copy 0
 * possibly to corrupt (chain_impair_corrupt()); the verdict is CHAIN_DROP
 * when no copy is left (loss, limit).  A reply or reject that forges nothing
 * is CHAIN_DROP without impairment.  Otherwise impair->impaired is false.
 *
 * chain_run() and chain_run_trace() decide the impairment the same way
 * (the counters count it) but can hold nothing: they give the verdict for
 * the first copy that leaves at once, with its corruption applied, and
 * CHAIN_DROP when every copy waits or is lost.
 */
enum chain_verdict chain_run_impair(struct chain *c, struct pkt *p, struct pkt *forged,
				    uint64_t now_ns, struct chain_trace *trace,
				    struct chain_impair *impair);
/*
 * chain_run_impair() for a caller that also carries out surgery: when the
 * packet ends on a rule that cuts, cut->cut is set (the verdict is
 * CHAIN_ACCEPT; a cutting rule does not impair) and the caller sends what
 * surgery_apply(cut->s, p) makes.  Otherwise cut->cut is false.  cut may be
 * NULL: then a cutting rule accepts p whole.
 */
enum chain_verdict chain_run_cut(struct chain *c, struct pkt *p, struct pkt *forged,
				 uint64_t now_ns, struct chain_trace *trace,
				 struct chain_impair *impair, struct chain_cut *cut);
/*
 * Whether the GSO super-packet p (pkt_segs() > 1) may run the chain whole,
 * as one packet standing for its segments: true when no rule it could reach
 * works on segments (a tcp-flags, length or probability match, reply,
 * reject, impairment, surgery), so that every action and verdict is the same for
 * each of them.  Conservative: false may be said of a packet that would
 * not have reached such a rule.  When it runs whole, rules count its
 * segments and their bytes (pkt_segs(), pkt_seg_bytes()).  Only reads.
 */
bool chain_gso_whole(const struct chain *c, const struct pkt *p);
/*
 * The matches of r (RULE_M_*) whose result may differ between the segments
 * of a GSO super-packet, TCP or not: length and probability, and on TCP
 * tcp-flags on a flag the segments do not all share (fin, psh, cwr, urg).
 * chain_gso_whole() splits a packet that may match such a rule; the fast
 * path (fastpath.c) hands it to userspace: one definition for both.
 */
uint32_t chain_rule_gso_vary(const struct rule *r, bool tcp);

/* Flip a bit of the copy marked corrupt (impair_corrupt() with the chain's generator). */
int chain_impair_corrupt(struct chain *c, struct pkt *p);
/* The same with the generator of the rule imp names (its own when it has seed=). */
int chain_impair_corrupt_imp(struct chain *c, const struct chain_impair *imp, struct pkt *p);

/*
 * expire=: rules that go by themselves.  chain_inherit() carries an
 * unchanged rule's deadline; chain_expiry_start() gives every rule with
 * expire= that has none (new or changed) now_ns + its duration.  The
 * deadline of rule i (0: none), and the earliest one of the chain.
 */
void chain_expiry_start(struct chain *c, uint64_t now_ns);
uint64_t chain_rule_expire_at(const struct chain *c, size_t i);
bool chain_next_expiry(const struct chain *c, uint64_t *ret_at_ns);
/*
 * The caller could not hold copy k of impair (its own queue is full): the
 * rule counts it dropped over the limit instead of delayed, and the copy
 * leaves impair->res.  Call it on the chain that decided, before it runs
 * another packet.
 */
void chain_impair_refused(struct chain *c, struct chain_impair *impair, unsigned int k);

#endif
