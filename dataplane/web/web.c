/* The Web service: connections, TLS, HTTP/1.1 framing, the storage
 * producer and the thread; see web.h. What a PUT or GET does is in
 * webfile.c.
 *
 * Why not evhttp: libevent 2.1 (Debian 12 ships 2.1.12) calls an evhttp
 * handler only once the whole request body is in memory; the chunked-body
 * callback works for responses a client reads, and the hook that would let
 * a server see a request before its body (evhttp_set_newreqcb) arrived in
 * 2.2. A 100 MiB upload limit times max_conns would then be the memory
 * bound. So the transport is libevent (event loop, listener, OpenSSL
 * bufferevents, timeouts, evbuffers) and the HTTP layer is ours: a strict
 * parser of the subset we serve (http1.c) and the state machine below.
 *
 * A connection serves one request at a time (pipelined ones wait in its
 * input buffer): WC_HEAD -> (WC_BODY) -> (WC_COMMIT) -> WC_SEND / WC_FLUSH
 * -> WC_HEAD again (keep-alive), or WC_LINGER and close.
 *
 * Memory: no read high-watermark on the TLS bufferevents. libevent 2.1's
 * OpenSSL bufferevent re-arms only the socket when reading resumes, so
 * plaintext that OpenSSL still holds (SSL_pending) after a watermark stop
 * would wait for bytes that never come. Instead every read callback in
 * WC_BODY drains its input to the file, and reading is disabled (which
 * stops it between records) whenever we are not consuming: each read event
 * brings about one TLS record, so a connection holds a few tens of KiB.
 * Downloads keep at most WEB_SEND_HIGH bytes queued ahead of TLS.
 *
 * Blocking calls on this thread: file writes and fsync, RocksDB reads and
 * synchronous writes of file records. They stall other transfers for a few
 * milliseconds at most (uploads start writeback every WEB_SYNC_EVERY bytes
 * so that the final fsync is short); the data plane's lcores never wait on
 * this thread. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/fs.h"
#include "dataplane/base/log.h"
#include "dataplane/web/web_int.h"
#include "dataplane/web/webfetch.h"
#include "dataplane/tls/webtls.h"
#include "storage/catalog.h"
#include "storage/commit.h"

#define WEB_POLL_US		500	/* storage completions, while some are due */

static void conn_close(struct wconn *c, bool graceful);
static void on_head(struct wconn *c);

/* ---- TLS ------------------------------------------------------------ */

static void
reload_ctx(struct web *w)
{
	char err[512];
	struct ssl_ctx_st *c = webtls_ctx_new(w->cert, w->key, w->ciphers[0] ? w->ciphers : NULL,
					      err, sizeof(err));

	if (c == NULL) {
		LOG(ERR, WEB, "%s (the running certificate is kept)", err);
		return;
	}
	/* Live connections hold their own reference (SSL_new). */
	SSL_CTX_free(w->ssl_ctx);
	w->ssl_ctx = c;
	LOG(NOTICE, WEB, "certificate reloaded");
}

/* ---- responses ------------------------------------------------------ */

static void
set_timer(struct wconn *c, uint32_t s)
{
	struct timeval tv = { .tv_sec = s };

	evtimer_add(c->timer, &tv);
}

/* <s> seconds without a byte in: the event callback gets a timeout. */
static void
set_read_timeout(struct wconn *c, uint32_t s)
{
	struct timeval rt = { .tv_sec = s }, wt = { .tv_sec = c->w->cfg.write_timeout_s };

	bufferevent_set_timeouts(c->bev, s ? &rt : NULL, &wt);
}

void
web_pause_reading(struct wconn *c)
{
	if (c->bev == NULL)
		return;
	bufferevent_disable(c->bev, EV_READ);
	set_read_timeout(c, 0);
}

/* Whether the connection closes after this response. */
static bool
closing(struct wconn *c)
{
	const struct web *w = c->w;

	c->close_after |= !c->body_read || c->req.conn_close ||
			  (c->req.minor == 0 && !c->req.conn_keepalive) || w->stopping ||
			  c->nreq >= w->cfg.keepalive_requests;
	return c->close_after;
}

