/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The loader of the tc program and the translation of the chain into its
 * maps (src/bpf/fastpath.h describes them).
 *
 * Rules and index: two sets.  The rules are in one array map (set * 65536 +
 * index), the index's lists in another (fp_order) and its entries in maps
 * keyed by set too: an array of generic lists, a hash of ports, an LPM trie
 * per address field whose keys begin with the set's byte.  An update
 * removes the entries of the set not in use (the keys it wrote there two
 * updates ago), fills it and then switches fp_set, a single store into the
 * program's .bss, so a packet sees either the old rules and index or the
 * new ones, never a mix.
 *
 * Counters: each rule the kernel carries out has a counter slot, and keeps
 * it (and so its counts) as long as it keeps its chain_rule_id(), which is
 * what chain_inherit() does for the userspace counters: the sum of both is
 * right across edits and reloads, nothing lost or counted twice.  A slot is
 * zeroed when it is given to a new rule.
 *
 * A packet may still walk the old set after the switch (the program reads
 * fp_set once, at its start).  So the next update first waits for an RCU
 * grace period (every program run is inside one), grace_period(): only then
 * does it rewrite that set or give its deleted rules' slots to new rules, so
 * no packet sees a half-written set or counts into a slot given away.
 *
 * Directions: an instance is loaded for one direction (fp_dir in the
 * program's rodata) and indexes only the rules of that direction; the
 * others are in no list, so no packet of its direction meets them (the
 * chain would not match them either).  The inbound instance loads
 * fastpath_uplink, which every uplink's divert tail-calls (the manager puts
 * it into their ib_fast), else the tun program attached to several
 * interfaces (every inbound tun): either way one program, one set of rules,
 * index and counters.
 */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fastpath.h"
#include "flow.h"
#include "fpindex.h"
#include "packet.h"
#include "rule.h"
#include "util.h"

_Static_assert(RULE_DIR_OUT == 1u << PKT_DIR_OUT && RULE_DIR_IN == 1u << PKT_DIR_IN, "dir_mask bits");

bool fastpath_rule_in_dir(const struct rule *r, enum pkt_dir dir)
{
	return rule_dir_mask(r) & (1u << dir);
}

/*
 * The matches of r the program cannot evaluate, as fastpath_rule_why_not()
 * names them, the flow matches in aside (and host-set with hosts) left out.
 */
static const char *why_not_match(const struct rule *r, uint8_t aside, bool hosts)
{
	uint8_t ff = r->flow.flags & ~aside;

	if (r->m.flags & RULE_M_PROBABILITY)
		return "probability";
	/* sets (issue 14): lists live in the daemon */
	if (r->m.flags & RULE_M_SRC_SET)
		return "src-set";
	if (r->m.flags & RULE_M_DST_SET)
		return "dst-set";
	if ((r->m.flags & RULE_M_HOST_SET) && !hosts)
		return "host-set";
	/* The daemon's flow table decides (fastpath_rule_flow_cond() for the exception). */
	if (ff & RULE_F_PACKETS)
		return "flow-packets";
	if (ff & RULE_F_BYTES)
		return "flow-bytes";
	if (ff & RULE_F_STATE)
		return "flow-state";
	if (ff & RULE_F_DIR)
		return "flow-dir";
	if (ff & RULE_F_TLS_SNI)
		return "tls-sni";
	if (ff & RULE_F_HTTP_HOST)
		return "http-host";
	if (ff & RULE_F_QUIC_SNI)
		return "quic-sni";
	return NULL;
}

static const char *why_not(const struct rule *r)
{
	const char *w = why_not_match(r, 0, false);

	if (w)
		return w;
	if (rule_impairs(r))
		return "impairs";
	if (r->a.clamp_mss)
		return "clamp-mss";
	if (r->a.verdict == RULE_VERDICT_REPLY)
		return "verdict=reply";
	if (r->a.verdict == RULE_VERDICT_REJECT)
		return "verdict=reject";
	if (surgery_active(&r->surg))
		return "surgery";
	return NULL;
}

const char *fastpath_rule_why_not(const struct rule *r)
{
	return why_not(r);
}

enum fastpath_flow_cond fastpath_rule_flow_cond(const struct rule *r, uint32_t *ret_hi)
{
	const uint8_t names = RULE_F_TLS_SNI | RULE_F_HTTP_HOST | RULE_F_QUIC_SNI;

	*ret_hi = 0;
	/* Only the matches count: a rule that cannot match does nothing, whatever its actions. */
	if ((r->flow.flags & RULE_F_PACKETS) && !why_not_match(r, RULE_F_PACKETS | RULE_F_DIR, false)) {
		*ret_hi = r->flow.pkts_hi;
		return FASTPATH_FC_POS;
	}
	if (((r->flow.flags & names) || (r->m.flags & RULE_M_HOST_SET)) && !why_not_match(r, names, true))
		return FASTPATH_FC_NAME;
	return FASTPATH_FC_NONE;
}

#ifdef HAVE_FASTPATH

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpferr.h"

#include "bpf/fastpath.h"
#include "fastpath.skel.h"

