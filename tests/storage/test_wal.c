#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/base/be.h"
#include "storage/db.h"
#include "storage/wal.h"
#include "dbfixture.h"


TestSuite(wal, .init = setup, .fini = teardown);

static const char uri[] = "ma-chan://example.com/5b0c7c1e-0000-4000-8000-000000000001";
static const char user[] = "sip:alice@example.com";

static struct wal_rec
event(enum wal_event t, uint64_t i, char *content, size_t clen)
{
	struct wal_rec r = {
		.type = t,
		.ts_ms = 1700000000000ull + i,
		.msg_id = t == WAL_EV_CHAT ? i : 0,
		.room = { 0x5b, 0x0c, 0x7c, 0x1e },
		.room_uri = uri,
		.room_uri_len = sizeof(uri) - 1,
		.user = user,
		.user_len = sizeof(user) - 1,
		.content = content,
	};

	r.content_len = (size_t)snprintf(content, clen, "message %llu", (unsigned long long)i);
	return r;
}

/* Appends seqs [from, to] in one synced batch, cycling through event types. */
static void
append(uint64_t from, uint64_t to)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	char content[64];

	for (uint64_t s = from; s <= to; s++) {
		struct wal_rec r = event((enum wal_event)(1 + s % (WAL_EV_MAX - 1)), s, content,
					 sizeof(content));

		cr_assert_eq(wal_batch_put(db, wb, s, &r), 0);
	}
	cr_assert_eq(db_write(db, wb, true), 0);
	rocksdb_writebatch_destroy(wb);
}

/* Iterates from <from>; returns records seen, *rc the final return. */
static uint64_t
walk(uint64_t from, int *rc, struct wal_rec *last)
{
	struct wal_iter *it;
	uint64_t n = 0;
	int err = 0;

	it = wal_iter_open(db, from, &err);
	cr_assert_not_null(it, "%d", err);
	while ((*rc = wal_iter_next(it, last)) == 1)
		n++;
	wal_iter_close(it);
	return n;
}

