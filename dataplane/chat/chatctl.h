/* What the control socket (control/ctl*.c) reads from and asks of the
 * lcores, beyond engine.h: per-lcore snapshots taken on the lcore itself
 * through engine_lcore_call(), so no lock is ever taken on the data path.
 *
 * Every function here is for a control thread (never an lcore) and waits at
 * most <timeout_ms> per lcore it visits. A stopped lcore (its loop returned
 * after a drain) answers -ENODEV; a busy one that did not reach the end of
 * its loop turn in time answers -ETIMEDOUT. Snapshot buffers are allocated
 * by the caller: the lcore only copies into them. */
#ifndef PARLEY_CHATCTL_H
#define PARLEY_CHATCTL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/catalog.h"

struct engine;

/* Connection states as the control socket names them (enum conn_state). */
enum chatctl_conn_state {
	CHATCTL_CONN_HANDSHAKE,
	CHATCTL_CONN_OPEN,
	CHATCTL_CONN_CLOSING,
	CHATCTL_CONN_DEAD,
	CHATCTL_CONN__COUNT,
};

/* "handshake", "open", "closing", "dead"; "?" past the last. */
const char *chatctl_conn_state_name(unsigned int st);

/* One lcore at one instant. */
struct chatctl_lcore_snap {
	uint32_t	nconns;
	uint32_t	by_state[CHATCTL_CONN__COUNT];
	uint32_t	registered;		/* connections with an authenticated AOR */
	uint32_t	dialogs;		/* INVITE dialogs (Lookup and Channel) */
	uint32_t	channel_dialogs;
	uint32_t	room_presences;		/* (channel dialog, room) pairs */
	uint32_t	staged;			/* messages waiting for a full ring */
	bool		draining;
	bool		listening;		/* its listener is open */
	pthread_t	thread;			/* the lcore's thread, for its CPU clock */
};

/* 0 with <s> filled, or -ENODEV / -ETIMEDOUT. */
int chatctl_lcore_snap(struct engine *e, uint32_t idx, struct chatctl_lcore_snap *s,
			  int timeout_ms);

#define CHATCTL_AOR_MAX	128
#define CHATCTL_PEER_MAX	64

/* One connection. */
struct chatctl_conn_snap {
	uint64_t	id;
	uint32_t	lcore;
	uint8_t		state;			/* enum chatctl_conn_state */
	bool		registered;		/* REGISTER succeeded and has not expired */
	char		peer[CHATCTL_PEER_MAX];	/* "192.0.2.1:5061", "[2001:db8::1]:5061" */
	char		aor[CHATCTL_AOR_MAX];	/* "" before REGISTER */
	uint64_t	age_s;
	uint64_t	idle_s;
	uint32_t	dialogs;
	uint32_t	rooms;			/* rooms its channel dialogs are present in */
};

/* Copies up to <n> connections of lcore <idx> into <v>, newest first,
 * starting below connection id *<cursor> (0: from the newest); advances
 * *<cursor>. Connections are listed newest first and keep their id, so
 * paging this way never shows one twice. The count copied (>= 0; fewer
 * than <n> means the end), or -ENODEV / -ETIMEDOUT. */
int chatctl_conns(struct engine *e, uint32_t idx, uint64_t *cursor, struct chatctl_conn_snap *v,
		     uint32_t n, int timeout_ms);

/* One presence in a room's roster. */
struct chatctl_member_snap {
	char		uri[160];
	uint32_t	lcore;
	bool		manager;
};

/* The present members of room <raw> as its home lcore <home> keeps them:
 * up to <n> into <v>; *<total> gets how many there are (call again with a
 * larger buffer when it is above <n>). 0, or -ENODEV / -ETIMEDOUT. */
int chatctl_roster(struct engine *e, uint32_t home, const uint8_t raw[CATALOG_ID_RAW],
		      struct chatctl_member_snap *v, uint32_t n, uint32_t *total, int timeout_ms);

/* Members present in room <raw> (the shared count). Any thread. */
uint32_t chatctl_present_count(const struct engine *e, const uint8_t raw[CATALOG_ID_RAW]);

/* Sends the XCCOS document <doc> on every Channel dialog of user <aor>, on
 * every lcore (channel_notice_user). How many dialogs got it (>= 0); lcores
 * that could not be reached are counted in *<missed> (may be NULL). */
int chatctl_notice_user(struct engine *e, const char *aor, const char *doc, size_t len,
			   uint32_t *missed, int timeout_ms);

/* Ends the presence in room <raw> of the Channel dialogs, on every lcore,
 * whose user may no longer join it by the lcore's current room table (a
 * room missing from the table admits nobody), or of every dialog when
 * <all>: as a cmd:part does, the home tells the others (ntc:part), and the
 * dialog itself gets an ntc:part naming its own user (when the room is
 * still in the table) so that its client stops showing the room. Call it
 * after chatctl_settle() so that every lcore judges by the new table.
 * How many presences ended (>= 0); unreachable lcores in *<missed>. */
int chatctl_evict(struct engine *e, const uint8_t raw[CATALOG_ID_RAW], bool all,
		     uint32_t *missed, int timeout_ms);

/* Makes what engine_reload(), engine_snapshot_publish() and
 * engine_set_accepting() handed the lcores take effect on every running
 * lcore before returning, rather than at their next loop turn: once this
 * returns 0, a login sees the new user table, a command the new room table,
 * and a closed listener refuses connections. 0, or the first -ETIMEDOUT
 * (lcores that stopped are skipped). */
int chatctl_settle(struct engine *e, int timeout_ms);

/* Entries waiting in the ring from lcore <src> to lcore <dst>, and the
 * capacity of one ring. Any thread (a relaxed snapshot). */
uint32_t chatctl_ring_count(const struct engine *e, uint32_t src, uint32_t dst);
uint32_t chatctl_ring_size(const struct engine *e);

#endif
