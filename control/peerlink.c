/* The peer link layer: the API, the link thread's loop, the member table and
 * the send list (see peerlink.h for the contract). One connection's life is in
 * peerlink_conn.c.
 *
 * Threads: peerlink_send(), peerlink_set_members() and peerlink_links() run on any
 * thread and touch only the atomics, the send ring and the mutex-guarded
 * blocks of struct peerlink; everything else belongs to the link thread.
 *
 * The send ring: one allocation made at create, send_max bytes, that many
 * producers write and the link thread reads, so that sending allocates
 * nothing. Positions count bytes from the start and only grow (64 bits do
 * not wrap); a record sits at position % ring_size, starts on a 64-byte
 * cell and never wraps: one that would not fit before the end reserves the
 * rest of the ring as padding too. A producer reserves its bytes with one
 * compare-and-swap on ring_head, refused when they would pass ring_tail +
 * ring_size (-ENOBUFS), encodes the frame in place and commits it by
 * storing its position + 1 in ring_done[] for its first cell (a side array,
 * so no byte of an older frame can pass for a commit). The link thread
 * takes records from ring_tail in position order while they are committed,
 * and moves ring_tail past each once copied into the links' outputs: frames
 * from one thread keep their order. A record still being written stops the
 * take until its producer commits.
 *
 * Wake-ups: the link thread announces `sleeping` before blocking in
 * epoll_wait and looks at the ring once more; a producer reads `sleeping`
 * after committing (a fence on each side: one of the two sees the other)
 * and writes the eventfd only then, once per sleep (`kicked`). A busy link
 * thread costs a producer no syscall. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/err.h>

#include "control/peerlink_int.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/tls/tlserr.h"

#define TURN_MS		50		/* longest epoll wait: timers' resolution */
#define EVENTS_MAX	64
#define PENDING_MAX	(4 * PEERLINK_NODES_MAX)	/* unauthenticated connections at once */

const char *
peerlink_state_name(int state)
{
	switch (state) {
	case PEERLINK_DOWN:
		return "down";
	case PEERLINK_CONNECTING:
		return "connecting";
	case PEERLINK_UP:
		return "up";
	}
	return "?";
}

/* "A.B.C.D:PORT" or "[v6]:PORT", numeric only: the link thread must not
 * block on name resolution. */
static int
parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[PEERLINK_ADDR_MAX];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	size_t hl;
	char *end;
	long port;

	if (colon == NULL || colon == s)
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			return -EINVAL;
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*v6);
		return 0;
	}
	return -EINVAL;
}

/* Mutual TLS with the cluster CA as the only trust anchor: TLS 1.3 only
 * (both ends are Parley), no compression, renegotiation, tickets or session
 * cache; both roles, since a node dials some peers and accepts others. */
