/* The node array: this node's membership in etcd ([array]).
 *
 * A control-plane thread (parley-array, never an lcore) owns the node's
 * etcd session: at start it grants a lease and creates
 *	<prefix>/nodes/<node_id>
 * bound to it, only if no live node holds that id; then, about every
 * second, it renews the lease and rewrites the key with the node's load
 * (a JSON object: node_id, sip, peer, pid, conns, lcores[].busy,
 * draining, started_ms, updated_ms). When this node's lease is gone (the
 * process died, or etcd lost it for longer than lease_ttl_s) the key goes
 * with it.
 *
 * etcd lost while running: the node goes on serving its clients; the loss
 * is logged once, counted (etcd_lost in `array`) and the thread keeps
 * trying; when etcd answers again, the lease is renewed, or, if it expired
 * meanwhile, a new one is granted and the key created again (unless
 * another node took the id by then: logged, and retried).
 *
 * Placement (dataplane/session/placement.h): array_start() registers the
 * decision for new registrations; the thread rereads every node key each
 * turn into a table the lcores read without locks. A new REGISTER is
 * served here, or answered 301 to the user's node: among the nodes that
 * are live, not draining and not overloaded (connections, plus clients
 * this node placed there since it last read etcd, within max(5, 10%) of
 * the least-loaded), the one with the highest hash of
 * (user, node) (rendezvous hashing: sticky while that node qualifies).
 * Without a fresh table (etcd lost) every registration is served here.
 *
 * Threads: array_start() and array_stop() on the boot thread, before the
 * lcores run and after they returned;
 * array_nodes() on one other thread at a time (the control socket's). */
#ifndef PARLEY_ARRAY_H
#define PARLEY_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct array;
struct engine;
struct etcd;
struct roomtab;
struct web;

struct array_config {
	const char	*etcd;		/* endpoints, comma-separated URLs */
	const char	*prefix;	/* "/parley/example.com": no trailing slash */
	uint32_t	node_id;
	const char	*advertise_sip;	/* host:port clients are sent to */
	const char	*peer_listen;	/* numeric ADDR:PORT of the peer links, or "" */
	uint32_t	lease_ttl_s;
	uint32_t	keepalive_s;	/* lease renewal interval, < lease_ttl_s */
	uint32_t	timeout_ms;	/* one etcd request */
	uint32_t	claim_delay_ms;	/* after joining, before claiming room homes */
	uint32_t	failover_grace_ms;	/* a dead home's room, its replica live: others
						 * wait this long before claiming it */
	/* Peer links (peerlink.h), when peer_listen is set: */
	const char	*ca;		/* the cluster CA */
	const char	*cert;		/* this node's certificate and key */
	const char	*key;
	uint32_t	peer_frame_max;		/* 0: peerlink.h's default */
	uint32_t	peer_queue_max;		/* 0: peerlink.h's default */
	const char	*peer_name_prefix;	/* "" or NULL: certs need not name nodes */
	/* The Web service, when it runs: published so that other nodes fetch
	 * this node's files from it (webfetch.h). */
	const char	*web_url;	/* its serveruri, or "" / NULL */
	const char	*web_cert;	/* its certificate (PEM), pinned by the others */
};

/* Boot thread, after engine_create() (<e> outlives the array; the lcores
 * need not run yet): joins the array and starts the thread. NULL with the
 * reason in <err> when etcd cannot be reached (three tries, half a second
 * apart) or refuses, or when a live
 * node holds this node_id: the node must not start (never standalone by
 * accident). */
struct array *array_start(const struct array_config *cfg, struct engine *e, char *err,
			  size_t errlen);

/* Boot thread, at shutdown (the lcores may have returned): stops the
 * thread and revokes the lease, so the node leaves the array at once.
 * Accepts NULL. */
void array_stop(struct array *a);

/* Any thread: publish this node's record now rather than at the next
 * turn (a drain: other nodes stop placing clients here as soon as they
 * next read etcd, within a second). Accepts NULL. */
void array_kick(struct array *a);

/* Every node of the array as etcd holds it now, and this node's session:
 * {"prefix":..,"node_id":..,"etcd":{"state":"ok"|"lost","endpoint":..,
 * "lease":"<hex>","lost_count":N,"errors":N},"nodes":[{...},..],
 * "peers":{...}} (nodes sorted by id; each the JSON that node published,
 * plus "key" and "lease"). peers, null without peer_listen:
 * {"listen":..,"port":N,"links":[{"node_id":..,"addr":..,"state":"down"|
 * "connecting"|"up","ups":N,"frames_in":N,"frames_out":N,"bytes_in":N,
 * "bytes_out":N,"batches":N,"drops":N,"cuts":N,"queued":N},..],
 * "refused_tls":N,"refused_hello":N,"bad_frames":N,"duplicates":N,
 * "send_refused":N,"unhandled":N} (struct peerlink_stats and struct
 * peerlink_totals; unhandled: frames received that nothing consumes yet).
 * When etcd does not answer, "nodes" is null and etcd.error says why. 0,
 * or -1 with the reason in <err> (out of memory). */
int array_nodes(struct array *a, json_t **out, char *err, size_t errlen);

/* Boot thread, after array_start and web_start: the Web service <w> fetches
 * files stored on other nodes and serves this node's to them, with the
 * array's shared secret (<prefix>/secret in etcd) and the live nodes'
 * published Web addresses. 0 or -errno. */
int array_web_attach(struct array *a, struct web *w);
/* The lease this node's keys are bound to now; 0 while it holds none
 * (out of the array). Any thread. */
int64_t array_lease(const struct array *a);

/* Reads the room homes with <e> (the caller's own etcd client) so that the
 * next room table built has them (homes_read). 0 or -errno. Any thread. */
int array_homes_read(struct array *a, struct etcd *e, char *err, size_t errlen);

/* For a room created now (id <room_id>): the etcd transaction operation
 * that homes it on the node that wins it among the live nodes, bound to
 * that node's lease, to go in the transaction that creates the room, so
 * that every node learns the room and its home together. NULL when no node
 * qualifies (the room is claimed later, homes.h). Any thread. */
json_t *array_home_op(struct array *a, const char *room_id);

/* This node's id in the array. Any thread. */
uint32_t array_node_id(const struct array *a);

/* Room homes (homes.c). The table the lcores read carries each room's home
 * node and epoch (roomtab.h): whoever builds a table in an array marks it
 * (roomtab_set_array) and has the array fill in the homes it last read
 * from etcd (rooms it knows no home of stay ROOMTAB_NODE_NONE). Any
 * thread, before the table is published. */
void array_fill_homes(struct array *a, struct roomtab *t);

/* What the array thread calls when the homes it read from etcd changed:
 * build a new room table (array_fill_homes) and publish it. Registered by
 * the control socket, which owns the table (ctl_set_array); runs on the
 * array thread. */
typedef void array_republish_fn(void *arg);
void array_set_republish(struct array *a, array_republish_fn *fn, void *arg);

#endif
