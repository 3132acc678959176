/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"
#include "util.h"

#define TRACE_BUF_SIZE (MONITOR_LINE_MAX + 32)
/* Kept free for more-rules=, result= and the impairment words at the end of a line. */
#define TRACE_TAIL_RESERVE 160

struct monitor_sub {
	struct monitor *monitor;
	struct monitor_sub *next, **pprev;
	struct monitor_opts o;
	struct monitor_sink sink;
	uint64_t sent;			/* captured packets delivered */
	uint64_t lost;			/* events refused by the sink since the last delivered one */
	bool done;			/* count reached: end() called */
	const struct chain *chain;	/* o.rule resolved in this chain... */
	unsigned int generation;	/* ...of this generation */
	int idx;			/* -ENOENT: not in it */
};

struct monitor {
	struct monitor_sub *subs;
	unsigned int n_before;		/* capture subscribers wanting MONITOR_BEFORE */
	uint8_t block[PCAPNG_EPB_MAX];
};

/* --- requests --------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int set_rule_name(struct monitor_opts *o, const char *name, char *err, size_t errlen)
{
	if (strlen(name) >= sizeof(o->rule) || !*name)
		return err_set(err, errlen, -EINVAL, "rule name '%s' is empty or too long", name);
	memcpy(o->rule, name, strlen(name) + 1);
	return 0;
}

static int parse_trace(const struct ctl_request *req, struct monitor_opts *o, char *err,
		       size_t errlen)
{
	static const char only_matches[] =
		"trace filter: only match keys are allowed (no name=, probability=, actions or verdicts)";
	struct rule_kv kv[RULE_KV_MAX];
	char msg[ERR_MAX], words[RULE_FORMAT_MAX];
	bool has_direction = false;
	size_t n = 0, badi;
	int r;

	for (size_t i = 0; i < req->n; i++) {
		const struct ctl_pair *pr = &req->pairs[i];

		if (strcmp(pr->key, "rule") == 0) {
			r = set_rule_name(o, pr->value, err, errlen);
			if (r < 0)
				return r;
			continue;
		}
		/* distribution=@FILE would have the daemon read a file for a trace client. */
		if (strcmp(pr->key, "verdict") == 0 || strcmp(pr->key, "distribution") == 0)
			return err_set(err, errlen, -EINVAL, "%s", only_matches);
		/* surgery (issue 15): actions, and fake=@FILE would be read too. */
		for (size_t k = 0; k < surgery_nkeys; k++)
			if (strcmp(pr->key, surgery_keys[k].name) == 0)
				return err_set(err, errlen, -EINVAL, "%s", only_matches);
		/* sets (issue 14): so would the lists. */
		if (strcmp(pr->key, "src-set") == 0 || strcmp(pr->key, "dst-set") == 0 ||
		    strcmp(pr->key, "host-set") == 0)
			return err_set(err, errlen, -EINVAL,
				       "trace filter: %s: lists are not read for a trace", pr->key);
		if (n == ARRAY_SIZE(kv) - 1)
			return err_set(err, errlen, -EINVAL,
				       "too many filter keys (at most %d)", RULE_KV_MAX - 1);
		has_direction |= strcmp(pr->key, "direction") == 0;
		kv[n++] = (struct rule_kv){ pr->key, pr->value };
	}
	if (n == 0)
		return 0;
	/* A rule must do something: the filter is parsed as an accepting rule. */
	kv[n++] = (struct rule_kv){ "verdict", "accept" };
	r = rule_parse(kv, n, &o->filter, &badi, msg, sizeof(msg));
	if (r < 0)
		return r == -EINVAL ? err_set(err, errlen, -EINVAL, "trace filter: %s", msg) : r;
	/* A rule is outbound unless it says; a filter without direction= sees both. */
	if (!has_direction)
		o->filter->dir_mask = RULE_DIR_BOTH;
	/* A filter only selects: actions, verdicts and probability make no sense. */
	if (rule_format_actions(o->filter, words, sizeof(words)) < 0 ||
	    strcmp(words, "verdict=accept") != 0 ||
	    (o->filter->m.flags & RULE_M_PROBABILITY) || rule_name(o->filter)[0]) {
		rule_free(o->filter);
		o->filter = NULL;
		return err_set(err, errlen, -EINVAL, "%s", only_matches);
	}
	return 0;
}

