/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * routing.c against the real kernel, inside a network namespace of our own
 * (unshare(CLONE_NEWNET) before anything else), checked with ip(8) output
 * and /proc/sys.  Skipped when not root.
 */
#include <net/if.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_tun.h>
#include <linux/ip.h>
#include <linux/netconf.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "netlink.h"
#include "routing.h"
#include "tap.h"
#include "util.h"

#define P 10000
#define T 100

static const char rules4_default[] =
	"0:\tfrom all lookup local\n"
	"32766:\tfrom all lookup main\n"
	"32767:\tfrom all lookup default\n";
static const char rules6_default[] =
	"0:\tfrom all lookup local\n"
	"32766:\tfrom all lookup main\n";

static char out[8192];

/* The command's stdout, each line without trailing blanks. */
static const char *run(const char *cmd)
{
	char line[512];
	size_t pos = 0, n;
	FILE *f;

	out[0] = '\0';
	f = popen(cmd, "r");
	if (!f)
		return "(popen failed)";
	while (fgets(line, sizeof(line), f)) {
		n = strcspn(line, "\n");
		while (n > 0 && line[n - 1] == ' ')
			n--;
		if (pos + n + 2 > sizeof(out))
			break;
		memcpy(out + pos, line, n);
		pos += n;
		out[pos++] = '\n';
		out[pos] = '\0';
	}
	pclose(f);
	return out;
}

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		diag("command failed: %s", cmd);
}

static const char *sysctl(const char *path)
{
	static char v[64];
	FILE *f = fopen(path, "r");

	if (!f)
		return "(missing)";
	if (!fgets(v, sizeof(v), f))
		v[0] = '\0';
	fclose(f);
	v[strcspn(v, "\n")] = '\0';
	return v;
}

static void set_sysctl(const char *path, const char *value)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(value, f) < 0 || fclose(f) != 0)
		diag("cannot write %s", path);
}

static int tun_open(const char *name, bool persist)
{
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
	int fd;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || (persist && ioctl(fd, TUNSETPERSIST, 1) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct config *make_config(void)
{
	struct config *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	snprintf(c->tun_name, sizeof(c->tun_name), "tun0");
	c->mtu = 1400;
	c->table = T;
	c->priority = P;
	c->ipv4 = true;
	c->ipv6 = true;
	return c;
}

static void free_config(struct config *c)
{
	free(c->divert);
	free(c->exclude);
	free(c);
}

static struct prefix prefix(const char *s, uint8_t len)
{
	struct prefix p = { .len = len };

	p.family = strchr(s, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(p.family, s, p.addr) != 1)
		abort();
	return p;
}

static void expect_clean(const char *what)
{
	is_str(run("ip rule show"), rules4_default, "%s: IPv4 rules back to the defaults", what);
	is_str(run("ip -6 rule show"), rules6_default, "%s: IPv6 rules back to the defaults", what);
	is_str(run("ip route show table 100 2>/dev/null"), "", "%s: no IPv4 route in table 100", what);
	is_str(run("ip -6 route show table 100 2>/dev/null"), "", "%s: no IPv6 route in table 100", what);
}

static void test_basic(int ifindex)
{
	struct config *cfg = make_config();
	struct routing *rt = NULL;
	struct nl_link_info info;
	struct nl *nl = NULL;
	char err[CONFIG_ERR_MAX] = "";
	int r;

	/* Non-default values, to see them restored. */
	set_sysctl("/proc/sys/net/ipv4/conf/tun0/rp_filter", "2");
	set_sysctl("/proc/sys/net/ipv4/conf/tun0/accept_local", "0");

	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "install v4+v6, no selectors");
	if (r < 0)
		diag("%s", err);
	ok(rt != NULL, "install returns a handle");
	is_str(run("ip rule show"),
	       "0:\tfrom all lookup local\n"
	       "9999:\tfrom all iif tun0 lookup main\n"
	       "10000:\tfrom all lookup 100\n"
	       "32766:\tfrom all lookup main\n"
	       "32767:\tfrom all lookup default\n", "IPv4 rules: bypass at P-1, divert at P");
	is_str(run("ip -6 rule show"),
	       "0:\tfrom all lookup local\n"
	       "9999:\tfrom all iif tun0 lookup main\n"
	       "10000:\tfrom all lookup 100\n"
	       "32766:\tfrom all lookup main\n", "IPv6 rules: bypass at P-1, divert at P");
	is_str(run("ip route show table 100 2>/dev/null"), "default dev tun0 proto 73 scope link\n",
	       "IPv4 default route via tun0 in table 100");
	is_str(run("ip -6 route show table 100 2>/dev/null"),
	       "default dev tun0 proto 73 metric 1024 pref medium\n",
	       "IPv6 default route via tun0 in table 100");
	is_str(sysctl("/proc/sys/net/ipv4/conf/tun0/forwarding"), "1", "tun0 forwarding=1");
	is_str(sysctl("/proc/sys/net/ipv4/conf/tun0/accept_local"), "1", "tun0 accept_local=1");
	is_str(sysctl("/proc/sys/net/ipv4/conf/tun0/rp_filter"), "0", "tun0 rp_filter=0");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/force_forwarding"), "1",
	       "tun0 IPv6 force_forwarding=1");
	is_str(run("ip addr show dev tun0 | grep inet"), "",
	       "tun0 has no address, not even an IPv6 link-local one");
	is_str(sysctl("/proc/sys/net/ipv4/conf/all/forwarding"), "0", "global IPv4 forwarding untouched");
	is_str(sysctl("/proc/sys/net/ipv6/conf/all/forwarding"), "0", "global IPv6 forwarding untouched");

	r = nl_open(&nl);
	if (r == 0)
		r = nl_link_get(nl, 0, "tun0", &info);
	is_int(r, 0, "nl_link_get tun0 by name");
	if (r == 0) {
		ok(info.ifindex == ifindex && info.mtu == 1400 && (info.flags & IFF_UP),
		   "tun0 is up with mtu 1400");
		ok(strcmp(info.kind, "tun") == 0 && !info.tun_persist && info.carrier,
		   "tun0: kind tun, not persistent, carrier on (a file is attached)");
		ok(info.has_inet_conf && info.inet_conf[IPV4_DEVCONF_FORWARDING] == 1 &&
		   info.inet_conf[IPV4_DEVCONF_ACCEPT_LOCAL] == 1 &&
		   info.inet_conf[IPV4_DEVCONF_RP_FILTER] == 0,
		   "devconf over netlink agrees with /proc/sys");
	}
	is_int(nl_link_get(nl, 0, "nosuchdev", &info), -ENODEV, "nl_link_get of a missing link");
	nl_close(nl);

	rt = routing_free(rt);
	ok(rt == NULL, "routing_free returns NULL");
	expect_clean("after free");
	is_str(sysctl("/proc/sys/net/ipv4/conf/tun0/forwarding"), "0", "forwarding restored");
	is_str(sysctl("/proc/sys/net/ipv4/conf/tun0/accept_local"), "0", "accept_local restored");
	is_str(sysctl("/proc/sys/net/ipv4/conf/tun0/rp_filter"), "2", "rp_filter restored to 2");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/force_forwarding"), "0",
	       "force_forwarding restored");
	routing_free(NULL);
	set_sysctl("/proc/sys/net/ipv4/conf/tun0/rp_filter", "0");
	free_config(cfg);
}

