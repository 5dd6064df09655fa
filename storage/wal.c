/* The compliance log; see wal.h for the record layout and its guarantees.
 *
 * The log is append-only from the storage thread (one writer, seqs assigned
 * in order), read forward by the exporter, and cut from the front by
 * DeleteRange once exported. The iterator checks that seqs follow each
 * other, so a lost record shows up as a gap at its seq instead of being
 * stepped over. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/base/be.h"
#include "dataplane/base/log.h"
#include "storage/db.h"
#include "storage/wal.h"

#define STACK_ENC	4096
#define META_CKPT	"compliance.checkpoint"
#define META_TRIM	"compliance.trimmed"

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;	/* reflected Castagnoli */
		crc_table[i] = c;
	}
}

uint32_t
wal_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

const char *
wal_event_name(enum wal_event t)
{
	static const char *const names[WAL_EV_MAX] = {
		[WAL_EV_CHAT] = "CHAT",
		[WAL_EV_JOIN] = "JOIN",
		[WAL_EV_PART] = "PART",
		[WAL_EV_BACKCHAT] = "BACKCHAT",
		[WAL_EV_FILEUPLOAD] = "FILEUPLOAD",
		[WAL_EV_FILEDOWNLOAD] = "FILEDOWNLOAD",
	};

	return t > 0 && t < WAL_EV_MAX ? names[t] : "?";
}

size_t
wal_encoded_len(const struct wal_rec *rec)
{
	if (rec->type <= 0 || rec->type >= WAL_EV_MAX || rec->room_uri_len > UINT16_MAX ||
	    rec->user_len > UINT16_MAX || rec->content_len > WAL_CONTENT_MAX)
		return 0;
	return WAL_FIXED_LEN + rec->room_uri_len + rec->user_len + rec->content_len;
}

static uint32_t
record_crc(uint64_t seq, const unsigned char *v, size_t len)
{
	unsigned char key[8];
	uint32_t crc;

	be_put64(key, seq);
	crc = wal_crc32c(0, key, 8);
	crc = wal_crc32c(crc, v, 8);
	return wal_crc32c(crc, v + WAL_HEADER_LEN, len - WAL_HEADER_LEN);
}

ssize_t
wal_encode(uint64_t seq, const struct wal_rec *rec, void *buf, size_t len)
{
	size_t need = wal_encoded_len(rec);
	unsigned char *v = buf, *p;

	if (need == 0)
		return -EINVAL;
	if (need > len)
		return -ENOSPC;
	v[0] = WAL_FORMAT_VERSION;
	v[1] = (unsigned char)rec->type;
	v[2] = v[3] = 0;
	be_put32(v + 4, (uint32_t)need);
	p = v + WAL_HEADER_LEN;
	be_put64(p, rec->ts_ms);
	be_put64(p + 8, rec->msg_id);
	memcpy(p + 16, rec->room, WAL_ROOM_RAW);
	p += 16 + WAL_ROOM_RAW;
	p[0] = (unsigned char)(rec->room_uri_len >> 8);
	p[1] = (unsigned char)rec->room_uri_len;
	if (rec->room_uri_len)		/* memcpy(NULL, 0) is undefined */
		memcpy(p + 2, rec->room_uri, rec->room_uri_len);
	p += 2 + rec->room_uri_len;
	p[0] = (unsigned char)(rec->user_len >> 8);
	p[1] = (unsigned char)rec->user_len;
	if (rec->user_len)
		memcpy(p + 2, rec->user, rec->user_len);
	p += 2 + rec->user_len;
	be_put32(p, (uint32_t)rec->content_len);
	if (rec->content_len)
		memcpy(p + 4, rec->content, rec->content_len);
	be_put32(v + 8, record_crc(seq, v, need));
	return (ssize_t)need;
}

