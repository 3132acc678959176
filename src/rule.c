/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parsing and formatting of the rule vocabulary.  Keys are parsed in their
 * canonical order, whatever order they were given in, so that a key can
 * depend on the ones before it (ports on proto, icmp-type on proto and
 * family) and a conflict is reported on the later key.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostset.h"
#include "flow.h"
#include "netem-tables.h"
#include "prefixset.h"
#include "rule.h"
#include "util.h"

/*
 * THE RULE VOCABULARY: one row per key, in canonical order.  Everything else
 * derives from these rows: rule_parse() (keys are parsed in row order, so a
 * key may depend on the rows above it), rule_format() and "ipmodctl save"
 * (printed in row order), rule_format_actions() (the ACTION and IMPAIR rows),
 * rule_equal(), rule_key_name()/rule_key_value() and so "ipmodctl help keys",
 * "help values KEY" and the shell completions; tests/misc/completion.sh
 * checks ipmodd.conf(5) against the rows and tests/unit/test-vocab.c checks
 * the fast-path column against fastpath_rule_why_not().
 *
 * Columns:
 *   ID      K_<ID> in enum rule_key (generated from the rows)
 *   NAME    the key as written
 *   KIND    RK_META (about the rule), RK_MATCH, RK_ACTION (actions, verdict)
 *           or RK_IMPAIR (impairment, printed by rule_format_actions() too)
 *   WHERE   RK_W_ANY, or RK_W_NOT_DROP: refused with verdict=drop (checked
 *           here, before the parser runs, on the first such key given), or
 *           RK_W_ACCEPT: refused with verdict=drop, reply or reject (the
 *           surgery keys that cut: the packets they make are sent)
 *   FP      whether the tc fast path carries a rule with the key:
 *           RK_FP_YES, RK_FP_NO (the rule goes to userspace) or
 *           RK_FP_PARTIAL (some values only: see fastpath_rule_why_not())
 *   PARSE   int parse_x(struct parser *ps, enum rule_key k): reads val(ps, k)
 *           into ps->r; fail(ps, k, ...) names the key and the value
 *   PUT     void put_x(struct strbuf *o, const struct rule *r, enum rule_key k):
 *           prints " key=value" with put_key() when the rule has the key,
 *           nothing otherwise (defaults left out so old rules read back)
 *   EQ      bool eq_x(const struct rule *a, const struct rule *b), or NULL:
 *           then two rules agree on the key when PUT prints the same for
 *           both (enough when the printed value is the whole value)
 *   VALUES  const char *values_x(unsigned int i): the i-th name the value
 *           can take (help values, completion), NULL past the last; or NULL
 *   RANGE   the value's syntax and bounds, for "ipmodctl help keys -l"
 *
 * To add a key:
 *  1. ONE row here, where it belongs in the canonical order: after the keys
 *     it depends on (has(ps, K_X) and the fields of rows above are set when
 *     its parser runs), before rule_format() should print it.  The enum,
 *     the name, help keys, help values and the completions follow.
 *  2. Its parse_ and put_ functions (above the table), and an eq_ unless
 *     what put_ prints is the whole value.  A module's value parser
 *     (surgery_parse_x(&r->..., value, msg, sizeof(msg))) is wrapped as
 *     "if (surgery_parse_x(...) < 0) return fail(ps, k, "%s", msg);", and its
 *     printer after put_key(o, k).  Nothing else in this file changes.
 *  3. If the fast path cannot carry a rule with it, fastpath_rule_why_not()
 *     says so and the row is RK_FP_NO (or RK_FP_PARTIAL).
 *  4. A sample line in tests/unit/test-vocab.c (it fails without one: it
 *     checks parse, print, read-back, equality, kind and the FP column), the
 *     key's paragraph in ipmodd.conf(5) RULES (tests/misc/completion.sh
 *     checks it) and rule.h's notes.
 */
#define RULE_KEYS(X)                                                                           \
	X(NAME, "name", RK_META, RK_W_ANY, RK_FP_YES, parse_name, put_name, NULL, NULL,        \
	  "letters, digits, _ . -, up to 31")                                                  \
	X(DIRECTION, "direction", RK_META, RK_W_ANY, RK_FP_YES, parse_direction, put_direction, \
	  eq_direction, values_direction, "out (default), in, both")                           \
	X(FAMILY, "family", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_family, put_family, eq_family, \
	  values_family, "ip (ipv4), ip6 (ipv6)")                                              \
	X(PROTO, "proto", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_proto, put_proto, eq_proto,     \
	  values_proto, "name or 0..255")                                                      \
	X(SRC, "src", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_prefix, put_src, eq_src, NULL,      \
	  "[!]ADDR[/LEN]")                                                                     \
	X(DST, "dst", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_prefix, put_dst, eq_dst, NULL,      \
	  "[!]ADDR[/LEN]")                                                                     \
	X(SPORT, "sport", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_port, put_sport, eq_sport, NULL, \
	  "[!]PORT[-PORT], 0..65535, needs proto tcp, udp or sctp")                            \
	X(DPORT, "dport", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_port, put_dport, eq_dport, NULL, \
	  "[!]PORT[-PORT], 0..65535, needs proto tcp, udp or sctp")                            \
	X(ICMP_TYPE, "icmp-type", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_icmp_type, put_icmp_type, \
	  eq_icmp_type, values_icmp_type, "name or 0..255")                                    \
	X(ICMP_CODE, "icmp-code", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_icmp_code, put_icmp_code, \
	  NULL, NULL, "0..255, needs an ICMP proto or icmp-type")                              \
	X(TCP_FLAGS, "tcp-flags", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_tcp_flags, put_tcp_flags, \
	  eq_tcp_flags, values_tcp_flags, "[!]FLAG[,[!]FLAG...], needs proto=tcp")             \
	X(TTL, "ttl", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_ttl, put_ttl, NULL, NULL,           \
	  "N or LO-HI, 0..255")                                                                \
	X(LENGTH, "length", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_length, put_length, NULL,     \
	  NULL, "N or LO-HI, 0..65535")                                                        \
	X(DSCP, "dscp", RK_MATCH, RK_W_ANY, RK_FP_YES, parse_dscp, put_dscp, eq_dscp,          \
	  values_dscp, "name or 0..63")                                                        \
	/* sets (issue 14): lists read from files when the rule is parsed */                 \
	X(SRC_SET, "src-set", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_set, put_src_set,           \
	  eq_src_set, NULL, "[!]@/FILE, one prefix per line")                                 \
	X(DST_SET, "dst-set", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_set, put_dst_set,           \
	  eq_dst_set, NULL, "[!]@/FILE, one prefix per line")                                 \
	X(HOST_SET, "host-set", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_set, put_host_set,        \
	  eq_host_set, NULL, "@/FILE, one host name or *.suffix per line")                    \
	X(PROBABILITY, "probability", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_probability,         \
	  put_probability, eq_probability, NULL, "fraction 0..1")                              \
	/* flow: connection-aware matches on the packet's flow (issue 14) */                  \
	X(FLOW_PACKETS, "flow-packets", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_flow_packets,      \
	  put_flow_packets, NULL, NULL, "N or LO-HI, 1..4294967295, position in its direction") \
	X(FLOW_BYTES, "flow-bytes", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_flow_bytes,            \
	  put_flow_bytes, NULL, NULL, "N or LO-HI, 0..10^18, payload bytes before it")         \
	X(FLOW_STATE, "flow-state", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_flow_state,            \
	  put_flow_state, NULL, values_flow_state, "new, established or closing")              \
	X(FLOW_DIR, "flow-dir", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_flow_dir, put_flow_dir,    \
	  NULL, values_flow_dir, "original or reply")                                          \
	/* names: the host name a flow's client asked for (issue 14) */                         \
	X(TLS_SNI, "tls-sni", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_names, put_names, NULL, NULL, \
	  "NAME or *.SUFFIX, up to 8 comma-separated (TLS ClientHello; implies proto=tcp)")   \
	X(HTTP_HOST, "http-host", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_names, put_names, NULL,  \
	  NULL, "NAME or *.SUFFIX, up to 8 comma-separated (HTTP/1.x Host; implies proto=tcp)") \
	X(QUIC_SNI, "quic-sni", RK_MATCH, RK_W_ANY, RK_FP_NO, parse_names, put_names, NULL,    \
	  NULL, "NAME or *.SUFFIX, up to 8 comma-separated (QUIC Initial; implies proto=udp)") \
	X(SET_TTL, "set-ttl", RK_ACTION, RK_W_ANY, RK_FP_YES, parse_set_ttl, put_set_ttl,      \
	  eq_set_ttl, NULL, "[+|-]1..255")                                                     \
	X(SET_DSCP, "set-dscp", RK_ACTION, RK_W_ANY, RK_FP_YES, parse_set_dscp, put_set_dscp,  \
	  eq_set_dscp, values_dscp, "name or 0..63")                                           \
	X(SET_ECN, "set-ecn", RK_ACTION, RK_W_ANY, RK_FP_YES, parse_set_ecn, put_set_ecn,      \
	  eq_set_ecn, values_ecn, "name or 0..3")                                              \
	X(CLAMP_MSS, "clamp-mss", RK_ACTION, RK_W_ANY, RK_FP_NO, parse_clamp_mss, put_clamp_mss, \
	  eq_clamp_mss, NULL, "536..65535")                                                    \
	X(VERDICT, "verdict", RK_ACTION, RK_W_ANY, RK_FP_PARTIAL, parse_verdict, put_verdict,  \
	  eq_verdict, values_verdict, "accept, drop (fast path); reply, reject")               \
	X(REJECT_WITH, "reject-with", RK_ACTION, RK_W_ANY, RK_FP_NO, parse_reject_with,        \
	  put_reject_with, eq_reject_with, values_reject_with, "name, needs verdict=reject")   \
	/* surgery (issue 15; values: src/surgery.c) */                                        \
	X(SPLIT, "split", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery, put_surgery,        \
	  eq_surgery, values_split, "POS[,POS...] up to 8: N, -N, sni[+N], host[+N], midsld")  \
	X(DISORDER, "disorder", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery, put_surgery,  \
	  eq_surgery, values_bool, "true or false, needs split or ipfrag")                     \
	X(IPFRAG, "ipfrag", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery, put_surgery,      \
	  eq_surgery, NULL, "payload offset 8..65528, a multiple of 8")                        \
	X(FAKE, "fake", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery, put_surgery,          \
	  eq_surgery, values_fake, "zero, random, @/FILE or hex:DIGITS (1500 bytes)")          \
	X(FAKE_TTL, "fake-ttl", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery, put_surgery,  \
	  eq_surgery, NULL, "1..255, needs fake")                                              \
	X(FAKE_BADSUM, "fake-badsum", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery,         \
	  put_surgery, eq_surgery, values_bool, "true or false, needs fake")                   \
	X(FAKE_BADSEQ, "fake-badseq", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery,         \
	  put_surgery, eq_surgery, values_bool, "true or false, needs fake")                   \
	X(FAKE_MD5SIG, "fake-md5sig", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery,         \
	  put_surgery, eq_surgery, values_bool, "true or false, needs fake")                   \
	X(FAKE_REPEATS, "fake-repeats", RK_ACTION, RK_W_ACCEPT, RK_FP_NO, parse_surgery,       \
	  put_surgery, eq_surgery, NULL, "1..10 (1), needs fake")                              \
	X(SET_FIELD, "set-field", RK_ACTION, RK_W_ANY, RK_FP_NO, parse_surgery, put_surgery,   \
	  eq_surgery, values_set_field, "FIELD=VALUE[,FIELD=VALUE...] up to 16 (or spaces)")   \
	X(STRIP_TCP_OPTION, "strip-tcp-option", RK_ACTION, RK_W_ANY, RK_FP_NO, parse_surgery,  \
	  put_surgery, eq_surgery, values_strip, "NAME[,NAME...]: mss, wscale, sack-perm, sack, " \
	  "timestamp, md5sig, fastopen or 2..254")                                             \
	X(DELAY, "delay", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_delay, put_delay, eq_delay, \
	  NULL, "MS 0..60000, 3 decimals")                                                     \
	X(JITTER, "jitter", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_jitter, put_jitter,      \
	  eq_jitter, NULL, "MS 0..60000, needs delay")                                         \
	X(DISTRIBUTION, "distribution", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO,                    \
	  parse_distribution, put_distribution, eq_distribution, values_distribution,          \
	  "name or @/FILE.dist, needs jitter")                                                 \
	X(DELAY_CORR, "delay-corr", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_delay_corr,      \
	  put_delay_corr, eq_delay_corr, NULL, "fraction 0..1, needs jitter")                  \
	X(LOSS, "loss", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_loss, put_loss, eq_loss,     \
	  NULL, "fraction 0..1 or gemodel:P,R[,1-H[,1-K]]")                                    \
	X(LOSS_CORR, "loss-corr", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_loss_corr,         \
	  put_loss_corr, eq_loss_corr, NULL, "fraction 0..1, needs loss=P")                    \
	X(LOSS_ECN, "loss-ecn", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_loss_ecn,            \
	  put_loss_ecn, eq_loss_ecn, values_bool, "true or false, needs loss")                 \
	X(DUPLICATE, "duplicate", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_duplicate,         \
	  put_duplicate, eq_duplicate, NULL, "fraction 0..1")                                  \
	X(DUPLICATE_CORR, "duplicate-corr", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO,                \
	  parse_duplicate_corr, put_duplicate_corr, eq_duplicate_corr, NULL,                   \
	  "fraction 0..1, needs duplicate")                                                    \
	X(REORDER, "reorder", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_reorder, put_reorder,  \
	  eq_reorder, NULL, "fraction 0..1, needs delay above 0")                              \
	X(REORDER_CORR, "reorder-corr", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_reorder_corr, \
	  put_reorder_corr, eq_reorder_corr, NULL, "fraction 0..1, needs reorder")             \
	X(GAP, "gap", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_gap, put_gap, eq_gap, NULL,    \
	  "1..1000000, needs reorder")                                                         \
	X(CORRUPT, "corrupt", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_corrupt, put_corrupt,  \
	  eq_corrupt, NULL, "fraction 0..1")                                                   \
	X(CORRUPT_CORR, "corrupt-corr", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_corrupt_corr, \
	  put_corrupt_corr, eq_corrupt_corr, NULL, "fraction 0..1, needs corrupt")             \
	X(RATE, "rate", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_rate, put_rate, eq_rate,     \
	  NULL, "N{bit,kbit,mbit,gbit} 1kbit..100gbit, Npps 1..10000000, or @/TRACE")          \
	X(OVERHEAD, "overhead", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_overhead_key,        \
	  put_overhead, eq_overhead, NULL, "-4096..4096 bytes, needs rate in bits")            \
	X(CELLSIZE, "cellsize", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_cellsize,            \
	  put_cellsize, eq_cellsize, NULL, "1..65535 bytes, needs rate in bits")               \
	X(CELL_OVERHEAD, "cell-overhead", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO,                  \
	  parse_overhead_key, put_cell_overhead, eq_cell_overhead, NULL,                       \
	  "-4096..4096 bytes, needs cellsize")                                                 \
	X(SLOT, "slot", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_slot, put_slot, eq_slot,     \
	  NULL, "MIN[,MAX[,PACKETS[,BYTES]]], ms")                                             \
	X(LIMIT, "limit", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_limit, put_limit, eq_limit, \
	  NULL, "1..100000 packets (1000), needs delay, rate or slot")                         \
	X(QUEUE, "queue", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_trace_key, put_queue,      \
	  eq_queue, NULL, "1..100000 packets, needs rate=@PATH")                               \
	X(QUEUE_BYTES, "queue-bytes", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_trace_key,     \
	  put_queue_bytes, eq_queue_bytes, NULL, "1500..67108864, needs rate=@PATH")           \
	X(AQM, "aqm", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_trace_key, put_aqm, eq_aqm,    \
	  values_aqm, "droptail (default) or codel, needs rate=@PATH")                         \
	X(CODEL_TARGET, "codel-target", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO, parse_trace_key,   \
	  put_codel_target, eq_codel_target, NULL, "MS above 0 (5), needs aqm=codel")          \
	X(CODEL_INTERVAL, "codel-interval", RK_IMPAIR, RK_W_NOT_DROP, RK_FP_NO,                \
	  parse_trace_key, put_codel_interval, eq_codel_interval, NULL,                        \
	  "MS above 0 (100), needs aqm=codel")                                                 \
	X(SEED, "seed", RK_IMPAIR, RK_W_ANY, RK_FP_NO, parse_seed, put_seed, eq_seed, NULL,    \
	  "0..18446744073709551615, needs an impairment")                                      \
	X(EXPIRE, "expire", RK_META, RK_W_ANY, RK_FP_YES, parse_expire, put_expire, NULL,      \
	  NULL, "N{ms,s,m,h}, 1ms..7 days")

