/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host-name parsers (hello.c): QUIC v1/v2 Initial packets from the RFCs,
 * a real ClientHello from openssl s_client (tests/data/README), the same cut
 * into stream prefixes and re-framed into 2 and 3 TLS records at every
 * boundary, damaged copies (every length field +1/-1/max, every truncation,
 * every byte of the QUIC packet flipped), HTTP Host cases, midsld and
 * name_match tables.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hello.h"
#include "tap.h"
#include "testdata.h"

#ifdef HAVE_LIBCRYPTO
#include <openssl/evp.h>
#endif

/* ---- QUIC ---------------------------------------------------------------- */

static void test_quic(const char *file, const char *what)
{
	uint8_t pkt[1500], bad[1500];
	char name[HELLO_NAME_MAX + 1];
	size_t len = testdata_hex(file, pkt, sizeof(pkt));
	unsigned int matched = 0, tagfail = 0, trunc_match = 0;
	int r;

	is_int(len, 1200, "%s: the RFC's client Initial is 1200 bytes", what);
	if (!hello_quic_supported()) {
		is_int(hello_quic_sni(pkt, len, name, sizeof(name)), -EOPNOTSUPP,
		       "%s: without libcrypto, -EOPNOTSUPP", what);
		return;
	}
	r = hello_quic_sni(pkt, len, name, sizeof(name));
	is_int(r, 0, "%s: the SNI is found", what);
	is_str(r == 0 ? name : NULL, "example.com", "%s: it is example.com", what);
	is_int(hello_quic_sni(pkt, len, name, 11), -ENOBUFS, "%s: a name buffer too small", what);

	/* every byte flipped: never a match */
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, pkt, len);
		bad[i] ^= 0x01;
		r = hello_quic_sni(bad, len, name, sizeof(name));
		if (r == 0)
			matched++;
		if (i >= len - 16 && r == -EBADMSG)
			tagfail++;
	}
	is_int(matched, 0, "%s: no byte flipped (of %zu) gives a name", what, len);
	is_int(tagfail, 16, "%s: each flipped tag byte fails decryption", what);
	/* the ciphertext flipped with 0xff everywhere too */
	matched = 0;
	for (size_t i = 30; i < len; i++) {
		memcpy(bad, pkt, len);
		bad[i] ^= 0xff;
		if (hello_quic_sni(bad, len, name, sizeof(name)) == 0)
			matched++;
	}
	is_int(matched, 0, "%s: no ciphertext byte inverted gives a name", what);
	for (size_t n = 0; n < len; n++)
		if (hello_quic_sni(pkt, n, name, sizeof(name)) == 0)
			trunc_match++;
	is_int(trunc_match, 0, "%s: no truncation gives a name", what);
}

#ifdef HAVE_LIBCRYPTO
/*
 * Seal plain as the payload of a v1 client Initial with the RFC 9001 A.1
 * client keys (DCID 8394c8f03e515708), packet number 2 in 4 bytes, as A.2.
 */
static size_t seal(const uint8_t *plain, size_t plen, uint8_t *pkt)
{
	static const uint8_t key[16] = { 0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46,
					 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1, 0xa2, 0x2d };
	static const uint8_t iv[12] = { 0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b,
					0x46, 0xfb, 0x25, 0x5c ^ 2 };	/* xor pn 2 */
	static const uint8_t hp[16] = { 0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10,
					0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad, 0xed, 0xd2 };
	static const uint8_t hdr[] = { 0xc3, 0, 0, 0, 1, 8, 0x83, 0x94, 0xc8, 0xf0, 0x3e,
				       0x51, 0x57, 0x08, 0, 0 };
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	size_t h = sizeof(hdr), total = 4 + plen + 16;
	uint8_t mask[16];
	int n;

	memcpy(pkt, hdr, h);
	pkt[h++] = (uint8_t)(0x40 | total >> 8), pkt[h++] = (uint8_t)total;
	pkt[h++] = 0, pkt[h++] = 0, pkt[h++] = 0, pkt[h++] = 2;
	EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, iv);
	EVP_EncryptUpdate(c, NULL, &n, pkt, (int)h);
	EVP_EncryptUpdate(c, pkt + h, &n, plain, (int)plen);
	EVP_EncryptFinal_ex(c, pkt + h + n, &n);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, pkt + h + plen);
	EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL);
	EVP_CIPHER_CTX_set_padding(c, 0);
	EVP_EncryptUpdate(c, mask, &n, pkt + h, 16);
	EVP_CIPHER_CTX_free(c);
	pkt[0] ^= mask[0] & 0x0f;
	for (int i = 0; i < 4; i++)
		pkt[h - 4 + i] ^= mask[1 + i];
	return h + plen + 16;
}

