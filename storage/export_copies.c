/* The exporter in a node array (export.h "In a node array"): who homes a
 * room, the rooms' export marks, and the copies pass: the compliance
 * copies this node keeps as a room's replica (commit.h, "rcmp/" in the
 * meta family) are exported by the room's next home above the room's
 * export mark, and deleted at or below it everywhere. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/base/be.h"
#include "dataplane/base/log.h"
#include "storage/catalog.h"
#include "storage/commit.h"
#include "storage/db.h"
#include "storage/export_int.h"

#define PREFIX		"rcmp/"
#define PREFIX_LEN	5

int
export_room_home(struct run *r, const uint8_t *room, int *home, uint64_t *mark, uint64_t *cut)
{
	struct export *e = r->e;
	struct roomhome *v;
	char id[CATALOG_ID_LEN + 1], eb[64];
	size_t k;
	int rc;

	for (k = 0; k < r->nrh && memcmp(r->rh[k].room, room, WAL_ROOM_RAW) != 0; k++)
		;
	if (k < r->nrh && r->log_pass && !r->rh[k].log_pass) {
		/* Seen by the copies pass: asked again, after the log's end was
		 * read. A home that changed in between (this node took the room
		 * over) retries the run, so that the copies go first. */
		uint64_t m2 = 0, c2 = 0;
		int h2 = e->room_home(e->room_mark_arg, room, &m2, &c2);
		int h1 = r->rh[k].gone ? -EAGAIN : r->rh[k].home;

		r->rh[k].log_pass = true;
		if (h2 < 0 && h2 != -EAGAIN) {
			catalog_id_unpack(room, id);
			return export_run_fail(r, h2, 0, "room %s: cannot tell its home: %s", id,
					       export_errstr(h2, eb, sizeof(eb)));
		}
		if (h2 != h1 && (h2 >= 0 || h1 >= 0)) {
			catalog_id_unpack(room, id);
			return export_run_fail(r, -EAGAIN, 0, "room %s: its home changed during the "
					       "run; exported again at the next", id);
		}
	}
	if (k == r->nrh) {
		v = realloc(r->rh, (r->nrh + 1) * sizeof(*v));
		if (v == NULL)
			return export_run_fail(r, -ENOMEM, 0, "out of memory asking for homes");
		r->rh = v;
		memcpy(v[k].room, room, WAL_ROOM_RAW);
		v[k].mark = 0;
		v[k].cut = 0;
		v[k].log_pass = r->log_pass;
		v[k].gone = false;
		v[k].home = e->room_home(e->room_mark_arg, room, &v[k].mark, &v[k].cut);
		if (v[k].cut <= v[k].mark)
			v[k].cut = 0;
		catalog_id_unpack(room, id);
		if (v[k].home == -EAGAIN) {
			struct catalog_room *cr = NULL;

			/* A room gone from the catalog has no home and gets
			 * none: its events are exported here. */
			rc = catalog_get(e->db, id, &cr);
			catalog_room_free(cr);
			v[k].gone = rc == -ENOENT;
			if (v[k].gone)
				v[k].home = EXPORT_HOME_HERE;
		}
		r->nrh++;
	}
	rc = r->rh[k].home;
	if (rc == -EAGAIN)
		return rc;
	if (rc < 0) {
		catalog_id_unpack(room, id);
		return export_run_fail(r, rc, 0, "room %s: cannot tell its home: %s", id,
				       export_errstr(rc, eb, sizeof(eb)));
	}
	*home = rc;
	*mark = r->rh[k].mark;
	if (cut != NULL)
		*cut = r->rh[k].cut;
	return r->rh[k].gone ? EXPORT_ROOM_GONE : 0;
}

