/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The configuration turned into kernel state (DESIGN.md section 1): the tun
 * link, its forwarding sysctls, the bypass and exclusion rules at P-1, the
 * default route in table T and the diversion rules at P.  Every object is
 * recorded once the kernel acknowledged it, so that a failure midway and
 * routing_free() remove exactly what was added, newest first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <linux/fib_rules.h>
#include <linux/ip.h>
#include <linux/netconf.h>
#include <linux/rtnetlink.h>

#include "netlink.h"
#include "inbound.h"
#include "routing.h"
#include "util.h"

#define SYSCTL_PATH_MAX 96
#define SYSCTL_VALUE_MAX 32
#define FLUSH_BATCH 64		/* deletions per dump */
#define FLUSH_ROUNDS 64		/* dumps per object kind before giving up */
#define RPF_LOOSE 2
#define RPF_STRICT 1
#define RPF_ALL (-1)		/* the ifindex that stands for "all" */
#define RPF_STATE_LINE 64

enum obj_kind {
	OBJ_RULE,
	OBJ_ROUTE,
	OBJ_INET_CONF,
	OBJ_SYSCTL,
};

/* The IPv4 devconf values a tun needs to forward written-back packets. */
static const struct nl_devconf tun_inet_conf[] = {
	{ IPV4_DEVCONF_FORWARDING, 1 },
	{ IPV4_DEVCONF_ACCEPT_LOCAL, 1 },
	{ IPV4_DEVCONF_RP_FILTER, 0 },
};

struct obj {
	enum obj_kind kind;
	bool block;		/* part of the fail-closed block: rules, unreachable routes */
	union {
		struct nl_rule rule;
		struct nl_route route;
		struct nl_devconf old_conf[ARRAY_SIZE(tun_inet_conf)];
		struct {
			char path[SYSCTL_PATH_MAX];
			char old[SYSCTL_VALUE_MAX];
			char want[SYSCTL_VALUE_MAX];
		} sysctl;
	};
};

/* An rp_filter ipmodd changed while it runs: an interface's, or "all" (RPF_ALL). */
struct rpf {
	int ifindex;
	char name[IFNAMSIZ];
	uint32_t old, effective;	/* before us */
	bool announced;		/* handed to routing_rp_filter_take() */
};

struct routing {
	struct nl *nl;
	int ifindex;
	char tun[IFNAMSIZ];
	bool fail_closed;
	bool rpf_loose;		/* IPv4 diverted with rp-filter = "loose" */
	uint32_t rpf_all;	/* net.ipv4.conf.all.rp_filter before us */
	struct rpf *rpf;
	size_t n_rpf;
	char rpf_state[ROUTING_STATE_PATH_MAX];
	bool keep_block;	/* routing_free() leaves the block in place */
	uint32_t priority, table;
	size_t n;
	struct obj objs[];	/* sized by routing_install() for all it can add */
};

/* --- messages ----------------------------------------------------------- */

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

static void sb_prefix(struct strbuf *b, int family, const uint8_t *addr, uint8_t len)
{
	char s[INET6_ADDRSTRLEN];
	unsigned int full = family == AF_INET ? 32 : 128;

	if (!inet_ntop(family, addr, s, sizeof(s)))
		snprintf(s, sizeof(s), "?");
	if (len == full)
		strbuf_printf(b, "%s", s);
	else
		strbuf_printf(b, "%s/%u", s, len);
}

static void sb_ports(struct strbuf *b, const char *what, uint16_t start, uint16_t end)
{
	if (start == end)
		strbuf_printf(b, " %s %u", what, start);
	else
		strbuf_printf(b, " %s %u-%u", what, start, end);
}

static const char *ipproto_name(uint8_t p)
{
	switch (p) {
	case 1:
		return "icmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 58:
		return "ipv6-icmp";
	case 132:
		return "sctp";
	default:
		return NULL;
	}
}

static void sb_table(struct strbuf *b, uint32_t table)
{
	if (table == RT_TABLE_MAIN)
		strbuf_printf(b, "main");
	else
		strbuf_printf(b, "%u", table);
}

/* The rule in "ip rule add" words, in the order "ip rule show" prints them. */
static void format_rule(char *buf, size_t len, const struct nl_rule *r)
{
	struct strbuf b = { .buf = buf, .size = len };

	buf[0] = '\0';
	strbuf_printf(&b, "from ");
	if (r->src_len)
		sb_prefix(&b, r->family, r->src, r->src_len);
	else
		strbuf_printf(&b, "all");
	if (r->dst_len) {
		strbuf_printf(&b, " to ");
		sb_prefix(&b, r->family, r->dst, r->dst_len);
	}
	if (r->has_fwmark) {
		strbuf_printf(&b, " fwmark 0x%x", r->fwmark);
		if (r->fwmask != UINT32_MAX)
			strbuf_printf(&b, "/0x%x", r->fwmask);
	}
	if (r->iifname[0])
		strbuf_printf(&b, " iif %s", r->iifname);
	if (r->has_uid)
		strbuf_printf(&b, " uidrange %u-%u", r->uid_start, r->uid_end);
	if (r->ipproto) {
		if (ipproto_name(r->ipproto))
			strbuf_printf(&b, " ipproto %s", ipproto_name(r->ipproto));
		else
			strbuf_printf(&b, " ipproto %u", r->ipproto);
	}
	if (r->has_sport)
		sb_ports(&b, "sport", r->sport_start, r->sport_end);
	if (r->has_dport)
		sb_ports(&b, "dport", r->dport_start, r->dport_end);
	strbuf_printf(&b, " lookup ");
	sb_table(&b, r->table);
	strbuf_printf(&b, " pref %u", r->priority);
}

static void format_route(char *buf, size_t len, const struct nl_route *rt, const char *dev)
{
	struct strbuf b = { .buf = buf, .size = len };

	buf[0] = '\0';
	if (rt->dst_len)
		sb_prefix(&b, rt->family, rt->dst, rt->dst_len);
	else
		strbuf_printf(&b, "default");
	if (dev && dev[0])
		strbuf_printf(&b, " dev %s", dev);
	else if (rt->oif > 0)
		strbuf_printf(&b, " dev if%d", rt->oif);
	strbuf_printf(&b, " table ");
	sb_table(&b, rt->table);
}

/* err = "STEP: strerror (kernel's reason)"; returns r. */
static _printf_(5, 6) int step_error(char *err, size_t errlen, int r, const char *extack,
				     const char *fmt, ...)
{
	struct strbuf b = { .buf = err, .size = errlen };
	va_list ap;
	int n;

	if (!err || !errlen)
		return r;
	err[0] = '\0';
	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		return r;
	b.len = (size_t)n < errlen ? (size_t)n : errlen - 1;
	strbuf_printf(&b, ": %s", strerror(-r));
	if (extack && extack[0])
		strbuf_printf(&b, " (%s)", extack);
	return r;
}

/* --- configuration checks ----------------------------------------------- */

static bool table_reserved(uint32_t t)
{
	return t == RT_TABLE_UNSPEC || t == RT_TABLE_COMPAT || t == RT_TABLE_DEFAULT ||
	       t == RT_TABLE_MAIN || t == RT_TABLE_LOCAL;
}

static int check_config(const struct config *cfg, char *err, size_t errlen)
{
	if (!memchr(cfg->tun_name, '\0', sizeof(cfg->tun_name)) || !cfg->tun_name[0])
		return step_error(err, errlen, -EINVAL, NULL, "invalid tun name");
	/* Cleanup flushes table T: never let that be a table the system relies on. */
	if (table_reserved(cfg->table))
		return step_error(err, errlen, -EINVAL, NULL, "table %u is reserved", cfg->table);
	if (cfg->priority < 1)
		return step_error(err, errlen, -EINVAL, NULL, "priority must be at least 1");
	if (cfg->n_divert > CONFIG_SELECTORS_MAX || cfg->n_exclude > CONFIG_SELECTORS_MAX ||
	    (cfg->n_divert && !cfg->divert) || (cfg->n_exclude && !cfg->exclude))
		return step_error(err, errlen, -E2BIG, NULL, "more than %d selectors or exclusions",
				  CONFIG_SELECTORS_MAX);
	return 0;
}

