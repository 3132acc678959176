/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Forged packets: every field of echo replies, resets and unreachables, their
 * checksums (by a naive checksum written here and by pkt_csum_full()), and
 * every request that must get no answer.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include "forge.h"
#include "pktbuild.h"
#include "refcsum.h"
#include "tap.h"
#include "util.h"

static uint8_t rbuf[PKT_MAX], obuf[PKT_MAX], cbuf[PKT_MAX];
static struct pkt req, out;

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)get16(b) << 16 | get16(b + 2);
}

/* ---- building requests ---------------------------------------------------- */

/* IPv4 header with optlen bytes of NOP options; returns the header length. */
static size_t ip4(uint8_t proto, size_t optlen, size_t l4len)
{
	return ip4_header(rbuf, 0x4321, 3, proto, NULL, optlen, l4len);
}

/* IPv6 header with a hop-by-hop and a destination options header when ext. */
static size_t ip6(uint8_t proto, bool ext, size_t l4len)
{
	size_t hl = ext ? 40 + 8 + 16 : 40;

	memset(rbuf, 0, hl);
	rbuf[0] = 0x6b;		/* traffic class 0xb9 */
	rbuf[1] = 0x9a;
	rbuf[2] = 0x56;
	rbuf[3] = 0x78;
	put16(rbuf + 4, (uint16_t)(hl - 40 + l4len));
	rbuf[6] = ext ? IPPROTO_HOPOPTS : proto;
	rbuf[7] = 3;
	memcpy(rbuf + 8, src6, 16);
	memcpy(rbuf + 24, dst6, 16);
	if (ext) {
		rbuf[40] = IPPROTO_DSTOPTS;
		rbuf[42] = 1;	/* PadN */
		rbuf[43] = 4;
		rbuf[48] = proto;
		rbuf[49] = 1;
		rbuf[50] = 1;
		rbuf[51] = 12;
	}
	return hl;
}

static size_t iphdr(int family, uint8_t proto, bool ext, size_t l4len)
{
	if (family == AF_INET)
		return ip4(proto, ext ? 8 : 0, l4len);
	return ip6(proto == IPPROTO_ICMP ? IPPROTO_ICMPV6 : proto, ext, l4len);
}

static int parse_req(size_t len)
{
	req = (struct pkt){ .data = rbuf, .len = len, .cap = sizeof(rbuf) };
	return pkt_parse(&req);
}

/* An echo request with paylen bytes of data; returns its length, parsed in req. */
static size_t echo(int family, bool ext, size_t paylen)
{
	size_t hl = iphdr(family, IPPROTO_ICMP, ext, 8 + paylen), i;
	uint8_t *icmp = rbuf + hl;

	icmp[0] = family == AF_INET ? 8 : 128;
	icmp[1] = 0;
	put16(icmp + 2, 0);
	put16(icmp + 4, 0xbeef);
	put16(icmp + 6, 0x0102);
	for (i = 0; i < paylen; i++)
		icmp[8 + i] = (uint8_t)(i * 13 + 5);
	parse_req(hl + 8 + paylen);
	pkt_csum_full(&req);
	return hl + 8 + paylen;
}

static size_t tcpseg(int family, uint8_t flags, uint32_t seq, uint32_t ack, size_t paylen)
{
	static const uint8_t opts[12] = { 2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1 };
	size_t hl = iphdr(family, IPPROTO_TCP, false, 32 + paylen);
	uint8_t *t = rbuf + hl;

	memset(t, 0, 32 + paylen);
	put16(t, 40000);
	put16(t + 2, 443);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 8 << 4;
	t[13] = flags;
	put16(t + 14, 501);
	memcpy(t + 20, opts, sizeof(opts));
	memset(t + 32, 'x', paylen);
	parse_req(hl + 32 + paylen);
	pkt_csum_full(&req);
	return hl + 32 + paylen;
}

