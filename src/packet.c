/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Header parsing and checksum arithmetic.  Pure functions: no I/O, no
 * allocation, and no read or write outside data[0..len).
 *
 * Every 16-bit value handed to or returned by the csum_* functions is in
 * host order, as read big-endian from the packet (get_be16() below).  Because a
 * ones' complement sum commutes with byte swapping, the incremental updates
 * also work on network-order values, as long as check, old and new all use
 * the same order.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "packet.h"
#include "util.h"

#define IP6_HLEN 40
#define IP6_MAX_EXTHDRS 8
#define IP6_OPT_PAD1 0
#define IP6_OPT_JUMBO 0xc2

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOLEN_MSS 4

#define IPOPT_EOL 0
#define IPOPT_NOP 1

/* ---- checksum arithmetic ------------------------------------------------- */

uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *b = buf;
	uint64_t acc = sum;

	/* A 64-bit accumulator cannot overflow for any length we can be given. */
	while (len >= 2) {
		acc += (uint32_t)(b[0] << 8 | b[1]);
		b += 2;
		len -= 2;
	}
	/* RFC 1071: an odd trailing byte is padded with a zero low byte. */
	if (len)
		acc += (uint32_t)b[0] << 8;
	while (acc >> 32)
		acc = (acc & 0xffffffff) + (acc >> 32);
	return (uint32_t)acc;
}

