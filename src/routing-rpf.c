/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The reverse-path filter ipmodd loosens while it runs, and its state file (DESIGN.md 6). */
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

/*
 * The effective rp_filter of a device is max(all, dev).  Two checks meet
 * ipmodd's routing:
 *  - an inbound IPv4 packet's reverse-path lookup (from the loopback,
 *    addresses swapped) meets "from all lookup T" and finds the tun: strict
 *    mode (1) on the uplink drops every inbound packet, loose mode (2) only
 *    asks for a route back, which the tun is;
 *  - a packet written back to the tun comes from a local address on a device
 *    without an IPv4 address: any mode but 0 drops it there (the kernel's
 *    IPReversePathFilter counter), loose too.  So "all" must be 0.
 * With rp-filter = "loose": every interface but lo and the tun that filters
 * (effective value 1 or 2, "all" as it was before us) gets 2 of its own, and
 * then "all" gets 0.  Nothing filters less than before but the strict
 * interfaces, which become loose.
 */

#define RPF_ALL_PATH "/proc/sys/net/ipv4/conf/all/rp_filter"

static uint32_t rpf_effective(uint32_t all, uint32_t dev)
{
	return all > dev ? all : dev;
}

static int rpf_read_all(uint32_t *ret)
{
	char v[SYSCTL_VALUE_MAX], *end;
	unsigned long n;
	int r;

	r = read_sysctl(RPF_ALL_PATH, v, sizeof(v));
	if (r < 0)
		return r;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || n > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)n;
	return 0;
}

static bool rpf_link_counts(int tun, const struct nl_link_info *l)
{
	return l->ifindex != tun && !(l->flags & IFF_LOOPBACK) && l->has_inet_conf;
}

/* A link that filters by "all" or by itself, without loose mode of its own. */
bool rpf_link_needs(int tun, uint32_t all, const struct nl_link_info *l)
{
	uint32_t dev = l->inet_conf[IPV4_DEVCONF_RP_FILTER];

	return rpf_link_counts(tun, l) && rpf_effective(all, dev) != 0 && dev != RPF_LOOSE;
}

struct rpf_link {
	int ifindex;
	char name[IFNAMSIZ];
	uint32_t value, effective;
};

/* The links of one dump that need loose mode of their own. */
struct rpf_scan {
	int tun;
	uint32_t all;
	struct rpf_link links[ROUTING_RPF_MAX];
	size_t n;
	bool more;
};

static int rpf_scan_cb(const struct nlmsghdr *nlh, void *userdata)
{
	struct rpf_scan *sc = userdata;
	struct rpf_link *l;
	struct nl_link_info info;

	if (nl_parse_link(nlh, &info) < 0 || !rpf_link_needs(sc->tun, sc->all, &info))
		return 0;
	if (sc->n == ARRAY_SIZE(sc->links)) {
		sc->more = true;
		return 0;
	}
	l = &sc->links[sc->n++];
	l->ifindex = info.ifindex;
	memcpy(l->name, info.name, IFNAMSIZ);
	l->value = info.inet_conf[IPV4_DEVCONF_RP_FILTER];
	l->effective = rpf_effective(sc->all, l->value);
	return 0;
}

/* all: the value of "all" to judge the links by. */
static int rpf_scan(struct nl *nl, int tun, uint32_t all, struct rpf_scan *sc, char *err,
		    size_t errlen)
{
	int r;

	for (int attempt = 0; attempt < 4; attempt++) {
		memset(sc, 0, sizeof(*sc));
		sc->tun = tun;
		sc->all = all;
		r = nl_dump(nl, RTM_GETLINK, AF_UNSPEC, rpf_scan_cb, sc);
		if (r != -EINTR)
			break;
	}
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(nl), "dump links");
	if (sc->more)
		return step_error(err, errlen, -E2BIG, NULL,
				  "more than %d interfaces with a reverse-path filter", ROUTING_RPF_MAX);
	return 0;
}

static int rpf_set(struct nl *nl, int ifindex, uint32_t value)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct nl_devconf conf = { IPV4_DEVCONF_RP_FILTER, value };
	struct nl_link l = { .ifindex = ifindex, .inet_conf = &conf, .n_inet_conf = 1 };
	char v[SYSCTL_VALUE_MAX];
	int r;

	if (ifindex == RPF_ALL) {
		snprintf(v, sizeof(v), "%u", value);
		return write_sysctl(RPF_ALL_PATH, v);
	}
	r = nl_build_setlink(buf, sizeof(buf), &l);
	if (r >= 0)
		r = nl_request(nl, buf, NULL, NULL);
	return r;
}

/*
 * Put back old on ifindex if it is still the link named name and still
 * holds the value we set (want): what someone else set since is theirs.
 * 1: put back, 0: nothing to do, -errno.
 */