static void test_selectors(int ifindex)
{
	struct config *cfg = make_config();
	struct routing *rt = NULL;
	char err[CONFIG_ERR_MAX] = "";
	struct selector *d, *x;
	int r;

	d = cfg->divert = calloc(6, sizeof(*d));
	x = cfg->exclude = calloc(2, sizeof(*x));
	if (!d || !x)
		abort();
	cfg->n_divert = 6;
	cfg->n_exclude = 2;
	d[0].match.has_uid = true, d[0].match.uid_start = 1000, d[0].match.uid_end = 2000;
	d[1].match.ipproto = 6, d[1].match.has_dport = true;
	d[1].match.dport_start = d[1].match.dport_end = 443;
	d[2].match.has_fwmark = true, d[2].match.fwmark = 0x1, d[2].match.fwmask = 0xff;
	d[3].family = AF_INET, d[3].has_to = true, d[3].to = prefix("192.0.2.0", 24);
	d[4].has_from = true, d[4].from = prefix("2001:db8::", 32);
	d[5].family = AF_INET6, d[5].match.ipproto = 17, d[5].match.has_sport = true;
	d[5].match.sport_start = 1000, d[5].match.sport_end = 2000;
	x[0].has_to = true, x[0].to = prefix("10.0.0.0", 8);
	x[1].match.has_fwmark = true, x[1].match.fwmark = 0x2;

	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "install with selectors and exclusions");
	if (r < 0)
		diag("%s", err);
	is_str(run("ip rule show"),
	       "0:\tfrom all lookup local\n"
	       "9999:\tfrom all iif tun0 lookup main\n"
	       "9999:\tfrom all to 10.0.0.0/8 lookup main\n"
	       "9999:\tfrom all fwmark 0x2 lookup main\n"
	       "10000:\tfrom all uidrange 1000-2000 lookup 100\n"
	       "10000:\tfrom all ipproto tcp dport 443 lookup 100\n"
	       "10000:\tfrom all fwmark 0x1/0xff lookup 100\n"
	       "10000:\tfrom all to 192.0.2.0/24 lookup 100\n"
	       "32766:\tfrom all lookup main\n"
	       "32767:\tfrom all lookup default\n",
	       "IPv4: exclusions at P-1, v4 and any-family selectors at P");
	is_str(run("ip -6 rule show"),
	       "0:\tfrom all lookup local\n"
	       "9999:\tfrom all iif tun0 lookup main\n"
	       "9999:\tfrom all fwmark 0x2 lookup main\n"
	       "10000:\tfrom all uidrange 1000-2000 lookup 100\n"
	       "10000:\tfrom all ipproto tcp dport 443 lookup 100\n"
	       "10000:\tfrom all fwmark 0x1/0xff lookup 100\n"
	       "10000:\tfrom 2001:db8::/32 lookup 100\n"
	       "10000:\tfrom all ipproto udp sport 1000-2000 lookup 100\n"
	       "32766:\tfrom all lookup main\n",
	       "IPv6: v4-only selectors skipped");
	rt = routing_free(rt);
	expect_clean("selectors freed");

	/* IPv6 disabled: IPv6 selectors skipped, IPv6 left entirely alone. */
	cfg->ipv6 = false;
	cfg->n_divert = 2;
	d[0] = d[4];
	d[1] = d[3];
	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "install IPv4 only");
	is_str(run("ip rule show"),
	       "0:\tfrom all lookup local\n"
	       "9999:\tfrom all iif tun0 lookup main\n"
	       "9999:\tfrom all to 10.0.0.0/8 lookup main\n"
	       "9999:\tfrom all fwmark 0x2 lookup main\n"
	       "10000:\tfrom all to 192.0.2.0/24 lookup 100\n"
	       "32766:\tfrom all lookup main\n"
	       "32767:\tfrom all lookup default\n",
	       "IPv4 only: the IPv6 prefix selector is skipped");
	is_str(run("ip -6 rule show"), rules6_default, "IPv4 only: no IPv6 rule");
	is_str(run("ip -6 route show table 100 2>/dev/null"), "", "IPv4 only: no IPv6 route");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/force_forwarding"), "0",
	       "IPv4 only: force_forwarding untouched");
	rt = routing_free(rt);
	expect_clean("IPv4 only freed");
	free_config(cfg);
}

