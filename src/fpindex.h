/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rule index of the eBPF fast path, built by the daemon for the kernel
 * (fastpath.c writes it into the program's maps): for a packet, the lists
 * of the only rules it can match, each list in rule order, so that the
 * program merges a few short lists instead of walking the chain.
 *
 * Each rule is in exactly one bucket, by the most selective of its exact
 * matches on a field no action rewrites (as chain.c's own index): a single
 * dport or sport of its proto, a dst or src prefix without "!"; a rule
 * without one is generic, listed by its family and proto.  A packet's
 * candidates are, merged by rule index:
 * - generic[v6][FPINDEX_ANY] (rules of any proto, of its family or none) and
 *   generic[v6][proto] (rules of its proto, of its family or none);
 * - with its L4 header, the port entries of (dport, proto, dport) and of
 *   (sport, proto, sport);
 * - of the dst prefixes of its family, the longest that holds its dst
 *   address, and the same for src.  That is what an LPM trie returns, so a
 *   prefix entry lists the rules of every keyed prefix that covers it too
 *   (leaf pushing).
 * The lists share one array (order) of at most order_max indices; a list
 * that does not fit has count FPINDEX_PUNT: its packets go to userspace.
 * Pure: no I/O, no logging.
 */
#ifndef IPMODD_FPINDEX_H
#define IPMODD_FPINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "rule.h"

#define FPINDEX_ANY 256
#define FPINDEX_PUNT UINT32_MAX

struct fpindex_list {
	uint32_t start, count;	/* in order[]; count 0: empty, FPINDEX_PUNT: too long */
};

struct fpindex_port {
	uint8_t sport;		/* 0: dport */
	uint8_t proto;
	uint16_t port;
	struct fpindex_list l;
};

struct fpindex_prefix {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t len;		/* 1..32 or 1..128 */
	uint8_t addr[16];	/* network order, host bits clear; IPv4 in the first 4 */
	struct fpindex_list l;
};

struct fpindex {
	uint32_t *order;
	size_t norder;
	struct fpindex_list generic[2][FPINDEX_ANY + 1];	/* [v6][proto or FPINDEX_ANY] */
	struct fpindex_port *ports;				/* sorted by sport, proto, port */
	size_t nports;
	struct fpindex_prefix *prefixes[2];			/* [src] */
	size_t nprefixes[2];
	size_t punts;		/* lists that did not fit */
};

/*
 * The index of rules m[0..n), in at most order_max indices.  A NULL m[i]
 * is a rule the index leaves out (one of the other direction, which no
 * packet of this index can match): it is in no list, and the others keep
 * their indices.
 */
int fpindex_build(const struct rule_match *const *m, size_t n, size_t order_max,
		  struct fpindex **ret);
struct fpindex *fpindex_free(struct fpindex *ix);

#endif
