/* The Group Chat service end to end: a real parleyd, TLS, RocksDB and the
 * Group Chat client of perf/ (gcclient.h). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/client.h"
#include "perf/gcclient.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/harness.h"

Test(chat, two_clients_post_and_everyone_receives, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	char lobby[200], *m;

	server_start(&s, NULL);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	b = kit_login(&s, "bob@example.com", "bob-pw");
	cr_assert(strncmp(gc_channel_uri(a), "sip:", 4) == 0, "requri without sip: %s",
		  gc_channel_uri(a));
	cr_assert(kit_room_uri(a, "Lobby", lobby, sizeof(lobby)));
	cr_assert(strncmp(lobby, "ma-chan://example.com/", 22) == 0, "%s", lobby);
	kit_join_ok(a, lobby);
	kit_join_ok(b, lobby);
	m = gc_wait(a, 5000, "ntc:join", "sip:bob@example.com", NULL);
	cr_assert_not_null(m, "alice did not see bob join");
	free(m);

	cr_assert_eq(gc_post(a, lobby, "hello & welcome", NULL), 200);
	m = gc_wait(a, 5000, "<grpchat", "hello &amp; welcome", NULL);
	cr_assert_not_null(m, "the author did not get its own post back");
	cr_assert(strstr(m, "author=\"sip:alice@example.com\"") != NULL, "%s", m);
	cr_assert(strstr(m, lobby) != NULL, "%s", m);
	free(m);
	m = gc_wait(b, 5000, "<grpchat", "hello &amp; welcome", NULL);
	cr_assert_not_null(m, "bob did not get alice's post");
	free(m);

	cr_assert_eq(gc_post(b, lobby, "hi alice", NULL), 200);
	m = gc_wait(a, 5000, "<grpchat", "hi alice", NULL);
	cr_assert_not_null(m);
	free(m);
	gc_close(b);
	m = gc_wait(a, 5000, "ntc:part", "sip:bob@example.com", NULL);
	cr_assert_not_null(m, "alice did not see bob leave by BYE");
	free(m);
	gc_close(a);
	cr_assert_eq(server_stop(&s), 0);
}

static char *
lobby_of(struct gc *g, char *uri, size_t cap)
{
	cr_assert(kit_room_uri(g, "Lobby", uri, cap), "no Lobby in chansrch");
	return uri;
}

Test(chat, three_clients_and_notices, .timeout = 60)
{
	struct server s;
	struct gc *g[3];
	char lobby[200], *m;

	server_start(&s, NULL);
	for (int i = 0; i < 3; i++)
		g[i] = kit_user(&s, i);
	lobby_of(g[0], lobby, sizeof(lobby));
	for (int i = 0; i < 3; i++)
		kit_join_ok(g[i], lobby);
	/* The third joiner's rpl:join listed all three present users. */
	m = gc_wait(g[0], 5000, "ntc:join", "sip:user2@example.com", NULL);
	cr_assert_not_null(m);
	cr_assert(strstr(m, "aib key=\"3984\"") != NULL, "%s", m);
	free(m);
	cr_assert_eq(gc_post(g[1], lobby, "from user1", NULL), 200);
	for (int i = 0; i < 3; i++) {
		m = gc_wait(g[i], 5000, "<grpchat", "from user1", NULL);
		cr_assert_not_null(m, "user%d did not receive the post", i);
		free(m);
	}
	/* cmd:part: the others get ntc:part, the leaver its rpl:part. */
	{
		char data[300];

		snprintf(data, sizeof(data), "<chanib uri=\"%s\"/>", lobby);
		cr_assert_eq(gc_cmd(g[2], "part", data), 200);
		m = gc_wait(g[2], 5000, "rpl:part", NULL);
		cr_assert_eq(kit_resp_code(m), 200);
		cr_assert(strstr(m, lobby) != NULL);
		free(m);
	}
	for (int i = 0; i < 2; i++) {
		m = gc_wait(g[i], 5000, "ntc:part", "sip:user2@example.com", NULL);
		cr_assert_not_null(m, "user%d did not see user2 part", i);
		free(m);
	}
	/* After leaving, no more posts for user2; a post of its own is refused. */
	cr_assert_eq(gc_post(g[0], lobby, "after part", NULL), 200);
	m = gc_wait(g[1], 5000, "after part", NULL);
	cr_assert_not_null(m);
	free(m);
	cr_assert_null(gc_wait(g[2], 500, "after part", NULL));
	cr_assert_eq(gc_post(g[2], lobby, "not a member now", NULL), 200);
	m = gc_wait(g[2], 5000, "rpl:grpchat", NULL);
	cr_assert_eq(kit_resp_code(m), 403, "%s", m ? m : "(none)");
	free(m);
	/* A connection that vanishes counts as leaving too. */
	gc_abort(g[1]);
	m = gc_wait(g[0], 5000, "ntc:part", "sip:user1@example.com", NULL);
	cr_assert_not_null(m, "connection loss was not a part");
	free(m);
	gc_close(g[0]);
	gc_close(g[2]);
	cr_assert_eq(server_stop(&s), 0);
}

