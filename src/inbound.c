/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The loader of the inbound programs (src/bpf/inbound.bpf.c).  Attachment
 * as in reinject.c: a tcx link (bpf_link_create with BPF_TCX_INGRESS, 6.6+)
 * that the kernel detaches when the daemon dies, else (or when asked: the
 * fail-closed case, where the filter must outlive the daemon) a netlink tc
 * filter with a fixed handle and priority, replacing one a previous
 * instance left, and found again by them and the program's name.
 */
#include <errno.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "inbound.h"
#include "util.h"

#ifdef HAVE_FASTPATH

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpferr.h"

#include "bpf/inbound.h"
#include "inbound.skel.h"

_Static_assert(INBOUND_MARK == INBOUND_MARK_VALUE, "one mark");

/* Of the netlink tc filters: "ipmi", priority 1 (first). */
#define INBOUND_TC_HANDLE 0x69706d69u
#define INBOUND_TC_PRIO 1

struct inbound {
	struct inbound_bpf *skel;
	int uplink_ifindex, tun_ifindex;
	bool tcx;
	int link_fd[2];			/* tcx: divert, reinject_in; -1 none */
	struct tc_filter filter[2];	/* tc: the uplink's ingress, the tun's */
	int ncpus;
	uint64_t *percpu;
};

bool inbound_built(void)
{
	return true;
}

static int uplink_mac(const char *name, uint8_t mac[6], char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int fd, r = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bpferr_fail(-errno, err, errlen, "opening a socket for the uplink's address");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		r = bpferr_fail(-errno, err, errlen, "reading the uplink's hardware address");
	else if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		r = bpferr_fail(-EPFNOSUPPORT, err, errlen,
				"the uplink is not an Ethernet interface (inbound needs one)");
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return r;
}

static int attach_tc(struct inbound *ib, int k, int ifindex, int prog_fd, char *err, size_t errlen)
{
	return tc_filter_attach(&ib->filter[k], ifindex, INBOUND_TC_HANDLE, INBOUND_TC_PRIO, prog_fd,
				k ? "attaching reinject_in to the inbound tun's ingress"
				  : "attaching divert to the uplink's ingress",
				err, errlen);
}

