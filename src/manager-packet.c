/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The packet path: a read from a tun (outbound, or an inbound tun), the
 * packet parsed, a super-packet run whole or split into its segments, the
 * chain, and the write back (or the impairment queue, whose timer sends the
 * delayed copies).  The loop runs it for its own path (one queue) and the
 * inbound tuns; with tun.queues > 1, manager-worker.c reads and writes each
 * queue and calls in here with the lock held.  Called by manager.c and
 * manager-worker.c; calls neither.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "chain.h"
#include "fastpath.h"
#include "flow.h"
#include "gso.h"
#include "hello.h"
#include "log.h"
#include "loopguard.h"
#include "manager.h"
#include "monitor.h"
#include "routing.h"
#include "surgery.h"
#include "tun.h"
#include "tunring.h"

#define HEADROOM MANAGER_HEADROOM

static uint64_t loop_now_ns(struct manager *m)
{
	uint64_t usec = 0;

	sd_event_now(m->event, CLOCK_MONOTONIC, &usec);
	return usec * 1000;
}

uint64_t manager_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The tun of a destination: 0 the tun, 1 + i inbound tun i. */
static struct tun *dest_tun(struct manager *m, uint8_t dest)
{
	return dest ? m->inbound[dest - 1].tun : m->tun;
}

void manager_write_failed(struct manager_path *path, uint8_t dest, int r, size_t len,
			  unsigned int segs, uint64_t bytes)
{
	struct manager *m = path->m;

	if (dest) {
		m->stats.in_tx_packets -= segs;
		m->stats.in_tx_bytes -= bytes;
	} else {
		m->stats.tx_packets -= segs;
		m->stats.tx_bytes -= bytes;
	}
	m->stats.write_errors++;
	if (ratelimit_allow(&m->io_log, path->now_ns))
		log_errno(LOG_WARNING, r, "write to %s (%zu bytes)", dest_tun(m, dest)->name, len);
}

/*
 * data with its header already in the room in front; it stands for segs
 * packets of bytes.  Counted (and printed for the loop guard) before the
 * write, taken back if the write fails: a worker writes after releasing the
 * lock, when it may count nothing.
 */
static void manager_send(struct manager_path *path, uint8_t dest, uint8_t *data, size_t len,
			 unsigned int segs, uint64_t bytes, bool last)
{
	struct manager *m = path->m;
	struct tun *t = dest_tun(m, dest);
	/* The path's own queue on its own tun; forged answers of an inbound path: queue 0. */
	unsigned int q = dest == path->dest ? path->queue : 0;
	int r;

	if (dest) {
		m->stats.in_tx_packets += segs;
		m->stats.in_tx_bytes += bytes;
	} else {
		m->stats.tx_packets += segs;
		m->stats.tx_bytes += bytes;
		/* A super-packet that comes back, comes back whole: its print is the one to keep. */
		loopguard_record(&m->loopguard, data, len, path->now_ns);
	}
	/*
	 * The packet's last write, from a buffer nothing touches before the
	 * worker writes it (or, with writes of the ring, its ring buffer).
	 */
	if (last && path->can_defer && !path->out_len && dest == path->dest &&
	    (!path->ring_writes ||
	     tunring_holds(path->ring, path->ring_id, data - t->hdrlen, len + t->hdrlen))) {
		path->out = data - t->hdrlen;
		path->out_len = len + t->hdrlen;
		path->out_segs = segs;
		path->out_bytes = bytes;
		return;
	}
	/* The ring's writes so far go first: packets leave in the order they came. */
	if (path->ring_writes)
		(void)tunring_submit(path->ring);
	r = tun_write(t, q, data - t->hdrlen, len + t->hdrlen);
	if (r < 0)
		manager_write_failed(path, dest, r, len, segs, bytes);
}

/* A deferred write's counts in a ring write's cookie: segments, and bytes below 2^40. */
#define COOKIE(segs, bytes) ((uint64_t)(segs) << 40 | ((bytes) & ((1ULL << 40) - 1)))

int manager_path_ring_out(struct manager_path *path, uint32_t id)
{
	int r;

	if (!path->out_len) {
		tunring_put(path->ring, id);
		return 0;
	}
	r = tunring_write(path->ring, id, path->out, path->out_len,
			  COOKIE(path->out_segs, path->out_bytes));
	if (r >= 0)
		return 0;
	/* Not from the ring buffer (a worker's forged answer), or the ring is full. */
	(void)tunring_submit(path->ring);
	r = tun_write(path->tun, path->queue, path->out, path->out_len);
	tunring_put(path->ring, id);
	return r;
}

