/* File-transfer tokens: issued over XCCOS (cmd:getfutok / cmd:getfdtok,
 * xccos.md b.6.12) by the Channel service on an lcore, taken by the Web
 * service's thread when the HTTPS request arrives (xccos.md §e, option A).
 *
 * A token is a random v4 GUID, single-use, expires after a TTL, and is
 * bound to the user, the room, the direction and the file (the repository
 * name: a GUID plus the original extension, chosen here for uploads). The
 * store is a small table behind a mutex: tokens are rare next to posts, and
 * the two sides are different threads. Any thread. */
#ifndef PARLEY_FTOKEN_H
#define PARLEY_FTOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FTOKEN_LEN		36		/* GUID text, without NUL */
#define FTOKEN_NAME_MAX		64		/* repository file name */
#define FTOKEN_EXT_MAX		16		/* extension kept from the client's name */

enum ftoken_dir {
	FTOKEN_UPLOAD = 1,
	FTOKEN_DOWNLOAD,
};

struct ftoken_info {
	enum ftoken_dir	dir;
	char		user[160];		/* sip:user@domain */
	char		room_id[40];		/* the room's GUID text */
	char		room_uri[200];
	char		name[FTOKEN_NAME_MAX];	/* repository file name */
	char		orig[256];		/* the client's file name (fileUrl), for logs */
	uint64_t	expires_s;		/* CLOCK_MONOTONIC seconds */
};

struct ftoken_store;

/* <ttl_s>: lifetime of a token; <max>: tokens alive at once (issuing past
 * it fails with -ENOSPC rather than growing without bound). */
struct ftoken_store *ftoken_store_create(uint32_t ttl_s, uint32_t max);
void ftoken_store_destroy(struct ftoken_store *s);	/* accepts NULL */

/* The repository name for a new upload of <client_name>: a fresh lower-case
 * GUID plus the client's extension when it is short and made of [A-Za-z0-9]
 * (".txt"); otherwise no extension. 0 or -EIO (no randomness). */
int ftoken_repo_name(const char *client_name, char out[FTOKEN_NAME_MAX]);

/* Issues a token for <info> (expires_s is set here from <now_s>). 0 and the
 * token in <token> (NUL-terminated), -ENOSPC (too many alive) or -EIO. */
int ftoken_issue(struct ftoken_store *s, struct ftoken_info *info, uint64_t now_s,
		 char token[FTOKEN_LEN + 1]);

/* Takes token <token> for a request in direction <dir> on room <room_id>
 * and repository name <name>: on success the token is gone (single use) and
 * *out describes it. -ENOENT (unknown, used or expired), -EACCES (bound to
 * another direction, room or file: the token is burnt all the same, so a
 * guessed binding cannot be retried). */
int ftoken_take(struct ftoken_store *s, const char *token, enum ftoken_dir dir,
		const char *room_id, const char *name, uint64_t now_s, struct ftoken_info *out);

/* Tokens alive now (for stats). */
uint32_t ftoken_count(struct ftoken_store *s);

#endif