#define NO_SLOT UINT32_MAX		/* left to userspace */
#define OTHER_DIR (UINT32_MAX - 1)	/* a rule of the other direction: not here at all */

_Static_assert(CHAIN_RULES_MAX <= FASTPATH_RULES_MAX, "the kernel holds any chain");
_Static_assert(FPINDEX_PUNT == FP_LIST_PUNT && FPINDEX_ANY == 256 &&
	       FP_GENERIC_LISTS == 2 * (FPINDEX_ANY + 1), "the index's layout");
_Static_assert(FP_DIR_OUT == PKT_DIR_OUT && FP_DIR_IN == PKT_DIR_IN, "directions");
_Static_assert(FP_AF_INET == AF_INET && FP_AF_INET6 == AF_INET6, "address families");
/* The kernel's flow key is the daemon's, byte for byte. */
_Static_assert(sizeof(struct fp_flow_key) == sizeof(struct flow_key) &&
	       offsetof(struct fp_flow_key, port) == offsetof(struct flow_key, port) &&
	       offsetof(struct fp_flow_key, family) == offsetof(struct flow_key, family) &&
	       offsetof(struct fp_flow_key, proto) == offsetof(struct flow_key, proto), "flow keys");
/* Enums of two headers: compared as ints. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(FP_M_PROTO, RULE_M_PROTO) && SAME(FP_M_SRC, RULE_M_SRC) &&
	       SAME(FP_M_SRC_NOT, RULE_M_SRC_NOT) && SAME(FP_M_DST, RULE_M_DST) &&
	       SAME(FP_M_DST_NOT, RULE_M_DST_NOT) && SAME(FP_M_SPORT, RULE_M_SPORT) &&
	       SAME(FP_M_SPORT_NOT, RULE_M_SPORT_NOT) && SAME(FP_M_DPORT, RULE_M_DPORT) &&
	       SAME(FP_M_DPORT_NOT, RULE_M_DPORT_NOT) && SAME(FP_M_ICMP4_TYPE, RULE_M_ICMP4_TYPE) &&
	       SAME(FP_M_ICMP6_TYPE, RULE_M_ICMP6_TYPE) && SAME(FP_M_ICMP_CODE, RULE_M_ICMP_CODE) &&
	       SAME(FP_M_TCP_FLAGS, RULE_M_TCP_FLAGS) && SAME(FP_M_TTL, RULE_M_TTL) &&
	       SAME(FP_M_LENGTH, RULE_M_LENGTH) && SAME(FP_M_DSCP, RULE_M_DSCP),
	       "FP_M_* mirror RULE_M_*");
_Static_assert((RULE_M_LENGTH | RULE_M_TCP_FLAGS) <= UINT16_MAX, "fp_rule.gso_vary holds them");
_Static_assert(SAME(FP_TTL_SET, RULE_TTL_SET) && SAME(FP_TTL_INC, RULE_TTL_INC) &&
	       SAME(FP_TTL_DEC, RULE_TTL_DEC), "TTL operations");
_Static_assert(SAME(FP_VERDICT_ACCEPT, RULE_VERDICT_ACCEPT) && SAME(FP_VERDICT_DROP, RULE_VERDICT_DROP),
	       "verdicts");

/* One interface the program is attached to: a tcx link, or a tc filter without tcx. */
struct fp_attach {
	int link_fd;		/* tcx link, -1: none */
	struct bpf_tc_hook hook;
	bool hook_created;	/* the clsact qdisc is ours to remove */
	bool attached;
};

struct fastpath {
	struct fastpath_bpf *skel;
	enum pkt_dir dir;
	bool uplink;		/* fastpath_uplink loaded (for divert), not fastpath */
	char uplink_err[ERR_MAX];	/* why the kernel refused fastpath_uplink */
	struct bpf_program *prog;	/* fastpath_direct, or fastpath */
	char direct_err[ERR_MAX];	/* why fastpath_direct is not the one loaded */
	bool next;		/* fp_next holds a program */
	struct fp_attach at[FASTPATH_IFACES_MAX];
	size_t nat;
	int ncpus;
	void *percpu;		/* one value per CPU, for lookups */

	/* The rules of the last update (all of the chain). */
	size_t n;
	bool whole;		/* no list of the index was too long */
	bool switched;		/* since the last grace period: packets may walk the other set */
	uint32_t flow_gen;	/* fp_flow_gen: one per update */
	uint32_t *id;		/* [FASTPATH_RULES_MAX]: chain_rule_id() */
	uint32_t *slot;		/* [FASTPATH_RULES_MAX]: or NO_SLOT, OTHER_DIR */
	bool *used;		/* [FASTPATH_SLOTS] */

	/* The index entries written into each set, to remove before it is filled again. */
	struct fp_port_key *ports[2];
	size_t nports[2];
	struct fp_lpm_key *prefixes[2][2];	/* [set][src] */
	size_t nprefixes[2][2];
};

bool fastpath_built(void)
{
	return true;
}

static int slot_zero(struct fastpath *fp, uint32_t slot)
{
	memset(fp->percpu, 0, (size_t)fp->ncpus * sizeof(struct fp_counter));
	return bpf_map__update_elem(fp->skel->maps.fp_counters, &slot, sizeof(slot), fp->percpu,
				    (size_t)fp->ncpus * sizeof(struct fp_counter), BPF_ANY);
}

