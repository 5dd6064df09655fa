/* The Group Chat service end to end: a real parleyd, TLS, RocksDB and the
 * Group Chat client of perf/ (gcclient.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "perf/client.h"
#include "perf/gcclient.h"
#include "tests/integration/harness.h"

static struct gc *
login(struct server *s, const char *aor, const char *pw)
{
	char err[256];
	struct gc *g = gc_open("127.0.0.1", s->port, aor, pw, err, sizeof(err));

	if (g == NULL)
		run("tail -50 %s >&2", s->log);
	cr_assert_not_null(g, "%s: %s", aor, err);
	return g;
}

static struct gc *
user(struct server *s, int i)
{
	char aor[64];

	snprintf(aor, sizeof(aor), "user%d@example.com", i);
	return login(s, aor, "pw");
}

/* The URI of room <name> from a chansrch as <g> sees it. */
static bool
find_room(struct gc *g, const char *name, char *uri, size_t cap)
{
	char *b;
	bool ok;

	cr_assert_eq(gc_cmd(g, "chansrch", "<qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/>"),
		     200);
	b = gc_wait(g, 5000, "rpl:chansrch", NULL);
	cr_assert_not_null(b, "no rpl:chansrch");
	ok = gc_room_uri(b, name, uri, cap);
	free(b);
	return ok;
}

static void
join_ok(struct gc *g, const char *uri)
{
	char *b = gc_join(g, uri, 5000);

	cr_assert_not_null(b, "%s: no rpl:join", gc_aor(g));
	cr_assert(strstr(b, "code=\"200\"") != NULL, "%s: join: %s", gc_aor(g), b);
	free(b);
}

Test(chat, two_clients_post_and_everyone_receives, .timeout = 60)
{
	struct server s;
	struct gc *a, *b;
	char lobby[200], *m;

	server_start(&s, NULL);
	a = login(&s, "alice@example.com", "alice-pw");
	b = login(&s, "bob@example.com", "bob-pw");
	cr_assert(strncmp(gc_channel_uri(a), "sip:", 4) == 0, "requri without sip: %s",
		  gc_channel_uri(a));
	cr_assert(find_room(a, "Lobby", lobby, sizeof(lobby)));
	cr_assert(strncmp(lobby, "ma-chan://example.com/", 22) == 0, "%s", lobby);
	join_ok(a, lobby);
	join_ok(b, lobby);
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
