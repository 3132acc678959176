/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checksums: RFC 1071 sums against known values, and every incremental update
 * (TTL, DSCP, ECN, MSS clamp, forward compensation, address and port
 * rewrites through the pkt_l4_csum_replace helpers) against pkt_csum_full()
 * on random packets, byte for byte.  Every packet is also verified by a
 * naive checksum written here, so that pkt_csum_full() is not its own judge.
 *
 * IPMODD_TEST_SEED=<n> repeats a run; IPMODD_TEST_PACKETS=<n> changes its size.
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "packet.h"
#include "refcsum.h"
#include "rng.h"
#include "tap.h"
#include "util.h"

static uint8_t buf[PKT_MAX], copy[PKT_MAX];

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)get16(b) << 16 | get16(b + 2);
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b + 2, (uint16_t)v);
}

/* ---- PRNG (rng.h) ---------------------------------------------------------- */

static void rfill(uint8_t *b, size_t n)
{
	while (n--)
		*b++ = (uint8_t)rnd64();
}

/* ---- reference checksum (refcsum.h) on whole packets -------------------- */


/* What the generator knows about the packet in buf. */
struct shape {
	int family;
	uint8_t proto;
	size_t l4off, len;
	bool udp_nocsum;
};

/* Every checksum of the packet verifies (sums to ones' complement -0). */
static bool ref_verify(const uint8_t *d, const struct shape *s, const char **why)
{
	const uint8_t *l4 = d + s->l4off;
	size_t l4len = s->len - s->l4off, alen = s->family == AF_INET ? 4 : 16;
	uint32_t ps;

	if (s->family == AF_INET && ref_fold(ref_sum(d, (size_t)(d[0] & 15) * 4, 0)) != 0xffff) {
		*why = "IPv4 header";
		return false;
	}
	ps = ref_sum(d + (s->family == AF_INET ? 12 : 8), 2 * alen, 0);
	switch (s->proto) {
	case IPPROTO_TCP:
		ps += IPPROTO_TCP + (uint32_t)l4len;
		break;
	case IPPROTO_UDP:
		if (get16(l4 + 6) == 0 && s->family == AF_INET)
			return true;
		if (get16(l4 + 6) == 0) {
			*why = "IPv6 UDP checksum 0";
			return false;
		}
		ps += IPPROTO_UDP + (uint32_t)l4len;
		break;
	case IPPROTO_ICMP:
		ps = 0;
		break;
	case IPPROTO_ICMPV6:
		ps += IPPROTO_ICMPV6 + (uint32_t)l4len;
		break;
	}
	if (ref_fold(ref_sum(l4, l4len, ps)) != 0xffff) {
		*why = "L4";
		return false;
	}
	return true;
}

/* ---- random packets ------------------------------------------------------- */

static const uint8_t ext_types[] = { IPPROTO_DSTOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_AH };

/* n bytes of valid IPv6 option TLVs. */
static void gen_ip6_tlvs(uint8_t *o, size_t n)
{
	size_t i = 0, l;

	while (i < n) {
		if (n - i < 2 || rnd(4) == 0) {
			o[i++] = 0;	/* Pad1 */
			continue;
		}
		l = rnd((uint32_t)(n - i - 1));
		o[i] = (uint8_t)rnd64();
		if (o[i] == 0 || o[i] == 0xc2)
			o[i] = 1;
		o[i + 1] = (uint8_t)l;
		rfill(o + i + 2, l);
		i += 2 + l;
	}
}

