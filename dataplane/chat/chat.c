/* The Group Chat service's hook table for the engine: fan-out runs in every
 * loop turn (fanout.c), the room table is the snapshot each lcore reads
 * (roomtab.h: roomtab_of), and the chat counters join the engine's. */
#include "dataplane/chat/chat.h"
#include "dataplane/chat/channel.h"
#include "dataplane/chat/chat_ctr.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/lcore.h"

static const char *const chat_ctr_names[] = { CHAT_CTRS(CTR_NAME) };

const struct ctr_table chat_ctr_table = {
	.first = SESSION_CTR__END,
	.n = CHAT_CTR__END - SESSION_CTR__END,
	.names = chat_ctr_names,
};

_Static_assert(sizeof(chat_ctr_names) / sizeof(chat_ctr_names[0]) ==
	       CHAT_CTR__END - SESSION_CTR__END, "one name per chat counter");

static void
rooms_get(void *t)
{
	roomtab_get(t);
}

static void
rooms_put(void *t)
{
	roomtab_put(t);
}

static const struct engine_service chat_service = {
	.init = fanout_init,
	.quiesce = fanout_quiesce,
	.fini = fanout_fini,
	.poll = fanout_poll,
	.flush = fanout_flush,
	.idle = fanout_idle,
	.settled = fanout_settled,
	.snap_get = rooms_get,
	.snap_put = rooms_put,
	.ctrs = &chat_ctr_table,
};

int
chat_register(void)
{
	engine_register_service(&chat_service);
	return channel_init();
}
