/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipmodd.conf(5): libconfig text -> struct config.  Every value is checked
 * here, so that the rest of the daemon can trust the struct; every error
 * names the file, the line and the setting.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "config.h"
#include "flow.h"
#include "tracelink.h"
#include "util.h"

#ifndef RUNDIR
#define RUNDIR "/run"
#endif

/* Far above any real rule set (CONFIG_RULES_MAX short rules fit in 2 MiB), and room for the save output below. */
#define CONFIG_FILE_MAX (32u << 20)
/*
 * "ipmodctl save" of the longest live chain fits: per rule its spec
 * (rule_format(), at most RULE_FORMAT_MAX) turned into a group, which adds
 * " ", " = ", two quotes and ";" per key, "{ ", " }", a tab, a comma and a
 * line feed, and a header of two lines.
 */
_Static_assert((size_t)RULES_MAX * (RULE_FORMAT_MAX + RULE_KV_MAX * 7 + 8) + 4096 <= CONFIG_FILE_MAX,
	       "the save output of a live chain of RULES_MAX rules is a readable file");

#define MTU_MIN 576
#define MTU_MIN_IPV6 1280
#define MTU_MAX 65535
#define PRIORITY_MIN 2		/* priority - 1 must stay above the local rule at 0 */
#define PRIORITY_MAX 32765
#define STALL_TIMEOUT_MIN 200		/* ms; below, a busy moment would look like a stall */
#define STALL_TIMEOUT_MAX 3600000	/* below the main (32766) and default (32767) rules */
#define TABLE_MAX 0xfffffffeu
#define UID_MAX_VALID 0xfffffffeu	/* (uid_t)-1 is no uid */

struct ctx {
	const char *name;
	char *err;
	size_t errlen;
};

static int _printf_(5, 0) vfail(const struct ctx *c, const char *file, unsigned int line, int r,
				 const char *fmt, va_list ap)
{
	char msg[CONFIG_ERR_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (c->errlen == 0)
		return r;
	if (line > 0)
		snprintf(c->err, c->errlen, "%s:%u: %s", file, line, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s", file, msg);
	return r;
}

/* "file:line: message" at setting s, or "file: message" without one. */
static int _printf_(4, 5) fail(const struct ctx *c, const config_setting_t *s, int r,
			       const char *fmt, ...)
{
	const char *file = s ? config_setting_source_file(s) : NULL;
	va_list ap;

	va_start(ap, fmt);
	r = vfail(c, file ?: c->name, s ? config_setting_source_line(s) : 0, r, fmt, ap);
	va_end(ap);
	return r;
}

static int _printf_(4, 5) fail_line(const struct ctx *c, unsigned int line, int r,
				    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r = vfail(c, c->name, line, r, fmt, ap);
	va_end(ap);
	return r;
}

/* "routing.exclude.dport": list positions are left out, the line says which. */
static void setting_path(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *p = config_setting_parent(s);
	const char *name = config_setting_name(s);

	buf[0] = '\0';
	if (!p)
		return;
	setting_path(p, buf, len);
	if (!name)
		return;
	if (buf[0] != '\0')
		strncat(buf, ".", len - strlen(buf) - 1);
	strncat(buf, name, len - strlen(buf) - 1);
}

#define QUOTE_MAX 64

/* A string from the file fit for a message: printable, and cut short. */
static const char *quote(char *buf, const char *s)
{
	str_sanitize(buf, QUOTE_MAX, s);
	return buf;
}

/* The buffer lives until the end of the enclosing block: long enough for a message. */
#define Q(s) quote((char[QUOTE_MAX]){ 0 }, (s))

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	}
	return "nothing";
}

static int fail_type(const struct ctx *c, const config_setting_t *s, const char *want)
{
	char path[256];

	setting_path(s, path, sizeof(path));
	return fail(c, s, -EINVAL, "%s: expected %s, got %s", path, want,
		    type_name(config_setting_type(s)));
}

static bool is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT ||
	       config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* libconfig stores 0x80000000..0xffffffff as a negative int: they mean the unsigned value. */
static long long int_value(const config_setting_t *s)
{
	if (config_setting_type(s) == CONFIG_TYPE_INT64)
		return config_setting_get_int64(s);
	if (config_setting_get_format(s) == CONFIG_FORMAT_HEX)
		return (uint32_t)config_setting_get_int(s);
	return config_setting_get_int(s);
}

static int get_int(const struct ctx *c, const config_setting_t *s, long long min, long long max,
		   long long *ret)
{
	char path[256];
	long long v;

	if (!is_int(s))
		return fail_type(c, s, "an integer");
	v = int_value(s);
	if (v < min || v > max) {
		setting_path(s, path, sizeof(path));
		return fail(c, s, -ERANGE, "%s: %lld is out of range (%lld..%lld)", path, v, min,
			    max);
	}
	*ret = v;
	return 0;
}

static int get_string(const struct ctx *c, const config_setting_t *s, const char **ret)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_type(c, s, "a string");
	*ret = config_setting_get_string(s);
	return 0;
}

/* A string naming one of names[n]: its index, or "KEY: "x" is not a, b or c". */
static int get_choice(const struct ctx *c, const config_setting_t *s, const char *key,
		      const char *const *names, size_t n, size_t *ret)
{
	char list[128];
	const char *str = NULL;
	size_t i, used = 0;
	int r, w;

	r = get_string(c, s, &str);
	if (r < 0)
		return r;
	for (i = 0; i < n; i++)
		if (strcmp(str, names[i]) == 0) {
			*ret = i;
			return 0;
		}
	list[0] = '\0';
	for (i = 0; i < n && used < sizeof(list); i++) {
		w = snprintf(list + used, sizeof(list) - used, "%s%s",
			     i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
		used += w > 0 ? (size_t)w : 0;
	}
	return fail(c, s, -EINVAL, "%s: \"%s\" is not %s", key, Q(str), list);
}

/* Plain decimal, or hex with 0x when hex is set; no sign, no blanks, no octal. */
static int parse_u32(const char *s, bool hex, uint32_t *ret)
{
	unsigned long long v = 0;
	unsigned int base = 10;

	if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		unsigned int d;

		if (isdigit((unsigned char)*s))
			d = *s - '0';
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = tolower((unsigned char)*s) - 'a' + 10;
		else
			return -EINVAL;
		v = v * base + d;
		if (v > UINT32_MAX)
			return -ERANGE;
	}
	*ret = v;
	return 0;
}

/* "N" or "N-M" with N <= M <= max. */
static int parse_range(const char *s, uint32_t max, uint32_t *ret_lo, uint32_t *ret_hi)
{
	char buf[32];
	const char *dash;
	uint32_t lo, hi;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	dash = strchr(s, '-');
	if (!dash) {
		if (parse_u32(s, false, &lo) < 0)
			return -EINVAL;
		hi = lo;
	} else {
		memcpy(buf, s, dash - s);
		buf[dash - s] = '\0';
		if (parse_u32(buf, false, &lo) < 0 || parse_u32(dash + 1, false, &hi) < 0)
			return -EINVAL;
	}
	if (lo > hi || hi > max)
		return -ERANGE;
	*ret_lo = lo;
	*ret_hi = hi;
	return 0;
}