#define X_ENUM(id, ...) K_##id,
enum rule_key {
	RULE_KEYS(X_ENUM)
	K_MAX,
};
#undef X_ENUM

_Static_assert(K_MAX <= RULE_KV_MAX, "a rule may give every key of the vocabulary");

#define X_NAME(id, name, ...) [K_##id] = name,
static const char *const key_names[K_MAX] = {
	RULE_KEYS(X_NAME)
};
#undef X_NAME

static const struct {
	const char *name;
	uint32_t ms;
} expire_units[] = {
	/* Largest first: rule_format() prints the first that divides. */
	{ "h", 3600000 },
	{ "m", 60000 },
	{ "s", 1000 },
	{ "ms", 1 },
};

struct name_value {
	const char *name;
	unsigned int value;
};

/* direction=: the names, by struct rule.dir_mask (rule.h). */
static const struct name_value direction_names[] = {
	{ "out", RULE_DIR_OUT },
	{ "in", RULE_DIR_IN },
	{ "both", RULE_DIR_BOTH },
};

/* family=: ip (also ipv4) and ip6 (also ipv6), the printed names. */
static const char *const family_names[2] = { "ip", "ip6" };
/* loss-ecn=. */
static const char *const bool_names[2] = { "false", "true" };

static const struct name_value aqm_names[] = {
	{ "droptail", RULE_AQM_DROPTAIL },
	{ "codel", RULE_AQM_CODEL },
};

static const struct name_value proto_names[] = {
	{ "icmp", IPPROTO_ICMP },
	{ "icmpv6", IPPROTO_ICMPV6 },
	{ "tcp", IPPROTO_TCP },
	{ "udp", IPPROTO_UDP },
	{ "sctp", IPPROTO_SCTP },
	{ "gre", IPPROTO_GRE },
	{ "esp", IPPROTO_ESP },
};

static const struct name_value icmp4_names[] = {
	{ "echo-reply", 0 },
	{ "dest-unreachable", 3 },
	{ "source-quench", 4 },
	{ "redirect", 5 },
	{ "echo-request", 8 },
	{ "time-exceeded", 11 },
	{ "parameter-problem", 12 },
	{ "timestamp-request", 13 },
	{ "timestamp-reply", 14 },
};

static const struct name_value icmp6_names[] = {
	{ "dest-unreachable", 1 },
	{ "packet-too-big", 2 },
	{ "time-exceeded", 3 },
	{ "parameter-problem", 4 },
	{ "echo-request", 128 },
	{ "echo-reply", 129 },
	{ "nd-router-solicit", 133 },
	{ "nd-router-advert", 134 },
	{ "nd-neighbor-solicit", 135 },
	{ "nd-neighbor-advert", 136 },
};

/* Class selectors, RFC 2597 assured forwarding, RFC 3246 EF, RFC 5865 VOICE-ADMIT. */
static const struct name_value dscp_names[] = {
	{ "cs0", 0 }, { "cs1", 8 }, { "cs2", 16 }, { "cs3", 24 },
	{ "cs4", 32 }, { "cs5", 40 }, { "cs6", 48 }, { "cs7", 56 },
	{ "af11", 10 }, { "af12", 12 }, { "af13", 14 },
	{ "af21", 18 }, { "af22", 20 }, { "af23", 22 },
	{ "af31", 26 }, { "af32", 28 }, { "af33", 30 },
	{ "af41", 34 }, { "af42", 36 }, { "af43", 38 },
	{ "ef", 46 }, { "va", 44 },
};

static const struct name_value ecn_names[] = {
	{ "not-ect", 0 },
	{ "ect1", 1 },
	{ "ect0", 2 },
	{ "ce", 3 },
};

/* In the order of the bits, FIN 0x01 ... CWR 0x80. */
static const char *const tcp_flag_names[8] = {
	"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr",
};

static const struct name_value verdict_names[] = {
	{ "accept", RULE_VERDICT_ACCEPT },
	{ "drop", RULE_VERDICT_DROP },
	{ "reply", RULE_VERDICT_REPLY },
	{ "reject", RULE_VERDICT_REJECT },
};

static const struct name_value dist_names[] = {
	{ "uniform", RULE_DIST_UNIFORM },
	{ "normal", RULE_DIST_NORMAL },
	{ "pareto", RULE_DIST_PARETO },
	{ "paretonormal", RULE_DIST_PARETONORMAL },
};

/* Largest first: rule_format() prints the largest that divides the rate. */
static const struct {
	const char *name;
	uint64_t mult;
} rate_units[] = {
	{ "gbit", 1000000000 },
	{ "mbit", 1000000 },
	{ "kbit", 1000 },
	{ "bit", 1 },
};

static const struct name_value reject_names[] = {
	{ "port-unreachable", RULE_REJECT_PORT_UNREACH },
	{ "net-unreachable", RULE_REJECT_NET_UNREACH },
	{ "host-unreachable", RULE_REJECT_HOST_UNREACH },
	{ "proto-unreachable", RULE_REJECT_PROTO_UNREACH },
	{ "admin-prohibited", RULE_REJECT_ADMIN_PROHIBITED },
	{ "tcp-reset", RULE_REJECT_TCP_RESET },
};

static int lookup_name(const struct name_value *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(t[i].name, name) == 0)
			return (int)t[i].value;
	return -1;
}

static const char *lookup_value(const struct name_value *t, size_t n, unsigned int value)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].value == value)
			return t[i].name;
	return NULL;
}

/* State of one rule_parse() call. */
struct parser {
	struct rule *r;
	const struct rule_kv *kv;
	size_t idx[K_MAX];	/* position of each key in kv, or SIZE_MAX */
	size_t bad;
	char *err;
	size_t errlen;
};

/* The vocabulary's row kinds and placement (see RULE_KEYS above). */
enum { RK_META, RK_MATCH, RK_ACTION, RK_IMPAIR };
enum { RK_W_ANY, RK_W_NOT_DROP, RK_W_ACCEPT };
#define RK_FP_YES RULE_FP_YES
#define RK_FP_NO RULE_FP_NO
#define RK_FP_PARTIAL RULE_FP_PARTIAL

struct rule_keydef {
	const char *name;
	uint8_t kind;		/* RK_META, RK_MATCH, ... */
	uint8_t where;		/* RK_W_* */
	uint8_t fp;		/* enum rule_fp */
	int (*parse)(struct parser *ps, enum rule_key k);
	void (*put)(struct strbuf *o, const struct rule *r, enum rule_key k);
	bool (*eq)(const struct rule *a, const struct rule *b);	/* NULL: as printed */
	const char *(*values)(unsigned int i);			/* NULL: no names */
	const char *range;
};

static int parse_key(struct parser *ps, enum rule_key k);
static int format_rows(const struct rule *r, char *buf, size_t len, bool actions_only);
static uint8_t rule_keys_where(size_t k);

#define QUOTE_MAX 64

static _printf_(3, 4) int fail(struct parser *ps, enum rule_key k, const char *fmt, ...)
{
	char value[QUOTE_MAX], msg[ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ps->bad = ps->idx[k];
	str_sanitize(value, sizeof(value), ps->kv[ps->bad].value);
	if (ps->err && ps->errlen)
		snprintf(ps->err, ps->errlen, "%s: '%s': %s", key_names[k], value, msg);
	return -EINVAL;
}

static bool has(const struct parser *ps, enum rule_key k)
{
	return ps->idx[k] != SIZE_MAX;
}

static const char *val(const struct parser *ps, enum rule_key k)
{
	return ps->kv[ps->idx[k]].value;
}

/* A plain decimal number: no sign, no spaces, at most max. */
static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -ERANGE;
	}
	*ret = v;
	return 0;
}

static int parse_number(struct parser *ps, enum rule_key k, const char *s, unsigned long min,
			unsigned long max, unsigned long *ret)
{
	unsigned long v = 0;
	int r;

	r = parse_uint(s, max, &v);
	if (r == -EINVAL)
		return fail(ps, k, "not a number");
	if (r < 0 || v < min)
		return fail(ps, k, "out of range %lu-%lu", min, max);
	*ret = v;
	return 0;
}

/* "N" or "N-M" with min <= N <= M <= max. */
static int parse_range(struct parser *ps, enum rule_key k, const char *s, unsigned long max,
		       unsigned long *lo, unsigned long *hi)
{
	char buf[32];
	const char *dash = strchr(s, '-');
	size_t l;
	int r;

	if (!dash) {
		r = parse_number(ps, k, s, 0, max, lo);
		*hi = *lo;
		return r;
	}
	l = (size_t)(dash - s);
	if (l >= sizeof(buf))
		return fail(ps, k, "not a number or range");
	memcpy(buf, s, l);
	buf[l] = '\0';
	r = parse_uint(buf, max, lo);
	if (r == 0)
		r = parse_uint(dash + 1, max, hi);
	if (r == -EINVAL)
		return fail(ps, k, "not a number or range N-M");
	if (r < 0)
		return fail(ps, k, "out of range 0-%lu", max);
	if (*lo > *hi)
		return fail(ps, k, "range is empty (start above end)");
	return 0;
}

/* A name from t, or a number up to max. */
static int parse_named(struct parser *ps, enum rule_key k, const struct name_value *t, size_t n,
		       unsigned long max, unsigned long *ret)
{
	const char *s = val(ps, k);
	int v;

	if (*s >= '0' && *s <= '9')
		return parse_number(ps, k, s, 0, max, ret);
	v = lookup_name(t, n, s);
	if (v < 0)
		return fail(ps, k, "unknown name");
	*ret = (unsigned long)v;
	return 0;
}

static const char *family_name(int family)
{
	return family_names[family != AF_INET];
}

/* The family that proto implies, 0 if none. */
static int proto_family(const struct rule *r)
{
	if (!(r->m.flags & RULE_M_PROTO))
		return 0;
	if (r->m.proto == IPPROTO_ICMP)
		return AF_INET;
	if (r->m.proto == IPPROTO_ICMPV6)
		return AF_INET6;
	return 0;
}

static int parse_name(struct parser *ps, enum rule_key k _unused_)
{
	const char *s = val(ps, K_NAME);
	size_t l = strlen(s);

	if (l == 0)
		return fail(ps, K_NAME, "empty name");
	if (l >= RULE_NAME_MAX)
		return fail(ps, K_NAME, "longer than %d characters", RULE_NAME_MAX - 1);
	if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != l)
		return fail(ps, K_NAME, "only letters, digits, '_', '.' and '-' are allowed");
	memcpy(ps->r->name, s, l + 1);
	return 0;
}

static int parse_direction(struct parser *ps, enum rule_key k _unused_)
{
	int v = lookup_name(direction_names, ARRAY_SIZE(direction_names), val(ps, K_DIRECTION));

	if (v < 0)
		return fail(ps, K_DIRECTION, "must be out, in or both");
	ps->r->dir_mask = (uint8_t)v;
	return 0;
}

