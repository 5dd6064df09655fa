/* The compliance exporter in a node array (room_home): copies of rooms homed
 * here above their mark exported in files named by their home and cut as
 * the next home's, a home killed after the rename, CHAT of rooms homed
 * elsewhere left out, the void tail, what a home did not settle, and the
 * acked table. Single node: test_export.c; the fixture and helpers:
 * exportkit.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include "storage/acked.h"
#include "storage/catalog.h"
#include "storage/commit.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/wal.h"
#include "exportkit.h"
#include "tmpdb.h"

/* In a node array (room_home): the copies of a room homed here above its
 * mark go into a file named by the home that sequenced them, are recorded
 * and deleted; copies at or below a mark are deleted; the log's CHAT events
 * of a room another node homes are left out, its other events stay. */
static uint64_t arr_mark[EK_NROOMS];

static int
arr_home(void *arg, const uint8_t *room, uint64_t *mark, uint64_t *cut)
{
	for (int i = 0; i < EK_NROOMS; i++)
		if (memcmp(room, ek_rooms[i].raw, WAL_ROOM_RAW) == 0) {
			*mark = arr_mark[i];
			return i == 1 ? EXPORT_HOME_OTHER : EXPORT_HOME_HERE;
		}
	return -EAGAIN;
}

static int
arr_record(void *arg, const uint8_t *room, uint64_t last)
{
	for (int i = 0; i < EK_NROOMS; i++)
		if (memcmp(room, ek_rooms[i].raw, WAL_ROOM_RAW) == 0 && last > arr_mark[i])
			arr_mark[i] = last;
	return 0;
}

static void
put_copy(int room, uint64_t seq, uint32_t home, const char *text)
{
	uint8_t key[COMMIT_REPLICA_KEY_LEN], buf[512];
	struct wal_rec r = {
		.type = WAL_EV_CHAT, .ts_ms = EK_T0 + seq, .msg_id = seq,
		.room_uri = ek_rooms[room].uri, .room_uri_len = strlen(ek_rooms[room].uri),
		.user = ek_users[0], .user_len = strlen(ek_users[0]),
		.content = text, .content_len = strlen(text),
	};
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	ssize_t n;

	memcpy(r.room, ek_rooms[room].raw, WAL_ROOM_RAW);
	n = wal_encode(0, &r, buf, sizeof(buf) - 4);
	cr_assert_gt(n, 0);
	buf[n] = (uint8_t)(home >> 24);
	buf[n + 1] = (uint8_t)(home >> 16);
	buf[n + 2] = (uint8_t)(home >> 8);
	buf[n + 3] = (uint8_t)home;
	commit_replica_key(key, ek_rooms[room].raw, seq);
	rocksdb_writebatch_put_cf(wb, db_cf(ek_db, DB_CF_META), (const char *)key, sizeof(key),
				  (const char *)buf, (size_t)n + 4);
	cr_assert_eq(db_write(ek_db, wb, true), 0);
	rocksdb_writebatch_destroy(wb);
}

static bool
has_copy(int room, uint64_t seq)
{
	uint8_t key[COMMIT_REPLICA_KEY_LEN];
	char *v, *err = NULL;
	size_t len;

	commit_replica_key(key, ek_rooms[room].raw, seq);
	v = rocksdb_get_cf(db_rocks(ek_db), db_ropts(ek_db), db_cf(ek_db, DB_CF_META), (const char *)key,
			   sizeof(key), &len, &err);
	cr_assert_null(err);
	rocksdb_free(v);
	return v != NULL;
}

