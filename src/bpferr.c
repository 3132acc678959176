/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bpferr.h"

#ifdef HAVE_FASTPATH

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "util.h"

static char last[ERR_MAX];

static _printf_(2, 0) int keep_last(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[sizeof(last)];
	size_t len;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	len = strlen(buf);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (!len || last[0] || strstr(buf, "RLIMIT_MEMLOCK") ||
	    strstr(buf, "failed to load BPF skeleton"))
		return 0;
	memcpy(last, buf, len + 1);
	return 0;
}

void bpferr_reset(void)
{
	libbpf_set_print(keep_last);
	last[0] = '\0';
}

int bpferr_fail(int r, char *err, size_t errlen, const char *step)
{
	if (last[0])
		snprintf(err, errlen, "%s: %s (%s)", step, strerror(-r), last);
	else
		snprintf(err, errlen, "%s: %s", step, strerror(-r));
	return r;
}

#endif