static void test_rollback(int ifindex)
{
	struct config *cfg = make_config();
	struct routing *rt = (struct routing *)&rt;	/* a sentinel, must stay */
	char err[CONFIG_ERR_MAX] = "";
	int r;

	sh("ip -6 rule add pref 10000 from all lookup 100");
	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, -EEXIST, "install fails on a conflicting IPv6 rule");
	is_str(err, "add rule 'from all lookup 100 pref 10000' (IPv6): File exists",
	       "the error names the step in iproute2 words");
	ok(rt == (struct routing *)&rt, "*ret untouched on failure");
	is_str(run("ip rule show"), rules4_default, "rollback: IPv4 rules removed");
	is_str(run("ip -6 rule show"),
	       "0:\tfrom all lookup local\n"
	       "10000:\tfrom all lookup 100\n"
	       "32766:\tfrom all lookup main\n", "rollback: only the foreign IPv6 rule remains");
	is_str(run("ip route show table 100 2>/dev/null"), "", "rollback: IPv4 route removed");
	is_str(run("ip -6 route show table 100 2>/dev/null"), "", "rollback: IPv6 route removed");
	is_str(sysctl("/proc/sys/net/ipv4/conf/tun0/forwarding"), "0", "rollback: forwarding restored");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/force_forwarding"), "0",
	       "rollback: force_forwarding restored");
	sh("ip -6 rule del pref 10000 from all lookup 100");

	/* Failing at the very first step. */
	r = routing_install(cfg, 9999, 0, &rt, err, sizeof(err));
	is_int(r, -ENODEV, "install on a missing ifindex fails");
	is_str(err, "set link tun0 addrgenmode none: No such device", "and says which step");
	expect_clean("after the failed installs");

	cfg->table = RT_TABLE_MAIN;
	is_int(routing_install(cfg, ifindex, 0, &rt, err, sizeof(err)), -EINVAL,
	       "table main is refused");
	is_str(err, "table 254 is reserved: Invalid argument", "with a reason");
	is_int(routing_cleanup(cfg, err, sizeof(err)), -EINVAL, "cleanup refuses table main too");
	free_config(cfg);
}

static void test_cleanup(int ifindex)
{
	struct config *cfg = make_config();
	char err[CONFIG_ERR_MAX] = "";
	int status = -1, r;
	pid_t pid;

	is_int(routing_cleanup(cfg, err, sizeof(err)), 0, "cleanup with nothing to do returns 0");

	/* A crash: install, then exit without routing_free(). */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct routing *rt;

		_exit(routing_install(cfg, ifindex, 0, &rt, err, sizeof(err)) == 0 ? 0 : 1);
	}
	ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	   WEXITSTATUS(status) == 0, "a child installed and exited without cleaning up");
	is_str(run("ip route show table 100 2>/dev/null"), "default dev tun0 proto 73 scope link\n",
	       "its route is left behind");

	/* Neighbours that are not ours by construction. */
	sh("ip rule add pref 10000 lookup 200");
	sh("ip rule add pref 9999 lookup 200");
	sh("ip rule add pref 20000 lookup main");
	sh("ip -6 rule add pref 10001 lookup 100");
	sh("ip route add default dev tun0 table 101");

	r = routing_cleanup(cfg, err, sizeof(err));
	is_int(r, 6, "cleanup removes 2 rules and 1 route per family");
	if (r < 0)
		diag("%s", err);
	is_str(run("ip rule show"),
	       "0:\tfrom all lookup local\n"
	       "9999:\tfrom all lookup 200\n"
	       "10000:\tfrom all lookup 200\n"
	       "20000:\tfrom all lookup main\n"
	       "32766:\tfrom all lookup main\n"
	       "32767:\tfrom all lookup default\n", "cleanup keeps other tables and priorities");
	is_str(run("ip -6 rule show"),
	       "0:\tfrom all lookup local\n"
	       "10001:\tfrom all lookup 100\n"
	       "32766:\tfrom all lookup main\n", "cleanup keeps table 100 at another priority");
	is_str(run("ip route show table 100 2>/dev/null"), "", "cleanup flushed table 100");
	is_str(run("ip -6 route show table 100 2>/dev/null"), "", "cleanup flushed IPv6 table 100");
	is_str(run("ip route show table 101"), "default dev tun0 scope link\n",
	       "cleanup keeps table 101");
	ok(if_nametoindex("tun0") == (unsigned int)ifindex, "cleanup keeps a tun in use");
	is_int(routing_cleanup(cfg, err, sizeof(err)), 0, "cleanup again: nothing left");

	sh("ip rule del pref 10000 lookup 200");
	sh("ip rule del pref 9999 lookup 200");
	sh("ip rule del pref 20000 lookup main");
	sh("ip -6 rule del pref 10001 lookup 100");
	sh("ip route del default dev tun0 table 101");
	expect_clean("after cleanup");
	free_config(cfg);
}

