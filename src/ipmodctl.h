/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What ipmodctl.c (the commands, talking to the daemon) shares with
 * ctl-metrics.c (metrics: OpenMetrics text and its one-request HTTP
 * answer).  Internal to the ipmodctl program: the unit tests and fuzzers
 * link ctlcli.c, not these.
 */
#ifndef IPMODD_IPMODCTL_H
#define IPMODD_IPMODCTL_H

#include <stddef.h>
#include <sys/types.h>

#include "ctlcli.h"
#include "ctlproto.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* the daemon answered an error, or could not be reached */
	EXIT_USAGE = 2,
};

struct reply {
	char *buf;
	struct ctl_pair *pairs;
	struct ctl_parser p;
	struct ctl_response resp;
	/* What came after the reply's blank line: the start of a stream, in chunk. */
	const char *rest;
	size_t rest_len;
};

/* get=rules, one row a rule. */
struct rule_row {
	const char *name;
	const char *index, *spec, *packets, *bytes;
	const struct ctl_pair *pairs;	/* the lines after rule= */
	size_t n;
};

struct rules_view {
	const char *generation, *modified;
	const struct ctl_pair *head;	/* the lines before the first rule= */
	size_t n_head;
	struct rule_row *rows;
	size_t n_rows;
	const char **extra;		/* other counters' keys, first seen first */
	size_t n_extra;
};

/* ---- ipmodctl.c ---- */

long long now_ms(void);
/*
 * Wait up to ms (-1: forever) for fd to be readable; SIGINT and SIGTERM are
 * let in meanwhile.  Returns 1, 0 on timeout, -EINTR for a signal.
 */
int wait_readable(int fd, long long ms);
/* Blocked but while waiting (ppoll) or writing, so that no ^C is lost in between. */
void signals_setup(void);
/*
 * Write it all, with ^C let in.  Returns 0, -EINTR once interrupted, or
 * -errno (-EPIPE: reader gone).
 */
int write_all(int fd, const void *data, size_t len);

int reply_alloc(struct reply *r);
void reply_free(struct reply *r);
/*
 * Send c->request and read its reply into rep.  Returns an exit code:
 * EXIT_OK, or EXIT_FAIL after printing why (the daemon's error included).
 * With ret_fd the connection stays open for a stream that follows.
 */
int call(const struct ctlcli *c, struct reply *rep, int *ret_fd);
/* get=rules into rep, parsed into v (free both, whatever it returns). */
int get_rules(const struct ctlcli *c, struct reply *rep, struct rules_view *v);
const char *row_get(const struct rule_row *row, const char *key);
void rules_view_free(struct rules_view *v);

/* ---- ctl-metrics.c ---- */

/* metrics: OpenMetrics text on standard output, or with --http one HTTP answer. */
int run_metrics(const struct ctlcli *c);

#endif