/* Extension headers after the IPv6 header; returns their length and sets *first_nh. */
static size_t gen_ip6_exts(uint8_t *d, uint8_t *first_nh, uint8_t proto)
{
	int n = (int)rnd(5), i;
	uint8_t types[5];
	size_t off = 0, hl;
	bool frag = false;

	for (i = 0; i < n; i++) {
		types[i] = ext_types[rnd(ARRAY_SIZE(ext_types))];
		if (types[i] == IPPROTO_FRAGMENT && frag)
			types[i] = IPPROTO_DSTOPTS;
		frag |= types[i] == IPPROTO_FRAGMENT;
	}
	if (n && rnd(2))
		types[0] = IPPROTO_HOPOPTS;
	*first_nh = n ? types[0] : proto;
	for (i = 0; i < n; i++) {
		uint8_t *h = d + off;
		uint8_t nh = i + 1 < n ? types[i + 1] : proto;

		switch (types[i]) {
		case IPPROTO_FRAGMENT:
			hl = 8;
			rfill(h, 8);
			h[2] = 0;	/* atomic: offset 0, no M */
			h[3] &= 0x06;
			break;
		case IPPROTO_AH:
			hl = ((size_t)rnd(5) + 2) * 4;
			rfill(h, hl);
			h[1] = (uint8_t)(hl / 4 - 2);
			break;
		case IPPROTO_ROUTING:
			hl = ((size_t)rnd(3) + 1) * 8;
			rfill(h, hl);
			h[1] = (uint8_t)(hl / 8 - 1);
			h[3] = 0;	/* segments left: the destination is final */
			break;
		default:
			hl = ((size_t)rnd(3) + 1) * 8;
			h[1] = (uint8_t)(hl / 8 - 1);
			gen_ip6_tlvs(h + 2, hl - 2);
			break;
		}
		h[0] = nh;
		off += hl;
	}
	return off;
}

/* Valid IPv4 options, a multiple of 4 bytes. */
static size_t gen_ip4_opts(uint8_t *o)
{
	size_t n = rnd(11) * 4, i = 0, l;

	while (i < n) {
		switch (rnd(4)) {
		case 0:
			o[i] = 0;	/* EOL: the rest is never looked at */
			rfill(o + i + 1, n - i - 1);
			return n;
		case 1:
			if (n - i >= 2) {
				l = 2 + rnd((uint32_t)(n - i - 1));
				rfill(o + i, l);
				if (o[i] < 2)
					o[i] = 0x44;
				o[i + 1] = (uint8_t)l;
				i += l;
				break;
			}
			/* fall through */
		default:
			o[i++] = 1;
			break;
		}
	}
	return n;
}

/* TCP options, a multiple of 4 bytes, with an MSS option at a random place. */
static size_t gen_tcp_opts(uint8_t *o)
{
	size_t n = 0, max = rnd(11) * 4;

	while (n < max) {
		switch (rnd(6)) {
		case 0:
			if (max - n < 4)
				goto pad;
			o[n] = 2;
			o[n + 1] = 4;
			put16(o + n + 2, rnd(4) ? (uint16_t)(500 + rnd(9000)) : (uint16_t)rnd64());
			if (rnd(16) == 0)
				put16(o + n + 2, 0xffff);
			n += 4;
			break;
		case 1:
			if (max - n < 10)
				goto pad;
			o[n] = 8;
			o[n + 1] = 10;
			rfill(o + n + 2, 8);
			n += 10;
			break;
		case 2:
			if (max - n < 3)
				goto pad;
			o[n] = 3;
			o[n + 1] = 3;
			o[n + 2] = (uint8_t)rnd(15);
			n += 3;
			break;
		case 3:
			if (rnd(8) == 0) {
				o[n] = 0;	/* EOL, then padding */
				rfill(o + n + 1, max - n - 1);
				return max;
			}
			/* fall through */
		default:
pad:
			o[n++] = 1;
			break;
		}
	}
	return max;
}

static size_t gen_payload_len(void)
{
	switch (rnd(4)) {
	case 0:
		return 0;
	case 1:
		return rnd(1400);
	}
	return rnd(64);
}

