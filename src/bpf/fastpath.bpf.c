// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The fast path: a tc egress program on the tun.  It runs the rules of the
 * chain that a packet can match (the index, fastpath.h and fpindex.h), in
 * rule order, and when it reaches a verdict or the end of the chain it
 * carries it out in the kernel: drop, or rewrite,
 * compensate the hop the forward will cost and redirect the packet to the
 * tun's ingress, where it re-enters exactly like a packet ipmodd writes back.
 *
 * Inbound (fp_dir = FP_DIR_IN, fixed at load) the same body runs as
 * fastpath_uplink, on the uplink's ingress itself: inbound.bpf.c's divert
 * tail-calls it (its ib_fast prog array) for the packets it takes off the
 * uplink, so one program decides, and a packet the kernel finishes is
 * rewritten and delivered right there (TC_ACT_OK): no redirect, no
 * backlog, no re-injection.  Only a punted packet goes on to the inbound
 * tun (bpf_redirect to the tun divert names in skb->cb), to the daemon,
 * whose writes reinject_in hands back to the uplink.  The body takes the
 * link-layer offset as a constant of each program (0 on a tun, ETH_HLEN on
 * the uplink).  Where the kernel refuses fastpath_uplink the loader attaches
 * fastpath to every inbound tun's egress instead, as before: the redirect
 * lands on the inbound tun's ingress, where reinject_in hands the packet to
 * the uplink's ingress as if it had just arrived.  Either way no hop to
 * compensate: the packet is delivered to the host (no TTL change) or
 * forwarded by the kernel, which costs it the hop it would have cost
 * without ipmodd, so the rules' TTL is written as it is (the daemon writes
 * its inbound packets the same way).
 * Anything else goes on to userspace untouched: a packet the parser would
 * count as malformed or a fragment, IP options, IPv6 extension headers, a
 * rule it cannot carry out that the packet may match.  Nothing is changed or
 * counted before the kernel knows it finishes the packet, so a packet left to
 * userspace is counted there, once.
 *
 * Only __sk_buff and packet data are read: no kernel structure layout.
 */
#include <stdbool.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "fastpath.h"
#include "inbound.h"

#define IPPROTO_HOPOPTS 0
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH 51
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60

#define PKT_MAX 65535
#define ETH_HLEN 14

/*
 * tc_index of a packet this program redirected.  One that comes back to the
 * tun's egress (a route into the tun in the main table) would otherwise
 * circle in the kernel for ever at a constant TTL; it goes to userspace,
 * whose loop guard recognizes the packet it wrote when it comes back again.
 * The index survives the redirect and the forward (same namespace) and
 * nothing else on the path uses it.  One value per direction (FP_REDIRECTED
 * + fp_dir): an inbound packet the inbound program sent on and the kernel
 * then forwards into the outbound tun (the router case) is still one the
 * outbound program runs the chain on.
 */
#define FP_REDIRECTED 0xf1a5

/* Set by the loader before the load: FP_DIR_OUT or FP_DIR_IN. */
const volatile __u32 fp_dir = FP_DIR_OUT;

char LICENSE[] SEC("license") = "GPL";

/* Set by the daemon: 0 while a trace or capture needs to see every packet. */
__u32 fp_enabled;
/* The set of the rules and index maps in use, 0 or 1. */
__u32 fp_set;
/* FP_HAS_* of each set. */
__u32 fp_has[2];
/* Bumped by every update: the daemon's flow decisions of an older chain do not count. */
__u32 fp_flow_gen;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FASTPATH_ENTRIES);
	__type(key, __u32);
	__type(value, struct fp_rule);
} fp_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * FASTPATH_ORDER_MAX);
	__type(key, __u32);
	__type(value, __u32);
} fp_order SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * FP_GENERIC_LISTS);
	__type(key, __u32);
	__type(value, struct fp_list);
} fp_generic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * FASTPATH_RULES_MAX);
	__type(key, struct fp_port_key);
	__type(value, struct fp_list);
} fp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * FASTPATH_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_key);
	__type(value, struct fp_list);
} fp_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * FASTPATH_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_key);
	__type(value, struct fp_list);
} fp_src SEC(".maps");

/*
 * Not used by the program: an update of a map of maps returns only after an
 * RCU grace period (the kernel waits for the BPF programs running then), so
 * the daemon writes fp_grace to know that no packet still walks the set it
 * switched away from (fastpath.c, grace_period()).
 */
