/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Virtio-net headers and GSO (gso.c), partial checksums (packet.c) and the
 * chain's whole-or-split decision with segment counting (chain.c).
 *
 * Every expected segment is built from scratch here, with this file's own
 * packet writer and the naive checksum of refcsum.h, and compared byte for
 * byte with what gso_segment() cut from the super-packet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "chain.h"
#include "gso.h"
#include "surgery.h"
#include "packet.h"
#include "refcsum.h"
#include "rule.h"
#include "ruleline.h"
#include "tap.h"
#include "util.h"

#define TF_FIN 0x01
#define TF_SYN 0x02
#define TF_PSH 0x08
#define TF_ACK 0x10
#define TF_ECE 0x40
#define TF_CWR 0x80

/* What a test packet looks like; the payload is a fixed pattern, sliced. */
struct sp {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	bool ipopt;		/* IPv4: 4 bytes of options (IHL 6) */
	bool exthdr;		/* IPv6: an 8-byte destination options header */
	bool tsopt;		/* TCP: NOP NOP timestamps (12 bytes of options) */
	bool mssopt;		/* TCP: an MSS option (4 bytes) */
	uint8_t flags;
	uint32_t seq;
	uint16_t id;
	uint8_t ttl, tos;
	uint16_t sport, dport;
};

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + 3 + (i >> 8));
}

static uint16_t rd16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static void wr16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void wr32(uint8_t *b, uint32_t v)
{
	wr16(b, (uint16_t)(v >> 16));
	wr16(b + 2, (uint16_t)v);
}

/*
 * A packet carrying payload[off, off + len) with the given sequence number,
 * IPv4 ID and TCP flags.  csum: complete checksums; else the L4 field holds
 * the partial pseudo-header sum (NEEDS_CSUM).
 */
static size_t build(uint8_t *b, const struct sp *s, size_t off, size_t len, uint32_t seq,
		    uint16_t id, uint8_t flags, bool csum)
{
	size_t ip = s->family == AF_INET ? (s->ipopt ? 24 : 20) : (s->exthdr ? 48 : 40);
	size_t l4h = s->proto == IPPROTO_TCP ? 20 + (s->tsopt ? 12 : 0) + (s->mssopt ? 4 : 0) : 8;
	size_t tot = ip + l4h + len, alen = s->family == AF_INET ? 4 : 16;
	uint8_t *l4 = b + ip;
	uint32_t sum;
	uint16_t check;

	memset(b, 0, tot);
	if (s->family == AF_INET) {
		b[0] = (uint8_t)(0x40 | ip / 4);
		b[1] = s->tos;
		wr16(b + 2, (uint16_t)tot);
		wr16(b + 4, id);
		wr16(b + 6, 0x4000);
		b[8] = s->ttl ? s->ttl : 64;
		b[9] = s->proto;
		memcpy(b + 12, (uint8_t[]){ 192, 0, 2, 1 }, 4);
		memcpy(b + 16, (uint8_t[]){ 198, 51, 100, 7 }, 4);
		if (s->ipopt)
			memcpy(b + 20, (uint8_t[]){ 1, 1, 1, 0 }, 4);
		wr16(b + 10, (uint16_t)~ref_fold(ref_sum(b, ip, 0)));
	} else {
		b[0] = (uint8_t)(0x60 | s->tos >> 4);
		b[1] = (uint8_t)(s->tos << 4 | 0x0a);
		b[2] = 0xbc;
		b[3] = 0xde;
		wr16(b + 4, (uint16_t)(tot - 40));
		b[6] = s->exthdr ? IPPROTO_DSTOPTS : s->proto;
		b[7] = s->ttl ? s->ttl : 64;
		b[8] = 0x20;
		b[9] = 0x01;
		b[10] = 0x0d;
		b[11] = 0xb8;
		b[23] = 1;
		memcpy(b + 24, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9 },
		       16);
		if (s->exthdr) {
			b[40] = s->proto;
			b[41] = 0;
			b[42] = 1;	/* PadN of 4 */
			b[43] = 4;
		}
	}
	wr16(l4, s->sport ? s->sport : 40000);
	wr16(l4 + 2, s->dport ? s->dport : 5001);
	if (s->proto == IPPROTO_TCP) {
		uint8_t *o = l4 + 20;

		wr32(l4 + 4, seq);
		wr32(l4 + 8, 0x01020304);
		l4[12] = (uint8_t)(l4h / 4 << 4);
		l4[13] = flags;
		wr16(l4 + 14, 502);
		if (s->mssopt) {
			memcpy(o, (uint8_t[]){ 2, 4, 0x05, 0xb4 }, 4);
			o += 4;
		}
		if (s->tsopt)
			memcpy(o, (uint8_t[]){ 1, 1, 8, 10, 0, 1, 2, 3, 4, 5, 6, 7 }, 12);
	} else {
		wr16(l4 + 4, (uint16_t)(l4h + len));
	}
	for (size_t i = 0; i < len; i++)
		l4[l4h + i] = pattern(off + i);

	sum = ref_sum(b + (s->family == AF_INET ? 12 : 8), 2 * alen, 0);
	sum += s->proto + (uint32_t)(l4h + len);
	if (!csum) {
		check = ref_fold(sum);
	} else {
		check = (uint16_t)~ref_fold(ref_sum(l4, l4h + len, sum));
		if (s->proto == IPPROTO_UDP && check == 0)
			check = 0xffff;
	}
	wr16(l4 + (s->proto == IPPROTO_TCP ? 16 : 6), check);
	return tot;
}

