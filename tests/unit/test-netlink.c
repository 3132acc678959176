/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pure message builders and parsers of netlink.c, checked by walking the
 * built messages with libmnl (tests, unlike modules, may include it).
 */
#include <net/if.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/netconf.h>
#include <linux/rtnetlink.h>

#include "netlink.h"
#include "tap.h"
#include "util.h"

#define MAXATTR 64

static _Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];

/* Every attribute after the family header, by type; the count, or -1 on a duplicate. */
struct attrs {
	const struct nlattr *tb[MAXATTR];
	int n, dup;
};

static int collect_cb(const struct nlattr *a, void *data)
{
	struct attrs *at = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type >= MAXATTR || at->tb[type])
		at->dup++;
	else
		at->tb[type] = a;
	at->n++;
	return MNL_CB_OK;
}

static int collect(const struct nlmsghdr *nlh, size_t hdrlen, struct attrs *at)
{
	memset(at, 0, sizeof(*at));
	if (mnl_attr_parse(nlh, hdrlen, collect_cb, at) < 0 || at->dup)
		return -1;
	return at->n;
}

static int collect_nested(const struct nlattr *nest, struct attrs *at)
{
	memset(at, 0, sizeof(*at));
	if (mnl_attr_parse_nested(nest, collect_cb, at) < 0 || at->dup)
		return -1;
	return at->n;
}

static bool attr_bytes(const struct nlattr *a, const void *want, size_t len)
{
	return a && mnl_attr_get_payload_len(a) == len &&
	       memcmp(mnl_attr_get_payload(a), want, len) == 0;
}

static bool attr_u32(const struct nlattr *a, uint32_t want)
{
	return attr_bytes(a, &want, sizeof(want));
}

static bool attr_u8(const struct nlattr *a, uint8_t want)
{
	return attr_bytes(a, &want, sizeof(want));
}

static bool attr_strz(const struct nlattr *a, const char *want)
{
	return attr_bytes(a, want, strlen(want) + 1);
}

static void addr(int family, const char *s, uint8_t *out)
{
	if (inet_pton(family, s, out) != 1)
		abort();
}

/* Every shorter buffer fails with -ENOSPC, the exact one works. */
static void check_enospc(const char *what, int (*build)(void *, size_t, const void *),
			 const void *arg)
{
	_Alignas(struct nlmsghdr) char small[NL_MSG_SIZE];
	int full = build(small, sizeof(small), arg), len, bad = 0;

	for (len = 0; len < full; len++)
		if (build(small, (size_t)len, arg) != -ENOSPC)
			bad++;
	ok(full > 0 && bad == 0 && build(small, (size_t)full, arg) == full,
	   "%s: -ENOSPC below %d bytes", what, full);
}

static int build_new_rule(void *b, size_t len, const void *r)
{
	return nl_build_rule(b, len, RTM_NEWRULE, r);
}

static int build_new_route(void *b, size_t len, const void *r)
{
	return nl_build_route(b, len, RTM_NEWROUTE, r);
}

static int build_setlink(void *b, size_t len, const void *l)
{
	return nl_build_setlink(b, len, l);
}

static void check_rule_roundtrip(const char *what, const struct nl_rule *r)
{
	struct nl_rule back, want = *r;

	want.action = FR_ACT_TO_TBL;
	ok(nl_parse_rule((struct nlmsghdr *)buf, &back) == 0 &&
	   memcmp(&back, &want, sizeof(want)) == 0, "%s: parses back to the same rule", what);
}

static const struct fib_rule_hdr *rule_header(int len, uint16_t type, uint16_t flags)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;

	is_int(len, nlh->nlmsg_len, "returns the message length");
	is_int(nlh->nlmsg_type, type, "nlmsg_type");
	is_int(nlh->nlmsg_flags, flags, "nlmsg_flags");
	return mnl_nlmsg_get_payload(nlh);
}

