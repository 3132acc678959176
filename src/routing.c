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
#include "routing-internal.h"
#include "util.h"

/* The IPv4 devconf values a tun needs to forward written-back packets. */
const struct nl_devconf tun_inet_conf[] = {
	{ IPV4_DEVCONF_FORWARDING, 1 },
	{ IPV4_DEVCONF_ACCEPT_LOCAL, 1 },
	{ IPV4_DEVCONF_RP_FILTER, 0 },
};

/* --- messages ----------------------------------------------------------- */

const char *family_name(int family)
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
void format_rule(char *buf, size_t len, const struct nl_rule *r)
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
	if (r->match.has_fwmark) {
		strbuf_printf(&b, " fwmark 0x%x", r->match.fwmark);
		if (r->match.fwmask != UINT32_MAX)
			strbuf_printf(&b, "/0x%x", r->match.fwmask);
	}
	if (r->iifname[0])
		strbuf_printf(&b, " iif %s", r->iifname);
	if (r->match.has_uid)
		strbuf_printf(&b, " uidrange %u-%u", r->match.uid_start, r->match.uid_end);
	if (r->match.ipproto) {
		if (ipproto_name(r->match.ipproto))
			strbuf_printf(&b, " ipproto %s", ipproto_name(r->match.ipproto));
		else
			strbuf_printf(&b, " ipproto %u", r->match.ipproto);
	}
	if (r->match.has_sport)
		sb_ports(&b, "sport", r->match.sport_start, r->match.sport_end);
	if (r->match.has_dport)
		sb_ports(&b, "dport", r->match.dport_start, r->match.dport_end);
	strbuf_printf(&b, " lookup ");
	sb_table(&b, r->table);
	strbuf_printf(&b, " pref %u", r->priority);
}

void format_route(char *buf, size_t len, const struct nl_route *rt, const char *dev)
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

/*
 * err = "STEP: strerror (kernel's reason)"; returns r.  A kernel step that
 * failed; a plain message is err_set()'s, which this builds on.
 */
_printf_(5, 6) int step_error(char *err, size_t errlen, int r, const char *extack,
			      const char *fmt, ...)
{
	char step[ERR_MAX];
	va_list ap;

	if (!err || !errlen)
		return r;
	va_start(ap, fmt);
	vsnprintf(step, sizeof(step), fmt, ap);
	va_end(ap);
	if (extack && extack[0])
		return err_set(err, errlen, r, "%s: %s (%s)", step, strerror(-r), extack);
	return err_set(err, errlen, r, "%s: %s", step, strerror(-r));
}

/* --- configuration checks ----------------------------------------------- */

static bool table_reserved(uint32_t t)
{
	return t == RT_TABLE_UNSPEC || t == RT_TABLE_COMPAT || t == RT_TABLE_DEFAULT ||
	       t == RT_TABLE_MAIN || t == RT_TABLE_LOCAL;
}

int check_config(const struct config *cfg, char *err, size_t errlen)
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

/* Keep o, which the kernel acknowledged, for routing_free() and the repair. */
static void record(struct routing *rt, const struct obj *o)
{
	rt->objs[rt->n++] = *o;
}

int read_sysctl(const char *path, char *buf, size_t len)
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

int write_sysctl(const char *path, const char *value)
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

/* Send a request built into buf (r: its length, or the builder's error). */
static int send_built(struct routing *rt, char *buf, int r)
{
	return r < 0 ? r : nl_request(rt->nl, buf, NULL, NULL);
}

/* --- operations per kind of object -------------------------------------- */

static int rule_add(struct routing *rt, const struct obj *o, bool replace)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];

	(void)replace;		/* a rule has no place another one could hold */
	return send_built(rt, buf, nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &o->rule));
}

static void rule_del(struct routing *rt, const struct obj *o)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];

	(void)send_built(rt, buf, nl_build_rule(buf, sizeof(buf), RTM_DELRULE, &o->rule));
}

static bool dump_present(const struct routing *rt, const struct obj *o, bool found,
			 const struct nl_link_info *info)
{
	(void)rt, (void)o, (void)info;
	return found;
}

static void rule_describe(const struct routing *rt, const struct obj *o, char *buf, size_t len)
{
	char words[256];

	(void)rt;
	format_rule(words, sizeof(words), &o->rule);
	snprintf(buf, len, "rule '%s' (%s)", words, family_name(o->rule.family));
}

