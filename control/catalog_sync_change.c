/* The array's catalog from the control socket's side: a command's change
 * written to etcd (read-modify-write on mod_revision) and the wait for
 * every live node to apply it; see catalog_sync.h. Control thread. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

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
#define CAS_TRIES	8	/* a change redone after concurrent writers */
#define ACK_POLL_US	20000	/* how often a change looks at the acks */

int
catalog_sync_hold(struct ctl *c, struct catalog_sync **s, char *err, size_t errlen)
{
	bool array;

	pthread_mutex_lock(&c->synclock);
	*s = c->sync;
	if (*s != NULL)
		return 1;
	pthread_mutex_unlock(&c->synclock);
	pthread_mutex_lock(&c->lock);
	array = c->array != NULL;
	pthread_mutex_unlock(&c->lock);
	if (!array)
		return 0;
	snprintf(err, errlen, "this node has not caught up with the array's catalog (or is "
		 "stopping): try again, or on another node");
	return -1;
}

void
catalog_sync_release(struct ctl *c)
{
	pthread_mutex_unlock(&c->synclock);
}

/* ---- changes (the control thread) ---------------------------------------- */

static uint64_t
mono_ms(void)
{
	return clock_mono_ms();
}

/* Waits until every live node acknowledged <rev>, and this node applied
 * it. 0, or -1 with the nodes that did not in <err>. */
static int
wait_acks(struct catalog_sync *s, int64_t rev, struct catalog_sync_done *done, char *err,
	  size_t errlen)
{
	uint64_t deadline = mono_ms() + s->conf.wait_ms;
	char missing[512], why[1024];

	for (;;) {
		struct etcd_kvs nodes, acks;
		bool ok = atomic_load(&s->applied) >= rev;
		uint32_t confirmed = 0;
		size_t used = 0;

		missing[0] = '\0';
		if (etcd_get(s->cmd, s->nodes, true, &nodes, why, sizeof(why)) == 0) {
			if (etcd_get(s->cmd, s->acks, true, &acks, why, sizeof(why)) != 0)
				memset(&acks, 0, sizeof(acks));
			for (size_t i = 0; i < nodes.n; i++) {
				const char *id = nodes.kv[i].key + strlen(s->nodes);
				bool yes = false;

				for (size_t k = 0; k < acks.n; k++) {
					json_t *v;

					if (strcmp(acks.kv[k].key + strlen(s->acks), id) != 0)
						continue;
					v = json_loadb(acks.kv[k].value, acks.kv[k].value_len, 0,
						       NULL);
					yes = json_integer_value(json_object_get(v, "revision")) >=
					      rev;
					json_decref(v);
				}
				if (yes) {
					confirmed++;
				} else {
					ok = false;
					size_t room = used < sizeof(missing) ?
						      sizeof(missing) - used : 0;

					used += (size_t)snprintf(missing + used, room, "%s%s",
								 used ? ", " : "", id);
					if (used >= sizeof(missing))
						used = sizeof(missing) - 1;
				}
			}
			etcd_kvs_free(&acks);
			etcd_kvs_free(&nodes);
		} else {
			ok = false;
			snprintf(missing, sizeof(missing), "(etcd: %.400s)", why);
		}
		done->nodes = confirmed;
		if (ok)
			return 0;
		if (mono_ms() >= deadline)
			break;
		usleep(ACK_POLL_US);
	}
	snprintf(err, errlen, "stored in the array's catalog (revision %lld), but node%s %s did "
		 "not confirm it within [array] catalog_timeout_ms (%u ms): it applies there "
		 "when they catch up", (long long)rev, strchr(missing, ',') ? "s" : "", missing,
		 s->conf.wait_ms);
	return -1;
}

static void
done_fill(struct catalog_sync *s, int64_t rev, struct catalog_sync_done *done)
{
	done->revision = rev;
	if (atomic_load(&s->last_rev) == rev) {
		done->evicted = atomic_load(&s->last_evicted);
		done->notified = atomic_load(&s->last_notified);
	}
}

/* P/catalog/names/<name, ASCII lower-case> into <out>: the key that makes
 * room names unique array-wide, as the name index does in one node. */
static void
name_key(struct catalog_sync *s, const char *name, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "%snames/", s->cat);

	for (const char *p = name; *p != '\0' && n + 1 < cap; p++)
		out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	out[n < cap ? n : cap - 1] = '\0';
}

/* Writes room <r> (NULL: deletes the room) over the version <expect> that
 * was named <old> (NULL: none), with its name key, in one transaction. 0
 * with the revision in *<rev>; -ECANCELED (read again); -EEXIST (another
 * room has the name); or an etcd error. */
