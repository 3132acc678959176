/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctlproto.h"

/* The longest "errno=N\nerror=<text>\n\n" ctl_reply_finish() writes. */
#define CTL_TRAILER_MAX \
	(sizeof("errno=2147483647\n") - 1 + sizeof("error=\n") - 1 + (CTL_ERROR_MAX - 1) + 1)
/* A reply buffer up to this size is kept for the next reply. */
#define REPLY_KEEP 4096

static bool is_key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool is_key(const char *key)
{
	if (!*key)
		return false;
	for (; *key; key++)
		if (!is_key_char(*key))
			return false;
	return true;
}

void ctl_parser_init(struct ctl_parser *p, char *buf, size_t size, struct ctl_pair *pairs,
		     size_t max_pairs)
{
	p->buf = buf;
	p->size = size;
	p->pairs = pairs;
	p->max_pairs = max_pairs;
	ctl_parser_reset(p);
}

void ctl_parser_reset(struct ctl_parser *p)
{
	p->len = 0;
	p->line = 0;
	p->eq = SIZE_MAX;
	p->n = 0;
	p->lineno = 1;
	p->state = 0;
	p->why = NULL;
}

static int parser_fail(struct ctl_parser *p, int err, const char *why)
{
	p->state = err;
	p->why = why;
	return err;
}

/* Lines are stored with a NUL for their '\n' and for their '=', so the stored
 * bytes of a message are its length minus the final '\n'. */
static int parser_store(struct ctl_parser *p, char c)
{
	if (p->len + 1 > p->size - 1)
		return parser_fail(p, -EMSGSIZE, "message too large");
	p->buf[p->len++] = c;
	return 0;
}

static int parser_end_line(struct ctl_parser *p)
{
	int r;

	if (p->len == p->line) {
		if (p->n == 0)
			return parser_fail(p, -EBADMSG, "message starts with a blank line");
		p->state = 1;
		return 0;
	}
	if (p->eq == SIZE_MAX)
		return parser_fail(p, -EBADMSG, "line without '='");
	r = parser_store(p, '\0');
	if (r < 0)
		return r;
	p->pairs[p->n].key = p->buf + p->line;
	p->pairs[p->n].value = p->buf + p->eq + 1;
	p->n++;
	p->line = p->len;
	p->eq = SIZE_MAX;
	p->lineno++;
	return 0;
}

static int parser_byte(struct ctl_parser *p, unsigned char c)
{
	size_t linelen = p->len - p->line;

	if (c == '\n')
		return parser_end_line(p);
	if (linelen == 0 && p->n == p->max_pairs)
		return parser_fail(p, -E2BIG, "too many lines");
	if (linelen + 1 > CTL_LINE_MAX - 1)
		return parser_fail(p, -EMSGSIZE, "line too long");
	if (c == '\r')
		return parser_fail(p, -EBADMSG, "carriage return (lines end in LF only)");
	if (is_control(c))
		return parser_fail(p, -EBADMSG, "control character");
	if (p->eq == SIZE_MAX) {
		if (c == '=') {
			if (linelen == 0)
				return parser_fail(p, -EBADMSG, "empty key");
			p->eq = p->len;
			c = '\0';
		} else if (!is_key_char(c)) {
			return parser_fail(p, -EBADMSG, "invalid key (keys are [a-z0-9-])");
		}
	}
	return parser_store(p, (char)c);
}

int ctl_parser_feed(struct ctl_parser *p, const void *data, size_t len, size_t *consumed)
{
	const unsigned char *d = data;
	size_t i;

	for (i = 0; i < len && p->state == 0; i++)
		parser_byte(p, d[i]);
	*consumed = i;
	return p->state;
}

bool ctl_parser_pending(const struct ctl_parser *p)
{
	return p->state == 0 && p->len > 0;
}

const char *ctl_parser_error(const struct ctl_parser *p, unsigned int *lineno)
{
	if (lineno)
		*lineno = p->lineno;
	return p->why;
}

int ctl_parser_request(const struct ctl_parser *p, struct ctl_request *ret)
{
	if (p->state != 1)
		return -EINVAL;
	ret->command = p->pairs[0].key;
	ret->arg = p->pairs[0].value;
	ret->pairs = p->pairs + 1;
	ret->n = p->n - 1;
	return 0;
}

static int parse_errno(const char *s)
{
	long v = 0;

	if (!*s || strlen(s) > 10)
		return -EBADMSG;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EBADMSG;
		v = v * 10 + (*s - '0');
	}
	return v > INT_MAX ? -EBADMSG : (int)v;
}

int ctl_parser_response(const struct ctl_parser *p, struct ctl_response *ret)
{
	const char *error = NULL;
	size_t n;
	int e;

	if (p->state != 1)
		return -EINVAL;
	n = p->n;
	if (strcmp(p->pairs[n - 1].key, "error") == 0) {
		error = p->pairs[n - 1].value;
		n--;
	}
	if (n == 0 || strcmp(p->pairs[n - 1].key, "errno") != 0)
		return -EBADMSG;
	e = parse_errno(p->pairs[n - 1].value);
	if (e < 0)
		return e;
	ret->errnum = e;
	ret->error = error;
	ret->pairs = p->pairs;
	ret->n = n - 1;
	return 0;
}

