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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "dataplane/peer/peerframe.h"
#include "perf/gcclient.h"
#include "storage/catalog.h"
#include "tests/array/akchat.h"
#include "tests/array/arraykit.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/ctlrun.h"

#define NROOMS	3
#define NCLI	60
#define POSTS	3		/* by each client */

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
		g[u] = akchat_open(u % AK_NODES, u);
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

/* An X room of the catalog and its home as node <on> sees them: the uri
 * into <uri>, the epoch into *<epoch> (may be NULL); its home node (1-based).
 * Homes spread by load, so any node may home none of the three. */
static int
room_homed(int on, char *uri, size_t cap, long long *epoch)
{
	json_t *a = ak_array(on), *rooms = ctl_ok(&ak_node[on], "rooms"), *h, *r;
	int home = 0;
	size_t k, j;

	uri[0] = '\0';
	json_array_foreach(jget(a, "homes.rooms"), k, h) {
		json_array_foreach(jget(rooms, "rooms"), j, r)
			if (!strcmp(json_string_value(json_object_get(r, "id")),
				    json_string_value(json_object_get(h, "room"))) &&
			    !strncmp(json_string_value(json_object_get(r, "name")), "X", 1)) {
				snprintf(uri, cap, "%s", json_string_value(json_object_get(r, "uri")));
				home = (int)json_integer_value(json_object_get(h, "node"));
				if (epoch != NULL)
					*epoch = json_integer_value(json_object_get(h, "epoch"));
			}
		if (uri[0] != '\0')
			break;
	}
	json_decref(a);
	json_decref(rooms);
	cr_assert(uri[0] != '\0' && home > 0, "no X room with a home");
	return home;
}