static int parse_family(struct parser *ps, enum rule_key k _unused_)
{
	const char *s = val(ps, K_FAMILY);

	if (strcasecmp(s, family_names[0]) == 0 || strcasecmp(s, "ipv4") == 0)
		ps->r->m.family = AF_INET;
	else if (strcasecmp(s, family_names[1]) == 0 || strcasecmp(s, "ipv6") == 0)
		ps->r->m.family = AF_INET6;
	else
		return fail(ps, K_FAMILY, "must be ip or ip6");
	return 0;
}

static int parse_proto(struct parser *ps, enum rule_key k _unused_)
{
	struct rule *r = ps->r;
	unsigned long v;
	int ret;

	ret = parse_named(ps, K_PROTO, proto_names, ARRAY_SIZE(proto_names), 255, &v);
	if (ret < 0)
		return ret;
	r->m.flags |= RULE_M_PROTO;
	r->m.proto = (uint8_t)v;
	if (proto_family(r) && r->m.family && proto_family(r) != r->m.family)
		return fail(ps, K_PROTO, "conflicts with family=%s", family_name(r->m.family));
	return 0;
}

static void prefix_set(struct rule_prefix *pf, const uint8_t *addr, unsigned int len)
{
	uint8_t a[16] = { 0 }, m[16] = { 0 };

	for (unsigned int i = 0; i < len / 8; i++)
		m[i] = 0xff;
	if (len % 8)
		m[len / 8] = (uint8_t)(0xff00 >> (len % 8));
	for (unsigned int i = 0; i < 16; i++)
		a[i] = addr[i] & m[i];
	memcpy(pf->addr, a, 16);
	memcpy(pf->mask, m, 16);
	pf->len = (uint8_t)len;
}

static int parse_prefix(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	const char *s = val(ps, k);
	bool neg = false;
	char buf[INET6_ADDRSTRLEN + 8];
	uint8_t addr[16] = { 0 };
	unsigned long len;
	int family, max;
	char *slash;

	if (*s == '!') {
		neg = true;
		s++;
	}
	if (strlen(s) >= sizeof(buf))
		return fail(ps, k, "not an address or prefix");
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1) {
		family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		family = AF_INET6;
		max = 128;
	} else {
		return fail(ps, k, "not an IPv4 or IPv6 address");
	}
	len = (unsigned long)max;
	if (slash) {
		int ret = parse_uint(slash + 1, (unsigned long)max, &len);

		if (ret == -ERANGE)
			return fail(ps, k, "prefix length out of range");
		if (ret < 0)
			return fail(ps, k, "bad prefix length");
	}

	if (r->m.family && r->m.family != family) {
		/* Name what set the family, so the message explains the conflict. */
		if (k == K_DST && has(ps, K_SRC))
			return fail(ps, k, "family differs from src");
		return fail(ps, k, "conflicts with family=%s", family_name(r->m.family));
	}
	if (proto_family(r) && proto_family(r) != family)
		return fail(ps, k, "conflicts with proto");
	r->m.family = (uint8_t)family;

	if (k == K_SRC) {
		prefix_set(&r->m.src, addr, (unsigned int)len);
		r->m.flags |= RULE_M_SRC | (neg ? RULE_M_SRC_NOT : 0);
	} else {
		prefix_set(&r->m.dst, addr, (unsigned int)len);
		r->m.flags |= RULE_M_DST | (neg ? RULE_M_DST_NOT : 0);
	}
	return 0;
}

static bool proto_has_ports(const struct rule *r)
{
	return (r->m.flags & RULE_M_PROTO) &&
	       (r->m.proto == IPPROTO_TCP || r->m.proto == IPPROTO_UDP ||
		r->m.proto == IPPROTO_SCTP);
}

static int parse_port(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	const char *s = val(ps, k);
	unsigned long lo, hi;
	bool neg = false;
	int ret;

	if (!proto_has_ports(r))
		return fail(ps, k, "needs proto=tcp, udp or sctp");
	if (*s == '!') {
		neg = true;
		s++;
	}
	ret = parse_range(ps, k, s, 65535, &lo, &hi);
	if (ret < 0)
		return ret;
	if (k == K_SPORT) {
		r->m.flags |= RULE_M_SPORT | (neg ? RULE_M_SPORT_NOT : 0);
		r->m.sport_lo = (uint16_t)lo;
		r->m.sport_hi = (uint16_t)hi;
	} else {
		r->m.flags |= RULE_M_DPORT | (neg ? RULE_M_DPORT_NOT : 0);
		r->m.dport_lo = (uint16_t)lo;
		r->m.dport_hi = (uint16_t)hi;
	}
	return 0;
}

static int parse_icmp_type(struct parser *ps, enum rule_key k _unused_)
{
	struct rule *r = ps->r;
	const char *s = val(ps, K_ICMP_TYPE);
	bool number = *s >= '0' && *s <= '9';
	unsigned long v;
	int v4, v6, family;

	if (r->m.flags & RULE_M_PROTO) {
		family = proto_family(r);
		if (!family)
			return fail(ps, K_ICMP_TYPE, "needs proto=icmp or icmpv6");
	} else {
		family = r->m.family;
	}

	if (number) {
		if (!family)
			return fail(ps, K_ICMP_TYPE,
				    "a number needs proto=icmp or icmpv6 (or a family)");
		if (parse_number(ps, K_ICMP_TYPE, s, 0, 255, &v) < 0)
			return -EINVAL;
		v4 = v6 = (int)v;
	} else {
		v4 = lookup_name(icmp4_names, ARRAY_SIZE(icmp4_names), s);
		v6 = lookup_name(icmp6_names, ARRAY_SIZE(icmp6_names), s);
		if (family == AF_INET && v4 < 0)
			return fail(ps, K_ICMP_TYPE, "not an ICMP (IPv4) type name");
		if (family == AF_INET6 && v6 < 0)
			return fail(ps, K_ICMP_TYPE, "not an ICMPv6 type name");
		if (v4 < 0 && v6 < 0)
			return fail(ps, K_ICMP_TYPE, "unknown name");
	}

	if (family == AF_INET || (!family && v6 < 0)) {
		r->m.flags |= RULE_M_ICMP4_TYPE;
		r->m.icmp_type[0] = (uint8_t)v4;
	}
	if (family == AF_INET6 || (!family && v4 < 0)) {
		r->m.flags |= RULE_M_ICMP6_TYPE;
		r->m.icmp_type[1] = (uint8_t)v6;
	}
	if (!family && v4 >= 0 && v6 >= 0) {
		r->m.flags |= RULE_M_ICMP4_TYPE | RULE_M_ICMP6_TYPE;
		r->m.icmp_type[0] = (uint8_t)v4;
		r->m.icmp_type[1] = (uint8_t)v6;
	}
	/* With one family the type is as good as a proto: make it explicit (canonical form). */
	if (family && !(r->m.flags & RULE_M_PROTO)) {
		r->m.flags |= RULE_M_PROTO;
		r->m.proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	}
	return 0;
}

static int parse_icmp_code(struct parser *ps, enum rule_key k _unused_)
{
	struct rule *r = ps->r;
	unsigned long v;

	if (!proto_family(r) && !(r->m.flags & (RULE_M_ICMP4_TYPE | RULE_M_ICMP6_TYPE)))
		return fail(ps, K_ICMP_CODE, "needs proto=icmp or icmpv6, or icmp-type");
	if (parse_number(ps, K_ICMP_CODE, val(ps, K_ICMP_CODE), 0, 255, &v) < 0)
		return -EINVAL;
	r->m.flags |= RULE_M_ICMP_CODE;
	r->m.icmp_code = (uint8_t)v;
	return 0;
}

static int parse_tcp_flags(struct parser *ps, enum rule_key k _unused_)
{
	struct rule *r = ps->r;
	const char *s = val(ps, K_TCP_FLAGS);
	uint8_t mask = 0, set = 0;

	if (!(r->m.flags & RULE_M_PROTO) || r->m.proto != IPPROTO_TCP)
		return fail(ps, K_TCP_FLAGS, "needs proto=tcp");
	for (;;) {
		size_t l = strcspn(s, ",");
		bool clear = false;
		unsigned int bit;

		if (*s == '!') {
			clear = true;
			s++;
			l--;
		}
		for (bit = 0; bit < 8; bit++)
			if (strlen(tcp_flag_names[bit]) == l && strncasecmp(s, tcp_flag_names[bit], l) == 0)
				break;
		if (bit == 8)
			return fail(ps, K_TCP_FLAGS,
				    "flags are fin syn rst psh ack urg ece cwr, '!' for clear");
		if (mask & (1u << bit))
			return fail(ps, K_TCP_FLAGS, "%s given twice", tcp_flag_names[bit]);
		mask |= (uint8_t)(1u << bit);
		if (!clear)
			set |= (uint8_t)(1u << bit);
		s += l;
		if (!*s)
			break;
		s++;
	}
	r->m.flags |= RULE_M_TCP_FLAGS;
	r->m.tcp_mask = mask;
	r->m.tcp_set = set;
	return 0;
}

/* A fraction 0..1 in the whole of s; -EINVAL (not a number) or -ERANGE. */
static int parse_fraction_str(const char *s, double *ret)
{
	char *end;
	double p;

	/* strtod() alone would take "nan", "inf" and hex floats. */
	if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
		return -EINVAL;
	errno = 0;
	p = strtod(s, &end);
	if (*end || errno == ERANGE)
		return -EINVAL;
	if (!(p >= 0.0 && p <= 1.0))
		return -ERANGE;
	*ret = p;
	return 0;
}

static int parse_fraction(struct parser *ps, enum rule_key k, double *ret)
{
	int r = parse_fraction_str(val(ps, k), ret);

	if (r == -EINVAL)
		return fail(ps, k, "not a number");
	if (r < 0)
		return fail(ps, k, "out of range 0-1");
	return 0;
}

static int parse_probability(struct parser *ps, enum rule_key k _unused_)
{
	struct rule *r = ps->r;
	double p = 0;

	if (parse_fraction(ps, K_PROBABILITY, &p) < 0)
		return -EINVAL;
	r->m.flags |= RULE_M_PROBABILITY;
	r->probability = p;
	/* Exact (a power of two); 2^53 for p = 1 is above any 53-bit random number. */
	r->m.prob_threshold = (uint64_t)(p * 9007199254740992.0);
	return 0;
}

static int parse_set_ttl(struct parser *ps, enum rule_key k _unused_)
{
	struct rule *r = ps->r;
	const char *s = val(ps, K_SET_TTL);
	unsigned long v;

	if (*s == '+') {
		r->a.ttl_op = RULE_TTL_INC;
		s++;
	} else if (*s == '-') {
		r->a.ttl_op = RULE_TTL_DEC;
		s++;
	} else {
		r->a.ttl_op = RULE_TTL_SET;
	}
	if (parse_number(ps, K_SET_TTL, s, 1, 255, &v) < 0)
		return -EINVAL;
	r->a.ttl = (uint8_t)v;
	return 0;
}

static int parse_verdict(struct parser *ps, enum rule_key k _unused_)
{
	int v = lookup_name(verdict_names, ARRAY_SIZE(verdict_names), val(ps, K_VERDICT));

	if (v < 0)
		return fail(ps, K_VERDICT, "must be accept, drop, reply or reject");
	ps->r->a.verdict = (uint8_t)v;
	return 0;
}

static int parse_reject_with(struct parser *ps, enum rule_key k _unused_)
{
	struct rule *r = ps->r;
	int v = lookup_name(reject_names, ARRAY_SIZE(reject_names), val(ps, K_REJECT_WITH));

	if (v < 0)
		return fail(ps, K_REJECT_WITH,
			    "must be tcp-reset, net-unreachable, host-unreachable, "
			    "port-unreachable, proto-unreachable or admin-prohibited");
	if (r->a.verdict != RULE_VERDICT_REJECT)
		return fail(ps, K_REJECT_WITH, "needs verdict=reject");
	if (v == RULE_REJECT_TCP_RESET && (!(r->m.flags & RULE_M_PROTO) || r->m.proto != IPPROTO_TCP))
		return fail(ps, K_REJECT_WITH, "needs proto=tcp");
	r->a.reject = (uint8_t)v;
	return 0;
}

/* Milliseconds with at most 3 decimals, 0..60000, as microseconds. */
static int parse_ms_str(struct parser *ps, enum rule_key k, const char *s, uint32_t *ret)
{
	unsigned long ms = 0, us = 0;
	size_t il = strspn(s, "0123456789"), fl = 0;

	if (il == 0)
		goto bad;
	if (s[il] == '.') {
		fl = strspn(s + il + 1, "0123456789");
		if (fl == 0 || fl > 3 || s[il + 1 + fl])
			goto bad;
		for (size_t i = 0; i < 3; i++)
			us = us * 10 + (i < fl ? (unsigned long)(s[il + 1 + i] - '0') : 0);
	} else if (s[il]) {
		goto bad;
	}
	for (size_t i = 0; i < il && ms <= RULE_DELAY_MAX_US; i++)
		ms = ms * 10 + (unsigned long)(s[i] - '0');
	if (ms > RULE_DELAY_MAX_US / 1000 || ms * 1000 + us > RULE_DELAY_MAX_US)
		return fail(ps, k, "out of range 0-%u ms", RULE_DELAY_MAX_US / 1000);
	*ret = (uint32_t)(ms * 1000 + us);
	return 0;
bad:
	return fail(ps, k, "not a number of milliseconds (at most 3 decimals)");
}

static int parse_ms(struct parser *ps, enum rule_key k, uint32_t *ret)
{
	return parse_ms_str(ps, k, val(ps, k), ret);
}

/* A signed byte count, -RULE_OVERHEAD_MAX..RULE_OVERHEAD_MAX. */
static int parse_overhead(struct parser *ps, enum rule_key k, int32_t *ret)
{
	const char *s = val(ps, k);
	unsigned long v;
	bool neg = *s == '-';
	int r = parse_uint(s + neg, RULE_OVERHEAD_MAX, &v);

	if (r == -EINVAL)
		return fail(ps, k, "not a number");
	if (r < 0)
		return fail(ps, k, "out of range -%d-%d", RULE_OVERHEAD_MAX, RULE_OVERHEAD_MAX);
	*ret = neg ? -(int32_t)v : (int32_t)v;
	return 0;
}

