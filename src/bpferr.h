/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libbpf tells the cause of a failure only through its process-wide print
 * callback.  The loaders (fastpath.c, reinject.c) share this one: the first
 * message since bpferr_reset() that names a cause (not libbpf's fallback for
 * old kernels, RLIMIT_MEMLOCK, which it tries whenever a probe fails, nor its
 * summary) goes into the error string of the step that failed.  For the
 * thread that runs the loaders; no logging.  Built with HAVE_FASTPATH only.
 *
 * Also what the loaders (reinject.c, inbound.c, fastpath.c) share besides:
 * the tcx attach types, a tc ingress filter with a fixed handle and
 * priority, and the sums of a per-CPU array.
 */
#ifndef IPMODD_BPFERR_H
#define IPMODD_BPFERR_H

#include <stddef.h>

/* Install the callback (again, if another was set) and forget the last message. */
void bpferr_reset(void);

/* err = "STEP: strerror(-r) (libbpf's message)"; returns r. */
int bpferr_fail(int r, char *err, size_t errlen, const char *step);

#ifdef HAVE_FASTPATH
#include <stdbool.h>
#include <stdint.h>

#include <bpf/libbpf.h>

/*
 * enum bpf_attach_type's tcx values (uapi 6.6), for bpf_link_create() on an
 * ifindex: libbpf before 1.3 and older uapi headers do not name them, and
 * the kernel is asked at run time (EINVAL or ENOTSUP: no tcx).
 */
#define IPMODD_TCX_INGRESS 46
#define IPMODD_TCX_EGRESS 47

/* A tc ingress filter of ours: fixed handle and priority. */
struct tc_filter {
	struct bpf_tc_hook hook;
	uint32_t handle, priority;
	bool hook_created;	/* the clsact qdisc is ours to remove */
	bool attached;
};

/*
 * Attach prog_fd at ifindex's tc ingress (creating the clsact qdisc if
 * there is none), replacing a filter a previous instance left; what names
 * the step in err.  hook_created only ever turns on, so a re-attach keeps
 * a qdisc made earlier ours.
 */
int tc_filter_attach(struct tc_filter *f, int ifindex, uint32_t handle, uint32_t priority,
		     int prog_fd, const char *what, char *err, size_t errlen);
/* Detach it, and remove the qdisc (its ingress side) if we made it. */
void tc_filter_detach(struct tc_filter *f);

/* sums[key] = the sum over ncpus CPUs of map[key], key < nkeys; percpu: ncpus values. */
int percpu_sums(const struct bpf_map *map, uint32_t nkeys, uint64_t *percpu, int ncpus,
		uint64_t *sums);
#endif

#endif
