/* Compliance end to end: a real parleyd's exporter writes the XML of
 * xccos.md §d.2 for what clients did; the cap refuses posts while the
 * output cannot be written; SIGKILL at random moments loses nothing that
 * a client saw acknowledged or delivered, and doubles nothing. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>

#include "perf/client.h"
#include "perf/gcclient.h"
#include "storage/catalog.h"
#include "storage/db.h"
#include "storage/history.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/harness.h"

static void
lobby(struct gc *g, char *uri, size_t cap)
{
	char *b;

	cr_assert_eq(gc_cmd(g, "chansrch", "<qib qtype=\"BYNAME\" criteria=\"Lobby\" extended=\"false\"/>"), 200);
	b = gc_wait(g, 5000, "rpl:chansrch", NULL);
	cr_assert(b && gc_room_uri(b, "Lobby", uri, cap));
	free(b);
}


Test(compliance, events_exported_as_xml, .timeout = 90)
{
	struct server s;
	struct gc *a;
	struct kit_evs e = { 0 };
	char room[200], dir[400], data[400], *m;

	server_start(&s, "[compliance]\ninterval_s = 1\n");
	a = kit_login(&s, "alice@example.com", "alice-pw");
	lobby(a, room, sizeof(room));
	m = gc_join(a, room, 5000);
	cr_assert_eq(kit_resp_code(m), 200);
	free(m);
	for (int i = 0; i < 3; i++) {
		char t[32];

		snprintf(t, sizeof(t), "exported %d <&>", i);
		cr_assert_eq(gc_post(a, room, t, NULL), 200);
	}
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/><bcq><last cnt=\"10\"/></bcq>", room);
	cr_assert_eq(gc_cmd(a, "bccontext", data), 200);
	m = gc_wait(a, 5000, "rpl:bccontext", NULL);
	cr_assert_eq(kit_resp_code(m), 200);
	free(m);
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/>", room);
	cr_assert_eq(gc_cmd(a, "part", data), 200);
	free(gc_wait(a, 5000, "rpl:part", NULL));
	gc_close(a);
	/* A graceful stop exports what is left; read the files then. */
	snprintf(dir, sizeof(dir), "%s/compliance", s.dir);
	server_kill(&s, SIGTERM);
	kit_read_export(dir, &e);
	cr_assert_eq(kit_count(&e, "JOIN", ""), 1);
	cr_assert_eq(kit_count(&e, "CHAT", "exported 1 <&>"), 1);
	cr_assert_eq(kit_count(&e, "CHAT", NULL), 3);
	cr_assert_eq(kit_count(&e, "BACKCHAT", NULL), 1);
	cr_assert_eq(kit_count(&e, "PART", ""), 1);
	for (size_t i = 0; i < e.n; i++) {
		cr_assert_str_eq(e.v[i].user, "alice@example.com");
		cr_assert_str_eq(e.v[i].room, room);
	}
	/* CHAT ids are the room's sequence numbers, in order. */
	{
		long last = 0;

		for (size_t i = 0; i < e.n; i++)
			if (!strcmp(e.v[i].type, "CHAT")) {
				cr_assert_gt(e.v[i].id, last);
				last = e.v[i].id;
			}
	}
	/* One clock, and in sequence order times never go back: the PART
	 * sent after the last post was answered is not earlier than it (it
	 * was, when joins and parts took a coarse clock and posts another). */
	for (size_t i = 1; i < e.n; i++) {
		cr_assert_gt(e.v[i].ms, 1600000000000LL);
		cr_assert_geq(e.v[i].ms, e.v[i - 1].ms, "%s at %lld after %s at %lld",
			      e.v[i].type, e.v[i].ms, e.v[i - 1].type, e.v[i - 1].ms);
	}
	kit_evs_free(&e);
	run("rm -rf %s", s.dir);
}

/* A room that keeps no history still numbers its posts: their ids in the
 * compliance trail go on across a restart instead of starting again at 1,
 * so an archive that keys messages by room and id loses none. */
