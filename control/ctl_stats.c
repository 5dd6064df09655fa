/* Statistics and connection lists for the control socket (stats, conns).
 *
 * Counters are read with relaxed loads (engine_counter); each lcore's
 * connection states, dialogs and staged messages are counted by the lcore
 * itself (chatctl_lcore_snap), so a stats request costs every lcore one
 * walk of its connection list between two loop turns and nothing else. An
 * lcore that does not answer within CTL_LCORE_TIMEOUT_MS is reported with
 * "reachable": false rather than waited for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <rte_mempool.h>

#include "control/ctl_int.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/chatctl.h"
#include "dataplane/engine/engine.h"
#include "storage/commit.h"
#include "storage/export.h"

#define CONNS_CHUNK		1024
#define CONNS_LIMIT_DEFAULT	100000

static json_t *
ju(uint64_t v)
{
	return json_integer((json_int_t)v);
}

bool
ctl_stats_lcore_cpu_ns(struct ctl *c, uint32_t idx, uint64_t *ns)
{
	struct timespec ts;
	bool ok = false;

	if (idx >= c->nlcores)
		return false;
	pthread_mutex_lock(&c->lock);
	if (c->lcores[idx].have_clock && clock_gettime(c->lcores[idx].clock, &ts) == 0) {
		*ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		ok = true;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* The lcore thread's CPU clock, learnt from its first snapshot. */
static void
learn_clock(struct ctl *c, uint32_t idx, const struct chatctl_lcore_snap *s)
{
	clockid_t cid;

	pthread_mutex_lock(&c->lock);
	if (!c->lcores[idx].have_clock && pthread_getcpuclockid(s->thread, &cid) == 0) {
		c->lcores[idx].clock = cid;
		c->lcores[idx].have_clock = true;
	}
	pthread_mutex_unlock(&c->lock);
}

static void
add_counters(json_t *o, const struct engine *e, int64_t idx, uint64_t *drops)
{
	*drops = 0;
	for (unsigned int id = 0; engine_counter_name(id) != NULL; id++) {
		const char *name = engine_counter_name(id);
		uint64_t v = idx < 0 ? engine_counter(e, id) :
			     engine_lcore_counter(e, (uint32_t)idx, id);

		json_object_set_new(o, name, ju(v));
		if (strncmp(name, "drop_", 5) == 0)
			*drops += v;
	}
	json_object_set_new(o, "drops_total", ju(*drops));
}

/* What an lcore holds, for one lcore or summed over all of them. */
struct holds {
	uint64_t	by_state[CHATCTL_CONN__COUNT];
	uint64_t	conns, registered, dialogs, channel_dialogs, presences, staged;
};

static void
holds_add(struct holds *h, const struct chatctl_lcore_snap *s)
{
	for (unsigned int st = 0; st < CHATCTL_CONN__COUNT; st++)
		h->by_state[st] += s->by_state[st];
	h->conns += s->nconns;
	h->registered += s->registered;
	h->dialogs += s->dialogs;
	h->channel_dialogs += s->channel_dialogs;
	h->presences += s->room_presences;
	h->staged += s->staged;
}

static void
holds_json(json_t *o, const struct holds *h)
{
	json_t *states = json_object();

	for (unsigned int st = 0; st < CHATCTL_CONN__COUNT; st++)
		json_object_set_new(states, chatctl_conn_state_name(st), ju(h->by_state[st]));
	json_object_set_new(o, "conns", ju(h->conns));
	json_object_set_new(o, "conns_by_state", states);
	json_object_set_new(o, "registered", ju(h->registered));
	json_object_set_new(o, "dialogs", ju(h->dialogs));
	json_object_set_new(o, "channel_dialogs", ju(h->channel_dialogs));
	json_object_set_new(o, "room_presences", ju(h->presences));
	json_object_set_new(o, "staged", ju(h->staged));
}

