/* See relay.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "dataplane/base/log.h"
#include "dataplane/engine/io/relay.h"

#define RELAY_CHUNK	16384	/* one read from a socket into the TCP send buffer */
#define RELAY_EVENTS	64	/* socket events per relay_poll */

struct relay {
	struct utcp_conn *uc;	/* NULL while free */
	int fd;			/* our end of the socketpair */
	bool fd_rd;		/* the socket may have bytes (or EOF) for us */
	bool fd_wr;		/* the socket may have room */
	bool tcp_eof;		/* the client's FIN was passed on (SHUT_WR) */
	struct relay *next_free;
};

struct relay_set {
	int ep;
	uint32_t max, n;
	relay_adopt_fn *adopt;
	void *arg;
	struct relay *free;
	uint64_t stat[RELAY_STAT__COUNT];
	struct relay r[];
};

struct relay_set *
relay_set_create(uint32_t max, relay_adopt_fn *adopt, void *arg)
{
	struct relay_set *rs = calloc(1, sizeof(*rs) + (size_t)max * sizeof(rs->r[0]));

	if (rs == NULL)
		return NULL;
	rs->ep = epoll_create1(EPOLL_CLOEXEC);
	if (rs->ep == -1) {
		free(rs);
		return NULL;
	}
	rs->max = max;
	rs->adopt = adopt;
	rs->arg = arg;
	for (uint32_t i = max; i-- > 0;) {
		rs->r[i].fd = -1;
		rs->r[i].next_free = rs->free;
		rs->free = &rs->r[i];
	}
	return rs;
}

/* Releases <r>'s socket (the service reads EOF, or a reset if it was
 * still writing) and puts it back on the free list. Its TCP connection
 * was closed, reset or released by the caller. */
static void
relay_free(struct relay_set *rs, struct relay *r)
{
	close(r->fd);	/* also leaves the epoll set */
	r->fd = -1;
	r->uc = NULL;
	r->next_free = rs->free;
	rs->free = r;
	rs->n--;
}

/* Something broke on one side: reset the client, close the socket. */
static void
relay_reset(struct relay_set *rs, struct relay *r)
{
	utcp_conn_set_user(r->uc, NULL);
	utcp_abort(r->uc);
	rs->stat[RELAY_RESETS]++;
	relay_free(rs, r);
}

void
relay_set_destroy(struct relay_set *rs)
{
	if (rs == NULL)
		return;
	for (uint32_t i = 0; i < rs->max; i++)
		if (rs->r[i].uc != NULL)
			relay_reset(rs, &rs->r[i]);
	close(rs->ep);
	free(rs);
}

bool
relay_owns(const struct relay_set *rs, const void *user)
{
	const char *p = user;

	return rs != NULL && p >= (const char *)rs->r && p < (const char *)(rs->r + rs->max);
}

void
relay_accepted(struct relay_set *rs, struct utcp_conn *uc)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct relay *r = rs->free;
	int sv[2];

	utcp_conn_set_user(uc, NULL);
	if (r == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
				    sv) == -1) {
		if (r != NULL)
			LOG(WARNING, IO, "relay: socketpair: %s", strerror(errno));
		rs->stat[RELAY_REFUSED]++;
		utcp_abort(uc);
		return;
	}
	ev.data.ptr = r;
	if (epoll_ctl(rs->ep, EPOLL_CTL_ADD, sv[0], &ev) == -1 || rs->adopt(rs->arg, sv[1]) != 0) {
		close(sv[0]);
		close(sv[1]);
		rs->stat[RELAY_REFUSED]++;
		utcp_abort(uc);
		return;
	}
	rs->free = r->next_free;
	rs->n++;
	*r = (struct relay){ .uc = uc, .fd = sv[0], .fd_wr = true };
	utcp_conn_set_user(uc, r);
	rs->stat[RELAY_ACCEPTED]++;
}

static void relay_down(struct relay_set *rs, struct relay *r);

/* Client -> service: what the TCP receive buffer holds, while the socket
 * takes it; then the client's FIN, once everything before it went. */