static size_t udpdgram(int family, size_t paylen)
{
	size_t hl = iphdr(family, IPPROTO_UDP, false, 8 + paylen), i;
	uint8_t *u = rbuf + hl;

	put16(u, 5353);
	put16(u + 2, 53);
	put16(u + 4, (uint16_t)(8 + paylen));
	put16(u + 6, 1);
	for (i = 0; i < paylen; i++)
		u[8 + i] = (uint8_t)i;
	parse_req(hl + 8 + paylen);
	pkt_csum_full(&req);
	return hl + 8 + paylen;
}

/* ---- checking replies ----------------------------------------------------- */


/* out's checksums verify by a naive sum, and pkt_csum_full() changes nothing. */
static bool reply_checksums_ok(void)
{
	bool v4 = out.family == AF_INET;
	const uint8_t *l4 = out.data + out.l4off;
	size_t l4len = out.len - out.l4off;
	uint32_t ps = ref_sum(out.data + (v4 ? 12 : 8), v4 ? 8 : 32, 0);
	struct pkt c = { .data = cbuf, .len = out.len, .cap = sizeof(cbuf) };

	if (v4 && ref_fold(ref_sum(out.data, 20, 0)) != 0xffff)
		return false;
	if (out.l4proto == IPPROTO_ICMP)
		ps = 0;
	else
		ps += out.l4proto + (uint32_t)l4len;
	if (ref_fold(ref_sum(l4, l4len, ps)) != 0xffff)
		return false;
	memcpy(cbuf, out.data, out.len);
	if (pkt_parse(&c) != PKT_OK)
		return false;
	pkt_csum_full(&c);
	return memcmp(cbuf, out.data, out.len) == 0;
}

/* The IP header of a reply: swapped addresses, TTL 64, DF and ID 0, no options. */
static void check_iphdr(const char *what, int family, uint8_t proto, uint8_t tclass,
			size_t l4len)
{
	struct pkt c = { .data = out.data, .len = out.len, .cap = out.cap };

	is_int(pkt_parse(&c), PKT_OK, "%s: parses", what);
	if (family == AF_INET) {
		ok(out.data[0] == 0x45 && get16(out.data + 2) == 20 + l4len && out.len == 20 + l4len,
		   "%s: IHL 5, total length %zu", what, 20 + l4len);
		ok(get16(out.data + 4) == 0 && get16(out.data + 6) == 0x4000,
		   "%s: ID 0, DF, not a fragment", what);
		ok(out.data[8] == FORGE_TTL && out.data[9] == proto, "%s: TTL %u, protocol %u", what,
		   out.data[8], out.data[9]);
		ok(memcmp(out.data + 12, dst4, 4) == 0 && memcmp(out.data + 16, src4, 4) == 0,
		   "%s: addresses swapped", what);
		is_int(out.data[1], tclass, "%s: TOS", what);
	} else {
		ok((out.data[0] >> 4) == 6 && get16(out.data + 4) == l4len && out.len == 40 + l4len,
		   "%s: payload length %zu", what, l4len);
		ok(out.data[6] == proto && out.l4off == 40, "%s: next header %u, no extension headers",
		   what, out.data[6]);
		is_int(out.data[7], FORGE_TTL, "%s: hop limit", what);
		ok(memcmp(out.data + 8, dst6, 16) == 0 && memcmp(out.data + 24, src6, 16) == 0,
		   "%s: addresses swapped", what);
		ok(pkt_dscp(&c) << 2 == tclass && pkt_ecn(&c) == 0 && (out.data[1] & 0x0f) == 0 &&
			   out.data[2] == 0 && out.data[3] == 0,
		   "%s: traffic class %#x, flow label 0", what, tclass);
	}
	ok(reply_checksums_ok(), "%s: checksums verify", what);
}

static void reset_out(size_t cap)
{
	memset(obuf, 0xa5, sizeof(obuf));
	out = (struct pkt){ .data = obuf, .cap = cap };
}

/* ---- echo replies ---------------------------------------------------------- */