static uint16_t csum_fold16(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint16_t csum_fold(uint32_t sum)
{
	return (uint16_t)~csum_fold16(sum);
}

/*
 * RFC 1624 eqn 3, HC' = ~(~HC + ~m + m'), for a change whose words sum (ones'
 * complement) to old_sum before and new_sum after.
 *
 * The folded sum of ~HC + ~m + m' is +0 only when all three are zero (an HC
 * of 0xffff, a word going from 0xffff to 0); every other combination folds
 * into 1..0xffff.  A full recompute over data that is not all zeros also
 * yields a sum in 1..0xffff, so the checksum it produces is never 0xffff.
 * Mapping the +0 case to -0 (0xffff) makes this function return exactly
 * what a full recompute would, which is what the tests compare against.
 */
static uint16_t csum_replace_sum(uint16_t check, uint32_t old_sum, uint32_t new_sum)
{
	uint32_t sum = (uint16_t)~check;
	uint16_t s;

	sum += (uint16_t)~csum_fold16(old_sum);
	sum += csum_fold16(new_sum);
	s = csum_fold16(sum);
	if (s == 0)
		s = 0xffff;
	return (uint16_t)~s;
}

uint16_t csum_replace2(uint16_t check, uint16_t old, uint16_t new)
{
	return csum_replace_sum(check, old, new);
}

uint16_t csum_replace4(uint16_t check, uint32_t old, uint32_t new)
{
	return csum_replace_sum(check, (old >> 16) + (old & 0xffff), (new >> 16) + (new & 0xffff));
}

/*
 * A UDP checksum of 0 means "none" on IPv4 (RFC 768): an update must not
 * invent one.  And a checksum that computes to 0 is sent as 0xffff, the
 * other ones' complement zero, so that it is not mistaken for "none".  IPv6
 * makes the UDP checksum mandatory (RFC 8200 8.1), so a 0 there is simply
 * wrong and is updated like any other value.
 */
static uint16_t udp_csum_fixup(uint16_t check)
{
	return check ? check : 0xffff;
}

uint16_t csum_udp_replace2(uint16_t check, uint16_t old, uint16_t new, int family)
{
	if (check == 0 && family == AF_INET)
		return 0;
	return udp_csum_fixup(csum_replace2(check, old, new));
}

uint16_t csum_udp_replace4(uint16_t check, uint32_t old, uint32_t new, int family)
{
	if (check == 0 && family == AF_INET)
		return 0;
	return udp_csum_fixup(csum_replace4(check, old, new));
}

/* Offset of the L4 checksum field covering a change, or 0 when there is none. */
static size_t l4_csum_offset(const struct pkt *p, bool pseudo)
{
	if (!p->l4_complete)
		return 0;
	switch (p->l4proto) {
	case IPPROTO_TCP:
		return p->l4off + 16u;
	case IPPROTO_UDP:
		return p->l4off + 6u;
	case IPPROTO_ICMPV6:
		return p->family == AF_INET6 ? p->l4off + 2u : 0;
	case IPPROTO_ICMP:
		/* ICMPv4 has no pseudo-header. */
		return p->family == AF_INET && !pseudo ? p->l4off + 2u : 0;
	}
	return 0;
}

static void l4_csum_replace(struct pkt *p, uint32_t old_sum, uint32_t new_sum, bool pseudo)
{
	size_t off = l4_csum_offset(p, pseudo);
	uint16_t check;

	if (!off)
		return;
	check = get_be16(p->data + off);
	/*
	 * A partial sum is the pseudo-header's, not complemented: it moves
	 * with the pseudo-header, and the rest is summed by the kernel.  RFC
	 * 1624 on the complement of the field does the uncomplemented update.
	 */
	if (p->needs_csum && (p->l4proto == IPPROTO_TCP || p->l4proto == IPPROTO_UDP)) {
		if (pseudo)
			put_be16(p->data + off, (uint16_t)~csum_replace_sum((uint16_t)~check,
									 old_sum, new_sum));
		return;
	}
	if (p->l4proto == IPPROTO_UDP) {
		if (check == 0 && p->family == AF_INET)
			return;
		put_be16(p->data + off, udp_csum_fixup(csum_replace_sum(check, old_sum, new_sum)));
	} else {
		put_be16(p->data + off, csum_replace_sum(check, old_sum, new_sum));
	}
}

void pkt_l4_csum_replace2(struct pkt *p, uint16_t old, uint16_t new, bool pseudo)
{
	l4_csum_replace(p, old, new, pseudo);
}

void pkt_l4_csum_replace4(struct pkt *p, uint32_t old, uint32_t new, bool pseudo)
{
	l4_csum_replace(p, (old >> 16) + (old & 0xffff), (new >> 16) + (new & 0xffff), pseudo);
}

/* ---- parsing -------------------------------------------------------------- */

const char *pkt_class_name(int cls)
{
	static const char *const names[PKT_CLASS_MAX] = {
		[PKT_OK] = "ok",
		[PKT_TRUNCATED] = "truncated",
		[PKT_BAD_VERSION] = "bad-version",
		[PKT_BAD_HDRLEN] = "bad-hdrlen",
		[PKT_BAD_LENGTH] = "bad-length",
		[PKT_BAD_OPTIONS] = "bad-options",
		[PKT_BAD_EXTHDR] = "bad-exthdr",
		[PKT_BAD_L4] = "bad-l4",
		[PKT_BAD_VNET] = "bad-vnet",
	};

	if (cls < 0 || cls >= PKT_CLASS_MAX)
		return "unknown";
	return names[cls];
}

/*
 * The L4 header at l4off.  In an unfragmented datagram the IP length equals
 * the buffer (checked before), so an L4 header that does not fit is a
 * malformed datagram, not a short read: PKT_BAD_L4.  A first fragment may
 * legitimately end inside the L4 header; it is then OK with l4_complete
 * false.  Values that are wrong whatever follows (a TCP data offset below 5,
 * a UDP length below 8) are PKT_BAD_L4 in either case.
 */
static int parse_l4(struct pkt *p)
{
	const uint8_t *l4 = p->data + p->l4off;
	size_t avail = p->len - p->l4off;
	size_t need;

	switch (p->l4proto) {
	case IPPROTO_TCP:
		if (avail >= 13 && l4[12] >> 4 < 5)
			return PKT_BAD_L4;
		need = avail >= 13 ? (size_t)(l4[12] >> 4) * 4 : 20;
		if (avail < need)
			break;
		p->sport = get_be16(l4);
		p->dport = get_be16(l4 + 2);
		p->tcp_flags = l4[13];
		p->l4_complete = true;
		return PKT_OK;
	case IPPROTO_UDP:
		if (avail < 8)
			break;
		/* Like Linux, accept a UDP length shorter than the IP payload. */
		if (get_be16(l4 + 4) < 8 || (!p->fragment && get_be16(l4 + 4) > avail))
			return PKT_BAD_L4;
		p->sport = get_be16(l4);
		p->dport = get_be16(l4 + 2);
		p->l4_complete = true;
		return PKT_OK;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((p->l4proto == IPPROTO_ICMP) != (p->family == AF_INET))
			return PKT_OK;	/* ICMP in IPv6 or ICMPv6 in IPv4: unknown L4 */
		if (avail < 4)
			break;
		need = pkt_icmp_is_echo(p->family, l4[0]) ? 8 : 4;
		if (avail < need)
			break;
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		p->l4_complete = true;
		return PKT_OK;
	default:
		return PKT_OK;
	}
	return p->fragment ? PKT_OK : PKT_BAD_L4;
}

/* Option TLVs of an IPv4 header: each one must lie inside the header. */
static bool ip4_options_ok(const uint8_t *opt, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (opt[i] == IPOPT_EOL)
			return true;
		if (opt[i] == IPOPT_NOP) {
			i++;
			continue;
		}
		if (len - i < 2 || opt[i + 1] < 2 || opt[i + 1] > len - i)
			return false;
		i += opt[i + 1];
	}
	return true;
}

