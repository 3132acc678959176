/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small rtnetlink layer, the only module that knows libmnl: a socket that
 * sends acknowledged requests and runs dumps, and pure builders and parsers
 * for the rule, route and link messages ipmodd needs.  Builders write into a
 * caller buffer (aligned like struct nlmsghdr, NL_MSG_SIZE is always enough)
 * and return the message length or -errno; they do no I/O.
 */
#ifndef IPMODD_NETLINK_H
#define IPMODD_NETLINK_H

#include <linux/netlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NL_MSG_SIZE 512
#define NL_EXTACK_MAX 128
#define NL_KIND_MAX 16
#define NL_INET_CONF_MAX 64	/* > IPV4_DEVCONF_MAX; newer indexes are ignored */

struct nl;

/*
 * What a rule matches besides its prefixes and interfaces: the one model of a
 * configured selector (config.h's struct selector) and a kernel rule.
 */
struct nl_selector {
	bool has_uid;
	uint32_t uid_start, uid_end;
	uint8_t ipproto;		/* 0: any */
	bool has_sport, has_dport;
	uint16_t sport_start, sport_end;
	uint16_t dport_start, dport_end;
	bool has_fwmark;
	uint32_t fwmark, fwmask;
};

/* A policy rule "... lookup table": RTM_NEWRULE / RTM_DELRULE. */
struct nl_rule {
	uint8_t family;			/* AF_INET or AF_INET6 */
	uint8_t action;			/* parsed only; built rules are FR_ACT_TO_TBL */
	uint8_t protocol;		/* FRA_PROTOCOL; 0: not sent */
	uint32_t priority;
	uint32_t table;
	char iifname[IFNAMSIZ];		/* "": any */
	uint8_t src_len, dst_len;	/* 0: any, no attribute */
	uint8_t src[16], dst[16];
	struct nl_selector match;
	/* Parsed only: selectors ipmodd never sets, which make another rule of a look-alike. */
	bool invert;			/* "not" (FIB_RULE_INVERT) */
	char oifname[IFNAMSIZ];		/* "": any */
};

/* "PREFIX dev OIF table T proto P scope link": RTM_NEWROUTE / RTM_DELROUTE. */
struct nl_route {
	uint8_t family;
	uint8_t dst_len;		/* 0: default */
	uint8_t dst[16];
	uint32_t table;
	int oif;
	uint8_t protocol;
	uint8_t scope;			/* parsed only; built as link (new) or nowhere (del) */
	uint8_t type;			/* 0 or RTN_UNICAST: via oif; RTN_UNREACHABLE: no oif */
	uint32_t priority;		/* the metric; 0: the kernel's default */
	bool has_gateway;		/* parsed only: RTA_GATEWAY */
	uint8_t gateway[16];
};

/* One IPv4 devconf value: index is IPV4_DEVCONF_*. */
struct nl_devconf {
	uint16_t index;
	uint32_t value;
};

/* RTM_SETLINK: what to change on ifindex. */
struct nl_link {
	int ifindex;
	uint32_t mtu;			/* 0: unchanged */
	uint32_t txqlen;		/* 0: unchanged */
	bool up;			/* set IFF_UP; false: leave the flags alone */
	bool ipv6_no_addr;		/* IFLA_INET6_ADDR_GEN_MODE none: no link-local address */
	const struct nl_devconf *inet_conf;
	size_t n_inet_conf;
};

/* What RTM_GETLINK tells about one link. */
struct nl_link_info {
	int ifindex;
	char name[IFNAMSIZ];
	unsigned int flags;
	uint32_t mtu;
	bool carrier;			/* IFLA_CARRIER: a tun has it while a file is attached */
	char kind[NL_KIND_MAX];		/* IFLA_INFO_KIND, "" if none */
	bool tun_persist;		/* kind "tun" with IFLA_TUN_PERSIST set */
	uint32_t tun_queues;		/* queues attached (IFF_MULTI_QUEUE tuns only) */
	bool has_inet_conf;
	uint32_t inet_conf[NL_INET_CONF_MAX];	/* indexed by IPV4_DEVCONF_* */
};

/* What RTM_NEWNETCONF tells about one device (or "all"/"default": ifindex < 0). */
struct nl_netconf {
	uint8_t family;
	int ifindex;
	bool has_forwarding, has_rp_filter;
	uint32_t forwarding, rp_filter;
};

/* Called for each message of a reply; a negative return ends the walk with that error. */
typedef int (*nl_cb)(const struct nlmsghdr *nlh, void *userdata);

int nl_open(struct nl **ret);
struct nl *nl_close(struct nl *nl);

/*
 * Send the message in msg with NLM_F_ACK and a fresh sequence number, wait for
 * the acknowledgement and return its error: 0 or -errno.  Replies to a GET
 * (other than the acknowledgement) go to cb, which may be NULL.  The message's
 * flags and sequence number are overwritten.
 */
