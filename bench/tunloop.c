/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The floor of the userspace path: the least a program can do with
 * ipmodd's diversion.  It creates a tun (IFF_TUN | IFF_NO_PI, one queue,
 * blocking), and for each packet read() from it does what ipmodd does to a
 * packet no rule touches, the TTL compensation (IPv4 TTL + 1 with an
 * incremental header checksum fix, RFC 1624; IPv6 hop limit + 1; 255 stays
 * 255), and write()s it back.  No rules, no event loop, no batching.
 *
 * With --vnet it asks for what ipmodd asks for by default (tun.offload):
 * IFF_VNET_HDR and the CSUM, TSO4, TSO6, TSO_ECN and, where the kernel has
 * them, USO4/USO6 offloads; each packet then comes with a virtio-net header,
 * written back unchanged (a super-packet stays one, a partial checksum
 * partial: the TTL is in neither).
 *
 * It sets up nothing else: the caller brings the link up and installs the
 * policy routing (bench/run does, as DESIGN.md section 1 describes).  It
 * runs until a signal ends it, and then prints what it saw on stderr.
 *
 *   tunloop [--vnet] NAME
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Linux 6.2; Debian 12's headers lack them. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif
#define VNET_HDR_LEN 10

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The TTL compensation of pkt_forward_compensate(). */
static void compensate(uint8_t *p, size_t len)
{
	if (len >= 20 && p[0] >> 4 == 4) {
		uint16_t old = (uint16_t)(p[8] << 8 | p[9]), new, hc;
		uint32_t sum;

		if (p[8] == 255)
			return;
		p[8]++;
		new = (uint16_t)(p[8] << 8 | p[9]);
		/* HC' = ~(~HC + ~m + m') */
		hc = (uint16_t)(p[10] << 8 | p[11]);
		sum = (uint16_t)~hc + (uint16_t)~old + (uint32_t)new;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		hc = (uint16_t)~sum;
		p[10] = (uint8_t)(hc >> 8);
		p[11] = (uint8_t)hc;
	} else if (len >= 40 && p[0] >> 4 == 6) {
		if (p[7] < 255)
			p[7]++;
	}
}

/* The header size, little-endian headers and the offloads, USO first. */
static int setup_vnet(int fd)
{
	unsigned int off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
	int sz = VNET_HDR_LEN, le = 1;

	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0 || ioctl(fd, TUNSETVNETLE, &le) < 0)
		return -1;
	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(off | TUN_F_USO4 | TUN_F_USO6)) == 0) {
		fprintf(stderr, "tunloop: offload csum,tso4,tso6,tso-ecn,uso4,uso6\n");
		return 0;
	}
	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)off) == 0) {
		fprintf(stderr, "tunloop: offload csum,tso4,tso6,tso-ecn\n");
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static uint8_t buf[VNET_HDR_LEN + 65536];
	struct ifreq ifr;
	struct sigaction sa;
	unsigned long long packets = 0, errors = 0;
	const char *name = argv[argc - 1];
	size_t hdr = 0;
	int fd;

	if (argc == 3 && strcmp(argv[1], "--vnet") == 0)
		hdr = VNET_HDR_LEN;
	if ((argc != 2 && !hdr) || name[0] == '-' || strlen(name) >= IFNAMSIZ) {
		fprintf(stderr, "usage: tunloop [--vnet] NAME\n");
		return 2;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror("tunloop: /dev/net/tun");
		return 1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (hdr ? IFF_VNET_HDR : 0);
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		perror("tunloop: TUNSETIFF");
		return 1;
	}
	if (hdr && setup_vnet(fd) < 0) {
		perror("tunloop: offload");
		return 1;
	}

	/* No SA_RESTART: a signal ends the blocking read. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	while (!stop) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("tunloop: read");
			return 1;
		}
		if ((size_t)n < hdr)
			continue;
		packets++;
		compensate(buf + hdr, (size_t)n - hdr);
		if (write(fd, buf, (size_t)n) != n)
			errors++;
	}
	fprintf(stderr, "tunloop: %llu packets, %llu write errors\n", packets, errors);
	return 0;
}
