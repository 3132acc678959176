/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "control.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define ACCEPT_BATCH 16			/* connections accepted per wake-up */
#define ACCEPT_PAUSE_USEC 1000000ULL	/* after running out of descriptors */
#define LISTEN_BACKLOG 16

/* What a stream client has queued: a ring of size bytes. */
struct stream {
	uint8_t *buf;
	size_t size, head, len;
	bool live;			/* the reply is out: queued bytes may follow */
	bool ending;			/* close once the ring is empty */
	bool rd_closed;			/* the peer shut down its writing side */
	uint64_t stall_since;		/* CLOCK_MONOTONIC: bytes wait and the socket takes none; 0 not */
	uint32_t events;		/* what the io source waits for */
	control_stream_closed_t closed;
	void *userdata;
};

struct control_client {
	struct control *control;
	struct control_client *next, **pprev;
	int fd;
	sd_event_source *io, *timer;
	bool privileged;
	bool closing;			/* close once the reply is out */
	uid_t uid;			/* SO_PEERCRED at accept; -1 unknown */
	pid_t pid;			/* 0 unknown */

	struct ctl_parser parser;
	char in[CTL_REQUEST_MAX];
	struct ctl_pair pairs[CTL_KEYS_MAX];
	struct ctl_reply out;		/* finished while being written */
	size_t out_off;
	struct stream *stream;		/* after control_stream_start() */
	bool deferred;			/* the handler answers later: control_defer() */
	control_defer_gone_t gone;
	void *gone_userdata;
	size_t held;			/* reply bytes counted in the budget */
	uint64_t request_start;		/* CLOCK_MONOTONIC of a partial request's first byte, 0 none */
};

struct control {
	sd_event *event;
	sd_event_source *listen_source, *pause_source;
	int fd;
	char *path;
	bool bound;
	dev_t dev;			/* of the socket we bound, to unlink only ours */
	ino_t ino;
	bool has_group;
	gid_t gid;
	control_handler_t handler;
	void *userdata;
	uint64_t idle_usec;

	struct control_client *clients;
	unsigned int n_clients, n_clients_unpriv;
	unsigned int n_streams, n_streams_unpriv;
	size_t held, held_unpriv;	/* reply bytes held, see CONTROL_REPLY_BUDGET */
};

static uint64_t now_usec(struct control *c)
{
	uint64_t now = 0;

	sd_event_now(c->event, CLOCK_MONOTONIC, &now);
	return now;
}

/* Tell the stream's owner, once, and forget the stream. */
static void stream_drop(struct control_client *cl)
{
	struct stream *st = cl->stream;

	if (!st)
		return;
	cl->stream = NULL;
	cl->control->n_streams--;
	if (!cl->privileged)
		cl->control->n_streams_unpriv--;
	if (st->closed)
		st->closed(st->userdata);
	free(st->buf);
	free(st);
}

/* The reply is out, or the client goes: its bytes leave the budget. */
static void reply_release(struct control_client *cl)
{
	struct control *c = cl->control;

	c->held -= cl->held;
	if (!cl->privileged)
		c->held_unpriv -= cl->held;
	cl->held = 0;
}

/*
 * Count a finished reply of cap bytes against the budget, before the first
 * write: false when it does not fit.
 */
static bool reply_hold(struct control_client *cl, size_t cap)
{
	struct control *c = cl->control;

	if (cap <= CONTROL_REPLY_SMALL)
		return true;
	if (c->held + cap > CONTROL_REPLY_BUDGET ||
	    (!cl->privileged && c->held_unpriv + cap > CONTROL_REPLY_BUDGET_UNPRIV))
		return false;
	cl->held = cap;
	c->held += cap;
	if (!cl->privileged)
		c->held_unpriv += cap;
	return true;
}

static void client_free(struct control_client *cl)
{
	if (cl->deferred && cl->gone)
		cl->gone(cl->gone_userdata, cl);
	stream_drop(cl);
	reply_release(cl);
	*cl->pprev = cl->next;
	if (cl->next)
		cl->next->pprev = cl->pprev;
	cl->control->n_clients--;
	if (!cl->privileged)
		cl->control->n_clients_unpriv--;
	sd_event_source_disable_unref(cl->io);
	sd_event_source_disable_unref(cl->timer);
	safe_close(cl->fd);
	ctl_reply_done(&cl->out);
	free(cl);
}

