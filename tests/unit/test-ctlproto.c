/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Control protocol framing, and the control socket server on a real socket. */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "control.h"
#include "ctlproto.h"
#include "tap.h"

/* ---- framing ------------------------------------------------------------ */

static char req_buf[CTL_REQUEST_MAX];
static struct ctl_pair req_pairs[CTL_KEYS_MAX];
static char rep_buf[CTL_REPLY_MAX];
static struct ctl_pair rep_pairs[CTL_REPLY_KEYS_MAX];

static void req_parser(struct ctl_parser *p)
{
	ctl_parser_init(p, req_buf, sizeof(req_buf), req_pairs, ARRAY_SIZE(req_pairs));
}

static void rep_parser(struct ctl_parser *p)
{
	ctl_parser_init(p, rep_buf, sizeof(rep_buf), rep_pairs, ARRAY_SIZE(rep_pairs));
}

static int feed_str(struct ctl_parser *p, const char *s, size_t *used)
{
	size_t dummy;

	return ctl_parser_feed(p, s, strlen(s), used ? used : &dummy);
}

static const char sample[] = "get=status\nverbose=1\nname=a b=c\nempty=\n\n";

static bool sample_ok(const struct ctl_parser *p)
{
	struct ctl_request req;

	return ctl_parser_request(p, &req) == 0 && !strcmp(req.command, "get") &&
	       !strcmp(req.arg, "status") && req.n == 3 && !strcmp(req.pairs[0].key, "verbose") &&
	       !strcmp(req.pairs[0].value, "1") && !strcmp(req.pairs[1].key, "name") &&
	       !strcmp(req.pairs[1].value, "a b=c") && !strcmp(req.pairs[2].key, "empty") &&
	       !strcmp(req.pairs[2].value, "");
}

static void test_parse_basic(void)
{
	struct ctl_parser p;
	struct ctl_request req;
	size_t used;

	req_parser(&p);
	ok(!ctl_parser_pending(&p), "nothing pending before input");
	is_int(feed_str(&p, sample, &used), 1, "sample request is complete");
	is_int(used, strlen(sample), "all of it consumed");
	ok(sample_ok(&p), "command, arg and pairs; '=' inside a value, empty value");
	ok(!ctl_parser_pending(&p), "nothing pending once complete");
	ctl_parser_request(&p, &req);
	is_str(ctl_pairs_get(req.pairs, req.n, "name"), "a b=c", "ctl_pairs_get finds a key");
	ok(ctl_pairs_get(req.pairs, req.n, "nope") == NULL, "ctl_pairs_get: missing key is NULL");
	is_int(feed_str(&p, "x", &used), 1, "feeding a complete parser changes nothing");
	is_int(used, 0, "and consumes nothing");

	ctl_parser_reset(&p);
	is_int(feed_str(&p, "get=status\n\n", NULL), 1, "command-only request");
	ctl_parser_request(&p, &req);
	ok(req.n == 0 && !strcmp(req.arg, "status"), "no pairs after the command");
	ctl_parser_reset(&p);
	is_int(feed_str(&p, "s\xc3\xa9=caf\xc3\xa9\n\n", NULL), -EBADMSG, "non-ASCII key refused");
	ctl_parser_reset(&p);
	is_int(feed_str(&p, "set=caf\xc3\xa9\n\n", NULL), 1, "UTF-8 value accepted");
}

/* client-cmdline=: taken out of any request, once, before the command sees it. */
static void test_request_take(void)
{
	struct ctl_pair pairs[CTL_KEYS_MAX];
	struct ctl_parser p;
	struct ctl_request req, rq;
	const char *v = "unset";

	req_parser(&p);
	is_int(feed_str(&p, "add=end\nproto=icmp\nclient-cmdline=ipmodctl add proto=icmp "
			"verdict=drop\nverdict=drop\n\n", NULL), 1, "a request with client-cmdline=");
	ctl_parser_request(&p, &req);
	is_int(ctl_request_take(&req, CTL_CLIENT_CMDLINE, pairs, ARRAY_SIZE(pairs), &rq, &v), 0,
	       "client-cmdline= taken");
	is_str(v, "ipmodctl add proto=icmp verdict=drop", "its value");
	ok(!strcmp(rq.command, "add") && !strcmp(rq.arg, "end"), "command and arg kept");
	ok(rq.n == 2 && !strcmp(rq.pairs[0].key, "proto") && !strcmp(rq.pairs[0].value, "icmp") &&
	   !strcmp(rq.pairs[1].key, "verdict") && !strcmp(rq.pairs[1].value, "drop"),
	   "the other lines, in order, without it");
	ok(!ctl_pairs_get(rq.pairs, rq.n, CTL_CLIENT_CMDLINE), "no line named client-cmdline left");
	is_int(req.n, 3, "the parser's view is untouched");

	ctl_parser_reset(&p);
	feed_str(&p, "trace=1\nproto=udp\n\n", NULL);
	ctl_parser_request(&p, &req);
	v = "unset";
	is_int(ctl_request_take(&req, CTL_CLIENT_CMDLINE, pairs, ARRAY_SIZE(pairs), &rq, &v), 0,
	       "a request without it");
	ok(v == NULL && rq.n == 1 && !strcmp(rq.pairs[0].key, "proto"), "NULL, lines as they were");

	ctl_parser_reset(&p);
	feed_str(&p, "del=x\nclient-cmdline=a\nclient-cmdline=b\n\n", NULL);
	ctl_parser_request(&p, &req);
	is_int(ctl_request_take(&req, CTL_CLIENT_CMDLINE, pairs, ARRAY_SIZE(pairs), &rq, &v),
	       -EINVAL, "twice is refused");

	ctl_parser_reset(&p);
	feed_str(&p, "add=end\nclient-cmdlinex=a\nclient-cmdlin=b\n\n", NULL);
	ctl_parser_request(&p, &req);
	is_int(ctl_request_take(&req, CTL_CLIENT_CMDLINE, pairs, ARRAY_SIZE(pairs), &rq, &v), 0,
	       "keys that only look like it");
	ok(v == NULL && rq.n == 2, "are not it, and stay for the command to judge");

	ctl_parser_reset(&p);
	feed_str(&p, "client-cmdline=x\nproto=tcp\n\n", NULL);
	ctl_parser_request(&p, &req);
	is_int(ctl_request_take(&req, CTL_CLIENT_CMDLINE, pairs, ARRAY_SIZE(pairs), &rq, &v), 0,
	       "as the command line");
	ok(v == NULL && !strcmp(rq.command, CTL_CLIENT_CMDLINE) && rq.n == 1,
	   "it is the command (an unknown one), not taken");

	ctl_parser_reset(&p);
	feed_str(&p, "add=end\na=1\nb=2\nc=3\n\n", NULL);
	ctl_parser_request(&p, &req);
	is_int(ctl_request_take(&req, CTL_CLIENT_CMDLINE, pairs, 2, &rq, &v), -E2BIG,
	       "more lines than pairs holds");
}

static void test_parse_split(void)
{
	size_t len = strlen(sample), k, used, used2, bad = 0;
	struct ctl_parser p;
	int r1, r2;

	req_parser(&p);
	for (k = 0; k <= len; k++) {
		ctl_parser_reset(&p);
		r1 = ctl_parser_feed(&p, sample, k, &used);
		r2 = ctl_parser_feed(&p, sample + k, len - k, &used2);
		if (r1 != (k == len) || used != k || r2 != 1 || used + used2 != len ||
		    !sample_ok(&p)) {
			diag("split at %zu: r1=%d used=%zu r2=%d used2=%zu", k, r1, used, r2, used2);
			bad++;
		}
	}
	is_int(bad, 0, "split into two reads at each of %zu positions", len + 1);

	ctl_parser_reset(&p);
	for (k = 0, bad = 0; k < len; k++) {
		r1 = ctl_parser_feed(&p, sample + k, 1, &used);
		if (r1 != (k == len - 1) || used != 1)
			bad++;
	}
	ok(!bad && sample_ok(&p), "fed one byte at a time");
}

static void test_parse_pipelined(void)
{
	const char two[] = "get=status\n\nget=rules\nverbose=1\n\nget=";
	struct ctl_parser p;
	struct ctl_request req;
	size_t used, off;

	req_parser(&p);
	is_int(ctl_parser_feed(&p, two, strlen(two), &used), 1, "first of two requests");
	is_int(used, strlen("get=status\n\n"), "stops after its blank line");
	off = used;
	ctl_parser_reset(&p);
	is_int(ctl_parser_feed(&p, two + off, strlen(two) - off, &used), 1, "second request");
	ctl_parser_request(&p, &req);
	ok(!strcmp(req.arg, "rules") && req.n == 1, "second request parsed");
	off += used;
	ctl_parser_reset(&p);
	is_int(ctl_parser_feed(&p, two + off, strlen(two) - off, &used), 0,
	       "third, incomplete, request");
	ok(ctl_parser_pending(&p), "a started request is pending");
}