static int route_add(struct routing *rt, const struct obj *o, bool replace)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	int r;

	r = nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &o->route);
	/* Whatever took our place in the table gives it back. */
	if (r >= 0 && replace)
		((struct nlmsghdr *)buf)->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE |
							NLM_F_REPLACE;
	return send_built(rt, buf, r);
}

static void route_del(struct routing *rt, const struct obj *o)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];

	(void)send_built(rt, buf, nl_build_route(buf, sizeof(buf), RTM_DELROUTE, &o->route));
}

/* An unreachable route has no device: "unreachable default table 100"; rt NULL: a dumped one. */
static void route_describe(const struct routing *rt, const struct obj *o, char *buf, size_t len)
{
	bool unicast = route_type(&o->route) == RTN_UNICAST;
	char words[128];

	format_route(words, sizeof(words), &o->route, unicast && rt ? rt->tun : NULL);
	snprintf(buf, len, "route '%s%s' (%s)", unicast ? "" : "unreachable ", words,
		 family_name(o->route.family));
}

static int inet_conf_set(struct routing *rt, const struct nl_devconf *conf, size_t n)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct nl_link l = { .ifindex = rt->ifindex, .inet_conf = conf, .n_inet_conf = n };

	return send_built(rt, buf, nl_build_setlink(buf, sizeof(buf), &l));
}

static int inet_conf_add(struct routing *rt, const struct obj *o, bool replace)
{
	(void)o, (void)replace;
	return inet_conf_set(rt, tun_inet_conf, ARRAY_SIZE(tun_inet_conf));
}

static void inet_conf_del(struct routing *rt, const struct obj *o)
{
	(void)inet_conf_set(rt, o->old_conf, ARRAY_SIZE(o->old_conf));
}

static bool inet_conf_present(const struct routing *rt, const struct obj *o, bool found,
			      const struct nl_link_info *info)
{
	(void)rt, (void)o, (void)found;
	return inet_conf_ok(info);
}

static void inet_conf_describe(const struct routing *rt, const struct obj *o, char *buf,
			       size_t len)
{
	(void)o;
	snprintf(buf, len, "IPv4 devconf of %s (forwarding 1, accept_local 1, rp_filter 0)",
		 rt->tun);
}

static int sysctl_add(struct routing *rt, const struct obj *o, bool replace)
{
	(void)rt, (void)replace;
	return write_sysctl(o->sysctl.path, o->sysctl.want);
}

static void sysctl_del(struct routing *rt, const struct obj *o)
{
	(void)rt;
	(void)write_sysctl(o->sysctl.path, o->sysctl.old);
}

static bool sysctl_present(const struct routing *rt, const struct obj *o, bool found,
			   const struct nl_link_info *info)
{
	char value[SYSCTL_VALUE_MAX];

	(void)rt, (void)found, (void)info;
	return read_sysctl(o->sysctl.path, value, sizeof(value)) == 0 &&
	       strcmp(value, o->sysctl.want) == 0;
}

static void sysctl_describe(const struct routing *rt, const struct obj *o, char *buf, size_t len)
{
	(void)rt;
	snprintf(buf, len, "%s=%s", o->sysctl.path, o->sysctl.want);
}

const struct obj_ops *const obj_ops[] = {
	[OBJ_RULE] = &(const struct obj_ops){
		.netlink = true, .restore = true, .add = rule_add, .del = rule_del,
		.present = dump_present, .describe = rule_describe,
	},
	[OBJ_ROUTE] = &(const struct obj_ops){
		.netlink = true, .restore = true, .add = route_add, .del = route_del,
		.present = dump_present, .describe = route_describe,
	},
	[OBJ_INET_CONF] = &(const struct obj_ops){
		.netlink = true, .add = inet_conf_add, .del = inet_conf_del,
		.present = inet_conf_present, .describe = inet_conf_describe,
	},
	[OBJ_SYSCTL] = &(const struct obj_ops){
		.add = sysctl_add, .del = sysctl_del,
		.present = sysctl_present, .describe = sysctl_describe,
	},
};

/*
 * Create o in the kernel (verb: what the error message says) and keep it;
 * taken: an EEXIST that counts as ours (the fail-closed block).
 */