int
export_record_marks(struct run *r)
{
	struct export *e = r->e;
	const struct batch *b = &r->b;
	struct mark { const uint8_t *room; uint64_t last; } *m = NULL;
	size_t nm = 0;
	char eb[64];
	int rc = 0;

	if (e->room_mark == NULL)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct ev *ev = &b->ev[i];
		size_t k;

		if (ev->type != WAL_EV_CHAT || ev->msg_id == 0)
			continue;
		for (k = 0; k < nm && memcmp(m[k].room, ev->room, WAL_ROOM_RAW) != 0; k++)
			;
		if (k == nm) {
			struct mark *nmk = realloc(m, (nm + 1) * sizeof(*m));

			if (nmk == NULL) {
				free(m);
				return export_run_fail(r, -ENOMEM, ev->seq, "out of memory "
						       "recording the rooms' export marks");
			}
			m = nmk;
			m[nm].room = ev->room;
			m[nm++].last = 0;
		}
		if (ev->msg_id > m[k].last)
			m[k].last = ev->msg_id;
	}
	for (size_t k = 0; k < nm && rc == 0; k++) {
		rc = e->room_mark(e->room_mark_arg, m[k].room, m[k].last);
		if (rc != 0)
			export_run_fail(r, rc, 0, "cannot record a room's export mark (room seq %"
					PRIu64 "): %s", m[k].last, export_errstr(rc, eb, sizeof(eb)));
	}
	free(m);
	return rc;
}

int
export_voids_load(struct run *r, uint64_t ckpt)
{
	struct db *db = r->e->db;
	rocksdb_writebatch_t *wb = NULL;
	rocksdb_iterator_t *it;
	int rc = 0;

	r->nvoids = 0;
	it = rocksdb_create_iterator_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_META));
	for (rocksdb_iter_seek(it, COMMIT_VOID_PREFIX, 6); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		struct voidrange *nv, vr;

		if (klen < 6 || memcmp(k, COMMIT_VOID_PREFIX, 6) != 0)
			break;
		if (klen != COMMIT_VOID_KEY_LEN || vlen != 8)
			continue;
		memcpy(vr.room, k + 6, WAL_ROOM_RAW);
		vr.log_next = be_get64(k + 6 + WAL_ROOM_RAW);
		vr.from = be_get64(v);
		if (vr.log_next <= ckpt) {
			/* Every event it voids is exported or left out. */
			if (wb == NULL)
				wb = rocksdb_writebatch_create();
			rocksdb_writebatch_delete_cf(wb, db_cf(db, DB_CF_META), k, klen);
			continue;
		}
		nv = realloc(r->voids, (r->nvoids + 1) * sizeof(*nv));
		if (nv == NULL) {
			rc = export_run_fail(r, -ENOMEM, 0, "out of memory reading void ranges");
			break;
		}
		r->voids = nv;
		r->voids[r->nvoids++] = vr;
	}
	if (db_scan_end(it, NULL, "void ranges") != 0 && rc == 0)
		rc = export_run_fail(r, -EIO, 0, "cannot read the void ranges");
	if (rc == 0 && wb != NULL && db_write(db, wb, false) != 0)
		LOG(WARNING, COMPLIANCE, "export: cannot delete spent void ranges (again at "
		    "the next run)");
	if (wb != NULL)
		rocksdb_writebatch_destroy(wb);
	return rc;
}

bool
export_void(const struct run *r, const struct wal_rec *rec)
{
	for (size_t i = 0; i < r->nvoids; i++) {
		const struct voidrange *v = &r->voids[i];

		if (rec->seq < v->log_next && rec->msg_id >= v->from &&
		    memcmp(rec->room, v->room, WAL_ROOM_RAW) == 0)
			return true;
	}
	return false;
}