static bool same(const uint8_t *got, size_t glen, const uint8_t *want, size_t wlen,
		 const char *what, unsigned int k)
{
	if (glen != wlen) {
		diag("%s segment %u: %zu bytes, want %zu", what, k, glen, wlen);
		return false;
	}
	for (size_t i = 0; i < glen; i++) {
		if (got[i] != want[i]) {
			diag("%s segment %u: byte %zu is %#x, want %#x", what, k, i, got[i], want[i]);
			return false;
		}
	}
	return true;
}

static uint8_t super[PKT_MAX], seg[PKT_MAX], ref[PKT_MAX];

/*
 * Build a super-packet of paylen bytes with gso size mss, cut every segment
 * and compare it with the reference.  partial: the super-packet has
 * NEEDS_CSUM (else a stale checksum and no flag, like a forwarded GRO one).
 */
static void check_split(const char *what, const struct sp *s, size_t paylen, uint16_t mss,
			bool partial)
{
	struct pkt p = { .data = super, .cap = PKT_MAX };
	unsigned int want_segs = (unsigned int)((paylen + mss - 1) / mss), k;
	struct gso g = { 0 };
	size_t hlen, total = 0;
	bool all = true;
	int n;

	p.len = build(super, s, 0, paylen, s->seq, s->id, s->flags, !partial);
	hlen = p.len - paylen;
	if (pkt_parse(&p) != PKT_OK) {
		ok(0, "%s: parses", what);
		return;
	}
	if (!partial) {
		/* A checksum of the first segment, say: anything but a partial sum. */
		wr16(super + p.l4off + (s->proto == IPPROTO_TCP ? 16 : 6), 0x1234);
	}
	g.type = s->proto == IPPROTO_UDP ? GSO_TYPE_UDP_L4 :
		 s->family == AF_INET ? GSO_TYPE_TCPV4 : GSO_TYPE_TCPV6;
	if (s->proto == IPPROTO_TCP && (s->flags & TF_CWR))
		g.type |= GSO_TYPE_ECN;
	g.size = mss;
	g.hdr_len = (uint16_t)hlen;
	if (partial) {
		g.flags = GSO_F_NEEDS_CSUM;
		g.csum_start = p.l4off;
		g.csum_offset = s->proto == IPPROTO_TCP ? 16 : 6;
	}
	is_int(gso_parse(&g, &p), PKT_OK, "%s: header accepted", what);
	is_int(p.segs, want_segs, "%s: %u segments", what, want_segs);
	is_int(p.seg_hlen, hlen, "%s: %zu header bytes per segment", what, hlen);
	ok(p.needs_csum && (g.flags & GSO_F_NEEDS_CSUM) && g.csum_start == p.l4off,
	   "%s: a partial checksum after gso_parse()", what);

	for (k = 0; k < want_segs; k++) {
		size_t off = (size_t)k * mss, len = paylen - off < mss ? paylen - off : mss;
		uint8_t flags = s->flags;
		size_t rlen;

		if (k + 1 < want_segs)
			flags &= (uint8_t)~(TF_FIN | TF_PSH);
		if (k > 0)
			flags &= (uint8_t)~TF_CWR;
		rlen = build(ref, s, off, len, s->seq + (uint32_t)off, (uint16_t)(s->id + k), flags,
			     true);
		n = gso_segment(&p, &g, k, seg, sizeof(seg));
		if (n < 0 || !same(seg, (size_t)n, ref, rlen, what, k))
			all = false;
		if (n > 0)
			total += (size_t)n;
	}
	ok(all, "%s: every segment equals the reference", what);
	is_int(pkt_seg_bytes(&p), total, "%s: pkt_seg_bytes() is the segments' bytes", what);
	is_int(gso_segment(&p, &g, want_segs, seg, sizeof(seg)), -EINVAL,
	       "%s: no segment %u", what, want_segs);
	is_int(gso_segment(&p, &g, 0, seg, hlen), -ENOSPC, "%s: a short buffer", what);
}

