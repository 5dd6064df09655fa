/* A network partition (control/array.c may_home, control/homes.c,
 * dataplane/chat/fanout_repl.c) end to end: three real parleyd nodes with
 * peer links and a real etcd, nine Group Chat clients (three per node, one
 * per room) posting while one node, the home of room X0, is cut off from
 * etcd and from its peers. Its own clients stay connected to it over
 * 127.0.0.1 and keep posting.
 *
 * The cut: every node runs in a cgroup v2 of its own that the test makes,
 * and an nftables table of the test drops, by `socket cgroupv2`, what the
 * victim's sockets send to or receive from etcd's and the peers' ports, and
 * everything to or from its own peer port. Its client connections are
 * untouched. The table is deleted to heal the cut (and in .fini).
 *
 * Asserted: once the victim's lease can have expired it answers posts to the
 * rooms it homed with a retryable 503, never a 200; the other nodes take
 * those rooms over and take posts; after the heal the victim is back in the
 * array and its clients' posts are taken again; and every node's stored
 * history (read from its database once the nodes stopped) is one numbering:
 * a seq has one content on every node, and every post a client saw accepted
 * is there under exactly one seq. The time from the cut to the rooms taking
 * posts again is printed. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/gcclient.h"
#include "storage/catalog.h"
#include "storage/db.h"
#include "storage/history.h"
#include "tests/array/akchat.h"
#include "tests/array/arraykit.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/ctlrun.h"

#define NROOMS		3
#define NCLI		(AK_NODES * NROOMS)
#define ROUND_MS	300		/* a client posts about this often */
#define OUTCOME_MS	4000		/* ... and waits this long for its post's fate */
#define TTL_MS		5000		/* ak_peer_node_start's lease */
#define CUT_MS		16000		/* the cut lasts this long */
#define MAXP		400
#define CG_ROOT		"/sys/fs/cgroup"	/* where nft(8) resolves cgroupv2 paths */

static char pki[64];
static char cg_mount[200];		/* the cgroup2 mount */
static char cg_home[400];		/* this process's cgroup, to return to */
static char cg_dir[AK_NODES][300];	/* the nodes' cgroups */
static char table[48];			/* the inet table of the cut */
static bool kept[AK_NODES];		/* stopped with its data: dir still to remove */

/* Moves this process into the cgroup directory <dir>. */
static void
cg_enter(const char *dir)
{
	char path[450];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fprintf(f, "%d\n", (int)getpid());
	cr_assert_eq(fclose(f), 0, "moving into %s: %s", dir, strerror(errno));
}

/* The cgroup2 mount (under CG_ROOT, where nft looks) and this process's
 * cgroup; false when there is none usable. */
static bool
cg_find(void)
{
	char line[600], dev[200], mnt[200], type[64], rel[300];
	FILE *f = fopen("/proc/self/mounts", "r");
	bool found = false;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%199s %199s %63s", dev, mnt, type) == 3 &&
		    !strcmp(type, "cgroup2") && !strncmp(mnt, CG_ROOT, strlen(CG_ROOT))) {
			snprintf(cg_mount, sizeof(cg_mount), "%s", mnt);
			found = true;
		}
	if (f != NULL)
		fclose(f);
	f = fopen("/proc/self/cgroup", "r");
	rel[0] = 0;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (!strncmp(line, "0::", 3))
			snprintf(rel, sizeof(rel), "%.*s", (int)strcspn(line + 3, "\n"), line + 3);
	if (f != NULL)
		fclose(f);
	if (snprintf(cg_home, sizeof(cg_home), "%s%s", cg_mount, strcmp(rel, "/") ? rel : "") >=
	    (int)sizeof(cg_home))
		return false;	/* a path that long: no cut here */
	return found && rel[0] == '/';
}

