/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/rtnetlink.h>

#include "config.h"
#include "log.h"
#include "netlink.h"
#include "routing.h"
#include "util.h"
#include "watch.h"

#define USEC_PER_SEC 1000000ULL

struct watch {
	sd_event *event;
	struct routing *routing;
	struct nl *nl;			/* notifications */
	sd_event_source *io, *timer;
	struct watch_backoff backoff;
	bool concerned;			/* set by the notification callback */
	watch_extra_fn extra;		/* the inbound filters */
	void *extra_data;

	uint64_t restores, backoffs, checks, overruns;
	char last[ROUTING_ITEM_MAX];
	char error[CONFIG_ERR_MAX];
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t watch_backoff_after(struct watch_backoff *b, uint64_t now, enum watch_outcome o)
{
	if (o == WATCH_NOTHING) {
		if (b->delay) {
			b->last_delay = b->delay;
			b->ended = now;
			b->delay = 0;
			b->n = 0;
		}
		return 0;
	}

	b->rounds[b->next] = now;
	b->next = (b->next + 1) % WATCH_BURST;
	if (b->n < WATCH_BURST)
		b->n++;
	/* Gone again at the end of a back-off (or still failing): wait longer. */
	if (b->delay) {
		b->delay = min_u64(b->delay * 2, WATCH_BACKOFF_MAX_USEC);
		return b->delay;
	}
	/* rounds[next] is the oldest of the last WATCH_BURST rounds. */
	if (o == WATCH_FAILED ||
	    (b->n == WATCH_BURST && now - b->rounds[b->next] < WATCH_WINDOW_USEC)) {
		if (b->last_delay && now - b->ended < WATCH_RESUME_USEC)
			b->delay = min_u64(b->last_delay * 2, WATCH_BACKOFF_MAX_USEC);
		else
			b->delay = WATCH_BACKOFF_MIN_USEC;
	}
	return b->delay;
}

/* Run the check at `at` at the latest: an armed earlier one stays. */
static void watch_arm(struct watch *w, uint64_t at)
{
	uint64_t armed;
	int enabled = SD_EVENT_OFF, r;

	if (sd_event_source_get_enabled(w->timer, &enabled) >= 0 && enabled != SD_EVENT_OFF &&
	    sd_event_source_get_time(w->timer, &armed) >= 0 && armed <= at)
		return;
	r = sd_event_source_set_time(w->timer, at);
	if (r >= 0)
		r = sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
	if (r < 0)
		log_errno(LOG_WARNING, r, "arming the routing check");
}

static uint64_t watch_now(const struct watch *w)
{
	uint64_t now = 0;

	sd_event_now(w->event, CLOCK_MONOTONIC, &now);
	return now;
}

static void watch_report(struct watch *w, int r, const char *item, const char *err,
			 uint64_t was, uint64_t delay)
{
	char more[32] = "";

	if (r > 1)
		snprintf(more, sizeof(more), " and %d more", r - 1);
	if (r > 0 && !was && !delay)
		log_notice("restored %s%s: another program removed or changed it", item, more);
	else if (r > 0 && !was)
		log_warning("restored %s%s again: %d times within %llu s, another program keeps "
			    "removing it (systemd-networkd without ManageForeignRoutingPolicyRules=no? "
			    "NetworkManager? a script?); backing off, next check in %llu s",
			    item, more, WATCH_BURST, WATCH_WINDOW_USEC / USEC_PER_SEC,
			    (unsigned long long)(delay / USEC_PER_SEC));
	else if (r > 0)
		log_debug("restored %s%s again after a back-off; next check in %llu s", item, more,
			  (unsigned long long)(delay / USEC_PER_SEC));
	else if (r < 0 && strcmp(err, w->error) != 0)
		log_warning("restoring the routing failed: %s; next attempt in %llu s", err,
			    (unsigned long long)(delay / USEC_PER_SEC));
	else if (r < 0)
		log_debug("restoring the routing failed again: %s; next attempt in %llu s", err,
			  (unsigned long long)(delay / USEC_PER_SEC));
	else if (was)
		log_notice("the routing stayed in place: back-off over");
}

void watch_log_rp_filter(struct routing *rt)
{
	uint32_t old, effective;
	char name[IFNAMSIZ];

	while (routing_rp_filter_take(rt, name, sizeof(name), &old, &effective)) {
		if (strcmp(name, "all") == 0)
			log_notice("rp_filter: all %u -> 0 while ipmodd runs (packets written back to the "
				   "tun fail any reverse-path check there; every other interface keeps "
				   "a filter of its own)", old);
		else if (effective == 1)
			log_notice("rp_filter: %s strict -> loose while ipmodd runs (inbound IPv4 fails "
				   "the strict check once diverted; net.ipv4.conf.%s.rp_filter was %u)",
				   name, name, old);
		else
			log_info("rp_filter: %s keeps loose mode, now its own (net.ipv4.conf.%s.rp_filter "
				 "%u -> 2) while ipmodd runs", name, name, old);
	}
}

static int on_check(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct watch *w = userdata;
	char item[ROUTING_ITEM_MAX], err[CONFIG_ERR_MAX] = "";
	uint64_t now = watch_now(w), was = w->backoff.delay, delay;
	enum watch_outcome o;
	int r;

	w->checks++;
	r = routing_repair(w->routing, item, sizeof(item), err, sizeof(err));
	if (r >= 0 && w->extra) {
		char xitem[ROUTING_ITEM_MAX];
		int x = w->extra(w->extra_data, xitem, sizeof(xitem), err, sizeof(err));

		if (x < 0)
			r = x;
		else if (x > 0) {
			r += x;
			snprintf(item, sizeof(item), "%s", xitem);
		}
	}
	watch_log_rp_filter(w->routing);
	o = r < 0 ? WATCH_FAILED : r > 0 ? WATCH_RESTORED : WATCH_NOTHING;
	delay = watch_backoff_after(&w->backoff, now, o);
	watch_report(w, r, item, err, was, delay);

	if (r > 0) {
		w->restores += (uint64_t)r;
		snprintf(w->last, sizeof(w->last), "%s", item);
	}
	if (delay && !was)
		w->backoffs++;
	snprintf(w->error, sizeof(w->error), "%s", r < 0 ? err : "");
	watch_arm(w, now + (delay ? delay : WATCH_PERIOD_USEC));
	return 0;
}

static int on_notification(const struct nlmsghdr *nlh, void *userdata)
{
	struct watch *w = userdata;

	if (!w->concerned && routing_event_concerns(w->routing, nlh))
		w->concerned = true;
	if (w->extra && (nlh->nlmsg_type == RTM_DELTFILTER || nlh->nlmsg_type == RTM_DELQDISC))
		w->concerned = true;
	return 0;
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct watch *w = userdata;
	int r = 0;

	w->concerned = false;
	for (int i = 0; i < WATCH_BATCH; i++) {
		r = nl_receive(w->nl, on_notification, w);
		if (r == -EAGAIN || r == -EINTR)
			break;
		/* Lost notifications: only a check tells what happened. */
		if (r == -ENOBUFS) {
			w->overruns++;
			w->concerned = true;
			continue;
		}
		if (r < 0) {
			/* Not to spin on it: the periodic check stays. */
			log_errno(LOG_WARNING, r, "reading routing notifications; checking every %llu s only",
				  WATCH_PERIOD_USEC / USEC_PER_SEC);
			sd_event_source_set_enabled(s, SD_EVENT_OFF);
			break;
		}
	}
	/* While backing off, the check waits for its end: the timer is set for it. */
	if (w->concerned && !w->backoff.delay)
		watch_arm(w, watch_now(w) + WATCH_DEBOUNCE_USEC);
	return 0;
}

struct watch *watch_free(struct watch *w)
{
	if (!w)
		return NULL;
	sd_event_source_disable_unref(w->io);
	sd_event_source_disable_unref(w->timer);
	nl_close(w->nl);
	sd_event_unref(w->event);
	free(w);
	return NULL;
}

int watch_new(sd_event *e, struct routing *rt, struct watch **ret)
{
	static const unsigned int groups[] = {
		RTNLGRP_LINK, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE, RTNLGRP_IPV4_ROUTE,
		RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV4_NETCONF, RTNLGRP_IPV6_NETCONF,
		RTNLGRP_TC,	/* the inbound filters (watch_set_extra) */
	};
	struct watch *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->event = sd_event_ref(e);
	w->routing = rt;
	r = nl_open_events(groups, ARRAY_SIZE(groups), &w->nl);
	if (r < 0)
		goto fail;
	r = sd_event_add_io(e, &w->io, nl_fd(w->nl), EPOLLIN, on_readable, w);
	if (r < 0)
		goto fail;
	/* Accuracy 10 ms: the debounce is short on purpose. */
	r = sd_event_add_time(e, &w->timer, CLOCK_MONOTONIC, UINT64_MAX, 10000, on_check, w);
	if (r < 0)
		goto fail;
	/* What changed between the installation and the subscription is seen by a first check. */
	watch_arm(w, watch_now(w) + WATCH_DEBOUNCE_USEC);
	*ret = w;
	return 0;
fail:
	watch_free(w);
	return r;
}

void watch_set_extra(struct watch *w, watch_extra_fn fn, void *userdata)
{
	w->extra = fn;
	w->extra_data = userdata;
	/* What went between the attachment and now. */
	watch_arm(w, watch_now(w) + WATCH_DEBOUNCE_USEC);
}

void watch_get_status(const struct watch *w, struct watch_status *ret)
{
	uint64_t at = 0, now;

	memset(ret, 0, sizeof(*ret));
	if (!w) {
		ret->state = "off";
		ret->last = ret->error = "";
		return;
	}
	now = watch_now(w);
	ret->state = w->error[0] ? "failed" : w->backoff.delay ? "backoff" : "ok";
	ret->restores = w->restores;
	ret->backoffs = w->backoffs;
	ret->checks = w->checks;
	ret->overruns = w->overruns;
	if (w->backoff.delay && sd_event_source_get_time(w->timer, &at) >= 0 && at > now)
		ret->retry_usec = at - now;
	ret->last = w->last;
	ret->error = w->error;
}
