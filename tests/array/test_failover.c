/* Array failover (dataplane/chat/fanout_repl.c, control/homes.c) end to
 * end: three real parleyd nodes with peer links and a real etcd, 30 Group
 * Chat clients in 3 rooms posting while one node is killed (SIGKILL of a
 * room's home, or of its replica) or drained and stopped (parleyctl drain,
 * then SIGTERM). Afterwards, on every surviving node, each room's history
 * holds every post its author saw accepted exactly once, in one order; a
 * client of the lost node signs in again at another node and finds its
 * posts there. The time from the kill to the room taking posts again is
 * printed (perf/RESULTS.md quotes it). */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/gcclient.h"
#include "tests/array/akchat.h"
#include "tests/array/arraykit.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/ctlrun.h"

#define NROOMS		3
#define NCLI		30
#define NTHR		6
#define ROUND_MS	250		/* a client posts about this often */
#define AFTER_MS	12000		/* the storm goes on this long after the fault */
#define BEFORE_MS	3000		/* ... and starts this long before it */
#define MAXP		256		/* posts one client sends at most */

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

TestSuite(failover, .init = setup, .fini = teardown, .timeout = 300);

static const char rooms_conf[] = "[room:X0]\nprivacy = open\n[room:X1]\nprivacy = open\n"
				 "[room:X2]\nprivacy = open\n[chat]\nhistory_max = 5000\n"
				 "[compliance]\ninterval_s = 1\n";

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One client: where it is, what it sent, what came back. */
struct cli {
	struct gc	*g;
	int		node;		/* index */
	int		room;
	bool		dead;		/* its node was lost */
	int		gen;		/* connections so far (a reconnect makes a new one) */
	bool		died[8];	/* connection <gen> ended with its node */
	int		nsent;
	int		gen_of[MAXP];
	char		text[MAXP][24];
	int		sip[MAXP];	/* gc_post's status */
	uint64_t	sent_ms[MAXP], back_ms[MAXP];
	char		**in;		/* every body received, in order */
	size_t		nin, capin;
};

static struct cli cl[NCLI];
static char uri[NROOMS][200];
static _Atomic bool stop_storm;
static int round_ms = ROUND_MS;
static _Atomic int node_gen[AK_NODES];	/* bumped when a node is back after a fault */

/* A client of a node that is back: signs in and joins again (poster
 * thread; nothing asserted here). */
static void
reconnect(struct cli *c, int u)
{
	char aor[64], err[256], *b;
	struct gc *g;

	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	g = gc_open_to("127.0.0.1", ak_node[c->node].port, aor, "pw", AKCHAT_PLACED, err, sizeof(err));
	if (g == NULL)
		return;
	b = gc_join(g, uri[c->room], 5000);
	if (b == NULL || strstr(b, "code=\"200\"") == NULL) {
		free(b);
		gc_abort(g);
		return;
	}
	free(b);
	gc_abort(c->g);
	c->g = g;
	c->gen++;
	c->dead = false;
}

static void
take_in(struct cli *c, int ms)
{
	char *b;

	if (c->dead)
		return;
	gc_pump(c->g, ms);
	while ((b = gc_next(c->g)) != NULL) {
		if (c->nin == c->capin) {
			c->capin = c->capin ? c->capin * 2 : 256;
			c->in = realloc(c->in, c->capin * sizeof(*c->in));
			cr_assert_not_null(c->in);
		}
		c->in[c->nin++] = b;
	}
}

static void *
storm_main(void *arg)
{
	int t = (int)(intptr_t)arg;

	while (!stop_storm) {
		uint64_t t0 = now_ms();

		for (int u = t; u < NCLI; u += NTHR) {
			struct cli *c = &cl[u];
			int k = c->nsent;

			if (c->dead && c->gen < node_gen[c->node] && c->gen + 1 < 8)
				reconnect(c, u);
			if (c->dead || k == MAXP)
				continue;
			c->gen_of[k] = c->gen;
			snprintf(c->text[k], sizeof(c->text[k]), "p-%d-%d.", u, k);
			c->sent_ms[k] = now_ms();
			c->sip[k] = gc_post(c->g, uri[c->room], c->text[k], NULL);
			c->back_ms[k] = now_ms();
			c->nsent++;
			if (c->sip[k] < 0 && !server_alive(&ak_node[c->node])) {
				c->dead = true;
				c->died[c->gen] = true;
			}
			take_in(c, 0);
		}
		if (now_ms() < t0 + (uint64_t)round_ms)
			usleep((useconds_t)(t0 + (uint64_t)round_ms - now_ms()) * 1000);
	}
	return NULL;
}

