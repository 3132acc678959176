/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rule vocabulary: one key=value language shared by the config file, the
 * control protocol and ipmodctl (see ipmodd.conf(5), RULES).
 */
#ifndef IPMODD_RULE_H
#define IPMODD_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "surgery.h"

#define RULE_NAME_MAX 32	/* including the terminating NUL */
#define RULE_KV_MAX 80		/* keys in one rule: every key of the vocabulary, with room */
#define RULE_FORMAT_MAX 2048	/* rule_format() of any rule rule_parse() returns fits */
/*
 * rule_parse() refuses a rule whose text (rule_format()) would be longer
 * than this, so that every buffer of RULE_FORMAT_MAX holds it and the
 * control protocol's "spec=" line (CTL_LINE_MAX) carries it.  Without
 * the bound the longest legal rule takes 2658 bytes: three list paths and
 * a table path of 255 bytes, a trace path of 159, two name lists of 254
 * and every other key at its longest (test-chain); a cutting rule's
 * fake=@PATH adds 261.  A long fake="hex:..." (1500 bytes are 3000
 * digits) is to be given as fake=@FILE.
 */
#define RULE_TEXT_MAX 1920
/*
 * Rules in a chain: the one limit of the file (CONFIG_RULES_MAX) and of the
 * live chain (CHAIN_RULES_MAX), so that what "ipmodctl save" prints of any
 * live chain is a file ipmodd reads back.
 */
#define RULES_MAX 10000

struct rule;

struct rule_kv {
	const char *key;
	const char *value;
};

/*
 * Parse one rule.  On failure returns -EINVAL (or -ENOMEM), stores in
 * *ret_bad the index of the offending pair (n when the problem is the rule as
 * a whole, such as two verdicts) and writes a message that names the key and
 * the value into err.  *ret is untouched on failure.
 *
 * Decisions the vocabulary leaves open:
 * - src/dst with host bits set (10.1.2.3/8) are accepted and normalized to
 *   the network (10.0.0.0/8), as ip-route does for prefixes.
 * - icmp-type without proto: with a family (family=, or implied by src/dst)
 *   it means proto=icmp (ip) or proto=icmpv6 (ip6).  Without a family a name
 *   matches both ICMP with its ICMP number and ICMPv6 with its ICMPv6 number
 *   (echo-request: 8 and 128); a name known to one family only restricts the
 *   rule to it.  A bare number then is ambiguous and refused.
 * - proto=icmp with family ip6 (or proto=icmpv6 with ip) is a conflict.
 *
 * Impairment (netem-like; struct rule_impair, applied by impair.c):
 * - delay=MS and jitter=MS: milliseconds 0..60000, an integer or a decimal
 *   with at most 3 decimals (microsecond resolution).  jitter needs delay;
 *   distribution=uniform|normal needs jitter (uniform when not given, and
 *   then not printed by rule_format()).
 * - loss=P, a fraction 0..1 (Bernoulli), or
 *   loss=gemodel:P,R[,BADLOSS[,GOODLOSS]] (Gilbert-Elliott as netem's
 *   "loss gemodel p r 1-h 1-k", fractions; BADLOSS 1 and GOODLOSS 0 by
 *   default, trailing defaults are not printed).  Fractions are read like
 *   probability= (no "%", no nan/inf/hex).
 * - duplicate=P, reorder=P, corrupt=P: fractions; reorder needs delay > 0.
 * - rate=N with a unit: bit, kbit, mbit, gbit (decimal SI, per second;
 *   1kbit..100gbit) or pps (1..10000000); N is an integer.  Printed with
 *   the largest unit that keeps it an integer (rate=1000kbit prints 1mbit).
 * - limit=N: packets of the rule held at once, 1..100000, 1000 by default;
 *   only with delay or rate (printed only when not 1000).
 * - netem's further keys (ipmodd.conf(5) has the semantics): delay-corr
 *   (needs jitter, not with distribution=normal), loss-corr (needs a
 *   Bernoulli loss), duplicate-corr, corrupt-corr, reorder-corr (fractions,
 *   each needs its key); gap=N (1..1000000, needs reorder);
 *   distribution=pareto|paretonormal|@/absolute/file.dist (netem's tables;
 *   a file is read at parse time: a missing or malformed one is an error
 *   naming its line, and it is printed as given); loss-ecn=true|false
 *   (false is as if not given); overhead=N, cellsize=N, cell-overhead=N
 *   (bytes, with a rate in bits; cell-overhead needs cellsize);
 *   slot=MIN[,MAX[,PACKETS[,BYTES]]] (ms, ms, 0 for no bound; impairs on its
 *   own and takes a limit like delay).
 * - Impairment goes with verdict accept (implied when no verdict is given,
 *   and then not printed), reply or reject (the forged packet is impaired);
 *   with verdict=drop it is an error, reported on the first impairment key.
 *   A rule that impairs is terminal, like one with a verdict.
 * - rate=@PATH: a trace-driven link (Mahimahi's trace format, tracelink.h);
 *   PATH is absolute, of letters, digits and "._/+-", shorter than
 *   RULE_TRACE_MAX.  The file is read when the rule is installed, not here.
 *   With it only: queue=N (packets, 1..RULE_LIMIT_MAX), queue-bytes=N
 *   (1500..RULE_QUEUE_BYTES_MAX), aqm=droptail|codel (droptail by default,
 *   then not printed), and with codel codel-target=MS and codel-interval=MS
 *   (as delay=, above 0; 5 and 100 by default).
 * - seed=N (0..2^64-1) with an impairment: the rule's random decisions come
 *   from its own generator seeded with N when the rule is installed.
 * - expire=DURATION on any rule: an integer with a unit, ms, s, m or h, up
 *   to 7 days; printed in the largest unit that keeps it an integer.
 * - direction=out|in|both: which packets the rule sees, by struct pkt's dir
 *   (out: read from the outbound tun; in: diverted from an inbound
 *   interface, see inbound= in ipmodd.conf(5)).  out when not given, and
 *   then not printed, so rules written before the key read back the same.
 * - Keys given with a zero value (loss=0, delay=0) are kept: such a rule
 *   still impairs (and ends the chain), it is printed as given and differs
 *   from the rule without the key.
 */
