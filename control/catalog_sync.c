/* One catalog for the node array; see catalog_sync.h.
 *
 * Three etcd clients: the thread's requests (full reads, acks), the
 * thread's watch (a stream on a handle of its own), and the control
 * thread's (changes and the wait for acknowledgements). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "control/array.h"
#include "control/catalog_sync.h"
#include "control/catalog_sync_int.h"
#include "control/ctl_int.h"
#include "control/etcd.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "storage/catalog.h"
#include "storage/htdigest.h"
#include "storage/prefs.h"

#define KEY_MAX		CATALOG_SYNC_KEY_MAX
#define WATCH_MS	2000	/* a watch is renewed this often (the ack's lease) */
#define POLL_MS		1000	/* without a watch, the catalog is read this often */
#define SEED_WAIT_MS	30000	/* another node seeding: how long to wait for it */
#define START_TRIES	3	/* catching up at start: tries, this far apart */
#define START_RETRY_MS	500


/* ---- the local copy ------------------------------------------------------ */

static bool
too_big(struct catalog_sync *s, const struct etcd_kv *kv)
{
	if (kv->value_len <= s->conf.record_max)
		return false;
	atomic_fetch_add(&s->n_bad, 1);
	LOG(WARNING, ARRAY, "catalog: %s is %zu bytes, over [array] catalog_record_max (%u): "
	    "skipped", kv->key, kv->value_len, s->conf.record_max);
	return true;
}

static void
bad(struct catalog_sync *s, const char *key, const char *why)
{
	atomic_fetch_add(&s->n_bad, 1);
	LOG(WARNING, ARRAY, "catalog: %s: %s; skipped", key, why);
}

/* The room of <kv>, checked; NULL (logged, counted) when it is not one. */
static struct catalog_room *
room_of(struct catalog_sync *s, const struct etcd_kv *kv, const char *id)
{
	struct catalog_room *r;

	if (too_big(s, kv))
		return NULL;
	if (catalog_decode(kv->value, kv->value_len, &r) != 0) {
		bad(s, kv->key, "not a room record");
		return NULL;
	}
	if (strcmp(r->id, id) != 0 || r->uri == NULL || r->name == NULL) {
		bad(s, kv->key, "a room record of another id, or without uri or name");
		catalog_room_free(r);
		return NULL;
	}
	return r;
}

/* True when the local copy of <r>'s room is <r> already. */
static bool
same_room(struct ctl *c, const struct catalog_room *r)
{
	struct catalog_room *l;
	char *a, *b;
	bool same;

	if (catalog_get(c->db, r->id, &l) != 0)
		return false;
	a = catalog_encode(l, NULL);
	b = catalog_encode(r, NULL);
	same = a != NULL && b != NULL && strcmp(a, b) == 0;
	free(a);
	free(b);
	catalog_room_free(l);
	return same;
}

/* Stores <r> locally. 1 when it changed, 0 when it was so, -1 (logged). */
static int
room_store(struct catalog_sync *s, const struct catalog_room *r)
{
	int rc;

	if (same_room(s->c, r))
		return 0;
	rc = catalog_put(s->c->db, r);
	if (rc != 0) {
		atomic_fetch_add(&s->n_bad, 1);
		LOG(ERR, ARRAY, "catalog: room %s (%s) cannot be stored here: %s", r->name, r->id,
		    rc == -EEXIST ? "another local room has its name" : strerror(-rc));
		return -1;
	}
	return 1;
}

/* Removes room <id> locally, everyone present leaving first. 1 when it
 * was there. */
