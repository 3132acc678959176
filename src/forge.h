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
 * parsed and every checksum computed in full.
 */
int forge_echo_reply(const struct pkt *req, struct pkt *out);
int forge_tcp_reset(const struct pkt *req, struct pkt *out);
int forge_unreachable(const struct pkt *req, enum forge_unreach kind, struct pkt *out);

#endif
