// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Re-injection: a tc program on the tun's ingress.  A packet ipmodd writes
 * back (or the fast path redirects) would be forwarded by the kernel from
 * the tun to the uplink, and so meet the forward chain of every firewall and
 * need IPv6 forwarding, which before 6.17 only exists for all interfaces at
 * once.  The host's own packets skip that: this program looks the route up
 * as the forward would (ifindex = the tun, so "iif TUN lookup main" applies),
 * takes the hop off as the forward would, and hands the packet to the
 * uplink's neighbour output (DESIGN.md section 6).
 *
 * The fast path's packets come here without the trip through the tun's
 * ingress: reinject_egress, the same decisions run from the tun's egress
 * (reinject_run() below).
 *
 * Everything else goes on to the kernel's forwarding untouched (TC_ACT_OK):
 * packets of other hosts (the host as a router: the forward chain must see
 * them), a TTL that runs out (Time Exceeded), a packet too big for the
 * route (frag needed, packet too big), a route back into the tun, anything
 * the lookup refuses, IPv4 options and IPv6 hop-by-hop options (checked and
 * processed on input), a length that disagrees with the packet's.
 *
 * Only __sk_buff and packet data are read, and no bpf_loop: the program
 * needs neither kernel BTF nor more than 5.10.
 *
 * The lookups' structures live in a per-CPU scratch map, not on the stack:
 * without CAP_PERFMON (the unit grants CAP_BPF), 6.1's verifier refuses a
 * narrow stack store into an 8-byte slot whose first byte holds a narrower
 * spill of a known scalar ("attempt to corrupt spilled pointer on stack"),
 * and fib.family = AF_INET then fib.l4_protocol = ... compiles to exactly
 * that (as do nh_family then ipv4_nh, and a slot the compiler reuses).  Map
 * values have no such tracking; the 6.18 verifier accepts either.  A tc
 * program runs with bottom halves off, so no other tc program of the same
 * CPU runs in between: the scratch is this packet's alone.
 */
#include <stdbool.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "reinject.h"

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RI_T_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ri_totals SEC(".maps");

/*
 * The reverse lookup's last answer for one family (local_source()): the
 * source address, the tun, and the jiffy it was looked up in.
 */
struct ri_memo {
	__u64 jiffies;
	__u32 addr[4];
	__u32 ifindex;
	__u32 local;
};

struct ri_scratch {
	struct bpf_fib_lookup fib;	/* the forward's lookup */
	struct bpf_fib_lookup rev;	/* the source's, local_source() */
	struct bpf_redir_neigh nh;
	/* Not scratch: kept from packet to packet of this CPU. */
	struct ri_memo memo4, memo6;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ri_scratch);
} ri_scratch SEC(".maps");

/*
 * A forward lookup's answer (route()): the lookup's inputs as the program
 * filled them (tot_len left out), and the helper's answer.
 */
#define RI_KEY_WORDS 12		/* family .. ipv6_dst: 48 bytes */
struct ri_route {
	__u64 jiffies;
	__u32 valid;
	__u32 route_mtu;	/* looked up with tot_len: the route's MTU, not only the device's */
	__u32 key[RI_KEY_WORDS];
	struct bpf_fib_lookup out;
};
_Static_assert(__builtin_offsetof(struct bpf_fib_lookup, ipv6_dst) + 16 == RI_KEY_WORDS * 4,
	       "the lookup's inputs end with ipv6_dst");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RI_ROUTES);
	__type(key, __u32);
	__type(value, struct ri_route);
} ri_routes SEC(".maps");

static __always_inline void total(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&ri_totals, &which);

	if (v)
		*v += 1;
}

/*
 * To the kernel's forwarding.  Behind a netlink tc filter the kernel sets
 * tc_index from the classid on TC_ACT_OK; the classid carries the packet's
 * own, so the fast path's loop mark (fastpath.bpf.c) survives.
 *
 * From the tun's egress (reinject_egress, egress set): on to the tun's
 * ingress, as the fast path redirected every packet before, where reinject
 * sees it again, decides the same and counts it.  Nothing is counted here,
 * so that every packet is counted once.
 */
