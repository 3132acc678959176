/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The manager owns the event loop and every object the daemon runs: the
 * configuration, the tun device, the routing it installed and the chain.
 */
#ifndef IPMODD_MANAGER_H
#define IPMODD_MANAGER_H

#include <stdint.h>

#include "config.h"
#include "packet.h"

struct manager;

struct manager_stats {
	uint64_t rx_packets, rx_bytes;		/* read from the tun */
	uint64_t tx_packets, tx_bytes;		/* written back */
	uint64_t malformed[PKT_CLASS_MAX];	/* dropped by pkt_parse() class */
	uint64_t dropped;			/* dropped by a rule */
	uint64_t read_errors, write_errors;
};

/* Takes ownership of cfg, also on failure. */
int manager_new(struct config *cfg, struct manager **ret);
struct manager *manager_free(struct manager *m);

/* Open the tun, clean up stale state, install routing, announce readiness. */
int manager_start(struct manager *m);
/* Run the event loop until SIGTERM/SIGINT; returns the exit code. */
int manager_run(struct manager *m);

#endif
