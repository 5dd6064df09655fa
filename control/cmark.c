/* Compliance export marks in etcd: see cmark.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control/cmark.h"
#include "control/etcd.h"
#include "dataplane/base/log.h"
#include "storage/catalog.h"
#include "storage/export.h"

#define KEY_MAX		512
#define CAS_TRIES	5

struct cmark {
	struct etcd	*etcd;
	char		*prefix;
	uint64_t	node_id;
};

int
cmark_parse(const char *v, size_t len, struct cmark_val *out)
{
	json_t *o = json_loadb(v != NULL ? v : "", len, JSON_REJECT_DUPLICATES, NULL);
	json_t *n = json_object_get(o, "node"), *s = json_object_get(o, "seq");
	json_t *c = json_object_get(o, "cut");
	int rc = -EINVAL;

	if (json_is_object(o) && json_is_integer(n) && json_is_integer(s) &&
	    json_integer_value(n) >= 1 && json_integer_value(n) <= UINT32_MAX &&
	    json_integer_value(s) >= 0 &&
	    (c == NULL || (json_is_integer(c) && json_integer_value(c) >= 0))) {
		uint64_t seq = (uint64_t)json_integer_value(s);
		uint64_t cut = c != NULL ? (uint64_t)json_integer_value(c) : 0;

		/* A mark says something: a seq exported, or a cut above it. */
		if (seq >= 1 || cut > seq) {
			out->node = (uint64_t)json_integer_value(n);
			out->seq = seq;
			out->cut = cut > seq ? cut : 0;
			rc = 0;
		}
	}
	json_decref(o);
	return rc;
}