static void test_parse_incomplete(void)
{
	struct ctl_parser p;
	struct ctl_request req;
	size_t used;

	req_parser(&p);
	is_int(feed_str(&p, "get=status\n", &used), 0, "no blank line: incomplete");
	is_int(used, strlen("get=status\n"), "bytes taken");
	is_int(ctl_parser_feed(&p, "", 0, &used), 0, "empty feed keeps it incomplete");
	is_int(feed_str(&p, "verbose=1", &used), 0, "half a line: incomplete");
	ok(ctl_parser_pending(&p), "pending");
	is_int(ctl_parser_request(&p, &req), -EINVAL, "no request view of an incomplete one");
	is_int(feed_str(&p, "\n\n", &used), 1, "completed by the rest");
}

static int feed_fail(const char *s, size_t len, const char **why, unsigned int *lineno)
{
	struct ctl_parser p;
	size_t used;
	int r;

	req_parser(&p);
	r = ctl_parser_feed(&p, s, len, &used);
	*why = ctl_parser_error(&p, lineno);
	return r;
}

#define FAIL(s, want, name)                                                         \
	do {                                                                        \
		r = feed_fail(s, sizeof(s) - 1, &why, &lineno);                     \
		is_int(r, want, "%s", name);                                        \
		if (r < 0)                                                          \
			diag("  -> line %u: %s", lineno, why);                      \
	} while (0)

static void test_parse_malformed(void)
{
	struct ctl_parser p;
	const char *why;
	unsigned int lineno;
	size_t used;
	int r;

	FAIL("get\n\n", -EBADMSG, "line without '='");
	is_int(lineno, 1, "reported on line 1");
	FAIL("get=status\nverbose\n\n", -EBADMSG, "second line without '='");
	is_int(lineno, 2, "reported on line 2");
	FAIL("=status\n\n", -EBADMSG, "empty key");
	FAIL("Get=status\n\n", -EBADMSG, "upper-case key");
	FAIL("get_x=status\n\n", -EBADMSG, "'_' in key");
	FAIL("\n", -EBADMSG, "a blank line alone is no request");
	FAIL("get=st\0atus\n\n", -EBADMSG, "NUL byte");
	FAIL("get=\x01\x02\x03\n\n", -EBADMSG, "control bytes in a value");
	FAIL("\x7f\x45\x4c\x46\x02\x01", -EBADMSG, "binary junk (an ELF header)");
	FAIL("get=a\tb\n\n", -EBADMSG, "TAB in a value");
	FAIL("get=status\r\n\r\n", -EBADMSG, "CRLF line endings are refused");
	ok(why && strstr(why, "carriage return"), "and the error says why");

	req_parser(&p);
	is_int(feed_str(&p, "get=\x01", &used), -EBADMSG, "error...");
	is_int(feed_str(&p, "status\n\n", &used), -EBADMSG, "...is sticky");
	is_int(used, 0, "and consumes nothing more");
	ctl_parser_reset(&p);
	is_int(feed_str(&p, "get=status\n\n", &used), 1, "reset clears it");
}

static void test_parse_limits(void)
{
	static char big[CTL_REQUEST_MAX + CTL_LINE_MAX];
	struct ctl_parser p;
	size_t len, used, i, line;
	const char *why;
	int r;

	/* A line of exactly CTL_LINE_MAX bytes, its '\n' included. */
	len = 0;
	len += sprintf(big, "get=");
	memset(big + len, 'v', CTL_LINE_MAX - 1 - len);
	len = CTL_LINE_MAX - 1;
	memcpy(big + len, "\n\n", 2);
	req_parser(&p);
	is_int(ctl_parser_feed(&p, big, len + 2, &used), 1, "line of CTL_LINE_MAX bytes fits");
	big[len] = 'v';
	big[len + 1] = '\n';
	big[len + 2] = '\n';
	ctl_parser_reset(&p);
	is_int(ctl_parser_feed(&p, big, len + 3, &used), -EMSGSIZE, "one byte more: -EMSGSIZE");
	why = ctl_parser_error(&p, NULL);
	ok(why && strstr(why, "line too long"), "error says line too long");
	ctl_parser_reset(&p);
	memset(big, 'k', CTL_LINE_MAX + 10);
	is_int(ctl_parser_feed(&p, big, CTL_LINE_MAX + 10, &used), -EMSGSIZE,
	       "overlong key without '=': -EMSGSIZE, not a wait for more");

	/* A request of exactly CTL_REQUEST_MAX bytes, blank line included. */
	len = (size_t)sprintf(big, "get=status\n");
	for (i = 0; len < CTL_REQUEST_MAX - 1; i++) {
		line = CTL_REQUEST_MAX - 1 - len;
		if (line > 1000)
			line = 1000;
		if (line < 4)	/* no room for a short line: lengthen the previous */
			break;
		len += (size_t)sprintf(big + len, "k%zu=", i % 10);
		memset(big + len, 'v', line - 4);
		len += line - 4;
		big[len++] = '\n';
	}
	big[len++] = '\n';
	ctl_parser_reset(&p);
	r = ctl_parser_feed(&p, big, len, &used);
	ok(len == CTL_REQUEST_MAX && r == 1, "request of CTL_REQUEST_MAX bytes fits (%zu, %d)",
	   len, r);
	memmove(big + 12, big + 11, len - 11);
	big[11] = 'x';
	big[12] = '=';	/* "x=k0=vvv": one byte longer */
	ctl_parser_reset(&p);
	is_int(ctl_parser_feed(&p, big, len + 1, &used), -EMSGSIZE,
	       "one byte more: -EMSGSIZE");
	why = ctl_parser_error(&p, NULL);
	ok(why && strstr(why, "too large"), "error says message too large");

	/* CTL_KEYS_MAX lines, the command included. */
	len = (size_t)sprintf(big, "get=status\n");
	for (i = 1; i < CTL_KEYS_MAX; i++)
		len += (size_t)sprintf(big + len, "k=%zu\n", i);
	big[len] = '\n';
	ctl_parser_reset(&p);
	is_int(ctl_parser_feed(&p, big, len + 1, &used), 1, "%d lines fit", CTL_KEYS_MAX);
	len += (size_t)sprintf(big + len, "k=last\n\n");
	ctl_parser_reset(&p);
	is_int(ctl_parser_feed(&p, big, len, &used), -E2BIG, "%d lines: -E2BIG",
	       CTL_KEYS_MAX + 1);
}

/* ---- reply builder and parser -------------------------------------------- */

static bool reply_is(const struct ctl_reply *r, const char *want)
{
	bool same = r->len == strlen(want) && memcmp(r->buf, want, r->len) == 0;

	if (!same)
		diag("reply is \"%.*s\"", (int)r->len, r->buf ? r->buf : "");
	return same;
}

