/* Room history, stored in the history family: what bccontext replays.
 *
 * Key:   room id (16 raw GUID bytes) | room seq (8 bytes, big-endian), so a
 *        room's messages are contiguous and in posting order. The room seq
 *        is assigned by the room's home lcore, starting at 1; UINT64_MAX is
 *        not a valid seq.
 * Value: version 1, length-prefixed, big-endian (HISTORY_ENCODING_VERSION):
 *          u8  version
 *          u8  flags (0)
 *          u64 server timestamp, Unix ms
 *          u16 author length, author URI bytes
 *          u32 body length, body bytes (the grpchat inner XML, verbatim)
 *          u16 file ref count, then per ref: u16 length, bytes (file ids)
 *        Binary rather than JSON because it is written once per post on the
 *        storage thread and the body is opaque bytes.
 *
 * Writes go into a caller's WriteBatch (history_batch_put), so the post and
 * its CHAT compliance event commit together (see commit.h). Reads are for
 * the thread that serves bccontext and for recovery at boot; they malloc. */
#ifndef PARLEY_HISTORY_H
#define PARLEY_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <rocksdb/c.h>

struct db;

#define HISTORY_ENCODING_VERSION	1
#define HISTORY_ROOM_RAW		16
#define HISTORY_KEY_LEN			(HISTORY_ROOM_RAW + 8)
#define HISTORY_FILES_MAX		16
#define HISTORY_AUTHOR_MAX		UINT16_MAX
#define HISTORY_BODY_MAX		(1u << 20)

/* One message. When read back, the pointers point into memory owned by the
 * record array (history_recs_free); when written, the caller's. Strings are
 * not NUL-terminated; use the lengths. */
struct history_rec {
	uint64_t	seq;
	uint64_t	ts_ms;
	const char	*author;
	size_t		author_len;
	const void	*body;
	size_t		body_len;
	unsigned	nfiles;
	const char	*files[HISTORY_FILES_MAX];
	size_t		file_lens[HISTORY_FILES_MAX];
	void		*mem_;		/* read results only: the value copy */
};

void history_key(uint8_t key[HISTORY_KEY_LEN], const uint8_t room[HISTORY_ROOM_RAW],
		 uint64_t seq);

/* Encoded size of <rec>, or 0 when a field is over its limit. */
size_t history_encoded_len(const struct history_rec *rec);
/* Encodes into <buf> of <len> bytes: bytes written, or -ENOSPC/-EINVAL. */
ssize_t history_encode(const struct history_rec *rec, void *buf, size_t len);
/* Decodes <len> bytes at <v> into <rec> (seq untouched), pointing into <v>.
 * 0, -EBADMSG (truncated or inconsistent) or -EPROTONOSUPPORT. */
int history_decode(const void *v, size_t len, struct history_rec *rec);

/* Adds the put of (<room>, <seq>) -> <rec> to <wb>. Any thread that owns
 * <wb>. 0, -EINVAL (field over limit) or -ENOMEM. */
int history_batch_put(struct db *db, rocksdb_writebatch_t *wb, const uint8_t room[HISTORY_ROOM_RAW],
		      uint64_t seq, const struct history_rec *rec);

/* A post in a room that keeps no history still takes a seq (its message id
 * in the compliance trail): adds to <wb> the room's high-water mark, meta
 * key "rseq/<room id in hex>", so that numbering goes on after a restart
 * instead of repeating ids. 0 or -EINVAL (seq UINT64_MAX). */
int history_batch_mark(struct db *db, rocksdb_writebatch_t *wb,
		       const uint8_t room[HISTORY_ROOM_RAW], uint64_t seq);

/* The last <n> messages of <room>, oldest first: count read (0..n) with a
 * malloc'd array in *out (free with history_recs_free), or -EBADMSG (a
 * stored record does not decode; logged with its seq) or -EIO/-ENOMEM. */
ssize_t history_read_last(struct db *db, const uint8_t room[HISTORY_ROOM_RAW], size_t n,
			  struct history_rec **out);

/* Messages of <room> with <from> <= seq < <to>, oldest first, at most <max>;
 * as history_read_last. */
ssize_t history_read_range(struct db *db, const uint8_t room[HISTORY_ROOM_RAW], uint64_t from,
			   uint64_t to, size_t max, struct history_rec **out);

void history_recs_free(struct history_rec *recs, size_t n);	/* accepts NULL */

/* Highest seq <room> has used, stored or marked (history_batch_mark):
 * 0 with *seq set, -ENOENT (no messages) or -EIO. At boot the home lcore
 * continues the room at *seq + 1. */
int history_last_seq(struct db *db, const uint8_t room[HISTORY_ROOM_RAW], uint64_t *seq);

#endif