static int parse_ip4(struct pkt *p)
{
	const uint8_t *d = p->data;
	size_t hlen, tot;
	uint16_t frag;

	p->family = AF_INET;
	if (p->len < 20)
		return PKT_TRUNCATED;
	hlen = (size_t)(d[0] & 0x0f) * 4;
	if (hlen < 20 || hlen > p->len)
		return PKT_BAD_HDRLEN;
	tot = get_be16(d + 2);
	if (tot < hlen)
		return PKT_BAD_LENGTH;
	/*
	 * The tun hands over exactly one packet per read, so the buffer is the
	 * packet: a shorter buffer is a cut packet, a longer one a lie.
	 */
	if (tot > p->len)
		return PKT_TRUNCATED;
	if (tot < p->len)
		return PKT_BAD_LENGTH;
	if (!ip4_options_ok(d + 20, hlen - 20))
		return PKT_BAD_OPTIONS;

	frag = get_be16(d + 6);
	p->fragment = (frag & 0x3fff) != 0;	/* MF or an offset */
	p->first_fragment = (frag & 0x1fff) == 0;
	p->l4proto = d[9];
	p->l4off = (uint16_t)hlen;
	return p->first_fragment ? parse_l4(p) : PKT_OK;
}

/* What a walk of the IPv6 extension header chain found. */
struct ip6_chain {
	uint8_t nexthdr;	/* the protocol after the last extension header */
	size_t nexthdr_off;	/* offset of the byte that holds it */
	size_t l4off;
	bool fragment;
	bool first_fragment;
	bool frag_hdr;		/* a Fragment header, an atomic one too */
	bool routed;		/* a routing header with segments left */
};

/* Hop-by-hop or destination options: TLVs inside the header, no jumbogram. */
static int ip6_options_check(const uint8_t *opt, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (opt[i] == IP6_OPT_PAD1) {
			i++;
			continue;
		}
		if (len - i < 2 || opt[i + 1] > len - i - 2)
			return PKT_BAD_EXTHDR;
		/*
		 * RFC 2675 jumbograms carry their length here with a payload
		 * length of 0.  PKT_MAX excludes them; refuse the option
		 * wherever it appears rather than guess a length.
		 */
		if (opt[i] == IP6_OPT_JUMBO)
			return PKT_BAD_LENGTH;
		i += 2u + opt[i + 1];
	}
	return PKT_OK;
}

/*
 * Walk at most IP6_MAX_EXTHDRS extension headers.  Every offset strictly
 * grows, so the chain cannot loop; the bound caps the work a packet can ask
 * for.  A non-first fragment ends the walk at its fragment header: what
 * follows is the middle of someone else's payload.
 */
