/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to chain.c and chain-index.c: the index of a chain's rules by
 * direction (see chain-index.c), and the address helpers both the index's
 * lookup and chain.c's matching use.  No I/O, no logging.
 */
#ifndef IPMODD_CHAIN_INDEX_H
#define IPMODD_CHAIN_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "chain.h"
#include "packet.h"
#include "rule.h"

#define IX_LENS 129
/* The lists one packet can gather: 4 generic, 2 port kinds, dst and src lengths of a family. */
#define IX_CURSORS (4 + 2 + 2 * IX_LENS)
/* Lists end with IX_END, so that merging them needs no bounds: it sorts last. */
#define IX_END UINT32_MAX

struct chain_index;

/* The index of the rules[0..n) that match direction dir (enum pkt_dir), into *ret. */
int chain_index_new(const struct rule *rules, size_t n, unsigned int dir,
		    struct chain_index **ret);
/* Returns NULL. */
struct chain_index *chain_index_free(struct chain_index *ix);
const struct chain_index_info *chain_index_get_info(const struct chain_index *ix);

/*
 * The lists of the rules p could match, into cur (room for IX_CURSORS);
 * returns how many.  ix_next() then gives their rules in rule order.
 */
size_t chain_index_gather(const struct chain_index *ix, const struct pkt *p, const uint32_t **cur);

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

static inline bool l4_usable(const struct pkt *p)
{
	return p->l4_complete && (!p->fragment || p->first_fragment);
}

#endif
