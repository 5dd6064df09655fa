/* A connection: TLS glue between the I/O backend and the protocol the
 * session layer registered (lcore.h: struct engine_proto; SIP).
 *
 * Ciphertext in -> tlsterm -> plaintext -> proto->input_buf() (or, after a
 * partial message, appended to c->in -> proto->input()).
 * Plaintext out -> tlsterm (records queue in its output BIO) -> the
 * connection joins the lcore's dirty list -> one io_flush() per connection
 * per loop turn, so many messages to one peer leave in one write().
 *
 * The output bound: what tlsterm holds for the wire is the connection's
 * output queue; past outq_max the peer is a slow reader and is dropped.
 * Plaintext is handled where it was decrypted; only a message split across
 * records is copied to c->in (the usual message fits one record).
 * Memory when idle: the input buffer is freed when empty and TLS buffers are
 * trimmed, so an idle connection costs the struct plus OpenSSL's session. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "dataplane/base/log.h"
#include "dataplane/engine/engine_int.h"
#include "dataplane/tls/tlsterm.h"

#define IN_CHUNK	4096

/* Counts what tlsterm reports: hand-offs to our record layer and what
 * happened there. */
static void
tls_events(struct conn *c)
{
	unsigned ev;

	if (c->tls == NULL)
		return;
	ev = tlsterm_take_events(c->tls);
	if (ev == 0)
		return;
	if (ev & TLSTERM_EV_HANDOFF)
		ctr_inc(c->lc, CTR_TLS_HANDOFFS);
	if (ev & TLSTERM_EV_BAD_MAC) {
		/* Once per connection (it closes): a wrong hand-off would
		 * show here first. */
		ctr_inc(c->lc, CTR_TLS_BAD_MAC);
		LOG(NOTICE, TLS, "%s: TLS record failed authentication on the parley record layer, closing",
		    c->peer_str);
	}
	if (ev & TLSTERM_EV_KEY_UPDATE)
		ctr_inc(c->lc, CTR_TLS_KEY_UPDATES);
}

struct conn *
conn_new(struct lcore_ctx *lc, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c;

	if (lc->nconns >= lc->e->conf.max_conns) {
		ctr_inc(lc, CTR_CONN_REFUSED_LIMIT);
		return NULL;
	}
	c = objcache_get(&lc->conn_cache);
	if (c == NULL)
		return NULL;
	c->tls = tlsterm_new(lc->tls);
	if (c->tls == NULL) {
		objcache_put(&lc->conn_cache, c);
		return NULL;
	}
	c->lc = lc;
	c->fd = fd;
	c->id = ((uint64_t)(lc->pub.idx + 1) << 48) | ++lc->conn_seq;
	c->state = CONN_HANDSHAKE;
	c->created_s = lc->pub.now_s;
	c->last_io_s = lc->pub.now_s;
	c->peer = *peer;
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)peer;

		inet_ntop(AF_INET, &s4->sin_addr, c->peer_str, sizeof(c->peer_str));
	} else if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)peer;

		inet_ntop(AF_INET6, &s6->sin6_addr, c->peer_str, sizeof(c->peer_str));
	} else {
		snprintf(c->peer_str, sizeof(c->peer_str), "local");
	}
	c->next = lc->pub.conns;
	if (lc->pub.conns)
		lc->pub.conns->prev = c;
	lc->pub.conns = c;
	lc->nconns++;
	ctr_inc(lc, CTR_CONN_ACCEPTED);
	return c;
}

void
conn_kick(struct conn *c)
{
	if (c->dirty || c->reaped)
		return;
	c->dirty = true;
	c->dirty_next = c->lc->dirty;
	c->lc->dirty = c;
}

/* Appends plaintext to the input buffer; false when the buffer would exceed
 * what one SIP message may take (the peer is over the limit). */
