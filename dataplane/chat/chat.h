/* The Group Chat service as the engine sees it (chat.c): the hooks it runs
 * on every lcore, the room table as the engine's per-lcore snapshot, and the
 * chat layer's counters. */
#ifndef PARLEY_CHAT_H
#define PARLEY_CHAT_H

/* Boot, before engine_create: Group Chat becomes the engine's service
 * (lcore.h: engine_register_service), the Lookup and Channel services
 * attach to the dialog layer and the fan-out gets its callbacks
 * (channel_init). Afterwards engine_create takes the room table as its
 * snapshot and engine_snapshot_publish a new one. 0, or -errno. */
int chat_register(void);

#endif
