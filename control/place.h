/* Placement of users over the array's live nodes (array.c keeps the
 * table; the lcores decide with it).
 *
 * The array thread rewrites the table from etcd's node keys each turn
 * (place_fill); the lcores read it under a sequence count (place_decide),
 * never a lock on an lcore. */
#ifndef PARLEY_PLACE_H
#define PARLEY_PLACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/peerlink.h"
#include "dataplane/session/placement.h"

struct etcd_kvs;

#define PLACE_MAX		64	/* nodes placement considers */
#define PLACE_STALE_MS		3000	/* an older table is not acted on */
#define PLACE_SLACK_MIN		5	/* a node is overloaded above min + slack: */
#define PLACE_SLACK_PCT		10	/* slack = max(SLACK_MIN, min * SLACK_PCT / 100) */

/* A node as placement sees it. */
struct place_node {
	uint32_t	node_id;
	uint32_t	conns;
	double		busy;		/* mean of its lcores' busy fractions */
	int64_t		lease;		/* its node key's lease */
	bool		draining;
	char		sip[PLACEMENT_WHERE_MAX];
	char		peer[PEERLINK_ADDR_MAX];
	char		web[256];	/* its Web service's serveruri, or "" */
	char		pin[128];	/* the key of its Web certificate */
};

/* The live nodes, written by the array thread each turn and read by the
 * lcores (decide) under a sequence count: never a lock on an lcore. */
struct place_tab {
	_Atomic uint32_t	seq;		/* odd while the thread writes */
	bool			valid;		/* read from etcd, and we are in the array */
	uint64_t		refreshed_ms;	/* CLOCK_MONOTONIC */
	uint32_t		n;
	struct place_node	v[PLACE_MAX];
	/* Clients this node placed on v[i] since the table was read: the
	 * loads in etcd are up to a second old, and a burst of registrations
	 * must not all go where the load was lowest a second ago. */
	_Atomic uint32_t	placed[PLACE_MAX];
};

/* Array thread: <t> from the node keys in <kvs> (values as array.c
 * publishes them), read at <now_ms> (CLOCK_MONOTONIC); <kvs> NULL: etcd or
 * our membership is missing, the table is not to be acted on. */
void place_fill(struct place_tab *t, const struct etcd_kvs *kvs, uint64_t now_ms);

/* Any thread (the lcores): the node user <aor> belongs on. Among the live
 * nodes that are not draining and not overloaded (conns above the
 * least-loaded's by more than the slack), the one with the highest hash of
 * (user, node): rendezvous hashing, so a user keeps landing on the same
 * node while it stays live and not overloaded, and users spread evenly
 * over the nodes that qualify. False (serve here) when that is <self>, or
 * when the table is missing or older than PLACE_STALE_MS at <now_ms>
 * (etcd lost: never redirect on old news); else true with its SIP address
 * in <where>. */
bool place_decide(struct place_tab *t, uint32_t self, const char *aor, uint64_t now_ms,
		  char *where, size_t cap);

#endif
