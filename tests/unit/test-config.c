/* SPDX-License-Identifier: GPL-2.0-or-later */
/* config.c: the file schema of ipmodd.conf(5) and an exact line for every error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "rule.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-config.XXXXXX";

static int parse(const char *text, struct config **ret, char *err)
{
	return config_parse_string(text, "t.conf", ret, err, CONFIG_ERR_MAX);
}

/* The config must fail with exactly this message ("t.conf:LINE: ..."). */
static void fails(const char *text, int want_r, const char *want_err, const char *what)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_MAX];
	int r;

	r = parse(text, &cfg, err);
	if (!ok(r == want_r && cfg == NULL && strcmp(err, want_err) == 0, "%s", what)) {
		diag("got r=%d err \"%s\"", r, err);
		diag("want r=%d err \"%s\"", want_r, want_err);
	}
	config_free(cfg);
}

/* The config must fail and its message must start with prefix ("t.conf:LINE: "). */
static void fails_at(const char *text, const char *prefix, const char *what)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_MAX];
	int r;

	r = parse(text, &cfg, err);
	if (!ok(r < 0 && cfg == NULL && strncmp(err, prefix, strlen(prefix)) == 0, "%s", what))
		diag("got r=%d err \"%s\", want a message starting \"%s\"", r, err, prefix);
	config_free(cfg);
}

static struct config *parses(const char *text, const char *what)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_MAX];
	int r;

	r = parse(text, &cfg, err);
	if (!ok(r == 0 && cfg, "%s", what))
		diag("r=%d: %s", r, err);
	return cfg;
}

static bool prefix_is(const struct prefix *p, const char *addr, int len)
{
	uint8_t a[16] = {};
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(family, addr, a) != 1)
		return false;
	return p->family == family && p->len == len && memcmp(p->addr, a, 16) == 0;
}

static void test_defaults(void)
{
	struct config *cfg = NULL;
	struct config *def = NULL;

	cfg = parses("", "an empty file is valid");
	if (!cfg)
		return;
	is_str(cfg->path, "t.conf", "path is kept");
	is_str(cfg->tun_name, "tun0", "default tun.name");
	is_int(cfg->mtu, 1500, "default tun.mtu");
	ok(cfg->offload, "default tun.offload: true");
	is_int(cfg->table, 100, "default routing.table");
	is_int(cfg->priority, 10000, "default routing.priority");
	ok(!cfg->fail_closed, "default routing.failure: open");
	is_int(cfg->stall_timeout_ms, 5000, "default routing.stall-timeout 5000 ms");
	is_int(cfg->flows_max, 262144, "default flows.max 262144");
	ok(!cfg->rp_filter_keep, "default routing.rp-filter: loose");
	ok(cfg->self_check, "default routing.self-check: true");
	ok(cfg->ipv4 && cfg->ipv6 && cfg->ipv6_auto, "default routing.families: \"auto\"");
	is_int(cfg->families_line, 0, "default routing.families: no line");
	is_int(cfg->reinject, REINJECT_AUTO, "default routing.reinject: auto");
	is_int(cfg->n_divert, 0, "default: no divert selectors (all traffic)");
	ok(cfg->divert == NULL, "no divert array");
	is_int(cfg->n_exclude, 0, "default: no exclusions");
	is_str(cfg->control_socket, RUNDIR "/ipmodd/control.sock", "default control.socket");
	is_str(cfg->control_group, "", "default control.group: root only");
	is_int(cfg->control_mode, 0660, "default control.mode 0660");
	is_int(cfg->fastpath, FASTPATH_AUTO, "default fastpath");
	is_int(cfg->n_rules, 0, "default: no rules");

	ok(config_new_default(&def) == 0, "config_new_default");
	if (def) {
		ok(def->path == NULL, "config_new_default: no path");
		is_str(def->tun_name, cfg->tun_name, "config_new_default == empty file: tun");
		ok(def->mtu == cfg->mtu && def->table == cfg->table &&
			   def->priority == cfg->priority && def->ipv4 == cfg->ipv4 &&
			   def->ipv6 == cfg->ipv6 && def->fastpath == cfg->fastpath &&
			   strcmp(def->control_socket, cfg->control_socket) == 0 &&
			   strcmp(def->control_group, cfg->control_group) == 0,
		   "config_new_default == empty file: every field");
	}
	config_free(def);
	config_free(cfg);

	cfg = parses("# only a comment, no newline at the end", "a trailing comment without newline");
	config_free(cfg);
	cfg = parses("tun = {};\nrouting = {};\ncontrol = {};\nrules = ();\n", "empty groups");
	if (cfg)
		is_int(cfg->mtu, 1500, "empty groups keep defaults");
	config_free(cfg);
	ok(config_free(NULL) == NULL, "config_free(NULL)");
}

static const char full[] =
	"# every key\n"						/* 1 */
	"tun = { name = \"ipmod7\"; mtu = 9000; };\n"		/* 2 */
	"routing = {\n"						/* 3 */
	"  table = 0xfffffffe;\n"				/* 4 */
	"  priority = 32765;\n"					/* 5 */
	"  families = [ \"ipv6\" ]; reinject = \"forward\";\n"	/* 6 */
	"  divert = (\n"					/* 7 */
	"    { to = \"2001:db8::/32\"; from = \"2001:db8:1::1\"; },\n" /* 8 */
	"    { family = \"ipv6\"; ipproto = \"tcp\"; dport = \"80-443\"; sport = 1024; }\n" /* 9 */
	"  );\n"						/* 10 */
	"  exclude = (\n"					/* 11 */
	"    { to = \"192.168.1.77/16\"; },\n"			/* 12 */
	"    { uid = \"0-999\"; },\n"				/* 13 */
	"    { uid = 4294967294L; fwmark = \"0x100/0xff00\"; },\n" /* 14 */
	"    { ipproto = \"udp\"; dport = 53; },\n"		/* 15 */
	"    { ipproto = 132; sport = \"5000\"; fwmark = 0x80000000; },\n" /* 16 */
	"    { ipproto = \"icmp\"; }\n"				/* 17 */
	"  );\n"						/* 18 */
	"};\n"							/* 19 */
	"control = { socket = \"/run/x/ctl.sock\"; group = \"ipmod\"; mode = \"0666\"; };\n" /* 20 */
	"fastpath = \"off\";\n";				/* 21 */