static void test_echo(int family, bool ext, size_t paylen)
{
	char what[64];
	size_t len = echo(family, ext, paylen);
	const uint8_t *q = rbuf + req.l4off, *r;
	int ret;

	snprintf(what, sizeof(what), "echo %s%s %zu", family == AF_INET ? "v4" : "v6",
		 ext ? (family == AF_INET ? " with options" : " with ext headers") : "", paylen);
	memcpy(cbuf, rbuf, len);
	reset_out(sizeof(obuf));
	ret = forge_echo_reply(&req, &out);
	is_int(ret, 0, "%s: answered", what);
	if (ret)
		return;
	ok(memcmp(cbuf, rbuf, len) == 0, "%s: request untouched", what);
	check_iphdr(what, family, family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6, 46 << 2,
		    8 + paylen);
	r = out.data + out.l4off;
	ok(r[0] == (family == AF_INET ? 0 : 129) && r[1] == 0, "%s: type %u code %u", what, r[0],
	   r[1]);
	ok(get16(r + 4) == 0xbeef && get16(r + 6) == 0x0102, "%s: identifier and sequence", what);
	ok(memcmp(r + 8, q + 8, paylen) == 0, "%s: payload copied", what);
	ok(out.icmp_type == r[0] && out.l4_complete, "%s: out parsed", what);

	reset_out((family == AF_INET ? 20 : 40) + 8 + paylen - 1);
	is_int(forge_echo_reply(&req, &out), -ENOSPC, "%s: one byte short of room", what);
	ok(obuf[0] == 0xa5, "%s: nothing written without room", what);
}

static const struct {
	const char *what;
	int family;
	bool dst;
	uint8_t addr[16];
} bad_addrs[] = {
	{ "to 224.0.0.1", AF_INET, true, { 224, 0, 0, 1 } },
	{ "to 239.255.255.250", AF_INET, true, { 239, 255, 255, 250 } },
	{ "to 255.255.255.255", AF_INET, true, { 255, 255, 255, 255 } },
	{ "to 0.0.0.0", AF_INET, true, { 0, 0, 0, 0 } },
	{ "from 0.0.0.0", AF_INET, false, { 0, 0, 0, 0 } },
	{ "from 224.0.0.5", AF_INET, false, { 224, 0, 0, 5 } },
	{ "from 255.255.255.255", AF_INET, false, { 255, 255, 255, 255 } },
	{ "to ff02::1", AF_INET6, true, { 0xff, 0x02, [15] = 1 } },
	{ "to ff0e::101", AF_INET6, true, { 0xff, 0x0e, [14] = 1, [15] = 1 } },
	{ "to ::", AF_INET6, true, { 0 } },
	{ "from ::", AF_INET6, false, { 0 } },
	{ "from ff02::2", AF_INET6, false, { 0xff, 0x02, [15] = 2 } },
};

static void expect_no_echo(const char *what, int want)
{
	reset_out(sizeof(obuf));
	is_int(forge_echo_reply(&req, &out), want, "no echo reply: %s", what);
}

