/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table: both directions in one flow (TCP, UDP, ICMP echo; IPv4
 * and IPv6), positions and bytes per direction, the TCP state machine (RST,
 * FIN grace, port reuse, mid-stream pickup), timeouts on a fake clock, the
 * entry bound with LRU eviction counted exactly, the expiry budget, the
 * reassembly pool, listing and the line format, and no allocation after
 * creation (malloc, calloc and realloc are wrapped at link time, so calls
 * from flow.o are counted here).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "flow.h"
#include "hello.h"
#include "packet.h"
#include "tap.h"
#include "testdata.h"
#include "util.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (1000 * SEC)

/* ---- counted allocation ---------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
static unsigned long allocs;

void *__wrap_malloc(size_t n)
{
	allocs++;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	allocs++;
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	allocs++;
	return __real_realloc(p, n);
}

/* ---- packets --------------------------------------------------------------- */

#define TF_FIN 0x01
#define TF_SYN 0x02
#define TF_RST 0x04
#define TF_ACK 0x10

struct tpkt {
	uint8_t buf[1600];
	struct pkt p;
};

/* One packet a -> b: TCP/UDP with ports, or ICMP(v6) with type and id (in sport). */
static struct pkt *mk(struct tpkt *t, int family, uint8_t proto, const char *a, uint16_t sport,
		      const char *b, uint16_t dport, uint8_t flags, size_t payload)
{
	uint8_t *d = t->buf, *l4;
	size_t hl = family == AF_INET ? 20 : 40, l4hl;

	l4hl = proto == IPPROTO_TCP ? 20 : 8;
	memset(t->buf, 0, sizeof(t->buf));
	if (family == AF_INET) {
		d[0] = 0x45;
		put_be16(d + 2, (uint16_t)(hl + l4hl + payload));
		d[8] = 64;
		d[9] = proto;
		inet_pton(AF_INET, a, d + 12);
		inet_pton(AF_INET, b, d + 16);
	} else {
		d[0] = 0x60;
		put_be16(d + 4, (uint16_t)(l4hl + payload));
		d[6] = proto;
		d[7] = 64;
		inet_pton(AF_INET6, a, d + 8);
		inet_pton(AF_INET6, b, d + 24);
	}
	l4 = d + hl;
	if (proto == IPPROTO_TCP) {
		put_be16(l4, sport);
		put_be16(l4 + 2, dport);
		l4[12] = 5 << 4;
		l4[13] = flags;
	} else if (proto == IPPROTO_UDP) {
		put_be16(l4, sport);
		put_be16(l4 + 2, dport);
		put_be16(l4 + 4, (uint16_t)(8 + payload));
	} else {
		l4[0] = (uint8_t)dport;	/* type */
		put_be16(l4 + 4, sport);	/* echo id */
	}
	memset(l4 + l4hl, 'x', payload);
	t->p = (struct pkt){ .data = t->buf, .len = hl + l4hl + payload, .cap = sizeof(t->buf) };
	if (pkt_parse(&t->p) != PKT_OK)
		diag("test packet did not parse");
	return &t->p;
}

static struct flow_table *table(uint32_t max, uint32_t rbufs)
{
	struct flow_params prm = { .max_entries = max, .rbufs = rbufs, .seed = 12345 };
	struct flow_table *t = NULL;

	if (flow_table_new(&prm, &t) < 0)
		diag("flow_table_new failed");
	return t;
}

/* Look a packet up and count it; returns its position. */
static uint64_t feed(struct flow_table *t, const struct pkt *p, uint64_t now, struct flow **fp,
		     enum flow_dir *dirp, bool *newp, uint64_t *before)
{
	struct flow *f = NULL;
	enum flow_dir dir = FLOW_DIR_ORIGINAL;
	bool is_new = false;

	if (flow_lookup_pkt(t, p, now, &f, &dir, &is_new) < 0)
		return 0;
	if (fp)
		*fp = f;
	if (dirp)
		*dirp = dir;
	if (newp)
		*newp = is_new;
	return flow_account(t, f, dir, flow_pkt_payload_len(p), p->l4proto == IPPROTO_TCP ? p->tcp_flags : 0,
			    now, before);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_directions(void)
{
	static const struct {
		int family;
		uint8_t proto;
		const char *a, *b;
		uint16_t ap, bp, req, rep;	/* ICMP: ap is the id, req/rep the types */
		const char *name;
	} c[] = {
		{ AF_INET, IPPROTO_TCP, "198.51.100.7", "192.0.2.1", 40000, 443, 0, 0, "tcp v4" },
		{ AF_INET6, IPPROTO_UDP, "2001:db8::9", "2001:db8::1", 5353, 53, 0, 0, "udp v6" },
		{ AF_INET, IPPROTO_ICMP, "10.0.0.2", "10.0.0.1", 77, 0, 8, 0, "icmp echo v4" },
		{ AF_INET6, IPPROTO_ICMPV6, "2001:db8::1", "2001:db8::2", 78, 0, 128, 129, "icmp6 echo" },
	};
	struct flow_table *t = table(0, 0);
	struct tpkt a, b;

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		bool icmp = c[i].proto == IPPROTO_ICMP || c[i].proto == IPPROTO_ICMPV6;
		struct flow *f1 = NULL, *f2 = NULL;
		enum flow_dir d1 = FLOW_DIR_REPLY, d2 = FLOW_DIR_ORIGINAL;
		bool n1 = false, n2 = true;
		struct pkt *pa, *pb;

		pa = icmp ? mk(&a, c[i].family, c[i].proto, c[i].a, c[i].ap, c[i].b, c[i].req, 0, 0)
			  : mk(&a, c[i].family, c[i].proto, c[i].a, c[i].ap, c[i].b, c[i].bp, TF_SYN, 0);
		pb = icmp ? mk(&b, c[i].family, c[i].proto, c[i].b, c[i].ap, c[i].a, c[i].rep, 0, 0)
			  : mk(&b, c[i].family, c[i].proto, c[i].b, c[i].bp, c[i].a, c[i].ap,
			       TF_SYN | TF_ACK, 0);
		ok(flow_lookup_pkt(t, pa, T0, &f1, &d1, &n1) == 0 && n1 && d1 == FLOW_DIR_ORIGINAL,
		   "%s: the first packet starts a flow, original", c[i].name);
		ok(flow_lookup_pkt(t, pb, T0, &f2, &d2, &n2) == 0 && !n2 && d2 == FLOW_DIR_REPLY,
		   "%s: the answer finds it, reply", c[i].name);
		ok(f1 && f1 == f2, "%s: one flow for both directions", c[i].name);
	}
	{
		struct flow_stats st;

		flow_table_stats(t, &st);
		is_int(st.entries, 4, "four flows in the table");
		is_int(st.created, 4, "four created");
	}
	{
		struct flow_key k;
		unsigned int side;

		mk(&a, AF_INET, IPPROTO_ICMP, "10.0.0.2", 0, "10.0.0.1", 3, 0, 0);
		is_int(flow_key_from_pkt(&a.p, &k, &side), -ENOENT, "an ICMP error is no flow of its own");
		mk(&a, AF_INET, IPPROTO_UDP, "10.0.0.2", 1, "10.0.0.1", 2, 0, 0);
		a.p.first_fragment = false;
		is_int(flow_key_from_pkt(&a.p, &k, &side), -EINVAL, "a non-first fragment has no key");
	}
	flow_table_free(t);
}

