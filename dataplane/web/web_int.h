/* Internals of the Web service shared by web.c (connections, TLS, HTTP
 * framing, the storage producer, the thread) and webfile.c (what a PUT or
 * GET does: tokens, room rights, files, records, events). Not for other
 * folders: they see web.h.
 *
 * Everything here belongs to the Web service's thread, except the counters
 * (relaxed atomics, read by web_stats_get from any thread) and the two
 * request flags that web_stop/web_reload set. */
#ifndef PARLEY_WEB_INT_H
#define PARLEY_WEB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dataplane/chat/ftoken.h"
#include "dataplane/http1/http1.h"
#include "dataplane/web/web.h"
#include "storage/files.h"
#include "storage/wal.h"

struct bufferevent;
struct event;
struct event_base;
struct evconnlistener;
struct ssl_ctx_st;
struct evp_md_ctx_st;

#define WEB_READ_HIGH	(256u * 1024)	/* input buffered before reading pauses */
#define WEB_SEND_HIGH	(512u * 1024)	/* download bytes queued ahead of TLS */
#define WEB_SEND_LOW	(128u * 1024)	/* refill below this */
#define WEB_CHUNK	(128u * 1024)	/* one pread of a download */
#define WEB_SYNC_EVERY	(8u << 20)	/* start writeback of an upload this often */
#define WEB_LINGER_S	2		/* discard an unread body this long before closing */

enum wconn_state {
	WC_HEAD = 0,	/* waiting for (the rest of) a request head */
	WC_BODY,	/* an upload body streams into its temp file */
	WC_COMMIT,	/* waiting for the storage thread (FILEUPLOAD/FILEDOWNLOAD) */
	WC_SEND,	/* a download streams from its file */
	WC_FLUSH,	/* a whole response is queued: wait until it is written */
	WC_LINGER,	/* response written; discard an unread body, then close */
	WC_FETCH,	/* a GET waits for the file from another node (webfetch.h) */
};

/* One connection, and the request it is serving (one at a time). */
struct wconn {
	struct web		*w;
	struct bufferevent	*bev;		/* NULL once closed */
	struct event		*timer;		/* head, keep-alive and linger deadlines */
	struct wconn		*prev, *next;	/* w->conns, while open */
	enum wconn_state	st;
	bool			head_started;	/* bytes of the next head arrived */
	bool			body_read;	/* the request's body is consumed */
	bool			close_after;	/* close once the response is written */
	bool			in_commit;	/* a storage request of ours is in flight */
	bool			in_fetch;	/* webfetch has it (webfetch.h) */
	bool			fetched;	/* this request's file was fetched (or tried) */
	bool			dead;		/* closed during a commit or fetch: free it after */
	uint32_t		nreq;		/* requests on this connection */

	struct http1_req	req;
	char			room[HTTP1_ROOM_LEN + 1];
	char			name[HTTP1_NAME_MAX];
	struct ftoken_info	tok;		/* the token taken for this request */

	int			dirfd;		/* the room's folder, or -1 */
	int			fd;		/* temp file (PUT) or file (GET), or -1 */
	char			tmp[HTTP1_NAME_MAX + 8];	/* temp name while it exists */
	uint64_t		want, got, synced;
	struct evp_md_ctx_st	*sha;
	struct files_rec	rec;

	uint64_t		off, end;	/* GET: next byte, one past the last */
	uint64_t		size;
	uint64_t		first;
	int			status;		/* GET: 200 or 206 */
};

struct web_ctr {
	_Atomic uint64_t	conns_accepted, conns_refused, conns_open, requests;
	_Atomic uint64_t	uploads, downloads, uploads_aborted, denied;
	_Atomic uint64_t	errors_4xx, errors_5xx, bytes_in, bytes_out;
};

