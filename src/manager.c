/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "chain.h"
#include "control.h"
#include "fastpath.h"
#include "guardian.h"
#include "log.h"
#include "manager.h"
#include "monitor.h"
#include "netlink.h"
#include "probe.h"
#include "reinject.h"
#include "routing.h"
#include "tun.h"
#include "tunring.h"
#include "watch.h"

_Static_assert(CONFIG_QUEUES_MAX <= TUN_QUEUES_MAX, "tun.queues beyond the tun's queues");

static void manager_stop_inbound(struct manager *m);

int manager_new(struct config *cfg, struct manager **ret)
{
	struct manager *m;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m) {
		config_free(cfg);
		return -ENOMEM;
	}
	m->cfg = cfg;
	m->path.m = m;
	m->path.stop_fd = -1;
	m->wake_fd = -1;
	/* Decoy payloads and IPv6 fragment ids: unpredictable enough, not secret. */
	m->surgery_rng = manager_clock_ns() ^ ((uint64_t)getpid() << 32);
	pthread_mutex_init(&m->lock, NULL);
	sem_init(&m->ring_ready, 0, 0);
	m->io_log.interval_ns = 10ULL * 1000000000ULL;
	m->io_log.burst = 5;
	m->audit_log.interval_ns = 10ULL * 1000000000ULL;
	m->audit_log.burst = 20;

	r = sd_event_default(&m->event);
	if (r < 0)
		goto fail;
	r = monitor_new(&m->monitor);
	if (r < 0)
		goto fail;
	r = flow_table_new(&(struct flow_params){ .max_entries = cfg->flows_max }, &m->flows);
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;
fail:
	manager_free(m);
	return r;
}

struct manager *manager_free(struct manager *m)
{
	size_t n;

	if (!m)
		return NULL;
	/* First: from here on nothing runs beside this thread. */
	manager_workers_stop(m);
	/* Before the routing goes, so that it does not act on a teardown. */
	m->guardian = guardian_stop(m->guardian);
	sd_event_source_disable_unref(m->health_timer);
	sd_event_source_disable_unref(m->tun_source);
	sd_event_source_disable_unref(m->impair_timer);
	sd_event_source_disable_unref(m->expire_timer);
	/* Delayed copies are released, not sent: the routing is about to go. */
	n = impair_queue_len(&m->impair_queue);
	if (n)
		log_info("discarding %zu delayed packets (%zu bytes) at shutdown", n,
			 impair_queue_bytes(&m->impair_queue));
	impair_queue_done(&m->impair_queue);
	/* Closing the control's streams unsubscribes them from the monitor. */
	m->control = control_free(m->control);
	/* After the control: its waiting clients went without an answer. */
	manager_reload_stop(m);
	m->monitor = monitor_free(m->monitor);
	/* Its own teardown is no event for the watch. */
	m->watch = watch_free(m->watch);
	/* Out of divert, off the inbound tuns' egress, before they go. */
	manager_fastpath_in_close(m);
	/* Before the impairment queue's destinations and the routing go. */
	manager_stop_inbound(m);
	/* Routing first: while rules point at the tun, closing it drops traffic. */
	m->routing = routing_free(m->routing);
	/* The fast path's slot holds the re-injection program: emptied before it goes. */
	if (m->fastpath)
		fastpath_set_next(m->fastpath, -1, NULL, 0);
	/* The filter would go with the tun; detaching first says so in the code. */
	m->reinject = reinject_close(m->reinject);
	m->fastpath = fastpath_close(m->fastpath);
	/* Its reads hold the tun's file: they end before it closes. */
	m->path.ring = tunring_free(m->path.ring);
	m->tun = tun_close(m->tun);
	chain_unref(m->chain);
	m->flows = flow_table_free(m->flows);
	config_free(m->cfg);
	sd_event_unref(m->event);
	pthread_mutex_destroy(&m->lock);
	sem_destroy(&m->ring_ready);
	manager_path_release(&m->path);
	free(m);
	return NULL;
}

void manager_notify_status(struct manager *m, const char *state)
{
	sd_notifyf(false, "%sSTATUS=Diverting %s%s%s via %s (table %u, priority %u), %zu rules",
		   state, m->cfg->ipv4 ? "IPv4" : "", m->cfg->ipv4 && m->cfg->ipv6 ? "+" : "",
		   m->cfg->ipv6 ? "IPv6" : "", m->tun->name, m->cfg->table, m->cfg->priority,
		   chain_size(m->chain));
}

/* A queued copy whose rule the new chain has no more: its id is not there. */
static bool impair_owner_gone(void *userdata, uint32_t owner)
{
	return chain_find_id(userdata, owner) < 0;
}

/* The expire timer at the chain's earliest deadline, or off. */
static void expire_arm(struct manager *m)
{
	uint64_t at_ns = 0;
	int r;

	if (!m->expire_timer)
		return;
	if (!chain_next_expiry(m->chain, &at_ns)) {
		sd_event_source_set_enabled(m->expire_timer, SD_EVENT_OFF);
		return;
	}
	r = sd_event_source_set_time(m->expire_timer, at_ns / 1000 + (at_ns % 1000 != 0));
	if (r >= 0)
		r = sd_event_source_set_enabled(m->expire_timer, SD_EVENT_ONESHOT);
	if (r < 0)
		log_errno(LOG_WARNING, r, "arming the expire timer");
}

int manager_remove_rules(struct manager *m, manager_pick_fn drop, void *userdata, char *err,
			 size_t errlen)
{
	_cleanup_(freep) struct rule **v = NULL;
	size_t n = chain_size(m->chain), k = 0;
	struct chain *chain = NULL;
	int r;

	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	/* chain_new() only reads the rules it copies. */
	for (size_t i = 0; i < n; i++)
		if (!drop(m->chain, i, userdata))
			v[k++] = (struct rule *)chain_rule(m->chain, i);
	if (k == n)
		return 0;
	r = chain_new_from(v, k, m->chain, &chain, err, errlen);
	if (r < 0)
		return r;
	manager_set_chain(m, chain, true);
	return (int)(n - k);
}