static void test_reply_build(void)
{
	struct ctl_reply r;
	char value[CTL_LINE_MAX + 1];
	size_t i;

	ctl_reply_init(&r, CTL_REPLY_MAX, CTL_REPLY_KEYS_MAX);
	is_int(ctl_reply_add(&r, "state", "running"), 0, "add");
	is_int(ctl_reply_add_u64(&r, "rx-packets", UINT64_MAX), 0, "add_u64");
	is_int(ctl_reply_addf(&r, "tun", "%s/%d", "tun0", 1500), 0, "addf");
	is_int(ctl_reply_finish(&r, 0), 0, "finish");
	ok(reply_is(&r, "state=running\nrx-packets=18446744073709551615\ntun=tun0/1500\n"
			"errno=0\n\n"),
	   "lines, errno=0 and the blank line");
	is_int(ctl_reply_add(&r, "late", "x"), -EINVAL, "no add after finish");
	is_int(ctl_reply_finish(&r, 0), -EINVAL, "no second finish");

	ctl_reply_reset(&r);
	ctl_reply_add(&r, "dropped", "1");
	ctl_reply_finish(&r, -ENOENT);
	ok(reply_is(&r, "errno=2\nerror=No such file or directory\n\n"),
	   "error drops the lines; text defaults to strerror");

	ctl_reply_reset(&r);
	is_int(ctl_reply_error(&r, -EPERM, "rule %s:\nnot yours", "x"), -EPERM,
	       "ctl_reply_error returns its errno");
	ctl_reply_finish(&r, -EPERM);
	ok(reply_is(&r, "errno=1\nerror=rule x: not yours\n\n"),
	   "error text; a newline in it becomes a space");

	ctl_reply_reset(&r);
	is_int(ctl_reply_add(&r, "name", "two\nlines"), -EINVAL, "newline in a value: -EINVAL");
	is_int(ctl_reply_add(&r, "fine", "x"), -EINVAL, "failure is sticky");
	ctl_reply_finish(&r, 0);
	ok(reply_is(&r, "errno=22\nerror=control character in reply value\n\n"),
	   "finish reports the failed append");

	ctl_reply_reset(&r);
	ctl_reply_add(&r, "a", "x\x7f");
	ctl_reply_finish(&r, -ENOENT);
	ok(reply_is(&r, "errno=2\nerror=No such file or directory\n\n"),
	   "the handler's error wins over a failed append");

	ctl_reply_reset(&r);
	is_int(ctl_reply_add(&r, "Bad", "x"), -EINVAL, "upper-case key: -EINVAL");
	ctl_reply_reset(&r);
	is_int(ctl_reply_add(&r, "", "x"), -EINVAL, "empty key: -EINVAL");
	ctl_reply_reset(&r);
	is_int(ctl_reply_add(&r, "errno", "0"), -EINVAL, "errno= is reserved");
	ctl_reply_reset(&r);
	is_int(ctl_reply_add(&r, "error", "x"), -EINVAL, "error= is reserved");

	ctl_reply_reset(&r);
	memset(value, 'v', sizeof(value) - 1);
	value[CTL_LINE_MAX - 3] = '\0';		/* "k=" + value + "\n" = CTL_LINE_MAX */
	is_int(ctl_reply_add(&r, "k", value), 0, "line of CTL_LINE_MAX bytes");
	value[CTL_LINE_MAX - 3] = 'v';
	value[CTL_LINE_MAX - 2] = '\0';
	is_int(ctl_reply_add(&r, "k", value), -EMSGSIZE, "one more byte: -EMSGSIZE");
	ctl_reply_reset(&r);
	value[CTL_LINE_MAX] = '\0';
	is_int(ctl_reply_addf(&r, "k", "%s", value), -EMSGSIZE, "addf overflow: -EMSGSIZE");

	ctl_reply_reset(&r);
	ctl_reply_error(&r, -EIO, "%s", value);
	ctl_reply_finish(&r, -EIO);
	ok(r.len == strlen("errno=5\nerror=\n\n") + CTL_ERROR_MAX - 1,
	   "long error text cut to CTL_ERROR_MAX - 1 bytes");
	ctl_reply_done(&r);

	/* A small bound: lines stop fitting well before it, the trailer always fits. */
	ctl_reply_init(&r, 400, 1000);
	for (i = 0; i < 100; i++)
		if (ctl_reply_add(&r, "k", "0123456789") < 0)
			break;
	is_int(r.err, -EMSGSIZE, "bounded reply: -EMSGSIZE after %zu lines", i);
	ok(i > 0 && i < 100, "some lines fitted");
	ctl_reply_finish(&r, 0);
	ok(reply_is(&r, "errno=90\nerror=reply too large\n\n"), "finish reports reply too large");
	ctl_reply_reset(&r);
	ctl_reply_error(&r, -EIO, "%s", value);
	ctl_reply_finish(&r, -EIO);
	ok(r.len <= 400 && r.len <= r.cap, "longest error reply fits the smallest bound");
	ctl_reply_done(&r);

	ctl_reply_init(&r, CTL_REPLY_MAX, 4);
	is_int(ctl_reply_add(&r, "a", "1"), 0, "line 1 of 4");
	is_int(ctl_reply_add(&r, "b", "2"), 0, "line 2 of 4");
	is_int(ctl_reply_add(&r, "c", "3"), -E2BIG, "line 3: the trailer needs 2: -E2BIG");
	ctl_reply_done(&r);
}

static int parse_reply(const char *text, size_t len, struct ctl_parser *p,
		       struct ctl_response *resp)
{
	size_t used;
	int r;

	rep_parser(p);
	r = ctl_parser_feed(p, text, len, &used);
	if (r != 1)
		return r < 0 ? r : -EAGAIN;
	return ctl_parser_response(p, resp);
}

static void test_reply_roundtrip(void)
{
	struct ctl_response resp;
	struct ctl_parser p;
	struct ctl_reply r;
	char key[32], value[CTL_LINE_MAX];
	size_t i, k, used, bad = 0;

	ctl_reply_init(&r, CTL_REPLY_MAX, CTL_REPLY_KEYS_MAX);
	for (i = 0; i < 100; i++)
		ctl_reply_addf(&r, "key-" "x", "value %zu", i);
	ctl_reply_finish(&r, 0);
	is_int(parse_reply(r.buf, r.len, &p, &resp), 0, "reply parses");
	ok(resp.errnum == 0 && resp.error == NULL && resp.n == 100 &&
	   !strcmp(resp.pairs[99].value, "value 99"), "errno 0 and 100 pairs back");

	for (k = 0; k <= r.len; k++) {
		rep_parser(&p);
		ctl_parser_feed(&p, r.buf, k, &used);
		if (ctl_parser_feed(&p, r.buf + k, r.len - k, &used) != 1 ||
		    ctl_parser_response(&p, &resp) < 0 || resp.n != 100)
			bad++;
	}
	is_int(bad, 0, "reply split at each of %zu positions", r.len + 1);

	ctl_reply_reset(&r);
	ctl_reply_error(&r, -ENOENT, "no rule named %s", "x");
	ctl_reply_finish(&r, -ENOENT);
	is_int(parse_reply(r.buf, r.len, &p, &resp), 0, "error reply parses");
	ok(resp.errnum == ENOENT && resp.n == 0, "errno ENOENT, no pairs");
	is_str(resp.error, "no rule named x", "error text back");

	is_int(parse_reply("a=1\n\n", 5, &p, &resp), -EBADMSG, "reply without errno=: -EBADMSG");
	is_int(parse_reply("errno=x\n\n", 9, &p, &resp), -EBADMSG, "errno=x: -EBADMSG");
	is_int(parse_reply("errno=-1\n\n", 10, &p, &resp), -EBADMSG, "errno=-1: -EBADMSG");
	is_int(parse_reply("errno=99999999999\n\n", 19, &p, &resp), -EBADMSG,
	       "huge errno: -EBADMSG");
	is_int(parse_reply("errno=0\na=1\n\n", 13, &p, &resp), -EBADMSG,
	       "lines after errno=: -EBADMSG");
	is_int(parse_reply("a=1\nerrno=0\n\n", 13, &p, &resp), 0, "pairs then errno=0");
	ok(resp.n == 1 && resp.errnum == 0, "one pair");
	is_int(parse_reply("errno=5\nerror=x\n", 16, &p, &resp), -EAGAIN,
	       "no blank line: incomplete");

	/* Whatever the builder lets through at its bounds, a client parses. */
	ctl_reply_reset(&r);
	memset(value, 'v', CTL_LINE_MAX - 16);
	value[CTL_LINE_MAX - 16] = '\0';
	for (i = 0; ctl_reply_add(&r, "long", value) == 0; i++)
		;
	ctl_reply_reset(&r);
	while (i-- > 0)
		ctl_reply_add(&r, "long", value);
	ctl_reply_finish(&r, 0);
	is_int(parse_reply(r.buf, r.len, &p, &resp), 0, "largest reply by bytes (%zu) parses",
	       r.len);
	ctl_reply_reset(&r);
	for (i = 0; ; i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		if (ctl_reply_add(&r, key, "") < 0)
			break;
	}
	ok(r.err == -E2BIG && i == CTL_REPLY_KEYS_MAX - 2, "reply line bound: %zu data lines", i);
	ctl_reply_reset(&r);
	while (i-- > 0)
		ctl_reply_add(&r, "k", "");
	ctl_reply_finish(&r, 0);
	is_int(parse_reply(r.buf, r.len, &p, &resp), 0, "largest reply by lines parses");
	ctl_reply_done(&r);
}

/* ---- the server on a real socket ----------------------------------------- */

static char tmpdir[] = "/tmp/test-ctlproto.XXXXXX";
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

struct hstate {
	int calls;
	bool privileged;
};

