/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packet surgery (issue 15): what a rule asks of one packet's bytes (split,
 * disorder, ipfrag, fake decoys, set-field, strip-tcp-option), the value
 * parsers and printers of those keys, and surgery_apply().  A library
 * module: no logging, no allocation in surgery_apply().
 */
#ifndef IPMODD_SURGERY_H
#define IPMODD_SURGERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SURG_SPLIT_MAX 8	/* positions of split= */
#define SURG_FIELDS_MAX 16	/* FIELD=VALUE pairs of set-field= */
#define SURG_FAKE_MAX 1500	/* bytes of a fake= file or hex payload */
#define SURG_FAKE_PATH_MAX 256
#define SURG_REPEATS_MAX 10
#define SURG_BADSEQ_DELTA 10000000u	/* fake-badseq: seq - this (mod 2^32) */
/*
 * Packets one surgery_apply() may produce: SURG_REPEATS_MAX decoys, then
 * SURG_SPLIT_MAX + 1 parts, each cut in two by ipfrag: 10 + 9 * 2 = 28.
 */
#define SURG_OUT_MAX 32
/*
 * An arena that always suffices for a packet of len bytes: the working copy
 * (len), SURG_REPEATS_MAX decoys (each at most len + 20 bytes of TCP-MD5
 * option + SURG_FAKE_MAX), the parts of a split (each with a copy of the
 * headers: at most 9 * len) and their fragments (each part twice its headers
 * + 8 bytes of IPv6 fragment header: at most 2 * 9 * len + 16 * 9):
 * 38 * len + 10 * 1520 + 144, rounded up.
 */
#define SURG_ARENA_SIZE(len) (38 * (size_t)(len) + 16384)

enum surg_pos_kind {
	SURG_POS_ABS = 0,	/* off from the start (> 0) or the end (< 0) */
	SURG_POS_SNI,		/* sni+off */
	SURG_POS_HOST,		/* host+off */
	SURG_POS_MIDSLD,	/* middle of the second-level label of sni's or host's name */
};

struct surg_pos {
	uint8_t kind;		/* enum surg_pos_kind */
	int32_t off;
};

enum surg_fake_kind {
	SURG_FAKE_NONE = 0,
	SURG_FAKE_ZERO,
	SURG_FAKE_RANDOM,
	SURG_FAKE_FILE,
	SURG_FAKE_HEX,
};

struct surg_field_set {
	uint8_t field;		/* index into the field table of surgery.c */
	union {			/* one or the other: 20 bytes a pair, not 24 */
		uint8_t addr[16];	/* ip.src/dst, ip6.src/dst (network order) */
		uint32_t value;		/* every other field */
	};
};

/* Which keys a rule set (to print only those, and for surgery_check()). */
enum {
	SURG_K_SPLIT = 1u << 0,
	SURG_K_DISORDER = 1u << 1,
	SURG_K_IPFRAG = 1u << 2,
	SURG_K_FAKE = 1u << 3,
	SURG_K_FAKE_TTL = 1u << 4,
	SURG_K_FAKE_BADSUM = 1u << 5,
	SURG_K_FAKE_BADSEQ = 1u << 6,
	SURG_K_FAKE_MD5SIG = 1u << 7,
	SURG_K_FAKE_REPEATS = 1u << 8,
	SURG_K_SET_FIELD = 1u << 9,
	SURG_K_STRIP = 1u << 10,
};

/*
 * A fake= payload (from @FILE or hex:): read once when the rule is parsed,
 * then shared read-only by every copy of the rule (rule_dup(), a chain's
 * copies) and reference counted like struct rule_table: surgery_ref() and
 * surgery_release().  zero and random need none (NULL).
 */
struct surg_fake {
	unsigned int refs;
	uint16_t len;			/* bytes in data, 1..SURG_FAKE_MAX */
	char path[SURG_FAKE_PATH_MAX];	/* SURG_FAKE_FILE; "" for hex */
	uint8_t data[];
};

struct rule_surgery {
	uint32_t keys;		/* SURG_K_* */
	uint8_t nsplit;
	struct surg_pos split[SURG_SPLIT_MAX];
	bool disorder;
	uint16_t ipfrag;	/* payload offset, multiple of 8; 0: none */
	uint8_t fake;		/* enum surg_fake_kind */
	uint8_t fake_ttl;	/* 0: unchanged */
	bool fake_badsum, fake_badseq, fake_md5sig;
	uint8_t fake_repeats;	/* 1..10 (1 when unset) */
	const struct surg_fake *fake_data;	/* FILE, HEX; NULL otherwise */
	uint8_t nfields;
	struct surg_field_set fields[SURG_FIELDS_MAX];
	uint8_t strip[32];	/* bitmap of TCP option kinds to replace by NOPs */
};

/* An empty surgery (no key set). */
void surgery_init(struct rule_surgery *s);
/*
 * Take and drop the reference a copy of s (a memcpy) holds on its fake
 * payload (rule_ref_tables(), rule_unref_tables()).  surgery_release()
 * drops it and leaves s empty (surgery_init()): what a user of a struct
 * rule_surgery of its own calls when done.  A zeroed or initialised s
 * holds none.
 */
void surgery_ref(const struct rule_surgery *s);
void surgery_unref(const struct rule_surgery *s);
void surgery_release(struct rule_surgery *s);
bool surgery_active(const struct rule_surgery *s);