static size_t crypto_frame(uint8_t *b, const uint8_t *data, size_t off, size_t len)
{
	size_t n = 0;

	b[n++] = 0x06;
	b[n++] = (uint8_t)(0x40 | off >> 8), b[n++] = (uint8_t)off;
	b[n++] = (uint8_t)(0x40 | len >> 8), b[n++] = (uint8_t)len;
	memcpy(b + n, data + off, len);
	return n + len;
}

/* The RFC's ClientHello cut into CRYPTO frames, sent out of order among other frames. */
static void test_quic_frames(void)
{
	static const uint8_t ack[] = { 0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00 };
	uint8_t frame[300], plain[1162], pkt[1300];
	const uint8_t *chello = frame + 4;
	char name[64];
	size_t fl = testdata_hex("quic-v1-crypto-frame.hex", frame, sizeof(frame)), cl, n, len;
	unsigned int bad = 0, gap_bad = 0;
	int r;

	ok(fl == 245 && frame[0] == 0x06, "the RFC's CRYPTO frame is loaded (%zu bytes)", fl);
	cl = fl - 4;
	/* the RFC's own plaintext, sealed here: the RFC's packet, byte for byte */
	{
		uint8_t rfc[1200];

		testdata_hex("quic-v1-initial.hex", rfc, sizeof(rfc));
		memset(plain, 0, sizeof(plain));
		memcpy(plain, frame, fl);
		len = seal(plain, sizeof(plain), pkt);
		ok(len == 1200 && memcmp(pkt, rfc, 1200) == 0,
		   "sealed here with the RFC's keys, the RFC's plaintext is the RFC's packet");
	}
	for (size_t a = 1; a < cl; a += 7) {
		for (size_t b = a + 1; b < cl; b += 11) {
			n = 0;
			plain[n++] = 0x01;				/* PING */
			n += crypto_frame(plain + n, chello, b, cl - b);
			memcpy(plain + n, ack, sizeof(ack)), n += sizeof(ack);
			n += crypto_frame(plain + n, chello, 0, a);
			n += crypto_frame(plain + n, chello, a, b - a);
			memset(plain + n, 0, sizeof(plain) - n);	/* PADDING */
			len = seal(plain, sizeof(plain), pkt);
			r = hello_quic_sni(pkt, len, name, sizeof(name));
			if (r != 0 || strcmp(name, "example.com") != 0)
				bad++;
			/* without the middle frame: incomplete, even when the name came before it */
			n = 0;
			n += crypto_frame(plain + n, chello, 0, a);
			n += crypto_frame(plain + n, chello, b, cl - b);
			memset(plain + n, 0, sizeof(plain) - n);
			len = seal(plain, sizeof(plain), pkt);
			r = hello_quic_sni(pkt, len, name, sizeof(name));
			if (r != -EAGAIN)
				gap_bad++;
		}
	}
	is_int(bad, 0, "3 CRYPTO frames in every order-shuffled cut, among PING/ACK/PADDING");
	is_int(gap_bad, 0, "a missing middle frame: -EAGAIN (the ClientHello is incomplete)");
	/* no CRYPTO data at offset 0; a frame not allowed in an Initial; an ACK overrunning */
	memset(plain, 0, sizeof(plain));
	crypto_frame(plain, chello, 10, cl - 10);
	is_int(hello_quic_sni(pkt, seal(plain, sizeof(plain), pkt), name, sizeof(name)), -ENOENT,
	       "no CRYPTO data at offset 0: -ENOENT");
	memset(plain, 0, sizeof(plain));
	n = crypto_frame(plain, chello, 0, cl);
	plain[n] = 0x08;	/* STREAM */
	is_int(hello_quic_sni(pkt, seal(plain, sizeof(plain), pkt), name, sizeof(name)), -EINVAL,
	       "a STREAM frame in an Initial: -EINVAL");
	memset(plain, 0, sizeof(plain));
	plain[0] = 0x02, plain[1] = 0, plain[2] = 0, plain[3] = 0xbf, plain[4] = 0xff;
	plain[5] = 0xff, plain[6] = 0xff;	/* ACK with 2^30-ish ranges */
	is_int(hello_quic_sni(pkt, seal(plain, sizeof(plain), pkt), name, sizeof(name)), -EINVAL,
	       "an ACK frame whose ranges overrun the packet: -EINVAL");
	memset(plain, 0, sizeof(plain));
	plain[0] = 0x06, plain[1] = 0, plain[2] = 0x44, plain[3] = 0xff;
	is_int(hello_quic_sni(pkt, seal(plain, sizeof(plain), pkt), name, sizeof(name)), -EINVAL,
	       "a CRYPTO frame longer than the packet: -EINVAL");
}
#endif

