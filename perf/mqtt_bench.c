/* mqtt-bench: parley-bench's fan-out scenario against an MQTT broker over
 * TLS, for side-by-side runs (perf/mosquitto.sh); the load is mqtt_load.h's.
 *
 *   mqtt-bench -s 127.0.0.1:PORT [--qos 0|1] [--rooms 100] [--members 20]
 *              [--size 200] [--deliv-rate D | --rate P] [--duration 10]
 *              [--warmup 1] [-p BROKER_PID] [-c CPU]
 *
 * Prints one result line of key=value pairs on stdout with parley-bench's
 * key names for the same figures (delivered_per_s counts every copy a
 * subscriber received inside the window, the author's own included, as
 * parley-bench's does; delivered_others_per_s without it), so that
 * perf/lib.sh's helpers (pb_median, pb_get) read both. Progress and
 * warnings on stderr.
 *
 * Exit status: 0 done, 1 done but with errors, missing or duplicate
 * deliveries, 2 usage or the broker cannot be reached, 3 no client could
 * subscribe. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "perf/loadkit.h"
#include "perf/mqtt_load.h"

/* Descriptors per client: its socket and libmosquitto's wake-up pair. */
#define FDS_PER_CLIENT	3

static void
usage(void)
{
	fprintf(stderr,
		"usage: mqtt-bench -s HOST:PORT [options]\n"
		"  -s, --server HOST:PORT   the broker's MQTT-over-TLS listener (loopback only)\n"
		"      --qos 0|1            QoS of the posts and the subscriptions (0); with 1 the\n"
		"                           broker answers each post and each subscriber each\n"
		"                           delivery with PUBACK\n"
		"      --topic-prefix P     topics are P0..P<R-1> (bench/)\n"
		"  -r, --rooms R            rooms = topics (100)\n"
		"  -m, --members M          subscribers per topic, each also posting (20)\n"
		"  -S, --size S             payload bytes, at least 48 (200)\n"
		"  -R, --rate P             offered posts/s over all clients\n"
		"      --deliv-rate D       offered deliveries/s instead (P = D / M; a post\n"
		"                           reaches every subscriber, its author included) (2000)\n"
		"      --inflight K         QoS 1: unacknowledged posts per client (16)\n"
		"  -w, --warmup S           seconds of load before the window (1)\n"
		"  -d, --duration S         seconds in the measurement window (10)\n"
		"      --drain S            seconds to wait for what is in flight (5)\n"
		"      --setup-timeout S    seconds for every client to connect and subscribe (120)\n"
		"      --setup-conc N       clients connecting at once (64)\n"
		"      --keepalive S        MQTT keep-alive (600)\n"
		"  -c, --cpu N              pin the generator's thread to CPU N\n"
		"  -p, --server-pid PID     sample the broker's CPU and memory from /proc\n"
		"      --lag-ms MS          send lag p99 that marks the generator as the limit (5)\n"
		"      --tag KEY=VALUE      add to the result (repeatable)\n"
		"  -q, --quiet              no progress lines\n");
	exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mqtt-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (--help)\n");
	exit(2);
}

static double
num_arg(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || v < 0 || !isfinite(v)) {
		fprintf(stderr, "mqtt-bench: %s: '%s' is not a non-negative number\n", what, s);
		exit(2);
	}
	return v;
}

static uint32_t
count_arg(const char *s, const char *what, uint32_t min, uint32_t max)
{
	double v = num_arg(s, what);

	if (v != floor(v) || v < min || v > max) {
		fprintf(stderr, "mqtt-bench: %s: '%s' is not a whole number from %u to %u\n", what,
			s, min, max);
		exit(2);
	}
	return (uint32_t)v;
}

static int
set_server(struct mqtt_load_conf *c, const char *hp)
{
	const char *colon = strrchr(hp, ':');
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	char *end;
	long port;

	if (colon == NULL || colon == hp || (size_t)(colon - hp) >= sizeof(c->host))
		return -1;
	snprintf(c->host, sizeof(c->host), "%.*s", (int)(colon - hp), hp);
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port <= 0 || port > 65535 ||
	    getaddrinfo(c->host, NULL, &hints, &ai) != 0)
		return -1;
	memcpy(&c->dst, ai->ai_addr, sizeof(c->dst));
	freeaddrinfo(ai);
	c->port = (uint16_t)port;
	c->dst.sin_port = htons(c->port);
	return 0;
}