/*
 * Activity postpones the idle timeout, but a request must arrive whole within
 * the timeout from its first byte: one dribbled a byte at a time would
 * otherwise hold its slot for hours.
 */
static void client_touch(struct control_client *cl)
{
	uint64_t now = now_usec(cl->control), t = now + cl->control->idle_usec;

	if (ctl_parser_pending(&cl->parser)) {
		if (!cl->request_start)
			cl->request_start = now;
		if (cl->request_start + cl->control->idle_usec < t)
			t = cl->request_start + cl->control->idle_usec;
	} else {
		cl->request_start = 0;
	}
	sd_event_source_set_time(cl->timer, t);
}

static int stream_set_events(struct control_client *cl, uint32_t events)
{
	struct stream *st = cl->stream;

	if (st->rd_closed)
		events &= ~EPOLLIN;
	if (events == st->events)
		return 0;
	st->events = events;
	return sd_event_source_set_io_events(cl->io, events);
}

/*
 * Bytes wait and the socket took none of them yet: from now on, the reader
 * has CONTROL_STREAM_STALL_USEC to take some.  Called when bytes arrive in
 * an empty queue (a full socket never reports writable, so the flush alone
 * would not notice) and when the socket refuses more.  The client's timer,
 * unused by a live stream otherwise, keeps the time; armed earlier, it
 * moves itself on when it fires (on_client_idle()).
 */
static void stream_waiting(struct control_client *cl)
{
	struct stream *st = cl->stream;
	int enabled = SD_EVENT_OFF;
	uint64_t now;

	if (st->stall_since)
		return;
	now = now_usec(cl->control);
	st->stall_since = now;
	sd_event_source_get_enabled(cl->timer, &enabled);
	if (enabled != SD_EVENT_OFF)
		return;
	sd_event_source_set_time(cl->timer, now + CONTROL_STREAM_STALL_USEC);
	sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT);
}

/* Send what the socket takes.  Returns 0 to go on, < 0 to close the client. */
static int stream_flush(struct control_client *cl)
{
	struct stream *st = cl->stream;
	struct iovec iov[2];
	struct msghdr mh = { .msg_iov = iov };
	size_t first;
	ssize_t n;

	while (st->len > 0) {
		first = st->size - st->head < st->len ? st->size - st->head : st->len;
		iov[0] = (struct iovec){ st->buf + st->head, first };
		iov[1] = (struct iovec){ st->buf, st->len - first };
		mh.msg_iovlen = st->len > first ? 2 : 1;
		n = sendmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				stream_waiting(cl);
				return stream_set_events(cl, EPOLLIN | EPOLLOUT);
			}
			return negative_errno();
		}
		st->head = (st->head + (size_t)n) % st->size;
		st->len -= (size_t)n;
		st->stall_since = 0;	/* the reader takes bytes */
	}
	st->head = 0;
	st->stall_since = 0;
	if (st->ending)
		return -ECONNRESET;
	return stream_set_events(cl, EPOLLIN);
}

/*
 * A stream's input is not read: bytes are discarded, and only the hang-up
 * matters.  A peer that only shut down its writing side ("socat" at the end of
 * its input) still gets the stream.
 */
static int stream_io(struct control_client *cl, uint32_t revents)
{
	char buf[512];
	ssize_t n;
	int i;

	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (i = 0; i < 16; i++) {
			n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n > 0)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n < 0 || (revents & (EPOLLHUP | EPOLLERR)))
				return -ECONNRESET;
			cl->stream->rd_closed = true;
			break;
		}
	}
	return stream_flush(cl);
}