int
wal_decode(uint64_t seq, const void *val, size_t len, struct wal_rec *rec)
{
	const unsigned char *v = val, *p, *end;
	size_t n;

	memset(rec, 0, sizeof(*rec));
	rec->seq = seq;
	if (len < WAL_HEADER_LEN || be_get32(v + 4) > len)
		return -ENODATA;
	if (be_get32(v + 4) != len || len < WAL_FIXED_LEN)
		return -EBADMSG;
	if (be_get32(v + 8) != record_crc(seq, v, len))
		return -EBADMSG;
	if (v[0] != WAL_FORMAT_VERSION)
		return v[0] > WAL_FORMAT_VERSION ? -EPROTONOSUPPORT : -EBADMSG;
	if (v[1] == 0 || v[1] >= WAL_EV_MAX)
		return -EBADMSG;
	rec->type = (enum wal_event)v[1];
	p = v + WAL_HEADER_LEN;
	end = v + len;
	rec->ts_ms = be_get64(p);
	rec->msg_id = be_get64(p + 8);
	memcpy(rec->room, p + 16, WAL_ROOM_RAW);
	p += 16 + WAL_ROOM_RAW;

	/* The CRC matched, so these only fail on an encoder bug; check anyway. */
	n = (size_t)p[0] << 8 | p[1];
	if ((size_t)(end - p) < 2 + n + 2)
		return -EBADMSG;
	rec->room_uri = (const char *)p + 2;
	rec->room_uri_len = n;
	p += 2 + n;
	n = (size_t)p[0] << 8 | p[1];
	if ((size_t)(end - p) < 2 + n + 4)
		return -EBADMSG;
	rec->user = (const char *)p + 2;
	rec->user_len = n;
	p += 2 + n;
	n = be_get32(p);
	if ((size_t)(end - p) != 4 + n)
		return -EBADMSG;
	rec->content = p + 4;
	rec->content_len = n;
	return 0;
}

int
wal_batch_put(struct db *db, rocksdb_writebatch_t *wb, uint64_t seq, const struct wal_rec *rec)
{
	unsigned char stack[STACK_ENC], *buf = stack;
	unsigned char key[8];
	size_t len;

	len = wal_encoded_len(rec);
	if (len == 0)
		return -EINVAL;
	if (len > sizeof(stack)) {
		buf = malloc(len);	/* storage thread, not an lcore */
		if (buf == NULL)
			return -ENOMEM;
	}
	wal_encode(seq, rec, buf, len);
	be_put64(key, seq);
	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_COMPLIANCE), (const char *)key, 8,
				  (const char *)buf, len);
	if (buf != stack)
		free(buf);
	return 0;
}

/* ---- iteration ---- */

struct wal_iter {
	rocksdb_readoptions_t	*ro;
	rocksdb_iterator_t	*it;
	uint64_t		expect;		/* seq the next record must have */
	bool			started;
	int			err;		/* sticky */
	uint64_t		err_seq;
};

static int
meta_or(struct db *db, const char *name, uint64_t dflt, uint64_t *val)
{
	int rc = db_meta_get_u64(db, name, val);

	if (rc == -ENOENT) {
		*val = dflt;
		return 0;
	}
	return rc;
}

