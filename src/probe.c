/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "gso.h"
#include "netlink.h"
#include "packet.h"
#include "probe.h"
#include "util.h"

#define PROBE_MAGIC "ipmodd self-check"
#define PROBE_PAYLOAD (sizeof(PROBE_MAGIC) - 1 + 8)
#define PROBE_MAX (40 + 8 + PROBE_PAYLOAD)
#define PROBE_READS 64		/* datagrams read per wake-up */

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

/* --- target -------------------------------------------------------------- */

struct default_route {
	int tun;
	bool found;
	struct nl_route best;
};

static uint32_t metric(const struct nl_route *r)
{
	return r->priority ? r->priority : r->family == AF_INET6 ? 1024 : 0;
}

static int default_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct default_route *d = userdata;
	struct nl_route r;

	if (nl_parse_route(nlh, &r) < 0 || r.table != RT_TABLE_MAIN || r.dst_len != 0 ||
	    (r.type && r.type != RTN_UNICAST) || r.oif <= 0 || r.oif == d->tun)
		return 0;
	if (!d->found || metric(&r) < metric(&d->best)) {
		d->best = r;
		d->found = true;
	}
	return 0;
}

/* The source the kernel picks for dst: what an application's packet would carry. */
static int pick_source(struct probe_target *t)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a = { 0 };
	socklen_t alen;
	_cleanup_(closep) int fd = -1;

	fd = socket(t->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (t->family == AF_INET) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons(PROBE_PORT);
		memcpy(&a.in.sin_addr, t->dst, 4);
		alen = sizeof(a.in);
	} else {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(PROBE_PORT);
		memcpy(&a.in6.sin6_addr, t->dst, 16);
		alen = sizeof(a.in6);
	}
	if (connect(fd, &a.sa, alen) < 0)
		return negative_errno();
	alen = sizeof(a);
	if (getsockname(fd, &a.sa, &alen) < 0)
		return negative_errno();
	if (t->family == AF_INET)
		memcpy(t->src, &a.in.sin_addr, 4);
	else
		memcpy(t->src, &a.in6.sin6_addr, 16);
	return 0;
}

int probe_target(int family, int tun_ifindex, struct probe_target *ret, char *err,
		 size_t errlen)
{
	/* Documentation addresses (RFC 5737, RFC 3849): only the first hop sees them. */
	static const uint8_t doc4[4] = { 192, 0, 2, 1 };
	static const uint8_t doc6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct default_route d = { .tun = tun_ifindex };
	struct probe_target t = { .family = family };
	struct nl_link_info info;
	struct nl *nl = NULL;
	int r;

	r = nl_open(&nl);
	if (r < 0)
		return err_set(err, errlen, r, "open rtnetlink socket: %s", strerror(-r));
	for (int attempt = 0; attempt < 4; attempt++) {
		memset(&d.best, 0, sizeof(d.best));
		d.found = false;
		r = nl_dump_table(nl, (uint8_t)family, RT_TABLE_MAIN, default_cb, &d);
		if (r != -EINTR)
			break;
	}
	if (r < 0) {
		err_set(err, errlen, r, "dump the main table (%s): %s", family_name(family),
			strerror(-r));
		goto out;
	}
	if (!d.found) {
		r = err_set(err, errlen, -ENETUNREACH,
			    "no default route in the main table (%s)", family_name(family));
		goto out;
	}
	t.oif = d.best.oif;
	r = nl_link_get(nl, t.oif, NULL, &info);
	if (r < 0) {
		err_set(err, errlen, r, "get link %d: %s", t.oif, strerror(-r));
		goto out;
	}
	memcpy(t.oif_name, info.name, sizeof(t.oif_name));
	if (!(info.flags & IFF_UP) || !(info.flags & IFF_RUNNING)) {
		r = err_set(err, errlen, -ENETDOWN, "%s, the default route's device (%s), is %s",
			    t.oif_name, family_name(family),
			    info.flags & IFF_UP ? "without carrier" : "down");
		goto out;
	}
	/* A link-local gateway cannot be the destination of a forwarded packet. */
	t.gateway = d.best.has_gateway &&
		    !(family == AF_INET6 && d.best.gateway[0] == 0xfe &&
		      (d.best.gateway[1] & 0xc0) == 0x80);
	if (t.gateway)
		memcpy(t.dst, d.best.gateway, family == AF_INET ? 4 : 16);
	else
		memcpy(t.dst, family == AF_INET ? doc4 : doc6, family == AF_INET ? 4 : 16);
	memcpy(t.nexthop, d.best.has_gateway ? d.best.gateway : t.dst, family == AF_INET ? 4 : 16);
	r = pick_source(&t);
	if (r < 0) {
		err_set(err, errlen, r, "pick a source address (%s): %s", family_name(family),
			strerror(-r));
		goto out;
	}
	*ret = t;
out:
	nl_close(nl);
	return r;
}