/* Returns 0 to go on, < 0 to close the client. */
static int client_write(struct control_client *cl)
{
	ssize_t n;

	while (cl->out_off < cl->out.len) {
		n = send(cl->fd, cl->out.buf + cl->out_off, cl->out.len - cl->out_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return sd_event_source_set_io_events(cl->io, EPOLLOUT);
			return negative_errno();
		}
		cl->out_off += (size_t)n;
		client_touch(cl);
	}
	reply_release(cl);
	if (cl->closing)
		return -ECONNRESET;
	ctl_reply_reset(&cl->out);
	ctl_parser_reset(&cl->parser);
	if (cl->stream) {
		cl->stream->live = true;
		cl->stream->events = 0;	/* the reply may have left EPOLLOUT set */
		sd_event_source_set_enabled(cl->timer, SD_EVENT_OFF);
		return stream_flush(cl);
	}
	return sd_event_source_set_io_events(cl->io, EPOLLIN);
}

static int client_send(struct control_client *cl, int err)
{
	int r;

	r = ctl_reply_finish(&cl->out, err);
	if (r < 0)
		return r;
	if (!reply_hold(cl, cl->out.cap)) {
		/* Nothing of the reply went out yet: say why instead, and hang up. */
		stream_drop(cl);
		ctl_reply_done(&cl->out);
		ctl_reply_error(&cl->out, -ENOBUFS,
				"the daemon holds too many unread replies (%u MiB%s); read them, or retry later",
				(cl->privileged ? CONTROL_REPLY_BUDGET : CONTROL_REPLY_BUDGET_UNPRIV) >> 20,
				cl->privileged ? "" : " for unprivileged clients");
		r = ctl_reply_finish(&cl->out, -ENOBUFS);
		if (r < 0)
			return r;
		cl->closing = true;
	}
	cl->out_off = 0;
	return client_write(cl);
}

/* Answer a malformed request with what is wrong, then hang up. */
static int client_reject(struct control_client *cl, int err, const char *why)
{
	unsigned int lineno;

	if (!why)
		why = ctl_parser_error(&cl->parser, &lineno);
	else
		lineno = cl->parser.lineno;
	ctl_reply_reset(&cl->out);
	ctl_reply_error(&cl->out, err, "line %u: %s", lineno, why);
	cl->closing = true;
	return client_send(cl, err);
}

static int client_dispatch(struct control_client *cl)
{
	struct control *c = cl->control;
	struct ctl_request req;
	int r;

	r = ctl_parser_request(&cl->parser, &req);
	if (r < 0)
		return r;
	r = c->handler(c->userdata, cl, &req, cl->privileged, &cl->out);
	if (r < 0)
		stream_drop(cl);
	if (cl->deferred) {
		if (r >= 0)
			return 0;
		cl->deferred = false;
		sd_event_source_set_enabled(cl->io, SD_EVENT_ON);
		sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT);
		client_touch(cl);
	}
	return client_send(cl, r);
}

/*
 * Peek, parse, then consume only what the request used: bytes of a next
 * request stay in the socket, so readiness keeps telling whether there is
 * more, and a client that sends without reading replies fills its own
 * socket buffer instead of our memory.
 */
static int client_read(struct control_client *cl)
{
	char buf[4096];
	size_t used;
	ssize_t n;
	int r;

	for (;;) {
		n = recv(cl->fd, buf, sizeof(buf), MSG_PEEK);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
		if (n == 0) {
			if (ctl_parser_pending(&cl->parser))
				return client_reject(cl, -EBADMSG, "request truncated by end of input");
			return -ECONNRESET;
		}
		r = ctl_parser_feed(&cl->parser, buf, (size_t)n, &used);
		if (used > 0 && recv(cl->fd, buf, used, 0) != (ssize_t)used)
			return -EIO;
		client_touch(cl);
		if (r < 0)
			return client_reject(cl, r, NULL);
		if (r > 0)
			return client_dispatch(cl);
	}
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct control_client *cl = userdata;
	int r;

	if (cl->stream && cl->stream->live)
		r = stream_io(cl, revents);
	else
		r = cl->out.finished ? client_write(cl) : client_read(cl);
	if (r < 0)
		client_free(cl);
	return 0;
}