static void test_full(void)
{
	struct config *cfg;
	const struct selector *s;

	cfg = parses(full, "a file with every key");
	if (!cfg)
		return;
	is_str(cfg->tun_name, "ipmod7", "tun.name");
	is_int(cfg->mtu, 9000, "tun.mtu");
	is_int(cfg->table, 0xfffffffeu, "routing.table in hex above INT_MAX");
	is_int(cfg->priority, 32765, "routing.priority");
	ok(!cfg->ipv4 && cfg->ipv6 && !cfg->ipv6_auto, "routing.families = ipv6 only");
	is_int(cfg->families_line, 6, "routing.families: its line");
	is_int(cfg->reinject, REINJECT_FORWARD, "routing.reinject = forward");
	is_str(cfg->control_socket, "/run/x/ctl.sock", "control.socket");
	is_str(cfg->control_group, "ipmod", "control.group");
	is_int(cfg->control_mode, 0666, "control.mode");
	is_int(cfg->fastpath, FASTPATH_OFF, "fastpath");

	is_int(cfg->n_divert, 2, "two divert selectors");
	if (cfg->n_divert == 2) {
		s = &cfg->divert[0];
		ok(s->has_to && prefix_is(&s->to, "2001:db8::", 32), "divert[0].to");
		ok(s->has_from && prefix_is(&s->from, "2001:db8:1::1", 128),
		   "divert[0].from: an address alone is a host prefix");
		is_int(s->family, AF_INET6, "divert[0]: family follows the prefixes");
		ok(!s->match.has_uid && !s->match.has_sport && !s->match.has_dport &&
		   !s->match.has_fwmark && !s->match.ipproto,
		   "divert[0]: nothing else");
		is_int(s->line, 8, "divert[0].line");
		s = &cfg->divert[1];
		is_int(s->family, AF_INET6, "divert[1].family");
		is_int(s->match.ipproto, 6, "divert[1].ipproto tcp");
		ok(s->match.has_dport && s->match.dport_start == 80 && s->match.dport_end == 443,
		   "divert[1].dport range");
		ok(s->match.has_sport && s->match.sport_start == 1024 && s->match.sport_end == 1024,
		   "divert[1].sport integer");
		ok(!s->has_from && !s->has_to, "divert[1]: no prefixes");
		is_int(s->line, 9, "divert[1].line");
	}

	is_int(cfg->n_exclude, 6, "six exclusions");
	if (cfg->n_exclude == 6) {
		s = &cfg->exclude[0];
		ok(s->has_to && prefix_is(&s->to, "192.168.0.0", 16),
		   "exclude[0].to: host bits cleared");
		is_int(s->family, AF_INET, "exclude[0].family");
		s = &cfg->exclude[1];
		ok(s->match.has_uid && s->match.uid_start == 0 && s->match.uid_end == 999,
		   "exclude[1].uid range");
		is_int(s->family, AF_UNSPEC, "exclude[1]: every family");
		s = &cfg->exclude[2];
		ok(s->match.has_uid && s->match.uid_start == 4294967294u &&
		   s->match.uid_end == 4294967294u,
		   "exclude[2].uid as a 64-bit integer");
		ok(s->match.has_fwmark && s->match.fwmark == 0x100 && s->match.fwmask == 0xff00,
		   "exclude[2].fwmark MARK/MASK");
		s = &cfg->exclude[3];
		ok(s->match.ipproto == 17 && s->match.has_dport && s->match.dport_start == 53 &&
		   s->match.dport_end == 53,
		   "exclude[3]: udp dport 53");
		s = &cfg->exclude[4];
		ok(s->match.ipproto == 132 && s->match.sport_start == 5000 &&
		   s->match.sport_end == 5000,
		   "exclude[4]: ipproto by number, sport as a string");
		ok(s->match.has_fwmark && s->match.fwmark == 0x80000000u &&
		   s->match.fwmask == 0xffffffffu,
		   "exclude[4].fwmark integer, full mask");
		s = &cfg->exclude[5];
		ok(s->match.ipproto == 1 && s->family == AF_INET, "exclude[5]: icmp implies ipv4");
		is_int(s->line, 17, "exclude[5].line");
	}
	config_free(cfg);
}

static void test_syntax(void)
{
	fails("tun = { mtu = 1500 }\nrouting = {\n  table = ;\n};\n", -EINVAL,
	      "t.conf:3: syntax error", "syntax error, with its line");
	fails("tun = {};\ntun = {};\n", -EINVAL, "t.conf:2: duplicate setting name",
	      "a key given twice");
	fails("a = 1;\n\n@include \"/etc/passwd\"\n", -EINVAL, "t.conf:3: @include is not supported",
	      "@include is refused");
	fails("/* @include \"x\"\n */ fastpath = \"on\";\nrules = 5000000000;\n", -ERANGE,
	      "t.conf:3: 5000000000 does not fit in 32 bits (libconfig needs 5000000000L for a 64-bit value)",
	      "an integer too wide for libconfig, after a comment with @include in it");
	fails("routing = { table = 0x1000000064; };\n", -ERANGE,
	      "t.conf:1: 0x1000000064 does not fit in 32 bits (libconfig needs 0x1000000064L for a 64-bit value)",
	      "a hex integer too wide");
	fails("# \"\n control = { socket = \"a\nb @include \\\"\"; };\nrouting = { table = +7; };\n",
	      -EINVAL,
	      "t.conf:4: +7 reads as the plain number 7: quote it (\"+7\") for a relative value",
	      "a bare +N, after strings and comments with quotes in them");
}

static void test_keys(void)
{
	fails("tun = {};\n\nbogus = 1;\n", -EINVAL, "t.conf:3: unknown key 'bogus'",
	      "unknown top-level key");
	fails("tun = {\n  name = \"x\";\n  mut = 1500;\n};\n", -EINVAL,
	      "t.conf:3: unknown key 'mut' in tun", "unknown key in tun");
	fails("routing = {\n  tabel = 5;\n};\n", -EINVAL, "t.conf:2: unknown key 'tabel' in routing",
	      "unknown key in routing");
	fails("control = { sock = \"/x\"; };\n", -EINVAL, "t.conf:1: unknown key 'sock' in control",
	      "unknown key in control");
	fails("routing = {\n  exclude = (\n    { to = \"10.0.0.0/8\"; },\n    { port = 5; }\n  );\n};\n",
	      -EINVAL, "t.conf:4: unknown key 'port' in routing.exclude",
	      "unknown key in a selector");
}