/* Deletes the copies of <room> at or below <upto>. */
static int
trim(struct run *r, const uint8_t *room, uint64_t upto)
{
	uint8_t from[COMMIT_REPLICA_KEY_LEN], to[COMMIT_REPLICA_KEY_LEN];
	rocksdb_writebatch_t *wb;
	int rc;

	if (upto == 0)
		return 0;
	commit_replica_key(from, room, 0);
	commit_replica_key(to, room, upto == UINT64_MAX ? UINT64_MAX : upto + 1);
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_range_cf(wb, db_cf(r->e->db, DB_CF_META), (const char *)from,
					   sizeof(from), (const char *)to, sizeof(to));
	rc = db_write(r->e->db, wb, false);
	rocksdb_writebatch_destroy(wb);
	if (rc != 0)
		return export_run_fail(r, rc, 0, "cannot delete exported replica copies");
	return 0;
}

/* The rooms with copies, into *<out> (<n> of them, raw ids). */
static int
rooms_with_copies(struct run *r, uint8_t (**out)[WAL_ROOM_RAW], size_t *n)
{
	struct db *db = r->e->db;
	rocksdb_iterator_t *it;
	uint8_t (*v)[WAL_ROOM_RAW] = NULL;
	size_t nv = 0;

	it = rocksdb_create_iterator_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_META));
	rocksdb_iter_seek(it, PREFIX, PREFIX_LEN);
	while (rocksdb_iter_valid(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);
		uint8_t next[COMMIT_REPLICA_KEY_LEN];
		void *nv2;

		if (klen < PREFIX_LEN || memcmp(k, PREFIX, PREFIX_LEN) != 0)
			break;
		if (klen != COMMIT_REPLICA_KEY_LEN) {
			rocksdb_iter_next(it);
			continue;
		}
		nv2 = realloc(v, (nv + 1) * sizeof(*v));
		if (nv2 == NULL) {
			db_scan_end(it, NULL, "replica copies");
			free(v);
			return export_run_fail(r, -ENOMEM, 0, "out of memory listing replica copies");
		}
		v = nv2;
		memcpy(v[nv++], k + PREFIX_LEN, WAL_ROOM_RAW);
		/* The next room: past this one's last possible seq. */
		commit_replica_key(next, v[nv - 1], UINT64_MAX);
		rocksdb_iter_seek(it, (const char *)next, sizeof(next));
		if (rocksdb_iter_valid(it)) {
			k = rocksdb_iter_key(it, &klen);
			if (klen == sizeof(next) && memcmp(k, next, klen) == 0)
				rocksdb_iter_next(it);
		}
	}
	if (db_scan_end(it, NULL, "replica copies") != 0) {
		free(v);
		return export_run_fail(r, -EIO, 0, "cannot list replica copies");
	}
	*out = v;
	*n = nv;
	return 0;
}

/* Collects the copies of <room> above <after> into r->b, all of one home,
 * at most max_events of them and none above <cut> (0: no cut): *<first>,
 * *<last> (0: none), *<home>. */
static int
collect_copies(struct run *r, const uint8_t *room, uint64_t after, uint64_t cut,
	       uint64_t *first, uint64_t *last, uint32_t *home)
{
	struct export *e = r->e;
	struct db *db = e->db;
	uint8_t key[COMMIT_REPLICA_KEY_LEN];
	rocksdb_iterator_t *it;
	int rc = 0;

	r->b.n = 0;
	r->b.blen = 0;
	*first = *last = 0;
	*home = 0;
	commit_replica_key(key, room, after + 1);
	it = rocksdb_create_iterator_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_META));
	for (rocksdb_iter_seek(it, (const char *)key, sizeof(key));
	     rocksdb_iter_valid(it) && r->b.n < e->max_events; rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		struct wal_rec rec;
		uint32_t h;
		ssize_t wl;

		if (klen != sizeof(key) || memcmp(k, key, PREFIX_LEN + WAL_ROOM_RAW) != 0)
			break;
		wl = commit_replica_home(v, vlen, &h);
		if (h == 0)
			h = (uint32_t)e->node_id;
		if (wl < 0 || wal_decode(0, v, (size_t)wl, &rec) != 0) {
			rc = export_run_fail(r, -EBADMSG, be_get64(k + PREFIX_LEN + WAL_ROOM_RAW),
					     "a replica copy does not decode; the room's copies "
					     "wait from it on");
			break;
		}
		if (r->b.n > 0 && h != *home)
			break;		/* another home's: the next file */
		rec.seq = be_get64(k + PREFIX_LEN + WAL_ROOM_RAW);
		if (cut != 0 && rec.seq > cut && r->b.n > 0)
			break;		/* where the dead home's last file ended */
		rec.msg_id = rec.seq;
		if (export_batch_add(&r->b, &rec) != 0) {
			rc = export_run_fail(r, -ENOMEM, rec.seq, "out of memory collecting copies");
			break;
		}
		if (*first == 0)
			*first = rec.seq;
		*last = rec.seq;
		*home = h;
	}
	if (db_scan_end(it, NULL, "replica copies") != 0 && rc == 0)
		rc = export_run_fail(r, -EIO, 0, "cannot read replica copies");
	return rc;
}

