/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctlcli.h"
#include "rule.h"
#include "util.h"

/* A request line holds "key=value"; its '\n' is the last of CTL_LINE_MAX bytes. */
#define WORD_MAX (CTL_LINE_MAX - 1)
/* key=value words of a request: every line but the command. */
#define REQUEST_WORDS_MAX (CTL_KEYS_MAX - 1)
/* Words after a command: "before NAME" and the key=value words. */
#define WORDS_MAX (REQUEST_WORDS_MAX + 2)
/* How much of a word an error message quotes. */
#define QUOTE_MAX 64

/* A word from the command line, fit to quote in a message. */
struct quoted {
	char s[QUOTE_MAX + 4];
};

static struct quoted q(const char *word)
{
	struct quoted r;

	str_sanitize(r.s, sizeof(r.s), word);
	return r;
}

#define Q(word) (q(word).s)

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool is_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* Decimal digits only, at most max; leading zeros allowed. */
static int parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!is_digits(s))
		return -EINVAL;
	for (; *s; s++) {
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

/* ---- the request ---------------------------------------------------------- */

static int req_add(struct ctlcli *c, const char *key, const char *value, char *err,
		   size_t errlen)
{
	size_t klen = strlen(key), vlen = strlen(value), len = klen + 1 + vlen + 1;

	if (has_control(value))
		return err_set(err, errlen, -EINVAL, "%s: '%s': control characters are not allowed",
			       c->sub->name, Q(value));
	if (klen + 1 + vlen > WORD_MAX)
		return err_set(err, errlen, -EMSGSIZE, "%s: '%s=%s': longer than %d bytes",
			       c->sub->name, Q(key), Q(value), WORD_MAX);
	if (c->request_lines + 1 > CTL_KEYS_MAX)
		return err_set(err, errlen, -E2BIG,
			       "%s: too many key=value words (a request holds at most %d)",
			       c->sub->name, REQUEST_WORDS_MAX);
	/* The blank line that ends the request must fit too. */
	if (c->request_len + len + 1 > CTL_REQUEST_MAX)
		return err_set(err, errlen, -E2BIG, "%s: request longer than %d bytes", c->sub->name,
			       CTL_REQUEST_MAX);
	memcpy(c->request + c->request_len, key, klen);
	c->request[c->request_len + klen] = '=';
	memcpy(c->request + c->request_len + klen + 1, value, vlen);
	c->request[c->request_len + len - 1] = '\n';
	c->request_len += len;
	c->request[c->request_len] = '\0';
	c->request_lines++;
	return 0;
}

static void req_finish(struct ctlcli *c)
{
	c->request[c->request_len++] = '\n';
	c->request[c->request_len] = '\0';
}

/* A key=value word from the command line, as one line of the request. */
static int req_add_word(struct ctlcli *c, const char *word, char *err, size_t errlen)
{
	char key[WORD_MAX + 1];
	const char *eq = strchr(word, '=');
	size_t klen, i;

	if (!eq) {
		if (!strcmp(word, "at") || !strcmp(word, "before") || !strcmp(word, "after"))
			return err_set(err, errlen, -EINVAL,
				       "%s: '%s' is not key=value (a position goes first: "
				       "add %s ... key=value...)", c->sub->name, word, word);
		return err_set(err, errlen, -EINVAL, "%s: '%s' is not key=value", c->sub->name,
			       Q(word));
	}
	klen = (size_t)(eq - word);
	if (klen == 0)
		return err_set(err, errlen, -EINVAL, "%s: '%s': no key before '='", c->sub->name,
			       Q(word));
	for (i = 0; i < klen; i++)
		if (!is_key_char(word[i]))
			return err_set(err, errlen, -EINVAL,
				       "%s: '%s': a key is lower-case letters, digits and '-'",
				       c->sub->name, Q(word));
	if (!eq[1])
		return err_set(err, errlen, -EINVAL, "%s: '%s': no value after '='", c->sub->name,
			       Q(word));
	if (klen > WORD_MAX)
		return err_set(err, errlen, -EMSGSIZE, "%s: '%s': longer than %d bytes",
			       c->sub->name, Q(word), WORD_MAX);
	memcpy(key, word, klen);
	key[klen] = '\0';
	return req_add(c, key, eq + 1, err, errlen);
}

static int req_add_words(struct ctlcli *c, char *const *words, size_t n, char *err,
			 size_t errlen)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		r = req_add_word(c, words[i], err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The daemon knows which rules exist; this only keeps the request well-formed. */
static int check_name(const struct ctlcli *c, const char *name, char *err, size_t errlen)
{
	if (!*name || strchr(name, '=') || has_control(name))
		return err_set(err, errlen, -EINVAL, "%s: '%s' is not a rule name", c->sub->name,
			       Q(name));
	return 0;
}

/*
 * argv joined by blanks, escaped as ipmodd logs a command line (see
 * CTL_CLIENT_CMDLINE): at most max bytes, cut between escapes with "..." when
 * longer.  Returns the length written to out (max + 1 bytes), 0 for nothing.
 */
static size_t cmdline_escape(int argc, char *const *argv, char *out, size_t max)
{
	size_t len = 0, keep = 0, plen;
	char piece[8];

	out[0] = '\0';
	for (int i = 0; i < argc; i++) {
		const unsigned char *s = (const unsigned char *)argv[i];
		bool blank = i > 0;

		while (blank || *s) {
			unsigned char ch = blank ? ' ' : *s++;

			blank = false;
			if (ch == '\\')
				plen = (size_t)snprintf(piece, sizeof(piece), "\\\\");
			else if (ch >= 0x20 && ch < 0x7f)
				plen = (size_t)snprintf(piece, sizeof(piece), "%c", ch);
			else
				plen = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", ch);
			/* Where "..." would still fit, should the rest not. */
			if (len + 3 <= max)
				keep = len;
			if (len + plen > max) {
				if (max < 3)
					return 0;
				memcpy(out + keep, "...", 4);
				return keep + 3;
			}
			memcpy(out + len, piece, plen + 1);
			len += plen;
		}
	}
	return len;
}

/*
 * A change's request ends with the command line that asked for it, for
 * the daemon's audit trail (ipmodd may not read this process's /proc):
 * cut to what the request has room for, left out when it has none.
 */
static int req_add_cmdline(struct ctlcli *c, int argc, char *const *argv, char *err,
			   size_t errlen)
{
	char value[CTL_CMDLINE_MAX + 1];
	/* "client-cmdline=", its '\n' and the blank line that ends the request. */
	size_t line = sizeof(CTL_CLIENT_CMDLINE "=") - 1 + 1 + 1, max = CTL_CMDLINE_MAX;

	if (c->request_len < 2 || c->request_lines + 1 > CTL_KEYS_MAX)
		return 0;
	/* Reopen the finished request. */
	c->request_len--;
	if (c->request_len + line < CTL_REQUEST_MAX) {
		if (max > CTL_REQUEST_MAX - c->request_len - line)
			max = CTL_REQUEST_MAX - c->request_len - line;
		if (cmdline_escape(argc, argv, value, max)) {
			int r = req_add(c, CTL_CLIENT_CMDLINE, value, err, errlen);

			if (r < 0)
				return r;
		}
	}
	req_finish(c);
	return 0;
}

/* ---- options ------------------------------------------------------------ */

/* Each command's own options: its row of ctlcli_subcommands points to them. */
enum {
	OPT_SOCKET = 1,
	OPT_JSON,
	OPT_VERSION,
	OPT_HELP,
	OPT_COUNT,
	OPT_WRITE,
	OPT_WHEN,
	OPT_SNAPLEN,
	OPT_ALL,
	OPT_HUMAN,
	OPT_INTERVAL,
	OPT_WATCH,
	OPT_HTTP,
	OPT_FOR,
	OPT_IMPAIRMENTS,
};

struct ctlcli_option {
	int id;
	char shortopt;		/* 0 for a long option only */
	const char *longopt;
	bool has_arg;
};

static const struct ctlcli_option global_options[] = {
	{ OPT_SOCKET, 's', "socket", true },
	{ OPT_JSON, 0, "json", false },
	{ OPT_VERSION, 'V', "version", false },
	{ OPT_HELP, 'h', "help", false },
};

static const struct ctlcli_option status_options[] = {
	{ OPT_ALL, 'a', "all", false },
	{ OPT_HUMAN, 'h', "human", false },
	{ OPT_INTERVAL, 'i', "interval", true },
	{ OPT_WATCH, 0, "watch", false },
};

static const struct ctlcli_option rules_options[] = {
	{ OPT_INTERVAL, 'i', "interval", true },
	{ OPT_WATCH, 0, "watch", false },
};

static const struct ctlcli_option metrics_options[] = {
	{ OPT_HTTP, 0, "http", false },
};

static const struct ctlcli_option add_options[] = {
	{ OPT_FOR, 0, "for", true },
};

static const struct ctlcli_option flush_options[] = {
	{ OPT_IMPAIRMENTS, 0, "impairments", false },
};

static const struct ctlcli_option capture_options[] = {
	{ OPT_COUNT, 'c', "count", true },
	{ OPT_WRITE, 'w', "write", true },
	{ OPT_WHEN, 0, "when", true },
	{ OPT_SNAPLEN, 0, "snaplen", true },
};

/* ---- subcommands ---------------------------------------------------------- */

static int parse_fixed(struct ctlcli *c, char *const *words, size_t n, char *err,
		       size_t errlen)
{
	const char *value = c->impairments ? "impairments" : c->sub->request_value;
	int r;

	if (n)
		return err_set(err, errlen, -EINVAL, "%s takes no arguments (got '%s')",
			       c->sub->name, Q(words[0]));
	if (!c->sub->request_key)
		return 0;
	r = req_add(c, c->sub->request_key, value, err, errlen);
	if (r < 0)
		return r;
	req_finish(c);
	return 0;
}

static int parse_add(struct ctlcli *c, char *const *words, size_t n, char *err,
		     size_t errlen)
{
	char pos[WORD_MAX + 1] = "end";
	size_t i = 0, plen, nlen;
	uint64_t v;
	int r;

	if (n && !strcmp(words[0], "at")) {
		if (n < 2)
			return err_set(err, errlen, -EINVAL, "add: 'at' needs a position");
		if (parse_uint(words[1], UINT32_MAX, &v) < 0 || v == 0)
			return err_set(err, errlen, -EINVAL,
				       "add: at '%s': a position is an integer from 1", Q(words[1]));
		snprintf(pos, sizeof(pos), "%" PRIu64, v);
		i = 2;
	} else if (n && (!strcmp(words[0], "before") || !strcmp(words[0], "after"))) {
		if (n < 2)
			return err_set(err, errlen, -EINVAL, "add: '%s' needs a rule name", words[0]);
		r = check_name(c, words[1], err, errlen);
		if (r < 0)
			return r;
		plen = strlen(words[0]);
		nlen = strlen(words[1]);
		if (plen + 1 + nlen >= sizeof(pos))
			return err_set(err, errlen, -EMSGSIZE, "add: '%s': longer than %d bytes",
				       Q(words[1]), WORD_MAX);
		memcpy(pos, words[0], plen);
		pos[plen] = ':';
		memcpy(pos + plen + 1, words[1], nlen + 1);
		i = 2;
	}
	if (i == n)
		return err_set(err, errlen, -EINVAL, "add: no rule given (key=value words)");
	r = req_add(c, "add", pos, err, errlen);
	if (r < 0)
		return r;
	for (; i < n; i++) {
		char cwd[WORD_MAX + 1], abs[WORD_MAX + 1];

		/* rate=@FILE: the daemon reads it, from its own directory; make it absolute. */
		if (!strncmp(words[i], "rate=@", 6) && words[i][6] && words[i][6] != '/' &&
		    getcwd(cwd, sizeof(cwd)) &&
		    (size_t)snprintf(abs, sizeof(abs), "@%s/%s", cwd, words[i] + 6) < sizeof(abs)) {
			r = req_add(c, "rate", abs, err, errlen);
			if (r < 0)
				return r;
			continue;
		}
		r = req_add_word(c, words[i], err, errlen);
		if (r < 0)
			return r;
	}
	if (c->expire_for) {
		r = req_add(c, "expire", c->expire_for, err, errlen);
		if (r < 0)
			return r;
	}
	req_finish(c);
	return 0;
}

static int parse_del(struct ctlcli *c, char *const *words, size_t n, char *err,
		     size_t errlen)
{
	int r;

	if (n == 0)
		return err_set(err, errlen, -EINVAL, "%s: which rule? (%s NAME)", c->sub->name,
			       c->sub->name);
	if (n > 1)
		return err_set(err, errlen, -EINVAL, "%s: one rule at a time (got '%s' too)",
			       c->sub->name, Q(words[1]));
	r = check_name(c, words[0], err, errlen);
	if (r < 0)
		return r;
	r = req_add(c, "del", words[0], err, errlen);
	if (r < 0)
		return r;
	req_finish(c);
	return 0;
}

static int parse_replace(struct ctlcli *c, char *const *words, size_t n, char *err,
			 size_t errlen)
{
	int r;

	if (n == 0)
		return err_set(err, errlen, -EINVAL,
			       "replace: which rule? (replace NAME key=value...)");
	r = check_name(c, words[0], err, errlen);
	if (r < 0)
		return r;
	if (n == 1)
		return err_set(err, errlen, -EINVAL, "replace: no rule given (key=value words)");
	r = req_add(c, "replace", words[0], err, errlen);
	if (r < 0)
		return r;
	r = req_add_words(c, words + 1, n - 1, err, errlen);
	if (r < 0)
		return r;
	req_finish(c);
	return 0;
}

/* The command's request line, then the key=value words as they are (trace, explain). */
static int parse_words(struct ctlcli *c, char *const *words, size_t n, char *err,
		       size_t errlen)
{
	int r;

	if (n == 0 && c->sub->no_words)
		return err_set(err, errlen, -EINVAL, "%s", c->sub->no_words);
	r = req_add(c, c->sub->request_key, c->sub->request_value, err, errlen);
	if (r < 0)
		return r;
	r = req_add_words(c, words, n, err, errlen);
	if (r < 0)
		return r;
	req_finish(c);
	return 0;
}

static int parse_capture(struct ctlcli *c, char *const *words, size_t n, char *err,
			 size_t errlen)
{
	static const char *const whens[] = {
		[CTLCLI_WHEN_BEFORE] = "before",
		[CTLCLI_WHEN_AFTER] = "after",
		[CTLCLI_WHEN_BOTH] = "both",
	};
	const char *rule = NULL;
	char num[24];
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (strncmp(words[i], "rule=", 5) != 0)
			return err_set(err, errlen, -EINVAL,
				       "capture: unexpected '%s' (only rule=NAME and options)",
				       Q(words[i]));
		if (rule)
			return err_set(err, errlen, -EINVAL, "capture: one rule=NAME at most");
		rule = words[i] + 5;
		r = check_name(c, rule, err, errlen);
		if (r < 0)
			return r;
	}
	r = req_add(c, "capture", rule ? rule : "all", err, errlen);
	if (r == 0 && c->when != CTLCLI_WHEN_DEFAULT)
		r = req_add(c, "when", whens[c->when], err, errlen);
	if (r == 0 && c->have_count) {
		snprintf(num, sizeof(num), "%" PRIu64, c->count);
		r = req_add(c, "count", num, err, errlen);
	}
	if (r == 0 && c->snaplen) {
		snprintf(num, sizeof(num), "%" PRIu64, c->snaplen);
		r = req_add(c, "snaplen", num, err, errlen);
	}
	if (r < 0)
		return r;
	req_finish(c);
	return 0;
}

/* Two requests, get=status and get=rules, made by ipmodctl itself: none here. */
static int parse_metrics(struct ctlcli *c, char *const *words, size_t n, char *err,
			 size_t errlen)
{
	if (n > 0)
		return err_set(err, errlen, -EINVAL, "metrics: unexpected '%s'", Q(words[0]));
	if (c->json)
		return err_set(err, errlen, -EINVAL, "metrics: no --json (the output is OpenMetrics text)");
	return 0;
}

static bool is_rule_key(const char *key)
{
	const char *k;
	unsigned int i;

	for (i = 0; (k = rule_key_name(i)); i++)
		if (!strcmp(k, key))
			return true;
	return false;
}

static int parse_help(struct ctlcli *c, char *const *words, size_t n, char *err,
		      size_t errlen)
{
	/* The lists of the shell completions: not commands, so no clash. */
	if (n >= 1 && !strcmp(words[0], "values")) {
		if (n != 2)
			return err_set(err, errlen, -EINVAL, "help values: one key (help values KEY)");
		if (!is_rule_key(words[1]))
			return err_set(err, errlen, -EINVAL,
				       "help values: unknown key '%s' (see 'ipmodctl help keys')",
				       Q(words[1]));
		c->list = CTLCLI_LIST_VALUES;
		c->list_key = words[1];
		return 0;
	}
	/* For people: the vocabulary's table, one row a line. */
	if (n == 2 && !strcmp(words[0], "keys") && !strcmp(words[1], "long")) {
		c->list = CTLCLI_LIST_KEYS_LONG;
		return 0;
	}
	if (n > 1)
		return err_set(err, errlen, -EINVAL, "help: one command at a time (got '%s' too)",
			       Q(words[1]));
	if (n == 1 && !strcmp(words[0], "keys")) {
		c->list = CTLCLI_LIST_KEYS;
		return 0;
	}
	if (n == 1 && !strcmp(words[0], "commands")) {
		c->list = CTLCLI_LIST_COMMANDS;
		return 0;
	}
	if (n == 1) {
		c->topic = ctlcli_find(words[0]);
		if (!c->topic)
			return err_set(err, errlen, -EINVAL, "help: unknown command '%s'",
				       Q(words[0]));
	}
	return 0;
}

#define OPTIONS(table) .options = (table), .n_options = ARRAY_SIZE(table)

/* add and replace take the same rule words. */
#define ADD_RULE_HELP \
	"\nThe key=value words are those of a rule in ipmodd.conf(5), e.g.\n" \
	"  ipmodctl add before fake-ping name=x proto=udp dport=53 verdict=drop\n"

const struct ctlcli_subcommand ctlcli_subcommands[] = {
	{ .name = "status", .cmd = CTLCLI_STATUS, .args = "[-a] [-h] [-i N | --watch]",
	  .description = "Show a summary of the daemon's state and counters (the default)",
	  .parse = parse_fixed, .request_key = "get", .request_value = "status",
	  OPTIONS(status_options),
	  .help = "\n  -a, --all          every counter, grouped (the default is a summary)\n"
		  "  -h, --human        K/M/G units (after status; before it, -h is help)\n"
		  "  -i, --interval N   redraw every N s with rates per second, until ^C\n"
		  "      --watch        -i 1\n" },
	{ .name = "rules", .alias = "list", .cmd = CTLCLI_RULES, .args = "[-i N | --watch]",
	  .description = "List the rules in chain order with their counters",
	  .parse = parse_fixed, .request_key = "get", .request_value = "rules",
	  OPTIONS(rules_options),
	  .help = "\n  -i, --interval N   redraw every N s with per-rule rates, until ^C\n"
		  "      --watch        -i 1\n" },
	{ .name = "add", .cmd = CTLCLI_ADD,
	  .args = "[at N | before NAME | after NAME] [--for DURATION] key=value...",
	  .description = "Add a rule to the running chain (at the end by default)",
	  .parse = parse_add, .change = true, OPTIONS(add_options),
	  .help = ADD_RULE_HELP
		  "\n  --for DURATION   remove the rule by itself after DURATION\n"
		  "                   (expire=: 500ms, 30s, 5m, 1h; up to 7 days)\n" },
	{ .name = "del", .alias = "delete", .cmd = CTLCLI_DEL, .args = "NAME",
	  .description = "Delete a rule from the running chain",
	  .parse = parse_del, .change = true },
	{ .name = "replace", .cmd = CTLCLI_REPLACE, .args = "NAME key=value...",
	  .description = "Replace a rule in place; its counters restart",
	  .parse = parse_replace, .change = true, .help = ADD_RULE_HELP },
	{ .name = "flush", .cmd = CTLCLI_FLUSH, .args = "[--impairments]",
	  .description = "Delete every rule (or every impairing one) from the running chain",
	  .parse = parse_fixed, .request_key = "flush", .request_value = "1", .change = true,
	  OPTIONS(flush_options),
	  .help = "\n  --impairments    only the impairing rules (and the packets they\n"
		  "                   hold); the other rules stay\n" },
	{ .name = "reload", .cmd = CTLCLI_RELOAD, .args = "",
	  .description = "Re-read the configuration file (live changes are lost)",
	  .parse = parse_fixed, .request_key = "reload", .request_value = "1", .change = true },
	{ .name = "reset", .cmd = CTLCLI_RESET, .args = "",
	  .description = "Zero the rule and forge counters",
	  .parse = parse_fixed, .request_key = "reset", .request_value = "counters",
	  .change = true },
	{ .name = "save", .cmd = CTLCLI_SAVE, .args = "",
	  .description = "Print the running rules as a libconfig 'rules = (...);' setting",
	  .parse = parse_fixed, .request_key = "get", .request_value = "rules",
	  .no_json = "save prints libconfig; 'rules --json' has the rules as JSON" },
	{ .name = "trace", .cmd = CTLCLI_TRACE, .args = "[key=value...]",
	  .description = "Print one line per packet, optionally only those matching the filter",
	  .parse = parse_words, .request_key = "trace", .request_value = "1",
	  .help = "\nFilter words: match keys of a rule (proto=, dst=, dport=, ...) and\n"
		  "rule=NAME for packets that matched that rule.  ^C stops.\n" },
	{ .name = "capture", .cmd = CTLCLI_CAPTURE,
	  .args = "[rule=NAME] [--when before|after|both] [-c COUNT] [-w FILE|-] [--snaplen N]",
	  .description = "Write packets as pcapng, before and after rewriting",
	  .parse = parse_capture, OPTIONS(capture_options),
	  .help = "\n  rule=NAME        only packets that matched this rule (default all)\n"
		  "  --when WHEN      before, after (rewriting) or both (the default)\n"
		  "  -c, --count N    stop after N packets (0: until ^C)\n"
		  "  -w, --write FILE write pcapng to FILE, or '-' for standard output\n"
		  "  --snaplen N      bytes kept of each packet\n\n"
		  "Without -w the output must not be a terminal:\n"
		  "  ipmodctl capture -c 10 | tcpdump -r -\n" },
	{ .name = "explain", .cmd = CTLCLI_EXPLAIN, .args = "key=value...",
	  .description = "Show which rules a packet with these fields would match, and the verdict",
	  .parse = parse_words, .request_key = "explain", .request_value = "1",
	  .no_words = "explain: no packet given (e.g. explain proto=tcp dst=192.0.2.7 dport=443)",
	  .help = "\nFields: proto= and dst= (needed), src=, sport=, dport=, flags=syn,ack,\n"
		  "icmp-type=, icmp-code=, ttl=, dscp=, len=, family=, direction=out|in.\n"
		  "Nothing is sent: the running chain is walked for a packet built from them.\n"
		  "  ipmodctl explain proto=tcp dst=192.0.2.7 dport=443 flags=syn\n" },
	{ .name = "flows", .cmd = CTLCLI_FLOWS,
	  .args = "[proto=P] [host=NAME] [port=N] [state=S] [limit=N]",
	  .description = "List the daemon's flows, most recently used first",
	  .parse = parse_words, .request_key = "flows", .request_value = "1",
	  .help = "\nFilters: proto=tcp|udp|icmp|icmpv6|N, host=NAME (the flow's host name or a\n"
		  "domain it is in), port=N (either side), state=new|established|closing\n"
		  "(repeatable), limit=N (1..50000, default 1000 flows listed).\n"
		  "  ipmodctl flows proto=tcp host=example.com\n" },
	{ .name = "monitor", .cmd = CTLCLI_MONITOR, .args = "",
	  .description = "Print one line per change of the rules (who, what, generation)",
	  .parse = parse_fixed, .request_key = "monitor", .request_value = "changes",
	  .help = "\nOne line per change (add, del, replace, flush, reload, reset), applied or\n"
		  "refused, with the client's uid, pid and command line.  ^C stops.\n" },
	{ .name = "metrics", .cmd = CTLCLI_METRICS, .args = "[--http]",
	  .description = "Print the counters as OpenMetrics text, or serve them to one HTTP request",
	  .parse = parse_metrics, OPTIONS(metrics_options),
	  .no_json = "metrics prints OpenMetrics text",
	  .help = "\n  --http           read one HTTP request on standard input (a socket from\n"
		  "                   ipmodd-metrics.socket) and answer GET /metrics\n" },
	{ .name = "version", .cmd = CTLCLI_VERSION, .args = "",
	  .description = "Print the version of ipmodctl", .parse = parse_fixed },
	{ .name = "help", .cmd = CTLCLI_HELP, .args = "[COMMAND | keys [long] | commands | values KEY]",
	  .description = "Show this help, or a command's", .parse = parse_help,
	  .no_json = "help is text" },
};

const size_t ctlcli_n_subcommands = ARRAY_SIZE(ctlcli_subcommands);

const struct ctlcli_subcommand *ctlcli_find(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ctlcli_subcommands); i++)
		if (!strcmp(name, ctlcli_subcommands[i].name) ||
		    (ctlcli_subcommands[i].alias && !strcmp(name, ctlcli_subcommands[i].alias)))
			return &ctlcli_subcommands[i];
	return NULL;
}

