/* parleyctl: the operator's client of the control socket (control/ctl.h).
 *
 * Finds the socket with -s SOCKET, else from -c CONFIG ([control] socket,
 * default data_dir/parleyd.sock), else from the embedded default
 * (./var/parleyd.sock). Sends one request per command and prints the
 * answer's value as JSON on stdout. Exit status: 0 done, 1 the server
 * refused or failed the command (its reason on stderr and as
 * {"error": ...} on stdout), 2 usage, 3 the socket cannot be reached
 * (missing, no permission, no answer). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ini.h>
#include <jansson.h>

#include "control/ctl.h"

#define EXIT_FAILED	1
#define EXIT_USAGE	2
#define EXIT_NOSOCKET	3

struct opts {
	const char	*socket;
	const char	*config;
	bool		compact;
	int		timeout_s;
};

struct conn {
	int	fd;
	char	*buf;
	size_t	len, cap;
	size_t	consumed;	/* the line read_line returned last */
};

static struct opts o = { .timeout_s = 30 };

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: parleyctl [-s SOCKET | -c CONFIG] [-j] [-t SECONDS] COMMAND [ARGS]\n"
		"  -s, --socket PATH      the control socket\n"
		"  -c, --config FILE      parleyd's configuration: its [control] socket\n"
		"  -j, --compact          one line of JSON instead of indented JSON\n"
		"  -t, --timeout SECONDS  wait this long for an answer (default 30)\n"
		"commands:\n"
		"  stats                             counters per lcore and in total, rings,\n"
		"                                    storage, exporter lag, memory\n"
		"  top [--once | --count N] [--interval S] [--json]\n"
		"                                    posts/s, deliveries/s, connections, drops,\n"
		"                                    per-lcore load, refreshed every second\n"
		"  conns [--lcore N] [--user USER] [--limit N]\n"
		"  rooms\n"
		"  room [show] ROOM                  a room and its present members (ROOM:\n"
		"                                    name, id or ma-chan URI)\n"
		"  room create NAME [KEY=VALUE ...]  keys: privacy=open|closed|secret,\n"
		"                                    description, topic, members=a,b,\n"
		"                                    managers=c, filepost, logged, invite\n"
		"  room set ROOM KEY=VALUE ...       the same keys, and name= to rename\n"
		"  room del ROOM\n"
		"  room member add|del ROOM USER\n"
		"  room manager add|del ROOM USER\n"
		"  invite ROOM USER [--from USER]\n"
		"  user add|passwd USER [PASSWORD]   without PASSWORD: read from stdin\n"
		"  user del USER\n"
		"  array                             every node of the array (etcd): load,\n"
		"                                    draining; this node's etcd session\n"
		"  drain [off]                       stop accepting new connections\n"
		"                                    (off: accept again)\n"
		"  reload                            reload certificate and users, as SIGHUP\n"
		"  loglevel [err|warning|notice|info|debug]\n"
		"  raw COMMAND [PARAMS]              send a request as is (\"/\" lists them)\n"
		"USER is alice@example.com, or alice for this server's domain.\n");
}

