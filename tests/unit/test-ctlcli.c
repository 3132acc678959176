/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ipmodctl without I/O: command lines to requests, save, trace JSON, pcapng counting. */
#include <stdarg.h>

#include "config.h"
#include "ctlcli.h"
#include "ctlproto.h"
#include "rule.h"
#include "rule.h"
#include "tap.h"

#define ARGS_MAX 200

static struct ctlcli c;
static char err[256];
/* The words of the last parse() joined by blanks: the test words need no escape. */
static char joined[4 * CTL_REQUEST_MAX];

/* Parse "ipmodctl" followed by the NULL-terminated words. */
static int parse_flags(unsigned int flags, const char *first, ...)
{
	char *argv[ARGS_MAX + 1];
	const char *w;
	va_list ap;
	int argc = 0;

	argv[argc++] = (char *)"ipmodctl";
	va_start(ap, first);
	for (w = first; w && argc < ARGS_MAX; w = va_arg(ap, const char *))
		argv[argc++] = (char *)w;
	va_end(ap);
	argv[argc] = NULL;
	joined[0] = '\0';
	for (int i = 0; i < argc; i++)
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s",
			 i ? " " : "", argv[i]);
	return ctlcli_parse(argc, argv, flags, &c, err, sizeof(err));
}

#define parse(...) parse_flags(0, __VA_ARGS__, NULL)
#define parse_tty(...) parse_flags(CTLCLI_STDOUT_TTY, __VA_ARGS__, NULL)

/* The request parses as a request of the control protocol, as the daemon reads it. */
static bool daemon_accepts(const char *request)
{
	static char buf[CTL_REQUEST_MAX];
	static struct ctl_pair pairs[CTL_KEYS_MAX];
	struct ctl_parser p;
	size_t used;

	ctl_parser_init(&p, buf, sizeof(buf), pairs, ARRAY_SIZE(pairs));
	return ctl_parser_feed(&p, request, strlen(request), &used) == 1 &&
	       used == strlen(request);
}

static bool changes(enum ctlcli_cmd cmd)
{
	return cmd == CTLCLI_ADD || cmd == CTLCLI_DEL || cmd == CTLCLI_REPLACE ||
	       cmd == CTLCLI_FLUSH || cmd == CTLCLI_RELOAD || cmd == CTLCLI_RESET;
}

/* want, and for a change the client-cmdline= line that ends it (the command line). */
static const char *with_cmdline(const char *want)
{
	static char s[CTL_REQUEST_MAX + 1];

	if (!changes(c.cmd) || !*want)
		return want;
	snprintf(s, sizeof(s), "%s", want);
	s[strlen(s) - 1] = '\0';
	strncat(s, CTL_CLIENT_CMDLINE "=", sizeof(s) - strlen(s) - 1);
	strncat(s, joined, sizeof(s) - strlen(s) - 1);
	strncat(s, "\n\n", sizeof(s) - strlen(s) - 1);
	return s;
}

#define REQ(want, name, ...)                                                            \
	do {                                                                            \
		int _r = parse(__VA_ARGS__);                                            \
		const char *_want = with_cmdline(want);                                    \
		is_int(_r, 0, "%s: parses", name);                                      \
		if (_r < 0)                                                             \
			diag("  -> %s", err);                                           \
		is_str(c.request, _want, "%s: request", name);                             \
		is_int(c.request_len, strlen(_want), "%s: request length", name);          \
		ok(daemon_accepts(c.request), "%s: well-framed", name);                 \
	} while (0)

#define BAD(want_r, want_msg, name, ...)                                                \
	do {                                                                            \
		int _r = parse(__VA_ARGS__);                                            \
		is_int(_r, want_r, "%s: refused", name);                                \
		if (!ok(strstr(err, want_msg) != NULL, "%s: says \"%s\"", name, want_msg)) \
			diag("  -> %s", err);                                           \
	} while (0)

static void test_simple_commands(void)
{
	is_int(parse_flags(0, NULL), 0, "no command");
	is_int(c.cmd, CTLCLI_STATUS, "no command is status");
	is_str(c.request, "get=status\n\n", "no command: get=status");
	ok(c.socket == NULL && !c.json, "no socket, no json by default");

	REQ("get=status\n\n", "status", "status");
	is_int(c.cmd, CTLCLI_STATUS, "status: cmd");
	REQ("get=rules\n\n", "rules", "rules");
	is_int(c.cmd, CTLCLI_RULES, "rules: cmd");
	REQ("get=rules\n\n", "list (alias)", "list");
	is_int(c.cmd, CTLCLI_RULES, "list: cmd is rules");
	is_str(c.sub->name, "rules", "list: the subcommand is rules");
	REQ("flush=1\n\n", "flush", "flush");
	is_int(c.cmd, CTLCLI_FLUSH, "flush: cmd");
	REQ("reload=1\n\n", "reload", "reload");
	is_int(c.cmd, CTLCLI_RELOAD, "reload: cmd");
	REQ("reset=counters\n\n", "reset", "reset");
	is_int(c.cmd, CTLCLI_RESET, "reset: cmd");
	REQ("get=rules\n\n", "save", "save");
	is_int(c.cmd, CTLCLI_SAVE, "save: cmd");

	is_int(parse("version"), 0, "version parses");
	ok(c.cmd == CTLCLI_VERSION && c.request_len == 0 && !c.request[0],
	   "version: no request");
	is_int(parse("help"), 0, "help parses");
	ok(c.cmd == CTLCLI_HELP && c.topic == NULL && c.request_len == 0, "help: about all");
	is_int(parse("help", "capture"), 0, "help capture parses");
	ok(c.cmd == CTLCLI_HELP && c.topic && !strcmp(c.topic->name, "capture"),
	   "help capture: about capture");
	is_int(parse("help", "delete"), 0, "help with an alias");
	ok(c.topic && !strcmp(c.topic->name, "del"), "help delete: about del");
	ok(c.list == CTLCLI_LIST_NONE, "help delete: no list");
	is_int(parse("help", "keys"), 0, "help keys parses");
	ok(c.cmd == CTLCLI_HELP && c.list == CTLCLI_LIST_KEYS && !c.topic, "help keys: the key list");
	is_int(parse("help", "keys", "long"), 0, "help keys long parses");
	ok(c.cmd == CTLCLI_HELP && c.list == CTLCLI_LIST_KEYS_LONG && !c.topic,
	   "help keys long: the key table");
	is_int(parse("help", "commands"), 0, "help commands parses");
	ok(c.list == CTLCLI_LIST_COMMANDS && !c.topic, "help commands: the command list");
	is_int(parse("help", "values", "proto"), 0, "help values proto parses");
	ok(c.list == CTLCLI_LIST_VALUES && c.list_key && !strcmp(c.list_key, "proto"),
	   "help values proto: proto's names");
	is_int(parse("help", "values", "delay"), 0, "help values of a key without names parses");
	ok(rule_key_value("delay", 0) == NULL, "delay has no named values");
	is_str(rule_key_value("proto", 0), "icmp", "proto's first name: rule.c's table");
	ok(rule_key_value("nope", 0) == NULL, "no key, no values");
	is_str(rule_key_name(0), "name", "the first key is name");
	{
		unsigned int i = 0;

		while (rule_key_name(i))
			i++;
		ok(i > 40 && rule_key_name(i + 1) == NULL, "rule_key_name ends with NULL after %u keys", i);
	}

	BAD(-EINVAL, "status takes no arguments (got 'x')", "status x", "status", "x");
	BAD(-EINVAL, "rules takes no arguments", "rules x", "rules", "x");
	BAD(-EINVAL, "flush takes no arguments", "flush all", "flush", "all");
	BAD(-EINVAL, "reload takes no arguments", "reload x", "reload", "x");
	BAD(-EINVAL, "reset takes no arguments", "reset x", "reset", "x");
	BAD(-EINVAL, "save takes no arguments", "save x", "save", "x");
	BAD(-EINVAL, "version takes no arguments", "version x", "version", "x");
	BAD(-EINVAL, "help: unknown command 'nope'", "help nope", "help", "nope");
	BAD(-EINVAL, "help: one command at a time", "help a b", "help", "add", "del");
	BAD(-EINVAL, "help values: one key", "help values alone", "help", "values");
	BAD(-EINVAL, "help values: one key", "help values two keys", "help", "values", "a", "b");
	BAD(-EINVAL, "help values: unknown key 'nope'", "help values nope", "help", "values", "nope");
	BAD(-EINVAL, "help: one command at a time (got 'x' too)", "help keys x", "help", "keys", "x");
	BAD(-EINVAL, "unknown command 'frobnicate'", "unknown command", "frobnicate");
	BAD(-EINVAL, "unknown command 'Status'", "commands are case-sensitive", "Status");
}

