#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "storage/commit.h"
#include "storage/db.h"
#include "storage/history.h"
#include "storage/wal.h"
#include "dbfixture.h"

#define PER_PRODUCER	5000
#define NPROD		2
#define SUBMIT_BURST	16


TestSuite(commit, .init = setup, .fini = teardown);

static const char uri[] = "ma-chan://example.com/5b0c7c1e-0000-4000-8000-000000000001";
static const char author[] = "sip:alice@example.com";

/* What one producer thread sends and what came back. Message i of producer
 * p is room p's seq i + 1, body "p<p> m<i>". */
struct prod_run {
	struct commit_producer	*p;
	unsigned		idx;
	unsigned		count;
	char			(*bodies)[32];
	uint64_t		*seq_of;	/* wal seq per message, 0 = none yet */
	unsigned		*completions;	/* per message */
	uint64_t		last_seq;	/* seqs must rise in completion order */
	bool			order_ok;
	unsigned		failed;
};

static void
fill(struct prod_run *r, struct commit_req *q, unsigned i)
{
	q->op = COMMIT_POST;
	q->logged = true;
	q->room[0] = (uint8_t)(0xa0 + r->idx);
	q->room_seq = i + 1;
	q->ts_ms = 1700000000000ull + i;
	q->room_uri = uri;
	q->room_uri_len = sizeof(uri) - 1;
	q->user = author;
	q->user_len = sizeof(author) - 1;
	q->body = r->bodies[i];
	q->body_len = strlen(r->bodies[i]);
	q->content = r->bodies[i];
	q->content_len = q->body_len;
	q->cookie = (void *)(uintptr_t)i;
}

static unsigned
reap(struct prod_run *r)
{
	struct commit_req *done[64];
	unsigned n = commit_poll(r->p, done, 64);

	for (unsigned k = 0; k < n; k++) {
		unsigned i = (unsigned)(uintptr_t)done[k]->cookie;

		r->completions[i]++;
		if (done[k]->status != 0) {
			r->failed++;
		} else {
			r->seq_of[i] = done[k]->wal_seq;
			if (done[k]->wal_seq <= r->last_seq)
				r->order_ok = false;
			r->last_seq = done[k]->wal_seq;
		}
		commit_req_put(r->p, done[k]);
	}
	return n;
}

static void *
producer_main(void *arg)
{
	struct prod_run *r = arg;
	unsigned sent = 0, reaped = 0;

	while (reaped < r->count) {
		struct commit_req *b[SUBMIT_BURST];
		unsigned n = 0, took;

		while (sent + n < r->count && n < SUBMIT_BURST) {
			struct commit_req *q = commit_req_get(r->p);

			if (q == NULL)
				break;
			fill(r, q, sent + n);
			b[n++] = q;
		}
		took = commit_submit(r->p, b, n);
		for (unsigned k = took; k < n; k++)
			commit_req_put(r->p, b[k]);	/* not taken: still ours */
		sent += took;
		reaped += reap(r);
		if (n == 0 || took < n)
			sched_yield();
	}
	return NULL;
}

static void
run_init(struct prod_run *r, struct commit *c, unsigned idx, unsigned count)
{
	memset(r, 0, sizeof(*r));
	r->p = commit_producer(c, idx);
	r->idx = idx;
	r->count = count;
	r->bodies = calloc(count, sizeof(*r->bodies));
	r->seq_of = calloc(count, sizeof(*r->seq_of));
	r->completions = calloc(count, sizeof(*r->completions));
	r->order_ok = true;
	for (unsigned i = 0; i < count; i++)
		snprintf(r->bodies[i], sizeof(r->bodies[i]), "p%u m%u", idx, i);
}

static void
run_free(struct prod_run *r)
{
	free(r->bodies);
	free(r->seq_of);
	free(r->completions);
}

/* After reopen: every seq 1..total is in the log, matching what its
 * producer sent, and each room's history is complete. */