/* Post <text> of client <c> reached it as a member: accepted. */
static bool
seen_own(const struct cli *c, const char *text)
{
	char needle[40];

	snprintf(needle, sizeof(needle), "<chat>%s</chat>", text);
	for (size_t i = 0; i < c->nin; i++)
		if (strstr(c->in[i], "<grpchat") && strstr(c->in[i], needle))
			return true;
	return false;
}

/* Refusals a client got (rpl grpchat with a code other than 200). */
static int
refusals(const struct cli *c)
{
	int n = 0;

	for (size_t i = 0; i < c->nin; i++)
		if (strstr(c->in[i], "<rpl id=\"rpl:grpchat\"") && kit_resp_code(c->in[i]) != 200)
			n++;
	return n;
}

/* Room <r>'s history through a fresh client at node <i>: the post texts,
 * oldest first, into <out> (malloc'd strings); how many. */
static int
history(int i, int r, int u, char ***out)
{
	char data[400], *m;
	struct gc *g = akchat_open(i, u);
	char **v = NULL;
	int n = 0;

	kit_join_ok(g, uri[r]);
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/><bcq><last cnt=\"5000\"/></bcq>", uri[r]);
	cr_assert_eq(gc_cmd(g, "bccontext", data), 200);
	m = gc_wait(g, 15000, "rpl:bccontext", NULL);
	cr_assert_eq(kit_resp_code(m), 200, "node %d, room X%d: %s", i + 1, r, m ? m : "(none)");
	for (const char *p = m; (p = strstr(p, "<chat>p-")) != NULL; p++) {
		const char *e = strstr(p, "</chat>");

		cr_assert_not_null(e);
		v = realloc(v, (size_t)(n + 1) * sizeof(*v));
		v[n++] = strndup(p + 6, (size_t)(e - p - 6));
	}
	free(m);
	gc_abort(g);
	*out = v;
	return n;
}

/* The home and the replica (node ids) of room <r> as node <on> reads them. */
static void
home_of(int on, int r, int *home, int *replica)
{
	json_t *a = ak_array(on), *h;
	const char *id = strrchr(uri[r], '/') + 1;
	size_t k;

	*home = *replica = 0;
	json_array_foreach(jget(a, "homes.rooms"), k, h)
		if (!strcmp(json_string_value(json_object_get(h, "room")), id)) {
			*home = (int)json_integer_value(json_object_get(h, "node"));
			*replica = (int)json_integer_value(json_object_get(h, "replica"));
		}
	json_decref(a);
}

enum fault { KILL_HOME, KILL_REPLICA, DRAIN };

/* ---- compliance across the nodes' output directories ---- */

struct cev {
	int		room;
	uint64_t	seq;
	char		text[24];
	char		file[300];
};

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *b = NULL;
	size_t cap = 0, n = 0, k;

	if (f == NULL)
		return NULL;
	do {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 65536;
			b = realloc(b, cap + 1);
			cr_assert_not_null(b);
		}
		k = fread(b + n, 1, cap - n, f);
		n += k;
	} while (k > 0);
	fclose(f);
	b[n] = '\0';
	*len = n;
	return b;
}

/* Every CHAT message of every XML file of every node's output directory
 * (the killed nodes' too; a file of the same name and bytes as one of an
 * earlier node's is read once), and file names kept by more than one node
 * with different bytes (counted in *<clash>). */
