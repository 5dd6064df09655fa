/* INVITE dialogs of the Lookup and Channel services; see dialog.c. */
#ifndef PARLEY_DIALOG_H
#define PARLEY_DIALOG_H

#include <stddef.h>

#include "dataplane/engine.h"

struct conn;
struct dialog;

enum dialog_service {
	DIALOG_LOOKUP,
	DIALOG_CHANNEL,
};

/* The SIP URI of a service on this node, with its sip: prefix. */
void dialog_service_uri(const struct engine_conf *cf, enum dialog_service svc, char *out,
			size_t cap);

/* Sends a server INFO with body <body> (text/plain XCCOS) on dialog <d> of
 * connection <c>. Owning lcore only. 0, -ENOSPC (too large) or -EPIPE (the
 * connection is closing). */
int dialog_send_info(struct conn *c, struct dialog *d, const char *body, size_t blen);

#endif