/* --- recorded objects --------------------------------------------------- */

static struct obj *record(struct routing *rt, enum obj_kind kind)
{
	struct obj *o = &rt->objs[rt->n++];

	memset(o, 0, sizeof(*o));
	o->kind = kind;
	return o;
}

static int read_sysctl(const char *path, char *buf, size_t len)
{
	_cleanup_(closep) int fd = -1;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, len - 1);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int write_sysctl(const char *path, const char *value)
{
	_cleanup_(closep) int fd = -1;
	size_t len = strlen(value);
	ssize_t n;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	n = write(fd, value, len);
	if (n < 0)
		return negative_errno();
	return (size_t)n == len ? 0 : -EIO;
}

static void undo(struct routing *rt, const struct obj *o)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct nl_link l = { .ifindex = rt->ifindex };
	int r = -EINVAL;

	/* Best effort: the object may be gone already (the tun took it along). */
	switch (o->kind) {
	case OBJ_RULE:
		r = nl_build_rule(buf, sizeof(buf), RTM_DELRULE, &o->rule);
		break;
	case OBJ_ROUTE:
		r = nl_build_route(buf, sizeof(buf), RTM_DELROUTE, &o->route);
		break;
	case OBJ_INET_CONF:
		l.inet_conf = o->old_conf;
		l.n_inet_conf = ARRAY_SIZE(o->old_conf);
		r = nl_build_setlink(buf, sizeof(buf), &l);
		break;
	case OBJ_SYSCTL:
		(void)write_sysctl(o->sysctl.path, o->sysctl.old);
		return;
	}
	if (r >= 0)
		(void)nl_request(rt->nl, buf, NULL, NULL);
}

static int rpf_put_back(struct nl *nl, int ifindex, const char *name, uint32_t old);

/* Every rp_filter we changed, newest first; the state file goes unless one failed. */
static void rpf_put_back_all(struct routing *rt)
{
	bool failed = false;

	for (size_t i = rt->n_rpf; i > 0; i--)
		failed |= rpf_put_back(rt->nl, rt->rpf[i - 1].ifindex, rt->rpf[i - 1].name,
				       rt->rpf[i - 1].old) < 0;
	if (rt->n_rpf && !failed && rt->rpf_state[0])
		unlink(rt->rpf_state);
}

struct routing *routing_free(struct routing *rt)
{
	size_t i;

	if (!rt)
		return NULL;
	for (i = rt->n; i > 0; i--)
		if (!(rt->keep_block && rt->objs[i - 1].block))
			undo(rt, &rt->objs[i - 1]);
	/* Once nothing is diverted any more: "all" first, the newest. */
	rpf_put_back_all(rt);
	nl_close(rt->nl);
	free(rt->rpf);
	free(rt);
	return NULL;
}

void routing_keep_block(struct routing *rt)
{
	if (rt && rt->fail_closed)
		rt->keep_block = true;
}

/* --- install ------------------------------------------------------------ */

static int add_rule(struct routing *rt, const struct nl_rule *rule, char *err, size_t errlen)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	char words[256];
	struct obj *o;
	int r;

	r = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, rule);
	if (r >= 0)
		r = nl_request(rt->nl, buf, NULL, NULL);
	/* Fail-closed: the block a stopped instance left is taken over as it is. */
	if (r == -EEXIST && rt->fail_closed)
		r = 0;
	if (r < 0) {
		format_rule(words, sizeof(words), rule);
		return step_error(err, errlen, r, nl_extack(rt->nl), "add rule '%s' (%s)", words,
				  family_name(rule->family));
	}
	o = record(rt, OBJ_RULE);
	o->rule = *rule;
	o->block = rt->fail_closed;
	return 0;
}

static int add_route(struct routing *rt, const struct nl_route *route, char *err, size_t errlen)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	bool block = route->type == RTN_UNREACHABLE;
	char words[128];
	struct obj *o;
	int r;

	r = nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, route);
	if (r >= 0)
		r = nl_request(rt->nl, buf, NULL, NULL);
	if (r == -EEXIST && block)
		r = 0;
	if (r < 0) {
		format_route(words, sizeof(words), route, rt->tun);
		return step_error(err, errlen, r, nl_extack(rt->nl), "add route '%s' (%s)", words,
				  family_name(route->family));
	}
	o = record(rt, OBJ_ROUTE);
	o->route = *route;
	o->block = block;
	return 0;
}

static int setup_link(struct routing *rt, uint32_t mtu, bool ipv6, char *err, size_t errlen)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	/*
	 * A longer queue than the default 500: a bulk TCP sender outruns the
	 * daemon in bursts, and each packet the tun drops is a retransmission.
	 */
	struct nl_link l = { .ifindex = rt->ifindex, .mtu = mtu, .txqlen = 4096, .up = true };
	struct nl_link noaddr = { .ifindex = rt->ifindex, .ipv6_no_addr = true };
	int r;

	/*
	 * No address at all on the tun, not even an IPv6 link-local one: that
	 * mode has to be set before the link goes up, since the kernel handles
	 * IFLA_AF_SPEC after the flags within one request.
	 */
	if (ipv6) {
		r = nl_build_setlink(buf, sizeof(buf), &noaddr);
		if (r >= 0)
			r = nl_request(rt->nl, buf, NULL, NULL);
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(rt->nl),
					  "set link %s addrgenmode none", rt->tun);
	}

	r = nl_build_setlink(buf, sizeof(buf), &l);
	if (r >= 0)
		r = nl_request(rt->nl, buf, NULL, NULL);
	if (r < 0 && mtu)
		return step_error(err, errlen, r, nl_extack(rt->nl), "set link %s mtu %u up",
				  rt->tun, mtu);
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(rt->nl), "set link %s up", rt->tun);
	return 0;
}

/* Written-back packets are forwarded from a local source: see DESIGN.md 1. */
static int setup_inet_conf(struct routing *rt, char *err, size_t errlen)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct nl_link l = {
		.ifindex = rt->ifindex,
		.inet_conf = tun_inet_conf,
		.n_inet_conf = ARRAY_SIZE(tun_inet_conf),
	};
	struct nl_link_info info;
	struct obj *o;
	size_t i;
	int r;

	r = nl_link_get(rt->nl, rt->ifindex, NULL, &info);
	if (r >= 0 && !info.has_inet_conf)
		r = -EAFNOSUPPORT;
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(rt->nl), "read IPv4 devconf of %s",
				  rt->tun);

	r = nl_build_setlink(buf, sizeof(buf), &l);
	if (r >= 0)
		r = nl_request(rt->nl, buf, NULL, NULL);
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(rt->nl),
				  "set IPv4 devconf of %s (forwarding 1, accept_local 1, rp_filter 0)",
				  rt->tun);

	o = record(rt, OBJ_INET_CONF);
	for (i = 0; i < ARRAY_SIZE(tun_inet_conf); i++) {
		o->old_conf[i].index = tun_inet_conf[i].index;
		o->old_conf[i].value = info.inet_conf[tun_inet_conf[i].index];
	}
	return 0;
}

/* Set a sysctl of /proc/sys and record its old value for routing_free() and the repair. */
static int set_sysctl(struct routing *rt, const char *path, const char *want, char *err,
		      size_t errlen)
{
	char old[SYSCTL_VALUE_MAX];
	struct obj *o;
	int r;

	r = read_sysctl(path, old, sizeof(old));
	if (r < 0)
		return step_error(err, errlen, r, NULL, "read %s", path);
	r = write_sysctl(path, want);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "write %s to %s", want, path);
	o = record(rt, OBJ_SYSCTL);
	snprintf(o->sysctl.path, sizeof(o->sysctl.path), "%s", path);
	memcpy(o->sysctl.old, old, sizeof(old));
	snprintf(o->sysctl.want, sizeof(o->sysctl.want), "%s", want);
	return 0;
}

