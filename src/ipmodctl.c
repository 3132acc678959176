/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ipmodctl: query and change a running ipmodd over its control socket. */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "ctlcli.h"
#include "ipmodctl.h"
#include "ctlproto.h"
#include "rule.h"

#define DEFAULT_SOCKET RUNDIR "/ipmodd/control.sock"
#define TIMEOUT_SEC 5
/*
 * reload answers once the new chain runs: its build (list files of up to
 * millions of lines, at the daemon's lowest CPU priority) may take longer.
 */
#define RELOAD_TIMEOUT_SEC 120
#define CHUNK (64 * 1024)
/* After ^C, how long the rest of a pcapng block in flight may take to arrive. */
#define BLOCK_GRACE_MS 1000
/*
 * A second signal sooner than this is the same request: timeout(1) signals
 * the child and then its process group.
 */
#define SIGNAL_REPEAT_MS 200

static const char *socket_path = DEFAULT_SOCKET;
static bool json;

/*
 * Streams: SIGINT and SIGTERM are blocked but while waiting or writing.  The
 * first asks for a clean stop, the second for a stop at once.
 */
static volatile sig_atomic_t interrupted;
static long long first_signal_ms;
static sigset_t wait_mask;
static bool signals_set;

static char chunk[CHUNK];

/* ---- output helpers ------------------------------------------------------- */

static void print_json_string(FILE *f, const char *s)
{
	static char buf[6 * CTL_LINE_MAX + 8];

	if (ctlcli_json_string(s, buf, sizeof(buf)) < 0)
		snprintf(buf, sizeof(buf), "\"\"");
	fputs(buf, f);
}

/* Keys whose 0/1 value is a boolean, and those whose value is a comma-separated list. */
static const char *const bool_keys[] = { "modified", "fastpath-paused", "fastpath-whole",
					 "fastpath-direct", "reloading" };
static const char *const list_keys[] = { "families", "queue-rx-packets", "inbound", "inbound-tuns",
					 "inbound-queue-rx-packets" };

static bool key_in(const char *key, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(key, set[i]))
			return true;
	return false;
}

/* A value as JSON: a number when it reads as one, else a string. */
static void print_json_scalar(FILE *f, const char *value)
{
	if (ctlcli_json_is_number(value))
		fputs(value, f);
	else
		print_json_string(f, value);
}

/* A pair with its type: booleans, lists as arrays, numbers, strings. */
static void print_json_typed(const struct ctl_pair *pair, bool *first)
{
	static char item[CTL_LINE_MAX];
	const char *v = pair->value, *c;

	printf("%s", *first ? "" : ",");
	*first = false;
	print_json_string(stdout, pair->key);
	putchar(':');
	if (key_in(pair->key, bool_keys, ARRAY_SIZE(bool_keys)) &&
	    (!strcmp(v, "0") || !strcmp(v, "1"))) {
		fputs(v[0] == '1' ? "true" : "false", stdout);
		return;
	}
	if (!key_in(pair->key, list_keys, ARRAY_SIZE(list_keys))) {
		print_json_scalar(stdout, v);
		return;
	}
	putchar('[');
	while (*v) {
		c = strchr(v, ',');
		if (!c)
			c = v + strlen(v);
		snprintf(item, sizeof(item), "%.*s", (int)(c - v), v);
		print_json_scalar(stdout, item);
		if (!*c)
			break;
		putchar(',');
		v = c + 1;
	}
	putchar(']');
}

static void print_json_typed_object(const struct ctl_pair *pairs, size_t n)
{
	bool first = true;

	putchar('{');
	for (size_t i = 0; i < n; i++)
		print_json_typed(&pairs[i], &first);
	printf("}\n");
}

static void print_json_object(const struct ctl_pair *pairs, size_t n)
{
	print_json_typed_object(pairs, n);
}

/* ---- usage ---------------------------------------------------------------- */

static void usage_line(FILE *f, const struct ctlcli_subcommand *sub)
{
	fprintf(f, "Usage: ipmodctl [OPTIONS] %s%s%s\n", sub->name, *sub->args ? " " : "",
		sub->args);
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: ipmodctl [OPTIONS] [COMMAND [ARGUMENTS]]\n"
		   "Query and change a running ipmodd.\n\n"
		   "Commands:\n");
	for (i = 0; i < ctlcli_n_subcommands; i++) {
		const struct ctlcli_subcommand *s = &ctlcli_subcommands[i];

		fprintf(f, "  %-8s %s\n", s->name, s->description);
	}
	fprintf(f, "\nOptions (before or after the command):\n"
		   "  -s, --socket PATH   control socket (default " DEFAULT_SOCKET ")\n"
		   "      --json          print replies as JSON\n"
		   "  -V, --version       print the version and exit\n"
		   "  -h, --help          print this help, or the command's, and exit\n\n"
		   "'ipmodctl help COMMAND' shows a command's arguments; 'help keys', 'help\n"
		   "commands' and 'help values KEY' list the rule keys, the commands and a\n"
		   "key's named values, one a line.  See ipmodctl(8).\n");
}

static void usage_topic(FILE *f, const struct ctlcli_subcommand *sub)
{
	usage_line(f, sub);
	fprintf(f, "%s.\n", sub->description);
	if (sub->alias)
		fprintf(f, "Also spelt '%s'.\n", sub->alias);
	if (sub->help)
		fputs(sub->help, f);
	fprintf(f, "\nOptions: -s PATH, --json, -h, -V (see 'ipmodctl help').\n");
}

/*
 * help keys / commands / values KEY: one word a line, straight from rule.c's
 * and ctlcli.c's tables, which the shell completions read at completion time;
 * help keys long: rule.c's rows for people (kind, fast path, value).
 */
static void help_list(FILE *f, const struct ctlcli *c)
{
	static const char *const fp_names[] = {
		[RULE_FP_NO] = "no", [RULE_FP_YES] = "yes", [RULE_FP_PARTIAL] = "partial",
	};
	struct rule_keyinfo ki;
	const char *w;
	unsigned int i;
	size_t j;

	switch (c->list) {
	case CTLCLI_LIST_KEYS:
		for (i = 0; (w = rule_key_name(i)); i++)
			fprintf(f, "%s\n", w);
		break;
	case CTLCLI_LIST_KEYS_LONG:
		fprintf(f, "%-15s %-7s %-9s %s\n", "KEY", "KIND", "FASTPATH", "VALUE");
		for (i = 0; rule_key_info(i, &ki) == 0; i++)
			fprintf(f, "%-15s %-7s %-9s %s%s\n", ki.name, ki.kind,
				fp_names[ki.fast_path], ki.range,
				ki.accept_only ? "; not with verdict=drop, reply or reject" :
				ki.not_with_drop ? "; not with verdict=drop" : "");
		break;
	case CTLCLI_LIST_VALUES:
		for (i = 0; (w = rule_key_value(c->list_key, i)); i++)
			fprintf(f, "%s\n", w);
		break;
	case CTLCLI_LIST_COMMANDS:
		for (j = 0; j < ctlcli_n_subcommands; j++) {
			fprintf(f, "%s\n", ctlcli_subcommands[j].name);
			if (ctlcli_subcommands[j].alias)
				fprintf(f, "%s\n", ctlcli_subcommands[j].alias);
		}
		break;
	default:
		break;
	}
}

/* ---- talking to the daemon ------------------------------------------------ */

static int connect_daemon(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = TIMEOUT_SEC };
	int fd, e;

	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ipmodctl: socket path too long: %s\n", socket_path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		fprintf(stderr, "ipmodctl: socket: %s\n", strerror(e));
		return -e;
	}
	/* Bounds connect() (a full backlog) and send(). */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;

	e = errno;
	close(fd);
	if (e == EACCES || e == EPERM)
		fprintf(stderr, "ipmodctl: cannot connect to %s: %s "
				"(need root or the socket's group)\n", socket_path, strerror(e));
	else if (e == ENOENT || e == ECONNREFUSED)
		fprintf(stderr, "ipmodctl: cannot connect to %s: %s (is ipmodd running?)\n",
			socket_path, strerror(e));
	else if (e == EAGAIN)
		fprintf(stderr, "ipmodctl: cannot connect to %s: timed out (ipmodd is busy)\n",
			socket_path);
	else
		fprintf(stderr, "ipmodctl: cannot connect to %s: %s\n", socket_path, strerror(e));
	return -e;
}

