/* SPDX-License-Identifier: GPL-2.0-or-later */
/* loopguard.c: what the fingerprint covers, lifetime, what is never guarded, eviction, odd input. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "loopguard.h"
#include "tap.h"

#define MS 1000000ULL

static struct loopguard lg;

/* An IPv4 UDP datagram of len bytes (len >= 28), payload bytes from seed. */
static size_t ip4(uint8_t *b, size_t len, uint16_t id, uint8_t seed)
{
	memset(b, 0, len);
	b[0] = 0x45;
	b[2] = (uint8_t)(len >> 8);
	b[3] = (uint8_t)len;
	b[4] = (uint8_t)(id >> 8);
	b[5] = (uint8_t)id;
	b[6] = 0x40;		/* DF */
	b[8] = 64;
	b[9] = 17;
	b[10] = 0x12, b[11] = 0x34;
	memcpy(b + 12, "\xc6\x12\x00\x01\xc6\x12\x01\x01", 8);
	for (size_t i = 20; i < len; i++)
		b[i] = (uint8_t)(seed + i);
	return len;
}

static size_t ip6(uint8_t *b, size_t len, uint32_t flow, uint8_t seed)
{
	memset(b, 0, len);
	b[0] = 0x60;
	b[1] = (uint8_t)(flow >> 16 & 0x0f);
	b[2] = (uint8_t)(flow >> 8);
	b[3] = (uint8_t)flow;
	b[4] = (uint8_t)((len - 40) >> 8);
	b[5] = (uint8_t)(len - 40);
	b[6] = 17;
	b[7] = 64;
	b[8] = 0x20, b[9] = 0x01, b[10] = 0x0d, b[11] = 0xb8, b[23] = 1;
	b[24] = 0x20, b[25] = 0x01, b[26] = 0x0d, b[27] = 0xb8, b[39] = 2;
	for (size_t i = 40; i < len; i++)
		b[i] = (uint8_t)(seed + i);
	return len;
}

static void test_print(void)
{
	uint8_t a[1500], b[1500];
	uint64_t p;

	ip4(a, 100, 7, 1);
	p = loopguard_print(a, 100);
	memcpy(b, a, 100);
	b[8] = 63, b[10] = 0x55, b[11] = 0x66, b[1] = 0xb8;
	ok(loopguard_print(b, 100) == p, "IPv4: TTL, header checksum and TOS are left out");
	b[5] ^= 1;
	ok(loopguard_print(b, 100) != p, "IPv4: the ID counts");
	memcpy(b, a, 100);
	b[15] ^= 1;
	ok(loopguard_print(b, 100) != p, "IPv4: the source counts");
	memcpy(b, a, 100);
	b[99] ^= 1;
	ok(loopguard_print(b, 100) != p, "IPv4: the payload counts");
	ok(loopguard_print(a, 99) != p, "the length counts");

	/* Options are in the header: packets that differ there only are different. */
	ip4(a, 64, 7, 1);
	a[0] = 0x46;
	memcpy(b, a, 64);
	memcpy(a + 20, "\x01\x01\x01\x01", 4);
	memcpy(b + 20, "\x9e\x04\x00\x00", 4);
	ok(loopguard_print(a, 64) != loopguard_print(b, 64), "IPv4: options count");

	ip4(a, 1500, 7, 1);
	p = loopguard_print(a, 1500);
	memcpy(b, a, 1500);
	b[1499] ^= 0x80;
	ok(loopguard_print(b, 1500) != p, "a long packet's last byte counts");
	memcpy(b, a, 1500);
	b[700] ^= 0x80;
	ok(loopguard_print(b, 1500) == p, "its middle is not sampled");

	ip6(a, 80, 0x12345, 3);
	p = loopguard_print(a, 80);
	memcpy(b, a, 80);
	b[7] = 1;
	b[0] |= 0x0b, b[1] |= 0xe0;
	ok(loopguard_print(b, 80) == p, "IPv6: hop limit and traffic class are left out");
	b[3] ^= 1;
	ok(loopguard_print(b, 80) != p, "IPv6: the flow label counts");
	memcpy(b, a, 80);
	b[39] ^= 1;
	ok(loopguard_print(b, 80) != p, "IPv6: the destination counts");
	memcpy(b, a, 80);
	b[79] ^= 1;
	ok(loopguard_print(b, 80) != p, "IPv6: the payload counts");

	/* Anything at all: short, empty, IHL beyond the buffer, unknown versions. */
	memset(a, 0xff, sizeof(a));
	a[0] = 0x4f;
	loopguard_print(a, 0);
	loopguard_print(a, 1);
	loopguard_print(a, 20);
	a[0] = 0x41;
	loopguard_print(a, 20);
	a[0] = 0x60;
	loopguard_print(a, 39);
	a[0] = 0x00;
	loopguard_print(a, 1500);
	ok(1, "odd buffers are hashed as data");
}