/* "MIN[,MAX[,PACKETS[,BYTES]]]": times in ms, PACKETS and BYTES 0 (no bound) or more. */
static int parse_slot_value(struct parser *ps)
{
	struct rule_impair *im = &ps->r->impair;
	char buf[128], *f[4] = { buf, NULL, NULL, NULL }, *c;
	unsigned long pk = 0, by = 0;
	size_t n = 1;
	int r;

	if (strlen(val(ps, K_SLOT)) >= sizeof(buf))
		goto bad;
	strcpy(buf, val(ps, K_SLOT));
	for (c = buf; (c = strchr(c, ',')); ) {
		if (n == 4)
			goto bad;
		*c++ = '\0';
		f[n++] = c;
	}
	if (parse_ms_str(ps, K_SLOT, f[0], &im->slot_min_us) < 0)
		return -EINVAL;
	im->slot_max_us = im->slot_min_us;
	if (f[1] && parse_ms_str(ps, K_SLOT, f[1], &im->slot_max_us) < 0)
		return -EINVAL;
	if (im->slot_max_us < im->slot_min_us)
		return fail(ps, K_SLOT, "MAX below MIN");
	if (!im->slot_max_us)
		return fail(ps, K_SLOT, "needs a slot time above 0");
	r = f[2] ? parse_uint(f[2], RULE_SLOT_PKTS_MAX, &pk) : 0;
	if (r == 0 && f[3])
		r = parse_uint(f[3], RULE_SLOT_BYTES_MAX, &by);
	if (r == -ERANGE)
		return fail(ps, K_SLOT, "PACKETS 0-%u, BYTES 0-%u (0: no bound)",
			    RULE_SLOT_PKTS_MAX, RULE_SLOT_BYTES_MAX);
	if (r < 0)
		goto bad;
	im->slot_pkts = (uint32_t)pk;
	im->slot_bytes = (uint32_t)by;
	return 0;
bad:
	return fail(ps, K_SLOT, "must be MIN[,MAX[,PACKETS[,BYTES]]] (ms, ms, packets, bytes)");
}

static uint64_t table_hash(const int16_t *v, uint32_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint32_t i = 0; i < n; i++) {
		h = (h ^ (uint16_t)v[i]) * 0x100000001b3ULL;
	}
	return h;
}

/*
 * An iproute2 .dist file: integers -32768..32767 separated by white space,
 * '#' to the end of the line a comment; 1..RULE_TABLE_MAX of them, the file
 * at most RULE_TABLE_FILE_MAX bytes.
 */