static int handler(void *userdata, struct control_client *cl, const struct ctl_request *req,
		   bool privileged, struct ctl_reply *reply)
{
	struct hstate *st = userdata;
	const char *v;
	int i;

	st->calls++;
	st->privileged = privileged;
	if (strcmp(req->command, "get") == 0 && strcmp(req->arg, "status") == 0) {
		ctl_reply_add_u64(reply, "rx-packets", 123);
		ctl_reply_add(reply, "state", "running");
		ctl_reply_add(reply, "privileged", privileged ? "1" : "0");
		v = ctl_pairs_get(req->pairs, req->n, "echo");
		if (v)
			ctl_reply_add(reply, "echo", v);
		return 0;
	}
	if (strcmp(req->command, "get") == 0 && strcmp(req->arg, "big") == 0) {
		for (i = 0; i < 270; i++)
			ctl_reply_addf(reply, "line", "%04d-%0900d", i, i);
		return 0;
	}
	if (strcmp(req->command, "get") == 0 && strcmp(req->arg, "fail") == 0)
		return ctl_reply_error(reply, -ENOENT, "no such thing: %s",
				       ctl_pairs_get(req->pairs, req->n, "name"));
	return ctl_reply_error(reply, -EOPNOTSUPP, "unknown command %s", req->command);
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void spin(sd_event *e, int ms)
{
	long long end = ms_now() + ms;

	while (ms_now() < end)
		sd_event_run(e, 1000);
}

/* Run the loop until the control has n clients, or 5 s (a loaded machine is slow). */
static void spin_clients(sd_event *e, struct control *c, unsigned int n)
{
	long long end = ms_now() + 5000;

	while (control_clients(c) != n && ms_now() < end)
		sd_event_run(e, 10);
}

static int client_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static void send_str(int fd, const char *s)
{
	if (send(fd, s, strlen(s), MSG_NOSIGNAL) != (ssize_t)strlen(s))
		diag("short send");
}

/* Run the loop until a full reply arrived on fd: 1, the peer closed first: 0, or -errno. */
static int recv_reply(sd_event *e, int fd, struct ctl_parser *p, int timeout_ms)
{
	long long end = ms_now() + timeout_ms;
	char chunk[4096];
	size_t used;
	ssize_t n;
	int r;

	rep_parser(p);
	while (ms_now() < end) {
		sd_event_run(e, 1000);
		for (;;) {
			n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
			if (n == 0)
				return 0;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0)
				return -errno;
			r = ctl_parser_feed(p, chunk, (size_t)n, &used);
			if (r != 0)
				return r;
		}
	}
	return -ETIMEDOUT;
}

/* After an error reply the server hangs up: EOF, or ECONNRESET for our unread bytes. */
static bool closed_by_peer(sd_event *e, int fd)
{
	long long end = ms_now() + 1000;
	char c;
	ssize_t n;

	while (ms_now() < end) {
		sd_event_run(e, 1000);
		n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n > 0)
			return false;
	}
	return false;
}

static bool status_reply(sd_event *e, int fd, const char *echo)
{
	struct ctl_response resp;
	struct ctl_parser p;
	const char *v;

	if (recv_reply(e, fd, &p, 2000) != 1 || ctl_parser_response(&p, &resp) < 0)
		return false;
	v = ctl_pairs_get(resp.pairs, resp.n, "echo");
	return resp.errnum == 0 && !strcmp(ctl_pairs_get(resp.pairs, resp.n, "rx-packets"), "123") &&
	       (echo ? v && !strcmp(v, echo) : !v);
}

static int error_reply(sd_event *e, int fd, const char **text)
{
	static char error[CTL_ERROR_MAX];
	struct ctl_response resp;
	struct ctl_parser p;

	if (recv_reply(e, fd, &p, 2000) != 1 || ctl_parser_response(&p, &resp) < 0)
		return -1;
	snprintf(error, sizeof(error), "%s", resp.error ? resp.error : "");
	*text = error;
	return resp.errnum;
}

static const char *any_group(gid_t *gid)
{
	struct group *gr;

	setgrent();
	while ((gr = getgrent()))
		if (gr->gr_gid != 0)
			break;
	endgrent();
	if (!gr)
		return NULL;
	*gid = gr->gr_gid;
	return gr->gr_name;
}

static void test_server_basic(sd_event *e, const char *group, gid_t gid)
{
	struct hstate st = {};
	struct control *c = NULL;
	const char *text;
	char dir[300], big[CTL_LINE_MAX + 64];
	struct stat sb;
	int fd, r;
	size_t k, len, bad;

	r = control_new(e, sock_path, group, 0660, handler, &st, &c);
	is_int(r, 0, "control_new on %s", sock_path);
	if (r < 0)
		return;
	ok(stat(sock_path, &sb) == 0 && S_ISSOCK(sb.st_mode), "socket file exists");
	is_int(sb.st_mode & 07777, 0660, "socket mode 0660");
	if (group)
		is_int(sb.st_gid, gid, "socket group %s", group);
	snprintf(dir, sizeof(dir), "%s/run", tmpdir);
	ok(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 07777) == 0755,
	   "missing parent directory created 0755");

	fd = client_connect(sock_path);
	send_str(fd, "get=status\necho=hello world\n\n");
	ok(status_reply(e, fd, "hello world"), "request in one write answered");
	ok(st.privileged, "root peer is privileged");
	send_str(fd, "get=status\n\n");
	ok(status_reply(e, fd, NULL), "second request on the same connection");
	send_str(fd, "get=status\necho=1\n\nget=status\necho=2\n\n");
	ok(status_reply(e, fd, "1") && status_reply(e, fd, "2"), "two pipelined requests, in order");
	send_str(fd, "get=fail\nname=foo\n\n");
	is_int(error_reply(e, fd, &text), ENOENT, "handler error: errno=ENOENT");
	is_str(text, "no such thing: foo", "with its error= text");
	send_str(fd, "get=status\n\n");
	ok(status_reply(e, fd, NULL), "connection usable after a handler error");
	send_str(fd, "frob=1\n\n");
	is_int(error_reply(e, fd, &text), EOPNOTSUPP, "unknown command answered by the handler");
	spin(e, 5);
	is_int(control_clients(c), 1, "one client connected");
	close(fd);
	spin(e, 20);
	is_int(control_clients(c), 0, "client gone after it closes");

	len = strlen("get=status\necho=split\n\n");
	for (k = 1, bad = 0; k < len; k++) {
		fd = client_connect(sock_path);
		if (fd < 0) {
			bad++;
			continue;
		}
		if (send(fd, "get=status\necho=split\n\n", k, MSG_NOSIGNAL) != (ssize_t)k)
			bad++;
		spin(e, 2);
		send_str(fd, &"get=status\necho=split\n\n"[k]);
		if (!status_reply(e, fd, "split"))
			bad++;
		close(fd);
	}
	is_int(bad, 0, "request split over two writes at each of %zu positions", len - 1);

	fd = client_connect(sock_path);
	memset(big, 'v', sizeof(big));
	memcpy(big, "get=", 4);
	big[sizeof(big) - 3] = '\n';
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	send_str(fd, big);
	is_int(error_reply(e, fd, &text), EMSGSIZE, "oversized line: errno=EMSGSIZE");
	is_str(text, "line 1: line too long", "error= says where and what");
	ok(closed_by_peer(e, fd), "and the server hangs up");
	close(fd);

	fd = client_connect(sock_path);
	send_str(fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
	is_int(error_reply(e, fd, &text), EBADMSG, "binary junk (a TLS hello): errno=EBADMSG");
	ok(closed_by_peer(e, fd), "and the server hangs up");
	close(fd);

	fd = client_connect(sock_path);
	send_str(fd, "get=status\r\n\r\n");
	is_int(error_reply(e, fd, &text), EBADMSG, "CRLF: errno=EBADMSG");
	close(fd);

	fd = client_connect(sock_path);
	send_str(fd, "get=status\n");
	for (k = 0; k < CTL_KEYS_MAX; k++)
		send_str(fd, "k=v\n");
	is_int(error_reply(e, fd, &text), E2BIG, "too many lines: errno=E2BIG");
	close(fd);

	fd = client_connect(sock_path);
	send_str(fd, "get=status\nverbose=1\n");
	shutdown(fd, SHUT_WR);
	is_int(error_reply(e, fd, &text), EBADMSG, "request cut by end of input: errno=EBADMSG");
	ok(strstr(text, "truncated") != NULL, "error= says truncated");
	close(fd);

	spin(e, 20);
	is_int(control_clients(c), 0, "no clients left");
	is_int(st.calls, 7 + (int)(len - 1), "handler called once per good request");
	control_free(c);
	ok(access(sock_path, F_OK) < 0 && errno == ENOENT, "control_free unlinks the socket");
}