int routing_has_force_forwarding(const char *tun)
{
	char path[SYSCTL_PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/force_forwarding", tun);
	if (stat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : negative_errno();
}

/*
 * IPv6 has no netlink devconf for this.  Before force_forwarding (6.17) only
 * all.forwarding=1 would make the kernel forward from the tun, which also
 * changes RA handling on every interface: that is the operator's decision,
 * not ours.  The re-injection program needs the tun's own forwarding flag
 * (its route lookup refuses without it), which forwards nothing by itself
 * before 6.17; force_forwarding, where there is one, keeps the kernel's
 * forwarding for the packets the program leaves to it.
 */
static int setup_ipv6_forwarding(struct routing *rt, bool reinject, char *err, size_t errlen)
{
	char dir[SYSCTL_PATH_MAX], path[SYSCTL_PATH_MAX];
	struct stat st;
	int r;

	snprintf(dir, sizeof(dir), "/proc/sys/net/ipv6/conf/%s", rt->tun);
	if (stat(dir, &st) < 0)
		return step_error(err, errlen, -EAFNOSUPPORT, NULL,
				  "enable IPv6 forwarding on %s (%s missing)", rt->tun, dir);
	if (reinject) {
		snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/forwarding", rt->tun);
		r = set_sysctl(rt, path, "1", err, errlen);
		if (r < 0)
			return r;
	}
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/force_forwarding", rt->tun);
	r = routing_has_force_forwarding(rt->tun);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "look for %s", path);
	if (r == 0 && reinject)
		return 0;
	if (r == 0)
		return step_error(err, errlen, -EOPNOTSUPP, NULL,
				  "enable IPv6 forwarding on %s: %s missing (kernel older than "
				  "6.17); net.ipv6.conf.all.forwarding=1 would be needed, which "
				  "ipmodd does not set: enable routing.reinject (CAP_BPF, kernel "
				  ">= 5.10) or remove ipv6 from routing.families", rt->tun, path);
	return set_sysctl(rt, path, "1", err, errlen);
}

struct repair {
	struct routing *rt;
	bool *found;		/* per object: in the kernel's dump */
	int n;
	char *item;
	size_t itemlen;
};

/* One more thing put back; the first one is named. */
static _printf_(2, 3) void repaired(struct repair *rep, const char *fmt, ...)
{
	va_list ap;

	if (rep->n++ || !rep->item || !rep->itemlen)
		return;
	va_start(ap, fmt);
	vsnprintf(rep->item, rep->itemlen, fmt, ap);
	va_end(ap);
}

/* --- reverse-path filter (DESIGN.md 6) ---------------------------------- */

/*
 * The effective rp_filter of a device is max(all, dev).  Two checks meet
 * ipmodd's routing:
 *  - an inbound IPv4 packet's reverse-path lookup (from the loopback,
 *    addresses swapped) meets "from all lookup T" and finds the tun: strict
 *    mode (1) on the uplink drops every inbound packet, loose mode (2) only
 *    asks for a route back, which the tun is;
 *  - a packet written back to the tun comes from a local address on a device
 *    without an IPv4 address: any mode but 0 drops it there (the kernel's
 *    IPReversePathFilter counter), loose too.  So "all" must be 0.
 * With rp-filter = "loose": every interface but lo and the tun that filters
 * (effective value 1 or 2, "all" as it was before us) gets 2 of its own, and
 * then "all" gets 0.  Nothing filters less than before but the strict
 * interfaces, which become loose.
 */

#define RPF_ALL_PATH "/proc/sys/net/ipv4/conf/all/rp_filter"

static uint32_t rpf_effective(uint32_t all, uint32_t dev)
{
	return all > dev ? all : dev;
}

static int rpf_read_all(uint32_t *ret)
{
	char v[SYSCTL_VALUE_MAX], *end;
	unsigned long n;
	int r;

	r = read_sysctl(RPF_ALL_PATH, v, sizeof(v));
	if (r < 0)
		return r;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || n > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)n;
	return 0;
}

static bool rpf_link_counts(int tun, const struct nl_link_info *l)
{
	return l->ifindex != tun && !(l->flags & IFF_LOOPBACK) && l->has_inet_conf;
}

/* A link that filters by "all" or by itself, without loose mode of its own. */
static bool rpf_link_needs(int tun, uint32_t all, const struct nl_link_info *l)
{
	uint32_t dev = l->inet_conf[IPV4_DEVCONF_RP_FILTER];

	return rpf_link_counts(tun, l) && rpf_effective(all, dev) != 0 && dev != RPF_LOOSE;
}

struct rpf_link {
	int ifindex;
	char name[IFNAMSIZ];
	uint32_t value, effective;
};

/* The links of one dump that need loose mode of their own. */
struct rpf_scan {
	int tun;
	uint32_t all;
	struct rpf_link links[ROUTING_RPF_MAX];
	size_t n;
	bool more;
};

static int rpf_scan_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct rpf_scan *sc = userdata;
	struct rpf_link *l;
	struct nl_link_info info;

	if (nl_parse_link(nlh, &info) < 0 || !rpf_link_needs(sc->tun, sc->all, &info))
		return 0;
	if (sc->n == ARRAY_SIZE(sc->links)) {
		sc->more = true;
		return 0;
	}
	l = &sc->links[sc->n++];
	l->ifindex = info.ifindex;
	memcpy(l->name, info.name, IFNAMSIZ);
	l->value = info.inet_conf[IPV4_DEVCONF_RP_FILTER];
	l->effective = rpf_effective(sc->all, l->value);
	return 0;
}

/* all: the value of "all" to judge the links by. */
static int rpf_scan(struct nl *nl, int tun, uint32_t all, struct rpf_scan *sc, char *err,
		    size_t errlen)
{
	int r;

	for (int attempt = 0; attempt < 4; attempt++) {
		memset(sc, 0, sizeof(*sc));
		sc->tun = tun;
		sc->all = all;
		r = nl_dump(nl, RTM_GETLINK, AF_UNSPEC, rpf_scan_cb, sc);
		if (r != -EINTR)
			break;
	}
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(nl), "dump links");
	if (sc->more)
		return step_error(err, errlen, -E2BIG, NULL,
				  "more than %d interfaces with a reverse-path filter", ROUTING_RPF_MAX);
	return 0;
}

static int rpf_set(struct nl *nl, int ifindex, uint32_t value)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct nl_devconf conf = { IPV4_DEVCONF_RP_FILTER, value };
	struct nl_link l = { .ifindex = ifindex, .inet_conf = &conf, .n_inet_conf = 1 };
	char v[SYSCTL_VALUE_MAX];
	int r;

	if (ifindex == RPF_ALL) {
		snprintf(v, sizeof(v), "%u", value);
		return write_sysctl(RPF_ALL_PATH, v);
	}
	r = nl_build_setlink(buf, sizeof(buf), &l);
	if (r >= 0)
		r = nl_request(nl, buf, NULL, NULL);
	return r;
}

/*
 * Put back old on ifindex if it is still the link named name and still
 * holds the value we set (want): what someone else set since is theirs.
 * 1: put back, 0: nothing to do, -errno.
 */
