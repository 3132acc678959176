/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for virtio-net headers and GSO segmentation: the first
 * GSO_HDR_LEN bytes are the header, the rest the packet.  For any input:
 * - gso_parse() answers PKT_OK or PKT_BAD_VNET, and writes nothing but the
 *   TCP/UDP checksum field of the parsed packet (the headers the rules
 *   match and rewrite stay as they were);
 * - an accepted header encodes back to one that gso_parse() accepts again
 *   with the same segments;
 * - every segment of an accepted super-packet fits the packet's headers
 *   plus gso_size and parses as the same flow; together they are
 *   pkt_seg_bytes(); when the sender's partial sum was right, each
 *   carries the checksums a full recompute gives.
 *
 * By hand: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *	tests/fuzz/fuzz-gso.c src/packet.c src/gso.c -o fuzz-gso
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gso.h"
#include "packet.h"

#define check(cond)                    \
	do {                           \
		if (!(cond))           \
			abort();       \
	} while (0)

static uint8_t pbuf[PKT_MAX], orig[PKT_MAX], again[PKT_MAX], seg[PKT_MAX], full[PKT_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Whether the partial sum in p's checksum field is the pseudo-header's over
 * the whole L4 length, as the kernel leaves it: completed, p then has the
 * checksum a full recompute gives.  Otherwise the segments' checksums are
 * as wrong as the sender's sum, as they would be from the kernel's GSO.
 */
static bool partial_sum_right(const struct pkt *p)
{
	struct pkt c = { .data = seg, .len = p->len, .cap = sizeof(seg) };
	struct pkt f = { .data = full, .len = p->len, .cap = sizeof(full) };

	memcpy(seg, p->data, p->len);
	check(pkt_parse(&c) == PKT_OK);
	c.needs_csum = true;
	pkt_csum_complete(&c);
	memcpy(full, p->data, p->len);
	check(pkt_parse(&f) == PKT_OK);
	pkt_csum_full(&f);
	return memcmp(seg, full, p->len) == 0;
}

static void check_segments(const struct pkt *p, const struct gso *g)
{
	bool exact = partial_sum_right(p);
	uint64_t total = 0;

	for (unsigned int k = 0; k < pkt_segs(p); k++) {
		struct pkt s = { .data = seg, .cap = sizeof(seg) };
		struct pkt f = { .data = full, .cap = sizeof(full) };
		int n = gso_segment(p, g, k, seg, sizeof(seg));

		check(n > 0 && (size_t)n <= (size_t)p->seg_hlen + g->size);
		s.len = (size_t)n;
		check(pkt_parse(&s) == PKT_OK);
		check(s.family == p->family && s.l4proto == p->l4proto && s.l4off == p->l4off &&
		      s.l4_complete && s.sport == p->sport && s.dport == p->dport);
		memcpy(full, seg, s.len);
		f.len = s.len;
		check(pkt_parse(&f) == PKT_OK);
		pkt_csum_full(&f);
		check(!exact || memcmp(full, seg, s.len) == 0);
		total += s.len;
	}
	check(total == pkt_seg_bytes(p));
	check(gso_segment(p, g, pkt_segs(p), seg, sizeof(seg)) == -EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[GSO_HDR_LEN];
	struct pkt p, q;
	struct gso g, h;
	size_t len, field;
	int r;

	if (size < GSO_HDR_LEN || size - GSO_HDR_LEN > sizeof(pbuf))
		return 0;
	len = size - GSO_HDR_LEN;
	memcpy(pbuf, data + GSO_HDR_LEN, len);
	p = (struct pkt){ .data = pbuf, .len = len, .cap = len };
	if (pkt_parse(&p) != PKT_OK)
		return 0;
	memcpy(orig, pbuf, len);
	gso_decode(data, &g);
	r = gso_parse(&g, &p);
	check(r == PKT_OK || r == PKT_BAD_VNET);
	if (r != PKT_OK)
		return 0;

	/* Only the L4 checksum field may have changed. */
	field = p.l4proto == IPPROTO_TCP ? 16 : 6;
	for (size_t i = 0; i < len; i++)
		if (pbuf[i] != orig[i])
			check((p.l4proto == IPPROTO_TCP || p.l4proto == IPPROTO_UDP) &&
			      i >= p.l4off + field && i < p.l4off + field + 2);
	check(pkt_segs(&p) >= 1);
	check(!p.needs_csum || (g.flags & GSO_F_NEEDS_CSUM));

	/* What ipmodd writes back is accepted again, describing the same packet. */
	gso_encode(&g, hdr);
	gso_decode(hdr, &h);
	memcpy(again, pbuf, len);
	q = (struct pkt){ .data = again, .len = len, .cap = len };
	check(pkt_parse(&q) == PKT_OK);
	check(gso_parse(&h, &q) == PKT_OK);
	check(pkt_segs(&q) == pkt_segs(&p) && q.needs_csum == p.needs_csum);
	check(memcmp(again, pbuf, len) == 0);

	if (g.type != GSO_TYPE_NONE)
		check_segments(&p, &g);
	return 0;
}
