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
 * With --uring (issue 17's trial; built only where configure found
 * liburing) the same per-packet work goes through io_uring instead of
 * read()/write(): DEPTH buffers (--depth, 1..256, default 32) registered as
 * fixed buffers, the tun fd registered as a fixed file, and either one
 * multishot read (IORING_OP_READ_MULTISHOT, Linux 6.7, fed by a provided
 * buffer ring over the same buffers) or, where the kernel refuses it or
 * with --no-multishot, DEPTH plain reads outstanding.  Each completed read
 * becomes a write of the same buffer; all the writes of a batch of
 * completions go to the kernel in one io_uring_enter(), which also waits
 * for the next completions.  A write's completion gives its buffer back (to
 * the buffer ring, or as a new read).
 *
 * It sets up nothing else: the caller brings the link up and installs the
 * policy routing (bench/run does, as DESIGN.md section 1 describes).  It
 * runs until a signal ends it, and then prints what it saw on stderr.
 *
 *   tunloop [--vnet] [--uring [--depth N] [--no-multishot]] NAME
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#ifdef TUNLOOP_URING
#include <liburing.h>
#include <sys/mman.h>
#endif

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

/* The plain loop: one read() and one write() per packet. */
static int plain_loop(int fd, size_t hdr)
{
	static uint8_t buf[VNET_HDR_LEN + 65536];
	unsigned long long packets = 0, errors = 0;

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

#ifdef TUNLOOP_URING
/* Linux 6.7; liburing before 2.5 does not name it. */
#define OP_READ_MULTISHOT 49
#define URING_DEPTH_MAX 256
/* A buffer: the virtio-net header and the largest packet, in whole pages. */
#define URING_BUF (((VNET_HDR_LEN + 65536) + 4095) & ~(size_t)4095)
/* user_data: the buffer's index, and what the request is. */
#define TAG_WRITE (1ULL << 32)
#define TAG_MSHOT (1ULL << 33)
#define WRITE_RETRIES 3
/* Failed reads in a row (no packet between them) that end the loop. */
#define READ_ERRORS_MAX 1000

struct uring_loop {
	struct io_uring ring;
	int fd;			/* the tun fd, or 0: its index in the fixed files */
	unsigned int sqe_flags;	/* IOSQE_FIXED_FILE when the fd is registered */
	bool fixed_bufs;
	size_t hdr;
	unsigned int depth;
	uint8_t *arena;		/* depth buffers of URING_BUF bytes */
	bool multishot, armed;
	struct io_uring_buf_ring *br;
	unsigned int br_entries;
	unsigned int br_added;	/* buffers added since the last advance */
	unsigned int in_ring;	/* buffers the kernel may read into */
	unsigned int len[URING_DEPTH_MAX];	/* a write's length */
	unsigned char retries[URING_DEPTH_MAX];
	unsigned int read_errors;	/* in a row */
	unsigned long long packets, errors, enters, rearms, nobufs, eagain, short_reads, failed_reads;
};

static uint8_t *ubuf(const struct uring_loop *u, unsigned int i)
{
	return u->arena + (size_t)i * URING_BUF;
}

/*
 * An SQE; if the submission ring is full (it is sized for every request in
 * flight, so it should not be), hand it to the kernel first.
 */
static struct io_uring_sqe *uring_sqe(struct uring_loop *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe && io_uring_submit(&u->ring) >= 0) {
		u->enters++;
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static int post_read(struct uring_loop *u, unsigned int i)
{
	struct io_uring_sqe *sqe = uring_sqe(u);

	if (!sqe)
		return -EBUSY;
	if (u->fixed_bufs)
		io_uring_prep_read_fixed(sqe, u->fd, ubuf(u, i), URING_BUF, 0, (int)i);
	else
		io_uring_prep_read(sqe, u->fd, ubuf(u, i), URING_BUF, 0);
	sqe->flags |= u->sqe_flags;
	io_uring_sqe_set_data64(sqe, i);
	return 0;
}

static int post_write(struct uring_loop *u, unsigned int i)
{
	struct io_uring_sqe *sqe = uring_sqe(u);

	if (!sqe)
		return -EBUSY;
	if (u->fixed_bufs)
		io_uring_prep_write_fixed(sqe, u->fd, ubuf(u, i), u->len[i], 0, (int)i);
	else
		io_uring_prep_write(sqe, u->fd, ubuf(u, i), u->len[i], 0);
	sqe->flags |= u->sqe_flags;
	io_uring_sqe_set_data64(sqe, TAG_WRITE | i);
	return 0;
}

/* One multishot read over buffer group 0 (liburing 2.5's prep_read_multishot). */
static int arm_multishot(struct uring_loop *u)
{
	struct io_uring_sqe *sqe = uring_sqe(u);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_rw(OP_READ_MULTISHOT, sqe, u->fd, NULL, 0, 0);
	sqe->buf_group = 0;
	sqe->flags |= IOSQE_BUFFER_SELECT | u->sqe_flags;
	io_uring_sqe_set_data64(sqe, TAG_MSHOT);
	u->armed = true;
	u->rearms++;
	return 0;
}

/* Buffer i back to the kernel: into the buffer ring, or as a new read. */
static int give_back(struct uring_loop *u, unsigned int i)
{
	if (!u->multishot)
		return post_read(u, i);
	io_uring_buf_ring_add(u->br, ubuf(u, i), URING_BUF, (unsigned short)i,
			      io_uring_buf_ring_mask(u->br_entries), (int)u->br_added);
	u->br_added++;
	u->in_ring++;
	return 0;
}

/* A packet in buffer i: the per-packet work, and its write. */
static int got_packet(struct uring_loop *u, unsigned int i, int res)
{
	u->read_errors = 0;
	if ((size_t)res < u->hdr) {
		u->short_reads++;
		return give_back(u, i);
	}
	u->packets++;
	compensate(ubuf(u, i) + u->hdr, (size_t)res - u->hdr);
	u->len[i] = (unsigned int)res;
	u->retries[i] = 0;
	return post_write(u, i);
}

/* A read that failed: retry where that makes sense, give up after many. */
static int read_failed(struct uring_loop *u, int res)
{
	if (res == -EAGAIN || res == -EINTR) {
		u->eagain++;
		return 0;
	}
	if (res == -ENOBUFS) {
		u->nobufs++;
		return 0;
	}
	u->failed_reads++;
	if (++u->read_errors >= READ_ERRORS_MAX) {
		fprintf(stderr, "tunloop: %u failed reads in a row, last: %s\n", u->read_errors,
			strerror(-res));
		return res;
	}
	return 0;
}

static int on_cqe(struct uring_loop *u, const struct io_uring_cqe *cqe)
{
	uint64_t tag = io_uring_cqe_get_data64(cqe);
	unsigned int i = (unsigned int)(tag & 0xffff);
	int r;

	if (tag & TAG_WRITE) {
		if (cqe->res == -EAGAIN && u->retries[i] < WRITE_RETRIES) {
			u->retries[i]++;
			u->eagain++;
			return post_write(u, i);
		}
		if (cqe->res != (int)u->len[i])
			u->errors++;
		return give_back(u, i);
	}
	if (tag & TAG_MSHOT) {
		if (!(cqe->flags & IORING_CQE_F_MORE))
			u->armed = false;
		if (cqe->flags & IORING_CQE_F_BUFFER) {
			i = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			if (i >= u->depth)
				return -EIO;
			u->in_ring--;
			if (cqe->res > 0)
				return got_packet(u, i, cqe->res);
			r = give_back(u, i);
			if (r < 0)
				return r;
		}
		return cqe->res < 0 ? read_failed(u, cqe->res) : 0;
	}
	if (i >= u->depth)
		return -EIO;
	if (cqe->res > 0)
		return got_packet(u, i, cqe->res);
	r = read_failed(u, cqe->res);
	return r < 0 ? r : post_read(u, i);
}

/*
 * The multishot read on this kernel and this tun: the opcode must be known,
 * and the first arm must not fail at once (-EINVAL where the file cannot do
 * it).  On success the read stays armed.
 */
static bool multishot_works(struct uring_loop *u)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
	struct __kernel_timespec ts = { .tv_nsec = 20 * 1000 * 1000 };
	struct io_uring_cqe *cqe;
	bool known;
	int r;

	known = probe && io_uring_opcode_supported(probe, OP_READ_MULTISHOT);
	io_uring_free_probe(probe);
	if (!known || arm_multishot(u) < 0)
		return false;
	/* An immediate completion without F_MORE is the refusal. */
	cqe = NULL;
	r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	u->enters++;
	if (r < 0 || !cqe)
		return true;	/* nothing yet: armed, waiting for packets */
	if (cqe->flags & IORING_CQE_F_MORE || cqe->res > 0)
		return true;	/* a packet already: on_cqe() takes it */
	fprintf(stderr, "tunloop: multishot read refused (%s)\n", strerror(-cqe->res));
	io_uring_cqe_seen(&u->ring, cqe);
	u->armed = false;
	return false;
}

static int uring_setup(struct uring_loop *u, int fd, size_t hdr, unsigned int depth, bool try_multishot)
{
	struct io_uring_params p;
	struct iovec iov[URING_DEPTH_MAX];
	struct io_uring_buf_reg reg;
	unsigned int i;
	int r;

	memset(u, 0, sizeof(*u));
	u->fd = fd;
	u->hdr = hdr;
	u->depth = depth;
	/* Task work only when we enter the kernel to wait (6.1), else the default. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	r = io_uring_queue_init_params(2 * depth + 2, &u->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));
		r = io_uring_queue_init_params(2 * depth + 2, &u->ring, &p);
	}
	if (r < 0) {
		fprintf(stderr, "tunloop: io_uring unavailable: %s\n", strerror(-r));
		return r;
	}
	u->arena = mmap(NULL, (size_t)depth * URING_BUF, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (u->arena == MAP_FAILED) {
		r = -errno;
		u->arena = NULL;
		goto fail;
	}
	for (i = 0; i < depth; i++) {
		iov[i].iov_base = ubuf(u, i);
		iov[i].iov_len = URING_BUF;
	}
	u->fixed_bufs = io_uring_register_buffers(&u->ring, iov, depth) == 0;
	if (io_uring_register_files(&u->ring, &fd, 1) == 0) {
		u->fd = 0;
		u->sqe_flags = IOSQE_FIXED_FILE;
	}

	if (try_multishot) {
		u->br_entries = 1;
		while (u->br_entries < depth)
			u->br_entries <<= 1;
		u->br = mmap(NULL, u->br_entries * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (u->br == MAP_FAILED) {
			u->br = NULL;
		} else {
			io_uring_buf_ring_init(u->br);
			memset(&reg, 0, sizeof(reg));
			reg.ring_addr = (uintptr_t)u->br;
			reg.ring_entries = u->br_entries;
			reg.bgid = 0;
			if (io_uring_register_buf_ring(&u->ring, &reg, 0) == 0) {
				u->multishot = true;
				for (i = 0; i < depth; i++)
					give_back(u, i);
				io_uring_buf_ring_advance(u->br, (int)u->br_added);
				u->br_added = 0;
				if (!multishot_works(u)) {
					io_uring_unregister_buf_ring(&u->ring, 0);
					u->multishot = false;
					u->in_ring = 0;
				}
			}
		}
	}
	if (!u->multishot) {
		for (i = 0; i < depth; i++) {
			r = post_read(u, i);
			if (r < 0)
				goto fail;
		}
	}
	fprintf(stderr, "tunloop: io_uring, depth %u, %s, %s buffers, %s file, %s\n", depth,
		u->multishot ? "one multishot read (provided buffer ring)" : "plain reads",
		u->fixed_bufs ? "fixed" : "plain", u->sqe_flags ? "fixed" : "plain",
		p.flags & IORING_SETUP_DEFER_TASKRUN ? "deferred task work" : "default task work");
	return 0;
fail:
	fprintf(stderr, "tunloop: io_uring setup: %s\n", strerror(-r));
	io_uring_queue_exit(&u->ring);
	if (u->arena)
		munmap(u->arena, (size_t)depth * URING_BUF);
	if (u->br)
		munmap(u->br, u->br_entries * sizeof(struct io_uring_buf));
	return r;
}

static int uring_loop(int fd, size_t hdr, unsigned int depth, bool try_multishot)
{
	static struct uring_loop u;
	int r = 0;

	if (uring_setup(&u, fd, hdr, depth, try_multishot) < 0)
		return 3;
	while (!stop) {
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0;

		/* This batch's writes (and re-arms) go in, the next completions come out. */
		r = io_uring_submit_and_wait(&u.ring, 1);
		u.enters++;
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			fprintf(stderr, "tunloop: io_uring_enter: %s\n", strerror(-r));
			break;
		}
		r = 0;
		io_uring_for_each_cqe(&u.ring, head, cqe) {
			n++;
			r = on_cqe(&u, cqe);
			if (r < 0)
				break;
		}
		io_uring_cq_advance(&u.ring, n);
		if (r < 0)
			break;
		if (u.multishot) {
			if (u.br_added) {
				io_uring_buf_ring_advance(u.br, (int)u.br_added);
				u.br_added = 0;
			}
			/* Ended (buffers ran out, or an error): again once it has buffers. */
			if (!u.armed && u.in_ring > 0) {
				r = arm_multishot(&u);
				if (r < 0)
					break;
			}
		}
	}
	fprintf(stderr, "tunloop: %llu packets, %llu write errors\n", u.packets, u.errors);
	fprintf(stderr, "tunloop: io_uring: %llu enters (%.3f a packet), %llu multishot arms, "
		"%llu out of buffers, %llu EAGAIN, %llu failed reads, %llu short reads\n",
		u.enters, u.packets ? (double)u.enters / (double)u.packets : 0.0, u.rearms, u.nobufs,
		u.eagain, u.failed_reads, u.short_reads);
	io_uring_queue_exit(&u.ring);
	munmap(u.arena, (size_t)u.depth * URING_BUF);
	if (u.br)
		munmap(u.br, u.br_entries * sizeof(struct io_uring_buf));
	return r < 0 ? 1 : 0;
}
#endif

