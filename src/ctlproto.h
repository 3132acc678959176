/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Framing of the control protocol, shared by ipmodd and ipmodctl; no I/O.
 *
 * A message is a run of "key=value\n" lines ended by an empty line.  A
 * request's first line is its command ("get=status"); a reply's last lines
 * are "errno=N" and, when N != 0, "error=<text>".  Keys are [a-z0-9-]+;
 * values are any bytes but control characters (0x00-0x1f, 0x7f), so a value
 * can never carry a newline.  Lines end in LF only: a CR is a control byte and
 * makes the message malformed, which keeps "\n\n" the one way a message ends.
 */
#ifndef IPMODD_CTLPROTO_H
#define IPMODD_CTLPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/*
 * A reply must hold "get=rules" of the largest chain: RULES_MAX rules of seven
 * lines (where= and where-reason= included), fourteen for a rule that impairs
 * (its seven impairment counters), the spec line up to "spec=" +
 * RULE_FORMAT_MAX.  A reply buffer grows as needed and is released once
 * written.
 */
#define CTL_LINE_MAX 2048		/* bytes of one line, its '\n' included */
#define CTL_KEYS_MAX 64			/* lines of a request, the command included */
#define CTL_REQUEST_MAX 16384		/* bytes of a request, the blank line included */
#define CTL_REPLY_MAX (64 << 20)	/* bytes of a reply, the blank line included */
#define CTL_REPLY_KEYS_MAX (13 << 16)	/* lines of a reply, errno= and error= included */
#define CTL_ERROR_MAX 256		/* error= text, its NUL included */

/*
 * A request line any request may carry: the client's own command line,
 * escaped (printable ASCII as it is, '\' as "\\", other bytes as "\xHH";
 * arguments separated by blanks), at most CTL_CMDLINE_MAX bytes (cut with
 * "...").  ipmodctl sends it with every change; the daemon takes it out of
 * the request before the command sees it (ctl_request_take()) and logs it
 * when it may not read the client's /proc/PID/cmdline.  It is a claim: the
 * client's uid and pid are the kernel's.
 */
#define CTL_CLIENT_CMDLINE "client-cmdline"
#define CTL_CMDLINE_MAX 512

struct ctl_pair {
	const char *key;
	const char *value;
};

/*
 * Incremental parser of one message, fed chunks as they arrive.  Lines are
 * stored NUL-terminated in the caller's buf, so a message of up to size bytes
 * (blank line included) fits; pairs holds up to max_pairs lines.
 */
struct ctl_parser {
	char *buf;
	size_t size;
	struct ctl_pair *pairs;
	size_t max_pairs;

	size_t len;		/* bytes stored in buf */
	size_t line;		/* where the current line starts in buf */
	size_t eq;		/* where its '=' is, SIZE_MAX while none */
	size_t n;		/* complete lines in pairs */
	unsigned int lineno;	/* 1-based, of the current line */
	int state;		/* 0 reading, 1 complete, -errno malformed */
	const char *why;	/* what is malformed */
};

void ctl_parser_init(struct ctl_parser *p, char *buf, size_t size, struct ctl_pair *pairs,
		     size_t max_pairs);
/* Forget the message (and any error) to parse the next one. */
void ctl_parser_reset(struct ctl_parser *p);

/*
 * Feed len bytes.  Returns 1 when the message is complete: *consumed then
 * counts the bytes up to its blank line, and the rest belongs to the next
 * message.  Returns 0 when all bytes were taken and more are needed.  Errors
 * are sticky until ctl_parser_reset():
 *   -EMSGSIZE  a line longer than CTL_LINE_MAX, or a message longer than size
 *   -E2BIG     more than max_pairs lines
 *   -EBADMSG   a control byte (binary junk, CR), a line without '=', a bad
 *              key, or a message that is only a blank line
 */
int ctl_parser_feed(struct ctl_parser *p, const void *data, size_t len, size_t *consumed);
/* Whether a message has begun: bytes that the end of input would truncate. */
bool ctl_parser_pending(const struct ctl_parser *p);
/* For a malformed message: what went wrong, and on which line. */
const char *ctl_parser_error(const struct ctl_parser *p, unsigned int *lineno);

struct ctl_request {
	const char *command;		/* "get" of "get=status" */
	const char *arg;		/* "status" */
	const struct ctl_pair *pairs;	/* the lines after the command */
	size_t n;
};

struct ctl_response {
	int errnum;			/* errno=, >= 0 */
	const char *error;		/* error=, NULL when absent */
	const struct ctl_pair *pairs;	/* the lines before errno= */
	size_t n;
};

/*
 * Views of a complete message; they point into the parser's storage and
 * last until its next reset.  ctl_parser_response() returns -EBADMSG when
 * the message does not end in a valid errno= (and optional error=) line.
 */
int ctl_parser_request(const struct ctl_parser *p, struct ctl_request *ret);
int ctl_parser_response(const struct ctl_parser *p, struct ctl_response *ret);

/*
 * req without its line named key: the other lines are copied to pairs (room
 * for max) and ret views them (command and arg as in req; ret may be req);
 * *ret_value is the line's value, NULL when there is none.  Returns 0,
 * -EINVAL when the line comes more than once, -E2BIG when pairs is too small.
 */
int ctl_request_take(const struct ctl_request *req, const char *key, struct ctl_pair *pairs,
		     size_t max, struct ctl_request *ret, const char **ret_value);

/* The value of the first pair named key, or NULL. */
const char *ctl_pairs_get(const struct ctl_pair *pairs, size_t n, const char *key);

/*
 * Reply builder.  Appending never fails half-way: the first failure (a reply
 * over its bounds, a bad key or value, no memory) is remembered, later
 * appends are no-ops, and ctl_reply_finish() turns the reply into that error.
 * Room for the errno=/error= trailer is always reserved.
 */
struct ctl_reply {
	char *buf;
	size_t len, cap;
	size_t max;		/* bytes of the finished reply */
	size_t lines;
	size_t max_lines;	/* lines of the finished reply */
	int err;		/* first failed append */
	const char *why;	/* and what failed */
	bool finished;
	char error[CTL_ERROR_MAX];
};

/* Bounds are clamped up to what an error reply needs.  Allocates nothing. */
void ctl_reply_init(struct ctl_reply *r, size_t max, size_t max_lines);
/* Empty the reply for reuse; a large buffer is released. */
void ctl_reply_reset(struct ctl_reply *r);
void ctl_reply_done(struct ctl_reply *r);

/* Return 0 or the (sticky) -errno: -EINVAL bad key or value, -EMSGSIZE, -E2BIG, -ENOMEM. */
int ctl_reply_add(struct ctl_reply *r, const char *key, const char *value);
int ctl_reply_addf(struct ctl_reply *r, const char *key, const char *fmt, ...) _printf_(3, 4);
int ctl_reply_add_u64(struct ctl_reply *r, const char *key, uint64_t value);
/* Set the error= text and return err, for "return ctl_reply_error(r, -EINVAL, ...);". */
int ctl_reply_error(struct ctl_reply *r, int err, const char *fmt, ...) _printf_(3, 4);

/*
 * Append the trailer: "errno=0" after the lines, or, when err < 0 or an
 * append failed, only "errno=N" and "error=<text>" (the lines are dropped;
 * err wins over a failed append; the text defaults to strerror).  Returns 0,
 * or -ENOMEM when even the trailer cannot be stored.
 */
int ctl_reply_finish(struct ctl_reply *r, int err);

#endif
