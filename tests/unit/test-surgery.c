/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packet surgery: the key values (parse, print, round trip, errors, cross
 * checks) and surgery_apply() on IPv4 and IPv6 packets built here: every
 * set-field field (the incremental checksum against a full recompute),
 * strip-tcp-option, split (sequence numbers, flags, payload concatenation),
 * disorder, ipfrag (reassembled here), fake decoys, and the arena bounds.
 * Checksums are verified with refcsum.h, which shares no code with packet.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "packet.h"
#include "pktbuild.h"
#include "refcsum.h"
#include "surgery.h"
#include "tap.h"
#include "util.h"

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)get16(b) << 16 | get16(b + 2);
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b + 2, (uint16_t)v);
}

/* ---- packet building -------------------------------------------------------- */

enum { V4 = 4, V6 = 6 };

static size_t ip6_header(uint8_t *d, uint8_t nxt, size_t l4len)
{
	memset(d, 0, 40);
	d[0] = 0x60 | 0x0b;	/* TC 0xb5 */
	d[1] = 0x51;		/* flow label 0x12345 */
	d[2] = 0x23;
	d[3] = 0x45;
	put16(d + 4, (uint16_t)l4len);
	d[6] = nxt;
	d[7] = 64;
	memcpy(d + 8, src6, 16);
	memcpy(d + 24, dst6, 16);
	return 40;
}

/* The L4 checksum a full recompute gives (field zeroed), ICMPv4 without pseudo-header. */
static uint16_t ref_l4(const uint8_t *d, size_t len, int v, size_t l4off, uint8_t proto, size_t coff)
{
	uint8_t tmp[PKT_MAX];
	uint32_t s = 0;
	size_t l4len = len - l4off;

	memcpy(tmp, d + l4off, l4len);
	put16(tmp + coff, 0);
	if (v == V4 && proto != IPPROTO_ICMP) {
		s = ref_sum(d + 12, 8, 0);
		s += proto + (uint32_t)l4len;
	} else if (v == V6) {
		s = ref_sum(d + 8, 32, 0);
		s += (uint32_t)(l4len >> 16) + (uint32_t)(l4len & 0xffff) + proto;
	}
	s = ref_sum(tmp, l4len, s);
	uint16_t c = ref_csum(s);

	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	return c;
}

static size_t csum_off(uint8_t proto)
{
	return proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2;
}

/* IP header checksum right (IPv4) and L4 checksum equal to a full recompute. */
static bool csums_ok(const uint8_t *d, size_t len)
{
	struct pkt p = { .data = (uint8_t *)d, .len = len, .cap = len };

	if (pkt_parse(&p) != PKT_OK)
		return false;
	if (p.family == AF_INET && ref_fold(ref_sum(d, (size_t)(d[0] & 0xf) * 4, 0)) != 0xffff)
		return false;
	if (p.fragment || !p.l4_complete)
		return true;
	return get16(d + p.l4off + csum_off(p.l4proto)) ==
	       ref_l4(d, len, p.family == AF_INET ? V4 : V6, p.l4off, p.l4proto, csum_off(p.l4proto));
}

/* Fill in the checksums of a built packet. */
static void finish(uint8_t *d, size_t len)
{
	struct pkt p = { .data = d, .len = len, .cap = len };

	if (pkt_parse(&p) != PKT_OK) {
		diag("built packet does not parse");
		return;
	}
	pkt_csum_full(&p);
}

/* TCP with options (MSS, SACK-perm, timestamp, NOP, wscale: 20 bytes) and payload. */
static size_t build_tcp(uint8_t *d, int v, const uint8_t *pl, size_t plen, uint8_t flags)
{
	static const uint8_t opt[20] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 3, 3, 7 };
	size_t hl = v == V4 ? ip4_header(d, 0x1234, 64, IPPROTO_TCP, NULL, 0, 40 + plen)
			    : ip6_header(d, IPPROTO_TCP, 40 + plen);
	uint8_t *t = d + hl;

	memset(t, 0, 40);
	put16(t, 40000);
	put16(t + 2, 443);
	put32(t + 4, 0xfffffff0u);	/* wraps inside the payload */
	put32(t + 8, 0x01020304);
	t[12] = 10 << 4;
	t[13] = flags;
	put16(t + 14, 65535);
	memcpy(t + 20, opt, sizeof(opt));
	memcpy(t + 40, pl, plen);
	if (v == V4)
		d[6] = 0x40;	/* DF */
	finish(d, hl + 40 + plen);
	return hl + 40 + plen;
}

static size_t build_udp(uint8_t *d, int v, const uint8_t *pl, size_t plen)
{
	size_t hl = v == V4 ? ip4_header(d, 0x4321, 64, IPPROTO_UDP, NULL, 0, 8 + plen)
			    : ip6_header(d, IPPROTO_UDP, 8 + plen);
	uint8_t *u = d + hl;

	put16(u, 5353);
	put16(u + 2, 53);
	put16(u + 4, (uint16_t)(8 + plen));
	put16(u + 6, 1);	/* not 0: computed */
	memcpy(u + 8, pl, plen);
	finish(d, hl + 8 + plen);
	return hl + 8 + plen;
}

static size_t build_icmp(uint8_t *d, int v)
{
	static const uint8_t pl[12] = "ping payload";
	size_t hl = v == V4 ? ip4_header(d, 7, 64, IPPROTO_ICMP, NULL, 0, 8 + sizeof(pl))
			    : ip6_header(d, IPPROTO_ICMPV6, 8 + sizeof(pl));
	uint8_t *c = d + hl;

	memset(c, 0, 8);
	c[0] = v == V4 ? 8 : 128;
	put16(c + 4, 0x77);
	put16(c + 6, 3);
	memcpy(c + 8, pl, sizeof(pl));
	finish(d, hl + 8 + sizeof(pl));
	return hl + 8 + sizeof(pl);
}

static uint8_t arena[SURG_ARENA_SIZE(PKT_MAX) + 64];

static void out_init(struct surg_out *o)
{
	memset(o, 0, sizeof(*o));
	o->buf = arena;
	o->cap = SURG_ARENA_SIZE(PKT_MAX);
}

static const uint8_t *opkt(const struct surg_out *o, unsigned int i)
{
	return o->buf + o->pkt[i].off;
}

static struct rule_surgery sg;