/* --- packet -------------------------------------------------------------- */

int probe_build(const struct probe_target *t, uint16_t sport, uint16_t id, uint64_t nonce,
		uint8_t *buf, size_t len)
{
	size_t ihl = t->family == AF_INET ? 20 : 40, total = ihl + 8 + PROBE_PAYLOAD;
	uint8_t *udp = buf + ihl, *pl = udp + 8;
	struct pkt p = { .data = buf, .len = total, .cap = len };

	if (len < total)
		return -ENOSPC;
	memset(buf, 0, total);
	if (t->family == AF_INET) {
		buf[0] = 0x45;
		put_be16(buf + 2, (uint16_t)total);
		put_be16(buf + 4, id);
		put_be16(buf + 6, 0x4000);	/* DF */
		buf[8] = PROBE_TTL;
		buf[9] = IPPROTO_UDP;
		memcpy(buf + 12, t->src, 4);
		memcpy(buf + 16, t->dst, 4);
	} else {
		put_be32(buf, 0x60000000u | id);
		put_be16(buf + 4, (uint16_t)(8 + PROBE_PAYLOAD));
		buf[6] = IPPROTO_UDP;
		buf[7] = PROBE_TTL;
		memcpy(buf + 8, t->src, 16);
		memcpy(buf + 24, t->dst, 16);
	}
	put_be16(udp, sport);
	put_be16(udp + 2, PROBE_PORT);
	put_be16(udp + 4, (uint16_t)(8 + PROBE_PAYLOAD));
	memcpy(pl, PROBE_MAGIC, sizeof(PROBE_MAGIC) - 1);
	memcpy(pl + sizeof(PROBE_MAGIC) - 1, &nonce, sizeof(nonce));
	/* Not 0, which pkt_csum_full() keeps as "no checksum" on IPv4. */
	put_be16(udp + 6, 0xffff);
	if (pkt_parse(&p) != PKT_OK)
		return -EINVAL;
	pkt_csum_full(&p);
	return (int)total;
}

bool probe_match(int family, uint16_t id, uint64_t nonce, const uint8_t *pkt, size_t len)
{
	size_t ihl;

	if (family == AF_INET) {
		if (len < 20 || (pkt[0] >> 4) != 4 || pkt[9] != IPPROTO_UDP ||
		    get_be16(pkt + 4) != id)
			return false;
		ihl = (size_t)(pkt[0] & 0x0f) * 4;
	} else {
		if (len < 40 || (pkt[0] >> 4) != 6 || pkt[6] != IPPROTO_UDP ||
		    (get_be32(pkt) & 0xfffff) != id)
			return false;
		ihl = 40;
	}
	if (len < ihl + 8 + PROBE_PAYLOAD || get_be16(pkt + ihl + 2) != PROBE_PORT)
		return false;
	pkt += ihl + 8;
	return memcmp(pkt, PROBE_MAGIC, sizeof(PROBE_MAGIC) - 1) == 0 &&
	       memcmp(pkt + sizeof(PROBE_MAGIC) - 1, &nonce, sizeof(nonce)) == 0;
}

/* --- watching ------------------------------------------------------------ */

/*
 * Every interface's outgoing packets of the family, filtered in the kernel
 * to the probe's mark (UDP, the IPv4 id or IPv6 flow label), so that a busy
 * host does not copy its traffic here.  Outgoing packets reach ETH_P_ALL
 * sockets only.  The filter is attached before the socket is bound: nothing
 * arrives unfiltered.
 */
static int watch_open(int family, uint16_t id)
{
	uint16_t proto = family == AF_INET ? ETH_P_IP : ETH_P_IPV6;
	struct sock_filter v4[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 7),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, proto, 0, 5),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_filter v6[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 8),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, proto, 0, 6),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xfffff),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = {
		.len = family == AF_INET ? ARRAY_SIZE(v4) : ARRAY_SIZE(v6),
		.filter = family == AF_INET ? v4 : v6,
	};
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
	};
	int fd, r;

	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		r = negative_errno();
		close(fd);
		return r;
	}
	return fd;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* The ifindex the probe left through, 0 when not (yet), or -errno. */
