/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a stopped or crashed instance left behind: --cleanup and the start. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <linux/fib_rules.h>
#include <linux/ip.h>
#include <linux/netconf.h>
#include <linux/rtnetlink.h>

#include "netlink.h"
#include "inbound.h"
#include "routing.h"
#include "routing-internal.h"
#include "util.h"

/* Dumped entries to delete, as ready-made delete requests. */
struct flush {
	uint16_t del_type;
	uint32_t priority, table;
	bool keep_unreachable;
	void *msgs[FLUSH_BATCH];
	size_t n;
	bool more;
};

static void flush_done(struct flush *f)
{
	while (f->n > 0)
		free(f->msgs[--f->n]);
}

static bool flush_match(const struct flush *f, const struct nlmsghdr *nlh)
{
	struct nl_route route;
	struct nl_rule rule;

	if (f->del_type == RTM_DELRULE)
		return nl_parse_rule(nlh, &rule) == 0 && rule.action == FR_ACT_TO_TBL &&
		       rule.priority == f->priority && rule.table == f->table;
	return nl_parse_route(nlh, &route) == 0 && route.table == f->table &&
	       !(f->keep_unreachable && route.type == RTN_UNREACHABLE);
}

static int flush_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct flush *f = userdata;
	void *copy;
	int r;

	if (!flush_match(f, nlh))
		return 0;
	if (f->n == FLUSH_BATCH) {
		f->more = true;
		return 0;
	}
	copy = malloc(nlh->nlmsg_len);
	if (!copy)
		return -ENOMEM;
	/* Resend the dumped entry as its own delete, like "ip rule/route flush". */
	r = nl_build_copy(copy, nlh->nlmsg_len, nlh, f->del_type);
	if (r < 0) {
		free(copy);
		return r;
	}
	f->msgs[f->n++] = copy;
	return 0;
}

/* A dumped entry in the words of its kind's describe(): "rule '...' (IPv4)". */
static void describe(char *buf, size_t len, const struct nlmsghdr *nlh, const char *what,
		     uint8_t family)
{
	struct obj o = { 0 };

	if (nlh->nlmsg_type == RTM_DELRULE && nl_parse_rule(nlh, &o.rule) == 0)
		o.kind = OBJ_RULE;
	else if (nlh->nlmsg_type == RTM_DELROUTE && nl_parse_route(nlh, &o.route) == 0)
		o.kind = OBJ_ROUTE;
	else
		return (void)snprintf(buf, len, "%s '?' (%s)", what, family_name(family));
	obj_ops[o.kind]->describe(NULL, &o, buf, len);
}

/* Delete every rule (priority, table) or route (table) of family; returns the count. */
static int flush(struct nl *nl, uint16_t del_type, uint8_t family, uint32_t priority,
		 uint32_t table, bool keep_unreachable, char *err, size_t errlen)
{
	bool rules = del_type == RTM_DELRULE;
	const char *what = rules ? "rule" : "route";
	char words[ROUTING_ITEM_MAX];
	int r, count = 0;
	size_t i;

	for (unsigned int round = 0; round < FLUSH_ROUNDS; round++) {
		_cleanup_(flush_done) struct flush f = {
			.del_type = del_type, .priority = priority, .table = table,
			.keep_unreachable = keep_unreachable,
		};

		r = nl_dump(nl, rules ? RTM_GETRULE : RTM_GETROUTE, family, flush_cb, &f);
		if (r == -EINTR) {
			/* Changed while dumping: delete what we saw, then look again. */
			f.more = true;
			r = 0;
		}
		if (r < 0)
			return step_error(err, errlen, r, nl_extack(nl), "dump %ss (%s)", what,
					  family_name(family));
		for (i = 0; i < f.n; i++) {
			r = nl_request(nl, f.msgs[i], NULL, NULL);
			if (r == -ENOENT || r == -ESRCH)
				continue;
			if (r < 0) {
				describe(words, sizeof(words), f.msgs[i], what, family);
				return step_error(err, errlen, r, nl_extack(nl),
						  "delete %s", words);
			}
			count++;
		}
		if (!f.more)
			break;
	}
	return count;
}

