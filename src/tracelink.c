/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Trace-driven links: the trace, the link, CoDel.  See tracelink.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "impair.h"
#include "tracelink.h"
#include "util.h"

#define NS_PER_MS 1000000ULL

/* ---- the trace ------------------------------------------------------------- */

static int trace_fail(size_t line, size_t *ret_line, char *err, size_t errlen, int r,
		      const char *msg)
{
	if (ret_line)
		*ret_line = line;
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return r;
}

int tl_trace_parse(const char *buf, size_t len, struct tl_trace *ret, size_t *ret_line,
		   char *err, size_t errlen)
{
	_cleanup_(freep) unsigned int *block = NULL;
	uint32_t *ms;
	size_t lines = 0, n = 0, line = 0, i = 0;
	char msg[96];

	if (err && errlen)
		err[0] = '\0';
	if (len == 0)
		return trace_fail(0, ret_line, err, errlen, -EINVAL, "empty trace");
	/* Lines: the newlines, plus a last line without one. */
	for (size_t k = 0; k < len; k++)
		lines += buf[k] == '\n';
	if (buf[len - 1] != '\n')
		lines++;
	if (lines > TL_TRACE_LINES_MAX) {
		snprintf(msg, sizeof(msg), "more than %u lines", TL_TRACE_LINES_MAX);
		return trace_fail(0, ret_line, err, errlen, -E2BIG, msg);
	}
	/* One block: the reference count, then the times (aligned: both are 4 bytes). */
	block = malloc(sizeof(*block) + lines * sizeof(*ms));
	if (!block)
		return -ENOMEM;
	ms = (uint32_t *)(block + 1);

	while (i < len) {
		size_t end = i, digits;
		uint64_t v = 0;

		line++;
		while (end < len && buf[end] != '\n')
			end++;
		/* Line i..end, without a "\r" before its newline. */
		digits = end - i;
		if (digits && buf[i + digits - 1] == '\r')
			digits--;
		if (digits == 0)
			return trace_fail(line, ret_line, err, errlen, -EINVAL,
					  "empty line (one time in ms per line)");
		for (size_t k = 0; k < digits; k++) {
			char c = buf[i + k];

			if (c < '0' || c > '9')
				return trace_fail(line, ret_line, err, errlen, -EINVAL,
						  "not a time in ms (digits only)");
			v = v * 10 + (uint64_t)(c - '0');
			if (v > TL_TRACE_MS_MAX) {
				snprintf(msg, sizeof(msg), "time above %u ms (7 days)",
					 TL_TRACE_MS_MAX);
				return trace_fail(line, ret_line, err, errlen, -EINVAL, msg);
			}
		}
		if (n && v < ms[n - 1])
			return trace_fail(line, ret_line, err, errlen, -EINVAL,
					  "time goes back (times must not decrease)");
		ms[n++] = (uint32_t)v;
		i = end + 1;
	}
	if (ms[n - 1] == 0)
		return trace_fail(line, ret_line, err, errlen, -EINVAL,
				  "the last time (the period) must be above 0");
	*block = 1;
	ret->ms = ms;
	ret->n = n;
	ret->period_ns = (uint64_t)ms[n - 1] * NS_PER_MS;
	ret->refs = block;
	block = NULL;
	return 0;
}

int tl_trace_load(const char *path, struct tl_trace *ret, char *err, size_t errlen)
{
	_cleanup_(freep) char *buf = NULL;
	char msg[128];
	struct stat st;
	size_t len = 0, line = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > TL_TRACE_FILE_MAX) {
		close(fd);
		snprintf(err, errlen, "%s: larger than %u bytes", path, TL_TRACE_FILE_MAX);
		return -E2BIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	/* Read what fstat() saw, and no more: a file growing meanwhile stays bounded. */
	while (len < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + len, (size_t)st.st_size - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			close(fd);
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			return r;
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	close(fd);
	r = tl_trace_parse(buf, len, ret, &line, msg, sizeof(msg));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		if (line)
			snprintf(err, errlen, "%s:%zu: %s", path, line, msg);
		else
			snprintf(err, errlen, "%s: %s", path, msg);
	}
	return r;
}

