/* bench_commit: the storage thread alone (storage/commit.h) — how many
 * compliance events per second group commit with fsync sustains on this
 * machine, and what a post pays for durability (submit -> durable).
 *
 *   bench_commit [-d DIR] [-p PRODUCERS] [-s SECONDS] [-r RATE] [-n] [-b BYTES]
 *
 * Each producer thread stands for an lcore: it submits posts (history
 * record + CHAT event, like a real post) in bursts as fast as its request
 * pool allows, or at RATE posts/s in total, and polls completions, timing
 * each request from submit to completion. -n: durability_unsafe_no_fsync.
 * One result line:
 *   events_per_s=.. lat_p50_us=.. lat_p99_us=.. lat_max_us=.. groups=..
 *   batch_mean=.. fsync_p50_us=.. fsync_p99_us=.. producers=.. rate=.. fsync=0|1 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/base/clock.h"
#include "storage/commit.h"
#include "storage/db.h"

#define BURST	32
#define MAXLAT	(1u << 22)

struct prod {
	struct commit_producer	*p;
	unsigned		idx;
	double			rate;		/* posts/s for this producer; 0: flat out */
	double			seconds;
	uint64_t		done;
	uint64_t		*lat;		/* µs, a sample per request */
	size_t			nlat;
	char			body[4096];
	size_t			blen;
};

static const char uri[] = "ma-chan://example.com/5b0c7c1e-0000-4000-8000-000000000001";
static const char author[] = "sip:alice@example.com";

static void
collect(struct prod *p)
{
	struct commit_req *r[BURST];
	unsigned n = commit_poll(p->p, r, BURST);
	uint64_t t = clock_mono_ns();

	for (unsigned i = 0; i < n; i++) {
		uint64_t sent = (uint64_t)(uintptr_t)r[i]->cookie;

		if (r[i]->status == 0) {
			p->done++;
			if (p->nlat < MAXLAT)
				p->lat[p->nlat++] = (t - sent) / 1000;
		}
		commit_req_put(p->p, r[i]);
	}
}