static json_t *
storage_json(struct engine *e)
{
	struct commit_stats st;

	memset(&st, 0, sizeof(st));
	engine_commit_stats(e, &st);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:{s:f, s:I, s:I, s:I}, s:{s:I, s:I, s:I}}",
			 "groups", (json_int_t)st.groups,
			 "sync_waits", (json_int_t)st.sync_waits,
			 "requests", (json_int_t)st.requests,
			 "failed", (json_int_t)st.failed,
			 "durable_seq", (json_int_t)st.durable_seq,
			 "batch", "mean", st.batch_mean, "p50", (json_int_t)st.batch_p50,
			 "p99", (json_int_t)st.batch_p99, "max", (json_int_t)st.batch_max,
			 "latency_us", "p50", (json_int_t)st.lat_p50_us,
			 "p99", (json_int_t)st.lat_p99_us, "max", (json_int_t)st.lat_max_us);
}

/* The compliance exporter's lag: the hook ctl_set_exporter() fills. */
static json_t *
exporter_json(struct ctl *c)
{
	struct export_status st;
	json_t *o;
	int rc;

	pthread_mutex_lock(&c->lock);
	if (c->exporter == NULL) {
		pthread_mutex_unlock(&c->lock);
		return json_pack("{s:b}", "enabled", 0);
	}
	memset(&st, 0, sizeof(st));
	rc = export_status(c->exporter, &st);
	pthread_mutex_unlock(&c->lock);
	o = json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		      "enabled", 1, "running", st.running,
		      "lag_events", (json_int_t)st.lag_events, "lag_s", (json_int_t)st.lag_s,
		      "checkpoint", (json_int_t)st.checkpoint, "runs", (json_int_t)st.runs,
		      "files_written", (json_int_t)st.files_written,
		      "attachments_copied", (json_int_t)st.attachments_copied,
		      "events_exported", (json_int_t)st.events_exported,
		      "last_success_ms", (json_int_t)st.last_success_ms);
	json_object_set_new(o, "lag_known", json_boolean(rc == 0));
	json_object_set_new(o, "consecutive_failures", ju(st.consecutive_failures));
	if (st.last_err != 0) {
		json_object_set_new(o, "last_err", json_string(strerror(-st.last_err)));
		json_object_set_new(o, "last_err_seq", ju(st.last_err_seq));
		json_object_set_new(o, "last_err_text", json_string(st.last_err_text));
	} else {
		json_object_set_new(o, "last_err", json_null());
	}
	return o;
}

static void
mempool_add(struct rte_mempool *mp, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:I, s:I, s:I, s:I}",
		"name", mp->name, "size", (json_int_t)mp->size,
		"in_use", (json_int_t)rte_mempool_in_use_count(mp),
		"avail", (json_int_t)rte_mempool_avail_count(mp),
		"cache_size", (json_int_t)mp->cache_size));
}

/* "VmRSS:     1234 kB" -> bytes; 0 when absent. */
static uint64_t
status_kb(const char *status, const char *key)
{
	const char *p = strstr(status, key);

	return p ? strtoull(p + strlen(key), NULL, 10) * 1024 : 0;
}

