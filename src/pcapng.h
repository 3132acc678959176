/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pcapng, both ways: the writer of the daemon's captures (monitor.c) and the
 * reader that counts them as they stream into ipmodctl.  Pure: no I/O, no
 * logging.
 */
#ifndef IPMODD_PCAPNG_H
#define IPMODD_PCAPNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * pcapng: one interface "ipmodd" of raw IP packets, microsecond timestamps.
 * Each packet says which way it travels in its epb_flags direction bits
 * (struct pkt's dir: inbound 1, outbound 2, as the pcapng spec has them; a
 * reply or reject forged to a packet goes the other way),
 * which side of the chain it shows in a comment ("before", "after");
 * epb_dropcount counts the packets lost before it.  One
 * interface only: libpcap refuses a second one of the same raw link type.
 */
#define PCAPNG_LINKTYPE_RAW 101
#define PCAPNG_HEADER_LEN (28 + 36)
#define PCAPNG_EPB_MAX (28 + 65536 + 8 + 12 + 12 + 4 + 4)

/* The section header and the interface; returns PCAPNG_HEADER_LEN. */
size_t pcapng_header(uint8_t *buf, uint32_t snaplen);
/* One Enhanced Packet Block of a packet of direction dir (enum pkt_dir); returns its length. */
size_t pcapng_epb(uint8_t *buf, bool after, unsigned int dir, uint64_t time_ns,
		  const uint8_t *data, size_t len, uint32_t snaplen, uint64_t dropcount);

/*
 * Counts the packets of a pcapng stream fed in chunks of any size: Enhanced
 * Packet Blocks, those whose epb_flags say inbound (1) or outbound (2), and
 * the sum of their epb_dropcount options.  Block bodies are skipped, not
 * stored.
 */
#define PCAPNG_BLOCK_MAX (1u << 20)	/* a longer block is taken for garbage */

struct pcapng_counter {
	uint64_t packets;	/* Enhanced Packet Blocks */
	uint64_t dropped;	/* sum of their epb_dropcount */
	uint64_t inbound;	/* of the packets, epb_flags direction inbound */
	uint64_t outbound;	/* ... outbound */
	uint64_t offset;	/* bytes fed */

	int state;
	int err;		/* sticky, 0 or -EBADMSG */
	const char *why;
	bool big_endian;	/* of the current section */
	bool in_section;	/* a Section Header Block was seen */
	uint32_t block_len;	/* of the current block */
	uint32_t left;		/* bytes of the current block not yet fed */
	uint32_t skip;		/* bytes to pass over before the next field */
	uint8_t buf[20];	/* a field being gathered */
	size_t have, want;
};

void pcapng_counter_init(struct pcapng_counter *c);
/* Returns 0, or -EBADMSG (sticky; c->why says why, c->offset is near where). */
int pcapng_counter_feed(struct pcapng_counter *c, const void *data, size_t len);
/* Whether the stream stopped in the middle of a block. */
bool pcapng_counter_partial(const struct pcapng_counter *c);

#endif
