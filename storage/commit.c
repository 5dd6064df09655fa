/* The storage thread and its rings; see commit.h for the contract.
 *
 * Ownership: a producer's pool and free stack belong to the producer thread;
 * its request ring is SP (producer) / SC (storage thread); its completion
 * ring is SP (storage thread) / SC (producer). Requests move only through
 * the rings, whose enqueue/dequeue order the request's fields (release /
 * acquire), so no other synchronisation is needed. The statistics are
 * written by the storage thread only, as relaxed atomics.
 *
 * Seqs: next_seq is touched by the storage thread only. A group whose write
 * fails is not on disk at all (a WriteBatch is atomic), so its seqs are
 * handed out again to the next group: the log stays gap-free.
 *
 * Times: the storage thread stamps each event as it gives it its seq, from
 * one clock, and never below the previous event's time (max(now, last)):
 * the times of the compliance log, and so of every room's events, never go
 * backwards in seq order, whichever lcore or thread produced them and
 * whatever the wall clock does. At start, last is the newest stored
 * event's time.
 *
 * Idle: when every ring is empty the thread naps IDLE_NS at a time for up to
 * IDLE_SPIN_NS (a burst that follows another costs no syscall on either
 * side), then announces that it sleeps and blocks on an eventfd. A producer
 * that enqueues writes the eventfd only when it sees that announcement: no
 * syscall per request under load, no CPU burnt when idle. Naps pay only
 * when requests come closer than the nap window; further apart, each nap is
 * a context switch for nothing (two when the thread shares its CPU with the
 * lcores). So the window adapts: a block that outlasted the full window
 * halves it, down to none (block at once); a wait that ended within the
 * full window, napping or blocked, restores it.
 *
 * Sync interval (sync_interval_us > 0, fsync on): requests found less than
 * the interval after the start of the last fsync'd group wait for the rest
 * of it (one sleep), then go in one group with all that came meanwhile.
 * Requests that find the last fsync older than that are written at once, so
 * the wait costs latency only when fsyncs come closer than the interval. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <rte_ring.h>

#include "dataplane/base/be.h"
#include "dataplane/base/bug.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/base/ring.h"
#include "storage/commit.h"
#include "storage/db.h"
#include "storage/history.h"
#include "storage/wal.h"

#define IDLE_NS		20000
#define IDLE_SPIN_NS	100000		/* then block */
#define SLEEP_MS	200		/* a blocked thread still looks at stop */
#define HIST_BUCKETS	256

struct commit_producer {
	struct rte_ring		*req;		/* producer -> storage thread */
	struct rte_ring		*done;		/* storage thread -> producer */
	struct commit_req	*pool;
	struct commit_req	**free;		/* free stack, producer only */
	unsigned		nfree;
	unsigned		depth;
	struct commit		*c;
};

struct hist {
	_Atomic uint64_t	b[HIST_BUCKETS];
	_Atomic uint64_t	max;
	_Atomic uint64_t	sum;
};

struct commit {
	struct db		*db;
	struct commit_producer	*prod;
	unsigned		nprod;
	unsigned		burst;
	bool			nosync;
	uint64_t		sync_gap_us;	/* 0: none (or nosync) */
	void			(*notify)(void *arg, unsigned producer);
	void			*notify_arg;
	pthread_t		thread;
	bool			running;
	atomic_bool		stop;
	atomic_bool		sleeping;	/* blocked on wake_fd, or about to */
	int			wake_fd;

	/* storage thread only */
	rocksdb_writebatch_t	*wb;
	struct commit_req	**reqs;		/* the group being built */
	unsigned		*span;		/* per producer: how many in the group */
	uint64_t		next_seq;
	uint64_t		last_ts_ms;	/* time of the event before next_seq */
	uint64_t		(*clock_ms)(void);
	unsigned		rr;		/* producer to drain first (fairness) */
	uint64_t		last_sync_us;	/* start of the last fsync'd group */