/* ---- option parsing ------------------------------------------------------ */

/*
 * argv[*i] is an option ("-x", "-xVALUE", "--name", "--name=VALUE"): returns
 * its id with *arg set (and *i moved past a separate value), 0 when it is
 * none of opts, or -EINVAL.
 */
static int match_option(const struct ctlcli_option *opts, size_t nopts, int argc,
			char *const *argv, int *i, const char **arg, char *err, size_t errlen)
{
	const char *a = argv[*i], *eq;
	size_t j, len;

	for (j = 0; j < nopts; j++) {
		const struct ctlcli_option *o = &opts[j];

		if (a[1] != '-') {
			if (!o->shortopt || a[1] != o->shortopt)
				continue;
			if (!o->has_arg) {
				if (a[2])
					return 0;
				return o->id;
			}
			if (a[2]) {
				*arg = a + 2;
				return o->id;
			}
		} else {
			eq = strchr(a + 2, '=');
			len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			if (strlen(o->longopt) != len || strncmp(a + 2, o->longopt, len) != 0)
				continue;
			if (!o->has_arg) {
				if (eq)
					return err_set(err, errlen, -EINVAL,
						       "option '--%s' takes no value", o->longopt);
				return o->id;
			}
			if (eq) {
				*arg = eq + 1;
				return o->id;
			}
		}
		if (*i + 1 >= argc)
			return err_set(err, errlen, -EINVAL, "option '%s' needs a value", Q(a));
		*arg = argv[++*i];
		return o->id;
	}
	return 0;
}