static int ip6_walk(const uint8_t *d, size_t len, struct ip6_chain *c)
{
	size_t off = IP6_HLEN, hlen;
	uint8_t nh = d[6];
	int n, r;

	*c = (struct ip6_chain){
		.nexthdr_off = 6,
		.first_fragment = true,
	};
	for (n = 0;; n++) {
		switch (nh) {
		case IPPROTO_HOPOPTS:
			/* RFC 8200 4.1: only right after the IPv6 header. */
			if (n != 0)
				return PKT_BAD_EXTHDR;
			break;
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_AH:
			break;
		case IPPROTO_FRAGMENT:
			if (c->frag_hdr)
				return PKT_BAD_EXTHDR;
			c->frag_hdr = true;
			break;
		default:
			c->nexthdr = nh;
			c->l4off = off;
			return PKT_OK;
		}
		if (n == IP6_MAX_EXTHDRS || len - off < 8)
			return PKT_BAD_EXTHDR;
		if (nh == IPPROTO_AH)
			hlen = ((size_t)d[off + 1] + 2) * 4;
		else if (nh == IPPROTO_FRAGMENT)
			hlen = 8;
		else
			hlen = ((size_t)d[off + 1] + 1) * 8;
		if (hlen > len - off)
			return PKT_BAD_EXTHDR;

		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_DSTOPTS:
			r = ip6_options_check(d + off + 2, hlen - 2);
			if (r != PKT_OK)
				return r;
			break;
		case IPPROTO_ROUTING:
			if (d[off + 3] != 0)
				c->routed = true;
			break;
		case IPPROTO_FRAGMENT: {
			uint16_t fo = get_be16(d + off + 2);

			/* RFC 6946: offset 0 without M is an atomic fragment, i.e. none. */
			c->fragment = (fo & 0xfff9) != 0;
			c->first_fragment = (fo & 0xfff8) == 0;
			if (!c->first_fragment) {
				c->nexthdr = d[off];
				c->nexthdr_off = off;
				c->l4off = off + hlen;
				return PKT_OK;
			}
			break;
		}
		}
		c->nexthdr_off = off;
		nh = d[off];
		off += hlen;
	}
}

static int parse_ip6(struct pkt *p)
{
	const uint8_t *d = p->data;
	struct ip6_chain c;
	size_t plen;
	int r;

	p->family = AF_INET6;
	if (p->len < IP6_HLEN)
		return PKT_TRUNCATED;
	plen = get_be16(d + 4);
	if (IP6_HLEN + plen > p->len)
		return PKT_TRUNCATED;
	/* This includes a payload length of 0 with a jumbogram behind it. */
	if (IP6_HLEN + plen < p->len)
		return PKT_BAD_LENGTH;

	r = ip6_walk(d, p->len, &c);
	if (r != PKT_OK)
		return r;
	p->fragment = c.fragment;
	p->frag_hdr = c.frag_hdr;
	p->first_fragment = c.first_fragment;
	p->l4proto = c.nexthdr;
	p->l4off = (uint16_t)c.l4off;
	return p->first_fragment ? parse_l4(p) : PKT_OK;
}

int pkt_parse(struct pkt *p)
{
	p->family = 0;
	p->l4proto = 0;
	p->l4off = 0;
	p->fragment = false;
	p->frag_hdr = false;
	p->first_fragment = false;
	p->l4_complete = false;
	p->sport = p->dport = 0;
	p->icmp_type = p->icmp_code = 0;
	p->tcp_flags = 0;
	p->needs_csum = false;
	p->segs = 1;
	p->seg_hlen = 0;

	if (p->len < 1)
		return PKT_TRUNCATED;
	/* Keeps every offset and pkt_ip_len() within 16 bits. */
	if (p->len > PKT_MAX)
		return PKT_BAD_LENGTH;
	switch (p->data[0] >> 4) {
	case 4:
		return parse_ip4(p);
	case 6:
		return parse_ip6(p);
	}
	return PKT_BAD_VERSION;
}

bool pkt_icmp_is_echo(int family, uint8_t type)
{
	if (family == AF_INET)
		return type == 0 || type == 8;
	return type == 128 || type == 129;
}

bool pkt_is_icmp_error(const struct pkt *p)
{
	/* An ICMP message whose type we cannot see counts as an error. */
	if (p->family == AF_INET && p->l4proto == IPPROTO_ICMP) {
		if (!p->l4_complete)
			return true;
		/* As Linux's icmp_send(): known errors, and types it does not know. */
		switch (p->icmp_type) {
		case 3:		/* destination unreachable */
		case 4:		/* source quench */
		case 5:		/* redirect */
		case 11:	/* time exceeded */
		case 12:	/* parameter problem */
			return true;
		}
		return p->icmp_type > 18;
	}
	if (p->family == AF_INET6 && p->l4proto == IPPROTO_ICMPV6) {
		if (!p->l4_complete)
			return true;
		/* RFC 4443 2.1: types 0-127 are errors; Linux adds redirects. */
		return p->icmp_type < 128 || p->icmp_type == 137;
	}
	return false;
}