static int setk(const char *key, const char *value)
{
	char err[256];

	for (size_t i = 0; i < surgery_nkeys; i++)
		if (!strcmp(surgery_keys[i].name, key)) {
			int r = surgery_keys[i].parse(&sg, value, err, sizeof(err));

			if (r)
				diag("%s=%s: %s", key, value, err);
			return r;
		}
	return -ENOENT;
}

/* ---- values ----------------------------------------------------------------- */

static void roundtrip(const char *key, const char *value, const char *want)
{
	struct rule_surgery a, b;
	char buf[4096], err[256];
	struct strbuf sb = { buf, sizeof(buf), 0, false };
	const struct surgery_key *k = NULL;
	int r;

	for (size_t i = 0; i < surgery_nkeys; i++)
		if (!strcmp(surgery_keys[i].name, key))
			k = &surgery_keys[i];
	surgery_init(&a);
	surgery_init(&b);
	buf[0] = '\0';
	r = k ? k->parse(&a, value, err, sizeof(err)) : -ENOENT;
	if (!ok(r == 0, "%s=%s parses", key, value)) {
		diag("%s", err);
		return;
	}
	k->print(&sb, &a);
	is_str(buf, want, "%s=%s prints as %s", key, value, want);
	r = k->parse(&b, buf, err, sizeof(err));
	ok(r == 0 && surgery_equal(&a, &b), "%s=%s: parse(print(x)) == x", key, value);
	surgery_release(&a);
	surgery_release(&b);
}

static void bad(const char *key, const char *value, const char *part)
{
	struct rule_surgery a;
	char err[256] = "";
	int r = -ENOENT;

	surgery_init(&a);
	for (size_t i = 0; i < surgery_nkeys; i++)
		if (!strcmp(surgery_keys[i].name, key))
			r = surgery_keys[i].parse(&a, value, err, sizeof(err));
	if (!ok(r < 0 && strstr(err, key) && strstr(err, part), "%s=%s refused, naming \"%s\"", key, value,
		part))
		diag("r %d, err \"%s\"", r, err);
	surgery_release(&a);
}

static void test_values(void)
{
	char path[] = "/tmp/test-surgery-XXXXXX", at[64], buf[2048];
	struct strbuf sb = { buf, sizeof(buf), 0, false };
	struct rule_surgery a, b;
	char err[256];
	int fd;

	roundtrip("split", "1", "1");
	roundtrip("split", "5,-3", "5,-3");
	roundtrip("split", "sni,sni+2,host,host+7,midsld", "sni,sni+2,host,host+7,midsld");
	roundtrip("split", "0x10", "16");
	roundtrip("disorder", "true", "true");
	roundtrip("disorder", "no", "false");
	roundtrip("ipfrag", "8", "8");
	roundtrip("ipfrag", "65528", "65528");
	roundtrip("fake", "zero", "zero");
	roundtrip("fake", "random", "random");
	roundtrip("fake", "hex:1603AbCd", "hex:1603abcd");
	roundtrip("fake-ttl", "1", "1");
	roundtrip("fake-ttl", "255", "255");
	roundtrip("fake-badsum", "true", "true");
	roundtrip("fake-badseq", "true", "true");
	roundtrip("fake-md5sig", "false", "false");
	roundtrip("fake-repeats", "10", "10");
	roundtrip("set-field", "tcp.window=1024 ip.df=1 ip6.flowlabel=0x12345 ip.id=0",
		  "tcp.window=1024 ip.df=1 ip6.flowlabel=74565 ip.id=0");
	roundtrip("set-field", "ip.src=10.1.2.3  ip6.dst=2001:db8::0:1", "ip.src=10.1.2.3 ip6.dst=2001:db8::1");
	roundtrip("strip-tcp-option", "timestamp,sack-perm,wscale", "wscale,sack-perm,timestamp");
	roundtrip("strip-tcp-option", "mss,sack,md5sig,fastopen,254,30", "mss,sack,md5sig,30,fastopen,254");

	fd = mkstemp(path);
	if (fd >= 0) {
		ok(write(fd, "\x16\x03\x01hello", 8) == 8, "fake file written");
		close(fd);
		snprintf(at, sizeof(at), "@%s", path);
		roundtrip("fake", at, at);
		surgery_init(&a);
		ok(!surgery_parse_fake(&a, at, err, sizeof(err)) && a.fake_data && a.fake_data->len == 8 &&
			   !memcmp(a.fake_data->data, "\x16\x03\x01hello", 8) &&
			   !strcmp(a.fake_data->path, path),
		   "fake=@file: its bytes read at parse time");
		ok(!surgery_parse_fake(&a, "random", err, sizeof(err)) && !a.fake_data,
		   "fake given again as random drops the file's payload");
		surgery_release(&a);
		fd = open(path, O_WRONLY | O_TRUNC);
		for (int i = 0; fd >= 0 && i < 1501; i++)
			if (write(fd, "x", 1) != 1)
				break;
		if (fd >= 0)
			close(fd);
		bad("fake", at, "longer than 1500");
		unlink(path);
		bad("fake", at, "No such file");
	}

	bad("split", "", "empty");
	bad("split", "0", "\"0\"");
	bad("split", "1,,2", "\"\"");
	bad("split", "1,2,3,4,5,6,7,8,9", "more than 8");
	bad("split", "sni-1", "sni-1");
	bad("split", "midsld+1", "midsld+1");
	bad("split", "70000", "70000");
	bad("split", "3,3", "twice");
	bad("disorder", "maybe", "maybe");
	bad("ipfrag", "12", "\"12\"");
	bad("ipfrag", "0", "\"0\"");
	bad("ipfrag", "65536", "65536");
	bad("fake", "ones", "ones");
	bad("fake", "hex:123", "even");
	bad("fake", "hex:12zz", "zz");
	bad("fake", "@relative", "absolute");
	bad("fake-ttl", "0", "\"0\"");
	bad("fake-ttl", "256", "256");
	bad("fake-repeats", "11", "11");
	bad("set-field", "tcp.window", "FIELD=VALUE");
	bad("set-field", "tcp.windows=1", "tcp.windows");
	bad("set-field", "tcp.window=65536", "tcp.window");
	bad("set-field", "ip.df=2", "\"2\"");
	bad("set-field", "ip6.flowlabel=0x100000", "0x100000");
	bad("set-field", "ip.src=1.2.3", "1.2.3");
	bad("set-field", "ip6.src=10.0.0.1", "10.0.0.1");
	bad("set-field", "ip.id=1 ip.id=2", "twice");
	bad("set-field", "  ", "no FIELD");
	bad("strip-tcp-option", "timestamps", "timestamps");
	bad("strip-tcp-option", "1", "\"1\"");
	bad("strip-tcp-option", "255", "255");

	/* a refused value leaves the keys as they were */
	surgery_init(&a);
	surgery_parse_fake(&a, "hex:1234", err, sizeof(err));
	surgery_parse_split(&a, "3,sni", err, sizeof(err));
	memcpy(&b, &a, sizeof(b));
	ok(surgery_parse_fake(&a, "hex:99zz", err, sizeof(err)) == -EINVAL &&
		   surgery_parse_split(&a, "1,2,x", err, sizeof(err)) == -EINVAL &&
		   surgery_parse_set_field(&a, "ip.id=1 bad", err, sizeof(err)) == -EINVAL && surgery_equal(&a, &b) &&
		   a.fake_data->data[0] == 0x12,
	   "refused fake, split and set-field values change nothing");
	/* b is a copy without its own reference */

	/* the payload: shared by copies (a reference each), compared by content */
	surgery_ref(&a);
	memcpy(&b, &a, sizeof(b));
	ok(b.fake_data == a.fake_data && a.fake_data->refs == 2, "a copy shares the payload, a reference more");
	surgery_release(&b);
	ok(!b.fake_data && a.fake_data->refs == 1 && a.fake_data->data[1] == 0x34,
	   "releasing the copy leaves the original's payload");
	surgery_init(&b);
	surgery_parse_fake(&b, "hex:1234", err, sizeof(err));
	surgery_parse_split(&b, "3,sni", err, sizeof(err));
	ok(b.fake_data != a.fake_data && surgery_equal(&a, &b), "two parses of one payload are equal");
	surgery_parse_fake(&b, "hex:1235", err, sizeof(err));
	ok(!surgery_equal(&a, &b), "a different payload is not equal");
	surgery_parse_fake(&b, "hex:123456", err, sizeof(err));
	ok(!surgery_equal(&a, &b), "a longer payload is not equal");
	surgery_release(&a);
	surgery_release(&b);

	/* the whole surgery formatted, and the cross checks */
	surgery_release(&sg);
	ok(!surgery_check(&sg, err, sizeof(err)) && !surgery_active(&sg), "no keys: fine, inactive");
	setk("disorder", "true");
	ok(surgery_check(&sg, err, sizeof(err)) == -EINVAL && strstr(err, "disorder needs split"),
	   "disorder without split or ipfrag refused");
	setk("ipfrag", "16");
	ok(!surgery_check(&sg, err, sizeof(err)), "disorder with ipfrag: fine");
	setk("fake-ttl", "3");
	ok(surgery_check(&sg, err, sizeof(err)) == -EINVAL && strstr(err, "fake-ttl needs fake"),
	   "fake-ttl without fake refused");
	surgery_release(&sg);
	setk("fake-repeats", "2");
	ok(surgery_check(&sg, err, sizeof(err)) == -EINVAL && strstr(err, "fake-repeats needs fake"),
	   "fake-repeats without fake refused");
	setk("fake", "random");
	setk("split", "sni+1,-2");
	setk("set-field", "ip.ttl=3 tcp.flags=0x18");
	ok(!surgery_check(&sg, err, sizeof(err)) && surgery_active(&sg), "fake with fake-repeats: fine");
	surgery_format(&sb, &sg);
	is_str(buf, "split=sni+1,-2 fake=random fake-repeats=2 set-field=\"ip.ttl=3 tcp.flags=24\"",
	       "surgery_format prints the keys set, in table order");
	surgery_init(&a);
	surgery_init(&b);
	setk("fake-ttl", "3");
	memcpy(&a, &sg, sizeof(a));
	memcpy(&b, &sg, sizeof(b));
	ok(surgery_equal(&a, &b), "equal copies are equal");
	b.split[1].off = -3;
	ok(!surgery_equal(&a, &b), "a different split position is not equal");
	memcpy(&b, &a, sizeof(b));
	b.fields[0].value = 4;
	ok(!surgery_equal(&a, &b), "a different field value is not equal");
}