static void
put_head(struct wconn *c, int status, const char *hdrs, uint64_t length)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	bool close = closing(c);
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: parley\r\n"
			    "Cache-Control: no-store\r\nContent-Length: %llu\r\n%s%s\r\n", status,
			    http1_reason(status), date, (unsigned long long)length, hdrs ? hdrs : "",
			    close ? "Connection: close\r\n" :
			    c->req.minor == 0 ? "Connection: keep-alive\r\n" : "");
	web_pause_reading(c);
}

void
web_respond(struct wconn *c, int status, const char *hdrs, const char *body, size_t blen)
{
	if (c->bev == NULL)
		return;
	put_head(c, status, hdrs, blen);
	if (blen > 0)
		evbuffer_add(bufferevent_get_output(c->bev), body, blen);
	c->st = WC_FLUSH;
	/* The write callback fires once the output is empty. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_WRITE);
}

void
web_respond_error(struct wconn *c, int status)
{
	struct web *w = c->w;
	char body[96];
	int n;

	if (status == 403)
		WEB_INC(w, denied);
	else if (status >= 500)
		WEB_INC(w, errors_5xx);
	else
		WEB_INC(w, errors_4xx);
	n = snprintf(body, sizeof(body), "%d %s\n", status, http1_reason(status));
	web_respond(c, status, status == 405 ? "Allow: GET, PUT\r\nContent-Type: text/plain\r\n" :
		    "Content-Type: text/plain\r\n", body, (size_t)n);
}

static void
send_more(struct wconn *c)
{
	int rc = webfile_fill(c);

	if (rc < 0)
		conn_close(c, false);
	if (rc != 1)
		return;
	c->st = WC_FLUSH;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

void
web_respond_stream(struct wconn *c, int status, const char *hdrs, uint64_t length)
{
	if (c->bev == NULL)
		return;
	put_head(c, status, hdrs, length);
	c->st = WC_SEND;
	bufferevent_setwatermark(c->bev, EV_WRITE, WEB_SEND_LOW, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	send_more(c);
}

void
web_begin_body(struct wconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	c->st = WC_BODY;
	/* Ask for the body only once the request is accepted (RFC 9110 10.1.1). */
	if (c->req.expect_continue && c->want > 0 && evbuffer_get_length(in) == 0)
		evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	set_read_timeout(c, c->w->cfg.read_timeout_s);
	bufferevent_enable(c->bev, EV_READ);
	webfile_body(c);
}

/* The response is written: next request, or close. */
static void
response_done(struct wconn *c)
{
	struct web *w = c->w;

	webfile_release(c);
	if (c->close_after) {
		if (c->body_read || w->stopping) {
			conn_close(c, true);
			return;
		}
		/* The client may still be sending a body we refused: read and
		 * drop it for a moment, so that our close does not turn into
		 * a reset that destroys the response before it is read. */
		c->st = WC_LINGER;
		set_read_timeout(c, 0);
		bufferevent_enable(c->bev, EV_READ);
		set_timer(c, WEB_LINGER_S);
		evbuffer_drain(bufferevent_get_input(c->bev),
			       evbuffer_get_length(bufferevent_get_input(c->bev)));
		return;
	}
	c->st = WC_HEAD;
	c->head_started = false;
	c->body_read = true;
	memset(&c->req, 0, sizeof(c->req));
	memset(&c->tok, 0, sizeof(c->tok));
	set_read_timeout(c, 0);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	set_timer(c, w->cfg.keepalive_timeout_s);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		on_head(c);	/* a pipelined request is already here */
}

/* ---- connections ---------------------------------------------------- */

static void
check_stopped(struct web *w)
{
	if (w->stopping && w->nconns == 0 && w->inflight == 0)
		event_base_loopbreak(w->base);
}

/* Closes now. <graceful>: the exchange is complete, say close_notify. The
 * struct outlives the close while a storage request points into it. */
static void
conn_close(struct wconn *c, bool graceful)
{
	struct web *w = c->w;

	if (c->bev == NULL)
		return;
	if (graceful) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

		if (ssl != NULL && SSL_is_init_finished(ssl))
			SSL_shutdown(ssl);
		ERR_clear_error();
	}
	bufferevent_free(c->bev);	/* closes the socket, frees the SSL */
	c->bev = NULL;
	event_free(c->timer);
	c->timer = NULL;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub_explicit(&w->ctr.conns_open, 1, memory_order_relaxed);
	if (c->in_commit || c->in_fetch) {
		c->dead = true;		/* freed when the completion comes back */
	} else {
		webfile_release(c);
		free(c);
	}
	check_stopped(w);
}

