/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket's requests (see ipmodctl(8), PROTOCOL): status, the
 * rules with their counters, live edits of the chain, reload, counters reset,
 * trace and capture.  Every edit builds a whole new chain and swaps it in, so
 * a packet always sees either the old chain or the new one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "explain.h"
#include "fastpath.h"
#include "log.h"
#include "manager.h"
#include "monitor.h"
#include "reinject.h"
#include "tun.h"
#include "tunring.h"
#include "watch.h"

#define TRACE_STREAM_BUF (256 * 1024)
#define CAPTURE_STREAM_BUF (4 * 1024 * 1024)

static void rule_freep(struct rule **r)
{
	rule_free(*r);
}

typedef int (*command_t)(struct manager *m, struct control_client *cl,
			 const struct ctl_request *req, struct ctl_reply *reply);

/* key = name-suffix, in buf. */
static const char *fp_key(char *buf, size_t len, const char *name, const char *suffix)
{
	snprintf(buf, len, "%s-%s", name, suffix);
	return buf;
}

/*
 * One fast path's part of the status under the keys name, name-reason,
 * name-rules ...: its state, what the kernel holds, and its totals.  The
 * outbound one (what: "fast path's") also says whether it is paused and
 * how many rules it carries out whole.
 */
static int status_one_fastpath(struct manager *m, struct fastpath *fp, const char *name,
			       const char *reason, const char *what, bool outbound,
			       struct ctl_reply *reply)
{
	struct fastpath_totals t = { 0 };
	struct fastpath_info fi;
	char key[32];
	int r;

	if (!fp) {
		ctl_reply_add(reply, name, m->cfg->fastpath == FASTPATH_OFF ? "off" : "unavailable");
		if (m->cfg->fastpath != FASTPATH_OFF)
			ctl_reply_add(reply, fp_key(key, sizeof(key), name, "reason"), reason);
		return 0;
	}
	r = fastpath_totals(fp, &t);
	if (r < 0)
		return ctl_reply_error(reply, r, "reading the %s totals", what);
	fastpath_info(fp, &fi);
	ctl_reply_add(reply, name, "on");
	ctl_reply_add(reply, fp_key(key, sizeof(key), name, "attach"), fastpath_attach_name(fp));
	/* Paused while a trace or capture watches every packet. */
	if (outbound)
		ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "paused"),
				  !fastpath_enabled(fp));
	ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "rules"), fi.rules);
	ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "punt-rules"), fi.punts);
	if (outbound) {
		ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "whole"), fi.whole);
		/* Its packets go straight to the re-injection program (reinject-direct counts them). */
		ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "direct"), fastpath_next(fp));
		if (!fastpath_next(fp))
			ctl_reply_add(reply, fp_key(key, sizeof(key), name, "direct-reason"),
				      m->direct_reason[0] ? m->direct_reason : "unknown");
	}
	ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "handled"), t.handled);
	ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "dropped"), t.dropped);
	ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "punted"), t.punted);
	/* flow-packets rules: packets handed up within their positions, carried on past them. */
	ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "flow-punted"), t.flow_punted);
	ctl_reply_add_u64(reply, fp_key(key, sizeof(key), name, "flow-passed"), t.flow_passed);
	return 0;
}

static int status_fastpath(struct manager *m, struct ctl_reply *reply)
{
	return status_one_fastpath(m, m->fastpath, "fastpath", m->fastpath_reason, "fast path's",
				   true, reply);
}

/* The inbound fast path's (manager_start_fastpath_in()): only when it was tried. */
static int status_fastpath_in(struct manager *m, struct ctl_reply *reply)
{
	if (!m->fastpath_in && !m->fastpath_in_reason[0])
		return 0;
	return status_one_fastpath(m, m->fastpath_in, "fastpath-in", m->fastpath_in_reason,
				   "inbound fast path's", false, reply);
}

/* inbound.interfaces: the interfaces, their tuns, how attached, the kernel's totals. */
/*
 * tun.io: "uring" while some queue reads through io_uring (and how), else
 * "readwrite"; with "uring" asked for, why a queue reads with read().
 */
static void status_tun_io(struct manager *m, struct ctl_reply *reply)
{
	const struct manager_path *path = m->path.ring ? &m->path : NULL, *in = NULL;

	for (unsigned int q = 0; q < m->n_paths && !path; q++)
		if (m->paths[q].ring)
			path = &m->paths[q];
	for (unsigned int i = 0; i < m->n_inbound && !in; i++)
		for (unsigned int q = 0; q < m->inbound[i].tun->n_queues && !in; q++)
			if (m->inbound[i].path[q].ring)
				in = &m->inbound[i].path[q];
	if (!path)
		path = in;
	ctl_reply_add(reply, "tun-io", path ? "uring" : "readwrite");
	if (path) {
		ctl_reply_add(reply, "tun-io-reads",
			      tunring_multishot(path->ring) ? "multishot" : "plain");
		ctl_reply_add(reply, "tun-io-writes", path->ring_writes ? "ring" : "write");
	}
	/* The inbound tuns' queues on their own: "uring" while some reads through io_uring. */
	if (m->n_inbound)
		ctl_reply_add(reply, "inbound-tun-io", in ? "uring" : "readwrite");
	if (m->tun_io_fallbacks)
		ctl_reply_addf(reply, "tun-io-fallback", "%u queue(s) read with read(): %s",
			       m->tun_io_fallbacks, m->tun_io_reason);
}

