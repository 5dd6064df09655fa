/* The storage thread: group commit of posts and compliance events.
 *
 * Producers (one per data-plane lcore, plus control/web threads) each own a
 * struct commit_producer: a preallocated pool of requests, an SPSC request
 * ring to the storage thread and an SPSC completion ring back. The storage
 * thread drains every request ring in bursts, assigns each request the next
 * global compliance seq, puts all of them (history record + compliance
 * event) into ONE WriteBatch, writes it with fsync, and only then hands the
 * requests back on their producers' completion rings: a request seen on the
 * completion ring with status 0 is durable, and so is every lower seq.
 * While one group is being fsynced the next one piles up in the rings; that
 * is the group commit.
 *
 * Producer side (commit_req_get .. commit_poll): owned by one thread at a
 * time, no locks, no malloc, no syscalls; safe on an lcore. A request and the
 * bytes it points to belong to the storage thread from commit_submit until
 * commit_poll returns it; then the producer releases it (commit_req_put).
 * A completion ring holds as many entries as the pool, so completions never
 * wait for a slow producer (they just sit in its ring).
 *
 * The rings are DPDK rte_rings made with rte_ring_init on plain aligned
 * memory: no EAL, hugepages or memzones needed.
 *
 * Life: commit_create (boot; starts the thread) -> producers run ->
 * producers stop submitting -> commit_stop (drains every ring, final commit,
 * joins) -> producers may still poll their last completions ->
 * commit_destroy. */
#ifndef PARLEY_COMMIT_H
#define PARLEY_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/history.h"
#include "storage/wal.h"

struct db;
struct commit;
struct commit_producer;

#define COMMIT_PRODUCERS_MAX	128
#define COMMIT_BURST_MAX	1024	/* requests in one group at most */

enum commit_op {
	COMMIT_POST = 1,	/* history record (if logged) + CHAT event */
	COMMIT_EVENT,		/* a compliance event only (JOIN, PART, ...) */
	/* A replica's copy of another node's event (array failover): the
	 * history record (if logged; else the seq mark) at <room_seq> with the
	 * home's <ts_ms> (kept, not restamped), and the compliance event in
	 * the meta family under commit_replica_key() -- apart from this node's
	 * own compliance log, so its exporter does not export it. Takes no
	 * compliance seq (wal_seq stays 0). */
	COMMIT_REPLICA,
	/* A replica drops its copies of <room> from <room_seq> on (history
	 * and compliance copies): what an earlier home numbered there and
	 * never had acknowledged (a new home numbers those seqs anew). The
	 * CHAT events of <room> from <room_seq> on in this node's own log so
	 * far are void too (it numbered them as the room's home, and nobody
	 * acknowledged them): recorded under commit_void_key() with the next
	 * log seq, so the exporter leaves them out (storage/export.h). */
	COMMIT_REPLICA_TRUNCATE,
};

/* The meta-family key of a void range: "cvoid/" + room raw + the first log
 * seq after it (big-endian); the value is the first void room seq
 * (big-endian u64). */
#define COMMIT_VOID_PREFIX	"cvoid/"
#define COMMIT_VOID_KEY_LEN	(6 + HISTORY_ROOM_RAW + 8)

/* The meta-family key of a replica's compliance copy: "rcmp/" + room raw +
 * room seq (big-endian). */
#define COMMIT_REPLICA_KEY_LEN	(5 + HISTORY_ROOM_RAW + 8)
void commit_replica_key(uint8_t key[COMMIT_REPLICA_KEY_LEN], const uint8_t room[HISTORY_ROOM_RAW],
			uint64_t seq);
/* A copy's value is the compliance event encoded by wal.h (under seq 0),
 * followed by the home node as a big-endian u32 (absent in copies stored
 * before it was kept). Returns the length of the event part and the home
 * in *<home> (0 when absent), or -EBADMSG for a value of neither form. */
ssize_t commit_replica_home(const void *val, size_t len, uint32_t *home);

struct commit_req {
	/* Filled by the producer. Pointed-to bytes must stay put until the
	 * request comes back from commit_poll. */
	enum commit_op		op;
	enum wal_event		ev;		/* COMMIT_EVENT; POST implies CHAT */
	bool			logged;		/* POST: the room keeps history */
	uint8_t			room[HISTORY_ROOM_RAW];
	uint64_t		room_seq;	/* POST: history seq, from the home lcore */
	/* Set by the storage thread as it gives the request its seq (what a
	 * producer puts here is overwritten): one wall clock for every event,
	 * and never earlier than the event before it in seq order, so a CHAT
	 * answered before a PART never carries a later time, also across a
	 * wall-clock step back. Unix ms. */
	uint64_t		ts_ms;
	const char		*room_uri;
	size_t			room_uri_len;
	const char		*user;		/* author / actor SIP URI */
	size_t			user_len;
	const void		*body;		/* POST: grpchat inner XML, for history */
	size_t			body_len;
	const void		*content;	/* compliance content (wal.h) */
	size_t			content_len;
	const char *const	*files;		/* POST: file refs, <nfiles> of them */
	const size_t		*file_lens;
	unsigned		nfiles;
	void			*cookie;	/* the producer's, untouched */
	/* COMMIT_REPLICA: the node that sequenced the event (its home), kept
	 * with the copy (commit_replica_home) so that a later home exports it
	 * under that node's id; 0: unknown. */
	uint32_t		home_node;