/* A request head: parse it once it is complete, then serve it. */
static void
on_head(struct wconn *c)
{
	struct web *w = c->w;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in), hlen;
	struct evbuffer_ptr p;
	unsigned char *head;
	int rc;

	if (len == 0)
		return;
	if (!c->head_started) {
		c->head_started = true;
		set_timer(c, w->cfg.header_timeout_s);
	}
	p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (p.pos < 0 && len <= w->cfg.max_header_bytes)
		return;
	evtimer_del(c->timer);
	c->nreq++;
	WEB_INC(w, requests);
	c->body_read = false;	/* the framing is lost until proven otherwise */
	if (p.pos < 0 || (size_t)p.pos + 4 > w->cfg.max_header_bytes) {
		c->close_after = true;
		web_respond_error(c, 431);
		return;
	}
	hlen = (size_t)p.pos + 4;
	head = evbuffer_pullup(in, (ev_ssize_t)hlen);
	rc = head ? http1_parse_head((const char *)head, hlen, &w->lim, &c->req) : 500;
	evbuffer_drain(in, hlen);
	if (rc != 0) {
		c->close_after = true;
		web_respond_error(c, rc);
		return;
	}
	c->body_read = !c->req.has_te && !(c->req.has_length && c->req.length > 0);
	webfile_request(c);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct wconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	switch (c->st) {
	case WC_HEAD:
		on_head(c);
		break;
	case WC_BODY:
		webfile_body(c);
		break;
	case WC_LINGER:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	default:
		break;	/* a pipelined request: it waits for this response */
	}
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct wconn *c = arg;

	if (c->st == WC_SEND)
		send_more(c);
	else if (c->st == WC_FLUSH && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		response_done(c);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct wconn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;		/* the TLS handshake is done */
	if (what & BEV_EVENT_TIMEOUT)
		LOG(INFO, WEB, "connection timed out (%s) in state %d",
		    (what & BEV_EVENT_READING) ? "reading" : "writing", (int)c->st);
	/* EOF, an error or a timeout: an upload in progress is dropped
	 * (webfile_release removes its temp file). */
	conn_close(c, false);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wconn *c = arg;

	if (c->st == WC_HEAD && c->head_started) {
		c->close_after = true;
		c->body_read = false;
		WEB_INC(c->w, errors_4xx);
		web_respond(c, 408, "Content-Type: text/plain\r\n", "408 Request Timeout\n", 20);
	} else if (c->st == WC_HEAD || c->st == WC_LINGER) {
		conn_close(c, c->st == WC_HEAD);
	}
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct web *w = arg;
	struct wconn *c;
	SSL *ssl;
	int one = 1;

	if (w->stopping || w->nconns >= w->cfg.max_conns) {
		WEB_INC(w, conns_refused);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));	/* freed by conn_close, or after its commit */
	ssl = c != NULL ? SSL_new(w->ssl_ctx) : NULL;
	if (ssl == NULL) {
		free(c);
		close(fd);
		WEB_INC(w, conns_refused);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->w = w;
	c->dirfd = c->fd = -1;
	c->body_read = true;
	c->timer = evtimer_new(w->base, timer_cb, c);
	/* Deferred callbacks: a callback may free the connection safely. */
	c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			close(fd);	/* the SSL went with the failed bufferevent */
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		WEB_INC(w, conns_refused);
		return;
	}
	/* A peer that closes without close_notify is an EOF, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	set_read_timeout(c, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	WEB_INC(w, conns_accepted);
	WEB_INC(w, conns_open);
	/* The handshake and the first byte within header_timeout_s, then the
	 * whole head within header_timeout_s (on_head). */
	set_timer(c, w->cfg.header_timeout_s);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct web *w = arg;
	int e = EVUTIL_SOCKET_ERROR();

	/* Out of descriptors: wait for some to close rather than spin. */
	LOG(WARNING, WEB, "accept: %s", evutil_socket_error_to_string(e));
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		struct timeval tv = { .tv_usec = 100000 };

		evconnlistener_disable(l);
		evtimer_add(w->drain_ev, &tv);	/* re-enables it (drain_cb) */
	}
}

/* ---- storage completions -------------------------------------------- */