static void status_inbound(struct manager *m, struct ctl_reply *reply)
{
	char ifs[CONFIG_INBOUND_MAX * IFNAMSIZ], tuns[CONFIG_INBOUND_MAX * IFNAMSIZ];
	struct strbuf a = { .buf = ifs, .size = sizeof(ifs) };
	struct strbuf b = { .buf = tuns, .size = sizeof(tuns) };
	struct inbound_totals sum = { 0 }, t;

	if (!m->n_inbound)
		return;
	ifs[0] = tuns[0] = '\0';
	for (unsigned int i = 0; i < m->n_inbound; i++) {
		strbuf_printf(&a, "%s%s", i ? "," : "", m->inbound[i].ifname);
		strbuf_printf(&b, "%s%s", i ? "," : "", m->inbound[i].tun->name);
		if (inbound_totals(m->inbound[i].ib, &t) < 0)
			continue;
		sum.diverted += t.diverted;
		sum.passed += t.passed;
		sum.returned += t.returned;
		sum.failed_open += t.failed_open;
		sum.reinjected += t.reinjected;
		sum.dropped += t.dropped;
	}
	ctl_reply_add(reply, "inbound", ifs);
	ctl_reply_add(reply, "inbound-tuns", tuns);
	ctl_reply_add(reply, "inbound-attach", inbound_attach_name(m->inbound[0].ib));
	ctl_reply_add_u64(reply, "inbound-diverted", sum.diverted);
	ctl_reply_add_u64(reply, "inbound-passed", sum.passed);
	ctl_reply_add_u64(reply, "inbound-returned", sum.returned);
	ctl_reply_add_u64(reply, "inbound-failed-open", sum.failed_open);
	ctl_reply_add_u64(reply, "inbound-reinjected", sum.reinjected);
	ctl_reply_add_u64(reply, "inbound-dropped", sum.dropped);
	ctl_reply_add_u64(reply, "inbound-repairs", m->stats.inbound_repairs);
	/* Each inbound tun has the tun's queues; with several, what each queue's worker read. */
	ctl_reply_add_u64(reply, "inbound-queues", m->inbound[0].tun->n_queues);
	if (m->inbound[0].n_workers) {
		/* One line: whole numbers only, as many as fit (8 tuns of 16 queues may not). */
		char list[CTL_LINE_MAX - sizeof("inbound-queue-rx-packets=\n")];
		struct strbuf sb = { .buf = list, .size = sizeof(list) };
		size_t len;

		list[0] = '\0';
		for (unsigned int i = 0; i < m->n_inbound && !sb.overflow; i++)
			for (unsigned int q = 0; q < m->inbound[i].n_workers && !sb.overflow; q++) {
				len = sb.len;
				strbuf_printf(&sb, "%s%llu", i || q ? "," : "",
					      (unsigned long long)m->inbound[i].path[q].rx_packets);
				if (sb.overflow)
					list[len] = '\0';
			}
		ctl_reply_add(reply, "inbound-queue-rx-packets", list);
	}
}

/* sets (issue 14): the lists the running chain's rules use, each counted once. */
static void status_sets(struct manager *m, struct ctl_reply *reply)
{
	struct chain_sets_info si;

	chain_sets_info(m->chain, &si);
	ctl_reply_add_u64(reply, "sets", si.sets);
	ctl_reply_add_u64(reply, "sets-prefixes", si.prefixes);
	ctl_reply_add_u64(reply, "sets-names", si.names);
	ctl_reply_add_u64(reply, "sets-bytes", si.bytes);
}

