/* SIP on a connection's plaintext stream (sipconn.c): the protocol the
 * session layer registers with the engine, and the replies every SIP stage
 * sends. Owning lcore only. */
#ifndef PARLEY_SIPCONN_H
#define PARLEY_SIPCONN_H

#include <stddef.h>

#include "dataplane/engine/lcore.h"
#include "dataplane/session/session_ctr.h"

struct conn;
struct sipmsg;

/* Boot, before engine_create: SIP becomes the engine's protocol on every
 * connection (lcore.h: engine_register_proto), with the session layer's
 * counters. */
void sipconn_register(void);

/* Sends a response to <req> with extra header lines <hdrs> (each ending in
 * CRLF, may be NULL) and an optional body. */
void sipconn_reply(struct conn *c, const struct sipmsg *req, int status, const char *reason,
		   const char *hdrs, const char *ctype, const void *body, size_t blen);
/* The local tag we put on responses that create no dialog (To tag). */
void sipconn_tag(const struct conn *c, const struct sipmsg *req, char *out, size_t cap);

/* A SIP response with <status> left: the total and its class. */
static inline void
ctr_sip_response(struct lcore_ctx *lc, int status)
{
	ctr_inc(lc, CTR_SIP_RESPONSES_OUT);
	if (status >= 100 && status < 700)
		ctr_inc(lc, (unsigned int)(CTR_SIP_RESP_1XX + status / 100 - 1));
}

#endif
