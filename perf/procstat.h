/* What the load generator reads about another process (the server) from
 * /proc: CPU time and resident memory. Any thread. */
#ifndef PARLEY_PERF_PROCSTAT_H
#define PARLEY_PERF_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

struct procstat {
	double cpu_s;		/* user + system, all threads, since the process started */
	uint64_t rss_kb;	/* VmRSS */
	uint64_t hwm_kb;	/* VmHWM: peak RSS */
	unsigned threads;
};

/* 0, or -errno when <pid> is gone or /proc cannot be read. */
int procstat_read(pid_t pid, struct procstat *ps);

/* CPU seconds the whole machine spent busy (not idle or iowait), summed over
 * CPUs, from /proc/stat: a window's difference minus the server's and the
 * generator's own shows what else ran meanwhile. 0 or -errno. */
int procstat_system_busy(double *busy_s);

#endif
