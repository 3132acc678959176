/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The loader of the re-injection program (src/bpf/reinject.bpf.c).  Its
 * attachment: a tcx link (bpf_link_create with BPF_TCX_INGRESS, 6.6+) is
 * held by the daemon and detached by the kernel when it dies; older kernels
 * get a netlink tc filter on a clsact qdisc, which goes with the tun.
 * libbpf before 1.3 and older uapi headers do not name tcx: the attach type
 * is defined here and the kernel is asked at run time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reinject.h"
#include "util.h"

#ifdef HAVE_FASTPATH

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpferr.h"

#include "bpf/reinject.h"
#include "reinject.skel.h"

/* enum bpf_attach_type, uapi 6.6. */
#define REINJECT_TCX_INGRESS 46

struct reinject {
	struct reinject_bpf *skel;
	int link_fd;		/* tcx link, -1: none */
	struct bpf_tc_hook hook;
	bool hook_created;	/* the clsact qdisc is ours to remove */
	bool attached;		/* the netlink tc filter */
	int ncpus;
	uint64_t *percpu;
};

bool reinject_built(void)
{
	return true;
}

static int attach_tc(struct reinject *ri, int ifindex, int prog_fd, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1, .flags = BPF_TC_F_REPLACE);
	int r;

	ri->hook = (struct bpf_tc_hook){ .sz = sizeof(ri->hook), .ifindex = ifindex,
					 .attach_point = BPF_TC_INGRESS };
	r = bpf_tc_hook_create(&ri->hook);
	if (r < 0 && r != -EEXIST)
		return bpferr_fail(r, err, errlen, "creating the clsact qdisc");
	ri->hook_created = r == 0;
	opts.prog_fd = prog_fd;
	r = bpf_tc_attach(&ri->hook, &opts);
	if (r < 0)
		return bpferr_fail(r, err, errlen, "attaching the tc ingress filter");
	ri->attached = true;
	return 0;
}

int reinject_open(int ifindex, struct reinject **ret, char *err, size_t errlen)
{
	struct reinject *ri;
	int prog_fd, r;

	bpferr_reset();
	ri = calloc(1, sizeof(*ri));
	if (!ri)
		return bpferr_fail(-ENOMEM, err, errlen, "allocating");
	ri->link_fd = -1;
	ri->ncpus = libbpf_num_possible_cpus();
	if (ri->ncpus <= 0) {
		r = bpferr_fail(ri->ncpus < 0 ? ri->ncpus : -EINVAL, err, errlen, "counting the CPUs");
		goto out;
	}
	ri->percpu = calloc((size_t)ri->ncpus, sizeof(*ri->percpu));
	if (!ri->percpu) {
		r = bpferr_fail(-ENOMEM, err, errlen, "allocating");
		goto out;
	}
	ri->skel = reinject_bpf__open();
	if (!ri->skel) {
		r = bpferr_fail(-errno, err, errlen, "opening the BPF object");
		goto out;
	}
	r = reinject_bpf__load(ri->skel);
	if (r < 0) {
		r = bpferr_fail(r, err, errlen, "loading the BPF program");
		goto out;
	}
	prog_fd = bpf_program__fd(ri->skel->progs.reinject);

	/* EINVAL or ENOTSUP: a kernel without tcx; anything else fails the same way below. */
	r = bpf_link_create(prog_fd, ifindex, REINJECT_TCX_INGRESS, NULL);
	if (r >= 0) {
		ri->link_fd = r;
	} else {
		bpferr_reset();
		r = attach_tc(ri, ifindex, prog_fd, err, errlen);
		if (r < 0)
			goto out;
	}
	*ret = ri;
	return 0;
out:
	reinject_close(ri);
	return r;
}

struct reinject *reinject_close(struct reinject *ri)
{
	if (!ri)
		return NULL;
	if (ri->link_fd >= 0)
		close(ri->link_fd);
	if (ri->attached) {
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);

		bpf_tc_detach(&ri->hook, &opts);
	}
	/* Only the ingress side: the fast path may have its filter on the same qdisc. */
	if (ri->hook_created)
		bpf_tc_hook_destroy(&ri->hook);
	reinject_bpf__destroy(ri->skel);
	free(ri->percpu);
	free(ri);
	return NULL;
}

const char *reinject_attach_name(const struct reinject *ri)
{
	return ri->link_fd >= 0 ? "tcx" : "tc";
}

int reinject_totals(struct reinject *ri, struct reinject_totals *ret)
{
	uint64_t sum[RI_T_MAX] = { 0 };
	int r;

	for (uint32_t t = 0; t < RI_T_MAX; t++) {
		r = bpf_map__lookup_elem(ri->skel->maps.ri_totals, &t, sizeof(t), ri->percpu,
					 (size_t)ri->ncpus * sizeof(*ri->percpu), 0);
		if (r < 0)
			return r;
		for (int k = 0; k < ri->ncpus; k++)
			sum[t] += ri->percpu[k];
	}
	*ret = (struct reinject_totals){
		.redirected = sum[RI_T_REDIRECTED],
		.forwarded = sum[RI_T_FORWARDED],
		.other = sum[RI_T_OTHER],
		.dropped = sum[RI_T_DROPPED],
	};
	return 0;
}

#else /* !HAVE_FASTPATH */

bool reinject_built(void)
{
	return false;
}

int reinject_open(int ifindex, struct reinject **ret, char *err, size_t errlen)
{
	snprintf(err, errlen, "this ipmodd was built without eBPF "
		 "(configure --enable-fastpath=no, or no clang, bpftool or libbpf)");
	return -EOPNOTSUPP;
}

struct reinject *reinject_close(struct reinject *ri)
{
	return NULL;
}

const char *reinject_attach_name(const struct reinject *ri)
{
	return "none";
}

int reinject_totals(struct reinject *ri, struct reinject_totals *ret)
{
	*ret = (struct reinject_totals){ 0 };
	return 0;
}

#endif
