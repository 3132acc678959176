/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Network impairment, netem-like: the pure parts.  No I/O, no logging, no
 * clock reads (times are nanoseconds on the caller's monotonic clock, passed
 * in), no global state (every function works on the state it is given), no
 * libm (deterministic results on every libc, and nothing more to link).
 *
 * The pieces: a random generator; Bernoulli and Gilbert-Elliott loss; the
 * delay of one packet from delay, jitter and distribution; a token bucket
 * shaper that gives each packet its departure time; a flow (the state of one
 * impairing rule) that combines them in impair_decide(); bit corruption; and
 * a timer-ordered queue of packet copies, bounded in packets and bytes.
 */
#ifndef IPMODD_IMPAIR_H
#define IPMODD_IMPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "packet.h"
#include "rule.h"

/* ---- random numbers ------------------------------------------------------ */

/*
 * xoshiro256** seeded through splitmix64: the same seed gives the same
 * sequence everywhere.  Every function below that takes a generator draws a
 * fixed number of values per call unless it says otherwise, so results are
 * reproducible from the seed.
 */
struct impair_rng {
	uint64_t s[4];
};

void impair_rng_seed(struct impair_rng *g, uint64_t seed);
uint64_t impair_rng_next(struct impair_rng *g);
/* Uniform in [0, n), unbiased (rejection); n >= 1.  Draws one value or more. */
uint64_t impair_rng_below(struct impair_rng *g, uint64_t n);
/* Uniform in [0, 1): a multiple of 2^-53. */
double impair_rng_uniform(struct impair_rng *g);
/* True with probability p (one draw): never for p <= 0, always for p >= 1. */
bool impair_rng_chance(struct impair_rng *g, double p);
/* Standard normal (mean 0, sigma 1), Marsaglia's polar method: two draws or more. */
double impair_rng_normal(struct impair_rng *g);

/* The square root and natural logarithm the normal variate uses (exposed for the tests). */
double impair_sqrt(double x);
double impair_ln(double x);

/* ---- loss ---------------------------------------------------------------- */

/*
 * Gilbert-Elliott loss, as netem's "loss gemodel p r 1-h 1-k":
 *
 *                 p                          loss probability
 *         +--------------+
 *         |              v
 *       GOOD            BAD                  GOOD: good_loss (1-k)
 *         ^              |                   BAD:  bad_loss  (1-h)
 *         +--------------+
 *                 r
 *
 * The model starts GOOD.  For each packet, in netem's order: first the state
 * moves (GOOD to BAD with probability p, BAD to GOOD with probability r),
 * then the packet is lost with the loss probability of the state it arrived
 * in, the one before the move.  Two draws per packet, always.
 *
 * Stationary: P(BAD) = p / (p + r); the loss rate is
 * (p * bad_loss + r * good_loss) / (p + r).  With bad_loss 1 and good_loss 0
 * (the plain Gilbert model) losses come in bursts of geometric length with
 * mean 1 / r, separated by geometric gaps with mean 1 / p.
 */
struct impair_ge {
	double p, r, bad_loss, good_loss;
	bool bad;		/* the current state */
};

void impair_ge_init(struct impair_ge *ge, double p, double r, double bad_loss, double good_loss);
/* The next packet: true when it is lost. */
bool impair_ge_lose(struct impair_ge *ge, struct impair_rng *g);

/* Bernoulli loss is impair_rng_chance(g, p). */

/*
 * netem's correlated uniform (sch_netem.c, get_crandom()), in 32 bits: with
 * rho = 0 a fresh uniform; else value = ((2^32 - (rho + 1)) * u + (rho + 1)
 * * last) >> 32, where u is fresh and last the previous value (the first one
 * a fresh draw).  rho is the correlation as a fraction of 2^32 - 1.  One draw
 * per call (two for the first).
 *
 * This is an exponential smoothing of uniforms: the mean stays 1/2 but the
 * spread shrinks, so "P >= value" (netem's test for loss, duplicate and
 * corrupt) is no longer true with probability P: for P below 1/2 the event
 * gets much rarer as rho grows (loss=0.1 loss-corr=0.5 loses about 0.11 %,
 * not 10 %), and its runs are only mildly longer (1.13 packets on average).
 * ipmodd keeps netem's model, not the naive one.
 */