static void test_rule_v4_plain(void)
{
	struct nl_rule r = { .family = AF_INET, .priority = 10000, .table = 100 };
	const struct fib_rule_hdr *frh;
	struct attrs at;
	int len;

	len = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r);
	frh = rule_header(len, RTM_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
	ok(frh->family == AF_INET && frh->action == FR_ACT_TO_TBL && frh->table == 100 &&
	   frh->src_len == 0 && frh->dst_len == 0 && frh->tos == 0 && frh->flags == 0,
	   "v4 plain: fib_rule_hdr family, action, table");
	is_int(collect((struct nlmsghdr *)buf, sizeof(*frh), &at), 1, "v4 plain: one attribute");
	ok(attr_u32(at.tb[FRA_PRIORITY], 10000), "v4 plain: FRA_PRIORITY 10000");
	check_rule_roundtrip("v4 plain", &r);
	check_enospc("v4 plain rule", build_new_rule, &r);

	len = nl_build_rule(buf, sizeof(buf), RTM_DELRULE, &r);
	frh = rule_header(len, RTM_DELRULE, NLM_F_REQUEST);
	ok(frh->action == FR_ACT_TO_TBL && frh->table == 100, "delete: same header");
	is_int(collect((struct nlmsghdr *)buf, sizeof(*frh), &at), 1, "delete: one attribute");
	ok(attr_u32(at.tb[FRA_PRIORITY], 10000), "delete: FRA_PRIORITY");
}

static void test_rule_iif(void)
{
	struct nl_rule r = { .family = AF_INET6, .priority = 9999, .table = RT_TABLE_MAIN,
			     .iifname = "tun0" };
	const struct fib_rule_hdr *frh;
	struct attrs at;
	int len;

	len = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r);
	frh = rule_header(len, RTM_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
	ok(frh->family == AF_INET6 && frh->table == RT_TABLE_MAIN, "iif: family v6, table main");
	is_int(collect((struct nlmsghdr *)buf, sizeof(*frh), &at), 2, "iif: two attributes");
	ok(attr_u32(at.tb[FRA_PRIORITY], 9999), "iif: FRA_PRIORITY 9999");
	ok(attr_strz(at.tb[FRA_IIFNAME], "tun0"), "iif: FRA_IIFNAME \"tun0\\0\"");
	check_rule_roundtrip("iif", &r);

	memset(r.iifname, 'x', sizeof(r.iifname));
	is_int(nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r), -EINVAL,
	       "iif: unterminated name is -EINVAL");
}

static void test_rule_v6_prefixes(void)
{
	struct nl_rule r = { .family = AF_INET6, .priority = 500, .table = 1000,
			     .src_len = 32, .dst_len = 48 };
	const struct fib_rule_hdr *frh;
	struct attrs at;
	int len;

	addr(AF_INET6, "2001:db8::", r.src);
	addr(AF_INET6, "2001:db8:1::", r.dst);
	len = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r);
	frh = rule_header(len, RTM_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
	ok(frh->family == AF_INET6 && frh->src_len == 32 && frh->dst_len == 48,
	   "v6 prefixes: src_len 32, dst_len 48");
	is_int(frh->table, RT_TABLE_UNSPEC, "table 1000: header table is RT_TABLE_UNSPEC");
	is_int(collect((struct nlmsghdr *)buf, sizeof(*frh), &at), 4, "v6 prefixes: four attributes");
	ok(attr_u32(at.tb[FRA_TABLE], 1000), "table 1000: FRA_TABLE");
	ok(attr_u32(at.tb[FRA_PRIORITY], 500), "v6 prefixes: FRA_PRIORITY");
	ok(attr_bytes(at.tb[FRA_SRC], r.src, 16), "v6 prefixes: FRA_SRC 16 bytes");
	ok(attr_bytes(at.tb[FRA_DST], r.dst, 16), "v6 prefixes: FRA_DST 16 bytes");
	check_rule_roundtrip("v6 prefixes", &r);
	check_enospc("v6 prefix rule", build_new_rule, &r);

	r.dst_len = 129;
	is_int(nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r), -EINVAL, "dst_len 129 is -EINVAL");
}

