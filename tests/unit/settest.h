/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by test-prefixset and test-hostset: temp files, clocks, sanitizers. */
#ifndef IPMODD_TEST_SETTEST_H
#define IPMODD_TEST_SETTEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Under ASan/TSan or valgrind a timing says nothing: the tests then print
 * the time only.  Valgrind puts its preload library into LD_PRELOAD.
 */
static inline bool slowed_down(void)
{
	const char *pre = getenv("LD_PRELOAD");

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return true;
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	return true;
#endif
#endif
	return pre && strstr(pre, "vgpreload");
}

/* Write LEN bytes into a new temp file; its path in PATH (of PATHLEN); 0 or -1. */
static inline int write_temp(char *path, size_t pathlen, const char *buf, size_t len)
{
	const char *dir = getenv("TMPDIR");
	FILE *f;
	int fd;

	snprintf(path, pathlen, "%s/ipmodd-set.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return -1;
	}
	if (fwrite(buf, 1, len, f) != len) {
		fclose(f);
		unlink(path);
		return -1;
	}
	if (fclose(f) != 0) {
		unlink(path);
		return -1;
	}
	return 0;
}

/* A growing text buffer for generated files. */
struct text {
	char *p;
	size_t len, cap;
};

static inline void text_add(struct text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len + n + 1 > t->cap) {
		t->cap = (t->cap ? t->cap * 2 : 1 << 16) + n;
		t->p = realloc(t->p, t->cap);
		if (!t->p)
			abort();
	}
	memcpy(t->p + t->len, s, n + 1);
	t->len += n;
}

#endif
