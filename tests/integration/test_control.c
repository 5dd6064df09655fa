/* The control socket and parleyctl, read side: stats (and that counters
 * move by exactly the traffic sent), top, conns, rooms and room rosters,
 * the socket's permissions, errors, and the /parley commands on DPDK's
 * telemetry socket. Against a real parleyd (harness.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "perf/gcclient.h"
#include "tests/integration/ctlrun.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/harness.h"

/* The Lobby's URI, from parleyctl room. */
static void
lobby_uri(struct server *s, char *out, size_t cap)
{
	json_t *r = ctl_ok(s, "room Lobby");

	snprintf(out, cap, "%s", jstr(r, "uri"));
	json_decref(r);
}

Test(control, stats_shape, .timeout = 60)
{
	struct server s;
	json_t *st;

	ctl_server_start(&s, "[dpdk]\nlcores = 2\n", NULL);
	st = ctl_ok(&s, "stats");
	cr_assert_eq(jint(st, "node.lcores"), 2);
	cr_assert(json_is_true(jget(st, "node.accepting")));
	cr_assert_str_eq(jstr(st, "node.domain"), "example.com");
	cr_assert_eq(jint(st, "node.pid"), s.pid);
	cr_assert_eq(json_array_size(jget(st, "lcores")), 2);
	/* Every counter of the engine, per lcore and in total. */
	for (const char *const *k = (const char *const[]){ "conn_accepted", "tls_handshakes",
			"tls_failures", "sip_requests", "xccos_commands", "posts_in", "deliveries",
			"notices", "joins", "parts", "drop_outq", "drop_too_big", "ring_full",
			"storage_failed", "bytes_in", "bytes_out", "drops_total", NULL }; *k; k++) {
		char p[64];

		cr_assert(json_is_integer(jget(st, (snprintf(p, sizeof(p), "total.%s", *k), p))),
			  "total.%s", *k);
		cr_assert(json_is_integer(jget(st, (snprintf(p, sizeof(p), "lcores.1.%s", *k), p))),
			  "lcores.1.%s", *k);
	}
	cr_assert(json_is_object(jget(st, "total.conns_by_state")));
	cr_assert(json_is_integer(jget(st, "total.conns_by_state.open")));
	cr_assert(json_is_integer(jget(st, "lcores.0.conns_by_state.handshake")));
	cr_assert(json_is_true(jget(st, "lcores.0.reachable")));
	cr_assert(json_is_true(jget(st, "lcores.1.listening")));
	cr_assert(json_is_integer(jget(st, "lcores.0.cpu_ns")));
	cr_assert(json_is_integer(jget(st, "lcores.1.ring_in")));
	cr_assert_gt(jint(st, "rings.size"), 0);
	cr_assert_eq(json_array_size(jget(st, "rings.matrix")), 2);
	cr_assert(json_is_integer(jget(st, "rings.ring_full")));
	cr_assert(json_is_integer(jget(st, "storage.latency_us.p99")));
	cr_assert(json_is_integer(jget(st, "storage.latency_us.max")));
	cr_assert(json_is_integer(jget(st, "storage.batch.p50")));
	cr_assert(json_is_boolean(jget(st, "exporter.enabled")));
	if (json_is_true(jget(st, "exporter.enabled"))) {
		cr_assert(json_is_integer(jget(st, "exporter.lag_events")));
		cr_assert(json_is_integer(jget(st, "exporter.lag_s")));
	}
	cr_assert_gt(jint(st, "memory.rss_bytes"), 1 << 20);
	cr_assert(json_is_array(jget(st, "memory.mempools")));
	json_decref(st);
	cr_assert_eq(server_stop(&s), 0);
}

