/* The fan-out's internals, shared by fanout.c (rings, posts, storage jobs,
 * the loop) and fanout_presence.c (presence: joins, parts, notices, the
 * roster). Not for other modules: they see fanout.h. */
#ifndef PARLEY_FANOUT_INT_H
#define PARLEY_FANOUT_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dataplane/base/keyslot.h"
#include "dataplane/chat/chat_ctr.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/xccos/xccos.h"
#include "storage/catalog.h"

struct lcore_ctx;
struct fanout_shared;
struct rte_ring;
struct commit_producer;
struct commit_req;
struct peerframe;

#define BURST		64
#define PRESENCE_SLOTS	(1u << 16)

/* A message between lcores, passed by value through the rings. */
struct fmsg {
	uint32_t	type;
	uint32_t	src;
	void		*ptr;
	uint64_t	a;
	uint64_t	b;
};
_Static_assert(sizeof(struct fmsg) == 32, "ring element size");

enum fm_type {
	FM_POST = 1,	/* origin -> home: struct fanout_post */
	FM_POST_DONE,	/* home -> origin: struct fanout_post, stored or refused */
	FM_DELIVER,	/* home -> member lcore: struct fanout_post (a reference) */
	FM_JOIN,	/* origin -> home: struct fanout_joinreq */
	FM_JOINED,	/* home -> origin: struct fanout_joinreq with the roster */
	FM_PART,	/* origin -> home: struct partreq */
	FM_PRESENCE,	/* home -> member lcore: struct presence (a reference) */
};

/* fanout_post.origin and fanout_joinreq.origin of a request that came
 * from another node (its node and ref say where the answer goes). */
#define FO_ORIGIN_REMOTE	UINT32_MAX
/* roster_ent.lcore of a member present on another node. */
#define FO_LCORE_REMOTE		UINT32_MAX
/* Nodes of an array one room's home tracks (struct fo_nodecnt). */
#define FO_NODES_MAX		64

/* A member left; the home records it and tells the others. */
struct partreq {
	enum fanout_job	kind;		/* FANOUT_JOB_PART */
	uint8_t		raw[CATALOG_ID_RAW];
	uint64_t	uid;
	uint32_t	node;		/* home: the member's node when remote, else 0 */
	bool		announce;	/* home: the others are told (last dialog of the user) */
	char		uri[160];
	char		room_uri[160];
};

/* A compliance event whose durability a reply waits for (BACKCHAT). */
struct replyjob {
	enum fanout_job	kind;		/* FANOUT_JOB_REPLY */
	int		ev;
	struct conn	*conn;		/* held */
	uint64_t	uid;
	uint8_t		raw[CATALOG_ID_RAW];
	char		*reply;
	size_t		reply_len;
	char		*fail;
	size_t		fail_len;
	char		*content;
	size_t		content_len;
	char		user[160];
	char		room_uri[160];
};

/* A history view another node asked for (HISTORY_REQ): its BACKCHAT event
 * is stored here, at the room's home, before the answer goes. */
struct peerhist {
	enum fanout_job		kind;		/* FANOUT_JOB_PEER_HIST */
	uint32_t		node;		/* the asker's node and ref */
	uint64_t		ref;
	uint8_t			raw[CATALOG_ID_RAW];
	struct history_rec	*recs;		/* what the answer carries: [first, n) */
	size_t			first, n;
	char			user[160];
	char			room_uri[160];
	char			content[64];
};

/* ntc:join / ntc:bjoin / ntc:part, built once by the home, shared. */
struct presence {
	_Atomic uint32_t refs;
	uint8_t		raw[CATALOG_ID_RAW];
	uint64_t	uid;		/* the member it is about: not told */
	bool		skip;		/* <uid> is a dialog of this node */
	char		*body;
	size_t		body_len;
};

