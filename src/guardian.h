/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guardian: a small child process that watches the daemon's heartbeat
 * in shared memory.  When the packet loop has not made progress for the
 * stall timeout (the daemon hangs, is stopped with SIGSTOP, or spins), it
 * removes the diversion rules, so that the host's traffic takes the main
 * table again (fail-open).  It marks that in the shared page; the daemon,
 * once it runs again, puts the rules back (routing_restore()) and clears the
 * mark.  A separate process, because a stopped or hung daemon runs no code.
 * It dies with the daemon (PR_SET_PDEATHSIG) and holds no descriptor of it.
 * No logging.
 */
#ifndef IPMODD_GUARDIAN_H
#define IPMODD_GUARDIAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct guardian;

/* Fork the guardian for cfg (its priority and table, cfg->stall_timeout_ms > 0). */
int guardian_start(const struct config *cfg, struct guardian **ret);
/* Kill and reap it; NULL is fine. */
struct guardian *guardian_stop(struct guardian *g);
pid_t guardian_pid(const struct guardian *g);

/* The packet loop made progress (or is idle with nothing to do). */
void guardian_beat(struct guardian *g);
/*
 * How many times the guardian has removed the diversion since the last call
 * (0: it did not); the caller restores it.
 */
unsigned int guardian_take_trips(struct guardian *g);

#endif