/* An integer or an "N-M" string. */
static int get_range(const struct ctx *c, const config_setting_t *s, uint32_t max,
		     uint32_t *ret_lo, uint32_t *ret_hi)
{
	char path[256];
	long long v = 0;
	int r;

	if (is_int(s)) {
		r = get_int(c, s, 0, max, &v);
		if (r < 0)
			return r;
		*ret_lo = *ret_hi = v;
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_type(c, s, "an integer or a string");
	r = parse_range(config_setting_get_string(s), max, ret_lo, ret_hi);
	if (r < 0) {
		setting_path(s, path, sizeof(path));
		return fail(c, s, r, "%s: \"%s\" is not a number or a range N-M within 0..%" PRIu32,
			    path, Q(config_setting_get_string(s)), max);
	}
	return 0;
}

/* "192.0.2.0/24", "2001:db8::/32", or an address alone (a host route); host bits are cleared. */
static int parse_prefix(const char *s, struct prefix *ret)
{
	char addr[INET6_ADDRSTRLEN];
	struct prefix p;
	const char *slash;
	uint32_t len;
	size_t alen;
	int max;

	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	/* memset and memcpy, not "= {}": padding too is zero, so that selectors compare with memcmp. */
	memset(&p, 0, sizeof(p));
	if (inet_pton(AF_INET, addr, p.addr) == 1) {
		p.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, p.addr) == 1) {
		p.family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	len = max;
	if (slash && (strlen(slash + 1) > 3 || parse_u32(slash + 1, false, &len) < 0 ||
		      len > (uint32_t)max))
		return -EINVAL;
	p.len = len;
	for (int i = 0; i < 16; i++) {
		int bits = (int)len - 8 * i;

		if (bits <= 0)
			p.addr[i] = 0;
		else if (bits < 8)
			p.addr[i] &= (uint8_t)(0xff00 >> bits);
	}
	memcpy(ret, &p, sizeof(p));
	return 0;
}

static const char *family_name(int family)
{
	return family == AF_INET ? "ipv4" : "ipv6";
}

static int parse_family(const char *s)
{
	if (strcmp(s, "ipv4") == 0)
		return AF_INET;
	if (strcmp(s, "ipv6") == 0)
		return AF_INET6;
	return -EINVAL;
}

/* --- tun ------------------------------------------------------------------ */

static bool ifname_valid(const char *s)
{
	size_t len = strlen(s);

	/* The kernel's dev_valid_name(), minus '%': the name must be fixed. */
	if (len == 0 || len >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s == '%' || isspace((unsigned char)*s) ||
		    !isprint((unsigned char)*s))
			return false;
	return true;
}

/* An interface name, the value of key (for the message). */
static int get_ifname(const struct ctx *c, const config_setting_t *s, const char *key,
		      const char **ret)
{
	int r;

	r = get_string(c, s, ret);
	if (r < 0)
		return r;
	if (!ifname_valid(*ret))
		return fail(c, s, -EINVAL,
			    "%s: \"%s\" is not a valid interface name (1..%d characters, no '/', ':', '%%' or blanks)",
			    key, Q(*ret), IFNAMSIZ - 1);
	return 0;
}

struct state {
	struct config *cfg;
	const config_setting_t *mtu;	/* checked against the families once known */
	const config_setting_t *inbound;	/* inbound.interfaces, checked against tun.name */
};

/*
 * A key of ipmodd.conf(5), one row of config_keys[] (at the end of this
 * file): how it parses, its range, and how a reload treats it.
 */
struct config_key {
	const char *name;	/* as in ipmodd.conf(5): "section.key" or "key" */
	int (*parse)(const struct ctx *c, const config_setting_t *s, struct state *st,
		     const struct config_key *k);
	long long min, max;	/* an integer key's range */
	/* parse_int(), parse_bool(), parse_words(), parse_enum(): the field in struct config */
	size_t offset;
	size_t size;		/* parse_int(): the field's size, 4 or 8 bytes */
	/* parse_words(): false, true; parse_enum(): the enum's values in order */
	const char *const *words;
	size_t n_words;
	/*
	 * Read at the start only: a reload that changes it (equal() false)
	 * says so (config_restart_changes()).  Otherwise the reload applies
	 * it and equal is NULL.
	 */
	bool restart;
	bool (*equal)(const struct config *a, const struct config *b);
};

static const struct config_key *config_key_find(const char *section, const char *name);
static bool config_section_known(const char *section);

static int unknown_key(const struct ctx *c, const config_setting_t *g, const config_setting_t *s)
{
	char path[256];

	setting_path(g, path, sizeof(path));
	return fail(c, s, -EINVAL, "unknown key '%s' in %s", config_setting_name(s), path);
}

/* A group's keys, each parsed by its row; a key without one is unknown. */
static int parse_group(const struct ctx *c, const config_setting_t *g, struct state *st)
{
	const char *section = config_setting_name(g);

	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const struct config_key *k = config_key_find(section, config_setting_name(s));
		int r;

		if (!k)
			return unknown_key(c, g, s);
		r = k->parse(c, s, st, k);
		if (r < 0)
			return r;
	}
	return 0;
}

/* An integer in k->min..k->max, into the unsigned field of k->size bytes at k->offset. */
static int parse_int(const struct ctx *c, const config_setting_t *s, struct state *st,
		     const struct config_key *k)
{
	char *field = (char *)st->cfg + k->offset;
	long long v = 0;
	uint32_t v32;
	uint64_t v64;
	int r;

	r = get_int(c, s, k->min, k->max, &v);
	if (r < 0)
		return r;
	if (k->size == sizeof(v32)) {
		v32 = (uint32_t)v;
		memcpy(field, &v32, sizeof(v32));
	} else {
		v64 = (uint64_t)v;
		memcpy(field, &v64, sizeof(v64));
	}
	return 0;
}

/* true or false, into the bool at k->offset of the config. */
static int parse_bool(const struct ctx *c, const config_setting_t *s, struct state *st,
		      const struct config_key *k)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail_type(c, s, "a boolean (true or false)");
	*(bool *)((char *)st->cfg + k->offset) = config_setting_get_bool(s);
	return 0;
}

/* One of two words (k->words): the second sets the bool at k->offset. */
static int parse_words(const struct ctx *c, const config_setting_t *s, struct state *st,
		       const struct config_key *k)
{
	const char *str = NULL;
	int r;

	r = get_string(c, s, &str);
	if (r >= 0 && strcmp(str, k->words[0]) != 0 && strcmp(str, k->words[1]) != 0)
		r = fail(c, s, -EINVAL, "%s: \"%s\": expected \"%s\" or \"%s\"", k->name, Q(str),
			 k->words[0], k->words[1]);
	if (r >= 0)
		*(bool *)((char *)st->cfg + k->offset) = strcmp(str, k->words[1]) == 0;
	return r;
}

_Static_assert(sizeof(enum reinject_mode) == sizeof(unsigned int) &&
	       sizeof(enum fastpath_mode) == sizeof(unsigned int) &&
	       sizeof(enum tun_io) == sizeof(unsigned int), "parse_enum() stores an enum");

/* One of k->words, its index into the enum at k->offset. */
static int parse_enum(const struct ctx *c, const config_setting_t *s, struct state *st,
		      const struct config_key *k)
{
	unsigned int v;
	size_t i = 0;
	int r;

	r = get_choice(c, s, k->name, k->words, k->n_words, &i);
	if (r >= 0) {
		v = (unsigned int)i;
		memcpy((char *)st->cfg + k->offset, &v, sizeof(v));
	}
	return r;
}

/* --- tun -------------------------------------------------------------------- */

