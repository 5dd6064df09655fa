/* mqtt-bench's clients and its loop; see mqtt_load.h.
 *
 * A client's states: CONNECTING (TCP, TLS, CONNECT sent; waits for CONNACK)
 * -> SUBSCRIBING (waits for SUBACK) -> READY; FAILED when a setup step fails
 * or takes longer than STEP_TIMEOUT_NS, LOST when a ready client's
 * connection drops. libmosquitto writes a packet at once when it is queued
 * outside a callback (a post, a PUBACK to a delivery) and only queues it
 * inside one (the SUBSCRIBE sent from the CONNACK callback): after every
 * call into the library the loop writes what is queued, and waits for
 * EPOLLOUT only while the socket is full.
 *
 * The loop: wait in epoll_pwait2 until the next post is due, serve the
 * sockets that are ready, send the posts that are due. Posts are paced
 * open-loop like parley-bench's: a fixed interval, each due post to the next
 * client in turn that may post, and how late it left (send lag) recorded. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>

#include <mosquitto.h>
#include <openssl/ssl.h>

#include "perf/loadkit.h"
#include "perf/mqtt_load.h"

#define EVENTS		512
#define TICK_NS		(100 * 1000000ull)
#define MISC_NS		(1000 * 1000000ull)
#define WAIT_MAX_NS	(5 * 1000000ull)
#define STEP_TIMEOUT_NS	(15 * 1000000000ull)
#define BURST_MAX	4096	/* due posts sent in one go before serving sockets again */
#define READS_MAX	4096	/* packets read from one socket per wake-up */

enum cl_state {
	CL_IDLE,
	CL_CONNECTING,
	CL_SUBSCRIBING,
	CL_READY,
	CL_FAILED,
	CL_LOST,
};