int inbound_open(const struct inbound_params *p, struct inbound **ret, char *err, size_t errlen)
{
	struct inbound *ib;
	struct timespec ts;
	uint8_t mac[6];
	int prog_fd[2], r;

	bpferr_reset();
	ib = calloc(1, sizeof(*ib));
	if (!ib)
		return bpferr_fail(-ENOMEM, err, errlen, "allocating");
	ib->link_fd[0] = ib->link_fd[1] = -1;
	ib->tun_ifindex = p->tun_ifindex;
	ib->uplink_ifindex = (int)if_nametoindex(p->uplink);
	if (ib->uplink_ifindex <= 0) {
		r = bpferr_fail(-ENODEV, err, errlen, "looking the uplink up");
		goto out;
	}
	r = uplink_mac(p->uplink, mac, err, errlen);
	if (r < 0)
		goto out;
	ib->ncpus = libbpf_num_possible_cpus();
	if (ib->ncpus <= 0) {
		r = bpferr_fail(ib->ncpus < 0 ? ib->ncpus : -EINVAL, err, errlen, "counting the CPUs");
		goto out;
	}
	ib->percpu = calloc((size_t)ib->ncpus, sizeof(*ib->percpu));
	if (!ib->percpu) {
		r = bpferr_fail(-ENOMEM, err, errlen, "allocating");
		goto out;
	}
	ib->skel = inbound_bpf__open();
	if (!ib->skel) {
		r = bpferr_fail(-errno, err, errlen, "opening the BPF object");
		goto out;
	}
	ib->skel->rodata->tun_ifindex = (uint32_t)p->tun_ifindex;
	ib->skel->rodata->uplink_ifindex = (uint32_t)ib->uplink_ifindex;
	memcpy((void *)ib->skel->rodata->uplink_mac, mac, sizeof(mac));
	ib->skel->rodata->stall_ns = (uint64_t)p->stall_timeout_ms * 1000000u;
	ib->skel->rodata->fail_closed = p->fail_closed;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ib->skel->bss->heartbeat_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	r = inbound_bpf__load(ib->skel);
	if (r < 0) {
		r = bpferr_fail(r, err, errlen, "loading the BPF programs");
		goto out;
	}
	prog_fd[0] = bpf_program__fd(ib->skel->progs.divert);
	prog_fd[1] = bpf_program__fd(ib->skel->progs.reinject_in);

	/* The tun's side first: divert must never send into a tun nobody carries on from. */
	if (!p->force_tc) {
		/* EINVAL or ENOTSUP: a kernel without tcx; anything else fails the same way below. */
		r = bpf_link_create(prog_fd[1], p->tun_ifindex, IPMODD_TCX_INGRESS, NULL);
		if (r >= 0) {
			ib->link_fd[1] = r;
			ib->tcx = true;
			r = bpf_link_create(prog_fd[0], ib->uplink_ifindex, IPMODD_TCX_INGRESS, NULL);
			if (r < 0) {
				r = bpferr_fail(r, err, errlen,
						"attaching divert to the uplink's ingress (tcx)");
				goto out;
			}
			ib->link_fd[0] = r;
		}
	}
	if (!ib->tcx) {
		bpferr_reset();
		r = attach_tc(ib, 1, p->tun_ifindex, prog_fd[1], err, errlen);
		if (r < 0)
			goto out;
		r = attach_tc(ib, 0, ib->uplink_ifindex, prog_fd[0], err, errlen);
		if (r < 0)
			goto out;
	}
	*ret = ib;
	return 0;
out:
	inbound_close(ib);
	return r;
}

struct inbound *inbound_close(struct inbound *ib)
{
	if (!ib)
		return NULL;
	/* The uplink's side first: nothing more is diverted into the tun. */
	for (int k = 0; k < 2; k++) {
		if (ib->link_fd[k] >= 0)
			close(ib->link_fd[k]);
		/* Only a qdisc we made, and only its ingress side. */
		tc_filter_detach(&ib->filter[k]);
	}
	inbound_bpf__destroy(ib->skel);
	free(ib->percpu);
	free(ib);
	return NULL;
}

const char *inbound_attach_name(const struct inbound *ib)
{
	return ib->tcx ? "tcx" : "tc";
}

int inbound_uplink_ifindex(const struct inbound *ib)
{
	return ib->uplink_ifindex;
}

void inbound_heartbeat(struct inbound *ib, uint64_t now_ns)
{
	__atomic_store_n(&ib->skel->bss->heartbeat_ns, now_ns, __ATOMIC_RELAXED);
}

int inbound_totals(struct inbound *ib, struct inbound_totals *ret)
{
	uint64_t sum[IB_T_MAX] = { 0 };
	int r;

	r = percpu_sums(ib->skel->maps.ib_totals, IB_T_MAX, ib->percpu, ib->ncpus, sum);
	if (r < 0)
		return r;
	*ret = (struct inbound_totals){
		.diverted = sum[IB_T_DIVERTED],
		.passed = sum[IB_T_PASSED],
		.returned = sum[IB_T_RETURNED],
		.failed_open = sum[IB_T_FAILED_OPEN],
		.reinjected = sum[IB_T_REINJECTED],
		.dropped = sum[IB_T_DROPPED],
	};
	return 0;
}

int inbound_set_fast(struct inbound *ib, int prog_fd, char *err, size_t errlen)
{
	uint32_t key = 0;
	int r;

	bpferr_reset();
	if (prog_fd < 0) {
		r = bpf_map__delete_elem(ib->skel->maps.ib_fast, &key, sizeof(key), 0);
		if (r < 0 && r != -ENOENT)
			return bpferr_fail(r, err, errlen, "taking the fast path out of divert");
		return 0;
	}
	r = bpf_map__update_elem(ib->skel->maps.ib_fast, &key, sizeof(key), &prog_fd,
				 sizeof(prog_fd), BPF_ANY);
	if (r < 0)
		return bpferr_fail(r, err, errlen, "putting the fast path into divert (tail call)");
	return 0;
}

