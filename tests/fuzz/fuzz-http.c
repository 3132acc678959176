/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the HTTP/1.x Host parser (hello.c).  For any input, a
 * found host lies within the input (and within HELLO_MAX), is 1..HELLO_NAME_MAX
 * visible ASCII bytes and carries no port; the result on the first
 * HELLO_MAX bytes is the same as on the whole input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hello.h"

#define check(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t off = 0, nlen = 0, o2 = 0, n2 = 0;
	int r, r2;

	r = hello_http_host(data, size, &off, &nlen);
	check(r == 0 || r == -ENOENT || r == -EAGAIN || r == -EINVAL || r == -E2BIG);
	if (r == 0) {
		check(nlen >= 1 && nlen <= HELLO_NAME_MAX);
		check(off <= size && nlen <= size - off && off + nlen <= HELLO_MAX);
		for (uint32_t i = 0; i < nlen; i++)
			check(data[off + i] > 0x20 && data[off + i] < 0x7f);
		/* no port left: a colon only inside an IPv6 literal */
		if (data[off] != '[')
			check(!memchr(data + off, ':', nlen));
	}
	r2 = hello_http_host(data, size < HELLO_MAX ? size : HELLO_MAX, &o2, &n2);
	check(r2 == r && (r != 0 || (o2 == off && n2 == nlen)));
	return 0;
}
