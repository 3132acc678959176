/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guardian.h"
#include "routing.h"
#include "util.h"

#define POLL_NS (20 * 1000000ULL)	/* how often the guardian looks */

/* The page both processes share. */
struct shared {
	uint64_t beat;		/* bumped by the daemon */
	uint32_t trips;		/* bumped by the guardian when it removed the diversion */
	uint32_t removed;	/* 1 while the diversion is removed and not yet restored */
};

struct guardian {
	pid_t pid;
	struct shared *sh;
	uint32_t trips_seen;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The child: never returns. */
static _Noreturn void guardian_main(const struct config *cfg, struct shared *sh, pid_t parent)
{
	uint64_t timeout_ns = (uint64_t)cfg->stall_timeout_ms * 1000000ULL;
	uint64_t last = __atomic_load_n(&sh->beat, __ATOMIC_ACQUIRE), since = mono_ns(), now, b;
	struct timespec nap = { 0, (long)POLL_NS };
	char err[ERR_MAX];

	for (;;) {
		nanosleep(&nap, NULL);
		if (getppid() != parent)
			_exit(0);
		now = mono_ns();
		b = __atomic_load_n(&sh->beat, __ATOMIC_ACQUIRE);
		if (b != last) {
			last = b;
			since = now;
			continue;
		}
		if (now - since < timeout_ns || __atomic_load_n(&sh->removed, __ATOMIC_ACQUIRE))
			continue;
		/* Stalled: traffic takes the main table until the daemon restores it. */
		if (routing_remove_diversion(cfg, err, sizeof(err)) >= 0) {
			__atomic_store_n(&sh->removed, 1, __ATOMIC_RELEASE);
			__atomic_add_fetch(&sh->trips, 1, __ATOMIC_ACQ_REL);
		}
		since = now;
	}
}

int guardian_start(const struct config *cfg, struct guardian **ret)
{
	struct guardian *g;
	pid_t parent = getpid();
	int r;

	if (cfg->stall_timeout_ms == 0)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->sh = mmap(NULL, sizeof(*g->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (g->sh == MAP_FAILED) {
		r = negative_errno();
		free(g);
		return r;
	}
	g->pid = fork();
	if (g->pid < 0) {
		r = negative_errno();
		munmap(g->sh, sizeof(*g->sh));
		free(g);
		return r;
	}
	if (g->pid == 0) {
		sigset_t all;

		/* Nothing of the daemon's: no tun (it must close with the daemon), no sockets. */
		close_range(3, ~0U, 0);
		prctl(PR_SET_NAME, "ipmodd-guardian");
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		guardian_main(cfg, g->sh, parent);
	}
	*ret = g;
	return 0;
}

struct guardian *guardian_stop(struct guardian *g)
{
	if (!g)
		return NULL;
	if (g->pid > 0) {
		kill(g->pid, SIGKILL);
		while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	munmap(g->sh, sizeof(*g->sh));
	free(g);
	return NULL;
}

pid_t guardian_pid(const struct guardian *g)
{
	return g ? g->pid : 0;
}

void guardian_beat(struct guardian *g)
{
	if (g)
		__atomic_add_fetch(&g->sh->beat, 1, __ATOMIC_RELEASE);
}

unsigned int guardian_take_trips(struct guardian *g)
{
	uint32_t t;

	if (!g)
		return 0;
	t = __atomic_load_n(&g->sh->trips, __ATOMIC_ACQUIRE);
	if (t == g->trips_seen)
		return 0;
	__atomic_store_n(&g->sh->removed, 0, __ATOMIC_RELEASE);
	t -= g->trips_seen;
	g->trips_seen += t;
	return t;
}
