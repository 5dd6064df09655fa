/* The kernel-socket I/O backend: per-lcore epoll over non-blocking sockets.
 *
 * Every lcore has its own listening socket on the same address
 * (SO_REUSEPORT), so the kernel spreads new connections over lcores and a
 * connection stays on the lcore that accepted it. Level-triggered epoll;
 * EPOLLOUT is armed only while a connection has output the socket did not
 * take. Reads are bounded per turn so one busy peer cannot starve others. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/engine/engine_int.h"
#include "dataplane/engine/io/iouring.h"
#include "dataplane/tls/tlsterm.h"

#define POLL_EVENTS	256
#define ACCEPT_BURST	64
#define READ_BURST	4	/* reads per connection per turn */

/* epoll's data for the listener and the wake-up eventfd: pointers that are
 * never a struct conn. */
#define LISTENER_TAG(lc) ((void *)&(lc)->listen_fd)
#define WAKE_TAG(lc) ((void *)&(lc)->wake_fd)

int
io_kernel_listen_socket(const struct engine_conf *cf, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST |
				  AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	char port[8];
	int fd, one = 1, rc;

	snprintf(port, sizeof(port), "%u", cf->sip_port);
	rc = getaddrinfo(cf->sip_host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "[sip] listen: %s: %s", cf->sip_host, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto out_err;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto out_close;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1)
		goto out_close;
	if (listen(fd, (int)cf->backlog) == -1)
		goto out_close;
	freeaddrinfo(ai);
	return fd;

out_close:
	rc = -errno;
	close(fd);
	errno = -rc;
out_err:
	rc = -errno;
	snprintf(err, errlen, "[sip] listen: cannot listen on %s:%u: %s", cf->sip_host,
		 cf->sip_port, strerror(errno));
	freeaddrinfo(ai);
	return rc;
}

