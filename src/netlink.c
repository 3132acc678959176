/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rtnetlink over libmnl.  Every request carries NLM_F_ACK and is answered
 * by exactly one NLMSG_ERROR with our sequence number; messages with another
 * sequence number are leftovers of an abandoned exchange and are skipped.
 */
#include <net/if.h>

#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/netconf.h>
#include <linux/rtnetlink.h>

#include "netlink.h"
#include "util.h"

_Static_assert(IPV4_DEVCONF_MAX < NL_INET_CONF_MAX, "NL_INET_CONF_MAX too small");

/*
 * Notifications: a link message with all its attributes is a few KiB; the
 * socket buffer holds a burst such as a flushed table of a full routing
 * table's size.
 */
#define NL_EVENTS_BUF (64 * 1024)
#define NL_EVENTS_RCVBUF (4 * 1024 * 1024)

struct nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	size_t buflen;
	void *buf;
	char extack[NL_EXTACK_MAX];
};

struct nl *nl_close(struct nl *nl)
{
	if (!nl)
		return NULL;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->buf);
	free(nl);
	return NULL;
}

int nl_open(struct nl **ret)
{
	struct nl *nl;
	int one = 1, r;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->buflen = MNL_SOCKET_BUFFER_SIZE;
	nl->buf = malloc(nl->buflen);
	if (!nl->buf) {
		r = -ENOMEM;
		goto fail;
	}
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock) {
		r = negative_errno();
		goto fail;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = negative_errno();
		goto fail;
	}
	/*
	 * Small errors that still carry the kernel's reason.  Both options are
	 * optional: an old kernel just sends plain, full-size errors.
	 */
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	*ret = nl;
	return 0;

fail:
	nl_close(nl);
	return r;
}

int nl_open_events(const unsigned int *groups, size_t n_groups, struct nl **ret)
{
	int size = NL_EVENTS_RCVBUF, fd, r;
	struct nl *nl;
	size_t i;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->buflen = NL_EVENTS_BUF;
	nl->buf = malloc(nl->buflen);
	if (!nl->buf) {
		r = -ENOMEM;
		goto fail;
	}
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!nl->sock) {
		r = negative_errno();
		goto fail;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = negative_errno();
		goto fail;
	}
	for (i = 0; i < n_groups; i++) {
		if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP, (void *)&groups[i],
					  sizeof(groups[i])) < 0) {
			r = negative_errno();
			goto fail;
		}
	}
	/* Beyond rmem_max needs CAP_NET_ADMIN, which the daemon has; else take what is allowed. */
	fd = mnl_socket_get_fd(nl->sock);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	nl->portid = mnl_socket_get_portid(nl->sock);
	*ret = nl;
	return 0;

fail:
	nl_close(nl);
	return r;
}

int nl_fd(const struct nl *nl)
{
	return mnl_socket_get_fd(nl->sock);
}

uint32_t nl_portid(const struct nl *nl)
{
	return nl->portid;
}

int nl_receive(struct nl *nl, nl_cb cb, void *userdata)
{
	struct sockaddr_nl addr;
	struct iovec iov = { .iov_base = nl->buf, .iov_len = nl->buflen };
	struct msghdr msg = {
		.msg_name = &addr, .msg_namelen = sizeof(addr), .msg_iov = &iov, .msg_iovlen = 1,
	};
	const struct nlmsghdr *m;
	int len, count = 0, err = 0, r;
	ssize_t n;

	n = recvmsg(mnl_socket_get_fd(nl->sock), &msg, MSG_DONTWAIT);
	if (n < 0)
		return negative_errno();
	/* A datagram cut short is as good as lost: the caller resynchronises. */
	if (msg.msg_flags & MSG_TRUNC)
		return -ENOBUFS;
	/* Only the kernel sends notifications; a process may send to our port too. */
	if (msg.msg_namelen != sizeof(addr) || addr.nl_pid != 0)
		return 0;
	len = (int)n;
	for (m = nl->buf; mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
		if (m->nlmsg_type == NLMSG_OVERRUN) {
			err = -ENOBUFS;
			continue;
		}
		if (m->nlmsg_type < NLMSG_MIN_TYPE)
			continue;
		count++;
		r = cb(m, userdata);
		if (r < 0 && !err)
			err = r;
	}
	return err ? err : count;
}

const char *nl_extack(const struct nl *nl)
{
	return nl->extack;
}

