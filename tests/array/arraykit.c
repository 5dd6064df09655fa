/* Shared by the array tests: a throwaway etcd (etcdfix.h) and up to
 * AK_NODES parleyd nodes joined through it (the integration harness starts
 * them), read through `parleyctl array`; and placement seen from a client
 * (perf/client.h). Criterion asserts on failure. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/client.h"
#include "tests/array/arraykit.h"
#include "tests/integration/ctlrun.h"

struct etcdfix ak_etcd;
struct server ak_node[AK_NODES];
bool ak_up[AK_NODES];

void
ak_setup(void)
{
	char err[2048];

	cr_assert(etcdfix_start(&ak_etcd, err, sizeof(err)) == 0, "%s", err);
}

void
ak_teardown(void)
{
	for (int i = 0; i < AK_NODES; i++)
		if (ak_up[i]) {
			server_stop(&ak_node[i]);
			ak_up[i] = false;
		}
	etcdfix_stop(&ak_etcd);
}

void
ak_node_start(int i, uint32_t ttl_s, const char *more)
{
	char extra[4096];
	json_t *a = NULL;

	/* timeout_ms: two cores shared by many tests make etcd slow at times. */
	snprintf(extra, sizeof(extra), "[server]\nnode_id = %d\n[array]\netcd = %s\n"
		 "lease_ttl_s = %u\nkeepalive_s = 1\ntimeout_ms = 3000\n%s", i + 1, ak_etcd.url,
		 ttl_s, more ? more : "");
	ctl_server_start(&ak_node[i], extra, NULL);
	ak_up[i] = true;
	/* The SIP port opens before the node joins: wait for its own key, and
	 * for the array's catalog (shown once the node caught up with it). */
	for (int t = 0; t < 100; t++) {
		if (ctl(&ak_node[i], &a, "array") == 0 && jget(a, "etcd.registered") != NULL &&
		    json_is_true(jget(a, "etcd.registered")) && jget(a, "catalog") != NULL)
			break;
		json_decref(a);
		a = NULL;
		if (!server_alive(&ak_node[i]))
			run("tail -30 %s >&2", ak_node[i].log);
		cr_assert(server_alive(&ak_node[i]), "node %d exited", i + 1);
		usleep(100000);
	}
	cr_assert_not_null(a, "node %d did not join the array", i + 1);
	json_decref(a);
}

/* `parleyctl array` on node <i>: must succeed. */
json_t *
ak_array(int i)
{
	return ctl_ok(&ak_node[i], "array");
}

/* The node record with <id> in <a>, or NULL. Borrowed. */
json_t *
ak_find(json_t *a, int id)
{
	json_t *nodes = jget(a, "nodes"), *n;
	size_t k;

	json_array_foreach(nodes, k, n)
		if (json_integer_value(json_object_get(n, "node_id")) == id)
			return n;
	return NULL;
}

bool
ak_present(int on, int id)
{
	json_t *a = ak_array(on);
	bool yes = ak_find(a, id) != NULL;

	json_decref(a);
	return yes;
}

/* ---- placement -------------------------------------------------------- */

/* The node index listening on <port>, or -1. */
static int
node_at_port(unsigned int port)
{
	for (int i = 0; i < AK_NODES; i++)
		if (ak_node[i].port == port)
			return i;
	return -1;
}

/* Registers user<u> at node <at>, following one 301 the way an RFC 3261
 * client does (the Contact as the new Request-URI, which carries the
 * mark). The index of the node that served it (200); the connection stays
 * open in *<keep> when not NULL, else it is closed. */