struct wal_iter *
wal_iter_open(struct db *db, uint64_t from, int *err)
{
	unsigned char key[8];
	struct wal_iter *it;
	uint64_t floor;
	int rc;

	rc = meta_or(db, META_TRIM, 0, &floor);
	if (rc != 0) {
		*err = rc;
		return NULL;
	}
	it = calloc(1, sizeof(*it));
	if (it == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	it->expect = from > floor ? from : floor;
	if (it->expect == 0)
		it->expect = 1;
	it->ro = rocksdb_readoptions_create();
	it->it = rocksdb_create_iterator_cf(db_rocks(db), it->ro, db_cf(db, DB_CF_COMPLIANCE));
	be_put64(key, it->expect);
	rocksdb_iter_seek(it->it, (const char *)key, 8);
	return it;
}

static int
fail(struct wal_iter *it, struct wal_rec *rec, uint64_t seq, int err)
{
	it->err = err;
	it->err_seq = seq;
	memset(rec, 0, sizeof(*rec));
	rec->seq = seq;
	LOG(ERR, STORAGE, "compliance record %llu: %s; export stops here until it is repaired",
	    (unsigned long long)seq, err == -ENOENT ? "missing (gap in the log)" :
	    err == -ENODATA ? "torn (shorter than its header says)" : strerror(-err));
	return err;
}

int
wal_iter_next(struct wal_iter *it, struct wal_rec *rec)
{
	const char *k, *v;
	size_t klen, vlen;
	char *err = NULL;
	uint64_t seq;
	int rc;

	if (it->err != 0) {
		memset(rec, 0, sizeof(*rec));
		rec->seq = it->err_seq;
		return it->err;
	}
	if (it->started)
		rocksdb_iter_next(it->it);
	it->started = true;
	if (!rocksdb_iter_valid(it->it)) {
		rocksdb_iter_get_error(it->it, &err);
		if (err != NULL) {
			LOG(ERR, STORAGE, "compliance scan failed: %s", err);
			rocksdb_free(err);
			return fail(it, rec, it->expect, -EIO);
		}
		return 0;
	}
	k = rocksdb_iter_key(it->it, &klen);
	if (klen != 8)
		return fail(it, rec, it->expect, -EBADMSG);
	seq = be_get64(k);
	if (seq != it->expect)
		return fail(it, rec, it->expect, -ENOENT);
	v = rocksdb_iter_value(it->it, &vlen);
	rc = wal_decode(seq, v, vlen, rec);
	if (rc != 0)
		return fail(it, rec, seq, rc);
	it->expect = seq + 1;
	return 1;
}

void
wal_iter_close(struct wal_iter *it)
{
	if (it == NULL)
		return;
	rocksdb_iter_destroy(it->it);
	rocksdb_readoptions_destroy(it->ro);
	free(it);
}

/* ---- checkpoint, trim, counters ---- */

int
wal_checkpoint(struct db *db, uint64_t *next)
{
	return meta_or(db, META_CKPT, 1, next);
}

int
wal_next_seq(struct db *db, uint64_t *next)
{
	rocksdb_iterator_t *it;
	uint64_t ckpt, floor, n = 1;
	int rc;

	if ((rc = wal_checkpoint(db, &ckpt)) != 0 || (rc = meta_or(db, META_TRIM, 0, &floor)) != 0)
		return rc;
	it = rocksdb_create_iterator_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_COMPLIANCE));
	rocksdb_iter_seek_to_last(it);
	if (rocksdb_iter_valid(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);

		if (klen == 8)
			n = be_get64(k) + 1;
	}
	if (db_scan_end(it, NULL, "compliance") != 0)
		return -EIO;
	if (n < ckpt)
		n = ckpt;
	if (n < floor)
		n = floor;
	*next = n;
	return 0;
}

int
wal_checkpoint_advance(struct db *db, uint64_t next)
{
	uint64_t cur, end;
	int rc;

	if ((rc = wal_checkpoint(db, &cur)) != 0 || (rc = wal_next_seq(db, &end)) != 0)
		return rc;
	if (next < cur || next > end)
		return -EINVAL;
	if (next == cur)
		return 0;
	return db_meta_put_u64(db, META_CKPT, next);
}

int
wal_trim(struct db *db, uint64_t upto)
{
	unsigned char lo[8], hi[8], fl[8];
	rocksdb_writebatch_t *wb;
	uint64_t ckpt, floor;
	int rc;

	if ((rc = wal_checkpoint(db, &ckpt)) != 0 || (rc = meta_or(db, META_TRIM, 0, &floor)) != 0)
		return rc;
	if (upto > ckpt)
		return -EINVAL;
	if (upto <= floor)
		return 0;
	be_put64(lo, 0);
	be_put64(hi, upto);
	be_put64(fl, upto);
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_range_cf(wb, db_cf(db, DB_CF_COMPLIANCE), (const char *)lo, 8,
					   (const char *)hi, 8);
	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_META), META_TRIM, strlen(META_TRIM),
				  (const char *)fl, 8);
	rc = db_write(db, wb, true);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

int
wal_lag(struct db *db, uint64_t *lag)
{
	uint64_t ckpt, next;
	int rc;

	if ((rc = wal_checkpoint(db, &ckpt)) != 0 || (rc = wal_next_seq(db, &next)) != 0)
		return rc;
	*lag = next - ckpt;
	return 0;
}

int
wal_cap_check(struct db *db, uint64_t cap)
{
	uint64_t lag;
	int rc;

	rc = wal_lag(db, &lag);
	if (rc != 0)
		return rc;
	if (lag >= cap) {
		LOG(WARNING, STORAGE, "compliance log holds %llu unexported events (cap %llu): "
		    "is the exporter running and its output directory writable?",
		    (unsigned long long)lag, (unsigned long long)cap);
		return -ENOSPC;
	}
	return 0;
}