int
web_commit(struct wconn *c, enum wal_event ev)
{
	struct web *w = c->w;
	struct commit_req *r = commit_req_get(w->prod);

	if (r == NULL)
		return -EBUSY;
	r->op = COMMIT_EVENT;
	r->ev = ev;
	if (catalog_id_pack(c->tok.room_id, r->room) != 0) {
		commit_req_put(w->prod, r);
		return -EINVAL;
	}
	r->room_uri = c->tok.room_uri;
	r->room_uri_len = strlen(c->tok.room_uri);
	r->user = c->tok.user;
	r->user_len = strlen(c->tok.user);
	r->content = c->tok.name;
	r->content_len = strlen(c->tok.name);
	r->cookie = c;
	if (commit_submit(w->prod, &r, 1) != 1) {
		commit_req_put(w->prod, r);
		return -EBUSY;
	}
	c->in_commit = true;
	c->st = WC_COMMIT;
	web_pause_reading(c);
	if (w->inflight++ == 0) {
		struct timeval tv = { .tv_usec = WEB_POLL_US };

		evtimer_add(w->poll_ev, &tv);
	}
	return 0;
}

/* The storage thread does not wake extra producers: poll while waiting. */
static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;
	struct commit_req *r[64];
	unsigned n;

	while ((n = commit_poll(w->prod, r, 64)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct wconn *c = r[i]->cookie;
			int status = r[i]->status;
			bool dead = c->dead;

			commit_req_put(w->prod, r[i]);
			w->inflight--;
			c->in_commit = false;
			/* A live <c> may be closed (and freed) in there. */
			webfile_commit_done(c, status);
			if (dead) {
				webfile_release(c);
				free(c);
			}
		}
	}
	if (w->inflight == 0)
		event_del(w->poll_ev);
	check_stopped(w);
}

/* ---- stop and reload ------------------------------------------------ */

static void
begin_stop(struct web *w)
{
	struct timeval tv = { .tv_sec = w->cfg.drain_timeout_s };
	struct wconn *c, *next;

	w->stopping = true;
	if (w->lis != NULL)
		evconnlistener_disable(w->lis);
	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if ((c->st == WC_HEAD && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) ||
		    c->st == WC_LINGER)
			conn_close(c, c->st == WC_HEAD);
	}
	event_del(w->drain_ev);
	evtimer_add(w->drain_ev, &tv);
	check_stopped(w);
}

/* Stopping: time is up, cut what is left. Otherwise: the listener pauses
 * after running out of descriptors, and resumes here. */
static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;
	struct wconn *c, *next;

	if (!w->stopping) {
		if (w->lis != NULL)
			evconnlistener_enable(w->lis);
		return;
	}
	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c, false);
	}
	check_stopped(w);
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;
	uint64_t v;

	if (read(w->wake_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		LOG(WARNING, WEB, "wake: %s", strerror(errno));
	if (atomic_exchange(&w->reload_req, false))
		reload_ctx(w);
	if (atomic_load(&w->stop_req) && !w->stopping)
		begin_stop(w);
}

/* Descriptors from web_adopt, served like accepted ones. */
static void
adopt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;
	int fds[64];
	ssize_t n;

	while ((n = read(w->adopt_fd[0], fds, sizeof(fds))) > 0)
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(int); i++)
			accept_cb(NULL, fds[i], NULL, 0, w);
}

int
web_adopt(struct web *w, int fd)
{
	ssize_t n;

	if (atomic_load_explicit(&w->stop_req, memory_order_relaxed))
		return -ESHUTDOWN;
	/* One int is far below PIPE_BUF: written whole or not at all. */
	n = write(w->adopt_fd[1], &fd, sizeof(fd));
	if (n == (ssize_t)sizeof(fd))
		return 0;
	return n == -1 ? -errno : -EIO;
}