static int extack_cb(const struct nlattr *a, void *data)
{
	struct nl *nl = data;
	const char *msg;
	size_t n;

	if (mnl_attr_get_type(a) != NLMSGERR_ATTR_MSG ||
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_OK;
	msg = mnl_attr_get_str(a);
	n = strnlen(msg, sizeof(nl->extack) - 1);
	memcpy(nl->extack, msg, n);
	nl->extack[n] = '\0';
	return MNL_CB_STOP;
}

/* The error of an NLMSG_ERROR (0 for an ACK), keeping the extended ACK text. */
static int ack_error(struct nl *nl, const struct nlmsghdr *m)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);
	size_t plen = mnl_nlmsg_get_payload_len(m), off = sizeof(*e);

	if (plen < sizeof(*e))
		return -EBADMSG;
	if (e->error > 0 || e->error < -4095)
		return -EPROTO;
	if (e->error == 0 || !(m->nlmsg_flags & NLM_F_ACK_TLVS))
		return e->error;
	if (!(m->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
			return e->error;
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	}
	off = MNL_ALIGN(off);
	if (off < plen)
		mnl_attr_parse_payload((const char *)e + off, plen - off, extack_cb, nl);
	return e->error;
}

static int done_error(const struct nlmsghdr *m)
{
	int e;

	if (mnl_nlmsg_get_payload_len(m) < sizeof(e))
		return 0;
	memcpy(&e, mnl_nlmsg_get_payload(m), sizeof(e));
	return e < 0 ? e : 0;
}

/*
 * Send nlh and read until its ACK or NLMSG_DONE.  The first error wins, but
 * reading goes on to the end so that the next exchange starts clean.
 */
static int nl_talk(struct nl *nl, struct nlmsghdr *nlh, nl_cb cb, void *userdata)
{
	uint32_t seq = ++nl->seq;
	bool intr = false;
	int err = 0;

	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = 0;
	nl->extack[0] = '\0';
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return negative_errno();

	for (;;) {
		const struct nlmsghdr *m;
		ssize_t n;
		int len, r;

		n = mnl_socket_recvfrom(nl->sock, nl->buf, nl->buflen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		len = (int)n;
		for (m = nl->buf; mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
			if (m->nlmsg_seq != seq || m->nlmsg_pid != nl->portid)
				continue;
			if (m->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			switch (m->nlmsg_type) {
			case NLMSG_NOOP:
				break;
			case NLMSG_ERROR:
				r = ack_error(nl, m);
				return err ? err : r;
			case NLMSG_DONE:
				r = done_error(m);
				if (err || r)
					return err ? err : r;
				return intr ? -EINTR : 0;
			case NLMSG_OVERRUN:
				if (!err)
					err = -ENOBUFS;
				break;
			default:
				if (cb && !err) {
					r = cb(m, userdata);
					if (r < 0)
						err = r;
				}
				break;
			}
		}
	}
}

int nl_request(struct nl *nl, void *msg, nl_cb cb, void *userdata)
{
	struct nlmsghdr *nlh = msg;

	/* Not touching the other bits: NLM_F_EXCL and NLM_F_MATCH are the same one. */
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	return nl_talk(nl, nlh, cb, userdata);
}

int nl_dump(struct nl *nl, uint16_t type, uint8_t family, nl_cb cb, void *userdata)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	int r;

	r = nl_build_dump(buf, sizeof(buf), type, family);
	if (r < 0)
		return r;
	return nl_talk(nl, (struct nlmsghdr *)buf, cb, userdata);
}

int nl_dump_table(struct nl *nl, uint8_t family, uint32_t table, nl_cb cb, void *userdata)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	int one = 1, zero = 0, r;

	r = nl_build_dump_table(buf, sizeof(buf), family, table);
	if (r < 0)
		return r;
	/* Strict for this dump only: the socket's other requests were written for lenient checks. */
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
	r = nl_talk(nl, (struct nlmsghdr *)buf, cb, userdata);
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_GET_STRICT_CHK, &zero, sizeof(zero));
	/* The kernel creates a table with its first route: none yet is an empty one. */
	return r == -ENOENT ? 0 : r;
}

/* --- builders ----------------------------------------------------------- */

static size_t addr_len(int family)
{
	switch (family) {
	case AF_INET:
		return 4;
	case AF_INET6:
		return 16;
	default:
		return 0;
	}
}