/* The counters move by exactly what three members and five posts make. */
Test(control, counters_move_by_the_traffic_sent, .timeout = 90)
{
	enum { M = 3, N = 5 };
	struct server s;
	struct gc *g[M];
	char lobby[200], text[64];
	json_t *a, *b;
	long long sum;

	ctl_server_start(&s, "[dpdk]\nlcores = 2\n", NULL);
	lobby_uri(&s, lobby, sizeof(lobby));
	for (int i = 0; i < M; i++) {
		g[i] = kit_user(&s, i);
		kit_join_ok(g[i], lobby);
	}
	/* The join notices are delivered before the snapshot. */
	for (int i = 0; i < M - 1; i++) {
		char *m = gc_wait(g[i], 5000, "ntc:join", "sip:user2@example.com", NULL);

		cr_assert_not_null(m);
		free(m);
	}
	a = ctl_ok(&s, "stats");
	cr_assert_eq(jint(a, "total.conns"), M);
	cr_assert_eq(jint(a, "total.conns_by_state.open"), M);
	cr_assert_eq(jint(a, "total.registered"), M);
	cr_assert_eq(jint(a, "total.channel_dialogs"), M);
	cr_assert_eq(jint(a, "total.room_presences"), M);
	for (int k = 0; k < N; k++) {
		snprintf(text, sizeof(text), "counted post %d", k);
		cr_assert_eq(gc_post(g[0], lobby, text, NULL), 200);
	}
	for (int i = 0; i < M; i++)
		for (int k = 0; k < N; k++) {
			char *m;

			snprintf(text, sizeof(text), "counted post %d", k);
			m = gc_wait(g[i], 5000, "<grpchat", text, NULL);
			cr_assert_not_null(m, "user%d did not get post %d", i, k);
			free(m);
		}
	b = ctl_ok(&s, "stats");
	cr_assert_eq(jint(b, "total.posts_in") - jint(a, "total.posts_in"), N);
	cr_assert_eq(jint(b, "total.posts_sequenced") - jint(a, "total.posts_sequenced"), N);
	cr_assert_eq(jint(b, "total.deliveries") - jint(a, "total.deliveries"), N * M);
	cr_assert_eq(jint(b, "total.xccos_commands") - jint(a, "total.xccos_commands"), N);
	cr_assert_eq(jint(b, "total.posts_refused") - jint(a, "total.posts_refused"), 0);
	/* By SIP method and response class, by XCCOS command: the N INFOs,
	 * each answered with one 200. */
	cr_assert_eq(jint(b, "total.sip_req_info") - jint(a, "total.sip_req_info"), N);
	cr_assert_eq(jint(b, "total.sip_resp_2xx") - jint(a, "total.sip_resp_2xx"), N);
	cr_assert_eq(jint(b, "total.xccos_cmd_grpchat") - jint(a, "total.xccos_cmd_grpchat"), N);
	cr_assert_eq(jint(b, "total.xccos_cmd_join") - jint(a, "total.xccos_cmd_join"), 0);
	cr_assert_eq(jint(b, "total.conn_accepted") - jint(a, "total.conn_accepted"), 0);
	cr_assert_eq(jint(b, "total.joins") - jint(a, "total.joins"), 0);
	cr_assert_eq(jint(b, "total.drops_total"), 0);
	cr_assert_geq(jint(b, "storage.groups") - jint(a, "storage.groups"), 1);
	cr_assert_geq(jint(b, "storage.requests") - jint(a, "storage.requests"), N);
	/* The total is the sum of the lcores. */
	sum = 0;
	for (int l = 0; l < 2; l++) {
		char p[64];

		snprintf(p, sizeof(p), "lcores.%d.deliveries", l);
		sum += jint(b, p);
	}
	cr_assert_eq(sum, jint(b, "total.deliveries"));
	json_decref(a);
	json_decref(b);
	for (int i = 0; i < M; i++)
		gc_close(g[i]);
	cr_assert_eq(server_stop(&s), 0);
}

