/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The manager owns the event loop and every object the daemon runs: the
 * configuration, the tun device, the routing it installed and the chain.
 */
#ifndef IPMODD_MANAGER_H
#define IPMODD_MANAGER_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "flow.h"
#include "control.h"
#include "impair.h"
#include "inbound.h"
#include "log.h"
#include "loopguard.h"
#include "packet.h"
#include "rule.h"
#include "util.h"

/*
 * The queue of impaired copies waiting for their departure time, shared by
 * every rule: at most this many packets and bytes at once (each rule is also
 * bounded by its limit=).  A copy beyond them is dropped and counted as its
 * rule's dropped-limit.
 */
#define MANAGER_IMPAIR_QUEUE_PKTS 100000
#define MANAGER_IMPAIR_QUEUE_BYTES (64u << 20)
/* Copies sent per wake-up of the queue's timer, so that the loop stays responsive. */
#define MANAGER_IMPAIR_BATCH 256

/* Packets count the segments of GSO super-packets, bytes their IP bytes. */
struct manager_stats {
	uint64_t rx_packets, rx_bytes;		/* read from the tun (outbound) */
	uint64_t tx_packets, tx_bytes;		/* written back to it (outbound, forged answers) */
	uint64_t in_rx_packets, in_rx_bytes;	/* read from the inbound tuns */
	uint64_t in_tx_packets, in_tx_bytes;	/* written back to them */
	uint64_t inbound_repairs;		/* inbound tc filters put back after someone removed them */
	uint64_t gso_whole, gso_split;		/* super-packets run through the chain whole, or split */
	uint64_t fastpath_decide_failed;	/* flow decisions the kernel map refused */
	uint64_t malformed[PKT_CLASS_MAX];	/* dropped by pkt_parse() class */
	uint64_t dropped;			/* dropped by a rule (nothing sent for it, at once or later) */
	uint64_t read_errors, write_errors;
	uint64_t impair_sent;			/* copies sent from the impairment queue */
	uint64_t impair_flushed;		/* copies discarded: their rule was deleted or changed */
	uint64_t rules_expired;			/* rules removed by their expire= */
	uint64_t stall_trips;			/* the guardian stopped the diversion */
	uint64_t unhealthy_ticks;		/* health checks that found the packet loop stuck */
	/* Packet surgery (rules that cut: split, ipfrag, fake). */
	uint64_t surgery_split;			/* packets split into parts */
	uint64_t surgery_parts;			/* the parts those made */
	uint64_t surgery_ipfrag;		/* packets sent as IP fragments */
	uint64_t surgery_fragments;		/* the fragments */
	uint64_t surgery_fakes;			/* decoys sent */
	uint64_t surgery_whole;			/* carried payload to cut, sent whole (surgery_whole()) */
	uint64_t surgery_errors;		/* surgery failed (no memory): sent whole */
	uint64_t reloads, reload_failures;	/* reloads swapped in, and failed */
	uint64_t reload_pause_us;		/* the loop's time in the last reload's swap */
	uint64_t reload_pause_max_us;		/* the longest of them since the start */
	uint64_t reload_build_ms;		/* the last reload's build, off the loop */
};

/* Flows examined for expiry per health check (flow_expire()). */
#define MANAGER_FLOW_EXPIRE_BUDGET 16384

/* Room in front of each packet for a virtio-net header. */
#define MANAGER_HEADROOM 16

/*
 * A packet path: one queue of the tun and the buffers a packet needs on its
 * way through the chain.  The loop has one (the only one with one queue; it
 * also sends the impairment queue's copies); with tun.queues > 1 each queue
 * has its own, run by a worker thread (manager-worker.c).
 */
struct manager_path {
	struct manager *m;
	struct tun *tun;	/* the tun it reads: m->tun, or an inbound tun */
	unsigned int queue;
	uint8_t dir;		/* enum pkt_dir of what it reads */
	uint8_t dest;		/* where what passes goes back: 0 m->tun, 1 + i inbound tun i */
	bool worker;		/* a worker thread: writes the packet after releasing the lock */
	uint64_t now_ns;	/* CLOCK_MONOTONIC of the packet being handled */
	uint64_t rx_packets;	/* read from its queue (segments) */
	bool gone;		/* its queue reads EBADFD: the tun was deleted */