Test(export, array_copies_above_the_mark_and_other_homes_left_out)
{
	struct export_config cfg = {
		.output_dir = ek_out, .files_dir = ek_files, .retry_min_ms = 20, .retry_max_ms = 100,
		.interval_s = 1, .room_mark = arr_record, .room_home = arr_home,
	};
	char want[300], text[32];
	struct ek_parsed p;
	size_t chat1 = 0, other1 = 0, copies = 0;
	int err = 0;

	ek_make_rooms();
	ek_log_mix(30);
	arr_mark[0] = 2;	/* room 0: homed here, its old home exported 1-2 */
	arr_mark[1] = 2;	/* room 1: another node's; 1-2 exported by someone */
	for (uint64_t s = 1; s <= 5; s++) {
		snprintf(text, sizeof(text), "copy %llu", (unsigned long long)s);
		put_copy(0, s, 7, text);
		put_copy(1, s, 7, text);
	}
	ek_ex = export_create(ek_db, &cfg, &err);
	cr_assert_not_null(ek_ex, "export_create: %d", err);
	cr_assert_eq(export_run_once(ek_ex), 30);
	cr_assert_eq(ek_checkpoint(), 31);

	snprintf(want, sizeof(want), "parley_7_%s_%020d-%020d.xml", ek_rooms[0].id, 3, 5);
	ek_parse_dir(&p, ek_out);
	for (size_t i = 0; i < p.n; i++) {
		const struct ek_msg *m = &p.m[i];
		bool r1 = !strcmp(m->room_uri, ek_rooms[1].uri);

		if (!strcmp(m->file, want)) {
			cr_assert_str_eq(m->type, "CHAT");
			cr_assert_str_eq(m->room_uri, ek_rooms[0].uri);
			snprintf(text, sizeof(text), "copy %lld", m->id);
			cr_assert_str_eq(m->content, text, "copy %lld carries %s", m->id, m->content);
			cr_assert(m->id >= 3 && m->id <= 5);
			copies++;
			continue;
		}
		chat1 += r1 && !strcmp(m->type, "CHAT");
		other1 += r1 && strcmp(m->type, "CHAT") != 0;
	}
	cr_assert_eq(copies, 3, "%zu messages, not copies 3-5, in %s", copies, want);
	cr_assert_eq(chat1, 0, "a CHAT of a room another node homes was exported here");
	cr_assert_gt(other1, 0, "that room's other events are this node's to export");
	ek_parsed_free(&p);
	cr_assert_geq(arr_mark[0], 5);
	for (uint64_t s = 1; s <= 5; s++) {
		cr_assert(!has_copy(0, s), "room 0: copy %llu not deleted after its export",
			  (unsigned long long)s);
		cr_assert_eq(has_copy(1, s), s > 2, "room 1: copy %llu", (unsigned long long)s);
	}
	/* A second run finds nothing more to do. */
	cr_assert_eq(export_run_once(ek_ex), 0);
}

/* A home's own CHAT events in a node array are written per room, named and
 * cut as its replica, once the room's next home, writes its copies of the
 * same events: same names, same bytes. So a file the home renamed but did
 * not record (killed before its mark) is written again by the next home
 * under its name, not beside it. */
#define HOME_NODE	5
#define NEXT_NODE	6

static uint64_t hm_mark[EK_NROOMS], hm_cutv[EK_NROOMS];
static int hm_rc;

static int
hm_home(void *arg, const uint8_t *room, uint64_t *mark, uint64_t *cut)
{
	for (int i = 0; i < EK_NROOMS; i++)
		if (memcmp(room, ek_rooms[i].raw, WAL_ROOM_RAW) == 0) {
			*mark = hm_mark[i];
			*cut = hm_cutv[i];
			return EXPORT_HOME_HERE;
		}
	return -EAGAIN;
}

static int
hm_record(void *arg, const uint8_t *room, uint64_t last)
{
	if (hm_rc != 0)
		return hm_rc;
	for (int i = 0; i < EK_NROOMS; i++)
		if (memcmp(room, ek_rooms[i].raw, WAL_ROOM_RAW) == 0 && last > hm_mark[i]) {
			hm_mark[i] = last;
			if (hm_cutv[i] <= last)
				hm_cutv[i] = 0;
		}
	return 0;
}

/* room_cut as cmark_cut: before the renames, even when the record after
 * them fails (hm_rc). */
static int
hm_cut(void *arg, const uint8_t *room, uint64_t last)
{
	for (int i = 0; i < EK_NROOMS; i++)
		if (memcmp(room, ek_rooms[i].raw, WAL_ROOM_RAW) == 0 && last > hm_mark[i])
			hm_cutv[i] = last;
	return 0;
}

/* The replica's copy of logged event <seq> (a CHAT) in <d>, as commit.c
 * keeps it: the logged record, then the home's node id. */