static void
parse_args(struct mqtt_load_conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "qos", required_argument, NULL, 1 },
		{ "topic-prefix", required_argument, NULL, 2 },
		{ "rooms", required_argument, NULL, 'r' },
		{ "members", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 'S' },
		{ "rate", required_argument, NULL, 'R' },
		{ "deliv-rate", required_argument, NULL, 3 },
		{ "inflight", required_argument, NULL, 4 },
		{ "warmup", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "drain", required_argument, NULL, 5 },
		{ "setup-timeout", required_argument, NULL, 6 },
		{ "setup-conc", required_argument, NULL, 7 },
		{ "keepalive", required_argument, NULL, 8 },
		{ "cpu", required_argument, NULL, 'c' },
		{ "server-pid", required_argument, NULL, 'p' },
		{ "lag-ms", required_argument, NULL, 9 },
		{ "tag", required_argument, NULL, 10 },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double rate = -1, deliv_rate = -1;
	bool server_set = false;
	int o;

	*c = (struct mqtt_load_conf){
		.rooms = 100, .members = 20, .size = 200, .qos = 0, .inflight = 16,
		.warmup_s = 1, .duration_s = 10, .drain_s = 5, .setup_timeout_s = 120,
		.setup_conc = 64, .keepalive_s = 600, .cpu = -1, .lag_threshold_ms = 5,
		.progress = true,
	};
	snprintf(c->topic_prefix, sizeof(c->topic_prefix), "bench/");
	while ((o = getopt_long(argc, argv, "s:r:m:S:R:w:d:c:p:qh", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			if (set_server(c, optarg) != 0)
				die("--server wants HOST:PORT with an IPv4 host, not '%s'", optarg);
			server_set = true;
			break;
		case 1:
			if (strcmp(optarg, "0") != 0 && strcmp(optarg, "1") != 0)
				die("--qos wants 0 or 1, not '%s'", optarg);
			c->qos = optarg[0] - '0';
			break;
		case 2:
			if (optarg[0] == '\0' || strlen(optarg) >= sizeof(c->topic_prefix) - 12 ||
			    strpbrk(optarg, "+#") != NULL)
				die("--topic-prefix wants a short topic without wildcards, not '%s'",
				    optarg);
			snprintf(c->topic_prefix, sizeof(c->topic_prefix), "%s", optarg);
			break;
		case 'r': c->rooms = count_arg(optarg, "--rooms", 1, 100000); break;
		case 'm': c->members = count_arg(optarg, "--members", 1, 100000); break;
		case 'S': c->size = count_arg(optarg, "--size", 48, 1 << 20); break;
		case 'R': rate = num_arg(optarg, "--rate"); break;
		case 3: deliv_rate = num_arg(optarg, "--deliv-rate"); break;
		case 4: c->inflight = count_arg(optarg, "--inflight", 1, MQTT_LOAD_PEND); break;
		case 'w': c->warmup_s = num_arg(optarg, "--warmup"); break;
		case 'd': c->duration_s = num_arg(optarg, "--duration"); break;
		case 5: c->drain_s = num_arg(optarg, "--drain"); break;
		case 6: c->setup_timeout_s = num_arg(optarg, "--setup-timeout"); break;
		case 7: c->setup_conc = count_arg(optarg, "--setup-conc", 1, 100000); break;
		case 8: c->keepalive_s = (int)count_arg(optarg, "--keepalive", 5, 65535); break;
		case 'c': c->cpu = (int)count_arg(optarg, "--cpu", 0, CPU_SETSIZE - 1); break;
		case 'p': c->server_pid = (pid_t)count_arg(optarg, "--server-pid", 1, INT32_MAX); break;
		case 9: c->lag_threshold_ms = num_arg(optarg, "--lag-ms"); break;
		case 10:
			if (strchr(optarg, '=') == NULL || optarg[0] == '=' || strchr(optarg, ' '))
				die("--tag wants KEY=VALUE without spaces, not '%s'", optarg);
			if (c->ntags == MQTT_LOAD_TAGS_MAX)
				die("at most 16 --tag");
			c->tags[c->ntags++] = optarg;
			break;
		case 'q': c->progress = false; break;
		default: usage();
		}
	}
	if (optind != argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!server_set)
		die("--server HOST:PORT is required");
	/* This tool sends load: on the loopback network only. */
	if ((ntohl(c->dst.sin_addr.s_addr) >> 24) != 127)
		die("--server %s is not a loopback address (127.0.0.0/8)", c->host);
	if (rate >= 0 && deliv_rate >= 0)
		die("give --rate or --deliv-rate, not both");
	if (deliv_rate < 0 && rate < 0)
		deliv_rate = 2000;
	c->rate = rate >= 0 ? rate : deliv_rate / c->members;
	if (c->rate <= 0)
		die("the offered rate must be above 0 (an unpaced run is not supported)");
	if (c->duration_s <= 0)
		die("--duration must be above 0");
	if ((uint64_t)c->rooms * c->members > 1000000)
		die("--rooms x --members is above 1,000,000 clients");
}