	/* The one write a worker makes after it released the lock (len 0: none). */
	bool can_defer;
	uint8_t *out;		/* the header room in front of it included */
	size_t out_len;
	unsigned int out_segs;
	uint64_t out_bytes;

	pthread_t thread;
	int stop_fd;		/* eventfd: the worker stops */
	/* tun.io = "uring": its reads through io_uring (tunring.h); NULL: read(). */
	struct tunring *ring;
	/* The packet's last write from its ring buffer as a write of the ring. */
	bool ring_writes;
	uint32_t ring_id;	/* the ring buffer of the packet being handled */

	uint8_t rxbuf[MANAGER_HEADROOM + PKT_MAX];
	uint8_t forgebuf[MANAGER_HEADROOM + PKT_MAX];
	uint8_t txbuf[MANAGER_HEADROOM + PKT_MAX];	/* a copy from the impairment queue */
	uint8_t segbuf[MANAGER_HEADROOM + PKT_MAX];	/* a segment of a super-packet being split */
	uint8_t beforebuf[PKT_MAX];	/* a copy as read, while someone captures it */
	/*
	 * The arena of surgery_apply(), SURG_ARENA_SIZE(PKT_MAX) bytes: taken
	 * the first time a rule cuts a packet of this path, kept until the path
	 * goes (manager_path_release()).
	 */
	uint8_t *surgbuf;
};

/*
 * An interface of inbound.interfaces: its tun, programs and packet paths,
 * one per queue of its tun (as many as the tun's, tun.queues): the loop's
 * with one queue, else a worker's each (manager-worker.c).
 */
struct manager_inbound {
	char ifname[IFNAMSIZ];
	struct tun *tun;
	struct inbound *ib;
	struct manager_path *path;		/* tun->n_queues of them */
	unsigned int n_workers;			/* of them run by a worker, while they run */
	sd_event_source *source;		/* the loop's reads (one queue) */
};

struct manager {
	sd_event *event;
	sd_event_source *tun_source;
	struct config *cfg;
	struct tun *tun;
	struct routing *routing;
	struct watch *watch;			/* puts the routing back when others remove it */
	struct chain *chain;
	struct control *control;
	struct monitor *monitor;
	struct fastpath *fastpath;		/* NULL: every packet takes the userspace path */
	char fastpath_reason[ERR_MAX];		/* why there is none, with fastpath = "auto" */
	/* The inbound tuns' (one instance for all): NULL, inbound packets take the userspace path. */
	struct fastpath *fastpath_in;
	char fastpath_in_reason[ERR_MAX];		/* why there is none */
	struct reinject *reinject;		/* NULL: the kernel forwards written-back packets */
	char reinject_reason[ERR_MAX];		/* why there is none */
	/*
	 * Why the fast path redirects its packets to the tun's ingress rather
	 * than handing them to the re-injection program directly (empty: it does).
	 */
	char direct_reason[ERR_MAX];
	bool ipv6_left;				/* families = "auto" and IPv6 cannot be carried out */
	struct impair_queue impair_queue;	/* delayed copies, owner: the rule's id */
	sd_event_source *impair_timer;		/* CLOCK_MONOTONIC, at the earliest departure */
	sd_event_source *expire_timer;		/* CLOCK_MONOTONIC, at the earliest expire= deadline */
	bool impair_pushed;			/* the queue got copies: re-arm the timer */
	uint64_t surgery_rng;			/* splitmix64 state: seeds of surgery_apply() */
	struct guardian *guardian;		/* fail-open with a stall timeout */
	sd_event_source *health_timer;		/* WATCHDOG=1 and the guardian's heartbeat */
	uint64_t health_usec;			/* its period */
	uint64_t watchdog_usec;			/* WATCHDOG_USEC, 0 without a watchdog */
	uint64_t health_rx;			/* rx_packets at the last check */
	unsigned int generation;	/* chains run so far: 1 at start, +1 per change */
	bool modified;			/* the chain was edited live since the file was read */
	bool tun_gone;			/* someone deleted the tun: the loop is exiting */
	uint64_t start_usec;		/* CLOCK_MONOTONIC */

	/* The audit trail (manager-audit.c): monitor=changes clients, what a change did. */
	struct audit_sub *audit_subs;
	unsigned int n_audit_subs;
	struct ratelimit audit_log;		/* refused changes */
	char audit_rule[RULE_FORMAT_MAX];	/* the rule an add or replace puts in */
	char audit_old[RULE_FORMAT_MAX];	/* the rule a del or replace takes out */
	char audit_name[RULE_NAME_MAX];
	const char *audit_declared;		/* client-cmdline= of the request running, or NULL */