struct expired {
	struct manager *m;
	uint64_t now_ns;
};

static bool pick_expired(const struct chain *c, size_t i, void *userdata)
{
	struct expired *e = userdata;
	uint64_t at = chain_rule_expire_at(c, i);
	const struct rule *r = chain_rule(c, i);

	if (!at || at > e->now_ns)
		return false;
	log_notice("rule '%s' expired (expire=%u ms): removed", rule_name(r),
		   r->expire_ms);
	e->m->stats.rules_expired++;
	return true;
}

static int on_expire_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct expired e = { .m = userdata, .now_ns = manager_clock_ns() };
	char err[ERR_MAX];
	int r;

	r = manager_remove_rules(e.m, pick_expired, &e, err, sizeof(err));
	if (r < 0)
		log_error("removing expired rules: %s", r == -ENOMEM ? "out of memory" : err);
	if (r > 0)
		manager_notify_status(e.m, "");
	expire_arm(e.m);
	return 0;
}

#define UPDATE_FAILED "updating the rules failed: "

void manager_set_chain(struct manager *m, struct chain *chain, bool modified)
{
	/* The message goes behind UPDATE_FAILED into a reason of ERR_MAX. */
	char err[ERR_MAX - sizeof(UPDATE_FAILED) + 1];
	size_t n;
	int r;

	/* Unchanged rules keep their ids: their copies stay queued, and leave on time. */
	chain_inherit(chain, m->chain);
	/* The kernel's counters follow the ids, so this comes after chain_inherit(). */
	if (m->fastpath) {
		r = fastpath_update(m->fastpath, chain, err, sizeof(err));
		if (r < 0) {
			/* The kernel must not go on with the old rules: userspace takes over. */
			m->fastpath = fastpath_close(m->fastpath);
			snprintf(m->fastpath_reason, sizeof(m->fastpath_reason),
				 UPDATE_FAILED "%s", err);
			log_error("eBPF fast path: %s; every packet takes the userspace path from now on",
				  m->fastpath_reason);
		}
	}
	if (m->fastpath_in) {
		r = fastpath_update(m->fastpath_in, chain, err, sizeof(err));
		if (r < 0) {
			manager_fastpath_in_close(m);
			snprintf(m->fastpath_in_reason, sizeof(m->fastpath_in_reason),
				 UPDATE_FAILED "%s", err);
			log_error("inbound eBPF fast path: %s; every inbound packet takes the userspace "
				  "path from now on", m->fastpath_in_reason);
		}
	}
	n = impair_queue_flush_pick(&m->impair_queue, impair_owner_gone, NULL, chain);
	if (n) {
		m->stats.impair_flushed += n;
		log_info("discarded %zu delayed packets of deleted or changed rules", n);
		manager_impair_arm(m);
	}
	chain_unref(m->chain);
	m->chain = chain;
	m->generation++;
	m->modified = modified;
	/* New and changed rules with expire= start their time now. */
	chain_expiry_start(m->chain, manager_clock_ns());
	expire_arm(m);
	/* A trace's rule= may have moved into or out of the kernel. */
	manager_fastpath_watch(m);
}

static bool tun_input_pending(struct manager *m)
{
	struct pollfd p[TUN_QUEUES_MAX];
	unsigned int q;

	for (q = 0; q < m->tun->n_queues; q++)
		p[q] = (struct pollfd){ .fd = m->tun->fds[q], .events = POLLIN };
	return poll(p, q, 0) > 0;
}

/*
 * The packet path is healthy when it read packets since the last check, or
 * has nothing to read.  Only then the watchdog is fed and the guardian sees
 * a heartbeat; a loop that is stuck, stopped or spinning elsewhere feeds
 * neither, since this runs on the same loop.  With workers, any of them
 * reading counts: a worker that hangs holding the lock stops the loop too,
 * and one that hangs without it leaves its queue unread.
 */
static int on_health(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	char err[CONFIG_ERR_MAX];
	unsigned int trips;
	int r;

	if (m->stats.rx_packets != m->health_rx || !tun_input_pending(m)) {
		guardian_beat(m->guardian);
		for (unsigned int i = 0; i < m->n_inbound; i++)
			inbound_heartbeat(m->inbound[i].ib, manager_clock_ns());
		if (m->watchdog_usec)
			sd_notify(false, "WATCHDOG=1");
	} else {
		m->stats.unhealthy_ticks++;
	}
	m->health_rx = m->stats.rx_packets;
	/* Idle flows go a bounded number at a time; a lookup never returns an expired one. */
	flow_expire(m->flows, manager_clock_ns(), MANAGER_FLOW_EXPIRE_BUDGET);

	trips = guardian_take_trips(m->guardian);
	if (trips) {
		m->stats.stall_trips += trips;
		r = routing_restore(m->routing, err, sizeof(err));
		if (r < 0)
			log_error("the packet loop stalled for more than %u ms and the guardian stopped the diversion; "
				  "restoring it failed: %s", m->cfg->stall_timeout_ms, err);
		else
			log_warning("the packet loop stalled for more than %u ms and the guardian stopped the diversion; "
				    "running again, restored %d rules", m->cfg->stall_timeout_ms, r);
	}
	return sd_event_source_set_time(s, usec + m->health_usec);
}

