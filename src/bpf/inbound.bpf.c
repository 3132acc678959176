// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Inbound diversion (DESIGN.md section 7): two tc programs per listed
 * interface.
 *
 * divert, on the interface's ingress: IPv4 and IPv6 packets for this host
 * (PACKET_HOST; never ARP, ICMPv6 133-137, multicast or broadcast) are
 * ipmodd's.  With the inbound fast path on, divert tail-calls it (ib_fast:
 * fastpath.bpf.c's fastpath_uplink), which runs the chain right here on the
 * uplink's ingress: a packet the kernel finishes is rewritten and delivered
 * (or dropped) on the spot, one program and no backlog trip; only a packet
 * it punts goes on to the inbound tun.  Without it (fastpath = "off", the
 * kernel refused it) every such packet goes to the inbound tun, whose reader
 * is ipmodd (bpf_redirect to the tun's egress strips the link-layer header).
 * A packet with INBOUND_MARK was put back by reinject_in: the mark is
 * cleared and the packet goes on into the stack, never through the chain
 * again (before the tail call).  While the daemon's heartbeat is older than
 * stall_ns, or the tun is gone (a tc filter that outlived a killed daemon:
 * bpf_check_mtu finds no device), packets pass (failure=open) or are
 * dropped (closed), also before the tail call.
 *
 * reinject_in, on the inbound tun's ingress (what ipmodd writes): pushes an
 * Ethernet header addressed to the uplink's own MAC (PACKET_HOST), sets the
 * mark and redirects to the uplink's ingress, where the packet arrives as if
 * from the wire: sockets bound to the uplink, iifname and ip rule iif see it.
 */
#include <stdbool.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "inbound.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define PACKET_HOST 0
#define IPPROTO_ICMPV6 58

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
volatile const __u32 tun_ifindex;
volatile const __u32 uplink_ifindex;
volatile const __u8 uplink_mac[6];
volatile const __u64 stall_ns;		/* 0: no stall check */
volatile const __u8 fail_closed;

/* The daemon's heartbeat, bpf_ktime_get_ns() timebase (CLOCK_MONOTONIC), written through mmap. */
volatile __u64 heartbeat_ns;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IB_T_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ib_totals SEC(".maps");

/* The inbound fast path (fastpath.bpf.c's fastpath_uplink), put here by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ib_fast SEC(".maps");

static __always_inline void total(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&ib_totals, &which);

	if (v)
		*v += 1;
}

static __always_inline int pass(__u32 which)
{
	total(which);
	return TC_ACT_OK;
}

/* The daemon cannot take the packet: failure decides. */
static __always_inline int failed(void)
{
	if (fail_closed)
		return pass(IB_T_DROPPED), TC_ACT_SHOT;
	return pass(IB_T_FAILED_OPEN);
}

/* At the tc ingress of an Ethernet interface the packet starts with its Ethernet header. */
SEC("tc")
int divert(struct __sk_buff *skb)
{
	__u32 mtu = 0;
	__u8 h[41];

	if (skb->mark == INBOUND_MARK) {
		skb->mark = 0;
		return pass(IB_T_RETURNED);
	}
	if (skb->pkt_type != PACKET_HOST)
		return pass(IB_T_PASSED);
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, h, 20) < 0 || (h[0] >> 4) != 4)
			return pass(IB_T_PASSED);
		if ((h[16] & 0xf0) == 0xe0 || *(__u32 *)&h[16] == 0xffffffff)
			return pass(IB_T_PASSED);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, h, 40) < 0 || (h[0] >> 4) != 6 || h[24] == 0xff)
			return pass(IB_T_PASSED);
		/* Neighbour discovery and router messages: 133..137. */
		if (h[6] == IPPROTO_ICMPV6 &&
		    (bpf_skb_load_bytes(skb, ETH_HLEN + 40, &h[40], 1) < 0 ||
		     (h[40] >= 133 && h[40] <= 137)))
			return pass(IB_T_PASSED);
	} else {
		return pass(IB_T_PASSED);
	}
	if (stall_ns && bpf_ktime_get_ns() - heartbeat_ns > stall_ns)
		return failed();
	/* Negative: no such device, the tun went with a killed daemon. */
	if (bpf_check_mtu(skb, tun_ifindex, &mtu, 0, 0) < 0)
		return failed();
	total(IB_T_DIVERTED);
	/*
	 * The inbound fast path, when the daemon put it in ib_fast: it runs
	 * the chain here and delivers what it finishes; what it punts it
	 * sends to the tun named in cb.  No entry (fast path off, refused,
	 * or flushed with the daemon's last reference to the map): the tail
	 * call does not happen and the packet goes to the tun.
	 */
	skb->cb[IB_CB_MAGIC] = IB_CB_MAGIC_VALUE;
	skb->cb[IB_CB_TUN] = tun_ifindex;
	bpf_tail_call(skb, &ib_fast, 0);
	return bpf_redirect(tun_ifindex, 0);
}

SEC("tc")
int reinject_in(struct __sk_buff *skb)
{
	__u16 proto = skb->protocol;

	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		goto drop;
	if (bpf_skb_change_head(skb, ETH_HLEN, 0) < 0)
		goto drop;
	/*
	 * The MAC straight from .rodata, not through a header on the stack:
	 * there its bytes, constants once the loader has set them, are narrow
	 * spills of known scalars, and the next byte stored into the same
	 * 8-byte slot is refused by 6.1's verifier without CAP_PERFMON
	 * ("attempt to corrupt spilled pointer on stack").
	 */
	if (bpf_skb_store_bytes(skb, 0, (const void *)uplink_mac, 6, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 6, (const void *)uplink_mac, 6, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 12, &proto, 2, 0) < 0)
		goto drop;
	skb->mark = INBOUND_MARK;
	total(IB_T_REINJECTED);
	return bpf_redirect(uplink_ifindex, BPF_F_INGRESS);
drop:
	total(IB_T_DROPPED);
	return TC_ACT_SHOT;
}
