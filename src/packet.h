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
	PKT_BAD_VNET,		/* a virtio-net header that does not describe the packet (gso.h) */
	PKT_CLASS_MAX,
};

/*
 * Which way a packet travels: read from the tun the host's routes divert
 * into (out), or from an inbound tun a listed interface's ingress program
 * redirected it to (in).  A rule's direction= match tests it.
 */
enum pkt_dir {
	PKT_DIR_OUT = 0,
	PKT_DIR_IN = 1,
};

/*
 * What the daemon's flow table says of a packet (issue 14), filled before
 * the chain runs (manager-packet.c); struct pkt.flow points at it.
 */
enum pkt_name_kind {
	PKT_NAME_NONE,
	PKT_NAME_TLS,	/* TLS ClientHello server_name */
	PKT_NAME_HTTP,	/* HTTP/1.x Host */
	PKT_NAME_QUIC,	/* QUIC Initial's ClientHello server_name */
};

struct pkt_flow {
	uint32_t pos;		/* 1-based position in its flow, in its direction */
	uint64_t bytes_before;	/* payload bytes before this packet, in its direction */
	uint8_t state;		/* enum flow_state (flow.h), this packet counted */
	uint8_t fdir;		/* enum flow_dir (flow.h) */
	uint8_t name_kind;	/* enum pkt_name_kind: none yet, or where name came from */
	uint8_t name_len;
	const char *name;	/* the flow's host name (lowercase), name_len bytes */
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
	bool frag_hdr;		/* IPv6: a Fragment header in the chain (an atomic
				 * one, RFC 6946, too: then fragment is false) */
	bool first_fragment;	/* offset 0: carries the L4 header (also true when
				 * not fragmented: !first_fragment means a
				 * non-first fragment) */
	bool l4_complete;	/* the whole L4 header lies inside data */

	/* Valid when l4_complete; host byte order. */
	uint16_t sport, dport;	/* TCP, UDP */
	uint8_t icmp_type, icmp_code;	/* ICMP, ICMPv6 */
	uint8_t tcp_flags;	/* FIN 0x01 ... CWR 0x80 */

	/*
	 * What the virtio-net header said (gso_parse()); pkt_parse() resets
	 * them to a plain packet.  needs_csum: the TCP/UDP checksum field holds
	 * the pseudo-header sum, not complemented, and the kernel sums the L4
	 * header and payload into it on the way out (VIRTIO_NET_HDR_F_NEEDS_CSUM).
	 * segs: a GSO super-packet stands for this many segments, each with a
	 * copy of the first seg_hlen bytes (IP and L4 headers).
	 */
	bool needs_csum;
	uint16_t segs;
	uint16_t seg_hlen;

	/* Set by whoever read the packet, kept by pkt_parse(); 0: PKT_DIR_OUT. */
	uint8_t dir;

	/* Set by the daemon before the chain, kept by pkt_parse(); NULL: no flow. */
	const struct pkt_flow *flow;
};

/* Checksum arithmetic (RFC 1071 sums, RFC 1624 incremental updates). */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);
uint16_t csum_fold(uint32_t sum);		/* fold and complement */
/* The checksum field after a 16-bit word of the covered data changed from old to new. */
uint16_t csum_replace2(uint16_t check, uint16_t old, uint16_t new);
uint16_t csum_replace4(uint16_t check, uint32_t old, uint32_t new);
/*
 * The same for a UDP checksum: on AF_INET a 0 ("no checksum") stays 0, and a
 * result of 0 is stored as 0xffff.
 */
uint16_t csum_udp_replace2(uint16_t check, uint16_t old, uint16_t new, int family);
uint16_t csum_udp_replace4(uint16_t check, uint32_t old, uint32_t new, int family);
/*
 * Fix the L4 checksum of a parsed packet (TCP, UDP with the rule above,
 * ICMP, ICMPv6) after a 16/32-bit value it covers changed.  pseudo: the value
 * is in the pseudo-header (addresses), which ICMPv4 does not cover.  No-op
 * without a complete L4 header (non-first fragments: the first one carries
 * the checksum).  Call it once per changed word for IPv6 addresses.
 * With p->needs_csum the field holds a partial sum: a pseudo-header change
 * is folded in without complement, any other change needs nothing (the
 * kernel sums those bytes later).
 */
