/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packets built by hand for the unit tests: big-endian stores and loads, the
 * tests' addresses and an IPv4 header between them.
 */
#ifndef IPMODD_TEST_PKTBUILD_H
#define IPMODD_TEST_PKTBUILD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const uint8_t src4[4] = { 192, 0, 2, 1 }, dst4[4] = { 198, 51, 100, 7 };
static const uint8_t src6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
static const uint8_t dst6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 2 };

static inline void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

/*
 * An IPv4 header src4 -> dst4 at d (DSCP 46, ECN 1, IP ID id, TTL ttl, no
 * checksum) for l4len bytes after it, with optlen bytes of options (a
 * multiple of 4): opt's, or NOPs when opt is NULL.  Returns its length.
 */
static inline size_t ip4_header(uint8_t *d, uint16_t id, uint8_t ttl, uint8_t proto,
				const uint8_t *opt, size_t optlen, size_t l4len)
{
	size_t hl = 20 + optlen;

	memset(d, 0, hl);
	d[0] = (uint8_t)(0x40 | hl / 4);
	d[1] = 0xb9;		/* DSCP 46, ECN 1 */
	put16(d + 2, (uint16_t)(hl + l4len));
	put16(d + 4, id);
	d[8] = ttl;
	d[9] = proto;
	memcpy(d + 12, src4, 4);
	memcpy(d + 16, dst4, 4);
	if (opt)
		memcpy(d + 20, opt, optlen);
	else
		memset(d + 20, 1, optlen);
	return hl;
}

#endif