static void test_types(void)
{
	fails("tun = {\n  mtu = \"1500\";\n};\n", -EINVAL,
	      "t.conf:2: tun.mtu: expected an integer, got a string", "mtu as a string");
	fails("tun = {\n  name = 5;\n};\n", -EINVAL,
	      "t.conf:2: tun.name: expected a string, got an integer", "name as an integer");
	fails("tun = {\n\n  offload = 1;\n};\n", -EINVAL,
	      "t.conf:3: tun.offload: expected a boolean (true or false), got an integer",
	      "offload as an integer");
	{
		struct config *d = parses("", "offload default");
		struct config *o = parses("tun = { offload = false; };\n", "offload = false");

		ok(o && !o->offload, "tun.offload = false");
		ok(d && o && !config_routing_equal(d, o), "tun.offload is a restart setting");
		config_free(d);
		config_free(o);
	}
	fails("\ntun = \"tun0\";\n", -EINVAL, "t.conf:2: tun: expected a group { ... }, got a string",
	      "tun not a group");
	fails("routing = {\n table = 1.5;\n};\n", -EINVAL,
	      "t.conf:2: routing.table: expected an integer, got a float", "table as a float");
	fails("routing = {\n families = \"ipv4\";\n};\n", -EINVAL,
	      "t.conf:2: routing.families: \"ipv4\": expected \"auto\" or an array [ \"ipv4\", \"ipv6\" ]",
	      "families as a string other than auto");
	fails("routing = {\n families = 4;\n};\n", -EINVAL,
	      "t.conf:2: routing.families: expected \"auto\" or an array [ \"ipv4\", \"ipv6\" ], got an integer",
	      "families as an integer");
	fails("routing = {\n\n reinject = \"ebpf\";\n};\n", -EINVAL,
	      "t.conf:3: routing.reinject: \"ebpf\" is not auto, bpf or forward", "unknown reinject");
	fails("routing = {\n reinject = 1;\n};\n", -EINVAL,
	      "t.conf:2: routing.reinject: expected a string, got an integer", "reinject as an integer");
	fails("routing = {\n divert = { to = \"10.0.0.0/8\"; };\n};\n", -EINVAL,
	      "t.conf:2: routing.divert: expected a list ( { ... }, ... ), got a group",
	      "divert as a group");
	fails("routing = {\n exclude = ( \"10.0.0.0/8\" );\n};\n", -EINVAL,
	      "t.conf:2: routing.exclude: each selector must be a group { ... }, got a string",
	      "a selector that is not a group");
	fails("routing = {\n exclude = ( {\n uid = true; } );\n};\n", -EINVAL,
	      "t.conf:3: routing.exclude.uid: expected an integer or a string, got a boolean",
	      "uid as a boolean");
	fails("fastpath = true;\n", -EINVAL, "t.conf:1: fastpath: expected a string, got a boolean",
	      "fastpath as a boolean");
	fails("\n\nrules = { name = \"x\"; };\n", -EINVAL,
	      "t.conf:3: rules: expected a list ( { ... }, ... ), got a group", "rules as a group");
	fails("rules = ( \"verdict=drop\" );\n", -EINVAL,
	      "t.conf:1: rules: rule #1 must be a group { ... }, got a string", "a rule as a string");
}

static void test_ranges(void)
{
	struct config *cfg;

	fails("tun = {\n  mtu = 575;\n};\n", -ERANGE,
	      "t.conf:2: tun.mtu: 575 is out of range (576..65535)", "mtu below 576");
	fails("tun = {\n  mtu = 65536;\n};\n", -ERANGE,
	      "t.conf:2: tun.mtu: 65536 is out of range (576..65535)", "mtu above 65535");
	fails("tun = {\n  mtu = 1000;\n};\nrouting = { families = [\"ipv4\", \"ipv6\"]; };\n",
	      -EINVAL,
	      "t.conf:2: tun.mtu: 1000 is below 1280, the minimum for IPv6 (or drop ipv6 from routing.families)",
	      "mtu below 1280 with IPv6");
	cfg = parses("tun = { mtu = 1000; };\n", "mtu 1000 with families \"auto\"");
	ok(cfg && cfg->ipv4 && !cfg->ipv6, "... leaves IPv6 alone");
	config_free(cfg);
	cfg = parses("routing = { families = \"auto\"; reinject = \"bpf\"; };\n",
		     "families = \"auto\", reinject = \"bpf\"");
	ok(cfg && cfg->ipv4 && cfg->ipv6 && cfg->ipv6_auto && cfg->families_line == 1 &&
	   cfg->reinject == REINJECT_BPF, "... as written");
	config_free(cfg);
	config_free(parses("tun = { mtu = 1000; };\nrouting = { families = [\"ipv4\"]; };\n",
			   "mtu 1000 with IPv4 only"));
	fails("tun = {\n  queues = 0;\n};\n", -ERANGE,
	      "t.conf:2: tun.queues: 0 is out of range (1..16)", "queues 0");
	fails("tun = {\n  queues = 17;\n};\n", -ERANGE,
	      "t.conf:2: tun.queues: 17 is out of range (1..16)", "queues above 16");
	fails("tun = {\n\n  queues = \"many\";\n};\n", -EINVAL,
	      "t.conf:3: tun.queues: \"many\" is neither a number (1..16) nor \"auto\"",
	      "queues neither a number nor auto");
	{
		struct config *q = parses("tun = { queues = 4; };\n", "queues = 4");

		ok(q && q->queues == 4, "tun.queues = 4");
		config_free(q);
		q = parses("tun = { queues = \"auto\"; };\n", "queues = auto");
		ok(q && q->queues == 0, "tun.queues = auto is 0");
		config_free(q);
		q = parses("", "queues default");
		ok(q && q->queues == 1, "default tun.queues: 1");
		ok(q && q->tun_io == TUN_IO_READWRITE, "default tun.io: readwrite");
		config_free(q);
		q = parses("tun = { io = \"readwrite\"; };\n", "io = readwrite");
		ok(q && q->tun_io == TUN_IO_READWRITE, "tun.io = readwrite");
		config_free(q);
	}
	{
		struct config *q = parses("", "nice default");

		ok(q && q->nice == -5, "default tun.nice: -5");
		config_free(q);
		q = parses("tun = { nice = -20; };\n", "nice = -20");
		ok(q && q->nice == -20, "tun.nice = -20");
		config_free(q);
		q = parses("tun = { nice = 19; };\n", "nice = 19");
		ok(q && q->nice == 19, "tun.nice = 19");
		config_free(q);
	}
	fails("tun = {\n  nice = -21;\n};\n", -ERANGE,
	      "t.conf:2: tun.nice: -21 is out of range (-20..19)", "nice below -20");
	fails("tun = {\n\n  nice = 20;\n};\n", -ERANGE,
	      "t.conf:3: tun.nice: 20 is out of range (-20..19)", "nice above 19");
	fails("tun = { nice = \"high\"; };\n", -EINVAL,
	      "t.conf:1: tun.nice: expected an integer, got a string", "nice not a number");
	fails("tun = {\n  io = \"mmap\";\n};\n", -EINVAL,
	      "t.conf:2: tun.io: \"mmap\" is not readwrite or uring", "io neither readwrite nor uring");
#ifdef HAVE_LIBURING
	{
		struct config *q = parses("tun = { io = \"uring\"; };\n", "io = uring");

		ok(q && q->tun_io == TUN_IO_URING, "tun.io = uring (built with liburing)");
		config_free(q);
	}
#else
	fails("tun = {\n\n  io = \"uring\";\n};\n", -EOPNOTSUPP,
	      "t.conf:3: tun.io: \"uring\": this build of ipmodd lacks liburing (configure did "
	      "not find it, or --without-liburing)", "io = uring without liburing");
#endif
	fails("tun = { name = \"a-name-much-long\"; };\n", -EINVAL,
	      "t.conf:1: tun.name: \"a-name-much-long\" is not a valid interface name (1..15 characters, no '/', ':', '%' or blanks)",
	      "tun.name of 16 characters is too long");
	config_free(parses("tun = { name = \"a-name-too-long\"; };\n", "tun.name of 15 characters"));
	fails("tun = { name = \"tun/0\"; };\n", -EINVAL,
	      "t.conf:1: tun.name: \"tun/0\" is not a valid interface name (1..15 characters, no '/', ':', '%' or blanks)",
	      "tun.name with a slash");
	fails("routing = {\n\n  table = 254;\n};\n", -EINVAL,
	      "t.conf:3: routing.table: 254 is reserved (main)", "table 254");
	fails("routing = { table = 255; };\n", -EINVAL, "t.conf:1: routing.table: 255 is reserved (local)",
	      "table 255");
	fails("routing = { table = 0; };\n", -ERANGE,
	      "t.conf:1: routing.table: 0 is out of range (1..4294967294)", "table 0");
	fails("routing = { table = 0xffffffff; };\n", -ERANGE,
	      "t.conf:1: routing.table: 4294967295 is out of range (1..4294967294)",
	      "table 0xffffffff");
	fails("routing = { table = -5; };\n", -ERANGE,
	      "t.conf:1: routing.table: -5 is out of range (1..4294967294)", "negative table");
	fails("routing = {\n  priority = 1;\n};\n", -ERANGE,
	      "t.conf:2: routing.priority: 1 is out of range (2..32765)", "priority 1");
	fails("routing = { priority = 32766; };\n", -ERANGE,
	      "t.conf:1: routing.priority: 32766 is out of range (2..32765)", "priority 32766");
	fails("routing = {\n  families = [];\n};\n", -EINVAL,
	      "t.conf:2: routing.families: must name ipv4, ipv6 or both", "empty families");
	fails("routing = { families = [\"ipv4\", \"ip6\"]; };\n", -EINVAL,
	      "t.conf:1: routing.families: \"ip6\" is not ipv4 or ipv6", "unknown family");
	fails("routing = { families = [\"ipv4\", \"ipv4\"]; };\n", -EINVAL,
	      "t.conf:1: routing.families: ipv4 is listed twice", "family listed twice");
	fails("control = {\n socket = \"run/ctl\"; };\n", -EINVAL,
	      "t.conf:2: control.socket: \"run/ctl\" is not an absolute path", "relative socket");
	fails("control = { group = \"a b\"; };\n", -EINVAL,
	      "t.conf:1: control.group: \"a b\" is not a valid group name", "bad group name");
	fails("routing = {\n rp-filter = \"strict\"; };\n", -EINVAL,
	      "t.conf:2: routing.rp-filter: \"strict\": expected \"loose\" or \"keep\"",
	      "routing.rp-filter neither loose nor keep");
	fails("routing = { self-check = 1; };\n", -EINVAL,
	      "t.conf:1: routing.self-check: expected a boolean (true or false), got an integer",
	      "routing.self-check not a boolean");
	fails("routing = {\n failure = \"ajar\"; };\n", -EINVAL,
	      "t.conf:2: routing.failure: \"ajar\": expected \"open\" or \"closed\"",
	      "routing.failure neither open nor closed");
	fails("routing = { stall-timeout = 100; };\n", -EINVAL,
	      "t.conf:1: routing.stall-timeout: 100 ms is too short (0 or 200..3600000)",
	      "stall-timeout below 200 ms");
	fails("routing = { stall-timeout = 3600001; };\n", -ERANGE,
	      "t.conf:1: routing.stall-timeout: 3600001 is out of range (0..3600000)",
	      "stall-timeout above an hour");
	fails("flows = {\n max = 1023; };\n", -ERANGE,
	      "t.conf:2: flows.max: 1023 is out of range (1024..4194304)", "flows.max below 1024");
	fails("flows = { max = 4194305; };\n", -ERANGE,
	      "t.conf:1: flows.max: 4194305 is out of range (1024..4194304)", "flows.max above 4194304");
	fails("control = {\n\n mode = \"0777\"; };\n", -EINVAL,
	      "t.conf:3: control.mode: \"0777\": expected \"0600\", \"0660\" or \"0666\"",
	      "control.mode with execute bits");
	fails("control = { mode = 666; };\n", -EINVAL, "t.conf:1: control.mode: expected a string, got an integer",
	      "control.mode as a number");
	fails("fastpath = \"maybe\";\n", -EINVAL, "t.conf:1: fastpath: \"maybe\" is not off, auto or on",
	      "bad fastpath");
	fails("tun = { name = \"\\x1b[31m\"; };\n", -EINVAL,
	      "t.conf:1: tun.name: \"?[31m\" is not a valid interface name (1..15 characters, no '/', ':', '%' or blanks)",
	      "control characters are not echoed");
}

