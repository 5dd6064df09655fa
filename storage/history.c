/* Room history; see history.h for the key and value layout.
 *
 * Reads iterate with lower/upper bounds set to the room's key range, so an
 * iterator never wanders into the next room. A record that does not decode
 * fails the whole read with its seq in the log: bccontext then answers with
 * an error instead of a history with a silent hole. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/base/be.h"
#include "dataplane/base/log.h"
#include "storage/db.h"
#include "storage/history.h"

#define STACK_ENC	4096

void
history_key(uint8_t key[HISTORY_KEY_LEN], const uint8_t room[HISTORY_ROOM_RAW], uint64_t seq)
{
	memcpy(key, room, HISTORY_ROOM_RAW);
	be_put64(key + HISTORY_ROOM_RAW, seq);
}

size_t
history_encoded_len(const struct history_rec *rec)
{
	size_t len = 1 + 1 + 8 + 2 + rec->author_len + 4 + rec->body_len + 2;

	if (rec->author_len > HISTORY_AUTHOR_MAX || rec->body_len > HISTORY_BODY_MAX ||
	    rec->nfiles > HISTORY_FILES_MAX)
		return 0;
	for (unsigned i = 0; i < rec->nfiles; i++) {
		if (rec->file_lens[i] > UINT16_MAX)
			return 0;
		len += 2 + rec->file_lens[i];
	}
	return len;
}

static unsigned char *
put16(unsigned char *p, size_t v)
{
	be_put16(p, (uint16_t)v);
	return p + 2;
}

static unsigned char *
put32(unsigned char *p, size_t v)
{
	be_put32(p, (uint32_t)v);
	return p + 4;
}

ssize_t
history_encode(const struct history_rec *rec, void *buf, size_t len)
{
	size_t need = history_encoded_len(rec);
	unsigned char *p = buf;

	if (need == 0)
		return -EINVAL;
	if (need > len)
		return -ENOSPC;
	*p++ = HISTORY_ENCODING_VERSION;
	*p++ = 0;
	be_put64(p, rec->ts_ms);
	p += 8;
	p = put16(p, rec->author_len);
	if (rec->author_len)
		memcpy(p, rec->author, rec->author_len);
	p += rec->author_len;
	p = put32(p, rec->body_len);
	if (rec->body_len)
		memcpy(p, rec->body, rec->body_len);
	p += rec->body_len;
	p = put16(p, rec->nfiles);
	for (unsigned i = 0; i < rec->nfiles; i++) {
		p = put16(p, rec->file_lens[i]);
		memcpy(p, rec->files[i], rec->file_lens[i]);
		p += rec->file_lens[i];
	}
	return (ssize_t)need;
}

/* A bounded reader: every take checks the remaining length. */
struct rd {
	const unsigned char	*p;
	size_t			left;
};

