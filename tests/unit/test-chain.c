/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rule vocabulary (parse, errors, format round trip) and the chain
 * (matches, actions, verdicts, counters, forging, rate limit, probability,
 * impairment, rule ids and what chain_inherit() carries) on hand-built
 * packets.  Checksums are computed here independently of
 * packet.c and every rewritten packet is checked two ways: by this file's
 * own verifier and against pkt_csum_full() of a copy.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "ctlproto.h"
#include "forge.h"
#include "flow.h"
#include "packet.h"
#include "rule.h"
#include "explain.h"
#include "refcsum.h"
#include "rng.h"
#include "ruleline.h"
#include "settest.h"
#include "tap.h"
#include "util.h"

#define NSEC_PER_SEC_TEST 1000000000ULL

/* The packet templates below take overrides of their defaults. */
#pragma GCC diagnostic ignored "-Woverride-init"

/* ---- rule helpers --------------------------------------------------------- */

/* A chain of up to 8 rules given as lines, NULL-terminated. */
static struct chain *chain_of(const char *first, ...)
{
	struct rule *rules[8] = { NULL };
	struct chain *c = NULL;
	const char *line;
	char err[256];
	size_t n = 0;
	va_list ap;
	bool fail = false;

	va_start(ap, first);
	for (line = first; line && n < ARRAY_SIZE(rules); line = va_arg(ap, const char *)) {
		rules[n] = rule_of(line);
		if (!rules[n++])
			fail = true;
	}
	va_end(ap);
	if (!fail && chain_new(rules, n, &c, err, sizeof(err)) < 0) {
		diag("chain_new: %s", err);
		c = NULL;
	}
	for (size_t i = 0; i < n; i++)
		rule_free(rules[i]);
	if (c)
		chain_seed(c, 42);
	return c;
}

/* ---- packet building ------------------------------------------------------ */

struct spec {
	int family;		/* AF_INET unless AF_INET6 */
	uint8_t proto;
	const char *src, *dst;
	uint8_t ttl;		/* 0: 64 */
	uint8_t tos;		/* DSCP << 2 | ECN */
	uint16_t sport, dport;
	uint8_t tcp_flags;
	uint16_t mss;		/* MSS option; 0: none */
	bool mss_after_nop;	/* NOP first, so the MSS value is not 16-bit aligned */
	uint8_t icmp_type, icmp_code;
	uint16_t payload;
	uint16_t frag_off;	/* in 8-byte units; not 0: a non-first fragment */
	uint8_t dir;		/* enum pkt_dir: as the reader of the packet sets it */
};

struct tpkt {
	uint8_t buf[2048];
	struct pkt p;
};

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint32_t pseudo(int family, const uint8_t *ip, uint8_t proto, size_t l4len)
{
	uint32_t sum;

	if (family == AF_INET)
		sum = ref_sum(ip + 12, 8, 0);
	else
		sum = ref_sum(ip + 8, 32, 0);
	return sum + proto + (uint32_t)(l4len >> 16) + (uint32_t)(l4len & 0xffff);
}

/* Where the L4 header starts, for the packets built here (no options). */
static size_t l4_offset(const uint8_t *d, uint8_t *proto, bool *frag)
{
	if (d[0] >> 4 == 4) {
		*proto = d[9];
		*frag = (get16(d + 6) & 0x3fff) != 0;
		return (size_t)(d[0] & 0x0f) * 4;
	}
	*proto = d[6];
	*frag = false;
	if (*proto == IPPROTO_FRAGMENT) {
		*proto = d[40];
		*frag = true;
		return 48;
	}
	return 40;
}

/* Independent of packet.c: every checksum of d must verify. */
static bool csums_verify(const uint8_t *d, size_t len)
{
	int family = d[0] >> 4 == 4 ? AF_INET : AF_INET6;
	uint8_t proto;
	bool frag;
	size_t off = l4_offset(d, &proto, &frag), l4len = len - off;
	const uint8_t *l4 = d + off;

	if (family == AF_INET && ref_csum(ref_sum(d, off, 0)) != 0)
		return false;
	if (frag)
		return true;
	switch (proto) {
	case IPPROTO_TCP:
		return ref_csum(ref_sum(l4, l4len, pseudo(family, d, proto, l4len))) == 0;
	case IPPROTO_UDP:
		if (family == AF_INET && get16(l4 + 6) == 0)
			return true;
		return get16(l4 + 6) != 0 &&
		       ref_csum(ref_sum(l4, l4len, pseudo(family, d, proto, l4len))) == 0;
	case IPPROTO_ICMP:
		return ref_csum(ref_sum(l4, l4len, 0)) == 0;
	case IPPROTO_ICMPV6:
		return ref_csum(ref_sum(l4, l4len, pseudo(family, d, proto, l4len))) == 0;
	}
	return true;
}

/* Both verifiers agree that p's checksums are right. */
static bool csums_ok(const struct pkt *p)
{
	uint8_t copy[2048];
	struct pkt q = { .data = copy, .len = p->len, .cap = sizeof(copy) };

	if (p->len > sizeof(copy) || !csums_verify(p->data, p->len))
		return false;
	memcpy(copy, p->data, p->len);
	if (pkt_parse(&q) != PKT_OK)
		return false;
	pkt_csum_full(&q);
	return memcmp(copy, p->data, p->len) == 0;
}

static bool build(struct tpkt *t, const struct spec *s)
{
	int family = s->family == AF_INET6 ? AF_INET6 : AF_INET;
	const char *src = s->src, *dst = s->dst;
	uint8_t *d = t->buf, *l4;
	size_t hl = family == AF_INET ? 20 : 40, l4len = 0, off;

	memset(t->buf, 0, sizeof(t->buf));
	if (!src)
		src = family == AF_INET ? "10.0.0.2" : "fd00::2";
	if (!dst)
		dst = family == AF_INET ? "203.0.113.5" : "2001:db8::5";
	if (family == AF_INET6 && s->frag_off)
		hl += 8;
	l4 = d + hl;

	if (s->frag_off) {
		l4len = 8 + s->payload;
		for (size_t i = 0; i < l4len; i++)
			l4[i] = (uint8_t)(i * 7);
	} else if (s->proto == IPPROTO_TCP) {
		size_t opt = s->mss ? (s->mss_after_nop ? 8 : 4) : 0;
		uint8_t *o = l4 + 20;

		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put16(l4 + 4, 0x0001);
		put16(l4 + 6, 0x2345);
		if (s->tcp_flags & 0x10)
			put16(l4 + 10, 0x0777);
		l4[12] = (uint8_t)((20 + opt) / 4 << 4);
		l4[13] = s->tcp_flags;
		put16(l4 + 14, 65535);
		if (s->mss) {
			if (s->mss_after_nop)
				*o++ = 1;
			*o++ = 2;
			*o++ = 4;
			put16(o, s->mss);
			o += 2;
			if (s->mss_after_nop) {
				*o++ = 1;
				*o++ = 1;
				*o++ = 1;
			}
		}
		l4len = 20 + opt + s->payload;
		for (size_t i = 20 + opt; i < l4len; i++)
			l4[i] = (uint8_t)(i * 13);
	} else if (s->proto == IPPROTO_UDP) {
		l4len = 8 + s->payload;
		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put16(l4 + 4, (uint16_t)l4len);
		for (size_t i = 8; i < l4len; i++)
			l4[i] = (uint8_t)(i * 5);
	} else if (s->proto == IPPROTO_ICMP || s->proto == IPPROTO_ICMPV6) {
		l4len = 8 + s->payload;
		l4[0] = s->icmp_type;
		l4[1] = s->icmp_code;
		put16(l4 + 4, 0x1234);
		put16(l4 + 6, 7);
		for (size_t i = 8; i < l4len; i++)
			l4[i] = (uint8_t)(i * 3);
	} else {
		l4len = s->payload;
	}

	if (family == AF_INET) {
		d[0] = 0x45;
		d[1] = s->tos;
		put16(d + 2, (uint16_t)(hl + l4len));
		put16(d + 4, 0xbeef);
		put16(d + 6, s->frag_off & 0x1fff);
		d[8] = s->ttl ? s->ttl : 64;
		d[9] = s->proto;
		if (inet_pton(AF_INET, src, d + 12) != 1 || inet_pton(AF_INET, dst, d + 16) != 1)
			return false;
		put16(d + 10, ref_csum(ref_sum(d, 20, 0)));
	} else {
		d[0] = (uint8_t)(0x60 | s->tos >> 4);
		d[1] = (uint8_t)(s->tos << 4);
		put16(d + 4, (uint16_t)(hl - 40 + l4len));
		d[6] = s->proto;
		d[7] = s->ttl ? s->ttl : 64;
		if (inet_pton(AF_INET6, src, d + 8) != 1 || inet_pton(AF_INET6, dst, d + 24) != 1)
			return false;
		if (s->frag_off) {
			d[6] = IPPROTO_FRAGMENT;
			d[40] = s->proto;
			put16(d + 42, (uint16_t)(s->frag_off << 3));
			put16(d + 44, 0x1234);
		}
	}

	off = hl;
	if (!s->frag_off) {
		switch (s->proto) {
		case IPPROTO_TCP:
			put16(d + off + 16, ref_csum(ref_sum(l4, l4len, pseudo(family, d, s->proto, l4len))));
			break;
		case IPPROTO_UDP: {
			uint16_t c = ref_csum(ref_sum(l4, l4len, pseudo(family, d, s->proto, l4len)));

			put16(d + off + 6, c ? c : 0xffff);
			break;
		}
		case IPPROTO_ICMP:
			put16(d + off + 2, ref_csum(ref_sum(l4, l4len, 0)));
			break;
		case IPPROTO_ICMPV6:
			put16(d + off + 2, ref_csum(ref_sum(l4, l4len, pseudo(family, d, s->proto, l4len))));
			break;
		}
	}

	t->p = (struct pkt){ .data = t->buf, .len = hl + l4len, .cap = sizeof(t->buf),
			     .dir = s->dir };
	return pkt_parse(&t->p) == PKT_OK && csums_verify(t->buf, t->p.len);
}

static struct pkt *pk(struct tpkt *t, struct spec s)
{
	if (!build(t, &s))
		diag("test packet did not build or parse");
	return &t->p;
}

/* Braced templates for tables; the unsuffixed ones are compound literals. */
#define TCP4_(...) { .proto = IPPROTO_TCP, .sport = 40000, .dport = 80, .tcp_flags = 0x10, \
		     __VA_ARGS__ }
#define UDP4_(...) { .proto = IPPROTO_UDP, .sport = 40000, .dport = 53, .payload = 20, \
		     __VA_ARGS__ }
#define PING4_(...) { .proto = IPPROTO_ICMP, .icmp_type = 8, .payload = 16, __VA_ARGS__ }
#define TCP6_(...) TCP4_(.family = AF_INET6, __VA_ARGS__)
#define UDP6_(...) UDP4_(.family = AF_INET6, __VA_ARGS__)
#define PING6_(...) { .family = AF_INET6, .proto = IPPROTO_ICMPV6, .icmp_type = 128, \
		      .payload = 16, __VA_ARGS__ }
#define TCP4(...) ((struct spec)TCP4_(__VA_ARGS__))
#define UDP4(...) ((struct spec)UDP4_(__VA_ARGS__))
#define PING4(...) ((struct spec)PING4_(__VA_ARGS__))
#define TCP6(...) ((struct spec)TCP6_(__VA_ARGS__))
#define UDP6(...) ((struct spec)UDP6_(__VA_ARGS__))
#define PING6(...) ((struct spec)PING6_(__VA_ARGS__))

/* The verdict of a one-rule chain "line" for the packet. */
static int verdict1(const char *line, struct spec s)
{
	struct tpkt t, f;
	struct chain *c = chain_of(line, NULL);
	int v;

	if (!c)
		return -1;
	if (!build(&t, &s)) {
		chain_unref(c);
		diag("test packet did not build or parse");
		return -1;
	}
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = (int)chain_run(c, &t.p, &f.p, 1000000000ULL);
	chain_unref(c);
	return v;
}

/* ---- parsing --------------------------------------------------------------- */

/* Every key form, and the canonical form it formats to ("" for the same line). */
static const struct {
	const char *in, *out;
} good[] = {
	{ "name=a.b_c-1 verdict=accept", "" },
	{ "name=abcdefghijklmnopqrstuvwxyz01234 verdict=drop", "" },
	{ "family=ip verdict=drop", "" },
	{ "family=ip6 verdict=drop", "" },
	{ "family=ipv4 verdict=drop", "family=ip verdict=drop" },
	{ "family=IPv6 verdict=drop", "family=ip6 verdict=drop" },
	{ "proto=icmp verdict=drop", "" },
	{ "proto=icmpv6 verdict=drop", "" },
	{ "proto=tcp verdict=drop", "" },
	{ "proto=udp verdict=drop", "" },
	{ "proto=sctp verdict=drop", "" },
	{ "proto=gre verdict=drop", "" },
	{ "proto=esp verdict=drop", "" },
	{ "proto=17 verdict=drop", "proto=udp verdict=drop" },
	{ "proto=0 verdict=drop", "" },
	{ "proto=253 verdict=drop", "" },
	{ "proto=255 verdict=drop", "" },
	{ "src=10.0.0.0/8 verdict=drop", "" },
	{ "src=10.1.2.3/8 verdict=drop", "src=10.0.0.0/8 verdict=drop" },
	{ "src=10.1.2.255/31 verdict=drop", "src=10.1.2.254/31 verdict=drop" },
	{ "dst=192.0.2.1 verdict=drop", "dst=192.0.2.1/32 verdict=drop" },
	{ "dst=!192.0.2.0/24 verdict=drop", "" },
	{ "dst=0.0.0.0/0 verdict=drop", "" },
	{ "dst=2001:db8::1 verdict=drop", "dst=2001:db8::1/128 verdict=drop" },
	{ "src=!2001:db8:ffff::/33 verdict=drop", "src=!2001:db8:8000::/33 verdict=drop" },
	{ "dst=::/0 verdict=drop", "" },
	{ "family=ip src=10.0.0.0/8 dst=192.0.2.0/24 verdict=drop",
	  "src=10.0.0.0/8 dst=192.0.2.0/24 verdict=drop" },
	{ "proto=tcp sport=80 verdict=drop", "" },
	{ "proto=udp dport=!1000-2000 verdict=drop", "" },
	{ "proto=sctp sport=0-65535 dport=5-5 verdict=drop", "proto=sctp sport=0-65535 dport=5 verdict=drop" },
	{ "proto=icmp icmp-type=echo-request verdict=reply", "" },
	{ "proto=icmp icmp-type=8 verdict=reply", "proto=icmp icmp-type=echo-request verdict=reply" },
	{ "proto=icmp icmp-type=42 verdict=drop", "" },
	{ "proto=icmpv6 icmp-type=echo-request verdict=reply", "" },
	{ "proto=icmpv6 icmp-type=nd-neighbor-solicit verdict=accept", "" },
	{ "icmp-type=echo-request verdict=reply", "" },
	{ "icmp-type=packet-too-big verdict=drop", "" },
	{ "icmp-type=source-quench verdict=drop", "" },
	{ "family=ip icmp-type=timestamp-reply verdict=drop",
	  "family=ip proto=icmp icmp-type=timestamp-reply verdict=drop" },
	{ "family=ip6 icmp-type=129 verdict=drop",
	  "family=ip6 proto=icmpv6 icmp-type=echo-reply verdict=drop" },
	{ "dst=2001:db8::/32 icmp-type=echo-request verdict=reply",
	  "proto=icmpv6 dst=2001:db8::/32 icmp-type=echo-request verdict=reply" },
	{ "proto=icmp icmp-code=3 verdict=drop", "" },
	{ "icmp-type=dest-unreachable icmp-code=4 verdict=drop", "" },
	{ "proto=tcp tcp-flags=syn,!ack verdict=drop", "" },
	{ "proto=tcp tcp-flags=CWR,!ece,urg,ack,psh,rst,syn,fin verdict=drop",
	  "proto=tcp tcp-flags=fin,syn,rst,psh,ack,urg,!ece,cwr verdict=drop" },
	{ "ttl=64 verdict=drop", "" },
	{ "ttl=0-255 verdict=drop", "" },
	{ "length=20-1500 verdict=drop", "" },
	{ "length=65535 verdict=drop", "" },
	{ "dscp=ef verdict=drop", "" },
	{ "dscp=10 verdict=drop", "dscp=af11 verdict=drop" },
	{ "dscp=63 verdict=drop", "" },
	{ "dscp=AF43 verdict=drop", "dscp=af43 verdict=drop" },
	{ "dscp=va verdict=drop", "" },
	{ "dscp=cs0 verdict=drop", "" },
	{ "probability=0.25 verdict=drop", "" },
	{ "probability=0 verdict=drop", "" },
	{ "probability=1 verdict=drop", "" },
	{ "probability=1e-3 verdict=drop", "probability=0.001 verdict=drop" },
	{ "probability=0.1 verdict=drop", "" },
	{ "probability=.5 verdict=drop", "probability=0.5 verdict=drop" },
	{ "set-ttl=64", "" },
	{ "set-ttl=+1", "" },
	{ "set-ttl=-255", "" },
	{ "set-dscp=cs1", "" },
	{ "set-dscp=46", "set-dscp=ef" },
	{ "set-ecn=not-ect", "" },
	{ "set-ecn=1", "set-ecn=ect1" },
	{ "set-ecn=ect0", "" },
	{ "set-ecn=CE", "set-ecn=ce" },
	{ "clamp-mss=536", "" },
	{ "clamp-mss=65535", "" },
	{ "verdict=accept", "" },
	{ "verdict=drop", "" },
	{ "verdict=reply", "" },
	{ "verdict=reject", "verdict=reject reject-with=port-unreachable" },
	{ "verdict=reject reject-with=net-unreachable", "" },
	{ "verdict=reject reject-with=host-unreachable", "" },
	{ "verdict=reject reject-with=port-unreachable", "" },
	{ "verdict=reject reject-with=proto-unreachable", "" },
	{ "verdict=reject reject-with=admin-prohibited", "" },
	{ "proto=tcp verdict=reject reject-with=tcp-reset", "" },
	{ "direction=out verdict=drop", "verdict=drop" },
	{ "direction=in verdict=drop", "" },
	{ "direction=both verdict=drop", "" },
	{ "direction=IN verdict=drop", "direction=in verdict=drop" },
	{ "proto=tcp direction=in name=x tcp-flags=syn,ack clamp-mss=1200",
	  "name=x direction=in proto=tcp tcp-flags=syn,ack clamp-mss=1200" },
	{ "verdict=drop reject-with=admin-prohibited proto=udp dst=10.0.0.0/8 name=x",
	  NULL },	/* reject-with without reject: in the bad list */
	{ "reject-with=tcp-reset verdict=reject dport=23 proto=tcp name=telnet",
	  "name=telnet proto=tcp dport=23 verdict=reject reject-with=tcp-reset" },
	{ "name=all family=ip proto=tcp src=!10.0.0.0/8 sport=1024-65535 dport=!22 "
	  "tcp-flags=syn,!ack ttl=1-64 length=40-1500 dscp=cs1 probability=0.75 "
	  "set-ttl=-2 set-dscp=af21 set-ecn=ect0 clamp-mss=1360 verdict=accept",
	  "name=all proto=tcp src=!10.0.0.0/8 sport=1024-65535 dport=!22 "
	  "tcp-flags=syn,!ack ttl=1-64 length=40-1500 dscp=cs1 probability=0.75 "
	  "set-ttl=-2 set-dscp=af21 set-ecn=ect0 clamp-mss=1360 verdict=accept" },
	/* surgery: a cut implies accept (left out), set-field prints commas */
	{ "proto=tcp split=sni+2,midsld,-3 disorder=true verdict=accept",
	  "proto=tcp split=sni+2,midsld,-3 disorder=true" },
	{ "fake-repeats=3 fake-md5sig=true fake-badseq=true fake-badsum=true fake-ttl=4 fake=random "
	  "ipfrag=24",
	  "ipfrag=24 fake=random fake-ttl=4 fake-badsum=true fake-badseq=true fake-md5sig=true "
	  "fake-repeats=3" },
	{ "set-field=tcp.window=1000,ip.id=7 strip-tcp-option=timestamp,mss verdict=drop",
	  "verdict=drop set-field=tcp.window=1000,ip.id=7 strip-tcp-option=mss,timestamp" },
	{ "set-ttl=9 set-field=ip6.flowlabel=0x12345,ip6.dst=2001:db8::1 verdict=reply proto=icmpv6",
	  "proto=icmpv6 set-ttl=9 verdict=reply set-field=ip6.flowlabel=74565,ip6.dst=2001:db8::1" },
};