static void test_cleanup_tun(void)
{
	struct config *cfg = make_config();
	char err[CONFIG_ERR_MAX] = "";
	int fd;

	snprintf(cfg->tun_name, sizeof(cfg->tun_name), "tunp");
	fd = tun_open("tunp", true);
	ok(fd >= 0, "create persistent tun tunp");
	is_int(routing_cleanup(cfg, err, sizeof(err)), 0, "a persistent tun with a queue is kept");
	close(fd);
	ok(if_nametoindex("tunp") > 0, "tunp persists after close");
	is_int(routing_cleanup(cfg, err, sizeof(err)), 1, "cleanup deletes the abandoned tun");
	ok(if_nametoindex("tunp") == 0, "tunp is gone");
	is_int(routing_cleanup(cfg, err, sizeof(err)), 0, "and is idempotent");
	free_config(cfg);
}

static void test_restore(int ifindex)
{
	struct config *cfg = make_config();
	struct routing *rt = NULL;
	char err[CONFIG_ERR_MAX] = "";
	int r;

	/* A table above 255 goes in FRA_TABLE / RTA_TABLE. */
	cfg->table = 1000;
	cfg->priority = 500;
	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "install with table 1000, priority 500");
	if (r < 0) {
		diag("%s", err);
		free_config(cfg);
		return;
	}
	is_str(run("ip rule show"),
	       "0:\tfrom all lookup local\n"
	       "499:\tfrom all iif tun0 lookup main\n"
	       "500:\tfrom all lookup 1000\n"
	       "32766:\tfrom all lookup main\n"
	       "32767:\tfrom all lookup default\n", "table 1000 rules");
	is_str(run("ip -6 route show table 1000 2>/dev/null"),
	       "default dev tun0 proto 73 metric 1024 pref medium\n", "table 1000 route");

	is_int(routing_restore(rt, err, sizeof(err)), 0, "restore with nothing missing: 0");
	sh("ip rule del pref 500 lookup 1000");
	sh("ip -6 route del default dev tun0 table 1000");
	is_int(routing_restore(rt, err, sizeof(err)), 2, "restore re-adds the two removed");
	is_str(run("ip rule show"),
	       "0:\tfrom all lookup local\n"
	       "499:\tfrom all iif tun0 lookup main\n"
	       "500:\tfrom all lookup 1000\n"
	       "32766:\tfrom all lookup main\n"
	       "32767:\tfrom all lookup default\n", "rules as installed");
	is_str(run("ip -6 route show table 1000 2>/dev/null"),
	       "default dev tun0 proto 73 metric 1024 pref medium\n", "route as installed");
	is_int(routing_restore(rt, err, sizeof(err)), 0, "restore again: 0");
	routing_free(rt);
	is_str(run("ip rule show"), rules4_default, "table 1000 rules removed");
	is_str(run("ip -6 route show table 1000 2>/dev/null"), "", "table 1000 route removed");
	free_config(cfg);
}

static int count_cb(const struct nlmsghdr *nlh, void *userdata)
{
	(*(int *)userdata)++;
	return 0;
}

static int cancel_cb(const struct nlmsghdr *nlh, void *userdata)
{
	(*(int *)userdata)++;
	return -ECANCELED;
}

/* The request/ACK and dump machinery itself, against the kernel. */
static void test_netlink(void)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct nl_rule rule = { .family = AF_INET6, .priority = 777, .table = 100 };
	struct nl_route route = { .family = AF_INET, .table = 100, .protocol = 73 };
	struct nl_link_info info;
	struct nl *nl = NULL;
	int fd, n, r;

	r = nl_open(&nl);
	is_int(r, 0, "nl_open");
	if (r < 0)
		return;

	n = 0;
	is_int(nl_dump(nl, RTM_GETRULE, AF_INET, count_cb, &n), 0, "dump IPv4 rules");
	is_int(n, 3, "three default IPv4 rules");
	n = 0;
	is_int(nl_dump(nl, RTM_GETRULE, AF_INET, cancel_cb, &n), -ECANCELED,
	       "a failing callback ends the dump with its error");
	is_int(n, 1, "and is not called again");
	is_int(nl_link_get(nl, 0, "lo", &info), 0, "the socket is still in step afterwards");
	ok(strcmp(info.name, "lo") == 0 && info.ifindex == 1, "lo is ifindex 1");

	nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &rule);
	is_int(nl_request(nl, buf, NULL, NULL), 0, "add rule: ACK 0");
	nl_build_rule(buf, sizeof(buf), RTM_NEWRULE, &rule);
	is_int(nl_request(nl, buf, NULL, NULL), -EEXIST, "add it again: -EEXIST (NLM_F_EXCL)");
	nl_build_rule(buf, sizeof(buf), RTM_DELRULE, &rule);
	is_int(nl_request(nl, buf, NULL, NULL), 0, "delete rule: ACK 0");
	nl_build_rule(buf, sizeof(buf), RTM_DELRULE, &rule);
	is_int(nl_request(nl, buf, NULL, NULL), -ENOENT, "delete it again: -ENOENT");

	fd = tun_open("tund", false);
	route.oif = (int)if_nametoindex("tund");
	ok(fd >= 0 && route.oif > 0, "a second tun, left down");
	nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &route);
	is_int(nl_request(nl, buf, NULL, NULL), -ENETDOWN, "route via a down link: -ENETDOWN");
	ok(nl_extack(nl)[0] != '\0', "with the kernel's reason: \"%s\"", nl_extack(nl));
	is_int(nl_link_get(nl, route.oif, NULL, &info), 0, "get link by index");
	ok(strcmp(info.name, "tund") == 0 && !(info.flags & IFF_UP), "tund is down");
	ok(nl_extack(nl)[0] == '\0', "a successful request clears the reason");
	if (fd >= 0)
		close(fd);
	nl_close(nl);
}

