/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host-name parsers (hello.h): TLS ClientHello server_name (RFC 8446 4.1.2,
 * RFC 6066 3), HTTP/1.x Host (RFC 9112 3.2), QUIC v1/v2 Initial packets
 * (RFC 9000 17.2.2, RFC 9001 5, RFC 9369 3).  The cryptography is OpenSSL's
 * libcrypto (EVP): HKDF, AES-128-ECB for header protection, AES-128-GCM.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hello.h"

#ifdef HAVE_LIBCRYPTO
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#endif

static uint32_t rd16(const uint8_t *b)
{
	return (uint32_t)b[0] << 8 | b[1];
}

static uint32_t rd24(const uint8_t *b)
{
	return (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
}

/*
 * Whether n bytes at pos fit their container (which ends at end) and are
 * here (avail bytes are): -EINVAL when they overrun the container, -EAGAIN
 * (with *need) when the container is right but the bytes are still to come.
 */
static int take(size_t pos, size_t n, size_t end, size_t avail, size_t *need)
{
	if (pos > end || n > end - pos)
		return -EINVAL;
	if (pos + n > avail) {
		*need = pos + n;
		return -EAGAIN;
	}
	return 0;
}

static bool host_byte(uint8_t c)
{
	return c > 0x20 && c < 0x7f;
}

/*
 * A ClientHello handshake message: h[0..avail) of it is here.  On success
 * the name is at h[*noff, *noff + *nlen).  -EAGAIN's *need is a handshake
 * offset.
 */
static int client_hello_fields(const uint8_t *h, size_t avail, uint32_t *noff, uint32_t *nlen,
			       size_t *need)
{
	size_t pos, end, ext_end;
	bool found = false;
	int r;

	*need = 0;
	r = take(0, 4, 4, avail, need);
	if (r < 0)
		return r;
	if (h[0] != 1)		/* client_hello */
		return -ENOENT;
	end = 4 + rd24(h + 1);
	/* legacy_version, random, session id length */
	pos = 4;
	r = take(pos, 2 + 32 + 1, end, avail, need);
	if (r < 0)
		return r;
	if (h[pos] != 3)
		return -EINVAL;
	pos += 34;
	if (h[pos] > 32)
		return -EINVAL;
	pos += 1 + h[pos];
	/* cipher suites */
	r = take(pos, 2, end, avail, need);
	if (r < 0)
		return r;
	if (rd16(h + pos) < 2 || rd16(h + pos) % 2)
		return -EINVAL;
	pos += 2 + rd16(h + pos);
	/* compression methods */
	r = take(pos, 1, end, avail, need);
	if (r < 0)
		return r;
	if (h[pos] < 1)
		return -EINVAL;
	pos += 1 + h[pos];
	if (pos == end)
		return -ENOENT;	/* no extensions */
	r = take(pos, 2, end, avail, need);
	if (r < 0)
		return r;
	ext_end = pos + 2 + rd16(h + pos);
	if (ext_end != end)
		return -EINVAL;
	pos += 2;
	/*
	 * Every extension header is walked, also after server_name: a complete
	 * message with any length lying is -EINVAL.  A message still arriving
	 * gives its name as soon as the name is here (the rest is checked as far
	 * as it is here).
	 */
	while (pos < ext_end) {
		size_t type, elen, list_end, p2;

		r = take(pos, 4, ext_end, avail, need);
		if (r < 0)
			goto out;
		type = rd16(h + pos);
		elen = rd16(h + pos + 2);
		pos += 4;
		if (elen > ext_end - pos) {
			r = -EINVAL;
			goto out;
		}
		if (type != 0 || found) {
			if (type == 0)
				return -EINVAL;	/* two server_name extensions */
			pos += elen;
			continue;
		}
		/* server_name: a ServerNameList filling the extension; its host_name entry */
		r = take(pos, 2, pos + elen, avail, need);
		if (r < 0)
			goto out;
		list_end = pos + 2 + rd16(h + pos);
		if (list_end != pos + elen)
			return -EINVAL;
		p2 = pos + 2;
		while (p2 < list_end) {
			size_t n;

			r = take(p2, 3, list_end, avail, need);
			if (r < 0)
				goto out;
			n = rd16(h + p2 + 1);
			p2 += 3;
			if (n > list_end - p2)
				return -EINVAL;
			if (h[p2 - 3] == 0) {	/* host_name */
				if (found || n == 0 || n > HELLO_NAME_MAX)
					return -EINVAL;
				/* RFC 6066 3: no trailing dot (so "." is no name either) */
				r = take(p2, n, list_end, avail, need);
				if (r < 0)
					goto out;
				if (h[p2 + n - 1] == '.')
					return -EINVAL;
				for (size_t i = 0; i < n; i++)
					if (!host_byte(h[p2 + i]))
						return -EINVAL;
				*noff = (uint32_t)p2;
				*nlen = (uint32_t)n;
				found = true;
			}
			p2 += n;
		}
		if (!found)
			return -EINVAL;	/* a server_name extension without a host_name */
		pos = list_end;
	}
	r = found ? 0 : -ENOENT;
out:
	if (r == -EAGAIN && found)
		return 0;
	return r;
}

/*
 * A name counts only in a complete ClientHello, every length of which has
 * been checked: until the whole message is here, -EAGAIN with *need its
 * total length (a malformed part already here is -EINVAL at once).
 */
static int parse_client_hello(const uint8_t *h, size_t avail, uint32_t *noff, uint32_t *nlen,
			      size_t *need)
{
	size_t end;
	int r;

	r = client_hello_fields(h, avail, noff, nlen, need);
	if (avail < 4 || h[0] != 1)
		return r;
	end = 4 + (size_t)rd24(h + 1);
	if (r == -EAGAIN || (r == 0 && avail < end)) {
		*need = end;
		return -EAGAIN;
	}
	return r;
}

int hello_tls_sni_handshake(const uint8_t *p, size_t len, uint32_t *off, uint32_t *nlen,
			    size_t *need)
{
	size_t hneed = 0;
	int r;

	r = parse_client_hello(p, len < HELLO_MAX ? len : HELLO_MAX, off, nlen, &hneed);
	if (r == -EAGAIN && hneed > HELLO_MAX)
		return -E2BIG;
	if (r == -EAGAIN && need)
		*need = hneed;
	return r;
}

/* Handshake offset -> stream offset, given the records (the last one may extend beyond). */
static size_t hs_to_stream(const uint8_t *p, size_t len, size_t hoff)
{
	size_t pos = 0, hs = 0;

	while (pos + 5 <= len) {
		size_t rl = rd16(p + pos + 3);

		if (hoff < hs + rl)
			return pos + 5 + (hoff - hs);
		hs += rl;
		pos += 5 + rl;
	}
	/* beyond the records seen: at least one more record header */
	return pos + 5 + (hoff - hs);
}

int hello_tls_sni(const uint8_t *p, size_t len, uint32_t *off, uint32_t *nlen, size_t *need)
{
	uint8_t hs[HELLO_MAX];
	size_t pos = 0, have = 0, hneed = 0, declared = 0;
	uint32_t hoff, hlen;
	int r;

	if (need)
		*need = 0;
	if (len > HELLO_MAX)
		len = HELLO_MAX;
	/* the records' bodies, concatenated, as far as they are here */
	for (;;) {
		size_t rl, n;

		if (pos == len)
			break;
		if (len - pos < 5) {
			/* a partial header: only its first bytes can be checked */
			if (p[pos] != 22 || (len - pos >= 2 && p[pos + 1] != 3) ||
			    (len - pos >= 3 && (p[pos + 2] < 1 || p[pos + 2] > 4)))
				return pos == 0 ? -ENOENT : -EINVAL;
			break;
		}
		if (p[pos] != 22 || p[pos + 1] != 3 || p[pos + 2] < 1 || p[pos + 2] > 4)
			return pos == 0 ? -ENOENT : -EINVAL;
		rl = rd16(p + pos + 3);
		if (rl == 0 || rl > 16384)
			return -EINVAL;
		n = len - pos - 5 < rl ? len - pos - 5 : rl;
		declared += rl;
		memcpy(hs + have, p + pos + 5, n);
		have += n;
		pos += 5 + n;
		if (n < rl)
			break;
		/* the whole handshake message is here: no more records needed */
		if (have >= 4 && have >= 4 + (size_t)rd24(hs + 1))
			break;
	}
	if (have == 0) {
		r = -EAGAIN;	/* the handshake header is still to come */
		hneed = 4;
	} else {
		r = parse_client_hello(hs, have, &hoff, &hlen, &hneed);
	}
	/*
	 * A client's first flight is the ClientHello alone: its records end
	 * where it ends (a record longer than the message is lying).
	 */
	if ((r == 0 || r == -ENOENT) && have >= 4 && declared > 4 + (size_t)rd24(hs + 1) &&
	    have >= 4 + (size_t)rd24(hs + 1))
		return -EINVAL;
	if (r == -EAGAIN) {
		size_t sneed = hs_to_stream(p, len, hneed - 1) + 1;

		if (sneed > HELLO_MAX)
			return -E2BIG;
		if (need)
			*need = sneed;
		return r;
	}
	if (r < 0)
		return r;
	{
		size_t s0 = hs_to_stream(p, len, hoff), s1 = hs_to_stream(p, len, hoff + hlen - 1);

		if (s1 != s0 + hlen - 1)
			return -EINVAL;	/* the name is cut by a record header */
		*off = (uint32_t)s0;
		*nlen = hlen;
	}
	return 0;
}

/* ---- HTTP ---------------------------------------------------------------- */

static bool tchar(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The end of the line starting at pos (the offset of its CR), or -EAGAIN / -EINVAL. */
static long line_end(const uint8_t *p, size_t len, size_t pos)
{
	for (size_t i = pos; i < len; i++) {
		if (p[i] == '\r') {
			if (i + 1 == len)
				return -EAGAIN;
			return p[i + 1] == '\n' ? (long)i : -EINVAL;
		}
		if (p[i] == '\n' || p[i] == 0)
			return -EINVAL;
	}
	return -EAGAIN;
}

/* The request line: method SP target SP HTTP/1.x; returns the offset after its CRLF. */
static long request_line(const uint8_t *p, size_t len)
{
	static const char ver[] = "HTTP/1.";
	size_t i = 0, m;
	long e;

	while (i < len && i < 32 && tchar(p[i]))
		i++;
	if (i == len)
		return i < 32 ? -EAGAIN : -EINVAL;
	if (i == 0 || p[i] != ' ')
		return i == 0 ? -ENOENT : -EINVAL;
	i++;
	m = i;
	while (i < len && p[i] > 0x20 && p[i] < 0x7f)
		i++;
	if (i == len)
		return -EAGAIN;
	if (i == m || p[i] != ' ')
		return -EINVAL;
	i++;
	for (size_t k = 0; k < sizeof(ver) - 1; k++, i++) {
		if (i == len)
			return -EAGAIN;
		if (p[i] != ver[k])
			return -EINVAL;
	}
	if (i == len)
		return -EAGAIN;
	if (p[i] != '0' && p[i] != '1')
		return -EINVAL;
	i++;
	e = line_end(p, len, i);
	if (e < 0)
		return e;
	if ((size_t)e != i)
		return -EINVAL;
	return e + 2;
}

int hello_http_host(const uint8_t *p, size_t len, uint32_t *off, uint32_t *nlen)
{
	size_t pos, hoff = 0, hlen = 0;
	bool found = false, in_host = false, first = true;
	long e;

	if (len > HELLO_MAX)
		len = HELLO_MAX;
	e = request_line(p, len);
	if (e < 0)
		return e == -EAGAIN && len == HELLO_MAX ? -E2BIG : (int)e;
	pos = (size_t)e;
	for (;;) {
		size_t name_end, v, ve;

		e = line_end(p, len, pos);
		if (e < 0)
			return e == -EAGAIN && len == HELLO_MAX ? -E2BIG : (int)e;
		if ((size_t)e == pos)
			break;	/* the empty line: the headers are complete */
		if (p[pos] == ' ' || p[pos] == '\t') {
			/* obs-fold: a continuation of the previous header */
			if (first || in_host)
				return -EINVAL;
			pos = (size_t)e + 2;
			continue;
		}
		first = false;
		name_end = pos;
		while (name_end < (size_t)e && tchar(p[name_end]))
			name_end++;
		if (name_end == pos || name_end == (size_t)e || p[name_end] != ':')
			return -EINVAL;
		in_host = name_end - pos == 4 && lower(p[pos]) == 'h' && lower(p[pos + 1]) == 'o' &&
			  lower(p[pos + 2]) == 's' && lower(p[pos + 3]) == 't';
		if (in_host) {
			if (found)
				return -EINVAL;	/* two Host headers */
			v = name_end + 1;
			ve = (size_t)e;
			while (v < ve && (p[v] == ' ' || p[v] == '\t'))
				v++;
			while (ve > v && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
				ve--;
			for (size_t i = v; i < ve; i++)
				if (!host_byte(p[i]))
					return -EINVAL;
			hoff = v;
			hlen = ve - v;
			found = true;
		}
		pos = (size_t)e + 2;
	}
	if (!found)
		return -ENOENT;
	/* host [":" port]; an IPv6 literal keeps its brackets */
	{
		size_t host_end = hoff + hlen, colon = 0;
		bool has_port = false;

		if (hlen && p[hoff] == '[') {
			size_t i = hoff;

			while (i < host_end && p[i] != ']')
				i++;
			if (i == host_end)
				return -EINVAL;
			if (i + 1 < host_end) {
				if (p[i + 1] != ':')
					return -EINVAL;
				colon = i + 1;
				has_port = true;
			}
		} else {
			for (size_t i = hoff; i < host_end; i++) {
				if (p[i] == ':') {
					if (has_port)
						return -EINVAL;
					colon = i;
					has_port = true;
				}
			}
		}
		if (has_port) {
			size_t digits = host_end - colon - 1;

			if (digits > 5)
				return -EINVAL;
			for (size_t i = colon + 1; i < host_end; i++)
				if (p[i] < '0' || p[i] > '9')
					return -EINVAL;
			hlen = colon - hoff;
		}
		if (hlen == 0 || hlen > HELLO_NAME_MAX)
			return -EINVAL;
	}
	*off = (uint32_t)hoff;
	*nlen = (uint32_t)hlen;
	return 0;
}

/* ---- names --------------------------------------------------------------- */

int hello_midsld(const char *name, size_t len)
{
	size_t end = len, start, dot;

	if (end && name[end - 1] == '.')
		end--;
	/* the top-level label */
	dot = end;
	while (dot > 0 && name[dot - 1] != '.')
		dot--;
	if (dot == 0)
		return -ENOENT;	/* one label: no second level */
	start = dot - 1;
	while (start > 0 && name[start - 1] != '.')
		start--;
	if (dot - 1 - start < 2)
		return -ENOENT;
	return (int)(start + (dot - 1 - start) / 2);
}

static bool same_ci(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

bool hello_name_match(const char *pattern, const char *name, size_t len)
{
	size_t plen = strlen(pattern);

	if (len && name[len - 1] == '.')
		len--;
	if (plen && pattern[plen - 1] == '.')
		plen--;
	if (len == 0 || plen == 0)
		return false;
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* ".suffix", with at least one byte of label before it */
		pattern++;
		plen--;
		if (plen < 2 || len <= plen)
			return false;
		return same_ci(pattern, name + len - plen, plen);
	}
	return plen == len && same_ci(pattern, name, len);
}

/* ---- QUIC ---------------------------------------------------------------- */

#define QUIC_V1 0x00000001u
#define QUIC_V2 0x6b3343cfu

#ifdef HAVE_LIBCRYPTO

/* An RFC 9000 16 variable-length integer at *pos, not beyond end. */
static int varint(const uint8_t *b, size_t end, size_t *pos, uint64_t *v)
{
	size_t n;

	if (*pos >= end)
		return -EINVAL;
	n = (size_t)1 << (b[*pos] >> 6);
	if (n > end - *pos)
		return -EINVAL;
	*v = b[*pos] & 0x3f;
	for (size_t i = 1; i < n; i++)
		*v = *v << 8 | b[*pos + i];
	*pos += n;
	return 0;
}

bool hello_quic_supported(void)
{
	return true;
}

const char *hello_quic_support(void)
{
	return "yes (" OPENSSL_VERSION_TEXT ")";
}

static int hkdf(int mode, const uint8_t *key, size_t keylen, const uint8_t *salt, size_t saltlen,
		const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
{
	OSSL_PARAM params[6], *q = params;
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf;
	int r = -EIO;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		return -EOPNOTSUPP;
	kctx = EVP_KDF_CTX_new(kdf);
	if (!kctx)
		goto cleanup;
	*q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, keylen);
	if (salt)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	if (info)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		r = 0;
cleanup:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return r;
}

/* TLS 1.3's HKDF-Expand-Label (RFC 8446 7.1) with an empty context. */
static int expand_label(const uint8_t *secret, const char *label, uint8_t *out, size_t outlen)
{
	uint8_t info[2 + 1 + 6 + 32 + 1];
	size_t l = strlen(label), n = 0;

	if (l > 32)
		return -EINVAL;
	info[n++] = (uint8_t)(outlen >> 8);
	info[n++] = (uint8_t)outlen;
	info[n++] = (uint8_t)(6 + l);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, l);
	n += l;
	info[n++] = 0;
	return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, secret, 32, NULL, 0, info, n, out, outlen);
}

struct quic_keys {
	uint8_t key[16], iv[12], hp[16];
};

static int initial_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
			struct quic_keys *k)
{
	static const uint8_t salt_v1[20] = {
		0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
		0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
	};
	static const uint8_t salt_v2[20] = {
		0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
		0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
	};
	bool v2 = version == QUIC_V2;
	uint8_t initial[32], client[32];
	int r;

