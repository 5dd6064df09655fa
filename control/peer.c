/* Peer links: see peer.h.
 *
 * One thread polls the listener, a wake eventfd and every link; sockets and
 * TLS are non-blocking (OpenSSL on the socket). A link's state moves
 * connecting (outgoing TCP) -> handshake (TLS) -> hello (ours sent, theirs
 * awaited) -> up. Every close says why, once, in the log; links to nodes
 * still listed are made again a second later. <lock> guards the target list
 * and the status the other threads read; the thread alone touches links. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/peer.h"
#include "dataplane/base/log.h"

#define LINKS_MAX		64
#define TICK_MS			200
#define PING_MS			1000
#define HANDSHAKE_MS		5000
#define RETRY_MS		1000
#define OUT_MAX			(4u << 20)	/* bytes queued on a link before it is cut */

enum link_state { LINK_FREE, LINK_CONNECTING, LINK_HANDSHAKE, LINK_HELLO, LINK_UP };

static const char *const state_names[] = { "free", "connecting", "handshake", "hello", "up" };

struct link {
	enum link_state	state;
	bool		out;		/* we connected */
	int		fd;
	SSL		*ssl;
	uint32_t	node_id;	/* expected (out) or learnt from the hello (in); 0: not yet */
	char		addr[PEER_ADDR_MAX];
	uint64_t	since_ms, last_rx_ms, last_tx_ms;
	uint64_t	rx_frames, tx_frames;
	uint8_t		*in;		/* 4 + PEER_FRAME_MAX bytes */
	size_t		in_len;
	uint8_t		*outq;
	size_t		out_len, out_cap;
};

struct target {
	struct peer_node	node;
	uint64_t		retry_ms;	/* no new connection before */
};

struct peers {
	struct peer_config	conf;		/* strings point into the copies below */
	char			*listen, *prefix;
	SSL_CTX			*ctx;
	int			lfd;
	int			wake_fd;
	bool			stop;
	pthread_t		thread;
	bool			running;
	struct link		links[LINKS_MAX];

	pthread_mutex_t		lock;
	struct target		*targets;
	size_t			ntargets;
	json_t			*status;	/* the last published, under lock */
	uint64_t		refused, bad_frames;
	char			last_error[PEER_ADDR_MAX + 420];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* OpenSSL's queued reason, or <dflt>. */
static const char *
ssl_reason(char *buf, size_t cap, const char *dflt)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	if (e == 0)
		return dflt;
	if (r != NULL)
		snprintf(buf, cap, "%s", r);
	else
		ERR_error_string_n(e, buf, cap);
	return buf;
}

/* ---- links -------------------------------------------------------------- */

/* Sets the earliest time of the next connection to <node_id>. */
static void
retry_later(struct peers *p, uint32_t node_id, uint64_t when)
{
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->ntargets; i++)
		if (p->targets[i].node.node_id == node_id)
			p->targets[i].retry_ms = when;
	pthread_mutex_unlock(&p->lock);
}