/* The replica node id of room <uri> as node <on> reads it (0: none). */
static int
room_replica(int on, const char *uri)
{
	json_t *a = ak_array(on), *h;
	const char *id = strrchr(uri, '/') + 1;
	int rep = 0;
	size_t k;

	json_array_foreach(jget(a, "homes.rooms"), k, h)
		if (!strcmp(json_string_value(json_object_get(h, "room")), id))
			rep = (int)json_integer_value(json_object_get(h, "replica"));
	json_decref(a);
	return rep;
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
 * reaches it when the link is back, in order, once, and posts go on. Three
 * nodes: the member's node is neither the room's home nor its replica (a
 * post is answered only once the replica holds it: test_failover.c). */
Test(xnode, resync_after_link_loss, .timeout = 180)
{
	char uri[200], text[32];
	int home, other, rep;
	struct gc *a, *b;
	json_t *st;
	char *m;

	for (int i = 0; i < 3; i++)
		ak_peer_node_start(i, pki, rooms_conf, NULL);
	ak_wait_links(7);
	for (int i = 0; i < 3; i++)
		ak_wait_homed(i);
	home = room_homed(0, uri, sizeof(uri), NULL);
	for (int t = 0; t < 100 && room_replica(0, uri) <= 0; t++)
		usleep(100000);
	rep = room_replica(0, uri);
	cr_assert(rep > 0 && rep <= 3 && rep != home, "room %s (home node %d) has replica %d",
		  uri, home, rep);
	other = 6 - home - rep;		/* the member's node: neither home nor replica */
	a = akchat_open(home - 1, 1);
	b = akchat_open(other - 1, 2);
	kit_join_ok(a, uri);
	kit_join_ok(b, uri);
	cr_assert_eq(gc_post(a, uri, "r-0.", NULL), 200);
	m = gc_wait(b, 5000, ">r-0.<", NULL);
	cr_assert_not_null(m, "the member's node's member did not get r-0");
	free(m);

	/* The member's node stops: the home finds the link dead (5 s), posts
	 * go on. */
	server_signal(&ak_node[other - 1], SIGSTOP);
	for (int t = 0; t < 150 && link_is(home - 1, other, "up"); t++)
		usleep(100000);
	cr_assert(!link_is(home - 1, other, "up"), "the home still has its link to the stopped "
		  "node");
	for (int k = 1; k <= 5; k++) {
		snprintf(text, sizeof(text), "r-%d.", k);
		cr_assert_eq(gc_post(a, uri, text, NULL), 200);
	}
	server_signal(&ak_node[other - 1], SIGCONT);
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
			run("grep -i 'peer\\|FANOUT' %s | tail -20 >&2", ak_node[other - 1].log);
		cr_assert_eq(n, 5, "node %d's member got %d of the 5 posts it missed", other, n);
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
	/* ... and posts from the member's node go to the home again. */
	cr_assert_eq(gc_post(b, uri, "r-7.", NULL), 200);
	m = gc_wait(a, 10000, ">r-7.<", NULL);
	cr_assert_not_null(m, "a post from node %d after the resync never reached the home", other);
	free(m);
	st = ctl_ok(&ak_node[other - 1], "stats");
	cr_assert_geq(jint(st, "total.peer_resyncs"), 1);
	cr_assert_geq(jint(st, "total.peer_resync_posts"), 5);
	json_decref(st);
	gc_abort(a);
	gc_abort(b);
}

/* ---- a fake node 4 speaking raw peer frames ----------------------------- */

struct fakelink {
	int		fd;
	SSL		*ssl;
	uint32_t	node;		/* the real node at the other end */
	uint8_t		buf[1 << 16];
	size_t		len;
	uint8_t		cur[1 << 16];	/* the frame fake_recv returned */
};

static void
fake_send(struct fakelink *l, struct peerframe *f)
{
	uint8_t out[4096];
	ssize_t n;

	f->node = 4;
	n = peerframe_encode(f, out, sizeof(out));
	cr_assert_gt(n, 0);
	cr_assert_eq(SSL_write(l->ssl, out, (int)n), n);
}

/* The next frame of <type> from <l> (PINGs answered on the way), into <f>
 * (pointing into l->cur until the next call). False after <ms>. */
static bool
fake_recv(struct fakelink *l, unsigned type, struct peerframe *f, int ms)
{
	for (int waited = 0; waited < ms;) {
		ssize_t got = peerframe_decode(l->buf, l->len, sizeof(l->buf), f);
		int n;

		cr_assert_geq(got, 0, "node %u sent a bad frame", l->node);
		if (got > 0) {
			memcpy(l->cur, l->buf, (size_t)got);
			memmove(l->buf, l->buf + got, l->len - (size_t)got);
			l->len -= (size_t)got;
			cr_assert_eq(peerframe_decode(l->cur, (size_t)got, sizeof(l->cur), f), got);
			if (f->type == PEERFRAME_PING) {
				struct peerframe pong = { .type = PEERFRAME_PONG, .ref = f->ref };

				fake_send(l, &pong);
			}
			if (f->type == type)
				return true;
			continue;
		}
		n = SSL_read(l->ssl, l->buf + l->len, (int)(sizeof(l->buf) - l->len));
		if (n > 0)
			l->len += (size_t)n;
		else
			waited += 200;	/* SO_RCVTIMEO */
	}
	return false;
}

/* Node 4 in etcd (draining: no client, no home goes to it), listening on
 * a peer port with its certificate of the cluster CA: nodes 1 and 2 (lower
 * ids) dial it; both links, HELLOs exchanged, in <l>[0] (node 1) and [1]. */
static void
fake_node(struct fakelink *l)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	uint16_t port = server_free_port();
	char path[128], path2[128];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	snprintf(path, sizeof(path), "%s/node4.pem", pki);
	snprintf(path2, sizeof(path2), "%s/node4.key", pki);
	cr_assert_eq(SSL_CTX_use_certificate_chain_file(ctx, path), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, path2, SSL_FILETYPE_PEM), 1);
	snprintf(path, sizeof(path), "%s/ca.pem", pki);
	cr_assert_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons(port);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	cr_assert_eq(run("ETCDCTL_API=3 etcdctl --endpoints=%s put /parley/example.com/nodes/4 "
			 "'{\"node_id\":4,\"sip\":\"127.0.0.1:9\",\"peer\":\"127.0.0.1:%u\","
			 "\"conns\":0,\"draining\":true,\"lcores\":[]}' >/dev/null", ak_etcd.url,
			 port), 0);
	for (int k = 0; k < 2; k++) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		struct peerframe f = { .type = PEERFRAME_HELLO }, h;
		const char *cluster = "/parley/example.com";
		struct fakelink x = { 0 };
		int fd;

		cr_assert_eq(poll(&p, 1, 20000), 1, "no node dialled node 4");
		fd = accept(lfd, NULL, NULL);
		cr_assert_geq(fd, 0);
		x.fd = fd;
		x.ssl = SSL_new(ctx);
		SSL_set_fd(x.ssl, fd);
		cr_assert_eq(SSL_accept(x.ssl), 1, "TLS with a node failed");
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		f.u.hello.proto = 1;
		f.u.hello.cluster = cluster;
		f.u.hello.cluster_len = (uint16_t)strlen(cluster);
		fake_send(&x, &f);
		cr_assert(fake_recv(&x, PEERFRAME_HELLO, &h, 5000), "no HELLO");
		x.node = h.node;
		cr_assert(x.node == 1 || x.node == 2, "HELLO from node %u", x.node);
		l[x.node - 1] = x;
		memcpy(l[x.node - 1].buf, x.buf, x.len);
	}
	close(lfd);
}

