/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdbool.h>
#include <string.h>

#include "loopguard.h"

#define IP4_HDR_MAX 60
#define IP6_HDR 40

/* A 64-bit multiply-rotate mix, eight bytes at a time (murmur/xxhash constants). */
static uint64_t mix(uint64_t h, uint64_t v)
{
	v *= 0x9e3779b97f4a7c15ULL;
	v = v << 31 | v >> 33;
	h ^= v * 0xc2b2ae3d27d4eb4fULL;
	return (h << 27 | h >> 37) * 5 + 0x52dce729;
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
	uint64_t v;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&v, p, 8);
		h = mix(h, v);
	}
	if (n) {
		v = 0;
		memcpy(&v, p, n);
		h = mix(h, v ^ (uint64_t)n << 56);
	}
	return h;
}

uint64_t loopguard_print(const uint8_t *pkt, size_t len)
{
	uint8_t hdr[IP4_HDR_MAX > IP6_HDR ? IP4_HDR_MAX : IP6_HDR];
	size_t hlen = 0, rest, n;
	uint64_t h = 0x8445d61a4e774912ULL ^ len;

	/* The header with what forwarding may change zeroed. */
	if (len >= 20 && pkt[0] >> 4 == 4) {
		hlen = (size_t)(pkt[0] & 0x0f) * 4;
		if (hlen < 20 || hlen > len)
			hlen = 20;
		memcpy(hdr, pkt, hlen);
		hdr[1] = 0;		/* TOS */
		hdr[8] = 0;		/* TTL */
		hdr[10] = hdr[11] = 0;	/* header checksum */
	} else if (len >= IP6_HDR && pkt[0] >> 4 == 6) {
		hlen = IP6_HDR;
		memcpy(hdr, pkt, hlen);
		hdr[0] &= 0xf0;		/* traffic class, */
		hdr[1] &= 0x0f;		/* the flow label stays */
		hdr[7] = 0;		/* hop limit */
	}
	h = hash_bytes(h, hdr, hlen);

	rest = len - hlen;
	n = rest < LOOPGUARD_HEAD ? rest : LOOPGUARD_HEAD;
	h = hash_bytes(h, pkt + hlen, n);
	rest -= n;
	n = rest < LOOPGUARD_TAIL ? rest : LOOPGUARD_TAIL;
	h = hash_bytes(h, pkt + len - n, n);

	/* Final avalanche (murmur3 fmix64): the low bits pick the set. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* The kernel forwards none of these: they cannot come back. */
static bool never_forwarded(const uint8_t *pkt, size_t len)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		const uint8_t *src = pkt + 12, *dst = pkt + 16;

		return (dst[0] == 224 && dst[1] == 0 && dst[2] == 0) ||
		       (dst[0] & dst[1] & dst[2] & dst[3]) == 0xff || all_zero(src, 4);
	}
	if (len >= IP6_HDR && pkt[0] >> 4 == 6) {
		const uint8_t *src = pkt + 8, *dst = pkt + 24;

		return (dst[0] == 0xff && (dst[1] & 0x0f) <= 2) || all_zero(src, 16) ||
		       (src[0] == 0xfe && (src[1] & 0xc0) == 0x80) ||
		       (dst[0] == 0xfe && (dst[1] & 0xc0) == 0x80);
	}
	return false;
}

void loopguard_record(struct loopguard *lg, const uint8_t *pkt, size_t len, uint64_t now_ns)
{
	uint64_t print;
	unsigned int set, way;

	if (never_forwarded(pkt, len))
		return;
	print = loopguard_print(pkt, len);
	set = (unsigned int)(print & (LOOPGUARD_SETS - 1));

	/* The same packet again (a duplicate) refreshes its slot; else the older one goes. */
	if (lg->slot[set][0].print == print && lg->slot[set][0].at_ns)
		way = 0;
	else if (lg->slot[set][1].print == print && lg->slot[set][1].at_ns)
		way = 1;
	else
		way = lg->slot[set][0].at_ns <= lg->slot[set][1].at_ns ? 0 : 1;
	lg->slot[set][way].print = print;
	lg->slot[set][way].at_ns = now_ns;
}

bool loopguard_check(struct loopguard *lg, const uint8_t *pkt, size_t len, uint64_t now_ns)
{
	uint64_t print;
	unsigned int set;

	if (never_forwarded(pkt, len))
		return false;
	print = loopguard_print(pkt, len);
	set = (unsigned int)(print & (LOOPGUARD_SETS - 1));

	for (unsigned int way = 0; way < 2; way++) {
		uint64_t at = lg->slot[set][way].at_ns;

		if (at && lg->slot[set][way].print == print && now_ns >= at &&
		    now_ns - at <= LOOPGUARD_LIFETIME_NS) {
			lg->loops++;
			return true;
		}
	}
	return false;
}
