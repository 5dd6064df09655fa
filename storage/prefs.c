/* Per-user preferences and invitations in the prefs family; see prefs.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <jansson.h>

#include "dataplane/base/log.h"
#include "storage/db.h"
#include "storage/prefs.h"

/* "<tag>/" lower(user) "\0" rest -> malloc'd key. */
static char *
make_key(char tag, const char *user, const char *rest, size_t *klen)
{
	size_t ul = strlen(user), rl = rest ? strlen(rest) : 0;
	char *k = malloc(2 + ul + 1 + rl);

	if (k == NULL)
		return NULL;
	k[0] = tag;
	k[1] = '/';
	for (size_t i = 0; i < ul; i++)
		k[2 + i] = (char)tolower((unsigned char)user[i]);
	k[2 + ul] = '\0';
	if (rl > 0)
		memcpy(k + 3 + ul, rest, rl);
	*klen = 3 + ul + rl;
	return k;
}

static const char *
skip_sip(const char *user)
{
	return strncasecmp(user, "sip:", 4) == 0 ? user + 4 : user;
}

int
prefs_get(struct db *db, const char *user, const char *label, char **val, size_t *len)
{
	char *err = NULL, *v, *k;
	size_t klen, vlen;

	if (strlen(label) > PREFS_LABEL_MAX)
		return -EINVAL;
	k = make_key('p', skip_sip(user), label, &klen);
	if (k == NULL)
		return -ENOMEM;
	v = rocksdb_get_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_PREFS), k, klen, &vlen, &err);
	free(k);
	if (err != NULL) {
		LOG(ERR, STORAGE, "prefs: read: %s", err);
		free(err);
		return -EIO;
	}
	if (v == NULL)
		return -ENOENT;
	*val = malloc(vlen + 1);
	if (*val == NULL) {
		rocksdb_free(v);
		return -ENOMEM;
	}
	memcpy(*val, v, vlen);
	(*val)[vlen] = '\0';
	*len = vlen;
	rocksdb_free(v);
	return 0;
}

static int
put(struct db *db, const char *k, size_t klen, const char *v, size_t vlen, bool sync)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	int rc;

	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_PREFS), k, klen, v, vlen);
	rc = db_write(db, wb, sync);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

int
prefs_put(struct db *db, const char *user, const char *label, const char *val, size_t len,
	  bool sync)
{
	size_t klen;
	char *k;
	int rc;

	if (strlen(label) > PREFS_LABEL_MAX || len > PREFS_VALUE_MAX)
		return -EINVAL;
	k = make_key('p', skip_sip(user), label, &klen);
	if (k == NULL)
		return -ENOMEM;
	rc = put(db, k, klen, val, len, sync);
	free(k);
	return rc;
}

int
invite_put(struct db *db, const char *user, const struct invite *inv)
{
	json_t *o;
	char *v, *k;
	size_t klen;
	int rc;

	if (strlen(inv->room_id) == 0)
		return -EINVAL;
	o = json_pack("{s:i, s:s, s:I}", "v", 1, "author", inv->author, "ts",
		      (json_int_t)inv->ts_ms);
	v = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	k = make_key('i', skip_sip(user), inv->room_id, &klen);
	if (v == NULL || k == NULL) {
		free(v);
		free(k);
		return -ENOMEM;
	}
	rc = put(db, k, klen, v, strlen(v), true);
	free(v);
	free(k);
	return rc;
}

int
invite_del(struct db *db, const char *user, const char *room_id)
{
	rocksdb_writebatch_t *wb;
	char *k, *v, *err = NULL;
	size_t klen, vlen;
	int rc;

	k = make_key('i', skip_sip(user), room_id, &klen);
	if (k == NULL)
		return -ENOMEM;
	v = rocksdb_get_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_PREFS), k, klen, &vlen, &err);
	if (err != NULL || v == NULL) {
		rc = err ? -EIO : -ENOENT;
		free(err);
		free(k);
		return rc;
	}
	rocksdb_free(v);
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_cf(wb, db_cf(db, DB_CF_PREFS), k, klen);
	rc = db_write(db, wb, true);
	rocksdb_writebatch_destroy(wb);
	free(k);
	return rc;
}

ssize_t
invite_list(struct db *db, const char *user, struct invite **out)
{
	rocksdb_iterator_t *it;
	struct invite *v = NULL;
	size_t n = 0, cap = 0, plen;
	char *prefix = make_key('i', skip_sip(user), NULL, &plen);
	ssize_t rc = 0;
	char *err = NULL;

	*out = NULL;
	if (prefix == NULL)
		return -ENOMEM;
	it = rocksdb_create_iterator_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_PREFS));
	for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *val = rocksdb_iter_value(it, &vlen);
		json_t *o, *a, *t;

		if (klen < plen || memcmp(k, prefix, plen) != 0)
			break;
		o = json_loadb(val, vlen, 0, NULL);
		a = o ? json_object_get(o, "author") : NULL;
		t = o ? json_object_get(o, "ts") : NULL;
		if (!json_is_string(a) || !json_is_integer(t) || klen - plen >= sizeof(v->room_id)) {
			LOG(WARNING, STORAGE, "prefs: an invitation of %s does not decode; skipped",
			    user);
			json_decref(o);
			continue;
		}
		if (n == cap) {
			struct invite *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));

			if (nv == NULL) {
				json_decref(o);
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		memcpy(v[n].room_id, k + plen, klen - plen);
		snprintf(v[n].author, sizeof(v[n].author), "%s", json_string_value(a));
		v[n].ts_ms = (uint64_t)json_integer_value(t);
		n++;
		json_decref(o);
	}
	rocksdb_iter_get_error(it, &err);
	if (err != NULL) {
		LOG(ERR, STORAGE, "prefs: invitations of %s: %s", user, err);
		free(err);
		rc = -EIO;
	}
	rocksdb_iter_destroy(it);
	free(prefix);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	return (ssize_t)n;
}