struct fp_grace_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fp_grace_inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct fp_grace_inner);
} fp_grace SEC(".maps") = {
	.values = { [0] = &fp_grace_inner },
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FASTPATH_SLOTS);
	__type(key, __u32);
	__type(value, struct fp_counter);
} fp_counters SEC(".maps");

/* The kernel's flow table (fastpath.h): packets per side, for FP_FC_POS entries. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FASTPATH_FLOWS_MAX);
	__type(key, struct fp_flow_key);
	__type(value, struct fp_flow);
} fp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FP_T_MAX);
	__type(key, __u32);
	__type(value, __u64);
} fp_totals SEC(".maps");

/*
 * The outbound program's next step for a packet it rewrote: reinject.bpf.c's
 * reinject_egress, put here by the daemon once both are loaded (fastpath.c,
 * fastpath_set_next()).  It sends the host's own packets out of the uplink
 * from here, without the trip through the backlog to the tun's ingress and
 * reinject there; the rest it redirects to the ingress itself.  Empty (no
 * re-injection program, or the kernel refused it): the redirect below.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fp_next SEC(".maps");

/* The headers' fields, as the rules see them. */
struct fp_pkt {
	__u32 saddr[4], daddr[4];
	__u32 segs;		/* GSO segments, at least 1 */
	__u8 gso;		/* more than one segment's payload: userspace would split or not */
	__u32 hdrlen;		/* IP and L4 headers: repeated in every segment */
	__u16 iplen;
	__u16 sport, dport;
	__u8 family, proto;
	__u8 l4;		/* the L4 header is complete (ports, ICMP type...) */
	__u8 icmp_type, icmp_code, tcp_flags;
	__u8 ttl, tclass;
};

enum {
	WALK_ON,
	WALK_ACCEPT,
	WALK_DROP,
	WALK_PUNT,
};

/*
 * The lists a packet's candidates come from (fpindex.h), merged by rule
 * index: generic of any proto, generic of its proto, dport, sport, dst, src.
 */
enum {
	CUR_GEN_ANY,
	CUR_GEN_PROTO,
	CUR_DPORT,
	CUR_SPORT,
	CUR_DST,
	CUR_SRC,
	CUR_USED,
	CUR_SIZE = 8,		/* a power of 2, for the verifier's bound */
};
#define CUR_END 0xffffffffu

/*
 * The state of a walk, per CPU: a map value rather than the stack, so that
 * the matched rules and the cursors can be indexed without CAP_PERFMON.
 */
struct fp_walk {
	struct fp_pkt p;
	__u32 base;		/* first rule of the set in use */
	__u32 obase;		/* first entry of fp_order of the set in use */
	__u32 result;
	__u32 n;		/* matched rules */
	__u32 matched[FASTPATH_MATCHED_MAX];	/* their counter slots */
	__u32 pos[CUR_SIZE], end[CUR_SIZE];	/* in fp_order, from obase */
	__u32 head[CUR_SIZE];			/* the rule at pos, or CUR_END */
	__u32 todo;				/* candidates in all lists */
	__u64 fpos;		/* position of the first segment in its flow direction; 0: unknown */
	__u32 flow_passed;	/* went past an FP_FC_POS entry beyond its positions */
	__u32 flow_punt;	/* handed up by an FP_FC_POS entry within its positions */
	__u32 fflags;		/* the flow's FP_FLOW_* of this generation */
	struct fp_flow_key fk;
	struct fp_lpm_key lk;
	struct fp_port_key pk;
	__u8 ttl, tclass;	/* as the rules so far left them */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fp_walk);
} fp_scratch SEC(".maps");

struct walk_ctx {
	struct fp_walk *w;
};

static __always_inline int in_range(__u32 v, __u32 lo, __u32 hi)
{
	return v - lo <= hi - lo;
}

static __always_inline int prefix_match(const __u32 *addr, const __u32 *pf, const __u32 *mask)
{
	return (((addr[0] ^ pf[0]) & mask[0]) | ((addr[1] ^ pf[1]) & mask[1]) |
		((addr[2] ^ pf[2]) & mask[2]) | ((addr[3] ^ pf[3]) & mask[3])) == 0;
}

/*
 * chain.c's rule_match(), on the walk's TTL and traffic class, without the
 * matches in skip.
 */