/* failure = "closed": unreachable routes under the tun route, kept with the rules on exit. */
static void test_fail_closed(int ifindex)
{
	struct config *cfg = make_config();
	char err[CONFIG_ERR_MAX] = "";
	struct routing *rt = NULL;
	int r;

	cfg->fail_closed = true;
	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "fail-closed install");
	if (r < 0) {
		diag("%s", err);
		free_config(cfg);
		return;
	}
	is_str(run("ip route show table 100"),
	       "default dev tun0 proto 73 scope link\n"
	       "unreachable default proto 73 metric 4294967295\n",
	       "IPv4: the tun route, then unreachable at the highest metric");
	ok(strstr(run("ip -6 route show table 100"), "unreachable default dev lo proto 73 metric 4294967295") != NULL,
	   "IPv6: unreachable at the highest metric");

	/* Exit in fail-closed mode: the block stays. */
	routing_keep_block(rt);
	rt = routing_free(rt);
	is_str(run("ip rule show | grep -c -e 'lookup 100' -e 'iif tun0 lookup main'"), "2\n",
	       "after routing_free() with the block kept: the IPv4 rules stay");
	is_str(run("ip route show table 100"),
	       "unreachable default proto 73 metric 4294967295\n",
	       "the tun route is gone, the unreachable one stays");

	/* A new instance takes the block over; cleanup keeps it, cleanup_all does not. */
	is_int(routing_cleanup(cfg, err, sizeof(err)), 0, "cleanup keeps the block (nothing removed)");
	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "install over the block takes it over");
	if (r < 0)
		diag("%s", err);
	is_str(run("ip rule show | grep -c 'lookup 100'"), "1\n", "one diversion rule, not two");
	rt = routing_free(rt);
	expect_clean("routing_free() without keep_block removes the block too");

	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	routing_keep_block(rt);
	rt = routing_free(rt);
	is_int(routing_cleanup_all(cfg, err, sizeof(err)), 6,
	       "cleanup_all removes the block: 2 rules and 1 unreachable route per family");
	expect_clean("after cleanup_all");

	/* The guardian's removal of the diversion alone, and its restoration. */
	cfg->fail_closed = false;
	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(routing_remove_diversion(cfg, err, sizeof(err)), 2,
	       "remove_diversion deletes the diversion rule of each family");
	is_str(run("ip rule show | grep -c -e 'lookup 100' -e 'iif tun0 lookup main'"), "1\n",
	       "the bypass stays");
	is_int(routing_restore(rt, err, sizeof(err)), 2, "routing_restore puts both back");
	is_str(run("ip rule show | grep -c 'lookup 100'"), "1\n", "the diversion is back");
	rt = routing_free(rt);
	expect_clean("after the guardian test");
	free_config(cfg);
}

/* --- rule order, repair, notifications ------------------------------------ */

static struct nl_rule order_rule(uint32_t priority, uint32_t table, const char *iif)
{
	struct nl_rule r = { .family = AF_INET, .action = FR_ACT_TO_TBL, .priority = priority,
			     .table = table };

	snprintf(r.iifname, sizeof(r.iifname), "%s", iif);
	return r;
}

/* Feed the rules in order; the result of routing_order_result(), err in err. */
static int order_of(const struct nl_rule *rules, size_t n, unsigned int diversions, char *err,
		    size_t errlen)
{
	struct routing_order o;

	routing_order_init(&o, "tun0", P, T);
	for (size_t i = 0; i < n; i++)
		routing_order_next(&o, &rules[i]);
	err[0] = '\0';
	return routing_order_result(&o, AF_INET, diversions, err, errlen);
}

