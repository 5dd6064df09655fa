#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "storage/db.h"
#include "storage/history.h"
#include "dbfixture.h"

static const uint8_t room_a[16] = { 0x5b, 0x0c, 0x7c, 0x1e, 1 };
static const uint8_t room_b[16] = { 0x5b, 0x0c, 0x7c, 0x1e, 2 };
static const uint8_t room_c[16] = { 0x5b, 0x0c, 0x7c, 0x1e, 3 };

TestSuite(history, .init = setup, .fini = teardown);

/* Posts seqs [from, to] to <room>, body "<chat>room R msg S</chat>". */
static void
post(const uint8_t *room, uint64_t from, uint64_t to)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	char body[64];

	for (uint64_t s = from; s <= to; s++) {
		struct history_rec r = {
			.ts_ms = 1700000000000ull + s,
			.author = "sip:alice@example.com",
			.author_len = 21,
			.body = body,
		};

		r.body_len = (size_t)snprintf(body, sizeof(body), "<chat>room %d msg %llu</chat>",
					      room[4], (unsigned long long)s);
		cr_assert_eq(history_batch_put(db, wb, room, s, &r), 0);
	}
	cr_assert_eq(db_write(db, wb, true), 0);
	rocksdb_writebatch_destroy(wb);
}

static void
assert_msg(const struct history_rec *r, const uint8_t *room, uint64_t seq)
{
	char want[64];
	size_t n = (size_t)snprintf(want, sizeof(want), "<chat>room %d msg %llu</chat>", room[4],
				    (unsigned long long)seq);

	cr_assert_eq(r->seq, seq);
	cr_assert_eq(r->ts_ms, 1700000000000ull + seq);
	cr_assert_eq(r->author_len, 21);
	cr_assert(memcmp(r->author, "sip:alice@example.com", 21) == 0);
	cr_assert_eq(r->body_len, n);
	cr_assert(memcmp(r->body, want, n) == 0, "seq %llu", (unsigned long long)seq);
}

Test(history, last_n_oldest_first_across_reopen)
{
	struct history_rec *recs;
	ssize_t n;

	post(room_a, 1, 30);
	post(room_b, 1, 5);
	post(room_c, 1, 40);
	db_close(db);
	open_db();

	n = history_read_last(db, room_b, 25, &recs);
	cr_assert_eq(n, 25 > 5 ? 5 : 25);
	for (ssize_t i = 0; i < n; i++)
		assert_msg(&recs[i], room_b, (uint64_t)i + 1);
	history_recs_free(recs, (size_t)n);

	n = history_read_last(db, room_a, 25, &recs);
	cr_assert_eq(n, 25);
	for (ssize_t i = 0; i < n; i++)
		assert_msg(&recs[i], room_a, 6 + (uint64_t)i);
	history_recs_free(recs, (size_t)n);

	n = history_read_last(db, room_a, 1000, &recs);
	cr_assert_eq(n, 30);
	assert_msg(&recs[0], room_a, 1);
	assert_msg(&recs[29], room_a, 30);
	history_recs_free(recs, (size_t)n);
}

Test(history, empty_room_reads_nothing)
{
	struct history_rec *recs;
	uint64_t seq;

	post(room_a, 1, 3);
	cr_assert_eq(history_read_last(db, room_b, 10, &recs), 0);
	cr_assert_null(recs);
	cr_assert_eq(history_last_seq(db, room_b, &seq), -ENOENT);
}

Test(history, range_reads_half_open_interval)
{
	struct history_rec *recs;
	ssize_t n;

	post(room_a, 1, 50);
	post(room_b, 1, 50);
	n = history_read_range(db, room_a, 10, 20, 100, &recs);
	cr_assert_eq(n, 10);
	for (ssize_t i = 0; i < n; i++)
		assert_msg(&recs[i], room_a, 10 + (uint64_t)i);
	history_recs_free(recs, (size_t)n);
	n = history_read_range(db, room_a, 45, 1000, 3, &recs);
	cr_assert_eq(n, 3);
	assert_msg(&recs[2], room_a, 47);
	history_recs_free(recs, (size_t)n);
}