static void test_positions(void)
{
	struct flow_table *t = table(0, 0);
	struct tpkt o, r;
	uint64_t before = 99, pos;
	bool good = true;
	struct flow *f = NULL;

	mk(&o, AF_INET, IPPROTO_UDP, "192.0.2.1", 1000, "192.0.2.2", 2000, 0, 100);
	mk(&r, AF_INET, IPPROTO_UDP, "192.0.2.2", 2000, "192.0.2.1", 1000, 0, 30);
	for (unsigned int i = 1; i <= 5; i++) {
		pos = feed(t, &o.p, T0 + i, &f, NULL, NULL, &before);
		good &= pos == i && before == (i - 1) * 100;
	}
	ok(good, "original: positions 1..5, bytes before 0, 100, ... 400");
	pos = feed(t, &r.p, T0 + 10, NULL, NULL, NULL, &before);
	ok(pos == 1 && before == 0, "reply: its own count starts at 1 with 0 bytes before");
	pos = feed(t, &r.p, T0 + 11, NULL, NULL, NULL, &before);
	ok(pos == 2 && before == 30, "reply: position 2, 30 bytes before");
	pos = feed(t, &o.p, T0 + 12, NULL, NULL, NULL, &before);
	ok(pos == 6 && before == 500, "original again: position 6, 500 bytes before");
	ok(f && f->pkts[0] == 6 && f->bytes[0] == 600 && f->pkts[1] == 2 && f->bytes[1] == 60,
	   "totals: 6/600 original, 2/60 reply");
	ok(f && f->first_ns == T0 + 1 && f->last_ns == T0 + 12, "first and last seen");
	flow_table_free(t);
}

static void test_tcp(void)
{
	struct flow_table *t = table(0, 0);
	struct tpkt c, s;
	struct flow *f = NULL, *g = NULL;
	bool is_new = false;
	enum flow_dir dir;
	uint64_t now = T0;

#define C(fl) mk(&c, AF_INET, IPPROTO_TCP, "192.0.2.1", 40000, "192.0.2.9", 80, (fl), 0)
#define S(fl) mk(&s, AF_INET, IPPROTO_TCP, "192.0.2.9", 80, "192.0.2.1", 40000, (fl), 0)
	feed(t, C(TF_SYN), now, &f, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_NEW, "tcp: SYN: new");
	feed(t, S(TF_SYN | TF_ACK), now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_NEW, "tcp: SYN-ACK: still new");
	is_int(f->expires_ns, now + 60 * SEC, "tcp: new expires after 60 s");
	feed(t, C(TF_ACK), now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_ESTABLISHED, "tcp: ACK: established");
	is_int(f->expires_ns, now + 7200 * SEC, "tcp: established expires after 7200 s");
	now += SEC;
	feed(t, S(TF_FIN | TF_ACK), now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_CLOSING, "tcp: FIN: closing");
	is_int(f->expires_ns, now + 10 * SEC, "tcp: closing expires after 10 s");
	now += 5 * SEC;
	feed(t, C(TF_ACK), now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_CLOSING, "tcp: an ACK after the FIN stays closing");
	ok(flow_find(t, &f->key, now + 10 * SEC - 1) == f, "tcp: alive 1 ns before the grace ends");
	ok(!flow_find(t, &f->key, now + 10 * SEC), "tcp: gone when the grace ends");
	flow_lookup_pkt(t, C(TF_ACK), now + 10 * SEC, &g, &dir, &is_new);
	ok(is_new && g == f && g->pkts[0] == 0, "tcp: a packet after the grace starts a new flow");

	/* Port reuse: a SYN on a closing flow starts it again, opened by the sender. */
	feed(t, C(TF_RST), now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_CLOSING, "tcp: RST on a new flow: closing");
	flow_lookup_pkt(t, S(TF_SYN), now + SEC, &g, &dir, &is_new);
	ok(is_new && g == f && dir == FLOW_DIR_ORIGINAL && g->state == FLOW_STATE_NEW,
	   "tcp: a SYN on a closing flow starts it again, its sender original");

	/* RST on an established flow. */
	now += 100 * SEC;
	mk(&c, AF_INET6, IPPROTO_TCP, "2001:db8::1", 1, "2001:db8::2", 2, TF_SYN, 0);
	feed(t, &c.p, now, &f, NULL, NULL, NULL);
	mk(&s, AF_INET6, IPPROTO_TCP, "2001:db8::2", 2, "2001:db8::1", 1, TF_SYN | TF_ACK, 0);
	feed(t, &s.p, now, NULL, NULL, NULL, NULL);
	mk(&c, AF_INET6, IPPROTO_TCP, "2001:db8::1", 1, "2001:db8::2", 2, TF_ACK, 0);
	feed(t, &c.p, now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_ESTABLISHED, "tcp v6: handshake: established");
	mk(&s, AF_INET6, IPPROTO_TCP, "2001:db8::2", 2, "2001:db8::1", 1, TF_RST, 0);
	feed(t, &s.p, now, NULL, NULL, NULL, NULL);
	ok(f->state == FLOW_STATE_CLOSING && f->expires_ns == now + 10 * SEC,
	   "tcp v6: RST: closing, 10 s grace");

	/* A SYN-ACK before any SYN, an ACK without the SYN-ACK: no shortcut to established. */
	mk(&c, AF_INET, IPPROTO_TCP, "10.1.1.1", 5, "10.1.1.2", 6, TF_SYN, 0);
	feed(t, &c.p, now, &f, NULL, NULL, NULL);
	mk(&c, AF_INET, IPPROTO_TCP, "10.1.1.1", 5, "10.1.1.2", 6, TF_ACK, 0);
	feed(t, &c.p, now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_NEW, "tcp: SYN then ACK without SYN-ACK: still new");

	/* Picked up mid-connection: established once both sides spoke. */
	mk(&c, AF_INET, IPPROTO_TCP, "10.2.2.1", 5, "10.2.2.2", 6, TF_ACK, 100);
	feed(t, &c.p, now, &f, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_NEW, "tcp mid-stream: one side: new");
	mk(&s, AF_INET, IPPROTO_TCP, "10.2.2.2", 6, "10.2.2.1", 5, TF_ACK, 0);
	feed(t, &s.p, now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_ESTABLISHED, "tcp mid-stream: both sides: established");
	mk(&c, AF_INET, IPPROTO_TCP, "10.3.3.2", 80, "10.3.3.1", 9, TF_SYN | TF_ACK, 0);
	feed(t, &c.p, now, &f, NULL, NULL, NULL);
	mk(&s, AF_INET, IPPROTO_TCP, "10.3.3.1", 9, "10.3.3.2", 80, TF_ACK, 0);
	feed(t, &s.p, now, NULL, NULL, NULL, NULL);
	is_int(f->state, FLOW_STATE_ESTABLISHED, "tcp picked up at the SYN-ACK: established at the ACK");
#undef C
#undef S
	flow_table_free(t);
}