static void test_order_pure(void)
{
	struct nl_rule rules[8];
	char err[CONFIG_ERR_MAX];

	rules[0] = order_rule(0, RT_TABLE_LOCAL, "");
	rules[1] = order_rule(P - 1, RT_TABLE_MAIN, "tun0");
	rules[2] = order_rule(P, T, "");
	rules[3] = order_rule(32766, RT_TABLE_MAIN, "");
	is_int(order_of(rules, 4, 1, err, sizeof(err)), 0, "order: local, bypass, diversion, main");

	rules[1] = order_rule(100, T, "");
	rules[2] = order_rule(P - 1, RT_TABLE_MAIN, "tun0");
	rules[3] = order_rule(P, T, "");
	is_int(order_of(rules, 4, 1, err, sizeof(err)), -ELOOP,
	       "a rule looking up T before the bypass is a loop");
	is_str(err, "rule 'from all lookup 100 pref 100' (IPv4) comes before the bypass "
	       "'from all iif tun0 lookup main pref 9999': packets written back to tun0 would be "
	       "diverted again: Too many levels of symbolic links", "and says which");

	rules[1] = order_rule(100, T, "eth0");
	is_int(order_of(rules, 4, 1, err, sizeof(err)), 0, "one bound to another input is not");
	rules[1] = order_rule(100, T, "");
	snprintf(rules[1].oifname, sizeof(rules[1].oifname), "eth0");
	is_int(order_of(rules, 4, 1, err, sizeof(err)), 0,
	       "nor one bound to an output device (forwarded packets have none)");
	rules[1] = order_rule(100, T, "eth0");
	rules[1].invert = true;
	is_int(order_of(rules, 4, 1, err, sizeof(err)), -ELOOP, "\"not iif eth0\" is");
	rules[1] = order_rule(100, 200, "");
	is_int(order_of(rules, 4, 1, err, sizeof(err)), 0, "another table is not looked at");
	rules[1] = order_rule(P - 1, T, "tun0");
	is_int(order_of(rules, 4, 1, err, sizeof(err)), -ELOOP,
	       "\"iif tun0 lookup T\" at P-1 before the bypass is");

	rules[1] = order_rule(P - 1, RT_TABLE_MAIN, "tun0");
	rules[1].invert = true;
	rules[2] = order_rule(P, T, "");
	is_int(order_of(rules, 3, 1, err, sizeof(err)), -ELOOP,
	       "a \"not iif tun0\" look-alike is no bypass");

	rules[1] = order_rule(P, T, "");
	is_int(order_of(rules, 2, 1, err, sizeof(err)), -ELOOP, "diversion without bypass: a loop");
	rules[1] = order_rule(32766, RT_TABLE_MAIN, "");
	is_int(order_of(rules, 2, 0, err, sizeof(err)), -ENOENT, "no bypass at all");
	is_str(err, "the bypass 'from all iif tun0 lookup main pref 9999' (IPv4) is missing: "
	       "No such file or directory", "says so");
	rules[1] = order_rule(P - 1, RT_TABLE_MAIN, "tun0");
	rules[2] = order_rule(P, T, "");
	is_int(order_of(rules, 3, 2, err, sizeof(err)), -ENOENT, "a diversion rule missing");
	is_int(order_of(rules, 2, 0, err, sizeof(err)), 0, "no diversion rule when none is due");
}

static void test_order_install(int ifindex)
{
	struct config *cfg = make_config();
	struct routing *rt = (struct routing *)&rt;
	char err[CONFIG_ERR_MAX] = "";

	sh("ip -6 rule add pref 200 lookup 100");
	is_int(routing_install(cfg, ifindex, 0, &rt, err, sizeof(err)), -ELOOP,
	       "install refuses a rule looking up T before the bypass");
	is_str(err, "rule 'from all lookup 100 pref 200' (IPv6) comes before the bypass "
	       "'from all iif tun0 lookup main pref 9999': packets written back to tun0 would be "
	       "diverted again: Too many levels of symbolic links", "with the culprit");
	ok(rt == (struct routing *)&rt, "*ret untouched");
	is_str(run("ip -6 rule show"),
	       "0:\tfrom all lookup local\n"
	       "200:\tfrom all lookup 100\n"
	       "32766:\tfrom all lookup main\n", "rolled back: only the foreign rule remains");
	is_str(run("ip rule show"), rules4_default, "rolled back: IPv4 too");
	sh("ip -6 rule del pref 200 lookup 100");

	/* A rule for another input interface in front is harmless. */
	sh("ip rule add pref 200 iif lo lookup 100");
	rt = NULL;
	is_int(routing_install(cfg, ifindex, 0, &rt, err, sizeof(err)), 0,
	       "an \"iif lo lookup 100\" in front is no loop");
	routing_free(rt);
	sh("ip rule del pref 200 iif lo lookup 100");
	expect_clean("after the order checks");
	free_config(cfg);
}

/* With the re-injection program: the tun's own IPv6 forwarding flag too, recorded, repaired, restored. */
static void test_reinject(int ifindex)
{
	struct config *cfg = make_config();
	char err[CONFIG_ERR_MAX] = "", item[ROUTING_ITEM_MAX];
	struct routing *rt = NULL;
	char old_ff[32];
	int r;

	snprintf(old_ff, sizeof(old_ff), "%s", sysctl("/proc/sys/net/ipv6/conf/tun0/force_forwarding"));
	sh("echo 0 > /proc/sys/net/ipv6/conf/tun0/forwarding");
	is_int(routing_has_force_forwarding("tun0"), 1, "this kernel has force_forwarding (6.17)");
	is_int(routing_has_force_forwarding("nosuchdev"), 0, "no force_forwarding for a missing device");
	r = routing_install(cfg, ifindex, ROUTING_REINJECT, &rt, err, sizeof(err));
	is_int(r, 0, "install with ROUTING_REINJECT");
	if (r < 0) {
		diag("%s", err);
		free_config(cfg);
		return;
	}
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/forwarding"), "1", "tun0 IPv6 forwarding=1");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/force_forwarding"), "1",
	       "tun0 IPv6 force_forwarding=1 where the kernel has it");
	is_str(sysctl("/proc/sys/net/ipv6/conf/all/forwarding"), "0", "global IPv6 forwarding untouched");
	sh("echo 0 > /proc/sys/net/ipv6/conf/tun0/forwarding");
	r = routing_repair(rt, item, sizeof(item), err, sizeof(err));
	is_int(r, 1, "repair puts the tun's IPv6 forwarding back");
	is_str(item, "/proc/sys/net/ipv6/conf/tun0/forwarding=1", "and names it");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/forwarding"), "1", "IPv6 forwarding 1 again");
	rt = routing_free(rt);
	expect_clean("after free (reinject)");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/forwarding"), "0", "IPv6 forwarding restored");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/force_forwarding"), old_ff,
	       "force_forwarding restored");
	free_config(cfg);
}