static int send_request(int fd, const char *request, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(fd, request + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* A daemon turning us away has hung up, but its reply says why. */
			if (errno == EPIPE || errno == ECONNRESET)
				return 0;
			fprintf(stderr, "ipmodctl: sending to %s: %s\n", socket_path,
				errno == EAGAIN ? "timed out" : strerror(errno));
			return -EIO;
		}
		off += (size_t)n;
	}
	return 0;
}

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Wait up to ms (-1: forever) for fd to be readable; SIGINT and SIGTERM are
 * let in meanwhile.  Returns 1, 0 on timeout, -EINTR for a signal.  A wait
 * forever does not begin once interrupted: that signal came in already.
 */
int wait_readable(int fd, long long ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	int r;

	if (ms < 0 && interrupted)
		return -EINTR;
	r = ppoll(&pfd, 1, ms < 0 ? NULL : &ts, signals_set ? &wait_mask : NULL);
	if (r < 0)
		return errno == EINTR ? -EINTR : negative_errno();
	return r > 0;
}

int reply_alloc(struct reply *r)
{
	memset(r, 0, sizeof(*r));
	r->buf = malloc(CTL_REPLY_MAX);
	r->pairs = calloc(CTL_REPLY_KEYS_MAX, sizeof(*r->pairs));
	if (!r->buf || !r->pairs) {
		fprintf(stderr, "ipmodctl: out of memory\n");
		return -ENOMEM;
	}
	ctl_parser_init(&r->p, r->buf, CTL_REPLY_MAX, r->pairs, CTL_REPLY_KEYS_MAX);
	return 0;
}

void reply_free(struct reply *r)
{
	free(r->pairs);
	free(r->buf);
}

/* Read one reply within timeout_sec; prints why and returns -errno on failure. */
static int read_reply(int fd, struct reply *rep, int timeout_sec)
{
	long long deadline = now_ms() + timeout_sec * 1000LL;
	unsigned int lineno;
	size_t used;
	ssize_t n;
	int r;

	for (;;) {
		r = wait_readable(fd, deadline - now_ms() > 0 ? deadline - now_ms() : 0);
		if (r == -EINTR)
			return r;
		if (r < 0) {
			fprintf(stderr, "ipmodctl: poll: %s\n", strerror(-r));
			return r;
		}
		if (r == 0) {
			fprintf(stderr, "ipmodctl: no reply from ipmodd within %d s\n", timeout_sec);
			return -ETIMEDOUT;
		}
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			r = negative_errno();
			fprintf(stderr, "ipmodctl: reading the reply: %s\n", strerror(-r));
			return r;
		}
		if (n == 0) {
			fprintf(stderr, "ipmodctl: ipmodd closed the connection %s\n",
				ctl_parser_pending(&rep->p) ? "in the middle of its reply" :
							      "without replying");
			return -ECONNRESET;
		}
		r = ctl_parser_feed(&rep->p, chunk, (size_t)n, &used);
		if (r > 0) {
			rep->rest = chunk + used;
			rep->rest_len = (size_t)n - used;
			return 0;
		}
		if (r < 0) {
			const char *why = ctl_parser_error(&rep->p, &lineno);

			fprintf(stderr, "ipmodctl: malformed reply from ipmodd: line %u: %s\n", lineno,
				why);
			return r;
		}
	}
}

/*
 * Send the request and read its reply into rep.  Returns an exit code:
 * EXIT_OK, or EXIT_FAIL after printing why (the daemon's error included).
 * With ret_fd the connection stays open for a stream that follows.
 */
int call(const struct ctlcli *c, struct reply *rep, int *ret_fd)
{
	int fd, r;

	fd = connect_daemon();
	if (fd < 0)
		return EXIT_FAIL;
	r = send_request(fd, c->request, c->request_len);
	if (r == 0)
		r = read_reply(fd, rep, c->cmd == CTLCLI_RELOAD ? RELOAD_TIMEOUT_SEC : TIMEOUT_SEC);
	if (r < 0)
		goto fail;
	if (ctl_parser_response(&rep->p, &rep->resp) < 0) {
		fprintf(stderr, "ipmodctl: malformed reply from ipmodd: no errno= line\n");
		goto fail;
	}
	if (rep->resp.errnum) {
		fprintf(stderr, "ipmodctl: %s (errno %d)\n",
			rep->resp.error ? rep->resp.error : strerror(rep->resp.errnum),
			rep->resp.errnum);
		goto fail;
	}
	if (ret_fd)
		*ret_fd = fd;
	else
		close(fd);
	return EXIT_OK;
fail:
	close(fd);
	return EXIT_FAIL;
}

/* ---- status --------------------------------------------------------------- */

static const struct {
	const char *key;	/* a key, or a prefix when it ends in '-' */
	const char *group;
} status_groups[] = {
	{ "version", "daemon" },
	{ "pid", "daemon" },
	{ "uptime-sec", "daemon" },
	{ "config", "daemon" },
	{ "generation", "daemon" },
	{ "modified", "daemon" },
	{ "tun", "diversion" },
	{ "offload", "diversion" },
	{ "queues", "diversion" },
	{ "tun-io", "diversion" },
	{ "tun-io-", "diversion" },
	{ "families", "diversion" },
	{ "table", "diversion" },
	{ "priority", "diversion" },
	{ "rules", "diversion" },
	{ "reinject", "diversion" },
	{ "reinject-", "diversion" },
	{ "inbound", "inbound diversion" },
	{ "inbound-", "inbound diversion" },
	{ "rx-", "traffic" },
	{ "in-", "traffic" },
	{ "tx-", "traffic" },
	{ "gso-", "traffic" },
	{ "queue-", "traffic" },
	{ "dropped-", "traffic" },
	{ "flows-", "flow table" },
	{ "malformed-", "malformed packets (dropped)" },
	{ "forged", "forged replies" },
	{ "forge-", "forged replies" },
	{ "impair-", "impairment queue" },
	{ "surgery-", "packet surgery" },
	{ "sets", "lists (src-set, dst-set, host-set)" },
	{ "sets-", "lists (src-set, dst-set, host-set)" },
	{ "failure", "failure handling" },
	{ "stall-", "failure handling" },
	{ "unhealthy-", "failure handling" },
	{ "restore", "failure handling" },
	{ "restore-", "failure handling" },
	{ "restores", "failure handling" },
	{ "loops", "failure handling" },
	{ "reloading", "reloads" },
	{ "reloads", "reloads" },
	{ "reload-", "reloads" },
	{ "read-errors", "errors" },
	{ "write-errors", "errors" },
	{ "control-", "control socket" },
	{ "fastpath", "eBPF fast path" },
	{ "fastpath-", "eBPF fast path" },
};

/* The group of a key; a key nobody knows yet stays in the group before it. */
static const char *status_group(const char *key, const char *current)
{
	size_t i, len;

	for (i = 0; i < ARRAY_SIZE(status_groups); i++) {
		const char *k = status_groups[i].key;

		len = strlen(k);
		if (k[len - 1] == '-' ? !strncmp(key, k, len) : !strcmp(key, k))
			return status_groups[i].group;
	}
	return current ? current : "daemon";
}

static void print_status_value(const char *key, const char *value)
{
	uint64_t s, d, h, m;
	char *end;

	if (!strcmp(key, "modified") && (!strcmp(value, "0") || !strcmp(value, "1"))) {
		printf("%s\n", value[0] == '1' ? "yes (the running rules differ from the file)" :
						 "no");
		return;
	}
	if (!strcmp(key, "fastpath-paused") && (!strcmp(value, "0") || !strcmp(value, "1"))) {
		printf("%s\n", value[0] == '1' ? "yes (a trace or capture sees every packet)" : "no");
		return;
	}
	if (!strcmp(key, "fastpath-whole") && (!strcmp(value, "0") || !strcmp(value, "1"))) {
		printf("%s\n", value[0] == '1' ? "yes (the kernel's index holds every rule)" :
						 "no (an index list overflowed: its packets go to userspace)");
		return;
	}
	if (!strcmp(key, "fastpath-direct") && (!strcmp(value, "0") || !strcmp(value, "1"))) {
		printf("%s\n", value[0] == '1' ? "yes (its packets go straight to the re-injection program)" :
						 "no (they go through the tun's ingress)");
		return;
	}
	if (!strcmp(key, "uptime-sec") && ctlcli_json_is_uint(value)) {
		errno = 0;
		s = strtoull(value, &end, 10);
		if (errno == 0) {
			d = s / 86400;
			h = s / 3600 % 24;
			m = s / 60 % 60;
			printf("%s (", value);
			if (d)
				printf("%" PRIu64 "d ", d);
			if (d || h)
				printf("%" PRIu64 "h ", h);
			if (d || h || m)
				printf("%" PRIu64 "m ", m);
			printf("%" PRIu64 "s)\n", s % 60);
			return;
		}
	}
	printf("%s\n", value);
}