int rule_parse(const struct rule_kv *kv, size_t n, struct rule **ret, size_t *ret_bad,
	       char *err, size_t errlen);
struct rule *rule_free(struct rule *r);
struct rule *rule_dup(const struct rule *r);
const char *rule_name(const struct rule *r);	/* "" when none was given */
/* Same meaning (the name included); rule_parse(rule_format(r)) equals r. */
bool rule_equal(const struct rule *a, const struct rule *b);

/*
 * The rule as "key=value key=value ..." that rule_parse() reads back, keys in
 * canonical order.  Returns the length written, or -ENOSPC if len is too
 * small (RULE_FORMAT_MAX always suffices).
 */
int rule_format(const struct rule *r, char *buf, size_t len);
/*
 * Only what the rule does, for the live trace: its actions, verdict and
 * impairment words, formatted as rule_format() does ("set-ttl=64
 * verdict=reply", "delay=50 loss=0.3"); "" for none.  Same return values.
 */
int rule_format_actions(const struct rule *r, char *buf, size_t len);

/* The vocabulary's name of an IP protocol, or of an ICMP/ICMPv6 type; NULL when it has none. */
const char *rule_proto_name(unsigned int proto);
const char *rule_icmp_type_name(int family, unsigned int type);

/*
 * The vocabulary itself, for "ipmodctl help keys" and the shell completions:
 * the i-th rule key in canonical order, NULL past the last; the i-th name
 * KEY's value can take (proto: tcp, udp, ...; icmp-type: the ICMP types,
 * then the ICMPv6 ones the former lack), NULL past the last or for a key
 * without names (delay) or no key at all.
 */
const char *rule_key_name(unsigned int i);
const char *rule_key_value(const char *key, unsigned int i);

/* Whether the tc fast path carries a rule with a key (fastpath_rule_why_not()). */
enum rule_fp {
	RULE_FP_NO,		/* never: such a rule goes to userspace */
	RULE_FP_YES,		/* always */
	RULE_FP_PARTIAL,	/* some values only (verdict: accept and drop) */
};

/* One row of the vocabulary, for "ipmodctl help keys -l" and the tests. */
struct rule_keyinfo {
	const char *name;
	const char *kind;	/* "rule", "match", "action" or "impair" */
	const char *range;	/* the value's syntax and bounds, in words */
	enum rule_fp fast_path;
	bool not_with_drop;	/* refused with verdict=drop */
	bool accept_only;	/* refused with verdict=drop, reply or reject (not_with_drop too) */
};

