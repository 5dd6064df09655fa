/* Non-blocking SIP-over-TLS client connection; see nbconn.h.
 *
 * Epoll is level-triggered. EPOLLIN stays registered once the handshake is
 * done; EPOLLOUT only while output is queued or OpenSSL asked for it. Reads
 * go on until OpenSSL reports WANT_READ, which means the socket is empty:
 * with read-ahead, records OpenSSL already holds would raise no further
 * epoll event.
 *
 * User-space mode (nbconn_start_unet): the same TLS over a BIO of our own
 * on the utcp connection, an in-memory BIO with no socket behind it:
 * OpenSSL reads records straight out of the connection's receive ring and
 * writes them straight into its send buffer (one copy each way, no memory
 * BIO in between). A full send buffer is a retryable write (SSL_write says
 * WANT_WRITE); the stack reports the connection writable again. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "dataplane/tcp/utcp.h"
#include "perf/nbconn.h"
#include "perf/unet.h"

#define IN_MIN		8192
#define IN_MAX		(32u << 20)	/* a bccontext or join reply can be large */
#define OUT_MIN		4096
#define MSG_MAX		(16u << 20)

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static const struct sipmsg_limits lim = { MSG_MAX, SIPMSG_HDR_CAP };

static void
update_events(struct nbconn *c)
{
	uint32_t want = EPOLLIN;
	struct epoll_event ev;

	if (c->un != NULL)
		return;		/* the stack reports every change */
	if (c->state == NBCONN_CONNECTING)
		want = EPOLLOUT;
	else if (nbconn_pending(c) || c->read_wants_write)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	ev.data.ptr = c->owner;
	if (epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

static int
fail(struct nbconn *c, const char *why)
{
	c->why = why;
	ERR_clear_error();
	return NBCONN_ERR;
}

int
nbconn_start(struct nbconn *c, int ep, void *owner, const struct sockaddr_in *dst,
	     const struct sockaddr_in *src, SSL_CTX *ctx)
{
	struct epoll_event ev;
	int one = 1, e;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		e = errno;
		c->why = e == EMFILE || e == ENFILE ? "socket: too many open files (ulimit -n)" :
			 "socket() failed";
		return -e;
	}
	c->ep = ep;
	c->owner = owner;
	c->out_len = c->out_off = c->in_len = c->in_used = 0;
	c->write_wants_read = c->read_wants_write = false;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src != NULL) {
		/* Several source addresses multiply the local ports available;
		 * the port itself is picked at connect(). */
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (const struct sockaddr *)src, sizeof(*src)) == -1) {
			e = errno;
			c->why = "bind to the source address failed";
			goto out_close;
		}
	}
	if (connect(c->fd, (const struct sockaddr *)dst, sizeof(*dst)) == -1 &&
	    errno != EINPROGRESS) {
		e = errno;
		c->why = e == ECONNREFUSED ? "connection refused (is parleyd listening?)" :
			 e == EADDRNOTAVAIL ? "no local port left (use more source addresses)" :
			 "connect failed";
		goto out_close;
	}
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		e = ENOMEM;
		c->why = "SSL_new failed";
		goto out_close;
	}
	SSL_set_connect_state(c->ssl);
	c->state = NBCONN_CONNECTING;
	c->events = EPOLLOUT;
	ev.events = c->events;
	ev.data.ptr = owner;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
		e = errno;
		c->why = "epoll_ctl failed";
		goto out_close;
	}
	return 0;

out_close:
	SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
	c->state = NBCONN_IDLE;
	ERR_clear_error();
	return -e;
}

/* ---- user-space mode: the BIO on a utcp connection ---- */

static BIO_METHOD *ubio_method;
static pthread_once_t ubio_once = PTHREAD_ONCE_INIT;

static int
ubio_read(BIO *b, char *out, int len)
{
	struct nbconn *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (c == NULL || c->uc == NULL || len <= 0)
		return -1;
	n = utcp_read(c->uc, out, (size_t)len);
	if (n > 0)
		return (int)n;
	if (n == -EAGAIN) {
		BIO_set_retry_read(b);
		return -1;
	}
	return n == 0 ? 0 : -1;	/* end of stream, or the connection's error */
}

static int
ubio_write(BIO *b, const char *in, int len)
{
	struct nbconn *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (c == NULL || c->uc == NULL || len <= 0)
		return -1;
	n = utcp_write(c->uc, in, (size_t)len);
	if (n > 0)
		return (int)n;
	if (n == -EAGAIN) {
		BIO_set_retry_write(b);	/* UTCP_EV_WRITABLE follows */
		return -1;
	}
	return -1;
}

static long
ubio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
ubio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
ubio_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "parley-utcp");

	if (m == NULL)
		return;
	BIO_meth_set_read(m, ubio_read);
	BIO_meth_set_write(m, ubio_write);
	BIO_meth_set_ctrl(m, ubio_ctrl);
	BIO_meth_set_create(m, ubio_create);
	ubio_method = m;
}

