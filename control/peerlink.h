/* The array's peer links: one mutually authenticated TLS connection per pair
 * of nodes, carrying peer frames (dataplane/peer/peerframe.h).
 *
 * One thread per node (the link thread) owns every peer connection: epoll
 * over non-blocking sockets, OpenSSL directly on the sockets. Both ends show
 * a certificate of the cluster CA (<ca>); a peer without one is refused in
 * the handshake (logged, counted). After the handshake each end sends HELLO
 * (node id, protocol version, cluster name) and checks the other's: a
 * different cluster, an unknown node id, (on a dialled link) another node
 * than the one dialled, or (with <name_prefix>) a certificate that does not
 * name that node id closes the connection. The node with the lower id
 * dials, the higher accepts, so there is one connection per pair: the
 * dialler dials only when it has no connection to that node, so when a
 * second one arrives the acceptor closes the older (a link lost without a
 * FIN comes back at once, not after dead_ms). A dialler retries with
 * exponential backoff.
 *
 * Output: peerlink_send() encodes on the caller's thread straight into a
 * lock-free ring that many threads fill and the link thread empties (bounded
 * by <send_max>, allocated at create: sending allocates nothing and writes
 * the link thread's eventfd only when it sleeps); it never blocks. The link
 * thread appends everything that arrived in one loop turn to each peer's
 * output and writes it with one SSL_write (many frames per write). Each
 * peer's unwritten output is bounded (<queue_max> bytes): a peer that falls
 * behind past the bound is cut (counted, logged once per cut) and the
 * owner's resync callback fires; it is never waited for. Frames for a peer
 * whose link is not up are dropped and counted: a link is a session, and
 * nothing queued crosses from one session to the next.
 *
 * Input: frames are decoded strictly with <frame_max>; a malformed or
 * oversized frame, or a frame whose sender is not the link's node, closes
 * that link with a logged reason (the node and its other links go on).
 *
 * How the owner (control/array.c, with membership from etcd) uses it (it
 * replaces the JSON-framed links of control/peer.c):
 *  1. peerlink_create() at boot with [array]'s peer_listen, ca/cert/key and
 *     the cluster name (the etcd prefix); callbacks run on the link thread.
 *  2. peerlink_set_members() whenever the live node set changes (etcd watch on
 *     nodes/): every live node's {id, peer address}, self included or not.
 *  3. peerlink_send(node, frame) from any thread, lcores included (no
 *     allocation, no lock, no syscall while the link thread is busy);
 *     peerlink_send_many() for a RELAY to every node with present members
 *     (encoded once). The link layer sets the sender id.
 *  4. recv callback: decode is done; copy what the lcores need (the body is
 *     serialized once, keep it in one refcounted message) and hand it over
 *     through rings; the frame's pointers die when the callback returns.
 *     Do not block in it: every link of the node waits meanwhile.
 *  5. state callback: on up, resynchronise: for each room homed on that
 *     node with present members here, send RESYNC_REQ from the last seq
 *     seen; on down, forwarded posts without POST_ACK must be re-resolved
 *     (home may have moved) and retried by ref, so nothing is doubled.
 *  6. resync callback: this node cut the peer for falling behind; the peer
 *     will see the link go down and come back, and resync as in 5.
 *  7. peerlink_links() for `parleyctl array`; peerlink_destroy() at shutdown, after
 *     the owner stopped calling peerlink_send(). */
#ifndef PARLEY_PEERLINK_H
#define PARLEY_PEERLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct peerframe;
struct peerlink;

#define PEERLINK_NODES_MAX		64
#define PEERLINK_ADDR_MAX		64		/* "[v6addr]:port" or "v4addr:port" */
#define PEERLINK_PROTO		1		/* HELLO's protocol version */

struct peerlink_config {
	uint32_t	node_id;	/* this node, > 0 */
	const char	*cluster;	/* both ends must agree; <= PEERFRAME_CLUSTER_MAX */
	const char	*listen;	/* "ADDR:PORT" (numeric); port 0 picks one */
	const char	*ca;		/* PEM: the cluster CA, the only one trusted */
	const char	*cert;		/* PEM chain of this node, issued by <ca> */
	const char	*key;
	/* When set, a peer's certificate must name it: "<name_prefix><id>"
	 * (e.g. "node" -> "node7") as a subjectAltName DNS entry, or as the
	 * CN when it has none; otherwise any cluster certificate may claim any
	 * node id. At most 32 characters. */
	const char	*name_prefix;
	size_t		queue_max;	/* unwritten bytes per peer (>= frame_max); 0: 8 MiB */
	uint32_t	frame_max;	/* largest frame accepted; 0: PEERFRAME_MAX_DEFAULT */
	/* Bytes of the send ring, frames waiting for the link thread: a
	 * frame takes its length + 12 + 4 per destination, rounded up to 64;
	 * 0: 64 MiB. Raised to hold two of the largest frames. Allocated at
	 * create (pages are touched as they are used). */
	size_t		send_max;
	unsigned	ping_ms;	/* PING when quiet this long; 0: 1000 */
	unsigned	dead_ms;	/* cut when nothing came in this long; 0: 5000 */
	unsigned	handshake_ms;	/* TLS + HELLO must finish in; 0: 5000 */
	unsigned	backoff_min_ms;	/* first redial delay; 0: 100 */
	unsigned	backoff_max_ms;	/* doubling stops here; 0: 5000 */
};

