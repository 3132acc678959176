/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The TUN device: one descriptor per queue, packets read and written whole.
 * Each buffer handed to tun_read()/tun_write() starts with tun->hdrlen bytes
 * reserved for a virtio-net header, so offload can be switched on without
 * changing the callers.
 */
#ifndef IPMODD_TUN_H
#define IPMODD_TUN_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TUN_QUEUES_MAX 16

struct tun {
	char name[IFNAMSIZ];
	int ifindex;
	unsigned int n_queues;
	size_t hdrlen;		/* bytes of virtio-net header before each packet */
	int fds[TUN_QUEUES_MAX];
};

/*
 * Create (or attach to) the tun device name with n_queues queues, non-blocking.
 * -EBUSY when another process holds it.
 */
int tun_open(const char *name, unsigned int n_queues, struct tun **ret);
struct tun *tun_close(struct tun *t);

/* Returns the number of bytes read (header included), -EAGAIN when empty. */
ssize_t tun_read(struct tun *t, unsigned int q, uint8_t *buf, size_t len);
int tun_write(struct tun *t, unsigned int q, const uint8_t *buf, size_t len);

#endif