/* A present member, as the home keeps it. */
struct roster_ent {
	uint64_t	uid;		/* local dialog; 0 for a remote user */
	uint32_t	lcore;		/* FO_LCORE_REMOTE for a remote user */
	uint32_t	node;		/* the user's node when remote, else 0 */
	uint32_t	dialogs;	/* remote: the user's dialogs on <node> */
	bool		mark;		/* remote: named by the node's last resync */
	bool		manager;
	bool		announced;	/* the others were told this user joined: one
					 * entry per user present carries it */
	char		uri[160];
};

/* Per-lcore state of one room: local members on every lcore that has
 * some; sequencing and the roster on the home lcore. */
struct fo_roomstate {
	uint8_t		raw[CATALOG_ID_RAW];
	struct dialog	**mv;
	uint32_t	mn, mcap;

	bool		seq_loaded;
	uint64_t	next_seq;
	struct roster_ent *rv;
	uint32_t	rn, rcap;
	uint32_t	per_lcore[FANOUT_LCORES_MAX];
	_Atomic uint32_t *present;	/* shared count, or NULL */

	/* Home, in an array: remote users present, per node (each node gets
	 * a post once, whatever its count). */
	struct fo_nodecnt {
		uint32_t	node, n;
	}		nodes[FO_NODES_MAX];
	uint32_t	nnodes;
	/* Local home lcore of a room homed on another node: the last seq
	 * delivered here, and whether a resync is under way (RELAYs wait for
	 * its HISTORY: the home sends them after it). */
	uint64_t	last_seq;
	bool		resyncing;
	uint32_t	synced_node;	/* the home (node, epoch) last told of our users */
	uint64_t	synced_epoch;
	uint64_t	seq_epoch;	/* the epoch whose numbering last_seq is in */
	/* Home in an array: the epoch it sequences under and the first seq it
	 * gives under it (fo_next_seq_peek: a resync from another home's
	 * numbering starts there; so does a replica's copy of this epoch). */
	uint64_t	home_epoch;
	uint64_t	epoch_first;

	/* Replication (fanout_repl.c). Home: the replica this is for, what it
	 * was sent and holds, the posts durable here that wait for it (in seq
	 * order), probes. */
	uint32_t	rp_node;
	uint64_t	rp_epoch;
	uint64_t	rp_sent, rp_acked, rp_stored;
	uint64_t	rp_probe_ms, rp_ack_ms;
	bool		rp_probing;
	struct fanout_post **rq;
	uint32_t	rq_head, rq_n, rq_cap;
	/* Replica: the next seq it takes, the highest durable, the epoch it
	 * takes copies of (0: none since this process started). */
	bool		rc_loaded;
	uint64_t	rc_next, rc_durable, rc_epoch;
};

/* What this lcore waits for from another node, by ref (fanout_peer.c). */
struct fo_pend {
	uint64_t	ref;
	uint32_t	node;
	uint32_t	kind;		/* enum fo_pend_kind (fanout_peer.c) */
	void		*ptr;
};

struct pmsg;

/* A FIFO of what a ring could not take yet: an array allocated at boot
 * (grows only past it, counted). */
struct stage {
	struct fmsg	*v;
	uint32_t	head, n, cap;
};

struct cookieq {
	void		**v;
	uint32_t	head, n, cap;
};

struct fanout_lc {
	struct rte_ring		*rx[FANOUT_LCORES_MAX];	/* from lcore i to this one */
	struct stage		tx[FANOUT_LCORES_MAX];	/* to lcore i */
	struct commit_producer	*prod;
	struct cookieq		backlog;	/* jobs not yet submitted, in order */
	uint32_t		inflight;	/* submitted, not completed */
	uint32_t		waiting;	/* joins/posts waiting for another lcore */
	struct fo_roomstate		**rooms;	/* open addressing by raw id */
	uint32_t		rcap, rn;
	uint64_t		ntc_envid;
	struct xbuf		scratch;	/* post bodies are built here */
	uint64_t		grown;		/* a stage or the backlog grew past its array */
	uint64_t		refused;	/* posts and joins refused: stage half full,
						 * too many or too slow on their way */
	uint64_t		delay_ms;	/* the last post's time from admission to
						 * stored (fo_admit) */