static void
setup(void)
{
	if (geteuid() != 0 || run("nft list tables > /dev/null 2>&1") != 0 || !cg_find())
		cr_skip_test("needs root, nft(8) and a cgroup2 mount under %s", CG_ROOT);
	snprintf(table, sizeof(table), "parley_partition_%d", (int)getpid());
	for (int i = 0; i < AK_NODES; i++) {
		snprintf(cg_dir[i], sizeof(cg_dir[i]), "%s/parley-partition-%d-node%d", cg_mount,
			 (int)getpid(), i + 1);
		cr_assert(mkdir(cg_dir[i], 0755) == 0 || errno == EEXIST, "%s: %s", cg_dir[i],
			  strerror(errno));
	}
	ak_pki_make(pki, sizeof(pki));
	ak_setup();
}

static void
teardown(void)
{
	if (cg_home[0] != 0)
		cg_enter(cg_home);	/* a failed start may have left it in a node's */
	run("nft delete table inet %s 2>/dev/null", table);
	ak_teardown();
	for (int i = 0; i < AK_NODES; i++) {
		if (kept[i] && getenv("PARLEY_KEEP_LOGS") != NULL)	/* debugging */
			run("mkdir -p %s && cat %s > %s/node%d.log", getenv("PARLEY_KEEP_LOGS"),
			    ak_node[i].log, getenv("PARLEY_KEEP_LOGS"), i + 1);
		if (kept[i])
			run("rm -rf %s", ak_node[i].dir);
		if (cg_dir[i][0] != 0 && rmdir(cg_dir[i]) != 0 && errno != ENOENT)
			fprintf(stderr, "rmdir %s: %s\n", cg_dir[i], strerror(errno));
	}
	run("rm -rf %s", pki);
}

TestSuite(partition, .init = setup, .fini = teardown, .timeout = 200);

static const char rooms_conf[] = "[room:X0]\nprivacy = open\n[room:X1]\nprivacy = open\n"
				 "[room:X2]\nprivacy = open\n[chat]\nhistory_max = 5000\n";

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the clients --------------------------------------------------------- */

enum fate { PENDING, ACCEPTED, REFUSED };

/* One client: its node and room, what it sent and what became of it. */
struct cli {
	struct gc	*g;
	int		node;		/* index */
	int		room;
	int		user;
	int		nsent;
	char		text[MAXP][24];
	int		sip[MAXP];	/* gc_post's status */
	enum fate	fate[MAXP];
	int		code[MAXP];	/* a refusal's code */
	uint64_t	sent_ms[MAXP], fate_ms[MAXP];
	char		**in;		/* every post delivered to it, in order */
	size_t		nin, capin;
};

static struct cli cl[NCLI];
static char uri[NROOMS][200];
static _Atomic bool stop_posting;

/* Reads what arrived for <c> within <ms>: its posts seen as a member are
 * accepted; an rpl:grpchat other than 200 refuses its oldest post still
 * pending (a client's posts are answered in order). */
static void
take_in(struct cli *c, int ms)
{
	char *b;

	gc_pump(c->g, ms);
	while ((b = gc_next(c->g)) != NULL) {
		if (strstr(b, "<rpl id=\"rpl:grpchat\"") && kit_resp_code(b) != 200) {
			for (int k = 0; k < c->nsent; k++)
				if (c->fate[k] == PENDING) {
					c->fate[k] = REFUSED;
					c->code[k] = kit_resp_code(b);
					c->fate_ms[k] = now_ms();
					break;
				}
		} else if (strstr(b, "<grpchat")) {
			if (c->nin == c->capin) {
				c->capin = c->capin ? c->capin * 2 : 256;
				c->in = realloc(c->in, c->capin * sizeof(*c->in));
				cr_assert_not_null(c->in);
			}
			c->in[c->nin++] = strdup(b);
			for (int k = 0; k < c->nsent; k++) {
				char needle[40];

				snprintf(needle, sizeof(needle), "<chat>%s</chat>", c->text[k]);
				if (strstr(b, needle)) {
					/* Accepted late after a refusal counts as
					 * accepted: the history must have it. */
					c->fate[k] = ACCEPTED;
					c->fate_ms[k] = now_ms();
				}
			}
		}
		free(b);
	}
}