static __always_inline int rule_match(const struct fp_rule *r, const struct fp_walk *w, __u32 skip)
{
	const struct fp_pkt *p = &w->p;
	__u32 f = r->flags & ~skip;

	if (r->family && r->family != p->family)
		return 0;
	if ((f & FP_M_PROTO) && r->proto != p->proto)
		return 0;
	if (f & FP_M_L4) {
		if (!p->l4)
			return 0;
		if ((f & FP_M_SPORT) &&
		    in_range(p->sport, r->sport_lo, r->sport_hi) == !!(f & FP_M_SPORT_NOT))
			return 0;
		if ((f & FP_M_DPORT) &&
		    in_range(p->dport, r->dport_lo, r->dport_hi) == !!(f & FP_M_DPORT_NOT))
			return 0;
		if (f & (FP_M_ICMP4_TYPE | FP_M_ICMP6_TYPE)) {
			if (p->proto == IPPROTO_ICMP) {
				if (!(f & FP_M_ICMP4_TYPE) || p->icmp_type != r->icmp_type4)
					return 0;
			} else if (p->proto == IPPROTO_ICMPV6) {
				if (!(f & FP_M_ICMP6_TYPE) || p->icmp_type != r->icmp_type6)
					return 0;
			} else {
				return 0;
			}
		}
		if ((f & FP_M_ICMP_CODE) &&
		    ((p->proto != IPPROTO_ICMP && p->proto != IPPROTO_ICMPV6) ||
		     p->icmp_code != r->icmp_code))
			return 0;
		if ((f & FP_M_TCP_FLAGS) && (p->tcp_flags & r->tcp_mask) != r->tcp_set)
			return 0;
	}
	if ((f & FP_M_SRC) &&
	    prefix_match(p->saddr, r->src, r->src_mask) == !!(f & FP_M_SRC_NOT))
		return 0;
	if ((f & FP_M_DST) &&
	    prefix_match(p->daddr, r->dst, r->dst_mask) == !!(f & FP_M_DST_NOT))
		return 0;
	if ((f & FP_M_TTL) && !in_range(w->ttl, r->ttl_lo, r->ttl_hi))
		return 0;
	if ((f & FP_M_LENGTH) && !in_range(p->iplen, r->len_lo, r->len_hi))
		return 0;
	if ((f & FP_M_DSCP) && (w->tclass >> 2) != r->dscp)
		return 0;
	return 1;
}

/* chain.c's rule_apply(), on the walk's copy. */
static __always_inline void rule_apply(const struct fp_rule *r, struct fp_walk *w)
{
	__u32 ttl = w->ttl, t = r->ttl;

	switch (r->ttl_op) {
	case FP_TTL_SET:
		w->ttl = (__u8)t;
		break;
	case FP_TTL_INC:
		w->ttl = (__u8)(ttl + t > 255 ? 255 : ttl + t);
		break;
	case FP_TTL_DEC:
		w->ttl = (__u8)(ttl > t ? ttl - t : 1);
		break;
	}
	if (r->set_dscp)
		w->tclass = (__u8)((r->dscp_val & 0x3f) << 2 | (w->tclass & 0x03));
	if (r->set_ecn)
		w->tclass = (__u8)((w->tclass & 0xfc) | (r->ecn_val & 0x03));
}

/* The rule at cursor k's position, or CUR_END past its list; -1: the index is broken. */
static __always_inline int load_head(struct fp_walk *w, __u32 k)
{
	__u32 key, *v;

	k &= CUR_SIZE - 1;
	if (w->pos[k] >= w->end[k]) {
		w->head[k] = CUR_END;
		return 0;
	}
	key = w->obase + w->pos[k];
	v = bpf_map_lookup_elem(&fp_order, &key);
	if (!v)
		return -1;
	w->head[k] = *v;
	return 0;
}

static __always_inline int advance(struct fp_walk *w, __u32 k)
{
	w->pos[k & (CUR_SIZE - 1)]++;
	return load_head(w, k);
}

/* Cursor k on list l (none: empty); -1 when the list is too long to hold. */
static __always_inline int cursor(struct fp_walk *w, __u32 k, const struct fp_list *l)
{
	k &= CUR_SIZE - 1;
	w->pos[k] = 0;
	w->end[k] = 0;
	if (l && l->count) {
		if (l->count == FP_LIST_PUNT || l->count > FASTPATH_ORDER_MAX)
			return -1;
		w->pos[k] = l->start;
		w->end[k] = l->start + l->count;
		w->todo += l->count;
	}
	return load_head(w, k);
}

/* The LPM lookup of the packet's src or dst address. */
static __always_inline const struct fp_list *lookup_prefix(struct fp_walk *w, void *map,
							   const __u32 *addr)
{
	struct fp_lpm_key *lk = &w->lk;

	lk->family = w->p.family;
	lk->prefixlen = FP_LPM_HEAD_BITS + (w->p.family == FP_AF_INET ? 32 : 128);
	__builtin_memcpy(lk->addr, addr, 16);
	return bpf_map_lookup_elem(map, lk);
}

