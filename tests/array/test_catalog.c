/* One catalog for the array (control/catalog_sync.h) end to end: three
 * parleyd nodes on one real etcd; parleyctl on one node, SIP clients over
 * TLS on the others, checked right after parleyctl returns. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/client.h"
#include "perf/gcclient.h"
#include "tests/array/arraykit.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/ctlrun.h"

TestSuite(catalog, .init = ak_setup, .fini = ak_teardown, .timeout = 150);

/* A harness user (user<u>) that node <i> serves itself (placement sends
 * it nowhere else), other than those in <not> (<n> of them). */
static int
user_at(int i, const int *not, int n)
{
	for (int u = 10; u < 200; u++) {
		bool used = false;

		for (int k = 0; k < n; k++)
			used = used || not[k] == u;
		if (!used && ak_place(i, u, NULL) == i)
			return u;
	}
	cr_assert_fail("no user lands on node %d", i + 1);
	return -1;
}

static struct gc *
login(int i, int u)
{
	char aor[64];

	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	return kit_login(&ak_node[i], aor, "pw");
}

/* The result code of a post: 200 when it comes back as a grpchat, else the
 * code of the rpl:grpchat refusing it. */
static int
post_code(struct gc *g, const char *uri, const char *text)
{
	cr_assert_eq(gc_post(g, uri, text, NULL), 200);
	for (int waited = 0; waited < 5000; waited += 50) {
		char *m = NULL;
		int code = -1;

		gc_pump(g, 50);
		if (gc_count(g, "rpl:grpchat") > 0) {
			m = gc_wait(g, 0, "rpl:grpchat", NULL);
			code = kit_resp_code(m);
		} else if (gc_count(g, text) > 0) {
			m = gc_wait(g, 0, "<grpchat", text, NULL);
			code = 200;
		}
		free(m);
		if (code != -1)
			return code;
	}
	return -1;
}

/* `room Club` on node <i>: its members, as a JSON array (caller decrefs). */
static json_t *
members_on(int i, const char *room)
{
	json_t *v = ctl_ok(&ak_node[i], "room %s", room);
	json_t *m = json_incref(jget(v, "members"));

	json_decref(v);
	return m;
}

static bool
has(json_t *list, int u)
{
	char want[64];
	size_t k;
	json_t *e;

	snprintf(want, sizeof(want), "sip:user%d@example.com", u);
	json_array_foreach(list, k, e)
		if (strcmp(json_string_value(e), want) == 0)
			return true;
	return false;
}

/* Registers user<u> at node <i> and returns the status (301 counts: the
 * node knows where the user goes, not whether it exists; so <i>'s own
 * decision is asked with the mark a redirect carries). */
