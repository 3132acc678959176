/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The eBPF fast path: loads the tc program of src/bpf/fastpath.bpf.c,
 * attaches it to the tun's egress and keeps its maps in step with the chain.
 * The kernel then runs the chain on a packet through an index (fpindex.h),
 * carries out the rules it can express and hands every other packet to
 * userspace untouched (see ipmodd.conf(5), FASTPATH).
 * No logging: failures return -errno and a message naming the step.
 */
#ifndef IPMODD_FASTPATH_H
#define IPMODD_FASTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "packet.h"

struct fastpath;

/* Whether this ipmodd was built with the fast path (clang, bpftool and libbpf at build time). */
bool fastpath_built(void);

/* Interfaces one instance may be attached to (the inbound tuns). */
#define FASTPATH_IFACES_MAX 8

/*
 * Load the program for the packets of direction dir and attach it to
 * ifindex's egress (a clsact qdisc is created as needed).  It passes every
 * packet to userspace until the first fastpath_update().
 * PKT_DIR_OUT: on the tun, it compensates the hop the kernel's forward of
 * a packet it sends on will cost, as the daemon does.  PKT_DIR_IN: on an
 * inbound tun, no compensation: the packet it sends on goes to the uplink's
 * ingress (inbound.bpf.c's reinject_in) and on to the host, or is forwarded
 * at the cost it would have had without ipmodd.  It carries out only the
 * rules of its direction (rule_dir_mask()); the others it never meets.
 */
int fastpath_open(int ifindex, enum pkt_dir dir, struct fastpath **ret, char *err, size_t errlen);
/*
 * The inbound instance (PKT_DIR_IN) for the n inbound tuns: loads
 * fastpath_uplink, the program inbound.bpf.c's divert tail-calls on the
 * uplinks' ingress (fastpath_uplink_fd(), for inbound_set_fast()), and
 * attaches nothing.  Where the kernel refuses that program it loads the
 * tuns' program instead and attaches it to every tun's egress, as
 * fastpath_open() does (fastpath_uplink_fd() -1, fastpath_uplink_error()
 * says why).
 */
int fastpath_open_in(const int *tun_ifindex, size_t n, struct fastpath **ret, char *err,
		     size_t errlen);
/* fastpath_uplink's program fd, or -1 when the instance runs on the tuns' egress. */
int fastpath_uplink_fd(const struct fastpath *fp);
/* Why the kernel refused fastpath_uplink ("" when it did not). */
const char *fastpath_uplink_error(const struct fastpath *fp);
/*
 * Attach the same instance to one more interface's egress (another inbound
 * tun): one program, one set of rules and counters for all of them.
 */
int fastpath_attach(struct fastpath *fp, int ifindex, char *err, size_t errlen);
/* Detach from every interface and unload; takes NULL. */
struct fastpath *fastpath_close(struct fastpath *fp);

/*
 * Make the kernel run c's rules from the next packet on.  Call it
 * after chain_inherit(): a rule that keeps its id (chain_rule_id()) keeps
 * its kernel counters, a new or changed rule starts from zero.  The switch
 * to the new rules is a single store; the old ones stay intact until the
 * next update, which first waits for an RCU grace period (a few
 * milliseconds) so that no packet still walks them: a packet sees either
 * the old rules or the new ones (and the old index or the new one), and
 * counts only into its rules' slots.  The kernel holds every rule of c.
 */
int fastpath_update(struct fastpath *fp, struct chain *c, char *err, size_t errlen);

/* Rules of the last update the kernel carries out, and those it hands to userspace. */
struct fastpath_info {
	size_t rules;		/* carried out in the kernel */
	size_t punts;		/* left to userspace: a packet they may match goes there */
	bool whole;		/* every list of the index fits: no other packet goes to userspace */
};
void fastpath_info(const struct fastpath *fp, struct fastpath_info *ret);

/* Kernel counters of rule i of the last update, summed over the CPUs; 0 when it is not there. */
int fastpath_counters(struct fastpath *fp, size_t i, uint64_t *ret_pkts, uint64_t *ret_bytes);