static int parse_tun_name(const struct ctx *c, const config_setting_t *s, struct state *st,
			  const struct config_key *k)
{
	const char *str = NULL;
	int r;

	r = get_ifname(c, s, k->name, &str);
	if (r < 0)
		return r;
	strcpy(st->cfg->tun_name, str);
	return 0;
}

static int parse_mtu(const struct ctx *c, const config_setting_t *s, struct state *st,
		     const struct config_key *k)
{
	int r;

	r = parse_int(c, s, st, k);
	if (r >= 0)
		st->mtu = s;
	return r;
}

static int parse_queues(const struct ctx *c, const config_setting_t *s, struct state *st,
			const struct config_key *k)
{
	const char *str = NULL;
	int r;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		r = get_string(c, s, &str);
		if (r < 0)
			return r;
		if (strcmp(str, "auto") != 0)
			return fail(c, s, -EINVAL,
				    "tun.queues: \"%s\" is neither a number (%lld..%lld) nor \"auto\"",
				    Q(str), k->min, k->max);
		st->cfg->queues = 0;
		return 0;
	}
	return parse_int(c, s, st, k);
}

/* One of k->words; "uring" only where the build has liburing (configure found it). */
static int parse_tun_io(const struct ctx *c, const config_setting_t *s, struct state *st,
			const struct config_key *k)
{
	int r;

	r = parse_enum(c, s, st, k);
#ifndef HAVE_LIBURING
	if (r >= 0 && st->cfg->tun_io == TUN_IO_URING)
		r = fail(c, s, -EOPNOTSUPP, "tun.io: \"uring\": this build of ipmodd lacks liburing "
			 "(configure did not find it, or --without-liburing)");
#endif
	return r;
}

/* --- routing ---------------------------------------------------------------- */

static int parse_ipproto(const struct ctx *c, const config_setting_t *s, uint8_t *ret)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} names[] = {
		{ "tcp", IPPROTO_TCP },
		{ "udp", IPPROTO_UDP },
		{ "sctp", IPPROTO_SCTP },
		{ "icmp", IPPROTO_ICMP },
		{ "icmpv6", IPPROTO_ICMPV6 },
	};
	char path[256];
	uint32_t v;
	long long iv = 0;
	int r;

	if (is_int(s)) {
		r = get_int(c, s, 1, 255, &iv);
		if (r < 0)
			return r;
		*ret = iv;
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_type(c, s, "an integer or a string");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(config_setting_get_string(s), names[i].name) == 0) {
			*ret = names[i].proto;
			return 0;
		}
	if (parse_u32(config_setting_get_string(s), false, &v) == 0 && v >= 1 && v <= 255) {
		*ret = v;
		return 0;
	}
	setting_path(s, path, sizeof(path));
	return fail(c, s, -EINVAL,
		    "%s: \"%s\" is not tcp, udp, sctp, icmp, icmpv6 or a number 1..255", path,
		    Q(config_setting_get_string(s)));
}

static int parse_fwmark(const struct ctx *c, const config_setting_t *s, struct selector *sel)
{
	char path[256], buf[32];
	const char *str = NULL, *slash;
	uint32_t mark, mask = UINT32_MAX;
	long long v = 0;
	int r;

	setting_path(s, path, sizeof(path));
	if (is_int(s)) {
		r = get_int(c, s, 0, UINT32_MAX, &v);
		if (r < 0)
			return r;
		mark = v;
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		str = config_setting_get_string(s);
		slash = strchr(str, '/');
		if (strlen(str) >= sizeof(buf))
			goto invalid;
		strcpy(buf, str);
		if (slash) {
			buf[slash - str] = '\0';
			if (parse_u32(slash + 1, true, &mask) < 0)
				goto invalid;
		}
		if (parse_u32(buf, true, &mark) < 0)
			goto invalid;
	} else {
		return fail_type(c, s, "an integer or a string");
	}
	if (mark & ~mask)
		return fail(c, s, -EINVAL, "%s: mark 0x%" PRIx32 " has bits outside mask 0x%" PRIx32
			    " and would never match", path, mark, mask);
	sel->match.has_fwmark = true;
	sel->match.fwmark = mark;
	sel->match.fwmask = mask;
	return 0;
invalid:
	return fail(c, s, -EINVAL, "%s: \"%s\" is not MARK or MARK/MASK (decimal or 0x hex)", path,
		    Q(str));
}

static int parse_selector_prefix(const struct ctx *c, const config_setting_t *s,
				 struct prefix *ret)
{
	char path[256];
	const char *str = NULL;
	int r;

	r = get_string(c, s, &str);
	if (r < 0)
		return r;
	if (parse_prefix(str, ret) < 0) {
		setting_path(s, path, sizeof(path));
		return fail(c, s, -EINVAL,
			    "%s: \"%s\" is not an address or a prefix (192.0.2.0/24, 2001:db8::/32)",
			    path, Q(str));
	}
	return 0;
}

static bool port_proto(uint8_t p)
{
	return p == IPPROTO_TCP || p == IPPROTO_UDP || p == IPPROTO_SCTP;
}

static int parse_selector(const struct ctx *c, const config_setting_t *g, struct selector *sel)
{
	const config_setting_t *family_s = NULL, *sport_s = NULL, *dport_s = NULL, *proto_s = NULL;
	char path[256];
	uint32_t lo = 0, hi = 0;
	int r;

	setting_path(g, path, sizeof(path));
	if (!config_setting_is_group(g))
		return fail(c, g, -EINVAL, "%s: each selector must be a group { ... }, got %s",
			    path, type_name(config_setting_type(g)));
	if (config_setting_length(g) == 0)
		return fail(c, g, -EINVAL, "%s: an empty selector would match all traffic", path);

	/* sel comes zeroed from calloc(), padding included. */
	sel->family = AF_UNSPEC;
	sel->line = config_setting_source_line(g);
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		const char *str = NULL;

		if (strcmp(name, "from") == 0) {
			r = parse_selector_prefix(c, s, &sel->from);
			sel->has_from = true;
		} else if (strcmp(name, "to") == 0) {
			r = parse_selector_prefix(c, s, &sel->to);
			sel->has_to = true;
		} else if (strcmp(name, "family") == 0) {
			r = get_string(c, s, &str);
			if (r >= 0) {
				sel->family = parse_family(str);
				if (sel->family < 0)
					r = fail(c, s, -EINVAL, "%s.family: \"%s\" is not ipv4 or ipv6",
						 path, Q(str));
			}
			family_s = s;
		} else if (strcmp(name, "uid") == 0) {
			r = get_range(c, s, UID_MAX_VALID, &sel->match.uid_start,
				      &sel->match.uid_end);
			sel->match.has_uid = true;
		} else if (strcmp(name, "ipproto") == 0) {
			r = parse_ipproto(c, s, &sel->match.ipproto);
			proto_s = s;
		} else if (strcmp(name, "sport") == 0) {
			r = get_range(c, s, UINT16_MAX, &lo, &hi);
			sel->match.sport_start = lo;
			sel->match.sport_end = hi;
			sel->match.has_sport = true;
			sport_s = s;
		} else if (strcmp(name, "dport") == 0) {
			r = get_range(c, s, UINT16_MAX, &lo, &hi);
			sel->match.dport_start = lo;
			sel->match.dport_end = hi;
			sel->match.has_dport = true;
			dport_s = s;
		} else if (strcmp(name, "fwmark") == 0) {
			r = parse_fwmark(c, s, sel);
		} else {
			return fail(c, s, -EINVAL, "unknown key '%s' in %s", name, path);
		}
		if (r < 0)
			return r;
	}

	if (sel->has_from && sel->has_to && sel->from.family != sel->to.family)
		return fail(c, g, -EINVAL, "%s: from is %s but to is %s", path,
			    family_name(sel->from.family), family_name(sel->to.family));
	if (sel->has_from || sel->has_to) {
		int f = sel->has_from ? sel->from.family : sel->to.family;

		if (sel->family != AF_UNSPEC && sel->family != f)
			return fail(c, family_s, -EINVAL, "%s: family is %s but the prefixes are %s",
				    path, family_name(sel->family), family_name(f));
		sel->family = f;
	}
	if ((sport_s || dport_s) && !port_proto(sel->match.ipproto))
		return fail(c, sport_s ?: dport_s, -EINVAL,
			    "%s: %s needs ipproto tcp, udp or sctp", path,
			    sport_s ? "sport" : "dport");
	if ((sel->match.ipproto == IPPROTO_ICMP && sel->family == AF_INET6) ||
	    (sel->match.ipproto == IPPROTO_ICMPV6 && sel->family == AF_INET))
		return fail(c, proto_s, -EINVAL, "%s: ipproto %s does not exist in %s", path,
			    sel->match.ipproto == IPPROTO_ICMP ? "icmp" : "icmpv6",
			    family_name(sel->family));
	/* An ip rule for icmp matches IPv4 packets only, one for icmpv6 IPv6 ones. */
	if (sel->match.ipproto == IPPROTO_ICMP)
		sel->family = AF_INET;
	else if (sel->match.ipproto == IPPROTO_ICMPV6)
		sel->family = AF_INET6;
	return 0;
}