static int cmd_status(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		      struct ctl_reply *reply)
{
	struct fastpath_totals kernel = { 0 }, kernel_in = { 0 };
	struct chain_stats cs;
	struct watch_status ws;
	uint64_t now = 0;
	char key[48];
	int i;

	chain_stats(m->chain, &cs);
	if (m->fastpath && fastpath_totals(m->fastpath, &kernel) < 0)
		kernel = (struct fastpath_totals){ 0 };
	if (m->fastpath_in && fastpath_totals(m->fastpath_in, &kernel_in) < 0)
		kernel_in = (struct fastpath_totals){ 0 };
	sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	ctl_reply_add(reply, "version", PACKAGE_VERSION);
	ctl_reply_add_u64(reply, "pid", (uint64_t)getpid());
	ctl_reply_add_u64(reply, "uptime-sec", (now - m->start_usec) / 1000000);
	ctl_reply_add(reply, "config", m->cfg->path);
	ctl_reply_add_u64(reply, "generation", m->generation);
	ctl_reply_add_u64(reply, "modified", m->modified);
	ctl_reply_add(reply, "tun", m->tun->name);
	tun_offload_name(m->tun->offload, key, sizeof(key));
	ctl_reply_add(reply, "offload", key);
	ctl_reply_add_u64(reply, "queues", m->tun->n_queues);
	status_tun_io(m, reply);
	ctl_reply_addf(reply, "families", "%s%s%s", m->cfg->ipv4 ? "ipv4" : "",
		       m->cfg->ipv4 && m->cfg->ipv6 ? "," : "", m->cfg->ipv6 ? "ipv6" : "");
	ctl_reply_add_u64(reply, "table", m->cfg->table);
	ctl_reply_add_u64(reply, "priority", m->cfg->priority);
	ctl_reply_add_u64(reply, "rules", chain_size(m->chain));
	ctl_reply_add_u64(reply, "rx-packets", m->stats.rx_packets);
	ctl_reply_add_u64(reply, "rx-bytes", m->stats.rx_bytes);
	ctl_reply_add_u64(reply, "tx-packets", m->stats.tx_packets);
	ctl_reply_add_u64(reply, "tx-bytes", m->stats.tx_bytes);
	ctl_reply_add_u64(reply, "in-rx-packets", m->stats.in_rx_packets);
	ctl_reply_add_u64(reply, "in-rx-bytes", m->stats.in_rx_bytes);
	ctl_reply_add_u64(reply, "in-tx-packets", m->stats.in_tx_packets);
	ctl_reply_add_u64(reply, "in-tx-bytes", m->stats.in_tx_bytes);
	status_inbound(m, reply);
	if (m->n_paths) {
		char list[CONFIG_QUEUES_MAX * 21];
		struct strbuf sb = { .buf = list, .size = sizeof(list) };

		list[0] = '\0';
		for (unsigned int q = 0; q < m->n_paths; q++)
			strbuf_printf(&sb, "%s%llu", q ? "," : "",
				      (unsigned long long)m->paths[q].rx_packets);
		ctl_reply_add(reply, "queue-rx-packets", list);
	}
	ctl_reply_add_u64(reply, "gso-whole", m->stats.gso_whole);
	ctl_reply_add_u64(reply, "gso-split", m->stats.gso_split);
	/* Host name decisions the fast paths' flow maps refused (those flows stay with the daemon). */
	ctl_reply_add_u64(reply, "fastpath-decide-failed", m->stats.fastpath_decide_failed);
	/* Packet surgery: what the rules that cut made (ipmodd.conf(5), SURGERY). */
	ctl_reply_add_u64(reply, "surgery-split", m->stats.surgery_split);
	ctl_reply_add_u64(reply, "surgery-parts", m->stats.surgery_parts);
	ctl_reply_add_u64(reply, "surgery-ipfrag", m->stats.surgery_ipfrag);
	ctl_reply_add_u64(reply, "surgery-fragments", m->stats.surgery_fragments);
	ctl_reply_add_u64(reply, "surgery-fakes", m->stats.surgery_fakes);
	ctl_reply_add_u64(reply, "surgery-whole", m->stats.surgery_whole);
	ctl_reply_add_u64(reply, "surgery-errors", m->stats.surgery_errors);
	if (m->flows) {
		struct flow_stats fs;

		flow_table_stats(m->flows, &fs);
		ctl_reply_add_u64(reply, "flows-entries", fs.entries);
		ctl_reply_add_u64(reply, "flows-max", fs.max_entries);
		ctl_reply_add_u64(reply, "flows-created", fs.created);
		ctl_reply_add_u64(reply, "flows-evicted", fs.evicted);
		ctl_reply_add_u64(reply, "flows-expired", fs.expired);
		ctl_reply_add_u64(reply, "flows-rbufs-used", fs.rbufs_used);
		ctl_reply_add_u64(reply, "flows-rbufs-exhausted", fs.pool_exhausted);
	}
	/* What a rule dropped, in the daemon or in the kernel's fast path. */
	ctl_reply_add_u64(reply, "dropped-rule", m->stats.dropped + kernel.dropped + kernel_in.dropped);
	for (i = PKT_OK + 1; i < PKT_CLASS_MAX; i++) {
		snprintf(key, sizeof(key), "malformed-%s", pkt_class_name(i));
		ctl_reply_add_u64(reply, key, m->stats.malformed[i]);
	}
	ctl_reply_add_u64(reply, "forged", cs.forged);
	ctl_reply_add_u64(reply, "forge-refused", cs.forge_refused);
	ctl_reply_add_u64(reply, "forge-limited", cs.forge_limited);
	ctl_reply_add_u64(reply, "impair-queued", impair_queue_len(&m->impair_queue));
	ctl_reply_add_u64(reply, "impair-queued-bytes", impair_queue_bytes(&m->impair_queue));
	ctl_reply_add_u64(reply, "impair-sent", m->stats.impair_sent);
	ctl_reply_add_u64(reply, "impair-flushed", m->stats.impair_flushed);
	ctl_reply_add_u64(reply, "rules-expired", m->stats.rules_expired);
	status_sets(m, reply);
	ctl_reply_add(reply, "failure", m->cfg->fail_closed ? "closed" : "open");
	ctl_reply_add_u64(reply, "stall-timeout-ms", m->cfg->fail_closed ? 0 : m->cfg->stall_timeout_ms);
	ctl_reply_add_u64(reply, "stall-trips", m->stats.stall_trips);
	ctl_reply_add_u64(reply, "unhealthy-checks", m->stats.unhealthy_ticks);
	ctl_reply_add_u64(reply, "reloading", manager_reload_running(m));
	ctl_reply_add_u64(reply, "reloads", m->stats.reloads);
	ctl_reply_add_u64(reply, "reload-failures", m->stats.reload_failures);
	ctl_reply_add_u64(reply, "reload-build-ms", m->stats.reload_build_ms);
	ctl_reply_add_u64(reply, "reload-pause-us", m->stats.reload_pause_us);
	ctl_reply_add_u64(reply, "reload-pause-max-us", m->stats.reload_pause_max_us);
	watch_get_status(m->watch, &ws);
	ctl_reply_add(reply, "restore", ws.state);
	ctl_reply_add_u64(reply, "restores", ws.restores);
	if (ws.last[0])
		ctl_reply_add(reply, "restore-last", ws.last);
	if (ws.error[0])
		ctl_reply_add(reply, "restore-error", ws.error);
	ctl_reply_add_u64(reply, "restore-backoffs", ws.backoffs);
	ctl_reply_add_u64(reply, "restore-retry-sec", (ws.retry_usec + 999999) / 1000000);
	ctl_reply_add_u64(reply, "restore-checks", ws.checks);
	ctl_reply_add_u64(reply, "restore-overruns", ws.overruns);
	ctl_reply_add_u64(reply, "loops", m->loopguard.loops);
	ctl_reply_add_u64(reply, "read-errors", m->stats.read_errors);
	ctl_reply_add_u64(reply, "write-errors", m->stats.write_errors);
	if (m->reinject) {
		struct reinject_totals t = { 0 };

		ctl_reply_add(reply, "reinject", "bpf");
		ctl_reply_add(reply, "reinject-attach", reinject_attach_name(m->reinject));
		if (reinject_totals(m->reinject, &t) == 0) {
			ctl_reply_add_u64(reply, "reinject-redirected", t.redirected);
			ctl_reply_add_u64(reply, "reinject-forwarded", t.forwarded);
			ctl_reply_add_u64(reply, "reinject-kernel", t.other);
			ctl_reply_add_u64(reply, "reinject-dropped", t.dropped);
			ctl_reply_add_u64(reply, "reinject-direct", t.direct);
			ctl_reply_add_u64(reply, "reinject-source-known", t.source_known);
			ctl_reply_add_u64(reply, "reinject-route-known", t.route_known);
		}
	} else {
		ctl_reply_add(reply, "reinject", "forward");
		ctl_reply_add(reply, "reinject-reason", m->reinject_reason);
	}
	ctl_reply_add_u64(reply, "control-clients", control_clients(m->control));
	ctl_reply_add_u64(reply, "streams", control_streams(m->control));
	i = status_fastpath(m, reply);
	if (i < 0)
		return i;
	return status_fastpath_in(m, reply);
}