static int cleanup(const struct config *cfg, bool keep_block, char *err, size_t errlen)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	char path[ROUTING_STATE_PATH_MAX];
	struct nl_link_info info;
	struct nl *nl = NULL;
	int r, count = 0;
	size_t i;

	r = check_config(cfg, err, errlen);
	if (r < 0)
		return r;
	r = nl_open(&nl);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "open rtnetlink socket");

	/* First, so that a start reads the values as they were before the crashed instance. */
	rpf_state_path(cfg, path, sizeof(path));
	r = rpf_state_restore(nl, path, err, errlen);
	if (r < 0)
		goto cleanup;
	count += r;

	for (i = 0; i < ARRAY_SIZE(families); i++) {
		/* The block: the rules, and the unreachable routes they fall on. */
		if (!keep_block) {
			/* Diversion first, so that nothing is diverted without its bypass. */
			r = flush(nl, RTM_DELRULE, families[i], cfg->priority, cfg->table, false,
				  err, errlen);
			if (r < 0)
				goto cleanup;
			count += r;
			r = flush(nl, RTM_DELRULE, families[i], cfg->priority - 1, RT_TABLE_MAIN,
				  false, err, errlen);
			if (r < 0)
				goto cleanup;
			count += r;
		}
		r = flush(nl, RTM_DELROUTE, families[i], 0, cfg->table, keep_block, err, errlen);
		if (r < 0)
			goto cleanup;
		count += r;
	}

	/*
	 * Only a persistent tun outlives its process; a plain one, or one with a
	 * file attached (carrier on, or queues of a multi-queue tun), belongs to
	 * a live process.  Netlink, unlike /sys/class/net, answers for our own
	 * network namespace.
	 */
	/* The tun, then the inbound tuns (inbound.h) of every possible index. */
	for (unsigned int k = 0; k <= CONFIG_INBOUND_MAX; k++) {
		char name[IFNAMSIZ];

		if (k == 0)
			snprintf(name, sizeof(name), "%s", cfg->tun_name);
		else
			inbound_tun_name(cfg->tun_name, k - 1, name);
		r = nl_link_get(nl, 0, name, &info);
		if (r == -ENODEV)
			continue;
		if (r < 0) {
			step_error(err, errlen, r, nl_extack(nl), "get link %s", name);
			goto cleanup;
		}
		if (strcmp(info.kind, "tun") != 0 && k > 0)
			continue;
		if (info.tun_persist && !info.carrier && info.tun_queues == 0) {
			r = nl_build_dellink(buf, sizeof(buf), info.ifindex);
			if (r >= 0)
				r = nl_request(nl, buf, NULL, NULL);
			if (r < 0 && r != -ENODEV) {
				step_error(err, errlen, r, nl_extack(nl), "delete persistent tun %s",
					   name);
				goto cleanup;
			}
			if (r == 0)
				count++;
		}
	}
	r = count;

cleanup:
	nl_close(nl);
	return r;
}

int routing_tun_held(const struct config *cfg)
{
	struct nl_link_info info;
	struct nl *nl = NULL;
	int r;

	r = nl_open(&nl);
	if (r < 0)
		return r;
	r = nl_link_get(nl, 0, cfg->tun_name, &info);
	nl_close(nl);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return r;
	if (strcmp(info.kind, "tun") != 0)
		return 0;	/* not a tun: tun_open() refuses it */
	if (!info.tun_persist || info.carrier || info.tun_queues > 0)
		return info.tun_queues > 0 ? (int)info.tun_queues : 1;
	return 0;
}

int routing_cleanup(const struct config *cfg, char *err, size_t errlen)
{
	return cleanup(cfg, cfg->fail_closed, err, errlen);
}

int routing_cleanup_all(const struct config *cfg, char *err, size_t errlen)
{
	return cleanup(cfg, false, err, errlen);
}

int routing_remove_diversion(const struct config *cfg, char *err, size_t errlen)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	struct nl *nl = NULL;
	int r, count = 0;

	r = nl_open(&nl);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "open rtnetlink socket");
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		r = flush(nl, RTM_DELRULE, families[i], cfg->priority, cfg->table, false, err,
			  errlen);
		if (r < 0)
			break;
		count += r;
	}
	nl_close(nl);
	return r < 0 ? r : count;
}