/* v with K/M/G/T units (1000s) when human, else as it is. */
static const char *num(const char *v, bool human, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	double d;
	int u = -1;

	if (!v)
		return "?";
	if (!human || !ctlcli_json_is_uint(v))
		return v;
	d = strtod(v, NULL);
	while (d >= 1000 && u < (int)sizeof(units) - 2) {
		d /= 1000;
		u++;
	}
	if (u < 0)
		return v;
	snprintf(buf, len, "%.*f%c", d < 10 ? 1 : 0, d, units[u]);
	return buf;
}

static uint64_t u64_of(const char *v)
{
	return v && ctlcli_json_is_uint(v) ? strtoull(v, NULL, 10) : 0;
}

/* Keys that count trouble: shown in the summary only when not zero. */
static bool is_trouble_key(const char *key)
{
	static const char *const keys[] = {
		"dropped-rule", "forge-refused", "forge-limited", "impair-flushed",
		"stall-trips", "unhealthy-checks", "loops", "read-errors", "write-errors",
		"reload-failures",
		"restore-backoffs", "restore-overruns", "reinject-dropped", "inbound-dropped",
		"inbound-failed-open", "surgery-errors",
	};

	return !strncmp(key, "malformed-", 10) || key_in(key, keys, ARRAY_SIZE(keys));
}

/* Packets and bytes at the last redraw, for the rates of -i. */
struct sample {
	bool have;
	long long ms;
	uint64_t rx_packets, rx_bytes, kernel;
};

static void print_status_summary(const struct ctl_response *resp, const struct ctlcli *c,
				 struct sample *prev)
{
	const struct ctl_pair *p = resp->pairs;
	size_t n = resp->n, shown = 0;
	const char *fp = ctl_pairs_get(p, n, "fastpath"), *v;
	char b1[32], b2[32], b3[32], b4[32];
	uint64_t kernel = u64_of(ctl_pairs_get(p, n, "fastpath-handled")) +
			  u64_of(ctl_pairs_get(p, n, "fastpath-dropped"));
	uint64_t rxp = u64_of(ctl_pairs_get(p, n, "rx-packets"));
	uint64_t rxb = u64_of(ctl_pairs_get(p, n, "rx-bytes"));
	long long now = now_ms();

	uint64_t up = u64_of(ctl_pairs_get(p, n, "uptime-sec"));

	printf("ipmodd %s, pid %s, up ", ctl_pairs_get(p, n, "version") ?: "?",
	       ctl_pairs_get(p, n, "pid") ?: "?");
	if (up >= 86400)
		printf("%" PRIu64 "d ", up / 86400);
	if (up >= 3600)
		printf("%" PRIu64 "h ", up / 3600 % 24);
	if (up >= 60)
		printf("%" PRIu64 "m ", up / 60 % 60);
	printf("%" PRIu64 "s\n", up % 60);
	v = ctl_pairs_get(p, n, "generation");
	printf("  generation %s%s, config %s\n", v ? v : "?",
	       !strcmp(ctl_pairs_get(p, n, "modified") ?: "0", "1") ? " (modified live)" : "",
	       ctl_pairs_get(p, n, "config") ?: "?");
	printf("  tun %s, families %s, %s queue(s), offload %s, io %s\n",
	       ctl_pairs_get(p, n, "tun") ?: "?", ctl_pairs_get(p, n, "families") ?: "?",
	       ctl_pairs_get(p, n, "queues") ?: "?", ctl_pairs_get(p, n, "offload") ?: "?",
	       ctl_pairs_get(p, n, "tun-io") ?: "readwrite");
	v = ctl_pairs_get(p, n, "tun-io-fallback");
	if (v)
		printf("  tun.io = \"uring\" refused: %s\n", v);
	snprintf(b4, sizeof(b4), "%" PRIu64, kernel);
	printf("  diverted: kernel %s packets, daemon %s packets (%s bytes)\n",
	       num(b4, c->human, b1, sizeof(b1)),
	       num(ctl_pairs_get(p, n, "rx-packets"), c->human, b2, sizeof(b2)),
	       num(ctl_pairs_get(p, n, "rx-bytes"), c->human, b3, sizeof(b3)));
	v = ctl_pairs_get(p, n, "inbound");
	if (v) {
		printf("  inbound: %s through %s (%s): daemon %s packets (%s bytes) in, %s back\n", v,
		       ctl_pairs_get(p, n, "inbound-tuns") ?: "?",
		       ctl_pairs_get(p, n, "inbound-attach") ?: "?",
		       num(ctl_pairs_get(p, n, "in-rx-packets"), c->human, b1, sizeof(b1)),
		       num(ctl_pairs_get(p, n, "in-rx-bytes"), c->human, b2, sizeof(b2)),
		       num(ctl_pairs_get(p, n, "in-tx-packets"), c->human, b3, sizeof(b3)));
	}
	if (prev->have && now > prev->ms) {
		double dt = (double)(now - prev->ms) / 1000.0;

		printf("  rates: kernel %.0f packets/s, daemon %.0f packets/s, %.0f bytes/s\n",
		       (double)(kernel - prev->kernel) / dt, (double)(rxp - prev->rx_packets) / dt,
		       (double)(rxb - prev->rx_bytes) / dt);
	}
	*prev = (struct sample){ true, now, rxp, rxb, kernel };
	printf("  rules: %s", ctl_pairs_get(p, n, "rules") ?: "?");
	if (fp && !strcmp(fp, "on"))
		printf(", %s in the kernel%s\n", ctl_pairs_get(p, n, "fastpath-rules") ?: "?",
		       !strcmp(ctl_pairs_get(p, n, "fastpath-paused") ?: "0", "1") ?
		       " (fast path paused by a trace or capture)" : "");
	else
		printf(" (fast path %s%s%s)\n", fp ? fp : "?",
		       ctl_pairs_get(p, n, "fastpath-reason") ? ": " : "",
		       ctl_pairs_get(p, n, "fastpath-reason") ?: "");
	for (size_t i = 0; i < n; i++) {
		if (!is_trouble_key(p[i].key) || !strcmp(p[i].value, "0"))
			continue;
		printf("%s%s %s", shown++ ? ", " : "  trouble: ", p[i].key,
		       num(p[i].value, c->human, b1, sizeof(b1)));
	}
	if (shown)
		putchar('\n');
	v = ctl_pairs_get(p, n, "restore-error");
	printf("  failure %s, restore %s%s%s\n", ctl_pairs_get(p, n, "failure") ?: "?",
	       ctl_pairs_get(p, n, "restore") ?: "?", v ? ": " : "", v ? v : "");
}

static void print_status_all(const struct ctl_response *resp)
{
	const char *group = NULL, *g;
	size_t i, width = 0;

	for (i = 0; i < resp->n; i++)
		if (strlen(resp->pairs[i].key) > width)
			width = strlen(resp->pairs[i].key);
	for (i = 0; i < resp->n; i++) {
		const struct ctl_pair *pair = &resp->pairs[i];

		g = status_group(pair->key, group);
		if (!group || strcmp(g, group))
			printf("%s%s:\n", group ? "\n" : "", g);
		group = g;
		printf("  %s:%*s ", pair->key, (int)(width - strlen(pair->key)), "");
		print_status_value(pair->key, pair->value);
	}
}

/*
 * -i N: sleep N s with ^C let in; false once interrupted.  A terminal is
 * redrawn from the top, other output gets successive blocks.
 */
static bool watch_wait(const struct ctlcli *c)
{
	struct timespec ts = { .tv_sec = c->interval };

	if (interrupted)
		return false;
	fflush(stdout);
	ppoll(NULL, 0, &ts, &wait_mask);
	return !interrupted;
}

static void watch_top(const struct ctlcli *c, bool first)
{
	if (!c->interval)
		return;
	if (isatty(STDOUT_FILENO))
		fputs("\033[H\033[2J", stdout);
	else if (!first)
		putchar('\n');
}

static int run_status(const struct ctlcli *c)
{
	struct sample prev = { 0 };
	struct reply rep;
	bool first = true;
	int r;

	if (c->interval)
		signals_setup();
	do {
		r = reply_alloc(&rep) < 0 ? EXIT_FAIL : call(c, &rep, NULL);
		if (r != EXIT_OK) {
			reply_free(&rep);
			/* ^C while asking ends a watch as well as ^C while waiting. */
			return c->interval && interrupted && !first ? EXIT_OK : r;
		}
		watch_top(c, first);
		first = false;
		if (json)
			print_json_typed_object(rep.resp.pairs, rep.resp.n);
		else if (c->all)
			print_status_all(&rep.resp);
		else
			print_status_summary(&rep.resp, c, &prev);
		reply_free(&rep);
	} while (c->interval && watch_wait(c));
	return EXIT_OK;
}