static SSL_CTX *
ctx_new(const struct peerlink_config *c, char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *names;
	SSL_CTX *x;

	ERR_clear_error();
	x = SSL_CTX_new(TLS_method());
	if (x == NULL) {
		tlserr_set(err, errlen, "[array] cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION);
	SSL_CTX_set_options(x, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(x, 0);
	if (SSL_CTX_load_verify_locations(x, c->ca, NULL) != 1) {
		tlserr_set(err, errlen, "[array] cannot load the cluster CA from %s", c->ca);
		goto out_free;
	}
	names = SSL_load_client_CA_file(c->ca);
	if (names != NULL)
		SSL_CTX_set_client_CA_list(x, names);
	SSL_CTX_set_verify(x, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (SSL_CTX_use_certificate_chain_file(x, c->cert) != 1) {
		tlserr_set(err, errlen, "[array] cannot load the node certificate from %s",
			   c->cert);
		goto out_free;
	}
	if (SSL_CTX_use_PrivateKey_file(x, c->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(x) != 1) {
		tlserr_set(err, errlen, "[array] cannot load a key matching %s from %s", c->cert,
			   c->key);
		goto out_free;
	}
	return x;

out_free:
	SSL_CTX_free(x);
	return NULL;
}

struct peerlink_node *
peerlink_node_find(struct peerlink *p, uint32_t id)
{
	unsigned i;

	for (i = 0; i < PEERLINK_NODES_MAX; i++)
		if (p->nodes[i].used && p->nodes[i].id == id)
			return &p->nodes[i];
	return NULL;
}

static void
apply_members(struct peerlink *p)
{
	struct peerlink_member m[PEERLINK_NODES_MAX];
	struct peerlink_node *n;
	unsigned cnt, i, j;

	pthread_mutex_lock(&p->lock);
	if (!p->pend_set) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	cnt = p->npend;
	memcpy(m, p->pend, cnt * sizeof(m[0]));
	p->pend_set = false;
	pthread_mutex_unlock(&p->lock);

	for (i = 0; i < PEERLINK_NODES_MAX; i++) {
		n = &p->nodes[i];
		if (!n->used)
			continue;
		for (j = 0; j < cnt && m[j].id != n->id; j++)
			;
		if (j < cnt && strcmp(m[j].addr, n->addr) == 0)
			continue;
		if (n->conn != NULL)
			peerlink_conn_kill(n->conn, j < cnt ? "address changed" :
					   "no longer a member");
		if (j == cnt) {
			memset(n, 0, sizeof(*n));
			continue;
		}
		memcpy(n->addr, m[j].addr, sizeof(n->addr));
		memcpy(n->st.addr, m[j].addr, sizeof(n->st.addr));
		parse_addr(n->addr, &n->sa, &n->salen);
		n->next_dial = p->now;
		n->backoff = p->backoff_min;
	}
	for (j = 0; j < cnt; j++) {
		if (m[j].id == p->id || peerlink_node_find(p, m[j].id) != NULL)
			continue;
		for (i = 0; i < PEERLINK_NODES_MAX && p->nodes[i].used; i++)
			;
		if (i == PEERLINK_NODES_MAX)
			break;	/* cannot happen: peerlink_set_members checks the count */
		n = &p->nodes[i];
		memset(n, 0, sizeof(*n));
		n->used = true;
		n->id = m[j].id;
		memcpy(n->addr, m[j].addr, sizeof(n->addr));
		parse_addr(n->addr, &n->sa, &n->salen);
		n->next_dial = p->now;
		n->backoff = p->backoff_min;
		n->st.id = n->id;
		memcpy(n->st.addr, n->addr, sizeof(n->st.addr));
	}
}

static void
dial(struct peerlink *p, struct peerlink_node *n)
{
	int fd, one = 1;

	fd = socket(n->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto out_retry;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&n->sa, n->salen) == -1 && errno != EINPROGRESS) {
		close(fd);
		goto out_retry;
	}
	peerlink_conn_new(p, fd, true, n, n->addr);
	return;

out_retry:
	LOG(WARNING, PEERLINK, "cannot dial node %u at %s: %s", n->id, n->addr, strerror(errno));
	n->next_dial = p->now + n->backoff;
	n->backoff = n->backoff * 2 > p->backoff_max ? p->backoff_max : n->backoff * 2;
}

static void
accept_all(struct peerlink *p)
{
	char who[PEERLINK_ADDR_MAX], host[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;
	struct peerlink_conn *c;
	unsigned pending = 0;
	socklen_t len;
	int fd, one = 1;

	for (c = p->conns; c != NULL; c = c->next)
		if (!c->dead && !c->dialer && c->phase != PEERLINK_CONN_UP)
			pending++;
	for (;;) {
		len = sizeof(ss);
		fd = accept4(p->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				LOG(WARNING, PEERLINK, "accept: %s", strerror(errno));
			return;
		}
		if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
				  sizeof(host));
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
				  sizeof(host));
		snprintf(who, sizeof(who), "%s:%u", host,
			 ntohs(((struct sockaddr_in *)&ss)->sin_port));
		if (pending >= PENDING_MAX) {
			p->g.refused_tls++;
			LOG(WARNING, PEERLINK, "refused %s: %u connections already authenticating",
			    who, pending);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (peerlink_conn_new(p, fd, false, NULL, who) != NULL)
			pending++;
	}
}

/* Appends one frame to node <id>'s output, or drops it (link not up), or
 * cuts the link (output past queue_max). */
static void
to_node(struct peerlink *p, uint32_t id, const uint8_t *frame, uint32_t len)
{
	struct peerlink_node *n = peerlink_node_find(p, id);
	struct peerlink_conn *c = n != NULL ? n->conn : NULL;

	if (n == NULL)
		return;
	if (c == NULL || c->dead || c->phase != PEERLINK_CONN_UP) {
		n->st.drops++;
		return;
	}
	if (peerlink_conn_queue(c, frame, len)) {
		n->st.frames_out++;
		return;
	}
	n->st.cuts++;
	n->st.drops++;
	peerlink_conn_kill(c, "fell behind: %zu bytes unwritten (queue_max %zu); cut, to be "
		       "resynchronised", c->out_len - c->out_head, p->queue_max);
	if (p->cb.resync != NULL)
		p->cb.resync(p->cb.arg, n->id);
}

/* Bytes a record for <nnodes> nodes and a frame of <len> takes in the ring. */
static uint64_t
rec_size(unsigned nnodes, size_t len)
{
	uint64_t n = sizeof(struct peerlink_rec) + nnodes * sizeof(uint32_t) + len;

	return (n + PEERLINK_CELL - 1) / PEERLINK_CELL * PEERLINK_CELL;
}

/* Whether the record at position <pos> of the ring is committed. */
static bool
committed(struct peerlink *p, uint64_t pos)
{
	uint64_t cell = pos % p->ring_size / PEERLINK_CELL;

	return atomic_load_explicit(&p->ring_done[cell], memory_order_acquire) == pos + 1;
}

/* Moves what peerlink_send_many() committed into the links' outputs, in
 * order, up to what was reserved when it started (the take ends). */
static void
take_sends(struct peerlink *p)
{
	uint64_t pos = atomic_load_explicit(&p->ring_tail, memory_order_relaxed);
	uint64_t end = atomic_load_explicit(&p->ring_head, memory_order_relaxed);
	const struct peerlink_rec *r;
	unsigned i;

	while (pos < end && committed(p, pos)) {
		r = (const struct peerlink_rec *)(p->ring + pos % p->ring_size);
		for (i = 0; i < r->nnodes; i++)
			to_node(p, r->nodes[i], (const uint8_t *)&r->nodes[r->nnodes], r->len);
		pos += r->size;
		/* our reads of the record happen before its reuse */
		atomic_store_explicit(&p->ring_tail, pos, memory_order_release);
	}
}

static void
publish(struct peerlink *p)
{
	unsigned i, k = 0;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < PEERLINK_NODES_MAX; i++)
		if (p->nodes[i].used)
			p->pub[k++] = p->nodes[i].st;
	p->npub = k;
	p->pubg = p->g;
	pthread_mutex_unlock(&p->lock);
}

static void
sweep(struct peerlink *p)
{
	struct peerlink_conn **pp = &p->conns, *c;

	while ((c = *pp) != NULL) {
		if (c->dead) {
			*pp = c->next;
			peerlink_conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void *
run(void *arg)
{
	struct peerlink *p = arg;
	struct epoll_event ev[EVENTS_MAX];
	struct peerlink_conn *c;
	int timeout = TURN_MS, n, i;
	uint64_t junk;
	sigset_t set;
	unsigned k;
	bool again;

	/* SSL writes to a socket the peer closed: EPIPE, not a signal */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!atomic_load(&p->stop)) {
		if (timeout > 0) {
			/* pairs with the fence in wake(): either a producer sees
			 * this, or we see its commit */
			atomic_store_explicit(&p->sleeping, true, memory_order_relaxed);
			atomic_thread_fence(memory_order_seq_cst);
			if (committed(p, atomic_load_explicit(&p->ring_tail, memory_order_relaxed)))
				timeout = 0;
		}
		n = epoll_wait(p->epfd, ev, EVENTS_MAX, timeout);
		atomic_store_explicit(&p->sleeping, false, memory_order_relaxed);
		p->now = clock_mono_ms();
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &p->lfd) {
				accept_all(p);
			} else if (ev[i].data.ptr == &p->evfd) {
				if (read(p->evfd, &junk, sizeof(junk)) == -1 && errno != EAGAIN)
					LOG(ERR, PEERLINK, "eventfd: %s", strerror(errno));
				atomic_store(&p->kicked, false);
			} else {
				peerlink_conn_event(ev[i].data.ptr, ev[i].events);
			}
		}
		apply_members(p);
		take_sends(p);
		for (k = 0; k < PEERLINK_NODES_MAX; k++)
			if (p->nodes[k].used && p->nodes[k].id > p->id &&
			    p->nodes[k].conn == NULL && p->now >= p->nodes[k].next_dial)
				dial(p, &p->nodes[k]);
		again = false;
		for (c = p->conns; c != NULL; c = c->next) {
			if (c->again && !c->dead)
				peerlink_conn_input(c);
			peerlink_conn_timers(c);
			peerlink_conn_flush(c);
			again |= c->again && !c->dead;
		}
		sweep(p);
		publish(p);
		timeout = again ? 0 : TURN_MS;
	}
	/* here, where SIGPIPE is blocked: closing sends close_notify */
	p->cb.state = NULL;	/* the owner is going away too */
	for (c = p->conns; c != NULL; c = c->next)
		peerlink_conn_kill(c, "shutting down");
	sweep(p);
	return NULL;
}

static void
kick(struct peerlink *p)
{
	uint64_t one = 1;

	if (!atomic_exchange(&p->kicked, true) && write(p->evfd, &one, sizeof(one)) == -1)
		atomic_store(&p->kicked, false);
}

/* After a commit: kicks the link thread if it sleeps or is about to. */
static void
wake(struct peerlink *p)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&p->sleeping, memory_order_relaxed))
		kick(p);
}

