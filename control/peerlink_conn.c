/* One peer connection, on the link thread: a non-blocking TCP connect (the
 * dialling side), the mutual TLS handshake, the HELLO exchange, then frames
 * in (decoded strictly, handed to the owner's recv callback) and out (one
 * contiguous buffer per connection, bounded by queue_max, written by
 * peerlink_conn_flush with SSL_write once per loop turn). A connection that
 * fails in any way is killed with a logged reason: detached from its node at
 * once, freed by peerlink.c at the end of the loop turn (events of the same
 * turn may still name it). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "control/peerlink_int.h"
#include "dataplane/base/log.h"

#define IN_CAP_MIN	(64u << 10)
#define OUT_CAP_MIN	(64u << 10)
#define READ_BUDGET	(1u << 20)	/* bytes read from one link per turn */

/* The last OpenSSL error of this thread as text (errno's for a syscall
 * error), and clears the queue. */
static const char *
ssl_reason(char *buf, size_t len, int err)
{
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, buf, len);
	else if (err == SSL_ERROR_SYSCALL && errno != 0)
		snprintf(buf, len, "%s", strerror(errno));
	else if (err == SSL_ERROR_SYSCALL)
		snprintf(buf, len, "connection closed");
	else
		snprintf(buf, len, "TLS error %d", err);
	ERR_clear_error();
	return buf;
}

static void
set_pollout(struct peerlink_conn *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };

	if (c->pollout == on || c->dead)
		return;
	if (epoll_ctl(c->p->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->pollout = on;
}

struct peerlink_conn *
peerlink_conn_new(struct peerlink *p, int fd, bool dialer, struct peerlink_node *n,
		  const char *who)
{
	struct epoll_event ev;
	struct peerlink_conn *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto out_close;
	c->ssl = SSL_new(p->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1)
		goto out_free;
	if (dialer)
		SSL_set_connect_state(c->ssl);
	else
		SSL_set_accept_state(c->ssl);
	c->p = p;
	c->fd = fd;
	c->dialer = dialer;
	c->phase = dialer ? PEERLINK_CONN_TCP : PEERLINK_CONN_TLS;
	c->pollout = dialer;	/* a connect completes with EPOLLOUT */
	c->t_start = c->t_in = c->t_out = p->now;
	snprintf(c->who, sizeof(c->who), "%s", who);
	ev = (struct epoll_event){ .events = EPOLLIN | (dialer ? EPOLLOUT : 0), .data.ptr = c };
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		goto out_free;
	if (n != NULL) {
		c->node = n;
		n->conn = c;
		n->st.state = PEERLINK_CONNECTING;
	}
	c->next = p->conns;
	p->conns = c;
	return c;

out_free:
	SSL_free(c->ssl);
	free(c);
out_close:
	LOG(ERR, PEERLINK, "no memory for a connection with %s", who);
	close(fd);
	return NULL;
}

void
peerlink_conn_kill(struct peerlink_conn *c, const char *fmt, ...)
{
	struct peerlink *p = c->p;
	struct peerlink_node *n = c->node;
	char reason[256];
	bool was_up;
	va_list ap;

	if (c->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	c->dead = true;
	if (c->phase >= PEERLINK_CONN_HELLO)	/* best effort: the peer reads a clean close */
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (n != NULL && n->conn == c) {
		LOG(WARNING, PEERLINK, "link to node %u (%s) closed: %s", n->id, c->who, reason);
		was_up = c->phase == PEERLINK_CONN_UP;
		n->conn = NULL;
		n->st.state = PEERLINK_DOWN;
		n->st.queued = 0;
		if (p->id < n->id) {	/* we dial this one: again, later */
			n->next_dial = p->now + n->backoff;
			n->backoff = n->backoff * 2 > p->backoff_max ? p->backoff_max
								  : n->backoff * 2;
		}
		if (was_up && p->cb.state != NULL)
			p->cb.state(p->cb.arg, n->id, false);
	} else {
		LOG(WARNING, PEERLINK, "peer connection from %s closed: %s", c->who, reason);
	}
}

void
peerlink_conn_free(struct peerlink_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	free(c->in);
	free(c->out);
	free(c);
}

/* Room for <len> more bytes at the end of the output; false past the bound. */
static uint8_t *
out_room(struct peerlink_conn *c, size_t len)
{
	size_t want, cap;
	uint8_t *o;

	if (c->out_len - c->out_head + len > c->p->queue_max)
		return NULL;
	if (c->out_len + len > c->out_cap && c->out_head > 0) {
		memmove(c->out, c->out + c->out_head, c->out_len - c->out_head);
		c->out_len -= c->out_head;
		c->out_head = 0;
	}
	want = c->out_len + len;
	if (want > c->out_cap) {
		cap = c->out_cap ? c->out_cap : OUT_CAP_MIN;
		while (cap < want)
			cap *= 2;
		o = realloc(c->out, cap);
		if (o == NULL)
			return NULL;
		c->out = o;
		c->out_cap = cap;
	}
	return c->out + c->out_len;
}

bool
peerlink_conn_queue(struct peerlink_conn *c, const uint8_t *data, size_t len)
{
	uint8_t *o = out_room(c, len);

	if (o == NULL)
		return false;
	memcpy(o, data, len);
	c->out_len += len;
	c->t_out = c->p->now;
	return true;
}

/* Encodes <f> (from this node) straight into the output. */
static bool
queue_frame(struct peerlink_conn *c, struct peerframe *f)
{
	size_t n;
	uint8_t *o;

	f->node = c->p->id;
	n = peerframe_size(f);
	o = n > 0 ? out_room(c, n) : NULL;
	if (o == NULL || peerframe_encode(f, o, n) != (ssize_t)n)
		return false;
	c->out_len += n;
	c->t_out = c->p->now;
	return true;
}

static void
send_hello(struct peerlink_conn *c)
{
	struct peerframe f = { .type = PEERFRAME_HELLO };

	f.u.hello.proto = PEERLINK_PROTO;
	f.u.hello.cluster = c->p->cluster;
	f.u.hello.cluster_len = (uint16_t)strlen(c->p->cluster);
	if (!queue_frame(c, &f))
		peerlink_conn_kill(c, "cannot queue HELLO");
}

static void
handshake(struct peerlink_conn *c)
{
	char why[256];
	int r, err;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->phase = PEERLINK_CONN_HELLO;
		c->ssl_wants_write = false;
		send_hello(c);
		return;
	}
	err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		c->ssl_wants_write = false;
		set_pollout(c, false);
		return;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		c->ssl_wants_write = true;
		set_pollout(c, true);
		return;
	}
	c->p->g.refused_tls++;
	peerlink_conn_kill(c, "TLS handshake refused: %s", ssl_reason(why, sizeof(why), err));
}

