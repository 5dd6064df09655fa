/* Files across the nodes of an array (issue: "history and file tokens work
 * from any node"). A file lives on the node it was uploaded to; a member on
 * another node gets a download token from its own node, whose Web service
 * serves the file: when it is not stored here, the Web service fetches it
 * from the node that stores it, keeps the copy (checked against the size
 * and SHA-256 the storing node recorded) and serves it as its own.
 *
 * Node to node, over the Web services' HTTPS ports:
 *	GET <prefix><room>/<name>
 *	X-Parley-Peer: <node id>.<expiry, Unix s>.<hex HMAC-SHA256>
 * where the HMAC, keyed with the array's shared secret (from etcd), covers
 * "<node id>.<expiry>.<room>/<name>". The storing node answers 200 with the
 * file and its record in X-Parley-SHA256, X-Parley-Size, X-Parley-Uploader,
 * X-Parley-Ts and X-Parley-Name headers, or 404; it logs no FILEDOWNLOAD
 * (the member's download is logged by the node that serves the member). The
 * fetching node checks the peer's certificate by the public key that peer
 * publishes in its etcd record (curl's pinned public key), not by a CA.
 *
 * The fetch runs on a thread of its own (libcurl, blocking): the Web
 * thread never waits; the request waiting for it resumes when it is done. */
#ifndef PARLEY_WEBFETCH_H
#define PARLEY_WEBFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct web;
struct wconn;

#define WEBFETCH_SECRET_MAX	64
#define WEBFETCH_SKEW_S		300	/* an expiry further ahead is refused */

/* web.c: set up with the service (a pipe and an event on its base), torn
 * down with it. 0 or -errno. */
int webfetch_init(struct web *w);
void webfetch_fini(struct web *w);

/* Web thread, on a GET for a file not stored here: queues the fetch of
 * c->room / c->name and parks <c> (WC_FETCH) until webfile_fetched(). 0;
 * -ENOTSUP outside an array; -EBUSY when too many fetches wait. */
int webfetch_submit(struct wconn *c);

/* Fetches in flight (Web thread). */
unsigned webfetch_inflight(const struct web *w);

/* The storing node's side: <value> (an X-Parley-Peer header) authorises a
 * fetch of <room>/<name> now. False outside an array. Web thread. */
bool webfetch_peer_ok(struct web *w, const char *value, const char *room, const char *name);

#endif
