/* The node array's membership: see array.h. The lease guard and the room
 * homes turn are array_homes.c's; the state both share is array_int.h's.
 *
 * Two etcd clients: the thread's (its session: lease, node key) and the
 * query client that array_nodes() uses from the control thread, under
 * <qlock>, so that a slow etcd answer to parleyctl never delays a lease
 * renewal and neither thread shares a curl handle. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <openssl/rand.h>

#include "control/array.h"
#include "control/array_int.h"
#include "control/etcd.h"
#include "control/homes.h"
#include "control/peerlink.h"
#include "control/place.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/chatctl.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/engine/engine.h"
#include "dataplane/peer/peerframe.h"
#include "dataplane/session/placement.h"
#include "dataplane/web/web.h"
#include "storage/catalog.h"

#define SNAP_TIMEOUT_MS		100	/* one lcore's load snapshot */
#define START_TRIES		3	/* etcd unreachable at start: tries before giving up */
#define START_RETRY_MS		500

struct lcore_load {
	bool		have_clock;
	clockid_t	clock;		/* the lcore thread's CPU clock */
	uint64_t	cpu_ns;		/* at the last sample */
	uint64_t	wall_ns;
	double		busy;		/* fraction of the last interval */
};

/* ---- the node's record -------------------------------------------------- */

/* One lcore's busy fraction since the last sample, from its thread's CPU
 * clock (learnt from its first snapshot). */
static void
sample_busy(struct lcore_load *l, const struct chatctl_lcore_snap *s)
{
	uint64_t cpu, wall = array_now_ns(CLOCK_MONOTONIC);
	clockid_t cid;

	if (!l->have_clock && pthread_getcpuclockid(s->thread, &cid) == 0) {
		l->clock = cid;
		l->have_clock = true;
	}
	if (!l->have_clock)
		return;
	cpu = array_now_ns(l->clock);
	if (l->wall_ns != 0 && wall > l->wall_ns) {
		double b = (double)(cpu - l->cpu_ns) / (double)(wall - l->wall_ns);

		l->busy = b < 0 ? 0 : b > 1 ? 1 : b;
	}
	l->cpu_ns = cpu;
	l->wall_ns = wall;
}

/* The JSON this node publishes (malloc'd text), with its load read from
 * the lcores now. <live>: the lcores run (before, a snapshot would only
 * time out). */
static char *
record(struct array *a, bool live)
{
	json_t *o, *lc = json_array();
	uint64_t conns = 0;
	bool draining = !engine_accepting(a->e);
	char *text;

