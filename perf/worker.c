/* parley-bench worker thread; see worker.h.
 *
 * The loop: wait in epoll_pwait2 until the next post is due (nanosecond
 * timeout), serve the sockets that are ready, send the posts that are due,
 * and every 100 ms check sign-in timeouts and start more clients. Posts are
 * paced open-loop: the thread's share of the offered rate gives a fixed
 * interval, each due post goes to the next client in turn that may post,
 * and how late it left (send lag) is recorded. A due post that finds no
 * client free (all waiting for acknowledgements) is counted as throttled:
 * that is the server pushing back, not the generator falling behind.
 *
 * User-space mode (--dpdk): the thread polls its struct unet instead of
 * epoll; the stack's connection events drive the agents (agent_io) from
 * inside unet_poll, and an idle poll naps until the next post is due. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>

#include <openssl/ssl.h>

#include "dataplane/base/clock.h"
#include "perf/agent.h"
#include "perf/unet.h"
#include "perf/worker.h"

#define EVENTS		512
#define TICK_NS		(100 * 1000000ull)
#define WAIT_MAX_NS	(5 * 1000000ull)
#define BURST_MAX	4096	/* due posts sent in one go before serving sockets again */

static SSL_CTX *
client_ctx(const struct bench_conf *c)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Many records per read(); idle and connect runs keep no buffers. */
	if (c->mode == MODE_FANOUT || c->mode == MODE_HISTORY)
		SSL_CTX_set_read_ahead(ctx, 1);
	else
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

int
worker_init(struct worker *w, struct bench *b, unsigned idx, uint32_t first, uint32_t n)
{
	const struct bench_conf *c = &b->c;
	uint32_t k = 0;

	memset(w, 0, sizeof(*w));
	w->b = b;
	w->idx = idx;
	w->first_gid = first;
	w->nagents = n;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep == -1)
		return -errno;
	w->ctx = client_ctx(c);
	w->agents = calloc(n ? n : 1, sizeof(*w->agents));
	w->order = calloc(n ? n : 1, sizeof(*w->order));
	if (w->ctx == NULL || w->agents == NULL || w->order == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (agent_init(&w->agents[i], w, first + i) != 0)
			return -ENOMEM;
	/* Posting order: slot-major, so that consecutive posts go to
	 * different rooms ("every member posts in turn"). */
	if (c->members > 0) {
		for (uint32_t slot = 0; slot < c->members; slot++)
			for (uint32_t i = 0; i < n; i++)
				if ((first + i) % c->members == slot)
					w->order[k++] = i;
	}
	for (; k < n; k++)
		w->order[k] = k;
	return 0;
}

void
worker_fini(struct worker *w)
{
	if (w->agents != NULL)
		for (uint32_t i = 0; i < w->nagents; i++)
			agent_fini(&w->agents[i]);
	free(w->agents);
	free(w->order);
	free(w->scratch);
	free(w->ser);
	unet_destroy(w->un);
	w->un = NULL;
	SSL_CTX_free(w->ctx);
	if (w->ep != -1)
		close(w->ep);
}

/* Starts clients that have not signed in yet, or retry, within the
 * per-thread concurrency. */
static void
start_more(struct worker *w, uint64_t now, bool scan)
{
	const struct bench_conf *c = &w->b->c;

	if (c->mode == MODE_CONNECT) {
		for (uint32_t i = 0; i < w->nagents && scan; i++) {
			struct agent *a = &w->agents[i];

			if (a->state == AG_IDLE && now >= a->deadline)
				agent_start(a, now);
		}
		return;
	}
	/* User-space mode: the first client finds the rooms first. */
	if (!atomic_load_explicit(&w->b->rooms_known, memory_order_acquire)) {
		if (w->idx == 0 && w->next_start == 0 && w->nagents > 0)
			agent_start(&w->agents[w->next_start++], now);
		return;
	}
	while (w->next_start < w->nagents && w->in_setup < c->setup_conc)
		agent_start(&w->agents[w->next_start++], now);
	if (!scan)
		return;
	for (uint32_t i = 0; i < w->next_start && w->in_setup < c->setup_conc; i++) {
		struct agent *a = &w->agents[i];

		if (a->state == AG_IDLE && a->tries > 0 && now >= a->deadline)
			agent_start(a, now);
	}
}