/* ---- set-field -------------------------------------------------------------- */

/* A packet of the field's protocol and family (or of both families for L4 fields). */
static size_t build_for(uint8_t *d, const char *name, int v)
{
	static const uint8_t pl[] = "GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n";

	if (!strncmp(name, "udp.", 4))
		return build_udp(d, v, pl, sizeof(pl) - 1);
	if (!strncmp(name, "icmp.", 5))
		return build_icmp(d, v);
	return build_tcp(d, v, pl, sizeof(pl) - 1, 0x18);
}

static void test_set_field(void)
{
	uint8_t d[2048];
	struct surg_out o;

	for (size_t fi = 0; fi < surgery_nfield_names(); fi++) {
		const char *name = surgery_field_name(fi);
		bool ip4 = !strncmp(name, "ip.", 3), ip6 = !strncmp(name, "ip6.", 4);

		for (int v = V4; v <= V6; v += 2) {
			char spec[128], err[256];
			bool wrongfam = (ip4 && v == V6) || (ip6 && v == V4);
			const char *val;
			size_t len = build_for(d, name, v);
			int r;

			if (!strcmp(name, "ip.src") || !strcmp(name, "ip.dst"))
				val = "203.0.113.77";
			else if (!strcmp(name, "ip6.src") || !strcmp(name, "ip6.dst"))
				val = "2001:db8:ffff::abcd";
			else if (!strcmp(name, "ip.proto") || !strcmp(name, "ip6.nxt"))
				val = "6";	/* the same protocol: the checksums stay checkable */
			else if (!strcmp(name, "ip.df"))
				val = "0";	/* built with DF */
			else if (!strcmp(name, "ip.mf"))
				val = "1";
			else if (strstr(name, "ecn"))
				val = "2";
			else if (strstr(name, "dscp"))
				val = "0x2a";
			else if (!strcmp(name, "tcp.seq") || !strcmp(name, "tcp.ack"))
				val = "0xdeadbeef";
			else if (!strcmp(name, "ip6.flowlabel"))
				val = "0xabcde";
			else if (!strcmp(name, "tcp.flags"))
				val = "0x11";
			else
				val = "0xa5";
			snprintf(spec, sizeof(spec), "%s=%s", name, val);
			surgery_release(&sg);
			r = surgery_parse_set_field(&sg, spec, err, sizeof(err));
			if (!ok(r == 0, "set-field %s parses", spec)) {
				diag("%s", err);
				continue;
			}
			out_init(&o);
			r = surgery_apply(&sg, d, len, NULL, 1, &o);
			if (!ok(r == 0 && o.n == 1 && o.pkt[0].len == len, "v%d %s: one packet, same length", v, spec))
				continue;
			if (wrongfam) {
				ok((o.skipped & SURG_SKIP_FIELD) && !memcmp(opkt(&o, 0), d, len),
				   "v%d %s: another family's field is skipped and counted", v, spec);
				continue;
			}
			/* read the field back through a second parse of its own printout */
			{
				const uint8_t *q = opkt(&o, 0);
				struct pkt p = { .data = (uint8_t *)q, .len = len, .cap = len };
				char pr[128], got[64];
				struct strbuf sb = { pr, sizeof(pr), 0, false };
				uint64_t want = 0;

				pkt_parse(&p);
				surgery_print_set_field(&sb, &sg);
				const char *ev = strchr(pr, '=') + 1;

				if (!strcmp(name, "ip.src") || !strcmp(name, "ip.dst"))
					inet_ntop(AF_INET, q + (name[3] == 's' ? 12 : 16), got, sizeof(got));
				else if (!strcmp(name, "ip6.src") || !strcmp(name, "ip6.dst"))
					inet_ntop(AF_INET6, q + (name[4] == 's' ? 8 : 24), got, sizeof(got));
				else {
					const uint8_t *l4 = q + p.l4off;

					if (!strcmp(name, "ip.tos")) want = q[1];
					else if (!strcmp(name, "ip.dscp")) want = q[1] >> 2;
					else if (!strcmp(name, "ip.ecn")) want = q[1] & 3;
					else if (!strcmp(name, "ip.id")) want = get16(q + 4);
					else if (!strcmp(name, "ip.df")) want = q[6] >> 6 & 1;
					else if (!strcmp(name, "ip.mf")) want = q[6] >> 5 & 1;
					else if (!strcmp(name, "ip.ttl")) want = q[8];
					else if (!strcmp(name, "ip.proto")) want = q[9];
					else if (!strcmp(name, "ip6.tc")) want = (get32(q) >> 20) & 0xff;
					else if (!strcmp(name, "ip6.dscp")) want = (get32(q) >> 22) & 0x3f;
					else if (!strcmp(name, "ip6.ecn")) want = (get32(q) >> 20) & 3;
					else if (!strcmp(name, "ip6.flowlabel")) want = get32(q) & 0xfffff;
					else if (!strcmp(name, "ip6.hlim")) want = q[7];
					else if (!strcmp(name, "ip6.nxt")) want = q[6];
					else if (!strcmp(name, "tcp.sport") || !strcmp(name, "udp.sport")) want = get16(l4);
					else if (!strcmp(name, "tcp.dport") || !strcmp(name, "udp.dport")) want = get16(l4 + 2);
					else if (!strcmp(name, "tcp.seq")) want = get32(l4 + 4);
					else if (!strcmp(name, "tcp.ack")) want = get32(l4 + 8);
					else if (!strcmp(name, "tcp.flags")) want = l4[13];
					else if (!strcmp(name, "tcp.window")) want = get16(l4 + 14);
					else if (!strcmp(name, "tcp.urg")) want = get16(l4 + 18);
					else if (!strcmp(name, "icmp.type")) want = l4[0];
					else if (!strcmp(name, "icmp.code")) want = l4[1];
					else if (!strcmp(name, "icmp.id")) want = get16(l4 + 4);
					else if (!strcmp(name, "icmp.seq")) want = get16(l4 + 6);
					snprintf(got, sizeof(got), "%llu", (unsigned long long)want);
				}
				is_str(got, ev, "v%d %s: the field reads back", v, spec);
				ok(csums_ok(q, len), "v%d %s: checksums equal a full recompute (RFC 1624 update)",
				   v, spec);
			}
		}
	}

	/* several at once, the design's example, on v4 TCP */
	{
		size_t len = build_for(d, "tcp", V4);

		surgery_release(&sg);
		setk("set-field", "tcp.window=1024 ip.df=1 ip.id=0 ip.ttl=5 ip.src=10.9.8.7 tcp.seq=0x80000000");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && o.n == 1, "six fields at once");
		ok(csums_ok(opkt(&o, 0), len) && get16(opkt(&o, 0) + 20 + 14) == 1024 &&
			   get16(opkt(&o, 0) + 4) == 0 && opkt(&o, 0)[8] == 5,
		   "six fields: values set and checksums equal a full recompute");
		/* IPv4 UDP without checksum stays without */
		len = build_udp(d, V4, (const uint8_t *)"abc", 3);
		put16(d + 26, 0);
		surgery_release(&sg);
		setk("set-field", "udp.dport=99 ip.dst=10.0.0.1");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && get16(opkt(&o, 0) + 26) == 0 &&
			   get16(opkt(&o, 0) + 22) == 99,
		   "IPv4 UDP checksum 0 (none) stays 0");
	}
}

