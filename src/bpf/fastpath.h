/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the tc program (fastpath.bpf.c) and its loader (fastpath.c) share:
 * the layout of the maps.  Plain uapi types, no kernel structures.
 */
#ifndef IPMODD_BPF_FASTPATH_H
#define IPMODD_BPF_FASTPATH_H

#include <linux/types.h>

/*
 * Rules of one set: the whole chain (CHAIN_RULES_MAX), so that the kernel
 * finishes any chain of rules it can express.  Two sets: the daemon fills
 * the idle one (rules, index) and then switches (fp_set).
 */
#define FASTPATH_RULES_MAX 65536
#define FASTPATH_ENTRIES (2 * FASTPATH_RULES_MAX)
/*
 * The index (fpindex.h): per set, lists of rule indices in one array; the
 * lists of a packet's generic rules by family and proto; port entries in a
 * hash, prefix entries in an LPM trie per field, each keyed by set too.
 */
#define FASTPATH_ORDER_MAX (4 * FASTPATH_RULES_MAX)
#define FP_GENERIC_LISTS (2 * 257)	/* [v6][proto, or 256: any proto] */
#define FP_LIST_PUNT 0xffffffffu	/* a list too long to hold: the packet goes to userspace */
/*
 * Counter slots.  A rule keeps its slot while the chain changes around it,
 * so both sets' rules must fit while a change is under way.
 */
#define FASTPATH_SLOTS (2 * FASTPATH_RULES_MAX)
/* Rules that rewrite and continue, matched by one packet; more: userspace. */
#define FASTPATH_MATCHED_MAX 16

/* fp_dir: which packets the program sees, as enum pkt_dir (packet.h). */
#define FP_DIR_OUT 0
#define FP_DIR_IN 1

#define FP_AF_INET 2
#define FP_AF_INET6 10

enum fp_kind {
	FP_RULE,	/* matches and actions the kernel carries out */
	FP_PUNT,	/* a rule it cannot carry out: a packet its matches may fit goes to userspace */
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
	__u8 flow_cond;		/* FP_PUNT: enum fp_flow_cond */
	__u8 pad;
	__u16 sport_lo, sport_hi;
	__u16 dport_lo, dport_hi;
	__u16 len_lo, len_hi;
	__u32 src[4], src_mask[4];	/* memory order; IPv4 in the first word */
	__u32 dst[4], dst_mask[4];
	/*
	 * [tcp]: the FP_M_* matches whose result may differ between the
	 * segments of a GSO packet (chain_rule_gso_vary()).  Userspace splits
	 * a super-packet that may match them, so the program hands it up.
	 */
	__u16 gso_vary[2];
	__u32 flow_hi;		/* FP_FC_POS: the last position the rule may match */
};

/*
 * When a punt entry sends a packet its matches fit to userspace:
 * FP_FC_NONE always; FP_FC_POS only while the packet's position in its
 * flow direction (its first segment's, from 1) is <= flow_hi: the rule's
 * only matches the kernel cannot evaluate are flow-packets (and flow-dir),
 * so a later packet can never match it and the walk goes on past it.
 */
enum fp_flow_cond {
	FP_FC_NONE,
	FP_FC_POS,
	/*
	 * The rule's only such words are tls-sni, http-host, quic-sni and
	 * host-set: hand the packet up until the daemon marked the flow
	 * FP_FLOW_DECIDED (its host name search ended), afterwards only if it
	 * also marked it FP_FLOW_NEEDS_DAEMON (a name rule may match its name).
	 */
	FP_FC_NAME,
};

/*
 * fp_flows: the kernel's own flow table, an LRU hash.  The key is the
 * daemon's struct flow_key (flow.h) byte for byte: side 0 is the smaller
 * (address, port) end, addresses compared in network order, ports in host
 * order; IPv4 in the first 4 bytes, the rest zero.  TCP and UDP only.  The
 * value counts the packets (GSO segments) each side sent that the program
 * saw while the set in use had an FP_FC_POS entry.
 */
#define FASTPATH_FLOWS_MAX 65536
/*
 * An entry idle this long starts again from 0, as does a TCP SYN without
 * ACK: the daemon's shortest default timeout (a closing TCP flow, flow.c),
 * so that the kernel never counts on where the daemon started a new flow.
 * Starting over where the daemon does not only hands up more packets.
 */
#define FP_FLOW_IDLE_NS (10ull * 1000000000ull)
struct fp_flow_key {
	__u8 addr[2][16];
	__u16 port[2];
	__u8 family;
	__u8 proto;
	__u8 pad[2];
};

struct fp_flow {
	__u64 pkts[2];		/* by key side */
	__u64 last_ns;		/* bpf_ktime_get_ns() of the last packet */
	__u32 flags;		/* FP_FLOW_*, written by the daemon */
	__u32 gen;		/* fp_flow_gen when the daemon wrote flags: else they do not count */
};

enum {
	FP_FLOW_DECIDED = 1u << 0,
	FP_FLOW_NEEDS_DAEMON = 1u << 1,
};

/* A list of rule indices in fp_order, from the set's base. */
struct fp_list {
	__u32 start;
	__u32 count;		/* FP_LIST_PUNT: too long */
};

/* fp_ports: a single dport or sport of a proto. */
struct fp_port_key {
	__u8 set;
	__u8 sport;		/* 0: dport */
	__u8 proto;
	__u8 pad;
	__u16 port;		/* host order */
	__u16 pad2;
};

/* fp_dst, fp_src: prefixlen counts the set and family bytes (16 bits) too. */
struct fp_lpm_key {
	__u32 prefixlen;
	__u8 set;
	__u8 family;
	__u8 addr[16];		/* IPv4 in the first 4 */
	__u8 pad[2];
};
#define FP_LPM_HEAD_BITS 16

/* fp_has[set]: which kinds of entries the set has, so that a packet looks up only those. */
enum {
	FP_HAS_DPORT = 1u << 0,
	FP_HAS_SPORT = 1u << 1,
	FP_HAS_DST4 = 1u << 2,
	FP_HAS_DST6 = 1u << 3,
	FP_HAS_SRC4 = 1u << 4,
	FP_HAS_SRC6 = 1u << 5,
	FP_HAS_FLOW = 1u << 6,	/* an FP_FC_POS or FP_FC_NAME entry: track TCP/UDP flows */
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
	FP_T_FLOW_PASSED,	/* of the handled/dropped: went past an FP_FC_POS/NAME entry it no longer needs */
	FP_T_FLOW_PUNTED,	/* of the punted: by an FP_FC_POS/NAME entry that still needs the daemon */
	FP_T_MAX,
};

#endif
