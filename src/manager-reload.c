/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reload without a stall (issue 17).  Reading the file, its list files
 * (src-set, dst-set, host-set: up to millions of lines) and building the
 * chain and its index happen in a thread at SCHED_IDLE; the loop only swaps
 * the finished chain in (manager_set_chain()), which costs the
 * chain_inherit() of the counters, the fast path's map update and the
 * impairment queue's flush.
 *
 * One build at a time.  A request while one runs is coalesced into one more
 * run after it: whoever asked during the build gets the answer of a build
 * that started after the request, so it sees the file as it was when it
 * asked.  Live edits (add, del, replace, flush) are refused with -EBUSY
 * while a build runs, since the reload's chain would replace them.
 *
 * One thread does every build, and frees what a swap leaves (the old chain,
 * the loaded config): started at the first reload, it lives until the
 * shutdown.  So the loop neither creates nor joins a thread at a reload:
 * a pthread_create() or pthread_join() on the loop waits on glibc's stack
 * cache lock, the mm's lock for a new stack, or the exit of a thread that
 * runs at SCHED_IDLE (perf saw the loop in a futex at each reload with a
 * thread per build).  The loop and the thread talk through two eventfds:
 * cmd_efd (semaphore mode) to the thread, efd back to the loop; what they
 * hand over is in struct manager_reload, fenced around the writes.
 *
 * The thread touches nothing of the manager: it gets a copy of the path and
 * a reference to the running chain (chain_new_from() only reads its names,
 * rules and traces, which never change; the references it takes on shared
 * traces, tables and lists are atomic) and hands back the config, the chain
 * or the message.  It never logs: the loop does, once the thread is done.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "chain.h"
#include "log.h"
#include "manager.h"

/* Who waits for the answer: a control client, or a signal (cl NULL). */
struct reload_waiter {
	struct reload_waiter *next;
	struct control_client *cl;
	uid_t uid;
	pid_t pid;
	char *declared;		/* the client's client-cmdline=, or NULL */
};

struct manager_reload {
	struct manager *m;
	int efd;			/* eventfd: the thread is done (to the loop) */
	int cmd_efd;			/* eventfd, semaphore: build / swapped (to the thread) */
	sd_event_source *source;
	pthread_t thread;
	bool started;			/* the thread runs (it waits for commands) */
	/*
	 * With the last command: the thread exits.  Atomic: the loop sets it at
	 * shutdown while the thread may still be freeing a swap's leftovers,
	 * before it reads it (ThreadSanitizer saw the race).
	 */
	atomic_bool quit;
	bool running;			/* a build runs: efd is to come */
	bool again;			/* requests came during the build: one more run */
	struct reload_waiter *current;	/* answered when the running build is swapped in */
	struct reload_waiter *next;	/* answered by the run after it */
	unsigned int n_waiters;

	/* The thread's input and output; the loop reads them once efd says done. */
	char *path;			/* a copy of m->cfg->path */
	struct chain *old;
	struct config *cfg;
	struct chain *chain;
	int r;
	char err[CONFIG_ERR_MAX];
	uint64_t t0_ns, built_ns;

	/* What a swap leaves to free: the thread frees it on the command after a build. */
	struct chain *reap_chain;
	struct config *reap_cfg;
};

/* The thread's nice value where SCHED_IDLE is refused (Linux's nice is per thread). */
#define RELOAD_NICE 19

/*
 * Behind the packet loop for the CPU: on a busy machine a reload takes
 * longer, rather than packets waiting for it.  SCHED_IDLE, not only nice 19:
 * a nice 19 thread on the loop's CPU kept it waiting 2-14 ms after its
 * wakeup (perf sched timehist, with the other CPU idle at times), since a
 * waking thread does not always preempt a running one of any nice value;
 * it always preempts a SCHED_IDLE one, and a CPU running only SCHED_IDLE
 * threads counts as idle for the wakeup's choice of CPU.  Nice 19 where
 * SCHED_IDLE is refused.  Best effort: the policy is the thread's own.
 */
static void background_thread(void)
{
	struct sched_param sp = { .sched_priority = 0 };

	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), RELOAD_NICE);
}