struct peerlink *
peerlink_create(const struct peerlink_config *c, const struct peerlink_callbacks *cb, char *err,
		size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct sockaddr_storage ss;
	struct peerlink *p;
	socklen_t len;
	int one = 1;

	if (c->node_id == 0 || c->cluster == NULL || c->cluster[0] == '\0' ||
	    strlen(c->cluster) > PEERFRAME_CLUSTER_MAX || c->ca == NULL || c->cert == NULL ||
	    c->key == NULL || c->listen == NULL ||
	    (c->name_prefix != NULL && strlen(c->name_prefix) > 32)) {
		snprintf(err, errlen, "[array] peer links need a node id, a cluster name of 1 to "
			 "%d characters, a listen address, and ca, cert and key",
			 PEERFRAME_CLUSTER_MAX);
		return NULL;
	}
	if (parse_addr(c->listen, &ss, &len) != 0) {
		snprintf(err, errlen, "[array] peer_listen \"%s\" is not a numeric ADDR:PORT",
			 c->listen);
		return NULL;
	}
	if (c->frame_max != 0 && (c->frame_max < 4096 || c->frame_max > PEERFRAME_MAX_LIMIT)) {
		snprintf(err, errlen, "[array] peer frame_max must be 4096 to %u",
			 PEERFRAME_MAX_LIMIT);
		return NULL;
	}
	p = aligned_alloc(_Alignof(struct peerlink), sizeof(*p));	/* freed by peerlink_destroy */
	if (p == NULL) {
		snprintf(err, errlen, "[array] no memory for the peer links");
		return NULL;
	}
	memset(p, 0, sizeof(*p));
	p->id = c->node_id;
	snprintf(p->cluster, sizeof(p->cluster), "%s", c->cluster);
	if (c->name_prefix != NULL)
		snprintf(p->name_prefix, sizeof(p->name_prefix), "%s", c->name_prefix);
	p->frame_max = c->frame_max ? c->frame_max : PEERFRAME_MAX_DEFAULT;
	p->queue_max = c->queue_max ? c->queue_max : (8u << 20);
	if (p->queue_max < p->frame_max)
		p->queue_max = p->frame_max;
	p->send_max = c->send_max ? c->send_max : (64u << 20);
	/* an empty ring takes the largest record wherever its head is */
	p->ring_size = (p->send_max + PEERLINK_CELL - 1) / PEERLINK_CELL * PEERLINK_CELL;
	if (p->ring_size < 2 * rec_size(PEERLINK_NODES_MAX, p->frame_max))
		p->ring_size = 2 * rec_size(PEERLINK_NODES_MAX, p->frame_max);
	p->ping_ms = c->ping_ms ? c->ping_ms : 1000;
	p->dead_ms = c->dead_ms ? c->dead_ms : 5000;
	p->handshake_ms = c->handshake_ms ? c->handshake_ms : 5000;
	p->backoff_min = c->backoff_min_ms ? c->backoff_min_ms : 100;
	p->backoff_max = c->backoff_max_ms ? c->backoff_max_ms : 5000;
	p->cb = *cb;
	p->lfd = p->epfd = p->evfd = -1;
	pthread_mutex_init(&p->lock, NULL);
	p->now = clock_mono_ms();
	/* both freed by peerlink_destroy; pages are touched as the ring is used */
	p->ring = malloc(p->ring_size);
	p->ring_done = calloc(p->ring_size / PEERLINK_CELL, sizeof(p->ring_done[0]));
	if (p->ring == NULL || p->ring_done == NULL) {
		snprintf(err, errlen, "[array] no memory for the peer send ring (%zu bytes)",
			 (size_t)p->ring_size);
		goto out_free;
	}
	p->ctx = ctx_new(c, err, errlen);
	if (p->ctx == NULL)
		goto out_free;
	p->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->lfd == -1 || setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(p->lfd, (struct sockaddr *)&ss, len) == -1 || listen(p->lfd, 64) == -1) {
		snprintf(err, errlen, "[array] cannot listen on %s: %s", c->listen,
			 strerror(errno));
		goto out_free;
	}
	len = sizeof(ss);
	getsockname(p->lfd, (struct sockaddr *)&ss, &len);
	p->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->epfd == -1 || p->evfd == -1)
		goto out_sys;
	ev.data.ptr = &p->lfd;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->lfd, &ev) == -1)
		goto out_sys;
	ev.data.ptr = &p->evfd;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev) == -1)
		goto out_sys;
	errno = pthread_create(&p->thread, NULL, run, p);
	if (errno != 0)
		goto out_sys;
	return p;

