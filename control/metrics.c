/* The Prometheus endpoint; see metrics.h. The exposition is made from the
 * JSON of ctl_stats_all(), the control socket's own stats command. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "control/ctl_int.h"
#include "control/metrics.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/engine.h"
#include "storage/commit.h"

struct mclient {
	int		fd;
	char		in[METRICS_HEAD_MAX + 1];
	size_t		in_len;
	char		*out;		/* malloc'd response */
	size_t		out_len, out_off;
	uint64_t	deadline_ms;	/* CLOCK_MONOTONIC */
};

struct metrics {
	struct ctl	*c;
	int		lfd;
	int		stop_fd;
	pthread_t	thread;
	bool		running;
	struct mclient	cl[METRICS_CLIENTS_MAX];
};

/* ---- the exposition ------------------------------------------------------- */

static void
help_type(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static long long
jnum(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) :
	       json_is_real(v) ? (long long)json_real_value(v) :
	       json_is_true(v) ? 1 : 0;
}

/* One gauge per lcore from the lcore objects' <key>. */
static void
per_lcore(FILE *f, json_t *lcores, const char *name, const char *type, const char *help,
	  const char *key)
{
	size_t i;
	json_t *lc;

	help_type(f, name, type, help);
	json_array_foreach(lcores, i, lc)
		if (json_object_get(lc, key) != NULL && !json_is_null(json_object_get(lc, key)))
			fprintf(f, "%s{lcore=\"%zu\"} %lld\n", name, i, jnum(lc, key));
}

static void
counters(FILE *f, json_t *lcores)
{
	char name[128];
	size_t i;
	json_t *lc;

	for (unsigned int id = 0; engine_counter_name(id) != NULL; id++) {
		const char *cn = engine_counter_name(id);

		snprintf(name, sizeof(name), "parley_%s_total", cn);
		fprintf(f, "# HELP %s The %s counter of parleyctl stats.\n# TYPE %s counter\n",
			name, cn, name);
		json_array_foreach(lcores, i, lc)
			fprintf(f, "%s{lcore=\"%zu\"} %lld\n", name, i, jnum(lc, cn));
	}
}

static void
holds(FILE *f, json_t *lcores)
{
	const char *key;
	size_t i;
	json_t *lc, *v;

	per_lcore(f, lcores, "parley_connections", "gauge",
		  "Open connections (TCP or TLS, any state).", "conns");
	help_type(f, "parley_connections_by_state", "gauge", "Open connections by state.");
	json_array_foreach(lcores, i, lc)
		json_object_foreach(json_object_get(lc, "conns_by_state"), key, v)
			fprintf(f, "parley_connections_by_state{lcore=\"%zu\",state=\"%s\"} %lld\n",
				i, key, (long long)json_integer_value(v));
	per_lcore(f, lcores, "parley_registrations", "gauge", "Registered SIP bindings.",
		  "registered");
	per_lcore(f, lcores, "parley_dialogs", "gauge", "Open INVITE dialogs.", "dialogs");
	per_lcore(f, lcores, "parley_channel_dialogs", "gauge",
		  "Open dialogs with the Channel service.", "channel_dialogs");
	per_lcore(f, lcores, "parley_room_presences", "gauge",
		  "Members present in rooms (one per member and room).", "room_presences");
	per_lcore(f, lcores, "parley_staged_messages", "gauge",
		  "Messages staged behind a full lcore-to-lcore ring.", "staged");
	per_lcore(f, lcores, "parley_ring_in_entries", "gauge",
		  "Ring entries waiting for this lcore.", "ring_in");
	per_lcore(f, lcores, "parley_lcore_reachable", "gauge",
		  "1 when the lcore answered the statistics call in time.", "reachable");
	help_type(f, "parley_lcore_cpu_seconds_total", "counter",
		  "CPU time of the lcore's thread.");
	json_array_foreach(lcores, i, lc)
		if (json_is_integer(json_object_get(lc, "cpu_ns")))
			fprintf(f, "parley_lcore_cpu_seconds_total{lcore=\"%zu\"} %.9f\n", i,
				(double)jnum(lc, "cpu_ns") / 1e9);
}