	r = hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, dcid, dcid_len, v2 ? salt_v2 : salt_v1, 20,
		 NULL, 0, initial, sizeof(initial));
	if (r < 0)
		return r;
	r = expand_label(initial, "client in", client, sizeof(client));
	if (r < 0)
		return r;
	r = expand_label(client, v2 ? "quicv2 key" : "quic key", k->key, sizeof(k->key));
	if (r < 0)
		return r;
	r = expand_label(client, v2 ? "quicv2 iv" : "quic iv", k->iv, sizeof(k->iv));
	if (r < 0)
		return r;
	return expand_label(client, v2 ? "quicv2 hp" : "quic hp", k->hp, sizeof(k->hp));
}

static int hp_mask(const uint8_t *hp, const uint8_t *sample, uint8_t mask[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, r = -EIO;

	if (!c)
		return -ENOMEM;
	if (EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL) == 1 &&
	    EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
	    EVP_EncryptUpdate(c, mask, &n, sample, 16) == 1 && n == 16)
		r = 0;
	EVP_CIPHER_CTX_free(c);
	return r;
}

/*
 * AES-128-GCM open: the associated data is the header, given in three
 * pieces (its unmasked first byte, the bytes up to the packet number, the
 * unmasked packet number).
 */
static int gcm_open(const struct quic_keys *k, const uint8_t nonce[12], const uint8_t *aad0,
		    size_t n0, const uint8_t *aad1, size_t n1, const uint8_t *aad2, size_t n2,
		    const uint8_t *ct, size_t ctlen, const uint8_t *tag, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, r = -EIO;

	if (!c)
		return -ENOMEM;
	if (EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_DecryptInit_ex(c, NULL, NULL, k->key, nonce) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, aad0, (int)n0) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, aad1, (int)n1) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, aad2, (int)n2) != 1 ||
	    EVP_DecryptUpdate(c, out, &n, ct, (int)ctlen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1)
		goto cleanup;
	r = EVP_DecryptFinal_ex(c, out + n, &n) == 1 ? 0 : -EBADMSG;
