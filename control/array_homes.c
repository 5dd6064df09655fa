/* The array's side of room homes (homes.h): when this node may count
 * itself a room's home (its lease surely valid by its own clock), the guard
 * thread that stops the homes the moment that ends, the array thread's
 * turn over the homes, and the room-homes calls of array.h. The array's
 * state is array_int.h's. */
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "control/array.h"
#include "control/array_int.h"
#include "control/etcd.h"
#include "control/homes.h"
#include "control/place.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/engine/engine.h"
#include "storage/catalog.h"

#define GUARD_MS		100	/* array_guard_thread checks the lease this often */

/* This node may count itself the home of rooms: its lease is surely valid
 * for a while yet by its own clock (homes.h). The margin covers a turn
 * (the table follows at the next one) and clock rates. */
static bool
lease_fresh(struct array *a)
{
	uint64_t ttl_ms = (uint64_t)a->conf.lease_ttl_s * 1000;
	uint64_t margin = ARRAY_PUBLISH_MS + ttl_ms / 10;

	if (margin > ttl_ms / 2)
		margin = ttl_ms / 2;
	return atomic_load(&a->lease_pub) != 0 && atomic_load(&a->registered) &&
	       array_now_ns(CLOCK_MONOTONIC) / 1000000 + margin < atomic_load(&a->lease_until_ms);
}

static bool
may_home(struct array *a)
{
	return a->lease != 0 && lease_fresh(a);
}

/* Guard thread: the array thread learns that its lease runs out only
 * between etcd requests, and each may wait [array] timeout_ms for an etcd
 * that is gone (a keepalive, the placement read, the homes read: longer
 * than may_home's margin; test_partition saw the new home claim a room a
 * second before the old one stopped). This thread checks the lease's time
 * every GUARD_MS and stops the homes at once (homes_stop_homing). */
void *
array_guard_thread(void *arg)
{
	struct array *a = arg;

	for (;;) {
		struct pollfd p = { .fd = a->stop_fd, .events = POLLIN };
		array_republish_fn *fn;

		if (poll(&p, 1, GUARD_MS) > 0)
			break;
		if (lease_fresh(a) || !homes_stop_homing(a->homes))
			continue;
		fn = atomic_load(&a->republish);
		if (fn != NULL)
			fn(atomic_load(&a->republish_arg));
	}
	return NULL;
}

/* Room homes: read, claim what this node wins, and have the room table
 * republished when they changed (homes.h). */
void
array_homes_step(struct array *a)
{
	const struct place_tab *t = &a->place;
	struct homes_cand cand[PLACE_MAX];
	array_republish_fn *fn;
	unsigned n = 0;
	char err[1024];
	bool changed;
	int rc = 0;

	for (uint32_t i = 0; t->valid && i < t->n; i++) {
		cand[n].node_id = t->v[i].node_id;
		cand[n].busy = t->v[i].busy;
		cand[n].draining = t->v[i].draining;
		n++;
	}
	if (atomic_load(&a->lost) && may_home(a)) {
		/* etcd is away: the homes read last stay as they are. */
		return;
	}
	/* Nodes started together: the first waits for the others before it
	 * claims, so the rooms spread (homes stay where they are once
	 * claimed). */
	if (array_now_ns(CLOCK_REALTIME) / 1000000 < a->started_ms + a->conf.claim_delay_ms)
		n = 0;
	changed = homes_turn(a->homes, a->sess, a->lease, t->valid && may_home(a),
			     !engine_accepting(a->e), fanout_repl_held(a->e) == 0, cand, n, &rc,
			     err, sizeof(err));
	/* The lease may have run out while the turn waited for etcd (its
	 * <may_home> is from before): the guard's verdict stands. */
	if (!may_home(a))
		changed = homes_stop_homing(a->homes) || changed;
	if (!changed && rc == 0)
		return;
	if (rc != 0)
		LOG(DEBUG, ARRAY, "room homes: %s", err);
	fn = atomic_load(&a->republish);
	if (fn != NULL)
		fn(atomic_load(&a->republish_arg));
}

void
array_set_republish(struct array *a, array_republish_fn *fn, void *arg)
{
	atomic_store(&a->republish_arg, arg);
	atomic_store(&a->republish, fn);
	array_kick(a);
}

void
array_fill_homes(struct array *a, struct roomtab *t)
{
	/* A room with no home yet: claim it now rather than next second. */
	if (homes_fill(a->homes, t))
		array_kick(a);
}

int
array_homes_read(struct array *a, struct etcd *e, char *err, size_t errlen)
{
	return homes_read(a->homes, e, err, errlen);
}

json_t *
array_home_op(struct array *a, const char *room_id)
{
	struct place_tab *t = &a->place;
	struct homes_cand cand[PLACE_MAX];
	int64_t leases[PLACE_MAX];
	uint8_t raw[CATALOG_ID_RAW];
	char key[ARRAY_KEY_MAX], val[128];
	uint32_t id = 0;
	unsigned n;

	if (catalog_id_pack(room_id, raw) != 0)
		return NULL;
	for (;;) {
		uint32_t s = atomic_load_explicit(&t->seq, memory_order_acquire);

		if (s & 1)
			continue;
		n = 0;
		for (uint32_t i = 0; t->valid && i < t->n && i < PLACE_MAX; i++) {
			cand[n].node_id = t->v[i].node_id;
			cand[n].busy = t->v[i].busy;
			cand[n].draining = t->v[i].draining || t->v[i].lease == 0;
			leases[n] = t->v[i].lease;
			n++;
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&t->seq, memory_order_relaxed) == s)
			break;
	}
	id = homes_winner(raw, cand, n);
	for (unsigned i = 0; id != 0 && i < n; i++)
		if (cand[i].node_id == id) {
			snprintf(key, sizeof(key), "%s/homes/%s", a->prefix, room_id);
			snprintf(val, sizeof(val), "{\"node\":%u,\"room\":\"%s\"}", id, room_id);
			return etcd_op_put_lease(key, val, strlen(val), leases[i]);
		}
	return NULL;
}