/* The i-th rule key in canonical order; -ENOENT past the last. */
int rule_key_info(unsigned int i, struct rule_keyinfo *ret);

/*
 * The compiled form, built by rule_parse().  chain.c runs it; fpindex.c and
 * fastpath.c translate it for the kernel; explain.c, monitor.c, config.c,
 * manager.c and manager-control.c read fields of it (grep before changing
 * one).  Everyone else goes through the functions above.  Matching data is
 * kept compact and first; the name is cold.
 */
enum {
	RULE_M_PROTO = 1u << 0,
	RULE_M_SRC = 1u << 1,
	RULE_M_SRC_NOT = 1u << 2,
	RULE_M_DST = 1u << 3,
	RULE_M_DST_NOT = 1u << 4,
	RULE_M_SPORT = 1u << 5,
	RULE_M_SPORT_NOT = 1u << 6,
	RULE_M_DPORT = 1u << 7,
	RULE_M_DPORT_NOT = 1u << 8,
	RULE_M_ICMP4_TYPE = 1u << 9,	/* ICMP with icmp_type[0] */
	RULE_M_ICMP6_TYPE = 1u << 10,	/* ICMPv6 with icmp_type[1] */
	RULE_M_ICMP_CODE = 1u << 11,
	RULE_M_TCP_FLAGS = 1u << 12,
	RULE_M_TTL = 1u << 13,
	RULE_M_LENGTH = 1u << 14,
	RULE_M_DSCP = 1u << 15,
	RULE_M_PROBABILITY = 1u << 16,
	/* sets (issue 14): bits from 24 up, so that other blocks can take 17.. */
	RULE_M_SRC_SET = 1u << 24,	/* src-set=@FILE: rule_match.src_set */
	RULE_M_SRC_SET_NOT = 1u << 25,
	RULE_M_DST_SET = 1u << 26,	/* dst-set=@FILE: rule_match.dst_set */
	RULE_M_DST_SET_NOT = 1u << 27,
	RULE_M_HOST_SET = 1u << 28,	/* host-set=@FILE: rule_match.host_set */
	/* struct rule.flow has matches (flow-packets ... quic-sni): see RULE_F_* */
	RULE_M_FLOW = 1u << 31,
};

/* Matches that need the L4 header. */
#define RULE_M_L4 (RULE_M_SPORT | RULE_M_DPORT | RULE_M_ICMP4_TYPE | RULE_M_ICMP6_TYPE | \
		   RULE_M_ICMP_CODE | RULE_M_TCP_FLAGS)

struct rule_prefix {
	uint64_t addr[2];	/* network byte order, host bits clear; v4 in the first 4 bytes */
	uint64_t mask[2];
	uint8_t len;
};

struct rule_match {
	uint32_t flags;		/* RULE_M_* */
	uint8_t family;		/* 0 (any), AF_INET or AF_INET6 */
	uint8_t proto;
	uint8_t icmp_type[2];
	uint8_t icmp_code;
	uint8_t tcp_mask, tcp_set;	/* (flags & mask) == set */
	uint8_t ttl_lo, ttl_hi;
	uint8_t dscp;
	uint16_t sport_lo, sport_hi;
	uint16_t dport_lo, dport_hi;
	uint16_t len_lo, len_hi;
	uint64_t prob_threshold;	/* matches when 53 random bits are below it */
	struct rule_prefix src, dst;
	/* sets (issue 14): with RULE_M_*_SET, shared and reference counted (struct rule_set) */
	const struct rule_set *src_set, *dst_set, *host_set;
};

enum rule_ttl_op {
	RULE_TTL_KEEP,
	RULE_TTL_SET,
	RULE_TTL_INC,		/* saturates at 255 */
	RULE_TTL_DEC,		/* saturates at 1 */
};

enum rule_verdict {
	RULE_VERDICT_NONE,	/* continue with the next rule */
	RULE_VERDICT_ACCEPT,
	RULE_VERDICT_DROP,
	RULE_VERDICT_REPLY,
	RULE_VERDICT_REJECT,
};