/* A zeroed request with its family header, or NULL when len cannot hold it. */
static struct nlmsghdr *put_msg(void *buf, size_t len, uint16_t type, uint16_t flags,
				size_t hdrlen)
{
	struct nlmsghdr *nlh;

	if (len < MNL_NLMSG_HDRLEN + MNL_ALIGN(hdrlen))
		return NULL;
	memset(buf, 0, len);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	mnl_nlmsg_put_extra_header(nlh, hdrlen);
	return nlh;
}

int nl_build_rule(void *buf, size_t len, uint16_t type, const struct nl_rule *r)
{
	const struct nl_selector *m = &r->match;
	struct fib_rule_hdr *frh;
	struct nlmsghdr *nlh;
	size_t alen = addr_len(r->family);
	bool ok = true;

	if (type != RTM_NEWRULE && type != RTM_DELRULE)
		return -EINVAL;
	if (!alen)
		return -EAFNOSUPPORT;
	if (r->src_len > alen * 8 || r->dst_len > alen * 8 ||
	    !memchr(r->iifname, '\0', sizeof(r->iifname)))
		return -EINVAL;

	nlh = put_msg(buf, len, type, type == RTM_NEWRULE ? NLM_F_CREATE | NLM_F_EXCL : 0,
		      sizeof(*frh));
	if (!nlh)
		return -ENOSPC;
	frh = mnl_nlmsg_get_payload(nlh);
	frh->family = r->family;
	frh->action = FR_ACT_TO_TBL;
	frh->src_len = r->src_len;
	frh->dst_len = r->dst_len;
	/* As iproute2: the header's u8 table when it fits, FRA_TABLE otherwise. */
	frh->table = r->table < 256 ? r->table : RT_TABLE_UNSPEC;
	if (r->table >= 256)
		ok = ok && mnl_attr_put_u32_check(nlh, len, FRA_TABLE, r->table);

	ok = ok && mnl_attr_put_u32_check(nlh, len, FRA_PRIORITY, r->priority);
	if (r->src_len)
		ok = ok && mnl_attr_put_check(nlh, len, FRA_SRC, alen, r->src);
	if (r->dst_len)
		ok = ok && mnl_attr_put_check(nlh, len, FRA_DST, alen, r->dst);
	if (r->iifname[0])
		ok = ok && mnl_attr_put_strz_check(nlh, len, FRA_IIFNAME, r->iifname);
	if (m->has_fwmark) {
		ok = ok && mnl_attr_put_u32_check(nlh, len, FRA_FWMARK, m->fwmark);
		ok = ok && mnl_attr_put_u32_check(nlh, len, FRA_FWMASK, m->fwmask);
	}
	if (m->has_uid) {
		struct fib_rule_uid_range u = { .start = m->uid_start, .end = m->uid_end };

		ok = ok && mnl_attr_put_check(nlh, len, FRA_UID_RANGE, sizeof(u), &u);
	}
	if (m->ipproto)
		ok = ok && mnl_attr_put_u8_check(nlh, len, FRA_IP_PROTO, m->ipproto);
	if (m->has_sport) {
		struct fib_rule_port_range p = { .start = m->sport_start, .end = m->sport_end };

		ok = ok && mnl_attr_put_check(nlh, len, FRA_SPORT_RANGE, sizeof(p), &p);
	}
	if (m->has_dport) {
		struct fib_rule_port_range p = { .start = m->dport_start, .end = m->dport_end };

		ok = ok && mnl_attr_put_check(nlh, len, FRA_DPORT_RANGE, sizeof(p), &p);
	}
	if (r->protocol)
		ok = ok && mnl_attr_put_u8_check(nlh, len, FRA_PROTOCOL, r->protocol);

	return ok ? (int)nlh->nlmsg_len : -ENOSPC;
}

