/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pkt_parse(): the fields of valid packets, the class of every prefix of
 * them, and each way a header can be malformed; the field accessors and
 * setters.  Checksums are test-csum's business.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include "packet.h"
#include "pktbuild.h"
#include "tap.h"
#include "util.h"

static uint8_t buf[PKT_MAX + 64];

/* IPv4 header with optlen bytes of options (a multiple of 4); returns its length. */
static size_t ip4(uint8_t *d, uint8_t proto, const uint8_t *opt, size_t optlen, size_t l4len)
{
	return ip4_header(d, 0x1234, 17, proto, opt, optlen, l4len);
}

static void ip6(uint8_t *d, uint8_t nh, size_t plen)
{
	memset(d, 0, 40);
	d[0] = 0x6b;		/* traffic class 0xb9: DSCP 46, ECN 1 */
	d[1] = 0x9a;		/* flow label 0xa5678 */
	d[2] = 0x56;
	d[3] = 0x78;
	put16(d + 4, (uint16_t)plen);
	d[6] = nh;
	d[7] = 33;
	memcpy(d + 8, src6, 16);
	memcpy(d + 24, dst6, 16);
}

/* TCP header; opt is optlen bytes, a multiple of 4. */
static size_t tcp(uint8_t *d, uint8_t flags, const uint8_t *opt, size_t optlen, size_t paylen)
{
	size_t hl = 20 + optlen, i;

	memset(d, 0, hl);
	put16(d, 40000);
	put16(d + 2, 443);
	d[4] = 0x11;
	d[11] = 0x22;
	d[12] = (uint8_t)(hl / 4 << 4);
	d[13] = flags;
	put16(d + 14, 64240);
	if (optlen)
		memcpy(d + 20, opt, optlen);
	for (i = 0; i < paylen; i++)
		d[hl + i] = (uint8_t)(i * 7);
	return hl + paylen;
}

static size_t udp(uint8_t *d, size_t paylen)
{
	size_t i;

	put16(d, 5353);
	put16(d + 2, 53);
	put16(d + 4, (uint16_t)(8 + paylen));
	put16(d + 6, 0x4242);
	for (i = 0; i < paylen; i++)
		d[8 + i] = (uint8_t)i;
	return 8 + paylen;
}

static size_t icmp(uint8_t *d, uint8_t type, uint8_t code, size_t paylen)
{
	size_t i;

	memset(d, 0, 8);
	d[0] = type;
	d[1] = code;
	put16(d + 4, 0xbeef);
	put16(d + 6, 3);
	for (i = 0; i < paylen; i++)
		d[8 + i] = (uint8_t)('a' + i % 26);
	return 8 + paylen;
}

/* A generic extension header of (len8 + 1) * 8 bytes full of PadN. */
static size_t ext(uint8_t *d, uint8_t nh, uint8_t len8)
{
	size_t hl = ((size_t)len8 + 1) * 8;

	memset(d, 0, hl);
	d[0] = nh;
	d[1] = len8;
	d[2] = 1;		/* PadN covering the rest */
	d[3] = (uint8_t)(hl - 4);
	return hl;
}

static size_t frag6(uint8_t *d, uint8_t nh, uint16_t offset, bool more)
{
	memset(d, 0, 8);
	d[0] = nh;
	put16(d + 2, (uint16_t)(offset << 3 | more));
	d[4] = 0xca;
	d[7] = 0xfe;
	return 8;
}

static const uint8_t syn_opts[20] = {
	2, 4, 0x05, 0xb4,	/* MSS 1460 */
	4, 2,			/* SACK permitted */
	8, 10, 1, 2, 3, 4, 0, 0, 0, 0,	/* timestamps */
	1, 3, 3, 7,		/* NOP, window scale 7 */
};

static const uint8_t ip4_opts[8] = {
	1,			/* NOP */
	7, 7, 4, 0, 0, 0, 0,	/* record route, one slot */
};

/* What pkt_parse() must say about one of the sample packets. */
struct sample {
	const char *name;
	int family;
	uint8_t l4proto;
	size_t l4off;
	size_t l4hdr;		/* bytes of L4 header needed for l4_complete */
	bool fragment, first, complete;
	uint16_t sport, dport;
	uint8_t flags, type, code;
	size_t len;
};

enum {
	S_V4_ECHO, S_V4_TCP_OPTS, S_V4_UDP, S_V4_GRE, S_V4_ERROR, S_V4_FRAG_FIRST,
	S_V4_FRAG_MIDDLE, S_V4_FRAG_LAST, S_V4_ICMP6,
	S_V6_ECHO, S_V6_TCP, S_V6_UDP, S_V6_CHAIN, S_V6_FRAG_FIRST, S_V6_FRAG_LATER,
	S_V6_ATOMIC, S_V6_NONXT, S_V6_ICMP4, S_V6_AH,
	S_COUNT,
};

