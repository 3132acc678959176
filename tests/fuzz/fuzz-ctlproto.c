/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the control protocol parser and the trace/capture
 * options.  The first input byte sets the size of the chunks the rest is fed
 * in (0: all at once), as reads off a socket would cut it.  The rest is read
 * as a run of requests, the way the server reads a connection, and as one
 * reply, the way ipmodctl reads one.  Invariants:
 * - chunked and whole feeding give the same messages and the same error at
 *   the same byte;
 * - a complete message is its pairs written back as "key=value\n" lines and
 *   a blank line, byte for byte; keys are [a-z0-9-]+, values hold no control
 *   byte, and the bounds hold;
 * - an error is sticky and has a reason and a line number;
 * - a reply view ends in errno= (and error=) and has non-negative errno;
 * - monitor_opts_parse() of a request either fills in options within their
 *   documented ranges or fails with a message and no filter to free.
 *
 * By hand: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *	tests/fuzz/fuzz-ctlproto.c src/ctlproto.c src/monitor.c src/packet.c \
 *	src/rule.c src/chain.c src/forge.c src/impair.c -o fuzz-ctlproto
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctlproto.h"
#include "monitor.h"

#define check(cond)                    \
	do {                           \
		if (!(cond))           \
			abort();       \
	} while (0)

/* A few requests' worth and a reply bigger than a request; keeps runs fast. */
#define INPUT_MAX (4 * CTL_REQUEST_MAX)
#define REPLY_BUF (2 * CTL_REQUEST_MAX)
#define REPLY_PAIRS 4096
#define EVENTS_MAX 256

/* What one pass over the input saw: each message's end or error, by offset. */
struct event {
	size_t end;		/* offset in the input just past the message, or of the bad byte */
	int state;		/* 1 complete, < 0 the error */
	size_t n;		/* lines */
};

struct pass {
	struct event ev[EVENTS_MAX];
	size_t n_ev;
	bool pending;		/* a message was left incomplete at the end */
};

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* The complete message is exactly msg[0..len): pairs as lines, then the blank line. */
static void check_message(const struct ctl_parser *p, const uint8_t *msg, size_t len,
			  size_t max_size)
{
	size_t off = 0;

	check(p->n >= 1 && p->n <= p->max_pairs);
	check(len <= max_size);
	for (size_t i = 0; i < p->n; i++) {
		const char *k = p->pairs[i].key, *v = p->pairs[i].value;
		size_t kl = strlen(k), vl = strlen(v);

		check(kl > 0 && kl + 1 + vl + 1 <= CTL_LINE_MAX);
		for (size_t j = 0; j < kl; j++)
			check(is_key_char(k[j]));
		for (size_t j = 0; j < vl; j++)
			check((unsigned char)v[j] >= 0x20 && v[j] != 0x7f);
		check(off + kl + 1 + vl + 1 <= len);
		check(memcmp(msg + off, k, kl) == 0 && msg[off + kl] == '=');
		check(memcmp(msg + off + kl + 1, v, vl) == 0 && msg[off + kl + 1 + vl] == '\n');
		off += kl + 1 + vl + 1;
	}
	check(off + 1 == len && msg[off] == '\n');
}

static void check_opts(const struct ctl_request *req)
{
	struct monitor_opts o;
	char err[256];
	int r;

	err[0] = '\0';
	r = monitor_opts_parse(req, &o, err, sizeof(err));
	if (strcmp(req->command, "trace") != 0 && strcmp(req->command, "capture") != 0)
		check(r == -EINVAL);
	if (r < 0) {
		check(r == -EINVAL || r == -ENOMEM);
		check(r != -EINVAL || err[0] != '\0');
		check(o.filter == NULL);
		return;
	}
	check(r == 0);
	check(strlen(o.rule) < sizeof(o.rule));
	if (o.kind == MONITOR_TRACE) {
		check(strcmp(req->command, "trace") == 0 && strcmp(req->arg, "1") == 0);
		check(o.when == 0 && o.count == 0 && o.snaplen == 0);
	} else {
		check(o.kind == MONITOR_CAPTURE && strcmp(req->command, "capture") == 0);
		check(o.filter == NULL);
		check(o.when >= 1 && o.when <= (MONITOR_BEFORE | MONITOR_AFTER));
		check(o.snaplen >= 1 && o.snaplen <= MONITOR_SNAPLEN_DEFAULT);
		check(strcmp(req->arg, "all") == 0 ? o.rule[0] == '\0'
						   : strcmp(o.rule, req->arg) == 0);
	}
	monitor_opts_done(&o);
	check(o.filter == NULL);
}

