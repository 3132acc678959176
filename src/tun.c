/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdio.h>
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

/*
 * The header and offload settings belong to the device: set once, through
 * the first queue.  USO (Linux 6.2) is tried first, then the rest alone.
 */
static int tun_setup_offload(struct tun *t)
{
	static const unsigned int base = TUN_OFF_CSUM | TUN_OFF_TSO4 | TUN_OFF_TSO6 |
					 TUN_OFF_TSO_ECN;
	int sz = sizeof(struct virtio_net_hdr), le = 1;

	if (ioctl(t->fds[0], TUNSETVNETHDRSZ, &sz) < 0)
		return negative_errno();
	/* Little-endian on any host, as gso.c reads it. */
	if (ioctl(t->fds[0], TUNSETVNETLE, &le) < 0)
		return negative_errno();
	t->offload = base | TUN_OFF_USO4 | TUN_OFF_USO6;
	if (ioctl(t->fds[0], TUNSETOFFLOAD, (unsigned long)t->offload) == 0)
		return 0;
	t->offload = base;
	if (ioctl(t->fds[0], TUNSETOFFLOAD, (unsigned long)t->offload) == 0)
		return 0;
	t->offload = 0;
	return negative_errno();
}

static void tun_close_queues(struct tun *t)
{
	for (unsigned int i = 0; i < t->n_queues; i++)
		t->fds[i] = safe_close(t->fds[i]);
	t->n_queues = 0;
}

static int tun_open_queues(struct tun *t, const char *name, unsigned int n_queues,
			   unsigned int flags)
{
	int r;

	for (unsigned int i = 0; i < n_queues; i++) {
		r = tun_open_queue(name, flags, t->name);
		if (r < 0)
			return r;
		t->fds[i] = r;
		t->n_queues++;
	}
	return 0;
}

int tun_open(const char *name, unsigned int n_queues, bool offload, struct tun **ret)
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

	if (offload) {
		r = tun_open_queues(t, name, n_queues, flags | IFF_VNET_HDR);
		if (r == -EBUSY)
			goto fail;
		if (r >= 0)
			r = tun_setup_offload(t);
		if (r >= 0)
			t->hdrlen = sizeof(struct virtio_net_hdr);
		else
			t->offload_error = r;
		/* The header is a flag of the device: a new one without it. */
		if (r < 0)
			tun_close_queues(t);
	}
	if (!t->hdrlen) {
		r = tun_open_queues(t, name, n_queues, flags);
		if (r < 0)
			goto fail;
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
	if (!t)
		return NULL;
	tun_close_queues(t);
	free(t);
	return NULL;
}

void tun_offload_name(unsigned int offload, char *buf, size_t len)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} names[] = {
		{ TUN_OFF_CSUM, "csum" },
		{ TUN_OFF_TSO4, "tso4" },
		{ TUN_OFF_TSO6, "tso6" },
		{ TUN_OFF_TSO_ECN, "tso-ecn" },
		{ TUN_OFF_USO4, "uso4" },
		{ TUN_OFF_USO6, "uso6" },
	};
	size_t n = 0;
	int w;

	snprintf(buf, len, "off");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!(offload & names[i].bit))
			continue;
		w = snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "," : "",
				 names[i].name);
		if (w < 0 || (size_t)w >= len - n)
			return;
		n += (size_t)w;
	}
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
