/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "chain.h"
#include "control.h"
#include "log.h"
#include "manager.h"
#include "routing.h"
#include "tun.h"

/* Packets handled per wake-up before other event sources get a turn. */
#define RX_BATCH 64
/* Room in front of each packet for a virtio-net header. */
#define HEADROOM 16

struct manager {
	sd_event *event;
	sd_event_source *tun_source;
	struct config *cfg;
	struct tun *tun;
	struct routing *routing;
	struct chain *chain;
	struct control *control;
	unsigned int generation;	/* config loads, 1 at start */
	uint64_t start_usec;		/* CLOCK_MONOTONIC */

	struct manager_stats stats;
	struct ratelimit io_log;

	uint8_t rxbuf[HEADROOM + PKT_MAX];
	uint8_t forgebuf[HEADROOM + PKT_MAX];
};

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
	m->io_log.interval_ns = 10ULL * 1000000000ULL;
	m->io_log.burst = 5;

	r = sd_event_default(&m->event);
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
	if (!m)
		return NULL;
	sd_event_source_disable_unref(m->tun_source);
	m->control = control_free(m->control);
	/* Routing first: while rules point at the tun, closing it drops traffic. */
	m->routing = routing_free(m->routing);
	m->tun = tun_close(m->tun);
	chain_unref(m->chain);
	config_free(m->cfg);
	sd_event_unref(m->event);
	free(m);
	return NULL;
}

static uint64_t loop_now_ns(struct manager *m)
{
	uint64_t usec = 0;

	sd_event_now(m->event, CLOCK_MONOTONIC, &usec);
	return usec * 1000;
}

static void manager_write(struct manager *m, uint8_t *data, size_t len)
{
	int r;

	/* The header room in front of data belongs to the same buffer. */
	memset(data - m->tun->hdrlen, 0, m->tun->hdrlen);
	r = tun_write(m->tun, 0, data - m->tun->hdrlen, len + m->tun->hdrlen);
	if (r < 0) {
		m->stats.write_errors++;
		if (ratelimit_allow(&m->io_log, loop_now_ns(m)))
			log_errno(LOG_WARNING, r, "write to %s (%zu bytes)", m->tun->name, len);
		return;
	}
	m->stats.tx_packets++;
	m->stats.tx_bytes += len;
}

static void manager_process(struct manager *m, uint8_t *data, size_t len, uint64_t now_ns)
{
	struct pkt p = { .data = data, .len = len, .cap = PKT_MAX };
	struct pkt forged = { .data = m->forgebuf + HEADROOM, .cap = PKT_MAX };
	int cls;

	m->stats.rx_packets++;
	m->stats.rx_bytes += len;

	cls = pkt_parse(&p);
	if (cls != PKT_OK) {
		m->stats.malformed[cls]++;
		if (log_enabled(LOG_DEBUG))
			log_debug("dropped %zu-byte packet: %s", len, pkt_class_name(cls));
		return;
	}

	switch (chain_run(m->chain, &p, &forged, now_ns)) {
	case CHAIN_ACCEPT:
		pkt_forward_compensate(&p);
		manager_write(m, p.data, p.len);
		break;
	case CHAIN_DROP:
		m->stats.dropped++;
		break;
	case CHAIN_FORGED:
		/* Delivered to the local host, not forwarded: no TTL compensation. */
		manager_write(m, forged.data, forged.len);
		break;
	}
}

static int on_tun_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	size_t hdrlen = m->tun->hdrlen;
	uint64_t now_ns = loop_now_ns(m);
	ssize_t n;
	int i;

	for (i = 0; i < RX_BATCH; i++) {
		n = tun_read(m->tun, 0, m->rxbuf + HEADROOM - hdrlen, hdrlen + PKT_MAX);
		if (n == -EAGAIN || n == -EINTR)
			break;
		if (n < 0) {
			m->stats.read_errors++;
			if (ratelimit_allow(&m->io_log, now_ns))
				log_errno(LOG_WARNING, (int)n, "read from %s", m->tun->name);
			break;
		}
		if ((size_t)n < hdrlen) {
			m->stats.malformed[PKT_TRUNCATED]++;
			continue;
		}
		manager_process(m, m->rxbuf + HEADROOM, (size_t)n - hdrlen, now_ns);
	}
	return 0;
}