/* Build sample i into buf; fills in *s. */
static void build(int i, struct sample *s)
{
	size_t hl, n;
	uint8_t *d = buf;

	memset(s, 0, sizeof(*s));
	s->first = true;
	s->complete = true;
	switch (i) {
	case S_V4_ECHO:
		*s = (struct sample){ "v4 icmp echo", AF_INET, IPPROTO_ICMP, 20, 8, false, true, true,
				      0, 0, 0, 8, 0, 0 };
		n = icmp(d + 20, 8, 0, 56);
		s->len = ip4(d, IPPROTO_ICMP, NULL, 0, n) + n;
		break;
	case S_V4_TCP_OPTS:
		*s = (struct sample){ "v4 options + tcp syn", AF_INET, IPPROTO_TCP, 28, 40, false,
				      true, true, 40000, 443, 0x02, 0, 0, 0 };
		n = tcp(d + 28, 0x02, syn_opts, sizeof(syn_opts), 0);
		s->len = ip4(d, IPPROTO_TCP, ip4_opts, sizeof(ip4_opts), n) + n;
		break;
	case S_V4_UDP:
		*s = (struct sample){ "v4 udp", AF_INET, IPPROTO_UDP, 20, 8, false, true, true,
				      5353, 53, 0, 0, 0, 0 };
		n = udp(d + 20, 33);
		s->len = ip4(d, IPPROTO_UDP, NULL, 0, n) + n;
		break;
	case S_V4_GRE:
		*s = (struct sample){ "v4 gre (unknown l4)", AF_INET, IPPROTO_GRE, 20, 0, false,
				      true, false, 0, 0, 0, 0, 0, 0 };
		memset(d + 20, 0x5a, 12);
		s->len = ip4(d, IPPROTO_GRE, NULL, 0, 12) + 12;
		break;
	case S_V4_ERROR:
		*s = (struct sample){ "v4 icmp port unreachable", AF_INET, IPPROTO_ICMP, 20, 4, false,
				      true, true, 0, 0, 0, 3, 3, 0 };
		n = icmp(d + 20, 3, 3, 28);
		s->len = ip4(d, IPPROTO_ICMP, NULL, 0, n) + n;
		break;
	case S_V4_FRAG_FIRST:
		*s = (struct sample){ "v4 first fragment", AF_INET, IPPROTO_UDP, 20, 8, true, true,
				      true, 5353, 53, 0, 0, 0, 0 };
		n = udp(d + 20, 1472);
		hl = ip4(d, IPPROTO_UDP, NULL, 0, 1480);
		put16(d + 6, 0x2000);	/* MF */
		s->len = hl + 1480;
		(void)n;
		break;
	case S_V4_FRAG_MIDDLE:
		*s = (struct sample){ "v4 middle fragment", AF_INET, IPPROTO_UDP, 20, 0, true, false,
				      false, 0, 0, 0, 0, 0, 0 };
		memset(d + 20, 0xee, 1480);
		hl = ip4(d, IPPROTO_UDP, NULL, 0, 1480);
		put16(d + 6, 0x2000 | 185);
		s->len = hl + 1480;
		break;
	case S_V4_FRAG_LAST:
		*s = (struct sample){ "v4 last fragment", AF_INET, IPPROTO_TCP, 20, 0, true, false,
				      false, 0, 0, 0, 0, 0, 0 };
		/* Looks like a TCP header with data offset 0: must not be parsed. */
		memset(d + 20, 0, 100);
		hl = ip4(d, IPPROTO_TCP, NULL, 0, 100);
		put16(d + 6, 370);
		s->len = hl + 100;
		break;
	case S_V4_ICMP6:
		*s = (struct sample){ "v4 carrying icmpv6", AF_INET, IPPROTO_ICMPV6, 20, 0, false,
				      true, false, 0, 0, 0, 0, 0, 0 };
		n = icmp(d + 20, 128, 0, 0);
		s->len = ip4(d, IPPROTO_ICMPV6, NULL, 0, n) + n;
		break;
	case S_V6_ECHO:
		*s = (struct sample){ "v6 icmpv6 echo", AF_INET6, IPPROTO_ICMPV6, 40, 8, false, true,
				      true, 0, 0, 0, 128, 0, 0 };
		n = icmp(d + 40, 128, 0, 56);
		ip6(d, IPPROTO_ICMPV6, n);
		s->len = 40 + n;
		break;
	case S_V6_TCP:
		*s = (struct sample){ "v6 tcp syn", AF_INET6, IPPROTO_TCP, 40, 40, false, true, true,
				      40000, 443, 0x02, 0, 0, 0 };
		n = tcp(d + 40, 0x02, syn_opts, sizeof(syn_opts), 0);
		ip6(d, IPPROTO_TCP, n);
		s->len = 40 + n;
		break;
	case S_V6_UDP:
		*s = (struct sample){ "v6 udp", AF_INET6, IPPROTO_UDP, 40, 8, false, true, true,
				      5353, 53, 0, 0, 0, 0 };
		n = udp(d + 40, 100);
		ip6(d, IPPROTO_UDP, n);
		s->len = 40 + n;
		break;
	case S_V6_CHAIN:
		/* hop-by-hop, destination options, routing, atomic fragment, then TCP. */
		*s = (struct sample){ "v6 ext chain + tcp", AF_INET6, IPPROTO_TCP, 40 + 8 + 16 + 24 + 8,
				      20, false, true, true, 40000, 443, 0x18, 0, 0, 0 };
		hl = 40;
		hl += ext(d + hl, IPPROTO_DSTOPTS, 0);
		hl += ext(d + hl, IPPROTO_ROUTING, 1);
		hl += ext(d + hl, IPPROTO_FRAGMENT, 2);
		d[hl - 24 + 2] = 4;	/* SRH type, segments left 0 */
		d[hl - 24 + 3] = 0;
		hl += frag6(d + hl, IPPROTO_TCP, 0, false);
		n = tcp(d + hl, 0x18, NULL, 0, 10);
		ip6(d, IPPROTO_HOPOPTS, hl - 40 + n);
		s->len = hl + n;
		break;
	case S_V6_FRAG_FIRST:
		*s = (struct sample){ "v6 first fragment", AF_INET6, IPPROTO_ICMPV6, 48, 8, true, true,
				      true, 0, 0, 0, 128, 0, 0 };
		frag6(d + 40, IPPROTO_ICMPV6, 0, true);
		icmp(d + 48, 128, 0, 1224);
		ip6(d, IPPROTO_FRAGMENT, 1240);
		s->len = 1280;
		break;
	case S_V6_FRAG_LATER:
		*s = (struct sample){ "v6 later fragment", AF_INET6, IPPROTO_ICMPV6, 56, 0, true,
				      false, false, 0, 0, 0, 0, 0, 0 };
		ext(d + 40, IPPROTO_FRAGMENT, 0);
		frag6(d + 48, IPPROTO_ICMPV6, 154, false);
		/* Bytes that would be an invalid extension header or a short ICMP. */
		memset(d + 56, 0, 3);
		ip6(d, IPPROTO_DSTOPTS, 19);
		s->len = 59;
		break;
	case S_V6_ATOMIC:
		*s = (struct sample){ "v6 atomic fragment", AF_INET6, IPPROTO_UDP, 48, 8, false, true,
				      true, 5353, 53, 0, 0, 0, 0 };
		frag6(d + 40, IPPROTO_UDP, 0, false);
		n = udp(d + 48, 4);
		ip6(d, IPPROTO_FRAGMENT, 8 + n);
		s->len = 48 + n;
		break;
	case S_V6_NONXT:
		*s = (struct sample){ "v6 no next header", AF_INET6, IPPROTO_NONE, 40, 0, false, true,
				      false, 0, 0, 0, 0, 0, 0 };
		ip6(d, IPPROTO_NONE, 0);
		s->len = 40;
		break;
	case S_V6_ICMP4:
		*s = (struct sample){ "v6 carrying icmpv4", AF_INET6, IPPROTO_ICMP, 40, 0, false, true,
				      false, 0, 0, 0, 0, 0, 0 };
		n = icmp(d + 40, 8, 0, 0);
		ip6(d, IPPROTO_ICMP, n);
		s->len = 40 + n;
		break;
	case S_V6_AH:
		/* AH counts its length in 4-byte units minus 2: 24 bytes here. */
		*s = (struct sample){ "v6 ah + udp", AF_INET6, IPPROTO_UDP, 64, 8, false, true, true,
				      5353, 53, 0, 0, 0, 0 };
		memset(d + 40, 0x33, 24);
		d[40] = IPPROTO_UDP;
		d[41] = 4;
		n = udp(d + 64, 0);
		ip6(d, IPPROTO_AH, 24 + n);
		s->len = 64 + n;
		break;
	}
}

