/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the routing-*.c files share: the recorded objects, the state of one
 * installation and the helpers of more than one file.  Not for other modules.
 */
#ifndef IPMODD_ROUTING_INTERNAL_H
#define IPMODD_ROUTING_INTERNAL_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "netlink.h"
#include "routing.h"
#include "util.h"

#define SYSCTL_PATH_MAX 96
#define SYSCTL_VALUE_MAX 32
#define FLUSH_BATCH 64		/* deletions per dump */
#define FLUSH_ROUNDS 64		/* dumps per object kind before giving up */
#define RPF_LOOSE 2
#define RPF_STRICT 1
#define RPF_ALL (-1)		/* the ifindex that stands for "all" */
#define RPF_STATE_LINE 64

enum obj_kind {
	OBJ_RULE,
	OBJ_ROUTE,
	OBJ_INET_CONF,
	OBJ_SYSCTL,
};

/* The IPv4 devconf values a tun needs to forward written-back packets. */
extern const struct nl_devconf tun_inet_conf[3];

struct obj {
	enum obj_kind kind;
	bool block;		/* part of the fail-closed block: rules, unreachable routes */
	union {
		struct nl_rule rule;
		struct nl_route route;
		struct nl_devconf old_conf[ARRAY_SIZE(tun_inet_conf)];
		struct {
			char path[SYSCTL_PATH_MAX];
			char old[SYSCTL_VALUE_MAX];
			char want[SYSCTL_VALUE_MAX];
		} sysctl;
	};
};

/* An rp_filter ipmodd changed while it runs: an interface's, or "all" (RPF_ALL). */
struct rpf {
	int ifindex;
	char name[IFNAMSIZ];
	uint32_t old, effective;	/* before us */
	bool announced;		/* handed to routing_rp_filter_take() */
};

struct routing {
	struct nl *nl;
	int ifindex;
	char tun[IFNAMSIZ];
	bool fail_closed;
	bool rpf_loose;		/* IPv4 diverted with rp-filter = "loose" */
	uint32_t rpf_all;	/* net.ipv4.conf.all.rp_filter before us */
	struct rpf *rpf;
	size_t n_rpf;
	char rpf_state[ROUTING_STATE_PATH_MAX];
	bool keep_block;	/* routing_free() leaves the block in place */
	uint32_t priority, table;
	size_t n;
	struct obj objs[];	/* sized by routing_install() for all it can add */
};

struct repair {
	struct routing *rt;
	bool *found;		/* per object: in the kernel's dump */
	int n;
	char *item;
	size_t itemlen;
};

/*
 * One kind of recorded object, the one place that knows how to make it, undo
 * it and name it: install, routing_free(), routing_restore() and the repair
 * all go through obj_ops[kind].
 */
struct obj_ops {
	bool netlink;		/* add() fails with the kernel's extack */
	bool restore;		/* put back by routing_restore(): rules and routes */
	/* Make the kernel state o stands for; replace: take its place from another. */
	int (*add)(struct routing *rt, const struct obj *o, bool replace);
	/* Put back what was before, best effort: the tun may have taken it along. */
	void (*del)(struct routing *rt, const struct obj *o);
	/* Whether the kernel has o as set; found: seen in the repair's dump. */
	bool (*present)(const struct routing *rt, const struct obj *o, bool found,
			const struct nl_link_info *info);
	/* "rule 'from all lookup 100 pref 10000' (IPv4)", "path=value", ...; rt may be NULL */
	void (*describe)(const struct routing *rt, const struct obj *o, char *buf, size_t len);
};

extern const struct obj_ops *const obj_ops[];

/* --- shared helpers ------------------------------------------------------ */

/* routing.c */
const char *family_name(int family);
/* The rule in "ip rule add" words, in the order "ip rule show" prints them. */
void format_rule(char *buf, size_t len, const struct nl_rule *r);
void format_route(char *buf, size_t len, const struct nl_route *rt, const char *dev);
/* err = "STEP: strerror (kernel's reason)"; returns r. */
_printf_(5, 6) int step_error(char *err, size_t errlen, int r, const char *extack,
			     const char *fmt, ...);
int check_config(const struct config *cfg, char *err, size_t errlen);
int read_sysctl(const char *path, char *buf, size_t len);
int write_sysctl(const char *path, const char *value);
/* One more thing put back; the first one is named. */
_printf_(2, 3) void repaired(struct repair *rep, const char *fmt, ...);
void base_rule(struct nl_rule *r, int family, uint32_t priority, uint32_t table);

/* routing-rpf.c */
/* A link that filters by "all" or by itself, without loose mode of its own. */
bool rpf_link_needs(int tun, uint32_t all, const struct nl_link_info *l);
/* The state file: what a crashed instance changed, for the next start or --cleanup. */
void rpf_state_path(const struct config *cfg, char *buf, size_t len);
/* After a crash: put back what the state file lists, newest first; returns how many. */
int rpf_state_restore(struct nl *nl, const char *path, char *err, size_t errlen);
int rpf_sync(struct routing *rt, struct repair *rep, char *err, size_t errlen);
/* rp-filter = "keep": refuse what would cut the host off. */
int rpf_check_keep(struct routing *rt, char *err, size_t errlen);
/* Every rp_filter we changed, newest first; the state file goes unless one failed. */
void rpf_put_back_all(struct routing *rt);

/* routing-repair.c */
/* The kernel evaluates rules in the order it dumps them: check it, per family we set up. */
int verify_order(struct routing *rt, char *err, size_t errlen);
uint8_t route_type(const struct nl_route *r);
/* The same place in the table: what NLM_F_REPLACE would replace. */
bool route_key_same(const struct nl_route *a, const struct nl_route *b);
bool route_same(const struct nl_route *a, const struct nl_route *b);
bool inet_conf_ok(const struct nl_link_info *info);

#endif