static void on_request(const struct ctl_parser *p)
{
	struct ctl_request req;

	check(ctl_parser_request(p, &req) == 0);
	check(req.command == p->pairs[0].key && req.arg == p->pairs[0].value);
	check(req.n == p->n - 1 && req.pairs == p->pairs + 1);
	check_opts(&req);
}

static void on_reply(const struct ctl_parser *p)
{
	struct ctl_response resp;
	int r;

	r = ctl_parser_response(p, &resp);
	if (r < 0) {
		check(r == -EBADMSG);
		return;
	}
	check(resp.errnum >= 0);
	check(resp.pairs == p->pairs && resp.n + 1 + (resp.error ? 1 : 0) == p->n);
	check(strcmp(p->pairs[resp.n].key, "errno") == 0);
	check(!resp.error || (strcmp(p->pairs[p->n - 1].key, "error") == 0 &&
			      resp.error == p->pairs[p->n - 1].value));
}

/*
 * Feed data in chunks of chunk bytes (0: whole), message after message
 * (reset after each, as the server does) until an error or the end.
 */
static void run(struct ctl_parser *p, const uint8_t *data, size_t size, size_t chunk,
		bool many, void (*on_message)(const struct ctl_parser *), struct pass *out)
{
	size_t off = 0, start = 0, used;
	int r = 0;

	memset(out, 0, sizeof(*out));
	ctl_parser_reset(p);
	while (off < size) {
		size_t len = chunk && chunk < size - off ? chunk : size - off;

		r = ctl_parser_feed(p, data + off, len, &used);
		check(used <= len);
		if (r == 0) {
			check(used == len);
			off += len;
			continue;
		}
		off += used;
		check(out->n_ev < EVENTS_MAX);
		out->ev[out->n_ev++] = (struct event){ off, r, p->n };
		if (r < 0) {
			unsigned int lineno = 0;
			size_t again;

			check(r == -EMSGSIZE || r == -E2BIG || r == -EBADMSG);
			check(ctl_parser_error(p, &lineno) != NULL && lineno >= 1);
			check(!ctl_parser_pending(p));
			/* Sticky: nothing more is taken. */
			check(ctl_parser_feed(p, data + off, size - off, &again) == r && again == 0);
			return;
		}
		check(r == 1 && !ctl_parser_pending(p));
		check_message(p, data + start, off - start, p->size);
		on_message(p);
		check(ctl_parser_feed(p, "x", 1, &used) == 1 && used == 0);
		if (!many || out->n_ev == EVENTS_MAX)
			return;
		ctl_parser_reset(p);
		start = off;
	}
	out->pending = ctl_parser_pending(p);
	check(out->pending == (off > start));
}

static bool same_pass(const struct pass *a, const struct pass *b)
{
	if (a->n_ev != b->n_ev || a->pending != b->pending)
		return false;
	for (size_t i = 0; i < a->n_ev; i++)
		if (a->ev[i].end != b->ev[i].end || a->ev[i].state != b->ev[i].state ||
		    a->ev[i].n != b->ev[i].n)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pass whole, chunked;
	struct ctl_parser p;
	char *buf;
	struct ctl_pair *pairs;
	size_t chunk;

	if (size == 0 || size > INPUT_MAX)
		return 0;
	chunk = data[0];
	data++;
	size--;

	/* Exactly the server's storage, on the heap so that ASan sees its ends. */
	buf = malloc(CTL_REQUEST_MAX);
	pairs = malloc(CTL_KEYS_MAX * sizeof(*pairs));
	check(buf && pairs);
	ctl_parser_init(&p, buf, CTL_REQUEST_MAX, pairs, CTL_KEYS_MAX);
	run(&p, data, size, 0, true, on_request, &whole);
	run(&p, data, size, chunk, true, on_request, &chunked);
	check(same_pass(&whole, &chunked));
	free(buf);
	free(pairs);

	buf = malloc(REPLY_BUF);
	pairs = malloc(REPLY_PAIRS * sizeof(*pairs));
	check(buf && pairs);
	ctl_parser_init(&p, buf, REPLY_BUF, pairs, REPLY_PAIRS);
	run(&p, data, size, 0, false, on_reply, &whole);
	run(&p, data, size, chunk, false, on_reply, &chunked);
	check(same_pass(&whole, &chunked));
	free(buf);
	free(pairs);
	return 0;
}