int nl_build_route(void *buf, size_t len, uint16_t type, const struct nl_route *r)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	size_t alen = addr_len(r->family);
	bool ok = true;

	if (type != RTM_NEWROUTE && type != RTM_DELROUTE)
		return -EINVAL;
	if (!alen)
		return -EAFNOSUPPORT;
	if (r->type != 0 && r->type != RTN_UNICAST && r->type != RTN_UNREACHABLE)
		return -EINVAL;
	if (r->dst_len > alen * 8 ||
	    (type == RTM_NEWROUTE && r->type != RTN_UNREACHABLE && r->oif <= 0))
		return -EINVAL;

	nlh = put_msg(buf, len, type, type == RTM_NEWROUTE ? NLM_F_CREATE | NLM_F_EXCL : 0,
		      sizeof(*rtm));
	if (!nlh)
		return -ENOSPC;
	rtm = mnl_nlmsg_get_payload(nlh);
	rtm->rtm_family = r->family;
	rtm->rtm_dst_len = r->dst_len;
	rtm->rtm_table = r->table < 256 ? r->table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = r->protocol;
	/*
	 * A device route without gateway is link scope, an unreachable one
	 * universe; "nowhere" matches any on delete.
	 */
	rtm->rtm_type = r->type ? r->type : RTN_UNICAST;
	if (type == RTM_DELROUTE)
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	else
		rtm->rtm_scope = rtm->rtm_type == RTN_UNREACHABLE ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;

	if (r->table >= 256)
		ok = ok && mnl_attr_put_u32_check(nlh, len, RTA_TABLE, r->table);
	if (r->dst_len)
		ok = ok && mnl_attr_put_check(nlh, len, RTA_DST, alen, r->dst);
	if (r->oif > 0)
		ok = ok && mnl_attr_put_u32_check(nlh, len, RTA_OIF, (uint32_t)r->oif);
	if (r->priority)
		ok = ok && mnl_attr_put_u32_check(nlh, len, RTA_PRIORITY, r->priority);

	return ok ? (int)nlh->nlmsg_len : -ENOSPC;
}

int nl_build_setlink(void *buf, size_t len, const struct nl_link *l)
{
	struct nlattr *spec, *inet, *conf;
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh;
	size_t i;

	if (l->ifindex <= 0 || (l->n_inet_conf && !l->inet_conf))
		return -EINVAL;
	for (i = 0; i < l->n_inet_conf; i++)
		if (l->inet_conf[i].index == 0)
			return -EINVAL;

	nlh = put_msg(buf, len, RTM_SETLINK, 0, sizeof(*ifm));
	if (!nlh)
		return -ENOSPC;
	ifm = mnl_nlmsg_get_payload(nlh);
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = l->ifindex;
	if (l->up) {
		ifm->ifi_flags = IFF_UP;
		ifm->ifi_change = IFF_UP;
	}
	if (l->mtu && !mnl_attr_put_u32_check(nlh, len, IFLA_MTU, l->mtu))
		return -ENOSPC;
	if (l->txqlen && !mnl_attr_put_u32_check(nlh, len, IFLA_TXQLEN, l->txqlen))
		return -ENOSPC;
	if (!l->n_inet_conf && !l->ipv6_no_addr)
		return (int)nlh->nlmsg_len;

	/*
	 * IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { [IPV4_DEVCONF_x] = u32 } },
	 *		  AF_INET6 { IFLA_INET6_ADDR_GEN_MODE = u8 } }
	 */
	spec = mnl_attr_nest_start_check(nlh, len, IFLA_AF_SPEC);
	if (!spec)
		return -ENOSPC;
	if (l->n_inet_conf) {
		inet = mnl_attr_nest_start_check(nlh, len, AF_INET);
		if (!inet)
			return -ENOSPC;
		conf = mnl_attr_nest_start_check(nlh, len, IFLA_INET_CONF);
		if (!conf)
			return -ENOSPC;
		for (i = 0; i < l->n_inet_conf; i++)
			if (!mnl_attr_put_u32_check(nlh, len, l->inet_conf[i].index,
						    l->inet_conf[i].value))
				return -ENOSPC;
		mnl_attr_nest_end(nlh, conf);
		mnl_attr_nest_end(nlh, inet);
	}
	if (l->ipv6_no_addr) {
		inet = mnl_attr_nest_start_check(nlh, len, AF_INET6);
		if (!inet)
			return -ENOSPC;
		if (!mnl_attr_put_u8_check(nlh, len, IFLA_INET6_ADDR_GEN_MODE,
					   IN6_ADDR_GEN_MODE_NONE))
			return -ENOSPC;
		mnl_attr_nest_end(nlh, inet);
	}
	mnl_attr_nest_end(nlh, spec);
	return (int)nlh->nlmsg_len;
}

int nl_build_dellink(void *buf, size_t len, int ifindex)
{
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh;

	if (ifindex <= 0)
		return -EINVAL;
	nlh = put_msg(buf, len, RTM_DELLINK, 0, sizeof(*ifm));
	if (!nlh)
		return -ENOSPC;
	ifm = mnl_nlmsg_get_payload(nlh);
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	return (int)nlh->nlmsg_len;
}