static int watch_read(int fd, int family, int tun, uint16_t id, uint64_t nonce)
{
	uint8_t buf[PROBE_MAX + 64];
	struct sockaddr_ll from;
	socklen_t flen;
	ssize_t n;

	for (int i = 0; i < PROBE_READS; i++) {
		flen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
		if (from.sll_pkttype != PACKET_OUTGOING || from.sll_ifindex == tun ||
		    from.sll_ifindex <= 0 ||
		    from.sll_protocol != htons(family == AF_INET ? ETH_P_IP : ETH_P_IPV6))
			continue;
		if (probe_match(family, id, nonce, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf)))
			return from.sll_ifindex;
	}
	return 0;
}

/*
 * A packet that passed the firewall waits for the next hop's address; one
 * that did not never asked for it.  An unresolved entry means the former.
 */
static bool probe_unresolved(const struct probe_target *t, char *err, size_t errlen)
{
	char a[INET6_ADDRSTRLEN];
	struct nl *nl = NULL;
	uint16_t state = 0;
	int r;

	if (nl_open(&nl) < 0)
		return false;
	r = nl_neigh_get(nl, t->family, t->oif, t->nexthop, &state);
	nl_close(nl);
	if (r < 0 || !(state & (NUD_INCOMPLETE | NUD_FAILED)))
		return false;
	inet_ntop(t->family, t->nexthop, a, sizeof(a));
	err_set(err, errlen, -EHOSTUNREACH,
		"not seen leaving, and the next hop %s on %s does not answer %s (%s)", a,
		t->oif_name, t->family == AF_INET ? "ARP" : "neighbour discovery",
		state & NUD_FAILED ? "failed" : "incomplete");
	return true;
}

int probe_run(struct tun *tun, const struct probe_target *t, struct probe_result *res,
	      char *err, size_t errlen)
{
	_Alignas(8) uint8_t buf[GSO_HDR_LEN + PROBE_MAX];
	uint8_t *pkt = buf + tun->hdrlen;
	_cleanup_(closep) int fd = -1;
	struct pollfd pfd;
	uint64_t nonce, start, deadline, now;
	uint16_t id, sport;
	int len, r;

	if (tun->hdrlen > GSO_HDR_LEN)
		return err_set(err, errlen, -EINVAL, "a virtio-net header of %zu bytes",
			       tun->hdrlen);
	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
		return err_set(err, errlen, -EIO, "getrandom failed");
	id = (uint16_t)(nonce >> 48) | 1;
	/* From the ephemeral range, never a listening service's port. */
	sport = (uint16_t)(49152 + (nonce >> 32) % 16384);
	len = probe_build(t, sport, id, nonce, pkt, PROBE_MAX);
	if (len < 0)
		return err_set(err, errlen, len, "build the probe: %s", strerror(-len));
	memset(buf, 0, tun->hdrlen);

	fd = watch_open(t->family, id);
	if (fd < 0)
		return err_set(err, errlen, fd, "open an AF_PACKET socket: %s", strerror(-fd));

	memset(res, 0, sizeof(*res));
	start = now_usec();
	for (unsigned int k = 0; k < PROBE_TRIES; k++) {
		r = tun_write(tun, 0, buf, tun->hdrlen + (size_t)len);
		if (r < 0)
			return err_set(err, errlen, r, "write the probe to %s: %s", tun->name,
				       strerror(-r));
		res->tries++;
		deadline = now_usec() + PROBE_WAIT_MS * 1000ULL;
		while ((now = now_usec()) < deadline) {
			pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
			r = poll(&pfd, 1, (int)((deadline - now + 999) / 1000));
			if (r < 0 && errno != EINTR)
				return err_set(err, errlen, negative_errno(), "poll: %s",
					       strerror(errno));
			if (r <= 0)
				continue;
			r = watch_read(fd, t->family, tun->ifindex, id, nonce);
			if (r < 0)
				return err_set(err, errlen, r, "read the AF_PACKET socket: %s",
					       strerror(-r));
			if (r > 0) {
				res->ifindex = r;
				if (!if_indextoname((unsigned int)r, res->ifname))
					snprintf(res->ifname, sizeof(res->ifname), "if%d", r);
				res->usec = now_usec() - start;
				return 0;
			}
		}
	}
	res->usec = now_usec() - start;
	return probe_unresolved(t, err, errlen) ? -EHOSTUNREACH :
	       err_set(err, errlen, -ETIMEDOUT, "not seen leaving within %llu ms",
		       (unsigned long long)(res->usec / 1000));
}