static size_t
read_compliance(struct cev **out, int *clash)
{
	struct cev *v = NULL;
	size_t n = 0;

	*clash = 0;
	for (int i = 0; i < AK_NODES; i++) {
		char dir[300];
		struct dirent *de;
		DIR *d;

		snprintf(dir, sizeof(dir), "%s/compliance", ak_node[i].dir);
		d = opendir(dir);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char path[700];
			size_t len, olen;
			char *b, *other;
			int room = -1;
			bool dup = false;

			if (strncmp(de->d_name, "parley_", 7) != 0 ||
			    strstr(de->d_name, ".xml") == NULL)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			b = slurp(path, &len);
			if (b == NULL)
				continue;	/* taken away meanwhile: read again */
			for (int j = 0; j < i; j++) {
				snprintf(path, sizeof(path), "%s/compliance/%s", ak_node[j].dir,
					 de->d_name);
				other = slurp(path, &olen);
				if (other != NULL && (olen != len || memcmp(other, b, len) != 0)) {
					fprintf(stderr, "compliance: %s differs on nodes %d and %d\n",
						de->d_name, j + 1, i + 1);
					(*clash)++;
				}
				dup |= other != NULL && olen == len && memcmp(other, b, len) == 0;
				free(other);
			}
			if (dup) {
				/* The same file: a collector keeps one (a file a killed
				 * home wrote and did not record, written again by the
				 * room's next home). */
				free(b);
				continue;
			}
			for (char *p = b; *p != '\0'; ) {
				char *ch = strstr(p, "<Channel uri=\""), *m = strstr(p,
					"<Message type=\"CHAT\" content=\"");

				if (m == NULL)
					break;
				if (ch != NULL && ch < m) {
					room = -1;
					for (int r = 0; r < NROOMS; r++)
						if (!strncmp(ch + 14, uri[r], strlen(uri[r])) &&
						    ch[14 + strlen(uri[r])] == '"')
							room = r;
					p = ch + 14;
					continue;
				}
				m += strlen("<Message type=\"CHAT\" content=\"");
				v = realloc(v, (n + 1) * sizeof(*v));
				cr_assert_not_null(v);
				v[n].room = room;
				snprintf(v[n].text, sizeof(v[n].text), "%.*s",
					 (int)strcspn(m, "\""), m);
				m = strstr(m, "\" id=\"");
				cr_assert_not_null(m);
				v[n].seq = strtoull(m + 6, NULL, 10);
				snprintf(v[n].file, sizeof(v[n].file), "node %d: %s", i + 1,
					 de->d_name);
				n++;
				p = m;
			}
			free(b);
		}
		closedir(d);
	}
	*out = v;
	return n;
}

/* Every accepted post is in exactly one compliance file of one node
 * (waiting a while for the exporters: [compliance] interval_s = 1), and
 * no post and no (room, seq) is there twice. */
static uint64_t t_fault_ms;

static void
check_compliance(void)
{
	struct cev *v = NULL;
	size_t n = 0;
	int clash = 0, answered = 0, missing = -1;

	for (int t = 0; t < 60 && missing != 0; t++) {
		free(v);
		if (t > 0)
			usleep(500000);
		n = read_compliance(&v, &clash);
		missing = 0;
		answered = 0;
		for (int u = 0; u < NCLI; u++)
			for (int k = 0; k < cl[u].nsent; k++) {
				bool in = false;

				/* Accepted: SIP 200 and delivered back to its author
				 * (a SIP 200 may carry a refusal: rpl code 503). */
				if (cl[u].sip[k] != 200 || !seen_own(&cl[u], cl[u].text[k]))
					continue;
				answered++;
				for (size_t i = 0; i < n && !in; i++)
					in = !strcmp(v[i].text, cl[u].text[k]);
				if (!in && t == 59)
					fprintf(stderr, "compliance: %s (accepted, room X%d, "
						"client of node %d, sent %+lld ms from the fault) is "
						"in no file\n", cl[u].text[k], cl[u].room,
						cl[u].node + 1,
						(long long)(cl[u].sent_ms[k] - t_fault_ms));
				missing += !in;
			}
	}
	fprintf(stderr, "compliance: %zu CHAT events in the nodes' files, %d posts accepted, "
		"%d of them missing\n", n, answered, missing);
	if (missing != 0 || clash != 0)
		for (int i = 0; i < AK_NODES; i++) {
			fprintf(stderr, "node %d's exporter said:\n", i + 1);
			run("grep -a 'COMPLIANCE\\|export' %s | tail -n 25 >&2", ak_node[i].log);
		}
	cr_assert_eq(clash, 0, "%d file names with different bytes on two nodes", clash);
	cr_assert_eq(missing, 0, "%d accepted posts are in no compliance file", missing);
	for (size_t i = 0; i < n; i++) {
		cr_assert_geq(v[i].room, 0, "%s: %s in no known room", v[i].file, v[i].text);
		for (size_t j = i + 1; j < n; j++) {
			cr_assert_str_neq(v[i].text, v[j].text, "compliance: %s twice (%s, %s)",
					  v[i].text, v[i].file, v[j].file);
			cr_assert(v[i].room != v[j].room || v[i].seq != v[j].seq,
				  "compliance: room X%d seq %llu twice (%s in %s, %s in %s)",
				  v[i].room, (unsigned long long)v[i].seq, v[i].text, v[i].file,
				  v[j].text, v[j].file);
		}
	}
	free(v);
}