/* The cursors of the packet's lists; 0 when a list is too long and the packet goes to userspace. */
static __always_inline int gather(struct fp_walk *w, __u32 set)
{
	__u32 has = fp_has[set & 1], v6 = w->p.family == FP_AF_INET6, key;
	const struct fp_list *l;

	w->todo = 0;
	key = set * FP_GENERIC_LISTS + v6 * 257 + 256;
	if (cursor(w, CUR_GEN_ANY, bpf_map_lookup_elem(&fp_generic, &key)) < 0)
		return 0;
	key = set * FP_GENERIC_LISTS + v6 * 257 + w->p.proto;
	if (cursor(w, CUR_GEN_PROTO, bpf_map_lookup_elem(&fp_generic, &key)) < 0)
		return 0;
	__builtin_memset(&w->pk, 0, sizeof(w->pk));
	w->pk.set = (__u8)set;
	w->pk.proto = w->p.proto;
	l = NULL;
	if ((has & FP_HAS_DPORT) && w->p.l4) {
		w->pk.port = w->p.dport;
		l = bpf_map_lookup_elem(&fp_ports, &w->pk);
	}
	if (cursor(w, CUR_DPORT, l) < 0)
		return 0;
	l = NULL;
	if ((has & FP_HAS_SPORT) && w->p.l4) {
		w->pk.sport = 1;
		w->pk.port = w->p.sport;
		l = bpf_map_lookup_elem(&fp_ports, &w->pk);
	}
	if (cursor(w, CUR_SPORT, l) < 0)
		return 0;
	__builtin_memset(&w->lk, 0, sizeof(w->lk));
	w->lk.set = (__u8)set;
	l = NULL;
	if (has & (v6 ? FP_HAS_DST6 : FP_HAS_DST4))
		l = lookup_prefix(w, &fp_dst, w->p.daddr);
	if (cursor(w, CUR_DST, l) < 0)
		return 0;
	l = NULL;
	if (has & (v6 ? FP_HAS_SRC6 : FP_HAS_SRC4))
		l = lookup_prefix(w, &fp_src, w->p.saddr);
	if (cursor(w, CUR_SRC, l) < 0)
		return 0;
	return 1;
}

/*
 * One candidate: the lowest rule index at the lists' heads (each list is
 * in rule order and a rule is in one list only), run as the daemon would.
 * Rules in no list cannot match the packet.  All lists done: the end of
 * the chain, accept.
 */
static long merge_step(__u32 i, void *ctx)
{
	struct fp_walk *w = ((struct walk_ctx *)ctx)->w;
	const struct fp_rule *r;
	__u32 best = w->head[0], key, n, vary;
	int err;

	if (w->head[1] < best)
		best = w->head[1];
	if (w->head[2] < best)
		best = w->head[2];
	if (w->head[3] < best)
		best = w->head[3];
	if (w->head[4] < best)
		best = w->head[4];
	if (w->head[5] < best)
		best = w->head[5];
	if (best == CUR_END) {
		w->result = WALK_ACCEPT;
		return 1;
	}
	/*
	 * Advance the cursor it came from, by a constant index each: without
	 * CAP_PERFMON the verifier refuses an index that differs by path.
	 */
	if (w->head[0] == best)
		err = advance(w, 0);
	else if (w->head[1] == best)
		err = advance(w, 1);
	else if (w->head[2] == best)
		err = advance(w, 2);
	else if (w->head[3] == best)
		err = advance(w, 3);
	else if (w->head[4] == best)
		err = advance(w, 4);
	else
		err = advance(w, 5);
	if (err < 0 || best >= FASTPATH_RULES_MAX)
		goto punt;
	key = w->base + best;
	r = bpf_map_lookup_elem(&fp_rules, &key);
	if (!r)
		goto punt;
	/*
	 * A super-packet that may match a rule on a match that differs between
	 * its segments: userspace splits it (chain_gso_whole()), so it goes
	 * there, decided the same way, segment by segment.
	 */
	vary = 0;
	if (w->p.gso) {
		/*
		 * Both read at constant offsets, then chosen: a variable offset
		 * into a map value is pointer arithmetic the verifier refuses
		 * without CAP_PERFMON (the unit grants CAP_BPF alone).
		 */
		__u32 both = *(volatile __u32 *)r->gso_vary;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		vary = w->p.proto == IPPROTO_TCP ? both >> 16 : both & 0xffff;
#else
		vary = w->p.proto == IPPROTO_TCP ? both & 0xffff : both >> 16;
#endif
	}
	if (!rule_match(r, w, vary))
		return 0;
	/*
	 * Past its flow positions the rule cannot match this packet nor any of
	 * its segments; nor a flow whose name the daemon found no name rule
	 * matches.
	 */
	if (r->kind == FP_PUNT && w->fpos &&
	    ((r->flow_cond == FP_FC_POS && w->fpos > r->flow_hi) ||
	     (r->flow_cond == FP_FC_NAME &&
	      (w->fflags & (FP_FLOW_DECIDED | FP_FLOW_NEEDS_DAEMON)) == FP_FLOW_DECIDED))) {
		w->flow_passed = 1;
		return 0;
	}
	if (vary || r->kind != FP_RULE) {
		w->flow_punt = r->kind == FP_PUNT && r->flow_cond != FP_FC_NONE;
		goto punt;
	}
	n = w->n;
	if (n >= FASTPATH_MATCHED_MAX)
		goto punt;
	w->matched[n] = r->slot;
	w->n = n + 1;
	rule_apply(r, w);
	if (r->verdict == FP_VERDICT_ACCEPT) {
		w->result = WALK_ACCEPT;
		return 1;
	}
	if (r->verdict == FP_VERDICT_DROP) {
		w->result = WALK_DROP;
		return 1;
	}
	return 0;
punt:
	w->result = WALK_PUNT;
	return 1;
}

