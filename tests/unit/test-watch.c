/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * watch.c: the back-off policy (pure), then the watch on a real event loop
 * against the real kernel, inside a network namespace of our own: what
 * ip(8) removes comes back within a bound, and a program that keeps
 * removing it meets the back-off.  The kernel part is skipped when not root.
 */
#include <net/if.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "routing.h"
#include "tap.h"
#include "watch.h"

#define S 1000000ULL
#define MIN WATCH_BACKOFF_MIN_USEC
#define MAX WATCH_BACKOFF_MAX_USEC

static void test_backoff(void)
{
	struct watch_backoff b = { 0 };
	uint64_t t = 1000 * S, d;
	int i;

	is_int(watch_backoff_after(&b, t, WATCH_NOTHING), 0, "nothing to restore: no back-off");
	for (i = 0; i < WATCH_BURST - 1; i++)
		is_int(watch_backoff_after(&b, t + (uint64_t)i * S, WATCH_RESTORED), 0,
		       "restoring round %d within a second of the first: no back-off", i + 1);
	is_int(watch_backoff_after(&b, t + 4 * S, WATCH_RESTORED), MIN,
	       "round %d within the window: back off %llu s", WATCH_BURST, MIN / S);
	is_int(watch_backoff_after(&b, t + 9 * S, WATCH_RESTORED), 2 * MIN,
	       "gone again when it ends: twice as long");
	for (i = 0, d = 0; i < 10; i++)
		d = watch_backoff_after(&b, t + (uint64_t)(20 + i) * S, WATCH_RESTORED);
	is_int(d, MAX, "doubled up to the cap of %llu s", MAX / S);
	is_int(watch_backoff_after(&b, t + 400 * S, WATCH_NOTHING), 0,
	       "in place when the back-off ends: over");
	is_int(watch_backoff_after(&b, t + 401 * S, WATCH_RESTORED), 0,
	       "one restoration afterwards is no fight");

	/* The fight resumes soon after: it starts where the last one ended, doubled (capped). */
	memset(&b, 0, sizeof(b));
	for (i = 0; i < WATCH_BURST; i++)
		d = watch_backoff_after(&b, t + (uint64_t)i * S, WATCH_RESTORED);
	is_int(watch_backoff_after(&b, t + 10 * S, WATCH_NOTHING), 0, "a short fight over");
	for (i = 0; i < WATCH_BURST; i++)
		d = watch_backoff_after(&b, t + (uint64_t)(60 + i) * S, WATCH_RESTORED);
	is_int(d, 2 * MIN, "a new fight a minute later starts at twice the last back-off");
	watch_backoff_after(&b, t + 100 * S, WATCH_NOTHING);
	for (i = 0; i < WATCH_BURST; i++)
		d = watch_backoff_after(&b, t + 100 * S + WATCH_RESUME_USEC + (uint64_t)i * S,
					WATCH_RESTORED);
	is_int(d, MIN, "one long after starts afresh");

	/* Slower than WATCH_BURST per window: restored every time, for ever. */
	memset(&b, 0, sizeof(b));
	for (i = 0, d = 0; i < 40; i++)
		d |= watch_backoff_after(&b, t + (uint64_t)i * (WATCH_WINDOW_USEC / (WATCH_BURST - 1)),
					 WATCH_RESTORED);
	is_int(d, 0, "%d rounds per %llu s never back off", WATCH_BURST - 1,
	       WATCH_WINDOW_USEC / S);

	memset(&b, 0, sizeof(b));
	is_int(watch_backoff_after(&b, t, WATCH_FAILED), MIN, "a failure backs off at once");
	is_int(watch_backoff_after(&b, t + MIN, WATCH_FAILED), 2 * MIN, "failing again: longer");
	is_int(watch_backoff_after(&b, t + 3 * MIN, WATCH_RESTORED), 4 * MIN,
	       "restored at last: one more back-off to see it stay");
	is_int(watch_backoff_after(&b, t + 7 * MIN, WATCH_NOTHING), 0, "and it stayed: over");
}

/* --- against the kernel ------------------------------------------------------ */

static char out[8192];
static sd_event *ev;
static struct watch *w;

static const char *run(const char *cmd)
{
	size_t n = 0;
	FILE *f = popen(cmd, "r");

	out[0] = '\0';
	if (!f)
		return out;
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	pclose(f);
	return out;
}

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		diag("command failed: %s", cmd);
}

static long ms_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

/* Run the event loop until cond holds: the milliseconds it took, or -1 after limit_ms. */
static long run_until(bool (*cond)(void), long limit_ms)
{
	struct timespec start;
	long t;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		t = ms_since(&start);
		if (cond())
			return t;
		if (t > limit_ms)
			return -1;
		sd_event_run(ev, 20 * 1000);
	}
}

static void run_for(long ms)
{
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (ms_since(&start) < ms)
		sd_event_run(ev, 20 * 1000);
}

static bool rule4(void)
{
	return strstr(run("ip -4 rule show"), "10000:\tfrom all lookup 100\n") != NULL;
}

static bool route6(void)
{
	return strstr(run("ip -6 route show table 100"), "default dev tun0") != NULL;
}

static bool all_back(void)
{
	return strstr(run("ip link show tun0"), ",UP") != NULL &&
	       strstr(run("ip -4 route show table 100"), "default dev tun0") != NULL && route6();
}

static bool forwarding(void)
{
	return strcmp(run("cat /proc/sys/net/ipv4/conf/tun0/forwarding"), "1\n") == 0;
}