static void test_add(void)
{
	REQ("add=end\nproto=icmp\nverdict=drop\n\n", "add", "add", "proto=icmp", "verdict=drop");
	is_int(c.cmd, CTLCLI_ADD, "add: cmd");
	REQ("add=3\nname=x\nverdict=drop\n\n", "add at 3", "add", "at", "3", "name=x",
	    "verdict=drop");
	REQ("add=7\nverdict=drop\n\n", "add at 007 is 7", "add", "at", "007", "verdict=drop");
	REQ("add=4294967295\nverdict=drop\n\n", "add at the largest position", "add", "at",
	    "4294967295", "verdict=drop");
	REQ("add=before:fake-ping\nname=x\nproto=udp\ndport=53\nverdict=drop\n\n",
	    "add before (the man page's example)", "add", "before", "fake-ping", "name=x",
	    "proto=udp", "dport=53", "verdict=drop");
	REQ("add=after:r1\nset-ttl=+1\n\n", "add after", "add", "after", "r1", "set-ttl=+1");
	REQ("add=end\nname=a=b\ntcp-flags=syn,!ack\n\n", "a value keeps its '=' and '!'",
	    "add", "name=a=b", "tcp-flags=syn,!ack");
	REQ("add=end\nname=x y\n\n", "a value with a space is one line", "add", "name=x y");
	REQ("add=end\nicmp-type=echo-request\nverdict=reply\n\n", "keys with '-'", "add",
	    "icmp-type=echo-request", "verdict=reply");
	REQ("add=end\ndirection=in\nproto=tcp\nclamp-mss=1360\n\n", "direction=in, unquoted",
	    "add", "direction=in", "proto=tcp", "clamp-mss=1360");

	/* Issue 16: add --for, a relative trace made absolute, flush --impairments. */
	REQ("add=end\ndelay=50\nexpire=30s\n\n", "add --for", "add", "--for", "30s", "delay=50");
	REQ("add=2\ndelay=50\nexpire=1h\n\n", "add --for=, after the words", "add", "at", "2",
	    "delay=50", "--for=1h");
	BAD(-EINVAL, "option '--for' needs a value", "add --for without a value", "add",
	    "delay=50", "--for");
	BAD(-EINVAL, "unknown option '--for'", "--for is add's", "del", "--for", "1s", "x");
	REQ("add=end\nrate=@/abs/t.trace\n\n", "an absolute trace stays", "add",
	    "rate=@/abs/t.trace");
	{
		char cwd[512], want[700];

		if (getcwd(cwd, sizeof(cwd))) {
			snprintf(want, sizeof(want), "add=end\nrate=@%s/t.trace\n\n", cwd);
			REQ(want, "a relative trace is made absolute", "add", "rate=@t.trace");
		}
	}
	REQ("flush=impairments\n\n", "flush --impairments", "flush", "--impairments");
	ok(c.impairments, "flush --impairments: flag");
	BAD(-EINVAL, "unknown option '--impairments'", "--impairments is flush's", "reload",
	    "--impairments");

	BAD(-EINVAL, "add: no rule given", "add alone", "add");
	BAD(-EINVAL, "add: 'proto' is not key=value", "a word without '='", "add", "proto",
	    "verdict=drop");
	BAD(-EINVAL, "add: 'drop' is not key=value", "a later word without '='", "add",
	    "verdict=drop", "drop");
	BAD(-EINVAL, "a position goes first", "a position after the words", "add", "name=x",
	    "before", "y");
	BAD(-EINVAL, "add: 'at' needs a position", "at without N", "add", "at");
	BAD(-EINVAL, "add: at '0': a position is an integer from 1", "at 0", "add", "at", "0",
	    "verdict=drop");
	BAD(-EINVAL, "add: at 'x'", "at x", "add", "at", "x", "verdict=drop");
	BAD(-EINVAL, "add: at '1.5'", "at 1.5", "add", "at", "1.5", "verdict=drop");
	BAD(-EINVAL, "add: at '+2'", "at +2", "add", "at", "+2", "verdict=drop");
	BAD(-EINVAL, "add: at '4294967296'", "at beyond 32 bits", "add", "at", "4294967296",
	    "verdict=drop");
	BAD(-EINVAL, "add: at '99999999999999999999999'", "at beyond 64 bits", "add", "at",
	    "99999999999999999999999", "verdict=drop");
	BAD(-EINVAL, "add: unknown option '-1'", "at -1 reads as an option", "add", "at", "-1",
	    "verdict=drop");
	BAD(-EINVAL, "add: 'before' needs a rule name", "before without a name", "add",
	    "before");
	BAD(-EINVAL, "add: no rule given", "before NAME without words", "add", "before", "x");
	BAD(-EINVAL, "add: 'name=x' is not a rule name", "before name=x", "add", "before",
	    "name=x", "verdict=drop");
	BAD(-EINVAL, "add: 'at' is not key=value", "one position only", "add", "at", "3", "at",
	    "4", "verdict=drop");
	BAD(-EINVAL, "add: 'Proto=icmp': a key is lower-case", "upper-case key", "add",
	    "Proto=icmp");
	BAD(-EINVAL, "add: 'set_ttl=1': a key is lower-case", "'_' in a key", "add",
	    "set_ttl=1");
	BAD(-EINVAL, "add: '=icmp': no key before '='", "no key", "add", "=icmp");
	BAD(-EINVAL, "add: 'proto=': no value after '='", "no value", "add", "proto=");
	BAD(-EINVAL, "control characters are not allowed", "a TAB in a value", "add",
	    "name=a\tb");
	BAD(-EINVAL, "control characters are not allowed", "a newline in a value", "add",
	    "name=a\nverdict=drop");
	BAD(-EINVAL, "add: unknown option '--when'", "capture options belong to capture",
	    "add", "--when", "before", "verdict=drop");
}

static void test_del_replace(void)
{
	REQ("del=fake-ping\n\n", "del", "del", "fake-ping");
	is_int(c.cmd, CTLCLI_DEL, "del: cmd");
	REQ("del=rule-3\n\n", "delete (alias)", "delete", "rule-3");
	is_int(c.cmd, CTLCLI_DEL, "delete: cmd is del");
	REQ("del=-x\n\n", "'--' ends the options", "del", "--", "-x");
	BAD(-EINVAL, "del: which rule? (del NAME)", "del alone", "del");
	BAD(-EINVAL, "del: which rule? (del NAME)", "delete alone", "delete");
	BAD(-EINVAL, "del: one rule at a time (got 'b' too)", "del two", "del", "a", "b");
	BAD(-EINVAL, "del: 'name=x' is not a rule name", "del name=x", "del", "name=x");
	BAD(-EINVAL, "del: unknown option '-x'", "del -x", "del", "-x");

	REQ("replace=fake-ping\nproto=icmp\nverdict=drop\n\n", "replace", "replace",
	    "fake-ping", "proto=icmp", "verdict=drop");
	is_int(c.cmd, CTLCLI_REPLACE, "replace: cmd");
	REQ("replace=a\nname=b\nverdict=accept\n\n", "replace with a new name", "replace", "a",
	    "name=b", "verdict=accept");
	BAD(-EINVAL, "replace: which rule?", "replace alone", "replace");
	BAD(-EINVAL, "replace: no rule given", "replace NAME alone", "replace", "x");
	BAD(-EINVAL, "replace: 'proto=icmp' is not a rule name", "replace without a name",
	    "replace", "proto=icmp", "verdict=drop");
	BAD(-EINVAL, "replace: 'drop' is not key=value", "replace, a bad word", "replace", "x",
	    "drop");
}

static void test_trace(void)
{
	REQ("trace=1\n\n", "trace", "trace");
	is_int(c.cmd, CTLCLI_TRACE, "trace: cmd");
	REQ("trace=1\nproto=icmp\nrule=fake-ping\n\n", "trace with a filter", "trace",
	    "proto=icmp", "rule=fake-ping");
	REQ("trace=1\nfamily=ip6\ndport=53\n\n", "trace --json", "trace", "--json", "family=ip6",
	    "dport=53");
	ok(c.json, "trace: --json after the command");
	BAD(-EINVAL, "trace: 'icmp' is not key=value", "trace icmp", "trace", "icmp");
	BAD(-EINVAL, "trace: unknown option '-c'", "trace -c", "trace", "-c", "5");
}

