/* mqtt-bench's load: the room fan-out of parley-bench (perf/bench.c) over
 * MQTT 3.1.1 with TLS, for a side-by-side run against an MQTT broker
 * (Mosquitto; perf/mosquitto.sh).
 *
 * R rooms are R topics (<prefix><room>); each of the R x M clients
 * subscribes to its room's topic and publishes <size>-byte payloads to it at
 * a fixed offered rate shared by all clients, in turn, rooms interleaved. A
 * broker sends every publication to every subscriber of the topic, the
 * author included (MQTT 3.1.1 has no "no local"), so one post makes M
 * deliveries: the same count as parley-bench's delivered_per_s, which
 * includes the author's echo.
 *
 * The clients are libmosquitto's (Debian's libmosquitto-dev), one struct
 * mosquitto each, without its threads or its select() loop: one thread
 * drives all their sockets from one epoll set (mosquitto_socket,
 * mosquitto_loop_read/write/misc, mosquitto_want_write), and the TLS
 * context is ours (no certificate check, read-ahead: many records per
 * read()), given with MOSQ_OPT_SSL_CTX.
 *
 * A payload starts with "mb <poster> <seq> <send time ns> ", padded with
 * letters to <size>; the receiver takes the latency from it, checks the
 * room, and finds duplicates with a 64-post window per poster.
 *
 * QoS 0: nothing answers a delivery. QoS 1 (publish and subscribe): the
 * broker answers each post with PUBACK, and each subscriber answers each
 * delivery with PUBACK, as a SIP client answers each INFO with a 200.
 *
 * One thread does everything (setup, load, sampling, drain); struct
 * mqtt_load belongs to it. */
#ifndef PARLEY_PERF_MQTT_LOAD_H
#define PARLEY_PERF_MQTT_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include "perf/hist.h"
#include "perf/procstat.h"

#define MQTT_LOAD_TAGS_MAX	16
#define MQTT_LOAD_PEND		64	/* QoS 1: unacknowledged posts remembered per client */

struct mqtt_load_conf {
	struct sockaddr_in dst;
	char		host[64];
	uint16_t	port;
	char		topic_prefix[64];	/* topics are <prefix>0 .. <prefix>R-1 */
	uint32_t	rooms, members;
	uint32_t	size;			/* payload bytes */
	int		qos;			/* 0 or 1 */
	double		rate;			/* offered posts/s over all clients */
	double		warmup_s, duration_s, drain_s, setup_timeout_s;
	uint32_t	inflight;		/* QoS 1: unacknowledged posts per client */
	uint32_t	setup_conc;		/* clients connecting at once */
	int		keepalive_s;
	int		cpu;			/* pin the thread here; -1: not pinned */
	pid_t		server_pid;		/* 0: not measured */
	double		lag_threshold_ms;
	bool		progress;
	const char	*tags[MQTT_LOAD_TAGS_MAX];	/* key=value added to the result */
	unsigned	ntags;
};

/* The edges of the measurement window. */
struct mqtt_load_sample {
	uint64_t	t;		/* CLOCK_MONOTONIC ns */
	double		proc_cpu;	/* the generator's CPU seconds */
	double		sys_busy;	/* the whole machine's */
	struct procstat	srv;
	bool		srv_ok;
};

/* Counters, all over the whole run unless named _win (inside the window). */
struct mqtt_load_ctr {
	uint64_t	connected;	/* CONNACK 0 */
	uint64_t	joined;		/* SUBACK with the asked QoS */
	uint64_t	setup_failed;
	uint64_t	disconnects;	/* lost after joining */
	uint64_t	posts_sent;
	uint64_t	posts_ok;	/* QoS 1: PUBACK; QoS 0: handed to the socket */
	uint64_t	post_errors;	/* mosquitto_publish refused */
	uint64_t	expected;	/* sum over posts of the room's subscribers */
	uint64_t	delivered;	/* unique deliveries, the author's own included */
	uint64_t	delivered_win;
	uint64_t	echo_win;	/* ... of which to the author */
	uint64_t	dup;
	uint64_t	misrouted;	/* a post of another room */
	uint64_t	bad;		/* a payload we cannot read */
	uint64_t	throttled;	/* a due post found every client waiting for PUBACKs */
};

struct mqtt_load_client;

struct mqtt_load {
	struct mqtt_load_conf c;
	struct mqtt_load_ctr n;
	struct hist	lat;		/* delivery latency, posts sent in the window */
	struct hist	ack;		/* QoS 1: post to its PUBACK */
	struct hist	lag;		/* post sent after it was due */
	struct mqtt_load_sample s0, s1;	/* the window's edges */
	struct procstat	base;		/* the server before any client connected */
	bool		base_ok;
	uint64_t	busy_max;	/* longest stretch between two epoll waits */
	uint64_t	oversleep_max;	/* longest wake-up past the epoll timeout */
	char		first_error[256];
	char		tls[32];	/* negotiated by the first client */
	char		cipher[64];
	/* Private to mqtt_load.c. */
	uint32_t	total;
	struct mqtt_load_client *cl;
	uint32_t	*present;	/* [rooms] joined subscribers */
	uint32_t	*order;		/* posting order, rooms interleaved */
	uint32_t	rr;
	int		ep;
	void		*ssl_ctx;
	uint64_t	ws, we;		/* measurement window */
	uint64_t	interval_ns, next_due;
	uint64_t	woke;		/* the last epoll wait returned */
	uint32_t	in_setup, next_start;
	char		*payload;
};

/* Runs the whole scenario on <l> (its conf filled in, the rest zero):
 * connects and subscribes every client, offers the load, samples the
 * window's edges into l->s0 and l->s1, drains, disconnects. Returns 0; 2
 * when the run could not start (a message on stderr says why); 3 when no
 * client could subscribe. */
int mqtt_load_run(struct mqtt_load *l);

/* Frees what mqtt_load_run() left in <l>; accepts a run that failed. */
void mqtt_load_fini(struct mqtt_load *l);

#endif