static int capture_option(struct ctlcli *c, int id, const char *opt, const char *arg,
			  char *err, size_t errlen)
{
	switch (id) {
	case OPT_COUNT:
		if (parse_uint(arg, UINT32_MAX, &c->count) < 0)
			return err_set(err, errlen, -EINVAL,
				       "capture: %s '%s': a count is an integer from 0 (0: no limit)",
				       Q(opt), Q(arg));
		c->have_count = true;
		return 0;
	case OPT_WRITE:
		if (!*arg)
			return err_set(err, errlen, -EINVAL, "capture: %s needs a file name or '-'",
				       Q(opt));
		c->output = arg;
		return 0;
	case OPT_WHEN:
		if (!strcmp(arg, "before"))
			c->when = CTLCLI_WHEN_BEFORE;
		else if (!strcmp(arg, "after"))
			c->when = CTLCLI_WHEN_AFTER;
		else if (!strcmp(arg, "both"))
			c->when = CTLCLI_WHEN_BOTH;
		else
			return err_set(err, errlen, -EINVAL,
				       "capture: --when '%s': must be before, after or both", Q(arg));
		return 0;
	case OPT_SNAPLEN:
		if (parse_uint(arg, UINT32_MAX, &c->snaplen) < 0 || c->snaplen == 0)
			return err_set(err, errlen, -EINVAL,
				       "capture: --snaplen '%s': a length is an integer from 1",
				       Q(arg));
		return 0;
	}
	return -EINVAL;
}