cleanup:
	EVP_CIPHER_CTX_free(c);
	return r;
}

/* The frames of a decrypted Initial: CRYPTO data reassembled from offset 0. */
static int initial_frames(const uint8_t *f, size_t len, uint8_t *crypto, size_t *contig)
{
	uint8_t filled[HELLO_MAX / 8];
	size_t pos = 0;
	int r;

	memset(filled, 0, sizeof(filled));
	while (pos < len) {
		uint64_t type, a, b, c, d, cnt;

		r = varint(f, len, &pos, &type);
		if (r < 0)
			return r;
		switch (type) {
		case 0x00:	/* PADDING */
		case 0x01:	/* PING */
			break;
		case 0x02:	/* ACK */
		case 0x03:	/* ACK with ECN counts */
			if (varint(f, len, &pos, &a) || varint(f, len, &pos, &b) ||
			    varint(f, len, &pos, &cnt) || varint(f, len, &pos, &c))
				return -EINVAL;
			/* each range is two varints, at least two bytes: bounded by len */
			for (uint64_t i = 0; i < cnt; i++)
				if (varint(f, len, &pos, &a) || varint(f, len, &pos, &b))
					return -EINVAL;
			if (type == 0x03 && (varint(f, len, &pos, &a) || varint(f, len, &pos, &b) ||
					     varint(f, len, &pos, &c)))
				return -EINVAL;
			break;
		case 0x06:	/* CRYPTO */
			if (varint(f, len, &pos, &a) || varint(f, len, &pos, &d))
				return -EINVAL;
			if (d > len - pos)
				return -EINVAL;
			for (uint64_t i = 0; i < d && a + i < HELLO_MAX; i++) {
				size_t at = (size_t)(a + i);

				crypto[at] = f[pos + i];
				filled[at / 8] |= (uint8_t)(1u << (at % 8));
			}
			pos += d;
			break;
		case 0x1c:	/* CONNECTION_CLOSE: nothing after it matters */
			pos = len;
			break;
		default:	/* not allowed in an Initial packet */
			return -EINVAL;
		}
	}
	*contig = 0;
	while (*contig < HELLO_MAX && (filled[*contig / 8] & (1u << (*contig % 8))))
		(*contig)++;
	return 0;
}

