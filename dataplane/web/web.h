/* The Web service: HTTPS upload and download of files posted to rooms
 * (xccos.md §e, option A), with tokens that the Channel service issues over
 * XCCOS (ftoken.h).
 *
 *   PUT <url path><room-id>/<name>?token=T   the body becomes the file: 201
 *   GET <url path><room-id>/<name>?token=T   the file, or one byte range: 200/206
 *
 * One thread with one libevent event base serves every connection: TLS by
 * OpenSSL bufferevents, HTTP/1.1 by our own strict parser (http1.h), since
 * libevent 2.1's evhttp reads a whole request body into memory before its
 * handler runs. Upload bodies stream to a temp file beside the final one
 * (bounded by a read watermark), downloads stream from the file in chunks
 * (bounded by a write watermark): a file is never held in memory.
 *
 * Durability: an upload answers 201 only after the file is fsynced under its
 * final name <files_dir>/<room-id>/<name>, its record is in the files family
 * and its FILEUPLOAD event is durable; a download sends its first byte only
 * after its FILEDOWNLOAD event is durable. Any failure before that removes
 * the temp file (and the record and the file), so nothing is visible.
 *
 * Threads: web_create/web_start/web_stop/web_destroy on the boot thread;
 * web_reload and web_stats from any thread. The service is the single
 * producer of the storage producer it is given. */
#ifndef PARLEY_WEB_H
#define PARLEY_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct commit_producer;
struct ftoken_store;
struct web;

struct web_config {
	const char	*listen;		/* "host:port" / "[v6]:port" */
	bool		no_listener;		/* connections come only from web_adopt
						 * (the dpdk backend's TCP); <listen>
						 * names them in logs */
	const char	*url;			/* serveruri: "https://host:port/filestore/" */
	const char	*files_dir;		/* <files_dir>/<room-id>/<name>; created if missing */
	const char	*cert_file;		/* PEM chain, as [tls] */
	const char	*key_file;
	const char	*ciphers;		/* TLS 1.2 list; NULL: the SIP side's default */
	uint64_t	max_upload_bytes;	/* larger bodies: 413 */
	uint32_t	max_header_bytes;	/* request line + headers; more: 431 */
	uint32_t	max_headers;		/* header lines; more: 431 */
	uint32_t	max_conns;		/* open connections; more are closed at accept */
	uint32_t	header_timeout_s;	/* TLS handshake + a whole request head */
	uint32_t	read_timeout_s;		/* no body bytes for this long: abort */
	uint32_t	write_timeout_s;	/* no output progress for this long: abort */
	uint32_t	keepalive_timeout_s;	/* idle between requests */
	uint32_t	keepalive_requests;	/* requests per connection */
	uint32_t	drain_timeout_s;	/* web_stop lets transfers finish this long */
};

struct web_stats {
	uint64_t	conns_accepted;
	uint64_t	conns_refused;		/* over max_conns */
	uint64_t	conns_open;
	uint64_t	requests;
	uint64_t	uploads;		/* 201 */
	uint64_t	downloads;		/* 200/206 started */
	uint64_t	uploads_aborted;	/* cut off, timed out or failed */
	uint64_t	denied;			/* 403 */
	uint64_t	errors_4xx;		/* other 4xx */
	uint64_t	errors_5xx;
	uint64_t	bytes_in;		/* upload body bytes stored */
	uint64_t	bytes_out;		/* file bytes sent */
};

/* The serveruri: <url> when it is set (non-empty), else the default for
 * <listen>, "https://<listen>/filestore/" (an IPv6 host stays in
 * brackets). 0, or -ENAMETOOLONG. */
int web_url_pick(const char *url, const char *listen, char *out, size_t cap);

/* Binds the listener, loads the certificate, opens <files_dir> (creating it
 * and removing temp files that a crash left in its room folders). Borrows
 * <tokens>, <db> and <prod>, which must outlive the service. NULL with a
 * sentence in <err> and *rc = -EADDRINUSE (the address is taken: the node
 * may run on without the service), -EINVAL (configuration) or -errno. */
struct web *web_create(const struct web_config *cfg, struct ftoken_store *tokens, struct db *db,
		       struct commit_producer *prod, int *rc, char *err, size_t errlen);

/* Starts the thread. 0 or -errno of pthread_create. */
int web_start(struct web *w);

/* Any thread (an lcore of the dpdk backend): serve <fd>, a connected
 * non-blocking stream socket that carries a client's TCP connection, as if
 * it had been accepted. 0 (the service owns <fd>), -ESHUTDOWN (stopping) or
 * -errno (the caller still owns <fd>). */
int web_adopt(struct web *w, int fd);

/* Any thread: new connections use the certificate and key reloaded from
 * their files (as SIGHUP does for SIP); live ones keep theirs. A load
 * failure keeps the running one (logged). */
void web_reload(struct web *w);

/* Stops accepting, lets requests in progress finish for up to
 * drain_timeout_s (a transfer still running then is cut: an upload is
 * removed), waits for storage completions, closes everything and joins the
 * thread. Must come before the storage thread stops. Accepts NULL;
 * idempotent. */
void web_stop(struct web *w);
/* The same without waiting: the drain starts now, alongside the data
 * plane's (whose relayed Web connections must end first). Accepts NULL. */
void web_begin_stop(struct web *w);

/* Stops if needed and frees. Accepts NULL. */
void web_destroy(struct web *w);

/* ---- in an array (webfetch.h) ---- */

/* Another node's Web service, as the array publishes it. */
struct web_peer {
	uint32_t	node_id;
	char		url[256];	/* its serveruri, "https://host:port/filestore/" */
	char		pin[128];	/* its certificate's key: "sha256//<base64>" */
};

/* Fills up to <max> live nodes into <out>; how many. Called on the fetch
 * thread. */
typedef unsigned web_peers_fn(void *arg, struct web_peer *out, unsigned max);

/* Makes this Web service part of array node <self>: a file that is not
 * stored here is fetched from the node that stores it (asking the nodes
 * <fn> lists), and other nodes may fetch this node's files with requests
 * signed with <secret> (<len> 16..64 bytes, the same on every node). Boot
 * thread, once, after web_start. 0, -EINVAL or -errno. */
int web_set_array(struct web *w, uint32_t self, const void *secret, size_t len, web_peers_fn *fn,
		  void *arg);

/* The pin of the certificate in PEM file <cert_file> as curl takes it
 * ("sha256//" and the base64 SHA-256 of its public key): what a node
 * publishes so that others can check its Web service. 0 or -EINVAL. */
int web_cert_pin(const char *cert_file, char *out, size_t cap);

/* A snapshot of the counters (each read atomically). Any thread. */
void web_stats_get(const struct web *w, struct web_stats *st);

#endif
