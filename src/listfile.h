/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Line-oriented list files (address sets, host-name sets): one entry per
 * line, '#' starts a comment (whole line or after the entry), blank lines
 * and surrounding white space are ignored.  Lines are bounded
 * (LISTFILE_LINE_MAX bytes without the newline); a NUL byte or a longer
 * line is an error.  Every error text starts with "NAME:LINE: ".
 *
 * A library module: it never logs; errors go to the caller's buffer.
 */
#ifndef IPMODD_LISTFILE_H
#define IPMODD_LISTFILE_H

#include <stddef.h>

#define LISTFILE_LINE_MAX 512

/*
 * Called once per entry with the trimmed text (not NUL-terminated past
 * len: line[len] is '\0' all the same).  Returns 0 or -errno with a reason
 * in err (without the file:line prefix, which the reader adds).
 */
typedef int (*listfile_entry_fn)(void *ctx, const char *line, size_t len, char *err,
				 size_t errlen);

/* Read PATH; -errno of the open or read, or the callback's error. */
int listfile_load(const char *path, listfile_entry_fn fn, void *ctx, char *err, size_t errlen);

/* The same over a buffer (unit tests, inline text); NAME stands for the file. */
int listfile_text(const char *buf, size_t len, const char *name, listfile_entry_fn fn, void *ctx,
		  char *err, size_t errlen);

#endif