int nl_build_getlink(void *buf, size_t len, int ifindex, const char *name)
{
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh;
	bool ok = true;

	if (ifindex < 0 || (ifindex == 0 && (!name || !name[0] || strlen(name) >= IFNAMSIZ)))
		return -EINVAL;
	nlh = put_msg(buf, len, RTM_GETLINK, 0, sizeof(*ifm));
	if (!nlh)
		return -ENOSPC;
	ifm = mnl_nlmsg_get_payload(nlh);
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	if (ifindex == 0)
		ok = ok && mnl_attr_put_strz_check(nlh, len, IFLA_IFNAME, name);
	ok = ok && mnl_attr_put_u32_check(nlh, len, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return ok ? (int)nlh->nlmsg_len : -ENOSPC;
}

int nl_build_dump(void *buf, size_t len, uint16_t type, uint8_t family)
{
	struct nlmsghdr *nlh;
	size_t hdrlen;

	switch (type) {
	case RTM_GETRULE:
		hdrlen = sizeof(struct fib_rule_hdr);
		break;
	case RTM_GETROUTE:
		hdrlen = sizeof(struct rtmsg);
		break;
	case RTM_GETLINK:
		hdrlen = sizeof(struct ifinfomsg);
		break;
	default:
		return -EINVAL;
	}
	nlh = put_msg(buf, len, type, NLM_F_DUMP, hdrlen);
	if (!nlh)
		return -ENOSPC;
	/* The family is the first byte of fib_rule_hdr, rtmsg and ifinfomsg alike. */
	*(uint8_t *)mnl_nlmsg_get_payload(nlh) = family;
	return (int)nlh->nlmsg_len;
}

int nl_build_dump_table(void *buf, size_t len, uint8_t family, uint32_t table)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	if (!addr_len(family))
		return -EAFNOSUPPORT;
	nlh = put_msg(buf, len, RTM_GETROUTE, NLM_F_DUMP, sizeof(*rtm));
	if (!nlh)
		return -ENOSPC;
	rtm = mnl_nlmsg_get_payload(nlh);
	rtm->rtm_family = family;
	/* RTA_TABLE alone: the strict check refuses anything else in the header. */
	if (!mnl_attr_put_u32_check(nlh, len, RTA_TABLE, table))
		return -ENOSPC;
	return (int)nlh->nlmsg_len;
}

int nl_build_copy(void *buf, size_t len, const struct nlmsghdr *src, uint16_t type)
{
	struct nlmsghdr *nlh = buf;

	if (src->nlmsg_len < MNL_NLMSG_HDRLEN)
		return -EINVAL;
	if (src->nlmsg_len > len)
		return -ENOSPC;
	memcpy(buf, src, src->nlmsg_len);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = 0;
	nlh->nlmsg_pid = 0;
	return (int)nlh->nlmsg_len;
}

/* --- parsers ------------------------------------------------------------ */

struct attr_table {
	const struct nlattr **tb;
	unsigned int max;
};

static int attr_table_cb(const struct nlattr *a, void *data)
{
	const struct attr_table *t = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type <= t->max)
		t->tb[type] = a;
	return MNL_CB_OK;
}

static int parse_attrs(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
		       unsigned int max)
{
	struct attr_table t = { tb, max };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	if (mnl_nlmsg_get_payload_len(nlh) < hdrlen)
		return -EINVAL;
	return mnl_attr_parse(nlh, hdrlen, attr_table_cb, &t) < 0 ? -EINVAL : 0;
}

static int parse_nested(const struct nlattr *nest, const struct nlattr **tb, unsigned int max)
{
	struct attr_table t = { tb, max };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	return mnl_attr_parse_nested(nest, attr_table_cb, &t) < 0 ? -EINVAL : 0;
}

/* Getters for optional attributes: absent is fine, a bad length is not. */
static bool get_bin(const struct nlattr *a, void *out, size_t len)
{
	if (!a)
		return true;
	if (mnl_attr_get_payload_len(a) != len)
		return false;
	memcpy(out, mnl_attr_get_payload(a), len);
	return true;
}

static bool get_u32(const struct nlattr *a, uint32_t *v)
{
	return get_bin(a, v, sizeof(*v));
}

static bool get_u8(const struct nlattr *a, uint8_t *v)
{
	return get_bin(a, v, sizeof(*v));
}

static bool get_str(const struct nlattr *a, char *out, size_t size)
{
	size_t n;

	if (!a)
		return true;
	if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return false;
	n = strlen(mnl_attr_get_str(a));
	if (n >= size)
		return false;
	memcpy(out, mnl_attr_get_str(a), n + 1);
	return true;
}