/* As many descriptors as the run needs, or a clear error. */
static void
raise_nofile(uint32_t clients)
{
	struct rlimit r;
	rlim_t need = (rlim_t)clients * FDS_PER_CLIENT + 64;

	if (getrlimit(RLIMIT_NOFILE, &r) != 0)
		return;
	if (r.rlim_cur < need) {
		r.rlim_cur = r.rlim_max < need ? r.rlim_max : need;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	if (r.rlim_cur < need) {
		fprintf(stderr, "mqtt-bench: %u clients need %llu descriptors; the limit is %llu "
			"(raise it with ulimit -n)\n", clients, (unsigned long long)need,
			(unsigned long long)r.rlim_cur);
		exit(2);
	}
}

static double
ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void
kv_f(const char *k, double v, int prec)
{
	printf(" %s=%.*f", k, prec, isfinite(v) ? v : 0);
}

static void
kv_u(const char *k, uint64_t v)
{
	printf(" %s=%" PRIu64, k, v);
}

/* The result line; returns the exit status. */
static int
report(struct mqtt_load *l)
{
	const struct mqtt_load_conf *c = &l->c;
	const struct mqtt_load_sample *s0 = &l->s0, *s1 = &l->s1;
	double win = (double)(s1->t - s0->t) / 1e9, gen, srv_cpu = 0, other, dm;
	bool srv = s0->srv_ok && s1->srv_ok, lagging;
	uint64_t missing = l->n.expected > l->n.delivered ? l->n.expected - l->n.delivered : 0;
	uint64_t errors = l->n.setup_failed + l->n.disconnects + l->n.post_errors +
			  l->n.misrouted + l->n.bad;
	uint64_t stall = l->busy_max > l->oversleep_max ? l->busy_max : l->oversleep_max;

	if (win <= 0)
		win = 1e-9;
	dm = (double)l->n.delivered_win / 1e6;
	gen = (s1->proc_cpu - s0->proc_cpu) / win;
	if (srv)
		srv_cpu = s1->srv.cpu_s - s0->srv.cpu_s;
	other = (s1->sys_busy - s0->sys_busy) - (s1->proc_cpu - s0->proc_cpu) - srv_cpu;
	other = other > 0 ? other / win : 0;
	lagging = ms(hist_quantile(&l->lag, 0.99)) > c->lag_threshold_ms;

	printf("scenario=fanout protocol=mqtt qos=%d", c->qos);
	kv_u("rooms", c->rooms);
	kv_u("members", c->members);
	kv_u("size", c->size);
	kv_u("threads", 1);
	kv_f("duration_s", win, 2);
	kv_f("offered_posts_per_s", c->rate, 1);
	kv_f("offered_deliv_per_s", c->rate * c->members, 0);
	kv_f("posts_per_s", (double)l->lag.count / win, 1);
	kv_f("delivered_per_s", (double)l->n.delivered_win / win, 0);
	kv_f("delivered_others_per_s", (double)(l->n.delivered_win - l->n.echo_win) / win, 0);
	kv_f("p50_ms", ms(hist_quantile(&l->lat, 0.50)), 3);
	kv_f("p90_ms", ms(hist_quantile(&l->lat, 0.90)), 3);
	kv_f("p99_ms", ms(hist_quantile(&l->lat, 0.99)), 3);
	kv_f("p999_ms", ms(hist_quantile(&l->lat, 0.999)), 3);
	kv_f("max_ms", ms(l->lat.max), 3);
	if (c->qos == 1) {
		kv_f("ack_p50_ms", ms(hist_quantile(&l->ack, 0.50)), 3);
		kv_f("ack_p99_ms", ms(hist_quantile(&l->ack, 0.99)), 3);
	}
	kv_f("lag_p99_ms", ms(hist_quantile(&l->lag, 0.99)), 3);
	kv_u("posts_sent", l->n.posts_sent);
	kv_u("posts_ok", l->n.posts_ok);
	kv_u("expected", l->n.expected);
	kv_u("delivered", l->n.delivered);
	kv_u("missing", missing);
	kv_u("dup", l->n.dup);
	kv_u("throttled", l->n.throttled);
	kv_u("errors", errors);
	if (srv) {
		kv_f("server_cpu_s", srv_cpu, 2);
		kv_f("server_cpu_s_per_M", dm > 0 ? srv_cpu / dm : 0, 2);
		kv_f("server_cpu_s_per_M_others", l->n.delivered_win > l->n.echo_win ?
		     srv_cpu / ((double)(l->n.delivered_win - l->n.echo_win) / 1e6) : 0, 2);
		kv_u("server_rss_kb", s1->srv.rss_kb);
	}
	kv_f("gen_cpu_s_per_M", dm > 0 ? (s1->proc_cpu - s0->proc_cpu) / dm : 0, 2);
	printf(" net=kernel tls=%s cipher=%s", l->tls[0] ? l->tls : "none",
	       l->cipher[0] ? l->cipher : "none");
	kv_f("gen_cpu", gen, 2);
	kv_f("other_cpu", other, 2);
	kv_f("gen_stall_max_ms", ms(stall), 1);
	kv_u("gen_bottleneck", gen >= 0.9 || lagging);
	for (unsigned i = 0; i < c->ntags; i++)
		printf(" %s", c->tags[i]);
	printf("\n");
	fflush(stdout);

	if (gen >= 0.9)
		fprintf(stderr, "mqtt-bench: WARNING: the generator was the bottleneck: busy "
			"%.0f%% of the window; offer less\n", gen * 100);
	if (lagging)
		fprintf(stderr, "mqtt-bench: WARNING: posts left late (send lag p99 %.1f ms > "
			"%.1f ms): the generator did not keep the offered schedule\n",
			ms(hist_quantile(&l->lag, 0.99)), c->lag_threshold_ms);
	if (other > 0.25)
		fprintf(stderr, "mqtt-bench: note: other processes used %.2f CPUs during the "
			"window: the machine was shared, expect noise\n", other);
	if (l->n.throttled > 0)
		fprintf(stderr, "mqtt-bench: note: %" PRIu64 " due posts found every client "
			"waiting for PUBACKs\n", l->n.throttled);
	if (c->server_pid > 0 && !srv)
		fprintf(stderr, "mqtt-bench: WARNING: could not read /proc/%d: did the broker "
			"exit?\n", (int)c->server_pid);
	if (errors > 0 || missing > 0 || l->n.dup > 0) {
		if (l->first_error[0] != '\0')
			fprintf(stderr, "mqtt-bench: first error: %s\n", l->first_error);
		if (missing > 0)
			fprintf(stderr, "mqtt-bench: %" PRIu64 " of %" PRIu64 " expected deliveries "
				"did not arrive within the drain (%.0f s)\n", missing, l->n.expected,
				c->drain_s);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct mqtt_load l;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	parse_args(&l.c, argc, argv);
	raise_nofile(l.c.rooms * l.c.members);
	rc = loadkit_probe(&l.c.dst);
	if (rc != 0) {
		fprintf(stderr, "mqtt-bench: cannot reach the broker at %s:%u: %s (is it running "
			"and listening there?)\n", l.c.host, l.c.port, strerror(rc));
		return 2;
	}
	l.ep = -1;
	rc = mqtt_load_run(&l);
	if (rc == 0)
		rc = report(&l);
	mqtt_load_fini(&l);
	return rc;
}