static int parse_selectors(const struct ctx *c, const config_setting_t *s,
			   struct selector **ret, size_t *ret_n)
{
	char path[256];
	int n;

	setting_path(s, path, sizeof(path));
	if (!config_setting_is_list(s) && !(config_setting_is_array(s) && config_setting_length(s) == 0))
		return fail_type(c, s, "a list ( { ... }, ... )");
	n = config_setting_length(s);
	if (n > CONFIG_SELECTORS_MAX)
		return fail(c, config_setting_get_elem(s, CONFIG_SELECTORS_MAX), -E2BIG,
			    "%s: too many selectors (at most %d)", path, CONFIG_SELECTORS_MAX);
	free(*ret);
	*ret = NULL;
	*ret_n = 0;
	if (n == 0)
		return 0;
	*ret = calloc(n, sizeof(**ret));
	if (!*ret)
		return fail(c, NULL, -ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		int r = parse_selector(c, config_setting_get_elem(s, i), &(*ret)[i]);

		if (r < 0)
			return r;
		*ret_n = i + 1;
	}
	return 0;
}

static int parse_families(const struct ctx *c, const config_setting_t *s, struct state *st,
			  const struct config_key *k)
{
	struct config *cfg = st->cfg;
	bool seen[2] = {};

	cfg->families_line = config_setting_source_line(s);
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		const char *str = config_setting_get_string(s);

		if (strcmp(str, "auto") != 0)
			return fail(c, s, -EINVAL, "routing.families: \"%s\": expected \"auto\" or "
				    "an array [ \"ipv4\", \"ipv6\" ]", Q(str));
		cfg->ipv4 = cfg->ipv6 = cfg->ipv6_auto = true;
		return 0;
	}
	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return fail_type(c, s, "\"auto\" or an array [ \"ipv4\", \"ipv6\" ]");
	if (config_setting_length(s) == 0)
		return fail(c, s, -EINVAL, "routing.families: must name ipv4, ipv6 or both");
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const char *str = NULL;
		int f, r;

		r = get_string(c, e, &str);
		if (r < 0)
			return r;
		f = parse_family(str);
		if (f < 0)
			return fail(c, e, -EINVAL, "routing.families: \"%s\" is not ipv4 or ipv6",
				    Q(str));
		if (seen[f == AF_INET6])
			return fail(c, e, -EINVAL, "routing.families: %s is listed twice", str);
		seen[f == AF_INET6] = true;
	}
	cfg->ipv4 = seen[0];
	cfg->ipv6 = seen[1];
	cfg->ipv6_auto = false;
	return 0;
}

/*
 * inbound = { interfaces = [ "eth0", ... ]; }: at most CONFIG_INBOUND_MAX
 * distinct valid interface names, none of them the tun.
 */
static int parse_inbound_interfaces(const struct ctx *c, const config_setting_t *s,
				    struct state *st, const struct config_key *k)
{
	struct config *cfg = st->cfg;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail_type(c, s, "a list of interface names [ \"eth0\", ... ]");
	if (config_setting_length(s) > CONFIG_INBOUND_MAX)
		return fail(c, s, -E2BIG, "inbound.interfaces: %d interfaces, at most %d",
			    config_setting_length(s), CONFIG_INBOUND_MAX);
	cfg->n_inbound = 0;
	st->inbound = s;
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const char *str = NULL;
		int r;

		r = get_ifname(c, e, k->name, &str);
		if (r < 0)
			return r;
		for (unsigned int j = 0; j < cfg->n_inbound; j++)
			if (strcmp(cfg->inbound_ifnames[j], str) == 0)
				return fail(c, e, -EINVAL,
					    "inbound.interfaces: \"%s\" is listed twice", str);
		strcpy(cfg->inbound_ifnames[cfg->n_inbound++], str);
	}
	return 0;
}

static int parse_table(const struct ctx *c, const config_setting_t *s, struct state *st,
		       const struct config_key *k)
{
	long long v;
	int r;

	r = parse_int(c, s, st, k);
	v = st->cfg->table;
	if (r >= 0 && v >= 253 && v <= 255)
		r = fail(c, s, -EINVAL, "routing.table: %lld is reserved (%s)", v,
			 v == 253 ? "default" : v == 254 ? "main" : "local");
	return r;
}

static int parse_divert(const struct ctx *c, const config_setting_t *s, struct state *st,
			const struct config_key *k)
{
	return parse_selectors(c, s, &st->cfg->divert, &st->cfg->n_divert);
}

static int parse_exclude(const struct ctx *c, const config_setting_t *s, struct state *st,
			 const struct config_key *k)
{
	return parse_selectors(c, s, &st->cfg->exclude, &st->cfg->n_exclude);
}

static int parse_stall_timeout(const struct ctx *c, const config_setting_t *s, struct state *st,
			       const struct config_key *k)
{
	long long v;
	int r;

	r = parse_int(c, s, st, k);
	v = st->cfg->stall_timeout_ms;
	if (r >= 0 && v > 0 && v < STALL_TIMEOUT_MIN)
		r = fail(c, s, -EINVAL, "routing.stall-timeout: %lld ms is too short (0 or %d..%d)",
			 v, STALL_TIMEOUT_MIN, STALL_TIMEOUT_MAX);
	return r;
}

/* --- control ---------------------------------------------------------------- */

static bool group_name_valid(const char *s)
{
	/* The portable set of useradd(8), plus the trailing '$' of machine accounts. */
	if (s[0] == '\0' || s[0] == '-')
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.' &&
		    !(*p == '$' && p[1] == '\0'))
			return false;
	return true;
}

static int parse_control_socket(const struct ctx *c, const config_setting_t *s,
				struct state *st, const struct config_key *k)
{
	struct config *cfg = st->cfg;
	const char *str = NULL;
	int r;