static int load_table(struct parser *ps, const char *path)
{
	_cleanup_(freep) char *buf = NULL;
	_cleanup_(freep) struct rule_table *t = NULL;
	size_t len = 0, line = 1;
	struct stat st;
	char *p;
	int fd;

	if (path[0] != '/' || strlen(path) >= sizeof(t->path) || strpbrk(path, " \t\n\"'\\"))
		return fail(ps, K_DISTRIBUTION,
			    "a file must be @/absolute/path (no spaces or quotes, "
			    "at most %zu characters)", sizeof(t->path) - 1);
	buf = malloc(RULE_TABLE_FILE_MAX + 1);
	t = calloc(1, sizeof(*t) + RULE_TABLE_MAX * sizeof(t->v[0]));
	if (!buf || !t)
		return -ENOMEM;
	/* Never block: a FIFO or a terminal would hang the daemon. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fail(ps, K_DISTRIBUTION, "%s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(ps, K_DISTRIBUTION, "not a regular file");
	}
	while (len <= RULE_TABLE_FILE_MAX) {
		ssize_t n = read(fd, buf + len, RULE_TABLE_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return fail(ps, K_DISTRIBUTION, "%s", strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > RULE_TABLE_FILE_MAX)
		return fail(ps, K_DISTRIBUTION, "file above %u bytes", RULE_TABLE_FILE_MAX);
	buf[len] = '\0';
	if (strlen(buf) != len)
		return fail(ps, K_DISTRIBUTION, "line %zu: a NUL byte", line);
	for (p = buf; *p;) {
		char *end;
		long v;

		if (*p == '\n') {
			line++;
			p++;
			continue;
		}
		if (isspace((unsigned char)*p)) {
			p++;
			continue;
		}
		if (*p == '#') {
			p += strcspn(p, "\n");
			continue;
		}
		errno = 0;
		v = strtol(p, &end, 10);
		if (end == p || (*end && !isspace((unsigned char)*end) && *end != '#'))
			return fail(ps, K_DISTRIBUTION, "line %zu: not an integer", line);
		if (errno == ERANGE || v < INT16_MIN || v > INT16_MAX)
			return fail(ps, K_DISTRIBUTION, "line %zu: out of range -32768-32767",
				    line);
		if (t->n == RULE_TABLE_MAX)
			return fail(ps, K_DISTRIBUTION, "line %zu: more than %u values", line,
				    RULE_TABLE_MAX);
		t->v[t->n++] = (int16_t)v;
		p = end;
	}
	if (!t->n)
		return fail(ps, K_DISTRIBUTION, "no values");
	t->refs = 1;
	t->hash = table_hash(t->v, t->n);
	strcpy(t->path, path);
	ps->r->impair.table = t;
	t = NULL;
	return 0;
}

/*
 * sets (issue 14).  The files a scope has read, by kind and path: rules of
 * one config file naming the same list share it (rule.h).  Per thread, as
 * a parse runs in one thread from begin to end.
 */
static __thread struct {
	bool open;
	unsigned int n;
	struct rule_set *s[RULE_SET_SCOPE_FILES];
} set_scope;

static void set_unref(const struct rule_set *cs)
{
	struct rule_set *s = (struct rule_set *)cs;

	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	prefixset_free(s->prefixes);
	hostset_free(s->hosts);
	free(s);
}

static void set_ref(const struct rule_set *cs)
{
	if (cs)
		__atomic_add_fetch(&((struct rule_set *)cs)->refs, 1, __ATOMIC_RELAXED);
}

void rule_set_scope_end(void)
{
	for (unsigned int i = 0; i < set_scope.n; i++)
		set_unref(set_scope.s[i]);
	set_scope.n = 0;
	set_scope.open = false;
}

void rule_set_scope_begin(void)
{
	rule_set_scope_end();
	set_scope.open = true;
}

static void scope_share(const struct rule_set *cs)
{
	if (!cs || !set_scope.open || set_scope.n == RULE_SET_SCOPE_FILES)
		return;
	for (unsigned int i = 0; i < set_scope.n; i++)
		if (set_scope.s[i]->kind == cs->kind && strcmp(set_scope.s[i]->path, cs->path) == 0)
			return;
	set_ref(cs);
	set_scope.s[set_scope.n++] = (struct rule_set *)cs;
}

void rule_set_scope_share(const struct rule *r)
{
	scope_share(r->m.src_set);
	scope_share(r->m.dst_set);
	scope_share(r->m.host_set);
}

/*
 * The whole list file into *buf (of *len bytes).  Never blocks: a FIFO or a
 * terminal would hang the daemon, so only a regular file of at most
 * RULE_SET_FILE_MAX bytes, opened O_NONBLOCK and checked on its descriptor.
 */
static int read_set_file(const char *path, char **buf, size_t *len, char *msg, size_t msglen)
{
	_cleanup_(freep) char *b = NULL;
	struct stat st;
	size_t n = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		return err_set(msg, msglen, r, "%s: %s", path, strerror(-r));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = err_set(msg, msglen, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > RULE_SET_FILE_MAX) {
		r = err_set(msg, msglen, -EFBIG, "%s: above %u bytes", path, RULE_SET_FILE_MAX);
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		r = -ENOMEM;
		goto out;
	}
	/* A file that grows meanwhile is read up to the size it had. */
	while (n < (size_t)st.st_size) {
		ssize_t got = read(fd, b + n, (size_t)st.st_size - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			err_set(msg, msglen, r, "%s: %s", path, strerror(-r));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
out:
	close(fd);
	return r;
}

static int load_set(struct parser *ps, enum rule_key k, const char *path, uint8_t kind,
		    const struct rule_set **ret)
{
	_cleanup_(freep) struct rule_set *s = NULL;
	_cleanup_(freep) char *buf = NULL;
	char msg[ERR_MAX];
	size_t len = 0;
	int r;

	if (path[0] != '/' || strlen(path) >= sizeof(s->path) || strpbrk(path, " \t\n\"'\\"))
		return fail(ps, k, "a list must be @/absolute/path (no spaces or quotes, "
			    "at most %zu characters)", sizeof(s->path) - 1);
	/* The path goes into messages and logs as it is: printable ASCII only. */
	for (const char *c = path; *c; c++)
		if (!isgraph((unsigned char)*c))
			return fail(ps, k, "a list's path of printable characters only");
	for (unsigned int i = 0; set_scope.open && i < set_scope.n; i++) {
		if (set_scope.s[i]->kind == kind && strcmp(set_scope.s[i]->path, path) == 0) {
			set_ref(set_scope.s[i]);
			*ret = set_scope.s[i];
			return 0;
		}
	}
	if (set_scope.open && set_scope.n == RULE_SET_SCOPE_FILES)
		return fail(ps, k, "more than %d list files in the rules", RULE_SET_SCOPE_FILES);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = kind;
	msg[0] = '\0';
	r = read_set_file(path, &buf, &len, msg, sizeof(msg));
	if (r < 0)
		return r == -ENOMEM ? r : fail(ps, k, "%s", msg);
	if (kind == RULE_SET_PREFIX) {
		struct prefixset_stats st;

		r = prefixset_from_text(buf, len, path, &s->prefixes, msg, sizeof(msg));
		if (r == 0) {
			prefixset_stats(s->prefixes, &st);
			s->entries = st.prefixes4 + st.prefixes6;
			s->bytes = st.bytes;
		}
	} else {
		struct hostset_stats st;

		r = hostset_from_text(buf, len, path, &s->hosts, msg, sizeof(msg));
		if (r == 0) {
			hostset_stats(s->hosts, &st);
			s->entries = st.names;
			s->bytes = st.bytes;
		}
	}
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		/*
		 * "file:line: reason", without the line's text the library quotes
		 * after it: a rule added over the control socket must not show its
		 * client lines of a file the client could not read itself.
		 */
		char *q = strstr(msg, ": \"");

		if (q)
			*q = '\0';
		return fail(ps, k, "%s", msg[0] ? msg : strerror(-r));
	}
	s->refs = 1;
	strcpy(s->path, path);
	if (set_scope.open) {
		set_ref(s);
		set_scope.s[set_scope.n++] = s;
	}
	*ret = s;
	s = NULL;
	return 0;
}

/* src-set, dst-set = "[!]@/path"; host-set = "@/path". */
static int parse_set(struct parser *ps, enum rule_key k)
{
	struct rule_match *m = &ps->r->m;
	const char *s = val(ps, k);
	const struct rule_set **slot = &m->host_set;
	uint32_t has = RULE_M_HOST_SET, not = 0;
	uint8_t kind = RULE_SET_PREFIX;
	int r;

	if (k == K_SRC_SET) {
		slot = &m->src_set;
		has = RULE_M_SRC_SET;
		not = RULE_M_SRC_SET_NOT;
	} else if (k == K_DST_SET) {
		slot = &m->dst_set;
		has = RULE_M_DST_SET;
		not = RULE_M_DST_SET_NOT;
	} else {
		kind = RULE_SET_HOST;
	}
	if (*s == '!' && not) {
		m->flags |= not;
		s++;
	}
	if (*s != '@')
		return fail(ps, k, "must be @/absolute/path of a list file");
	r = load_set(ps, k, s + 1, kind, slot);
	if (r < 0)
		return r;
	m->flags |= has;
	return 0;
}

static int parse_distribution(struct parser *ps, enum rule_key k _unused_)
{
	struct rule_impair *im = &ps->r->impair;
	const char *s = val(ps, K_DISTRIBUTION);
	int ret;

	if (!has(ps, K_JITTER))
		return fail(ps, K_DISTRIBUTION, "needs jitter");
	if (*s == '@') {
		im->dist = RULE_DIST_FILE;
		return load_table(ps, s + 1);
	}
	ret = lookup_name(dist_names, ARRAY_SIZE(dist_names), s);
	if (ret < 0)
		return fail(ps, K_DISTRIBUTION,
			    "must be uniform, normal, pareto, paretonormal or @/path/to/file.dist");
	im->dist = (uint8_t)ret;
	return 0;
}

/* "gemodel:P,R[,BADLOSS[,GOODLOSS]]" */
static int parse_gemodel(struct parser *ps, const char *s)
{
	struct rule_impair *im = &ps->r->impair;
	double v[4] = { 0, 0, 1, 0 };
	char buf[128];
	char *save = NULL, *tok;
	size_t n = 0;

	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	/* strtok_r() would skip empty fields: "gemodel:0.1,,0.2" must fail. */
	if (!*buf || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,") || *buf == ',')
		goto bad;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int r;

		if (n == 4)
			goto bad;
		r = parse_fraction_str(tok, &v[n]);
		if (r == -ERANGE)
			return fail(ps, K_LOSS, "gemodel: %s out of range 0-1",
				    n == 0 ? "P" : n == 1 ? "R" : n == 2 ? "BADLOSS" : "GOODLOSS");
		if (r < 0)
			goto bad;
		n++;
	}
	if (n < 2)
		goto bad;
	im->loss_ge = true;
	im->ge_p = v[0];
	im->ge_r = v[1];
	im->ge_bad_loss = v[2];
	im->ge_good_loss = v[3];
	return 0;
bad:
	return fail(ps, K_LOSS, "must be gemodel:P,R[,BADLOSS[,GOODLOSS]], fractions 0-1");
}

static int parse_loss_value(struct parser *ps)
{
	const char *s = val(ps, K_LOSS);

	if (strncasecmp(s, "gemodel:", 8) == 0)
		return parse_gemodel(ps, s + 8);
	if (strncasecmp(s, "gemodel", 7) == 0)
		return fail(ps, K_LOSS, "must be gemodel:P,R[,BADLOSS[,GOODLOSS]]");
	return parse_fraction(ps, K_LOSS, &ps->r->impair.loss);
}

static int parse_rate_value(struct parser *ps)
{
	struct rule_impair *im = &ps->r->impair;
	const char *s = val(ps, K_RATE);
	size_t l = strspn(s, "0123456789");
	const char *unit = s + l;
	uint64_t mult = 1, max = RULE_RATE_PPS_MAX, min = 1, v = 0;

	if (s[0] == '@') {
		size_t n = strlen(s + 1);

		if (s[1] != '/')
			return fail(ps, K_RATE, "a trace needs an absolute path (@/...)");
		if (n >= RULE_TRACE_MAX)
			return fail(ps, K_RATE, "trace path longer than %d", RULE_TRACE_MAX - 1);
		if (strspn(s + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				  "0123456789._/+-") != n)
			return fail(ps, K_RATE, "trace path of letters, digits and ._/+- only");
		memcpy(im->trace, s + 1, n + 1);
		return 0;
	}
	if (l == 0)
		return fail(ps, K_RATE, "not a number with a unit (bit, kbit, mbit, gbit or pps)");
	if (!*unit)
		return fail(ps, K_RATE, "needs a unit: bit, kbit, mbit, gbit or pps");
	if (strcasecmp(unit, "pps") == 0) {
		im->rate_pps = true;
	} else {
		mult = 0;
		for (size_t i = 0; i < ARRAY_SIZE(rate_units); i++)
			if (strcasecmp(unit, rate_units[i].name) == 0)
				mult = rate_units[i].mult;
		if (!mult)
			return fail(ps, K_RATE, "unit must be bit, kbit, mbit, gbit or pps");
		max = RULE_RATE_BIT_MAX;
		min = RULE_RATE_BIT_MIN;
	}
	/* 64-bit arithmetic: 100gbit does not fit a 32-bit unsigned long. */
	for (size_t i = 0; i < l; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			goto range;
	}
	if (v > max / mult || v * mult < min)
		goto range;
	im->rate = v * mult;
	return 0;
range:
	if (im->rate_pps)
		return fail(ps, K_RATE, "out of range 1-%llupps", (unsigned long long)RULE_RATE_PPS_MAX);
	return fail(ps, K_RATE, "out of range 1kbit-100gbit");
}

/* The keys of a trace link (rate=@PATH). */
static int parse_trace_key(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;
	unsigned long v;
	int ret;

	if (!im->trace[0])
		return fail(ps, k, "needs a trace link (rate=@PATH)");
	switch (k) {
	case K_QUEUE:
		ret = parse_number(ps, k, val(ps, k), 1, RULE_LIMIT_MAX, &v);
		if (ret == 0)
			im->queue_pkts = (uint32_t)v;
		return ret;
	case K_QUEUE_BYTES:
		ret = parse_number(ps, k, val(ps, k), 1500, RULE_QUEUE_BYTES_MAX, &v);
		if (ret == 0)
			im->queue_bytes = (uint32_t)v;
		return ret;
	case K_AQM:
		ret = lookup_name(aqm_names, ARRAY_SIZE(aqm_names), val(ps, k));
		if (ret < 0)
			return fail(ps, k, "must be droptail or codel");
		im->aqm = (uint8_t)ret;
		return 0;
	case K_CODEL_TARGET:
	case K_CODEL_INTERVAL:
		if (im->aqm != RULE_AQM_CODEL)
			return fail(ps, k, "needs aqm=codel");
		ret = parse_ms(ps, k, k == K_CODEL_TARGET ? &im->codel_target_us :
				&im->codel_interval_us);
		if (ret == 0 && !(k == K_CODEL_TARGET ? im->codel_target_us : im->codel_interval_us))
			return fail(ps, k, "must be above 0");
		return ret;
	default:
		return -EINVAL;
	}
}

/* seed=N: any 64-bit number. */
static int parse_seed(struct parser *ps, enum rule_key k _unused_)
{
	const char *s = val(ps, K_SEED);
	size_t l = strspn(s, "0123456789");
	uint64_t v = 0;

	if (l == 0 || s[l] || l > 20)
		return fail(ps, K_SEED, "not a number 0-18446744073709551615");
	for (size_t i = 0; i < l; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return fail(ps, K_SEED, "out of range 0-18446744073709551615");
		v = v * 10 + d;
	}
	ps->r->impair.seeded = true;
	ps->r->impair.seed = v;
	return 0;
}

/* expire=N{ms,s,m,h}. */
static int parse_expire(struct parser *ps, enum rule_key k _unused_)
{
	const char *s = val(ps, K_EXPIRE);
	size_t l = strspn(s, "0123456789");
	uint64_t v = 0;
	uint32_t mult = 0;

	if (l == 0 || l > 10)
		goto bad;
	for (size_t i = 0; i < ARRAY_SIZE(expire_units); i++)
		if (strcmp(s + l, expire_units[i].name) == 0)
			mult = expire_units[i].ms;
	if (!mult)
		goto bad;
	for (size_t i = 0; i < l; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	if (v == 0 || v * mult > RULE_EXPIRE_MAX_MS)
		return fail(ps, K_EXPIRE, "out of range 1ms-7 days");
	ps->r->expire_ms = (uint32_t)(v * mult);
	return 0;
bad:
	return fail(ps, K_EXPIRE, "not a duration: a number with ms, s, m or h");
}

static int parse_ttl(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	unsigned long v, hi;
	int ret;

	ret = parse_range(ps, k, val(ps, k), 255, &v, &hi);
	if (ret < 0)
		return ret;
	r->m.flags |= RULE_M_TTL;
	r->m.ttl_lo = (uint8_t)v;
	r->m.ttl_hi = (uint8_t)hi;
	return 0;
}

static int parse_length(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	unsigned long v, hi;
	int ret;

	ret = parse_range(ps, k, val(ps, k), 65535, &v, &hi);
	if (ret < 0)
		return ret;
	r->m.flags |= RULE_M_LENGTH;
	r->m.len_lo = (uint16_t)v;
	r->m.len_hi = (uint16_t)hi;
	return 0;
}

/* ---- flow: connection-aware matches (issue 14) ---- */

static const struct name_value flow_state_names[] = {
	{ "new", FLOW_STATE_NEW },
	{ "established", FLOW_STATE_ESTABLISHED },
	{ "closing", FLOW_STATE_CLOSING },
};

static const struct name_value flow_dir_names[] = {
	{ "original", FLOW_DIR_ORIGINAL },
	{ "reply", FLOW_DIR_REPLY },
};

static int parse_flow_packets(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	unsigned long lo, hi;
	int ret;

	ret = parse_range(ps, k, val(ps, k), RULE_FLOW_PACKETS_MAX, &lo, &hi);
	if (ret < 0)
		return ret;
	if (lo < 1)
		return fail(ps, k, "positions count from 1");
	r->m.flags |= RULE_M_FLOW;
	r->flow.flags |= RULE_F_PACKETS;
	r->flow.pkts_lo = (uint32_t)lo;
	r->flow.pkts_hi = (uint32_t)hi;
	return 0;
}

static int parse_flow_bytes(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	unsigned long lo, hi;
	int ret;

	ret = parse_range(ps, k, val(ps, k), RULE_FLOW_BYTES_MAX, &lo, &hi);
	if (ret < 0)
		return ret;
	r->m.flags |= RULE_M_FLOW;
	r->flow.flags |= RULE_F_BYTES;
	r->flow.bytes_lo = lo;
	r->flow.bytes_hi = hi;
	return 0;
}

static int parse_flow_state(struct parser *ps, enum rule_key k)
{
	int v = lookup_name(flow_state_names, ARRAY_SIZE(flow_state_names), val(ps, k));

	if (v < 0)
		return fail(ps, k, "not new, established or closing");
	ps->r->m.flags |= RULE_M_FLOW;
	ps->r->flow.flags |= RULE_F_STATE;
	ps->r->flow.state = (uint8_t)v;
	return 0;
}

static int parse_flow_dir(struct parser *ps, enum rule_key k)
{
	int v = lookup_name(flow_dir_names, ARRAY_SIZE(flow_dir_names), val(ps, k));

	if (v < 0)
		return fail(ps, k, "not original or reply");
	ps->r->m.flags |= RULE_M_FLOW;
	ps->r->flow.flags |= RULE_F_DIR;
	ps->r->flow.dir = (uint8_t)v;
	return 0;
}

/* ---- names: tls-sni, http-host, quic-sni (issue 14) ---- */

static unsigned int names_kind(enum rule_key k)
{
	return k == K_TLS_SNI ? RULE_NAME_TLS : k == K_HTTP_HOST ? RULE_NAME_HTTP : RULE_NAME_QUIC;
}

static const uint8_t names_flag[RULE_NAME_KINDS] = {
	[RULE_NAME_TLS] = RULE_F_TLS_SNI,
	[RULE_NAME_HTTP] = RULE_F_HTTP_HOST,
	[RULE_NAME_QUIC] = RULE_F_QUIC_SNI,
};

/*
 * "a.example.com,*.b.test": each name 1..253 characters of letters, digits,
 * '-', '_' and '.', no empty label, lowercased; "*." only in front.
 */
static int parse_names(struct parser *ps, enum rule_key k)
{
	unsigned int kind = names_kind(k), count = 0;
	uint8_t want = kind == RULE_NAME_QUIC ? IPPROTO_UDP : IPPROTO_TCP;
	char *out = ps->r->flow.names[kind];
	const char *s = val(ps, k);
	size_t used = 0;

	if (!*s)
		return fail(ps, k, "no name");
	for (;;) {
		size_t len = strcspn(s, ","), i = 0;

		if (++count > RULE_NAMES_MAX)
			return fail(ps, k, "more than %d names", RULE_NAMES_MAX);
		if (!len || len > 253)
			return fail(ps, k, "a name is 1..253 characters");
		if (len >= 2 && s[0] == '*' && s[1] == '.')
			i = 2;
		if (i == len)
			return fail(ps, k, "'*.' needs a domain after it");
		for (size_t j = i; j < len; j++) {
			char c = s[j];

			if (!isalnum((unsigned char)c) && c != '-' && c != '_' && c != '.')
				return fail(ps, k, "a name has letters, digits, '-', '_' and '.' (and '*.' in front)");
			if (c == '.' && (j == i || s[j - 1] == '.'))
				return fail(ps, k, "an empty label");
		}
		if (used + len + 2 > RULE_NAMES_BYTES)
			return fail(ps, k, "the names are longer than %d bytes in all", RULE_NAMES_BYTES - 2);
		for (size_t j = 0; j < len; j++)
			out[used + j] = (char)tolower((unsigned char)s[j]);
		used += len;
		out[used++] = '\0';
		if (!s[len])
			break;
		s += len + 1;
	}
	out[used] = '\0';
	/* TLS and HTTP names come over TCP, QUIC's over UDP: the key implies its protocol. */
	if (!(ps->r->m.flags & RULE_M_PROTO)) {
		ps->r->m.flags |= RULE_M_PROTO;
		ps->r->m.proto = want;
	} else if (ps->r->m.proto != want) {
		return fail(ps, k, "needs proto=%s (implied when proto is not given)",
			    want == IPPROTO_UDP ? "udp" : "tcp");
	}
	ps->r->m.flags |= RULE_M_FLOW;
	ps->r->flow.flags |= names_flag[kind];
	return 0;
}


static int parse_dscp(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	unsigned long v;
	int ret;

	ret = parse_named(ps, k, dscp_names, ARRAY_SIZE(dscp_names), 63, &v);
	if (ret < 0)
		return ret;
	r->m.flags |= RULE_M_DSCP;
	r->m.dscp = (uint8_t)v;
	return 0;
}

static int parse_set_dscp(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	unsigned long v;
	int ret;

	ret = parse_named(ps, k, dscp_names, ARRAY_SIZE(dscp_names), 63, &v);
	if (ret < 0)
		return ret;
	r->a.set_dscp = true;
	r->a.dscp = (uint8_t)v;
	return 0;
}

static int parse_set_ecn(struct parser *ps, enum rule_key k)
{
	struct rule *r = ps->r;
	unsigned long v;
	int ret;

	ret = parse_named(ps, k, ecn_names, ARRAY_SIZE(ecn_names), 3, &v);
	if (ret < 0)
		return ret;
	r->a.set_ecn = true;
	r->a.ecn = (uint8_t)v;
	return 0;
}

static int parse_clamp_mss(struct parser *ps, enum rule_key k)
{
	unsigned long v;
	int ret;

	ret = parse_number(ps, k, val(ps, k), 536, 65535, &v);
	if (ret < 0)
		return ret;
	ps->r->a.clamp_mss = (uint16_t)v;
	return 0;
}

/*
 * Impairment keys (RK_IMPAIR rows): rule_parse() has refused them with
 * verdict=drop already.
 */
static int parse_delay(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	im->flags |= RULE_I_DELAY;
	return parse_ms(ps, k, &im->delay_us);
}

static int parse_jitter(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	if (!has(ps, K_DELAY))
		return fail(ps, k, "needs delay");
	im->flags |= RULE_I_JITTER;
	return parse_ms(ps, k, &im->jitter_us);
}

static int parse_delay_corr(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	if (!has(ps, K_JITTER))
		return fail(ps, k, "needs jitter");
	if (im->dist == RULE_DIST_NORMAL)
		return fail(ps, k, "not with distribution=normal (not table-driven here: "
			    "use uniform, pareto, paretonormal or a .dist file)");
	im->xflags |= RULE_IX_DELAY_CORR;
	return parse_fraction(ps, k, &im->delay_corr);
}

static int parse_loss(struct parser *ps, enum rule_key k _unused_)
{
	ps->r->impair.flags |= RULE_I_LOSS;
	return parse_loss_value(ps);
}

static int parse_loss_corr(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	if (!(im->flags & RULE_I_LOSS) || im->loss_ge)
		return fail(ps, k, "needs loss=P (not gemodel)");
	im->xflags |= RULE_IX_LOSS_CORR;
	return parse_fraction(ps, k, &im->loss_corr);
}

static int parse_loss_ecn(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	if (!(im->flags & RULE_I_LOSS))
		return fail(ps, k, "needs loss");
	if (strcasecmp(val(ps, k), bool_names[1]) == 0)
		im->xflags |= RULE_IX_LOSS_ECN;
	else if (strcasecmp(val(ps, k), bool_names[0]) != 0)
		return fail(ps, k, "must be true or false");
	return 0;
}

static int parse_duplicate(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	im->flags |= RULE_I_DUPLICATE;
	return parse_fraction(ps, k, &im->duplicate);
}

static int parse_duplicate_corr(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	if (!(im->flags & RULE_I_DUPLICATE))
		return fail(ps, k, "needs duplicate");
	im->xflags |= RULE_IX_DUPLICATE_CORR;
	return parse_fraction(ps, k, &im->duplicate_corr);
}

static int parse_reorder(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;
	int ret;

	ret = parse_fraction(ps, k, &im->reorder);
	if (ret == 0 && !im->delay_us)
		return fail(ps, k, "needs delay above 0 (reordered packets overtake delayed ones)");
	im->flags |= RULE_I_REORDER;
	return ret;
}

static int parse_reorder_corr(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	if (!(im->flags & RULE_I_REORDER))
		return fail(ps, k, "needs reorder");
	im->xflags |= RULE_IX_REORDER_CORR;
	return parse_fraction(ps, k, &im->reorder_corr);
}

static int parse_gap(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;
	unsigned long v;
	int ret;

	if (!(im->flags & RULE_I_REORDER))
		return fail(ps, k, "needs reorder");
	ret = parse_number(ps, k, val(ps, k), 1, RULE_GAP_MAX, &v);
	if (ret == 0)
		im->gap = (uint32_t)v;
	im->xflags |= RULE_IX_GAP;
	return ret;
}

static int parse_corrupt(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	im->flags |= RULE_I_CORRUPT;
	return parse_fraction(ps, k, &im->corrupt);
}

static int parse_corrupt_corr(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	if (!(im->flags & RULE_I_CORRUPT))
		return fail(ps, k, "needs corrupt");
	im->xflags |= RULE_IX_CORRUPT_CORR;
	return parse_fraction(ps, k, &im->corrupt_corr);
}

static int parse_rate(struct parser *ps, enum rule_key k _unused_)
{
	ps->r->impair.flags |= RULE_I_RATE;
	return parse_rate_value(ps);
}

/* overhead= and cell-overhead=. */
static int parse_overhead_key(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;

	if (!(im->flags & RULE_I_RATE) || im->rate_pps)
		return fail(ps, k, "needs rate in bits");
	if (k == K_CELL_OVERHEAD && !(im->xflags & RULE_IX_CELLSIZE))
		return fail(ps, k, "needs cellsize");
	im->xflags |= k == K_OVERHEAD ? RULE_IX_OVERHEAD : RULE_IX_CELL_OVERHEAD;
	return parse_overhead(ps, k, k == K_OVERHEAD ? &im->overhead : &im->cell_overhead);
}

static int parse_cellsize(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;
	unsigned long v;
	int ret;

	if (!(im->flags & RULE_I_RATE) || im->rate_pps)
		return fail(ps, k, "needs rate in bits");
	ret = parse_number(ps, k, val(ps, k), 1, RULE_CELLSIZE_MAX, &v);
	if (ret == 0)
		im->cellsize = (uint32_t)v;
	im->xflags |= RULE_IX_CELLSIZE;
	return ret;
}

static int parse_slot(struct parser *ps, enum rule_key k _unused_)
{
	ps->r->impair.flags |= RULE_I_SLOT;
	return parse_slot_value(ps);
}

static int parse_limit(struct parser *ps, enum rule_key k)
{
	struct rule_impair *im = &ps->r->impair;
	unsigned long v;
	int ret;

	if (!(im->flags & (RULE_I_DELAY | RULE_I_RATE | RULE_I_SLOT)))
		return fail(ps, k, "needs delay, rate or slot");
	ret = parse_number(ps, k, val(ps, k), 1, RULE_LIMIT_MAX, &v);
	if (ret == 0)
		im->limit = (uint32_t)v;
	return ret;
}

static _printf_(3, 4) int fail_at(struct parser *ps, size_t i, const char *fmt, ...)
{
	va_list ap;

	ps->bad = i;
	va_start(ap, fmt);
	err_vset(ps->err, ps->errlen, -EINVAL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- surgery (issue 15): the values are surgery.c's --------------------------- */

static const struct surgery_key *surgery_key_of(enum rule_key k)
{
	for (size_t i = 0; i < surgery_nkeys; i++)
		if (strcmp(surgery_keys[i].name, key_names[k]) == 0)
			return &surgery_keys[i];
	return NULL;
}

static int parse_surgery(struct parser *ps, enum rule_key k)
{
	const struct surgery_key *sk = surgery_key_of(k);
	size_t kl = strlen(key_names[k]);
	char msg[ERR_MAX];
	const char *m = msg;

	if (!sk)
		return fail(ps, k, "not a surgery key");
	msg[0] = '\0';
	if (sk->parse(&ps->r->surg, val(ps, k), msg, sizeof(msg)) < 0) {
		/* surgery.c's messages name the key: fail() does already */
		if (strncmp(msg, key_names[k], kl) == 0 && msg[kl] == ':' && msg[kl + 1] == ' ')
			m += kl + 2;
		return fail(ps, k, "%s", m);
	}
	return 0;
}

/*
 * The rule's surgery keys together: surgery_check()'s cross-checks, no
 * impairment on a rule that cuts (one packet becomes several: which would
 * be delayed or lost is not defined yet), and a text that fits.
 */
static int check_surgery(struct parser *ps)
{
	const struct rule *r = ps->r;
	char msg[ERR_MAX];
	size_t at = SIZE_MAX;

	if (!surgery_active(&r->surg))
		return 0;
	/* The messages point at the first surgery key given. */
	for (size_t k = 0; k < K_MAX; k++)
		if (rule_keys_where(k) == RK_W_ACCEPT || k == K_SET_FIELD || k == K_STRIP_TCP_OPTION)
			if (has(ps, k) && ps->idx[k] < at)
				at = ps->idx[k];
	if (at == SIZE_MAX)
		at = 0;
	if (surgery_check(&r->surg, msg, sizeof(msg)) < 0)
		return fail_at(ps, at, "%s", msg);
	if (rule_cuts(r) && r->impair.flags)
		return fail_at(ps, at, "a rule that cuts (split, ipfrag, fake) cannot also impair, "
				       "yet: give the impairment its own rule");
	return 0;
}

/*
 * The rule's text, once complete (defaults filled in), within
 * RULE_TEXT_MAX: long paths and names together can exceed it.
 */
static int check_text(struct parser *ps, size_t at)
{
	char text[RULE_FORMAT_MAX];
	int n = format_rows(ps->r, text, sizeof(text), false);

	if (n >= 0 && n <= RULE_TEXT_MAX)
		return 0;
	if (ps->r->surg.fake == SURG_FAKE_HEX && ps->idx[K_FAKE] != SIZE_MAX)
		return fail_at(ps, ps->idx[K_FAKE], "the rule's text would be longer than %d characters: "
				       "give a long fake payload as fake=@FILE", RULE_TEXT_MAX);
	return fail_at(ps, at, "the rule's text would be longer than %d characters: "
			       "shorten its paths or names", RULE_TEXT_MAX);
}

static void rule_freep(struct rule **r)
{
	rule_free(*r);
}

int rule_parse(const struct rule_kv *kv, size_t n, struct rule **ret, size_t *ret_bad,
	       char *err, size_t errlen)
{
	_cleanup_(rule_freep) struct rule *r = NULL;
	struct parser ps = { .kv = kv, .bad = n, .err = err, .errlen = errlen };
	int res = 0;

	for (size_t k = 0; k < K_MAX; k++)
		ps.idx[k] = SIZE_MAX;
	if (err && errlen)
		err[0] = '\0';

	if (n > RULE_KV_MAX) {
		res = fail_at(&ps, RULE_KV_MAX, "more than %d keys", RULE_KV_MAX);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t k;

		if (!kv[i].key || !kv[i].value) {
			res = fail_at(&ps, i, "key or value missing");
			goto out;
		}
		for (k = 0; k < K_MAX; k++)
			if (strcmp(kv[i].key, key_names[k]) == 0)
				break;
		if (k == K_MAX) {
			char q[QUOTE_MAX];

			str_sanitize(q, sizeof(q), kv[i].key);
			res = fail_at(&ps, i, "'%s': unknown key", q);
			goto out;
		}
		if (ps.idx[k] != SIZE_MAX) {
			res = fail_at(&ps, i, "%s: given twice", kv[i].key);
			goto out;
		}
		ps.idx[k] = i;
	}

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ps.r = r;
	r->dir_mask = RULE_DIR_OUT;
	surgery_init(&r->surg);
	for (size_t k = 0; k < K_MAX; k++) {
		if (!has(&ps, k))
			continue;
		res = parse_key(&ps, k);
		if (res < 0)
			goto out;
	}

	if (r->a.ttl_op == RULE_TTL_KEEP && !r->a.set_dscp && !r->a.set_ecn && !r->a.clamp_mss &&
	    r->a.verdict == RULE_VERDICT_NONE && !r->impair.flags && !surgery_active(&r->surg)) {
		res = fail_at(&ps, n, "rule does nothing: no action (set-ttl, set-dscp, set-ecn, "
				      "clamp-mss, surgery), no verdict and no impairment");
		goto out;
	}
	res = check_surgery(&ps);
	if (res < 0)
		goto out;
	if (r->impair.seeded && !r->impair.flags) {
		res = fail_at(&ps, ps.idx[K_SEED], "seed: needs an impairment (delay, loss, ...)");
		goto out;
	}
	/* A cut ends the chain too: its packets are sent. */
	if (rule_cuts(r) && r->a.verdict == RULE_VERDICT_NONE)
		r->a.verdict = RULE_VERDICT_ACCEPT;
	if (r->impair.flags) {
		/* Impairment ends the chain: accept unless reply or reject was asked for. */
		if (r->a.verdict == RULE_VERDICT_NONE)
			r->a.verdict = RULE_VERDICT_ACCEPT;
		if ((r->impair.flags & (RULE_I_DELAY | RULE_I_RATE | RULE_I_SLOT)) &&
		    !r->impair.limit)
			r->impair.limit = RULE_LIMIT_DEFAULT;
	}

	res = check_text(&ps, n);
	if (res < 0)
		goto out;

	*ret = r;
	r = NULL;
	return 0;
out:
	if (ret_bad)
		*ret_bad = ps.bad;
	return res;
}

struct rule *rule_free(struct rule *r)
{
	if (r)
		rule_unref_tables(r);
	free(r);
	return NULL;
}

struct rule *rule_dup(const struct rule *r)
{
	struct rule *d;

	if (!r)
		return NULL;
	d = malloc(sizeof(*d));
	if (d) {
		memcpy(d, r, sizeof(*d));
		rule_ref_tables(d);
	}
	return d;
}

void rule_ref_tables(const struct rule *r)
{
	struct rule_table *t = (struct rule_table *)r->impair.table;

	if (t)
		__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	set_ref(r->m.src_set);
	set_ref(r->m.dst_set);
	set_ref(r->m.host_set);
	surgery_ref(&r->surg);
}

void rule_unref_tables(const struct rule *r)
{
	struct rule_table *t = (struct rule_table *)r->impair.table;

	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(t);
	set_unref(r->m.src_set);
	set_unref(r->m.dst_set);
	set_unref(r->m.host_set);
	surgery_unref(&r->surg);
}

const int16_t *rule_dist_table(const struct rule_impair *im, uint32_t *ret_n)
{
	*ret_n = NETEM_TABLE_SIZE;
	switch (im->dist) {
	case RULE_DIST_PARETO:
		return netem_pareto;
	case RULE_DIST_PARETONORMAL:
		return netem_paretonormal;
	case RULE_DIST_FILE:
		if (!im->table)
			break;
		*ret_n = im->table->n;
		return im->table->v;
	}
	*ret_n = 0;
	return NULL;
}

const char *rule_name(const struct rule *r)
{
	return r->name;
}

static void put_key(struct strbuf *o, enum rule_key k)
{
	strbuf_printf(o, "%s%s=", o->len ? " " : "", key_names[k]);
}

static void put_named(struct strbuf *o, enum rule_key k, const struct name_value *t, size_t n,
		      unsigned int v)
{
	const char *name = lookup_value(t, n, v);

	put_key(o, k);
	if (name)
		strbuf_printf(o, "%s", name);
	else
		strbuf_printf(o, "%u", v);
}

static void put_range(struct strbuf *o, enum rule_key k, bool neg, unsigned int lo, unsigned int hi)
{
	put_key(o, k);
	strbuf_printf(o, "%s%u", neg ? "!" : "", lo);
	if (hi != lo)
		strbuf_printf(o, "-%u", hi);
}

static void put_prefix(struct strbuf *o, enum rule_key k, bool neg, const struct rule_prefix *pf,
		       int family)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, pf->addr, a, sizeof(a));
	put_key(o, k);
	strbuf_printf(o, "%s%s/%u", neg ? "!" : "", a, pf->len);
}

/* The shortest decimal that strtod() turns back into exactly p. */
static void put_double(struct strbuf *o, double p)
{
	char b[32];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(b, sizeof(b), "%.*g", prec, p);
		if (strtod(b, NULL) == p)
			break;
	}
	strbuf_printf(o, "%s", b);
}

/* Milliseconds from microseconds, without trailing zeros: 50, 0.5, 12.345. */
static void put_ms(struct strbuf *o, enum rule_key k, uint32_t us)
{
	put_key(o, k);
	strbuf_ms(o, us);
}

static void put_fraction(struct strbuf *o, enum rule_key k, double p)
{
	put_key(o, k);
	put_double(o, p);
}

/*
 * Equality by key (the EQ column).  rule_equal() compares the presence bits
 * (match, impairment and netem flags) first, so each of these compares the
 * values of a key both rules have, or both lack.  Keys whose printed value
 * is the whole value (name, icmp-code, ttl, length, expire) have none: their
 * rows compare what put_ prints.
 */
#define KEY_EQUAL(fn, expr)                                                    \
	static bool fn(const struct rule *a, const struct rule *b)             \
	{                                                                      \
		return expr;                                                   \
	}

static bool prefix_equal(const struct rule_prefix *a, const struct rule_prefix *b)
{
	return a->len == b->len && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* sets (issue 14): a list by its path, kind and what was loaded (the same file read twice is the same). */
static bool set_equal(const struct rule_set *a, const struct rule_set *b)
{
	return a == b || (a && b && a->kind == b->kind && a->entries == b->entries &&
			  a->bytes == b->bytes && strcmp(a->path, b->path) == 0);
}

#define MF(bit) (a->m.flags & (bit))
#define IF(bit) (a->impair.flags & (bit))
#define A (&a->impair)
#define B (&b->impair)

KEY_EQUAL(eq_src_set, !MF(RULE_M_SRC_SET) || set_equal(a->m.src_set, b->m.src_set))
KEY_EQUAL(eq_dst_set, !MF(RULE_M_DST_SET) || set_equal(a->m.dst_set, b->m.dst_set))
KEY_EQUAL(eq_host_set, !MF(RULE_M_HOST_SET) || set_equal(a->m.host_set, b->m.host_set))
KEY_EQUAL(eq_direction, rule_dir_mask(a) == rule_dir_mask(b))
KEY_EQUAL(eq_family, a->m.family == b->m.family)
KEY_EQUAL(eq_proto, !MF(RULE_M_PROTO) || a->m.proto == b->m.proto)
KEY_EQUAL(eq_src, !MF(RULE_M_SRC) || prefix_equal(&a->m.src, &b->m.src))
KEY_EQUAL(eq_dst, !MF(RULE_M_DST) || prefix_equal(&a->m.dst, &b->m.dst))
KEY_EQUAL(eq_sport, !MF(RULE_M_SPORT) ||
	  (a->m.sport_lo == b->m.sport_lo && a->m.sport_hi == b->m.sport_hi))
KEY_EQUAL(eq_dport, !MF(RULE_M_DPORT) ||
	  (a->m.dport_lo == b->m.dport_lo && a->m.dport_hi == b->m.dport_hi))
KEY_EQUAL(eq_icmp_type, (!MF(RULE_M_ICMP4_TYPE) || a->m.icmp_type[0] == b->m.icmp_type[0]) &&
	  (!MF(RULE_M_ICMP6_TYPE) || a->m.icmp_type[1] == b->m.icmp_type[1]))
KEY_EQUAL(eq_tcp_flags, !MF(RULE_M_TCP_FLAGS) ||
	  (a->m.tcp_mask == b->m.tcp_mask && a->m.tcp_set == b->m.tcp_set))
KEY_EQUAL(eq_dscp, !MF(RULE_M_DSCP) || a->m.dscp == b->m.dscp)
KEY_EQUAL(eq_probability, !MF(RULE_M_PROBABILITY) ||
	  (a->probability == b->probability && a->m.prob_threshold == b->m.prob_threshold))
KEY_EQUAL(eq_set_ttl, a->a.ttl_op == b->a.ttl_op &&
	  (a->a.ttl_op == RULE_TTL_KEEP || a->a.ttl == b->a.ttl))
KEY_EQUAL(eq_set_dscp, a->a.set_dscp == b->a.set_dscp && (!a->a.set_dscp || a->a.dscp == b->a.dscp))
KEY_EQUAL(eq_set_ecn, a->a.set_ecn == b->a.set_ecn && (!a->a.set_ecn || a->a.ecn == b->a.ecn))
KEY_EQUAL(eq_clamp_mss, a->a.clamp_mss == b->a.clamp_mss)
KEY_EQUAL(eq_verdict, a->a.verdict == b->a.verdict)
KEY_EQUAL(eq_reject_with, a->a.reject == b->a.reject)
KEY_EQUAL(eq_surgery, surgery_equal(&a->surg, &b->surg))
KEY_EQUAL(eq_delay, !IF(RULE_I_DELAY) || A->delay_us == B->delay_us)
KEY_EQUAL(eq_jitter, !IF(RULE_I_JITTER) || (A->jitter_us == B->jitter_us && A->dist == B->dist))
/* A file's table by its size, hash and path: the same file read twice is the same. */
KEY_EQUAL(eq_distribution, !IF(RULE_I_JITTER) || A->dist != RULE_DIST_FILE ||
	  (!A->table == !B->table && (!A->table || (A->table->n == B->table->n &&
						    A->table->hash == B->table->hash &&
						    strcmp(A->table->path, B->table->path) == 0))))
KEY_EQUAL(eq_delay_corr, A->delay_corr == B->delay_corr)
KEY_EQUAL(eq_loss, !IF(RULE_I_LOSS) ||
	  (A->loss_ge == B->loss_ge &&
	   (A->loss_ge ? A->ge_p == B->ge_p && A->ge_r == B->ge_r &&
			 A->ge_bad_loss == B->ge_bad_loss && A->ge_good_loss == B->ge_good_loss :
			 A->loss == B->loss)))
KEY_EQUAL(eq_loss_corr, A->loss_corr == B->loss_corr)
/* loss-ecn is all in xflags. */
KEY_EQUAL(eq_loss_ecn, true)
KEY_EQUAL(eq_duplicate, !IF(RULE_I_DUPLICATE) || A->duplicate == B->duplicate)
KEY_EQUAL(eq_duplicate_corr, A->duplicate_corr == B->duplicate_corr)
KEY_EQUAL(eq_reorder, !IF(RULE_I_REORDER) || A->reorder == B->reorder)
KEY_EQUAL(eq_reorder_corr, A->reorder_corr == B->reorder_corr)
KEY_EQUAL(eq_gap, A->gap == B->gap)
KEY_EQUAL(eq_corrupt, !IF(RULE_I_CORRUPT) || A->corrupt == B->corrupt)
KEY_EQUAL(eq_corrupt_corr, A->corrupt_corr == B->corrupt_corr)
KEY_EQUAL(eq_rate, (!IF(RULE_I_RATE) || (A->rate == B->rate && A->rate_pps == B->rate_pps)) &&
	  strcmp(A->trace, B->trace) == 0)
KEY_EQUAL(eq_overhead, A->overhead == B->overhead)
KEY_EQUAL(eq_cellsize, A->cellsize == B->cellsize)
KEY_EQUAL(eq_cell_overhead, A->cell_overhead == B->cell_overhead)
KEY_EQUAL(eq_slot, !IF(RULE_I_SLOT) ||
	  (A->slot_min_us == B->slot_min_us && A->slot_max_us == B->slot_max_us &&
	   A->slot_pkts == B->slot_pkts && A->slot_bytes == B->slot_bytes))
/* Exact: the default (1000) is not printed, but 0 (no queue) differs from it. */
KEY_EQUAL(eq_limit, A->limit == B->limit)
KEY_EQUAL(eq_queue, A->queue_pkts == B->queue_pkts)
KEY_EQUAL(eq_queue_bytes, A->queue_bytes == B->queue_bytes)
KEY_EQUAL(eq_aqm, A->aqm == B->aqm)
KEY_EQUAL(eq_codel_target, A->codel_target_us == B->codel_target_us)
KEY_EQUAL(eq_codel_interval, A->codel_interval_us == B->codel_interval_us)
KEY_EQUAL(eq_seed, A->seeded == B->seeded && (!A->seeded || A->seed == B->seed))

#undef MF
#undef IF
#undef A
#undef B

/* Printers by key (the PUT column): nothing when the rule lacks the key. */
static void put_name(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->name[0]) {
		put_key(o, k);
		strbuf_printf(o, "%s", r->name);
	}
}

/* out is the default: left out, so rules without the key print as they did. */
static void put_direction(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (rule_dir_mask(r) != RULE_DIR_OUT)
		put_named(o, k, direction_names, ARRAY_SIZE(direction_names), rule_dir_mask(r));
}

/* src/dst carry the family themselves. */
static void put_family(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.family && !(r->m.flags & (RULE_M_SRC | RULE_M_DST))) {
		put_key(o, k);
		strbuf_printf(o, "%s", family_name(r->m.family));
	}
}

static void put_proto(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_PROTO)
		put_named(o, k, proto_names, ARRAY_SIZE(proto_names), r->m.proto);
}

