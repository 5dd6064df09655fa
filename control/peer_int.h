/* The peer link layer's own state, shared by peer.c (the API, the thread,
 * members, the send list) and peer_conn.c (one connection: TCP, TLS, HELLO,
 * frames in and out). Only control/peer*.c include this. Everything here
 * but the fields marked otherwise belongs to the link thread. */
#ifndef PARLEY_PEER_INT_H
#define PARLEY_PEER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "control/peer.h"
#include "dataplane/peer/peerframe.h"

/* One encoded frame on its way from peer_send_many() to the link thread,
 * for <nnodes> destinations; the frame follows the node ids. */
struct peer_msg {
	struct peer_msg	*next;
	uint32_t	len;		/* of the frame */
	uint32_t	nnodes;
	uint8_t		*frame;
	uint32_t	nodes[];
};

enum peer_conn_phase {
	PEER_CONN_TCP,		/* non-blocking connect under way */
	PEER_CONN_TLS,		/* handshake */
	PEER_CONN_HELLO,	/* our HELLO sent, waiting for theirs */
	PEER_CONN_UP,
};

struct peer_node;

struct peer_conn {
	struct peer_conn	*next;		/* peer.conns */
	struct peer		*p;
	int			fd;
	SSL			*ssl;
	int			phase;		/* enum peer_conn_phase */
	bool			dialer;
	bool			dead;		/* closed; freed at the end of the turn */
	bool			again;		/* input left unread this turn */
	bool			pollout;	/* EPOLLOUT is registered */
	bool			ssl_wants_write;
	struct peer_node	*node;		/* dialled node, or the HELLO's once up */
	char			who[PEER_ADDR_MAX];	/* remote address, for logs */
	uint8_t			*in;
	size_t			in_len, in_cap;
	uint8_t			*out;		/* bytes [out_head, out_len) unwritten */
	size_t			out_head, out_len, out_cap;
	uint64_t		t_start, t_in, t_out;	/* ms */
	uint64_t		ping_ref;
};

struct peer_node {
	bool			used;
	uint32_t		id;
	char			addr[PEER_ADDR_MAX];
	struct sockaddr_storage	sa;
	socklen_t		salen;
	struct peer_conn	*conn;		/* the connection for this pair, if any */
	uint64_t		next_dial;	/* ms */
	unsigned		backoff;	/* ms */
	struct peer_link_stats	st;
};

struct peer {
	/* configuration, with defaults filled in; read-only after create */
	uint32_t		id;
	char			cluster[PEERFRAME_CLUSTER_MAX + 1];
	char			name_prefix[33];	/* "" when not checked */
	size_t			queue_max, send_max;
	uint32_t		frame_max;
	unsigned		ping_ms, dead_ms, handshake_ms, backoff_min, backoff_max;
	struct peer_callbacks	cb;
	SSL_CTX			*ctx;
	int			lfd, epfd, evfd;
	uint16_t		port;
	pthread_t		thread;

	/* shared with any thread */
	_Atomic(struct peer_msg *) sendq;	/* LIFO of pending frames */
	atomic_size_t		send_bytes;
	atomic_bool		kicked;
	atomic_bool		stop;
	atomic_ullong		send_refused;
	pthread_mutex_t		lock;		/* guards the two blocks below */
	struct peer_member	pend[PEER_NODES_MAX];	/* members to apply */
	unsigned		npend;
	bool			pend_set;
	struct peer_link_stats	pub[PEER_NODES_MAX];	/* last published */
	unsigned		npub;
	struct peer_stats	pubg;

	/* link thread */
	struct peer_node	nodes[PEER_NODES_MAX];
	struct peer_conn	*conns;
	struct peer_stats	g;
	uint64_t		now;		/* ms, refreshed every turn */
};

/* peer_conn.c */
struct peer_conn *peer_conn_new(struct peer *p, int fd, bool dialer, struct peer_node *n,
				const char *who);
void peer_conn_kill(struct peer_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void peer_conn_free(struct peer_conn *c);
void peer_conn_event(struct peer_conn *c, uint32_t events);
void peer_conn_input(struct peer_conn *c);
void peer_conn_flush(struct peer_conn *c);
void peer_conn_timers(struct peer_conn *c);
bool peer_conn_queue(struct peer_conn *c, const uint8_t *data, size_t len);

/* peer.c */
struct peer_node *peer_node_find(struct peer *p, uint32_t id);

#endif