static void
gauge(FILE *f, const char *name, const char *type, const char *help, double v)
{
	help_type(f, name, type, help);
	fprintf(f, "%s %.17g\n", name, v);
}

static void
storage(FILE *f, struct ctl *c, json_t *st)
{
	json_t *lat = json_object_get(st, "latency_us"), *b = json_object_get(st, "batch");
	static const char *const stat[] = { "p50", "p99", "max" };
	struct commit_stats cs;

	gauge(f, "parley_storage_commit_groups_total", "counter",
	      "Write batches (group commits) written.", jnum(st, "groups"));
	gauge(f, "parley_storage_sync_waits_total", "counter",
	      "Group commits that waited for the rest of [storage] sync_interval_us.",
	      jnum(st, "sync_waits"));
	gauge(f, "parley_storage_commit_requests_total", "counter",
	      "Storage requests completed.", jnum(st, "requests"));
	gauge(f, "parley_storage_commit_failures_total", "counter",
	      "Storage requests completed with an error.", jnum(st, "failed"));
	gauge(f, "parley_storage_durable_seq", "gauge",
	      "Highest compliance sequence number on disk.", jnum(st, "durable_seq"));
	/* The histogram, read again: a few more commits may have happened
	 * since the JSON above, which is fine for a histogram. */
	memset(&cs, 0, sizeof(cs));
	engine_commit_stats(c->e, &cs);
	help_type(f, "parley_storage_commit_duration_seconds", "histogram",
		  "Write+fsync time of one group commit.");
	for (unsigned k = 0; k < COMMIT_LAT_BUCKETS; k++)
		fprintf(f, "parley_storage_commit_duration_seconds_bucket{le=\"%.6f\"} %llu\n",
			(double)commit_lat_le_us(k) / 1e6, (unsigned long long)cs.lat_le[k]);
	fprintf(f, "parley_storage_commit_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		"parley_storage_commit_duration_seconds_sum %.6f\n"
		"parley_storage_commit_duration_seconds_count %llu\n",
		(unsigned long long)cs.lat_count, (double)cs.lat_sum_us / 1e6,
		(unsigned long long)cs.lat_count);
	/* parleyctl's figures (bucket upper bounds, since start). */
	help_type(f, "parley_storage_commit_latency_seconds", "gauge",
		  "Group commit time as parleyctl stats shows it: p50, p99, max since start.");
	for (size_t i = 0; i < sizeof(stat) / sizeof(stat[0]); i++)
		fprintf(f, "parley_storage_commit_latency_seconds{stat=\"%s\"} %.6f\n", stat[i],
			(double)jnum(lat, stat[i]) / 1e6);
	help_type(f, "parley_storage_commit_batch_requests", "gauge",
		  "Requests per group commit: p50, p99, max since start.");
	for (size_t i = 0; i < sizeof(stat) / sizeof(stat[0]); i++)
		fprintf(f, "parley_storage_commit_batch_requests{stat=\"%s\"} %lld\n", stat[i],
			jnum(b, stat[i]));
}

static void
exporter(FILE *f, json_t *x)
{
	gauge(f, "parley_exporter_enabled", "gauge",
	      "1 when this node runs the compliance exporter.", jnum(x, "enabled"));
	if (!json_is_true(json_object_get(x, "enabled")))
		return;
	gauge(f, "parley_exporter_lag_events", "gauge",
	      "Compliance events logged but not exported yet.", jnum(x, "lag_events"));
	gauge(f, "parley_exporter_lag_seconds", "gauge",
	      "Age of the oldest compliance event not exported yet.", jnum(x, "lag_s"));
	gauge(f, "parley_exporter_runs_total", "counter", "Exporter runs.", jnum(x, "runs"));
	gauge(f, "parley_exporter_files_written_total", "counter",
	      "Compliance XML files written.", jnum(x, "files_written"));
	gauge(f, "parley_exporter_attachments_copied_total", "counter",
	      "Uploaded files copied to the compliance Attachment directory.",
	      jnum(x, "attachments_copied"));
	gauge(f, "parley_exporter_events_exported_total", "counter",
	      "Compliance events exported.", jnum(x, "events_exported"));
	gauge(f, "parley_exporter_consecutive_failures", "gauge",
	      "Exports that failed in a row (0: the last one succeeded).",
	      jnum(x, "consecutive_failures"));
	gauge(f, "parley_exporter_last_success_timestamp_seconds", "gauge",
	      "When the last export succeeded (Unix time).",
	      (double)jnum(x, "last_success_ms") / 1e3);
}