/*
 * Where rule i runs in one direction, whose fast path is fp: "kernel" when
 * fp carries it out, else "daemon" and why (key_reason): the fast path is
 * off, unavailable or paused, or the word of the rule's spec the kernel
 * cannot carry out.
 */
static void rule_where_dir(struct manager *m, const struct fastpath *fp, bool in, size_t i,
			   const struct rule *r, const char *key, const char *key_reason,
			   struct ctl_reply *reply)
{
	const char *why = fastpath_rule_why_not(r);

	if (fp && !why && fastpath_rule_carried(fp, i)) {
		ctl_reply_add(reply, key, fastpath_enabled(fp) ? "kernel" : "daemon");
		if (!fastpath_enabled(fp))
			ctl_reply_add(reply, key_reason, "fast path paused by a trace or capture");
		return;
	}
	ctl_reply_add(reply, key, "daemon");
	if (why)
		ctl_reply_add(reply, key_reason, why);
	else if (!fp && m->cfg->fastpath == FASTPATH_OFF)
		ctl_reply_add(reply, key_reason, "fast path off");
	else if (!fp && in && !m->fastpath_in_reason[0])
		ctl_reply_add(reply, key_reason, "no inbound interfaces");
	else if (!fp)
		ctl_reply_add(reply, key_reason, in ? "inbound fast path unavailable" :
				  "fast path unavailable");
	else
		ctl_reply_add(reply, key_reason, "not in the kernel's rules");
}

/*
 * Where rule i runs: where= for its outbound packets (for a rule of
 * direction in only: its inbound ones), and where-in= for the inbound
 * packets of a rule of direction in or both.
 */
static void rule_where(struct manager *m, size_t i, const struct rule *r,
		       struct ctl_reply *reply)
{
	bool out = fastpath_rule_in_dir(r, PKT_DIR_OUT), in = fastpath_rule_in_dir(r, PKT_DIR_IN);

	rule_where_dir(m, out ? m->fastpath : m->fastpath_in, !out, i, r, "where", "where-reason",
		       reply);
	if (in)
		rule_where_dir(m, m->fastpath_in, true, i, r, "where-in", "where-in-reason", reply);
}

static int cmd_rules(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		     struct ctl_reply *reply)
{
	char spec[RULE_FORMAT_MAX];
	struct impair_counters ic;
	uint64_t pkts, bytes, kpkts = 0, kbytes = 0;
	int k;

	ctl_reply_add_u64(reply, "generation", m->generation);
	ctl_reply_add_u64(reply, "modified", m->modified);
	for (size_t i = 0; i < chain_size(m->chain); i++) {
		const struct rule *r = chain_rule(m->chain, i);

		chain_counters(m->chain, i, &pkts, &bytes);
		/* What the kernel carried out counts too, in both directions. */
		if (m->fastpath) {
			k = fastpath_counters(m->fastpath, i, &kpkts, &kbytes);
			if (k < 0)
				return ctl_reply_error(reply, k, "reading the fast path's counters");
		}
		if (m->fastpath_in) {
			uint64_t ipkts, ibytes;

			k = fastpath_counters(m->fastpath_in, i, &ipkts, &ibytes);
			if (k < 0)
				return ctl_reply_error(reply, k, "reading the inbound fast path's counters");
			kpkts = (m->fastpath ? kpkts : 0) + ipkts;
			kbytes = (m->fastpath ? kbytes : 0) + ibytes;
		}
		if (rule_format(r, spec, sizeof(spec)) < 0)
			return -ENOSPC;
		ctl_reply_add(reply, "rule", rule_name(r));
		ctl_reply_add_u64(reply, "index", i + 1);
		ctl_reply_add(reply, "spec", spec);
		ctl_reply_add_u64(reply, "packets", pkts + kpkts);
		ctl_reply_add_u64(reply, "bytes", bytes + kbytes);
		if (chain_rule_expire_at(m->chain, i)) {
			uint64_t at = chain_rule_expire_at(m->chain, i), now = manager_clock_ns();

			/* Rounded up: a rule still there has time left. */
			ctl_reply_add_u64(reply, "expires-in-ms",
					  at > now ? (at - now + 999999) / 1000000 : 0);
		}
		rule_where(m, i, r, reply);
		if (!chain_impair_counters(m->chain, i, &ic))
			continue;
		ctl_reply_add_u64(reply, "delayed", ic.delayed);
		ctl_reply_add_u64(reply, "dropped-loss", ic.dropped_loss);
		ctl_reply_add_u64(reply, "dropped-limit", ic.dropped_limit);
		ctl_reply_add_u64(reply, "duplicated", ic.duplicated);
		ctl_reply_add_u64(reply, "reordered", ic.reordered);
		ctl_reply_add_u64(reply, "corrupted", ic.corrupted);
		ctl_reply_add_u64(reply, "ce-marked", ic.ce_marked);
		if (r->impair.trace[0])
			ctl_reply_add_u64(reply, "dropped-aqm", ic.dropped_aqm);
	}
	return 0;
}

/*
 * Swap in a chain made of the running rules [0, at), insert (when not NULL),
 * then the running rules from at + removed on.
 */
static int edit_chain(struct manager *m, size_t at, size_t removed, const struct rule *insert,
		      struct ctl_reply *reply)
{
	_cleanup_(freep) struct rule **v = NULL;
	size_t n = chain_size(m->chain), k = 0;
	struct chain *chain = NULL;
	char err[ERR_MAX];
	int r;

	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	/* chain_new() only reads the rules it copies. */
	for (size_t i = 0; i < at; i++)
		v[k++] = (struct rule *)chain_rule(m->chain, i);
	if (insert)
		v[k++] = (struct rule *)insert;
	for (size_t i = at + removed; i < n; i++)
		v[k++] = (struct rule *)chain_rule(m->chain, i);
	r = chain_new_from(v, k, m->chain, &chain, err, sizeof(err));
	if (r < 0)
		return ctl_reply_error(reply, r, "%s", err);
	manager_set_chain(m, chain, true);
	ctl_reply_add_u64(reply, "generation", m->generation);
	ctl_reply_add_u64(reply, "rules", chain_size(m->chain));
	manager_notify_status(m, "");
	return 0;
}

