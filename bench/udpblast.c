/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small-packet UDP for bench/run: a sender as fast as one thread can go
 * (sendmmsg, batches of 64; send errors such as ENOBUFS from a full queue
 * are counted and ignored) and a sink that counts what arrives (recvmmsg).
 *
 *   udpblast send ADDRESS PORT SECONDS [PAYLOAD]   prints "sent=N seconds=S errors=E"
 *   udpblast sink PORT MAX-SECONDS                 prints "ready", then, on SIGINT or
 *                                                  SIGTERM (or after MAX-SECONDS),
 *                                                  "received=N"
 *
 * The sink listens on IPv6 and IPv4 (a dual-stack socket).  Delivered
 * packets per second are the sink's count over the sender's seconds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define BUFSZ 2048

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: udpblast send ADDRESS PORT SECONDS [PAYLOAD]\n"
			"       udpblast sink PORT MAX-SECONDS\n");
	return 2;
}

static int do_send(const char *addr, int port, double seconds, size_t payload)
{
	static char data[BUFSZ];
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct mmsghdr msgs[BATCH];
	struct iovec iov;
	unsigned long long sent = 0, errors = 0;
	double t0, t;
	int fd, i;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		sslen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		sslen = sizeof(struct sockaddr_in6);
	} else {
		fprintf(stderr, "udpblast: bad address %s\n", addr);
		return 2;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		perror("udpblast: socket/connect");
		return 1;
	}
	memset(data, 'x', sizeof(data));
	iov.iov_base = data;
	iov.iov_len = payload;
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	t0 = now_s();
	do {
		int n = sendmmsg(fd, msgs, BATCH, 0);

		if (n > 0)
			sent += (unsigned long long)n;
		else
			errors++;	/* ENOBUFS, ECONNREFUSED from an earlier ICMP error ... */
		t = now_s();
	} while (t - t0 < seconds && !stop);
	printf("sent=%llu seconds=%.6f errors=%llu\n", sent, t - t0, errors);
	return 0;
}

static int do_sink(int port, int max_seconds)
{
	static char bufs[BATCH][BUFSZ];
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	struct sockaddr_in6 sin6;
	unsigned long long received = 0;
	int fd, off = 0, rcvbuf = 16 << 20, i;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("udpblast: socket");
		return 1;
	}
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	/* As root, past rmem_max; otherwise whatever rmem_max allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons((uint16_t)port);
	sin6.sin6_addr = in6addr_any;
	if (bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0) {
		perror("udpblast: bind");
		return 1;
	}
	for (i = 0; i < BATCH; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = BUFSZ;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	alarm((unsigned int)max_seconds);
	printf("ready\n");
	fflush(stdout);

	while (!stop) {
		int n = recvmmsg(fd, msgs, BATCH, 0, NULL);

		if (n > 0)
			received += (unsigned long long)n;
		else if (n < 0 && errno != EINTR) {
			perror("udpblast: recvmmsg");
			break;
		}
	}
	printf("received=%llu\n", received);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	/* No SA_RESTART: a signal ends a blocking call, and the loop then. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);

	if (argc >= 5 && argc <= 6 && !strcmp(argv[1], "send")) {
		size_t payload = argc == 6 ? strtoul(argv[5], NULL, 10) : 64;

		if (payload > BUFSZ)
			return usage();
		return do_send(argv[2], atoi(argv[3]), atof(argv[4]), payload);
	}
	if (argc == 4 && !strcmp(argv[1], "sink"))
		return do_sink(atoi(argv[2]), atoi(argv[3]));
	return usage();
}
