/* See harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "dataplane/sip/digest.h"
#include "perf/client.h"
#include "tests/integration/harness.h"

const char *
build_path(char *out, size_t cap, const char *rel)
{
	const char *b = getenv("PARLEY_BUILDDIR");

	snprintf(out, cap, "%s/%s", b ? b : "build", rel);
	return out;
}

const char *
sipe_driver_path(void)
{
	const char *p = getenv("PARLEY_SIPE_DRIVER");
	static char path[512];

	return p != NULL ? p : build_path(path, sizeof(path), "tests/sipe/sipe_driver");
}

const char *
server_binary(void)
{
	static char path[512];

	return build_path(path, sizeof(path), "router/parleyd");
}

struct pc_conn *
server_connect(const struct server *s, const struct pc_opts *o)
{
	char err[256];
	struct pc_conn *c = pc_connect("127.0.0.1", s->port, o, 5000, err, sizeof(err));

	cr_assert(c != NULL, "connect: %s", err);
	return c;
}

int
server_roundtrip(struct pc_conn *c, const char *req, size_t len, struct sipmsg *m)
{
	cr_assert_eq(pc_send(c, req, len), 0);
	cr_assert_eq(pc_recv(c, m, 5000), 1, "no response");
	return m->status;
}

int
run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A port to listen on, below the kernel's ephemeral range: a port the
 * kernel hands out (bind to 0) is in that range, and any outgoing
 * connection of the test's own nodes (etcd, peer links) may take it before
 * the node binds it. Free now; random, so parallel tests rarely meet. */
uint16_t
server_free_port(void)
{
	static unsigned seed;
	unsigned lo = 32768, hi = 60999, base;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f != NULL) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	base = lo > 11024 ? lo - 10000 : hi + 1;
	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	for (int i = 0; i < 500; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		unsigned port = base + (unsigned)rand_r(&seed) % 10000;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		bool ok;

		if (port > 65535)
			continue;
		a.sin_port = htons((uint16_t)port);
		cr_assert(fd >= 0);
		ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return (uint16_t)port;
	}
	cr_assert_fail("no free port below the ephemeral range");
	return 0;
}

static bool
port_open(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	close(fd);
	return ok;
}

static void
add_user(FILE *f, const char *user, const char *pw)
{
	char ha1[65];

	digest_ha1(DIGEST_MD5, user, "example.com", pw, ha1);
	fprintf(f, "%s:example.com:%s\n", user, ha1);
}

static void spawn(struct server *s);

void
server_start(struct server *s, const char *extra)
{
	char users[300];
	FILE *f;

	signal(SIGPIPE, SIG_IGN);	/* writes to a connection the server closed */
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/parley-test-XXXXXX");
	cr_assert(mkdtemp(s->dir) != NULL);
	snprintf(users, sizeof(users), "%s/users.htdigest", s->dir);
	f = fopen(users, "w");
	cr_assert(f != NULL);
	add_user(f, "alice@example.com", "alice-pw");
	add_user(f, "bob@example.com", "bob-pw");
	for (int i = 0; i < HARNESS_USERS; i++) {
		char u[64];

		snprintf(u, sizeof(u), "user%d@example.com", i);
		add_user(f, u, "pw");
	}
	fclose(f);

	s->port = server_free_port();
	snprintf(s->conf, sizeof(s->conf), "%s/parleyd.ini", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/parleyd.log", s->dir);
	f = fopen(s->conf, "w");
	cr_assert(f != NULL);
	/* The Web service gets a free port too, so servers never share 8443
	 * (a test's own [web] section, appended below, overrides it). */
	fprintf(f, "[server]\ndomain = example.com\ndata_dir = %s\ndrain_timeout_s = 3\n"
		"[sip]\nlisten = 127.0.0.1:%u\n[auth]\nhtdigest = %s\n"
		"[web]\nlisten = 127.0.0.1:%u\n", s->dir, s->port, users, server_free_port());
	/* The suite runs some tests again on the io_uring kernel path. */
	if (getenv("PARLEY_KERNEL_IO") != NULL)
		fprintf(f, "[io]\nkernel_io = %s\n", getenv("PARLEY_KERNEL_IO"));
	if (extra != NULL)
		fputs(extra, f);
	fclose(f);
	spawn(s);
}

/* With PARLEY_KERNEL_IO=io_uring the server must say it runs on io_uring,
 * or why this kernel cannot (then the test runs on epoll, with a note). */
static void
check_kernel_io(const struct server *s)
{
	const char *want = getenv("PARLEY_KERNEL_IO");

	if (want == NULL || strcmp(want, "io_uring") != 0)
		return;
	if (run("grep -q 'kernel_io = io_uring: .*using epoll' %s", s->log) == 0) {
		fprintf(stderr, "note: this kernel cannot run io_uring; the test ran on epoll\n");
		return;
	}
	cr_assert(run("grep -q 'kernel_io = io_uring$' %s", s->log) == 0,
		  "parleyd did not log that it runs on io_uring");
}

static void
spawn(struct server *s)
{
	pid_t parent = getpid();

	s->pid = fork();
	cr_assert(s->pid >= 0);
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		const char *asan = getenv("PARLEY_PARLEYD_ASAN_OPTIONS");

		/* A test that fails an assertion ends without server_stop():
		 * its server goes with it instead of serving on, orphaned. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);

		dup2(fd, STDERR_FILENO);
		dup2(fd, STDOUT_FILENO);
		/* The sanitizer build checks the server for leaks even where the
		 * test programs (Criterion, libpurple) cannot be. */
		if (asan != NULL)
			setenv("ASAN_OPTIONS", asan, 1);
		execl(server_binary(), "parleyd", "-c", s->conf, "-v", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {		/* up to 20 s on a loaded machine */
		if (port_open(s->port)) {
			check_kernel_io(s);
			return;
		}
		if (!server_alive(s))
			break;
		usleep(100000);
	}
	run("cat %s >&2", s->log);
	cr_assert_fail("parleyd did not start listening on port %u", s->port);
}

void
server_kill(struct server *s, int sig)
{
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, sig);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
}

void
server_restart(struct server *s)
{
	char cmd[700];

	/* Keep the old log for a failing test to show. */
	snprintf(cmd, sizeof(cmd), "cat %s >> %s.old 2>/dev/null", s->log, s->log);
	run("%s", cmd);
	spawn(s);
}

/* Does not reap: a test thread asking while another stops the server
 * must leave the exit status to server_stop (WNOWAIT). */
bool
server_alive(struct server *s)
{
	siginfo_t si = { 0 };

	if (s->pid <= 0)
		return false;
	if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return false;
	return si.si_pid == 0;
}

void
server_signal(struct server *s, int sig)
{
	kill(s->pid, sig);
}

int
server_stop(struct server *s)
{
	int st = -1;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 150; i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			if (getenv("PARLEY_KEEP_LOGS") != NULL)	/* debugging a test */
				run("mkdir -p %s && cat %s.old %s > %s/$(basename %s).log 2>/dev/null",
				    getenv("PARLEY_KEEP_LOGS"), s->log, s->log,
				    getenv("PARLEY_KEEP_LOGS"), s->dir);
			run("rm -rf %s", s->dir);
			if (!WIFEXITED(st))
				fprintf(stderr, "%s ended by signal %d\n", s->dir, WTERMSIG(st));
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		usleep(100000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	run("cat %s >&2; rm -rf %s", s->log, s->dir);
	return -1;
}
