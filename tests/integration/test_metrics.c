/* The Prometheus endpoint ([metrics] listen, control/metrics.c): promtool
 * accepts the exposition, its counters equal parleyctl stats' after chat
 * traffic, and bad requests get 400/404/405/431 without harming the node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "perf/gcclient.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/ctlrun.h"
#include "tests/integration/harness.h"

/* Sends <req> (<len> bytes) to 127.0.0.1:<port> and reads to EOF; the
 * answer, malloc'd and NUL-terminated. */
static char *
http(uint16_t port, const char *req, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { 10, 0 };
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t r;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0 && buf != NULL);
	/* The endpoint starts after the SIP listener that server_start waits for. */
	for (int i = 0; connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0; i++) {
		cr_assert_lt(i, 100, "connect to metrics on port %u", port);
		close(fd);
		usleep(100 * 1000);
		fd = socket(AF_INET, SOCK_STREAM, 0);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (len > 0)
		cr_assert_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	while ((r = recv(fd, buf + n, cap - n, 0)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			cr_assert(buf != NULL);
		}
	}
	close(fd);
	buf[n] = '\0';
	return buf;
}

static char *
get_metrics(uint16_t port)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
	char *r = http(port, req, sizeof(req) - 1);

	cr_assert(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "%.200s", r);
	cr_assert(strstr(r, "Content-Type: text/plain; version=0.0.4") != NULL);
	return r;
}

/* The value of the sample <series> ("parley_posts_in_total{lcore=\"0\"}"). */
static double
sample(const char *text, const char *series)
{
	size_t l = strlen(series);

	for (const char *p = text; p != NULL && *p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, series, l) == 0 && p[l] == ' ')
			return strtod(p + l + 1, NULL);
	}
	cr_assert_fail("no sample %s", series);
	return -1;
}

static int
status_of(uint16_t port, const char *req, size_t len)
{
	char *r = http(port, req, len);
	int code = -1;

	if (sscanf(r, "HTTP/1.1 %d ", &code) != 1)
		code = -1;
	free(r);
	return code;
}

Test(metrics, promtool_and_parleyctl_agree, .timeout = 120)
{
	enum { M = 2, N = 4 };
	uint16_t port = server_free_port();
	char extra[192], lobby[200], text[64], path[400];
	struct gc *g[M];
	struct server s;
	json_t *st;
	char *body;
	FILE *f;

	/* A sync interval far above the time between these posts: each
	 * stored write after the first waits for it (sync_waits). And epoll
	 * naps: an lcore woken soon after it blocked (a storage completion, a
	 * member's 200) naps before its next wait (io_naps). */
	snprintf(extra, sizeof(extra), "[metrics]\nlisten = 127.0.0.1:%u\n[dpdk]\nlcores = 2\n"
		 "[storage]\nsync_interval_us = 100000\n[io]\nkernel_nap_us = 2000\n", port);
	ctl_server_start(&s, extra, NULL);
	for (int i = 0; i < M; i++) {
		g[i] = kit_user(&s, i);
		if (i == 0)
			cr_assert(kit_room_uri(g[0], "Lobby", lobby, sizeof(lobby)));
		kit_join_ok(g[i], lobby);
	}
	for (int k = 0; k < N; k++) {
		snprintf(text, sizeof(text), "metrics post %d", k);
		cr_assert_eq(gc_post(g[k % M], lobby, text, NULL), 200);
		for (int i = 0; i < M; i++)
			free(gc_wait(g[i], 5000, "<grpchat", text, NULL));
	}
	/* Quiet now: both reads see the same counters. */
	usleep(300 * 1000);
	st = ctl_ok(&s, "stats");
	body = get_metrics(port);

	/* promtool on the body (the HTTP head cut off). */
	snprintf(path, sizeof(path), "%s/metrics.txt", s.dir);
	f = fopen(path, "w");
	cr_assert(f != NULL);
	fputs(strstr(body, "\r\n\r\n") + 4, f);
	fclose(f);
	cr_assert_eq(run("promtool check metrics < %s > %s/promtool.out 2>&1 || "
			 "{ cat %s/promtool.out; exit 1; }", path, s.dir, s.dir), 0,
		     "promtool check metrics failed");

	for (int lc = 0; lc < 2; lc++)
		for (const char *const *k = (const char *const[]){ "posts_in", "deliveries",
				"joins", "conn_accepted", "tls_handshakes", "sip_requests",
				"xccos_commands", "register_ok", "bytes_in", NULL }; *k; k++) {
			char series[128], jp[64];

			snprintf(series, sizeof(series), "parley_%s_total{lcore=\"%d\"}", *k, lc);
			snprintf(jp, sizeof(jp), "lcores.%d.%s", lc, *k);
			cr_assert_eq((long long)sample(body, series), jint(st, jp), "%s", series);
		}
	cr_assert_eq(sample(body, "parley_posts_in_total{lcore=\"0\"}") +
		     sample(body, "parley_posts_in_total{lcore=\"1\"}"), N);
	/* (Not compared with the metrics: reading them wakes the lcores, and
	 * a wake-up soon after a wait is what starts a nap.) */
	cr_assert_geq(jint(st, "lcores.0.io_naps") + jint(st, "lcores.1.io_naps"), 1,
		      "[io] kernel_nap_us: the lcores napped");
	cr_assert_eq((long long)(sample(body, "parley_connections{lcore=\"0\"}") +
				 sample(body, "parley_connections{lcore=\"1\"}")),
		     jint(st, "total.conns"));
	cr_assert_eq((long long)sample(body, "parley_rooms"), 1);
	cr_assert_eq((long long)sample(body, "parley_lcores"), 2);
	cr_assert_geq(sample(body, "parley_storage_commit_duration_seconds_count"), 1);
	cr_assert_eq(sample(body, "parley_storage_commit_duration_seconds_bucket{le=\"+Inf\"}"),
		     sample(body, "parley_storage_commit_duration_seconds_count"));
	cr_assert_eq((long long)sample(body, "parley_storage_commit_requests_total"),
		     jint(st, "storage.requests"));
	cr_assert_geq(jint(st, "storage.sync_waits"), N - 1, "posts within the sync interval wait");
	cr_assert_eq((long long)sample(body, "parley_storage_sync_waits_total"),
		     jint(st, "storage.sync_waits"));
	cr_assert(strstr(body, "# TYPE parley_posts_in_total counter\n") != NULL);
	cr_assert(strstr(body, "# HELP parley_exporter_lag_events ") != NULL);
	cr_assert_eq((long long)sample(body, "parley_exporter_lag_events"),
		     jint(st, "exporter.lag_events"));
	free(body);
	json_decref(st);
	for (int i = 0; i < M; i++)
		gc_close(g[i]);
	cr_assert_eq(server_stop(&s), 0);
}

