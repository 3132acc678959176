/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "packet.h"
#include "pcapng.h"
#include "util.h"

#define SHB_TYPE 0x0a0d0d0au
#define IDB_TYPE 1u
#define EPB_TYPE 6u
#define OPT_ENDOFOPT 0
#define OPT_COMMENT 1
#define OPT_EPB_FLAGS 2
#define OPT_IF_NAME 2
#define OPT_EPB_DROPCOUNT 4

/* --- writer ------------------------------------------------------------------ */

static size_t put32(uint8_t *b, uint32_t v)
{
	memcpy(b, &v, 4);	/* host order: the section header says which */
	return 4;
}

static size_t put16(uint8_t *b, uint16_t v)
{
	memcpy(b, &v, 2);
	return 2;
}

/* An option whose value is len bytes, padded to 32 bits. */
static size_t put_opt(uint8_t *b, uint16_t code, const void *value, size_t len)
{
	size_t pad = (4 - len % 4) % 4;

	put16(b, code);
	put16(b + 2, (uint16_t)len);
	memcpy(b + 4, value, len);
	memset(b + 4 + len, 0, pad);
	return 4 + len + pad;
}

size_t pcapng_header(uint8_t *buf, uint32_t snaplen)
{
	size_t n = 0;

	n += put32(buf + n, SHB_TYPE);	/* Section Header Block */
	n += put32(buf + n, 28);
	n += put32(buf + n, 0x1A2B3C4D);
	n += put16(buf + n, 1);
	n += put16(buf + n, 0);
	memset(buf + n, 0xff, 8);		/* section length unknown */
	n += 8;
	n += put32(buf + n, 28);

	n += put32(buf + n, IDB_TYPE);		/* Interface Description Block */
	n += put32(buf + n, 36);
	n += put16(buf + n, PCAPNG_LINKTYPE_RAW);
	n += put16(buf + n, 0);
	n += put32(buf + n, snaplen);
	n += put_opt(buf + n, OPT_IF_NAME, "ipmodd", 6);
	n += put32(buf + n, OPT_ENDOFOPT);
	n += put32(buf + n, 36);
	return n;
}

size_t pcapng_epb(uint8_t *buf, bool after, unsigned int dir, uint64_t time_ns,
		  const uint8_t *data, size_t len, uint32_t snaplen, uint64_t dropcount)
{
	uint64_t us = time_ns / 1000;
	uint32_t cap = (uint32_t)(len < snaplen ? len : snaplen);
	uint32_t flags = dir == PKT_DIR_IN ? 1 : 2;	/* inbound : outbound */
	size_t n = 0;

	n += put32(buf + n, EPB_TYPE);		/* Enhanced Packet Block */
	n += 4;					/* its length, below */
	n += put32(buf + n, 0);			/* interface */
	n += put32(buf + n, (uint32_t)(us >> 32));
	n += put32(buf + n, (uint32_t)us);
	n += put32(buf + n, cap);
	n += put32(buf + n, (uint32_t)len);
	memcpy(buf + n, data, cap);
	memset(buf + n + cap, 0, (4 - cap % 4) % 4);
	n += cap + (4 - cap % 4) % 4;
	n += put_opt(buf + n, OPT_EPB_FLAGS, &flags, 4);
	n += after ? put_opt(buf + n, OPT_COMMENT, "after", 5) :
		     put_opt(buf + n, OPT_COMMENT, "before", 6);
	if (dropcount)
		n += put_opt(buf + n, OPT_EPB_DROPCOUNT, &dropcount, 8);
	n += put32(buf + n, OPT_ENDOFOPT);
	n += 4;
	put32(buf + 4, (uint32_t)n);
	put32(buf + n - 4, (uint32_t)n);
	return n;
}

/* ---- reader --------------------------------------------------------------- */

enum {
	PC_HEADER,	/* block type and total length */
	PC_SHB_BOM,	/* the byte-order magic of a Section Header Block */
	PC_EPB,		/* interface id, timestamp, captured and original length */
	PC_OPTION,	/* an option's code and length */
	PC_DROPCOUNT,	/* the value of epb_dropcount */
	PC_FLAGS,	/* the value of epb_flags */
	PC_TRAILER,	/* the block's total length, again */
};

static uint32_t pc_u32(const struct pcapng_counter *c, const uint8_t *b)
{
	if (c->big_endian)
		return get_be32(b);
	return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}

static uint16_t pc_u16(const struct pcapng_counter *c, const uint8_t *b)
{
	if (c->big_endian)
		return get_be16(b);
	return (uint16_t)(b[1] << 8 | b[0]);
}

static uint64_t pc_u64(const struct pcapng_counter *c, const uint8_t *b)
{
	if (c->big_endian)
		return (uint64_t)get_be32(b) << 32 | get_be32(b + 4);
	return (uint64_t)pc_u32(c, b + 4) << 32 | pc_u32(c, b);
}

static int pc_fail(struct pcapng_counter *c, const char *why)
{
	c->err = -EBADMSG;
	c->why = why;
	return c->err;
}

/* Gather the next field of want bytes of the block. */
static void pc_gather(struct pcapng_counter *c, int state, size_t want)
{
	c->state = state;
	c->have = 0;
	c->want = want;
	c->left -= (uint32_t)want;
}