static int parse(size_t len, struct pkt *p)
{
	*p = (struct pkt){ .data = buf, .len = len, .cap = sizeof(buf) };
	return pkt_parse(p);
}

static void test_samples(void)
{
	struct sample s;
	struct pkt p;
	int i, r;

	for (i = 0; i < S_COUNT; i++) {
		build(i, &s);
		r = parse(s.len, &p);
		is_str(pkt_class_name(r), "ok", "%s: parses", s.name);
		ok(p.family == s.family && p.l4proto == s.l4proto && p.l4off == s.l4off,
		   "%s: family %d proto %u l4off %u", s.name, p.family, p.l4proto, p.l4off);
		ok(p.fragment == s.fragment && p.first_fragment == s.first &&
			   p.l4_complete == s.complete,
		   "%s: fragment %d first %d complete %d", s.name, p.fragment, p.first_fragment,
		   p.l4_complete);
		ok(p.sport == s.sport && p.dport == s.dport && p.tcp_flags == s.flags &&
			   p.icmp_type == s.type && p.icmp_code == s.code,
		   "%s: ports %u>%u flags %#x icmp %u/%u", s.name, p.sport, p.dport, p.tcp_flags,
		   p.icmp_type, p.icmp_code);
		is_int(pkt_ip_len(&p), s.len, "%s: pkt_ip_len", s.name);
	}
}

/* The class pkt_parse() must give the first len bytes of sample s, unchanged. */
static int prefix_class(const struct sample *s, size_t len)
{
	if (s->family == AF_INET) {
		if (len < 20)
			return PKT_TRUNCATED;
		if (len < (size_t)(buf[0] & 0x0f) * 4)
			return PKT_BAD_HDRLEN;
	}
	return PKT_TRUNCATED;
}

/*
 * The class of the first len bytes with the IP length fixed to match, so
 * that the cut lands in the IPv4 options, the IPv6 extension headers or the
 * L4 header as such.
 */