/* The watchdog and, in fail-open mode with a stall timeout, the guardian. */
static int manager_start_health(struct manager *m)
{
	uint64_t period = 250 * 1000;
	int r;

	if (sd_watchdog_enabled(false, &m->watchdog_usec) <= 0)
		m->watchdog_usec = 0;
	if (m->watchdog_usec && m->watchdog_usec / 4 < period)
		period = m->watchdog_usec / 4;
	if (!m->cfg->fail_closed && m->cfg->stall_timeout_ms) {
		if ((uint64_t)m->cfg->stall_timeout_ms * 1000 / 4 < period)
			period = (uint64_t)m->cfg->stall_timeout_ms * 1000 / 4;
		r = guardian_start(m->cfg, &m->guardian);
		if (r < 0)
			return log_errno(LOG_ERR, r, "starting the stall guardian");
		log_debug("stall guardian pid %d: stops the diversion after %u ms without progress",
			  (int)guardian_pid(m->guardian), m->cfg->stall_timeout_ms);
	}
	/* The inbound programs' heartbeat, whichever the failure mode. */
	if (m->n_inbound && m->cfg->stall_timeout_ms &&
	    (uint64_t)m->cfg->stall_timeout_ms * 1000 / 4 < period)
		period = (uint64_t)m->cfg->stall_timeout_ms * 1000 / 4;
	m->health_usec = period < 10000 ? 10000 : period;
	r = sd_event_add_time_relative(m->event, &m->health_timer, CLOCK_MONOTONIC, m->health_usec,
				       m->health_usec / 10, on_health, m);
	if (r < 0)
		return log_errno(LOG_ERR, r, "health timer");
	return sd_event_source_set_enabled(m->health_timer, SD_EVENT_ON);
}

/* Whether the kernel carries out rule i in either direction. */
static bool manager_fastpath_carried(const struct manager *m, size_t i)
{
	return (m->fastpath && fastpath_rule_carried(m->fastpath, i)) ||
	       (m->fastpath_in && fastpath_rule_carried(m->fastpath_in, i));
}

/*
 * Userspace sees every packet that may match a rule the kernel does not
 * carry out (the kernel hands it over untouched, and an earlier verdict
 * stops it in either place), and no packet can match a rule the chain does
 * not hold.  Only a subscriber to those rules leaves the fast path on.
 */
static bool rule_seen_by_userspace(void *userdata, const char *rule)
{
	struct manager *m = userdata;
	int i = chain_find(m->chain, rule);

	return i < 0 || !manager_fastpath_carried(m, (size_t)i);
}

void manager_fastpath_watch(struct manager *m)
{
	bool on = !monitor_wants_unseen(m->monitor, rule_seen_by_userspace, m);

	if (m->fastpath)
		fastpath_set_enabled(m->fastpath, on);
	if (m->fastpath_in)
		fastpath_set_enabled(m->fastpath_in, on);
}

/*
 * fastpath = "on": any failure stops the start, naming the step.  "auto":
 * the reason is logged and kept for the status, and userspace does it all.
 */
static int manager_start_fastpath(struct manager *m)
{
	struct fastpath_info fi;
	char err[ERR_MAX];
	int r;

	if (m->cfg->fastpath == FASTPATH_OFF) {
		snprintf(m->fastpath_reason, sizeof(m->fastpath_reason), "fastpath = \"off\"");
		return 0;
	}
	r = fastpath_open(m->tun->ifindex, PKT_DIR_OUT, &m->fastpath, err, sizeof(err));
	if (r >= 0) {
		r = fastpath_update(m->fastpath, m->chain, err, sizeof(err));
		if (r < 0)
			m->fastpath = fastpath_close(m->fastpath);
	}
	if (r < 0) {
		snprintf(m->fastpath_reason, sizeof(m->fastpath_reason), "%s", err);
		if (m->cfg->fastpath == FASTPATH_ON)
			return log_errno(LOG_ERR, r, "%s: fastpath = \"on\", but the eBPF fast path "
					 "is unavailable: %s", m->cfg->path, err);
		if (!fastpath_built())
			log_info("eBPF fast path not built into this ipmodd: every packet takes the userspace path");
		else
			log_notice("eBPF fast path unavailable, every packet takes the userspace path: %s",
				   err);
		return 0;
	}
	manager_fastpath_watch(m);
	fastpath_info(m->fastpath, &fi);
	log_info("eBPF fast path on %s (%s): the kernel carries out %zu of the first %zu rules%s",
		 m->tun->name, fastpath_attach_name(m->fastpath), fi.rules, fi.rules + fi.punts,
		 fi.whole ? "" : ", the rest of the chain is left to userspace");
	return 0;
}

/*
 * Take the inbound fast path out of every divert first (the kernel then
 * sends every packet to the tuns), then close it.
 */
void manager_fastpath_in_close(struct manager *m)
{
	char err[ERR_MAX];

	if (!m->fastpath_in)
		return;
	for (unsigned int i = 0; i < m->n_inbound; i++) {
		struct manager_inbound *in = &m->inbound[i];

		if (in->ib && inbound_set_fast(in->ib, -1, err, sizeof(err)) < 0)
			log_error("inbound fast path on %s: %s", in->ifname, err);
	}
	m->fastpath_in = fastpath_close(m->fastpath_in);
}

/*
 * The inbound fast path runs on the uplinks' ingress, tail-called by each
 * divert (one program and its rules for all of them); where the kernel
 * refuses that program, on the inbound tuns' egress.
 */