static bool
in_append(struct conn *c, const char *p, size_t n)
{
	uint32_t lim = c->lc->e->conf.sip_lim.max_msg + 4096;

	if (c->in_len + n > lim)
		return false;
	if (c->in_len + n > c->in_cap) {
		uint32_t cap = c->in_cap ? c->in_cap : IN_CHUNK;
		char *nb;

		while (cap < c->in_len + n)
			cap *= 2;
		if (cap > lim)
			cap = lim;
		nb = realloc(c->in, cap);
		if (nb == NULL)
			return false;
		c->in = nb;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	return true;
}

void
conn_input(struct conn *c, const void *buf, size_t len)
{
	struct lcore_ctx *lc = c->lc;
	char plain[16384];
	const char *rest;
	ssize_t n;

	if (c->state == CONN_DEAD)
		return;
	c->last_io_s = lc->pub.now_s;
	ctr_add(lc, CTR_BYTES_IN, len);
	if (tlsterm_feed(c->tls, buf, len) != 0) {
		conn_close(c, false);
		return;
	}
	for (;;) {
		/* Most feeds hold one record (a client's 200 to an INFO): once it
		 * is read, another SSL_read would only report "want more". */
		if (c->state != CONN_HANDSHAKE && tlsterm_in_empty(c->tls))
			break;
		n = tlsterm_read(c->tls, plain, sizeof(plain));
		if (c->state == CONN_HANDSHAKE && tlsterm_handshake_done(c->tls)) {
			c->state = CONN_OPEN;
			ctr_inc(lc, CTR_TLS_HANDSHAKES);
			if (tlsterm_session_reused(c->tls))
				ctr_inc(lc, CTR_TLS_RESUMED);
		}
		if (n == 0)
			break;
		if (n == -ECONNRESET) {		/* close_notify: answer it and go */
			conn_close(c, true);
			break;
		}
		if (n < 0) {
			if (c->state == CONN_HANDSHAKE) {
				ctr_inc(lc, CTR_TLS_FAILURES);
				LOG(DEBUG, TLS, "%s: handshake failed", c->peer_str);
			}
			/* Flush the alert OpenSSL queued, then close. */
			conn_close(c, true);
			break;
		}
		if (c->state == CONN_CLOSING)
			continue;	/* read and discard until the peer's close */
		rest = plain;
		if (c->in_len == 0 && c->state == CONN_OPEN) {
			/* Nothing buffered (the usual case): handle the messages
			 * where they were decrypted; only an incomplete tail is
			 * copied. */
			size_t used = lc->e->proto->input_buf(c, plain, (size_t)n);

			if (c->state == CONN_DEAD)
				return;
			if (used == (size_t)n || c->state != CONN_OPEN)
				continue;
			rest += used;
			n -= (ssize_t)used;
		}
		if (!in_append(c, rest, n)) {
			ctr_inc(lc, CTR_DROP_TOO_BIG);
			LOG(DEBUG, SIP, "%s: message over %u bytes, closing", c->peer_str,
			    lc->e->conf.sip_lim.max_msg);
			conn_close(c, false);
			return;
		}
		lc->e->proto->input(c);
		if (c->state == CONN_DEAD)
			return;
	}
	if (c->in != NULL && c->in_len == 0) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	/* The handshake produces output without any conn_send(). */
	if (tlsterm_pending_out(c->tls, &(const void *){ NULL }) > 0)
		conn_kick(c);
}

int
conn_send(struct conn *c, const void *buf, size_t len)
{
	const void *p;

	if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
		return -1;
	if (tlsterm_write(c->tls, buf, len) != (ssize_t)len) {
		conn_close(c, false);
		return -1;
	}
	if (tlsterm_pending_out(c->tls, &p) > c->lc->e->conf.outq_max) {
		/* A reader that fell behind: never wait for it. */
		ctr_inc(c->lc, CTR_DROP_OUTQ);
		LOG(NOTICE, CONN, "%s (%s): output queue over %u bytes, disconnecting slow reader",
		    c->peer_str, c->aor[0] ? c->aor : "-", c->lc->e->conf.outq_max);
		conn_close(c, false);
		return -1;
	}
	conn_kick(c);
	return 0;
}

static void
unlink_conn(struct conn *c)
{
	struct lcore_ctx *lc = c->lc;

	if (c->prev)
		c->prev->next = c->next;
	else
		lc->pub.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	lc->nconns--;
}

void
conn_close(struct conn *c, bool flush)
{
	if (c->state == CONN_DEAD)
		return;
	if (flush && c->state != CONN_CLOSING) {
		c->lc->e->proto->conn_closed(c);
		c->state = CONN_CLOSING;
		tlsterm_shutdown(c->tls);
		conn_kick(c);
		return;
	}
	if (c->state != CONN_CLOSING)
		c->lc->e->proto->conn_closed(c);
	c->state = CONN_DEAD;
	conn_kick(c);		/* the reaper walks the dirty list too */
}

/* Flushes every dirty connection once; frees the dead ones. */
void
conn_reap(struct lcore_ctx *lc)
{
	struct conn *c, *next;

	for (c = lc->dirty, lc->dirty = NULL; c != NULL; c = next) {
		const void *p;

		next = c->dirty_next;
		c->dirty_next = NULL;
		c->dirty = false;
		if (c->state != CONN_DEAD) {
			if (io_flush(c) != 0) {
				c->state = CONN_DEAD;	/* the socket failed: nothing to flush to */
			} else if (c->state == CONN_CLOSING && !c->tx_busy &&
				   tlsterm_pending_out(c->tls, &p) == 0) {
				c->state = CONN_DEAD;
			}
		}
		tls_events(c);
		if (c->state != CONN_DEAD)
			continue;
		unlink_conn(c);
		io_close(c);
		c->lc->e->proto->conn_closed(c);
		tlsterm_free(c->tls);
		c->tls = NULL;
		free(c->in);
		c->in = NULL;
		ctr_inc(lc, CTR_CONN_CLOSED);
		c->reaped = true;
		if (c->holds == 0)
			objcache_put(&lc->conn_cache, c);
	}
}

void
conn_hold(struct conn *c)
{
	c->holds++;
}

void
conn_release(struct conn *c)
{
	if (--c->holds == 0 && c->reaped)
		objcache_put(&c->lc->conn_cache, c);
}

bool
conn_usable(const struct conn *c)
{
	return c->state == CONN_OPEN || c->state == CONN_HANDSHAKE;
}

void
conn_sweep(struct lcore_ctx *lc)
{
	const struct engine_conf *cf = &lc->e->conf;
	struct conn *c;

	for (c = lc->pub.conns; c != NULL; c = c->next) {
		if (c->state == CONN_HANDSHAKE &&
		    lc->pub.now_s - c->created_s >= cf->handshake_timeout_s) {
			ctr_inc(lc, CTR_DROP_HANDSHAKE_TIMEOUT);
			conn_close(c, false);
			continue;
		}
		if (c->state == CONN_OPEN && lc->pub.now_s - c->last_io_s >= cf->idle_timeout_s) {
			ctr_inc(lc, CTR_DROP_IDLE);
			conn_close(c, true);
			continue;
		}
		if (c->state == CONN_CLOSING &&
		    lc->pub.now_s - c->last_io_s >= cf->handshake_timeout_s) {
			conn_close(c, false);	/* a peer that never reads our goodbye */
			continue;
		}
		lc->e->proto->sweep(c, lc->pub.now_s);
		/* Quiet for a second: give the TLS buffers back, so an idle
		 * connection costs little while a busy one allocates nothing.
		 * The clock counts whole seconds and the sweep runs just after
		 * one begins, so a difference of 1 would catch every connection
		 * that was last heard in the previous second, however busy:
		 * 2 means at least one whole second without I/O. */
		if (c->state == CONN_OPEN && c->in == NULL && lc->pub.now_s - c->last_io_s >= 2) {
			tlsterm_trim(c->tls);
			tls_events(c);
		}
	}
}