static int on_client_idle(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct control_client *cl = userdata;
	struct stream *st = cl->stream;

	/* A live stream's timer only watches a stalled reader; it read since: not stalled. */
	if (st && st->live) {
		if (!st->stall_since)
			return 0;
		if (usec < st->stall_since + CONTROL_STREAM_STALL_USEC) {
			sd_event_source_set_time(s, st->stall_since + CONTROL_STREAM_STALL_USEC);
			sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
			return 0;
		}
		client_free(cl);
		return 0;
	}

	/* Half a request: say why before hanging up (best effort, bounded by the timer again). */
	if (cl->request_start && !cl->closing && !cl->out.finished) {
		cl->request_start = 0;
		sd_event_source_set_time(cl->timer, usec + cl->control->idle_usec);
		sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT);
		if (client_reject(cl, -ETIMEDOUT, "request not complete in time") >= 0)
			return 0;
	}
	client_free(cl);
	return 0;
}

static bool peer_in_group(int fd, gid_t gid)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool found = false;
	size_t i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		/* ERANGE: len now says how much room the list needs. */
		if (errno != ERANGE)
			return false;
		groups = malloc(len);
		if (!groups)
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
			len = 0;
	}
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			found = true;
	if (groups != small)
		free(groups);
	return found;
}

/*
 * SO_PEERCRED carries only the primary gid; the supplementary groups come
 * from SO_PEERGROUPS (Linux 4.13).  On older kernels a member through a
 * supplementary group can connect (the socket is 0660) but is unprivileged.
 */
static bool peer_privileged(struct control *c, int fd, struct ucred *ret)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	*ret = cred;
	/* The daemon's own user (ExecReload= of its unit) can do what the daemon does anyway. */
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	if (!c->has_group)
		return false;
	return cred.gid == c->gid || peer_in_group(fd, c->gid);
}

static int client_new(struct control *c, int fd, bool privileged, const struct ucred *cred)
{
	struct control_client *cl;
	int r;

	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return -ENOMEM;
	}
	cl->control = c;
	cl->fd = fd;
	cl->next = c->clients;
	if (cl->next)
		cl->next->pprev = &cl->next;
	cl->pprev = &c->clients;
	c->clients = cl;
	c->n_clients++;
	cl->privileged = privileged;
	cl->uid = cred->uid;
	cl->pid = cred->pid;
	if (!privileged)
		c->n_clients_unpriv++;
	ctl_parser_init(&cl->parser, cl->in, sizeof(cl->in), cl->pairs, ARRAY_SIZE(cl->pairs));
	ctl_reply_init(&cl->out, CTL_REPLY_MAX, CTL_REPLY_KEYS_MAX);

	r = sd_event_add_io(c->event, &cl->io, fd, EPOLLIN, on_client_io, cl);
	if (r < 0)
		goto fail;
	r = sd_event_add_time(c->event, &cl->timer, CLOCK_MONOTONIC, now_usec(c) + c->idle_usec,
			      c->idle_usec / 10, on_client_idle, cl);
	if (r < 0)
		goto fail;
	return 0;
fail:
	client_free(cl);
	return r;
}

/* Best effort: the socket is fresh, so a short reply fits its buffer. */
static void client_refuse(int fd, bool privileged)
{
	char msg[160];
	int n;

	if (privileged)
		n = snprintf(msg, sizeof(msg), "errno=%d\nerror=too many clients (%d)\n\n", EBUSY,
			     CONTROL_CLIENTS_MAX);
	else
		n = snprintf(msg, sizeof(msg),
			     "errno=%d\nerror=too many unprivileged clients (%d; %d more are kept for "
			     "root and the control group)\n\n", EBUSY,
			     CONTROL_CLIENTS_MAX - CONTROL_CLIENTS_RESERVED, CONTROL_CLIENTS_RESERVED);
	send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static int on_accept_resume(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct control *c = userdata;

	c->pause_source = sd_event_source_disable_unref(c->pause_source);
	sd_event_source_set_enabled(c->listen_source, SD_EVENT_ON);
	return 0;
}

/* Out of descriptors or memory: the backlog stays readable, so stop polling it for a while. */
static void accept_pause(struct control *c)
{
	if (c->pause_source)
		return;
	if (sd_event_add_time(c->event, &c->pause_source, CLOCK_MONOTONIC,
			      now_usec(c) + ACCEPT_PAUSE_USEC, 0, on_accept_resume, c) < 0)
		return;
	sd_event_source_set_enabled(c->listen_source, SD_EVENT_OFF);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct control *c = userdata;
	struct ucred cred;
	bool privileged;
	int i, cfd;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN)
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				accept_pause(c);
				break;
			}
			continue;	/* ECONNABORTED, EINTR, ...: that connection only */
		}
		/* Credentials first: the last slots are only for privileged peers. */
		cred = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		privileged = peer_privileged(c, cfd, &cred);
		if (c->n_clients >= CONTROL_CLIENTS_MAX ||
		    (!privileged &&
		     c->n_clients_unpriv >= CONTROL_CLIENTS_MAX - CONTROL_CLIENTS_RESERVED)) {
			client_refuse(cfd, privileged);
			continue;
		}
		client_new(c, cfd, privileged, &cred);
	}
	return 0;
}