	/* written by the storage thread, read by anyone */
	_Atomic uint64_t	durable_seq;
	_Atomic uint64_t	groups;
	_Atomic uint64_t	requests;
	_Atomic uint64_t	failed;
	_Atomic uint64_t	gap_waits;	/* sleeps for the sync interval */
	struct hist		batch;
	struct hist		lat_us;
};

/* ---- histogram: 4 sub-buckets per power of two, so within 25 % ---- */

static unsigned
bucket_of(uint64_t v)
{
	unsigned msb;

	if (v < 4)
		return (unsigned)v;
	msb = 63 - (unsigned)__builtin_clzll(v);
	return (msb - 1) * 4 + (unsigned)((v >> (msb - 2)) & 3);
}

static uint64_t
bucket_high(unsigned b)
{
	unsigned msb, sub;

	if (b < 4)
		return b;
	msb = b / 4 + 1;
	sub = b % 4;
	return ((uint64_t)(4 + sub) << (msb - 2)) + ((uint64_t)1 << (msb - 2)) - 1;
}

static void
hist_add(struct hist *h, uint64_t v)
{
	atomic_fetch_add_explicit(&h->b[bucket_of(v)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
	if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
		atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

/* Upper bound of the bucket holding the <pct>th percentile, capped at max. */
static uint64_t
hist_pct(const struct hist *h, uint64_t total, unsigned pct)
{
	uint64_t want = (total * pct + 99) / 100, seen = 0;
	uint64_t max = atomic_load_explicit(&h->max, memory_order_relaxed);

	if (total == 0)
		return 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += atomic_load_explicit(&h->b[b], memory_order_relaxed);
		if (seen >= want)
			return bucket_high(b) < max ? bucket_high(b) : max;
	}
	return max;
}

/* ---- rings and producers (boot) ---- */

static struct rte_ring *
ring_new(const char *name, unsigned count)
{
	/* With RING_F_EXACT_SZ the slot array is the next power of two above
	 * <count>; rte_ring_get_memsize() does not know the flag. EXACT_SZ:
	 * the ring holds exactly <count>, the pool size, so a completion
	 * always finds room. */
	return ring_alloc(name, rte_ring_get_memsize(rte_align32pow2(count + 1)), count,
			  RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
}

static void
producer_fini(struct commit_producer *p)
{
	free(p->req);
	free(p->done);
	free(p->pool);
	free(p->free);
}

static int
producer_init(struct commit_producer *p, unsigned i, unsigned depth)
{
	char name[RTE_RING_NAMESIZE];

	p->depth = depth;
	snprintf(name, sizeof(name), "commit_req%u", i);
	p->req = ring_new(name, depth);
	snprintf(name, sizeof(name), "commit_done%u", i);
	p->done = ring_new(name, depth);
	p->pool = calloc(depth, sizeof(*p->pool));
	p->free = calloc(depth, sizeof(*p->free));
	if (p->req == NULL || p->done == NULL || p->pool == NULL || p->free == NULL) {
		producer_fini(p);
		return -ENOMEM;
	}
	for (unsigned k = 0; k < depth; k++) {
		p->pool[k].owner_ = p;
		p->free[k] = &p->pool[depth - 1 - k];
	}
	p->nfree = depth;
	return 0;
}

/* ---- producer side (lcores) ---- */

struct commit_producer *
commit_producer(struct commit *c, unsigned i)
{
	return i < c->nprod ? &c->prod[i] : NULL;
}

struct commit_req *
commit_req_get(struct commit_producer *p)
{
	struct commit_req *r;

	if (p->nfree == 0)
		return NULL;
	r = p->free[--p->nfree];
	memset(r, 0, offsetof(struct commit_req, owner_));
	return r;
}

void
commit_req_put(struct commit_producer *p, struct commit_req *r)
{
	if (r == NULL)
		return;
	p->free[p->nfree++] = r;
}

static void
wake(struct commit *c)
{
	static const uint64_t one = 1;

	/* Pairs with the fence in storage_main: either it sees our requests
	 * after announcing sleep, or we see the announcement. */
	atomic_thread_fence(memory_order_seq_cst);
	/* A failed write is EAGAIN: a wake-up is pending anyway. */
	if (atomic_load_explicit(&c->sleeping, memory_order_relaxed))
		(void)!write(c->wake_fd, &one, sizeof(one));
}

unsigned
commit_submit(struct commit_producer *p, struct commit_req **reqs, unsigned n)
{
	unsigned got = rte_ring_sp_enqueue_burst(p->req, (void **)reqs, n, NULL);

	if (got > 0)
		wake(p->c);
	return got;
}

unsigned
commit_poll(struct commit_producer *p, struct commit_req **reqs, unsigned n)
{
	return rte_ring_sc_dequeue_burst(p->done, (void **)reqs, n, NULL);
}

unsigned
commit_done_count(struct commit_producer *p)
{
	return rte_ring_count(p->done);
}

uint64_t
commit_durable_seq(const struct commit *c)
{
	return atomic_load_explicit(&c->durable_seq, memory_order_acquire);
}

void
commit_stats_get(const struct commit *c, struct commit_stats *st)
{
	uint64_t sum = 0;

	memset(st, 0, sizeof(*st));
	st->groups = atomic_load_explicit(&c->groups, memory_order_relaxed);
	st->requests = atomic_load_explicit(&c->requests, memory_order_relaxed);
	st->failed = atomic_load_explicit(&c->failed, memory_order_relaxed);
	st->sync_waits = atomic_load_explicit(&c->gap_waits, memory_order_relaxed);
	st->durable_seq = commit_durable_seq(c);
	st->batch_mean = st->groups ? (double)st->requests / (double)st->groups : 0.0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		sum += atomic_load_explicit(&c->batch.b[b], memory_order_relaxed);
	st->batch_p50 = hist_pct(&c->batch, sum, 50);
	st->batch_p99 = hist_pct(&c->batch, sum, 99);
	st->batch_max = atomic_load_explicit(&c->batch.max, memory_order_relaxed);
	st->lat_p50_us = hist_pct(&c->lat_us, sum, 50);
	st->lat_p99_us = hist_pct(&c->lat_us, sum, 99);
	st->lat_max_us = atomic_load_explicit(&c->lat_us.max, memory_order_relaxed);
	/* Cumulative counts at 2^(k+COMMIT_LAT_LE0) - 1 us: each is the upper
	 * bound of one of our buckets, so the counts are exact. */
	for (unsigned b = 0, k = 0; b < HIST_BUCKETS; b++) {
		uint64_t v = atomic_load_explicit(&c->lat_us.b[b], memory_order_relaxed);

		while (k < COMMIT_LAT_BUCKETS && bucket_high(b) > commit_lat_le_us(k))
			k++;
		for (unsigned j = k; j < COMMIT_LAT_BUCKETS; j++)
			st->lat_le[j] += v;
		st->lat_count += v;
	}
	st->lat_sum_us = atomic_load_explicit(&c->lat_us.sum, memory_order_relaxed);
}

/* ---- storage thread ---- */

/* Dequeues up to c->burst requests, round-robin over producers. */
static unsigned
gather(struct commit *c)
{
	unsigned n = 0;

	for (unsigned k = 0; k < c->nprod; k++) {
		unsigned i = (c->rr + k) % c->nprod;

		c->span[i] = rte_ring_sc_dequeue_burst(c->prod[i].req, (void **)&c->reqs[n],
						       c->burst - n, NULL);
		n += c->span[i];
	}
	c->rr = (c->rr + 1) % c->nprod;
	return n;
}

static bool
req_valid(const struct commit_req *r)
{
	struct wal_rec w = {
		.type = r->op == COMMIT_POST ? WAL_EV_CHAT : r->ev,
		.ts_ms = r->ts_ms,
		.room_uri_len = r->room_uri_len,
		.user_len = r->user_len,
		.content_len = r->content_len,
	};

	if (r->op == COMMIT_REPLICA_TRUNCATE)
		return r->room_seq != 0 && r->room_seq != UINT64_MAX;
	if (r->op != COMMIT_POST && r->op != COMMIT_EVENT && r->op != COMMIT_REPLICA)
		return false;
	if (wal_encoded_len(&w) == 0)
		return false;
	if (r->op == COMMIT_REPLICA && (r->room_seq == 0 || r->room_seq == UINT64_MAX))
		return false;
	if (r->op != COMMIT_EVENT && r->logged) {
		struct history_rec h = {
			.author_len = r->user_len,
			.body_len = r->body_len,
			.nfiles = r->nfiles,
		};

		if (r->room_seq == 0 || r->room_seq == UINT64_MAX || r->nfiles > HISTORY_FILES_MAX)
			return false;
		for (unsigned i = 0; i < r->nfiles; i++)
			h.file_lens[i] = r->file_lens[i];
		if (history_encoded_len(&h) == 0)
			return false;
	}
	return true;
}

void
commit_replica_key(uint8_t key[COMMIT_REPLICA_KEY_LEN], const uint8_t room[HISTORY_ROOM_RAW],
		   uint64_t seq)
{
	memcpy(key, "rcmp/", 5);
	memcpy(key + 5, room, HISTORY_ROOM_RAW);
	for (int i = 0; i < 8; i++)
		key[5 + HISTORY_ROOM_RAW + i] = (uint8_t)(seq >> (56 - 8 * i));
}

ssize_t
commit_replica_home(const void *val, size_t len, uint32_t *home)
{
	const uint8_t *v = val;
	size_t wl;

	*home = 0;
	if (len < WAL_HEADER_LEN)
		return -EBADMSG;
	wl = be_get32(v + 4);
	if (wl == len)
		return (ssize_t)wl;
	if (wl + 4 != len)
		return -EBADMSG;
	*home = be_get32(v + wl);
	return (ssize_t)wl;
}

/* A replica's copy: history (or the seq mark) and the compliance event
 * apart (commit.h COMMIT_REPLICA). */
static int
put_replica(struct commit *c, struct commit_req *r, const struct wal_rec *w)
{
	uint8_t key[COMMIT_REPLICA_KEY_LEN];
	size_t len = wal_encoded_len(w);
	void *buf;
	int rc;

	if (r->logged) {
		struct history_rec h = {
			.ts_ms = r->ts_ms, .author = r->user, .author_len = r->user_len,
			.body = r->body, .body_len = r->body_len,
		};

		rc = history_batch_put(c->db, c->wb, r->room, r->room_seq, &h);
	} else {
		rc = history_batch_mark(c->db, c->wb, r->room, r->room_seq);
	}
	if (rc != 0)
		return rc;
	buf = malloc(len + 4);
	if (buf == NULL)
		return -ENOMEM;
	if (wal_encode(0, w, buf, len) < 0) {
		free(buf);
		return -EINVAL;
	}
	be_put32((uint8_t *)buf + len, r->home_node);
	commit_replica_key(key, r->room, r->room_seq);
	rocksdb_writebatch_put_cf(c->wb, db_cf(c->db, DB_CF_META), (const char *)key, sizeof(key),
				  buf, len + 4);
	free(buf);
	return 0;
}

/* Adds one valid request to the batch under <seq>. 0 or -ENOMEM. */
static int
put_req(struct commit *c, struct commit_req *r, uint64_t seq)
{
	struct wal_rec w = {
		.type = r->op == COMMIT_POST ? WAL_EV_CHAT : r->ev,
		.ts_ms = r->ts_ms,
		.msg_id = r->op == COMMIT_POST ? r->room_seq : 0,
		.room_uri = r->room_uri,
		.room_uri_len = r->room_uri_len,
		.user = r->user,
		.user_len = r->user_len,
		.content = r->content,
		.content_len = r->content_len,
	};
	int rc;

	memcpy(w.room, r->room, WAL_ROOM_RAW);
	if (r->op == COMMIT_REPLICA_TRUNCATE) {
		uint8_t from[COMMIT_REPLICA_KEY_LEN], to[COMMIT_REPLICA_KEY_LEN];
		uint8_t hfrom[HISTORY_KEY_LEN], hto[HISTORY_KEY_LEN];
		uint8_t vkey[COMMIT_VOID_KEY_LEN], vval[8];

		history_key(hfrom, r->room, r->room_seq);
		history_key(hto, r->room, UINT64_MAX);
		rocksdb_writebatch_delete_range_cf(c->wb, db_cf(c->db, DB_CF_HISTORY),
						   (const char *)hfrom, sizeof(hfrom),
						   (const char *)hto, sizeof(hto));
		commit_replica_key(from, r->room, r->room_seq);
		commit_replica_key(to, r->room, UINT64_MAX);
		rocksdb_writebatch_delete_range_cf(c->wb, db_cf(c->db, DB_CF_META),
						   (const char *)from, sizeof(from),
						   (const char *)to, sizeof(to));
		/* Every event logged so far has a seq below c->next_seq. */
		memcpy(vkey, COMMIT_VOID_PREFIX, 6);
		memcpy(vkey + 6, r->room, HISTORY_ROOM_RAW);
		be_put64(vkey + 6 + HISTORY_ROOM_RAW, c->next_seq);
		be_put64(vval, r->room_seq);
		rocksdb_writebatch_put_cf(c->wb, db_cf(c->db, DB_CF_META), (const char *)vkey,
					  sizeof(vkey), (const char *)vval, sizeof(vval));
		return 0;
	}
	if (r->op == COMMIT_REPLICA) {
		w.msg_id = r->room_seq;
		return put_replica(c, r, &w);
	}
	if (r->op == COMMIT_POST && r->logged) {
		struct history_rec h = {
			.ts_ms = r->ts_ms,
			.author = r->user,
			.author_len = r->user_len,
			.body = r->body,
			.body_len = r->body_len,
			.nfiles = r->nfiles,
		};

		for (unsigned i = 0; i < r->nfiles; i++) {
			h.files[i] = r->files[i];
			h.file_lens[i] = r->file_lens[i];
		}
		rc = history_batch_put(c->db, c->wb, r->room, r->room_seq, &h);
		if (rc != 0)
			return rc;
	} else if (r->op == COMMIT_POST && r->room_seq != 0) {
		/* No history: only the room's seq, so ids go on after a restart. */
		rc = history_batch_mark(c->db, c->wb, r->room, r->room_seq);
		if (rc != 0)
			return rc;
	}
	return wal_batch_put(c->db, c->wb, seq, &w);
}

/* Builds, writes and completes one group of <n> requests. */
static void
commit_group(struct commit *c, unsigned n)
{
	uint64_t seq0 = c->next_seq, ts0 = c->last_ts_ms, t0, now_ms, failed = 0;
	unsigned k = 0, copies = 0;
	int rc = 0;

	t0 = clock_mono_us();
	c->last_sync_us = t0;
	now_ms = c->clock_ms();
	rocksdb_writebatch_clear(c->wb);
	for (unsigned i = 0; i < n; i++) {
		struct commit_req *r = c->reqs[i];

		r->wal_seq = 0;
		if (!req_valid(r)) {
			r->status = -EINVAL;
			continue;
		}
		r->status = 0;
		if (r->op == COMMIT_REPLICA || r->op == COMMIT_REPLICA_TRUNCATE) {
			rc = put_req(c, r, 0);
			if (rc != 0)
				break;
			copies++;
			continue;
		}
		r->wal_seq = c->next_seq;
		r->ts_ms = now_ms > c->last_ts_ms ? now_ms : c->last_ts_ms;
		c->last_ts_ms = r->ts_ms;
		rc = put_req(c, r, c->next_seq);
		if (rc != 0)
			break;
		c->next_seq++;
	}
	if (rc == 0 && (c->next_seq != seq0 || copies > 0))
		rc = db_write(c->db, c->wb, !c->nosync);
	if (rc != 0) {
		/* Nothing of this group is on disk: reuse its seqs. */
		c->next_seq = seq0;
		c->last_ts_ms = ts0;
		for (unsigned i = 0; i < n; i++) {
			if (c->reqs[i]->status == 0) {
				c->reqs[i]->status = rc;
				c->reqs[i]->wal_seq = 0;
			}
		}
	} else {
		atomic_store_explicit(&c->durable_seq, c->next_seq - 1, memory_order_release);
	}
	hist_add(&c->lat_us, clock_mono_us() - t0);
	hist_add(&c->batch, n);

	for (unsigned i = 0; i < n; i++)
		failed += c->reqs[i]->status != 0;
	/* Spans are in gather order: producer rr-1, rr, ... (rr advanced). */
	for (unsigned j = 0; j < c->nprod; j++) {
		unsigned p = (c->rr + c->nprod - 1 + j) % c->nprod;
		unsigned got;

		if (c->span[p] == 0)
			continue;
		got = rte_ring_sp_enqueue_burst(c->prod[p].done, (void **)&c->reqs[k], c->span[p],
						NULL);
		BUG_ON(got != c->span[p]);	/* ring size == pool size */
		if (got != c->span[p])
			LOG(ERR, STORAGE, "completion ring %u full: %u completions lost", p,
			    c->span[p] - got);
		k += c->span[p];
		if (c->notify != NULL)
			c->notify(c->notify_arg, p);
	}
	atomic_fetch_add_explicit(&c->groups, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->requests, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->failed, failed, memory_order_relaxed);
}

/* Requests wait in a producer's ring. */
static bool
pending(const struct commit *c)
{
	for (unsigned i = 0; i < c->nprod; i++)
		if (!rte_ring_empty(c->prod[i].req))
			return true;
	return false;
}

/* With a sync interval: when requests wait and the last fsync'd group
 * started less than the interval ago, sleeps for the rest of it. */
static void
wait_sync_gap(struct commit *c)
{
	uint64_t now, due;
	struct timespec ts;

	if (c->sync_gap_us == 0)
		return;
	now = clock_mono_us();
	due = c->last_sync_us + c->sync_gap_us;
	if (now >= due || !pending(c))
		return;
	ts.tv_sec = (time_t)((due - now) / 1000000);
	ts.tv_nsec = (long)((due - now) % 1000000) * 1000;
	nanosleep(&ts, NULL);
	atomic_fetch_add_explicit(&c->gap_waits, 1, memory_order_relaxed);
}

static void *
storage_main(void *arg)
{
	struct commit *c = arg;
	const struct timespec idle = { 0, IDLE_NS };
	uint64_t spin_ns = IDLE_SPIN_NS, t_block;
	unsigned n, naps = 0;

	for (;;) {
		bool stopping = atomic_load_explicit(&c->stop, memory_order_acquire);

		if (!stopping)
			wait_sync_gap(c);
		n = gather(c);
		if (n > 0) {
			if (naps > 0)
				spin_ns = IDLE_SPIN_NS;	/* a nap caught it */
			commit_group(c, n);
			naps = 0;
			continue;
		}
		/* Empty after seeing stop: producers had stopped before stop
		 * was set, so nothing more can arrive. */
		if (stopping)
			break;
		if (++naps * (uint64_t)IDLE_NS < spin_ns) {
			nanosleep(&idle, NULL);
			continue;
		}
		atomic_store_explicit(&c->sleeping, true, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (!pending(c) && !atomic_load(&c->stop)) {
			struct pollfd pfd = { .fd = c->wake_fd, .events = POLLIN };
			uint64_t v;

			t_block = clock_mono_us();
			if (poll(&pfd, 1, SLEEP_MS) > 0)
				(void)!read(c->wake_fd, &v, sizeof(v));
			if ((clock_mono_us() - t_block) * 1000 <= IDLE_SPIN_NS)
				spin_ns = IDLE_SPIN_NS;
			else
				spin_ns = spin_ns / 2 >= IDLE_NS ? spin_ns / 2 : 0;
		}
		atomic_store_explicit(&c->sleeping, false, memory_order_relaxed);
		naps = 0;
	}
	return NULL;
}

/* ---- life cycle (boot) ---- */

/* The time of the newest stored event (below <next>), 0 when the log is
 * empty or trimmed past it. 0 or a negative errno. */
static int
last_ts(struct db *db, uint64_t next, uint64_t *ts)
{
	struct wal_iter *it;
	struct wal_rec rec;
	int rc = 0;

	*ts = 0;
	if (next <= 1)
		return 0;
	it = wal_iter_open(db, next - 1, &rc);
	if (it == NULL)
		return rc ? rc : -ENOMEM;
	rc = wal_iter_next(it, &rec);
	if (rc == 1)
		*ts = rec.ts_ms;
	wal_iter_close(it);
	return rc < 0 ? rc : 0;
}

struct commit *
commit_create(struct db *db, const struct commit_config *cfg, int *err)
{
	struct commit *c;
	unsigned i;
	int rc;

	if (cfg->nproducers == 0 || cfg->nproducers > COMMIT_PRODUCERS_MAX || cfg->depth == 0 ||
	    cfg->depth > (1u << 20) || cfg->burst > COMMIT_BURST_MAX) {
		*err = -EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	c->db = db;
	c->burst = cfg->burst ? cfg->burst : COMMIT_BURST_MAX;
	c->nosync = cfg->durability_unsafe_no_fsync;
	c->sync_gap_us = c->nosync ? 0 : cfg->sync_interval_us;
	c->notify = cfg->notify;
	c->notify_arg = cfg->notify_arg;
	c->nprod = cfg->nproducers;
	c->clock_ms = cfg->clock_ms ? cfg->clock_ms : clock_real_ms;
	rc = wal_next_seq(db, &c->next_seq);
	if (rc == 0)
		rc = last_ts(db, c->next_seq, &c->last_ts_ms);
	if (rc != 0)
		goto out_free_c;
	atomic_store(&c->durable_seq, c->next_seq - 1);
	c->prod = calloc(c->nprod, sizeof(*c->prod));
	c->reqs = calloc(c->burst, sizeof(*c->reqs));
	c->span = calloc(c->nprod, sizeof(*c->span));
	if (c->prod == NULL || c->reqs == NULL || c->span == NULL) {
		rc = -ENOMEM;
		goto out_free_arrays;
	}
	for (i = 0; i < c->nprod; i++) {
		rc = producer_init(&c->prod[i], i, cfg->depth);
		if (rc != 0)
			goto out_free_producers;
		c->prod[i].c = c;
	}
	c->wb = rocksdb_writebatch_create();
	c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->wake_fd == -1) {
		rc = -errno;
		goto out_free_wb;
	}
	if (c->nosync)
		LOG(WARNING, STORAGE, "durability_unsafe_no_fsync is on: posts are shown before "
		    "they are on disk and a power cut can lose them. For benchmarks only.");
	rc = -pthread_create(&c->thread, NULL, storage_main, c);
	if (rc != 0)
		goto out_close_fd;
	pthread_setname_np(c->thread, "parley-storage");
	c->running = true;
	return c;

out_close_fd:
	close(c->wake_fd);
out_free_wb:
	rocksdb_writebatch_destroy(c->wb);
out_free_producers:
	while (i-- > 0)
		producer_fini(&c->prod[i]);
out_free_arrays:
	free(c->prod);
	free(c->reqs);
	free(c->span);
out_free_c:
	free(c);
	*err = rc;
	return NULL;
}

void
commit_stop(struct commit *c)
{
	if (c == NULL || !c->running)
		return;
	atomic_store_explicit(&c->stop, true, memory_order_release);
	wake(c);
	pthread_join(c->thread, NULL);
	c->running = false;
}

void
commit_destroy(struct commit *c)
{
	if (c == NULL)
		return;
	commit_stop(c);
	for (unsigned i = 0; i < c->nprod; i++)
		producer_fini(&c->prod[i]);
	rocksdb_writebatch_destroy(c->wb);
	close(c->wake_fd);
	free(c->prod);
	free(c->reqs);
	free(c->span);
	free(c);
}