static void
fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
fail_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("parleyctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the socket ------------------------------------------------------------ */

/* What parleyctl reads of parleyd's configuration: the two keys that place
 * the socket (router/config.c defines them and their defaults; the
 * embedded data_dir is "./var"). */
struct socket_keys {
	char data_dir[PATH_MAX];
	char socket[PATH_MAX];
};

static int
socket_key(void *user, const char *section, const char *name, const char *value)
{
	struct socket_keys *k = user;
	char *dst = NULL;

	if (name == NULL)
		return 1;
	if (strcasecmp(section, "server") == 0 && strcasecmp(name, "data_dir") == 0)
		dst = k->data_dir;
	else if (strcasecmp(section, "control") == 0 && strcasecmp(name, "socket") == 0)
		dst = k->socket;
	if (dst != NULL && snprintf(dst, PATH_MAX, "%s", value) >= PATH_MAX)
		return 0;
	return 1;
}

/* -s SOCKET, else [control] socket of -c CONFIG, else data_dir/parleyd.sock
 * (the file's data_dir, or the embedded one). 0, or -1 (said on stderr). */
static int
socket_path(char *out, size_t cap)
{
	struct socket_keys k = { .data_dir = "./var" };
	int rc, n;

	if (o.socket != NULL) {
		snprintf(out, cap, "%s", o.socket);
		return 0;
	}
	if (o.config != NULL) {
		FILE *f = fopen(o.config, "r");

		if (f == NULL) {
			fail_msg("%s: %s", o.config, strerror(errno));
			return -1;
		}
		rc = ini_parse_file(f, socket_key, &k);
		fclose(f);
		if (rc != 0) {
			fail_msg("%s:%d: syntax error", o.config, rc);
			return -1;
		}
	}
	if (k.socket[0] != '\0') {
		snprintf(out, cap, "%s", k.socket);
		return 0;
	}
	if (k.data_dir[0] == '\0') {
		fail_msg("%s%s[server] data_dir: must not be empty", o.config ? o.config : "",
			 o.config ? ": " : "");
		return -1;
	}
	n = snprintf(out, cap, "%s/parleyd.sock", k.data_dir);
	if (n < 0 || (size_t)n >= cap) {
		fail_msg("%s%s[server] data_dir: path too long", o.config ? o.config : "",
			 o.config ? ": " : "");
		return -1;
	}
	return 0;
}

/* One line from the server, NUL-terminated in place of its newline; NULL
 * on EOF, error or timeout. Valid until the next call. */
static char *
read_line(struct conn *c)
{
	if (c->consumed > 0) {
		memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
		c->len -= c->consumed;
		c->consumed = 0;
	}
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		ssize_t r;

		if (nl != NULL) {
			*nl = '\0';
			c->consumed = (size_t)(nl - c->buf) + 1;
			return c->buf;
		}
		if (c->len + 65536 > c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			char *p = realloc(c->buf, cap);

			if (p == NULL)
				return NULL;
			c->buf = p;
			c->cap = cap;
		}
		r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
		if (r <= 0) {
			if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
				errno = ETIMEDOUT;
			else if (r == 0)
				errno = ECONNRESET;
			return NULL;
		}
		c->len += (size_t)r;
	}
}

static int
conn_open(struct conn *c)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = o.timeout_s };
	char path[PATH_MAX];
	json_t *hello;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (socket_path(path, sizeof(path)) != 0)
		return -1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fail_msg("%s: path too long for a Unix socket", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd == -1 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fail_msg("cannot connect to %s: %s%s", path, strerror(errno),
			 errno == EACCES ? " (the socket's mode and group say who may)" :
			 errno == ENOENT || errno == ECONNREFUSED ? " (is parleyd running? -s or "
			 "-c name the socket)" : "");
		return -1;
	}
	/* The greeting: {"version":..,"pid":..,"max_output_len":..}. */
	hello = read_line(c) ? json_loads(c->buf, 0, NULL) : NULL;
	if (!json_is_object(hello) || json_object_get(hello, "version") == NULL) {
		fail_msg("%s: not a parleyd control socket (%s)", path,
			 hello ? "unexpected greeting" : strerror(errno));
		json_decref(hello);
		return -1;
	}
	json_decref(hello);
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	free(c->buf);
}

/* Sends <cmd> with <params> (a JSON object, stolen; may be NULL) and waits
 * for the answer: the value (new reference) or NULL with *<err> set to the
 * server's reason (new reference) or to NULL on a transport failure. */
static json_t *
request(struct conn *c, const char *cmd, json_t *params, json_t **err)
{
	char *p = params ? json_dumps(params, JSON_COMPACT) : NULL;
	char *line;
	size_t n;
	json_t *ans, *v;
	int rc;

	*err = NULL;
	json_decref(params);
	n = strlen(cmd) + (p ? strlen(p) + 1 : 0) + 2;
	line = malloc(n);
	if (line == NULL) {
		free(p);
		return NULL;
	}
	snprintf(line, n, "%s%s%s\n", cmd, p ? "," : "", p ? p : "");
	free(p);
	rc = send(c->fd, line, strlen(line), MSG_NOSIGNAL) == (ssize_t)strlen(line) ? 0 : -1;
	free(line);
	if (rc != 0 || read_line(c) == NULL) {
		fail_msg("%s: no answer: %s", cmd, strerror(errno));
		return NULL;
	}
	ans = json_loads(c->buf, 0, NULL);
	if (!json_is_object(ans)) {
		fail_msg("%s: the answer is not JSON", cmd);
		json_decref(ans);
		return NULL;
	}
	v = json_object_get(ans, "error");
	if (v != NULL) {
		*err = json_incref(v);
		json_decref(ans);
		return NULL;
	}
	v = json_object_get(ans, cmd);
	if (v == NULL && json_object_size(ans) == 1)
		v = json_object_iter_value(json_object_iter(ans));
	v = json_incref(v ? v : json_null());
	json_decref(ans);
	return v;
}