int manager_start_fastpath_in(struct manager *m)
{
	int ifindex[CONFIG_INBOUND_MAX], fd;
	size_t n = m->n_inbound;
	struct fastpath_info fi;
	char err[ERR_MAX];
	int r = 0;

	_Static_assert(CONFIG_INBOUND_MAX <= FASTPATH_IFACES_MAX, "one instance for every inbound tun");
	if (!n)
		return 0;
	if (m->cfg->fastpath == FASTPATH_OFF) {
		snprintf(m->fastpath_in_reason, sizeof(m->fastpath_in_reason), "fastpath = \"off\"");
		return 0;
	}
	for (size_t k = 0; k < n && k < CONFIG_INBOUND_MAX; k++)
		ifindex[k] = m->inbound[k].tun->ifindex;
	r = fastpath_open_in(ifindex, n, &m->fastpath_in, err, sizeof(err));
	if (r >= 0)
		r = fastpath_update(m->fastpath_in, m->chain, err, sizeof(err));
	/* The rules are in: only now does divert hand packets to it. */
	fd = r >= 0 ? fastpath_uplink_fd(m->fastpath_in) : -1;
	for (size_t k = 0; fd >= 0 && r >= 0 && k < n; k++) {
		r = inbound_set_fast(m->inbound[k].ib, fd, err, sizeof(err));
		if (r < 0)
			snprintf(err + strlen(err), sizeof(err) - strlen(err), " (%s)",
				 m->inbound[k].ifname);
	}
	if (r < 0) {
		manager_fastpath_in_close(m);
		snprintf(m->fastpath_in_reason, sizeof(m->fastpath_in_reason), "%s", err);
		if (m->cfg->fastpath == FASTPATH_ON)
			return log_errno(LOG_ERR, r, "%s: fastpath = \"on\", but the inbound eBPF fast "
					 "path is unavailable: %s", m->cfg->path, err);
		log_notice("inbound eBPF fast path unavailable, every inbound packet takes the "
			   "userspace path: %s", err);
		return 0;
	}
	manager_fastpath_watch(m);
	fastpath_info(m->fastpath_in, &fi);
	if (fd < 0)
		log_notice("inbound eBPF fast path: the kernel refused the uplink's program (%s); "
			   "running on the inbound tuns' egress instead",
			   fastpath_uplink_error(m->fastpath_in));
	log_info("inbound eBPF fast path on the %s of %zu %s%s: the kernel carries out %zu of "
		 "the first %zu inbound rules%s", fd >= 0 ? "ingress" : "egress", n,
		 fd >= 0 ? "uplink" : "inbound tun", n == 1 ? "" : "s", fi.rules, fi.rules + fi.punts,
		 fi.whole ? "" : ", the rest of the chain is left to userspace");
	return 0;
}

/* The rule a firewall with a dropping forward policy needs, in its own words. */
static void manager_self_check_fix(struct manager *m, int family, char *buf, size_t len)
{
	const char *tun = m->tun->name;

	snprintf(buf, len,
		 "nft insert rule inet filter forward iifname \"%s\" accept, or %s -I FORWARD -i %s "
		 "-j ACCEPT (Docker: -I DOCKER-USER)", tun, family == AF_INET ? "iptables" : "ip6tables",
		 tun);
}

/*
 * On the forwarding path, a packet written back to the tun is a forwarded
 * packet: one per family is written and must be seen leaving (probe.h).
 * A host where it does not is a host cut off: the start fails, and the
 * routing goes with the manager (failure = "closed" keeps its block).  The
 * caller runs it only when the forwarding path carries the written-back
 * packets.
 */
static int manager_self_check(struct manager *m)
{
	static const int families[] = { AF_INET, AF_INET6 };
	char err[ERR_MAX], fix[256], dst[INET6_ADDRSTRLEN], src[INET6_ADDRSTRLEN];
	struct probe_target t;
	struct probe_result res;
	int r;

	if (!m->cfg->self_check) {
		log_info("self-check off (routing.self-check = false): not checking that packets "
			 "written back to %s leave the host", m->tun->name);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		int family = families[i];
		const char *fam = family == AF_INET ? "IPv4" : "IPv6";

		if (family == AF_INET ? !m->cfg->ipv4 : !m->cfg->ipv6)
			continue;
		r = probe_target(family, m->tun->ifindex, &t, err, sizeof(err));
		if (r == -ENETUNREACH || r == -ENETDOWN) {
			log_info("self-check (%s) skipped: %s, no way out to check", fam, err);
			continue;
		}
		if (r < 0)
			return log_errno(LOG_ERR, r, "self-check (%s): %s", fam, err);
		inet_ntop(family, t.dst, dst, sizeof(dst));
		inet_ntop(family, t.src, src, sizeof(src));
		r = probe_run(m->tun, &t, &res, err, sizeof(err));
		if (r == -EPERM || r == -EAFNOSUPPORT) {
			log_warning("self-check not possible, packets written back to %s are not checked: "
				    "%s (it needs CAP_NET_RAW, and AF_PACKET in a unit's "
				    "RestrictAddressFamilies=)", m->tun->name, err);
			return 0;
		}
		if (r == -EHOSTUNREACH) {
			log_warning("self-check (%s) inconclusive: a UDP packet %s -> %s was %s: nothing "
				    "leaves there, with or without ipmodd; going on", fam, src, dst, err);
			continue;
		}
		if (r == 0) {
			log_info("self-check (%s): a packet written back to %s left through %s in "
				 "%llu.%03llu ms (UDP %s -> %s)", fam, m->tun->name, res.ifname,
				 (unsigned long long)(res.usec / 1000),
				 (unsigned long long)(res.usec % 1000), src, dst);
			continue;
		}
		if (r != -ETIMEDOUT)
			return log_errno(LOG_ERR, r, "self-check (%s): %s", fam, err);
		manager_self_check_fix(m, family, fix, sizeof(fix));
		log_error("self-check (%s): packets written back to %s do not leave the host: a UDP "
			  "packet %s -> %s%s, routed out of %s, was %s (%u tries); they are forwarded, "
			  "and the FORWARD hook of netfilter drops them (a forward chain with policy "
			  "drop: nftables, Docker's iptables -P FORWARD DROP, ufw, firewalld). Accept "
			  "them: %s; or let the BPF re-injection send them (routing.reinject = \"bpf\"); "
			  "routing.self-check = false starts anyway. Not starting: the host would be "
			  "cut off", fam, m->tun->name, src, dst, t.gateway ? " (the gateway)" : "",
			  t.oif_name, err, res.tries, fix);
		if (m->cfg->fail_closed) {
			routing_keep_block(m->routing);
			log_notice("failure = \"closed\": diverted traffic stays blocked (unreachable in "
				   "table %u) until ipmodd runs again or \"ipmodd --unblock\"",
				   m->cfg->table);
		}
		return -EHOSTUNREACH;
	}
	return 0;
}