static int find_rule(struct manager *m, const char *name, struct ctl_reply *reply)
{
	int i = chain_find(m->chain, name);

	if (i < 0)
		return ctl_reply_error(reply, -ENOENT, "no rule named '%s'", name);
	return i;
}

/*
 * The request's lines as a rule.  Without name=, the rule is named
 * default_name, or "rule-K" with K the first number from `at + 1` on that no
 * running rule uses.
 */
static int request_rule(struct manager *m, const struct ctl_request *req, size_t at,
			const char *default_name, struct rule **ret, struct ctl_reply *reply)
{
	struct rule_kv kv[RULE_KV_MAX + 1];
	char name[RULE_NAME_MAX], err[ERR_MAX];
	size_t bad, n = 0;
	bool named = false;
	int r;

	if (req->n == 0)
		return ctl_reply_error(reply, -EINVAL, "no rule given: key=value lines expected");
	if (req->n > RULE_KV_MAX)
		return ctl_reply_error(reply, -E2BIG, "too many keys (at most %d)", RULE_KV_MAX);
	for (size_t i = 0; i < req->n; i++) {
		kv[n++] = (struct rule_kv){ req->pairs[i].key, req->pairs[i].value };
		named |= strcmp(req->pairs[i].key, "name") == 0;
	}
	if (!named) {
		if (default_name) {
			snprintf(name, sizeof(name), "%s", default_name);
		} else {
			for (size_t k = at + 1;; k++) {
				snprintf(name, sizeof(name), "rule-%zu", k);
				if (chain_find(m->chain, name) < 0)
					break;
			}
		}
		kv[n++] = (struct rule_kv){ "name", name };
	}
	/* sets (issue 14): a list the running rules have is shared, not read again. */
	rule_set_scope_begin();
	for (size_t i = 0; i < chain_size(m->chain); i++)
		rule_set_scope_share(chain_rule(m->chain, i));
	r = rule_parse(kv, n, ret, &bad, err, sizeof(err));
	rule_set_scope_end();
	if (r < 0)
		return ctl_reply_error(reply, r, "%s", err);
	/* impairment.seed covers live rules too. */
	config_seed_rule(m->cfg, *ret, at);
	return 0;
}

/* add=end | N | before:NAME | after:NAME */
static int parse_position(struct manager *m, const char *pos, size_t *ret,
			  struct ctl_reply *reply)
{
	size_t n = chain_size(m->chain);
	unsigned long v;
	char *end;
	int i;

	if (strcmp(pos, "end") == 0) {
		*ret = n;
		return 0;
	}
	if (strncmp(pos, "before:", 7) == 0 || strncmp(pos, "after:", 6) == 0) {
		bool after = pos[0] == 'a';

		i = find_rule(m, pos + (after ? 6 : 7), reply);
		if (i < 0)
			return i;
		*ret = (size_t)i + after;
		return 0;
	}
	errno = 0;
	v = strtoul(pos, &end, 10);
	if (pos[0] < '0' || pos[0] > '9' || *end || errno)
		return ctl_reply_error(reply, -EINVAL,
				       "position '%s': expected end, a number, before:NAME or after:NAME",
				       pos);
	if (v < 1 || v > n + 1)
		return ctl_reply_error(reply, -ERANGE, "position %s: expected 1..%zu", pos, n + 1);
	*ret = v - 1;
	return 0;
}

static int cmd_add(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		   struct ctl_reply *reply)
{
	_cleanup_(rule_freep) struct rule *rule = NULL;
	size_t at = 0;
	int r;

	r = parse_position(m, req->arg, &at, reply);
	if (r < 0)
		return r;
	r = request_rule(m, req, at, NULL, &rule, reply);
	if (r < 0)
		return r;
	if (chain_find(m->chain, rule_name(rule)) >= 0)
		return ctl_reply_error(reply, -EEXIST, "a rule named '%s' exists already",
				       rule_name(rule));
	ctl_reply_add(reply, "name", rule_name(rule));
	ctl_reply_add_u64(reply, "index", at + 1);
	manager_audit_rule(m, rule);
	return edit_chain(m, at, 0, rule, reply);
}

static int cmd_del(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		   struct ctl_reply *reply)
{
	int i = find_rule(m, req->arg, reply);

	if (i < 0)
		return i;
	return edit_chain(m, (size_t)i, 1, NULL, reply);
}

static int cmd_replace(struct manager *m, struct control_client *cl,
		       const struct ctl_request *req, struct ctl_reply *reply)
{
	_cleanup_(rule_freep) struct rule *rule = NULL;
	int i, j, r;

	i = find_rule(m, req->arg, reply);
	if (i < 0)
		return i;
	r = request_rule(m, req, (size_t)i, req->arg, &rule, reply);
	if (r < 0)
		return r;
	j = chain_find(m->chain, rule_name(rule));
	if (j >= 0 && j != i)
		return ctl_reply_error(reply, -EEXIST, "a rule named '%s' exists already",
				       rule_name(rule));
	ctl_reply_add(reply, "name", rule_name(rule));
	ctl_reply_add_u64(reply, "index", (uint64_t)i + 1);
	manager_audit_rule(m, rule);
	return edit_chain(m, (size_t)i, 1, rule, reply);
}

static int cmd_flush(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		     struct ctl_reply *reply)
{
	return edit_chain(m, 0, chain_size(m->chain), NULL, reply);
}

static bool pick_impairing(const struct chain *c, size_t i, void *userdata)
{
	return rule_impairs(chain_rule(c, i));
}

/* flush --impairments: the panic button; the other rules stay. */
static int cmd_flush_impairments(struct manager *m, struct control_client *cl,
				 const struct ctl_request *req, struct ctl_reply *reply)
{
	char err[ERR_MAX];
	int r;

	r = manager_remove_rules(m, pick_impairing, NULL, err, sizeof(err));
	if (r < 0)
		return ctl_reply_error(reply, r, "%s", r == -ENOMEM ? "out of memory" : err);
	if (r > 0)
		log_info("flush --impairments: removed %d impairing rule%s", r, r == 1 ? "" : "s");
	ctl_reply_add_u64(reply, "removed", (uint64_t)r);
	ctl_reply_add_u64(reply, "generation", m->generation);
	ctl_reply_add_u64(reply, "rules", chain_size(m->chain));
	manager_notify_status(m, "");
	return 0;
}

