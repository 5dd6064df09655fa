/* Rooms across the nodes of an array (dataplane/chat/fanout_peer.h) end to
 * end: three real parleyd nodes with peer links (mutual TLS, a cluster CA
 * made here), room homes through a real etcd, Group Chat clients over TLS
 * on every node. Posts, joins and parts reach every member on every node
 * once, in one order per room; history is the same from every node. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/gcclient.h"
#include "tests/array/arraykit.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/ctlrun.h"

#define NROOMS	3
#define NCLI	60
#define POSTS	3		/* by each client */
#define MARK	"sip:example.com;parley-placed"

static char pki[64];

static void
setup(void)
{
	ak_pki_make(pki, sizeof(pki));
	ak_setup();
}

static void
teardown(void)
{
	ak_teardown();
	run("rm -rf %s", pki);
}

TestSuite(xnode, .init = setup, .fini = teardown, .timeout = 240);

static const char rooms_conf[] = "[room:X0]\nprivacy = open\n[room:X1]\nprivacy = open\n"
				 "[room:X2]\nprivacy = open\n";

/* Three nodes with the same rooms, linked, every room homed. */
static void
three_nodes(void)
{
	for (int i = 0; i < AK_NODES; i++)
		ak_peer_node_start(i, pki, rooms_conf, NULL);
	ak_wait_links(7);
	for (int i = 0; i < AK_NODES; i++)
		ak_wait_homed(i);
}

/* user<u> signed in at node <i>, served there (the placement mark). */
static struct gc *
open_at(int i, int u)
{
	char aor[64], err[256];
	struct gc *g;

	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	g = gc_open_to("127.0.0.1", ak_node[i].port, aor, "pw", MARK, err, sizeof(err));
	if (g == NULL)
		run("tail -n 30 %s >&2", ak_node[i].log);
	cr_assert_not_null(g, "%s at node %d: %s", aor, i + 1, err);
	return g;
}

/* Everything a client received, in order (bodies owned). */
struct inbox {
	char	**v;
	size_t	n, cap;
};

static void
drain(struct gc *g, struct inbox *in, int ms)
{
	char *b;

	gc_pump(g, ms);
	while ((b = gc_next(g)) != NULL) {
		if (in->n == in->cap) {
			in->cap = in->cap ? in->cap * 2 : 64;
			in->v = realloc(in->v, in->cap * sizeof(*in->v));
			cr_assert_not_null(in->v);
		}
		in->v[in->n++] = b;
	}
}

static int
count2(const struct inbox *in, const char *a, const char *b)
{
	int n = 0;

	for (size_t i = 0; i < in->n; i++)
		if (strstr(in->v[i], a) && strstr(in->v[i], b))
			n++;
	return n;
}

static void
inbox_free(struct inbox *in)
{
	for (size_t i = 0; i < in->n; i++)
		free(in->v[i]);
	free(in->v);
}

/* The post texts ("p-U-K.") in <in> for room <uri>, in order, into <out>. */
static int
post_order(const struct inbox *in, const char *uri, char (*out)[16], int max)
{
	int n = 0;

	for (size_t i = 0; i < in->n && n < max; i++) {
		const char *p = strstr(in->v[i], "<chat>p-"), *e;

		if (p == NULL || strstr(in->v[i], "<grpchat") == NULL || !strstr(in->v[i], uri))
			continue;
		p += 6;
		e = strstr(p, "</chat>");
		cr_assert_not_null(e);
		snprintf(out[n++], sizeof(out[0]), "%.*s", (int)(e - p), p);
	}
	return n;
}

struct poster {
	struct gc	**g;
	char		(*uri)[200];
	int		from, to;
	int		failed;
};

/* Clients <from>..<to>-1 post POSTS times each, interleaved. */
static void *
post_main(void *arg)
{
	struct poster *p = arg;

	for (int k = 0; k < POSTS; k++)
		for (int u = p->from; u < p->to; u++) {
			char text[32];

			snprintf(text, sizeof(text), "p-%d-%d.", u, k);
			if (gc_post(p->g[u], p->uri[(u / 3) % NROOMS], text, NULL) != 200)
				p->failed++;
		}
	return NULL;
}

static int
room_of(int u)
{
	return (u / 3) % NROOMS;
}

/* Client u sits on node u % 3 and in room (u / 3) % 3: every room has
 * members on every node. */