static void test_rule_v4_selectors(void)
{
	struct nl_rule r = {
		.family = AF_INET, .priority = 10000, .table = 100,
		.dst_len = 24,
		.match.has_uid = true, .match.uid_start = 1000, .match.uid_end = 2000,
		.match.ipproto = IPPROTO_TCP,
		.match.has_sport = true, .match.sport_start = 1024, .match.sport_end = 65535,
		.match.has_dport = true, .match.dport_start = 443, .match.dport_end = 443,
	};
	struct fib_rule_uid_range u = { 1000, 2000 };
	struct fib_rule_port_range sp = { 1024, 65535 }, dp = { 443, 443 };
	const struct fib_rule_hdr *frh;
	struct attrs at;
	int len;

	addr(AF_INET, "192.0.2.0", r.dst);
	len = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r);
	frh = rule_header(len, RTM_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
	ok(frh->family == AF_INET && frh->src_len == 0 && frh->dst_len == 24,
	   "v4 selectors: dst_len 24");
	is_int(collect((struct nlmsghdr *)buf, sizeof(*frh), &at), 6,
	       "v4 selectors: six attributes");
	ok(attr_u32(at.tb[FRA_PRIORITY], 10000), "v4 selectors: FRA_PRIORITY");
	ok(attr_bytes(at.tb[FRA_DST], r.dst, 4), "v4 selectors: FRA_DST 4 bytes");
	ok(!at.tb[FRA_SRC], "v4 selectors: no FRA_SRC");
	ok(attr_bytes(at.tb[FRA_UID_RANGE], &u, sizeof(u)), "FRA_UID_RANGE 1000-2000");
	ok(attr_u8(at.tb[FRA_IP_PROTO], IPPROTO_TCP), "FRA_IP_PROTO tcp (u8)");
	ok(attr_bytes(at.tb[FRA_SPORT_RANGE], &sp, sizeof(sp)), "FRA_SPORT_RANGE 1024-65535");
	ok(attr_bytes(at.tb[FRA_DPORT_RANGE], &dp, sizeof(dp)), "FRA_DPORT_RANGE 443-443");
	check_rule_roundtrip("v4 selectors", &r);
	check_enospc("v4 selector rule", build_new_rule, &r);
}

static void test_rule_fwmark(void)
{
	struct nl_rule r = { .family = AF_INET, .priority = 10000, .table = 100,
			     .match.has_fwmark = true, .match.fwmark = 0x1, .match.fwmask = 0xff,
			     .src_len = 32, .protocol = 73 };
	const struct fib_rule_hdr *frh;
	struct attrs at;
	int len;

	addr(AF_INET, "192.0.2.1", r.src);
	len = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r);
	frh = rule_header(len, RTM_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
	ok(frh->src_len == 32, "fwmark: src_len 32");
	is_int(collect((struct nlmsghdr *)buf, sizeof(*frh), &at), 5, "fwmark: five attributes");
	ok(attr_u32(at.tb[FRA_FWMARK], 0x1), "FRA_FWMARK 0x1");
	ok(attr_u32(at.tb[FRA_FWMASK], 0xff), "FRA_FWMASK 0xff");
	ok(attr_bytes(at.tb[FRA_SRC], r.src, 4), "fwmark: FRA_SRC");
	ok(attr_u8(at.tb[FRA_PROTOCOL], 73), "FRA_PROTOCOL 73");
	check_rule_roundtrip("fwmark", &r);
}

static void test_rule_errors(void)
{
	struct nl_rule r = { .family = AF_UNSPEC, .priority = 1, .table = 100 };

	is_int(nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r), -EAFNOSUPPORT,
	       "AF_UNSPEC rule is -EAFNOSUPPORT");
	r.family = AF_INET;
	r.src_len = 33;
	is_int(nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r), -EINVAL, "src_len 33 is -EINVAL");
	r.src_len = 0;
	is_int(nl_build_rule(buf, sizeof(buf), RTM_NEWROUTE, &r), -EINVAL,
	       "rule builder refuses RTM_NEWROUTE");
}

