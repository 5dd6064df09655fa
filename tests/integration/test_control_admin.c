/* The control socket and parleyctl, admin side: rooms created, changed and
 * deleted on a running server (seen in chansrch, joinable, refused), members
 * and managers, invitations (getinv and ntc:inv), users (login works after
 * add, fails after del), drain, reload and the log level. Against a real
 * parleyd (harness.h), driven by the Group Chat client (gcclient.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/gcclient.h"
#include "tests/integration/ctlrun.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/harness.h"

static int
join_code(struct gc *g, const char *uri)
{
	char *b = gc_join(g, uri, 5000);
	int code = kit_resp_code(b);

	free(b);
	return code;
}

/* The result code of a post by <g>: 200 when it comes back as a grpchat,
 * else the code of the rpl:grpchat refusing it. */
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
		if (m != NULL) {
			free(m);
			return code;
		}
	}
	cr_assert_fail("%s: nothing came back for '%s'", gc_aor(g), text);
	return -1;
}

Test(control_admin, created_room_is_visible_and_joinable, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	char uri[200], other[200], *m;
	json_t *v;

	ctl_server_start(&s, NULL, NULL);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	b = kit_login(&s, "bob@example.com", "bob-pw");
	cr_assert(!kit_room_uri(a, "Attic", uri, sizeof(uri)));
	v = ctl_ok(&s, "room create Attic 'description=Under the roof' topic=dust "
		   "managers=alice logged=false");
	cr_assert_str_eq(jstr(v, "name"), "Attic");
	cr_assert_str_eq(jstr(v, "privacy"), "open");
	cr_assert_str_eq(jstr(v, "description"), "Under the roof");
	cr_assert_str_eq(jstr(v, "topic"), "dust");
	cr_assert_str_eq(jstr(v, "managers.0"), "sip:alice@example.com");
	cr_assert(json_is_false(jget(v, "logged")));
	cr_assert(json_is_true(jget(v, "filepost")));
	cr_assert(strncmp(jstr(v, "uri"), "ma-chan://example.com/", 22) == 0);
	cr_assert_eq(strlen(jstr(v, "id")), 36);
	/* No restart: chansrch shows it at once, and it can be joined. */
	cr_assert(kit_room_uri(a, "Attic", uri, sizeof(uri)), "a created room is not in chansrch");
	cr_assert_str_eq(uri, jstr(v, "uri"));
	json_decref(v);
	m = gc_join(a, uri, 5000);
	cr_assert_eq(kit_resp_code(m), 200, "%s", m ? m : "(none)");
	cr_assert(strstr(m, "12276") != NULL, "a manager joins without the manager key: %s", m);
	free(m);
	cr_assert_eq(join_code(b, uri), 200);
	cr_assert_eq(post_code(b, uri, "first post in the attic"), 200);
	m = gc_wait(a, 5000, "<grpchat", "first post in the attic", NULL);
	cr_assert_not_null(m);
	free(m);
	/* The same name again (any case) is refused. */
	cr_assert_eq(ctl(&s, &v, "room create attic"), 1);
	cr_assert(strstr(jstr(v, "error"), "exists") != NULL);
	json_decref(v);
	/* set: a new topic and a new name, seen in chansrch. */
	v = ctl_ok(&s, "room set Attic topic=cobwebs name=Loft");
	cr_assert_str_eq(jstr(v, "name"), "Loft");
	cr_assert_str_eq(jstr(v, "topic"), "cobwebs");
	json_decref(v);
	m = kit_chansrch(b, "");
	cr_assert(strstr(m, "name=\"Loft\"") != NULL && strstr(m, "topic=\"cobwebs\"") != NULL,
		  "%s", m);
	cr_assert(strstr(m, "name=\"Attic\"") == NULL);
	free(m);
	/* del: both present leave (each told), gone from chansrch, posts
	 * refused. */
	v = ctl_ok(&s, "room del Loft");
	cr_assert(json_is_true(jget(v, "deleted")));
	cr_assert_eq(jint(v, "evicted"), 2);
	json_decref(v);
	m = gc_wait(a, 5000, "ntc:part", "sip:alice@example.com", uri, NULL);
	cr_assert_not_null(m, "alice was not told she left the deleted room");
	free(m);
	cr_assert(!kit_room_uri(b, "Loft", other, sizeof(other)));
	cr_assert_neq(post_code(a, uri, "into the void"), 200);
	v = ctl_ok(&s, "rooms");
	cr_assert_eq(jint(v, "count"), 1);
	json_decref(v);
	gc_close(a);
	gc_close(b);
	cr_assert_eq(server_stop(&s), 0);
}