	r = get_string(c, s, &str);
	if (r < 0)
		return r;
	if (str[0] != '/')
		return fail(c, s, -EINVAL, "control.socket: \"%s\" is not an absolute path", Q(str));
	if (strlen(str) >= sizeof(cfg->control_socket))
		return fail(c, s, -ENAMETOOLONG, "control.socket: path is longer than %zu characters",
			    sizeof(cfg->control_socket) - 1);
	if (str[strlen(str) - 1] == '/')
		return fail(c, s, -EINVAL, "control.socket: \"%s\" names a directory", Q(str));
	strcpy(cfg->control_socket, str);
	return 0;
}

static int parse_control_group(const struct ctx *c, const config_setting_t *s,
			       struct state *st, const struct config_key *k)
{
	struct config *cfg = st->cfg;
	const char *str = NULL;
	int r;

	r = get_string(c, s, &str);
	if (r < 0)
		return r;
	if (strlen(str) >= sizeof(cfg->control_group))
		return fail(c, s, -ENAMETOOLONG, "control.group: name is longer than %zu characters",
			    sizeof(cfg->control_group) - 1);
	if (str[0] != '\0' && !group_name_valid(str))
		return fail(c, s, -EINVAL, "control.group: \"%s\" is not a valid group name", Q(str));
	strcpy(cfg->control_group, str);
	return 0;
}

static int parse_control_mode(const struct ctx *c, const config_setting_t *s,
			      struct state *st, const struct config_key *k)
{
	const char *str = NULL;
	int r;

	r = get_string(c, s, &str);
	if (r < 0)
		return r;
	/* Who may connect; changes still need root or the group. */
	if (strcmp(str, "0600") == 0)
		st->cfg->control_mode = 0600;
	else if (strcmp(str, "0660") == 0)
		st->cfg->control_mode = 0660;
	else if (strcmp(str, "0666") == 0)
		st->cfg->control_mode = 0666;
	else
		return fail(c, s, -EINVAL,
			    "control.mode: \"%s\": expected \"0600\", \"0660\" or \"0666\"", Q(str));
	return 0;
}

static int parse_seed(const struct ctx *c, const config_setting_t *s, struct state *st,
		      const struct config_key *k)
{
	int r;

	r = parse_int(c, s, st, k);
	if (r >= 0)
		st->cfg->seeded = true;
	return r;
}

void config_seed_rule(const struct config *cfg, struct rule *r, size_t index)
{
	char name[RULE_NAME_MAX];
	uint64_t h = 0xcbf29ce484222325ULL, z;

	if (!cfg->seeded || !rule_impairs(r) || r->impair.seeded)
		return;
	if (r->name[0])
		snprintf(name, sizeof(name), "%s", r->name);
	else
		snprintf(name, sizeof(name), "rule-%zu", index + 1);
	/* FNV-1a of the name, then splitmix64's finalizer over it and the seed. */
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	z = cfg->seed + 0x9e3779b97f4a7c15ULL * (h | 1);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	r->impair.seeded = true;
	r->impair.seed = z ^ (z >> 31);
}

/* --- rules ---------------------------------------------------------------- */

static int rule_label(const config_setting_t *g, int i, char *buf, size_t len)
{
	const config_setting_t *n = config_setting_get_member(g, "name");

	if (n && config_setting_type(n) == CONFIG_TYPE_STRING)
		return snprintf(buf, len, "rule '%s'", Q(config_setting_get_string(n)));
	return snprintf(buf, len, "rule #%d", i + 1);
}

/*
 * A float as the shortest text that reads back as the same double, as
 * rule_format() prints them (12345.678 stays 12345.678, 0.1 stays 0.1), and
 * without an exponent where "%g" would need one only for lack of digits
 * (60000, not 6e+04): the rule vocabulary reads milliseconds as plain
 * decimals.
 */
static void format_float(char *buf, size_t len, double v)
{
	int prec = 1;

	for (double a = v < 0 ? -v : v; a >= 10 && prec < 17; a /= 10)
		prec++;
	for (; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
}

/* One rule group -> the key=value pairs of the rule vocabulary -> rule_parse(). */
static int parse_rule(const struct ctx *c, const config_setting_t *g, int i, struct rule **ret)
{
	struct rule_kv kv[RULE_KV_MAX];
	char num[RULE_KV_MAX][32];
	char label[QUOTE_MAX + 16], msg[CONFIG_ERR_MAX];
	size_t n, bad;
	int r;

	if (!config_setting_is_group(g))
		return fail(c, g, -EINVAL, "rules: rule #%d must be a group { ... }, got %s", i + 1,
			    type_name(config_setting_type(g)));
	rule_label(g, i, label, sizeof(label));
	n = config_setting_length(g);
	if (n > RULE_KV_MAX)
		return fail(c, g, -E2BIG, "%s: too many keys (at most %d)", label, RULE_KV_MAX);

	for (size_t k = 0; k < n; k++) {
		const config_setting_t *s = config_setting_get_elem(g, k);

		kv[k].key = config_setting_name(s);
		kv[k].value = num[k];
		switch (config_setting_type(s)) {
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64:
			snprintf(num[k], sizeof(num[k]), "%lld", int_value(s));
			break;
		case CONFIG_TYPE_FLOAT:
			format_float(num[k], sizeof(num[k]), config_setting_get_float(s));
			break;
		case CONFIG_TYPE_BOOL:
			kv[k].value = config_setting_get_bool(s) ? "true" : "false";
			break;
		case CONFIG_TYPE_STRING:
			kv[k].value = config_setting_get_string(s);
			break;
		default:
			return fail(c, s, -EINVAL, "%s: %s: expected a number, a string or a boolean, got %s",
				    label, kv[k].key, type_name(config_setting_type(s)));
		}
	}

	msg[0] = '\0';
	bad = n;
	r = rule_parse(kv, n, ret, &bad, msg, sizeof(msg));
	if (r < 0)
		return fail(c, bad < n ? config_setting_get_elem(g, bad) : g, r, "%s: %s", label,
			    msg[0] ? msg : strerror(-r));
	if ((*ret)->impair.trace[0]) {
		/* rate=@FILE: the trace is read at install; a bad one is this file's error too. */
		struct tl_trace tr;

		r = tl_trace_load((*ret)->impair.trace, &tr, msg, sizeof(msg));
		if (r < 0) {
			const config_setting_t *at = config_setting_get_member(g, "rate");

			*ret = rule_free(*ret);
			return fail(c, at ? at : g, r, "%s: rate: trace %s", label,
				    r == -ENOMEM ? "out of memory" : msg);
		}
		tl_trace_free(&tr);
	}
	return 0;
}

struct named {
	char name[RULE_NAME_MAX];
	bool implicit;		/* "rule-N", the name chain_new() gives an unnamed rule */
	int index;
	unsigned int line;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int d = strcmp(x->name, y->name);

	return d ? d : (x->index > y->index) - (x->index < y->index);
}

/*
 * Names must be unique, the "rule-N" of unnamed rules included: the control
 * socket addresses rules by name.  Sorted, so that CONFIG_RULES_MAX rules
 * cost n log n, not n².
 */
static int check_rule_names(const struct ctx *c, const config_setting_t *list, struct config *cfg)
{
	_cleanup_(freep) struct named *v = NULL;
	const struct named *dup = NULL, *first = NULL;
	size_t n = cfg->n_rules;

	v = calloc(n ?: 1, sizeof(*v));
	if (!v)
		return fail(c, NULL, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(list, i);
		const config_setting_t *s = config_setting_get_member(g, "name");
		const char *name = rule_name(cfg->rules[i]);

		v[i].implicit = name[0] == '\0';
		if (v[i].implicit)
			snprintf(v[i].name, sizeof(v[i].name), "rule-%zu", i + 1);
		else
			snprintf(v[i].name, sizeof(v[i].name), "%s", name);
		v[i].index = i;
		v[i].line = config_setting_source_line(s && !v[i].implicit ? s : g);
	}
	qsort(v, n, sizeof(*v), named_cmp);
	/* Report the duplicate that comes first in the file. */
	for (size_t i = 1, run = 0; i < n; i++) {
		if (strcmp(v[i].name, v[run].name) != 0) {
			run = i;
			continue;
		}
		if (!dup || v[i].index < dup->index) {
			dup = &v[i];
			first = &v[run];
		}
	}
	if (!dup)
		return 0;
	/* Two unnamed rules never share a default name: one of them has a name= here. */
	if (dup->implicit)
		return fail_line(c, dup->line, -EEXIST,
				 "rule #%d: its default name '%s' is already used by rule #%d at line %u",
				 dup->index + 1, dup->name, first->index + 1, first->line);
	return fail_line(c, dup->line, -EEXIST,
			 "rule '%s': duplicate name, already %s rule #%d at line %u", dup->name,
			 first->implicit ? "the default name of" : "used by", first->index + 1,
			 first->line);
}

static int parse_rules(const struct ctx *c, const config_setting_t *s, struct state *st,
		       const struct config_key *k)
{
	struct config *cfg = st->cfg;
	int n, r = 0;

	if (!config_setting_is_list(s) && !(config_setting_is_array(s) && config_setting_length(s) == 0))
		return fail_type(c, s, "a list ( { ... }, ... )");
	n = config_setting_length(s);
	if (n > CONFIG_RULES_MAX)
		return fail(c, config_setting_get_elem(s, CONFIG_RULES_MAX), -E2BIG,
			    "rules: too many rules (at most %d)", CONFIG_RULES_MAX);
	if (n == 0)
		return 0;
	cfg->rules = calloc(n, sizeof(*cfg->rules));
	if (!cfg->rules)
		return fail(c, NULL, -ENOMEM, "out of memory");
	/* sets (issue 14): rules naming the same list file share one load of it. */
	rule_set_scope_begin();
	for (int i = 0; i < n; i++) {
		r = parse_rule(c, config_setting_get_elem(s, i), i, &cfg->rules[i]);
		if (r < 0)
			break;
		cfg->n_rules = i + 1;
	}
	rule_set_scope_end();
	if (r < 0)
		return r;
	return check_rule_names(c, s, cfg);
}

/* --- the file ----------------------------------------------------------------- */

static bool is_name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '*';
}

