/* Room homes in an array: which node sequences each room, agreed through
 * etcd (ARCHITECTURE.md "The array").
 *
 * Every room that has a home has one key
 *	<prefix>/homes/<room id>  = {"node":N,"room":"<id>"}
 * created only if absent (one transaction) and bound to the home node's
 * lease: it lives exactly as long as that node's membership, and nobody
 * rewrites it. Its create revision is the room's epoch, the fencing token
 * peer frames carry: a later home of the same room always has a higher one.
 *
 * A room without a key is claimed by the node that wins it among the live,
 * non-draining nodes by weighted rendezvous hashing (score = weight /
 * -ln(hash(room, node)), weight falling with the node's published CPU
 * busy fraction), each node claiming only what it wins, with its own lease;
 * two nodes that disagree about the live set race on the create and one
 * wins. Homes stay where they are when nodes join (no room moves while its
 * home lives); a home whose node left is claimed again by the next winner.
 *
 * This node stops counting itself the home of any room once its lease may
 * have expired by its own clock (last successful grant or keepalive, sent
 * at T: valid until T + TTL, less a margin), whether or not etcd answers:
 * another node may hold the room by then.
 *
 * Threads: homes_turn on the array thread; homes_fill, homes_json,
 * homes_kick and homes_stop_homing from any thread (a mutex guards the map, never held across an
 * etcd request). */
#ifndef PARLEY_HOMES_H
#define PARLEY_HOMES_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct etcd;
struct homes;
struct roomtab;

/* A live node as the claim sees it. */
struct homes_cand {
	uint32_t	node_id;
	double		busy;		/* mean CPU busy fraction of its lcores, 0..1 */
	bool		draining;	/* gets no new home */
};

/* A 64-bit mixer (splitmix64's finaliser): the hash of rendezvous choices,
 * room homes here and user placement (array.c). */
uint64_t homes_mix64(uint64_t x);

/* NULL on no memory. <prefix> is copied. */
struct homes *homes_new(const char *prefix, uint32_t self);
void homes_free(struct homes *h);		/* accepts NULL */

/* Array thread, each turn: reads every home key, claims the rooms this
 * node wins among <cand> (when <lease> != 0 and <may_home>), deletes this
 * node's keys of rooms gone from the catalog. True when what homes_fill
 * would write changed since the last fill (republish the room table).
 * <draining>, <settled>: see homes_configure.
 * <may_home> false: this node's lease may have expired; it claims nothing
 * and homes nothing. etcd errors are returned as -errno in *<rc> with the
 * reason in <err>; the map read last stays. */
bool homes_turn(struct homes *h, struct etcd *sess, int64_t lease, bool may_home, bool draining,
		bool settled, const struct homes_cand *cand, unsigned ncand, int *rc, char *err,
		size_t errlen);

/* Any thread: this node's lease may expire any moment now (its array
 * thread is stuck on an etcd that does not answer, and would only tell
 * homes_turn too late): it stops homing its rooms at once, as homes_turn
 * with <may_home> false. True when it homed them until now (republish the
 * room table). */
bool homes_stop_homing(struct homes *h);

/* Replication (array failover), for a node with peer links: each home
 * names its room's replica in <prefix>/replicas/<room id> =
 * {"node":R,"epoch":E} under its own lease (R: the next live, non-draining
 * node in the room's rendezvous order, kept while it lives). When a home
 * key goes, the node this one last read as the room's replica claims it at
 * once; the others claim it by rendezvous only after <grace_ms> while that
 * replica is live. Draining (<draining> of homes_turn): this node stops
 * sequencing its rooms, and a turn (1 s) later, once <settled> (nothing
 * waits for a replica's acknowledgement), deletes its home keys: their
 * replicas claim them at once. Before the first turn. */
void homes_configure(struct homes *h, bool replicate, uint32_t grace_ms);

/* Reads every home key with <e> (the caller's own client: any thread) into
 * the map homes_fill uses, as homes_turn does without claiming anything:
 * a node that applies a catalog change knows the new room's home (written
 * in the same transaction) before it publishes its table. 0 or -errno
 * with the reason in <err>. */
int homes_read(struct homes *h, struct etcd *e, char *err, size_t errlen);

/* The node that wins room <raw> among <cand> (0: none qualifies). */
uint32_t homes_winner(const uint8_t raw[16], const struct homes_cand *cand, unsigned n);

/* Writes each room's home node and epoch into <t> (marked with
 * roomtab_set_array) and remembers <t>'s rooms as the catalog the next
 * turn claims homes for. Rooms with no live home stay ROOMTAB_NODE_NONE;
 * so do this node's own while it may not home. True when a room of <t>
 * has no home yet (the array thread should turn soon). */
bool homes_fill(struct homes *h, struct roomtab *t);

/* {"count":N,"mine":N,"unhomed":N,"rooms":[{"room":id,"node":N,"epoch":E,
 * "replica":R},..],"replication":"on"|"alone"|"off","unreplicated":N,
 * "releasing":bool,"released":N} as last read; "unhomed": rooms of the
 * catalog with no home; "unreplicated": homed rooms with no replica. */
json_t *homes_json(struct homes *h);

#endif