static void test_explain_and_views(void)
{
	REQ("explain=1\nproto=tcp\ndst=192.0.2.7\ndport=443\nflags=syn\n\n", "explain", "explain",
	    "proto=tcp", "dst=192.0.2.7", "dport=443", "flags=syn");
	is_int(c.cmd, CTLCLI_EXPLAIN, "explain: cmd");
	BAD(-EINVAL, "explain: no packet given", "explain alone", "explain");
	BAD(-EINVAL, "explain: 'tcp' is not key=value", "explain tcp", "explain", "tcp");

	REQ("get=status\n\n", "status -a -h", "status", "-a", "-h");
	ok(c.all && c.human && c.cmd == CTLCLI_STATUS, "status: -a and -h (human) taken");
	REQ("get=status\n\n", "status --all --human -i 5", "status", "--all", "--human", "-i", "5");
	is_int(c.interval, 5, "status -i 5");
	REQ("get=status\n\n", "status --watch", "status", "--watch");
	is_int(c.interval, 1, "--watch is -i 1");
	REQ("get=rules\n\n", "rules -i 2", "rules", "-i", "2");
	is_int(c.interval, 2, "rules -i 2");
	is_int(parse("-h", "status"), 0, "-h before status");
	is_int(c.cmd, CTLCLI_HELP, "-h before status is the help");
	BAD(-EINVAL, "an interval is seconds from 1 to 3600", "status -i 0", "status", "-i", "0");
	BAD(-EINVAL, "an interval is seconds from 1 to 3600", "status -i 3601", "status", "-i",
	    "3601");
	BAD(-EINVAL, "rules: unknown option '-a'", "rules -a", "rules", "-a");
	BAD(-EINVAL, "add: unknown option '-i'", "add -i", "add", "-i", "1", "proto=udp");
	BAD(-EINVAL, "do not go together", "status --json -i 1", "status", "--json", "-i", "1");
	BAD(-EINVAL, "save: --json is not available", "save --json", "save", "--json");
	BAD(-EINVAL, "help: --json is not available", "help --json", "help", "--json");
	is_int(parse("--json", "version"), 0, "version --json");
	ok(c.json && c.cmd == CTLCLI_VERSION, "version honours --json");
}

static void test_capture(void)
{
	REQ("capture=all\n\n", "capture to a pipe", "capture");
	is_int(c.cmd, CTLCLI_CAPTURE, "capture: cmd");
	ok(c.output == NULL && !c.have_count && c.when == CTLCLI_WHEN_DEFAULT && !c.snaplen,
	   "capture: no options");

	is_int(parse_tty("capture"), -EINVAL, "capture to a terminal refused");
	is_str(err, "capture: refusing to write pcap to a terminal; use -w FILE or a pipe",
	       "and the message says so");
	is_int(parse_tty("capture", "-w", "out.pcapng"), 0, "capture -w FILE at a terminal");
	is_str(c.output, "out.pcapng", "the file");
	is_int(parse_tty("capture", "-w", "-"), 0, "-w - at a terminal: asked for, so done");
	is_str(c.output, "-", "-w - is standard output");
	is_str(c.request, "capture=all\n\n", "-w is not sent");

	REQ("capture=fake-ping\nwhen=before\ncount=10\nsnaplen=96\n\n", "every option",
	    "capture", "rule=fake-ping", "--when", "before", "-c", "10", "-w", "x.pcapng",
	    "--snaplen", "96");
	ok(c.have_count && c.count == 10 && c.snaplen == 96 && c.when == CTLCLI_WHEN_BEFORE &&
	   !strcmp(c.output, "x.pcapng"), "every option stored");
	REQ("capture=r\nwhen=after\ncount=5\nsnaplen=1500\n\n", "--opt=value forms", "capture",
	    "--when=after", "--count=5", "--snaplen=1500", "--write=f", "rule=r");
	is_str(c.output, "f", "--write=f");
	REQ("capture=all\nwhen=both\ncount=0\n\n", "-c0 attached, 0 means no limit", "capture",
	    "-c0", "--when", "both", "-wout");
	is_str(c.output, "out", "-wFILE attached");
	ok(c.have_count && c.count == 0, "count 0 given");
	REQ("capture=all\ncount=7\n\n", "-c 007", "capture", "-c", "007");
	REQ("capture=all\n\n", "-w - before the command's words", "capture", "-w", "-");
	REQ("capture=all\ncount=3\n\n", "global options mixed in", "--json", "capture", "-s",
	    "/tmp/s", "-c", "3", "--json");
	ok(c.json && !strcmp(c.socket, "/tmp/s"), "socket and json taken");
	REQ("capture=all\n\n", "-w -s: -s is the file name", "capture", "-w", "-s");
	is_str(c.output, "-s", "-w took the next word");

	BAD(-EINVAL, "capture: -c 'x': a count", "-c x", "capture", "-c", "x");
	BAD(-EINVAL, "capture: -c '-1': a count", "-c -1", "capture", "-c", "-1");
	BAD(-EINVAL, "a count is an integer", "-c beyond 32 bits", "capture", "-c",
	    "4294967296");
	BAD(-EINVAL, "option '-c' needs a value", "-c at the end", "capture", "-c");
	BAD(-EINVAL, "option '--snaplen' needs a value", "--snaplen at the end", "capture",
	    "--snaplen");
	BAD(-EINVAL, "capture: --when 'sideways': must be before, after or both", "--when bad",
	    "capture", "--when", "sideways");
	BAD(-EINVAL, "capture: --snaplen '0': a length is an integer from 1", "--snaplen 0",
	    "capture", "--snaplen", "0");
	BAD(-EINVAL, "needs a file name", "-w ''", "capture", "-w", "");
	BAD(-EINVAL, "capture: unexpected 'fake-ping' (only rule=NAME", "a bare name", "capture",
	    "fake-ping");
	BAD(-EINVAL, "capture: unexpected 'proto=icmp'", "a filter word", "capture",
	    "proto=icmp");
	BAD(-EINVAL, "capture: one rule=NAME at most", "two rules", "capture", "rule=a",
	    "rule=b");
	BAD(-EINVAL, "capture: '' is not a rule name", "rule= empty", "capture", "rule=");
	BAD(-EINVAL, "unknown option '-c'", "-c before the command", "-c", "5", "capture");
	BAD(-EINVAL, "capture: unknown option '--snap'", "no abbreviations", "capture", "--snap",
	    "96");
}

static void test_monitor_metrics(void)
{
	REQ("monitor=changes\n\n", "monitor", "monitor");
	is_int(c.cmd, CTLCLI_MONITOR, "monitor: cmd");
	REQ("monitor=changes\n\n", "monitor --json", "monitor", "--json");
	ok(c.json, "monitor --json: json");
	BAD(-EINVAL, "monitor takes no arguments (got 'x')", "monitor x", "monitor", "x");
	BAD(-EINVAL, "unknown option '--http'", "--http belongs to metrics", "monitor", "--http");

	is_int(parse("metrics"), 0, "metrics parses");
	is_int(c.cmd, CTLCLI_METRICS, "metrics: cmd");
	is_int(c.request_len, 0, "metrics: no request of its own (it asks status and rules)");
	ok(!c.http, "metrics: not --http");
	is_int(parse("metrics", "--http"), 0, "metrics --http parses");
	ok(c.http, "metrics --http: http");
	is_int(parse("--http", "metrics"), -EINVAL, "--http before the command is unknown");
	BAD(-EINVAL, "no --json", "metrics --json", "metrics", "--json");
	BAD(-EINVAL, "no --json", "--json metrics", "--json", "metrics");
	BAD(-EINVAL, "metrics: unexpected 'x'", "metrics x", "metrics", "x");
	BAD(-EINVAL, "option '--http' takes no value", "--http=1", "metrics", "--http=1");
}