/* One user signed in from two clients (two dialogs in the room) joins once
 * and leaves once for the others: no second ntc:join, no ntc:part while one
 * of its dialogs is still there. */
Test(chat, one_user_two_clients_joins_and_parts_once, .timeout = 60)
{
	struct server s;
	struct gc *g0, *a, *b;
	char lobby[200], data[300], *m;

	server_start(&s, NULL);
	g0 = kit_user(&s, 0);
	a = kit_user(&s, 1);
	b = kit_user(&s, 1);
	lobby_of(g0, lobby, sizeof(lobby));
	kit_join_ok(g0, lobby);
	kit_join_ok(a, lobby);
	m = gc_wait(g0, 5000, "ntc:join", "sip:user1@example.com", NULL);
	cr_assert_not_null(m, "user0 did not see user1 join");
	free(m);
	kit_join_ok(b, lobby);
	m = gc_wait(g0, 700, "ntc:join", "sip:user1@example.com", NULL);
	cr_assert_null(m, "a second client of user1 was announced as a new join: %s", m);
	/* The first client leaves: user1 is still present through the other. */
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/>", lobby);
	cr_assert_eq(gc_cmd(a, "part", data), 200);
	free(gc_wait(a, 5000, "rpl:part", NULL));
	m = gc_wait(g0, 700, "ntc:part", "sip:user1@example.com", NULL);
	cr_assert_null(m, "user1 announced as leaving while still present: %s", m);
	cr_assert_eq(gc_post(g0, lobby, "still there?", NULL), 200);
	m = gc_wait(b, 5000, "<grpchat", "still there?", NULL);
	cr_assert_not_null(m, "user1's second client lost the room");
	free(m);
	/* The last one goes (connection lost): now user1 has left. */
	gc_abort(b);
	m = gc_wait(g0, 5000, "ntc:part", "sip:user1@example.com", NULL);
	cr_assert_not_null(m, "user1's last client left without an ntc:part");
	free(m);
	gc_close(a);
	gc_close(g0);
	cr_assert_eq(server_stop(&s), 0);
}

