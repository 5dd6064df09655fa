/* Rooms across the nodes of an array (ARCHITECTURE.md "The array"): the
 * fan-out's side of the peer links.
 *
 * Inside a node every room has a local home lcore (fanout.h). In an array
 * the room's home NODE (roomtab_ent.node, epoch) alone sequences it; on
 * every other node, the room's local home lcore stands in for it:
 *   post   origin lcore -> local home lcore -> POST_FWD to the home node,
 *          kept pending by ref -> the home sequences, stores, answers
 *          POST_ACK and RELAYs the post (the XCCOS document it built once)
 *          once to each node with present members -> each node's local
 *          home lcore delivers it to its lcores with members, in seq order,
 *          once (seqs at or below the last one delivered are dropped).
 *   join   -> JOIN (user, flags, dialog) -> the home keeps one roster entry
 *          per (node, user) with a dialog count, records the JOIN event,
 *          tells the others (PRESENCE: the notice built once, to every node
 *          with present members, the user announced once array-wide) and
 *          answers JOIN_ACK with the present members and its last seq.
 *   part   -> PART: the last dialog of a user on a node ends its entry.
 *   bccontext for a room homed elsewhere: HISTORY_REQ -> one HISTORY.
 * A link that goes down fails what waits for that node (posts and joins
 * with a retryable error: nothing was doubled; a post may have been stored
 * and relayed, and then the author sees it arrive after the error). When it
 * comes back up, for each room homed there with members here, a RESYNC_REQ
 * carries this node's present users (the home replaces its entries of this
 * node with them, announcing who left meanwhile) and the first seq missing;
 * the home answers HISTORY frames, then relays anew. A room whose home
 * moved (another node or epoch in the room table) resyncs the same way with
 * its new home, within about a second; from another home's numbering it
 * takes the new home's posts from the first one it sequenced. A refusal
 * (WRONG_HOME, STALE_EPOCH) makes the sender re-resolve the room's home
 * (ops.rehome).
 *
 * Control (layer 7) registers how frames leave (fanout_peer_register) and
 * hands arriving frames and link events down from the link thread; they
 * reach the lcores through a lock-free list per lcore, never blocking the
 * link thread. */
#ifndef PARLEY_FANOUT_PEER_H
#define PARLEY_FANOUT_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/catalog.h"

struct engine;
struct peerframe;

struct fanout_peer_ops {
	/* Sends <f> to node <node> (the sender id is set by the link); 0 or
	 * -errno. Any lcore. */
	int (*send)(void *arg, uint32_t node, const struct peerframe *f);
	/* The same frame to <n> nodes, encoded once. */
	int (*send_many)(void *arg, const uint32_t *nodes, unsigned n, const struct peerframe *f);
	/* Room <raw>'s home was refused as wrong or stale: resolve it again.
	 * Any lcore; must not block. */
	void (*rehome)(void *arg, const uint8_t raw[CATALOG_ID_RAW]);
	void *arg;
};

/* Registers <ops> (copied); before any link comes up. Boot thread. */
void fanout_peer_register(const struct fanout_peer_ops *ops);

/* Link thread: frame <f> from node <node> (every type but HELLO, PING and
 * PONG). What the lcores need is copied; <f> may die on return. */
void fanout_peer_in(struct engine *e, uint32_t node, const struct peerframe *f);
/* Link thread: the link with <node> came up or went down. */
void fanout_peer_link(struct engine *e, uint32_t node, bool up);
/* Node <node> left the array (gone from membership): the homes here drop
 * its members and tell the others. Any thread. */
void fanout_peer_gone(struct engine *e, uint32_t node);
/* Frames the lcores did not get because their lists were full. Any thread. */
uint64_t fanout_peer_dropped(void);

#endif