void manager_ring_write_failed(struct manager_path *path, const struct tunring_read *rd)
{
	manager_write_failed(path, path->dest, (int)rd->n, rd->len - path->tun->hdrlen,
			     (unsigned int)(rd->cookie >> 40), rd->cookie & ((1ULL << 40) - 1));
}

/* A complete packet of its own (forged, queued, a segment): a header that asks nothing. */
static void manager_write(struct manager_path *path, uint8_t dest, uint8_t *data, size_t len,
			  bool last)
{
	size_t hdrlen = dest_tun(path->m, dest)->hdrlen;

	/* The header room in front of data belongs to the same buffer. */
	memset(data - hdrlen, 0, hdrlen);
	manager_send(path, dest, data, len, 1, len, last);
}

/*
 * The packet as read, with the header it came with (g; NULL: the tun has
 * none): a super-packet stays one, a partial checksum stays partial.
 */
static void manager_write_pkt(struct manager_path *path, struct pkt *p, struct gso *g)
{
	if (!g) {
		manager_write(path, path->dest, p->data, p->len, true);
		return;
	}
	g->flags = p->needs_csum ? GSO_F_NEEDS_CSUM : 0;
	if (!p->needs_csum)
		g->csum_start = g->csum_offset = 0;
	gso_encode(g, p->data - path->tun->hdrlen);
	manager_send(path, path->dest, p->data, p->len, pkt_segs(p), pkt_seg_bytes(p), true);
}

/* Arm the timer at the earliest departure in the queue, or stop it when the queue is empty. */
void manager_impair_arm(struct manager *m)
{
	uint64_t at_ns;
	int r;

	m->impair_pushed = false;
	if (!m->impair_timer)
		return;
	if (!impair_queue_next(&m->impair_queue, &at_ns)) {
		sd_event_source_set_enabled(m->impair_timer, SD_EVENT_OFF);
		return;
	}
	/* Rounded up: when it fires, the copy is due. */
	r = sd_event_source_set_time(m->impair_timer, at_ns / 1000 + (at_ns % 1000 != 0));
	if (r >= 0)
		r = sd_event_source_set_enabled(m->impair_timer, SD_EVENT_ONESHOT);
	if (r < 0 && ratelimit_allow(&m->io_log, loop_now_ns(m)))
		log_errno(LOG_WARNING, r, "arming the impairment timer");
}

int manager_on_impair_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	struct manager_path *path = &m->path;
	struct impair_item it;

	path->now_ns = loop_now_ns(m);
	for (int i = 0; i < MANAGER_IMPAIR_BATCH; i++) {
		if (impair_queue_pop(&m->impair_queue, path->now_ns, &it) <= 0)
			break;
		/* The queue holds the packets alone; the write needs the header room in front. */
		memcpy(path->txbuf + HEADROOM, it.data, it.len);
		free(it.data);
		/* An inbound tun that is not there (cannot be: they live as long as the queue). */
		if (it.dest > m->n_inbound)
			continue;
		manager_write(path, it.dest, path->txbuf + HEADROOM, it.len, false);
		m->stats.impair_sent++;
	}
	/* More due: the timer fires again at once, after the other sources had their turn. */
	manager_impair_arm(m);
	return 0;
}

/*
 * The copies of a packet an impairing rule decided on, out being the packet
 * to send: each is written now when it is due, else queued for its time.
 */
static void manager_impair(struct manager_path *path, uint8_t dest, struct pkt *out,
			   struct chain_impair *imp)
{
	struct manager *m = path->m;

	/* Last copy first: copy 0, the original, is the one that may be corrupted. */
	for (unsigned int k = imp->res.n; k-- > 0;) {
		const struct impair_copy *cp = &imp->res.copy[k];

		if (cp->corrupt)
			chain_impair_corrupt_imp(m->chain, imp, out);
		if (cp->at_ns <= path->now_ns) {
			/* Copies share the buffer (and corruption changes it): none waits. */
			manager_write(path, dest, out->data, out->len, false);
			continue;
		}
		if (impair_queue_push_to(&m->impair_queue, cp->at_ns, imp->id, dest, out->data,
					 out->len) < 0) {
			chain_impair_refused(m->chain, imp, k);
			continue;
		}
		m->impair_pushed = true;
	}
	if (!imp->res.n)
		m->stats.dropped++;
}

