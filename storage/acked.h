/* What a room's home made visible, per room, for the compliance exporter
 * (README "Compliance across nodes", part 8): the highest room seq that
 * this node, as the room's home, answered and delivered since the process
 * started (in a node array: acknowledged by the replica, so durable on two
 * nodes; or taken unreplicated). The exporter exports its own CHAT events
 * of a room only up to there (storage/export.h hold_unacked): an event it
 * exported is never one that a next home numbers anew.
 *
 * A fixed table of ACKED_SLOTS rooms (dataplane/base/keyslot.h): a room's
 * home lcore publishes (one writer per room at a time), any thread reads.
 * A room that finds no free slot marks the table full; from then on a
 * room not in it reads as UINT64_MAX (the exporter then holds nothing
 * back: the behaviour without this table). */
#ifndef PARLEY_ACKED_H
#define PARLEY_ACKED_H

#include <stdint.h>

#define ACKED_SLOTS	(1u << 16)

struct acked;

/* A table, NULL when out of memory. */
struct acked *acked_create(void);
/* Accepts NULL. No publisher or reader may be left. */
void acked_destroy(struct acked *t);

/* Raises room <room>'s (16 raw GUID bytes) visible seq to <seq>. Any
 * thread; at most one at a time per room. */
void acked_publish(struct acked *t, const uint8_t *room, uint64_t seq);

/* Room <room>'s visible seq: 0 when none was published, UINT64_MAX when
 * the table is full and the room not in it. Any thread. */
uint64_t acked_get(struct acked *t, const uint8_t *room);

#endif