static __always_inline int pass(struct __sk_buff *skb, __u32 which, bool egress)
{
	if (egress)
		return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
	skb->tc_classid = skb->tc_index;
	total(which);
	return TC_ACT_OK;
}

/* The ports, for the lookup of a first fragment or whole packet. */
static __always_inline void ports(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __u32 off)
{
	__be16 p[2];

	if (fib->l4_protocol != IPPROTO_TCP && fib->l4_protocol != IPPROTO_UDP)
		return;
	if (bpf_skb_load_bytes(skb, off, p, sizeof(p)) < 0)
		return;
	fib->sport = p[0];
	fib->dport = p[1];
}

/*
 * Whether src is one of the host's own addresses: the reverse lookup from
 * the tun finds a local route, which the helper reports as "not forwarded";
 * a routable foreign source succeeds.  An address without any route (no
 * default route, no "iif" rule match) also ends up not forwarded: it cannot
 * be another host's, whose replies would have no way back.
 *
 * The answer depends on the source address, the tun and the routing alone,
 * and a host's own packets come from one or two addresses per family: the
 * last answer of each family is kept per CPU and used again within the same
 * jiffy (1-10 ms), so a flood pays one lookup per jiffy and CPU, not one per
 * packet.  Only a change of the host's addresses or routes in that jiffy can
 * make the kept answer differ from a fresh one: a race the packets in flight
 * have anyway.  The socket a packet may carry (skb->sk, on the egress) is no
 * such signal: a socket with IP_TRANSPARENT, IP_FREEBIND or
 * ip_nonlocal_bind, a raw socket with IP_HDRINCL and a packet socket send
 * from addresses that are not the host's, which the lookup sends on to the
 * kernel's forwarding.
 */
static __always_inline int local_source(struct __sk_buff *skb, const struct bpf_fib_lookup *fwd,
					struct ri_scratch *sc, __u64 now)
{
	struct bpf_fib_lookup *rev = &sc->rev;
	struct ri_memo *m;
	long r;

	if (fwd->family == AF_INET) {
		m = &sc->memo4;
		if (m->jiffies == now && m->ifindex == skb->ifindex && m->addr[0] == fwd->ipv4_src)
			goto known;
	} else {
		m = &sc->memo6;
		if (m->jiffies == now && m->ifindex == skb->ifindex &&
		    m->addr[0] == fwd->ipv6_src[0] && m->addr[1] == fwd->ipv6_src[1] &&
		    m->addr[2] == fwd->ipv6_src[2] && m->addr[3] == fwd->ipv6_src[3])
			goto known;
	}
	__builtin_memset(rev, 0, sizeof(*rev));
	rev->family = fwd->family;
	rev->ifindex = skb->ifindex;
	if (fwd->family == AF_INET) {
		rev->ipv4_dst = fwd->ipv4_src;
		m->addr[0] = fwd->ipv4_src;
	} else {
		__builtin_memcpy(rev->ipv6_dst, fwd->ipv6_src, sizeof(rev->ipv6_dst));
		__builtin_memcpy(m->addr, fwd->ipv6_src, sizeof(m->addr));
	}
	r = bpf_fib_lookup(skb, rev, sizeof(*rev), 0);
	m->local = r == BPF_FIB_LKUP_RET_NOT_FWDED;
	m->ifindex = skb->ifindex;
	m->jiffies = now;
	return m->local;
known:
	total(RI_T_SOURCE_KNOWN);
	return m->local;
}

/*
 * The forward lookup, fib filled with the packet's inputs.  Its answer
 * depends on those inputs and the routing alone, and a flow repeats them
 * packet after packet: the last successful answers are kept per CPU in
 * ri_routes (RI_ROUTES entries, chosen by a hash of the addresses and ports)
 * with the jiffy they were looked up in, and a packet with the same inputs
 * in the same jiffy takes the kept answer instead of the helper's lookup,
 * as local_source() does for the source.  Only a change of routes, rules or
 * the uplink's state inside that jiffy (1-10 ms) can make it differ from a
 * fresh answer, as for packets already in flight.  The MTU stays checked:
 * a packet with tot_len (not GSO) takes an answer only if it was looked up
 * with tot_len (the route's MTU, not only the device's) and fits it.
 */