/* ---- strip-tcp-option ------------------------------------------------------- */

static void test_strip(void)
{
	uint8_t d[512];
	struct surg_out o;

	for (int v = V4; v <= V6; v += 2) {
		size_t len = build_tcp(d, v, (const uint8_t *)"xyz", 3, 0x18), t = v == V4 ? 20 : 40;
		const uint8_t *q;

		surgery_release(&sg);
		setk("strip-tcp-option", "timestamp,sack-perm");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && o.n == 1 && o.pkt[0].len == len,
		   "v%d strip: one packet, same length", v);
		q = opkt(&o, 0);
		ok(!memcmp(q + t + 20, d + t + 20, 4) && !memcmp(q + t + 24, "\1\1", 2) &&
			   !memcmp(q + t + 26, "\1\1\1\1\1\1\1\1\1\1", 10) && !memcmp(q + t + 36, d + t + 36, 4),
		   "v%d strip: sack-perm and timestamp are NOPs, mss and wscale kept", v);
		ok(csums_ok(q, len), "v%d strip: checksum equals a full recompute", v);
		len = build_udp(d, v, (const uint8_t *)"x", 1);
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && (o.skipped & SURG_SKIP_STRIP) &&
			   !memcmp(opkt(&o, 0), d, len),
		   "v%d strip on UDP: skipped, packet unchanged", v);
	}
}

/* ---- split and disorder ----------------------------------------------------- */

static const char hello[] = "\x16\x03\x01\x00\x40 ...ClientHello... server_name: www.example.com ...end of hello...";