static void
verify_durable(struct prod_run *runs, unsigned nruns, uint64_t total)
{
	struct wal_iter *it;
	struct wal_rec rec;
	uint64_t seen = 0;
	int rc, err;

	uint64_t *want_idx = calloc(total + 1, sizeof(*want_idx));	/* seq -> run<<32|msg */

	for (unsigned p = 0; p < nruns; p++)
		for (unsigned i = 0; i < runs[p].count; i++)
			if (runs[p].seq_of[i] != 0)
				want_idx[runs[p].seq_of[i]] = (uint64_t)p << 32 | i | 1ull << 63;
	it = wal_iter_open(db, 1, &err);
	cr_assert_not_null(it);
	while ((rc = wal_iter_next(it, &rec)) == 1) {
		uint64_t w;
		unsigned p, i;

		seen++;
		cr_assert_eq(rec.seq, seen);
		cr_assert_leq(rec.seq, total);
		w = want_idx[rec.seq];
		cr_assert(w >> 63, "seq %llu was never completed", (unsigned long long)rec.seq);
		p = (unsigned)(w >> 32) & 0x7fffffff;
		i = (unsigned)w;
		cr_assert_eq(rec.type, WAL_EV_CHAT);
		cr_assert_eq(rec.msg_id, i + 1);
		cr_assert_eq(rec.content_len, strlen(runs[p].bodies[i]));
		cr_assert(memcmp(rec.content, runs[p].bodies[i], rec.content_len) == 0);
	}
	wal_iter_close(it);
	cr_assert_eq(rc, 0);
	cr_assert_eq(seen, total);
	free(want_idx);

	for (unsigned p = 0; p < nruns; p++) {
		uint8_t room[16] = { (uint8_t)(0xa0 + p) };
		struct history_rec *h;
		uint64_t last;
		ssize_t n;

		cr_assert_eq(history_last_seq(db, room, &last), 0);
		cr_assert_eq(last, runs[p].count);
		n = history_read_last(db, room, 3, &h);
		cr_assert_eq(n, 3);
		cr_assert_eq(h[2].seq, runs[p].count);
		cr_assert_eq(h[2].body_len, strlen(runs[p].bodies[runs[p].count - 1]));
		history_recs_free(h, (size_t)n);
	}
}

Test(commit, two_producers_10k_exactly_once_gap_free_durable, .timeout = 120)
{
	struct commit_config cfg = { .nproducers = NPROD, .depth = 256 };
	struct prod_run runs[NPROD];
	pthread_t th[NPROD];
	struct commit_stats st;
	struct commit *c;
	uint64_t all = 0;
	int err = 0;

	c = commit_create(db, &cfg, &err);
	cr_assert_not_null(c, "%d", err);
	for (unsigned p = 0; p < NPROD; p++) {
		run_init(&runs[p], c, p, PER_PRODUCER);
		cr_assert_eq(pthread_create(&th[p], NULL, producer_main, &runs[p]), 0);
	}
	for (unsigned p = 0; p < NPROD; p++)
		pthread_join(th[p], NULL);
	commit_stats_get(c, &st);
	commit_destroy(c);

	for (unsigned p = 0; p < NPROD; p++) {
		cr_assert_eq(runs[p].failed, 0);
		cr_assert(runs[p].order_ok, "producer %u saw seqs out of order", p);
		for (unsigned i = 0; i < PER_PRODUCER; i++)
			cr_assert_eq(runs[p].completions[i], 1, "p%u m%u completed %u times", p, i,
				     runs[p].completions[i]);
		all += PER_PRODUCER;
	}
	cr_assert_eq(st.requests, all);
	cr_assert_eq(st.durable_seq, all);
	cr_assert_gt(st.batch_mean, 1.0, "mean batch %.2f", st.batch_mean);
	cr_assert_leq(st.lat_p50_us, st.lat_p99_us);
	cr_assert_leq(st.lat_p99_us, st.lat_max_us);
	cr_assert_leq(st.batch_p99, st.batch_max);
	cr_log_info("groups %llu mean %.1f p50 %llu p99 %llu max %llu; fsync p50 %llu us p99 %llu "
		    "max %llu", (unsigned long long)st.groups, st.batch_mean,
		    (unsigned long long)st.batch_p50, (unsigned long long)st.batch_p99,
		    (unsigned long long)st.batch_max, (unsigned long long)st.lat_p50_us,
		    (unsigned long long)st.lat_p99_us, (unsigned long long)st.lat_max_us);

	db_close(db);
	open_db();
	verify_durable(runs, NPROD, all);
	for (unsigned p = 0; p < NPROD; p++)
		run_free(&runs[p]);
}

Test(commit, shutdown_drains_requests_in_flight)
{
	struct commit_config cfg = { .nproducers = 1, .depth = 512 };
	struct commit_req *b[512];
	struct prod_run run;
	struct commit *c;
	unsigned sent = 0;
	int err = 0;

	c = commit_create(db, &cfg, &err);
	cr_assert_not_null(c);
	run_init(&run, c, 0, 512);
	for (unsigned i = 0; i < 512; i++) {
		b[i] = commit_req_get(run.p);
		cr_assert_not_null(b[i]);
		fill(&run, b[i], i);
	}
	cr_assert_null(commit_req_get(run.p));	/* pool exhausted */
	while (sent < 512)
		sent += commit_submit(run.p, b + sent, 512 - sent);
	commit_stop(c);		/* at once: most are still in the ring */

	while (reap(&run) > 0)
		;
	for (unsigned i = 0; i < 512; i++)
		cr_assert_eq(run.completions[i], 1, "m%u", i);
	cr_assert_eq(run.failed, 0);
	commit_destroy(c);

	db_close(db);
	open_db();
	verify_durable(&run, 1, 512);
	run_free(&run);
}

