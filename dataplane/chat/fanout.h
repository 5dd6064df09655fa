/* Rooms across lcores: the rings between lcores, room sequencing on the home
 * lcore, durable-before-visible through the storage thread, and delivery to
 * the members present on each lcore (ARCHITECTURE.md "The path of a chat
 * message").
 *
 * Every ordered pair of lcores (a lcore with itself included) has one SPSC
 * rte_ring of fixed-size messages (struct fmsg, by value). A sender stages
 * messages per destination during its loop turn and enqueues them in one
 * burst at the end of the turn (fanout_flush); what a full ring does not
 * take stays staged, in order, for the next turn (counted, never dropped).
 * A destination lcore that is about to sleep in its poller is woken through
 * its eventfd.
 *
 * Roles, per room:
 *   origin lcore  owns the author's or joiner's connection: parses, checks
 *                 rights, sends the request to the home lcore, answers the
 *                 client when the result comes back;
 *   home lcore    (roomtab.h: hash of the room id) keeps the roster of present
 *                 members and how many sit on each lcore, assigns the room's
 *                 sequence numbers, submits history + compliance records to
 *                 the storage thread in seq order, and once they are durable
 *                 sends one shared, reference-counted post to every lcore
 *                 with members there;
 *   member lcore  writes the post to each local member's dialog.
 * Rings are FIFO and the storage thread completes a producer's requests in
 * order, so every member sees a room's posts in seq order, each once.
 *
 * All functions: the owning lcore only, unless said otherwise. */
#ifndef PARLEY_FANOUT_H
#define PARLEY_FANOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/catalog.h"

struct engine;
struct lcore_ctx;
struct conn;
struct dialog;
struct roomtab_ent;
struct history_rec;
struct fanout_histreq;

#define FANOUT_LCORES_MAX	64

/* What the home lcore needs to sequence and store a post, and what member
 * lcores deliver. One allocation; strings point inside it. Shared
 * read-only once the home lcore published it; freed by the last fanout_post_put. */
struct fanout_post {
	_Atomic uint32_t refs;
	uint32_t	origin;		/* lcore of the author's connection, or
					 * FO_ORIGIN_REMOTE (another node's) */
	uint32_t	from_node;	/* remote origin: its node and request id */
	uint64_t	ref;
	uint8_t		room[CATALOG_ID_RAW];
	bool		logged;
	uint64_t	seq;		/* room seq (home) */
	uint64_t	wal_seq;	/* compliance seq once durable */
	uint64_t	ts_100ns;	/* Unix 100 ns: the storage thread's stamp (commit.h) */
	int		status;		/* 0, or why it was not stored (-errno) */
	uint64_t	admit_ms;	/* origin: lcore_now_real_ms when it was sent on */

	/* The author's side, for the deferred SIP 200 (origin lcore only). */
	struct conn	*conn;
	uint64_t	dialog_uid;
	char		*resp;		/* the SIP 200, built at receipt */
	size_t		resp_len;
	char		seqid[32], envid[32];

	const char	*author;	/* sip:user@domain */
	const char	*room_uri;
	const char	*inner;		/* grpchat inner XML, verbatim */
	size_t		inner_len;
	const char	*text;		/* plain text of <chat>, for compliance */
	size_t		text_len;
	const char	*extra_attrs;

	char		*body;		/* the XCCOS document, built once (home) */
	size_t		body_len;

	/* Memory: the strings, the response and (when it fits) the body live
	 * in the bytes after the struct; <cap> of them, <used> so far. */
	size_t		cap, used;
	bool		pooled;		/* from the post pool (else malloc) */
	bool		body_owned;	/* body was malloc'd (did not fit) */
};

/* A snapshot of one present member, as the home lcore hands it back to a
 * joiner (the uib table of rpl:join). */
struct fanout_member {
	char		uri[160];	/* sip:user@domain */
	bool		manager;
};

/* What a job handed to the storage thread is (the commit cookie). */
enum fanout_job {
	FANOUT_JOB_POST = 1,
	FANOUT_JOB_JOIN,
	FANOUT_JOB_PART,
	FANOUT_JOB_REPLY,
	FANOUT_JOB_PEER_HIST,	/* a history view asked by another node (fanout_peer_room.c) */
	FANOUT_JOB_REPL,	/* a replica's copy of another node's post (fanout_repl.c) */
};