/* With a name prefix: does the peer's certificate name node <id>? */
static bool
cert_names(struct peerlink_conn *c, uint32_t id)
{
	char name[48];
	X509 *x;

	if (c->p->name_prefix[0] == '\0')
		return true;
	x = SSL_get0_peer_certificate(c->ssl);
	snprintf(name, sizeof(name), "%s%u", c->p->name_prefix, id);
	return x != NULL && X509_check_host(x, name, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
}

/* The first frame: the other end's HELLO. */
static void
on_hello(struct peerlink_conn *c, const struct peerframe *f)
{
	struct peerlink *p = c->p;
	struct peerlink_node *n;

	if (f->type != PEERFRAME_HELLO) {
		p->g.refused_hello++;
		peerlink_conn_kill(c, "first frame is %s, not HELLO", peerframe_type_name(f->type));
		return;
	}
	if (f->u.hello.cluster_len != strlen(p->cluster) ||
	    memcmp(f->u.hello.cluster, p->cluster, f->u.hello.cluster_len) != 0) {
		p->g.refused_hello++;
		peerlink_conn_kill(c, "HELLO from node %u names cluster \"%.*s\", not \"%s\"",
			       f->node, (int)f->u.hello.cluster_len, f->u.hello.cluster,
			       p->cluster);
		return;
	}
	if (f->u.hello.proto != PEERLINK_PROTO) {
		p->g.refused_hello++;
		peerlink_conn_kill(c, "HELLO from node %u speaks protocol %u, not %u", f->node,
			       f->u.hello.proto, PEERLINK_PROTO);
		return;
	}
	if (!cert_names(c, f->node)) {
		p->g.refused_hello++;
		peerlink_conn_kill(c, "HELLO from node %u: its certificate does not name %s%u",
			       f->node, p->name_prefix, f->node);
		return;
	}
	if (c->dialer) {
		if (f->node != c->node->id) {
			p->g.refused_hello++;
			peerlink_conn_kill(c, "dialled node %u but node %u answered", c->node->id,
				       f->node);
			return;
		}
		n = c->node;
	} else {
		n = peerlink_node_find(p, f->node);
		if (n == NULL || f->node >= p->id) {
			p->g.refused_hello++;
			peerlink_conn_kill(c, "HELLO from node %u: %s", f->node,
				       n == NULL ? "not a member" :
				       f->node == p->id ? "our own node id" :
				       "a higher id than ours, which we dial");
			return;
		}
		/* The dialler keeps one connection per node and dials only when
		 * it has none: a new one means it gave the old one up (it may
		 * have been cut, or lost without a FIN), so the old one goes. */
		if (n->conn != NULL) {
			p->g.duplicates++;
			peerlink_conn_kill(n->conn, "node %u connected again; the older "
				       "connection is closed", f->node);
		}
		c->node = n;
		n->conn = c;
	}
	c->phase = PEERLINK_CONN_UP;
	n->st.state = PEERLINK_UP;
	n->st.ups++;
	n->backoff = p->backoff_min;
	LOG(NOTICE, PEERLINK, "link to node %u (%s) up", n->id, c->who);
	if (p->cb.state != NULL)
		p->cb.state(p->cb.arg, n->id, true);
}

static void
on_frame(struct peerlink_conn *c, const struct peerframe *f)
{
	struct peerlink *p = c->p;
	struct peerframe pong;

	if (c->phase != PEERLINK_CONN_UP) {
		on_hello(c, f);
		return;
	}
	c->node->st.frames_in++;
	if (f->node != c->node->id) {
		p->g.bad_frames++;
		peerlink_conn_kill(c, "frame from node %u on the link of node %u", f->node,
			       c->node->id);
		return;
	}
	switch (f->type) {
	case PEERFRAME_HELLO:
		p->g.bad_frames++;
		peerlink_conn_kill(c, "a second HELLO");
		break;
	case PEERFRAME_PING:
		pong = (struct peerframe){ .type = PEERFRAME_PONG, .ref = f->ref };
		if (!queue_frame(c, &pong))
			peerlink_conn_kill(c, "cannot queue PONG: output over queue_max");
		break;
	case PEERFRAME_PONG:
		break;
	default:
		if (p->cb.recv != NULL)
			p->cb.recv(p->cb.arg, c->node->id, f);
	}
}

/* Takes every whole frame from the input, then moves the rest to the front. */
static void
parse(struct peerlink_conn *c)
{
	struct peerframe f;
	size_t off = 0;
	ssize_t n;

	while (!c->dead) {
		n = peerframe_decode(c->in + off, c->in_len - off, c->p->frame_max, &f);
		if (n == 0)
			break;
		if (n < 0) {
			c->p->g.bad_frames++;
			peerlink_conn_kill(c, "bad frame: %s", peerframe_strerror((int)n));
			return;
		}
		on_frame(c, &f);
		off += (size_t)n;
	}
	if (c->dead || off == 0)
		return;
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static bool
grow_in(struct peerlink_conn *c)
{
	size_t cap = c->in_cap ? c->in_cap * 2 : IN_CAP_MIN;
	uint8_t *in;

	if (cap > c->p->frame_max)
		cap = c->p->frame_max;
	if (cap <= c->in_cap) {	/* cannot happen: decode refuses longer frames */
		peerlink_conn_kill(c, "input buffer full");
		return false;
	}
	in = realloc(c->in, cap);
	if (in == NULL) {
		peerlink_conn_kill(c, "no memory for input");
		return false;
	}
	c->in = in;
	c->in_cap = cap;
	return true;
}

void
peerlink_conn_input(struct peerlink_conn *c)
{
	size_t budget = READ_BUDGET;
	char why[256];
	int r, err;

	c->again = false;
	c->ssl_wants_write = false;
	while (!c->dead && c->phase >= PEERLINK_CONN_HELLO) {
		if (c->in_len == c->in_cap && !grow_in(c))
			return;
		ERR_clear_error();
		r = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
		if (r <= 0) {
			err = SSL_get_error(c->ssl, r);
			if (err == SSL_ERROR_WANT_READ)
				return;
			if (err == SSL_ERROR_WANT_WRITE) {
				c->ssl_wants_write = true;
				set_pollout(c, true);
				return;
			}
			if (err == SSL_ERROR_ZERO_RETURN)
				peerlink_conn_kill(c, "closed by the peer");
			else
				peerlink_conn_kill(c, "read: %s",
						   ssl_reason(why, sizeof(why), err));
			return;
		}
		c->in_len += (size_t)r;
		c->t_in = c->p->now;
		if (c->node != NULL)
			c->node->st.bytes_in += (uint64_t)r;
		parse(c);
		if ((size_t)r >= budget) {
			c->again = true;
			return;
		}
		budget -= (size_t)r;
	}
}

void
peerlink_conn_event(struct peerlink_conn *c, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->dead)
		return;
	if (c->phase == PEERLINK_CONN_TCP) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err != 0) {
			peerlink_conn_kill(c, "connect: %s", strerror(err));
			return;
		}
		c->phase = PEERLINK_CONN_TLS;
	}
	if (c->phase == PEERLINK_CONN_TLS)
		handshake(c);
	if (c->phase >= PEERLINK_CONN_HELLO)
		peerlink_conn_input(c);
}

