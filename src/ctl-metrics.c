/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipmodctl metrics: the daemon's counters (get=status, get=rules) as
 * OpenMetrics text, on standard output or, with --http, as the answer to one
 * HTTP request read from standard input (ipmodd-metrics.socket).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipmodctl.h"

/* OpenMetrics text of the counters (ipmodctl(8), METRICS). */
struct metrics {
	FILE *f;
	const struct ctl_pair *st;	/* get=status */
	size_t n_st;
};

static void om_family(struct metrics *mx, const char *name, const char *type, const char *unit,
		      const char *help)
{
	fprintf(mx->f, "# TYPE %s %s\n", name, type);
	if (unit)
		fprintf(mx->f, "# UNIT %s %s\n", name, unit);
	fprintf(mx->f, "# HELP %s %s\n", name, help);
}

/* A label value: \\, \" and \n escaped. */
static void om_label(FILE *f, const char *key, const char *value, bool first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", key);
	for (; *value; value++) {
		if (*value == '\\' || *value == '"')
			fprintf(f, "\\%c", *value);
		else if (*value == '\n')
			fputs("\\n", f);
		else
			putc(*value, f);
	}
	putc('"', f);
}

static bool om_number(const char *v)
{
	return v && *v && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 20;
}

/* A family of one sample from a status key; nothing when the daemon did not send it. */
static void om_status(struct metrics *mx, const char *key, const char *name, const char *type,
		      const char *unit, const char *help)
{
	const char *v = ctl_pairs_get(mx->st, mx->n_st, key);

	if (!om_number(v))
		return;
	om_family(mx, name, type, unit, help);
	fprintf(mx->f, "%s%s %s\n", name, strcmp(type, "counter") ? "" : "_total", v);
}

/* A family with one sample per (status key, label value). */
static void om_status_labelled(struct metrics *mx, const char *name, const char *type,
			       const char *unit, const char *help, const char *label,
			       const char *const *keys, const char *const *values, size_t n)
{
	bool any = false;
	size_t i;

	for (i = 0; i < n; i++) {
		const char *v = ctl_pairs_get(mx->st, mx->n_st, keys[i]);

		if (!om_number(v))
			continue;
		if (!any)
			om_family(mx, name, type, unit, help);
		any = true;
		fprintf(mx->f, "%s%s{", name, strcmp(type, "counter") ? "" : "_total");
		om_label(mx->f, label, values[i], true);
		fprintf(mx->f, "} %s\n", v);
	}
}

static void om_rule_labels(FILE *f, const struct rule_row *row, size_t i)
{
	char idx[24];

	snprintf(idx, sizeof(idx), "%zu", i + 1);
	putc('{', f);
	om_label(f, "index", idx, true);
	om_label(f, "name", row->name ? row->name : "", false);
	om_label(f, "spec", row->spec ? row->spec : "", false);
}