static void test_global_options(void)
{
	is_int(parse("-s", "/tmp/a.sock"), 0, "-s PATH");
	ok(c.cmd == CTLCLI_STATUS && !strcmp(c.socket, "/tmp/a.sock"), "-s before no command");
	is_int(parse("-s/tmp/b", "rules"), 0, "-sPATH");
	is_str(c.socket, "/tmp/b", "-sPATH taken");
	is_int(parse("--socket", "/tmp/c", "rules"), 0, "--socket PATH");
	is_str(c.socket, "/tmp/c", "--socket PATH taken");
	is_int(parse("rules", "--socket=/tmp/d"), 0, "--socket=PATH after the command");
	is_str(c.socket, "/tmp/d", "--socket=PATH taken");
	is_int(c.cmd, CTLCLI_RULES, "the command stands");
	is_int(parse("--json", "status"), 0, "--json before");
	ok(c.json, "json");
	is_int(parse("status", "--json"), 0, "--json after");
	ok(c.json, "json after");
	REQ("add=end\nverdict=drop\n\n", "options between words", "add", "--json",
	    "verdict=drop", "-s", "/x");
	ok(c.json && !strcmp(c.socket, "/x"), "both taken");

	is_int(parse("-V"), 0, "-V");
	is_int(c.cmd, CTLCLI_VERSION, "-V is version");
	is_int(parse("--version", "bogus"), 0, "--version wins over what follows");
	is_int(c.cmd, CTLCLI_VERSION, "--version is version");
	is_int(parse("-h"), 0, "-h");
	ok(c.cmd == CTLCLI_HELP && c.topic == NULL, "-h: help about all");
	is_int(parse("add", "-h"), 0, "add -h");
	ok(c.cmd == CTLCLI_HELP && c.topic && !strcmp(c.topic->name, "add"),
	   "add -h: help about add");
	is_int(parse("capture", "--help", "-c", "x"), 0, "--help wins over a bad option");
	ok(c.cmd == CTLCLI_HELP && c.topic && c.topic->cmd == CTLCLI_CAPTURE,
	   "help about capture");
	is_int(parse("--", "status"), 0, "'--' before the command");
	is_int(c.cmd, CTLCLI_STATUS, "status after '--'");

	BAD(-EINVAL, "unknown option '--bogus'", "unknown long option", "--bogus");
	BAD(-EINVAL, "unknown option '-x'", "unknown short option", "-x", "status");
	BAD(-EINVAL, "status: unknown option '-x'", "unknown option after the command",
	    "status", "-x");
	BAD(-EINVAL, "unknown option '-Vh'", "no bundling", "-Vh");
	BAD(-EINVAL, "option '-s' needs a value", "-s at the end", "-s");
	BAD(-EINVAL, "option '--socket' needs a value", "--socket at the end", "rules",
	    "--socket");
	BAD(-EINVAL, "option '--socket=' needs a path", "empty --socket=", "--socket=");
	BAD(-EINVAL, "option '--json' takes no value", "--json=1", "--json=1");
	BAD(-EINVAL, "unknown option '--jso'", "no abbreviations", "--jso");
}

/* A key=value that fills a request line, its '\n' aside. */
#define WORD_MAX (CTL_LINE_MAX - 1)
/* Lines of WORD_MAX bytes that fit a request with add=end and the blank line. */
#define FULL_LINES ((CTL_REQUEST_MAX - 9) / CTL_LINE_MAX)

_Static_assert(FULL_LINES < 62, "the byte bound is met before the line bound");

static void add_words(char **argv, int *argc, size_t n, size_t len)
{
	static char words[80][CTL_LINE_MAX + 8];
	size_t i;

	for (i = 0; i < n && i < ARRAY_SIZE(words); i++) {
		memset(words[i], 'a', sizeof(words[i]));
		memcpy(words[i], "k", 1);
		snprintf(words[i] + 1, 5, "%03zu=", i);
		words[i][5] = 'v';
		words[i][len] = '\0';
		argv[(*argc)++] = words[i];
	}
}

static int parse_many(const char *pre1, const char *pre2, const char *pre3, size_t n,
		      size_t len)
{
	char *argv[ARGS_MAX];
	int argc = 0;

	argv[argc++] = (char *)"ipmodctl";
	argv[argc++] = (char *)pre1;
	if (pre2)
		argv[argc++] = (char *)pre2;
	if (pre3)
		argv[argc++] = (char *)pre3;
	add_words(argv, &argc, n, len);
	argv[argc] = NULL;
	return ctlcli_parse(argc, argv, 0, &c, err, sizeof(err));
}

static const char *name_of(size_t len)
{
	static char name[CTL_LINE_MAX + 16];

	memset(name, 'n', sizeof(name));
	name[len < sizeof(name) ? len : sizeof(name) - 1] = '\0';
	return name;
}

static const char *concat(const char *a, const char *b)
{
	static char s[2 * CTL_LINE_MAX];

	snprintf(s, sizeof(s), "%s%s", a, b);
	return s;
}

static void test_limits(void)
{
	char want[128];
	int r;

	r = parse_many("add", NULL, NULL, 63, 8);
	is_int(r, 0, "63 key=value words fit (64 lines with add=)");
	is_int(c.request_lines, 64, "64 lines");
	ok(daemon_accepts(c.request), "and the daemon's framing takes them");
	ok(!strncmp(c.request, "add=end\nk000=vaa\nk001=vaa\n", 26), "words in order");
	r = parse_many("add", NULL, NULL, 64, 8);
	is_int(r, -E2BIG, "64 key=value words do not");
	is_str(err, "add: too many key=value words (a request holds at most 63)", "and why");
	r = parse_many("add", "before", "x", 63, 8);
	is_int(r, 0, "before NAME and 63 words fit");
	r = parse_many("add", "before", "x", 64, 8);
	is_int(r, -E2BIG, "before NAME and 64 words do not");
	r = parse_many("trace", NULL, NULL, 70, 8);
	is_int(r, -E2BIG, "70 words: refused while reading them");
	is_str(err, "trace: too many key=value words (a request holds at most 63)",
	       "the same message");
	r = parse_many("replace", "x", NULL, 63, 8);
	is_int(r, 0, "replace NAME and 63 words fit");

	r = parse_many("add", NULL, NULL, 1, WORD_MAX);
	is_int(r, 0, "a key=value of CTL_LINE_MAX - 1 bytes fits a line");
	ok(daemon_accepts(c.request), "and the daemon's framing takes it");
	r = parse_many("add", NULL, NULL, 1, WORD_MAX + 1);
	is_int(r, -EMSGSIZE, "one byte more does not");
	snprintf(want, sizeof(want), "longer than %d bytes", WORD_MAX);
	ok(strstr(err, want) != NULL, "and why: %s", err);
	ok(strlen(err) < 200, "the message quotes the word short");

	r = parse_many("add", NULL, NULL, FULL_LINES, WORD_MAX);
	is_int(r, 0, "%d full lines fit a request", FULL_LINES);
	r = parse_many("add", NULL, NULL, FULL_LINES + 1, WORD_MAX);
	is_int(r, -E2BIG, "%d do not (with add=end and the blank line)", FULL_LINES + 1);
	snprintf(want, sizeof(want), "add: request longer than %d bytes", CTL_REQUEST_MAX);
	is_str(err, want, "and why");
	/* "add=end\n", 25 lines of 655 bytes and the blank line: 16384. */
	r = parse_many("add", NULL, NULL, 25, 654);
	ok(r == 0 && c.request_len == CTL_REQUEST_MAX, "exactly 16384 bytes fit (got %d, %zu)",
	   r, c.request_len);
	ok(r == 0 && daemon_accepts(c.request), "and the daemon's framing takes them");
	r = parse_many("add", NULL, NULL, 25, 655);
	is_int(r, -E2BIG, "16409 bytes do not");

	r = parse("del", name_of(WORD_MAX - 4));
	/* And its command line, cut to CTL_CMDLINE_MAX: "client-cmdline=" 512 bytes "\n". */
	ok(r == 0 && c.request_len == CTL_LINE_MAX + 1 + 15 + CTL_CMDLINE_MAX + 1,
	   "a name that fills del= to a line (got %zu)", c.request_len);
	ok(daemon_accepts(c.request), "and the daemon's framing takes it");
	r = parse("del", name_of(WORD_MAX - 3));
	is_int(r, -EMSGSIZE, "one byte more does not");
	r = parse("add", "before", name_of(WORD_MAX - 11), "verdict=drop");
	is_int(r, 0, "before: a name that fills add=before: to a line");
	ok(daemon_accepts(c.request), "and the daemon's framing takes it");
	r = parse("add", "before", name_of(WORD_MAX - 10), "verdict=drop");
	is_int(r, -EMSGSIZE, "one byte more does not");
	r = parse("capture", "--count", "1", concat("rule=", name_of(WORD_MAX - 8)));
	is_int(r, 0, "capture: a rule name that fills capture= to a line");
	r = parse("capture", "--count", "1", concat("rule=", name_of(WORD_MAX - 7)));
	is_int(r, -EMSGSIZE, "one byte more does not");
}

/* The value of the request's client-cmdline= line, or NULL. */
static const char *cmdline_of(void)
{
	static char v[CTL_LINE_MAX + 1];
	const char *p = strstr(c.request, "\n" CTL_CLIENT_CMDLINE "="), *nl;

	if (!p)
		return NULL;
	p += sizeof(CTL_CLIENT_CMDLINE "=");
	nl = strchr(p, '\n');
	if (!nl || (size_t)(nl - p) >= sizeof(v))
		return NULL;
	memcpy(v, p, (size_t)(nl - p));
	v[nl - p] = '\0';
	return v;
}

