/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The loader of the re-injection program (src/bpf/reinject.bpf.c).  Its
 * attachment: a tcx link (bpf_link_create with BPF_TCX_INGRESS, 6.6+) is
 * held by the daemon and detached by the kernel when it dies; older kernels
 * get a netlink tc filter on a clsact qdisc, which goes with the tun.
 * libbpf before 1.3 and older uapi headers do not name tcx: bpferr.h
 * defines the attach type, and the kernel is asked at run time.
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

struct reinject {
	struct reinject_bpf *skel;
	int link_fd;		/* tcx link, -1: none */
	struct tc_filter filter;	/* the netlink tc filter, without tcx */
	int ncpus;
	uint64_t *percpu;
	char egress_err[ERR_MAX];	/* why reinject_egress was not loaded */
};

bool reinject_built(void)
{
	return true;
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
	/*
	 * With the fast path's next step, reinject_egress, first; where the
	 * kernel refuses it, without (the reason kept for reinject_egress_fd()).
	 */
	for (int egress = 1; egress >= 0; egress--) {
		bpferr_reset();
		ri->skel = reinject_bpf__open();
		if (!ri->skel) {
			r = bpferr_fail(-errno, err, errlen, "opening the BPF object");
			goto out;
		}
		bpf_program__set_autoload(ri->skel->progs.reinject_egress, egress);
		r = reinject_bpf__load(ri->skel);
		if (r >= 0)
			break;
		if (!egress) {
			r = bpferr_fail(r, err, errlen, "loading the BPF program");
			goto out;
		}
		bpferr_fail(r, ri->egress_err, sizeof(ri->egress_err),
			    "loading the re-injection program's egress variant");
		reinject_bpf__destroy(ri->skel);
		ri->skel = NULL;
	}
	prog_fd = bpf_program__fd(ri->skel->progs.reinject);

	/* EINVAL or ENOTSUP: a kernel without tcx; anything else fails the same way below. */
	r = bpf_link_create(prog_fd, ifindex, IPMODD_TCX_INGRESS, NULL);
	if (r >= 0) {
		ri->link_fd = r;
	} else {
		bpferr_reset();
		r = tc_filter_attach(&ri->filter, ifindex, 1, 1, prog_fd,
				     "attaching the tc ingress filter", err, errlen);
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
	/* Only the ingress side: the fast path may have its filter on the same qdisc. */
	tc_filter_detach(&ri->filter);
	reinject_bpf__destroy(ri->skel);
	free(ri->percpu);
	free(ri);
	return NULL;
}

const char *reinject_attach_name(const struct reinject *ri)
{
	return ri->link_fd >= 0 ? "tcx" : "tc";
}

int reinject_egress_fd(const struct reinject *ri, char *err, size_t errlen)
{
	int fd;

	if (ri->egress_err[0]) {
		snprintf(err, errlen, "%s", ri->egress_err);
		return -EOPNOTSUPP;
	}
	fd = bpf_program__fd(ri->skel->progs.reinject_egress);
	if (fd < 0)
		snprintf(err, errlen, "the re-injection program's egress variant is not loaded");
	return fd;
}

int reinject_totals(struct reinject *ri, struct reinject_totals *ret)
{
	uint64_t sum[RI_T_MAX] = { 0 };
	int r;

	r = percpu_sums(ri->skel->maps.ri_totals, RI_T_MAX, ri->percpu, ri->ncpus, sum);
	if (r < 0)
		return r;
	*ret = (struct reinject_totals){
		.redirected = sum[RI_T_REDIRECTED],
		.forwarded = sum[RI_T_FORWARDED],
		.other = sum[RI_T_OTHER],
		.dropped = sum[RI_T_DROPPED],
		.direct = sum[RI_T_DIRECT],
		.source_known = sum[RI_T_SOURCE_KNOWN],
		.route_known = sum[RI_T_ROUTE_KNOWN],
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

int reinject_egress_fd(const struct reinject *ri, char *err, size_t errlen)
{
	snprintf(err, errlen, "no re-injection program");
	return -EOPNOTSUPP;
}

int reinject_totals(struct reinject *ri, struct reinject_totals *ret)
{
	*ret = (struct reinject_totals){ 0 };
	return 0;
}

#endif