/*
 * pkt_parse()'s checks for what it accepts without a question: 0 when the
 * packet is one the program leaves to userspace.
 */
static __always_inline int parse_l4(struct __sk_buff *skb, struct fp_pkt *p, __u32 off,
				    const __u32 l2)
{
	__u32 avail = skb->len - l2 - off;
	__u8 h[20];

	switch (p->proto) {
	case IPPROTO_TCP:
		if (avail < 20 || bpf_skb_load_bytes(skb, l2 + off, h, 20) < 0)
			return 0;
		if (h[12] >> 4 < 5 || (__u32)(h[12] >> 4) * 4 > avail)
			return 0;
		p->sport = (__u16)(h[0] << 8 | h[1]);
		p->dport = (__u16)(h[2] << 8 | h[3]);
		p->tcp_flags = h[13];
		p->hdrlen = off + (__u32)(h[12] >> 4) * 4;
		p->l4 = 1;
		return 1;
	case IPPROTO_UDP: {
		__u32 ulen;

		if (avail < 8 || bpf_skb_load_bytes(skb, l2 + off, h, 8) < 0)
			return 0;
		ulen = (__u32)(h[4] << 8 | h[5]);
		if (ulen < 8 || ulen > avail)
			return 0;
		p->sport = (__u16)(h[0] << 8 | h[1]);
		p->dport = (__u16)(h[2] << 8 | h[3]);
		p->hdrlen = off + 8;
		p->l4 = 1;
		return 1;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		int echo;

		/* ICMP in IPv6 or ICMPv6 in IPv4: an unknown L4 protocol. */
		if ((p->proto == IPPROTO_ICMP) != (p->family == FP_AF_INET))
			return 1;
		if (avail < 4 || bpf_skb_load_bytes(skb, l2 + off, h, 4) < 0)
			return 0;
		echo = p->family == FP_AF_INET ? h[0] == 0 || h[0] == 8 : h[0] == 128 || h[0] == 129;
		if (echo && avail < 8)
			return 0;
		p->icmp_type = h[0];
		p->icmp_code = h[1];
		p->l4 = 1;
		return 1;
	}
	}
	return 1;
}