static bool
take(struct rd *r, size_t n, const unsigned char **out)
{
	if (r->left < n)
		return false;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static bool
take_uint(struct rd *r, size_t n, uint64_t *v)
{
	const unsigned char *b;

	if (!take(r, n, &b))
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = (*v << 8) | b[i];
	return true;
}

int
history_decode(const void *v, size_t len, struct history_rec *rec)
{
	struct rd r = { v, len };
	const unsigned char *b;
	uint64_t n;

	if (!take(&r, 2, &b))
		return -EBADMSG;
	if (b[0] != HISTORY_ENCODING_VERSION)
		return b[0] > HISTORY_ENCODING_VERSION ? -EPROTONOSUPPORT : -EBADMSG;
	if (!take_uint(&r, 8, &rec->ts_ms))
		return -EBADMSG;
	if (!take_uint(&r, 2, &n) || !take(&r, n, &b))
		return -EBADMSG;
	rec->author = (const char *)b;
	rec->author_len = n;
	if (!take_uint(&r, 4, &n) || !take(&r, n, &b))
		return -EBADMSG;
	rec->body = b;
	rec->body_len = n;
	if (!take_uint(&r, 2, &n) || n > HISTORY_FILES_MAX)
		return -EBADMSG;
	rec->nfiles = (unsigned)n;
	for (unsigned i = 0; i < rec->nfiles; i++) {
		if (!take_uint(&r, 2, &n) || !take(&r, n, &b))
			return -EBADMSG;
		rec->files[i] = (const char *)b;
		rec->file_lens[i] = n;
	}
	return r.left == 0 ? 0 : -EBADMSG;
}

int
history_batch_put(struct db *db, rocksdb_writebatch_t *wb, const uint8_t room[HISTORY_ROOM_RAW],
		  uint64_t seq, const struct history_rec *rec)
{
	unsigned char stack[STACK_ENC], *buf = stack;
	uint8_t key[HISTORY_KEY_LEN];
	size_t len;

	len = history_encoded_len(rec);
	if (len == 0 || seq == UINT64_MAX)
		return -EINVAL;
	if (len > sizeof(stack)) {
		buf = malloc(len);	/* storage thread, not an lcore */
		if (buf == NULL)
			return -ENOMEM;
	}
	history_encode(rec, buf, len);
	history_key(key, room, seq);
	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_HISTORY), (const char *)key, sizeof(key),
				  (const char *)buf, len);
	if (buf != stack)
		free(buf);
	return 0;
}

static void
mark_key(char key[5 + 2 * HISTORY_ROOM_RAW + 1], const uint8_t room[HISTORY_ROOM_RAW])
{
	static const char hex[] = "0123456789abcdef";

	memcpy(key, "rseq/", 5);
	for (int i = 0; i < HISTORY_ROOM_RAW; i++) {
		key[5 + 2 * i] = hex[room[i] >> 4];
		key[6 + 2 * i] = hex[room[i] & 15];
	}
	key[5 + 2 * HISTORY_ROOM_RAW] = '\0';
}

int
history_batch_mark(struct db *db, rocksdb_writebatch_t *wb, const uint8_t room[HISTORY_ROOM_RAW],
		   uint64_t seq)
{
	char key[5 + 2 * HISTORY_ROOM_RAW + 1];
	unsigned char v[8];

	if (seq == UINT64_MAX)
		return -EINVAL;
	mark_key(key, room);
	be_put64(v, seq);
	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_META), key, strlen(key), (const char *)v,
				  sizeof(v));
	return 0;
}

