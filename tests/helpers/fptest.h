/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the fast path's test helpers (fp-dir, fp-race) share: a chain from
 * rule lines, the UDP packet they run through the tc program and that
 * program's fd.  Include it after bpf/bpf.h and bpf/libbpf.h, under
 * HAVE_FASTPATH.
 */
#ifndef IPMODD_TEST_FPTEST_H
#define IPMODD_TEST_FPTEST_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bpferr.h"
#include "chain.h"
#include "../unit/refcsum.h"
#include "../unit/ruleline.h"

#define FP_PACKET_LEN 64

/* The chain of the n lines, then nfill times the line fill; NULL after a diagnostic. */
static inline struct chain *chain_of(const char *const *lines, size_t n, const char *fill,
				     size_t nfill)
{
	struct rule **r = calloc(n + nfill, sizeof(*r));
	struct chain *c = NULL;
	char err[256];
	size_t i;

	if (!r)
		return NULL;
	for (i = 0; i < n; i++)
		if (!(r[i] = rule_of(lines[i])))
			goto out;
	for (; i < n + nfill; i++)
		if (!(r[i] = rule_of(fill)))
			goto out;
	if (chain_new(r, n + nfill, &c, err, sizeof(err)) < 0) {
		diag("chain_new: %s", err);
		c = NULL;
	}
out:
	for (size_t k = 0; k < n + nfill; k++)
		rule_free(r[k]);
	free(r);
	return c;
}

/*
 * A UDP packet, TTL 64, 192.0.2.2 -> 192.0.2.1 port 9, into pkt
 * (FP_PACKET_LEN bytes): IPv4 at byte 0, as the tun has it.
 */
static inline void build_packet(uint8_t *pkt)
{
	static const uint8_t ip[20] = { 0x45, 0, 0, 64, 0, 1, 0x40, 0, 64, 17, 0, 0,
					192, 0, 2, 2, 192, 0, 2, 1 };
	uint16_t sum;

	memset(pkt, 0, FP_PACKET_LEN);
	memcpy(pkt, ip, sizeof(ip));
	sum = ref_csum(ref_sum(pkt, 20, 0));
	pkt[10] = (uint8_t)(sum >> 8);
	pkt[11] = (uint8_t)sum;
	/* UDP 40000 -> 9, length 44, no checksum. */
	pkt[20] = 0x9c;
	pkt[21] = 0x40;
	pkt[23] = 9;
	pkt[25] = 44;
}

/*
 * The fd of the program on ifindex's egress, or -errno: the tcx link's
 * (BPF_TCX_EGRESS, 6.6+; the query's target is the ifindex there), else
 * the tc filter's, as fastpath_attach() attaches it.
 */
static inline int prog_fd_on(int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);
	__u32 ids[1], cnt = 1;
	int r;

	r = bpf_prog_query(ifindex, IPMODD_TCX_EGRESS, 0, NULL, ids, &cnt);
	if (r == 0 && cnt == 1) {
		r = bpf_prog_get_fd_by_id(ids[0]);
		return r < 0 ? -errno : r;
	}
	r = bpf_tc_query(&hook, &opts);
	if (r < 0)
		return r;
	r = bpf_prog_get_fd_by_id(opts.prog_id);
	return r < 0 ? -errno : r;
}

#endif