Test(compliance, unlogged_room_ids_go_on_after_restart, .timeout = 90)
{
	struct server s;
	struct kit_evs e = { 0 };
	char room[200], dir[400], *m, *b;
	long ids[6];
	int n = 0;

	server_start(&s, "[compliance]\ninterval_s = 1\n[room:Scratch]\nlogged = false\n");
	for (int round = 0; round < 2; round++) {
		struct gc *a = kit_login(&s, "alice@example.com", "alice-pw");

		cr_assert_eq(gc_cmd(a, "chansrch", "<qib qtype=\"BYNAME\" criteria=\"Scratch\" "
				    "extended=\"false\"/>"), 200);
		b = gc_wait(a, 5000, "rpl:chansrch", NULL);
		cr_assert(b && gc_room_uri(b, "Scratch", room, sizeof(room)));
		free(b);
		m = gc_join(a, room, 5000);
		cr_assert_eq(kit_resp_code(m), 200);
		free(m);
		for (int i = 0; i < 3; i++) {
			char t[32];

			snprintf(t, sizeof(t), "scratch %d.%d", round, i);
			cr_assert_eq(gc_post(a, room, t, NULL), 200);
		}
		gc_close(a);
		if (round == 0) {
			server_kill(&s, SIGTERM);
			server_restart(&s);
		}
	}
	snprintf(dir, sizeof(dir), "%s/compliance", s.dir);
	server_kill(&s, SIGTERM);
	kit_read_export(dir, &e);
	for (size_t i = 0; i < e.n; i++)
		if (!strcmp(e.v[i].type, "CHAT") && !strcmp(e.v[i].room, room) && n < 6)
			ids[n++] = e.v[i].id;
	for (size_t i = 0; n != 6 && i < e.n; i++)
		fprintf(stderr, "%s %s %ld %s\n", e.v[i].type, e.v[i].room, e.v[i].id, e.v[i].content);
	cr_assert_eq(n, 6, "%d CHAT events in Scratch", n);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(ids[i], i + 1, "post %d has id %ld", i, ids[i]);
	kit_evs_free(&e);
	run("rm -rf %s", s.dir);
}

Test(compliance, cap_refuses_posts_until_the_output_recovers, .timeout = 120)
{
	struct server s;
	struct gc *a;
	struct kit_evs e = { 0 };
	char room[200], extra[600], out[400], *m;
	int accepted = 0, refused = 0;

	/* The output directory does not exist yet: the exporter fails. */
	snprintf(out, sizeof(out), "/tmp/parley-cap-out-%d", (int)getpid());
	run("rm -rf %s", out);
	snprintf(extra, sizeof(extra), "[compliance]\ninterval_s = 1\nretry_max_s = 1\n"
		 "cap_events = 6\noutput_dir = %s\n", out);
	server_start(&s, extra);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	lobby(a, room, sizeof(room));
	m = gc_join(a, room, 5000);		/* event 1 */
	cr_assert_eq(kit_resp_code(m), 200);
	free(m);
	usleep(500000);
	for (int i = 0; i < 10; i++) {
		char t[32];

		snprintf(t, sizeof(t), "capped %d", i);
		cr_assert_eq(gc_post(a, room, t, NULL), 200);
		/* A stored post is delivered before its 200; a refused one gets
		 * its error reply right after the 200. */
		m = gc_wait(a, 100, "<grpchat", t, NULL);
		if (m == NULL) {
			m = gc_wait(a, 3000, "rpl:grpchat", NULL);
			cr_assert_eq(kit_resp_code(m), 503, "post %d: neither delivered nor refused", i);
			refused++;
		} else {
			cr_assert(strstr(m, "<grpchat") != NULL);
			accepted++;
		}
		free(m);
		free(gc_wait(a, 10, "rpl:grpchat", NULL));
	}
	cr_assert_eq(accepted, 5, "the cap of 6 events allows a JOIN and 5 posts");
	cr_assert_eq(refused, 5);
	/* The directory appears: the exporter catches up and posts flow again. */
	run("mkdir -p %s", out);
	for (int i = 0; i < 50; i++) {
		char *ok;

		cr_assert_eq(gc_post(a, room, "after recovery", NULL), 200);
		ok = gc_wait(a, 2000, "<grpchat", "after recovery", NULL);
		free(gc_wait(a, 10, "rpl:grpchat", NULL));
		if (ok != NULL) {
			free(ok);
			break;
		}
		cr_assert_lt(i, 49, "posts still refused after the output came back");
		usleep(300000);
	}
	gc_close(a);
	server_kill(&s, SIGTERM);
	kit_read_export(out, &e);
	/* Exactly the accepted posts, once each; no refused one. */
	for (int i = 0; i < 10; i++) {
		char t[32];

		snprintf(t, sizeof(t), "capped %d", i);
		cr_assert_eq(kit_count(&e, "CHAT", t), i < 5 ? 1 : 0, "%s", t);
	}
	cr_assert_eq(kit_count(&e, "CHAT", "after recovery"), 1);
	kit_evs_free(&e);
	run("rm -rf %s %s", out, s.dir);
}

