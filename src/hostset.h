/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host-name sets: up to HOSTSET_MAX names loaded from a list file
 * (listfile.h: one name per line, '#' comments, blank lines), built once,
 * immutable after the build (a reload builds a new one beside the old).
 *
 * A line means what the same tls-sni / http-host rule value means
 * (hello_name_match): matched case-insensitively (ASCII), and
 *   example.com      matches example.com only;
 *   *.example.com    matches a.example.com, a.b.example.com, ... but not
 *                    example.com itself (write both lines for both).
 * A trailing dot is ignored, on a looked-up name ("example.com." is
 * example.com) and on a line alike.
 *
 * Lines: labels of letters, digits, '-' and '_', 1..63 bytes each, the
 * name (without "*.") at most 253 bytes; '*' only as a whole first label.
 * A bad line is -EINVAL with "file:line: reason".
 *
 * The names are kept lowercase in an open-addressing hash; a lookup hashes
 * the name once from its end and probes the table at each label boundary:
 * O(length) bytes hashed, O(labels) probes, no allocation.
 *
 * A library module: it never logs.
 */
#ifndef IPMODD_HOSTSET_H
#define IPMODD_HOSTSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTSET_MAX 1000000u	/* names per set */
#define HOSTSET_NAME_MAX 253	/* bytes of a name, without "*." and the trailing dot */
#define HOSTSET_LABEL_MAX 63

struct hostset;

struct hostset_stats {
	uint64_t names;		/* lines loaded (duplicates included) */
	uint64_t exact, suffix;	/* distinct "name" and "*.name" entries */
	uint64_t bytes;		/* memory of the built set */
};

/*
 * Load PATH: 0 and *ret, or -errno with the reason in err (-EINVAL
 * "PATH:LINE: ...", -E2BIG past HOSTSET_MAX, -ENOMEM, open/read errors).
 */
int hostset_load(const char *path, struct hostset **ret, char *err, size_t errlen);

/* The same from a buffer; NAME stands for the file name in errors. */
int hostset_from_text(const char *buf, size_t len, const char *name, struct hostset **ret,
		      char *err, size_t errlen);

/* NAME of LEN bytes (not NUL-terminated, any bytes): in the set? */
bool hostset_contains(const struct hostset *s, const char *name, size_t len);

void hostset_stats(const struct hostset *s, struct hostset_stats *st);

/* Takes NULL; returns NULL. */
struct hostset *hostset_free(struct hostset *s);

#endif