/* A random valid packet in buf with every checksum right. */
static void gen_packet(struct shape *s)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP };
	uint8_t proto = protos[rnd(3)], first_nh;
	size_t hl, l4len, pl, ol;
	uint8_t *l4;
	struct pkt p;
	int r;

	memset(s, 0, sizeof(*s));
	s->family = rnd(2) ? AF_INET : AF_INET6;
	if (s->family == AF_INET6 && proto == IPPROTO_ICMP)
		proto = IPPROTO_ICMPV6;
	s->proto = proto;

	if (s->family == AF_INET) {
		ol = gen_ip4_opts(buf + 20);
		hl = 20 + ol;
		buf[0] = (uint8_t)(0x40 | hl / 4);
		buf[1] = (uint8_t)rnd64();
		put16(buf + 4, (uint16_t)rnd64());
		put16(buf + 6, rnd(2) ? 0x4000 : 0);
		buf[8] = rnd(4) ? (uint8_t)rnd64() : (uint8_t)(rnd(2) ? 255 : 254);
		buf[9] = proto;
		rfill(buf + 12, 8);
	} else {
		hl = 40 + gen_ip6_exts(buf + 40, &first_nh, proto);
		rfill(buf, 4);
		buf[0] = (uint8_t)(0x60 | (buf[0] & 0x0f));
		buf[6] = first_nh;
		buf[7] = rnd(4) ? (uint8_t)rnd64() : 255;
		rfill(buf + 8, 32);
	}
	s->l4off = hl;
	l4 = buf + hl;

	switch (proto) {
	case IPPROTO_TCP:
		rfill(l4, 20);
		ol = gen_tcp_opts(l4 + 20);
		l4[12] = (uint8_t)((20 + ol) / 4 << 4);
		if (rnd(5) < 3)
			l4[13] |= 0x02;
		pl = gen_payload_len();
		rfill(l4 + 20 + ol, pl);
		l4len = 20 + ol + pl;
		break;
	case IPPROTO_UDP:
		rfill(l4, 8);
		pl = gen_payload_len();
		rfill(l4 + 8, pl);
		l4len = 8 + pl;
		put16(l4 + 4, (uint16_t)l4len);
		s->udp_nocsum = s->family == AF_INET && rnd(8) == 0;
		break;
	default:
		rfill(l4, 8);
		if (rnd(2))
			l4[0] = s->family == AF_INET ? 8 : 128;
		pl = gen_payload_len();
		rfill(l4 + 8, pl);
		l4len = 8 + pl;
		break;
	}
	s->len = hl + l4len;
	if (s->family == AF_INET)
		put16(buf + 2, (uint16_t)s->len);
	else
		put16(buf + 4, (uint16_t)(s->len - 40));

	p = (struct pkt){ .data = buf, .len = s->len, .cap = sizeof(buf) };
	r = pkt_parse(&p);
	if (r != PKT_OK || p.l4off != s->l4off || p.l4proto != proto || !p.l4_complete) {
		diag("generator bug: %s l4off %u/%zu", pkt_class_name(r), p.l4off, s->l4off);
		abort();
	}
	pkt_csum_full(&p);
	if (s->udp_nocsum)
		put16(l4 + 6, 0);
}

static int parse(uint8_t *d, const struct shape *s, struct pkt *p)
{
	*p = (struct pkt){ .data = d, .len = s->len, .cap = PKT_MAX };
	return pkt_parse(p);
}

/* ---- edits ---------------------------------------------------------------- */

enum { E_TTL, E_DSCP, E_ECN, E_MSS, E_FORWARD, E_ADDR, E_PORT, E_COUNT };

static const char *const edit_names[E_COUNT] = {
	"ttl", "dscp", "ecn", "clamp-mss", "forward", "address", "port",
};

/* Rewrite a 32-bit word of an address in place, as a NAT would. */
static void rewrite_addr(struct pkt *p, size_t off, uint32_t new)
{
	uint32_t old = get32(p->data + off);

	put32(p->data + off, new);
	if (p->family == AF_INET)
		put16(p->data + 10, csum_replace4(get16(p->data + 10), old, new));
	pkt_l4_csum_replace4(p, old, new, true);
}

static void rewrite_l4_word(struct pkt *p, size_t off, uint16_t new)
{
	uint16_t old = get16(p->data + p->l4off + off);

	put16(p->data + p->l4off + off, new);
	pkt_l4_csum_replace2(p, old, new, false);
}

static void apply_edit(struct pkt *p, int e)
{
	switch (e) {
	case E_TTL:
		pkt_set_ttl(p, (uint8_t)rnd64());
		break;
	case E_DSCP:
		pkt_set_dscp(p, (uint8_t)rnd64());
		break;
	case E_ECN:
		pkt_set_ecn(p, (uint8_t)rnd64());
		break;
	case E_MSS:
		pkt_clamp_mss(p, rnd(4) ? (uint16_t)(500 + rnd(1500)) : (uint16_t)rnd64());
		break;
	case E_FORWARD:
		pkt_forward_compensate(p);
		break;
	case E_ADDR:
		if (p->family == AF_INET)
			rewrite_addr(p, rnd(2) ? 12 : 16, (uint32_t)rnd64());
		else
			rewrite_addr(p, 8 + 4 * rnd(8), (uint32_t)rnd64());
		break;
	case E_PORT:
		/* Ports, or the ICMP identifier / sequence number. */
		rewrite_l4_word(p, p->l4proto == IPPROTO_TCP || p->l4proto == IPPROTO_UDP ?
					   2 * rnd(2) : 4 + 2 * rnd(2),
				(uint16_t)rnd64());
		break;
	}
}