static void check_split(int v, const char *spec, const struct surg_marks *mk, const uint32_t *want,
			unsigned int nwant, bool disorder)
{
	const uint8_t *pl = (const uint8_t *)hello;
	size_t plen = sizeof(hello) - 1;
	uint8_t d[512], cat[512];
	size_t len = build_tcp(d, v, pl, plen, 0x19), hl = (v == V4 ? 20 : 40) + 40, catlen = 0;
	struct surg_out o;
	bool seq_ok = true, flags_ok = true, csum_ok = true, id_ok = true, cut_ok = true;

	surgery_release(&sg);
	setk("split", spec);
	if (disorder)
		setk("disorder", "true");
	out_init(&o);
	if (!ok(!surgery_apply(&sg, d, len, mk, 1, &o) && o.n == nwant + 1,
		"v%d split=%s%s: %u parts", v, spec, disorder ? " disorder" : "", nwant + 1)) {
		diag("n %u skipped %#x", o.n, o.skipped);
		return;
	}
	for (unsigned int i = 0; i <= nwant; i++) {
		unsigned int k = disorder ? nwant - i : i;
		const uint8_t *q = opkt(&o, k);
		size_t ql = o.pkt[k].len;
		uint32_t from = i ? want[i - 1] : 0, to = i < nwant ? want[i] : (uint32_t)plen;

		seq_ok &= get32(q + hl - 40 + 4) == 0xfffffff0u + from;
		flags_ok &= (q[hl - 40 + 13] & 0x09) == (i == nwant ? 0x09 : 0) && (q[hl - 40 + 13] & 0x10);
		csum_ok &= csums_ok(q, ql);
		if (v == V4)
			id_ok &= get16(q + 4) == 0x1234 + i && get16(q + 2) == ql;
		else
			id_ok &= get16(q + 4) == ql - 40;
		cut_ok &= ql - hl == to - from && q[0] == d[0] && !memcmp(q + hl - 40, d + hl - 40, 4);
		memcpy(cat + catlen, q + hl, ql - hl);
		catlen += ql - hl;
	}
	ok(cut_ok, "v%d split=%s: parts cut at the resolved offsets", v, spec);
	ok(seq_ok, "v%d split=%s: sequence numbers (wrapping) follow the payload", v, spec);
	ok(flags_ok, "v%d split=%s: PSH and FIN only on the last part, ACK on all", v, spec);
	ok(csum_ok, "v%d split=%s: checksums equal a full recompute", v, spec);
	ok(id_ok, "v%d split=%s: IP lengths right, IPv4 IDs id, id+1, ...", v, spec);
	ok(catlen == plen && !memcmp(cat, pl, plen), "v%d split=%s: parts concatenated are the payload", v, spec);
}

static void test_split(void)
{
	const char *sni = memmem(hello, sizeof(hello) - 1, "www.example.com", 15);
	int32_t so = (int32_t)(sni - hello);
	struct surg_marks mk = { so, 15, -1, -1 }, hostmk = { -1, -1, so, 15 }, none = { -1, -1, -1, -1 };
	size_t plen = sizeof(hello) - 1;
	uint8_t d[512];
	struct surg_out o;

	for (int v = V4; v <= V6; v += 2) {
		uint32_t w1[] = { 1 }, w5[] = { 5, (uint32_t)plen - 3 }, ws[] = { (uint32_t)so },
			 ws2[] = { (uint32_t)so + 2 }, wm[] = { (uint32_t)so + 4 + 3 },
			 wall[] = { 1, 5, (uint32_t)so, (uint32_t)so + 7, (uint32_t)plen - 1 };

		check_split(v, "1", NULL, w1, 1, false);
		check_split(v, "1", NULL, w1, 1, true);
		check_split(v, "5,-3", NULL, w5, 2, false);
		check_split(v, "-3,5", NULL, w5, 2, true);
		check_split(v, "sni", &mk, ws, 1, false);
		check_split(v, "sni", &mk, ws, 1, true);
		check_split(v, "sni+2", &mk, ws2, 1, false);
		check_split(v, "host", &hostmk, ws, 1, false);
		check_split(v, "midsld", &mk, wm, 1, false);
		check_split(v, "midsld", &hostmk, wm, 1, true);
		check_split(v, "-1,sni,1,5,midsld,sni+7", &mk, wall, 5, false);

		/* left whole: a named position absent, beyond the payload, SYN, UDP */
		size_t len = build_tcp(d, v, (const uint8_t *)hello, plen, 0x18);
		const struct {
			const char *spec;
			const struct surg_marks *mk;
		} whole[] = { { "sni", &none }, { "sni", NULL }, { "midsld", &none }, { "500", NULL },
			      { "-500", NULL }, { "1,500", NULL } };

		for (size_t i = 0; i < ARRAY_SIZE(whole); i++) {
			surgery_release(&sg);
			setk("split", whole[i].spec);
			out_init(&o);
			ok(!surgery_apply(&sg, d, len, whole[i].mk, 1, &o) && o.n == 1 &&
				   o.pkt[0].len == len && !memcmp(opkt(&o, 0), d, len) &&
				   (o.skipped & SURG_SKIP_SPLIT),
			   "v%d split=%s (%s): left whole and counted", v, whole[i].spec,
			   whole[i].mk ? "no mark" : "beyond");
		}
		len = build_tcp(d, v, (const uint8_t *)hello, plen, 0x02);
		surgery_release(&sg);
		setk("split", "1");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && o.n == 1 && (o.skipped & SURG_SKIP_SPLIT),
		   "v%d split of a SYN with data: left whole", v);
		len = build_udp(d, v, (const uint8_t *)hello, plen);
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && o.n == 1 && (o.skipped & SURG_SKIP_SPLIT_UDP) &&
			   !memcmp(opkt(&o, 0), d, len),
		   "v%d split of UDP: left whole, counted as such", v);
	}
}

/* ---- ipfrag ----------------------------------------------------------------- */

