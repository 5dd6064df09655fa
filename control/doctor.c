/* parleyctl doctor; see doctor.h. The keys it reads and their defaults
 * repeat router/config.c's table (parleyctl links no server code); the
 * doctor test checks them against `parleyd --dump-keys`. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <sys/un.h>

#include <ini.h>
#include <jansson.h>

#include "control/doctor.h"

#define GIB	(1024.0 * 1024 * 1024)

/* What the checks need of parleyd's configuration. */
struct dconf {
	char		data_dir[PATH_MAX];
	char		db[PATH_MAX];
	char		compliance_dir[PATH_MAX];
	bool		compliance;
	bool		web;
	char		backend[16];
	char		eal[512];
	char		port[256];
	unsigned long	max_conns, lcores, web_max_conns, backlog;
};

static int problems;

static void
report(const char *verdict, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
report(const char *verdict, const char *fix, const char *fmt, ...)
{
	va_list ap;

	printf("%-5s ", verdict);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (strcmp(verdict, "ok") != 0) {
		problems++;
		if (fix != NULL)
			printf("      fix: %s\n", fix);
	}
}

static bool
truthy(const char *v)
{
	return !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") ||
	       !strcmp(v, "1");
}

static int
conf_key(void *user, const char *sec, const char *name, const char *v)
{
	struct dconf *c = user;

#define IS(s, n) (strcasecmp(sec, s) == 0 && strcasecmp(name, n) == 0)
	if (name == NULL)
		return 1;
	if (IS("server", "data_dir"))
		snprintf(c->data_dir, sizeof(c->data_dir), "%s", v);
	else if (IS("storage", "db"))
		snprintf(c->db, sizeof(c->db), "%s", v);
	else if (IS("compliance", "output_dir"))
		snprintf(c->compliance_dir, sizeof(c->compliance_dir), "%s", v);
	else if (IS("compliance", "enabled"))
		c->compliance = truthy(v);
	else if (IS("web", "enabled"))
		c->web = truthy(v);
	else if (IS("io", "backend"))
		snprintf(c->backend, sizeof(c->backend), "%s", v);
	else if (IS("dpdk", "eal"))
		snprintf(c->eal, sizeof(c->eal), "%s", v);
	else if (IS("dpdk", "port"))
		snprintf(c->port, sizeof(c->port), "%s", v);
	else if (IS("net", "max_conns"))
		c->max_conns = strtoul(v, NULL, 10);
	else if (IS("dpdk", "lcores"))
		c->lcores = strtoul(v, NULL, 10);
	else if (IS("web", "max_conns"))
		c->web_max_conns = strtoul(v, NULL, 10);
	else if (IS("net", "backlog"))
		c->backlog = strtoul(v, NULL, 10);
#undef IS
	return 1;
}

static int
read_conf(const char *path, struct dconf *c)
{
	FILE *f;
	int rc;

	*c = (struct dconf){ .data_dir = "./var", .compliance = true, .web = true,
			     .backend = "kernel", .eal = "--no-huge --no-pci --no-shconf",
			     .max_conns = 60000, .lcores = 1, .web_max_conns = 1024,
			     .backlog = 4096 };
	if (path != NULL) {
		f = fopen(path, "r");
		if (f == NULL) {
			fprintf(stderr, "parleyctl: %s: %s\n", path, strerror(errno));
			return -1;
		}
		rc = ini_parse_file(f, conf_key, c);
		fclose(f);
		if (rc != 0) {
			fprintf(stderr, "parleyctl: %s:%d: syntax error\n", path, rc);
			return -1;
		}
	}
	if (c->db[0] == '\0')
		snprintf(c->db, sizeof(c->db), "%.*s/db", PATH_MAX - 8, c->data_dir);
	if (c->compliance_dir[0] == '\0')
		snprintf(c->compliance_dir, sizeof(c->compliance_dir), "%.*s/compliance",
			 PATH_MAX - 16, c->data_dir);
	return 0;
}

/* parleyd's pid from the control socket's greeting; 0 when not running. */
static long
server_pid(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[512];
	ssize_t n = 0;
	long pid = 0;
	int fd;

	if (path == NULL || strlen(path) >= sizeof(sa.sun_path))
		return 0;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 2000) == 1)
		n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		json_t *g;

		buf[n] = '\0';
		g = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
		pid = (long)json_integer_value(json_object_get(g, "pid"));
		json_decref(g);
	}
	return pid;
}