static void test_timeouts(void)
{
	struct flow_params prm = { .seed = 1 };
	struct flow_table *t = table(0, 0);
	struct tpkt a, b;
	struct flow *f = NULL;
	char err[128];

	mk(&a, AF_INET, IPPROTO_UDP, "192.0.2.1", 1, "192.0.2.2", 2, 0, 0);
	feed(t, &a.p, T0, &f, NULL, NULL, NULL);
	ok(f->state == FLOW_STATE_NEW && f->expires_ns == T0 + 30 * SEC, "udp one way: new, 30 s");
	ok(flow_find(t, &f->key, T0 + 30 * SEC - 1) && !flow_find(t, &f->key, T0 + 30 * SEC),
	   "udp one way: gone after 30 s");
	mk(&b, AF_INET, IPPROTO_UDP, "192.0.2.2", 2, "192.0.2.1", 1, 0, 0);
	feed(t, &b.p, T0 + SEC, NULL, NULL, NULL, NULL);
	ok(f->state == FLOW_STATE_ESTABLISHED && f->expires_ns == T0 + 121 * SEC,
	   "udp both ways: established, 120 s after the last packet");

	mk(&a, AF_INET, IPPROTO_ICMP, "192.0.2.1", 9, "192.0.2.2", 8, 0, 0);
	feed(t, &a.p, T0, &f, NULL, NULL, NULL);
	is_int(f->expires_ns, T0 + 30 * SEC, "icmp echo: 30 s");
	mk(&a, AF_INET, 47, "192.0.2.1", 0, "192.0.2.2", 0, 0, 0);
	feed(t, &a.p, T0, &f, NULL, NULL, NULL);
	ok(f && f->key.proto == 47 && f->expires_ns == T0 + 30 * SEC, "gre: keyed without ports, 30 s");
	flow_table_free(t);

	prm.timeout_s[FLOW_TO_UDP_NEW] = 5;
	prm.timeout_s[FLOW_TO_TCP_CLOSING] = 2;
	is_int(flow_table_new(&prm, &t), 0, "timeouts set by parameter");
	mk(&a, AF_INET, IPPROTO_UDP, "192.0.2.1", 1, "192.0.2.2", 2, 0, 0);
	feed(t, &a.p, T0, &f, NULL, NULL, NULL);
	is_int(f->expires_ns, T0 + 5 * SEC, "udp new: 5 s as configured");
	mk(&a, AF_INET, IPPROTO_TCP, "192.0.2.1", 1, "192.0.2.2", 2, TF_RST, 0);
	feed(t, &a.p, T0, &f, NULL, NULL, NULL);
	is_int(f->expires_ns, T0 + 2 * SEC, "tcp closing: 2 s as configured");
	flow_table_free(t);

	t = NULL;
	ok(flow_table_new(NULL, &t) == 0 && t, "the defaults, with a random hash key");
	if (t) {
		struct flow_stats st;

		flow_table_stats(t, &st);
		ok(st.max_entries == FLOW_MAX_DEFAULT && st.rbufs_max == FLOW_RBUFS_DEFAULT,
		   "default bound 262144 entries, 64 reassembly buffers");
		mk(&a, AF_INET, IPPROTO_UDP, "192.0.2.1", 1, "192.0.2.2", 2, 0, 0);
		mk(&b, AF_INET, IPPROTO_UDP, "192.0.2.2", 2, "192.0.2.1", 1, 0, 0);
		feed(t, &a.p, T0, &f, NULL, NULL, NULL);
		ok(feed(t, &b.p, T0, NULL, NULL, NULL, NULL) == 1 && f->pkts[1] == 1,
		   "a random key finds both directions too");
		flow_table_free(t);
	}
	prm = (struct flow_params){ .max_entries = FLOW_MAX_MIN - 1 };
	is_int(flow_table_new(&prm, &t), -ERANGE, "entries 1023: refused");
	prm.max_entries = FLOW_MAX_MAX + 1;
	is_int(flow_params_check(&prm, err, sizeof(err)), -ERANGE, "entries 4194305: refused (%s)", err);
	prm.max_entries = FLOW_MAX_MIN;
	prm.timeout_s[FLOW_TO_ICMP] = FLOW_TIMEOUT_MAX + 1;
	is_int(flow_params_check(&prm, err, sizeof(err)), -ERANGE, "a timeout over 10 days: refused");
	prm.timeout_s[FLOW_TO_ICMP] = 0;
	prm.rbufs = FLOW_RBUFS_MAX + 1;
	is_int(flow_params_check(&prm, err, sizeof(err)), -ERANGE, "4097 reassembly buffers: refused");
}

