/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The rule order, the events that concern our objects, and their repair. */
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
int verify_order(struct routing *rt, char *err, size_t errlen)
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

uint8_t route_type(const struct nl_route *r)
{
	return r->type ? r->type : RTN_UNICAST;
}

/* The same place in the table: what NLM_F_REPLACE would replace. */
bool route_key_same(const struct nl_route *a, const struct nl_route *b)
{
	size_t whole = a->dst_len / 8;
	uint8_t mask = (uint8_t)(0xff << (8 - a->dst_len % 8));

	if (a->family != b->family || a->table != b->table || a->dst_len != b->dst_len ||
	    route_metric(a) != route_metric(b) || memcmp(a->dst, b->dst, whole) != 0)
		return false;
	return a->dst_len % 8 == 0 || ((a->dst[whole] ^ b->dst[whole]) & mask) == 0;
}

/* An unreachable route has no device of its own (IPv6 shows lo): only a unicast one has. */
bool route_same(const struct nl_route *a, const struct nl_route *b)
{
	return route_key_same(a, b) && route_type(a) == route_type(b) &&
	       (route_type(a) != RTN_UNICAST || a->oif == b->oif);
}

bool inet_conf_ok(const struct nl_link_info *info)
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
	struct routing *rt = rep->rt;
	const struct obj *o = &rt->objs[i];
	const struct obj_ops *ops = obj_ops[o->kind];
	char words[ROUTING_ITEM_MAX];
	int r;

	if (ops->present(rt, o, rep->found[i], info))
		return 0;
	r = ops->add(rt, o, true);
	ops->describe(rt, o, words, sizeof(words));
	/*
	 * EEXIST, for a rule the dump did not show: one the kernel takes for
	 * ours ("not", or other selectors it does not compare) is in the way.
	 * Not ours to delete.
	 */
	if (r < 0)
		return step_error(err, errlen, r, ops->netlink ? nl_extack(rt->nl) : NULL,
				  "restore %s", words);
	repaired(rep, "%s", words);
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
