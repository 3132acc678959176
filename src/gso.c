/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Virtio-net headers and GSO segmentation.  What the kernel hands over for
 * a locally generated TCP or UDP packet with TUN_F_CSUM (and TSO/USO) on:
 * NEEDS_CSUM with csum_start at the L4 header and the checksum field holding
 * the pseudo-header sum over the whole L4 length, not complemented; for a
 * super-packet also the GSO type and size.  See gso.h.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "gso.h"
#include "util.h"

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static uint16_t get_le16(const uint8_t *b)
{
	return (uint16_t)(b[0] | b[1] << 8);
}

static void put_le16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

void gso_decode(const uint8_t *b, struct gso *g)
{
	g->flags = b[0];
	g->type = b[1];
	g->hdr_len = get_le16(b + 2);
	g->size = get_le16(b + 4);
	g->csum_start = get_le16(b + 6);
	g->csum_offset = get_le16(b + 8);
}

void gso_encode(const struct gso *g, uint8_t *b)
{
	b[0] = g->flags;
	b[1] = g->type;
	put_le16(b + 2, g->hdr_len);
	put_le16(b + 4, g->size);
	put_le16(b + 6, g->csum_start);
	put_le16(b + 8, g->csum_offset);
}

/* Offset of the TCP/UDP checksum field in the L4 header, 0 for other protocols. */
static uint16_t l4_csum_field(const struct pkt *p)
{
	if (p->l4proto == IPPROTO_TCP)
		return 16;
	if (p->l4proto == IPPROTO_UDP)
		return 6;
	return 0;
}

/* The pseudo-header sum for an L4 length of l4len, folded, not complemented. */
static uint16_t pseudo_partial(const struct pkt *p, size_t l4len)
{
	size_t alen = p->family == AF_INET ? 4 : 16;
	uint32_t sum;

	sum = csum_partial(pkt_saddr(p), alen, 0);
	sum = csum_partial(pkt_daddr(p), alen, sum);
	sum += p->l4proto + (uint32_t)(l4len >> 16) + (uint32_t)(l4len & 0xffff);
	return (uint16_t)~csum_fold(sum);
}

static int check_gso_type(const struct gso *g, const struct pkt *p)
{
	switch (g->type & ~GSO_TYPE_ECN) {
	case GSO_TYPE_NONE:
		return g->type == GSO_TYPE_NONE ? PKT_OK : PKT_BAD_VNET;
	case GSO_TYPE_TCPV4:
		return p->family == AF_INET && p->l4proto == IPPROTO_TCP ? PKT_OK : PKT_BAD_VNET;
	case GSO_TYPE_TCPV6:
		return p->family == AF_INET6 && p->l4proto == IPPROTO_TCP ? PKT_OK : PKT_BAD_VNET;
	case GSO_TYPE_UDP_L4:
		if (g->type & GSO_TYPE_ECN)
			return PKT_BAD_VNET;
		return p->l4proto == IPPROTO_UDP ? PKT_OK : PKT_BAD_VNET;
	}
	return PKT_BAD_VNET;
}

