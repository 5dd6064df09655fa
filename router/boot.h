/* parleyd's boot as a table of steps, each a {start, stop} pair: the
 * signalfd, the data directory and credentials, storage, DPDK's EAL, the
 * compliance exporter, the engine, the control socket, the Prometheus
 * endpoint, the Web service, the lcores and systemd's READY=1. boot_start() runs the starts in order; when step k fails
 * (having undone its own part), the stops of k-1..0 run in reverse.
 * boot_stop() runs every stop in reverse, so the last to start is the first
 * to stop. Adding a step is one row in boot.c's table and its two functions.
 *
 * Boot thread only. */
#ifndef PARLEY_BOOT_H
#define PARLEY_BOOT_H

#include <stdbool.h>

#include "router/config.h"

struct array;
struct cmark;

struct boot {
	struct config conf;		/* read-only once the lcores run */
	int sfd;			/* signalfd: SIGINT, SIGTERM, SIGHUP */
	struct tlsterm_ctx *tls;	/* until the engine takes its own reference */
	struct htdigest *users;		/* likewise */
	struct roomtab *rooms;		/* likewise */
	struct db *db;
	struct export *exporter;
	struct cmark *cmark;		/* [array]: the rooms' export marks in etcd */
	struct engine *engine;
	struct ctl *ctl;		/* the control socket */
	struct metrics *metrics;	/* the Prometheus endpoint, or NULL */
	struct ftoken_store *ftokens;	/* the Web service's tokens, issued by Channel */
	struct web *web;		/* the HTTPS file service, or NULL */
	struct array *array;		/* the node array's etcd session, or NULL */
	bool served;			/* the lcores ran */
	unsigned int nstarted;		/* steps started, for boot_stop */
};

/* Starts every step with <b>->conf filled and finished. 0, or -1 (logged,
 * and what started is stopped again). */
int boot_start(struct boot *b);

/* Stops what boot_start started, in reverse; after the lcores were told to
 * drain (engine_drain). */
void boot_stop(struct boot *b);

/* SIGHUP and the control socket's reload: the certificate and the htdigest
 * file again; a file that fails to load keeps the running one. */
void boot_reload(struct boot *b);

/* Tells the engine how far the compliance exporter got, for its cap on
 * posts. Nothing without an exporter. */
void boot_update_compliance(struct boot *b);

/* The systemd watchdog's health check: true when every engine lcore ran a
 * no-op call between two loop turns within <timeout_ms> (an lcore whose
 * loop returned after a drain counts as alive). */
bool boot_lcores_alive(struct boot *b, int timeout_ms);

#endif