static void put_src(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_SRC)
		put_prefix(o, k, r->m.flags & RULE_M_SRC_NOT, &r->m.src, r->m.family);
}

static void put_dst(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_DST)
		put_prefix(o, k, r->m.flags & RULE_M_DST_NOT, &r->m.dst, r->m.family);
}

/* sets (issue 14) */
static void put_set(struct strbuf *o, enum rule_key k, bool neg, const struct rule_set *s)
{
	put_key(o, k);
	strbuf_printf(o, "%s@%s", neg ? "!" : "", s ? s->path : "");
}

static void put_src_set(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_SRC_SET)
		put_set(o, k, r->m.flags & RULE_M_SRC_SET_NOT, r->m.src_set);
}

static void put_dst_set(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_DST_SET)
		put_set(o, k, r->m.flags & RULE_M_DST_SET_NOT, r->m.dst_set);
}

static void put_host_set(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_HOST_SET)
		put_set(o, k, false, r->m.host_set);
}

static void put_sport(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_SPORT)
		put_range(o, k, r->m.flags & RULE_M_SPORT_NOT, r->m.sport_lo, r->m.sport_hi);
}

static void put_dport(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_DPORT)
		put_range(o, k, r->m.flags & RULE_M_DPORT_NOT, r->m.dport_lo, r->m.dport_hi);
}