int fastpath_attach(struct fastpath *fp, int ifindex, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1, .flags = BPF_TC_F_REPLACE);
	struct fp_attach *a;
	int r;

	bpferr_reset();
	if (fp->nat == FASTPATH_IFACES_MAX)
		return bpferr_fail(-ENOSPC, err, errlen, "attaching to one interface too many");
	a = &fp->at[fp->nat];
	*a = (struct fp_attach){ .link_fd = -1,
				 .hook = { .sz = sizeof(a->hook), .ifindex = ifindex,
					   .attach_point = BPF_TC_EGRESS } };
	opts.prog_fd = bpf_program__fd(fp->prog);
	/*
	 * A tcx link (6.6+) where the kernel has one: run without the clsact
	 * classifier's layers (tc_run(), cls_bpf), and detached by the kernel
	 * when the daemon dies.  EINVAL or ENOTSUP: a kernel without tcx;
	 * anything else fails the same way below.
	 */
	r = bpf_link_create(opts.prog_fd, ifindex, IPMODD_TCX_EGRESS, NULL);
	if (r >= 0) {
		a->link_fd = r;
		fp->nat++;
		return 0;
	}
	bpferr_reset();
	r = bpf_tc_hook_create(&a->hook);
	if (r < 0 && r != -EEXIST)
		return bpferr_fail(r, err, errlen, "creating the clsact qdisc");
	a->hook_created = r == 0;
	/* Counted before the attach: fastpath_close() removes a qdisc created here. */
	fp->nat++;
	r = bpf_tc_attach(&a->hook, &opts);
	if (r < 0)
		return bpferr_fail(r, err, errlen, "attaching the tc egress filter");
	a->attached = true;
	return 0;
}

/* The fast path object's programs: each loader loads one of them. */
enum fp_prog {
	FP_PROG_TUN,		/* fastpath: a tun's egress */
	FP_PROG_DIRECT,		/* fastpath_direct: the outbound tun's, with the tail call */
	FP_PROG_UPLINK,		/* fastpath_uplink: an uplink's ingress, for divert */
};

/* The object opened for fp->dir, loaded with one of its programs. */
static int fp_load(struct fastpath *fp, enum fp_prog which, char *err, size_t errlen)
{
	static const char *const what[] = {
		[FP_PROG_TUN] = "loading the BPF program",
		[FP_PROG_DIRECT] = "loading the fast path's program with the tail call",
		[FP_PROG_UPLINK] = "loading the BPF program fastpath_uplink",
	};
	int r;

	bpferr_reset();
	fp->skel = fastpath_bpf__open();
	if (!fp->skel)
		return bpferr_fail(-errno, err, errlen, "opening the BPF object");
	fp->skel->rodata->fp_dir = fp->dir;
	bpf_program__set_autoload(fp->skel->progs.fastpath, which == FP_PROG_TUN);
	bpf_program__set_autoload(fp->skel->progs.fastpath_direct, which == FP_PROG_DIRECT);
	bpf_program__set_autoload(fp->skel->progs.fastpath_uplink, which == FP_PROG_UPLINK);
	r = fastpath_bpf__load(fp->skel);
	if (r < 0) {
		fastpath_bpf__destroy(fp->skel);
		fp->skel = NULL;
		return bpferr_fail(r, err, errlen, what[which]);
	}
	fp->uplink = which == FP_PROG_UPLINK;
	fp->prog = which == FP_PROG_DIRECT ? fp->skel->progs.fastpath_direct
		   : which == FP_PROG_UPLINK ? fp->skel->progs.fastpath_uplink
					     : fp->skel->progs.fastpath;
	/* Until the first update there are no rules: everything goes to userspace. */
	fp->skel->bss->fp_enabled = 0;
	return 0;
}

/* Allocated, probed, loaded for dir: fastpath_uplink first where uplink asks for it. */
static int fp_new(enum pkt_dir dir, bool uplink, struct fastpath **ret, char *err, size_t errlen)
{
	struct fastpath *fp;
	int r;

	bpferr_reset();
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return bpferr_fail(-ENOMEM, err, errlen, "allocating");
	fp->dir = dir;
	fp->ncpus = libbpf_num_possible_cpus();
	if (fp->ncpus <= 0) {
		r = bpferr_fail(fp->ncpus < 0 ? fp->ncpus : -EINVAL, err, errlen, "counting the CPUs");
		goto out;
	}
	fp->percpu = calloc((size_t)fp->ncpus, sizeof(struct fp_counter));
	fp->id = calloc(FASTPATH_RULES_MAX, sizeof(*fp->id));
	fp->slot = calloc(FASTPATH_RULES_MAX, sizeof(*fp->slot));
	fp->used = calloc(FASTPATH_SLOTS, sizeof(*fp->used));
	if (!fp->percpu || !fp->id || !fp->slot || !fp->used) {
		r = bpferr_fail(-ENOMEM, err, errlen, "allocating");
		goto out;
	}
	/*
	 * The one feature beyond 5.10 the program needs: probed, so that a
	 * kernel without it is named as such rather than by a verifier error.
	 * Kernel BTF it does not need (no CO-RE relocations).
	 */
	r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_loop, NULL);
	if (r == 0) {
		r = bpferr_fail(-EOPNOTSUPP, err, errlen, "probing the kernel: no bpf_loop (kernel < 5.17)");
		goto out;
	}
	/*
	 * Outbound: the program with the tail call into fp_next first; where
	 * the kernel refuses it, the plain one, and the reason is kept for
	 * fastpath_set_next().  On the uplink: fastpath_uplink first; refused,
	 * the tuns' program, with the reason kept for the caller.
	 */
	if (dir == PKT_DIR_OUT)
		r = fp_load(fp, FP_PROG_DIRECT, fp->direct_err, sizeof(fp->direct_err));
	else
		r = uplink ? fp_load(fp, FP_PROG_UPLINK, fp->uplink_err, sizeof(fp->uplink_err)) : -1;
	if (r < 0)
		r = fp_load(fp, FP_PROG_TUN, err, errlen);
	if (r >= 0 && dir != PKT_DIR_OUT)
		snprintf(fp->direct_err, sizeof(fp->direct_err), "an inbound fast path");
	if (r < 0)
		goto out;
	*ret = fp;
	return 0;