/* Pass over the rest of the block up to its trailing length. */
static void pc_to_trailer(struct pcapng_counter *c)
{
	c->skip += c->left - 4;
	c->left = 4;
	pc_gather(c, PC_TRAILER, 4);
}

static void pc_next_option(struct pcapng_counter *c)
{
	if (c->left - 4 >= 4)
		pc_gather(c, PC_OPTION, 4);
	else
		pc_to_trailer(c);
}

static int pc_block_len(struct pcapng_counter *c, uint32_t len, uint32_t min)
{
	if (len < min)
		return pc_fail(c, "block shorter than its fields");
	if (len % 4)
		return pc_fail(c, "block length not a multiple of 4");
	if (len > PCAPNG_BLOCK_MAX)
		return pc_fail(c, "block longer than 1 MiB");
	c->block_len = len;
	return 0;
}

static int pc_step(struct pcapng_counter *c)
{
	static const uint8_t shb[4] = { 0x0a, 0x0d, 0x0d, 0x0a };
	uint32_t len, pad;
	uint16_t code;
	int r;

	switch (c->state) {
	case PC_HEADER:
		if (!memcmp(c->buf, shb, 4)) {
			c->state = PC_SHB_BOM;
			c->want = 12;
			return 0;
		}
		if (!c->in_section)
			return pc_fail(c, "the stream does not begin with a Section Header Block");
		len = pc_u32(c, c->buf + 4);
		r = pc_block_len(c, len, 12);
		if (r < 0)
			return r;
		c->left = len - 8;
		if (pc_u32(c, c->buf) != EPB_TYPE) {
			pc_to_trailer(c);
			return 0;
		}
		if (len < 32)
			return pc_fail(c, "Enhanced Packet Block shorter than its fields");
		pc_gather(c, PC_EPB, 20);
		return 0;
	case PC_SHB_BOM:
		if (get_be32(c->buf + 8) == 0x1a2b3c4d)
			c->big_endian = true;
		else if (get_be32(c->buf + 8) == 0x4d3c2b1a)
			c->big_endian = false;
		else
			return pc_fail(c, "bad byte-order magic in a Section Header Block");
		c->in_section = true;
		len = pc_u32(c, c->buf + 4);
		r = pc_block_len(c, len, 28);
		if (r < 0)
			return r;
		c->left = len - 12;
		pc_to_trailer(c);
		return 0;
	case PC_EPB:
		c->packets++;
		len = pc_u32(c, c->buf + 12);
		if (len > c->left - 4)
			return pc_fail(c, "packet data beyond its block");
		pad = (len + 3) & ~3u;
		if (pad > c->left - 4)
			return pc_fail(c, "packet data beyond its block");
		c->skip = pad;
		c->left -= pad;
		pc_next_option(c);
		return 0;
	case PC_OPTION:
		code = pc_u16(c, c->buf);
		len = pc_u16(c, c->buf + 2);
		pad = (len + 3) & ~3u;
		if (code == OPT_ENDOFOPT) {
			pc_to_trailer(c);
			return 0;
		}
		if (pad > c->left - 4)
			return pc_fail(c, "option beyond its block");
		if (code == OPT_EPB_DROPCOUNT && len == 8) {
			pc_gather(c, PC_DROPCOUNT, 8);
			return 0;
		}
		if (code == OPT_EPB_FLAGS && len == 4) {
			pc_gather(c, PC_FLAGS, 4);
			return 0;
		}
		c->skip = pad;
		c->left -= pad;
		pc_next_option(c);
		return 0;
	case PC_DROPCOUNT:
		c->dropped += pc_u64(c, c->buf);
		pc_next_option(c);
		return 0;
	case PC_FLAGS:
		/* The direction, bits 0-1: 1 inbound, 2 outbound, 0 not known. */
		len = pc_u32(c, c->buf) & 3;
		c->inbound += len == 1;
		c->outbound += len == 2;
		pc_next_option(c);
		return 0;
	case PC_TRAILER:
		if (pc_u32(c, c->buf) != c->block_len)
			return pc_fail(c, "trailing block length differs from the leading one");
		c->state = PC_HEADER;
		c->have = 0;
		c->want = 8;
		return 0;
	}
	return pc_fail(c, "internal error");
}

void pcapng_counter_init(struct pcapng_counter *c)
{
	memset(c, 0, sizeof(*c));
	c->state = PC_HEADER;
	c->want = 8;
}

int pcapng_counter_feed(struct pcapng_counter *c, const void *data, size_t len)
{
	const uint8_t *d = data;
	size_t n;
	int r;

	while (len && !c->err) {
		if (c->skip) {
			n = len < c->skip ? len : c->skip;
			c->skip -= (uint32_t)n;
		} else {
			n = c->want - c->have;
			if (n > len)
				n = len;
			memcpy(c->buf + c->have, d, n);
			c->have += n;
		}
		d += n;
		len -= n;
		c->offset += n;
		if (!c->skip && c->have == c->want) {
			r = pc_step(c);
			if (r < 0)
				return r;
		}
	}
	return c->err;
}

bool pcapng_counter_partial(const struct pcapng_counter *c)
{
	return c->state != PC_HEADER || c->have || c->skip;
}