	/* Set by the storage thread before completion. */
	int			status;		/* 0 durable, -EINVAL bad request, -EIO */
	uint64_t		wal_seq;	/* compliance seq when status == 0 */

	struct commit_producer	*owner_;	/* private */
};

struct commit_config {
	unsigned	nproducers;	/* 1..COMMIT_PRODUCERS_MAX */
	unsigned	depth;		/* requests per producer (pool = ring size) */
	unsigned	burst;		/* max group size, 0: COMMIT_BURST_MAX */
	/* Benchmarks only: groups are written without fsync, so a power cut
	 * can lose posts that members already saw. Logged loudly at start. */
	bool		durability_unsafe_no_fsync;
	/* The least time between the starts of two fsync'd groups: requests
	 * that come meanwhile wait for the rest of it and go in the next
	 * group, so under load one fsync serves more of them. A request that
	 * comes when the last fsync is older than this is written at once.
	 * 0: no wait (a group as soon as requests are there). Not used with
	 * durability_unsafe_no_fsync. */
	unsigned	sync_interval_us;
	/* Called on the storage thread after completions were put on the
	 * ring of producer <producer>, so a producer that sleeps can be woken.
	 * May be NULL. Must not block. */
	void		(*notify)(void *arg, unsigned producer);
	void		*notify_arg;
	/* The wall clock events are stamped with (Unix ms); NULL: the real
	 * one. Called on the storage thread. For tests. */
	uint64_t	(*clock_ms)(void);
};

/* The latency histogram's bounds: bucket k holds the group commits that
 * took at most commit_lat_le_us(k) = 2^(k + COMMIT_LAT_LE0) - 1 us (63 us
 * .. about 4.2 s). */
#define COMMIT_LAT_BUCKETS	17
#define COMMIT_LAT_LE0		6

static inline uint64_t
commit_lat_le_us(unsigned k)
{
	return ((uint64_t)1 << (k + COMMIT_LAT_LE0)) - 1;
}

struct commit_stats {
	uint64_t	groups;		/* WriteBatches written */
	uint64_t	requests;	/* requests completed (any status) */
	uint64_t	failed;		/* requests completed with status != 0 */
	uint64_t	sync_waits;	/* sleeps for the rest of the sync interval */
	uint64_t	durable_seq;	/* highest durable compliance seq */
	double		batch_mean;
	uint64_t	batch_p50, batch_p99, batch_max;
	uint64_t	lat_p50_us, lat_p99_us, lat_max_us;	/* write+fsync per group */
	uint64_t	lat_le[COMMIT_LAT_BUCKETS];	/* cumulative: <= commit_lat_le_us(k) */
	uint64_t	lat_count, lat_sum_us;		/* groups timed, their total time */
};

/* Starts the storage thread for <db>; the global seq continues at
 * wal_next_seq(). NULL with *err = -EINVAL (config), -ENOMEM, -EIO or
 * -errno of pthread_create. Boot only. */
struct commit *commit_create(struct db *db, const struct commit_config *cfg, int *err);

/* Drains all request rings, commits them, joins the thread. Producers must
 * have stopped submitting. Idempotent. Boot/shutdown only. */
void commit_stop(struct commit *c);

/* Stops if needed and frees everything, producers included. Accepts NULL. */
void commit_destroy(struct commit *c);

/* Producer <i> (0-based), for handing to the thread that will use it. */
struct commit_producer *commit_producer(struct commit *c, unsigned i);

/* Producer thread only. A zeroed request from the pool, or NULL when all
 * are in flight (poll completions first). */
struct commit_req *commit_req_get(struct commit_producer *p);
/* Producer thread only. Returns a polled (or never submitted) request. */
void commit_req_put(struct commit_producer *p, struct commit_req *r);

/* Producer thread only. Enqueues up to <n>; returns how many were taken.
 * Requests not taken still belong to the caller. */
unsigned commit_submit(struct commit_producer *p, struct commit_req **reqs, unsigned n);
/* Producer thread only. Up to <n> completed requests, in submit order. */
unsigned commit_poll(struct commit_producer *p, struct commit_req **reqs, unsigned n);

/* Completions waiting on <p>'s ring (a producer about to sleep checks it
 * after announcing that it sleeps). Producer thread only. */
unsigned commit_done_count(struct commit_producer *p);

/* Highest compliance seq known durable. Any thread. */
uint64_t commit_durable_seq(const struct commit *c);

/* A snapshot of the counters (each read atomically, not all at one
 * instant). Any thread. */
void commit_stats_get(const struct commit *c, struct commit_stats *st);

#endif