static void
print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(12) |
			     (o.compact ? JSON_COMPACT : JSON_INDENT(2)));

	if (s != NULL)
		puts(s);
	free(s);
	fflush(stdout);
}

/* One request, its answer printed. The exit status. */
static int
run_one(const char *cmd, json_t *params)
{
	struct conn c;
	json_t *v, *err;
	int rc;

	if (conn_open(&c) != 0) {
		json_decref(params);
		conn_close(&c);
		return EXIT_NOSOCKET;
	}
	v = request(&c, cmd, params, &err);
	conn_close(&c);
	if (v != NULL) {
		print_json(v);
		json_decref(v);
		return 0;
	}
	if (err == NULL)
		return EXIT_NOSOCKET;
	fail_msg("%s", json_is_string(err) ? json_string_value(err) : "failed");
	v = json_pack("{s:O}", "error", err);
	print_json(v);
	json_decref(v);
	json_decref(err);
	rc = EXIT_FAILED;
	return rc;
}

/* ---- command options ----------------------------------------------------- */

/* One option of a command: --name VALUE, --name=VALUE, or a --flag. */
struct subopt {
	const char	*name;
	const char	**val;		/* takes a value */
	bool		*flag;		/* or is a flag */
};

/* Takes the options <so> (NULL-name terminated) out of the command's
 * arguments argv[1..argc-1], wherever they are (whatever POSIXLY_CORRECT
 * says), and moves the other arguments, in order, to argv[1..]. Their
 * count, or -1 with a message. */
static int
sub_options(int argc, char **argv, const struct subopt *so)
{
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		const struct subopt *k;
		const char *a = argv[i], *eq;
		size_t n;

		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			argv[1 + npos++] = argv[i];
			continue;
		}
		eq = strchr(a, '=');
		n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		for (k = so; k->name != NULL; k++)
			if (strlen(k->name) == n && strncmp(k->name, a + 2, n) == 0)
				break;
		if (k->name == NULL || (k->flag != NULL && eq != NULL) ||
		    (k->val != NULL && eq == NULL && i + 1 >= argc)) {
			fail_msg("%s: %s option %s", argv[0], k->name ? "bad use of" : "unknown",
				 a);
			return -1;
		}
		if (k->flag != NULL)
			*k->flag = true;
		else
			*k->val = eq ? eq + 1 : argv[++i];
	}
	return npos;
}

/* ---- top ------------------------------------------------------------------- */