static int
register_at(int i, int u, const char *pw)
{
	char aor[64], ruri[128], err[256];
	struct pc_conn *c;
	int st;

	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	snprintf(ruri, sizeof(ruri), "sip:127.0.0.1:%u;transport=tls;parley-placed",
		 ak_node[i].port);
	c = pc_connect("127.0.0.1", ak_node[i].port, NULL, 5000, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	st = pc_register_to(c, aor, pw, 600, ruri, NULL, NULL, 0);
	pc_close(c);
	return st;
}

Test(catalog, changes_on_one_node_apply_on_every_node_before_parleyctl_returns)
{
	int u[3], k = 5;
	struct gc *g[3];
	char uri[256], *m, pki[64];
	json_t *v, *list;

	/* Members on every node post to one room: peer links. */
	ak_pki_make(pki, sizeof(pki));
	for (int i = 0; i < AK_NODES; i++)
		ak_peer_node_start(i, pki, NULL, NULL);
	ak_wait_links(7);
	/* A node that found itself alone refuses posts ([array] alone) until
	 * its next homes turn sees the others (a second at most). */
	for (int i = 0; i < AK_NODES; i++) {
		bool on = false;

		for (int t = 0; t < 100 && !on; t++) {
			json_t *a = ak_array(i);
			const char *repl = json_string_value(jget(a, "homes.replication"));

			on = repl != NULL && strcmp(repl, "alone") != 0;
			json_decref(a);
			if (!on)
				usleep(100000);
		}
		cr_assert(on, "node %d still finds itself alone", i + 1);
	}
	for (int i = 0; i < AK_NODES; i++)
		u[i] = user_at(i, u, i);

	/* A closed room created on node 2: every node has it when parleyctl
	 * returns, and each node's client finds it and posts there. */
	v = ctl_ok(&ak_node[1], "room create Club privacy=closed members=user%d,user%d,user%d,"
		   "user%d", u[0], u[1], u[2], k);
	cr_assert_eq(jint(v, "nodes_confirmed"), 3);
	cr_assert_gt(jint(v, "revision"), 0);
	snprintf(uri, sizeof(uri), "%s", jstr(v, "uri"));
	json_decref(v);
	for (int i = 0; i < AK_NODES; i++) {
		v = ctl_ok(&ak_node[i], "room Club");
		cr_assert_str_eq(jstr(v, "uri"), uri, "node %d", i + 1);
		cr_assert_str_eq(jstr(v, "privacy"), "closed");
		cr_assert_eq(json_array_size(jget(v, "members")), 4);
		json_decref(v);
	}
	for (int i = 0; i < AK_NODES; i++) {
		char found[256];

		g[i] = login(i, u[i]);
		cr_assert(kit_room_uri(g[i], "Club", found, sizeof(found)),
			  "node %d: Club not in chansrch", i + 1);
		cr_assert_str_eq(found, uri);
		kit_join_ok(g[i], uri);
		cr_assert_eq(post_code(g[i], uri, "hello from here"), 200, "node %d", i + 1);
	}

	/* An invitation made on node 3 is sent to the invited user's dialog
	 * on node 1 before parleyctl returns (the client reads it now). */
	v = ctl_ok(&ak_node[2], "invite Club user%d", u[0]);
	cr_assert_gt(jint(v, "revision"), 0);
	json_decref(v);
	m = gc_wait(g[0], 2000, "ntc:inv", uri, NULL);
	cr_assert_not_null(m, "no ntc:inv on node 1 for an invitation made on node 3");
	free(m);

	/* Each member removed on node 2: refused on his own node at once. */
	for (int i = 0; i < AK_NODES; i++) {
		char text[64];

		v = ctl_ok(&ak_node[1], "room member del Club user%d", u[i]);
		cr_assert_eq(jint(v, "nodes_confirmed"), 3);
		json_decref(v);
		snprintf(text, sizeof(text), "still here on node %d?", i + 1);
		cr_assert_eq(post_code(g[i], uri, text), 403, "node %d took a post of a removed "
			     "member", i + 1);
		m = gc_wait(g[i], 2000, "ntc:part", NULL);
		free(m);
		for (int j = 0; j < AK_NODES; j++) {
			list = members_on(j, "Club");
			cr_assert(!has(list, u[i]), "node %d still lists user%d", j + 1, u[i]);
			json_decref(list);
		}
	}
	for (int i = 0; i < AK_NODES; i++)
		gc_close(g[i]);

	/* A user added on node 3 registers on node 1 at once; removed on
	 * node 1, refused on node 3. */
	cr_assert_neq(register_at(0, 777, "pw"), 200);
	json_decref(ctl_ok(&ak_node[2], "user add user777 pw"));
	cr_assert_eq(register_at(0, 777, "pw"), 200, "node 1 does not know a user added on 3");
	json_decref(ctl_ok(&ak_node[0], "user passwd user777 pw2"));
	cr_assert_neq(register_at(2, 777, "pw"), 200);
	cr_assert_eq(register_at(2, 777, "pw2"), 200);
	json_decref(ctl_ok(&ak_node[0], "user del user777"));
	cr_assert_neq(register_at(2, 777, "pw2"), 200, "node 3 still knows a removed user");

	/* Two changes of one room at once, from nodes 1 and 3: both stay. */
	cr_assert_eq(run("%s -j -c %s room member add Club user%d > /dev/null & "
			 "%s -j -c %s room member add Club user%d > /dev/null & wait",
			 ctl_binary(), ak_node[0].conf, 40, ctl_binary(), ak_node[2].conf, 41), 0);
	for (int i = 0; i < AK_NODES; i++) {
		list = members_on(i, "Club");
		cr_assert(has(list, 40) && has(list, 41) && has(list, k),
			  "node %d lost a concurrent change", i + 1);
		json_decref(list);
	}

	/* One name at once on two nodes: one room gets it, the other command
	 * is refused; a rename to a taken name is refused too. */
	cr_assert_eq(run("(%s -j -c %s room create Twin > /dev/null; echo $? > %s/twin) & "
			 "(%s -j -c %s room create twin > /dev/null; echo $? > %s/twin) & wait",
			 ctl_binary(), ak_node[0].conf, ak_node[0].dir, ctl_binary(),
			 ak_node[2].conf, ak_node[2].dir), 0);
	cr_assert_eq(run("test $(cat %s/twin %s/twin | grep -c '^0$') -eq 1", ak_node[0].dir,
			 ak_node[2].dir), 0, "two nodes both created a room named Twin");
	for (int i = 0; i < AK_NODES; i++) {
		int twins = 0;
		size_t r;
		json_t *e;

		v = ctl_ok(&ak_node[i], "rooms");
		json_array_foreach(jget(v, "rooms"), r, e)
			twins += strcasecmp(json_string_value(json_object_get(e, "name")),
					    "twin") == 0;
		json_decref(v);
		cr_assert_eq(twins, 1, "node %d has %d rooms named twin", i + 1, twins);
	}
	cr_assert_eq(ctl(&ak_node[1], &v, "room set Club name=TWIN"), 1);
	cr_assert(strstr(jstr(v, "error"), "named") != NULL, "%s", jstr(v, "error"));
	json_decref(v);

	/* parleyctl array: every node applied the same revision. */
	v = ak_array(0);
	cr_assert_eq(json_object_size(jget(v, "catalog.nodes")), 3);
	cr_assert_eq(jint(v, "catalog.nodes.1"), jint(v, "catalog.nodes.3"));
	cr_assert_eq(jint(v, "catalog.bad_records"), 0);
	json_decref(v);
	run("rm -rf %s", pki);
}

/* A node stopped while the catalog changes catches up when it starts
 * again, before its first client is served. */
Test(catalog, a_restarted_node_catches_up_before_it_serves)
{
	int u[3];
	struct gc *g;
	char *m;

	for (int i = 0; i < AK_NODES; i++)
		ak_node_start(i, 5, NULL);
	for (int i = 0; i < AK_NODES; i++)
		u[i] = user_at(i, u, i);
	json_decref(ctl_ok(&ak_node[0], "room create Early"));

	server_kill(&ak_node[2], SIGTERM);
	json_decref(ctl_ok(&ak_node[0], "room create Later"));
	json_decref(ctl_ok(&ak_node[1], "room del Early"));
	json_decref(ctl_ok(&ak_node[0], "user add user778 pw"));

	server_restart(&ak_node[2]);
	/* Its first client: the rooms as they are now. */
	g = login(2, u[2]);
	m = kit_chansrch(g, "");
	cr_assert(strstr(m, "Later") != NULL, "node 3 serves without the room made while it "
		  "was down: %s", m);
	cr_assert(strstr(m, "Early") == NULL, "node 3 serves a room deleted while it was down");
	free(m);
	gc_close(g);
	cr_assert_eq(register_at(2, 778, "pw"), 200);
	cr_assert(run("grep -q 'caught up with the array' %s", ak_node[2].log) == 0);
}

/* Garbage in etcd's catalog is logged and skipped; the node goes on, and
 * the next change applies; so after etcd compacted its history. */
Test(catalog, bad_records_are_skipped_and_compaction_is_survived)
{
	long long full;
	bool done = false;
	json_t *v;

	for (int i = 0; i < 2; i++)
		ak_node_start(i, 5, NULL);
	cr_assert_eq(run("ETCDCTL_API=3 etcdctl --endpoints %s put "
			 "/parley/example.com/catalog/rooms/00000000-0000-4000-8000-000000000000 "
			 "'not json' > /dev/null", ak_etcd.url), 0);
	cr_assert_eq(run("head -c 1100000 /dev/zero | tr '\\0' x | ETCDCTL_API=3 etcdctl "
			 "--endpoints %s put /parley/example.com/catalog/users/big@example.com "
			 "> /dev/null", ak_etcd.url), 0);
	v = ctl_ok(&ak_node[0], "room create Fine");
	cr_assert_eq(jint(v, "nodes_confirmed"), 2);
	json_decref(v);
	for (int i = 0; i < 2; i++) {
		cr_assert(server_alive(&ak_node[i]));
		json_decref(ctl_ok(&ak_node[i], "room Fine"));
		v = ak_array(i);
		cr_assert_geq(jint(v, "catalog.bad_records"), 2, "node %d", i + 1);
		json_decref(v);
	}
	cr_assert(run("grep -q 'catalog_record_max' %s", ak_node[1].log) == 0);

	/* etcd's history compacted under the nodes: each reads the whole
	 * catalog once when its watch is renewed, and changes go on. */
	v = ak_array(0);
	full = jint(v, "catalog.full_reads");
	json_decref(v);
	cr_assert_eq(run("rev=$(ETCDCTL_API=3 etcdctl --endpoints %s get / -w fields | "
			 "sed -n 's/^\"Revision\" : //p'); ETCDCTL_API=3 etcdctl "
			 "--endpoints %s compact $rev > /dev/null", ak_etcd.url, ak_etcd.url), 0);
	for (int t = 0; t < 50; t++) {
		v = ak_array(0);
		done = jint(v, "catalog.full_reads") > full;
		json_decref(v);
		if (done)
			break;
		usleep(100000);
	}
	cr_assert(done, "node 1 did not read the whole catalog after a compaction");
	v = ctl_ok(&ak_node[1], "room set Fine topic=compacted");
	cr_assert_eq(jint(v, "nodes_confirmed"), 2);
	json_decref(v);
	v = ctl_ok(&ak_node[0], "room Fine");
	cr_assert_str_eq(jstr(v, "topic"), "compacted");
	json_decref(v);
}

/* A live node that does not confirm within [array] catalog_timeout_ms: the
 * answer names it, the change is stored, and that node applies it when it
 * runs again. */
Test(catalog, a_node_that_does_not_confirm_is_named)
{
	json_t *v;
	bool there = false;

	for (int i = 0; i < AK_NODES; i++)
		ak_node_start(i, 10, "catalog_timeout_ms = 1000\n");
	server_signal(&ak_node[2], SIGSTOP);
	cr_assert_eq(ctl(&ak_node[0], &v, "room create Late"), 1);
	cr_assert(strstr(jstr(v, "error"), "node 3 did not confirm") != NULL, "%s",
		  jstr(v, "error"));
	cr_assert(strstr(jstr(v, "error"), "catalog_timeout_ms (1000 ms)") != NULL, "%s",
		  jstr(v, "error"));
	json_decref(v);
	for (int i = 0; i < 2; i++)
		json_decref(ctl_ok(&ak_node[i], "room Late"));
	server_signal(&ak_node[2], SIGCONT);
	for (int t = 0; t < 50 && !there; t++) {
		there = ctl(&ak_node[2], NULL, "room Late") == 0;
		if (!there)
			usleep(100000);
	}
	cr_assert(there, "node 3 did not apply the change once it ran again");
	v = ctl_ok(&ak_node[1], "room set Late topic=all-three");
	cr_assert_eq(jint(v, "nodes_confirmed"), 3);
	json_decref(v);
}
