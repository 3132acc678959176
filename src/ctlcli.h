/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What ipmodctl does without I/O, so that the unit tests can hold it to
 * exact bytes: the command line into a request of the control protocol, rule
 * specs into libconfig text, trace events into JSON, and the counting of a
 * pcapng stream as it goes by.
 */
#ifndef IPMODD_CTLCLI_H
#define IPMODD_CTLCLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctlproto.h"
#include "pcapng.h"

enum ctlcli_cmd {
	CTLCLI_STATUS,
	CTLCLI_RULES,
	CTLCLI_ADD,
	CTLCLI_DEL,
	CTLCLI_REPLACE,
	CTLCLI_FLUSH,
	CTLCLI_RELOAD,
	CTLCLI_RESET,
	CTLCLI_SAVE,
	CTLCLI_TRACE,
	CTLCLI_CAPTURE,
	CTLCLI_EXPLAIN,
	CTLCLI_FLOWS,
	CTLCLI_MONITOR,
	CTLCLI_METRICS,
	CTLCLI_VERSION,
	CTLCLI_HELP,
};

struct ctlcli;
struct ctlcli_option;

struct ctlcli_subcommand {
	const char *name;
	const char *alias;		/* NULL or a second name */
	enum ctlcli_cmd cmd;
	const char *args;		/* synopsis after the name, "" for none */
	const char *description;
	const char *help;		/* NULL or more for "help COMMAND": options, examples */
	/* Build c->request from the words after the command (options removed). */
	int (*parse)(struct ctlcli *c, char *const *words, size_t n, char *err, size_t errlen);
	const char *request_key;	/* the request's first line (parse_fixed, parse_words) */
	const char *request_value;
	const char *no_words;		/* parse_words: the error when no word is given, or NULL */
	const struct ctlcli_option *options;	/* the command's own, tried before -s/--json/-V/-h */
	size_t n_options;
	bool change;			/* changes the rules: the request carries the command line */
	const char *no_json;		/* why --json is refused, NULL when it is not */
};

/* The subcommands, in the order "ipmodctl help" lists them. */
extern const struct ctlcli_subcommand ctlcli_subcommands[];
extern const size_t ctlcli_n_subcommands;

const struct ctlcli_subcommand *ctlcli_find(const char *name);

enum ctlcli_when {
	CTLCLI_WHEN_DEFAULT,
	CTLCLI_WHEN_BEFORE,
	CTLCLI_WHEN_AFTER,
	CTLCLI_WHEN_BOTH,
};

/* help keys / commands / values KEY: one word a line, for the shell completions. */
enum ctlcli_list {
	CTLCLI_LIST_NONE,
	CTLCLI_LIST_KEYS,	/* the rule keys of src/rule.c */
	CTLCLI_LIST_KEYS_LONG,	/* the same with kind, fast path and value, one row a line */
	CTLCLI_LIST_COMMANDS,	/* the commands and their aliases */
	CTLCLI_LIST_VALUES,	/* the names a key's value can take */
};

#define CTLCLI_INTERVAL_MAX 3600	/* -i N: seconds */

/* Flags of ctlcli_parse(). */
#define CTLCLI_STDOUT_TTY 0x1		/* standard output is a terminal */

struct ctlcli {
	const struct ctlcli_subcommand *sub;	/* the command given, or status */
	enum ctlcli_cmd cmd;			/* sub->cmd, or HELP / VERSION for -h / -V */
	const struct ctlcli_subcommand *topic;	/* help: about this command, NULL for all */
	enum ctlcli_list list;			/* help keys / commands / values */
	const char *list_key;			/* help values KEY */

	const char *socket;	/* -s, NULL for the default */
	bool json;		/* --json */

	/* status */
	bool all;		/* -a: every key, not the summary */
	bool human;		/* -h (after status): K/M/G units */
	/* status and rules */
	unsigned int interval;	/* -i N, --watch (1 s): redraw every N s, 0 for once */

	/* capture */
	const char *output;	/* -w FILE, "-" for standard output, NULL for neither */
	bool have_count;
	uint64_t count;		/* -c */
	enum ctlcli_when when;	/* --when */
	uint64_t snaplen;	/* --snaplen, 0 for the daemon's default */

	/* metrics */
	bool http;		/* --http: answer one HTTP request on standard input */

	/* add, flush */
	const char *expire_for;	/* add --for DURATION: the rule's expire= */
	bool impairments;	/* flush --impairments: only the impairing rules */

	/* The request to send ("" for version and help), NUL-terminated. */
	char request[CTL_REQUEST_MAX + 1];
	size_t request_len;
	size_t request_lines;
};

/*
 * Parse a whole command line, argv[0] being the program: global options
 * (-s PATH, --json, -V, -h) before or after the command, the command, its
 * options and words.  Returns 0, or a negative errno with a one-line message
 * (without "ipmodctl: ") in err, every one a usage error:
 *   -EINVAL    unknown command or option, a bad or missing argument
 *   -E2BIG     more key=value words than a request holds, or too many bytes
 *   -EMSGSIZE  a word longer than a request line
 * ret->sub is set as soon as the command is known, for its usage line.
 */
int ctlcli_parse(int argc, char *const *argv, unsigned int flags, struct ctlcli *ret,
		 char *err, size_t errlen);

/*
 * One rule spec from get=rules ("name=x proto=icmp dport=23 ...", words split
 * on single spaces and at their first '=') as a libconfig group:
 *   { name = "x"; proto = "icmp"; dport = 23; }
 * Values of decimal digits that libconfig reads back as the same 32-bit
 * number are left bare; everything else is a string with libconfig escapes.
 * Returns the length written (NUL excluded), -EINVAL for a word that is not
 * key=value or whose key is no libconfig name, -ENOSPC if out is too small.
 */
int ctlcli_libconfig_rule(const char *spec, char *out, size_t outlen);
/* One value, as above: 23, or "echo-request" in quotes. */
int ctlcli_libconfig_value(const char *value, char *out, size_t outlen);

/*
 * s as a JSON string, quotes included: '"' '\\' and control bytes escaped,
 * bytes that are not UTF-8 replaced by U+FFFD.  Returns the length written
 * (NUL excluded) or -ENOSPC.
 */
int ctlcli_json_string(const char *s, char *out, size_t outlen);
/* Whether a value is printed as a JSON number: 0, or digits without a leading 0. */
bool ctlcli_json_is_uint(const char *s);
/* Or a decimal with a fraction ("0.25", "1712345678.123456"). */
bool ctlcli_json_is_number(const char *s);

/*
 * The words of a trace event ("time=... src=... rule=x set-ttl=64 result=accept")
 * as one JSON object.  Each rule= opens an entry of "rules" with "name" and
 * the words up to the next rule= or result=; the other words are top-level
 * keys; values that read as numbers (digits, a fraction) are numbers, the
 * rest strings; impair= and delay= are arrays (of their comma-separated
 * words); "rules" is always there.  Returns the length written or -ENOSPC.
 */
int ctlcli_trace_json(const char *words, char *out, size_t outlen);

#endif