out:
	fastpath_close(fp);
	return r;
}

int fastpath_open(int ifindex, enum pkt_dir dir, struct fastpath **ret, char *err, size_t errlen)
{
	struct fastpath *fp;
	int r;

	r = fp_new(dir, false, &fp, err, errlen);
	if (r < 0)
		return r;
	r = fastpath_attach(fp, ifindex, err, errlen);
	if (r < 0) {
		fastpath_close(fp);
		return r;
	}
	*ret = fp;
	return 0;
}

int fastpath_open_in(const int *tun_ifindex, size_t n, struct fastpath **ret, char *err,
		     size_t errlen)
{
	struct fastpath *fp;
	int r;

	r = fp_new(PKT_DIR_IN, true, &fp, err, errlen);
	if (r < 0)
		return r;
	for (size_t k = 0; !fp->uplink && k < n; k++) {
		r = fastpath_attach(fp, tun_ifindex[k], err, errlen);
		if (r < 0) {
			fastpath_close(fp);
			return r;
		}
	}
	*ret = fp;
	return 0;
}

int fastpath_uplink_fd(const struct fastpath *fp)
{
	return fp->uplink ? bpf_program__fd(fp->skel->progs.fastpath_uplink) : -1;
}

const char *fastpath_uplink_error(const struct fastpath *fp)
{
	return fp->uplink ? "" : fp->uplink_err;
}

struct fastpath *fastpath_close(struct fastpath *fp)
{
	if (!fp)
		return NULL;
	/* The slot holds a reference on the other object's program: let it go with it. */
	fastpath_set_next(fp, -1, NULL, 0);
	for (size_t k = 0; k < fp->nat; k++) {
		struct fp_attach *a = &fp->at[k];

		if (a->link_fd >= 0)
			close(a->link_fd);
		if (a->attached) {
			LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);

			bpf_tc_detach(&a->hook, &opts);
		}
		if (a->hook_created) {
			a->hook.attach_point = BPF_TC_EGRESS | BPF_TC_INGRESS;
			bpf_tc_hook_destroy(&a->hook);
		}
	}
	fastpath_bpf__destroy(fp->skel);
	free(fp->percpu);
	free(fp->id);
	free(fp->slot);
	free(fp->used);
	for (size_t set = 0; set < 2; set++) {
		free(fp->ports[set]);
		free(fp->prefixes[set][0]);
		free(fp->prefixes[set][1]);
	}
	free(fp);
	return NULL;
}

/* Actions and verdicts the program carries out; matches aside from probability=. */
static bool rule_expressible(const struct rule *r)
{
	return !fastpath_rule_why_not(r);
}

static void rule_translate(const struct rule *r, struct fp_rule *e)
{
	const struct rule_match *m = &r->m;

	memset(e, 0, sizeof(*e));
	e->flags = m->flags & ~(uint32_t)RULE_M_PROBABILITY;
	e->slot = NO_SLOT;
	e->family = m->family;
	e->proto = m->proto;
	e->icmp_type4 = m->icmp_type[0];
	e->icmp_type6 = m->icmp_type[1];
	e->icmp_code = m->icmp_code;
	e->tcp_mask = m->tcp_mask;
	e->tcp_set = m->tcp_set;
	e->ttl_lo = m->ttl_lo;
	e->ttl_hi = m->ttl_hi;
	e->dscp = m->dscp;
	e->sport_lo = m->sport_lo;
	e->sport_hi = m->sport_hi;
	e->dport_lo = m->dport_lo;
	e->dport_hi = m->dport_hi;
	e->len_lo = m->len_lo;
	e->len_hi = m->len_hi;
	memcpy(e->src, m->src.addr, sizeof(e->src));
	memcpy(e->src_mask, m->src.mask, sizeof(e->src_mask));
	memcpy(e->dst, m->dst.addr, sizeof(e->dst));
	memcpy(e->dst_mask, m->dst.mask, sizeof(e->dst_mask));
	for (size_t tcp = 0; tcp < 2; tcp++)
		e->gso_vary[tcp] = (__u16)(chain_rule_gso_vary(r, tcp) & ~(uint32_t)RULE_M_PROBABILITY);
	if (!rule_expressible(r)) {
		uint32_t hi;

		e->kind = FP_PUNT;
		switch (fastpath_rule_flow_cond(r, &hi)) {
		case FASTPATH_FC_POS:
			e->flow_cond = FP_FC_POS;
			e->flow_hi = hi;
			break;
		case FASTPATH_FC_NAME:
			e->flow_cond = FP_FC_NAME;
			break;
		case FASTPATH_FC_NONE:
			break;
		}
		return;
	}
	e->kind = FP_RULE;
	e->ttl_op = r->a.ttl_op;
	e->ttl = r->a.ttl;
	e->set_dscp = r->a.set_dscp;
	e->dscp_val = r->a.dscp;
	e->set_ecn = r->a.set_ecn;
	e->ecn_val = r->a.ecn;
	e->verdict = r->a.verdict;
}