static void test_known_sums(void)
{
	/* RFC 1071 section 3's example: the sum is ddf2, the checksum 220d. */
	static const uint8_t rfc1071[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	/* An IPv4 header from the wild with its checksum 0xb861. */
	static const uint8_t hdr[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
					 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	static const uint8_t odd[3] = { 0x12, 0x34, 0x56 };
	static uint8_t ff[PKT_MAX];

	is_int(csum_fold(csum_partial(rfc1071, 8, 0)), 0x220d, "RFC 1071 example");
	is_int(csum_fold(csum_partial(rfc1071 + 4, 4, csum_partial(rfc1071, 4, 0))), 0x220d,
	       "RFC 1071 example in two parts");
	is_int(csum_fold(csum_partial(hdr, 20, 0)), 0xb861, "IPv4 header checksum");
	is_int(csum_fold(csum_partial(odd, 3, 0)), (uint16_t)~(0x1234 + 0x5600),
	       "odd length: last byte padded low");
	is_int(csum_fold(csum_partial(odd, 0, 0)), 0xffff, "nothing sums to +0");
	is_int(csum_fold(0x1fffe), 0x0000, "fold 0x1fffe");
	is_int(csum_fold(0xffffffff), 0x0000, "fold 0xffffffff");
	is_int(csum_fold(0x0001ffff), 0xfffe, "fold with a double carry");
	memset(ff, 0xff, sizeof(ff));
	is_int(csum_fold(csum_partial(ff, sizeof(ff) - 1, 0xffffffff)), 0x0000,
	       "64 KiB of 0xff from a full sum: no overflow");
	is_int(csum_fold(csum_partial(ff, sizeof(ff), 0)), 0x00ff,
	       "64 KiB of 0xff, odd length: last byte padded");

	/* RFC 1624 section 4's example: HC 0xdd2f, m 0x5555 -> m' 0x3285. */
	is_int(csum_replace2(0xdd2f, 0x5555, 0x3285), 0x0000, "RFC 1624 example gives 0x0000");
	is_int(csum_replace2(0xffff, 0xffff, 0x0000), 0x0000,
	       "-0 checksum, 0xffff -> 0: 0x0000 as a full recompute gives");
	is_int(csum_replace2(0x1234, 0xabcd, 0xabcd), 0x1234, "no change, no change");
	is_int(csum_replace4(0x1234, 0xdeadbeef, 0xdeadbeef), 0x1234, "no change, 32 bits");

	is_int(csum_udp_replace2(0, 0x1111, 0x2222, AF_INET), 0, "IPv4 UDP: 0 stays 0");
	is_int(csum_udp_replace4(0, 0x11111111, 0x22222222, AF_INET), 0,
	       "IPv4 UDP: 0 stays 0 (32 bits)");
	ok(csum_udp_replace2(0, 0x1111, 0x2222, AF_INET6) != 0, "IPv6 UDP: 0 is not special");
	is_int(csum_udp_replace2(0xdd2f, 0x5555, 0x3285, AF_INET), 0xffff,
	       "IPv4 UDP: a computed 0 is sent as 0xffff");
	is_int(csum_udp_replace2(0xdd2f, 0x5555, 0x3285, AF_INET6), 0xffff,
	       "IPv6 UDP: a computed 0 is sent as 0xffff");
	is_int(csum_udp_replace4(0xdd2f, 0x55550000, 0x32850000, AF_INET), 0xffff,
	       "UDP 32 bits: a computed 0 is sent as 0xffff");
}

/*
 * csum_replace2/4 against a recompute on random buffers, including ones whose
 * checksum is 0x0000 before or after and ones that carry 0xffff, its -0 twin.
 */
static void test_replace_random(unsigned int n)
{
	static uint8_t b[256];
	unsigned int i, bad = 0, zero_before = 0, zero_after = 0, neg_zero = 0;

	for (i = 0; i < n; i++) {
		size_t len = 4 + 2 * rnd(100), off = 2 + 2 * rnd((uint32_t)(len - 2) / 2);
		bool four = rnd(2) && off + 4 <= len;
		uint32_t old, new;
		uint16_t check, want, got, w;

		rfill(b, len);
		b[0] |= 0x40;	/* like an IP version: never all zeros */
		old = four ? get32(b + off) : get16(b + off);
		new = (uint32_t)rnd64();
		if (!four)
			new &= 0xffff;
		switch (rnd(4)) {
		case 0:		/* the word makes the sum -0 before: checksum 0x0000 */
			put16(b + off, 0);
			put16(b + off, csum_fold(csum_partial(b, len, 0)));
			old = four ? get32(b + off) : get16(b + off);
			break;
		case 1:		/* the new value makes it -0 after */
			if (four)
				put32(b + off, 0);
			else
				put16(b + off, 0);
			w = csum_fold(csum_partial(b, len, 0));
			new = four ? (uint32_t)w << 16 : w;
			if (four)
				put32(b + off, old);
			else
				put16(b + off, (uint16_t)old);
			break;
		}
		check = csum_fold(csum_partial(b, len, 0));
		zero_before += check == 0;
		/* Carry the other zero now and then; both verify. */
		if (check == 0 && rnd(2)) {
			check = 0xffff;
			neg_zero++;
		}
		got = four ? csum_replace4(check, old, new) : csum_replace2(check, (uint16_t)old,
									    (uint16_t)new);
		if (four)
			put32(b + off, new);
		else
			put16(b + off, (uint16_t)new);
		want = csum_fold(csum_partial(b, len, 0));
		zero_after += want == 0;
		if (got != want && bad++ < 5)
			diag("len %zu off %zu %s check %04x: %08x -> %08x gives %04x, want %04x", len,
			     off, four ? "32" : "16", check, old, new, got, want);
	}
	ok(!bad, "csum_replace2/4 equal a recompute on %u random buffers", n);
	ok(zero_before > n / 8 && zero_after > n / 8 && neg_zero > n / 32,
	   "... %u of them 0x0000 before, %u carried as 0xffff, %u 0x0000 after", zero_before,
	   neg_zero, zero_after);
}

static void test_random_packets(unsigned int n)
{
	unsigned int i, bad_gen = 0, bad_edit = 0, bad_ref = 0, bad_nocsum = 0;
	unsigned int edits[E_COUNT] = { 0 }, changed_mss = 0, families[2] = { 0 }, nocsum = 0;
	struct shape s;
	struct pkt p, q;
	const char *why = "";

	for (i = 0; i < n; i++) {
		int k, ne = 1 + (int)rnd(4), e[4];

		gen_packet(&s);
		families[s.family == AF_INET6]++;
		nocsum += s.udp_nocsum;
		if (!ref_verify(buf, &s, &why) && bad_gen++ < 5)
			diag("packet %u: pkt_csum_full() result does not verify (%s)", i, why);

		parse(buf, &s, &p);
		for (k = 0; k < ne; k++) {
			e[k] = (int)rnd(E_COUNT);
			if (e[k] == E_MSS) {
				memcpy(copy, buf, s.len);
				apply_edit(&p, e[k]);
				changed_mss += memcmp(copy, buf, s.len) != 0;
			} else {
				apply_edit(&p, e[k]);
			}
			edits[e[k]]++;
		}

		memcpy(copy, buf, s.len);
		if (parse(copy, &s, &q) != PKT_OK) {
			if (bad_edit++ < 5)
				diag("packet %u no longer parses", i);
			continue;
		}
		pkt_csum_full(&q);
		if (memcmp(copy, buf, s.len) != 0 && bad_edit++ < 5) {
			diag("packet %u (%s, proto %u, %zu bytes): incremental != full after:",
			     i, s.family == AF_INET ? "v4" : "v6", s.proto, s.len);
			for (k = 0; k < ne; k++)
				diag("  %s", edit_names[e[k]]);
		}
		if (!ref_verify(buf, &s, &why) && bad_ref++ < 5)
			diag("packet %u: edited packet does not verify (%s)", i, why);
		if (s.udp_nocsum && get16(buf + s.l4off + 6) != 0)
			bad_nocsum++;
	}
	diag("%u IPv4, %u IPv6 packets; %u without UDP checksum; %u MSS changed", families[0],
	     families[1], nocsum, changed_mss);
	ok(!bad_gen, "%u random packets verify after pkt_csum_full()", n);
	ok(!bad_edit, "incremental updates equal pkt_csum_full() on %u random packets", n);
	ok(!bad_ref, "edited packets verify by the reference checksum");
	ok(!bad_nocsum, "IPv4 UDP without checksum keeps 0 through every edit");
	for (i = 0; i < E_COUNT; i++)
		ok(edits[i] > n / 10, "edit %s exercised %u times", edit_names[i], edits[i]);
	ok(changed_mss > n / 50, "MSS clamp changed %u packets", changed_mss);
}

/* ---- edge cases: checksums 0x0000 and 0xffff ------------------------------ */

/* A fixed packet into buf; l4len bytes of L4 (payload zeroed).  For edges. */
static void make(struct shape *s, int family, uint8_t proto, size_t paylen)
{
	size_t hl = family == AF_INET ? 20 : 40, l4hl = proto == IPPROTO_TCP ? 24 : 8;
	uint8_t *l4 = buf + hl;
	struct pkt p;

	memset(buf, 0, hl + l4hl + paylen);
	*s = (struct shape){ family, proto, hl, hl + l4hl + paylen, false };
	if (family == AF_INET) {
		buf[0] = 0x45;
		put16(buf + 2, (uint16_t)s->len);
		buf[8] = 64;
		buf[9] = proto;
		put32(buf + 12, 0xc0000201);
		put32(buf + 16, 0xc6336407);
	} else {
		buf[0] = 0x60;
		put16(buf + 4, (uint16_t)(s->len - 40));
		buf[6] = proto;
		buf[7] = 64;
		put32(buf + 8, 0x20010db8);
		put32(buf + 36, 0x00000002);
	}
	switch (proto) {
	case IPPROTO_TCP:
		put16(l4, 40000);
		put16(l4 + 2, 443);
		l4[12] = 6 << 4;
		l4[13] = 0x02;
		l4[20] = 2;
		l4[21] = 4;
		put16(l4 + 22, 0xffff);
		break;
	case IPPROTO_UDP:
		put16(l4, 5353);
		put16(l4 + 2, 53);
		put16(l4 + 4, (uint16_t)(8 + paylen));
		put16(l4 + 6, 1);	/* IPv4: pkt_csum_full() keeps a 0 */
		break;
	default:
		l4[0] = family == AF_INET ? 8 : 128;
		break;
	}
	parse(buf, s, &p);
	pkt_csum_full(&p);
}

static size_t check_off(const struct shape *s, bool ip)
{
	if (ip)
		return 10;
	switch (s->proto) {
	case IPPROTO_TCP:
		return s->l4off + 16;
	case IPPROTO_UDP:
		return s->l4off + 6;
	}
	return s->l4off + 2;
}

/*
 * Choose the 16-bit word at free_off (covered by the checksum) so that the
 * checksum of buf becomes 0x0000 (0xffff for UDP, which never sends 0).
 */
static void force_zero(const struct shape *s, bool ip, size_t free_off)
{
	uint16_t c;
	struct pkt p;

	put16(buf + free_off, 0);
	parse(buf, s, &p);
	pkt_csum_full(&p);
	c = get16(buf + check_off(s, ip));
	/* The sum without the free word is ~c; adding c makes it -0. */
	put16(buf + free_off, s->proto == IPPROTO_UDP && !ip && c == 0xffff ? 0 : c);
	pkt_csum_full(&p);
}

/* Apply edit e to buf and to a copy recomputed in full; true when they agree. */
static bool edit_matches_full(const struct shape *s, int e, uint32_t arg, uint16_t *ret_check,
			      bool ip)
{
	struct pkt p, q;

	parse(buf, s, &p);
	switch (e) {
	case E_TTL:
		pkt_set_ttl(&p, (uint8_t)arg);
		break;
	case E_MSS:
		pkt_clamp_mss(&p, (uint16_t)arg);
		break;
	case E_ADDR:
		rewrite_addr(&p, s->family == AF_INET ? 12 : 8, arg);
		break;
	case E_PORT:
		/* The source port, or the ICMP identifier. */
		rewrite_l4_word(&p, s->proto == IPPROTO_TCP || s->proto == IPPROTO_UDP ? 0 : 4,
				(uint16_t)arg);
		break;
	}
	*ret_check = get16(buf + check_off(s, ip));
	memcpy(copy, buf, s->len);
	parse(copy, s, &q);
	pkt_csum_full(&q);
	return memcmp(copy, buf, s->len) == 0;
}

struct edge {
	const char *name;
	int family;
	uint8_t proto;
	bool ip;		/* the IPv4 header checksum, else L4 */
	int edit;
	uint32_t arg;
	size_t free_off;	/* word that steers the checksum: IPv4 ID or L4 payload */
};

static void test_edges(void)
{
	static const struct edge edges[] = {
		{ "IPv4 header, TTL", AF_INET, IPPROTO_UDP, true, E_TTL, 200, 4 },
		{ "IPv4 header, address", AF_INET, IPPROTO_UDP, true, E_ADDR, 0x0a000001, 4 },
		{ "TCP v4, MSS clamp", AF_INET, IPPROTO_TCP, false, E_MSS, 1000, 20 + 24 },
		{ "TCP v4, MSS to 0", AF_INET, IPPROTO_TCP, false, E_MSS, 0, 20 + 24 },
		{ "TCP v6, MSS clamp", AF_INET6, IPPROTO_TCP, false, E_MSS, 1220, 40 + 24 },
		{ "TCP v6, address", AF_INET6, IPPROTO_TCP, false, E_ADDR, 0xfd000000, 40 + 24 },
		{ "UDP v4, port", AF_INET, IPPROTO_UDP, false, E_PORT, 1234, 20 + 8 },
		{ "UDP v4, address", AF_INET, IPPROTO_UDP, false, E_ADDR, 0x0a000001, 20 + 8 },
		{ "UDP v6, address", AF_INET6, IPPROTO_UDP, false, E_ADDR, 0xfd000000, 40 + 8 },
		{ "ICMP v4, identifier", AF_INET, IPPROTO_ICMP, false, E_PORT, 77, 20 + 8 },
		{ "ICMPv6, address", AF_INET6, IPPROTO_ICMPV6, false, E_ADDR, 0xfd000000, 40 + 8 },
	};
	static uint8_t orig[128];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(edges); i++) {
		const struct edge *g = &edges[i];
		bool udp = g->proto == IPPROTO_UDP && !g->ip;
		uint16_t zero = udp ? 0xffff : 0x0000, c, after;
		size_t coff;
		struct shape s;
		struct pkt p;
		const char *why = "";

		/* 1. 0x0000 (UDP: 0xffff) before the edit. */
		make(&s, g->family, g->proto, 2);
		coff = check_off(&s, g->ip);
		force_zero(&s, g->ip, g->free_off);
		c = get16(buf + coff);
		is_int(c, zero, "%s: checksum %04x before", g->name, zero);
		ok(edit_matches_full(&s, g->edit, g->arg, &after, g->ip),
		   "%s: from %04x, incremental = full (%04x)", g->name, c, after);
		ok(ref_verify(buf, &s, &why), "%s: from %04x, verifies", g->name, c);

		/* 2. The other zero (0xffff, UDP: n/a) before the edit. */
		if (!udp) {
			make(&s, g->family, g->proto, 2);
			force_zero(&s, g->ip, g->free_off);
			put16(buf + coff, 0xffff);
			ok(ref_verify(buf, &s, &why), "%s: 0xffff verifies too", g->name);
			ok(edit_matches_full(&s, g->edit, g->arg, &after, g->ip),
			   "%s: from 0xffff, incremental = full (%04x)", g->name, after);
		}

		/* 3. 0x0000 (UDP: 0xffff) after the edit. */
		make(&s, g->family, g->proto, 2);
		memcpy(orig, buf, s.len);
		edit_matches_full(&s, g->edit, g->arg, &after, g->ip);
		force_zero(&s, g->ip, g->free_off);
		c = get16(buf + g->free_off);
		memcpy(buf, orig, s.len);
		put16(buf + g->free_off, c);
		parse(buf, &s, &p);
		pkt_csum_full(&p);
		ok(edit_matches_full(&s, g->edit, g->arg, &after, g->ip) && after == zero,
		   "%s: to %04x, incremental = full (%04x)", g->name, zero, after);
		ok(ref_verify(buf, &s, &why), "%s: to %04x, verifies", g->name, zero);
	}

	/* IPv4 UDP without a checksum: nothing gives it one. */
	{
		struct shape s;
		struct pkt p;

		make(&s, AF_INET, IPPROTO_UDP, 2);
		put16(buf + 26, 0);
		parse(buf, &s, &p);
		rewrite_addr(&p, 12, 0x0a000001);
		rewrite_l4_word(&p, 2, 9999);
		pkt_set_ttl(&p, 1);
		is_int(get16(buf + 26), 0, "IPv4 UDP checksum 0 stays 0 through rewrites");
		pkt_csum_full(&p);
		is_int(get16(buf + 26), 0, "IPv4 UDP checksum 0 stays 0 through pkt_csum_full()");

		make(&s, AF_INET6, IPPROTO_UDP, 2);
		put16(buf + 46, 0);
		parse(buf, &s, &p);
		pkt_csum_full(&p);
		ok(get16(buf + 46) != 0, "IPv6 UDP checksum 0 is recomputed");
	}
}

static void test_untouched(void)
{
	struct shape s;
	struct pkt p;
	uint8_t before[128];

	/* A non-first fragment has no L4 checksum here; its bytes are data. */
	make(&s, AF_INET, IPPROTO_TCP, 2);
	put16(buf + 6, 100);
	parse(buf, &s, &p);
	memcpy(before, buf, s.len);
	pkt_csum_full(&p);
	ok(memcmp(before + 20, buf + 20, s.len - 20) == 0, "non-first fragment: L4 untouched");
	pkt_l4_csum_replace4(&p, 0x01020304, 0x05060708, true);
	ok(memcmp(before + 20, buf + 20, s.len - 20) == 0,
	   "non-first fragment: pkt_l4_csum_replace4 does nothing");

	/* A first fragment: its L4 checksum covers other fragments too. */
	make(&s, AF_INET, IPPROTO_UDP, 2);
	put16(buf + 6, 0x2000);
	put16(buf + 26, 0x1234);
	parse(buf, &s, &p);
	pkt_csum_full(&p);
	is_int(get16(buf + 26), 0x1234, "first fragment: L4 checksum left alone");
	ok(ref_fold(ref_sum(buf, 20, 0)) == 0xffff, "first fragment: IPv4 header recomputed");

	/* ICMPv4 has no pseudo-header. */
	make(&s, AF_INET, IPPROTO_ICMP, 2);
	parse(buf, &s, &p);
	memcpy(before, buf, s.len);
	pkt_l4_csum_replace4(&p, 0xc0000201, 0x0a000001, true);
	ok(memcmp(before, buf, s.len) == 0, "ICMPv4: an address change leaves its checksum");

	/* IPv6 with segments left in a routing header: L4 left alone. */
	memset(buf, 0, 80);
	buf[0] = 0x60;
	put16(buf + 4, 40);
	buf[6] = IPPROTO_ROUTING;
	buf[7] = 9;
	buf[40] = IPPROTO_UDP;
	buf[41] = 3;
	buf[42] = 4;
	buf[43] = 1;		/* segments left */
	put16(buf + 72 + 4, 8);
	put16(buf + 72 + 6, 0xabcd);
	p = (struct pkt){ .data = buf, .len = 80, .cap = sizeof(buf) };
	is_int(pkt_parse(&p), PKT_OK, "IPv6 with a routing header parses");
	pkt_csum_full(&p);
	is_int(get16(buf + 78), 0xabcd, "segments left: L4 checksum left alone");
}

static unsigned long env_num(const char *name, unsigned long def)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : def;
}

int main(void)
{
	uint64_t seed = env_num("IPMODD_TEST_SEED", (unsigned long)time(NULL) ^ (unsigned long)getpid());
	unsigned int n = (unsigned int)env_num("IPMODD_TEST_PACKETS", 100000);

	rs = seed;
	diag("seed %" PRIu64 " (IPMODD_TEST_SEED=%" PRIu64 " repeats this run)", seed, seed);
	test_known_sums();
	test_replace_random(n);
	test_random_packets(n);
	test_edges();
	test_untouched();
	return tap_done();
}
