/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The packet of "ipmodctl explain": built from key=value fields that read as
 * the match keys of a rule (proto=tcp dst=192.0.2.7 dport=443 ...), each
 * with one value, for chain_explain() to walk.  Pure: no I/O, no logging.
 */
#ifndef IPMODD_EXPLAIN_H
#define IPMODD_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#include "packet.h"
#include "rule.h"

/* Room the packet needs: the largest len= and a forged answer to it. */
#define EXPLAIN_BUF_MAX PKT_MAX
#define EXPLAIN_SRC4 "192.0.2.1"
#define EXPLAIN_SRC6 "2001:db8::1"
#define EXPLAIN_FIELDS_MAX (RULE_KV_MAX - 2)

/*
 * Fields: proto= (needed), dst= (needed), src= (default EXPLAIN_SRC4 or
 * EXPLAIN_SRC6, documentation addresses: give src= for rules that match it),
 * sport= dport= (TCP, UDP; default 40000 and 80), flags= or tcp-flags=
 * (TCP; the flags set, default syn), icmp-type= icmp-code= (ICMP, ICMPv6;
 * default echo-request 0), ttl= (default 64), dscp= (default 0), len= or
 * length= (IP total length; default the headers alone), family=,
 * direction=out|in (p->dir: which rules see it; out by default).  Each is
 * one value: no ranges, negations or prefixes.  Builds into buf (cap >=
 * EXPLAIN_BUF_MAX) and parses it into p.  Returns 0, or -errno with a
 * message in err:
 *   -EINVAL      an unknown field, a bad or missing value
 */
int explain_packet(const struct rule_kv *kv, size_t n, uint8_t *buf, size_t cap,
		   struct pkt *p, char *err, size_t errlen);

#endif
