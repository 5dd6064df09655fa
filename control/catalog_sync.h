/* One catalog for the node array: rooms (members, managers, properties),
 * users and invitations live in etcd, and every node applies every change
 * to its local copy (RocksDB's catalog family, prefs' invitations, the
 * htdigest file) before the command that made it returns.
 *
 * Keys, under the array's prefix P:
 *	P/catalog/rooms/<room id>		the room (catalog_encode's JSON)
 *	P/catalog/names/<name, lower-case>	its id: a name is one room's
 *						array-wide (written with the room)
 *	P/catalog/users/<user@domain>		{"v":1,"user":..,"realm":..,"lines":..}
 *	P/catalog/invites/<sip:user>/<room id>	{"v":1,"author":..,"ts":..}
 *	P/catalog/init				who seeded the catalog, and when
 *	P/acks/<node_id>			{"node_id":..,"revision":R}, under the
 *						node's lease: it applied every change
 *						up to revision R
 *
 * A change (the control socket's room, user and invite commands, on any
 * node): read the record from etcd, change it, write it back only if its
 * mod_revision is still the one read (a transaction; a concurrent change on
 * another node makes this one read again and redo, up to a few times),
 * then wait until every live node (P/nodes/) acknowledges the revision
 * written, at most [array] catalog_timeout_ms; past that the answer names
 * the nodes that did not confirm (the change is stored, and they apply it
 * when they catch up).
 *
 * Applying (the parley-catalog thread, on every node, the writer's too): a
 * watch of P/catalog/ from the last revision applied; each change goes to
 * the local copy, the room table is republished (ctl_rooms_publish), those
 * a room no longer admits leave it, an invitation is shown to the invited
 * user's dialogs on this node; then P/acks/<id> says the revision. A lost
 * watch is opened again from the next revision; while it cannot be, the
 * thread reads the whole catalog each second (polling); a compacted
 * revision makes it read the whole catalog once. A record that is over
 * [array] catalog_record_max bytes or does not decode is logged, counted
 * and skipped.
 *
 * At start (catalog_sync_start, before the lcores serve): the first node of
 * a fresh array (it creates P/catalog/init) writes its local catalog and
 * users into etcd; every node then reads the whole catalog at a revision R,
 * makes its local copy equal to it (what it changed is logged: a node's own
 * rooms and users give way to the array's) and watches from R + 1.
 * Invitations already stored on the first node stay local (they are not
 * seeded).
 *
 * Threads: start and stop on the boot thread; the change functions on the
 * control thread (one at a time); the rest on the catalog thread. */
#ifndef PARLEY_CATALOG_SYNC_H
#define PARLEY_CATALOG_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct ctl;
struct catalog_room;
struct catalog_sync;
struct invite;

struct catalog_sync_config {
	const char	*etcd;		/* endpoints */
	const char	*prefix;	/* the array's, no trailing slash */
	uint32_t	node_id;
	uint32_t	timeout_ms;	/* one etcd request */
	uint32_t	wait_ms;	/* a change waits this long for every node */
	uint32_t	record_max;	/* larger records are skipped */
};

/* Boot thread, after ctl_set_array() and before the lcores serve: seeds
 * (first node) or catches up with etcd's catalog, then starts the thread;
 * the control socket's catalog commands go through etcd from then on. 0,
 * or -1 with the reason in <err> (the node must not serve). */
int catalog_sync_start(struct ctl *c, const struct catalog_sync_config *cfg, char *err,
		       size_t errlen);
/* Boot thread, before ctl_set_array(c, NULL): stops the thread. Accepts a
 * ctl without one. */
void catalog_sync_stop(struct ctl *c);

/* Control thread, before a catalog command: 1 with the node's catalog
 * in *<s>, held until catalog_sync_release(<c>) (stop waits for it); 0 on
 * a standalone node (*<s> NULL: change the local catalog as ever); -1
 * with the reason in <err> for a node of an array that has not caught up
 * with the array's catalog yet (or no longer runs it). */
int catalog_sync_hold(struct ctl *c, struct catalog_sync **s, char *err, size_t errlen);
void catalog_sync_release(struct ctl *c);

/* What a change did. */
struct catalog_sync_done {
	int64_t		revision;	/* etcd's revision of the change */
	uint32_t	nodes;		/* live nodes that confirmed it */
	int		evicted;	/* presences it ended on this node */
	int		notified;	/* dialogs shown an invitation on this node */
};

/* Changes room *<r> (NULL: etcd has no such room) in place; *<r> = NULL
 * deletes the room, a room where there was none creates it. 0, or -1 with
 * a reason in <err> (nothing is written). May run more than once. */
typedef int catalog_sync_room_fn(void *arg, struct catalog_room **r, char *err, size_t errlen);

/* Control thread: the read-modify-write of room <id> (above), and the wait
 * for every node. 0, or -1 with the reason in <err>. */
int catalog_sync_room(struct catalog_sync *s, const char *id, catalog_sync_room_fn *fn,
		      void *arg, struct catalog_sync_done *done, char *err, size_t errlen);

enum catalog_sync_user_op { CATALOG_SYNC_USER_ADD, CATALOG_SYNC_USER_PASSWD,
			    CATALOG_SYNC_USER_DEL };
/* Control thread: adds user <user> (user@domain) of <realm> with
 * <password>, sets the password, or removes the user, array-wide. */
int catalog_sync_user(struct catalog_sync *s, const char *user, const char *realm,
		      enum catalog_sync_user_op op, const char *password,
		      struct catalog_sync_done *done, char *err, size_t errlen);

/* Control thread: invites <user> (sip:user@domain) as <inv> says. */
int catalog_sync_invite(struct catalog_sync *s, const char *user, const struct invite *inv,
			struct catalog_sync_done *done, char *err, size_t errlen);

/* Control thread: this node's applied revision and counters into <o> as
 * "catalog", with each node's applied revision ("nodes":{"<node_id>":R,
 * ...}) when <ask> (etcd answered just now; else "nodes" is null). */
void catalog_sync_show(struct catalog_sync *s, json_t *o, bool ask);

#endif