struct mqtt_load_client {
	struct mqtt_load *l;
	struct mosquitto *m;
	uint32_t	id;		/* room * members + slot */
	uint32_t	room;
	enum cl_state	state;
	int		fd;		/* -1: not in the epoll set */
	uint32_t	armed;		/* epoll events asked for */
	uint64_t	deadline;	/* of the current setup step */
	uint32_t	seq;		/* posts sent */
	uint32_t	unacked;	/* QoS 1 */
	struct { int mid; uint64_t sent; } pend[MQTT_LOAD_PEND];
	struct rxwin	*rx;		/* [members]: per poster of the room */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool
in_window(const struct mqtt_load *l, uint64_t t)
{
	return t >= l->ws && t < l->we;
}

static void
note_error(struct mqtt_load *l, const char *fmt, ...)
{
	va_list ap;

	if (l->first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(l->first_error, sizeof(l->first_error), fmt, ap);
	va_end(ap);
}

static void
progress(const struct mqtt_load *l, const char *fmt, ...)
{
	va_list ap;

	if (!l->c.progress)
		return;
	fputs("[mqtt-bench] ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the socket and the library ----------------------------------------- */

static void
arm(struct mqtt_load_client *cl, uint32_t want)
{
	struct epoll_event ev = { .events = want, .data.ptr = cl };

	if (cl->fd == -1 || want == cl->armed)
		return;
	if (epoll_ctl(cl->l->ep, EPOLL_CTL_MOD, cl->fd, &ev) == 0)
		cl->armed = want;
}

/* The client's connection is gone (libmosquitto closed the socket). */
static void
drop(struct mqtt_load_client *cl, int rc, const char *during)
{
	struct mqtt_load *l = cl->l;

	if (cl->state == CL_FAILED || cl->state == CL_LOST)
		return;
	/* The library may have closed the socket already, and its number
	 * may belong to another client's new one by now. */
	if (cl->fd != -1 && mosquitto_socket(cl->m) == cl->fd)
		epoll_ctl(l->ep, EPOLL_CTL_DEL, cl->fd, NULL);
	cl->fd = -1;
	note_error(l, "client %u (%s): %s", cl->id, during, mosquitto_strerror(rc));
	if (cl->state == CL_READY) {
		cl->state = CL_LOST;
		l->n.disconnects++;
		l->present[cl->room]--;
		return;
	}
	cl->state = CL_FAILED;
	l->n.setup_failed++;
	l->in_setup--;
}

/* A setup step failed: the client leaves the run. */
static void
give_up(struct mqtt_load_client *cl)
{
	struct mqtt_load *l = cl->l;

	if (cl->fd != -1 && mosquitto_socket(cl->m) == cl->fd)
		epoll_ctl(l->ep, EPOLL_CTL_DEL, cl->fd, NULL);
	cl->fd = -1;
	mosquitto_disconnect(cl->m);
	cl->state = CL_FAILED;
	l->n.setup_failed++;
	l->in_setup--;
}

/* Writes what the library has queued; waits for EPOLLOUT while the socket
 * is full. During the TLS handshake the library writes nothing, so the
 * socket is watched for what OpenSSL wants. */
static void
flush(struct mqtt_load_client *cl)
{
	SSL *ssl = mosquitto_ssl_get(cl->m);
	uint32_t want = EPOLLIN;
	int rc;

	if (cl->fd == -1)
		return;
	if (ssl != NULL && !SSL_is_init_finished(ssl)) {
		if (SSL_want_write(ssl))
			want |= EPOLLOUT;
		arm(cl, want);
		return;
	}
	if (mosquitto_want_write(cl->m)) {
		errno = 0;
		rc = mosquitto_loop_write(cl->m, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			drop(cl, rc, "write");
			return;
		}
		if (mosquitto_want_write(cl->m))
			want |= EPOLLOUT;
	}
	arm(cl, want);
}

/* Reads what has arrived: libmosquitto reads one packet per turn here, and
 * OpenSSL's read-ahead may hold records that epoll cannot see; what is still
 * in the socket wakes epoll again (level-triggered), so no turn is spent on
 * a read() that would only say EAGAIN. */
static void
client_io(struct mqtt_load_client *cl, uint32_t events)
{
	unsigned turns = 0;
	SSL *ssl;
	int rc;

	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP) || cl->state == CL_CONNECTING) {
		do {
			errno = 0;
			rc = mosquitto_loop_read(cl->m, 1);
			if (rc != MOSQ_ERR_SUCCESS) {
				drop(cl, rc, cl->state == CL_READY ? "read" : "setup");
				return;
			}
			ssl = mosquitto_ssl_get(cl->m);
		} while (cl->fd != -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
			 ssl != NULL && SSL_has_pending(ssl) && ++turns < READS_MAX);
	}
	flush(cl);
}

/* ---- callbacks (inside mosquitto_loop_read) ------------------------------ */

static void
on_connect(struct mosquitto *m, void *arg, int rc)
{
	struct mqtt_load_client *cl = arg;
	struct mqtt_load *l = cl->l;
	char topic[96];
	SSL *ssl;

	if (cl->state != CL_CONNECTING)
		return;
	if (rc != 0) {
		note_error(l, "client %u: CONNACK %d: %s", cl->id, rc, mosquitto_connack_string(rc));
		give_up(cl);
		return;
	}
	l->n.connected++;
	ssl = mosquitto_ssl_get(m);
	if (l->tls[0] == '\0' && ssl != NULL) {
		snprintf(l->tls, sizeof(l->tls), "%s", SSL_get_version(ssl));
		snprintf(l->cipher, sizeof(l->cipher), "%s", SSL_get_cipher_name(ssl));
	}
	snprintf(topic, sizeof(topic), "%s%u", l->c.topic_prefix, cl->room);
	rc = mosquitto_subscribe(m, NULL, topic, l->c.qos);
	if (rc != MOSQ_ERR_SUCCESS) {
		note_error(l, "client %u: SUBSCRIBE: %s", cl->id, mosquitto_strerror(rc));
		give_up(cl);
		return;
	}
	cl->state = CL_SUBSCRIBING;
	cl->deadline = now_ns() + STEP_TIMEOUT_NS;
}

static void
on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
	struct mqtt_load_client *cl = arg;
	struct mqtt_load *l = cl->l;

	(void)m;
	(void)mid;
	if (cl->state != CL_SUBSCRIBING)
		return;
	if (n != 1 || granted[0] != l->c.qos) {
		note_error(l, "client %u: SUBACK granted QoS %d, asked %d", cl->id,
			   n >= 1 ? granted[0] : -1, l->c.qos);
		give_up(cl);
		return;
	}
	l->in_setup--;
	cl->state = CL_READY;
	l->n.joined++;
	l->present[cl->room]++;
}

/* QoS 1: the broker's PUBACK to one of our posts. */
static void
on_publish(struct mosquitto *m, void *arg, int mid)
{
	struct mqtt_load_client *cl = arg;
	struct mqtt_load *l = cl->l;
	unsigned slot = (unsigned)mid % MQTT_LOAD_PEND;

	(void)m;
	if (l->c.qos == 0 || cl->pend[slot].mid != mid || cl->pend[slot].sent == 0)
		return;
	if (in_window(l, cl->pend[slot].sent))
		hist_add(&l->ack, now_ns() - cl->pend[slot].sent);
	cl->pend[slot].sent = 0;
	cl->unacked--;
	l->n.posts_ok++;
}

static void
on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
	struct mqtt_load_client *cl = arg;
	struct mqtt_load *l = cl->l;
	const char *p = msg->payload, *end = p + msg->payloadlen;
	uint64_t g, s, t, now = now_ns();
	bool ok = true;