json_t *
ctl_stats_memory_json(void)
{
	char buf[8192];
	json_t *pools = json_array();
	FILE *f = fopen("/proc/self/status", "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	rte_mempool_walk(mempool_add, pools);
	return json_pack("{s:I, s:I, s:o}", "rss_bytes", (json_int_t)status_kb(buf, "\nVmRSS:"),
			 "rss_peak_bytes", (json_int_t)status_kb(buf, "\nVmHWM:"),
			 "mempools", pools);
}

struct totals {
	struct holds	holds;
	uint64_t	cpu_ns;
	bool		complete;		/* every lcore answered */
	bool		cpu_complete;
};

static json_t *
lcore_json(struct ctl *c, uint32_t i, struct totals *t)
{
	struct chatctl_lcore_snap s;
	json_t *o = json_object();
	uint64_t drops, cpu;
	int rc;

	json_object_set_new(o, "lcore", ju(i));
	add_counters(o, c->e, i, &drops);
	rc = chatctl_lcore_snap(c->e, i, &s, CTL_LCORE_TIMEOUT_MS);
	json_object_set_new(o, "running", json_boolean(rc != -ENODEV));
	json_object_set_new(o, "reachable", json_boolean(rc == 0));
	if (rc == 0) {
		struct holds h = { 0 };

		learn_clock(c, i, &s);
		holds_add(&h, &s);
		holds_json(o, &h);
		json_object_set_new(o, "listening", json_boolean(s.listening));
		json_object_set_new(o, "draining", json_boolean(s.draining));
		holds_add(&t->holds, &s);
	} else {
		t->complete = false;
	}
	if (ctl_stats_lcore_cpu_ns(c, i, &cpu)) {
		json_object_set_new(o, "cpu_ns", ju(cpu));
		t->cpu_ns += cpu;
	} else {
		json_object_set_new(o, "cpu_ns", json_null());
		t->cpu_complete = false;
	}
	return o;
}

static json_t *
rings_json(struct ctl *c, json_t *lcores)
{
	uint32_t n = c->nlcores, size = chatctl_ring_size(c->e);
	uint64_t total = 0, max = 0;
	json_t *matrix = json_array();

	/* matrix[src][dst]: entries lcore src sent that lcore dst has not
	 * taken yet. Each lcore also gets the sum of what waits for it. */
	for (uint32_t src = 0; src < n; src++) {
		json_t *row = json_array();

		for (uint32_t dst = 0; dst < n; dst++) {
			uint32_t v = chatctl_ring_count(c->e, src, dst);

			json_array_append_new(row, ju(v));
			total += v;
			if (v > max)
				max = v;
		}
		json_array_append_new(matrix, row);
	}
	for (uint32_t dst = 0; dst < n; dst++) {
		uint64_t in = 0;

		for (uint32_t src = 0; src < n; src++)
			in += chatctl_ring_count(c->e, src, dst);
		json_object_set_new(json_array_get(lcores, dst), "ring_in", ju(in));
	}
	return json_pack("{s:I, s:I, s:I, s:f, s:o}", "size", (json_int_t)size,
			 "waiting", (json_int_t)total, "max", (json_int_t)max,
			 "max_fill", size ? (double)max / size : 0.0, "matrix", matrix);
}

static json_t *
node_json(struct ctl *c)
{
	uint64_t mono = clock_mono_ms();

	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:s, s:s}",
			 "domain", c->conf.domain, "node_id", (json_int_t)c->conf.node_id,
			 "pid", (json_int_t)getpid(), "started_ms", (json_int_t)c->started_ms,
			 "uptime_ms", (json_int_t)(mono - c->started_mono_ms),
			 "accepting", engine_accepting(c->e), "lcores", (json_int_t)c->nlcores,
			 "log_level", log_level_name(atomic_load(&log_level_cur)),
			 "socket", c->conf.socket_path);
}

int
ctl_stats_all(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	struct totals t = { .complete = true, .cpu_complete = true };
	json_t *o = json_object(), *total = json_object(), *lcores = json_array(), *rings;
	uint64_t drops;

	json_object_set_new(o, "node", node_json(c));
	for (uint32_t i = 0; i < c->nlcores; i++)
		json_array_append_new(lcores, lcore_json(c, i, &t));
	add_counters(total, c->e, -1, &drops);
	holds_json(total, &t.holds);
	json_object_set_new(total, "cpu_ns", t.cpu_complete ? ju(t.cpu_ns) : json_null());
	json_object_set_new(total, "complete", json_boolean(t.complete));
	rings = rings_json(c, lcores);
	/* Bursts that did not fit a ring (kept staged, never dropped). */
	json_object_set(rings, "ring_full", json_object_get(total, "ring_full"));
	json_object_set_new(rings, "staged", ju(t.holds.staged));
	json_object_set_new(o, "total", total);
	json_object_set_new(o, "lcores", lcores);
	json_object_set_new(o, "rings", rings);
	json_object_set_new(o, "storage", storage_json(c->e));
	json_object_set_new(o, "exporter", exporter_json(c));
	json_object_set_new(o, "memory", ctl_stats_memory_json());
	*out = o;
	return 0;
}

