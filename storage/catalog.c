/* The room catalog; see catalog.h for keys, encoding and threads.
 *
 * Writers hold put_lock across "read the name index, write the batch", so
 * two control commands cannot both claim a name. Readers take no lock: each
 * batch is atomic, so a reader sees a room and its name key together. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "storage/catalog.h"
#include "storage/db.h"

#define KEY_MAX		(2 + CATALOG_NAME_MAX)

static pthread_mutex_t put_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const privacy_names[] = {
	[CATALOG_OPEN] = "open",
	[CATALOG_CLOSED] = "closed",
	[CATALOG_SECRET] = "secret",
};

const char *
catalog_privacy_name(enum catalog_privacy p)
{
	return (unsigned)p <= CATALOG_SECRET ? privacy_names[p] : "?";
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
catalog_id_pack(const char *id, uint8_t raw[CATALOG_ID_RAW])
{
	int j = 0;

	if (id == NULL || strlen(id) != CATALOG_ID_LEN)
		return -EINVAL;
	for (int i = 0; i < CATALOG_ID_LEN; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (id[i] != '-')
				return -EINVAL;
			continue;
		}
		hi = hexval((unsigned char)id[i]);
		lo = hexval((unsigned char)id[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		raw[j++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	return 0;
}

void
catalog_id_unpack(const uint8_t raw[CATALOG_ID_RAW], char id[CATALOG_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int j = 0;

	for (int i = 0; i < CATALOG_ID_RAW; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			id[j++] = '-';
		id[j++] = hex[raw[i] >> 4];
		id[j++] = hex[raw[i] & 15];
	}
	id[j] = '\0';
}

static struct catalog_room *
room_new(const char *domain, const char *name, const uint8_t raw[CATALOG_ID_RAW])
{
	struct catalog_room *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	catalog_id_unpack(raw, r->id);
	if (asprintf(&r->uri, "ma-chan://%s/%s", domain, r->id) == -1) {
		r->uri = NULL;
		goto out_free_r;
	}
	r->name = strdup(name);
	if (r->name == NULL)
		goto out_free_r;
	r->privacy = CATALOG_OPEN;
	r->props = CATALOG_PROP_LOGGED;
	r->created_ms = clock_real_ms();
	return r;

out_free_r:
	catalog_room_free(r);
	return NULL;
}

static bool
room_args_ok(const char *domain, const char *name)
{
	return domain != NULL && *domain != '\0' && name != NULL && *name != '\0' &&
	       strlen(name) <= CATALOG_NAME_MAX;
}

struct catalog_room *
catalog_room_new(const char *domain, const char *name)
{
	uint8_t raw[CATALOG_ID_RAW];

	if (!room_args_ok(domain, name) || RAND_bytes(raw, sizeof(raw)) != 1)
		return NULL;
	raw[6] = (raw[6] & 0x0f) | 0x40;	/* version 4 */
	raw[8] = (raw[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return room_new(domain, name, raw);
}

struct catalog_room *
catalog_room_new_named(const char *domain, const char *name)
{
	uint8_t md[SHA256_DIGEST_LENGTH], raw[CATALOG_ID_RAW];
	EVP_MD_CTX *ctx;
	bool ok;

	if (!room_args_ok(domain, name) || (ctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, "parley room", sizeof("parley room")) == 1;
	for (const char *p = domain; ok && *p; p++) {
		char ch = (char)tolower((unsigned char)*p);

		ok = EVP_DigestUpdate(ctx, &ch, 1) == 1;
	}
	ok = ok && EVP_DigestUpdate(ctx, "", 1) == 1 &&
	     EVP_DigestUpdate(ctx, name, strlen(name)) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return NULL;
	memcpy(raw, md, sizeof(raw));
	raw[6] = (raw[6] & 0x0f) | 0x80;	/* version 8: name-based, custom (RFC 9562) */
	raw[8] = (raw[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return room_new(domain, name, raw);
}

static void
strset_clear(struct catalog_strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void
catalog_room_free(struct catalog_room *r)
{
	if (r == NULL)
		return;
	free(r->uri);
	free(r->name);
	free(r->description);
	free(r->topic);
	free(r->category);
	strset_clear(&r->members);
	strset_clear(&r->managers);
	free(r);
}

int
catalog_room_set(struct catalog_room *r, enum catalog_text f, const char *v)
{
	char **dst, *copy = NULL;

	switch (f) {
	case CATALOG_NAME:
		if (v == NULL || *v == '\0' || strlen(v) > CATALOG_NAME_MAX)
			return -EINVAL;
		dst = &r->name;
		break;
	case CATALOG_DESCRIPTION:
		dst = &r->description;
		break;
	case CATALOG_TOPIC:
		dst = &r->topic;
		break;
	case CATALOG_CATEGORY:
		dst = &r->category;
		break;
	default:
		return -EINVAL;
	}
	if (v != NULL) {
		copy = strdup(v);
		if (copy == NULL)
			return -ENOMEM;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

bool
catalog_strset_has(const struct catalog_strset *s, const char *uri)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcasecmp(s->v[i], uri) == 0)
			return true;
	return false;
}

int
catalog_strset_add(struct catalog_strset *s, const char *uri)
{
	char *copy;

	if (catalog_strset_has(s, uri))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	copy = strdup(uri);
	if (copy == NULL)
		return -ENOMEM;
	s->v[s->n++] = copy;
	return 0;
}

int
catalog_strset_remove(struct catalog_strset *s, const char *uri)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcasecmp(s->v[i], uri) == 0) {
			free(s->v[i]);
			s->v[i] = s->v[--s->n];
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- encoding ---- */

static json_t *
strset_json(const struct catalog_strset *s)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < s->n; i++)
		json_array_append_new(a, json_string(s->v[i]));
	return a;
}

char *
catalog_encode(const struct catalog_room *r, size_t *len)
{
	json_t *o;

	o = json_pack("{s:i, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:o, s:o, "
		      "s:{s:b, s:b, s:b}, s:I}",
		      "v", CATALOG_ENCODING_VERSION,
		      "id", r->id,
		      "uri", r->uri,
		      "name", r->name,
		      "description", r->description,
		      "topic", r->topic,
		      "category", r->category,
		      "privacy", catalog_privacy_name(r->privacy),
		      "members", strset_json(&r->members),
		      "managers", strset_json(&r->managers),
		      "props",
		      "filepost", (r->props & CATALOG_PROP_FILEPOST) != 0,
		      "invite", (r->props & CATALOG_PROP_INVITE) != 0,
		      "logged", (r->props & CATALOG_PROP_LOGGED) != 0,
		      "created_ms", (json_int_t)r->created_ms);
	return db_json_text(o, len);
}

static int
strset_from_json(struct catalog_strset *s, json_t *a)
{
	size_t i;
	json_t *e;

	if (a == NULL)
		return 0;
	if (!json_is_array(a))
		return -EBADMSG;
	json_array_foreach(a, i, e) {
		if (!json_is_string(e))
			return -EBADMSG;
		if (catalog_strset_add(s, json_string_value(e)) != 0)
			return -ENOMEM;
	}
	return 0;
}

static int
text_from_json(char **dst, json_t *o, const char *key, bool required)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return required ? -EBADMSG : 0;
	if (!json_is_string(v))
		return -EBADMSG;
	*dst = strdup(json_string_value(v));
	return *dst != NULL ? 0 : -ENOMEM;
}

static int
room_from_json(struct catalog_room *r, json_t *o)
{
	json_t *v, *props;
	const char *s;
	int rc;

	v = json_object_get(o, "v");
	if (!json_is_integer(v))
		return -EBADMSG;
	if (json_integer_value(v) > CATALOG_ENCODING_VERSION)
		return -EPROTONOSUPPORT;
	s = json_string_value(json_object_get(o, "id"));
	if (s == NULL || strlen(s) != CATALOG_ID_LEN)
		return -EBADMSG;
	memcpy(r->id, s, CATALOG_ID_LEN + 1);
	if ((rc = text_from_json(&r->uri, o, "uri", true)) != 0 ||
	    (rc = text_from_json(&r->name, o, "name", true)) != 0 ||
	    (rc = text_from_json(&r->description, o, "description", false)) != 0 ||
	    (rc = text_from_json(&r->topic, o, "topic", false)) != 0 ||
	    (rc = text_from_json(&r->category, o, "category", false)) != 0)
		return rc;
	s = json_string_value(json_object_get(o, "privacy"));
	if (s == NULL)
		return -EBADMSG;
	if (strcmp(s, "open") == 0)
		r->privacy = CATALOG_OPEN;
	else if (strcmp(s, "closed") == 0)
		r->privacy = CATALOG_CLOSED;
	else if (strcmp(s, "secret") == 0)
		r->privacy = CATALOG_SECRET;
	else
		return -EBADMSG;
	props = json_object_get(o, "props");
	if (props != NULL) {
		if (json_is_true(json_object_get(props, "filepost")))
			r->props |= CATALOG_PROP_FILEPOST;
		if (json_is_true(json_object_get(props, "invite")))
			r->props |= CATALOG_PROP_INVITE;
		if (json_is_true(json_object_get(props, "logged")))
			r->props |= CATALOG_PROP_LOGGED;
	}
	v = json_object_get(o, "created_ms");
	if (v != NULL)
		r->created_ms = (uint64_t)json_integer_value(v);
	if ((rc = strset_from_json(&r->members, json_object_get(o, "members"))) != 0)
		return rc;
	return strset_from_json(&r->managers, json_object_get(o, "managers"));
}

int
catalog_decode(const char *buf, size_t len, struct catalog_room **out)
{
	struct catalog_room *r;
	json_error_t jerr;
	json_t *o;
	int rc;

	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return -EBADMSG;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		json_decref(o);
		return -ENOMEM;
	}
	rc = room_from_json(r, o);
	json_decref(o);
	if (rc != 0) {
		catalog_room_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ---- storage ---- */

static size_t
room_key(char *key, const char *id)
{
	key[0] = 'r';
	key[1] = '/';
	memcpy(key + 2, id, CATALOG_ID_LEN);
	return 2 + CATALOG_ID_LEN;
}

static size_t
name_key(char *key, const char *name)
{
	size_t n = strlen(name);

	key[0] = 'n';
	key[1] = '/';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		key[2 + i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return 2 + n;
}

/* Value of <key> in the catalog family: 0 with a rocksdb-allocated buffer
 * in *val (rocksdb_free), -ENOENT or -EIO. */
static int
get_raw(struct db *db, const char *key, size_t klen, char **val, size_t *vlen)
{
	char *err = NULL;

	*val = rocksdb_get_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_CATALOG), key, klen,
			      vlen, &err);
	if (err != NULL) {
		LOG(ERR, STORAGE, "catalog read failed: %s", err);
		rocksdb_free(err);
		return -EIO;
	}
	return *val != NULL ? 0 : -ENOENT;
}

int
catalog_get(struct db *db, const char *id, struct catalog_room **out)
{
	char key[KEY_MAX], *val;
	size_t vlen;
	int rc;

	if (id == NULL || strlen(id) != CATALOG_ID_LEN)
		return -ENOENT;
	rc = get_raw(db, key, room_key(key, id), &val, &vlen);
	if (rc != 0)
		return rc;
	rc = catalog_decode(val, vlen, out);
	rocksdb_free(val);
	if (rc == -EBADMSG)
		LOG(ERR, STORAGE, "catalog room %s does not decode", id);
	return rc;
}

int
catalog_get_by_name(struct db *db, const char *name, struct catalog_room **out)
{
	char key[KEY_MAX], id[CATALOG_ID_LEN + 1], *val;
	size_t vlen;
	int rc;

	if (name == NULL || strlen(name) > CATALOG_NAME_MAX)
		return -ENOENT;
	rc = get_raw(db, key, name_key(key, name), &val, &vlen);
	if (rc != 0)
		return rc;
	if (vlen != CATALOG_ID_LEN) {
		rocksdb_free(val);
		return -EBADMSG;
	}
	memcpy(id, val, CATALOG_ID_LEN);
	id[CATALOG_ID_LEN] = '\0';
	rocksdb_free(val);
	return catalog_get(db, id, out);
}

int
catalog_put(struct db *db, const struct catalog_room *r)
{
	char rkey[KEY_MAX], nkey[KEY_MAX], okey[KEY_MAX], *val;
	size_t rlen, nlen, olen, vlen;
	struct catalog_room *old = NULL;
	rocksdb_writebatch_t *wb;
	uint8_t raw[CATALOG_ID_RAW];
	char *enc;
	int rc;

	if (catalog_id_pack(r->id, raw) != 0 || r->uri == NULL || r->name == NULL ||
	    *r->name == '\0' || strlen(r->name) > CATALOG_NAME_MAX)
		return -EINVAL;
	enc = catalog_encode(r, &vlen);
	if (enc == NULL)
		return -ENOMEM;
	rlen = room_key(rkey, r->id);
	nlen = name_key(nkey, r->name);

	pthread_mutex_lock(&put_lock);
	rc = get_raw(db, nkey, nlen, &val, &olen);
	if (rc == 0) {
		bool mine = olen == CATALOG_ID_LEN && memcmp(val, r->id, CATALOG_ID_LEN) == 0;

		rocksdb_free(val);
		if (!mine) {
			rc = -EEXIST;
			goto out_unlock;
		}
	} else if (rc != -ENOENT) {
		goto out_unlock;
	}
	rc = catalog_get(db, r->id, &old);
	if (rc != 0 && rc != -ENOENT)
		goto out_unlock;

	wb = rocksdb_writebatch_create();
	if (old != NULL) {
		olen = name_key(okey, old->name);
		if (olen != nlen || memcmp(okey, nkey, nlen) != 0)
			rocksdb_writebatch_delete_cf(wb, db_cf(db, DB_CF_CATALOG), okey, olen);
	}
	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_CATALOG), nkey, nlen, r->id, CATALOG_ID_LEN);
	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_CATALOG), rkey, rlen, enc, vlen);
	rc = db_write(db, wb, true);
	rocksdb_writebatch_destroy(wb);

