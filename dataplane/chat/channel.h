/* The Lookup and Channel services: XCCOS commands on INVITE dialogs
 * (shared/protocol/xccos.md §b). Owning lcore only. */
#ifndef PARLEY_CHANNEL_H
#define PARLEY_CHANNEL_H

#include <stddef.h>

#include "dataplane/chat/chat_ctr.h"

struct lcore_ctx;
struct conn;
struct dialog;
struct sipmsg;
struct joinbatch;
struct post;

/* An INFO on dialog <d>: answers it (200, at once or, for a post, once it
 * is durable) and handles the XCCOS document in its body. */
void channel_info(struct conn *c, struct dialog *d, const struct sipmsg *m);
/* The dialog ends (BYE, expiry, connection loss): it leaves every room. */
void channel_dialog_closed(struct conn *c, struct dialog *d);

/* Sends the XCCOS document <doc> (a notice) on every Channel dialog of the
 * connections of user <aor> on this lcore; how many got it. For the
 * control plane (engine_lcore_call), e.g. ntc:inv. */
unsigned channel_notice_user(struct lcore_ctx *lc, const char *aor, const char *doc, size_t len);

/* fanout.c -> here, on the origin lcore. */
void channel_join_done(struct lcore_ctx *lc, struct joinbatch *b);
void channel_post_done(struct lcore_ctx *lc, struct post *p);

#endif
