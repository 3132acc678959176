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
#include "../unit/ruleline.h"

#ifdef HAVE_FASTPATH
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static struct chain *chain_of(const char *const *lines, size_t n)
{
	struct rule *r[8] = { NULL };
	struct chain *c = NULL;
	char err[256];

	if (n > 8)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(r[i] = rule_of(lines[i])))
			goto out;
	if (chain_new(r, n, &c, err, sizeof(err)) < 0) {
		diag("chain_new: %s", err);
		c = NULL;
	}
out:
	for (size_t k = 0; k < n; k++)
		rule_free(r[k]);
	return c;
}

/* A UDP packet, TTL 64, 192.0.2.2 -> 192.0.2.1 port 9: IPv4 at byte 0, as the tun has it. */
static void build_packet(uint8_t *pkt)
{
	static const uint8_t ip[20] = { 0x45, 0, 0, 64, 0, 1, 0x40, 0, 64, 17, 0, 0,
					192, 0, 2, 2, 192, 0, 2, 1 };

	memset(pkt, 0, 64);
	memcpy(pkt, ip, sizeof(ip));
	pkt[20] = 0x9c;
	pkt[21] = 0x40;
	pkt[23] = 9;
	pkt[25] = 44;
}

static uint16_t ip_csum(const uint8_t *h)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < 20; i += 2)
		sum += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int prog_fd_on(int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);
	int r = bpf_tc_query(&hook, &opts);

	if (r < 0)
		return r;
	r = bpf_prog_get_fd_by_id(opts.prog_id);
	return r < 0 ? -errno : r;
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
	uint8_t pkt[64], out[64];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	struct fastpath *fp = NULL;
	char err[512];
	int r, fd = -1;

	build_packet(pkt);
	pkt[10] = (uint8_t)(ip_csum(pkt) >> 8);
	pkt[11] = (uint8_t)ip_csum(pkt);
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
	struct chain *c = chain_of(rules, 3), *d = chain_of(drop, 1);
	struct result o = { 0 }, i = { 0 };
	int r;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!c || !d) {
		ok(0, "the chains parse");
		return tap_done();
	}
	r = run(c, PKT_DIR_OUT, &o);
	is_int(r, 0, "outbound: loaded, updated and run");
	is_int(o.action, TC_ACT_REDIRECT, "outbound: the kernel sends the packet on");
	is_int(o.ttl, 100, "outbound: TTL 99 plus the forward's hop");
	is_int(o.tos, 40, "outbound: DSCP 10 by the rule of both directions");
	ok(o.csum_ok, "outbound: the IPv4 header checksum holds");
	ok(o.pkts[0] == 1 && o.pkts[1] == 0 && o.pkts[2] == 1,
	   "outbound: rules o and b counted it, i not (%llu %llu %llu)",
	   (unsigned long long)o.pkts[0], (unsigned long long)o.pkts[1],
	   (unsigned long long)o.pkts[2]);
	ok(o.info.rules == 2 && o.info.punts == 0, "outbound: the kernel holds 2 rules (%zu, %zu punt)",
	   o.info.rules, o.info.punts);

	r = run(c, PKT_DIR_IN, &i);
	is_int(r, 0, "inbound: loaded, updated and run");
	is_int(i.action, TC_ACT_REDIRECT, "inbound: the kernel sends the packet on");
	is_int(i.ttl, 33, "inbound: TTL 33 as the rule set it, no hop added; the outbound rule ignored");
	is_int(i.tos, 40, "inbound: DSCP 10 by the rule of both directions");
	ok(i.csum_ok, "inbound: the IPv4 header checksum holds");
	ok(i.pkts[0] == 0 && i.pkts[1] == 1 && i.pkts[2] == 1,
	   "inbound: rules i and b counted it, o not (%llu %llu %llu)",
	   (unsigned long long)i.pkts[0], (unsigned long long)i.pkts[1],
	   (unsigned long long)i.pkts[2]);
	ok(i.info.rules == 2 && i.info.punts == 0, "inbound: the kernel holds 2 rules (%zu, %zu punt)",
	   i.info.rules, i.info.punts);

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