static int rpf_put_back(struct nl *nl, int ifindex, const char *name, uint32_t old)
{
	struct nl_link_info info;
	uint32_t now;
	int r;

	if (ifindex == RPF_ALL) {
		r = rpf_read_all(&now);
		if (r < 0 || now != 0)
			return r < 0 ? r : 0;
		r = rpf_set(nl, RPF_ALL, old);
		return r < 0 ? r : 1;
	}
	r = nl_link_get(nl, ifindex, NULL, &info);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return r;
	if (strcmp(name, info.name) != 0 || !info.has_inet_conf ||
	    info.inet_conf[IPV4_DEVCONF_RP_FILTER] != RPF_LOOSE)
		return 0;
	r = rpf_set(nl, ifindex, old);
	if (r == -ENODEV)
		return 0;
	return r < 0 ? r : 1;
}

/* The state file: what a crashed instance changed, for the next start or --cleanup. */
static void rpf_state_path(const struct config *cfg, char *buf, size_t len)
{
	const char *slash = strrchr(cfg->control_socket, '/');
	int n;

	buf[0] = '\0';
	if (!slash)
		return;
	n = snprintf(buf, len, "%.*s/%s.rp_filter", (int)(slash - cfg->control_socket),
		     cfg->control_socket, cfg->tun_name);
	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0';
}

/* Written whole under a temporary name, then renamed: never half a file. */
static int rpf_state_save(const struct routing *rt)
{
	char tmp[ROUTING_STATE_PATH_MAX + 8];
	FILE *f;
	int r = 0;

	if (!rt->rpf_state[0])
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.new", rt->rpf_state);
	f = fopen(tmp, "we");
	if (!f)
		return negative_errno();
	for (size_t i = 0; i < rt->n_rpf; i++)
		fprintf(f, "%d %s %u\n", rt->rpf[i].ifindex, rt->rpf[i].name, rt->rpf[i].old);
	if (fflush(f) != 0 || ferror(f))
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -EIO;
	if (r == 0 && rename(tmp, rt->rpf_state) < 0)
		r = negative_errno();
	if (r < 0)
		unlink(tmp);
	return r;
}

/* After a crash: put back what the state file lists, newest first; returns how many. */
static int rpf_state_restore(struct nl *nl, const char *path, char *err, size_t errlen)
{
	struct {
		int ifindex;
		char name[IFNAMSIZ];
		unsigned int old;
	} *e = NULL;
	char line[RPF_STATE_LINE];
	size_t n = 0;
	int r = 0, count = 0;
	FILE *f;

	if (!path[0])
		return 0;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : step_error(err, errlen, negative_errno(), NULL,
							"read %s", path);
	e = calloc(ROUTING_RPF_MAX + 1, sizeof(*e));
	if (!e) {
		fclose(f);
		return step_error(err, errlen, -ENOMEM, NULL, "read %s", path);
	}
	while (n <= ROUTING_RPF_MAX && fgets(line, sizeof(line), f))
		if (sscanf(line, "%d %15s %u", &e[n].ifindex, e[n].name, &e[n].old) == 3 &&
		    (e[n].ifindex > 0 || e[n].ifindex == RPF_ALL) && e[n].old <= RPF_LOOSE)
			n++;
	fclose(f);
	while (n > 0) {
		n--;
		r = rpf_put_back(nl, e[n].ifindex, e[n].name, e[n].old);
		if (r < 0) {
			step_error(err, errlen, r, nl_extack(nl), "put back rp_filter %u on %s",
				   e[n].old, e[n].name);
			break;
		}
		count += r;
	}
	free(e);
	/* Kept when something could not be put back: --cleanup tries again. */
	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return step_error(err, errlen, negative_errno(), NULL, "remove %s", path);
	return count;
}

static struct rpf *rpf_find(struct routing *rt, int ifindex)
{
	for (size_t i = 0; i < rt->n_rpf; i++)
		if (rt->rpf[i].ifindex == ifindex)
			return &rt->rpf[i];
	return NULL;
}

/*
 * Set value on ifindex, recorded with its old value (and written to the
 * state file) before the change.  *added: it was not recorded yet.
 */
static int rpf_change(struct routing *rt, int ifindex, const char *name, uint32_t old,
		      uint32_t effective, uint32_t value, bool *added, char *err, size_t errlen)
{
	struct rpf *e = rpf_find(rt, ifindex), *v;
	int r;

	*added = false;
	if (!e) {
		if (rt->n_rpf == ROUTING_RPF_MAX)
			return step_error(err, errlen, -E2BIG, NULL,
					  "more than %d interfaces with a reverse-path filter",
					  ROUTING_RPF_MAX);
		v = realloc(rt->rpf, (rt->n_rpf + 1) * sizeof(*v));
		if (!v)
			return step_error(err, errlen, -ENOMEM, NULL, "allocate rp_filter state");
		rt->rpf = v;
		e = &rt->rpf[rt->n_rpf++];
		memset(e, 0, sizeof(*e));
		e->ifindex = ifindex;
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->old = old;
		e->effective = effective;
		r = rpf_state_save(rt);
		if (r < 0) {
			rt->n_rpf--;
			return step_error(err, errlen, r, NULL, "write %s", rt->rpf_state);
		}
		*added = true;
	}
	r = rpf_set(rt->nl, ifindex, value);
	/* Gone meanwhile: nothing to filter on it. */
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(rt->nl), "set rp_filter %u on %s",
				  value, name);
	return 0;
}

/*
 * Loose mode of their own for the links that filter, then "all" to 0.  rep:
 * a repair, which counts and names what it set again; a new link is no
 * repair, it waits for routing_rp_filter_take().
 */
static int rpf_sync(struct routing *rt, struct repair *rep, char *err, size_t errlen)
{
	_cleanup_(freep) struct rpf_scan *sc = NULL;
	const struct rpf *all = rpf_find(rt, RPF_ALL);
	uint32_t now;
	bool added;
	int r;

	r = rpf_read_all(&now);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "read %s", RPF_ALL_PATH);
	/* Links are judged by "all" as it was before us. */
	if (!all)
		rt->rpf_all = now;
	sc = malloc(sizeof(*sc));
	if (!sc)
		return step_error(err, errlen, -ENOMEM, NULL, "allocate the link scan");
	r = rpf_scan(rt->nl, rt->ifindex, rt->rpf_all, sc, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sc->n; i++) {
		const struct rpf_link *l = &sc->links[i];

		r = rpf_change(rt, l->ifindex, l->name, l->value, l->effective, RPF_LOOSE, &added,
			       err, errlen);
		if (r < 0)
			return r;
		if (rep && !added)
			repaired(rep, "rp_filter 2 (loose) on %s", l->name);
	}
	if (now == 0)
		return 0;
	r = rpf_change(rt, RPF_ALL, "all", now, now, 0, &added, err, errlen);
	if (r < 0)
		return r;
	if (rep && !added)
		repaired(rep, "net.ipv4.conf.all.rp_filter=0");
	return 0;
}

/* rp-filter = "keep": refuse what would cut the host off. */
static int rpf_check_keep(struct routing *rt, char *err, size_t errlen)
{
	_cleanup_(freep) struct rpf_scan *sc = NULL;
	uint32_t all;
	int r;

	r = rpf_read_all(&all);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "read %s", RPF_ALL_PATH);
	sc = malloc(sizeof(*sc));
	if (!sc)
		return step_error(err, errlen, -ENOMEM, NULL, "allocate the link scan");
	r = rpf_scan(rt->nl, rt->ifindex, all, sc, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sc->n; i++) {
		const struct rpf_link *l = &sc->links[i];

		if (l->effective != RPF_STRICT)
			continue;
		snprintf(err, errlen,
			 "rp_filter: %s is strict (net.ipv4.conf.%s.rp_filter=%u, all=%u): once IPv4 "
			 "is diverted, every inbound IPv4 packet fails the reverse-path check there; "
			 "set routing.rp-filter = \"loose\", or net.ipv4.conf.%s.rp_filter=2", l->name,
			 l->name, l->value, all, l->name);
		return -EPERM;
	}
	if (all != 0) {
		snprintf(err, errlen,
			 "rp_filter: net.ipv4.conf.all.rp_filter=%u: packets written back to %s (from a "
			 "local address, on a device without one) fail any reverse-path check there; "
			 "set routing.rp-filter = \"loose\", or all=0 with each interface's own value "
			 "(net.ipv4.conf.IF.rp_filter=2)", all, rt->tun);
		return -EPERM;
	}
	return 0;
}