	(void)m;
	if (msg->payloadlen < 3 || memcmp(p, "mb ", 3) != 0) {
		l->n.bad++;
		return;
	}
	p += 3;
	g = loadkit_num(&p, end, &ok);
	s = loadkit_num(&p, end, &ok);
	t = loadkit_num(&p, end, &ok);
	if (!ok || g >= l->total || s == 0 || s > UINT32_MAX) {
		l->n.bad++;
		return;
	}
	if (g / l->c.members != cl->room) {
		l->n.misrouted++;
		return;
	}
	if (!loadkit_rx_mark(&cl->rx[g % l->c.members], (uint32_t)s)) {
		l->n.dup++;
		return;
	}
	l->n.delivered++;
	if (in_window(l, now)) {
		l->n.delivered_win++;
		if (g == cl->id)
			l->n.echo_win++;
	}
	if (in_window(l, t) && now >= t)
		hist_add(&l->lat, now - t);
}

/* ---- setup ---------------------------------------------------------------- */

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_read_ahead(ctx, 1);
	return ctx;
}

static int
client_init(struct mqtt_load *l, struct mqtt_load_client *cl, uint32_t id)
{
	char name[32];

	cl->l = l;
	cl->id = id;
	cl->room = id / l->c.members;
	cl->fd = -1;
	cl->rx = calloc(l->c.members, sizeof(*cl->rx));
	snprintf(name, sizeof(name), "mqtt-bench-%u", id);
	cl->m = mosquitto_new(name, true, cl);
	if (cl->rx == NULL || cl->m == NULL)
		return -1;
	if (mosquitto_int_option(cl->m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0) != MOSQ_ERR_SUCCESS ||
	    mosquitto_void_option(cl->m, MOSQ_OPT_SSL_CTX, l->ssl_ctx) != MOSQ_ERR_SUCCESS ||
	    mosquitto_int_option(cl->m, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS ||
	    mosquitto_int_option(cl->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311) !=
	    MOSQ_ERR_SUCCESS)
		return -1;
	/* Our own limit (--inflight) paces the posts, not the library's. */
	mosquitto_max_inflight_messages_set(cl->m, MQTT_LOAD_PEND);
	mosquitto_connect_callback_set(cl->m, on_connect);
	mosquitto_subscribe_callback_set(cl->m, on_subscribe);
	mosquitto_publish_callback_set(cl->m, on_publish);
	mosquitto_message_callback_set(cl->m, on_message);
	return 0;
}

static void
client_start(struct mqtt_load_client *cl, uint64_t now)
{
	struct mqtt_load *l = cl->l;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = cl };
	int rc;

	l->in_setup++;
	cl->state = CL_CONNECTING;
	cl->deadline = now + STEP_TIMEOUT_NS;
	rc = mosquitto_connect_async(cl->m, l->c.host, l->c.port, l->c.keepalive_s);
	if (rc != MOSQ_ERR_SUCCESS) {
		/* A refused connect() is the common case: say it plainly. */
		note_error(l, "client %u: connect to %s:%u: %s", cl->id, l->c.host, l->c.port,
			   rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		cl->state = CL_FAILED;
		l->n.setup_failed++;
		l->in_setup--;
		return;
	}
	cl->fd = mosquitto_socket(cl->m);
	if (cl->fd < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, cl->fd, &ev) != 0) {
		note_error(l, "client %u: epoll_ctl: %s", cl->id, strerror(errno));
		cl->fd = -1;
		give_up(cl);
		return;
	}
	cl->armed = ev.events;
	flush(cl);
}