/*
 * Answered later, when the chain built off the loop runs or the reload
 * failed (manager-reload.c): the reply, and its audit entry, say which.
 */
static int cmd_reload(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		      struct ctl_reply *reply)
{
	uid_t uid;
	pid_t pid;
	int r;

	control_client_peer(cl, &uid, &pid);
	r = manager_reload_request(m, cl, uid, pid, m->audit_declared);
	if (r < 0)
		return ctl_reply_error(reply, r, "cannot start the reload: %s", strerror(-r));
	return 0;
}

static int cmd_reset(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		     struct ctl_reply *reply)
{
	int r;

	chain_reset_counters(m->chain);
	if (m->fastpath) {
		r = fastpath_reset(m->fastpath);
		if (r < 0)
			return ctl_reply_error(reply, r, "resetting the fast path's counters");
	}
	if (m->fastpath_in) {
		r = fastpath_reset(m->fastpath_in);
		if (r < 0)
			return ctl_reply_error(reply, r, "resetting the inbound fast path's counters");
	}
	return 0;
}

/*
 * explain=1 and the packet's fields: the rules of the running chain that
 * packet would match, in order, the result, and whether the kernel's fast
 * path or the daemon would handle it.  Nothing is counted or sent.
 */
static int cmd_explain(struct manager *m, struct control_client *cl,
		       const struct ctl_request *req, struct ctl_reply *reply)
{
	struct rule_kv kv[EXPLAIN_FIELDS_MAX];
	_cleanup_(freep) uint8_t *buf = NULL, *fbuf = NULL;
	struct chain_explain ex;
	struct pkt p, forged;
	char err[ERR_MAX], actions[RULE_FORMAT_MAX], a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	const char *name, *where = "kernel", *reason = NULL;
	const struct fastpath *fp;
	int r;

	if (req->n > EXPLAIN_FIELDS_MAX)
		return ctl_reply_error(reply, -E2BIG, "too many fields (at most %d)",
				       EXPLAIN_FIELDS_MAX);
	for (size_t i = 0; i < req->n; i++)
		kv[i] = (struct rule_kv){ req->pairs[i].key, req->pairs[i].value };
	buf = malloc(EXPLAIN_BUF_MAX);
	fbuf = malloc(EXPLAIN_BUF_MAX);
	if (!buf || !fbuf)
		return -ENOMEM;
	r = explain_packet(kv, req->n, buf, EXPLAIN_BUF_MAX, &p, err, sizeof(err));
	if (r < 0)
		return ctl_reply_error(reply, r, "%s", err);

	inet_ntop(p.family, pkt_saddr(&p), a, sizeof(a));
	inet_ntop(p.family, pkt_daddr(&p), b, sizeof(b));
	ctl_reply_add(reply, "family", p.family == AF_INET ? "ip" : "ip6");
	ctl_reply_add(reply, "src", a);
	ctl_reply_add(reply, "dst", b);
	name = rule_proto_name(p.l4proto);
	if (name)
		ctl_reply_add(reply, "proto", name);
	else
		ctl_reply_add_u64(reply, "proto", p.l4proto);
	if (p.l4_complete && (p.l4proto == IPPROTO_TCP || p.l4proto == IPPROTO_UDP)) {
		ctl_reply_add_u64(reply, "sport", p.sport);
		ctl_reply_add_u64(reply, "dport", p.dport);
	}
	if (p.l4_complete && (p.l4proto == IPPROTO_ICMP || p.l4proto == IPPROTO_ICMPV6)) {
		name = rule_icmp_type_name(p.family, p.icmp_type);
		if (name)
			ctl_reply_add(reply, "icmp-type", name);
		else
			ctl_reply_add_u64(reply, "icmp-type", p.icmp_type);
		ctl_reply_add_u64(reply, "icmp-code", p.icmp_code);
	}
	if (p.l4_complete && p.l4proto == IPPROTO_TCP)
		ctl_reply_addf(reply, "tcp-flags", "0x%02x", p.tcp_flags);
	ctl_reply_add_u64(reply, "ttl", pkt_ttl(&p));
	ctl_reply_add_u64(reply, "len", p.len);
	ctl_reply_add(reply, "direction", p.dir == PKT_DIR_IN ? "in" : "out");

	forged = (struct pkt){ .data = fbuf, .cap = EXPLAIN_BUF_MAX };
	chain_explain(m->chain, &p, &forged, &ex);

	/* The fast path of the packet's direction. */
	fp = p.dir == PKT_DIR_IN ? m->fastpath_in : m->fastpath;
	if (!fp) {
		where = "daemon";
		reason = m->cfg->fastpath == FASTPATH_OFF ? "fast path off" :
			 p.dir == PKT_DIR_IN ? "inbound fast path unavailable" : "fast path unavailable";
	} else if (!fastpath_enabled(fp)) {
		where = "daemon";
		reason = "fast path paused by a trace or capture";
	}
	for (uint32_t k = 0; k < ex.n && k < CHAIN_EXPLAIN_MAX; k++) {
		const struct rule *rule = chain_rule(m->chain, ex.idx[k]);

		if (rule_format_actions(rule, actions, sizeof(actions)) < 0)
			actions[0] = '\0';
		ctl_reply_add(reply, "rule", rule_name(rule));
		ctl_reply_add_u64(reply, "index", ex.idx[k] + 1);
		if (ex.maybe[k])
			ctl_reply_addf(reply, "probability", "%.17g", rule->probability);
		if (actions[0])
			ctl_reply_add(reply, "actions", actions);
		if (!reason && fp && !fastpath_rule_carried(fp, ex.idx[k])) {
			const char *why = fastpath_rule_why_not(rule);

			where = "daemon";
			snprintf(err, sizeof(err), "rule %s: %s", rule_name(rule),
				 why ? why : "not in the kernel's rules");
			reason = err;
		}
	}
	if (ex.n > CHAIN_EXPLAIN_MAX)
		ctl_reply_add_u64(reply, "more-rules", ex.n - CHAIN_EXPLAIN_MAX);
	ctl_reply_add(reply, "result", chain_result_name(ex.result));
	if (ex.impaired)
		ctl_reply_add(reply, "impaired", rule_name(chain_rule(m->chain, (size_t)ex.end)));
	ctl_reply_add(reply, "where", where);
	if (reason)
		ctl_reply_add(reply, "where-reason", reason);
	return 0;
}

