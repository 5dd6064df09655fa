/* The fan-out across fake lcores (fanout_fixture.h): one order per room
 * under concurrent posters, durable before visible, a full ring, a slow
 * member dropped while the room goes on. */
#include <pthread.h>

#include "fanout_fixture.h"

TestSuite(fanout, .fini = fx_teardown, .timeout = 120);

static unsigned
posts_seen(void)
{
	return atomic_load(&fx.delivered);
}

/* Posts reach nobody before the storage thread made them durable: the home
 * holds them until it polled the completion. */
Test(fanout, durable_before_visible)
{
	const struct roomtab_ent *r;
	struct member *a, *b, *c;
	struct commit_producer *home_prod;
	uint32_t home = 1;

	fx_setup(1024);
	fx_rooms(1, &home, &r);
	a = fx_member(0, "alice");
	b = fx_member(1, "bob");
	c = fx_member(2, "carol");
	fx_join(a, r);
	fx_join(b, r);
	fx_join(c, r);

	cr_assert_eq(fx_post(a, r, "p1"), 0);
	fx_turn(0);		/* origin: to the home's ring */
	fx_turn(1);		/* home: sequenced, handed to the storage thread */
	home_prod = commit_producer(fx.commit, 1);
	/* The storage thread is done with it, but the home has not seen the
	 * completion: the other lcores run and nothing shows anywhere. */
	for (int i = 0; i < 10000 && commit_done_count(home_prod) == 0; i++)
		usleep(1000);
	cr_assert_gt(commit_done_count(home_prod), 0, "the storage thread completed the post");
	for (int i = 0; i < 100; i++) {
		fx_turn(0);
		fx_turn(2);
	}
	cr_assert_eq(posts_seen(), 0, "delivered before the home saw it durable");
	cr_assert_eq(atomic_load(&fx.done), 0, "the author was answered before it was durable");

	fx_pump();
	cr_assert_eq(posts_seen(), 3);
	cr_assert_eq(atomic_load(&fx.done), 1);
	cr_assert_eq(atomic_load(&fx.done_failed), 0);
	cr_assert_eq(atomic_load(&fx.early), 0);
	cr_assert_str_eq(a->log[0], "p1");
	cr_assert_str_eq(b->log[0], "p1");
	cr_assert_str_eq(c->log[0], "p1");
	{
		struct history_rec *recs = NULL;
		ssize_t n = history_read_last(fx.db, r->raw, 10, &recs);

		cr_assert_eq(n, 1, "the post is in the room's history");
		history_recs_free(recs, (size_t)n);
	}
}

/* A home that does not poll: the ring to it fills, the origin stages the
 * rest (counted), refuses new posts once half a stage waits, and everything
 * it accepted is delivered later, in order, once. */
Test(fanout, full_ring)
{
	enum { TRIES = 200 };
	const struct roomtab_ent *r;
	struct member *a, *b;
	uint32_t home = 1;
	unsigned accepted = 0, refused = 0;
	char label[LABEL_MAX];

	fx_setup(64);		/* 63 entries per ring, a 64-entry stage */
	fx_rooms(1, &home, &r);
	a = fx_member(0, "alice");
	b = fx_member(2, "bob");
	fx_join(a, r);
	fx_join(b, r);

	for (unsigned i = 0; i < TRIES; i++) {
		snprintf(label, sizeof(label), "m%u", accepted);
		if (fx_post(a, r, label) == 0)
			accepted++;
		else
			refused++;
		fx_turn(0);	/* lcore 1 never turns meanwhile */
	}
	cr_assert_eq(fanout_ring_count(fx.e, 0, 1), 63, "the ring to the home is full");
	cr_assert_gt(fanout_staged(lc_of(0)), 0, "what did not fit is staged");
	cr_assert_eq(accepted, 63 + 32, "a ring's worth, then half a stage");
	cr_assert_eq(refused, TRIES - accepted);
	cr_assert_eq(fanout_refused(lc_of(0)), refused);
	cr_assert_gt(atomic_load(&lc_of(0)->pub.ctr[CTR_RING_FULL]), 0, "counted");
	cr_assert_eq(fanout_grown(lc_of(0)), 0, "no allocation past the stage");
	cr_assert_eq(posts_seen(), 0);

	fx_pump();
	cr_assert_eq(fanout_staged(lc_of(0)), 0);
	cr_assert_eq(atomic_load(&fx.done), accepted);
	cr_assert_eq(atomic_load(&fx.done_failed), 0);
	cr_assert_eq(a->nlog, accepted, "nothing lost");
	cr_assert_eq(b->nlog, accepted, "nothing lost");
	for (unsigned i = 0; i < accepted; i++) {
		snprintf(label, sizeof(label), "m%u", i);
		cr_assert_str_eq(a->log[i], label, "in order");
		cr_assert_str_eq(b->log[i], label, "in order");
	}
	for (uint32_t l = 0; l < NL; l++)
		cr_assert_eq(fanout_grown(lc_of(l)), 0);
	cr_assert_eq(atomic_load(&fx.early), 0);
	/* And the room goes on as before. */
	cr_assert_eq(fx_post(a, r, "after"), 0);
	fx_pump();
	cr_assert_str_eq(b->log[accepted], "after");
}