static void test_split(void)
{
	struct sp s;

	s = (struct sp){ .family = AF_INET, .proto = IPPROTO_TCP, .tsopt = true,
			 .flags = TF_ACK | TF_PSH | TF_FIN | TF_CWR | TF_ECE, .seq = 1000,
			 .id = 0x1234 };
	check_split("TCPv4 timestamps, FIN PSH CWR, short last", &s, 5000, 1448, true);
	s.ipopt = true;
	s.seq = 0xfffff000;
	s.id = 0xfffe;
	check_split("TCPv4 IP options, sequence and ID wrap", &s, 9000, 1448, true);
	check_split("TCPv4 without NEEDS_CSUM", &s, 4000, 1000, false);
	s = (struct sp){ .family = AF_INET6, .proto = IPPROTO_TCP, .exthdr = true, .tsopt = true,
			 .flags = TF_ACK | TF_PSH, .seq = 77, .tos = 0xb8 };
	check_split("TCPv6 destination options, even split", &s, 4000, 1000, true);
	check_split("TCPv6 one byte segments", &s, 5, 1, true);
	s.exthdr = false;
	check_split("TCPv6 without NEEDS_CSUM", &s, 3000, 1200, false);
	s = (struct sp){ .family = AF_INET, .proto = IPPROTO_UDP, .id = 9 };
	check_split("UDPv4", &s, 3000, 1200, true);
	s = (struct sp){ .family = AF_INET6, .proto = IPPROTO_UDP, .exthdr = true };
	check_split("UDPv6", &s, 2500, 1000, true);
	s = (struct sp){ .family = AF_INET, .proto = IPPROTO_TCP, .flags = TF_ACK | TF_PSH };
	check_split("TCPv4 one segment", &s, 100, 1448, true);
}

/* A header for p as the kernel would give it, then one field spoiled by the caller. */
static int parse_with(struct sp s, size_t paylen, void (*spoil)(struct gso *g, struct pkt *p))
{
	struct pkt p = { .data = super, .cap = PKT_MAX };
	struct gso g = { .flags = GSO_F_NEEDS_CSUM, .size = 1000 };

	p.len = build(super, &s, 0, paylen, 1, 1, TF_ACK, false);
	if (pkt_parse(&p) != PKT_OK)
		return -1;
	g.type = s.proto == IPPROTO_UDP ? GSO_TYPE_UDP_L4 :
		 s.family == AF_INET ? GSO_TYPE_TCPV4 : GSO_TYPE_TCPV6;
	g.csum_start = p.l4off;
	g.csum_offset = s.proto == IPPROTO_TCP ? 16 : 6;
	g.hdr_len = (uint16_t)(p.len - paylen);
	spoil(&g, &p);
	return gso_parse(&g, &p);
}

static void sp_nothing(struct gso *g, struct pkt *p)
{
}
static void sp_size0(struct gso *g, struct pkt *p)
{
	g->size = 0;
}
static void sp_hdrlen(struct gso *g, struct pkt *p)
{
	g->hdr_len = (uint16_t)(p->len + 1);
}
static void sp_v6type(struct gso *g, struct pkt *p)
{
	g->type = GSO_TYPE_TCPV6;
}
static void sp_v4type(struct gso *g, struct pkt *p)
{
	g->type = GSO_TYPE_TCPV4;
}
static void sp_ufo(struct gso *g, struct pkt *p)
{
	g->type = GSO_TYPE_UDP;
}
static void sp_udp_ecn(struct gso *g, struct pkt *p)
{
	g->type = GSO_TYPE_UDP_L4 | GSO_TYPE_ECN;
}
static void sp_none_ecn(struct gso *g, struct pkt *p)
{
	g->type = GSO_TYPE_NONE | GSO_TYPE_ECN;
}
static void sp_csum_beyond(struct gso *g, struct pkt *p)
{
	g->csum_start = (uint16_t)(p->len - 1);
}
static void sp_offset_beyond(struct gso *g, struct pkt *p)
{
	g->csum_offset = (uint16_t)(p->len - p->l4off - 1);
}
static void sp_flag(struct gso *g, struct pkt *p)
{
	g->flags |= 0x04;
}
static void sp_type9(struct gso *g, struct pkt *p)
{
	g->type = 9;
}
static void sp_udplen(struct gso *g, struct pkt *p)
{
	wr16(p->data + p->l4off + 4, (uint16_t)(rd16(p->data + p->l4off + 4) - 1));
}

