/* The room table the data plane reads: an immutable, reference-counted
 * snapshot of the catalog (storage/catalog.h).
 *
 * Boot code builds one from catalog_load_all(); every lcore holds a
 * reference. A catalog change (control socket) builds a new snapshot and
 * publishes it with engine_snapshot_publish(); each lcore swaps at its next
 * loop turn and drops its reference to the old one, the last reference frees
 * it. So lookups are plain reads with no locks, and a room pointer stays
 * valid for the whole loop turn that looked it up.
 *
 * Rooms are ordered by raw id (binary search). Per-lcore room state
 * (members present, sequencing) lives in fanout.c, keyed by the raw id, so
 * it survives a snapshot swap. */
#ifndef PARLEY_ROOMTAB_H
#define PARLEY_ROOMTAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/engine/lcore.h"
#include "storage/catalog.h"

struct roomtab_ent {
	struct catalog_room	*cat;		/* owned by the table */
	uint8_t			raw[CATALOG_ID_RAW];
	uint32_t		home;		/* lcore that sequences the room */
	/* In an array (roomtab.self != 0): the node that homes the room and
	 * the etcd revision of its home key, the room's epoch (a fencing
	 * token carried in every peer frame about the room); node is
	 * ROOMTAB_NODE_NONE while no home is known. Outside an array both
	 * stay 0 and every room is homed here. */
	uint32_t		node;
	uint64_t		epoch;
	/* In an array, on the home: the node that keeps the room's copy
	 * (array failover), ROOMTAB_NODE_NONE while there is none (this node
	 * is alone, or none was chosen yet). 0 outside an array. */
	uint32_t		replica;
};

#define ROOMTAB_NODE_NONE	UINT32_MAX
/* replica: other nodes are live but the home has not named one yet (a room
 * homed in its creation transaction): posts wait for it, not refused. */
#define ROOMTAB_REPLICA_PENDING	(UINT32_MAX - 1)

struct roomtab {
	_Atomic uint32_t	refs;
	uint32_t		nlcores;
	uint32_t		self;		/* this node's id in an array, else 0 */
	size_t			n;
	struct roomtab_ent		*v;		/* sorted by raw id */
};

/* Takes ownership of <rooms> (the array and each room, also on failure).
 * The home lcore of a room is a hash of its id modulo <nlcores>. NULL on no
 * memory or a room with a malformed id. One reference. */
struct roomtab *roomtab_build(struct catalog_room **rooms, size_t n, uint32_t nlcores);
/* Marks <t> as a table of array node <self> (> 0): every room's home is
 * ROOMTAB_NODE_NONE until the array fills node and epoch in (before the
 * table is published: it is immutable afterwards). */
void roomtab_set_array(struct roomtab *t, uint32_t self);
/* Room <r> of <t> is sequenced on this node: outside an array always, in
 * one when this node holds its home key. */
static inline bool
roomtab_homed_here(const struct roomtab *t, const struct roomtab_ent *r)
{
	return t->self == 0 || r->node == t->self;
}
void roomtab_get(struct roomtab *t);
void roomtab_put(struct roomtab *t);		/* accepts NULL */
/* The table lcore <lc> reads this loop turn: the chat service's snapshot in
 * the engine (service.c). Owning lcore only. */
static inline const struct roomtab *
roomtab_of(const struct lcore_ctx *lc)
{
	return lcore_snapshot(lc);
}

const struct roomtab_ent *roomtab_find_raw(const struct roomtab *t,
					   const uint8_t raw[CATALOG_ID_RAW]);
/* By the id part ("5b0c7c1e-..."), or by the whole ma-chan:// URI, which must
 * name this node's domain spelled as stored (case-insensitive). NULL when
 * unknown. <len> bytes of <s>. */
const struct roomtab_ent *roomtab_find_id(const struct roomtab *t, const char *s, size_t len);
const struct roomtab_ent *roomtab_find_uri(const struct roomtab *t, const char *s, size_t len);

/* <a> and <b> name the same user: SIP URIs or bare user@host, compared
 * without a "sip:" prefix and case-insensitively. */
bool roomtab_user_eq(const char *a, const char *b);
/* Listed in the room's members (or managers, who are members too). */
bool roomtab_is_member(const struct roomtab_ent *r, const char *aor);
bool roomtab_is_manager(const struct roomtab_ent *r, const char *aor);
/* Open and closed rooms are visible to everyone, secret rooms to their
 * members only (xccos.md b.6.3). */
bool roomtab_may_see(const struct roomtab_ent *r, const char *aor);
/* Open rooms admit everyone; closed and secret rooms their members. */
bool roomtab_may_join(const struct roomtab_ent *r, const char *aor);

#endif