static void test_parse_good(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct rule *r = NULL, *r2 = NULL;
		char err[256] = "", out[RULE_FORMAT_MAX], out2[RULE_FORMAT_MAX];
		const char *want = good[i].out && *good[i].out ? good[i].out : good[i].in;
		size_t bad = 99;
		int ret;

		if (!good[i].out)
			continue;
		ret = rule_parse_line(good[i].in, &r, &bad, err, sizeof(err));
		if (!ok(ret == 0, "parse '%s'", good[i].in)) {
			diag("%s", err);
			continue;
		}
		ret = rule_format(r, out, sizeof(out));
		is_int(ret, strlen(want), "format length of '%s'", good[i].in);
		is_str(out, want, "canonical form of '%s'", good[i].in);
		ok(rule_parse_line(out, &r2, &bad, err, sizeof(err)) == 0 && rule_equal(r, r2) &&
		   rule_format(r2, out2, sizeof(out2)) >= 0 && strcmp(out, out2) == 0,
		   "'%s' round-trips", out);
		rule_free(r);
		rule_free(r2);
	}
}

/* Rejected forms: the offending index, and the message's start (key: 'value': ...). */
static const struct rule_refusal bad_forms[] = {
	{ "dst=10.0.0.0/33 verdict=drop", 0, "dst: '10.0.0.0/33': prefix length out of range" },
	{ "verdict=drop dst=2001:db8::/129", 1, "dst: '2001:db8::/129': prefix length" },
	{ "verdict=drop src=10.0.0.0/", 1, "src: '10.0.0.0/': " },
	{ "verdict=drop src=10.0.0.0/-1", 1, "src: '10.0.0.0/-1': " },
	{ "verdict=drop dst=300.1.1.1", 1, "dst: '300.1.1.1': " },
	{ "verdict=drop dst=!", 1, "dst: '!': " },
	{ "verdict=drop dst=example.com", 1, "dst: 'example.com': " },
	{ "family=ip dst=::1 verdict=drop", 1, "dst: '::1': " },
	{ "family=ip6 src=10.0.0.1 verdict=drop", 1, "src: '10.0.0.1': " },
	{ "src=10.0.0.0/8 dst=::/0 verdict=drop", 1, "dst: '::/0': " },
	{ "dst=2001:db8::/32 proto=icmp verdict=drop", 0, "dst: '2001:db8::/32': " },
	{ "family=ip6 proto=icmp verdict=drop", 1, "proto: 'icmp': " },
	{ "proto=icmpv6 family=ip verdict=drop", 0, "proto: 'icmpv6': " },
	{ "name= verdict=drop", 0, "name: '': " },
	{ "name=abcdefghijklmnopqrstuvwxyz012345 verdict=drop", 0, "name: 'abcdefghij" },
	{ "verdict=drop name=a/b", 1, "name: 'a/b': " },
	{ "verdict=drop name=a\001b", 1, "name: 'a?b': " },
	{ "family=inet7 verdict=drop", 0, "family: 'inet7': " },
	{ "proto=tcpx verdict=drop", 0, "proto: 'tcpx': " },
	{ "proto=256 verdict=drop", 0, "proto: '256': " },
	{ "proto=-1 verdict=drop", 0, "proto: '-1': " },
	{ "sport=80 verdict=drop", 0, "sport: '80': needs proto" },
	{ "proto=icmp dport=80 verdict=drop", 1, "dport: '80': needs proto" },
	{ "proto=tcp dport=65536 verdict=drop", 1, "dport: '65536': " },
	{ "proto=tcp dport=5-3 verdict=drop", 1, "dport: '5-3': " },
	{ "proto=tcp dport=1-2-3 verdict=drop", 1, "dport: '1-2-3': " },
	{ "proto=tcp dport=-3 verdict=drop", 1, "dport: '-3': " },
	{ "proto=tcp dport=3- verdict=drop", 1, "dport: '3-': " },
	{ "proto=tcp dport=http verdict=drop", 1, "dport: 'http': " },
	{ "proto=tcp dport= verdict=drop", 1, "dport: '': " },
	{ "proto=tcp dport=!!80 verdict=drop", 1, "dport: '!!80': " },
	{ "proto=udp sport=+80 verdict=drop", 1, "sport: '+80': " },
	{ "icmp-type=8 verdict=drop", 0, "icmp-type: '8': " },
	{ "icmp-type=ping verdict=drop", 0, "icmp-type: 'ping': " },
	{ "proto=tcp icmp-type=echo-request verdict=drop", 1, "icmp-type: 'echo-request': " },
	{ "family=ip icmp-type=packet-too-big verdict=drop", 1, "icmp-type: 'packet-too-big': " },
	{ "proto=icmpv6 icmp-type=source-quench verdict=drop", 1, "icmp-type: 'source-quench': " },
	{ "proto=icmp icmp-type=256 verdict=drop", 1, "icmp-type: '256': " },
	{ "icmp-code=0 verdict=drop", 0, "icmp-code: '0': " },
	{ "proto=udp icmp-code=0 verdict=drop", 1, "icmp-code: '0': " },
	{ "proto=icmp icmp-code=256 verdict=drop", 1, "icmp-code: '256': " },
	{ "tcp-flags=syn verdict=drop", 0, "tcp-flags: 'syn': needs proto=tcp" },
	{ "proto=udp tcp-flags=syn verdict=drop", 1, "tcp-flags: 'syn': " },
	{ "proto=tcp tcp-flags=syn,foo verdict=drop", 1, "tcp-flags: 'syn,foo': " },
	{ "proto=tcp tcp-flags=syn,!syn verdict=drop", 1, "tcp-flags: 'syn,!syn': " },
	{ "proto=tcp tcp-flags= verdict=drop", 1, "tcp-flags: '': " },
	{ "proto=tcp tcp-flags=syn, verdict=drop", 1, "tcp-flags: 'syn,': " },
	{ "proto=tcp tcp-flags=! verdict=drop", 1, "tcp-flags: '!': " },
	{ "ttl=256 verdict=drop", 0, "ttl: '256': " },
	{ "ttl=5-1 verdict=drop", 0, "ttl: '5-1': " },
	{ "length=65536 verdict=drop", 0, "length: '65536': " },
	{ "length=1.5 verdict=drop", 0, "length: '1.5': " },
	{ "dscp=64 verdict=drop", 0, "dscp: '64': " },
	{ "dscp=af44 verdict=drop", 0, "dscp: 'af44': " },
	{ "dscp=ef2 verdict=drop", 0, "dscp: 'ef2': " },
	{ "probability=1.5 verdict=drop", 0, "probability: '1.5': " },
	{ "probability=-0.1 verdict=drop", 0, "probability: '-0.1': " },
	{ "probability=nan verdict=drop", 0, "probability: 'nan': " },
	{ "probability=inf verdict=drop", 0, "probability: 'inf': " },
	{ "probability=0x1p-1 verdict=drop", 0, "probability: '0x1p-1': " },
	{ "probability= verdict=drop", 0, "probability: '': " },
	{ "probability=0.5.5 verdict=drop", 0, "probability: '0.5.5': " },
	{ "probability=1e999 verdict=drop", 0, "probability: '1e999': " },
	{ "set-ttl=0", 0, "set-ttl: '0': " },
	{ "set-ttl=256", 0, "set-ttl: '256': " },
	{ "set-ttl=+0", 0, "set-ttl: '+0': " },
	{ "set-ttl=-0", 0, "set-ttl: '-0': " },
	{ "set-ttl=+256", 0, "set-ttl: '+256': " },
	{ "set-ttl=++1", 0, "set-ttl: '++1': " },
	{ "set-ttl=+-1", 0, "set-ttl: '+-1': " },
	{ "set-ttl=", 0, "set-ttl: '': " },
	{ "set-dscp=64", 0, "set-dscp: '64': " },
	{ "set-dscp=best", 0, "set-dscp: 'best': " },
	{ "set-ecn=4", 0, "set-ecn: '4': " },
	{ "set-ecn=ect2", 0, "set-ecn: 'ect2': " },
	{ "clamp-mss=535", 0, "clamp-mss: '535': " },
	{ "clamp-mss=65536", 0, "clamp-mss: '65536': " },
	{ "clamp-mss=1400x", 0, "clamp-mss: '1400x': " },
	{ "verdict=allow", 0, "verdict: 'allow': " },
	{ "verdict=", 0, "verdict: '': " },
	{ "reject-with=tcp-reset proto=tcp", 0, "reject-with: 'tcp-reset': needs verdict=reject" },
	{ "verdict=drop reject-with=port-unreachable", 1, "reject-with: 'port-unreachable': " },
	{ "proto=udp verdict=reject reject-with=tcp-reset", 2, "reject-with: 'tcp-reset': needs proto=tcp" },
	{ "verdict=reject reject-with=tcp-reset", 1, "reject-with: 'tcp-reset': " },
	{ "verdict=reject reject-with=icmp-port-unreachable", 1, "reject-with: 'icmp-port-" },
	{ "verdict=drop reject-with=admin-prohibited proto=udp dst=10.0.0.0/8 name=x", 1,
	  "reject-with: 'admin-prohibited': " },
	{ "verdict=drop foo=bar", 1, "'foo': unknown key" },
	{ "Verdict=drop", 0, "'Verdict': unknown key" },
	{ "verdict=drop set-ttl=1 set-ttl=2", 2, "set-ttl: given twice" },
	{ "name=x name=x verdict=drop", 1, "name: given twice" },
	{ "name=x", 1, "rule does nothing" },
	{ "proto=tcp dport=80 dst=10.0.0.0/8", 3, "rule does nothing" },
	{ "", 0, "rule does nothing" },
	{ "verdict=drop direction=inbound", 1, "direction: 'inbound': must be out, in or both" },
	{ "direction= verdict=drop", 0, "direction: '': must be out, in or both" },
	{ "direction=in direction=out verdict=drop", 1, "direction: given twice" },
	{ "direction=in", 1, "rule does nothing" },
	/* surgery (issue 15) */
	{ "verdict=drop split=1", 1, "split: '1': surgery needs verdict accept, not drop" },
	{ "proto=icmp verdict=reply fake=zero", 2, "fake: 'zero': surgery needs verdict accept" },
	{ "proto=tcp verdict=reject ipfrag=8", 2, "ipfrag: '8': surgery needs verdict accept" },
	{ "split=1 delay=10", 0, "a rule that cuts (split, ipfrag, fake) cannot also impair" },
	{ "loss=0.1 fake=zero", 1, "a rule that cuts (split, ipfrag, fake) cannot also impair" },
	{ "disorder=true", 0, "disorder needs split or ipfrag" },
	{ "verdict=accept fake-ttl=3", 1, "fake-ttl needs fake" },
	{ "split=0", 0, "split: '0': " },
	{ "ipfrag=12", 0, "ipfrag: '12': " },
	{ "set-field=tcp.nope=1", 0, "set-field: 'tcp.nope=1': unknown field" },
	{ "fake=hex:zz", 0, "fake: 'hex:zz': " },
	{ "fake=@/dev/zero", 0, "fake: '@/dev/zero': /dev/zero: not a regular file" },
	{ "fake=@/", 0, "fake: '@/': /: not a regular file" },
	{ "fake=@relative", 0, "fake: '@relative': " },
};

static void test_parse_bad(void)
{
	rule_check_refusals(bad_forms, ARRAY_SIZE(bad_forms));
}