static int
kernel_listen_open(struct lcore_ctx *lc, char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd = io_kernel_listen_socket(&lc->e->conf, err, errlen);

	if (fd < 0)
		return fd;
	lc->listen_fd = fd;
	ev.data.ptr = LISTENER_TAG(lc);
	if (epoll_ctl(lc->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int
kernel_lcore_init(struct lcore_ctx *lc, char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	lc->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (lc->epfd == -1) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		return -errno;
	}
	fd = kernel_listen_open(lc, err, errlen);
	if (fd < 0)
		return fd;
	lc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev.data.ptr = WAKE_TAG(lc);
	if (lc->wake_fd == -1 || epoll_ctl(lc->epfd, EPOLL_CTL_ADD, lc->wake_fd, &ev) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void
kernel_listen_close(struct lcore_ctx *lc)
{
	if (lc->listen_fd == -1)
		return;
	epoll_ctl(lc->epfd, EPOLL_CTL_DEL, lc->listen_fd, NULL);
	close(lc->listen_fd);
	lc->listen_fd = -1;
}

static void
kernel_lcore_fini(struct lcore_ctx *lc)
{
	kernel_listen_close(lc);
	if (lc->epfd != -1)
		close(lc->epfd);
	lc->epfd = -1;
	if (lc->wake_fd != -1)
		close(lc->wake_fd);
	lc->wake_fd = -1;
}

static void
do_accept(struct lcore_ctx *lc)
{
	for (int i = 0; i < ACCEPT_BURST && lc->listen_fd != -1; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct conn *c;
		int fd, one = 1;

		fd = accept4(lc->listen_fd, (struct sockaddr *)&peer, &plen,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE)
				LOG(WARNING, IO, "accept: %s (raise the open-file limit)",
				    strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = conn_new(lc, fd, &peer);
		if (c == NULL) {
			close(fd);
			continue;
		}
		ev.data.ptr = c;
		if (epoll_ctl(lc->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			conn_close(c, false);
			continue;
		}
	}
}

static void set_want_out(struct conn *c, bool on);

static void
do_read(struct conn *c)
{
	char buf[16384];

	for (int i = 0; i < READ_BURST && c->state != CONN_DEAD; i++) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		ctr_inc(c->lc, CTR_IO_SYSCALLS);

		if (n > 0) {
			conn_input(c, buf, n);
			if ((size_t)n < sizeof(buf))
				return;
			continue;
		}
		if (n == 0) {
			/* Peer closed its side: flush what we owe (it may only have
			 * half-closed), then close. Stop polling for input, which
			 * would now be readable forever. */
			c->rd_eof = true;
			conn_close(c, true);
			set_want_out(c, c->want_out);
			return;
		}
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c, false);
		return;
	}
}

static void
set_want_out(struct conn *c, bool on)
{
	struct epoll_event ev = { .events = (c->rd_eof ? 0 : EPOLLIN | EPOLLRDHUP) |
					    (on ? EPOLLOUT : 0),
				  .data.ptr = c };

	if (c->want_out == on && !c->rd_eof)
		return;
	if (epoll_ctl(c->lc->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = on;
}

static int
kernel_flush(struct conn *c)
{
	for (;;) {
		const void *p;
		size_t n = tlsterm_pending_out(c->tls, &p);
		ssize_t w;

		if (n == 0) {
			set_want_out(c, false);
			return 0;
		}
		w = send(c->fd, p, n, MSG_NOSIGNAL);
		ctr_inc(c->lc, CTR_IO_SYSCALLS);
		if (w > 0) {
			tlsterm_consume_out(c->tls, w);
			ctr_add(c->lc, CTR_BYTES_OUT, w);
			c->last_io_s = c->lc->pub.now_s;
			continue;
		}
		if (w == -1 && (errno == EAGAIN || errno == EINTR)) {
			set_want_out(c, true);
			return 0;
		}
		return -1;
	}
}

static void
kernel_close(struct conn *c)
{
	if (c->fd == -1)
		return;
	/* close() removes it from the epoll set. */
	close(c->fd);
	c->fd = -1;
}

/* [io] kernel_nap_us: an lcore about to block whose last wait ended within
 * NAP_CLOSE naps (events come close together: a post's deliveries are
 * answered by its members within a fraction of a millisecond) sleeps one
 * nap instead and then takes whatever came, so that one wake-up serves
 * many events; a nap that found nothing goes back to blocking. */
#define NAP_CLOSE	4

static void
kernel_poll(struct lcore_ctx *lc, int timeout_ms)
{
	struct epoll_event evs[POLL_EVENTS];
	uint32_t nap_us = lc->e->conf.kernel_nap_us;
	bool napped = false;
	uint64_t t0 = 0;
	int n;

	if (timeout_ms > 0 && nap_us > 0) {
		if (lc->io_nap) {
			struct timespec ts = { nap_us / 1000000, (long)(nap_us % 1000000) * 1000 };

			nanosleep(&ts, NULL);
			ctr_inc(lc, CTR_IO_NAPS);
			napped = true;
			timeout_ms = 0;
		} else {
			t0 = clock_mono_us();
		}
	}
	n = epoll_wait(lc->epfd, evs, POLL_EVENTS, timeout_ms);
	ctr_inc(lc, CTR_IO_SYSCALLS);
	if (napped)
		lc->io_nap = n > 0;
	else if (t0 != 0)
		lc->io_nap = n > 0 && clock_mono_us() - t0 < (uint64_t)NAP_CLOSE * nap_us;
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;

		if (evs[i].data.ptr == LISTENER_TAG(lc)) {
			do_accept(lc);
			continue;
		}
		if (evs[i].data.ptr == WAKE_TAG(lc)) {
			uint64_t v;

			if (read(lc->wake_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
				LOG(ERR, IO, "lcore %u: eventfd: %s", lc->pub.idx, strerror(errno));
			continue;
		}
		if (c->state == CONN_DEAD)
			continue;
		if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			do_read(c);
		if (c->state != CONN_DEAD && (evs[i].events & EPOLLOUT))
			conn_kick(c);	/* flushed at the end of the turn */
	}
}

const struct io_ops io_kernel_ops = {
	.name = "kernel",
	.lcore_init = kernel_lcore_init,
	.lcore_fini = kernel_lcore_fini,
	.listen_open = kernel_listen_open,
	.listen_close = kernel_listen_close,
	.poll = kernel_poll,
	.flush = kernel_flush,
	.close = kernel_close,
};