static void
memory(FILE *f, json_t *m)
{
	json_t *pools = json_object_get(m, "mempools"), *p;
	size_t i;

	gauge(f, "parley_memory_rss_bytes", "gauge", "Resident set size of parleyd.",
	      jnum(m, "rss_bytes"));
	gauge(f, "parley_memory_rss_peak_bytes", "gauge", "Peak resident set size of parleyd.",
	      jnum(m, "rss_peak_bytes"));
	help_type(f, "parley_mempool_objects", "gauge", "DPDK mempool objects by pool.");
	json_array_foreach(pools, i, p)
		fprintf(f, "parley_mempool_objects{pool=\"%s\"} %lld\n",
			json_string_value(json_object_get(p, "name")), jnum(p, "size"));
	help_type(f, "parley_mempool_objects_in_use", "gauge",
		  "DPDK mempool objects in use by pool.");
	json_array_foreach(pools, i, p)
		fprintf(f, "parley_mempool_objects_in_use{pool=\"%s\"} %lld\n",
			json_string_value(json_object_get(p, "name")), jnum(p, "in_use"));
}

char *
metrics_render(struct ctl *c)
{
	json_t *s = NULL, *node, *rings;
	char err[256], *buf = NULL;
	size_t len = 0, nrooms;
	FILE *f;

	if (ctl_stats_all(c, NULL, &s, err, sizeof(err)) != 0)
		return NULL;
	f = open_memstream(&buf, &len);
	if (f == NULL) {
		json_decref(s);
		return NULL;
	}
	node = json_object_get(s, "node");
	rings = json_object_get(s, "rings");
	pthread_mutex_lock(&c->lock);
	nrooms = c->rooms != NULL ? c->rooms->n : 0;
	pthread_mutex_unlock(&c->lock);
	help_type(f, "parley_info", "gauge", "Constant 1, labelled with the node.");
	fprintf(f, "parley_info{version=\"%s\",domain=\"%s\",node_id=\"%lld\"} 1\n",
		PARLEY_VERSION, c->conf.domain, jnum(node, "node_id"));
	gauge(f, "parley_start_time_seconds", "gauge", "When parleyd started (Unix time).",
	      (double)jnum(node, "started_ms") / 1e3);
	gauge(f, "parley_lcores", "gauge", "Engine lcores.", jnum(node, "lcores"));
	gauge(f, "parley_accepting", "gauge",
	      "1 while new connections are accepted (0: parleyctl drain).",
	      jnum(node, "accepting"));
	gauge(f, "parley_rooms", "gauge", "Rooms in the catalog.", (double)nrooms);
	counters(f, json_object_get(s, "lcores"));
	holds(f, json_object_get(s, "lcores"));
	gauge(f, "parley_ring_size_entries", "gauge", "Entries per lcore-to-lcore ring.",
	      jnum(rings, "size"));
	gauge(f, "parley_ring_waiting_entries", "gauge",
	      "Entries waiting in all lcore-to-lcore rings.", jnum(rings, "waiting"));
	storage(f, c, json_object_get(s, "storage"));
	exporter(f, json_object_get(s, "exporter"));
	memory(f, json_object_get(s, "memory"));
	json_decref(s);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- HTTP ----------------------------------------------------------------- */

static void
respond(struct mclient *cl, int code, const char *reason, const char *extra,
	const char *ctype, const char *body, bool head_only)
{
	size_t blen = strlen(body);
	char *out = NULL;
	int n;

	n = asprintf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n%s\r\n%s", code, reason, ctype, blen, extra,
		     head_only ? "" : body);
	if (n < 0) {
		cl->out = NULL;
		cl->out_len = 0;
		return;
	}
	cl->out = out;
	cl->out_len = (size_t)n;
	cl->out_off = 0;
}