static void test_repair(int ifindex)
{
	struct config *cfg = make_config();
	char err[CONFIG_ERR_MAX] = "", item[ROUTING_ITEM_MAX];
	struct routing *rt = NULL;
	const char *rules4, *rules6, *routes4, *routes6;
	char want4[512], want6[512], wantr4[256], wantr6[256];
	int r;

	cfg->fail_closed = true;
	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "install fail-closed for the repair tests");
	if (r < 0) {
		diag("%s", err);
		free_config(cfg);
		return;
	}
	rules4 = run("ip -4 rule show");
	snprintf(want4, sizeof(want4), "%s", rules4);
	rules6 = run("ip -6 rule show");
	snprintf(want6, sizeof(want6), "%s", rules6);
	routes4 = run("ip -4 route show table 100");
	snprintf(wantr4, sizeof(wantr4), "%s", routes4);
	routes6 = run("ip -6 route show table 100");
	snprintf(wantr6, sizeof(wantr6), "%s", routes6);

	is_int(routing_repair(rt, item, sizeof(item), err, sizeof(err)), 0,
	       "repair with everything in place: 0");
	/* lo for foreign routes in table 100. */
	sh("ip link set lo up");
	is_str(item, "", "and names nothing");

	sh("ip -4 rule del pref 9999 iif tun0 lookup main");
	sh("ip -6 route del unreachable default table 100 metric 4294967295");
	sh("ip -4 route replace default dev lo table 100");
	sh("echo 0 > /proc/sys/net/ipv4/conf/tun0/accept_local");
	sh("echo 0 > /proc/sys/net/ipv6/conf/tun0/force_forwarding");
	r = routing_repair(rt, item, sizeof(item), err, sizeof(err));
	is_int(r, 5, "repair puts back devconf, sysctl, bypass, a replaced route, an unreachable one");
	if (r < 0)
		diag("%s", err);
	is_str(item, "IPv4 devconf of tun0 (forwarding 1, accept_local 1, rp_filter 0)",
	       "the first in the order of installation is named");
	is_str(run("ip -4 rule show"), want4, "IPv4 rules as installed");
	is_str(run("ip -6 rule show"), want6, "IPv6 rules as installed");
	is_str(run("ip -4 route show table 100"), wantr4, "IPv4 routes as installed (ours replaced lo's)");
	is_str(run("ip -6 route show table 100"), wantr6, "IPv6 routes as installed");
	is_str(sysctl("/proc/sys/net/ipv4/conf/tun0/accept_local"), "1", "accept_local 1 again");
	is_str(sysctl("/proc/sys/net/ipv6/conf/tun0/force_forwarding"), "1", "force_forwarding 1 again");

	sh("ip link set tun0 down");
	r = routing_repair(rt, item, sizeof(item), err, sizeof(err));
	ok(r >= 2, "after link down: the link and the routes it took along (%d)", r);
	is_str(item, "link tun0 up", "the link first");
	is_str(run("ip -4 route show table 100"), wantr4, "IPv4 routes back");
	is_str(run("ip -6 route show table 100"), wantr6, "IPv6 routes back");
	is_int(routing_repair(rt, item, sizeof(item), err, sizeof(err)), 0, "repair again: 0");

	/* Not ours to judge: a foreign rule and route leave the repair at 0. */
	sh("ip rule add pref 10000 lookup 100 fwmark 7");
	sh("ip route add 192.0.2.0/24 dev lo table 100");
	is_int(routing_repair(rt, item, sizeof(item), err, sizeof(err)), 0,
	       "foreign look-alikes are no missing state");
	/* A look-alike does not stand in for ours. */
	sh("ip -4 rule del pref 10000 lookup 100 fwmark 7");
	sh("ip -4 rule del pref 10000 lookup 100");
	sh("ip rule add pref 10000 not lookup 100");
	is_int(routing_repair(rt, item, sizeof(item), err, sizeof(err)), -EEXIST,
	       "a \"not\" rule in the place of the diversion does not count as it, and is in the way");
	is_str(err, "restore rule 'from all lookup 100 pref 10000' (IPv4): File exists",
	       "the kernel's EEXIST is reported");
	sh("ip rule del pref 10000 not lookup 100");
	sh("ip route del 192.0.2.0/24 dev lo table 100");
	is_int(routing_repair(rt, item, sizeof(item), err, sizeof(err)), 1, "then it comes back");
	is_str(run("ip -4 rule show"), want4, "IPv4 rules as installed");

	rt = routing_free(rt);
	sh("ip link set lo down");
	expect_clean("after the repair tests");
	free_config(cfg);
}

/* A notification as the kernel would send it: a built request re-typed. */
static const struct nlmsghdr *as_event(void *buf, uint16_t type, uint32_t pid)
{
	struct nlmsghdr *nlh = buf;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = 0;
	nlh->nlmsg_pid = pid;
	return nlh;
}

static const struct nlmsghdr *netconf_event(void *buf, uint8_t family, int32_t ifindex,
					     int type, uint32_t value)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct netconfmsg *ncm;

	nlh->nlmsg_type = RTM_NEWNETCONF;
	ncm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ncm));
	ncm->ncm_family = family;
	mnl_attr_put_u32(nlh, NETCONFA_IFINDEX, (uint32_t)ifindex);
	if (type)
		mnl_attr_put_u32(nlh, (uint16_t)type, value);
	return nlh;
}