static void test_parse_edge(void)
{
	struct rule_kv kv[RULE_KV_MAX + 1];
	struct rule *r = NULL;
	char err[256], small[8];
	size_t bad = 999;
	int ret;

	kv[0] = (struct rule_kv){ "verdict", "drop" };
	kv[1] = (struct rule_kv){ "dst", NULL };
	ret = rule_parse(kv, 2, &r, &bad, err, sizeof(err));
	ok(ret == -EINVAL && bad == 1 && !r, "a missing value is rejected at its index");

	for (size_t i = 0; i < ARRAY_SIZE(kv); i++)
		kv[i] = (struct rule_kv){ "name", "x" };
	ret = rule_parse(kv, ARRAY_SIZE(kv), &r, &bad, err, sizeof(err));
	ok(ret == -EINVAL && bad == RULE_KV_MAX && !r, "more than RULE_KV_MAX pairs are rejected");

	kv[0] = (struct rule_kv){ "verdict", "drop" };
	ret = rule_parse(kv, 1, &r, NULL, NULL, 0);
	ok(ret == 0 && r, "ret_bad and err are optional");
	is_str(rule_name(r), "", "no name: rule_name() is empty");
	ok(rule_format(r, small, 5) == -ENOSPC && small[0] == '\0',
	   "rule_format() into a short buffer: -ENOSPC");
	ok(rule_format(r, small, sizeof(small)) == -ENOSPC, "one byte short: -ENOSPC");
	rule_free(r);
	ok(rule_free(NULL) == NULL && rule_dup(NULL) == NULL, "rule_free/rule_dup take NULL");

	/* A long hostile value is quoted sanitized and bounded. */
	{
		char big[400], line[512];

		memset(big, 'A', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		snprintf(line, sizeof(line), "verdict=drop dst=%s", big);
		ret = rule_parse_line(line, &r, &bad, err, sizeof(err));
		ok(ret == -EINVAL && strlen(err) < 160 && strstr(err, "..."),
		   "a long value is truncated in the message");
		ret = rule_parse_line("verdict=drop dst=10.0.0.0/33", &r, &bad, small, sizeof(small));
		ok(ret == -EINVAL && strlen(small) == sizeof(small) - 1,
		   "the message is cut to errlen");
	}
}

/* Deterministic random rules from pools of values: the round trip holds for all. */
static void test_roundtrip_random(void)
{
	static const char *const pool[][10] = {
		{ "name", "r1", "x.y", "A-b_c", NULL },
		{ "family", "ip", "ip6", NULL },
		{ "proto", "tcp", "udp", "icmp", "icmpv6", "sctp", "47", "200", NULL },
		{ "src", "10.0.0.0/8", "!192.168.1.7/24", "2001:db8::/32", "!fe80::1", "0.0.0.0/0", NULL },
		{ "dst", "198.51.100.0/24", "!203.0.113.9", "::/0", "!2001:db8:1::/48", NULL },
		{ "sport", "80", "!1024-65535", "0", NULL },
		{ "dport", "53", "5060-5061", "!22", NULL },
		{ "icmp-type", "echo-request", "dest-unreachable", "3", "packet-too-big", "nd-router-advert", NULL },
		{ "icmp-code", "0", "13", NULL },
		{ "tcp-flags", "syn", "syn,!ack", "!rst,fin", "cwr,ece", NULL },
		{ "ttl", "1", "2-64", "255", NULL },
		{ "length", "0-100", "1500", NULL },
		{ "dscp", "ef", "0", "af31", "7", NULL },
		{ "probability", "0.5", "0.001", "1", "0", "0.3333333333333333", NULL },
		{ "set-ttl", "64", "+1", "-1", "255", NULL },
		{ "set-dscp", "cs1", "ef", "13", NULL },
		{ "set-ecn", "ce", "0", "ect1", NULL },
		{ "clamp-mss", "1360", "536", NULL },
		{ "verdict", "accept", "drop", "reply", "reject", NULL },
		{ "reject-with", "tcp-reset", "host-unreachable", "admin-prohibited", NULL },
		{ "direction", "out", "in", "both", "in", NULL },
	};
	unsigned int tried = 20000, failed, parsed;

	parsed = RULE_RANDOM_ROUND_TRIPS(pool, 11, true, 0x12345678, tried, &failed);
	ok(parsed > 1000, "random rules: %u of %u parse", parsed, tried);
	ok(failed == 0, "random rules: %u failed the format/parse round trip", failed);
}

static void test_rule_equal(void)
{
	static const char *const lines[] = {
		"verdict=drop", "name=a verdict=drop", "verdict=accept", "dst=10.0.0.0/8 verdict=drop",
		"dst=10.0.0.0/9 verdict=drop", "dst=!10.0.0.0/8 verdict=drop",
		"src=10.0.0.0/8 verdict=drop", "proto=tcp dport=80 verdict=drop",
		"proto=tcp sport=80 verdict=drop", "proto=tcp dport=!80 verdict=drop",
		"probability=0.5 verdict=drop", "probability=0.25 verdict=drop",
		"set-ttl=64", "set-ttl=+64", "set-ttl=-64", "set-dscp=0", "set-ecn=0",
		"icmp-type=echo-request verdict=drop", "icmp-type=echo-reply verdict=drop",
		"proto=icmp icmp-type=echo-request verdict=drop",
		"verdict=reject", "verdict=reject reject-with=admin-prohibited",
		"direction=in verdict=drop", "direction=both verdict=drop",
		"direction=in dst=10.0.0.0/8 verdict=drop", "direction=both set-ttl=64",
	};
	unsigned int wrong = 0;

	wrong = rules_told_apart_wrong(lines, ARRAY_SIZE(lines));
	ok(wrong == 0, "rule_equal tells %zu different rules apart", ARRAY_SIZE(lines));
}

/* ---- matching -------------------------------------------------------------- */

static const struct {
	const char *rule;
	struct spec pkt;
	bool match;
	const char *what;
} matches[] = {
	{ "family=ip verdict=drop", UDP4_(), true, "family=ip, v4" },
	{ "family=ip verdict=drop", UDP6_(), false, "family=ip, v6" },
	{ "family=ip6 verdict=drop", UDP6_(), true, "family=ip6, v6" },
	{ "family=ip6 verdict=drop", PING4_(), false, "family=ip6, v4" },
	{ "proto=udp verdict=drop", UDP4_(), true, "proto=udp, udp" },
	{ "proto=udp verdict=drop", TCP4_(), false, "proto=udp, tcp" },
	{ "proto=tcp verdict=drop", TCP6_(), true, "proto=tcp, tcp6" },
	{ "proto=47 verdict=drop", { .proto = 47, .payload = 8 }, true, "proto=47" },
	{ "proto=icmpv6 verdict=drop", PING6_(), true, "proto=icmpv6" },
	{ "proto=icmp verdict=drop", PING6_(), false, "proto=icmp, icmpv6" },
	{ "src=10.0.0.0/8 verdict=drop", UDP4_(.src = "10.255.1.1"), true, "src /8 in" },
	{ "src=10.0.0.0/8 verdict=drop", UDP4_(.src = "11.0.0.1"), false, "src /8 out" },
	{ "src=10.1.2.3/8 verdict=drop", UDP4_(.src = "10.200.0.1"), true, "host bits ignored" },
	{ "src=!10.0.0.0/8 verdict=drop", UDP4_(.src = "11.0.0.1"), true, "src ! out" },
	{ "src=!10.0.0.0/8 verdict=drop", UDP4_(.src = "10.0.0.1"), false, "src ! in" },
	{ "dst=192.0.2.0/24 verdict=drop", PING4_(.dst = "192.0.2.77"), true, "dst /24 in" },
	{ "dst=192.0.2.0/24 verdict=drop", PING4_(.dst = "192.0.3.77"), false, "dst /24 out" },
	{ "dst=192.0.2.0/25 verdict=drop", PING4_(.dst = "192.0.2.128"), false, "dst /25 edge" },
	{ "dst=192.0.2.7 verdict=drop", PING4_(.dst = "192.0.2.7"), true, "dst host" },
	{ "dst=192.0.2.7 verdict=drop", PING4_(.dst = "192.0.2.6"), false, "dst host other" },
	{ "dst=0.0.0.0/0 verdict=drop", PING4_(), true, "dst /0 v4" },
	{ "dst=0.0.0.0/0 verdict=drop", PING6_(), false, "dst v4 /0 never matches v6" },
	{ "dst=::/0 verdict=drop", PING4_(), false, "dst v6 /0 never matches v4" },
	{ "dst=2001:db8::/32 verdict=drop", PING6_(.dst = "2001:db8:ffff::1"), true, "dst v6 /32 in" },
	{ "dst=2001:db8::/32 verdict=drop", PING6_(.dst = "2001:db9::1"), false, "dst v6 /32 out" },
	{ "dst=2001:db8::1:0:0:0/80 verdict=drop", PING6_(.dst = "2001:db8:0:0:1::9"), true,
	  "dst v6 /80 in (second half of the address)" },
	{ "dst=2001:db8::1:0:0:0/80 verdict=drop", PING6_(.dst = "2001:db8:0:0:1:1::9"), true,
	  "dst v6 /80 in (bit 80 is outside)" },
	{ "dst=2001:db8::1:0:0:0/80 verdict=drop", PING6_(.dst = "2001:db8:0:0:3::9"), false,
	  "dst v6 /80 out (bit 78)" },
	{ "dst=2001:db8::1:0:0:0/80 verdict=drop", PING6_(.dst = "2001:db8::9"), false,
	  "dst v6 /80 out (bit 79, the last one)" },
	{ "dst=2001:db8::1:0:0:0/79 verdict=drop", PING6_(.dst = "2001:db8::9"), true,
	  "dst v6 /79 in (bit 79 is outside)" },
	{ "dst=2001:db8::5 verdict=drop", PING6_(.dst = "2001:db8::5"), true, "dst v6 host" },
	{ "dst=2001:db8::5 verdict=drop", PING6_(.dst = "2001:db8::4"), false, "dst v6 host other" },
	{ "dst=!2001:db8::/32 verdict=drop", PING6_(.dst = "fd00::1"), true, "dst v6 ! out" },
	{ "proto=udp sport=40000 verdict=drop", UDP4_(), true, "sport" },
	{ "proto=udp sport=40001 verdict=drop", UDP4_(), false, "sport other" },
	{ "proto=udp dport=50-60 verdict=drop", UDP4_(), true, "dport range in" },
	{ "proto=udp dport=50-52 verdict=drop", UDP4_(), false, "dport range out" },
	{ "proto=udp dport=53-53 verdict=drop", UDP6_(), true, "dport range of one" },
	{ "proto=udp dport=!53 verdict=drop", UDP4_(), false, "dport !53 on 53" },
	{ "proto=udp dport=!54-65535 verdict=drop", UDP4_(), true, "dport ! range" },
	{ "proto=tcp dport=80 verdict=drop", TCP4_(), true, "tcp dport" },
	{ "proto=udp dport=53 verdict=drop", UDP4_(.frag_off = 100), false,
	  "dport never matches a non-first fragment" },
	{ "proto=udp dport=!53 verdict=drop", UDP4_(.frag_off = 100), false,
	  "negated dport never matches a non-first fragment" },
	{ "proto=udp dport=!53 verdict=drop", UDP6_(.frag_off = 100), false,
	  "negated dport never matches a v6 non-first fragment" },
	{ "proto=udp dst=203.0.113.0/24 verdict=drop", UDP4_(.frag_off = 100), true,
	  "L3 keys match a non-first fragment" },
	{ "family=ip6 length=76 verdict=drop", UDP6_(.frag_off = 3, .payload = 20), true,
	  "length matches a v6 fragment" },
	{ "icmp-type=echo-request verdict=drop", PING4_(), true, "echo-request without proto, v4" },
	{ "icmp-type=echo-request verdict=drop", PING6_(), true, "echo-request without proto, v6" },
	{ "icmp-type=echo-request verdict=drop", PING4_(.icmp_type = 128), false,
	  "the v6 number in ICMPv4 does not match" },
	{ "icmp-type=echo-request verdict=drop", PING6_(.icmp_type = 8), false,
	  "the v4 number in ICMPv6 does not match" },
	{ "icmp-type=echo-request verdict=drop", UDP4_(.sport = 8, .dport = 8), false,
	  "icmp-type does not match UDP" },
	{ "icmp-type=packet-too-big verdict=drop", PING6_(.icmp_type = 2), true, "v6-only name, v6" },
	{ "icmp-type=packet-too-big verdict=drop", PING4_(.icmp_type = 2), false, "v6-only name, v4" },
	{ "proto=icmp icmp-type=echo-reply verdict=drop", PING4_(.icmp_type = 0), true, "echo-reply v4" },
	{ "proto=icmpv6 icmp-type=echo-reply verdict=drop", PING6_(.icmp_type = 129), true,
	  "echo-reply v6" },
	{ "proto=icmp icmp-type=echo-reply verdict=drop", PING4_(), false, "echo-reply vs request" },
	{ "family=ip6 icmp-type=1 verdict=drop", PING6_(.icmp_type = 1, .icmp_code = 4), true,
	  "numeric type with family" },
	{ "proto=icmp icmp-code=3 verdict=drop", PING4_(.icmp_type = 3, .icmp_code = 3), true, "icmp-code" },
	{ "proto=icmp icmp-code=3 verdict=drop", PING4_(.icmp_type = 3, .icmp_code = 1), false,
	  "icmp-code other" },
	{ "icmp-type=dest-unreachable icmp-code=4 verdict=drop",
	  PING6_(.icmp_type = 1, .icmp_code = 4), true, "type and code v6" },
	{ "proto=tcp tcp-flags=syn verdict=drop", TCP4_(.tcp_flags = 0x02), true, "syn on SYN" },
	{ "proto=tcp tcp-flags=syn verdict=drop", TCP4_(.tcp_flags = 0x12), true, "syn on SYN-ACK" },
	{ "proto=tcp tcp-flags=syn,!ack verdict=drop", TCP4_(.tcp_flags = 0x12), false,
	  "syn,!ack on SYN-ACK" },
	{ "proto=tcp tcp-flags=syn,!ack verdict=drop", TCP6_(.tcp_flags = 0x02), true,
	  "syn,!ack on SYN" },
	{ "proto=tcp tcp-flags=!syn verdict=drop", TCP4_(.tcp_flags = 0x10), true, "!syn on ACK" },
	{ "proto=tcp tcp-flags=cwr verdict=drop", TCP4_(.tcp_flags = 0x90), true, "cwr" },
	{ "proto=tcp tcp-flags=fin,ack verdict=drop", TCP4_(.tcp_flags = 0x10), false, "fin missing" },
	{ "ttl=64 verdict=drop", UDP4_(), true, "ttl" },
	{ "ttl=65-255 verdict=drop", UDP4_(), false, "ttl range out" },
	{ "ttl=1-2 verdict=drop", UDP6_(.ttl = 2), true, "hop limit range" },
	{ "ttl=0 verdict=drop", UDP6_(.ttl = 255), false, "ttl 0 vs 255" },
	{ "length=48 verdict=drop", UDP4_(), true, "length v4 (20 + 8 + 20)" },
	{ "length=49-1500 verdict=drop", UDP4_(), false, "length range out" },
	{ "length=68 verdict=drop", UDP6_(), true, "length v6 (40 + 8 + 20)" },
	{ "dscp=ef verdict=drop", UDP4_(.tos = 46 << 2 | 3), true, "dscp ef with CE" },
	{ "dscp=ef verdict=drop", UDP4_(.tos = 44 << 2), false, "dscp va is not ef" },
	{ "dscp=af41 verdict=drop", UDP6_(.tos = 34 << 2 | 1), true, "dscp v6 traffic class" },
	{ "dscp=0 verdict=drop", UDP6_(.tos = 3), true, "dscp 0 with ECN set" },
	{ "probability=1 verdict=drop", UDP4_(), true, "probability=1" },
	{ "verdict=drop", UDP4_(), true, "no direction=: outbound" },
	{ "verdict=drop", UDP4_(.dir = PKT_DIR_IN), false, "no direction=: not inbound" },
	{ "direction=out verdict=drop", UDP4_(.dir = PKT_DIR_IN), false, "direction=out, inbound" },
	{ "direction=in verdict=drop", UDP4_(.dir = PKT_DIR_IN), true, "direction=in, inbound" },
	{ "direction=in verdict=drop", UDP4_(), false, "direction=in, outbound" },
	{ "direction=in dst=203.0.113.0/24 proto=udp dport=53 verdict=drop",
	  UDP4_(.dir = PKT_DIR_IN), true, "direction=in keyed, inbound" },
	{ "direction=in dst=203.0.113.0/24 proto=udp dport=53 verdict=drop", UDP4_(), false,
	  "direction=in keyed, outbound" },
	{ "direction=both verdict=drop", UDP6_(.dir = PKT_DIR_IN), true, "direction=both, inbound" },
	{ "direction=both verdict=drop", UDP6_(), true, "direction=both, outbound" },
	{ "probability=0 verdict=drop", UDP4_(), false, "probability=0" },
	{ "name=all family=ip proto=tcp src=10.0.0.0/8 dst=!192.0.2.0/24 sport=1024-65535 dport=80 "
	  "tcp-flags=syn,!ack ttl=64 length=40 dscp=0 verdict=drop", TCP4_(.tcp_flags = 0x02), true,
	  "every key at once" },
	{ "name=all family=ip proto=tcp src=10.0.0.0/8 dst=!192.0.2.0/24 sport=1024-65535 dport=80 "
	  "tcp-flags=syn,!ack ttl=64 length=41 dscp=0 verdict=drop", TCP4_(.tcp_flags = 0x02), false,
	  "every key at once, one off" },
};

static void test_matches(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(matches); i++) {
		int v = verdict1(matches[i].rule, matches[i].pkt);

		is_int(v, matches[i].match ? CHAIN_DROP : CHAIN_ACCEPT, "match: %s", matches[i].what);
	}
}

/* ---- actions --------------------------------------------------------------- */

/* Run one packet through a one-rule chain, return the packet (rewritten). */
static int run1(const char *line, struct tpkt *t, struct spec s)
{
	struct tpkt f;
	struct chain *c = chain_of(line, NULL);
	int v;

	if (!c || !build(t, &s)) {
		chain_unref(c);
		return -1;
	}
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = (int)chain_run(c, &t->p, &f.p, 1);
	chain_unref(c);
	return v;
}

static uint16_t tcp_mss(const struct pkt *p)
{
	const uint8_t *tcp = p->data + p->l4off;

	for (size_t off = 20; off + 4 <= (size_t)(tcp[12] >> 4) * 4;) {
		if (tcp[off] == 1) {
			off++;
			continue;
		}
		if (tcp[off] == 2)
			return get16(tcp + off + 2);
		off += tcp[off + 1];
	}
	return 0;
}

