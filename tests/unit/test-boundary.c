/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The library boundary: this test links libipmod.a and nothing of the
 * daemon's top layer (no log.o, no manager), and calls one function of each
 * module of the library, so that every member is pulled into the link.  A
 * library module that logs then leaves log_msg undefined and this test does
 * not link; one that includes log.h or manager.h does not compile
 * (IPMOD_LIBRARY, see Makefile.am).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "config.h"
#include "control.h"
#include "ctlcli.h"
#include "ctlproto.h"
#include "explain.h"
#include "flow.h"
#include "forge.h"
#include "fpindex.h"
#include "hello.h"
#include "gso.h"
#include "hostset.h"
#include "impair.h"
#include "loopguard.h"
#include "monitor.h"
#include "netem-tables.h"
#include "netlink.h"
#include "packet.h"
#include "pcapng.h"
#include "prefixset.h"
#include "probe.h"
#include "routing.h"
#include "rule.h"
#include "tap.h"
#include "tracelink.h"
#include "tun.h"
#include "util.h"

/* A packet from explain's words; forge answers it; rule, chain, packet's checksum agree. */
static void packet_path(void)
{
	static const struct rule_kv pkt_kv[] = {
		{ "proto", "icmp" }, { "dst", "192.0.2.1" }, { "ttl", "9" },
		{ "icmp-type", "echo-request" },
	};
	static const struct rule_kv rule_kv[] = { { "proto", "icmp" }, { "set-ttl", "42" } };
	static uint8_t buf[EXPLAIN_BUF_MAX], out[EXPLAIN_BUF_MAX];
	char err[ERR_MAX], text[256];
	struct pkt p, reply = { .data = out, .cap = sizeof(out) };
	struct rule *rule = NULL, *again = NULL;
	struct chain *c = NULL;
	size_t bad;
	int r;

	r = explain_packet(pkt_kv, ARRAY_SIZE(pkt_kv), buf, sizeof(buf), &p, err, sizeof(err));
	if (!ok(r >= 0, "explain: a packet from words (%s)", r < 0 ? err : "ok"))
		return;
	is_int(csum_fold(csum_partial(p.data, 20, 0)), 0, "packet: its IPv4 header checksum holds");
	is_int(forge_echo_reply(&p, &reply), 0, "forge: an echo reply to it");
	is_int(reply.len, p.len, "forge: the reply is as long as the request");

	r = rule_parse(rule_kv, ARRAY_SIZE(rule_kv), &rule, &bad, err, sizeof(err));
	is_int(r, 0, "rule: parsed");
	ok(r == 0 && rule_format(rule, text, sizeof(text)) > 0 && strstr(text, "set-ttl=42"),
	   "rule: formatted back (%s)", r == 0 ? text : "");
	again = rule ? rule_dup(rule) : NULL;
	ok(again && rule_equal(rule, again), "rule: a copy equals it");
	ok(rule && chain_new(&rule, 1, &c, err, sizeof(err)) == 0 && chain_size(c) == 1,
	   "chain: one rule");
	ok(!strcmp(chain_result_name(0), chain_result_name(0)) && *chain_result_name(0),
	   "chain: a result has a name");
	chain_unref(c);
	rule_free(again);
	rule_free(rule);
}

static void gso_impair_tables(void)
{
	struct gso g = { .flags = 1, .type = 1, .hdr_len = 54, .size = 1448,
			 .csum_start = 34, .csum_offset = 16 }, back;
	struct impair_rng a, b;
	uint8_t hdr[16];
	int nonzero = 0;

	gso_encode(&g, hdr);
	gso_decode(hdr, &back);
	ok(back.size == 1448 && back.hdr_len == 54 && back.csum_start == 34, "gso: a header round-trips");
	impair_rng_seed(&a, 7);
	impair_rng_seed(&b, 7);
	ok(impair_rng_next(&a) == impair_rng_next(&b), "impair: one seed, one sequence");
	for (size_t i = 0; i < NETEM_TABLE_SIZE; i++)
		nonzero |= netem_pareto[i] != 0;
	ok(nonzero, "netem-tables: the pareto table is filled");
}