static void
wake(struct web *w)
{
	uint64_t one = 1;

	if (write(w->wake_fd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		LOG(ERR, WEB, "cannot wake the web thread: %s", strerror(errno));
}

void
web_reload(struct web *w)
{
	if (w == NULL)
		return;
	atomic_store(&w->reload_req, true);
	wake(w);
}

static void *
web_thread(void *arg)
{
	struct web *w = arg;

	event_base_dispatch(w->base);
	/* libevent frees a bufferevent (and its SSL) from a deferred callback:
	 * let the ones closed by the last turn run before the thread ends. */
	event_base_loop(w->base, EVLOOP_NONBLOCK);
	event_base_loop(w->base, EVLOOP_NONBLOCK);
	return NULL;
}

int
web_start(struct web *w)
{
	int rc = pthread_create(&w->thr, NULL, web_thread, w);

	if (rc != 0)
		return -rc;
	pthread_setname_np(w->thr, "parley-web");
	w->started = true;
	LOG(NOTICE, WEB, "HTTPS file service on %s, url %s, files in %s", w->listen, w->url,
	    w->files_dir);
	return 0;
}

void
web_begin_stop(struct web *w)
{
	if (w == NULL || !w->started)
		return;
	atomic_store(&w->stop_req, true);
	wake(w);
}

void
web_stop(struct web *w)
{
	if (w == NULL || !w->started || w->joined)
		return;
	atomic_store(&w->stop_req, true);
	wake(w);
	pthread_join(w->thr, NULL);
	w->joined = true;
}

void
web_destroy(struct web *w)
{
	if (w == NULL)
		return;
	web_stop(w);
	webfetch_fini(w);		/* frees the requests it held that were closed */
	while (w->conns != NULL)	/* stopped: nothing is in flight */
		conn_close(w->conns, false);
	if (w->lis != NULL)
		evconnlistener_free(w->lis);
	if (w->wake_ev != NULL)
		event_free(w->wake_ev);
	if (w->poll_ev != NULL)
		event_free(w->poll_ev);
	if (w->drain_ev != NULL)
		event_free(w->drain_ev);
	if (w->adopt_ev != NULL)
		event_free(w->adopt_ev);
	if (w->adopt_fd[0] >= 0) {
		int fd;

		/* Handed over after the thread stopped: close them. */
		while (read(w->adopt_fd[0], &fd, sizeof(fd)) == (ssize_t)sizeof(fd))
			close(fd);
		close(w->adopt_fd[0]);
		close(w->adopt_fd[1]);
	}
	if (w->base != NULL)
		event_base_free(w->base);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->files_fd >= 0)
		close(w->files_fd);
	SSL_CTX_free(w->ssl_ctx);
	free(w);
}

void
web_stats_get(const struct web *w, struct web_stats *st)
{
#define R(f) atomic_load_explicit(&w->ctr.f, memory_order_relaxed)
	memset(st, 0, sizeof(*st));
	if (w == NULL)
		return;
	st->conns_accepted = R(conns_accepted);
	st->conns_refused = R(conns_refused);
	st->conns_open = R(conns_open);
	st->requests = R(requests);
	st->uploads = R(uploads);
	st->downloads = R(downloads);
	st->uploads_aborted = R(uploads_aborted);
	st->denied = R(denied);
	st->errors_4xx = R(errors_4xx);
	st->errors_5xx = R(errors_5xx);
	st->bytes_in = R(bytes_in);
	st->bytes_out = R(bytes_out);
#undef R
}

/* ---- boot ----------------------------------------------------------- */

int
web_url_pick(const char *url, const char *listen, char *out, size_t cap)
{
	int n = url != NULL && url[0] != '\0' ? snprintf(out, cap, "%s", url) :
		snprintf(out, cap, "https://%s/filestore/", listen);

	return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

/* The path of "https://host[:port]/path/": it must end with '/' and hold
 * only unreserved characters and single slashes. 0 or -EINVAL. */
static int
url_path(const char *url, char *out, size_t cap)
{
	const char *p;
	size_t n;

	if (strncmp(url, "https://", 8) != 0)
		return -EINVAL;
	p = strchr(url + 8, '/');
	if (p == NULL || p == url + 8)
		return -EINVAL;
	n = strlen(p);
	if (n >= cap || p[n - 1] != '/' || strstr(p, "//") || strstr(p, "/./") ||
	    strstr(p, "/../"))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("/-._~", ch)))
			return -EINVAL;
	}
	memcpy(out, p, n + 1);
	return 0;
}

static int
listen_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	char host[256];
	const char *port;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -EINVAL;
		hl = rb - s - 1;
		s++;
		port = rb + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon == NULL)
			return -EINVAL;
		hl = colon - s;
		port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static bool
copy(char *dst, size_t cap, const char *src)
{
	return (size_t)snprintf(dst, cap, "%s", src ? src : "") < cap;
}