Test(xnode, sixty_clients_three_rooms_one_order, .timeout = 240)
{
	static struct gc *g[NCLI];
	static struct inbox in[NCLI];
	static char order[NROOMS][NCLI * POSTS][16];
	static char mine[NCLI * POSTS + 8][16];
	char uri[NROOMS][200], data[700], name[8];
	struct poster ps[6];
	pthread_t th[6];
	int nord[NROOMS] = { 0 };
	json_t *st;
	long long relays = 0, fwd = 0;

	three_nodes();
	for (int u = 0; u < NCLI; u++)
		g[u] = open_at(u % AK_NODES, u);
	for (int r = 0; r < NROOMS; r++) {
		snprintf(name, sizeof(name), "X%d", r);
		cr_assert(kit_room_uri(g[0], name, uri[r], sizeof(uri[r])), "no room %s", name);
	}
	/* Joins, one after another: each member hears of every later joiner
	 * once, whichever node either is on. */
	for (int u = 0; u < NCLI; u++) {
		char *m = gc_join(g[u], uri[room_of(u)], 10000);

		cr_assert_eq(kit_resp_code(m), 200, "user%d: %s", u, m ? m : "(no rpl:join)");
		/* rpl:join lists everyone present, the joiner included */
		for (int v = 0; v <= u; v++)
			if (room_of(v) == room_of(u)) {
				char who[64];

				snprintf(who, sizeof(who), "uri=\"sip:user%d@example.com\"", v);
				cr_assert(strstr(m, who) != NULL, "user%d's rpl:join lacks user%d: %s",
					  u, v, m);
			}
		free(m);
	}
	for (int u = 0; u < NCLI; u++)
		drain(g[u], &in[u], 0);
	usleep(500000);
	for (int u = 0; u < NCLI; u++) {
		drain(g[u], &in[u], 50);
		for (int v = 0; v < NCLI; v++) {
			char who[64];
			int n;

			if (room_of(v) != room_of(u) || v == u)
				continue;
			snprintf(who, sizeof(who), "uri=\"sip:user%d@example.com\"", v);
			n = count2(&in[u], "ntc:join", who);
			cr_assert_eq(n, v > u ? 1 : 0, "user%d (node %d) got %d ntc:join of user%d "
				     "(node %d)", u, u % 3 + 1, n, v, v % 3 + 1);
		}
	}

	/* Everyone posts at once. */
	for (int t = 0; t < 6; t++) {
		ps[t] = (struct poster){ .g = g, .uri = uri, .from = t * NCLI / 6,
					 .to = (t + 1) * NCLI / 6 };
		pthread_create(&th[t], NULL, post_main, &ps[t]);
	}
	for (int t = 0; t < 6; t++) {
		pthread_join(th[t], NULL);
		cr_assert_eq(ps[t].failed, 0, "%d posts refused", ps[t].failed);
	}
	/* Every member gets every post of its room once, in the same order
	 * as every other member, on every node. */
	for (int u = 0; u < NCLI; u++) {
		int want = 0, n;

		for (int v = 0; v < NCLI; v++)
			want += room_of(v) == room_of(u) ? POSTS : 0;

		for (int t = 0; t < 100; t++) {
			drain(g[u], &in[u], 50);
			if (post_order(&in[u], uri[room_of(u)], mine, NCLI * POSTS + 8) >= want)
				break;
		}
		n = post_order(&in[u], uri[room_of(u)], mine, NCLI * POSTS + 8);
		for (int i = 0; i < n; i++)
			for (int j = i + 1; j < n; j++)
				cr_assert_str_neq(mine[i], mine[j], "user%d got %s twice", u, mine[i]);
		cr_assert_eq(n, want, "user%d (node %d) got %d of %d posts", u, u % 3 + 1, n, want);
		for (int i = 0; i < n; i++)
			for (int j = i + 1; j < n; j++)
				cr_assert_str_neq(mine[i], mine[j], "user%d got %s twice", u, mine[i]);
		if (nord[room_of(u)] == 0) {
			memcpy(order[room_of(u)], mine, sizeof(mine[0]) * (size_t)n);
			nord[room_of(u)] = n;
		}
		for (int i = 0; i < n; i++)
			cr_assert_str_eq(mine[i], order[room_of(u)][i], "user%d (node %d): post %d is "
					 "%s, another member's is %s", u, u % 3 + 1, i, mine[i],
					 order[room_of(u)][i]);
	}
	/* History from every node: the same sequence. */
	for (int i = 0; i < AK_NODES; i++)
		for (int r = 0; r < NROOMS; r++) {
			struct inbox h = { 0 };
			char *m;
			int n, u = i;	/* a client on node i */

			while (room_of(u) != r)
				u += 3;
			snprintf(data, sizeof(data), "<chanib uri=\"%s\"/><bcq><last cnt=\"%d\"/></bcq>",
				 uri[r], nord[r]);
			cr_assert_eq(gc_cmd(g[u], "bccontext", data), 200);
			m = gc_wait(g[u], 10000, "rpl:bccontext", NULL);
			cr_assert_eq(kit_resp_code(m), 200, "node %d, room X%d: %s", i + 1, r,
				     m ? m : "(none)");
			/* <msg>...<chat>p-U-K.</chat></msg>, oldest first */
			for (const char *p = m; (p = strstr(p, "<chat>p-")) != NULL; p++) {
				const char *e = strstr(p, "</chat>");

				cr_assert_not_null(e);
				h.v = realloc(h.v, (h.n + 1) * sizeof(*h.v));
				h.v[h.n++] = strndup(p + 6, (size_t)(e - p - 6));
			}
			free(m);
			n = (int)h.n;
			cr_assert_eq(n, nord[r], "node %d, room X%d: history has %d posts", i + 1, r, n);
			for (int k = 0; k < n; k++)
				cr_assert_str_eq(h.v[k], order[r][k], "node %d, room X%d: history post %d",
						 i + 1, r, k);
			inbox_free(&h);
		}

	/* Parts: users 0, 1, 2 (one per node, all in X0) leave; every other
	 * member of X0, on every node, hears of each once. */
	for (int u = 0; u < 3; u++) {
		char *m;

		snprintf(data, sizeof(data), "<chanib uri=\"%s\"/>", uri[0]);
		cr_assert_eq(gc_cmd(g[u], "part", data), 200);
		m = gc_wait(g[u], 5000, "rpl:part", NULL);
		cr_assert_eq(kit_resp_code(m), 200);
		free(m);
	}
	usleep(500000);
	for (int u = 3; u < NCLI; u++) {
		if (room_of(u) != 0)
			continue;
		drain(g[u], &in[u], 50);
		for (int v = 0; v < 3; v++) {
			char who[64];
			int n = 0;

			snprintf(who, sizeof(who), "uri=\"sip:user%d@example.com\"", v);
			for (int t = 0; t < 20 && (n = count2(&in[u], "ntc:part", who)) == 0; t++)
				drain(g[u], &in[u], 100);
			cr_assert_eq(n, 1, "user%d (node %d) got %d ntc:part of user%d", u, u % 3 + 1,
				     n, v);
		}
	}
	/* The counters show the relaying. */
	for (int i = 0; i < AK_NODES; i++) {
		st = ctl_ok(&ak_node[i], "stats");
		relays += jint(st, "total.peer_relays_out");
		fwd += jint(st, "total.peer_posts_forwarded");
		json_decref(st);
	}
	cr_assert_gt(relays, 0);
	cr_assert_gt(fwd, 0);
	fprintf(stderr, "xnode: %lld relays, %lld forwarded posts\n", relays, fwd);
	for (int u = 0; u < NCLI; u++) {
		gc_abort(g[u]);
		inbox_free(&in[u]);
	}
}