/*
 * Value parsers: 0, or -EINVAL with a message naming the key and the bad
 * part of the value in err.  fake= "@path" reads the file now (-errno from
 * open/read, in err too).
 */
typedef int (*surgery_parse_fn)(struct rule_surgery *s, const char *value, char *err, size_t errlen);
typedef void (*surgery_print_fn)(struct strbuf *b, const struct rule_surgery *s);
int surgery_parse_split(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_disorder(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_ipfrag(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_fake(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_fake_ttl(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_fake_badsum(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_fake_badseq(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_fake_md5sig(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_fake_repeats(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_set_field(struct rule_surgery *s, const char *value, char *err, size_t errlen);
int surgery_parse_strip_tcp_option(struct rule_surgery *s, const char *value, char *err, size_t errlen);

/* Printers of the value alone (no quotes: values of set-field hold spaces). */
void surgery_print_split(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_disorder(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_ipfrag(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_fake(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_fake_ttl(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_fake_badsum(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_fake_badseq(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_fake_md5sig(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_fake_repeats(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_set_field(struct strbuf *b, const struct rule_surgery *s);
void surgery_print_strip_tcp_option(struct strbuf *b, const struct rule_surgery *s);

/* The keys in one table: name, SURG_K_* bit, parser, printer. */
struct surgery_key {
	const char *name;
	uint32_t bit;
	surgery_parse_fn parse;
	surgery_print_fn print;
};
extern const struct surgery_key surgery_keys[];
extern const size_t surgery_nkeys;

/* Every key set in s as "key=value" (values with spaces in double quotes), space-separated. */
void surgery_format(struct strbuf *b, const struct rule_surgery *s);
bool surgery_equal(const struct rule_surgery *a, const struct rule_surgery *b);
/*
 * Cross-checks of a rule's keys together: disorder without split or ipfrag,
 * fake-* without fake.  0 or -EINVAL with a message.
 */
int surgery_check(const struct rule_surgery *s, char *err, size_t errlen);

/* The names strip-tcp-option knows, NULL past the last. */
const char *surgery_tcpopt_name(size_t i);

/* Number of fields in the set-field table, and a field's name. */
size_t surgery_nfield_names(void);
const char *surgery_field_name(size_t i);

/* marks found by the caller in this packet's L4 payload (hello.h), -1 when none */
struct surg_marks {
	int32_t sni_off, sni_len, host_off, host_len;
};

/* What surgery_apply() left out (for the caller's counters). */
enum {
	SURG_SKIP_SPLIT = 1u << 0,	/* not TCP, SYN/RST/URG, fragment, position absent or beyond */
	SURG_SKIP_IPFRAG = 1u << 1,	/* already a fragment, offset beyond, too long */
	SURG_SKIP_FAKE = 1u << 2,	/* not TCP/UDP, or a fragment */
	SURG_SKIP_MD5SIG = 1u << 3,	/* TCP header would exceed 60 bytes, or not TCP */
	SURG_SKIP_BADSEQ = 1u << 4,	/* not TCP */
	SURG_SKIP_FIELD = 1u << 5,	/* a field of another protocol (or no L4 header) */
	SURG_SKIP_STRIP = 1u << 6,	/* not TCP */
	SURG_SKIP_SPLIT_UDP = 1u << 7,	/* split on UDP: left whole (ipfrag is the UDP tool) */
};

struct surg_out {
	unsigned int n;
	struct {
		uint32_t off, len;
	} pkt[SURG_OUT_MAX];
	uint8_t *buf;		/* arena owned by the caller */
	size_t cap;
	unsigned int skipped;	/* SURG_SKIP_* (an addition to design15.md) */
};

struct pkt;
/*
 * set-field and strip-tcp-option alone, on p in place (the chain's rewrite,
 * like set-ttl): checksums updated incrementally, a partial checksum
 * (p->needs_csum) as such; p parsed again when a field changed (a packet
 * the parser now refuses keeps what was read before).  The SURG_SKIP_* of
 * what did not apply.
 */
unsigned int surgery_rewrite(const struct rule_surgery *s, struct pkt *p);

/*
 * Whether a packet p that a cutting rule matched counts as surgery-whole,
 * given what surgery_apply() made of it (parts: real packets out, the
 * first fragment of each counted once; fragments; decoys): it carried
 * something to cut and one of its tools still left it as it was.  Counted:
 * a TCP segment with payload (not SYN, RST or URG) that split left in one
 * piece (the position lay beyond the payload, the name was not in it), a
 * TCP segment with payload or any UDP datagram that ipfrag did not cut (it
 * was not longer than the offset, or its headers did not fit), one that
 * fake sent no decoy for.  Never counted: a packet without payload (the
 * ACKs of a split flow), a fragment, neither TCP nor UDP, a split of UDP.
 */
bool surgery_whole(const struct rule_surgery *s, const struct pkt *p, unsigned int parts,
		   unsigned int fragments, unsigned int decoys);

/*
 * Apply s to ONE IP packet (not GSO).  Output: out->n packets at
 * out->buf + out->pkt[i].off, in sending order (decoys first, then the real
 * parts; disorder reverses the real parts).  0, -EINVAL for a packet
 * pkt_parse() refuses, -ENOSPC when the arena is too small (nothing
 * outside out->buf[0..cap) is ever written).
 */
int surgery_apply(const struct rule_surgery *s, const uint8_t *pkt, size_t len,
		  const struct surg_marks *mk, uint64_t rnd_seed, struct surg_out *out);

#endif