/* Sends the posts that are due by <now>. */
static void
pace(struct worker *w, uint64_t now)
{
	unsigned burst = 0;

	if (w->nagents == 0)
		return;
	if (w->interval_ns == 0) {
		/* Unpaced: fill every client's pipeline once; acks refill it. */
		if (!w->kicked) {
			for (uint32_t i = 0; i < w->nagents; i++)
				while (agent_post(&w->agents[w->order[i]], now, now))
					;
			w->kicked = true;
		}
		return;
	}
	while (w->next_due <= now && burst++ < BURST_MAX) {
		bool sent = false;

		if (w->b->c.profile.n > 0)	/* this phase's rate */
			w->interval_ns = (uint64_t)(1e9 * w->b->c.members /
				(series_rate_at(&w->b->c.profile, w->next_due - w->t0) * w->share));
		if (w->b->c.max_posts > 0 &&
		    atomic_load_explicit(&w->b->posts_issued, memory_order_relaxed) >=
		    w->b->c.max_posts)
			return;

		for (uint32_t tries = 0; tries < w->nagents && !sent; tries++) {
			struct agent *a = &w->agents[w->order[w->rr]];

			w->rr = (w->rr + 1) % w->nagents;
			if (agent_can_post(a))
				sent = agent_post(a, w->next_due, now);
		}
		if (!sent && in_window(w, w->next_due))
			ctr_add(w, C_THROTTLED, 1);
		w->next_due += w->interval_ns;
		now = clock_mono_ns();
	}
}

static void
history_kick(struct worker *w, uint64_t now)
{
	if (w->kicked)
		return;
	for (uint32_t i = 0; i < w->nagents; i++)
		agent_bccontext(&w->agents[i], now);
	w->kicked = true;
}

static void
pin(struct worker *w)
{
	int cpu = w->b->c.cpus[w->idx];
	cpu_set_t set;
	char name[16];

	snprintf(name, sizeof(name), "bench-w%u", w->idx);
	pthread_setname_np(pthread_self(), name);
	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		fprintf(stderr, "parley-bench: cannot pin worker %u to CPU %d\n", w->idx, cpu);
}

/* The stack's connection events (user-space mode). */
static void
unet_event(void *arg, void *owner)
{
	struct worker *w = arg;

	agent_io(owner, EPOLLIN | EPOLLOUT, clock_mono_ns());
	if (w->b->c.mode == MODE_FANOUT && w->phase == PHASE_RUN && w->interval_ns > 0) {
		uint64_t now = clock_mono_ns();

		if (now >= w->next_due && now >= atomic_load(&w->b->t0_ns))
			pace(w, now);
	}
}

/* User-space mode: this thread's stack on its queue, and the server's MAC.
 * On failure every client of the thread counts as failed to sign in. */
static int
unet_start(struct worker *w)
{
	const struct bench_conf *c = &w->b->c;
	char err[256];
	int rc;

	w->un = unet_create((uint16_t)w->idx, unet_event, w, err, sizeof(err));
	if (w->un == NULL)
		goto out_fail;
	rc = unet_resolve(w->un, ntohl(c->dst.sin_addr.s_addr), 3000);
	if (rc == 0)
		return 0;
	snprintf(err, sizeof(err), "no ARP answer from %s on the DPDK port within 3 s",
		 c->host);
out_fail:
	snprintf(w->first_error, sizeof(w->first_error), "%s", err);
	ctr_add(w, C_SETUP_FAILED, w->nagents);
	atomic_store(&w->b->scout_failed, true);
	return -1;
}

static void
unet_counters(struct worker *w)
{
	struct unet_stats s;

	if (w->un == NULL)
		return;
	unet_stats(w->un, &s);
	ctr_add(w, C_NET_RX, (int64_t)s.rx);
	ctr_add(w, C_NET_TX, (int64_t)s.tx);
	ctr_add(w, C_NET_RTX, (int64_t)s.rtx);
	ctr_add(w, C_NET_NAPS, (int64_t)s.naps);
	ctr_add(w, C_NET_TX_DROP, (int64_t)s.tx_drop);
	ctr_add(w, C_NET_TX_REFUSED, (int64_t)s.tx_refused);
	ctr_add(w, C_NET_POLLS, (int64_t)s.polls);
	if (w->un_ws_set) {
		if (!w->un_we_set) {
			w->un_tx_we = s.tx;
			w->un_rtx_we = s.rtx;
		}
		ctr_add(w, C_NET_TX_WIN, (int64_t)(w->un_tx_we - w->un_tx_ws));
		ctr_add(w, C_NET_RTX_WIN, (int64_t)(w->un_rtx_we - w->un_rtx_ws));
	}
}

