/* Per-user stored data in the prefs family: the preference blobs of
 * getpref/setpref (xccos.md b.6.9) and pending room invitations (getinv,
 * b.6.8).
 *
 * Keys (user = the user's address, "alice@example.com", lower-cased):
 *   "p/" user "\0" label      -> the blob as the client sent it (base64 text)
 *   "i/" user "\0" room id    -> an invitation, JSON {"v":1,"author":..,"ts":..}
 * The NUL after the user keeps one user's keys from running into another's
 * ("bob@x" vs "bob@x.org"), so a prefix scan lists exactly one user.
 *
 * Any thread; these functions malloc and do synchronous RocksDB I/O, so the
 * data plane calls them only for the (rare) preference and invitation
 * commands. */
#ifndef PARLEY_PREFS_H
#define PARLEY_PREFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct db;

#define PREFS_LABEL_MAX		256
#define PREFS_VALUE_MAX		(256u * 1024)

/* 0 and a malloc'd, NUL-terminated copy in *val (length *len), -ENOENT,
 * -EINVAL (label too long), -EIO. */
int prefs_get(struct db *db, const char *user, const char *label, char **val, size_t *len);
/* Stores <len> bytes. <sync>: fsync before returning. 0, -EINVAL (label or
 * value over its limit), -EIO. */
int prefs_put(struct db *db, const char *user, const char *label, const char *val, size_t len,
	      bool sync);

struct invite {
	char		room_id[40];
	char		author[160];	/* who invited, a SIP URI */
	uint64_t	ts_ms;
};

/* Records (or refreshes) an invitation of <user> to room <room_id>. 0,
 * -EINVAL, -ENOMEM, -EIO. */
int invite_put(struct db *db, const char *user, const struct invite *inv);
/* 0, or -ENOENT when there was none, -EIO. */
int invite_del(struct db *db, const char *user, const char *room_id);
/* Every pending invitation of <user>, in room id order: the count (>= 0)
 * with a malloc'd array in *out (free()), or -ENOMEM/-EIO. A record that
 * does not decode is skipped with a log line (it is advisory data). */
ssize_t invite_list(struct db *db, const char *user, struct invite **out);

#endif
