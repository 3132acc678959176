/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The start-up self-check (DESIGN.md 6): on the forwarding path, a packet
 * written back to the tun is a forwarded packet, and a firewall whose forward
 * policy drops (an nftables forward chain with "policy drop", Docker's
 * "iptables -P FORWARD DROP", ufw, firewalld) drops every one of them: the
 * host is cut off without a word.  The probe writes one recognisable UDP
 * packet through the tun, from the address the kernel picks as the source,
 * toward the main table's default gateway (or, on a route without a usable
 * gateway, a documentation address the default route covers), with a TTL
 * (hop limit) of 2, so that it leaves with 1 and goes no further than the
 * first hop; and it watches every interface but the tun with an AF_PACKET
 * socket for that packet going out (PACKET_OUTGOING).  The packet is written,
 * never read from the tun: the rule chain does not see it.  No logging.
 */
#ifndef IPMODD_PROBE_H
#define IPMODD_PROBE_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tun.h"

#define PROBE_TRIES 3
#define PROBE_WAIT_MS 100	/* per try: ARP/ND for the gateway answers within it on a LAN */
#define PROBE_PORT 33434	/* UDP destination port, traceroute's */
#define PROBE_TTL 2		/* written; forwarding takes one */

struct probe_target {
	int family;		/* AF_INET or AF_INET6 */
	int oif;		/* the default route's device */
	char oif_name[IFNAMSIZ];
	bool gateway;		/* dst is the default route's gateway */
	uint8_t nexthop[16];	/* the gateway, or dst on a route without one */
	uint8_t dst[16];
	uint8_t src[16];	/* the source the kernel picks for dst */
};

struct probe_result {
	int ifindex;		/* the packet left through this device */
	char ifname[IFNAMSIZ];
	unsigned int tries;	/* packets written */
	uint64_t usec;		/* from the first write to the sighting */
};

/*
 * Where a packet of family written back to the tun (tun_ifindex) would go:
 * the main table's default route with the lowest metric, not via the tun.
 * -ENETUNREACH when there is none (no uplink: nothing to check), -ENETDOWN
 * when its device is down or has no carrier (nothing can leave), or -errno,
 * with err set.
 */
int probe_target(int family, int tun_ifindex, struct probe_target *ret, char *err,
		 size_t errlen);

/*
 * Write the probe for t through tun (queue 0) up to PROBE_TRIES times and
 * wait PROBE_WAIT_MS after each for it to leave.  0 with res filled when it
 * was seen going out of an interface other than the tun, -ETIMEDOUT when
 * it was not, or -errno, with err set.  -EHOSTUNREACH: not seen, but the
 * next hop's neighbour entry is unresolved (it does not answer ARP/ND): the
 * packet got past the firewall, and nothing would leave there anyway.
 * -EPERM or -EAFNOSUPPORT: no AF_PACKET socket (it needs CAP_NET_RAW, and
 * a unit's RestrictAddressFamilies= may forbid it); nothing was written.
 */
int probe_run(struct tun *tun, const struct probe_target *t, struct probe_result *res,
	      char *err, size_t errlen);

/*
 * The probe packet, pure (tests): an IPv4 or IPv6 UDP packet from t->src to
 * t->dst, TTL/hop limit PROBE_TTL, marked with id (the IPv4 identification,
 * or the IPv6 flow label's low 16 bits) and nonce in the payload.  Returns
 * its length, or -ENOSPC.
 */
int probe_build(const struct probe_target *t, uint16_t sport, uint16_t id, uint64_t nonce,
		uint8_t *buf, size_t len);
/* Whether pkt (from its IP header) is the probe built with these id and nonce. */
bool probe_match(int family, uint16_t id, uint64_t nonce, const uint8_t *pkt, size_t len);

#endif