	for (uint32_t i = 0; i < a->nlcores; i++) {
		struct chatctl_lcore_snap s;
		int rc = live ? chatctl_lcore_snap(a->e, i, &s, SNAP_TIMEOUT_MS) : -ENODEV;

		if (rc == 0) {
			sample_busy(&a->load[i], &s);
			conns += s.nconns;
			draining = draining || s.draining;
		}
		json_array_append_new(lc, json_pack("{s:i, s:f, s:b}", "lcore", (int)i, "busy",
						    a->load[i].busy, "reachable", rc == 0));
	}
	o = json_pack("{s:i, s:s, s:s, s:i, s:I, s:o, s:b, s:I, s:I}",
		      "node_id", (int)a->conf.node_id,
		      "sip", a->conf.advertise_sip,
		      "peer", a->conf.peer_listen,
		      "pid", (int)getpid(),
		      "conns", (json_int_t)conns,
		      "lcores", lc,
		      "draining", draining,
		      "started_ms", (json_int_t)a->started_ms,
		      "updated_ms", (json_int_t)(array_now_ns(CLOCK_REALTIME) / 1000000));
	if (o != NULL && a->web_url[0] != '\0') {
		char pin[128];

		/* Read each time: a reloaded certificate shows within a turn. */
		json_object_set_new(o, "web", json_string(a->web_url));
		if (web_cert_pin(a->web_cert, pin, sizeof(pin)) == 0)
			json_object_set_new(o, "web_pin", json_string(pin));
	}
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

/* ---- the session -------------------------------------------------------- */

/* Grants a lease and creates the node key under it. 0; -EEXIST with the
 * holder described in <err>; or another etcd error. On failure no lease
 * is left behind. */
static int
join(struct array *a, bool live, char *err, size_t errlen)
{
	struct etcd_kv other;
	char why[512];
	char *rec;
	int64_t lease, ttl;
	int rc;

	uint64_t sent_ms = array_now_ns(CLOCK_MONOTONIC) / 1000000;

	rc = etcd_lease_grant(a->sess, a->conf.lease_ttl_s, &lease, &ttl, err, errlen);
	if (rc != 0)
		return rc;
	rec = record(a, live);
	if (rec == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out_revoke;
	}
	rc = etcd_create(a->sess, a->key, rec, strlen(rec), lease, &other, err, errlen);
	free(rec);
	if (rc == -EEXIST) {
		json_t *v = json_loadb(other.value ? other.value : "", other.value_len, 0, NULL);
		const char *sip = json_string_value(json_object_get(v, "sip"));
		json_int_t pid = json_integer_value(json_object_get(v, "pid"));

		snprintf(err, errlen, "node_id %u is already live in the array (%s holds it: "
			 "SIP %s, pid %lld): give every node its own [server] node_id (the id "
			 "is free again once that node stops, or %u s after it died)",
			 a->conf.node_id, a->key, sip ? sip : "?", (long long)pid,
			 a->conf.lease_ttl_s);
		json_decref(v);
		etcd_kv_free(&other);
	}
	if (rc != 0)
		goto out_revoke;
	a->lease = lease;
	atomic_store(&a->lease_pub, lease);
	atomic_store(&a->lease_until_ms, sent_ms + (uint64_t)(ttl > 0 ? ttl : 0) * 1000);
	atomic_store(&a->registered, true);
	return 0;

out_revoke:
	if (etcd_lease_revoke(a->sess, lease, why, sizeof(why)) != 0)
		LOG(DEBUG, ARRAY, "revoking lease %llx: %s", (unsigned long long)lease, why);
	return rc;
}

/* etcd failed a request of the thread: logged once per loss. */
static void
lost(struct array *a, const char *what, const char *err)
{
	atomic_fetch_add(&a->errors, 1);
	if (atomic_exchange(&a->lost, true))
		return;
	atomic_fetch_add(&a->lost_count, 1);
	LOG(WARNING, ARRAY, "etcd lost (%s: %s): serving the current clients on; the node "
	    "leaves the array if this lasts %u s (its lease)", what, err, a->conf.lease_ttl_s);
}

static void
back(struct array *a)
{
	if (atomic_exchange(&a->lost, false))
		LOG(NOTICE, ARRAY, "etcd answers again (%s)", etcd_endpoint(a->sess));
}

/* One turn: renew the lease (every keepalive_s) and publish the record. */
static void
turn(struct array *a, bool renew)
{
	char err[1024];
	char *rec;
	int rc;

	if (a->lease == 0) {
		/* Out of the array (the lease expired while etcd was away):
		 * join again, as at start. */
		rc = join(a, true, err, sizeof(err));
		if (rc == 0) {
			back(a);
			a->refused = false;
			LOG(NOTICE, ARRAY, "back in the array as %s", a->key);
		} else if (rc == -EEXIST) {
			back(a);
			if (!a->refused)
				LOG(ERR, ARRAY, "cannot rejoin the array: %s (retrying every "
				    "second)", err);
			a->refused = true;
		} else {
			lost(a, "rejoining", err);
		}
		return;
	}
	if (renew) {
		uint64_t sent_ms = array_now_ns(CLOCK_MONOTONIC) / 1000000;
		int64_t ttl = 0;

		rc = etcd_lease_keepalive(a->sess, a->lease, &ttl, err, sizeof(err));
		if (rc == 0 && ttl > 0)
			atomic_store(&a->lease_until_ms, sent_ms + (uint64_t)ttl * 1000);
		if (rc == -ENOENT) {
			LOG(WARNING, ARRAY, "this node's lease expired (%s): it left the array; "
			    "rejoining", err);
			a->lease = 0;
			atomic_store(&a->lease_pub, 0);
			atomic_store(&a->registered, false);
			return;
		}
		if (rc != 0) {
			lost(a, "lease keepalive", err);
			return;
		}
	}
	rec = record(a, true);
	if (rec == NULL)
		return;
	rc = etcd_put(a->sess, a->key, rec, strlen(rec), a->lease, err, sizeof(err));
	free(rec);
	if (rc == -ENOENT) {
		/* The lease ended between the keepalive and the put. */
		a->lease = 0;
		atomic_store(&a->lease_pub, 0);
		atomic_store(&a->registered, false);
	} else if (rc != 0) {
		lost(a, "publishing the node", err);
	} else {
		back(a);
	}
}

/* ---- peer links (peerlink.h) -------------------------------------------- */

/* Link thread: a frame from node <node>: the fan-out takes it to the
 * lcores (fanout_peer.h). */
static void
link_recv(void *arg, uint32_t node, const struct peerframe *f)
{
	struct array *a = arg;

	fanout_peer_in(a->e, node, f);
}

/* Link thread: the link with node <node> came up (rooms homed there
 * resynchronise) or went down (what waits for it fails, retryably). */
static void
link_state(void *arg, uint32_t node, bool up)
{
	struct array *a = arg;

	LOG(NOTICE, ARRAY, "peer link with node %u %s", node, up ? "up" : "down");
	fanout_peer_link(a->e, node, up);
}

/* Link thread: this node cut node <node> for falling behind. The link
 * goes down and comes back (link_state), and both ends resynchronise the
 * rooms the other homes then. */
static void
link_resync(void *arg, uint32_t node)
{
	(void)arg;
	LOG(WARNING, ARRAY, "peer link with node %u cut: it fell behind; its rooms resync when "
	    "it is back", node);
}

/* The fan-out's way out (struct fanout_peer_ops), from the lcores. */
static int
peer_send(void *arg, uint32_t node, const struct peerframe *f)
{
	struct array *a = arg;

	return peerlink_send(a->peers, node, f);
}

static int
peer_send_many(void *arg, const uint32_t *nodes, unsigned n, const struct peerframe *f)
{
	struct array *a = arg;

	return peerlink_send_many(a->peers, nodes, n, f);
}

/* A home refused a frame as wrong or stale: read the homes again now.
 * (Until control/homes.c re-resolves one room, the array thread's next
 * turn does it for all.) */
static void
peer_rehome(void *arg, const uint8_t raw[CATALOG_ID_RAW])
{
	(void)raw;
	array_kick(arg);
}

/* The peer links follow the live nodes that publish a peer address (the
 * table just read from etcd). */
static void
link_members(struct array *a)
{
	const struct place_tab *t = &a->place;
	struct peerlink_member m[PLACE_MAX];
	unsigned n = 0;
	int rc;

	for (uint32_t i = 0; i < t->n; i++)
		if (t->v[i].peer[0] != '\0') {
			m[n].id = t->v[i].node_id;
			memcpy(m[n].addr, t->v[i].peer, sizeof(m[n].addr));
			n++;
		}
	/* Nodes gone from the array: the rooms homed here forget their
	 * members (the others are told they left). */
	for (unsigned i = 0; i < a->nmembers; i++) {
		unsigned k;

		for (k = 0; k < n; k++)
			if (m[k].id == a->members[i])
				break;
		if (k == n && a->members[i] != a->conf.node_id) {
			LOG(NOTICE, ARRAY, "node %u left the array: its members part", a->members[i]);
			fanout_peer_gone(a->e, a->members[i]);
		}
	}
	for (a->nmembers = 0; a->nmembers < n; a->nmembers++)
		a->members[a->nmembers] = m[a->nmembers].id;
	rc = peerlink_set_members(a->peers, m, n);
	if (rc != 0 && !a->members_bad)
		LOG(WARNING, ARRAY, "peer links: the nodes' list is refused (%s: a peer address "
		    "that is not numeric ADDR:PORT, or over %u nodes); the links stay as they "
		    "were", strerror(-rc), PEERLINK_NODES_MAX);
	a->members_bad = rc != 0;
}

/* The "peers" object of array_nodes(): the listener, every link and the
 * node-wide counters. */
static json_t *
links_json(struct array *a)
{
	struct peerlink_stats st[PEERLINK_NODES_MAX];
	struct peerlink_totals g;
	unsigned n = peerlink_links(a->peers, st, PEERLINK_NODES_MAX, &g);
	json_t *links = json_array();

	for (unsigned i = 0; i < n && i < PEERLINK_NODES_MAX; i++)
		json_array_append_new(links, json_pack(
			"{s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			"node_id", (int)st[i].id, "addr", st[i].addr,
			"state", peerlink_state_name(st[i].state), "ups", (json_int_t)st[i].ups,
			"frames_in", (json_int_t)st[i].frames_in,
			"frames_out", (json_int_t)st[i].frames_out,
			"bytes_in", (json_int_t)st[i].bytes_in,
			"bytes_out", (json_int_t)st[i].bytes_out,
			"batches", (json_int_t)st[i].batches, "drops", (json_int_t)st[i].drops,
			"cuts", (json_int_t)st[i].cuts, "queued", (json_int_t)st[i].queued));
	return json_pack("{s:s, s:i, s:o, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "listen", a->peer_listen, "port", (int)peerlink_port(a->peers),
			 "links", links, "refused_tls", (json_int_t)g.refused_tls,
			 "refused_hello", (json_int_t)g.refused_hello,
			 "bad_frames", (json_int_t)g.bad_frames,
			 "duplicates", (json_int_t)g.duplicates,
			 "send_refused", (json_int_t)g.send_refused,
			 "lcore_dropped", (json_int_t)fanout_peer_dropped());
}

/* Rewrites the placement table from etcd's node keys (or marks it not to
 * be acted on when etcd or our membership is missing). */
static void
place_refresh(struct array *a)
{
	struct etcd_kvs kvs = { 0 };
	char prefix[ARRAY_KEY_MAX], err[1024];
	bool ok = false;

	snprintf(prefix, sizeof(prefix), "%s/nodes/", a->prefix);
	if (!atomic_load(&a->lost) && atomic_load(&a->registered))
		ok = etcd_get(a->sess, prefix, true, &kvs, err, sizeof(err)) == 0;
	place_fill(&a->place, ok ? &kvs : NULL, array_now_ns(CLOCK_MONOTONIC) / 1000000);
	etcd_kvs_free(&kvs);
	/* The peer links follow the same list (kept as is while etcd is
	 * away: links that work stay up). */
	if (a->peers != NULL && ok)
		link_members(a);
}

/* placement_fn, on the lcores (place_decide). */
static bool
decide(void *arg, const char *aor, char *where, size_t cap)
{
	struct array *a = arg;

	return place_decide(&a->place, a->conf.node_id, aor,
			    array_now_ns(CLOCK_MONOTONIC) / 1000000, where, cap);
}

static void *
array_thread(void *arg)
{
	struct array *a = arg;
	uint64_t last_renew = array_now_ns(CLOCK_MONOTONIC);

	for (;;) {
		struct pollfd p[2] = { { .fd = a->stop_fd, .events = POLLIN },
				       { .fd = a->kick_fd, .events = POLLIN } };
		uint64_t now, v;
		bool renew;

		if (poll(p, 2, ARRAY_PUBLISH_MS) > 0) {
			if (p[0].revents)
				break;
			if (read(a->kick_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
				LOG(DEBUG, ARRAY, "kick: %s", strerror(errno));
		}
		now = array_now_ns(CLOCK_MONOTONIC);
		renew = now - last_renew >= (uint64_t)a->conf.keepalive_s * 1000000000u - 50000000u;
		if (renew)
			last_renew = now;
		turn(a, renew);
		place_refresh(a);
		array_homes_step(a);
	}
	return NULL;
}

/* ---- start, stop, read -------------------------------------------------- */

/* The secret every node of the array shares (it signs file fetches between
 * Web services: webfetch.h): <prefix>/secret, made by the first node. */
static int
load_secret(struct array *a, char *err, size_t errlen)
{
	char key[ARRAY_KEY_MAX], hex[2 * ARRAY_SECRET_LEN + 1];
	uint8_t raw[ARRAY_SECRET_LEN];
	struct etcd_kv kv = { 0 };
	const char *v = hex;
	int rc;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		snprintf(err, errlen, "no randomness");
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	snprintf(key, sizeof(key), "%s/secret", a->prefix);
	rc = etcd_create(a->sess, key, hex, strlen(hex), 0, &kv, err, errlen);
	if (rc == -EEXIST) {
		v = kv.value;
		rc = v != NULL && kv.value_len == 2 * ARRAY_SECRET_LEN ? 0 : -EINVAL;
		if (rc != 0)
			snprintf(err, errlen, "%s in etcd is not %d hex digits", key,
				 2 * ARRAY_SECRET_LEN);
	}
	for (size_t i = 0; rc == 0 && i < ARRAY_SECRET_LEN; i++) {
		unsigned b;

		if (sscanf(v + 2 * i, "%2x", &b) != 1) {
			snprintf(err, errlen, "%s in etcd is not hex", key);
			rc = -EINVAL;
			break;
		}
		a->secret[i] = (uint8_t)b;
	}
	etcd_kv_free(&kv);
	return rc;
}

/* web_peers_fn, on the Web service's fetch thread: the live nodes with a
 * Web service, from the table the array thread keeps. */
static unsigned
web_peers(void *arg, struct web_peer *out, unsigned max)
{
	struct array *a = arg;
	struct place_tab *t = &a->place;
	unsigned n;

	for (;;) {
		uint32_t s = atomic_load_explicit(&t->seq, memory_order_acquire);

		if (s & 1)
			continue;
		n = 0;
		for (uint32_t i = 0; t->valid && i < t->n && i < PLACE_MAX && n < max; i++) {
			if (t->v[i].web[0] == '\0')
				continue;
			out[n].node_id = t->v[i].node_id;
			memcpy(out[n].url, t->v[i].web, sizeof(out[n].url));
			memcpy(out[n].pin, t->v[i].pin, sizeof(out[n].pin));
			out[n].url[sizeof(out[n].url) - 1] = '\0';
			out[n].pin[sizeof(out[n].pin) - 1] = '\0';
			n++;
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&t->seq, memory_order_relaxed) == s)
			return n;
	}
}

int
array_web_attach(struct array *a, struct web *w)
{
	return web_set_array(w, a->conf.node_id, a->secret, sizeof(a->secret), web_peers, a);
}

struct array *
array_start(const struct array_config *cfg, struct engine *e, char *err, size_t errlen)
{
	struct array *a = calloc(1, sizeof(*a));
	char why[1024];
	int rc;

	if (a == NULL) {
		snprintf(err, errlen, "[array] out of memory");
		return NULL;
	}
	a->stop_fd = -1;
	a->kick_fd = -1;
	pthread_mutex_init(&a->qlock, NULL);
	a->conf = *cfg;
	a->e = e;
	a->etcd_list = strdup(cfg->etcd);
	a->prefix = strdup(cfg->prefix);
	a->advertise_sip = strdup(cfg->advertise_sip);
	a->peer_listen = strdup(cfg->peer_listen ? cfg->peer_listen : "");
	a->web_url = strdup(cfg->web_url ? cfg->web_url : "");
	a->web_cert = strdup(cfg->web_cert ? cfg->web_cert : "");
	a->nlcores = engine_nlcores(e);
	a->load = calloc(a->nlcores ? a->nlcores : 1, sizeof(*a->load));
	a->homes = a->prefix ? homes_new(a->prefix, cfg->node_id) : NULL;
	if (a->homes == NULL || a->web_url == NULL || a->web_cert == NULL || a->etcd_list == NULL || a->prefix == NULL || a->advertise_sip == NULL ||
	    a->peer_listen == NULL || a->load == NULL) {
		snprintf(err, errlen, "[array] out of memory");
		goto out_free;
	}
	a->conf.etcd = a->etcd_list;
	a->conf.prefix = a->prefix;
	a->conf.advertise_sip = a->advertise_sip;
	a->conf.peer_listen = a->peer_listen;
	snprintf(a->key, sizeof(a->key), "%s/nodes/%u", a->prefix, cfg->node_id);
	a->started_ms = array_now_ns(CLOCK_REALTIME) / 1000000;
	a->sess = etcd_open(a->etcd_list, cfg->timeout_ms, why, sizeof(why));
	a->query = a->sess ? etcd_open(a->etcd_list, cfg->timeout_ms, why, sizeof(why)) : NULL;
	if (a->query == NULL) {
		snprintf(err, errlen, "[array] etcd: %s", why);
		goto out_free;
	}
	if (a->peer_listen[0] != '\0') {
		/* The etcd prefix names the array: a node of another array
		 * is refused at HELLO. */
		struct peerlink_config pc = {
			.node_id = cfg->node_id, .cluster = a->prefix, .listen = a->peer_listen,
			.ca = cfg->ca, .cert = cfg->cert, .key = cfg->key,
			.frame_max = cfg->peer_frame_max, .queue_max = cfg->peer_queue_max,
			.name_prefix = cfg->peer_name_prefix && cfg->peer_name_prefix[0] ?
				       cfg->peer_name_prefix : NULL,
		};
		struct peerlink_callbacks cb = {
			.recv = link_recv, .state = link_state, .resync = link_resync, .arg = a,
		};
		struct fanout_peer_ops po = {
			.send = peer_send, .send_many = peer_send_many, .rehome = peer_rehome, .arg = a,
		};

		if (strlen(a->prefix) > PEERFRAME_CLUSTER_MAX) {
			snprintf(err, errlen, "[array] prefix \"%s\": over %d characters, too long "
				 "to name the array on its peer links", a->prefix,
				 PEERFRAME_CLUSTER_MAX);
			goto out_free;
		}
		a->peers = peerlink_create(&pc, &cb, err, errlen);
		if (a->peers == NULL)
			goto out_free;
		fanout_peer_register(&po);	/* before the lcores run (boot order) */
		homes_configure(a->homes, true, cfg->failover_grace_ms);
	}
	/* An etcd that is starting or busy gets a few tries; nothing
	 * listening fails just the same, a second later. */
	for (int i = 0; i < START_TRIES; i++) {
		rc = join(a, false, why, sizeof(why));
		if (rc != -EHOSTUNREACH || i + 1 == START_TRIES)
			break;
		LOG(NOTICE, ARRAY, "%s: trying again", why);
		usleep(START_RETRY_MS * 1000);
	}
	if (rc == -EHOSTUNREACH) {
		snprintf(err, errlen, "[array] etcd = %s: %s. A node with [array] does not start "
			 "without etcd: start etcd, or remove [array] for a standalone node",
			 a->etcd_list, why);
		goto out_free;
	}
	if (rc != 0) {
		snprintf(err, errlen, "[array] %s", why);
		goto out_free;
	}
	rc = load_secret(a, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errlen, "[array] the array's secret: %s", why);
		goto out_leave;
	}
	a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->stop_fd == -1 || a->kick_fd == -1) {
		snprintf(err, errlen, "[array] eventfd: %s", strerror(errno));
		goto out_leave;
	}
	if (a->peers == NULL)
		LOG(WARNING, ARRAY, "[array] peer_listen is not set: this node has no peer links, so "
		    "its clients cannot join or post in rooms homed on other nodes (refused with "
		    "503); set peer_listen and ca on every node");
	place_refresh(a);		/* the first table, before the thread owns <sess> */
	rc = pthread_create(&a->thread, NULL, array_thread, a);
	if (rc != 0) {
		snprintf(err, errlen, "[array] thread: %s", strerror(rc));
		goto out_leave;
	}
	pthread_setname_np(a->thread, "parley-array");
	rc = pthread_create(&a->guard, NULL, array_guard_thread, a);
	if (rc != 0) {
		/* (stops the array thread through the same stop_fd) */
		a->running = true;
		a->guard_off = true;
		snprintf(err, errlen, "[array] guard thread: %s", strerror(rc));
		goto out_leave;
	}
	pthread_setname_np(a->guard, "parley-lease");
	a->running = true;
	placement_set(decide, a);	/* before the lcores run (array.h) */
	LOG(NOTICE, ARRAY, "in the array as %s (etcd %s, lease %llx, %u s)", a->key,
	    etcd_endpoint(a->sess), (unsigned long long)a->lease, cfg->lease_ttl_s);
	return a;

out_leave:
	/* array_stop() below revokes the lease. */
out_free:
	array_stop(a);
	return NULL;
}

