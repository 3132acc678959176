/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Forged answers, as the remote host (or a router on the way) would send
 * them: the source is the request's destination, the destination its
 * source.  Everything is built from the request's bytes, which pkt_parse()
 * has bounded; nothing is read past req->len or written past out->cap.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "forge.h"
#include "util.h"

#define IP4_HLEN 20
#define IP6_HLEN 40
#define ICMP_HLEN 8
#define TCP_HLEN 20

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define IP_DF 0x4000
/* RFC 1812 4.3.2.5: ICMP errors carry precedence 6, internetwork control. */
#define TOS_INTERNETCONTROL 0xc0

/*
 * RFC 1812 4.3.2.3 quotes as much as fits in 576 bytes; RFC 4443 2.4(c) as
 * much as fits in the IPv6 minimum MTU.
 */
#define ICMP_ERR_MAX 576
#define ICMP6_ERR_MAX 1280

/*
 * Addresses that are not one host: answering them would reply to many or to
 * nobody.  IPv4: 0/8 ("this network", 0.0.0.0 included), 224/4 multicast,
 * 240/4 reserved with 255.255.255.255 (RFC 1812 4.3.2.7 excludes class E
 * sources too).  A subnet's directed broadcast cannot be told from a host
 * here; the kernel does not route those to the tun.  IPv6: :: and ff00::/8.
 */
static bool addr_is_host(int family, const uint8_t *a)
{
	static const uint8_t unspec[16];

	if (family == AF_INET)
		return a[0] != 0 && a[0] < 224;
	return a[0] != 0xff && memcmp(a, unspec, sizeof(unspec)) != 0;
}

/* The refusals every forge shares; -EPERM means "stay silent". */
static int forge_check(const struct pkt *req)
{
	if (req->family != AF_INET && req->family != AF_INET6)
		return -EINVAL;
	if (!req->first_fragment)
		return -EPERM;
	if (!addr_is_host(req->family, pkt_saddr(req)) ||
	    !addr_is_host(req->family, pkt_daddr(req)))
		return -EPERM;
	return 0;
}

static size_t ip_hlen(int family)
{
	return family == AF_INET ? IP4_HLEN : IP6_HLEN;
}

/* The IP header of a reply to req carrying l4len bytes of proto. */
static void put_iphdr(const struct pkt *req, struct pkt *out, uint8_t proto, uint8_t tclass,
		      size_t l4len)
{
	uint8_t *d = out->data;

	if (req->family == AF_INET) {
		d[0] = 0x45;
		d[1] = tclass;
		put_be16(d + 2, (uint16_t)(IP4_HLEN + l4len));
		/* RFC 6864: an atomic datagram (DF, unfragmented) may use ID 0. */
		put_be16(d + 4, 0);
		put_be16(d + 6, IP_DF);
		d[8] = FORGE_TTL;
		d[9] = proto;
		put_be16(d + 10, 0);
		memcpy(d + 12, pkt_daddr(req), 4);
		memcpy(d + 16, pkt_saddr(req), 4);
	} else {
		d[0] = (uint8_t)(0x60 | tclass >> 4);
		d[1] = (uint8_t)((tclass & 0x0f) << 4);
		d[2] = d[3] = 0;	/* flow label */
		put_be16(d + 4, (uint16_t)l4len);
		d[6] = proto;
		d[7] = FORGE_TTL;
		memcpy(d + 8, pkt_daddr(req), 16);
		memcpy(d + 24, pkt_saddr(req), 16);
	}
	out->len = ip_hlen(req->family) + l4len;
}

static int forge_finish(struct pkt *out)
{
	/* Cannot fail for what we build; a failure would be our bug. */
	if (pkt_parse(out) != PKT_OK)
		return -EPROTO;
	pkt_csum_full(out);
	return 0;
}

int forge_echo_reply(const struct pkt *req, struct pkt *out)
{
	bool v4 = req->family == AF_INET;
	size_t hlen, l4len;
	uint8_t *icmp;
	int r;

	r = forge_check(req);
	if (r < 0)
		return r;
	/*
	 * Only a whole echo request: the payload of a fragmented one is
	 * elsewhere, and ICMP errors or other types are not echo requests.
	 */
	if (req->fragment || !req->l4_complete ||
	    req->l4proto != (v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6) ||
	    req->icmp_type != (v4 ? 8 : 128))
		return -EPERM;

	hlen = ip_hlen(req->family);
	l4len = req->len - req->l4off;
	if (!out->data || out->cap < hlen + l4len)
		return -ENOSPC;

	/* Identifier, sequence and data unchanged; options and extension headers dropped. */
	icmp = out->data + hlen;
	memcpy(icmp, req->data + req->l4off, l4len);
	icmp[0] = v4 ? 0 : 129;
	icmp[1] = 0;
	put_iphdr(req, out, req->l4proto, (uint8_t)(pkt_dscp(req) << 2), l4len);
	return forge_finish(out);
}

