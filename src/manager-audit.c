/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The audit trail: every change of the running chain asked for over the
 * control socket (or by SIGHUP), applied or refused, is logged with who
 * asked (uid, pid and command line of the client: from /proc, else as the
 * client declared it in its request's client-cmdline=), what (the action and
 * the rule) and the generation it made, as a message with a MESSAGE_ID and
 * structured fields (ipmodd(8), AUDIT TRAIL), and is sent to the clients of
 * "monitor=changes" (ipmodctl monitor).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "log.h"
#include "manager.h"
#include "rule.h"

/* sd-id128 values, fixed: "journalctl MESSAGE_ID=..." finds every change. */
#define AUDIT_ID_APPLIED "919b9154b784416496dae4a910ba5b9e"
#define AUDIT_ID_REFUSED "20a00973ac7d4f7f9a5c3b2ff4bdd7db"

#define CMDLINE_READ_MAX 1024		/* bytes of /proc/PID/cmdline read */
#define CMDLINE_MAX CTL_CMDLINE_MAX	/* bytes of it logged, escaped */
#define AUDIT_STREAM_BUF (64 * 1024)	/* a monitor client's queue */
/* A refused replace: its words (3 * RULE_FORMAT_MAX), the old rule, the command line... */
#define AUDIT_LINE_MAX (4 * RULE_FORMAT_MAX + 2 * CMDLINE_MAX + 1024)

struct audit_sub {
	struct manager *m;
	struct control_client *client;
	struct audit_sub *next, **pprev;
	uint64_t lost;		/* events that did not fit its queue, not yet reported */
};

/*
 * Printable ASCII as it is, '\' as "\\" (unless the text is escaped already:
 * then it stays), everything else as "\xHH".
 */
static void escape_text(char *out, size_t outlen, const char *s, size_t len, size_t max,
			bool escaped)
{
	struct strbuf sb = { .buf = out, .size = outlen };
	size_t i;

	out[0] = '\0';
	for (i = 0; i < len && sb.len < max && !sb.overflow; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\' && !escaped)
			strbuf_printf(&sb, "\\\\");
		else if (c >= 0x20 && c < 0x7f)
			strbuf_printf(&sb, "%c", c);
		else
			strbuf_printf(&sb, "\\x%02x", c);
	}
	if (i < len && sb.len + 4 <= outlen) {
		/* Cut: say so. */
		memcpy(out + sb.len, "...", 4);
	}
}

static void escape(char *out, size_t outlen, const char *s, size_t len, size_t max)
{
	escape_text(out, outlen, s, len, max, false);
}