bool routing_rp_filter_take(struct routing *rt, char *name, size_t namelen, uint32_t *old,
			    uint32_t *effective)
{
	for (size_t i = 0; rt && i < rt->n_rpf; i++) {
		if (rt->rpf[i].announced)
			continue;
		rt->rpf[i].announced = true;
		snprintf(name, namelen, "%s", rt->rpf[i].name);
		*old = rt->rpf[i].old;
		*effective = rt->rpf[i].effective;
		return true;
	}
	return false;
}

static bool selector_applies(const struct selector *s, int family)
{
	if (s->family != AF_UNSPEC && s->family != family)
		return false;
	if (s->has_from && s->from.family != family)
		return false;
	if (s->has_to && s->to.family != family)
		return false;
	return true;
}

static void base_rule(struct nl_rule *r, int family, uint32_t priority, uint32_t table)
{
	memset(r, 0, sizeof(*r));
	r->family = (uint8_t)family;
	r->priority = priority;
	r->table = table;
}

static void selector_rule(struct nl_rule *r, const struct selector *s, int family,
			  uint32_t priority, uint32_t table)
{
	size_t alen = family == AF_INET ? 4 : 16;

	base_rule(r, family, priority, table);
	if (s->has_from) {
		r->src_len = s->from.len;
		memcpy(r->src, s->from.addr, alen);
	}
	if (s->has_to) {
		r->dst_len = s->to.len;
		memcpy(r->dst, s->to.addr, alen);
	}
	if (s->has_uid) {
		r->has_uid = true;
		r->uid_start = s->uid_start;
		r->uid_end = s->uid_end;
	}
	r->ipproto = s->ipproto;
	if (s->has_sport) {
		r->has_sport = true;
		r->sport_start = s->sport_start;
		r->sport_end = s->sport_end;
	}
	if (s->has_dport) {
		r->has_dport = true;
		r->dport_start = s->dport_start;
		r->dport_end = s->dport_end;
	}
	if (s->has_fwmark) {
		r->has_fwmark = true;
		r->fwmark = s->fwmark;
		/* "fwmark N" without a mask means all bits, as in ip-rule(8). */
		r->fwmask = s->fwmask ? s->fwmask : UINT32_MAX;
	}
}