struct impair_crnd {
	uint32_t rho, last;
	bool primed;
};

/* rho from a fraction 0..1, as tc does. */
uint32_t impair_crnd_rho(double corr);
uint32_t impair_crnd_next(struct impair_crnd *c, struct impair_rng *g);
/* A probability 0..1 as netem's 32-bit threshold. */
uint32_t impair_prob32(double p);

/*
 * netem's tabledist(): mu + sigma * table[u % n] / NETEM_DIST_SCALE (8192),
 * rounded as netem does (half away from zero on the sigma % 8192 part), u
 * from the correlated generator; without a table the uniform
 * mu - sigma + u % (2 sigma) (by multiply and shift when 2 sigma exceeds
 * 2^32).  Negative results are 0: the packet leaves at once.
 */
uint64_t impair_tabledist(uint64_t mu_ns, uint64_t sigma_ns, uint32_t u, const int16_t *table,
			  uint32_t n);

/* ---- delay --------------------------------------------------------------- */

/*
 * The delay of one packet in ns.  Without jitter: delay, no draw.
 * RULE_DIST_UNIFORM: uniform on the integers of [delay - jitter,
 * delay + jitter] (one draw or more).  RULE_DIST_NORMAL: delay + jitter * z,
 * z standard normal, rounded to the ns.  Both are clamped at 0: with jitter
 * above delay, the share below 0 leaves at once.
 */
uint64_t impair_delay_ns(struct impair_rng *g, uint64_t delay_ns, uint64_t jitter_ns, int dist);

/* ---- rate: token bucket shaper -------------------------------------------- */

/*
 * A token bucket whose tokens are link time: it fills at one ns per ns up to
 * the burst, and a packet costs its transmission time, len * 8 / rate s
 * (len: the IP packet, as given) or 1 / rate s in pps mode.  The bucket
 * starts full.  A packet arriving at now departs at the earliest time
 * d >= max(now, departure of the previous packet) at which the bucket holds
 * its cost (or the whole burst, for a packet that costs more), and takes its
 * cost, which may leave the bucket in debt.  Packets thus leave in arrival
 * order (FIFO), a flow that has been idle sends up to a burst at once, and a
 * backlogged flow leaves at exactly the rate: packet k of a back-to-back
 * train of equal packets, all arriving at t0, departs at
 * t0 + max(0, ceil(((k + 1) * cost - burst) / 1 ns)).
 *
 * The burst is IMPAIR_BURST_BYTES (one full-size Ethernet packet) in bit
 * mode, one packet in pps mode.  Time is kept exactly, as ns plus a fraction
 * of a ns in units of 1/rate ns: departures are exact, with no drift, at any
 * rate.  A departure is rounded up to the next ns.
 *
 * The shaper holds no packets and has no limit: impair_decide() bounds what
 * a rule holds.  Rates: 1..IMPAIR_RATE_MAX.
 */
#define IMPAIR_BURST_BYTES 1500
#define IMPAIR_RATE_MAX 1000000000000ULL	/* 1 Tbit/s or pps */

/* A time or a duration: ns + frac / den ns, frac < den. */
struct impair_time {
	uint64_t ns, frac;
};

struct impair_shaper {
	uint64_t den;		/* the rate: bits or packets per second */
	uint64_t per_byte;	/* cost of a byte in ns * den: 8e9 (bits), 0 (pps) */
	uint64_t per_pkt;	/* cost of a packet in ns * den: 0 (bits), 1e9 (pps) */
	uint64_t burst;		/* bucket depth in ns * den */
	struct impair_time full;	/* when the bucket is full again */
	struct impair_time last;	/* exact departure of the previous packet */
};