	struct flow_table *flows;		/* the packets' flows (flow.h), flows.max entries */
	struct manager_stats stats;
	struct loopguard loopguard;		/* packets written back that come back */
	struct ratelimit io_log;

	/*
	 * Multi-queue (tun.queues > 1): a worker per queue, and the lock that
	 * guards everything above against them (manager-worker.c).
	 */
	pthread_mutex_t lock;
	struct manager_path *paths;		/* one per queue, while the workers run */
	unsigned int n_paths;
	int wake_fd;				/* eventfd: a worker changed a timer */
	sd_event_source *wake_source;

	struct manager_path path;		/* the loop's own */
	/*
	 * tun.io = "uring" and a path could not have a ring: why (the first
	 * such path's), and how many paths read with read() instead.
	 */
	char tun_io_reason[ERR_MAX];
	unsigned int tun_io_fallbacks;
	sem_t ring_ready;			/* a worker's ring is set up (or refused) */

	struct manager_reload *reload;		/* manager-reload.c; NULL before the first */

	struct manager_inbound inbound[CONFIG_INBOUND_MAX];
	unsigned int n_inbound;
};

/* Takes ownership of cfg, also on failure. */
int manager_new(struct config *cfg, struct manager **ret);
struct manager *manager_free(struct manager *m);

/* Open the tun, clean up stale state, install routing, announce readiness. */
int manager_start(struct manager *m);
/* Run the event loop until SIGTERM/SIGINT; returns the exit code. */
int manager_run(struct manager *m);

/*
 * Run chain from now on, with the counters (and the impairment state) of the
 * rules it keeps unchanged; takes the reference.  The delayed copies of the
 * rules it keeps stay queued, those of deleted or changed rules are
 * discarded and counted (impair_flushed).  modified: a live edit rather than
 * the file's chain.
 */
void manager_set_chain(struct manager *m, struct chain *chain, bool modified);
/*
 * Remove the running rules drop() picks (a live change, like ipmodctl del):
 * their held copies are flushed.  Returns how many went, or -errno with a
 * message in err; nothing changes when none is picked.
 */
typedef bool (*manager_pick_fn)(const struct chain *c, size_t i, void *userdata);
int manager_remove_rules(struct manager *m, manager_pick_fn drop, void *userdata, char *err,
			 size_t errlen);
/*
 * manager-reload.c: re-read the config file and run its chain, built in a
 * thread and swapped in on the loop; on error (file:line) nothing changes.
 * cl: a control client, answered (control_defer()) when the new chain runs
 * or the reload failed; NULL for a signal.  uid, pid and declared (NULL or
 * the client's client-cmdline=) go to the audit trail then.  A request
 * while a build runs is answered by one more run after it.
 */
int manager_reload_request(struct manager *m, struct control_client *cl, uid_t uid, pid_t pid,
			   const char *declared);
/*
 * The reload machinery (its eventfd on the loop), made at start so that the
 * daemon's descriptors do not change with the first reload; idempotent.
 */
int manager_reload_init(struct manager *m);
/* A build runs: live edits are refused meanwhile. */
bool manager_reload_running(const struct manager *m);
/* Shutdown, after control_free(): wait for a running build and drop it. */
void manager_reload_stop(struct manager *m);
void manager_notify_status(struct manager *m, const char *state);
/*
 * The fast path hands every packet to userspace while a trace or capture
 * subscriber may want one the kernel would handle; call after subscribing,
 * unsubscribing or changing the chain.
 */
void manager_fastpath_watch(struct manager *m);
/*
 * The inbound fast path on the uplinks' ingress, tail-called by their
 * divert (the inbound tuns' egress where the kernel refuses that program):
 * one instance for all of them, running the rules of direction in.  Call
 * once the inbound tuns exist, after the outbound fast path's start.
 * fastpath = "on": a failure stops the start; "auto": it is logged and
 * inbound packets take the userspace path.
 */
int manager_start_fastpath_in(struct manager *m);
/* Out of every divert, then closed; takes none. */
void manager_fastpath_in_close(struct manager *m);

/*
 * manager-packet.c: the packet path, from a read to the write back.  It
 * calls nothing in manager.c or manager-worker.c; both call it.
 */