static void test_route(void)
{
	struct nl_route rt = { .family = AF_INET, .table = 100, .oif = 5, .protocol = 73 };
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	const struct rtmsg *rtm;
	struct nl_route back;
	struct attrs at;
	int len;

	len = nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &rt);
	is_int(len, nlh->nlmsg_len, "route: returns the length");
	is_int(nlh->nlmsg_type, RTM_NEWROUTE, "route: RTM_NEWROUTE");
	is_int(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
	       "route: create exclusive");
	rtm = mnl_nlmsg_get_payload(nlh);
	ok(rtm->rtm_family == AF_INET && rtm->rtm_dst_len == 0 && rtm->rtm_src_len == 0 &&
	   rtm->rtm_table == 100 && rtm->rtm_protocol == 73 &&
	   rtm->rtm_scope == RT_SCOPE_LINK && rtm->rtm_type == RTN_UNICAST,
	   "route: rtmsg default, table 100, proto 73, scope link, unicast");
	is_int(collect(nlh, sizeof(*rtm), &at), 1, "route: one attribute");
	ok(attr_u32(at.tb[RTA_OIF], 5), "route: RTA_OIF 5");
	ok(nl_parse_route(nlh, &back) == 0 && back.family == AF_INET && back.table == 100 &&
	   back.oif == 5 && back.protocol == 73 && back.scope == RT_SCOPE_LINK &&
	   back.type == RTN_UNICAST && back.dst_len == 0, "route: parses back");
	check_enospc("v4 route", build_new_route, &rt);

	rt.family = AF_INET6;
	rt.table = 1000;
	len = nl_build_route(buf, sizeof(buf), RTM_DELROUTE, &rt);
	is_int(nlh->nlmsg_type, RTM_DELROUTE, "v6 delete: RTM_DELROUTE");
	is_int(nlh->nlmsg_flags, NLM_F_REQUEST, "v6 delete: plain request");
	rtm = mnl_nlmsg_get_payload(nlh);
	ok(len > 0 && rtm->rtm_family == AF_INET6 && rtm->rtm_table == RT_TABLE_UNSPEC &&
	   rtm->rtm_scope == RT_SCOPE_NOWHERE, "v6 delete: table in RTA_TABLE, scope nowhere");
	is_int(collect(nlh, sizeof(*rtm), &at), 2, "v6 delete: two attributes");
	ok(attr_u32(at.tb[RTA_TABLE], 1000), "v6 delete: RTA_TABLE 1000");
	ok(attr_u32(at.tb[RTA_OIF], 5), "v6 delete: RTA_OIF 5");
	ok(nl_parse_route(nlh, &back) == 0 && back.table == 1000, "v6 delete: parses table 1000");

	rt.dst_len = 64;
	addr(AF_INET6, "2001:db8::", rt.dst);
	len = nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &rt);
	ok(len > 0 && collect(nlh, sizeof(*rtm), &at) == 3 && attr_bytes(at.tb[RTA_DST], rt.dst, 16),
	   "v6 prefix route: RTA_DST");

	rt.oif = 0;
	is_int(nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &rt), -EINVAL,
	       "route without device is -EINVAL");
	rt.type = RTN_UNREACHABLE;
	rt.priority = UINT32_MAX;
	rt.dst_len = 0;
	len = nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &rt);
	rtm = mnl_nlmsg_get_payload(nlh);
	ok(len > 0 && rtm->rtm_type == RTN_UNREACHABLE && rtm->rtm_scope == RT_SCOPE_UNIVERSE,
	   "unreachable route: no device needed, type unreachable, scope universe");
	ok(collect(nlh, sizeof(*rtm), &at) == 2 && attr_u32(at.tb[RTA_PRIORITY], UINT32_MAX) &&
	   !at.tb[RTA_OIF], "unreachable route: RTA_PRIORITY, no RTA_OIF");
	ok(nl_parse_route(nlh, &back) == 0 && back.type == RTN_UNREACHABLE &&
	   back.priority == UINT32_MAX, "unreachable route: parses back with its metric");
	rt.type = RTN_BLACKHOLE;
	is_int(nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &rt), -EINVAL,
	       "other route types are -EINVAL");
	rt.type = 0;
	rt.priority = 0;
	rt.family = 0;
	is_int(nl_build_route(buf, sizeof(buf), RTM_DELROUTE, &rt), -EAFNOSUPPORT,
	       "route without family is -EAFNOSUPPORT");
}