static int fixed_prefix_class(const struct sample *s, size_t len)
{
	size_t iphl = s->family == AF_INET ? (size_t)(buf[0] & 0x0f) * 4 : 40;

	if (len < (s->family == AF_INET ? 20u : 40u))
		return PKT_TRUNCATED;
	if (len < iphl)
		return PKT_BAD_HDRLEN;
	if (len < s->l4off)
		return PKT_BAD_EXTHDR;
	if (!s->first || !s->l4hdr)
		return PKT_OK;
	if (len < s->l4off + s->l4hdr)
		return s->fragment ? PKT_OK : PKT_BAD_L4;
	/* A cut in UDP data leaves a UDP length longer than the datagram. */
	if (s->l4proto == IPPROTO_UDP && !s->fragment)
		return PKT_BAD_L4;
	return PKT_OK;
}

static void test_truncation(void)
{
	static uint8_t orig[PKT_MAX];
	struct sample s;
	struct pkt p;
	size_t len;
	int i, r, want;

	for (i = 0; i < S_COUNT; i++) {
		int bad = 0, bad_fixed = 0, checked = 0;

		build(i, &s);
		memcpy(orig, buf, s.len);
		for (len = 0; len < s.len; len++) {
			memcpy(buf, orig, s.len);
			want = prefix_class(&s, len);
			r = parse(len, &p);
			if (r != want && bad++ < 3)
				diag("%s: prefix %zu: %s, want %s", s.name, len, pkt_class_name(r),
				     pkt_class_name(want));

			if (len >= (s.family == AF_INET ? 20u : 40u)) {
				if (s.family == AF_INET)
					put16(buf + 2, (uint16_t)len);
				else
					put16(buf + 4, (uint16_t)(len - 40));
			}
			want = fixed_prefix_class(&s, len);
			r = parse(len, &p);
			if (r != want && bad_fixed++ < 3)
				diag("%s: fixed prefix %zu: %s, want %s", s.name, len,
				     pkt_class_name(r), pkt_class_name(want));
			/* A cut first fragment may parse, but never as complete. */
			if (r == PKT_OK && s.fragment && s.first && len < s.l4off + s.l4hdr &&
			    p.l4_complete && bad_fixed++ < 3)
				diag("%s: fixed prefix %zu: l4_complete", s.name, len);
			checked++;
		}
		memcpy(buf, orig, s.len);
		ok(!bad, "%s: %d prefixes classified", s.name, checked);
		ok(!bad_fixed, "%s: %d prefixes with fixed length classified", s.name, checked);
	}
}

static void test_ip4_errors(void)
{
	struct sample s;
	struct pkt p;
	int r;

	build(S_V4_ECHO, &s);
	buf[0] = 0x44;
	is_str(pkt_class_name(parse(s.len, &p)), "bad-hdrlen", "IHL 4");
	buf[0] = 0x40;
	is_str(pkt_class_name(parse(s.len, &p)), "bad-hdrlen", "IHL 0");
	build(S_V4_UDP, &s);
	buf[0] = 0x4f;		/* 60 bytes of header in a 61-byte packet: fits, options bad */
	r = parse(s.len, &p);
	ok(r != PKT_OK, "IHL 15 over a UDP header is not OK (%s)", pkt_class_name(r));
	build(S_V4_ECHO, &s);
	buf[0] = 0x4f;
	put16(buf + 2, 40);
	is_str(pkt_class_name(parse(40, &p)), "bad-hdrlen", "IHL 15 in a 40-byte packet");

	build(S_V4_ECHO, &s);
	put16(buf + 2, (uint16_t)(s.len + 1));
	is_str(pkt_class_name(parse(s.len, &p)), "truncated", "total length > buffer");
	put16(buf + 2, (uint16_t)(s.len - 1));
	is_str(pkt_class_name(parse(s.len, &p)), "bad-length", "total length < buffer");
	put16(buf + 2, 19);
	is_str(pkt_class_name(parse(s.len, &p)), "bad-length", "total length < header");
	put16(buf + 2, 0);
	is_str(pkt_class_name(parse(s.len, &p)), "bad-length", "total length 0");
	put16(buf + 2, (uint16_t)s.len);
	is_str(pkt_class_name(parse(s.len, &p)), "ok", "total length restored");

	buf[0] = 0x55;
	is_str(pkt_class_name(parse(s.len, &p)), "bad-version", "version 5");
	buf[0] = 0x05;
	is_str(pkt_class_name(parse(s.len, &p)), "bad-version", "version 0");
	is_str(pkt_class_name(parse(0, &p)), "truncated", "empty buffer");
	build(S_V4_ECHO, &s);
	is_str(pkt_class_name(parse(PKT_MAX + 1, &p)), "bad-length", "buffer beyond PKT_MAX");
}

/* An IPv4 ICMP echo with the given 8 option bytes; returns the class. */
static int parse_opts(const uint8_t opt[8])
{
	struct pkt p;
	size_t n = icmp(buf + 28, 8, 0, 4);

	ip4(buf, IPPROTO_ICMP, opt, 8, n);
	return parse(28 + n, &p);
}