static int
room_remove(struct catalog_sync *s, const char *id)
{
	struct catalog_room *l;
	int rc;

	if (catalog_get(s->c->db, id, &l) != 0)
		return 0;
	/* Before the lcores run (catching up at start) nobody is present. */
	if (s->serving)
		atomic_store(&s->last_evicted, ctl_rooms_evict(s->c, l, true));
	rc = catalog_delete(s->c->db, id);
	if (rc != 0)
		LOG(ERR, ARRAY, "catalog: room %s (%s) cannot be deleted here: %s", l->name, id,
		    strerror(-rc));
	else
		LOG(INFO, ARRAY, "catalog: room %s (%s) deleted", l->name, id);
	catalog_room_free(l);
	return rc == 0 ? 1 : 0;
}

static void
publish(struct catalog_sync *s)
{
	char err[512];

	/* A new room's home was written in its transaction: read the homes
	 * so that the table goes out with it (homes.h). */
	if (array_homes_read(s->a, s->thr, err, sizeof(err)) != 0)
		LOG(DEBUG, ARRAY, "catalog: reading the room homes: %s", err);
	if (ctl_rooms_publish_at(s->c, s->serving, err, sizeof(err)) != 0)
		LOG(ERR, ARRAY, "catalog: %s", err);
}

/* A user record's user and lines (borrowed from <v>), checked. */
static bool
user_of(struct catalog_sync *s, const struct etcd_kv *kv, const char *name, json_t **v,
	const char **lines)
{
	const char *user, *realm;

	*v = NULL;
	if (too_big(s, kv))
		return false;
	*v = json_loadb(kv->value, kv->value_len, 0, NULL);
	user = json_string_value(json_object_get(*v, "user"));
	realm = json_string_value(json_object_get(*v, "realm"));
	*lines = json_string_value(json_object_get(*v, "lines"));
	if (user == NULL || realm == NULL || *lines == NULL || strcasecmp(user, name) != 0) {
		bad(s, kv->key, "not a user record");
		goto out_bad;
	}
	if (strcmp(realm, s->c->conf.realm) != 0) {
		bad(s, kv->key, "a user of another realm");
		goto out_bad;
	}
	return true;

out_bad:
	json_decref(*v);
	*v = NULL;
	return false;
}

/* Sets <user>'s lines in the local file (NULL: removes the user). 1 when
 * written, 0 when nothing was to do, -1 (logged). */
static int
user_store(struct catalog_sync *s, const char *user, const char *lines)
{
	int rc = htdigest_set_user_lines(s->c->conf.htdigest, user, s->c->conf.realm, lines);

	if (rc == -ENOENT && lines == NULL)
		return 0;
	if (rc == -EINVAL) {
		bad(s, user, "user lines that are not htdigest lines of that user");
		return -1;
	}
	if (rc != 0) {
		LOG(ERR, ARRAY, "catalog: user %s cannot be written to %s: %s", user,
		    s->c->conf.htdigest, strerror(-rc));
		return -1;
	}
	return 1;
}

static void
users_reload(struct catalog_sync *s)
{
	char err[512];

	if (ctl_admin_users_reload(s->c, s->serving, err, sizeof(err)) != 0)
		LOG(ERR, ARRAY, "catalog: users: %s", err);
}

/* An invitation record into <inv>; false (logged) when it is not one. */
static bool
invite_of(struct catalog_sync *s, const struct etcd_kv *kv, const char *room,
	  struct invite *inv)
{
	json_t *v;
	const char *author;
	json_int_t ts;
	bool ok;

	if (too_big(s, kv))
		return false;
	v = json_loadb(kv->value, kv->value_len, 0, NULL);
	author = json_string_value(json_object_get(v, "author"));
	ts = json_integer_value(json_object_get(v, "ts"));
	ok = author != NULL && strlen(author) < sizeof(inv->author) &&
	     strlen(room) < sizeof(inv->room_id) && catalog_id_pack(room, (uint8_t[16]){ 0 }) == 0;
	if (ok) {
		memset(inv, 0, sizeof(*inv));
		snprintf(inv->room_id, sizeof(inv->room_id), "%s", room);
		snprintf(inv->author, sizeof(inv->author), "%s", author);
		inv->ts_ms = ts > 0 ? (uint64_t)ts : 0;
	} else {
		bad(s, kv->key, "not an invitation record");
	}
	json_decref(v);
	return ok;
}