int gso_parse(struct gso *g, struct pkt *p)
{
	uint16_t field = l4_csum_field(p);
	size_t hlen, payload;
	int r;

	p->needs_csum = false;
	p->segs = 1;
	p->seg_hlen = 0;
	if (g->flags & ~(GSO_F_NEEDS_CSUM | GSO_F_DATA_VALID))
		return PKT_BAD_VNET;
	if (g->hdr_len > p->len)
		return PKT_BAD_VNET;
	r = check_gso_type(g, p);
	if (r != PKT_OK)
		return r;

	if (g->flags & GSO_F_NEEDS_CSUM) {
		size_t at = (size_t)g->csum_start + g->csum_offset;

		/*
		 * Only the TCP/UDP checksum field of the packet as parsed, summed
		 * from within its L4 header: a field anywhere else would have the
		 * sum written over headers the rules match and rewrite.
		 */
		if (!field || !p->l4_complete || p->fragment || at != (size_t)p->l4off + field ||
		    g->csum_start < p->l4off || at + 2 > p->len)
			return PKT_BAD_VNET;
		if (g->csum_start == p->l4off) {
			p->needs_csum = true;
		} else {
			/* A sum we do not keep partial: complete it now, as the kernel would. */
			uint8_t *f = p->data + at;
			uint16_t sum;

			sum = csum_fold(csum_partial(p->data + g->csum_start,
						     p->len - g->csum_start, 0));
			put_be16(f, sum);
			g->flags &= (uint8_t)~GSO_F_NEEDS_CSUM;
			g->csum_start = g->csum_offset = 0;
		}
	}
	if (g->type == GSO_TYPE_NONE)
		return PKT_OK;

	if (p->fragment || !p->l4_complete || g->size == 0)
		return PKT_BAD_VNET;
	if (p->l4proto == IPPROTO_TCP)
		hlen = p->l4off + (size_t)(p->data[p->l4off + 12] >> 4) * 4;
	else
		hlen = p->l4off + 8u;
	if (hlen >= p->len)
		return PKT_BAD_VNET;
	if (p->l4proto == IPPROTO_UDP && get_be16(p->data + p->l4off + 4) != p->len - p->l4off)
		return PKT_BAD_VNET;
	payload = p->len - hlen;
	p->segs = (uint16_t)((payload + g->size - 1) / g->size);
	p->seg_hlen = (uint16_t)hlen;

	/* Segmentation works from a partial sum (forwarded GRO packets come without one). */
	if (!p->needs_csum) {
		put_be16(p->data + p->l4off + field, pseudo_partial(p, p->len - p->l4off));
		p->needs_csum = true;
		g->flags |= GSO_F_NEEDS_CSUM;
		g->csum_start = p->l4off;
		g->csum_offset = field;
	}
	return PKT_OK;
}

int gso_segment(const struct pkt *p, const struct gso *g, unsigned int k, uint8_t *out,
		size_t cap)
{
	size_t hlen = p->seg_hlen, off, plen, l4len;
	uint16_t field = l4_csum_field(p), partial, check;
	uint8_t *l4 = out + p->l4off;
	bool last;

	if (k >= pkt_segs(p) || g->type == GSO_TYPE_NONE || !field || !p->needs_csum)
		return -EINVAL;
	off = hlen + (size_t)k * g->size;
	plen = p->len - off < g->size ? p->len - off : g->size;
	last = k + 1 == pkt_segs(p);
	if (hlen + plen > cap)
		return -ENOSPC;
	memcpy(out, p->data, hlen);
	memcpy(out + hlen, p->data + off, plen);
	l4len = hlen - p->l4off + plen;

	if (p->family == AF_INET) {
		size_t ihl = (size_t)(out[0] & 0x0f) * 4;

		put_be16(out + 2, (uint16_t)(hlen + plen));
		put_be16(out + 4, (uint16_t)(get_be16(out + 4) + k));
		put_be16(out + 10, 0);
		put_be16(out + 10, csum_fold(csum_partial(out, ihl, 0)));
	} else {
		put_be16(out + 4, (uint16_t)(hlen + plen - 40));
	}

	if (p->l4proto == IPPROTO_TCP) {
		put_be32(l4 + 4, get_be32(l4 + 4) + (uint32_t)(k * g->size));
		if (!last)
			l4[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
		if (k)
			l4[13] &= (uint8_t)~TCP_CWR;
	} else {
		put_be16(l4 + 4, (uint16_t)l4len);
	}

	/*
	 * The partial sum covers the pseudo-header with the whole L4 length:
	 * swap in this segment's (RFC 1624 on its complement, as the kernel's
	 * GSO does), then sum the segment's L4 bytes over it.  This needs no
	 * addresses, so a routing header's final destination stays right.
	 */
	partial = (uint16_t)~csum_replace2((uint16_t)~get_be16(p->data + p->l4off + field),
					   (uint16_t)(p->len - p->l4off), (uint16_t)l4len);
	put_be16(l4 + field, partial);
	check = csum_fold(csum_partial(l4, l4len, 0));
	if (p->l4proto == IPPROTO_UDP && check == 0)
		check = 0xffff;
	put_be16(l4 + field, check);
	return (int)(hlen + plen);
}