/*
 * With a proto the number stands alone (printed by name when it has one);
 * without, parsing resolved a name in both tables, so print it.
 */
static void put_icmp_type(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_ICMP4_TYPE)
		put_named(o, k, icmp4_names, ARRAY_SIZE(icmp4_names), r->m.icmp_type[0]);
	else if (r->m.flags & RULE_M_ICMP6_TYPE)
		put_named(o, k, icmp6_names, ARRAY_SIZE(icmp6_names), r->m.icmp_type[1]);
}

static void put_icmp_code(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_ICMP_CODE) {
		put_key(o, k);
		strbuf_printf(o, "%u", r->m.icmp_code);
	}
}

static void put_tcp_flags(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	const struct rule_match *m = &r->m;
	bool first = true;

	if (!(m->flags & RULE_M_TCP_FLAGS))
		return;
	put_key(o, k);
	for (unsigned int bit = 0; bit < 8; bit++) {
		if (!(m->tcp_mask & (1u << bit)))
			continue;
		strbuf_printf(o, "%s%s%s", first ? "" : ",", m->tcp_set & (1u << bit) ? "" : "!",
		    tcp_flag_names[bit]);
		first = false;
	}
}

static void put_ttl(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_TTL)
		put_range(o, k, false, r->m.ttl_lo, r->m.ttl_hi);
}

static void put_length(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_LENGTH)
		put_range(o, k, false, r->m.len_lo, r->m.len_hi);
}

static void put_names(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	unsigned int kind = names_kind(k);
	const char *n = r->flow.names[kind];

	if (!(r->flow.flags & names_flag[kind]))
		return;
	put_key(o, k);
	for (bool first = true; *n; n += strlen(n) + 1, first = false)
		strbuf_printf(o, "%s%s", first ? "" : ",", n);
}

static void put_flow_packets(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->flow.flags & RULE_F_PACKETS)
		put_range(o, k, false, r->flow.pkts_lo, r->flow.pkts_hi);
}

static void put_flow_bytes(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (!(r->flow.flags & RULE_F_BYTES))
		return;
	put_key(o, k);
	strbuf_printf(o, "%llu", (unsigned long long)r->flow.bytes_lo);
	if (r->flow.bytes_hi != r->flow.bytes_lo)
		strbuf_printf(o, "-%llu", (unsigned long long)r->flow.bytes_hi);
}

static void put_flow_state(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->flow.flags & RULE_F_STATE)
		put_named(o, k, flow_state_names, ARRAY_SIZE(flow_state_names), r->flow.state);
}

static void put_flow_dir(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->flow.flags & RULE_F_DIR)
		put_named(o, k, flow_dir_names, ARRAY_SIZE(flow_dir_names), r->flow.dir);
}

static void put_dscp(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_DSCP)
		put_named(o, k, dscp_names, ARRAY_SIZE(dscp_names), r->m.dscp);
}

static void put_probability(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->m.flags & RULE_M_PROBABILITY) {
		put_key(o, k);
		put_double(o, r->probability);
	}
}

static void put_set_ttl(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->a.ttl_op != RULE_TTL_KEEP) {
		put_key(o, k);
		strbuf_printf(o, "%s%u", r->a.ttl_op == RULE_TTL_INC ? "+" :
				r->a.ttl_op == RULE_TTL_DEC ? "-" : "", r->a.ttl);
	}
}

static void put_set_dscp(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->a.set_dscp)
		put_named(o, k, dscp_names, ARRAY_SIZE(dscp_names), r->a.dscp);
}

static void put_set_ecn(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->a.set_ecn)
		put_named(o, k, ecn_names, ARRAY_SIZE(ecn_names), r->a.ecn);
}

static void put_clamp_mss(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->a.clamp_mss) {
		put_key(o, k);
		strbuf_printf(o, "%u", r->a.clamp_mss);
	}
}