static int parse_capture(const struct ctl_request *req, struct monitor_opts *o, char *err,
			 size_t errlen)
{
	uint64_t v;
	int r;

	o->when = MONITOR_BEFORE | MONITOR_AFTER;
	o->snaplen = MONITOR_SNAPLEN_DEFAULT;
	if (strcmp(req->arg, "all") != 0) {
		r = set_rule_name(o, req->arg, err, errlen);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < req->n; i++) {
		const struct ctl_pair *pr = &req->pairs[i];

		if (strcmp(pr->key, "when") == 0) {
			if (strcmp(pr->value, "before") == 0)
				o->when = MONITOR_BEFORE;
			else if (strcmp(pr->value, "after") == 0)
				o->when = MONITOR_AFTER;
			else if (strcmp(pr->value, "both") == 0)
				o->when = MONITOR_BEFORE | MONITOR_AFTER;
			else
				return err_set(err, errlen, -EINVAL,
					       "when: '%s': expected before, after or both",
					       pr->value);
		} else if (strcmp(pr->key, "count") == 0) {
			if (parse_u64(pr->value, UINT64_MAX, &o->count) < 0)
				return err_set(err, errlen, -EINVAL,
					       "count: '%s': expected a number of packets",
					       pr->value);
		} else if (strcmp(pr->key, "snaplen") == 0) {
			if (parse_u64(pr->value, MONITOR_SNAPLEN_DEFAULT, &v) < 0 || v == 0)
				return err_set(err, errlen, -EINVAL,
					       "snaplen: '%s': expected 1..%d", pr->value,
					       MONITOR_SNAPLEN_DEFAULT);
			o->snaplen = (uint32_t)v;
		} else {
			return err_set(err, errlen, -EINVAL,
				       "unknown capture option '%s'", pr->key);
		}
	}
	return 0;
}

int monitor_opts_parse(const struct ctl_request *req, struct monitor_opts *o, char *err,
		       size_t errlen)
{
	int r;

	memset(o, 0, sizeof(*o));
	if (strcmp(req->command, "trace") == 0) {
		if (strcmp(req->arg, "1") != 0)
			return err_set(err, errlen, -EINVAL, "expected trace=1");
		o->kind = MONITOR_TRACE;
		r = parse_trace(req, o, err, errlen);
	} else if (strcmp(req->command, "capture") == 0) {
		o->kind = MONITOR_CAPTURE;
		r = parse_capture(req, o, err, errlen);
	} else {
		r = err_set(err, errlen, -EINVAL, "not a trace or capture request");
	}
	if (r < 0)
		monitor_opts_done(o);
	return r;
}

void monitor_opts_done(struct monitor_opts *o)
{
	o->filter = rule_free(o->filter);
}

/* --- trace lines ------------------------------------------------------------ */

static void put_impair(struct strbuf *o, const struct chain_impair *imp)
{
	static const struct {
		uint8_t bit;
		const char *name;
	} events[] = {
		{ CHAIN_IMPAIR_DUPLICATED, "duplicated" },
		{ CHAIN_IMPAIR_LOST, "lost" },
		{ CHAIN_IMPAIR_REORDERED, "reordered" },
		{ CHAIN_IMPAIR_DELAYED, "delayed" },
		{ CHAIN_IMPAIR_LIMITED, "dropped-limit" },
		{ CHAIN_IMPAIR_CORRUPTED, "corrupted" },
		{ CHAIN_IMPAIR_CE, "ce-marked" },
	};
	const char *sep = "=";
	bool waits = false;

	strbuf_printf(o, " impair");
	for (size_t i = 0; i < ARRAY_SIZE(events); i++) {
		if (!(imp->events & events[i].bit))
			continue;
		strbuf_printf(o, "%s%s", sep, events[i].name);
		sep = ",";
	}
	if (!imp->events)
		strbuf_printf(o, "=none");
	for (unsigned int k = 0; k < imp->res.n && k < IMPAIR_COPIES_MAX; k++)
		waits |= imp->res.copy[k].at_ns > imp->now_ns;
	if (!waits)
		return;
	sep = " delay=";
	for (unsigned int k = 0; k < imp->res.n && k < IMPAIR_COPIES_MAX; k++) {
		uint64_t at = imp->res.copy[k].at_ns;

		strbuf_printf(o, "%s", sep);
		strbuf_ms(o, ((at > imp->now_ns ? at - imp->now_ns : 0) + 500) / 1000);
		sep = ",";
	}
}