static void test_echo_refusals(void)
{
	size_t len, i;

	echo(AF_INET, false, 16);
	rbuf[20] = 0;
	parse_req(44);
	expect_no_echo("echo reply", -EPERM);

	len = udpdgram(AF_INET, 8);
	rbuf[9] = IPPROTO_ICMP;	/* an ICMP port unreachable, by its bytes */
	rbuf[20] = 3;
	rbuf[21] = 3;
	parse_req(len);
	expect_no_echo("ICMP destination unreachable", -EPERM);

	echo(AF_INET6, false, 16);
	rbuf[40] = 1;
	parse_req(64);
	expect_no_echo("ICMPv6 destination unreachable", -EPERM);
	rbuf[40] = 8;
	parse_req(64);
	expect_no_echo("ICMPv4 echo type in ICMPv6", -EPERM);

	tcpseg(AF_INET, 0x02, 1, 0, 0);
	expect_no_echo("TCP", -EPERM);

	echo(AF_INET, false, 16);
	put16(rbuf + 6, 0x2000);
	parse_req(44);
	ok(req.fragment && req.first_fragment && req.l4_complete, "a first fragment of an echo");
	expect_no_echo("first fragment", -EPERM);
	put16(rbuf + 6, 0x0010);
	parse_req(44);
	expect_no_echo("last fragment", -EPERM);
	put16(rbuf + 6, 0x4000);
	parse_req(44);
	is_int(forge_echo_reply(&req, &out), 0, "DF alone is no fragment");

	/* A fragmented ICMPv6 echo request. */
	echo(AF_INET6, false, 16);
	memmove(rbuf + 48, rbuf + 40, 24);
	memset(rbuf + 40, 0, 8);
	rbuf[40] = IPPROTO_ICMPV6;
	rbuf[43] = 1;		/* M */
	rbuf[6] = IPPROTO_FRAGMENT;
	put16(rbuf + 4, 32);
	parse_req(72);
	ok(req.fragment && req.l4_complete, "a first fragment of an ICMPv6 echo");
	expect_no_echo("ICMPv6 first fragment", -EPERM);
	rbuf[43] = 0;		/* atomic */
	parse_req(72);
	is_int(forge_echo_reply(&req, &out), 0, "an atomic fragment is answered");

	/* A first fragment that ends inside the ICMP header. */
	echo(AF_INET, false, 0);
	put16(rbuf + 6, 0x2000);
	put16(rbuf + 2, 24);
	parse_req(24);
	ok(!req.l4_complete, "an incomplete echo header");
	expect_no_echo("incomplete header", -EPERM);

	for (i = 0; i < ARRAY_SIZE(bad_addrs); i++) {
		bool v4 = bad_addrs[i].family == AF_INET;

		len = echo(bad_addrs[i].family, false, 8);
		memcpy(rbuf + (v4 ? 12 : 8) + (bad_addrs[i].dst ? (v4 ? 4 : 16) : 0), bad_addrs[i].addr,
		       v4 ? 4 : 16);
		parse_req(len);
		expect_no_echo(bad_addrs[i].what, -EPERM);
	}

	echo(AF_INET, false, 8);
	req.family = 0;
	expect_no_echo("an unparsed request", -EINVAL);
}

/* ---- resets --------------------------------------------------------------- */

static void test_reset(int family, uint8_t flags, uint32_t seq, uint32_t ack, size_t paylen,
		       uint32_t want_seq, uint32_t want_ack, uint8_t want_flags)
{
	char what[80];
	const uint8_t *t;
	int ret;

	snprintf(what, sizeof(what), "RST %s for flags %#x, %zu bytes", family == AF_INET ? "v4" : "v6",
		 flags, paylen);
	tcpseg(family, flags, seq, ack, paylen);
	reset_out(sizeof(obuf));
	ret = forge_tcp_reset(&req, &out);
	is_int(ret, 0, "%s: sent", what);
	if (ret)
		return;
	check_iphdr(what, family, IPPROTO_TCP, 0, 20);
	t = out.data + out.l4off;
	ok(get16(t) == 443 && get16(t + 2) == 40000, "%s: ports swapped", what);
	is_int(get32(t + 4), want_seq, "%s: seq", what);
	is_int(get32(t + 8), want_ack, "%s: ack", what);
	is_int(t[13], want_flags, "%s: flags", what);
	ok(t[12] == 5 << 4 && get16(t + 14) == 0 && get16(t + 18) == 0,
	   "%s: no options, window 0, no urgent pointer", what);
}