/* An eventfd write of 1: it cannot block or fail short of EBADF. */
static void efd_post(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	/* What was handed over is visible to whoever reads the eventfd. */
	atomic_thread_fence(memory_order_release);
	do
		n = write(fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

/* The thread: the next command (cmd_efd is blocking, in semaphore mode). */
static int cmd_wait(struct manager_reload *rl)
{
	uint64_t v;
	ssize_t n;

	do
		n = read(rl->cmd_efd, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(v))
		return -EIO;
	atomic_thread_fence(memory_order_acquire);
	return 0;
}

/* The loop: the thread's "done" (efd), and with it what it handed over. */
static int done_read(struct manager_reload *rl)
{
	uint64_t v;

	if (read(rl->efd, &v, sizeof(v)) != sizeof(v))
		return -errno;
	atomic_thread_fence(memory_order_acquire);
	return 0;
}

/* The loop: the old chain and cfg for the thread to free at its next command. */
static void leftovers(struct manager_reload *rl, struct config *cfg)
{
	rl->reap_chain = rl->old;
	rl->reap_cfg = cfg;
	rl->old = NULL;
}

static void reload_build(struct manager_reload *rl)
{
	char msg[CONFIG_ERR_MAX];
	int r;

	r = config_load(rl->path, &rl->cfg, rl->err, sizeof(rl->err));
	if (r == 0) {
		r = chain_new_from(rl->cfg->rules, rl->cfg->n_rules, rl->old, &rl->chain, msg,
				   sizeof(msg));
		/* A long path cuts the message short; it stays a message. */
		if (r < 0 && snprintf(rl->err, sizeof(rl->err), "%s: %s", rl->path, msg) < 0)
			rl->err[0] = '\0';
		/* Which rules keep their counters: the loop then only copies them. */
		if (r == 0)
			chain_inherit_match(rl->chain, rl->old);
	}
	rl->r = r;
	rl->built_ns = manager_clock_ns();
}

/*
 * Commands come in pairs: a build (or quit), then, once the loop swapped
 * (or dropped) its result, "swapped", which hands over reap_chain and
 * reap_cfg to free.  Quit may come in place of either.
 */
static void *reload_thread(void *userdata)
{
	struct manager_reload *rl = userdata;

	background_thread();
	for (;;) {
		if (cmd_wait(rl) < 0 || atomic_load_explicit(&rl->quit, memory_order_relaxed))
			break;
		reload_build(rl);
		efd_post(rl->efd);
		if (cmd_wait(rl) < 0)
			break;
		rl->reap_chain = chain_unref(rl->reap_chain);
		config_free(rl->reap_cfg);
		rl->reap_cfg = NULL;
		if (atomic_load_explicit(&rl->quit, memory_order_relaxed))
			break;
	}
	return NULL;
}

/* Signals beyond this many waiters are coalesced without an audit entry of their own. */
#define RELOAD_WAITERS_MAX (CONTROL_CLIENTS_MAX + 16)

static void waiter_free(struct reload_waiter *w)
{
	free(w->declared);
	free(w);
}

/* control_free() at shutdown: the client goes without an answer. */
static void waiter_gone(void *userdata, struct control_client *cl)
{
	struct manager_reload *rl = userdata;
	struct reload_waiter **lists[] = { &rl->current, &rl->next };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		for (struct reload_waiter **p = lists[i]; *p; p = &(*p)->next) {
			if ((*p)->cl == cl) {
				struct reload_waiter *w = *p;

				*p = w->next;
				waiter_free(w);
				rl->n_waiters--;
				return;
			}
		}
	}
}

static int reload_start(struct manager_reload *rl)
{
	struct manager *m = rl->m;
	int r;

	/* The first reload starts the thread; it stays for the next ones. */
	if (!rl->started) {
		r = -pthread_create(&rl->thread, NULL, reload_thread, rl);
		if (r < 0)
			return r;
		rl->started = true;
	}
	rl->path = strdup(m->cfg->path);
	if (!rl->path)
		return -ENOMEM;
	rl->old = chain_ref(m->chain);
	rl->cfg = NULL;
	rl->chain = NULL;
	rl->err[0] = '\0';
	rl->r = 0;
	rl->t0_ns = manager_clock_ns();
	efd_post(rl->cmd_efd);
	rl->running = true;
	sd_notify(false, "RELOADING=1");
	return 0;
}

/* Answer and audit the waiters of list w: result r, err its message. */
static void answer(struct manager *m, struct reload_waiter *w, int r, const char *err)
{
	struct manager_reload *rl = m->reload;

	while (w) {
		struct reload_waiter *next = w->next;

		rl->n_waiters--;
		if (w->cl) {
			struct ctl_reply *reply = control_deferred_reply(w->cl);

			manager_audit_reload(m, "control", w->uid, w->pid, w->declared, r, err);
			if (r < 0) {
				ctl_reply_error(reply, r, "%s", err);
			} else {
				ctl_reply_add_u64(reply, "generation", m->generation);
				ctl_reply_add_u64(reply, "rules", chain_size(m->chain));
			}
			control_deferred_finish(w->cl, r);
		} else {
			manager_audit_reload(m, "signal", w->uid, w->pid, NULL, r, err);
		}
		waiter_free(w);
		w = next;
	}
}

/* On the loop, once the thread is done: swap, log, answer, maybe run again. */
static void reload_finish(struct manager_reload *rl)
{
	struct manager *m = rl->m;
	struct reload_waiter *w;
	char msg[CONFIG_ERR_MAX], err[CONFIG_ERR_MAX];
	struct config *cfg;
	uint64_t t1, pause;
	int r;

	/* The thread wrote efd: it waits for "swapped" and touches nothing till then. */
	rl->running = false;
	free(rl->path);
	rl->path = NULL;
	cfg = rl->cfg;
	rl->cfg = NULL;
	r = rl->r;
	/* The next run may start before the answer: the message is ours now. */
	snprintf(err, sizeof(err), "%s", rl->err);
	t1 = manager_clock_ns();
	if (r == 0) {
		/* As the start decided for the running one. */
		if (m->ipv6_left && cfg->ipv6_auto)
			cfg->ipv6 = false;
		if (config_restart_changes(m->cfg, cfg, msg, sizeof(msg)) > 0)
			log_warning("%s: %s changed; this takes effect at the next restart", cfg->path,
				    msg);
		/* What the loop pays: counters inherited, fast path updated, old chain freed. */
		manager_set_chain(m, rl->chain, false);
		rl->chain = NULL;
		/* Rules added live from now on take the file's impairment.seed. */
		m->cfg->seeded = cfg->seeded;
		m->cfg->seed = cfg->seed;
	}
	/*
	 * After the swap (the plan of chain_inherit_match() knows old by its
	 * address), the thread frees the old chain and the config.
	 */
	leftovers(rl, cfg);
	efd_post(rl->cmd_efd);
	if (r == 0) {
		/* Handing the old chain and the config to the thread included. */
		pause = (manager_clock_ns() - t1) / 1000;
		m->stats.reloads++;
		m->stats.reload_pause_us = pause;
		if (pause > m->stats.reload_pause_max_us)
			m->stats.reload_pause_max_us = pause;
		m->stats.reload_build_ms = (rl->built_ns - rl->t0_ns) / 1000000;
		/* The build includes reading list files (src-set, dst-set, host-set). */
		log_info("reloaded %s: %zu rules (generation %u): built in %llu ms off the loop, "
			 "swapped in %llu us", m->cfg->path, chain_size(m->chain), m->generation,
			 (unsigned long long)m->stats.reload_build_ms, (unsigned long long)pause);
	} else {
		m->stats.reload_failures++;
		log_error("reload failed, keeping the running rules: %s", err);
	}
	w = rl->current;
	rl->current = NULL;
	if (rl->again) {
		int k;

		rl->again = false;
		rl->current = rl->next;
		rl->next = NULL;
		k = reload_start(rl);
		if (k < 0) {
			log_error("reload: cannot start its thread: %s", strerror(-k));
			answer(m, rl->current, k, "cannot start the reload thread");
			rl->current = NULL;
		}
	}
	if (!rl->running)
		manager_notify_status(m, "READY=1\n");
	else
		manager_notify_status(m, "");
	answer(m, w, r, err);
}

static int on_reload_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager_reload *rl = userdata;

	if (done_read(rl) < 0)
		return 0;
	if (rl->running)
		reload_finish(rl);
	return 0;
}