static void key_n(struct flow_key *k, uint32_t n)
{
	memset(k, 0, sizeof(*k));
	k->family = AF_INET;
	k->proto = IPPROTO_UDP;
	k->addr[0][0] = 10;
	put_be32(k->addr[1], 0x0b000000 | n);
	k->port[0] = 1000;
	k->port[1] = 53;
}

static void test_bound(void)
{
	const uint32_t max = FLOW_MAX_MIN;
	struct flow_table *t = table(max, 0);
	struct flow_stats st;
	struct flow_key k;
	struct flow *f;
	bool is_new, good = true;
	uint32_t n;

	for (n = 0; n < 3 * max; n++) {
		key_n(&k, n);
		flow_lookup_or_add(t, &k, 0, T0 + n, &f, &is_new);
		good &= is_new;
	}
	flow_table_stats(t, &st);
	ok(good, "3x the bound of distinct keys: each one new");
	is_int(st.entries, max, "entries stay at the bound");
	is_int(st.evicted, 2 * max, "evictions counted exactly");
	is_int(st.expired, 0, "none counted as expired");
	is_int(st.created, 3 * max, "created counted");
	good = true;
	for (n = 0; n < 3 * max; n++) {
		key_n(&k, n);
		good &= !!flow_find(t, &k, T0 + n) == (n >= 2 * max);
	}
	ok(good, "the last 1024 inserted survive, the older ones went");

	/* Recently used flows stay: touch the 10 oldest, add 10 more. */
	for (n = 2 * max; n < 2 * max + 10; n++) {
		key_n(&k, n);
		flow_lookup_or_add(t, &k, 0, T0 + 4 * max, &f, &is_new);
		good &= !is_new;
	}
	for (n = 3 * max; n < 3 * max + 10; n++) {
		key_n(&k, n);
		flow_lookup_or_add(t, &k, 0, T0 + 4 * max, &f, &is_new);
	}
	good = true;
	for (n = 2 * max; n < 2 * max + 20; n++) {
		key_n(&k, n);
		good &= !!flow_find(t, &k, T0 + 4 * max) == (n < 2 * max + 10);
	}
	ok(good, "LRU: the 10 touched survive, the next 10 least recently used go");
	flow_table_stats(t, &st);
	is_int(st.evicted, 2 * max + 10, "10 more evictions");

	/* An expired flow at the tail is counted as expired, not evicted. */
	for (n = 5 * max; n < 5 * max + 1; n++) {
		key_n(&k, n);
		flow_lookup_or_add(t, &k, 0, T0 + 4 * max + 31 * SEC, &f, &is_new);
	}
	flow_table_stats(t, &st);
	ok(st.evicted == 2 * max + 10 && st.expired == 1, "making room from an expired flow: expired");
	flow_table_free(t);
}

static void test_expire_budget(void)
{
	const uint32_t max = 4096;
	struct flow_table *t = table(max, 0);
	struct flow_stats st;
	struct flow_key k;
	struct flow *f, *late = NULL;
	bool is_new;
	unsigned int r, calls = 0, total = 0;

	for (uint32_t n = 0; n < 3000; n++) {
		key_n(&k, n);
		flow_lookup_or_add(t, &k, 0, T0, &f, &is_new);
	}
	is_int(flow_expire(t, T0 + 29 * SEC, 1000), 0, "nothing expired yet: nothing removed");
	r = flow_expire(t, T0 + 30 * SEC, 100);
	is_int(r, 100, "budget 100: exactly 100 removed");
	flow_table_stats(t, &st);
	is_int(st.entries, 2900, "2900 left");
	while ((r = flow_expire(t, T0 + 30 * SEC, 100)) > 0 && calls < 1000) {
		calls++;
		total += r;
		if (r > 100)
			break;
	}
	ok(total == 2900 && calls == 29, "the rest in 29 calls of 100 (%u in %u)", total, calls);
	flow_table_stats(t, &st);
	ok(st.entries == 0 && st.expired == 3000, "all expired and counted");

	/* A closing flow behind long-lived ones is found by the sweep within its budget. */
	for (uint32_t n = 0; n < 2000; n++) {
		key_n(&k, n);
		flow_lookup_or_add(t, &k, 0, T0, &f, &is_new);
		flow_account(t, f, FLOW_DIR_ORIGINAL, 0, 0, T0, NULL);
		flow_account(t, f, FLOW_DIR_REPLY, 0, 0, T0, NULL);	/* 120 s */
		if (n == 1500)
			late = f;
	}
	late->state = FLOW_STATE_NEW;
	late->expires_ns = T0 + SEC;	/* as if it had a short timeout */
	calls = 0;
	total = 0;
	for (calls = 0; calls < 100 && !total; calls++)
		total += flow_expire(t, T0 + 2 * SEC, 64);
	ok(total == 1 && calls <= (max + 63) / 64 && !late->used,
	   "the sweep finds it in %u calls of 64, removing nothing else", calls);
	flow_table_free(t);
}