static void test_server_backpressure(sd_event *e)
{
	struct hstate st = {};
	struct control *c = NULL;
	struct ctl_response resp;
	struct ctl_parser p;
	size_t i, bad = 0;
	/* 270 lines of "line=NNNN-<900 digits>\n", then "errno=0\n\n". */
	const int total = 270 * 911 + 9;
	char want[1000];
	int fd, avail = 0;

	if (control_new(e, sock_path, NULL, 0660, handler, &st, &c) < 0) {
		ok(0, "control_new");
		return;
	}
	fd = client_connect(sock_path);
	send_str(fd, "get=big\n\n");
	spin(e, 50);
	if (ioctl(fd, FIONREAD, &avail) < 0)
		avail = -1;
	if (avail >= total)
		printf("ok %d # SKIP the socket buffer holds all %d bytes of the reply\n", ++tap_n,
		       total);
	else
		ok(avail > 0 && st.calls == 1,
		   "loop runs on while the client does not read (%d of %d bytes queued)", avail,
		   total);
	is_int(recv_reply(e, fd, &p, 3000), 1, "whole reply read as the client catches up");
	ok(ctl_parser_response(&p, &resp) == 0 && resp.errnum == 0 && resp.n == 270,
	   "270 lines, errno=0");
	for (i = 0; i < resp.n; i++) {
		snprintf(want, sizeof(want), "%04zu-%0900zu", i, i);
		if (strcmp(resp.pairs[i].value, want))
			bad++;
	}
	is_int(bad, 0, "every line intact");
	send_str(fd, "get=status\n\n");
	ok(status_reply(e, fd, NULL), "next request after the large reply");
	close(fd);
	control_free(c);
}

static void test_server_limits(sd_event *e)
{
	struct hstate st = {};
	struct control *c = NULL;
	int fds[CONTROL_CLIENTS_MAX], fd, fd2, i, n = 0;
	const char *text;
	char ch;

	if (control_new(e, sock_path, NULL, 0660, handler, &st, &c) < 0) {
		ok(0, "control_new");
		return;
	}
	for (i = 0; i < CONTROL_CLIENTS_MAX; i++) {
		fds[i] = client_connect(sock_path);
		spin(e, 1);
		if (fds[i] >= 0)
			n++;
	}
	spin_clients(e, c, CONTROL_CLIENTS_MAX);
	is_int(control_clients(c), CONTROL_CLIENTS_MAX, "%d clients connected", n);
	fd = client_connect(sock_path);
	send_str(fd, "get=status\n\n");
	is_int(error_reply(e, fd, &text), EBUSY, "one more is turned away with errno=EBUSY");
	ok(strstr(text, "too many clients") != NULL, "error= says too many clients");
	close(fd);
	is_int(control_clients(c), CONTROL_CLIENTS_MAX, "still %d clients", CONTROL_CLIENTS_MAX);
	send_str(fds[5], "get=status\n\n");
	ok(status_reply(e, fds[5], NULL), "the others still served");
	for (i = 0; i < CONTROL_CLIENTS_MAX; i++)
		close(fds[i]);
	spin_clients(e, c, 0);
	is_int(control_clients(c), 0, "all gone after they close");

	control_set_idle_timeout(c, 100000);
	fd = client_connect(sock_path);
	send_str(fd, "get=sta");
	spin(e, 50);
	is_int(control_clients(c), 1, "idle client connected");
	spin(e, 300);
	is_int(control_clients(c), 0, "idle client closed after the timeout");
	{
		char got[128] = "";
		ssize_t got_len = recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT);

		ok(got_len > 0 && strstr(got, "errno=110\nerror=line 1: request not complete in time\n\n"),
		   "a half request is answered errno=ETIMEDOUT (%s)", got_len > 0 ? "got a reply" : "nothing");
	}
	ok(recv(fd, &ch, 1, MSG_DONTWAIT) <= 0, "then its socket sees the hang-up");

	/* Activity does not stretch a request: it must be whole within the timeout. */
	fd2 = client_connect(sock_path);
	for (i = 0; i < 6; i++) {
		send_str(fd2, "k");
		spin(e, 30);
	}
	is_int(control_clients(c), 0, "a request dribbled byte by byte is cut off at the timeout");
	close(fd2);
	fd2 = client_connect(sock_path);
	for (i = 0; i < 4; i++) {
		send_str(fd2, "get=status\n\n");
		spin(e, 60);
	}
	is_int(control_clients(c), 1, "whole requests keep a client alive past the timeout");
	close(fd2);
	close(fd);
	control_free(c);
}

static void test_server_socket_file(sd_event *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct hstate st = {};
	struct control *c = NULL, *c2 = NULL;
	char longpath[200];
	struct stat sb;
	int fd, r;

	/* A socket file whose server died: bound, never listened, closed. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	ok(r == 0 && stat(sock_path, &sb) == 0 && S_ISSOCK(sb.st_mode), "stale socket file made");
	is_int(control_new(e, sock_path, NULL, 0660, handler, &st, &c), 0, "stale socket replaced");
	fd = client_connect(sock_path);
	send_str(fd, "get=status\n\n");
	ok(status_reply(e, fd, NULL), "and the new one answers");
	close(fd);

	r = control_new(e, sock_path, NULL, 0660, handler, &st, &c2);
	is_int(r, -EADDRINUSE, "second server on a live socket: -EADDRINUSE");
	ok(!c2, "no control returned");
	spin(e, 10);
	fd = client_connect(sock_path);
	send_str(fd, "get=status\n\n");
	ok(status_reply(e, fd, NULL), "the first server still answers");
	close(fd);

	/* Someone replaced our socket file: control_free must leave theirs alone. */
	unlink(sock_path);
	close(open(sock_path, O_CREAT | O_WRONLY, 0600));
	control_free(c);
	ok(access(sock_path, F_OK) == 0, "control_free leaves a file that is not its socket");

	r = control_new(e, sock_path, NULL, 0660, handler, &st, &c);
	is_int(r, -EEXIST, "path is a regular file: -EEXIST");
	ok(stat(sock_path, &sb) == 0 && S_ISREG(sb.st_mode), "and the file is untouched");
	unlink(sock_path);

	is_int(control_new(e, sock_path, "no-such-group-ipmodd", 0660, handler, &st, &c), -ENOENT,
	       "unknown group: -ENOENT");
	ok(access(sock_path, F_OK) < 0, "and no socket left behind");

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	is_int(control_new(e, longpath, NULL, 0660, handler, &st, &c), -ENAMETOOLONG,
	       "path too long: -ENAMETOOLONG");
}