static void test_selectors(void)
{
	char text[8192];
	size_t len;

	fails("routing = {\n  exclude = (\n    { to = \"10.0.0.0/33\"; }\n  );\n};\n", -EINVAL,
	      "t.conf:3: routing.exclude.to: \"10.0.0.0/33\" is not an address or a prefix (192.0.2.0/24, 2001:db8::/32)",
	      "prefix length out of range");
	fails("routing = { divert = ( { from = \"10.0.0/8\"; } ); };\n", -EINVAL,
	      "t.conf:1: routing.divert.from: \"10.0.0/8\" is not an address or a prefix (192.0.2.0/24, 2001:db8::/32)",
	      "bad address");
	fails("routing = { divert = ( { from = \"10.0.0.0/\"; } ); };\n", -EINVAL,
	      "t.conf:1: routing.divert.from: \"10.0.0.0/\" is not an address or a prefix (192.0.2.0/24, 2001:db8::/32)",
	      "empty prefix length");
	fails("routing = {\n  divert = (\n    {\n      from = \"10.0.0.0/8\";\n      to = \"::/0\";\n    }\n  );\n};\n",
	      -EINVAL, "t.conf:3: routing.divert: from is ipv4 but to is ipv6",
	      "mixed-family selector, at the selector's line");
	fails("routing = { divert = (\n { family = \"ipv6\"; to = \"10.0.0.0/8\"; } ); };\n", -EINVAL,
	      "t.conf:2: routing.divert: family is ipv6 but the prefixes are ipv4",
	      "family against the prefix");
	fails("routing = { divert = ( { family = \"inet\"; } ); };\n", -EINVAL,
	      "t.conf:1: routing.divert.family: \"inet\" is not ipv4 or ipv6", "bad selector family");
	fails("routing = {\n  exclude = (\n    {\n      sport = 53;\n    }\n  );\n};\n", -EINVAL,
	      "t.conf:4: routing.exclude: sport needs ipproto tcp, udp or sctp",
	      "sport without ipproto");
	fails("routing = { exclude = ( { ipproto = \"icmp\";\n dport = \"1-2\"; } ); };\n", -EINVAL,
	      "t.conf:2: routing.exclude: dport needs ipproto tcp, udp or sctp", "dport with icmp");
	fails("routing = { exclude = ( { ipproto = \"udp\"; dport = \"9-3\"; } ); };\n", -ERANGE,
	      "t.conf:1: routing.exclude.dport: \"9-3\" is not a number or a range N-M within 0..65535",
	      "reversed port range");
	fails("routing = { exclude = ( { ipproto = \"udp\"; dport = 65536; } ); };\n", -ERANGE,
	      "t.conf:1: routing.exclude.dport: 65536 is out of range (0..65535)", "port too high");
	fails("routing = { exclude = ( { uid = \"1-x\"; } ); };\n", -EINVAL,
	      "t.conf:1: routing.exclude.uid: \"1-x\" is not a number or a range N-M within 0..4294967294",
	      "bad uid range");
	fails("routing = { exclude = ( { ipproto = \"gre\"; } ); };\n", -EINVAL,
	      "t.conf:1: routing.exclude.ipproto: \"gre\" is not tcp, udp, sctp, icmp, icmpv6 or a number 1..255",
	      "unknown ipproto name");
	fails("routing = { exclude = ( { ipproto = 256; } ); };\n", -ERANGE,
	      "t.conf:1: routing.exclude.ipproto: 256 is out of range (1..255)", "ipproto too high");
	fails("routing = { exclude = ( { ipproto = \"icmpv6\"; to = \"10.0.0.0/8\"; } ); };\n", -EINVAL,
	      "t.conf:1: routing.exclude: ipproto icmpv6 does not exist in ipv4", "icmpv6 with ipv4");
	fails("routing = { exclude = ( { fwmark = \"0x1/0x2\"; } ); };\n", -EINVAL,
	      "t.conf:1: routing.exclude.fwmark: mark 0x1 has bits outside mask 0x2 and would never match",
	      "fwmark outside its mask");
	fails("routing = { exclude = ( { fwmark = \"0x1/\"; } ); };\n", -EINVAL,
	      "t.conf:1: routing.exclude.fwmark: \"0x1/\" is not MARK or MARK/MASK (decimal or 0x hex)",
	      "bad fwmark");
	fails("routing = {\n  exclude = ( {} );\n};\n", -EINVAL,
	      "t.conf:2: routing.exclude: an empty selector would match all traffic",
	      "empty selector");
	config_free(parses("routing = { divert = (); exclude = []; };\n", "empty selector lists"));

	len = snprintf(text, sizeof(text), "routing = {\n  divert = (\n");
	for (int i = 0; i < CONFIG_SELECTORS_MAX + 1; i++)
		len += snprintf(text + len, sizeof(text) - len, "    { uid = %d; }%s\n", i,
				i == CONFIG_SELECTORS_MAX ? "" : ",");
	snprintf(text + len, sizeof(text) - len, "  );\n};\n");
	/* Selector i is on line 3 + i: the first one past the limit is reported. */
	fails(text, -E2BIG, "t.conf:67: routing.divert: too many selectors (at most 64)",
	      "too many selectors");
	len = snprintf(text, sizeof(text), "routing = {\n  divert = (\n");
	for (int i = 0; i < CONFIG_SELECTORS_MAX; i++)
		len += snprintf(text + len, sizeof(text) - len, "    { uid = %d; }%s\n", i,
				i == CONFIG_SELECTORS_MAX - 1 ? "" : ",");
	snprintf(text + len, sizeof(text) - len, "  );\n};\n");
	config_free(parses(text, "exactly CONFIG_SELECTORS_MAX selectors"));
}