/* A checksum field inside the parsed headers: completing it would overwrite them. */
static void sp_csum_iphdr(struct gso *g, struct pkt *p)
{
	g->csum_start = 0;
	g->csum_offset = p->family == AF_INET ? 10 : 2;
}
static void sp_csum_ports(struct gso *g, struct pkt *p)
{
	g->csum_offset = 2;
}
static void sp_csum_exthdr(struct gso *g, struct pkt *p)
{
	g->csum_start = 40;
	g->csum_offset = 2;
}
static void sp_csum_payload(struct gso *g, struct pkt *p)
{
	g->csum_start = (uint16_t)(p->len - 8);
	g->csum_offset = 4;
}
static void sp_csum_plain_iphdr(struct gso *g, struct pkt *p)
{
	g->type = GSO_TYPE_NONE;
	sp_csum_iphdr(g, p);
}
static void sp_csum_start_after(struct gso *g, struct pkt *p)
{
	g->type = GSO_TYPE_NONE;
	g->csum_start = (uint16_t)(p->l4off + 20);
	g->csum_offset = 0;
}

static void test_refused(void)
{
	struct sp t4 = { .family = AF_INET, .proto = IPPROTO_TCP };
	struct sp t6 = { .family = AF_INET6, .proto = IPPROTO_TCP };
	struct sp u4 = { .family = AF_INET, .proto = IPPROTO_UDP };
	struct sp x6 = { .family = AF_INET6, .proto = IPPROTO_TCP, .exthdr = true };

	is_int(parse_with(t4, 3000, sp_nothing), PKT_OK, "a good TCPv4 header");
	is_int(parse_with(u4, 3000, sp_nothing), PKT_OK, "a good UDPv4 header");
	is_int(parse_with(t4, 3000, sp_size0), PKT_BAD_VNET, "gso_size 0");
	is_int(parse_with(t4, 3000, sp_hdrlen), PKT_BAD_VNET, "hdr_len beyond the packet");
	is_int(parse_with(t4, 3000, sp_v6type), PKT_BAD_VNET, "TCPV6 on IPv4");
	is_int(parse_with(t6, 3000, sp_v4type), PKT_BAD_VNET, "TCPV4 on IPv6");
	is_int(parse_with(u4, 3000, sp_v4type), PKT_BAD_VNET, "TCPV4 on UDP");
	is_int(parse_with(t4, 3000, sp_udp_ecn), PKT_BAD_VNET, "UDP_L4 on TCP");
	is_int(parse_with(u4, 3000, sp_udp_ecn), PKT_BAD_VNET, "UDP_L4 with ECN");
	is_int(parse_with(u4, 3000, sp_ufo), PKT_BAD_VNET, "UFO");
	is_int(parse_with(t4, 3000, sp_type9), PKT_BAD_VNET, "an unknown GSO type");
	is_int(parse_with(t4, 100, sp_none_ecn), PKT_BAD_VNET, "ECN without GSO");
	is_int(parse_with(t4, 3000, sp_csum_beyond), PKT_BAD_VNET, "csum_start beyond the packet");
	is_int(parse_with(t4, 3000, sp_offset_beyond), PKT_BAD_VNET,
	       "csum_offset beyond the packet");
	is_int(parse_with(t4, 3000, sp_flag), PKT_BAD_VNET, "an unknown flag");
	is_int(parse_with(u4, 3000, sp_udplen), PKT_BAD_VNET, "a UDP length short of the payload");
	is_int(parse_with(t4, 0, sp_nothing), PKT_BAD_VNET, "GSO without payload");
	is_int(parse_with(t4, 3000, sp_csum_iphdr), PKT_BAD_VNET,
	       "a checksum field in the IPv4 header");
	is_int(parse_with(t4, 100, sp_csum_plain_iphdr), PKT_BAD_VNET,
	       "a checksum field in the IPv4 header, not GSO");
	is_int(parse_with(t6, 3000, sp_csum_iphdr), PKT_BAD_VNET,
	       "a checksum field in the IPv6 header");
	is_int(parse_with(t4, 3000, sp_csum_ports), PKT_BAD_VNET,
	       "a checksum field on the TCP ports");
	is_int(parse_with(t4, 3000, sp_csum_payload), PKT_BAD_VNET, "a checksum field in the payload");
	is_int(parse_with(t4, 100, sp_csum_start_after), PKT_BAD_VNET,
	       "csum_start past the checksum field");
	is_int(parse_with(x6, 3000, sp_csum_exthdr), PKT_BAD_VNET,
	       "a checksum field in an IPv6 extension header");
}