/* "Max open files  <soft> <hard> files" of <pid>; false when unreadable. */
static bool
pid_nofile(long pid, unsigned long long *soft)
{
	char path[64], line[256];
	bool ok = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/limits", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Max open files", 14) == 0) {
			char *p = line + 14;

			*soft = strncmp(p + strspn(p, " "), "unlimited", 9) == 0 ? ULLONG_MAX :
				strtoull(p, NULL, 10);
			ok = true;
		}
	fclose(f);
	return ok;
}

static void
check_nofile(const struct dconf *c, long pid)
{
	unsigned long long need = (unsigned long long)c->lcores * c->max_conns +
				   (c->web ? c->web_max_conns : 0) + 256, have;
	const char *whose = "this shell (parleyd not running)";
	char fix[256], who[64];
	struct rlimit rl;

	if (pid > 0 && pid_nofile(pid, &have)) {
		snprintf(who, sizeof(who), "parleyd (pid %ld)", pid);
		whose = who;
	} else {
		if (pid > 0) {
			snprintf(who, sizeof(who), "this shell (/proc/%ld not readable)", pid);
			whose = who;
		}
		getrlimit(RLIMIT_NOFILE, &rl);
		have = rl.rlim_cur == RLIM_INFINITY ? ULLONG_MAX : rl.rlim_cur;
	}
	snprintf(fix, sizeof(fix), "LimitNOFILE=%llu in a drop-in (systemctl edit parleyd), or "
		 "ulimit -n %llu before starting parleyd by hand", need, need);
	report(have >= need ? "ok" : "FAIL", fix,
	       "file limit: %llu open files for %s, %llu needed (%lu lcore%s x %lu max_conns%s"
	       " + 256)", have, whose, need, c->lcores, c->lcores == 1 ? "" : "s", c->max_conns,
	       c->web ? " + web max_conns" : "");
}

static void
check_clock(void)
{
	struct timex tx = { 0 };
	int st = adjtimex(&tx);

	if (st == -1)
		report("WARN", NULL, "clock: adjtimex: %s", strerror(errno));
	else if (st == TIME_ERROR || (tx.status & STA_UNSYNC))
		report("WARN", "timedatectl set-ntp true (systemd-timesyncd), or install chrony: "
		       "compliance timestamps, Digest nonces and certificates need the right time",
		       "clock: not synchronised (the kernel's STA_UNSYNC is set)");
	else
		report("ok", NULL, "clock: synchronised (estimated error %ld us)", tx.esterror);
}

