/* The control socket: a Unix socket per node ([control] socket) that
 * parleyctl, scripts and monitoring talk to, in JSON.
 *
 * Protocol (the shape of DPDK telemetry v2, over a stream socket): on
 * connect the server sends one line
 *	{"version":"parley 0.1.0","pid":1234,"max_output_len":67108864}
 * then answers each request line
 *	/parley/<command>[,<params>]
 * with one line holding one JSON object whose only key is the command:
 *	{"/parley/stats":{...}}
 * or, on failure, the command mapped to null and a reason:
 *	{"/parley/room":null,"error":"no room named \"Attic\""}
 * <params> is a JSON object ({"room":"Lobby","user":"sip:bob@example.com"})
 * or a plain string, which stands for the command's main argument. "/"
 * lists the commands, "/help,<command>" describes one, "/info" repeats the
 * greeting. Lines end with "\n"; a request line holds at most
 * CTL_REQUEST_MAX bytes.
 *
 * Why not DPDK's telemetry socket itself (DPDK 22.11): its path is fixed
 * (<runtime dir>/dpdk_telemetry.v2) and its permissions are whatever the
 * umask gives, with no owner or group to configure; a reply is cut at 16 KB
 * and arrays at 512 entries without telling the client (a connection list
 * does not fit); string values are cut at 128 bytes; a failed command can
 * only answer null, with no reason. So the control socket is our own, and
 * DPDK's socket gets read-only /parley/... summaries (ctl_tel.c) so that
 * the stock dpdk-telemetry.py still shows the node's counters.
 *
 * Reading statistics never stalls the data plane: counters are relaxed
 * atomic loads, and per-lcore state (connection lists, rosters) is copied
 * by the lcore itself between loop turns (engine_lcore_call), with a short
 * timeout. The socket runs on its own thread, one request at a time. */
#ifndef PARLEY_CTL_H
#define PARLEY_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ctl;
struct engine;
struct db;
struct export;
struct array;

#define CTL_REQUEST_MAX		65536
#define CTL_OUTPUT_MAX		(64u << 20)

/* What reload (SIGHUP, or the reload command) did. */
struct ctl_reload_result {
	bool	tls;		/* the certificate was reloaded */
	bool	users;		/* the htdigest file was reloaded */
	size_t	nusers;
};
/* Boot code's reload: reloads the certificate and the user table into the
 * engine and reports what it did. Called on the control thread. */
typedef void ctl_reload_fn(void *arg, struct ctl_reload_result *res);

struct ctl_config {
	const char	*socket_path;
	mode_t		mode;		/* 0660 */
	uid_t		uid;		/* (uid_t)-1: keep the process's */
	gid_t		gid;		/* (gid_t)-1: keep the process's */
	const char	*htdigest;	/* the user table parleyctl user edits */
	const char	*realm;
	const char	*domain;
	uint32_t	node_id;
	ctl_reload_fn	*reload;
	void		*reload_arg;
};

/* Boot thread, after engine_create(). Binds the socket (a stale socket file
 * nobody answers on is replaced; one that answers is another server, and
 * an error), applies mode and owner, registers the telemetry commands and
 * starts the thread. <e> and <db> must outlive the ctl. NULL with a message
 * in <err> on failure. */
struct ctl *ctl_start(const struct ctl_config *cfg, struct engine *e, struct db *db, char *err,
		      size_t errlen);

/* Boot thread, before engine_destroy(): closes the socket, removes its
 * file, joins the thread; the telemetry commands answer null from then on.
 * Accepts NULL. */
void ctl_stop(struct ctl *c);

/* The compliance exporter whose lag stats reports (export_status), or NULL
 * for none (stats then says "exporter":{"enabled":false}). Any thread; the
 * exporter must stay alive until this is called again with NULL or
 * ctl_stop(). */
void ctl_set_exporter(struct ctl *c, struct export *x);

/* The node array session (array.h) that the array command reads, or NULL
 * for a standalone node (array then answers an error saying so). Boot
 * thread; <a> must stay alive until this is called again with NULL or
 * ctl_stop(). */
void ctl_set_array(struct ctl *c, struct array *a);

#endif