static void test_header(void)
{
	static const uint8_t raw[GSO_HDR_LEN] = { 1, 4, 0x4a, 0, 0xa0, 0x05, 0x36, 0, 0x10, 0 };
	uint8_t back[GSO_HDR_LEN];
	struct gso g;

	gso_decode(raw, &g);
	ok(g.flags == 1 && g.type == GSO_TYPE_TCPV6 && g.hdr_len == 74 && g.size == 1440 &&
	   g.csum_start == 54 && g.csum_offset == 16, "the header is little-endian");
	gso_encode(&g, back);
	ok(memcmp(raw, back, sizeof(raw)) == 0, "and encodes back the same");
}

/* A plain (not GSO) packet with NEEDS_CSUM: the checksum where the kernel would not look. */
static void test_odd_csum(void)
{
	struct sp s = { .family = AF_INET, .proto = IPPROTO_UDP };
	struct pkt p = { .data = super, .cap = PKT_MAX };
	struct gso g = { .flags = GSO_F_NEEDS_CSUM };
	size_t len;

	len = build(ref, &s, 0, 200, 0, 1, 0, true);
	p.len = build(super, &s, 0, 200, 0, 1, 0, false);
	pkt_parse(&p);
	/* csum_start at the UDP payload's start - 2: the sum over [l4off+6, end) into +6. */
	g.csum_start = (uint16_t)(p.l4off + 6);
	g.csum_offset = 0;
	/* Make the field hold what the kernel would: the sum of everything before it. */
	wr16(super + p.l4off + 6, ref_fold(ref_sum(super + p.l4off, 6, ref_fold(
		ref_sum(super + 12, 8, 0) + IPPROTO_UDP + 208))));
	is_int(gso_parse(&g, &p), PKT_OK, "NEEDS_CSUM elsewhere than the L4 field: accepted");
	ok(!p.needs_csum && !(g.flags & GSO_F_NEEDS_CSUM), "completed at once");
	ok(p.len == len && memcmp(super, ref, len) == 0, "to the full checksum");
}

/* ---- partial checksums through the rewrites --------------------------------- */

/* p rewritten, then completed: it must equal the same rewrites on a complete packet, recomputed. */
static void check_partial(const char *what, struct sp s, void (*rewrite)(struct pkt *p))
{
	struct pkt p = { .data = super, .cap = PKT_MAX }, q = { .data = ref, .cap = PKT_MAX };
	uint16_t want;
	size_t f;

	p.len = build(super, &s, 0, 300, 5, 6, s.flags, false);
	q.len = build(ref, &s, 0, 300, 5, 6, s.flags, true);
	pkt_parse(&p);
	pkt_parse(&q);
	p.needs_csum = true;
	rewrite(&p);
	rewrite(&q);
	ok(p.needs_csum, "%s: the partial checksum stays partial", what);
	pkt_csum_complete(&p);
	ok(!p.needs_csum, "%s: complete", what);
	/* The reference: the rewritten packet's checksums from scratch. */
	f = q.l4off + (s.proto == IPPROTO_TCP ? 16 : 6);
	wr16(ref + f, 0);
	{
		size_t alen = s.family == AF_INET ? 4 : 16;
		uint32_t sum = ref_sum(ref + (s.family == AF_INET ? 12 : 8), 2 * alen, 0) + s.proto +
			       (uint32_t)(q.len - q.l4off);

		want = (uint16_t)~ref_fold(ref_sum(ref + q.l4off, q.len - q.l4off, sum));
		if (s.proto == IPPROTO_UDP && want == 0)
			want = 0xffff;
	}
	wr16(ref + f, want);
	if (s.family == AF_INET) {
		wr16(ref + 10, 0);
		wr16(ref + 10, (uint16_t)~ref_fold(ref_sum(ref, (size_t)(ref[0] & 15) * 4, 0)));
	}
	ok(p.len == q.len && memcmp(super, ref, p.len) == 0,
	   "%s: equals the reference (L4 %#06x, want %#06x)", what, rd16(super + f), want);
}