static void
relay_up(struct relay_set *rs, struct relay *r)
{
	while (r->fd_wr) {
		const void *p[2];
		size_t len[2];
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov };
		int n = utcp_peek(r->uc, p, len);
		ssize_t w;

		if (n == 0)
			break;
		for (int i = 0; i < n; i++)
			iov[i] = (struct iovec){ (void *)(uintptr_t)p[i], len[i] };	/* sendmsg only reads */
		mh.msg_iovlen = (size_t)n;
		w = sendmsg(r->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			utcp_consume(r->uc, (size_t)w);
			rs->stat[RELAY_BYTES_UP] += (uint64_t)w;
		} else if (errno == EAGAIN) {
			r->fd_wr = false;	/* EPOLLOUT resumes; the window closes meanwhile */
		} else if (errno == EPIPE) {
			/* The service closed its end, maybe just after
			 * answering, and these client bytes reached us before
			 * relay_poll read the answer (input comes first in a
			 * loop turn). Pass on what it wrote first, as
			 * relay_poll would have: the close that follows
			 * resets (the client's bytes were never read), but
			 * after the answer, not instead of it. */
			r->fd_rd = true;
			relay_down(rs, r);
			if (r->uc != NULL)
				relay_reset(rs, r);
			return;
		} else if (errno != EINTR) {
			relay_reset(rs, r);	/* the service is gone */
			return;
		}
	}
	if (!r->tcp_eof && utcp_conn_readable(r->uc) == 0 && utcp_read(r->uc, NULL, 0) == 0) {
		r->tcp_eof = true;
		shutdown(r->fd, SHUT_WR);
	}
}

/* Service -> client: read the socket while the TCP send buffer has room.
 * The service closing its end closes the connection (FIN after the queued
 * bytes). */
static void
relay_down(struct relay_set *rs, struct relay *r)
{
	char buf[RELAY_CHUNK];

	while (r->fd_rd) {
		size_t room = utcp_conn_sendable(r->uc);
		ssize_t n;

		if (room == 0) {
			/* A refused write is what arms UTCP_EV_WRITABLE: with
			 * no room, utcp_write takes nothing and says -EAGAIN. */
			(void)utcp_write(r->uc, buf, 1);
			return;
		}
		n = read(r->fd, buf, room < sizeof(buf) ? room : sizeof(buf));
		if (n > 0) {
			if (utcp_write(r->uc, buf, (size_t)n) != n) {
				relay_reset(rs, r);	/* the client side is closed */
				return;
			}
			rs->stat[RELAY_BYTES_DOWN] += (uint64_t)n;
		} else if (n == 0) {
			/* Client bytes the service never read make utcp_close
			 * a reset (RST): count it as one. */
			if (utcp_conn_readable(r->uc) > 0)
				rs->stat[RELAY_RESETS]++;
			utcp_conn_set_user(r->uc, NULL);
			utcp_close(r->uc);
			relay_free(rs, r);
			return;
		} else if (errno == EAGAIN) {
			r->fd_rd = false;
		} else if (errno != EINTR) {
			relay_reset(rs, r);
			return;
		}
	}
}

void
relay_event(struct relay_set *rs, struct utcp_conn *uc, enum utcp_event ev)
{
	struct relay *r = utcp_conn_user(uc);

	switch (ev) {
	case UTCP_EV_READABLE:
		relay_up(rs, r);
		break;
	case UTCP_EV_WRITABLE:
		relay_down(rs, r);
		break;
	case UTCP_EV_CLOSED:
		/* Reset or timed out: the service sees its socket close. */
		utcp_conn_set_user(uc, NULL);
		utcp_close(uc);
		if (utcp_conn_error(uc) != 0)
			rs->stat[RELAY_RESETS]++;
		relay_free(rs, r);
		break;
	default:
		break;
	}
}

size_t
relay_recv(struct relay_set *rs, struct utcp_conn *uc, const void *data, size_t len)
{
	struct relay *r = utcp_conn_user(uc);
	ssize_t w;

	/* Called from inside the stack's input: never close anything here;
	 * an error shows again on the next write from relay_up. */
	if (!r->fd_wr)
		return 0;
	w = send(r->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w > 0) {
		rs->stat[RELAY_BYTES_UP] += (uint64_t)w;
		return (size_t)w;
	}
	if (w == -1 && errno == EAGAIN)
		r->fd_wr = false;
	return 0;
}

void
relay_poll(struct relay_set *rs)
{
	struct epoll_event evs[RELAY_EVENTS];
	int n;

	if (rs == NULL || rs->n == 0)
		return;
	n = epoll_wait(rs->ep, evs, RELAY_EVENTS, 0);
	for (int i = 0; i < n; i++) {
		struct relay *r = evs[i].data.ptr;

		if (r->uc == NULL)
			continue;	/* freed earlier in this batch */
		if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			r->fd_rd = true;
		if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			r->fd_wr = true;
		/* Output first: a service that answered and closed must
		 * have its answer sent before anything the client added
		 * meets the closed socket. */
		relay_down(rs, r);
		if (r->uc != NULL)
			relay_up(rs, r);
	}
}

int
relay_fd(const struct relay_set *rs)
{
	return rs->ep;
}

uint32_t
relay_count(const struct relay_set *rs)
{
	return rs != NULL ? rs->n : 0;
}

const uint64_t *
relay_stats(const struct relay_set *rs)
{
	return rs->stat;
}
