/* Byte relays between user-space TCP connections (utcp) and stream sockets:
 * how the dpdk backend carries a service that runs on a thread of its own.
 * The Web service is one: its TLS, HTTP and file I/O (writes, fsync, RocksDB
 * reads) block, which an lcore must never do, so it keeps its thread and
 * only its TCP moves onto the DPDK port.
 *
 * Each connection accepted on the service's port gets a socketpair; the
 * service is handed one end (adopt) and serves it as it would an accepted
 * socket, the lcore moves bytes between the other end and the TCP
 * connection, both ways, with back-pressure: while the socket is full the
 * bytes stay in the TCP receive buffer and the window closes; while the TCP
 * send buffer is full the lcore stops reading the socket. Ends cross over:
 * a FIN from the client shuts the socket's write side (the service reads
 * EOF); the service closing its end sends FIN after the queued bytes (RST
 * if client bytes were left unread); a reset or timeout of the TCP
 * connection closes the socket.
 *
 * The sockets are edge-triggered in one epoll set per lcore (relay_fd), so
 * the lcore can sleep on it with its wake eventfd. No DPDK here. One set per
 * lcore, used by that lcore only. */
#ifndef PARLEY_IO_RELAY_H
#define PARLEY_IO_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/tcp/utcp.h"

struct relay_set;

/* Hands <fd> (a connected, non-blocking AF_UNIX stream socket) to the
 * service. 0 (the service owns <fd> now), or -errno (the caller closes it
 * and resets the connection). */
typedef int relay_adopt_fn(void *arg, int fd);

enum relay_stat {
	RELAY_ACCEPTED,		/* connections handed to the service */
	RELAY_REFUSED,		/* reset at accept: set full, no service, socketpair failed */
	RELAY_BYTES_UP,		/* client -> service */
	RELAY_BYTES_DOWN,	/* service -> client */
	RELAY_RESETS,		/* connections reset by either side */
	RELAY_STAT__COUNT,
};

/* Up to <max> connections at once. NULL on failure (errno set). */
struct relay_set *relay_set_create(uint32_t max, relay_adopt_fn *adopt, void *arg);
/* Closes every socket and resets every connection still relayed. Accepts NULL. */
void relay_set_destroy(struct relay_set *rs);

/* The utcp callbacks of the owning backend pass on what concerns relayed
 * connections: a connection accepted on the service's listener (whose
 * listener user is <rs>), its events and its in-order payload (the
 * stack's receive hook: bytes taken straight from the packet, 0 to let
 * them queue). */
void relay_accepted(struct relay_set *rs, struct utcp_conn *uc);
void relay_event(struct relay_set *rs, struct utcp_conn *uc, enum utcp_event ev);
size_t relay_recv(struct relay_set *rs, struct utcp_conn *uc, const void *data, size_t len);
/* Whether <user> (a utcp_conn_user value) is one of this set's relays. */
bool relay_owns(const struct relay_set *rs, const void *user);

/* Moves what the sockets have become ready for since the last call; never
 * blocks. Call every loop turn while relay_count() > 0. */
void relay_poll(struct relay_set *rs);
/* The epoll descriptor: readable when relay_poll has work (to sleep on). */
int relay_fd(const struct relay_set *rs);
uint32_t relay_count(const struct relay_set *rs);
const uint64_t *relay_stats(const struct relay_set *rs);	/* RELAY_STAT__COUNT */

#endif