static void test_setlink(void)
{
	static const struct nl_devconf conf[] = {
		{ IPV4_DEVCONF_FORWARDING, 1 },
		{ IPV4_DEVCONF_ACCEPT_LOCAL, 1 },
		{ IPV4_DEVCONF_RP_FILTER, 0 },
	};
	struct nl_link l = { .ifindex = 7, .mtu = 1400, .up = true,
			     .inet_conf = conf, .n_inet_conf = ARRAY_SIZE(conf) };
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	const struct ifinfomsg *ifm;
	struct attrs at, spec, inet, cf;
	int len;

	len = nl_build_setlink(buf, sizeof(buf), &l);
	is_int(len, nlh->nlmsg_len, "setlink: returns the length");
	is_int(nlh->nlmsg_type, RTM_SETLINK, "setlink: RTM_SETLINK");
	is_int(nlh->nlmsg_flags, NLM_F_REQUEST, "setlink: plain request");
	ifm = mnl_nlmsg_get_payload(nlh);
	ok(ifm->ifi_family == AF_UNSPEC && ifm->ifi_index == 7 && ifm->ifi_flags == IFF_UP &&
	   ifm->ifi_change == IFF_UP, "setlink: ifindex 7, IFF_UP in flags and change");
	is_int(collect(nlh, sizeof(*ifm), &at), 2, "setlink: two attributes");
	ok(attr_u32(at.tb[IFLA_MTU], 1400), "setlink: IFLA_MTU 1400");
	ok(at.tb[IFLA_AF_SPEC] && collect_nested(at.tb[IFLA_AF_SPEC], &spec) == 1 &&
	   spec.tb[AF_INET], "IFLA_AF_SPEC holds only AF_INET");
	ok(spec.tb[AF_INET] && collect_nested(spec.tb[AF_INET], &inet) == 1 &&
	   inet.tb[IFLA_INET_CONF], "AF_INET holds only IFLA_INET_CONF");
	ok(inet.tb[IFLA_INET_CONF] && collect_nested(inet.tb[IFLA_INET_CONF], &cf) == 3,
	   "IFLA_INET_CONF holds three values");
	ok(attr_u32(cf.tb[IPV4_DEVCONF_FORWARDING], 1), "devconf forwarding = 1 (type is the index)");
	ok(attr_u32(cf.tb[IPV4_DEVCONF_ACCEPT_LOCAL], 1), "devconf accept_local = 1");
	ok(attr_u32(cf.tb[IPV4_DEVCONF_RP_FILTER], 0), "devconf rp_filter = 0");
	check_enospc("setlink", build_setlink, &l);

	l.up = false;
	l.mtu = 0;
	l.n_inet_conf = 0;
	len = nl_build_setlink(buf, sizeof(buf), &l);
	ifm = mnl_nlmsg_get_payload(nlh);
	ok(len > 0 && ifm->ifi_flags == 0 && ifm->ifi_change == 0 &&
	   collect(nlh, sizeof(*ifm), &at) == 0, "setlink with nothing to change: bare header");

	l.ipv6_no_addr = true;
	len = nl_build_setlink(buf, sizeof(buf), &l);
	ok(len > 0 && collect(nlh, sizeof(*ifm), &at) == 1 && at.tb[IFLA_AF_SPEC] &&
	   collect_nested(at.tb[IFLA_AF_SPEC], &spec) == 1 && spec.tb[AF_INET6],
	   "setlink ipv6_no_addr: IFLA_AF_SPEC holds only AF_INET6");
	ok(spec.tb[AF_INET6] && collect_nested(spec.tb[AF_INET6], &inet) == 1 &&
	   inet.tb[IFLA_INET6_ADDR_GEN_MODE] &&
	   mnl_attr_get_payload_len(inet.tb[IFLA_INET6_ADDR_GEN_MODE]) == 1 &&
	   mnl_attr_get_u8(inet.tb[IFLA_INET6_ADDR_GEN_MODE]) == IN6_ADDR_GEN_MODE_NONE,
	   "AF_INET6 holds IFLA_INET6_ADDR_GEN_MODE = none (u8)");
	check_enospc("setlink ipv6_no_addr", build_setlink, &l);

	l.ifindex = 0;
	is_int(nl_build_setlink(buf, sizeof(buf), &l), -EINVAL, "setlink ifindex 0 is -EINVAL");
}