/* ---- rules and save ------------------------------------------------------- */

static bool is_known_rule_key(const char *key)
{
	return !strcmp(key, "index") || !strcmp(key, "spec") || !strcmp(key, "packets") ||
	       !strcmp(key, "bytes") || !strcmp(key, "where") || !strcmp(key, "where-reason") ||
	       !strcmp(key, "where-in") || !strcmp(key, "where-in-reason");
}

const char *row_get(const struct rule_row *row, const char *key)
{
	return ctl_pairs_get(row->pairs, row->n, key);
}

static int rules_view_parse(const struct ctl_response *resp, struct rules_view *v)
{
	const struct ctl_pair *p = resp->pairs;
	struct rule_row *row = NULL;
	size_t i, j;

	memset(v, 0, sizeof(*v));
	for (i = 0; i < resp->n && strcmp(p[i].key, "rule"); i++)
		;
	v->head = p;
	v->n_head = i;
	v->generation = ctl_pairs_get(p, i, "generation");
	v->modified = ctl_pairs_get(p, i, "modified");
	for (j = i; j < resp->n; j++)
		if (!strcmp(p[j].key, "rule"))
			v->n_rows++;
	v->rows = calloc(v->n_rows ? v->n_rows : 1, sizeof(*v->rows));
	v->extra = calloc(resp->n ? resp->n : 1, sizeof(*v->extra));
	if (!v->rows || !v->extra) {
		fprintf(stderr, "ipmodctl: out of memory\n");
		return -ENOMEM;
	}
	for (v->n_rows = 0; i < resp->n; i++) {
		if (!strcmp(p[i].key, "rule")) {
			row = &v->rows[v->n_rows++];
			row->name = p[i].value;
			row->pairs = &p[i + 1];
			continue;
		}
		row->n++;
		if (is_known_rule_key(p[i].key))
			continue;
		for (j = 0; j < v->n_extra && strcmp(v->extra[j], p[i].key); j++)
			;
		if (j == v->n_extra)
			v->extra[v->n_extra++] = p[i].key;
	}
	for (i = 0; i < v->n_rows; i++) {
		row = &v->rows[i];
		row->index = row_get(row, "index");
		row->spec = row_get(row, "spec");
		row->packets = row_get(row, "packets");
		row->bytes = row_get(row, "bytes");
	}
	return 0;
}

void rules_view_free(struct rules_view *v)
{
	free(v->rows);
	free((void *)v->extra);
}

/* Match keys of a spec; every other word but name= is an action. */
static bool is_match_key(const char *key, size_t len)
{
	static const char *const keys[] = {
		"direction", "family", "proto", "src", "dst", "sport", "dport", "icmp-type",
		"icmp-code", "tcp-flags", "ttl", "length", "dscp", "probability",
	};

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (strlen(keys[i]) == len && !strncmp(keys[i], key, len))
			return true;
	return false;
}

/* The words of spec whose key is (match) or is not (!match) a match key, as an object. */
static void print_spec_part(const char *spec, bool match)
{
	static char key[CTL_LINE_MAX], value[CTL_LINE_MAX];
	const char *w = spec, *end, *eq;
	bool first = true;

	putchar('{');
	for (; w && *w; w = *end ? end + 1 : end) {
		end = strchr(w, ' ');
		if (!end)
			end = w + strlen(w);
		eq = memchr(w, '=', (size_t)(end - w));
		if (!eq || end == w)
			continue;
		if ((size_t)(eq - w) == 4 && !strncmp(w, "name", 4))
			continue;
		if (is_match_key(w, (size_t)(eq - w)) != match)
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - w), w);
		snprintf(value, sizeof(value), "%.*s", (int)(end - eq - 1), eq + 1);
		printf("%s", first ? "" : ",");
		first = false;
		print_json_string(stdout, key);
		putchar(':');
		print_json_scalar(stdout, value);
	}
	putchar('}');
}

static void print_rules_json(const struct rules_view *v)
{
	bool first = true, rfirst;
	size_t i, j;

	putchar('{');
	for (i = 0; i < v->n_head; i++)
		print_json_typed(&v->head[i], &first);
	printf("%s\"rules\":[", first ? "" : ",");
	for (i = 0; i < v->n_rows; i++) {
		const struct rule_row *row = &v->rows[i];

		printf("%s{\"name\":", i ? "," : "");
		print_json_string(stdout, row->name);
		rfirst = false;
		for (j = 0; j < row->n; j++) {
			/* spec is a string even in the unlikely case it is digits. */
			if (!strcmp(row->pairs[j].key, "spec")) {
				printf(",\"spec\":");
				print_json_string(stdout, row->pairs[j].value);
				printf(",\"match\":");
				print_spec_part(row->pairs[j].value, true);
				printf(",\"actions\":");
				print_spec_part(row->pairs[j].value, false);
				continue;
			}
			print_json_typed(&row->pairs[j], &rfirst);
		}
		putchar('}');
	}
	printf("]}\n");
}

/* The spec without its leading "name=<name>": the table has a column for it. */
static const char *spec_sans_name(const struct rule_row *row)
{
	size_t len = strlen(row->name);

	if (!row->spec)
		return "";
	if (!strncmp(row->spec, "name=", 5) && !strncmp(row->spec + 5, row->name, len)) {
		if (row->spec[5 + len] == ' ')
			return row->spec + 5 + len + 1;
		if (row->spec[5 + len] == '\0')
			return "";
	}
	return row->spec;
}

static int field_width(const char *s, int width)
{
	int len = (int)strlen(s ? s : "-");

	return len > width ? len : width;
}

/*
 * "kernel", "daemon", or "daemon (why)"; for a rule of both directions
 * that runs in different places, "out: ..., in: ...".
 */
static const char *row_where(const struct rule_row *row, char *buf, size_t len)
{
	const char *w = row_get(row, "where"), *why = row_get(row, "where-reason");
	const char *wi = row_get(row, "where-in"), *whyi = row_get(row, "where-in-reason");

	if (!w)
		return "-";
	if (wi && (strcmp(w, wi) || !why != !whyi || (why && strcmp(why, whyi)))) {
		snprintf(buf, len, "out: %s%s%s%s, in: %s%s%s%s", w, why ? " (" : "", why ? why : "",
			 why ? ")" : "", wi, whyi ? " (" : "", whyi ? whyi : "", whyi ? ")" : "");
		return buf;
	}
	if (!why)
		return w;
	snprintf(buf, len, "%s (%s)", w, why);
	return buf;
}

/* A rule's counters at the last redraw of rules -i, by name. */
struct rule_rate {
	const char *name;	/* into the previous reply, kept until the next */
	uint64_t packets, bytes;
	long long ms;
};

static const struct rule_rate *rate_find(const struct rule_rate *r, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].name && !strcmp(r[i].name, name))
			return &r[i];
	return NULL;
}

