/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The reads of one tun queue through io_uring (tun.io = "uring", issue 17):
 * one multishot read over a provided buffer ring of depth buffers where the
 * kernel has it (Linux 6.7), else depth plain reads outstanding.  The caller
 * owns a completed read's buffer until it gives it back (tunring_put());
 * tunring_submit() then hands the buffers back to the kernel and re-arms
 * the read in one io_uring_enter().  A packet written from its own buffer
 * may go as a write of the ring (tunring_write()), submitted with the next
 * tunring_submit(); the buffer goes back to the kernel when it completed.
 * The ring's fd is pollable: readable while completions wait.  Without
 * liburing at build time tunring_new() returns -EOPNOTSUPP.  Never logs.
 */
#ifndef IPMODD_TUNRING_H
#define IPMODD_TUNRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Buffers a queue reads into (and completions handled per wake-up at most). */
#define TUNRING_DEPTH 32
#define TUNRING_DEPTH_MAX 256
/* A buffer id that is none (a completion without a buffer). */
#define TUNRING_NO_BUF UINT32_MAX

struct tunring;

/*
 * A completed read: n bytes at buf + off (tunring_new()'s off), or -errno.
 * Or (write true) a completed tunring_write(): n its bytes or -errno
 * (-EIO: written short), len and cookie as given; its buffer is back with
 * the kernel already.
 */
struct tunring_read {
	uint8_t *buf;		/* the start of the buffer (its room in front included); NULL: none */
	ssize_t n;
	uint32_t id;		/* to give back with tunring_put(); TUNRING_NO_BUF: none */
	bool write;
	size_t len;
	uint64_t cookie;
};

/*
 * A ring for reads of fd: depth buffers of bufsize bytes each, the kernel
 * reading up to len bytes at buf + off (off + len <= bufsize), so that the
 * caller keeps room in front of what is read.  The fd is made blocking
 * (io_uring then waits by polling it; the daemon writes a tun with plain
 * write()s, which do not block on a tun) and made non-blocking again by
 * tunring_free().  try_multishot false: plain reads even where the kernel
 * has the multishot read (tests).  On failure nothing is changed and why holds a short
 * reason ("io_uring_setup: Operation not permitted").
 */
int tunring_new(int fd, unsigned int depth, size_t bufsize, size_t off, size_t len,
		bool try_multishot, struct tunring **ret, char *why, size_t whylen);
/*
 * Cancels the reads and waits (bounded) for them to end, so that the tun's
 * file is released when it returns: a new tun of the same name can be made.
 */
struct tunring *tunring_free(struct tunring *t);
int tunring_fd(const struct tunring *t);
/* One multishot read (true), or depth plain reads (false). */
bool tunring_multishot(const struct tunring *t);
/*
 * The kernel knows the multishot read (Linux 6.7), whether or not it is
 * used: there a write to the tun completes in the io_uring_enter() that
 * submits it (bench/tunloop's trial).  Under Linux 6.1 (tests/netns/tunio.sh
 * in a qemu guest) writes through the ring left 50 pings sent right after
 * a flood unanswered within a second, twice, where write() answered them
 * all (6.1 probably hands writes to a blocking tun fd to io_uring's worker
 * threads: not checked).  The daemon writes through the ring only where
 * this is true.
 */
bool tunring_writes_inline(const struct tunring *t);
/* io_uring_enter() calls so far (submits, waits). */
uint64_t tunring_enters(const struct tunring *t);

/*
 * The next completed read into r: 1, or 0 when none is waiting (completions
 * the ring handles itself, such as the multishot read running out of
 * buffers, are not returned).  -EIO: the kernel named a buffer that is not
 * one of ours.  Never blocks.
 */
int tunring_get(struct tunring *t, struct tunring_read *r);
/* Buffer id back to the kernel (at the next tunring_submit()). */
void tunring_put(struct tunring *t, uint32_t id);
/*
 * Instead of tunring_put(): write len bytes at data (inside buffer id) to
 * the fd, at the next tunring_submit() (writes to a tun complete in it);
 * the buffer goes back to the kernel then.  -EINVAL: data is not inside
 * the buffer (nothing done).
 */
int tunring_write(struct tunring *t, uint32_t id, const uint8_t *data, size_t len,
		  uint64_t cookie);
/* data..data + len lies inside buffer id. */
bool tunring_holds(const struct tunring *t, uint32_t id, const uint8_t *data, size_t len);
/*
 * The buffers given back and a read re-armed where needed, in one
 * io_uring_enter() (none when nothing is pending).  0 or -errno.
 */
int tunring_submit(struct tunring *t);

#endif