static void test_rules(void)
{
	struct config *cfg;
	char buf[RULE_FORMAT_MAX];
	char *big;
	size_t len, cap;

	cfg = parses("rules = (\n"
		     "  { name = \"ttl\"; set-ttl = 64; },\n"
		     "  { set-ttl = \"-1\"; proto = \"udp\"; dport = 53; },\n"
		     "  { name = \"ping\"; proto = \"icmp\"; icmp-type = \"echo-request\";\n"
		     "    dst = \"192.0.2.0/24\"; probability = 0.5; verdict = \"reply\"; }\n"
		     ");\n",
		     "three rules");
	if (cfg) {
		is_int(cfg->n_rules, 3, "n_rules");
		if (cfg->n_rules == 3) {
			is_str(rule_name(cfg->rules[0]), "ttl", "rule 1 name");
			is_str(rule_name(cfg->rules[1]), "", "rule 2 has no name");
			is_str(rule_name(cfg->rules[2]), "ping", "rule 3 name");
			ok(rule_format(cfg->rules[0], buf, sizeof(buf)) > 0 && strstr(buf, "set-ttl=64"),
			   "rule 1: integer value: %s", buf);
			ok(rule_format(cfg->rules[1], buf, sizeof(buf)) > 0 && strstr(buf, "set-ttl=-1") &&
				   strstr(buf, "dport=53"),
			   "rule 2: string and integer values: %s", buf);
			ok(rule_format(cfg->rules[2], buf, sizeof(buf)) > 0 &&
				   strstr(buf, "probability=0.5") && strstr(buf, "verdict=reply"),
			   "rule 3: float value: %s", buf);
		}
	}
	config_free(cfg);

	/* Floats reach the rule vocabulary exactly, never rounded to 6 digits. */
	cfg = parses("rules = (\n"
		     "  { name = \"a\"; delay = 12345.678; jitter = 0.001; loss = 0.123456789; },\n"
		     "  { name = \"b\"; delay = 60000.0; duplicate = 0.1; corrupt = 1e-7; },\n"
		     "  { name = \"c\"; delay = 0.5; probability = 0.3333333333333333; }\n"
		     ");\n",
		     "impairment floats");
	if (cfg && cfg->n_rules == 3) {
		ok(rule_format(cfg->rules[0], buf, sizeof(buf)) > 0 &&
			   strstr(buf, "delay=12345.678 ") && strstr(buf, "jitter=0.001 ") &&
			   strstr(buf, "loss=0.123456789"),
		   "delay = 12345.678 stays 12345.678, not 12345.7: %s", buf);
		ok(rule_format(cfg->rules[1], buf, sizeof(buf)) > 0 &&
			   strstr(buf, "delay=60000 ") && strstr(buf, "duplicate=0.1 ") &&
			   strstr(buf, "corrupt=1e-07"),
		   "60000.0 is 60000 (no exponent), 0.1 is 0.1, 1e-7 exact: %s", buf);
		ok(rule_format(cfg->rules[2], buf, sizeof(buf)) > 0 && strstr(buf, "delay=0.5") &&
			   strstr(buf, "probability=0.3333333333333333 "),
		   "a probability keeps its 16 digits: %s", buf);
	}
	config_free(cfg);
	fails_at("rules = (\n  { name = \"x\";\n    delay = 12.3456; }\n);\n",
		 "t.conf:3: rule 'x': delay: ",
		 "delay = 12.3456 is refused (4 decimals), not rounded to 12.346");

	fails("rules = (\n  { name = \"a\"; set-ttl = 64; },\n  { name = \"b\";\n    set-ttl = 64;\n    colour = \"red\"; }\n);\n",
	      -EINVAL, "t.conf:5: rule 'b': 'colour': unknown key",
	      "unknown rule key, at its own line");
	fails_at("rules = (\n  { set-ttl = 64; },\n  { verdict = \"drop\";\n    set-ttl = 300; }\n);\n",
		 "t.conf:4: rule #2: set-ttl: ",
		 "bad rule value: the line of the value, a rule without name by position");
	fails_at("rules = (\n  { name = \"x\";\n    proto = \"tcp\"; }\n);\n", "t.conf:2: rule 'x': ",
		 "a rule that does nothing: the line of the rule");
	fails("rules = (\n  { name = \"x\"; dst = [ \"10.0.0.0/8\" ]; verdict = \"drop\"; }\n);\n",
	      -EINVAL, "t.conf:2: rule 'x': dst: expected a number, a string or a boolean, got an array",
	      "an array inside a rule");
	fails("rules = (\n  { name = \"a\"; set-ttl = 64; },\n  { name = \"b\"; set-ttl = 65; },\n"
	      "  { set-ttl = 66;\n    name = \"a\"; }\n);\n",
	      -EEXIST, "t.conf:5: rule 'a': duplicate name, already used by rule #1 at line 2",
	      "duplicate rule name");
	fails("rules = (\n  { name = \"a\"; set-ttl = 1; },\n  { name = \"b\"; set-ttl = 2; },\n"
	      "  { name = \"b\"; set-ttl = 3; },\n  { name = \"a\"; set-ttl = 4; }\n);\n",
	      -EEXIST, "t.conf:4: rule 'b': duplicate name, already used by rule #2 at line 3",
	      "the first duplicate in the file is reported");
	fails("rules = (\n  { set-ttl = 1; },\n  { name = \"rule-1\"; set-ttl = 2; }\n);\n", -EEXIST,
	      "t.conf:3: rule 'rule-1': duplicate name, already the default name of rule #1 at line 2",
	      "a name that an earlier unnamed rule has by default");
	fails("rules = (\n  { name = \"rule-2\";\n    set-ttl = 1; },\n  { set-ttl = 2; }\n);\n", -EEXIST,
	      "t.conf:4: rule #2: its default name 'rule-2' is already used by rule #1 at line 2",
	      "an unnamed rule whose default name is taken");
	fails("rules = (\n  { set-ttl = +1; }\n);\n", -EINVAL,
	      "t.conf:2: +1 reads as the plain number 1: quote it (\"+1\") for a relative value",
	      "set-ttl = +1 unquoted");

	/* CONFIG_RULES_MAX + 1 rules: the first one past the limit is reported. */
	cap = (CONFIG_RULES_MAX + 10) * 32;
	big = malloc(cap);
	if (!big)
		return;
	len = snprintf(big, cap, "rules = (\n");
	for (int i = 0; i <= CONFIG_RULES_MAX; i++)
		len += snprintf(big + len, cap - len, "{ set-ttl = %d; }%s\n", i % 255 + 1,
				i == CONFIG_RULES_MAX ? "" : ",");
	snprintf(big + len, cap - len, ");\n");
	fails(big, -E2BIG, "t.conf:10002: rules: too many rules (at most 10000)", "too many rules");
	free(big);
}

