/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Multi-queue: with tun.queues > 1 each queue of the tun, and of each
 * inbound tun (which have as many), has a packet worker thread, and the
 * kernel spreads flows over the queues.
 *
 * One mutex, m->lock, guards everything the packet path shares with the
 * rest of the daemon (chain and its counters, statistics, monitor, impairment
 * queue, loop guard, every sd-event object).  The event loop holds it except
 * while it sleeps, so its callbacks run as they always did; a worker holds
 * it while a packet goes through the chain, and not while it reads or writes
 * the tun, which is where the time goes.  sd-event is not thread-safe: the
 * loop sleeps in poll() on sd_event_get_fd() without the lock and collects
 * with sd_event_wait(e, 0) under it, so no sd-event call ever runs
 * unlocked.  A worker that changed a timer (the impairment queue's) or saw
 * the tun go (the loop is to exit) wakes the loop through an eventfd, and
 * the next sd_event_prepare() arms it.  The packet itself goes through
 * manager-packet.c, which calls nothing here.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "manager.h"
#include "tun.h"
#include "tunring.h"
#include "util.h"

/* The loop wakes up and re-arms its timers (called with the lock held). */
static void manager_wake(struct manager *m)
{
	uint64_t one = 1;
	ssize_t n;

	/* It can only fail full (EAGAIN), that is with a wake-up pending anyway. */
	if (m->wake_fd >= 0) {
		n = write(m->wake_fd, &one, sizeof(one));
		(void)n;
	}
}

/*
 * What the queue holds: the read and the packet's last write without the
 * lock, the chain (manager-packet.c) with it.
 */
static void worker_receive(struct manager_path *path)
{
	struct manager *m = path->m;
	bool more = true;
	ssize_t n;
	int r;

	for (int i = 0; i < MANAGER_RX_BATCH && more; i++) {
		n = manager_path_read(path);
		pthread_mutex_lock(&m->lock);
		path->now_ns = manager_clock_ns();
		path->can_defer = true;
		path->out_len = 0;
		more = manager_path_take(path, n);
		/* A timer to arm, or the tun went and the loop is to exit. */
		if (m->impair_pushed) {
			manager_impair_arm(m);
			manager_wake(m);
		} else if (path->gone) {
			manager_wake(m);
		}
		pthread_mutex_unlock(&m->lock);
		if (!path->out_len)
			continue;
		r = tun_write(path->tun, path->queue, path->out, path->out_len);
		if (r < 0) {
			pthread_mutex_lock(&m->lock);
			manager_write_failed(path, path->dest, r, path->out_len - path->tun->hdrlen,
					     path->out_segs, path->out_bytes);
			pthread_mutex_unlock(&m->lock);
		}
	}
}

/*
 * tun.io = "uring": the ring's completed reads, the same way (the buffer is
 * given back once its packet's last write is made), then the buffers back
 * to the kernel in one io_uring_enter().
 */
static void worker_receive_ring(struct manager_path *path)
{
	struct manager *m = path->m;
	struct tunring_read rd;
	int r = 0;

	for (int i = 0; i < MANAGER_RX_BATCH && !path->gone; i++) {
		r = tunring_get(path->ring, &rd);
		if (r <= 0)
			break;
		if (rd.write) {
			if (rd.n < 0) {
				pthread_mutex_lock(&m->lock);
				manager_ring_write_failed(path, &rd);
				pthread_mutex_unlock(&m->lock);
			}
			continue;
		}
		pthread_mutex_lock(&m->lock);
		path->now_ns = manager_clock_ns();
		path->can_defer = true;
		path->out_len = 0;
		path->ring_id = rd.id;
		manager_path_take_buf(path, rd.buf, rd.n);
		if (m->impair_pushed) {
			manager_impair_arm(m);
			manager_wake(m);
		} else if (path->gone) {
			manager_wake(m);
		}
		pthread_mutex_unlock(&m->lock);
		/* The packet's last write, then its buffer back to the kernel. */
		if (path->ring_writes) {
			r = manager_path_ring_out(path, rd.id);
		} else {
			if (path->out_len)
				r = tun_write(path->tun, path->queue, path->out, path->out_len);
			tunring_put(path->ring, rd.id);
		}
		if (r < 0) {
			pthread_mutex_lock(&m->lock);
			manager_write_failed(path, path->dest, r, path->out_len - path->tun->hdrlen,
					     path->out_segs, path->out_bytes);
			pthread_mutex_unlock(&m->lock);
		}
		r = 0;
	}
	if (r >= 0 && !path->gone)
		r = tunring_submit(path->ring);
	if (r < 0) {
		pthread_mutex_lock(&m->lock);
		m->stats.read_errors++;
		if (ratelimit_allow(&m->io_log, manager_clock_ns()))
			log_errno(LOG_WARNING, r, "io_uring of %s queue %u", path->tun->name,
				  path->queue);
		pthread_mutex_unlock(&m->lock);
	}
}

static void *worker_main(void *userdata)
{
	struct manager_path *path = userdata;
	struct manager *m = path->m;
	struct pollfd pfd[2] = {
		{ .fd = path->tun->fds[path->queue], .events = POLLIN },
		{ .fd = path->stop_fd, .events = POLLIN },
	};

	/* The ring's reads are this thread's: it submits them (and runs their task work). */
	pthread_mutex_lock(&m->lock);
	manager_path_ring_start(path);
	pthread_mutex_unlock(&m->lock);
	sem_post(&m->ring_ready);
	if (path->ring)
		pfd[0].fd = tunring_fd(path->ring);
	for (;;) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (pfd[0].revents && path->ring)
			worker_receive_ring(path);
		else if (pfd[0].revents)
			worker_receive(path);
		/* The tun is gone (the loop exits): wait for the stop alone. */
		if (path->gone)
			pfd[0].fd = -1;
	}
	return NULL;
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	uint64_t v;
	ssize_t n;

	/* Drained (EAGAIN: already); the next sd_event_prepare() arms what a worker changed. */
	n = read(fd, &v, sizeof(v));
	(void)n;
	return 0;
}

