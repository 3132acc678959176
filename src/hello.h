/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host-name parsers: the name a client asks for, read from the first bytes
 * of a TCP stream (TLS ClientHello server_name, HTTP/1.x Host) or from one
 * UDP datagram (the QUIC v1/v2 Initial's ClientHello).  No I/O, no logging,
 * no allocation, no global state: every buffer is bounded and lives on the
 * stack.  Every length read from the input is checked against the length of
 * what contains it; a name returned always lies within the input.
 *
 * Return values of the parsers:
 *   0        found (*off, *nlen within p; for QUIC the name is copied)
 *   -ENOENT  no name in a complete message (or not this protocol at all)
 *   -EAGAIN  the message is incomplete: more bytes are needed; *need is the
 *            total stream length needed, when known (else a lower bound).
 *            A TLS name is given only once the whole ClientHello is here
 *            and every length in it has been checked.
 *   -EINVAL  malformed (lengths lying, overrunning, empty or invalid name)
 *   -E2BIG   the name would lie beyond the HELLO_MAX bytes looked at
 *   -EBADMSG (QUIC) the packet failed authentication (a kind of -EINVAL)
 *   -EOPNOTSUPP (QUIC) built without libcrypto
 *   -ENOBUFS (QUIC) the name does not fit namecap (with its NUL)
 */
#ifndef IPMODD_HELLO_H
#define IPMODD_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How many bytes of a stream (or of QUIC CRYPTO data) are looked at. */
#define HELLO_MAX 16384
/* The longest host name returned (DNS: 253, plus slack for a final dot). */
#define HELLO_NAME_MAX 255

/*
 * TLS: the TCP payload from the stream's first byte.  The ClientHello may
 * span several records; a name cut by a record boundary cannot be given as
 * one range of p and is -EINVAL.
 */
int hello_tls_sni(const uint8_t *p, size_t len, uint32_t *off, uint32_t *nlen, size_t *need);
/* The same on a bare handshake message (no record layer: QUIC's CRYPTO data). */
int hello_tls_sni_handshake(const uint8_t *p, size_t len, uint32_t *off, uint32_t *nlen,
			    size_t *need);

/* HTTP/1.x: the request's Host header value, its port stripped. */
int hello_http_host(const uint8_t *p, size_t len, uint32_t *off, uint32_t *nlen);

/*
 * QUIC v1 (RFC 9001) or v2 (RFC 9369): the first (client) Initial packet of
 * the datagram is decrypted with the keys derived from its destination
 * connection ID; the name is copied to name, NUL-terminated.
 */
int hello_quic_sni(const uint8_t *dgram, size_t len, char *name, size_t namecap);
/* Whether hello_quic_sni() works, and a line saying so ("yes (OpenSSL x.y.z)"). */
bool hello_quic_supported(void);
const char *hello_quic_support(void);

/*
 * The offset inside name of the middle of its second-level label (zapret's
 * "midsld": "www.example.com" -> 4 + 7/2 = 7), or -ENOENT when the name has
 * no second-level label of two bytes or more.
 */
int hello_midsld(const char *name, size_t len);

/*
 * Whether name (len bytes, not NUL-terminated) matches pattern: exactly, or
 * pattern "*.suffix" and name one or more labels under suffix ("*.example.com"
 * does not match "example.com" itself).  Case-insensitive; one final dot of
 * either is ignored; an empty name never matches.
 */
bool hello_name_match(const char *pattern, const char *name, size_t len);

#endif
