/* Peer links: one mutually authenticated TLS connection per pair of nodes of
 * the array ([array] peer_listen, ca, cert, key).
 *
 * A thread (parley-peer, never an lcore) listens on peer_listen and keeps
 * a link to every other live node: the node with the lower node_id
 * connects, the other accepts. Both ends present a certificate, and each
 * refuses one that does not chain to the cluster CA ([array] ca), or none.
 * On a link, frames: a 4-byte big-endian length, then that many bytes of
 * one JSON object with a "type". The first frame each way is
 *	{"type":"hello","node_id":N,"prefix":"/parley/example.com"}
 * (a peer of another array or with an unexpected id is closed); then
 * {"type":"ping"} every second; a link silent for PEER_IDLE_MS is closed
 * and made again. A malformed frame (not JSON, no type, over
 * PEER_FRAME_MAX, a second hello) closes that link with the reason in the
 * log and the counters; the node goes on. Nothing else travels yet: the
 * relay of posts between nodes builds on these links.
 *
 * Threads: peer_start()/peer_stop() on the boot thread; peer_set_nodes()
 * from the array thread; peer_status() from the control thread. */
#ifndef PARLEY_PEER_H
#define PARLEY_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct peers;

#define PEER_FRAME_MAX		(1u << 20)	/* bytes of one frame's JSON */
#define PEER_IDLE_MS		5000		/* no frame for this long: the link is dead */
#define PEER_ADDR_MAX		256

struct peer_config {
	const char	*listen;	/* host:port */
	const char	*ca;		/* the cluster CA (PEM) */
	const char	*cert;		/* this node's certificate and key (PEM) */
	const char	*key;
	const char	*prefix;	/* the array's etcd prefix: its identity in hellos */
	uint32_t	node_id;
};

/* A node to link with. */
struct peer_node {
	uint32_t	node_id;
	char		addr[PEER_ADDR_MAX];	/* its peer_listen, host:port */
};

/* Boot thread: loads the TLS material, binds the listener and starts the
 * thread. NULL with the reason in <err> (a file that does not load, an
 * address in use). */
struct peers *peer_start(const struct peer_config *cfg, char *err, size_t errlen);

/* Boot thread: closes every link and stops the thread. Accepts NULL. */
void peer_stop(struct peers *p);

/* The other live nodes (this node's own id is skipped), as etcd says now;
 * links to nodes no longer listed are closed. Copied. Any thread. */
void peer_set_nodes(struct peers *p, const struct peer_node *v, size_t n);

/* {"listen":..,"links":[{"node_id":..,"addr":..,"direction":"in"|"out",
 * "state":"connecting"|"handshake"|"hello"|"up","since_ms":..,"rx_frames":..,
 * "tx_frames":..},..],"refused":N,"bad_frames":N,"last_error":".."}: a new
 * reference. Any thread. */
json_t *peer_status(struct peers *p);

#endif