/* A worker for path; false: none (said). */
static bool worker_spawn(struct manager_path *path)
{
	int r;

	path->worker = true;
	path->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (path->stop_fd < 0) {
		log_errno(LOG_ERR, negative_errno(), "eventfd");
		return false;
	}
	r = -pthread_create(&path->thread, NULL, worker_main, path);
	if (r < 0) {
		path->stop_fd = safe_close(path->stop_fd);
		log_errno(LOG_ERR, r, "starting the worker of %s queue %u", path->tun->name,
			  path->queue);
		return false;
	}
	return true;
}

static void worker_signal(struct manager_path *path)
{
	uint64_t one = 1;

	if (write(path->stop_fd, &one, sizeof(one)) < 0)
		log_errno(LOG_WARNING, negative_errno(), "stopping the worker of %s queue %u",
			  path->tun->name, path->queue);
}

static void worker_join(struct manager_path *path)
{
	pthread_join(path->thread, NULL);
	path->stop_fd = safe_close(path->stop_fd);
	manager_path_release(path);
}

int manager_workers_start(struct manager *m)
{
	unsigned int q, started = 0, wanted;
	sigset_t all, old;
	int r;

	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake_fd < 0)
		return log_errno(LOG_ERR, negative_errno(), "eventfd");
	r = sd_event_add_io(m->event, &m->wake_source, m->wake_fd, EPOLLIN, on_wake, m);
	if (r < 0)
		return log_errno(LOG_ERR, r, "watching the workers' eventfd");

	m->paths = calloc(m->tun->n_queues, sizeof(*m->paths));
	if (!m->paths)
		return log_errno(LOG_ERR, -ENOMEM, "packet workers");
	wanted = m->tun->n_queues;
	/* Signals stay with the loop's signalfd: the workers block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (q = 0; q < m->tun->n_queues; q++) {
		struct manager_path *path = &m->paths[q];

		path->m = m;
		path->tun = m->tun;
		path->queue = q;
		if (!worker_spawn(path))
			break;
		m->n_paths++;
	}
	started = m->n_paths;
	/* The inbound tuns' queues (manager_start_inbound() made their paths). */
	for (unsigned int i = 0; i < m->n_inbound && started == wanted; i++) {
		struct manager_inbound *in = &m->inbound[i];

		wanted += in->tun->n_queues;
		for (q = 0; q < in->tun->n_queues; q++) {
			if (!worker_spawn(&in->path[q]))
				break;
			in->n_workers++;
			started++;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* Each worker says when its ring is there (or refused), so that status says it. */
	for (q = 0; q < started; q++) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		while (sem_timedwait(&m->ring_ready, &until) < 0 && errno == EINTR)
			;
	}
	return started == wanted ? 0 : -EAGAIN;
}

/* Called without the lock: a worker may be waiting for it. */
void manager_workers_stop(struct manager *m)
{
	unsigned int q, i;

	for (q = 0; q < m->n_paths; q++)
		worker_signal(&m->paths[q]);
	for (i = 0; i < m->n_inbound; i++)
		for (q = 0; q < m->inbound[i].n_workers; q++)
			worker_signal(&m->inbound[i].path[q]);
	for (q = 0; q < m->n_paths; q++)
		worker_join(&m->paths[q]);
	for (i = 0; i < m->n_inbound; i++) {
		for (q = 0; q < m->inbound[i].n_workers; q++)
			worker_join(&m->inbound[i].path[q]);
		m->inbound[i].n_workers = 0;
	}
	m->n_paths = 0;
	free(m->paths);
	m->paths = NULL;
	m->wake_source = sd_event_source_disable_unref(m->wake_source);
	m->wake_fd = safe_close(m->wake_fd);
}

/* sd_event_loop() with the lock held except in the sleep. */
int manager_run_locked(struct manager *m)
{
	struct pollfd pfd = { .fd = sd_event_get_fd(m->event), .events = POLLIN };
	int r, code = 0;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		r = sd_event_prepare(m->event);
		if (r == 0) {
			pthread_mutex_unlock(&m->lock);
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				r = negative_errno();
			pthread_mutex_lock(&m->lock);
			if (r < 0)
				break;
			r = sd_event_wait(m->event, 0);
		}
		if (r > 0)
			r = sd_event_dispatch(m->event);
		if (r < 0)
			break;
		if (sd_event_get_state(m->event) == SD_EVENT_FINISHED) {
			r = sd_event_get_exit_code(m->event, &code);
			if (r >= 0)
				r = code;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}
