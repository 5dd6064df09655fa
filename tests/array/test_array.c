/* The node array's membership end to end: real parleyd nodes on 127.0.0.1
 * (tests/integration/harness.h) joined through a real etcd
 * (tests/array/etcdfix.h), seen through `parleyctl array`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "perf/client.h"
#include "tests/array/arraykit.h"
#include "tests/integration/ctlrun.h"

TestSuite(array, .init = ak_setup, .fini = ak_teardown, .timeout = 90);

/* Three nodes: each sees all three, with the SIP address each advertises,
 * its pid and its load; a connection to node 2 shows in its record. */
Test(array, three_nodes_see_each_other)
{
	char sip[64];
	int fd;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool seen = false;

	for (int i = 0; i < AK_NODES; i++)
		ak_node_start(i, 5, NULL);
	for (int on = 0; on < AK_NODES; on++) {
		json_t *a = ak_array(on);

		cr_assert_eq(jint(a, "node_id"), on + 1);
		cr_assert_str_eq(jstr(a, "etcd.state"), "ok");
		cr_assert_str_eq(jstr(a, "prefix"), "/parley/example.com");
		cr_assert_eq(json_array_size(jget(a, "nodes")), AK_NODES);
		for (int id = 1; id <= AK_NODES; id++) {
			json_t *n = ak_find(a, id);

			cr_assert_not_null(n, "node %d does not see node %d", on + 1, id);
			snprintf(sip, sizeof(sip), "127.0.0.1:%u", ak_node[id - 1].port);
			cr_assert_str_eq(json_string_value(json_object_get(n, "sip")), sip);
			cr_assert_eq(json_integer_value(json_object_get(n, "pid")), ak_node[id - 1].pid);
			cr_assert(json_is_false(json_object_get(n, "draining")));
			cr_assert(json_is_integer(json_object_get(n, "conns")));
			cr_assert_eq(json_array_size(json_object_get(n, "lcores")), 1);
			cr_assert(json_is_number(json_object_get(json_array_get(
				json_object_get(n, "lcores"), 0), "busy")));
		}
		json_decref(a);
	}

	/* Load: an open connection on node 2 is in its record within ~2 s. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = htons(ak_node[1].port);
	cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	for (int t = 0; t < 40 && !seen; t++) {
		json_t *a = ak_array(0);

		seen = json_integer_value(json_object_get(ak_find(a, 2), "conns")) >= 1;
		json_decref(a);
		if (!seen)
			usleep(100000);
	}
	close(fd);
	cr_assert(seen, "node 2's connection never showed in the array");

	/* Drained, node 3 says so to the others. */
	cr_assert_eq(ctl(&ak_node[2], NULL, "drain"), 0);
	seen = false;
	for (int t = 0; t < 40 && !seen; t++) {
		json_t *a = ak_array(0);

		seen = json_is_true(json_object_get(ak_find(a, 3), "draining"));
		json_decref(a);
		if (!seen)
			usleep(100000);
	}
	cr_assert(seen, "node 3's drain never showed in the array");
}

/* A clean stop leaves at once (lease revoked); SIGKILL leaves after the
 * lease TTL, not before. */
Test(array, stopped_and_killed_nodes_leave)
{
	bool gone = false;
	int t;

	for (int i = 0; i < AK_NODES; i++)
		ak_node_start(i, 3, NULL);
	cr_assert(ak_present(0, 2) && ak_present(0, 3));

	cr_assert_eq(server_stop(&ak_node[1]), 0);
	ak_up[1] = false;
	cr_assert(!ak_present(0, 2), "node 2 stopped cleanly but is still in the array");

	server_kill(&ak_node[2], SIGKILL);
	ak_up[2] = false;
	run("rm -rf %s", ak_node[2].dir);
	cr_assert(ak_present(0, 3), "node 3 left before its lease expired");
	for (t = 0; t < 100 && !gone; t++) {
		gone = !ak_present(0, 3);
		if (!gone)
			usleep(100000);
	}
	cr_assert(gone, "node 3 killed but still in the array after 10 s (lease 3 s)");
	cr_assert_geq(t, 10, "node 3 left %d00 ms after SIGKILL: before its lease expired", t);
}

static bool
log_has(const char *log, const char *what)
{
	return run("grep -qF -- '%s' %s", what, log) == 0;
}

/* A second node with the id of a live one: refused, exit 1, the message
 * says which id, who holds it and what to do; the first stays. */
Test(array, duplicate_node_id_refused)
{
	char extra[256], log[128];

	ak_node_start(0, 5, NULL);
	snprintf(extra, sizeof(extra), "[server]\nnode_id = 1\n[array]\netcd = %s\n", ak_etcd.url);
	cr_assert_eq(ak_run_node(extra, log, sizeof(log)), 1);
	cr_assert(log_has(log, "[array] node_id 1 is already live in the array"),
		  "%s", log);
	cr_assert(log_has(log, "/parley/example.com/nodes/1"));
	cr_assert(log_has(log, "give every node its own [server] node_id"));
	run("cat %s >&2; rm -rf $(dirname %s)", log, log);
	cr_assert(ak_present(0, 1));
	cr_assert(server_alive(&ak_node[0]));
}

