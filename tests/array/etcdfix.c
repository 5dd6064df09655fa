/* See etcdfix.h.
 *
 * Processes: the test forks the reaper; the reaper forks etcd, tells the
 * test etcd's pid over a pipe, and then waits for the test's end of a
 * second pipe (hold_fd) to close: by etcdfix_stop(), or by the kernel when
 * the test dies in any way. Then it kills etcd, waits for it and removes
 * the directory. Both pipes are close-on-exec, so servers the test starts
 * later do not hold them open. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/array/etcdfix.h"

#define ETCD_BIN	"/usr/bin/etcd"
#define START_WAIT_MS	20000

uint16_t
etcdfix_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port = 0;

	if (fd < 0)
		return 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

int
etcdfix_healthy(const char *url)
{
	static const char req[] = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 1 };
	char buf[2048];
	size_t n = 0;
	ssize_t r;
	unsigned int port;
	int fd, ok = 0;

	if (sscanf(url, "http://127.0.0.1:%u", &port) != 1)
		return 0;
	a.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(req) - 1) {
		while (n < sizeof(buf) - 1 && (r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
			n += (size_t)r;
		buf[n] = '\0';
		ok = strstr(buf, "\"health\":\"true\"") != NULL;
	}
	close(fd);
	return ok;
}

/* The reaper: runs etcd, reports its pid on <pid_fd>, cleans up once
 * <hold_fd> reads EOF. Never returns. */
static void
reaper(struct etcdfix *f, int pid_fd, int hold_fd)
{
	char client[64], peer[64], cluster[96], data[96];
	pid_t etcd;
	int st;

	snprintf(client, sizeof(client), "http://127.0.0.1:%u", f->client_port);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%u", f->peer_port);
	snprintf(cluster, sizeof(cluster), "fix=%s", peer);
	snprintf(data, sizeof(data), "%s/data", f->dir);
	etcd = fork();
	if (etcd == 0) {
		int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		/* If the reaper itself is killed, etcd goes too. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execl(ETCD_BIN, "etcd", "--name", "fix", "--data-dir", data,
		      "--listen-client-urls", client, "--advertise-client-urls", client,
		      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		      "--initial-cluster", cluster, "--initial-cluster-state", "new",
		      "--listen-metrics-urls", "", (char *)NULL);
		_exit(127);
	}
	if (write(pid_fd, &etcd, sizeof(etcd)) != sizeof(etcd))
		etcd = -1;
	close(pid_fd);
	/* Until the test closes its end (or dies). */
	for (;;) {
		char c;
		ssize_t r = read(hold_fd, &c, 1);

		if (r == 0 || (r < 0 && errno != EINTR))
			break;
	}
	if (etcd > 0) {
		kill(etcd, SIGCONT);	/* a stopped etcd dies of SIGKILL too, but be plain */
		kill(etcd, SIGKILL);
		waitpid(etcd, &st, 0);
	}
	if (fork() == 0) {
		execlp("rm", "rm", "-rf", f->dir, (char *)NULL);
		_exit(127);
	}
	wait(&st);
	_exit(0);
}

/* True when <pid> has exited (a zombie counts: its reaper waits on the
 * pipe, not on it). */
static int
dead(pid_t pid)
{
	char path[64], buf[256];
	FILE *fp;
	char *rp;
	int gone = 1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return 1;
	if (fgets(buf, sizeof(buf), fp) != NULL && (rp = strrchr(buf, ')')) != NULL)
		gone = rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
	fclose(fp);
	return gone;
}

/* One attempt on fresh ports. 0, 1 (a port was taken meanwhile: try
 * others) or -1. */
static int
attempt(struct etcdfix *f, char *err, size_t errlen)
{
	int pidp[2], holdp[2];
	char cmd[200];

	f->client_port = etcdfix_free_port();
	f->peer_port = etcdfix_free_port();
	if (f->client_port == 0 || f->peer_port == 0 || f->client_port == f->peer_port)
		return 1;
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->client_port);
	if (pipe2(pidp, O_CLOEXEC) != 0 || pipe2(holdp, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	f->reaper = fork();
	if (f->reaper < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (f->reaper == 0) {
		close(pidp[0]);
		close(holdp[1]);
		reaper(f, pidp[1], holdp[0]);
	}
	close(pidp[1]);
	close(holdp[0]);
	f->hold_fd = holdp[1];
	if (read(pidp[0], &f->pid, sizeof(f->pid)) != sizeof(f->pid) || f->pid <= 0)
		f->pid = 0;
	close(pidp[0]);
	for (int waited = 0; f->pid > 0 && waited < START_WAIT_MS; waited += 100) {
		if (etcdfix_healthy(f->url))
			return 0;
		if (dead(f->pid)) {
			snprintf(cmd, sizeof(cmd), "grep -q 'address already in use' %s", f->log);
			return system(cmd) == 0 ? 1 : -1;
		}
		usleep(100000);
	}
	return -1;
}

int
etcdfix_start(struct etcdfix *f, char *err, size_t errlen)
{
	int rc = 1;

	memset(f, 0, sizeof(*f));
	f->hold_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	/* On tmpfs when there is one: etcd fsyncs every write, which on a
	 * busy disk makes requests take seconds. */
	snprintf(f->dir, sizeof(f->dir), "%s/parley-etcd-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(f->log, sizeof(f->log), "%s/etcd.log", f->dir);
	for (int i = 0; i < 3 && rc == 1; i++) {
		if (i > 0) {
			/* The failed attempt's reaper removes the directory. */
			etcdfix_stop(f);
			if (mkdir(f->dir, 0700) != 0 && errno != EEXIST)
				break;
		}
		rc = attempt(f, err, errlen);
	}
	if (rc != 0) {
		char tail[1024] = "";
		FILE *p;
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "tail -c 900 %s 2>/dev/null", f->log);
		p = popen(cmd, "r");
		if (p != NULL) {
			size_t n = fread(tail, 1, sizeof(tail) - 1, p);

			tail[n] = '\0';
			pclose(p);
		}
		snprintf(err, errlen, "etcd on %s did not become healthy in %d s; its log: %s",
			 f->url, START_WAIT_MS / 1000, tail);
		etcdfix_stop(f);
		return -1;
	}
	return 0;
}

void
etcdfix_stop(struct etcdfix *f)
{
	if (f->hold_fd >= 0) {
		close(f->hold_fd);
		f->hold_fd = -1;
	}
	if (f->reaper > 0) {
		waitpid(f->reaper, NULL, 0);
		f->reaper = 0;
	}
	f->pid = 0;
}

int
etcdfix_signal(struct etcdfix *f, int sig)
{
	return f->pid > 0 ? kill(f->pid, sig) : -1;
}
