/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket server: a Unix stream socket on the daemon's sd-event
 * loop that reads ctlproto requests, hands each to a handler and writes the
 * reply back without ever blocking the loop.  Returns codes, never logs.
 */
#ifndef IPMODD_CONTROL_H
#define IPMODD_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "ctlproto.h"

/*
 * Bounds on what clients hold, each with a share kept for privileged peers
 * (uid 0 or the socket's group, by SO_PEERCRED/SO_PEERGROUPS at accept), so
 * that any number of unprivileged clients cannot lock root out.
 */
#define CONTROL_CLIENTS_MAX 256
#define CONTROL_CLIENTS_RESERVED 32		/* of them, for privileged peers only */
#define CONTROL_STREAMS_MAX 16			/* clients streaming at once */
#define CONTROL_STREAMS_RESERVED 4		/* of them, for privileged peers only */
#define CONTROL_STREAM_BUF_MAX (4 << 20)	/* bytes queued for one stream */
/* A stream whose reader takes no byte this long while bytes wait is closed. */
#define CONTROL_STREAM_STALL_USEC (30 * 1000000ULL)
/*
 * Bytes of replies held for clients that have not read them yet, over all
 * clients and over the unprivileged ones; one client holds one reply of at
 * most CTL_REPLY_MAX.  Replies of up to CONTROL_REPLY_SMALL bytes are not
 * counted (at most CONTROL_CLIENTS_MAX of them).  A reply beyond the budget
 * is replaced by errno=ENOBUFS and the client is closed.
 */
#define CONTROL_REPLY_BUDGET (128u << 20)
#define CONTROL_REPLY_BUDGET_UNPRIV (64u << 20)
#define CONTROL_REPLY_SMALL (64u << 10)
#define CONTROL_IDLE_USEC (10 * 1000000ULL)	/* a client silent this long is closed */

struct control;
struct control_client;		/* one connection, valid during its handler call */

/*
 * Answer one request: append lines to reply (ctl_reply_add() and friends)
 * and return 0, or return -errno, optionally with ctl_reply_error() text.
 * privileged: the peer is uid 0 or the daemon's own uid, or has the socket's group as its primary or
 * (where the kernel reports it, SO_PEERGROUPS) a supplementary group, at
 * connect time.  The handler must not free the control.
 */
typedef int (*control_handler_t)(void *userdata, struct control_client *cl,
				 const struct ctl_request *req, bool privileged,
				 struct ctl_reply *reply);

/*
 * Listen on path, with mode (0660 usually) and, when group is non-empty,
 * owned by that group.  Creates a missing parent directory (0755).  A socket file nobody
 * answers on is replaced.  Errors: -EADDRINUSE another server answers on
 * path, -EEXIST path is not a socket, -ENOENT unknown group,
 * -ENAMETOOLONG, or what a syscall returned.
 */
int control_new(sd_event *e, const char *path, const char *group, unsigned int mode,
		control_handler_t handler, void *userdata, struct control **ret);
/*
 * Whether a server answers on path: 1 (and, when ret_pid is not NULL, the
 * pid that listens, 0 if the kernel does not say), 0 when none does (no
 * socket, or nobody listens), -errno.  Touches nothing.
 */
int control_probe(const char *path, pid_t *ret_pid);
/* Close every client and the socket, and unlink the socket if it is still ours. */
struct control *control_free(struct control *c);

/*
 * Streams (trace, capture).  A handler that calls control_stream_start() and
 * returns 0 turns its client into a stream: after the reply, the client's
 * input is only watched for the hang-up, and what control_stream_write()
 * queues goes out as the socket takes it.  No idle timeout applies.  closed
 * is called once, when the client goes away for any reason (hang-up, error,
 * control_stream_end() done, control_free()); the client must not be used
 * after that.  If the handler fails, the stream is cancelled and closed is
 * called before the error reply goes out.
 *
 * A stream whose reader takes nothing for CONTROL_STREAM_STALL_USEC while
 * bytes wait is closed (its bytes are lost anyway).
 *
 * Errors: -EBUSY CONTROL_STREAMS_MAX streams already (or, for an
 * unprivileged client, all but the CONTROL_STREAMS_RESERVED ones), -EALREADY
 * this client streams already, -ENOMEM.
 */
typedef void (*control_stream_closed_t)(void *userdata);
int control_stream_start(struct control_client *cl, size_t bufsize,
			 control_stream_closed_t closed, void *userdata);
/*
 * Queue len bytes whole, or nothing: -ENOBUFS when they do not fit now (the
 * client reads too slowly; the caller counts the loss), -EPIPE after
 * control_stream_end().  Never blocks, never frees the client.
 */
int control_stream_write(struct control_client *cl, const void *data, size_t len);
/* Send what is queued, then close the connection. */
void control_stream_end(struct control_client *cl);
unsigned int control_streams(const struct control *c);

/*
 * Deferred replies (reload).  A handler that calls control_defer() and
 * returns 0 answers later: the client's reply stays open, nothing more is
 * read from it and no idle timeout applies until control_deferred_finish()
 * finishes the reply (control_deferred_reply(), then errno=err) and sends
 * it.  A handler that fails after control_defer() answers at once, as
 * usual.  gone is called when the client goes away before the answer
 * (control_free()); the client must not be used after that.  -EALREADY: the
 * client streams or waits already.
 */
typedef void (*control_defer_gone_t)(void *userdata, struct control_client *cl);
int control_defer(struct control_client *cl, control_defer_gone_t gone, void *userdata);
struct ctl_reply *control_deferred_reply(struct control_client *cl);
/* Send the reply; the client may be freed (a write error) before it returns. */
void control_deferred_finish(struct control_client *cl, int err);
bool control_deferred(const struct control_client *cl);

/*
 * Who the client is, by SO_PEERCRED at accept: uid (-1 unknown) and pid
 * (0 unknown, or in another pid namespace).
 */
void control_client_peer(const struct control_client *cl, uid_t *ret_uid, pid_t *ret_pid);

/* Connected clients, for status. */
unsigned int control_clients(const struct control *c);
/* Close clients idle this long instead; counts from each client's next activity. */
void control_set_idle_timeout(struct control *c, uint64_t usec);

#endif