/* Reassemble fragments o->pkt[first..first+n) into r; returns its length or 0. */
static size_t reassemble(const struct surg_out *o, unsigned int first, unsigned int n, uint8_t *r,
			 bool *hdr_ok)
{
	uint8_t data[PKT_MAX];
	size_t hl = 0, total = 0, got = 0;
	uint32_t id = 0;

	*hdr_ok = true;
	for (unsigned int i = first; i < first + n; i++) {
		const uint8_t *q = opkt(o, i);
		size_t ql = o->pkt[i].len, off, plen, fh;
		bool more;

		if ((q[0] >> 4) == 4) {
			hl = (size_t)(q[0] & 0xf) * 4;
			off = (size_t)(get16(q + 6) & 0x1fff) * 8;
			more = get16(q + 6) & 0x2000;
			*hdr_ok &= !(get16(q + 6) & 0x4000) && get16(q + 2) == ql &&
				   ref_fold(ref_sum(q, hl, 0)) == 0xffff;
			if (i == first)
				id = get16(q + 4);
			*hdr_ok &= get16(q + 4) == id;
			fh = hl;
		} else {
			hl = 40;
			*hdr_ok &= q[6] == 44 && get16(q + 4) == ql - 40;
			off = get16(q + 42) & 0xfff8;
			more = q[43] & 1;
			if (i == first)
				id = get32(q + 44);
			*hdr_ok &= get32(q + 44) == id;
			fh = 48;
		}
		plen = ql - fh;
		if (off + plen > sizeof(data))
			return 0;
		memcpy(data + off, q + fh, plen);
		got += plen;
		if (!more)
			total = off + plen;
		if (off == 0) {
			memcpy(r, q, hl);
			if ((q[0] >> 4) == 6)
				r[6] = q[40];
		}
	}
	if (!total || got != total)	/* holes or overlaps */
		*hdr_ok = false;
	if (!total)
		return 0;
	memcpy(r + hl, data, total);
	if ((r[0] >> 4) == 4) {
		put16(r + 2, (uint16_t)(hl + total));
		put16(r + 6, 0);
		put16(r + 10, 0);
		put16(r + 10, ref_csum(ref_sum(r, hl, 0)));
	} else {
		put16(r + 4, (uint16_t)total);
	}
	return hl + total;
}

static void test_ipfrag(void)
{
	uint8_t d[2048], pl[1200], r[PKT_MAX];
	struct surg_out o;

	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(i * 7 + 3);
	for (int v = V4; v <= V6; v += 2)
		for (int udp = 0; udp <= 1; udp++) {
			size_t len = udp ? build_udp(d, v, pl, sizeof(pl)) : build_tcp(d, v, pl, sizeof(pl), 0x18);
			const char *what = udp ? "UDP" : "TCP";
			bool hdr_ok;
			size_t rl;

			surgery_release(&sg);
			setk("ipfrag", udp ? "24" : "32");
			out_init(&o);
			if (!ok(!surgery_apply(&sg, d, len, NULL, 99, &o) && o.n == 2,
				"v%d %s ipfrag=%s: two fragments", v, what, udp ? "24" : "32"))
				continue;
			ok(o.pkt[0].len == (size_t)(v == V4 ? 20 : 48) + (udp ? 24 : 32),
			   "v%d %s: the first carries the bytes before the offset", v, what);
			rl = reassemble(&o, 0, 2, r, &hdr_ok);
			ok(hdr_ok, "v%d %s: fragment headers right (DF clear, MF, offsets, one ID, lengths)", v, what);
			if (v == V4)
				d[6] = 0, put16(d + 10, 0), put16(d + 10, ref_csum(ref_sum(d, 20, 0)));
			ok(rl == len && !memcmp(r, d, len), "v%d %s: reassembled equals the original (DF aside)", v,
			   what);
			ok(csums_ok(r, rl), "v%d %s: reassembled checksum valid", v, what);
			if (v == V6) {
				struct surg_out o2;
				uint8_t save[128];

				memcpy(save, opkt(&o, 0), 48);
				out_init(&o2);
				o2.buf = arena + SURG_ARENA_SIZE(PKT_MAX) / 2;
				o2.cap = SURG_ARENA_SIZE(PKT_MAX) / 2;
				ok(!surgery_apply(&sg, d, len, NULL, 100, &o2) &&
					   get32(save + 44) != get32(o2.buf + o2.pkt[0].off + 44),
				   "v6 %s: the identification comes from the seed", what);
			}
			/* split then fragment, disorder reverses everything */
			if (!udp) {
				surgery_release(&sg);
				setk("split", "600");
				setk("ipfrag", "64");
				setk("disorder", "true");
				out_init(&o);
				ok(!surgery_apply(&sg, d, len, NULL, 5, &o) && o.n == 4,
				   "v%d split=600 ipfrag=64: four packets", v);
				rl = reassemble(&o, 2, 2, r, &hdr_ok);
				ok(hdr_ok && rl && (v == V4 ? get16(r + 2) : get16(r + 4) + 40u) == rl &&
					   get32(r + (v == V4 ? 20 : 40) + 4) == 0xfffffff0u &&
					   !memcmp(r + rl - 600, pl, 600) && csums_ok(r, rl),
				   "v%d: the last two (disorder) reassemble into the first part", v);
			}
			/* IPv6: the first fragment must hold the fixed TCP header (RFC 7112) */
			if (!udp) {
				surgery_release(&sg);
				setk("ipfrag", "16");
				out_init(&o);
				ok(!surgery_apply(&sg, d, len, NULL, 1, &o) &&
					   o.n == (v == V4 ? 2u : 1u) &&
					   (v == V4 || (o.skipped & SURG_SKIP_IPFRAG)),
				   "v%d TCP ipfrag=16 inside the 20 fixed bytes of the TCP header: %s", v,
				   v == V4 ? "cut (IPv4 allows it)" : "whole, counted (RFC 7112)");
			}
			/* beyond the payload: whole */
			surgery_release(&sg);
			setk("ipfrag", "2000");
			out_init(&o);
			ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && o.n == 1 && (o.skipped & SURG_SKIP_IPFRAG),
			   "v%d %s ipfrag beyond the payload: whole, counted", v, what);
		}
	/*
	 * A Fragment header in the chain already, behind an AH (an atomic one:
	 * offset 0, M clear): a second one would make the packet invalid (RFC
	 * 8200 4.1), so it stays whole, counted.  Found by fuzz-surgery.
	 */
	{
		size_t len = build_udp(d, V6, pl, 64), ext = 24 + 8;
		struct pkt q = { 0 };

		memmove(d + 40 + ext, d + 40, len - 40);
		memset(d + 40, 0, ext);
		d[6] = IPPROTO_AH;
		d[40] = IPPROTO_FRAGMENT;	/* AH: (4 + 2) * 4 = 24 bytes */
		d[41] = 4;
		d[64] = IPPROTO_UDP;		/* Fragment: offset 0, M clear */
		len += ext;
		put16(d + 4, (uint16_t)(len - 40));
		q.data = d;
		q.len = q.cap = len;
		ok(pkt_parse(&q) == PKT_OK && q.l4proto == IPPROTO_UDP,
		   "v6 AH, an atomic Fragment header, UDP: pkt_parse() takes it");
		surgery_release(&sg);
		/* 48: the first fragment would hold the whole chain (RFC 7112) */
		setk("ipfrag", "48");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && o.n == 1 && (o.skipped & SURG_SKIP_IPFRAG) &&
			   o.pkt[0].len == len && !memcmp(opkt(&o, 0), d, len),
		   "v6 with a Fragment header behind AH: ipfrag=48 leaves it whole, counted");
	}
}