static void test_guard(void)
{
	uint8_t a[200], b[200];
	uint64_t t = 1000 * MS;

	memset(&lg, 0, sizeof(lg));
	ip4(a, 200, 1, 9);
	ok(!loopguard_check(&lg, a, 200, t), "an empty guard knows no packet");
	loopguard_record(&lg, a, 200, t);
	memcpy(b, a, 200);
	b[8] = 63;		/* forwarded once */
	ok(loopguard_check(&lg, b, 200, t), "the packet read back in the same batch is a loop");
	ok(loopguard_check(&lg, b, 200, t + LOOPGUARD_LIFETIME_NS), "and until the lifetime ends");
	ok(!loopguard_check(&lg, b, 200, t + LOOPGUARD_LIFETIME_NS + 1), "not after it");
	is_int(lg.loops, 2, "two loops counted");
	ip4(b, 200, 2, 9);
	ok(!loopguard_check(&lg, b, 200, t), "the next packet of the flow is no loop");

	/* A duplicate refreshes its slot instead of taking the second way. */
	loopguard_record(&lg, a, 200, t + 100 * MS);
	loopguard_record(&lg, a, 200, t + 101 * MS);
	ok(loopguard_check(&lg, a, 200, t + 110 * MS), "a refreshed packet is remembered");
}

/* Packets the kernel never forwards: the same twice is the host's, never a loop. */
static void test_never_forwarded(void)
{
	static const struct {
		const char *what;
		bool v6;
		uint8_t src[16], dst[16];
	} cases[] = {
		/* The kernel's MLDv2 report on the tun, sent twice at a random delay. */
		{ "an MLD report (:: -> ff02::16)", true, { 0 },
		  { 0xff, 0x02, [15] = 0x16 } },
		{ "to ff01::1 (interface-local)", true, { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 },
		  { 0xff, 0x01, [15] = 1 } },
		{ "from fe80::1", true, { 0xfe, 0x80, [15] = 1 }, { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 } },
		{ "to fe80::2", true, { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }, { 0xfe, 0x80, [15] = 2 } },
		{ "an IGMP report to 224.0.0.22", false, { 198, 18, 0, 1 }, { 224, 0, 0, 22 } },
		{ "to 255.255.255.255", false, { 198, 18, 0, 1 }, { 255, 255, 255, 255 } },
		{ "from 0.0.0.0 (DHCP)", false, { 0 }, { 198, 18, 1, 1 } },
	};
	uint8_t a[120];
	uint64_t t = 9000 * MS;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&lg, 0, sizeof(lg));
		if (cases[i].v6) {
			ip6(a, 120, 0, 4);
			memcpy(a + 8, cases[i].src, 16);
			memcpy(a + 24, cases[i].dst, 16);
		} else {
			ip4(a, 120, 1, 4);
			memcpy(a + 12, cases[i].src, 4);
			memcpy(a + 16, cases[i].dst, 4);
		}
		loopguard_record(&lg, a, 120, t);
		ok(!loopguard_check(&lg, a, 120, t + MS) && lg.loops == 0,
		   "%s, written and read again: not a loop", cases[i].what);
	}
	/* Wider scopes are forwarded (multicast routing): they stay guarded. */
	memset(&lg, 0, sizeof(lg));
	ip6(a, 120, 0, 4);
	a[24] = 0xff, a[25] = 0x05;
	loopguard_record(&lg, a, 120, t);
	ok(loopguard_check(&lg, a, 120, t + MS), "to ff05::/16 (site-local): guarded");
	memset(&lg, 0, sizeof(lg));
	ip4(a, 120, 1, 4);
	a[16] = 239, a[17] = 1, a[18] = 1, a[19] = 1;
	loopguard_record(&lg, a, 120, t);
	ok(loopguard_check(&lg, a, 120, t + MS), "to 239.1.1.1: guarded");
}

static void test_eviction(void)
{
	uint8_t a[64];
	uint64_t t = 5000 * MS;
	unsigned int found = 0, n = 1000;

	memset(&lg, 0, sizeof(lg));
	for (unsigned int i = 0; i < n; i++) {
		ip4(a, 64, (uint16_t)i, 0);
		loopguard_record(&lg, a, 64, t);
	}
	for (unsigned int i = 0; i < n; i++) {
		ip4(a, 64, (uint16_t)i, 0);
		found += loopguard_check(&lg, a, 64, t + MS);
	}
	ok(found >= n * 99 / 100, "%u of %u recorded packets recognised (two ways per set)", found, n);
	ip4(a, 64, (uint16_t)(n - 1), 0);
	ok(loopguard_check(&lg, a, 64, t + MS), "the newest is always there");

	/* Far more than the guard holds: the newest are there, nothing breaks. */
	for (unsigned int i = 0; i < 50000; i++) {
		ip4(a, 64, (uint16_t)i, (uint8_t)(i >> 16));
		loopguard_record(&lg, a, 64, t + 2 * MS + i);
	}
	ip4(a, 64, 49999 & 0xffff, 0);
	ok(loopguard_check(&lg, a, 64, t + 3 * MS), "after 50000 records the last is known");
}

int main(void)
{
	test_print();
	test_guard();
	test_never_forwarded();
	test_eviction();
	return tap_done();
}
