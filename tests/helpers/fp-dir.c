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
 * 10, counted by i and b.  Then a chain that drops inbound only.  Then the
 * inbound instance's program for the uplink's ingress (fastpath_uplink,
 * loaded by fastpath_open_in() and attached nowhere), on the same packet
 * behind an Ethernet header: delivered where it is (TC_ACT_OK) with TTL 33
 * and DSCP 10; as a GSO packet of 3 segments counted 3 times, each with its
 * headers; paused, sent to the tun divert names in skb->cb (TC_ACT_REDIRECT,
 * TC_ACT_OK without divert's magic); dropped by the inbound drop rule.  TAP
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

#define ETH_LEN 14

/* What fastpath_uplink made of the packet behind an Ethernet header. */
struct uplink_result {
	int action;
	uint8_t ttl, tos;
	bool csum_ok;
	uint64_t pkts[3], bytes[3];
	struct fastpath_totals t;
};

/*
 * The framed packet through fastpath_uplink of an inbound instance with
 * chain c: enabled or paused, with skb->cb as divert leaves it (cb_tun:
 * the tun's ifindex, 0: no cb at all) and gso_segs segs (0: none).
 */
static int run_uplink(struct chain *c, bool enabled, uint32_t cb_tun, uint32_t segs,
		      struct uplink_result *res)
{
	uint8_t pkt[ETH_LEN + FP_PACKET_LEN], out[ETH_LEN + FP_PACKET_LEN];
	struct __sk_buff ctx = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));
	struct fastpath *fp = NULL;
	char err[512];
	int r, fd;

	memset(pkt, 0, ETH_LEN);
	pkt[0] = 2;
	pkt[6] = 2;
	pkt[11] = 1;
	pkt[12] = 0x08;
	build_packet(pkt + ETH_LEN);
	if (cb_tun) {
		ctx.cb[0] = 0x69706d66;	/* IB_CB_MAGIC_VALUE */
		ctx.cb[1] = cb_tun;
	}
	if (segs) {
		/* 36 bytes after the 28 of headers: 3 segments of 12. */
		ctx.gso_segs = segs;
		ctx.gso_size = 12;
	}
	r = fastpath_open_in(NULL, 0, &fp, err, sizeof(err));
	if (r >= 0)
		r = fastpath_update(fp, c, err, sizeof(err));
	if (r < 0) {
		diag("%s", err);
		goto out;
	}
	fd = fastpath_uplink_fd(fp);
	if (fd < 0) {
		diag("the kernel refused fastpath_uplink: %s", fastpath_uplink_error(fp));
		r = -EOPNOTSUPP;
		goto out;
	}
	fastpath_set_enabled(fp, enabled);
	if (bpf_prog_test_run_opts(fd, &opts) < 0) {
		r = -errno;
		diag("BPF_PROG_TEST_RUN: %s", strerror(errno));
		goto out;
	}
	res->action = (int)opts.retval;
	res->ttl = out[ETH_LEN + 8];
	res->tos = out[ETH_LEN + 1];
	res->csum_ok = ip_csum(out + ETH_LEN) == 0;
	for (size_t i = 0; i < 3 && i < chain_size(c); i++) {
		r = fastpath_counters(fp, i, &res->pkts[i], &res->bytes[i]);
		if (r < 0)
			goto out;
	}
	r = fastpath_totals(fp, &res->t);
out:
	fastpath_close(fp);
	return r;
}

static void check_uplink(struct chain *c, struct chain *d)
{
	struct uplink_result u = { 0 };
	uint32_t lo = if_nametoindex("lo");

	is_int(run_uplink(c, true, lo, 0, &u), 0,
	       "uplink: fastpath_uplink loaded, updated and run");
	is_int(u.action, TC_ACT_OK, "uplink: the packet is delivered where it arrived (TC_ACT_OK)");
	ok(u.ttl == 33 && u.tos == 40 && u.csum_ok,
	   "uplink: TTL 33 (no hop), DSCP 10, the IPv4 checksum holds (TTL %u, TOS %u)",
	   u.ttl, u.tos);
	ok(u.pkts[0] == 0 && u.pkts[1] == 1 && u.pkts[2] == 1 && u.bytes[1] == 64,
	   "uplink: rules i and b counted it, 64 bytes without the Ethernet header "
	   "(%llu %llu %llu, %llu B)",
	   (unsigned long long)u.pkts[0], (unsigned long long)u.pkts[1],
	   (unsigned long long)u.pkts[2], (unsigned long long)u.bytes[1]);
	ok(u.t.handled == 1 && u.t.punted == 0, "uplink: totals handled 1, punted 0");

	memset(&u, 0, sizeof(u));
	is_int(run_uplink(c, true, lo, 3, &u), 0, "uplink, GSO: run");
	ok(u.action == TC_ACT_OK && u.pkts[1] == 3 && u.bytes[1] == 64 + 2 * 28 && u.t.handled == 3,
	   "uplink, GSO: 3 segments counted as 3 packets of their own headers (%llu, %llu B, handled %llu)",
	   (unsigned long long)u.pkts[1], (unsigned long long)u.bytes[1],
	   (unsigned long long)u.t.handled);

	memset(&u, 0, sizeof(u));
	is_int(run_uplink(c, false, lo, 0, &u), 0, "uplink, paused: run");
	ok(u.action == TC_ACT_REDIRECT && u.ttl == 64 && u.pkts[1] == 0 && u.t.punted == 1,
	   "uplink, paused: punted to the tun in skb->cb, untouched, uncounted (action %d, TTL %u)",
	   u.action, u.ttl);
	memset(&u, 0, sizeof(u));
	is_int(run_uplink(c, false, 0, 0, &u), 0, "uplink, paused, no cb: run");
	is_int(u.action, TC_ACT_OK, "uplink, paused, not called by divert: passed (no tun to send to)");

	memset(&u, 0, sizeof(u));
	is_int(run_uplink(d, true, lo, 0, &u), 0, "uplink, drop rule: run");
	ok(u.action == TC_ACT_SHOT && u.pkts[0] == 1 && u.t.dropped == 1,
	   "uplink, drop rule: dropped on the uplink and counted");
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
	check_uplink(c, d);
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
