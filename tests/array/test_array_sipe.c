/* pidgin-sipe in the array: the unmodified client (tests/sipe/sipe_driver,
 * libpurple without UI), configured with node 1, is redirected by node 1's
 * 301 to the user's node, signs on there and lists the rooms, and chats
 * with a client on another node. Every node serves the same certificate
 * (node 1's), as an array's nodes share a name. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/gcclient.h"
#include "tests/array/arraykit.h"
#include "tests/integration/chatkit.h"

TestSuite(array_sipe, .init = ak_setup, .fini = ak_teardown, .timeout = 150);

Test(array_sipe, redirected_and_signed_on)
{
	char tls[1024], cert[300], out[300], aor[64];
	int u, target = 0, st;

	ak_node_start(0, 5, NULL);
	snprintf(cert, sizeof(cert), "%s/tls/cert.pem", ak_node[0].dir);
	snprintf(tls, sizeof(tls), "[tls]\ncert = %s/tls/cert.pem\nkey = %s/tls/key.pem\n",
		 ak_node[0].dir, ak_node[0].dir);
	ak_node_start(1, 5, tls);
	ak_node_start(2, 5, tls);
	usleep(1500000);	/* every node's placement table has all three */

	/* A user whose node is not node 1 (the test client finds one). */
	for (u = 0; u < 50 && target == 0; u++)
		target = ak_place(0, u, NULL);
	u--;
	cr_assert_neq(target, 0, "every user placed on node 1");
	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	usleep(1500000);	/* that connection is gone from the loads again */

	snprintf(out, sizeof(out), "%s/sipe.out", ak_node[0].dir);
	st = run("timeout 120 %s --port %u --cert %s --user %s --password pw --timeout 20 "
		 "roomlist > %s", sipe_driver_path(), ak_node[0].port, cert, aor, out);
	run("sed 's/^/sipe| /' %s >&2", out);
	cr_assert_eq(st, 0, "sipe_driver exit status %d", st);
	cr_assert_eq(run("grep -q '^SIGNED_ON %s' %s", aor, out), 0, "not signed on");
	cr_assert_eq(run("grep -q '^ROOMLIST_DONE' %s", out), 0, "no room list");
	cr_assert_eq(run("grep -q '^DONE' %s", out), 0);
	/* Node 1 sent it on; the user's node served it. */
	cr_assert_eq(run("grep -q '%s redirected to 127.0.0.1:%u' %s", aor,
			 ak_node[target].port, ak_node[0].log), 0, "node 1 did not redirect %s",
		     aor);
	cr_assert_eq(run("grep -q '%s registered' %s", aor, ak_node[target].log), 0,
		     "%s did not register at node %d", aor, target + 1);
}

struct sipe_run {
	char	cmd[2048];
	int	status;
};

static void *
sipe_main(void *arg)
{
	struct sipe_run *r = arg;

	r->status = run("%s", r->cmd);
	return NULL;
}

/* pidgin-sipe signed on at one node chats, in a room, with a client on
 * another node: each gets the other's post (rooms across nodes,
 * dataplane/chat/fanout_peer.h). */
Test(array_sipe, chats_with_a_client_on_another_node)
{
	char pki[64], more[2048], cert[300], out[300], aor[64], uri[200], err[256];
	struct sipe_run sr;
	pthread_t th;
	struct gc *g;
	int u, target = 0;
	char *m;

	ak_pki_make(pki, sizeof(pki));
	ak_peer_node_start(0, pki, "[room:Across]\nprivacy = open\n", NULL);
	snprintf(cert, sizeof(cert), "%s/tls/cert.pem", ak_node[0].dir);
	snprintf(more, sizeof(more), "[tls]\ncert = %s/tls/cert.pem\nkey = %s/tls/key.pem\n"
		 "[room:Across]\nprivacy = open\n", ak_node[0].dir, ak_node[0].dir);
	ak_peer_node_start(1, pki, more, NULL);
	ak_peer_node_start(2, pki, more, NULL);
	ak_wait_links(7);
	for (int i = 0; i < AK_NODES; i++)
		ak_wait_homed(i);
	usleep(1500000);	/* every node's placement table has all three */
	for (u = 0; u < 50 && target == 0; u++)
		target = ak_place(0, u, NULL);
	u--;
	cr_assert_neq(target, 0, "every user placed on node 1");
	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	usleep(1500000);

	/* The other client: on node 1, in the room first. */
	g = gc_open_to("127.0.0.1", ak_node[0].port, "user60@example.com", "pw",
		       "sip:example.com;parley-placed", err, sizeof(err));
	cr_assert_not_null(g, "%s", err);
	cr_assert(kit_room_uri(g, "Across", uri, sizeof(uri)));
	kit_join_ok(g, uri);

	snprintf(out, sizeof(out), "%s/sipe.out", ak_node[0].dir);
	snprintf(sr.cmd, sizeof(sr.cmd), "timeout 150 %s --port %u --cert %s --user %s "
		 "--password pw --timeout 40 roomlist join Across send hello-from-sipe expect "
		 "sip:user60@example.com hello-from-gc > %s", sipe_driver_path(), ak_node[0].port,
		 cert, aor, out);
	pthread_create(&th, NULL, sipe_main, &sr);
	m = gc_wait(g, 90000, "hello-from-sipe", NULL);
	if (m == NULL)
		run("sed 's/^/sipe| /' %s >&2", out);
	cr_assert_not_null(m, "the client on node 1 never got sipe's post from node %d",
			   target + 1);
	cr_assert(strstr(m, aor) != NULL, "%s", m);
	free(m);
	cr_assert_eq(gc_post(g, uri, "hello-from-gc", NULL), 200);
	pthread_join(th, NULL);
	run("sed 's/^/sipe| /' %s >&2", out);
	cr_assert_eq(sr.status, 0, "sipe_driver exit status %d", sr.status);
	cr_assert_eq(run("grep -q '^MSG Across author=sip:user60@example.com "
			 "text=hello-from-gc' %s", out), 0, "sipe did not show the post from node 1");
	cr_assert_eq(run("grep -q '%s registered' %s", aor, ak_node[target].log), 0,
		     "%s did not sign on at node %d", aor, target + 1);
	gc_close(g);
	run("rm -rf %s", pki);
}