/* One room of a join or bjoin, travelling origin -> home -> origin. */
struct fanout_joinreq {
	enum fanout_job		kind;		/* FANOUT_JOB_JOIN */
	struct fanout_joinbatch	*batch;
	uint8_t			raw[CATALOG_ID_RAW];
	uint32_t		origin;
	uint64_t		uid;		/* the joining dialog */
	bool			manager;
	bool			bjoin;		/* of a bjoin (ntc:bjoin) */
	uint32_t		node;		/* home: the joiner's node when remote */
	uint64_t		ref;		/* its request id there */
	int			status;		/* xccos code: 200, 500 */
	char			uri[160];
	char			room_uri[160];
	struct fanout_member	*snap;		/* present members after the join (home) */
	uint32_t		nsnap;
};

/* A join or bjoin command waiting for its homes (origin lcore only). */
struct fanout_joinbatch {
	struct conn	*conn;		/* held */
	uint64_t	uid;
	bool		batch;
	char		seqid[32], envid[32];
	unsigned	n, pending;
	struct fanout_joinreq	*reqs;
	unsigned	ndenied;	/* refused at the origin */
	struct fanout_denied *denied;
};

struct fanout_denied {
	char		id[64];		/* the chanid value as sent */
	char		domain[128];
	int		code;		/* 403, 404 */
};

/* What the fan-out calls up into the service that uses it (channel.c), on
 * the lcore named. Registered once at boot, before fanout_init. */
struct fanout_ops {
	/* Origin lcore: the home stored <p> (p->status 0) or refused it
	 * (-errno); answers the author. The fan-out releases <p> after. */
	void (*post_done)(struct lcore_ctx *lc, struct fanout_post *p);
	/* Origin lcore: every home answered the joins of <b>; replies and
	 * makes the memberships local (fanout_member_add). The fan-out frees
	 * <b> after. */
	void (*join_done)(struct lcore_ctx *lc, struct fanout_joinbatch *b);
	/* Any lcore with members: writes the XCCOS document <body> (a post, a
	 * notice, a reply) to member dialog <d>. 0 when it went out. */
	int (*send)(struct lcore_ctx *lc, struct dialog *d, const char *body, size_t len);
	/* Origin lcore: the room's home node answered a history request
	 * (fanout_history_ask) or could not; answers the client. The fan-out
	 * frees <h> after. Optional outside an array. */
	void (*history_done)(struct lcore_ctx *lc, struct fanout_histreq *h);
};

/* A bccontext for a room homed on another node (fanout_history_ask). */
struct fanout_histreq {
	struct conn		*conn;		/* held */
	uint64_t		uid;
	uint8_t			raw[CATALOG_ID_RAW];
	uint32_t		count;
	char			seqid[32], envid[32];
	char			user[160];	/* the asker: the home records its BACKCHAT */
	int			status;		/* 0, or why not (-errno) */
	struct history_rec	*recs;		/* oldest first */
	size_t			n;
	void			*mem;		/* what recs point into */
};

/* Asks the home node of room <r> for its last <h>->count posts; <h> (from
 * malloc, conn held by the caller for it) comes back through history_done.
 * 0, or -errno (the caller keeps <h>). */
int fanout_history_ask(struct lcore_ctx *lc, const struct roomtab_ent *r,
		       struct fanout_histreq *h);
void fanout_histreq_free(struct fanout_histreq *h);

/* Registers <ops> (copied) for the fan-outs fanout_init sets up from now on.
 * Boot thread. */
void fanout_register(const struct fanout_ops *ops);

/* Boot: rings and wake-up descriptors for every lcore of <e>, with the
 * callbacks registered (fanout_register). 0 or -errno with a message. */
int fanout_init(struct engine *e, char *err, size_t errlen);
/* After every lcore loop returned, with the storage thread still running:
 * finishes what is in flight between lcores (posts, joins, parts and their
 * storage jobs), so nothing is left to leak. Boot thread. */
void fanout_quiesce(struct engine *e, int timeout_ms);
void fanout_fini(struct engine *e);

/* Loop hooks. poll: handles arrived messages and storage completions,
 * returns how much work it did. flush: enqueues staged messages. idle: true
 * when nothing is staged, queued or in flight, so the lcore may sleep
 * (call with lc->sleeping already set; see lcore.c). */
