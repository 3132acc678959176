/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the QUIC Initial parser (hello.c).  The first input
 * byte chooses:
 * - odd: the rest is a datagram, as it comes (header parsing, varints,
 *   header protection and authentication failures);
 * - even: the rest is the plaintext of a QUIC v1 client Initial that this
 *   harness seals with the RFC 9001 A.1 client keys (DCID 8394c8f03e515708),
 *   so that the frame parser and CRYPTO reassembly and the ClientHello parser
 *   behind it are reached.  A name found must then lie within that plaintext.
 * For any input the name is NUL-terminated within its buffer and visible ASCII.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hello.h"

#ifdef HAVE_LIBCRYPTO
#include <openssl/evp.h>
#endif

#define check(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef HAVE_LIBCRYPTO
static const uint8_t key[16] = { 0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46,
				 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1, 0xa2, 0x2d };
static const uint8_t iv[12] = { 0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b,
				0x46, 0xfb, 0x25, 0x5c };
static const uint8_t hp[16] = { 0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10,
				0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad, 0xed, 0xd2 };

/* header c3 00000001 08 dcid 00 00 len(2) pn(4)=0: seal plain into pkt */
static size_t seal(const uint8_t *plain, size_t plen, uint8_t *pkt)
{
	static const uint8_t dcid[8] = { 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08 };
	EVP_CIPHER_CTX *c;
	uint8_t mask[16];
	size_t h = 0, total;
	int n;

	pkt[h++] = 0xc3;
	pkt[h++] = 0, pkt[h++] = 0, pkt[h++] = 0, pkt[h++] = 1;
	pkt[h++] = 8;
	memcpy(pkt + h, dcid, 8), h += 8;
	pkt[h++] = 0;		/* scid */
	pkt[h++] = 0;		/* token */
	total = 4 + plen + 16;
	pkt[h++] = (uint8_t)(0x40 | total >> 8), pkt[h++] = (uint8_t)total;
	memset(pkt + h, 0, 4), h += 4;	/* packet number 0 */
	c = EVP_CIPHER_CTX_new();
	check(c);
	check(EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, iv) == 1);
	check(EVP_EncryptUpdate(c, NULL, &n, pkt, (int)h) == 1);
	check(EVP_EncryptUpdate(c, pkt + h, &n, plain, (int)plen) == 1);
	check(EVP_EncryptFinal_ex(c, pkt + h + n, &n) == 1);
	check(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, pkt + h + plen) == 1);
	check(EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL) == 1);
	check(EVP_CIPHER_CTX_set_padding(c, 0) == 1);
	check(EVP_EncryptUpdate(c, mask, &n, pkt + h, 16) == 1);
	EVP_CIPHER_CTX_free(c);
	pkt[0] ^= mask[0] & 0x0f;
	for (int i = 0; i < 4; i++)
		pkt[h - 4 + i] ^= mask[1 + i];
	return h + plen + 16;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pkt[4096];
	char name[64];
	int r;

	if (size < 1 || size > 2048)
		return 0;
	memset(name, 'x', sizeof(name));
	if (data[0] & 1) {
		r = hello_quic_sni(data + 1, size - 1, name, sizeof(name));
	} else {
#ifdef HAVE_LIBCRYPTO
		/* the sample needs 16 bytes after the 4-byte packet number */
		if (size - 1 < 16)
			return 0;
		r = hello_quic_sni(pkt, seal(data + 1, size - 1, pkt), name, sizeof(name));
		if (r == 0)
			check(memmem(data + 1, size - 1, name, strlen(name)));
#else
		r = hello_quic_sni(data + 1, size - 1, name, sizeof(name));
		check(r == -EOPNOTSUPP);
#endif
	}
	check(r == 0 || r == -ENOENT || r == -EAGAIN || r == -EINVAL || r == -E2BIG ||
	      r == -EBADMSG || r == -ENOBUFS || r == -EOPNOTSUPP);
	if (r == 0) {
		size_t n = strnlen(name, sizeof(name));

		check(n >= 1 && n < sizeof(name));
		for (size_t i = 0; i < n; i++)
			check(name[i] > 0x20 && name[i] < 0x7f);
	}
	return 0;
}