_Static_assert(offsetof(struct fib_rule_hdr, family) == 0 &&
	       offsetof(struct rtmsg, rtm_family) == 0,
	       "parse_addr_msg() reads the family from the header's first byte");

/*
 * A message of type new or del, its family header of hdrlen bytes (the
 * family in its first byte) and its attributes into tb: the family's
 * address length in *ret_alen.
 */
static int parse_addr_msg(const struct nlmsghdr *nlh, uint16_t new, uint16_t del, size_t hdrlen,
			  const struct nlattr **tb, unsigned int max, size_t *ret_alen)
{
	const uint8_t *family;

	if (nlh->nlmsg_type != new && nlh->nlmsg_type != del)
		return -EINVAL;
	if (parse_attrs(nlh, hdrlen, tb, max) < 0)
		return -EINVAL;
	family = mnl_nlmsg_get_payload(nlh);
	*ret_alen = addr_len(*family);
	return *ret_alen ? 0 : -EAFNOSUPPORT;
}

int nl_parse_rule(const struct nlmsghdr *nlh, struct nl_rule *ret)
{
	const struct nlattr *tb[FRA_MAX + 1];
	const struct fib_rule_hdr *frh;
	struct fib_rule_uid_range u;
	struct fib_rule_port_range sp, dp;
	struct nl_rule r = { 0 };
	size_t alen = 0;
	bool ok = true;
	int err;

	err = parse_addr_msg(nlh, RTM_NEWRULE, RTM_DELRULE, sizeof(*frh), tb, FRA_MAX, &alen);
	if (err < 0)
		return err;
	frh = mnl_nlmsg_get_payload(nlh);
	if (frh->src_len > alen * 8 || frh->dst_len > alen * 8)
		return -EINVAL;

	r.family = frh->family;
	r.action = frh->action;
	r.table = frh->table;
	r.src_len = frh->src_len;
	r.dst_len = frh->dst_len;
	ok = ok && get_u32(tb[FRA_TABLE], &r.table);
	ok = ok && get_u32(tb[FRA_PRIORITY], &r.priority);
	ok = ok && get_u8(tb[FRA_PROTOCOL], &r.protocol);
	ok = ok && get_bin(tb[FRA_SRC], r.src, alen);
	ok = ok && get_bin(tb[FRA_DST], r.dst, alen);
	ok = ok && get_str(tb[FRA_IIFNAME], r.iifname, sizeof(r.iifname));
	ok = ok && get_str(tb[FRA_OIFNAME], r.oifname, sizeof(r.oifname));
	r.invert = (frh->flags & FIB_RULE_INVERT) != 0;
	r.match.has_fwmark = tb[FRA_FWMARK] || tb[FRA_FWMASK];
	ok = ok && get_u32(tb[FRA_FWMARK], &r.match.fwmark);
	ok = ok && get_u32(tb[FRA_FWMASK], &r.match.fwmask);
	ok = ok && get_u8(tb[FRA_IP_PROTO], &r.match.ipproto);
	if (tb[FRA_UID_RANGE]) {
		ok = ok && get_bin(tb[FRA_UID_RANGE], &u, sizeof(u));
		r.match.has_uid = true;
		r.match.uid_start = u.start;
		r.match.uid_end = u.end;
	}
	if (tb[FRA_SPORT_RANGE]) {
		ok = ok && get_bin(tb[FRA_SPORT_RANGE], &sp, sizeof(sp));
		r.match.has_sport = true;
		r.match.sport_start = sp.start;
		r.match.sport_end = sp.end;
	}
	if (tb[FRA_DPORT_RANGE]) {
		ok = ok && get_bin(tb[FRA_DPORT_RANGE], &dp, sizeof(dp));
		r.match.has_dport = true;
		r.match.dport_start = dp.start;
		r.match.dport_end = dp.end;
	}
	if (!ok)
		return -EINVAL;
	*ret = r;
	return 0;
}

