/* Peer links (control/peerlink.h) between real nodes: mutual TLS with
 * certificates of a cluster CA made here with openssl(1); links come up
 * both ways; a peer without a certificate, one of another CA, plain-text
 * garbage, a frame whose length prefix is over frame_max and a frame
 * shorter than a peer frame's header (dataplane/peer/peerframe.h) are each
 * closed with their reason logged, and the node and its links go on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/array/arraykit.h"
#include "tests/integration/ctlrun.h"

static char pki[64];

/* A CA, certificates for nodes 1..3 signed by it, and a rogue CA with a
 * certificate of its own, all ECDSA P-256, in <pki>. */
static void
make_pki(void)
{
	snprintf(pki, sizeof(pki), "/tmp/parley-pki-XXXXXX");
	cr_assert_not_null(mkdtemp(pki));
	cr_assert_eq(run("cd %s && for ca in ca rogue; do "
			 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			 "-keyout $ca.key -out $ca.pem -subj /CN=parley-test-$ca -days 2 || exit 1; "
			 "done; for n in node1 node2 node3 stranger; do "
			 "ca=ca; [ $n = stranger ] && ca=rogue; "
			 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			 "-keyout $n.key -out $n.csr -subj /CN=$n || exit 1; "
			 "openssl x509 -req -in $n.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial "
			 "-out $n.pem -days 2 || exit 1; done 2>/dev/null", pki), 0,
		     "openssl could not make the test certificates");
}

static void
setup(void)
{
	make_pki();
	ak_setup();
}

static void
teardown(void)
{
	ak_teardown();
	run("rm -rf %s", pki);
}

TestSuite(peer, .init = setup, .fini = teardown, .timeout = 120);

static uint16_t peer_port[AK_NODES];

/* Node <i> with a peer port and its certificate of the cluster CA, which
 * must name it (CN=node<i+1>), and frames of at most 64 KiB. */
static void
peer_node_start(int i)
{
	char more[1024];

	peer_port[i] = server_free_port();
	snprintf(more, sizeof(more), "peer_listen = 127.0.0.1:%u\nca = %s/ca.pem\n"
		 "cert = %s/node%d.pem\nkey = %s/node%d.key\npeer_name_prefix = node\n"
		 "peer_frame_max = 65536\n", peer_port[i], pki, pki, i + 1, pki, i + 1);
	ak_node_start(i, 5, more);
}

/* The state of node <on>'s link with node <id> ("up", ...), or "none". */
static const char *
link_state(int on, int id, char *buf, size_t cap)
{
	json_t *a = ak_array(on), *l;
	size_t k;

	snprintf(buf, cap, "none");
	json_array_foreach(jget(a, "peers.links"), k, l)
		if (json_integer_value(json_object_get(l, "node_id")) == id)
			snprintf(buf, cap, "%s", json_string_value(json_object_get(l, "state")));
	json_decref(a);
	return buf;
}

static void
wait_linked(int on, int id)
{
	char st[32];

	for (int t = 0; t < 100; t++) {
		if (strcmp(link_state(on, id, st, sizeof(st)), "up") == 0)
			return;
		usleep(100000);
	}
	run("tail -n 30 %s >&2", ak_node[on].log);
	cr_assert_fail("node %d's link with node %d is %s after 10 s", on + 1, id, st);
}

static bool
log_has(int i, const char *what)
{
	for (int t = 0; t < 50; t++) {
		if (run("grep -qF -- '%s' %s", what, ak_node[i].log) == 0)
			return true;
		usleep(100000);
	}
	return false;
}