static void test_files(void)
{
	struct config *cfg = NULL;
	char path[sizeof(tmpdir) + 32], err[CONFIG_ERR_MAX], want[sizeof(path) + 64];
	const char *srcdir;
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	r = config_load(path, &cfg, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	is_int(r, -ENOENT, "missing file: -ENOENT");
	is_str(err, want, "missing file: message");
	ok(cfg == NULL, "missing file: no config");

	r = config_load(tmpdir, &cfg, err, sizeof(err));
	is_int(r, -EISDIR, "a directory: -EISDIR");

	snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
	f = fopen(path, "w");
	if (f) {
		fputs("tun = {\n  name = \"tun9\";\n};\nrouting = {\n  priority = 1;\n};", f);
		fclose(f);
	}
	r = config_load(path, &cfg, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:5: routing.priority: 1 is out of range (2..32765)", path);
	is_int(r, -ERANGE, "bad file: -ERANGE");
	is_str(err, want, "bad file: message names the file and line");

	snprintf(path, sizeof(path), "%s/good.conf", tmpdir);
	f = fopen(path, "w");
	if (f) {
		fputs("tun = { name = \"tun9\"; }; # no newline at the end", f);
		fclose(f);
	}
	r = config_load(path, &cfg, err, sizeof(err));
	is_int(r, 0, "good file");
	if (cfg) {
		is_str(cfg->path, path, "good file: path");
		is_str(cfg->tun_name, "tun9", "good file: tun.name");
	}
	cfg = config_free(cfg);

	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	f = fopen(path, "w");
	if (f) {
		fwrite("tun = {};\n\0", 1, 11, f);
		fclose(f);
	}
	r = config_load(path, &cfg, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: contains a NUL byte: not a text file", path);
	is_str(err, want, "a file with a NUL byte");

	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	if (mkfifo(path, 0600) == 0) {
		r = config_load(path, &cfg, err, sizeof(err));
		snprintf(want, sizeof(want), "%s: not a regular file", path);
		is_str(err, want, "a FIFO is refused without blocking");
	}

	srcdir = getenv("SRCDIR");
	if (!srcdir) {
		printf("ok %d # SKIP SRCDIR unset: the shipped etc/ipmodd.conf is not checked\n", ++tap_n);
		return;
	}
	snprintf(want, sizeof(want), "%s/etc/ipmodd.conf", srcdir);
	r = config_load(want, &cfg, err, sizeof(err));
	if (!ok(r == 0, "the shipped etc/ipmodd.conf loads"))
		diag("%s", err);
	if (cfg) {
		struct config *def = NULL;

		config_new_default(&def);
		ok(def && strcmp(cfg->tun_name, def->tun_name) == 0 && cfg->mtu == def->mtu &&
			   cfg->table == def->table && cfg->priority == def->priority &&
			   cfg->ipv4 == def->ipv4 && cfg->ipv6 == def->ipv6 &&
			   cfg->fastpath == def->fastpath,
		   "the shipped file states the defaults");
		config_free(def);
	}
	config_free(cfg);
}

static void cleanup(void)
{
	char path[sizeof(tmpdir) + 32];
	static const char *const files[] = { "bad.conf", "good.conf", "nul.conf", "fifo" };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

/* impairment.seed: impairing rules without seed= get one from it and their name. */
static void test_global_seed(void)
{
	struct config *a = NULL, *b = NULL, *c = NULL;
	char err[CONFIG_ERR_MAX];
	int ra, rb, rc;

	ra = parse("impairment = { seed = 42; };\n"
		   "rules = ( { name = \"x\"; loss = 0.1; }, { name = \"y\"; loss = 0.1; },\n"
		   "  { name = \"own\"; loss = 0.1; seed = 7; }, { name = \"plain\"; verdict = \"drop\"; },\n"
		   "  { loss = 0.2; } );", &a, err);
	rb = parse("rules = ( { name = \"x\"; loss = 0.1; }, { name = \"y\"; loss = 0.1; },\n"
		   "  { name = \"own\"; loss = 0.1; seed = 7; }, { name = \"plain\"; verdict = \"drop\"; },\n"
		   "  { loss = 0.2; } );\nimpairment = { seed = 42; };", &b, err);
	rc = parse("impairment = { seed = 43; };\nrules = ( { name = \"x\"; loss = 0.1; } );", &c, err);
	if (!ok(ra == 0 && rb == 0 && rc == 0, "impairment.seed parses, before or after rules (%s)",
		err))
		goto out;
	ok(a->seeded && a->seed == 42, "impairment.seed = 42");
	ok(a->rules[0]->impair.seeded && a->rules[1]->impair.seeded && a->rules[4]->impair.seeded,
	   "impairing rules without seed= get one");
	ok(a->rules[0]->impair.seed != a->rules[1]->impair.seed,
	   "rules x and y get different seeds");
	ok(a->rules[2]->impair.seed == 7, "a rule's own seed= stays");
	ok(!a->rules[3]->impair.seeded, "a rule that does not impair gets none");
	ok(a->rules[0]->impair.seed == b->rules[0]->impair.seed &&
	   a->rules[4]->impair.seed == b->rules[4]->impair.seed,
	   "the same seeds wherever the section is (rule-5 for the unnamed one)");
	ok(c->rules[0]->impair.seed != a->rules[0]->impair.seed,
	   "another impairment.seed, other seeds");
out:
	config_free(a);
	config_free(b);
	config_free(c);
	fails_at("impairment = { seed = -1; };", "t.conf:1: impairment.seed", "impairment.seed below 0");
	fails_at("impairment = { sed = 1; };", "t.conf:1: unknown key 'sed'", "impairment.sed: unknown");
	fails_at("rules = ( { rate = \"@/nonexistent/x.trace\"; } );",
		 "t.conf:1: rule #1: rate: trace /nonexistent/x.trace: No such file",
		 "rate=@FILE: a missing trace is the file's error, with its line");
}

static void test_routing_equal(void)
{
	static const char base[] =
		"routing = { table = 100; exclude = ( { to = \"10.1.0.0/16\"; } ); };\n";
	static const char moved[] = "\n\n# the same, two lines lower\n"
		"routing = {\n table = 100;\n exclude = ( { to = \"10.1.0.0/16\"; } );\n};\n"
		"rules = ( { set-ttl = 64; } );\n";
	static const char other[] =
		"routing = { table = 100; exclude = ( { to = \"10.2.0.0/16\"; } ); };\n";
	static const char table[] =
		"routing = { table = 101; exclude = ( { to = \"10.1.0.0/16\"; } ); };\n";
	struct config *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	char err[CONFIG_ERR_MAX];

	ok(config_parse_string(base, "a", &a, err, sizeof(err)) == 0 &&
	   config_parse_string(moved, "b", &b, err, sizeof(err)) == 0 &&
	   config_parse_string(other, "c", &c, err, sizeof(err)) == 0 &&
	   config_parse_string(table, "d", &d, err, sizeof(err)) == 0, "routing_equal inputs parse");
	if (a && b && c && d) {
		ok(config_routing_equal(a, b), "moved lines and new rules keep the routing equal");
		ok(!config_routing_equal(a, c), "another exclusion prefix is a routing change");
		ok(!config_routing_equal(a, d), "another table is a routing change");
	}
	{
		struct config *on = parses("fastpath = \"on\";\n", "fastpath on");
		struct config *off = parses("fastpath = \"off\";\n", "fastpath off");
		char changed[128] = "";

		ok(on && off && !config_routing_equal(on, off), "fastpath is a restart setting");
		ok(on && off && config_restart_changes(on, off, changed, sizeof(changed)) == 1 &&
		   strcmp(changed, "fastpath") == 0, "the reload names it: '%s'", changed);
		ok(a && d && config_restart_changes(a, d, changed, sizeof(changed)) == 1 &&
		   strcmp(changed, "routing.table") == 0, "and routing.table: '%s'", changed);
		ok(a && b && config_restart_changes(a, b, changed, sizeof(changed)) == 0 &&
		   changed[0] == '\0', "nothing when only rules change");
		config_free(on);
		config_free(off);
	}
	config_free(a);
	config_free(b);
	config_free(c);
	config_free(d);
}

static void test_inbound(void)
{
	struct config *d = parses("", "inbound default");
	struct config *a = parses("inbound = {\n interfaces = [ \"eth0\", \"veth-x.5\" ];\n};\n",
				  "inbound two interfaces");
	struct config *e = parses("inbound = { interfaces = [ ]; };\n", "inbound empty list");
	struct config *b = parses("inbound = { interfaces = [ \"eth1\" ]; };\n", "inbound eth1");
	char changed[128] = "";

	ok(d && d->n_inbound == 0, "no inbound interfaces by default");
	ok(e && e->n_inbound == 0, "an empty list: none");
	ok(a && a->n_inbound == 2 && strcmp(a->inbound_ifnames[0], "eth0") == 0 &&
	   strcmp(a->inbound_ifnames[1], "veth-x.5") == 0, "inbound.interfaces in order");
	ok(d && e && config_routing_equal(d, e), "absent and empty are the same");
	ok(a && b && config_restart_changes(a, b, changed, sizeof(changed)) == 1 &&
	   strcmp(changed, "inbound.interfaces") == 0, "inbound.interfaces is restart-only: '%s'",
	   changed);
	config_free(d);
	config_free(a);
	config_free(e);
	config_free(b);
	fails_at("inbound = {\n interfaces = [ \"eth0\", \"a/b\" ];\n};\n", "t.conf:2: inbound.interfaces: \"a/b\" is not a valid interface name",
	      "inbound: an invalid name, with its line");
	fails_at("inbound = {\n\n interfaces = [ \"0123456789abcdef\" ];\n};\n", "t.conf:3: inbound.interfaces: \"0123456789abcdef\" is not a valid interface name",
	      "inbound: a name of IFNAMSIZ characters");
	fails_at("inbound = { interfaces = [ \"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\" ]; };\n", "t.conf:1: inbound.interfaces: 9 interfaces, at most 8", "inbound: nine interfaces");
	fails_at("inbound = { interfaces = [ \"eth0\", \"eth0\" ]; };\n", "t.conf:1: inbound.interfaces: \"eth0\" is listed twice", "inbound: a name twice");
	fails_at("inbound = {\n interfaces = \"eth0\";\n};\n", "t.conf:2: inbound.interfaces: expected a list of interface names", "inbound: a string");
	fails_at("inbound = { interfaces = [ 5 ]; };\n", "t.conf:1: inbound.interfaces: expected a string, got an integer", "inbound: a number");
	fails_at("inbound = { iface = [ \"eth0\" ]; };\n", "t.conf:1: unknown key 'iface' in inbound", "inbound: an unknown key");
	fails_at("tun = { name = \"ipm0\"; };\ninbound = {\n interfaces = [ \"ipm0\" ];\n};\n", "t.conf:3: inbound.interfaces: \"ipm0\" is the tun", "inbound: the tun itself");
	fails_at("inbound = [ \"eth0\" ];\n", "t.conf:1: inbound: expected a group",
	      "inbound not a group");
}

/*
 * Every key of the table, changed alone from the defaults: a restart-only
 * key is the one change config_restart_changes() names (and
 * config_routing_equal() sees), any other key none.  A key without a sample
 * here fails, so a new key's row cannot skip the comparison.
 */
static void test_restart_keys(void)
{
	static const struct {
		const char *key, *text;
	} samples[] = {
		{ "tun.name", "tun = { name = \"tun9\"; };\n" },
		{ "tun.mtu", "tun = { mtu = 1400; };\n" },
		{ "tun.offload", "tun = { offload = false; };\n" },
		{ "tun.queues", "tun = { queues = 2; };\n" },
#ifdef HAVE_LIBURING
		{ "tun.io", "tun = { io = \"uring\"; };\n" },
#endif
		{ "tun.nice", "tun = { nice = 0; };\n" },
		{ "routing.table", "routing = { table = 200; };\n" },
		{ "routing.priority", "routing = { priority = 2000; };\n" },
		{ "routing.families", "routing = { families = [ \"ipv4\" ]; };\n" },
		{ "routing.divert", "routing = { divert = ( { to = \"10.1.0.0/16\"; } ); };\n" },
		{ "routing.exclude", "routing = { exclude = ( { to = \"10.1.0.0/16\"; } ); };\n" },
		{ "routing.failure", "routing = { failure = \"closed\"; };\n" },
		{ "routing.stall-timeout", "routing = { stall-timeout = 1000; };\n" },
		{ "routing.reinject", "routing = { reinject = \"forward\"; };\n" },
		{ "routing.rp-filter", "routing = { rp-filter = \"keep\"; };\n" },
		{ "routing.self-check", "routing = { self-check = false; };\n" },
		{ "inbound.interfaces", "inbound = { interfaces = [ \"eth1\" ]; };\n" },
		{ "control.socket", "control = { socket = \"/run/other.sock\"; };\n" },
		{ "control.group", "control = { group = \"wheel\"; };\n" },
		{ "control.mode", "control = { mode = \"0600\"; };\n" },
		{ "fastpath", "fastpath = \"off\";\n" },
		{ "flows.max", "flows = { max = 4096; };\n" },
		{ "rules", "rules = ( { set-ttl = 64; } );\n" },
		{ "impairment.seed", "impairment = { seed = 7; };\n" },
	};
	struct config *d = parses("", "the defaults");
	size_t n = 0, restart_n = 0;
	const char *name;
	bool restart;

	for (size_t i = 0; config_key_info(i, &name, &restart); i++) {
		struct config *c = NULL;
		char err[CONFIG_ERR_MAX] = "", changed[256] = "";
		size_t j;
		int r;

		n++;
		restart_n += restart;
		for (j = 0; j < sizeof(samples) / sizeof(samples[0]); j++)
			if (strcmp(samples[j].key, name) == 0)
				break;
#ifndef HAVE_LIBURING
		/* Its one other value is an error in this build (test_ranges()). */
		if (strcmp(name, "tun.io") == 0) {
			n--;
			restart_n -= restart;
			continue;
		}
#endif
		if (!ok(j < sizeof(samples) / sizeof(samples[0]), "key %s has a sample here", name))
			continue;
		r = config_parse_string(samples[j].text, "t.conf", &c, err, sizeof(err));
		if (!ok(r == 0 && d, "%s: the sample parses (%s)", name, err))
			continue;
		r = config_restart_changes(d, c, changed, sizeof(changed));
		if (restart)
			ok(r == 1 && strcmp(changed, name) == 0 && !config_routing_equal(d, c),
			   "restart-only %s: a change of it is compared and named ('%s')", name,
			   changed);
		else
			ok(r == 0 && changed[0] == '\0' && config_routing_equal(d, c),
			   "%s: a reload applies it, no restart named ('%s')", name, changed);
		ok(config_restart_changes(c, c, NULL, 0) == 0, "%s: equal to itself", name);
		config_free(c);
	}
	ok(n == sizeof(samples) / sizeof(samples[0]), "every sample is a key of the table (%zu, %zu)",
	   n, sizeof(samples) / sizeof(samples[0]));
#ifdef HAVE_LIBURING
	ok(restart_n == 22, "22 restart-only keys (%zu)", restart_n);
#else
	ok(restart_n == 21, "21 restart-only keys but tun.io (%zu)", restart_n);
#endif
	config_free(d);
}

/* sets (issue 14): list files read with the rules; errors name both files' lines. */
static void test_sets(void)
{
	char list[sizeof(tmpdir) + 32], bad[sizeof(tmpdir) + 32], text[1024], want[512];
	struct config *cfg;
	FILE *f;

	snprintf(list, sizeof(list), "%s/sets.list", tmpdir);
	snprintf(bad, sizeof(bad), "%s/bad.list", tmpdir);
	f = fopen(list, "w");
	if (f) {
		fputs("# test\n10.1.0.0/16\n2001:db8::/32\n", f);
		fclose(f);
	}
	f = fopen(bad, "w");
	if (f) {
		fputs("10.0.0.0/8\n\n10.0.0.0/33\n", f);
		fclose(f);
	}
	snprintf(text, sizeof(text),
		 "rules = (\n  { name = \"a\"; dst-set = \"@%s\"; verdict = \"drop\"; },\n"
		 "  { name = \"b\"; src-set = \"!@%s\"; set-dscp = \"cs1\"; }\n);\n", list, list);
	cfg = parses(text, "sets: dst-set and src-set parse");
	ok(cfg && cfg->n_rules == 2 && cfg->rules[0]->m.dst_set &&
	   cfg->rules[0]->m.dst_set == cfg->rules[1]->m.src_set,
	   "sets: two rules of one file share one load of the list");
	config_free(cfg);

	snprintf(text, sizeof(text),
		 "rules = (\n  { name = \"a\"; verdict = \"drop\";\n"
		 "    dst-set = \"@%s\"; }\n);\n", bad);
	snprintf(want, sizeof(want), "t.conf:3: rule 'a': dst-set: '@%s': %s:3: ", bad, bad);
	fails_at(text, want, "sets: a bad line: the config's file:line and the list's");
	snprintf(text, sizeof(text), "rules = ( { host-set = \"@%s/none.list\"; verdict = \"drop\"; } );",
		 tmpdir);
	snprintf(want, sizeof(want), "t.conf:1: rule #1: host-set: '@%s/none.list': %s/none.list: No such file",
		 tmpdir, tmpdir);
	fails_at(text, want, "sets: a missing list: its name and the config's file:line");
	unlink(list);
	unlink(bad);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults();
	test_full();
	test_syntax();
	test_keys();
	test_types();
	test_ranges();
	test_selectors();
	test_rules();
	test_files();
	test_routing_equal();
	test_restart_keys();
	test_inbound();
	test_global_seed();
	test_sets();
	cleanup();
	return tap_done();
}