/* Hand the packet's fate to trace and capture subscribers (surgery_out: packets a cut sent). */
static void manager_monitor_cut(struct manager_path *path, const struct pkt *p, bool copied,
				size_t len, const struct chain_trace *t,
				const struct chain_impair *imp, const uint8_t *after,
				size_t after_len, unsigned int surgery_out)
{
	struct manager *m = path->m;
	struct monitor_event ev = {
		.p = p,
		.before = copied ? path->beforebuf : NULL,
		.before_len = len,
		.after = after,
		.after_len = after_len,
		.chain = m->chain,
		.generation = m->generation,
		.trace = t,
		.impair = imp,
		.surgery_out = surgery_out,
	};
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ev.time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	monitor_event(m->monitor, &ev);
}

static void manager_monitor(struct manager_path *path, const struct pkt *p, bool copied,
			    size_t len, const struct chain_trace *t, const struct chain_impair *imp,
			    const uint8_t *after, size_t after_len)
{
	manager_monitor_cut(path, p, copied, len, t, imp, after, after_len, 0);
}

/*
 * The copies of the packet an impairing rule let out (p, or the forged
 * packet): a capture's "after" shows it as the chain let it out, the trace
 * what became of its copies, queue included.  forward: p itself, which goes
 * back where it came from (and takes its hop compensation when outbound);
 * else a forged answer, which leaves through the tun.
 */
static void manager_process_impaired(struct manager_path *path, struct pkt *p, struct pkt *out,
				     bool forward, bool monitored, bool copied, size_t len,
				     const struct chain_trace *trace, struct chain_impair *imp)
{
	/* Copies are written or queued as complete packets, and corruption must show. */
	pkt_csum_complete(out);
	/* A snapshot before compensation and corruption. */
	if (monitored)
		memcpy(path->txbuf, out->data, out->len);
	/* Once, before any copy is taken; inbound packets are not forwarded by the host. */
	if (forward && path->dir == PKT_DIR_OUT)
		pkt_forward_compensate(out);
	manager_impair(path, forward ? path->dest : 0, out, imp);
	if (monitored)
		manager_monitor(path, p, copied, len, trace, imp, path->txbuf, out->len);
}

/* A copy of p into buf for a capture: a partial checksum would read as bad there. */
static const uint8_t *capture_copy(const struct pkt *p, uint8_t *buf)
{
	struct pkt c = *p;

	memcpy(buf, p->data, p->len);
	c.data = buf;
	pkt_csum_complete(&c);
	return buf;
}

void manager_path_release(struct manager_path *path)
{
	free(path->surgbuf);
	path->surgbuf = NULL;
	path->ring = tunring_free(path->ring);
}

/*
 * The TLS server name or HTTP Host in p's TCP payload, for split = sni,
 * host, midsld: looked for only when the rule names one.
 */
static void surgery_marks(const struct rule_surgery *s, const struct pkt *p, struct surg_marks *mk)
{
	uint32_t off, nlen;
	bool want = false;
	size_t hl, need;

	*mk = (struct surg_marks){ .sni_off = -1, .sni_len = -1, .host_off = -1, .host_len = -1 };
	for (unsigned int i = 0; i < s->nsplit; i++)
		if (s->split[i].kind != SURG_POS_ABS)
			want = true;
	if (!want || p->l4proto != IPPROTO_TCP || !p->l4_complete || !p->first_fragment)
		return;
	hl = p->l4off + (size_t)(p->data[p->l4off + 12] >> 4) * 4;
	if (hl >= p->len)
		return;
	if (hello_tls_sni(p->data + hl, p->len - hl, &off, &nlen, &need) == 0) {
		mk->sni_off = (int32_t)off;
		mk->sni_len = (int32_t)nlen;
	} else if (hello_http_host(p->data + hl, p->len - hl, &off, &nlen) == 0) {
		mk->host_off = (int32_t)off;
		mk->host_len = (int32_t)nlen;
	}
}