static void
start_more(struct mqtt_load *l, uint64_t now)
{
	while (l->next_start < l->total && l->in_setup < l->c.setup_conc)
		client_start(&l->cl[l->next_start++], now);
}

/* Setup steps that took too long, and the library's keep-alive. */
static void
tick(struct mqtt_load *l, uint64_t now, bool misc)
{
	for (uint32_t i = 0; i < l->next_start; i++) {
		struct mqtt_load_client *cl = &l->cl[i];
		int rc;

		if ((cl->state == CL_CONNECTING || cl->state == CL_SUBSCRIBING) &&
		    now >= cl->deadline) {
			note_error(l, "client %u: no %s within %llu s", cl->id,
				   cl->state == CL_CONNECTING ? "CONNACK" : "SUBACK",
				   STEP_TIMEOUT_NS / 1000000000ull);
			give_up(cl);
			continue;
		}
		if (!misc || cl->state != CL_READY)
			continue;
		rc = mosquitto_loop_misc(cl->m);
		if (rc != MOSQ_ERR_SUCCESS)
			drop(cl, rc, "keep-alive");
		else
			flush(cl);
	}
}

/* ---- load ------------------------------------------------------------------ */

static bool
can_post(const struct mqtt_load_client *cl)
{
	const struct mqtt_load *l = cl->l;

	return cl->state == CL_READY && (l->c.qos == 0 || cl->unacked < l->c.inflight);
}

static bool
post(struct mqtt_load_client *cl, uint64_t due, uint64_t now)
{
	struct mqtt_load *l = cl->l;
	char topic[96];
	uint64_t t = now_ns();
	int head, mid = 0, rc;

	snprintf(topic, sizeof(topic), "%s%u", l->c.topic_prefix, cl->room);
	head = snprintf(l->payload, l->c.size + 1, "mb %u %u %" PRIu64 " ", cl->id, cl->seq + 1, t);
	for (int i = head; i < (int)l->c.size; i++)
		l->payload[i] = (char)('a' + i % 26);
	rc = mosquitto_publish(cl->m, &mid, topic, (int)l->c.size, l->payload, l->c.qos, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		note_error(l, "client %u: publish: %s", cl->id, mosquitto_strerror(rc));
		l->n.post_errors++;
		if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST)
			drop(cl, rc, "publish");
		return false;
	}
	cl->seq++;
	l->n.posts_sent++;
	l->n.expected += l->present[cl->room];
	if (l->c.qos == 0) {
		l->n.posts_ok++;
	} else {
		unsigned slot = (unsigned)mid % MQTT_LOAD_PEND;

		if (cl->pend[slot].sent != 0)	/* forgotten: the slot is reused */
			cl->unacked--;
		cl->pend[slot].mid = mid;
		cl->pend[slot].sent = t;
		cl->unacked++;
	}
	if (in_window(l, t))
		hist_add(&l->lag, now >= due ? now - due : 0);
	flush(cl);
	return true;
}

/* Sends the posts that are due by <now>. */
static void
pace(struct mqtt_load *l, uint64_t now)
{
	unsigned burst = 0;

	while (l->next_due <= now && burst++ < BURST_MAX) {
		bool sent = false;

		for (uint32_t tries = 0; tries < l->total && !sent; tries++) {
			struct mqtt_load_client *cl = &l->cl[l->order[l->rr]];

			l->rr = (l->rr + 1) % l->total;
			if (can_post(cl))
				sent = post(cl, l->next_due, now);
		}
		if (!sent && in_window(l, l->next_due))
			l->n.throttled++;
		l->next_due += l->interval_ns;
		now = now_ns();
	}
}

