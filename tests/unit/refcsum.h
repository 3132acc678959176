/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A deliberately naive Internet checksum for the tests to check packet.c
 * against: byte by byte, folded at the end, sharing no code with it.
 */
#ifndef IPMODD_REFCSUM_H
#define IPMODD_REFCSUM_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t ref_sum(const uint8_t *b, size_t n, uint32_t s)
{
	size_t i;

	for (i = 0; i < n; i++)
		s += i % 2 ? b[i] : (uint32_t)b[i] << 8;
	return s;
}

static inline uint16_t ref_fold(uint32_t s)
{
	while (s > 0xffff)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* What goes into a checksum field: the folded sum, complemented. */
static inline uint16_t ref_csum(uint32_t s)
{
	return (uint16_t)~ref_fold(s);
}

#endif
