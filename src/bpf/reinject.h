/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the re-injection program (reinject.bpf.c) and its loader (reinject.c) share. */
#ifndef IPMODD_BPF_REINJECT_H
#define IPMODD_BPF_REINJECT_H

/* Keys of ri_totals: what became of the packets entering the tun. */
enum {
	RI_T_REDIRECTED,	/* the host's own: sent out of the uplink */
	RI_T_FORWARDED,		/* another host's: to the kernel's forwarding */
	RI_T_OTHER,		/* to the kernel for another reason (TTL, MTU, no route, not IP) */
	RI_T_DROPPED,		/* rewriting failed after the header was pushed */
	RI_T_DIRECT,		/* of the redirected: from the tun's egress (the fast path's) */
	RI_T_SOURCE_KNOWN,	/* of all: the source's answer kept from an earlier packet */
	RI_T_ROUTE_KNOWN,	/* of all: the forward's route kept from an earlier packet */
	RI_T_MAX,
};

/* Entries of ri_routes, the forward lookups kept per CPU (a power of two). */
#define RI_ROUTES 8

#endif