Test(control_admin, removed_member_of_closed_room_is_refused, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	char uri[200], *m;
	json_t *v;

	ctl_server_start(&s, NULL, NULL);
	v = ctl_ok(&s, "room create Club privacy=closed "
		   "members=alice@example.com,sip:bob@example.com");
	cr_assert_str_eq(jstr(v, "privacy"), "closed");
	cr_assert_eq(json_array_size(jget(v, "members")), 2);
	snprintf(uri, sizeof(uri), "%s", jstr(v, "uri"));
	json_decref(v);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	b = kit_login(&s, "bob@example.com", "bob-pw");
	cr_assert_eq(join_code(a, uri), 200);
	cr_assert_eq(join_code(b, uri), 200);
	cr_assert_eq(post_code(b, uri, "bob is in"), 200);

	v = ctl_ok(&s, "room member del Club bob");
	cr_assert_eq(json_array_size(jget(v, "members")), 1);
	cr_assert_str_eq(jstr(v, "members.0"), "sip:alice@example.com");
	cr_assert_eq(jint(v, "evicted"), 1);
	json_decref(v);
	/* No longer a member: out of the room (bob is told, and so are the
	 * others), his posts and new joins refused; alice is not affected. */
	m = gc_wait(b, 5000, "ntc:part", "sip:bob@example.com", uri, NULL);
	cr_assert_not_null(m, "bob was not told he left");
	free(m);
	m = gc_wait(a, 5000, "ntc:part", "sip:bob@example.com", NULL);
	cr_assert_not_null(m, "alice did not see bob leave");
	free(m);
	v = ctl_ok(&s, "room Club");
	cr_assert_eq(json_array_size(jget(v, "present_members")), 1);
	json_decref(v);
	cr_assert_eq(post_code(b, uri, "bob again"), 403);
	cr_assert_null(gc_wait(a, 500, "bob again", NULL));
	cr_assert_eq(join_code(b, uri), 403);
	cr_assert_eq(post_code(a, uri, "alice still here"), 200);
	/* Removing who is not there is an error. */
	cr_assert_eq(ctl(&s, &v, "room member del Club bob"), 1);
	cr_assert(strstr(jstr(v, "error"), "not a member") != NULL);
	json_decref(v);
	/* Back in. */
	json_decref(ctl_ok(&s, "room member add Club bob"));
	cr_assert_eq(join_code(b, uri), 200);
	cr_assert_eq(post_code(b, uri, "bob is back"), 200);

	/* Managers: listed, and the manager key on join. */
	v = ctl_ok(&s, "room manager add Club bob");
	cr_assert_str_eq(jstr(v, "managers.0"), "sip:bob@example.com");
	json_decref(v);
	v = ctl_ok(&s, "room Club");
	cr_assert_eq(json_array_size(jget(v, "present_members")), 2);
	json_decref(v);
	v = ctl_ok(&s, "room manager del Club bob");
	cr_assert_eq(json_array_size(jget(v, "managers")), 0);
	json_decref(v);
	cr_assert_eq(ctl(&s, NULL, "room manager del Club bob"), 1);
	gc_close(a);
	gc_close(b);
	cr_assert_eq(server_stop(&s), 0);
}