/* The uri of a room of the catalog homed on node <home> (1-based) as node
 * <on> sees it, into <uri>; its epoch. */
static long long
room_homed_on(int on, int home, char *uri, size_t cap)
{
	json_t *a = ak_array(on), *rooms = ctl_ok(&ak_node[on], "rooms"), *h, *r;
	long long epoch = 0;
	size_t k, j;

	uri[0] = '\0';
	json_array_foreach(jget(a, "homes.rooms"), k, h) {
		if (json_integer_value(json_object_get(h, "node")) != home)
			continue;
		json_array_foreach(jget(rooms, "rooms"), j, r)
			if (!strcmp(json_string_value(json_object_get(r, "id")),
				    json_string_value(json_object_get(h, "room"))) &&
			    !strncmp(json_string_value(json_object_get(r, "name")), "X", 1)) {
				snprintf(uri, cap, "%s", json_string_value(json_object_get(r, "uri")));
				epoch = json_integer_value(json_object_get(h, "epoch"));
			}
		if (uri[0] != '\0')
			break;
	}
	json_decref(a);
	json_decref(rooms);
	cr_assert_neq(uri[0], '\0', "no X room homed on node %d", home);
	return epoch;
}

static bool
link_is(int on, int id, const char *state)
{
	json_t *a = ak_array(on), *l;
	bool is = false;
	size_t k;

	json_array_foreach(jget(a, "peers.links"), k, l)
		if (json_integer_value(json_object_get(l, "node_id")) == id)
			is = !strcmp(json_string_value(json_object_get(l, "state")), state);
	json_decref(a);
	return is;
}