static void *
poster_main(void *arg)
{
	struct cli *c = arg;

	while (!stop_posting && c->nsent < MAXP) {
		uint64_t t0 = now_ms();
		int k = c->nsent;

		snprintf(c->text[k], sizeof(c->text[k]), "p-%d-%d.", c->user, k);
		c->fate[k] = PENDING;
		c->sent_ms[k] = t0;
		c->nsent++;
		c->sip[k] = gc_post(c->g, uri[c->room], c->text[k], NULL);
		while (c->fate[k] == PENDING && now_ms() < t0 + OUTCOME_MS)
			take_in(c, 100);
		if (now_ms() < t0 + ROUND_MS)
			usleep((useconds_t)(t0 + ROUND_MS - now_ms()) * 1000);
	}
	return NULL;
}

/* ---- the array ----------------------------------------------------------- */

/* The home (node id) of room <r> as node <on> reads it, and its epoch. */
static int
home_of(int on, int r, long long *epoch)
{
	json_t *a = ak_array(on), *h;
	const char *id = strrchr(uri[r], '/') + 1;
	int home = 0;
	size_t k;

	json_array_foreach(jget(a, "homes.rooms"), k, h)
		if (!strcmp(json_string_value(json_object_get(h, "room")), id)) {
			home = (int)json_integer_value(json_object_get(h, "node"));
			if (epoch != NULL)
				*epoch = json_integer_value(json_object_get(h, "epoch"));
		}
	json_decref(a);
	return home;
}

/* Cuts node <v> off from etcd and its peers: what its sockets send to
 * etcd's or a peer's port, or receive from them, and everything to or from
 * its own peer port, is dropped. */
static void
cut(int v, const uint16_t peer[AK_NODES])
{
	char ports[64], cg[320];
	int n = 0;

	n += snprintf(ports + n, sizeof(ports) - (size_t)n, "%u", ak_etcd.client_port);
	for (int i = 0; i < AK_NODES; i++)
		if (i != v)
			n += snprintf(ports + n, sizeof(ports) - (size_t)n, ", %u", peer[i]);
	/* nft resolves the path under CG_ROOT; level 1: a child of the mount's
	 * root. */
	snprintf(cg, sizeof(cg), "%s", cg_dir[v] + strlen(CG_ROOT) + 1);
	cr_assert_eq(run("nft -f - <<'EOF'\n"
			 "table inet %s {\n"
			 "  chain out {\n"
			 "    type filter hook output priority 0\n"
			 "    socket cgroupv2 level 1 \"%s\" tcp dport { %s } drop\n"
			 "    tcp dport %u drop\n"
			 "    tcp sport %u drop\n"
			 "  }\n"
			 "  chain in {\n"
			 "    type filter hook input priority 0\n"
			 "    socket cgroupv2 level 1 \"%s\" tcp sport { %s } drop\n"
			 "  }\n"
			 "}\n"
			 "EOF", table, cg, ports, peer[v], peer[v], cg, ports), 0,
		     "nft could not install the cut");
}

static void
heal(void)
{
	cr_assert_eq(run("nft delete table inet %s", table), 0);
}

/* ---- the stored histories ------------------------------------------------ */

/* One node's history of a room: seq -> body. */
struct hist {
	int		n;
	uint64_t	*seq;
	char		**body;
};

static void
read_history(int i, int r, struct hist *h)
{
	char path[400], err[512];
	struct history_rec *recs = NULL;
	uint8_t raw[CATALOG_ID_RAW];
	struct db *db;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/db", ak_node[i].dir);
	db = db_open(path, NULL, err, sizeof(err));
	cr_assert_not_null(db, "node %d: %s", i + 1, err);
	cr_assert_eq(catalog_id_pack(strrchr(uri[r], '/') + 1, raw), 0);
	n = history_read_range(db, raw, 1, UINT64_MAX, 1000000, &recs);
	cr_assert_geq(n, 0, "node %d, room X%d: history unreadable", i + 1, r);
	h->n = (int)n;
	h->seq = calloc((size_t)n + 1, sizeof(*h->seq));
	h->body = calloc((size_t)n + 1, sizeof(*h->body));
	for (ssize_t k = 0; k < n; k++) {
		h->seq[k] = recs[k].seq;
		h->body[k] = strndup(recs[k].body, recs[k].body_len);
	}
	history_recs_free(recs, (size_t)n);
	db_close(db);
}

