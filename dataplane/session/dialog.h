/* INVITE dialogs of the Lookup and Channel services; see dialog.c. */
#ifndef PARLEY_DIALOG_H
#define PARLEY_DIALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/engine/engine.h"
#include "dataplane/session/sipconn.h"
#include "storage/catalog.h"

struct conn;
struct sipmsg;

/* The services this node carries on INVITE dialogs, by the Request-URI of
 * the INVITE: sip:ocschat@<domain> and sip:parley-channel-<node>@<domain>. */
enum dialog_service {
	DIALOG_LOOKUP,
	DIALOG_CHANNEL,
	DIALOG__SERVICES,
};

struct dialog;

/* What a service (chat/channel.c) does with its dialogs. */
struct dialog_service_ops {
	/* An INFO on <d>: the service answers it with exactly one 200, at
	 * once or later (xccos.md a.2). */
	void (*info)(struct conn *c, struct dialog *d, const struct sipmsg *m);
	/* <d> ends (BYE, expiry, the client forgot it, connection loss);
	 * may be NULL. */
	void (*closed)(struct conn *c, struct dialog *d);
};

/* Attaches <ops> (kept, not copied) to the service called <name> ("lookup",
 * "channel"). An INVITE for a service nobody registered gets 404. 0, or
 * -ENOENT for a name this layer does not carry. Boot, before the lcores
 * run. */
int dialog_service_register(const char *name, const struct dialog_service_ops *ops);

/* One INVITE dialog. Owned by its connection's lcore. */
struct dialog {
	struct dialog *next;
	struct conn *conn;
	uint64_t uid;			/* unique per process: names the member on other lcores */
	enum dialog_service svc;
	bool confirmed;			/* ACK seen */
	uint32_t remote_cseq;
	uint32_t local_cseq;
	uint32_t session_expires;
	uint64_t expires_at_s;
	uint64_t envid;			/* XCCOS envelope counter for server messages */
	char local_tag[20];
	char call_id[128];
	char remote_tag[80];
	char remote_uri[160];		/* From of the client (without params) */
	char local_uri[96];		/* the service URI */
	char target[200];		/* client's Contact: Request-URI of our requests */

	/* Our INFO requests, built once per dialog: everything but the
	 * branch suffix, CSeq number and Content-Length (dialog_send_info). */
	char *info_a;			/* "INFO <target> ...;branch=z9hG4bK<conn>" */
	char *info_b;			/* "\r\nMax-Forwards ... CSeq: " */
	uint16_t info_a_len, info_b_len;

	/* Channel service: rooms this dialog is present in (raw ids). */
	uint8_t (*rooms)[CATALOG_ID_RAW];
	uint32_t nrooms, rooms_cap;
	uint32_t joins_pending;		/* rooms whose join is in flight */
};

/* An in-dialog request or a response on <c> (sipconn.c dispatches them). */
void dialog_request(struct conn *c, const struct sipmsg *m);
void dialog_response(struct conn *c, const struct sipmsg *m);
/* Frees every dialog of <c> (connection loss counts as leaving). */
void dialog_conn_closed(struct conn *c);
/* Drops dialogs whose session expired without refresh. */
void dialog_sweep(struct conn *c, uint64_t now_s);

/* The dialog of <c> with <uid>, or NULL. */
struct dialog *dialog_by_uid(struct conn *c, uint64_t uid);

/* The SIP URI of a service on this node, with its sip: prefix. */
void dialog_service_uri(const struct engine_conf *cf, enum dialog_service svc, char *out,
			size_t cap);

/* Sends a server INFO with body <body> (text/plain XCCOS) on dialog <d> of
 * connection <c>. Owning lcore only. 0, -ENOSPC (too large) or -EPIPE (the
 * connection is closing). */
int dialog_send_info(struct conn *c, struct dialog *d, const char *body, size_t blen);

#endif