static void print_rules_table(const struct rules_view *v, const struct rule_rate *rates,
			      size_t n_rates)
{
	static char where[1][CTL_LINE_MAX + 16];
	long long now = now_ms();
	int w_index, w_name, w_packets, w_bytes, *w_extra, w_where = (int)strlen("where");
	size_t i, j;

	if (v->generation)
		printf("generation %s", v->generation);
	else
		printf("generation ?");
	if (v->modified && !strcmp(v->modified, "1"))
		printf(", modified since the configuration was loaded");
	fputs(v->n_rows ? "\n" : ", no rules\n", stdout);
	for (i = 0; i < v->n_head; i++)
		if (strcmp(v->head[i].key, "generation") && strcmp(v->head[i].key, "modified"))
			printf("%s: %s\n", v->head[i].key, v->head[i].value);
	if (!v->n_rows)
		return;

	w_extra = calloc(v->n_extra ? v->n_extra : 1, sizeof(*w_extra));
	if (!w_extra) {
		fprintf(stderr, "ipmodctl: out of memory\n");
		return;
	}
	w_index = (int)strlen("index");
	w_name = (int)strlen("name");
	w_packets = (int)strlen("packets");
	w_bytes = (int)strlen("bytes");
	for (j = 0; j < v->n_extra; j++)
		w_extra[j] = (int)strlen(v->extra[j]);
	for (i = 0; i < v->n_rows; i++) {
		const struct rule_row *row = &v->rows[i];

		w_index = field_width(row->index, w_index);
		w_name = field_width(row->name, w_name);
		w_packets = field_width(row->packets, w_packets);
		w_bytes = field_width(row->bytes, w_bytes);
		for (j = 0; j < v->n_extra; j++)
			w_extra[j] = field_width(row_get(row, v->extra[j]), w_extra[j]);
	}

	for (i = 0; i < v->n_rows; i++)
		w_where = field_width(row_where(&v->rows[i], where[0], sizeof(where[0])), w_where);
	printf("%*s  %-*s  %*s  %*s", w_index, "index", w_name, "name", w_packets, "packets",
	       w_bytes, "bytes");
	if (rates)
		printf("  %9s  %11s", "packets/s", "bytes/s");
	for (j = 0; j < v->n_extra; j++)
		printf("  %*s", w_extra[j], v->extra[j]);
	printf("  %-*s  spec\n", w_where, "where");
	for (i = 0; i < v->n_rows; i++) {
		const struct rule_row *row = &v->rows[i];
		const char *x;

		printf("%*s  %-*s  %*s  %*s", w_index, row->index ? row->index : "-", w_name,
		       row->name, w_packets, row->packets ? row->packets : "-", w_bytes,
		       row->bytes ? row->bytes : "-");
		if (rates) {
			const struct rule_rate *pr = rate_find(rates, n_rates, row->name);
			double dt = pr && now > pr->ms ? (double)(now - pr->ms) / 1000.0 : 0;

			if (dt > 0)
				printf("  %9.0f  %11.0f",
				       (double)(u64_of(row->packets) - pr->packets) / dt,
				       (double)(u64_of(row->bytes) - pr->bytes) / dt);
			else
				printf("  %9s  %11s", "-", "-");
		}
		/* Impairment counters only on the rules that impair. */
		for (j = 0; j < v->n_extra; j++) {
			x = row_get(row, v->extra[j]);
			printf("  %*s", w_extra[j], x ? x : "");
		}
		printf("  %-*s  %s\n", w_where, row_where(row, where[0], sizeof(where[0])),
		       spec_sans_name(row));
	}
	free(w_extra);
}

int get_rules(const struct ctlcli *c, struct reply *rep, struct rules_view *v)
{
	int r;

	memset(v, 0, sizeof(*v));
	if (reply_alloc(rep) < 0)
		return EXIT_FAIL;
	r = call(c, rep, NULL);
	if (r != EXIT_OK)
		return r;
	return rules_view_parse(&rep->resp, v) < 0 ? EXIT_FAIL : EXIT_OK;
}

static void rates_free(struct rule_rate *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)r[i].name);
	free(r);
}

static int run_rules(const struct ctlcli *c)
{
	/* The first redraw of -i has no rates yet, but their columns. */
	static const struct rule_rate none;
	struct rule_rate *rates = NULL, *next;
	size_t n_rates = 0;
	struct rules_view v;
	struct reply rep;
	bool first = true;
	int r;

	if (c->interval)
		signals_setup();
	do {
		r = get_rules(c, &rep, &v);
		if (r == EXIT_OK) {
			watch_top(c, first);
			first = false;
			if (json)
				print_rules_json(&v);
			else
				print_rules_table(&v, c->interval ? (rates ? rates : &none) : NULL,
						  n_rates);
		}
		next = NULL;
		if (r == EXIT_OK && c->interval) {
			next = calloc(v.n_rows ? v.n_rows : 1, sizeof(*next));
			for (size_t i = 0; next && i < v.n_rows; i++)
				next[i] = (struct rule_rate){ strdup(v.rows[i].name),
							      u64_of(v.rows[i].packets),
							      u64_of(v.rows[i].bytes), now_ms() };
		}
		rates_free(rates, n_rates);
		rates = next;
		n_rates = next ? v.n_rows : 0;
		rules_view_free(&v);
		reply_free(&rep);
	} while (r == EXIT_OK && c->interval && watch_wait(c));
	rates_free(rates, n_rates);
	return r != EXIT_OK && c->interval && interrupted && !first ? EXIT_OK : r;
}

/*
 * save writes a rule with expire= with the time it has left (rounded up to
 * the second), not the duration it was given: reloading the saved file
 * does not restart a fault from the beginning.  Nor an absolute time: the
 * daemon's clock is monotonic, and a saved file may be loaded on another
 * boot or host.  expire= is the last word of a spec.
 */
static const char *save_spec(const struct rule_row *row, char *buf, size_t len)
{
	const char *left = row_get(row, "expires-in-ms"), *w;
	uint64_t ms = 0;
	size_t keep;

	if (!left || !row->spec)
		return row->spec;
	for (const char *p = left; *p >= '0' && *p <= '9' && ms < UINT32_MAX; p++)
		ms = ms * 10 + (uint64_t)(*p - '0');
	w = strstr(row->spec, " expire=");
	keep = w ? (size_t)(w - row->spec) : strlen(row->spec);
	if ((size_t)snprintf(buf, len, "%.*s expire=%llus", (int)keep, row->spec,
			     (unsigned long long)(ms ? (ms + 999) / 1000 : 1)) >= len)
		return row->spec;
	return buf;
}

static int run_save(const struct ctlcli *c)
{
	static char spec[CTL_LINE_MAX + 32];
	static char group[8 * CTL_LINE_MAX];
	struct rules_view v;
	struct reply rep;
	size_t i;
	int r;

	r = get_rules(c, &rep, &v);
	if (r != EXIT_OK)
		goto out;
	/* Nothing is printed unless every rule converts. */
	for (i = 0; i < v.n_rows; i++) {
		if (!v.rows[i].spec || ctlcli_libconfig_rule(save_spec(&v.rows[i], spec, sizeof(spec)),
							     group, sizeof(group)) < 0) {
			fprintf(stderr, "ipmodctl: rule '%s': no spec of key=value words in the "
					"reply\n", v.rows[i].name);
			r = EXIT_FAIL;
			goto out;
		}
	}
	printf("# ipmodctl save: generation %s%s, %zu rule%s\n",
	       v.generation ? v.generation : "?",
	       v.modified && !strcmp(v.modified, "1") ? " (modified since loaded)" : "",
	       v.n_rows, v.n_rows == 1 ? "" : "s");
	printf("rules = (%s", v.n_rows ? "\n" : "");
	for (i = 0; i < v.n_rows; i++) {
		ctlcli_libconfig_rule(save_spec(&v.rows[i], spec, sizeof(spec)), group,
				      sizeof(group));
		printf("\t%s%s\n", group, i + 1 < v.n_rows ? "," : "");
	}
	printf(");\n");
out:
	rules_view_free(&v);
	reply_free(&rep);
	return r;
}

/* ---- mutations ------------------------------------------------------------ */

/* The value of the request's command line: the rule of del and replace. */
static const char *request_arg(const struct ctlcli *c, char *buf, size_t len)
{
	const char *eq = strchr(c->request, '='), *nl;

	if (!eq || !(nl = strchr(eq, '\n')))
		return "";
	snprintf(buf, len, "%.*s", (int)(nl - eq - 1), eq + 1);
	return buf;
}

static int run_change(const struct ctlcli *c)
{
	char arg[CTL_LINE_MAX], gen[64] = "";
	const struct ctl_pair *pairs;
	const char *name, *index, *g, *rules;
	struct reply rep;
	size_t n;
	int r;

	r = reply_alloc(&rep) < 0 ? EXIT_FAIL : call(c, &rep, NULL);
	if (r != EXIT_OK)
		goto out;
	pairs = rep.resp.pairs;
	n = rep.resp.n;
	if (json) {
		print_json_object(pairs, n);
		goto out;
	}
	name = ctl_pairs_get(pairs, n, "name");
	index = ctl_pairs_get(pairs, n, "index");
	g = ctl_pairs_get(pairs, n, "generation");
	rules = ctl_pairs_get(pairs, n, "rules");
	if (g)
		snprintf(gen, sizeof(gen), " (generation %.40s)", g);
	switch (c->cmd) {
	case CTLCLI_ADD:
		printf("added rule %s", name ? name : "?");
		if (index)
			printf(" at position %s", index);
		printf("%s\n", gen);
		break;
	case CTLCLI_DEL:
		printf("deleted rule %s%s\n", request_arg(c, arg, sizeof(arg)), gen);
		break;
	case CTLCLI_REPLACE:
		request_arg(c, arg, sizeof(arg));
		if (name && strcmp(name, arg))
			printf("replaced rule %s with %s%s\n", arg, name, gen);
		else
			printf("replaced rule %s%s\n", arg, gen);
		break;
	case CTLCLI_FLUSH:
		if (c->impairments)
			printf("deleted %s impairing rule%s%s\n",
			       ctl_pairs_get(pairs, n, "removed") ?: "?",
			       ctl_pairs_get(pairs, n, "removed") &&
			       !strcmp(ctl_pairs_get(pairs, n, "removed"), "1") ? "" : "s", gen);
		else
			printf("deleted every rule%s\n", gen);
		break;
	case CTLCLI_RELOAD:
		printf("reloaded the configuration");
		if (g)
			printf(": generation %s", g);
		if (rules)
			printf(", %s rule%s", rules, strcmp(rules, "1") ? "s" : "");
		printf("\n");
		break;
	default:
		printf("counters reset\n");
		break;
	}
out:
	reply_free(&rep);
	return r;
}

