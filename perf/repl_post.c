/* parley-repl-post: the post path's latency on one node of an array
 * (perf/repl.sh). <clients> Group Chat clients sign in at HOST:PORT (served
 * there: the placement mark), join room <room>, and each posts <posts>
 * times in turn, one post at a time, <gap-ms> apart; the latency of a post
 * is from sending it to its SIP 200, which waits until the post is durable
 * (on the home and, with replication, on its replica).
 *
 *   parley-repl-post HOST PORT ROOM CLIENTS POSTS GAP_MS
 *
 * One line: posts=N accepted=N refused=N p50_ms=.. p99_ms=.. max_ms=..
 * wall_s=..; exit 1 when a client could not sign in or join. Users are
 * user<i>@example.com with password "pw". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "perf/gcclient.h"

#define MARK	"sip:example.com;parley-placed"

static const char *host, *room;
static unsigned port, nposts, gap_ms;

struct cli {
	int		u;
	double		*lat;		/* ms, nposts of them */
	unsigned	ok, refused, failed;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void *
cli_main(void *arg)
{
	struct cli *c = arg;
	char aor[64], err[256], uri[256], text[64], *b;
	struct gc *g;

	snprintf(aor, sizeof(aor), "user%d@example.com", c->u);
	g = gc_open_to(host, (uint16_t)port, aor, "pw", MARK, err, sizeof(err));
	if (g == NULL) {
		fprintf(stderr, "parley-repl-post: %s: %s\n", aor, err);
		c->failed = nposts;
		return NULL;
	}
	if (gc_cmd(g, "chansrch", "<qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/>") !=
	    200 || (b = gc_wait(g, 5000, "rpl:chansrch", NULL)) == NULL ||
	    !gc_room_uri(b, room, uri, sizeof(uri))) {
		fprintf(stderr, "parley-repl-post: %s: no room %s\n", aor, room);
		c->failed = nposts;
		gc_abort(g);
		return NULL;
	}
	free(b);
	b = gc_join(g, uri, 5000);
	if (b == NULL || strstr(b, "code=\"200\"") == NULL) {
		fprintf(stderr, "parley-repl-post: %s: join refused\n", aor);
		c->failed = nposts;
		free(b);
		gc_abort(g);
		return NULL;
	}
	free(b);
	for (unsigned k = 0; k < nposts; k++) {
		double t0 = now_ms();
		int st;

		snprintf(text, sizeof(text), "r-%d-%u.", c->u, k);
		st = gc_post(g, uri, text, NULL);
		c->lat[c->ok] = now_ms() - t0;
		if (st == 200)
			c->ok++;
		else
			c->failed++;
		gc_pump(g, 0);
		while ((b = gc_next(g)) != NULL) {
			if (strstr(b, "rpl:grpchat") != NULL && strstr(b, "code=\"200\"") == NULL)
				c->refused++;
			free(b);
		}
		if (gap_ms > 0)
			usleep(gap_ms * 1000);
	}
	gc_abort(g);
	return NULL;
}

int
main(int argc, char **argv)
{
	unsigned n, total = 0, refused = 0, failed = 0, k = 0;
	struct cli *c;
	pthread_t *th;
	double *all, t0;

	if (argc != 7) {
		fprintf(stderr, "usage: parley-repl-post HOST PORT ROOM CLIENTS POSTS GAP_MS\n");
		return 2;
	}
	host = argv[1];
	port = (unsigned)atoi(argv[2]);
	room = argv[3];
	n = (unsigned)atoi(argv[4]);
	nposts = (unsigned)atoi(argv[5]);
	gap_ms = (unsigned)atoi(argv[6]);
	c = calloc(n, sizeof(*c));
	th = calloc(n, sizeof(*th));
	all = calloc((size_t)n * nposts + 1, sizeof(*all));
	if (c == NULL || th == NULL || all == NULL)
		return 2;
	t0 = now_ms();
	for (unsigned i = 0; i < n; i++) {
		c[i].u = (int)i + 1;
		c[i].lat = calloc(nposts + 1, sizeof(double));
		pthread_create(&th[i], NULL, cli_main, &c[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		for (unsigned j = 0; j < c[i].ok; j++)
			all[k++] = c[i].lat[j];
		total += c[i].ok;
		refused += c[i].refused;
		failed += c[i].failed;
		free(c[i].lat);
	}
	qsort(all, k, sizeof(*all), cmp_d);
	printf("posts=%u accepted=%u refused=%u failed=%u p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
	       "wall_s=%.2f\n", total, total - refused, refused, failed,
	       k ? all[k / 2] : 0, k ? all[(size_t)(k * 0.99)] : 0, k ? all[k - 1] : 0,
	       (now_ms() - t0) / 1e3);
	free(all);
	free(c);
	free(th);
	return failed == n * nposts ? 1 : 0;
}
