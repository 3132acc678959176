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

int tc_filter_attach(struct tc_filter *f, int ifindex, uint32_t handle, uint32_t priority,
		     int prog_fd, const char *what, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority,
		    .flags = BPF_TC_F_REPLACE, .prog_fd = prog_fd);
	int r;

	f->hook = (struct bpf_tc_hook){ .sz = sizeof(f->hook), .ifindex = ifindex,
					.attach_point = BPF_TC_INGRESS };
	f->handle = handle;
	f->priority = priority;
	r = bpf_tc_hook_create(&f->hook);
	if (r < 0 && r != -EEXIST)
		return bpferr_fail(r, err, errlen, "creating the clsact qdisc");
	f->hook_created = f->hook_created || r == 0;
	r = bpf_tc_attach(&f->hook, &opts);
	if (r < 0)
		return bpferr_fail(r, err, errlen, what);
	f->attached = true;
	return 0;
}

void tc_filter_detach(struct tc_filter *f)
{
	if (f->attached) {
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = f->handle, .priority = f->priority);

		bpf_tc_detach(&f->hook, &opts);
		f->attached = false;
	}
	if (f->hook_created)
		bpf_tc_hook_destroy(&f->hook);
	f->hook_created = false;
}

int percpu_sums(const struct bpf_map *map, uint32_t nkeys, uint64_t *percpu, int ncpus,
		uint64_t *sums)
{
	int r;

	for (uint32_t t = 0; t < nkeys; t++) {
		r = bpf_map__lookup_elem(map, &t, sizeof(t), percpu, (size_t)ncpus * sizeof(*percpu),
					 0);
		if (r < 0)
			return r;
		sums[t] = 0;
		for (int k = 0; k < ncpus; k++)
			sums[t] += percpu[k];
	}
	return 0;
}

#endif
