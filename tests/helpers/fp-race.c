/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packets still in the kernel's walk while the rules change twice.  The tc
 * program runs on loopback of the network namespace it is started in (run
 * it in one of its own: unshare -n), through BPF_PROG_TEST_RUN: UDP
 * packets, one after the other, walk a chain of WALK rules (the first
 * matches and sets DSCP 10, the others cannot match), a fraction of a
 * millisecond each.  Meanwhile the main thread makes two quick updates, to a one-rule
 * chain and then to that rule plus a new one (neither matches UDP).  The
 * second writes into the set that the packet walking at the first switch
 * still walks, and gives the new rule the counter slot of the first rule,
 * which the first update removed: unless it waits for the walks of the old
 * set to end, that packet counts into the new rule, which no packet matches.
 * Which rules a packet walked is in the packet the program returns (DSCP 10:
 * the old ones), not in how long it took.  TAP output; needs CAP_BPF and
 * CAP_NET_ADMIN.
 */
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "fastpath.h"
#include "../unit/ruleline.h"

#ifdef HAVE_FASTPATH
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fptest.h"
#endif

#define WALK CHAIN_RULES_MAX	/* the longest chain */
#define ROUNDS 40
/* Packets walk for tens of milliseconds, the updates in the middle. */
#define PACKETS_MAX 1000
#define UPDATES_AFTER_US 10000
#define OLD_DSCP 10		/* what the first chain's rule sets */

#ifdef HAVE_FASTPATH

static uint8_t pkt[FP_PACKET_LEN];

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct run {
	uint64_t start_us, end_us;	/* around the syscall */
	bool old;			/* it walked the first chain (its rule set the DSCP) */
};

struct walker {
	int prog_fd;
	atomic_bool stop;
	struct run runs[PACKETS_MAX];
	unsigned int n;
	int err;
};

/* Packets one after the other (each walks anew) until told to stop. */
static void *walk(void *arg)
{
	struct walker *w = arg;

	while (!atomic_load(&w->stop) && w->n < PACKETS_MAX) {
		uint8_t out[FP_PACKET_LEN];
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
			    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
		struct run *r = &w->runs[w->n++];

		r->start_us = now_us();
		if (bpf_prog_test_run_opts(w->prog_fd, &opts) < 0) {
			w->err = -errno;
			break;
		}
		r->end_us = now_us();
		r->old = opts.data_size_out >= 2 && out[1] >> 2 == OLD_DSCP;
	}
	return NULL;
}

struct round {
	unsigned int packets, old;	/* sent; of them on the old rules */
	bool overlap;		/* one walked the old rules when the second update began */
	unsigned int counted;	/* by the new rule */
};

/* One round: the new rule counts nothing unless a walk of the old rules outlives the updates. */
static int round_once(struct chain *c0, struct round *rd)
{
	static const char *const one[] = { "name=y proto=tcp set-dscp=3" };
	static const char *const two[] = { "name=y proto=tcp set-dscp=3",
					   "name=z proto=tcp set-dscp=4" };
	struct chain *c1 = chain_of(one, 1, NULL, 0), *c2 = chain_of(two, 2, NULL, 0);
	struct timespec ts = { 0, UPDATES_AFTER_US * 1000 };
	static struct walker w;
	struct fastpath *fp = NULL;
	uint64_t pkts = 0, bytes, second;
	char err[512];
	pthread_t t;
	int r;

	memset(&w, 0, sizeof(w));
	w.prog_fd = -1;
	if (!c1 || !c2) {
		r = -ENOMEM;
		goto out;
	}
	chain_inherit(c1, c0);
	chain_inherit(c2, c1);
	r = fastpath_open(if_nametoindex("lo"), PKT_DIR_OUT, &fp, err, sizeof(err));
	if (r >= 0)
		r = fastpath_update(fp, c0, err, sizeof(err));
	if (r < 0) {
		diag("%s", err);
		goto out;
	}
	fastpath_set_enabled(fp, true);
	r = w.prog_fd = prog_fd_on(if_nametoindex("lo"));
	if (r < 0)
		goto out;
	r = -pthread_create(&t, NULL, walk, &w);
	if (r < 0)
		goto out;
	nanosleep(&ts, NULL);
	r = fastpath_update(fp, c1, err, sizeof(err));
	second = now_us();
	if (r >= 0)
		r = fastpath_update(fp, c2, err, sizeof(err));
	nanosleep(&ts, NULL);
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	if (r < 0) {
		diag("%s", err);
		goto out;
	}
	if (w.err < 0) {
		r = w.err;
		goto out;
	}
	rd->packets = w.n;
	/* A walk of the old rules under way when the first update had switched and the second began. */
	for (unsigned int i = 0; i < w.n; i++) {
		rd->old += w.runs[i].old;
		if (w.runs[i].old && w.runs[i].start_us < second && w.runs[i].end_us > second)
			rd->overlap = true;
	}
	r = fastpath_counters(fp, 1, &pkts, &bytes);
	rd->counted = (unsigned int)pkts;
out:
	if (w.prog_fd >= 0)
		close(w.prog_fd);
	fastpath_close(fp);
	chain_unref(c1);
	chain_unref(c2);
	return r;
}

int main(void)
{
	static const char *const first[] = { "name=x proto=udp set-dscp=10" };	/* OLD_DSCP */
	unsigned int overlaps = 0, hits = 0, rounds = 0;
	struct chain *c0;
	int r = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	build_packet(pkt);
	c0 = chain_of(first, 1, "proto=udp ttl=1 set-dscp=2", WALK - 1);
	ok(c0, "a chain of %d rules", WALK);
	/*
	 * At least ROUNDS; more (up to 4 x ROUNDS) until 4 rounds had a packet
	 * on the old rules at the second update: a loaded machine (make check
	 * -j2 under ASan) overlaps less often.
	 */
	for (unsigned int i = 0; c0 && (i < ROUNDS || (overlaps < 4 && i < 4 * ROUNDS)); i++) {
		struct round rd = { 0 };

		r = round_once(c0, &rd);
		if (r < 0)
			break;
		diag("%u packets, %u on the old rules%s: the new rule counted %u", rd.packets, rd.old,
		     rd.overlap ? ", one of them at the second update" : "", rd.counted);
		overlaps += rd.overlap;
		hits += rd.counted > 0;
		rounds++;
	}
	is_int(r, 0, "%u rounds of walks and two updates (at least %d)", rounds, ROUNDS);
	ok(overlaps > 0, "in %u of them a packet walked the old rules when the second update began",
	   overlaps);
	is_int(hits, 0, "no packet of the old rules counted into a new rule's slot");
	chain_unref(c0);
	return tap_done();
}

#else

int main(void)
{
	tap_skip_all("built without the fast path");
	return 0;
}

#endif
