/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inbound diversion (ipmodd.conf(5), INBOUND): loads src/bpf/inbound.bpf.c
 * once per listed interface, attaches divert to the interface's ingress and
 * reinject_in to its inbound tun's ingress; divert tail-calls the inbound
 * fast path when one is set (inbound_set_fast()).  The tun itself is the caller's
 * (tun.c).  No logging: failures return -errno and a message naming the step.
 */
#ifndef IPMODD_INBOUND_H
#define IPMODD_INBOUND_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct inbound;

/* skb->mark of re-injected packets while they pass the uplink's ingress (bpf/inbound.h). */
#define INBOUND_MARK_VALUE 0x69706d69u

/* Whether this ipmodd was built with it (the fast path's toolchain: clang, bpftool, libbpf). */
bool inbound_built(void);

/*
 * The inbound tun's name for interface index idx: tun_name cut so that
 * "i" and idx fit in IFNAMSIZ - 1 characters ("ipmod0" 0 -> "ipmod0i0").
 */
static inline void inbound_tun_name(const char *tun_name, unsigned int idx, char buf[IFNAMSIZ])
{
	char suffix[16];
	size_t n = strnlen(tun_name, IFNAMSIZ - 1), s;

	s = (size_t)snprintf(suffix, sizeof(suffix), "i%u", idx);
	if (n + s > IFNAMSIZ - 1)
		n = IFNAMSIZ - 1 - s;
	memcpy(buf, tun_name, n);
	memcpy(buf + n, suffix, s + 1);
}

struct inbound_params {
	const char *uplink;		/* the interface's name */
	int tun_ifindex;		/* its inbound tun */
	bool fail_closed;		/* routing.failure = closed: drop rather than pass */
	uint32_t stall_timeout_ms;	/* heartbeat older than this: fail; 0 never */
	bool force_tc;			/* netlink tc filters even where tcx exists */
};

/*
 * Load and attach: tcx links where the kernel has them (they go with the
 * daemon) unless force_tc, else netlink tc filters (replacing leftovers).
 * -ENODEV: no such uplink; -EPFNOSUPPORT: the uplink is not Ethernet.
 */
int inbound_open(const struct inbound_params *p, struct inbound **ret, char *err, size_t errlen);
/* Detach and unload; takes NULL. */
struct inbound *inbound_close(struct inbound *ib);

/* "tcx" or "tc". */
const char *inbound_attach_name(const struct inbound *ib);
int inbound_uplink_ifindex(const struct inbound *ib);

/* The heartbeat: now (CLOCK_MONOTONIC ns, bpf_ktime_get_ns()'s timebase). */
void inbound_heartbeat(struct inbound *ib, uint64_t now_ns);

struct inbound_totals {
	uint64_t diverted;	/* taken for ipmodd: the inbound fast path, or the inbound tun */
	uint64_t passed;	/* not diverted: not IP, ND/RA, multicast, broadcast, another host's */
	uint64_t returned;	/* re-injected packets passing the uplink's ingress again */
	uint64_t failed_open;	/* passed because the daemon stalled or its tun was gone */
	uint64_t reinjected;	/* written by the daemon, handed to the uplink's ingress */
	uint64_t dropped;	/* failure=closed, or a rewrite that failed */
};
int inbound_totals(struct inbound *ib, struct inbound_totals *ret);

/*
 * The inbound fast path on the uplink's ingress: divert tail-calls
 * prog_fd (fastpath_uplink_fd()) for every packet it takes, and the packets
 * that program punts go on to the inbound tun.  prog_fd < 0: none, every
 * packet goes to the tun.
 */
int inbound_set_fast(struct inbound *ib, int prog_fd, char *err, size_t errlen);

/*
 * Whether the uplink's tc ingress filter is still there (tc mode; tcx
 * links cannot be removed from outside): 1 yes, 0 no, -errno.
 */
int inbound_filter_present(struct inbound *ib);
/* Put it back (tc mode). */
int inbound_reattach(struct inbound *ib, char *err, size_t errlen);

/*
 * ipmodd --cleanup: remove every tc ingress filter of ours (by handle and
 * program name) on every interface.  Returns how many, or -errno.
 */
int inbound_cleanup(char *err, size_t errlen);

#endif