static void config_trace(void)
{
	static const char trace[] = "10\n20\n";
	struct config *cfg = NULL;
	struct tl_trace t;
	char err[ERR_MAX];
	size_t line = 0;

	ok(config_new_default(&cfg) == 0 && cfg, "config: the default");
	config_free(cfg);
	memset(&t, 0, sizeof(t));
	is_int(tl_trace_parse(trace, sizeof(trace) - 1, &t, &line, err, sizeof(err)), 0,
	       "tracelink: a two-line trace parses");
	tl_trace_free(&t);
}

static void control_side(void)
{
	char buf[256];
	struct ctl_pair pairs[4];
	struct ctl_parser cp;
	struct monitor *m = NULL;
	uint8_t hdr[PCAPNG_HEADER_LEN], epb[128];
	const uint8_t ip[20] = { 0x45 };
	struct pcapng_counter pc;
	pid_t pid;

	ctl_parser_init(&cp, buf, sizeof(buf), pairs, ARRAY_SIZE(pairs));
	ok(!ctl_parser_pending(&cp), "ctlproto: a fresh parser has nothing pending");
	ok(ctlcli_json_is_uint("12") && !ctlcli_json_is_uint("x"), "ctlcli: numbers are told apart");
	ok(control_probe("/nonexistent/ipmodd-boundary.sock", &pid) == 0, "control: no daemon there");
	ok(monitor_new(&m) == 0 && m, "monitor: a new monitor");
	monitor_free(m);

	pcapng_counter_init(&pc);
	pcapng_counter_feed(&pc, hdr, pcapng_header(hdr, 128));
	pcapng_counter_feed(&pc, epb, pcapng_epb(epb, true, PKT_DIR_OUT, 1000, ip, sizeof(ip), 128, 3));
	ok(!pc.err && pc.packets == 1 && pc.outbound == 1 && pc.dropped == 3 &&
	   !pcapng_counter_partial(&pc), "pcapng: the reader counts what the writer wrote");
}

static void system_side(void)
{
	uint8_t msg[256], a[20] = { 0x45, 0, 0, 20 }, b[20] = { 0x45, 0, 0, 20, 1 };
	char name[64];

	ok(nl_build_dump(msg, sizeof(msg), RTM_GETLINK, AF_UNSPEC) > 0, "netlink: a dump request");
	ok(routing_free(NULL) == NULL, "routing: nothing to free");
	ok(!probe_match(AF_INET, 1, 2, msg, 0), "probe: an empty packet is no answer");
	tun_offload_name(0, name, sizeof(name));
	is_str(name, "off", "tun: no offloads");
	ok(loopguard_print(a, sizeof(a)) != loopguard_print(b, sizeof(b)),
	   "loopguard: two packets, two prints");
	ok(fpindex_free(NULL) == NULL, "fpindex: nothing to free");
	ok(hello_name_match("*.example.com", "a.example.com", 13), "hello: a suffix match");
	ok(flow_table_free(NULL) == NULL, "flow: nothing to free");
}

static void sets(void)
{
	static const uint8_t addr[4] = { 10, 1, 2, 3 };
	struct prefixset *ps = NULL;
	struct hostset *hs = NULL;
	char err[ERR_MAX];

	ok(prefixset_from_text("10.0.0.0/8\n", 11, "b", &ps, err, sizeof(err)) == 0 &&
	   prefixset_contains(ps, AF_INET, addr), "prefixset (and listfile): a one-line set");
	ok(hostset_from_text("*.a.test\n", 9, "b", &hs, err, sizeof(err)) == 0 &&
	   hostset_contains(hs, "x.a.test", 8), "hostset: a one-line set");
	prefixset_free(ps);
	hostset_free(hs);
}

int main(void)
{
	packet_path();
	gso_impair_tables();
	config_trace();
	control_side();
	system_side();
	sets();
	return tap_done();
}