/*
 * Before libconfig 1.7 an integer literal wider than 32 bits silently wraps
 * (5000000000 reads as 705032704), and in every version "+1" reads as 1,
 * which for set-ttl means "set to 1", not "add 1".  Refuse both.
 */
static int check_number(const struct ctx *c, const char *tok, size_t len, unsigned int line)
{
	char buf[64];
	size_t i = 0, digits;
	long long v;

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, tok, len);
	buf[len] = '\0';

	if (buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
		for (i = 2; buf[i] && isxdigit((unsigned char)buf[i]); i++)
			;
		if (buf[i] != '\0' || i == 2)
			return 0;
		for (i = 2; buf[i] == '0'; i++)
			;
		if (len - i > 8)
			return fail_line(c, line, -ERANGE,
					 "%s does not fit in 32 bits (libconfig needs %sL for a 64-bit value)",
					 buf, buf);
		return 0;
	}

	if (buf[0] == '+' || buf[0] == '-')
		i = 1;
	digits = strspn(buf + i, "0123456789");
	if (digits == 0 || buf[i + digits] != '\0')
		return 0;
	if (buf[0] == '+')
		return fail_line(c, line, -EINVAL,
				 "%s reads as the plain number %s: quote it (\"%s\") for a relative value",
				 buf, buf + 1, buf);
	errno = 0;
	v = strtoll(buf, NULL, 10);
	if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
		return fail_line(c, line, -ERANGE,
				 "%s does not fit in 32 bits (libconfig needs %sL for a 64-bit value)",
				 buf, buf);
	return 0;
}

/*
 * Walk the text with libconfig's own lexical rules (comments, strings) and
 * refuse what it would misread.  @include is refused too: it would make the
 * daemon open any path named in the file, relative to its working directory.
 */
static int check_text(const struct ctx *c, const char *t)
{
	unsigned int line = 1;
	const char *p = t;
	int r;

	while (*p) {
		if (*p == '\n') {
			line++;
			p++;
		} else if (p[0] == '/' && p[1] == '*') {
			for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
				if (*p == '\n')
					line++;
			if (*p)
				p += 2;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			while (*p && *p != '\n')
				p++;
		} else if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\n')
					line++;
				else if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
			}
			if (*p)
				p++;
		} else if (*p == '@') {
			if (strncmp(p, "@include", 8) == 0)
				return fail_line(c, line, -EINVAL, "@include is not supported");
			p++;
		} else if (isalpha((unsigned char)*p) || *p == '*') {
			while (is_name_char(*p))
				p++;
		} else if (isdigit((unsigned char)*p) || *p == '.' ||
			   ((*p == '+' || *p == '-') && (isdigit((unsigned char)p[1]) || p[1] == '.'))) {
			const char *start = p++;

			while (isalnum((unsigned char)*p) || *p == '.' ||
			       ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))
				p++;
			r = check_number(c, start, p - start, line);
			if (r < 0)
				return r;
		} else {
			p++;
		}
	}
	return 0;
}

int config_new_default(struct config **ret)
{
	struct config *cfg;

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	strcpy(cfg->tun_name, "tun0");
	cfg->mtu = 1500;
	cfg->offload = true;
	cfg->queues = 1;
	cfg->nice = CONFIG_NICE_DEFAULT;
	cfg->table = 100;
	cfg->priority = 10000;
	cfg->ipv4 = cfg->ipv6 = cfg->ipv6_auto = true;
	cfg->reinject = REINJECT_AUTO;
	cfg->stall_timeout_ms = 5000;
	cfg->flows_max = FLOW_MAX_DEFAULT;
	cfg->self_check = true;
	snprintf(cfg->control_socket, sizeof(cfg->control_socket), "%s",
		 RUNDIR "/ipmodd/control.sock");
	cfg->control_mode = 0660;
	cfg->fastpath = FASTPATH_AUTO;
	*ret = cfg;
	return 0;
}

struct config *config_free(struct config *cfg)
{
	if (!cfg)
		return NULL;
	for (size_t i = 0; i < cfg->n_rules; i++)
		rule_free(cfg->rules[i]);
	free(cfg->rules);
	free(cfg->divert);
	free(cfg->exclude);
	free(cfg->path);
	free(cfg);
	return NULL;
}

static void config_freep(struct config **cfg)
{
	config_free(*cfg);
}