Test(chat, refusals_and_errors, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	char lobby[200], *m, big[9000];

	server_start(&s, "[chat]\nmessage_size_limit = 8000\n");
	a = kit_login(&s, "alice@example.com", "alice-pw");
	b = kit_login(&s, "bob@example.com", "bob-pw");
	lobby_of(a, lobby, sizeof(lobby));
	kit_join_ok(a, lobby);

	/* Posting to a room one has not joined. */
	cr_assert_eq(gc_post(b, lobby, "uninvited", NULL), 200);
	m = gc_wait(b, 5000, "rpl:grpchat", NULL);
	cr_assert_eq(kit_resp_code(m), 403, "%s", m ? m : "(none)");
	free(m);
	/* Posting as somebody else. */
	kit_join_ok(b, lobby);
	cr_assert_eq(gc_post(a, lobby, "spoofed", "sip:bob@example.com"), 200);
	m = gc_wait(a, 5000, "rpl:grpchat", NULL);
	cr_assert_eq(kit_resp_code(m), 403, "%s", m ? m : "(none)");
	free(m);
	/* Over messageSizeLimit. */
	memset(big, 'x', 8500);
	big[8500] = '\0';
	cr_assert_eq(gc_post(a, lobby, big, NULL), 200);
	m = gc_wait(a, 5000, "rpl:grpchat", NULL);
	cr_assert_eq(kit_resp_code(m), 413, "%s", m ? m : "(none)");
	free(m);
	/* None of them reached anybody. */
	cr_assert_null(gc_wait(b, 500, "uninvited", NULL));
	cr_assert_null(gc_wait(b, 10, "spoofed", NULL));
	cr_assert_null(gc_wait(b, 10, "xxxxxxxxxx", NULL));

	/* Malformed XCCOS: an error reply, and the dialog stays usable. */
	cr_assert_eq(gc_info(a, "<xccos ver=\"1\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:chansrch\""), 200);
	m = gc_wait(a, 5000, "rpl:chansrch", NULL);
	cr_assert_eq(kit_resp_code(m), 400, "%s", m ? m : "(none)");
	free(m);
	cr_assert_eq(gc_info(a, "not xml at all"), 200);
	m = gc_wait(a, 5000, "<rpl", NULL);
	cr_assert_eq(kit_resp_code(m), 400, "%s", m ? m : "(none)");
	free(m);
	/* Unknown command. */
	cr_assert_eq(gc_cmd(a, "frobnicate", ""), 200);
	m = gc_wait(a, 5000, "rpl:frobnicate", NULL);
	cr_assert_eq(kit_resp_code(m), 501, "%s", m ? m : "(none)");
	free(m);
	/* Billion laughs: refused unexpanded, quickly. */
	{
		char bomb[4096];
		int n = snprintf(bomb, sizeof(bomb), "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");

		for (int i = 1; i < 10; i++) {
			n += snprintf(bomb + n, sizeof(bomb) - n, "<!ENTITY lol%d \"", i);
			for (int k = 0; k < 10; k++)
				n += snprintf(bomb + n, sizeof(bomb) - n, "&lol%s;", i == 1 ? "" : "X");
			n += snprintf(bomb + n, sizeof(bomb) - n, "\">");
		}
		/* (every level refers to the one below) */
		for (char *p = bomb; (p = strstr(p, "&lolX;")) != NULL;)
			p[4] = ' ';
		snprintf(bomb + n, sizeof(bomb) - n, "]><xccos ver=\"1\" xmlns=\"urn:parlano:xml:ns:xccos\">"
			 "<cmd id=\"cmd:chansrch\" seqid=\"1\"><data><qib criteria=\"&lol9;\"/></data></cmd></xccos>");
		cr_assert_eq(gc_info(a, bomb), 200);
		m = gc_wait(a, 5000, "rpl:chansrch", NULL);
		cr_assert_eq(kit_resp_code(m), 400, "%s", m ? m : "(none)");
		cr_assert(strstr(m, "lollol") == NULL);
		free(m);
	}
	/* An external entity: refused, the file is not read. */
	cr_assert_eq(gc_info(a, "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
			     "<xccos ver=\"1\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:getpref\" seqid=\"1\">"
			     "<data><pref label=\"&e;\" createdefault=\"true\"/></data></cmd></xccos>"), 200);
	m = gc_wait(a, 5000, "rpl:getpref", NULL);
	cr_assert_eq(kit_resp_code(m), 400, "%s", m ? m : "(none)");
	cr_assert(strstr(m, "root:") == NULL);
	free(m);
	/* After all that, the dialog still works for both. */
	cr_assert_eq(gc_post(a, lobby, "still here", NULL), 200);
	m = gc_wait(b, 5000, "<grpchat", "still here", NULL);
	cr_assert_not_null(m);
	free(m);
	gc_close(a);
	gc_close(b);
	cr_assert_eq(server_stop(&s), 0);
}