static void
error_page(struct mclient *cl, int code, const char *reason, const char *extra)
{
	char body[128];

	snprintf(body, sizeof(body), "%d %s\n", code, reason);
	respond(cl, code, reason, extra, "text/plain; charset=utf-8", body, false);
}

/* A complete head in cl->in: the answer. */
static void
handle(struct metrics *m, struct mclient *cl)
{
	char *sp1, *sp2, *eol = strstr(cl->in, "\r\n");
	const char *method, *target, *version;
	bool head;
	char *text;

	if (eol == NULL) {
		error_page(cl, 400, "Bad Request", "");
		return;
	}
	*eol = '\0';
	sp1 = strchr(cl->in, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL) {
		error_page(cl, 400, "Bad Request", "");
		return;
	}
	*sp1 = *sp2 = '\0';
	method = cl->in;
	target = sp1 + 1;
	version = sp2 + 1;
	if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0) {
		error_page(cl, 400, "Bad Request", "");
		return;
	}
	for (const char *p = method; *p; p++)
		if (*p < 'A' || *p > 'Z') {
			error_page(cl, 400, "Bad Request", "");
			return;
		}
	if (target[0] != '/') {
		error_page(cl, 400, "Bad Request", "");
		return;
	}
	if (strcmp(target, "/metrics") != 0 && strncmp(target, "/metrics?", 9) != 0) {
		error_page(cl, 404, "Not Found", "");
		return;
	}
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		error_page(cl, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
		return;
	}
	text = metrics_render(m->c);
	if (text == NULL) {
		error_page(cl, 500, "Internal Server Error", "");
		return;
	}
	respond(cl, 200, "OK", "", "text/plain; version=0.0.4; charset=utf-8", text, head);
	free(text);
}

static void
client_close(struct mclient *cl)
{
	close(cl->fd);
	free(cl->out);
	cl->fd = -1;
	cl->out = NULL;
	cl->out_len = cl->out_off = cl->in_len = 0;
}

static void
client_read(struct metrics *m, struct mclient *cl)
{
	ssize_t n = recv(cl->fd, cl->in + cl->in_len, METRICS_HEAD_MAX - cl->in_len, 0);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(cl);
		return;
	}
	if (n < 0)
		return;
	cl->in_len += (size_t)n;
	cl->in[cl->in_len] = '\0';
	if (memchr(cl->in, '\0', cl->in_len) != NULL)
		error_page(cl, 400, "Bad Request", "");
	else if (strstr(cl->in, "\r\n\r\n") != NULL || strstr(cl->in, "\n\n") != NULL)
		handle(m, cl);
	else if (cl->in_len == METRICS_HEAD_MAX)
		error_page(cl, 431, "Request Header Fields Too Large", "");
	else
		return;
	if (cl->out == NULL)
		client_close(cl);	/* no memory for an answer */
}

static void
client_write(struct mclient *cl)
{
	ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
			 MSG_NOSIGNAL);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(cl);
		return;
	}
	cl->out_off += (size_t)n;
	if (cl->out_off == cl->out_len) {
		shutdown(cl->fd, SHUT_WR);
		client_close(cl);
	}
}

static void
client_accept(struct metrics *m)
{
	int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd == -1)
		return;
	for (int i = 0; i < METRICS_CLIENTS_MAX; i++)
		if (m->cl[i].fd == -1) {
			m->cl[i].fd = fd;
			m->cl[i].deadline_ms = clock_mono_ms() + METRICS_TIMEOUT_MS;
			return;
		}
	close(fd);	/* too many at once */
}