/*
 * routing.reinject = "bpf": any failure stops the start.  "auto": the
 * reason is logged and kept for the status, and the kernel forwards.
 */
static int manager_start_reinject(struct manager *m)
{
	char err[ERR_MAX];
	int r;

	if (m->cfg->reinject == REINJECT_FORWARD) {
		snprintf(m->reinject_reason, sizeof(m->reinject_reason),
			 "routing.reinject = \"forward\"");
		return 0;
	}
	r = reinject_open(m->tun->ifindex, &m->reinject, err, sizeof(err));
	if (r < 0) {
		snprintf(m->reinject_reason, sizeof(m->reinject_reason), "%s", err);
		if (m->cfg->reinject == REINJECT_BPF)
			return log_errno(LOG_ERR, r, "%s: routing.reinject = \"bpf\", but the "
					 "re-injection program is unavailable: %s", m->cfg->path, err);
		log_notice("written-back packets are forwarded by the kernel (forward chains apply): "
			   "re-injection program unavailable: %s", err);
		return 0;
	}
	log_info("%s: the host's own written-back packets leave without forwarding "
		 "(re-injection program on its ingress, %s)", m->tun->name,
		 reinject_attach_name(m->reinject));
	return 0;
}

/*
 * The outbound fast path hands the packets it rewrote straight to the
 * re-injection program (its egress variant, fastpath_set_next()) when both
 * run: the packets skip the backlog trip to the tun's ingress.  Where that
 * fails, once at the start, it is logged and the reason kept for the
 * status: the packets take the tun's ingress as before, nothing else changes.
 */
static void manager_start_direct(struct manager *m)
{
	char err[ERR_MAX];
	int fd, r;

	if (!m->fastpath || !m->reinject) {
		snprintf(m->direct_reason, sizeof(m->direct_reason), "%s",
			 !m->fastpath ? "no fast path" : "no re-injection program");
		return;
	}
	fd = reinject_egress_fd(m->reinject, err, sizeof(err));
	r = fd < 0 ? fd : fastpath_set_next(m->fastpath, fd, err, sizeof(err));
	if (r < 0) {
		snprintf(m->direct_reason, sizeof(m->direct_reason), "%s", err);
		log_notice("%s: the fast path's packets go through its ingress to the re-injection "
			   "program (one trip more per packet): %s", m->tun->name, err);
		return;
	}
	m->direct_reason[0] = '\0';
	log_info("%s: the fast path hands its packets straight to the re-injection program",
		 m->tun->name);
}

/* What inbound.interfaces needs and can be known before anything is touched. */
static int manager_check_inbound(struct manager *m)
{
	if (!m->cfg->n_inbound)
		return 0;
	if (!inbound_built())
		return log_errno(LOG_ERR, -EOPNOTSUPP, "%s: inbound.interfaces is set, but this ipmodd "
				 "was built without eBPF (configure --enable-fastpath=no, or no clang, "
				 "bpftool or libbpf at build time): not starting", m->cfg->path);
	for (unsigned int i = 0; i < m->cfg->n_inbound; i++)
		if (!if_nametoindex(m->cfg->inbound_ifnames[i]))
			return log_errno(LOG_ERR, -ENODEV, "%s: inbound.interfaces: no interface %s "
					 "here: not starting", m->cfg->path, m->cfg->inbound_ifnames[i]);
	return 0;
}

/*
 * An inbound tun carries no traffic of its own: no address (not even a
 * link-local one), up, the largest MTU (GRO super-packets come whole), a
 * long queue like the tun's.
 */
static int inbound_tun_setup(int ifindex)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct nl_link noaddr = { .ifindex = ifindex, .ipv6_no_addr = true };
	struct nl_link l = { .ifindex = ifindex, .mtu = 65535, .txqlen = 4096, .up = true };
	struct nl *nl = NULL;
	int r;

	r = nl_open(&nl);
	if (r < 0)
		return r;
	r = nl_build_setlink(buf, sizeof(buf), &noaddr);
	if (r >= 0)
		r = nl_request(nl, buf, NULL, NULL);
	/* A kernel without IPv6 has no addrgenmode to set. */
	if (r < 0 && r != -EAFNOSUPPORT && r != -EOPNOTSUPP)
		goto out;
	r = nl_build_setlink(buf, sizeof(buf), &l);
	if (r >= 0)
		r = nl_request(nl, buf, NULL, NULL);
out:
	nl_close(nl);
	return r < 0 ? r : 0;
}

/*
 * inbound.interfaces: an inbound tun per interface (named after the tun),
 * the programs loaded and attached, a packet path each in the loop.  Any
 * failure stops the start, naming the interface and the step: nothing of
 * it is optional once configured.
 */