static void test_pool(void)
{
	struct flow_table *t = table(0, 4);
	struct flow_stats st;
	struct flow_key k;
	struct flow *f[6];
	static uint8_t big[FLOW_RBUF_SIZE + 100];
	const uint8_t *d;
	bool is_new;
	size_t len;
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(big); i++)
		big[i] = (uint8_t)i;
	for (uint32_t n = 0; n < 6; n++) {
		key_n(&k, n);
		flow_lookup_or_add(t, &k, 0, T0, &f[n], &is_new);
	}
	for (uint32_t n = 0; n < 4; n++)
		r |= flow_rbuf_append(t, f[n], big, 10) != 10;
	ok(!r, "four flows borrow the four buffers");
	is_int(flow_rbuf_append(t, f[4], big, 10), -ENOBUFS, "the fifth: pool empty");
	flow_table_stats(t, &st);
	ok(st.pool_exhausted == 1 && st.rbufs_used == 4, "exhaustion counted, 4 in use");
	is_int(flow_rbuf_append(t, f[0], big + 10, 20), 30, "appending: 30 bytes held");
	d = flow_rbuf_data(t, f[0], &len);
	ok(d && len == 30 && !memcmp(d, big, 30), "the bytes in order");
	is_int(flow_rbuf_append(t, f[1], big + 10, sizeof(big)), FLOW_RBUF_SIZE, "cut at 16 KiB");
	flow_rbuf_release(t, f[2]);
	ok(flow_rbuf_data(t, f[2], &len) == NULL && len == 0, "a released flow holds none");
	is_int(flow_rbuf_append(t, f[4], big, 5), 5, "the freed buffer serves another flow");
	key_n(&k, 3);
	flow_lookup_or_add(t, &k, 0, T0 + 100 * SEC, &f[3], &is_new);	/* expired: restarted */
	ok(is_new && !flow_rbuf_data(t, f[3], &len), "a restarted flow gave its buffer back");
	flow_expire(t, T0 + 100 * SEC, 100);
	flow_table_stats(t, &st);
	ok(st.rbufs_used == 0, "expiry returns every buffer (%" PRIu64 " in use)", st.rbufs_used);
	ok(flow_set_host(f[3], "a.test", 6) == 0 && !strcmp(f[3]->host, "a.test"), "host name set");
	{
		char name[FLOW_HOST_MAX + 1];

		memset(name, 'a', sizeof(name));
		ok(flow_set_host(f[3], name, FLOW_HOST_MAX) == 0 && strlen(f[3]->host) == FLOW_HOST_MAX,
		   "a 253-byte name fits");
		is_int(flow_set_host(f[3], name, FLOW_HOST_MAX + 1), -EINVAL, "254 bytes: refused");
		is_int(flow_set_host(f[3], "", 0), -EINVAL, "empty: refused");
	}
	flow_table_free(t);
}

struct collect {
	char lines[8][FLOW_LINE_MAX];
	unsigned int n;
	uint64_t now;
};

static int collect_cb(const struct flow *f, void *arg)
{
	struct collect *c = arg;

	if (c->n >= ARRAY_SIZE(c->lines))
		return 1;
	flow_format(f, c->now, c->lines[c->n++], FLOW_LINE_MAX);
	return 0;
}

static void test_list_format(void)
{
	struct flow_table *t = table(0, 0);
	struct flow_filter flt = { 0 };
	struct collect c = { .now = T0 + 1250 * MS };
	struct tpkt a;
	struct flow *f;
	char small[20];

	mk(&a, AF_INET, IPPROTO_TCP, "198.51.100.7", 40000, "192.0.2.1", 443, TF_SYN, 0);
	feed(t, &a.p, T0, &f, NULL, NULL, NULL);
	mk(&a, AF_INET, IPPROTO_TCP, "192.0.2.1", 443, "198.51.100.7", 40000, TF_SYN | TF_ACK, 0);
	feed(t, &a.p, T0, NULL, NULL, NULL, NULL);
	mk(&a, AF_INET, IPPROTO_TCP, "198.51.100.7", 40000, "192.0.2.1", 443, TF_ACK, 517);
	feed(t, &a.p, T0, NULL, NULL, NULL, NULL);
	flow_set_host(f, "a.Blocked.test", 14);
	mk(&a, AF_INET6, IPPROTO_UDP, "2001:db8::9", 5353, "2001:db8::1", 53, 0, 40);
	feed(t, &a.p, T0 + SEC, NULL, NULL, NULL, NULL);
	mk(&a, AF_INET, IPPROTO_ICMP, "10.0.0.2", 77, "10.0.0.1", 8, 0, 56);
	feed(t, &a.p, T0 + SEC, NULL, NULL, NULL, NULL);

	flow_foreach(t, NULL, c.now, collect_cb, &c);
	is_int(c.n, 3, "three flows listed");
	is_str(c.lines[0], "icmp 10.0.0.2 -> 10.0.0.1 id 77 new orig 1/56 reply 0/0 age 0.250",
	       "icmp line (most recent first)");
	is_str(c.lines[1], "udp [2001:db8::9]:5353 -> [2001:db8::1]:53 new orig 1/40 reply 0/0 age 0.250",
	       "udp v6 line");
	is_str(c.lines[2],
	       "tcp 198.51.100.7:40000 -> 192.0.2.1:443 established orig 2/517 reply 1/0 "
	       "age 1.250 host a.Blocked.test",
	       "tcp line: the opener first, though its address sorts second");

	c.n = 0;
	flt.proto = IPPROTO_TCP;
	flow_foreach(t, &flt, c.now, collect_cb, &c);
	ok(c.n == 1 && !strncmp(c.lines[0], "tcp ", 4), "filter proto=tcp");
	c.n = 0;
	flt = (struct flow_filter){ .host = "blocked.TEST" };
	flow_foreach(t, &flt, c.now, collect_cb, &c);
	is_int(c.n, 1, "filter by host suffix, case-insensitive");
	c.n = 0;
	flt = (struct flow_filter){ .host = "locked.test" };
	flow_foreach(t, &flt, c.now, collect_cb, &c);
	is_int(c.n, 0, "filter by host: a suffix that is no whole label does not match");
	c.n = 0;
	flt = (struct flow_filter){ .host = "A.blocked.test" };
	flow_foreach(t, &flt, c.now, collect_cb, &c);
	is_int(c.n, 1, "filter by host: the whole name");
	c.n = 0;
	flt = (struct flow_filter){ .port = 53, .family = AF_INET6 };
	flow_foreach(t, &flt, c.now, collect_cb, &c);
	is_int(c.n, 1, "filter port 53 and family ip6");
	c.n = 0;
	flt = (struct flow_filter){ .has_addr = true, .family = AF_INET };
	inet_pton(AF_INET, "192.0.2.1", flt.addr);
	flow_foreach(t, &flt, c.now, collect_cb, &c);
	is_int(c.n, 1, "filter address on either side");
	c.n = 0;
	flt = (struct flow_filter){ .state_mask = 1u << FLOW_STATE_NEW };
	flow_foreach(t, &flt, c.now, collect_cb, &c);
	is_int(c.n, 2, "filter state new");
	c.n = 0;
	flow_foreach(t, NULL, T0 + 31 * SEC, collect_cb, &c);
	is_int(c.n, 1, "expired flows are not listed (only the TCP one is left at 31 s)");
	is_int(flow_format(f, T0, small, sizeof(small)), -ENOSPC, "a short buffer: -ENOSPC");
	flow_table_free(t);
}

