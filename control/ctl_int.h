/* Inside the control socket: the state shared by ctl.c (socket, dispatch),
 * ctl_stats.c, ctl_rooms.c, ctl_admin.c and ctl_tel.c. Not for other
 * folders: they see ctl.h.
 *
 * Threads: commands run on the control thread, one at a time. The DPDK
 * telemetry callbacks run on telemetry's threads and use only what `lock`
 * guards plus the engine's any-thread readers. */
#ifndef PARLEY_CTL_INT_H
#define PARLEY_CTL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "control/ctl.h"
#include "control/ctl_req.h"

struct catalog_room;
struct catalog_sync;
struct invite;
struct roomtab;

/* Per-lcore bookkeeping for the CPU load figures. */
struct ctl_lcore {
	bool		have_clock;
	clockid_t	clock;		/* the lcore thread's CPU clock */
};

struct ctl {
	struct ctl_config	conf;		/* strings point into the copies below */
	char			*path, *htdigest, *realm, *domain;
	struct engine		*e;
	struct db		*db;
	int			lfd;		/* listening socket */
	int			stop_fd;	/* eventfd: ctl_stop wakes the thread */
	pthread_t		thread;
	bool			running;
	uint64_t		started_ms;	/* CLOCK_REALTIME */
	uint64_t		started_mono_ms;
	uint64_t		ntc_envid;

	/* Guards rooms, exporter use and lcores[] against the telemetry
	 * threads; the control thread is the only writer of rooms. */
	pthread_mutex_t		lock;
	struct roomtab		*rooms;		/* the table last published */
	struct export		*exporter;	/* may be NULL */
	struct array		*array;		/* NULL: a standalone node */
	/* The array's catalog (catalog_sync.h), set once caught up; held
	 * by a catalog command for its whole run (synclock), so that
	 * catalog_sync_stop waits for it. */
	struct catalog_sync	*sync;
	pthread_mutex_t		synclock;
	/* Serialises building and publishing room tables: the control
	 * thread (catalog commands) and the array thread (homes moved). */
	pthread_mutex_t		publock;
	uint32_t		nlcores;
	struct ctl_lcore	*lcores;
};

/* How long a command waits for one lcore (engine_lcore_call). */
#define CTL_LCORE_TIMEOUT_MS	200

/* A command: 0 with a new reference in *<out>, or -1 with a reason in
 * <err> (what the operator should check or change). */
typedef int ctl_cmd_fn(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
		       size_t errlen);

/* ctl_stats.c */
ctl_cmd_fn ctl_stats_all;
ctl_cmd_fn ctl_stats_conns;
/* Process memory as {"rss_bytes":..,"rss_peak_bytes":..,"mempools":[..]}. */
json_t *ctl_stats_memory_json(void);
/* CPU time of lcore <idx> in ns since its start; false when unknown. */
bool ctl_stats_lcore_cpu_ns(struct ctl *c, uint32_t idx, uint64_t *ns);

/* ctl_rooms.c */
ctl_cmd_fn ctl_rooms_list;
ctl_cmd_fn ctl_rooms_show;
ctl_cmd_fn ctl_rooms_create;
ctl_cmd_fn ctl_rooms_set;
ctl_cmd_fn ctl_rooms_del;
/* Adds or removes a member or manager; a->op is one of enum ctl_rooms_set_op. */
enum ctl_rooms_set_op { CTL_MEMBER_ADD, CTL_MEMBER_DEL, CTL_MANAGER_ADD, CTL_MANAGER_DEL };
ctl_cmd_fn ctl_rooms_set_change;
ctl_cmd_fn ctl_rooms_invite;
/* The catalog or the homes changed: every lcore switches to a table built
 * from the catalog now (with the homes, in an array) before this returns
 * (at most CTL_LCORE_TIMEOUT_MS per lcore). 0, or -1 with a reason in
 * <err>. Any thread. */
int ctl_rooms_publish(struct ctl *c, char *err, size_t errlen);
/* The same; without <settle> it returns without waiting for the lcores
 * (before they run: they take the table when they start). */
int ctl_rooms_publish_at(struct ctl *c, bool settle, char *err, size_t errlen);
/* Ends the presence of whoever room <r> no longer admits (or everyone,
 * with <all>); how many presences ended. Any thread. */
int ctl_rooms_evict(struct ctl *c, const struct catalog_room *r, bool all);
/* Shows invitation <inv> of <user> (sip:..) to room <r> to the user's
 * dialogs on this node (not when the room is secret to the user); how
 * many were told. <missed> (may be NULL): lcores that did not answer. */
int ctl_rooms_invite_notify(struct ctl *c, const struct catalog_room *r, const char *user,
			    const struct invite *inv, uint32_t *missed);
/* Builds the first room table from the catalog (ctl_start). 0 or -errno. */
int ctl_rooms_init(struct ctl *c);
void ctl_rooms_fini(struct ctl *c);

/* ctl_admin.c */
/* Adds a user, sets a password or removes a user; a->op is one of enum
 * ctl_admin_user_op. */
enum ctl_admin_user_op { CTL_USER_ADD, CTL_USER_PASSWD, CTL_USER_DEL };
ctl_cmd_fn ctl_admin_user_change;
ctl_cmd_fn ctl_admin_drain;
/* A user name from the operator ("sip:Bob", "bob", "bob@example.com"; a
 * bare name gets this node's domain) into <out>: "bob@example.com" as the
 * htdigest file has it, or with <sip> "sip:bob@example.com" as rooms store
 * it. False, with a reason in <err>, for what cannot be a SIP address or
 * does not fit <cap>. */
bool ctl_admin_user_norm(const struct ctl *c, const char *in, bool sip, char *out, size_t cap,
			 char *err, size_t errlen);
ctl_cmd_fn ctl_admin_reload;
/* Loads the htdigest file and makes every lcore use it (with <settle>,
 * before it returns; without, before the lcores run). 0 or -1 with a
 * reason. Any thread. */
int ctl_admin_users_reload(struct ctl *c, bool settle, char *err, size_t errlen);
ctl_cmd_fn ctl_admin_loglevel;

/* ctl_array.c */
ctl_cmd_fn ctl_array_show;

/* ctl_tel.c: the read-only /parley/... commands on DPDK's telemetry
 * socket. register: once per process (later calls only switch the ctl
 * they read); unregister: they answer null from then on. */
void ctl_tel_register(struct ctl *c);
void ctl_tel_unregister(void);

#endif