size_t monitor_trace_format(char *buf, size_t len, const struct monitor_event *ev)
{
	const struct pkt *p = ev->p;
	const struct chain_trace *t = ev->trace;
	struct strbuf o = { .buf = buf, .size = len };
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN], actions[RULE_FORMAT_MAX];
	const char *name;
	uint32_t more = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	inet_ntop(p->family, pkt_saddr(p), a, sizeof(a));
	inet_ntop(p->family, pkt_daddr(p), b, sizeof(b));
	strbuf_printf(&o, "time=%llu.%06llu dir=%s family=%s src=%s dst=%s",
	    (unsigned long long)(ev->time_ns / 1000000000ULL),
	    (unsigned long long)(ev->time_ns % 1000000000ULL / 1000),
	    p->dir == PKT_DIR_IN ? "in" : "out", p->family == AF_INET ? "ip" : "ip6", a, b);
	name = rule_proto_name(p->l4proto);
	if (name)
		strbuf_printf(&o, " proto=%s", name);
	else
		strbuf_printf(&o, " proto=%u", p->l4proto);
	if (p->l4_complete && (p->l4proto == IPPROTO_TCP || p->l4proto == IPPROTO_UDP))
		strbuf_printf(&o, " sport=%u dport=%u", p->sport, p->dport);
	if (p->l4_complete && (p->l4proto == IPPROTO_ICMP || p->l4proto == IPPROTO_ICMPV6)) {
		name = rule_icmp_type_name(p->family, p->icmp_type);
		if (name)
			strbuf_printf(&o, " icmp-type=%s", name);
		else
			strbuf_printf(&o, " icmp-type=%u", p->icmp_type);
		strbuf_printf(&o, " icmp-code=%u", p->icmp_code);
	}
	if (p->l4_complete && p->l4proto == IPPROTO_TCP)
		strbuf_printf(&o, " tcp-flags=0x%02x", p->tcp_flags);
	strbuf_printf(&o, " len=%zu", ev->before ? ev->before_len : p->len);

	/* Whole rules only, and room kept for the words that end the line. */
	for (uint32_t i = 0; t && i < t->n && i < CHAIN_TRACE_MAX; i++) {
		const struct rule *r = chain_rule(ev->chain, t->idx[i]);
		size_t need;

		if (!r)
			continue;
		if (rule_format_actions(r, actions, sizeof(actions)) < 0)
			actions[0] = '\0';
		need = strlen(" rule=") + strlen(rule_name(r)) + 1 + strlen(actions);
		if (o.len + need + TRACE_TAIL_RESERVE >= o.size) {
			more = t->n - i;
			break;
		}
		strbuf_printf(&o, " rule=%s", rule_name(r));
		if (actions[0])
			strbuf_printf(&o, " %s", actions);
	}
	if (!more && t && t->n > CHAIN_TRACE_MAX)
		more = t->n - CHAIN_TRACE_MAX;
	if (more)
		strbuf_printf(&o, " more-rules=%u", more);
	strbuf_printf(&o, " result=%s", chain_result_name(t ? t->result : CHAIN_RESULT_DEFAULT));
	if (ev->impair && ev->impair->impaired)
		put_impair(&o, ev->impair);
	if (ev->surgery_out)
		strbuf_printf(&o, " surgery-out=%u", ev->surgery_out);
	return o.len;
}

/* --- subscribers ------------------------------------------------------------- */

