/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The configuration file (libconfig syntax, see ipmodd.conf(5)) turned into
 * plain structs with their own copies of every string.  No side effects.
 */
#ifndef IPMODD_CONFIG_H
#define IPMODD_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "netlink.h"
#include "rule.h"
#include "util.h"

#define CONFIG_SELECTORS_MAX 64
#define CONFIG_RULES_MAX RULES_MAX
/* config_load()'s err: the one error buffer size */
#define CONFIG_ERR_MAX ERR_MAX

struct prefix {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t len;
	uint8_t addr[16];
};

/* Which outbound traffic is diverted (or excluded): each becomes an ip rule per family. */
struct selector {
	int family;		/* AF_UNSPEC: every enabled family */
	bool has_from, has_to;
	struct prefix from, to;
	struct nl_selector match;	/* uid, ipproto, ports, fwmark */
	int line;
};

/* tun.queues: at most this many queues (and packet workers). */
#define CONFIG_QUEUES_MAX 16

/* tun.nice: the packet threads' nice value, its default and its range. */
#define CONFIG_NICE_DEFAULT (-5)
#define CONFIG_NICE_MIN (-20)
#define CONFIG_NICE_MAX 19

enum fastpath_mode {
	FASTPATH_OFF,
	FASTPATH_AUTO,
	FASTPATH_ON,
};

/* tun.io: how the packet path reads the tun (ipmodd.conf(5)). */
enum tun_io {
	TUN_IO_READWRITE,	/* read() and write() */
	TUN_IO_URING,		/* reads through io_uring (tunring.h), where the build has liburing */
};

/* routing.reinject: how packets written back to the tun leave (ipmodd.conf(5)). */
enum reinject_mode {
	REINJECT_AUTO,		/* the BPF program where it loads, else forwarding */
	REINJECT_BPF,		/* the BPF program, or no start */
	REINJECT_FORWARD,	/* the kernel forwards them from the tun */
};

/* inbound.interfaces: at most this many */
#define CONFIG_INBOUND_MAX 8

struct config {
	char *path;

	char tun_name[IFNAMSIZ];
	unsigned int mtu;
	bool offload;		/* virtio-net header, checksum and GSO offload (tun.h), when the kernel has them */
	unsigned int queues;	/* tun queues, one worker thread each; 0: "auto" (online CPUs) */
	enum tun_io tun_io;
	int nice;		/* of the packet threads (the loop's, the workers') */

	uint32_t table;
	uint32_t priority;	/* diversion rules; the bypass and exclusions use priority - 1 */
	bool ipv4, ipv6;
	bool ipv6_auto;		/* families = "auto": IPv6 where the kernel can carry it back out */
	int families_line;	/* of routing.families in the file, 0: not there */
	enum reinject_mode reinject;
	bool fail_closed;	/* traffic stays blocked while ipmodd is not running */
	uint32_t stall_timeout_ms;	/* fail-open: stalled this long, stop diverting; 0 never */
	/* inbound.interfaces: whose received packets go through the chain too (inbound.h) */
	char inbound_ifnames[CONFIG_INBOUND_MAX][IFNAMSIZ];
	unsigned int n_inbound;
	bool rp_filter_keep;	/* rp-filter = "keep": refuse to start on a strict interface */
	bool self_check;	/* probe at start that written-back packets leave the host */
	struct selector *divert;	/* none: all outbound traffic */
	size_t n_divert;
	struct selector *exclude;
	size_t n_exclude;

	char control_socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char control_group[64];	/* "": root only */
	unsigned int control_mode;	/* of the socket file: 0600, 0660 or 0666 */
	enum fastpath_mode fastpath;
	uint32_t flows_max;	/* flows.max: entries of the daemon's flow table (flow.h) */

	struct rule **rules;
	size_t n_rules;

	bool seeded;		/* impairment.seed given */
	uint64_t seed;
};

/*
 * impairment.seed: an impairing rule without seed= gets one derived from
 * the global seed and its name (or "rule-N", N = index + 1, for an unnamed
 * rule, as chain_new() names it), so that every run of the file draws the
 * same.  Nothing without impairment.seed, for rules that do not impair or
 * that have their own seed=.  config_load() applies it to the file's rules;
 * the daemon to rules added live.
 */
void config_seed_rule(const struct config *cfg, struct rule *r, size_t index);

/* The defaults of ipmodd.conf(5), as if from an empty file. */
int config_new_default(struct config **ret);

/*
 * Load and validate path.  On failure returns -errno and writes
 * "file:line: message" (or "file: message" when no line applies) into err.
 */
int config_load(const char *path, struct config **ret, char *err, size_t errlen);
/* The same from text in memory (tests, fuzzing); name stands for the file in messages. */
int config_parse_string(const char *text, const char *name, struct config **ret, char *err,
			size_t errlen);
struct config *config_free(struct config *c);

/*
 * The keys read at the start only (config.c's table of keys) whose values
 * differ between a and b: their number, and their names, comma-separated,
 * in buf (len bytes, truncated; buf may be NULL when len is 0).
 */
int config_restart_changes(const struct config *a, const struct config *b, char *buf, size_t len);
/* Whether no such key differs: the same tun, routing, control and fast path (lines aside). */
bool config_routing_equal(const struct config *a, const struct config *b);
/*
 * The i-th key of ipmodd.conf(5) ("section.key" or "key") and whether a
 * change of it needs a restart (config_restart_changes() compares it);
 * false past the last.  For tests.
 */
bool config_key_info(size_t i, const char **ret_name, bool *ret_restart);

#endif