/* A member's node loses its link to the room's home (stopped longer than
 * the links' dead time, shorter than its lease): what was posted meanwhile
 * reaches it when the link is back, in order, once, and posts go on. */
Test(xnode, resync_after_link_loss, .timeout = 180)
{
	char uri[200], text[32];
	struct gc *a, *b;
	json_t *st;
	char *m;

	for (int i = 0; i < 2; i++)
		ak_peer_node_start(i, pki, rooms_conf, NULL);
	ak_wait_links(3);
	ak_wait_homed(0);
	ak_wait_homed(1);
	room_homed_on(0, 1, uri, sizeof(uri));
	a = open_at(0, 1);
	b = open_at(1, 2);
	kit_join_ok(a, uri);
	kit_join_ok(b, uri);
	cr_assert_eq(gc_post(a, uri, "r-0.", NULL), 200);
	m = gc_wait(b, 5000, ">r-0.<", NULL);
	cr_assert_not_null(m, "node 2's member did not get r-0");
	free(m);

	/* Node 2 stops: node 1 finds the link dead (5 s), posts go on. */
	server_signal(&ak_node[1], SIGSTOP);
	for (int t = 0; t < 150 && link_is(0, 2, "up"); t++)
		usleep(100000);
	cr_assert(!link_is(0, 2, "up"), "node 1 still has its link to the stopped node 2");
	for (int k = 1; k <= 5; k++) {
		snprintf(text, sizeof(text), "r-%d.", k);
		cr_assert_eq(gc_post(a, uri, text, NULL), 200);
	}
	server_signal(&ak_node[1], SIGCONT);
	/* Back: the missed posts, in order, once. */
	{
		struct inbox in = { 0 };
		int n = 0;

		for (int t = 0; t < 200 && n < 5; t++) {
			drain(b, &in, 100);
			n = 0;
			for (size_t i = 0; i < in.n; i++)
				n += strstr(in.v[i], ">r-") != NULL;
		}
		if (n < 5)
			run("grep -i 'peer\\|FANOUT' %s | tail -20 >&2", ak_node[1].log);
		cr_assert_eq(n, 5, "node 2's member got %d of the 5 posts it missed", n);
		n = 0;
		for (size_t i = 0; i < in.n; i++) {
			if (strstr(in.v[i], ">r-") == NULL)
				continue;
			snprintf(text, sizeof(text), ">r-%d.<", ++n);
			cr_assert(strstr(in.v[i], text) != NULL, "post %d after the resync: %s", n,
				  in.v[i]);
		}
		inbox_free(&in);
	}
	cr_assert_eq(gc_post(a, uri, "r-6.", NULL), 200);
	m = gc_wait(b, 10000, ">r-6.<", NULL);
	cr_assert_not_null(m, "no post after the resync");
	free(m);
	gc_pump(b, 300);
	cr_assert_eq(gc_count(b, ">r-"), 0, "a post arrived twice");
	/* ... and posts from node 2 go to the home again. */
	cr_assert_eq(gc_post(b, uri, "r-7.", NULL), 200);
	m = gc_wait(a, 10000, ">r-7.<", NULL);
	cr_assert_not_null(m, "node 2's post after the resync never reached node 1");
	free(m);
	st = ctl_ok(&ak_node[1], "stats");
	cr_assert_geq(jint(st, "total.peer_resyncs"), 1);
	cr_assert_geq(jint(st, "total.peer_resync_posts"), 5);
	json_decref(st);
	gc_abort(a);
	gc_abort(b);
}