static int rpf_put_back(struct nl *nl, int ifindex, const char *name, uint32_t old)
{
	struct nl_link_info info;
	uint32_t now;
	int r;

	if (ifindex == RPF_ALL) {
		r = rpf_read_all(&now);
		if (r < 0 || now != 0)
			return r < 0 ? r : 0;
		r = rpf_set(nl, RPF_ALL, old);
		return r < 0 ? r : 1;
	}
	r = nl_link_get(nl, ifindex, NULL, &info);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return r;
	if (strcmp(name, info.name) != 0 || !info.has_inet_conf ||
	    info.inet_conf[IPV4_DEVCONF_RP_FILTER] != RPF_LOOSE)
		return 0;
	r = rpf_set(nl, ifindex, old);
	if (r == -ENODEV)
		return 0;
	return r < 0 ? r : 1;
}

/* The state file: what a crashed instance changed, for the next start or --cleanup. */
void rpf_state_path(const struct config *cfg, char *buf, size_t len)
{
	const char *slash = strrchr(cfg->control_socket, '/');
	int n;

	buf[0] = '\0';
	if (!slash)
		return;
	n = snprintf(buf, len, "%.*s/%s.rp_filter", (int)(slash - cfg->control_socket),
		     cfg->control_socket, cfg->tun_name);
	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0';
}

/* Written whole under a temporary name, then renamed: never half a file. */
static int rpf_state_save(const struct routing *rt)
{
	char tmp[ROUTING_STATE_PATH_MAX + 8];
	FILE *f;
	int r = 0;

	if (!rt->rpf_state[0])
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.new", rt->rpf_state);
	f = fopen(tmp, "we");
	if (!f)
		return negative_errno();
	for (size_t i = 0; i < rt->n_rpf; i++)
		fprintf(f, "%d %s %u\n", rt->rpf[i].ifindex, rt->rpf[i].name, rt->rpf[i].old);
	if (fflush(f) != 0 || ferror(f))
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -EIO;
	if (r == 0 && rename(tmp, rt->rpf_state) < 0)
		r = negative_errno();
	if (r < 0)
		unlink(tmp);
	return r;
}

/* After a crash: put back what the state file lists, newest first; returns how many. */
int rpf_state_restore(struct nl *nl, const char *path, char *err, size_t errlen)
{
	struct {
		int ifindex;
		char name[IFNAMSIZ];
		unsigned int old;
	} *e = NULL;
	char line[RPF_STATE_LINE];
	size_t n = 0;
	int r = 0, count = 0;
	FILE *f;

	if (!path[0])
		return 0;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : step_error(err, errlen, negative_errno(), NULL,
							"read %s", path);
	e = calloc(ROUTING_RPF_MAX + 1, sizeof(*e));
	if (!e) {
		fclose(f);
		return step_error(err, errlen, -ENOMEM, NULL, "read %s", path);
	}
	while (n <= ROUTING_RPF_MAX && fgets(line, sizeof(line), f))
		if (sscanf(line, "%d %15s %u", &e[n].ifindex, e[n].name, &e[n].old) == 3 &&
		    (e[n].ifindex > 0 || e[n].ifindex == RPF_ALL) && e[n].old <= RPF_LOOSE)
			n++;
	fclose(f);
	while (n > 0) {
		n--;
		r = rpf_put_back(nl, e[n].ifindex, e[n].name, e[n].old);
		if (r < 0) {
			step_error(err, errlen, r, nl_extack(nl), "put back rp_filter %u on %s",
				   e[n].old, e[n].name);
			break;
		}
		count += r;
	}
	free(e);
	/* Kept when something could not be put back: --cleanup tries again. */
	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return step_error(err, errlen, negative_errno(), NULL, "remove %s", path);
	return count;
}

static struct rpf *rpf_find(struct routing *rt, int ifindex)
{
	for (size_t i = 0; i < rt->n_rpf; i++)
		if (rt->rpf[i].ifindex == ifindex)
			return &rt->rpf[i];
	return NULL;
}

/*
 * Set value on ifindex, recorded with its old value (and written to the
 * state file) before the change.  *added: it was not recorded yet.
 */
static int rpf_change(struct routing *rt, int ifindex, const char *name, uint32_t old,
		      uint32_t effective, uint32_t value, bool *added, char *err, size_t errlen)
{
	struct rpf *e = rpf_find(rt, ifindex), *v;
	int r;

	*added = false;
	if (!e) {
		if (rt->n_rpf == ROUTING_RPF_MAX)
			return step_error(err, errlen, -E2BIG, NULL,
					  "more than %d interfaces with a reverse-path filter",
					  ROUTING_RPF_MAX);
		v = realloc(rt->rpf, (rt->n_rpf + 1) * sizeof(*v));
		if (!v)
			return step_error(err, errlen, -ENOMEM, NULL, "allocate rp_filter state");
		rt->rpf = v;
		e = &rt->rpf[rt->n_rpf++];
		memset(e, 0, sizeof(*e));
		e->ifindex = ifindex;
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->old = old;
		e->effective = effective;
		r = rpf_state_save(rt);
		if (r < 0) {
			rt->n_rpf--;
			return step_error(err, errlen, r, NULL, "write %s", rt->rpf_state);
		}
		*added = true;
	}
	r = rpf_set(rt->nl, ifindex, value);
	/* Gone meanwhile: nothing to filter on it. */
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return step_error(err, errlen, r, nl_extack(rt->nl), "set rp_filter %u on %s",
				  value, name);
	return 0;
}