struct web {
	char			listen[256];
	char			url[256];
	char			prefix[256];	/* the URL's path: "/filestore/" */
	char			files_dir[512];
	char			cert[512], key[512], ciphers[512];
	struct web_config	cfg;		/* its strings point at the copies above */
	struct http1_limits	lim;

	struct ftoken_store	*tokens;
	struct db		*db;
	struct commit_producer	*prod;
	int			files_fd;	/* <files_dir>, O_DIRECTORY */

	struct event_base	*base;
	struct evconnlistener	*lis;
	struct ssl_ctx_st	*ssl_ctx;	/* new connections; swapped on reload */
	int			wake_fd;	/* eventfd: stop and reload requests */
	int			adopt_fd[2];	/* pipe of descriptors from web_adopt */
	struct event		*wake_ev, *poll_ev, *drain_ev, *adopt_ev;
	atomic_bool		stop_req, reload_req;
	pthread_t		thr;
	bool			started, joined, stopping;

	struct wconn		*conns;		/* open connections */
	uint32_t		nconns;
	unsigned		inflight;	/* storage requests not yet polled back */
	struct webfetch		*fetch;		/* files from other nodes (webfetch.h) */

	struct web_ctr		ctr;
};

#define WEB_INC(w, f)		atomic_fetch_add_explicit(&(w)->ctr.f, 1, memory_order_relaxed)
#define WEB_ADD(w, f, n)	atomic_fetch_add_explicit(&(w)->ctr.f, (n), memory_order_relaxed)

/* ---- web.c, for webfile.c ---- */


/* Queues a whole response: status line, Content-Length, <hdrs> (CRLF-
 * terminated lines, may be NULL) and <body>, then waits for it to be
 * written (WC_FLUSH). Closes afterwards when the request asked for it, the
 * service stops, or the request's body was not consumed (after lingering).
 * No-op on a closed connection. */
void web_respond(struct wconn *c, int status, const char *hdrs, const char *body, size_t blen);
/* An error response with a one-line text body; counts it. */
void web_respond_error(struct wconn *c, int status);
/* Queues the head of a response whose body webfile_fill() streams, and
 * starts streaming (WC_SEND). */
void web_respond_stream(struct wconn *c, int status, const char *hdrs, uint64_t length);

/* The upload body may flow now (WC_BODY): 100 Continue if asked for, read
 * timeout armed, bytes already buffered handed to webfile_body(). */
void web_begin_body(struct wconn *c);
/* Stops reading the connection (the body is complete). */
void web_pause_reading(struct wconn *c);

/* Submits a compliance event <ev> for the request on <c> (room, user and
 * repository name from c->tok); its completion comes to
 * webfile_commit_done(). 0, or -EBUSY (no request free or the ring is
 * full: answer 503). */
int web_commit(struct wconn *c, enum wal_event ev);

/* ---- webfile.c, for web.c ---- */

/* A parsed head is in c->req: serve it (PUT or GET), or refuse it. */
void webfile_request(struct wconn *c);
/* WC_BODY: bytes arrived (or the body is empty). */
void webfile_body(struct wconn *c);
/* The storage thread answered web_commit(): <status> 0 (durable) or
 * -errno. c->bev is NULL when the client left meanwhile; the upload is
 * finished all the same (its event is durable). */
void webfile_commit_done(struct wconn *c, int status);
/* WC_SEND: queues more of the file. 1 once the whole range is queued, 0
 * for more later, -1 when the file cannot be read (close the connection:
 * the head is out, the body will be short). */
int webfile_fill(struct wconn *c);
/* Releases what the request holds: fds, digest, and an upload's temp file
 * (a partial upload leaves nothing). Idempotent. */
void webfile_release(struct wconn *c);
/* WC_FETCH: webfetch is done with c's file: <status> 0 (stored here now),
 * -ENOENT (no node has it) or another -errno. */
void webfile_fetched(struct wconn *c, int status);
/* Boot: removes temp files that a crash left in <files_dir>'s room folders. */
void webfile_sweep(struct web *w);

#endif