size_t
cmark_format(char *buf, size_t cap, const struct cmark_val *m)
{
	int n;

	if (m->cut > m->seq)
		n = snprintf(buf, cap, "{\"node\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"cut\":%"
			     PRIu64 "}", m->node, m->seq, m->cut);
	else
		n = snprintf(buf, cap, "{\"node\":%" PRIu64 ",\"seq\":%" PRIu64 "}", m->node,
			     m->seq);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

struct cmark *
cmark_open(const char *endpoints, const char *prefix, uint64_t node_id, unsigned timeout_ms,
	   char *err, size_t errlen)
{
	struct cmark *m = calloc(1, sizeof(*m));	/* boot */

	if (m == NULL || (m->prefix = strdup(prefix)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	m->node_id = node_id;
	m->etcd = etcd_open(endpoints, timeout_ms, err, errlen);
	if (m->etcd == NULL)
		goto fail;
	return m;

fail:
	if (m != NULL)
		free(m->prefix);
	free(m);
	return NULL;
}

void
cmark_close(struct cmark *m)
{
	if (m == NULL)
		return;
	etcd_close(m->etcd);
	free(m->prefix);
	free(m);
}

/* The mark under <key> into *<v> (all 0 when absent) and its *<rev> (0
 * when absent). */
static int
mark_get(struct cmark *m, const char *key, struct cmark_val *v, int64_t *rev, char *err,
	 size_t errlen)
{
	struct etcd_kvs kvs = { 0 };
	int rc;

	memset(v, 0, sizeof(*v));
	*rev = 0;
	rc = etcd_get(m->etcd, key, false, &kvs, err, errlen);
	if (rc != 0)
		return rc;
	if (kvs.n > 0) {
		*rev = kvs.kv[0].mod_revision;
		if (cmark_parse(kvs.kv[0].value, kvs.kv[0].value_len, v) != 0) {
			snprintf(err, errlen, "its value is not an export mark");
			rc = -EPROTO;
		}
	}
	etcd_kvs_free(&kvs);
	return rc;
}

int
cmark_read(struct cmark *m, const char *room, uint64_t *seq)
{
	char key[KEY_MAX], err[256];
	struct cmark_val v;
	int64_t rev;
	int rc;

	snprintf(key, sizeof(key), "%s/exported/%s", m->prefix, room);
	rc = mark_get(m, key, &v, &rev, err, sizeof(err));
	if (rc != 0)
		LOG(WARNING, ARRAY, "export mark of room %s: %s", room, err);
	else
		*seq = v.seq;
	return rc;
}

/* The home of <id> now: *<node> (0: no home key) and the key's
 * *<rev> (0: absent). */
static int
home_get(struct cmark *m, const char *id, char *key, size_t keylen, uint64_t *node, int64_t *rev,
	 char *err, size_t errlen)
{
	struct etcd_kvs kvs = { 0 };
	int rc;

	snprintf(key, keylen, "%s/homes/%s", m->prefix, id);
	*node = 0;
	*rev = 0;
	rc = etcd_get(m->etcd, key, false, &kvs, err, errlen);
	if (rc != 0)
		return rc;
	if (kvs.n > 0) {
		json_t *o = json_loadb(kvs.kv[0].value ? kvs.kv[0].value : "", kvs.kv[0].value_len,
				       0, NULL);
		json_t *n = json_object_get(o, "node");

		*rev = kvs.kv[0].mod_revision;
		if (json_is_integer(n) && json_integer_value(n) > 0)
			*node = (uint64_t)json_integer_value(n);
		else {
			snprintf(err, errlen, "its home key is not a home");
			rc = -EPROTO;
		}
		json_decref(o);
	}
	etcd_kvs_free(&kvs);
	return rc;
}

int
cmark_home(void *arg, const uint8_t *room, uint64_t *mark, uint64_t *cut)
{
	struct cmark *m = arg;
	char id[CATALOG_ID_LEN + 1], key[KEY_MAX], err[256] = "";
	struct cmark_val v;
	uint64_t node;
	int64_t rev;
	int rc;

	catalog_id_unpack(room, id);
	rc = home_get(m, id, key, sizeof(key), &node, &rev, err, sizeof(err));
	if (rc == 0) {
		snprintf(key, sizeof(key), "%s/exported/%s", m->prefix, id);
		rc = mark_get(m, key, &v, &rev, err, sizeof(err));
	}
	if (rc != 0) {
		LOG(WARNING, ARRAY, "room %s: cannot read its home or export mark: %s", id, err);
		return rc;
	}
	*mark = v.seq;
	*cut = v.cut;
	return node == 0 ? -EAGAIN : node == m->node_id ? EXPORT_HOME_HERE : EXPORT_HOME_OTHER;
}

/* Moves the mark of <room>: with <cut> 0, its seq up to <seq> (a pending
 * cut above it stays); otherwise a cut at <cut> by this node (when above
 * the seq; it replaces another). Only while the room's home key names this
 * node or there is none, checked in the same transaction. */
static int
mark_move(struct cmark *m, const uint8_t *room, uint64_t seq, uint64_t cut)
{
	char id[CATALOG_ID_LEN + 1], key[KEY_MAX], hkey[KEY_MAX], val[CMARK_VALUE_MAX];
	char err[256] = "";
	struct cmark_val cur = { 0 }, nv;
	uint64_t home = 0;
	int64_t rev, hrev;
	size_t len;
	int rc = -ECANCELED;

	catalog_id_unpack(room, id);
	snprintf(key, sizeof(key), "%s/exported/%s", m->prefix, id);
	for (int t = 0; t < CAS_TRIES && rc == -ECANCELED; t++) {
		json_t *cmp, *ops;

		rc = mark_get(m, key, &cur, &rev, err, sizeof(err));
		if (rc != 0)
			break;
		nv.node = m->node_id;
		if (cut == 0) {
			nv.seq = seq > cur.seq ? seq : cur.seq;
			nv.cut = cur.cut > nv.seq ? cur.cut : 0;
		} else {
			nv.seq = cur.seq;
			nv.cut = cut > cur.seq ? cut : 0;
		}
		if (nv.seq == cur.seq && nv.cut == cur.cut)
			break;	/* nothing to move: a batch written again */
		/* Only the room's home (or nobody's: a room gone) moves the
		 * mark, and only while it still is: a new home reads the mark
		 * once it holds the room, and no older home moves it after. */
		rc = home_get(m, id, hkey, sizeof(hkey), &home, &hrev, err, sizeof(err));
		if (rc != 0)
			break;
		if (home != 0 && home != m->node_id) {
			snprintf(err, sizeof(err), "node %" PRIu64 " homes the room now", home);
			rc = -ESTALE;
			break;
		}
		len = cmark_format(val, sizeof(val), &nv);
		cmp = json_array();
		ops = json_array();
		json_array_append_new(cmp, etcd_cmp_mod(key, rev));
		json_array_append_new(cmp, etcd_cmp_mod(hkey, hrev));
		json_array_append_new(ops, etcd_op_put(key, val, len));
		rc = etcd_txn(m->etcd, cmp, ops, NULL, err, sizeof(err));
		if (rc == 0)
			LOG(DEBUG, ARRAY, "room %s: export mark %" PRIu64 ", cut %" PRIu64, id,
			    nv.seq, nv.cut);
	}
	if (rc == -ECANCELED)
		snprintf(err, sizeof(err), "changed by another writer %d times in a row",
			 CAS_TRIES);
	if (rc != 0)
		LOG(WARNING, ARRAY, "room %s: cannot record its export %s %" PRIu64 ": %s", id,
		    cut == 0 ? "mark" : "cut", cut == 0 ? seq : cut, err);
	return rc;
}

int
cmark_record(void *arg, const uint8_t *room, uint64_t seq)
{
	return mark_move(arg, room, seq, 0);
}

int
cmark_cut(void *arg, const uint8_t *room, uint64_t last)
{
	return last == 0 ? 0 : mark_move(arg, room, 0, last);
}