static int setup_family(struct routing *rt, const struct config *cfg, int family, char *err,
			size_t errlen)
{
	struct nl_route route = {
		.family = (uint8_t)family,
		.table = cfg->table,
		.oif = rt->ifindex,
		.protocol = ROUTING_RTPROT,
	};
	struct nl_rule rule;
	size_t i;
	int r;

	/* Packets written back enter on the tun and must not be diverted again. */
	base_rule(&rule, family, cfg->priority - 1, RT_TABLE_MAIN);
	memcpy(rule.iifname, rt->tun, sizeof(rule.iifname));
	r = add_rule(rt, &rule, err, errlen);
	if (r < 0)
		return r;

	for (i = 0; i < cfg->n_exclude; i++) {
		if (!selector_applies(&cfg->exclude[i], family))
			continue;
		selector_rule(&rule, &cfg->exclude[i], family, cfg->priority - 1, RT_TABLE_MAIN);
		r = add_rule(rt, &rule, err, errlen);
		if (r < 0)
			return r;
	}

	r = add_route(rt, &route, err, errlen);
	if (r < 0)
		return r;
	/* Fail-closed: what the table answers once the tun and its route are gone. */
	if (rt->fail_closed) {
		struct nl_route block = route;

		block.oif = 0;
		block.type = RTN_UNREACHABLE;
		block.priority = UINT32_MAX;
		r = add_route(rt, &block, err, errlen);
		if (r < 0)
			return r;
	}

	/* Diversion last, once the bypass and the route it relies on exist. */
	if (cfg->n_divert == 0) {
		base_rule(&rule, family, cfg->priority, cfg->table);
		return add_rule(rt, &rule, err, errlen);
	}
	for (i = 0; i < cfg->n_divert; i++) {
		if (!selector_applies(&cfg->divert[i], family))
			continue;
		selector_rule(&rule, &cfg->divert[i], family, cfg->priority, cfg->table);
		r = add_rule(rt, &rule, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

static int verify_order(struct routing *rt, char *err, size_t errlen);

int routing_install(const struct config *cfg, int ifindex, unsigned int flags,
		    struct routing **ret, char *err, size_t errlen)
{
	struct routing *rt;
	size_t cap;
	int r;

	r = check_config(cfg, err, errlen);
	if (r < 0)
		return r;
	if (ifindex <= 0)
		return step_error(err, errlen, -EINVAL, NULL, "invalid ifindex %d", ifindex);
	if (!cfg->ipv4 && !cfg->ipv6)
		return step_error(err, errlen, -EINVAL, NULL, "neither IPv4 nor IPv6 enabled");

	/* Devconf and sysctls, then per family: bypass, exclusions, route, diversions. */
	cap = 3 + 2 * (4 + cfg->n_exclude + cfg->n_divert);
	rt = calloc(1, sizeof(*rt) + cap * sizeof(rt->objs[0]));
	if (!rt)
		return step_error(err, errlen, -ENOMEM, NULL, "allocate routing state");
	rt->ifindex = ifindex;
	rt->fail_closed = cfg->fail_closed;
	rt->priority = cfg->priority;
	rt->table = cfg->table;
	memcpy(rt->tun, cfg->tun_name, sizeof(rt->tun));
	rt->rpf_loose = cfg->ipv4 && !cfg->rp_filter_keep;
	rpf_state_path(cfg, rt->rpf_state, sizeof(rt->rpf_state));

	r = nl_open(&rt->nl);
	if (r < 0) {
		step_error(err, errlen, r, NULL, "open rtnetlink socket");
		goto fail;
	}
	r = setup_link(rt, cfg->mtu, cfg->ipv6, err, errlen);
	if (r < 0)
		goto fail;
	if (cfg->ipv4) {
		r = setup_inet_conf(rt, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (cfg->ipv6) {
		r = setup_ipv6_forwarding(rt, flags & ROUTING_REINJECT, err, errlen);
		if (r < 0)
			goto fail;
	}
	/* Before the diversion: inbound IPv4 must pass the reverse-path check from its start. */
	if (cfg->ipv4) {
		r = rt->rpf_loose ? rpf_sync(rt, NULL, err, errlen) : rpf_check_keep(rt, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (cfg->ipv4) {
		r = setup_family(rt, cfg, AF_INET, err, errlen);
		if (r < 0)
			goto fail;
	}
	if (cfg->ipv6) {
		r = setup_family(rt, cfg, AF_INET6, err, errlen);
		if (r < 0)
			goto fail;
	}
	r = verify_order(rt, err, errlen);
	if (r < 0)
		goto fail;
	*ret = rt;
	return 0;

fail:
	routing_free(rt);
	return r;
}

int routing_restore(struct routing *rt, char *err, size_t errlen)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	char words[256];
	const struct obj *o;
	int r, n = 0;
	size_t i;

	for (i = 0; i < rt->n; i++) {
		o = &rt->objs[i];
		if (o->kind == OBJ_RULE)
			r = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &o->rule);
		else if (o->kind == OBJ_ROUTE)
			r = nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &o->route);
		else
			continue;
		if (r >= 0)
			r = nl_request(rt->nl, buf, NULL, NULL);
		if (r == -EEXIST)
			continue;
		if (r < 0) {
			if (o->kind == OBJ_RULE)
				format_rule(words, sizeof(words), &o->rule);
			else
				format_route(words, sizeof(words), &o->route, rt->tun);
			return step_error(err, errlen, r, nl_extack(rt->nl), "restore %s '%s' (%s)",
					  o->kind == OBJ_RULE ? "rule" : "route", words,
					  family_name(o->kind == OBJ_RULE ? o->rule.family
									   : o->route.family));
		}
		n++;
	}
	return n;
}

/* --- cleanup ------------------------------------------------------------ */

/* Dumped entries to delete, as ready-made delete requests. */
struct flush {
	uint16_t del_type;
	uint32_t priority, table;
	bool keep_unreachable;
	void *msgs[FLUSH_BATCH];
	size_t n;
	bool more;
};

static void flush_done(struct flush *f)
{
	while (f->n > 0)
		free(f->msgs[--f->n]);
}

static bool flush_match(const struct flush *f, const struct nlmsghdr *nlh)
{
	struct nl_route route;
	struct nl_rule rule;

	if (f->del_type == RTM_DELRULE)
		return nl_parse_rule(nlh, &rule) == 0 && rule.action == FR_ACT_TO_TBL &&
		       rule.priority == f->priority && rule.table == f->table;
	return nl_parse_route(nlh, &route) == 0 && route.table == f->table &&
	       !(f->keep_unreachable && route.type == RTN_UNREACHABLE);
}

static int flush_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct flush *f = userdata;
	void *copy;
	int r;

	if (!flush_match(f, nlh))
		return 0;
	if (f->n == FLUSH_BATCH) {
		f->more = true;
		return 0;
	}
	copy = malloc(nlh->nlmsg_len);
	if (!copy)
		return -ENOMEM;
	/* Resend the dumped entry as its own delete, like "ip rule/route flush". */
	r = nl_build_copy(copy, nlh->nlmsg_len, nlh, f->del_type);
	if (r < 0) {
		free(copy);
		return r;
	}
	f->msgs[f->n++] = copy;
	return 0;
}

static void describe(char *buf, size_t len, const struct nlmsghdr *nlh)
{
	struct nl_route route;
	struct nl_rule rule;

	snprintf(buf, len, "?");
	if (nlh->nlmsg_type == RTM_DELRULE && nl_parse_rule(nlh, &rule) == 0)
		format_rule(buf, len, &rule);
	else if (nlh->nlmsg_type == RTM_DELROUTE && nl_parse_route(nlh, &route) == 0)
		format_route(buf, len, &route, NULL);
}

/* Delete every rule (priority, table) or route (table) of family; returns the count. */
static int flush(struct nl *nl, uint16_t del_type, uint8_t family, uint32_t priority,
		 uint32_t table, bool keep_unreachable, char *err, size_t errlen)
{
	bool rules = del_type == RTM_DELRULE;
	const char *what = rules ? "rule" : "route";
	char words[256];
	int r, count = 0;
	size_t i;

	for (unsigned int round = 0; round < FLUSH_ROUNDS; round++) {
		_cleanup_(flush_done) struct flush f = {
			.del_type = del_type, .priority = priority, .table = table,
			.keep_unreachable = keep_unreachable,
		};

		r = nl_dump(nl, rules ? RTM_GETRULE : RTM_GETROUTE, family, flush_cb, &f);
		if (r == -EINTR) {
			/* Changed while dumping: delete what we saw, then look again. */
			f.more = true;
			r = 0;
		}
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(nl), "dump %ss (%s)", what,
					  family_name(family));
		for (i = 0; i < f.n; i++) {
			r = nl_request(nl, f.msgs[i], NULL, NULL);
			if (r == -ENOENT || r == -ESRCH)
				continue;
			if (r < 0) {
				describe(words, sizeof(words), f.msgs[i]);
				return step_error(err, errlen, r, nl_extack(nl),
						  "delete %s '%s' (%s)", what, words,
						  family_name(family));
			}
			count++;
		}
		if (!f.more)
			break;
	}
	return count;
}

static int cleanup(const struct config *cfg, bool keep_block, char *err, size_t errlen)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	char path[ROUTING_STATE_PATH_MAX];
	struct nl_link_info info;
	struct nl *nl = NULL;
	int r, count = 0;
	size_t i;

	r = check_config(cfg, err, errlen);
	if (r < 0)
		return r;
	r = nl_open(&nl);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "open rtnetlink socket");

	/* First, so that a start reads the values as they were before the crashed instance. */
	rpf_state_path(cfg, path, sizeof(path));
	r = rpf_state_restore(nl, path, err, errlen);
	if (r < 0)
		goto cleanup;
	count += r;

	for (i = 0; i < ARRAY_SIZE(families); i++) {
		/* The block: the rules, and the unreachable routes they fall on. */
		if (!keep_block) {
			/* Diversion first, so that nothing is diverted without its bypass. */
			r = flush(nl, RTM_DELRULE, families[i], cfg->priority, cfg->table, false,
				  err, errlen);
			if (r < 0)
				goto cleanup;
			count += r;
			r = flush(nl, RTM_DELRULE, families[i], cfg->priority - 1, RT_TABLE_MAIN,
				  false, err, errlen);
			if (r < 0)
				goto cleanup;
			count += r;
		}
		r = flush(nl, RTM_DELROUTE, families[i], 0, cfg->table, keep_block, err, errlen);
		if (r < 0)
			goto cleanup;
		count += r;
	}

	/*
	 * Only a persistent tun outlives its process; a plain one, or one with a
	 * file attached (carrier on, or queues of a multi-queue tun), belongs to
	 * a live process.  Netlink, unlike /sys/class/net, answers for our own
	 * network namespace.
	 */
	/* The tun, then the inbound tuns (inbound.h) of every possible index. */
	for (unsigned int k = 0; k <= CONFIG_INBOUND_MAX; k++) {
		char name[IFNAMSIZ];

		if (k == 0)
			snprintf(name, sizeof(name), "%s", cfg->tun_name);
		else
			inbound_tun_name(cfg->tun_name, k - 1, name);
		r = nl_link_get(nl, 0, name, &info);
		if (r == -ENODEV)
			continue;
		if (r < 0) {
			step_error(err, errlen, r, nl_extack(nl), "get link %s", name);
			goto cleanup;
		}
		if (strcmp(info.kind, "tun") != 0 && k > 0)
			continue;
		if (info.tun_persist && !info.carrier && info.tun_queues == 0) {
			r = nl_build_dellink(buf, sizeof(buf), info.ifindex);
			if (r >= 0)
				r = nl_request(nl, buf, NULL, NULL);
			if (r < 0 && r != -ENODEV) {
				step_error(err, errlen, r, nl_extack(nl), "delete persistent tun %s",
					   name);
				goto cleanup;
			}
			if (r == 0)
				count++;
		}
	}
	r = count;

cleanup:
	nl_close(nl);
	return r;
}

int routing_tun_held(const struct config *cfg)
{
	struct nl_link_info info;
	struct nl *nl = NULL;
	int r;

	r = nl_open(&nl);
	if (r < 0)
		return r;
	r = nl_link_get(nl, 0, cfg->tun_name, &info);
	nl_close(nl);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return r;
	if (strcmp(info.kind, "tun") != 0)
		return 0;	/* not a tun: tun_open() refuses it */
	if (!info.tun_persist || info.carrier || info.tun_queues > 0)
		return info.tun_queues > 0 ? (int)info.tun_queues : 1;
	return 0;
}

int routing_cleanup(const struct config *cfg, char *err, size_t errlen)
{
	return cleanup(cfg, cfg->fail_closed, err, errlen);
}

int routing_cleanup_all(const struct config *cfg, char *err, size_t errlen)
{
	return cleanup(cfg, false, err, errlen);
}