static __always_inline long route(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __u64 now)
{
	__u32 *k = (__u32 *)fib, h, idx;
	__u16 len = fib->tot_len;
	struct ri_route *m;
	bool same = true;
	long r;

	fib->tot_len = 0;
	/* Ports, and each address's first and last word (an IPv4 address is the first). */
	h = k[0] ^ k[1] ^ k[4] ^ k[7] ^ k[8] ^ k[11];
	h ^= h >> 16;
	h ^= h >> 8;
	idx = h & (RI_ROUTES - 1);
	m = bpf_map_lookup_elem(&ri_routes, &idx);
	if (!m) {
		fib->tot_len = len;
		return bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	}
#pragma unroll
	for (int i = 0; i < RI_KEY_WORDS; i++)
		if (m->key[i] != k[i])
			same = false;
	if (same && m->valid && m->jiffies == now &&
	    (!len || (m->route_mtu && len <= m->out.mtu_result))) {
		__builtin_memcpy(fib, &m->out, sizeof(*fib));
		total(RI_T_ROUTE_KNOWN);
		return BPF_FIB_LKUP_RET_SUCCESS;
	}
	__builtin_memcpy(m->key, k, sizeof(m->key));
	fib->tot_len = len;
	r = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	m->valid = r == BPF_FIB_LKUP_RET_SUCCESS;
	if (m->valid) {
		__builtin_memcpy(&m->out, fib, sizeof(m->out));
		m->route_mtu = len != 0;
		m->jiffies = now;
	}
	return r;
}

/*
 * egress: run from the fast path's program on the tun's egress (a tail
 * call, fastpath.bpf.c) for a packet it rewrote, instead of its redirect to
 * the tun's ingress: the packet skips the backlog and a second tc pass.
 * There skb->ifindex is the tun too, the packet starts at its IP header as
 * on the ingress, and the lookups do not depend on the direction: the same
 * decisions, the same helpers.
 */