static void
take_sample(struct mqtt_load *l, struct mqtt_load_sample *s)
{
	struct timespec ts;

	s->t = now_ns();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	s->proc_cpu = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (procstat_system_busy(&s->sys_busy) != 0)
		s->sys_busy = 0;
	s->srv_ok = l->c.server_pid > 0 && procstat_read(l->c.server_pid, &s->srv) == 0;
}

/* One turn of the loop: wait until <until> at most, serve the sockets. */
static void
serve(struct mqtt_load *l, uint64_t until, bool paced)
{
	struct epoll_event ev[EVENTS];
	uint64_t now = now_ns(), wait_ns = until > now ? until - now : 0, woke;
	struct timespec ts;
	int n;

	if (wait_ns > WAIT_MAX_NS)
		wait_ns = WAIT_MAX_NS;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)wait_ns;
	if (l->woke != 0 && in_window(l, now) && now - l->woke > l->busy_max)
		l->busy_max = now - l->woke;
	n = epoll_pwait2(l->ep, ev, EVENTS, &ts, NULL);
	woke = now_ns();
	l->woke = woke;
	if (n == 0 && in_window(l, woke) && woke - now > wait_ns &&
	    woke - now - wait_ns > l->oversleep_max)
		l->oversleep_max = woke - now - wait_ns;
	for (int i = 0; i < n; i++) {
		client_io(ev[i].data.ptr, ev[i].events);
		/* A long batch must not hold back posts that fall due. */
		if (paced) {
			now = now_ns();
			if (now >= l->next_due)
				pace(l, now);
		}
	}
}

static bool
drained(const struct mqtt_load *l)
{
	return l->n.delivered >= l->n.expected &&
	       (l->c.qos == 0 || l->n.posts_ok >= l->n.posts_sent);
}

static int
setup_phase(struct mqtt_load *l)
{
	uint64_t start = now_ns(), end = start + (uint64_t)(l->c.setup_timeout_s * 1e9);
	uint64_t next_tick = start, next_progress = start + 1000000000u;

	while (l->n.joined + l->n.setup_failed < l->total) {
		uint64_t now = now_ns();

		if (now >= end) {
			fprintf(stderr, "mqtt-bench: setup timed out after %.0f s: %" PRIu64
				" of %u subscribed\n", l->c.setup_timeout_s, l->n.joined, l->total);
			break;
		}
		start_more(l, now);
		if (now >= next_tick) {
			tick(l, now, false);
			next_tick = now + TICK_NS;
		}
		if (now >= next_progress) {
			progress(l, "connecting: subscribed %" PRIu64 "/%u, failed %" PRIu64
				 ", %.0f s", l->n.joined, l->total, l->n.setup_failed,
				 (now - start) / 1e9);
			next_progress += 1000000000u;
		}
		serve(l, now + TICK_NS, false);
	}
	progress(l, "subscribed: %" PRIu64 "/%u in %.1f s (%s %s)", l->n.joined, l->total,
		 (now_ns() - start) / 1e9, l->tls, l->cipher);
	if (l->n.joined == 0) {
		fprintf(stderr, "mqtt-bench: no client could connect and subscribe; first "
			"error: %s\n", l->first_error[0] ? l->first_error : "none");
		return 3;
	}
	return 0;
}