int inbound_filter_present(struct inbound *ib)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = INBOUND_TC_HANDLE, .priority = INBOUND_TC_PRIO);
	int r;

	if (ib->tcx)
		return 1;
	r = bpf_tc_query(&ib->filter[0].hook, &opts);
	if (r == -ENOENT || r == -EINVAL)
		return 0;
	return r < 0 ? r : 1;
}

int inbound_reattach(struct inbound *ib, char *err, size_t errlen)
{
	if (ib->tcx)
		return 0;
	bpferr_reset();
	/* hook_created stays on: a qdisc we made first is still ours to remove. */
	return attach_tc(ib, 0, ib->uplink_ifindex, bpf_program__fd(ib->skel->progs.divert), err,
			 errlen);
}

/*
 * Whether the filter with our handle and priority runs one of our programs,
 * by name.  Reading the name needs CAP_SYS_ADMIN, which the unit's
 * ExecStopPost= does not have: then the handle ("ipmi") and priority alone
 * say it is ours.
 */
static bool prog_is_ours(uint32_t prog_id)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);
	bool ours = false;
	int fd;

	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return fd == -EPERM || fd == -EACCES;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		ours = strcmp(info.name, "divert") == 0 || strcmp(info.name, "reinject_in") == 0;
	close(fd);
	return ours;
}

int inbound_cleanup(char *err, size_t errlen)
{
	struct if_nameindex *ifs, *i;
	int n = 0;

	/* Interfaces without a clsact qdisc answer with an error libbpf would print. */
	bpferr_reset();
	ifs = if_nameindex();
	if (!ifs)
		return bpferr_fail(-errno, err, errlen, "listing the interfaces");
	for (i = ifs; i->if_index; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)i->if_index,
			    .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = INBOUND_TC_HANDLE,
			    .priority = INBOUND_TC_PRIO);

		if (bpf_tc_query(&hook, &opts) < 0 || !prog_is_ours(opts.prog_id))
			continue;
		opts.prog_id = 0;
		opts.prog_fd = 0;
		opts.flags = 0;
		if (bpf_tc_detach(&hook, &opts) == 0)
			n++;
	}
	if_freenameindex(ifs);
	return n;
}

#else /* !HAVE_FASTPATH */

bool inbound_built(void)
{
	return false;
}

int inbound_open(const struct inbound_params *p, struct inbound **ret, char *err, size_t errlen)
{
	snprintf(err, errlen, "this ipmodd was built without eBPF "
		 "(configure --enable-fastpath=no, or no clang, bpftool or libbpf)");
	return -EOPNOTSUPP;
}

struct inbound *inbound_close(struct inbound *ib)
{
	return NULL;
}

const char *inbound_attach_name(const struct inbound *ib)
{
	return "none";
}

int inbound_uplink_ifindex(const struct inbound *ib)
{
	return 0;
}

void inbound_heartbeat(struct inbound *ib, uint64_t now_ns)
{
}

int inbound_totals(struct inbound *ib, struct inbound_totals *ret)
{
	*ret = (struct inbound_totals){ 0 };
	return 0;
}

int inbound_set_fast(struct inbound *ib, int prog_fd, char *err, size_t errlen)
{
	return prog_fd < 0 ? 0 : -EOPNOTSUPP;
}

int inbound_filter_present(struct inbound *ib)
{
	return 1;
}

int inbound_reattach(struct inbound *ib, char *err, size_t errlen)
{
	return -EOPNOTSUPP;
}

int inbound_cleanup(char *err, size_t errlen)
{
	return 0;
}

#endif