static void
fake_post(struct fakelink *l, const uint8_t room[16], uint64_t epoch, uint64_t ref,
	  const char *text)
{
	char inner[64];
	struct peerframe f = { .type = PEERFRAME_POST_FWD, .epoch = epoch, .ref = ref };

	snprintf(inner, sizeof(inner), "<chat>%s</chat>", text);
	memcpy(f.room, room, 16);
	f.u.post = (struct peerframe_post){
		.time_ms = 1, .author = "sip:user7@example.com", .author_len = 21,
		.body = (const uint8_t *)inner, .body_len = (uint32_t)strlen(inner),
		.text = (const uint8_t *)text, .text_len = (uint32_t)strlen(text),
	};
	fake_send(l, &f);
}

/* Posts forwarded with a stale epoch, or to a node that does not home the
 * room, are refused with the code the sender acts on, and no member ever
 * sees them; the same post with the right epoch at the home is sequenced
 * and reaches every member once. */
Test(xnode, stale_epoch_and_wrong_home_refused, .timeout = 180)
{
	static struct fakelink l[2];
	struct peerframe f;
	char uri[200], id[64];
	uint8_t raw[16];
	long long epoch;
	int home;
	struct gc *a, *b;
	json_t *st;
	char *m;

	for (int i = 0; i < 2; i++)
		ak_peer_node_start(i, pki, rooms_conf, NULL);
	ak_wait_links(3);
	ak_wait_homed(0);
	ak_wait_homed(1);
	home = room_homed(0, uri, sizeof(uri), &epoch);
	snprintf(id, sizeof(id), "%s", strrchr(uri, '/') + 1);
	cr_assert_eq(catalog_id_pack(id, raw), 0);
	a = akchat_open(0, 1);
	b = akchat_open(1, 2);
	kit_join_ok(a, uri);
	kit_join_ok(b, uri);
	fake_node(l);

	/* l[home - 1]: the link with the room's home; the other node's does
	 * not home it. */
	fake_post(&l[home - 1], raw, (uint64_t)epoch - 1, 11, "stale-1.");
	cr_assert(fake_recv(&l[home - 1], PEERFRAME_POST_ACK, &f, 5000), "no POST_ACK from the home");
	cr_assert_eq(f.ref, 11);
	cr_assert_str_eq(peerframe_code_name(f.code), "STALE_EPOCH");
	fake_post(&l[2 - home], raw, (uint64_t)epoch, 12, "wrong-1.");
	cr_assert(fake_recv(&l[2 - home], PEERFRAME_POST_ACK, &f, 5000), "no POST_ACK from node %d",
		  3 - home);
	cr_assert_eq(f.ref, 12);
	cr_assert_str_eq(peerframe_code_name(f.code), "WRONG_HOME");
	fake_post(&l[home - 1], raw, (uint64_t)epoch, 13, "good-1.");
	cr_assert(fake_recv(&l[home - 1], PEERFRAME_POST_ACK, &f, 5000), "no POST_ACK from the home");
	cr_assert_eq(f.ref, 13);
	cr_assert_str_eq(peerframe_code_name(f.code), "OK");
	cr_assert_gt(f.seq, 0);
	for (int k = 0; k < 2; k++) {
		struct gc *g = k ? b : a;

		m = gc_wait(g, 5000, ">good-1.<", NULL);
		cr_assert_not_null(m, "node %d's member did not get the good post", k + 1);
		cr_assert(strstr(m, "sip:user7@example.com") != NULL, "%s", m);
		free(m);
		gc_pump(g, 300);
		cr_assert_eq(gc_count(g, ">good-1.<"), 0, "node %d's member got it twice", k + 1);
		cr_assert_eq(gc_count(g, "stale-1."), 0, "a refused post reached node %d", k + 1);
		cr_assert_eq(gc_count(g, "wrong-1."), 0, "a refused post reached node %d", k + 1);
	}
	for (int i = 0; i < 2; i++) {
		st = ctl_ok(&ak_node[i], "stats");
		cr_assert_geq(jint(st, "total.peer_refused"), 1, "node %d counted no refusal", i + 1);
		json_decref(st);
	}
	for (int k = 0; k < 2; k++) {
		SSL_free(l[k].ssl);
		close(l[k].fd);
	}
	gc_abort(a);
	gc_abort(b);
}