static void test_actions(void)
{
	static const struct {
		const char *rule;
		struct spec pkt;
		int ttl;
		int dscp, ecn;
		int mss;
		const char *what;
	} acts[] = {
		{ "set-ttl=64", UDP4_(.ttl = 30), 64, 0, 0, -1, "set-ttl=64 v4" },
		{ "set-ttl=1", UDP4_(.ttl = 255), 1, 0, 0, -1, "set-ttl=1 v4" },
		{ "set-ttl=255", TCP4_(.ttl = 1), 255, 0, 0, -1, "set-ttl=255 tcp" },
		{ "set-ttl=64", UDP6_(.ttl = 30), 64, 0, 0, -1, "set-ttl=64 v6" },
		{ "set-ttl=64", UDP4_(.ttl = 64), 64, 0, 0, -1, "set-ttl to the same value" },
		{ "set-ttl=+1", UDP4_(.ttl = 63), 64, 0, 0, -1, "+1" },
		{ "set-ttl=+10", UDP4_(.ttl = 250), 255, 0, 0, -1, "+10 saturates at 255" },
		{ "set-ttl=+255", PING6_(.ttl = 1), 255, 0, 0, -1, "+255 from 1" },
		{ "set-ttl=-1", UDP4_(.ttl = 64), 63, 0, 0, -1, "-1" },
		{ "set-ttl=-10", UDP4_(.ttl = 5), 1, 0, 0, -1, "-10 saturates at 1" },
		{ "set-ttl=-5", UDP6_(.ttl = 5), 1, 0, 0, -1, "-5 from 5 gives 1, not 0" },
		{ "set-ttl=-255", PING4_(.ttl = 255), 1, 0, 0, -1, "-255 from 255" },
		{ "set-dscp=ef", UDP4_(.tos = 2), 64, 46, 2, -1, "set-dscp keeps ECN v4" },
		{ "set-dscp=cs0", UDP6_(.tos = 46 << 2 | 3), 64, 0, 3, -1, "set-dscp keeps ECN v6" },
		{ "set-dscp=63", TCP6_(.tos = 1), 64, 63, 1, -1, "set-dscp 63 v6" },
		{ "set-ecn=ce", UDP4_(.tos = 10 << 2), 64, 10, 3, -1, "set-ecn keeps DSCP v4" },
		{ "set-ecn=not-ect", UDP6_(.tos = 46 << 2 | 2), 64, 46, 0, -1, "set-ecn keeps DSCP v6" },
		{ "set-ecn=ect1 set-dscp=af11 set-ttl=9", PING4_(.tos = 0xff), 9, 10, 1, -1,
		  "three actions in one rule" },
		{ "clamp-mss=1360", TCP4_(.tcp_flags = 0x02, .mss = 1460), 64, 0, 0, 1360, "clamp SYN v4" },
		{ "clamp-mss=1360", TCP6_(.tcp_flags = 0x12, .mss = 1440), 64, 0, 0, 1360,
		  "clamp SYN-ACK v6" },
		{ "direction=in clamp-mss=1360", TCP4_(.tcp_flags = 0x12, .mss = 1460, .dir = PKT_DIR_IN),
		  64, 0, 0, 1360, "clamp an inbound SYN-ACK v4" },
		{ "direction=in clamp-mss=1360", TCP6_(.tcp_flags = 0x12, .mss = 1440, .dir = PKT_DIR_IN),
		  64, 0, 0, 1360, "clamp an inbound SYN-ACK v6" },
		{ "clamp-mss=1360", TCP4_(.tcp_flags = 0x12, .mss = 1460, .dir = PKT_DIR_IN), 64, 0, 0,
		  1460, "an outbound clamp leaves an inbound SYN-ACK alone" },
		{ "direction=both set-ttl=5", UDP4_(.dir = PKT_DIR_IN), 5, 0, 0, -1,
		  "set-ttl inbound: the value as given" },
		{ "direction=in set-ttl=5", UDP4_(), 64, 0, 0, -1, "an inbound rule leaves outbound alone" },
		{ "clamp-mss=1360", TCP4_(.tcp_flags = 0x02, .mss = 1460, .mss_after_nop = true), 64, 0, 0,
		  1360, "clamp an MSS that is not 16-bit aligned" },
		{ "clamp-mss=1360", TCP4_(.tcp_flags = 0x02, .mss = 1200), 64, 0, 0, 1200,
		  "a lower MSS is left alone" },
		{ "clamp-mss=1360", TCP4_(.tcp_flags = 0x10, .mss = 1460), 64, 0, 0, 1460,
		  "not a SYN: left alone" },
		{ "clamp-mss=536", TCP6_(.tcp_flags = 0x02, .mss = 65535, .payload = 3), 64, 0, 0, 536,
		  "clamp to 536 with odd payload" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(acts); i++) {
		struct tpkt t;
		int v = run1(acts[i].rule, &t, acts[i].pkt);
		bool right = v == CHAIN_ACCEPT && pkt_ttl(&t.p) == acts[i].ttl &&
			    pkt_dscp(&t.p) == acts[i].dscp && pkt_ecn(&t.p) == acts[i].ecn &&
			    (acts[i].mss < 0 || tcp_mss(&t.p) == acts[i].mss);

		if (!ok(right, "action: %s", acts[i].what))
			diag("verdict %d ttl %u dscp %u ecn %u mss %u", v, pkt_ttl(&t.p),
			     pkt_dscp(&t.p), pkt_ecn(&t.p), tcp_mss(&t.p));
		ok(csums_ok(&t.p), "action: %s: checksums right", acts[i].what);
	}

	/* A UDP v4 checksum of 0 (none) stays 0 when the header changes. */
	{
		struct tpkt t;
		struct chain *c = chain_of("set-ttl=3 set-dscp=ef", NULL);

		build(&t, &UDP4());
		put16(t.buf + 20 + 6, 0);
		pkt_parse(&t.p);
		chain_run(c, &t.p, NULL, 1);
		ok(get16(t.buf + 26) == 0 && csums_ok(&t.p) && pkt_ttl(&t.p) == 3,
		   "UDP without checksum keeps 0");
		chain_unref(c);
	}
}

/* ---- chain behaviour --------------------------------------------------------- */

static void test_order(void)
{
	struct tpkt t;
	struct chain *c;
	uint64_t pkts;

	c = chain_of("verdict=drop", "verdict=accept", NULL);
	is_int(chain_run(c, pk(&t, UDP4()), NULL, 1), CHAIN_DROP, "first verdict wins (drop)");
	chain_unref(c);
	c = chain_of("verdict=accept", "verdict=drop", NULL);
	is_int(chain_run(c, pk(&t, UDP4()), NULL, 1), CHAIN_ACCEPT, "first verdict wins (accept)");
	chain_unref(c);

	c = chain_of("set-ttl=10", "proto=tcp verdict=drop", "set-dscp=ef", "set-ttl=+5",
		     "ttl=15 set-ecn=ce", "ttl=15 verdict=accept", "set-ttl=99", NULL);
	is_int(chain_run(c, pk(&t, UDP4(.ttl = 64)), NULL, 1), CHAIN_ACCEPT,
	       "modifying actions continue to a later verdict");
	ok(pkt_ttl(&t.p) == 15 && pkt_dscp(&t.p) == 46 && pkt_ecn(&t.p) == 3,
	   "modifications accumulate and later rules see them (ttl %u dscp %u ecn %u)",
	   pkt_ttl(&t.p), pkt_dscp(&t.p), pkt_ecn(&t.p));
	ok(csums_ok(&t.p), "accumulated rewrites keep checksums right");
	chain_counters(c, 1, &pkts, NULL);
	is_int(pkts, 0, "the non-matching rule did not count");
	chain_counters(c, 6, &pkts, NULL);
	is_int(pkts, 0, "the rule after the verdict did not count");
	chain_unref(c);

	c = chain_of("set-ttl=1", "set-ttl=+2", NULL);
	is_int(chain_run(c, pk(&t, PING6(.ttl = 200)), NULL, 1), CHAIN_ACCEPT,
	       "only modifying rules: accept");
	is_int(pkt_ttl(&t.p), 3, "both applied in order");
	chain_unref(c);

	c = chain_of("proto=tcp verdict=drop", "dst=192.0.2.0/24 verdict=drop", NULL);
	is_int(chain_run(c, pk(&t, UDP4()), NULL, 1), CHAIN_ACCEPT, "no match: default accept");
	chain_unref(c);
	c = chain_of(NULL);
	ok(c && chain_size(c) == 0, "an empty chain");
	if (c)
		is_int(chain_run(c, pk(&t, TCP6()), NULL, 1), CHAIN_ACCEPT, "empty chain: accept");
	chain_unref(c);

	c = chain_of("proto=udp verdict=drop", NULL);
	build(&t, &UDP4(.payload = 100));
	memcpy(t.buf + 1000, t.buf, t.p.len);
	chain_run(c, &t.p, NULL, 1);
	ok(memcmp(t.buf, t.buf + 1000, t.p.len) == 0, "a plain verdict leaves the packet untouched");
	chain_unref(c);
}

static void test_counters(void)
{
	struct tpkt t;
	struct chain *c = chain_of("name=udp proto=udp set-ttl=+1", "name=v6 family=ip6 verdict=drop",
				   "name=never proto=gre verdict=drop", NULL);
	struct chain_stats st;
	uint64_t pkts, bytes;

	if (!c) {
		ok(0, "counters chain");
		return;
	}
	chain_run(c, pk(&t, UDP4(.payload = 20)), NULL, 1);	/* 48 bytes */
	chain_run(c, pk(&t, UDP6(.payload = 2)), NULL, 1);	/* 50 bytes */
	chain_run(c, pk(&t, PING6(.payload = 0)), NULL, 1);	/* 48 bytes */
	chain_run(c, pk(&t, TCP4()), NULL, 1);			/* 40 bytes, nothing */

	chain_counters(c, 0, &pkts, &bytes);
	ok(pkts == 2 && bytes == 98, "rule 1 counted 2 packets, 98 bytes (%" PRIu64 ", %" PRIu64 ")", pkts, bytes);
	chain_counters(c, 1, &pkts, &bytes);
	ok(pkts == 2 && bytes == 98, "rule 2 counted 2 packets, 98 bytes (%" PRIu64 ", %" PRIu64 ")", pkts, bytes);
	chain_counters(c, 2, &pkts, &bytes);
	ok(pkts == 0 && bytes == 0, "rule 3 counted nothing");
	chain_counters(c, 3, &pkts, &bytes);
	ok(pkts == 0 && bytes == 0, "out of range index reads zero");
	chain_stats(c, &st);
	ok(st.forged == 0 && st.forge_refused == 0 && st.forge_limited == 0, "no forging stats");

	chain_reset_counters(c);
	chain_counters(c, 0, &pkts, &bytes);
	ok(pkts == 0 && bytes == 0, "chain_reset_counters() zeroes");

	is_int(chain_find(c, "v6"), 1, "chain_find");
	is_int(chain_find(c, "nope"), -ENOENT, "chain_find unknown");
	is_str(rule_name(chain_rule(c, 2)), "never", "chain_rule");
	ok(chain_rule(c, 3) == NULL, "chain_rule out of range");
	ok(chain_ref(c) == c, "chain_ref");
	chain_unref(c);
	chain_counters(c, 1, &pkts, NULL);
	ok(pkts == 2 || pkts == 0, "still alive after ref+unref");
	ok(chain_unref(c) == NULL && chain_unref(NULL) == NULL, "chain_unref returns NULL");
}

static void test_names(void)
{
	struct rule *r[4];
	struct chain *c = NULL;
	char err[256] = "";
	int ret;

	r[0] = rule_of("name=a verdict=drop");
	r[1] = rule_of("set-ttl=1");
	r[2] = rule_of("name=a verdict=accept");
	r[3] = rule_of("verdict=accept");

	ret = chain_new(r, 3, &c, err, sizeof(err));
	ok(ret == -EEXIST && !c, "duplicate names are rejected");
	ok(strstr(err, "'a'") && strstr(err, "rule 3") && strstr(err, "rule 1"),
	   "message names the rules: %s", err);

	ret = chain_new((struct rule *[]){ r[0], r[1], r[3] }, 3, &c, err, sizeof(err));
	ok(ret == 0 && c, "unnamed rules are fine");
	if (c) {
		is_str(rule_name(chain_rule(c, 1)), "rule-2", "unnamed rule 2 is rule-2");
		is_str(rule_name(chain_rule(c, 2)), "rule-3", "unnamed rule 3 is rule-3");
		is_int(chain_find(c, "rule-3"), 2, "chain_find a default name");
		is_str(rule_name(r[1]), "", "the caller's rule keeps no name");
		c = chain_unref(c);
	}

	rule_free(r[2]);
	r[2] = rule_of("name=rule-2 verdict=accept");
	ret = chain_new((struct rule *[]){ r[2], r[1] }, 2, &c, err, sizeof(err));
	ok(ret == -EEXIST && !c, "an explicit name equal to a default name is rejected: %s", err);

	ret = chain_new((struct rule *[]){ r[0], NULL }, 2, &c, err, sizeof(err));
	ok(ret == -EINVAL && !c, "a NULL rule is rejected");
	ok(chain_new(r, CHAIN_RULES_MAX + 1, &c, err, sizeof(err)) == -E2BIG && !c,
	   "more than CHAIN_RULES_MAX rules: -E2BIG");

	for (size_t i = 0; i < 4; i++)
		rule_free(r[i]);

	/* Many rules: uniqueness is checked by sorting, not pairwise. */
	{
		enum { N = 5000 };
		static struct rule *many[N];
		char line[64];

		for (size_t i = 0; i < N; i++) {
			snprintf(line, sizeof(line), "name=n%zu verdict=drop", (i * 7919) % N);
			many[i] = rule_of(line);
		}
		ret = chain_new(many, N, &c, err, sizeof(err));
		ok(ret == 0, "%d distinct names", N);
		is_int(chain_find(c, "n4999"), (4999 * 2679) % N, "chain_find among many");
		c = chain_unref(c);
		rule_free(many[N - 1]);
		many[N - 1] = rule_of("name=n1234 verdict=drop");
		ret = chain_new(many, N, &c, err, sizeof(err));
		ok(ret == -EEXIST && !c, "a duplicate among many: %s", err);
		for (size_t i = 0; i < N; i++)
			rule_free(many[i]);
	}
}

/* ---- forging --------------------------------------------------------------- */

static bool same_addr(const struct pkt *a, const uint8_t *b_addr, const uint8_t *a_addr)
{
	return memcmp(a_addr, b_addr, a->family == AF_INET ? 4 : 16) == 0;
}

static void test_reply(void)
{
	struct tpkt t, f;
	struct chain *c = chain_of("name=fake-ping icmp-type=echo-request dst=192.0.2.0/24 verdict=reply",
				   "name=fake-ping6 icmp-type=echo-request dst=2001:db8::/32 verdict=reply",
				   "name=udp proto=udp dst=192.0.2.0/24 verdict=reply", NULL);
	struct chain_stats st;
	enum chain_verdict v;
	uint64_t pkts;

	if (!c) {
		ok(0, "reply chain");
		return;
	}
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run(c, pk(&t, PING4(.dst = "192.0.2.9", .payload = 24)), &f.p, 1);
	is_int(v, CHAIN_FORGED, "echo request v4: forged");
	ok(f.p.len == t.p.len && f.p.family == AF_INET && f.p.l4proto == IPPROTO_ICMP &&
	   f.p.l4_complete && f.p.icmp_type == 0 && f.p.icmp_code == 0,
	   "an echo reply of the same length");
	ok(same_addr(&f.p, pkt_saddr(&f.p), pkt_daddr(&t.p)) &&
	   same_addr(&f.p, pkt_daddr(&f.p), pkt_saddr(&t.p)), "addresses swapped");
	ok(memcmp(f.p.data + 24, t.p.data + 24, t.p.len - 24) == 0, "id, sequence and data echoed");
	ok(csums_ok(&f.p), "reply checksums right");
	ok(memcmp(pkt_daddr(&t.p), "\xc0\x00\x02\x09", 4) == 0 && t.p.icmp_type == 8,
	   "the request is left as it was");

	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run(c, pk(&t, PING6(.dst = "2001:db8:1::1")), &f.p, 1);
	is_int(v, CHAIN_FORGED, "echo request v6: forged");
	ok(f.p.family == AF_INET6 && f.p.l4proto == IPPROTO_ICMPV6 && f.p.icmp_type == 129 &&
	   same_addr(&f.p, pkt_saddr(&f.p), pkt_daddr(&t.p)) &&
	   same_addr(&f.p, pkt_daddr(&f.p), pkt_saddr(&t.p)), "an ICMPv6 echo reply, swapped");
	ok(csums_ok(&f.p), "v6 reply checksums right");

	chain_stats(c, &st);
	is_int(st.forged, 2, "forged counted");

	v = chain_run(c, pk(&t, PING4(.dst = "224.0.0.1")), &f.p, 1);
	is_int(v, CHAIN_ACCEPT, "multicast outside the rule's dst: accepted");

	chain_unref(c);
	c = chain_of("icmp-type=echo-request verdict=reply", NULL);
	chain_stats(c, &st);
	v = chain_run(c, pk(&t, PING4(.dst = "224.0.0.1")), &f.p, 1);
	is_int(v, CHAIN_DROP, "echo request to multicast v4: dropped, not answered");
	v = chain_run(c, pk(&t, PING6(.dst = "ff02::1")), &f.p, 1);
	is_int(v, CHAIN_DROP, "echo request to multicast v6: dropped, not answered");
	chain_stats(c, &st);
	ok(st.forged == 0 && st.forge_refused == 2 && st.forge_limited == 0,
	   "counted as refused (%" PRIu64 ")", st.forge_refused);
	chain_counters(c, 0, &pkts, NULL);
	is_int(pkts, 2, "the rule still counted them");
	v = chain_run(c, pk(&t, PING4(.icmp_type = 0)), &f.p, 1);
	is_int(v, CHAIN_ACCEPT, "an echo reply does not match icmp-type=echo-request");
	v = chain_run(c, pk(&t, PING4()), NULL, 1);
	is_int(v, CHAIN_DROP, "no forge buffer: dropped");
	chain_unref(c);

	c = chain_of("verdict=reply", NULL);
	v = chain_run(c, pk(&t, UDP4()), &f.p, 1);
	is_int(v, CHAIN_DROP, "reply to a non-echo packet: consumed (dropped)");
	v = chain_run(c, pk(&t, PING4(.icmp_type = 3, .icmp_code = 1)), &f.p, 1);
	is_int(v, CHAIN_DROP, "reply to an ICMP error: dropped");
	v = chain_run(c, pk(&t, PING4(.frag_off = 10)), &f.p, 1);
	is_int(v, CHAIN_DROP, "reply to a non-first fragment: dropped");
	chain_stats(c, &st);
	ok(st.forged == 0 && st.forge_refused == 3, "all refused");
	v = chain_run(c, pk(&t, PING4()), &f.p, 1);
	is_int(v, CHAIN_FORGED, "a rule without icmp-type answers an echo request");
	chain_unref(c);

	/* Actions before the reply apply to the request; the reply is built from it. */
	c = chain_of("set-ttl=5 verdict=reply", NULL);
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run(c, pk(&t, PING4()), &f.p, 1);
	ok(v == CHAIN_FORGED && pkt_ttl(&t.p) == 5 && csums_ok(&f.p),
	   "actions in a reply rule apply first");
	chain_unref(c);
}

static void test_reject(void)
{
	struct tpkt t, f;
	struct chain *c = chain_of("name=telnet proto=tcp dport=23 verdict=reject reject-with=tcp-reset",
				   "name=snmp proto=udp dport=161 verdict=reject",
				   "name=net proto=udp dport=1 verdict=reject reject-with=net-unreachable",
				   "name=host proto=udp dport=2 verdict=reject reject-with=host-unreachable",
				   "name=admin proto=udp dport=3 verdict=reject reject-with=admin-prohibited",
				   "name=proto proto=47 verdict=reject reject-with=proto-unreachable",
				   "name=drop dst=198.51.100.0/24 verdict=drop", NULL);
	static const struct {
		struct spec pkt;
		int type, code;
		const char *what;
	} unreach[] = {
		{ UDP4_(.dport = 161), 3, 3, "port-unreachable v4" },
		{ UDP6_(.dport = 161), 1, 4, "port-unreachable v6" },
		{ UDP4_(.dport = 1), 3, 0, "net-unreachable v4" },
		{ UDP6_(.dport = 1), 1, 0, "net-unreachable (no route) v6" },
		{ UDP4_(.dport = 2), 3, 1, "host-unreachable v4" },
		{ UDP6_(.dport = 2), 1, 3, "host-unreachable (address) v6" },
		{ UDP4_(.dport = 3), 3, 13, "admin-prohibited v4" },
		{ UDP6_(.dport = 3), 1, 1, "admin-prohibited v6" },
		{ { .proto = 47, .payload = 12 }, 3, 2, "proto-unreachable v4" },
	};
	struct chain_stats st;
	enum chain_verdict v;

	if (!c) {
		ok(0, "reject chain");
		return;
	}
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run(c, pk(&t, TCP4(.dport = 23, .tcp_flags = 0x02)), &f.p, 1);
	is_int(v, CHAIN_FORGED, "tcp dport 23: forged");
	ok(f.p.family == AF_INET && f.p.l4proto == IPPROTO_TCP && f.p.l4_complete &&
	   (f.p.tcp_flags & 0x04) && f.p.sport == 23 && f.p.dport == 40000 &&
	   same_addr(&f.p, pkt_saddr(&f.p), pkt_daddr(&t.p)) &&
	   same_addr(&f.p, pkt_daddr(&f.p), pkt_saddr(&t.p)), "a TCP RST from the destination");
	ok(csums_ok(&f.p), "RST checksums right");

	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run(c, pk(&t, TCP6(.dport = 23)), &f.p, 1);
	ok(v == CHAIN_FORGED && f.p.family == AF_INET6 && (f.p.tcp_flags & 0x04) &&
	   f.p.sport == 23 && csums_ok(&f.p), "a TCP RST v6");

	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run(c, pk(&t, TCP4(.dport = 23, .tcp_flags = 0x14)), &f.p, 1);
	is_int(v, CHAIN_DROP, "no RST in answer to a RST: dropped");

	for (size_t i = 0; i < ARRAY_SIZE(unreach); i++) {
		size_t quote;

		f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
		v = chain_run(c, pk(&t, unreach[i].pkt), &f.p, 1);
		quote = f.p.family == AF_INET ? 28 : 48;
		if (!ok(v == CHAIN_FORGED && f.p.l4_complete &&
			f.p.l4proto == (f.p.family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6) &&
			f.p.icmp_type == unreach[i].type && f.p.icmp_code == unreach[i].code,
			"%s", unreach[i].what))
			diag("verdict %d type %u code %u", v, f.p.icmp_type, f.p.icmp_code);
		ok(v == CHAIN_FORGED && f.p.len > quote + 20 &&
		   memcmp(f.p.data + quote, t.p.data, 20) == 0 &&
		   same_addr(&f.p, pkt_daddr(&f.p), pkt_saddr(&t.p)) && csums_ok(&f.p),
		   "%s: quotes the request, goes to its source, checksums right", unreach[i].what);
	}

	v = chain_run(c, pk(&t, UDP4(.dst = "198.51.100.3")), &f.p, 1);
	is_int(v, CHAIN_DROP, "the rest of 198.51.100.0/24: dropped");
	chain_stats(c, &st);
	ok(st.forged == 2 + ARRAY_SIZE(unreach) && st.forge_refused == 1,
	   "stats: %" PRIu64 " forged, %" PRIu64 " refused", st.forged, st.forge_refused);
	chain_unref(c);

	c = chain_of("verdict=reject", NULL);
	v = chain_run(c, pk(&t, PING4(.icmp_type = 3)), &f.p, 1);
	is_int(v, CHAIN_DROP, "no unreachable in answer to an ICMP error");
	v = chain_run(c, pk(&t, UDP4(.dst = "239.1.2.3")), &f.p, 1);
	is_int(v, CHAIN_DROP, "no unreachable in answer to multicast");
	chain_unref(c);
}

static void test_rate_limit(void)
{
	struct tpkt t, f;
	struct chain *c = chain_of("icmp-type=echo-request verdict=reply", NULL);
	const uint64_t t0 = 5000000000ULL, ms = 1000000ULL;
	unsigned int forged = 0;
	struct chain_stats st;
	enum chain_verdict v;

	if (!c) {
		ok(0, "rate limit chain");
		return;
	}
	for (int i = 0; i < CHAIN_FORGE_BURST; i++) {
		f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
		forged += chain_run(c, pk(&t, PING4()), &f.p, t0) == CHAIN_FORGED;
	}
	is_int(forged, CHAIN_FORGE_BURST, "a burst of %d is answered", CHAIN_FORGE_BURST);
	v = chain_run(c, pk(&t, PING4()), &f.p, t0);
	is_int(v, CHAIN_DROP, "the next one at the same time is dropped");
	chain_stats(c, &st);
	ok(st.forged == CHAIN_FORGE_BURST && st.forge_limited == 1, "counted as rate-limited");

	v = chain_run(c, pk(&t, PING4()), &f.p, t0 + ms / 2);
	is_int(v, CHAIN_DROP, "half a token later: still dropped");
	v = chain_run(c, pk(&t, PING4()), &f.p, t0 + NSEC_PER_SEC_TEST / CHAIN_FORGE_RATE);
	is_int(v, CHAIN_FORGED, "one token later: answered");
	v = chain_run(c, pk(&t, PING4()), &f.p, t0 + NSEC_PER_SEC_TEST / CHAIN_FORGE_RATE);
	is_int(v, CHAIN_DROP, "and the bucket is empty again");
	v = chain_run(c, pk(&t, PING4()), &f.p, t0);
	is_int(v, CHAIN_DROP, "a clock going backwards refills nothing");

	forged = 0;
	for (int i = 0; i < 3 * CHAIN_FORGE_BURST; i++) {
		f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
		forged += chain_run(c, pk(&t, PING4()), &f.p, t0 + 10 * NSEC_PER_SEC_TEST) ==
			  CHAIN_FORGED;
	}
	is_int(forged, CHAIN_FORGE_BURST, "after 10 s idle: one burst, not more");

	/* Sustained: over one second at 5x the rate, about the rate gets through. */
	forged = 0;
	for (int i = 0; i < 5 * CHAIN_FORGE_RATE; i++) {
		uint64_t now = t0 + 20 * NSEC_PER_SEC_TEST + (uint64_t)i * NSEC_PER_SEC_TEST /
								 (5 * CHAIN_FORGE_RATE);

		f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
		forged += chain_run(c, pk(&t, PING4()), &f.p, now) == CHAIN_FORGED;
	}
	ok(forged >= CHAIN_FORGE_RATE + CHAIN_FORGE_BURST - 2 &&
	   forged <= CHAIN_FORGE_RATE + CHAIN_FORGE_BURST + 1,
	   "sustained flood: %u of %d answered in 1 s", forged, 5 * CHAIN_FORGE_RATE);

	/* Refused requests cost no token. */
	chain_unref(c);
	c = chain_of("verdict=reply", NULL);
	for (int i = 0; i < 2 * CHAIN_FORGE_BURST; i++)
		chain_run(c, pk(&t, PING4(.dst = "224.0.0.5")), &f.p, t0);
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	is_int(chain_run(c, pk(&t, PING4()), &f.p, t0), CHAIN_FORGED,
	       "refused requests do not use up the bucket");
	chain_stats(c, &st);
	ok(st.forge_refused == 2 * CHAIN_FORGE_BURST && st.forge_limited == 0 && st.forged == 1,
	   "stats after refusals");
	chain_unref(c);
}

static void test_probability(void)
{
	struct tpkt t;
	struct chain *c0 = chain_of("probability=0 verdict=drop", NULL);
	struct chain *c1 = chain_of("probability=1 verdict=drop", NULL);
	struct chain *ch = chain_of("probability=0.5 verdict=drop", NULL);
	struct chain *cq = chain_of("probability=0.01 verdict=drop", NULL);
	struct chain *ca = chain_of("probability=0.3 verdict=drop", NULL);
	struct chain *cb = chain_of("probability=0.3 verdict=drop", NULL);
	unsigned int n0 = 0, n1 = 0, nh = 0, nq = 0, differ = 0;
	const unsigned int N = 100000;

	if (!c0 || !c1 || !ch || !cq || !ca || !cb) {
		ok(0, "probability chains");
		goto out;
	}
	build(&t, &UDP4());
	for (unsigned int i = 0; i < N; i++) {
		n0 += chain_run(c0, &t.p, NULL, 1) == CHAIN_DROP;
		n1 += chain_run(c1, &t.p, NULL, 1) == CHAIN_DROP;
		nh += chain_run(ch, &t.p, NULL, 1) == CHAIN_DROP;
		nq += chain_run(cq, &t.p, NULL, 1) == CHAIN_DROP;
		differ += chain_run(ca, &t.p, NULL, 1) != chain_run(cb, &t.p, NULL, 1);
	}
	is_int(n0, 0, "probability=0 never matches");
	is_int(n1, N, "probability=1 always matches");
	ok(nh > N / 2 - 1000 && nh < N / 2 + 1000, "probability=0.5: %u of %u", nh, N);
	ok(nq > N / 100 - 300 && nq < N / 100 + 300, "probability=0.01: %u of %u", nq, N);
	is_int(differ, 0, "the same seed gives the same sequence");
	chain_seed(cb, 7);
	differ = 0;
	for (unsigned int i = 0; i < 1000; i++)
		differ += chain_run(ca, &t.p, NULL, 1) != chain_run(cb, &t.p, NULL, 1);
	ok(differ > 100, "another seed another sequence (%u of 1000 differ)", differ);
out:
	chain_unref(c0);
	chain_unref(c1);
	chain_unref(ch);
	chain_unref(cq);
	chain_unref(ca);
	chain_unref(cb);
}

/* ---- impairment -------------------------------------------------------------- */

#define MS_NS 1000000ULL
#define T0 (7 * NSEC_PER_SEC_TEST)

/* One packet through c with an impair out-parameter; the verdict. */
static enum chain_verdict run_imp(struct chain *c, struct tpkt *t, struct spec s, uint64_t now,
				  struct chain_impair *imp)
{
	struct tpkt f;

	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	return chain_run_impair(c, pk(t, s), &f.p, now, NULL, imp);
}

static struct impair_counters icnt(const struct chain *c, size_t i)
{
	struct impair_counters ic;

	chain_impair_counters(c, i, &ic);
	return ic;
}

static void test_impair_verdicts(void)
{
	struct chain *c = chain_of("name=plain proto=tcp set-ttl=5",
				   "name=slow proto=udp dport=53 delay=50",
				   "name=gone proto=udp dport=54 loss=1",
				   "name=kept proto=udp dport=55 loss=0",
				   "name=twice proto=udp dport=56 duplicate=1",
				   "name=late-twins proto=udp dport=57 duplicate=1 delay=10 jitter=2",
				   "name=jump proto=udp dport=58 delay=10 reorder=1",
				   "name=flip proto=udp dport=59 corrupt=1", NULL);
	struct chain_impair imp;
	struct chain_trace tr;
	struct impair_counters ic;
	struct tpkt t, f;
	enum chain_verdict v;
	uint8_t copy[2048];

	if (!c) {
		ok(0, "impairment chain");
		return;
	}
	v = run_imp(c, &t, TCP4(), T0, &imp);
	ok(v == CHAIN_ACCEPT && !imp.impaired, "a rule that does not impair: accept, not impaired");
	ok(!chain_impair_counters(c, 0, &ic) && ic.delayed == 0,
	   "chain_impair_counters: false for a rule that does not impair");

	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run_impair(c, pk(&t, UDP4()), &f.p, T0, &tr, &imp);
	ok(v == CHAIN_ACCEPT && imp.impaired && imp.rule == 1 && imp.id == chain_rule_id(c, 1) &&
	   imp.now_ns == T0, "delay=50: accept, impaired by rule 2 (its id %u)", imp.id);
	ok(imp.res.n == 1 && imp.res.copy[0].at_ns == T0 + 50 * MS_NS && !imp.res.copy[0].corrupt,
	   "one copy, due 50 ms later");
	is_int(imp.events, CHAIN_IMPAIR_DELAYED, "events: delayed");
	ok(tr.result == CHAIN_RESULT_ACCEPT && tr.n == 1 && tr.idx[0] == 1,
	   "the trace: rule 2, result accept");
	ok(chain_impair_counters(c, 1, &ic) && ic.delayed == 1, "counted delayed");
	is_int(chain_run(c, pk(&t, UDP4()), NULL, T0 + MS_NS), CHAIN_DROP,
	       "chain_run() cannot hold the copy: drop");
	is_int(icnt(c, 1).delayed, 2, "and it still counts as delayed");

	v = run_imp(c, &t, UDP4(.dport = 54), T0, &imp);
	ok(v == CHAIN_DROP && imp.impaired && imp.res.n == 0 && imp.events == CHAIN_IMPAIR_LOST,
	   "loss=1: drop, impaired, no copy, events: lost");
	is_int(icnt(c, 2).dropped_loss, 1, "counted dropped by loss");
	v = run_imp(c, &t, UDP4(.dport = 55), T0, &imp);
	ok(v == CHAIN_ACCEPT && imp.impaired && imp.res.n == 1 && imp.res.copy[0].at_ns == T0 &&
	   imp.events == 0, "loss=0: accept at once, impaired, no events");

	v = run_imp(c, &t, UDP4(.dport = 56), T0, &imp);
	ok(v == CHAIN_ACCEPT && imp.res.n == 2 && imp.res.copy[0].at_ns == T0 &&
	   imp.res.copy[1].at_ns == T0 && imp.events == CHAIN_IMPAIR_DUPLICATED,
	   "duplicate=1: two copies, both at once");
	is_int(icnt(c, 4).duplicated, 1, "counted duplicated");
	is_int(chain_run(c, pk(&t, UDP4(.dport = 56)), NULL, T0), CHAIN_ACCEPT,
	       "chain_run(): the copy due at once is accepted");

	v = run_imp(c, &t, UDP4(.dport = 57), T0, &imp);
	ok(v == CHAIN_ACCEPT && imp.res.n == 2 &&
	   imp.res.copy[0].at_ns >= T0 + 8 * MS_NS && imp.res.copy[0].at_ns <= T0 + 12 * MS_NS &&
	   imp.res.copy[1].at_ns >= T0 + 8 * MS_NS && imp.res.copy[1].at_ns <= T0 + 12 * MS_NS &&
	   imp.res.copy[0].at_ns != imp.res.copy[1].at_ns &&
	   imp.events == (CHAIN_IMPAIR_DUPLICATED | CHAIN_IMPAIR_DELAYED),
	   "duplicate=1 delay=10 jitter=2: two copies, each with its own delay in 8..12 ms");

	v = run_imp(c, &t, UDP4(.dport = 58), T0, &imp);
	ok(v == CHAIN_ACCEPT && imp.res.n == 1 && imp.res.copy[0].at_ns == T0 &&
	   imp.events == CHAIN_IMPAIR_REORDERED, "reorder=1: at once, past the delayed ones");
	is_int(icnt(c, 6).reordered, 1, "counted reordered");

	/* Corruption is the caller's to apply: with impair, the packet is untouched. */
	v = run_imp(c, &t, UDP4(.dport = 59, .payload = 40), T0, &imp);
	memcpy(copy, t.buf, t.p.len);
	ok(v == CHAIN_ACCEPT && imp.res.n == 1 && imp.res.copy[0].corrupt &&
	   imp.events == CHAIN_IMPAIR_CORRUPTED && csums_verify(t.buf, t.p.len),
	   "corrupt=1: copy 0 marked, the packet still intact");
	ok(chain_impair_corrupt(c, &t.p) >= (int)(t.p.l4off + 8) * 8 && !csums_verify(t.buf, t.p.len) &&
	   memcmp(copy, t.buf, t.p.l4off) == 0,
	   "chain_impair_corrupt(): a payload bit, the IP header intact, the UDP checksum wrong");
	v = chain_run(c, pk(&t, UDP4(.dport = 59, .payload = 40)), NULL, T0);
	ok(v == CHAIN_ACCEPT && !csums_verify(t.buf, t.p.len) && memcmp(copy, t.buf, t.p.l4off) == 0,
	   "chain_run() corrupts the packet it accepts itself");
	is_int(icnt(c, 7).corrupted, 2, "counted corrupted twice");

	chain_reset_counters(c);
	ic = icnt(c, 1);
	ok(ic.delayed == 0 && icnt(c, 2).dropped_loss == 0 && icnt(c, 4).duplicated == 0,
	   "chain_reset_counters() zeroes the impairment counters");
	chain_unref(c);

	/* reply and reject: the forged packet is impaired. */
	c = chain_of("name=pong icmp-type=echo-request verdict=reply delay=20",
		     "name=refuse proto=udp verdict=reject delay=30 duplicate=1", NULL);
	if (!c) {
		ok(0, "forging impairment chain");
		return;
	}
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run_impair(c, pk(&t, PING4()), &f.p, T0, &tr, &imp);
	ok(v == CHAIN_FORGED && imp.impaired && imp.res.n == 1 &&
	   imp.res.copy[0].at_ns == T0 + 20 * MS_NS && tr.result == CHAIN_RESULT_REPLY &&
	   f.p.icmp_type == 0, "reply delay=20: the forged echo reply waits 20 ms");
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = chain_run_impair(c, pk(&t, UDP4()), &f.p, T0, &tr, &imp);
	ok(v == CHAIN_FORGED && imp.res.n == 2 && imp.res.copy[1].at_ns == T0 + 30 * MS_NS &&
	   tr.result == CHAIN_RESULT_REJECT, "reject: the port unreachable, twice, 30 ms later");
	v = chain_run_impair(c, pk(&t, PING4(.dst = "224.0.0.1")), &f.p, T0, &tr, &imp);
	ok(v == CHAIN_DROP && !imp.impaired && tr.result == CHAIN_RESULT_REFUSED,
	   "nothing forged (multicast): dropped, nothing impaired");
	is_int(icnt(c, 0).delayed, 1, "only the forged reply was delayed");
	chain_unref(c);
}

static void test_impair_limit(void)
{
	struct chain *c = chain_of("name=q delay=100 limit=2", NULL);
	struct chain_impair imp;
	struct impair_counters ic;
	struct tpkt t;
	enum chain_verdict v;

	if (!c) {
		ok(0, "limit chain");
		return;
	}
	run_imp(c, &t, UDP4(), T0, &imp);
	run_imp(c, &t, UDP4(), T0 + 1, &imp);
	v = run_imp(c, &t, UDP4(), T0 + 2, &imp);
	ok(v == CHAIN_DROP && imp.impaired && imp.res.n == 0 && imp.events == CHAIN_IMPAIR_LIMITED,
	   "limit=2: the third waiting packet is dropped, events: limited");
	v = run_imp(c, &t, UDP4(), T0 + 100 * MS_NS, &imp);
	is_int(v, CHAIN_ACCEPT, "once the first has left, there is room again");
	ic = icnt(c, 0);
	ok(ic.delayed == 3 && ic.dropped_limit == 1, "counted: 3 delayed, 1 over the limit");

	/* The caller's own queue refuses a copy. */
	chain_impair_refused(c, &imp, 0);
	ic = icnt(c, 0);
	ok(ic.delayed == 2 && ic.dropped_limit == 2 && imp.res.n == 0 &&
	   (imp.events & CHAIN_IMPAIR_LIMITED), "chain_impair_refused(): delayed becomes dropped-limit");
	chain_impair_refused(c, &imp, 0);
	ok(icnt(c, 0).dropped_limit == 2, "a copy that is not there is not counted");
	chain_unref(c);
}

static void test_impair_seed(void)
{
	struct chain *a = chain_of("name=lossy loss=0.3", NULL);
	struct chain *b = chain_of("name=lossy loss=0.3", NULL);
	unsigned int lost = 0, differ = 0;
	struct chain_impair ia, ib;
	struct tpkt t;
	const unsigned int N = 20000;

	if (!a || !b) {
		ok(0, "seed chains");
		goto out;
	}
	for (unsigned int i = 0; i < N; i++) {
		lost += run_imp(a, &t, UDP4(), T0, &ia) == CHAIN_DROP;
		run_imp(b, &t, UDP4(), T0, &ib);
		differ += ia.res.n != ib.res.n;
	}
	ok(lost > N * 3 / 10 - 400 && lost < N * 3 / 10 + 400, "loss=0.3: %u of %u lost", lost, N);
	is_int(icnt(a, 0).dropped_loss, lost, "every loss counted");
	is_int(differ, 0, "the same seed loses the same packets");
	chain_seed(b, 43);
	differ = 0;
	for (unsigned int i = 0; i < 1000; i++) {
		run_imp(a, &t, UDP4(), T0, &ia);
		run_imp(b, &t, UDP4(), T0, &ib);
		differ += ia.res.n != ib.res.n;
	}
	ok(differ > 200, "chain_seed() reseeds impairment too (%u of 1000 differ)", differ);
out:
	chain_unref(a);
	chain_unref(b);
}

static struct chain *inherit_of(struct chain *old, struct chain *c)
{
	if (c && old)
		chain_inherit(c, old);
	return c;
}

/* loss-ecn: ECT packets leave CE-marked with valid checksums, not-ECT ones are lost. */
static void test_impair_ecn(void)
{
	struct chain *c = chain_of("name=mark loss=1 loss-ecn=true",
				   "name=table delay=10 jitter=5 "
				   "distribution=@/proc/self/nonexistent-table", NULL);
	struct chain *ct = NULL;
	struct chain_impair imp;
	struct tpkt t;
	enum chain_verdict v;

	ok(!c, "a rule with a missing table file does not parse");
	c = chain_of("name=mark loss=1 loss-ecn=true", NULL);
	if (!c) {
		ok(0, "loss-ecn chain");
		return;
	}
	v = run_imp(c, &t, UDP4(.tos = 0xb8 | 2), T0, &imp);
	ok(v == CHAIN_ACCEPT && imp.res.n == 1 && imp.res.ce && (imp.events & CHAIN_IMPAIR_CE),
	   "ECT(0) over IPv4: sent, marked");
	ok(t.buf[1] == (0xb8 | 3) && csums_verify(t.buf, t.p.len),
	   "CE set, DSCP kept, IPv4 header checksum valid");
	v = run_imp(c, &t, TCP6(.tos = 1), T0, &imp);
	ok(v == CHAIN_ACCEPT && imp.res.ce && pkt_ecn(&t.p) == 3 && csums_verify(t.buf, t.p.len),
	   "ECT(1) over IPv6: CE in the traffic class");
	v = run_imp(c, &t, UDP4(.tos = 0xb8), T0, &imp);
	ok(v == CHAIN_DROP && !imp.res.ce && imp.res.n == 0, "not-ECT: lost");
	ok(icnt(c, 0).ce_marked == 2 && icnt(c, 0).dropped_loss == 1, "counted: 2 ce_marked, 1 lost");
	chain_unref(c);

	/* A file table outlives the parsed rule: the chain holds a reference. */
	{
		char line[256];
		FILE *f = fopen("/tmp/test-chain-table.dist", "w");

		if (f) {
			fputs("# two values\n-8192 8192\n", f);
			fclose(f);
		}
		snprintf(line, sizeof(line), "delay=100 jitter=10 distribution=@%s",
			 "/tmp/test-chain-table.dist");
		ct = chain_of(line, NULL);
		unlink("/tmp/test-chain-table.dist");
	}
	if (!ct) {
		ok(0, "table chain");
		return;
	}
	v = run_imp(ct, &t, UDP4(), T0, &imp);
	ok(v == CHAIN_ACCEPT && imp.res.n == 1 && (imp.res.copy[0].at_ns == T0 + 90 * MS_NS ||
						   imp.res.copy[0].at_ns == T0 + 110 * MS_NS),
	   "the table of a freed rule still drives the chain: 90 or 110 ms");
	chain_unref(ct);
}

static void test_impair_inherit(void)
{
	struct chain *c1 = chain_of("name=a proto=udp dport=53 delay=100 limit=3",
				    "name=b proto=udp dport=54 loss=1",
				    "name=c proto=tcp set-ttl=5",
				    "name=d proto=udp dport=55 duplicate=1", NULL);
	struct chain *c2 = NULL, *c3 = NULL;
	struct chain_impair imp;
	struct impair_counters ic;
	struct tpkt t;
	uint64_t pkts;
	uint32_t id_a, id_b, id_c, id_d;
	enum chain_verdict v;

	if (!c1) {
		ok(0, "inherit chain");
		return;
	}
	ok(chain_rule_id(c1, 0) == 1 && chain_rule_id(c1, 3) == 4 && chain_rule_id(c1, 4) == 0,
	   "chain_new(): ids 1..n in order, 0 out of range");
	id_a = chain_rule_id(c1, 0);
	id_b = chain_rule_id(c1, 1);
	id_c = chain_rule_id(c1, 2);
	id_d = chain_rule_id(c1, 3);
	for (int i = 0; i < 3; i++)
		run_imp(c1, &t, UDP4(), T0 + (uint64_t)i, &imp);	/* a holds 3, its limit */
	run_imp(c1, &t, UDP4(.dport = 54), T0, &imp);
	run_imp(c1, &t, TCP4(), T0, &imp);
	run_imp(c1, &t, UDP4(.dport = 55), T0, &imp);

	/* b changed, d deleted, e new, a and c unchanged but moved. */
	c2 = inherit_of(c1, chain_of("name=e proto=udp dport=56 delay=5",
				     "name=c proto=tcp set-ttl=5",
				     "name=b proto=udp dport=54 loss=0.5",
				     "name=a proto=udp dport=53 delay=100 limit=3", NULL));
	if (!c2) {
		ok(0, "second chain");
		goto out;
	}
	ok(chain_rule_id(c2, 3) == id_a && chain_rule_id(c2, 1) == id_c,
	   "unchanged rules keep their ids where they moved (a %u, c %u)", id_a, id_c);
	ok(chain_rule_id(c2, 2) != id_b && chain_rule_id(c2, 0) != id_b &&
	   chain_rule_id(c2, 2) > id_d && chain_rule_id(c2, 0) > id_d &&
	   chain_rule_id(c2, 0) != chain_rule_id(c2, 2),
	   "the changed and the new rule get ids no rule of the old chain had (%u, %u)",
	   chain_rule_id(c2, 2), chain_rule_id(c2, 0));
	ok(chain_find_id(c2, id_a) == 3 && chain_find_id(c2, id_c) == 1 &&
	   chain_find_id(c2, id_b) == -ENOENT && chain_find_id(c2, id_d) == -ENOENT,
	   "chain_find_id(): the kept ids, not the ids that went");
	ic = icnt(c2, 3);
	chain_counters(c2, 3, &pkts, NULL);
	ok(ic.delayed == 3 && pkts == 3, "a's packet and impairment counters carried");
	chain_counters(c2, 1, &pkts, NULL);
	is_int(pkts, 1, "c's packet counter carried");
	ic = icnt(c2, 2);
	chain_counters(c2, 2, &pkts, NULL);
	ok(ic.dropped_loss == 0 && pkts == 0, "the changed b starts from zero");
	v = run_imp(c2, &t, UDP4(), T0 + 10, &imp);
	ok(v == CHAIN_DROP && imp.events == CHAIN_IMPAIR_LIMITED && imp.id == id_a,
	   "a's held copies were carried: its limit of 3 is still full");
	v = run_imp(c2, &t, UDP4(), T0 + 100 * MS_NS, &imp);
	ok(v == CHAIN_ACCEPT && imp.res.n == 1, "and frees up when they leave");

	/* A second generation: ids stay stable, new ones keep growing. */
	c3 = inherit_of(c2, chain_of("name=a proto=udp dport=53 delay=100 limit=3",
				     "name=b proto=udp dport=54 loss=0.5",
				     "name=f proto=udp dport=57 delay=1", NULL));
	if (!c3) {
		ok(0, "third chain");
		goto out;
	}
	ok(chain_rule_id(c3, 0) == id_a && chain_rule_id(c3, 1) == chain_rule_id(c2, 2),
	   "ids stable over two inherits");
	ok(chain_rule_id(c3, 2) > chain_rule_id(c2, 0) && chain_rule_id(c3, 2) > chain_rule_id(c2, 2),
	   "a rule new in the third chain gets an id above every earlier one");
	ok(icnt(c3, 0).delayed == 4 && icnt(c3, 0).dropped_limit == 1,
	   "a's counters carried twice (4 delayed, 1 over the limit)");
out:
	chain_unref(c1);
	chain_unref(c2);
	chain_unref(c3);
}

/*
 * A reload plans the inheritance in its thread (chain_inherit_match()) while
 * the old chain still runs packets; chain_inherit() at the swap then carries
 * the counters as they are at the swap, with the same ids as an unplanned
 * inherit.  A plan made against another chain is not used.
 */
static void test_inherit_planned(void)
{
	struct chain *old = chain_of("name=a proto=udp dport=53 delay=100 limit=3",
				     "name=c proto=tcp set-ttl=5", "name=d proto=udp dport=55 verdict=accept",
				     NULL);
	struct chain *other = chain_of("name=c proto=tcp set-ttl=5", NULL);
	struct chain *p = NULL, *q = NULL, *r = NULL;
	struct chain_impair imp;
	struct tpkt t;
	uint64_t pkts;
	bool same = true;

	if (!old || !other) {
		ok(0, "planned inherit: chains");
		goto out;
	}
#define NEXT() chain_of("name=e proto=udp dport=56 verdict=drop", "name=c proto=tcp set-ttl=5", \
			"name=a proto=udp dport=53 delay=100 limit=3", NULL)
	p = NEXT();
	q = NEXT();
	r = NEXT();
#undef NEXT
	if (!p || !q || !r) {
		ok(0, "planned inherit: new chains");
		goto out;
	}
	run_imp(old, &t, TCP4(), T0, &imp);
	chain_inherit_match(p, old);
	/* Packets between the plan and the swap count. */
	run_imp(old, &t, TCP4(), T0 + 1, &imp);
	run_imp(old, &t, UDP4(), T0 + 2, &imp);
	chain_inherit(p, old);
	chain_inherit(q, old);
	for (size_t i = 0; i < 3; i++)
		same &= chain_rule_id(p, i) == chain_rule_id(q, i);
	ok(same, "planned and unplanned inherit give the same ids (%u %u %u)",
	   chain_rule_id(p, 0), chain_rule_id(p, 1), chain_rule_id(p, 2));
	ok(chain_find_id(p, chain_rule_id(old, 0)) == 2 && chain_find_id(p, chain_rule_id(p, 0)) == 0,
	   "chain_find_id() works on the planned chain");
	chain_counters(p, 1, &pkts, NULL);
	is_int(pkts, 2, "c's packets up to the swap carried, those after the plan too");
	chain_counters(p, 2, &pkts, NULL);
	is_int(pkts, 1, "a's packet after the plan carried");
	ok(icnt(p, 2).delayed == 1, "a's impairment state carried through the plan");
	/* A plan against another chain: chain_inherit() matches again. */
	chain_inherit_match(r, other);
	chain_inherit(r, old);
	chain_counters(r, 2, &pkts, NULL);
	ok(pkts == 1 && chain_rule_id(r, 2) == chain_rule_id(old, 0),
	   "a plan made against another chain is not used");
out:
	chain_unref(old);
	chain_unref(other);
	chain_unref(p);
	chain_unref(q);
	chain_unref(r);
}