Test(chat, secret_and_closed_rooms, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	char vault[200], club[200], data[400], *m;

	server_start(&s, "[room:Vault]\nprivacy = secret\nmembers = sip:alice@example.com\n"
		     "[room:Club]\nprivacy = closed\nmembers = alice@example.com\n"
		     "managers = sip:user0@example.com\n");
	a = kit_login(&s, "alice@example.com", "alice-pw");
	b = kit_login(&s, "bob@example.com", "bob-pw");
	cr_assert(kit_room_uri(a, "Vault", vault, sizeof(vault)), "a member sees its secret room");
	cr_assert(!kit_room_uri(b, "Vault", data, sizeof(data)), "a secret room shown to a non-member");
	cr_assert(kit_room_uri(b, "Club", club, sizeof(club)), "a closed room is visible to everyone");
	/* A search by name finds it (substring, any case) for members only. */
	cr_assert_eq(gc_cmd(a, "chansrch", "<qib qtype=\"BYNAME\" criteria=\"AUL\" extended=\"false\"/>"), 200);
	m = gc_wait(a, 5000, "rpl:chansrch", NULL);
	cr_assert(strstr(m, "name=\"Vault\"") != NULL && strstr(m, "Lobby") == NULL, "%s", m);
	free(m);
	/* Non-members are refused with 403 even knowing the id. */
	m = gc_join(b, vault, 5000);
	cr_assert_eq(kit_resp_code(m), 403, "%s", m ? m : "(none)");
	cr_assert(strstr(m, "chanib") == NULL);
	free(m);
	m = gc_join(b, club, 5000);
	cr_assert_eq(kit_resp_code(m), 403, "%s", m ? m : "(none)");
	free(m);
	/* ...and cannot read its history either. */
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/><bcq><last cnt=\"25\"/></bcq>", vault);
	cr_assert_eq(gc_cmd(b, "bccontext", data), 200);
	m = gc_wait(b, 5000, "rpl:bccontext", NULL);
	cr_assert_eq(kit_resp_code(m), 403, "%s", m ? m : "(none)");
	free(m);
	kit_join_ok(a, vault);
	kit_join_ok(a, club);
	/* A manager joins with operator status (12276) in everyone's list. */
	{
		struct gc *mgr = kit_user(&s, 0);

		m = gc_join(mgr, club, 5000);
		cr_assert_eq(kit_resp_code(m), 200, "%s", m ? m : "(none)");
		cr_assert(strstr(m, "aib key=\"12276\"") != NULL, "%s", m);
		free(m);
		m = gc_wait(a, 5000, "ntc:join", "sip:user0@example.com", "12276", NULL);
		cr_assert_not_null(m);
		free(m);
		gc_close(mgr);
	}
	gc_close(a);
	gc_close(b);
	cr_assert_eq(server_stop(&s), 0);
}