int
ak_place(int at, int u, struct pc_conn **keep)
{
	char aor[64], contact[300], ruri[300], err[256];
	unsigned int port;
	struct pc_conn *c;
	int st, served = at;

	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	c = pc_connect("127.0.0.1", ak_node[at].port, NULL, 5000, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	st = pc_register_to(c, aor, "pw", 600, NULL, "Contact", contact, sizeof(contact));
	if (st == 301) {
		/* <sip:127.0.0.1:PORT;transport=tls;parley-placed> */
		cr_assert(sscanf(contact, "<sip:127.0.0.1:%u;", &port) == 1, "%s", contact);
		cr_assert(strstr(contact, ";transport=tls;parley-placed>") != NULL, "%s", contact);
		served = node_at_port(port);
		cr_assert_geq(served, 0, "%s redirected to an unknown node: %s", aor, contact);
		cr_assert_neq(served, at, "%s redirected to the node it asked", aor);
		pc_close(c);
		snprintf(ruri, sizeof(ruri), "%.*s", (int)(strchr(contact, '>') - contact - 1),
			 contact + 1);
		c = pc_connect("127.0.0.1", (uint16_t)port, NULL, 5000, err, sizeof(err));
		cr_assert_not_null(c, "%s", err);
		st = pc_register_to(c, aor, "pw", 600, ruri, "Contact", contact, sizeof(contact));
	}
	cr_assert_eq(st, 200, "%s at node %d: %d (redirected again?)", aor, served + 1, st);
	if (keep != NULL)
		*keep = c;
	else
		pc_close(c);
	return served;
}

/* Waits until node <on>'s view shows node <id> with draining == <want>,
 * then one more turn of every node's placement table. */
void
ak_wait_draining(int on, int id, bool want)
{
	for (int t = 0; t < 50; t++) {
		json_t *a = ak_array(on);
		bool is = json_is_true(json_object_get(ak_find(a, id), "draining"));

		json_decref(a);
		if (is == want) {
			usleep(1500000);
			return;
		}
		usleep(100000);
	}
	cr_assert_fail("node %d never showed draining = %d", id, want);
}

/* Writes a node config into a fresh directory (no etcd fixture needed) and
 * runs parleyd on it to the end; its exit status, its log in <log>. */
int
ak_run_node(const char *extra, char *log, size_t loglen)
{
	char dir[64] = "/tmp/parley-array-XXXXXX", conf[128];
	FILE *f;
	int rc;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/parleyd.ini", dir);
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[server]\ndomain = example.com\ndata_dir = %s\n[sip]\nlisten = 127.0.0.1:%u\n"
		"[web]\nlisten = 127.0.0.1:%u\n%s", dir, server_free_port(), server_free_port(),
		extra);
	fclose(f);
	rc = run("timeout 60 %s -c %s > %s/log 2>&1", server_binary(), conf, dir);
	snprintf(log, loglen, "%s/log", dir);
	return rc;
}

/* ---- peer links and homes ---------------------------------------------- */

void
ak_pki_make(char *dir, size_t cap)
{
	snprintf(dir, cap, "/tmp/parley-pki-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(run("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
			 "-nodes -keyout ca.key -out ca.pem -subj /CN=parley-test-ca -days 2 && "
			 "for n in node1 node2 node3 node4; do "
			 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			 "-keyout $n.key -out $n.csr -subj /CN=$n || exit 1; "
			 "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
			 "-out $n.pem -days 2 || exit 1; done 2>/dev/null", dir), 0,
		     "openssl could not make the test certificates");
}

void
ak_peer_node_start(int i, const char *pki, const char *more, uint16_t *port)
{
	char conf[4096];
	uint16_t p = server_free_port();

	snprintf(conf, sizeof(conf), "peer_listen = 127.0.0.1:%u\nca = %s/ca.pem\n"
		 "cert = %s/node%d.pem\nkey = %s/node%d.key\npeer_name_prefix = node\n%s", p, pki,
		 pki, i + 1, pki, i + 1, more ? more : "");
	ak_node_start(i, 5, conf);
	if (port != NULL)
		*port = p;
}

static bool
link_up(int on, int id)
{
	json_t *a = ak_array(on), *l;
	bool up = false;
	size_t k;

	json_array_foreach(jget(a, "peers.links"), k, l)
		if (json_integer_value(json_object_get(l, "node_id")) == id)
			up = !strcmp(json_string_value(json_object_get(l, "state")), "up");
	json_decref(a);
	return up;
}

void
ak_wait_links(unsigned mask)
{
	for (int on = 0; on < AK_NODES; on++)
		for (int id = 1; id <= AK_NODES; id++) {
			int t;

			if (!(mask & (1u << on)) || !(mask & (1u << (id - 1))) || id == on + 1)
				continue;
			for (t = 0; t < 150 && !link_up(on, id); t++)
				usleep(100000);
			if (t == 150)
				run("tail -n 30 %s >&2", ak_node[on].log);
			cr_assert_lt(t, 150, "node %d's link with node %d is not up", on + 1, id);
		}
}

void
ak_wait_homed(int on)
{
	for (int t = 0; t < 200; t++) {
		json_t *a = ak_array(on), *rooms = ctl_ok(&ak_node[on], "rooms");
		bool ok = jget(a, "homes.unhomed") != NULL && jint(a, "homes.unhomed") == 0 &&
			  (long long)json_array_size(jget(a, "homes.rooms")) >= jint(rooms, "count");
		/* With replication on, every home has named its replica. */
		const char *repl = json_string_value(jget(a, "homes.replication"));

		ok = ok && (repl == NULL || strcmp(repl, "on") != 0 ||
			    jint(a, "homes.unreplicated") == 0);

		json_decref(a);
		json_decref(rooms);
		if (ok)
			return;
		usleep(100000);
	}
	cr_assert_fail("node %d: rooms without a home after 20 s", on + 1);
}