/*
 * Loose mode of their own for the links that filter, then "all" to 0.  rep:
 * a repair, which counts and names what it set again; a new link is no
 * repair, it waits for routing_rp_filter_take().
 */
int rpf_sync(struct routing *rt, struct repair *rep, char *err, size_t errlen)
{
	_cleanup_(freep) struct rpf_scan *sc = NULL;
	const struct rpf *all = rpf_find(rt, RPF_ALL);
	uint32_t now;
	bool added;
	int r;

	r = rpf_read_all(&now);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "read %s", RPF_ALL_PATH);
	/* Links are judged by "all" as it was before us. */
	if (!all)
		rt->rpf_all = now;
	sc = malloc(sizeof(*sc));
	if (!sc)
		return step_error(err, errlen, -ENOMEM, NULL, "allocate the link scan");
	r = rpf_scan(rt->nl, rt->ifindex, rt->rpf_all, sc, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sc->n; i++) {
		const struct rpf_link *l = &sc->links[i];

		r = rpf_change(rt, l->ifindex, l->name, l->value, l->effective, RPF_LOOSE, &added,
			       err, errlen);
		if (r < 0)
			return r;
		if (rep && !added)
			repaired(rep, "rp_filter 2 (loose) on %s", l->name);
	}
	if (now == 0)
		return 0;
	r = rpf_change(rt, RPF_ALL, "all", now, now, 0, &added, err, errlen);
	if (r < 0)
		return r;
	if (rep && !added)
		repaired(rep, "net.ipv4.conf.all.rp_filter=0");
	return 0;
}

/* rp-filter = "keep": refuse what would cut the host off. */
int rpf_check_keep(struct routing *rt, char *err, size_t errlen)
{
	_cleanup_(freep) struct rpf_scan *sc = NULL;
	uint32_t all;
	int r;

	r = rpf_read_all(&all);
	if (r < 0)
		return step_error(err, errlen, r, NULL, "read %s", RPF_ALL_PATH);
	sc = malloc(sizeof(*sc));
	if (!sc)
		return step_error(err, errlen, -ENOMEM, NULL, "allocate the link scan");
	r = rpf_scan(rt->nl, rt->ifindex, all, sc, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sc->n; i++) {
		const struct rpf_link *l = &sc->links[i];

		if (l->effective != RPF_STRICT)
			continue;
		return err_set(err, errlen, -EPERM,
			       "rp_filter: %s is strict (net.ipv4.conf.%s.rp_filter=%u, all=%u): once "
			       "IPv4 is diverted, every inbound IPv4 packet fails the reverse-path "
			       "check there; set routing.rp-filter = \"loose\", or "
			       "net.ipv4.conf.%s.rp_filter=2", l->name, l->name, l->value, all, l->name);
	}
	if (all != 0) {
		return err_set(err, errlen, -EPERM,
			       "rp_filter: net.ipv4.conf.all.rp_filter=%u: packets written back to %s "
			       "(from a local address, on a device without one) fail any reverse-path "
			       "check there; set routing.rp-filter = \"loose\", or all=0 with each "
			       "interface's own value (net.ipv4.conf.IF.rp_filter=2)", all, rt->tun);
	}
	return 0;
}

bool routing_rp_filter_take(struct routing *rt, char *name, size_t namelen, uint32_t *old,
			    uint32_t *effective)
{
	for (size_t i = 0; rt && i < rt->n_rpf; i++) {
		if (rt->rpf[i].announced)
			continue;
		rt->rpf[i].announced = true;
		snprintf(name, namelen, "%s", rt->rpf[i].name);
		*old = rt->rpf[i].old;
		*effective = rt->rpf[i].effective;
		return true;
	}
	return false;
}

/* Every rp_filter we changed, newest first; the state file goes unless one failed. */
void rpf_put_back_all(struct routing *rt)
{
	bool failed = false;

	for (size_t i = rt->n_rpf; i > 0; i--)
		failed |= rpf_put_back(rt->nl, rt->rpf[i - 1].ifindex, rt->rpf[i - 1].name,
				       rt->rpf[i - 1].old) < 0;
	if (rt->n_rpf && !failed && rt->rpf_state[0])
		unlink(rt->rpf_state);
}