static void om_rules(struct metrics *mx, const struct rules_view *v)
{
	static const char *const effects[] = { "delayed", "duplicated", "reordered", "corrupted" };
	size_t i, k;

	om_family(mx, "ipmodd_rule_packets", "counter", NULL,
		  "Packets that matched the rule, in the kernel's fast path and in the daemon");
	for (i = 0; i < v->n_rows; i++) {
		const char *p = row_get(&v->rows[i], "packets");

		if (!om_number(p))
			continue;
		fputs("ipmodd_rule_packets_total", mx->f);
		om_rule_labels(mx->f, &v->rows[i], i);
		fprintf(mx->f, "} %s\n", p);
	}
	om_family(mx, "ipmodd_rule_bytes", "counter", "bytes",
		  "IP bytes of the packets that matched the rule");
	for (i = 0; i < v->n_rows; i++) {
		const char *b = row_get(&v->rows[i], "bytes");

		if (!om_number(b))
			continue;
		fputs("ipmodd_rule_bytes_total", mx->f);
		om_rule_labels(mx->f, &v->rows[i], i);
		fprintf(mx->f, "} %s\n", b);
	}
	/* verdict: the rule's verdict=drop; loss, limit: its impairment. */
	om_family(mx, "ipmodd_rule_dropped_packets", "counter", NULL,
		  "Packets the rule dropped, by reason (verdict, loss, limit)");
	for (i = 0; i < v->n_rows; i++) {
		const struct rule_row *row = &v->rows[i];
		const char *spec = row->spec ? row->spec : "";
		bool verdict_drop = strstr(spec, " verdict=drop") || !strncmp(spec, "verdict=drop", 12);
		const char *p = row_get(row, "packets");
		const char *loss = row_get(row, "dropped-loss"), *limit = row_get(row, "dropped-limit");

		fputs("ipmodd_rule_dropped_packets_total", mx->f);
		om_rule_labels(mx->f, row, i);
		om_label(mx->f, "reason", "verdict", false);
		fprintf(mx->f, "} %s\n", verdict_drop && om_number(p) ? p : "0");
		fputs("ipmodd_rule_dropped_packets_total", mx->f);
		om_rule_labels(mx->f, row, i);
		om_label(mx->f, "reason", "loss", false);
		fprintf(mx->f, "} %s\n", om_number(loss) ? loss : "0");
		fputs("ipmodd_rule_dropped_packets_total", mx->f);
		om_rule_labels(mx->f, row, i);
		om_label(mx->f, "reason", "limit", false);
		fprintf(mx->f, "} %s\n", om_number(limit) ? limit : "0");
	}
	om_family(mx, "ipmodd_rule_impaired_packets", "counter", NULL,
		  "Packets the rule's impairment delayed, duplicated, reordered or corrupted");
	for (i = 0; i < v->n_rows; i++) {
		for (k = 0; k < ARRAY_SIZE(effects); k++) {
			const char *e = row_get(&v->rows[i], effects[k]);

			if (!om_number(e))
				continue;
			fputs("ipmodd_rule_impaired_packets_total", mx->f);
			om_rule_labels(mx->f, &v->rows[i], i);
			om_label(mx->f, "effect", effects[k], false);
			fprintf(mx->f, "} %s\n", e);
		}
	}
}

/* KEY=N,N,...: one sample of family name per queue (queue-rx-packets, inbound-queue-rx-packets). */
static void om_queues(struct metrics *mx, const char *key, const char *name, const char *help)
{
	const char *list = ctl_pairs_get(mx->st, mx->n_st, key);
	char num[24];
	size_t q = 0, len;

	if (!list)
		return;
	om_family(mx, name, "counter", NULL, help);
	while (*list) {
		len = strcspn(list, ",");
		if (len == 0 || len >= sizeof(num))
			break;
		memcpy(num, list, len);
		num[len] = '\0';
		if (om_number(num)) {
			char qs[24];

			snprintf(qs, sizeof(qs), "%zu", q);
			fprintf(mx->f, "%s_total{", name);
			om_label(mx->f, "queue", qs, true);
			fprintf(mx->f, "} %s\n", num);
		}
		q++;
		list += len;
		if (*list == ',')
			list++;
	}
}

static void om_malformed(struct metrics *mx)
{
	bool any = false;
	size_t i;

	for (i = 0; i < mx->n_st; i++) {
		const char *k = mx->st[i].key;

		if (strncmp(k, "malformed-", 10) != 0 || !om_number(mx->st[i].value))
			continue;
		if (!any)
			om_family(mx, "ipmodd_malformed_packets", "counter", NULL,
				  "Packets dropped as malformed, by class");
		any = true;
		fputs("ipmodd_malformed_packets_total{", mx->f);
		om_label(mx->f, "class", k + 10, true);
		fprintf(mx->f, "} %s\n", mx->st[i].value);
	}
}