static void *
metrics_thread(void *arg)
{
	struct metrics *m = arg;
	struct pollfd p[METRICS_CLIENTS_MAX + 2];
	int idx[METRICS_CLIENTS_MAX];

	for (;;) {
		uint64_t now = clock_mono_ms();
		int n = 0;

		p[n++] = (struct pollfd){ .fd = m->stop_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = m->lfd, .events = POLLIN };
		for (int i = 0; i < METRICS_CLIENTS_MAX; i++) {
			struct mclient *cl = &m->cl[i];

			if (cl->fd == -1)
				continue;
			if (now >= cl->deadline_ms) {
				if (cl->out == NULL)
					error_page(cl, 408, "Request Timeout", "");
				if (cl->out == NULL || cl->out_off > 0 ||
				    now >= cl->deadline_ms + METRICS_TIMEOUT_MS) {
					client_close(cl);	/* not reading either */
					continue;
				}
			}
			idx[n - 2] = i;
			p[n++] = (struct pollfd){ .fd = cl->fd,
				.events = cl->out != NULL ? POLLOUT : POLLIN };
		}
		if (poll(p, n, 500) == -1) {
			if (errno == EINTR)
				continue;
			LOG(ERR, CONTROL, "metrics: poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents)
			break;
		for (int j = 2; j < n; j++) {
			struct mclient *cl = &m->cl[idx[j - 2]];

			if (p[j].revents == 0)
				continue;
			if (cl->out == NULL)
				client_read(m, cl);
			if (cl->fd != -1 && cl->out != NULL)
				client_write(cl);
		}
		if (p[1].revents & POLLIN)
			client_accept(m);
	}
	for (int i = 0; i < METRICS_CLIENTS_MAX; i++)
		if (m->cl[i].fd != -1)
			client_close(&m->cl[i]);
	return NULL;
}

/* ---- start and stop ------------------------------------------------------- */

static int
open_listener(const char *listen_on, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char host[256], *colon;
	const char *port;
	int fd = -1, rc, one = 1;

	if (listen_on[0] == '[') {
		snprintf(host, sizeof(host), "%s", listen_on + 1);
		colon = strstr(host, "]:");
		port = colon ? colon + 2 : NULL;
	} else {
		snprintf(host, sizeof(host), "%s", listen_on);
		colon = strrchr(host, ':');
		port = colon ? colon + 1 : NULL;
	}
	if (colon == NULL) {
		snprintf(err, errlen, "[metrics] listen: '%s' is not host:port", listen_on);
		return -1;
	}
	*colon = '\0';
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "[metrics] listen: %s: %s", listen_on, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, 16) == -1) {
		snprintf(err, errlen, "[metrics] listen %s: %s%s", listen_on, strerror(errno),
			 errno == EADDRINUSE ? " (set [metrics] listen to a free address, or "
			 "leave it empty)" : "");
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

struct metrics *
metrics_start(struct ctl *c, const char *listen_on, char *err, size_t errlen)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int rc;

	if (m == NULL) {
		snprintf(err, errlen, "[metrics] out of memory");
		return NULL;
	}
	m->c = c;
	m->stop_fd = -1;
	for (int i = 0; i < METRICS_CLIENTS_MAX; i++)
		m->cl[i].fd = -1;
	m->lfd = open_listener(listen_on, err, errlen);
	if (m->lfd == -1)
		goto out_free;
	m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->stop_fd == -1) {
		snprintf(err, errlen, "[metrics] eventfd: %s", strerror(errno));
		goto out_free;
	}
	rc = pthread_create(&m->thread, NULL, metrics_thread, m);
	if (rc != 0) {
		snprintf(err, errlen, "[metrics] thread: %s", strerror(rc));
		goto out_free;
	}
	pthread_setname_np(m->thread, "parley-metrics");
	m->running = true;
	LOG(NOTICE, CONTROL, "Prometheus metrics on http://%s/metrics", listen_on);
	return m;

out_free:
	metrics_stop(m);
	return NULL;
}

void
metrics_stop(struct metrics *m)
{
	static const uint64_t one = 1;

	if (m == NULL)
		return;
	if (m->running) {
		if (write(m->stop_fd, &one, sizeof(one)) == -1)
			LOG(ERR, CONTROL, "metrics: stop: %s", strerror(errno));
		pthread_join(m->thread, NULL);
	}
	if (m->lfd != -1)
		close(m->lfd);
	if (m->stop_fd != -1)
		close(m->stop_fd);
	free(m);
}
