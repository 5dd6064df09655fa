/* Read-only /parley/... commands on DPDK's telemetry socket, so that the
 * stock dpdk-telemetry.py (-f parleyd-<pid>) shows the node's counters:
 *
 *	/parley/stats		totals: every counter, connections, storage
 *				commit latency, ring occupancy, memory (flat)
 *	/parley/lcore,<n>	one lcore's counters and connections
 *	/parley/rooms		room names
 *
 * Only summaries: a telemetry reply is cut at 16 KB, and that socket's
 * permissions are not ours to set, so nothing here changes state. The
 * control socket (ctl.c) carries the full answers and the admin commands.
 *
 * The callbacks run on telemetry's client threads; `tel_lock` keeps the
 * ctl alive while one runs, and after ctl_stop() they answer null. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

#include "control/ctl_int.h"
#include "dataplane/chat/chatctl.h"
#include "dataplane/engine/engine.h"
#include "dataplane/chat/roomtab.h"
#include "storage/commit.h"

static pthread_rwlock_t tel_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ctl *tel_ctl;
static bool tel_registered;

static void
add_counters(struct rte_tel_data *d, struct ctl *c, int64_t idx)
{
	for (unsigned int id = 0; engine_counter_name(id) != NULL; id++)
		rte_tel_data_add_dict_u64(d, engine_counter_name(id), idx < 0 ?
					  engine_counter(c->e, id) :
					  engine_lcore_counter(c->e, (uint32_t)idx, id));
}

/* Connections of lcore <i> (or all when <i> is -1), from the lcores' own
 * snapshots; lcores that do not answer are left out. */
static void
add_conns(struct rte_tel_data *d, struct ctl *c, int64_t i)
{
	uint64_t n = 0, st[CHATCTL_CONN__COUNT] = { 0 }, reg = 0;

	for (uint32_t k = 0; k < c->nlcores; k++) {
		struct chatctl_lcore_snap s;

		if ((i >= 0 && k != (uint32_t)i) ||
		    chatctl_lcore_snap(c->e, k, &s, CTL_LCORE_TIMEOUT_MS) != 0)
			continue;
		n += s.nconns;
		reg += s.registered;
		for (unsigned int j = 0; j < CHATCTL_CONN__COUNT; j++)
			st[j] += s.by_state[j];
	}
	rte_tel_data_add_dict_u64(d, "conns", n);
	rte_tel_data_add_dict_u64(d, "conns_registered", reg);
	rte_tel_data_add_dict_u64(d, "conns_handshake", st[CHATCTL_CONN_HANDSHAKE]);
	rte_tel_data_add_dict_u64(d, "conns_open", st[CHATCTL_CONN_OPEN]);
	rte_tel_data_add_dict_u64(d, "conns_closing", st[CHATCTL_CONN_CLOSING]);
}

static int
tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct commit_stats cs;
	uint64_t waiting = 0;
	struct ctl *c;
	json_t *mem;

	pthread_rwlock_rdlock(&tel_lock);
	c = tel_ctl;
	if (c == NULL) {
		pthread_rwlock_unlock(&tel_lock);
		return -ENODEV;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "lcores", c->nlcores);
	rte_tel_data_add_dict_u64(d, "accepting", engine_accepting(c->e));
	add_counters(d, c, -1);
	add_conns(d, c, -1);
	for (uint32_t s = 0; s < c->nlcores; s++)
		for (uint32_t t = 0; t < c->nlcores; t++)
			waiting += chatctl_ring_count(c->e, s, t);
	rte_tel_data_add_dict_u64(d, "ring_size", chatctl_ring_size(c->e));
	rte_tel_data_add_dict_u64(d, "ring_waiting", waiting);
	memset(&cs, 0, sizeof(cs));
	engine_commit_stats(c->e, &cs);
	rte_tel_data_add_dict_u64(d, "commit_groups", cs.groups);
	rte_tel_data_add_dict_u64(d, "commit_batch_p50", cs.batch_p50);
	rte_tel_data_add_dict_u64(d, "commit_batch_p99", cs.batch_p99);
	rte_tel_data_add_dict_u64(d, "commit_batch_max", cs.batch_max);
	rte_tel_data_add_dict_u64(d, "commit_latency_p50_us", cs.lat_p50_us);
	rte_tel_data_add_dict_u64(d, "commit_latency_p99_us", cs.lat_p99_us);
	rte_tel_data_add_dict_u64(d, "commit_latency_max_us", cs.lat_max_us);
	mem = ctl_stats_memory_json();
	rte_tel_data_add_dict_u64(d, "rss_bytes",
				  (uint64_t)json_integer_value(json_object_get(mem, "rss_bytes")));
	json_decref(mem);
	pthread_rwlock_unlock(&tel_lock);
	return 0;
}

static int
tel_lcore(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct ctl *c;
	char *end;
	unsigned long i;
	uint64_t cpu;

	if (params == NULL || params[0] == '\0')
		return -EINVAL;
	i = strtoul(params, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	pthread_rwlock_rdlock(&tel_lock);
	c = tel_ctl;
	if (c == NULL || i >= c->nlcores) {
		pthread_rwlock_unlock(&tel_lock);
		return -EINVAL;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "lcore", i);
	add_counters(d, c, (int64_t)i);
	add_conns(d, c, (int64_t)i);
	if (ctl_stats_lcore_cpu_ns(c, (uint32_t)i, &cpu))
		rte_tel_data_add_dict_u64(d, "cpu_ns", cpu);
	pthread_rwlock_unlock(&tel_lock);
	return 0;
}

static int
tel_rooms(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct ctl *c;

	pthread_rwlock_rdlock(&tel_lock);
	c = tel_ctl;
	if (c == NULL) {
		pthread_rwlock_unlock(&tel_lock);
		return -ENODEV;
	}
	rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; c->rooms != NULL && i < c->rooms->n && i < RTE_TEL_MAX_ARRAY_ENTRIES;
	     i++)
		rte_tel_data_add_array_string(d, c->rooms->v[i].cat->name);
	pthread_mutex_unlock(&c->lock);
	pthread_rwlock_unlock(&tel_lock);
	return 0;
}

void
ctl_tel_register(struct ctl *c)
{
	pthread_rwlock_wrlock(&tel_lock);
	tel_ctl = c;
	if (!tel_registered) {
		rte_telemetry_register_cmd("/parley/stats", tel_stats,
					   "Parley totals (parleyctl stats has more)");
		rte_telemetry_register_cmd("/parley/lcore", tel_lcore,
					   "One Parley lcore. Parameters: int lcore");
		rte_telemetry_register_cmd("/parley/rooms", tel_rooms, "Parley room names");
		tel_registered = true;
	}
	pthread_rwlock_unlock(&tel_lock);
}

void
ctl_tel_unregister(void)
{
	pthread_rwlock_wrlock(&tel_lock);
	tel_ctl = NULL;
	pthread_rwlock_unlock(&tel_lock);
}