static int lookup_group(const char *name, gid_t *ret)
{
	struct group *gr;

	errno = 0;
	gr = getgrnam(name);
	if (!gr) {
		/* getgrnam(3): these, like 0, may all mean "no such group". */
		if (errno == 0 || errno == ENOENT || errno == ESRCH || errno == EBADF ||
		    errno == EPERM)
			return -ENOENT;
		return negative_errno();
	}
	*ret = gr->gr_gid;
	return 0;
}

/* Create the socket's directory if missing, 0755 whatever the umask. */
static int make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0)
		return errno == EEXIST ? 0 : negative_errno();
	if (chmod(dir, 0755) < 0)
		return negative_errno();
	return 0;
}

/* Connect to path: 1 someone listens, 0 nobody does, -errno. */
static int probe(const struct sockaddr_un *sa, pid_t *ret_pid)
{
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
		/* The listener's credentials, as of its listen(). */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
			cred.pid = 0;
		r = 1;
	} else if (errno == EAGAIN) {
		r = 1;	/* a full backlog: someone listens */
	} else if (errno == ECONNREFUSED || errno == ENOENT) {
		r = 0;
	} else {
		r = negative_errno();
	}
	close(fd);
	if (r == 1 && ret_pid)
		*ret_pid = cred.pid;
	return r;
}

int control_probe(const char *path, pid_t *ret_pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (!S_ISSOCK(st.st_mode))
		return 0;
	return probe(&sa, ret_pid);
}

/* Remove a socket file left by a dead server; refuse to touch anything else. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	r = probe(sa, NULL);
	if (r > 0)
		return -EADDRINUSE;
	if (r < 0)
		return r;
	return unlink(path) < 0 && errno != ENOENT ? negative_errno() : 0;
}

int control_new(sd_event *e, const char *path, const char *group, unsigned int mode,
		control_handler_t handler, void *userdata, struct control **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c;
	struct stat st;
	mode_t mask;
	int r;

	if (!e || !path || !*path || !handler || (mode & ~0666u))
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->event = sd_event_ref(e);
	c->handler = handler;
	c->userdata = userdata;
	c->idle_usec = CONTROL_IDLE_USEC;
	c->path = strdup(path);
	if (!c->path) {
		r = -ENOMEM;
		goto fail;
	}

	if (group && *group) {
		r = lookup_group(group, &c->gid);
		if (r < 0)
			goto fail;
		c->has_group = true;
	}
	r = make_parent(path);
	if (r < 0)
		goto fail;
	r = clear_stale(path, &sa);
	if (r < 0)
		goto fail;

	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = negative_errno();
		goto fail;
	}
	/* Born 0600, so nobody connects before the owner and mode are right. */
	mask = umask(0177);
	r = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? negative_errno() : 0;
	umask(mask);
	if (r < 0)
		goto fail;
	if (lstat(path, &st) < 0) {
		r = negative_errno();
		goto fail;
	}
	c->bound = true;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if ((c->has_group && chown(path, (uid_t)-1, c->gid) < 0) || chmod(path, (mode_t)mode) < 0 ||
	    listen(c->fd, LISTEN_BACKLOG) < 0) {
		r = negative_errno();
		goto fail;
	}
	r = sd_event_add_io(e, &c->listen_source, c->fd, EPOLLIN, on_accept, c);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	control_free(c);
	return r;
}