int routing_remove_diversion(const struct config *cfg, char *err, size_t errlen)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	struct nl *nl = NULL;
	int r, count = 0;

	r = nl_open(&nl);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "open rtnetlink socket");
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		r = flush(nl, RTM_DELRULE, families[i], cfg->priority, cfg->table, false, err,
			  errlen);
		if (r < 0)
			break;
		count += r;
	}
	nl_close(nl);
	return r < 0 ? r : count;
}

/* --- order, watch and repair -------------------------------------------- */

static bool rule_is_bypass(const struct routing_order *o, const struct nl_rule *r)
{
	struct nl_rule bypass;

	base_rule(&bypass, r->family, o->priority - 1, RT_TABLE_MAIN);
	memcpy(bypass.iifname, o->tun, sizeof(bypass.iifname));
	return nl_rule_same(&bypass, r);
}

/*
 * Whether a rule can send a packet coming in on the tun to table T.  A rule
 * bound to another input, or to an output device (forwarded packets have
 * none), cannot; the other selectors are not looked at.
 */
static bool rule_diverts_tun(const struct routing_order *o, const struct nl_rule *r)
{
	if ((r->action && r->action != FR_ACT_TO_TBL) || r->table != o->table)
		return false;
	if (r->invert)
		return true;
	if (r->oifname[0])
		return false;
	return !r->iifname[0] || strcmp(r->iifname, o->tun) == 0;
}

void routing_order_init(struct routing_order *o, const char *tun, uint32_t priority,
			uint32_t table)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->tun, sizeof(o->tun), "%s", tun);
	o->priority = priority;
	o->table = table;
}

void routing_order_next(struct routing_order *o, const struct nl_rule *r)
{
	if (o->loop)
		return;
	if (!o->bypass && rule_is_bypass(o, r)) {
		o->bypass = true;
		return;
	}
	if (!rule_diverts_tun(o, r))
		return;
	if (!o->bypass) {
		o->loop = true;
		o->culprit = *r;
		return;
	}
	if (r->priority == o->priority)
		o->diversions++;
}

int routing_order_result(const struct routing_order *o, int family, unsigned int diversions,
			 char *err, size_t errlen)
{
	char words[256];

	if (o->loop) {
		format_rule(words, sizeof(words), &o->culprit);
		return step_error(err, errlen, -ELOOP, NULL,
				  "rule '%s' (%s) comes before the bypass 'from all iif %s lookup main "
				  "pref %u': packets written back to %s would be diverted again", words,
				  family_name(family), o->tun, o->priority - 1, o->tun);
	}
	if (!o->bypass)
		return step_error(err, errlen, -ENOENT, NULL,
				  "the bypass 'from all iif %s lookup main pref %u' (%s) is missing",
				  o->tun, o->priority - 1, family_name(family));
	if (o->diversions < diversions)
		return step_error(err, errlen, -ENOENT, NULL,
				  "%u of the %u diversion rules at pref %u (%s) are missing after the "
				  "bypass", diversions - o->diversions, diversions, o->priority,
				  family_name(family));
	return 0;
}

static int order_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct nl_rule rule;

	if (nl_parse_rule(nlh, &rule) == 0)
		routing_order_next(userdata, &rule);
	return 0;
}

/* The kernel evaluates rules in the order it dumps them: check it, per family we set up. */
static int verify_order(struct routing *rt, char *err, size_t errlen)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	struct routing_order o;
	unsigned int rules, diversions;
	int r;

	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		rules = diversions = 0;
		for (size_t i = 0; i < rt->n; i++) {
			const struct obj *ob = &rt->objs[i];

			if (ob->kind != OBJ_RULE || ob->rule.family != families[f])
				continue;
			rules++;
			diversions += ob->rule.priority == rt->priority && ob->rule.table == rt->table;
		}
		if (!rules)
			continue;
		for (int attempt = 0;; attempt++) {
			routing_order_init(&o, rt->tun, rt->priority, rt->table);
			r = nl_dump(rt->nl, RTM_GETRULE, families[f], order_cb, &o);
			if (r != -EINTR || attempt == 3)
				break;
		}
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(rt->nl), "dump rules (%s)",
					  family_name(families[f]));
		r = routing_order_result(&o, families[f], diversions, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Unset, the kernel takes metric 0 for IPv4 and 1024 (IP6_RT_PRIO_USER) for IPv6. */
static uint32_t route_metric(const struct nl_route *r)
{
	if (r->priority)
		return r->priority;
	return r->family == AF_INET6 ? 1024 : 0;
}

static uint8_t route_type(const struct nl_route *r)
{
	return r->type ? r->type : RTN_UNICAST;
}

/* The same place in the table: what NLM_F_REPLACE would replace. */
static bool route_key_same(const struct nl_route *a, const struct nl_route *b)
{
	size_t whole = a->dst_len / 8;
	uint8_t mask = (uint8_t)(0xff << (8 - a->dst_len % 8));

	if (a->family != b->family || a->table != b->table || a->dst_len != b->dst_len ||
	    route_metric(a) != route_metric(b) || memcmp(a->dst, b->dst, whole) != 0)
		return false;
	return a->dst_len % 8 == 0 || ((a->dst[whole] ^ b->dst[whole]) & mask) == 0;
}

/* An unreachable route has no device of its own (IPv6 shows lo): only a unicast one has. */
static bool route_same(const struct nl_route *a, const struct nl_route *b)
{
	return route_key_same(a, b) && route_type(a) == route_type(b) &&
	       (route_type(a) != RTN_UNICAST || a->oif == b->oif);
}

static bool inet_conf_ok(const struct nl_link_info *info)
{
	if (!info->has_inet_conf)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(tun_inet_conf); i++)
		if (info->inet_conf[tun_inet_conf[i].index] != tun_inet_conf[i].value)
			return false;
	return true;
}

static bool has_kind(const struct routing *rt, enum obj_kind kind)
{
	for (size_t i = 0; i < rt->n; i++)
		if (rt->objs[i].kind == kind)
			return true;
	return false;
}

bool routing_event_concerns(const struct routing *rt, const struct nlmsghdr *nlh)
{
	struct nl_link_info link;
	struct nl_netconf conf;
	struct nl_route route;
	struct nl_rule rule;
	size_t i;

	/* What our own requests changed is what we asked for. */
	if (nlh->nlmsg_pid && nlh->nlmsg_pid == nl_portid(rt->nl))
		return false;

	switch (nlh->nlmsg_type) {
	case RTM_DELRULE:
		if (nl_parse_rule(nlh, &rule) < 0)
			return false;
		for (i = 0; i < rt->n; i++)
			if (rt->objs[i].kind == OBJ_RULE && nl_rule_same(&rt->objs[i].rule, &rule))
				return true;
		return false;
	case RTM_DELROUTE:
	case RTM_NEWROUTE:
		if (nl_parse_route(nlh, &route) < 0 || route.table != rt->table)
			return false;
		for (i = 0; i < rt->n; i++) {
			const struct nl_route *want = &rt->objs[i].route;

			if (rt->objs[i].kind != OBJ_ROUTE || !route_key_same(want, &route))
				continue;
			/* A new route in our place that is not ours replaced it. */
			if (nlh->nlmsg_type == RTM_DELROUTE ? route_same(want, &route)
							    : !route_same(want, &route))
				return true;
		}
		return false;
	case RTM_NEWLINK:
		if (nl_parse_link(nlh, &link) < 0)
			return false;
		/* A new link, or one made strict again. */
		if (link.ifindex != rt->ifindex)
			return rt->rpf_loose && rpf_link_needs(rt->ifindex, rt->rpf_all, &link);
		return !(link.flags & IFF_UP) || (has_kind(rt, OBJ_INET_CONF) && !inet_conf_ok(&link));
	case RTM_NEWNETCONF:
		if (nl_parse_netconf(nlh, &conf) < 0)
			return false;
		/* Another link's rp_filter, or "all"'s, which counts for every link. */
		if (conf.ifindex != rt->ifindex)
			return rt->rpf_loose && conf.family == AF_INET && conf.has_rp_filter &&
			       conf.ifindex != NETCONFA_IFINDEX_DEFAULT &&
			       conf.rp_filter != (conf.ifindex == NETCONFA_IFINDEX_ALL ? 0 : RPF_LOOSE);
		if (conf.family == AF_INET)
			return has_kind(rt, OBJ_INET_CONF) &&
			       ((conf.has_forwarding && conf.forwarding != 1) ||
				(conf.has_rp_filter && conf.rp_filter != 0));
		/* force_forwarding has an attribute only newer headers name: look at any. */
		return conf.family == AF_INET6 && has_kind(rt, OBJ_SYSCTL);
	default:
		return false;
	}
}

