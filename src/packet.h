/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packet parsing and checksum arithmetic: pure functions, no I/O, no
 * allocation.  Every offset is checked against the buffer.
 */
#ifndef IPMODD_PACKET_H
#define IPMODD_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest packet the daemon handles (IPv4 total length / IPv6 without jumbograms). */
#define PKT_MAX 65535

/* Why pkt_parse() refused a packet.  PKT_OK is 0; the rest index drop counters. */
enum pkt_class {
	PKT_OK = 0,
	PKT_TRUNCATED,		/* shorter than a header it announces */
	PKT_BAD_VERSION,	/* neither 4 nor 6 */
	PKT_BAD_HDRLEN,		/* IHL < 5, or beyond the buffer */
	PKT_BAD_LENGTH,		/* total/payload length disagrees with the buffer */
	PKT_BAD_OPTIONS,	/* malformed IPv4 options */
	PKT_BAD_EXTHDR,		/* IPv6 extension chain malformed or too long */
	PKT_BAD_L4,		/* L4 header truncated or invalid (data offset...) */
	PKT_CLASS_MAX,
};

struct pkt {
	uint8_t *data;		/* start of the IP header */
	size_t len;		/* bytes of packet in data */
	size_t cap;		/* bytes available in data (forging and option edits) */

	/* Filled by pkt_parse(). */
	int family;		/* AF_INET or AF_INET6 */
	uint8_t l4proto;	/* IPPROTO_* after IPv6 extension headers */
	uint16_t l4off;		/* offset of the L4 header in data */
	bool fragment;		/* part of a fragmented datagram */
	bool first_fragment;	/* offset 0: carries the L4 header */
	bool l4_complete;	/* the whole L4 header lies inside data */

	/* Valid when l4_complete; host byte order. */
	uint16_t sport, dport;	/* TCP, UDP */
	uint8_t icmp_type, icmp_code;	/* ICMP, ICMPv6 */
	uint8_t tcp_flags;	/* FIN 0x01 ... CWR 0x80 */
};

/* Checksum arithmetic (RFC 1071 sums, RFC 1624 incremental updates). */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);
uint16_t csum_fold(uint32_t sum);		/* fold and complement */
/* The checksum field after a 16-bit word of the covered data changed from old to new. */
uint16_t csum_replace2(uint16_t check, uint16_t old, uint16_t new);
uint16_t csum_replace4(uint16_t check, uint32_t old, uint32_t new);
/* Recompute every checksum of a parsed packet from scratch (forged packets, tests). */
void pkt_csum_full(struct pkt *p);

/* Parse the headers of p->data[0..p->len); returns enum pkt_class. */
int pkt_parse(struct pkt *p);
const char *pkt_class_name(int cls);

/*
 * A packet written back to the tun is forwarded, which costs it one TTL / hop
 * limit.  Add it back beforehand (255 stays 255), fixing the IPv4 header
 * checksum incrementally.
 */
void pkt_forward_compensate(struct pkt *p);

/* Field access for matching and rewriting; p must have been parsed. */
const uint8_t *pkt_saddr(const struct pkt *p);	/* 4 or 16 bytes, network order */
const uint8_t *pkt_daddr(const struct pkt *p);
uint8_t pkt_ttl(const struct pkt *p);		/* TTL or hop limit */
uint8_t pkt_dscp(const struct pkt *p);
uint8_t pkt_ecn(const struct pkt *p);
uint16_t pkt_ip_len(const struct pkt *p);	/* IPv4 total length / IPv6 40 + payload */

/* Rewrites that keep every checksum right (incrementally). */
void pkt_set_ttl(struct pkt *p, uint8_t ttl);
void pkt_set_dscp(struct pkt *p, uint8_t dscp);
void pkt_set_ecn(struct pkt *p, uint8_t ecn);
/* Lower the MSS option of a TCP SYN to at most mss; true when it changed. */
bool pkt_clamp_mss(struct pkt *p, uint16_t mss);

#endif