/* The node in node <on>'s view that homes the room with <uri>, 0 when none. */
static int
home_of_room(int on, const char *uri)
{
	json_t *a = ak_array(on), *h;
	const char *id = strrchr(uri, '/') + 1;
	int node = 0;
	size_t k;

	json_array_foreach(jget(a, "homes.rooms"), k, h)
		if (!strcmp(json_string_value(json_object_get(h, "room")), id))
			node = (int)json_integer_value(json_object_get(h, "node"));
	json_decref(a);
	return node;
}

/* Posts <text> by <g>, retrying while the room's home is being resolved
 * (503); the SIP status of the last try. */
static int
post_retrying(struct gc *g, const char *uri, const char *text)
{
	for (int t = 0; t < 40; t++) {
		char *m;
		int st = gc_post(g, uri, text, NULL), code;

		if (st != 200)
			return st;
		m = gc_wait(g, 300, "rpl:grpchat", NULL);
		code = kit_resp_code(m);
		free(m);
		if (code != 503)
			return 200;
		usleep(250000);
	}
	return -1;
}

/* The room's home node stops: the room gets a new home among the others,
 * the members there and elsewhere follow it (resync with the new home), and
 * posts reach every member once again. */
Test(xnode, home_moves_members_follow, .timeout = 180)
{
	char uri[200], text[32];
	struct gc *a, *b;
	int home = 0, gone;
	char *m;

	three_nodes();
	gone = room_homed(0, uri, sizeof(uri), NULL);
	a = akchat_open(gone % 3, 1);		/* on the two other nodes */
	b = akchat_open((gone + 1) % 3, 2);
	kit_join_ok(a, uri);
	kit_join_ok(b, uri);
	cr_assert_eq(gc_post(a, uri, "h-0.", NULL), 200);
	m = gc_wait(b, 5000, ">h-0.<", NULL);
	cr_assert_not_null(m);
	free(m);

	cr_assert_eq(server_stop(&ak_node[gone - 1]), 0);
	ak_up[gone - 1] = false;
	for (int t = 0; t < 100; t++) {
		home = home_of_room(gone % 3, uri);
		if (home != 0 && home != gone)
			break;
		usleep(100000);
	}
	cr_assert(home != 0 && home != gone, "the room has no new home (%d)", home);
	usleep(2500000);	/* the rooms' tables have it, the members resynced */
	for (int k = 1; k <= 3; k++) {
		struct gc *from = k % 2 ? a : b, *to = k % 2 ? b : a;

		snprintf(text, sizeof(text), "h-%d.", k);
		cr_assert_eq(post_retrying(from, uri, text), 200);
		snprintf(text, sizeof(text), ">h-%d.<", k);
		m = gc_wait(to, 10000, text, NULL);
		cr_assert_not_null(m, "%s never arrived after the home moved to node %d", text, home);
		free(m);
		gc_pump(to, 300);
		cr_assert_eq(gc_count(to, text), 0, "%s arrived twice", text);
	}
	gc_abort(a);
	gc_abort(b);
}