/* Packets handled per wake-up before other event sources get a turn. */
#define MANAGER_RX_BATCH 64
/* CLOCK_MONOTONIC now, in ns: the clock of packet times and rule expiry. */
uint64_t manager_clock_ns(void);
/* A read of the path's queue into its rxbuf: the bytes, or -errno. */
ssize_t manager_path_read(struct manager_path *path);
/*
 * What manager_path_read() returned (n), through the chain and out; false:
 * the queue is empty for now (or the tun went: path->gone).  With the lock.
 */
bool manager_path_take(struct manager_path *path, ssize_t n);
/* What a path holds besides itself (the surgery arena, its ring), before it is freed. */
void manager_path_release(struct manager_path *path);
/*
 * tun.io = "uring": the path's ring (path->ring), from the thread that will
 * use it.  A refusal is logged once, counted in m->tun_io_fallbacks and
 * leaves path->ring NULL: the path reads with read().  With the lock when
 * workers run.
 */
void manager_path_ring_start(struct manager_path *path);
/*
 * The loop reads the path's queue (a single-queue tun): its ring started
 * (manager_path_ring_start()) and *source watching the ring, or the queue
 * for read() where there is none.
 */
int manager_path_watch(struct manager_path *path, sd_event_source **source);
/*
 * The completed reads of the path's ring (at most MANAGER_RX_BATCH), each
 * through the chain and out (the loop's path; with the lock), and the
 * buffers back to the kernel.
 */
int manager_on_tun_ring(sd_event_source *s, int fd, uint32_t revents, void *userdata);
/* A completed read (n bytes, or -errno) in buf (the room in front included); with the lock. */
bool manager_path_take_buf(struct manager_path *path, uint8_t *buf, ssize_t n);
/*
 * After manager_path_take_buf() of ring buffer id: the packet's deferred
 * write (path->out) as a write of the ring, or the buffer given back.
 * Returns what a plain write of it (when the ring refused it) returned;
 * the caller takes the counts back then (manager_write_failed()).
 */
int manager_path_ring_out(struct manager_path *path, uint32_t id);
/* A write of the ring that failed (rd->write, rd->n < 0): its counts back.  With the lock. */
struct tunring_read;
void manager_ring_write_failed(struct manager_path *path, const struct tunring_read *rd);
/* A write that failed (r): its counts taken back, a warning now and then. */
void manager_write_failed(struct manager_path *path, uint8_t dest, int r, size_t len,
			  unsigned int segs, uint64_t bytes);
/* The impairment timer at the queue's earliest departure (after m->impair_pushed). */
void manager_impair_arm(struct manager *m);
/* sd-event callbacks: the impairment timer (m), a tun of the loop (its path). */
int manager_on_impair_timer(sd_event_source *s, uint64_t usec, void *userdata);
int manager_on_tun_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* manager-worker.c: a thread per queue, each running the packet path on its own. */
int manager_workers_start(struct manager *m);
void manager_workers_stop(struct manager *m);
/* sd_event_loop() with m->lock held except while it sleeps. */
int manager_run_locked(struct manager *m);

/* manager-control.c: the control socket's requests. */
int manager_control(void *userdata, struct control_client *cl, const struct ctl_request *req,
		    bool privileged, struct ctl_reply *reply);

/*
 * manager-audit.c: the audit trail.  prepare before running a change
 * request, request after it (declared: the client's client-cmdline= or NULL,
 * logged when its /proc/PID/cmdline is unreadable; result: its return,
 * error: the reply's error text); rule from cmd_add and cmd_replace with the
 * rule going in.
 */
struct rule;
void manager_audit_prepare(struct manager *m, const struct ctl_request *req);
void manager_audit_rule(struct manager *m, const struct rule *r);
void manager_audit_request(struct manager *m, struct control_client *cl,
			   const struct ctl_request *req, const char *declared, int result,
			   const char *error);
/* A change not asked for over the socket: SIGHUP's reload. */
void manager_audit_signal(struct manager *m, const char *action, uid_t uid, pid_t pid, int result,
			  const char *error);
/* A reload, applied or failed, for whoever asked (source "control" or "signal"). */
void manager_audit_reload(struct manager *m, const char *source, uid_t uid, pid_t pid,
			  const char *declared, int result, const char *error);
/* monitor=changes: turn cl into a stream of change events. */
int manager_audit_monitor(struct manager *m, struct control_client *cl, struct ctl_reply *reply);

#endif