Test(commit, seq_continues_after_restart_and_bad_requests_take_none)
{
	struct commit_config cfg = { .nproducers = 1, .depth = 8,
				     .durability_unsafe_no_fsync = true };
	struct commit_req *q, *done[8];
	struct commit_producer *p;
	struct commit *c;
	unsigned n = 0;
	int err = 0;

	for (int round = 0; round < 2; round++) {
		c = commit_create(db, &cfg, &err);
		cr_assert_not_null(c);
		p = commit_producer(c, 0);
		cr_assert_null(commit_producer(c, 1));

		q = commit_req_get(p);		/* a JOIN: compliance only */
		q->op = COMMIT_EVENT;
		q->ev = WAL_EV_JOIN;
		q->room_uri = uri;
		q->room_uri_len = sizeof(uri) - 1;
		q->user = author;
		q->user_len = sizeof(author) - 1;
		cr_assert_eq(commit_submit(p, &q, 1), 1);
		q = commit_req_get(p);		/* invalid: no event type */
		q->op = COMMIT_EVENT;
		cr_assert_eq(commit_submit(p, &q, 1), 1);
		q = commit_req_get(p);		/* valid again */
		q->op = COMMIT_EVENT;
		q->ev = WAL_EV_PART;
		cr_assert_eq(commit_submit(p, &q, 1), 1);
		commit_stop(c);
		n = commit_poll(p, done, 8);
		cr_assert_eq(n, 3);
		cr_assert_eq(done[0]->status, 0);
		cr_assert_eq(done[0]->wal_seq, 1 + 2 * (uint64_t)round);
		cr_assert_eq(done[1]->status, -EINVAL);
		cr_assert_eq(done[1]->wal_seq, 0);
		cr_assert_eq(done[2]->status, 0);
		cr_assert_eq(done[2]->wal_seq, 2 + 2 * (uint64_t)round);
		cr_assert_eq(commit_durable_seq(c), 2 + 2 * (uint64_t)round);
		for (unsigned k = 0; k < n; k++)
			commit_req_put(p, done[k]);
		commit_destroy(c);
		db_close(db);
		open_db();
	}
}

/* Submits message <i> of <r> alone; it must be taken. */
static void
submit_one(struct prod_run *r, unsigned i)
{
	struct commit_req *q = commit_req_get(r->p);

	cr_assert_not_null(q);
	fill(r, q, i);
	cr_assert_eq(commit_submit(r->p, &q, 1), 1);
}

/* Reaps until <want> completions in all (10 s at most). */
static void
reap_until(struct prod_run *r, unsigned want)
{
	unsigned got = 0;

	for (unsigned i = 0; i < r->count; i++)
		got += r->completions[i];
	for (unsigned t = 0; got < want && t < 10000; t++) {
		const struct timespec ms = { 0, 1000000 };

		got += reap(r);
		if (got < want)
			nanosleep(&ms, NULL);
	}
	cr_assert_eq(got, want);
}

/* [storage] sync_interval_us: posts that come less than the interval after
 * the last fsync'd group wait and share one group; a post after a longer
 * quiet is written at once. The interval (1 s) is far above the spacing of
 * the posts (2 ms), so scheduling noise cannot split the group. With
 * durability_unsafe_no_fsync the interval is not used. */