/* One user signed in on two nodes is announced once to a member on a third:
 * one ntc:join, no ntc:part while either dialog stays, one when both left. */
Test(xnode, one_user_on_two_nodes_announced_once, .timeout = 180)
{
	char uri[200], data[300];
	struct gc *watch, *u1, *u2;
	char *m;

	three_nodes();
	room_homed(0, uri, sizeof(uri), NULL);
	watch = akchat_open(2, 9);
	kit_join_ok(watch, uri);
	u1 = akchat_open(0, 5);
	u2 = akchat_open(1, 5);
	kit_join_ok(u1, uri);
	kit_join_ok(u2, uri);
	m = gc_wait(watch, 5000, "ntc:join", "\"sip:user5@example.com\"", NULL);
	cr_assert_not_null(m, "no ntc:join of user5 on node 3");
	free(m);
	m = gc_wait(watch, 1000, "ntc:join", "\"sip:user5@example.com\"", NULL);
	cr_assert_null(m, "user5 announced twice: %s", m);
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/>", uri);
	cr_assert_eq(gc_cmd(u1, "part", data), 200);
	m = gc_wait(watch, 1500, "ntc:part", "\"sip:user5@example.com\"", NULL);
	cr_assert_null(m, "user5 parted while still present on node 2: %s", m);
	cr_assert_eq(gc_cmd(u2, "part", data), 200);
	m = gc_wait(watch, 5000, "ntc:part", "\"sip:user5@example.com\"", NULL);
	cr_assert_not_null(m, "no ntc:part of user5 once both dialogs left");
	free(m);
	m = gc_wait(watch, 1000, "ntc:part", "\"sip:user5@example.com\"", NULL);
	cr_assert_null(m, "user5 parted twice: %s", m);
	gc_abort(u1);
	gc_abort(u2);
	gc_abort(watch);
}

/* A node killed outright: once it is gone from the array (its lease ran
 * out), the room's home drops its members and tells the others, once. */
Test(xnode, killed_node_members_part, .timeout = 180)
{
	char uri[200];
	struct gc *watch, *leaver;
	int home, killed, seen;
	char *m;

	three_nodes();
	home = room_homed(0, uri, sizeof(uri), NULL);
	killed = home % 3 + 1;			/* the two nodes that do not home it */
	seen = killed % 3 + 1;
	watch = akchat_open(seen - 1, 3);
	leaver = akchat_open(killed - 1, 4);
	kit_join_ok(watch, uri);
	kit_join_ok(leaver, uri);
	m = gc_wait(watch, 5000, "ntc:join", "\"sip:user4@example.com\"", NULL);
	cr_assert_not_null(m, "node %d's member never heard node %d's join", seen, killed);
	free(m);

	server_kill(&ak_node[killed - 1], SIGKILL);
	ak_up[killed - 1] = false;
	run("rm -rf %s", ak_node[killed - 1].dir);
	m = gc_wait(watch, 20000, "ntc:part", "\"sip:user4@example.com\"", NULL);
	cr_assert_not_null(m, "the member of killed node %d never parted for node %d's member",
			   killed, seen);
	free(m);
	m = gc_wait(watch, 1500, "ntc:part", "\"sip:user4@example.com\"", NULL);
	cr_assert_null(m, "parted twice: %s", m);
	gc_abort(leaver);
	gc_abort(watch);
}