/* Which record <key> is: 'r' room, 'u' user, 'i' invitation (then *<sub>
 * is the room id after the user), 'n' a room name's key, or 0; *<name> the id or user. Writes
 * into <buf>. */
static char
kind(struct catalog_sync *s, const char *key, char *buf, size_t cap, const char **name,
     const char **sub)
{
	size_t pl = strlen(s->cat);
	const char *k = key + pl;

	*sub = NULL;
	if (strncmp(key, s->cat, pl) != 0)
		return 0;
	if (strncmp(k, "rooms/", 6) == 0 && catalog_id_pack(k + 6, (uint8_t[16]){ 0 }) == 0) {
		*name = k + 6;
		return 'r';
	}
	if (strncmp(k, "names/", 6) == 0) {
		*name = k + 6;
		return 'n';	/* the name index of catalog_sync_room: nothing to apply */
	}
	if (strncmp(k, "users/", 6) == 0 && k[6] != '\0' && strchr(k + 6, '/') == NULL) {
		*name = k + 6;
		return 'u';
	}
	if (strncmp(k, "invites/", 8) == 0 && snprintf(buf, cap, "%s", k + 8) < (int)cap) {
		char *slash = strrchr(buf, '/');

		if (slash == NULL || slash == buf)
			return 0;
		*slash = '\0';
		*name = buf;
		*sub = slash + 1;
		return 'i';
	}
	return 0;
}

/* One change the watch saw, applied here. */
static void
apply_event(struct catalog_sync *s, const struct etcd_event *ev)
{
	char buf[KEY_MAX];
	const char *name, *sub;
	char k = kind(s, ev->kv.key, buf, sizeof(buf), &name, &sub);
	struct catalog_room *r;
	struct invite inv;
	const char *lines;
	json_t *v;

	atomic_store(&s->last_evicted, 0);
	atomic_store(&s->last_notified, 0);
	if (k == 0 || k == 'n') {
		if (k == 0 && strcmp(ev->kv.key + strlen(s->cat), "init") != 0)
			bad(s, ev->kv.key, "not a key of the catalog");
		return;
	}
	atomic_fetch_add(&s->n_applied, 1);
	switch (k) {
	case 'r':
		if (ev->deleted) {
			if (room_remove(s, name) > 0)
				publish(s);
			break;
		}
		r = room_of(s, &ev->kv, name);
		if (r != NULL && room_store(s, r) > 0) {
			publish(s);
			atomic_store(&s->last_evicted, ctl_rooms_evict(s->c, r, false));
			LOG(INFO, ARRAY, "catalog: room %s (%s) at revision %lld", r->name, r->id,
			    (long long)ev->kv.mod_revision);
		}
		catalog_room_free(r);
		break;
	case 'u':
		if (ev->deleted) {
			if (user_store(s, name, NULL) > 0)
				users_reload(s);
			break;
		}
		if (!user_of(s, &ev->kv, name, &v, &lines))
			break;
		if (user_store(s, name, lines) > 0)
			users_reload(s);
		json_decref(v);
		break;
	case 'i':
		if (ev->deleted || !invite_of(s, &ev->kv, sub, &inv))
			break;
		if (invite_put(s->c->db, name, &inv) != 0) {
			LOG(ERR, ARRAY, "catalog: the invitation of %s cannot be stored here",
			    name);
			break;
		}
		if (catalog_get(s->c->db, inv.room_id, &r) == 0) {
			atomic_store(&s->last_notified, ctl_rooms_invite_notify(s->c, r, name, &inv,
										 NULL));
			catalog_room_free(r);
		}
		break;
	}
}

/* ---- acknowledgements ---------------------------------------------------- */