void pkt_l4_csum_replace2(struct pkt *p, uint16_t old, uint16_t new, bool pseudo);
void pkt_l4_csum_replace4(struct pkt *p, uint32_t old, uint32_t new, bool pseudo);
/*
 * Recompute every checksum of a parsed packet from scratch (forged packets,
 * tests).  L4 checksums of fragments (they cover the whole datagram) and of
 * IPv6 packets with a routing header that has segments left (their
 * pseudo-header holds another destination) are left as they are.  An IPv4
 * UDP checksum of 0 stays 0; one that computes to 0 is stored as 0xffff.
 */
void pkt_csum_full(struct pkt *p);
/*
 * A packet with needs_csum gets its final L4 checksum: the sum of the L4
 * header and payload folded into the partial sum the field holds (a UDP
 * result of 0 is stored as 0xffff); needs_csum is then false.  No-op
 * otherwise.
 */
void pkt_csum_complete(struct pkt *p);

/*
 * Parse the headers of p->data[0..p->len); returns enum pkt_class.  The
 * buffer must be exactly one packet.  Failures:
 * - PKT_TRUNCATED: empty, shorter than the fixed IP header (20/40), or
 *   shorter than the IPv4 total length / 40 + IPv6 payload length;
 * - PKT_BAD_LENGTH: longer than that, longer than PKT_MAX, an IPv4 total
 *   length below the header length, or an IPv6 jumbogram option;
 * - PKT_BAD_HDRLEN: IHL < 5 or an IPv4 header beyond the buffer (this is
 *   checked before the total length, so a buffer cut inside the IPv4 options
 *   is PKT_BAD_HDRLEN, not PKT_TRUNCATED);
 * - PKT_BAD_OPTIONS: an IPv4 option TLV not inside the header;
 * - PKT_BAD_EXTHDR: an extension header beyond the packet, bad option TLVs,
 *   hop-by-hop not first, two fragment headers, more than 8 headers;
 * - PKT_BAD_L4: an invalid TCP data offset or UDP length, or an L4 header
 *   (TCP with its options, UDP 8, ICMP 4, echo 8 bytes) cut short in a
 *   datagram that is not fragmented.  A first fragment may end inside its L4
 *   header: PKT_OK with l4_complete false.  A packet whose L4 header is cut
 *   short by the buffer rather than by its IP length is PKT_TRUNCATED.
 * Unknown L4 protocols, ICMP in IPv6 and ICMPv6 in IPv4 included, are
 * PKT_OK with l4_complete false.
 */
int pkt_parse(struct pkt *p);
const char *pkt_class_name(int cls);

/* ICMP (AF_INET) types 0/8 or ICMPv6 (AF_INET6) types 128/129. */
bool pkt_icmp_is_echo(int family, uint8_t type);
/*
 * An ICMP/ICMPv6 message that must never be answered with another error:
 * the error types, types unknown to RFC 792 & co., and any ICMP message whose
 * type is not in the buffer (non-first fragments, cut headers).
 */
bool pkt_is_icmp_error(const struct pkt *p);
/*
 * Offset of the byte holding the IPv6 next header that names p->l4proto
 * (6 without extension headers); 0 for IPv4.  For ICMPv6 parameter problems.
 */
size_t pkt_ip6_nexthdr_offset(const struct pkt *p);

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
/* Packets and IP bytes p stands for: its segments when it is a GSO super-packet. */
static inline unsigned int pkt_segs(const struct pkt *p)
{
	return p->segs > 1 ? p->segs : 1;
}
static inline uint64_t pkt_seg_bytes(const struct pkt *p)
{
	return p->len + (uint64_t)(pkt_segs(p) - 1) * p->seg_hlen;
}

/* Rewrites that keep every checksum right (incrementally). */
void pkt_set_ttl(struct pkt *p, uint8_t ttl);
void pkt_set_dscp(struct pkt *p, uint8_t dscp);
void pkt_set_ecn(struct pkt *p, uint8_t ecn);
/*
 * Lower the MSS option of a TCP SYN to at most mss; true when it changed.
 * The checksum follows (left alone with needs_csum).
 */
bool pkt_clamp_mss(struct pkt *p, uint16_t mss);

#endif