/* ---- conns --------------------------------------------------------------- */

static json_t *
conn_json(const struct chatctl_conn_snap *s)
{
	json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:b, s:I, s:I, s:I, s:I}",
			      "id", (json_int_t)s->id, "lcore", (json_int_t)s->lcore,
			      "peer", s->peer, "state", chatctl_conn_state_name(s->state),
			      "registered", s->registered, "age_s", (json_int_t)s->age_s,
			      "idle_s", (json_int_t)s->idle_s, "dialogs", (json_int_t)s->dialogs,
			      "rooms", (json_int_t)s->rooms);

	json_object_set_new(o, "user", s->aor[0] ? json_string(s->aor) : json_null());
	return o;
}

/* <a> names the same user as <b> (either may carry "sip:"). */
static bool
same_user(const char *a, const char *b)
{
	if (strncasecmp(a, "sip:", 4) == 0)
		a += 4;
	if (strncasecmp(b, "sip:", 4) == 0)
		b += 4;
	return strcasecmp(a, b) == 0;
}

static int
int_arg(const struct ctl_args *a, const char *key, json_int_t dflt, json_int_t *v)
{
	json_t *j = json_object_get(a->obj, key);

	if (j == NULL) {
		*v = dflt;
		return 0;
	}
	if (json_is_integer(j)) {
		*v = json_integer_value(j);
		return 0;
	}
	if (json_is_string(j)) {
		char *end;

		*v = strtoll(json_string_value(j), &end, 10);
		if (*end == '\0' && end != json_string_value(j))
			return 0;
	}
	return -1;
}

int
ctl_stats_conns(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	const char *user = ctl_arg_str(a, "user", false);
	char ubuf[256];
	json_int_t only, limit;
	struct chatctl_conn_snap *buf;
	json_t *list, *unreach;
	uint64_t count = 0;
	bool truncated = false;

	if (int_arg(a, "lcore", -1, &only) != 0 || only >= (json_int_t)c->nlcores) {
		snprintf(err, errlen, "lcore: a number from 0 to %u", c->nlcores - 1);
		return -1;
	}
	if (int_arg(a, "limit", CONNS_LIMIT_DEFAULT, &limit) != 0 || limit < 0) {
		snprintf(err, errlen, "limit: a number of connections");
		return -1;
	}
	/* A bare name is a user of this node's domain. */
	if (user != NULL && strchr(user, '@') == NULL) {
		snprintf(ubuf, sizeof(ubuf), "%s@%s", user, c->conf.domain);
		user = ubuf;
	}
	buf = malloc(CONNS_CHUNK * sizeof(*buf));
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	list = json_array();
	unreach = json_array();
	for (uint32_t i = 0; i < c->nlcores; i++) {
		uint64_t cursor = 0;

		if (only >= 0 && i != (uint32_t)only)
			continue;
		for (;;) {
			int n = chatctl_conns(c->e, i, &cursor, buf, CONNS_CHUNK,
						 CTL_LCORE_TIMEOUT_MS);

			if (n < 0) {
				json_array_append_new(unreach, ju(i));
				break;
			}
			for (int k = 0; k < n; k++) {
				if (user != NULL && !same_user(buf[k].aor, user))
					continue;
				count++;
				if ((json_int_t)json_array_size(list) < limit)
					json_array_append_new(list, conn_json(&buf[k]));
				else
					truncated = true;
			}
			if (n < CONNS_CHUNK)
				break;
		}
	}
	free(buf);
	*out = json_pack("{s:I, s:I, s:b, s:o, s:o}", "count", (json_int_t)count,
			 "listed", (json_int_t)json_array_size(list), "truncated", truncated,
			 "unreachable", unreach, "conns", list);
	return 0;
}