static double
num(json_t *obj, const char *path)
{
	char key[64];
	const char *dot;
	json_t *v = obj;

	while (v != NULL && (dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		v = json_object_get(v, key);
		path = dot + 1;
	}
	v = v ? json_object_get(v, path) : NULL;
	return json_is_number(v) ? json_number_value(v) : 0;
}

static json_t *
rate(double d, double dt)
{
	return json_real(round(d / dt * 10) / 10);
}

/* What changed from <a> to <b> (two stats answers), per second. */
static json_t *
top_sample(json_t *a, json_t *b)
{
	double dt = (num(b, "node.uptime_ms") - num(a, "node.uptime_ms")) / 1000;
	json_t *la = json_object_get(a, "lcores"), *lb = json_object_get(b, "lcores");
	json_t *out, *lcores = json_array();

	if (dt <= 0)
		dt = 1;
	for (size_t i = 0; i < json_array_size(lb); i++) {
		json_t *x = json_array_get(la, i), *y = json_array_get(lb, i);
		json_t *cx = json_object_get(x, "cpu_ns"), *cy = json_object_get(y, "cpu_ns");
		double ev = 0;
		json_t *l;

		for (const char *const *k = (const char *const[]){ "sip_requests", "deliveries",
				"notices", "posts_in", "xccos_commands", NULL }; *k; k++)
			ev += num(y, *k) - num(x, *k);
		l = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:I}",
			      "lcore", (json_int_t)num(y, "lcore"),
			      "conns", (json_int_t)num(y, "conns"),
			      "posts_per_s", rate(num(y, "posts_in") - num(x, "posts_in"), dt),
			      "deliveries_per_s", rate(num(y, "deliveries") - num(x, "deliveries"),
						       dt),
			      "events_per_s", rate(ev, dt),
			      "drops_per_s", rate(num(y, "drops_total") - num(x, "drops_total"),
						  dt),
			      "ring_in", (json_int_t)num(y, "ring_in"));
		/* Load: the share of the second the lcore's thread spent on the
		 * CPU (it sleeps in its poller when idle). */
		if (json_is_integer(cx) && json_is_integer(cy))
			json_object_set_new(l, "load_pct", json_real(round(
				(double)(json_integer_value(cy) - json_integer_value(cx)) /
				(dt * 1e9) * 1000) / 10));
		else
			json_object_set_new(l, "load_pct", json_null());
		json_array_append_new(lcores, l);
	}
	out = json_pack("{s:f, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:b, s:I, s:I, "
			"s:o}",
			"interval_s", round(dt * 1000) / 1000,
			"posts_per_s", rate(num(b, "total.posts_in") - num(a, "total.posts_in"),
					    dt),
			"deliveries_per_s", rate(num(b, "total.deliveries") -
						 num(a, "total.deliveries"), dt),
			"notices_per_s", rate(num(b, "total.notices") - num(a, "total.notices"),
					      dt),
			"drops_per_s", rate(num(b, "total.drops_total") -
					    num(a, "total.drops_total"), dt),
			"conns_per_s", rate(num(b, "total.conn_accepted") -
					    num(a, "total.conn_accepted"), dt),
			"conns", (json_int_t)num(b, "total.conns"),
			"registered", (json_int_t)num(b, "total.registered"),
			"drops", (json_int_t)num(b, "total.drops_total"),
			"ring_full", (json_int_t)num(b, "total.ring_full"),
			"accepting", json_is_true(json_object_get(json_object_get(b, "node"),
								  "accepting")),
			"commit_p99_us", (json_int_t)num(b, "storage.latency_us.p99"),
			"rss_bytes", (json_int_t)num(b, "memory.rss_bytes"),
			"lcores", lcores);
	return out;
}

static void
top_draw(json_t *s)
{
	json_t *l;
	size_t i;

	printf("\033[H\033[J");
	printf("parleyd: %s   conns %lld (registered %lld)   drops %lld   ring_full %lld\n",
	       json_is_true(json_object_get(s, "accepting")) ? "accepting" : "DRAINING",
	       (long long)num(s, "conns"), (long long)num(s, "registered"),
	       (long long)num(s, "drops"), (long long)num(s, "ring_full"));
	printf("posts/s %.1f   deliveries/s %.1f   notices/s %.1f   drops/s %.1f   "
	       "new conns/s %.1f\n", num(s, "posts_per_s"), num(s, "deliveries_per_s"),
	       num(s, "notices_per_s"), num(s, "drops_per_s"), num(s, "conns_per_s"));
	printf("commit p99 %lld us   rss %.1f MiB\n\n", (long long)num(s, "commit_p99_us"),
	       num(s, "rss_bytes") / 1048576);
	printf("%6s %8s %8s %10s %12s %10s %8s\n", "lcore", "load%", "conns", "posts/s",
	       "deliveries/s", "events/s", "ring_in");
	json_array_foreach(json_object_get(s, "lcores"), i, l) {
		json_t *load = json_object_get(l, "load_pct");
		char lb[16];

		if (json_is_number(load))
			snprintf(lb, sizeof(lb), "%.1f", json_number_value(load));
		else
			snprintf(lb, sizeof(lb), "-");
		printf("%6lld %8s %8lld %10.1f %12.1f %10.1f %8lld\n",
		       (long long)num(l, "lcore"), lb, (long long)num(l, "conns"),
		       num(l, "posts_per_s"), num(l, "deliveries_per_s"), num(l, "events_per_s"),
		       (long long)num(l, "ring_in"));
	}
	fflush(stdout);
}