static int repair_rule_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct repair *rep = userdata;
	struct nl_rule rule;

	if (nl_parse_rule(nlh, &rule) < 0)
		return 0;
	for (size_t i = 0; i < rep->rt->n; i++)
		if (rep->rt->objs[i].kind == OBJ_RULE && !rep->found[i] &&
		    nl_rule_same(&rep->rt->objs[i].rule, &rule))
			rep->found[i] = true;
	return 0;
}

static int repair_route_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct repair *rep = userdata;
	struct nl_route route;

	/* Filtered by the kernel when it can, here in any case. */
	if (nl_parse_route(nlh, &route) < 0 || route.table != rep->rt->table)
		return 0;
	for (size_t i = 0; i < rep->rt->n; i++)
		if (rep->rt->objs[i].kind == OBJ_ROUTE && !rep->found[i] &&
		    route_same(&rep->rt->objs[i].route, &route))
			rep->found[i] = true;
	return 0;
}

/* Which of our rules and routes the kernel has, from one consistent pair of dumps per family. */
static int repair_dump(struct repair *rep, char *err, size_t errlen)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	struct routing *rt = rep->rt;
	int r = 0;

	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		bool rules = false, routes = false;

		for (size_t i = 0; i < rt->n; i++) {
			rules |= rt->objs[i].kind == OBJ_RULE && rt->objs[i].rule.family == families[f];
			routes |= rt->objs[i].kind == OBJ_ROUTE &&
				  rt->objs[i].route.family == families[f];
		}
		for (int attempt = 0; rules && attempt < 4; attempt++) {
			r = nl_dump(rt->nl, RTM_GETRULE, families[f], repair_rule_cb, rep);
			if (r != -EINTR)
				break;
		}
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(rt->nl), "dump rules (%s)",
					  family_name(families[f]));
		for (int attempt = 0; routes && attempt < 4; attempt++) {
			r = nl_dump_table(rt->nl, families[f], rt->table, repair_route_cb, rep);
			if (r != -EINTR)
				break;
		}
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(rt->nl), "dump table %u (%s)",
					  rt->table, family_name(families[f]));
	}
	return 0;
}

static int repair_link(struct repair *rep, struct nl_link_info *info, char *err, size_t errlen)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct routing *rt = rep->rt;
	struct nl_link l = { .ifindex = rt->ifindex, .up = true };
	int r;

	r = nl_link_get(rt->nl, rt->ifindex, NULL, info);
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(rt->nl), "get link %s", rt->tun);
	if (info->flags & IFF_UP)
		return 0;
	r = nl_build_setlink(buf, sizeof(buf), &l);
	if (r >= 0)
		r = nl_request(rt->nl, buf, NULL, NULL);
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(rt->nl), "set link %s up", rt->tun);
	repaired(rep, "link %s up", rt->tun);
	return 0;
}

static int repair_obj(struct repair *rep, size_t i, const struct nl_link_info *info, char *err,
		      size_t errlen)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct routing *rt = rep->rt;
	const struct obj *o = &rt->objs[i];
	struct nl_link l = {
		.ifindex = rt->ifindex,
		.inet_conf = tun_inet_conf,
		.n_inet_conf = ARRAY_SIZE(tun_inet_conf),
	};
	char value[SYSCTL_VALUE_MAX], words[256];
	int r;

	switch (o->kind) {
	case OBJ_INET_CONF:
		if (inet_conf_ok(info))
			return 0;
		r = nl_build_setlink(buf, sizeof(buf), &l);
		if (r >= 0)
			r = nl_request(rt->nl, buf, NULL, NULL);
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(rt->nl),
					  "set IPv4 devconf of %s", rt->tun);
		repaired(rep, "IPv4 devconf of %s (forwarding 1, accept_local 1, rp_filter 0)",
			 rt->tun);
		return 0;
	case OBJ_SYSCTL:
		r = read_sysctl(o->sysctl.path, value, sizeof(value));
		if (r == 0 && strcmp(value, o->sysctl.want) == 0)
			return 0;
		if (r == 0)
			r = write_sysctl(o->sysctl.path, o->sysctl.want);
		if (r < 0)
			return step_error(err, errlen, r, NULL, "write %s to %s", o->sysctl.want,
					  o->sysctl.path);
		repaired(rep, "%s=%s", o->sysctl.path, o->sysctl.want);
		return 0;
	case OBJ_RULE:
		if (rep->found[i])
			return 0;
		r = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &o->rule);
		if (r >= 0)
			r = nl_request(rt->nl, buf, NULL, NULL);
		format_rule(words, sizeof(words), &o->rule);
		/*
		 * EEXIST, for a rule the dump did not show: one the kernel takes
		 * for ours ("not", or other selectors it does not compare) is in
		 * the way.  Not ours to delete.
		 */
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(rt->nl), "restore rule '%s' (%s)",
					  words, family_name(o->rule.family));
		repaired(rep, "rule '%s' (%s)", words, family_name(o->rule.family));
		return 0;
	case OBJ_ROUTE:
		if (rep->found[i])
			return 0;
		r = nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &o->route);
		/* Whatever took our place in the table gives it back. */
		if (r >= 0) {
			((struct nlmsghdr *)buf)->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE |
								NLM_F_REPLACE;
			r = nl_request(rt->nl, buf, NULL, NULL);
		}
		format_route(words, sizeof(words), &o->route,
			     route_type(&o->route) == RTN_UNICAST ? rt->tun : NULL);
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(rt->nl),
					  "restore route '%s%s' (%s)",
					  route_type(&o->route) == RTN_UNICAST ? "" : "unreachable ",
					  words, family_name(o->route.family));
		repaired(rep, "route '%s%s' (%s)",
			 route_type(&o->route) == RTN_UNICAST ? "" : "unreachable ", words,
			 family_name(o->route.family));
		return 0;
	}
	return 0;
}

int routing_repair(struct routing *rt, char *item, size_t itemlen, char *err, size_t errlen)
{
	_cleanup_(freep) bool *found = NULL;
	struct repair rep = { .rt = rt, .item = item, .itemlen = itemlen };
	struct nl_link_info info;
	int r;

	if (item && itemlen)
		item[0] = '\0';
	found = calloc(rt->n ? rt->n : 1, sizeof(*found));
	if (!found)
		return step_error(err, errlen, -ENOMEM, NULL, "allocate the repair state");
	rep.found = found;

	/* The link first: routes need it up, and taking it down took them along. */
	r = repair_link(&rep, &info, err, errlen);
	if (r < 0)
		return r;
	r = repair_dump(&rep, err, errlen);
	if (r < 0)
		return r;
	if (rt->rpf_loose) {
		r = rpf_sync(rt, &rep, err, errlen);
		if (r < 0)
			return r;
	}
	/* In the order of installation: the bypass before the diversion that needs it. */
	for (size_t i = 0; i < rt->n; i++) {
		r = repair_obj(&rep, i, &info, err, errlen);
		if (r < 0)
			return r;
	}
	return rep.n;
}