/* Each top-level key by its row, each group's keys by theirs (parse_group()). */
static int parse_root(const struct ctx *c, const config_setting_t *root, struct config *cfg)
{
	struct state st = { .cfg = cfg };
	int r;

	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, i);
		const char *name = config_setting_name(s);
		const struct config_key *k = config_key_find(NULL, name);

		if (k) {
			r = k->parse(c, s, &st, k);
		} else if (config_section_known(name)) {
			if (!config_setting_is_group(s))
				return fail_type(c, s, "a group { ... }");
			r = parse_group(c, s, &st);
		} else {
			return fail(c, s, -EINVAL, "unknown key '%s'", name);
		}
		if (r < 0)
			return r;
	}

	/* After the whole file: impairment may come after rules. */
	for (size_t i = 0; i < cfg->n_rules; i++)
		config_seed_rule(cfg, cfg->rules[i], i);

	for (unsigned int i = 0; i < cfg->n_inbound; i++)
		if (strcmp(cfg->inbound_ifnames[i], cfg->tun_name) == 0)
			return fail(c, st.inbound, -EINVAL,
				    "inbound.interfaces: \"%s\" is the tun (tun.name), not an uplink",
				    cfg->tun_name);

	/* "auto" leaves IPv6 alone on a tun that cannot carry it. */
	if (cfg->ipv6_auto && cfg->mtu < MTU_MIN_IPV6)
		cfg->ipv6 = false;
	if (cfg->ipv6 && cfg->mtu < MTU_MIN_IPV6)
		return fail(c, st.mtu, -EINVAL,
			    "tun.mtu: %u is below %d, the minimum for IPv6 (or drop ipv6 from routing.families)",
			    cfg->mtu, MTU_MIN_IPV6);
	return 0;
}

/* text must end in a newline: libconfig does not end a comment at the end of input. */
static int parse_text(const struct ctx *c, const char *text, struct config **ret)
{
	_cleanup_(config_freep) struct config *cfg = NULL;
	config_t lc;
	int r;

	r = check_text(c, text);
	if (r < 0)
		return r;
	r = config_new_default(&cfg);
	if (r < 0)
		return fail(c, NULL, r, "out of memory");
	cfg->path = strdup(c->name);
	if (!cfg->path)
		return fail(c, NULL, -ENOMEM, "out of memory");

	config_init(&lc);
	if (!config_read_string(&lc, text)) {
		r = fail_line(c, config_error_line(&lc), -EINVAL, "%s",
			      config_error_text(&lc) ?: "syntax error");
		config_destroy(&lc);
		return r;
	}
	r = parse_root(c, config_root_setting(&lc), cfg);
	config_destroy(&lc);
	if (r < 0)
		return r;
	*ret = cfg;
	cfg = NULL;
	return 0;
}

int config_parse_string(const char *text, const char *name, struct config **ret, char *err,
			size_t errlen)
{
	const struct ctx c = { name ?: "<string>", err, errlen };
	_cleanup_(freep) char *copy = NULL;
	size_t len = strlen(text);

	if (errlen > 0)
		err[0] = '\0';
	if (len > CONFIG_FILE_MAX)
		return fail(&c, NULL, -EFBIG, "larger than %u bytes", CONFIG_FILE_MAX);
	copy = malloc(len + 2);
	if (!copy)
		return fail(&c, NULL, -ENOMEM, "out of memory");
	memcpy(copy, text, len);
	copy[len] = '\n';
	copy[len + 1] = '\0';
	return parse_text(&c, copy, ret);
}

