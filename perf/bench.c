/* parley-bench: the load generator for parleyd.
 *
 *   parley-bench fanout|connect|idle|history [options]
 *   parley-bench users N [--domain D] [--password PW]   htdigest lines for user0..N-1
 *
 * One worker thread per core it is given (-t N, or -c CPULIST to pin them),
 * each an epoll loop over non-blocking sockets with non-blocking OpenSSL
 * driving many simulated clients (agent.h) through the whole Group Chat
 * flow. The main thread checks that the server answers, looks the rooms up
 * (chansrch, with the blocking client of gcclient.h), moves the workers
 * through the phases (sign-in, load, drain), samples the server's CPU and
 * memory from /proc at the edges of the measurement window, prints a
 * progress line every second on stderr, and at the end one result line of
 * key=value pairs (or a JSON object with --json) on stdout.
 *
 * With --dpdk the clients' TCP is Parley's user-space TCP on a DPDK port
 * instead (perf/unet.h), e.g. a net_memif client facing parleyd's dpdk
 * backend: no kernel socket and no system call on the data path of either
 * side. The first client then looks the rooms up itself.
 *
 * It says when it is itself the bottleneck: a worker thread busy for more
 * than 90% of the window, or posts leaving later than scheduled (send lag
 * p99 above --lag-ms), prints a warning and sets gen_bottleneck=1.
 *
 * Exit status: 0 done, 1 done but with errors or missing deliveries,
 * 2 usage or the server cannot be reached, 3 no client could sign in. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "dataplane/base/clock.h"
#include "dataplane/sip/digest.h"
#include "perf/agent.h"
#include "perf/gcclient.h"
#include "perf/loadkit.h"
#include "perf/procstat.h"
#include "perf/report.h"
#include "perf/unet.h"
#include "perf/worker.h"

static const char *const mode_name[] = {
	[MODE_FANOUT] = "fanout", [MODE_CONNECT] = "connect", [MODE_IDLE] = "idle",
	[MODE_HISTORY] = "history",
};

static void
usage(void)
{
	fprintf(stderr,
		"usage: parley-bench fanout|connect|idle|history [options]\n"
		"       parley-bench users N [--domain D] [--password PW] [--user-prefix P]\n"
		"  -s, --server HOST:PORT   parleyd's SIP/TLS address (127.0.0.1:5061); a comma list\n"
		"                           spreads the clients over an array's nodes (placement mark)\n"
		"      --domain D           SIP domain and realm (example.com)\n"
		"      --user-prefix P      users are P<n>@D (user)\n"
		"      --user-base N        first n (0)\n"
		"      --password PW        every user's password (pw)\n"
		"      --room-prefix P      rooms are P0..P<R-1> (bench)\n"
		"  -r, --rooms R            rooms (fanout 100, idle 100, history 1)\n"
		"  -m, --members M          members per room (fanout 20, idle 100, history 10)\n"
		"      --clients N          connect: concurrent loops (64)\n"
		"  -S, --size S             message text bytes (200)\n"
		"  -R, --rate P             offered posts/s over all posters; 0 = as fast as acked\n"
		"      --deliv-rate D       offered deliveries/s instead (P = D / M)\n"
		"      --posts N            stop after N posts\n"
		"      --inflight K         unacknowledged posts per client (16)\n"
		"  -w, --warmup S           seconds of load before the window (1)\n"
		"  -d, --duration S         seconds in the measurement window (10)\n"
		"      --drain S            seconds to wait for what is in flight (5)\n"
		"      --setup-timeout S    seconds for every client to sign in and join (120)\n"
		"      --regs-per-conn N    connect: REGISTERs per connection; 0 = TLS only (1)\n"
		"      --cnt N              history: <last cnt=N> (25)\n"
		"      --src-addrs N        connect from 127.0.0.1..127.0.0.N (auto)\n"
		"      --setup-conc N       clients signing in at once per thread (64)\n"
		"  -t, --threads N          worker threads, not pinned (1)\n"
		"  -c, --cpus LIST          one worker per CPU in LIST (e.g. 1 or 2-3), pinned\n"
		"  -p, --server-pid PID     sample this process's CPU and memory from /proc (a comma\n"
		"                           list: summed)\n"
		"      --lag-ms MS          send lag p99 that marks the generator as the limit (5)\n"
		"      --tag KEY=VALUE      add to the result (repeatable)\n"
		"      --profile D:S[,D:S]  offered deliveries/s D for S seconds, phase after\n"
		"                           phase (replaces --rate, --warmup, --duration);\n"
		"                           refused posts are then push-back, not errors\n"
		"      --series FILE        one row per second: posts sent/accepted/refused,\n"
		"                           deliveries, p50/p99 of the posts sent, server RSS/CPU\n"
		"      --json               print the result as a JSON object\n"
		"  -q, --quiet              no progress line\n"
		"      --dpdk VDEV          user-space mode: clients on Parley's TCP over this DPDK\n"
		"                           port, e.g. net_memif0,role=client,socket=/run/x.sock,\n"
		"                           socket-abstract=no (one worker thread)\n"
		"      --dpdk-addr IP       our address on that port (198.18.0.1/24)\n"
		"      --dpdk-eal ARGS      EAL arguments (--no-huge --no-pci -m 256)\n");
	exit(2);
}

static int
parse_cpus(const char *s, int *cpus, unsigned max)
{
	unsigned n = 0;
	char *copy = strdup(s), *save = NULL, *tok;

	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		int lo, hi;

		if (sscanf(tok, "%d-%d", &lo, &hi) != 2) {
			if (sscanf(tok, "%d", &lo) != 1)
				goto bad;
			hi = lo;
		}
		if (lo < 0 || hi < lo)
			goto bad;
		for (int c = lo; c <= hi; c++) {
			if (n == max)
				goto bad;
			cpus[n++] = c;
		}
	}
	free(copy);
	return (int)n;
bad:
	free(copy);
	return -1;
}

static double
num_arg(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || v < 0 || !isfinite(v)) {
		fprintf(stderr, "parley-bench: %s: '%s' is not a non-negative number\n", what, s);
		exit(2);
	}
	return v;
}

static int
set_one_server(struct bench_conf *c, const char *hp, size_t len)
{
	const char *colon = memrchr(hp, ':', len);
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	char host[64];
	uint16_t port;

	if (colon == NULL || (size_t)(colon - hp) >= sizeof(host) || c->ndst == BENCH_SERVERS_MAX)
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
	port = (uint16_t)atoi(colon + 1);
	if (port == 0 || getaddrinfo(host, NULL, &hints, &ai) != 0)
		return -1;
	memcpy(&c->dsts[c->ndst], ai->ai_addr, sizeof(c->dsts[0]));
	c->dsts[c->ndst].sin_port = htons(port);
	freeaddrinfo(ai);
	if (c->ndst++ == 0) {
		snprintf(c->host, sizeof(c->host), "%s", host);
		c->port = port;
		c->dst = c->dsts[0];
	}
	return 0;
}

/* "HOST:PORT[,HOST:PORT...]". */
static int
set_server(struct bench_conf *c, const char *hp)
{
	c->ndst = 0;
	for (const char *p = hp, *e; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		if (set_one_server(c, p, (size_t)(e - p)) != 0)
			return -1;
	}
	return c->ndst > 0 ? 0 : -1;
}