Test(peer, links_up_and_intruders_refused)
{
	json_t *a;

	for (int i = 0; i < AK_NODES; i++)
		peer_node_start(i);
	for (int on = 0; on < AK_NODES; on++)
		for (int id = 1; id <= AK_NODES; id++)
			if (id != on + 1)
				wait_linked(on, id);
	cr_assert(log_has(0, "PEERLINK: link to node 2 (127.0.0.1:"));
	cr_assert(log_has(0, "ARRAY: peer link with node 2 up"));

	/* No certificate: refused by the node, which names the reason. */
	run("openssl s_client -connect 127.0.0.1:%u -CAfile %s/ca.pem </dev/null "
	    ">/dev/null 2>&1", peer_port[1], pki);
	cr_assert(log_has(1, "TLS handshake refused"), "no refusal logged");
	cr_assert(log_has(1, "did not return a certificate"));
	/* A certificate of another CA. */
	run("openssl s_client -connect 127.0.0.1:%u -CAfile %s/ca.pem -cert %s/stranger.pem "
	    "-key %s/stranger.key </dev/null >/dev/null 2>&1", peer_port[1], pki, pki, pki);
	cr_assert(log_has(1, "certificate verify failed"),
		  "a stranger's certificate was not refused");
	/* Plain-text garbage. */
	run("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 socat - TCP:127.0.0.1:%u "
	    ">/dev/null 2>&1", peer_port[1]);
	/* A good certificate, then a length prefix of 128 KiB, over
	 * peer_frame_max. */
	run("(printf '\\0\\2\\0\\0'; sleep 1) | timeout 10 openssl s_client -quiet "
	    "-connect 127.0.0.1:%u -CAfile %s/ca.pem -cert %s/node3.pem -key %s/node3.key "
	    ">/dev/null 2>&1", peer_port[1], pki, pki, pki);
	cr_assert(log_has(1, "bad frame: frame longer than the maximum"),
		  "the oversized frame not logged");
	/* A good certificate, then text that is no frame of ours. */
	run("(printf '\\0\\0\\0\\5hello'; sleep 1) | timeout 10 openssl s_client -quiet "
	    "-connect 127.0.0.1:%u -CAfile %s/ca.pem -cert %s/node3.pem -key %s/node3.key "
	    ">/dev/null 2>&1", peer_port[1], pki, pki, pki);
	cr_assert(log_has(1, "bad frame: frame shorter than its header"),
		  "the bad frame not logged");

	run("grep -F PEERLINK: %s | sed 's/^/node2| /' >&2", ak_node[1].log);
	/* The node counted them, and its real links are still up. */
	cr_assert(server_alive(&ak_node[1]));
	a = ak_array(1);
	cr_assert_geq(jint(a, "peers.refused_tls"), 3, "refused_tls %lld",
		      jint(a, "peers.refused_tls"));
	cr_assert_geq(jint(a, "peers.bad_frames"), 2);
	cr_assert_eq(jint(a, "peers.port"), peer_port[1]);
	json_decref(a);
	wait_linked(1, 1);
	wait_linked(1, 3);

	/* A node that stops: its links go, the others stay. */
	cr_assert_eq(server_stop(&ak_node[2]), 0);
	ak_up[2] = false;
	for (int t = 0; t < 100; t++) {
		char st[32];

		if (strcmp(link_state(0, 3, st, sizeof(st)), "none") == 0)
			break;
		usleep(100000);
	}
	{
		char st[32];

		cr_assert_str_eq(link_state(0, 3, st, sizeof(st)), "none");
		cr_assert_str_eq(link_state(0, 2, st, sizeof(st)), "up");
	}
}

/* peer_listen without the cluster CA is a configuration error. */
Test(peer, needs_ca)
{
	cr_assert_eq(run("%s --check-config --set array.etcd=http://a:1 "
			 "--set array.peer_listen=127.0.0.1:7061 2>&1 | grep -q "
			 "'\\[array\\] ca: required with peer_listen'", server_binary()), 0);
}

/* What the peer links cannot work with stops the node at start, before
 * it reaches etcd (none runs here), with the reason: a peer_listen that
 * is not numeric (the link thread never resolves names), and an etcd
 * prefix too long to name the array in HELLOs. */
Test(peer, refused_at_start)
{
	char extra[1024], log[128], tls[512];

	snprintf(tls, sizeof(tls), "ca = %s/ca.pem\ncert = %s/node1.pem\nkey = %s/node1.key\n",
		 pki, pki, pki);
	snprintf(extra, sizeof(extra), "[array]\netcd = http://127.0.0.1:%u\n"
		 "peer_listen = localhost:%u\n%s", server_free_port(), server_free_port(), tls);
	cr_assert_eq(ak_run_node(extra, log, sizeof(log)), 1);
	cr_assert_eq(run("grep -q '\\[array\\] peer_listen \"localhost:[0-9]*\" is not a "
			 "numeric ADDR:PORT' %s", log), 0, "no reason logged");
	run("rm -rf $(dirname %s)", log);

	snprintf(extra, sizeof(extra), "[array]\netcd = http://127.0.0.1:%u\nprefix = /parley/"
		 "a-name-that-is-far-too-long-to-name-an-array-in-the-hello-of-its-links\n"
		 "peer_listen = 127.0.0.1:%u\n%s", server_free_port(), server_free_port(), tls);
	cr_assert_eq(ak_run_node(extra, log, sizeof(log)), 1);
	cr_assert_eq(run("grep -qF 'over 64 characters, too long to name the array on its "
			 "peer links' %s", log), 0, "no reason logged");
	run("rm -rf $(dirname %s)", log);
}

/* peer_frame_max is bounded by what a peer frame may ever be. */
Test(peer, frame_max_range)
{
	cr_assert_eq(run("%s --check-config --set array.etcd=http://a:1 "
			 "--set array.peer_frame_max=100 2>&1 | grep -q "
			 "'\\[array\\] peer_frame_max: 100 is outside 4096..16777216'",
			 server_binary()), 0);
}