/* Overload push-back: an origin with [chat] posts_inflight_max posts on
 * their way refuses more; one whose last post took longer than
 * post_queue_ms from receipt to stored refuses while others still wait, and
 * admits again once they are through. What it accepted arrives, once. */
Test(fanout, bounded_inflight)
{
	const struct roomtab_ent *r;
	struct member *a, *b;
	uint32_t home = 1;
	unsigned accepted = 0;
	char label[LABEL_MAX];

	fx_setup(1024);
	fx.e->conf.posts_inflight_max = 5;
	fx_rooms(1, &home, &r);
	a = fx_member(0, "alice");
	b = fx_member(2, "bob");
	fx_join(a, r);
	fx_join(b, r);

	for (unsigned i = 0; i < 12; i++) {
		snprintf(label, sizeof(label), "m%u", accepted);
		if (fx_post(a, r, label) == 0)
			accepted++;
		fx_turn(0);	/* the home does not turn meanwhile */
	}
	cr_assert_eq(accepted, 5, "as many as posts_inflight_max");
	cr_assert_eq(fanout_refused(lc_of(0)), 7);
	fx_pump();
	cr_assert_eq(b->nlog, 5, "every accepted post arrived");
	cr_assert_eq(atomic_load(&fx.done), 5);

	/* Slow: the next post is stored 800 ms after its receipt. */
	fx.e->conf.posts_inflight_max = 0;
	fx.e->conf.post_queue_ms = 500;
	cr_assert_eq(fx_post(a, r, "slow"), 0);
	fx_turn(0);
	fx_turn(1);
	lc_of(0)->pub.now_real_ms += 800;
	fx_pump();
	cr_assert_eq(atomic_load(&fx.done), 6);
	cr_assert_eq(fx_post(a, r, "next"), 0, "nothing waits: admitted");
	cr_assert_neq(fx_post(a, r, "refused"), 0, "one waits and the last took 800 ms: refused");
	cr_assert_eq(fanout_refused(lc_of(0)), 8);
	fx_pump();		/* "next" is stored at once */
	cr_assert_eq(fx_post(a, r, "again"), 0, "fast again: admitted");
	fx_pump();
	cr_assert_eq(b->nlog, 8, "every accepted post arrived, the refused one did not");
	cr_assert_str_eq(b->log[5], "slow");
	cr_assert_str_eq(b->log[6], "next");
	cr_assert_str_eq(b->log[7], "again");
	cr_assert_eq(atomic_load(&fx.done), 8);
	cr_assert_eq(atomic_load(&fx.done_failed), 0);
}

static void
count_roster(void *arg, const char *uri, uint32_t lcore, bool manager)
{
	(void)uri;
	(void)lcore;
	(void)manager;
	++*(unsigned *)arg;
}

/* A member whose connection stops taking output is dropped (its dialog
 * closes, it parts); the others get every post, in order, and learn that
 * it left. */
Test(fanout, slow_member_dropped)
{
	enum { POSTS = 40, SLOW_AFTER = 5 };
	const struct roomtab_ent *r;
	struct member *a, *fast, *slow, *far;
	uint32_t home = 0;
	unsigned roster = 0;
	char label[LABEL_MAX];

	fx_setup(1024);
	fx_rooms(1, &home, &r);
	a = fx_member(0, "alice");
	fast = fx_member(1, "bob");
	slow = fx_member(1, "slowpoke");
	far = fx_member(2, "carol");
	fx_join(a, r);
	fx_join(fast, r);
	fx_join(slow, r);
	fx_join(far, r);
	cr_assert_eq(fanout_present_count(fx.e, r->raw), 4);
	slow->slow_after = SLOW_AFTER;

	for (unsigned i = 0; i < POSTS; i++) {
		snprintf(label, sizeof(label), "m%u", i);
		cr_assert_eq(fx_post(a, r, label), 0);
		for (uint32_t l = 0; l < NL; l++)
			fx_turn(l);
		fx_drop_slow();
	}
	fx_pump();
	cr_assert(slow->dropped, "slow %u fast %u far %u a %u", slow->nlog, fast->nlog, far->nlog,
		  a->nlog);
	cr_assert_eq(slow->nlog, SLOW_AFTER);
	cr_assert_eq(a->nlog, POSTS);
	cr_assert_eq(fast->nlog, POSTS);
	cr_assert_eq(far->nlog, POSTS);
	for (unsigned i = 0; i < POSTS; i++) {
		snprintf(label, sizeof(label), "m%u", i);
		cr_assert_str_eq(a->log[i], label);
		cr_assert_str_eq(fast->log[i], label);
		cr_assert_str_eq(far->log[i], label);
	}
	/* The home's roster and the shared count lost it; the others were
	 * told (ntc:part naming it). */
	cr_assert_eq(fanout_roster_visit(lc_of(0), r->raw, count_roster, &roster), 3);
	cr_assert_eq(roster, 3);
	cr_assert_eq(fanout_present_count(fx.e, r->raw), 3);
	cr_assert_not_null(strstr(far->last_notice, "part"), "%s", far->last_notice);
	cr_assert_not_null(strstr(far->last_notice, "slowpoke@example.com"));
	cr_assert_not_null(strstr(fast->last_notice, "slowpoke@example.com"));
	cr_assert_eq(atomic_load(&fx.done), POSTS);
	cr_assert_eq(atomic_load(&fx.early), 0);
}