/*
 * p ended on a rule that cuts it: send what surgery_apply() makes of it, in
 * order, each a packet of its own (outbound: each with its hop compensation,
 * so that fake-ttl is the decoy's TTL on the wire, as set-ttl's is).  The
 * capture's "after" is the real packet before the cut; the trace says how
 * many packets left.  A surgery that fails sends p whole (surgery-errors).
 */
static void manager_process_cut(struct manager_path *path, struct pkt *p, bool monitored,
				bool copied, size_t len, const struct chain_trace *trace,
				const struct chain_cut *cut)
{
	struct manager *m = path->m;
	const struct rule_surgery *s = cut->s;
	unsigned int decoys = 0, parts = 0, fragments = 0;
	struct surg_marks mk;
	struct surg_out out;
	int r = -EINVAL;

	pkt_csum_complete(p);
	if (!path->surgbuf)
		path->surgbuf = malloc(SURG_ARENA_SIZE(PKT_MAX));
	if (!path->surgbuf) {
		r = -ENOMEM;
	} else if (pkt_segs(p) == 1) {
		surgery_marks(s, p, &mk);
		out.buf = path->surgbuf;
		out.cap = SURG_ARENA_SIZE(PKT_MAX);
		r = surgery_apply(s, p->data, p->len, &mk, splitmix64(&m->surgery_rng), &out);
	}
	if (r < 0 || out.n == 0) {
		m->stats.surgery_errors++;
		if (ratelimit_allow(&m->io_log, path->now_ns))
			log_errno(LOG_WARNING, r < 0 ? r : -EINVAL,
				  "surgery of a %zu-byte packet (rule %s): sent whole", p->len,
				  rule_name(chain_rule(m->chain, cut->rule)));
		if (monitored)
			manager_monitor_cut(path, p, copied, len, trace, NULL, p->data, p->len, 1);
		if (path->dir == PKT_DIR_OUT)
			pkt_forward_compensate(p);
		manager_write(path, path->dest, p->data, p->len, false);
		return;
	}
	if (monitored)
		manager_monitor_cut(path, p, copied, len, trace, NULL, p->data, p->len, out.n);

	/* The decoys come first; none when the packet was not one to shadow. */
	if (s->fake && !(out.skipped & SURG_SKIP_FAKE))
		decoys = s->fake_repeats;
	if (decoys >= out.n)
		decoys = 0;
	for (unsigned int k = 0; k < out.n; k++) {
		uint8_t *d = path->txbuf + HEADROOM;
		struct pkt q = { .data = d, .len = out.pkt[k].len, .cap = PKT_MAX, .dir = p->dir };
		bool parsed;

		/* surgery_apply() keeps each within PKT_MAX; the copy checks, not trusts. */
		if (out.pkt[k].len > PKT_MAX || out.pkt[k].off > out.cap - out.pkt[k].len) {
			m->stats.surgery_errors++;
			continue;
		}
		memcpy(d, out.buf + out.pkt[k].off, out.pkt[k].len);
		parsed = pkt_parse(&q) == PKT_OK;
		if (k >= decoys) {
			if (parsed && q.fragment)
				fragments++;
			if (!parsed || q.first_fragment)
				parts++;
		}
		/* An unreadable one (set-field made it so) goes as it is. */
		if (parsed && path->dir == PKT_DIR_OUT)
			pkt_forward_compensate(&q);
		manager_write(path, path->dest, d, q.len, false);
	}

	if (s->nsplit && parts > 1) {
		m->stats.surgery_split++;
		m->stats.surgery_parts += parts;
	}
	if (fragments) {
		m->stats.surgery_ipfrag++;
		m->stats.surgery_fragments += fragments;
	}
	m->stats.surgery_fakes += decoys;
	if (surgery_whole(s, p, parts, fragments, decoys))
		m->stats.surgery_whole++;
}