/* ---- fake ------------------------------------------------------------------- */

static void test_fake(void)
{
	uint8_t d[512];
	struct surg_out o;
	static const uint8_t pl[] = "the real payload, 33 bytes long!";

	for (int v = V4; v <= V6; v += 2) {
		size_t len = build_tcp(d, v, pl, sizeof(pl) - 1, 0x18), ih = v == V4 ? 20 : 40;
		const uint8_t *q;
		bool zero = true;

		surgery_release(&sg);
		setk("fake", "zero");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && o.n == 2, "v%d fake=zero: decoy and real", v);
		q = opkt(&o, 0);
		for (size_t i = ih + 40; i < len; i++)
			zero &= q[i] == 0;
		ok(o.pkt[0].len == len && zero && !memcmp(q, d, 4) && csums_ok(q, len),
		   "v%d fake=zero: same length, zero payload, valid checksums", v);
		ok(o.pkt[1].len == len && !memcmp(opkt(&o, 1), d, len), "v%d fake: the real packet follows unchanged",
		   v);

		surgery_release(&sg);
		setk("fake", "random");
		setk("fake-ttl", "1");
		setk("fake-badseq", "true");
		setk("fake-repeats", "3");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 7, &o) && o.n == 4, "v%d fake-repeats=3: three decoys", v);
		q = opkt(&o, 0);
		ok(q[v == V4 ? 8 : 7] == 1 && get32(q + ih + 4) == 0xfffffff0u - SURG_BADSEQ_DELTA &&
			   memcmp(q + ih + 40, pl, sizeof(pl) - 1) && csums_ok(q, len),
		   "v%d fake=random fake-ttl=1 fake-badseq: TTL 1, seq moved back, random payload, valid sums",
		   v);
		ok(!memcmp(opkt(&o, 1), q, len) && !memcmp(opkt(&o, 2), q, len),
		   "v%d fake-repeats: copies of one decoy", v);

		surgery_release(&sg);
		setk("fake", "hex:160301");
		setk("fake-badsum", "true");
		setk("fake-md5sig", "true");
		setk("split", "4");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 7, &o) && o.n == 3, "v%d fake+split: decoy then two parts", v);
		q = opkt(&o, 0);
		/* build_tcp has 20 bytes of options: with MD5 60, the maximum */
		ok(o.pkt[0].len == ih + 60 + 3 && (q[ih + 12] >> 4) == 15 && q[ih + 40] == 19 && q[ih + 41] == 18 &&
			   !memcmp(q + ih + 60, "\x16\x03\x01", 3),
		   "v%d fake-md5sig: option 19 of 18 bytes added, data offset 15, hex payload", v);
		ok(!csums_ok(q, o.pkt[0].len) &&
			   (get16(q + ih + 16) ^ 0x5555) == ref_l4(q, o.pkt[0].len, v, ih, IPPROTO_TCP, 16) &&
			   (v == V6 || ref_fold(ref_sum(q, 20, 0)) == 0xffff),
		   "v%d fake-badsum: the TCP checksum is wrong (right one ^ 0x5555), the IP one right", v);
		ok(csums_ok(opkt(&o, 1), o.pkt[1].len) && csums_ok(opkt(&o, 2), o.pkt[2].len),
		   "v%d fake+split: the real parts have valid checksums", v);

		/* MD5 does not fit after 40 bytes of options: skipped and reported */
		{
			uint8_t e[512];
			size_t el;

			memcpy(e, d, len);
			e[ih + 12] = 15 << 4;	/* pretend 40 bytes of options: 20 NOPs more */
			memmove(e + ih + 60, e + ih + 40, len - ih - 40);
			memset(e + ih + 40, 1, 20);
			el = len + 20;
			if (v == V4)
				put16(e + 2, (uint16_t)el);
			else
				put16(e + 4, (uint16_t)(el - 40));
			finish(e, el);
			out_init(&o);
			ok(!surgery_apply(&sg, e, el, NULL, 7, &o) && (o.skipped & SURG_SKIP_MD5SIG) &&
				   (opkt(&o, 0)[ih + 12] >> 4) == 15 && o.pkt[0].len == ih + 60 + 3,
			   "v%d fake-md5sig beyond 60 bytes of TCP header: skipped, reported", v);
		}

		/* UDP decoy */
		len = build_udp(d, v, pl, sizeof(pl) - 1);
		surgery_release(&sg);
		setk("fake", "hex:0102030405");
		setk("fake-badseq", "true");
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 7, &o) && o.n == 2 && o.pkt[0].len == ih + 8 + 5 &&
			   get16(opkt(&o, 0) + ih + 4) == 13 && csums_ok(opkt(&o, 0), o.pkt[0].len) &&
			   (o.skipped & SURG_SKIP_BADSEQ),
		   "v%d UDP fake=hex: its own length, UDP length and checksum right; badseq skipped", v);
		len = build_icmp(d, v);
		out_init(&o);
		ok(!surgery_apply(&sg, d, len, NULL, 7, &o) && o.n == 1 && (o.skipped & SURG_SKIP_FAKE),
		   "v%d fake on ICMP: no decoy, counted", v);
	}
}

/* ---- bounds ----------------------------------------------------------------- */