Test(control_admin, drain_refuses_new_connections_and_keeps_old, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	char lobby[200], err[256], *m;
	json_t *v;

	ctl_server_start(&s, "[dpdk]\nlcores = 2\n", NULL);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	cr_assert(kit_room_uri(a, "Lobby", lobby, sizeof(lobby)));
	cr_assert_eq(join_code(a, lobby), 200);

	v = ctl_ok(&s, "drain");
	cr_assert(json_is_false(jget(v, "accepting")));
	json_decref(v);
	b = gc_open("127.0.0.1", s.port, "bob@example.com", "bob-pw", err, sizeof(err));
	cr_assert_null(b, "a drained node accepted a new connection");
	v = ctl_ok(&s, "stats");
	cr_assert(json_is_false(jget(v, "node.accepting")));
	cr_assert(json_is_false(jget(v, "lcores.0.listening")));
	cr_assert(json_is_false(jget(v, "lcores.1.listening")));
	cr_assert_eq(jint(v, "total.conns"), 1);
	json_decref(v);
	/* The existing session goes on. */
	cr_assert_eq(post_code(a, lobby, "still talking while drained"), 200);
	m = kit_chansrch(a, "");
	free(m);

	v = ctl_ok(&s, "drain off");
	cr_assert(json_is_true(jget(v, "accepting")));
	json_decref(v);
	b = kit_login(&s, "bob@example.com", "bob-pw");
	gc_close(b);
	gc_close(a);
	cr_assert_eq(server_stop(&s), 0);
}

Test(control_admin, invite_shows_in_getinv_and_as_a_notice, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	char lobby[200], needle[300], *m;
	json_t *v;

	ctl_server_start(&s, NULL, NULL);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	cr_assert(kit_room_uri(a, "Lobby", lobby, sizeof(lobby)));
	v = ctl_ok(&s, "invite Lobby alice --from bob");
	cr_assert_str_eq(jstr(v, "user"), "sip:alice@example.com");
	cr_assert_str_eq(jstr(v, "author"), "sip:bob@example.com");
	cr_assert_str_eq(jstr(v, "room"), lobby);
	cr_assert_eq(jint(v, "invite_id"), 1);
	cr_assert_eq(jint(v, "notified"), 1);
	json_decref(v);
	/* The live notice. */
	snprintf(needle, sizeof(needle), "chanUri=\"%s\"", lobby);
	m = gc_wait(a, 5000, "ntc:inv", needle, NULL);
	cr_assert_not_null(m, "no ntc:inv");
	cr_assert(strstr(m, "<inv inviteId=\"1\" domain=\"example.com\"") != NULL, "%s", m);
	cr_assert(strstr(m, "author=\"sip:bob@example.com\"") != NULL, "%s", m);
	cr_assert(strstr(m, " ts=\"") != NULL, "%s", m);
	free(m);
	/* And getinv. */
	cr_assert_eq(gc_cmd(a, "getinv", "<inv inviteId=\"1\" domain=\"example.com\"/>"), 200);
	m = gc_wait(a, 5000, "rpl:getinv", NULL);
	cr_assert_eq(kit_resp_code(m), 200);
	cr_assert(strstr(m, needle) != NULL && strstr(m, "sip:bob@example.com") != NULL, "%s",
		  m);
	free(m);
	/* Not connected: no notice, but getinv has it at the next sign-in. */
	v = ctl_ok(&s, "invite %s bob@example.com", lobby);
	cr_assert_eq(jint(v, "notified"), 0);
	cr_assert_str_eq(jstr(v, "author"), "sip:admin@example.com");
	json_decref(v);
	b = kit_login(&s, "bob@example.com", "bob-pw");
	cr_assert_eq(gc_cmd(b, "getinv", "<inv inviteId=\"1\" domain=\"example.com\"/>"), 200);
	m = gc_wait(b, 5000, "rpl:getinv", NULL);
	cr_assert(m != NULL && strstr(m, needle) != NULL, "%s", m ? m : "(none)");
	free(m);
	cr_assert_eq(ctl(&s, NULL, "invite Nowhere bob"), 1);
	gc_close(a);
	gc_close(b);
	cr_assert_eq(server_stop(&s), 0);
}

