/* The Lookup and Channel services: XCCOS commands on INVITE dialogs
 * (shared/protocol/xccos.md §b). Owning lcore only, unless said otherwise. */
#ifndef PARLEY_CHANNEL_H
#define PARLEY_CHANNEL_H

#include <stddef.h>

#include "dataplane/chat/chat_ctr.h"

struct lcore_ctx;

/* Boot, before engine_create: registers the Lookup and Channel services
 * with the dialog layer (dialog_service_register) and their completion
 * callbacks with the fan-out (fanout_register). 0 or -ENOENT. */
int channel_init(void);

/* Sends the XCCOS document <doc> (a notice) on every Channel dialog of the
 * connections of user <aor> on this lcore; how many got it. For the
 * control plane (engine_lcore_call), e.g. ntc:inv. */
unsigned channel_notice_user(struct lcore_ctx *lc, const char *aor, const char *doc, size_t len);

#endif