int forge_tcp_reset(const struct pkt *req, struct pkt *out)
{
	const uint8_t *seg = req->data + req->l4off;
	uint32_t seq, ack, paylen;
	size_t hlen;
	uint8_t *tcp;
	int r;

	r = forge_check(req);
	if (r < 0)
		return r;
	/* The acknowledgment needs the segment length: no fragments. */
	if (req->fragment || !req->l4_complete || req->l4proto != IPPROTO_TCP ||
	    (seg[13] & TCP_RST))
		return -EPERM;

	hlen = ip_hlen(req->family);
	if (!out->data || out->cap < hlen + TCP_HLEN)
		return -ENOSPC;

	/* pkt_parse() checked that the data offset lies inside the packet. */
	paylen = (uint32_t)(req->len - req->l4off - (size_t)(seg[12] >> 4) * 4);
	tcp = out->data + hlen;
	memset(tcp, 0, TCP_HLEN);
	put_be16(tcp, get_be16(seg + 2));
	put_be16(tcp + 2, get_be16(seg));
	/*
	 * RFC 793, "Reset Generation": take the sequence number from the
	 * segment's ACK if it has one; otherwise send sequence 0 and
	 * acknowledge everything the segment occupied, SYN and FIN included,
	 * so that the peer accepts the reset in any state.
	 */
	if (seg[13] & TCP_ACK) {
		seq = get_be32(seg + 8);
		ack = 0;
		tcp[13] = TCP_RST;
	} else {
		seq = 0;
		ack = get_be32(seg + 4) + paylen + !!(seg[13] & TCP_SYN) + !!(seg[13] & TCP_FIN);
		tcp[13] = TCP_RST | TCP_ACK;
	}
	put_be32(tcp + 4, seq);
	put_be32(tcp + 8, ack);
	tcp[12] = (TCP_HLEN / 4) << 4;
	put_iphdr(req, out, IPPROTO_TCP, 0, TCP_HLEN);
	return forge_finish(out);
}

/*
 * ICMPv6 has no "protocol unreachable" in type 1; RFC 4443 3.4 says an
 * unrecognized next header is a parameter problem (type 4 code 1) pointing
 * at the next header field that named it, which is what Linux sends.
 */
static int unreach_type_code(int family, enum forge_unreach kind, uint8_t *type, uint8_t *code)
{
	static const uint8_t v4[] = {
		[FORGE_UNREACH_NET] = 0,
		[FORGE_UNREACH_HOST] = 1,
		[FORGE_UNREACH_PROTO] = 2,
		[FORGE_UNREACH_PORT] = 3,
		[FORGE_UNREACH_ADMIN] = 13,
	};
	static const uint8_t v6[] = {
		[FORGE_UNREACH_NET] = 0,	/* no route to destination */
		[FORGE_UNREACH_HOST] = 3,	/* address unreachable */
		[FORGE_UNREACH_PORT] = 4,
		[FORGE_UNREACH_ADMIN] = 1,	/* administratively prohibited */
	};

	if ((unsigned int)kind >= ARRAY_SIZE(v4))
		return -EINVAL;
	if (family == AF_INET) {
		*type = 3;
		*code = v4[kind];
	} else if (kind == FORGE_UNREACH_PROTO) {
		*type = 4;
		*code = 1;
	} else {
		*type = 1;
		*code = v6[kind];
	}
	return 0;
}

int forge_unreachable(const struct pkt *req, enum forge_unreach kind, struct pkt *out)
{
	size_t hlen, quote, max;
	uint8_t type, code;
	uint8_t *icmp;
	int r;

	r = forge_check(req);
	if (r < 0)
		return r;
	r = unreach_type_code(req->family, kind, &type, &code);
	if (r < 0)
		return r;
	/* RFC 1122 3.2.2, RFC 4443 2.4(e): never an error about an error. */
	if (pkt_is_icmp_error(req))
		return -EPERM;

	hlen = ip_hlen(req->family);
	max = req->family == AF_INET ? ICMP_ERR_MAX : ICMP6_ERR_MAX;
	quote = req->len;
	if (quote > max - hlen - ICMP_HLEN)
		quote = max - hlen - ICMP_HLEN;
	if (!out->data || out->cap < hlen + ICMP_HLEN + quote)
		return -ENOSPC;

	icmp = out->data + hlen;
	memset(icmp, 0, ICMP_HLEN);
	icmp[0] = type;
	icmp[1] = code;
	if (type == 4)
		put_be32(icmp + 4, (uint32_t)pkt_ip6_nexthdr_offset(req));
	memcpy(icmp + ICMP_HLEN, req->data, quote);
	put_iphdr(req, out, req->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6,
		  req->family == AF_INET ? TOS_INTERNETCONTROL : 0, ICMP_HLEN + quote);
	return forge_finish(out);
}