/* Closes <l> and says why (once per close). <bad>: a malformed frame. */
static void
link_close(struct peers *p, struct link *l, bool bad, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
link_close(struct peers *p, struct link *l, bool bad, const char *fmt, ...)
{
	char why[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (l->state == LINK_UP)
		LOG(WARNING, PEER, "link to node %u (%s) closed: %s", l->node_id, l->addr, why);
	else
		LOG(WARNING, PEER, "peer %s%s: %s: closed", l->addr, l->out ? " (outgoing)" : "",
		    why);
	pthread_mutex_lock(&p->lock);
	if (bad)
		p->bad_frames++;
	if (l->state == LINK_HANDSHAKE && !l->out)
		p->refused++;
	snprintf(p->last_error, sizeof(p->last_error), "%s: %s", l->addr, why);
	pthread_mutex_unlock(&p->lock);
	if (l->out)
		retry_later(p, l->node_id, now_ms() + RETRY_MS);
	if (l->ssl != NULL)
		SSL_free(l->ssl);
	if (l->fd != -1)
		close(l->fd);
	free(l->in);
	free(l->outq);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

static struct link *
link_new(struct peers *p, int fd, bool out, const char *addr)
{
	for (int i = 0; i < LINKS_MAX; i++) {
		struct link *l = &p->links[i];

		if (l->state != LINK_FREE)
			continue;
		memset(l, 0, sizeof(*l));
		l->fd = fd;
		l->out = out;
		l->in = malloc(4 + PEER_FRAME_MAX);
		l->ssl = SSL_new(p->ctx);
		snprintf(l->addr, sizeof(l->addr), "%s", addr);
		l->since_ms = l->last_rx_ms = now_ms();
		l->state = out ? LINK_CONNECTING : LINK_HANDSHAKE;
		if (l->in == NULL || l->ssl == NULL || SSL_set_fd(l->ssl, fd) != 1) {
			link_close(p, l, false, "out of memory");
			return NULL;
		}
		if (out)
			SSL_set_connect_state(l->ssl);
		else
			SSL_set_accept_state(l->ssl);
		return l;
	}
	LOG(WARNING, PEER, "peer %s: more than %d links: closed", addr, LINKS_MAX);
	close(fd);
	return NULL;
}

/* Queues one frame of <v> (stolen). 0, or -1 when the link must close. */
static int
frame_send(struct link *l, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	size_t n = s ? strlen(s) : 0;

	json_decref(v);
	if (s == NULL || n > PEER_FRAME_MAX || l->out_len + 4 + n > OUT_MAX) {
		free(s);
		return -1;
	}
	if (l->out_len + 4 + n > l->out_cap) {
		size_t cap = l->out_cap ? l->out_cap : 4096;
		uint8_t *q;

		while (cap < l->out_len + 4 + n)
			cap *= 2;
		q = realloc(l->outq, cap);
		if (q == NULL) {
			free(s);
			return -1;
		}
		l->outq = q;
		l->out_cap = cap;
	}
	l->outq[l->out_len++] = (uint8_t)(n >> 24);
	l->outq[l->out_len++] = (uint8_t)(n >> 16);
	l->outq[l->out_len++] = (uint8_t)(n >> 8);
	l->outq[l->out_len++] = (uint8_t)n;
	memcpy(l->outq + l->out_len, s, n);
	l->out_len += n;
	l->tx_frames++;
	l->last_tx_ms = now_ms();
	free(s);
	return 0;
}

static json_t *
hello(struct peers *p)
{
	return json_pack("{s:s, s:i, s:s}", "type", "hello", "node_id", (int)p->conf.node_id,
			 "prefix", p->prefix);
}

/* Writes what is queued. 0, or -1 after closing <l>. */
static int
link_flush(struct peers *p, struct link *l)
{
	char buf[256];

	while (l->out_len > 0) {
		int w = SSL_write(l->ssl, l->outq, (int)(l->out_len > INT32_MAX ? INT32_MAX :
							 l->out_len));

		if (w <= 0) {
			int e = SSL_get_error(l->ssl, w);

			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
				return 0;
			link_close(p, l, false, "write: %s", ssl_reason(buf, sizeof(buf),
									  "connection lost"));
			return -1;
		}
		memmove(l->outq, l->outq + w, l->out_len - (size_t)w);
		l->out_len -= (size_t)w;
	}
	return 0;
}

/* One whole frame's JSON (<n> bytes at <s>). 0, or -1 after closing <l>. */
static int
frame_recv(struct peers *p, struct link *l, const char *s, size_t n)
{
	json_t *v = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	const char *type = json_string_value(json_object_get(v, "type"));

	l->rx_frames++;
	l->last_rx_ms = now_ms();
	if (!json_is_object(v) || type == NULL) {
		json_decref(v);
		link_close(p, l, true, "a frame that is not a JSON object with a type");
		return -1;
	}
	if (strcmp(type, "hello") == 0) {
		const char *prefix = json_string_value(json_object_get(v, "prefix"));
		json_int_t id = json_integer_value(json_object_get(v, "node_id"));

		if (l->state != LINK_HELLO) {
			json_decref(v);
			link_close(p, l, true, "a second hello");
			return -1;
		}
		if (prefix == NULL || strcmp(prefix, p->prefix) != 0) {
			link_close(p, l, true, "a node of another array (prefix %s, ours %s)",
				   prefix ? prefix : "none", p->prefix);
			json_decref(v);
			return -1;
		}
		if (id <= 0 || id > UINT32_MAX || (uint32_t)id == p->conf.node_id ||
		    (l->out && (uint32_t)id != l->node_id)) {
			link_close(p, l, true, "hello from node %lld, expected %s%u", (long long)id,
				   l->out ? "" : "not ", l->out ? l->node_id : p->conf.node_id);
			json_decref(v);
			return -1;
		}
		for (int i = 0; i < LINKS_MAX; i++)
			if (&p->links[i] != l && p->links[i].state == LINK_UP &&
			    p->links[i].node_id == (uint32_t)id) {
				json_decref(v);
				link_close(p, l, true, "node %lld is linked already", (long long)id);
				return -1;
			}
		l->node_id = (uint32_t)id;
		l->state = LINK_UP;
		l->since_ms = now_ms();
		LOG(NOTICE, PEER, "linked with node %u (%s, %s)", l->node_id, l->addr,
		    l->out ? "outgoing" : "incoming");
	} else if (l->state != LINK_UP) {
		json_decref(v);
		link_close(p, l, true, "a %s frame before the hello", type);
		return -1;
	} else if (strcmp(type, "ping") != 0) {
		json_decref(v);
		link_close(p, l, true, "an unknown frame type \"%.40s\"", type);
		return -1;
	}
	json_decref(v);
	return 0;
}

/* Reads and handles what arrived. 0, or -1 after closing <l>. */
static int
link_read(struct peers *p, struct link *l)
{
	char buf[256];

	for (;;) {
		int r = SSL_read(l->ssl, l->in + l->in_len, (int)(4 + PEER_FRAME_MAX - l->in_len));
		size_t off = 0;

		if (r <= 0) {
			int e = SSL_get_error(l->ssl, r);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			link_close(p, l, false, "%s", e == SSL_ERROR_ZERO_RETURN ? "closed by the peer" :
				   ssl_reason(buf, sizeof(buf), "connection lost"));
			return -1;
		}
		l->in_len += (size_t)r;
		while (l->in_len - off >= 4) {
			const uint8_t *h = l->in + off;
			uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
				     (uint32_t)h[2] << 8 | h[3];

			if (n == 0 || n > PEER_FRAME_MAX) {
				link_close(p, l, true, "a frame of %u bytes (1..%u)", n, PEER_FRAME_MAX);
				return -1;
			}
			if (l->in_len - off - 4 < n)
				break;
			if (frame_recv(p, l, (const char *)h + 4, n) != 0)
				return -1;
			off += 4 + n;
		}
		memmove(l->in, l->in + off, l->in_len - off);
		l->in_len -= off;
	}
}

/* The TLS handshake; on completion the hello goes out. 0 or -1 (closed). */
static int
link_handshake(struct peers *p, struct link *l)
{
	char buf[256];
	int r = SSL_do_handshake(l->ssl);

	if (r != 1) {
		int e = SSL_get_error(l->ssl, r);
		long v = SSL_get_verify_result(l->ssl);

		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		if (v != X509_V_OK)
			link_close(p, l, false, "TLS handshake: certificate refused (%s)",
				   X509_verify_cert_error_string(v));
		else
			link_close(p, l, false, "TLS handshake: %s",
				   ssl_reason(buf, sizeof(buf), "the peer went away"));
		return -1;
	}
	/* Both sides verified a certificate of the cluster CA (the context
	 * requires one); what remains is the hello. */
	l->state = LINK_HELLO;
	if (frame_send(l, hello(p)) != 0) {
		link_close(p, l, false, "out of memory");
		return -1;
	}
	return link_flush(p, l);
}

/* A poll event on <l>. */
static void
link_event(struct peers *p, struct link *l, short revents)
{
	if (l->state == LINK_CONNECTING) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
			soerr = errno;
		if (soerr != 0) {
			link_close(p, l, false, "connect: %s", strerror(soerr));
			return;
		}
		l->state = LINK_HANDSHAKE;
	}
	if (l->state == LINK_HANDSHAKE) {
		if (link_handshake(p, l) != 0 || l->state == LINK_HANDSHAKE)
			return;
	}
	/* Always: a handshake that just ended may have left the peer's
	 * hello in OpenSSL's buffer, where poll cannot see it. */
	if (link_read(p, l) != 0)
		return;
	link_flush(p, l);
}

/* ---- the thread ---------------------------------------------------------- */

static void
accept_one(struct peers *p)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?", addr[PEER_ADDR_MAX];
	int fd = accept4(p->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			LOG(WARNING, PEER, "accept: %s", strerror(errno));
		return;
	}
	getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(addr, sizeof(addr), "%s:%s", host, port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	link_new(p, fd, false, addr);
}

/* host:port -> a non-blocking socket connecting to it, or -1. */
static int
dial(const char *hostport, char *why, size_t cap)
{
	char host[PEER_ADDR_MAX];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int fd = -1, rc;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host)) {
		snprintf(why, cap, "not host:port");
		return -1;
	}
	memcpy(host, hostport, colon - hostport);
	host[colon - hostport] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0) {
		snprintf(why, cap, "%s", gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd != -1 && connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		snprintf(why, cap, "%s", strerror(errno));
		close(fd);
		fd = -1;
	}
	if (fd != -1)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	freeaddrinfo(ai);
	return fd;
}