static void test_ip4_options(void)
{
	static const struct {
		const char *name;
		uint8_t opt[8];
		int want;
	} cases[] = {
		{ "NOPs", { 1, 1, 1, 1, 1, 1, 1, 1 }, PKT_OK },
		{ "EOL then garbage", { 0, 0xff, 0xff, 0x07, 0, 0, 0, 0 }, PKT_OK },
		{ "option filling the header", { 0x44, 8, 5, 0, 0, 0, 0, 0 }, PKT_OK },
		{ "NOP + option to the end", { 1, 7, 7, 4, 0, 0, 0, 0 }, PKT_OK },
		{ "length 0", { 7, 0, 4, 0, 0, 0, 0, 0 }, PKT_BAD_OPTIONS },
		{ "length 1", { 1, 7, 1, 0, 0, 0, 0, 0 }, PKT_BAD_OPTIONS },
		{ "length past the header", { 1, 7, 8, 4, 0, 0, 0, 0 }, PKT_BAD_OPTIONS },
		{ "kind without length", { 1, 1, 1, 1, 1, 1, 1, 0x83 }, PKT_BAD_OPTIONS },
		{ "second option past the header", { 0x94, 4, 0, 0, 7, 5, 0, 0 }, PKT_BAD_OPTIONS },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		is_str(pkt_class_name(parse_opts(cases[i].opt)), pkt_class_name(cases[i].want),
		       "IPv4 options: %s", cases[i].name);
}

/* IPv6 with n destination options headers, then UDP; returns the class. */
static int parse_dstopts_chain(int n, struct pkt *p)
{
	size_t off = 40, u;
	int i;

	for (i = 0; i < n; i++)
		off += ext(buf + off, i == n - 1 ? IPPROTO_UDP : IPPROTO_DSTOPTS, 0);
	u = udp(buf + off, 0);
	ip6(buf, n ? IPPROTO_DSTOPTS : IPPROTO_UDP, off - 40 + u);
	return parse(off + u, p);
}

static void test_ip6_errors(void)
{
	struct sample s;
	struct pkt p;
	size_t off;
	int i, r;

	build(S_V6_UDP, &s);
	put16(buf + 4, (uint16_t)(s.len - 40 + 1));
	is_str(pkt_class_name(parse(s.len, &p)), "truncated", "payload length > buffer");
	put16(buf + 4, (uint16_t)(s.len - 40 - 1));
	is_str(pkt_class_name(parse(s.len, &p)), "bad-length", "payload length < buffer");
	put16(buf + 4, 0);
	is_str(pkt_class_name(parse(s.len, &p)), "bad-length", "payload length 0 with data");

	r = parse_dstopts_chain(8, &p);
	ok(r == PKT_OK && p.l4proto == IPPROTO_UDP && p.l4off == 40 + 64 && p.l4_complete,
	   "8 extension headers are fine (%s)", pkt_class_name(r));
	is_str(pkt_class_name(parse_dstopts_chain(9, &p)), "bad-exthdr",
	       "9 extension headers are too many");
	is_str(pkt_class_name(parse_dstopts_chain(100, &p)), "bad-exthdr",
	       "100 extension headers are too many");

	/* The same routing header over and over: the walk must stop. */
	for (off = 40, i = 0; i < 200; i++)
		off += ext(buf + off, IPPROTO_ROUTING, 0);
	ip6(buf, IPPROTO_ROUTING, off - 40);
	is_str(pkt_class_name(parse(off, &p)), "bad-exthdr", "a looping routing chain");

	/* Hop-by-hop anywhere but first. */
	off = 40 + ext(buf + 40, IPPROTO_HOPOPTS, 0);
	off += ext(buf + off, IPPROTO_NONE, 0);
	ip6(buf, IPPROTO_DSTOPTS, off - 40);
	is_str(pkt_class_name(parse(off, &p)), "bad-exthdr", "hop-by-hop after another header");
	ip6(buf, IPPROTO_HOPOPTS, off - 40);
	buf[40] = IPPROTO_DSTOPTS;
	is_str(pkt_class_name(parse(off, &p)), "ok", "hop-by-hop first");

	/* A header whose length runs past the packet. */
	ext(buf + 40, IPPROTO_NONE, 0);
	buf[41] = 1;
	ip6(buf, IPPROTO_DSTOPTS, 8);
	is_str(pkt_class_name(parse(48, &p)), "bad-exthdr", "extension header past the end");
	ip6(buf, IPPROTO_DSTOPTS, 4);
	is_str(pkt_class_name(parse(44, &p)), "bad-exthdr", "extension header of 4 bytes");

	/* Option TLVs. */
	ext(buf + 40, IPPROTO_NONE, 0);
	buf[3 + 40] = 5;	/* PadN one byte too long */
	ip6(buf, IPPROTO_DSTOPTS, 8);
	is_str(pkt_class_name(parse(48, &p)), "bad-exthdr", "option past its header");
	memset(buf + 42, 0, 6);	/* Pad1 only */
	is_str(pkt_class_name(parse(48, &p)), "ok", "Pad1 options");
	buf[47] = 1;		/* a type without its length byte */
	is_str(pkt_class_name(parse(48, &p)), "bad-exthdr", "option type without length");

	/* Jumbogram: payload length 0, hop-by-hop jumbo option. */
	ip6(buf, IPPROTO_HOPOPTS, 0);
	memset(buf + 40, 0, 8);
	buf[40] = IPPROTO_UDP;
	buf[42] = 0xc2;
	buf[43] = 4;
	buf[44] = 0;
	buf[45] = 1;
	buf[46] = 0;
	buf[47] = 8;
	udp(buf + 48, 65536 - 8);
	is_str(pkt_class_name(parse(PKT_MAX, &p)), "bad-length", "jumbogram");
	put16(buf + 4, 16);
	is_str(pkt_class_name(parse(56, &p)), "bad-length", "jumbo option with a payload length");

	/* Two fragment headers. */
	frag6(buf + 40, IPPROTO_FRAGMENT, 0, true);
	frag6(buf + 48, IPPROTO_UDP, 0, true);
	udp(buf + 56, 0);
	ip6(buf, IPPROTO_FRAGMENT, 24);
	is_str(pkt_class_name(parse(64, &p)), "bad-exthdr", "two fragment headers");

	/* Version 6 header claiming to be 4, and the reverse. */
	build(S_V6_ECHO, &s);
	buf[0] = 0x45;
	r = parse(s.len, &p);
	ok(r != PKT_OK, "IPv6 bytes with version 4 are refused (%s)", pkt_class_name(r));
}

static void test_fragments(void)
{
	struct sample s;
	struct pkt p;

	/* A first fragment whose TCP header ends in the next one. */
	tcp(buf + 20, 0x02, syn_opts, sizeof(syn_opts), 0);
	ip4(buf, IPPROTO_TCP, NULL, 0, 24);
	put16(buf + 6, 0x2000);
	is_str(pkt_class_name(parse(44, &p)), "ok", "tiny first fragment");
	ok(p.fragment && p.first_fragment && !p.l4_complete && p.l4proto == IPPROTO_TCP,
	   "tiny first fragment: fragment, first, incomplete");
	put16(buf + 6, 0);
	is_str(pkt_class_name(parse(44, &p)), "bad-l4", "the same bytes unfragmented");
	put16(buf + 6, 0x4000);
	is_str(pkt_class_name(parse(44, &p)), "bad-l4", "the same bytes with DF");

	/* A bad data offset is bad in a fragment too. */
	buf[32] = 0x40;
	put16(buf + 6, 0x2000);
	is_str(pkt_class_name(parse(44, &p)), "bad-l4", "data offset 4 in a first fragment");

	build(S_V6_FRAG_LATER, &s);
	is_str(pkt_class_name(parse(s.len, &p)), "ok", "v6 later fragment");
	is_int(pkt_ip6_nexthdr_offset(&p), 48, "v6 later fragment: next header at the fragment header");
	build(S_V6_CHAIN, &s);
	parse(s.len, &p);
	is_int(pkt_ip6_nexthdr_offset(&p), 88, "v6 chain: next header in the fragment header");
	build(S_V6_TCP, &s);
	parse(s.len, &p);
	is_int(pkt_ip6_nexthdr_offset(&p), 6, "v6 without extension headers: offset 6");
	build(S_V4_ECHO, &s);
	parse(s.len, &p);
	is_int(pkt_ip6_nexthdr_offset(&p), 0, "v4: no next header offset");
}

static void test_l4_errors(void)
{
	struct sample s;
	struct pkt p;
	int doff;

	for (doff = 0; doff < 5; doff++) {
		build(S_V4_TCP_OPTS, &s);
		buf[28 + 12] = (uint8_t)(doff << 4);
		is_str(pkt_class_name(parse(s.len, &p)), "bad-l4", "TCP data offset %d", doff);
	}
	build(S_V4_TCP_OPTS, &s);
	buf[28 + 12] = 11 << 4;	/* 44 bytes in a 40-byte segment */
	is_str(pkt_class_name(parse(s.len, &p)), "bad-l4", "TCP data offset past the packet");
	buf[28 + 12] = 10 << 4;
	is_str(pkt_class_name(parse(s.len, &p)), "ok", "TCP data offset to the end");
	build(S_V6_TCP, &s);
	buf[40 + 12] = 15 << 4;
	is_str(pkt_class_name(parse(s.len, &p)), "bad-l4", "v6 TCP data offset 15");

	build(S_V4_UDP, &s);
	put16(buf + 24, 7);
	is_str(pkt_class_name(parse(s.len, &p)), "bad-l4", "UDP length 7");
	put16(buf + 24, (uint16_t)(s.len - 20 + 1));
	is_str(pkt_class_name(parse(s.len, &p)), "bad-l4", "UDP length past the datagram");
	put16(buf + 24, 8);
	is_str(pkt_class_name(parse(s.len, &p)), "ok", "UDP length shorter than the datagram");
	build(S_V4_FRAG_FIRST, &s);
	put16(buf + 24, 7);
	is_str(pkt_class_name(parse(s.len, &p)), "bad-l4", "UDP length 7 in a first fragment");

	/* ICMP: 4 bytes for most types, 8 for echo. */
	ip4(buf, IPPROTO_ICMP, NULL, 0, 4);
	icmp(buf + 20, 3, 1, 0);
	is_str(pkt_class_name(parse(24, &p)), "ok", "4-byte ICMP unreachable");
	ok(p.l4_complete && p.icmp_type == 3 && p.icmp_code == 1, "4-byte ICMP: type and code");
	buf[20] = 8;
	is_str(pkt_class_name(parse(24, &p)), "bad-l4", "4-byte ICMP echo");
	ip6(buf, IPPROTO_ICMPV6, 7);
	icmp(buf + 40, 129, 0, 0);
	is_str(pkt_class_name(parse(47, &p)), "bad-l4", "7-byte ICMPv6 echo reply");
}

static void test_class_names(void)
{
	static const char *const want[] = {
		"ok", "truncated", "bad-version", "bad-hdrlen", "bad-length",
		"bad-options", "bad-exthdr", "bad-l4", "bad-vnet",
	};
	int i;

	ok(ARRAY_SIZE(want) == PKT_CLASS_MAX, "every class has a name here");
	for (i = 0; i < PKT_CLASS_MAX; i++)
		is_str(pkt_class_name(i), want[i], "class %d", i);
	is_str(pkt_class_name(PKT_CLASS_MAX), "unknown", "class out of range");
	is_str(pkt_class_name(-1), "unknown", "negative class");
}

static void test_icmp_kinds(void)
{
	static const struct {
		int family;
		uint8_t type;
		bool error;
	} cases[] = {
		{ AF_INET, 0, false }, { AF_INET, 3, true }, { AF_INET, 4, true },
		{ AF_INET, 5, true }, { AF_INET, 8, false }, { AF_INET, 11, true },
		{ AF_INET, 12, true }, { AF_INET, 13, false }, { AF_INET, 18, false },
		{ AF_INET, 19, true }, { AF_INET, 200, true },
		{ AF_INET6, 1, true }, { AF_INET6, 2, true }, { AF_INET6, 4, true },
		{ AF_INET6, 127, true }, { AF_INET6, 128, false }, { AF_INET6, 129, false },
		{ AF_INET6, 135, false }, { AF_INET6, 137, true }, { AF_INET6, 200, false },
	};
	struct pkt p;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len;

		if (cases[i].family == AF_INET) {
			icmp(buf + 20, cases[i].type, 0, 8);
			len = ip4(buf, IPPROTO_ICMP, NULL, 0, 16) + 16;
		} else {
			icmp(buf + 40, cases[i].type, 0, 8);
			ip6(buf, IPPROTO_ICMPV6, 16);
			len = 56;
		}
		parse(len, &p);
		is_int(pkt_is_icmp_error(&p), cases[i].error, "%s type %u: error %d",
		       cases[i].family == AF_INET ? "icmp" : "icmpv6", cases[i].type,
		       cases[i].error);
	}
	/* A non-first fragment of ICMP: its type is unknown, so it may be an error. */
	memset(buf + 20, 0, 16);
	ip4(buf, IPPROTO_ICMP, NULL, 0, 16);
	put16(buf + 6, 100);
	parse(36, &p);
	ok(pkt_is_icmp_error(&p), "non-first ICMP fragment counts as an error");
	ip4(buf, IPPROTO_UDP, NULL, 0, 16);
	udp(buf + 20, 8);
	parse(36, &p);
	ok(!pkt_is_icmp_error(&p), "UDP is no ICMP error");
	ok(pkt_icmp_is_echo(AF_INET, 8) && pkt_icmp_is_echo(AF_INET, 0) &&
		   !pkt_icmp_is_echo(AF_INET, 128) && pkt_icmp_is_echo(AF_INET6, 128) &&
		   pkt_icmp_is_echo(AF_INET6, 129) && !pkt_icmp_is_echo(AF_INET6, 8),
	   "pkt_icmp_is_echo");
}