static void
load_phase(struct mqtt_load *l)
{
	uint64_t t0 = now_ns() + 100000000u, next_tick, next_misc, next_progress, prev_del = 0;
	uint64_t prev_t;
	bool s0_taken = false;

	l->ws = t0 + (uint64_t)(l->c.warmup_s * 1e9);
	l->we = l->ws + (uint64_t)(l->c.duration_s * 1e9);
	l->next_due = t0;
	next_tick = next_misc = t0;
	next_progress = prev_t = t0;
	next_progress += 1000000000u;
	for (;;) {
		uint64_t now = now_ns();

		if (now >= l->ws && !s0_taken) {
			take_sample(l, &l->s0);
			s0_taken = true;
		}
		if (now >= l->we) {
			take_sample(l, &l->s1);
			break;
		}
		if (now >= t0)
			pace(l, now);
		if (now >= next_tick) {
			tick(l, now, now >= next_misc);
			if (now >= next_misc)
				next_misc = now + MISC_NS;
			next_tick = now + TICK_NS;
		}
		if (now >= next_progress) {
			progress(l, "%.0f/%.0f s: posts %" PRIu64 ", deliveries %.0f/s (offered "
				 "%.0f/s), errors %" PRIu64 ", lost %" PRIu64,
				 (now - t0) / 1e9, l->c.warmup_s + l->c.duration_s, l->n.posts_sent,
				 (l->n.delivered - prev_del) / ((now - prev_t) / 1e9),
				 l->c.rate * l->c.members, l->n.post_errors, l->n.disconnects);
			prev_del = l->n.delivered;
			prev_t = now;
			next_progress += 1000000000u;
		}
		serve(l, l->next_due < l->we ? l->next_due : l->we, true);
	}
}

static void
drain_phase(struct mqtt_load *l)
{
	uint64_t end = now_ns() + (uint64_t)(l->c.drain_s * 1e9);

	while (!drained(l) && now_ns() < end)
		serve(l, now_ns() + 20000000u, false);
}

static void
pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		fprintf(stderr, "mqtt-bench: cannot pin to CPU %d\n", cpu);
}

int
mqtt_load_run(struct mqtt_load *l)
{
	const struct mqtt_load_conf *c = &l->c;
	uint32_t k = 0;
	int rc;

	pin(c->cpu);
	l->total = c->rooms * c->members;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->ssl_ctx = client_ctx();
	l->cl = calloc(l->total, sizeof(*l->cl));
	l->present = calloc(c->rooms, sizeof(*l->present));
	l->order = calloc(l->total, sizeof(*l->order));
	l->payload = malloc(c->size + 1);
	if (l->ep == -1 || l->ssl_ctx == NULL || l->cl == NULL || l->present == NULL ||
	    l->order == NULL || l->payload == NULL) {
		fprintf(stderr, "mqtt-bench: out of memory or descriptors\n");
		return 2;
	}
	mosquitto_lib_init();
	for (uint32_t i = 0; i < l->total; i++)
		if (client_init(l, &l->cl[i], i) != 0) {
			fprintf(stderr, "mqtt-bench: cannot create client %u (libmosquitto: out "
				"of memory or descriptors?)\n", i);
			return 2;
		}
	/* Slot-major, so that consecutive posts go to different rooms. */
	for (uint32_t slot = 0; slot < c->members; slot++)
		for (uint32_t r = 0; r < c->rooms; r++)
			l->order[k++] = r * c->members + slot;
	l->interval_ns = (uint64_t)(1e9 / c->rate);
	if (c->server_pid > 0) {
		l->base_ok = procstat_read(c->server_pid, &l->base) == 0;
		if (!l->base_ok) {
			fprintf(stderr, "mqtt-bench: cannot read /proc/%d (--server-pid)\n",
				(int)c->server_pid);
			return 2;
		}
	}
	rc = setup_phase(l);
	if (rc != 0)
		return rc;
	load_phase(l);
	drain_phase(l);
	return 0;
}

void
mqtt_load_fini(struct mqtt_load *l)
{
	if (l->cl != NULL) {
		for (uint32_t i = 0; i < l->total; i++) {
			struct mqtt_load_client *cl = &l->cl[i];

			if (cl->m != NULL) {
				if (cl->fd != -1) {
					mosquitto_disconnect(cl->m);
					mosquitto_loop_write(cl->m, 1);
				}
				mosquitto_destroy(cl->m);
			}
			free(cl->rx);
		}
		mosquitto_lib_cleanup();
	}
	free(l->cl);
	free(l->present);
	free(l->order);
	free(l->payload);
	SSL_CTX_free(l->ssl_ctx);
	if (l->ep >= 0)
		close(l->ep);
	l->cl = NULL;
	l->present = l->order = NULL;
	l->payload = NULL;
	l->ssl_ctx = NULL;
	l->ep = -1;
}