/* Run one parsed packet (a super-packet whole, or a segment) through the chain and out. */
static void manager_run_chain(struct manager_path *path, struct pkt *p, struct gso *g)
{
	struct manager *m = path->m;
	struct pkt forged = { .data = path->forgebuf + HEADROOM, .cap = PKT_MAX };
	const uint8_t *after;
	struct chain_trace trace;
	struct chain_impair imp;
	struct chain_cut cut;
	bool monitored, copied = false;
	size_t len = p->len;

	monitored = monitor_active(m->monitor);
	if (monitored && monitor_wants_before(m->monitor)) {
		capture_copy(p, path->beforebuf);
		copied = true;
	}

	switch (chain_run_cut(m->chain, p, &forged, path->now_ns, monitored ? &trace : NULL,
			      &imp, &cut)) {
	case CHAIN_ACCEPT:
		if (cut.cut) {
			manager_process_cut(path, p, monitored, copied, len, &trace, &cut);
			break;
		}
		if (imp.impaired) {
			manager_process_impaired(path, p, p, true, monitored, copied, len, &trace,
						 &imp);
			break;
		}
		/* Captured as the chain left it, which is how it leaves the host. */
		if (monitored) {
			after = p->needs_csum ? capture_copy(p, path->txbuf) : p->data;
			manager_monitor(path, p, copied, len, &trace, NULL, after, p->len);
		}
		if (path->dir == PKT_DIR_OUT)
			pkt_forward_compensate(p);
		manager_write_pkt(path, p, g);
		break;
	case CHAIN_DROP:
		/* Also what impairment dropped whole (loss, limit). */
		m->stats.dropped += pkt_segs(p);
		if (monitored)
			manager_monitor(path, p, copied, len, &trace, &imp, NULL, 0);
		break;
	case CHAIN_FORGED:
		/*
		 * Delivered to the local host, not forwarded: no TTL compensation.
		 * An answer to an inbound packet is an outbound one: the tun too.
		 */
		if (imp.impaired) {
			manager_process_impaired(path, p, &forged, false, monitored, copied, len,
						 &trace, &imp);
			break;
		}
		manager_write(path, 0, forged.data, forged.len, true);
		if (monitored)
			manager_monitor(path, p, copied, len, &trace, NULL, forged.data, forged.len);
		break;
	}
}

/*
 * The packet's flow, found or started in the flow table; NULL when the
 * packet has nothing to key a flow on (a non-first fragment, an ICMP
 * error).  Nothing is counted yet: flow_count() counts each packet.
 */
static struct flow *flow_of(struct manager *m, const struct pkt *p, uint64_t now_ns,
			    enum flow_dir *dir)
{
	struct flow *f;
	bool is_new;

	if (!m->flows || flow_lookup_pkt(m->flows, p, now_ns, &f, dir, &is_new) < 0)
		return NULL;
	return f;
}

/*
 * The host name search of f ended: tell the fast paths whether a name rule
 * may still match its packets (else the kernel carries them on past the
 * name rules), once per fast path generation (a chain change asks again).
 * A failed write leaves the flow handed up: nothing is lost but speed.
 */
static void flow_decide(struct manager *m, struct flow *f)
{
	uint32_t gen = 1;
	bool needs;

	if (!m->fastpath && !m->fastpath_in)
		return;
	if (!flow_host_decided(f))
		return;
	if (m->fastpath)
		gen += fastpath_flow_generation(m->fastpath);
	if (m->fastpath_in)
		gen += fastpath_flow_generation(m->fastpath_in);
	if (f->fp_gen == gen)
		return;
	f->fp_gen = gen;
	needs = chain_names_may_match(m->chain, f->host_kind, f->host,
				      f->host_kind ? strnlen(f->host, FLOW_HOST_MAX) : 0);
	if (m->fastpath && fastpath_flow_decide(m->fastpath, &f->key, needs) < 0)
		m->stats.fastpath_decide_failed++;
	if (m->fastpath_in && fastpath_flow_decide(m->fastpath_in, &f->key, needs) < 0)
		m->stats.fastpath_decide_failed++;
}

/* What the chain reads of f for a packet: its host name, if one was found. */
static void flow_fill_name(const struct flow *f, struct pkt_flow *pf)
{
	pf->name_kind = f->host_kind;
	pf->name = f->host;
	pf->name_len = f->host_kind ? (uint8_t)strnlen(f->host, FLOW_HOST_MAX) : 0;
}

/*
 * Count one packet (or one segment) of f, payload L4 bytes with TCP flags
 * tcp_flags, and fill pf with what it is in its flow.
 */
static void flow_count(struct manager *m, struct flow *f, enum flow_dir dir, size_t payload,
		       uint8_t tcp_flags, uint64_t now_ns, struct pkt_flow *pf)
{
	uint64_t before = 0, pos;

	pos = flow_account(m->flows, f, dir, payload, tcp_flags, now_ns, &before);
	if (!pf)
		return;
	pf->pos = pos > UINT32_MAX ? UINT32_MAX : (uint32_t)pos;
	pf->bytes_before = before;
	pf->state = f->state;
	pf->fdir = (uint8_t)dir;
	flow_fill_name(f, pf);
}

