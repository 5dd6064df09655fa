/* parley-bench --profile and --series: an offered rate that changes over
 * the run (an overload step, then a normal rate) and what happened second
 * by second, for the overload curve of perf/overload.sh.
 *
 * A profile is "D1:S1,D2:S2,...": D deliveries/s offered for S seconds,
 * one phase after the other from the start of the load (no warm-up; the
 * window is the whole profile). The series counts, per second since the
 * load began, the posts sent, accepted and refused, the deliveries
 * received and the latency of the posts sent in that second (by the time
 * in their text), and the server's RSS and CPU as the main thread sampled
 * them. Each worker writes its own rows; the main thread merges them after
 * the workers were joined. */
#ifndef PARLEY_PERF_SERIES_H
#define PARLEY_PERF_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perf/hist.h"

#define SERIES_PHASES_MAX	16

struct series_phase {
	double	deliv_rate;	/* deliveries/s offered */
	double	seconds;
};

struct series_profile {
	struct series_phase p[SERIES_PHASES_MAX];
	unsigned	n;
	double		total_s;
};

/* One second of one worker. */
struct series_sec {
	int64_t		sent, ok, refused, delivered;	/* ok: by its 200, less the
							 * refusals that followed */
	struct hist	lat;		/* posts sent in this second */
};

/* Parses <s> into <p>; false (with a message on stderr) when malformed. */
bool series_parse(const char *s, struct series_profile *p);
/* The offered deliveries/s <el_ns> after the load began (the last phase's
 * past the end). */
double series_rate_at(const struct series_profile *p, uint64_t el_ns);

/* A worker's rows: <nsec> seconds, zeroed; NULL when out of memory. */
struct series_sec *series_alloc(unsigned nsec);
/* The row of the second <t> falls in, the load having begun at <t0>; NULL
 * before it or past the last row. */
static inline struct series_sec *
series_at(struct series_sec *v, unsigned nsec, uint64_t t0, uint64_t t)
{
	uint64_t s;

	if (v == NULL || t0 == 0 || t < t0)
		return NULL;
	s = (t - t0) / 1000000000u;
	return s < nsec ? &v[s] : NULL;
}

/* Server samples by the main thread, one per second. */
struct series_srv {
	bool		ok;
	uint64_t	rss_kb;
	double		cpu_s;		/* since it started */
};

/* Writes <path>: a header line, then one row per second: t_s,
 * offered_deliv_per_s, posts_sent, posts_ok, posts_refused, delivered,
 * p50_ms, p99_ms, server_rss_mb, server_cpu (CPUs busy over that second),
 * merging the rows of <nw> workers <w>. 0 or -errno. */
int series_write(const char *path, const struct series_profile *p, struct series_sec *const *w,
		 unsigned nw, const struct series_srv *srv, unsigned nsec);

#endif
