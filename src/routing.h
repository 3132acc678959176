/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel state ipmodd owns: the tun link's MTU/up state and device
 * sysctls, the policy rules and the routes of its table.  Installed with
 * rollback, removed on exit, and cleaned up after a crash.
 */
#ifndef IPMODD_ROUTING_H
#define IPMODD_ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "netlink.h"

/* rtm_protocol of the routes ipmodd adds ("ip route show proto 73"). */
#define ROUTING_RTPROT 73
/* At most this many interfaces whose strict rp_filter is made loose. */
#define ROUTING_RPF_MAX 4096
#define ROUTING_STATE_PATH_MAX 160

struct routing;

/* routing_install(): the re-injection program is attached to the tun's ingress. */
#define ROUTING_REINJECT 1u

/*
 * Bring the tun link up with cfg->mtu, set its sysctls (forwarding,
 * accept_local, rp_filter for IPv4; force_forwarding for IPv6 where the
 * kernel has it, and with ROUTING_REINJECT in flags the tun's own IPv6
 * forwarding flag, which the program's route lookup needs), add the
 * bypass rule "iif TUN lookup main" and the exclusions at priority P-1, the
 * diversion rules at P and the default route via the tun in table T, for each
 * enabled family.  Every request is acknowledged and checked.  On failure,
 * everything added so far is removed again, err names the step and the
 * reason ("add rule 'iif tun0 lookup main' (IPv6): File exists"), and -errno
 * is returned.
 */
int routing_install(const struct config *cfg, int ifindex, unsigned int flags,
		    struct routing **ret, char *err, size_t errlen);

/* Whether the kernel has net.ipv6.conf.TUN.force_forwarding (6.17): 1, 0 or -errno. */
int routing_has_force_forwarding(const char *tun);

/*
 * IPv4 and the reverse-path filter (DESIGN.md 6): with the diversion, an
 * inbound packet fails a strict check on the uplink (its route back is the
 * tun), and a written-back packet fails any check on the tun (a local source
 * on a device without an address).  With routing.rp-filter = "loose",
 * routing_install() gives, before the diversion, every interface but lo and
 * the tun whose effective value, max(all, dev), is not 0 a loose filter of
 * its own (2), then sets "all" to 0; routing_repair() does the same for
 * links that appear later or are changed back.  The old values are written
 * to "<control socket's directory>/<tun>.rp_filter" before any change and put
 * back by routing_free(), or after a crash by routing_cleanup() (the next
 * start, or "ipmodd --cleanup"); a value someone changed meanwhile is left
 * alone.  With "keep", routing_install() refuses (-EPERM) when an interface
 * is strict or "all" is not 0, naming it and the fix.
 *
 * routing_rp_filter_take() hands out each value changed once, for the log:
 * the interface ("all" for all), its old value and effective value.  false:
 * none new.
 */
bool routing_rp_filter_take(struct routing *r, char *name, size_t namelen, uint32_t *old,
			    uint32_t *effective);

/*
 * Remove everything routing_install() added; NULL is fine.  After
 * routing_keep_block() with routing.failure = "closed", the rules and the
 * unreachable routes stay: once the tun is closed, the diverted traffic
 * meets "unreachable" in table T instead of leaking through main.
 */
struct routing *routing_free(struct routing *r);
void routing_keep_block(struct routing *r);

/*
 * Add again the rules and routes of r that someone else removed (the kernel
 * keeps the others).  Returns how many were re-added or -errno with err set.
 */
int routing_restore(struct routing *r, char *err, size_t errlen);

/* Room for what routing_repair() names: "rule 'from all lookup 100 pref 10000' (IPv4)". */
#define ROUTING_ITEM_MAX 320

/*
 * Compare the kernel's state with what routing_install() set up, by reading
 * it (the tun link's up flag, its devconf and sysctls, dumps of the rules
 * and of table T), and put back what is missing or was changed: link up,
 * devconf, sysctls, then rules and routes in the order of installation, a
 * route in our place replaced by ours.  Every request is acknowledged.
 * Returns how many items were put back (0: everything was in place) with
 * the first named in item, or -errno with err set.
 */
int routing_repair(struct routing *r, char *item, size_t itemlen, char *err, size_t errlen);

/*
 * Whether a notification (RTNLGRP_LINK, _RULE, _ROUTE, _NETCONF) may concern
 * what routing_install() set up: one of its rules or routes deleted, another
 * route in the place of one, the tun down, its devconf or IPv6 conf changed.
 * The changes of r's own requests do not.  Pure.
 */
bool routing_event_concerns(const struct routing *r, const struct nlmsghdr *nlh);

/*
 * The rule order that keeps written-back packets from looping: fed with a
 * rule dump of one family in the kernel's order (the order of evaluation),
 * the bypass "iif TUN lookup main" at P-1 must come before every rule that
 * could send a packet from the tun to table T, and be followed by the
 * diversion rules at P.  routing_install() checks it; pure.
 */
struct routing_order {
	char tun[IFNAMSIZ];
	uint32_t priority, table;
	bool bypass;			/* the bypass came */
	unsigned int diversions;	/* rules at P looking up T after it */
	bool loop;			/* culprit looks up T before the bypass */
	struct nl_rule culprit;
};

void routing_order_init(struct routing_order *o, const char *tun, uint32_t priority,
			uint32_t table);
void routing_order_next(struct routing_order *o, const struct nl_rule *rule);
/* 0, or -ELOOP / -ENOENT with err set; diversions: how many there must be. */
int routing_order_result(const struct routing_order *o, int family, unsigned int diversions,
			 char *err, size_t errlen);

/*
 * Remove what a previous instance with this configuration may have left,
 * for both families whatever cfg enables: rules at priority P that look up
 * table T, rules at P-1 that look up main, every route in table T, and a
 * persistent tun of that name that no process has open.  Returns the number
 * of entries removed (0 when there was nothing) or -errno.
 *
 * With routing.failure = "closed", routing_cleanup() keeps the block (the
 * rules and the unreachable routes; routing_install() takes them over), so
 * that traffic never leaks between two instances; routing_cleanup_all()
 * removes it too.
 */
int routing_cleanup(const struct config *cfg, char *err, size_t errlen);
int routing_cleanup_all(const struct config *cfg, char *err, size_t errlen);

/*
 * Delete the diversion rules alone (priority P, lookup T), both families:
 * traffic takes the main table again.  routing_restore() puts them back.
 * Returns how many were deleted, or -errno.
 */
int routing_remove_diversion(const struct config *cfg, char *err, size_t errlen);

/*
 * Whether a process holds the tun cfg names: a tun without IFF_PERSIST
 * exists only while a file is attached, and a persistent one has carrier or
 * queues then.  Returns the queues attached (at least 1) when held, 0 when
 * free or absent, -errno.  Run before touching anything, so that a second
 * instance never attaches a queue of the first's tun (TUNSETIFF lets any
 * IFF_MULTI_QUEUE open attach) nor takes its routing for stale.
 */
int routing_tun_held(const struct config *cfg);

#endif
