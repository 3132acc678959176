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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TUN_QUEUES_MAX 16

/*
 * The offloads (TUNSETOFFLOAD) tun_open() asks for; Debian 12's headers
 * lack the USO ones (Linux 6.2).
 */
#define TUN_OFF_CSUM 0x01
#define TUN_OFF_TSO4 0x02
#define TUN_OFF_TSO6 0x04
#define TUN_OFF_TSO_ECN 0x08
#define TUN_OFF_USO4 0x20
#define TUN_OFF_USO6 0x40

struct tun {
	char name[IFNAMSIZ];
	int ifindex;
	unsigned int n_queues;
	size_t hdrlen;		/* bytes of virtio-net header before each packet */
	unsigned int offload;	/* TUN_OFF_* the kernel accepted; 0 without a header */
	int offload_error;	/* why offload was asked for and is off (-errno), else 0 */
	int fds[TUN_QUEUES_MAX];
};

/*
 * Create (or attach to) the tun device name with n_queues queues, non-blocking.
 * -EBUSY when another process holds it.  With offload, packets come and go
 * with a little-endian struct virtio_net_hdr (GSO_HDR_LEN bytes, gso.h) and
 * the kernel may hand over unchecksummed packets and TCP (and, where it
 * has it, UDP) super-packets: CSUM, TSO4, TSO6, TSO_ECN and USO4/6, the
 * latter dropped when refused.  When any step is refused the tun is
 * opened without a header (hdrlen 0, offload 0, the error in
 * offload_error): offload is a speed-up, never a reason to fail.
 */
int tun_open(const char *name, unsigned int n_queues, bool offload, struct tun **ret);
/* The offloads in words ("csum,tso4,..."), "off" without. */
void tun_offload_name(unsigned int offload, char *buf, size_t len);
struct tun *tun_close(struct tun *t);

/* Returns the number of bytes read (header included), -EAGAIN when empty. */
ssize_t tun_read(struct tun *t, unsigned int q, uint8_t *buf, size_t len);
int tun_write(struct tun *t, unsigned int q, const uint8_t *buf, size_t len);

#endif
