/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tun reads through io_uring (tunring.h).  The shape is bench/tunloop.c's
 * --uring trial (issue 17), reads only: one multishot read
 * (IORING_OP_READ_MULTISHOT, Linux 6.7, set by number: liburing 2.3 does not
 * name it) over a provided buffer ring, or depth plain reads where the
 * kernel refuses it.  No fixed buffers or files: the multishot read does not
 * use fixed buffers, and pinned memory counts against RLIMIT_MEMLOCK.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tunring.h"

#ifdef HAVE_LIBURING
#include <liburing.h>
#include <sys/mman.h>

#define OP_READ_MULTISHOT 49
/* user_data: a plain read's buffer index, or one of these. */
#define TAG_MSHOT (1ULL << 32)
#define TAG_CANCEL (1ULL << 33)
#define TAG_WRITE (1ULL << 34)
/* Completions waited for, 10 ms each, at most, when the ring goes. */
#define FREE_WAITS 50

struct tunring {
	struct io_uring ring;
	int fd;
	int fd_flags;		/* F_GETFL before tunring_new() */
	unsigned int depth;
	size_t bufsize, off, len;
	uint8_t *arena;		/* depth buffers of bufsize bytes */
	bool multishot, armed;
	bool new_kernel;	/* IORING_OP_READ_MULTISHOT known */
	struct io_uring_buf_ring *br;
	unsigned int br_entries;
	unsigned int br_added;	/* buffers added since the last advance */
	unsigned int in_ring;	/* buffers the kernel may read into */
	unsigned int inflight;	/* reads (or the multishot read) and writes not ended */
	uint64_t enters;
	struct {
		size_t len;
		uint64_t cookie;
	} w[TUNRING_DEPTH_MAX];	/* a buffer's write in flight */
};

static uint8_t *ubuf(const struct tunring *t, unsigned int i)
{
	return t->arena + (size_t)i * t->bufsize;
}

/* The submission ring holds every request that can be in flight: a full one is a bug. */
static struct io_uring_sqe *get_sqe(struct tunring *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	if (!sqe && io_uring_submit(&t->ring) >= 0) {
		t->enters++;
		sqe = io_uring_get_sqe(&t->ring);
	}
	return sqe;
}

static int post_read(struct tunring *t, unsigned int i)
{
	struct io_uring_sqe *sqe = get_sqe(t);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, t->fd, ubuf(t, i) + t->off, (unsigned int)t->len, 0);
	io_uring_sqe_set_data64(sqe, i);
	t->inflight++;
	return 0;
}

/* One multishot read over buffer group 0 (liburing 2.5's io_uring_prep_read_multishot()). */
static int arm_multishot(struct tunring *t)
{
	struct io_uring_sqe *sqe = get_sqe(t);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_rw(OP_READ_MULTISHOT, sqe, t->fd, NULL, 0, 0);
	sqe->buf_group = 0;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	io_uring_sqe_set_data64(sqe, TAG_MSHOT);
	t->armed = true;
	t->inflight++;
	return 0;
}

static void ring_add(struct tunring *t, unsigned int i)
{
	io_uring_buf_ring_add(t->br, ubuf(t, i) + t->off, (unsigned int)t->len, (unsigned short)i,
			      io_uring_buf_ring_mask(t->br_entries), (int)t->br_added);
	t->br_added++;
	t->in_ring++;
}

/*
 * The multishot read on this kernel and this tun: the opcode known, and the
 * first arm not refused at once (-EINVAL where the file cannot do it).  On
 * success the read stays armed; a packet that came meanwhile waits for
 * tunring_get().
 */
static bool multishot_works(struct tunring *t)
{
	struct __kernel_timespec ts = { .tv_nsec = 20 * 1000 * 1000 };
	struct io_uring_cqe *cqe = NULL;
	int r;

	if (!t->new_kernel || arm_multishot(t) < 0)
		return false;
	r = io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
	t->enters++;
	if (r < 0 || !cqe)
		return true;	/* nothing yet: armed */
	if (io_uring_cqe_get_data64(cqe) != TAG_MSHOT || cqe->flags & IORING_CQE_F_MORE ||
	    cqe->res > 0)
		return true;
	io_uring_cqe_seen(&t->ring, cqe);
	t->armed = false;
	t->inflight--;
	return false;
}