static void
hist_free(struct hist *h)
{
	for (int k = 0; k < h->n; k++)
		free(h->body[k]);
	free(h->body);
	free(h->seq);
}

/* ---- the test ------------------------------------------------------------ */

Test(partition, home_cut_off_then_healed)
{
	pthread_t th[NCLI];
	uint16_t peer[AK_NODES];
	int victim, vhomed[NROOMS] = { 0 }, other;
	uint64_t t_cut, t_heal, t_back, t_stop, back_ms = 0, settled;
	long long epoch0[NROOMS] = { 0 };
	struct gc *g0;
	char name[8];

	for (int i = 0; i < AK_NODES; i++) {
		/* Its sockets carry its cgroup: started from inside it. */
		cg_enter(cg_dir[i]);
		ak_peer_node_start(i, pki, rooms_conf, &peer[i]);
		cg_enter(cg_home);
	}
	ak_wait_links(7);
	for (int i = 0; i < AK_NODES; i++)
		ak_wait_homed(i);
	g0 = akchat_open(0, 99);
	for (int r = 0; r < NROOMS; r++) {
		snprintf(name, sizeof(name), "X%d", r);
		cr_assert(kit_room_uri(g0, name, uri[r], sizeof(uri[r])), "no room %s", name);
	}
	gc_abort(g0);
	memset(cl, 0, sizeof(cl));
	for (int u = 0; u < NCLI; u++) {
		cl[u].node = u / NROOMS;
		cl[u].room = u % NROOMS;
		cl[u].user = u + 1;
		cl[u].g = akchat_open(cl[u].node, cl[u].user);
		kit_join_ok(cl[u].g, uri[cl[u].room]);
	}
	stop_posting = false;
	for (int u = 0; u < NCLI; u++)
		pthread_create(&th[u], NULL, poster_main, &cl[u]);
	usleep(3000 * 1000);

	victim = home_of(0, 0, NULL) - 1;
	cr_assert_geq(victim, 0, "X0 has no home");
	other = (victim + 1) % AK_NODES;
	for (int r = 0; r < NROOMS; r++)
		vhomed[r] = home_of(other, r, &epoch0[r]) == victim + 1;
	cr_assert(vhomed[0]);
	fprintf(stderr, "partition: node %d (home of X0%s%s) cut off from etcd and its peers\n",
		victim + 1, vhomed[1] ? ", X1" : "", vhomed[2] ? ", X2" : "");
	t_cut = now_ms();
	cut(victim, peer);

	/* The others take the victim's rooms over: a new home, a new epoch. */
	for (int r = 0; r < NROOMS; r++) {
		int t, h = 0;
		long long e = 0;

		for (t = 0; t < 200 && vhomed[r]; t++) {
			h = home_of(other, r, &e);
			if (h != 0 && h != victim + 1)
				break;
			usleep(100000);
		}
		cr_assert(!vhomed[r] || (h != victim + 1 && h != 0 && e > epoch0[r]),
			  "room X%d: home %d epoch %lld (was node %d, epoch %lld) after %llu ms "
			  "of the cut", r, h, e, victim + 1, epoch0[r],
			  (unsigned long long)(now_ms() - t_cut));
	}
	while (now_ms() < t_cut + CUT_MS)
		usleep(100000);
	t_heal = now_ms();
	heal();
	fprintf(stderr, "partition: healed after %llu ms\n", (unsigned long long)(t_heal - t_cut));

	/* It rejoins: in the array again, with every node, links up, homes
	 * known. */
	for (int t = 0; t < 300; t++) {
		json_t *a = NULL;
		bool in = ctl(&ak_node[victim], &a, "array") == 0 &&
			  json_is_true(jget(a, "etcd.registered")) &&
			  !strcmp(json_string_value(jget(a, "etcd.state")) ?: "", "ok");

		for (int id = 1; in && id <= AK_NODES; id++)
			in = ak_find(a, id) != NULL;
		json_decref(a);
		if (in)
			break;
		cr_assert_lt(t, 299, "node %d did not rejoin the array in 30 s", victim + 1);
		usleep(100000);
	}
	cr_assert(ak_present(other, victim + 1), "node %d is back, node %d does not see it",
		  victim + 1, other + 1);
	ak_wait_links(7);
	for (int i = 0; i < AK_NODES; i++)
		ak_wait_homed(i);
	t_back = now_ms();
	fprintf(stderr, "partition: node %d back in the array %llu ms after the heal\n",
		victim + 1, (unsigned long long)(t_back - t_heal));
	settled = t_back + 1000;
	usleep(6000 * 1000);
	stop_posting = true;
	t_stop = now_ms();
	for (int u = 0; u < NCLI; u++)
		pthread_join(th[u], NULL);
	for (int u = 0; u < NCLI; u++)
		for (int t = 0; t < 10; t++)
			take_in(&cl[u], 100);

	/* The victim's clients: no post to a room it homed accepted once its
	 * lease can have run out (the TTL and a second), until the heal; 503s
	 * instead. After the heal their posts are taken again. */
	{
		int acc = 0, ref = 0, other_code = 0, none = 0, after = 0;

		for (int u = 0; u < NCLI; u++) {
			struct cli *c = &cl[u];
			bool ok_after = false;

			if (c->node != victim)
				continue;
			for (int k = 0; k < c->nsent; k++) {
				bool in_cut = c->sent_ms[k] >= t_cut + TTL_MS + 1000 &&
					      c->sent_ms[k] < t_heal;

				if (c->sent_ms[k] >= settled && c->fate[k] == ACCEPTED)
					ok_after = true;
				if (!in_cut)
					continue;
				if (c->fate[k] == ACCEPTED && vhomed[c->room]) {
					fprintf(stderr, "user%d: %s to X%d accepted by the cut-off "
						"node, sent %llu ms into the cut\n", c->user,
						c->text[k], c->room,
						(unsigned long long)(c->sent_ms[k] - t_cut));
					acc++;
				}
				ref += c->fate[k] == REFUSED && c->code[k] == 503;
				other_code += c->fate[k] == REFUSED && c->code[k] != 503;
				none += c->fate[k] == PENDING;
			}
			after += ok_after;
			cr_assert(ok_after, "user%d (node %d, X%d): no post taken after the heal",
				  c->user, victim + 1, c->room);
		}
		fprintf(stderr, "partition: the cut-off node, from its lease's end to the heal: "
			"%d posts refused with 503, %d with another code, %d unanswered, %d "
			"accepted in its rooms\n", ref, other_code, none, acc);
		cr_assert_eq(acc, 0, "the cut-off node accepted %d posts in rooms it homed", acc);
		cr_assert_gt(ref, 0, "the cut-off node refused no post with 503");
		cr_assert_eq(other_code, 0, "the cut-off node refused %d posts with another code "
			     "than 503", other_code);
		cr_assert_eq(none, 0, "the cut-off node left %d posts unanswered", none);
	}

	/* The other nodes' clients in the victim's rooms: posts taken again;
	 * the first acceptance of a post sent after the cut is when. */
	for (int r = 0; r < NROOMS; r++) {
		uint64_t first = 0;

		if (!vhomed[r])
			continue;
		for (int u = 0; u < NCLI; u++)
			for (int k = 0; k < cl[u].nsent; k++)
				if (cl[u].node != victim && cl[u].room == r &&
				    cl[u].fate[k] == ACCEPTED && cl[u].sent_ms[k] > t_cut &&
				    (first == 0 || cl[u].fate_ms[k] < first))
					first = cl[u].fate_ms[k];
		cr_assert_gt(first, 0, "room X%d took no post on the other nodes after the cut", r);
		cr_assert_lt(first, t_heal, "room X%d took no post on the other nodes during the "
			     "cut", r);
		if (first - t_cut > back_ms)
			back_ms = first - t_cut;
	}
	fprintf(stderr, "partition: the cut-off node's rooms took posts again on the other "
		"nodes %llu ms after the cut (lease TTL %d ms)\n", (unsigned long long)back_ms,
		TTL_MS);
	/* The victim's clients caught up: as members they got every post
	 * of their room accepted anywhere (during the cut too), up to two
	 * seconds before the posting stopped. */
	for (int u = 0; u < NCLI; u++) {
		int missing = 0;

		if (cl[u].node != victim)
			continue;
		for (int v = 0; v < NCLI; v++)
			for (int k = 0; k < cl[v].nsent; k++) {
				char needle[40];
				bool got = false;

				if (cl[v].room != cl[u].room || cl[v].fate[k] != ACCEPTED ||
				    cl[v].fate_ms[k] + 2000 > t_stop)
					continue;
				snprintf(needle, sizeof(needle), "<chat>%s</chat>", cl[v].text[k]);
				for (size_t i = 0; i < cl[u].nin && !got; i++)
					got = strstr(cl[u].in[i], needle) != NULL;
				if (!got && missing++ < 5)
					fprintf(stderr, "user%d (node %d) never got %s, accepted %lld ms "
						"from the cut\n", cl[u].user, victim + 1, cl[v].text[k],
						(long long)(cl[v].fate_ms[k] - t_cut));
			}
		cr_assert_eq(missing, 0, "user%d on the cut-off node missed %d posts of X%d",
			     cl[u].user, missing, cl[u].room);
	}
	for (int u = 0; u < NCLI; u++) {
		gc_abort(cl[u].g);
		for (size_t i = 0; i < cl[u].nin; i++)
			free(cl[u].in[i]);
		free(cl[u].in);
	}

	/* Every node's stored history: one numbering. */
	for (int i = 0; i < AK_NODES; i++) {
		server_kill(&ak_node[i], SIGTERM);	/* keeps the data */
		ak_up[i] = false;
		kept[i] = true;
	}
	for (int r = 0; r < NROOMS; r++) {
		struct hist h[AK_NODES];

		for (int i = 0; i < AK_NODES; i++)
			read_history(i, r, &h[i]);
		/* A seq has one content wherever it is stored; a content has one
		 * seq. */
		for (int i = 0; i < AK_NODES; i++)
			for (int k = 0; k < h[i].n; k++)
				for (int j = i; j < AK_NODES; j++)
					for (int m = j == i ? k + 1 : 0; m < h[j].n; m++) {
						bool same_seq = h[i].seq[k] == h[j].seq[m];
						bool same_body = !strcmp(h[i].body[k], h[j].body[m]);

						cr_assert(same_seq == same_body, "room X%d: seq %llu "
							  "is %s on node %d, seq %llu is %s on "
							  "node %d", r,
							  (unsigned long long)h[i].seq[k],
							  h[i].body[k], i + 1,
							  (unsigned long long)h[j].seq[m],
							  h[j].body[m], j + 1);
					}
		/* Every accepted post is stored (once, by the above). */
		for (int u = 0; u < NCLI; u++) {
			if (cl[u].room != r)
				continue;
			for (int k = 0; k < cl[u].nsent; k++) {
				char needle[40];
				bool found = false;

				if (cl[u].fate[k] != ACCEPTED)
					continue;
				snprintf(needle, sizeof(needle), "<chat>%s</chat>", cl[u].text[k]);
				for (int i = 0; i < AK_NODES && !found; i++)
					for (int m = 0; m < h[i].n && !found; m++)
						found = strstr(h[i].body[m], needle) != NULL;
				cr_assert(found, "room X%d: accepted post %s is stored nowhere", r,
					  cl[u].text[k]);
			}
		}
		fprintf(stderr, "partition: room X%d: %d / %d / %d posts stored on nodes 1 / 2 / "
			"3, one numbering\n", r, h[0].n, h[1].n, h[2].n);
		for (int i = 0; i < AK_NODES; i++)
			hist_free(&h[i]);
	}
}