TestSuite(array_start, .timeout = 60);

/* [compliance] enabled = false in an array: refused at start with why
 * (its events would pile up: no other node exports them), exit 1. */
Test(array_start, compliance_disabled_refused)
{
	char extra[256], log[128];

	snprintf(extra, sizeof(extra), "[server]\nnode_id = 2\n[array]\netcd = http://127.0.0.1:%u\n"
		 "[compliance]\nenabled = false\n", server_free_port());
	cr_assert_eq(ak_run_node(extra, log, sizeof(log)), 1);
	cr_assert(log_has(log, "[compliance] enabled = false: no other node exports"), "%s", log);
	cr_assert(log_has(log, "in an array each node exports the posts of the rooms it homes"));
	run("rm -rf $(dirname %s)", log);
}

/* etcd down at start (both endpoints): exit 1 with what was tried; never
 * a standalone node. */
Test(array_start, etcd_unreachable_refused)
{
	char extra[256], log[128], url[64];
	uint16_t p1 = server_free_port(), p2 = server_free_port();

	snprintf(extra, sizeof(extra), "[array]\netcd = http://127.0.0.1:%u, http://127.0.0.1:%u\n",
		 p1, p2);
	cr_assert_eq(ak_run_node(extra, log, sizeof(log)), 1);
	cr_assert(log_has(log, "etcd unreachable"), "%s", log);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", p2);
	cr_assert(log_has(log, url));
	cr_assert(log_has(log, "does not start without etcd"));
	run("rm -rf $(dirname %s)", log);
}

/* etcd lost while running: the node serves on, logs the loss once, counts
 * it, and is in the array again when etcd returns. */
Test(array, etcd_lost_while_running)
{
	json_t *a = NULL;
	bool ok = false;

	/* Stopped longer than a request's timeout (3 s) after the next
	 * keepalive (a third of the lease), shorter than the lease (10 s). */
	ak_node_start(0, 10, NULL);
	cr_assert(etcdfix_signal(&ak_etcd, SIGSTOP) == 0);
	sleep(3);
	for (int t = 0; t < 20; t++) {
		cr_assert(server_alive(&ak_node[0]));
		/* Still serving: a parleyctl command that needs no etcd. */
		json_decref(ctl_ok(&ak_node[0], "stats"));
		/* array answers with this node's side: etcd lost, no node list. */
		a = ak_array(0);
		if (!strcmp(jstr(a, "etcd.state"), "lost"))
			break;
		json_decref(a);
		a = NULL;
		usleep(250000);
	}
	cr_assert_not_null(a, "the node did not notice that etcd is gone");
	cr_assert(json_is_null(jget(a, "nodes")));
	cr_assert_str_eq(jstr(a, "etcd.state"), "lost");
	cr_assert(strstr(jstr(a, "etcd.error"), "etcd unreachable") != NULL, "%s",
		  jstr(a, "etcd.error"));
	json_decref(a);
	a = NULL;
	cr_assert(etcdfix_signal(&ak_etcd, SIGCONT) == 0);
	for (int t = 0; t < 50 && !ok; t++) {
		if (ctl(&ak_node[0], &a, "array") == 0)
			ok = !strcmp(jstr(a, "etcd.state"), "ok") &&
			     jint(a, "etcd.lost_count") == 1 && ak_find(a, 1) != NULL;
		json_decref(a);
		a = NULL;
		if (!ok)
			usleep(100000);
	}
	if (!ok)
		run("cat %s >&2", ak_node[0].log);
	cr_assert(ok, "node 1 is not back in the array with lost_count 1");
	cr_assert_eq(run("test $(grep -c 'ARRAY: etcd lost' %s) -eq 1", ak_node[0].log), 0);
	cr_assert_eq(run("grep -q 'ARRAY: etcd answers again' %s", ak_node[0].log), 0);
}

/* A standalone node (no [array]) answers array with an error, exit 1. */
Test(array_start, standalone_has_no_array)
{
	struct server s;

	ctl_server_start(&s, NULL, NULL);
	cr_assert_eq(ctl(&s, NULL, "array"), 1);
	cr_assert_eq(run("grep -q standalone %s/ctl.err", s.dir), 0);
	server_stop(&s);
}

/* Clients all configured with node 1: sent to their node (sticky), spread
 * over the three, never to a drained node, never redirected twice; a
 * REGISTER with the mark is served where it lands. */