static void test_bounds(void)
{
	static uint8_t small[4096 + 64];
	uint8_t d[2048], pl[1200];
	struct surg_out o;
	size_t len, cap;
	int r = 0;
	bool untouched = true, some_enospc = false, some_ok = false;

	memset(pl, 'a', sizeof(pl));
	len = build_tcp(d, V6, pl, sizeof(pl), 0x18);
	surgery_release(&sg);
	setk("fake", "random");
	setk("fake-repeats", "2");
	setk("split", "100,200,300");
	setk("ipfrag", "48");
	for (cap = 0; cap <= 4096; cap += 97) {
		memset(small, 0xee, sizeof(small));
		memset(&o, 0, sizeof(o));
		o.buf = small;
		o.cap = cap;
		r = surgery_apply(&sg, d, len, NULL, 1, &o);
		some_enospc |= r == -ENOSPC;
		some_ok |= r == 0;
		for (size_t i = cap; i < sizeof(small); i++)
			untouched &= small[i] == 0xee;
	}
	ok(some_enospc && untouched, "small arenas: -ENOSPC, nothing written past cap");
	r = 0;
	out_init(&o);
	ok(!surgery_apply(&sg, d, len, NULL, 1, &o) && o.n == 2 + 8, "the same with room: 2 decoys + 4 parts x 2");
	for (unsigned int i = 0; i < o.n; i++)
		r |= o.pkt[i].off + o.pkt[i].len > o.cap;
	ok(!r, "every output inside the arena");
	(void)some_ok;
	ok(surgery_apply(&sg, d, 10, NULL, 1, &o) == -EINVAL, "a packet pkt_parse() refuses: -EINVAL");

	/* the worst case fits SURG_ARENA_SIZE(len) */
	for (int v = V4; v <= V6; v += 2) {
		static uint8_t big[PKT_MAX];
		static uint8_t bpl[60000];

		len = build_tcp(big, v, bpl, sizeof(bpl), 0x18);
		surgery_release(&sg);
		setk("fake", "random");
		setk("fake-md5sig", "true");
		setk("fake-repeats", "10");
		setk("split", "1,2,3,4,5,6,7,-1");
		setk("ipfrag", "64");
		out_init(&o);
		o.cap = SURG_ARENA_SIZE(len);
		r = surgery_apply(&sg, big, len, NULL, 1, &o);
		ok(r == 0 && o.n == 10 + 8 + 2, "v%d %zu bytes, 10 decoys, 9 parts, the big one fragmented: fits SURG_ARENA_SIZE", v, len);
		if (r || o.n != 20)
			diag("r %d n %u skipped %#x", r, o.n, o.skipped);
	}
}

/*
 * surgery-whole: apply sg to d and count what came out as the daemon does
 * (manager_process_cut()), then ask surgery_whole().
 */
static bool whole_of(const uint8_t *d, size_t len, const struct surg_marks *mk)
{
	unsigned int decoys = 0, parts = 0, fragments = 0;
	struct pkt p = { .data = (uint8_t *)d, .len = len, .cap = len };
	struct surg_out o;

	out_init(&o);
	if (surgery_apply(&sg, d, len, mk, 1, &o) < 0 || pkt_parse(&p) != PKT_OK) {
		diag("surgery_apply or pkt_parse failed");
		return false;
	}
	if (sg.fake && !(o.skipped & SURG_SKIP_FAKE))
		decoys = sg.fake_repeats;
	if (decoys >= o.n)
		decoys = 0;
	for (unsigned int k = decoys; k < o.n; k++) {
		struct pkt q = { .data = o.buf + o.pkt[k].off, .len = o.pkt[k].len, .cap = o.pkt[k].len };
		bool parsed = pkt_parse(&q) == PKT_OK;

		if (parsed && q.fragment)
			fragments++;
		if (!parsed || q.first_fragment)
			parts++;
	}
	return surgery_whole(&sg, &p, parts, fragments, decoys);
}

static void test_whole(void)
{
	static const uint8_t pl[100] = "GET / HTTP/1.1";
	struct surg_marks none = { -1, -1, -1, -1 };
	uint8_t d[1600];
	size_t len;

	for (int v = V4; v <= V6; v += 2) {
		surgery_release(&sg);
		setk("split", "10");
		len = build_tcp(d, v, pl, sizeof(pl), 0x18);
		ok(!whole_of(d, len, &none), "v%d whole: split=10 of 100 bytes cuts: not whole", v);
		len = build_tcp(d, v, pl, 0, 0x10);
		ok(!whole_of(d, len, &none), "v%d whole: a bare ACK of a split rule's flow is not counted", v);
		len = build_tcp(d, v, pl, 0, 0x02);
		ok(!whole_of(d, len, &none), "v%d whole: a SYN is not counted", v);
		len = build_tcp(d, v, pl, 5, 0x18);
		ok(whole_of(d, len, &none), "v%d whole: split=10 beyond a 5-byte payload: counted", v);
		len = build_udp(d, v, pl, sizeof(pl));
		ok(!whole_of(d, len, &none), "v%d whole: a split of UDP is not counted", v);
		len = build_icmp(d, v);
		ok(!whole_of(d, len, &none), "v%d whole: ICMP is not counted", v);

		surgery_release(&sg);
		setk("split", "sni+1");
		len = build_tcp(d, v, pl, sizeof(pl), 0x18);
		ok(whole_of(d, len, &none), "v%d whole: split=sni+1, no server name in the payload: counted", v);
		len = build_tcp(d, v, pl, 0, 0x10);
		ok(!whole_of(d, len, &none), "v%d whole: split=sni+1, a bare ACK: not counted", v);

		surgery_release(&sg);
		setk("ipfrag", "64");
		len = build_udp(d, v, pl, 20);
		ok(whole_of(d, len, &none), "v%d whole: ipfrag=64 of a 20-byte datagram: counted", v);
		len = build_udp(d, v, pl, 0);
		ok(whole_of(d, len, &none), "v%d whole: ipfrag=64 of an empty datagram: counted", v);
		len = build_udp(d, v, pl, sizeof(pl));
		ok(!whole_of(d, len, &none), "v%d whole: ipfrag=64 of 100 bytes cuts: not whole", v);
		len = build_tcp(d, v, pl, 0, 0x10);
		ok(!whole_of(d, len, &none), "v%d whole: ipfrag=64, a bare ACK: not counted", v);

		surgery_release(&sg);
		setk("fake", "random");
		len = build_tcp(d, v, pl, sizeof(pl), 0x18);
		ok(!whole_of(d, len, &none), "v%d whole: fake=random with payload: a decoy, not whole", v);
		len = build_icmp(d, v);
		ok(!whole_of(d, len, &none), "v%d whole: fake of ICMP: not counted", v);
	}
	surgery_release(&sg);
}

int main(void)
{
	test_values();
	test_set_field();
	test_strip();
	test_split();
	test_ipfrag();
	test_fake();
	test_bounds();
	test_whole();
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
