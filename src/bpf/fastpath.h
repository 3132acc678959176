/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the tc program (fastpath.bpf.c) and its loader (fastpath.c) share:
 * the layout of the maps.  Plain uapi types, no kernel structures.
 */
#ifndef IPMODD_BPF_FASTPATH_H
#define IPMODD_BPF_FASTPATH_H

#include <linux/types.h>

/* Leading rules of the chain the kernel walks; the rest is left to userspace. */
#define FASTPATH_RULES_MAX 256
/* One set: the rules and the entry that ends them. */
#define FASTPATH_SET_LEN (FASTPATH_RULES_MAX + 1)
/* Two sets: the daemon fills the idle one and then switches (fp_set). */
#define FASTPATH_ENTRIES (2 * FASTPATH_SET_LEN)
/*
 * Counter slots.  A rule keeps its slot while the chain changes around it,
 * so both sets' rules must fit while a change is under way.
 */
#define FASTPATH_SLOTS (2 * FASTPATH_RULES_MAX)
/* Rules that rewrite and continue, matched by one packet; more: userspace. */
#define FASTPATH_MATCHED_MAX 16

#define FP_AF_INET 2
#define FP_AF_INET6 10

enum fp_kind {
	FP_RULE,	/* matches and actions the kernel carries out */
	FP_PUNT,	/* a rule it cannot carry out: a packet its matches may fit goes to userspace */
	FP_END_ACCEPT,	/* the whole chain was above: the default verdict, accept */
	FP_END_PUNT,	/* the chain goes on beyond what the kernel holds */
};

/* The same bits as RULE_M_* (fastpath.c checks), probability= aside. */
enum {
	FP_M_PROTO = 1u << 0,
	FP_M_SRC = 1u << 1,
	FP_M_SRC_NOT = 1u << 2,
	FP_M_DST = 1u << 3,
	FP_M_DST_NOT = 1u << 4,
	FP_M_SPORT = 1u << 5,
	FP_M_SPORT_NOT = 1u << 6,
	FP_M_DPORT = 1u << 7,
	FP_M_DPORT_NOT = 1u << 8,
	FP_M_ICMP4_TYPE = 1u << 9,
	FP_M_ICMP6_TYPE = 1u << 10,
	FP_M_ICMP_CODE = 1u << 11,
	FP_M_TCP_FLAGS = 1u << 12,
	FP_M_TTL = 1u << 13,
	FP_M_LENGTH = 1u << 14,
	FP_M_DSCP = 1u << 15,
};

#define FP_M_L4 (FP_M_SPORT | FP_M_DPORT | FP_M_ICMP4_TYPE | FP_M_ICMP6_TYPE | FP_M_ICMP_CODE | \
		 FP_M_TCP_FLAGS)

enum fp_ttl_op {
	FP_TTL_KEEP,
	FP_TTL_SET,
	FP_TTL_INC,
	FP_TTL_DEC,
};

enum fp_verdict {
	FP_VERDICT_NONE,
	FP_VERDICT_ACCEPT,
	FP_VERDICT_DROP,
};

/* One entry of the rules map. */
struct fp_rule {
	__u32 flags;		/* FP_M_* */
	__u32 slot;		/* counter slot (FP_RULE) */
	__u8 kind;		/* enum fp_kind */
	__u8 family;		/* 0, FP_AF_INET or FP_AF_INET6 */
	__u8 proto;
	__u8 icmp_type4, icmp_type6, icmp_code;
	__u8 tcp_mask, tcp_set;
	__u8 ttl_lo, ttl_hi;
	__u8 dscp;
	__u8 ttl_op;		/* enum fp_ttl_op */
	__u8 ttl;
	__u8 set_dscp, dscp_val;
	__u8 set_ecn, ecn_val;
	__u8 verdict;		/* enum fp_verdict */
	__u8 pad[2];
	__u16 sport_lo, sport_hi;
	__u16 dport_lo, dport_hi;
	__u16 len_lo, len_hi;
	__u32 src[4], src_mask[4];	/* memory order; IPv4 in the first word */
	__u32 dst[4], dst_mask[4];
};

/* A counter slot, per CPU: packets count GSO segments, bytes as the segments' lengths. */
struct fp_counter {
	__u64 pkts;
	__u64 bytes;
};

/* Per-CPU totals: every packet the program sees is one of these. */
enum {
	FP_T_HANDLED,	/* rewritten as needed and sent on by the kernel */
	FP_T_DROPPED,	/* dropped by a rule */
	FP_T_PUNTED,	/* passed to userspace untouched */
	FP_T_MAX,
};

#endif