/* Says P/acks/<id> = the revision applied, under the node's lease now. */
static void
ack(struct catalog_sync *s)
{
	int64_t lease = array_lease(s->a), rev = atomic_load(&s->applied);
	char text[128], err[1024];

	if (lease == 0 || (rev == s->acked && lease == s->ack_lease))
		return;
	snprintf(text, sizeof(text), "{\"node_id\":%u,\"revision\":%lld}", s->conf.node_id,
		 (long long)rev);
	if (etcd_put(s->thr, s->ack, text, strlen(text), lease, err, sizeof(err)) != 0) {
		LOG(DEBUG, ARRAY, "catalog: acknowledging revision %lld: %s", (long long)rev, err);
		return;
	}
	s->acked = rev;
	s->ack_lease = lease;
}

/* ---- reading the whole catalog ------------------------------------------- */

/* Whether the whole catalog <kvs> holds room <id> (or user <user>). */
static bool
has_room(const struct etcd_kvs *kvs, const char *prefix, const char *id)
{
	char key[KEY_MAX];

	snprintf(key, sizeof(key), "%srooms/%s", prefix, id);
	for (size_t i = 0; i < kvs->n; i++)
		if (strcmp(kvs->kv[i].key, key) == 0)
			return true;
	return false;
}

static bool
has_user(const struct etcd_kvs *kvs, const char *prefix, const char *user)
{
	char key[KEY_MAX];

	snprintf(key, sizeof(key), "%susers/%s", prefix, user);
	for (size_t i = 0; i < kvs->n; i++)
		if (strcasecmp(kvs->kv[i].key, key) == 0)
			return true;
	return false;
}

/* The users of the local file in our realm (one per name), as a JSON
 * object user -> its lines. */
static json_t *
local_users(struct catalog_sync *s)
{
	json_t *o = json_object();
	FILE *f = fopen(s->c->conf.htdigest, "r");
	char line[1024];
	const char *realm = s->c->conf.realm;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char user[256];
		json_t *have;
		char *joined;

		if (line[0] == '#' || c2 == NULL || (size_t)(c2 - c1 - 1) != strlen(realm) ||
		    strncmp(c1 + 1, realm, strlen(realm)) != 0 ||
		    (size_t)(c1 - line) >= sizeof(user))
			continue;
		snprintf(user, sizeof(user), "%.*s", (int)(c1 - line), line);
		for (char *p = user; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		if (strchr(line, '\n') == NULL)
			strcat(line, "\n");
		have = json_object_get(o, user);
		if (asprintf(&joined, "%s%s", have ? json_string_value(have) : "", line) < 0)
			continue;
		json_object_set_new(o, user, json_string(joined));
		free(joined);
	}
	if (f != NULL)
		fclose(f);
	return o;
}