/* ---- TLS ----------------------------------------------------------------- */

static uint8_t ch[2048];
static size_t ch_len;

/* Where the length fields of the captured ClientHello are: offset and size. */
struct lenfield {
	size_t off, size;
};

static size_t find_lengths(struct lenfield *lf, size_t cap)
{
	size_t n = 0, pos, end, ext_end;

#define ADD(o, s)                                      \
	do {                                           \
		if (n < cap)                           \
			lf[n++] = (struct lenfield){ (o), (s) }; \
	} while (0)
	ADD(3, 2);		/* record */
	ADD(6, 3);		/* handshake */
	pos = 5 + 4 + 2 + 32;
	ADD(pos, 1);		/* session id */
	pos += 1 + ch[pos];
	ADD(pos, 2);		/* cipher suites */
	pos += 2 + (ch[pos] << 8 | ch[pos + 1]);
	ADD(pos, 1);		/* compression */
	pos += 1 + ch[pos];
	ADD(pos, 2);		/* extensions */
	ext_end = pos + 2 + (ch[pos] << 8 | ch[pos + 1]);
	end = ch_len;
	pos += 2;
	while (pos + 4 <= ext_end && pos < end) {
		size_t type = ch[pos] << 8 | ch[pos + 1], elen = ch[pos + 2] << 8 | ch[pos + 3];

		ADD(pos + 2, 2);
		if (type == 0) {
			ADD(pos + 4, 2);	/* server name list */
			ADD(pos + 7, 2);	/* host_name */
		}
		pos += 4 + elen;
	}
#undef ADD
	return n;
}