/* The user-space stack's tx and rtx counts where the window starts and
 * ends, so that a run's flag looks at the window, not at the sign-in. */
static void
unet_window(struct worker *w, uint64_t now)
{
	struct unet_stats s;

	if (w->phase != PHASE_RUN || w->ws == 0 || now < w->ws || w->un_we_set)
		return;
	if (!w->un_ws_set) {
		unet_stats(w->un, &s);
		w->un_tx_ws = s.tx;
		w->un_rtx_ws = s.rtx;
		w->un_ws_set = true;
	} else if (now >= w->we) {
		unet_stats(w->un, &s);
		w->un_tx_we = s.tx;
		w->un_rtx_we = s.rtx;
		w->un_we_set = true;
	}
}

void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const struct bench_conf *c = &b->c;
	struct epoll_event ev[EVENTS];
	uint64_t next_tick = 0, woke = clock_mono_ns();
	bool started_run = false;

	pin(w);
	if (c->dpdk_port[0] != '\0' && unet_start(w) != 0) {
		while (atomic_load_explicit(&b->phase, memory_order_acquire) != PHASE_STOP)
			usleep(10000);
		return NULL;
	}
	for (;;) {
		uint64_t now = clock_mono_ns(), wait_ns = WAIT_MAX_NS;
		struct timespec ts;
		int n;

		w->phase = atomic_load_explicit(&b->phase, memory_order_acquire);
		if (w->phase == PHASE_STOP)
			break;
		w->ws = atomic_load_explicit(&b->ws_ns, memory_order_relaxed);
		w->we = atomic_load_explicit(&b->we_ns, memory_order_relaxed);
		if (w->phase == PHASE_RUN && !started_run) {
			uint64_t t0 = atomic_load(&b->t0_ns);

			started_run = true;
			w->t0 = t0;
			if (w->interval_ns > 0)	/* spread the threads' schedules */
				w->next_due = t0 + w->interval_ns * w->idx / c->nthreads;
		}
		if (c->mode == MODE_CONNECT ? w->phase == PHASE_RUN : w->phase == PHASE_SETUP)
			start_more(w, now, now >= next_tick);
		if (w->phase == PHASE_RUN && now >= atomic_load(&b->t0_ns)) {
			if (c->mode == MODE_FANOUT)
				pace(w, now);
			else if (c->mode == MODE_HISTORY)
				history_kick(w, now);
		}
		if (now >= next_tick) {
			for (uint32_t i = 0; i < w->nagents; i++)
				agent_tick(&w->agents[i], now);
			next_tick = now + TICK_NS;
		}
		now = clock_mono_ns();
		if (c->mode == MODE_FANOUT && w->phase == PHASE_RUN && w->interval_ns > 0)
			wait_ns = w->next_due > now ? w->next_due - now : 0;
		if (wait_ns > WAIT_MAX_NS)
			wait_ns = WAIT_MAX_NS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)wait_ns;
		if (w->phase == PHASE_RUN && in_window(w, now) && now - woke > w->busy_max)
			w->busy_max = now - woke;
		if (w->un != NULL) {
			unet_poll(w->un, wait_ns);
			woke = clock_mono_ns();
			unet_window(w, woke);
			continue;
		}
		n = epoll_pwait2(w->ep, ev, EVENTS, &ts, NULL);
		if (n < 0 && errno != EINTR)
			break;
		woke = clock_mono_ns();
		if (n == 0 && in_window(w, woke) && woke - now > wait_ns &&
		    woke - now - wait_ns > w->oversleep_max)
			w->oversleep_max = woke - now - wait_ns;
		now = woke;
		for (int i = 0; i < n; i++) {
			agent_io(ev[i].data.ptr, ev[i].events, now);
			/* A long batch must not hold back posts that fall due. */
			if (c->mode == MODE_FANOUT && w->phase == PHASE_RUN && w->interval_ns > 0) {
				now = clock_mono_ns();
				if (now >= w->next_due && now >= atomic_load(&b->t0_ns))
					pace(w, now);
			}
		}
	}
	for (uint32_t i = 0; i < w->nagents; i++)
		agent_stop(&w->agents[i]);
	if (w->un != NULL) {
		unet_flush(w->un);	/* the resets leave */
		unet_counters(w);
	}
	return NULL;
}