/* statvfs on <path>, or on the nearest directory above it that exists. */
static void
check_disk(const char *what, const char *path)
{
	char p[PATH_MAX], fix[PATH_MAX + 128];
	struct statvfs sv;
	double free_b, pct;
	char *slash;

	snprintf(p, sizeof(p), "%s", path);
	while (statvfs(p, &sv) != 0) {
		slash = strrchr(p, '/');
		if (slash == NULL) {
			snprintf(p, sizeof(p), ".");
			if (statvfs(p, &sv) != 0) {
				report("WARN", NULL, "disk for %s %s: %s", what, path,
				       strerror(errno));
				return;
			}
			break;
		}
		if (slash == p)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free_b = (double)sv.f_bavail * sv.f_frsize;
	pct = sv.f_blocks ? 100.0 * sv.f_bavail / sv.f_blocks : 0;
	snprintf(fix, sizeof(fix), "free space on the filesystem of %s, or move %s to a "
		 "larger one", p, what);
	report(free_b < 1 * GIB || pct < 5 ? "FAIL" : pct < 10 ? "WARN" : "ok", fix,
	       "disk for %s: %.1f GiB free (%.0f %%) on the filesystem of %s", what,
	       free_b / GIB, pct, p);
}

static unsigned long
meminfo(const char *key)
{
	char line[256];
	unsigned long v = 0;
	size_t kl = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = strtoul(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

static void
check_somaxconn(const struct dconf *c)
{
	unsigned long v = 0;
	char fix[160];
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");

	if (f == NULL || fscanf(f, "%lu", &v) != 1) {
		if (f != NULL)
			fclose(f);
		report("WARN", NULL, "somaxconn: /proc/sys/net/core/somaxconn not readable");
		return;
	}
	fclose(f);
	snprintf(fix, sizeof(fix), "sysctl -w net.core.somaxconn=%lu (and in /etc/sysctl.d/)",
		 c->backlog);
	report(v >= c->backlog ? "ok" : "WARN", fix,
	       "somaxconn: net.core.somaxconn = %lu, [net] backlog = %lu", v, c->backlog);
}

static void
check_dpdk(const struct dconf *c)
{
	unsigned long total = meminfo("HugePages_Total"), freep = meminfo("HugePages_Free");
	unsigned long size_kb = meminfo("Hugepagesize");

	if (strstr(c->eal, "--no-huge") != NULL) {
		report("WARN", "drop --no-huge from [dpdk] eal once hugepages are set up "
		       "(README, Host guide)", "hugepages: [dpdk] eal has --no-huge: DPDK runs on "
		       "ordinary pages (tests only; slow, and no PCI devices)");
	} else if (total == 0) {
		report("FAIL", "dpdk-hugepages.py -p 1G --setup 4G (or hugepages=N on the kernel "
		       "command line), and mount hugetlbfs on /dev/hugepages",
		       "hugepages: none reserved (HugePages_Total = 0)");
	} else {
		report(freep > 0 ? "ok" : "FAIL",
		       "reserve more: dpdk-hugepages.py -p 1G --setup 8G", "hugepages: %lu of %lu free (%lu kB each)", freep, total, size_kb);
	}
	if (c->port[0] != '\0' && strncmp(c->port, "net_", 4) != 0) {
		char path[PATH_MAX], drv[PATH_MAX], fix[PATH_MAX];
		ssize_t n;

		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s%s/driver",
			 strchr(c->port, ':') == strrchr(c->port, ':') ? "0000:" : "", c->port);
		n = readlink(path, drv, sizeof(drv) - 1);
		drv[n > 0 ? n : 0] = '\0';
		snprintf(fix, sizeof(fix), "modprobe vfio-pci; dpdk-devbind.py -b vfio-pci %s",
			 c->port);
		report(strstr(drv, "vfio-pci") != NULL ? "ok" : "FAIL", fix,
		       "port %s: driver %s", c->port,
		       n > 0 ? strrchr(drv, '/') + 1 : "none (or no such device)");
	}
}

int
doctor_run(const char *config, const char *socket)
{
	struct dconf c;
	long pid;

	if (read_conf(config, &c) != 0)
		return 2;
	problems = 0;
	pid = server_pid(socket);
	printf("parleyctl doctor: %s, parleyd %s", config ? config : "(embedded default)",
	       pid > 0 ? "running" : "not running");
	if (pid > 0)
		printf(" (pid %ld)", pid);
	printf("\n");
	check_nofile(&c, pid);
	check_clock();
	check_disk("[storage] db", c.db);
	if (c.compliance)
		check_disk("[compliance] output_dir", c.compliance_dir);
	if (strcmp(c.backend, "dpdk") == 0)
		check_dpdk(&c);
	else
		check_somaxconn(&c);
	printf("%d problem%s\n", problems, problems == 1 ? "" : "s");
	return problems == 0 ? 0 : 1;
}