/* The crash test: posters and a reader while parleyd is killed. */
#define CRASH_POSTERS	3
#define CRASH_MAX	20000

struct crash_client {
	struct server	*s;
	const char	*room;
	int		idx, round;
	_Atomic bool	*stop;
	char		(*acked)[32];	/* posts that got their SIP 200 */
	int		nacked;
	char		(*seen)[32];	/* posts received (reader) */
	int		nseen;
	struct gc	*g;
};

static void *
poster(void *arg)
{
	struct crash_client *c = arg;

	for (int k = 0; !*c->stop && c->nacked < CRASH_MAX; k++) {
		char t[32];

		snprintf(t, sizeof(t), "r%d-p%d-%d", c->round, c->idx, k);
		if (gc_post(c->g, c->room, t, NULL) != 200)
			break;		/* the server died */
		snprintf(c->acked[c->nacked++], 32, "%s", t);
	}
	return NULL;
}

static void *
reader(void *arg)
{
	struct crash_client *c = arg;

	while (!*c->stop && c->nseen < CRASH_MAX) {
		char *b = gc_wait(c->g, 200, "<grpchat", NULL), *p, *q;

		if (b == NULL) {
			if (!pc_conn_alive(gc_conn(c->g)))
				break;
			continue;
		}
		p = strstr(b, "<chat>");
		q = p ? strstr(p, "</chat>") : NULL;
		if (q != NULL)
			snprintf(c->seen[c->nseen++], 32, "%.*s", (int)(q - p - 6), p + 6);
		free(b);
	}
	return NULL;
}

/* The whole history of room <uri> as "<chat>..</chat>" lines, oldest
 * first, read from the stopped server's database. */