static void test_tls(void)
{
	static uint8_t buf[4096], rec[4096];
	struct lenfield lf[64];
	uint32_t off = 0, nlen = 0, o2, n2;
	size_t need = 0, sni_end, hs_len, nf;
	unsigned int bad = 0, bad2 = 0, bad3 = 0, eagain_bad = 0;
	int r;

	ch_len = testdata_hex("tls-clienthello-openssl.hex", ch, sizeof(ch));
	ok(ch_len > 100 && ch[0] == 22, "the captured ClientHello is loaded (%zu bytes)", ch_len);
	r = hello_tls_sni(ch, ch_len, &off, &nlen, &need);
	is_int(r, 0, "capture: the SNI is found");
	ok(r == 0 && nlen == 14 && memcmp(ch + off, "a.blocked.test", 14) == 0 &&
		   off + nlen <= ch_len,
	   "capture: it is a.blocked.test, within the input (off %u)", off);
	sni_end = off + nlen;

	/* every truncation: -EAGAIN asking for the whole ClientHello, never a name */
	for (size_t k = 0; k < ch_len; k++) {
		need = 0;
		r = hello_tls_sni(ch, k, &o2, &n2, &need);
		if (r != -EAGAIN || need != (k < 9 ? 9 : ch_len))
			eagain_bad++;
	}
	is_int(eagain_bad, 0, "every truncation: -EAGAIN for exactly the bytes missing, no name");
	(void)sni_end;

	/* the handshake re-framed into 2 records at every boundary, with its prefixes */
	hs_len = ch_len - 5;
	for (size_t a = 1; a < hs_len; a++) {
		size_t l = 0;

		memcpy(rec, ch, 5);
		rec[3] = (uint8_t)(a >> 8);
		rec[4] = (uint8_t)a;
		memcpy(rec + 5, ch + 5, a);
		l = 5 + a;
		memcpy(rec + l, ch, 5);
		rec[l + 3] = (uint8_t)((hs_len - a) >> 8);
		rec[l + 4] = (uint8_t)(hs_len - a);
		memcpy(rec + l + 5, ch + 5 + a, hs_len - a);
		l += 5 + hs_len - a;
		r = hello_tls_sni(rec, l, &o2, &n2, &need);
		if (r == 0 ? n2 != 14 || memcmp(rec + o2, "a.blocked.test", 14) != 0
			   : !(r == -EINVAL && a > off - 5 && a < sni_end - 5))
			bad2++;
		for (size_t k = 0; k < l; k++) {
			need = 0;
			r = hello_tls_sni(rec, k, &o2, &n2, &need);
			if (!(r == -EAGAIN && need > k && need <= l) &&
			    !(r == -EINVAL && a > off - 5 && a < sni_end - 5))
				bad2++;
		}
	}
	is_int(bad2, 0, "2 records at every boundary: found, or -EINVAL only when the name itself "
			"is cut; each truncation -EAGAIN (need > have), never a name");
	for (size_t a = 1; a < hs_len; a++) {
		for (size_t b = a + 1; b < hs_len; b++) {
			size_t l = 0, cut[4] = { 0, a, b, hs_len };

			for (int i = 0; i < 3; i++) {
				size_t sz = cut[i + 1] - cut[i];

				memcpy(rec + l, ch, 5);
				rec[l + 3] = (uint8_t)(sz >> 8);
				rec[l + 4] = (uint8_t)sz;
				memcpy(rec + l + 5, ch + 5 + cut[i], sz);
				l += 5 + sz;
			}
			r = hello_tls_sni(rec, l, &o2, &n2, &need);
			if (r == 0 ? n2 != 14 || memcmp(rec + o2, "a.blocked.test", 14) != 0
				   : !(r == -EINVAL && ((a > off - 5 && a < sni_end - 5) ||
							(b > off - 5 && b < sni_end - 5))))
				bad3++;
		}
	}
	is_int(bad3, 0, "3 records at every pair of boundaries: found, or the name is cut");

	/* the bare handshake message (QUIC's entry) */
	r = hello_tls_sni_handshake(ch + 5, hs_len, &o2, &n2, &need);
	ok(r == 0 && o2 + 5 == off && n2 == nlen, "the bare handshake message: the same name");

	/* every length field +1, -1, all ones: never a match */
	nf = find_lengths(lf, 64);
	ok(nf >= 10, "%zu length fields found in the capture", nf);
	for (size_t i = 0; i < nf; i++) {
		for (int d = 0; d < 3; d++) {
			uint32_t v = 0;

			memcpy(buf, ch, ch_len);
			for (size_t k = 0; k < lf[i].size; k++)
				v = v << 8 | buf[lf[i].off + k];
			v = d == 0 ? v + 1 : d == 1 ? v - 1 : 0xffffffff;
			for (size_t k = 0; k < lf[i].size; k++)
				buf[lf[i].off + k] = (uint8_t)(v >> (8 * (lf[i].size - 1 - k)));
			r = hello_tls_sni(buf, ch_len, &o2, &n2, &need);
			if (r == 0) {
				bad++;
				diag("field at %zu (%zu bytes) %s: a match", lf[i].off, lf[i].size,
				     d == 0 ? "+1" : d == 1 ? "-1" : "max");
			}
		}
	}
	is_int(bad, 0, "no length field +1/-1/max gives a name");

	/* a 0-length name, a name with a control byte */
	memcpy(buf, ch, ch_len);
	buf[off + 3] = '\n';
	is_int(hello_tls_sni(buf, ch_len, &o2, &n2, &need), -EINVAL, "a control byte in the name");
	/* every byte flipped: a found name always lies within the input */
	bad = 0;
	for (size_t i = 0; i < ch_len; i++) {
		memcpy(buf, ch, ch_len);
		buf[i] ^= 0xff;
		if (hello_tls_sni(buf, ch_len, &o2, &n2, &need) == 0 && (o2 + n2 > ch_len || n2 == 0))
			bad++;
	}
	is_int(bad, 0, "every byte inverted: any name found lies within the input");

	is_int(hello_tls_sni((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &o2, &n2, &need), -ENOENT,
	       "not TLS: -ENOENT");
	is_int(hello_tls_sni(ch, 0, &o2, &n2, &need), -EAGAIN, "nothing yet: -EAGAIN");
	is_int(need, 9, "nothing yet: a record header and a handshake header are needed");
	hello_tls_sni(ch, 5, &o2, &n2, &need);
	is_int(need, 9, "a record header alone: a handshake header is needed");
	hello_tls_sni(ch, 9, &o2, &n2, &need);
	is_int(need, ch_len, "the handshake header: the whole ClientHello is needed");
}

/* A hand-made ClientHello: extensions given, to test 0-length names etc. */
static size_t make_hello(uint8_t *b, const uint8_t *ext, size_t ext_len)
{
	size_t n = 0, hs;

	b[n++] = 22, b[n++] = 3, b[n++] = 1, n += 2;
	hs = n;
	b[n++] = 1, n += 3;
	b[n++] = 3, b[n++] = 3;
	memset(b + n, 0xaa, 32), n += 32;
	b[n++] = 0;			/* session id */
	b[n++] = 0, b[n++] = 2, b[n++] = 0x13, b[n++] = 0x01;
	b[n++] = 1, b[n++] = 0;		/* compression */
	b[n++] = (uint8_t)(ext_len >> 8), b[n++] = (uint8_t)ext_len;
	if (ext_len)
		memcpy(b + n, ext, ext_len);
	n += ext_len;
	b[hs + 1] = 0, b[hs + 2] = (uint8_t)((n - hs - 4) >> 8), b[hs + 3] = (uint8_t)(n - hs - 4);
	b[3] = (uint8_t)((n - 5) >> 8), b[4] = (uint8_t)(n - 5);
	return n;
}

static void test_tls_made(void)
{
	static const uint8_t zero_sni[] = { 0, 0, 0, 5, 0, 3, 0, 0, 0 };
	static const uint8_t good[] = { 0, 0, 0, 8, 0, 6, 0, 0, 3, 'a', '.', 'b' };
	static const uint8_t overrun[] = { 0, 0, 0, 9, 0, 6, 0, 0, 3, 'a', '.', 'b' };
	static const uint8_t two[] = { 0, 0, 0, 8, 0, 6, 0, 0, 3, 'a', '.', 'b',
				       0, 0, 0, 8, 0, 6, 0, 0, 3, 'c', '.', 'd' };
	static const uint8_t other[] = { 0, 10, 0, 2, 0, 0 };
	static const uint8_t dot[] = { 0, 0, 0, 7, 0, 5, 0, 0, 2, 'a', '.' };
	uint8_t b[256];
	uint32_t o, l;
	size_t need, n;

	n = make_hello(b, good, sizeof(good));
	ok(hello_tls_sni(b, n, &o, &l, &need) == 0 && l == 3 && memcmp(b + o, "a.b", 3) == 0,
	   "made: a.b found");
	n = make_hello(b, zero_sni, sizeof(zero_sni));
	is_int(hello_tls_sni(b, n, &o, &l, &need), -EINVAL, "made: a 0-length SNI is -EINVAL");
	n = make_hello(b, overrun, sizeof(overrun));
	is_int(hello_tls_sni(b, n, &o, &l, &need), -EINVAL, "made: an extension overrunning");
	n = make_hello(b, two, sizeof(two));
	is_int(hello_tls_sni(b, n, &o, &l, &need), -EINVAL, "made: two server_name extensions");
	/* a padding extension pushing the name beyond 16 KiB: -E2BIG, not -EAGAIN forever */
	{
		static uint8_t big[HELLO_MAX + 64];
		size_t k = make_hello(big, NULL, 0);
		size_t hl = (k - 9) + 4 + 17000 + sizeof(good);

		big[3] = 0x40, big[4] = 0x00;			/* record: 16384 */
		big[6] = (uint8_t)(hl >> 16), big[7] = (uint8_t)(hl >> 8), big[8] = (uint8_t)hl;
		big[k - 2] = (uint8_t)((4 + 17000 + sizeof(good)) >> 8);
		big[k - 1] = (uint8_t)(4 + 17000 + sizeof(good));
		big[k] = 0, big[k + 1] = 21, big[k + 2] = 17000 >> 8, big[k + 3] = 17000 & 0xff;
		memset(big + k + 4, 0, sizeof(big) - k - 4);
		is_int(hello_tls_sni(big, HELLO_MAX, &o, &l, &need), -E2BIG,
		       "made: the name beyond 16 KiB is -E2BIG");
		is_int(hello_tls_sni(big, 1000, &o, &l, &need), -E2BIG,
		       "made: known from its first 1000 bytes already");
	}
	n = make_hello(b, dot, sizeof(dot));
	is_int(hello_tls_sni(b, n, &o, &l, &need), -EINVAL, "made: a trailing dot (RFC 6066)");
	n = make_hello(b, other, sizeof(other));
	is_int(hello_tls_sni(b, n, &o, &l, &need), -ENOENT, "made: no server_name: -ENOENT");
	n = make_hello(b, NULL, 0);
	b[n - 2] = 0, b[n - 1] = 0;
	is_int(hello_tls_sni(b, n, &o, &l, &need), -ENOENT, "made: empty extensions: -ENOENT");
	n = make_hello(b, good, sizeof(good));
	b[5] = 2;	/* a ServerHello */
	is_int(hello_tls_sni(b, n, &o, &l, &need), -ENOENT, "made: a ServerHello: -ENOENT");
	n = make_hello(b, good, sizeof(good));
	b[2] = 5;	/* version 0x0305 */
	is_int(hello_tls_sni(b, n, &o, &l, &need), -ENOENT, "made: record version 0x0305");
}

/* ---- HTTP ---------------------------------------------------------------- */

static void test_http(void)
{
	static const struct {
		const char *req, *host;	/* host NULL: r is the result */
		int r;
	} t[] = {
		{ "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 0 },
		{ "GET / HTTP/1.1\r\nhOsT:example.com:8080\r\n\r\n", "example.com", 0 },
		{ "POST /x?y HTTP/1.0\r\nUser-Agent: t\r\nHOST: \t a.b.c \t\r\nAccept: */*\r\n\r\n",
		  "a.b.c", 0 },
		{ "GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", "[2001:db8::1]", 0 },
		{ "GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n", "[2001:db8::1]", 0 },
		{ "GET / HTTP/1.1\r\nX-Host: a\r\nHost: b.example\r\n\r\nbody", "b.example", 0 },
		{ "GET / HTTP/1.1\r\nHost: example.com\r\n", NULL, -EAGAIN },
		{ "GET / HTTP/1.1\r\nHost: exam", NULL, -EAGAIN },
		{ "GET / HTTP/1.", NULL, -EAGAIN },
		{ "GET", NULL, -EAGAIN },
		{ "", NULL, -EAGAIN },
		{ "GET / HTTP/1.1\r\nAccept: x\r\n\r\n", NULL, -ENOENT },
		{ "GET / HTTP/1.1\r\nHost:\r\n example.com\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/2.0\r\nHost: a\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\nHost: a\n\n", NULL, -EINVAL },
		{ "\x16\x03\x01", NULL, -ENOENT },
		{ "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", NULL, -EINVAL },
		{ "GET / HTTP/1.1\r\nAccept: x\r\n y\r\nHost: a\r\n\r\n", "a", 0 },
	};
	uint32_t off, len;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const uint8_t *p = (const uint8_t *)t[i].req;
		int r = hello_http_host(p, strlen(t[i].req), &off, &len);

		if (t[i].host)
			ok(r == 0 && len == strlen(t[i].host) && off + len <= strlen(t[i].req) &&
				   memcmp(p + off, t[i].host, len) == 0,
			   "http %zu: %s (r %d)", i, t[i].host, r);
		else
			is_int(r, t[i].r, "http %zu: %d", i, t[i].r);
	}
	{
		static uint8_t big[HELLO_MAX + 100];
		size_t n = 0;

		n += (size_t)sprintf((char *)big, "GET / HTTP/1.1\r\nX: ");
		memset(big + n, 'a', sizeof(big) - n);
		is_int(hello_http_host(big, sizeof(big), &off, &len), -E2BIG,
		       "http: headers longer than 16 KiB: -E2BIG");
		is_int(hello_http_host(big, 1000, &off, &len), -EAGAIN, "http: at 1000 bytes, -EAGAIN");
	}
	/* every prefix of a request: -EAGAIN until the blank line */
	{
		const char *req = "GET /index.html HTTP/1.1\r\nHost: www.example.org:8080\r\nA: b\r\n\r\n";
		size_t n = strlen(req);
		unsigned int bad = 0;

		for (size_t k = 0; k < n; k++)
			if (hello_http_host((const uint8_t *)req, k, &off, &len) != -EAGAIN)
				bad++;
		is_int(bad, 0, "http: every prefix is -EAGAIN");
	}
}

/* ---- names --------------------------------------------------------------- */

static void test_names(void)
{
	static const struct {
		const char *name;
		int mid;
	} m[] = {
		{ "www.example.com", 4 + 3 }, { "example.com", 3 }, { "example.com.", 3 },
		{ "a.b.example.co", 4 + 3 }, { "ab.com", 1 }, { "a.com", -ENOENT },
		{ "localhost", -ENOENT }, { "", -ENOENT }, { ".com", -ENOENT },
	};
	static const struct {
		const char *pat, *name;
		bool match;
	} t[] = {
		{ "example.com", "example.com", true },
		{ "example.com", "EXAMPLE.Com", true },
		{ "example.com", "example.com.", true },
		{ "example.com.", "example.com", true },
		{ "example.com", "www.example.com", false },
		{ "*.example.com", "www.example.com", true },
		{ "*.example.com", "a.b.EXAMPLE.COM", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", "badexample.com", false },
		{ "*.example.com", ".example.com", false },
		{ "*.blocked.test", "a.blocked.test", true },
		{ "*.test", "x.test", true },
		{ "example.com", "", false },
		{ "", "", false },
		{ "*.", "a.", false },
		{ "example.co", "example.com", false },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		is_int(hello_midsld(m[i].name, strlen(m[i].name)), m[i].mid, "midsld \"%s\"",
		       m[i].name);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ok(hello_name_match(t[i].pat, t[i].name, strlen(t[i].name)) == t[i].match,
		   "\"%s\" %s \"%s\"", t[i].pat, t[i].match ? "matches" : "does not match",
		   t[i].name);
}

int main(void)
{
	diag("quic: %s", hello_quic_support());
	test_quic("quic-v1-initial.hex", "RFC 9001 A.2 (v1)");
	test_quic("quic-v2-initial.hex", "RFC 9369 A.2 (v2)");
#ifdef HAVE_LIBCRYPTO
	test_quic_frames();
#endif
	test_tls();
	test_tls_made();
	test_http();
	test_names();
	return tap_done();
}
