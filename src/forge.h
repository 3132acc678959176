/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Forged packets sent back toward the local host: echo replies, TCP resets
 * and ICMP/ICMPv6 destination unreachables.  Pure functions: they build into
 * out->data (out->cap bytes) and never touch the request.
 */
#ifndef IPMODD_FORGE_H
#define IPMODD_FORGE_H

#include "packet.h"

#define FORGE_TTL 64

enum forge_unreach {
	FORGE_UNREACH_NET,
	FORGE_UNREACH_HOST,
	FORGE_UNREACH_PORT,
	FORGE_UNREACH_PROTO,
	FORGE_UNREACH_ADMIN,
};

/*
 * -EPERM when the request must not be answered at all: an ICMP error, a
 * fragment that is not the first, a multicast or broadcast address, an
 * incomplete header; -ENOSPC when out is too small.  0 on success, with out
 * parsed and every checksum computed in full.  req must have been parsed
 * (-EINVAL otherwise), and out->data must not overlap req->data.
 *
 * Source and destination are the request's swapped; IPv4 replies have
 * DF set, ID 0 and no options, IPv6 ones no extension headers; TTL / hop
 * limit FORGE_TTL.
 *
 * forge_echo_reply: ICMP echo (8) or ICMPv6 echo request (128) that is not
 *   fragmented at all; identifier, sequence and data copied, DSCP kept.
 * forge_tcp_reset: RFC 793 reset for a TCP segment that is not fragmented
 *   (its length is needed) and not itself a reset; no options.
 * forge_unreachable: IPv4 type 3 with code net 0, host 1, proto 2, port 3,
 *   admin 13, quoting the request up to 576 bytes in all (RFC 1812); IPv6
 *   type 1 with code no-route 0, admin 1, address 3, port 4, except
 *   FORGE_UNREACH_PROTO which is a parameter problem (type 4, code 1,
 *   pointer to the next header field), quoting up to 1280 bytes in all.  A
 *   first fragment is answered; -EINVAL for an unknown kind.
 */
int forge_echo_reply(const struct pkt *req, struct pkt *out);
int forge_tcp_reset(const struct pkt *req, struct pkt *out);
int forge_unreachable(const struct pkt *req, enum forge_unreach kind, struct pkt *out);

#endif