static void rw_ttl_dscp(struct pkt *p)
{
	pkt_set_ttl(p, 3);
	pkt_set_dscp(p, 46);
	pkt_set_ecn(p, 3);
}

static void rw_mss(struct pkt *p)
{
	pkt_clamp_mss(p, 1200);
}

/* An address change, as a NAT would do it: the pseudo-header moves. */
static void rw_saddr(struct pkt *p)
{
	uint8_t *a = (uint8_t *)pkt_saddr(p);
	uint32_t old = get_be32(a), new = 0x0a000001;

	put_be32(a, new);
	pkt_l4_csum_replace4(p, old, new, true);
	if (p->family == AF_INET) {
		put_be16(p->data + 10, csum_replace4(get_be16(p->data + 10), old, new));
	}
}

/* A port change: covered by the sum the kernel does later, so no fix. */
static void rw_port(struct pkt *p)
{
	uint8_t *l4 = p->data + p->l4off;
	uint16_t old = get_be16(l4);

	put_be16(l4, 443);
	pkt_l4_csum_replace2(p, old, 443, false);
}

/* set-field and strip-tcp-option (surgery_rewrite(), as the chain applies them). */
static void rw_surgery(struct pkt *p, const char *field, const char *strip)
{
	struct rule_surgery rs;
	char err[256];

	surgery_init(&rs);
	if ((field && surgery_parse_set_field(&rs, field, err, sizeof(err)) < 0) ||
	    (strip && surgery_parse_strip_tcp_option(&rs, strip, err, sizeof(err)) < 0)) {
		diag("%s", err);
		return;
	}
	surgery_rewrite(&rs, p);
}

static void rw_field4(struct pkt *p)
{
	rw_surgery(p, "ip.src=10.9.8.7 ip.id=77 ip.ttl=5 tcp.window=999 tcp.sport=4321", NULL);
}

static void rw_field6(struct pkt *p)
{
	rw_surgery(p, "ip6.dst=2001:db8::77 ip6.flowlabel=0x54321 udp.dport=5353", NULL);
}

static void rw_field_tcp6(struct pkt *p)
{
	rw_surgery(p, "ip6.src=2001:db8::5 tcp.seq=123456789 tcp.flags=0x18", "timestamp");
}

static void rw_strip(struct pkt *p)
{
	rw_surgery(p, NULL, "timestamp,mss");
}

static void test_partial(void)
{
	struct sp t4 = { .family = AF_INET, .proto = IPPROTO_TCP, .tsopt = true, .flags = TF_ACK };
	struct sp t6 = { .family = AF_INET6, .proto = IPPROTO_TCP, .exthdr = true, .flags = TF_ACK };
	struct sp syn = { .family = AF_INET, .proto = IPPROTO_TCP, .mssopt = true, .flags = TF_SYN };
	struct sp syn6 = { .family = AF_INET6, .proto = IPPROTO_TCP, .mssopt = true,
			   .tsopt = true, .flags = TF_SYN };
	struct sp u4 = { .family = AF_INET, .proto = IPPROTO_UDP };
	struct sp u6 = { .family = AF_INET6, .proto = IPPROTO_UDP };

	check_partial("TCPv4 set-ttl set-dscp set-ecn", t4, rw_ttl_dscp);
	check_partial("TCPv6 set-ttl set-dscp set-ecn", t6, rw_ttl_dscp);
	check_partial("UDPv4 set-ttl set-dscp set-ecn", u4, rw_ttl_dscp);
	check_partial("TCPv4 SYN clamp-mss", syn, rw_mss);
	check_partial("TCPv6 SYN clamp-mss", syn6, rw_mss);
	check_partial("TCPv4 source address", t4, rw_saddr);
	check_partial("UDPv4 source address", u4, rw_saddr);
	check_partial("TCPv6 source address", t6, rw_saddr);
	check_partial("UDPv6 source address", u6, rw_saddr);
	check_partial("TCPv4 source port", t4, rw_port);
	check_partial("UDPv6 source port", u6, rw_port);
	check_partial("TCPv4 set-field (address, id, ttl, window, port)", t4, rw_field4);
	check_partial("UDPv6 set-field (address, flow label, port)", u6, rw_field6);
	check_partial("TCPv6 set-field and strip-tcp-option", t6, rw_field_tcp6);
	check_partial("TCPv4 SYN strip-tcp-option", syn, rw_strip);
}

