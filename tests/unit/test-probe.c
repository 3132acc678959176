/* SPDX-License-Identifier: GPL-2.0-or-later */
/* probe.c: the self-check packet, checked by an independent sum, and its matcher. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "probe.h"
#include "refcsum.h"
#include "tap.h"

/* Whether the IPv4 header and the UDP checksum (with its pseudo-header) add up. */
static bool sums_ok(int family, const uint8_t *p, size_t len)
{
	size_t ihl = family == AF_INET ? 20 : 40, alen = family == AF_INET ? 4 : 16;
	const uint8_t *addrs = p + (family == AF_INET ? 12 : 8);
	uint32_t s;

	if (family == AF_INET && ref_fold(ref_sum(p, 20, 0)) != 0xffff)
		return false;
	s = ref_sum(addrs, 2 * alen, 0) + 17 + (uint32_t)(len - ihl);
	return ref_fold(ref_sum(p + ihl, len - ihl, s)) == 0xffff && (p[ihl + 6] | p[ihl + 7]);
}

static void test_family(int family)
{
	const char *name = family == AF_INET ? "IPv4" : "IPv6";
	struct probe_target t = { .family = family };
	uint8_t buf[128], copy[128];
	uint64_t nonce = 0x0123456789abcdefULL;
	int len;

	if (family == AF_INET) {
		inet_pton(AF_INET, "198.18.0.1", t.src);
		inet_pton(AF_INET, "198.18.0.2", t.dst);
	} else {
		inet_pton(AF_INET6, "2001:db8:77::1", t.src);
		inet_pton(AF_INET6, "2001:db8:77::2", t.dst);
	}
	is_int(probe_build(&t, 50000, 0x1235, nonce, buf, 10), -ENOSPC, "%s: too small a buffer",
	       name);
	len = probe_build(&t, 50000, 0x1235, nonce, buf, sizeof(buf));
	is_int(len, family == AF_INET ? 20 + 8 + 25 : 40 + 8 + 25, "%s: length", name);
	if (len < 0)
		return;
	ok(sums_ok(family, buf, (size_t)len), "%s: checksums add up", name);
	is_int(buf[family == AF_INET ? 8 : 7], PROBE_TTL, "%s: TTL / hop limit %d", name, PROBE_TTL);
	ok(memcmp(buf + (family == AF_INET ? 12 : 8), t.src, family == AF_INET ? 4 : 16) == 0,
	   "%s: source address", name);
	ok(probe_match(family, 0x1235, nonce, buf, (size_t)len), "%s: matches itself", name);
	ok(!probe_match(family, 0x1236, nonce, buf, (size_t)len), "%s: another id", name);
	ok(!probe_match(family, 0x1235, nonce + 1, buf, (size_t)len), "%s: another nonce", name);
	ok(!probe_match(family, 0x1235, nonce, buf, (size_t)len - 1), "%s: truncated", name);
	ok(!probe_match(family == AF_INET ? AF_INET6 : AF_INET, 0x1235, nonce, buf, (size_t)len),
	   "%s: not the other family", name);
	memcpy(copy, buf, (size_t)len);
	copy[family == AF_INET ? 20 + 3 : 40 + 3] ^= 1;
	ok(!probe_match(family, 0x1235, nonce, copy, (size_t)len), "%s: another port", name);
	/* Forwarded: TTL 1 and, for IPv4, the header sum updated; still the probe. */
	memcpy(copy, buf, (size_t)len);
	copy[family == AF_INET ? 8 : 7]--;
	ok(probe_match(family, 0x1235, nonce, copy, (size_t)len), "%s: forwarded, still matches",
	   name);
}

int main(void)
{
	test_family(AF_INET);
	test_family(AF_INET6);
	return tap_done();
}