/* -EINVAL for a rate of 0 or above IMPAIR_RATE_MAX. */
int impair_shaper_init(struct impair_shaper *s, uint64_t rate, bool pps);
/* The departure time of a packet of len bytes arriving at now_ns; updates the bucket. */
uint64_t impair_shaper_departure(struct impair_shaper *s, uint64_t now_ns, size_t len);

/*
 * A packet's size on the link, as netem's packet_time_ns(): len + overhead
 * (0 when that is negative), and with a cell size the number of cells it
 * fills (the last one partial) times cellsize + cell_overhead (0 at least).
 * Bounded by IMPAIR_WIRE_MAX.
 */
#define IMPAIR_WIRE_MAX (1u << 24)
uint64_t impair_wire_len(size_t len, int32_t overhead, uint32_t cellsize, int32_t cell_overhead);

/* ---- one impairing rule ---------------------------------------------------- */

/*
 * Per-rule counters.  For every packet run through impair_decide():
 *   1 + duplicated = sent + dropped_loss + dropped_limit + dropped_aqm
 * summed over packets, where sent counts the copies the caller sends (now or
 * from the queue); the caller adds what the queue refuses and what a flush
 * discards to dropped_limit (or a counter of its own) to keep it true.
 */
struct impair_counters {
	uint64_t delayed;	/* copies held back (delay, jitter or rate) */
	uint64_t dropped_loss;	/* copies removed by a loss event */
	uint64_t dropped_limit;	/* copies over the rule's limit */
	uint64_t duplicated;	/* second copies made */
	uint64_t reordered;	/* copies sent at once, past the delayed ones */
	uint64_t corrupted;	/* copies marked for corruption */
	uint64_t ce_marked;	/* loss events that marked CE instead (loss-ecn) */
	uint64_t dropped_aqm;	/* copies a trace link's CoDel dropped */
};

/*
 * The state of one impairing rule: loss model, shaper, and the departure
 * times of the copies it holds (a min-heap of cfg->limit entries, allocated
 * at init, so that the limit needs no help from the caller: a held copy
 * stops counting at its departure time).
 */
struct tl_link;

struct impair_flow {
	struct impair_ge ge;
	struct impair_shaper shaper;
	struct tl_link *link;	/* rate=@PATH: set by the caller (chain.c), freed by done() */
	bool seeded;		/* seed=N: draw from rng, not the caller's generator */
	struct impair_rng rng;
	uint64_t *held;		/* min-heap of departure times, grown up to limit */
	uint32_t nheld, cap, limit;
	struct impair_counters cnt;
	/* netem's correlated generators, for the keys with a -corr */
	struct impair_crnd delay_cor, loss_cor, dup_cor, corrupt_cor, reorder_cor;
	uint32_t counter;	/* reorder gap: copies delayed since the last reordered one */
	uint64_t slot_next;	/* slot: when the current slot opens */
	int64_t slot_pkts, slot_bytes;	/* and what it may still release */
	bool slot_open;		/* a slot was drawn */
};

/*
 * For a rule with rule_impairs(); -ENOMEM, or -EINVAL for a bad cfg.  Frees
 * nothing on failure.  The heap of held departures starts small and doubles
 * as copies are held, up to cfg->limit: a chain of many rules with a large
 * limit costs memory only for what its rules hold.  A seeded rule
 * (cfg->seeded) gets its own generator, seeded with cfg->seed here.  A trace
 * link (cfg->trace) is the caller's to set in f->link after this (impair.c
 * reads no file); without one every copy the link would carry is dropped
 * (dropped_limit).
 */
int impair_flow_init(struct impair_flow *f, const struct rule_impair *cfg);
void impair_flow_done(struct impair_flow *f);
/*
 * Take over the held departures of old, the flow of the same rule in the
 * chain being replaced (f was initialized with the same cfg): at most
 * f->limit of them.  Should growing f's heap fail, only what fits is kept:
 * the rule may then hold a few more copies than its limit for a while.
 */