/* ---- explain -------------------------------------------------------------- */

static bool is_explain_tail(const char *key)
{
	return !strcmp(key, "more-rules") || !strcmp(key, "result") || !strcmp(key, "impaired") ||
	       !strcmp(key, "where") || !strcmp(key, "where-reason");
}

static void print_explain_json(const struct ctl_response *resp)
{
	const struct ctl_pair *p = resp->pairs;
	bool first = true, in_rule = false, rfirst = true;
	size_t i;

	printf("{\"packet\":{");
	for (i = 0; i < resp->n && strcmp(p[i].key, "rule") && !is_explain_tail(p[i].key); i++)
		print_json_typed(&p[i], &first);
	printf("},\"rules\":[");
	for (; i < resp->n && !is_explain_tail(p[i].key); i++) {
		if (!strcmp(p[i].key, "rule")) {
			printf("%s{\"name\":", in_rule ? "}," : "");
			print_json_string(stdout, p[i].value);
			in_rule = true;
			rfirst = false;
			continue;
		}
		if (!strcmp(p[i].key, "actions")) {
			printf(",\"actions\":");
			print_spec_part(p[i].value, false);
			continue;
		}
		print_json_typed(&p[i], &rfirst);
	}
	printf("%s]", in_rule ? "}" : "");
	first = false;
	for (; i < resp->n; i++)
		print_json_typed(&p[i], &first);
	printf("}\n");
}

static void print_explain_text(const struct ctl_response *resp)
{
	const struct ctl_pair *p = resp->pairs;
	const char *result = NULL, *where = NULL, *why = NULL, *impaired = NULL, *more = NULL;
	const char *name = NULL, *index = NULL, *prob = NULL, *actions = NULL;
	size_t i, rules = 0;

	printf("packet:");
	for (i = 0; i < resp->n && strcmp(p[i].key, "rule") && !is_explain_tail(p[i].key); i++)
		printf(" %s=%s", p[i].key, p[i].value);
	printf("\n");
	for (;; i++) {
		bool end = i >= resp->n || is_explain_tail(p[i].key);

		if ((end || !strcmp(p[i].key, "rule")) && name) {
			printf("%s  %4s  %s", rules++ ? "" : "matches, in order:\n",
			       index ? index : "?", name);
			if (actions)
				printf("  %s", actions);
			if (prob)
				printf("  (matches with probability %s; "
				       "the rest assumes it did not)", prob);
			printf("\n");
			name = index = prob = actions = NULL;
		}
		if (end)
			break;
		if (!strcmp(p[i].key, "rule"))
			name = p[i].value;
		else if (!strcmp(p[i].key, "index"))
			index = p[i].value;
		else if (!strcmp(p[i].key, "probability"))
			prob = p[i].value;
		else if (!strcmp(p[i].key, "actions"))
			actions = p[i].value;
	}
	if (!rules)
		printf("matches no rule\n");
	for (; i < resp->n; i++) {
		if (!strcmp(p[i].key, "result"))
			result = p[i].value;
		else if (!strcmp(p[i].key, "where"))
			where = p[i].value;
		else if (!strcmp(p[i].key, "where-reason"))
			why = p[i].value;
		else if (!strcmp(p[i].key, "impaired"))
			impaired = p[i].value;
		else if (!strcmp(p[i].key, "more-rules"))
			more = p[i].value;
	}
	if (more)
		printf("  ... and %s more\n", more);
	printf("verdict: %s%s\n", result ? result : "?",
	       result && !strcmp(result, "default") ? " (no rule ended the chain: accepted)" : "");
	if (impaired)
		printf("impaired by rule %s (delay, loss... as it says)\n", impaired);
	printf("handled by: %s%s%s%s\n", where ? where : "?", why ? " (" : "", why ? why : "",
	       why ? ")" : "");
}

static int run_explain(const struct ctlcli *c)
{
	struct reply rep;
	int r;

	r = reply_alloc(&rep) < 0 ? EXIT_FAIL : call(c, &rep, NULL);
	if (r == EXIT_OK) {
		if (json)
			print_explain_json(&rep.resp);
		else
			print_explain_text(&rep.resp);
	}
	reply_free(&rep);
	return r;
}

/* ---- flows ---------------------------------------------------------------- */

static void print_flows_json(const struct ctl_response *resp)
{
	const struct ctl_pair *p = resp->pairs;
	bool first = true, in_flow = false, ffirst = true, had = false;
	size_t i;

	printf("{");
	for (i = 0; i < resp->n; i++) {
		if (!strcmp(p[i].key, "flow")) {
			printf("%s", in_flow ? "}," : (first ? "\"flows\":[" : ",\"flows\":["));
			printf("{\"line\":");
			print_json_string(stdout, p[i].value);
			in_flow = true;
			had = true;
			first = false;
			ffirst = false;
			continue;
		}
		if (!had && !strcmp(p[i].key, "listed")) {
			printf("%s\"flows\":[]", first ? "" : ",");
			had = true;
			first = false;
		}
		if (in_flow && (!strcmp(p[i].key, "listed") || !strcmp(p[i].key, "more"))) {
			printf("}]");
			in_flow = false;
		}
		print_json_typed(&p[i], in_flow ? &ffirst : &first);
	}
	if (in_flow)
		printf("}]");
	printf("}\n");
}

static void print_flows_text(const struct ctl_response *resp)
{
	const char *entries = ctl_pairs_get(resp->pairs, resp->n, "flows-entries");
	const char *listed = ctl_pairs_get(resp->pairs, resp->n, "listed");
	const char *more = ctl_pairs_get(resp->pairs, resp->n, "more");

	for (size_t i = 0; i < resp->n; i++)
		if (!strcmp(resp->pairs[i].key, "flow"))
			printf("%s\n", resp->pairs[i].value);
	printf("%s flows listed", listed ? listed : "0");
	if (more && strcmp(more, "0"))
		printf(", %s more match (limit=N)", more);
	printf(" (%s in the table)\n", entries ? entries : "?");
}

static int run_flows(const struct ctlcli *c)
{
	struct reply rep;
	int r;

	r = reply_alloc(&rep) < 0 ? EXIT_FAIL : call(c, &rep, NULL);
	if (r == EXIT_OK) {
		if (json)
			print_flows_json(&rep.resp);
		else
			print_flows_text(&rep.resp);
	}
	reply_free(&rep);
	return r;
}

/* ---- streams -------------------------------------------------------------- */

static void on_signal(int sig)
{
	int saved = errno;
	long long now = now_ms();

	if (!interrupted) {
		first_signal_ms = now;
		interrupted = 1;
	} else if (now - first_signal_ms >= SIGNAL_REPEAT_MS) {
		interrupted = 2;
	}
	errno = saved;
}

/* Blocked but while waiting (ppoll) or writing, so that no ^C is lost in between. */
void signals_setup(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sa.sa_mask = block;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
	signals_set = true;
}

/*
 * Write it all, with ^C let in: a reader that stopped reading must not hold
 * us.  Returns 0, -EINTR once interrupted, or -errno (-EPIPE: reader gone).
 */
int write_all(int fd, const void *data, size_t len)
{
	const char *d = data;
	sigset_t saved;
	ssize_t n;
	int r = 0;

	sigprocmask(SIG_SETMASK, &wait_mask, &saved);
	while (len) {
		if (interrupted) {
			r = -EINTR;
			break;
		}
		n = write(fd, d, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = negative_errno();
			break;
		}
		d += n;
		len -= (size_t)n;
	}
	sigprocmask(SIG_SETMASK, &saved, NULL);
	return r;
}

/* Read what the stream has; 0 at its end, -EINTR once interrupted, -errno. */
static ssize_t stream_read(int fd, long long timeout_ms)
{
	ssize_t n;
	int r;

	for (;;) {
		r = wait_readable(fd, timeout_ms);
		if (r < 0)
			return r;
		if (r == 0)
			return -ETIMEDOUT;
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n >= 0)
			return n;
		if (errno != EINTR && errno != EAGAIN)
			return negative_errno();
	}
}