/* One room homed here: its copies above <mark>, a file at a time, each
 * recorded before its copies go; the first files end at <cut> (0: none),
 * where the home that set it may have renamed a file and died before it
 * recorded it: written again under the same name, with the same bytes. */
static int
export_room(struct run *r, const uint8_t *room, uint64_t mark, uint64_t cut)
{
	struct export *e = r->e;
	char name[NAME_MAX + 1], id[CATALOG_ID_LEN + 1];
	uint64_t first, last;
	uint32_t home;
	int rc;

	catalog_id_unpack(room, id);
	for (;;) {
		if (cut <= mark)
			cut = 0;
		rc = collect_copies(r, room, mark, cut, &first, &last, &home);
		if (rc != 0 || last == 0)
			return rc;
		snprintf(name, sizeof(name), "%s_%" PRIu32 "_%s_%020" PRIu64 "-%020" PRIu64 ".xml",
			 e->adapter, home, id, first, last);
		if ((rc = export_write_one(r, name)) != 0)
			return rc;
		rc = e->room_mark(e->room_mark_arg, room, last);
		if (rc != 0)
			return export_run_fail(r, rc, 0, "room %s: cannot record its export mark %"
					       PRIu64 " after %s", id, last, name);
		LOG(INFO, COMPLIANCE, "export: room %s: replica copies %" PRIu64 "-%" PRIu64
		    " of node %" PRIu32 " exported as %s", id, first, last, home, name);
		r->copies += r->b.n;
		if ((rc = trim(r, room, last)) != 0)
			return rc;
		mark = last;
	}
}

int
export_copies(struct run *r)
{
	struct export *e = r->e;
	uint8_t (*rooms)[WAL_ROOM_RAW] = NULL;
	size_t n = 0;
	char eb[64];
	int rc;

	if ((rc = rooms_with_copies(r, &rooms, &n)) != 0 || n == 0)
		goto out;
	if (r->dirfd == -1)
		r->dirfd = open(e->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd == -1) {
		rc = -errno;
		export_run_fail(r, rc, 0, "cannot open output directory %s: %s", e->output_dir,
				export_errstr(rc, eb, sizeof(eb)));
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		int home;
		uint64_t mark, cut;

		rc = export_room_home(r, rooms[i], &home, &mark, &cut);
		if (rc == -EAGAIN) {
			rc = 0;		/* no home now: the next run */
			continue;
		}
		if (rc == EXPORT_ROOM_GONE) {
			/* Deleted: its home exports its own log; copies at or
			 * below the mark go, the others stay. */
			rc = trim(r, rooms[i], mark);
			continue;
		}
		if (rc == 0)
			rc = trim(r, rooms[i], mark);
		if (rc == 0 && home == EXPORT_HOME_HERE)
			rc = export_room(r, rooms[i], mark, cut);
	}
out:
	free(rooms);
	return rc;
}
