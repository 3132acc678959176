/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fast path's two directions, in the kernel, without a daemon: the tc
 * program is loaded for PKT_DIR_OUT and then for PKT_DIR_IN on loopback of
 * the network namespace it is started in (run it in one of its own:
 * unshare -n), and the same UDP packet (TTL 64, to port 9) goes through
 * each by BPF_PROG_TEST_RUN against the same chain:
 *   0 o: proto=udp dport=9 set-ttl=99                       (out only)
 *   1 i: direction=in proto=udp dport=9 set-ttl=33
 *   2 b: direction=both proto=udp dport=9 set-dscp=10
 * Outbound the packet leaves with TTL 100 (99 plus the forward's hop) and
 * DSCP 10, counted by o and b; inbound with TTL 33 (no hop added) and DSCP
 * 10, counted by i and b.  Then a chain that drops inbound only.  TAP
 * output; needs CAP_BPF and CAP_NET_ADMIN.
 */
#include <errno.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "fastpath.h"
#include "../unit/refcsum.h"
#include "../unit/ruleline.h"

#ifdef HAVE_FASTPATH
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fptest.h"

static uint16_t ip_csum(const uint8_t *h)
{
	return ref_csum(ref_sum(h, 20, 0));
}

struct result {
	int action;		/* TC_ACT_* */
	uint8_t ttl, tos;
	bool csum_ok;
	uint64_t pkts[3];	/* per rule, kernel counters */
	struct fastpath_info info;
};

/* The packet through chain c with the program loaded for dir. */
static int run(struct chain *c, enum pkt_dir dir, struct result *res)
{
	uint8_t pkt[FP_PACKET_LEN], out[FP_PACKET_LEN];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	struct fastpath *fp = NULL;
	char err[512];
	int r, fd = -1;

	build_packet(pkt);
	r = fastpath_open(if_nametoindex("lo"), dir, &fp, err, sizeof(err));
	if (r >= 0)
		r = fastpath_update(fp, c, err, sizeof(err));
	if (r < 0) {
		diag("%s", err);
		goto out;
	}
	fastpath_set_enabled(fp, true);
	r = fd = prog_fd_on(if_nametoindex("lo"));
	if (r < 0)
		goto out;
	if (bpf_prog_test_run_opts(fd, &opts) < 0) {
		r = -errno;
		goto out;
	}
	res->action = (int)opts.retval;
	res->ttl = out[8];
	res->tos = out[1];
	res->csum_ok = ip_csum(out) == 0;
	for (size_t i = 0; i < 3; i++) {
		uint64_t bytes;

		r = fastpath_counters(fp, i, &res->pkts[i], &bytes);
		if (r < 0)
			goto out;
	}
	fastpath_info(fp, &res->info);
out:
	if (fd >= 0)
		close(fd);
	fastpath_close(fp);
	return r;
}

/*
 * The packet through chain c (rules o, i, b) for dir: sent on with TTL ttl
 * (ttl_why says why), DSCP 10 and a good checksum, counted by the rules
 * named counted and not by the one named not, 2 rules in the kernel.
 */
static void check_dir(struct chain *c, enum pkt_dir dir, struct result *res, uint8_t ttl,
		      const char *ttl_why, const char *counted, const char *not)
{
	const char *d = dir == PKT_DIR_OUT ? "outbound" : "inbound";
	uint64_t o_want = dir == PKT_DIR_OUT, i_want = dir == PKT_DIR_IN;

	is_int(run(c, dir, res), 0, "%s: loaded, updated and run", d);
	is_int(res->action, TC_ACT_REDIRECT, "%s: the kernel sends the packet on", d);
	is_int(res->ttl, ttl, "%s: %s", d, ttl_why);
	is_int(res->tos, 40, "%s: DSCP 10 by the rule of both directions", d);
	ok(res->csum_ok, "%s: the IPv4 header checksum holds", d);
	ok(res->pkts[0] == o_want && res->pkts[1] == i_want && res->pkts[2] == 1,
	   "%s: rules %s counted it, %s not (%llu %llu %llu)", d, counted, not,
	   (unsigned long long)res->pkts[0], (unsigned long long)res->pkts[1],
	   (unsigned long long)res->pkts[2]);
	ok(res->info.rules == 2 && res->info.punts == 0,
	   "%s: the kernel holds 2 rules (%zu, %zu punt)", d, res->info.rules, res->info.punts);
}

int main(void)
{
	static const char *const rules[] = {
		"name=o proto=udp dport=9 set-ttl=99",
		"name=i direction=in proto=udp dport=9 set-ttl=33",
		"name=b direction=both proto=udp dport=9 set-dscp=10",
	};
	static const char *const drop[] = {
		"name=d direction=in proto=udp verdict=drop",
	};
	struct chain *c = chain_of(rules, 3, NULL, 0), *d = chain_of(drop, 1, NULL, 0);
	struct result o = { 0 }, i = { 0 };
	int r;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!c || !d) {
		ok(0, "the chains parse");
		return tap_done();
	}
	check_dir(c, PKT_DIR_OUT, &o, 100, "TTL 99 plus the forward's hop", "o and b", "i");
	check_dir(c, PKT_DIR_IN, &i, 33,
		  "TTL 33 as the rule set it, no hop added; the outbound rule ignored", "i and b",
		  "o");

	memset(&o, 0, sizeof(o));
	memset(&i, 0, sizeof(i));
	r = run(d, PKT_DIR_OUT, &o);
	if (r >= 0)
		r = run(d, PKT_DIR_IN, &i);
	is_int(r, 0, "a drop rule of direction in: both run");
	ok(o.action == TC_ACT_REDIRECT && o.ttl == 65 && o.pkts[0] == 0,
	   "outbound: not dropped, sent on with the hop (TTL %u), not counted", o.ttl);
	ok(i.action == TC_ACT_SHOT && i.pkts[0] == 1, "inbound: dropped and counted");
	chain_unref(c);
	chain_unref(d);
	return tap_done();
}

#else

int main(void)
{
	tap_skip_all("built without the fast path");
	return 0;
}

#endif