static int manager_start_inbound(struct manager *m)
{
	char err[ERR_MAX], name[IFNAMSIZ];
	int r;

	if (!m->cfg->n_inbound)
		return 0;
	for (unsigned int i = 0; i < m->cfg->n_inbound; i++) {
		struct manager_inbound *in = &m->inbound[i];
		struct inbound_params ip = {
			.uplink = m->cfg->inbound_ifnames[i],
			.fail_closed = m->cfg->fail_closed,
			.stall_timeout_ms = m->cfg->stall_timeout_ms,
			/* A tc filter outlives the daemon and can keep dropping; a tcx link cannot. */
			.force_tc = m->cfg->fail_closed,
		};

		snprintf(in->ifname, sizeof(in->ifname), "%s", m->cfg->inbound_ifnames[i]);
		inbound_tun_name(m->cfg->tun_name, i, name);
		/* As many queues as the tun: the kernel spreads the flows over them alike. */
		r = tun_open(name, m->tun->n_queues, m->cfg->offload, &in->tun);
		if (r == -EBUSY)
			return log_errno(LOG_ERR, r, "inbound tun %s for %s is in use (is another ipmodd "
					 "running?)", name, in->ifname);
		if (r < 0)
			return log_errno(LOG_ERR, r, "cannot create the inbound tun %s for %s", name,
					 in->ifname);
		m->n_inbound = i + 1;
		/* Forged answers and queued copies move between the tuns with their header room. */
		if (in->tun->hdrlen != m->tun->hdrlen)
			return log_errno(LOG_ERR, -EINVAL, "%s and %s disagree on the virtio-net header "
					 "(%zu, %zu bytes)", m->tun->name, name, m->tun->hdrlen,
					 in->tun->hdrlen);
		r = inbound_tun_setup(in->tun->ifindex);
		if (r < 0)
			return log_errno(LOG_ERR, r, "setting up the inbound tun %s", name);
		ip.tun_ifindex = in->tun->ifindex;
		r = inbound_open(&ip, &in->ib, err, sizeof(err));
		if (r == -EPERM || r == -EACCES)
			return log_errno(LOG_ERR, r, "inbound.interfaces: %s: the kernel refuses the "
					 "BPF programs (ipmodd needs CAP_BPF and CAP_NET_ADMIN, or "
					 "CAP_SYS_ADMIN, and a kernel with BPF): %s; not starting",
					 in->ifname, err);
		if (r < 0)
			return log_errno(LOG_ERR, r, "inbound.interfaces: %s: %s; not starting",
					 in->ifname, err);
		in->path = calloc(in->tun->n_queues, sizeof(*in->path));
		if (!in->path)
			return log_errno(LOG_ERR, -ENOMEM, "inbound packet path");
		for (unsigned int q = 0; q < in->tun->n_queues; q++) {
			in->path[q].m = m;
			in->path[q].tun = in->tun;
			in->path[q].queue = q;
			in->path[q].dir = PKT_DIR_IN;
			in->path[q].dest = (uint8_t)(i + 1);
			in->path[q].stop_fd = -1;
		}
		log_info("%s: received IPv4/IPv6 packets diverted through %s (%s, %u queue%s)",
			 in->ifname, name, inbound_attach_name(in->ib), in->tun->n_queues,
			 in->tun->n_queues > 1 ? "s, a packet worker each" : "");
		/* Several queues: the workers read them (manager_workers_start()). */
		if (in->tun->n_queues > 1)
			continue;
		r = manager_path_watch(in->path, &in->source);
		if (r < 0)
			return log_errno(LOG_ERR, r, "watching %s", name);
	}
	return 0;
}

/* The watch's extra repair: inbound tc filters someone removed go back. */
static int inbound_repair(void *userdata, char *item, size_t itemlen, char *err, size_t errlen)
{
	struct manager *m = userdata;
	int n = 0, r;

	for (unsigned int i = 0; i < m->n_inbound; i++) {
		struct manager_inbound *in = &m->inbound[i];

		r = inbound_filter_present(in->ib);
		if (r == 0)
			r = inbound_reattach(in->ib, err, errlen);
		else if (r > 0)
			continue;
		if (r < 0) {
			snprintf(err + strlen(err), errlen - strlen(err), " (inbound filter on %s)",
				 in->ifname);
			return r;
		}
		snprintf(item, itemlen, "inbound tc filter on %s", in->ifname);
		m->stats.inbound_repairs++;
		n++;
	}
	return n;
}

/* Detach first (nothing more is diverted), then close the tuns. */
static void manager_stop_inbound(struct manager *m)
{
	for (unsigned int i = 0; i < m->n_inbound; i++) {
		struct manager_inbound *in = &m->inbound[i];

		in->source = sd_event_source_disable_unref(in->source);
		in->ib = inbound_close(in->ib);
		/* Its rings' reads hold the tun's files: they end before it closes. */
		for (unsigned int q = 0; in->path && q < in->tun->n_queues; q++)
			manager_path_release(&in->path[q]);
		free(in->path);
		in->path = NULL;
		in->tun = tun_close(in->tun);
	}
	m->n_inbound = 0;
}

/*
 * IPv6 comes back out of the tun through the re-injection program, or
 * through the kernel's forwarding with force_forwarding (6.17).  families =
 * "auto" leaves IPv6 alone without either; an explicit "ipv6" cannot start.
 */
static int manager_check_ipv6(struct manager *m)
{
	int r;

	if (!m->cfg->ipv6 || m->reinject)
		return 0;
	r = routing_has_force_forwarding(m->tun->name);
	if (r < 0)
		return log_errno(LOG_ERR, r, "looking for net.ipv6.conf.%s.force_forwarding",
				 m->tun->name);
	if (r > 0)
		return 0;
	if (m->cfg->ipv6_auto) {
		m->cfg->ipv6 = false;
		m->ipv6_left = true;
		log_warning("IPv6 is not diverted: the kernel has no force_forwarding (< 6.17) and the "
			    "re-injection program is off (%s)", m->reinject_reason);
		if (!m->cfg->ipv4)
			return log_errno(LOG_ERR, -EOPNOTSUPP, "nothing left to divert");
		return 0;
	}
	if (m->cfg->families_line)
		log_error("%s:%d: routing.families: ipv6: kernel < 6.17 has no force_forwarding: "
			  "enable routing.reinject (CAP_BPF, kernel >= 5.10) or remove ipv6 from "
			  "routing.families (re-injection: %s)", m->cfg->path, m->cfg->families_line,
			  m->reinject_reason);
	else
		log_error("%s: IPv6: kernel < 6.17 has no force_forwarding: enable routing.reinject "
			  "(CAP_BPF, kernel >= 5.10) or set routing.families (re-injection: %s)",
			  m->cfg->path, m->reinject_reason);
	return -EOPNOTSUPP;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;
	char err[CONFIG_ERR_MAX];

	if (si->ssi_signo == SIGHUP) {
		/* Answered (audited, logged) when the build is done. */
		int r = manager_reload_request(m, NULL, (uid_t)si->ssi_uid, (pid_t)si->ssi_pid, NULL);

		if (r < 0) {
			snprintf(err, sizeof(err), "cannot start the reload: %s", strerror(-r));
			log_error("%s", err);
			manager_audit_signal(m, "reload", (uid_t)si->ssi_uid, (pid_t)si->ssi_pid, r,
					     err);
		}
		return 0;
	}
	log_info("received %s, shutting down", strsignal(si->ssi_signo));
	if (m->cfg->fail_closed) {
		routing_keep_block(m->routing);
		log_notice("failure = \"closed\": diverted traffic stays blocked (unreachable in table %u) "
			   "until ipmodd runs again or \"ipmodd --unblock\"", m->cfg->table);
	}
	sd_notify(false, "STOPPING=1");
	return sd_event_exit(m->event, 0);
}

