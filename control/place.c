/* Placement of users over the array's live nodes: see place.h. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "control/etcd.h"
#include "control/homes.h"
#include "control/place.h"

/* A string of a node record into <out> of <cap> bytes; "" when absent or
 * too long. */
static void
copy_str(char *out, size_t cap, const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;

	if (n >= cap)
		n = 0;
	memcpy(out, s ? s : "", n);
	out[n] = '\0';
}

/* The mean "busy" of a node record's lcores array (0 when absent). */
static double
mean_busy(const json_t *lcores)
{
	double sum = 0;
	size_t i, n = json_array_size(lcores);
	json_t *l;

	json_array_foreach(lcores, i, l)
		sum += json_number_value(json_object_get(l, "busy"));
	return n ? sum / (double)n : 0;
}

void
place_fill(struct place_tab *t, const struct etcd_kvs *kvs, uint64_t now_ms)
{
	uint32_t s = atomic_load_explicit(&t->seq, memory_order_relaxed);
	bool ok = kvs != NULL;

	atomic_store_explicit(&t->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	t->valid = ok;
	t->n = 0;
	for (size_t i = 0; ok && i < kvs->n && t->n < PLACE_MAX; i++) {
		json_t *v = json_loadb(kvs->kv[i].value, kvs->kv[i].value_len, 0, NULL);
		struct place_node *p = &t->v[t->n];
		const char *sip = json_string_value(json_object_get(v, "sip"));
		const char *peer = json_string_value(json_object_get(v, "peer"));
		json_int_t id = json_integer_value(json_object_get(v, "node_id"));
		json_int_t conns = json_integer_value(json_object_get(v, "conns"));

		if (sip != NULL && id > 0 && strlen(sip) < sizeof(p->sip)) {
			p->node_id = (uint32_t)id;
			p->conns = conns < 0 ? 0 : conns > UINT32_MAX ? UINT32_MAX : (uint32_t)conns;
			p->draining = json_is_true(json_object_get(v, "draining"));
			p->busy = mean_busy(json_object_get(v, "lcores"));
			p->lease = kvs->kv[i].lease;
			copy_str(p->web, sizeof(p->web), json_object_get(v, "web"));
			copy_str(p->pin, sizeof(p->pin), json_object_get(v, "web_pin"));
			strcpy(p->sip, sip);
			snprintf(p->peer, sizeof(p->peer), "%s", peer && strlen(peer) <
				 sizeof(p->peer) ? peer : "");
			t->n++;
		}
		json_decref(v);
	}
	for (uint32_t i = 0; i < PLACE_MAX; i++)
		atomic_store_explicit(&t->placed[i], 0, memory_order_relaxed);
	t->refreshed_ms = now_ms;
	atomic_store_explicit(&t->seq, s + 2, memory_order_release);
}

/* Node <i>'s load as placement weighs it: its connections as published,
 * plus the clients placed there since. */
static uint32_t
load(struct place_tab *t, uint32_t i)
{
	uint64_t l = (uint64_t)t->v[i].conns +
		     atomic_load_explicit(&t->placed[i], memory_order_relaxed);

	return l > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)l;
}

bool
place_decide(struct place_tab *t, uint32_t self, const char *aor, uint64_t now_ms,
	     char *where, size_t cap)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char best[PLACEMENT_WHERE_MAX];
	uint32_t best_id, best_i = 0, s;

	for (const char *p = aor; *p; p++) {
		h ^= (unsigned char)(*p | 0x20);	/* addresses compare caselessly */
		h *= 0x100000001b3ULL;
	}
	for (;;) {
		uint32_t n, min = UINT32_MAX, slack;
		uint64_t best_score = 0;
		bool valid;

		s = atomic_load_explicit(&t->seq, memory_order_acquire);
		if (s & 1)
			continue;
		valid = t->valid && now_ms - t->refreshed_ms <= PLACE_STALE_MS;
		n = t->n < PLACE_MAX ? t->n : PLACE_MAX;
		best_id = 0;
		best[0] = '\0';
		for (uint32_t i = 0; valid && i < n; i++)
			if (!t->v[i].draining && load(t, i) < min)
				min = load(t, i);
		slack = min / 100 * PLACE_SLACK_PCT + min % 100 * PLACE_SLACK_PCT / 100;
		if (slack < PLACE_SLACK_MIN)
			slack = PLACE_SLACK_MIN;
		for (uint32_t i = 0; valid && min != UINT32_MAX && i < n; i++) {
			const struct place_node *v = &t->v[i];
			uint64_t score;

			if (v->draining || load(t, i) - min > slack)
				continue;
			score = homes_mix64(h ^ homes_mix64(v->node_id));
			if (best_id == 0 || score > best_score) {
				best_score = score;
				best_id = v->node_id;
				best_i = i;
				memcpy(best, v->sip, sizeof(best));
			}
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&t->seq, memory_order_relaxed) == s)
			break;
	}
	best[sizeof(best) - 1] = '\0';
	if (best_id != 0)
		atomic_fetch_add_explicit(&t->placed[best_i], 1, memory_order_relaxed);
	if (best_id == 0 || best_id == self || best[0] == '\0')
		return false;
	snprintf(where, cap, "%s", best);
	return true;
}