/* ---- the chain: whole or split, and counting segments ----------------------- */

static struct chain *chain_of(const char *const *lines, size_t n)
{
	struct rule *rules[8] = { NULL };
	struct chain *c = NULL;
	char err[256];

	for (size_t i = 0; i < n; i++)
		rules[i] = rule_of(lines[i]);
	if (chain_new(rules, n, &c, err, sizeof(err)) < 0)
		diag("chain_new: %s", err);
	for (size_t i = 0; i < n; i++)
		rule_free(rules[i]);
	if (c)
		chain_seed(c, 1);
	return c;
}

/* A super-packet of 4 segments in super, parsed and described. */
static void make_super(struct pkt *p, struct gso *g, struct sp s)
{
	*p = (struct pkt){ .data = super, .cap = PKT_MAX };
	*g = (struct gso){ .flags = GSO_F_NEEDS_CSUM, .size = 1000 };
	p->len = build(super, &s, 0, 3500, 1, 1, s.flags, false);
	pkt_parse(p);
	g->type = s.proto == IPPROTO_UDP ? GSO_TYPE_UDP_L4 :
		  s.family == AF_INET ? GSO_TYPE_TCPV4 : GSO_TYPE_TCPV6;
	g->csum_start = p->l4off;
	g->csum_offset = s.proto == IPPROTO_TCP ? 16 : 6;
	gso_parse(g, p);
}

static void check_whole(const char *what, const char *const *lines, size_t n, struct sp s,
			bool want)
{
	struct chain *c = chain_of(lines, n);
	struct pkt p;
	struct gso g;

	if (!c) {
		ok(0, "%s: chain", what);
		return;
	}
	make_super(&p, &g, s);
	ok(chain_gso_whole(c, &p) == want, "%s: %s", what, want ? "whole" : "split");
	chain_set_linear(c, true);
	ok(chain_gso_whole(c, &p) == want, "%s: the same without the index", what);
	chain_unref(c);
}

static void test_whole(void)
{
	struct sp tcp = { .family = AF_INET, .proto = IPPROTO_TCP, .flags = TF_ACK | TF_PSH };
	struct sp tcp6 = { .family = AF_INET6, .proto = IPPROTO_TCP, .flags = TF_ACK };
	struct sp udp = { .family = AF_INET, .proto = IPPROTO_UDP };
	static const char *const fake_ping[] = {
		"name=fake-ping proto=icmp icmp-type=echo-request verdict=reply",
		"name=ttl set-ttl=64",
	};
	static const char *const flags[] = { "set-ttl=64", "proto=tcp tcp-flags=psh set-dscp=4" };
	static const char *const impair_udp[] = { "proto=udp delay=10", "set-dscp=10" };
	static const char *const accept_first[] = {
		"proto=tcp dport=5001 verdict=accept",
		"proto=tcp tcp-flags=fin verdict=drop",
	};
	/* Flags every segment shares: decided on the super-packet. */
	static const char *const mss[] = { "proto=tcp tcp-flags=syn clamp-mss=1460", "set-ttl=65" };
	static const char *const ack_drop[] = { "proto=tcp tcp-flags=ack,!syn verdict=drop",
						"proto=tcp tcp-flags=psh set-dscp=4" };
	static const char *const cwr[] = { "proto=tcp tcp-flags=cwr set-dscp=4" };
	static const char *const unsure[] = { "ttl=64 verdict=accept", "probability=0.5 set-ttl=9" };
	static const char *const sure[] = { "dst=198.51.100.0/24 verdict=drop",
					    "length=0-100 verdict=drop" };
	static const char *const reject6[] = { "family=ip6 proto=tcp verdict=reject",
					       "set-ecn=1" };
	static const char *const invariant[] = { "set-ttl=+1", "set-dscp=1", "set-ecn=2",
						  "clamp-mss=1000", "proto=tcp dport=1-6000 ttl=1-255 dscp=0 set-ttl=5" };

	check_whole("fake-ping and set-ttl, TCP", fake_ping, 2, tcp, true);
	check_whole("a tcp-flags rule, TCP", flags, 2, tcp, false);
	check_whole("impairment on UDP, TCP", impair_udp, 2, tcp, true);
	check_whole("impairment on UDP, UDP", impair_udp, 2, udp, false);
	check_whole("an accept before a tcp-flags rule", accept_first, 2, tcp, true);
	tcp.dport = 5002;
	check_whole("the tcp-flags rule for another port", accept_first, 2, tcp, false);
	tcp.dport = 0;
	check_whole("a syn rule (clamp-mss) before set-ttl, TCP", mss, 2, tcp, true);
	check_whole("a sure ack,!syn drop ends the walk", ack_drop, 2, tcp, true);
	check_whole("a cwr match (first segment only), TCP", cwr, 1, tcp, false);
	check_whole("a cwr match, UDP", cwr, 1, udp, true);
	check_whole("a ttl match does not end the walk", unsure, 2, tcp, false);
	check_whole("a drop that surely matches ends it", sure, 2, tcp, true);
	check_whole("reject on IPv6 TCP, IPv4", reject6, 2, tcp, true);
	check_whole("reject on IPv6 TCP, IPv6", reject6, 2, tcp6, false);
	check_whole("only invariant rules", invariant, 5, tcp, true);
	/* Surgery takes one packet at a time: segments first, set-field and strip too. */
	{
		static const char *const split[] = { "proto=tcp split=1" };
		static const char *const field[] = { "set-field=tcp.seq=1" };
		static const char *const strip[] = { "proto=tcp strip-tcp-option=timestamp" };
		static const char *const frag_udp[] = { "proto=udp ipfrag=8", "set-ttl=9" };

		check_whole("a split rule, TCP", split, 1, tcp, false);
		check_whole("a split rule for TCP, UDP", split, 1, udp, true);
		check_whole("set-field (tcp.seq differs per segment), TCP", field, 1, tcp, false);
		check_whole("strip-tcp-option, TCP", strip, 1, tcp, false);
		check_whole("ipfrag for UDP, TCP", frag_udp, 2, tcp, true);
		check_whole("ipfrag for UDP, UDP", frag_udp, 2, udp, false);
	}
}