static void setup_buf_ring(struct tunring *t)
{
	struct io_uring_buf_reg reg;

	t->br_entries = 1;
	while (t->br_entries < t->depth)
		t->br_entries <<= 1;
	t->br = mmap(NULL, t->br_entries * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->br == MAP_FAILED) {
		t->br = NULL;
		return;
	}
	io_uring_buf_ring_init(t->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uintptr_t)t->br;
	reg.ring_entries = t->br_entries;
	reg.bgid = 0;
	if (io_uring_register_buf_ring(&t->ring, &reg, 0) < 0)
		return;
	for (unsigned int i = 0; i < t->depth; i++)
		ring_add(t, i);
	io_uring_buf_ring_advance(t->br, (int)t->br_added);
	t->br_added = 0;
	t->multishot = true;
	if (!multishot_works(t)) {
		io_uring_unregister_buf_ring(&t->ring, 0);
		t->multishot = false;
		t->in_ring = 0;
	}
}

int tunring_new(int fd, unsigned int depth, size_t bufsize, size_t off, size_t len,
		bool try_multishot, struct tunring **ret, char *why, size_t whylen)
{
	struct io_uring_params p;
	struct io_uring_probe *probe;
	struct tunring *t;
	const char *step;
	int r;

	if (depth == 0 || depth > TUNRING_DEPTH_MAX || off > bufsize || len > bufsize - off ||
	    len > UINT32_MAX) {
		snprintf(why, whylen, "bad ring size");
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	t->fd = fd;
	t->depth = depth;
	t->bufsize = bufsize;
	t->off = off;
	t->len = len;
	t->fd_flags = -1;

	memset(&p, 0, sizeof(p));
	step = "io_uring_setup";
	r = io_uring_queue_init_params(2 * depth + 4, &t->ring, &p);
	if (r < 0) {
		free(t);
		snprintf(why, whylen, "%s: %s", step, strerror(-r));
		return r;
	}
	step = "buffers";
	t->arena = mmap(NULL, (size_t)depth * bufsize, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->arena == MAP_FAILED) {
		r = -errno;
		t->arena = NULL;
		goto fail;
	}
	/* io_uring waits by polling the tun; a non-blocking one would answer -EAGAIN. */
	step = "fcntl";
	t->fd_flags = fcntl(fd, F_GETFL);
	if (t->fd_flags < 0 || fcntl(fd, F_SETFL, t->fd_flags & ~O_NONBLOCK) < 0) {
		r = -errno;
		t->fd_flags = -1;
		goto fail;
	}
	probe = io_uring_get_probe_ring(&t->ring);
	t->new_kernel = probe && io_uring_opcode_supported(probe, OP_READ_MULTISHOT);
	if (probe)
		io_uring_free_probe(probe);
	if (try_multishot)
		setup_buf_ring(t);
	step = "the first reads";
	if (!t->multishot) {
		for (unsigned int i = 0; i < depth; i++) {
			r = post_read(t, i);
			if (r < 0)
				goto fail;
		}
	}
	r = tunring_submit(t);
	if (r < 0)
		goto fail;
	*ret = t;
	return 0;
fail:
	snprintf(why, whylen, "%s: %s", step, strerror(-r));
	tunring_free(t);
	return r;
}

struct tunring *tunring_free(struct tunring *t)
{
	struct __kernel_timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;

	if (!t)
		return NULL;
	/* Every read ends (-ECANCELED) and drops its reference to the tun's file. */
	sqe = t->inflight ? io_uring_get_sqe(&t->ring) : NULL;
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, TAG_CANCEL);
		for (int i = 0; i < FREE_WAITS && t->inflight; i++) {
			cqe = NULL;
			if (io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL) < 0 ||
			    !cqe)
				continue;
			if (io_uring_cqe_get_data64(cqe) & TAG_WRITE) {
				t->inflight--;
			} else if (io_uring_cqe_get_data64(cqe) == TAG_MSHOT) {
				if (!(cqe->flags & IORING_CQE_F_MORE))
					t->inflight--;
			} else if (io_uring_cqe_get_data64(cqe) != TAG_CANCEL) {
				t->inflight--;
			}
			io_uring_cqe_seen(&t->ring, cqe);
		}
	}
	io_uring_queue_exit(&t->ring);
	if (t->br)
		munmap(t->br, t->br_entries * sizeof(struct io_uring_buf));
	if (t->arena)
		munmap(t->arena, (size_t)t->depth * t->bufsize);
	if (t->fd_flags >= 0)
		(void)fcntl(t->fd, F_SETFL, t->fd_flags);
	free(t);
	return NULL;
}

int tunring_fd(const struct tunring *t)
{
	return t->ring.ring_fd;
}

bool tunring_multishot(const struct tunring *t)
{
	return t->multishot;
}

bool tunring_writes_inline(const struct tunring *t)
{
	return t->new_kernel;
}

uint64_t tunring_enters(const struct tunring *t)
{
	return t->enters;
}