static int usage(void)
{
	fprintf(stderr, "usage: tunloop [--vnet] [--uring [--depth N] [--no-multishot]] NAME\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct ifreq ifr;
	struct sigaction sa;
	const char *name = NULL;
	bool uring = false, multishot = true;
	unsigned int depth = 32;
	size_t hdr = 0;
	int fd, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--vnet") == 0) {
			hdr = VNET_HDR_LEN;
		} else if (strcmp(argv[i], "--uring") == 0) {
			uring = true;
		} else if (strcmp(argv[i], "--no-multishot") == 0) {
			multishot = false;
		} else if (strcmp(argv[i], "--depth") == 0 && i + 1 < argc) {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(argv[++i], &end, 10);
			if (errno || *end || v < 1 || v > 256) {
				fprintf(stderr, "tunloop: --depth: 1..256\n");
				return 2;
			}
			depth = (unsigned int)v;
		} else if (argv[i][0] != '-' && !name) {
			name = argv[i];
		} else {
			return usage();
		}
	}
#ifndef TUNLOOP_URING
	if (uring) {
		fprintf(stderr, "tunloop: --uring: built without liburing\n");
		return 2;
	}
#endif
	if (!name || strlen(name) >= IFNAMSIZ)
		return usage();
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

	/* No SA_RESTART: a signal ends the blocking read (or io_uring_enter). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

#ifdef TUNLOOP_URING
	if (uring)
		return uring_loop(fd, hdr, depth, multishot);
#else
	(void)depth;
	(void)multishot;
#endif
	return plain_loop(fd, hdr);
}
