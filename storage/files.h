/* Uploaded files, stored in the files family: one record per file of the
 * Web service's filestore (xccos.md §e, option A).
 *
 * Key:   the file id, i.e. the repository name (a lower-case GUID plus the
 *        original extension, "0988239a-...-b07771a2097c.txt"), as bytes.
 *        Repository names are unique across rooms, so the room is part of
 *        the value, not of the key.
 * Value: JSON {"v":1, "room":..., "uploader":..., "name":..., "size":...,
 *        "sha256":..., "state":"pending"|"ready", "ts":...} (FILES_ENCODING_
 *        VERSION). JSON because records are written twice per upload, never
 *        on a hot path, and an operator can read them with ldb. Decoding
 *        refuses a newer "v" and ignores unknown keys.
 *
 * States: an upload writes its record "pending" once the file is durable
 * under its final name, then "ready" once its FILEUPLOAD event is durable.
 * Only ready files are served. A crash between the two leaves a pending
 * record whose file may or may not be named by a compliance event; it is
 * never served and never deleted automatically (the exporter may still
 * need the file for its Attachment copy).
 *
 * Any thread; these functions do synchronous RocksDB I/O (the Web service's
 * thread, boot and control). */
#ifndef PARLEY_FILES_H
#define PARLEY_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;

#define FILES_ENCODING_VERSION	1
#define FILES_ID_MAX		64	/* repository name, with its NUL */

enum files_state {
	FILES_PENDING = 1,	/* stored, FILEUPLOAD not yet durable */
	FILES_READY,		/* stored and logged: may be downloaded */
};

struct files_rec {
	char			id[FILES_ID_MAX];	/* repository name (the key) */
	char			room_id[40];		/* the room's GUID text */
	char			uploader[160];		/* SIP URI */
	char			name[256];		/* the client's file name */
	uint64_t		size;			/* bytes */
	char			sha256[65];		/* lower-case hex */
	enum files_state	state;
	uint64_t		ts_ms;			/* upload time, Unix ms */
};

/* JSON encoding. encode: malloc'd, NUL-terminated, caller frees; NULL on no
 * memory or bad state. decode: 0, -EBADMSG (malformed, or a field over its
 * size) or -EPROTONOSUPPORT (newer "v"); <out>->id is left as it was. */
char *files_encode(const struct files_rec *r, size_t *len);
int files_decode(const char *buf, size_t len, struct files_rec *out);

/* Creates or replaces the record of r->id. <sync>: fsync the RocksDB WAL
 * first. 0, -EINVAL (empty or over-long id, bad state), -ENOMEM, -EIO. */
int files_put(struct db *db, const struct files_rec *r, bool sync);
/* 0 with the record in *out, -ENOENT, -EBADMSG, -EPROTONOSUPPORT, -EIO. */
int files_get(struct db *db, const char *id, struct files_rec *out);
/* Deletes the record of <id> (absent is fine). 0 or -EIO. */
int files_delete(struct db *db, const char *id, bool sync);

const char *files_state_name(enum files_state s);	/* "pending", "ready" */

#endif