/* Impairment and cutting imply accept: leave it out, it would read back the same. */
static void put_verdict(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->a.verdict != RULE_VERDICT_NONE &&
	    !(r->a.verdict == RULE_VERDICT_ACCEPT && (r->impair.flags || rule_cuts(r))))
		put_named(o, k, verdict_names, ARRAY_SIZE(verdict_names), r->a.verdict);
}

static void put_reject_with(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->a.verdict == RULE_VERDICT_REJECT)
		put_named(o, k, reject_names, ARRAY_SIZE(reject_names), r->a.reject);
}

static void put_delay(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.flags & RULE_I_DELAY)
		put_ms(o, k, r->impair.delay_us);
}

static void put_jitter(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.flags & RULE_I_JITTER)
		put_ms(o, k, r->impair.jitter_us);
}

static void put_distribution(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	const struct rule_impair *im = &r->impair;

	if (!(im->flags & RULE_I_JITTER))
		return;
	if (im->dist == RULE_DIST_FILE && im->table) {
		put_key(o, k);
		strbuf_printf(o, "@%s", im->table->path);
	} else if (im->dist != RULE_DIST_UNIFORM) {
		put_named(o, k, dist_names, ARRAY_SIZE(dist_names), im->dist);
	}
}

static void put_delay_corr(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_DELAY_CORR)
		put_fraction(o, k, r->impair.delay_corr);
}

static void put_loss(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	const struct rule_impair *im = &r->impair;

	if (!(im->flags & RULE_I_LOSS))
		return;
	if (!im->loss_ge) {
		put_fraction(o, k, im->loss);
		return;
	}
	put_key(o, k);
	strbuf_printf(o, "gemodel:");
	put_double(o, im->ge_p);
	strbuf_printf(o, ",");
	put_double(o, im->ge_r);
	/* Trailing defaults (BADLOSS 1, GOODLOSS 0) are left out. */
	if (im->ge_bad_loss != 1.0 || im->ge_good_loss != 0.0) {
		strbuf_printf(o, ",");
		put_double(o, im->ge_bad_loss);
	}
	if (im->ge_good_loss != 0.0) {
		strbuf_printf(o, ",");
		put_double(o, im->ge_good_loss);
	}
}

static void put_loss_corr(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_LOSS_CORR)
		put_fraction(o, k, r->impair.loss_corr);
}

static void put_loss_ecn(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_LOSS_ECN) {
		put_key(o, k);
		strbuf_printf(o, "true");
	}
}

static void put_duplicate(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.flags & RULE_I_DUPLICATE)
		put_fraction(o, k, r->impair.duplicate);
}

static void put_duplicate_corr(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_DUPLICATE_CORR)
		put_fraction(o, k, r->impair.duplicate_corr);
}

static void put_reorder(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.flags & RULE_I_REORDER)
		put_fraction(o, k, r->impair.reorder);
}

static void put_reorder_corr(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_REORDER_CORR)
		put_fraction(o, k, r->impair.reorder_corr);
}

static void put_gap(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_GAP) {
		put_key(o, k);
		strbuf_printf(o, "%u", r->impair.gap);
	}
}

static void put_corrupt(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.flags & RULE_I_CORRUPT)
		put_fraction(o, k, r->impair.corrupt);
}

static void put_corrupt_corr(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_CORRUPT_CORR)
		put_fraction(o, k, r->impair.corrupt_corr);
}

static void put_rate(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	const struct rule_impair *im = &r->impair;
	size_t i = 0;

	if (!(im->flags & RULE_I_RATE))
		return;
	put_key(o, k);
	if (im->rate_pps) {
		strbuf_printf(o, "%llupps", (unsigned long long)im->rate);
	} else if (im->trace[0]) {
		strbuf_printf(o, "@%s", im->trace);
	} else {
		while (im->rate % rate_units[i].mult)
			i++;
		strbuf_printf(o, "%llu%s", (unsigned long long)(im->rate / rate_units[i].mult),
		    rate_units[i].name);
	}
}

static void put_overhead(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_OVERHEAD) {
		put_key(o, k);
		strbuf_printf(o, "%d", r->impair.overhead);
	}
}

static void put_cellsize(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_CELLSIZE) {
		put_key(o, k);
		strbuf_printf(o, "%u", r->impair.cellsize);
	}
}

static void put_cell_overhead(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.xflags & RULE_IX_CELL_OVERHEAD) {
		put_key(o, k);
		strbuf_printf(o, "%d", r->impair.cell_overhead);
	}
}

static void put_slot(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	const struct rule_impair *im = &r->impair;

	if (!(im->flags & RULE_I_SLOT))
		return;
	put_ms(o, k, im->slot_min_us);
	/* Trailing defaults (MAX = MIN, no bounds) are left out. */
	if (im->slot_max_us != im->slot_min_us || im->slot_pkts || im->slot_bytes) {
		strbuf_printf(o, ",");
		strbuf_ms(o, im->slot_max_us);
	}
	if (im->slot_pkts || im->slot_bytes)
		strbuf_printf(o, ",%u", im->slot_pkts);
	if (im->slot_bytes)
		strbuf_printf(o, ",%u", im->slot_bytes);
}

static void put_limit(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.limit && r->impair.limit != RULE_LIMIT_DEFAULT) {
		put_key(o, k);
		strbuf_printf(o, "%u", r->impair.limit);
	}
}

static void put_queue(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.queue_pkts) {
		put_key(o, k);
		strbuf_printf(o, "%u", r->impair.queue_pkts);
	}
}

static void put_queue_bytes(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.queue_bytes) {
		put_key(o, k);
		strbuf_printf(o, "%u", r->impair.queue_bytes);
	}
}

static void put_aqm(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.aqm != RULE_AQM_DROPTAIL)
		put_named(o, k, aqm_names, ARRAY_SIZE(aqm_names), r->impair.aqm);
}

static void put_codel_target(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.codel_target_us)
		put_ms(o, k, r->impair.codel_target_us);
}

static void put_codel_interval(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.codel_interval_us)
		put_ms(o, k, r->impair.codel_interval_us);
}

static void put_seed(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	if (r->impair.seeded) {
		put_key(o, k);
		strbuf_printf(o, "%llu", (unsigned long long)r->impair.seed);
	}
}

/*
 * A surgery key's value as surgery.c prints it; set-field's pairs joined by
 * commas, so that every value is one word of a spec (set-field reads both).
 */
static void put_surgery(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	const struct surgery_key *sk = surgery_key_of(k);
	size_t from;

	if (!sk || !(r->surg.keys & sk->bit))
		return;
	put_key(o, k);
	from = o->len;
	sk->print(o, &r->surg);
	if (o->overflow)
		return;
	for (size_t i = from; i < o->len; i++)
		if (o->buf[i] == ' ')
			o->buf[i] = ',';
}

static void put_expire(struct strbuf *o, const struct rule *r, enum rule_key k)
{
	uint32_t ms = r->expire_ms;
	size_t i = 0;

	if (!ms)
		return;
	while (ms % expire_units[i].ms)
		i++;
	put_key(o, k);
	strbuf_printf(o, "%u%s", ms / expire_units[i].ms, expire_units[i].name);
}

/* Named values by key (the VALUES column). */
#define NV_VALUES(fn, table)                                                   \
	static const char *fn(unsigned int i)                                  \
	{                                                                      \
		return i < ARRAY_SIZE(table) ? table[i].name : NULL;          \
	}
#define STR_VALUES(fn, table)                                                  \
	static const char *fn(unsigned int i)                                  \
	{                                                                      \
		return i < ARRAY_SIZE(table) ? table[i] : NULL;                \
	}

NV_VALUES(values_direction, direction_names)
STR_VALUES(values_family, family_names)
NV_VALUES(values_proto, proto_names)
STR_VALUES(values_tcp_flags, tcp_flag_names)
NV_VALUES(values_dscp, dscp_names)
NV_VALUES(values_ecn, ecn_names)
NV_VALUES(values_verdict, verdict_names)
NV_VALUES(values_reject_with, reject_names)
NV_VALUES(values_distribution, dist_names)
STR_VALUES(values_bool, bool_names)
NV_VALUES(values_aqm, aqm_names)
NV_VALUES(values_flow_state, flow_state_names)
NV_VALUES(values_flow_dir, flow_dir_names)

static const char *const split_names[] = { "sni", "host", "midsld" };
static const char *const fake_names[] = { "zero", "random" };
STR_VALUES(values_split, split_names)
STR_VALUES(values_fake, fake_names)

static const char *values_set_field(unsigned int i)
{
	return surgery_field_name(i);
}

static const char *values_strip(unsigned int i)
{
	return surgery_tcpopt_name(i);
}

/* ICMP and ICMPv6 types, the names both have once. */
static const char *values_icmp_type(unsigned int i)
{
	size_t j;

	if (i < ARRAY_SIZE(icmp4_names))
		return icmp4_names[i].name;
	i -= ARRAY_SIZE(icmp4_names);
	for (j = 0; j < ARRAY_SIZE(icmp6_names); j++) {
		if (lookup_name(icmp4_names, ARRAY_SIZE(icmp4_names), icmp6_names[j].name) >= 0)
			continue;
		if (i-- == 0)
			return icmp6_names[j].name;
	}
	return NULL;
}

#define X_ROW(id, nm, kd, wh, fastp, parse_fn, put_fn, eq_fn, values_fn, rng)            \
	[K_##id] = { .name = nm, .kind = kd, .where = wh, .fp = fastp, .parse = parse_fn, \
		     .put = put_fn, .eq = eq_fn, .values = values_fn, .range = rng },
static const struct rule_keydef rule_keys[K_MAX] = {
	RULE_KEYS(X_ROW)
};
#undef X_ROW

static uint8_t rule_keys_where(size_t k)
{
	return rule_keys[k].where;
}

static int parse_key(struct parser *ps, enum rule_key k)
{
	const struct rule_keydef *d = &rule_keys[k];

	/* Keys are parsed in row order: only the first impairment key sees flags == 0. */
	if (d->where == RK_W_NOT_DROP && !ps->r->impair.flags &&
	    ps->r->a.verdict == RULE_VERDICT_DROP)
		return fail(ps, k, "impairment needs verdict accept, reply or reject, not drop");
	if (d->where == RK_W_ACCEPT && ps->r->a.verdict != RULE_VERDICT_NONE &&
	    ps->r->a.verdict != RULE_VERDICT_ACCEPT)
		return fail(ps, k, "surgery needs verdict accept, not drop, reply or reject");
	return d->parse(ps, k);
}

/* Only what the row prints: the EQ column's default. */
static bool put_equal(enum rule_key k, const struct rule *a, const struct rule *b)
{
	char x[RULE_FORMAT_MAX], y[RULE_FORMAT_MAX];
	struct strbuf ox = { .buf = x, .size = sizeof(x) }, oy = { .buf = y, .size = sizeof(y) };

	x[0] = y[0] = '\0';
	rule_keys[k].put(&ox, a, k);
	rule_keys[k].put(&oy, b, k);
	return strcmp(x, y) == 0;
}

bool rule_equal(const struct rule *a, const struct rule *b)
{
	/* Which keys were given: then each row compares its values. */
	if (a->m.flags != b->m.flags || a->impair.flags != b->impair.flags ||
	    a->impair.xflags != b->impair.xflags || a->surg.keys != b->surg.keys)
		return false;
	for (size_t k = 0; k < K_MAX; k++) {
		bool same = rule_keys[k].eq ? rule_keys[k].eq(a, b) : put_equal(k, a, b);

		if (!same)
			return false;
	}
	return true;
}

const char *rule_proto_name(unsigned int proto)
{
	return lookup_value(proto_names, ARRAY_SIZE(proto_names), proto);
}

const char *rule_icmp_type_name(int family, unsigned int type)
{
	if (family == AF_INET6)
		return lookup_value(icmp6_names, ARRAY_SIZE(icmp6_names), type);
	return lookup_value(icmp4_names, ARRAY_SIZE(icmp4_names), type);
}

const char *rule_key_name(unsigned int i)
{
	return i < K_MAX ? rule_keys[i].name : NULL;
}

const char *rule_key_value(const char *key, unsigned int i)
{
	for (size_t k = 0; k < K_MAX; k++)
		if (strcmp(key, rule_keys[k].name) == 0)
			return rule_keys[k].values ? rule_keys[k].values(i) : NULL;
	return NULL;
}

static const char *const kind_names[] = {
	[RK_META] = "rule", [RK_MATCH] = "match", [RK_ACTION] = "action", [RK_IMPAIR] = "impair",
};

int rule_key_info(unsigned int i, struct rule_keyinfo *ret)
{
	const struct rule_keydef *d;

	if (i >= K_MAX)
		return -ENOENT;
	d = &rule_keys[i];
	*ret = (struct rule_keyinfo){
		.name = d->name,
		.kind = kind_names[d->kind],
		.range = d->range,
		.fast_path = d->fp,
		.not_with_drop = d->where == RK_W_NOT_DROP || d->where == RK_W_ACCEPT,
		.accept_only = d->where == RK_W_ACCEPT,
	};
	return 0;
}

static int format_rows(const struct rule *r, char *buf, size_t len, bool actions_only)
{
	struct strbuf o = { .buf = buf, .size = len };

	if (!len)
		return -ENOSPC;
	buf[0] = '\0';
	for (size_t k = 0; k < K_MAX; k++) {
		uint8_t kind = rule_keys[k].kind;

		if (actions_only && kind != RK_ACTION && kind != RK_IMPAIR)
			continue;
		rule_keys[k].put(&o, r, k);
	}
	if (o.overflow) {
		o.buf[0] = '\0';
		return -ENOSPC;
	}
	return (int)o.len;
}

int rule_format(const struct rule *r, char *buf, size_t len)
{
	return format_rows(r, buf, len, false);
}

int rule_format_actions(const struct rule *r, char *buf, size_t len)
{
	return format_rows(r, buf, len, true);
}