/*
 * chain_explain() tells what chain_run_trace() does, without doing it: the
 * same matched rules and result for random packets built by
 * explain_packet(), rewrites seen by later rules included, and no counter
 * moved.  A probability= rule is listed as maybe and walked past.
 */
static void test_explain(void)
{
	static const char *const lines[] = {
		"name=ttl-low ttl=1-5 set-ttl=64",
		"name=udp-high proto=udp ttl=60-64 dport=5000-5010 verdict=drop",
		"name=mark proto=tcp dport=!22 set-dscp=ef",
		"name=ef-udp dscp=ef proto=udp verdict=accept",
		"name=ef-syn dscp=ef proto=tcp tcp-flags=syn,!ack dport=80 verdict=reject reject-with=tcp-reset",
		"name=pong proto=icmp icmp-type=echo-request dst=198.18.1.128/25 verdict=reply",
		"name=unreach proto=icmp dst=198.18.1.0/26 verdict=reject",
		"name=pong6 proto=icmpv6 icmp-type=echo-request verdict=reply",
		"name=big length=1000-1500 set-ecn=ect0",
		"name=dns proto=udp sport=1000-1999 dport=53 verdict=drop",
		"name=tail ttl=64 set-ttl=-1",
		"name=last proto=tcp dst=198.18.1.200/29 verdict=drop",
	};
	static const char *const protos[] = { "tcp", "udp", "icmp", "icmpv6" };
	static const char *const dsts4[] = { "198.18.1.1", "198.18.1.60", "198.18.1.130", "198.18.1.201" };
	static const char *const flags[] = { "syn", "syn,ack", "ack", "rst", "fin,ack" };
	static const char *const types[] = { "echo-request", "echo-reply", "3", "11" };
	static uint8_t b1[EXPLAIN_BUF_MAX], b2[EXPLAIN_BUF_MAX], f1[EXPLAIN_BUF_MAX], f2[EXPLAIN_BUF_MAX];
	struct rule *rules[ARRAY_SIZE(lines)];
	struct chain *c = NULL;
	struct chain_explain ex;
	struct chain_trace tr;
	struct rule_kv kv[12];
	char err[256], v[8][32];
	uint64_t now = 1000000000ULL, pkts, bytes, pkts2, bytes2;
	unsigned int agree = 0, runs = 0, results = 0;
	struct pkt p1, p2, fo1, fo2;
	bool fail = false;

	for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
		fail |= !(rules[i] = rule_of(lines[i]));
	if (!fail && chain_new(rules, ARRAY_SIZE(lines), &c, err, sizeof(err)) < 0)
		diag("chain_new: %s", err);
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
		rule_free(rules[i]);
	if (!ok(c != NULL, "explain: chain of %zu rules", ARRAY_SIZE(lines)))
		return;

	rs = 19;
	for (int i = 0; i < 3000; i++) {
		const char *proto = protos[rnd(4)];
		bool v6 = !strcmp(proto, "icmpv6"), l4ports = !strcmp(proto, "tcp") || !strcmp(proto, "udp");
		size_t n = 0;
		int r;

		kv[n++] = (struct rule_kv){ "proto", proto };
		kv[n++] = (struct rule_kv){ "dst", v6 ? "2001:db8:1::5" : dsts4[rnd(4)] };
		snprintf(v[0], sizeof(v[0]), "%u", (unsigned int)(rnd(8)) * 9 + 1);
		kv[n++] = (struct rule_kv){ "ttl", v[0] };
		snprintf(v[1], sizeof(v[1]), "%s", rnd(2) ? "ef" : "0");
		kv[n++] = (struct rule_kv){ "dscp", v[1] };
		snprintf(v[2], sizeof(v[2]), "%u", (v6 ? 40u : 20u) + (strcmp(proto, "tcp") ? 8u : 20u) +
			 rnd(4) * 400);
		kv[n++] = (struct rule_kv){ "len", v[2] };
		if (l4ports) {
			snprintf(v[3], sizeof(v[3]), "%u", (unsigned int)(rnd(3)) * 800 + 1000);
			snprintf(v[4], sizeof(v[4]), "%u", (unsigned int[]){ 22, 53, 80, 5005, 443 }[rnd(5)]);
			kv[n++] = (struct rule_kv){ "sport", v[3] };
			kv[n++] = (struct rule_kv){ "dport", v[4] };
		}
		if (!strcmp(proto, "tcp"))
			kv[n++] = (struct rule_kv){ "flags", flags[rnd(5)] };
		if (!l4ports)
			kv[n++] = (struct rule_kv){ "icmp-type", v6 ? "echo-request" : types[rnd(4)] };
		r = explain_packet(kv, n, b1, sizeof(b1), &p1, err, sizeof(err));
		if (r < 0) {
			diag("explain_packet: %s", err);
			fail = true;
			break;
		}
		memcpy(b2, b1, p1.len);
		p2 = p1;
		p2.data = b2;
		fo1 = (struct pkt){ .data = f1, .cap = sizeof(f1) };
		fo2 = (struct pkt){ .data = f2, .cap = sizeof(f2) };
		chain_counters(c, 0, &pkts, &bytes);
		chain_explain(c, &p1, &fo1, &ex);
		chain_counters(c, 0, &pkts2, &bytes2);
		fail |= pkts2 != pkts || bytes2 != bytes;
		/* 2 ms apart: the forge rate limit (1000/s) never bites. */
		now += 2000000;
		chain_run_trace(c, &p2, &fo2, now, &tr);
		runs++;
		results |= 1u << ex.result;
		if (ex.n == tr.n && !memcmp(ex.idx, tr.idx, ex.n * sizeof(ex.idx[0])) &&
		    ex.result == tr.result && p1.len == p2.len && !memcmp(b1, b2, p1.len))
			agree++;
		else if (runs - agree <= 3)
			diag("differ: explain %u rules result %d, run %u rules result %d", ex.n,
			     ex.result, tr.n, tr.result);
	}
	ok(!fail, "explain: packets built, no counter moved by chain_explain");
	is_int(agree, runs,
	       "explain: same rules, result and rewritten bytes as chain_run_trace (%u packets)",
	       runs);
	ok(results == (1u << CHAIN_RESULT_DEFAULT | 1u << CHAIN_RESULT_ACCEPT | 1u << CHAIN_RESULT_DROP |
		       1u << CHAIN_RESULT_REPLY | 1u << CHAIN_RESULT_REJECT | 1u << CHAIN_RESULT_REFUSED),
	   "explain: every result met (0x%x)", results);
	chain_unref(c);

	c = chain_of("name=maybe proto=udp probability=0.5 set-ttl=9 verdict=drop",
		     "name=then proto=udp ttl=64 verdict=accept", NULL);
	if (!c) {
		ok(0, "probability chain");
		return;
	}
	kv[0] = (struct rule_kv){ "proto", "udp" };
	kv[1] = (struct rule_kv){ "dst", "192.0.2.7" };
	explain_packet(kv, 2, b1, sizeof(b1), &p1, err, sizeof(err));
	fo1 = (struct pkt){ .data = f1, .cap = sizeof(f1) };
	chain_explain(c, &p1, &fo1, &ex);
	ok(ex.n == 2 && ex.maybe[0] && !ex.maybe[1] && ex.idx[1] == 1 &&
	   ex.result == CHAIN_RESULT_ACCEPT && ex.end == 1,
	   "explain: a probability= rule is a maybe, the walk goes on without its actions");
	chain_unref(c);
}

