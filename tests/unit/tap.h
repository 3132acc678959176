/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A minimal TAP producer for the unit tests (read by automake's tap-driver). */
#ifndef IPMODD_TAP_H
#define IPMODD_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline __attribute__((format(printf, 2, 3))) int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)

#define is_int(got, want, ...)                                                        \
	do {                                                                          \
		long long _g = (long long)(got), _w = (long long)(want);              \
		if (!tap_ok(_g == _w, __VA_ARGS__))                                   \
			printf("#   got %lld, want %lld (%s:%d)\n", _g, _w, __FILE__,     \
			       __LINE__);                                              \
	} while (0)

#define is_str(got, want, ...)                                                        \
	do {                                                                          \
		const char *_g = (got), *_w = (want);                                 \
		if (!tap_ok(_g && _w && strcmp(_g, _w) == 0, __VA_ARGS__))            \
			printf("#   got \"%s\", want \"%s\" (%s:%d)\n", _g ? _g : "(null)", \
			       _w ? _w : "(null)", __FILE__, __LINE__);                \
	} while (0)

#define diag(...) (printf("# "), printf(__VA_ARGS__), putchar('\n'))

static inline void tap_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	exit(0);
}

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
