/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging for the daemon's top layer only: ipmodd.c, manager*.c and watch.c
 * (library modules return codes).
 * To the journal when stderr is connected to it, else to stderr with "<N>"
 * priority prefixes when run by systemd, else plain.
 */
#ifndef IPMODD_LOG_H
#define IPMODD_LOG_H

/* The library (libipmod.a, see Makefile.am) returns codes; it never logs. */
#ifdef IPMOD_LIBRARY
#error "log.h (or manager.h) in a library module: only the daemon's top layer logs"
#endif

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "util.h"

void log_setup(int max_level);
void log_msg(int prio, const char *fmt, ...) _printf_(2, 3);
bool log_enabled(int prio);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * A message with structured fields: to the journal as fields of their own
 * (MESSAGE_ID= too, when not NULL), elsewhere appended to the line as
 * " KEY=value" (quoted as "..." with \" and \\ when the value is empty or
 * holds a space, a quote or a backslash), so that they stay visible.  At
 * most LOG_FIELDS_MAX fields; the line is cut at LOG_FIELDS_LINE_MAX.
 */
#define LOG_FIELDS_MAX 16
#define LOG_FIELDS_LINE_MAX 8192
struct log_field {
	const char *key;	/* a journal field name: A-Z, 0-9 and '_' */
	const char *value;	/* printable; the caller escapes what is not */
};

void log_fields(int prio, const char *message_id, const struct log_field *fields, size_t n,
		const char *fmt, ...) _printf_(5, 6);

/* Log "<message>: <strerror(-r)>" and return r, for "return log_errno(r, ...);". */
int log_errno(int prio, int r, const char *fmt, ...) _printf_(3, 4);

/* At most burst messages per interval; counts what it suppressed. */
struct ratelimit {
	uint64_t interval_ns;
	unsigned int burst;
	uint64_t begin_ns;
	unsigned int num;
	uint64_t suppressed;
};

bool ratelimit_allow(struct ratelimit *rl, uint64_t now_ns);

#endif