static void manager_notify_status(struct manager *m, const char *state)
{
	sd_notifyf(false, "%sSTATUS=Diverting %s%s%s via %s (table %u, priority %u), %zu rules",
		   state, m->cfg->ipv4 ? "IPv4" : "", m->cfg->ipv4 && m->cfg->ipv6 ? "+" : "",
		   m->cfg->ipv6 ? "IPv6" : "", m->tun->name, m->cfg->table, m->cfg->priority,
		   chain_size(m->chain));
}

static void status_reply(struct manager *m, struct ctl_reply *reply)
{
	struct chain_stats cs;
	uint64_t now = 0;
	char key[48];
	int i;

	chain_stats(m->chain, &cs);
	sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	ctl_reply_add(reply, "version", PACKAGE_VERSION);
	ctl_reply_add_u64(reply, "pid", (uint64_t)getpid());
	ctl_reply_add_u64(reply, "uptime-sec", (now - m->start_usec) / 1000000);
	ctl_reply_add(reply, "config", m->cfg->path);
	ctl_reply_add_u64(reply, "generation", m->generation);
	ctl_reply_add(reply, "tun", m->tun->name);
	ctl_reply_addf(reply, "families", "%s%s%s", m->cfg->ipv4 ? "ipv4" : "",
		       m->cfg->ipv4 && m->cfg->ipv6 ? "," : "", m->cfg->ipv6 ? "ipv6" : "");
	ctl_reply_add_u64(reply, "table", m->cfg->table);
	ctl_reply_add_u64(reply, "priority", m->cfg->priority);
	ctl_reply_add_u64(reply, "rules", chain_size(m->chain));
	ctl_reply_add_u64(reply, "rx-packets", m->stats.rx_packets);
	ctl_reply_add_u64(reply, "rx-bytes", m->stats.rx_bytes);
	ctl_reply_add_u64(reply, "tx-packets", m->stats.tx_packets);
	ctl_reply_add_u64(reply, "tx-bytes", m->stats.tx_bytes);
	ctl_reply_add_u64(reply, "dropped-rule", m->stats.dropped);
	for (i = PKT_OK + 1; i < PKT_CLASS_MAX; i++) {
		snprintf(key, sizeof(key), "malformed-%s", pkt_class_name(i));
		ctl_reply_add_u64(reply, key, m->stats.malformed[i]);
	}
	ctl_reply_add_u64(reply, "forged", cs.forged);
	ctl_reply_add_u64(reply, "forge-refused", cs.forge_refused);
	ctl_reply_add_u64(reply, "forge-limited", cs.forge_limited);
	ctl_reply_add_u64(reply, "read-errors", m->stats.read_errors);
	ctl_reply_add_u64(reply, "write-errors", m->stats.write_errors);
	ctl_reply_add_u64(reply, "control-clients", control_clients(m->control));
}

static int on_control(void *userdata, const struct ctl_request *req, bool privileged,
		      struct ctl_reply *reply)
{
	struct manager *m = userdata;

	if (strcmp(req->command, "get") == 0 && strcmp(req->arg, "status") == 0) {
		status_reply(m, reply);
		return 0;
	}
	return ctl_reply_error(reply, -EOPNOTSUPP, "unknown request '%s=%s'", req->command,
			       req->arg);
}

