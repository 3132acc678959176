/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NFQUEUE peer of bench/run: the mechanism zapret's nfqws and most
 * userspace packet modifiers are built on, reduced to what ipmodd-10's
 * set-ttl rule does.  It binds one queue (libnetfilter_queue's libmnl
 * based nfq_nlmsg_* API) in copy mode "packet" with the whole packet
 * (copy range 0xffff), the flags GSO (a TSO/GSO super-packet is queued
 * whole, as ipmodd's tun reads it) and FAIL_OPEN (a full queue lets the
 * packet pass instead of dropping it), and for each queued IPv4 packet
 * sets the TTL to 65 with an incremental header checksum fix (RFC 1624)
 * and gives the verdict NF_ACCEPT with the modified packet.  Packets of
 * another family, or cut short by the copy range, are accepted unchanged.
 *
 * A packet given back with a verdict leaves with its checksum marked
 * complete (the kernel's nfqnl_mangle() sets CHECKSUM_NONE), so a TCP or
 * UDP packet queued with its checksum still to be done by offload
 * (NFQA_SKB_CSUMNOTREADY: the host's own traffic, super-packets included)
 * gets its whole L4 checksum computed here, as any NFQUEUE program that
 * modifies packets must (nfqws does too).  That is part of what the
 * mechanism costs.
 *
 * Batched where the API allows: recvmmsg() takes up to BATCH queued
 * packets a call, and their verdicts go back in one sendmsg() (several
 * netlink messages in one datagram, the payloads by iovec straight from
 * the receive buffers).  NFQNL_MSG_VERDICT_BATCH itself carries no
 * payload, so it cannot return modified packets.
 *
 * The nft rule that queues the packets is the caller's (bench/run:
 * "queue num 0 bypass" in a postrouting chain).  It prints "ready" on
 * stderr once the queue is bound, runs until SIGINT or SIGTERM, and then
 * prints what it saw.
 *
 *   nfqloop [QUEUE]     (QUEUE 0..65535, default 0)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define BATCH 32
/* A whole 64 KiB packet and the attributes around it. */
#define MSG_SPACE (0x10000 + 4096)	/* a multiple of 4: every rxbuf[i] holds an aligned nlmsghdr */
#define SET_TTL 65
/* The queue's default 1024 packets of 64 KiB and their overhead. */
#define SOCKBUF (96 << 20)
/* One sendmsg() at most: far below the send buffer asked for. */
#define SEND_MAX (1 << 20)

/* The fixed part of one verdict: header, verdict, payload attribute header. */
struct verdict_head {
	struct nlmsghdr nlh;
	struct nfgenmsg nfg;
	struct nlattr vattr;
	struct nfqnl_msg_verdict_hdr vh;
	struct nlattr pattr;
};

struct stats {
	unsigned long long packets, rewritten, unchanged, truncated, l4csum, batches, errors;
};

static volatile sig_atomic_t stop;
static uint8_t rxbuf[BATCH][MSG_SPACE] __attribute__((aligned(8)));

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Set the IPv4 TTL, fixing the header checksum: HC' = ~(~HC + ~m + m'). */
static int set_ttl(uint8_t *p, size_t len)
{
	uint16_t old, new, hc;
	uint32_t sum;

	if (len < 20 || p[0] >> 4 != 4 || p[8] == SET_TTL)
		return 0;
	old = (uint16_t)(p[8] << 8 | p[9]);
	p[8] = SET_TTL;
	new = (uint16_t)(p[8] << 8 | p[9]);
	hc = (uint16_t)(p[10] << 8 | p[11]);
	sum = (uint16_t)~hc + (uint16_t)~old + (uint32_t)new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	hc = (uint16_t)~sum;
	p[10] = (uint8_t)(hc >> 8);
	p[11] = (uint8_t)hc;
	return 1;
}

/* The one's complement sum of RFC 1071, in host order, unfolded. */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	uint64_t v8;
	uint32_t v4;
	uint16_t v2;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&v8, p, 8);
		sum += (v8 & 0xffffffff) + (v8 >> 32);
	}
	if (len >= 4) {
		memcpy(&v4, p, 4);
		sum += v4;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&v2, p, 2);
		sum += v2;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = { p[0], 0 };

		memcpy(&v2, last, 2);
		sum += v2;
	}
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * The whole TCP or UDP checksum of an IPv4 packet whose checksum field
 * holds only the pseudo-header sum (offload not done yet).  Returns 1 when
 * it computed one, 0 for other protocols and fragments.
 */