/* <rounds> faults, each to the then home of X0; with more than one, the
 * node is started again (with its data) after each, and its clients sign
 * in again. */
static void
storm(enum fault fault, int rounds)
{
	static const char *const names[] = { "SIGKILL of X0's home", "SIGKILL of X0's replica",
					     "drain + SIGTERM (X0's home; each node in turn with rounds)" };
	pthread_t th[NTHR];
	int home, replica, victim = -1, surv[AK_NODES], ns = 0, accepted = 0, refused = 0,
	    sip200 = 0;
	uint64_t t_fault = 0, back_ms = 0;
	char name[8];
	struct gc *g0;

	for (int i = 0; i < AK_NODES; i++)
		ak_peer_node_start(i, pki, rooms_conf, NULL);
	ak_wait_links(7);
	for (int i = 0; i < AK_NODES; i++)
		ak_wait_homed(i);
	g0 = akchat_open(0, 99);
	for (int r = 0; r < NROOMS; r++) {
		snprintf(name, sizeof(name), "X%d", r);
		cr_assert(kit_room_uri(g0, name, uri[r], sizeof(uri[r])), "no room %s", name);
	}
	gc_abort(g0);
	home_of(0, 0, &home, &replica);
	cr_assert(home > 0 && replica > 0 && home != replica, "X0: home %d, replica %d", home,
		  replica);
	memset(cl, 0, sizeof(cl));
	for (int i = 0; i < AK_NODES; i++)
		node_gen[i] = 0;
	/* Histories stay under what one remote bccontext returns (1024). */
	round_ms = ROUND_MS * rounds * 2 - ROUND_MS;
	for (int u = 0; u < NCLI; u++) {
		cl[u].node = u % AK_NODES;
		cl[u].room = (u / AK_NODES) % NROOMS;
		cl[u].g = akchat_open(cl[u].node, u);
		kit_join_ok(cl[u].g, uri[cl[u].room]);
	}
	stop_storm = false;
	for (int t = 0; t < NTHR; t++)
		pthread_create(&th[t], NULL, storm_main, (void *)(intptr_t)t);
	usleep(BEFORE_MS * 1000);
	for (int round = 0; round < rounds; round++) {
		int alive = victim < 0 ? 0 : (victim + 1) % AK_NODES;

		home_of(alive, 0, &home, &replica);
		cr_assert(home > 0 && replica > 0 && home != replica, "round %d, X0: home %d, "
			  "replica %d", round + 1, home, replica);
		victim = (fault == KILL_REPLICA ? replica : home) - 1;
		if (fault == DRAIN && rounds > 1)
			victim = round % AK_NODES;	/* a rolling restart: each in turn */
		fprintf(stderr, "failover round %d: %s = node %d\n", round + 1, names[fault],
			victim + 1);
		t_fault = now_ms();
		t_fault_ms = t_fault;
		back_ms = 0;
		if (fault == DRAIN) {
			cr_assert_eq(ctl(&ak_node[victim], NULL, "drain"), 0);
			/* Its homes go to their replicas once they hold everything. */
			for (int t = 0; t < 150; t++) {
				json_t *a = ak_array((victim + 1) % AK_NODES), *h;
				size_t k;
				bool left = true;

				json_array_foreach(jget(a, "homes.rooms"), k, h)
					left = left && json_integer_value(json_object_get(h, "node")) !=
						       victim + 1;
				json_decref(a);
				if (left)
					break;
				usleep(100000);
			}
			if (rounds > 1)
				server_kill(&ak_node[victim], SIGTERM);	/* keeps its data */
			else {
				int st = server_stop(&ak_node[victim]);

				cr_assert_eq(st, 0, "the drained node did not stop cleanly (%d)", st);
			}
		} else {
			server_kill(&ak_node[victim], SIGKILL);
		}
		ak_up[victim] = false;
		usleep(AFTER_MS * 1000);
		if (round + 1 < rounds) {
			/* Back with its data, a new process: it rejoins the array
			 * and its clients sign in again. */
			server_restart(&ak_node[victim]);
			ak_up[victim] = true;
			for (int t = 0; t < 200; t++) {
				json_t *a = NULL;
				bool in = ctl(&ak_node[victim], &a, "array") == 0 &&
					  jget(a, "etcd.registered") != NULL &&
					  json_is_true(jget(a, "etcd.registered"));

				json_decref(a);
				if (in)
					break;
				usleep(100000);
			}
			ak_wait_links(7);
			for (int i = 0; i < AK_NODES; i++)
				ak_wait_homed(i);
			node_gen[victim]++;
			usleep(2000 * 1000);
		}
	}
	for (int i = 0; i < AK_NODES; i++)
		if (ak_up[i])
			surv[ns++] = i;
	stop_storm = true;
	for (int t = 0; t < NTHR; t++)
		pthread_join(th[t], NULL);
	for (int u = 0; u < NCLI; u++)
		for (int t = 0; t < 20; t++)
			take_in(&cl[u], 100);

	/* Every post is accounted for: a client of a surviving node got each
	 * 200 either accepted (it saw the post as a member) or refused
	 * (503, retryable); the first acceptance in X0 after the fault is
	 * when the room took posts again. */
	for (int u = 0; u < NCLI; u++) {
		int acc = 0, s2 = 0, late = 0, limbo = 0;

		/* A client whose connection died with its node may have posts
		 * in limbo: not counted. */
		if (cl[u].gen > 0 || cl[u].died[0])
			continue;
		for (int k = 0; k < cl[u].nsent; k++) {
			bool seen = seen_own(&cl[u], cl[u].text[k]);

			s2 += cl[u].sip[k] == 200;
			late += cl[u].sip[k] != 200;	/* no SIP answer in 10 s */
			acc += seen;
			/* On its way to the home when it died: refused (503,
			 * the link went down), yet its replica may hold it and,
			 * as the new home, deliver it once (README: a 503 means
			 * not stored, or stored and seen once as any post). */
			limbo += cl[u].sent_ms[k] < t_fault + 500 && cl[u].back_ms[k] >= t_fault &&
				 seen;
		}
		late += limbo;
		if (!(acc + refusals(&cl[u]) >= s2 && acc + refusals(&cl[u]) <= s2 + late))
			for (int k = 0; k < cl[u].nsent; k++)
				if (!seen_own(&cl[u], cl[u].text[k]))
					fprintf(stderr, "user%d: %s not seen: sent %+lld ms from "
						"the fault, SIP %d after %llu ms\n", u,
						cl[u].text[k],
						(long long)(cl[u].sent_ms[k] - t_fault),
						cl[u].sip[k],
						(unsigned long long)(cl[u].back_ms[k] -
								     cl[u].sent_ms[k]));
		cr_assert(acc + refusals(&cl[u]) >= s2 && acc + refusals(&cl[u]) <= s2 + late,
			  "user%d: %d accepted + %d refused, %d answered (%d late)", u, acc,
			  refusals(&cl[u]), s2, late);
		accepted += acc;
		refused += refusals(&cl[u]);
		sip200 += s2;
	}
	for (int u = 0; u < NCLI; u++)
		for (int k = 0; k < cl[u].nsent; k++)
			if (cl[u].room == 0 && cl[u].sip[k] == 200 && cl[u].sent_ms[k] > t_fault &&
			    (back_ms == 0 || cl[u].back_ms[k] < back_ms) &&
			    seen_own(&cl[u], cl[u].text[k]))
				back_ms = cl[u].back_ms[k];
	cr_assert_gt(back_ms, 0, "room X0 took no post after the fault");
	/* The longest time X0 accepted nothing, from a second before the
	 * fault on (answer times of accepted posts, every client). */
	{
		uint64_t *v = NULL, gap = 0;
		size_t nv = 0;

		for (int u = 0; u < NCLI; u++)
			for (int k = 0; k < cl[u].nsent; k++)
				if (cl[u].room == 0 && cl[u].sip[k] == 200 &&
				    cl[u].back_ms[k] + 1000 >= t_fault &&
				    seen_own(&cl[u], cl[u].text[k])) {
					v = realloc(v, (nv + 1) * sizeof(*v));
					v[nv++] = cl[u].back_ms[k];
				}
		for (size_t i = 0; i < nv; i++)	/* few: insertion order is fine */
			for (size_t j = i + 1; j < nv; j++)
				if (v[j] < v[i]) {
					uint64_t x = v[i];

					v[i] = v[j];
					v[j] = x;
				}
		for (size_t i = 1; i < nv; i++)
			if (v[i] - v[i - 1] > gap)
				gap = v[i] - v[i - 1];
		free(v);
		fprintf(stderr, "failover (%s): %d posts answered on surviving nodes, %d accepted, "
			"%d refused (retryable); room X0 took posts again %llu ms after the fault; "
			"longest pause in X0: %llu ms\n", names[fault], sip200, accepted, refused,
			(unsigned long long)(back_ms - t_fault), (unsigned long long)gap);
	}

	/* History on every surviving node: every accepted post exactly once,
	 * the same order on both. */
	for (int r = 0; r < NROOMS; r++) {
		char **h[AK_NODES];
		int n[AK_NODES];

		for (int s = 0; s < ns; s++) {
			n[s] = history(surv[s], r, 90 + s, &h[s]);
			if (s > 0) {
				cr_assert_eq(n[0], n[s], "room X%d: %d posts in history on node %d, "
					     "%d on node %d", r, n[0], surv[0] + 1, n[s], surv[s] + 1);
				for (int i = 0; i < n[0]; i++)
					cr_assert_str_eq(h[0][i], h[s][i], "room X%d: post %d differs "
							 "on node %d", r, i, surv[s] + 1);
			}
		}
		for (int i = 0; i < n[0]; i++) {
			for (int j = i + 1; j < n[0]; j++)
				cr_assert_str_neq(h[0][i], h[0][j], "room X%d: %s twice", r, h[0][i]);
		}
		for (int u = 0; u < NCLI; u++) {
			if (cl[u].room != r)
				continue;
			for (int k = 0; k < cl[u].nsent; k++) {
				int found = 0;

				if (cl[u].sip[k] != 200 || !seen_own(&cl[u], cl[u].text[k]))
					continue;
				for (int i = 0; i < n[0]; i++)
					found += !strcmp(h[0][i], cl[u].text[k]);
				cr_assert_eq(found, 1, "room X%d: accepted post %s is in history %d "
					     "times", r, cl[u].text[k], found);
			}
		}
		for (int s = 0; s < ns; s++) {
			for (int i = 0; i < n[s]; i++)
				free(h[s][i]);
			free(h[s]);
		}
	}

	/* A client of the lost node signs in at another: its room's history
	 * has every post it saw accepted before. */
	for (int u = 0; u < NCLI && rounds == 1; u++) {
		char **h;
		int n, missing = 0;

		if (cl[u].node != victim)
			continue;
		gc_abort(cl[u].g);
		cl[u].dead = true;
		n = history(surv[u % ns], cl[u].room, u, &h);
		for (int k = 0; k < cl[u].nsent; k++) {
			int found = 0;

			if (cl[u].sip[k] != 200 || !seen_own(&cl[u], cl[u].text[k]))
				continue;
			for (int i = 0; i < n; i++)
				found += !strcmp(h[i], cl[u].text[k]);
			missing += found != 1;
		}
		cr_assert_eq(missing, 0, "user%d (lost node %d): %d accepted posts not once in "
			     "history at node %d", u, victim + 1, missing, surv[u % ns] + 1);
		for (int i = 0; i < n; i++)
			free(h[i]);
		free(h);
		break;		/* one is enough */
	}
	/* A node drained and stopped cleanly takes its directory with it. */
	if (fault != DRAIN || rounds > 1)
		check_compliance();
	for (int u = 0; u < NCLI; u++) {
		if (!cl[u].dead)
			gc_abort(cl[u].g);
		for (size_t i = 0; i < cl[u].nin; i++)
			free(cl[u].in[i]);
		free(cl[u].in);
	}
}