void tl_trace_free(struct tl_trace *t)
{
	if (t->refs && __atomic_sub_fetch(t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(t->refs);
	memset(t, 0, sizeof(*t));
}

void tl_trace_share(struct tl_trace *dst, const struct tl_trace *src)
{
	*dst = *src;
	if (src->refs)
		__atomic_add_fetch(src->refs, 1, __ATOMIC_RELAXED);
}

/* ---- CoDel ----------------------------------------------------------------- */

void tl_codel_init(struct tl_codel *c, uint64_t target_ns, uint64_t interval_ns)
{
	memset(c, 0, sizeof(*c));
	c->target_ns = target_ns;
	c->interval_ns = interval_ns;
}

void tl_codel_empty(struct tl_codel *c)
{
	c->first_above_ns = 0;
	c->dropping = false;
}

static uint64_t control_law(const struct tl_codel *c, uint64_t t, uint32_t count)
{
	return t + (uint64_t)((double)c->interval_ns / impair_sqrt((double)count));
}

bool tl_codel_drop(struct tl_codel *c, uint64_t now_ns, uint64_t sojourn_ns,
		   uint64_t backlog_bytes)
{
	bool ok = false;

	/* RFC 8289, dodequeue(). */
	if (sojourn_ns < c->target_ns || backlog_bytes <= TL_OPP_BYTES)
		c->first_above_ns = 0;
	else if (c->first_above_ns == 0)
		c->first_above_ns = now_ns + c->interval_ns;
	else if (now_ns >= c->first_above_ns)
		ok = true;

	/* dequeue(): the drop state, one packet per call. */
	if (c->dropping) {
		if (!ok) {
			c->dropping = false;
			return false;
		}
		if (now_ns >= c->drop_next_ns) {
			c->count++;
			c->drop_next_ns = control_law(c, c->drop_next_ns, c->count);
			return true;
		}
		return false;
	}
	if (ok) {
		uint32_t delta = c->count - c->lastcount;

		c->dropping = true;
		c->count = 1;
		/* Back soon after leaving the drop state: resume near the old rate. */
		if (delta > 1 && (now_ns < c->drop_next_ns ||
				  now_ns - c->drop_next_ns < 16 * c->interval_ns))
			c->count = delta;
		c->drop_next_ns = control_law(c, now_ns, c->count);
		c->lastcount = c->count;
		return true;
	}
	return false;
}

/* ---- the link -------------------------------------------------------------- */

int tl_link_init(struct tl_link *l, struct tl_trace *tr, const struct tl_config *cfg)
{
	memset(l, 0, sizeof(*l));
	if (!tr->n || !tr->period_ns || !cfg->queue_pkts) {
		tl_trace_free(tr);
		return -EINVAL;
	}
	l->q = calloc(cfg->queue_pkts, sizeof(*l->q));
	if (!l->q) {
		tl_trace_free(tr);
		return -ENOMEM;
	}
	l->tr = *tr;
	memset(tr, 0, sizeof(*tr));
	l->cfg = *cfg;
	tl_codel_init(&l->codel, cfg->codel_target_ns, cfg->codel_interval_ns);
	return 0;
}

void tl_link_done(struct tl_link *l)
{
	tl_trace_free(&l->tr);
	free(l->q);
	l->q = NULL;
	l->qn = 0;
}

void tl_link_inherit(struct tl_link *l, const struct tl_link *old)
{
	uint32_t n = old->qn < l->cfg.queue_pkts ? old->qn : l->cfg.queue_pkts;

	l->started = old->started;
	l->base_ns = old->base_ns;
	l->busy_valid = old->busy_valid;
	l->cur_ns = old->cur_ns;
	l->cur_left = old->cur_left;
	l->next = old->next < l->tr.n ? old->next : 0;
	l->next_base_ns = old->next_base_ns;
	l->qhead = 0;
	l->qn = n;
	l->qbytes = 0;
	for (uint32_t i = 0; i < n; i++) {
		l->q[i] = old->q[(old->qhead + i) % old->cfg.queue_pkts];
		l->qbytes += l->q[i].cost;
	}
	l->codel = old->codel;
	l->dropped_queue = old->dropped_queue;
	l->dropped_aqm = old->dropped_aqm;
}

static uint64_t opp_time(const struct tl_link *l)
{
	return l->next_base_ns + (uint64_t)l->tr.ms[l->next] * NS_PER_MS;
}

static void opp_advance(struct tl_link *l)
{
	if (++l->next == l->tr.n) {
		l->next = 0;
		l->next_base_ns += l->tr.period_ns;
	}
}

/* Make next the first opportunity after now_ns (now_ns >= base_ns). */
static void opp_seek(struct tl_link *l, uint64_t now_ns)
{
	uint64_t rel = now_ns - l->base_ns, loops = rel / l->tr.period_ns;
	uint64_t off = rel - loops * l->tr.period_ns;
	size_t lo = 0, hi = l->tr.n;

	if (opp_time(l) > now_ns)
		return;
	/* The first index whose time in the period is after off. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uint64_t)l->tr.ms[mid] * NS_PER_MS > off)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo == l->tr.n) {
		lo = 0;
		loops++;
	}
	l->next = lo;
	l->next_base_ns = l->base_ns + loops * l->tr.period_ns;
}

static void queue_expire(struct tl_link *l, uint64_t now_ns)
{
	while (l->qn && l->q[l->qhead].leave_ns <= now_ns) {
		l->qbytes -= l->q[l->qhead].cost;
		l->qhead = (l->qhead + 1) % l->cfg.queue_pkts;
		l->qn--;
	}
}

uint32_t tl_link_queued(struct tl_link *l, uint64_t now_ns)
{
	queue_expire(l, now_ns);
	return l->qn;
}

int tl_link_send(struct tl_link *l, uint64_t now_ns, size_t len, uint64_t *ret_ns)
{
	uint32_t cost = (uint32_t)((len < 65535 ? len : 65535) + TL_FRAME_OVERHEAD), left;
	bool busy_valid = l->busy_valid;
	uint64_t cur_ns = l->cur_ns, next_base_ns, leave;
	uint32_t cur_left = l->cur_left;
	size_t next;

	if (!l->started) {
		l->started = true;
		l->base_ns = now_ns;
		l->next = 0;
		l->next_base_ns = now_ns;
		l->busy_valid = false;
	}
	if (now_ns < l->base_ns)	/* a clock that went back: not before the trace's start */
		now_ns = l->base_ns;
	queue_expire(l, now_ns);
	if (l->qn >= l->cfg.queue_pkts ||
	    (l->cfg.queue_bytes && l->qbytes + cost > l->cfg.queue_bytes)) {
		l->dropped_queue++;
		return -ENOBUFS;
	}
	if (!l->qn && l->cfg.aqm == TL_AQM_CODEL)
		tl_codel_empty(&l->codel);

	next = l->next;
	next_base_ns = l->next_base_ns;
	if (!(l->busy_valid && l->cur_ns > now_ns && l->cur_left)) {
		/* Idle (the leftover is lost), or busy up to an opportunity it filled. */
		if (!(l->busy_valid && l->cur_ns > now_ns))
			opp_seek(l, now_ns);
		l->cur_ns = opp_time(l);
		l->cur_left = TL_OPP_BYTES;
		opp_advance(l);
	}
	leave = l->cur_ns;
	if (l->cfg.aqm == TL_AQM_CODEL &&
	    tl_codel_drop(&l->codel, leave, leave - now_ns, l->qbytes)) {
		/* Dropped at its dequeue: it used no bytes. */
		l->busy_valid = busy_valid;
		l->cur_ns = cur_ns;
		l->cur_left = cur_left;
		l->next = next;
		l->next_base_ns = next_base_ns;
		l->dropped_aqm++;
		return -ECONNRESET;
	}
	for (left = cost;;) {
		uint32_t use = left < l->cur_left ? left : l->cur_left;

		left -= use;
		l->cur_left -= use;
		if (!left)
			break;
		l->cur_ns = opp_time(l);
		l->cur_left = TL_OPP_BYTES;
		opp_advance(l);
	}
	l->busy_valid = true;
	l->q[(l->qhead + l->qn) % l->cfg.queue_pkts] = (struct tl_qent){
		.arrive_ns = now_ns, .leave_ns = leave, .depart_ns = l->cur_ns, .cost = cost };
	l->qn++;
	l->qbytes += cost;
	*ret_ns = l->cur_ns;
	return 0;
}