/* argv[*i] starts with '-' and is neither "-" nor "--". */
static int parse_option(struct ctlcli *c, int argc, char *const *argv, int *i, char *err,
			size_t errlen)
{
	const char *opt = argv[*i], *arg = NULL;
	int id;

	/*
	 * The command's own options first: after status, -h is --human ("ipmodctl
	 * -h" and "help status" stay the help).
	 */
	id = 0;
	if (c->sub && c->sub->n_options)
		id = match_option(c->sub->options, c->sub->n_options, argc, argv, i, &arg, err,
				  errlen);
	if (id == 0)
		id = match_option(global_options, ARRAY_SIZE(global_options), argc, argv, i, &arg,
				  err, errlen);
	if (id < 0)
		return id;
	switch (id) {
	case OPT_HTTP:
		c->http = true;
		return 0;
	case 0:
		if (c->sub)
			return err_set(err, errlen, -EINVAL, "%s: unknown option '%s'", c->sub->name,
				       Q(opt));
		return err_set(err, errlen, -EINVAL, "unknown option '%s'", Q(opt));
	case OPT_SOCKET:
		if (!*arg)
			return err_set(err, errlen, -EINVAL, "option '%s' needs a path", Q(opt));
		c->socket = arg;
		return 0;
	case OPT_JSON:
		c->json = true;
		return 0;
	case OPT_FOR:
		/* The daemon checks the duration, as it checks expire=. */
		if (!*arg || strchr(arg, '=') || has_control(arg))
			return err_set(err, errlen, -EINVAL, "add: --for '%s': a duration (30s, 5m, 1h)",
				       Q(arg));
		c->expire_for = arg;
		return 0;
	case OPT_IMPAIRMENTS:
		c->impairments = true;
		return 0;
	case OPT_VERSION:
		c->cmd = CTLCLI_VERSION;
		return 1;
	case OPT_HELP:
		c->cmd = CTLCLI_HELP;
		c->topic = c->sub;
		return 1;
	case OPT_ALL:
		c->all = true;
		return 0;
	case OPT_HUMAN:
		c->human = true;
		return 0;
	case OPT_WATCH:
		c->interval = 1;
		return 0;
	case OPT_INTERVAL: {
		uint64_t v;

		if (parse_uint(arg, CTLCLI_INTERVAL_MAX, &v) < 0 || v == 0)
			return err_set(err, errlen, -EINVAL,
				       "%s: %s '%s': an interval is seconds from 1 to %d", c->sub->name,
				       Q(opt), Q(arg), CTLCLI_INTERVAL_MAX);
		c->interval = (unsigned int)v;
		return 0;
	}
	}
	return capture_option(c, id, opt, arg, err, errlen);
}