int monitor_new(struct monitor **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

struct monitor *monitor_free(struct monitor *m)
{
	if (!m)
		return NULL;
	while (m->subs)
		monitor_remove(m->subs);
	free(m);
	return NULL;
}

static bool wants_before(const struct monitor_sub *s)
{
	return s->o.kind == MONITOR_CAPTURE && (s->o.when & MONITOR_BEFORE) && !s->done;
}

int monitor_add(struct monitor *m, struct monitor_opts *o, const struct monitor_sink *sink,
		struct monitor_sub **ret)
{
	struct monitor_sub *s;
	uint8_t hdr[PCAPNG_HEADER_LEN];
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (o->kind == MONITOR_CAPTURE) {
		r = sink->write(sink->userdata, hdr, pcapng_header(hdr, o->snaplen));
		if (r < 0) {
			free(s);
			return r;
		}
	}
	s->monitor = m;
	s->o = *o;
	o->filter = NULL;
	s->sink = *sink;
	s->idx = -ENOENT;
	s->next = m->subs;
	if (s->next)
		s->next->pprev = &s->next;
	s->pprev = &m->subs;
	m->subs = s;
	if (wants_before(s))
		m->n_before++;
	if (ret)
		*ret = s;
	return 0;
}

void monitor_remove(struct monitor_sub *s)
{
	if (!s)
		return;
	if (wants_before(s))
		s->monitor->n_before--;
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	monitor_opts_done(&s->o);
	free(s);
}

bool monitor_active(const struct monitor *m)
{
	return m && m->subs;
}

bool monitor_wants_before(const struct monitor *m)
{
	return m && m->n_before > 0;
}

bool monitor_wants_unseen(const struct monitor *m, bool (*rule_seen)(void *userdata, const char *rule),
			  void *userdata)
{
	const struct monitor_sub *s;

	for (s = m ? m->subs : NULL; s; s = s->next)
		if (!s->o.rule[0] || !rule_seen(userdata, s->o.rule))
			return true;
	return false;
}

/* Whether the packet matched the subscriber's rule= in the chain that ran. */
static bool rule_selected(struct monitor_sub *s, const struct monitor_event *ev)
{
	const struct chain_trace *t = ev->trace;

	if (!s->o.rule[0])
		return true;
	if (s->chain != ev->chain || s->generation != ev->generation) {
		s->chain = ev->chain;
		s->generation = ev->generation;
		s->idx = chain_find(ev->chain, s->o.rule);
	}
	if (s->idx < 0 || !t)
		return false;
	for (uint32_t i = 0; i < t->n && i < CHAIN_TRACE_MAX; i++)
		if (t->idx[i] == (uint32_t)s->idx)
			return true;
	return false;
}

static void deliver_trace(struct monitor_sub *s, const char *line, size_t len)
{
	char lost[48];
	int n;

	if (s->lost) {
		n = snprintf(lost, sizeof(lost), "lost=%llu\n", (unsigned long long)s->lost);
		if (s->sink.write(s->sink.userdata, lost, (size_t)n) < 0) {
			s->lost++;
			return;
		}
		s->lost = 0;
	}
	if (s->sink.write(s->sink.userdata, line, len) < 0)
		s->lost++;
}

/* The way a copy travels: the packet's, and the other way for the answer forged to it. */
static unsigned int epb_dir(const struct monitor_event *ev, bool after)
{
	bool in = ev->p->dir == PKT_DIR_IN;

	if (after && ev->trace && (ev->trace->result == CHAIN_RESULT_REPLY ||
				   ev->trace->result == CHAIN_RESULT_REJECT))
		in = !in;
	return in ? PKT_DIR_IN : PKT_DIR_OUT;
}

static void deliver_packet(struct monitor *m, struct monitor_sub *s, bool after,
			   const struct monitor_event *ev, const uint8_t *data, size_t len)
{
	size_t n;

	if (s->done)
		return;
	n = pcapng_epb(m->block, after, epb_dir(ev, after), ev->time_ns, data, len, s->o.snaplen,
		       s->lost);
	if (s->sink.write(s->sink.userdata, m->block, n) < 0) {
		s->lost++;
		return;
	}
	s->lost = 0;
	s->sent++;
	if (s->o.count && s->sent >= s->o.count) {
		if (wants_before(s))
			m->n_before--;
		s->done = true;
		s->sink.end(s->sink.userdata);
	}
}

void monitor_event(struct monitor *m, const struct monitor_event *ev)
{
	char line[TRACE_BUF_SIZE];
	size_t len = 0;

	for (struct monitor_sub *s = m->subs; s; s = s->next) {
		if (s->done || !rule_selected(s, ev))
			continue;
		if (s->o.kind == MONITOR_TRACE) {
			if (s->o.filter && !chain_rule_matches(s->o.filter, ev->p))
				continue;
			/* Formatted once for every tracer that wants it. */
			if (!len) {
				len = (size_t)snprintf(line, MONITOR_LINE_MAX, "trace=");
				len += monitor_trace_format(line + len, MONITOR_LINE_MAX - 1 - len, ev);
				line[len++] = '\n';
			}
			deliver_trace(s, line, len);
			continue;
		}
		if ((s->o.when & MONITOR_BEFORE) && ev->before)
			deliver_packet(m, s, false, ev, ev->before, ev->before_len);
		if ((s->o.when & MONITOR_AFTER) && ev->after)
			deliver_packet(m, s, true, ev, ev->after, ev->after_len);
	}
}