/* l2: the link-layer header in front of the IP header (0 on a tun, ETH_HLEN on the uplink). */
static __always_inline int parse(struct __sk_buff *skb, struct fp_pkt *p, const __u32 l2)
{
	__u8 h[40];
	__u32 len = skb->len - l2;

	if (skb->len < l2 + 1 || len > PKT_MAX || bpf_skb_load_bytes(skb, l2, h, 1) < 0)
		return 0;
	p->segs = skb->gso_segs ? skb->gso_segs : 1;
	if (h[0] >> 4 == 4) {
		if (len < 20 || bpf_skb_load_bytes(skb, l2, h, 20) < 0)
			return 0;
		/* Options, a length that disagrees, a fragment: userspace knows them. */
		if ((h[0] & 0x0f) != 5 || (__u32)(h[2] << 8 | h[3]) != len || (h[6] & 0x3f) || h[7])
			return 0;
		p->family = FP_AF_INET;
		p->tclass = h[1];
		p->ttl = h[8];
		p->proto = h[9];
		p->iplen = (__u16)len;
		__builtin_memcpy(&p->saddr[0], &h[12], 4);
		__builtin_memcpy(&p->daddr[0], &h[16], 4);
		p->hdrlen = 20;
		return parse_l4(skb, p, 20, l2);
	}
	if (h[0] >> 4 != 6 || len < 40 || bpf_skb_load_bytes(skb, l2, h, 40) < 0)
		return 0;
	if (40 + (__u32)(h[4] << 8 | h[5]) != len)
		return 0;
	switch (h[6]) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_AH:
	case IPPROTO_DSTOPTS:
		return 0;
	}
	p->family = FP_AF_INET6;
	p->tclass = (__u8)((h[0] & 0x0f) << 4 | h[1] >> 4);
	p->ttl = h[7];
	p->proto = h[6];
	p->iplen = (__u16)len;
	__builtin_memcpy(p->saddr, &h[8], 16);
	__builtin_memcpy(p->daddr, &h[24], 16);
	p->hdrlen = 40;
	return parse_l4(skb, p, 40, l2);
}

static __always_inline void total(__u32 which, __u32 segs)
{
	__u64 *v = bpf_map_lookup_elem(&fp_totals, &which);

	if (v)
		*v += segs;
}

/*
 * Write the walk's TTL and traffic class into the packet: outbound plus the
 * hop the forward takes, inbound as it is (see the top).  On the uplink
 * (l2) the packet may carry CHECKSUM_COMPLETE from the driver: IPv4 keeps
 * its header's sum (the checksum field compensates), an IPv6 store updates
 * skb->csum (BPF_F_RECOMPUTE_CSUM; nothing where the packet has none).
 */
static __always_inline int rewrite(struct __sk_buff *skb, const struct fp_walk *w, const __u32 l2)
{
	const struct fp_pkt *p = &w->p;
	__u8 ttl = fp_dir == FP_DIR_IN || w->ttl == 255 ? w->ttl : (__u8)(w->ttl + 1), b[2];
	const __u64 csum = l2 ? BPF_F_RECOMPUTE_CSUM : 0;

	if (p->family == FP_AF_INET) {
		if (w->tclass != p->tclass) {
			/* The TOS and the version/IHL byte in front of it form a checksummed word. */
			__u16 old = bpf_htons(0x4500 | p->tclass), new = bpf_htons(0x4500 | w->tclass);

			if (bpf_skb_store_bytes(skb, l2 + 1, &w->tclass, 1, 0) < 0 ||
			    bpf_l3_csum_replace(skb, l2 + 10, old, new, 2) < 0)
				return -1;
		}
		if (ttl != p->ttl) {
			__u16 old = bpf_htons((__u16)(p->ttl << 8 | p->proto));
			__u16 new = bpf_htons((__u16)(ttl << 8 | p->proto));

			if (bpf_skb_store_bytes(skb, l2 + 8, &ttl, 1, 0) < 0 ||
			    bpf_l3_csum_replace(skb, l2 + 10, old, new, 2) < 0)
				return -1;
		}
		return 0;
	}
	if (w->tclass != p->tclass) {
		if (bpf_skb_load_bytes(skb, l2, b, 2) < 0)
			return -1;
		b[0] = (__u8)((b[0] & 0xf0) | w->tclass >> 4);
		b[1] = (__u8)((b[1] & 0x0f) | (w->tclass & 0x0f) << 4);
		if (bpf_skb_store_bytes(skb, l2, b, 2, csum) < 0)
			return -1;
	}
	if (ttl != p->ttl && bpf_skb_store_bytes(skb, l2 + 7, &ttl, 1, csum) < 0)
		return -1;
	return 0;
}

/*
 * Without CAP_PERFMON (the unit grants CAP_BPF) the verifier refuses pointer
 * arithmetic by a scalar that differs by path ("tried to add from different
 * maps, paths or scalars"), which is what clang makes of "side ? &x[1] :
 * &x[0]".  So every field below is read at a constant offset (volatile: not
 * folded into a load through a chosen pointer) and only the values are
 * chosen.
 */
#define RD32(p) (*(volatile const __u32 *)(p))

/* -1, 0, 1 as memcmp() of two addresses in network order (words of 4 bytes). */
static __always_inline int addr_cmp(const __u32 *a, const __u32 *b)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 x = bpf_ntohl(RD32(&a[i])), y = bpf_ntohl(RD32(&b[i]));

		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