static void test_concerns(int ifindex)
{
	_Alignas(struct nlmsghdr) char buf[NL_MSG_SIZE];
	struct config *cfg = make_config();
	char err[CONFIG_ERR_MAX] = "";
	struct nl_rule rule = { .family = AF_INET6, .priority = P, .table = T };
	struct nl_route route = { .family = AF_INET, .table = T, .oif = ifindex };
	struct nl_link link = { .ifindex = ifindex, .up = true };
	struct routing *rt = NULL;
	int r;

	r = routing_install(cfg, ifindex, 0, &rt, err, sizeof(err));
	is_int(r, 0, "install for the notification tests");
	if (r < 0) {
		free_config(cfg);
		return;
	}
	nl_build_rule(buf, sizeof(buf), RTM_DELRULE, &rule);
	ok(routing_event_concerns(rt, as_event(buf, RTM_DELRULE, 4242)),
	   "our IPv6 diversion deleted by someone: a concern");
	ok(!routing_event_concerns(rt, as_event(buf, RTM_NEWRULE, 4242)), "added: none");
	rule.priority = P + 1;
	nl_build_rule(buf, sizeof(buf), RTM_DELRULE, &rule);
	ok(!routing_event_concerns(rt, as_event(buf, RTM_DELRULE, 4242)),
	   "a rule at another priority: none");

	nl_build_route(buf, sizeof(buf), RTM_DELROUTE, &route);
	ok(routing_event_concerns(rt, as_event(buf, RTM_DELROUTE, 0)), "our IPv4 route deleted");
	nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &route);
	ok(!routing_event_concerns(rt, as_event(buf, RTM_NEWROUTE, 0)), "our IPv4 route added: none");
	route.oif = 1;
	nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &route);
	ok(routing_event_concerns(rt, as_event(buf, RTM_NEWROUTE, 0)),
	   "another route in its place (ip route replace): a concern");
	route.priority = 5;
	nl_build_route(buf, sizeof(buf), RTM_NEWROUTE, &route);
	ok(!routing_event_concerns(rt, as_event(buf, RTM_NEWROUTE, 0)),
	   "another route at another metric: none");
	route.priority = 0;
	route.table = T + 1;
	route.oif = ifindex;
	nl_build_route(buf, sizeof(buf), RTM_DELROUTE, &route);
	ok(!routing_event_concerns(rt, as_event(buf, RTM_DELROUTE, 0)), "another table: none");

	nl_build_setlink(buf, sizeof(buf), &link);
	ok(!routing_event_concerns(rt, as_event(buf, RTM_NEWLINK, 0)), "tun0 up: none");
	link.up = false;
	nl_build_setlink(buf, sizeof(buf), &link);
	ok(routing_event_concerns(rt, as_event(buf, RTM_NEWLINK, 0)), "tun0 down: a concern");
	link.ifindex = 1;
	nl_build_setlink(buf, sizeof(buf), &link);
	ok(!routing_event_concerns(rt, as_event(buf, RTM_NEWLINK, 0)), "lo down: none");

	memset(buf, 0, sizeof(buf));
	ok(routing_event_concerns(rt, netconf_event(buf, AF_INET, ifindex, NETCONFA_FORWARDING, 0)),
	   "tun0 IPv4 forwarding 0: a concern");
	memset(buf, 0, sizeof(buf));
	ok(!routing_event_concerns(rt, netconf_event(buf, AF_INET, ifindex, NETCONFA_FORWARDING, 1)),
	   "tun0 IPv4 forwarding 1: none");
	memset(buf, 0, sizeof(buf));
	ok(routing_event_concerns(rt, netconf_event(buf, AF_INET, ifindex, NETCONFA_RP_FILTER, 2)),
	   "tun0 rp_filter 2: a concern");
	memset(buf, 0, sizeof(buf));
	ok(routing_event_concerns(rt, netconf_event(buf, AF_INET6, ifindex, 0, 0)),
	   "any IPv6 netconf of tun0 (force_forwarding has no attribute name here)");
	memset(buf, 0, sizeof(buf));
	ok(!routing_event_concerns(rt, netconf_event(buf, AF_INET, 1, NETCONFA_FORWARDING, 0)),
	   "lo's: none");

	routing_free(rt);
	free_config(cfg);
}

int main(void)
{
	int fd, ifindex;

	test_order_pure();
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0 ||
	    system("ip rule show >/dev/null 2>&1") != 0) {
		diag("the kernel tests need root, a network namespace and ip(8): skipped");
		return tap_done();
	}
	/* From here on only our own namespace is touched. */
	fd = tun_open("tun0", false);
	if (fd < 0) {
		diag("cannot create a tun device: the kernel tests are skipped");
		return tap_done();
	}
	ifindex = (int)if_nametoindex("tun0");

	expect_clean("fresh namespace");
	test_netlink();
	test_basic(ifindex);
	test_selectors(ifindex);
	test_rollback(ifindex);
	test_cleanup(ifindex);
	test_cleanup_tun();
	test_restore(ifindex);
	test_fail_closed(ifindex);
	test_order_install(ifindex);
	test_repair(ifindex);
	test_reinject(ifindex);
	test_concerns(ifindex);

	close(fd);
	return tap_done();
}