int config_load(const char *path, struct config **ret, char *err, size_t errlen)
{
	const struct ctx c = { path, err, errlen };
	_cleanup_(freep) char *text = NULL;
	_cleanup_(closep) int fd = -1;
	struct stat st;
	size_t len = 0;

	if (errlen > 0)
		err[0] = '\0';
	/* O_NONBLOCK: a FIFO named by mistake must not hang the daemon. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0)
		return fail(&c, NULL, negative_errno(), "%s", strerror(errno));
	if (S_ISDIR(st.st_mode))
		return fail(&c, NULL, -EISDIR, "%s", strerror(EISDIR));
	if (!S_ISREG(st.st_mode))
		return fail(&c, NULL, -EINVAL, "not a regular file");
	if (st.st_size > CONFIG_FILE_MAX)
		return fail(&c, NULL, -EFBIG, "larger than %u bytes", CONFIG_FILE_MAX);

	/* Read to the end rather than trusting st_size: the file may be changing. */
	for (size_t cap = 0;;) {
		ssize_t k;

		/* Room for one byte past the limit, to tell "too large" from "exactly full". */
		if (len + 2 >= cap) {
			size_t want = cap ? cap * 2 : (size_t)st.st_size + 4096;
			char *t;

			if (want > CONFIG_FILE_MAX + 3)
				want = CONFIG_FILE_MAX + 3;
			t = realloc(text, want);
			if (!t)
				return fail(&c, NULL, -ENOMEM, "out of memory");
			text = t;
			cap = want;
		}
		k = read(fd, text + len, cap - 2 - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return fail(&c, NULL, negative_errno(), "%s", strerror(errno));
		if (k == 0)
			break;
		len += k;
		if (len > CONFIG_FILE_MAX)
			return fail(&c, NULL, -EFBIG, "larger than %u bytes", CONFIG_FILE_MAX);
	}
	if (memchr(text, '\0', len))
		return fail(&c, NULL, -EINVAL, "contains a NUL byte: not a text file");
	text[len] = '\n';
	text[len + 1] = '\0';
	return parse_text(&c, text, ret);
}

/* --- the keys: what a reload compares ------------------------------------ */

static bool prefix_equal(const struct prefix *a, const struct prefix *b)
{
	return a->family == b->family && a->len == b->len &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static bool selector_equal(const struct selector *a, const struct selector *b)
{
	return a->family == b->family && a->has_from == b->has_from && a->has_to == b->has_to &&
	       (!a->has_from || prefix_equal(&a->from, &b->from)) &&
	       (!a->has_to || prefix_equal(&a->to, &b->to)) &&
	       nl_selector_same(&a->match, &b->match);
}

static bool selectors_equal(const struct selector *a, size_t na, const struct selector *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (!selector_equal(&a[i], &b[i]))
			return false;
	return true;
}

/* One key's fields in two configurations: the same or not. */
#define KEY_EQUAL(fn, expr)                                                   \
	static bool fn(const struct config *a, const struct config *b)        \
	{                                                                      \
		return expr;                                                   \
	}

KEY_EQUAL(eq_tun_name, strcmp(a->tun_name, b->tun_name) == 0)
KEY_EQUAL(eq_mtu, a->mtu == b->mtu)
KEY_EQUAL(eq_offload, a->offload == b->offload)
KEY_EQUAL(eq_queues, a->queues == b->queues)
KEY_EQUAL(eq_tun_io, a->tun_io == b->tun_io)
KEY_EQUAL(eq_nice, a->nice == b->nice)
KEY_EQUAL(eq_table, a->table == b->table)
KEY_EQUAL(eq_priority, a->priority == b->priority)
KEY_EQUAL(eq_families, a->ipv4 == b->ipv4 && a->ipv6 == b->ipv6 && a->ipv6_auto == b->ipv6_auto)
KEY_EQUAL(eq_divert, selectors_equal(a->divert, a->n_divert, b->divert, b->n_divert))
KEY_EQUAL(eq_exclude, selectors_equal(a->exclude, a->n_exclude, b->exclude, b->n_exclude))
KEY_EQUAL(eq_failure, a->fail_closed == b->fail_closed)
KEY_EQUAL(eq_stall_timeout, a->stall_timeout_ms == b->stall_timeout_ms)
KEY_EQUAL(eq_control_socket, strcmp(a->control_socket, b->control_socket) == 0)
KEY_EQUAL(eq_control_group, strcmp(a->control_group, b->control_group) == 0)
KEY_EQUAL(eq_control_mode, a->control_mode == b->control_mode)
KEY_EQUAL(eq_fastpath, a->fastpath == b->fastpath)
KEY_EQUAL(eq_flows_max, a->flows_max == b->flows_max)
KEY_EQUAL(eq_reinject, a->reinject == b->reinject)
KEY_EQUAL(eq_rp_filter, a->rp_filter_keep == b->rp_filter_keep)
KEY_EQUAL(eq_self_check, a->self_check == b->self_check)
KEY_EQUAL(eq_inbound, a->n_inbound == b->n_inbound &&
	  memcmp(a->inbound_ifnames, b->inbound_ifnames, sizeof(a->inbound_ifnames)) == 0)

static const char *const reinject_modes[] = {
	[REINJECT_AUTO] = "auto",
	[REINJECT_BPF] = "bpf",
	[REINJECT_FORWARD] = "forward",
};
static const char *const fastpath_modes[] = {
	[FASTPATH_OFF] = "off",
	[FASTPATH_AUTO] = "auto",
	[FASTPATH_ON] = "on",
};
static const char *const tun_io_modes[] = {
	[TUN_IO_READWRITE] = "readwrite",
	[TUN_IO_URING] = "uring",
};
static const char *const failure_words[] = { "open", "closed" };
static const char *const rp_filter_words[] = { "loose", "keep" };

#define INT_KEY(n, fn, field, lo, hi)                                                   \
	.name = n, .parse = fn, .offset = offsetof(struct config, field),                  \
	.size = sizeof(((struct config *)0)->field), .min = lo, .max = hi
#define BOOL_KEY(n, field) .name = n, .parse = parse_bool, .offset = offsetof(struct config, field)
#define WORDS_KEY(n, field, w)                                                              \
	.name = n, .parse = parse_words, .offset = offsetof(struct config, field), .words = w, \
	.n_words = ARRAY_SIZE(w)
#define ENUM_KEY(n, field, w)                                                              \
	.name = n, .parse = parse_enum, .offset = offsetof(struct config, field), .words = w, \
	.n_words = ARRAY_SIZE(w)

_Static_assert(sizeof(unsigned int) == sizeof(uint32_t), "parse_int() stores 4 or 8 bytes");

/*
 * Every key of ipmodd.conf(5), one row each: the parser finds a key by its
 * row and refuses one without a row as unknown, so a key is not accepted
 * until its row says how it parses and how a reload treats it.
 */
static const struct config_key config_keys[] = {
	{ .name = "tun.name", .parse = parse_tun_name, .restart = true, .equal = eq_tun_name },
	{ INT_KEY("tun.mtu", parse_mtu, mtu, MTU_MIN, MTU_MAX), .restart = true, .equal = eq_mtu },
	{ BOOL_KEY("tun.offload", offload), .restart = true, .equal = eq_offload },
	{ INT_KEY("tun.queues", parse_queues, queues, 1, CONFIG_QUEUES_MAX), .restart = true,
	  .equal = eq_queues },
	{ .name = "tun.io", .parse = parse_tun_io, .offset = offsetof(struct config, tun_io),
	  .words = tun_io_modes, .n_words = ARRAY_SIZE(tun_io_modes), .restart = true,
	  .equal = eq_tun_io },
	{ INT_KEY("tun.nice", parse_int, nice, CONFIG_NICE_MIN, CONFIG_NICE_MAX), .restart = true,
	  .equal = eq_nice },
	{ INT_KEY("routing.table", parse_table, table, 1, TABLE_MAX), .restart = true, .equal = eq_table },
	{ INT_KEY("routing.priority", parse_int, priority, PRIORITY_MIN, PRIORITY_MAX), .restart = true,
	  .equal = eq_priority },
	{ .name = "routing.families", .parse = parse_families, .restart = true,
	  .equal = eq_families },
	{ .name = "routing.divert", .parse = parse_divert, .restart = true, .equal = eq_divert },
	{ .name = "routing.exclude", .parse = parse_exclude, .restart = true, .equal = eq_exclude },
	{ WORDS_KEY("routing.failure", fail_closed, failure_words), .restart = true,
	  .equal = eq_failure },
	{ INT_KEY("routing.stall-timeout", parse_stall_timeout, stall_timeout_ms, 0, STALL_TIMEOUT_MAX),
	  .restart = true, .equal = eq_stall_timeout },
	{ ENUM_KEY("routing.reinject", reinject, reinject_modes), .restart = true,
	  .equal = eq_reinject },
	{ WORDS_KEY("routing.rp-filter", rp_filter_keep, rp_filter_words), .restart = true,
	  .equal = eq_rp_filter },
	{ BOOL_KEY("routing.self-check", self_check), .restart = true, .equal = eq_self_check },
	{ .name = "inbound.interfaces", .parse = parse_inbound_interfaces, .restart = true,
	  .equal = eq_inbound },
	{ .name = "control.socket", .parse = parse_control_socket, .restart = true,
	  .equal = eq_control_socket },
	{ .name = "control.group", .parse = parse_control_group, .restart = true,
	  .equal = eq_control_group },
	{ .name = "control.mode", .parse = parse_control_mode, .restart = true,
	  .equal = eq_control_mode },
	{ ENUM_KEY("fastpath", fastpath, fastpath_modes), .restart = true, .equal = eq_fastpath },
	/* the table is sized at the start */
	{ INT_KEY("flows.max", parse_int, flows_max, FLOW_MAX_MIN, FLOW_MAX_MAX), .restart = true,
	  .equal = eq_flows_max },
	/* the reload's new chain */
	{ .name = "rules", .parse = parse_rules },
	/* in the rules' seeds, so in the new chain */
	{ INT_KEY("impairment.seed", parse_seed, seed, 0, INT64_MAX) },
};

/* The row of section.name (section NULL: a top-level key), or NULL. */
static const struct config_key *config_key_find(const char *section, const char *name)
{
	size_t n = section ? strlen(section) : 0;

	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const char *k = config_keys[i].name;

		if (section && (strncmp(k, section, n) != 0 || k[n] != '.'))
			continue;
		if (strcmp(section ? k + n + 1 : k, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/* A group of keys ("tun", "routing", ...): some row is "section.key". */
static bool config_section_known(const char *section)
{
	size_t n = strlen(section);

	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
		if (strncmp(config_keys[i].name, section, n) == 0 && config_keys[i].name[n] == '.')
			return true;
	return false;
}

bool config_key_info(size_t i, const char **ret_name, bool *ret_restart)
{
	if (i >= ARRAY_SIZE(config_keys))
		return false;
	*ret_name = config_keys[i].name;
	*ret_restart = config_keys[i].restart;
	return true;
}

int config_restart_changes(const struct config *a, const struct config *b, char *buf, size_t len)
{
	size_t used = 0;
	int n = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const struct config_key *k = &config_keys[i];
		int w;

		if (!k->restart || k->equal(a, b))
			continue;
		if (used < len) {
			w = snprintf(buf + used, len - used, "%s%s", n ? ", " : "", k->name);
			used += w > 0 ? (size_t)w : 0;
		}
		n++;
	}
	return n;
}

bool config_routing_equal(const struct config *a, const struct config *b)
{
	return config_restart_changes(a, b, NULL, 0) == 0;
}