int nl_parse_route(const struct nlmsghdr *nlh, struct nl_route *ret)
{
	const struct nlattr *tb[RTA_MAX + 1];
	const struct rtmsg *rtm;
	struct nl_route r = { 0 };
	uint32_t oif = 0;
	size_t alen = 0;
	bool ok = true;
	int err;

	err = parse_addr_msg(nlh, RTM_NEWROUTE, RTM_DELROUTE, sizeof(*rtm), tb, RTA_MAX, &alen);
	if (err < 0)
		return err;
	rtm = mnl_nlmsg_get_payload(nlh);
	if (rtm->rtm_dst_len > alen * 8)
		return -EINVAL;

	r.family = rtm->rtm_family;
	r.dst_len = rtm->rtm_dst_len;
	r.table = rtm->rtm_table;
	r.protocol = rtm->rtm_protocol;
	r.scope = rtm->rtm_scope;
	r.type = rtm->rtm_type;
	ok = ok && get_u32(tb[RTA_TABLE], &r.table);
	ok = ok && get_bin(tb[RTA_DST], r.dst, alen);
	ok = ok && get_u32(tb[RTA_OIF], &oif);
	ok = ok && get_u32(tb[RTA_PRIORITY], &r.priority);
	ok = ok && get_bin(tb[RTA_GATEWAY], r.gateway, alen);
	r.has_gateway = tb[RTA_GATEWAY] != NULL;
	if (!ok || oif > INT32_MAX)
		return -EINVAL;
	r.oif = (int)oif;
	*ret = r;
	return 0;
}

int nl_parse_netconf(const struct nlmsghdr *nlh, struct nl_netconf *ret)
{
	const struct nlattr *tb[NETCONFA_MAX + 1];
	const struct netconfmsg *ncm;
	struct nl_netconf c = { 0 };
	int32_t ifindex;
	bool ok = true;

	if (nlh->nlmsg_type != RTM_NEWNETCONF && nlh->nlmsg_type != RTM_DELNETCONF)
		return -EINVAL;
	if (parse_attrs(nlh, sizeof(*ncm), tb, NETCONFA_MAX) < 0)
		return -EINVAL;
	ncm = mnl_nlmsg_get_payload(nlh);
	c.family = ncm->ncm_family;
	if (!tb[NETCONFA_IFINDEX] || !get_bin(tb[NETCONFA_IFINDEX], &ifindex, sizeof(ifindex)))
		return -EINVAL;
	c.ifindex = ifindex;
	c.has_forwarding = tb[NETCONFA_FORWARDING] != NULL;
	c.has_rp_filter = tb[NETCONFA_RP_FILTER] != NULL;
	ok = ok && get_u32(tb[NETCONFA_FORWARDING], &c.forwarding);
	ok = ok && get_u32(tb[NETCONFA_RP_FILTER], &c.rp_filter);
	if (!ok)
		return -EINVAL;
	*ret = c;
	return 0;
}

static bool prefix_same(const uint8_t *a, const uint8_t *b, unsigned int bits)
{
	unsigned int whole = bits / 8, rest = bits % 8;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	if (memcmp(a, b, whole) != 0)
		return false;
	return !rest || ((a[whole] ^ b[whole]) & mask) == 0;
}

/* Built rules leave action 0: they are all FR_ACT_TO_TBL. */
static uint8_t rule_action(const struct nl_rule *r)
{
	return r->action ? r->action : FR_ACT_TO_TBL;
}

bool nl_rule_same(const struct nl_rule *a, const struct nl_rule *b)
{
	return a->family == b->family && a->priority == b->priority && a->table == b->table &&
	       rule_action(a) == rule_action(b) && a->invert == b->invert &&
	       strcmp(a->iifname, b->iifname) == 0 && strcmp(a->oifname, b->oifname) == 0 &&
	       a->src_len == b->src_len && prefix_same(a->src, b->src, a->src_len) &&
	       a->dst_len == b->dst_len && prefix_same(a->dst, b->dst, a->dst_len) &&
	       nl_selector_same(&a->match, &b->match);
}

/*
 * Unlike RTM_SETLINK's nested form, the kernel reports IFLA_INET_CONF as a
 * plain u32 array whose element i is IPV4_DEVCONF index i + 1.
 */
static bool parse_inet_conf(const struct nlattr *spec, struct nl_link_info *info)
{
	const struct nlattr *a, *tb[IFLA_INET_MAX + 1];
	const uint32_t *v;
	size_t i, n;

	mnl_attr_for_each_nested(a, spec) {
		if (mnl_attr_get_type(a) != AF_INET)
			continue;
		if (parse_nested(a, tb, IFLA_INET_MAX) < 0)
			return false;
		if (!tb[IFLA_INET_CONF])
			return true;
		n = mnl_attr_get_payload_len(tb[IFLA_INET_CONF]) / sizeof(uint32_t);
		v = mnl_attr_get_payload(tb[IFLA_INET_CONF]);
		for (i = 0; i < n && i + 1 < NL_INET_CONF_MAX; i++)
			memcpy(&info->inet_conf[i + 1], &v[i], sizeof(uint32_t));
		info->has_inet_conf = true;
	}
	return true;
}