/* The same chain, a super-packet run whole and its segments run one by one: same counters. */
static void test_counting(void)
{
	static const char *const lines[] = { "name=ttl set-ttl=70", "name=all proto=tcp set-dscp=0" };
	static const char *const psh[] = { "name=psh proto=tcp tcp-flags=psh set-dscp=0",
					     "name=tcp proto=tcp tcp-flags=!psh set-dscp=0" };
	struct sp s = { .family = AF_INET, .proto = IPPROTO_TCP, .tsopt = true,
			.flags = TF_ACK | TF_PSH };
	struct chain *c = chain_of(lines, 2), *d = chain_of(psh, 2);
	struct pkt p, q;
	struct gso g;
	uint64_t pkts, bytes, seg_bytes = 0;
	int n;

	if (!c || !d) {
		ok(0, "chains");
		return;
	}
	make_super(&p, &g, s);
	is_int(chain_run(c, &p, NULL, 0), CHAIN_ACCEPT, "whole: accepted");
	ok(p.needs_csum, "whole: still a partial checksum");
	is_int(p.data[8], 70, "whole: the TTL set once for all");
	chain_counters(c, 0, &pkts, &bytes);
	is_int(pkts, 4, "whole: set-ttl counted 4 segments");
	is_int(bytes, pkt_seg_bytes(&p), "whole: and their bytes");

	make_super(&p, &g, s);
	for (unsigned int k = 0; k < pkt_segs(&p); k++) {
		n = gso_segment(&p, &g, k, seg, sizeof(seg));
		q = (struct pkt){ .data = seg, .len = (size_t)n, .cap = PKT_MAX };
		if (n < 0 || pkt_parse(&q) != PKT_OK)
			break;
		seg_bytes += (size_t)n;
		chain_run(d, &q, NULL, 0);
	}
	chain_counters(d, 0, &pkts, &bytes);
	is_int(pkts, 1, "split: only the last segment has PSH");
	chain_counters(d, 1, &pkts, &bytes);
	is_int(pkts, 3, "split: the other three have none");
	is_int(seg_bytes, pkt_seg_bytes(&p), "split: the segments' bytes are pkt_seg_bytes()");
	chain_unref(c);
	chain_unref(d);
}

int main(void)
{
	test_header();
	test_split();
	test_refused();
	test_odd_csum();
	test_partial();
	test_whole();
	test_counting();
	return tap_done();
}