struct web *
web_create(const struct web_config *cfg, struct ftoken_store *tokens, struct db *db,
	   struct commit_producer *prod, int *rc, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct web *w;
	int e;

	*rc = -EINVAL;
	w = calloc(1, sizeof(*w));	/* freed by web_destroy */
	if (w == NULL) {
		*rc = -ENOMEM;
		snprintf(err, errlen, "[web] out of memory");
		return NULL;
	}
	w->files_fd = w->wake_fd = w->adopt_fd[0] = w->adopt_fd[1] = -1;
	if (!copy(w->listen, sizeof(w->listen), cfg->listen) ||
	    !copy(w->url, sizeof(w->url), cfg->url) ||
	    !copy(w->files_dir, sizeof(w->files_dir), cfg->files_dir) ||
	    !copy(w->cert, sizeof(w->cert), cfg->cert_file) ||
	    !copy(w->key, sizeof(w->key), cfg->key_file) ||
	    !copy(w->ciphers, sizeof(w->ciphers), cfg->ciphers)) {
		snprintf(err, errlen, "[web] a path or address is too long");
		goto out;
	}
	w->cfg = *cfg;
	w->cfg.listen = w->listen;
	w->cfg.url = w->url;
	w->cfg.files_dir = w->files_dir;
	w->cfg.cert_file = w->cert;
	w->cfg.key_file = w->key;
	w->cfg.ciphers = w->ciphers;
	if (w->cfg.keepalive_requests == 0)
		w->cfg.keepalive_requests = 1;
	w->lim.max_headers = cfg->max_headers;
	w->tokens = tokens;
	w->db = db;
	w->prod = prod;
	if (url_path(w->url, w->prefix, sizeof(w->prefix)) != 0) {
		snprintf(err, errlen, "[web] url: '%s' is not https://host[:port]/path/ (the path "
			 "ends with '/')", w->url);
		goto out;
	}
	if (listen_addr(w->listen, &ss, &sslen) != 0) {
		snprintf(err, errlen, "[web] listen: '%s' is not host:port", w->listen);
		goto out;
	}
	e = fs_mkdir_p(w->files_dir, 0750);
	w->files_fd = e == 0 ? open(w->files_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (w->files_fd == -1) {
		*rc = e ? e : -errno;
		snprintf(err, errlen, "[web] files directory %s: %s", w->files_dir, strerror(-*rc));
		goto out;
	}
	webfile_sweep(w);
	w->ssl_ctx = webtls_ctx_new(w->cert, w->key, w->ciphers[0] ? w->ciphers : NULL, err,
				    errlen);
	if (w->ssl_ctx == NULL)
		goto out;
	w->base = event_base_new();
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->base == NULL || w->wake_fd == -1) {
		*rc = -ENOMEM;
		snprintf(err, errlen, "[web] cannot create the event loop");
		goto out;
	}
	w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
	w->poll_ev = event_new(w->base, -1, EV_PERSIST, poll_cb, w);
	w->drain_ev = evtimer_new(w->base, drain_cb, w);
	if (pipe2(w->adopt_fd, O_NONBLOCK | O_CLOEXEC) == -1)
		w->adopt_fd[0] = w->adopt_fd[1] = -1;
	else
		w->adopt_ev = event_new(w->base, w->adopt_fd[0], EV_READ | EV_PERSIST, adopt_cb, w);
	if (w->wake_ev == NULL || w->poll_ev == NULL || w->drain_ev == NULL ||
	    w->adopt_ev == NULL || event_add(w->wake_ev, NULL) != 0 ||
	    event_add(w->adopt_ev, NULL) != 0 || webfetch_init(w) != 0) {
		*rc = -ENOMEM;
		snprintf(err, errlen, "[web] cannot create the event loop");
		goto out;
	}
	if (w->cfg.no_listener) {
		*rc = 0;
		return w;
	}
	w->lis = evconnlistener_new_bind(w->base, accept_cb, w,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
					 LEV_OPT_CLOSE_ON_EXEC, 511, (struct sockaddr *)&ss,
					 (int)sslen);
	if (w->lis == NULL) {
		e = errno;
		*rc = e ? -e : -EIO;
		snprintf(err, errlen, "[web] listen %s: %s", w->listen, strerror(e ? e : EIO));
		goto out;
	}
	evconnlistener_set_error_cb(w->lis, accept_error_cb);
	*rc = 0;
	return w;

out:
	web_destroy(w);
	return NULL;
}
