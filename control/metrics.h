/* The Prometheus endpoint: `[metrics] listen = ADDR:PORT` (off when empty).
 * Plain HTTP/1.1 on a thread of its own: GET (or HEAD) /metrics answers the
 * text exposition format (version 0.0.4) with what `parleyctl stats` shows,
 * read through the same code (ctl_stats_all), so the two never disagree:
 *
 *   parley_<counter>_total{lcore="N"}        every engine/session/chat counter
 *   parley_connections{lcore="N"}, parley_connections_by_state{lcore,state},
 *   parley_registrations, parley_dialogs, parley_room_presences, ...  gauges
 *   parley_lcore_cpu_seconds_total{lcore="N"}
 *   parley_rooms, parley_ring_waiting_entries, parley_exporter_lag_events,
 *   parley_exporter_lag_seconds, parley_memory_rss_bytes, mempools ...
 *   parley_storage_commit_duration_seconds   histogram (63 us .. 4.2 s)
 *   parley_storage_commit_latency_seconds{stat="p50|p99|max"}  parleyctl's
 *
 * Anything else: 400 (malformed), 404 (another path), 405 (another
 * method), 431 (a request head over METRICS_HEAD_MAX bytes), 408 (no full
 * head within METRICS_TIMEOUT_MS). One request per connection
 * (Connection: close); at most METRICS_CLIENTS_MAX at once, more are
 * closed at accept. No authentication: listen on loopback or a management
 * network. */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

#include <stddef.h>

#define METRICS_HEAD_MAX	8192
#define METRICS_TIMEOUT_MS	5000
#define METRICS_CLIENTS_MAX	16

struct ctl;
struct metrics;

/* Boot thread, after ctl_start(): binds <listen> ("host:port", "[v6]:port")
 * and starts the thread, which reads <c> until metrics_stop(). NULL with a
 * message in <err> (the address cannot be bound, no memory). */
struct metrics *metrics_start(struct ctl *c, const char *listen, char *err, size_t errlen);

/* Boot thread, before ctl_stop(): closes the socket and joins the thread.
 * Accepts NULL. */
void metrics_stop(struct metrics *m);

/* The exposition text for <c> (malloc'd, NUL-terminated), or NULL on no
 * memory. Any thread that may read <c>'s statistics. */
char *metrics_render(struct ctl *c);

#endif