Test(control, top_once_and_count, .timeout = 60)
{
	struct server s;
	struct gc *a;
	char lobby[200], cmd[1024], line[8192];
	json_t *v;
	FILE *p;
	int n = 0;

	ctl_server_start(&s, NULL, NULL);
	lobby_uri(&s, lobby, sizeof(lobby));
	a = kit_login(&s, "alice@example.com", "alice-pw");
	kit_join_ok(a, lobby);
	/* Four posts inside one three-second interval: 4 / interval per second. */
	snprintf(cmd, sizeof(cmd), "%s -c %s top --once --interval 3", ctl_binary(), s.conf);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	usleep(800000);
	for (int k = 0; k < 4; k++)
		cr_assert_eq(gc_post(a, lobby, "top sample", NULL), 200);
	cr_assert_not_null(fgets(line, sizeof(line), p), "top printed nothing");
	cr_assert_eq(pclose(p), 0);
	v = json_loads(line, 0, NULL);
	cr_assert_not_null(v, "top: not JSON: %s", line);
	cr_assert(fabs(json_number_value(jget(v, "posts_per_s")) *
		       json_number_value(jget(v, "interval_s")) - 4) < 0.5, "%s", line);
	cr_assert(fabs(json_number_value(jget(v, "deliveries_per_s")) *
		       json_number_value(jget(v, "interval_s")) - 4) < 0.5, "%s", line);
	cr_assert_eq(jint(v, "conns"), 1);
	cr_assert(json_is_number(jget(v, "drops_per_s")));
	cr_assert(json_is_true(jget(v, "accepting")));
	cr_assert_eq(json_array_size(jget(v, "lcores")), 1);
	cr_assert(json_is_number(jget(v, "lcores.0.load_pct")), "%s", line);
	cr_assert(json_is_number(jget(v, "lcores.0.events_per_s")));
	json_decref(v);

	snprintf(cmd, sizeof(cmd), "%s -s %s/parleyd.sock top --count 2 --interval 0.2",
		 ctl_binary(), s.dir);
	p = popen(cmd, "r");
	while (fgets(line, sizeof(line), p) != NULL) {
		v = json_loads(line, 0, NULL);
		cr_assert_not_null(v, "top: not JSON: %s", line);
		json_decref(v);
		n++;
	}
	cr_assert_eq(pclose(p), 0);
	cr_assert_eq(n, 2);
	gc_close(a);
	cr_assert_eq(server_stop(&s), 0);
}

Test(control, conns_lists_and_filters, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	json_t *v, *c;
	size_t i;
	char lobby[200];

	ctl_server_start(&s, "[dpdk]\nlcores = 2\n", NULL);
	lobby_uri(&s, lobby, sizeof(lobby));
	a = kit_login(&s, "alice@example.com", "alice-pw");
	b = kit_login(&s, "bob@example.com", "bob-pw");
	kit_join_ok(a, lobby);
	v = ctl_ok(&s, "conns");
	cr_assert_eq(jint(v, "count"), 2);
	cr_assert(json_is_false(jget(v, "truncated")));
	cr_assert_eq(json_array_size(jget(v, "unreachable")), 0);
	json_array_foreach(jget(v, "conns"), i, c) {
		bool alice = strcmp(jstr(c, "user"), "alice@example.com") == 0;

		cr_assert(alice || strcmp(jstr(c, "user"), "bob@example.com") == 0);
		cr_assert_str_eq(jstr(c, "state"), "open");
		cr_assert(json_is_true(jget(c, "registered")));
		cr_assert(strncmp(jstr(c, "peer"), "127.0.0.1:", 10) == 0, "%s", jstr(c, "peer"));
		cr_assert_lt(jint(c, "lcore"), 2);
		cr_assert_eq(jint(c, "dialogs"), 1);	/* the channel dialog */
		cr_assert_eq(jint(c, "rooms"), alice ? 1 : 0);
		cr_assert_geq(jint(c, "age_s"), 0);
		cr_assert(json_is_integer(jget(c, "id")));
	}
	json_decref(v);
	v = ctl_ok(&s, "conns --user bob");
	cr_assert_eq(jint(v, "count"), 1);
	cr_assert_str_eq(jstr(v, "conns.0.user"), "bob@example.com");
	json_decref(v);
	v = ctl_ok(&s, "conns --limit 1");
	cr_assert_eq(jint(v, "count"), 2);
	cr_assert_eq(jint(v, "listed"), 1);
	cr_assert(json_is_true(jget(v, "truncated")));
	json_decref(v);
	v = ctl_ok(&s, "conns --lcore 0");
	c = ctl_ok(&s, "conns --lcore 1");
	cr_assert_eq(jint(v, "count") + jint(c, "count"), 2);
	json_decref(v);
	json_decref(c);
	cr_assert_eq(ctl(&s, NULL, "conns --lcore 7"), 1);
	gc_close(a);
	gc_close(b);
	cr_assert_eq(server_stop(&s), 0);
}

/* The lcore of <user>'s connection, from parleyctl conns. */
static long long
lcore_of(struct server *s, const char *user)
{
	json_t *v = ctl_ok(s, "conns --user %s", user);
	long long l;

	cr_assert_eq(jint(v, "count"), 1, "%s", user);
	l = jint(v, "conns.0.lcore");
	json_decref(v);
	return l;
}