/*
 * Count the packet (its segs) in the kernel's flow table, on its side of
 * the canonical key (flow.c's flow_key_from_pkt()), and set w->fpos to its
 * first segment's position, w->fflags to the daemon's decision of this
 * generation.  TCP and UDP only; others keep fpos 0 (unknown: a
 * conditioned entry hands them up as it always did).
 */
static __always_inline void flow_count(struct fp_walk *w)
{
	const struct fp_pkt *p = &w->p;
	struct fp_flow_key *k = &w->fk;
	struct fp_flow *f, nf;
	__u64 now, o0, o1, segs = p->segs;
	__u32 side;
	int c;

	w->fpos = 0;
	w->fflags = 0;
	if (!p->l4 || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return;
	__builtin_memset(k, 0, sizeof(*k));
	k->family = p->family;
	k->proto = p->proto;
	c = addr_cmp(p->saddr, p->daddr);
	side = !(c < 0 || (c == 0 && p->sport <= p->dport));
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 a = RD32(&p->saddr[i]), b = RD32(&p->daddr[i]);
		__u32 lo = side ? b : a, hi = side ? a : b;

		__builtin_memcpy(&k->addr[0][4 * i], &lo, 4);
		__builtin_memcpy(&k->addr[1][4 * i], &hi, 4);
	}
	k->port[0] = side ? p->dport : p->sport;
	k->port[1] = side ? p->sport : p->dport;
	now = bpf_ktime_get_ns();
	f = bpf_map_lookup_elem(&fp_flows, k);
	if (!f) {
		__builtin_memset(&nf, 0, sizeof(nf));
		nf.last_ns = now;
		/* Two CPUs may both start it: one count may be lost, never a position skipped. */
		bpf_map_update_elem(&fp_flows, k, &nf, BPF_NOEXIST);
		f = bpf_map_lookup_elem(&fp_flows, k);
		if (!f)
			return;
	}
	/*
	 * A new connection on the same ports, or one idle long enough that the
	 * daemon may have let it go.  An idle TCP flow keeps the daemon's name
	 * decision: the daemon looks for a name only after a SYN.
	 */
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & 0x12) == 0x02) {
		f->pkts[0] = 0;
		f->pkts[1] = 0;
		f->flags = 0;
	} else if (now - f->last_ns >= FP_FLOW_IDLE_NS) {
		f->pkts[0] = 0;
		f->pkts[1] = 0;
		if (p->proto != IPPROTO_TCP)
			f->flags = 0;
	}
	f->last_ns = now;
	if (f->gen == *(volatile __u32 *)&fp_flow_gen)
		w->fflags = f->flags;
	/* Both counters at their own offsets, each added to by 0 or segs. */
	o0 = __sync_fetch_and_add(&f->pkts[0], side ? 0 : segs);
	o1 = __sync_fetch_and_add(&f->pkts[1], side ? segs : 0);
	w->fpos = (side ? o1 : o0) + 1;
}

/* What the chain made of a packet: each program carries it out its own way. */
enum {
	RUN_SEND,	/* rewritten and counted: on to where it was going */
	RUN_SHOT,	/* dropped by a rule (counted), or a rewrite failed */
	RUN_PUNT,	/* to userspace, untouched and uncounted */
};

/*
 * The chain on one packet whose IP header starts at l2 (a constant of each
 * program): parse, walk, and for a verdict the kernel finishes, rewrite and
 * count.
 */