enum rule_reject {
	RULE_REJECT_PORT_UNREACH,	/* the default */
	RULE_REJECT_NET_UNREACH,
	RULE_REJECT_HOST_UNREACH,
	RULE_REJECT_PROTO_UNREACH,
	RULE_REJECT_ADMIN_PROHIBITED,
	RULE_REJECT_TCP_RESET,
};

struct rule_action {
	uint8_t ttl_op;		/* enum rule_ttl_op */
	uint8_t ttl;
	bool set_dscp, set_ecn;
	uint8_t dscp, ecn;
	uint16_t clamp_mss;	/* 0: none */
	uint8_t verdict;	/* enum rule_verdict */
	uint8_t reject;		/* enum rule_reject */
};

/* Impairment keys given. */
enum {
	RULE_I_DELAY = 1u << 0,
	RULE_I_JITTER = 1u << 1,
	RULE_I_LOSS = 1u << 2,		/* Bernoulli (loss) or, with loss_ge, gemodel (ge_*) */
	RULE_I_DUPLICATE = 1u << 3,
	RULE_I_REORDER = 1u << 4,
	RULE_I_CORRUPT = 1u << 5,
	RULE_I_RATE = 1u << 6,
	RULE_I_SLOT = 1u << 7,
};

/* netem's further keys, each refining one above (struct rule_impair.xflags). */
enum {
	RULE_IX_DELAY_CORR = 1u << 0,
	RULE_IX_LOSS_CORR = 1u << 1,
	RULE_IX_DUPLICATE_CORR = 1u << 2,
	RULE_IX_CORRUPT_CORR = 1u << 3,
	RULE_IX_REORDER_CORR = 1u << 4,
	RULE_IX_GAP = 1u << 5,
	RULE_IX_LOSS_ECN = 1u << 6,
	RULE_IX_OVERHEAD = 1u << 7,
	RULE_IX_CELLSIZE = 1u << 8,
	RULE_IX_CELL_OVERHEAD = 1u << 9,
};

enum rule_dist {
	RULE_DIST_UNIFORM,	/* in [delay - jitter, delay + jitter] */
	RULE_DIST_NORMAL,	/* mean delay, standard deviation jitter */
	RULE_DIST_PARETO,	/* netem's tables: delay + jitter * table[u] / 8192 */
	RULE_DIST_PARETONORMAL,
	RULE_DIST_FILE,		/* an iproute2 .dist file (struct rule_impair.table) */
};

/*
 * A delay table read from a file (distribution="@/path"): shared, read-only,
 * reference counted (rule_dup() and chain copies take a reference).
 */
struct rule_table {
	unsigned int refs;
	uint32_t n;			/* entries, 1..RULE_TABLE_MAX */
	uint64_t hash;			/* FNV-1a of the entries */
	char path[256];
	int16_t v[];
};

#define RULE_TABLE_MAX 16384		/* entries (netem's NETEM_DIST_MAX) */
#define RULE_TABLE_FILE_MAX (1u << 20)	/* bytes of a .dist file */
#define RULE_GAP_MAX 1000000
#define RULE_SLOT_PKTS_MAX 1000000
#define RULE_SLOT_BYTES_MAX (1u << 30)
#define RULE_OVERHEAD_MAX 4096		/* overhead, cell-overhead: -4096..4096 bytes */
#define RULE_CELLSIZE_MAX 65535

#define RULE_DELAY_MAX_US 60000000u	/* delay and jitter: 60 s */
#define RULE_LIMIT_DEFAULT 1000
#define RULE_LIMIT_MAX 100000
#define RULE_RATE_BIT_MIN 1000ULL		/* 1kbit */
#define RULE_RATE_BIT_MAX 100000000000ULL	/* 100gbit */
#define RULE_RATE_PPS_MAX 10000000ULL
#define RULE_TRACE_MAX 160		/* rate=@PATH: the path, with its NUL */
#define RULE_QUEUE_BYTES_MAX (64u << 20)
#define RULE_EXPIRE_MAX_MS 604800000u	/* expire: 7 days */

enum rule_aqm {
	RULE_AQM_DROPTAIL,
	RULE_AQM_CODEL,
};

/*
 * flags == 0: the rule does not impair (and every other field is 0).
 * Fields whose key was not given are 0, so the struct compares as a whole.
 */