/* In a child with the given credentials: 0 privileged, 1 not, 2 connect failed, 3 error. */
static int child_status(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups)
{
	struct ctl_response resp;
	struct ctl_parser p;
	struct pollfd pfd;
	char chunk[512];
	size_t used;
	ssize_t n;
	int fd, r = 0;

	if (setgroups(n_groups, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		_exit(3);
	fd = client_connect(sock_path);
	if (fd < 0)
		_exit(fd == -EACCES ? 2 : 3);
	send_str(fd, "get=status\n\n");
	rep_parser(&p);
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (r == 0 && poll(&pfd, 1, 3000) == 1) {
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n <= 0)
			_exit(3);
		r = ctl_parser_feed(&p, chunk, (size_t)n, &used);
	}
	if (r != 1 || ctl_parser_response(&p, &resp) < 0)
		_exit(3);
	_exit(strcmp(ctl_pairs_get(resp.pairs, resp.n, "privileged"), "1") == 0 ? 0 : 1);
}

static int run_child(sd_event *e, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups)
{
	long long end;
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		child_status(uid, gid, groups, n_groups);
	end = ms_now() + 5000;
	while (ms_now() < end) {
		sd_event_run(e, 1000);
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static void test_server_privilege(sd_event *e, const char *group, gid_t gid)
{
	const uid_t nobody = 65534;
	const gid_t nogroup = 65534, supp[] = { 65533, gid };
	struct hstate st = {};
	struct control *c = NULL;

	if (geteuid() != 0 || !group || gid == nogroup) {
		printf("ok %d # SKIP peer privilege checks need root and a spare group\n", ++tap_n);
		return;
	}
	if (control_new(e, sock_path, group, 0660, handler, &st, &c) < 0) {
		ok(0, "control_new");
		return;
	}
	is_int(run_child(e, nobody, gid, NULL, 0), 0, "uid %u with primary group %s: privileged",
	       nobody, group);
	is_int(run_child(e, nobody, nogroup, supp, ARRAY_SIZE(supp)), 0,
	       "uid %u with supplementary group %s: privileged (SO_PEERGROUPS)", nobody, group);
	is_int(run_child(e, nobody, nogroup, NULL, 0), 2,
	       "uid %u without the group: connect refused (EACCES)", nobody);
	control_free(c);
}

/* ---- streams ------------------------------------------------------------- */

#define STREAMS_TEST_MAX (CONTROL_STREAMS_MAX + 4)
#define STREAM_WRITES_MAX 8

struct sstate;

/* One stream as its owner (the daemon's tap) sees it. */
struct tstream {
	struct sstate *st;
	struct control_client *cl;	/* NULL once closed() ran */
	int closed;			/* closed() calls */
	uint64_t pos;			/* pattern bytes queued so far */
	int wr[STREAM_WRITES_MAX];	/* results of the handler's writes= */
};

struct sstate {
	struct hstate h;
	struct tstream s[STREAMS_TEST_MAX];
	int n;				/* streams started */
	int second_start;		/* control_stream_start() again, with twice=1 */
	int peek_fd;			/* a client socket closed() peeks at, -1 none */
	ssize_t peeked;			/* what it found: -1 nothing to read yet */
};

/* The stream's byte at pos: no short period, so a lost or repeated chunk shows. */
static uint8_t pat(uint64_t pos)
{
	return (uint8_t)((pos * 2654435761u) >> 11 ^ pos >> 9);
}

static bool pattern_ok(const uint8_t *b, size_t len, uint64_t start)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != pat(start + i)) {
			diag("stream byte %" PRIu64 " is 0x%02x, want 0x%02x", start + i, b[i],
			     pat(start + i));
			return false;
		}
	return true;
}

/* Queue the next len pattern bytes; the position moves only when they are taken. */
static int swrite(struct tstream *t, size_t len)
{
	static uint8_t chunk[1 << 17];
	int r;

	if (len > sizeof(chunk) || !t->cl)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		chunk[i] = pat(t->pos + i);
	r = control_stream_write(t->cl, chunk, len);
	if (r == 0)
		t->pos += len;
	return r;
}

static void on_stream_closed(void *userdata)
{
	struct tstream *t = userdata;
	char c;

	t->closed++;
	t->cl = NULL;
	if (t->st->peek_fd >= 0)
		t->st->peeked = recv(t->st->peek_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
}

/*
 * "stream=N": start a stream and queue N pattern bytes before the reply.
 * buf=SIZE its ring; writes=A,B,...: queue these sizes too, keeping each
 * result; pad=BYTES: that much of reply lines; twice=1: start it again;
 * end=1: end it at once; fail=1: fail after starting it.
 */
static int stream_handler(void *userdata, struct control_client *cl,
			  const struct ctl_request *req, bool privileged, struct ctl_reply *reply)
{
	struct sstate *st = userdata;
	struct tstream *t;
	const char *v;
	size_t bufsize = 65536, n;
	int r;

	if (strcmp(req->command, "stream") != 0)
		return handler(&st->h, cl, req, privileged, reply);
	st->h.calls++;
	if (st->n >= STREAMS_TEST_MAX)
		return -ENOSPC;
	t = &st->s[st->n];
	memset(t, 0, sizeof(*t));
	t->st = st;
	v = ctl_pairs_get(req->pairs, req->n, "buf");
	if (v)
		bufsize = strtoul(v, NULL, 10);
	r = control_stream_start(cl, bufsize, on_stream_closed, t);
	if (r < 0)
		return r;
	st->n++;
	t->cl = cl;
	if (ctl_pairs_get(req->pairs, req->n, "twice"))
		st->second_start = control_stream_start(cl, bufsize, on_stream_closed, t);
	v = ctl_pairs_get(req->pairs, req->n, "pad");
	for (n = v ? strtoul(v, NULL, 10) : 0; n >= 1000; n -= 1000)
		ctl_reply_addf(reply, "pad", "%0995d", 0);	/* "pad=" 995 '\n': 1000 bytes */
	n = strtoul(req->arg, NULL, 10);
	if (n)
		swrite(t, n);
	v = ctl_pairs_get(req->pairs, req->n, "writes");
	for (int i = 0; v && *v && i < STREAM_WRITES_MAX; i++) {
		char *end;

		t->wr[i] = swrite(t, strtoul(v, &end, 10));
		v = *end == ',' ? end + 1 : end;
	}
	if (ctl_pairs_get(req->pairs, req->n, "fail"))
		return ctl_reply_error(reply, -EIO, "failed on purpose");
	if (ctl_pairs_get(req->pairs, req->n, "end"))
		control_stream_end(cl);
	return 0;
}

/* What a client received on a stream connection. */
struct sreader {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	bool eof;
	int err;			/* errno of a failed recv */
};

static void sr_open(struct sreader *r, const char *request)
{
	memset(r, 0, sizeof(*r));
	r->cap = 16 << 20;
	r->buf = malloc(r->cap);
	r->fd = client_connect(sock_path);
	if (r->fd < 0 || !r->buf) {
		diag("stream client: %d", r->fd);
		r->err = EIO;
		return;
	}
	if (request)
		send_str(r->fd, request);
}

static void sr_close(struct sreader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
}

/* Take what the socket holds now. */
static void sr_recv(struct sreader *r)
{
	ssize_t n;

	while (r->fd >= 0 && !r->eof && !r->err && r->len < r->cap) {
		n = recv(r->fd, r->buf + r->len, r->cap - r->len, MSG_DONTWAIT);
		if (n > 0) {
			r->len += (size_t)n;
			continue;
		}
		if (n == 0)
			r->eof = true;
		else if (errno != EAGAIN)
			r->err = errno;
		break;
	}
}

/* Run the loop and read until want bytes, the end of the stream or ms. */
static bool sr_until(sd_event *e, struct sreader *r, size_t want, int ms)
{
	long long end = ms_now() + ms;

	sr_recv(r);
	while (r->len < want && !r->eof && !r->err && ms_now() < end) {
		sd_event_run(e, 1000);
		sr_recv(r);
	}
	return r->len >= want;
}

/* Read to the end of the stream (EOF), for at most ms. */
static bool sr_until_eof(sd_event *e, struct sreader *r, int ms)
{
	sr_until(e, r, SIZE_MAX, ms);
	return r->eof;
}

/* Length of the reply at the start of what was read (0: not all there); its errno. */
static size_t sr_reply(struct sreader *r, int *errnum)
{
	struct ctl_response resp;
	struct ctl_parser p;
	size_t used;

	*errnum = -1;
	rep_parser(&p);
	if (ctl_parser_feed(&p, r->buf, r->len, &used) != 1 ||
	    ctl_parser_response(&p, &resp) < 0)
		return 0;
	*errnum = resp.errnum;
	return used;
}

/* Open a stream client and read its reply: 0 errno=0 came (and nothing else yet), else -1. */
static int sr_start(sd_event *e, struct sreader *r, const char *request)
{
	int errnum;
	size_t n;

	sr_open(r, request);
	sr_until(e, r, 9, 2000);
	n = sr_reply(r, &errnum);
	if (n != 9 || errnum != 0 || memcmp(r->buf, "errno=0\n\n", 9) != 0) {
		diag("stream reply: %zu bytes, errno %d: %.*s", n, errnum, (int)r->len,
		     (const char *)r->buf);
		return -1;
	}
	return 0;
}

/* Loop iterations that dispatched something in ms: a loop with nothing to do sleeps. */
static int busy_dispatches(sd_event *e, int ms)
{
	long long end = ms_now() + ms;
	int n = 0;

	while (ms_now() < end)
		if (sd_event_run(e, 20000) > 0)
			n++;
	return n;
}

static struct control *stream_server(sd_event *e, struct sstate *st)
{
	struct control *c = NULL;

	memset(st, 0, sizeof(*st));
	st->peek_fd = -1;
	if (control_new(e, sock_path, NULL, 0660, stream_handler, st, &c) < 0) {
		ok(0, "control_new");
		return NULL;
	}
	return c;
}

static void test_stream_basic(sd_event *e)
{
	struct sstate st;
	struct sreader r, q;
	struct control *c = stream_server(e, &st);
	struct tstream *t = &st.s[0];

	if (!c)
		return;
	sr_open(&r, "stream=1000\n\n");
	sr_until(e, &r, 9 + 1000, 2000);
	ok(r.len == 9 + 1000 && memcmp(r.buf, "errno=0\n\n", 9) == 0,
	   "the reply errno=0 comes first (%zu bytes)", r.len);
	ok(r.len >= 9 + 1000 && pattern_ok(r.buf + 9, 1000, 0),
	   "then the 1000 bytes queued by the handler");
	is_int(control_streams(c), 1, "one stream");
	is_int(t->closed, 0, "not closed");

	is_int(swrite(t, 5000), 0, "5000 bytes queued from outside the handler");
	sr_until(e, &r, 9 + 6000, 2000);
	ok(r.len == 9 + 6000 && pattern_ok(r.buf + 9, 6000, 0), "they arrive in order");
	is_int(swrite(t, 0), 0, "an empty write is fine");

	/* Requests on a stream are not answered, and do not disturb it. */
	send_str(r.fd, "get=status\n\n");
	spin(e, 20);
	is_int(swrite(t, 300), 0, "more after the client sent a request");
	sr_until(e, &r, 9 + 6300, 2000);
	spin(e, 20);
	sr_recv(&r);
	ok(r.len == 9 + 6300 && pattern_ok(r.buf + 9, 6300, 0),
	   "the stream goes on, no reply in it");
	is_int(st.h.calls, 1, "the handler saw the stream request only");

	/* Another client is served meanwhile. */
	sr_open(&q, "get=status\n\n");
	ok(status_reply(e, q.fd, NULL), "a second client gets its status");
	sr_close(&q);

	sr_close(&r);
	spin(e, 30);
	is_int(t->closed, 1, "client hang-up: closed() called");
	is_int(control_streams(c), 0, "no stream left");
	is_int(control_clients(c), 0, "no client left");
	spin(e, 20);
	is_int(t->closed, 1, "closed() called once");
	control_free(c);
	is_int(t->closed, 1, "and not again by control_free");
}

/* Whole writes or nothing, in the handler before the reply is even out. */
static void test_stream_whole(sd_event *e)
{
	struct sstate st;
	struct sreader r;
	struct control *c = stream_server(e, &st);
	struct tstream *t = &st.s[0];

	if (!c)
		return;
	sr_open(&r, "stream=0\nbuf=4096\nwrites=4000,97,96,1,0\n\n");
	sr_until(e, &r, 9 + 4096, 2000);
	ok(t->wr[0] == 0 && t->wr[1] == -ENOBUFS && t->wr[2] == 0 && t->wr[3] == -ENOBUFS &&
	   t->wr[4] == 0, "ring of 4096: 4000 taken, 97 refused, 96 taken, 1 refused, 0 taken "
	   "(%d %d %d %d %d)", t->wr[0], t->wr[1], t->wr[2], t->wr[3], t->wr[4]);
	ok(r.len == 9 + 4096 && memcmp(r.buf, "errno=0\n\n", 9) == 0 &&
	   pattern_ok(r.buf + 9, 4096, 0), "the client gets the reply and exactly those 4096 bytes");
	is_int(swrite(t, 4097), -ENOBUFS, "more than the ring: -ENOBUFS");
	is_int(swrite(t, 4096), 0, "the whole ring once it drained");
	sr_until(e, &r, 9 + 8192, 2000);
	ok(r.len == 9 + 8192 && pattern_ok(r.buf + 9, 8192, 0), "and it arrives");
	sr_close(&r);
	control_free(c);
	is_int(t->closed, 1, "closed() once");
}

/* Far more than the ring, in sizes that make the ring wrap at every offset. */
static void test_stream_wrap(sd_event *e)
{
	const uint64_t total = 4 << 20;
	struct sstate st;
	struct sreader r;
	struct control *c = stream_server(e, &st);
	struct tstream *t = &st.s[0];
	long long end = ms_now() + 20000;
	unsigned int i = 0, refused = 0;
	int rc;

	if (!c)
		return;
	if (sr_start(e, &r, "stream=0\nbuf=4099\n\n") < 0) {
		ok(0, "stream started");
		goto out;
	}
	while (t->pos < total && ms_now() < end) {
		size_t len = 1 + (i * 337) % 1500;

		rc = swrite(t, len);
		if (rc == 0) {
			i++;
		} else {
			refused++;
			sd_event_run(e, 0);
			sr_recv(&r);
		}
		if (rc < 0 && rc != -ENOBUFS)
			break;
	}
	sr_until(e, &r, 9 + t->pos, 5000);
	ok(t->pos >= total, "%" PRIu64 " bytes in %u writes through a ring of 4099 (%u refused)",
	   t->pos, i, refused);
	ok(refused > 0, "the ring was full at times");
	ok(r.len == 9 + t->pos && pattern_ok(r.buf + 9, t->pos, 0),
	   "every byte arrives, in order (%zu of %" PRIu64 ")", r.len - 9, t->pos);
out:
	sr_close(&r);
	control_free(c);
}

/* A client that does not read: writes are refused, nothing blocks, others are served. */
static void test_stream_slow(sd_event *e)
{
	struct sstate st;
	struct sreader r, q;
	struct control *c = stream_server(e, &st);
	struct tstream *t = &st.s[0];
	long long t0, slowest = 0;
	unsigned int refused = 0, taken = 0;

	if (!c)
		return;
	if (sr_start(e, &r, "stream=0\nbuf=65536\n\n") < 0) {
		ok(0, "stream started");
		goto out;
	}
	/* Until 200 writes in a row were refused, the loop running between them. */
	t0 = ms_now();
	while (refused < 200 && t->pos < (256 << 20)) {
		long long w0 = ms_now();
		int rc = swrite(t, 4096);

		if (ms_now() - w0 > slowest)
			slowest = ms_now() - w0;
		if (rc == 0) {
			taken++;
			refused = 0;
		} else if (rc == -ENOBUFS) {
			refused++;
		} else {
			diag("write: %d", rc);
			break;
		}
		sd_event_run(e, 0);
	}
	is_int(refused, 200, "a client that does not read: -ENOBUFS (after %" PRIu64
	       " bytes taken)", t->pos);
	ok(slowest < 50 && ms_now() - t0 < 5000, "no write blocked (slowest %lld ms)", slowest);
	ok(t->pos >= 65536, "the ring and the socket buffer were filled first");

	sr_open(&q, "get=status\n\n");
	ok(status_reply(e, q.fd, NULL), "meanwhile another client gets its status");
	sr_close(&q);
	is_int(t->closed, 0, "the slow stream is still open");

	sr_until(e, &r, 9 + t->pos, 5000);
	ok(r.len == 9 + t->pos && pattern_ok(r.buf + 9, t->pos, 0),
	   "once it reads, it gets every byte that was taken, in order");
	is_int(swrite(t, 4096), 0, "and writes are taken again");
	sr_until(e, &r, 9 + t->pos, 2000);
	ok(r.len == 9 + t->pos, "and arrive");
out:
	sr_close(&r);
	control_free(c);
}

static void test_stream_end(sd_event *e)
{
	struct sstate st;
	struct sreader r;
	struct control *c = stream_server(e, &st);
	struct tstream *t = &st.s[0];
	int refused = 0;

	if (!c)
		return;
	if (sr_start(e, &r, "stream=0\n\n") < 0) {
		ok(0, "stream started");
		goto out;
	}
	while (refused < 50 && t->pos < (256 << 20)) {
		if (swrite(t, 8192) == -ENOBUFS)
			refused++;
		sd_event_run(e, 0);
	}
	control_stream_end(t->cl);
	is_int(control_stream_write(t->cl, "x", 1), -EPIPE, "write after end: -EPIPE");
	spin(e, 50);
	is_int(t->closed, 0, "ended with bytes queued: not closed while they wait");
	is_int(control_clients(c), 1, "the client stays");
	ok(sr_until_eof(e, &r, 5000), "the client reads to EOF");
	ok(!r.err && r.len == 9 + t->pos && pattern_ok(r.buf + 9, t->pos, 0),
	   "after every one of the %" PRIu64 " bytes", t->pos);
	spin(e, 10);
	is_int(t->closed, 1, "closed() once it is all sent");
	is_int(control_streams(c), 0, "no stream left");
	sr_close(&r);

	/* Ended by the handler, before the reply is out. */
	sr_open(&r, "stream=777\nend=1\n\n");
	ok(sr_until_eof(e, &r, 2000), "stream ended in its handler: EOF");
	ok(r.len == 9 + 777 && !memcmp(r.buf, "errno=0\n\n", 9) && pattern_ok(r.buf + 9, 777, 0),
	   "after the reply and the 777 bytes");
	spin(e, 10);
	is_int(st.s[1].closed, 1, "closed() once");
	sr_close(&r);

	/* Ended with nothing queued. */
	if (sr_start(e, &r, "stream=0\n\n") == 0) {
		control_stream_end(st.s[2].cl);
		ok(sr_until_eof(e, &r, 2000) && r.len == 9, "ended with an empty ring: EOF at once");
		spin(e, 10);
		is_int(st.s[2].closed, 1, "closed() once");
	} else {
		ok(0, "stream started");
	}
out:
	sr_close(&r);
	control_free(c);
}

static void test_stream_close_paths(sd_event *e)
{
	struct sstate st;
	struct sreader r[3], q;
	struct control *c = stream_server(e, &st);
	const char *text;
	int n = 0;

	if (!c)
		return;
	/* A handler error after control_stream_start() cancels the stream. */
	sr_open(&q, NULL);
	st.peek_fd = q.fd;
	st.peeked = 99;
	send_str(q.fd, "stream=100\nfail=1\n\n");
	is_int(error_reply(e, q.fd, &text), EIO, "handler error after starting: errno=EIO");
	is_str(text, "failed on purpose", "with its text");
	is_int(st.s[0].closed, 1, "the stream was cancelled: closed() once");
	ok(st.peeked < 0, "before the error reply went out");
	is_int(control_streams(c), 0, "no stream counted");
	st.peek_fd = -1;
	send_str(q.fd, "get=status\n\n");
	ok(status_reply(e, q.fd, NULL), "the connection is an ordinary one again");
	spin(e, 10);
	is_int(st.s[0].closed, 1, "closed() not called again");
	sr_close(&q);

	/* Started twice. */
	if (sr_start(e, &q, "stream=0\ntwice=1\n\n") == 0)
		is_int(st.second_start, -EALREADY, "a second start on a stream: -EALREADY");
	else
		ok(0, "stream started");
	sr_close(&q);
	spin(e, 20);
	is_int(st.s[1].closed, 1, "closed() once for it too");

	/* control_free() with live streams, one with bytes queued. */
	for (int i = 0; i < 3; i++)
		n += sr_start(e, &r[i], "stream=0\n\n") == 0;
	is_int(n, 3, "3 streams");
	swrite(&st.s[3], 1000);
	control_free(c);
	ok(st.n == 5 && st.s[2].closed == 1 && st.s[3].closed == 1 && st.s[4].closed == 1,
	   "control_free: closed() once for each live stream");
	for (int i = 0; i < 3; i++) {
		sr_until(NULL, &r[i], SIZE_MAX, 0);
		if (!r[i].eof && r[i].err != ECONNRESET)
			n--;
		sr_close(&r[i]);
	}
	is_int(n, 3, "their clients see the hang-up");
}

/* A client that shut down its writing side still gets the stream. */
static void test_stream_half_close(sd_event *e)
{
	struct sstate st;
	struct sreader r;
	struct control *c = stream_server(e, &st);
	struct tstream *t = &st.s[0];
	int busy;

	if (!c)
		return;
	if (sr_start(e, &r, "stream=0\n\n") < 0) {
		ok(0, "stream started");
		goto out;
	}
	shutdown(r.fd, SHUT_WR);
	spin(e, 50);
	is_int(t->closed, 0, "shutdown(SHUT_WR): the stream stays");
	is_int(control_clients(c), 1, "and so does the client");
	busy = busy_dispatches(e, 200);
	ok(busy <= 2, "the loop sleeps (%d wake-ups in 200 ms)", busy);
	is_int(swrite(t, 20000), 0, "20000 bytes queued");
	sr_until(e, &r, 9 + 20000, 2000);
	ok(r.len == 9 + 20000 && pattern_ok(r.buf + 9, 20000, 0), "and received");
	sr_close(&r);
	spin(e, 30);
	is_int(t->closed, 1, "closing it then ends the stream");
out:
	sr_close(&r);
	control_free(c);
}

static void test_stream_limit(sd_event *e)
{
	struct sstate st;
	struct sreader r[CONTROL_STREAMS_MAX + 1];
	struct control *c = stream_server(e, &st);
	const char *text;
	int n = 0;

	if (!c)
		return;
	for (int i = 0; i < CONTROL_STREAMS_MAX; i++)
		n += sr_start(e, &r[i], "stream=0\n\n") == 0;
	is_int(n, CONTROL_STREAMS_MAX, "%d streams started", CONTROL_STREAMS_MAX);
	is_int(control_streams(c), CONTROL_STREAMS_MAX, "%d counted", CONTROL_STREAMS_MAX);
	sr_open(&r[CONTROL_STREAMS_MAX], "stream=0\n\n");
	is_int(error_reply(e, r[CONTROL_STREAMS_MAX].fd, &text), EBUSY,
	       "one more: errno=EBUSY");
	is_int(control_streams(c), CONTROL_STREAMS_MAX, "still %d", CONTROL_STREAMS_MAX);
	send_str(r[CONTROL_STREAMS_MAX].fd, "get=status\n\n");
	ok(status_reply(e, r[CONTROL_STREAMS_MAX].fd, NULL), "that client can still ask for status");
	sr_close(&r[CONTROL_STREAMS_MAX]);
	sr_close(&r[3]);
	spin(e, 30);
	is_int(control_streams(c), CONTROL_STREAMS_MAX - 1, "one closed: %d",
	       CONTROL_STREAMS_MAX - 1);
	ok(sr_start(e, &r[3], "stream=0\n\n") == 0, "and a new one is accepted");
	is_int(control_streams(c), CONTROL_STREAMS_MAX, "%d again", CONTROL_STREAMS_MAX);
	for (int i = 0; i < CONTROL_STREAMS_MAX; i++)
		sr_close(&r[i]);
	spin(e, 30);
	is_int(control_streams(c), 0, "all closed");
	n = 0;
	for (int i = 0; i < st.n; i++)
		n += st.s[i].closed == 1;
	is_int(n, CONTROL_STREAMS_MAX + 1, "closed() once for each of the %d", st.n);
	control_free(c);
}

/* The idle timeout closes silent clients, never a stream's. */
static void test_stream_idle(sd_event *e)
{
	struct sstate st;
	struct sreader r, q;
	struct control *c = stream_server(e, &st);
	struct tstream *t = &st.s[0];

	if (!c)
		return;
	control_set_idle_timeout(c, 100000);
	if (sr_start(e, &r, "stream=0\n\n") < 0) {
		ok(0, "stream started");
		goto out;
	}
	sr_open(&q, NULL);
	spin(e, 400);
	is_int(control_clients(c), 1, "after 4 idle timeouts only the stream client is left");
	is_int(t->closed, 0, "the stream is open");
	is_int(swrite(t, 100), 0, "and takes bytes");
	sr_until(e, &r, 9 + 100, 2000);
	ok(r.len == 9 + 100 && !r.eof, "which arrive");
	sr_close(&q);
out:
	sr_close(&r);
	control_free(c);
}

/*
 * A reply too large for the socket buffer goes out in pieces before the
 * stream starts: its bytes still come first, and once all is sent the
 * loop has nothing to do.
 */
static void test_stream_large_reply(sd_event *e)
{
	struct sstate st;
	struct sreader r;
	struct control *c = stream_server(e, &st);
	struct tstream *t = &st.s[0];
	size_t n;
	int errnum, busy;

	if (!c)
		return;
	sr_open(&r, "stream=3000\npad=2000000\n\n");
	spin(e, 50);	/* the reply fills the socket buffer */
	sr_until(e, &r, 2000000 + 9 + 3000, 5000);
	n = sr_reply(&r, &errnum);
	ok(n == 2000000 + 9 && errnum == 0, "a reply of 2000 lines, errno=0 (%zu bytes)", n);
	ok(r.len == n + 3000 && pattern_ok(r.buf + n, 3000, 0),
	   "then the 3000 stream bytes queued by the handler");
	spin(e, 20);
	busy = busy_dispatches(e, 200);
	ok(busy <= 2, "then the loop sleeps (%d wake-ups in 200 ms)", busy);
	is_int(swrite(t, 5000), 0, "5000 more bytes queued");
	sr_until(e, &r, n + 8000, 2000);
	ok(r.len == n + 8000 && pattern_ok(r.buf + n, 8000, 0), "and received");
	busy = busy_dispatches(e, 200);
	ok(busy <= 2, "and the loop sleeps again (%d wake-ups in 200 ms)", busy);
	sr_close(&r);
	spin(e, 20);
	is_int(t->closed, 1, "closed() once");
	control_free(c);
}

int main(void)
{
	const char *group;
	sd_event *e = NULL;
	gid_t gid = 0;

	test_parse_basic();
	test_request_take();
	test_parse_split();
	test_parse_pipelined();
	test_parse_incomplete();
	test_parse_malformed();
	test_parse_limits();
	test_reply_build();
	test_reply_roundtrip();

	if (!mkdtemp(tmpdir) || chmod(tmpdir, 0755) < 0 || sd_event_new(&e) < 0) {
		ok(0, "temporary directory and event loop");
		return tap_done();
	}
	snprintf(sock_path, sizeof(sock_path), "%s/run/control.sock", tmpdir);
	group = any_group(&gid);
	test_server_basic(e, group, gid);
	test_server_backpressure(e);
	test_server_limits(e);
	test_server_socket_file(e);
	test_server_privilege(e, group, gid);
	test_stream_basic(e);
	test_stream_whole(e);
	test_stream_wrap(e);
	test_stream_slow(e);
	test_stream_end(e);
	test_stream_close_paths(e);
	test_stream_half_close(e);
	test_stream_limit(e);
	test_stream_idle(e);
	test_stream_large_reply(e);

	unlink(sock_path);
	snprintf(sock_path, sizeof(sock_path), "%s/run", tmpdir);
	rmdir(sock_path);
	rmdir(tmpdir);
	sd_event_unref(e);
	return tap_done();
}