Test(chat, other_commands, .timeout = 60)
{
	struct server s;
	struct gc *a;
	char lobby[200], data[600], *m, *id;

	server_start(&s, NULL);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	lobby_of(a, lobby, sizeof(lobby));

	cr_assert_eq(gc_cmd(a, "getserverinfo", "<sib domain=\"example.com\" infoType=\"123\"/>"), 200);
	m = gc_wait(a, 5000, "rpl:getservinfo", NULL);
	cr_assert_eq(kit_resp_code(m), 200);
	cr_assert(strstr(m, "messageSizeLimit=\"8192\"") && strstr(m, "serverTime=\"") &&
		  strstr(m, "rootUri=\"ma-cat://example.com/"), "%s", m);
	free(m);

	cr_assert_eq(gc_cmd(a, "getinv", "<inv inviteId=\"1\" domain=\"example.com\"/>"), 200);
	m = gc_wait(a, 5000, "rpl:getinv", NULL);
	cr_assert_eq(kit_resp_code(m), 200, "%s", m);
	free(m);

	cr_assert_eq(gc_cmd(a, "nodespermcreatechild", ""), 200);
	m = gc_wait(a, 5000, "rpl:nodespermcreatechild", NULL);
	cr_assert_eq(kit_resp_code(m), 200, "%s", m);
	free(m);

	/* Preferences: absent -> 404; createdefault -> ""; set -> get. */
	cr_assert_eq(gc_cmd(a, "getpref", "<pref label=\"alice.GroupChannels\" seqid=\"71\" createdefault=\"false\"/>"), 200);
	m = gc_wait(a, 5000, "rpl:getpref", NULL);
	cr_assert_eq(kit_resp_code(m), 404, "%s", m);
	free(m);
	cr_assert_eq(gc_cmd(a, "getpref", "<pref label=\"alice.GroupChannels\" seqid=\"71\" createdefault=\"true\"/>"), 200);
	m = gc_wait(a, 5000, "rpl:getpref", NULL);
	cr_assert(kit_resp_code(m) == 200 && strstr(m, "content=\"\""), "%s", m);
	free(m);
	cr_assert_eq(gc_cmd(a, "setpref", "<pref label=\"alice.GroupChannels\" seqid=\"72\" createdefault=\"false\" content=\"PD94bWwg\"/>"), 200);
	m = gc_wait(a, 5000, "rpl:setpref", NULL);
	cr_assert_eq(kit_resp_code(m), 200, "%s", m);
	free(m);
	cr_assert_eq(gc_cmd(a, "getpref", "<pref label=\"alice.GroupChannels\" seqid=\"73\" createdefault=\"false\"/>"), 200);
	m = gc_wait(a, 5000, "rpl:getpref", NULL);
	cr_assert(kit_resp_code(m) == 200 && strstr(m, "content=\"PD94bWwg\""), "%s", m);
	free(m);

	/* bjoin: one good room, one unknown: 200 with a chanib and a fib. */
	id = strrchr(lobby, '/') + 1;
	snprintf(data, sizeof(data),
		 "<chanid key=\"0\" domain=\"example.com\" value=\"%s\"/>"
		 "<chanid key=\"1\" domain=\"example.com\" value=\"00000000-0000-4000-8000-00000000dead\"/>", id);
	cr_assert_eq(gc_cmd(a, "bjoin", data), 200);
	m = gc_wait(a, 5000, "rpl:bjoin", NULL);
	cr_assert_eq(kit_resp_code(m), 200, "%s", m);
	cr_assert(strstr(m, "<uib id=\"0\" uri=\"sip:alice@example.com\"/>") != NULL, "%s", m);
	cr_assert(strstr(m, "<chanib") && strstr(m, "aib key=\"3984\" value=\"0\""), "%s", m);
	cr_assert(strstr(m, "<fib key=\"OPERATION_FAILED\" value=\"00000000-0000-4000-8000-00000000dead\""), "%s", m);
	free(m);

	/* Session refresh. */
	cr_assert_eq(gc_request(a, "UPDATE"), 200);
	gc_close(a);
	cr_assert_eq(server_stop(&s), 0);
}

/* The bodies of the <msg> elements of a bccontext reply, in order. */
static int
history_texts(const char *body, char out[][64], int max)
{
	int n = 0;

	for (const char *p = body; n < max && (p = strstr(p, "<msg ")) != NULL; p++) {
		const char *c = strstr(p, "<chat>"), *e = c ? strstr(c, "</chat>") : NULL;

		if (e == NULL)
			break;
		snprintf(out[n++], 64, "%.*s", (int)(e - c - 6), c + 6);
	}
	return n;
}

static char *
history(struct gc *g, const char *uri, int cnt)
{
	char data[400];

	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/><bcq><last cnt=\"%d\"/></bcq>", uri, cnt);
	cr_assert_eq(gc_cmd(g, "bccontext", data), 200);
	return gc_wait(g, 5000, "rpl:bccontext", NULL);
}

Test(chat, history_after_reconnect_and_restart, .timeout = 90)
{
	struct server s;
	struct gc *a;
	char lobby[200], lobby2[200], *m, texts[10][64];

	server_start(&s, NULL);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	lobby_of(a, lobby, sizeof(lobby));
	kit_join_ok(a, lobby);
	for (int i = 0; i < 5; i++) {
		char t[32];

		snprintf(t, sizeof(t), "post %d", i);
		cr_assert_eq(gc_post(a, lobby, t, NULL), 200);
	}
	gc_close(a);

	a = kit_login(&s, "alice@example.com", "alice-pw");
	m = history(a, lobby, 3);
	cr_assert_eq(kit_resp_code(m), 200);
	cr_assert_eq(history_texts(m, texts, 10), 3, "%s", m);
	cr_assert_str_eq(texts[0], "post 2");	/* oldest first */
	cr_assert_str_eq(texts[2], "post 4");
	cr_assert(strstr(m, "author=\"sip:alice@example.com\"") != NULL, "%s", m);
	free(m);
	gc_close(a);

	/* A restart keeps the room (same URI) and its history. */
	server_kill(&s, SIGTERM);
	server_restart(&s);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	lobby_of(a, lobby2, sizeof(lobby2));
	cr_assert_str_eq(lobby, lobby2);
	m = history(a, lobby, 25);
	cr_assert_eq(history_texts(m, texts, 10), 5, "%s", m);
	cr_assert_str_eq(texts[0], "post 0");
	free(m);
	/* Sequence numbers continue after the restart. */
	kit_join_ok(a, lobby);
	cr_assert_eq(gc_post(a, lobby, "post 5", NULL), 200);
	m = history(a, lobby, 2);
	cr_assert_eq(history_texts(m, texts, 10), 2, "%s", m);
	cr_assert_str_eq(texts[0], "post 4");
	cr_assert_str_eq(texts[1], "post 5");
	free(m);
	gc_close(a);
	cr_assert_eq(server_stop(&s), 0);
}