/* The previous update's rules by id, to find the slot a rule keeps. */
struct id_slot {
	uint32_t id, slot;
};

static int id_slot_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct id_slot *)a)->id, y = ((const struct id_slot *)b)->id;

	return (x > y) - (x < y);
}

static uint32_t slot_of(const struct id_slot *old, size_t n, uint32_t id)
{
	const struct id_slot key = { .id = id }, *hit;

	hit = bsearch(&key, old, n, sizeof(*old), id_slot_cmp);
	return hit ? hit->slot : NO_SLOT;
}

/* Remove the index entries an earlier update wrote into set (not in use). */
static int index_clear(struct fastpath *fp, uint32_t set)
{
	struct bpf_map *lpm[2] = { fp->skel->maps.fp_dst, fp->skel->maps.fp_src };
	int r;

	for (size_t i = 0; i < fp->nports[set]; i++) {
		r = bpf_map__delete_elem(fp->skel->maps.fp_ports, &fp->ports[set][i],
					 sizeof(fp->ports[set][i]), 0);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	fp->nports[set] = 0;
	for (size_t src = 0; src < 2; src++) {
		for (size_t i = 0; i < fp->nprefixes[set][src]; i++) {
			r = bpf_map__delete_elem(lpm[src], &fp->prefixes[set][src][i],
						 sizeof(fp->prefixes[set][src][i]), 0);
			if (r < 0 && r != -ENOENT)
				return r;
		}
		fp->nprefixes[set][src] = 0;
	}
	return 0;
}

/* n values of the array map at consecutive keys from first. */
static int array_write(struct bpf_map *map, uint32_t first, const void *values, size_t n)
{
	_cleanup_(freep) uint32_t *keys = NULL;
	uint32_t count = (uint32_t)n;
	int r;

	if (!n)
		return 0;
	keys = malloc(n * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		keys[i] = first + (uint32_t)i;
	r = bpf_map_update_batch(bpf_map__fd(map), keys, values, &count, NULL);
	if (r < 0)
		return -errno;
	return count == n ? 0 : -EIO;
}

/* Write ix into set (not in use); returns its FP_HAS_* bits. */
static int index_write(struct fastpath *fp, uint32_t set, const struct fpindex *ix,
		       uint32_t *ret_has)
{
	struct bpf_map *lpm[2] = { fp->skel->maps.fp_dst, fp->skel->maps.fp_src };
	struct fp_list gen[FP_GENERIC_LISTS];
	uint32_t has = 0;
	int r;

	r = array_write(fp->skel->maps.fp_order, set * FASTPATH_ORDER_MAX, ix->order, ix->norder);
	if (r < 0)
		return r;
	for (size_t v6 = 0; v6 < 2; v6++)
		for (size_t p = 0; p <= FPINDEX_ANY; p++)
			gen[v6 * (FPINDEX_ANY + 1) + p] = (struct fp_list){
				.start = ix->generic[v6][p].start, .count = ix->generic[v6][p].count };
	r = array_write(fp->skel->maps.fp_generic, set * FP_GENERIC_LISTS, gen, FP_GENERIC_LISTS);
	if (r < 0)
		return r;

	free(fp->ports[set]);
	fp->ports[set] = calloc(ix->nports ? ix->nports : 1, sizeof(*fp->ports[set]));
	if (!fp->ports[set])
		return -ENOMEM;
	for (size_t i = 0; i < ix->nports; i++) {
		const struct fpindex_port *e = &ix->ports[i];
		struct fp_list l = { .start = e->l.start, .count = e->l.count };
		struct fp_port_key *k = &fp->ports[set][i];

		*k = (struct fp_port_key){ .set = (__u8)set, .sport = e->sport, .proto = e->proto,
					   .port = e->port };
		r = bpf_map__update_elem(fp->skel->maps.fp_ports, k, sizeof(*k), &l, sizeof(l),
					 BPF_ANY);
		if (r < 0)
			return r;
		fp->nports[set]++;
		has |= e->sport ? FP_HAS_SPORT : FP_HAS_DPORT;
	}
	for (size_t src = 0; src < 2; src++) {
		size_t np = ix->nprefixes[src];

		free(fp->prefixes[set][src]);
		fp->prefixes[set][src] = calloc(np ? np : 1, sizeof(*fp->prefixes[set][src]));
		if (!fp->prefixes[set][src])
			return -ENOMEM;
		for (size_t i = 0; i < np; i++) {
			const struct fpindex_prefix *e = &ix->prefixes[src][i];
			struct fp_list l = { .start = e->l.start, .count = e->l.count };
			struct fp_lpm_key *k = &fp->prefixes[set][src][i];
			bool v6 = e->family == AF_INET6;

			*k = (struct fp_lpm_key){ .prefixlen = FP_LPM_HEAD_BITS + e->len,
						  .set = (__u8)set, .family = e->family };
			memcpy(k->addr, e->addr, sizeof(k->addr));
			r = bpf_map__update_elem(lpm[src], k, sizeof(*k), &l, sizeof(l), BPF_ANY);
			if (r < 0)
				return r;
			fp->nprefixes[set][src]++;
			has |= src ? (v6 ? FP_HAS_SRC6 : FP_HAS_SRC4) : (v6 ? FP_HAS_DST6 : FP_HAS_DST4);
		}
	}
	*ret_has = has;
	return 0;
}

/*
 * Wait until no program run that began before now is still running: the
 * kernel waits for an RCU grace period before an update of a map of maps
 * returns (maybe_wait_bpf_programs()), and a tc program runs inside an RCU
 * read-side section.
 */
static int grace_period(struct fastpath *fp)
{
	uint32_t zero = 0;
	int inner = bpf_map__fd(fp->skel->maps.fp_grace_inner);

	return bpf_map__update_elem(fp->skel->maps.fp_grace, &zero, sizeof(zero), &inner,
				    sizeof(inner), BPF_ANY);
}

int fastpath_update(struct fastpath *fp, struct chain *c, char *err, size_t errlen)
{
	_cleanup_(freep) const struct rule_match **m = NULL;
	_cleanup_(freep) struct fp_rule *e = NULL;
	_cleanup_(freep) struct id_slot *old = NULL;
	_cleanup_(freep) uint32_t *id = NULL, *slot = NULL;
	_cleanup_(freep) bool *used = NULL;
	size_t n = chain_size(c), free_at = 0;
	uint32_t set = fp->skel->bss->fp_set & 1, next = set ^ 1, has = 0;
	struct fpindex *ix = NULL;
	bool flow_pos = false;
	int r;

	bpferr_reset();
	/* Before next is rewritten and the slots of its rules are given away. */
	if (fp->switched) {
		r = grace_period(fp);
		if (r < 0)
			return bpferr_fail(r, err, errlen, "waiting for the packets of the old rules");
		fp->switched = false;
	}
	m = calloc(n ? n : 1, sizeof(*m));
	e = calloc(n ? n : 1, sizeof(*e));
	old = calloc(fp->n ? fp->n : 1, sizeof(*old));
	id = calloc(n ? n : 1, sizeof(*id));
	slot = calloc(n ? n : 1, sizeof(*slot));
	used = malloc(FASTPATH_SLOTS * sizeof(*used));
	if (!m || !e || !old || !id || !slot || !used)
		return bpferr_fail(-ENOMEM, err, errlen, "allocating");
	for (size_t i = 0; i < fp->n; i++)
		old[i] = (struct id_slot){ .id = fp->id[i], .slot = fp->slot[i] };
	qsort(old, fp->n, sizeof(*old), id_slot_cmp);

	/* Slots of the rules in use stay taken until the switch: packets may still count there. */
	memcpy(used, fp->used, FASTPATH_SLOTS * sizeof(*used));
	for (size_t i = 0; i < n; i++) {
		const struct rule *rule = chain_rule(c, i);

		rule_translate(rule, &e[i]);
		id[i] = chain_rule_id(c, i);
		slot[i] = NO_SLOT;
		if (!fastpath_rule_in_dir(rule, fp->dir)) {
			/* In no list of the index: never a candidate. */
			m[i] = NULL;
			e[i].kind = FP_PUNT;
			slot[i] = OTHER_DIR;
			continue;
		}
		m[i] = &rule->m;
		if (e[i].kind != FP_RULE) {
			if (e[i].flow_cond != FP_FC_NONE)
				flow_pos = true;
			continue;
		}
		slot[i] = slot_of(old, fp->n, id[i]);
		if (slot[i] == NO_SLOT) {
			while (free_at < FASTPATH_SLOTS && used[free_at])
				free_at++;
			/* Twice the rules: there is always a slot. */
			if (free_at == FASTPATH_SLOTS)
				return bpferr_fail(-ENOSPC, err, errlen, "allocating a counter slot");
			slot[i] = (uint32_t)free_at;
			used[free_at] = true;
			r = slot_zero(fp, slot[i]);
			if (r < 0)
				return bpferr_fail(r, err, errlen, "zeroing a rule's counters");
		}
		e[i].slot = slot[i];
	}
	r = fpindex_build(m, n, FASTPATH_ORDER_MAX, &ix);
	if (r < 0)
		return bpferr_fail(r, err, errlen, "building the index");
	r = index_clear(fp, next);
	if (r < 0) {
		r = bpferr_fail(r, err, errlen, "removing the old index");
		goto out;
	}
	r = array_write(fp->skel->maps.fp_rules, next * FASTPATH_RULES_MAX, e, n);
	if (r < 0) {
		r = bpferr_fail(r, err, errlen, "writing the rules map");
		goto out;
	}
	r = index_write(fp, next, ix, &has);
	if (r < 0) {
		r = bpferr_fail(r, err, errlen, "writing the index");
		goto out;
	}
	fp->skel->bss->fp_has[next] = has | (flow_pos ? FP_HAS_FLOW : 0);

	memset(fp->used, 0, FASTPATH_SLOTS * sizeof(*fp->used));
	for (size_t i = 0; i < n; i++)
		if (slot[i] < OTHER_DIR)
			fp->used[slot[i]] = true;
	memcpy(fp->id, id, n * sizeof(*id));
	memcpy(fp->slot, slot, n * sizeof(*slot));
	fp->n = n;
	fp->whole = ix->punts == 0;
	ix = fpindex_free(ix);

	/* The daemon's flow decisions were made for the old chain's name rules. */
	fp->flow_gen++;
	__atomic_store_n(&fp->skel->bss->fp_flow_gen, fp->flow_gen, __ATOMIC_SEQ_CST);
	/* The switch, last: the program reads fp_set once per packet. */
	__atomic_store_n(&fp->skel->bss->fp_set, next, __ATOMIC_SEQ_CST);
	fp->switched = true;
	r = 0;
out:
	fpindex_free(ix);
	return r;
}

uint32_t fastpath_flow_generation(const struct fastpath *fp)
{
	return fp->flow_gen;
}

int fastpath_flow_decide(struct fastpath *fp, const struct flow_key *k, bool needs_daemon)
{
	struct fp_flow v = { 0 };
	int fd = bpf_map__fd(fp->skel->maps.fp_flows);

	/* The kernel's counts stay (a count lost to a race only hands up more). */
	if (bpf_map_lookup_elem(fd, k, &v) < 0)
		memset(&v, 0, sizeof(v));
	v.flags = FP_FLOW_DECIDED | (needs_daemon ? FP_FLOW_NEEDS_DAEMON : 0);
	v.gen = fp->flow_gen;
	if (bpf_map_update_elem(fd, k, &v, BPF_ANY) < 0)
		return -errno;
	return 0;
}

void fastpath_info(const struct fastpath *fp, struct fastpath_info *ret)
{
	*ret = (struct fastpath_info){ .whole = fp->whole };
	for (size_t i = 0; i < fp->n; i++) {
		if (fp->slot[i] < OTHER_DIR)
			ret->rules++;
		else if (fp->slot[i] == NO_SLOT)
			ret->punts++;
	}
}

int fastpath_counters(struct fastpath *fp, size_t i, uint64_t *ret_pkts, uint64_t *ret_bytes)
{
	const struct fp_counter *v = fp->percpu;
	uint64_t pkts = 0, bytes = 0;
	uint32_t slot;
	int r;

	if (fastpath_rule_carried(fp, i)) {
		slot = fp->slot[i];
		r = bpf_map__lookup_elem(fp->skel->maps.fp_counters, &slot, sizeof(slot), fp->percpu,
					 (size_t)fp->ncpus * sizeof(*v), 0);
		if (r < 0)
			return r;
		for (int k = 0; k < fp->ncpus; k++) {
			pkts += v[k].pkts;
			bytes += v[k].bytes;
		}
	}
	*ret_pkts = pkts;
	*ret_bytes = bytes;
	return 0;
}

int fastpath_totals(struct fastpath *fp, struct fastpath_totals *ret)
{
	uint64_t sum[FP_T_MAX] = { 0 }, *v = fp->percpu;
	int r;

	/* fp->percpu holds ncpus fp_counters: room for ncpus u64 values. */
	for (uint32_t t = 0; t < FP_T_MAX; t++) {
		r = bpf_map__lookup_elem(fp->skel->maps.fp_totals, &t, sizeof(t), v,
					 (size_t)fp->ncpus * sizeof(*v), 0);
		if (r < 0)
			return r;
		for (int k = 0; k < fp->ncpus; k++)
			sum[t] += v[k];
	}
	*ret = (struct fastpath_totals){
		.handled = sum[FP_T_HANDLED],
		.dropped = sum[FP_T_DROPPED],
		.punted = sum[FP_T_PUNTED],
		.flow_passed = sum[FP_T_FLOW_PASSED],
		.flow_punted = sum[FP_T_FLOW_PUNTED],
	};
	return 0;
}

int fastpath_reset(struct fastpath *fp)
{
	int r;

	for (uint32_t s = 0; s < FASTPATH_SLOTS; s++) {
		if (!fp->used[s])
			continue;
		r = slot_zero(fp, s);
		if (r < 0)
			return r;
	}
	memset(fp->percpu, 0, (size_t)fp->ncpus * sizeof(uint64_t));
	for (uint32_t t = 0; t < FP_T_MAX; t++) {
		r = bpf_map__update_elem(fp->skel->maps.fp_totals, &t, sizeof(t), fp->percpu,
					 (size_t)fp->ncpus * sizeof(uint64_t), BPF_ANY);
		if (r < 0)
			return r;
	}
	return 0;
}

bool fastpath_rule_carried(const struct fastpath *fp, size_t i)
{
	return i < fp->n && fp->slot[i] < OTHER_DIR;
}

int fastpath_set_next(struct fastpath *fp, int prog_fd, char *err, size_t errlen)
{
	uint32_t zero = 0;
	int r;

	bpferr_reset();
	if (!fp->skel || !fp->prog)
		return -EINVAL;
	if (prog_fd < 0) {
		if (!fp->next)
			return 0;
		r = bpf_map__delete_elem(fp->skel->maps.fp_next, &zero, sizeof(zero), 0);
		/* ENOENT: nothing there. */
		if (r < 0 && r != -ENOENT)
			return err ? bpferr_fail(r, err, errlen, "emptying the fast path's next step") : r;
		fp->next = false;
		return 0;
	}
	if (fp->prog != fp->skel->progs.fastpath_direct) {
		snprintf(err, errlen, "%s", fp->direct_err);
		return -EOPNOTSUPP;
	}
	r = bpf_map__update_elem(fp->skel->maps.fp_next, &zero, sizeof(zero), &prog_fd,
				 sizeof(prog_fd), BPF_ANY);
	if (r < 0)
		return bpferr_fail(r, err, errlen, "putting the re-injection program into the "
				   "fast path's tail call slot");
	fp->next = true;
	return 0;
}

bool fastpath_next(const struct fastpath *fp)
{
	return fp->next;
}

void fastpath_set_enabled(struct fastpath *fp, bool enabled)
{
	__atomic_store_n(&fp->skel->bss->fp_enabled, enabled, __ATOMIC_SEQ_CST);
}

bool fastpath_enabled(const struct fastpath *fp)
{
	return fp->skel->bss->fp_enabled != 0;
}

const char *fastpath_attach_name(const struct fastpath *fp)
{
	if (!fp->nat)
		return "tail-call";
	return fp->at[0].link_fd >= 0 ? "tcx" : "tc";
}

#else /* !HAVE_FASTPATH: built without clang, bpftool or libbpf */

bool fastpath_built(void)
{
	return false;
}

int fastpath_open(int ifindex, enum pkt_dir dir, struct fastpath **ret, char *err, size_t errlen)
{
	snprintf(err, errlen, "this ipmodd was built without the eBPF fast path "
		 "(configure --enable-fastpath=no, or no clang, bpftool or libbpf)");
	return -EOPNOTSUPP;
}

int fastpath_open_in(const int *tun_ifindex, size_t n, struct fastpath **ret, char *err,
		     size_t errlen)
{
	return fastpath_open(0, PKT_DIR_IN, ret, err, errlen);
}

int fastpath_uplink_fd(const struct fastpath *fp)
{
	return -1;
}

const char *fastpath_uplink_error(const struct fastpath *fp)
{
	return "";
}

int fastpath_attach(struct fastpath *fp, int ifindex, char *err, size_t errlen)
{
	snprintf(err, errlen, "no fast path");
	return -EOPNOTSUPP;
}

struct fastpath *fastpath_close(struct fastpath *fp)
{
	return NULL;
}

int fastpath_update(struct fastpath *fp, struct chain *c, char *err, size_t errlen)
{
	snprintf(err, errlen, "no fast path");
	return -EOPNOTSUPP;
}

uint32_t fastpath_flow_generation(const struct fastpath *fp)
{
	(void)fp;
	return 0;
}

int fastpath_flow_decide(struct fastpath *fp, const struct flow_key *k, bool needs_daemon)
{
	(void)fp;
	(void)k;
	(void)needs_daemon;
	return -EOPNOTSUPP;
}

void fastpath_info(const struct fastpath *fp, struct fastpath_info *ret)
{
	*ret = (struct fastpath_info){ 0 };
}

int fastpath_counters(struct fastpath *fp, size_t i, uint64_t *ret_pkts, uint64_t *ret_bytes)
{
	*ret_pkts = *ret_bytes = 0;
	return 0;
}

int fastpath_totals(struct fastpath *fp, struct fastpath_totals *ret)
{
	*ret = (struct fastpath_totals){ 0 };
	return 0;
}

int fastpath_reset(struct fastpath *fp)
{
	return 0;
}

bool fastpath_rule_carried(const struct fastpath *fp, size_t i)
{
	return false;
}

void fastpath_set_enabled(struct fastpath *fp, bool enabled)
{
}

bool fastpath_enabled(const struct fastpath *fp)
{
	return false;
}

const char *fastpath_attach_name(const struct fastpath *fp)
{
	return "none";
}

int fastpath_set_next(struct fastpath *fp, int prog_fd, char *err, size_t errlen)
{
	if (err)
		snprintf(err, errlen, "no fast path");
	return -EOPNOTSUPP;
}

bool fastpath_next(const struct fastpath *fp)
{
	return false;
}

#endif