/* Every change carries the command line that asked for it, as its last line. */
static void test_client_cmdline(void)
{
	static const char *const changing[][3] = {
		{ "add", "verdict=drop", NULL }, { "del", "x", NULL },
		{ "replace", "x", "verdict=drop" }, { "flush", NULL, NULL },
		{ "flush", "--impairments", NULL }, { "reload", NULL, NULL },
		{ "reset", NULL, NULL },
	};
	static const char *const reading[][3] = {
		{ "status", NULL, NULL }, { "rules", NULL, NULL }, { "save", NULL, NULL },
		{ "trace", "proto=icmp", NULL }, { "capture", "-c", "1" },
		{ "explain", "src=10.0.0.1", NULL }, { "monitor", NULL, NULL },
	};
	char want[CTL_CMDLINE_MAX + 1], *argv[8];
	const char *v;
	size_t len;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(changing); i++) {
		r = parse(changing[i][0], changing[i][1], changing[i][2]);
		v = cmdline_of();
		ok(r == 0 && v && !strcmp(v, joined), "%s: carries client-cmdline=%s", joined,
		   v ? v : "(none)");
		len = strlen(c.request);
		ok(len > 2 && !strcmp(c.request + len - 2, "\n\n") &&
		   strstr(c.request, "\n" CTL_CLIENT_CMDLINE "=") + 1 ==
		   c.request + len - 2 - strlen(joined) - 15, "%s: as the last line", joined);
		ok(daemon_accepts(c.request), "%s: well-framed", joined);
	}
	for (size_t i = 0; i < ARRAY_SIZE(reading); i++) {
		r = parse(reading[i][0], reading[i][1], reading[i][2]);
		ok(r == 0 && !strstr(c.request, CTL_CLIENT_CMDLINE), "%s: no client-cmdline=",
		   joined);
	}

	REQ("add=end\nname=x\nverdict=drop\n\n", "add with its command line", "add", "name=x",
	    "verdict=drop");
	is_str(c.request, "add=end\nname=x\nverdict=drop\n"
	       "client-cmdline=ipmodctl add name=x verdict=drop\n\n", "the exact bytes");
	/* Options stay in: it is the command line, as /proc would show it. */
	r = parse("--json", "flush", "--impairments");
	is_str(cmdline_of(), "ipmodctl --json flush --impairments", "options are part of it");

	/* Escaped as ipmodd logs /proc's: '\' doubled, other bytes not printable as \xHH. */
	argv[0] = (char *)"/usr/bin/ipmodctl";
	argv[1] = (char *)"-s";
	argv[2] = (char *)"/run/a\tb\x7f";
	argv[3] = (char *)"add";
	argv[4] = (char *)"name=a\\b";
	argv[5] = (char *)"comment=caf\xc3\xa9";
	argv[6] = NULL;
	r = ctlcli_parse(6, argv, 0, &c, err, sizeof(err));
	is_int(r, 0, "escapes: parses");
	is_str(cmdline_of(), "/usr/bin/ipmodctl -s /run/a\\x09b\\x7f add name=a\\\\b "
	       "comment=caf\\xc3\\xa9", "escaped: \\x09, \\x7f, \\\\, UTF-8 as \\xHH");
	ok(daemon_accepts(c.request), "and the daemon's framing takes it");

	/* Longer than CTL_CMDLINE_MAX: cut with "...", never inside an escape. */
	r = parse("del", name_of(1000));
	v = cmdline_of();
	ok(r == 0 && v && strlen(v) == CTL_CMDLINE_MAX, "a long one is cut to %d bytes (got %zu)",
	   CTL_CMDLINE_MAX, v ? strlen(v) : 0);
	memcpy(want, "ipmodctl del ", 13);
	memcpy(want + 13, name_of(CTL_CMDLINE_MAX - 16), CTL_CMDLINE_MAX - 16);
	memcpy(want + CTL_CMDLINE_MAX - 3, "...", 4);
	is_str(v, want, "its start, then ...");
	{
		char name[200];

		name[0] = 'x';
		memset(name + 1, 0x80, sizeof(name) - 2);
		name[sizeof(name) - 1] = '\0';
		r = parse("del", name);
		/* "ipmodctl del x" and 123 "\x80" are 506 bytes; a 124th and "..." are not. */
		snprintf(want, sizeof(want), "ipmodctl del x");
		for (int k = 0; k < 123; k++)
			strcat(want, "\\x80");
		strcat(want, "...");
		is_str(cmdline_of(), want, "cut between escapes: 509 bytes, not 512");
	}

	/* The request's own bounds: the line is cut to the room left, or left out. */
	r = parse_many("add", NULL, NULL, 25, 640);
	v = cmdline_of();
	/* add=end (8), 25 lines of 641: 16033; then "client-cmdline=", '\n' and the blank line. */
	ok(r == 0 && c.request_len == CTL_REQUEST_MAX, "a full request: exactly %d bytes (got %zu)",
	   CTL_REQUEST_MAX, c.request_len);
	ok(v && strlen(v) == CTL_REQUEST_MAX - 16033 - 17 && !strncmp(v, "ipmodctl add k000=v", 19)
	   && !strcmp(v + strlen(v) - 3, "..."), "its command line cut to the %d bytes left",
	   CTL_REQUEST_MAX - 16033 - 17);
	ok(daemon_accepts(c.request), "and the daemon's framing takes it");
	r = parse_many("add", NULL, NULL, 25, 654);
	ok(r == 0 && c.request_len == CTL_REQUEST_MAX && !cmdline_of(),
	   "no room at all: left out, the request is as it was");
	r = parse_many("add", NULL, NULL, 63, 8);
	ok(r == 0 && c.request_lines == CTL_KEYS_MAX && !cmdline_of(),
	   "no line left (64): left out, not refused");
	ok(daemon_accepts(c.request), "and the daemon's framing takes it");
	r = parse_many("add", NULL, NULL, 62, 8);
	ok(r == 0 && c.request_lines == CTL_KEYS_MAX && cmdline_of(),
	   "62 words: the 64th line is the command line");
}

/* ---- save ------------------------------------------------------------------- */

static char out[8192];

