/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the inbound programs (inbound.bpf.c) and their loader (inbound.c) share. */
#ifndef IPMODD_BPF_INBOUND_H
#define IPMODD_BPF_INBOUND_H

/*
 * skb->mark of a packet reinject_in hands back to the uplink's ingress
 * ("ipmi"): divert recognises it, clears it and lets the packet in.
 */
#define INBOUND_MARK 0x69706d69

/*
 * What divert leaves in skb->cb[] for the fast path it tail-calls
 * (fastpath.bpf.c's fastpath_uplink, one program for every uplink): the
 * inbound tun a punted packet goes to, behind a magic value.
 */
#define IB_CB_MAGIC 0
#define IB_CB_TUN 1
#define IB_CB_MAGIC_VALUE 0x69706d66	/* "ipmf" */

/* Keys of ib_totals. */
enum {
	IB_T_DIVERTED,		/* divert: taken for ipmodd (the fast path, or the tun) */
	IB_T_PASSED,		/* divert: not ours to divert (not IP, ND, multicast, another host's) */
	IB_T_RETURNED,		/* divert: a re-injected packet coming back in, mark cleared */
	IB_T_FAILED_OPEN,	/* divert: stalled daemon or tun gone, passed (failure=open) */
	IB_T_REINJECTED,	/* reinject_in: to the uplink's ingress */
	IB_T_DROPPED,		/* either: failure=closed, or a rewrite that failed */
	IB_T_MAX,
};

#endif
