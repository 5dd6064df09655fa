/* bench_auth: TLS handshakes per second and authenticated REGISTERs per
 * second against a running parleyd. Prints one result line.
 *
 *   bench_auth MODE HOST PORT USER PASSWORD SECONDS THREADS
 *   MODE = handshake  connect + full TLS handshake + close, repeatedly
 *   MODE = register   on one connection per thread: REGISTER, 407, REGISTER
 *                     with Digest, 200 — one authenticated REGISTER per loop
 *
 * Each thread runs a closed loop (one request in flight), so THREADS sets
 * the offered concurrency; use enough to keep the server's lcore busy. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/base/clock.h"
#include "perf/client.h"

struct job {
	const char *mode, *host, *user, *pw;
	uint16_t port;
	double seconds;
	uint64_t done, errors;
};

static void *
worker(void *arg)
{
	struct job *j = arg;
	double end = clock_mono_ns() / 1e9 + j->seconds;
	char err[256];
	struct pc_conn *c = NULL;

	while (clock_mono_ns() / 1e9 < end) {
		if (strcmp(j->mode, "handshake") == 0) {
			c = pc_connect(j->host, j->port, NULL, 5000, err, sizeof(err));
			if (c == NULL)
				j->errors++;
			else
				j->done++;
			pc_close(c);
			c = NULL;
			continue;
		}
		if (c == NULL) {
			c = pc_connect(j->host, j->port, NULL, 5000, err, sizeof(err));
			if (c == NULL) {
				j->errors++;
				continue;
			}
		}
		if (pc_register(c, j->user, j->pw, 3600, NULL, 0) == 200) {
			j->done++;
		} else {
			j->errors++;
			pc_close(c);
			c = NULL;
		}
	}
	pc_close(c);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct job *jobs;
	pthread_t *th;
	uint64_t done = 0, errors = 0;
	double t0, t1;
	int n;

	if (argc != 8) {
		fprintf(stderr, "usage: bench_auth handshake|register HOST PORT USER PASSWORD "
			"SECONDS THREADS\n");
		return 2;
	}
	n = atoi(argv[7]);
	jobs = calloc(n, sizeof(*jobs));
	th = calloc(n, sizeof(*th));
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct job){ argv[1], argv[2], argv[4], argv[5], (uint16_t)atoi(argv[3]),
					atof(argv[6]), 0, 0 };
	}
	t0 = clock_mono_ns() / 1e9;
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		done += jobs[i].done;
		errors += jobs[i].errors;
	}
	t1 = clock_mono_ns() / 1e9;
	printf("bench=%s threads=%d seconds=%.1f ops=%llu errors=%llu rate_per_s=%.0f\n", argv[1], n,
	       t1 - t0, (unsigned long long)done, (unsigned long long)errors, done / (t1 - t0));
	free(jobs);
	free(th);
	return errors > 0 && done == 0 ? 1 : 0;
}