static void test_explain_packet(void)
{
	static uint8_t buf[EXPLAIN_BUF_MAX];
	static const struct {
		const char *line;
		int r;
		const char *msg;
	} cases[] = {
		{ "proto=tcp dst=192.0.2.7 direction=in", 0, "" },
		{ "proto=tcp dst=192.0.2.7 direction=sideways", -EINVAL, "expected out or in" },
		{ "proto=tcp dst=192.0.2.7 direction=both", -EINVAL, "expected out or in" },
		{ "proto=tcp dst=192.0.2.7 direction=in direction=in", -EINVAL, "given twice" },
		{ "proto=tcp dst=192.0.2.7 verdict=drop", -EINVAL, "not a packet field" },
		{ "proto=tcp dport=80", -EINVAL, "dst= is needed" },
		{ "dst=192.0.2.7", -EINVAL, "proto= is needed" },
		{ "proto=tcp dst=192.0.2.0/24", -EINVAL, "not prefixes" },
		{ "proto=tcp dst=192.0.2.7 dport=1-5", -EINVAL, "no range" },
		{ "proto=tcp dst=192.0.2.7 dport=!80", -EINVAL, "no '!'" },
		{ "proto=tcp dst=192.0.2.7 flags=syn,!ack", -EINVAL, "without '!'" },
		{ "proto=tcp dst=192.0.2.7 len=39", -EINVAL, "the headers alone are 40" },
		{ "proto=udp dst=192.0.2.7 flags=syn", -EINVAL, "needs proto=tcp" },
		{ "proto=tcp dst=192.0.2.7 direction=out len=1500 flags=syn,ack ttl=3 dscp=ef", 0, "" },
		{ "proto=icmpv6 dst=2001:db8::7", 0, "" },
		{ "proto=47 dst=192.0.2.7", 0, "" },
	};
	struct rule_kv kv[RULELINE_KV_MAX];
	char words[256], err[256];
	struct pkt p;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t n = rule_split(cases[i].line, words, sizeof(words), kv);
		int r;

		err[0] = '\0';
		r = explain_packet(kv, n, buf, sizeof(buf), &p, err, sizeof(err));
		if (!ok(r == cases[i].r && strstr(err, cases[i].msg), "explain_packet %s: %d",
			cases[i].line, cases[i].r))
			diag("  -> %d %s", r, err);
	}
	/* The last good one, field by field. */
	rule_split("proto=tcp dst=192.0.2.7 sport=1234 dport=443 len=1500 flags=syn,ack ttl=3 dscp=ef",
		   words, sizeof(words), kv);
	is_int(explain_packet(kv, 8, buf, sizeof(buf), &p, err, sizeof(err)), 0, "explain_packet tcp");
	ok(p.family == AF_INET && p.l4proto == IPPROTO_TCP && p.len == 1500 && p.sport == 1234 &&
	   p.dport == 443 && p.tcp_flags == 0x12 && pkt_ttl(&p) == 3 && pkt_dscp(&p) == 46 &&
	   p.l4_complete && !memcmp(pkt_saddr(&p), "\xc0\x00\x02\x01", 4),
	   "explain_packet: the fields as given, src 192.0.2.1 by default");
	ok(p.dir == PKT_DIR_OUT, "explain_packet: outbound without direction=");
	{
		struct chain *c = chain_of("name=in direction=in proto=tcp verdict=drop",
					   "name=out proto=tcp verdict=accept", NULL);
		static uint8_t fbuf[EXPLAIN_BUF_MAX];
		struct pkt forged = { .data = fbuf, .cap = sizeof(fbuf) };
		struct chain_explain ex;
		size_t n = rule_split("proto=tcp dst=192.0.2.7 direction=in", words, sizeof(words), kv);

		is_int(explain_packet(kv, n, buf, sizeof(buf), &p, err, sizeof(err)), 0,
		       "explain_packet direction=in");
		ok(p.dir == PKT_DIR_IN, "explain_packet direction=in: an inbound packet");
		chain_explain(c, &p, &forged, &ex);
		ok(ex.n == 1 && ex.idx[0] == 0 && ex.result == CHAIN_RESULT_DROP,
		   "explain an inbound packet: the inbound rule only");
		n = rule_split("proto=tcp dst=192.0.2.7 direction=out", words, sizeof(words), kv);
		explain_packet(kv, n, buf, sizeof(buf), &p, err, sizeof(err));
		chain_explain(c, &p, &forged, &ex);
		ok(ex.n == 1 && ex.idx[0] == 1 && ex.result == CHAIN_RESULT_ACCEPT,
		   "explain an outbound packet: the outbound rule only");
		chain_unref(c);
	}
}

/* An inbound packet's reject and reply go to its source; an outbound rule leaves it alone. */
static void test_direction_forge(void)
{
	struct chain *c = chain_of("name=in-rst direction=in proto=tcp dport=22 verdict=reject "
				   "reject-with=tcp-reset",
				   "name=in-pong direction=in proto=icmp verdict=reply",
				   "name=out-drop proto=tcp verdict=drop", NULL);
	struct spec in_tcp = TCP4(.src = "198.51.100.9", .dst = "10.0.0.2", .sport = 50000,
				  .dport = 22, .tcp_flags = 0x02, .dir = PKT_DIR_IN);
	struct spec in_ping = PING4(.src = "198.51.100.9", .dst = "10.0.0.2", .dir = PKT_DIR_IN);
	struct tpkt t, f;
	uint8_t src[4];
	int v;

	if (!c) {
		ok(0, "direction forge chain");
		return;
	}
	inet_pton(AF_INET, "198.51.100.9", src);
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = (int)chain_run(c, pk(&t, in_tcp), &f.p, 1);
	ok(v == CHAIN_FORGED && f.p.l4proto == IPPROTO_TCP && (f.p.tcp_flags & 0x04) &&
	   !memcmp(pkt_daddr(&f.p), src, 4) && f.p.dport == 50000 && f.p.sport == 22,
	   "reject of an inbound SYN: a reset to its source, from the port it tried");
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = (int)chain_run(c, pk(&t, in_ping), &f.p, 1);
	ok(v == CHAIN_FORGED && f.p.icmp_type == 0 && !memcmp(pkt_daddr(&f.p), src, 4),
	   "reply to an inbound echo request: an echo reply to its source");
	in_tcp.dport = 23;
	is_int(chain_run(c, pk(&t, in_tcp), &f.p, 1), CHAIN_ACCEPT,
	       "an inbound packet no inbound rule matches: accepted (the outbound drop is not tried)");
	in_tcp.dir = PKT_DIR_OUT;
	is_int(chain_run(c, pk(&t, in_tcp), &f.p, 1), CHAIN_DROP,
	       "the same packet outbound: the outbound drop");
	chain_unref(c);
}

/* ---- surgery (issue 15) ------------------------------------------------------- */

static void test_surgery(void)
{
	struct tpkt t, f;
	struct chain_cut cut;
	struct chain_trace tr;
	struct chain_explain ex;
	struct chain *c;
	int v;

	/* fake=@FIFO: refused at once, never a read that waits for a writer. */
	{
		char fifo[64], line[96], err[256];
		struct rule *r = NULL;
		size_t bad;

		snprintf(fifo, sizeof(fifo), "/tmp/test-chain-fifo.%d", (int)getpid());
		unlink(fifo);
		if (mkfifo(fifo, 0600) == 0) {
			snprintf(line, sizeof(line), "fake=@%s", fifo);
			ok(rule_parse_line(line, &r, &bad, err, sizeof(err)) == -EINVAL && !r &&
			   strstr(err, "not a regular file"), "fake=@FIFO refused: %s", err);
			unlink(fifo);
		} else {
			ok(0, "mkfifo %s", fifo);
		}
	}

	/* set-field and strip rewrite like set-ttl: the chain goes on, checksums follow. */
	v = run1("set-field=tcp.window=1000,ip.id=7,tcp.sport=1234 strip-tcp-option=mss", &t,
		 TCP4(.tcp_flags = 0x02, .mss = 1460, .payload = 11));
	ok(v == CHAIN_ACCEPT && get16(t.p.data + t.p.l4off + 14) == 1000 && get16(t.p.data + 4) == 7 &&
	   tcp_mss(&t.p) == 0 && t.p.sport == 1234, "set-field and strip-tcp-option v4");
	ok(csums_ok(&t.p), "set-field v4: checksums right");
	v = run1("set-field=ip6.flowlabel=0x12345,ip6.src=2001:db8::99,tcp.ack=5", &t,
		 TCP6(.payload = 3));
	ok(v == CHAIN_ACCEPT && (get16(t.p.data + 2) | (t.p.data[1] & 0xf) << 16) == 0x12345 &&
	   t.p.data[23] == 0x99, "set-field v6 (flow label, source address)");
	ok(csums_ok(&t.p), "set-field v6: the pseudo-header sum follows the address");
	v = run1("set-field=udp.dport=99", &t, UDP4());
	ok(v == CHAIN_ACCEPT && t.p.dport == 99 && csums_ok(&t.p), "set-field udp.dport, parsed again");
	v = run1("set-field=tcp.window=1", &t, UDP4());
	ok(v == CHAIN_ACCEPT && csums_ok(&t.p), "a field of another protocol: skipped");

	/* A later rule sees the rewritten packet. */
	c = chain_of("set-field=tcp.dport=8080", "name=b proto=tcp dport=8080 verdict=drop", NULL);
	build(&t, &TCP4());
	ok(c && chain_run(c, &t.p, NULL, 1) == CHAIN_DROP, "a rule after set-field matches the new port");
	build(&t, &TCP4());
	if (c)
		chain_set_linear(c, true);
	ok(c && chain_run(c, &t.p, NULL, 1) == CHAIN_DROP, "the same without the index");
	chain_unref(c);
	c = chain_of("proto=tcp set-field=tcp.dport=8080", "name=b proto=tcp dport=80 verdict=drop",
		     NULL);
	build(&t, &TCP4());
	ok(c && chain_run(c, &t.p, NULL, 1) == CHAIN_ACCEPT,
	   "a rule for the old port no longer matches after set-field");
	chain_unref(c);

	/* A cutting rule ends the chain with accept and says so. */
	c = chain_of("name=ttl set-ttl=9", "name=cut proto=tcp split=1", "name=after verdict=drop", NULL);
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	build(&t, &TCP4(.payload = 10));
	v = c ? (int)chain_run_cut(c, &t.p, &f.p, 1, &tr, NULL, &cut) : -1;
	ok(v == CHAIN_ACCEPT && cut.cut && cut.rule == 1 && cut.s && cut.s->nsplit == 1 &&
	   tr.n == 2 && tr.result == CHAIN_RESULT_ACCEPT && pkt_ttl(&t.p) == 9,
	   "chain_run_cut: the cut rule (1) ends the chain, accepted, after set-ttl");
	build(&t, &UDP4());
	v = c ? (int)chain_run_cut(c, &t.p, &f.p, 1, &tr, NULL, &cut) : -1;
	ok(v == CHAIN_DROP && !cut.cut, "chain_run_cut: a packet the cut rule does not match: no cut");
	build(&t, &TCP4(.payload = 10));
	v = c ? (int)chain_run(c, &t.p, &f.p, 1) : -1;
	ok(v == CHAIN_ACCEPT, "chain_run: a cutting rule accepts (whole) for a caller that cannot cut");
	build(&t, &TCP4(.payload = 10));
	if (c)
		chain_explain(c, &t.p, &f.p, &ex);
	ok(c && ex.result == CHAIN_RESULT_ACCEPT && ex.end == 1 && !ex.impaired,
	   "chain_explain: the cutting rule ends it with accept");
	chain_unref(c);
}