struct rule_impair {
	uint8_t flags;		/* RULE_I_* */
	uint8_t dist;		/* enum rule_dist, with jitter */
	bool loss_ge;		/* RULE_I_LOSS is the Gilbert-Elliott model */
	bool rate_pps;		/* rate counts packets, not bits */
	uint32_t delay_us;	/* 0..RULE_DELAY_MAX_US */
	uint32_t jitter_us;	/* 0..RULE_DELAY_MAX_US */
	uint32_t limit;		/* with delay or rate: 1..RULE_LIMIT_MAX; else 0 */
	uint64_t rate;		/* bits or packets per second */
	double loss;		/* Bernoulli loss probability */
	double ge_p, ge_r;	/* gemodel: good->bad and bad->good per packet */
	double ge_bad_loss;	/* 1-h: loss probability in the bad state */
	double ge_good_loss;	/* 1-k: loss probability in the good state */
	double duplicate, reorder, corrupt;
	/* netem's correlations, 0..1, with RULE_IX_*_CORR. */
	double delay_corr, loss_corr, duplicate_corr, corrupt_corr, reorder_corr;
	uint16_t xflags;	/* RULE_IX_* */
	uint32_t gap;		/* reorder: every gap-th packet may go at once */
	/* slot: next slot after min..max us; 0 packets or bytes is no bound */
	uint32_t slot_min_us, slot_max_us, slot_pkts, slot_bytes;
	int32_t overhead, cell_overhead;	/* rate: bytes per packet, per cell */
	uint32_t cellsize;
	const struct rule_table *table;	/* RULE_DIST_FILE */
	/* rate=@PATH: a trace-driven link (tracelink.h); rate is 0 then. */
	char trace[RULE_TRACE_MAX];	/* absolute path, "" for none */
	uint32_t queue_pkts;		/* queue=N, 0: not given (limit applies) */
	uint32_t queue_bytes;		/* queue-bytes=N, 0: not given */
	uint8_t aqm;			/* enum rule_aqm */
	uint32_t codel_target_us;	/* 0: not given (5 ms) */
	uint32_t codel_interval_us;	/* 0: not given (100 ms) */
	/* seed=N: the rule draws from its own generator, seeded with N. */
	bool seeded;
	uint64_t seed;
};

/*
 * struct rule.dir_mask: the directions a rule matches, bit 1 << PKT_DIR_OUT
 * and bit 1 << PKT_DIR_IN (packet.h).  rule_parse() always sets it (out
 * when direction= is not given); 0, as in a zeroed rule built by hand,
 * means out only: read it through rule_dir_mask().
 */
#define RULE_DIR_OUT (1u << 0)	/* 1 << PKT_DIR_OUT */
#define RULE_DIR_IN (1u << 1)	/* 1 << PKT_DIR_IN */
#define RULE_DIR_BOTH (RULE_DIR_OUT | RULE_DIR_IN)

/*
 * Connection-aware matches (issue 14), read from the packet's flow
 * (struct pkt.flow, filled by the daemon before the chain).  A packet
 * without a flow never matches them.  RULE_M_FLOW is set in m.flags
 * whenever flags is not 0.
 */
enum {
	RULE_F_PACKETS = 1u << 0,	/* flow-packets=N-M: pos in its direction, from 1 */
	RULE_F_BYTES = 1u << 1,		/* flow-bytes=N-M: payload bytes before it */
	RULE_F_STATE = 1u << 2,		/* flow-state=new|established|closing */
	RULE_F_DIR = 1u << 3,		/* flow-dir=original|reply */
	RULE_F_TLS_SNI = 1u << 4,	/* tls-sni=NAME[,NAME...] */
	RULE_F_HTTP_HOST = 1u << 5,	/* http-host=NAME[,NAME...] */
	RULE_F_QUIC_SNI = 1u << 6,	/* quic-sni=NAME[,NAME...] */
};

/*
 * tls-sni, http-host, quic-sni: up to RULE_NAMES_MAX names, each a host name
 * or "*.suffix" (hello_name_match()), lowercase, stored one after the other,
 * each with its NUL, an empty string after the last; RULE_NAMES_BYTES in all.
 */
#define RULE_NAMES_MAX 8
#define RULE_NAMES_BYTES 256
enum { RULE_NAME_TLS, RULE_NAME_HTTP, RULE_NAME_QUIC, RULE_NAME_KINDS };