int ctl_request_take(const struct ctl_request *req, const char *key, struct ctl_pair *pairs,
		     size_t max, struct ctl_request *ret, const char **ret_value)
{
	const char *value = NULL;
	size_t n = 0;

	for (size_t i = 0; i < req->n; i++) {
		if (strcmp(req->pairs[i].key, key) == 0) {
			if (value)
				return -EINVAL;
			value = req->pairs[i].value;
			continue;
		}
		if (n == max)
			return -E2BIG;
		pairs[n++] = req->pairs[i];
	}
	ret->command = req->command;
	ret->arg = req->arg;
	ret->pairs = pairs;
	ret->n = n;
	*ret_value = value;
	return 0;
}

const char *ctl_pairs_get(const struct ctl_pair *pairs, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(pairs[i].key, key) == 0)
			return pairs[i].value;
	return NULL;
}

void ctl_reply_init(struct ctl_reply *r, size_t max, size_t max_lines)
{
	memset(r, 0, sizeof(*r));
	r->max = max < CTL_TRAILER_MAX ? CTL_TRAILER_MAX : max;
	r->max_lines = max_lines < 2 ? 2 : max_lines;
}

void ctl_reply_reset(struct ctl_reply *r)
{
	if (r->cap > REPLY_KEEP) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	r->len = 0;
	r->lines = 0;
	r->err = 0;
	r->why = NULL;
	r->finished = false;
	r->error[0] = '\0';
}

void ctl_reply_done(struct ctl_reply *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
	ctl_reply_reset(r);
}

static int reply_fail(struct ctl_reply *r, int err, const char *why)
{
	r->err = err;
	r->why = why;
	return err;
}

/* Make room for need more bytes; growth stops at max, which the callers respect. */
static int reply_reserve(struct ctl_reply *r, size_t need)
{
	size_t cap = r->cap ? r->cap : 256;
	char *buf;

	if (r->len + need <= r->cap)
		return 0;
	while (cap < r->len + need)
		cap *= 2;
	if (cap > r->max)
		cap = r->max;
	buf = realloc(r->buf, cap);
	if (!buf)
		return -ENOMEM;
	r->buf = buf;
	r->cap = cap;
	return 0;
}

int ctl_reply_add(struct ctl_reply *r, const char *key, const char *value)
{
	size_t klen, vlen, need;
	const char *v;

	if (r->finished)
		return -EINVAL;
	if (r->err)
		return r->err;
	if (!is_key(key) || strcmp(key, "errno") == 0 || strcmp(key, "error") == 0)
		return reply_fail(r, -EINVAL, "invalid key in reply");
	for (v = value; *v; v++)
		if (is_control(*v))
			return reply_fail(r, -EINVAL, "control character in reply value");
	klen = strlen(key);
	vlen = (size_t)(v - value);
	need = klen + 1 + vlen + 1;
	if (need > CTL_LINE_MAX)
		return reply_fail(r, -EMSGSIZE, "reply line too long");
	if (r->lines + 1 > r->max_lines - 2)
		return reply_fail(r, -E2BIG, "reply has too many lines");
	if (r->len + need > r->max - CTL_TRAILER_MAX)
		return reply_fail(r, -EMSGSIZE, "reply too large");
	if (reply_reserve(r, need) < 0)
		return reply_fail(r, -ENOMEM, "out of memory");
	memcpy(r->buf + r->len, key, klen);
	r->buf[r->len + klen] = '=';
	memcpy(r->buf + r->len + klen + 1, value, vlen);
	r->buf[r->len + need - 1] = '\n';
	r->len += need;
	r->lines++;
	return 0;
}

int ctl_reply_addf(struct ctl_reply *r, const char *key, const char *fmt, ...)
{
	char value[CTL_LINE_MAX];
	va_list ap;
	int n;

	if (r->finished)
		return -EINVAL;
	if (r->err)
		return r->err;
	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value))
		return reply_fail(r, -EMSGSIZE, "reply line too long");
	return ctl_reply_add(r, key, value);
}

int ctl_reply_add_u64(struct ctl_reply *r, const char *key, uint64_t value)
{
	return ctl_reply_addf(r, key, "%" PRIu64, value);
}

static void strip_controls(char *s)
{
	for (; *s; s++)
		if (is_control(*s))
			*s = ' ';
}

int ctl_reply_error(struct ctl_reply *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	strip_controls(r->error);
	return err;
}

int ctl_reply_finish(struct ctl_reply *r, int err)
{
	const char *text = NULL;
	int n;

	if (r->finished)
		return -EINVAL;
	if (err > 0)
		err = 0;
	if (err == INT_MIN)
		err = -EINVAL;
	if (err < 0)
		text = r->error[0] ? r->error : strerror(-err);
	else if (r->err < 0) {
		err = r->err;
		text = r->why;
	}
	if (err < 0) {
		r->len = 0;
		r->lines = 0;
	}
	if (reply_reserve(r, CTL_TRAILER_MAX) < 0)
		return -ENOMEM;
	n = snprintf(r->buf + r->len, r->cap - r->len, "errno=%d\n", -err);
	r->len += (size_t)n;
	r->lines++;
	if (err < 0) {
		/* The text may be r->error itself; snprintf() to a copy is well defined. */
		char line[CTL_ERROR_MAX];

		snprintf(line, sizeof(line), "%s", text);
		strip_controls(line);
		n = snprintf(r->buf + r->len, r->cap - r->len, "error=%s\n", line);
		r->len += (size_t)n;
		r->lines++;
	}
	r->buf[r->len++] = '\n';
	r->finished = true;
	return 0;
}