static void metrics_write(struct metrics *mx, const struct rules_view *rules)
{
	static const char *const path_keys[] = { "fastpath-handled", "rx-packets" };
	static const char *const path_names[] = { "kernel", "daemon" };
	static const char *const dir_pkts[] = { "rx-packets", "tx-packets" };
	static const char *const dir_bytes[] = { "rx-bytes", "tx-bytes" };
	static const char *const dirs[] = { "rx", "tx" };
	static const char *const gso_keys[] = { "gso-whole", "gso-split" };
	static const char *const gso_names[] = { "whole", "split" };
	static const char *const forge_keys[] = { "forged", "forge-refused", "forge-limited" };
	static const char *const forge_names[] = { "sent", "refused", "limited" };
	static const char *const set_keys[] = { "sets-prefixes", "sets-names" };
	static const char *const set_names[] = { "prefixes", "names" };
	static const char *const io_keys[] = { "read-errors", "write-errors" };
	static const char *const io_names[] = { "read", "write" };
	static const char *const ri_keys[] = { "reinject-redirected", "reinject-forwarded",
					       "reinject-kernel", "reinject-dropped" };
	static const char *const ri_names[] = { "redirected", "forwarded", "kernel", "dropped" };
	const char *version = ctl_pairs_get(mx->st, mx->n_st, "version");
	const char *fastpath = ctl_pairs_get(mx->st, mx->n_st, "fastpath");

	om_family(mx, "ipmodd_build", "info", NULL, "The daemon's version");
	fputs("ipmodd_build_info{", mx->f);
	om_label(mx->f, "version", version ? version : "", true);
	fputs("} 1\n", mx->f);
	if (fastpath) {
		om_family(mx, "ipmodd_fastpath", "stateset", NULL,
			  "The kernel's fast path: on, off or unavailable");
		fprintf(mx->f, "ipmodd_fastpath{ipmodd_fastpath=\"on\"} %d\n", !strcmp(fastpath, "on"));
		fprintf(mx->f, "ipmodd_fastpath{ipmodd_fastpath=\"off\"} %d\n", !strcmp(fastpath, "off"));
		fprintf(mx->f, "ipmodd_fastpath{ipmodd_fastpath=\"unavailable\"} %d\n",
			!strcmp(fastpath, "unavailable"));
	}
	om_status(mx, "uptime-sec", "ipmodd_uptime_seconds", "gauge", "seconds",
		  "Seconds since the daemon started");
	om_status(mx, "generation", "ipmodd_generation", "gauge", NULL,
		  "Chains run so far: 1 at start, +1 per change");
	om_status(mx, "rules", "ipmodd_rules", "gauge", NULL, "Rules in the running chain");
	om_status(mx, "fastpath-rules", "ipmodd_fastpath_rules", "gauge", NULL,
		  "Rules the kernel's fast path carries out");
	om_status_labelled(mx, "ipmodd_path_packets", "counter", NULL,
			   "Diverted packets by the path that handled them: the kernel's fast path "
			   "or the daemon",
			   "path", path_keys, path_names, 2);
	om_status(mx, "fastpath-dropped", "ipmodd_fastpath_dropped_packets", "counter", NULL,
		  "Packets the kernel's fast path dropped by a rule");
	om_status(mx, "fastpath-punted", "ipmodd_fastpath_punted_packets", "counter", NULL,
		  "Packets the kernel's fast path handed to the daemon");
	om_status_labelled(mx, "ipmodd_daemon_packets", "counter", NULL,
			   "Packets the daemon read from (rx) and wrote back to (tx) the tun device",
			   "direction", dir_pkts, dirs, 2);
	om_status_labelled(mx, "ipmodd_daemon_bytes", "counter", "bytes",
			   "IP bytes the daemon read from (rx) and wrote back to (tx) the tun device",
			   "direction", dir_bytes, dirs, 2);
	om_queues(mx, "queue-rx-packets", "ipmodd_queue_rx_packets",
		  "Packets read from each queue of the tun device (tun.queues > 1)");
	om_queues(mx, "inbound-queue-rx-packets", "ipmodd_inbound_queue_rx_packets",
		  "Packets read from each queue of the inbound tuns, the first tun's queues first "
		  "(tun.queues > 1)");
	om_status_labelled(mx, "ipmodd_gso_packets", "counter", NULL,
			   "GSO super-packets run through the chain whole, or split", "mode",
			   gso_keys, gso_names, 2);
	om_status(mx, "flows-entries", "ipmodd_flow_entries", "gauge", NULL,
		  "Flows in the daemon's flow table");
	om_status(mx, "flows-max", "ipmodd_flow_entries_max", "gauge", NULL,
		  "Entries the flow table holds at most (flows.max)");
	om_status(mx, "flows-created", "ipmodd_flows_started", "counter", NULL, "Flows started");
	om_status(mx, "flows-evicted", "ipmodd_flows_evicted", "counter", NULL,
		  "Live flows removed to make room for new ones (the table was full)");
	om_status(mx, "flows-expired", "ipmodd_flows_expired", "counter", NULL,
		  "Flows removed after their idle timeout");
	om_status(mx, "dropped-rule", "ipmodd_dropped_packets", "counter", NULL,
		  "Packets a rule dropped, in the daemon or in the kernel");
	om_malformed(mx);
	om_status_labelled(mx, "ipmodd_forge_packets", "counter", NULL,
			   "Forged replies: sent, refused, rate-limited", "result", forge_keys,
			   forge_names, 3);
	om_status(mx, "impair-queued", "ipmodd_impair_queue_packets", "gauge", NULL,
		  "Impaired copies waiting in the queue");
	om_status(mx, "impair-queued-bytes", "ipmodd_impair_queue_bytes", "gauge", "bytes",
		  "IP bytes of the impaired copies waiting in the queue");
	om_status(mx, "impair-sent", "ipmodd_impair_sent_packets", "counter", NULL,
		  "Copies sent from the impairment queue");
	om_status(mx, "impair-flushed", "ipmodd_impair_flushed_packets", "counter", NULL,
		  "Copies discarded because their rule was deleted or changed");
	om_status(mx, "sets", "ipmodd_sets", "gauge", NULL,
		  "List files (src-set, dst-set, host-set) the running rules use");
	om_status_labelled(mx, "ipmodd_set_entries", "gauge", NULL,
			   "Entries of those lists as loaded: prefixes or host names", "kind",
			   set_keys, set_names, 2);
	om_status(mx, "sets-bytes", "ipmodd_sets_bytes", "gauge", "bytes",
		  "Memory of those lists");
	om_status(mx, "stall-trips", "ipmodd_stall_trips", "counter", NULL,
		  "Times the stall guardian stopped the diversion (failure = \"open\")");
	om_status(mx, "unhealthy-checks", "ipmodd_unhealthy_checks", "counter", NULL,
		  "Health checks that found the packet loop stuck");
	om_status(mx, "reloads", "ipmodd_reloads", "counter", NULL,
		  "Reloads of the configuration swapped in");
	om_status(mx, "reload-failures", "ipmodd_reload_failures", "counter", NULL,
		  "Reloads that failed (the running rules stayed)");
	om_status(mx, "restores", "ipmodd_restores", "counter", NULL,
		  "Times the routing was put back after someone removed it");
	om_status(mx, "restore-backoffs", "ipmodd_restore_backoffs", "counter", NULL,
		  "Restores postponed because they came too often");
	om_status(mx, "restore-checks", "ipmodd_restore_checks", "counter", NULL,
		  "Checks of the routing");
	om_status(mx, "restore-overruns", "ipmodd_restore_overruns", "counter", NULL,
		  "Routing notifications lost (the netlink socket overran)");
	om_status(mx, "loops", "ipmodd_loops", "counter", NULL,
		  "Written-back packets that came back to the tun device");
	om_status_labelled(mx, "ipmodd_io_errors", "counter", NULL,
			   "Failed reads and writes of the tun device", "op", io_keys, io_names, 2);
	om_status_labelled(mx, "ipmodd_reinject_packets", "counter", NULL,
			   "Written-back packets, by what the re-injection program did", "result",
			   ri_keys, ri_names, 4);
	/* Apart: a share of result="redirected", not another result to add up. */
	om_status(mx, "reinject-direct", "ipmodd_reinject_direct_packets", "counter", NULL,
		  "Of the redirected, those the fast path handed over from the tun's egress");
	om_status(mx, "reinject-source-known", "ipmodd_reinject_source_known", "counter", NULL,
		  "Reverse lookups of a packet's source the re-injection program skipped");
	om_status(mx, "reinject-route-known", "ipmodd_reinject_route_known", "counter", NULL,
		  "Forward route lookups the re-injection program skipped");
	om_status(mx, "control-clients", "ipmodd_control_clients", "gauge", NULL,
		  "Clients connected to the control socket");
	om_status(mx, "streams", "ipmodd_streams", "gauge", NULL,
		  "Trace, capture and monitor streams");
	om_rules(mx, rules);
	fputs("# EOF\n", mx->f);
}

