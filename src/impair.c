/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Network impairment: random numbers, loss models, delay, token bucket,
 * corruption and the timer queue.  See impair.h.
 */
#include <errno.h>
#include <float.h>
#include <math.h>		/* NAN and INFINITY only: no libm */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "impair.h"
#include "tracelink.h"

/* ---- random numbers ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void impair_rng_seed(struct impair_rng *g, uint64_t seed)
{
	for (size_t i = 0; i < 4; i++)
		g->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t impair_rng_next(struct impair_rng *g)
{
	uint64_t *s = g->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t impair_rng_below(struct impair_rng *g, uint64_t n)
{
	/* 2^64 mod n values at the bottom would make the low results likelier. */
	uint64_t threshold = (0 - n) % n;

	for (;;) {
		uint64_t x = impair_rng_next(g);

		if (x >= threshold)
			return x % n;
	}
}

double impair_rng_uniform(struct impair_rng *g)
{
	return (double)(impair_rng_next(g) >> 11) * 0x1.0p-53;
}

bool impair_rng_chance(struct impair_rng *g, double p)
{
	return impair_rng_uniform(g) < p;
}

static double from_bits(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t to_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

#define MANTISSA_MASK 0x000fffffffffffffULL
#define EXP_BIAS 1023

double impair_sqrt(double x)
{
	uint64_t b;
	int e, shift = 0;
	double m, y;

	if (x == 0 || x == INFINITY)
		return x;
	if (!(x > 0))
		return NAN;
	if (x < DBL_MIN) {
		x *= 0x1p54;	/* subnormal: normalize */
		shift = -27;
	}
	b = to_bits(x);
	e = (int)(b >> 52) - EXP_BIAS;
	m = from_bits((b & MANTISSA_MASK) | (uint64_t)EXP_BIAS << 52);	/* [1, 2) */
	if (e & 1) {
		m *= 2;		/* [2, 4) */
		e--;
	}
	/* (1 + m) / 2 >= sqrt(m), within 25% on [1, 4): Newton from above. */
	y = (1 + m) / 2;
	for (int i = 0; i < 6; i++)
		y = (y + m / y) / 2;
	return y * from_bits((uint64_t)(EXP_BIAS + e / 2 + shift) << 52);
}

/* ln 2 in two parts (fdlibm's): k * LN2_HI is exact for the exponents of a double. */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define SQRT2 1.41421356237309504880

double impair_ln(double x)
{
	double m, z, z2, p = 0;
	uint64_t b;
	int k = 0;

	if (x == 0)
		return -INFINITY;
	if (x == INFINITY)
		return x;
	if (!(x > 0))
		return NAN;
	if (x < DBL_MIN) {
		x *= 0x1p54;
		k = -54;
	}
	b = to_bits(x);
	k += (int)(b >> 52) - EXP_BIAS;
	m = from_bits((b & MANTISSA_MASK) | (uint64_t)EXP_BIAS << 52);
	if (m > SQRT2) {
		m /= 2;		/* [sqrt(1/2), sqrt(2)] */
		k++;
	}
	/* ln m = 2 atanh(z) = 2 (z + z^3/3 + z^5/5 + ...), |z| <= 0.172: 13 terms. */
	z = (m - 1) / (m + 1);
	z2 = z * z;
	for (int i = 27; i >= 3; i -= 2)
		p = p * z2 + 1.0 / i;
	return k * LN2_HI + (2 * z + 2 * z * z2 * p + k * LN2_LO);
}

double impair_rng_normal(struct impair_rng *g)
{
	double u, v, s;

	do {
		u = 2 * impair_rng_uniform(g) - 1;
		v = 2 * impair_rng_uniform(g) - 1;
		s = u * u + v * v;
	} while (s >= 1 || s == 0);
	/* The second variate, v * (the same factor), is not kept: the state stays the generator. */
	return u * impair_sqrt(-2 * impair_ln(s) / s);
}

/* ---- loss ---------------------------------------------------------------- */

void impair_ge_init(struct impair_ge *ge, double p, double r, double bad_loss, double good_loss)
{
	ge->p = p;
	ge->r = r;
	ge->bad_loss = bad_loss;
	ge->good_loss = good_loss;
	ge->bad = false;
}

bool impair_ge_lose(struct impair_ge *ge, struct impair_rng *g)
{
	bool was_bad = ge->bad;

	if (impair_rng_chance(g, was_bad ? ge->r : ge->p))
		ge->bad = !was_bad;
	return impair_rng_chance(g, was_bad ? ge->bad_loss : ge->good_loss);
}

uint32_t impair_crnd_rho(double corr)
{
	return impair_prob32(corr);
}

uint32_t impair_prob32(double p)
{
	if (!(p > 0))
		return 0;
	if (p >= 1)
		return UINT32_MAX;
	return (uint32_t)(p * UINT32_MAX + 0.5);
}

static uint32_t rand32(struct impair_rng *g)
{
	return (uint32_t)(impair_rng_next(g) >> 32);
}

uint32_t impair_crnd_next(struct impair_crnd *c, struct impair_rng *g)
{
	uint64_t value, rho;

	if (!c->primed) {
		c->last = rand32(g);
		c->primed = true;
	}
	if (c->rho == 0)
		return rand32(g);
	value = rand32(g);
	rho = (uint64_t)c->rho + 1;
	/* < 2^64: both products are below 2^32 * 2^32 and their weights sum to 2^32. */
	c->last = (uint32_t)((value * ((UINT64_C(1) << 32) - rho) + c->last * rho) >> 32);
	return c->last;
}

/* netem's "P && P >= value" for a key with a correlation. */
static bool crnd_chance(struct impair_crnd *c, struct impair_rng *g, double p)
{
	uint32_t t = impair_prob32(p);

	return t && t >= impair_crnd_next(c, g);
}

/* ---- delay --------------------------------------------------------------- */

uint64_t impair_tabledist(uint64_t mu_ns, uint64_t sigma_ns, uint32_t u, const int16_t *table,
			  uint32_t n)
{
	int64_t mu = (int64_t)mu_ns, sigma = (int64_t)sigma_ns, x, t, d;

	if (!sigma)
		return mu_ns;
	if (!table || !n) {
		uint64_t span = 2 * sigma_ns;
		/* Up to 2^37 ns of span: the product needs more than 64 bits. */
		uint64_t off = span <= (UINT64_C(1) << 32) ? u % span :
			       (uint64_t)(((unsigned __int128)u * span) >> 32);

		d = mu + (int64_t)off - sigma;
		return d > 0 ? (uint64_t)d : 0;
	}
	t = table[u % n];
	x = (sigma % 8192) * t;
	x += x >= 0 ? 8192 / 2 : -8192 / 2;
	d = x / 8192 + (sigma / 8192) * t + mu;
	return d > 0 ? (uint64_t)d : 0;
}

uint64_t impair_delay_ns(struct impair_rng *g, uint64_t delay_ns, uint64_t jitter_ns, int dist)
{
	double v;

	if (!jitter_ns)
		return delay_ns;
	if (dist == RULE_DIST_NORMAL) {
		v = (double)delay_ns + (double)jitter_ns * impair_rng_normal(g);
		if (v <= 0)
			return 0;
		if (v >= 0x1p63)
			return UINT64_C(1) << 63;
		return (uint64_t)(v + 0.5);
	}
	delay_ns += impair_rng_below(g, 2 * jitter_ns + 1);
	return delay_ns > jitter_ns ? delay_ns - jitter_ns : 0;
}

/* ---- rate ------------------------------------------------------------------ */

static struct impair_time time_of(uint64_t num, uint64_t den)
{
	return (struct impair_time){ num / den, num % den };
}

static int time_cmp(struct impair_time a, struct impair_time b)
{
	if (a.ns != b.ns)
		return a.ns < b.ns ? -1 : 1;
	if (a.frac != b.frac)
		return a.frac < b.frac ? -1 : 1;
	return 0;
}

static struct impair_time time_add(struct impair_time a, struct impair_time b, uint64_t den)
{
	a.ns += b.ns;
	a.frac += b.frac;
	if (a.frac >= den) {
		a.frac -= den;
		a.ns++;
	}
	return a;
}

/* a - b for a >= b. */
static struct impair_time time_sub(struct impair_time a, struct impair_time b, uint64_t den)
{
	if (a.frac < b.frac) {
		a.frac += den;
		a.ns--;
	}
	a.ns -= b.ns;
	a.frac -= b.frac;
	return a;
}

int impair_shaper_init(struct impair_shaper *s, uint64_t rate, bool pps)
{
	if (rate == 0 || rate > IMPAIR_RATE_MAX)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->den = rate;
	if (pps) {
		s->per_pkt = 1000000000;
		s->burst = 1000000000;
	} else {
		s->per_byte = 8000000000ULL;
		s->burst = IMPAIR_BURST_BYTES * 8000000000ULL;
	}
	return 0;
}

uint64_t impair_shaper_departure(struct impair_shaper *s, uint64_t now_ns, size_t len)
{
	uint64_t cost, need;
	struct impair_time t, slack;

	if (len > IMPAIR_WIRE_MAX)
		len = IMPAIR_WIRE_MAX;
	cost = (uint64_t)len * s->per_byte + s->per_pkt;
	need = cost < s->burst ? cost : s->burst;

	/* FIFO: not before the previous packet. */
	t = (struct impair_time){ now_ns, 0 };
	if (time_cmp(t, s->last) < 0)
		t = s->last;
	/* The bucket holds need from full - (burst - need) / rate on. */
	slack = time_of(s->burst - need, s->den);
	if (time_cmp(s->full, slack) > 0) {
		struct impair_time ok = time_sub(s->full, slack, s->den);

		if (time_cmp(ok, t) > 0)
			t = ok;
	}
	/* Charge the exact time, not the rounded one: no drift. */
	s->full = time_add(time_cmp(s->full, t) > 0 ? s->full : t, time_of(cost, s->den), s->den);
	s->last = t;
	return t.ns + (t.frac ? 1 : 0);
}

uint64_t impair_wire_len(size_t len, int32_t overhead, uint32_t cellsize, int32_t cell_overhead)
{
	int64_t l = (int64_t)(len > PKT_MAX ? PKT_MAX : len) + overhead;

	if (l < 0)
		l = 0;
	if (cellsize) {
		int64_t cells = (l + cellsize - 1) / cellsize;

		l = cells * ((int64_t)cellsize + cell_overhead);
		if (l < 0)
			l = 0;
	}
	return l > IMPAIR_WIRE_MAX ? IMPAIR_WIRE_MAX : (uint64_t)l;
}

/* ---- flow ------------------------------------------------------------------ */

static void held_sift_down(uint64_t *h, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		uint64_t tmp;

		if (l < n && h[l] < h[m])
			m = l;
		if (l + 1 < n && h[l + 1] < h[m])
			m = l + 1;
		if (m == i)
			return;
		tmp = h[i];
		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
}

static void held_push(struct impair_flow *f, uint64_t t)
{
	uint32_t i = f->nheld++;

	while (i > 0 && f->held[(i - 1) / 2] > t) {
		f->held[i] = f->held[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	f->held[i] = t;
}

#define HELD_CAP_MIN 16

/* Room for one more held departure: 0, or -ENOMEM (the copy is then dropped as over the limit). */
static int held_reserve(struct impair_flow *f)
{
	uint64_t *h;
	uint32_t cap;

	if (f->nheld < f->cap)
		return 0;
	cap = f->cap < f->limit / 2 ? f->cap * 2 : f->limit;
	if (cap <= f->nheld)
		return -ENOMEM;
	h = realloc(f->held, (size_t)cap * sizeof(*h));
	if (!h)
		return -ENOMEM;
	f->held = h;
	f->cap = cap;
	return 0;
}

void impair_flow_copy_held(struct impair_flow *f, const struct impair_flow *old)
{
	uint32_t n = old->nheld <= f->limit ? old->nheld : f->limit, cap = f->cap;
	uint64_t *h;

	while (cap < n)
		cap = cap < f->limit / 2 ? cap * 2 : f->limit;
	if (cap > f->cap) {
		h = realloc(f->held, (size_t)cap * sizeof(*h));
		if (h) {
			f->held = h;
			f->cap = cap;
		}
	}
	if (n > f->cap)
		n = f->cap;
	/* A heap's prefix is a heap. */
	if (n)
		memcpy(f->held, old->held, (size_t)n * sizeof(*f->held));
	f->nheld = n;
}

static void held_expire(struct impair_flow *f, uint64_t now_ns)
{
	while (f->nheld && f->held[0] <= now_ns) {
		f->held[0] = f->held[--f->nheld];
		held_sift_down(f->held, f->nheld, 0);
	}
}

int impair_flow_init(struct impair_flow *f, const struct rule_impair *cfg)
{
	int r;

	memset(f, 0, sizeof(*f));
	if ((cfg->flags & RULE_I_LOSS) && cfg->loss_ge)
		impair_ge_init(&f->ge, cfg->ge_p, cfg->ge_r, cfg->ge_bad_loss, cfg->ge_good_loss);
	if (cfg->seeded) {
		f->seeded = true;
		impair_rng_seed(&f->rng, cfg->seed);
	}
	if ((cfg->flags & RULE_I_RATE) && !cfg->trace[0]) {
		r = impair_shaper_init(&f->shaper, cfg->rate, cfg->rate_pps);
		if (r < 0)
			return r;
	}
	f->delay_cor.rho = impair_crnd_rho(cfg->delay_corr);
	f->loss_cor.rho = impair_crnd_rho(cfg->loss_corr);
	f->dup_cor.rho = impair_crnd_rho(cfg->duplicate_corr);
	f->corrupt_cor.rho = impair_crnd_rho(cfg->corrupt_corr);
	f->reorder_cor.rho = impair_crnd_rho(cfg->reorder_corr);
	if (cfg->flags & (RULE_I_DELAY | RULE_I_RATE | RULE_I_SLOT)) {
		if (cfg->limit == 0 || cfg->limit > RULE_LIMIT_MAX)
			return -EINVAL;
		f->cap = cfg->limit < HELD_CAP_MIN ? cfg->limit : HELD_CAP_MIN;
		f->held = calloc(f->cap, sizeof(*f->held));
		if (!f->held)
			return -ENOMEM;
		f->limit = cfg->limit;
	}
	return 0;
}

void impair_flow_done(struct impair_flow *f)
{
	if (f->link) {
		tl_link_done(f->link);
		free(f->link);
		f->link = NULL;
	}
	free(f->held);
	f->held = NULL;
	f->nheld = f->cap = f->limit = 0;
}

uint32_t impair_flow_held(struct impair_flow *f, uint64_t now_ns)
{
	held_expire(f, now_ns);
	return f->nheld;
}

/* A uniform slot time, as netem's get_slot_next(): min + (u * (max - min)) >> 32. */
static void slot_draw(struct impair_flow *f, const struct rule_impair *cfg, struct impair_rng *g,
		      uint64_t from_ns)
{
	uint64_t min = (uint64_t)cfg->slot_min_us * 1000, max = (uint64_t)cfg->slot_max_us * 1000;

	/* max - min is up to 6e10 ns: the product needs more than 64 bits. */
	f->slot_next = from_ns + min +
		       (uint64_t)(((unsigned __int128)rand32(g) * (max - min)) >> 32);
	f->slot_pkts = cfg->slot_pkts ? cfg->slot_pkts : INT64_MAX;
	f->slot_bytes = cfg->slot_bytes ? cfg->slot_bytes : INT64_MAX;
	f->slot_open = true;
}

/* The slot a copy due at t leaves in. */
static uint64_t slot_departure(struct impair_flow *f, const struct rule_impair *cfg,
			       struct impair_rng *g, uint64_t t, size_t len)
{
	uint64_t at;

	if (!f->slot_open || f->slot_next < t)
		slot_draw(f, cfg, g, t);
	at = f->slot_next;
	f->slot_pkts--;
	f->slot_bytes -= (int64_t)len;
	if (f->slot_pkts <= 0 || f->slot_bytes <= 0)
		slot_draw(f, cfg, g, at);
	return at;
}

static uint64_t flow_delay(struct impair_flow *f, const struct rule_impair *cfg,
			   struct impair_rng *g)
{
	uint64_t mu = (uint64_t)cfg->delay_us * 1000, sigma = (uint64_t)cfg->jitter_us * 1000;
	const int16_t *table;
	uint32_t n;

	table = rule_dist_table(cfg, &n);
	if (!sigma || (!table && !(cfg->xflags & RULE_IX_DELAY_CORR)))
		return impair_delay_ns(g, mu, sigma, cfg->dist);
	return impair_tabledist(mu, sigma, impair_crnd_next(&f->delay_cor, g), table, n);
}

/* netem: reordered when gap - 1 copies were delayed since the last one, and the draw says so. */
static bool flow_reorder(struct impair_flow *f, const struct rule_impair *cfg,
			 struct impair_rng *g)
{
	bool now;

	if (!(cfg->xflags & (RULE_IX_GAP | RULE_IX_REORDER_CORR)))
		return impair_rng_chance(g, cfg->reorder);
	now = (!cfg->gap || f->counter + 1 >= cfg->gap) &&
	      crnd_chance(&f->reorder_cor, g, cfg->reorder);
	if (now)
		f->counter = 0;
	else
		f->counter++;
	return now;
}

static bool flow_chance(struct impair_crnd *c, struct impair_rng *g, double p, bool corr)
{
	return corr ? crnd_chance(c, g, p) : impair_rng_chance(g, p);
}

void impair_decide(struct impair_flow *f, const struct rule_impair *cfg, struct impair_rng *g,
		   uint64_t now_ns, size_t len, struct impair_result *ret)
{
	impair_decide_ecn(f, cfg, g, now_ns, len, 0, ret);
}

void impair_decide_ecn(struct impair_flow *f, const struct rule_impair *cfg, struct impair_rng *g,
		       uint64_t now_ns, size_t len, unsigned int ecn, struct impair_result *ret)
{
	/* A flow not initialized for cfg has limit 0: what it would hold is dropped, never sent early. */
	bool holds = cfg->flags & (RULE_I_DELAY | RULE_I_RATE | RULE_I_SLOT);
	unsigned int n = 1;

	memset(ret, 0, sizeof(*ret));
	if ((cfg->flags & RULE_I_DUPLICATE) &&
	    flow_chance(&f->dup_cor, g, cfg->duplicate, cfg->xflags & RULE_IX_DUPLICATE_CORR)) {
		n = 2;
		f->cnt.duplicated++;
	}
	if (cfg->flags & RULE_I_LOSS) {
		bool corr = cfg->xflags & RULE_IX_LOSS_CORR;
		bool lost = cfg->loss_ge ? impair_ge_lose(&f->ge, g) :
			    flow_chance(&f->loss_cor, g, cfg->loss, corr);

		if (lost && (cfg->xflags & RULE_IX_LOSS_ECN) && (ecn & 3)) {
			ret->ce = true;
			f->cnt.ce_marked++;
		} else if (lost) {
			n--;
			f->cnt.dropped_loss++;
		}
	}
	if (holds)
		held_expire(f, now_ns);

	for (unsigned int i = 0; i < n; i++) {
		uint64_t at = now_ns;
		bool reordered = (cfg->flags & RULE_I_REORDER) && flow_reorder(f, cfg, g);

		if (reordered)
			f->cnt.reordered++;
		/* A reordered copy skips rate and delay, not the slots (as in netem). */
		if (holds && (!reordered || (cfg->flags & RULE_I_SLOT))) {
			if (f->nheld >= f->limit || held_reserve(f) < 0) {
				f->cnt.dropped_limit++;
				continue;
			}
			if (!reordered && (cfg->flags & RULE_I_RATE) && cfg->trace[0]) {
				int r = f->link ? tl_link_send(f->link, now_ns, len, &at) : -ENOBUFS;

				if (r == -ECONNRESET) {
					f->cnt.dropped_aqm++;
					continue;
				}
				if (r < 0) {
					f->cnt.dropped_limit++;
					continue;
				}
			} else if (!reordered && (cfg->flags & RULE_I_RATE)) {
				at = impair_shaper_departure(&f->shaper, now_ns,
					impair_wire_len(len, cfg->overhead, cfg->cellsize,
							cfg->cell_overhead));
			}
			if (!reordered && (cfg->flags & RULE_I_DELAY))
				at += flow_delay(f, cfg, g);
			if (cfg->flags & RULE_I_SLOT)
				at = slot_departure(f, cfg, g, at, len);
			if (at > now_ns) {
				held_push(f, at);
				f->cnt.delayed++;
			}
		}
		ret->copy[ret->n++].at_ns = at;
	}

	if (ret->n && (cfg->flags & RULE_I_CORRUPT) &&
	    flow_chance(&f->corrupt_cor, g, cfg->corrupt, cfg->xflags & RULE_IX_CORRUPT_CORR)) {
		ret->copy[0].corrupt = true;
		f->cnt.corrupted++;
	}
}

/* ---- corruption ------------------------------------------------------------ */

int impair_corrupt(struct pkt *p, struct impair_rng *g)
{
	size_t from = p->l4off, to = p->len, hl = 0, csum = 0;
	uint64_t bit;

	if (from >= to)
		return -ENODATA;
	if (p->l4_complete) {
		switch (p->l4proto) {
		case IPPROTO_TCP:
			hl = (size_t)(p->data[from + 12] >> 4) * 4;
			csum = 16;
			break;
		case IPPROTO_UDP:
			hl = 8;
			csum = 6;
			break;
		case IPPROTO_ICMP:
		case IPPROTO_ICMPV6:
			hl = 8;
			csum = 2;
			break;
		}
	}
	if (hl && from + hl < to) {
		from += hl;
	} else if (hl) {
		from += csum;
		to = from + 2;
	}
	bit = impair_rng_below(g, (uint64_t)(to - from) * 8);
	p->data[from + bit / 8] ^= (uint8_t)(1u << (bit % 8));
	return (int)(from * 8 + bit);
}

/* ---- queue ----------------------------------------------------------------- */

static bool entry_before(const struct impair_entry *a, const struct impair_entry *b)
{
	return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->seq < b->seq);
}

static void queue_sift_down(struct impair_entry *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct impair_entry tmp;

		if (l < n && entry_before(&h[l], &h[m]))
			m = l;
		if (l + 1 < n && entry_before(&h[l + 1], &h[m]))
			m = l + 1;
		if (m == i)
			return;
		tmp = h[i];
		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
}

int impair_queue_init(struct impair_queue *q, size_t max_pkts, size_t max_bytes)
{
	memset(q, 0, sizeof(*q));
	if (max_pkts == 0 || max_bytes == 0 || max_pkts > SIZE_MAX / sizeof(*q->heap))
		return -EINVAL;
	q->heap = calloc(max_pkts, sizeof(*q->heap));
	if (!q->heap)
		return -ENOMEM;
	q->max_pkts = max_pkts;
	q->max_bytes = max_bytes;
	return 0;
}

void impair_queue_done(struct impair_queue *q)
{
	if (q->heap)
		impair_queue_flush(q, NULL, NULL);
	free(q->heap);
	memset(q, 0, sizeof(*q));
}

int impair_queue_push(struct impair_queue *q, uint64_t at_ns, uint32_t owner, const void *data,
		      size_t len)
{
	return impair_queue_push_to(q, at_ns, owner, 0, data, len);
}

int impair_queue_push_to(struct impair_queue *q, uint64_t at_ns, uint32_t owner, uint8_t dest,
			 const void *data, size_t len)
{
	struct impair_entry e = { .at_ns = at_ns, .owner = owner, .len = (uint32_t)len,
				  .dest = dest };
	size_t i;

	if (len == 0 || len > PKT_MAX)
		return -EINVAL;
	if (q->n >= q->max_pkts || len > q->max_bytes - q->bytes)
		return -ENOBUFS;
	e.data = malloc(len);
	if (!e.data)
		return -ENOMEM;
	memcpy(e.data, data, len);
	e.seq = q->seq++;

	for (i = q->n++; i > 0 && entry_before(&e, &q->heap[(i - 1) / 2]); i = (i - 1) / 2)
		q->heap[i] = q->heap[(i - 1) / 2];
	q->heap[i] = e;
	q->bytes += len;
	return 0;
}

bool impair_queue_next(const struct impair_queue *q, uint64_t *ret_at_ns)
{
	if (!q->n)
		return false;
	*ret_at_ns = q->heap[0].at_ns;
	return true;
}

int impair_queue_pop(struct impair_queue *q, uint64_t now_ns, struct impair_item *ret)
{
	struct impair_entry *e;

	if (!q->n || q->heap[0].at_ns > now_ns)
		return 0;
	e = &q->heap[0];
	*ret = (struct impair_item){ .at_ns = e->at_ns, .data = e->data, .len = e->len,
				     .owner = e->owner, .dest = e->dest };
	q->bytes -= e->len;
	q->heap[0] = q->heap[--q->n];
	queue_sift_down(q->heap, q->n, 0);
	return 1;
}

/*
 * Drop the entries of owner (all of them when all, those pick() selects when
 * it is given), then restore the heap.
 */
static size_t queue_flush(struct impair_queue *q, bool all, uint32_t owner, impair_pick_fn pick,
			  impair_flush_fn fn, void *userdata)
{
	size_t j = 0, n = q->n;

	for (size_t i = 0; i < n; i++) {
		struct impair_entry *e = &q->heap[i];
		bool drop = all || (pick ? pick(userdata, e->owner) : e->owner == owner);

		if (!drop) {
			q->heap[j++] = *e;
			continue;
		}
		if (fn)
			fn(userdata, e->owner, e->data, e->len);
		q->bytes -= e->len;
		free(e->data);
	}
	q->n = j;
	for (size_t i = j / 2; i-- > 0;)
		queue_sift_down(q->heap, j, i);
	return n - j;
}

size_t impair_queue_flush(struct impair_queue *q, impair_flush_fn fn, void *userdata)
{
	return queue_flush(q, true, 0, NULL, fn, userdata);
}

size_t impair_queue_flush_owner(struct impair_queue *q, uint32_t owner, impair_flush_fn fn,
				void *userdata)
{
	return queue_flush(q, false, owner, NULL, fn, userdata);
}

size_t impair_queue_flush_pick(struct impair_queue *q, impair_pick_fn pick, impair_flush_fn fn,
			       void *userdata)
{
	return queue_flush(q, false, 0, pick, fn, userdata);
}

size_t impair_queue_len(const struct impair_queue *q)
{
	return q->n;
}

size_t impair_queue_bytes(const struct impair_queue *q)
{
	return q->bytes;
}
