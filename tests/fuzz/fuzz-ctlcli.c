/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for what ipmodctl parses: its command line and the
 * daemon's replies it turns into text.  The input, split at '\n', is the
 * argv after "ipmodctl" (the first byte picks whether standard output is a
 * terminal); as one string it is also a rule spec of get=rules, a trace
 * event and a JSON string value.  For any input:
 * - ctlcli_parse() succeeds with a request of request_len bytes, at most
 *   CTL_REQUEST_MAX, that the daemon's parser reads as one complete request
 *   of request_lines lines (none for help, version and metrics, which
 *   makes its own two requests), or fails with a
 *   usage error and a one-line message;
 * - ctlcli_libconfig_rule(), ctlcli_trace_json() and ctlcli_json_string()
 *   return the length they wrote, or -EINVAL/-ENOSPC, never more than the
 *   room they were given; a JSON string is quoted and has no raw control
 *   byte.
 *
 * By hand: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *	tests/fuzz/fuzz-ctlcli.c src/ctlcli.c src/ctlproto.c -o fuzz-ctlcli
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctlcli.h"
#include "ctlproto.h"

#define check(cond)                    \
	do {                           \
		if (!(cond))           \
			abort();       \
	} while (0)

#define INPUT_MAX (64u << 10)
#define WORDS_MAX 256

static char text[INPUT_MAX + 1], words[INPUT_MAX + 1], out[4096];
static char pbuf[CTL_REQUEST_MAX];
static struct ctl_pair pairs[CTL_REQUEST_MAX / 2];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(unsigned int flags, const char *w, size_t len)
{
	char *argv[WORDS_MAX + 2], err[256];
	struct ctl_parser p;
	struct ctl_request req;
	struct ctlcli c;
	size_t argc = 1, consumed = 0;
	int r;

	memcpy(words, w, len);
	words[len] = '\0';
	argv[0] = "ipmodctl";
	for (char *s = words; argc <= WORDS_MAX; argc++) {
		char *nl = strchr(s, '\n');

		argv[argc] = s;
		if (!nl) {
			argc++;
			break;
		}
		*nl = '\0';
		s = nl + 1;
	}
	argv[argc] = NULL;
	memset(err, 'x', sizeof(err));
	r = ctlcli_parse((int)argc, argv, flags, &c, err, sizeof(err));
	if (r < 0) {
		check(r == -EINVAL || r == -E2BIG || r == -EMSGSIZE);
		check(memchr(err, '\0', sizeof(err)) && err[0] && !strchr(err, '\n'));
		return;
	}
	check(r == 0);
	check(c.request_len <= CTL_REQUEST_MAX && strlen(c.request) == c.request_len);
	if (!c.request_len) {
		check(c.cmd == CTLCLI_HELP || c.cmd == CTLCLI_VERSION || c.cmd == CTLCLI_METRICS);
		return;
	}
	ctl_parser_init(&p, pbuf, sizeof(pbuf), pairs, sizeof(pairs) / sizeof(pairs[0]));
	check(ctl_parser_feed(&p, c.request, c.request_len, &consumed) == 1);
	check(consumed == c.request_len);
	check(ctl_parser_request(&p, &req) == 0);
	check(req.n + 1 == c.request_lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int r;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	check_parse(data[0] & 1 ? CTLCLI_STDOUT_TTY : 0, (const char *)data + 1, size - 1);

	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t room = 1; room <= sizeof(out); room *= 8) {
		r = ctlcli_libconfig_rule(text, out, room);
		check(r == -EINVAL || r == -ENOSPC || (r >= 0 && (size_t)r < room &&
						       strlen(out) == (size_t)r));
		r = ctlcli_trace_json(text, out, room);
		check(r == -ENOSPC || (r >= 0 && (size_t)r < room && strlen(out) == (size_t)r &&
				       out[0] == '{' && out[r - 1] == '}'));
		r = ctlcli_json_string(text, out, room);
		check(r == -ENOSPC || (r >= 2 && (size_t)r < room && strlen(out) == (size_t)r &&
				       out[0] == '"' && out[r - 1] == '"'));
		for (int i = 0; r > 0 && i < r; i++)
			check((unsigned char)out[i] >= 0x20);
	}
	return 0;
}
