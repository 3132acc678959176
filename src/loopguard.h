/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packets that come back: a packet written to the tun is forwarded by the
 * kernel, and if the main table routes its destination into the tun again
 * (a route via the tun, a rule before the bypass), the daemon reads it a
 * second time.  With TTL compensation it would circle at a constant TTL for
 * ever.  The guard remembers a fingerprint of each packet written for a
 * short while; a packet read with a fresh fingerprint is such a loop.
 *
 * The fingerprint covers what forwarding leaves alone: the IP header without
 * TTL / hop limit, TOS / traffic class and the IPv4 header checksum, the first
 * LOOPGUARD_HEAD bytes after it and the last LOOPGUARD_TAIL of the packet, and
 * the length.  A round trip through the kernel takes microseconds, so the
 * lifetime is short; a host that sends the very same packet twice within it
 * (an unconnected UDP socket repeating a datagram) would lose the second copy.
 * A fingerprint evicted before its packet came back costs one more round.
 *
 * A packet the kernel never forwards cannot come back, and is neither
 * remembered nor taken: one to a multicast group of link scope or less
 * (224.0.0.0/24, ff01::/16, ff02::/16), to 255.255.255.255, from an
 * unspecified address, from or to an IPv6 link-local one.  The kernel
 * sends some of these into the tun itself (its MLD reports, repeated at a
 * random delay and the same each time): they are the host's, not a loop.
 * Pure: no I/O, no allocation; a zeroed struct is an empty guard.
 */
#ifndef IPMODD_LOOPGUARD_H
#define IPMODD_LOOPGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOOPGUARD_SETS 4096			/* two fingerprints each */
#define LOOPGUARD_LIFETIME_NS (20 * 1000000ULL)
#define LOOPGUARD_HEAD 96			/* bytes after the IPv4 / fixed IPv6 header */
#define LOOPGUARD_TAIL 16

struct loopguard {
	struct {
		uint64_t print;
		uint64_t at_ns;		/* 0: empty */
	} slot[LOOPGUARD_SETS][2];
	uint64_t loops;			/* packets found coming back */
};

/* The fingerprint of an IP packet (any bytes are fine: a bad header hashes as data). */
uint64_t loopguard_print(const uint8_t *pkt, size_t len);

/*
 * pkt was written to the tun at now_ns (a monotonic clock, never 0); one the
 * kernel does not forward is not remembered.
 */
void loopguard_record(struct loopguard *lg, const uint8_t *pkt, size_t len, uint64_t now_ns);

/*
 * pkt was read from the tun at now_ns: true when it is a packet written back
 * moments ago, counted in loops (never one the kernel does not forward).
 */
bool loopguard_check(struct loopguard *lg, const uint8_t *pkt, size_t len, uint64_t now_ns);

#endif