static int
cmd_top(int argc, char **argv)
{
	const char *counts = NULL, *intervals = NULL;
	bool once = false, json = false;
	const struct subopt so[] = {
		{ "once", NULL, &once }, { "count", &counts, NULL },
		{ "interval", &intervals, NULL }, { "json", NULL, &json }, { NULL, NULL, NULL },
	};
	long count = -1;
	double interval = 1;
	json_t *prev, *cur, *err = NULL;
	struct conn c;
	int rc = 0, npos = sub_options(argc, argv, so);

	if (once)
		count = 1;
	if (counts != NULL)
		count = strtol(counts, NULL, 10);
	if (intervals != NULL)
		interval = strtod(intervals, NULL);
	json = json || !isatty(STDOUT_FILENO);
	if (npos != 0 || count == 0 || count < -1 || !(interval >= 0.1)) {
		fail_msg("top [--once | --count N] [--interval SECONDS >= 0.1] [--json]");
		return EXIT_USAGE;
	}
	if (conn_open(&c) != 0) {
		conn_close(&c);
		return EXIT_NOSOCKET;
	}
	prev = request(&c, "/parley/stats", NULL, &err);
	if (prev == NULL)
		rc = err ? EXIT_FAILED : EXIT_NOSOCKET;
	for (long n = 0; prev != NULL && (count < 0 || n < count); n++) {
		struct timespec ts = { (time_t)interval,
				       (long)((interval - (time_t)interval) * 1e9) };
		json_t *s;

		nanosleep(&ts, NULL);
		cur = request(&c, "/parley/stats", NULL, &err);
		if (cur == NULL) {
			rc = err ? EXIT_FAILED : EXIT_NOSOCKET;
			break;
		}
		s = top_sample(prev, cur);
		if (json) {
			char *line = json_dumps(s, JSON_COMPACT | JSON_REAL_PRECISION(12));

			puts(line);
			fflush(stdout);
			free(line);
		} else {
			top_draw(s);
		}
		json_decref(s);
		json_decref(prev);
		prev = cur;
	}
	conn_close(&c);
	if (err != NULL)
		fail_msg("%s", json_is_string(err) ? json_string_value(err) : "failed");
	json_decref(err);
	json_decref(prev);
	return rc;
}

/* ---- argument helpers --------------------------------------------------------- */

/* KEY=VALUE words into <obj>. */
static int
add_pairs(json_t *obj, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (eq == NULL || eq == argv[i]) {
			fail_msg("'%s': expected KEY=VALUE", argv[i]);
			return -1;
		}
		*eq = '\0';
		json_object_set_new(obj, argv[i], json_string(eq + 1));
	}
	return 0;
}

/* A password from stdin: prompted without echo on a terminal. */
static char *
read_password(void)
{
	static char pw[1024];
	struct termios t0, t1;
	bool tty = isatty(STDIN_FILENO);
	size_t n;

	if (tty) {
		fputs("password: ", stderr);
		tcgetattr(STDIN_FILENO, &t0);
		t1 = t0;
		t1.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t1);
	}
	if (fgets(pw, sizeof(pw), stdin) == NULL)
		pw[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t0);
		fputc('\n', stderr);
	}
	n = strlen(pw);
	while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = '\0';
	return pw;
}

static bool
is_room_sub(const char *s)
{
	return !strcmp(s, "create") || !strcmp(s, "set") || !strcmp(s, "del") ||
	       !strcmp(s, "member") || !strcmp(s, "manager") || !strcmp(s, "show");
}

static int
cmd_room(int argc, char **argv)
{
	const char *sub = argv[1];

	if (argc == 2 && !is_room_sub(sub))
		return run_one("/parley/room", json_pack("{s:s}", "room", sub));
	if (!strcmp(sub, "show") && argc == 3)
		return run_one("/parley/room", json_pack("{s:s}", "room", argv[2]));
	if (!strcmp(sub, "create") && argc >= 3) {
		json_t *p = json_pack("{s:s}", "name", argv[2]);

		if (add_pairs(p, argc - 3, argv + 3) != 0) {
			json_decref(p);
			return EXIT_USAGE;
		}
		return run_one("/parley/room/create", p);
	}
	if (!strcmp(sub, "set") && argc >= 4) {
		json_t *p = json_pack("{s:s}", "room", argv[2]);

		if (add_pairs(p, argc - 3, argv + 3) != 0) {
			json_decref(p);
			return EXIT_USAGE;
		}
		return run_one("/parley/room/set", p);
	}
	if (!strcmp(sub, "del") && argc == 3)
		return run_one("/parley/room/del", json_pack("{s:s}", "room", argv[2]));
	if ((!strcmp(sub, "member") || !strcmp(sub, "manager")) && argc == 5 &&
	    (!strcmp(argv[2], "add") || !strcmp(argv[2], "del"))) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "/parley/room/%s/%s", sub, argv[2]);
		return run_one(cmd, json_pack("{s:s, s:s}", "room", argv[3], "user", argv[4]));
	}
	fail_msg("room [show] ROOM | room create NAME [KEY=VALUE ...] | room set ROOM "
		 "KEY=VALUE ... | room del ROOM | room member|manager add|del ROOM USER");
	return EXIT_USAGE;
}

