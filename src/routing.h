/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel state ipmodd owns: the tun link's MTU/up state and device
 * sysctls, the policy rules and the routes of its table.  Installed with
 * rollback, removed on exit, and cleaned up after a crash.
 */
#ifndef IPMODD_ROUTING_H
#define IPMODD_ROUTING_H

#include <stddef.h>

#include "config.h"

/* rtm_protocol of the routes ipmodd adds ("ip route show proto 73"). */
#define ROUTING_RTPROT 73

struct routing;

/*
 * Bring the tun link up with cfg->mtu, set its sysctls (forwarding,
 * accept_local, rp_filter for IPv4; force_forwarding for IPv6), add the
 * bypass rule "iif TUN lookup main" and the exclusions at priority P-1, the
 * diversion rules at P and the default route via the tun in table T, for each
 * enabled family.  Every request is acknowledged and checked.  On failure,
 * everything added so far is removed again, err names the step and the
 * reason ("add rule 'iif tun0 lookup main' (IPv6): File exists"), and -errno
 * is returned.
 */
int routing_install(const struct config *cfg, int ifindex, struct routing **ret, char *err,
		    size_t errlen);

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

#endif
