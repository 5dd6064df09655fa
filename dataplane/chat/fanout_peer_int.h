/* The internals of rooms across nodes, shared by fanout_peer.c (the link
 * thread's side, pending requests, helpers, the loop), fanout_peer_room.c
 * (the rooms: standing in for a room homed elsewhere, homing one for the
 * others, link events) and fanout_peer_sync.c (the members' side of a
 * resync, the catch-up after a takeover). Not for other modules: they see
 * fanout_peer.h. */
#ifndef PARLEY_FANOUT_PEER_INT_H
#define PARLEY_FANOUT_PEER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/chat/fanout_int.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/peer/peerframe.h"

#define FO_RESYNC_MAX	4096		/* posts one resync or catch-up reads at most */

struct roomtab;
struct roomtab_ent;

enum pm_kind {
	PM_FRAME = 1,
	PM_UP,
	PM_DOWN,
	PM_GONE,
};

enum fo_pend_kind {
	PEND_POST = 1,		/* struct fanout_post, forwarded */
	PEND_JOIN,		/* struct fanout_joinreq, forwarded */
	PEND_HIST,		/* struct fanout_histreq */
};

/* What the link thread hands an lcore: a frame, copied whole (its pointers
 * point into data[]), or a link event. */
struct pmsg {
	struct pmsg		*next;
	uint32_t		kind;		/* enum pm_kind */
	uint32_t		node;		/* the sender, or the link's node */
	struct peerframe	f;
	struct peerframe_user	*users;		/* JOIN_ACK, RESYNC_REQ */
	uint32_t		nusers;
	struct peerframe_post	*recs;		/* HISTORY */
	uint32_t		nrecs;
	uint64_t		data[];
};

/* fanout_peer.c */
extern struct fanout_peer_ops fo_peer_ops;	/* registered by control */

/* A request of this lcore waiting for node <node>: its ref (names this
 * lcore: answers come back here), or 0 without memory. */
uint64_t fo_pend_add(struct lcore_ctx *lc, uint32_t node, uint32_t kind, void *ptr);
void *fo_pend_take(struct lcore_ctx *lc, uint64_t ref, uint32_t kind);
bool fo_node_up(struct fanout_lc *fo, uint32_t node);
void fo_frame_init(struct peerframe *f, unsigned type, const uint8_t raw[CATALOG_ID_RAW],
		   uint64_t epoch);
/* Sends <f> to <node> (counted when it fails): 0 or -errno. */
int fo_peer_send(struct lcore_ctx *lc, uint32_t node, const struct peerframe *f);
/* The nodes with present users of <lr> (home), into <out>; how many. */
unsigned fo_nodes_of(const struct fo_roomstate *lr, uint32_t *out);
uint64_t fo_now_ms(void);
/* An answer's code as -errno for post_done (0 for OK). */
int fo_code_errno(unsigned code);
/* A home refused: counted; WRONG_HOME and STALE_EPOCH re-resolve the home. */
void fo_refused(struct lcore_ctx *lc, const uint8_t raw[CATALOG_ID_RAW], unsigned code);
/* Why this node refuses a frame about <r> with <epoch>, or PEERFRAME_OK. */
unsigned fo_home_check(const struct roomtab *t, const struct roomtab_ent *r, uint64_t epoch);
/* <p> (one reference, given) to every local lcore with members of <lr>. */
void fo_deliver_local(struct lcore_ctx *lc, struct fo_roomstate *lr, struct fanout_post *p);
/* <lr> has present members on this node. */
bool fo_has_local(const struct fo_roomstate *lr);

/* fanout_peer_room.c: link events, and frames. */
void fo_link_down(struct lcore_ctx *lc, uint32_t node);
void fo_node_gone(struct lcore_ctx *lc, uint32_t node);
/* Handles <m>; true when it kept <m> (freed later by its new owner). */
bool fo_peer_frame(struct lcore_ctx *lc, struct pmsg *m);
/* A post made of copies of its parts, each NUL-terminated in the bytes
 * after the struct: a history record or a forwarded post taken from a peer
 * frame (whose pointers die with it). <text> NULL: none. NULL on no memory;
 * the caller owns the one reference. */
struct fanout_post *fo_post_copy(const char *author, size_t alen, const char *room_uri,
				 size_t ulen, const void *body, size_t blen, const void *text,
				 size_t tlen, const void *extra, size_t elen);

/* fanout_peer_sync.c: the members' side of a resync, and the homes' moves. */
/* The link with <node> is up: each room homed there with members here
 * resyncs (RESYNC_REQ). */
void fo_link_up(struct lcore_ctx *lc, uint32_t node);
/* About once a second: rooms whose home moved resync with the new one. */
void fo_homes_check(struct lcore_ctx *lc);
/* A HISTORY frame without a ref: the home's answer to this node's
 * RESYNC_REQ. <m> stays the caller's. */
void fo_got_resync(struct lcore_ctx *lc, const struct pmsg *m);

#endif