Test(control, rooms_and_present_members_with_lcores, .timeout = 60)
{
	enum { M = 4 };
	struct server s;
	struct gc *g[M];
	char lobby[200];
	json_t *v, *m, *w;
	size_t i;

	ctl_server_start(&s, "[dpdk]\nlcores = 2\n", NULL);
	lobby_uri(&s, lobby, sizeof(lobby));
	for (int k = 0; k < M; k++) {
		g[k] = kit_user(&s, k);
		kit_join_ok(g[k], lobby);
	}
	v = ctl_ok(&s, "rooms");
	cr_assert_eq(jint(v, "count"), 1);
	cr_assert_str_eq(jstr(v, "rooms.0.name"), "Lobby");
	cr_assert_str_eq(jstr(v, "rooms.0.uri"), lobby);
	cr_assert_eq(jint(v, "rooms.0.present"), M);
	cr_assert_str_eq(jstr(v, "rooms.0.privacy"), "open");
	json_decref(v);

	v = ctl_ok(&s, "room Lobby");
	cr_assert_eq(jint(v, "present"), M);
	cr_assert_lt(jint(v, "home_lcore"), 2);
	cr_assert(json_is_true(jget(v, "roster_complete")));
	cr_assert_eq(json_array_size(jget(v, "present_members")), M);
	json_array_foreach(jget(v, "present_members"), i, m) {
		const char *uri = jstr(m, "uri");
		int k;

		cr_assert(sscanf(uri, "sip:user%d@example.com", &k) == 1, "%s", uri);
		cr_assert(k >= 0 && k < M);
		/* The lcore the roster names is the one holding the connection. */
		cr_assert_eq(jint(m, "lcore"), lcore_of(&s, uri + 4), "%s", uri);
		cr_assert(json_is_false(jget(m, "manager")));
	}
	/* The same room by URI and by id. */
	w = ctl_ok(&s, "room show %s", lobby);
	cr_assert_str_eq(jstr(w, "id"), jstr(v, "id"));
	cr_assert_eq(json_array_size(jget(w, "present_members")), M);
	json_decref(w);
	w = ctl_ok(&s, "room %s", jstr(v, "id"));
	cr_assert_str_eq(jstr(w, "name"), "Lobby");
	json_decref(w);
	json_decref(v);
	/* One leaves: the roster follows. */
	gc_close(g[M - 1]);
	m = json_null();
	for (int tries = 0; tries < 50; tries++) {
		json_decref(m);
		m = ctl_ok(&s, "room Lobby");
		if (json_array_size(jget(m, "present_members")) == M - 1)
			break;
		usleep(100000);
	}
	cr_assert_eq(json_array_size(jget(m, "present_members")), M - 1);
	json_decref(m);
	for (int k = 0; k < M - 1; k++)
		gc_close(g[k]);
	cr_assert_eq(server_stop(&s), 0);
}

/* The socket is 0660 and refuses who is neither its owner nor in its
 * group; socket_group lets a group in. */