/* ---- sets (issue 14) ------------------------------------------------------- */

static char set_a[128], set_h[128], set_bad[128], set_hbad[128];

static bool set_files(void)
{
	static const char a[] = "# addresses\n10.1.0.0/16\n192.0.2.7\n\n2001:db8:1::/48\n";
	static const char h[] = "example.com\n*.blocked.test\n";
	static const char bad[] = "10.0.0.0/8\n# two\nnot-an-address\n";
	static const char hbad[] = "ok.test\nbad..name\n";

	return write_temp(set_a, sizeof(set_a), a, strlen(a)) == 0 &&
	       write_temp(set_h, sizeof(set_h), h, strlen(h)) == 0 &&
	       write_temp(set_bad, sizeof(set_bad), bad, strlen(bad)) == 0 &&
	       write_temp(set_hbad, sizeof(set_hbad), hbad, strlen(hbad)) == 0;
}

/* "KEY=[!]@PATH verdict=drop" against one packet: 1 dropped, 0 accepted, -1 error. */
static int set_verdict(const char *key, const char *neg, const char *path, const char *more,
		       struct spec s)
{
	char line[512];

	snprintf(line, sizeof(line), "%s %s=%s@%s verdict=drop", more, key, neg, path);
	switch (verdict1(line, s)) {
	case CHAIN_DROP:
		return 1;
	case CHAIN_ACCEPT:
		return 0;
	}
	return -1;
}

static void test_set_matches(void)
{
	static const struct {
		const char *key, *neg, *more;
		struct spec pkt;
		int want;
		const char *what;
	} t[] = {
		{ "dst-set", "", "", UDP4_(.dst = "10.1.2.3"), 1, "dst in a /16 of the list" },
		{ "dst-set", "", "", UDP4_(.dst = "10.2.0.1"), 0, "dst outside" },
		{ "dst-set", "", "", UDP4_(.dst = "192.0.2.7"), 1, "dst a bare address of the list" },
		{ "dst-set", "", "", UDP4_(.dst = "192.0.2.8"), 0, "the address next to it" },
		{ "dst-set", "", "", UDP6_(.dst = "2001:db8:1::5"), 1, "IPv6 dst in the /48" },
		{ "dst-set", "", "", UDP6_(.dst = "2001:db8:2::1"), 0, "IPv6 dst outside" },
		{ "dst-set", "", "", UDP4_(.src = "10.1.2.3", .dst = "10.9.9.9"), 0,
		  "dst-set looks at dst only" },
		{ "dst-set", "!", "", UDP4_(.dst = "10.1.2.3"), 0, "!: dst in the list" },
		{ "dst-set", "!", "", UDP4_(.dst = "10.2.0.1"), 1, "!: dst outside" },
		{ "src-set", "", "", UDP4_(.src = "10.1.200.1"), 1, "src in the list" },
		{ "src-set", "", "", UDP4_(.src = "10.3.0.1", .dst = "10.1.0.1"), 0,
		  "src-set looks at src only" },
		{ "src-set", "!", "", PING6_(.src = "2001:db8:1::1"), 0, "!: IPv6 src in the list" },
		{ "dst-set", "", "proto=udp dport=53", UDP4_(.dst = "10.1.0.9", .dport = 53), 1,
		  "with proto and dport (indexed by port)" },
		{ "dst-set", "", "proto=udp dport=53", UDP4_(.dst = "10.1.0.9", .dport = 54), 0,
		  "with proto and dport, another port" },
		{ "dst-set", "", "dst=10.1.0.0/24", UDP4_(.dst = "10.1.0.9"), 1,
		  "with dst (indexed by prefix)" },
		{ "dst-set", "", "dst=10.1.0.0/24", UDP4_(.dst = "10.1.1.9"), 0,
		  "with dst, outside the prefix" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		is_int(set_verdict(t[i].key, t[i].neg, set_a, t[i].more, t[i].pkt), t[i].want,
		       "sets: %s%s%s: %s", t[i].key, t[i].more[0] ? " " : "", t[i].more, t[i].what);
}

/* A chain with a dst-set of random prefixes against a linear scan of them. */
static void test_set_linear(void)
{
	enum { NPREF = 300, NPKT = 3000 };
	static uint32_t net[NPREF], mask[NPREF];
	char path[128], *text = malloc(NPREF * 24);
	size_t len = 0;
	unsigned int wrong = 0, hits = 0;
	struct chain *c;
	char line[256];

	if (!text)
		return;
	for (size_t i = 0; i < NPREF; i++) {
		unsigned int plen = 8 + rnd(25);

		mask[i] = plen == 32 ? 0xffffffffu : ~(0xffffffffu >> plen);
		/* Inside 10/8 half of the time, so that random packets hit. */
		net[i] = ((uint32_t)rnd64() & (i % 2 ? 0x00ffffffu : 0xffffffffu)) |
			 (i % 2 ? 0x0a000000u : 0);
		len += (size_t)sprintf(text + len, "%u.%u.%u.%u/%u\n", net[i] >> 24,
				       (net[i] >> 16) & 255, (net[i] >> 8) & 255, net[i] & 255, plen);
		net[i] &= mask[i];
	}
	if (write_temp(path, sizeof(path), text, len) != 0) {
		free(text);
		ok(false, "sets: temp file");
		return;
	}
	free(text);
	snprintf(line, sizeof(line), "dst-set=@%s verdict=drop", path);
	c = chain_of(line, NULL);
	if (!ok(c, "sets: %d random prefixes load", NPREF)) {
		unlink(path);
		return;
	}
	for (int k = 0; k < NPKT; k++) {
		uint32_t a = (uint32_t)rnd64();
		char dst[16];
		struct tpkt t, f;
		bool want = false;
		int v;

		if (k % 2)
			a = 0x0a000000u | (a & 0x00ffffffu);
		for (size_t i = 0; i < NPREF && !want; i++)
			want = (a & mask[i]) == net[i];
		snprintf(dst, sizeof(dst), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
			 a & 255);
		if (!build(&t, &(struct spec)UDP4_(.dst = dst))) {
			wrong++;
			continue;
		}
		f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
		v = (int)chain_run(c, &t.p, &f.p, 1);
		hits += want;
		wrong += (v == CHAIN_DROP) != want;
	}
	ok(wrong == 0 && hits > 0, "sets: %d random addresses match as a linear scan (%u in the set, %u wrong)",
	   NPKT, hits, wrong);
	chain_unref(c);
	unlink(path);
}

static void test_set_hosts(void)
{
	static const struct {
		const char *name;	/* NULL: no flow; "": a flow without a name yet */
		bool drop;
	} t[] = {
		{ NULL, false },
		{ "", false },
		{ "example.com", true },
		{ "www.example.com", false },
		{ "a.blocked.test", true },
		{ "x.y.blocked.test", true },
		{ "blocked.test", false },
		{ "ok.test", false },
	};
	char line[256];
	struct chain *c;

	snprintf(line, sizeof(line), "proto=tcp host-set=@%s verdict=drop", set_h);
	c = chain_of(line, NULL);
	if (!ok(c, "sets: host-set loads"))
		return;
	/* The flow table (wire14) is not here: the flow is filled by hand. */
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct pkt_flow fl = { .pos = 1 };
		struct tpkt p, f;
		int v;

		if (!build(&p, &(struct spec)TCP4_(.dst = "10.0.0.2"))) {
			ok(false, "packet");
			continue;
		}
		if (t[i].name) {
			fl.name = t[i].name;
			fl.name_len = (uint8_t)strlen(t[i].name);
			p.p.flow = &fl;
		}
		f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
		v = (int)chain_run(c, &p.p, &f.p, 1);
		is_int(v, t[i].drop ? CHAIN_DROP : CHAIN_ACCEPT, "sets: host-set, flow name %s%s%s",
		       t[i].name ? "'" : "", t[i].name ? t[i].name : "(no flow)", t[i].name ? "'" : "");
	}
	chain_unref(c);
}

static void test_set_errors(void)
{
	struct {
		char line[512];
		size_t bad;
		const char *has[3];
	} t[] = {
		{ "", 0, { "dst-set", "", ":3: " } },
		{ "", 0, { "host-set", "", ":2: " } },
		{ "dst-set=@/nonexistent/ipmodd-x.list verdict=drop", 0,
		  { "dst-set", "/nonexistent/ipmodd-x.list", "No such file" } },
		{ "dst-set=@relative.list verdict=drop", 0, { "dst-set", "absolute", NULL } },
		{ "dst-set=10.0.0.0/8 verdict=drop", 0, { "dst-set", "@/absolute/path", NULL } },
		{ "", 1, { "host-set", "@/absolute/path", NULL } },
		{ "", 0, { "src-set", "not a regular file", NULL } },
		{ "dst-set=@/dev/zero verdict=drop", 0, { "dst-set", "/dev/zero: not a regular file", NULL } },
		{ "dst-set=@/tmp/\x1b[2J verdict=drop", 0, { "dst-set", "printable characters only", NULL } },
	};
	char fifo[sizeof(set_a) + 8];

	/* A FIFO would block the daemon: refused without opening it for reading. */
	snprintf(fifo, sizeof(fifo), "%s.fifo", set_a);
	if (mkfifo(fifo, 0600) != 0)
		diag("mkfifo %s failed", fifo);
	snprintf(t[6].line, sizeof(t[6].line), "src-set=@%s verdict=drop", fifo);

	snprintf(t[0].line, sizeof(t[0].line), "dst-set=@%s verdict=drop", set_bad);
	t[0].has[1] = set_bad;
	snprintf(t[1].line, sizeof(t[1].line), "host-set=@%s verdict=drop", set_hbad);
	t[1].has[1] = set_hbad;
	snprintf(t[5].line, sizeof(t[5].line), "verdict=drop host-set=!@%s", set_h);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct rule *r = NULL;
		char err[ERR_MAX];
		size_t bad = 99;
		bool all = true;
		char line[512];
		int ret;

		memcpy(line, t[i].line, sizeof(line));
		ret = rule_parse_line(line, &r, &bad, err, sizeof(err));

		for (size_t k = 0; k < ARRAY_SIZE(t[i].has) && t[i].has[k]; k++)
			all &= strstr(err, t[i].has[k]) != NULL;
		/* The bad line's text is not echoed (a control client may not read the file). */
		all &= !strstr(err, "not-an-address") && !strstr(err, "bad..name");
		ok(ret == -EINVAL && !r && bad == t[i].bad && all, "sets: refused: %s", err);
		rule_free(r);
	}
	unlink(fifo);
}

static void test_set_share(void)
{
	char l1[512], l2[512], l3[512], out[RULE_FORMAT_MAX];
	struct rule *r[3] = { NULL }, *back = NULL, *again = NULL;
	struct chain_sets_info si;
	struct chain *c = NULL;
	char err[256];

	snprintf(l1, sizeof(l1), "name=a dst-set=!@%s verdict=drop", set_a);
	snprintf(l2, sizeof(l2), "name=b src-set=@%s dst-set=@%s verdict=accept", set_a, set_a);
	snprintf(l3, sizeof(l3), "name=c proto=tcp host-set=@%s verdict=drop", set_h);

	/* Printed as given, read back equal. */
	r[0] = rule_of(l1);
	ok(r[0] && rule_format(r[0], out, sizeof(out)) > 0 && strstr(out, "dst-set=!@") &&
	   strstr(out, set_a), "sets: printed: %s", out);
	ok(r[0] && rule_round_trips(r[0], out, sizeof(out), &back) && rule_equal(r[0], back),
	   "sets: read back equal");
	rule_free(back);
	rule_free(r[0]);

	/* Outside a scope every rule reads its file. */
	r[0] = rule_of(l2);
	r[1] = rule_of(l2);
	ok(r[0] && r[1] && r[0]->m.dst_set != r[1]->m.dst_set && rule_equal(r[0], r[1]),
	   "sets: outside a scope, two loads of one file (equal rules)");
	rule_free(r[0]);
	rule_free(r[1]);

	/* Inside one, the rules of one file share each list. */
	rule_set_scope_begin();
	r[0] = rule_of(l1);
	r[1] = rule_of(l2);
	r[2] = rule_of(l3);
	rule_set_scope_end();
	ok(r[0] && r[1] && r[2] && r[0]->m.dst_set == r[1]->m.dst_set &&
	   r[1]->m.src_set == r[1]->m.dst_set && r[2]->m.host_set,
	   "sets: inside a scope, one load per file");
	if (r[0] && r[1] && r[2] && chain_new(r, 3, &c, err, sizeof(err)) == 0) {
		chain_sets_info(c, &si);
		ok(si.sets == 2 && si.prefixes == 3 && si.names == 2 && si.bytes > 0,
		   "sets: chain_sets_info: %llu sets, %llu prefixes, %llu names, %llu bytes",
		   (unsigned long long)si.sets, (unsigned long long)si.prefixes,
		   (unsigned long long)si.names, (unsigned long long)si.bytes);
	} else {
		ok(false, "sets: chain of shared sets");
	}
	for (size_t i = 0; i < 3; i++)
		r[i] = rule_free(r[i]);
	/* The chain holds its own references: the rules are gone, it still matches. */
	if (c) {
		struct tpkt t, f;

		ok(build(&t, &(struct spec)UDP4_(.dst = "10.9.0.1")) &&
		   (f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) }, 1) &&
		   chain_run(c, &t.p, &f.p, 1) == CHAIN_DROP,
		   "sets: the chain keeps its lists after the rules are freed");
		chain_unref(c);
	}

	/* A new scope reads the file again: a changed list is picked up. */
	rule_set_scope_begin();
	r[0] = rule_of(l1);
	rule_set_scope_end();
	{
		static const char a2[] = "10.9.0.0/16\n";
		FILE *f = fopen(set_a, "w");

		if (f) {
			fputs(a2, f);
			fclose(f);
		}
	}
	rule_set_scope_begin();
	again = rule_of(l1);
	rule_set_scope_end();
	ok(r[0] && again && r[0]->m.dst_set != again->m.dst_set && !rule_equal(r[0], again),
	   "sets: a new scope reads the changed file (and the rules differ)");
	is_int(set_verdict("dst-set", "", set_a, "", UDP4(.dst = "10.9.1.1")), 1,
	       "sets: the changed list matches what it now holds");
	rule_free(r[0]);
	rule_free(again);

	/* A rule added to a running chain shares the chain's copy (rule_set_scope_share). */
	r[0] = rule_of(l1);
	rule_set_scope_begin();
	if (r[0])
		rule_set_scope_share(r[0]);
	r[1] = rule_of(l2);
	rule_set_scope_end();
	ok(r[0] && r[1] && r[1]->m.dst_set == r[0]->m.dst_set && r[1]->m.src_set == r[0]->m.dst_set,
	   "sets: a shared scope hands out the running rule's copy");
	rule_free(r[0]);
	rule_free(r[1]);
}

/* At most RULE_SET_SCOPE_FILES distinct lists in one chain, and in one scope. */
static void test_set_bound(void)
{
	struct rule *r[RULE_SET_SCOPE_FILES + 1] = { NULL };
	char path[RULE_SET_SCOPE_FILES + 1][128], line[512], err[256];
	struct chain *c = NULL;
	size_t n = 0;
	int ret;

	for (n = 0; n <= RULE_SET_SCOPE_FILES; n++) {
		char p[128];

		if (write_temp(p, sizeof(p), "10.0.0.0/8\n", 11) != 0)
			break;
		memcpy(path[n], p, sizeof(p));
		snprintf(line, sizeof(line), "name=r%zu dst-set=@%s verdict=drop", n, p);
		r[n] = rule_of(line);
		if (!r[n])
			break;
	}
	if (!ok(n == RULE_SET_SCOPE_FILES + 1, "sets: %d rules with a list each", RULE_SET_SCOPE_FILES + 1))
		goto out;
	ok(chain_new(r, RULE_SET_SCOPE_FILES, &c, err, sizeof(err)) == 0,
	   "sets: a chain of %d lists", RULE_SET_SCOPE_FILES);
	c = chain_unref(c);
	ret = chain_new(r, RULE_SET_SCOPE_FILES + 1, &c, err, sizeof(err));
	ok(ret == -E2BIG && !c && strstr(err, "at most 64"), "sets: one more is refused: %s", err);
	c = chain_unref(c);
	{
		struct rule *x = NULL;
		size_t bad;

		rule_set_scope_begin();
		for (size_t i = 0; i < RULE_SET_SCOPE_FILES; i++)
			rule_set_scope_share(r[i]);
		char p[128];

		memcpy(p, path[RULE_SET_SCOPE_FILES], sizeof(p));
		snprintf(line, sizeof(line), "dst-set=@%s verdict=drop", p);
		ret = rule_parse_line(line, &x, &bad, err, sizeof(err));
		rule_set_scope_end();
		ok(ret == -EINVAL && !x && strstr(err, "more than 64 list files"),
		   "sets: a scope of 64 files refuses another: %s", err);
		rule_free(x);
	}
out:
	for (size_t i = 0; i < n && i <= RULE_SET_SCOPE_FILES; i++) {
		rule_free(r[i]);
		unlink(path[i]);
	}
}

/*
 * chain_names_may_match(): the fast path's flow decision.  Whether one of
 * the rules' tls-sni/http-host/quic-sni names (of the hello's own kind) or
 * a host-set (any kind) matches the name, other matches aside.
 */
