/* Files across the nodes of an array (dataplane/web/webfetch.h): a file
 * uploaded to one node's Web service is downloaded by a member on another
 * node from that node's Web service, which fetches it from the first over
 * HTTPS with a signed request, checks it against the first node's record
 * and keeps the copy. Real parleyd nodes, a real etcd, curl as the client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/gcclient.h"
#include "tests/array/arraykit.h"
#include "tests/integration/ctlrun.h"

TestSuite(files, .init = ak_setup, .fini = ak_teardown, .timeout = 120);

static uint16_t web_port[AK_NODES];

static void
start(int i)
{
	char more[256];

	web_port[i] = server_free_port();
	snprintf(more, sizeof(more), "[web]\nlisten = 127.0.0.1:%u\n[room:Files]\nfilepost = true\n",
		 web_port[i]);
	ak_node_start(i, 5, more);
}

static void
attr(const char *body, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), " %s=\"", name);
	p = strstr(body, pat);
	out[0] = '\0';
	if (p != NULL && (q = strchr(p += strlen(pat), '"')) != NULL)
		snprintf(out, cap, "%.*s", (int)(q - p), p);
}

/* getfutok (<up>) or getfdtok of <file> in room <uri>: the token and the
 * repository name; the xccos code. */
static int
token(struct gc *g, bool up, const char *uri, const char *file, char tok[40], char name[64])
{
	char data[512], code[8], *b;

	snprintf(data, sizeof(data), "<ftdb channelUri=\"%s\" fileUrl=\"%s\"/>", uri, file);
	cr_assert_eq(gc_cmd(g, up ? "getfutok" : "getfdtok", data), 200);
	b = gc_wait(g, 5000, "rpl:getftok", NULL);
	cr_assert_not_null(b, "no rpl:getftok");
	attr(b, "code", code, sizeof(code));
	attr(b, "token", tok, 40);
	attr(b, "fileUrl", name, 64);
	free(b);
	return atoi(code);
}

/* curl against node <i>'s Web service (its own certificate trusted), the
 * body into <to> (NULL: dropped); the HTTP status. */
static int
curl(int i, const char *to, const char *args, const char *path)
{
	char cmd[2048], out[16] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "curl -s --max-time 60 --cacert %s/tls/cert.pem -o %s "
		 "-w '%%{http_code}' %s 'https://127.0.0.1:%u/filestore/%s'", ak_node[i].dir,
		 to ? to : "/dev/null", args, web_port[i], path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (fgets(out, sizeof(out), p) == NULL)
		out[0] = '\0';
	pclose(p);
	return atoi(out);
}

/* A user that node 1 places on node <want>: user<u>. */
static int
user_on(int want)
{
	for (int u = 0; u < 12; u++)
		if (ak_place(0, u, NULL) == want)
			return u;
	cr_assert_fail("no user of 12 is placed on node %d", want + 1);
	return -1;
}

static struct gc *
login(int node, int u)
{
	char aor[64], err[256];
	struct gc *g;

	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	g = gc_open("127.0.0.1", ak_node[node].port, aor, "pw", err, sizeof(err));
	cr_assert_not_null(g, "%s at node %d: %s", aor, node + 1, err);
	return g;
}

Test(files, download_from_another_node)
{
	char uri[256], *b, q[256], tok[40], name[64], args[600], path[300], dl[300], src[300];
	const char *room;
	struct gc *ga, *gb;
	int ua, ub;

	start(0);
	start(1);
	ak_wait_draining(0, 2, false);	/* node 1 places on node 2 */
	ua = user_on(0);
	ub = user_on(1);
	ga = login(0, ua);
	gb = login(1, ub);

	snprintf(q, sizeof(q), "<qib qtype=\"BYNAME\" criteria=\"Files\" extended=\"false\"/>");
	cr_assert_eq(gc_cmd(ga, "chansrch", q), 200);
	b = gc_wait(ga, 5000, "rpl:chansrch", NULL);
	cr_assert(b && gc_room_uri(b, "Files", uri, sizeof(uri)), "no room Files");
	free(b);
	room = strrchr(uri, '/') + 1;

	/* Uploaded to node 1. */
	snprintf(src, sizeof(src), "%s/upload.bin", ak_node[0].dir);
	cr_assert_eq(run("head -c 300000 /dev/urandom > %s", src), 0);
	cr_assert_eq(token(ga, true, uri, "report.bin", tok, name), 200);
	snprintf(args, sizeof(args), "-T %s", src);
	snprintf(path, sizeof(path), "%s/%s?token=%s", room, name, tok);
	cr_assert_eq(curl(0, NULL, args, path), 201);
	cr_assert_neq(run("test -e %s/files/%s/%s", ak_node[1].dir, room, name), 0,
		      "node 2 has the file before anyone asked for it");

	/* Downloaded by a member on node 2, from node 2: the same bytes. */
	cr_assert_eq(token(gb, false, uri, name, tok, q), 200);
	snprintf(dl, sizeof(dl), "%s/download.bin", ak_node[1].dir);
	snprintf(path, sizeof(path), "%s/%s?token=%s", room, name, tok);
	cr_assert_eq(curl(1, dl, "", path), 200);
	cr_assert_eq(run("cmp -s %s %s", src, dl), 0, "node 2 served other bytes");
	cr_assert_eq(run("grep -q 'fetched %s/%s (300000 bytes) from node 1' %s", room, name,
			 ak_node[1].log), 0);
	/* Kept: a second download is served from node 2's copy. */
	cr_assert_eq(token(gb, false, uri, name, tok, q), 200);
	snprintf(path, sizeof(path), "%s/%s?token=%s", room, name, tok);
	cr_assert_eq(curl(1, NULL, "", path), 200);
	cr_assert_eq(run("test $(grep -c 'fetched %s/%s' %s) -eq 1", room, name, ak_node[1].log),
		     0, "fetched twice");

	/* A file no node has: 404 after asking. */
	cr_assert_eq(token(gb, false, uri, "0988239a-bb66-4616-90a4-b07771a2097c.txt", tok, q),
		     200);
	snprintf(path, sizeof(path), "%s/0988239a-bb66-4616-90a4-b07771a2097c.txt?token=%s", room,
		 tok);
	cr_assert_eq(curl(1, NULL, "", path), 404);

	/* Node 1 serves its files to nodes only: a forged signature, a
	 * stale one, or none with a token of another node, are refused. */
	snprintf(path, sizeof(path), "%s/%s", room, name);
	snprintf(args, sizeof(args), "-H 'X-Parley-Peer: 2.%ld.%064d'", (long)time(NULL) + 30, 0);
	cr_assert_eq(curl(0, NULL, args, path), 403);
	snprintf(args, sizeof(args), "-H 'X-Parley-Peer: 2.1.%064d'", 0);
	cr_assert_eq(curl(0, NULL, args, path), 403);
	cr_assert_eq(curl(0, NULL, "", path), 403, "a GET with neither token nor signature");
	gc_close(ga);
	gc_close(gb);
}