static void
copy_logged(struct db *d, uint64_t seq, uint32_t home)
{
	const struct ek_exp *x = &ek_exps[seq - 1];
	uint8_t key[COMMIT_REPLICA_KEY_LEN], buf[1024];
	struct wal_rec r = {
		.type = x->type, .ts_ms = EK_T0 + seq * EK_TS_STEP, .msg_id = x->msg_id,
		.room_uri = ek_rooms[x->room].uri, .room_uri_len = strlen(ek_rooms[x->room].uri),
		.user = x->user, .user_len = strlen(x->user),
		.content = x->content, .content_len = x->clen,
	};
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	ssize_t n;

	memcpy(r.room, ek_rooms[x->room].raw, WAL_ROOM_RAW);
	n = wal_encode(0, &r, buf, sizeof(buf) - 4);
	cr_assert_gt(n, 0);
	buf[n] = (uint8_t)(home >> 24);
	buf[n + 1] = (uint8_t)(home >> 16);
	buf[n + 2] = (uint8_t)(home >> 8);
	buf[n + 3] = (uint8_t)home;
	commit_replica_key(key, ek_rooms[x->room].raw, x->msg_id);
	rocksdb_writebatch_put_cf(wb, db_cf(d, DB_CF_META), (const char *)key, sizeof(key),
				  (const char *)buf, (size_t)n + 4);
	cr_assert_eq(db_write(d, wb, true), 0);
	rocksdb_writebatch_destroy(wb);
}