	/* In an array (fanout_peer.c): what the link thread hands this lcore
	 * (a lock-free list it pushes to, taken whole), and what this lcore
	 * waits for from other nodes. */
	_Atomic(struct pmsg *)	inbox;
	_Atomic uint32_t	inbox_n;
	struct fo_pend		*pend;
	uint32_t		npend, pcap;
	uint64_t		next_ref;
	uint32_t		up[FO_NODES_MAX];	/* nodes whose link is up */
	uint32_t		nup;
	uint64_t		homes_checked_ms;	/* fo_peer_poll's last look at the homes */
	const void		*seen_tab;	/* the room table it looked at */

	/* Replication (fanout_repl.c): posts held for a replica's
	 * acknowledgement, the last tick. */
	_Atomic uint32_t	repl_held;
	uint64_t		repl_tick_ms;
};

struct pslot {
	struct keyslot		k;		/* first: dataplane/base/keyslot.h */
	_Atomic uint32_t	present;
};

struct fanout_shared {
	struct pslot		*v;
	struct fanout_ops	ops;		/* the service's callbacks */
};

/* This lcore's fan-out state and the engine-wide one: what fanout_init
 * handed the engine (lcore_set_svc, engine_set_svc). */
static inline struct fanout_lc *
fo_lc(const struct lcore_ctx *lc)
{
	return lcore_svc(lc);
}

static inline struct fanout_shared *
fo_shared(const struct engine *e)
{
	return engine_svc(e);
}

/* fanout.c */
void fo_build_post_body(struct lcore_ctx *lc, struct fanout_post *p);
void fo_home_post(struct lcore_ctx *lc, struct fanout_post *p);
uint64_t fo_next_seq_peek(struct lcore_ctx *lc, struct fo_roomstate *lr);
/* (fanout_peer_sync.c) */
void fo_takeover_catch_up(struct lcore_ctx *lc, struct fo_roomstate *lr,
			  const struct roomtab_ent *r, uint64_t upto);
void fo_send_msg(struct lcore_ctx *lc, uint32_t dst, uint32_t type, void *ptr, uint64_t a);
void fo_submit_job(struct lcore_ctx *lc, void *cookie);
/* Room for a new request (post, join) toward lcore <home>: its stage is
 * under half full, fewer than conf.posts_inflight_max are on their way, and
 * the last post stored did not wait longer than conf.post_queue_ms (or none
 * waits now). Counts a refusal. */
bool fo_admit(struct lcore_ctx *lc, uint32_t home);
uint32_t fo_raw_hash(const uint8_t raw[CATALOG_ID_RAW]);
_Atomic uint32_t *fo_pslot_find(struct fanout_shared *sh, const uint8_t raw[CATALOG_ID_RAW],
				bool claim);
struct fo_roomstate *fo_roomstate_find(struct fanout_lc *fo, const uint8_t raw[CATALOG_ID_RAW]);
struct fo_roomstate *fo_roomstate_get(struct fanout_lc *fo, const uint8_t raw[CATALOG_ID_RAW]);

/* fanout_presence.c: the home's and the members' side of presence. */
void fo_home_join(struct lcore_ctx *lc, struct fanout_joinreq *jr);
void fo_home_join_stored(struct lcore_ctx *lc, struct fanout_joinreq *jr, int status);
void fo_origin_joined(struct lcore_ctx *lc, struct fanout_joinreq *jr);
void fo_home_part(struct lcore_ctx *lc, struct partreq *pq);
void fo_home_part_stored(struct lcore_ctx *lc, struct partreq *pq, int status);
void fo_tell_members(struct lcore_ctx *lc, struct presence *pr);
void fo_presence_put(struct presence *pr);
struct roster_ent *fo_roster_add(struct fo_roomstate *lr);
void fo_roster_del(struct lcore_ctx *lc, struct fo_roomstate *lr, struct roster_ent *re);
struct roster_ent *fo_roster_remote(struct fo_roomstate *lr, uint32_t node, const char *uri);
void fo_announce(struct lcore_ctx *lc, struct fo_roomstate *lr, const char *ntc, const char *uri,
		 bool manager, const char *room_uri, uint32_t node, uint64_t uid);