/* Re-read the file and swap in its chain; on any error the running chain stays. */
static void manager_reload(struct manager *m)
{
	struct config *cfg = NULL;
	struct chain *chain = NULL;
	char err[CONFIG_ERR_MAX];
	int r;

	sd_notify(false, "RELOADING=1");
	r = config_load(m->cfg->path, &cfg, err, sizeof(err));
	if (r < 0) {
		log_error("reload failed, keeping the running rules: %s", err);
		goto out;
	}
	r = chain_new(cfg->rules, cfg->n_rules, &chain, err, sizeof(err));
	if (r < 0) {
		log_error("reload failed, keeping the running rules: %s: %s", cfg->path, err);
		goto out;
	}
	if (!config_routing_equal(m->cfg, cfg))
		log_warning("%s: tun, routing or control settings changed; they take effect at the next restart",
			    cfg->path);
	chain_unref(m->chain);
	m->chain = chain;
	m->generation++;
	log_info("reloaded %s: %zu rules (generation %u)", cfg->path, chain_size(chain),
		 m->generation);
out:
	config_free(cfg);
	manager_notify_status(m, "READY=1\n");
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;

	if (si->ssi_signo == SIGHUP) {
		manager_reload(m);
		return 0;
	}
	log_info("received %s, shutting down", strsignal(si->ssi_signo));
	sd_notify(false, "STOPPING=1");
	return sd_event_exit(m->event, 0);
}

int manager_start(struct manager *m)
{
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP };
	char err[CONFIG_ERR_MAX];
	sigset_t mask;
	unsigned int i;
	int r;

	r = chain_new(m->cfg->rules, m->cfg->n_rules, &m->chain, err, sizeof(err));
	if (r < 0) {
		log_error("%s: %s", m->cfg->path, err);
		return r;
	}
	/* The tc/eBPF fast path is not part of this version. */
	if (m->cfg->fastpath == FASTPATH_ON) {
		log_error("%s: fastpath = \"on\", but this version of ipmodd has no fast path; "
			  "use \"auto\" or \"off\"", m->cfg->path);
		return -EOPNOTSUPP;
	}
	if (m->cfg->fastpath == FASTPATH_AUTO)
		log_info("no eBPF fast path in this version: every packet takes the userspace path");

	sigemptyset(&mask);
	for (i = 0; i < ARRAY_SIZE(signals); i++)
		sigaddset(&mask, signals[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	for (i = 0; i < ARRAY_SIZE(signals); i++) {
		r = sd_event_add_signal(m->event, NULL, signals[i], on_signal, m);
		if (r < 0)
			return log_errno(LOG_ERR, r, "signal handler");
	}

	/* Opening first makes a second instance fail here, before it touches routing. */
	r = tun_open(m->cfg->tun_name, 1, &m->tun);
	if (r == -EBUSY)
		return log_errno(LOG_ERR, r, "%s is in use (is another ipmodd running?)",
				 m->cfg->tun_name);
	if (r < 0)
		return log_errno(LOG_ERR, r, "cannot create tun device %s", m->cfg->tun_name);

	r = control_new(m->event, m->cfg->control_socket, m->cfg->control_group, on_control, m,
			&m->control);
	if (r == -EADDRINUSE)
		return log_errno(LOG_ERR, r, "%s: another ipmodd answers there",
				 m->cfg->control_socket);
	if (r == -ENOENT && m->cfg->control_group[0])
		return log_errno(LOG_ERR, r, "control socket group '%s'", m->cfg->control_group);
	if (r < 0)
		return log_errno(LOG_ERR, r, "control socket %s", m->cfg->control_socket);

	r = routing_cleanup(m->cfg, err, sizeof(err));
	if (r < 0)
		return log_errno(LOG_ERR, r, "removing stale routing: %s", err);
	if (r > 0)
		log_notice("removed %d stale rules/routes left by a previous instance", r);

	r = routing_install(m->cfg, m->tun->ifindex, &m->routing, err, sizeof(err));
	if (r < 0) {
		log_error("installing routing failed, nothing left behind: %s", err);
		return r;
	}

	r = sd_event_add_io(m->event, &m->tun_source, m->tun->fds[0], EPOLLIN, on_tun_readable, m);
	if (r < 0)
		return log_errno(LOG_ERR, r, "watching %s", m->tun->name);
	r = sd_event_set_watchdog(m->event, true);
	if (r < 0)
		return log_errno(LOG_ERR, r, "watchdog");

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

	r = sd_event_loop(m->event);
	if (r < 0)
		return log_errno(LOG_ERR, r, "event loop");
	return r;
}