struct peerlink_member {
	uint32_t	id;
	char		addr[PEERLINK_ADDR_MAX];	/* its peer_listen, "ADDR:PORT" */
};

enum peerlink_link_state {
	PEERLINK_DOWN = 0,		/* no connection (waiting to dial, or for the peer to) */
	PEERLINK_CONNECTING,	/* TCP, TLS or HELLO under way */
	PEERLINK_UP,		/* HELLOs exchanged: frames flow */
};

/* One peer's link, as peerlink_links() reports it. Counters are totals since
 * the member was first set. */
struct peerlink_stats {
	uint32_t	id;
	char		addr[PEERLINK_ADDR_MAX];
	int		state;		/* enum peerlink_link_state */
	uint64_t	ups;		/* times the link came up */
	uint64_t	bytes_in, bytes_out;
	uint64_t	frames_in, frames_out;
	uint64_t	batches;	/* loop turns that wrote to the link (frames_out / batches:
					 * frames per write) */
	uint64_t	drops;		/* frames dropped: link not up, or cut */
	uint64_t	cuts;		/* cut for falling behind (queue_max) */
	uint64_t	queued;		/* bytes waiting to be written now */
};

/* Node-wide counters. */
struct peerlink_totals {
	uint64_t	refused_tls;	/* handshakes failed (no or foreign certificate, ...) */
	uint64_t	refused_hello;	/* bad HELLO: cluster, unknown node, wrong dial,
					 * certificate not naming the node */
	uint64_t	bad_frames;	/* links closed for a malformed or oversized frame */
	uint64_t	duplicates;	/* older connections replaced by a newer one */
	uint64_t	send_refused;	/* peerlink_send() over send_max */
};

/* Called on the link thread. <f> and what it points to live until return. */
typedef void peerlink_recv_fn(void *arg, uint32_t node, const struct peerframe *f);
typedef void peerlink_state_fn(void *arg, uint32_t node, bool up);
typedef void peerlink_resync_fn(void *arg, uint32_t node);

struct peerlink_callbacks {
	peerlink_recv_fn	*recv;		/* every decoded frame but HELLO/PING/PONG */
	peerlink_state_fn	*state;		/* a link came up or went down (optional) */
	peerlink_resync_fn	*resync;	/* a link was cut for falling behind (optional) */
	void			*arg;
};

/* Loads the TLS files, binds <c>->listen and starts the link thread with no
 * members. NULL with a sentence in <err> on failure. <c>'s strings are
 * copied. Boot thread. Free with peerlink_destroy. */
struct peerlink *peerlink_create(const struct peerlink_config *c,
				 const struct peerlink_callbacks *cb, char *err, size_t errlen);

/* Stops the link thread, closes every link, frees what is queued. Accepts
 * NULL. No peerlink_send() may run concurrently or later. */
void peerlink_destroy(struct peerlink *p);

/* The port the listener is bound to (useful with port 0). Any thread. */
uint16_t peerlink_port(const struct peerlink *p);

/* Replaces the member list with the <n> entries of <m> (at most
 * PEERLINK_NODES_MAX; this node's own id is ignored). New members are dialled
 * or awaited, removed ones are closed, a changed address redials. Returns
 * 0, or -EINVAL (too many, a bad address or id 0). Any thread; applied by
 * the link thread within a loop turn. */
int peerlink_set_members(struct peerlink *p, const struct peerlink_member *m, unsigned n);

/* Queues <f> for node <node>, with the sender id set to this node's. Never
 * blocks, allocates nothing. Returns 0 (queued: it leaves in order after the
 * frames this thread queued before, unless the link is not up or is cut,
 * when it is dropped and counted), -EINVAL (frame does not encode, or
 * exceeds frame_max), or -ENOBUFS (the send ring is full; counted). Any
 * thread, several at once. */
int peerlink_send(struct peerlink *p, uint32_t node, const struct peerframe *f);

/* peerlink_send() to each of the <n> nodes of <nodes> (at most PEERLINK_NODES_MAX),
 * with the frame encoded once: a RELAY to every node with present members.
 * Returns as peerlink_send(); the ring holds the frame once. Any thread. */
int peerlink_send_many(struct peerlink *p, const uint32_t *nodes, unsigned n,
		       const struct peerframe *f);

/* Copies up to <max> members' link stats into <out>; returns how many
 * members there are. <g> (optional) gets the node-wide counters. A
 * snapshot at most one loop turn old. Any thread. */
unsigned peerlink_links(struct peerlink *p, struct peerlink_stats *out, unsigned max,
			struct peerlink_totals *g);

/* "down", "connecting", "up". */
const char *peerlink_state_name(int state);

#endif
