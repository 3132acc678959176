/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A seeded generator for the randomised unit tests (splitmix64): the same
 * seed gives the same rule sets and packets, so a failure can be replayed.
 */
#ifndef IPMODD_TEST_RNG_H
#define IPMODD_TEST_RNG_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

static uint64_t rs;	/* the state: set it to the seed */

static inline uint64_t rnd64(void)
{
	return splitmix64(&rs);
}

/* 0..n-1 */
static inline unsigned int rnd(unsigned int n)
{
	return (unsigned int)(rnd64() % n);
}

/* true with probability p/100 */
static inline bool pct(unsigned int p)
{
	return rnd(100) < p;
}

#define PICK(a) ((a)[rnd(ARRAY_SIZE(a))])

#endif
