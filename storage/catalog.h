/* The room catalog, stored in the catalog family.
 *
 * Keys (one family, two prefixes):
 *   "r/" <room id>            -> the room, JSON (below)
 *   "n/" <name, ASCII-folded> -> the room id; makes names unique regardless
 *                                of case. Non-ASCII bytes compare exactly.
 *
 * A room id is a lower-case v4 GUID string (36 chars) drawn from RAND_bytes
 * at creation and never changed; its URI is ma-chan://<domain>/<id>, spelt
 * once at creation and stored, so every reply uses the same bytes (xccos.md
 * §c). History and compliance keys use the 16 raw GUID bytes
 * (catalog_id_pack).
 *
 * Encoding: a JSON object with "v":1 (CATALOG_ENCODING_VERSION). JSON because
 * the catalog is small, written rarely and read at boot, and an operator can
 * read it with ldb. Decoding refuses a newer "v" and ignores unknown keys, so
 * a field can be added without a version bump.
 *
 * Threads: these functions are for boot and control threads (they malloc and
 * take a mutex that serialises writers, which keeps the name index right). The
 * data plane reads an in-memory snapshot built from catalog_load_all(). */
#ifndef PARLEY_CATALOG_H
#define PARLEY_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;

#define CATALOG_ENCODING_VERSION	1
#define CATALOG_ID_LEN			36	/* without the NUL */
#define CATALOG_ID_RAW			16
#define CATALOG_NAME_MAX		256

#define CATALOG_PROP_FILEPOST	(1u << 0)
#define CATALOG_PROP_INVITE	(1u << 1)
#define CATALOG_PROP_LOGGED	(1u << 2)

enum catalog_privacy {
	CATALOG_OPEN = 0,
	CATALOG_CLOSED,
	CATALOG_SECRET,
};

/* A set of SIP URIs, compared case-insensitively. Strings are malloc'd and
 * owned by the set. */
struct catalog_strset {
	char	**v;
	size_t	n;
	size_t	cap;
};

/* Every string is malloc'd and owned by the room (catalog_room_free); replace
 * one with catalog_room_set(). NULL means empty for the optional texts. */
struct catalog_room {
	char			id[CATALOG_ID_LEN + 1];
	char			*uri;
	char			*name;
	char			*description;
	char			*topic;
	char			*category;	/* ma-cat:// URI, or NULL */
	enum catalog_privacy	privacy;
	unsigned		props;		/* CATALOG_PROP_* */
	uint64_t		created_ms;	/* Unix epoch, ms */
	struct catalog_strset	members;
	struct catalog_strset	managers;
};

enum catalog_text {
	CATALOG_NAME = 0,
	CATALOG_DESCRIPTION,
	CATALOG_TOPIC,
	CATALOG_CATEGORY,
};

typedef int catalog_visit_fn(void *arg, const struct catalog_room *r);

/* A new room with a fresh id, uri ma-chan://<domain>/<id>, name <name>,
 * privacy open, props logged, created now. Not stored until catalog_put().
 * NULL on bad arguments, no memory or no randomness. */
struct catalog_room *catalog_room_new(const char *domain, const char *name);
/* The same, with an id derived from (<domain>, <name>) rather than drawn
 * at random: a room configured by name ([room:NAME]) gets the same id on
 * every node that configures it, so the nodes of an array agree on it. */
struct catalog_room *catalog_room_new_named(const char *domain, const char *name);
void catalog_room_free(struct catalog_room *r);	/* accepts NULL */

/* Replaces a text field with a copy of <v> (NULL clears; the name cannot be
 * cleared). 0, -EINVAL or -ENOMEM. */
int catalog_room_set(struct catalog_room *r, enum catalog_text f, const char *v);

/* Set operations: add is 0 (also when present) or -ENOMEM; remove is 0 or
 * -ENOENT. */
int catalog_strset_add(struct catalog_strset *s, const char *uri);
int catalog_strset_remove(struct catalog_strset *s, const char *uri);
bool catalog_strset_has(const struct catalog_strset *s, const char *uri);

const char *catalog_privacy_name(enum catalog_privacy p);	/* "open", ... */

/* "5b0c7c1e-..." <-> 16 bytes. pack: 0 or -EINVAL (not a lower-case GUID). */
int catalog_id_pack(const char *id, uint8_t raw[CATALOG_ID_RAW]);
void catalog_id_unpack(const uint8_t raw[CATALOG_ID_RAW], char id[CATALOG_ID_LEN + 1]);

/* JSON encoding. encode: malloc'd, NUL-terminated, caller frees; NULL on no
 * memory. decode: 0 and a new room in *out, -EBADMSG (malformed) or
 * -EPROTONOSUPPORT (newer "v"). */
char *catalog_encode(const struct catalog_room *r, size_t *len);
int catalog_decode(const char *buf, size_t len, struct catalog_room **out);

/* Creates or replaces the room with <r>'s id, keeping the name index right,
 * synchronously. 0, -EEXIST (another room has that name), -EINVAL (no id,
 * uri or name, or name too long), -ENOMEM, -EIO. */
int catalog_put(struct db *db, const struct catalog_room *r);

/* 0 with a new room in *out (caller frees), -ENOENT, -EBADMSG, -EIO. */
int catalog_get(struct db *db, const char *id, struct catalog_room **out);
int catalog_get_by_name(struct db *db, const char *name, struct catalog_room **out);

/* Removes the room and its name. 0, -ENOENT, -EIO. */
int catalog_delete(struct db *db, const char *id);

/* Calls <fn> for each room in id order; a nonzero return from <fn> stops
 * the walk and is returned. Otherwise 0, or -EBADMSG/-EIO (a room that does
 * not decode stops the walk: it is reported, not skipped). */
int catalog_foreach(struct db *db, catalog_visit_fn *fn, void *arg);

/* All rooms, for the boot snapshot: 0 and a malloc'd array in *rooms, its
 * length in *n (free with catalog_rooms_free), or as catalog_foreach. */
int catalog_load_all(struct db *db, struct catalog_room ***rooms, size_t *n);
void catalog_rooms_free(struct catalog_room **rooms, size_t n);

#endif