static void test_dellink_getlink_dump(void)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	const struct ifinfomsg *ifm;
	struct attrs at;
	int len;

	len = nl_build_dellink(buf, sizeof(buf), 9);
	ifm = mnl_nlmsg_get_payload(nlh);
	ok(len > 0 && nlh->nlmsg_type == RTM_DELLINK && nlh->nlmsg_flags == NLM_F_REQUEST &&
	   ifm->ifi_index == 9 && collect(nlh, sizeof(*ifm), &at) == 0,
	   "dellink: RTM_DELLINK ifindex 9, no attributes");
	is_int(nl_build_dellink(buf, sizeof(buf), 0), -EINVAL, "dellink ifindex 0 is -EINVAL");

	len = nl_build_getlink(buf, sizeof(buf), 0, "tun0");
	ifm = mnl_nlmsg_get_payload(nlh);
	ok(len > 0 && nlh->nlmsg_type == RTM_GETLINK && nlh->nlmsg_flags == NLM_F_REQUEST &&
	   ifm->ifi_index == 0, "getlink by name: RTM_GETLINK, ifindex 0");
	ok(collect(nlh, sizeof(*ifm), &at) == 2 && attr_strz(at.tb[IFLA_IFNAME], "tun0") &&
	   attr_u32(at.tb[IFLA_EXT_MASK], RTEXT_FILTER_SKIP_STATS),
	   "getlink by name: IFLA_IFNAME, IFLA_EXT_MASK skip stats");
	len = nl_build_getlink(buf, sizeof(buf), 3, NULL);
	ok(len > 0 && ifm->ifi_index == 3 && collect(nlh, sizeof(*ifm), &at) == 1 &&
	   !at.tb[IFLA_IFNAME], "getlink by index: no IFLA_IFNAME");
	is_int(nl_build_getlink(buf, sizeof(buf), 0, "a-name-that-is-too-long"), -EINVAL,
	       "getlink: over-long name is -EINVAL");

	len = nl_build_dump(buf, sizeof(buf), RTM_GETRULE, AF_INET6);
	ok(len == (int)(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct fib_rule_hdr))) &&
	   nlh->nlmsg_type == RTM_GETRULE && nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP) &&
	   ((const struct fib_rule_hdr *)mnl_nlmsg_get_payload(nlh))->family == AF_INET6,
	   "dump rules: fib_rule_hdr with family, NLM_F_DUMP");
	len = nl_build_dump(buf, sizeof(buf), RTM_GETROUTE, AF_INET);
	ok(len == (int)(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct rtmsg))) &&
	   ((const struct rtmsg *)mnl_nlmsg_get_payload(nlh))->rtm_family == AF_INET,
	   "dump routes: rtmsg with family");
	is_int(nl_build_dump(buf, sizeof(buf), RTM_NEWRULE, AF_INET), -EINVAL,
	       "dump of RTM_NEWRULE is -EINVAL");
}

static void test_copy(void)
{
	_Alignas(struct nlmsghdr) char copy[NL_MSG_SIZE];
	struct nl_rule r = { .family = AF_INET, .priority = 10000, .table = 100,
			     .match.has_uid = true, .match.uid_start = 1, .match.uid_end = 2 };
	const struct nlmsghdr *src = (const struct nlmsghdr *)buf;
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)copy;
	struct nlmsghdr *dumped = (struct nlmsghdr *)buf;
	struct nl_rule back;
	int len;

	len = nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &r);
	dumped->nlmsg_flags = NLM_F_MULTI;
	dumped->nlmsg_seq = 42;
	dumped->nlmsg_pid = 4242;
	is_int(nl_build_copy(copy, sizeof(copy), src, RTM_DELRULE), len, "copy: same length");
	ok(nlh->nlmsg_type == RTM_DELRULE && nlh->nlmsg_flags == NLM_F_REQUEST &&
	   nlh->nlmsg_seq == 0 && nlh->nlmsg_pid == 0, "copy: re-typed as a plain request");
	ok(memcmp(mnl_nlmsg_get_payload(nlh), mnl_nlmsg_get_payload(src),
		  (size_t)len - MNL_NLMSG_HDRLEN) == 0, "copy: payload unchanged");
	ok(nl_parse_rule(nlh, &back) == 0 && back.match.has_uid && back.match.uid_end == 2,
	   "copy: parses as the same rule");
	is_int(nl_build_copy(copy, (size_t)len - 1, src, RTM_DELRULE), -ENOSPC,
	       "copy into a short buffer is -ENOSPC");
}