static char *
dir_file_bytes(const char *dirpath, const char *name, size_t *len)
{
	char path[700];
	char *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dirpath, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool
listed(const struct ek_parsed *p, const char *name)
{
	for (size_t i = 0; i < p->nfiles; i++)
		if (strcmp(p->names[i], name) == 0)
			return true;
	return false;
}

/* The replica of the home's rooms: a second database with the same catalog
 * and copies of the CHAT events logged at <from> and later. */
static struct db *
open_replica(const char *path, uint64_t from)
{
	char err[256] = "";
	struct db *d;

	cr_assert_eq(mkdir(path, 0755), 0);
	d = db_open(path, NULL, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	for (int i = 0; i < EK_NROOMS; i++) {
		struct catalog_room *cr = NULL;

		if (ek_rooms[i].name == NULL)
			continue;
		cr_assert_eq(catalog_get(ek_db, ek_rooms[i].id, &cr), 0);
		cr_assert_eq(catalog_put(d, cr), 0);
		catalog_room_free(cr);
	}
	for (uint64_t s = from; s <= ek_nexp; s++)
		if (ek_exps[s - 1].type == WAL_EV_CHAT)
			copy_logged(d, s, HOME_NODE);
	return d;
}

/* Exports the replica's copies as the room's next home into <odir>, and
 * checks that the home's room files named in <want> (in out) are all there
 * byte for byte, and that it wrote no other file (<more> false) or none
 * with a CHAT event of those (<more> true: it holds later ones too). */
static void
next_home_writes_the_same(struct db *d, const char *odir, char **want, size_t nwant, bool more)
{
	struct export_config cfg = {
		.output_dir = odir, .files_dir = ek_files, .node_id = NEXT_NODE,
		.max_events_per_file = 12, .retry_min_ms = 20, .retry_max_ms = 100,
		.interval_s = 1, .room_mark = hm_record, .room_home = hm_home, .room_cut = hm_cut,
	};
	struct export *e2;
	struct ek_parsed p2;
	int err = 0;

	cr_assert_eq(mkdir(odir, 0755), 0);
	e2 = export_create(d, &cfg, &err);
	cr_assert_not_null(e2, "export_create: %d", err);
	hm_rc = 0;
	cr_assert_eq(export_run_once(e2), 0);	/* no log: only copies */
	export_destroy(e2);
	ek_parse_dir(&p2, odir);
	if (!more)
		cr_assert_eq(p2.nfiles, nwant, "the next home wrote %zu files, the home %zu",
			     p2.nfiles, nwant);
	else
		cr_assert_gt(p2.nfiles, nwant, "the next home wrote %zu files, the home %zu",
			     p2.nfiles, nwant);
	for (size_t i = 0; i < nwant; i++) {
		size_t l1, l2;
		char *a, *b;

		cr_assert(listed(&p2, want[i]), "the next home did not write %s", want[i]);
		a = dir_file_bytes(ek_out, want[i], &l1);
		b = dir_file_bytes(odir, want[i], &l2);
		cr_assert(l1 == l2 && memcmp(a, b, l1) == 0, "%s differs between the home "
			  "and the next home", want[i]);
		free(a);
		free(b);
	}
	if (more) {
		struct ek_parsed p1;

		ek_parse_dir(&p1, ek_out);
		for (size_t i = 0; i < p2.n; i++) {
			const struct ek_msg *m = &p2.m[i];
			bool wanted = false;

			for (size_t k = 0; k < nwant; k++)
				wanted |= strcmp(m->file, want[k]) == 0;
			for (size_t k = 0; !wanted && k < p1.n; k++)
				cr_assert(strcmp(p1.m[k].room_uri, m->room_uri) != 0 ||
					  p1.m[k].id != m->id || strcmp(p1.m[k].type, "CHAT") != 0,
					  "CHAT %lld of %s is in %s and in the home's %s", m->id,
					  m->room_uri, m->file, p1.m[k].file);
		}
		ek_parsed_free(&p1);
	}
	ek_parsed_free(&p2);
}

/* The home's files named by a room and room seqs (first above <mark> of
 * their room), into *<v>; checks that every CHAT is in one and nothing
 * else is. */
static size_t
room_files(const struct ek_parsed *p, char ***v)
{
	size_t n = 0;
	char pre[64];

	snprintf(pre, sizeof(pre), "parley_%d_", HOME_NODE);
	*v = NULL;
	for (size_t i = 0; i < p->nfiles; i++) {
		const char *t = p->names[i] + strlen(pre);

		cr_assert_eq(strncmp(p->names[i], pre, strlen(pre)), 0);
		if (strlen(t) < CATALOG_ID_LEN + 1 || t[CATALOG_ID_LEN] != '_' || t[8] != '-')
			continue;
		for (int r = 0; r < EK_NROOMS; r++) {
			uint64_t first = strtoull(t + CATALOG_ID_LEN + 1, NULL, 10);

			if (strncmp(t, ek_rooms[r].id, CATALOG_ID_LEN) == 0 && first > hm_mark[r]) {
				*v = realloc(*v, (n + 1) * sizeof(**v));
				(*v)[n++] = p->names[i];
			}
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct ek_msg *m = &p->m[i];
		const char *t = m->file + strlen(pre);
		bool room_file = strlen(t) > CATALOG_ID_LEN && t[CATALOG_ID_LEN] == '_';

		cr_assert_eq(room_file, strcmp(m->type, "CHAT") == 0, "%s %lld in %s", m->type,
			     m->id, m->file);
		if (room_file) {
			char want[300];
			int r;

			for (r = 0; r < EK_NROOMS && strcmp(m->room_uri, ek_rooms[r].uri) != 0; r++)
				;
			cr_assert_lt(r, EK_NROOMS);
			snprintf(want, sizeof(want), "parley_%d_%s_", HOME_NODE, ek_rooms[r].id);
			cr_assert_eq(strncmp(m->file, want, strlen(want)), 0, "CHAT %lld of room %d "
				     "in %s", m->id, r, m->file);
		}
	}
	return n;
}

/* <n> events of every type, then a CHAT in each room. */
static void
log_mix_chat(unsigned n)
{
	char buf[64];

	ek_log_mix(n);
	for (int r = 0; r < EK_NROOMS; r++) {
		snprintf(buf, sizeof(buf), "to room %d & <all> %llu", r,
			 (unsigned long long)ek_nexp + 1);
		ek_log_text(WAL_EV_CHAT, r, r % 3, buf);
	}
	ek_flush_events();
}

static struct export *
home_exporter(void)
{
	struct export_config cfg = {
		.output_dir = ek_out, .files_dir = ek_files, .node_id = HOME_NODE,
		.max_events_per_file = 12, .retry_min_ms = 20, .retry_max_ms = 100,
		.interval_s = 1, .room_mark = hm_record, .room_home = hm_home, .room_cut = hm_cut,
	};
	struct export *e;
	int err = 0;

	e = export_create(ek_db, &cfg, &err);
	cr_assert_not_null(e, "export_create: %d", err);
	return e;
}

Test(export, array_home_files_are_named_and_cut_as_the_next_homes_copy_files)
{
	char rdb[400], rout[400], **want;
	struct ek_parsed p;
	struct db *d;
	size_t n;

	ek_make_rooms();
	memset(hm_mark, 0, sizeof(hm_mark));
	hm_rc = 0;
	log_mix_chat(8);	/* one batch: the rooms' CHAT events in one file each */
	ek_ex = home_exporter();
	cr_assert_eq(export_run_once(ek_ex), 11);
	ek_parse_dir(&p, ek_out);
	ek_assert_exactly_once(&p, 1, 11, false);
	memset(hm_mark, 0, sizeof(hm_mark));	/* the next home's view: as before */
	n = room_files(&p, &want);
	cr_assert_geq(n, 2, "CHAT in %zu rooms", n);
	snprintf(rdb, sizeof(rdb), "%s/replica", ek_root);
	snprintf(rout, sizeof(rout), "%s/rout", ek_root);
	d = open_replica(rdb, 1);
	next_home_writes_the_same(d, rout, want, n, false);
	db_close(d);
	tmpdb_remove(rdb);
	free(want);
	ek_parsed_free(&p);
}

/* The home exports, records, logs more and is killed between the rename
 * and the etcd transaction; <later> more events per room are logged (and
 * replicated) after that run read the log. The next home, holding copies
 * of all of them, writes the home's unrecorded room files again, the same
 * names and bytes (then, with <later>, files of the later posts alone). */
static void
killed_after_rename(unsigned later)
{
	char rdb[400], rout[400], **want;
	uint64_t recorded[EK_NROOMS];
	struct ek_parsed p;
	struct db *d;
	size_t n;

	ek_make_rooms();
	memset(hm_mark, 0, sizeof(hm_mark));
	hm_rc = 0;
	log_mix_chat(9);
	ek_ex = home_exporter();
	cr_assert_eq(export_run_once(ek_ex), 12);	/* recorded */
	memcpy(recorded, hm_mark, sizeof(recorded));
	log_mix_chat(7);
	hm_rc = -EIO;	/* killed between the rename and the etcd transaction */
	cr_assert_eq(export_run_once(ek_ex), -EIO);
	cr_assert_eq(memcmp(recorded, hm_mark, sizeof(recorded)), 0);
	ek_parse_dir(&p, ek_out);
	if (later == 0) {
		cr_assert_eq(ek_checkpoint(), 13);
		ek_assert_exactly_once(&p, 1, 22, false);
	} else {
		for (int r = 0; r < EK_NROOMS; r++)
			if (ek_rooms[r].name != NULL)
				cr_assert_gt(hm_cutv[r], hm_mark[r], "room %d: no cut above its "
					     "mark", r);
	}
	n = room_files(&p, &want);	/* the unrecorded ones: above the marks */
	cr_assert_geq(n, 2, "CHAT in %zu rooms", n);
	if (later > 0)
		log_mix_chat(later);
	snprintf(rdb, sizeof(rdb), "%s/replica", ek_root);
	snprintf(rout, sizeof(rout), "%s/rout", ek_root);
	d = open_replica(rdb, 1);	/* copies at or below the marks are trimmed */
	next_home_writes_the_same(d, rout, want, n, later > 0);
	db_close(d);
	tmpdb_remove(rdb);
	free(want);
	ek_parsed_free(&p);
}

Test(export, array_home_renamed_but_not_recorded_then_the_next_home_same_files)
{
	killed_after_rename(0);
}

/* As above, and the home had sequenced more posts of the rooms after the
 * run read the log's end: the next home holds copies of them too. It cuts
 * its first files where the dead home said (room_cut, before its renames)
 * that its own ended. */
Test(export, array_home_renamed_not_recorded_next_home_holds_more)
{
	killed_after_rename(5);
}

/* A room homed here again whose mark another home moved past some of the
 * CHAT events this node logged (it exported them from its copies, or
 * numbered them anew): the log leaves those out; the rest of the log, the
 * events above the mark, and the other types are exported once. */
Test(export, array_home_leaves_out_chat_at_or_below_the_mark)
{
	uint64_t mark[EK_NROOMS];
	struct ek_parsed p;
	size_t chat = 0;

	ek_make_rooms();
	hm_rc = 0;
	log_mix_chat(10);
	log_mix_chat(4);
	for (int r = 0; r < EK_NROOMS; r++)
		mark[r] = hm_mark[r] = ek_room_seq[r] > 1 ? ek_room_seq[r] - 1 : 0;
	ek_ex = home_exporter();
	cr_assert_eq(export_run_once(ek_ex), (long)ek_nexp);
	ek_parse_dir(&p, ek_out);
	for (uint64_t s = 1; s <= ek_nexp; s++) {
		const struct ek_exp *x = &ek_exps[s - 1];
		size_t found = 0;

		for (size_t i = 0; i < p.n; i++)
			if (ek_seq_of(&p.m[i]) == s) {
				ek_check_fields(&p.m[i], s, false);
				found++;
			}
		if (x->type != WAL_EV_CHAT || x->msg_id > mark[x->room])
			cr_assert_eq(found, 1, "event %lu (%s): %zu times", s,
				     wal_event_name(x->type), found);
		else
			cr_assert_eq(found, 0, "CHAT %lu of room %d at or below its mark %lu "
				     "exported", x->msg_id, x->room, mark[x->room]);
		chat += x->type == WAL_EV_CHAT && x->msg_id > mark[x->room];
	}
	cr_assert_geq(chat, 2);
	ek_parsed_free(&p);
}

/* One request through the storage thread, waited for. */
static void
commit_one(struct commit_producer *prod, enum commit_op op, int room, uint64_t seq,
	   const char *body)
{
	struct commit_req *q = commit_req_get(prod), *got;

	cr_assert_not_null(q);
	q->op = op;
	q->ev = WAL_EV_CHAT;
	q->logged = true;
	memcpy(q->room, ek_rooms[room].raw, 16);
	q->room_seq = seq;
	q->room_uri = ek_rooms[room].uri;
	q->room_uri_len = strlen(ek_rooms[room].uri);
	q->user = ek_users[0];
	q->user_len = strlen(ek_users[0]);
	q->body = q->content = body;
	q->body_len = q->content_len = strlen(body);
	cr_assert_eq(commit_submit(prod, &q, 1), 1);
	while (commit_poll(prod, &got, 1) == 0)
		sched_yield();
	cr_assert_eq(got->status, 0);
	commit_req_put(prod, got);
}

/* A home's tail that no replica acknowledged and a later home numbered
 * anew (this node truncated it when that home probed it as its replica,
 * COMMIT_REPLICA_TRUNCATE): its CHAT events are void, and when the room is
 * homed here again the log pass leaves them out, while what was logged
 * before (below the seq) and after (numbered anew, here or as copies) is
 * exported once. The void range goes once the checkpoint passed it. */
Test(export, array_void_tail_left_out)
{
	struct commit_config cc = { .nproducers = 1, .depth = 16 };
	static const char *const old[] = { "a1", "a2", "a3", "tail4", "tail5", "tail6" };
	static const char *const other[] = { "b1", "b2", "b3", "b4", "b5", "b6" };
	struct commit_producer *prod;
	struct commit *c;
	struct ek_parsed p;
	rocksdb_iterator_t *it;
	int err;

	ek_make_rooms();
	c = commit_create(ek_db, &cc, &err);
	cr_assert_not_null(c, "commit_create %d", err);
	prod = commit_producer(c, 0);
	for (uint64_t s = 1; s <= 6; s++) {
		commit_one(prod, COMMIT_POST, 0, s, old[s - 1]);
		commit_one(prod, COMMIT_POST, 1, s, other[s - 1]);
	}
	commit_one(prod, COMMIT_REPLICA_TRUNCATE, 0, 4, "");
	commit_one(prod, COMMIT_POST, 0, 4, "new4");
	commit_one(prod, COMMIT_POST, 0, 5, "new5");
	commit_stop(c);
	commit_destroy(c);

	ek_ex = home_exporter();
	cr_assert_eq(export_run_once(ek_ex), 14);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.n, 11, "%zu events exported", p.n);
	for (size_t i = 0; i < p.n; i++) {
		cr_assert_str_eq(p.m[i].type, "CHAT");
		cr_assert(strstr(p.m[i].content, "tail") == NULL, "void %s exported",
			  p.m[i].content);
		if (strcmp(p.m[i].room_uri, ek_rooms[0].uri) == 0 && p.m[i].id >= 4)
			cr_assert(strncmp(p.m[i].content, "new", 3) == 0, "%lld: %s", p.m[i].id,
				  p.m[i].content);
	}
	ek_parsed_free(&p);
	cr_assert_eq(export_run_once(ek_ex), 0);	/* the checkpoint passed it */
	it = rocksdb_create_iterator_cf(db_rocks(ek_db), db_ropts(ek_db), db_cf(ek_db, DB_CF_META));
	rocksdb_iter_seek(it, COMMIT_VOID_PREFIX, 6);
	if (rocksdb_iter_valid(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);

		cr_assert(klen < 6 || memcmp(k, COMMIT_VOID_PREFIX, 6) != 0,
			  "a spent void range is still there");
	}
	rocksdb_iter_destroy(it);
}

/* hold_unsettled: a home's own CHAT event logged after the exporter was
 * created waits until its room's home settled its seq (storage/acked.h);
 * the batch ends before it, other rooms' and other types' events before it
 * go out, and the next run takes the rest once it is settled. Events
 * logged before the exporter (an earlier process) are not held. */
Test(export, array_home_holds_what_its_home_did_not_settle)
{
	struct export_config cfg = {
		.output_dir = ek_out, .files_dir = ek_files, .node_id = HOME_NODE,
		.max_events_per_file = 100, .retry_min_ms = 20, .retry_max_ms = 100,
		.interval_s = 1, .room_mark = hm_record, .room_home = hm_home, .room_cut = hm_cut,
		.hold_unsettled = true,
	};
	struct acked *t = db_acked(ek_db);
	uint64_t before, held_at = 0;
	struct ek_parsed p;
	int err = 0;

	ek_make_rooms();
	log_mix_chat(4);	/* an earlier process's: not held */
	before = ek_nexp;
	ek_ex = export_create(ek_db, &cfg, &err);
	cr_assert_not_null(ek_ex, "export_create: %d", err);
	log_mix_chat(6);
	for (uint64_t s = before + 1; s <= ek_nexp && held_at == 0; s++)
		if (ek_exps[s - 1].type == WAL_EV_CHAT && ek_exps[s - 1].room == 0)
			held_at = s;
	cr_assert_neq(held_at, 0);
	for (int r = 1; r < EK_NROOMS; r++)
		acked_publish(t, ek_rooms[r].raw, ek_room_seq[r]);
	acked_publish(t, ek_rooms[0].raw, ek_exps[held_at - 1].msg_id - 1);
	cr_assert_eq(export_run_once(ek_ex), (long)held_at - 1, "exported up to the held one");
	cr_assert_eq(ek_checkpoint(), held_at);
	cr_assert_eq(export_run_once(ek_ex), 0, "still held");
	acked_publish(t, ek_rooms[0].raw, ek_room_seq[0]);
	cr_assert_eq(export_run_once(ek_ex), (long)(ek_nexp - held_at + 1));
	ek_parse_dir(&p, ek_out);
	ek_assert_exactly_once(&p, 1, ek_nexp, false);
	ek_parsed_free(&p);
}

/* The table itself: none, then the highest published; many rooms. */
Test(export, acked_table)
{
	struct acked *t = acked_create();
	uint8_t room[16] = { 0xff };

	ek_make_rooms();
	cr_assert_not_null(t);
	cr_assert_eq(acked_get(t, ek_rooms[0].raw), 0);
	acked_publish(t, ek_rooms[0].raw, 7);
	acked_publish(t, ek_rooms[0].raw, 5);
	cr_assert_eq(acked_get(t, ek_rooms[0].raw), 7);
	for (uint32_t i = 0; i < 5000; i++) {
		memcpy(room + 1, &i, sizeof(i));
		acked_publish(t, room, i + 1);
	}
	for (uint32_t i = 0; i < 5000; i++) {
		memcpy(room + 1, &i, sizeof(i));
		cr_assert_eq(acked_get(t, room), i + 1, "room %u: %lu", i, acked_get(t, room));
	}
	cr_assert_eq(acked_get(t, ek_rooms[1].raw), 0);
	acked_destroy(t);
}