/* What the next packet of f in dir would be, not counted (the dry walk of chain_gso_whole()). */
static void flow_peek(const struct flow *f, enum flow_dir dir, struct pkt_flow *pf)
{
	unsigned int d = dir == FLOW_DIR_REPLY;

	pf->pos = f->pkts[d] + 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(f->pkts[d] + 1);
	pf->bytes_before = f->bytes[d];
	pf->state = f->state;
	pf->fdir = (uint8_t)dir;
	flow_fill_name(f, pf);
}

/*
 * A super-packet that runs the chain whole counts as its segments: pf is
 * its first segment's, the others are counted after it (each with
 * gso.size payload bytes, the last with the rest; FIN and PSH on the last).
 */
static void flow_count_whole(struct manager *m, struct flow *f, enum flow_dir dir,
			     const struct pkt *p, const struct gso *g, uint64_t now_ns,
			     struct pkt_flow *pf)
{
	unsigned int segs = pkt_segs(p);
	size_t left = flow_pkt_payload_len(p), seg = g && g->size ? g->size : left;
	uint8_t flags = p->l4proto == IPPROTO_TCP ? p->tcp_flags : 0;
	uint8_t last_only = 0x01 | 0x08;	/* FIN, PSH */

	for (unsigned int k = 0; k < segs; k++) {
		size_t n = k + 1 == segs || left < seg ? left : seg;

		flow_count(m, f, dir, n, k + 1 == segs ? flags : flags & ~last_only, now_ns,
			   k == 0 ? pf : NULL);
		left -= n;
	}
}

/*
 * A super-packet some rule needs the segments of: each segment, cut with
 * complete checksums, runs the chain and leaves as a packet of its own.
 */
static void manager_split(struct manager_path *path, const struct pkt *p, const struct gso *g,
			  struct flow *f, enum flow_dir dir)
{
	struct pkt_flow pf;
	struct manager *m = path->m;
	uint8_t *seg = path->segbuf + HEADROOM;
	struct pkt s;
	int n;

	m->stats.gso_split++;
	/* The next segment takes the buffer: each is written at once, in order. */
	path->can_defer = false;
	for (unsigned int k = 0; k < pkt_segs(p); k++) {
		n = gso_segment(p, g, k, seg, PKT_MAX);
		/* A segment travels the way its super-packet does. */
		s = (struct pkt){ .data = seg, .len = n < 0 ? 0 : (size_t)n, .cap = PKT_MAX,
				  .dir = p->dir };
		/* gso_parse() vouched for every segment: this would be a bug, counted, not sent. */
		if (n < 0 || pkt_parse(&s) != PKT_OK) {
			m->stats.malformed[PKT_BAD_VNET]++;
			continue;
		}
		if (f) {
			flow_count(m, f, dir, flow_pkt_payload_len(&s), s.tcp_flags, path->now_ns, &pf);
			s.flow = &pf;
		}
		manager_run_chain(path, &s, NULL);
	}
}