/* A trace or capture subscriber fed through its client's stream. */
struct tap {
	struct manager *m;
	struct control_client *client;
	struct monitor_sub *sub;
};

static int tap_write(void *userdata, const void *data, size_t len)
{
	struct tap *t = userdata;

	return control_stream_write(t->client, data, len);
}

static void tap_end(void *userdata)
{
	struct tap *t = userdata;

	control_stream_end(t->client);
}

static void tap_closed(void *userdata)
{
	struct tap *t = userdata;

	monitor_remove(t->sub);
	manager_fastpath_watch(t->m);
	free(t);
}

static int cmd_monitor(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		       struct ctl_reply *reply)
{
	struct monitor_opts o;
	struct monitor_sink sink = { tap_write, tap_end, NULL };
	struct tap *t;
	char err[ERR_MAX];
	int r;

	r = monitor_opts_parse(req, &o, err, sizeof(err));
	if (r < 0)
		return ctl_reply_error(reply, r, "%s", err);
	if (o.rule[0] && chain_find(m->chain, o.rule) < 0) {
		monitor_opts_done(&o);
		return ctl_reply_error(reply, -ENOENT, "no rule named '%s'", o.rule);
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		monitor_opts_done(&o);
		return -ENOMEM;
	}
	t->m = m;
	t->client = cl;
	r = control_stream_start(cl, o.kind == MONITOR_TRACE ? TRACE_STREAM_BUF : CAPTURE_STREAM_BUF,
				 tap_closed, t);
	if (r < 0) {
		free(t);
		monitor_opts_done(&o);
		if (r == -EBUSY)
			return ctl_reply_error(reply, r, "too many trace and capture sessions (%d)",
					       CONTROL_STREAMS_MAX);
		return r;
	}
	/* From here on, a failure closes the stream, and tap_closed() frees t. */
	sink.userdata = t;
	r = monitor_add(m->monitor, &o, &sink, &t->sub);
	monitor_opts_done(&o);
	/* From now on the subscriber sees every packet: none is left to the kernel. */
	manager_fastpath_watch(m);
	return r;
}

/* "flows=1": the live flows, most recently used first, filtered, at most limit= of them. */
#define FLOWS_LIST_DEFAULT 1000
#define FLOWS_LIST_MAX 50000	/* 13 lines each: within CTL_REPLY_KEYS_MAX */

struct flows_listing {
	struct ctl_reply *reply;
	uint64_t now_ns;
	uint64_t listed, limit, more;
	int err;
};

static int flows_one(const struct flow *f, void *arg)
{
	struct flows_listing *l = arg;
	char line[FLOW_LINE_MAX], a[INET6_ADDRSTRLEN], z[INET6_ADDRSTRLEN];
	unsigned int o = f->opener, r = !f->opener;
	int n;

	if (l->listed >= l->limit) {
		l->more++;
		return 0;
	}
	n = flow_format(f, l->now_ns, line, sizeof(line));
	if (n < 0) {
		l->err = n;
		return n;
	}
	inet_ntop(f->key.family, f->key.addr[o], a, sizeof(a));
	inet_ntop(f->key.family, f->key.addr[r], z, sizeof(z));
	ctl_reply_add(l->reply, "flow", line);
	ctl_reply_add_u64(l->reply, "proto", f->key.proto);
	ctl_reply_add(l->reply, "src", a);
	ctl_reply_add_u64(l->reply, "sport", f->key.port[o]);
	ctl_reply_add(l->reply, "dst", z);
	ctl_reply_add_u64(l->reply, "dport", f->key.port[r]);
	ctl_reply_add(l->reply, "state", flow_state_name(f->state));
	ctl_reply_add_u64(l->reply, "orig-packets", f->pkts[FLOW_DIR_ORIGINAL]);
	ctl_reply_add_u64(l->reply, "orig-bytes", f->bytes[FLOW_DIR_ORIGINAL]);
	ctl_reply_add_u64(l->reply, "reply-packets", f->pkts[FLOW_DIR_REPLY]);
	ctl_reply_add_u64(l->reply, "reply-bytes", f->bytes[FLOW_DIR_REPLY]);
	ctl_reply_add_u64(l->reply, "age-ms", (l->now_ns - f->first_ns) / 1000000);
	if (f->host[0])
		ctl_reply_add(l->reply, "host", f->host);
	l->listed++;
	return 0;
}