/* tun.queues, "auto" being a queue per online CPU. */
static unsigned int manager_queues(const struct config *cfg)
{
	long n;

	if (cfg->queues)
		return cfg->queues;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > CONFIG_QUEUES_MAX ? CONFIG_QUEUES_MAX : (unsigned int)n;
}

/*
 * A live instance answers on the control socket, or holds the tun: either
 * way its tun, tc filter and routing are not stale, and are not ours to
 * share, replace or remove.
 */
static int manager_check_alone(struct manager *m)
{
	pid_t pid = 0;
	int r;

	r = control_probe(m->cfg->control_socket, &pid);
	if (r > 0 && pid > 0)
		return log_errno(LOG_ERR, -EADDRINUSE, "another ipmodd (pid %d) answers on %s; "
				 "not starting a second one", (int)pid, m->cfg->control_socket);
	if (r > 0)
		return log_errno(LOG_ERR, -EADDRINUSE, "another ipmodd answers on %s; "
				 "not starting a second one", m->cfg->control_socket);
	if (r < 0)
		return log_errno(LOG_ERR, r, "control socket %s", m->cfg->control_socket);
	r = routing_tun_held(m->cfg);
	if (r > 0)
		return log_errno(LOG_ERR, -EBUSY, "%s is held by a running process (%d queue(s) "
				 "attached; another ipmodd with a different control socket?); "
				 "not touching it, its routing or its tc filter",
				 m->cfg->tun_name, r);
	if (r < 0)
		return log_errno(LOG_ERR, r, "looking up %s", m->cfg->tun_name);
	return 0;
}

/*
 * tun.nice: the packet threads' nice value, set on the loop's thread before
 * any other thread or process starts (Linux's nice is a thread's own: the
 * workers inherit it, the reload's build thread goes to SCHED_IDLE itself).
 * A write to the tun delivers the packet in the writer's context and wakes
 * whoever receives it; at nice 0 such a receiver on the same CPU preempted
 * the daemon for every few packets it wrote (doc/PERFORMANCE.md).  Without
 * CAP_SYS_NICE a thread can only raise its nice value: the unit's Nice= sets
 * the default before the start, and a value below what the daemon was given
 * is said once and the start goes on.
 */
static void manager_set_nice(struct manager *m)
{
	int want = m->cfg->nice, was;

	errno = 0;
	was = getpriority(PRIO_PROCESS, 0);
	if (errno == 0 && was == want)
		return;
	if (setpriority(PRIO_PROCESS, 0, want) < 0) {
		log_errno(LOG_WARNING, negative_errno(),
			  "tun.nice = %d: the packet threads stay at nice %d (a lower value needs "
			  "CAP_SYS_NICE, or Nice= in the unit)", want, was);
		return;
	}
	log_debug("packet threads at nice %d", want);
}