/* Makes the local copy what <kvs> (the whole catalog) says. */
static void
apply_all(struct catalog_sync *s, const struct etcd_kvs *kvs, bool log_changes)
{
	struct catalog_room **rooms = NULL;
	size_t nrooms = 0, nchanged = 0, nusers = 0;
	json_t *users = local_users(s);
	bool republish = false, reload = false;
	int pass;

	/* Rooms etcd does not have go first, so that their names are free. */
	if (catalog_load_all(s->c->db, &rooms, &nrooms) == 0)
		for (size_t i = 0; i < nrooms; i++)
			if (!has_room(kvs, s->cat, rooms[i]->id)) {
				if (log_changes)
					LOG(NOTICE, ARRAY, "catalog: room %s (%s) is not in the "
					    "array's catalog: removed here", rooms[i]->name,
					    rooms[i]->id);
				republish |= room_remove(s, rooms[i]->id) > 0;
			}
	catalog_rooms_free(rooms, nrooms);
	/* Twice: a room renamed to a name another room gave up. */
	for (pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < kvs->n; i++) {
			char buf[KEY_MAX];
			const char *name, *sub;
			struct catalog_room *r;
			int rc;

			if (kind(s, kvs->kv[i].key, buf, sizeof(buf), &name, &sub) != 'r')
				continue;
			if (pass == 1) {
				struct catalog_room *l;

				if (catalog_get(s->c->db, name, &l) == 0) {
					catalog_room_free(l);
					continue;
				}
			}
			r = room_of(s, &kvs->kv[i], name);
			if (r == NULL)
				continue;
			if (pass == 0 && !same_room(s->c, r)) {
				/* A name another local room holds waits for pass 2. */
				struct catalog_room *other = NULL;

				if (catalog_get_by_name(s->c->db, r->name, &other) == 0 &&
				    strcmp(other->id, r->id) != 0) {
					catalog_room_free(other);
					catalog_room_free(r);
					continue;
				}
				catalog_room_free(other);
			}
			rc = room_store(s, r);
			if (rc > 0) {
				republish = true;
				nchanged++;
				if (log_changes)
					LOG(NOTICE, ARRAY, "catalog: room %s (%s) taken from the "
					    "array's catalog", r->name, r->id);
			}
			catalog_room_free(r);
		}
	/* Users: etcd's, and no others. */
	for (size_t i = 0; i < kvs->n; i++) {
		char buf[KEY_MAX];
		const char *name, *sub, *lines, *have;
		json_t *v;

		if (kind(s, kvs->kv[i].key, buf, sizeof(buf), &name, &sub) != 'u' ||
		    !user_of(s, &kvs->kv[i], name, &v, &lines))
			continue;
		have = json_string_value(json_object_get(users, name));
		if (have == NULL || strcmp(have, lines) != 0) {
			if (user_store(s, name, lines) > 0) {
				reload = true;
				nusers++;
			}
		}
		json_decref(v);
	}
	{
		const char *user;
		json_t *lines;

		json_object_foreach(users, user, lines)
			if (!has_user(kvs, s->cat, user) && user_store(s, user, NULL) > 0) {
				reload = true;
				nusers++;
				if (log_changes)
					LOG(NOTICE, ARRAY, "catalog: user %s is not in the array's "
					    "catalog: removed here", user);
			}
	}
	json_decref(users);
	/* Invitations: stored (they are never withdrawn). */
	for (size_t i = 0; i < kvs->n; i++) {
		char buf[KEY_MAX];
		const char *name, *sub;
		struct invite inv;

		if (kind(s, kvs->kv[i].key, buf, sizeof(buf), &name, &sub) == 'i' &&
		    invite_of(s, &kvs->kv[i], sub, &inv))
			invite_put(s->c->db, name, &inv);
	}
	if (republish)
		publish(s);
	if (reload)
		users_reload(s);
	if (log_changes && (nchanged > 0 || nusers > 0))
		LOG(NOTICE, ARRAY, "catalog: %zu room%s and %zu user%s taken from the array's "
		    "catalog", nchanged, nchanged == 1 ? "" : "s", nusers, nusers == 1 ? "" : "s");
}

/* Reads the whole catalog and applies it. 0, or the etcd error. */
static int
full_read(struct catalog_sync *s, bool log_changes, char *err, size_t errlen)
{
	struct etcd_kvs kvs;
	int rc = etcd_get(s->thr, s->cat, true, &kvs, err, errlen);

	if (rc != 0)
		return rc;
	atomic_fetch_add(&s->n_full, 1);
	apply_all(s, &kvs, log_changes);
	if (kvs.revision > atomic_load(&s->applied))
		atomic_store(&s->applied, kvs.revision);
	etcd_kvs_free(&kvs);
	ack(s);
	return 0;
}

/* ---- seeding ------------------------------------------------------------- */

/* Records to seed, written ETCD_BATCH_MAX to a transaction. */
struct batch {
	struct catalog_sync	*s;
	char			*key[ETCD_BATCH_MAX];
	char			*val[ETCD_BATCH_MAX];
	size_t			len[ETCD_BATCH_MAX];
	size_t			n;
	int			rc;
	char			err[1024];
};