/* The client's /proc/PID/cmdline, arguments separated by spaces; "" when unreadable. */
static void read_cmdline(pid_t pid, char *out, size_t outlen)
{
	char path[64], raw[CMDLINE_READ_MAX];
	ssize_t n = 0, got;
	int fd;

	out[0] = '\0';
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return;
	while (n < (ssize_t)sizeof(raw)) {
		got = read(fd, raw + n, sizeof(raw) - (size_t)n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += got;
	}
	close(fd);
	while (n > 0 && raw[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (raw[i] == '\0')
			raw[i] = ' ';
	escape(out, outlen, raw, (size_t)n, CMDLINE_MAX);
}

/* The request's key=value lines, as words (escaped): what a refused add asked for. */
static void request_words(const struct ctl_request *req, char *out, size_t outlen)
{
	struct strbuf sb = { .buf = out, .size = outlen };
	char v[RULE_FORMAT_MAX];

	out[0] = '\0';
	for (size_t i = 0; i < req->n && !sb.overflow; i++) {
		escape(v, sizeof(v), req->pairs[i].value, strlen(req->pairs[i].value), 256);
		strbuf_printf(&sb, "%s%s=%s", i ? " " : "", req->pairs[i].key, v);
	}
}

static void sub_closed(void *userdata)
{
	struct audit_sub *s = userdata;

	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	s->m->n_audit_subs--;
	free(s);
}

/* One event to every monitor client: queued whole, or counted as lost. */
static void broadcast(struct manager *m, const char *block, size_t len)
{
	char note[48];
	int n;

	for (struct audit_sub *s = m->audit_subs; s; s = s->next) {
		if (s->lost) {
			n = snprintf(note, sizeof(note), "lost=%llu\n\n", (unsigned long long)s->lost);
			if (control_stream_write(s->client, note, (size_t)n) < 0) {
				s->lost++;
				continue;
			}
			s->lost = 0;
		}
		if (control_stream_write(s->client, block, len) < 0)
			s->lost++;
	}
}

struct audit_event {
	const char *action;
	bool applied;
	uid_t uid;
	pid_t pid;
	const char *source;	/* "control" or "signal" */
	const char *name;	/* the rule's name, or NULL */
	const char *rule;	/* its spec, or NULL */
	const char *old_rule;	/* replace, del: what was there; or NULL */
	const char *declared;	/* the client's client-cmdline=, or NULL */
	int err;
	const char *error;
};

static void emit(struct manager *m, const struct audit_event *e)
{
	static char block[AUDIT_LINE_MAX];
	struct strbuf sb = { .buf = block, .size = sizeof(block) };
	char cmdline[4 * CMDLINE_MAX + 8], uid[24], pid[24], gen[24], rules[24], err[24];
	char suppressed[24], error[4 * CTL_ERROR_MAX + 8];
	char when[64];
	const char *cmdline_source = "proc";
	struct log_field f[LOG_FIELDS_MAX];
	struct timespec ts;
	struct tm tm;
	size_t n = 0;

	/* /proc, read by the daemon itself, first; what the client declared is only a claim. */
	read_cmdline(e->pid, cmdline, sizeof(cmdline));
	if (!cmdline[0] && e->declared) {
		escape_text(cmdline, sizeof(cmdline), e->declared, strlen(e->declared), CMDLINE_MAX,
			    true);
		cmdline_source = "client";
	}
	/* One line in the monitor's stream, whatever the error says. */
	escape(error, sizeof(error), e->error ? e->error : strerror(-e->err),
	       strlen(e->error ? e->error : strerror(-e->err)), CTL_ERROR_MAX);
	snprintf(uid, sizeof(uid), "%lld", e->uid == (uid_t)-1 ? -1LL : (long long)e->uid);
	snprintf(pid, sizeof(pid), "%d", (int)e->pid);
	snprintf(gen, sizeof(gen), "%u", m->generation);
	snprintf(rules, sizeof(rules), "%zu", chain_size(m->chain));
	snprintf(err, sizeof(err), "%d", e->err < 0 ? -e->err : e->err);

	f[n++] = (struct log_field){ "ACTION", e->action };
	f[n++] = (struct log_field){ "RESULT", e->applied ? "applied" : "refused" };
	f[n++] = (struct log_field){ "GENERATION", gen };
	f[n++] = (struct log_field){ "RULES", rules };
	if (e->name)
		f[n++] = (struct log_field){ "RULE_NAME", e->name };
	if (e->rule)
		f[n++] = (struct log_field){ "RULE", e->rule };
	if (e->old_rule)
		f[n++] = (struct log_field){ "OLD_RULE", e->old_rule };
	f[n++] = (struct log_field){ "CLIENT_UID", uid };
	f[n++] = (struct log_field){ "CLIENT_PID", pid };
	if (cmdline[0]) {
		f[n++] = (struct log_field){ "CLIENT_CMDLINE", cmdline };
		f[n++] = (struct log_field){ "CLIENT_CMDLINE_SOURCE", cmdline_source };
	}
	f[n++] = (struct log_field){ "CLIENT_SOURCE", e->source };
	if (e->applied) {
		log_fields(LOG_NOTICE, AUDIT_ID_APPLIED, f, n,
			   "%s%s%s%s by uid %s pid %s: generation %s, %s rule%s", e->action,
			   e->name ? " rule '" : "", e->name ? e->name : "", e->name ? "'" : "",
			   uid, pid, gen, rules, strcmp(rules, "1") ? "s" : "");
	} else {
		f[n++] = (struct log_field){ "ERRNO", err };
		f[n++] = (struct log_field){ "ERROR", error };
		if (ratelimit_allow(&m->audit_log, (uint64_t)time(NULL) * 1000000000ULL)) {
			/* How many refusals went unlogged before this one. */
			if (m->audit_log.suppressed) {
				snprintf(suppressed, sizeof(suppressed), "%llu",
					 (unsigned long long)m->audit_log.suppressed);
				f[n++] = (struct log_field){ "SUPPRESSED", suppressed };
				m->audit_log.suppressed = 0;
			}
			log_fields(LOG_WARNING, AUDIT_ID_REFUSED, f, n,
				   "refused %s by uid %s pid %s: %s", e->action, uid, pid, error);
		}
	}

	if (!m->audit_subs)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	strbuf_printf(&sb, "change=%s\nresult=%s\ntime=%s.%06ldZ\ngeneration=%s\nrules=%s\n",
		      e->action, e->applied ? "applied" : "refused", when, ts.tv_nsec / 1000, gen,
		      rules);
	if (e->name)
		strbuf_printf(&sb, "name=%s\n", e->name);
	if (e->rule)
		strbuf_printf(&sb, "rule=%s\n", e->rule);
	if (e->old_rule)
		strbuf_printf(&sb, "old-rule=%s\n", e->old_rule);
	strbuf_printf(&sb, "uid=%s\npid=%s\n", uid, pid);
	if (cmdline[0])
		strbuf_printf(&sb, "cmdline=%s\ncmdline-source=%s\n", cmdline, cmdline_source);
	strbuf_printf(&sb, "source=%s\n", e->source);
	if (!e->applied)
		strbuf_printf(&sb, "errno=%s\nerror=%s\n", err, error);
	strbuf_printf(&sb, "\n");
	if (sb.overflow)
		return;		/* cannot happen: every part is bounded */
	broadcast(m, block, sb.len);
}

void manager_audit_prepare(struct manager *m, const struct ctl_request *req)
{
	const char *cmd = req->command;
	int i;

	m->audit_rule[0] = '\0';
	m->audit_old[0] = '\0';
	m->audit_name[0] = '\0';
	if (strcmp(cmd, "del") && strcmp(cmd, "replace"))
		return;
	i = chain_find(m->chain, req->arg);
	if (i < 0)
		return;
	snprintf(m->audit_name, sizeof(m->audit_name), "%s", req->arg);
	if (rule_format(chain_rule(m->chain, (size_t)i), m->audit_old, sizeof(m->audit_old)) < 0)
		m->audit_old[0] = '\0';
}

void manager_audit_request(struct manager *m, struct control_client *cl,
			   const struct ctl_request *req, const char *declared, int result,
			   const char *error)
{
	static char words[3 * RULE_FORMAT_MAX];
	struct audit_event e = {
		.action = req->command,
		.applied = result >= 0,
		.source = "control",
		.declared = declared,
		.err = result,
		.error = error && *error ? error : NULL,
	};
	char name[RULE_NAME_MAX * 4 + 8];

	control_client_peer(cl, &e.uid, &e.pid);
	if (!strcmp(req->command, "del")) {
		escape(name, sizeof(name), req->arg, strlen(req->arg), RULE_NAME_MAX * 4);
		e.name = name;
		e.rule = m->audit_old[0] ? m->audit_old : NULL;
	} else if (!strcmp(req->command, "add") || !strcmp(req->command, "replace")) {
		if (e.applied && m->audit_rule[0]) {
			e.rule = m->audit_rule;
			e.name = m->audit_name[0] ? m->audit_name : NULL;
		} else {
			request_words(req, words, sizeof(words));
			e.rule = words;
		}
		if (!strcmp(req->command, "replace")) {
			e.old_rule = m->audit_old[0] ? m->audit_old : NULL;
			if (!e.name) {
				escape(name, sizeof(name), req->arg, strlen(req->arg),
				       RULE_NAME_MAX * 4);
				e.name = name;
			}
		}
	}
	emit(m, &e);
}

/* cmd_add, cmd_replace: the rule that goes in, before the chain is swapped. */
void manager_audit_rule(struct manager *m, const struct rule *r)
{
	if (rule_format(r, m->audit_rule, sizeof(m->audit_rule)) < 0)
		m->audit_rule[0] = '\0';
	snprintf(m->audit_name, sizeof(m->audit_name), "%s", rule_name(r));
}

void manager_audit_signal(struct manager *m, const char *action, uid_t uid, pid_t pid, int result,
			  const char *error)
{
	struct audit_event e = {
		.action = action,
		.applied = result >= 0,
		.uid = uid,
		.pid = pid,
		.source = "signal",
		.err = result,
		.error = error && *error ? error : NULL,
	};

	emit(m, &e);
}

void manager_audit_reload(struct manager *m, const char *source, uid_t uid, pid_t pid,
			  const char *declared, int result, const char *error)
{
	struct audit_event e = {
		.action = "reload",
		.applied = result >= 0,
		.uid = uid,
		.pid = pid,
		.source = source,
		.declared = declared,
		.err = result,
		.error = error && *error ? error : NULL,
	};

	emit(m, &e);
}

int manager_audit_monitor(struct manager *m, struct control_client *cl, struct ctl_reply *reply)
{
	struct audit_sub *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = control_stream_start(cl, AUDIT_STREAM_BUF, sub_closed, s);
	if (r < 0) {
		free(s);
		if (r == -EBUSY)
			return ctl_reply_error(reply, r, "too many streams (%d)", CONTROL_STREAMS_MAX);
		return r;
	}
	s->m = m;
	s->client = cl;
	s->next = m->audit_subs;
	if (s->next)
		s->next->pprev = &s->next;
	s->pprev = &m->audit_subs;
	m->audit_subs = s;
	m->n_audit_subs++;
	ctl_reply_add_u64(reply, "generation", m->generation);
	ctl_reply_add_u64(reply, "rules", chain_size(m->chain));
	return 0;
}