void
array_stop(struct array *a)
{
	static const uint64_t one = 1;
	char err[1024];

	if (a == NULL)
		return;
	if (a->running) {
		placement_set(NULL, NULL);	/* the lcores have returned */
		if (write(a->stop_fd, &one, sizeof(one)) == -1)
			LOG(ERR, ARRAY, "stop: %s", strerror(errno));
		pthread_join(a->thread, NULL);
		if (!a->guard_off)
			pthread_join(a->guard, NULL);
	}
	if (a->peers != NULL) {
		/* The lcores have returned; what the fan-out still finishes at
		 * shutdown (fanout_quiesce) sends nothing any more. */
		struct fanout_peer_ops none = { 0 };

		fanout_peer_register(&none);
	}
	peerlink_destroy(a->peers);
	if (a->lease != 0) {
		if (etcd_lease_revoke(a->sess, a->lease, err, sizeof(err)) == 0)
			LOG(NOTICE, ARRAY, "left the array (lease revoked, %s deleted)", a->key);
		else
			LOG(WARNING, ARRAY, "leaving the array: %s (%s goes when its lease "
			    "expires)", err, a->key);
	}
	if (a->stop_fd != -1)
		close(a->stop_fd);
	if (a->kick_fd != -1)
		close(a->kick_fd);
	etcd_close(a->sess);
	etcd_close(a->query);
	pthread_mutex_destroy(&a->qlock);
	free(a->load);
	homes_free(a->homes);
	free(a->etcd_list);
	free(a->prefix);
	free(a->advertise_sip);
	free(a->peer_listen);
	free(a->web_url);
	free(a->web_cert);
	free(a);
}