int manager_reload_init(struct manager *m)
{
	struct manager_reload *rl;
	int r;

	if (m->reload)
		return 0;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -ENOMEM;
	rl->m = m;
	rl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rl->efd < 0) {
		r = -errno;
		free(rl);
		return r;
	}
	/* Blocking: the thread sleeps in read(); the loop's writes never block. */
	rl->cmd_efd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	if (rl->cmd_efd < 0) {
		r = -errno;
		close(rl->efd);
		free(rl);
		return r;
	}
	r = sd_event_add_io(m->event, &rl->source, rl->efd, EPOLLIN, on_reload_done, rl);
	if (r < 0) {
		close(rl->cmd_efd);
		close(rl->efd);
		free(rl);
		return r;
	}
	m->reload = rl;
	return 0;
}

int manager_reload_request(struct manager *m, struct control_client *cl, uid_t uid, pid_t pid,
			   const char *declared)
{
	struct manager_reload *rl;
	struct reload_waiter *w;
	int r;

	r = manager_reload_init(m);
	if (r < 0)
		return r;
	rl = m->reload;
	if (!cl && rl->n_waiters >= RELOAD_WAITERS_MAX) {
		/* A signal storm: one more run covers it all the same. */
		if (rl->running)
			rl->again = true;
		else
			return reload_start(rl);
		return 0;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cl = cl;
	w->uid = uid;
	w->pid = pid;
	if (declared) {
		w->declared = strdup(declared);
		if (!w->declared) {
			free(w);
			return -ENOMEM;
		}
	}
	if (cl) {
		r = control_defer(cl, waiter_gone, rl);
		if (r < 0) {
			waiter_free(w);
			return r;
		}
	}
	if (rl->running) {
		rl->again = true;
		w->next = rl->next;
		rl->next = w;
	} else {
		r = reload_start(rl);
		if (r < 0) {
			/* The caller answers: control_dispatch() sends the error reply at once. */
			waiter_free(w);
			return r;
		}
		w->next = rl->current;
		rl->current = w;
	}
	rl->n_waiters++;
	return 0;
}

bool manager_reload_running(const struct manager *m)
{
	return m->reload && m->reload->running;
}

void manager_reload_stop(struct manager *m)
{
	struct manager_reload *rl = m->reload;
	struct reload_waiter *w;

	if (!rl)
		return;
	/* The build cannot be cancelled halfway (it owns memory): wait for it. */
	if (rl->running) {
		struct pollfd pfd = { .fd = rl->efd, .events = POLLIN };
		int r;

		while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			;
		r = done_read(rl);
		if (r < 0)
			log_errno(LOG_WARNING, r, "shutdown: reading the reload thread's eventfd");
		rl->running = false;
		log_info("shutdown: a reload in progress was abandoned");
		/* Its config and the old chain go to the thread, like a swap's leftovers. */
		chain_unref(rl->chain);
		leftovers(rl, rl->cfg);
		rl->cfg = NULL;
		free(rl->path);
	}
	/*
	 * Only now (a build that saw quit before it started would never say
	 * done): the thread frees what it was handed, if anything, and exits.
	 */
	if (rl->started) {
		atomic_store_explicit(&rl->quit, true, memory_order_relaxed);
		efd_post(rl->cmd_efd);
		pthread_join(rl->thread, NULL);
	}
	/* Clients still waiting go with control_free(), without an answer. */
	while ((w = rl->current) || (w = rl->next)) {
		if (w == rl->current)
			rl->current = w->next;
		else
			rl->next = w->next;
		waiter_free(w);
	}
	sd_event_source_disable_unref(rl->source);
	close(rl->cmd_efd);
	close(rl->efd);
	free(rl);
	m->reload = NULL;
}