int nl_parse_link(const struct nlmsghdr *nlh, struct nl_link_info *ret)
{
	const struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1], *tun[IFLA_TUN_MAX + 1];
	const struct ifinfomsg *ifm;
	struct nl_link_info info = { 0 };
	uint32_t queues = 0, disabled = 0;
	uint8_t persist = 0, carrier = 0;
	bool ok = true;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return -EINVAL;
	if (parse_attrs(nlh, sizeof(*ifm), tb, IFLA_MAX) < 0)
		return -EINVAL;
	ifm = mnl_nlmsg_get_payload(nlh);
	info.ifindex = ifm->ifi_index;
	info.flags = ifm->ifi_flags;
	ok = ok && get_str(tb[IFLA_IFNAME], info.name, sizeof(info.name));
	ok = ok && get_u32(tb[IFLA_MTU], &info.mtu);
	ok = ok && get_u8(tb[IFLA_CARRIER], &carrier);
	info.carrier = carrier != 0;
	if (ok && tb[IFLA_LINKINFO]) {
		ok = parse_nested(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX) == 0;
		ok = ok && get_str(li[IFLA_INFO_KIND], info.kind, sizeof(info.kind));
		if (ok && strcmp(info.kind, "tun") == 0 && li[IFLA_INFO_DATA]) {
			ok = parse_nested(li[IFLA_INFO_DATA], tun, IFLA_TUN_MAX) == 0;
			ok = ok && get_u8(tun[IFLA_TUN_PERSIST], &persist);
			ok = ok && get_u32(tun[IFLA_TUN_NUM_QUEUES], &queues);
			ok = ok && get_u32(tun[IFLA_TUN_NUM_DISABLED_QUEUES], &disabled);
			info.tun_persist = persist != 0;
			info.tun_queues = queues + disabled;
		}
	}
	if (ok && tb[IFLA_AF_SPEC])
		ok = parse_inet_conf(tb[IFLA_AF_SPEC], &info);
	if (!ok)
		return -EINVAL;
	*ret = info;
	return 0;
}

struct link_get {
	struct nl_link_info info;
	bool found;
};

static int link_get_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct link_get *g = userdata;
	int r;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	r = nl_parse_link(nlh, &g->info);
	if (r < 0)
		return r;
	g->found = true;
	return 0;
}

int nl_link_get(struct nl *nl, int ifindex, const char *name, struct nl_link_info *ret)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct link_get g = { .found = false };
	int r;

	r = nl_build_getlink(buf, sizeof(buf), ifindex, name);
	if (r < 0)
		return r;
	r = nl_request(nl, buf, link_get_cb, &g);
	if (r < 0)
		return r;
	if (!g.found)
		return -ENODEV;
	*ret = g.info;
	return 0;
}

int nl_build_getneigh(void *buf, size_t len, int family, int ifindex, const uint8_t *addr)
{
	size_t alen = addr_len(family);
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;

	if (!alen || ifindex <= 0)
		return -EINVAL;
	nlh = put_msg(buf, len, RTM_GETNEIGH, 0, sizeof(*ndm));
	if (!nlh)
		return -ENOSPC;
	ndm = mnl_nlmsg_get_payload(nlh);
	ndm->ndm_family = (uint8_t)family;
	ndm->ndm_ifindex = ifindex;
	if (!mnl_attr_put_check(nlh, len, NDA_DST, alen, addr))
		return -ENOSPC;
	return (int)nlh->nlmsg_len;
}

static int neigh_get_cb(const struct nlmsghdr *nlh, void *userdata)
{
	const struct ndmsg *ndm;

	if (nlh->nlmsg_type != RTM_NEWNEIGH || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ndm))
		return 0;
	ndm = mnl_nlmsg_get_payload(nlh);
	*(uint16_t *)userdata = ndm->ndm_state;
	return 0;
}

int nl_neigh_get(struct nl *nl, int family, int ifindex, const uint8_t *addr, uint16_t *state)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	uint16_t st = 0;
	int r;

	r = nl_build_getneigh(buf, sizeof(buf), family, ifindex, addr);
	if (r < 0)
		return r;
	r = nl_request(nl, buf, neigh_get_cb, &st);
	if (r < 0)
		return r;
	*state = st;
	return 0;
}