/*
 * Against a model: random UDP packets over 2000 keys into a table of 1024,
 * both sides, a random clock, now and then a full expiry.  The model keeps
 * exact LRU order, the timeouts (30 s one way, 120 s both ways) and the
 * counters; every packet's is_new, direction and position, and in the end
 * which keys are live and the counts of evictions and expiries, must agree.
 */
#define M_KEYS 2000
#define M_MAX 1024
struct mflow {
	bool in;
	uint8_t opener;
	uint64_t seq, expires, pkts[2];
};

static void model_remove_expired(struct mflow *m, unsigned int *n, uint64_t now, uint64_t *expired)
{
	for (unsigned int k = 0; k < M_KEYS; k++) {
		if (m[k].in && m[k].expires <= now) {
			m[k].in = false;
			(*n)--;
			(*expired)++;
		}
	}
}

static void test_model(void)
{
	static struct mflow m[M_KEYS];
	struct flow_table *t = table(M_MAX, 0);
	struct flow_stats st;
	uint64_t now = T0, seq = 0, evicted = 0, expired = 0, x = 99;
	unsigned int n = 0, bad_new = 0, bad_dir = 0, bad_pos = 0, bad_live = 0;

	memset(m, 0, sizeof(m));
	for (unsigned int op = 0; op < 60000; op++) {
		uint64_t r = splitmix64(&x);
		unsigned int k = (unsigned int)(r % M_KEYS), side = (r >> 20) & 1, d;
		struct flow_key key;
		struct flow *f;
		bool is_new, want_new;
		uint64_t pos;

		now += (r >> 32) % ((op / 5000) % 2 ? 200 * MS : 10 * MS);	/* busy and quiet spells */
		if ((r >> 24) % 5000 == 0) {
			flow_expire(t, now, 4 * M_MAX);
			model_remove_expired(m, &n, now, &expired);
		}
		key_n(&key, k);
		flow_lookup_or_add(t, &key, side, now, &f, &is_new);
		want_new = !m[k].in || m[k].expires <= now;
		if (m[k].in && m[k].expires <= now)
			expired++;
		if (!m[k].in && n == M_MAX) {
			unsigned int lru = M_KEYS;

			for (unsigned int j = 0; j < M_KEYS; j++)
				if (m[j].in && (lru == M_KEYS || m[j].seq < m[lru].seq))
					lru = j;
			m[lru].in = false;
			n--;
			if (m[lru].expires <= now)
				expired++;
			else
				evicted++;
		}
		if (want_new) {
			if (!m[k].in)
				n++;
			m[k] = (struct mflow){ .in = true, .opener = (uint8_t)side };
		}
		m[k].seq = ++seq;
		d = side != m[k].opener;
		bad_new += is_new != want_new;
		bad_dir += flow_dir_of(f, side) != (enum flow_dir)d;
		pos = flow_account(t, f, flow_dir_of(f, side), 10, 0, now, NULL);
		bad_pos += pos != ++m[k].pkts[d];
		m[k].expires = now + (m[k].pkts[0] && m[k].pkts[1] ? 120 : 30) * SEC;
	}
	for (unsigned int k = 0; k < M_KEYS; k++) {
		struct flow_key key;

		key_n(&key, k);
		bad_live += !!flow_find(t, &key, now) != (m[k].in && m[k].expires > now);
	}
	flow_table_stats(t, &st);
	ok(!bad_new && !bad_dir && !bad_pos,
	   "model: is_new, direction and position of 60000 packets (%u/%u/%u wrong)", bad_new,
	   bad_dir, bad_pos);
	is_int(bad_live, 0, "model: the same keys are live at the end");
	ok(st.evicted == evicted && st.expired == expired && st.entries == n,
	   "model: %" PRIu64 " evicted, %" PRIu64 " expired, %u entries (table: %" PRIu64
	   ", %" PRIu64 ", %" PRIu64 ")",
	   evicted, expired, n, st.evicted, st.expired, st.entries);
	ok(evicted > 1000 && expired > 1000, "model: the run evicted and expired plenty");
	flow_table_free(t);
}

