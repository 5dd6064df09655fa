/* Room homes in etcd: see homes.h. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/etcd.h"
#include "control/homes.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/roomtab.h"
#include "storage/catalog.h"

#define KEY_MAX		512
#define BUSY_WEIGHT	3.0	/* a node 100% busy gets a quarter of an idle one's share */

struct home {
	uint8_t		raw[CATALOG_ID_RAW];
	uint32_t	node;
	uint64_t	epoch;		/* the key's create revision */
	uint32_t	replica;	/* <prefix>/replicas/<room> of this epoch, or 0 */
};

/* What this node remembers of a room across turns: the replica it last
 * had, and since when the room has had no home (0: it has one). */
struct memo {
	uint8_t		raw[CATALOG_ID_RAW];
	uint32_t	replica;
	uint64_t	unhomed_ms;
};

struct homes {
	pthread_mutex_t	lock;		/* everything below */
	char		*prefix;
	uint32_t	self;

	struct home	*v;		/* as last read, sorted by raw */
	size_t		n;
	int64_t		rev;		/* etcd's revision when <v> was read */
	bool		may_home;	/* as of the last turn */

	uint8_t		(*rooms)[CATALOG_ID_RAW];	/* the catalog of the last fill, sorted */
	size_t		nrooms;
	bool		have_rooms;	/* a fill happened */

	uint64_t	gen;		/* bumped whenever a fill would write something else */
	uint64_t	filled;		/* gen of the last fill */

	/* Replication (array failover), when the node has peer links. */
	bool		replicate;
	uint32_t	grace_ms;
	struct memo	*memo;		/* sorted by raw; array thread only */
	size_t		nmemo;
	bool		alone;		/* no other live node to keep copies */
	bool		releasing;	/* draining: own rooms are not sequenced */
	uint64_t	releasing_ms;	/* since when */
	unsigned	released;	/* home keys given up by draining */
};