static void test_resets(void)
{
	int f;

	for (f = 0; f < 2; f++) {
		int fam = f ? AF_INET6 : AF_INET;

		/* Segments with ACK: seq = their ack, plain RST. */
		test_reset(fam, 0x18, 1000, 0x12345678, 100, 0x12345678, 0, 0x04);
		test_reset(fam, 0x12, 7, 0xfffffff0, 0, 0xfffffff0, 0, 0x04);
		test_reset(fam, 0x11, 7, 99, 3, 99, 0, 0x04);
		/* Without ACK: seq 0, ack = seq + data + SYN + FIN, RST|ACK. */
		test_reset(fam, 0x02, 1000, 0xdead, 0, 0, 1001, 0x14);
		test_reset(fam, 0x03, 1000, 0, 10, 0, 1012, 0x14);
		test_reset(fam, 0x01, 500, 0, 0, 0, 501, 0x14);
		test_reset(fam, 0x00, 500, 0, 5, 0, 505, 0x14);
		test_reset(fam, 0x02, 0xfffffffe, 0, 4, 0, 3, 0x14);
	}

	tcpseg(AF_INET, 0x04, 1, 0, 0);
	reset_out(sizeof(obuf));
	is_int(forge_tcp_reset(&req, &out), -EPERM, "no RST for a RST");
	tcpseg(AF_INET6, 0x14, 1, 2, 0);
	is_int(forge_tcp_reset(&req, &out), -EPERM, "no RST for a RST|ACK");
	udpdgram(AF_INET, 4);
	is_int(forge_tcp_reset(&req, &out), -EPERM, "no RST for UDP");
	tcpseg(AF_INET, 0x02, 1, 0, 0);
	put16(rbuf + 6, 0x2000);
	parse_req(req.len);
	is_int(forge_tcp_reset(&req, &out), -EPERM, "no RST for a first fragment");
	put16(rbuf + 6, 0x0100);
	parse_req(req.len);
	is_int(forge_tcp_reset(&req, &out), -EPERM, "no RST for a later fragment");
	tcpseg(AF_INET, 0x02, 1, 0, 0);
	rbuf[16] = 239;
	parse_req(req.len);
	is_int(forge_tcp_reset(&req, &out), -EPERM, "no RST for multicast");
	tcpseg(AF_INET6, 0x02, 1, 0, 0);
	reset_out(39 + 20);
	is_int(forge_tcp_reset(&req, &out), -ENOSPC, "RST: one byte short of room");
	reset_out(40 + 20);
	is_int(forge_tcp_reset(&req, &out), 0, "RST: exactly enough room");
}

/* ---- unreachables ---------------------------------------------------------- */

static void test_unreach(int family, enum forge_unreach kind, const char *kname, uint8_t want_type,
			 uint8_t want_code, size_t reqlen_want)
{
	char what[80];
	const uint8_t *icmp;
	size_t len, quote, max = family == AF_INET ? 576 : 1280, hl = family == AF_INET ? 20 : 40;
	int ret;

	len = udpdgram(family, reqlen_want - (family == AF_INET ? 28 : 48));
	snprintf(what, sizeof(what), "unreachable %s %s, %zu-byte request",
		 family == AF_INET ? "v4" : "v6", kname, len);
	reset_out(sizeof(obuf));
	ret = forge_unreachable(&req, kind, &out);
	is_int(ret, 0, "%s: sent", what);
	if (ret)
		return;
	quote = len < max - hl - 8 ? len : max - hl - 8;
	check_iphdr(what, family, family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6,
		    family == AF_INET ? 0xc0 : 0, 8 + quote);
	icmp = out.data + out.l4off;
	ok(icmp[0] == want_type && icmp[1] == want_code, "%s: type %u code %u", what, icmp[0],
	   icmp[1]);
	ok(memcmp(icmp + 8, rbuf, quote) == 0, "%s: quotes the first %zu bytes", what, quote);
	ok(out.len <= max, "%s: %zu bytes, at most %zu", what, out.len, max);
	if (want_type == 4)
		is_int(get32(icmp + 4), 6, "%s: pointer at the next header field", what);
	else
		is_int(get32(icmp + 4), 0, "%s: unused word 0", what);
}

static const struct {
	int family;
	uint8_t type;
	int want;
} icmps[] = {
	{ AF_INET, 3, -EPERM }, { AF_INET, 11, -EPERM }, { AF_INET, 12, -EPERM },
	{ AF_INET, 5, -EPERM }, { AF_INET, 4, -EPERM }, { AF_INET, 200, -EPERM },
	{ AF_INET, 8, 0 }, { AF_INET, 0, 0 }, { AF_INET, 13, 0 },
	{ AF_INET6, 1, -EPERM }, { AF_INET6, 2, -EPERM }, { AF_INET6, 3, -EPERM },
	{ AF_INET6, 4, -EPERM }, { AF_INET6, 100, -EPERM }, { AF_INET6, 137, -EPERM },
	{ AF_INET6, 128, 0 }, { AF_INET6, 129, 0 }, { AF_INET6, 135, 0 },
};


