/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Address sets: IPv4 and IPv6 prefixes, mixed, up to PREFIXSET_MAX lines,
 * loaded from a list file (listfile.h: one prefix or address per line,
 * '#' comments, blank lines) and built once into an immutable structure,
 * so that a running chain can keep using the old set while a reload
 * builds the new one.  Freeing is the only change after the build.
 *
 * A set answers membership: is ADDR inside any prefix of the set (a
 * longest-prefix match whose only value is "present").  The build turns
 * each prefix into an address interval, sorts them and merges overlapping
 * and adjacent ones, so a lookup is one binary search over disjoint
 * intervals: 8 bytes per IPv4 interval, 32 per IPv6 one, at most one
 * interval per prefix (nested or adjacent prefixes need fewer).  A family
 * with 1024 intervals or more also gets a first-level index on the top 16
 * address bits (256 KiB), which narrows the search to one bucket.
 *
 * Entries are normalized like a rule's src/dst: host bits past the prefix
 * length are cleared ("10.1.2.3/8" is 10.0.0.0/8), a bare address is a
 * /32 or /128.  The family is as written: an IPv4 prefix never matches an
 * IPv6 address, not even a v4-mapped ::ffff:a.b.c.d (write the mapped
 * prefix, ::ffff:10.0.0.0/104, for those), and an IPv6 prefix never
 * matches an IPv4 address.
 *
 * A library module: it never logs; errors ("file:line: reason") go to the
 * caller's buffer.
 */
#ifndef IPMODD_PREFIXSET_H
#define IPMODD_PREFIXSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PREFIXSET_MAX 4000000u	/* entries (lines with a prefix) per set */

struct prefixset;

struct prefixset_stats {
	uint64_t prefixes4, prefixes6;		/* entries as loaded */
	uint64_t intervals4, intervals6;	/* after merging */
	uint64_t bytes;				/* memory of the built set */
};

/*
 * Load PATH and build the set.  0 and *ret, or -errno with the reason in
 * err: -EINVAL for a bad line ("PATH:LINE: ..."), -E2BIG past
 * PREFIXSET_MAX entries, -ENOMEM, or the error of opening/reading PATH.
 */
int prefixset_load(const char *path, struct prefixset **ret, char *err, size_t errlen);

/* The same from a buffer; NAME stands for the file name in errors. */
int prefixset_from_text(const char *buf, size_t len, const char *name, struct prefixset **ret,
			char *err, size_t errlen);

/* AF_INET with 4 bytes or AF_INET6 with 16 bytes in network order; other families: false. */
bool prefixset_contains(const struct prefixset *s, int family, const uint8_t *addr);

void prefixset_stats(const struct prefixset *s, struct prefixset_stats *st);

/* Takes NULL; returns NULL. */
struct prefixset *prefixset_free(struct prefixset *s);

#endif
