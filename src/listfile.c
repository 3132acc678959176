// SPDX-License-Identifier: GPL-2.0-or-later
/* Line-oriented list files: see listfile.h. */
#include <stdio.h>
#include <string.h>

#include "listfile.h"
#include "util.h"

struct reader {
	const char *name;
	unsigned long lineno;
	listfile_entry_fn fn;
	void *ctx;
	char *err;
	size_t errlen;
	char line[LISTFILE_LINE_MAX + 1];
	size_t len;
	bool overlong, nul;
};

static int fail_at(struct reader *rd, const char *why)
{
	char name[256];

	str_sanitize(name, sizeof(name), rd->name);
	return err_set(rd->err, rd->errlen, -EINVAL, "%s:%lu: %s", name, rd->lineno, why);
}

/* One complete line in rd->line[0..len): trim, strip the comment, hand it on. */
static int end_line(struct reader *rd)
{
	char why[384];
	char *s = rd->line, *hash;
	size_t n = rd->len;
	int ret;

	rd->lineno++;
	if (rd->nul)
		return fail_at(rd, "NUL byte in line");
	if (rd->overlong) {
		snprintf(why, sizeof(why), "line longer than %d bytes", LISTFILE_LINE_MAX);
		return fail_at(rd, why);
	}
	s[n] = '\0';
	hash = memchr(s, '#', n);
	if (hash) {
		*hash = '\0';
		n = (size_t)(hash - s);
	}
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	s[n] = '\0';
	if (!n)
		return 0;
	why[0] = '\0';
	ret = rd->fn(rd->ctx, s, n, why, sizeof(why));
	if (ret == -EINVAL)
		return fail_at(rd, why[0] ? why : "invalid entry");
	if (ret < 0) {
		char name[256];

		str_sanitize(name, sizeof(name), rd->name);
		err_set(rd->err, rd->errlen, 0, "%s:%lu: %s", name, rd->lineno,
			 why[0] ? why : strerror(-ret));
	}
	return ret;
}

static void put_char(struct reader *rd, int c)
{
	if (c == '\0')
		rd->nul = true;
	if (rd->len < LISTFILE_LINE_MAX)
		rd->line[rd->len++] = (char)c;
	else
		rd->overlong = true;
}

static int next_line(struct reader *rd)
{
	int ret = end_line(rd);

	rd->len = 0;
	rd->overlong = rd->nul = false;
	return ret;
}

int listfile_text(const char *buf, size_t len, const char *name, listfile_entry_fn fn, void *ctx,
		  char *err, size_t errlen)
{
	struct reader *rd;
	int ret = 0;

	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return err_set(err, errlen, -ENOMEM, "%s: out of memory", name);
	*rd = (struct reader){ .name = name, .fn = fn, .ctx = ctx, .err = err, .errlen = errlen };
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			ret = next_line(rd);
			if (ret < 0)
				goto out;
		} else {
			put_char(rd, (unsigned char)buf[i]);
		}
	}
	if (rd->len || rd->overlong)
		ret = next_line(rd);
out:
	free(rd);
	return ret;
}

int listfile_load(const char *path, listfile_entry_fn fn, void *ctx, char *err, size_t errlen)
{
	struct reader *rd = NULL;
	FILE *f;
	int c, ret = 0;

	f = fopen(path, "re");
	if (!f) {
		ret = negative_errno();
		return err_set(err, errlen, ret, "%s: %s", path, strerror(-ret));
	}
	rd = calloc(1, sizeof(*rd));
	if (!rd) {
		ret = err_set(err, errlen, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	*rd = (struct reader){ .name = path, .fn = fn, .ctx = ctx, .err = err, .errlen = errlen };
	while ((c = getc_unlocked(f)) != EOF) {
		if (c == '\n') {
			ret = next_line(rd);
			if (ret < 0)
				goto out;
		} else {
			put_char(rd, c);
		}
	}
	if (ferror(f)) {
		ret = negative_errno();
		err_set(err, errlen, ret, "%s: %s", path, strerror(-ret));
		goto out;
	}
	if (rd->len || rd->overlong)
		ret = next_line(rd);
out:
	free(rd);
	fclose(f);
	return ret;
}