void
history_recs_free(struct history_rec *recs, size_t n)
{
	if (recs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(recs[i].mem_);
	free(recs);
}

/* Copies the iterator's current value into <rec>. 0 or -errno. */
static int
copy_rec(rocksdb_iterator_t *it, const uint8_t *room, struct history_rec *rec)
{
	const char *k, *v;
	size_t klen, vlen;
	void *mem;
	int rc;

	k = rocksdb_iter_key(it, &klen);
	v = rocksdb_iter_value(it, &vlen);
	if (klen != HISTORY_KEY_LEN) {
		LOG(ERR, STORAGE, "history key of %zu bytes in a room range", klen);
		return -EBADMSG;
	}
	memset(rec, 0, sizeof(*rec));
	rec->seq = be_get64(k + HISTORY_ROOM_RAW);
	mem = malloc(vlen ? vlen : 1);
	if (mem == NULL)
		return -ENOMEM;
	memcpy(mem, v, vlen);
	rc = history_decode(mem, vlen, rec);
	if (rc != 0) {
		free(mem);
		LOG(ERR, STORAGE, "history record %02x%02x%02x%02x.../%llu does not decode (%s)",
		    room[0], room[1], room[2], room[3], (unsigned long long)rec->seq,
		    strerror(-rc));
		return rc;
	}
	rec->mem_ = mem;
	return 0;
}

/* Reads up to <max> records of <room> in [from, to): forward from <from>
 * when !<backward>, else backward from the end, and returns them oldest
 * first. */
static ssize_t
read_span(struct db *db, const uint8_t *room, uint64_t from, uint64_t to, size_t max,
	  bool backward, struct history_rec **out)
{
	uint8_t lo[HISTORY_KEY_LEN], hi[HISTORY_KEY_LEN];
	struct history_rec *recs = NULL;
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
	ssize_t rc = 0;
	size_t n = 0, cap;

	*out = NULL;
	if (max == 0 || from >= to)
		return 0;
	cap = max < 64 ? max : 64;	/* <max> may be a generous cap: grow as needed */
	recs = malloc(cap * sizeof(*recs));
	if (recs == NULL)
		return -ENOMEM;
	history_key(lo, room, from);
	history_key(hi, room, to);
	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof(hi));
	it = rocksdb_create_iterator_cf(db_rocks(db), ro, db_cf(db, DB_CF_HISTORY));
	if (backward)
		rocksdb_iter_seek_to_last(it);
	else
		rocksdb_iter_seek(it, (const char *)lo, sizeof(lo));
	while (n < max && rocksdb_iter_valid(it)) {
		if (n == cap) {
			struct history_rec *more;

			cap = cap * 2 < max ? cap * 2 : max;
			more = realloc(recs, cap * sizeof(*recs));
			if (more == NULL) {
				rc = -ENOMEM;
				break;
			}
			recs = more;
		}
		rc = copy_rec(it, room, &recs[n]);
		if (rc != 0)
			break;
		n++;
		if (backward)
			rocksdb_iter_prev(it);
		else
			rocksdb_iter_next(it);
	}
	if (db_scan_end(it, ro, "history") != 0)
		rc = -EIO;
	if (rc != 0) {
		history_recs_free(recs, n);
		return rc;
	}
	if (n == 0) {
		free(recs);
		return 0;
	}
	if (backward) {
		for (size_t i = 0; i < n / 2; i++) {
			struct history_rec t = recs[i];

			recs[i] = recs[n - 1 - i];
			recs[n - 1 - i] = t;
		}
	}
	*out = recs;
	return (ssize_t)n;
}

ssize_t
history_read_last(struct db *db, const uint8_t room[HISTORY_ROOM_RAW], size_t n,
		  struct history_rec **out)
{
	return read_span(db, room, 0, UINT64_MAX, n, true, out);
}

ssize_t
history_read_range(struct db *db, const uint8_t room[HISTORY_ROOM_RAW], uint64_t from,
		   uint64_t to, size_t max, struct history_rec **out)
{
	return read_span(db, room, from, to, max, false, out);
}

int
history_last_seq(struct db *db, const uint8_t room[HISTORY_ROOM_RAW], uint64_t *seq)
{
	uint8_t lo[HISTORY_KEY_LEN], hi[HISTORY_KEY_LEN];
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
	int rc = -ENOENT;

	history_key(lo, room, 0);
	history_key(hi, room, UINT64_MAX);
	ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof(hi));
	it = rocksdb_create_iterator_cf(db_rocks(db), ro, db_cf(db, DB_CF_HISTORY));
	rocksdb_iter_seek_to_last(it);
	if (rocksdb_iter_valid(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);

		if (klen == HISTORY_KEY_LEN) {
			*seq = be_get64(k + HISTORY_ROOM_RAW);
			rc = 0;
		} else {
			rc = -EBADMSG;
		}
	}
	if (db_scan_end(it, ro, "history") != 0)
		rc = -EIO;
	if (rc == 0 || rc == -ENOENT) {
		/* A room that was (or still is) unlogged numbered posts it
		 * did not keep: continue after the higher of the two. */
		char key[5 + 2 * HISTORY_ROOM_RAW + 1];
		uint64_t mark;
		int mrc;

		mark_key(key, room);
		mrc = db_meta_get_u64(db, key, &mark);
		if (mrc == 0 && (rc == -ENOENT || mark > *seq)) {
			*seq = mark;
			rc = 0;
		} else if (mrc != 0 && mrc != -ENOENT) {
			rc = mrc;
		}
	}
	return rc;
}