/* The servers' CPU and memory, summed over every --server-pid. */
static int
srv_read(const struct bench_conf *c, struct procstat *ps)
{
	memset(ps, 0, sizeof(*ps));
	for (uint32_t i = 0; i < c->npids; i++) {
		struct procstat one;
		int rc = procstat_read(c->server_pids[i], &one);

		if (rc != 0)
			return rc;
		ps->cpu_s += one.cpu_s;
		ps->rss_kb += one.rss_kb;
		ps->hwm_kb += one.hwm_kb;
		ps->threads += one.threads;
	}
	return c->npids > 0 ? 0 : -ENOENT;
}

static int
users_main(int argc, char **argv)
{
	const char *domain = "example.com", *pw = "pw", *prefix = "user";
	long n;

	if (argc < 3)
		usage();
	n = strtol(argv[2], NULL, 10);
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--domain"))
			domain = argv[i + 1];
		else if (!strcmp(argv[i], "--password"))
			pw = argv[i + 1];
		else if (!strcmp(argv[i], "--user-prefix"))
			prefix = argv[i + 1];
		else
			usage();
	}
	for (long i = 0; i < n; i++) {
		char user[256], ha1[65];

		snprintf(user, sizeof(user), "%s%ld@%s", prefix, i, domain);
		digest_ha1(DIGEST_MD5, user, domain, pw, ha1);
		printf("%s:%s:%s\n", user, domain, ha1);
	}
	return 0;
}