#define LC(value, want)                                                                 \
	do {                                                                            \
		int _r = ctlcli_libconfig_value(value, out, sizeof(out));               \
		is_str(out, want, "libconfig value %s", #value);                        \
		is_int(_r, strlen(want), "and its length");                             \
	} while (0)

static void test_libconfig_values(void)
{
	LC("23", "23");
	LC("0", "0");
	LC("2147483647", "2147483647");
	LC("2147483648", "\"2147483648\"");
	LC("99999999999", "\"99999999999\"");
	LC("023", "\"023\"");
	LC("00", "\"00\"");
	LC("+1", "\"+1\"");
	LC("-1", "\"-1\"");
	LC("0x10", "\"0x10\"");
	LC("0.5", "\"0.5\"");
	LC("1e3", "\"1e3\"");
	LC("", "\"\"");
	LC("echo-request", "\"echo-request\"");
	LC("192.0.2.0/24", "\"192.0.2.0/24\"");
	LC("!22", "\"!22\"");
	LC("syn,!ack", "\"syn,!ack\"");
	LC("a\"b\\c", "\"a\\\"b\\\\c\"");
	LC("a\tb\nc\rd\fe", "\"a\\tb\\nc\\rd\\fe\"");
	LC("\x01\x7f", "\"\\x01\\x7f\"");
	LC("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	is_int(ctlcli_libconfig_value("12345", out, 5), -ENOSPC, "no room: -ENOSPC");
	is_str(out, "", "and nothing half-written");
	is_int(ctlcli_libconfig_value("12345", out, 6), 5, "just enough room");
	is_int(ctlcli_libconfig_value("ab", out, 4), -ENOSPC, "quotes need room too");
	is_int(ctlcli_libconfig_value("ab", out, 0), -ENOSPC, "zero-length buffer");
}

#define LR(spec, want)                                                                  \
	do {                                                                            \
		int _r = ctlcli_libconfig_rule(spec, out, sizeof(out));                 \
		is_str(out, want, "libconfig rule %s", spec);                           \
		is_int(_r, strlen(want), "and its length");                             \
	} while (0)

static void test_libconfig_rules(void)
{
	LR("name=fake-ping proto=icmp icmp-type=echo-request dst=192.0.2.0/24 verdict=reply",
	   "{ name = \"fake-ping\"; proto = \"icmp\"; icmp-type = \"echo-request\"; "
	   "dst = \"192.0.2.0/24\"; verdict = \"reply\"; }");
	LR("name=x proto=udp dport=53 verdict=drop",
	   "{ name = \"x\"; proto = \"udp\"; dport = 53; verdict = \"drop\"; }");
	LR("name=t set-ttl=+1 dport=!22 sport=1024-2048 probability=0.25",
	   "{ name = \"t\"; set-ttl = \"+1\"; dport = \"!22\"; sport = \"1024-2048\"; "
	   "probability = \"0.25\"; }");
	LR("name=a=b", "{ name = \"a=b\"; }");
	LR("name=", "{ name = \"\"; }");
	LR("", "{ }");

	is_int(ctlcli_libconfig_rule("name=x  proto=icmp", out, sizeof(out)), -EINVAL,
	       "two spaces: refused");
	is_int(ctlcli_libconfig_rule("name=x ", out, sizeof(out)), -EINVAL,
	       "a trailing space: refused");
	is_int(ctlcli_libconfig_rule(" name=x", out, sizeof(out)), -EINVAL,
	       "a leading space: refused");
	is_int(ctlcli_libconfig_rule("name=x proto", out, sizeof(out)), -EINVAL,
	       "a word without '=': refused");
	is_str(out, "", "and nothing half-written");
	is_int(ctlcli_libconfig_rule("=x", out, sizeof(out)), -EINVAL, "no key: refused");
	is_int(ctlcli_libconfig_rule("9x=1", out, sizeof(out)), -EINVAL,
	       "a key libconfig cannot name: refused");
	is_int(ctlcli_libconfig_rule("-x=1", out, sizeof(out)), -EINVAL,
	       "a key starting with '-': refused");
	is_int(ctlcli_libconfig_rule("name=x", out, 10), -ENOSPC, "no room: -ENOSPC");
	is_int(ctlcli_libconfig_rule("name=x", out, 15), -ENOSPC, "one byte short: -ENOSPC");
	is_int(ctlcli_libconfig_rule("name=x", out, 16), 15, "just enough room");
}

/*
 * The point of save: the daemon's own config parser reads the output back as
 * the same rules, whose canonical specs (what get=rules sends) are unchanged.
 */
static void test_save_roundtrip(void)
{
	static const struct rule_kv kvs[][5] = {
		{ { "name", "fake-ping" }, { "proto", "icmp" }, { "icmp-type", "echo-request" },
		  { "dst", "192.0.2.0/24" }, { "verdict", "reply" } },
		{ { "name", "ttl" }, { "set-ttl", "+1" }, { "dst", "!10.0.0.0/8" } },
		{ { "name", "dns" }, { "proto", "udp" }, { "dport", "53" },
		  { "verdict", "drop" } },
		{ { "name", "mss" }, { "proto", "tcp" }, { "tcp-flags", "syn,!ack" },
		  { "clamp-mss", "1400" } },
		{ { "name", "loss" }, { "proto", "udp" }, { "sport", "1024-65535" },
		  { "probability", "0.25" }, { "verdict", "drop" } },
		{ { "name", "rej" }, { "proto", "tcp" }, { "dport", "!22" },
		  { "verdict", "reject" }, { "reject-with", "tcp-reset" } },
		{ { "name", "d" }, { "set-dscp", "ef" }, { "set-ecn", "ect0" }, { "ttl", "64" } },
		{ { "name", "in-mss" }, { "direction", "in" }, { "proto", "tcp" },
		  { "tcp-flags", "syn,ack" }, { "clamp-mss", "1360" } },
		{ { "name", "both" }, { "direction", "both" }, { "proto", "udp" }, { "delay", "50" } },
		{ { "name", "out" }, { "direction", "out" }, { "verdict", "drop" } },
	};
	char specs[ARRAY_SIZE(kvs)][RULE_FORMAT_MAX], text[16384], msg[256], got[RULE_FORMAT_MAX];
	struct config *cfg = NULL;
	size_t i, n, len = 0, bad;
	bool all = true;
	int r;

	len += (size_t)snprintf(text + len, sizeof(text) - len, "# generation 3\nrules = (\n");
	for (i = 0; i < ARRAY_SIZE(kvs); i++) {
		struct rule *rule = NULL;

		for (n = 0; n < 5 && kvs[i][n].key; n++)
			;
		msg[0] = '\0';
		r = rule_parse(kvs[i], n, &rule, &bad, msg, sizeof(msg));
		if (r < 0) {
			diag("rule %zu: %s", i, msg);
			all = false;
			continue;
		}
		rule_format(rule, specs[i], sizeof(specs[i]));
		rule_free(rule);
		r = ctlcli_libconfig_rule(specs[i], out, sizeof(out));
		if (r < 0) {
			diag("rule %zu: '%s': %d", i, specs[i], r);
			all = false;
			continue;
		}
		len += (size_t)snprintf(text + len, sizeof(text) - len, "\t%s%s\n", out,
					i + 1 < ARRAY_SIZE(kvs) ? "," : "");
	}
	snprintf(text + len, sizeof(text) - len, ");\n");
	ok(all, "every sample rule parsed and formatted");
	if (!ok(strstr(text, "direction = \"in\"") && strstr(text, "direction = \"both\"") &&
		!strstr(text, "direction = \"out\""),
		"save: direction in and both are written, out (the default) is left out"))
		diag("%s", text);

	msg[0] = '\0';
	r = config_parse_string(text, "saved.conf", &cfg, msg, sizeof(msg));
	if (!ok(r == 0, "the daemon's config parser reads the saved rules"))
		diag("%s\n%s", msg, text);
	if (r < 0)
		return;
	is_int(cfg->n_rules, ARRAY_SIZE(kvs), "every rule");
	for (i = 0, all = true; i < cfg->n_rules && i < ARRAY_SIZE(kvs); i++) {
		rule_format(cfg->rules[i], got, sizeof(got));
		if (strcmp(got, specs[i])) {
			diag("rule %zu: saved '%s', read back '%s'", i, specs[i], got);
			all = false;
		}
	}
	ok(all, "and each reads back to the very spec it was saved from");
	config_free(cfg);
}

/* ---- JSON ----------------------------------------------------------------- */

#define JS(s, want)                                                                     \
	do {                                                                            \
		int _r = ctlcli_json_string(s, out, sizeof(out));                       \
		is_str(out, want, "json string %s", #s);                                \
		is_int(_r, strlen(want), "and its length");                             \
	} while (0)

static void test_json_strings(void)
{
	JS("plain", "\"plain\"");
	JS("", "\"\"");
	JS("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
	JS("\x01\x1f\t\n\r", "\"\\u0001\\u001f\\t\\n\\r\"");
	JS("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	   "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	JS("a\xffz", "\"a\\ufffdz\"");
	JS("\xc3", "\"\\ufffd\"");
	JS("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	JS("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	JS("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	is_int(ctlcli_json_string("abc", out, 5), -ENOSPC, "no room: -ENOSPC");
	is_int(ctlcli_json_string("abc", out, 6), 5, "just enough room");

	ok(ctlcli_json_is_uint("0"), "0 is a number");
	ok(ctlcli_json_is_uint("18446744073709551615"), "a u64 is a number");
	ok(!ctlcli_json_is_uint("00"), "00 is not");
	ok(!ctlcli_json_is_uint("012"), "012 is not");
	ok(!ctlcli_json_is_uint(""), "'' is not");
	ok(!ctlcli_json_is_uint("-1"), "-1 is not");
	ok(!ctlcli_json_is_uint("1.5"), "1.5 is not");
	ok(!ctlcli_json_is_uint("ip"), "ip is not");
}

#define TJ(words, want)                                                                 \
	do {                                                                            \
		int _r = ctlcli_trace_json(words, out, sizeof(out));                    \
		is_str(out, want, "trace json: %s", words);                             \
		is_int(_r, strlen(want), "and its length");                             \
	} while (0)

static void test_trace_json(void)
{
	TJ("time=1712345678.123456 family=ip src=192.0.2.1 dst=198.51.100.7 proto=icmp "
	   "icmp-type=echo-request icmp-code=0 len=84 rule=fake-ping verdict=reply result=reply",
	   "{\"time\":1712345678.123456,\"family\":\"ip\",\"src\":\"192.0.2.1\","
	   "\"dst\":\"198.51.100.7\",\"proto\":\"icmp\",\"icmp-type\":\"echo-request\","
	   "\"icmp-code\":0,\"len\":84,\"rules\":[{\"name\":\"fake-ping\",\"verdict\":\"reply\"}],"
	   "\"result\":\"reply\"}");
	TJ("time=1.000001 family=ip6 src=2001:db8::1 dst=2001:db8::2 proto=udp sport=5353 "
	   "dport=53 len=60 rule=ttl set-ttl=64 rule=mark set-dscp=ef set-ecn=ect0 result=accept",
	   "{\"time\":1.000001,\"family\":\"ip6\",\"src\":\"2001:db8::1\",\"dst\":\"2001:db8::2\","
	   "\"proto\":\"udp\",\"sport\":5353,\"dport\":53,\"len\":60,"
	   "\"rules\":[{\"name\":\"ttl\",\"set-ttl\":64},"
	   "{\"name\":\"mark\",\"set-dscp\":\"ef\",\"set-ecn\":\"ect0\"}],\"result\":\"accept\"}");
	TJ("time=5.5 proto=47 len=100 result=accept",
	   "{\"time\":5.5,\"proto\":47,\"len\":100,\"rules\":[],\"result\":\"accept\"}");
	TJ("proto=tcp len=40",
	   "{\"proto\":\"tcp\",\"len\":40,\"rules\":[]}");
	TJ("len=40 rule=x verdict=drop",
	   "{\"len\":40,\"rules\":[{\"name\":\"x\",\"verdict\":\"drop\"}]}");
	TJ("len=40 rule=x result=drop extra=1",
	   "{\"len\":40,\"rules\":[{\"name\":\"x\"}],\"result\":\"drop\",\"extra\":1}");
	TJ("time=1. time2=1.5 sport=053 port=0",
	   "{\"time\":\"1.\",\"time2\":1.5,\"sport\":\"053\",\"port\":0,\"rules\":[]}");
	TJ("len=40 rule=slow delay=50 loss=0.25 result=accept impair=delayed,lost delay=50.5,0",
	   "{\"len\":40,\"rules\":[{\"name\":\"slow\",\"delay\":50,\"loss\":0.25}],"
	   "\"result\":\"accept\",\"impair\":[\"delayed\",\"lost\"],\"delay\":[50.5,0]}");
	TJ("src=a\"b flag len=1",
	   "{\"src\":\"a\\\"b\",\"flag\":\"\",\"len\":1,\"rules\":[]}");
	TJ("", "{\"rules\":[]}");
	is_int(ctlcli_trace_json("len=40 rule=x verdict=drop", out, 20), -ENOSPC,
	       "no room: -ENOSPC");
}

/* ---- pcapng --------------------------------------------------------------- */

struct pbuf {
	uint8_t b[4096];
	size_t len;
	bool big;
};

static void p8(struct pbuf *p, uint8_t v)
{
	if (p->len < sizeof(p->b))
		p->b[p->len++] = v;
}

static void p16(struct pbuf *p, uint16_t v)
{
	p8(p, p->big ? (uint8_t)(v >> 8) : (uint8_t)v);
	p8(p, p->big ? (uint8_t)v : (uint8_t)(v >> 8));
}

static void p32(struct pbuf *p, uint32_t v)
{
	p16(p, p->big ? (uint16_t)(v >> 16) : (uint16_t)v);
	p16(p, p->big ? (uint16_t)v : (uint16_t)(v >> 16));
}

static void p64(struct pbuf *p, uint64_t v)
{
	p32(p, p->big ? (uint32_t)(v >> 32) : (uint32_t)v);
	p32(p, p->big ? (uint32_t)v : (uint32_t)(v >> 32));
}

static void pad(struct pbuf *p)
{
	while (p->len % 4)
		p8(p, 0);
}

/* Write the block's length at start and append its trailer. */
static void block_end(struct pbuf *p, size_t start)
{
	uint32_t len = (uint32_t)(p->len - start + 4);
	struct pbuf tmp = { .big = p->big };

	p32(p, len);
	p32(&tmp, len);
	memcpy(p->b + start + 4, tmp.b, 4);
}

static void shb(struct pbuf *p, bool big)
{
	size_t start = p->len;

	p->big = big;
	p8(p, 0x0a), p8(p, 0x0d), p8(p, 0x0d), p8(p, 0x0a);
	p32(p, 0);
	p32(p, 0x1a2b3c4d);
	p16(p, 1);
	p16(p, 0);
	p64(p, UINT64_MAX);
	p16(p, 4);			/* shb_userappl */
	p16(p, 6);
	memcpy(p->b + p->len, "ipmodd", 6);
	p->len += 6;
	pad(p);
	p16(p, 0);
	p16(p, 0);
	block_end(p, start);
}

static void idb(struct pbuf *p, const char *name)
{
	size_t start = p->len;

	p32(p, 1);
	p32(p, 0);
	p16(p, 101);
	p16(p, 0);
	p32(p, 65535);
	p16(p, 2);			/* if_name */
	p16(p, (uint16_t)strlen(name));
	memcpy(p->b + p->len, name, strlen(name));
	p->len += strlen(name);
	pad(p);
	p16(p, 0);
	p16(p, 0);
	block_end(p, start);
}

/* An EPB of caplen bytes; drop < 0 for no epb_dropcount; end: write opt_endofopt. */
static void epb(struct pbuf *p, uint32_t caplen, long long drop, const char *comment, bool end)
{
	size_t start = p->len, i;

	p32(p, 6);
	p32(p, 0);
	p32(p, 0);
	p32(p, 0x12345678);
	p32(p, 0x9abcdef0);
	p32(p, caplen);
	p32(p, caplen + 10);
	for (i = 0; i < caplen; i++)
		p8(p, (uint8_t)(0x45 + i));
	pad(p);
	if (comment) {
		p16(p, 1);
		p16(p, (uint16_t)strlen(comment));
		memcpy(p->b + p->len, comment, strlen(comment));
		p->len += strlen(comment);
		pad(p);
	}
	if (drop >= 0) {
		p16(p, 4);
		p16(p, 8);
		p64(p, (uint64_t)drop);
	}
	if (end) {
		p16(p, 0);
		p16(p, 0);
	}
	block_end(p, start);
}

/* An EPB of caplen bytes with epb_flags (then a comment and a drop count of 1). */
static void epb_flags(struct pbuf *p, uint32_t caplen, uint32_t flags)
{
	size_t start = p->len, i;

	p32(p, 6);
	p32(p, 0);
	p32(p, 0);
	p32(p, 0x12345678);
	p32(p, 0x9abcdef0);
	p32(p, caplen);
	p32(p, caplen);
	for (i = 0; i < caplen; i++)
		p8(p, (uint8_t)(0x45 + i));
	pad(p);
	p16(p, 2);
	p16(p, 4);
	p32(p, flags);
	p16(p, 1);
	p16(p, 5);
	memcpy(p->b + p->len, "after", 5);
	p->len += 5;
	pad(p);
	p16(p, 4);
	p16(p, 8);
	p64(p, 1);
	p16(p, 0);
	p16(p, 0);
	block_end(p, start);
}

static void other_block(struct pbuf *p, uint32_t type, size_t body)
{
	size_t start = p->len, i;

	p32(p, type);
	p32(p, 0);
	for (i = 0; i < body; i++)
		p8(p, 0xee);
	pad(p);
	block_end(p, start);
}

static void sample_stream(struct pbuf *p)
{
	memset(p, 0, sizeof(*p));
	shb(p, false);
	idb(p, "before");
	idb(p, "after");
	epb(p, 60, -1, NULL, true);
	epb(p, 61, 5, "hi", true);
	epb(p, 0, -1, NULL, false);
	epb(p, 3, 7, NULL, false);
	other_block(p, 0x0bad, 9);
	/* An EPB whose bytes hold the SHB magic: only the block structure counts. */
	epb(p, 4, -1, "\x0a\x0d\x0d\x0a", true);
	shb(p, true);
	idb(p, "before");
	epb(p, 40, 1ull << 33, "x", true);
	epb(p, 1, 1, NULL, true);
}

#define SAMPLE_PACKETS 7
#define SAMPLE_DROPPED (5 + 7 + (1ull << 33) + 1)

static int feed_chunks(struct pcapng_counter *pc, const uint8_t *d, size_t len, size_t chunk)
{
	size_t off, n;
	int r = 0;

	pcapng_counter_init(pc);
	for (off = 0; off < len && r == 0; off += n) {
		n = len - off < chunk ? len - off : chunk;
		r = pcapng_counter_feed(pc, d + off, n);
	}
	return r;
}

static void test_pcapng_counting(void)
{
	struct pcapng_counter pc;
	struct pbuf p;
	size_t k, bad = 0;
	uint32_t seed = 1;
	int r;

	sample_stream(&p);
	ok(p.len < sizeof(p.b), "sample stream built (%zu bytes)", p.len);
	r = feed_chunks(&pc, p.b, p.len, p.len);
	is_int(r, 0, "the whole stream at once");
	is_int(pc.packets, SAMPLE_PACKETS, "packets counted");
	ok(pc.dropped == SAMPLE_DROPPED, "dropcounts summed, both byte orders (%llu)",
	   (unsigned long long)pc.dropped);
	is_int(pc.offset, p.len, "every byte fed");
	ok(!pcapng_counter_partial(&pc), "ends at a block boundary");

	for (k = 1; k <= p.len; k++) {
		r = feed_chunks(&pc, p.b, p.len, k);
		if (r || pc.packets != SAMPLE_PACKETS || pc.dropped != SAMPLE_DROPPED ||
		    pcapng_counter_partial(&pc)) {
			if (bad++ < 3)
				diag("chunks of %zu: r=%d packets=%llu dropped=%llu", k, r,
				     (unsigned long long)pc.packets,
				     (unsigned long long)pc.dropped);
		}
	}
	is_int(bad, 0, "fed in chunks of every size from 1 to %zu", p.len);

	for (k = 0, bad = 0; k <= p.len; k++) {
		pcapng_counter_init(&pc);
		r = pcapng_counter_feed(&pc, p.b, k);
		r = r ? r : pcapng_counter_feed(&pc, p.b + k, p.len - k);
		if (r || pc.packets != SAMPLE_PACKETS || pc.dropped != SAMPLE_DROPPED)
			bad++;
	}
	is_int(bad, 0, "split in two at each of %zu positions", p.len + 1);

	pcapng_counter_init(&pc);
	for (k = 0, r = 0; k < p.len && r == 0;) {
		size_t n;

		seed = seed * 1103515245 + 12345;
		n = (seed >> 16) % 97;
		if (n > p.len - k)
			n = p.len - k;
		r = pcapng_counter_feed(&pc, p.b + k, n);
		k += n;
	}
	ok(r == 0 && pc.packets == SAMPLE_PACKETS && pc.dropped == SAMPLE_DROPPED,
	   "fed in chunks of random sizes, empty ones included");

	pcapng_counter_init(&pc);
	r = pcapng_counter_feed(&pc, p.b, p.len - 5);
	ok(r == 0 && pcapng_counter_partial(&pc), "cut in a block: partial");
	pcapng_counter_init(&pc);
	ok(!pcapng_counter_partial(&pc), "nothing fed: not partial");
	r = pcapng_counter_feed(&pc, p.b, 3);
	ok(r == 0 && pcapng_counter_partial(&pc), "3 bytes: partial");
}

/* epb_flags: the direction bits counted, inbound 1 and outbound 2, both byte orders. */
static void test_pcapng_directions(void)
{
	struct pcapng_counter pc;
	struct pbuf p;
	size_t bad = 0;

	memset(&p, 0, sizeof(p));
	shb(&p, false);
	idb(&p, "ipmodd");
	epb_flags(&p, 20, 1);
	epb_flags(&p, 21, 2);
	epb_flags(&p, 0, 2);
	epb_flags(&p, 7, 0);		/* direction not known */
	epb(&p, 5, -1, NULL, true);	/* no epb_flags */
	shb(&p, true);
	idb(&p, "ipmodd");
	epb_flags(&p, 40, 1 | 0x1000);	/* other bits (reception type) do not matter */
	epb_flags(&p, 3, 3);		/* invalid: counted as neither */
	for (size_t k = 1; k <= p.len; k++) {
		int r = feed_chunks(&pc, p.b, p.len, k);

		if (r || pc.packets != 7 || pc.inbound != 2 || pc.outbound != 2 || pc.dropped != 6) {
			if (bad++ < 3)
				diag("chunks of %zu: r=%d packets=%llu in=%llu out=%llu dropped=%llu",
				     k, r, (unsigned long long)pc.packets,
				     (unsigned long long)pc.inbound, (unsigned long long)pc.outbound,
				     (unsigned long long)pc.dropped);
		}
	}
	is_int(bad, 0, "epb_flags: 7 packets, 2 inbound, 2 outbound, 6 lost, in chunks of 1..%zu",
	       p.len);
}

/* Feed a stream with one field overwritten (at off, 4 bytes little-endian). */
static int feed_broken(const struct pbuf *orig, size_t off, uint32_t v, const char **why)
{
	static struct pcapng_counter pc;
	struct pbuf p = *orig;
	int r;

	if (off != SIZE_MAX) {
		p.b[off] = (uint8_t)v;
		p.b[off + 1] = (uint8_t)(v >> 8);
		p.b[off + 2] = (uint8_t)(v >> 16);
		p.b[off + 3] = (uint8_t)(v >> 24);
	}
	r = feed_chunks(&pc, p.b, p.len, 7);
	*why = pc.why ? pc.why : "";
	return r;
}

static void test_pcapng_malformed(void)
{
	struct pcapng_counter pc;
	struct pbuf p, big;
	const char *why;
	size_t shb_len, idb_len, epb_at;
	int r;

	memset(&p, 0, sizeof(p));
	shb(&p, false);
	shb_len = p.len;
	idb(&p, "before");
	idb_len = p.len - shb_len;
	epb_at = p.len;
	epb(&p, 60, 2, NULL, true);

	is_int(feed_broken(&p, SIZE_MAX, 0, &why), 0, "the stream unbroken parses");
	r = feed_broken(&p, 0, 1, &why);
	is_int(r, -EBADMSG, "not starting with a Section Header Block");
	ok(strstr(why, "Section Header Block") != NULL, "why: %s", why);
	r = feed_broken(&p, 8, 0x11223344, &why);
	is_int(r, -EBADMSG, "bad byte-order magic");
	ok(strstr(why, "byte-order") != NULL, "why: %s", why);
	r = feed_broken(&p, 4, 24, &why);
	is_int(r, -EBADMSG, "SHB shorter than 28 bytes");
	r = feed_broken(&p, shb_len + 4, (uint32_t)idb_len + 2, &why);
	is_int(r, -EBADMSG, "a length not a multiple of 4");
	ok(strstr(why, "multiple of 4") != NULL, "why: %s", why);
	r = feed_broken(&p, shb_len + 4, 8, &why);
	is_int(r, -EBADMSG, "a block of 8 bytes");
	r = feed_broken(&p, shb_len + 4, PCAPNG_BLOCK_MAX + 4, &why);
	is_int(r, -EBADMSG, "a block over the bound");
	ok(strstr(why, "longer than") != NULL, "why: %s", why);
	r = feed_broken(&p, epb_at + 4, 28, &why);
	is_int(r, -EBADMSG, "an EPB shorter than its fields");
	r = feed_broken(&p, epb_at + 20, 1000, &why);
	is_int(r, -EBADMSG, "an EPB's captured length beyond the block");
	ok(strstr(why, "beyond") != NULL, "why: %s", why);
	r = feed_broken(&p, epb_at + 20, UINT32_MAX, &why);
	is_int(r, -EBADMSG, "a captured length of 2^32-1 (no wrap-around)");
	r = feed_broken(&p, epb_at + 28 + 60, 4 | (200u << 16), &why);
	is_int(r, -EBADMSG, "an option beyond its block");
	r = feed_broken(&p, p.len - 4, 64, &why);
	is_int(r, -EBADMSG, "the trailing length differs");
	ok(strstr(why, "trailing") != NULL, "why: %s", why);

	pcapng_counter_init(&pc);
	pcapng_counter_feed(&pc, "\x01\x00\x00\x00\x0c\x00\x00\x00", 8);
	is_int(pcapng_counter_feed(&pc, p.b, p.len), -EBADMSG, "errors are sticky");

	memset(&big, 0, sizeof(big));
	shb(&big, true);
	epb(&big, 4, 9, NULL, true);
	r = feed_chunks(&pc, big.b, big.len, 3);
	ok(r == 0 && pc.packets == 1 && pc.dropped == 9, "a big-endian section alone");
}

int main(void)
{
	test_simple_commands();
	test_add();
	test_del_replace();
	test_trace();
	test_explain_and_views();
	test_capture();
	test_monitor_metrics();
	test_global_options();
	test_limits();
	test_client_cmdline();
	test_libconfig_values();
	test_libconfig_rules();
	test_save_roundtrip();
	test_json_strings();
	test_trace_json();
	test_pcapng_counting();
	test_pcapng_directions();
	test_pcapng_malformed();
	return tap_done();
}
