/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for packet surgery: the first 16 bytes choose the keys
 * and their values (through the value parsers, as a rule would), the rest
 * is the packet.  For any input that pkt_parse() accepts:
 * - surgery_apply() returns 0 into an arena of SURG_ARENA_SIZE(len) bytes,
 *   allocated exactly (ASan sees a write past it), and -ENOSPC, never
 *   anything else, into a smaller one;
 * - every output lies inside the arena, and is accepted by pkt_parse()
 *   (its IP lengths agree with its size), except when set-field itself made
 *   the packet one that pkt_parse() refuses (ip.proto, ip6.nxt, ip.mf,
 *   icmp.type can): that packet is then the one output, as long as the input;
 * - surgery_format() of the keys parses back to equal keys.
 *
 * By hand: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *	tests/fuzz/fuzz-surgery.c src/packet.c src/surgery.c -o fuzz-surgery
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "surgery.h"

#define check(cond)                    \
	do {                           \
		if (!(cond))           \
			abort();       \
	} while (0)

#define SPEC 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rule_surgery s, again;
static uint8_t pbuf[PKT_MAX];

static void key(const char *name, const char *value)
{
	char err[256];

	for (size_t i = 0; i < surgery_nkeys; i++)
		if (!strcmp(surgery_keys[i].name, name))
			surgery_keys[i].parse(&s, value, err, sizeof(err));
}

static void build_spec(const uint8_t *c)
{
	char v[256];
	static const char *const pos[] = { "sni", "sni+3", "host", "midsld", "host+1" };

	surgery_release(&s);	/* the payload of the last input's fake */
	if (c[0] & 1) {
		size_t n = 0;

		for (int i = 0; i < 1 + (c[1] & 3); i++) {
			int x = c[2 + i] % 40;

			if (x < 5)
				n += (size_t)snprintf(v + n, sizeof(v) - n, "%s%s", i ? "," : "", pos[x]);
			else
				n += (size_t)snprintf(v + n, sizeof(v) - n, "%s%d", i ? "," : "",
						      x < 22 ? x - 4 : -(x - 21));
		}
		key("split", v);
	}
	if (c[0] & 2) {
		snprintf(v, sizeof(v), "%u", 8u * (1 + c[6] % 64));
		key("ipfrag", v);
	}
	if (c[0] & 4)
		key("disorder", "true");
	if (c[0] & 8) {
		static const char *const fk[] = { "zero", "random", "hex:16030100ff", "hex:00" };

		key("fake", fk[c[7] & 3]);
		if (c[7] & 4)
			key("fake-badsum", "true");
		if (c[7] & 8)
			key("fake-badseq", "true");
		if (c[7] & 16)
			key("fake-md5sig", "true");
		if (c[7] & 32) {
			snprintf(v, sizeof(v), "%u", 1u + c[8] % 255);
			key("fake-ttl", v);
		}
		snprintf(v, sizeof(v), "%u", 1u + c[9] % SURG_REPEATS_MAX);
		key("fake-repeats", v);
	}
	if (c[0] & 16) {
		size_t n = 0;

		for (int i = 0; i < 1 + (c[10] & 3); i++) {
			size_t f = c[11 + i] % surgery_nfield_names();
			const char *name = surgery_field_name(f);
			uint32_t val = (uint32_t)c[14] * 0x01010101u;

			if (!strcmp(name, "ip.src") || !strcmp(name, "ip.dst"))
				n += (size_t)snprintf(v + n, sizeof(v) - n, " %s=10.%u.0.1", name, c[14]);
			else if (!strcmp(name, "ip6.src") || !strcmp(name, "ip6.dst"))
				n += (size_t)snprintf(v + n, sizeof(v) - n, " %s=2001:db8::%x", name, c[14]);
			else if (!strcmp(name, "ip.df") || !strcmp(name, "ip.mf"))
				n += (size_t)snprintf(v + n, sizeof(v) - n, " %s=%u", name, val & 1);
			else
				n += (size_t)snprintf(v + n, sizeof(v) - n, " %s=%u", name, val & 3);
		}
		key("set-field", v);
	}
	if (c[0] & 32)
		key("strip-tcp-option", c[15] & 1 ? "timestamp,sack-perm,wscale" : "mss,19,254");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct surg_out o;
	struct pkt p;
	uint8_t *arena;
	size_t len, cap;
	char txt[4096];
	struct strbuf sb = { txt, sizeof(txt), 0, false };
	int r;

	if (size < SPEC + 1 || size - SPEC > PKT_MAX)
		return 0;
	build_spec(data);
	len = size - SPEC;
	memcpy(pbuf, data + SPEC, len);
	memset(&p, 0, sizeof(p));
	p.data = pbuf;
	p.len = len;
	p.cap = len;
	if (pkt_parse(&p) != PKT_OK)
		return 0;

	/* the keys print and parse back */
	surgery_format(&sb, &s);
	check(!sb.overflow);
	surgery_release(&again);
	for (size_t i = 0; i < surgery_nkeys; i++) {
		char vb[2048];
		struct strbuf b = { vb, sizeof(vb), 0, false };
		char err[256];

		if (!(s.keys & surgery_keys[i].bit))
			continue;
		surgery_keys[i].print(&b, &s);
		check(surgery_keys[i].parse(&again, vb, err, sizeof(err)) == 0);
	}
	check(surgery_equal(&s, &again));

	cap = SURG_ARENA_SIZE(len);
	arena = malloc(cap);
	check(arena);
	memset(&o, 0, sizeof(o));
	o.buf = arena;
	o.cap = cap;
	r = surgery_apply(&s, data + SPEC, len, NULL, data[1], &o);
	check(r == 0);
	check(o.n >= 1 && o.n <= SURG_OUT_MAX);
	for (unsigned int i = 0; i < o.n; i++) {
		struct pkt q = { 0 };

		check(o.pkt[i].off <= cap && o.pkt[i].len <= cap - o.pkt[i].off);
		q.data = arena + o.pkt[i].off;
		q.len = o.pkt[i].len;
		q.cap = q.len;
		if (pkt_parse(&q) != PKT_OK)
			check(s.nfields && o.n == 1 && q.len == len);
	}
	free(arena);

	/* a smaller arena: 0 or -ENOSPC, and ASan watches its end */
	cap = (size_t)data[2] * 64 + data[3];
	arena = malloc(cap ? cap : 1);
	check(arena);
	memset(&o, 0, sizeof(o));
	o.buf = arena;
	o.cap = cap;
	r = surgery_apply(&s, data + SPEC, len, NULL, data[1], &o);
	check(r == 0 || r == -ENOSPC);
	free(arena);
	return 0;
}