static int l4_checksum(uint8_t *p, size_t len)
{
	size_t ihl = (size_t)(p[0] & 0xf) * 4, tot = (size_t)(p[2] << 8 | p[3]), l4len, off;
	uint8_t pseudo[12];
	uint16_t c;

	if (ihl < 20 || tot > len || tot < ihl || (p[6] & 0x3f) || p[7])
		return 0;
	l4len = tot - ihl;
	if (p[9] == IPPROTO_TCP && l4len >= 20)
		off = 16;
	else if (p[9] == IPPROTO_UDP && l4len >= 8)
		off = 6;
	else
		return 0;
	memcpy(pseudo, p + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = p[9];
	pseudo[10] = (uint8_t)(l4len >> 8);
	pseudo[11] = (uint8_t)l4len;
	memset(p + ihl + off, 0, 2);
	c = csum_fold(csum_add(csum_add(0, pseudo, sizeof(pseudo)), p + ihl, l4len));
	if (c == 0 && p[9] == IPPROTO_UDP)
		c = 0xffff;
	memcpy(p + ihl + off, &c, 2);
	return 1;
}

static int ack_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_OK;
}

/* Send one configuration message and wait for its ACK. */
static int config(struct mnl_socket *nl, struct nlmsghdr *nlh, char *buf, size_t size)
{
	unsigned int portid = mnl_socket_get_portid(nl);
	uint32_t seq = (uint32_t)time(NULL) ^ nlh->nlmsg_type;
	ssize_t n;
	int ret;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl, buf, size);
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, ack_cb, NULL);
	} while (ret == MNL_CB_OK);
	return ret < 0 ? -errno : 0;
}

static int bind_queue(struct mnl_socket *nl, uint16_t queue)
{
	static char buf[8192];
	struct nlmsghdr *nlh;
	int ret;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	ret = config(nl, nlh, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	return config(nl, nlh, buf, sizeof(buf));
}

/*
 * One queued packet: rewrite it and add its verdict to the batch (head and
 * iovecs).  Returns 0, or -1 for a message that is not a queued packet.
 */
static int handle(struct nlmsghdr *nlh, struct verdict_head *vh, struct iovec *iov,
		  size_t *niov, size_t *bytes, struct stats *st)
{
	static const uint8_t pad[4];
	struct nlattr *attr[NFQA_MAX + 1] = { NULL };
	struct nfqnl_msg_packet_hdr *ph;
	struct nfgenmsg *nfg;
	uint8_t *payload = NULL;
	uint32_t plen = 0, padlen, skbinfo;
	int modified = 0;

	if (nlh->nlmsg_type == NLMSG_ERROR) {
		st->errors++;
		return -1;
	}
	if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET ||
	    nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
		return -1;
	nfg = mnl_nlmsg_get_payload(nlh);
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	st->packets++;
	if (attr[NFQA_PAYLOAD]) {
		payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		plen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	}
	/* A cut packet goes back without payload: the kernel would trim it. */
	if (attr[NFQA_CAP_LEN] && ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) != plen) {
		st->truncated++;
		plen = 0;
	} else if (payload) {
		modified = set_ttl(payload, plen);
		skbinfo = attr[NFQA_SKB_INFO] ? ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO])) : 0;
		if (modified && (skbinfo & NFQA_SKB_CSUMNOTREADY))
			st->l4csum += (unsigned long long)l4_checksum(payload, plen);
	}
	if (modified)
		st->rewritten++;
	else
		st->unchanged++;

	padlen = modified ? MNL_ALIGN(plen) - plen : 0;
	memset(vh, 0, sizeof(*vh));
	vh->nlh.nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT;
	vh->nlh.nlmsg_flags = NLM_F_REQUEST;
	vh->nfg.nfgen_family = AF_UNSPEC;
	vh->nfg.version = NFNETLINK_V0;
	vh->nfg.res_id = nfg->res_id;
	vh->vattr.nla_type = NFQA_VERDICT_HDR;
	vh->vattr.nla_len = sizeof(vh->vattr) + sizeof(vh->vh);
	vh->vh.verdict = htonl(NF_ACCEPT);
	vh->vh.id = ph->packet_id;
	vh->pattr.nla_type = NFQA_PAYLOAD;
	vh->pattr.nla_len = (uint16_t)(sizeof(vh->pattr) + plen);
	if (modified) {
		vh->nlh.nlmsg_len = sizeof(*vh) + plen + padlen;
		iov[(*niov)++] = (struct iovec){ vh, sizeof(*vh) };
		iov[(*niov)++] = (struct iovec){ payload, plen };
		if (padlen)
			iov[(*niov)++] = (struct iovec){ (void *)pad, padlen };
	} else {
		vh->nlh.nlmsg_len = offsetof(struct verdict_head, pattr);
		iov[(*niov)++] = (struct iovec){ vh, vh->nlh.nlmsg_len };
	}
	*bytes += vh->nlh.nlmsg_len;
	return 0;
}