/* ---- field access --------------------------------------------------------- */

const uint8_t *pkt_saddr(const struct pkt *p)
{
	return p->data + (p->family == AF_INET ? 12 : 8);
}

const uint8_t *pkt_daddr(const struct pkt *p)
{
	return p->data + (p->family == AF_INET ? 16 : 24);
}

uint8_t pkt_ttl(const struct pkt *p)
{
	return p->data[p->family == AF_INET ? 8 : 7];
}

/* The IPv4 TOS byte or the IPv6 traffic class (bits 4-11). */
static uint8_t pkt_tclass(const struct pkt *p)
{
	if (p->family == AF_INET)
		return p->data[1];
	return (uint8_t)((p->data[0] & 0x0f) << 4 | p->data[1] >> 4);
}

uint8_t pkt_dscp(const struct pkt *p)
{
	return pkt_tclass(p) >> 2;
}

uint8_t pkt_ecn(const struct pkt *p)
{
	return pkt_tclass(p) & 0x03;
}

uint16_t pkt_ip_len(const struct pkt *p)
{
	if (p->family == AF_INET)
		return get_be16(p->data + 2);
	/* pkt_parse() bounds the whole packet by PKT_MAX. */
	return (uint16_t)(IP6_HLEN + get_be16(p->data + 4));
}

/* ---- rewrites ------------------------------------------------------------- */

/*
 * Store a new 16-bit word of the IPv4 header and fix the header checksum.
 * TTL, TOS and the like are in no pseudo-header, so L4 checksums stay.
 */
static void ip4_put16(struct pkt *p, size_t off, uint16_t v)
{
	uint16_t old = get_be16(p->data + off);

	put_be16(p->data + off, v);
	put_be16(p->data + 10, csum_replace2(get_be16(p->data + 10), old, v));
}

void pkt_set_ttl(struct pkt *p, uint8_t ttl)
{
	if (p->family == AF_INET)
		ip4_put16(p, 8, (uint16_t)(ttl << 8 | p->data[9]));
	else
		p->data[7] = ttl;
}

static void pkt_set_tclass(struct pkt *p, uint8_t tc)
{
	if (p->family == AF_INET) {
		ip4_put16(p, 0, (uint16_t)(p->data[0] << 8 | tc));
	} else {
		p->data[0] = (uint8_t)((p->data[0] & 0xf0) | tc >> 4);
		p->data[1] = (uint8_t)((p->data[1] & 0x0f) | (tc & 0x0f) << 4);
	}
}

void pkt_set_dscp(struct pkt *p, uint8_t dscp)
{
	pkt_set_tclass(p, (uint8_t)((dscp & 0x3f) << 2 | pkt_ecn(p)));
}

void pkt_set_ecn(struct pkt *p, uint8_t ecn)
{
	pkt_set_tclass(p, (uint8_t)((pkt_tclass(p) & 0xfc) | (ecn & 0x03)));
}

void pkt_forward_compensate(struct pkt *p)
{
	uint8_t ttl = pkt_ttl(p);

	/* 255 cannot go higher: such a packet arrives with 254. */
	if (ttl < 255)
		pkt_set_ttl(p, (uint8_t)(ttl + 1));
}

bool pkt_clamp_mss(struct pkt *p, uint16_t mss)
{
	uint8_t *tcp = p->data + p->l4off;
	size_t off, end;
	bool changed = false;

	if (p->l4proto != IPPROTO_TCP || !p->l4_complete || !(tcp[13] & TCP_SYN))
		return false;
	end = (size_t)(tcp[12] >> 4) * 4;
	if (end > p->len - p->l4off)
		return false;
	for (off = 20; off < end;) {
		uint8_t kind = tcp[off], olen;
		uint16_t old;

		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			off++;
			continue;
		}
		if (end - off < 2)
			break;
		olen = tcp[off + 1];
		if (olen < 2 || olen > end - off)
			break;
		if (kind == TCPOPT_MSS && olen == TCPOLEN_MSS && get_be16(tcp + off + 2) > mss) {
			old = get_be16(tcp + off + 2);
			put_be16(tcp + off + 2, mss);
			changed = true;
			/* The kernel sums the options into a partial checksum later. */
			if (p->needs_csum) {
				off += olen;
				continue;
			}
			/*
			 * The checksum sums 16-bit words aligned to the TCP header.
			 * After a NOP the MSS value straddles two of them, high byte
			 * low in one word, low byte high in the next: it then adds
			 * to the sum byte-swapped.
			 */
			if ((off + 2) & 1)
				put_be16(tcp + 16, csum_replace2(get_be16(tcp + 16),
							      __builtin_bswap16(old),
							      __builtin_bswap16(mss)));
			else
				put_be16(tcp + 16, csum_replace2(get_be16(tcp + 16), old, mss));
		}
		off += olen;
	}
	return changed;
}