unsigned fanout_poll(struct lcore_ctx *lc);
void fanout_flush(struct lcore_ctx *lc);
bool fanout_idle(struct lcore_ctx *lc);
/* Nothing of this lcore is still waiting for the storage thread or another
 * lcore (drain may finish). */
bool fanout_settled(struct lcore_ctx *lc);

/* Origin side, called by the Channel service (channel.c). */

/* A new post; takes ownership of <p> (refs 1) and sends it to the room's
 * home: 0. -ENOBUFS when too much is waiting for the home already (<p>
 * stays the caller's). */
int fanout_post(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_post *p);
/* refs 1, zeroed, at least <extra> bytes after the struct: from the post
 * pool (any lcore may put it back) when it fits, else malloc. */
struct fanout_post *fanout_post_alloc(size_t extra);
void fanout_post_put(struct fanout_post *p);

/* Joins. The caller fills a batch (fanout_joinbatch_new) with the rooms that
 * passed the origin's checks (reqs) and those refused (denied);
 * fanout_join holds the connection, sends each req to its room's home and,
 * once every home answered, calls the join_done callback (fanout_ops),
 * which replies and makes the memberships local (fanout_member_add). */
struct fanout_joinbatch *fanout_joinbatch_new(unsigned n, unsigned ndenied);
void fanout_joinbatch_free(struct fanout_joinbatch *b);
/* 0, or -ENOBUFS when too much is waiting for one of the homes already
 * (<b> stays the caller's). */
int fanout_join(struct lcore_ctx *lc, struct fanout_joinbatch *b);
/* Local membership of dialog <d> in room <raw> starts now. 0 or -ENOMEM. */
int fanout_member_add(struct lcore_ctx *lc, struct dialog *d, const uint8_t raw[CATALOG_ID_RAW]);
/* The home undoes a join whose dialog went away before the answer came. */
void fanout_unjoin(struct lcore_ctx *lc, const struct fanout_joinreq *jr);
/* Leaves room <raw> (cmd:part, BYE, connection loss, expiry): local
 * membership ends now, the home tells the others. */
void fanout_part(struct lcore_ctx *lc, struct dialog *d, const uint8_t raw[CATALOG_ID_RAW]);
bool fanout_is_joined(const struct dialog *d, const uint8_t raw[CATALOG_ID_RAW]);

/* A compliance event that must be durable before <reply> goes to dialog
 * <d> (BACKCHAT); <fail> goes instead if it could not be stored. Takes
 * ownership of both (malloc'd XCCOS documents). <content> is copied. */
void fanout_event_then_reply(struct lcore_ctx *lc, struct conn *c, struct dialog *d, int ev,
			     const struct roomtab_ent *r, const char *content, size_t content_len,
			     char *reply, size_t reply_len, char *fail, size_t fail_len);

/* Members present in a room (its home keeps the count). Any lcore. */
uint32_t fanout_present_count(const struct engine *e, const uint8_t raw[CATALOG_ID_RAW]);

/* In an array with peer links: posts durable on their home and waiting for
 * their room's replica to acknowledge its copy, over all lcores. Any
 * thread (a draining node releases its homes once this is 0). */
uint32_t fanout_repl_held(const struct engine *e);

/* For the control plane, on the lcore itself (engine_lcore_call): */
/* Calls <fn> for each member present in room <raw> as its home keeps them
 * (only meaningful on the room's home lcore); returns how many. */
typedef void fanout_member_fn(void *arg, const char *uri, uint32_t lcore, bool manager);
uint32_t fanout_roster_visit(struct lcore_ctx *lc, const uint8_t raw[CATALOG_ID_RAW],
			     fanout_member_fn *fn, void *arg);
/* Entries waiting in the ring from lcore <src> to lcore <dst>, and its
 * size. Any thread (a relaxed snapshot). */
uint32_t fanout_ring_count(const struct engine *e, uint32_t src, uint32_t dst);
uint32_t fanout_ring_size(const struct engine *e);
/* Messages staged on <lc> because a ring was full (its own thread). */
uint32_t fanout_staged(struct lcore_ctx *lc);
/* Times a stage or the storage backlog of <lc> grew past the array it got
 * at boot, and posts and joins <lc> refused because half a stage was
 * waiting for their home (its own thread). */
uint64_t fanout_grown(struct lcore_ctx *lc);
uint64_t fanout_refused(struct lcore_ctx *lc);

#endif