void impair_flow_copy_held(struct impair_flow *f, const struct impair_flow *old);
/* Copies held at now_ns (departure after now_ns). */
uint32_t impair_flow_held(struct impair_flow *f, uint64_t now_ns);
/* The generator the rule draws from: its own when seeded, else g. */
static inline struct impair_rng *impair_flow_rng(struct impair_flow *f, struct impair_rng *g)
{
	return f->seeded ? &f->rng : g;
}

#define IMPAIR_COPIES_MAX 2

struct impair_copy {
	uint64_t at_ns;		/* when to send it: <= now_ns means at once */
	bool corrupt;		/* flip a bit first (impair_corrupt()) */
};

struct impair_result {
	bool ce;		/* loss-ecn: mark the packet CE (every copy) */
	unsigned int n;		/* copies to send, 0..IMPAIR_COPIES_MAX */
	struct impair_copy copy[IMPAIR_COPIES_MAX];
};

/*
 * What happens to a packet of len bytes (IP length) that matched an
 * impairing rule at now_ns.  impair_decide() is impair_decide_ecn() for a
 * packet that is not ECN-capable.  cfg must be the one f was initialized with.  In
 * netem's order:
 * 1. duplicate: with that probability a second copy is made;
 * 2. loss: one loss event per packet (Bernoulli, or a Gilbert-Elliott step)
 *    removes one copy; a duplicated packet that is lost still sends one;
 * 3. for each remaining copy: reorder, with that probability, sends it at
 *    once (no delay, no shaping, not held; it overtakes the delayed ones).
 *    Otherwise, with delay or rate, a copy that would make the rule hold
 *    more than cfg->limit copies is dropped (dropped_limit); else it
 *    departs at the shaper's departure time (rate) plus impair_delay_ns()
 *    (delay, jitter), and is held when that is after now_ns; with a trace
 *    link (rate=@PATH) the link's departure (tl_link_send()) stands for the
 *    shaper's, and a copy its queue refuses counts in dropped_limit, one its
 *    CoDel drops in dropped_aqm;
 * 4. corrupt: with that probability the first copy that survived is marked.
 * With loss-ecn, a loss event on a packet whose ECN field (ecn, 0..3) is
 * not 0 removes no copy: it sets ret->ce (ce_marked) and the caller marks
 * the packet CE, as netem's INET_ECN_set_ce().
 * With a -corr key the draw for that key is netem's correlated one
 * (impair_crnd_next()) compared as netem does (P >= value, 32 bits); with
 * gap, a copy is reordered only when gap - 1 copies were delayed since the
 * last reordered one (netem's counter; no draw before that); a table
 * distribution or delay-corr uses impair_tabledist().
 * rate: the shaper charges impair_wire_len() bytes.
 * slot: a copy due at t (after delay and rate) leaves at the start of a
 * slot: when the current slot opened before t, a new one is drawn, opening
 * at t + a uniform slot time (netem's get_slot_next()); each slot releases
 * up to its packets and bytes, then the next opens a uniform slot time
 * later.  Copies take slots in the order they are decided (netem: the order
 * they are due).  A reordered copy skips rate and delay but waits for its
 * slot like the others (it is then counted reordered and delayed).
 * Draws happen only for keys the rule has: one for duplicate, one or two
 * for loss, per copy one for reorder plus the delay's, one for corrupt.
 * Copies are listed in order; copy 0 is the original.  A flow that was not
 * initialized for cfg (zeroed) drops every copy it would hold.
 */
void impair_decide(struct impair_flow *f, const struct rule_impair *cfg, struct impair_rng *g,
		   uint64_t now_ns, size_t len, struct impair_result *ret);
void impair_decide_ecn(struct impair_flow *f, const struct rule_impair *cfg, struct impair_rng *g,
		       uint64_t now_ns, size_t len, unsigned int ecn, struct impair_result *ret);

/* ---- corruption ------------------------------------------------------------ */