int tunring_get(struct tunring *t, struct tunring_read *r)
{
	struct io_uring_cqe *cqe;
	uint64_t tag;
	uint32_t flags;
	int res;

	for (;;) {
		if (io_uring_peek_cqe(&t->ring, &cqe) < 0 || !cqe)
			return 0;
		tag = io_uring_cqe_get_data64(cqe);
		res = cqe->res;
		flags = cqe->flags;
		io_uring_cqe_seen(&t->ring, cqe);
		*r = (struct tunring_read){ .n = res, .id = TUNRING_NO_BUF };
		if (tag == TAG_CANCEL)
			continue;
		if (tag & TAG_WRITE) {
			r->id = (uint32_t)(tag & 0xffff);
			if (r->id >= t->depth)
				return -EIO;
			t->inflight--;
			r->write = true;
			r->len = t->w[r->id].len;
			r->cookie = t->w[r->id].cookie;
			if (res >= 0 && (size_t)res != r->len)
				r->n = -EIO;
			tunring_put(t, r->id);
			r->id = TUNRING_NO_BUF;
			return 1;
		}
		if (tag == TAG_MSHOT) {
			if (!(flags & IORING_CQE_F_MORE)) {
				t->armed = false;
				t->inflight--;
			}
			if (flags & IORING_CQE_F_BUFFER) {
				r->id = flags >> IORING_CQE_BUFFER_SHIFT;
				if (r->id >= t->depth)
					return -EIO;
				t->in_ring--;
				r->buf = ubuf(t, r->id);
				return 1;
			}
			/* Out of buffers: armed again when some come back. */
			if (res == -ENOBUFS || res >= 0)
				continue;
			return 1;
		}
		if (tag >= t->depth)
			return -EIO;
		t->inflight--;
		r->id = (uint32_t)tag;
		r->buf = ubuf(t, r->id);
		return 1;
	}
}

void tunring_put(struct tunring *t, uint32_t id)
{
	if (id >= t->depth)
		return;
	if (t->multishot)
		ring_add(t, id);
	else
		(void)post_read(t, id);	/* cannot fail: the ring has room for every read */
}

bool tunring_holds(const struct tunring *t, uint32_t id, const uint8_t *data, size_t len)
{
	const uint8_t *b;

	if (id >= t->depth)
		return false;
	b = ubuf(t, id);
	return data >= b && data <= b + t->bufsize && len <= (size_t)(b + t->bufsize - data);
}

int tunring_write(struct tunring *t, uint32_t id, const uint8_t *data, size_t len,
		  uint64_t cookie)
{
	struct io_uring_sqe *sqe;

	if (!tunring_holds(t, id, data, len) || len > UINT32_MAX)
		return -EINVAL;
	sqe = get_sqe(t);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_write(sqe, t->fd, data, (unsigned int)len, 0);
	io_uring_sqe_set_data64(sqe, TAG_WRITE | id);
	t->w[id].len = len;
	t->w[id].cookie = cookie;
	t->inflight++;
	return 0;
}

int tunring_submit(struct tunring *t)
{
	int r;

	if (t->multishot) {
		if (t->br_added) {
			io_uring_buf_ring_advance(t->br, (int)t->br_added);
			t->br_added = 0;
		}
		/* Ended (buffers ran out, or an error): again once it has buffers. */
		if (!t->armed && t->in_ring > 0) {
			r = arm_multishot(t);
			if (r < 0)
				return r;
		}
	}
	if (!io_uring_sq_ready(&t->ring))
		return 0;
	r = io_uring_submit(&t->ring);
	t->enters++;
	return r < 0 ? r : 0;
}

#else /* !HAVE_LIBURING */

int tunring_new(int fd, unsigned int depth, size_t bufsize, size_t off, size_t len,
		bool try_multishot, struct tunring **ret, char *why, size_t whylen)
{
	snprintf(why, whylen, "this build of ipmodd lacks liburing");
	return -EOPNOTSUPP;
}

struct tunring *tunring_free(struct tunring *t)
{
	return NULL;
}

int tunring_fd(const struct tunring *t)
{
	return -1;
}

bool tunring_multishot(const struct tunring *t)
{
	return false;
}

bool tunring_writes_inline(const struct tunring *t)
{
	return false;
}

uint64_t tunring_enters(const struct tunring *t)
{
	return 0;
}

int tunring_get(struct tunring *t, struct tunring_read *r)
{
	return 0;
}

void tunring_put(struct tunring *t, uint32_t id)
{
}

int tunring_write(struct tunring *t, uint32_t id, const uint8_t *data, size_t len,
		  uint64_t cookie)
{
	return -EOPNOTSUPP;
}

bool tunring_holds(const struct tunring *t, uint32_t id, const uint8_t *data, size_t len)
{
	return false;
}

int tunring_submit(struct tunring *t)
{
	return 0;
}

#endif