/* Links to make (lower id connects), links to drop, pings and timeouts.
 * Works on a copy of the target list: peer_set_nodes() may replace it. */
static void
tick(struct peers *p)
{
	struct target snap[LINKS_MAX];
	size_t ns;
	uint64_t now = now_ms();

	pthread_mutex_lock(&p->lock);
	ns = p->ntargets < LINKS_MAX ? p->ntargets : LINKS_MAX;
	memcpy(snap, p->targets, ns * sizeof(*snap));
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < LINKS_MAX; i++) {
		struct link *l = &p->links[i];
		bool listed = false;

		if (l->state == LINK_FREE || !l->out)
			continue;
		for (size_t k = 0; k < ns; k++)
			listed = listed || snap[k].node.node_id == l->node_id;
		if (!listed)
			link_close(p, l, false, "node %u left the array", l->node_id);
	}
	for (size_t k = 0; k < ns; k++) {
		const struct target *t = &snap[k];
		bool have = false;
		struct link *l;
		char why[256];
		int fd;

		if (t->node.node_id <= p->conf.node_id || now < t->retry_ms)
			continue;
		for (int i = 0; i < LINKS_MAX; i++)
			have = have || (p->links[i].state != LINK_FREE &&
					p->links[i].node_id == t->node.node_id);
		if (have)
			continue;
		retry_later(p, t->node.node_id, now + RETRY_MS);
		fd = dial(t->node.addr, why, sizeof(why));
		if (fd == -1) {
			LOG(WARNING, PEER, "node %u at %s: %s", t->node.node_id, t->node.addr, why);
			continue;
		}
		l = link_new(p, fd, true, t->node.addr);
		if (l != NULL)
			l->node_id = t->node.node_id;
	}
	now = now_ms();		/* after the links just made */
	for (int i = 0; i < LINKS_MAX; i++) {
		struct link *l = &p->links[i];

		if (l->state == LINK_FREE)
			continue;
		if (l->state != LINK_UP && now - l->since_ms > HANDSHAKE_MS)
			link_close(p, l, false, "no hello within %d ms", HANDSHAKE_MS);
		else if (now - l->last_rx_ms > PEER_IDLE_MS)
			link_close(p, l, false, "silent for %d ms", PEER_IDLE_MS);
		else if (l->state == LINK_UP && now - l->last_tx_ms >= PING_MS &&
			 (frame_send(l, json_pack("{s:s}", "type", "ping")) != 0 ||
			  link_flush(p, l) != 0) && l->state != LINK_FREE)
			link_close(p, l, false, "its queue is over %u bytes", OUT_MAX);
	}
}

