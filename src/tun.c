/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "tun.h"
#include "util.h"

static int tun_open_queue(const char *name, unsigned int flags, char *ret_name)
{
	struct ifreq ifr = { 0 };
	int fd, r;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	ifr.ifr_flags = flags;
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = negative_errno();
		close(fd);
		return r;
	}
	memcpy(ret_name, ifr.ifr_name, IFNAMSIZ);
	return fd;
}

int tun_open(const char *name, unsigned int n_queues, struct tun **ret)
{
	unsigned int flags = IFF_TUN | IFF_NO_PI;
	struct tun *t;
	unsigned int i;
	int r;

	if (!name || strlen(name) >= IFNAMSIZ || n_queues == 0 || n_queues > TUN_QUEUES_MAX)
		return -EINVAL;
	if (n_queues > 1)
		flags |= IFF_MULTI_QUEUE;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (i = 0; i < TUN_QUEUES_MAX; i++)
		t->fds[i] = -1;

	for (i = 0; i < n_queues; i++) {
		r = tun_open_queue(name, flags, t->name);
		if (r < 0)
			goto fail;
		t->fds[i] = r;
		t->n_queues++;
	}
	t->ifindex = if_nametoindex(t->name);
	if (t->ifindex == 0) {
		r = negative_errno();
		goto fail;
	}
	*ret = t;
	return 0;
fail:
	tun_close(t);
	return r;
}

struct tun *tun_close(struct tun *t)
{
	unsigned int i;

	if (!t)
		return NULL;
	for (i = 0; i < t->n_queues; i++)
		safe_close(t->fds[i]);
	free(t);
	return NULL;
}

ssize_t tun_read(struct tun *t, unsigned int q, uint8_t *buf, size_t len)
{
	ssize_t n;

	n = read(t->fds[q], buf, len);
	if (n < 0)
		return negative_errno();
	return n;
}

int tun_write(struct tun *t, unsigned int q, const uint8_t *buf, size_t len)
{
	ssize_t n;

	n = write(t->fds[q], buf, len);
	if (n < 0)
		return negative_errno();
	if ((size_t)n != len)
		return -EIO;
	return 0;
}