Test(control_admin, users_added_can_log_in_removed_cannot, .timeout = 60)
{
	struct server s;
	struct gc *g;
	char err[256];
	json_t *v;

	ctl_server_start(&s, NULL, NULL);
	g = gc_open("127.0.0.1", s.port, "carol@example.com", "carol-pw", err, sizeof(err));
	cr_assert_null(g);
	v = ctl_ok(&s, "user add carol carol-pw");
	cr_assert_str_eq(jstr(v, "user"), "carol@example.com");
	cr_assert_eq(jint(v, "users"), HARNESS_USERS + 3);
	json_decref(v);
	cr_assert_eq(run("grep -c '^carol@example.com:example.com:' %s/users.htdigest | "
			 "grep -qx 2", s.dir), 0, "MD5 and SHA-256 lines");
	g = kit_login(&s, "carol@example.com", "carol-pw");
	gc_close(g);
	cr_assert_eq(ctl(&s, &v, "user add carol other"), 1);
	json_decref(v);
	/* The password from stdin. */
	cr_assert_eq(run("echo new-pw | %s -c %s user passwd carol@example.com >/dev/null",
			 ctl_binary(), s.conf), 0);
	g = gc_open("127.0.0.1", s.port, "carol@example.com", "carol-pw", err, sizeof(err));
	cr_assert_null(g, "the old password still works");
	g = kit_login(&s, "carol@example.com", "new-pw");
	gc_close(g);
	v = ctl_ok(&s, "user del sip:carol@example.com");
	cr_assert_eq(jint(v, "users"), HARNESS_USERS + 2);
	json_decref(v);
	g = gc_open("127.0.0.1", s.port, "carol@example.com", "new-pw", err, sizeof(err));
	cr_assert_null(g, "a removed user logged in");
	cr_assert(strstr(err, "REGISTER: 403") != NULL, "%s", err);
	cr_assert_eq(ctl(&s, NULL, "user del carol"), 1);
	cr_assert_eq(ctl(&s, NULL, "user passwd nobody x"), 1);
	cr_assert_eq(ctl(&s, NULL, "user add 'bad name' x"), 1);
	/* Others are untouched. */
	g = kit_login(&s, "alice@example.com", "alice-pw");
	gc_close(g);
	cr_assert_eq(server_stop(&s), 0);
}

/* Lines of the server log containing <needle>. */
static int
log_count(struct server *s, const char *needle)
{
	char cmd[700];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "grep -c -- '%s' %s", needle, s->log);
	p = popen(cmd, "r");
	if (p != NULL) {
		if (fscanf(p, "%d", &n) != 1)
			n = 0;
		pclose(p);
	}
	return n;
}

Test(control_admin, loglevel_and_reload, .timeout = 60)
{
	struct server s;
	json_t *v;
	int before;

	ctl_server_start(&s, NULL, NULL);		/* the harness runs parleyd -v: debug */
	v = ctl_ok(&s, "loglevel");
	cr_assert_str_eq(jstr(v, "level"), "debug");
	json_decref(v);
	v = ctl_ok(&s, "loglevel warning");
	cr_assert_str_eq(jstr(v, "level"), "warning");
	cr_assert_str_eq(jstr(v, "previous"), "debug");
	json_decref(v);
	/* Notices are not written any more... */
	before = log_count(&s, "not accepting new connections");
	json_decref(ctl_ok(&s, "drain"));
	json_decref(ctl_ok(&s, "drain off"));
	cr_assert_eq(log_count(&s, "not accepting new connections"), before);
	/* ...and are again at notice. */
	json_decref(ctl_ok(&s, "loglevel notice"));
	json_decref(ctl_ok(&s, "drain"));
	json_decref(ctl_ok(&s, "drain off"));
	cr_assert_gt(log_count(&s, "not accepting new connections"), before);
	v = ctl_ok(&s, "stats");
	cr_assert_str_eq(jstr(v, "node.log_level"), "notice");
	json_decref(v);
	cr_assert_eq(ctl(&s, NULL, "loglevel chatty"), 1);

	/* reload, as SIGHUP: a user added to the file by hand logs in after. */
	cr_assert_eq(run("printf 'dave@example.com:example.com:%s\\n' "
			 "$(printf 'dave@example.com:example.com:dave-pw' | md5sum | cut -c1-32) "
			 ">> %s/users.htdigest", "%s", s.dir), 0);
	v = ctl_ok(&s, "reload");
	cr_assert_str_eq(jstr(v, "certificate"), "reloaded");
	cr_assert_str_eq(jstr(v, "users"), "reloaded");
	cr_assert_eq(jint(v, "user_count"), HARNESS_USERS + 3);
	json_decref(v);
	gc_close(kit_login(&s, "dave@example.com", "dave-pw"));
	cr_assert_eq(server_stop(&s), 0);
}