static int
cmd_user(int argc, char **argv)
{
	const char *sub = argv[1];

	if ((!strcmp(sub, "add") || !strcmp(sub, "passwd")) && (argc == 3 || argc == 4)) {
		char cmd[32];
		const char *pw = argc == 4 ? argv[3] : read_password();

		snprintf(cmd, sizeof(cmd), "/parley/user/%s", sub);
		return run_one(cmd, json_pack("{s:s, s:s}", "user", argv[2], "password", pw));
	}
	if (!strcmp(sub, "del") && argc == 3)
		return run_one("/parley/user/del", json_pack("{s:s}", "user", argv[2]));
	fail_msg("user add|passwd USER [PASSWORD] | user del USER");
	return EXIT_USAGE;
}

static int
cmd_conns(int argc, char **argv)
{
	const char *lcore = NULL, *user = NULL, *limit = NULL;
	const struct subopt so[] = {
		{ "lcore", &lcore, NULL }, { "user", &user, NULL }, { "limit", &limit, NULL },
		{ NULL, NULL, NULL },
	};
	json_t *p;

	if (sub_options(argc, argv, so) != 0) {
		fail_msg("conns [--lcore N] [--user USER] [--limit N]");
		return EXIT_USAGE;
	}
	p = json_object();
	if (lcore != NULL)
		json_object_set_new(p, "lcore", json_string(lcore));
	if (user != NULL)
		json_object_set_new(p, "user", json_string(user));
	if (limit != NULL)
		json_object_set_new(p, "limit", json_string(limit));
	return run_one("/parley/conns", p);
}

static int
cmd_invite(int argc, char **argv)
{
	const char *from = NULL;
	const struct subopt so[] = { { "from", &from, NULL }, { NULL, NULL, NULL } };
	json_t *p;

	if (sub_options(argc, argv, so) != 2) {
		fail_msg("invite ROOM USER [--from USER]");
		return EXIT_USAGE;
	}
	p = json_pack("{s:s, s:s}", "room", argv[1], "user", argv[2]);
	if (from != NULL)
		json_object_set_new(p, "author", json_string(from));
	return run_one("/parley/invite", p);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "compact", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	int opt;

	/* "+": options end at the command, whose own options follow it. */
	while ((opt = getopt_long(argc, argv, "+s:c:jt:h", lo, NULL)) != -1) {
		switch (opt) {
		case 's': o.socket = optarg; break;
		case 'c': o.config = optarg; break;
		case 'j': o.compact = true; break;
		case 't': o.timeout_s = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc || o.timeout_s <= 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	cmd = argv[0];
	if (!strcmp(cmd, "stats") && argc == 1)
		return run_one("/parley/stats", NULL);
	if (!strcmp(cmd, "top"))
		return cmd_top(argc, argv);
	if (!strcmp(cmd, "conns"))
		return cmd_conns(argc, argv);
	if (!strcmp(cmd, "rooms") && argc == 1)
		return run_one("/parley/rooms", NULL);
	if (!strcmp(cmd, "room") && argc >= 2)
		return cmd_room(argc, argv);
	if (!strcmp(cmd, "user") && argc >= 3)
		return cmd_user(argc, argv);
	if (!strcmp(cmd, "invite"))
		return cmd_invite(argc, argv);
	if (!strcmp(cmd, "array") && argc == 1)
		return run_one("/parley/array", NULL);
	if (!strcmp(cmd, "drain") && argc <= 2)
		return run_one("/parley/drain", argc == 2 ? json_pack("{s:s}", "drain",
								      argv[1]) : NULL);
	if (!strcmp(cmd, "reload") && argc == 1)
		return run_one("/parley/reload", NULL);
	if (!strcmp(cmd, "loglevel") && argc <= 2)
		return run_one("/parley/loglevel", argc == 2 ? json_pack("{s:s}", "level",
									 argv[1]) : NULL);
	if (!strcmp(cmd, "raw") && (argc == 2 || argc == 3)) {
		json_t *p = NULL;

		if (argc == 3) {
			p = json_loads(argv[2], JSON_DECODE_ANY, NULL);
			if (!json_is_object(p)) {
				json_decref(p);
				p = json_pack("{s:s}", "arg", argv[2]);
			}
		}
		return run_one(argv[1], p);
	}
	usage(stderr);
	return EXIT_USAGE;
}