/* Events of <type> about room <uri> by <user> (no sip:) in <e>. */
static int
events(const struct kit_evs *e, const char *type, const char *uri, const char *user)
{
	int n = 0;

	for (size_t i = 0; i < e->n; i++)
		n += !strcmp(e->v[i].type, type) && !strcmp(e->v[i].room, uri) &&
		     !strcmp(e->v[i].user, user);
	return n;
}

/* A member on another node than the room's home: its join, posts, history
 * view and part are compliance events of the home (exported there, once),
 * none of the member's own node. */
Test(xnode, compliance_events_on_the_home, .timeout = 180)
{
	char more[512], uri[200], data[400], dir[400];
	struct kit_evs e[2] = { { 0 } };
	int home, other;
	struct gc *a;
	char *m;

	snprintf(more, sizeof(more), "[compliance]\ninterval_s = 1\n%s", rooms_conf);
	for (int i = 0; i < 2; i++)
		ak_peer_node_start(i, pki, more, NULL);
	ak_wait_links(3);
	ak_wait_homed(0);
	ak_wait_homed(1);
	home = room_homed(0, uri, sizeof(uri), NULL);
	other = 3 - home;
	a = akchat_open(other - 1, 6);
	kit_join_ok(a, uri);
	cr_assert_eq(gc_post(a, uri, "c-1.", NULL), 200);
	cr_assert_eq(gc_post(a, uri, "c-2.", NULL), 200);
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/><bcq><last cnt=\"10\"/></bcq>", uri);
	cr_assert_eq(gc_cmd(a, "bccontext", data), 200);
	m = gc_wait(a, 5000, "rpl:bccontext", NULL);
	cr_assert_eq(kit_resp_code(m), 200, "%s", m ? m : "(none)");
	cr_assert(strstr(m, "c-2.") != NULL, "%s", m);
	free(m);
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/>", uri);
	cr_assert_eq(gc_cmd(a, "part", data), 200);
	free(gc_wait(a, 5000, "rpl:part", NULL));
	usleep(500000);		/* the PART reached the home */
	gc_close(a);
	/* A graceful stop exports what is left. */
	for (int i = 0; i < 2; i++) {
		server_kill(&ak_node[i], SIGTERM);	/* keeps the directory */
		ak_up[i] = false;
		snprintf(dir, sizeof(dir), "%s/compliance", ak_node[i].dir);
		/* a node with nothing to export may have written no file */
		if (i == home - 1 || access(dir, F_OK) == 0)
			kit_read_export(dir, &e[i]);
	}
	cr_assert_eq(events(&e[home - 1], "JOIN", uri, "user6@example.com"), 1);
	cr_assert_eq(events(&e[home - 1], "CHAT", uri, "user6@example.com"), 2);
	cr_assert_eq(events(&e[home - 1], "BACKCHAT", uri, "user6@example.com"), 1);
	cr_assert_eq(events(&e[home - 1], "PART", uri, "user6@example.com"), 1);
	for (const char *const *t = (const char *const[]){ "JOIN", "CHAT", "BACKCHAT", "PART",
							   NULL }; *t; t++)
		cr_assert_eq(events(&e[other - 1], *t, uri, "user6@example.com"), 0,
			     "node %d, not the home, exported a %s of the room", other, *t);
	kit_evs_free(&e[0]);
	kit_evs_free(&e[1]);
	for (int i = 0; i < 2; i++)
		run("rm -rf %s", ak_node[i].dir);
}