static void test_names_may_match(void)
{
	static const struct {
		uint8_t kind;
		const char *name;
		size_t len;		/* 0: strlen(name) */
		bool names, set;	/* expected of the name rules, of the host-set */
	} t[] = {
		{ PKT_NAME_TLS, "a.blocked.test", 0, true, true },
		{ PKT_NAME_TLS, "x.y.blocked.test", 0, true, true },
		{ PKT_NAME_TLS, "exact.test", 0, true, false },
		{ PKT_NAME_TLS, "blocked.test", 0, false, false },
		{ PKT_NAME_TLS, "ok.test", 0, false, false },
		{ PKT_NAME_TLS, "web.test", 0, false, false },
		{ PKT_NAME_TLS, "example.com", 0, false, true },
		{ PKT_NAME_TLS, "www.example.com", 0, false, false },
		/* only the first len bytes are the name */
		{ PKT_NAME_TLS, "a.blocked.testing", 14, true, true },
		{ PKT_NAME_TLS, "exact.test", 5, false, false },
		{ PKT_NAME_HTTP, "web.test", 0, true, false },
		{ PKT_NAME_HTTP, "exact.test", 0, false, false },
		{ PKT_NAME_HTTP, "a.blocked.test", 0, false, true },
		{ PKT_NAME_QUIC, "example.com", 0, true, true },
		{ PKT_NAME_QUIC, "web.test", 0, false, false },
		{ PKT_NAME_QUIC, "b.blocked.test", 0, false, true },
		/* no name: never */
		{ PKT_NAME_NONE, "a.blocked.test", 0, false, false },
		{ PKT_NAME_TLS, "", 0, false, false },
	};
	const char *n1 = "tls-sni=*.blocked.test,exact.test verdict=drop";
	const char *n2 = "http-host=web.test verdict=reject reject-with=tcp-reset";
	const char *n3 = "quic-sni=example.com verdict=drop";
	const char *o1 = "proto=tcp dport=443 verdict=drop";
	const char *o2 = "proto=tcp flow-packets=1-3 set-dscp=cs1";
	struct chain *names, *all, *others, *empty, *hs;
	char hline[256], big[300];

	snprintf(hline, sizeof(hline), "proto=udp dport=9 host-set=@%s verdict=drop", set_h);
	names = chain_of(o1, n1, o2, n2, n3, NULL);
	all = chain_of(o1, n1, n2, hline, n3, o2, NULL);
	others = chain_of(o1, o2, "proto=udp verdict=drop", NULL);
	empty = chain_of(NULL, NULL);
	hs = chain_of(hline, NULL);
	if (!ok(names && all && others && empty && hs, "names_may_match: chains load")) {
		chain_unref(names);
		chain_unref(all);
		chain_unref(others);
		chain_unref(empty);
		chain_unref(hs);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		size_t len = t[i].len ? t[i].len : strlen(t[i].name);
		is_int(chain_names_may_match(names, t[i].kind, t[i].name, len), t[i].names,
		       "names_may_match: name rules, kind %u '%.*s'", t[i].kind, (int)len, t[i].name);
		is_int(chain_names_may_match(all, t[i].kind, t[i].name, len), t[i].names || t[i].set,
		       "names_may_match: name rules and a host-set, kind %u '%.*s'", t[i].kind,
		       (int)len, t[i].name);
		/* the host-set's rule is proto=udp dport=9: its other matches aside */
		is_int(chain_names_may_match(hs, t[i].kind, t[i].name, len), t[i].set,
		       "names_may_match: a host-set alone, kind %u '%.*s'", t[i].kind, (int)len,
		       t[i].name);
		is_int(chain_names_may_match(others, t[i].kind, t[i].name, len), false,
		       "names_may_match: rules without names, kind %u '%.*s'", t[i].kind, (int)len,
		       t[i].name);
		is_int(chain_names_may_match(empty, t[i].kind, t[i].name, len), false,
		       "names_may_match: the empty chain, kind %u '%.*s'", t[i].kind, (int)len,
		       t[i].name);
	}
	/* a name longer than any hello's: never */
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 13, ".blocked.test", 13);
	ok(!chain_names_may_match(all, PKT_NAME_TLS, big, sizeof(big)),
	   "names_may_match: a %zu-byte name matches nothing", sizeof(big));
	chain_unref(names);
	chain_unref(all);
	chain_unref(others);
	chain_unref(empty);
	chain_unref(hs);
}

static void test_sets(void)
{
	if (!ok(set_files(), "sets: temp files written"))
		return;
	test_set_matches();
	test_set_linear();
	test_set_hosts();
	test_set_errors();
	test_set_share();
	test_set_bound();
	test_names_may_match();
	unlink(set_a);
	unlink(set_h);
	unlink(set_bad);
	unlink(set_hbad);
}

/* ---- flow matches (issue 14): struct pkt.flow as the daemon fills it -------- */

/* The verdict of a one-rule chain for s with pf as its flow (NULL: none). */
static int verdict_flow(const char *line, struct spec s, const struct pkt_flow *pf)
{
	struct tpkt t, f;
	struct chain *c = chain_of(line, NULL);
	int v;

	if (!c)
		return -1;
	if (!build(&t, &s)) {
		chain_unref(c);
		diag("test packet did not build or parse");
		return -1;
	}
	t.p.flow = pf;
	f.p = (struct pkt){ .data = f.buf, .cap = sizeof(f.buf) };
	v = (int)chain_run(c, &t.p, &f.p, 1000000000ULL);
	chain_unref(c);
	return v;
}

static void test_flow(void)
{
	struct pkt_flow pf = { .pos = 1, .state = FLOW_STATE_NEW, .fdir = FLOW_DIR_ORIGINAL };
	const char *pk3 = "proto=tcp flow-packets=1-3 verdict=drop";
	unsigned int pos;

	for (pos = 1; pos <= 5; pos++) {
		pf.pos = pos;
		is_int(verdict_flow(pk3, TCP4(), &pf), pos <= 3 ? CHAIN_DROP : CHAIN_ACCEPT,
		       "flow-packets=1-3: position %u", pos);
	}
	pf.pos = 2;
	is_int(verdict_flow(pk3, UDP4(), &pf), CHAIN_ACCEPT, "flow-packets with proto=tcp: not UDP");
	is_int(verdict_flow(pk3, TCP4(), NULL), CHAIN_ACCEPT, "flow-packets: no flow, no match");
	is_int(verdict_flow("flow-packets=4294967295 verdict=drop", TCP4(),
			    &(struct pkt_flow){ .pos = UINT32_MAX }), CHAIN_DROP,
	       "flow-packets: the last position");

	pf.bytes_before = 1499;
	is_int(verdict_flow("flow-bytes=0-1499 verdict=drop", TCP4(), &pf), CHAIN_DROP,
	       "flow-bytes=0-1499: 1499 bytes before");
	pf.bytes_before = 1500;
	is_int(verdict_flow("flow-bytes=0-1499 verdict=drop", TCP4(), &pf), CHAIN_ACCEPT,
	       "flow-bytes=0-1499: 1500 bytes before");
	pf.bytes_before = 100000000000ULL;
	is_int(verdict_flow("flow-bytes=100000000000 verdict=drop", TCP4(), &pf), CHAIN_DROP,
	       "flow-bytes: 64-bit values");

	pf.state = FLOW_STATE_ESTABLISHED;
	is_int(verdict_flow("flow-state=established verdict=drop", TCP4(), &pf), CHAIN_DROP,
	       "flow-state=established");
	is_int(verdict_flow("flow-state=new verdict=drop", TCP4(), &pf), CHAIN_ACCEPT,
	       "flow-state=new: an established flow");
	pf.state = FLOW_STATE_CLOSING;
	is_int(verdict_flow("flow-state=closing verdict=drop", UDP4(), &pf), CHAIN_DROP,
	       "flow-state=closing");

	pf.fdir = FLOW_DIR_REPLY;
	is_int(verdict_flow("flow-dir=reply verdict=drop", TCP4(), &pf), CHAIN_DROP, "flow-dir=reply");
	is_int(verdict_flow("flow-dir=original verdict=drop", TCP4(), &pf), CHAIN_ACCEPT,
	       "flow-dir=original: a reply");
	is_int(verdict_flow("flow-dir=reply verdict=drop", TCP4(), NULL), CHAIN_ACCEPT,
	       "flow-dir: no flow, no match");

	/* All of them at once: every one must hold. */
	pf = (struct pkt_flow){ .pos = 2, .bytes_before = 10, .state = FLOW_STATE_ESTABLISHED,
				.fdir = FLOW_DIR_REPLY };
	is_int(verdict_flow("flow-packets=2 flow-bytes=10 flow-state=established flow-dir=reply verdict=drop",
			    TCP6(), &pf), CHAIN_DROP, "all four flow keys match");
	pf.pos = 3;
	is_int(verdict_flow("flow-packets=2 flow-bytes=10 flow-state=established flow-dir=reply verdict=drop",
			    TCP6(), &pf), CHAIN_ACCEPT, "all four flow keys, one does not");
	{
		static const struct rule_refusal flow_bad[] = {
			{ "flow-packets=0 verdict=drop", 0, "flow-packets: '0': positions count from 1" },
			{ "flow-packets=5-2", 0, "flow-packets: '5-2': range is empty" },
			{ "flow-packets=4294967296", 0, "flow-packets: '4294967296': out of range" },
			{ "flow-bytes=x", 0, "flow-bytes: 'x': not a number" },
			{ "flow-state=open", 0, "flow-state: 'open': not new, established or closing" },
			{ "flow-dir=up", 0, "flow-dir: 'up': not original or reply" },
			{ "tls-sni=", 0, "tls-sni: '': no name" },
			{ "tls-sni=a..b", 0, "tls-sni: 'a..b': an empty label" },
			{ "tls-sni=*.", 0, "tls-sni: '*.': '*.' needs a domain after it" },
			{ "http-host=a.b*", 0, "http-host: 'a.b*': a name has letters" },
			{ "quic-sni=a,,b", 0, "quic-sni: 'a,,b': a name is 1..253 characters" },
			{ "tls-sni=a,b,c,d,e,f,g,h,i", 0, "tls-sni: 'a,b,c,d,e,f,g,h,i': more than 8 names" },
			{ "proto=udp tls-sni=a.test", 1, "tls-sni: 'a.test': needs proto=tcp" },
			{ "http-host=a.test quic-sni=b.test", 1, "quic-sni: 'b.test': needs proto=udp" },
		};

		rule_check_refusals(flow_bad, ARRAY_SIZE(flow_bad));
	}
	{
		struct rule *r = rule_of("tls-sni=A.Test,*.B.test verdict=reject reject-with=tcp-reset");
		char out[RULE_FORMAT_MAX] = "";

		ok(r && rule_format(r, out, sizeof(out)) > 0 &&
		   !strcmp(out, "proto=tcp tls-sni=a.test,*.b.test verdict=reject reject-with=tcp-reset"),
		   "tls-sni implies proto=tcp (and lowercases): '%s'", out);
		ok(r && rule_round_trips(r, out, sizeof(out), NULL), "... and reads back equal");
		rule_free(r);
		r = rule_of("quic-sni=example.com verdict=drop");
		ok(r && rule_format(r, out, sizeof(out)) > 0 &&
		   !strcmp(out, "proto=udp quic-sni=example.com verdict=drop"),
		   "quic-sni implies proto=udp: '%s'", out);
		rule_free(r);
	}
	{
		struct pkt_flow nf = { .pos = 4, .state = FLOW_STATE_ESTABLISHED };
		const char *sni = "tls-sni=*.blocked.test,exact.test verdict=drop";
		static const struct {
			uint8_t kind;
			const char *name;
			int want;
		} cases[] = {
			{ PKT_NAME_TLS, "a.blocked.test", CHAIN_DROP },
			{ PKT_NAME_TLS, "x.y.BLOCKED.test", CHAIN_DROP },
			{ PKT_NAME_TLS, "blocked.test", CHAIN_ACCEPT },
			{ PKT_NAME_TLS, "exact.test", CHAIN_DROP },
			{ PKT_NAME_TLS, "a.exact.test", CHAIN_ACCEPT },
			{ PKT_NAME_TLS, "ok.test", CHAIN_ACCEPT },
			{ PKT_NAME_HTTP, "a.blocked.test", CHAIN_ACCEPT },	/* not a TLS name */
			{ PKT_NAME_QUIC, "a.blocked.test", CHAIN_ACCEPT },
			{ PKT_NAME_NONE, "a.blocked.test", CHAIN_ACCEPT },	/* none found yet */
		};

		for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
			nf.name_kind = cases[i].kind;
			nf.name = cases[i].name;
			nf.name_len = (uint8_t)strlen(cases[i].name);
			is_int(verdict_flow(sni, TCP4(), &nf), cases[i].want, "%s: kind %u name %s", sni,
			       cases[i].kind, cases[i].name);
		}
		nf.name_kind = PKT_NAME_HTTP;
		nf.name = "Example.COM";
		nf.name_len = 11;
		is_int(verdict_flow("http-host=example.com verdict=drop", TCP4(), &nf), CHAIN_DROP,
		       "http-host: case-insensitive");
		is_int(verdict_flow("http-host=example.com tls-sni=example.com verdict=drop", TCP4(), &nf),
		       CHAIN_DROP, "http-host with tls-sni: either kind matches");
		nf.name_kind = PKT_NAME_QUIC;
		is_int(verdict_flow("quic-sni=example.com verdict=drop", UDP4(), &nf), CHAIN_DROP,
		       "quic-sni");
		is_int(verdict_flow("quic-sni=example.com verdict=drop", UDP4(), NULL), CHAIN_ACCEPT,
		       "quic-sni: no flow, no match");
	}
}

/*
 * The longest legal rule (issue 15 follow-up): every long value at its
 * bound together (lists, table and trace at paths of 255, 255 and 159
 * bytes, names of 254 bytes) takes 2658 bytes: rule_parse() refuses it
 * (RULE_TEXT_MAX), and the longest it takes formats within RULE_FORMAT_MAX,
 * fits the control protocol's line and round-trips.  So does a cutting
 * rule with fake=@PATH of 255 bytes and every list and name.
 */
static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* dir/NAME padded with 'x' to len bytes in all, made as a file with text. */
static void long_file(char *out, size_t len, const char *dir, char tag, const char *text)
{
	size_t n = (size_t)snprintf(out, len + 1, "%s/%c", dir, tag);

	while (n < len)
		out[n++] = 'x';
	out[len] = '\0';
	write_text(out, text);
}

/* rule_parse() of a line longer than ruleline.h's buffer */
static int parse_long(const char *line, struct rule **r, char *err, size_t errlen)
{
	static char buf[8192];
	struct rule_kv kv[RULELINE_KV_MAX];
	size_t n = rule_split(line, buf, sizeof(buf), kv);

	*r = NULL;
	return rule_parse(kv, n, r, NULL, err, errlen);
}

static void test_longest_rule(void)
{
	char dir[] = "/tmp/test-chain-longest.XXXXXX", sub[320], src[300], dst[300], host[300];
	char table[300], fake[300], trace[RULE_TRACE_MAX], names[300], line[8192], out[RULE_FORMAT_MAX];
	char err[256] = "";
	struct rule *r = NULL, *r2 = NULL;
	size_t n = 0;
	int len;

	if (!mkdtemp(dir)) {
		ok(0, "longest rule: a temporary directory");
		return;
	}
	/* a directory of 200 bytes of name, the files in it of 255 bytes of path */
	snprintf(sub, sizeof(sub), "%s/", dir);
	for (n = strlen(sub); n < strlen(dir) + 1 + 200; n++)
		sub[n] = 'd';
	sub[n] = '\0';
	if (mkdir(sub, 0700) < 0) {
		ok(0, "longest rule: %s", strerror(errno));
		return;
	}
	long_file(src, 255, sub, 's', "10.0.0.0/8\n");
	long_file(dst, 255, sub, 'd', "2001:db8::/32\n");
	long_file(host, 255, sub, 'h', "example.com\n");
	long_file(table, 255, sub, 't', "-8192 0 8192\n");
	long_file(fake, 255, sub, 'f', "decoy");
	memset(trace, 'p', sizeof(trace) - 1);
	trace[0] = '/';
	trace[sizeof(trace) - 1] = '\0';
	/* 8 names, 247 bytes: 247 + 8 NULs + the final one = RULE_NAMES_BYTES */
	n = 0;
	for (int i = 0; i < 8; i++) {
		int l = i < 7 ? 31 : 247 - 7 * 31;

		if (i)
			names[n++] = ',';
		for (int c = 0; c < l - 5; c++)
			names[n++] = (char)('a' + i);
		memcpy(names + n, ".test", 5);
		n += 5;
	}
	names[n] = '\0';

	snprintf(line, sizeof(line),
		 RULE_LONGEST_HEAD
		 "delay=59999.999 jitter=59999.999 distribution=@%s "
		 "loss=gemodel:0.33333333333333331,0.66666666666666663,0.11111111111111110,0.22222222222222221 "
		 "duplicate=0.33333333333333331 reorder=0.33333333333333331 corrupt=0.33333333333333331 "
		 "rate=@%s limit=99999 queue=99999 queue-bytes=67108863 aqm=codel "
		 "codel-target=59999.999 codel-interval=59999.999 seed=18446744073709551615 "
		 "expire=604799999ms direction=both src-set=!@%s dst-set=!@%s host-set=@%s "
		 "tls-sni=%s http-host=%s flow-packets=4294967294-4294967295 "
		 "flow-bytes=999999999999999998-999999999999999999 flow-state=established flow-dir=original",
		 table, trace, src, dst, host, names, names);
	ok(parse_long(line, &r, err, sizeof(err)) == -EINVAL && !r &&
		   strstr(err, "longer than 1920 characters: shorten its paths or names"),
	   "every long value at its longest: refused (%s)", err);
	rule_free(r);

	/* without the host and destination lists and a name list, what is left fits */
	snprintf(line, sizeof(line),
		 RULE_LONGEST_HEAD
		 "delay=59999.999 jitter=59999.999 distribution=@%s "
		 "loss=gemodel:0.33333333333333331,0.66666666666666663,0.11111111111111110,0.22222222222222221 "
		 "duplicate=0.33333333333333331 reorder=0.33333333333333331 corrupt=0.33333333333333331 "
		 "rate=99999999999bit limit=99999 seed=18446744073709551615 "
		 "expire=604799999ms direction=both src-set=!@%s "
		 "tls-sni=%s flow-packets=4294967294-4294967295 "
		 "flow-bytes=999999999999999998-999999999999999999 flow-state=established flow-dir=original",
		 table, src, names);
	if (parse_long(line, &r, err, sizeof(err)) < 0)
		diag("%s", err);
	len = r ? rule_format(r, out, sizeof(out)) : -1;
	ok(len > 1400 && len <= RULE_TEXT_MAX, "a rule with a list, a table and a name list: %d of %d bytes",
	   len, RULE_TEXT_MAX);
	ok(len > 0 && len + 6 < CTL_LINE_MAX, "... and fits the control protocol's \"spec=\" line of %d",
	   CTL_LINE_MAX);
	if (len > 0 && parse_long(out, &r2, err, sizeof(err)) < 0)
		diag("%s", err);
	ok(r && r2 && rule_equal(r, r2), "... and round-trips");
	rule_free(r2);
	rule_free(r);

	/* with a list and surgery keys more: refused, not cut short */
	snprintf(line, sizeof(line),
		 "%s dst-set=!@%s set-field=ip.src=255.255.255.254,tcp.window=65535 "
		 "strip-tcp-option=mss,sack,timestamp",
		 out, dst);
	ok(parse_long(line, &r, err, sizeof(err)) == -EINVAL && !r && strstr(err, "longer than"),
	   "with surgery keys too: refused (%s)", err);
	rule_free(r);
	snprintf(line, sizeof(line),
		 "name=abcdefghijklmnopqrstuvwxyz01234 src-set=!@%s dst-set=!@%s host-set=@%s tls-sni=%s "
		 "http-host=%s proto=tcp split=sni+2,midsld,-1,2,3,4,5,6 disorder=true ipfrag=65528 fake=@%s "
		 "fake-ttl=255 fake-badsum=true fake-badseq=true fake-md5sig=true fake-repeats=10",
		 src, dst, host, names, names, fake);
	if (parse_long(line, &r, err, sizeof(err)) < 0)
		diag("%s", err);
	len = r ? rule_format(r, out, sizeof(out)) : -1;
	ok(len > 0 && len <= RULE_TEXT_MAX, "a long cutting rule with fake=@%zu-byte path: %d bytes",
	   strlen(fake), len);
	if (len > 0 && parse_long(out, &r2, err, sizeof(err)) < 0)
		diag("%s", err);
	ok(r && r2 && rule_equal(r, r2), "... and round-trips");
	rule_free(r2);
	rule_free(r);

	unlink(src);
	unlink(dst);
	unlink(host);
	unlink(table);
	unlink(fake);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	test_parse_good();
	test_parse_bad();
	test_parse_edge();
	test_roundtrip_random();
	test_rule_equal();
	test_matches();
	test_actions();
	test_order();
	test_counters();
	test_names();
	test_reply();
	test_reject();
	test_rate_limit();
	test_probability();
	test_impair_verdicts();
	test_impair_ecn();
	test_impair_limit();
	test_impair_seed();
	test_impair_inherit();
	test_inherit_planned();
	test_explain();
	test_explain_packet();
	test_direction_forge();
	test_surgery();
	test_sets();
	test_longest_rule();
	test_flow();
	return tap_done();
}
