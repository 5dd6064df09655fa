/* The user table: an Apache htdigest file (`user:realm:HA1`, as written by
 * htdigest(1) from apache2-utils), loaded into an immutable, refcounted table.
 *
 * HA1 is 32 hex digits (MD5, what htdigest writes) or 64 (SHA-256, RFC 8760,
 * written by `parleyctl user add`); one user may have one line of each.
 * User names are SIP addresses without "sip:" (alice@example.com), compared
 * case-insensitively; realms case-sensitively.
 *
 * A reload builds a new table and swaps a pointer; readers hold a reference
 * (htdigest_get/put, atomic because tables cross lcores) for as long as they
 * use a returned HA1. Lookups allocate nothing. */
#ifndef PARLEY_HTDIGEST_H
#define PARLEY_HTDIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/sip/digest.h"

struct htdigest;

/* Loads <path>. A missing file is an empty table when <missing_ok>. On error
 * returns NULL and writes a message naming the file and line to <errbuf>.
 * Blank lines and lines starting with '#' are ignored. Refcount starts at 1. */
struct htdigest *htdigest_load(const char *path, bool missing_ok, char *errbuf, size_t errlen);

void htdigest_get(struct htdigest *h);
void htdigest_put(struct htdigest *h);	/* frees at zero; accepts NULL */

size_t htdigest_count(const struct htdigest *h);	/* distinct users */

/* HA1 hex for (user, realm, alg), NUL-terminated, or NULL. Valid while the
 * caller holds a reference to <h>. */
const char *htdigest_ha1(const struct htdigest *h, const char *user, size_t ulen,
			 const char *realm, size_t rlen, enum digest_alg alg);

/* True when the user exists in <realm> with any algorithm. */
bool htdigest_has_user(const struct htdigest *h, const char *user, size_t ulen,
		       const char *realm, size_t rlen);

/* Rewrites <path> atomically (temp file, fsync, rename, fsync dir) with the
 * user's lines set to the given password (MD5 and SHA-256 lines), or removed
 * when <password> is NULL. Other lines are kept as they were. 0, -ENOENT
 * (removing a user that is not there), or -errno. Boot/control thread. */
int htdigest_set_user(const char *path, const char *user, const char *realm,
		      const char *password);

/* The lines htdigest_set_user() writes for <password> (MD5, then SHA-256):
 * malloc'd text in *<out>. 0, -EINVAL or -ENOMEM. */
int htdigest_user_lines(const char *user, const char *realm, const char *password, char **out);

/* htdigest_set_user() with the user's lines given as they are: <lines> is
 * "user:realm:HA1\n" lines of that user and realm (HA1 32 or 64 hex
 * digits; what htdigest_user_lines() makes), or NULL to remove the user.
 * -EINVAL for lines that are not that. */
int htdigest_set_user_lines(const char *path, const char *user, const char *realm,
			    const char *lines);

#endif