Test(failover, home_killed_mid_storm)
{
	storm(KILL_HOME, 1);
}

/* Five rounds: the home of X0 killed, started again with its data, the
 * next home killed...: each comes back as a replica whose copies are
 * dropped from the new epoch's first seq and caught up, and the last
 * round's new home serves a history with every accepted post once; every
 * post answered 200 is in exactly one compliance file across the nodes. */
Test(failover, home_killed_five_rounds, .timeout = 500)
{
	storm(KILL_HOME, 5);
}

Test(failover, replica_killed_mid_storm)
{
	storm(KILL_REPLICA, 1);
}

Test(failover, drain_then_sigterm_mid_storm)
{
	storm(DRAIN, 1);
}

/* A rolling restart: each node in turn drained, stopped (SIGTERM) and
 * started again with its data, under load. */
Test(failover, rolling_drain_restart, .timeout = 400)
{
	storm(DRAIN, 3);
}

/* Two nodes, one killed: the other homes every room with no node to keep
 * copies. [array] alone = refuse (the default): posts are refused with a
 * retryable 503, and parleyctl array says "alone"; = unreplicated: they are
 * taken. */
static void
alone(bool unreplicated)
{
	char conf[512], *m;
	struct gc *g;
	json_t *a, *st;
	bool ok = false;

	snprintf(conf, sizeof(conf), "%s%s", rooms_conf,
		 unreplicated ? "[array]\nalone = unreplicated\n" : "");
	for (int i = 0; i < 2; i++)
		ak_peer_node_start(i, pki, conf, NULL);
	ak_wait_links(3);
	for (int i = 0; i < 2; i++)
		ak_wait_homed(i);
	g = akchat_open(0, 1);
	cr_assert(kit_room_uri(g, "X0", uri[0], sizeof(uri[0])));
	kit_join_ok(g, uri[0]);
	server_kill(&ak_node[1], SIGKILL);
	ak_up[1] = false;
	for (int t = 0; t < 200 && !ok; t++) {
		a = ak_array(0);
		ok = !strcmp(json_string_value(jget(a, "homes.replication")), "alone") &&
		     jint(a, "homes.mine") == jint(a, "homes.count") && jint(a, "homes.unhomed") == 0;
		json_decref(a);
		if (!ok)
			usleep(100000);
	}
	if (!ok) {
		a = ak_array(0);
		m = json_dumps(jget(a, "homes"), 0);
		fprintf(stderr, "%s\n", m);
		free(m);
		json_decref(a);
	}
	cr_assert(ok, "node 1 did not find itself alone with every room");
	cr_assert_eq(gc_post(g, uri[0], "p-alone.", NULL), 200);
	if (unreplicated) {
		m = gc_wait(g, 5000, "<chat>p-alone.</chat>", NULL);
		cr_assert_not_null(m, "alone = unreplicated: the post was not taken");
	} else {
		m = gc_wait(g, 5000, "rpl:grpchat", NULL);
		cr_assert_eq(kit_resp_code(m), 503, "alone = refuse: %s", m ? m : "(no reply)");
	}
	free(m);
	st = ctl_ok(&ak_node[0], "stats");
	cr_assert_geq(jint(st, unreplicated ? "total.repl_unreplicated" :
			       "total.repl_refused_alone"), 1);
	json_decref(st);
	gc_abort(g);
}

Test(failover, alone_refuses)
{
	alone(false);
}

Test(failover, alone_unreplicated_takes_posts)
{
	alone(true);
}
