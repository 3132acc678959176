/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Trace-driven links (rate="@file"), after Mahimahi's link shell (mm-link):
 * the trace, its parser, the link that gives each packet its departure time
 * from the trace's delivery opportunities, and its queue (droptail, CoDel).
 * No logging, no clock reads (times are ns on the caller's monotonic clock);
 * the one read is tl_trace_load() of the file a rule names.
 *
 * The trace format is Mahimahi's: one decimal integer per line, a time in
 * milliseconds at which one delivery opportunity of TL_OPP_BYTES occurs;
 * the same time on several lines is several opportunities in that
 * millisecond; times never decrease; the last time is the trace's period
 * (above 0): the trace repeats from its start after it, for ever.
 */
#ifndef IPMODD_TRACELINK_H
#define IPMODD_TRACELINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Bytes one opportunity carries: Mahimahi's PACKET_SIZE, 1504, counted on
 * its TUN frames, the IP packet plus a 4-byte packet-information header.  A
 * packet costs its IP length plus TL_FRAME_OVERHEAD, so a full 1500-byte IP
 * packet uses exactly one opportunity, as in mm-link: one opportunity per
 * ms is 12 Mbit/s of IP.
 */
#define TL_OPP_BYTES 1504
#define TL_FRAME_OVERHEAD 4

#define TL_TRACE_FILE_MAX (32u << 20)	/* bytes of a trace file */
#define TL_TRACE_LINES_MAX 4000000u	/* opportunities in one period */
#define TL_TRACE_MS_MAX 604800000u	/* a time in the trace: 7 days */

/* Immutable once parsed, and shared (tl_trace_share()): each holder frees its reference. */
struct tl_trace {
	uint32_t *ms;		/* n times, nondecreasing */
	size_t n;
	uint64_t period_ns;	/* ms[n - 1] in ns, > 0 */
	unsigned int *refs;	/* the block ms lives in; atomic */
};

/*
 * Parse a trace from buf[0..len).  On failure returns -EINVAL (or -ENOMEM,
 * -E2BIG over the limits), stores the 1-based line in *ret_line (0: the file
 * as a whole) and writes the reason into err.  Lines end in "\n" (a last
 * line without one is read too); "\r\n" is accepted.  Empty lines,
 * comments, signs and spaces are refused, as Mahimahi refuses them.
 */
int tl_trace_parse(const char *buf, size_t len, struct tl_trace *ret, size_t *ret_line,
		   char *err, size_t errlen);
/* Read and parse path; err then reads "PATH:LINE: reason" (or "PATH: reason"). */
int tl_trace_load(const char *path, struct tl_trace *ret, char *err, size_t errlen);
/* Drop a reference (the last frees the times); t is zeroed. */
void tl_trace_free(struct tl_trace *t);
/* *dst becomes another reference to src's times: no copy, no read. */
void tl_trace_share(struct tl_trace *dst, const struct tl_trace *src);

/* ---- CoDel (RFC 8289) --------------------------------------------------- */

#define TL_CODEL_TARGET_US 5000
#define TL_CODEL_INTERVAL_US 100000

struct tl_codel {
	uint64_t target_ns, interval_ns;
	uint64_t first_above_ns;	/* 0: sojourn below target (or nothing queued) */
	uint64_t drop_next_ns;
	uint32_t count, lastcount;
	bool dropping;
};

void tl_codel_init(struct tl_codel *c, uint64_t target_ns, uint64_t interval_ns);
/* The queue ran empty: what RFC 8289's dequeue does when nothing is queued. */
void tl_codel_empty(struct tl_codel *c);
/*
 * RFC 8289's dequeue, one packet at a time: a packet leaves the queue at
 * now_ns after sojourn_ns in it, with backlog_bytes queued (see
 * tl_link_send() for which bytes).  True: drop it.  Several packets may leave at
 * the same now_ns; called in the order they leave, this gives the RFC's
 * decisions: dropping starts after the sojourn stayed at or above target
 * for an interval, and then drops at interval / sqrt(count) spacing until a
 * packet's sojourn is below target (or the backlog is one MTU or less).
 */
bool tl_codel_drop(struct tl_codel *c, uint64_t now_ns, uint64_t sojourn_ns,
		   uint64_t backlog_bytes);

/* ---- the link ------------------------------------------------------------ */

enum tl_aqm {
	TL_AQM_DROPTAIL,
	TL_AQM_CODEL,
};

struct tl_config {
	uint32_t queue_pkts;	/* 1.. */
	uint64_t queue_bytes;	/* 0: no byte limit */
	int aqm;		/* enum tl_aqm */
	uint64_t codel_target_ns, codel_interval_ns;
};

struct tl_qent {
	uint64_t arrive_ns, leave_ns, depart_ns;
	uint32_t cost;
};

struct tl_link {
	struct tl_trace tr;
	struct tl_config cfg;
	bool started;
	uint64_t base_ns;	/* the trace's time 0: the first packet's arrival */
	/* The opportunity the last packet finished in, and its bytes left. */
	bool busy_valid;
	uint64_t cur_ns;
	uint32_t cur_left;
	size_t next;		/* the opportunity after it: index, and the start of its period */
	uint64_t next_base_ns;
	/* Packets in the link (departure after now): a FIFO ring of queue_pkts. */
	struct tl_qent *q;
	uint32_t qhead, qn;
	uint64_t qbytes;
	struct tl_codel codel;
	uint64_t dropped_queue, dropped_aqm;
};

/* Takes tr (on success and on failure); -EINVAL, -ENOMEM. */
int tl_link_init(struct tl_link *l, struct tl_trace *tr, const struct tl_config *cfg);
void tl_link_done(struct tl_link *l);
/* Carry the state of old (same trace and config) into l, which was just initialized. */
void tl_link_inherit(struct tl_link *l, const struct tl_link *old);

/*
 * A packet of len bytes (IP) arrives at now_ns.  Returns 0 and its
 * departure time in *ret_ns: the time of the opportunity in which its last
 * byte goes; -ENOBUFS when the queue is full (droptail, counted in
 * dropped_queue); -ECONNRESET when CoDel drops it (dropped_aqm).
 *
 * Mahimahi's link, decided when the packet arrives (the queue is FIFO and
 * the schedule fixed, so its departure is known then):
 * - opportunities at or before the arrival are gone: an opportunity that
 *   finds the queue empty is lost, and so are the bytes of an opportunity
 *   left over when the queue runs empty;
 * - a packet that finds the link busy takes the bytes left in the
 *   opportunity its predecessor finished in, then whole opportunities: the
 *   bytes of one opportunity are shared by small packets, and a packet may
 *   span two or more (never more than TL_OPP_BYTES bytes wait for one);
 * - the trace's time 0 is the arrival of the link's first packet.
 * CoDel runs at each packet's dequeue time, the time of the first
 * opportunity it uses, with its sojourn up to then; a dropped packet uses
 * no bytes.  The one difference from a CoDel at dequeue: the RFC's "queue
 * at most one MTU" test (bytes() <= MAXPACKET, TL_OPP_BYTES here) sees the
 * bytes that were ahead of the packet when it arrived, as the packets that
 * will be behind it at its dequeue have not arrived yet.
 */
int tl_link_send(struct tl_link *l, uint64_t now_ns, size_t len, uint64_t *ret_ns);
/* Packets in the link's queue at now_ns. */
uint32_t tl_link_queued(struct tl_link *l, uint64_t now_ns);

#endif