static char *
history_text(struct server *s, const char *uri)
{
	char path[400], err[512], *out;
	struct history_rec *recs = NULL;
	uint8_t raw[CATALOG_ID_RAW];
	struct db *db;
	size_t len = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/db", s->dir);
	db = db_open(path, NULL, err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(catalog_id_pack(strrchr(uri, '/') + 1, raw), 0);
	n = history_read_range(db, raw, 1, UINT64_MAX, 1000000, &recs);
	cr_assert_geq(n, 0);
	out = calloc(1, (size_t)n * 64 + 1);
	for (ssize_t i = 0; i < n; i++) {
		len += (size_t)sprintf(out + len, "%.*s\n", (int)recs[i].body_len,
				       (const char *)recs[i].body);
	}
	history_recs_free(recs, (size_t)n);
	db_close(db);
	return out;
}

static int
find_chat(const struct kit_evs *e, const char *text)
{
	int n = 0;

	for (size_t i = 0; i < e->n; i++)
		n += !strcmp(e->v[i].type, "CHAT") && !strcmp(e->v[i].content, text);
	return n;
}

Test(compliance, sigkill_rounds_lose_and_double_nothing, .timeout = 300)
{
	enum { ROUNDS = 4 };
	struct server s;
	struct crash_client cl[ROUNDS][CRASH_POSTERS + 1];
	struct kit_evs e = { 0 };
	char room[200], dir[400];
	struct gc *a;
	char *m;

	srand((unsigned)time(NULL));
	server_start(&s, "[compliance]\ninterval_s = 1\n");
	for (int r = 0; r < ROUNDS; r++) {
		_Atomic bool stop = false;
		pthread_t t[CRASH_POSTERS + 1];

		if (r > 0)
			server_restart(&s);
		for (int i = 0; i <= CRASH_POSTERS; i++) {
			char aor[64];
			struct crash_client *c = &cl[r][i];

			snprintf(aor, sizeof(aor), "user%d@example.com", i);
			*c = (struct crash_client){ .s = &s, .room = room, .idx = i, .round = r,
						    .stop = &stop };
			c->g = kit_login(&s, aor, "pw");
			c->acked = calloc(CRASH_MAX, 32);
			c->seen = calloc(CRASH_MAX, 32);
			if (i == 0)
				lobby(c->g, room, sizeof(room));
			m = gc_join(c->g, room, 5000);
			cr_assert_eq(kit_resp_code(m), 200);
			free(m);
		}
		for (int i = 0; i <= CRASH_POSTERS; i++)
			pthread_create(&t[i], NULL, i == 0 ? reader : poster, &cl[r][i]);
		usleep(300000 + (unsigned)(rand() % 1200) * 1000);
		server_kill(&s, SIGKILL);
		stop = true;
		for (int i = 0; i <= CRASH_POSTERS; i++) {
			pthread_join(t[i], NULL);
			gc_abort(cl[r][i].g);
		}
	}
	/* A last clean run and a graceful stop, which exports everything; then
	 * the history as RocksDB holds it. */
	server_restart(&s);
	a = kit_login(&s, "alice@example.com", "alice-pw");
	gc_close(a);
	snprintf(dir, sizeof(dir), "%s/compliance", s.dir);
	server_kill(&s, SIGTERM);
	m = history_text(&s, room);
	kit_read_export(dir, &e);

	{
		int acked = 0, seen = 0;

		for (int r = 0; r < ROUNDS; r++)
			for (int i = 0; i <= CRASH_POSTERS; i++) {
				struct crash_client *c = &cl[r][i];

				for (int k = 0; k < c->nacked; k++) {
					char needle[48];

					cr_assert_eq(find_chat(&e, c->acked[k]), 1,
						     "acknowledged post %s exported %d times", c->acked[k],
						     find_chat(&e, c->acked[k]));
					snprintf(needle, sizeof(needle), "<chat>%s</chat>", c->acked[k]);
					cr_assert(strstr(m, needle) != NULL, "acknowledged %s not in history",
						  c->acked[k]);
					cr_assert(strstr(strstr(m, needle) + 1, needle) == NULL,
						  "%s twice in history", c->acked[k]);
					acked++;
				}
				for (int k = 0; k < c->nseen; k++) {
					cr_assert_eq(find_chat(&e, c->seen[k]), 1,
						     "received post %s exported %d times", c->seen[k],
						     find_chat(&e, c->seen[k]));
					seen++;
				}
			}
		cr_assert_gt(acked, 0, "no post was acknowledged: the test tested nothing");
		cr_log_info("%d acknowledged and %d received posts checked over %d rounds", acked, seen,
			    ROUNDS);
	}
	/* Exported in room order: CHAT ids increase, and match history order. */
	{
		long last = 0;
		const char *h = m;

		for (size_t i = 0; i < e.n; i++) {
			char needle[160];

			if (strcmp(e.v[i].type, "CHAT"))
				continue;
			cr_assert_gt(e.v[i].id, last, "export out of room order at %s", e.v[i].content);
			last = e.v[i].id;
			snprintf(needle, sizeof(needle), "<chat>%s</chat>", e.v[i].content);
			h = strstr(h, needle);
			cr_assert_not_null(h, "exported %s missing from history or out of order",
					   e.v[i].content);
		}
	}
	free(m);
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i <= CRASH_POSTERS; i++) {
			free(cl[r][i].acked);
			free(cl[r][i].seen);
		}
	kit_evs_free(&e);
	run("rm -rf %s", s.dir);
}
