/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The virtio-net header in front of each packet of a tun opened with
 * IFF_VNET_HDR, and GSO super-packets: validation against the parsed packet
 * and segmentation, as the kernel's TCP/UDP GSO would do it.  Pure: no I/O,
 * no allocation.
 */
#ifndef IPMODD_GSO_H
#define IPMODD_GSO_H

#include <stddef.h>
#include <stdint.h>

#include "packet.h"

/* struct virtio_net_hdr: the tun's header size is set to this (TUNSETVNETHDRSZ). */
#define GSO_HDR_LEN 10

/* Its values (linux/virtio_net.h; Debian 12's headers lack UDP_L4). */
#define GSO_F_NEEDS_CSUM 1
#define GSO_F_DATA_VALID 2
#define GSO_TYPE_NONE 0
#define GSO_TYPE_TCPV4 1
#define GSO_TYPE_UDP 3		/* UFO: never offered, refused */
#define GSO_TYPE_TCPV6 4
#define GSO_TYPE_UDP_L4 5
#define GSO_TYPE_ECN 0x80

/* A decoded header, host order (the tun is set to little-endian headers). */
struct gso {
	uint8_t flags;		/* GSO_F_* */
	uint8_t type;		/* GSO_TYPE_*, ECN bit included */
	uint16_t hdr_len;	/* bytes of headers (a hint: the kernel's linear part) */
	uint16_t size;		/* payload bytes per segment */
	uint16_t csum_start;	/* with NEEDS_CSUM: sum from here to the end ... */
	uint16_t csum_offset;	/* ... into the field at csum_start + csum_offset */
};

void gso_decode(const uint8_t *b, struct gso *g);
void gso_encode(const struct gso *g, uint8_t *b);

/*
 * Check the header g read with the parsed packet p, and describe p with it:
 * p->needs_csum, p->segs (segments of a GSO packet, 1 otherwise) and
 * p->seg_hlen (the headers each segment repeats).  Returns PKT_OK or
 * PKT_BAD_VNET: unknown flags or GSO type, a GSO type for another family or
 * protocol, ECN without TCP, a fragment, a GSO packet without payload, a
 * gso size of 0, a UDP length other than the payload's, hdr_len beyond the
 * packet, NEEDS_CSUM with a checksum field (csum_start + csum_offset) other
 * than the TCP/UDP checksum field of p as parsed, or a csum_start before its
 * L4 header (a fragment, another protocol, a field in the headers).
 *
 * g and p are normalized so that a header encoded from g describes p:
 * NEEDS_CSUM from the L4 header sets p->needs_csum; a sum from further on
 * into the same field is completed now (the flag goes); a GSO packet
 * without NEEDS_CSUM gets the pseudo-header sum and the flag, so that every
 * super-packet carries a partial checksum (gso_segment() relies on it).
 */
int gso_parse(struct gso *g, struct pkt *p);

/*
 * Write segment k (k < p->segs) of the super-packet p that gso_parse()
 * accepted to out (cap bytes): its headers with the IPv4 ID + k, the
 * lengths, TCP sequence + k * size, FIN and PSH only on the last, CWR only
 * on the first, and complete checksums (IPv4 header and L4).  Returns its
 * length, -EINVAL for k out of range, -ENOSPC when cap is too small.
 */
int gso_segment(const struct pkt *p, const struct gso *g, unsigned int k, uint8_t *out,
		size_t cap);

#endif