static void test_accessors(void)
{
	struct sample s;
	struct pkt p;

	build(S_V4_TCP_OPTS, &s);
	parse(s.len, &p);
	ok(memcmp(pkt_saddr(&p), src4, 4) == 0 && memcmp(pkt_daddr(&p), dst4, 4) == 0,
	   "v4 addresses");
	ok(pkt_ttl(&p) == 17 && pkt_dscp(&p) == 46 && pkt_ecn(&p) == 1, "v4 ttl %u dscp %u ecn %u",
	   pkt_ttl(&p), pkt_dscp(&p), pkt_ecn(&p));
	pkt_set_ttl(&p, 200);
	pkt_set_dscp(&p, 10);
	ok(buf[8] == 200 && buf[1] == (10 << 2 | 1) && buf[0] == 0x47 && buf[9] == IPPROTO_TCP,
	   "v4 set ttl and dscp: only those bits change");
	pkt_set_ecn(&p, 3);
	ok(buf[1] == (10 << 2 | 3), "v4 set ecn");
	pkt_set_dscp(&p, 0xff);
	ok(buf[1] == 0xff, "v4 dscp is masked to 6 bits");
	pkt_set_ecn(&p, 0xfc);
	ok(buf[1] == 0xfc, "v4 ecn is masked to 2 bits");
	pkt_set_ttl(&p, 254);
	pkt_forward_compensate(&p);
	is_int(pkt_ttl(&p), 255, "v4 forward compensation 254 -> 255");
	pkt_forward_compensate(&p);
	is_int(pkt_ttl(&p), 255, "v4 forward compensation leaves 255");
	pkt_set_ttl(&p, 0);
	pkt_forward_compensate(&p);
	is_int(pkt_ttl(&p), 1, "v4 forward compensation 0 -> 1");

	build(S_V6_UDP, &s);
	parse(s.len, &p);
	ok(memcmp(pkt_saddr(&p), src6, 16) == 0 && memcmp(pkt_daddr(&p), dst6, 16) == 0,
	   "v6 addresses");
	ok(pkt_ttl(&p) == 33 && pkt_dscp(&p) == 46 && pkt_ecn(&p) == 1, "v6 hlim %u dscp %u ecn %u",
	   pkt_ttl(&p), pkt_dscp(&p), pkt_ecn(&p));
	pkt_set_dscp(&p, 0x15);
	pkt_set_ecn(&p, 2);
	ok(buf[0] == 0x65 && buf[1] == 0x6a && buf[2] == 0x56 && buf[3] == 0x78,
	   "v6 traffic class 0x56 keeps version and flow label (%02x %02x %02x %02x)", buf[0],
	   buf[1], buf[2], buf[3]);
	ok(pkt_dscp(&p) == 0x15 && pkt_ecn(&p) == 2, "v6 dscp and ecn read back");
	pkt_forward_compensate(&p);
	is_int(buf[7], 34, "v6 forward compensation");
	pkt_set_ttl(&p, 255);
	pkt_forward_compensate(&p);
	is_int(buf[7], 255, "v6 forward compensation leaves 255");
}