struct homes *
homes_new(const char *prefix, uint32_t self)
{
	struct homes *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->prefix = strdup(prefix);
	if (h->prefix == NULL) {
		free(h);
		return NULL;
	}
	h->self = self;
	h->gen = 1;
	h->grace_ms = 2000;
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

void
homes_free(struct homes *h)
{
	if (h == NULL)
		return;
	pthread_mutex_destroy(&h->lock);
	free(h->memo);
	free(h->v);
	free(h->rooms);
	free(h->prefix);
	free(h);
}

static int
cmp_raw(const void *a, const void *b)
{
	return memcmp(a, b, CATALOG_ID_RAW);
}

static const struct home *
find(const struct home *v, size_t n, const uint8_t raw[CATALOG_ID_RAW])
{
	return n > 0 ? bsearch(raw, v, n, sizeof(*v), cmp_raw) : NULL;
}

uint64_t
homes_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The node that wins room <raw> among <cand>: weighted rendezvous hashing
 * (the highest weight / -ln(u), u uniform in (0,1) from (room, node)). 0
 * when no candidate qualifies. */
static uint32_t
winner_but(const uint8_t raw[CATALOG_ID_RAW], const struct homes_cand *cand, unsigned n,
	   uint32_t but)
{
	uint64_t rh = 0xcbf29ce484222325ULL;
	double best = -1;
	uint32_t id = 0;

	for (unsigned i = 0; i < CATALOG_ID_RAW; i++) {
		rh ^= raw[i];
		rh *= 0x100000001b3ULL;
	}
	for (unsigned i = 0; i < n; i++) {
		double w, u, score;

		if (cand[i].draining || cand[i].node_id == 0 || cand[i].node_id == but)
			continue;
		w = 1.0 / (1.0 + BUSY_WEIGHT * (cand[i].busy < 0 ? 0 : cand[i].busy));
		u = ((double)(homes_mix64(rh ^ homes_mix64(cand[i].node_id)) >> 11) + 0.5) /
		    9007199254740992.0;
		score = w / -log(u);
		if (score > best) {
			best = score;
			id = cand[i].node_id;
		}
	}
	return id;
}

uint32_t
homes_winner(const uint8_t raw[CATALOG_ID_RAW], const struct homes_cand *cand, unsigned n)
{
	return winner_but(raw, cand, n, 0);
}

static bool
live(const struct homes_cand *cand, unsigned n, uint32_t node, bool and_not_draining)
{
	for (unsigned i = 0; i < n; i++)
		if (cand[i].node_id == node)
			return !and_not_draining || !cand[i].draining;
	return false;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The replicas under <prefix>/replicas/: each is {"node":R,"epoch":E},
 * written by the home of epoch E under its lease; set on the homes of
 * <v> whose epoch it names. */
static int
read_replicas(struct homes *h, struct etcd *sess, struct home *v, size_t n, char *err,
	      size_t errlen)
{
	char prefix[KEY_MAX];
	struct etcd_kvs kvs = { 0 };
	size_t plen;
	int rc;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/replicas/", h->prefix);
	rc = etcd_get(sess, prefix, true, &kvs, err, errlen);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < kvs.n; i++) {
		const struct etcd_kv *kv = &kvs.kv[i];
		json_t *o = json_loadb(kv->value ? kv->value : "", kv->value_len, 0, NULL);
		json_int_t node = json_integer_value(json_object_get(o, "node"));
		json_int_t epoch = json_integer_value(json_object_get(o, "epoch"));
		uint8_t raw[CATALOG_ID_RAW];
		struct home *o2;

		json_decref(o);
		if (strlen(kv->key) <= plen || catalog_id_pack(kv->key + plen, raw) != 0 ||
		    node <= 0 || node > UINT32_MAX)
			continue;
		o2 = bsearch(raw, v, n, sizeof(*v), cmp_raw);
		if (o2 != NULL && o2->epoch == (uint64_t)epoch)
			o2->replica = (uint32_t)node;
	}
	etcd_kvs_free(&kvs);
	return 0;
}

/* The homes under <prefix>/homes/ now: a sorted array in *<out>. */
static int
read_homes(struct homes *h, struct etcd *sess, struct home **out, size_t *nout, int64_t *rev,
	   char *err, size_t errlen)
{
	char prefix[KEY_MAX];
	struct etcd_kvs kvs = { 0 };
	struct home *v;
	size_t n = 0, plen;
	int rc;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/homes/", h->prefix);
	rc = etcd_get(sess, prefix, true, &kvs, err, errlen);
	if (rc != 0)
		return rc;
	v = calloc(kvs.n ? kvs.n : 1, sizeof(*v));
	if (v == NULL) {
		etcd_kvs_free(&kvs);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < kvs.n; i++) {
		const struct etcd_kv *kv = &kvs.kv[i];
		json_t *o = json_loadb(kv->value ? kv->value : "", kv->value_len, 0, NULL);
		json_int_t node = json_integer_value(json_object_get(o, "node"));

		json_decref(o);
		if (strlen(kv->key) <= plen || catalog_id_pack(kv->key + plen, v[n].raw) != 0 ||
		    node <= 0 || node > UINT32_MAX || kv->create_revision <= 0) {
			LOG(WARNING, ARRAY, "%s: not a room home (ignored)", kv->key);
			continue;
		}
		v[n].node = (uint32_t)node;
		v[n].epoch = (uint64_t)kv->create_revision;
		n++;
	}
	*rev = kvs.revision;
	etcd_kvs_free(&kvs);
	qsort(v, n, sizeof(*v), cmp_raw);
	if (h->replicate) {
		rc = read_replicas(h, sess, v, n, err, errlen);
		if (rc != 0) {
			free(v);
			return rc;
		}
	}
	*out = v;
	*nout = n;
	return 0;
}

static bool
same_homes(const struct home *a, size_t na, const struct home *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

/* Claims the rooms of <rooms> with no home in <v> that this node wins.
 * How many it created. */
static unsigned
claim(struct homes *h, struct etcd *sess, int64_t lease, const struct home *v, size_t n,
      uint8_t (*rooms)[CATALOG_ID_RAW], size_t nrooms, const struct homes_cand *cand,
      unsigned ncand)
{
	unsigned made = 0;

	for (size_t i = 0; i < nrooms; i++) {
		char id[CATALOG_ID_LEN + 1], key[KEY_MAX], val[128], err[512];
		const struct memo *mo;
		int rc;

		if (find(v, n, rooms[i]) != NULL)
			continue;
		/* Failover: the room's replica holds its copy and takes it at
		 * once; the others give it failover_grace_ms while it is live. */
		mo = h->nmemo > 0 ? bsearch(rooms[i], h->memo, h->nmemo, sizeof(*h->memo),
					     cmp_raw) : NULL;
		if (mo != NULL && mo->replica == h->self && live(cand, ncand, h->self, true)) {
			catalog_id_unpack(rooms[i], id);
			LOG(NOTICE, ARRAY, "room %s: its home is gone; this node, its replica, "
			    "takes it over", id);
		} else {
			if (homes_winner(rooms[i], cand, ncand) != h->self)
				continue;
			if (mo != NULL && mo->replica != 0 && live(cand, ncand, mo->replica, true) &&
			    now_ms() < mo->unhomed_ms + h->grace_ms)
				continue;
		}
		catalog_id_unpack(rooms[i], id);
		snprintf(key, sizeof(key), "%s/homes/%s", h->prefix, id);
		snprintf(val, sizeof(val), "{\"node\":%u,\"room\":\"%s\"}", h->self, id);
		rc = etcd_create(sess, key, val, strlen(val), lease, NULL, err, sizeof(err));
		if (rc == 0) {
			made++;
			LOG(INFO, ARRAY, "room %s: homed here", id);
		} else if (rc != -EEXIST) {
			LOG(WARNING, ARRAY, "room %s: claiming its home: %s", id, err);
			break;
		}
	}
	return made;
}

/* Deletes this node's home keys of rooms gone from the catalog. */
static void
release_gone(struct homes *h, struct etcd *sess, const struct home *v, size_t n,
	     uint8_t (*rooms)[CATALOG_ID_RAW], size_t nrooms)
{
	for (size_t i = 0; i < n; i++) {
		char id[CATALOG_ID_LEN + 1], key[KEY_MAX], err[512];

		if (v[i].node != h->self ||
		    bsearch(v[i].raw, rooms, nrooms, CATALOG_ID_RAW, cmp_raw) != NULL)
			continue;
		catalog_id_unpack(v[i].raw, id);
		snprintf(key, sizeof(key), "%s/homes/%s", h->prefix, id);
		if (etcd_delete(sess, key, false, NULL, err, sizeof(err)) == 0)
			LOG(INFO, ARRAY, "room %s: deleted, its home released", id);
		else
			LOG(WARNING, ARRAY, "room %s: releasing its home: %s", id, err);
	}
}

/* Remembers, for each room of the catalog, the replica it has now (or
 * had when its home went) and since when it has had no home. */
static void
update_memo(struct homes *h, const struct home *v, size_t n, uint8_t (*rooms)[CATALOG_ID_RAW],
	    size_t nrooms)
{
	struct memo *m = calloc(nrooms ? nrooms : 1, sizeof(*m));
	uint64_t now = now_ms();

	if (m == NULL)
		return;
	for (size_t i = 0; i < nrooms; i++) {
		const struct home *o = find(v, n, rooms[i]);
		const struct memo *old = h->memo ? bsearch(rooms[i], h->memo, h->nmemo,
							   sizeof(*h->memo), cmp_raw) : NULL;

		memcpy(m[i].raw, rooms[i], CATALOG_ID_RAW);
		if (o != NULL) {
			m[i].replica = o->replica;
		} else {
			m[i].replica = old ? old->replica : 0;
			m[i].unhomed_ms = old && old->unhomed_ms ? old->unhomed_ms : now;
		}
	}
	free(h->memo);
	h->memo = m;
	h->nmemo = nrooms;
}

/* The home of each room it holds names a replica: the one it has while
 * that one is live and not draining, else the next node in the room's
 * rendezvous order. How many keys it wrote. */
static unsigned
choose_replicas(struct homes *h, struct etcd *sess, int64_t lease, const struct home *v, size_t n,
		const struct homes_cand *cand, unsigned ncand)
{
	unsigned wrote = 0;
	bool alone = true;

	for (unsigned i = 0; i < ncand; i++)
		alone = alone && (cand[i].node_id == h->self || cand[i].draining);
	if (alone && !h->alone)
		LOG(WARNING, ARRAY, "no other live node keeps copies of this node's rooms: posts "
		    "to them are refused or taken unreplicated ([array] alone)");
	else if (!alone && h->alone)
		LOG(NOTICE, ARRAY, "another node is live: this node's rooms are replicated again");
	h->alone = alone;
	for (size_t i = 0; i < n; i++) {
		char id[CATALOG_ID_LEN + 1], key[KEY_MAX], val[128], err[512];
		uint32_t pick;

		if (v[i].node != h->self)
			continue;
		if (v[i].replica != 0 && v[i].replica != h->self &&
		    live(cand, ncand, v[i].replica, true))
			continue;
		pick = winner_but(v[i].raw, cand, ncand, h->self);
		if (pick == 0 || pick == v[i].replica)
			continue;
		catalog_id_unpack(v[i].raw, id);
		snprintf(key, sizeof(key), "%s/replicas/%s", h->prefix, id);
		snprintf(val, sizeof(val), "{\"node\":%u,\"epoch\":%llu}", pick,
			 (unsigned long long)v[i].epoch);
		if (etcd_put(sess, key, val, strlen(val), lease, err, sizeof(err)) == 0) {
			wrote++;
			LOG(INFO, ARRAY, "room %s: replica node %u", id, pick);
		} else {
			LOG(WARNING, ARRAY, "room %s: naming its replica: %s", id, err);
			break;
		}
	}
	return wrote;
}

/* Draining: this node's home keys go, so their replicas claim them at
 * once (they hold everything acknowledged: <settled>). */
static void
release_mine(struct homes *h, struct etcd *sess, const struct home *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char id[CATALOG_ID_LEN + 1], key[KEY_MAX], err[512];

		if (v[i].node != h->self)
			continue;
		catalog_id_unpack(v[i].raw, id);
		snprintf(key, sizeof(key), "%s/homes/%s", h->prefix, id);
		if (etcd_delete(sess, key, false, NULL, err, sizeof(err)) == 0) {
			h->released++;
			LOG(NOTICE, ARRAY, "room %s: draining, its home handed to node %u", id,
			    v[i].replica);
		} else {
			LOG(WARNING, ARRAY, "room %s: draining, releasing its home: %s", id, err);
		}
	}
}

void
homes_configure(struct homes *h, bool replicate, uint32_t grace_ms)
{
	h->replicate = replicate;
	h->grace_ms = grace_ms;
}

bool
homes_turn(struct homes *h, struct etcd *sess, int64_t lease, bool may_home, bool draining,
	   bool settled, const struct homes_cand *cand, unsigned ncand, int *rc, char *err,
	   size_t errlen)
{
	uint8_t (*rooms)[CATALOG_ID_RAW] = NULL;
	struct home *v = NULL;
	size_t n = 0, nrooms = 0;
	int64_t rev = 0;
	bool have_rooms, changed, releasing;

	*rc = read_homes(h, sess, &v, &n, &rev, err, errlen);
	pthread_mutex_lock(&h->lock);
	have_rooms = h->have_rooms;
	if (have_rooms && h->nrooms > 0) {
		rooms = malloc(h->nrooms * CATALOG_ID_RAW);
		if (rooms != NULL) {
			memcpy(rooms, h->rooms, h->nrooms * CATALOG_ID_RAW);
			nrooms = h->nrooms;
		}
	}
	/* Draining with replicas: stop sequencing this node's rooms first
	 * (the table says so from the next fill), release their homes a turn
	 * later once nothing waits for a replica. */
	releasing = h->replicate && draining && may_home;
	if (releasing != h->releasing) {
		h->releasing = releasing;
		h->releasing_ms = now_ms();
		h->gen++;
	}
	pthread_mutex_unlock(&h->lock);

	if (*rc == 0 && have_rooms && h->replicate)
		update_memo(h, v, n, rooms, nrooms);
	if (*rc == 0 && lease != 0 && may_home && have_rooms) {
		unsigned made = 0;

		release_gone(h, sess, v, n, rooms, nrooms);
		if (releasing && settled && now_ms() >= h->releasing_ms + 1000)
			release_mine(h, sess, v, n);
		else if (!releasing)
			made = claim(h, sess, lease, v, n, rooms, nrooms, cand, ncand);
		if (made > 0) {
			/* Read again for the new keys' revisions. */
			free(v);
			v = NULL;
			n = 0;
			*rc = read_homes(h, sess, &v, &n, &rev, err, errlen);
		}
		if (*rc == 0 && h->replicate && !releasing &&
		    choose_replicas(h, sess, lease, v, n, cand, ncand) > 0) {
			free(v);
			v = NULL;
			n = 0;
			*rc = read_homes(h, sess, &v, &n, &rev, err, errlen);
		}
	}
	free(rooms);

	pthread_mutex_lock(&h->lock);
	if (*rc == 0 && rev >= h->rev) {
		/* (homes_read may have read a newer state meanwhile) */
		if (!same_homes(h->v, h->n, v, n))
			h->gen++;
		free(h->v);
		h->v = v;
		h->n = n;
		h->rev = rev;
		v = NULL;
	}
	if (h->may_home != may_home) {
		h->gen++;
		h->may_home = may_home;
		if (!may_home)
			LOG(WARNING, ARRAY, "this node's lease may have expired: it sequences no "
			    "room until it is back in the array");
	}
	changed = h->gen != h->filled;
	pthread_mutex_unlock(&h->lock);
	free(v);
	return changed;
}

bool
homes_stop_homing(struct homes *h)
{
	bool was;

	pthread_mutex_lock(&h->lock);
	was = h->may_home;
	if (was) {
		h->gen++;
		h->may_home = false;
		LOG(WARNING, ARRAY, "this node's lease may have expired (etcd is not answering): "
		    "it sequences no room until it is back in the array");
	}
	pthread_mutex_unlock(&h->lock);
	return was;
}

int
homes_read(struct homes *h, struct etcd *e, char *err, size_t errlen)
{
	struct home *v = NULL;
	size_t n = 0;
	int64_t rev = 0;
	int rc = read_homes(h, e, &v, &n, &rev, err, errlen);

	if (rc != 0)
		return rc;
	pthread_mutex_lock(&h->lock);
	if (rev >= h->rev) {
		if (!same_homes(h->v, h->n, v, n))
			h->gen++;
		free(h->v);
		h->v = v;
		h->n = n;
		h->rev = rev;
		v = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	free(v);
	return 0;
}

bool
homes_fill(struct homes *h, struct roomtab *t)
{
	uint8_t (*rooms)[CATALOG_ID_RAW] = t->n ? malloc(t->n * CATALOG_ID_RAW) : NULL;
	bool unhomed = false;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < t->n; i++) {
		struct roomtab_ent *r = &t->v[i];
		const struct home *o = find(h->v, h->n, r->raw);

		if (rooms != NULL)
			memcpy(rooms[i], r->raw, CATALOG_ID_RAW);
		if (o != NULL && (o->node != h->self || (h->may_home && !h->releasing))) {
			r->node = o->node;
			r->epoch = o->epoch;
			/* 0: this node replicates nothing (no peer links). */
			r->replica = !h->replicate ? 0 : h->alone ? ROOMTAB_NODE_NONE :
				     o->replica ? o->replica : ROOMTAB_REPLICA_PENDING;
		} else {
			r->node = ROOMTAB_NODE_NONE;
			r->epoch = 0;
			r->replica = ROOMTAB_NODE_NONE;
			unhomed = unhomed || o == NULL;
		}
	}
	if (rooms != NULL || t->n == 0) {
		/* t->v is sorted by raw id (roomtab.h). */
		free(h->rooms);
		h->rooms = rooms;
		h->nrooms = t->n;
		h->have_rooms = true;
	}
	h->filled = h->gen;
	pthread_mutex_unlock(&h->lock);
	return unhomed;
}

json_t *
homes_json(struct homes *h)
{
	json_t *rooms = json_array(), *out;
	size_t mine = 0, unhomed = 0, unreplicated = 0, count;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n; i++) {
		char id[CATALOG_ID_LEN + 1];

		catalog_id_unpack(h->v[i].raw, id);
		json_array_append_new(rooms, json_pack("{s:s, s:i, s:I, s:i}", "room", id,
						       "node", (int)h->v[i].node,
						       "epoch", (json_int_t)h->v[i].epoch,
						       "replica", (int)h->v[i].replica));
		mine += h->v[i].node == h->self;
		unreplicated += h->v[i].replica == 0;
	}
	for (size_t i = 0; i < h->nrooms; i++)
		unhomed += find(h->v, h->n, h->rooms[i]) == NULL;
	count = h->n;
	out = json_pack("{s:I, s:I, s:I, s:o}", "count", (json_int_t)count,
			"mine", (json_int_t)mine, "unhomed", (json_int_t)unhomed, "rooms", rooms);
	/* Replication (array failover): "replication" is "on", "alone" (no
	 * other live node: [array] alone decides) or "off" (no peer links). */
	json_object_set_new(out, "replication", json_string(!h->replicate ? "off" :
							    h->alone ? "alone" : "on"));
	json_object_set_new(out, "unreplicated",
			    json_integer(h->replicate ? (json_int_t)unreplicated : 0));
	json_object_set_new(out, "releasing", json_boolean(h->releasing));
	json_object_set_new(out, "released", json_integer(h->released));
	pthread_mutex_unlock(&h->lock);
	return out;
}