int ctlcli_parse(int argc, char *const *argv, unsigned int flags, struct ctlcli *ret,
		 char *err, size_t errlen)
{
	char *words[WORDS_MAX];
	bool options_done = false;
	size_t n = 0;
	int i, r;

	memset(ret, 0, offsetof(struct ctlcli, request));
	ret->request[0] = '\0';
	ret->request_len = 0;
	ret->request_lines = 0;
	if (errlen)
		err[0] = '\0';

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!options_done && a[0] == '-' && a[1]) {
			if (!strcmp(a, "--")) {
				options_done = true;
				continue;
			}
			r = parse_option(ret, argc, argv, &i, err, errlen);
			if (r < 0)
				return r;
			if (r > 0) {
				/* -h and -V win over whatever else the line holds. */
				if (!ret->sub)
					ret->sub = ctlcli_find(ret->cmd == CTLCLI_HELP ? "help" :
										       "version");
				return 0;
			}
			continue;
		}
		if (!ret->sub) {
			ret->sub = ctlcli_find(a);
			if (!ret->sub)
				return err_set(err, errlen, -EINVAL, "unknown command '%s'", Q(a));
			continue;
		}
		if (n == ARRAY_SIZE(words))
			return err_set(err, errlen, -E2BIG,
				       "%s: too many key=value words (a request holds at most %d)",
				       ret->sub->name, REQUEST_WORDS_MAX);
		words[n++] = argv[i];
	}
	if (!ret->sub)
		ret->sub = ctlcli_find("status");
	ret->cmd = ret->sub->cmd;

	r = ret->sub->parse(ret, words, n, err, errlen);
	if (r < 0)
		return r;
	if (ret->sub->change) {
		r = req_add_cmdline(ret, argc, argv, err, errlen);
		if (r < 0)
			return r;
	}
	if (ret->json && ret->sub->no_json)
		return err_set(err, errlen, -EINVAL, "%s: --json is not available (%s)",
			       ret->sub->name, ret->sub->no_json);
	if (ret->json && ret->interval)
		return err_set(err, errlen, -EINVAL, "%s: --json and -i/--watch do not go together",
			       ret->sub->name);
	if (ret->cmd == CTLCLI_CAPTURE && !ret->output && (flags & CTLCLI_STDOUT_TTY))
		return err_set(err, errlen, -EINVAL,
			       "capture: refusing to write pcap to a terminal; use -w FILE or a pipe");
	return 0;
}