static void test_no_alloc(void)
{
	struct flow_table *t = table(FLOW_MAX_MIN * 4, 8);
	struct tpkt a;
	struct flow *f;
	enum flow_dir dir;
	bool is_new;
	unsigned long before;
	char line[FLOW_LINE_MAX];
	uint64_t now = T0;
	uint32_t x = 1;
	int bad = 0;

	before = allocs;
	for (unsigned int i = 0; i < 1000000; i++) {
		char s[32], d[32];

		x = x * 1103515245u + 12345u;
		/* About 16k distinct flows over a 4k table: hits, misses and evictions. */
		snprintf(s, sizeof(s), "10.0.%u.%u", (x >> 16) & 63, (x >> 8) & 255);
		snprintf(d, sizeof(d), "10.1.0.%u", x >> 28);
		mk(&a, AF_INET, (x & 1) ? IPPROTO_TCP : IPPROTO_UDP, s, 1000, d, 80,
		   (x >> 4) & (TF_SYN | TF_ACK | TF_FIN), 10);
		/* 100 us a packet, and 200 s of silence every 100k: expiry does its part. */
		now += 100000 + (i % 100000 == 99999 ? 200 * SEC : 0);
		if (flow_lookup_pkt(t, &a.p, now, &f, &dir, &is_new) < 0) {
			bad++;
			continue;
		}
		flow_account(t, f, dir, 10, a.p.tcp_flags, now, NULL);
		if (is_new && (x & 0x300) == 0)
			flow_rbuf_append(t, f, a.buf, 64);
		if ((i & 1023) == 0) {
			flow_expire(t, now, 64);
			flow_format(f, now, line, sizeof(line));
		}
	}
	{
		struct flow_stats st;

		flow_table_stats(t, &st);
		diag("1M packets: %" PRIu64 " created, %" PRIu64 " evicted, %" PRIu64
		     " expired, pool exhausted %" PRIu64, st.created, st.evicted, st.expired,
		     st.pool_exhausted);
		ok(st.evicted > 0 && st.expired > 0 && st.pool_exhausted > 0,
		   "the mix exercised eviction, expiry and the pool's limit");
	}
	is_int(bad, 0, "every packet keyed");
	is_int(allocs - before, 0, "no allocation in 1M lookups, accounts, expiries and formats");
	flow_table_free(t);
}

/* ---- host names: flow_host_feed() ------------------------------------------ */

static const char http_req[] = "GET / HTTP/1.1\r\nHost: Www.Example.COM:8080\r\nUser-Agent: t\r\n\r\n";

/* A TCP segment 192.0.2.1:40000 -> 198.51.100.7:80 (or back) with seq and payload. */
static struct pkt *seg(struct tpkt *t, bool reply, uint8_t flags, uint32_t seq, const char *data,
		       size_t len)
{
	struct pkt *p = reply ? mk(t, AF_INET, IPPROTO_TCP, "198.51.100.7", 80, "192.0.2.1", 40000,
				  flags, len) :
				mk(t, AF_INET, IPPROTO_TCP, "192.0.2.1", 40000, "198.51.100.7", 80,
				  flags, len);

	put_be32(p->data + p->l4off + 4, seq);
	if (len)
		memcpy(p->data + p->l4off + 20, data, len);
	return p;
}

/* Look p up, feed it, count it: the flow. */
static struct flow *host_step(struct flow_table *t, const struct pkt *p, uint64_t now)
{
	struct flow *f = NULL;
	enum flow_dir dir;
	bool is_new;

	if (flow_lookup_pkt(t, p, now, &f, &dir, &is_new) < 0)
		return NULL;
	flow_host_feed(t, f, dir, p);
	flow_account(t, f, dir, flow_pkt_payload_len(p), p->tcp_flags, now, NULL);
	return f;
}

static bool host_is(const struct flow *f, uint8_t kind, const char *name)
{
	return f && f->host_kind == kind && !strcmp(f->host, name);
}