Test(metrics, bad_requests, .timeout = 90)
{
	uint16_t port = server_free_port();
	char extra[96], *big;
	struct server s;
	char *r;

	snprintf(extra, sizeof(extra), "[metrics]\nlisten = 127.0.0.1:%u\n", port);
	server_start(&s, extra);
#define REQ(x) x, sizeof(x) - 1
	cr_assert_eq(status_of(port, REQ("GET /nothing HTTP/1.1\r\n\r\n")), 404);
	cr_assert_eq(status_of(port, REQ("GET / HTTP/1.1\r\n\r\n")), 404);
	cr_assert_eq(status_of(port, REQ("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")),
		     405);
	cr_assert_eq(status_of(port, REQ("DELETE /metrics HTTP/1.1\r\n\r\n")), 405);
	cr_assert_eq(status_of(port, REQ("GARBAGE\r\n\r\n")), 400);
	cr_assert_eq(status_of(port, REQ("GET /metrics HTTP/9.9\r\n\r\n")), 400);
	cr_assert_eq(status_of(port, REQ("GET metrics HTTP/1.1\r\n\r\n")), 400);
	cr_assert_eq(status_of(port, REQ("GET /metrics\0 HTTP/1.1\r\n\r\n")), 400);
	cr_assert_eq(status_of(port, REQ("get /metrics HTTP/1.1\r\n\r\n")), 400);
	big = malloc(20000);
	memset(big, 'a', 20000);
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	cr_assert_eq(status_of(port, big, 20000), 431);
	free(big);
	/* A client that says nothing is closed after the timeout (408), and
	 * does not hold up others meanwhile. */
	{
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		int idle = socket(AF_INET, SOCK_STREAM, 0);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		free(get_metrics(port));
		cr_assert_eq(connect(idle, (struct sockaddr *)&sa, sizeof(sa)), 0);
		free(get_metrics(port));
		r = http(port, REQ("HEAD /metrics HTTP/1.0\r\n\r\n"));
		cr_assert(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
		cr_assert(strstr(r, "\r\n\r\n")[4] == '\0', "HEAD has no body");
		free(r);
		close(idle);
	}
	cr_assert_eq(status_of(port, "", 0), 408);
	cr_assert(server_alive(&s));
	free(get_metrics(port));
	cr_assert_eq(server_stop(&s), 0);
}

Test(metrics, off_by_default_and_bad_address_refused, .timeout = 30)
{
	cr_assert_eq(run("%s --check-config --set metrics.listen=nonsense >/dev/null 2>&1",
			 server_binary()), 1);
	cr_assert_eq(run("%s --check-config --set metrics.listen=127.0.0.1:9187 >/dev/null",
			 server_binary()), 0);
}