#define RULE_FLOW_PACKETS_MAX 4294967295UL
#define RULE_FLOW_BYTES_MAX 1000000000000000000UL

struct rule_flow {
	uint8_t flags;		/* RULE_F_* */
	uint8_t state;		/* enum flow_state (flow.h) */
	uint8_t dir;		/* enum flow_dir (flow.h) */
	uint32_t pkts_lo, pkts_hi;
	uint64_t bytes_lo, bytes_hi;
	char names[RULE_NAME_KINDS][RULE_NAMES_BYTES];	/* by RULE_NAME_*, with RULE_F_* */
};

struct rule {
	struct rule_match m;
	struct rule_flow flow;
	uint8_t dir_mask;	/* RULE_DIR_*; 0: out only (rule_dir_mask()) */
	struct rule_action a;
	double probability;	/* as given, for rule_format() */
	struct rule_impair impair;
	uint32_t expire_ms;	/* expire=DURATION: removed that long after it is installed; 0 never */
	char name[RULE_NAME_MAX];
	/*
	 * Packet surgery (surgery.h): set-field and strip-tcp-option rewrite
	 * like set-ttl; split, ipfrag and fake cut the packet and end the
	 * chain (rule_cuts()).
	 */
	struct rule_surgery surg;
};

/*
 * sets (issue 14): an address or host-name list read from a file when the
 * rule is parsed (src-set, dst-set, host-set = "@/path"), shared, read-only,
 * reference counted like struct rule_table.  Inside a set scope
 * (rule_set_scope_begin() .. _end(), what config_load() opens around a
 * file's rules) rules naming the same file of the same kind share one
 * load; outside one, every rule_parse() reads its file.  A new scope reads
 * every file again: a reload picks up a changed list.
 */
struct prefixset;
struct hostset;

enum rule_set_kind {
	RULE_SET_PREFIX,	/* prefixset.h: src-set, dst-set */
	RULE_SET_HOST,		/* hostset.h: host-set */
};

struct rule_set {
	unsigned int refs;
	uint8_t kind;			/* enum rule_set_kind */
	struct prefixset *prefixes;	/* RULE_SET_PREFIX */
	struct hostset *hosts;		/* RULE_SET_HOST */
	uint64_t entries;		/* lines with an entry, as loaded */
	uint64_t bytes;			/* memory of the built set */
	char path[256];
};

#define RULE_SET_SCOPE_FILES 64	/* distinct list files in one scope, and in one chain */
#define RULE_SET_FILE_MAX (256u << 20)	/* bytes of one list file */

void rule_set_scope_begin(void);
void rule_set_scope_end(void);
/*
 * Inside an open scope: R's lists are the scope's copies of their files (a
 * rule added to a running chain shares the chain's lists; the files are
 * read again at the next reload).  Lists beyond the scope's bound are not
 * shared.
 */
void rule_set_scope_share(const struct rule *r);

/* Take and drop the references a copy of r (a memcpy) holds: its file table and sets. */
void rule_ref_tables(const struct rule *r);
void rule_unref_tables(const struct rule *r);
/* The delay table of a rule with a table distribution, and its size; NULL for none. */
const int16_t *rule_dist_table(const struct rule_impair *im, uint32_t *ret_n);

/* The directions r matches, RULE_DIR_OUT and/or RULE_DIR_IN: never 0. */
static inline unsigned int rule_dir_mask(const struct rule *r)
{
	return r->dir_mask & RULE_DIR_BOTH ? r->dir_mask & RULE_DIR_BOTH : RULE_DIR_OUT;
}

/*
 * The rule cuts the packet into several (split, ipfrag, fake): the chain ends
 * on it with accept and the caller runs surgery_apply().  A cutting rule
 * cannot also impair (yet), nor drop, reply or reject.
 */
static inline bool rule_cuts(const struct rule *r)
{
	return r->surg.keys & (SURG_K_SPLIT | SURG_K_IPFRAG | SURG_K_FAKE);
}

/* The rule rewrites fields in place (set-field, strip-tcp-option). */
static inline bool rule_rewrites(const struct rule *r)
{
	return r->surg.keys & (SURG_K_SET_FIELD | SURG_K_STRIP);
}

/* The rule impairs: apply impair.c and end the chain with its verdict. */
static inline bool rule_impairs(const struct rule *r)
{
	return r->impair.flags != 0;
}

#endif