void
peerlink_conn_flush(struct peerlink_conn *c)
{
	bool blocked = false;
	char why[256];
	int r, err;

	if (c->dead || c->phase < PEERLINK_CONN_HELLO)
		return;
	if (c->out_head < c->out_len && c->node != NULL)
		c->node->st.batches++;
	while (c->out_head < c->out_len) {
		ERR_clear_error();
		r = SSL_write(c->ssl, c->out + c->out_head, (int)(c->out_len - c->out_head));
		if (r > 0) {
			c->out_head += (size_t)r;
			if (c->node != NULL)
				c->node->st.bytes_out += (uint64_t)r;
			continue;
		}
		err = SSL_get_error(c->ssl, r);
		if (err == SSL_ERROR_WANT_WRITE) {
			blocked = true;
			break;
		}
		if (err == SSL_ERROR_WANT_READ)
			break;
		peerlink_conn_kill(c, "write: %s", ssl_reason(why, sizeof(why), err));
		return;
	}
	if (c->out_head == c->out_len)
		c->out_head = c->out_len = 0;
	if (c->node != NULL && c->node->conn == c)
		c->node->st.queued = c->out_len - c->out_head;
	/* also when a read needs to write (a TLS 1.3 key update answer) */
	set_pollout(c, blocked || c->ssl_wants_write);
}

void
peerlink_conn_timers(struct peerlink_conn *c)
{
	struct peerlink *p = c->p;
	struct peerframe ping;

	if (c->dead)
		return;
	if (c->phase != PEERLINK_CONN_UP) {
		if (p->now - c->t_start > p->handshake_ms) {
			if (c->phase == PEERLINK_CONN_TLS && !c->dialer)
				p->g.refused_tls++;
			peerlink_conn_kill(c, "%s not done in %u ms",
				       c->phase == PEERLINK_CONN_TCP ? "connect" :
				       c->phase == PEERLINK_CONN_TLS ? "TLS handshake" : "HELLO",
				       p->handshake_ms);
		}
		return;
	}
	if (p->now - c->t_in > p->dead_ms) {
		peerlink_conn_kill(c, "nothing received for %u ms", p->dead_ms);
		return;
	}
	if (p->now - c->t_out >= p->ping_ms) {
		ping = (struct peerframe){ .type = PEERFRAME_PING, .ref = ++c->ping_ref };
		if (!queue_frame(c, &ping))
			peerlink_conn_kill(c, "cannot queue PING: output over queue_max");
	}
}
