/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Live trace and packet capture: subscribers that want an event for each
 * packet the chain handles.  For each one this module filters, formats a
 * trace line or pcapng blocks and hands the bytes to the subscriber's sink.
 * A sink that has no room refuses the bytes whole; the loss is counted and
 * told in-band ("lost=N" before the next trace line, epb_dropcount on the
 * next captured packet).  No I/O, no logging, nothing that can block.
 */
#ifndef IPMODD_MONITOR_H
#define IPMODD_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "ctlproto.h"
#include "packet.h"
#include "pcapng.h"
#include "rule.h"

#define MONITOR_LINE_MAX 768		/* one trace line, "trace=" and '\n' included */
#define MONITOR_SNAPLEN_DEFAULT 65535

enum monitor_kind {
	MONITOR_TRACE,
	MONITOR_CAPTURE,
};

enum {
	MONITOR_BEFORE = 1 << 0,	/* the packet as read from the tun */
	MONITOR_AFTER = 1 << 1,		/* what was written back for it */
};

/* What a subscriber asked for. */
struct monitor_opts {
	enum monitor_kind kind;
	char rule[RULE_NAME_MAX];	/* only packets that matched this rule; "" any */
	struct rule *filter;		/* trace: match keys; NULL: any.  Owned. */
	unsigned int when;		/* capture: MONITOR_BEFORE | MONITOR_AFTER */
	uint64_t count;			/* capture: packets to send, 0 no limit */
	uint32_t snaplen;		/* capture: bytes kept of each packet */
};

/*
 * Read a "trace=1" or "capture=<rule|all>" request into o.  Trace takes
 * rule=NAME and match keys of the rule vocabulary; capture takes when=
 * before|after|both, count=N and snaplen=N.  Returns -EINVAL with a message
 * naming the line in err.  On success the caller owns o->filter
 * (monitor_opts_done()).
 */
int monitor_opts_parse(const struct ctl_request *req, struct monitor_opts *o, char *err,
		       size_t errlen);
void monitor_opts_done(struct monitor_opts *o);

/*
 * A sink: write() takes len bytes whole and returns 0, or takes nothing and
 * returns < 0 (-ENOBUFS: no room now).  end() is called once a capture has
 * sent its count; the sink should then close, and the subscriber gets
 * nothing more.  Neither may call monitor_remove() on their subscriber: the
 * monitor still holds it; remove it later, from the event loop.
 */
struct monitor_sink {
	int (*write)(void *userdata, const void *data, size_t len);
	void (*end)(void *userdata);
	void *userdata;
};

struct monitor;
struct monitor_sub;

int monitor_new(struct monitor **ret);
/* Frees the subscribers too, without calling their end(). */
struct monitor *monitor_free(struct monitor *m);

/*
 * Subscribe; takes over o->filter.  A capture's pcapng header is written to
 * the sink at once (-ENOBUFS if it does not fit).
 */
int monitor_add(struct monitor *m, struct monitor_opts *o, const struct monitor_sink *sink,
		struct monitor_sub **ret);
void monitor_remove(struct monitor_sub *s);

/* Any subscriber, and any that captures packets as read: check before building an event. */
bool monitor_active(const struct monitor *m);
bool monitor_wants_before(const struct monitor *m);
/*
 * Whether a subscriber may want a packet of a rule that rule_seen() says
 * this event source may not see: one without rule= wants any packet, one
 * with rule=NAME only those that matched NAME.
 */
bool monitor_wants_unseen(const struct monitor *m, bool (*rule_seen)(void *userdata, const char *rule),
			  void *userdata);

struct monitor_event {
	uint64_t time_ns;		/* CLOCK_REALTIME */
	const struct pkt *p;		/* after the chain (parsed; addresses unchanged) */
	const uint8_t *before;		/* the packet as read, when monitor_wants_before() */
	size_t before_len;
	const uint8_t *after;		/* what was written back, NULL when nothing */
	size_t after_len;
	const struct chain *chain;	/* that ran, and its generation */
	unsigned int generation;
	const struct chain_trace *trace;
	const struct chain_impair *impair;	/* what impairment did; NULL or !impaired: none */
	unsigned int surgery_out;	/* packets a cutting rule sent for it (0: not cut) */
};

void monitor_event(struct monitor *m, const struct monitor_event *ev);

/* Formatting, exposed for tests. */

/*
 * The words of a trace line (no "trace=", no '\n'); returns the length,
 * truncating.  A packet that an impairing rule handled ends in
 * " impair=EVENTS", the comma-separated list of what happened to it, in
 * netem's order: duplicated, lost, reordered, delayed, dropped-limit,
 * corrupted ("none" for nothing), and, when a copy waits,
 * " delay=MS[,MS]": how long each copy sent waits, in milliseconds with up
 * to 3 decimals (0 for a copy that goes at once).  A packet a surgery rule
 * cut ends in " surgery-out=N": the packets sent for it (decoys, parts,
 * fragments).
 */
size_t monitor_trace_format(char *buf, size_t len, const struct monitor_event *ev);

#endif