/* ---- bounded text output -------------------------------------------------- */

struct out {
	char *buf;
	size_t size, len;
	bool full;
};

static void out_init(struct out *o, char *buf, size_t size)
{
	o->buf = buf;
	o->size = size;
	o->len = 0;
	o->full = size == 0;
	if (size)
		buf[0] = '\0';
}

static void out_putn(struct out *o, const char *s, size_t n)
{
	if (o->full || o->len + n + 1 > o->size) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void out_puts(struct out *o, const char *s)
{
	out_putn(o, s, strlen(s));
}

static void out_putc(struct out *o, char c)
{
	out_putn(o, &c, 1);
}

static int out_end(struct out *o)
{
	if (o->full) {
		if (o->size)
			o->buf[0] = '\0';
		return -ENOSPC;
	}
	return (int)o->len;
}

/* ---- libconfig ------------------------------------------------------------ */

/* The escapes libconfig and JSON strings write alike: false for any other c. */
static bool out_escape_common(struct out *o, unsigned char c)
{
	if (c == '"' || c == '\\') {
		out_putc(o, '\\');
		out_putc(o, (char)c);
	} else if (c == '\n') {
		out_puts(o, "\\n");
	} else if (c == '\t') {
		out_puts(o, "\\t");
	} else if (c == '\r') {
		out_puts(o, "\\r");
	} else {
		return false;
	}
	return true;
}

/* What libconfig reads back as this very number: no sign, no leading 0, 32 bits. */
static bool is_libconfig_int(const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v <= INT32_MAX;
}

static void out_libconfig_value(struct out *o, const char *s, size_t len)
{
	char hex[5];
	size_t i;

	if (is_libconfig_int(s, len)) {
		out_putn(o, s, len);
		return;
	}
	out_putc(o, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (out_escape_common(o, c))
			continue;
		if (c == '\f') {
			out_puts(o, "\\f");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(hex, sizeof(hex), "\\x%02x", c);
			out_puts(o, hex);
		} else {
			out_putc(o, (char)c);
		}
	}
	out_putc(o, '"');
}

int ctlcli_libconfig_value(const char *value, char *out, size_t outlen)
{
	struct out o;

	out_init(&o, out, outlen);
	out_libconfig_value(&o, value, strlen(value));
	return out_end(&o);
}

/* A setting name libconfig accepts that is also a protocol key. */
static bool is_libconfig_key(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (i = 1; i < len; i++)
		if (!is_key_char(s[i]))
			return false;
	return true;
}

int ctlcli_libconfig_rule(const char *spec, char *out, size_t outlen)
{
	const char *w = spec, *end, *eq;
	struct out o;

	out_init(&o, out, outlen);
	out_putc(&o, '{');
	while (*w) {
		end = strchr(w, ' ');
		if (!end)
			end = w + strlen(w);
		eq = memchr(w, '=', (size_t)(end - w));
		if (!eq || !is_libconfig_key(w, (size_t)(eq - w))) {
			if (outlen)
				out[0] = '\0';
			return -EINVAL;
		}
		out_putc(&o, ' ');
		out_putn(&o, w, (size_t)(eq - w));
		out_puts(&o, " = ");
		out_libconfig_value(&o, eq + 1, (size_t)(end - eq - 1));
		out_putc(&o, ';');
		if (!*end)
			break;
		w = end + 1;
		/* Single spaces only: an empty word means the spec is not what we think. */
		if (!*w || *w == ' ') {
			if (outlen)
				out[0] = '\0';
			return -EINVAL;
		}
	}
	out_puts(&o, " }");
	return out_end(&o);
}

/* ---- JSON ----------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (at most len bytes), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t len)
{
	uint32_t cp, min;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void out_json_string(struct out *o, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];
	size_t i = 0, n;

	out_putc(o, '"');
	while (i < len) {
		unsigned char c = u[i];

		if (out_escape_common(o, c)) {
			i++;
			continue;
		}
		if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			out_puts(o, esc);
		} else if (c >= 0x80) {
			n = utf8_len(u + i, len - i);
			if (n == 0) {
				out_puts(o, "\\ufffd");
				i++;
				continue;
			}
			out_putn(o, s + i, n);
			i += n;
			continue;
		} else {
			out_putc(o, (char)c);
		}
		i++;
	}
	out_putc(o, '"');
}

int ctlcli_json_string(const char *s, char *out, size_t outlen)
{
	struct out o;

	out_init(&o, out, outlen);
	out_json_string(&o, s, strlen(s));
	return out_end(&o);
}

static bool is_json_uint(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || (s[0] == '0' && len > 1))
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool ctlcli_json_is_uint(const char *s)
{
	return is_json_uint(s, strlen(s));
}

/* "1712345678.123456": an integer part as above, a '.', digits. */
static bool is_json_decimal(const char *s, size_t len)
{
	const char *dot = memchr(s, '.', len);
	size_t ilen;

	if (!dot)
		return is_json_uint(s, len);
	ilen = (size_t)(dot - s);
	return is_json_uint(s, ilen) && len > ilen + 1 &&
	       strspn(dot + 1, "0123456789") >= len - ilen - 1;
}

/* A number when it reads as one (digits, a fraction), else a string. */
static void out_json_scalar(struct out *o, const char *s, size_t len)
{
	if (is_json_decimal(s, len))
		out_putn(o, s, len);
	else
		out_json_string(o, s, len);
}

bool ctlcli_json_is_number(const char *s)
{
	return is_json_decimal(s, strlen(s));
}

/* "a,b,c" as an array of scalars. */
static void out_json_list(struct out *o, const char *s, size_t len)
{
	const char *end = s + len, *c;

	out_putc(o, '[');
	while (len && s <= end) {
		c = memchr(s, ',', (size_t)(end - s));
		if (!c)
			c = end;
		out_json_scalar(o, s, (size_t)(c - s));
		if (c == end)
			break;
		out_putc(o, ',');
		s = c + 1;
	}
	out_putc(o, ']');
}

static void out_json_key(struct out *o, bool *first, const char *key, size_t len)
{
	if (!*first)
		out_putc(o, ',');
	*first = false;
	out_json_string(o, key, len);
	out_putc(o, ':');
}

static bool word_is(const char *key, size_t len, const char *name)
{
	return strlen(name) == len && !memcmp(key, name, len);
}

int ctlcli_trace_json(const char *words, char *out, size_t outlen)
{
	bool first = true, rule_first = true, in_rule = false, rules_done = false;
	const char *w = words, *end, *eq, *value;
	size_t klen, vlen;
	struct out o;

	out_init(&o, out, outlen);
	out_putc(&o, '{');
	for (; *w; w = *end ? end + 1 : end) {
		end = strchr(w, ' ');
		if (!end)
			end = w + strlen(w);
		if (end == w)
			continue;
		eq = memchr(w, '=', (size_t)(end - w));
		klen = eq ? (size_t)(eq - w) : (size_t)(end - w);
		value = eq ? eq + 1 : end;
		vlen = (size_t)(end - value);

		if (word_is(w, klen, "rule") && !rules_done) {
			if (!in_rule) {
				out_json_key(&o, &first, "rules", 5);
				out_putc(&o, '[');
			} else {
				out_puts(&o, "},");
			}
			out_puts(&o, "{\"name\":");
			out_json_string(&o, value, vlen);
			in_rule = true;
			rule_first = false;
			continue;
		}
		if (in_rule && !word_is(w, klen, "result")) {
			out_json_key(&o, &rule_first, w, klen);
			out_json_scalar(&o, value, vlen);
			continue;
		}
		if (in_rule) {
			out_puts(&o, "}]");
			in_rule = false;
			rules_done = true;
		} else if (word_is(w, klen, "result") && !rules_done) {
			out_json_key(&o, &first, "rules", 5);
			out_puts(&o, "[]");
			rules_done = true;
		}
		out_json_key(&o, &first, w, klen);
		if (word_is(w, klen, "impair") || word_is(w, klen, "delay"))
			out_json_list(&o, value, vlen);
		else
			out_json_scalar(&o, value, vlen);
	}
	if (in_rule) {
		out_puts(&o, "}]");
	} else if (!rules_done) {
		out_json_key(&o, &first, "rules", 5);
		out_puts(&o, "[]");
	}
	out_putc(&o, '}');
	return out_end(&o);
}
