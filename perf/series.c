/* parley-bench --profile and --series; see series.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/series.h"

bool
series_parse(const char *s, struct series_profile *p)
{
	const char *q = s;

	memset(p, 0, sizeof(*p));
	while (*q != '\0') {
		double d, sec;
		int used = 0;

		if (p->n == SERIES_PHASES_MAX || sscanf(q, "%lf:%lf%n", &d, &sec, &used) != 2 ||
		    d <= 0 || sec <= 0) {
			fprintf(stderr, "parley-bench: --profile wants DELIV_PER_S:SECONDS[,...] "
				"(each above 0, at most %d phases), not '%s'\n", SERIES_PHASES_MAX, s);
			return false;
		}
		p->p[p->n++] = (struct series_phase){ d, sec };
		p->total_s += sec;
		q += used;
		if (*q == ',') {
			q++;
		} else if (*q != '\0') {
			fprintf(stderr, "parley-bench: --profile: phases are separated by commas: "
				"'%s'\n", s);
			return false;
		}
	}
	if (p->n == 0) {
		fprintf(stderr, "parley-bench: --profile is empty\n");
		return false;
	}
	return true;
}

double
series_rate_at(const struct series_profile *p, uint64_t el_ns)
{
	double el = el_ns / 1e9, end = 0;

	for (unsigned i = 0; i < p->n; i++) {
		end += p->p[i].seconds;
		if (el < end)
			return p->p[i].deliv_rate;
	}
	return p->p[p->n - 1].deliv_rate;
}

struct series_sec *
series_alloc(unsigned nsec)
{
	return calloc(nsec ? nsec : 1, sizeof(struct series_sec));
}

int
series_write(const char *path, const struct series_profile *p, struct series_sec *const *w, unsigned nw, const struct series_srv *srv,
	     unsigned nsec)
{
	FILE *f = fopen(path, "w");
	static struct series_sec sum;

	if (f == NULL)
		return -errno;
	fprintf(f, "# t_s offered_deliv_per_s posts_sent posts_ok posts_refused delivered "
		"p50_ms p99_ms server_rss_mb server_cpu\n");
	for (unsigned s = 0; s < nsec; s++) {
		double cpu = -1;

		memset(&sum, 0, sizeof(sum));
		for (unsigned i = 0; i < nw; i++) {
			sum.sent += w[i][s].sent;
			sum.ok += w[i][s].ok;
			sum.refused += w[i][s].refused;
			sum.delivered += w[i][s].delivered;
			hist_merge(&sum.lat, &w[i][s].lat);
		}
		if (s + 1 < nsec && srv[s].ok && srv[s + 1].ok)
			cpu = srv[s + 1].cpu_s - srv[s].cpu_s;
		fprintf(f, "%u %.0f %lld %lld %lld %lld %.3f %.3f %.1f %.2f\n", s,
			s < p->total_s ? series_rate_at(p, (uint64_t)s * 1000000000u) : 0,
			(long long)sum.sent, (long long)sum.ok, (long long)sum.refused,
			(long long)sum.delivered,
			hist_quantile(&sum.lat, 0.5) / 1e6, hist_quantile(&sum.lat, 0.99) / 1e6,
			srv[s].ok ? srv[s].rss_kb / 1024.0 : -1, cpu);
	}
	return fclose(f) == 0 ? 0 : -errno;
}