int
nbconn_start_unet(struct nbconn *c, struct unet *un, void *owner, const struct sockaddr_in *dst,
		  SSL_CTX *ctx)
{
	int rc;

	c->fd = -1;
	c->ep = -1;
	c->un = un;
	c->owner = owner;
	c->out_len = c->out_off = c->in_len = c->in_used = 0;
	c->write_wants_read = c->read_wants_write = false;
	pthread_once(&ubio_once, ubio_make);
	c->ssl = SSL_new(ctx);
	c->bio = ubio_method != NULL ? BIO_new(ubio_method) : NULL;
	if (c->ssl == NULL || c->bio == NULL) {
		rc = -ENOMEM;
		c->why = "SSL_new failed";
		goto out_free;
	}
	BIO_set_data(c->bio, c);
	SSL_set_bio(c->ssl, c->bio, c->bio);	/* the SSL owns it now */
	SSL_set_connect_state(c->ssl);
	rc = unet_connect(un, ntohl(dst->sin_addr.s_addr), ntohs(dst->sin_port), owner, &c->uc);
	if (rc != 0) {
		c->why = rc == -EADDRINUSE ? "no local port left" :
			 rc == -ENOMEM ? "out of TCP connections or buffers" :
			 "connect failed (not the resolved server address?)";
		goto out_ssl;
	}
	c->state = NBCONN_CONNECTING;
	return 0;

out_free:
	BIO_free(c->bio);
out_ssl:
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->bio = NULL;
	c->uc = NULL;
	c->un = NULL;
	c->state = NBCONN_IDLE;
	ERR_clear_error();
	return rc;
}

static int
handshake(struct nbconn *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (r == 1) {
		c->state = NBCONN_OPEN;
		update_events(c);
		return NBCONN_UP;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->read_wants_write = false;
		update_events(c);
		return NBCONN_WAIT;
	case SSL_ERROR_WANT_WRITE:
		c->read_wants_write = true;
		update_events(c);
		c->read_wants_write = false;
		return NBCONN_WAIT;
	default:
		return fail(c, "TLS handshake failed");
	}
}

static int
grow_in(struct nbconn *c)
{
	size_t cap = c->in_cap ? c->in_cap * 2 : IN_MIN;
	char *p;

	if (c->in_cap >= IN_MAX)
		return -1;
	p = realloc(c->in, cap);
	if (p == NULL)
		return -1;
	c->in = p;
	c->in_cap = cap;
	return 0;
}

/* Reads until the socket is empty. NBCONN_DATA, NBCONN_WAIT or NBCONN_ERR. */
static int
read_all(struct nbconn *c)
{
	int got = NBCONN_WAIT;

	if (c->in_used > 0) {
		memmove(c->in, c->in + c->in_used, c->in_len - c->in_used);
		c->in_len -= c->in_used;
		c->in_used = 0;
	}
	c->read_wants_write = false;
	for (;;) {
		int n, room;

		if (c->in_cap - c->in_len < 2048 && grow_in(c) != 0)
			return fail(c, "input buffer limit reached");
		room = c->in_cap - c->in_len > INT_MAX ? INT_MAX : (int)(c->in_cap - c->in_len);
		n = SSL_read(c->ssl, c->in + c->in_len, room);
		if (n > 0) {
			c->in_len += (size_t)n;
			got = NBCONN_DATA;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			return got;
		case SSL_ERROR_WANT_WRITE:
			c->read_wants_write = true;
			update_events(c);
			return got;
		case SSL_ERROR_ZERO_RETURN:
			return fail(c, "server closed the connection (close_notify)");
		case SSL_ERROR_SYSCALL:
			return fail(c, errno == ECONNRESET ? "connection reset by the server" :
				    "connection closed by the server");
		default:
			return fail(c, "TLS error while reading");
		}
	}
}

/* nbconn_io() in user-space mode: the connection's state is the stack's. */
static int
io_unet(struct nbconn *c)
{
	enum utcp_state st = utcp_conn_state(c->uc);
	int rc = NBCONN_WAIT, r, err = utcp_conn_error(c->uc);

	if (err != 0)
		return fail(c, err == -ECONNREFUSED ? "connection refused (is parleyd listening?)" :
			    err == -ETIMEDOUT ? "TCP timed out" : "connection reset by the server");
	if (c->state == NBCONN_CONNECTING) {
		if (st == UTCP_SYN_SENT)
			return NBCONN_WAIT;
		if (st == UTCP_CLOSED)
			return fail(c, "connect failed");
		c->state = NBCONN_HANDSHAKE;
	}
	if (c->state == NBCONN_HANDSHAKE) {
		rc = handshake(c);
		if (rc == NBCONN_ERR)
			return NBCONN_ERR;
		if (rc != NBCONN_UP)
			goto out_eof;
	}
	if (nbconn_pending(c) && nbconn_flush(c) != 0)
		return NBCONN_ERR;
	r = read_all(c);
	if (r == NBCONN_ERR)
		return NBCONN_ERR;
	rc |= r;
out_eof:
	/* The server closed: what it sent is read; the rest is an error. */
	if (utcp_conn_readable(c->uc) == 0 && utcp_read(c->uc, NULL, 0) == 0 &&
	    !(rc & NBCONN_DATA))
		return fail(c, "connection closed by the server");
	return rc;
}