Test(wal, crc32c_known_answer)
{
	cr_assert_eq(wal_crc32c(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(wal_crc32c(wal_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	cr_assert_eq(wal_crc32c(0, "", 0), 0);
}

Test(wal, codec_roundtrip_every_type)
{
	unsigned char buf[512];
	char content[64];

	for (int t = WAL_EV_CHAT; t < WAL_EV_MAX; t++) {
		struct wal_rec in = event(t, 7, content, sizeof(content)), out;
		ssize_t len = wal_encode(99, &in, buf, sizeof(buf));

		cr_assert_gt(len, 0);
		cr_assert_eq(wal_decode(99, buf, (size_t)len, &out), 0);
		cr_assert_eq(out.seq, 99);
		cr_assert_eq(out.type, (enum wal_event)t);
		cr_assert_eq(out.ts_ms, in.ts_ms);
		cr_assert_eq(out.msg_id, in.msg_id);
		cr_assert(memcmp(out.room, in.room, WAL_ROOM_RAW) == 0);
		cr_assert_eq(out.room_uri_len, in.room_uri_len);
		cr_assert(memcmp(out.room_uri, uri, in.room_uri_len) == 0);
		cr_assert(memcmp(out.user, user, in.user_len) == 0);
		cr_assert_eq(out.content_len, in.content_len);
		cr_assert(memcmp(out.content, content, in.content_len) == 0);
		/* The key is part of the CRC. */
		cr_assert_eq(wal_decode(100, buf, (size_t)len, &out), -EBADMSG);
	}
	cr_assert_str_eq(wal_event_name(WAL_EV_FILEDOWNLOAD), "FILEDOWNLOAD");
	cr_assert_str_eq(wal_event_name(WAL_EV_BACKCHAT), "BACKCHAT");
}

Test(wal, codec_detects_every_flip_and_cut)
{
	unsigned char buf[512];
	char content[64];
	struct wal_rec in = event(WAL_EV_CHAT, 3, content, sizeof(content)), out;
	ssize_t len = wal_encode(5, &in, buf, sizeof(buf));

	for (ssize_t i = 0; i < len; i++) {
		buf[i] ^= 0x10;
		cr_assert_lt(wal_decode(5, buf, (size_t)len, &out), 0, "flip at %zd", i);
		cr_assert_eq(out.seq, 5);
		buf[i] ^= 0x10;
	}
	for (ssize_t cut = 0; cut < len; cut++)
		cr_assert_eq(wal_decode(5, buf, (size_t)cut, &out), -ENODATA, "cut %zd", cut);
}

Test(wal, roundtrip_through_the_database_across_reopen)
{
	struct wal_rec r;
	uint64_t next;
	int rc;

	append(1, 500);
	db_close(db);
	open_db();
	cr_assert_eq(walk(1, &rc, &r), 500);
	cr_assert_eq(rc, 0);
	cr_assert_eq(walk(250, &rc, &r), 251);
	cr_assert_eq(wal_next_seq(db, &next), 0);
	cr_assert_eq(next, 501);
}

Test(wal, corrupt_record_is_reported_with_its_seq)
{
	struct wal_rec r;
	size_t len;
	char *v;
	int rc;

	append(1, 20);
	v = raw_get(13, &len);
	v[len - 2] ^= 0x01;		/* one bit of the content */
	raw_put(13, v, len);
	rocksdb_free(v);

	cr_assert_eq(walk(1, &rc, &r), 12);
	cr_assert_eq(rc, -EBADMSG);
	cr_assert_eq(r.seq, 13);
	/* Starting past it works; starting at it reports it again. */
	cr_assert_eq(walk(14, &rc, &r), 7);
	cr_assert_eq(rc, 0);
	cr_assert_eq(walk(13, &rc, &r), 0);
	cr_assert_eq(r.seq, 13);
}

Test(wal, torn_record_is_reported_with_its_seq)
{
	struct wal_iter *it;
	struct wal_rec r;
	size_t len;
	char *v;
	int rc, err;

	append(1, 20);
	v = raw_get(7, &len);
	raw_put(7, v, len - 9);		/* the tail never made it */
	rocksdb_free(v);

	cr_assert_eq(walk(1, &rc, &r), 6);
	cr_assert_eq(rc, -ENODATA);
	cr_assert_eq(r.seq, 7);

	/* Sticky: the iterator never steps past the bad record. */
	it = wal_iter_open(db, 7, &err);
	cr_assert_eq(wal_iter_next(it, &r), -ENODATA);
	cr_assert_eq(wal_iter_next(it, &r), -ENODATA);
	cr_assert_eq(r.seq, 7);
	wal_iter_close(it);
}

Test(wal, missing_record_is_a_gap_not_a_skip)
{
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	unsigned char key[8];
	struct wal_rec r;
	char *err = NULL;
	int rc;

	append(1, 10);
	be_put64(key, 4);
	rocksdb_delete_cf(db_rocks(db), wo, db_cf(db, DB_CF_COMPLIANCE), (const char *)key, 8,
			  &err);
	rocksdb_writeoptions_destroy(wo);
	cr_assert_null(err);
	cr_assert_eq(walk(1, &rc, &r), 3);
	cr_assert_eq(rc, -ENOENT);
	cr_assert_eq(r.seq, 4);
}

Test(wal, checkpoint_trim_lag_and_cap)
{
	uint64_t v;
	struct wal_rec r;
	int rc;

	cr_assert_eq(wal_checkpoint(db, &v), 0);
	cr_assert_eq(v, 1);
	append(1, 100);
	cr_assert_eq(wal_lag(db, &v), 0);
	cr_assert_eq(v, 100);
	cr_assert_eq(wal_cap_check(db, 1000), 0);
	cr_assert_eq(wal_cap_check(db, 100), -ENOSPC);

	cr_assert_eq(wal_trim(db, 2), -EINVAL);		/* not exported yet */
	cr_assert_eq(wal_checkpoint_advance(db, 61), 0);
	cr_assert_eq(wal_checkpoint_advance(db, 60), -EINVAL);	/* backwards */
	cr_assert_eq(wal_checkpoint_advance(db, 102), -EINVAL);	/* beyond the log */
	cr_assert_eq(wal_lag(db, &v), 0);
	cr_assert_eq(v, 40);
	cr_assert_eq(wal_trim(db, 62), -EINVAL);
	cr_assert_eq(wal_trim(db, 61), 0);

	db_close(db);
	open_db();
	cr_assert_eq(wal_checkpoint(db, &v), 0);
	cr_assert_eq(v, 61);
	/* From 1 starts at the trimmed floor, with no gap reported. */
	cr_assert_eq(walk(1, &rc, &r), 40);
	cr_assert_eq(rc, 0);

	/* Export and trim everything: numbering still continues. */
	cr_assert_eq(wal_checkpoint_advance(db, 101), 0);
	cr_assert_eq(wal_trim(db, 101), 0);
	cr_assert_eq(walk(1, &rc, &r), 0);
	cr_assert_eq(rc, 0);
	cr_assert_eq(wal_next_seq(db, &v), 0);
	cr_assert_eq(v, 101);
	cr_assert_eq(wal_lag(db, &v), 0);
	cr_assert_eq(v, 0);
}