Test(history, next_seq_continues_after_restart)
{
	uint64_t seq = 0;

	post(room_a, 1, 17);
	post(room_b, 1, 4);
	post(room_c, 1, 300);
	db_close(db);
	open_db();
	cr_assert_eq(history_last_seq(db, room_a, &seq), 0);
	cr_assert_eq(seq, 17);
	cr_assert_eq(history_last_seq(db, room_b, &seq), 0);
	cr_assert_eq(seq, 4);
	post(room_b, seq + 1, seq + 1);
	cr_assert_eq(history_last_seq(db, room_b, &seq), 0);
	cr_assert_eq(seq, 5);
	cr_assert_eq(history_last_seq(db, room_c, &seq), 0);
	cr_assert_eq(seq, 300);
}

/* Marks <room> (no history kept) as having used seq <seq>. */
static void
mark(const uint8_t *room, uint64_t seq)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();

	cr_assert_eq(history_batch_mark(db, wb, room, seq), 0);
	cr_assert_eq(db_write(db, wb, true), 0);
	rocksdb_writebatch_destroy(wb);
}

/* A room without history numbers its posts too (their compliance ids):
 * after a restart it goes on, it does not start again at 1; a room that
 * switches between logged and unlogged continues after the higher. */
Test(history, unlogged_room_seq_continues_after_restart)
{
	uint64_t seq = 0;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();

	cr_assert_eq(history_batch_mark(db, wb, room_a, UINT64_MAX), -EINVAL);
	rocksdb_writebatch_destroy(wb);
	for (uint64_t s = 1; s <= 42; s++)
		mark(room_a, s);
	post(room_b, 1, 10);
	mark(room_b, 25);	/* logged 1..10, then unlogged 11..25 */
	post(room_c, 1, 30);
	mark(room_c, 12);	/* an old mark below what history holds */
	db_close(db);
	open_db();
	cr_assert_eq(history_last_seq(db, room_a, &seq), 0);
	cr_assert_eq(seq, 42);
	cr_assert_eq(history_last_seq(db, room_b, &seq), 0);
	cr_assert_eq(seq, 25);
	cr_assert_eq(history_last_seq(db, room_c, &seq), 0);
	cr_assert_eq(seq, 30);
	/* Nothing of the unlogged room is readable as history. */
	{
		struct history_rec *recs = NULL;

		cr_assert_eq(history_read_last(db, room_a, 10, &recs), 0);
		history_recs_free(recs, 0);
	}
}

Test(history, codec_roundtrip_with_files_and_truncation)
{
	const char *files[] = { "0988239a-bb66-4616-90a4-b07771a2097c.txt", "x.png" };
	struct history_rec in = {
		.ts_ms = 42,
		.author = "sip:bob@example.com",
		.author_len = 19,
		.body = "<chat>hi</chat>",
		.body_len = 15,
		.nfiles = 2,
		.files = { files[0], files[1] },
		.file_lens = { strlen(files[0]), strlen(files[1]) },
	}, out;
	unsigned char buf[256];
	ssize_t len;

	len = history_encode(&in, buf, sizeof(buf));
	cr_assert_eq((size_t)len, history_encoded_len(&in));
	cr_assert_eq(history_decode(buf, (size_t)len, &out), 0);
	cr_assert_eq(out.ts_ms, 42);
	cr_assert_eq(out.nfiles, 2);
	cr_assert(memcmp(out.files[1], "x.png", 5) == 0);
	cr_assert_eq(out.file_lens[0], strlen(files[0]));
	for (ssize_t cut = 0; cut < len; cut++)
		cr_assert_eq(history_decode(buf, (size_t)cut, &out), -EBADMSG, "cut %zd", cut);
	buf[0] = 9;
	cr_assert_eq(history_decode(buf, (size_t)len, &out), -EPROTONOSUPPORT);
	cr_assert_eq(history_encode(&in, buf, 10), -ENOSPC);
}

Test(history, corrupt_record_fails_the_read)
{
	uint8_t key[HISTORY_KEY_LEN];
	struct history_rec *recs;
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	char *err = NULL;

	post(room_a, 1, 5);
	history_key(key, room_a, 3);
	rocksdb_put_cf(db_rocks(db), wo, db_cf(db, DB_CF_HISTORY), (const char *)key, sizeof(key),
		       "\x01\x00\x00", 3, &err);
	rocksdb_writeoptions_destroy(wo);
	cr_assert_null(err);
	cr_assert_eq(history_read_last(db, room_a, 10, &recs), -EBADMSG);
}
