/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libbpf tells the cause of a failure only through its process-wide print
 * callback.  The loaders (fastpath.c, reinject.c) share this one: the first
 * message since bpferr_reset() that names a cause (not libbpf's fallback for
 * old kernels, RLIMIT_MEMLOCK, which it tries whenever a probe fails, nor its
 * summary) goes into the error string of the step that failed.  For the
 * thread that runs the loaders; no logging.  Built with HAVE_FASTPATH only.
 */
#ifndef IPMODD_BPFERR_H
#define IPMODD_BPFERR_H

#include <stddef.h>

/* Install the callback (again, if another was set) and forget the last message. */
void bpferr_reset(void);

/* err = "STEP: strerror(-r) (libbpf's message)"; returns r. */
int bpferr_fail(int r, char *err, size_t errlen, const char *step);

#endif
