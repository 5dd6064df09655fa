/* Inside the node array: what array.c (membership, the node's record,
 * peer links, placement, start and stop) and array_homes.c (the lease
 * guard, when this node may home rooms, the room-homes turn) share. Only
 * control/array*.c include this. Fields belong to the array thread unless
 * their comment or _Atomic says otherwise. */
#ifndef PARLEY_ARRAY_INT_H
#define PARLEY_ARRAY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "control/array.h"
#include "control/place.h"

#define ARRAY_PUBLISH_MS	1000	/* the node key is rewritten this often */
#define ARRAY_KEY_MAX		512
#define ARRAY_SECRET_LEN	32	/* bytes of <prefix>/secret */

struct engine;
struct etcd;
struct homes;
struct lcore_load;
struct peerlink;

struct array {
	struct array_config	conf;	/* strings point into the copies below */
	char			*etcd_list, *prefix, *advertise_sip, *peer_listen;
	char			*web_url, *web_cert;
	uint8_t			secret[ARRAY_SECRET_LEN];	/* the array's (etcd) */
	char			key[ARRAY_KEY_MAX];	/* <prefix>/nodes/<id> */
	struct engine		*e;
	struct etcd		*sess;		/* the thread's */
	struct etcd		*query;		/* array_nodes()'s, under qlock */
	struct peerlink	*peers;		/* peer links, or NULL without peer_listen */
	bool			members_bad;	/* last member list refused (logged) */
	uint32_t		members[PLACE_MAX];	/* the peer links' last member ids */
	unsigned		nmembers;
	pthread_mutex_t		qlock;
	int64_t			lease;		/* 0 while this node holds none */
	bool			refused;	/* rejoining: our id is taken (logged once) */
	uint64_t		started_ms;
	uint32_t		nlcores;
	struct lcore_load	*load;
	struct place_tab	place;		/* for the lcores' placement decisions */

	int			stop_fd;	/* eventfd: array_stop wakes the thread */
	int			kick_fd;	/* eventfd: array_kick, publish now */
	pthread_t		thread;
	pthread_t		guard;		/* array_guard_thread */
	bool			guard_off;	/* not started */
	bool			running;

	/* Read by array_nodes() on the control thread. */
	_Atomic bool		lost;		/* etcd does not answer now */
	_Atomic bool		registered;	/* the node key is ours */
	_Atomic int64_t		lease_pub;	/* <lease>, for array_nodes() */
	_Atomic uint64_t	lost_count;	/* times etcd was lost */
	_Atomic uint64_t	errors;		/* failed etcd requests */

	struct homes		*homes;		/* room homes (homes.h) */
	/* CLOCK_MONOTONIC ms until which this node's lease is surely valid:
	 * the send time of the last successful grant or keepalive + TTL. */
	_Atomic uint64_t	lease_until_ms;
	_Atomic(array_republish_fn *) republish;	/* homes changed (array_set_republish) */
	void *_Atomic		republish_arg;
};

/* The time of clock <id> in ns. Any thread. */
static inline uint64_t
array_now_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The guard thread (parley-lease; pthread start routine, <arg> the array):
 * stops this node homing rooms as soon as its lease may have run out,
 * until <a->stop_fd> is readable. Started and joined by array.c. */
void *array_guard_thread(void *arg);

/* Array thread, once a turn after the placement table: room homes read,
 * what this node wins claimed, the room table republished when they
 * changed (homes.h). */
void array_homes_step(struct array *a);

#endif