int
nbconn_io(struct nbconn *c, uint32_t events)
{
	int rc = NBCONN_WAIT, r;

	if (c->un != NULL)
		return io_unet(c);

	if (c->state == NBCONN_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return NBCONN_WAIT;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) == -1 || err != 0)
			return fail(c, err == ECONNREFUSED ? "connection refused (is parleyd listening?)" :
				    err == ETIMEDOUT ? "connect timed out" : "connect failed");
		c->state = NBCONN_HANDSHAKE;
	}
	if (c->state == NBCONN_HANDSHAKE) {
		rc = handshake(c);
		if (rc != NBCONN_UP)
			return rc;
	}
	if (nbconn_pending(c) && nbconn_flush(c) != 0)
		return NBCONN_ERR;
	r = read_all(c);
	if (r == NBCONN_ERR)
		return r;
	update_events(c);	/* drop EPOLLOUT once nothing needs it */
	return rc | r;
}

int
nbconn_next_raw(struct nbconn *c, char **msg, size_t *len)
{
	size_t skip;
	ssize_t n;

	skip = sipmsg_skip_keepalive(c->in + c->in_used, c->in_len - c->in_used);
	c->in_used += skip;
	n = sipmsg_frame(c->in + c->in_used, c->in_len - c->in_used, &lim);
	if (n == 0)
		return 0;
	if (n < 0) {
		c->why = "SIP framing lost";
		return -1;
	}
	*msg = c->in + c->in_used;
	*len = (size_t)n;
	c->in_used += (size_t)n;
	return 1;
}

int
nbconn_parse(struct nbconn *c, char *msg, size_t len, struct sipmsg *m)
{
	if (sipmsg_parse(m, msg, len, &lim) != 0) {
		c->why = "unparsable SIP message from the server";
		return -1;
	}
	return 0;
}

int
nbconn_next(struct nbconn *c, struct sipmsg *m)
{
	char *msg;
	size_t len;
	int k = nbconn_next_raw(c, &msg, &len);

	if (k <= 0)
		return k;
	return nbconn_parse(c, msg, len, m) == 0 ? 1 : -1;
}

char *
nbconn_reserve(struct nbconn *c, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_cap - c->out_len < n) {
		size_t cap = c->out_cap ? c->out_cap : OUT_MIN;
		char *p;

		while (cap - c->out_len < n)
			cap *= 2;
		p = realloc(c->out, cap);
		if (p == NULL)
			return NULL;
		c->out = p;
		c->out_cap = cap;
	}
	return c->out + c->out_len;
}

void
nbconn_commit(struct nbconn *c, size_t n)
{
	c->out_len += n;
}

int
nbconn_flush(struct nbconn *c)
{
	if (c->state != NBCONN_OPEN)
		return 0;	/* sent once the handshake is done */
	c->write_wants_read = false;
	while (c->out_off < c->out_len) {
		size_t left = c->out_len - c->out_off;
		int n = SSL_write(c->ssl, c->out + c->out_off, left > INT_MAX ? INT_MAX : (int)left);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_WRITE:
			update_events(c);
			return 0;
		case SSL_ERROR_WANT_READ:
			c->write_wants_read = true;
			return 0;
		default:
			return fail(c, errno == EPIPE || errno == ECONNRESET ?
				    "connection reset by the server" : "TLS error while writing");
		}
	}
	c->out_off = c->out_len = 0;
	update_events(c);
	return 0;
}

void
nbconn_close(struct nbconn *c, bool abort)
{
	if (c->ssl != NULL) {
		if (!abort && c->state == NBCONN_OPEN) {
			SSL_set_quiet_shutdown(c->ssl, 0);
			SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);	/* and the memory BIOs */
		c->ssl = NULL;
	}
	c->bio = NULL;
	if (c->uc != NULL) {
		if (abort)
			utcp_abort(c->uc);
		else
			utcp_close(c->uc);
		c->uc = NULL;
	}
	c->un = NULL;
	if (c->fd != -1 && c->state != NBCONN_IDLE) {
		if (abort) {
			struct linger lg = { 1, 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(c->fd);
	}
	c->fd = -1;
	c->state = NBCONN_IDLE;
	c->events = 0;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = c->in_used = 0;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_cap = c->out_off = 0;
	ERR_clear_error();
}

void
nbconn_trim(struct nbconn *c)
{
	if (c->in_used == c->in_len) {
		free(c->in);
		c->in = NULL;
		c->in_len = c->in_cap = c->in_used = 0;
	}
	if (c->out_off == c->out_len) {
		free(c->out);
		c->out = NULL;
		c->out_len = c->out_cap = c->out_off = 0;
	}
}
