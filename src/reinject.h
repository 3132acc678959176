/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Re-injection without forwarding: loads the tc program of
 * src/bpf/reinject.bpf.c and attaches it to the tun's ingress, so that the
 * host's own packets, written back or redirected by the fast path, leave by
 * the uplink without being forwarded (see ipmodd.conf(5), routing.reinject).
 * Independent of the fast path: it needs neither bpf_loop nor kernel BTF.
 * No logging: failures return -errno and a message naming the step.
 */
#ifndef IPMODD_REINJECT_H
#define IPMODD_REINJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reinject;

/* Whether this ipmodd was built with it (the fast path's toolchain: clang, bpftool, libbpf). */
bool reinject_built(void);

/*
 * Load the program and attach it to ifindex's ingress: a tcx link where the
 * kernel has them (6.6), which goes with the daemon, else a netlink tc
 * filter (replacing one a previous instance left).
 */
int reinject_open(int ifindex, struct reinject **ret, char *err, size_t errlen);
/* Detach and unload; takes NULL. */
struct reinject *reinject_close(struct reinject *ri);

/*
 * The fd of the program's egress variant, reinject_egress: the fast path's
 * next step (fastpath_set_next()), owned by ri.  -EOPNOTSUPP with the
 * reason in err where the kernel refused it (reinject itself runs).
 */
int reinject_egress_fd(const struct reinject *ri, char *err, size_t errlen);

/* "tcx" or "tc". */
const char *reinject_attach_name(const struct reinject *ri);

struct reinject_totals {
	uint64_t redirected;	/* the host's own, sent out of the uplink */
	uint64_t forwarded;	/* another host's, left to the kernel's forwarding */
	uint64_t other;		/* left to the kernel: TTL, MTU, route into the tun, not IP */
	uint64_t dropped;
	/* Of redirected: sent from the tun's egress (the fast path's, fastpath_set_next()). */
	uint64_t direct;
	/*
	 * Reverse lookups of a packet's source skipped: the answer kept from
	 * an earlier packet of the same source in the same jiffy.
	 */
	uint64_t source_known;
	/*
	 * Forward lookups skipped: the answer kept from an earlier packet with
	 * the same addresses, ports and tun in the same jiffy.
	 */
	uint64_t route_known;
};
int reinject_totals(struct reinject *ri, struct reinject_totals *ret);

#endif