/* ---- full recompute ------------------------------------------------------- */

static uint32_t pseudo_sum(const struct pkt *p, uint8_t proto, size_t len)
{
	size_t alen = p->family == AF_INET ? 4 : 16;
	uint32_t sum;

	sum = csum_partial(pkt_saddr(p), alen, 0);
	sum = csum_partial(pkt_daddr(p), alen, sum);
	return sum + proto + (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff);
}

static void l4_csum_full(struct pkt *p, size_t csum_off, size_t len, uint32_t sum)
{
	uint8_t *l4 = p->data + p->l4off;

	put_be16(l4 + csum_off, 0);
	put_be16(l4 + csum_off, csum_fold(csum_partial(l4, len, sum)));
}

void pkt_csum_full(struct pkt *p)
{
	uint8_t *l4 = p->data + p->l4off;
	size_t l4len = p->len - p->l4off;

	if (p->family == AF_INET) {
		size_t hlen = (size_t)(p->data[0] & 0x0f) * 4;

		put_be16(p->data + 10, 0);
		put_be16(p->data + 10, csum_fold(csum_partial(p->data, hlen, 0)));
	} else if (p->family == AF_INET6) {
		struct ip6_chain c;

		/*
		 * With segments left in a routing header the pseudo-header
		 * holds the final destination, not the one in the IPv6
		 * header.  We never change those packets' L4 data; leave their
		 * checksums as the sender computed them.
		 */
		if (ip6_walk(p->data, p->len, &c) != PKT_OK || c.routed)
			return;
	} else {
		return;
	}

	/* A fragment's L4 checksum covers data we do not have. */
	if (p->fragment || !p->l4_complete)
		return;

	switch (p->l4proto) {
	case IPPROTO_TCP:
		l4_csum_full(p, 16, l4len, pseudo_sum(p, IPPROTO_TCP, l4len));
		p->needs_csum = false;
		break;
	case IPPROTO_UDP: {
		size_t ulen = get_be16(l4 + 4);

		/* A partial sum of 0 is a checksum to complete, not "none". */
		if (p->family == AF_INET && get_be16(l4 + 6) == 0 && !p->needs_csum)
			break;
		p->needs_csum = false;
		l4_csum_full(p, 6, ulen, pseudo_sum(p, IPPROTO_UDP, ulen));
		put_be16(l4 + 6, udp_csum_fixup(get_be16(l4 + 6)));
		break;
	}
	case IPPROTO_ICMP:
		if (p->family == AF_INET)
			l4_csum_full(p, 2, l4len, 0);
		break;
	case IPPROTO_ICMPV6:
		if (p->family == AF_INET6)
			l4_csum_full(p, 2, l4len, pseudo_sum(p, IPPROTO_ICMPV6, l4len));
		break;
	}
}

void pkt_csum_complete(struct pkt *p)
{
	size_t off = l4_csum_offset(p, false);
	uint16_t check;

	if (!p->needs_csum || !off)
		return;
	/* The field holds the pseudo-header sum: summing it with the rest completes it. */
	check = csum_fold(csum_partial(p->data + p->l4off, p->len - p->l4off, 0));
	if (p->l4proto == IPPROTO_UDP)
		check = udp_csum_fixup(check);
	put_be16(p->data + off, check);
	p->needs_csum = false;
}

size_t pkt_ip6_nexthdr_offset(const struct pkt *p)
{
	struct ip6_chain c;

	if (p->family != AF_INET6 || ip6_walk(p->data, p->len, &c) != PKT_OK)
		return 0;
	return c.nexthdr_off;
}
