/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef IPMODD_UTIL_H
#define IPMODD_UTIL_H

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

/* Close and return -1, so that "fd = safe_close(fd);" leaves no stale fd. */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

/* Turn a libc "-1 and errno" result into -errno, never 0. */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* Network byte order fields at any alignment. */
static inline uint16_t get_be16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t get_be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline void put_be16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *b, uint32_t v)
{
	put_be16(b, (uint16_t)(v >> 16));
	put_be16(b + 2, (uint16_t)v);
}

/*
 * Text from a file or a client, fit to quote in a one-line message:
 * printable, and cut short with "..." to fit outlen.
 */
static inline void str_sanitize(char *out, size_t outlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 4 < outlen; i++)
		out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

/*
 * A bounded string being appended to.  What does not fit is cut (the text
 * stays NUL-terminated) and remembered in overflow, so callers check once.
 */
struct strbuf {
	char *buf;
	size_t size;		/* of buf */
	size_t len;		/* of the text in it */
	bool overflow;
};

static inline _printf_(2, 3) void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->len >= b->size) {
		b->overflow = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(b->buf + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->size - b->len) {
		b->overflow = true;
		if (n > 0)
			b->len = b->size - 1;
		return;
	}
	b->len += (size_t)n;
}

/* Milliseconds from microseconds, without trailing zeros: 50, 0.5, 12.345. */
static inline void strbuf_ms(struct strbuf *b, uint64_t us)
{
	unsigned int frac = (unsigned int)(us % 1000), digits = 3;

	strbuf_printf(b, "%llu", (unsigned long long)(us / 1000));
	if (!frac)
		return;
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	strbuf_printf(b, ".%0*u", (int)digits, frac);
}

/*
 * The one error formatter of the library modules: err = the message
 * (truncated to errlen; err may be NULL), returns r, a -errno.  err_vset()
 * is the same for a caller with its own "..." that adds context.  ERR_MAX is
 * the size every caller's error buffer has.
 */
#define ERR_MAX 512

static inline _printf_(4, 0) int err_vset(char *err, size_t errlen, int r, const char *fmt,
					   va_list ap)
{
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	return r;
}

static inline _printf_(4, 5) int err_set(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, errlen, r, fmt, ap);
	va_end(ap);
	return r;
}

/* splitmix64 (Steele, Lea, Flood): the one seed expander and cheap generator. */
static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