out_sys:
	snprintf(err, errlen, "[array] cannot start the peer link thread: %s", strerror(errno));
out_free:
	if (p->evfd != -1)
		close(p->evfd);
	if (p->epfd != -1)
		close(p->epfd);
	if (p->lfd != -1)
		close(p->lfd);
	SSL_CTX_free(p->ctx);
	pthread_mutex_destroy(&p->lock);
	free(p->ring_done);
	free(p->ring);
	free(p);
	return NULL;
}

void
peerlink_destroy(struct peerlink *p)
{
	if (p == NULL)
		return;
	atomic_store(&p->stop, true);
	atomic_store(&p->kicked, false);
	kick(p);
	pthread_join(p->thread, NULL);
	close(p->evfd);
	close(p->epfd);
	close(p->lfd);
	SSL_CTX_free(p->ctx);
	pthread_mutex_destroy(&p->lock);
	free(p->ring_done);
	free(p->ring);
	free(p);
}

uint16_t
peerlink_port(const struct peerlink *p)
{
	return p->port;
}

int
peerlink_set_members(struct peerlink *p, const struct peerlink_member *m, unsigned n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned i;

	if (n > PEERLINK_NODES_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (m[i].id == 0 || memchr(m[i].addr, '\0', sizeof(m[i].addr)) == NULL ||
		    parse_addr(m[i].addr, &ss, &len) != 0)
			return -EINVAL;
	pthread_mutex_lock(&p->lock);
	memcpy(p->pend, m, n * sizeof(m[0]));
	p->npend = n;
	p->pend_set = true;
	pthread_mutex_unlock(&p->lock);
	kick(p);
	return 0;
}

int
peerlink_send_many(struct peerlink *p, const uint32_t *nodes, unsigned n, const struct peerframe *f)
{
	struct peerframe copy = *f;
	uint64_t head, tail, off, pad, need;
	struct peerlink_rec *r;
	size_t len;

	if (n == 0 || n > PEERLINK_NODES_MAX)
		return -EINVAL;
	copy.node = p->id;
	len = peerframe_size(&copy);
	if (len == 0 || len > p->frame_max)
		return -EINVAL;
	need = rec_size(n, len);
	head = atomic_load_explicit(&p->ring_head, memory_order_relaxed);
	for (;;) {
		off = head % p->ring_size;
		pad = off + need > p->ring_size ? p->ring_size - off : 0;
		/* acquire: the link thread is done reading what it released */
		tail = atomic_load_explicit(&p->ring_tail, memory_order_acquire);
		if (head + pad + need > tail + p->ring_size) {
			if (tail <= head) {
				atomic_fetch_add(&p->send_refused, 1);
				return -ENOBUFS;
			}
			/* <head> is older than the tail: read it again */
			head = atomic_load_explicit(&p->ring_head, memory_order_relaxed);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(&p->ring_head, &head, head + pad + need,
							  memory_order_relaxed,
							  memory_order_relaxed))
			break;
	}
	if (pad > 0) {
		r = (struct peerlink_rec *)(p->ring + off);
		*r = (struct peerlink_rec){ .size = (uint32_t)pad };
		atomic_store_explicit(&p->ring_done[off / PEERLINK_CELL], head + 1,
				      memory_order_release);
		head += pad;
		off = 0;
	}
	r = (struct peerlink_rec *)(p->ring + off);
	r->size = (uint32_t)need;
	r->len = (uint32_t)len;
	r->nnodes = n;
	memcpy(r->nodes, nodes, n * sizeof(r->nodes[0]));
	peerframe_encode(&copy, (uint8_t *)&r->nodes[n], len);
	atomic_store_explicit(&p->ring_done[off / PEERLINK_CELL], head + 1, memory_order_release);
	wake(p);
	return 0;
}

int
peerlink_send(struct peerlink *p, uint32_t node, const struct peerframe *f)
{
	return peerlink_send_many(p, &node, 1, f);
}

unsigned
peerlink_links(struct peerlink *p, struct peerlink_stats *out, unsigned max,
	       struct peerlink_totals *g)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->npub;
	if (max > 0)
		memcpy(out, p->pub, (n < max ? n : max) * sizeof(out[0]));
	if (g != NULL) {
		*g = p->pubg;
		g->send_refused = atomic_load(&p->send_refused);
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}