/* vnet: the virtio-net header in front of data, NULL when the tun has none. */
static void manager_process(struct manager_path *path, uint8_t *data, size_t len,
			    const uint8_t *vnet)
{
	struct manager *m = path->m;
	struct pkt p = { .data = data, .len = len, .cap = PKT_MAX, .dir = path->dir };
	struct gso g = { 0 };
	struct pkt_flow pf;
	enum flow_dir fdir = FLOW_DIR_ORIGINAL;
	struct flow *f;
	int cls;

	cls = pkt_parse(&p);
	if (cls == PKT_OK && vnet) {
		gso_decode(vnet, &g);
		cls = gso_parse(&g, &p);
	}
	path->rx_packets += pkt_segs(&p);
	if (path->dir == PKT_DIR_IN) {
		m->stats.in_rx_packets += pkt_segs(&p);
		m->stats.in_rx_bytes += pkt_seg_bytes(&p);
	} else {
		m->stats.rx_packets += pkt_segs(&p);
		m->stats.rx_bytes += pkt_seg_bytes(&p);
	}
	if (cls != PKT_OK) {
		m->stats.malformed[cls]++;
		if (log_enabled(LOG_DEBUG))
			log_debug("dropped %zu-byte packet: %s", len, pkt_class_name(cls));
		return;
	}
	/* Written back moments ago and routed into the tun again: not another round. */
	if (path->dir == PKT_DIR_OUT && loopguard_check(&m->loopguard, data, len, path->now_ns)) {
		if (ratelimit_allow(&m->io_log, path->now_ns)) {
			char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

			inet_ntop(p.family, pkt_saddr(&p), a, sizeof(a));
			inet_ntop(p.family, pkt_daddr(&p), b, sizeof(b));
			log_warning("dropped a packet written back to %s that came back (a route into %s "
				    "outside table %u?): %s -> %s proto %u, %zu bytes; %llu so far",
				    m->tun->name, m->tun->name, m->cfg->table, a, b, p.l4proto, len,
				    (unsigned long long)m->loopguard.loops);
		}
		return;
	}
	f = flow_of(m, &p, path->now_ns, &fdir);
	if (f) {
		flow_host_feed(m->flows, f, fdir, &p);
		flow_decide(m, f);
	}
	if (pkt_segs(&p) > 1) {
		if (f) {
			flow_peek(f, fdir, &pf);
			p.flow = &pf;
		}
		if (!chain_gso_whole(m->chain, &p)) {
			manager_split(path, &p, &g, f, fdir);
			return;
		}
		m->stats.gso_whole++;
		if (f)
			flow_count_whole(m, f, fdir, &p, &g, path->now_ns, &pf);
	} else if (f) {
		flow_count(m, f, fdir, flow_pkt_payload_len(&p), p.tcp_flags, path->now_ns, &pf);
		p.flow = &pf;
	}
	manager_run_chain(path, &p, vnet ? &g : NULL);
}

/*
 * The tun was deleted under us ("ip link del"): its queues are detached for
 * good, read EBADFD and stay readable.  Exit with an error, once, instead of
 * spinning: the service manager restarts the daemon (Restart=on-failure),
 * which creates a new tun.  Meanwhile the kernel took the tun's routes with
 * it, so with failure = "open" the leftover rules lead to an empty table and
 * traffic takes the main table; the exit removes them.  With "closed" the
 * block stays, as after a crash, until the next start takes over.
 */
static void manager_tun_gone(struct manager_path *path)
{
	struct manager *m = path->m;

	path->gone = true;
	if (m->tun_gone)
		return;
	m->tun_gone = true;
	log_error("%s disappeared (deleted by someone: ip link del?); exiting so that the service "
		  "manager restarts ipmodd with a new one", path->tun->name);
	if (m->cfg->fail_closed)
		routing_keep_block(m->routing);
	/* From a worker, which then wakes the loop: it sleeps without the lock. */
	sd_event_exit(m->event, -ENODEV);
}

/* A read of n bytes (or -errno) into buf; false: the queue is empty for now. */
bool manager_path_take_buf(struct manager_path *path, uint8_t *buf, ssize_t n)
{
	struct manager *m = path->m;
	size_t hdrlen = path->tun->hdrlen;

	if (n == -EAGAIN || n == -EINTR)
		return false;
	if (n == -EBADFD) {
		manager_tun_gone(path);
		return false;
	}
	if (n < 0) {
		m->stats.read_errors++;
		if (ratelimit_allow(&m->io_log, path->now_ns))
			log_errno(LOG_WARNING, (int)n, "read from %s", path->tun->name);
		return false;
	}
	if ((size_t)n < hdrlen) {
		m->stats.malformed[PKT_TRUNCATED]++;
		return true;
	}
	manager_process(path, buf + HEADROOM, (size_t)n - hdrlen,
			hdrlen ? buf + HEADROOM - hdrlen : NULL);
	return true;
}

/* A read of n bytes (or -errno) into the path's rxbuf; false: the queue is empty for now. */
bool manager_path_take(struct manager_path *path, ssize_t n)
{
	return manager_path_take_buf(path, path->rxbuf, n);
}

