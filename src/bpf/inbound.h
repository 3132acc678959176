/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the inbound programs (inbound.bpf.c) and their loader (inbound.c) share. */
#ifndef IPMODD_BPF_INBOUND_H
#define IPMODD_BPF_INBOUND_H

/*
 * skb->mark of a packet reinject_in hands back to the uplink's ingress
 * ("ipmi"): divert recognises it, clears it and lets the packet in.
 */
#define INBOUND_MARK 0x69706d69

/* Keys of ib_totals. */
enum {
	IB_T_DIVERTED,		/* divert: to the inbound tun */
	IB_T_PASSED,		/* divert: not ours to divert (not IP, ND, multicast, another host's) */
	IB_T_RETURNED,		/* divert: a re-injected packet coming back in, mark cleared */
	IB_T_FAILED_OPEN,	/* divert: stalled daemon or tun gone, passed (failure=open) */
	IB_T_REINJECTED,	/* reinject_in: to the uplink's ingress */
	IB_T_DROPPED,		/* either: failure=closed, or a rewrite that failed */
	IB_T_MAX,
};

#endif