static int
write_room(struct catalog_sync *s, const char *key, const char *id, int64_t expect,
	   const char *old, const struct catalog_room *r, int64_t *rev, char *why,
	   size_t whylen)
{
	char oldk[KEY_MAX], newk[KEY_MAX] = "";
	json_t *cmp = json_array(), *ops = json_array();
	struct etcd_kvs kvs = { 0 };
	size_t len = 0;
	char *v = NULL;
	int rc = 0;

	if (old != NULL)
		name_key(s, old, oldk, sizeof(oldk));
	if (r != NULL) {
		/* The name is free (it becomes this room's if nobody takes it
		 * meanwhile), this room's already, or another's. */
		name_key(s, r->name, newk, sizeof(newk));
		rc = etcd_get(s->cmd, newk, false, &kvs, why, whylen);
		if (rc != 0)
			goto out;
		if (kvs.n == 1 && strcmp(kvs.kv[0].value, id) != 0) {
			snprintf(why, whylen, "another room of the array is named %s (%s)",
				 r->name, kvs.kv[0].value);
			rc = -EEXIST;
			goto out;
		}
		v = catalog_encode(r, &len);
		if (v == NULL) {
			snprintf(why, whylen, "out of memory");
			rc = -ENOMEM;
			goto out;
		}
	}
	json_array_append_new(cmp, etcd_cmp_mod(key, expect));
	json_array_append_new(ops, r != NULL ? etcd_op_put(key, v, len) : etcd_op_delete(key));
	if (r != NULL && kvs.n == 0) {
		json_array_append_new(cmp, etcd_cmp_mod(newk, 0));
		json_array_append_new(ops, etcd_op_put(newk, id, strlen(id)));
	}
	if (r != NULL && expect == 0) {
		/* A new room: homed in the same transaction, so that every
		 * node that applies it can take posts at once. */
		json_t *home = array_home_op(s->a, id);

		if (home != NULL)
			json_array_append_new(ops, home);
	}
	if (old != NULL && (r == NULL || strcmp(oldk, newk) != 0))
		json_array_append_new(ops, etcd_op_delete(oldk));
	rc = etcd_txn(s->cmd, cmp, ops, rev, why, whylen);
	cmp = ops = NULL;	/* taken */
out:
	json_decref(cmp);
	json_decref(ops);
	etcd_kvs_free(&kvs);
	free(v);
	return rc;
}

int
catalog_sync_room(struct catalog_sync *s, const char *id, catalog_sync_room_fn *fn,
		  void *arg, struct catalog_sync_done *done, char *err, size_t errlen)
{
	char key[KEY_MAX], why[1024];
	int64_t rev = 0;

	memset(done, 0, sizeof(*done));
	snprintf(key, sizeof(key), "%srooms/%s", s->cat, id);
	for (int t = 0; t < CAS_TRIES; t++) {
		struct catalog_room *r = NULL;
		struct etcd_kvs kvs;
		int64_t expect = 0;
		char *old = NULL, *v;
		size_t len = 0;
		int rc = etcd_get(s->cmd, key, false, &kvs, why, sizeof(why));

		if (rc != 0) {
			snprintf(err, errlen, "the array's catalog cannot be read: %s", why);
			return -1;
		}
		if (kvs.n == 1) {
			expect = kvs.kv[0].mod_revision;
			if (catalog_decode(kvs.kv[0].value, kvs.kv[0].value_len, &r) != 0) {
				snprintf(err, errlen, "%s in etcd is not a room record", key);
				etcd_kvs_free(&kvs);
				return -1;
			}
			old = strdup(r->name);
		}
		etcd_kvs_free(&kvs);
		if ((expect != 0 && old == NULL) || fn(arg, &r, err, errlen) != 0) {
			if (expect != 0 && old == NULL)
				snprintf(err, errlen, "out of memory");
			catalog_room_free(r);
			free(old);
			return -1;
		}
		if (r == NULL && expect == 0) {
			snprintf(err, errlen, "no room %s in the array's catalog", id);
			return -1;
		}
		v = r != NULL ? catalog_encode(r, &len) : NULL;
		free(v);
		if (len > s->conf.record_max) {
			snprintf(err, errlen, "the room's record would be %zu bytes, over [array] "
				 "catalog_record_max (%u)", len, s->conf.record_max);
			rc = -1;
		} else {
			rc = write_room(s, key, id, expect, old, r, &rev, why, sizeof(why));
		}
		catalog_room_free(r);
		free(old);
		if (rc == -1)
			return -1;
		if (rc == 0)
			break;
		if (rc == -EEXIST) {
			snprintf(err, errlen, "%s", why);
			return -1;
		}
		if (rc != -ECANCELED) {
			snprintf(err, errlen, "the array's catalog cannot be written: %s", why);
			return -1;
		}
		LOG(INFO, ARRAY, "catalog: %s changed on another node meanwhile: again", key);
		rev = 0;
	}
	if (rev == 0) {
		snprintf(err, errlen, "room %s: changed by other nodes %d times while this change "
			 "was made; try again", id, CAS_TRIES);
		return -1;
	}
	if (wait_acks(s, rev, done, err, errlen) != 0)
		return -1;
	done_fill(s, rev, done);
	return 0;
}

int
catalog_sync_user(struct catalog_sync *s, const char *user, const char *realm,
		  enum catalog_sync_user_op op, const char *password,
		  struct catalog_sync_done *done, char *err, size_t errlen)
{
	char key[KEY_MAX], why[1024];
	int64_t rev = 0;