static int cmd_flows(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		     struct ctl_reply *reply)
{
	struct flows_listing l = { .reply = reply, .now_ns = manager_clock_ns(),
				   .limit = FLOWS_LIST_DEFAULT };
	struct flow_filter flt = { 0 };
	struct flow_stats fs;
	char *end;
	unsigned long v;
	int r;

	for (size_t i = 0; i < req->n; i++) {
		const char *k = req->pairs[i].key, *val = req->pairs[i].value;

		if (!strcmp(k, "proto")) {
			const char *name = NULL;

			for (unsigned int p = 0; p < 256 && !name; p++) {
				const char *pn = rule_proto_name(p);

				if (pn && !strcmp(pn, val)) {
					flt.proto = (uint8_t)p;
					name = pn;
				}
			}
			if (!name) {
				v = strtoul(val, &end, 10);
				if (!*val || *end || v < 1 || v > 255)
					return ctl_reply_error(reply, -EINVAL,
							       "proto: '%s' is not a protocol name or 1..255", val);
				flt.proto = (uint8_t)v;
			}
		} else if (!strcmp(k, "host")) {
			if (!*val || strlen(val) > FLOW_HOST_MAX)
				return ctl_reply_error(reply, -EINVAL, "host: 1..%u characters", FLOW_HOST_MAX);
			flt.host = val;
		} else if (!strcmp(k, "port")) {
			v = strtoul(val, &end, 10);
			if (!*val || *end || v < 1 || v > 65535)
				return ctl_reply_error(reply, -EINVAL, "port: '%s' is not 1..65535", val);
			flt.port = (uint16_t)v;
		} else if (!strcmp(k, "state")) {
			unsigned int st;

			for (st = 0; st < FLOW_STATE_MAX && strcmp(flow_state_name(st), val); st++)
				;
			if (st == FLOW_STATE_MAX)
				return ctl_reply_error(reply, -EINVAL,
						       "state: '%s' is not new, established or closing", val);
			flt.state_mask |= (uint8_t)(1u << st);
		} else if (!strcmp(k, "limit")) {
			v = strtoul(val, &end, 10);
			if (!*val || *end || v < 1 || v > FLOWS_LIST_MAX)
				return ctl_reply_error(reply, -EINVAL, "limit: '%s' is not 1..%u", val,
						       FLOWS_LIST_MAX);
			l.limit = v;
		} else {
			return ctl_reply_error(reply, -EINVAL,
					       "flows: unknown filter '%s' (proto, host, port, state, limit)", k);
		}
	}
	if (!m->flows)
		return ctl_reply_error(reply, -ENOENT, "no flow table");
	flow_table_stats(m->flows, &fs);
	ctl_reply_add_u64(reply, "flows-entries", fs.entries);
	r = flow_foreach(m->flows, &flt, l.now_ns, flows_one, &l);
	if (r < 0)
		return ctl_reply_error(reply, r, "listing the flows");
	ctl_reply_add_u64(reply, "listed", l.listed);
	ctl_reply_add_u64(reply, "more", l.more);
	return 0;
}

static int cmd_changes(struct manager *m, struct control_client *cl, const struct ctl_request *req,
		       struct ctl_reply *reply)
{
	return manager_audit_monitor(m, cl, reply);
}

static const struct {
	const char *command;
	const char *arg;	/* NULL: any */
	bool mutation;
	bool takes_keys;
	command_t run;
} commands[] = {
	{ "get", "status", false, false, cmd_status },
	{ "get", "rules", false, false, cmd_rules },
	{ "add", NULL, true, true, cmd_add },
	{ "del", NULL, true, false, cmd_del },
	{ "replace", NULL, true, true, cmd_replace },
	{ "flush", "1", true, false, cmd_flush },
	{ "flush", "impairments", true, false, cmd_flush_impairments },
	{ "reload", "1", true, false, cmd_reload },
	{ "reset", "counters", true, false, cmd_reset },
	{ "explain", "1", false, true, cmd_explain },
	{ "trace", NULL, false, true, cmd_monitor },
	{ "capture", NULL, false, true, cmd_monitor },
	{ "monitor", "changes", false, false, cmd_changes },
	{ "flows", "1", false, true, cmd_flows },
};

/*
 * Every change request, applied or refused, goes to the audit trail, with
 * the command line the client declared (client-cmdline=, or NULL).
 */
static int run_mutation(struct manager *m, struct control_client *cl, const struct ctl_request *req,
			const char *declared, command_t run, struct ctl_reply *reply)
{
	int r;

	manager_audit_prepare(m, req);
	/*
	 * The chain a running reload builds replaces the running one: an edit
	 * now would be lost.  Counters may be reset; another reload coalesces.
	 */
	if (run != cmd_reload && run != cmd_reset && manager_reload_running(m)) {
		r = ctl_reply_error(reply, -EBUSY, "reload in progress; retry when it is done");
	} else {
		m->audit_declared = declared;
		r = run(m, cl, req, reply);
		m->audit_declared = NULL;
		/* A deferred reload audits itself when it is answered. */
		if (r >= 0 && control_deferred(cl))
			return r;
	}
	manager_audit_request(m, cl, req, declared, r, r < 0 ? reply->error : NULL);
	return r;
}

int manager_control(void *userdata, struct control_client *cl, const struct ctl_request *full,
		    bool privileged, struct ctl_reply *reply)
{
	struct manager *m = userdata;
	struct ctl_pair pairs[CTL_KEYS_MAX];
	struct ctl_request rq, *req = &rq;
	const char *declared;
	bool known = false;
	int r;

	/* client-cmdline= is the audit trail's, for any request: no command sees it. */
	r = ctl_request_take(full, CTL_CLIENT_CMDLINE, pairs, ARRAY_SIZE(pairs), &rq, &declared);
	if (r < 0)
		return ctl_reply_error(reply, r, "%s= given more than once", CTL_CLIENT_CMDLINE);

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(req->command, commands[i].command) != 0)
			continue;
		known = true;
		if (commands[i].arg && strcmp(req->arg, commands[i].arg) != 0)
			continue;
		if (!commands[i].takes_keys && req->n > 0)
			return ctl_reply_error(reply, -EINVAL, "%s=%s takes no further lines, got '%s'",
					       req->command, req->arg, req->pairs[0].key);
		if (commands[i].mutation && !privileged) {
			if (m->cfg->control_group[0])
				r = ctl_reply_error(reply, -EPERM,
						    "permission denied: %s needs root or group '%s'",
						    req->command, m->cfg->control_group);
			else
				r = ctl_reply_error(reply, -EPERM, "permission denied: %s needs root",
						    req->command);
			manager_audit_prepare(m, req);
			manager_audit_request(m, cl, req, declared, r, reply->error);
			return r;
		}
		if (commands[i].mutation)
			return run_mutation(m, cl, req, declared, commands[i].run, reply);
		return commands[i].run(m, cl, req, reply);
	}
	if (known)
		return ctl_reply_error(reply, -EINVAL, "%s: unknown argument '%s'", req->command,
				       req->arg);
	return ctl_reply_error(reply, -EOPNOTSUPP, "unknown request '%s'", req->command);
}