/* Both replies, then the text into a memory buffer: *ret, *ret_len (free()). */
static int metrics_collect(const struct ctlcli *c, char **ret, size_t *ret_len)
{
	static struct ctlcli status_req;
	struct metrics mx = { 0 };
	struct rules_view v;
	struct reply st, rr;
	int r;

	status_req = *c;
	snprintf(status_req.request, sizeof(status_req.request), "get=status\n\n");
	status_req.request_len = strlen(status_req.request);
	if (reply_alloc(&st) < 0) {
		reply_free(&st);
		return EXIT_FAIL;
	}
	r = call(&status_req, &st, NULL);
	if (r != EXIT_OK) {
		reply_free(&st);
		return r;
	}
	snprintf(status_req.request, sizeof(status_req.request), "get=rules\n\n");
	status_req.request_len = strlen(status_req.request);
	r = get_rules(&status_req, &rr, &v);
	if (r == EXIT_OK) {
		mx.st = st.resp.pairs;
		mx.n_st = st.resp.n;
		mx.f = open_memstream(ret, ret_len);
		if (!mx.f) {
			fprintf(stderr, "ipmodctl: out of memory\n");
			r = EXIT_FAIL;
		} else {
			metrics_write(&mx, &v);
			if (fclose(mx.f) != 0) {
				fprintf(stderr, "ipmodctl: out of memory\n");
				free(*ret);
				*ret = NULL;
				r = EXIT_FAIL;
			}
		}
	}
	rules_view_free(&v);
	reply_free(&rr);
	reply_free(&st);
	return r;
}

