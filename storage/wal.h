/* The compliance log: every JOIN, PART, CHAT, BACKCHAT, FILEUPLOAD and
 * FILEDOWNLOAD event (xccos.md §d.1), kept in the compliance family until the
 * exporter has written it out as XML (§d.2).
 *
 * Key: global seq, 8 bytes big-endian, assigned by the storage thread,
 * starting at 1, gap-free. Value (WAL_FORMAT_VERSION 1, big-endian):
 *   off  0  u8   format version
 *        1  u8   event type (enum wal_event)
 *        2  u16  reserved, 0
 *        4  u32  length of the whole value
 *        8  u32  CRC32C (Castagnoli) of: key | value[0..8) | value[12..end)
 *       12  u64  time, Unix ms
 *       20  u64  message id (the room seq for CHAT, 0 otherwise)
 *       28  16   room id (raw GUID bytes; zero when there is no room)
 *       44  u16  room URI length, bytes
 *           u16  user URI length, bytes
 *           u32  content length, bytes (CHAT: text; FILE*: repository file
 *                name; BACKCHAT: what was viewed; JOIN/PART: empty)
 * The key is inside the CRC, so a record copied to the wrong key is caught.
 *
 * Decoding never skips: a short value (torn, -ENODATA), a bad CRC or
 * inconsistent lengths (-EBADMSG), a newer format (-EPROTONOSUPPORT) or a
 * missing seq (-ENOENT, a gap) stops iteration and reports the seq.
 *
 * Meta keys: "compliance.checkpoint" = next seq to export (1 when absent);
 * "compliance.trimmed" = every seq below it was deleted on purpose.
 *
 * Threads: wal_batch_put on the storage thread; iteration, checkpoint and
 * trim on the exporter's thread; the counters from any thread. */
#ifndef PARLEY_WAL_H
#define PARLEY_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <rocksdb/c.h>

struct db;

#define WAL_FORMAT_VERSION	1
#define WAL_HEADER_LEN		12
#define WAL_FIXED_LEN		52	/* header + fixed fields + the three lengths */
#define WAL_ROOM_RAW		16
#define WAL_CONTENT_MAX		(1u << 20)

enum wal_event {
	WAL_EV_CHAT = 1,
	WAL_EV_JOIN,
	WAL_EV_PART,
	WAL_EV_BACKCHAT,
	WAL_EV_FILEUPLOAD,
	WAL_EV_FILEDOWNLOAD,
	WAL_EV_MAX,
};

/* One event. When decoded, the pointers point into the decoded value;
 * strings are not NUL-terminated. */
struct wal_rec {
	uint64_t	seq;
	enum wal_event	type;
	uint64_t	ts_ms;
	uint64_t	msg_id;
	uint8_t		room[WAL_ROOM_RAW];
	const char	*room_uri;
	size_t		room_uri_len;
	const char	*user;
	size_t		user_len;
	const void	*content;
	size_t		content_len;
};

struct wal_iter;

/* CRC32C, table-driven. Start with <crc> 0; chain by passing the result. */
uint32_t wal_crc32c(uint32_t crc, const void *buf, size_t len);

const char *wal_event_name(enum wal_event t);	/* "CHAT", ... as in §d.2 */

/* Encoded size, or 0 when a field is over its limit or the type unknown. */
size_t wal_encoded_len(const struct wal_rec *rec);
/* Encodes <rec> as the value for key <seq>: bytes written, -EINVAL, -ENOSPC. */
ssize_t wal_encode(uint64_t seq, const struct wal_rec *rec, void *buf, size_t len);
/* Decodes the value stored under <seq>; <rec> points into <v>, rec->seq =
 * <seq>. 0, -ENODATA, -EBADMSG or -EPROTONOSUPPORT as above. */
int wal_decode(uint64_t seq, const void *v, size_t len, struct wal_rec *rec);

/* Adds the put of <seq> -> <rec> to <wb>. 0, -EINVAL or -ENOMEM. */
int wal_batch_put(struct db *db, rocksdb_writebatch_t *wb, uint64_t seq, const struct wal_rec *rec);

/* Iterates from <from> (or from the trimmed floor, if higher). NULL on no
 * memory or a meta read error (*err). Close with wal_iter_close. */
struct wal_iter *wal_iter_open(struct db *db, uint64_t from, int *err);
/* 1 with the next record in <rec> (valid until the next call), 0 at the end,
 * or a negative error as above with rec->seq the seq at fault. After an
 * error every further call returns the same error. */
int wal_iter_next(struct wal_iter *it, struct wal_rec *rec);
void wal_iter_close(struct wal_iter *it);	/* accepts NULL */

/* Next seq to export: 0 (*next, 1 when never set) or -EIO/-EBADMSG. */
int wal_checkpoint(struct db *db, uint64_t *next);
/* Records that everything below <next> is exported; synchronous. 0,
 * -EINVAL (<next> below the current checkpoint or beyond the log), -EIO. */
int wal_checkpoint_advance(struct db *db, uint64_t next);
/* Deletes every record below <upto> (DeleteRange) and raises the trimmed
 * floor. 0, -EINVAL (<upto> beyond the checkpoint: unexported), -EIO. */
int wal_trim(struct db *db, uint64_t upto);

/* The seq the next event gets: one past the highest stored, and never
 * below the checkpoint or trimmed floor (so a fully trimmed log continues
 * its numbering). 0 or -EIO. Called by the storage thread at start. */
int wal_next_seq(struct db *db, uint64_t *next);
/* Events logged but not yet exported (next seq - checkpoint). 0 or -EIO. */
int wal_lag(struct db *db, uint64_t *lag);
/* 0 while the lag is below <cap>, -ENOSPC at or over it (callers refuse
 * new events rather than lose compliance), -EIO. */
int wal_cap_check(struct db *db, uint64_t cap);

#endif