static int add_obj(struct routing *rt, const struct obj *o, const char *verb, bool taken,
		   char *err, size_t errlen)
{
	const struct obj_ops *ops = obj_ops[o->kind];
	char words[ROUTING_ITEM_MAX];
	int r;

	r = ops->add(rt, o, false);
	if (r == -EEXIST && taken)
		r = 0;
	if (r < 0) {
		ops->describe(rt, o, words, sizeof(words));
		return step_error(err, errlen, r, ops->netlink ? nl_extack(rt->nl) : NULL, "%s %s",
				  verb, words);
	}
	record(rt, o);
	return 0;
}

struct routing *routing_free(struct routing *rt)
{
	size_t i;

	if (!rt)
		return NULL;
	for (i = rt->n; i > 0; i--)
		if (!(rt->keep_block && rt->objs[i - 1].block))
			obj_ops[rt->objs[i - 1].kind]->del(rt, &rt->objs[i - 1]);
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
	struct obj o = { .kind = OBJ_RULE, .rule = *rule, .block = rt->fail_closed };

	/* Fail-closed: the block a stopped instance left is taken over as it is. */
	return add_obj(rt, &o, "add", rt->fail_closed, err, errlen);
}
static int add_route(struct routing *rt, const struct nl_route *route, char *err, size_t errlen)
{
	struct obj o = { .kind = OBJ_ROUTE, .route = *route };

	o.block = route->type == RTN_UNREACHABLE;
	return add_obj(rt, &o, "add", o.block, err, errlen);
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
	struct obj o = { .kind = OBJ_INET_CONF };
	struct nl_link_info info;
	size_t i;
	int r;

	r = nl_link_get(rt->nl, rt->ifindex, NULL, &info);
	if (r >= 0 && !info.has_inet_conf)
		r = -EAFNOSUPPORT;
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(rt->nl), "read IPv4 devconf of %s",
				  rt->tun);
	for (i = 0; i < ARRAY_SIZE(tun_inet_conf); i++) {
		o.old_conf[i].index = tun_inet_conf[i].index;
		o.old_conf[i].value = info.inet_conf[tun_inet_conf[i].index];
	}
	return add_obj(rt, &o, "set", false, err, errlen);
}
/* Set a sysctl of /proc/sys and record its old value for routing_free() and the repair. */
static int set_sysctl(struct routing *rt, const char *path, const char *want, char *err,
		      size_t errlen)
{
	struct obj o = { .kind = OBJ_SYSCTL };
	int r;

	snprintf(o.sysctl.path, sizeof(o.sysctl.path), "%s", path);
	snprintf(o.sysctl.want, sizeof(o.sysctl.want), "%s", want);
	r = read_sysctl(path, o.sysctl.old, sizeof(o.sysctl.old));
	if (r < 0)
		return step_error(err, errlen, r, NULL, "read %s", path);
	return add_obj(rt, &o, "set", false, err, errlen);
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
/* One more thing put back; the first one is named. */
_printf_(2, 3) void repaired(struct repair *rep, const char *fmt, ...)
{
	va_list ap;

	if (rep->n++ || !rep->item || !rep->itemlen)
		return;
	va_start(ap, fmt);
	vsnprintf(rep->item, rep->itemlen, fmt, ap);
	va_end(ap);
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

void base_rule(struct nl_rule *r, int family, uint32_t priority, uint32_t table)
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
	r->match = s->match;
	/* "fwmark N" without a mask means all bits, as in ip-rule(8). */
	if (r->match.has_fwmark && !r->match.fwmask)
		r->match.fwmask = UINT32_MAX;
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
	char words[ROUTING_ITEM_MAX];
	const struct obj *o;
	int r, n = 0;
	size_t i;

	for (i = 0; i < rt->n; i++) {
		o = &rt->objs[i];
		if (!obj_ops[o->kind]->restore)
			continue;
		r = obj_ops[o->kind]->add(rt, o, false);
		if (r == -EEXIST)
			continue;
		if (r < 0) {
			obj_ops[o->kind]->describe(rt, o, words, sizeof(words));
			return step_error(err, errlen, r, nl_extack(rt->nl), "restore %s", words);
		}
		n++;
	}
	return n;
}