static bool force_forwarding(void)
{
	return strcmp(run("cat /proc/sys/net/ipv6/conf/tun0/force_forwarding"), "1\n") == 0;
}

static void status(struct watch_status *st)
{
	watch_get_status(w, st);
}

static void undone(const char *what, const char *cmd, bool (*cond)(void))
{
	struct watch_status st;
	long t;

	sh(cmd);
	t = run_until(cond, 2000);
	ok(t >= 0, "%s is undone within 2 s (%ld ms)", what, t);
	status(&st);
	diag("restores=%llu restore-last=%s", (unsigned long long)st.restores, st.last);
}

/*
 * More notifications than the socket holds while the loop does not run (30000
 * routes of another table): the kernel drops some, the watch notices and
 * checks, which finds everything in place.
 */
static void overflow(void)
{
	struct watch_status st0, st;
	FILE *f;

	status(&st0);
	f = popen("ip -batch -", "w");
	if (!f)
		return;
	for (int i = 0; i < 30000; i++)
		fprintf(f, "route add 10.%d.%d.%d/32 dev lo table 200\n", i >> 16, (i >> 8) & 255,
			i & 255);
	pclose(f);
	run_for(400);
	status(&st);
	ok(st.overruns > st0.overruns, "30000 notifications at once: the overflow is noticed (%llu)",
	   (unsigned long long)st.overruns);
	ok(st.checks > st0.checks && st.restores == st0.restores && strcmp(st.state, "ok") == 0,
	   "and a check finds everything in place");
	sh("ip route flush table 200");
	run_for(400);
}

static void test_watch(int ifindex)
{
	struct config cfg = { .mtu = 1400, .table = 100, .priority = 10000, .ipv4 = true,
			      .ipv6 = true };
	char err[CONFIG_ERR_MAX] = "";
	struct routing *rt = NULL;
	struct watch_status st;
	uint64_t lost;
	long t;
	int r;

	snprintf(cfg.tun_name, sizeof(cfg.tun_name), "tun0");
	r = routing_install(&cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "install");
	if (r < 0) {
		diag("%s", err);
		return;
	}
	r = sd_event_new(&ev);
	if (r >= 0)
		r = watch_new(ev, rt, &w);
	is_int(r, 0, "watch_new");
	if (r < 0)
		goto out;

	run_for(300);
	status(&st);
	ok(st.checks >= 1 && st.restores == 0 && strcmp(st.state, "ok") == 0,
	   "a first check finds everything in place (checks %llu, restores %llu, %s)",
	   (unsigned long long)st.checks, (unsigned long long)st.restores, st.state);

	overflow();
	status(&st);
	lost = st.overruns;

	undone("ip rule del of the IPv4 diversion", "ip -4 rule del pref 10000 lookup 100", rule4);
	status(&st);
	is_str(st.last, "rule 'from all lookup 100 pref 10000' (IPv4)", "restore-last names it");
	undone("ip -6 route flush table 100", "ip -6 route flush table 100", route6);
	undone("ip link set tun0 down (and the routes it took along)", "ip link set tun0 down",
	       all_back);
	undone("net.ipv4.conf.tun0.forwarding=0", "sysctl -qw net.ipv4.conf.tun0.forwarding=0",
	       forwarding);
	status(&st);
	is_int(st.restores, 6, "4 rounds put back 6 items (link up and IPv4+IPv6 routes in one)");
	is_str(st.state, "ok", "no back-off after %d rounds", WATCH_BURST - 1);

	/* Round WATCH_BURST within the window. */
	undone("net.ipv6.conf.tun0.force_forwarding=0",
	       "sysctl -qw net.ipv6.conf.tun0.force_forwarding=0", force_forwarding);
	status(&st);
	is_str(st.state, "backoff", "round %d: backing off", WATCH_BURST);
	ok(st.backoffs == 1 && st.retry_usec > 0 && st.retry_usec <= MIN,
	   "once, next check in %llu ms", (unsigned long long)st.retry_usec / 1000);

	sh("ip -4 rule del pref 10000 lookup 100");
	t = run_until(rule4, 1000);
	is_int(t, -1, "while backing off, a removal is not undone at once");
	t = run_until(rule4, (long)(MIN / 1000) + 1000);
	ok(t >= 0, "but when the back-off ends (after %ld ms more)", t);
	status(&st);
	ok(strcmp(st.state, "backoff") == 0 && st.retry_usec > MIN,
	   "gone again at the end: backing off longer (%llu ms)",
	   (unsigned long long)st.retry_usec / 1000);
	is_int(st.restores, 8, "8 items put back in all");
	is_int(st.overruns, lost, "no notification lost after the flood");

out:
	w = watch_free(w);
	ev = sd_event_unref(ev);
	routing_free(rt);
	is_str(run("ip -4 rule show | grep -c 10000 ; ip -6 route show table 100"), "0\n",
	       "routing_free() after watch_free() removes everything");
}

static int tun_create(const char *name)
{
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(void)
{
	int fd;

	test_backoff();

	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0 ||
	    system("ip link set lo up >/dev/null 2>&1") != 0) {
		diag("the kernel part needs root and ip(8): skipped");
		return tap_done();
	}
	/* From here on only our own namespace is touched. */
	fd = tun_create("tun0");
	if (fd < 0) {
		diag("cannot create a tun: the kernel part is skipped");
		return tap_done();
	}
	test_watch((int)if_nametoindex("tun0"));
	close(fd);
	return tap_done();
}