Test(control, socket_permissions, .timeout = 60)
{
	struct server s;
	char dir[64], extra[512], sock[128];
	struct stat st;
	json_t *v = NULL;

	/* A directory anyone may pass through, so only the socket's own mode
	 * decides (the data directory itself is 0700). */
	snprintf(dir, sizeof(dir), "/tmp/parley-ctl-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0711), 0);
	snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
	snprintf(extra, sizeof(extra), "[control]\nsocket = %s\nsocket_group = nogroup\n", sock);
	ctl_server_start(&s, extra, sock);
	cr_assert_eq(stat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0660, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_uid, getuid());
	cr_assert_eq(st.st_gid, 65534u, "group %u", st.st_gid);
	/* -c finds the socket the configuration names. */
	v = ctl_ok(&s, "loglevel");
	json_decref(v);
	/* Nobody, outside the group: refused, and parleyctl says so. */
	cr_assert_eq(ctl_as("setpriv --reuid=65534 --regid=1 --clear-groups", sock, &v, "stats"),
		     3);
	cr_assert_null(v);
	cr_assert_eq(run("setpriv --reuid=65534 --regid=1 --clear-groups %s -s %s stats 2>&1 | "
			 "grep -q 'Permission denied'", ctl_binary(), sock), 0);
	/* Nobody, in the group: let in. */
	cr_assert_eq(ctl_as("setpriv --reuid=65534 --regid=65534 --clear-groups", sock, &v,
			    "stats"), 0);
	cr_assert_eq(jint(v, "node.pid"), s.pid);
	json_decref(v);
	cr_assert_eq(server_stop(&s), 0);
	cr_assert_neq(access(sock, F_OK), 0, "the socket file stays after stop");
	run("rm -rf %s", dir);
}

Test(control, default_socket_refuses_others, .timeout = 60)
{
	struct server s;
	char sock[300];
	struct stat st;
	json_t *v = NULL;

	ctl_server_start(&s, NULL, NULL);
	snprintf(sock, sizeof(sock), "%s/parleyd.sock", s.dir);
	cr_assert_eq(stat(sock, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0660);
	cr_assert_eq(ctl_as("setpriv --reuid=65534 --regid=65534 --clear-groups", sock, &v,
			    "stats"), 3);
	cr_assert_null(v);
	cr_assert_eq(server_stop(&s), 0);
}

Test(control, config_keys_are_checked, .timeout = 30)
{
	cr_assert_neq(run("%s --check-config --set control.socket_mode=0999 >/dev/null 2>&1",
			  server_binary()), 0);
	cr_assert_neq(run("%s --check-config --set control.socket_group=no-such-group "
			  ">/dev/null 2>&1", server_binary()), 0);
	cr_assert_neq(run("%s --check-config --set control.socket_owner=no-such-user "
			  ">/dev/null 2>&1", server_binary()), 0);
	cr_assert_eq(run("%s --check-config --set control.socket_mode=0600 --set "
			 "control.socket_group=nogroup >/dev/null 2>&1", server_binary()), 0);
}

Test(control, errors_and_exit_status, .timeout = 60)
{
	struct server s;
	json_t *v = NULL;

	ctl_server_start(&s, NULL, NULL);
	/* The server refuses: exit 1, {"error": ...} on stdout. */
	cr_assert_eq(ctl(&s, &v, "room Attic"), 1);
	cr_assert_not_null(v);
	cr_assert(strstr(jstr(v, "error"), "Attic") != NULL);
	json_decref(v);
	cr_assert_eq(ctl(&s, &v, "raw /parley/frobnicate"), 1);
	cr_assert(strstr(jstr(v, "error"), "unknown command") != NULL);
	json_decref(v);
	cr_assert_eq(ctl(&s, &v, "raw /parley/room '{\"room\":5}'"), 1);
	cr_assert(strstr(jstr(v, "error"), "room") != NULL);
	json_decref(v);
	/* Params that are not JSON, straight on the socket. */
	cr_assert_eq(run("python3 -c '"
			 "import socket, sys\n"
			 "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
			 "s.connect(sys.argv[1])\n"
			 "f = s.makefile(\"rwb\")\n"
			 "f.readline()\n"
			 "f.write(b\"/parley/room,{\\\"room\\\":\\n\"); f.flush()\n"
			 "sys.exit(0 if b\"not a JSON object\" in f.readline() else 1)\n"
			 "' %s/parleyd.sock", s.dir), 0);
	cr_assert_eq(ctl(&s, &v, "room create Attic privacy=private"), 1);
	cr_assert(strstr(jstr(v, "error"), "privacy") != NULL);
	json_decref(v);
	cr_assert_eq(ctl(&s, &v, "room create Attic colour=red"), 1);
	cr_assert(strstr(jstr(v, "error"), "colour") != NULL);
	json_decref(v);
	/* The commands list, and help for one. */
	v = ctl_ok(&s, "raw /");
	cr_assert(json_is_array(v));
	cr_assert_geq(json_array_size(v), 18);
	json_decref(v);
	v = ctl_ok(&s, "raw /help /parley/stats");
	cr_assert(json_is_string(jget(v, "/parley/stats")));
	json_decref(v);
	/* Usage: 2. No socket: 3. */
	cr_assert_eq(ctl(&s, NULL, "frobnicate"), 2);
	cr_assert_eq(ctl(&s, NULL, "room member add Lobby"), 2);
	cr_assert_eq(ctl_as("", "/nonexistent/parleyd.sock", NULL, "stats 2>/dev/null"), 3);
	cr_assert_eq(server_stop(&s), 0);
}

/* The stock dpdk-telemetry.py speaks this: SOCK_SEQPACKET, a greeting,
 * then "command,params" -> {"command": value}. */
Test(control, dpdk_telemetry_socket, .timeout = 60)
{
	struct server s;
	struct gc *a;
	char lobby[200], rundir[256], out[300];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	json_t *v, *l;
	json_error_t je;

	ctl_server_start(&s, NULL, NULL);
	lobby_uri(&s, lobby, sizeof(lobby));
	a = kit_login(&s, "alice@example.com", "alice-pw");
	kit_join_ok(a, lobby);
	cr_assert_eq(gc_post(a, lobby, "for telemetry", NULL), 200);
	free(gc_wait(a, 5000, "for telemetry", NULL));
	/* The runtime directory as EAL and dpdk-telemetry.py compute it. */
	if (getuid() == 0)
		snprintf(rundir, sizeof(rundir), "/var/run/dpdk/parleyd-%d", (int)s.pid);
	else
		snprintf(rundir, sizeof(rundir), "%s/dpdk/parleyd-%d", xdg ? xdg : "/tmp",
			 (int)s.pid);
	snprintf(out, sizeof(out), "%s/telemetry.json", s.dir);
	cr_assert_eq(run("python3 -c '"
			 "import socket, json, sys\n"
			 "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
			 "s.connect(sys.argv[1] + \"/dpdk_telemetry.v2\")\n"
			 "hello = json.loads(s.recv(1024))\n"
			 "out = {}\n"
			 "for c in [\"/parley/stats\", \"/parley/lcore,0\", \"/parley/rooms\"]:\n"
			 "    s.send(c.encode())\n"
			 "    out.update(json.loads(s.recv(hello[\"max_output_len\"])))\n"
			 "print(json.dumps(out))\n"
			 "' %s > %s", rundir, out), 0);
	v = json_load_file(out, 0, &je);
	cr_assert_not_null(v, "%s", je.text);
	l = jget(v, "/parley/stats");
	cr_assert(json_is_object(l));
	cr_assert_eq(jint(l, "posts_in"), 1);
	cr_assert_eq(jint(l, "conns"), 1);
	cr_assert_eq(jint(l, "accepting"), 1);
	cr_assert(json_is_integer(jget(l, "commit_latency_p99_us")));
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(v, "/parley/lcore"),
							"posts_in")), 1);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(v, "/parley/rooms"),
							  0)), "Lobby");
	json_decref(v);
	gc_close(a);
	cr_assert_eq(server_stop(&s), 0);
}