static void *
producer(void *arg)
{
	struct prod *p = arg;
	uint64_t start = clock_mono_ns(), end = start + (uint64_t)(p->seconds * 1e9), seq = 0;
	double interval_ns = p->rate > 0 ? 1e9 / p->rate : 0;

	while (clock_mono_ns() < end) {
		struct commit_req *r[BURST];
		unsigned n = 0, got;
		uint64_t t = clock_mono_ns();

		/* Paced: only what is due by now. */
		while (n < BURST) {
			if (interval_ns > 0 && (double)seq * interval_ns > (double)(t - start))
				break;
			r[n] = commit_req_get(p->p);
			if (r[n] == NULL)
				break;
			r[n]->op = COMMIT_POST;
			r[n]->logged = true;
			r[n]->room[0] = (uint8_t)p->idx;
			r[n]->room_seq = ++seq;
			r[n]->ts_ms = 1700000000000ull + seq;
			r[n]->room_uri = uri;
			r[n]->room_uri_len = sizeof(uri) - 1;
			r[n]->user = author;
			r[n]->user_len = sizeof(author) - 1;
			r[n]->body = p->body;
			r[n]->body_len = p->blen;
			r[n]->content = p->body;
			r[n]->content_len = p->blen;
			r[n]->cookie = (void *)(uintptr_t)t;
			n++;
		}
		got = n ? commit_submit(p->p, r, n) : 0;
		for (unsigned i = got; i < n; i++) {
			commit_req_put(p->p, r[i]);
			seq--;
		}
		collect(p);
		if (n == 0 || got < n) {
			struct timespec nap = { 0, 20000 };

			nanosleep(&nap, NULL);
		}
	}
	/* What is in flight completes. */
	for (uint64_t until = clock_mono_ns() + 5000000000ull; clock_mono_ns() < until;) {
		collect(p);
		if (commit_done_count(p->p) == 0) {
			struct timespec nap = { 0, 100000 };

			nanosleep(&nap, NULL);
		}
		if (p->done >= seq)
			break;
	}
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(int argc, char **argv)
{
	struct commit_config cc = { .depth = 4096 };
	unsigned nprod = 1;
	double seconds = 5, rate = 0;
	size_t blen = 200;
	char dir[512] = "", err[512];
	struct commit_stats st;
	struct prod *p;
	pthread_t *t;
	uint64_t total = 0, *all;
	size_t nall = 0;
	struct commit *c;
	struct db *db;
	bool mine = false;
	int opt, rc;

	while ((opt = getopt(argc, argv, "d:p:s:r:nb:")) != -1) {
		switch (opt) {
		case 'd': snprintf(dir, sizeof(dir), "%s", optarg); break;
		case 'p': nprod = (unsigned)atoi(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'n': cc.durability_unsafe_no_fsync = true; break;
		case 'b': blen = (size_t)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench_commit [-d DIR] [-p PRODUCERS] [-s SECONDS] "
				"[-r RATE] [-n] [-b BYTES]\n");
			return 2;
		}
	}
	if (nprod == 0 || nprod > 64 || blen == 0 || blen > 4000) {
		fprintf(stderr, "bench_commit: bad arguments\n");
		return 2;
	}
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/parley-bench-commit-XXXXXX");
		if (mkdtemp(dir) == NULL)
			return 1;
		mine = true;
	}
	db = db_open(dir, NULL, err, sizeof(err));
	if (db == NULL) {
		fprintf(stderr, "bench_commit: %s\n", err);
		return 1;
	}
	cc.nproducers = nprod;
	c = commit_create(db, &cc, &rc);
	if (c == NULL) {
		fprintf(stderr, "bench_commit: commit_create: %s\n", strerror(-rc));
		return 1;
	}
	p = calloc(nprod, sizeof(*p));
	t = calloc(nprod, sizeof(*t));
	for (unsigned i = 0; i < nprod; i++) {
		p[i].p = commit_producer(c, i);
		p[i].idx = i;
		p[i].rate = rate / nprod;
		p[i].seconds = seconds;
		p[i].lat = malloc(MAXLAT * sizeof(uint64_t));
		memset(p[i].body, 'x', blen);
		p[i].blen = blen;
		pthread_create(&t[i], NULL, producer, &p[i]);
	}
	for (unsigned i = 0; i < nprod; i++) {
		pthread_join(t[i], NULL);
		total += p[i].done;
		nall += p[i].nlat;
	}
	commit_stats_get(c, &st);
	all = malloc((nall ? nall : 1) * sizeof(*all));
	nall = 0;
	for (unsigned i = 0; i < nprod; i++) {
		memcpy(all + nall, p[i].lat, p[i].nlat * sizeof(*all));
		nall += p[i].nlat;
		free(p[i].lat);
	}
	qsort(all, nall, sizeof(*all), cmp_u64);
	printf("events_per_s=%.0f lat_p50_us=%llu lat_p99_us=%llu lat_max_us=%llu groups=%llu "
	       "batch_mean=%.1f fsync_p50_us=%llu fsync_p99_us=%llu producers=%u rate=%.0f fsync=%d\n",
	       total / seconds, nall ? (unsigned long long)all[nall / 2] : 0ull,
	       nall ? (unsigned long long)all[nall * 99 / 100] : 0ull,
	       nall ? (unsigned long long)all[nall - 1] : 0ull, (unsigned long long)st.groups,
	       st.batch_mean, (unsigned long long)st.lat_p50_us, (unsigned long long)st.lat_p99_us,
	       nprod, rate, cc.durability_unsafe_no_fsync ? 0 : 1);
	commit_destroy(c);
	db_close(db);
	if (mine)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(all);
	free(p);
	free(t);
	return total > 0 ? 0 : 1;
}
