/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"

enum log_target {
	LOG_TARGET_CONSOLE,
	LOG_TARGET_PREFIXED,	/* stderr read by systemd: "<N>message" */
	LOG_TARGET_JOURNAL,
};

static int log_max = LOG_INFO;
static enum log_target log_target = LOG_TARGET_CONSOLE;

/* JOURNAL_STREAM holds "dev:ino" of the stream systemd connected stderr to. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_setup(int max_level)
{
	log_max = max_level;
	if (stderr_is_journal())
		log_target = LOG_TARGET_JOURNAL;
	else if (getenv("INVOCATION_ID"))
		log_target = LOG_TARGET_PREFIXED;
	else
		log_target = LOG_TARGET_CONSOLE;
}

bool log_enabled(int prio)
{
	return prio <= log_max;
}

static _printf_(2, 0) void log_vmsg(int prio, const char *fmt, va_list ap)
{
	char buf[1024];
	int saved = errno;

	if (!log_enabled(prio))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	switch (log_target) {
	case LOG_TARGET_JOURNAL:
		sd_journal_print(prio, "%s", buf);
		break;
	case LOG_TARGET_PREFIXED:
		fprintf(stderr, "<%d>%s\n", prio, buf);
		break;
	case LOG_TARGET_CONSOLE:
		fprintf(stderr, "ipmodd: %s%s\n", prio <= LOG_ERR ? "error: " :
			prio == LOG_WARNING ? "warning: " : "", buf);
		break;
	}
	errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

/* " KEY=value", the value in double quotes with \" and \\ when it is empty or holds a space, '"' or '\\'. */
static void append_field(struct strbuf *sb, const struct log_field *f)
{
	const char *v = f->value;

	if (*v && !strpbrk(v, " \"\\")) {
		strbuf_printf(sb, " %s=%s", f->key, v);
		return;
	}
	strbuf_printf(sb, " %s=\"", f->key);
	for (; *v; v++)
		strbuf_printf(sb, "%s%c", *v == '"' || *v == '\\' ? "\\" : "", *v);
	strbuf_printf(sb, "\"");
}

void log_fields(int prio, const char *message_id, const struct log_field *fields, size_t n,
		const char *fmt, ...)
{
	struct iovec iov[3 + LOG_FIELDS_MAX];
	char *owned[2 + LOG_FIELDS_MAX];
	char msg[1024], line[LOG_FIELDS_LINE_MAX];
	struct strbuf sb = { .buf = line, .size = sizeof(line) };
	int saved = errno, k = 0, o = 0;
	va_list ap;
	size_t i;

	if (!log_enabled(prio))
		return;
	if (n > LOG_FIELDS_MAX)
		n = LOG_FIELDS_MAX;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	line[0] = '\0';
	if (log_target == LOG_TARGET_JOURNAL) {
		if (asprintf(&owned[o], "PRIORITY=%d", prio) >= 0)
			o++;
		if (asprintf(&owned[o], "MESSAGE=%s", msg) >= 0)
			o++;
		if (message_id && asprintf(&owned[o], "MESSAGE_ID=%s", message_id) >= 0)
			o++;
		for (i = 0; i < n; i++)
			if (asprintf(&owned[o], "%s=%s", fields[i].key, fields[i].value) >= 0)
				o++;
		for (k = 0; k < o; k++)
			iov[k] = (struct iovec){ owned[k], strlen(owned[k]) };
		sd_journal_sendv(iov, k);
		while (o > 0)
			free(owned[--o]);
		errno = saved;
		return;
	}
	strbuf_printf(&sb, "%s", msg);
	if (message_id)
		strbuf_printf(&sb, " MESSAGE_ID=%s", message_id);
	for (i = 0; i < n; i++)
		append_field(&sb, &fields[i]);
	if (log_target == LOG_TARGET_PREFIXED)
		fprintf(stderr, "<%d>%s\n", prio, line);
	else
		fprintf(stderr, "ipmodd: %s%s\n", prio <= LOG_ERR ? "error: " :
			prio == LOG_WARNING ? "warning: " : "", line);
	errno = saved;
}

int log_errno(int prio, int r, const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_msg(prio, "%s: %s", buf, strerror(r < 0 ? -r : r));
	return r;
}

bool ratelimit_allow(struct ratelimit *rl, uint64_t now_ns)
{
	if (rl->begin_ns == 0 || now_ns - rl->begin_ns >= rl->interval_ns) {
		rl->begin_ns = now_ns;
		rl->num = 0;
	}
	if (rl->num < rl->burst) {
		rl->num++;
		return true;
	}
	rl->suppressed++;
	return false;
}