out_unlock:
	pthread_mutex_unlock(&put_lock);
	catalog_room_free(old);
	free(enc);
	return rc;
}

int
catalog_delete(struct db *db, const char *id)
{
	char rkey[KEY_MAX], nkey[KEY_MAX];
	struct catalog_room *old = NULL;
	rocksdb_writebatch_t *wb;
	int rc;

	pthread_mutex_lock(&put_lock);
	rc = catalog_get(db, id, &old);
	if (rc != 0)
		goto out_unlock;
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_cf(wb, db_cf(db, DB_CF_CATALOG), rkey, room_key(rkey, id));
	rocksdb_writebatch_delete_cf(wb, db_cf(db, DB_CF_CATALOG), nkey, name_key(nkey, old->name));
	rc = db_write(db, wb, true);
	rocksdb_writebatch_destroy(wb);
	catalog_room_free(old);
out_unlock:
	pthread_mutex_unlock(&put_lock);
	return rc;
}

int
catalog_foreach(struct db *db, catalog_visit_fn *fn, void *arg)
{
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
	int rc = 0;

	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_lower_bound(ro, "r/", 2);
	rocksdb_readoptions_set_iterate_upper_bound(ro, "r0", 2);	/* '0' follows '/' */
	it = rocksdb_create_iterator_cf(db_rocks(db), ro, db_cf(db, DB_CF_CATALOG));
	for (rocksdb_iter_seek(it, "r/", 2); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		struct catalog_room *r;
		const char *v;
		size_t vlen;

		v = rocksdb_iter_value(it, &vlen);
		rc = catalog_decode(v, vlen, &r);
		if (rc != 0) {
			size_t klen;
			const char *k = rocksdb_iter_key(it, &klen);

			LOG(ERR, STORAGE, "catalog key %.*s does not decode (%s)", (int)klen, k,
			    strerror(-rc));
			break;
		}
		rc = fn(arg, r);
		catalog_room_free(r);
		if (rc != 0)
			break;
	}
	if (db_scan_end(it, ro, "catalog") != 0)
		rc = -EIO;
	return rc;
}

struct load_ctx {
	struct catalog_room	**v;
	size_t			n;
	size_t			cap;
};

static int
load_one(void *arg, const struct catalog_room *r)
{
	struct load_ctx *l = arg;
	struct catalog_room *copy;
	char *enc;
	size_t len;
	int rc;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct catalog_room **v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	/* The visitor's room is freed after we return: keep a deep copy. */
	enc = catalog_encode(r, &len);
	if (enc == NULL)
		return -ENOMEM;
	rc = catalog_decode(enc, len, &copy);
	free(enc);
	if (rc != 0)
		return rc;
	l->v[l->n++] = copy;
	return 0;
}

int
catalog_load_all(struct db *db, struct catalog_room ***rooms, size_t *n)
{
	struct load_ctx l = { 0 };
	int rc;

	rc = catalog_foreach(db, load_one, &l);
	if (rc != 0) {
		catalog_rooms_free(l.v, l.n);
		return rc;
	}
	*rooms = l.v;
	*n = l.n;
	return 0;
}

void
catalog_rooms_free(struct catalog_room **rooms, size_t n)
{
	if (rooms == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		catalog_room_free(rooms[i]);
	free(rooms);
}