int manager_start(struct manager *m)
{
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP };
	char err[CONFIG_ERR_MAX];
	sigset_t mask;
	unsigned int i;
	int held, r;

	r = chain_new(m->cfg->rules, m->cfg->n_rules, &m->chain, err, sizeof(err));
	if (r < 0) {
		log_error("%s: %s", m->cfg->path, err);
		return r;
	}
	sigemptyset(&mask);
	for (i = 0; i < ARRAY_SIZE(signals); i++)
		sigaddset(&mask, signals[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	for (i = 0; i < ARRAY_SIZE(signals); i++) {
		r = sd_event_add_signal(m->event, NULL, signals[i], on_signal, m);
		if (r < 0)
			return log_errno(LOG_ERR, r, "signal handler");
	}
	r = manager_reload_init(m);
	if (r < 0)
		return log_errno(LOG_ERR, r, "reload eventfd");

	/* Before anything is touched: a second instance leaves the first alone. */
	r = manager_check_alone(m);
	if (r < 0)
		return r;
	r = manager_check_inbound(m);
	if (r < 0)
		return r;
	manager_set_nice(m);
	r = tun_open(m->cfg->tun_name, manager_queues(m->cfg), m->cfg->offload, &m->tun);
	if (r == -EBUSY)
		return log_errno(LOG_ERR, r, "%s is in use (is another ipmodd running?)",
				 m->cfg->tun_name);
	if (r < 0)
		return log_errno(LOG_ERR, r, "cannot create tun device %s", m->cfg->tun_name);
	m->path.tun = m->tun;
	/* Someone attached between the check and the open: ours are not all its queues. */
	held = routing_tun_held(m->cfg);
	if (held > (int)m->tun->n_queues)
		return log_errno(LOG_ERR, -EBUSY, "%s: another process attached %d queue(s) to it "
				 "(is another ipmodd running?); refusing to share it",
				 m->tun->name, held - (int)m->tun->n_queues);
	tun_offload_name(m->tun->offload, err, sizeof(err));
	if (m->tun->offload_error)
		log_errno(LOG_WARNING, m->tun->offload_error,
			  "%s: the kernel refused the virtio-net header or offloads; packets go "
			  "through one by one, without offload", m->tun->name);
	else if (m->cfg->offload)
		log_info("%s: offload %s", m->tun->name, err);
	r = manager_start_fastpath(m);
	if (r < 0)
		return r;
	r = manager_start_reinject(m);
	if (r < 0)
		return r;
	manager_start_direct(m);
	r = manager_check_ipv6(m);
	if (r < 0)
		return r;
	/*
	 * Without a fast path or the re-injection program now, there is none
	 * for this run (a reload does not change it): CAP_BPF goes, before any
	 * thread or process starts.
	 */
	if (!m->fastpath && !m->reinject && !m->cfg->n_inbound) {
		r = caps_drop(1ULL << CAP_BPF);
		if (r < 0)
			return log_errno(LOG_ERR, r, "dropping CAP_BPF");
		log_debug("no fast path, no re-injection: CAP_BPF dropped");
	}

	r = control_new(m->event, m->cfg->control_socket, m->cfg->control_group,
			m->cfg->control_mode, manager_control, m,
			&m->control);
	if (r == -EADDRINUSE)
		return log_errno(LOG_ERR, r, "%s: another ipmodd answers there",
				 m->cfg->control_socket);
	if (r == -ENOENT && m->cfg->control_group[0])
		return log_errno(LOG_ERR, r, "control socket group '%s'", m->cfg->control_group);
	if (r == -EPERM && m->cfg->control_group[0] && geteuid() != 0)
		return log_errno(LOG_ERR, r,
				 "control socket %s: cannot give it group '%s' as uid %u "
				 "(the daemon must be a member: Group= or SupplementaryGroups= in the unit)",
				 m->cfg->control_socket, m->cfg->control_group, (unsigned int)geteuid());
	if (r < 0)
		return log_errno(LOG_ERR, r, "control socket %s", m->cfg->control_socket);

	r = routing_cleanup(m->cfg, err, sizeof(err));
	if (r < 0)
		return log_errno(LOG_ERR, r, "removing stale routing: %s", err);
	if (r > 0)
		log_notice("removed %d stale rules/routes (or put back rp_filter values) left by a "
			   "previous instance", r);

	r = routing_install(m->cfg, m->tun->ifindex, m->reinject ? ROUTING_REINJECT : 0,
			    &m->routing, err, sizeof(err));
	if (r < 0) {
		log_error("installing routing failed, nothing left behind: %s", err);
		return r;
	}
	watch_log_rp_filter(m->routing);
	r = watch_new(m->event, m->routing, &m->watch);
	if (r < 0)
		return log_errno(LOG_ERR, r, "watching the routing over rtnetlink");
	/*
	 * Written-back packets that the re-injection program does not send
	 * take the forwarding path: see that they leave.
	 */
	if (!m->reinject) {
		r = manager_self_check(m);
		if (r < 0)
			return r;
	}
	/*
	 * The self-check's AF_PACKET socket was the only use of CAP_NET_RAW:
	 * it goes before the guardian and the workers exist.
	 */
	r = caps_drop(1ULL << CAP_NET_RAW);
	if (r < 0)
		return log_errno(LOG_ERR, r, "dropping CAP_NET_RAW");

	r = impair_queue_init(&m->impair_queue, MANAGER_IMPAIR_QUEUE_PKTS,
			      MANAGER_IMPAIR_QUEUE_BYTES);
	if (r < 0)
		return log_errno(LOG_ERR, r, "impairment queue");
	/* Accuracy 1 us: a delay is a delay, not a wake-up to coalesce. */
	r = sd_event_add_time(m->event, &m->impair_timer, CLOCK_MONOTONIC, UINT64_MAX, 1,
			      manager_on_impair_timer, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->impair_timer, SD_EVENT_OFF);
	if (r < 0)
		return log_errno(LOG_ERR, r, "impairment timer");
	/* expire=: the rules of the file start their time now. */
	r = sd_event_add_time(m->event, &m->expire_timer, CLOCK_MONOTONIC, UINT64_MAX, 1000,
			      on_expire_timer, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->expire_timer, SD_EVENT_OFF);
	if (r < 0)
		return log_errno(LOG_ERR, r, "expire timer");
	chain_expiry_start(m->chain, manager_clock_ns());
	expire_arm(m);
	/* After the outbound routing is up; the heartbeat starts with the health timer. */
	r = manager_start_inbound(m);
	if (r < 0)
		return r;
	if (m->n_inbound)
		watch_set_extra(m->watch, inbound_repair, m);
	r = manager_start_fastpath_in(m);
	if (r < 0)
		return r;
	r = manager_start_health(m);
	if (r < 0)
		return r;

	/* Last: from here on the workers run packets beside the loop. */
	if (m->tun->n_queues > 1) {
		r = manager_workers_start(m);
		if (r < 0)
			return r;
		log_info("%s: %u queues, a packet worker each", m->tun->name, m->tun->n_queues);
	} else {
		r = manager_path_watch(&m->path, &m->tun_source);
		if (r < 0)
			return log_errno(LOG_ERR, r, "watching %s", m->tun->name);
	}
	if (m->cfg->tun_io == TUN_IO_URING && !m->tun_io_fallbacks)
		log_info("%s: reads through io_uring (tun.io = \"uring\")", m->tun->name);

	m->generation = 1;
	sd_event_now(m->event, CLOCK_MONOTONIC, &m->start_usec);
	log_info("diverting %s%s%s through %s (table %u, priority %u), %zu rules",
		 m->cfg->ipv4 ? "IPv4" : "", m->cfg->ipv4 && m->cfg->ipv6 ? " and " : "",
		 m->cfg->ipv6 ? "IPv6" : "", m->tun->name, m->cfg->table, m->cfg->priority,
		 chain_size(m->chain));
	manager_notify_status(m, "READY=1\n");
	return 0;
}

int manager_run(struct manager *m)
{
	int r;

	r = m->n_paths ? manager_run_locked(m) : sd_event_loop(m->event);
	if (m->tun_gone)
		return -ENODEV;	/* said already */
	if (r < 0)
		return log_errno(LOG_ERR, r, "event loop");
	return r;
}