/* ---- HTTP ---------------------------------------------------------------- */

#define HTTP_REQUEST_MAX 8192
#define HTTP_TIMEOUT_MS 5000

static int http_answer(int status, const char *reason, const char *type, const char *body,
		       size_t len)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		     status, reason, type, len);
	if (write_all(STDOUT_FILENO, head, (size_t)n) < 0 ||
	    (body && write_all(STDOUT_FILENO, body, len) < 0))
		return EXIT_FAIL;
	return status == 200 ? EXIT_OK : EXIT_FAIL;
}

static int http_text(int status, const char *reason, const char *text)
{
	return http_answer(status, reason, "text/plain; charset=utf-8", text, strlen(text));
}

/*
 * One HTTP/1.x request on standard input (the connection systemd accepted,
 * StandardInput=socket), its answer on standard output: the request line
 * and headers, at most HTTP_REQUEST_MAX bytes within HTTP_TIMEOUT_MS.
 */
static int run_metrics_http(const struct ctlcli *c)
{
	static char req[HTTP_REQUEST_MAX + 1];
	long long deadline = now_ms() + HTTP_TIMEOUT_MS;
	char method[16], target[256], *text = NULL, *eol;
	size_t len = 0, tlen = 0;
	ssize_t n;
	int r;

	signals_setup();
	while (!strstr(req, "\r\n\r\n") && !strstr(req, "\n\n")) {
		if (len == HTTP_REQUEST_MAX)
			return http_text(431, "Request Header Fields Too Large", "request too large\n");
		r = wait_readable(STDIN_FILENO, deadline - now_ms() > 0 ? deadline - now_ms() : 0);
		if (r == 0)
			return http_text(408, "Request Timeout", "request not complete in time\n");
		if (r < 0)
			return EXIT_FAIL;
		n = read(STDIN_FILENO, req + len, HTTP_REQUEST_MAX - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			if (len == 0)
				return EXIT_FAIL;	/* connected and left */
			return http_text(400, "Bad Request", "request truncated\n");
		}
		len += (size_t)n;
		req[len] = '\0';
		if (strlen(req) != len)
			return http_text(400, "Bad Request", "NUL in the request\n");
	}
	eol = req + strcspn(req, "\r\n");
	if (sscanf(req, "%15s %255s", method, target) != 2 || eol - req < 9 ||
	    (strncmp(eol - 9, " HTTP/1.0", 9) && strncmp(eol - 9, " HTTP/1.1", 9)))
		return http_text(400, "Bad Request", "malformed request line\n");
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return http_text(405, "Method Not Allowed", "only GET\n");
	if (strcmp(target, "/metrics") && strncmp(target, "/metrics?", 9))
		return http_text(404, "Not Found", "only /metrics\n");
	r = metrics_collect(c, &text, &tlen);
	if (r != EXIT_OK) {
		free(text);
		return http_text(503, "Service Unavailable", "ipmodd did not answer (see the journal)\n");
	}
	r = http_answer(200, "OK", "application/openmetrics-text; version=1.0.0; charset=utf-8",
			strcmp(method, "HEAD") ? text : NULL, tlen);
	free(text);
	return r;
}

int run_metrics(const struct ctlcli *c)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if (c->http)
		return run_metrics_http(c);
	r = metrics_collect(c, &text, &len);
	if (r == EXIT_OK)
		fwrite(text, 1, len, stdout);
	free(text);
	return r;
}