static int trace_line(char *line)
{
	static char buf[8 * CTL_LINE_MAX], key[6 * CTL_LINE_MAX + 8], val[6 * CTL_LINE_MAX + 8];
	char *value = strchr(line, '=');
	int len;

	if (value)
		*value++ = '\0';
	else
		value = line + strlen(line);

	if (!json) {
		if (!strcmp(line, "lost")) {
			fprintf(stderr, "lost %s events\n", value);
			return 0;
		}
		/* An event's words as they are; a line of some later kind in full. */
		if (!strcmp(line, "trace"))
			len = snprintf(buf, sizeof(buf), "%s\n", value);
		else
			len = snprintf(buf, sizeof(buf), "%s=%s\n", line, value);
	} else if (!strcmp(line, "trace")) {
		len = ctlcli_trace_json(value, buf, sizeof(buf) - 1);
		if (len >= 0)
			buf[len++] = '\n';
	} else {
		/* {"lost":N}, and a line of some later kind as a one-key object. */
		if (ctlcli_json_string(line, key, sizeof(key)) < 0 ||
		    ctlcli_json_string(value, val, sizeof(val)) < 0)
			return -ENOSPC;
		len = snprintf(buf, sizeof(buf), "{%s:%s}\n", key,
			       ctlcli_json_is_uint(value) ? value : val);
	}
	if (len < 0 || (size_t)len >= sizeof(buf))
		return -ENOSPC;
	return write_all(STDOUT_FILENO, buf, (size_t)len);
}

/*
 * Feed a stream's bytes to a stream_feed_fn as they come: the rest of the
 * request's reply first, then what recv() brings, until the daemon ends the
 * stream, ^C, or feed() stops it.  feed() returns 0 to go on, 1 to stop
 * (a closed pipe, ^C seen while writing), or -1 after saying why it failed.
 * what names the stream in messages ("trace", "monitor").
 */
typedef int (*stream_feed_fn)(void *state, const char *d, size_t n);

static int run_stream(const struct ctlcli *c, const char *what, stream_feed_fn feed, void *state)
{
	const char *d;
	struct reply rep;
	ssize_t got;
	size_t n;
	int fd = -1, r, ret;

	signals_setup();
	ret = reply_alloc(&rep) < 0 ? EXIT_FAIL : call(c, &rep, &fd);
	if (ret != EXIT_OK)
		goto out;
	d = rep.rest;
	n = rep.rest_len;
	for (;;) {
		r = feed(state, d, n);
		if (r < 0)
			ret = EXIT_FAIL;
		if (r != 0)
			break;
		got = stream_read(fd, -1);
		if (got == -EINTR)
			break;
		if (got < 0) {
			fprintf(stderr, "ipmodctl: reading the %s: %s\n", what, strerror((int)-got));
			ret = EXIT_FAIL;
			break;
		}
		if (got == 0) {
			fprintf(stderr, "ipmodctl: ipmodd ended the %s\n", what);
			break;
		}
		d = chunk;
		n = (size_t)got;
	}
out:
	if (fd >= 0)
		close(fd);
	reply_free(&rep);
	return ret;
}

/* The trace's lines, one at a time to trace_line(). */
struct trace_feed {
	char line[CTL_LINE_MAX];
	size_t len;
};

static int trace_feed(void *state, const char *d, size_t n)
{
	struct trace_feed *t = state;
	int r;

	for (size_t i = 0; i < n; i++) {
		if (d[i] != '\n') {
			if (t->len == sizeof(t->line) - 1) {
				fprintf(stderr, "ipmodctl: a trace line from ipmodd is longer than %d "
						"bytes\n", CTL_LINE_MAX);
				return -1;
			}
			t->line[t->len++] = d[i];
			continue;
		}
		t->line[t->len] = '\0';
		t->len = 0;
		r = trace_line(t->line);
		if (r == -EINTR || r == -EPIPE)
			return 1;
		if (r < 0) {
			fprintf(stderr, "ipmodctl: writing the trace: %s\n", strerror(-r));
			return -1;
		}
	}
	return 0;
}

static int run_trace(const struct ctlcli *c)
{
	static struct trace_feed t;

	t.len = 0;
	return run_stream(c, "trace", trace_feed, &t);
}

/*
 * Captured payloads are private: the file is created 0600, an existing
 * regular file loses its group and other bits, and a symbolic link is not
 * followed (another user's link in a shared directory would otherwise choose
 * which file gets truncated and filled).
 */