static void
batch_flush(struct batch *b)
{
	if (b->n > 0 && b->rc == 0)
		b->rc = etcd_put_batch(b->s->thr, (const char *const *)b->key,
				       (const char *const *)b->val, b->len, b->n, b->err,
				       sizeof(b->err));
	for (size_t i = 0; i < b->n; i++) {
		free(b->key[i]);
		free(b->val[i]);
	}
	b->n = 0;
}

/* Adds <key> = <val> (taken; NULL: out of memory) to <b>. */
static void
batch_add(struct batch *b, char *key, char *val, size_t len)
{
	if (key == NULL || val == NULL) {
		free(key);
		free(val);
		if (b->rc == 0)
			snprintf(b->err, sizeof(b->err), "out of memory");
		b->rc = b->rc ? b->rc : -ENOMEM;
		return;
	}
	b->key[b->n] = key;
	b->val[b->n] = val;
	b->len[b->n] = len;
	if (++b->n == ETCD_BATCH_MAX)
		batch_flush(b);
}

static int
seed_room(void *arg, const struct catalog_room *r)
{
	struct batch *b = arg;
	size_t len = 0;
	char *v = catalog_encode(r, &len), *key = NULL;

	if (asprintf(&key, "%srooms/%s", b->s->cat, r->id) < 0)
		key = NULL;
	batch_add(b, key, v, len);
	/* Its name's key (catalog_sync_room): names are unique array-wide. */
	if (asprintf(&key, "%snames/%s", b->s->cat, r->name) < 0)
		key = NULL;
	for (char *p = key ? key + strlen(b->s->cat) + 6 : NULL; p != NULL && *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	batch_add(b, key, strdup(r->id), CATALOG_ID_LEN);
	return 0;
}

/* The first node: its rooms and users into etcd. */
static int
seed(struct catalog_sync *s, char *err, size_t errlen)
{
	struct batch *b = calloc(1, sizeof(*b));
	json_t *users = local_users(s), *lines;
	const char *user;
	char key[KEY_MAX], done[128];
	size_t nusers = json_object_size(users);
	int rc;

	if (b == NULL) {
		json_decref(users);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->s = s;
	rc = catalog_foreach(s->c->db, seed_room, b);
	if (rc != 0 && b->rc == 0) {
		b->rc = rc;
		snprintf(b->err, sizeof(b->err), "the local catalog: %s", strerror(-rc));
	}
	json_object_foreach(users, user, lines) {
		json_t *o = json_pack("{s:i, s:s, s:s, s:O}", "v", 1, "user", user, "realm",
				      s->c->conf.realm, "lines", lines);
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL, *k = NULL;

		json_decref(o);
		if (asprintf(&k, "%susers/%s", s->cat, user) < 0)
			k = NULL;
		batch_add(b, k, text, text ? strlen(text) : 0);
	}
	json_decref(users);
	batch_flush(b);
	rc = b->rc;
	if (rc != 0)
		snprintf(err, errlen, "seeding the array's catalog: %.900s", b->err);
	free(b);
	if (rc != 0)
		return -1;
	LOG(NOTICE, ARRAY, "catalog: this node seeded the array's catalog (%zu user%s)", nusers,
	    nusers == 1 ? "" : "s");
	snprintf(key, sizeof(key), "%sinit", s->cat);
	snprintf(done, sizeof(done), "{\"state\":\"done\",\"node_id\":%u,\"ms\":%llu}",
		 s->conf.node_id, (unsigned long long)clock_real_ms());
	return etcd_put(s->thr, key, done, strlen(done), 0, err, errlen) == 0 ? 0 : -1;
}

/* Seeds (first node) or waits for the seeding node, then reads the whole
 * catalog. 0 or -1 with <err>. */
static int
catch_up(struct catalog_sync *s, char *err, size_t errlen)
{
	char key[KEY_MAX], text[128];
	struct etcd_kv have;
	int rc;

	snprintf(key, sizeof(key), "%sinit", s->cat);
	snprintf(text, sizeof(text), "{\"state\":\"seeding\",\"node_id\":%u}", s->conf.node_id);
	for (int waited = 0;; waited += 200) {
		/* Bound to this node's lease while seeding: a node that dies
		 * meanwhile leaves the seeding to the next. */
		rc = etcd_create(s->thr, key, text, strlen(text), array_lease(s->a), &have, err,
				 errlen);
		if (rc == 0) {
			if (seed(s, err, errlen) != 0)
				return -1;
			break;
		}
		if (rc != -EEXIST)
			return -1;
		if (have.lease != 0 && have.lease == array_lease(s->a)) {
			/* Ours, from a try that failed halfway: again. */
			etcd_kv_free(&have);
			if (seed(s, err, errlen) != 0)
				return -1;
			break;
		}
		rc = strstr(have.value ? have.value : "", "\"seeding\"") != NULL;
		etcd_kv_free(&have);
		if (!rc)
			break;
		if (waited >= SEED_WAIT_MS) {
			snprintf(err, errlen, "another node has been seeding the array's catalog "
				 "for %d s (%s)", SEED_WAIT_MS / 1000, key);
			return -1;
		}
		usleep(200000);
	}
	return full_read(s, true, err, errlen) == 0 ? 0 : -1;
}

/* ---- the thread ---------------------------------------------------------- */

static int
on_events(void *arg, const struct etcd_event *ev, size_t n)
{
	struct catalog_sync *s = arg;
	/* One transaction's changes share a revision: skip only what came
	 * before this answer (a full read had it already). */
	int64_t base = atomic_load(&s->applied), top = base;

	if (s->watch_lost) {
		s->watch_lost = false;
		LOG(NOTICE, ARRAY, "catalog: watching etcd again");
	}
	for (size_t i = 0; i < n; i++) {
		if (ev[i].kv.mod_revision <= base)
			continue;
		apply_event(s, &ev[i]);
		atomic_store(&s->last_rev, ev[i].kv.mod_revision);
		if (ev[i].kv.mod_revision > top)
			top = ev[i].kv.mod_revision;
		atomic_store(&s->applied, top);
	}
	ack(s);
	return 0;
}

static void
pause_ms(struct catalog_sync *s, int ms)
{
	for (int t = 0; t < ms && !atomic_load(&s->stop); t += 50)
		usleep(50000);
}

static void *
sync_thread(void *arg)
{
	struct catalog_sync *s = arg;
	char err[1024];

	while (!atomic_load(&s->stop)) {
		int64_t compact;
		int rc;

		ack(s);		/* the lease may have changed */
		rc = etcd_watch(s->watch, s->cat, atomic_load(&s->applied) + 1, on_events, s,
				&s->stop, WATCH_MS, &compact, err, sizeof(err));
		if (rc == 0 || rc == -ECANCELED)
			continue;
		if (rc == -ERANGE) {
			LOG(NOTICE, ARRAY, "catalog: %s: reading the whole catalog", err);
			if (full_read(s, true, err, sizeof(err)) != 0)
				pause_ms(s, POLL_MS);
			continue;
		}
		if (!s->watch_lost) {
			s->watch_lost = true;
			atomic_fetch_add(&s->n_lost, 1);
			LOG(WARNING, ARRAY, "catalog: the watch is lost (%s): reading the whole "
			    "catalog every %d ms until it is back", err, POLL_MS);
		}
		pause_ms(s, POLL_MS);
		if (!atomic_load(&s->stop) && full_read(s, false, err, sizeof(err)) != 0)
			LOG(DEBUG, ARRAY, "catalog: polling: %s", err);
	}
	return NULL;
}

/* ---- start, stop --------------------------------------------------------- */

static void
sync_free(struct catalog_sync *s)
{
	etcd_close(s->thr);
	etcd_close(s->watch);
	etcd_close(s->cmd);
	free(s->etcd_list);
	free(s);
}

int
catalog_sync_start(struct ctl *c, const struct catalog_sync_config *cfg, char *err,
		   size_t errlen)
{
	struct catalog_sync *s = calloc(1, sizeof(*s));
	char why[1024];
	int rc;

	if (s == NULL || c->array == NULL) {
		snprintf(err, errlen, "catalog: %s", s ? "no array" : "out of memory");
		free(s);
		return -1;
	}
	if (strlen(cfg->prefix) + 16 > CATALOG_SYNC_PREFIX_MAX) {
		snprintf(err, errlen, "[array] prefix %s: over %d characters", cfg->prefix,
			 CATALOG_SYNC_PREFIX_MAX - 16);
		free(s);
		return -1;
	}
	s->c = c;
	s->a = c->array;
	s->conf = *cfg;
	s->etcd_list = strdup(cfg->etcd);
	snprintf(s->cat, sizeof(s->cat), "%s/catalog/", cfg->prefix);
	snprintf(s->acks, sizeof(s->acks), "%s/acks/", cfg->prefix);
	snprintf(s->nodes, sizeof(s->nodes), "%s/nodes/", cfg->prefix);
	snprintf(s->ack, sizeof(s->ack), "%s/acks/%u", cfg->prefix, cfg->node_id);
	s->conf.etcd = s->etcd_list;
	s->conf.prefix = NULL;
	s->thr = s->etcd_list ? etcd_open(s->etcd_list, cfg->timeout_ms, why, sizeof(why)) : NULL;
	s->watch = s->thr ? etcd_open(s->etcd_list, cfg->timeout_ms, why, sizeof(why)) : NULL;
	s->cmd = s->watch ? etcd_open(s->etcd_list, cfg->timeout_ms, why, sizeof(why)) : NULL;
	if (s->cmd == NULL) {
		snprintf(err, errlen, "[array] etcd: %s", s->etcd_list ? why : "out of memory");
		goto out_free;
	}
	/* A busy etcd gets a few tries, as for joining (array.c). */
	for (int t = 0; (rc = catch_up(s, why, sizeof(why))) != 0 && t + 1 < START_TRIES; t++) {
		LOG(NOTICE, ARRAY, "catalog: %s: trying again", why);
		usleep(START_RETRY_MS * 1000);
	}
	if (rc != 0) {
		snprintf(err, errlen, "[array] the array's catalog cannot be read from etcd: %s",
			 why);
		goto out_free;
	}
	s->serving = true;	/* from here on, with lcores that run */
	rc = pthread_create(&s->thread, NULL, sync_thread, s);
	if (rc != 0) {
		snprintf(err, errlen, "[array] catalog thread: %s", strerror(rc));
		goto out_free;
	}
	pthread_setname_np(s->thread, "parley-catalog");
	s->running = true;
	pthread_mutex_lock(&c->synclock);
	c->sync = s;
	pthread_mutex_unlock(&c->synclock);
	LOG(NOTICE, ARRAY, "catalog: caught up with the array's catalog at revision %lld",
	    (long long)atomic_load(&s->applied));
	return 0;

out_free:
	sync_free(s);
	return -1;
}

void
catalog_sync_stop(struct ctl *c)
{
	struct catalog_sync *s;

	/* A command in progress holds synclock until it is done. */
	pthread_mutex_lock(&c->synclock);
	s = c->sync;
	c->sync = NULL;
	pthread_mutex_unlock(&c->synclock);
	if (s == NULL)
		return;
	atomic_store(&s->stop, true);
	if (s->running)
		pthread_join(s->thread, NULL);
	sync_free(s);
}

