/* Uploaded file records in the files family; see files.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dataplane/base/log.h"
#include "storage/db.h"
#include "storage/files.h"

const char *
files_state_name(enum files_state s)
{
	switch (s) {
	case FILES_PENDING:
		return "pending";
	case FILES_READY:
		return "ready";
	}
	return NULL;
}

char *
files_encode(const struct files_rec *r, size_t *len)
{
	const char *state = files_state_name(r->state);
	json_t *o;

	if (state == NULL)
		return NULL;
	o = json_pack("{s:i, s:s, s:s, s:s, s:I, s:s, s:s, s:I}",
		      "v", FILES_ENCODING_VERSION,
		      "room", r->room_id,
		      "uploader", r->uploader,
		      "name", r->name,
		      "size", (json_int_t)r->size,
		      "sha256", r->sha256,
		      "state", state,
		      "ts", (json_int_t)r->ts_ms);
	return db_json_text(o, len);
}

/* Copies the string member <key> of <o> into <dst>; false when it is
 * missing, not a string or does not fit. */
static bool
copy_str(json_t *o, const char *key, char *dst, size_t cap)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	if (strlen(s) >= cap)
		return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

int
files_decode(const char *buf, size_t len, struct files_rec *out)
{
	char state[16];
	json_error_t jerr;
	json_t *o, *v;
	int rc = -EBADMSG;

	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o))
		goto out;
	v = json_object_get(o, "v");
	if (!json_is_integer(v))
		goto out;
	if (json_integer_value(v) > FILES_ENCODING_VERSION) {
		rc = -EPROTONOSUPPORT;
		goto out;
	}
	if (!copy_str(o, "room", out->room_id, sizeof(out->room_id)) ||
	    !copy_str(o, "uploader", out->uploader, sizeof(out->uploader)) ||
	    !copy_str(o, "name", out->name, sizeof(out->name)) ||
	    !copy_str(o, "sha256", out->sha256, sizeof(out->sha256)) ||
	    !copy_str(o, "state", state, sizeof(state)))
		goto out;
	if (!strcmp(state, "pending"))
		out->state = FILES_PENDING;
	else if (!strcmp(state, "ready"))
		out->state = FILES_READY;
	else
		goto out;
	v = json_object_get(o, "size");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		goto out;
	out->size = (uint64_t)json_integer_value(v);
	v = json_object_get(o, "ts");
	out->ts_ms = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static bool
id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	return n > 0 && n < FILES_ID_MAX;
}

int
files_put(struct db *db, const struct files_rec *r, bool sync)
{
	rocksdb_writebatch_t *wb;
	size_t vlen;
	char *v;
	int rc;

	if (!id_ok(r->id) || files_state_name(r->state) == NULL)
		return -EINVAL;
	v = files_encode(r, &vlen);
	if (v == NULL)
		return -ENOMEM;
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_FILES), r->id, strlen(r->id), v, vlen);
	rc = db_write(db, wb, sync);
	rocksdb_writebatch_destroy(wb);
	free(v);
	return rc;
}

int
files_get(struct db *db, const char *id, struct files_rec *out)
{
	char *err = NULL, *v;
	size_t vlen;
	int rc;

	if (!id_ok(id))
		return -ENOENT;
	v = rocksdb_get_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_FILES), id, strlen(id),
			   &vlen, &err);
	if (err != NULL) {
		LOG(ERR, STORAGE, "files: read of %s failed: %s", id, err);
		rocksdb_free(err);
		return -EIO;
	}
	if (v == NULL)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", id);
	rc = files_decode(v, vlen, out);
	rocksdb_free(v);
	if (rc == -EBADMSG)
		LOG(ERR, STORAGE, "files: record %s does not decode", id);
	return rc;
}

int
files_delete(struct db *db, const char *id, bool sync)
{
	rocksdb_writebatch_t *wb;
	int rc;

	if (!id_ok(id))
		return 0;
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_cf(wb, db_cf(db, DB_CF_FILES), id, strlen(id));
	rc = db_write(db, wb, sync);
	rocksdb_writebatch_destroy(wb);
	return rc;
}