/* ---- concurrent posters: one thread per lcore --------------------------- */

enum { PER_POSTER = 150, NROOMS = 2 };

static const struct roomtab_ent *crooms[NROOMS];
static struct member *cmember[NL][NROOMS];
static _Atomic bool cstop;

static void *
lcore_main(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg;
	unsigned next[NROOMS] = { 0 };
	unsigned seed = me * 7919 + 1;
	char label[LABEL_MAX];

	while (!atomic_load(&cstop)) {
		unsigned k = rand_r(&seed) % NROOMS;

		/* Post now and then, to either room, from this lcore's
		 * member of it; then a loop turn. */
		if (next[k] < PER_POSTER && rand_r(&seed) % 3 == 0) {
			snprintf(label, sizeof(label), "%u.%u", me, next[k]);
			if (fx_post(cmember[me][k], crooms[k], label) == 0)
				next[k]++;
		}
		fx_turn(me);
		if (rand_r(&seed) % 8 == 0)
			sched_yield();
	}
	return NULL;
}

/* Three lcores post to two rooms (homes on different lcores) at once:
 * every member of a room sees the same sequence, every post once, each
 * author's posts in the order sent. */
Test(fanout, one_order_per_room)
{
	const uint32_t homes[NROOMS] = { 0, 2 };
	const unsigned total = NL * PER_POSTER;
	pthread_t th[NL];

	fx_setup(256);
	fx_rooms(NROOMS, homes, crooms);
	for (uint32_t l = 0; l < NL; l++)
		for (unsigned k = 0; k < NROOMS; k++) {
			char user[32];

			snprintf(user, sizeof(user), "u%u-%u", l, k);
			cmember[l][k] = fx_member(l, user);
			fx_join(cmember[l][k], crooms[k]);
		}
	atomic_store(&cstop, false);
	for (uint32_t l = 0; l < NL; l++)
		cr_assert_eq(pthread_create(&th[l], NULL, lcore_main, (void *)(uintptr_t)l), 0);
	for (int i = 0; i < 60000 && posts_seen() < NROOMS * NL * total; i++)
		usleep(1000);
	atomic_store(&cstop, true);
	for (uint32_t l = 0; l < NL; l++)
		pthread_join(th[l], NULL);
	fx_pump();

	cr_assert_eq(atomic_load(&fx.done), NROOMS * total);
	cr_assert_eq(atomic_load(&fx.done_failed), 0);
	cr_assert_eq(atomic_load(&fx.early), 0);
	for (unsigned k = 0; k < NROOMS; k++) {
		const struct member *ref = cmember[0][k];

		cr_assert_eq(ref->nlog, total, "room %u: %u of %u posts", k, ref->nlog, total);
		for (uint32_t l = 1; l < NL; l++) {
			const struct member *mb = cmember[l][k];

			cr_assert_eq(mb->nlog, total);
			for (unsigned i = 0; i < total; i++)
				cr_assert_str_eq(mb->log[i], ref->log[i],
						 "room %u, lcore %u, position %u", k, l, i);
		}
		/* Each author's posts once, in order. */
		{
			unsigned want[NL] = { 0 };

			for (unsigned i = 0; i < total; i++) {
				unsigned who, n;

				cr_assert_eq(sscanf(ref->log[i], "%u.%u", &who, &n), 2);
				cr_assert_lt(who, NL);
				cr_assert_eq(n, want[who], "room %u: %s out of order", k,
					     ref->log[i]);
				want[who]++;
			}
		}
	}
}