static void expect_no_unreach(const char *what, int want)
{
	reset_out(sizeof(obuf));
	is_int(forge_unreachable(&req, FORGE_UNREACH_PORT, &out), want, "no unreachable: %s", what);
}

static void test_unreachables(void)
{
	static const struct {
		enum forge_unreach kind;
		const char *name;
		uint8_t t4, c4, t6, c6;
	} kinds[] = {
		{ FORGE_UNREACH_NET, "net", 3, 0, 1, 0 },
		{ FORGE_UNREACH_HOST, "host", 3, 1, 1, 3 },
		{ FORGE_UNREACH_PROTO, "proto", 3, 2, 4, 1 },
		{ FORGE_UNREACH_PORT, "port", 3, 3, 1, 4 },
		{ FORGE_UNREACH_ADMIN, "admin", 3, 13, 1, 1 },
	};
	size_t i, len;

	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		test_unreach(AF_INET, kinds[i].kind, kinds[i].name, kinds[i].t4, kinds[i].c4, 100);
		test_unreach(AF_INET6, kinds[i].kind, kinds[i].name, kinds[i].t6, kinds[i].c6, 100);
	}
	/* Long requests are cut to 576 / 1280 bytes in all. */
	test_unreach(AF_INET, FORGE_UNREACH_PORT, "port", 3, 3, 1500);
	test_unreach(AF_INET, FORGE_UNREACH_PORT, "port", 3, 3, 548);
	test_unreach(AF_INET, FORGE_UNREACH_PORT, "port", 3, 3, 549);
	test_unreach(AF_INET6, FORGE_UNREACH_PORT, "port", 1, 4, 1500);
	test_unreach(AF_INET6, FORGE_UNREACH_PORT, "port", 1, 4, 1232);
	test_unreach(AF_INET6, FORGE_UNREACH_PORT, "port", 1, 4, 1233);
	test_unreach(AF_INET6, FORGE_UNREACH_PORT, "port", 1, 4, 65535);

	/* The IPv4 quote keeps the options; the ICMPv6 pointer follows extension headers. */
	len = echo(AF_INET, true, 4);
	reset_out(sizeof(obuf));
	is_int(forge_unreachable(&req, FORGE_UNREACH_ADMIN, &out), 0, "unreachable for an echo");
	ok(out.len == 28 + len && memcmp(obuf + 28, rbuf, len) == 0 && obuf[28] == 0x47,
	   "the quoted header keeps its options");
	len = echo(AF_INET6, true, 4);
	reset_out(sizeof(obuf));
	is_int(forge_unreachable(&req, FORGE_UNREACH_PROTO, &out), 0, "v6 proto unreachable");
	ok(obuf[40] == 4 && obuf[41] == 1 && get32(obuf + 44) == 48,
	   "v6 proto unreachable: pointer 48, the destination options' next header");
	ok(out.len == 48 + len && memcmp(obuf + 48, rbuf, len) == 0, "v6 quote is the whole request");
	ok(reply_checksums_ok(), "v6 proto unreachable: checksums verify");

	/* First fragments are answered, later ones not. */
	len = udpdgram(AF_INET, 100);
	put16(rbuf + 6, 0x2000);
	parse_req(len);
	reset_out(sizeof(obuf));
	is_int(forge_unreachable(&req, FORGE_UNREACH_PORT, &out), 0, "first fragment answered");
	put16(rbuf + 6, 0x2000 | 50);
	parse_req(len);
	expect_no_unreach("non-first fragment", -EPERM);

	/* Never an error about an error. */
	for (i = 0; i < ARRAY_SIZE(icmps); i++) {
		char what[48];

		len = echo(icmps[i].family, false, 20);
		rbuf[req.l4off] = icmps[i].type;
		parse_req(len);
		snprintf(what, sizeof(what), "%s type %u", icmps[i].family == AF_INET ? "ICMP" : "ICMPv6",
			 icmps[i].type);
		reset_out(sizeof(obuf));
		is_int(forge_unreachable(&req, FORGE_UNREACH_PORT, &out), icmps[i].want,
		       "unreachable for %s: %d", what, icmps[i].want);
	}
	/* An ICMP first fragment too short to show its type. */
	echo(AF_INET, false, 0);
	put16(rbuf + 6, 0x2000);
	put16(rbuf + 2, 22);
	parse_req(22);
	expect_no_unreach("ICMP of unknown type", -EPERM);

	len = udpdgram(AF_INET, 4);
	memset(rbuf + 16, 255, 4);
	parse_req(len);
	expect_no_unreach("broadcast", -EPERM);
	len = udpdgram(AF_INET6, 4);
	rbuf[24] = 0xff;
	parse_req(len);
	expect_no_unreach("IPv6 multicast", -EPERM);
	len = udpdgram(AF_INET6, 4);
	memset(rbuf + 8, 0, 16);
	parse_req(len);
	expect_no_unreach("from ::", -EPERM);

	len = udpdgram(AF_INET, 4);
	reset_out(sizeof(obuf));
	is_int(forge_unreachable(&req, (enum forge_unreach)99, &out), -EINVAL, "unknown kind");
	reset_out(20 + 8 + len - 1);
	is_int(forge_unreachable(&req, FORGE_UNREACH_PORT, &out), -ENOSPC,
	       "unreachable: one byte short of room");
	reset_out(20 + 8 + len);
	is_int(forge_unreachable(&req, FORGE_UNREACH_PORT, &out), 0,
	       "unreachable: exactly enough room");
}