static int capture_open(const struct ctlcli *c)
{
	struct stat st;
	int fd, r;

	if (!c->output || !strcmp(c->output, "-"))
		return STDOUT_FILENO;
	fd = open(c->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = negative_errno();
		if (r == -ELOOP)
			fprintf(stderr, "ipmodctl: %s is a symbolic link; refusing to follow it\n",
				c->output);
		else
			fprintf(stderr, "ipmodctl: cannot open %s: %s\n", c->output, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) &&
	    fchmod(fd, st.st_mode & 0700) < 0) {
		r = negative_errno();
		fprintf(stderr, "ipmodctl: cannot make %s private (mode 0600): %s\n", c->output,
			strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

/*
 * Copy len bytes of pcapng to out, counting them.  Once interrupted, only the
 * rest of the block in flight is copied, so that the output ends on a whole
 * block.  Returns 0, 1 when stopped on a block boundary, or -errno (-EINTR:
 * interrupted twice).
 */
static int capture_copy(struct pcapng_counter *pc, int out, const char *d, size_t len)
{
	size_t n = len;
	ssize_t w;

	if (interrupted)
		for (n = 0; n < len && pcapng_counter_partial(pc) && !pc->err; n++)
			pcapng_counter_feed(pc, d + n, 1);
	else
		pcapng_counter_feed(pc, d, len);
	if (pc->err)
		return pc->err;
	while (n) {
		w = write(out, d, n);
		if (w < 0 && errno == EINTR) {
			if (interrupted > 1)
				return -EINTR;
			continue;
		}
		if (w < 0)
			return negative_errno();
		d += w;
		n -= (size_t)w;
	}
	return interrupted && !pcapng_counter_partial(pc);
}

static int run_capture(const struct ctlcli *c)
{
	const char *where = c->output && strcmp(c->output, "-") ? c->output : "standard output";
	struct pcapng_counter pc;
	struct reply rep;
	sigset_t saved;
	const char *d;
	ssize_t got;
	size_t n;
	int fd = -1, out = -1, ret, r;

	pcapng_counter_init(&pc);
	signals_setup();
	ret = reply_alloc(&rep) < 0 ? EXIT_FAIL : call(c, &rep, &fd);
	if (ret != EXIT_OK)
		goto out;
	/* Only now: a refused capture leaves an existing file alone. */
	out = capture_open(c);
	if (out < 0) {
		ret = EXIT_FAIL;
		goto out;
	}
	d = rep.rest;
	n = rep.rest_len;
	for (;;) {
		/* A write to a reader that stopped reading must not hold off ^C. */
		sigprocmask(SIG_SETMASK, &wait_mask, &saved);
		r = capture_copy(&pc, out, d, n);
		sigprocmask(SIG_SETMASK, &saved, NULL);
		if (r == 1 || r == -EINTR || r == -EPIPE)
			break;
		if (r == -EBADMSG) {
			fprintf(stderr, "ipmodctl: malformed pcapng from ipmodd near byte %" PRIu64
					": %s\n", pc.offset, pc.why);
			ret = EXIT_FAIL;
			break;
		}
		if (r < 0) {
			fprintf(stderr, "ipmodctl: writing to %s: %s\n", where, strerror(-r));
			ret = EXIT_FAIL;
			break;
		}
		if (interrupted > 1)
			break;
		/* Once interrupted, the rest of a block has a moment to arrive. */
		got = stream_read(fd, interrupted ? BLOCK_GRACE_MS : -1);
		if (got == -EINTR && interrupted < 2) {
			n = 0;
			continue;
		}
		if (got == -EINTR || got == -ETIMEDOUT)
			break;
		if (got < 0) {
			fprintf(stderr, "ipmodctl: reading the capture: %s\n", strerror((int)-got));
			ret = EXIT_FAIL;
			break;
		}
		if (got == 0) {
			if (pcapng_counter_partial(&pc)) {
				fprintf(stderr, "ipmodctl: ipmodd ended the capture in the middle of "
						"a block\n");
				ret = EXIT_FAIL;
			}
			break;
		}
		d = chunk;
		n = (size_t)got;
	}
	if (out != STDOUT_FILENO && close(out) < 0) {
		fprintf(stderr, "ipmodctl: writing to %s: %s\n", where, strerror(errno));
		ret = EXIT_FAIL;
	}
	if (json)
		fprintf(stderr, "{\"packets\":%" PRIu64 ",\"out\":%" PRIu64 ",\"in\":%" PRIu64
			",\"lost\":%" PRIu64 "}\n", pc.packets, pc.outbound, pc.inbound, pc.dropped);
	else
		fprintf(stderr, "%" PRIu64 " packet%s captured (%" PRIu64 " out, %" PRIu64 " in), %"
			PRIu64 " lost\n", pc.packets, pc.packets == 1 ? "" : "s", pc.outbound,
			pc.inbound, pc.dropped);
out:
	if (fd >= 0)
		close(fd);
	reply_free(&rep);
	return ret;
}

/* ---- monitor -------------------------------------------------------------- */

#define EVENT_KEYS_MAX 24

/* A change event: the key=value lines up to a blank line. */
struct event {
	char text[8 * CTL_LINE_MAX];
	size_t len;
	struct ctl_pair pairs[EVENT_KEYS_MAX];
	size_t n;
};

static const char *event_get(const struct event *ev, const char *key)
{
	return ctl_pairs_get(ev->pairs, ev->n, key);
}

/* Keys whose values are numbers in JSON. */
static bool event_numeric(const char *key)
{
	return !strcmp(key, "generation") || !strcmp(key, "rules") || !strcmp(key, "uid") ||
	       !strcmp(key, "pid") || !strcmp(key, "errno") || !strcmp(key, "lost");
}

/* " key=value", the value in quotes (with \" and \\) unless it is a plain word. */
static void print_word(FILE *f, const char *key, const char *value)
{
	if (!value)
		return;
	if (*value && !strpbrk(value, " \"\\")) {
		fprintf(f, " %s=%s", key, value);
		return;
	}
	fprintf(f, " %s=\"", key);
	for (; *value; value++) {
		if (*value == '"' || *value == '\\')
			putc('\\', f);
		putc(*value, f);
	}
	putc('"', f);
}

static int event_print(const struct event *ev)
{
	const char *lost = event_get(ev, "lost"), *change = event_get(ev, "change");
	bool first = true;
	size_t i;

	if (json) {
		putchar('{');
		for (i = 0; i < ev->n; i++) {
			if (event_numeric(ev->pairs[i].key) && ctlcli_json_is_uint(ev->pairs[i].value)) {
				printf("%s", first ? "" : ",");
				first = false;
				print_json_string(stdout, ev->pairs[i].key);
				printf(":%s", ev->pairs[i].value);
			} else {
				printf("%s", first ? "" : ",");
				first = false;
				print_json_string(stdout, ev->pairs[i].key);
				putchar(':');
				print_json_string(stdout, ev->pairs[i].value);
			}
		}
		printf("}\n");
	} else if (lost) {
		fflush(stdout);
		fprintf(stderr, "lost %s events (ipmodctl read too slowly)\n", lost);
		return 0;
	} else if (change) {
		const char *result = event_get(ev, "result");

		printf("%s %s", event_get(ev, "time") ? event_get(ev, "time") : "-", change);
		if (result && strcmp(result, "applied"))
			printf(" %s", result);
		print_word(stdout, "name", event_get(ev, "name"));
		print_word(stdout, "generation", event_get(ev, "generation"));
		print_word(stdout, "rules", event_get(ev, "rules"));
		print_word(stdout, "uid", event_get(ev, "uid"));
		print_word(stdout, "pid", event_get(ev, "pid"));
		print_word(stdout, "cmdline", event_get(ev, "cmdline"));
		print_word(stdout, "cmdline-source", event_get(ev, "cmdline-source"));
		print_word(stdout, "source", event_get(ev, "source"));
		print_word(stdout, "rule", event_get(ev, "rule"));
		print_word(stdout, "old-rule", event_get(ev, "old-rule"));
		print_word(stdout, "errno", event_get(ev, "errno"));
		print_word(stdout, "error", event_get(ev, "error"));
		putchar('\n');
	}
	/* A line per event as it comes, also into a pipe. */
	if (fflush(stdout) == EOF)
		return errno == EPIPE ? -EPIPE : -EIO;
	return 0;
}

/* Split the block's lines at their first '='. */
static int event_parse(struct event *ev)
{
	char *p = ev->text, *end = ev->text + ev->len, *nl, *eq;

	ev->n = 0;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		*nl = '\0';
		eq = strchr(p, '=');
		if (!eq || ev->n == EVENT_KEYS_MAX)
			return -EBADMSG;
		*eq = '\0';
		ev->pairs[ev->n++] = (struct ctl_pair){ p, eq + 1 };
		p = nl + 1;
	}
	return 0;
}

/* The change events, each up to a blank line, to event_print(). */
static int monitor_feed(void *state, const char *d, size_t n)
{
	struct event *ev = state;
	int r;

	for (size_t i = 0; i < n; i++) {
		bool blank = d[i] == '\n' && (ev->len == 0 || ev->text[ev->len - 1] == '\n');

		if (!blank) {
			if (ev->len == sizeof(ev->text)) {
				fprintf(stderr, "ipmodctl: an event from ipmodd is longer than %zu "
						"bytes\n", sizeof(ev->text));
				return -1;
			}
			ev->text[ev->len++] = d[i];
			continue;
		}
		if (ev->len == 0)
			continue;
		if (event_parse(ev) < 0) {
			fprintf(stderr, "ipmodctl: malformed event from ipmodd\n");
			return -1;
		}
		ev->len = 0;
		r = event_print(ev);
		if (r == -EPIPE)
			return 1;
		if (r < 0) {
			fprintf(stderr, "ipmodctl: writing the events: %s\n", strerror(-r));
			return -1;
		}
	}
	return 0;
}

static int run_monitor(const struct ctlcli *c)
{
	static struct event ev;

	ev.len = 0;
	return run_stream(c, "monitor", monitor_feed, &ev);
}

static int run_version(const struct ctlcli *c)
{
	(void)c;
	if (json)
		printf("{\"version\":\"%s\"}\n", PACKAGE_VERSION);
	else
		printf("ipmodctl %s\n", PACKAGE_VERSION);
	return EXIT_OK;
}

static int run_help(const struct ctlcli *c)
{
	if (c->list != CTLCLI_LIST_NONE)
		help_list(stdout, c);
	else if (c->topic)
		usage_topic(stdout, c->topic);
	else
		usage(stdout);
	return EXIT_OK;
}

/*
 * What each command runs.  Its name, alias, synopsis, help, options and
 * request are its row of ctlcli_subcommands (ctlcli.c), the one table that
 * parsing, "help" and "help commands" read; the handlers stay here, out of
 * what the unit tests and fuzzers link.
 */
static int (*const handlers[])(const struct ctlcli *c) = {
	[CTLCLI_STATUS] = run_status,
	[CTLCLI_RULES] = run_rules,
	[CTLCLI_ADD] = run_change,
	[CTLCLI_DEL] = run_change,
	[CTLCLI_REPLACE] = run_change,
	[CTLCLI_FLUSH] = run_change,
	[CTLCLI_RELOAD] = run_change,
	[CTLCLI_RESET] = run_change,
	[CTLCLI_SAVE] = run_save,
	[CTLCLI_TRACE] = run_trace,
	[CTLCLI_CAPTURE] = run_capture,
	[CTLCLI_EXPLAIN] = run_explain,
	[CTLCLI_FLOWS] = run_flows,
	[CTLCLI_MONITOR] = run_monitor,
	[CTLCLI_METRICS] = run_metrics,
	[CTLCLI_VERSION] = run_version,
	[CTLCLI_HELP] = run_help,
};

int main(int argc, char **argv)
{
	static struct ctlcli c;
	unsigned int flags = isatty(STDOUT_FILENO) ? CTLCLI_STDOUT_TTY : 0;
	char err[ERR_MAX];
	int r;

	r = ctlcli_parse(argc, argv, flags, &c, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ipmodctl: %s\n", err);
		if (c.sub && c.sub->cmd != CTLCLI_HELP)
			usage_line(stderr, c.sub);
		else
			fprintf(stderr, "Try 'ipmodctl help'.\n");
		return EXIT_USAGE;
	}
	if (c.socket)
		socket_path = c.socket;
	json = c.json;

	r = handlers[c.cmd] ? handlers[c.cmd](&c) : EXIT_FAIL;
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "ipmodctl: writing the output: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	return r;
}
