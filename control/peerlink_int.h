/* The peer link layer's own state, shared by peerlink.c (the API, the thread,
 * members, the send list) and peerlink_conn.c (one connection: TCP, TLS, HELLO,
 * frames in and out). Only control/peerlink*.c include this. Everything here
 * but the fields marked otherwise belongs to the link thread. */
#ifndef PARLEY_PEERLINK_INT_H
#define PARLEY_PEERLINK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "control/peerlink.h"
#include "dataplane/peer/peerframe.h"

/* The send ring (peerlink.c) is cut in cells: every record starts on one. */
#define PEERLINK_CELL		64

/* One encoded frame in the send ring, on its way from peerlink_send_many()
 * to the link thread, for <nnodes> destinations; the frame follows the node
 * ids. A record with <len> 0 pads the ring's end (its <size> skips it). */
struct peerlink_rec {
	uint32_t	size;		/* bytes of the record, a multiple of PEERLINK_CELL */
	uint32_t	len;		/* of the frame; 0: padding */
	uint32_t	nnodes;
	uint32_t	nodes[];
};

enum peerlink_conn_phase {
	PEERLINK_CONN_TCP,		/* non-blocking connect under way */
	PEERLINK_CONN_TLS,		/* handshake */
	PEERLINK_CONN_HELLO,	/* our HELLO sent, waiting for theirs */
	PEERLINK_CONN_UP,
};

struct peerlink_node;

struct peerlink_conn {
	struct peerlink_conn	*next;		/* peerlink.conns */
	struct peerlink		*p;
	int			fd;
	SSL			*ssl;
	int			phase;		/* enum peerlink_conn_phase */
	bool			dialer;
	bool			dead;		/* closed; freed at the end of the turn */
	bool			again;		/* input left unread this turn */
	bool			pollout;	/* EPOLLOUT is registered */
	bool			ssl_wants_write;
	struct peerlink_node	*node;		/* dialled node, or the HELLO's once up */
	char			who[PEERLINK_ADDR_MAX];	/* remote address, for logs */
	uint8_t			*in;
	size_t			in_len, in_cap;
	uint8_t			*out;		/* bytes [out_head, out_len) unwritten */
	size_t			out_head, out_len, out_cap;
	uint64_t		t_start, t_in, t_out;	/* ms */
	uint64_t		ping_ref;
};

struct peerlink_node {
	bool			used;
	uint32_t		id;
	char			addr[PEERLINK_ADDR_MAX];
	struct sockaddr_storage	sa;
	socklen_t		salen;
	struct peerlink_conn	*conn;		/* the connection for this pair, if any */
	uint64_t		next_dial;	/* ms */
	unsigned		backoff;	/* ms */
	struct peerlink_stats	st;
};

struct peerlink {
	/* configuration, with defaults filled in; read-only after create */
	uint32_t		id;
	char			cluster[PEERFRAME_CLUSTER_MAX + 1];
	char			name_prefix[33];	/* "" when not checked */
	size_t			queue_max, send_max;
	uint32_t		frame_max;
	unsigned		ping_ms, dead_ms, handshake_ms, backoff_min, backoff_max;
	struct peerlink_callbacks	cb;
	SSL_CTX			*ctx;
	int			lfd, epfd, evfd;
	uint16_t		port;
	pthread_t		thread;

	/* the send ring, allocated at create (see peerlink.c): <ring_size>
	 * bytes; ring_done[cell] is the position + 1 of the record committed
	 * at that cell, written by its producer */
	uint8_t			*ring;
	uint64_t		ring_size;
	_Atomic uint64_t	*ring_done;

	/* shared with any thread; the two ring positions on their own lines */
	_Alignas(64) _Atomic uint64_t	ring_head;	/* next position to reserve */
	_Alignas(64) _Atomic uint64_t	ring_tail;	/* first one not taken; link thread writes */
	_Alignas(64) atomic_bool	sleeping;	/* link thread blocks in epoll, or is about to */
	atomic_bool		kicked;
	atomic_bool		stop;
	atomic_ullong		send_refused;
	pthread_mutex_t		lock;		/* guards the two blocks below */
	struct peerlink_member	pend[PEERLINK_NODES_MAX];	/* members to apply */
	unsigned		npend;
	bool			pend_set;
	struct peerlink_stats	pub[PEERLINK_NODES_MAX];	/* last published */
	unsigned		npub;
	struct peerlink_totals	pubg;

	/* link thread */
	struct peerlink_node	nodes[PEERLINK_NODES_MAX];
	struct peerlink_conn	*conns;
	struct peerlink_totals	g;
	uint64_t		now;		/* ms, refreshed every turn */
};

/* peerlink_conn.c */
struct peerlink_conn *peerlink_conn_new(struct peerlink *p, int fd, bool dialer,
					struct peerlink_node *n, const char *who);
void peerlink_conn_kill(struct peerlink_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void peerlink_conn_free(struct peerlink_conn *c);
void peerlink_conn_event(struct peerlink_conn *c, uint32_t events);
void peerlink_conn_input(struct peerlink_conn *c);
void peerlink_conn_flush(struct peerlink_conn *c);
void peerlink_conn_timers(struct peerlink_conn *c);
bool peerlink_conn_queue(struct peerlink_conn *c, const uint8_t *data, size_t len);

/* peerlink.c */
struct peerlink_node *peerlink_node_find(struct peerlink *p, uint32_t id);

#endif