static int flush(int fd, struct iovec *iov, size_t *niov, size_t *bytes, struct stats *st)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct msghdr mh = {
		.msg_name = &sa,
		.msg_namelen = sizeof(sa),
		.msg_iov = iov,
		.msg_iovlen = *niov,
	};
	ssize_t n;

	if (!*niov)
		return 0;
	n = sendmsg(fd, &mh, 0);
	*niov = 0;
	*bytes = 0;
	if (n < 0) {
		st->errors++;
		return -errno;
	}
	st->batches++;
	return 0;
}

int main(int argc, char **argv)
{
	static struct verdict_head heads[BATCH * 4];
	struct iovec iov[BATCH * 4 * 3];
	struct mmsghdr msgs[BATCH];
	struct iovec rxiov[BATCH];
	struct stats st = { 0 };
	struct mnl_socket *nl;
	struct sigaction sa;
	unsigned long q = 0;
	char *end;
	int fd, one = 1, sz = SOCKBUF, ret = 0;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: nfqloop [QUEUE]\n");
		return 2;
	}
	if (argc == 2) {
		errno = 0;
		q = strtoul(argv[1], &end, 10);
		if (errno || *end || end == argv[1] || q > 65535) {
			fprintf(stderr, "nfqloop: queue: 0..65535\n");
			return 2;
		}
	}
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl) {
		perror("nfqloop: netlink");
		return 1;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("nfqloop: bind");
		ret = 1;
		goto out;
	}
	fd = mnl_socket_get_fd(nl);
	/* Room for bursts, and no ENOBUFS: FAIL_OPEN passes what does not fit. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	mnl_socket_setsockopt(nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	errno = -bind_queue(nl, (uint16_t)q);
	if (errno) {
		perror("nfqloop: binding the queue");
		ret = 1;
		goto out;
	}

	/* No SA_RESTART: a signal ends the blocking receive. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "nfqloop: ready, queue %lu\n", q);

	for (int i = 0; i < BATCH; i++) {
		rxiov[i] = (struct iovec){ rxbuf[i], MSG_SPACE };
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &rxiov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (!stop) {
		size_t niov = 0, nhead = 0, bytes = 0;
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("nfqloop: recvmmsg");
			ret = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)rxbuf[i];
			int len = (int)msgs[i].msg_len;

			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				st.errors++;
				continue;
			}
			for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
				/* Room for the largest next verdict, or send these first. */
				if (nhead == BATCH * 4 || bytes + MSG_SPACE > SEND_MAX) {
					if (flush(fd, iov, &niov, &bytes, &st) < 0)
						perror("nfqloop: sendmsg");
					nhead = 0;
				}
				if (handle(nlh, &heads[nhead], iov, &niov, &bytes, &st) == 0)
					nhead++;
			}
		}
		if (flush(fd, iov, &niov, &bytes, &st) < 0)
			perror("nfqloop: sendmsg");
	}
	fprintf(stderr, "nfqloop: packets=%llu rewritten=%llu unchanged=%llu truncated=%llu "
		"l4csum=%llu sends=%llu errors=%llu\n", st.packets, st.rewritten, st.unchanged,
		st.truncated, st.l4csum, st.batches, st.errors);
out:
	mnl_socket_close(nl);
	return ret;
}