/* A SYN whose options are opt (optlen bytes), in IPv4. */
static size_t syn_with(const uint8_t *opt, size_t optlen, uint8_t flags, struct pkt *p)
{
	size_t n = tcp(buf + 20, flags, opt, optlen, 0);
	size_t len = ip4(buf, IPPROTO_TCP, NULL, 0, n) + n;

	parse(len, p);
	return len;
}

static void test_clamp_mss(void)
{
	static const uint8_t odd[8] = { 1, 2, 4, 0x23, 0x28, 1, 1, 0 };	/* NOP, MSS 9000 */
	static const uint8_t two[8] = { 2, 4, 0x05, 0xb4, 2, 4, 0x05, 0xdc };
	static const uint8_t badlen[8] = { 2, 3, 0x05, 0xb4, 2, 4, 0x05, 0xdc };
	static const uint8_t zero[8] = { 3, 0, 2, 4, 0x05, 0xb4, 0, 0 };
	static const uint8_t eol[8] = { 0, 0, 2, 4, 0x05, 0xb4, 0, 0 };
	static const uint8_t runs_over[8] = { 1, 1, 1, 1, 1, 1, 2, 4 };
	struct pkt p;

	syn_with(syn_opts, sizeof(syn_opts), 0x02, &p);
	ok(pkt_clamp_mss(&p, 1400), "SYN MSS 1460 clamped to 1400");
	is_int(get16(buf + 42), 1400, "MSS field now 1400");
	ok(!pkt_clamp_mss(&p, 1400), "clamping again changes nothing");
	ok(!pkt_clamp_mss(&p, 1500), "a larger limit changes nothing");
	is_int(get16(buf + 42), 1400, "MSS field still 1400");

	syn_with(syn_opts, sizeof(syn_opts), 0x12, &p);
	ok(pkt_clamp_mss(&p, 1200) && get16(buf + 42) == 1200, "SYN-ACK is clamped too");
	syn_with(syn_opts, sizeof(syn_opts), 0x10, &p);
	ok(!pkt_clamp_mss(&p, 1200) && get16(buf + 42) == 1460, "a segment without SYN is not");

	syn_with(odd, sizeof(odd), 0x02, &p);
	ok(pkt_clamp_mss(&p, 1360) && get16(buf + 43) == 1360, "MSS at an odd offset");
	syn_with(two, sizeof(two), 0x02, &p);
	ok(pkt_clamp_mss(&p, 1300) && get16(buf + 42) == 1300 && get16(buf + 46) == 1300,
	   "every MSS option is clamped");
	syn_with(badlen, sizeof(badlen), 0x02, &p);
	ok(!pkt_clamp_mss(&p, 1300) && get16(buf + 42) == 1460,
	   "option kind 2 with length 3 ends the walk untouched");
	syn_with(zero, sizeof(zero), 0x02, &p);
	ok(!pkt_clamp_mss(&p, 1300) && get16(buf + 44) == 1460, "option length 0 ends the walk");
	syn_with(eol, sizeof(eol), 0x02, &p);
	ok(!pkt_clamp_mss(&p, 1300) && get16(buf + 44) == 1460, "nothing after EOL is read");
	syn_with(runs_over, sizeof(runs_over), 0x02, &p);
	ok(!pkt_clamp_mss(&p, 1300) && get16(buf + 46) == 0x0204,
	   "an MSS option running past the header is ignored");

	build(S_V4_UDP, &(struct sample){ 0 });
	parse(61, &p);
	ok(!pkt_clamp_mss(&p, 100), "UDP has no MSS");
	build(S_V6_TCP, &(struct sample){ 0 });
	parse(80, &p);
	ok(pkt_clamp_mss(&p, 1220) && get16(buf + 62) == 1220, "v6 SYN clamped");
}

int main(void)
{
	test_samples();
	test_truncation();
	test_ip4_errors();
	test_ip4_options();
	test_ip6_errors();
	test_fragments();
	test_l4_errors();
	test_class_names();
	test_icmp_kinds();
	test_accessors();
	test_clamp_mss();
	return tap_done();
}