/*
 * An inbound request (struct pkt's dir PKT_DIR_IN, read from an inbound
 * tun) is answered exactly as an outbound one: the answer goes to the
 * request's source, whichever way the request travelled.
 */
static void test_direction(void)
{
	static uint8_t first[PKT_MAX];
	const char *const names[] = { "echo reply", "tcp reset", "port unreachable" };

	for (int family = AF_INET; family; family = family == AF_INET ? AF_INET6 : 0) {
		for (unsigned int kind = 0; kind < 3; kind++) {
			size_t flen = 0;
			bool same = true;

			for (unsigned int dir = PKT_DIR_OUT; dir <= PKT_DIR_IN; dir++) {
				int ret;

				if (kind == 0)
					echo(family, false, 56);
				else if (kind == 1)
					tcpseg(family, 0x02, 1000, 0, 0);
				else
					udpdgram(family, 20);
				req.dir = (uint8_t)dir;
				reset_out(sizeof(obuf));
				ret = kind == 0 ? forge_echo_reply(&req, &out) :
				      kind == 1 ? forge_tcp_reset(&req, &out) :
				      forge_unreachable(&req, FORGE_UNREACH_PORT, &out);
				if (ret < 0) {
					same = false;
					break;
				}
				if (dir == PKT_DIR_OUT) {
					memcpy(first, out.data, out.len);
					flen = out.len;
				} else {
					same = flen == out.len && !memcmp(first, out.data, out.len);
				}
			}
			ok(same, "%s %s: an inbound request gets the answer an outbound one gets",
			   family == AF_INET ? "v4" : "v6", names[kind]);
			if (family == AF_INET)
				ok(!memcmp(pkt_daddr(&out), src4, 4) && !memcmp(pkt_saddr(&out), dst4, 4),
				   "v4 %s to an inbound request: to its source, from its destination",
				   names[kind]);
			else
				ok(!memcmp(pkt_daddr(&out), src6, 16) &&
				   !memcmp(pkt_saddr(&out), dst6, 16),
				   "v6 %s to an inbound request: to its source, from its destination",
				   names[kind]);
		}
	}
}

int main(void)
{
	test_echo(AF_INET, false, 56);
	test_echo(AF_INET, true, 56);
	test_echo(AF_INET, false, 0);
	test_echo(AF_INET, false, 1473);
	test_echo(AF_INET6, false, 56);
	test_echo(AF_INET6, true, 57);
	test_echo(AF_INET6, false, 65535 - 48);
	test_echo_refusals();
	test_resets();
	test_unreachables();
	test_direction();
	return tap_done();
}