int nl_request(struct nl *nl, void *msg, nl_cb cb, void *userdata);

/*
 * Dump the objects of type (RTM_GETRULE, RTM_GETROUTE, RTM_GETLINK) and
 * family, calling cb for each.  The dump is always read to its end, so the
 * socket stays usable when cb fails.  -EINTR: the kernel marked the dump
 * inconsistent (it changed meanwhile); repeat it.
 */
int nl_dump(struct nl *nl, uint16_t type, uint8_t family, nl_cb cb, void *userdata);

/*
 * Dump the routes of one table (RTM_GETROUTE with RTA_TABLE and strict
 * checking, so that the kernel sends that table only; an old kernel sends
 * them all and cb must filter anyway).
 */
int nl_dump_table(struct nl *nl, uint8_t family, uint32_t table, nl_cb cb, void *userdata);

/*
 * A socket for notifications: non-blocking, subscribed to the RTNLGRP_*
 * groups given, with a receive buffer large enough for bursts.
 */
int nl_open_events(const unsigned int *groups, size_t n_groups, struct nl **ret);
int nl_fd(const struct nl *nl);
/* Notifications caused by a request of this socket carry its port id. */
uint32_t nl_portid(const struct nl *nl);
/*
 * Read one datagram of notifications and call cb for each message in it.
 * Returns the number of messages, -EAGAIN when nothing is queued, or
 * -ENOBUFS when the kernel dropped notifications (the buffer overflowed):
 * only a dump tells the state then.
 */
int nl_receive(struct nl *nl, nl_cb cb, void *userdata);

/* The kernel's extended ACK message for the last failed request, or "". */
const char *nl_extack(const struct nl *nl);

/* Fetch one link by ifindex, or by name if ifindex is 0: -ENODEV when absent. */
int nl_link_get(struct nl *nl, int ifindex, const char *name, struct nl_link_info *ret);

/*
 * The neighbour entry of addr on ifindex: its NUD_* state, or -ENOENT when
 * there is none.
 */
int nl_neigh_get(struct nl *nl, int family, int ifindex, const uint8_t *addr, uint16_t *state);

/* Pure builders: message length or -errno (-ENOSPC when len is too small). */
int nl_build_rule(void *buf, size_t len, uint16_t type, const struct nl_rule *r);
int nl_build_route(void *buf, size_t len, uint16_t type, const struct nl_route *r);
int nl_build_setlink(void *buf, size_t len, const struct nl_link *l);
int nl_build_dellink(void *buf, size_t len, int ifindex);
int nl_build_getlink(void *buf, size_t len, int ifindex, const char *name);
int nl_build_getneigh(void *buf, size_t len, int family, int ifindex, const uint8_t *addr);
int nl_build_dump(void *buf, size_t len, uint16_t type, uint8_t family);
/* RTM_GETROUTE dump of one table (see nl_dump_table()). */
int nl_build_dump_table(void *buf, size_t len, uint8_t family, uint32_t table);
/* A copy of src re-typed as a request, as "ip rule/route flush" deletes a dumped entry. */
int nl_build_copy(void *buf, size_t len, const struct nlmsghdr *src, uint16_t type);

/* Pure parsers of a received (or built) message: 0 or -EINVAL / -EAFNOSUPPORT. */
int nl_parse_rule(const struct nlmsghdr *nlh, struct nl_rule *ret);
int nl_parse_route(const struct nlmsghdr *nlh, struct nl_route *ret);
int nl_parse_link(const struct nlmsghdr *nlh, struct nl_link_info *ret);
int nl_parse_netconf(const struct nlmsghdr *nlh, struct nl_netconf *ret);

/*
 * Whether two rules are the same kernel object: every selector, the table
 * and the priority (the protocol, which tells who added it, aside).
 */
bool nl_rule_same(const struct nl_rule *a, const struct nl_rule *b);

/*
 * Whether two selectors match the same: the fields a has_* flag leaves unset
 * aside.  Inline, so that config.c compares selectors without this module.
 */
static inline bool nl_selector_same(const struct nl_selector *a, const struct nl_selector *b)
{
	return a->has_uid == b->has_uid &&
	       (!a->has_uid || (a->uid_start == b->uid_start && a->uid_end == b->uid_end)) &&
	       a->ipproto == b->ipproto && a->has_sport == b->has_sport &&
	       (!a->has_sport || (a->sport_start == b->sport_start && a->sport_end == b->sport_end)) &&
	       a->has_dport == b->has_dport &&
	       (!a->has_dport || (a->dport_start == b->dport_start && a->dport_end == b->dport_end)) &&
	       a->has_fwmark == b->has_fwmark &&
	       (!a->has_fwmark || (a->fwmark == b->fwmark && a->fwmask == b->fwmask));
}

#endif