/* An RTM_NEWLINK as the kernel sends it, including IFLA_INET_CONF as a plain array. */
static void test_parse_link(void)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(memset(buf, 0, sizeof(buf)));
	struct nlattr *linkinfo, *data, *spec, *inet;
	struct ifinfomsg *ifm;
	struct nl_link_info info;
	uint32_t conf[IPV4_DEVCONF_MAX] = { 0 };

	nlh->nlmsg_type = RTM_NEWLINK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_index = 12;
	ifm->ifi_flags = IFF_UP | IFF_POINTOPOINT;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "tunp");
	mnl_attr_put_u32(nlh, IFLA_MTU, 1280);
	mnl_attr_put_u8(nlh, IFLA_CARRIER, 1);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "tun");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	mnl_attr_put_u8(nlh, IFLA_TUN_PERSIST, 1);
	mnl_attr_put_u32(nlh, IFLA_TUN_NUM_QUEUES, 2);
	mnl_attr_put_u32(nlh, IFLA_TUN_NUM_DISABLED_QUEUES, 1);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	conf[IPV4_DEVCONF_FORWARDING - 1] = 1;
	conf[IPV4_DEVCONF_RP_FILTER - 1] = 2;
	conf[IPV4_DEVCONF_ACCEPT_LOCAL - 1] = 1;
	spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	inet = mnl_attr_nest_start(nlh, AF_INET);
	mnl_attr_put(nlh, IFLA_INET_CONF, sizeof(conf), conf);
	mnl_attr_nest_end(nlh, inet);
	mnl_attr_nest_end(nlh, spec);

	ok(nl_parse_link(nlh, &info) == 0, "parse link");
	ok(info.ifindex == 12 && strcmp(info.name, "tunp") == 0 && info.mtu == 1280 &&
	   (info.flags & IFF_UP), "link: index, name, mtu, flags");
	ok(strcmp(info.kind, "tun") == 0 && info.tun_persist && info.tun_queues == 3 &&
	   info.carrier, "link: kind tun, persistent, carrier, 2 + 1 disabled queues");
	ok(info.has_inet_conf && info.inet_conf[IPV4_DEVCONF_FORWARDING] == 1 &&
	   info.inet_conf[IPV4_DEVCONF_RP_FILTER] == 2 &&
	   info.inet_conf[IPV4_DEVCONF_ACCEPT_LOCAL] == 1 &&
	   info.inet_conf[IPV4_DEVCONF_MC_FORWARDING] == 0,
	   "link: devconf array element i is index i + 1");

	/* A malformed IFLA_MTU (2 bytes) is refused. */
	nlh = mnl_nlmsg_put_header(memset(buf, 0, sizeof(buf)));
	nlh->nlmsg_type = RTM_NEWLINK;
	mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	mnl_attr_put_u16(nlh, IFLA_MTU, 1500);
	is_int(nl_parse_link(nlh, &info), -EINVAL, "link: short IFLA_MTU is -EINVAL");

	nlh->nlmsg_type = RTM_NEWROUTE;
	is_int(nl_parse_link(nlh, &info), -EINVAL, "link parser refuses RTM_NEWROUTE");
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + 2;
	nlh->nlmsg_type = RTM_NEWRULE;
	is_int(nl_parse_rule(nlh, &(struct nl_rule){ 0 }), -EINVAL,
	       "rule parser refuses a truncated header");
}

static void test_dump_table(void)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	const struct rtmsg *rtm;
	struct attrs at;
	int len;

	len = nl_build_dump_table(buf, sizeof(buf), AF_INET6, 1000);
	ok(len > 0 && nlh->nlmsg_type == RTM_GETROUTE &&
	   nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP), "dump table: RTM_GETROUTE dump");
	rtm = mnl_nlmsg_get_payload(nlh);
	ok(rtm->rtm_family == AF_INET6 && rtm->rtm_table == 0 && rtm->rtm_type == 0 &&
	   rtm->rtm_scope == 0 && rtm->rtm_protocol == 0,
	   "dump table: a header strict checking accepts (family only)");
	ok(collect(nlh, sizeof(*rtm), &at) == 1 && attr_u32(at.tb[RTA_TABLE], 1000),
	   "dump table: RTA_TABLE alone");
	is_int(nl_build_dump_table(buf, sizeof(buf), AF_UNSPEC, 100), -EAFNOSUPPORT,
	       "dump table without family is -EAFNOSUPPORT");
	is_int(nl_build_dump_table(buf, 20, AF_INET, 100), -ENOSPC, "dump table: -ENOSPC");
}