void
array_kick(struct array *a)
{
	static const uint64_t one = 1;

	if (a != NULL && write(a->kick_fd, &one, sizeof(one)) == -1)
		LOG(DEBUG, ARRAY, "kick: %s", strerror(errno));
}

/* One node key as array_nodes() shows it: its record plus key and lease. */
static json_t *
node_json(const struct etcd_kv *kv)
{
	json_t *v = json_loadb(kv->value, kv->value_len, 0, NULL);
	char lease[24];

	if (!json_is_object(v)) {
		json_decref(v);
		v = json_pack("{s:s}", "error", "not a node record");
	}
	snprintf(lease, sizeof(lease), "%llx", (unsigned long long)kv->lease);
	json_object_set_new(v, "key", json_string(kv->key));
	json_object_set_new(v, "lease", json_string(lease));
	return v;
}

static int
by_node_id(const void *x, const void *y)
{
	json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "node_id"));
	json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "node_id"));

	return a < b ? -1 : a > b;
}

int
array_nodes(struct array *a, json_t **out, char *err, size_t errlen)
{
	char prefix[ARRAY_KEY_MAX], lease[24], why[1024];
	struct etcd_kvs kvs;
	json_t **v, *nodes;
	int rc;

	snprintf(prefix, sizeof(prefix), "%s/nodes/", a->prefix);
	pthread_mutex_lock(&a->qlock);
	rc = etcd_get(a->query, prefix, true, &kvs, why, sizeof(why));
	pthread_mutex_unlock(&a->qlock);
	v = calloc(kvs.n ? kvs.n : 1, sizeof(*v));
	if (v == NULL) {
		etcd_kvs_free(&kvs);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < kvs.n; i++)
		v[i] = node_json(&kvs.kv[i]);
	qsort(v, kvs.n, sizeof(*v), by_node_id);
	/* Without etcd, this node's own side still tells the operator
	 * something: "nodes" is null and etcd.error says why. */
	nodes = rc == 0 ? json_array() : json_null();
	for (size_t i = 0; i < kvs.n; i++)
		json_array_append_new(nodes, v[i]);
	free(v);
	snprintf(lease, sizeof(lease), "%llx", (unsigned long long)atomic_load(&a->lease_pub));
	*out = json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:b, s:I, s:I, s:I}, s:o}",
			 "prefix", a->prefix, "node_id", (int)a->conf.node_id,
			 "etcd", "state", atomic_load(&a->lost) ? "lost" : "ok",
			 "endpoints", a->etcd_list, "lease", lease,
			 "registered", atomic_load(&a->registered),
			 "lost_count", (json_int_t)atomic_load(&a->lost_count),
			 "errors", (json_int_t)atomic_load(&a->errors),
			 "revision", (json_int_t)kvs.revision,
			 "nodes", nodes);
	json_object_set_new(*out, "peers", a->peers ? links_json(a) : json_null());
	json_object_set_new(*out, "homes", homes_json(a->homes));
	if (rc != 0)
		json_object_set_new(json_object_get(*out, "etcd"), "error", json_string(why));
	etcd_kvs_free(&kvs);
	return 0;
}

int64_t
array_lease(const struct array *a)
{
	return atomic_load(&a->lease_pub);
}

uint32_t
array_node_id(const struct array *a)
{
	return a->conf.node_id;
}