struct control *control_free(struct control *c)
{
	struct stat st;

	if (!c)
		return NULL;
	while (c->clients)
		client_free(c->clients);
	sd_event_source_disable_unref(c->listen_source);
	sd_event_source_disable_unref(c->pause_source);
	safe_close(c->fd);
	if (c->bound && lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c->path);
	sd_event_unref(c->event);
	free(c);
	return NULL;
}

int control_stream_start(struct control_client *cl, size_t bufsize,
			 control_stream_closed_t closed, void *userdata)
{
	struct stream *st;

	if (cl->stream)
		return -EALREADY;
	if (cl->control->n_streams >= CONTROL_STREAMS_MAX ||
	    (!cl->privileged &&
	     cl->control->n_streams_unpriv >= CONTROL_STREAMS_MAX - CONTROL_STREAMS_RESERVED))
		return -EBUSY;
	if (bufsize == 0 || bufsize > CONTROL_STREAM_BUF_MAX)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->buf = malloc(bufsize);
	if (!st->buf) {
		free(st);
		return -ENOMEM;
	}
	st->size = bufsize;
	st->events = EPOLLIN;
	st->closed = closed;
	st->userdata = userdata;
	cl->stream = st;
	cl->control->n_streams++;
	if (!cl->privileged)
		cl->control->n_streams_unpriv++;
	return 0;
}

int control_stream_write(struct control_client *cl, const void *data, size_t len)
{
	struct stream *st = cl->stream;
	size_t tail, first;

	if (!st)
		return -EINVAL;
	if (st->ending)
		return -EPIPE;
	if (len > st->size - st->len)
		return -ENOBUFS;
	tail = (st->head + st->len) % st->size;
	first = st->size - tail < len ? st->size - tail : len;
	memcpy(st->buf + tail, data, first);
	memcpy(st->buf, (const uint8_t *)data + first, len - first);
	st->len += len;
	/* Sent from the loop, once per wake-up rather than once per event. */
	if (st->live && len > 0) {
		if (st->len == len)
			stream_waiting(cl);
		stream_set_events(cl, EPOLLIN | EPOLLOUT);
	}
	return 0;
}

void control_stream_end(struct control_client *cl)
{
	if (!cl->stream)
		return;
	cl->stream->ending = true;
	/* Writable at once: the loop flushes the ring and closes, outside the caller. */
	if (cl->stream->live)
		stream_set_events(cl, EPOLLIN | EPOLLOUT);
}

int control_defer(struct control_client *cl, control_defer_gone_t gone, void *userdata)
{
	int r;

	if (cl->stream || cl->deferred)
		return -EALREADY;
	/* Neither a next request nor the idle timeout while the answer is pending. */
	r = sd_event_source_set_enabled(cl->io, SD_EVENT_OFF);
	if (r < 0)
		return r;
	r = sd_event_source_set_enabled(cl->timer, SD_EVENT_OFF);
	if (r < 0) {
		sd_event_source_set_enabled(cl->io, SD_EVENT_ON);
		return r;
	}
	cl->deferred = true;
	cl->gone = gone;
	cl->gone_userdata = userdata;
	return 0;
}

bool control_deferred(const struct control_client *cl)
{
	return cl->deferred;
}

struct ctl_reply *control_deferred_reply(struct control_client *cl)
{
	return &cl->out;
}

void control_deferred_finish(struct control_client *cl, int err)
{
	if (!cl->deferred)
		return;
	cl->deferred = false;
	sd_event_source_set_enabled(cl->io, SD_EVENT_ON);
	sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT);
	client_touch(cl);
	if (client_send(cl, err) < 0)
		client_free(cl);
}

unsigned int control_streams(const struct control *c)
{
	return c->n_streams;
}

unsigned int control_clients(const struct control *c)
{
	return c->n_clients;
}

void control_set_idle_timeout(struct control *c, uint64_t usec)
{
	c->idle_usec = usec;
}

void control_client_peer(const struct control_client *cl, uid_t *ret_uid, pid_t *ret_pid)
{
	*ret_uid = cl->uid;
	*ret_pid = cl->pid;
}