/* [tls] record_layer: with parley (the default), quiet TLS 1.3 sessions
 * leave OpenSSL for our record layer, and traffic goes on after idling;
 * with openssl, none does. */
static void
check_record_layer(const char *ini, bool own)
{
	enum { M = 3 };
	struct server s;
	struct gc *g[M];
	char lobby[200];
	json_t *st;

	ctl_server_start(&s, ini, NULL);
	lobby_uri(&s, lobby, sizeof(lobby));
	for (int i = 0; i < M; i++) {
		g[i] = kit_user(&s, i);
		kit_join_ok(g[i], lobby);
	}
	sleep(3);	/* idle: the sweep trims every session */
	for (int k = 0; k < 2; k++) {
		char text[64];

		snprintf(text, sizeof(text), "after idling %d", k);
		cr_assert_eq(gc_post(g[k], lobby, text, NULL), 200);
		for (int i = 0; i < M; i++) {
			char *m = gc_wait(g[i], 5000, "<grpchat", text, NULL);

			cr_assert_not_null(m, "user%d did not get post %d", i, k);
			free(m);
		}
	}
	st = ctl_ok(&s, "stats");
	if (own)
		cr_assert_geq(jint(st, "total.tls_handoffs"), M);
	else
		cr_assert_eq(jint(st, "total.tls_handoffs"), 0);
	cr_assert_eq(jint(st, "total.tls_bad_mac"), 0);
	cr_assert_eq(jint(st, "total.drops_total"), 0);
	json_decref(st);
	for (int i = 0; i < M; i++)
		gc_close(g[i]);
	cr_assert_eq(server_stop(&s), 0);
}

Test(control, tls_record_layer_parley, .timeout = 60)
{
	check_record_layer("[dpdk]\nlcores = 2\n", true);
}

Test(control, tls_record_layer_openssl, .timeout = 60)
{
	check_record_layer("[dpdk]\nlcores = 2\n[tls]\nrecord_layer = openssl\n", false);
}