static void test_host(void)
{
	size_t n = strlen(http_req), a = 10, b = 30;
	struct flow_table *t = table(1024, 2);
	struct flow_stats st;
	struct flow *f;
	struct tpkt pk;
	uint32_t isn = 0xfffffff0u;	/* the stream wraps the sequence space */
	uint64_t now = T0;

	/* In order, in three segments. */
	host_step(t, seg(&pk, false, TF_SYN, isn, NULL, 0), now);
	host_step(t, seg(&pk, true, TF_SYN | TF_ACK, 5000, NULL, 0), now);
	f = host_step(t, seg(&pk, false, TF_ACK, isn + 1, http_req, a), now);
	ok(f && !f->host_kind && !f->host[0], "HTTP in 3 segments: nothing after the first");
	flow_table_stats(t, &st);
	is_int(st.rbufs_used, 1, "... the first bytes are held in a reassembly buffer");
	/* The server's bytes are not the client's. */
	host_step(t, seg(&pk, true, TF_ACK, 5001, "Host: evil.test\r\n\r\n", 19), now);
	f = host_step(t, seg(&pk, false, TF_ACK, isn + 1 + (uint32_t)a, http_req + a, b - a), now);
	ok(f && !f->host_kind, "... nor after the second");
	f = host_step(t, seg(&pk, false, TF_ACK, isn + 1 + (uint32_t)b, http_req + b, n - b), now);
	ok(host_is(f, PKT_NAME_HTTP, "www.example.com"),
	   "... the third completes it: www.example.com, lowercase, port left out ('%s')", f ? f->host : "");
	flow_table_stats(t, &st);
	is_int(st.rbufs_used, 0, "... and the buffer goes back to the pool");
	f = host_step(t, seg(&pk, false, TF_ACK, isn + 1 + (uint32_t)n, "GET /b HTTP/1.1\r\nHost: x.test\r\n\r\n", 33), now);
	ok(host_is(f, PKT_NAME_HTTP, "www.example.com"), "a later request does not change the name");

	/* A gap: the third segment first, then the second, then the third again. */
	flow_table_free(t);
	t = table(1024, 2);
	host_step(t, seg(&pk, false, TF_SYN, 100, NULL, 0), now);
	host_step(t, seg(&pk, false, TF_ACK, 101, http_req, a), now);
	f = host_step(t, seg(&pk, false, TF_ACK, 101 + (uint32_t)b, http_req + b, n - b), now);
	ok(f && !f->host_kind, "a segment after a gap waits");
	f = host_step(t, seg(&pk, false, TF_ACK, 101 + (uint32_t)a, http_req + a, b - a), now);
	ok(f && !f->host_kind, "... the missing one alone is not the whole request");
	f = host_step(t, seg(&pk, false, TF_ACK, 101 + (uint32_t)b, http_req + b, n - b), now);
	ok(host_is(f, PKT_NAME_HTTP, "www.example.com"), "... its retransmission completes it");

	/* Overlapping retransmissions: bytes already held are skipped. */
	flow_table_free(t);
	t = table(1024, 2);
	host_step(t, seg(&pk, false, TF_SYN, 7, NULL, 0), now);
	host_step(t, seg(&pk, false, TF_ACK, 8, http_req, 20), now);
	host_step(t, seg(&pk, false, TF_ACK, 8, http_req, 20), now);
	host_step(t, seg(&pk, false, TF_ACK, 8 + 10, http_req + 10, 25), now);
	f = host_step(t, seg(&pk, false, TF_ACK, 8 + 30, http_req + 30, n - 30), now);
	ok(host_is(f, PKT_NAME_HTTP, "www.example.com"), "overlapping segments: the stream read once");

	/* Whole in one segment: read in place, no buffer. */
	flow_table_free(t);
	t = table(1024, 1);
	host_step(t, seg(&pk, false, TF_SYN, 1, NULL, 0), now);
	f = host_step(t, seg(&pk, false, TF_ACK, 2, http_req, n), now);
	flow_table_stats(t, &st);
	ok(host_is(f, PKT_NAME_HTTP, "www.example.com") && st.rbufs_used == 0 && st.pool_exhausted == 0,
	   "a request in one segment is read in place");

	/* Not HTTP, not TLS: the search ends, nothing held. */
	flow_table_free(t);
	t = table(1024, 1);
	host_step(t, seg(&pk, false, TF_SYN, 1, NULL, 0), now);
	f = host_step(t, seg(&pk, false, TF_ACK, 2, "SSH-2.0-OpenSSH_9.6\r\n", 21), now);
	flow_table_stats(t, &st);
	ok(f && !f->host_kind && f->host_done && st.rbufs_used == 0, "SSH: no name, the search ended");

	/* Picked up without its SYN: where the stream starts is unknown. */
	flow_table_free(t);
	t = table(1024, 1);
	f = host_step(t, seg(&pk, false, TF_ACK, 2, http_req, n), now);
	ok(f && !f->host_kind && f->host_done, "a flow picked up mid-stream gets no name");

	/* The pool: one buffer, two flows that need one. */
	flow_table_free(t);
	t = table(1024, 1);
	host_step(t, seg(&pk, false, TF_SYN, 1, NULL, 0), now);
	host_step(t, seg(&pk, false, TF_ACK, 2, http_req, a), now);
	host_step(t, mk(&pk, AF_INET, IPPROTO_TCP, "192.0.2.1", 40001, "198.51.100.7", 80, TF_SYN, 0), now);
	{
		struct pkt *p = mk(&pk, AF_INET, IPPROTO_TCP, "192.0.2.1", 40001, "198.51.100.7", 80,
				   TF_ACK, a);

		memcpy(p->data + p->l4off + 20, http_req, a);
		put_be32(p->data + p->l4off + 4, 1);	/* mk's SYN had seq 0 */
		f = host_step(t, p, now);
	}
	flow_table_stats(t, &st);
	ok(f && f->host_done && !f->host_kind && st.pool_exhausted == 1,
	   "a second flow finds the pool empty: counted, search ended (%llu)",
	   (unsigned long long)st.pool_exhausted);
	flow_table_free(t);
}

static void test_host_tls_quic(void)
{
	static uint8_t hello[2048], dgram[1500];
	size_t n = testdata_hex("tls-clienthello-openssl.hex", hello, sizeof(hello));
	size_t q = testdata_hex("quic-v1-initial.hex", dgram, sizeof(dgram));
	struct flow_table *t = table(1024, 2);
	size_t third = n / 3;
	struct flow *f;
	struct tpkt pk;
	struct pkt *p;
	uint64_t now = T0;

	ok(n > 100 && q == 1200, "tests/data: the ClientHello (%zu bytes) and the QUIC Initial (%zu)", n, q);
	host_step(t, seg(&pk, false, TF_SYN, 41, NULL, 0), now);
	host_step(t, seg(&pk, false, TF_ACK, 42, (const char *)hello, third), now);
	f = host_step(t, seg(&pk, false, TF_ACK, 42 + (uint32_t)third, (const char *)hello + third, third), now);
	ok(f && !f->host_kind, "TLS ClientHello in 3 segments: no name before the last");
	f = host_step(t, seg(&pk, false, TF_ACK, 42 + 2 * (uint32_t)third, (const char *)hello + 2 * third,
			     n - 2 * third), now);
	ok(host_is(f, PKT_NAME_TLS, "a.blocked.test"), "... the last gives a.blocked.test (%s)",
	   f ? f->host : "");
	flow_table_free(t);

	t = table(1024, 2);
	/* mk() makes the payload; the datagram replaces it (same length). */
	p = mk(&pk, AF_INET, IPPROTO_UDP, "192.0.2.1", 50001, "198.51.100.7", 443, 0, q);
	memcpy(p->data + p->l4off + 8, dgram, q);
	f = host_step(t, p, now);
	if (hello_quic_supported())
		ok(host_is(f, PKT_NAME_QUIC, "example.com"), "QUIC: the RFC 9001 Initial gives example.com");
	else
		ok(f && f->host_done && !f->host_kind, "QUIC: built without libcrypto, no name # SKIP");
	dgram[600] ^= 0x5a;
	p = mk(&pk, AF_INET, IPPROTO_UDP, "192.0.2.1", 50002, "198.51.100.7", 443, 0, q);
	memcpy(p->data + p->l4off + 8, dgram, q);
	f = host_step(t, p, now);
	ok(f && f->host_done && !f->host_kind, "QUIC: a damaged Initial gives no name, the search ends");
	p = mk(&pk, AF_INET, IPPROTO_UDP, "192.0.2.1", 50003, "198.51.100.7", 53, 0, 30);
	f = host_step(t, p, now);
	ok(f && f->host_done && !f->host_kind, "UDP that is not QUIC: no name");
	flow_table_free(t);
}

int main(void)
{
	test_directions();
	test_positions();
	test_tcp();
	test_timeouts();
	test_bound();
	test_expire_budget();
	test_pool();
	test_list_format();
	test_model();
	test_no_alloc();
	test_host();
	test_host_tls_quic();
	return tap_done();
}