/* Concurrent posters: every member sees the same sequence, each message
 * exactly once. */
struct poster {
	struct server	*s;
	const char	*room;
	int		idx, nclients, nposts;
	struct gc	*g;
	char		(*seen)[32];
	int		nseen;
	bool		ok;
};

static void *
poster_main(void *arg)
{
	struct poster *p = arg;
	int want = p->nclients * p->nposts;

	for (int k = 0; k < p->nposts; k++) {
		char t[32];

		snprintf(t, sizeof(t), "m-%d-%d", p->idx, k);
		if (gc_post(p->g, p->room, t, NULL) != 200)
			return NULL;
	}
	while (p->nseen < want) {
		char *b = gc_wait(p->g, 20000, "<grpchat", NULL), *c, *e;

		if (b == NULL)
			return NULL;
		c = strstr(b, "<chat>");
		e = c ? strstr(c, "</chat>") : NULL;
		if (e != NULL)
			snprintf(p->seen[p->nseen++], 32, "%.*s", (int)(e - c - 6), c + 6);
		free(b);
	}
	p->ok = true;
	return NULL;
}

static void
ordering(const char *extra, int nclients, int nposts)
{
	struct server s;
	struct poster p[16];
	pthread_t t[16];
	char room[200];
	int want = nclients * nposts;

	server_start(&s, extra);
	for (int i = 0; i < nclients; i++) {
		p[i] = (struct poster){ .s = &s, .room = room, .idx = i, .nclients = nclients,
					.nposts = nposts, .g = kit_user(&s, i) };
		p[i].seen = calloc(want, sizeof(*p[i].seen));
	}
	lobby_of(p[0].g, room, sizeof(room));
	for (int i = 0; i < nclients; i++)
		kit_join_ok(p[i].g, room);
	for (int i = 0; i < nclients; i++)
		pthread_create(&t[i], NULL, poster_main, &p[i]);
	for (int i = 0; i < nclients; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < nclients; i++) {
		cr_assert(p[i].ok, "client %d saw %d of %d posts", i, p[i].nseen, want);
		for (int k = 0; k < want; k++)
			cr_assert_str_eq(p[i].seen[k], p[0].seen[k],
					 "client %d differs from client 0 at %d", i, k);
	}
	/* Each message once: per author, its own posts in its own order. */
	for (int a = 0; a < nclients; a++) {
		int next = 0;

		for (int k = 0; k < want; k++) {
			int pa, pk;

			cr_assert_eq(sscanf(p[0].seen[k], "m-%d-%d", &pa, &pk), 2);
			if (pa != a)
				continue;
			cr_assert_eq(pk, next, "author %d: post %d where %d was due", a, pk, next);
			next++;
		}
		cr_assert_eq(next, nposts);
	}
	for (int i = 0; i < nclients; i++) {
		gc_close(p[i].g);
		free(p[i].seen);
	}
	cr_assert_eq(server_stop(&s), 0);
}

Test(chat, ordering_concurrent_posters_one_lcore, .timeout = 120)
{
	ordering(NULL, 6, 40);
}

Test(chat, ordering_concurrent_posters_two_lcores, .timeout = 120)
{
	ordering("[dpdk]\nlcores = 2\n", 8, 40);
}

struct opener {
	struct server	*s;
	struct gc	**g;
	int		from, to;
};