static __always_inline int fp_run(struct __sk_buff *skb, const __u32 l2)
{
	__u32 zero = 0, segs = skb->gso_segs ? skb->gso_segs : 1;
	struct fp_walk *w = bpf_map_lookup_elem(&fp_scratch, &zero);
	struct walk_ctx ctx = { .w = w };
	__u32 set, flow_punt = 0;
	__u64 bytes;

	if (!w || !*(volatile __u32 *)&fp_enabled)
		goto punt;
	/* Only the tun's program sends packets where it may meet them again. */
	if (!l2 && skb->tc_index == FP_REDIRECTED + fp_dir)
		goto punt;
	__builtin_memset(&w->p, 0, sizeof(w->p));
	if (!parse(skb, &w->p, l2))
		goto punt;
	segs = w->p.segs;
	/* As gso_parse() counts segments: the payload after the headers by gso_size. */
	w->p.gso = skb->gso_size && skb->len - l2 - w->p.hdrlen > skb->gso_size;
	set = *(volatile __u32 *)&fp_set & 1;
	w->base = set * FASTPATH_RULES_MAX;
	w->obase = set * FASTPATH_ORDER_MAX;
	w->result = WALK_PUNT;
	w->n = 0;
	w->ttl = w->p.ttl;
	w->tclass = w->p.tclass;
	w->flow_passed = 0;
	w->flow_punt = 0;
	w->fpos = 0;
	/* Counted before anything is decided: every packet the program sees from here on. */
	if (fp_has[set & 1] & FP_HAS_FLOW)
		flow_count(w);
	if (!gather(w, set))
		goto punt;
	/* Each step takes one candidate; one more sees the lists done. */
	bpf_loop(w->todo + 1, merge_step, &ctx, 0);
	flow_punt = w->flow_punt;
	if (w->result != WALK_ACCEPT && w->result != WALK_DROP)
		goto punt;
	if (w->flow_passed)
		total(FP_T_FLOW_PASSED, segs);

	if (w->result == WALK_ACCEPT && rewrite(skb, w, l2) < 0)
		return RUN_SHOT;
	/* As userspace counts them: each segment with its own headers, no link layer. */
	bytes = skb->len - l2 + (__u64)(segs - 1) * w->p.hdrlen;
	/*
	 * Unrolled: each slot read at a constant offset.  As a loop, clang
	 * steps a pointer one past matched[] before the exit test, and an
	 * index differs per pass; without CAP_PERFMON (the unit grants
	 * CAP_BPF) 6.1's verifier refuses either ("pointer arithmetic of map
	 * value goes out of range", "tried to add from different maps, paths
	 * or scalars").
	 */
#pragma unroll
	for (__u32 k = 0; k < FASTPATH_MATCHED_MAX; k++) {
		struct fp_counter *c;
		__u32 slot;

		if (k >= w->n)
			break;
		slot = w->matched[k];
		c = bpf_map_lookup_elem(&fp_counters, &slot);
		if (c) {
			c->pkts += segs;
			c->bytes += bytes;
		}
	}
	if (w->result == WALK_DROP) {
		total(FP_T_DROPPED, segs);
		return RUN_SHOT;
	}
	total(FP_T_HANDLED, segs);
	return RUN_SEND;
punt:
	total(FP_T_PUNTED, segs);
	if (flow_punt)
		total(FP_T_FLOW_PUNTED, segs);
	return RUN_PUNT;
}

/*
 * On a tun's egress (the outbound tun; an inbound tun where the kernel
 * refused fastpath_uplink): a packet the kernel finishes goes to the tun's
 * ingress, as if ipmodd had written it; any other goes on to the reader.
 */
static __always_inline int fastpath_tun(struct __sk_buff *skb, bool direct)
{
	switch (fp_run(skb, 0)) {
	case RUN_SEND:
		/* Before the tail call too: reinject_egress may still redirect it to the ingress. */
		skb->tc_index = FP_REDIRECTED + fp_dir;
		/* Returns only when the slot is empty. */
		if (direct && fp_dir == FP_DIR_OUT)
			bpf_tail_call(skb, &fp_next, 0);
		return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
	case RUN_SHOT:
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

SEC("tc")
int fastpath(struct __sk_buff *skb)
{
	return fastpath_tun(skb, false);
}

/*
 * fastpath_direct, the outbound program: a packet the kernel finishes goes
 * on through the tail call into fp_next (reinject_egress: the route and the
 * uplink's neighbour, without the trip through the tun's ingress).  A
 * separate program, so that a kernel refusing a tail call from a program with
 * subprograms (the bpf_loop callback; an interpreter, a JIT without support)
 * still loads the plain one (fastpath.c).
 */
SEC("tc")
int fastpath_direct(struct __sk_buff *skb)
{
	return fastpath_tun(skb, true);
}

/*
 * On an uplink's ingress, tail-called by inbound.bpf.c's divert once it has
 * decided the packet is ipmodd's (fp_dir = FP_DIR_IN): a packet the kernel
 * finishes is delivered right there, rewritten, as it arrived (no redirect,
 * no re-injection, no marker: nothing brings it back here); a punted one
 * goes where divert would have sent it, the inbound tun named in skb->cb.
 */
SEC("tc")
int fastpath_uplink(struct __sk_buff *skb)
{
	__u32 tun;

	switch (fp_run(skb, ETH_HLEN)) {
	case RUN_SEND:
		return TC_ACT_OK;
	case RUN_SHOT:
		return TC_ACT_SHOT;
	}
	tun = skb->cb[IB_CB_TUN];
	if (skb->cb[IB_CB_MAGIC] != IB_CB_MAGIC_VALUE || !tun)
		return TC_ACT_OK;
	return bpf_redirect(tun, 0);
}
