/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A compiled rule chain: immutable once built (only its counters and rate
 * limiter state change), so that a new chain can be swapped in atomically.
 * No I/O, no logging.
 */
#ifndef IPMODD_CHAIN_H
#define IPMODD_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "packet.h"
#include "rule.h"

struct chain;

enum chain_verdict {
	CHAIN_ACCEPT,		/* write p back (forwarded: compensate TTL) */
	CHAIN_DROP,		/* consume p */
	CHAIN_FORGED,		/* p consumed; write *forged back toward the local host as is */
};

/* Copies the rules; checks that names are unique. */
int chain_new(struct rule *const *rules, size_t n, struct chain **ret, char *err, size_t errlen);
struct chain *chain_ref(struct chain *c);
struct chain *chain_unref(struct chain *c);
size_t chain_size(const struct chain *c);

/*
 * Run a packet that pkt_parse() accepted through the chain.  p may be
 * modified in place (checksums are kept right).  For CHAIN_FORGED, the reply
 * is built in forged, whose data/cap the caller provides.
 */
enum chain_verdict chain_run(struct chain *c, struct pkt *p, struct pkt *forged, uint64_t now_ns);

#endif