static void
sync_interval_case(bool nosync)
{
	struct commit_config cfg = { .nproducers = 1, .depth = 16, .sync_interval_us = 1000000,
				     .durability_unsafe_no_fsync = nosync };
	const struct timespec gap = { 0, 2000000 }, past = { 1, 100000000 };
	struct commit_stats st;
	struct prod_run run;
	struct commit *c;
	int err = 0;

	c = commit_create(db, &cfg, &err);
	cr_assert_not_null(c, "err %d", err);
	run_init(&run, c, 0, 7);
	submit_one(&run, 0);
	reap_until(&run, 1);
	for (unsigned i = 1; i <= 5; i++) {
		nanosleep(&gap, NULL);
		submit_one(&run, i);
	}
	reap_until(&run, 6);
	commit_stats_get(c, &st);
	if (nosync) {
		cr_assert_eq(st.sync_waits, 0);
		cr_assert_geq(st.groups, 4, "groups %llu", (unsigned long long)st.groups);
	} else {
		cr_assert_eq(st.groups, 2, "the five spaced posts in one group: groups %llu",
			     (unsigned long long)st.groups);
		cr_assert_eq(st.sync_waits, 1);
	}
	nanosleep(&past, NULL);
	submit_one(&run, 6);
	reap_until(&run, 7);
	commit_stats_get(c, &st);
	if (!nosync) {
		cr_assert_eq(st.groups, 3);
		cr_assert_eq(st.sync_waits, 1, "a post after a quiet longer than the interval "
			     "does not wait");
	}
	cr_assert_eq(run.failed, 0);
	cr_assert(run.order_ok);
	commit_destroy(c);
	if (!nosync) {
		db_close(db);
		open_db();
		verify_durable(&run, 1, 7);
	}
	run_free(&run);
}

Test(commit, sync_interval_groups_posts_that_come_meanwhile, .timeout = 60)
{
	sync_interval_case(false);
}

Test(commit, sync_interval_unused_without_fsync, .timeout = 60)
{
	sync_interval_case(true);
}

Test(commit, rejects_bad_config)
{
	struct commit_config cfg = { .nproducers = 0, .depth = 8 };
	int err = 0;

	cr_assert_null(commit_create(db, &cfg, &err));
	cr_assert_eq(err, -EINVAL);
	cfg.nproducers = 1;
	cfg.depth = 0;
	cr_assert_null(commit_create(db, &cfg, &err));
	cr_assert_eq(err, -EINVAL);
}

/* The storage thread's clock, for the test below: the next value each call. */
static const uint64_t fake_ms[] = { 5000, 7000, 6000, 6500, 9000, 8000, 100 };
static _Atomic unsigned fake_i;

static uint64_t
fake_clock_ms(void)
{
	unsigned i = atomic_fetch_add(&fake_i, 1);

	return fake_ms[i < sizeof(fake_ms) / sizeof(fake_ms[0]) ? i : 6];
}

/* One request, alone in its group: its completion. */
static uint64_t
one_event(struct commit_producer *p, enum wal_event ev)
{
	struct commit_req *q = commit_req_get(p), *done;
	uint64_t ts;

	cr_assert_not_null(q);
	q->op = COMMIT_EVENT;
	q->ev = ev;
	q->ts_ms = 1;		/* what a producer says is not used */
	q->room_uri = uri;
	q->room_uri_len = sizeof(uri) - 1;
	q->user = author;
	q->user_len = sizeof(author) - 1;
	cr_assert_eq(commit_submit(p, &q, 1), 1);
	while (commit_poll(p, &done, 1) == 0)
		sched_yield();
	cr_assert_eq(done->status, 0);
	ts = done->ts_ms;
	commit_req_put(p, done);
	return ts;
}

/* Every event is stamped by the storage thread from one clock, and never
 * earlier than the event before it: a CHAT answered before a PART cannot
 * carry a later time, also when the wall clock steps back, and also across
 * a restart. */
Test(commit, event_times_one_clock_never_back)
{
	static const uint64_t want[] = { 5000, 7000, 7000, 7000, 9000, 9000 };
	struct commit_config cfg = { .nproducers = 1, .depth = 8,
				     .durability_unsafe_no_fsync = true,
				     .clock_ms = fake_clock_ms };
	struct commit *c;
	struct wal_iter *it;
	struct wal_rec rec;
	unsigned n = 0;
	int err = 0;

	atomic_store(&fake_i, 0);
	c = commit_create(db, &cfg, &err);
	cr_assert_not_null(c, "%d", err);
	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(one_event(commit_producer(c, 0), i % 2 ? WAL_EV_PART : WAL_EV_CHAT),
			     want[i], "event %u", i);
	commit_stop(c);
	commit_destroy(c);
	it = wal_iter_open(db, 1, &err);
	cr_assert_not_null(it);
	while (wal_iter_next(it, &rec) == 1) {
		cr_assert_lt(n, 6);
		cr_assert_eq(rec.ts_ms, want[n], "stored event %u", n);
		n++;
	}
	wal_iter_close(it);
	cr_assert_eq(n, 6);

	/* Restarted with the clock far back (100): the log goes on from 9000. */
	c = commit_create(db, &cfg, &err);
	cr_assert_not_null(c, "%d", err);
	cr_assert_eq(one_event(commit_producer(c, 0), WAL_EV_JOIN), 9000);
	commit_stop(c);
	commit_destroy(c);
}
