/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Restoration of the routing: a second rtnetlink socket, subscribed to link,
 * rule, route and netconf notifications, on the event loop.  A notification
 * that may concern what routing installed (routing_event_concerns()) asks
 * for a check WATCH_DEBOUNCE_USEC later, since changes come in bursts (a
 * flushed table, a link going down); the check puts back what is missing
 * (routing_repair()).  Lost notifications (a full socket buffer) ask for a
 * check too, and one runs every WATCH_PERIOD_USEC for what the kernel does
 * not announce (accept_local written to /proc).
 *
 * Another program that keeps removing our state is not fought for ever: after
 * WATCH_BURST restoring rounds within WATCH_WINDOW_USEC, the watch backs off
 * and checks only when the back-off ends, WATCH_BACKOFF_MIN_USEC at first,
 * doubled while the state keeps disappearing, at most WATCH_BACKOFF_MAX_USEC;
 * a check that finds everything in place ends it.  A failed restoration backs
 * off the same way.  One log line per event, not per retry.
 */
#ifndef IPMODD_WATCH_H
#define IPMODD_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "routing.h"

#define WATCH_DEBOUNCE_USEC (100 * 1000ULL)
#define WATCH_PERIOD_USEC (60 * 1000000ULL)
#define WATCH_BATCH 64				/* datagrams read per wake-up */
#define WATCH_BURST 5
#define WATCH_WINDOW_USEC (120 * 1000000ULL)
#define WATCH_BACKOFF_MIN_USEC (5 * 1000000ULL)
#define WATCH_BACKOFF_MAX_USEC (320 * 1000000ULL)
/* A fight that starts again this soon after the last one ended resumes its back-off. */
#define WATCH_RESUME_USEC (20 * 60 * 1000000ULL)

/* The back-off policy, pure. */
enum watch_outcome {
	WATCH_NOTHING,		/* everything was in place */
	WATCH_RESTORED,		/* something was put back */
	WATCH_FAILED,		/* putting it back failed */
};

struct watch_backoff {
	uint64_t rounds[WATCH_BURST];	/* when the last restoring rounds ran, a ring */
	unsigned int n, next;
	uint64_t delay;			/* the current back-off, 0: none */
	uint64_t last_delay, ended;	/* the previous back-off's, and when it ended */
};

/* After a check at now (usec): the back-off to wait before the next one, 0 for none. */
uint64_t watch_backoff_after(struct watch_backoff *b, uint64_t now, enum watch_outcome o);

struct watch;

/* Watch what rt installed, on e; the first check runs a moment later. */
int watch_new(sd_event *e, struct routing *rt, struct watch **ret);
/* Before routing_free(): its own changes are no concern of the watch.  NULL is fine. */
struct watch *watch_free(struct watch *w);

struct watch_status {
	const char *state;	/* "ok", "backoff" (another program keeps removing it), "failed";
				 * "off" without a watch (NULL) */
	uint64_t restores;	/* items put back */
	uint64_t backoffs;	/* times it started backing off */
	uint64_t checks;
	uint64_t overruns;	/* notifications lost */
	uint64_t retry_usec;	/* until the next check while backing off, else 0 */
	const char *last;	/* the last item put back, "" */
	const char *error;	/* why the last restoration failed, "" */
};

void watch_get_status(const struct watch *w, struct watch_status *ret);

/*
 * What else the watch keeps in place (the inbound tc filters): a tc filter
 * or qdisc removal asks for a check, and each check calls fn after the
 * routing's repair.  fn returns how many items it put back (naming the last
 * in item) or -errno with err.
 */
typedef int (*watch_extra_fn)(void *userdata, char *item, size_t itemlen, char *err,
			      size_t errlen);
void watch_set_extra(struct watch *w, watch_extra_fn fn, void *userdata);

/* Log each interface whose rp_filter routing made loose, once (routing_rp_filter_take()). */
void watch_log_rp_filter(struct routing *rt);

#endif