static void
parse_args(struct bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "domain", required_argument, NULL, 1 },
		{ "user-prefix", required_argument, NULL, 2 },
		{ "user-base", required_argument, NULL, 3 },
		{ "password", required_argument, NULL, 4 },
		{ "room-prefix", required_argument, NULL, 5 },
		{ "rooms", required_argument, NULL, 'r' },
		{ "members", required_argument, NULL, 'm' },
		{ "clients", required_argument, NULL, 6 },
		{ "size", required_argument, NULL, 'S' },
		{ "rate", required_argument, NULL, 'R' },
		{ "deliv-rate", required_argument, NULL, 7 },
		{ "posts", required_argument, NULL, 8 },
		{ "inflight", required_argument, NULL, 9 },
		{ "warmup", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "drain", required_argument, NULL, 10 },
		{ "setup-timeout", required_argument, NULL, 11 },
		{ "regs-per-conn", required_argument, NULL, 12 },
		{ "cnt", required_argument, NULL, 13 },
		{ "src-addrs", required_argument, NULL, 14 },
		{ "setup-conc", required_argument, NULL, 15 },
		{ "threads", required_argument, NULL, 't' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "server-pid", required_argument, NULL, 'p' },
		{ "lag-ms", required_argument, NULL, 16 },
		{ "tag", required_argument, NULL, 17 },
		{ "json", no_argument, NULL, 18 },
		{ "profile", required_argument, NULL, 19 },
		{ "series", required_argument, NULL, 20 },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dpdk", required_argument, NULL, 22 },
		{ "dpdk-addr", required_argument, NULL, 23 },
		{ "dpdk-eal", required_argument, NULL, 24 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_conf *c = &b->c;
	double deliv_rate = -1;
	bool rooms_set = false, members_set = false, rate_set = false;
	int o, ncpu;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "fanout"))
		c->mode = MODE_FANOUT;
	else if (!strcmp(argv[1], "connect"))
		c->mode = MODE_CONNECT;
	else if (!strcmp(argv[1], "idle"))
		c->mode = MODE_IDLE;
	else if (!strcmp(argv[1], "history"))
		c->mode = MODE_HISTORY;
	else
		usage();
	set_server(c, "127.0.0.1:5061");
	snprintf(c->domain, sizeof(c->domain), "example.com");
	snprintf(c->user_prefix, sizeof(c->user_prefix), "user");
	snprintf(c->password, sizeof(c->password), "pw");
	snprintf(c->room_prefix, sizeof(c->room_prefix), "bench");
	c->rooms = 100;
	c->members = 20;
	c->clients = 64;
	c->size = 200;
	c->rate = 1000;
	c->inflight = 16;
	c->warmup_s = 1;
	c->duration_s = 10;
	c->drain_s = 5;
	c->setup_timeout_s = 120;
	c->regs_per_conn = 1;
	c->hist_cnt = 25;
	c->setup_conc = 64;
	c->nthreads = 1;
	c->cpus[0] = -1;
	c->progress = true;
	c->lag_threshold_ms = 5;
	snprintf(c->dpdk_eal, sizeof(c->dpdk_eal), "--no-huge --no-pci -m 256");
	inet_pton(AF_INET, "198.18.0.1", &c->dpdk_addr.sin_addr);
	optind = 2;
	while ((o = getopt_long(argc, argv, "s:r:m:S:R:w:d:t:c:p:qh", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			if (set_server(c, optarg) != 0) {
				fprintf(stderr, "parley-bench: --server wants HOST:PORT, not '%s'\n",
					optarg);
				exit(2);
			}
			break;
		case 1: snprintf(c->domain, sizeof(c->domain), "%s", optarg); break;
		case 2: snprintf(c->user_prefix, sizeof(c->user_prefix), "%s", optarg); break;
		case 3: c->user_base = (uint32_t)num_arg(optarg, "--user-base"); break;
		case 4: snprintf(c->password, sizeof(c->password), "%s", optarg); break;
		case 5: snprintf(c->room_prefix, sizeof(c->room_prefix), "%s", optarg); break;
		case 'r': c->rooms = (uint32_t)num_arg(optarg, "--rooms"); rooms_set = true; break;
		case 'm': c->members = (uint32_t)num_arg(optarg, "--members"); members_set = true; break;
		case 6: c->clients = (uint32_t)num_arg(optarg, "--clients"); break;
		case 'S': c->size = (uint32_t)num_arg(optarg, "--size"); break;
		case 'R': c->rate = num_arg(optarg, "--rate"); rate_set = true; break;
		case 7: deliv_rate = num_arg(optarg, "--deliv-rate"); break;
		case 8: c->max_posts = (uint64_t)num_arg(optarg, "--posts"); break;
		case 9: c->inflight = (uint32_t)num_arg(optarg, "--inflight"); break;
		case 'w': c->warmup_s = num_arg(optarg, "--warmup"); break;
		case 'd': c->duration_s = num_arg(optarg, "--duration"); break;
		case 10: c->drain_s = num_arg(optarg, "--drain"); break;
		case 11: c->setup_timeout_s = num_arg(optarg, "--setup-timeout"); break;
		case 12: c->regs_per_conn = (uint32_t)num_arg(optarg, "--regs-per-conn"); break;
		case 13: c->hist_cnt = (uint32_t)num_arg(optarg, "--cnt"); break;
		case 14: c->nsrc = (uint32_t)num_arg(optarg, "--src-addrs"); break;
		case 15: c->setup_conc = (uint32_t)num_arg(optarg, "--setup-conc"); break;
		case 't':
			c->nthreads = (uint32_t)num_arg(optarg, "--threads");
			for (unsigned i = 0; i < BENCH_THREADS_MAX; i++)
				c->cpus[i] = -1;
			break;
		case 'c':
			ncpu = parse_cpus(optarg, c->cpus, BENCH_THREADS_MAX);
			if (ncpu <= 0) {
				fprintf(stderr, "parley-bench: --cpus: bad CPU list '%s'\n", optarg);
				exit(2);
			}
			c->nthreads = (uint32_t)ncpu;
			break;
		case 'p':	/* PID[,PID...] */
			for (char *q = optarg; *q != '\0' && c->npids < BENCH_SERVERS_MAX;) {
				c->server_pids[c->npids++] = (pid_t)strtol(q, &q, 10);
				if (*q == ',')
					q++;
				else if (*q != '\0')
					usage();
			}
			c->server_pid = c->server_pids[0];
			break;
		case 16: c->lag_threshold_ms = num_arg(optarg, "--lag-ms"); break;
		case 17:
			if (c->ntags == BENCH_TAGS_MAX || strchr(optarg, '=') == NULL)
				usage();
			c->tags[c->ntags++] = optarg;
			break;
		case 18: c->json = true; break;
		case 19:
			if (!series_parse(optarg, &c->profile))
				exit(2);
			break;
		case 20: c->series_path = optarg; break;
		case 'q': c->progress = false; break;
		case 22: snprintf(c->dpdk_port, sizeof(c->dpdk_port), "%s", optarg); break;
		case 23:
			if (inet_pton(AF_INET, optarg, &c->dpdk_addr.sin_addr) != 1) {
				fprintf(stderr, "parley-bench: --dpdk-addr: '%s' is not an IPv4 "
					"address\n", optarg);
				exit(2);
			}
			break;
		case 24: snprintf(c->dpdk_eal, sizeof(c->dpdk_eal), "%s", optarg); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	/* This tool sends load: on the loopback network, or through shared
	 * memory to a process on this machine (--dpdk). */
	for (unsigned i = 0; c->dpdk_port[0] == '\0' && i < (c->ndst ? c->ndst : 1); i++) {
		const struct sockaddr_in *d = c->ndst ? &c->dsts[i] : &c->dst;

		if ((ntohl(d->sin_addr.s_addr) >> 24) != 127) {
			fprintf(stderr, "parley-bench: server %u is not a loopback address "
				"(127.0.0.0/8)\n", i + 1);
			exit(2);
		}
	}
	if (c->dpdk_port[0] != '\0' && c->mode != MODE_FANOUT) {
		fprintf(stderr, "parley-bench: --dpdk runs the fanout scenario only\n");
		exit(2);
	}
	if (c->dpdk_port[0] != '\0' && c->nthreads != 1) {
		/* parleyd answers on the queue its own steering hash picks, not
		 * on the one a connection's thread polls. */
		fprintf(stderr, "parley-bench: --dpdk runs one worker thread (one queue pair); "
			"give -t 1 or one CPU in -c\n");
		exit(2);
	}
	if (c->mode == MODE_HISTORY) {
		if (!rooms_set)
			c->rooms = 1;
		if (!members_set)
			c->members = 10;
	}
	if (c->mode == MODE_IDLE && !members_set)
		c->members = 100;
	if (c->nthreads == 0 || c->nthreads > BENCH_THREADS_MAX)
		usage();
	if (deliv_rate >= 0) {
		if (rate_set) {
			fprintf(stderr, "parley-bench: give --rate or --deliv-rate, not both\n");
			exit(2);
		}
		c->rate = c->members ? deliv_rate / c->members : 0;
	}
	if (c->profile.n > 0) {
		if (c->mode != MODE_FANOUT || rate_set || deliv_rate >= 0) {
			fprintf(stderr, "parley-bench: --profile is for fanout, instead of --rate\n");
			exit(2);
		}
		c->rate = c->profile.p[0].deliv_rate / c->members;
		c->warmup_s = 0;
		c->duration_s = c->profile.total_s;
	}
	if (c->inflight == 0 || c->inflight > AGENT_PEND)
		c->inflight = AGENT_PEND;
	if (c->size < 48)
		c->size = 48;	/* room for "pb <poster> <seq> <time> " */
	if (c->setup_conc == 0)
		c->setup_conc = 1;
	if (c->mode != MODE_CONNECT && (c->rooms == 0 || c->members == 0)) {
		fprintf(stderr, "parley-bench: --rooms and --members must be at least 1\n");
		exit(2);
	}
	if (c->mode == MODE_CONNECT)
		c->rooms = c->members = 0;
}

/* User-space mode: EAL and the port, one queue pair per worker. */
static int
start_unet(struct bench *b)
{
	const struct bench_conf *c = &b->c;
	struct unet_conf uc = {
		.port = c->dpdk_port,
		.eal = c->dpdk_eal,
		.addr = ntohl(c->dpdk_addr.sin_addr.s_addr),
		.mtu = 1500,
		.nqueues = (uint16_t)c->nthreads,
		.max_conns = b->total / c->nthreads + 1,
	};
	char err[512];

	if (unet_init(&uc, err, sizeof(err)) != 0) {
		fprintf(stderr, "parley-bench: %s\n", err);
		unet_fini();
		return -1;
	}
	return 0;
}

/* The rooms' URIs, by name, from one chansrch as the first user. */
static void
find_rooms(struct bench *b)
{
	const struct bench_conf *c = &b->c;
	char aor[200], err[256], placed[200], *rpl;
	struct gc *g;

	snprintf(aor, sizeof(aor), "%s%u@%s", c->user_prefix, c->user_base, c->domain);
	snprintf(placed, sizeof(placed), "sip:%s;parley-placed", c->domain);
	g = gc_open_to(c->host, c->port, aor, c->password, c->ndst > 1 ? placed : NULL, err,
		       sizeof(err));
	if (g == NULL) {
		fprintf(stderr, "parley-bench: cannot sign in to parleyd at %s:%u as %s: %s\n",
			c->host, c->port, aor, err);
		exit(2);
	}
	if (gc_cmd(g, "chansrch", "<qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/>") != 200 ||
	    (rpl = gc_wait(g, 10000, "rpl:chansrch", NULL)) == NULL) {
		fprintf(stderr, "parley-bench: no answer to cmd:chansrch from %s:%u\n", c->host,
			c->port);
		exit(2);
	}
	for (uint32_t r = 0; r < c->rooms; r++) {
		char name[64];

		snprintf(name, sizeof(name), "%s%u", c->room_prefix, r);
		if (!gc_room_uri(rpl, name, b->room_uri[r], BENCH_URI_MAX)) {
			fprintf(stderr, "parley-bench: the server has no room '%s' (declare "
				"[room:%s] in its config, one per room up to %s%u)\n", name, name,
				c->room_prefix, c->rooms - 1);
			exit(2);
		}
	}
	free(rpl);
	gc_close(g);
}

static void
sleep_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000u), (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static bool progress_tty;

static void
progress(const struct bench_conf *c, const char *fmt, ...)
{
	char line[300];
	va_list ap;

	if (!c->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (progress_tty)
		fprintf(stderr, "\r\033[K[%s] %s", mode_name[c->mode], line);
	else
		fprintf(stderr, "[%s] %s\n", mode_name[c->mode], line);
}

static void
progress_end(const struct bench_conf *c)
{
	if (c->progress && progress_tty)
		fputc('\n', stderr);
}

static void
setup_phase(struct bench *b)
{
	const struct bench_conf *c = &b->c;
	uint64_t start = clock_mono_ns(), end = start + (uint64_t)(c->setup_timeout_s * 1e9);

	for (;;) {
		uint64_t joined = bench_sum(b, C_JOINED), failed = bench_sum(b, C_SETUP_FAILED);

		if (joined + failed >= b->total || atomic_load(&b->scout_failed))
			break;
		if (clock_mono_ns() >= end) {
			progress_end(c);
			fprintf(stderr, "parley-bench: sign-in timed out after %.0f s: %" PRIu64
				" of %u joined\n", c->setup_timeout_s, joined, b->total);
			break;
		}
		progress(c, "signing in: joined %" PRIu64 "/%u, failed %" PRIu64
			 ", retries %" PRIu64 ", %.0f s", joined, b->total, failed,
			 bench_sum(b, C_SETUP_RETRIES), (clock_mono_ns() - start) / 1e9);
		usleep(c->progress && !progress_tty ? 1000000 : 250000);
	}
	progress(c, "signed in: %" PRIu64 "/%u joined in %.1f s", bench_sum(b, C_JOINED), b->total,
		 (clock_mono_ns() - start) / 1e9);
	progress_end(c);
}

static double
thread_cpu_s(pthread_t th)
{
	clockid_t cid;
	struct timespec ts;

	if (pthread_getcpuclockid(th, &cid) != 0 || clock_gettime(cid, &ts) != 0)
		return 0;
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
process_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
take_sample(struct bench *b, struct sample *s)
{
	s->t = clock_mono_ns();
	for (unsigned i = 0; i < b->c.nthreads; i++)
		s->thread_cpu[i] = thread_cpu_s(b->w[i].th);
	s->proc_cpu = process_cpu_s();
	if (procstat_system_busy(&s->sys_busy) != 0)
		s->sys_busy = 0;
	s->srv_ok = b->c.server_pid > 0 && srv_read(&b->c, &s->srv) == 0;
}

/* The progress line during the load. */
static void
run_progress(struct bench *b, uint64_t start, uint64_t prev_t, uint64_t *prev)
{
	const struct bench_conf *c = &b->c;
	uint64_t now = clock_mono_ns();
	double dt = (now - prev_t) / 1e9, el = (now - start) / 1e9;
	enum ctr key = c->mode == MODE_FANOUT ? C_DELIVERED :
		       c->mode == MODE_CONNECT ? (c->regs_per_conn ? C_REGISTERS : C_HANDSHAKES) :
		       c->mode == MODE_HISTORY ? C_HIST_REPLIES : C_INFOS_IN;
	uint64_t v = bench_sum(b, key);
	double rate = dt > 0 ? (v - *prev) / dt : 0;

	*prev = v;
	switch (c->mode) {
	case MODE_FANOUT:
		progress(c, "%.0f/%.0f s: posts %" PRIu64 ", deliveries %.0f/s (offered %.0f/s), "
			 "errors %" PRIu64 ", lost conns %" PRIu64, el, c->warmup_s + c->duration_s,
			 bench_sum(b, C_POSTS_SENT), rate, c->rate * c->members,
			 bench_sum(b, C_POST_ERRORS) + bench_sum(b, C_POSTS_REFUSED), bench_sum(b, C_DISCONNECTS));
		break;
	case MODE_CONNECT:
		progress(c, "%.0f/%.0f s: %s %.0f/s, errors %" PRIu64, el,
			 c->warmup_s + c->duration_s, c->regs_per_conn ? "REGISTERs" : "handshakes",
			 rate, bench_sum(b, C_CONN_ERRORS));
		break;
	case MODE_HISTORY:
		progress(c, "%.0f/%.0f s: bccontext %.0f/s, errors %" PRIu64, el,
			 c->warmup_s + c->duration_s, rate, bench_sum(b, C_HIST_ERRORS));
		break;
	case MODE_IDLE:
		progress(c, "%.0f/%.0f s: %u idle connections, lost %" PRIu64, el,
			 c->warmup_s + c->duration_s, b->total, bench_sum(b, C_DISCONNECTS));
		break;
	}
}

/* --series: the server's RSS and CPU once in every second of the load,
 * and when the next sample is due. */
static uint64_t
series_tick(struct bench *b)
{
	uint64_t t0 = atomic_load(&b->t0_ns), now = clock_mono_ns(), sec;
	struct procstat ps;

	if (b->srv == NULL || t0 == 0 || now < t0)
		return UINT64_MAX;
	sec = (now - t0) / 1000000000u;
	if (sec >= b->nsec)
		return UINT64_MAX;
	if (!b->srv[sec].ok && b->c.server_pid > 0 && procstat_read(b->c.server_pid, &ps) == 0)
		b->srv[sec] = (struct series_srv){ true, ps.rss_kb, ps.cpu_s };
	return t0 + (sec + 1) * 1000000000u;
}

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static bool
drained(struct bench *b)
{
	uint64_t acked = bench_sum(b, C_POSTS_OK) + bench_sum(b, C_POSTS_REFUSED) + bench_sum(b, C_POST_ERRORS);

	if (b->c.mode != MODE_FANOUT)
		return true;
	return acked >= bench_sum(b, C_POSTS_SENT) && bench_sum(b, C_DELIVERED) >= bench_sum(b, C_EXPECTED);
}

static int
run(struct bench *b)
{
	struct bench_conf *c = &b->c;
	struct sample s0, s1;
	struct procstat base = { 0 };
	uint64_t t0, ws, we, prev = 0, prev_t, next_progress, drain_end;
	bool base_ok = c->server_pid > 0 && srv_read(c, &base) == 0;
	int rc;

	if (c->server_pid > 0 && !base_ok) {
		fprintf(stderr, "parley-bench: cannot read /proc/%d (server pid)\n", (int)c->server_pid);
		return 2;
	}
	atomic_store(&b->phase, c->mode == MODE_CONNECT ? PHASE_RUN : PHASE_SETUP);
	t0 = clock_mono_ns() + 100000000u;
	if (c->mode == MODE_CONNECT) {
		ws = t0 + (uint64_t)(c->warmup_s * 1e9);
		atomic_store(&b->t0_ns, t0);
		atomic_store(&b->ws_ns, ws);
		atomic_store(&b->we_ns, ws + (uint64_t)(c->duration_s * 1e9));
	}
	for (unsigned i = 0; i < c->nthreads; i++) {
		rc = pthread_create(&b->w[i].th, NULL, worker_main, &b->w[i]);
		if (rc != 0) {
			fprintf(stderr, "parley-bench: pthread_create: %s\n", strerror(rc));
			exit(2);
		}
	}
	if (c->mode != MODE_CONNECT) {
		setup_phase(b);
		if (bench_sum(b, C_JOINED) == 0) {
			fprintf(stderr, "parley-bench: no client could sign in and join; first "
				"error: %s\n", b->w[0].first_error[0] ? b->w[0].first_error : "none");
			atomic_store(&b->phase, PHASE_STOP);
			for (unsigned i = 0; i < c->nthreads; i++)
				pthread_join(b->w[i].th, NULL);
			return 3;
		}
		t0 = clock_mono_ns() + 100000000u;
		ws = t0 + (uint64_t)(c->warmup_s * 1e9);
		atomic_store(&b->t0_ns, t0);
		atomic_store(&b->ws_ns, ws);
		atomic_store(&b->we_ns, ws + (uint64_t)(c->duration_s * 1e9));
		atomic_store_explicit(&b->phase, PHASE_RUN, memory_order_release);
	}
	ws = atomic_load(&b->ws_ns);
	we = atomic_load(&b->we_ns);
	prev_t = clock_mono_ns();
	next_progress = prev_t + 1000000000u;
	/* Up to the window: progress; at its start, the first sample. */
	while (clock_mono_ns() < ws) {
		uint64_t t = min_u64(min_u64(next_progress, ws), series_tick(b));

		sleep_until(t);
		if (clock_mono_ns() >= next_progress) {
			run_progress(b, t0, prev_t, &prev);
			prev_t = clock_mono_ns();
			next_progress += 1000000000u;
		}
	}
	take_sample(b, &s0);
	while (clock_mono_ns() < we) {
		uint64_t t = min_u64(min_u64(next_progress, we), series_tick(b));

		sleep_until(t);
		if (clock_mono_ns() >= next_progress) {
			run_progress(b, t0, prev_t, &prev);
			prev_t = clock_mono_ns();
			next_progress += 1000000000u;
		}
		if (c->max_posts > 0 && bench_sum(b, C_POSTS_SENT) >= c->max_posts &&
		    clock_mono_ns() < we) {
			we = clock_mono_ns();	/* every post is out: the window ends here */
			atomic_store(&b->we_ns, we);
		}
	}
	take_sample(b, &s1);
	atomic_store(&b->phase, PHASE_DRAIN);
	drain_end = clock_mono_ns() + (uint64_t)(c->drain_s * 1e9);
	while (!drained(b) && clock_mono_ns() < drain_end) {
		series_tick(b);
		usleep(20000);
	}
	progress_end(c);
	atomic_store(&b->phase, PHASE_STOP);
	for (unsigned i = 0; i < c->nthreads; i++)
		pthread_join(b->w[i].th, NULL);
	rc = report(b, base_ok ? &base : NULL, &s0, &s1);
	if (c->series_path != NULL) {
		struct series_sec *rows[BENCH_THREADS_MAX];

		for (unsigned i = 0; i < c->nthreads; i++)
			rows[i] = b->w[i].ser;
		if (series_write(c->series_path, c->profile.n ? &c->profile :
				 &(struct series_profile){ .n = 1, .total_s = c->warmup_s + c->duration_s,
				 .p = { { c->rate * c->members, c->warmup_s + c->duration_s } } },
				 rows, c->nthreads, b->srv, b->nsec) != 0) {
			fprintf(stderr, "parley-bench: cannot write %s: %s\n", c->series_path,
				strerror(errno));
			rc = rc ? rc : 1;
		}
	}
	return rc;
}

int
main(int argc, char **argv)
{
	struct bench b;
	uint32_t per, extra, first = 0;
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "users"))
		return users_main(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	memset(&b, 0, sizeof(b));
	parse_args(&b, argc, argv);
	progress_tty = isatty(STDERR_FILENO);
	b.total = b.c.mode == MODE_CONNECT ? b.c.clients : b.c.rooms * b.c.members;
	if (b.c.nsrc == 0)
		b.c.nsrc = b.total / 16000 + 1;	/* about 28k local ports per address */
	if (b.c.nthreads > b.total)
		b.c.nthreads = b.total ? b.total : 1;
	if (b.c.dpdk_port[0] == '\0') {
		int err = loadkit_probe(&b.c.dst);

		if (err != 0) {
			fprintf(stderr, "parley-bench: cannot reach parleyd at %s:%u: %s "
				"(is it running and listening there?)\n", b.c.host, b.c.port,
				strerror(err));
			return 2;
		}
	} else if (start_unet(&b) != 0) {
		return 2;
	}
	if (b.c.rooms > 0) {
		b.room_uri = calloc(b.c.rooms, sizeof(*b.room_uri));
		b.present = calloc(b.c.rooms, sizeof(*b.present));
		if (b.room_uri == NULL || b.present == NULL)
			return 2;
		if (b.c.dpdk_port[0] == '\0')
			find_rooms(&b);
	}
	atomic_store(&b.rooms_known, b.c.dpdk_port[0] == '\0');
	b.w = calloc(b.c.nthreads, sizeof(*b.w));
	if (b.w == NULL)
		return 2;
	if (b.c.series_path != NULL) {
		/* The load, the drain and a second of slack. */
		b.nsec = (unsigned)(b.c.warmup_s + b.c.duration_s + b.c.drain_s) + 2;
		b.srv = calloc(b.nsec, sizeof(*b.srv));
		if (b.srv == NULL)
			return 2;
	}
	per = b.total / b.c.nthreads;
	extra = b.total % b.c.nthreads;
	for (unsigned i = 0; i < b.c.nthreads; i++) {
		uint32_t n = per + (i < extra ? 1 : 0);

		if (worker_init(&b.w[i], &b, i, first, n) != 0) {
			fprintf(stderr, "parley-bench: out of memory or descriptors setting up "
				"worker %u\n", i);
			return 2;
		}
		if (b.c.mode == MODE_FANOUT && b.c.rate > 0 && n > 0)
			b.w[i].interval_ns = (uint64_t)(1e9 / (b.c.rate * n / b.total));
		b.w[i].share = b.total ? (double)n / b.total : 0;
		if (b.nsec > 0 && (b.w[i].ser = series_alloc(b.nsec)) == NULL)
			return 2;
		first += n;
	}
	rc = run(&b);
	for (unsigned i = 0; i < b.c.nthreads; i++)
		worker_fini(&b.w[i]);
	free(b.w);
	free(b.room_uri);
	free(b.present);
	free(b.srv);
	if (b.c.dpdk_port[0] != '\0')
		unet_fini();
	return rc;
}