struct fastpath_totals {
	uint64_t handled;	/* sent on by the kernel */
	uint64_t dropped;	/* dropped by a rule in the kernel */
	uint64_t punted;	/* passed to userspace */
	/* Of handled and dropped: went on past a flow-packets rule beyond its positions. */
	uint64_t flow_passed;
	/* Of punted: handed up by a flow-packets rule within its positions. */
	uint64_t flow_punted;
};
int fastpath_totals(struct fastpath *fp, struct fastpath_totals *ret);
/* Zero the rules' counters and the totals. */
int fastpath_reset(struct fastpath *fp);

/* Off: every packet goes to userspace (while a trace or capture watches). */
/*
 * Whether the kernel carries out rule i of the chain last given to
 * fastpath_update(); false for a rule left to userspace: the kernel hands
 * every packet that may match it to userspace, untouched; false too for a
 * rule of the other direction.
 */
bool fastpath_rule_carried(const struct fastpath *fp, size_t i);
/*
 * Why the program cannot carry out r, as the word of its spec that stops
 * it ("probability", "impairs", "clamp-mss", "verdict=reply",
 * "verdict=reject"), or NULL when it can.  Pure; also without the fast path.
 */
const char *fastpath_rule_why_not(const struct rule *r);
/*
 * For a rule the program cannot carry out, when its punt entry sends a
 * packet to userspace.  FASTPATH_FC_POS: the only words that stop the
 * kernel are flow-packets=LO-HI (and flow-dir): the kernel counts each
 * flow's packets per direction itself and hands up only packets at
 * position <= *ret_hi (a later one can never match the rule); beyond, it
 * runs the rest of the chain as if the rule did not match.
 * FASTPATH_FC_NONE: every packet its other matches fit.  Pure.
 */
enum fastpath_flow_cond {
	FASTPATH_FC_NONE,
	FASTPATH_FC_POS,
	/*
	 * The only such words are tls-sni, http-host, quic-sni, host-set: the
	 * kernel hands up a flow's packets until the daemon decided the flow
	 * (fastpath_flow_decide()), then only those of a flow that needs it.
	 */
	FASTPATH_FC_NAME,
};
enum fastpath_flow_cond fastpath_rule_flow_cond(const struct rule *r, uint32_t *ret_hi);
/* Whether r matches packets of direction dir (rule_dir_mask()).  Pure. */
bool fastpath_rule_in_dir(const struct rule *r, enum pkt_dir dir);
/*
 * The daemon's host name search for the flow of k ended: needs_daemon when
 * a name rule of the chain may match the name found (its later packets
 * still go to the daemon), else the kernel carries them out past the name
 * rules.  A decision counts for the chain of the last update only:
 * fastpath_flow_generation() changes with each update, and a flow decided
 * under an older one is handed up again until decided anew.
 */
struct flow_key;
int fastpath_flow_decide(struct fastpath *fp, const struct flow_key *k, bool needs_daemon);
uint32_t fastpath_flow_generation(const struct fastpath *fp);
void fastpath_set_enabled(struct fastpath *fp, bool enabled);
bool fastpath_enabled(const struct fastpath *fp);
/*
 * How the program is attached: "tcx" (links, 6.6+), "tc" (clsact filters),
 * "tail-call" (fastpath_uplink, run by the uplinks' divert).
 */
const char *fastpath_attach_name(const struct fastpath *fp);

/*
 * The outbound program's next step for the packets it rewrote, prog_fd:
 * the re-injection program's egress variant (reinject_egress_fd()), which
 * sends the host's own packets out of the uplink straight from the tun's
 * egress; prog_fd < 0 empties the slot (before that program goes; also done
 * by fastpath_close()).  Without it the program redirects them to the tun's
 * ingress.  -EOPNOTSUPP with the reason in err where the kernel refused the
 * program with the tail call (or an inbound fast path).  err may be NULL
 * when emptying.
 */
int fastpath_set_next(struct fastpath *fp, int prog_fd, char *err, size_t errlen);
/* Whether the slot holds the program. */
bool fastpath_next(const struct fastpath *fp);

#endif