	memset(done, 0, sizeof(*done));
	snprintf(key, sizeof(key), "%susers/%s", s->cat, user);
	for (char *p = key + strlen(s->cat); *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	for (int t = 0; t < CAS_TRIES && rev == 0; t++) {
		struct etcd_kvs kvs;
		char *lines = NULL, *text = NULL;
		int64_t expect;
		json_t *o;
		int rc = etcd_get(s->cmd, key, false, &kvs, why, sizeof(why));

		if (rc != 0) {
			snprintf(err, errlen, "the array's catalog cannot be read: %s", why);
			return -1;
		}
		expect = kvs.n == 1 ? kvs.kv[0].mod_revision : 0;
		etcd_kvs_free(&kvs);
		if (op == CATALOG_SYNC_USER_ADD && expect != 0) {
			snprintf(err, errlen, "%s exists (parleyctl user passwd changes a "
				 "password)", user);
			return -1;
		}
		if (op != CATALOG_SYNC_USER_ADD && expect == 0) {
			snprintf(err, errlen, "no user %s in the array's catalog (realm %s)", user,
				 realm);
			return -1;
		}
		if (op != CATALOG_SYNC_USER_DEL) {
			rc = htdigest_user_lines(user, realm, password, &lines);
			o = rc == 0 ? json_pack("{s:i, s:s, s:s, s:s}", "v", 1, "user", user,
						"realm", realm, "lines", lines) : NULL;
			text = o ? json_dumps(o, JSON_COMPACT) : NULL;
			json_decref(o);
			free(lines);
			if (text == NULL) {
				snprintf(err, errlen, "user %s: %s", user, rc == -EINVAL ?
					 "not a name htdigest can hold" : "out of memory");
				return -1;
			}
		}
		rc = etcd_cas(s->cmd, key, expect, text, text ? strlen(text) : 0, 0, &rev, why,
			      sizeof(why));
		free(text);
		if (rc != 0 && rc != -ECANCELED) {
			snprintf(err, errlen, "the array's catalog cannot be written: %s", why);
			return -1;
		}
	}
	if (rev == 0) {
		snprintf(err, errlen, "user %s: changed by other nodes meanwhile; try again", user);
		return -1;
	}
	if (wait_acks(s, rev, done, err, errlen) != 0)
		return -1;
	done_fill(s, rev, done);
	return 0;
}

int
catalog_sync_invite(struct catalog_sync *s, const char *user, const struct invite *inv,
		    struct catalog_sync_done *done, char *err, size_t errlen)
{
	char key[KEY_MAX], why[1024];
	json_t *o = json_pack("{s:i, s:s, s:I}", "v", 1, "author", inv->author, "ts",
			      (json_int_t)inv->ts_ms);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int64_t rev = 0;
	int rc = -ECANCELED;

	json_decref(o);
	memset(done, 0, sizeof(*done));
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(key, sizeof(key), "%sinvites/%s/%s", s->cat, user, inv->room_id);
	for (int t = 0; t < CAS_TRIES && rc == -ECANCELED; t++) {
		struct etcd_kvs kvs;

		rc = etcd_get(s->cmd, key, false, &kvs, why, sizeof(why));
		if (rc == 0) {
			int64_t expect = kvs.n == 1 ? kvs.kv[0].mod_revision : 0;

			etcd_kvs_free(&kvs);
			rc = etcd_cas(s->cmd, key, expect, text, strlen(text), 0, &rev, why,
				      sizeof(why));
		}
	}
	free(text);
	if (rc != 0) {
		snprintf(err, errlen, "the array's catalog cannot be written: %s", why);
		return -1;
	}
	if (wait_acks(s, rev, done, err, errlen) != 0)
		return -1;
	done_fill(s, rev, done);
	return 0;
}

void
catalog_sync_show(struct catalog_sync *s, json_t *o, bool ask)
{
	struct etcd_kvs acks;
	char why[1024];
	json_t *nodes = ask ? json_object() : json_null();

	if (ask && etcd_get(s->cmd, s->acks, true, &acks, why, sizeof(why)) == 0) {
		for (size_t k = 0; k < acks.n; k++) {
			json_t *v = json_loadb(acks.kv[k].value, acks.kv[k].value_len, 0, NULL);

			json_object_set_new(nodes, acks.kv[k].key + strlen(s->acks),
					    json_integer(json_integer_value(
						    json_object_get(v, "revision"))));
			json_decref(v);
		}
		etcd_kvs_free(&acks);
	}
	json_object_set_new(o, "catalog", json_pack(
		"{s:I, s:o, s:I, s:I, s:I, s:I}",
		"applied", (json_int_t)atomic_load(&s->applied), "nodes", nodes,
		"changes", (json_int_t)atomic_load(&s->n_applied),
		"bad_records", (json_int_t)atomic_load(&s->n_bad),
		"full_reads", (json_int_t)atomic_load(&s->n_full),
		"watch_lost", (json_int_t)atomic_load(&s->n_lost)));
}