static void test_rule_same(void)
{
	struct nl_rule a = { .family = AF_INET, .priority = 10000, .table = 100, .dst_len = 24 };
	struct nl_rule b;

	memcpy(a.dst, "\xc0\x00\x02\x00", 4);
	b = a;
	b.action = FR_ACT_TO_TBL;
	b.protocol = 3;
	ok(nl_rule_same(&a, &b), "same rule: a built one (action 0) and its dump (protocol aside)");
	b.dst[3] = 0x80;
	ok(nl_rule_same(&a, &b), "bits past the prefix length do not count");
	b.dst[2] = 0x03;
	ok(!nl_rule_same(&a, &b), "the prefix does");
	b = a;
	b.invert = true;
	ok(!nl_rule_same(&a, &b), "\"not\" makes another rule");
	b = a;
	snprintf(b.oifname, sizeof(b.oifname), "eth0");
	ok(!nl_rule_same(&a, &b), "so does oif");
	b = a;
	b.match.has_fwmark = true;
	b.match.fwmark = 1;
	b.match.fwmask = UINT32_MAX;
	ok(!nl_rule_same(&a, &b), "and fwmark");
	b = a;
	b.priority++;
	ok(!nl_rule_same(&a, &b), "and the priority");
	b = a;
	b.action = FR_ACT_GOTO;
	ok(!nl_rule_same(&a, &b), "and the action");
	b = a;
	b.match.has_uid = true;
	ok(!nl_rule_same(&a, &b), "and a uid range");
}

static void test_parse_netconf(void)
{
	struct nlmsghdr *nlh;
	struct netconfmsg *ncm;
	struct nl_netconf c;

	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWNETCONF;
	ncm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ncm));
	ncm->ncm_family = AF_INET;
	mnl_attr_put_u32(nlh, NETCONFA_IFINDEX, 7);
	mnl_attr_put_u32(nlh, NETCONFA_RP_FILTER, 2);
	is_int(nl_parse_netconf(nlh, &c), 0, "parse netconf");
	ok(c.family == AF_INET && c.ifindex == 7 && c.has_rp_filter && c.rp_filter == 2 &&
	   !c.has_forwarding, "netconf: family, ifindex, rp_filter only");
	mnl_attr_put_u32(nlh, NETCONFA_FORWARDING, 0);
	ok(nl_parse_netconf(nlh, &c) == 0 && c.has_forwarding && c.forwarding == 0,
	   "netconf: forwarding 0");

	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWNETCONF;
	ncm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ncm));
	ncm->ncm_family = AF_INET6;
	mnl_attr_put_u32(nlh, NETCONFA_IFINDEX, (uint32_t)NETCONFA_IFINDEX_ALL);
	ok(nl_parse_netconf(nlh, &c) == 0 && c.ifindex == NETCONFA_IFINDEX_ALL,
	   "netconf for \"all\": ifindex -1");
	mnl_attr_put_u8(nlh, NETCONFA_FORWARDING, 1);
	is_int(nl_parse_netconf(nlh, &c), -EINVAL, "a short attribute is -EINVAL");

	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWNETCONF;
	ncm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ncm));
	ncm->ncm_family = AF_INET;
	is_int(nl_parse_netconf(nlh, &c), -EINVAL, "no ifindex is -EINVAL");
	nlh->nlmsg_type = RTM_NEWLINK;
	is_int(nl_parse_netconf(nlh, &c), -EINVAL, "the netconf parser refuses RTM_NEWLINK");
}

int main(void)
{
	test_rule_v4_plain();
	test_rule_iif();
	test_rule_v6_prefixes();
	test_rule_v4_selectors();
	test_rule_fwmark();
	test_rule_errors();
	test_route();
	test_setlink();
	test_dellink_getlink_dump();
	test_copy();
	test_parse_link();
	test_dump_table();
	test_rule_same();
	test_parse_netconf();
	return tap_done();
}
