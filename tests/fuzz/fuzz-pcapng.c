/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for ipmodctl's pcapng reader (pcapng_counter_feed(),
 * which counts the packets of a capture as it streams by).  Any input, fed
 * whole, a byte at a time and in chunks of sizes the input picks, gives the
 * same counts, error, reason, offset and partial state; an error is
 * -EBADMSG with a reason, and there are never more packets than 32-byte
 * blocks in the input.
 *
 * By hand: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *	tests/fuzz/fuzz-pcapng.c src/pcapng.c -o fuzz-pcapng
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pcapng.h"

#define check(cond)                    \
	do {                           \
		if (!(cond))           \
			abort();       \
	} while (0)

#define INPUT_MAX (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed data in chunks: 0 whole, 1 a byte at a time, else sizes from the input's bytes. */
static void feed(struct pcapng_counter *c, const uint8_t *data, size_t size, int how)
{
	size_t off = 0, i = 0, n;

	pcapng_counter_init(c);
	while (off < size) {
		if (how == 0)
			n = size;
		else if (how == 1)
			n = 1;
		else
			n = 1 + data[i++ % size] % 61;
		if (n > size - off)
			n = size - off;
		if (pcapng_counter_feed(c, data + off, n) < 0)
			break;
		off += n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pcapng_counter c[3];

	if (size > INPUT_MAX)
		return 0;
	for (int how = 0; how < 3; how++) {
		feed(&c[how], data, size, how);
		check(c[how].err == 0 || c[how].err == -EBADMSG);
		check(!c[how].err == !c[how].why);
		check(c[how].packets <= size / 32 && c[how].offset <= size);
		check(c[how].err || c[how].offset == size);
	}
	for (int how = 1; how < 3; how++) {
		check(c[how].packets == c[0].packets && c[how].dropped == c[0].dropped);
		check(c[how].err == c[0].err && c[how].why == c[0].why);
		check(c[how].offset == c[0].offset);
		check(pcapng_counter_partial(&c[how]) == pcapng_counter_partial(&c[0]));
	}
	return 0;
}