/* Home: <re>, about to go, hands the user's presence to another of its
 * entries; true when none is left (the others are told of a part). */
bool fo_roster_handover(struct fo_roomstate *lr, struct roster_ent *re);
/* Home: node <node>'s present users are the <n> of <v> (a resync):
 * entries of users it no longer has go (announced), new ones come
 * (announced), counts follow. */
struct peerframe_user;
void fo_home_resync_roster(struct lcore_ctx *lc, struct fo_roomstate *lr, const char *room_uri,
			   uint32_t node, const struct peerframe_user *v, uint32_t n);
/* Home: node <node> left the array: its users part. */
void fo_home_drop_node(struct lcore_ctx *lc, struct fo_roomstate *lr, const char *room_uri,
		       uint32_t node);

/* fanout_peer.c: rooms homed on other nodes, and remote members of rooms
 * homed here. */
void fo_peer_poll(struct lcore_ctx *lc, unsigned *work);
bool fo_peer_idle(struct lcore_ctx *lc);
bool fo_peer_active(void);
/* Local home lcore, room homed elsewhere: forwards (answers later through
 * FM_POST_DONE / FM_JOINED). */
void fo_peer_post_fwd(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_post *p);
void fo_peer_join_fwd(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_joinreq *jr);
void fo_peer_part_fwd(struct lcore_ctx *lc, const struct roomtab_ent *r, struct partreq *pq);
/* Home: a durable post goes to every node with present members once;
 * a remote author's node gets its POST_ACK; a remote joiner its JOIN_ACK. */
void fo_peer_relay(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct fanout_post *p);
void fo_peer_post_ack(struct lcore_ctx *lc, struct fanout_post *p);
void fo_peer_join_ack(struct lcore_ctx *lc, struct fanout_joinreq *jr, struct fo_roomstate *lr);
void fo_peer_presence(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct presence *pr,
		      uint32_t node, uint64_t uid);
void fo_nodes_add(struct fo_roomstate *lr, uint32_t node, int delta);
/* Home: the BACKCHAT of <ph> is stored (status 0) or not; answers. */
void fo_peer_history_stored(struct lcore_ctx *lc, struct peerhist *ph, int status);
void fo_peer_fini(struct fanout_lc *fo);

/* fanout.c: a stored post becomes visible: delivered here, relayed, and
 * answered (or only answered, when its status is not 0). */
void fo_post_visible(struct lcore_ctx *lc, struct fanout_post *p);

/* fanout_repl.c: each room's copy on its replica node (fanout.h). */
/* Home lcore, before sequencing a post of <r>: false (the post is refused
 * with -EAGAIN, counted) when the room has no replica and [array] alone =
 * refuse. */
bool fo_repl_admit(struct lcore_ctx *lc, const struct roomtab_ent *r);
/* Home lcore: post <p>, durable here, waits for the replica when the room
 * has one (true: taken; fo_post_visible follows the acknowledgement). */
bool fo_repl_hold(struct lcore_ctx *lc, struct fo_roomstate *lr, struct fanout_post *p);
/* The last seq this node holds of <lr> as a replica, 0 if none. */
uint64_t fo_repl_last(struct fo_roomstate *lr);
void fo_repl_got(struct lcore_ctx *lc, uint32_t node, const struct peerframe *f);
void fo_repl_got_ack(struct lcore_ctx *lc, uint32_t node, const struct peerframe *f);
void fo_repl_fill(void *cookie, struct commit_req *r);
void fo_repl_stored(struct lcore_ctx *lc, void *cookie, int status);
/* Every poll turn (in an array): probes, catch-up, new replicas. */
void fo_repl_tick(struct lcore_ctx *lc);
void fo_repl_fini(struct fanout_lc *fo);

#endif