static void *
open_main(void *arg)
{
	struct opener *o = arg;

	for (int i = o->from; i < o->to; i++) {
		char aor[64], err[256];

		snprintf(aor, sizeof(aor), "user%d@example.com", i);
		o->g[i] = gc_open("127.0.0.1", o->s->port, aor, "pw", err, sizeof(err));
	}
	return NULL;
}

static void
crowd(const char *extra)
{
	enum { N = 200, POSTERS = 5, POSTS = 4 };
	struct server s;
	struct gc *g[N];
	struct opener o[4];
	pthread_t t[4];
	char room[200];

	server_start(&s, extra);
	for (int i = 0; i < 4; i++) {
		o[i] = (struct opener){ .s = &s, .g = g, .from = i * N / 4, .to = (i + 1) * N / 4 };
		pthread_create(&t[i], NULL, open_main, &o[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < N; i++)
		cr_assert_not_null(g[i], "user%d could not sign in", i);
	lobby_of(g[0], room, sizeof(room));
	for (int i = 0; i < N; i++) {
		char *m = gc_join(g[i], room, 10000);

		cr_assert_eq(kit_resp_code(m), 200, "user%d: %s", i, m ? m : "(no reply)");
		free(m);
	}
	for (int p = 0; p < POSTERS; p++)
		for (int k = 0; k < POSTS; k++) {
			char text[32];

			snprintf(text, sizeof(text), "crowd-%d-%d.", p, k);
			cr_assert_eq(gc_post(g[p * 37], room, text, NULL), 200);
		}
	for (int i = 0; i < N; i++) {
		for (int p = 0; p < POSTERS; p++)
			for (int k = 0; k < POSTS; k++) {
				char text[32], *m;

				snprintf(text, sizeof(text), ">crowd-%d-%d.<", p, k);
				m = gc_wait(g[i], 10000, text, NULL);
				cr_assert_not_null(m, "user%d did not get %s", i, text);
				free(m);
				/* Exactly once: no second copy is queued. */
				cr_assert_eq(gc_count(g[i], text), 0, "user%d got %s twice", i, text);
			}
	}
	/* Nothing extra arrives later either. */
	for (int i = 0; i < N; i += 20) {
		gc_pump(g[i], 100);
		cr_assert_eq(gc_count(g[i], ">crowd-"), 0);
	}
	for (int i = 0; i < N; i++)
		gc_abort(g[i]);
	cr_assert_eq(server_stop(&s), 0);
}

Test(chat, two_hundred_clients_one_room_one_lcore, .timeout = 180)
{
	crowd(NULL);
}

Test(chat, two_hundred_clients_one_room_two_lcores, .timeout = 180)
{
	crowd("[dpdk]\nlcores = 2\n");
}

Test(chat, slow_reader_dropped_room_goes_on, .timeout = 90)
{
	struct server s;
	struct gc *a, *b;
	char lobby[200], text[7600], *m;
	int i;

	server_start(&s, "[net]\noutq_max = 65536\n");
	a = kit_login(&s, "alice@example.com", "alice-pw");
	b = kit_login(&s, "bob@example.com", "bob-pw");
	lobby_of(a, lobby, sizeof(lobby));
	kit_join_ok(a, lobby);
	kit_join_ok(b, lobby);
	/* bob stops reading; alice posts well past his output bound. */
	memset(text, 'y', sizeof(text) - 40);
	text[sizeof(text) - 40] = '\0';
	/* Far more than the kernel's socket buffers take, too. */
	for (i = 0; i < 1500; i++) {
		char t[7700];

		snprintf(t, sizeof(t), "%d:%s", i, text);
		cr_assert_eq(gc_post(a, lobby, t, NULL), 200);
		/* alice reads hers as they come */
		m = gc_wait(a, 5000, "<grpchat", NULL);
		cr_assert_not_null(m, "alice stopped receiving at %d", i);
		free(m);
	}
	m = gc_wait(a, 5000, "ntc:part", "sip:bob@example.com", NULL);
	cr_assert_not_null(m, "the slow reader was not dropped, or that did not count as leaving");
	free(m);
	cr_assert_eq(run("grep -q 'disconnecting slow reader' %s", s.log), 0);
	gc_abort(b);
	gc_close(a);
	cr_assert_eq(server_stop(&s), 0);
}