static __always_inline int reinject_run(struct __sk_buff *skb, bool egress)
{
	struct bpf_fib_lookup *fib;
	struct bpf_redir_neigh *nh;
	struct ri_scratch *sc;
	__u32 tun = skb->ifindex, mtu = 0, zero = 0;
	__u8 h[40], ttl;
	__u64 now;
	bool v4;
	long r;

	sc = bpf_map_lookup_elem(&ri_scratch, &zero);
	if (!sc)
		return pass(skb, RI_T_OTHER, egress);
	fib = &sc->fib;
	nh = &sc->nh;
	__builtin_memset(fib, 0, sizeof(*fib));
	__builtin_memset(nh, 0, sizeof(*nh));
	v4 = skb->protocol == bpf_htons(ETH_P_IP);
	if (v4) {
		/*
		 * Options are the kernel's: it checks them on input (and drops
		 * what it refuses) and updates record-route and timestamps
		 * when forwarding.  A length that disagrees with the packet's
		 * too: input trims or drops it.
		 */
		if (bpf_skb_load_bytes(skb, 0, h, 20) < 0 || h[0] != 0x45 ||
		    (!skb->gso_size && ((__u32)h[2] << 8 | h[3]) != skb->len))
			return pass(skb, RI_T_OTHER, egress);
		fib->family = AF_INET;
		fib->tos = h[1];
		fib->l4_protocol = h[9];
		fib->ipv4_src = *(__be32 *)&h[12];
		fib->ipv4_dst = *(__be32 *)&h[16];
		/* Multicast, broadcast and the like are never forwarded as such. */
		if ((h[16] & 0xf0) == 0xe0 || fib->ipv4_dst == 0xffffffff)
			return pass(skb, RI_T_OTHER, egress);
		/* Not a later fragment: offset 0. */
		if (!((h[6] & 0x1f) | h[7]))
			ports(skb, fib, 20);
		ttl = h[8];
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		/* Hop-by-hop options are the kernel's to process, as is a length to trim. */
		if (bpf_skb_load_bytes(skb, 0, h, 40) < 0 || (h[0] >> 4) != 6 || h[6] == 0 ||
		    (!skb->gso_size && ((__u32)h[4] << 8 | h[5]) + 40 != skb->len))
			return pass(skb, RI_T_OTHER, egress);
		fib->family = AF_INET6;
		fib->flowinfo = *(__be32 *)&h[0] & bpf_htonl(0x0fffffff);
		fib->l4_protocol = h[6];
		__builtin_memcpy(fib->ipv6_src, &h[8], 16);
		__builtin_memcpy(fib->ipv6_dst, &h[24], 16);
		/*
		 * Multicast, and link-local on either side, which the forward
		 * refuses (beyond scope) and a lookup could send out of any link.
		 */
		if (h[24] == 0xff || (h[8] == 0xfe && (h[9] & 0xc0) == 0x80) ||
		    (h[24] == 0xfe && (h[25] & 0xc0) == 0x80))
			return pass(skb, RI_T_OTHER, egress);
		ports(skb, fib, 40);
		ttl = h[7];
	} else {
		return pass(skb, RI_T_OTHER, egress);
	}

	now = bpf_jiffies64();
	if (!local_source(skb, fib, sc, now))
		return pass(skb, RI_T_FORWARDED, egress);
	/* The kernel answers Time Exceeded. */
	if (ttl <= 1)
		return pass(skb, RI_T_OTHER, egress);

	/* A non-GSO packet is checked against the route's MTU; a GSO one below, per segment. */
	if (!skb->gso_size)
		fib->tot_len = (__u16)skb->len;
	fib->ifindex = tun;
	r = route(skb, fib, now);
	if (r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH)
		return pass(skb, RI_T_OTHER, egress);
	/*
	 * From the egress the packet still carries its route, the one into the
	 * tun (the ingress trip drops it).  A packet the neighbour layer queues
	 * while it resolves the address is sent by that route's neighbour once
	 * resolved: into the tun, on the uplink's device, and lost.  So an
	 * unresolved neighbour is the ingress's (seen on 6.18: the first ping
	 * to a new neighbour).
	 */
	if (egress && r == BPF_FIB_LKUP_RET_NO_NEIGH)
		return pass(skb, RI_T_OTHER, egress);
	if (fib->ifindex == tun)
		return pass(skb, RI_T_OTHER, egress);
	if (skb->gso_size &&
	    bpf_check_mtu(skb, fib->ifindex, &mtu, 0, BPF_MTU_CHK_SEGS) != BPF_MTU_CHK_RET_SUCCESS)
		return pass(skb, RI_T_OTHER, egress);

	/* No link-layer header on a tun: without room for one the redirect loses the packet. */
	if (bpf_skb_change_head(skb, ETH_HLEN, 0) < 0)
		return pass(skb, RI_T_OTHER, egress);
	/* The hop the forward would have taken off: the wire sees the same TTL on either path. */
	ttl--;
	if (v4) {
		__u16 old = bpf_htons((__u16)((ttl + 1) << 8 | h[9]));
		__u16 new = bpf_htons((__u16)(ttl << 8 | h[9]));

		if (bpf_skb_store_bytes(skb, ETH_HLEN + 8, &ttl, 1, 0) < 0 ||
		    bpf_l3_csum_replace(skb, ETH_HLEN + 10, old, new, 2) < 0)
			goto drop;
	} else if (bpf_skb_store_bytes(skb, ETH_HLEN + 7, &ttl, 1, 0) < 0) {
		goto drop;
	}

	/* The lookup's nexthop: the helper's own lookup would find table T's route into the tun. */
	nh->nh_family = fib->family;
	if (fib->family == AF_INET)
		nh->ipv4_nh = fib->ipv4_dst;
	else
		__builtin_memcpy(nh->ipv6_nh, fib->ipv6_dst, sizeof(nh->ipv6_nh));
	total(RI_T_REDIRECTED);
	if (egress)
		total(RI_T_DIRECT);
	return bpf_redirect_neigh(fib->ifindex, nh, sizeof(*nh), 0);
drop:
	total(RI_T_DROPPED);
	return TC_ACT_SHOT;
}

SEC("tc")
int reinject(struct __sk_buff *skb)
{
	return reinject_run(skb, false);
}

SEC("tc")
int reinject_egress(struct __sk_buff *skb)
{
	return reinject_run(skb, true);
}
