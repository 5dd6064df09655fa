/* /proc readers; see procstat.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perf/procstat.h"

/* utime and stime from /proc/PID/stat: fields 14 and 15, counted after the
 * command name, which is in parentheses and may itself hold spaces. */
static int
read_cpu(pid_t pid, double *cpu_s)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EINVAL;
	/* After ") ": state(3) ppid(4) pgrp(5) session(6) tty(7) tpgid(8)
	 * flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EINVAL;
	*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

int
procstat_read(pid_t pid, struct procstat *ps)
{
	char path[64], line[256];
	FILE *f;
	int rc;

	memset(ps, 0, sizeof(*ps));
	rc = read_cpu(pid, &ps->cpu_s);
	if (rc != 0)
		return rc;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			ps->rss_kb = strtoull(line + 6, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			ps->hwm_kb = strtoull(line + 6, NULL, 10);
		else if (strncmp(line, "Threads:", 8) == 0)
			ps->threads = (unsigned)strtoul(line + 8, NULL, 10);
	}
	fclose(f);
	return 0;
}

int
procstat_system_busy(double *busy_s)
{
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (f == NULL)
		return -errno;
	/* cpu user nice system idle iowait irq softirq steal guest guest_nice;
	 * guest time is already counted in user. */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	fclose(f);
	if (n < 8)
		return -EINVAL;
	*busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}
