/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the TLS ClientHello parser (hello.c).  The input is
 * the stream; for any input:
 * - a found name lies within the input, is 1..HELLO_NAME_MAX visible ASCII
 *   bytes, and matches itself as a pattern; its midsld lies inside it;
 * - every prefix that the parser calls incomplete asks for more than it has;
 * - the same bytes without the 5-byte record header, given to the bare
 *   handshake entry, obey the same bounds.
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

static void check_name(const uint8_t *data, size_t size, uint32_t off, uint32_t nlen)
{
	char name[HELLO_NAME_MAX + 1];
	int mid;

	check(nlen >= 1 && nlen <= HELLO_NAME_MAX);
	check(off <= size && nlen <= size - off);
	for (uint32_t i = 0; i < nlen; i++)
		check(data[off + i] > 0x20 && data[off + i] < 0x7f);
	memcpy(name, data + off, nlen);
	name[nlen] = '\0';
	check(hello_name_match(name, name, nlen));
	mid = hello_midsld(name, nlen);
	check(mid == -ENOENT || (mid > 0 && (uint32_t)mid < nlen));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t off = 0, nlen = 0;
	size_t need = 0;
	int r;

	r = hello_tls_sni(data, size, &off, &nlen, &need);
	check(r == 0 || r == -ENOENT || r == -EAGAIN || r == -EINVAL || r == -E2BIG);
	if (r == 0)
		check_name(data, size, off, nlen);
	if (r == -EAGAIN)
		check(need > size && need <= HELLO_MAX);
	if (size > 5) {
		r = hello_tls_sni_handshake(data + 5, size - 5, &off, &nlen, &need);
		check(r == 0 || r == -ENOENT || r == -EAGAIN || r == -EINVAL || r == -E2BIG);
		if (r == 0)
			check_name(data + 5, size - 5, off, nlen);
		if (r == -EAGAIN)
			check(need > size - 5);
	}
	return 0;
}