int hello_quic_sni(const uint8_t *dgram, size_t len, char *name, size_t namecap)
{
	uint8_t plain[HELLO_MAX], crypto[HELLO_MAX], mask[16], first, pnb[4], nonce[12];
	struct quic_keys k;
	size_t pos, dcid_off, dcid_len, pn_off, pn_len, ctlen, contig, need;
	uint64_t tok, plen, pn = 0;
	uint32_t version, noff, nlen;
	int r;

	if (len < 7 || (dgram[0] & 0xc0) != 0xc0)
		return -ENOENT;	/* not a long header packet */
	version = (uint32_t)dgram[1] << 24 | (uint32_t)dgram[2] << 16 | (uint32_t)dgram[3] << 8 |
		  dgram[4];
	if (version == QUIC_V1) {
		if ((dgram[0] & 0x30) != 0x00)
			return -ENOENT;
	} else if (version == QUIC_V2) {
		if ((dgram[0] & 0x30) != 0x10)
			return -ENOENT;
	} else {
		return -ENOENT;
	}
	pos = 5;
	dcid_len = dgram[pos++];
	if (dcid_len > 20 || dcid_len > len - pos)
		return -EINVAL;
	dcid_off = pos;
	pos += dcid_len;
	if (pos >= len || dgram[pos] > 20 || dgram[pos] > len - pos - 1)
		return -EINVAL;
	pos += 1 + dgram[pos];
	if (varint(dgram, len, &pos, &tok) || tok > len - pos)
		return -EINVAL;
	pos += tok;
	if (varint(dgram, len, &pos, &plen) || plen > len - pos)
		return -EINVAL;
	pn_off = pos;
	/* the sample is 16 bytes from 4 after the packet number's start */
	if (plen < 4 + 16)
		return -EINVAL;
	r = initial_keys(version, dgram + dcid_off, dcid_len, &k);
	if (r < 0)
		return r;
	r = hp_mask(k.hp, dgram + pn_off + 4, mask);
	if (r < 0)
		return r;
	first = dgram[0] ^ (mask[0] & 0x0f);
	pn_len = (first & 0x03) + 1;
	for (size_t i = 0; i < pn_len; i++) {
		pnb[i] = dgram[pn_off + i] ^ mask[1 + i];
		/* the client's first Initial: no packet seen, the truncated number is the number */
		pn = pn << 8 | pnb[i];
	}
	if (plen < pn_len + 16)
		return -EINVAL;
	ctlen = plen - pn_len - 16;
	if (ctlen > sizeof(plain))
		return -EINVAL;
	memcpy(nonce, k.iv, sizeof(nonce));
	for (size_t i = 0; i < 8; i++)
		nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
	r = gcm_open(&k, nonce, &first, 1, dgram + 1, pn_off - 1, pnb, pn_len,
		     dgram + pn_off + pn_len, ctlen, dgram + pn_off + pn_len + ctlen, plain);
	if (r < 0)
		return r;
	r = initial_frames(plain, ctlen, crypto, &contig);
	if (r < 0)
		return r;
	if (contig == 0)
		return -ENOENT;
	r = hello_tls_sni_handshake(crypto, contig, &noff, &nlen, &need);
	if (r < 0)
		return r;
	if ((size_t)nlen + 1 > namecap)
		return -ENOBUFS;
	memcpy(name, crypto + noff, nlen);
	name[nlen] = '\0';
	return 0;
}

#else /* !HAVE_LIBCRYPTO */

bool hello_quic_supported(void)
{
	return false;
}

const char *hello_quic_support(void)
{
	return "no (built without libcrypto)";
}

int hello_quic_sni(const uint8_t *dgram, size_t len, char *name, size_t namecap)
{
	return -EOPNOTSUPP;
}

#endif