void manager_path_ring_start(struct manager_path *path)
{
	struct manager *m = path->m;
	size_t hdrlen = path->tun->hdrlen;
	char why[ERR_MAX];
	bool plain;
	int r;

	if (m->cfg->tun_io != TUN_IO_URING || path->ring)
		return;
	/*
	 * Each buffer as rxbuf: the header read into the room in front of the
	 * packet.  IPMODD_URING_READS=plain (tests/netns/tunio.sh): the plain
	 * reads of a kernel without the multishot read, on any kernel.
	 */
	plain = getenv("IPMODD_URING_READS") && strcmp(getenv("IPMODD_URING_READS"), "plain") == 0;
	/* IPMODD_URING_WRITES=plain: every write a write() (bench/run compares both). */
	path->ring_writes = !(getenv("IPMODD_URING_WRITES") &&
			      strcmp(getenv("IPMODD_URING_WRITES"), "plain") == 0);
	r = tunring_new(path->tun->fds[path->queue], TUNRING_DEPTH, HEADROOM + PKT_MAX,
			HEADROOM - hdrlen, hdrlen + PKT_MAX, !plain, &path->ring, why, sizeof(why));
	if (r >= 0) {
		/* Before 6.7 the ring's writes would go through io_uring's worker threads. */
		path->ring_writes = path->ring_writes && tunring_writes_inline(path->ring);
		log_debug("%s queue %u: reads through io_uring (%s), writes %s", path->tun->name,
			  path->queue,
			  tunring_multishot(path->ring) ? "one multishot read" : "plain reads",
			  path->ring_writes ? "through it" : "with write()");
		return;
	}
	path->ring = NULL;
	path->ring_writes = false;
	if (!m->tun_io_fallbacks++) {
		snprintf(m->tun_io_reason, sizeof(m->tun_io_reason), "%s", why);
		log_warning("tun.io = \"uring\": %s: io_uring refused (%s); reading with read() "
			    "and write() instead", path->tun->name, why);
	}
}

ssize_t manager_path_read(struct manager_path *path)
{
	size_t hdrlen = path->tun->hdrlen;

	return tun_read(path->tun, path->queue, path->rxbuf + HEADROOM - hdrlen, hdrlen + PKT_MAX);
}

int manager_path_watch(struct manager_path *path, sd_event_source **source)
{
	struct manager *m = path->m;

	manager_path_ring_start(path);
	if (path->ring)
		return sd_event_add_io(m->event, source, tunring_fd(path->ring), EPOLLIN,
				       manager_on_tun_ring, path);
	return sd_event_add_io(m->event, source, path->tun->fds[path->queue], EPOLLIN,
			       manager_on_tun_readable, path);
}

/* The loop's own path with tun.io = "uring": the ring's completed reads. */
int manager_on_tun_ring(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager_path *path = userdata;
	struct manager *m = path->m;
	struct tunring_read rd;
	int r = 0;

	path->now_ns = loop_now_ns(m);
	path->can_defer = path->ring_writes;
	for (int i = 0; i < MANAGER_RX_BATCH && !path->gone; i++) {
		r = tunring_get(path->ring, &rd);
		if (r <= 0)
			break;
		if (rd.write) {
			if (rd.n < 0)
				manager_ring_write_failed(path, &rd);
			continue;
		}
		path->ring_id = rd.id;
		path->out_len = 0;
		manager_path_take_buf(path, rd.buf, rd.n);
		/* Without writes of the ring nothing is deferred: the buffer is free again. */
		r = manager_path_ring_out(path, rd.id);
		if (r < 0)
			manager_write_failed(path, path->dest, r, path->out_len - path->tun->hdrlen,
					     path->out_segs, path->out_bytes);
		r = 0;
	}
	if (r >= 0 && !path->gone)
		r = tunring_submit(path->ring);
	if (r < 0) {
		m->stats.read_errors++;
		if (ratelimit_allow(&m->io_log, path->now_ns))
			log_errno(LOG_WARNING, r, "io_uring of %s", path->tun->name);
	}
	if (path->gone)
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
	if (m->impair_pushed)
		manager_impair_arm(m);
	return 0;
}

/* The loop's own path: one queue, everything under the loop. */
int manager_on_tun_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager_path *path = userdata;
	struct manager *m = path->m;

	path->now_ns = loop_now_ns(m);
	path->can_defer = false;
	for (int i = 0; i < MANAGER_RX_BATCH; i++)
		if (!manager_path_take(path, manager_path_read(path)))
			break;
	if (path->gone)
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
	if (m->impair_pushed)
		manager_impair_arm(m);
	return 0;
}