/*
 * Flip one random bit of a packet that pkt_parse() accepted, never in its IP
 * header or IPv6 extension headers, and leave every checksum as it is (so
 * the L4 checksum no longer matches, as with netem's corrupt):
 * - TCP, UDP, ICMP, ICMPv6 with a complete header and a payload: a bit of
 *   the payload (after the TCP header with its options, the 8-byte UDP
 *   header, the 8-byte ICMP/ICMPv6 header);
 * - the same without a payload: a bit of the L4 checksum field;
 * - anything else (other protocols, non-first fragments, a cut L4 header):
 *   a bit of everything after the IP headers.
 * The packet still parses and routes the same.  Returns the index of the
 * bit (byte offset * 8 + bit number, 0 the least significant), or -ENODATA
 * when nothing follows the IP headers (nothing is changed).  One draw.
 */
int impair_corrupt(struct pkt *p, struct impair_rng *g);

/* ---- the timer queue -------------------------------------------------------- */

/*
 * Packet copies waiting for their departure time: a binary min-heap on
 * (at_ns, order of insertion), so copies due at the same time leave in the
 * order they were pushed.  Bounded by a number of packets and a number of
 * bytes given at init; the heap array is allocated then, once, and each
 * entry owns a malloc'd copy of its packet.  owner is the caller's tag (a
 * rule id) for flushing the copies of one rule.
 */
struct impair_entry {
	uint64_t at_ns;
	uint64_t seq;
	uint8_t *data;
	uint32_t owner;
	uint32_t len;
	uint8_t dest;	/* the caller's: where the copy goes (ipmodd: 0 the tun, 1 + i inbound tun i) */
};

struct impair_queue {
	struct impair_entry *heap;
	size_t n, max_pkts;
	size_t bytes, max_bytes;
	uint64_t seq;
};

/* A popped copy: data is the caller's, to free(). */
struct impair_item {
	uint64_t at_ns;
	uint8_t *data;
	size_t len;
	uint32_t owner;
	uint8_t dest;
};

/* Called for each flushed copy before its data is freed. */
typedef void (*impair_flush_fn)(void *userdata, uint32_t owner, const uint8_t *data, size_t len);
/* Whether the copies of owner are to be flushed. */
typedef bool (*impair_pick_fn)(void *userdata, uint32_t owner);

/* max_pkts >= 1, max_bytes >= 1 (else -EINVAL); -ENOMEM. */
int impair_queue_init(struct impair_queue *q, size_t max_pkts, size_t max_bytes);
/* Frees every queued copy and the heap; q may be zeroed or already done. */
void impair_queue_done(struct impair_queue *q);
/*
 * Queue a copy of data[0..len) for at_ns.  -ENOBUFS when it would exceed the
 * packet or the byte bound (nothing is queued), -EINVAL for len 0 or above
 * PKT_MAX, -ENOMEM.
 */
int impair_queue_push(struct impair_queue *q, uint64_t at_ns, uint32_t owner, const void *data,
		      size_t len);
/* The same with the copy's destination, handed back by impair_queue_pop() (push: 0). */
int impair_queue_push_to(struct impair_queue *q, uint64_t at_ns, uint32_t owner, uint8_t dest,
			 const void *data, size_t len);
/* The earliest departure time in *ret_at_ns; false when the queue is empty. */
bool impair_queue_next(const struct impair_queue *q, uint64_t *ret_at_ns);
/* Remove the earliest copy if it is due (at_ns <= now_ns): 1, else 0. */
int impair_queue_pop(struct impair_queue *q, uint64_t now_ns, struct impair_item *ret);
/* Discard every copy, or those of one owner; fn may be NULL.  Returns how many. */
size_t impair_queue_flush(struct impair_queue *q, impair_flush_fn fn, void *userdata);
size_t impair_queue_flush_owner(struct impair_queue *q, uint32_t owner, impair_flush_fn fn,
				void *userdata);
/*
 * Discard the copies of every owner pick() selects, in one pass: for the
 * owners that are gone after a change of rules.  pick() and fn (may be NULL)
 * get the same userdata.
 */
size_t impair_queue_flush_pick(struct impair_queue *q, impair_pick_fn pick, impair_flush_fn fn,
			       void *userdata);
size_t impair_queue_len(const struct impair_queue *q);
size_t impair_queue_bytes(const struct impair_queue *q);

#endif