Test(array, placement, .timeout = 120)
{
	struct pc_conn *held[200];
	int first[6], per[AK_NODES] = { 0 }, nheld = 0, u = 10;
	char contact[300], err[256];
	struct pc_conn *c;

	for (int i = 0; i < AK_NODES; i++)
		ak_node_start(i, 5, NULL);
	usleep(1500000);	/* every node's table has all three */

	/* Sticky: the same user lands on the same node each time. (Six at a
	 * time, a table refresh apart: six placements cannot overload a node
	 * by more than the slack of 5, which would rightly move a user.) */
	for (int k = 0; k < 6; k++)
		first[k] = ak_place(0, k, NULL);
	usleep(1500000);
	for (int k = 0; k < 6; k++)
		cr_assert_eq(ak_place(0, k, NULL), first[k], "user%d moved", k);
	usleep(1500000);
	/* At its own node, a user is served without the mark (what
	 * pidgin-sipe does after a 301); and a marked REGISTER is served
	 * where it arrives, even off the user's node. */
	for (int k = 0; k < 6; k++) {
		char aor[64];

		if (first[k] == 0)
			continue;
		snprintf(aor, sizeof(aor), "user%d@example.com", k);
		cr_assert_eq(ak_place(first[k], k, NULL), first[k]);
		c = pc_connect("127.0.0.1", ak_node[0].port, NULL, 5000, err, sizeof(err));
		cr_assert_not_null(c, "%s", err);
		cr_assert_eq(pc_register_to(c, aor, "pw", 600, "sip:example.com;parley-placed",
					    "Contact", contact, sizeof(contact)), 200,
			     "a marked REGISTER for %s was not served", aor);
		pc_close(c);
	}

	/* Spread: 90 clients configured with node 1's address, held open, a
	 * little apart (the loads each node publishes are a second old at
	 * most), end up within 20% of even: 24 to 36 each. */
	usleep(1500000);
	for (int k = 0; k < 90; k++, u++) {
		per[ak_place(0, u, &held[nheld++])]++;
		usleep(50000);
	}
	fprintf(stderr, "placement of 90 clients: %d %d %d\n", per[0], per[1], per[2]);
	for (int i = 0; i < AK_NODES; i++)
		cr_assert(per[i] >= 24 && per[i] <= 36, "node %d got %d of 90", i + 1, per[i]);

	/* A drained node gets no new client. */
	cr_assert_eq(ctl(&ak_node[2], NULL, "drain"), 0);
	ak_wait_draining(0, 3, true);
	for (int k = 0; k < 20; k++, u++)
		cr_assert_neq(ak_place(0, u, &held[nheld++]), 2, "user%d sent to drained node 3", u);
	for (int i = 0; i < nheld; i++)
		pc_close(held[i]);
}

/* --check-config knows [array]: each rule is refused with its key named. */
Test(array_start, check_config)
{
	static const struct {
		const char *set, *says;
	} bad[] = {
		{ "--set array.etcd=127.0.0.1:2379", "[array] etcd: '127.0.0.1:2379' is not" },
		{ "--set array.etcd=http://a:1,b:2", "[array] etcd: 'b:2' is not" },
		{ "--set array.etcd=http://a:1 --set array.keepalive_s=5",
		  "[array] keepalive_s: 5 is not below lease_ttl_s 5" },
		{ "--set array.etcd=http://a:1 --set sip.listen=0.0.0.0:5061",
		  "[array] advertise_sip: 0.0.0.0:5061 is where clients are sent" },
		{ "--set array.etcd=http://a:1 --set array.peer_listen=nope",
		  "[array] peer_listen: 'nope' is not host:port" },
		{ "--set array.etcd=http://a:1 --set array.cert=/x.pem",
		  "[array] key: set both cert and key" },
		{ "--set array.etcd=http://a:1 --set array.prefix=/p/",
		  "[array] prefix: '/p/' must start with / and not end with one" },
		{ "--set array.lease_ttl_s=1", "[array] lease_ttl_s: 1 is outside 2..3600" },
		{ "--set array.advertise_sip=10.0.0.1:5061", "[array] etcd: not set, but other" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(run("%s --check-config %s 2>&1 | grep -qF -- \"%s\"", server_binary(),
				 bad[i].set, bad[i].says), 0, "%s: not \"%s\"", bad[i].set,
			     bad[i].says);
	/* Good: a full [array], and none at all (the embedded default). */
	cr_assert_eq(run("%s --check-config --set array.etcd='http://a:1, https://b:2' --set "
			 "array.advertise_sip=10.0.0.1:5061 --set array.peer_listen=10.0.0.1:7061 "
			 "--set array.ca=/etc/parley/ca.pem --set array.lease_ttl_s=10 --set array.keepalive_s=3 >/dev/null",
			 server_binary()), 0);
	cr_assert_eq(run("%s --check-config >/dev/null", server_binary()), 0);
}