/* The status other threads read, rebuilt after every turn. */
static void
publish(struct peers *p)
{
	json_t *links = json_array();

	for (int i = 0; i < LINKS_MAX; i++) {
		const struct link *l = &p->links[i];

		if (l->state == LINK_FREE)
			continue;
		json_array_append_new(links, json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I}",
			"node_id", (int)l->node_id, "addr", l->addr,
			"direction", l->out ? "out" : "in", "state", state_names[l->state],
			"since_ms", (json_int_t)l->since_ms, "rx_frames", (json_int_t)l->rx_frames,
			"tx_frames", (json_int_t)l->tx_frames));
	}
	pthread_mutex_lock(&p->lock);
	json_decref(p->status);
	p->status = links;
	pthread_mutex_unlock(&p->lock);
}

static void *
peer_thread(void *arg)
{
	struct peers *p = arg;
	struct pollfd pf[LINKS_MAX + 2];
	int idx[LINKS_MAX];
	uint64_t last_tick = 0;

	while (!p->stop) {
		int n = 0;

		pf[n++] = (struct pollfd){ .fd = p->wake_fd, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
		for (int i = 0; i < LINKS_MAX; i++) {
			struct link *l = &p->links[i];

			if (l->state == LINK_FREE)
				continue;
			idx[n - 2] = i;
			pf[n++] = (struct pollfd){ .fd = l->fd, .events = POLLIN |
				(l->state == LINK_CONNECTING || l->out_len > 0 ||
				 (l->state == LINK_HANDSHAKE && SSL_want_write(l->ssl)) ? POLLOUT : 0) };
		}
		if (poll(pf, n, TICK_MS) == -1 && errno != EINTR) {
			LOG(ERR, PEER, "poll: %s", strerror(errno));
			break;
		}
		if (pf[0].revents) {
			uint64_t v;

			if (read(p->wake_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
				LOG(DEBUG, PEER, "wake: %s", strerror(errno));
		}
		if (pf[1].revents & POLLIN)
			accept_one(p);
		for (int j = 2; j < n; j++)
			if (pf[j].revents && p->links[idx[j - 2]].state != LINK_FREE)
				link_event(p, &p->links[idx[j - 2]], pf[j].revents);
		if (now_ms() - last_tick >= TICK_MS) {
			tick(p);
			last_tick = now_ms();
		}
		publish(p);
	}
	for (int i = 0; i < LINKS_MAX; i++)
		if (p->links[i].state != LINK_FREE) {
			if (p->links[i].state == LINK_UP)
				SSL_shutdown(p->links[i].ssl);
			link_close(p, &p->links[i], false, "this node stops");
		}
	return NULL;
}

/* ---- start, stop, status ------------------------------------------------- */

static SSL_CTX *
make_ctx(const struct peer_config *c, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	char buf[256];

	if (ctx == NULL) {
		snprintf(err, errlen, "[array] peer TLS: out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
		snprintf(err, errlen, "[array] cert %s: %s", c->cert,
			 ssl_reason(buf, sizeof(buf), "does not load"));
		goto out_free;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "[array] key %s: %s", c->key,
			 ssl_reason(buf, sizeof(buf), "does not load or does not match the cert"));
		goto out_free;
	}
	if (SSL_CTX_load_verify_locations(ctx, c->ca, NULL) != 1) {
		snprintf(err, errlen, "[array] ca %s: %s", c->ca,
			 ssl_reason(buf, sizeof(buf), "does not load"));
		goto out_free;
	}
	/* Mutual: each side presents a certificate of the cluster CA, and a
	 * peer with none is refused. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;

out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

static int
listen_on(const char *hostport, char *err, size_t errlen)
{
	char host[PEER_ADDR_MAX];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	int fd, rc;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host)) {
		snprintf(err, errlen, "[array] peer_listen %s: not host:port", hostport);
		return -1;
	}
	memcpy(host, hostport, colon - hostport);
	host[colon - hostport] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "[array] peer_listen %s: %s", hostport, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)) == -1 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, 64) == -1) {
		snprintf(err, errlen, "[array] peer_listen %s: %s", hostport, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

struct peers *
peer_start(const struct peer_config *cfg, char *err, size_t errlen)
{
	struct peers *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL) {
		snprintf(err, errlen, "[array] peers: out of memory");
		return NULL;
	}
	p->lfd = -1;
	p->wake_fd = -1;
	for (int i = 0; i < LINKS_MAX; i++)
		p->links[i].fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	p->conf = *cfg;
	p->listen = strdup(cfg->listen);
	p->prefix = strdup(cfg->prefix);
	if (p->listen == NULL || p->prefix == NULL) {
		snprintf(err, errlen, "[array] peers: out of memory");
		goto out_stop;
	}
	p->conf.listen = p->listen;
	p->conf.prefix = p->prefix;
	p->ctx = make_ctx(cfg, err, errlen);
	if (p->ctx == NULL)
		goto out_stop;
	p->lfd = listen_on(cfg->listen, err, errlen);
	if (p->lfd == -1)
		goto out_stop;
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->wake_fd == -1) {
		snprintf(err, errlen, "[array] peers: eventfd: %s", strerror(errno));
		goto out_stop;
	}
	rc = pthread_create(&p->thread, NULL, peer_thread, p);
	if (rc != 0) {
		snprintf(err, errlen, "[array] peers: thread: %s", strerror(rc));
		goto out_stop;
	}
	pthread_setname_np(p->thread, "parley-peer");
	p->running = true;
	LOG(NOTICE, PEER, "peer links on %s (mutual TLS, CA %s)", cfg->listen, cfg->ca);
	return p;

out_stop:
	peer_stop(p);
	return NULL;
}

void
peer_stop(struct peers *p)
{
	static const uint64_t one = 1;

	if (p == NULL)
		return;
	if (p->running) {
		p->stop = true;
		if (write(p->wake_fd, &one, sizeof(one)) == -1)
			LOG(ERR, PEER, "stop: %s", strerror(errno));
		pthread_join(p->thread, NULL);
	}
	if (p->lfd != -1)
		close(p->lfd);
	if (p->wake_fd != -1)
		close(p->wake_fd);
	SSL_CTX_free(p->ctx);
	json_decref(p->status);
	free(p->targets);
	free(p->listen);
	free(p->prefix);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void
peer_set_nodes(struct peers *p, const struct peer_node *v, size_t n)
{
	struct target *t = calloc(n ? n : 1, sizeof(*t));
	size_t k = 0;

	if (p == NULL || t == NULL) {
		free(t);
		return;
	}
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < n; i++) {
		if (v[i].node_id == p->conf.node_id || v[i].addr[0] == '\0')
			continue;
		t[k].node = v[i];
		/* A node still listed keeps its retry time. */
		for (size_t j = 0; j < p->ntargets; j++)
			if (p->targets[j].node.node_id == v[i].node_id)
				t[k].retry_ms = p->targets[j].retry_ms;
		k++;
	}
	free(p->targets);
	p->targets = t;
	p->ntargets = k;
	pthread_mutex_unlock(&p->lock);
}

json_t *
peer_status(struct peers *p)
{
	json_t *o;

	pthread_mutex_lock(&p->lock);
	o = json_pack("{s:s, s:o, s:I, s:I, s:s}", "listen", p->listen,
		      "links", p->status ? json_incref(p->status) : json_array(),
		      "refused", (json_int_t)p->refused, "bad_frames", (json_int_t)p->bad_frames,
		      "last_error", p->last_error);
	pthread_mutex_unlock(&p->lock);
	return o;
}
