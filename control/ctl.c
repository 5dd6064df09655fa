/* The control socket: listening, framing and dispatch; see ctl.h.
 *
 * One thread polls the listening socket, a stop eventfd and up to
 * CTL_CLIENTS_MAX clients. A request line is handled to the end before the
 * next (commands are short: counter reads, one RocksDB write, a few
 * engine_lcore_call round trips); its answer is queued on the client and
 * written as the socket takes it, and a client that does not read its
 * answers is not read from either. Access control is the socket file's
 * mode and owner: whoever may connect may administer the node. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "control/ctl_int.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/engine/engine.h"

#ifndef PARLEY_VERSION
#define PARLEY_VERSION "dev"
#endif

#define CTL_CLIENTS_MAX	16
#define CTL_BACKLOG	16

struct client {
	int	fd;
	char	*in;			/* CTL_REQUEST_MAX + 1 bytes */
	size_t	in_len;
	char	*out;			/* queued answers, malloc'd */
	size_t	out_len, out_off, out_cap;
	bool	closing;		/* close once <out> is written */
	struct ucred who;		/* the peer, for the log */
};

struct cmd {
	const char	*name;
	ctl_cmd_fn	*fn;
	bool		admin;		/* changes state: logged at notice */
	const char	*help;
	int		op;		/* ctl_args.op: the variant for <fn> */
};

static int cmd_list(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
		    size_t errlen);
static int cmd_info(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
		    size_t errlen);
static int cmd_help(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
		    size_t errlen);

static const struct cmd cmds[] = {
	{ "/", cmd_list, false, "The commands. No parameters" },
	{ "/info", cmd_info, false, "Server version and pid. No parameters" },
	{ "/help", cmd_help, false, "Help for a command. Parameters: the command" },
	{ "/parley/stats", ctl_stats_all, false,
	  "Counters per lcore and in total, connections by state, rings, storage commit, "
	  "exporter lag, memory. No parameters" },
	{ "/parley/conns", ctl_stats_conns, false,
	  "Connections. Parameters: {\"lcore\":N,\"user\":AOR,\"limit\":N} (all optional)" },
	{ "/parley/rooms", ctl_rooms_list, false, "Every room of the catalog. No parameters" },
	{ "/parley/room", ctl_rooms_show, false,
	  "One room and its present members with their lcores. Parameters: the room's name, "
	  "id or ma-chan URI" },
	{ "/parley/room/create", ctl_rooms_create, true,
	  "Creates a room. Parameters: {\"name\":..,\"privacy\":open|closed|secret,"
	  "\"description\":..,\"topic\":..,\"members\":[..],\"managers\":[..],"
	  "\"filepost\":bool,\"logged\":bool,\"invite\":bool}" },
	{ "/parley/room/set", ctl_rooms_set, true,
	  "Changes a room. Parameters: {\"room\":..} plus any key of create (\"name\" renames; "
	  "members and managers replace the lists)" },
	{ "/parley/room/del", ctl_rooms_del, true, "Deletes a room. Parameters: the room" },
	{ "/parley/room/member/add", ctl_rooms_set_change, true,
	  "Adds a member. Parameters: {\"room\":..,\"user\":..}", CTL_MEMBER_ADD },
	{ "/parley/room/member/del", ctl_rooms_set_change, true,
	  "Removes a member (and manager). Parameters: {\"room\":..,\"user\":..}",
	  CTL_MEMBER_DEL },
	{ "/parley/room/manager/add", ctl_rooms_set_change, true,
	  "Adds a manager. Parameters: {\"room\":..,\"user\":..}", CTL_MANAGER_ADD },
	{ "/parley/room/manager/del", ctl_rooms_set_change, true,
	  "Removes a manager. Parameters: {\"room\":..,\"user\":..}", CTL_MANAGER_DEL },
	{ "/parley/invite", ctl_rooms_invite, true,
	  "Invites a user to a room (getinv, and ntc:inv if connected). Parameters: "
	  "{\"room\":..,\"user\":..,\"author\":URI (optional)}" },
	{ "/parley/user/add", ctl_admin_user_change, true,
	  "Adds a user to the htdigest file and reloads it. Parameters: "
	  "{\"user\":..,\"password\":..}", CTL_USER_ADD },
	{ "/parley/user/passwd", ctl_admin_user_change, true,
	  "Sets a user's password. Parameters: {\"user\":..,\"password\":..}",
	  CTL_USER_PASSWD },
	{ "/parley/user/del", ctl_admin_user_change, true, "Removes a user. Parameters: the user",
	  CTL_USER_DEL },
	{ "/parley/drain", ctl_admin_drain, true,
	  "Stops accepting new connections; existing ones continue. Parameters: \"off\" "
	  "accepts again" },
	{ "/parley/array", ctl_array_show, false,
	  "Every node of the array as etcd holds it (load, draining) and this node's etcd "
	  "session. No parameters" },
	{ "/parley/reload", ctl_admin_reload, true,
	  "Reloads the certificate and the user table, as SIGHUP. No parameters" },
	{ "/parley/loglevel", ctl_admin_loglevel, true,
	  "Shows or sets the log level. Parameters: err|warning|notice|info|debug (optional)" },
};

static const struct cmd *
cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static int
cmd_list(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	json_t *v = json_array();

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		json_array_append_new(v, json_string(cmds[i].name));
	*out = v;
	return 0;
}

static json_t *
info_json(void)
{
	return json_pack("{s:s, s:i, s:I}", "version", "parley " PARLEY_VERSION, "pid",
			 (int)getpid(), "max_output_len", (json_int_t)CTL_OUTPUT_MAX);
}

static int
cmd_info(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	*out = info_json();
	return 0;
}

static int
cmd_help(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	const char *name = ctl_arg_str(a, "command", true);
	const struct cmd *k = name ? cmd_find(name) : NULL;

	if (k == NULL) {
		snprintf(err, errlen, "no command %s (\"/\" lists them)", name ? name : "given");
		return -1;
	}
	*out = json_pack("{s:s}", k->name, k->help);
	return 0;
}

/* ---- answers ----------------------------------------------------------- */

static int
out_append(struct client *cl, const char *s, size_t n)
{
	if (cl->out_len + n > cl->out_cap) {
		size_t cap = cl->out_cap ? cl->out_cap : 4096;
		char *p;

		while (cap < cl->out_len + n)
			cap *= 2;
		p = realloc(cl->out, cap);
		if (p == NULL)
			return -ENOMEM;
		cl->out = p;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, s, n);
	cl->out_len += n;
	return 0;
}

/* Queues <v> (stolen) as one line. */
static void
answer(struct client *cl, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(12));
	size_t n = s ? strlen(s) : 0;

	json_decref(v);
	if (s == NULL || n > CTL_OUTPUT_MAX) {
		static const char oom[] = "{\"error\":\"the answer does not fit in memory\"}\n";

		out_append(cl, oom, sizeof(oom) - 1);
	} else if (out_append(cl, s, n) != 0 || out_append(cl, "\n", 1) != 0) {
		cl->closing = true;
	}
	free(s);
}

static void
answer_error(struct client *cl, const char *cmd, const char *msg)
{
	json_t *v = json_object();

	json_object_set_new(v, cmd ? cmd : "none", json_null());
	json_object_set_new(v, "error", json_string(msg));
	answer(cl, v);
}

/* One request line (NUL-terminated, without its newline). */
static void
handle_line(struct ctl *c, struct client *cl, char *line)
{
	struct ctl_args a = { NULL };
	const struct cmd *k;
	char err[512] = "";
	char *cmd, *params;
	json_t *out = NULL;

	if (!ctl_req_split(line, &cmd, &params))
		return;
	k = cmd_find(cmd);
	if (k == NULL) {
		answer_error(cl, cmd, "unknown command (\"/\" lists them)");
		return;
	}
	if (ctl_req_args(params, &a, err, sizeof(err)) != 0) {
		answer_error(cl, k->name, err);
		return;
	}
	a.op = k->op;
	if (k->admin)
		LOG(NOTICE, CONTROL, "%s (uid %u, pid %d)", k->name, (unsigned)cl->who.uid,
		    (int)cl->who.pid);
	else
		LOG(DEBUG, CONTROL, "%s (uid %u, pid %d)", k->name, (unsigned)cl->who.uid,
		    (int)cl->who.pid);
	if (k->fn(c, &a, &out, err, sizeof(err)) != 0) {
		LOG(NOTICE, CONTROL, "%s: %s", k->name, err);
		answer_error(cl, k->name, err[0] ? err : "failed");
	} else {
		json_t *v = json_object();

		json_object_set_new(v, k->name, out ? out : json_null());
		answer(cl, v);
	}
	json_decref(a.obj);
}

/* ---- clients ----------------------------------------------------------- */

static void
client_close(struct client *cl)
{
	close(cl->fd);
	free(cl->in);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

static void
client_flush(struct client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t w = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL);

		if (w == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			cl->closing = true;
			cl->out_off = cl->out_len;	/* the peer is gone */
			break;
		}
		cl->out_off += (size_t)w;
	}
	cl->out_off = cl->out_len = 0;
}

static void
client_read(struct ctl *c, struct client *cl)
{
	ssize_t r = recv(cl->fd, cl->in + cl->in_len, CTL_REQUEST_MAX - cl->in_len, 0);
	char *nl;

	if (r == 0 || (r == -1 && errno != EAGAIN && errno != EINTR)) {
		/* A last request without its newline still counts. */
		if (r == 0 && cl->in_len > 0) {
			cl->in[cl->in_len] = '\0';
			handle_line(c, cl, cl->in);
			cl->in_len = 0;
		}
		cl->closing = true;
		return;
	}
	if (r == -1)
		return;
	cl->in_len += (size_t)r;
	cl->in[cl->in_len] = '\0';
	while ((nl = memchr(cl->in, '\n', cl->in_len)) != NULL) {
		size_t used = (size_t)(nl - cl->in) + 1;

		*nl = '\0';
		handle_line(c, cl, cl->in);
		memmove(cl->in, cl->in + used, cl->in_len - used);
		cl->in_len -= used;
		cl->in[cl->in_len] = '\0';
	}
	if (cl->in_len == CTL_REQUEST_MAX) {
		answer_error(cl, NULL, "request line too long");
		cl->closing = true;
	}
}

static void
client_accept(struct ctl *c, struct client *cls)
{
	int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct client *cl = NULL;

	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			LOG(WARNING, CONTROL, "accept: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < CTL_CLIENTS_MAX; i++)
		if (cls[i].fd == -1) {
			cl = &cls[i];
			break;
		}
	if (cl == NULL) {
		static const char busy[] = "{\"error\":\"too many control clients\"}\n";

		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) == -1)
			LOG(DEBUG, CONTROL, "busy: %s", strerror(errno));
		close(fd);
		return;
	}
	cl->fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cl->who, &(socklen_t){ sizeof(cl->who) })
	    == -1)
		cl->who = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	cl->in = malloc(CTL_REQUEST_MAX + 1);
	if (cl->in == NULL) {
		client_close(cl);
		return;
	}
	answer(cl, info_json());
	client_flush(cl);
}

static void *
ctl_thread(void *arg)
{
	struct ctl *c = arg;
	struct client cls[CTL_CLIENTS_MAX];
	struct pollfd p[CTL_CLIENTS_MAX + 2];

	for (int i = 0; i < CTL_CLIENTS_MAX; i++) {
		memset(&cls[i], 0, sizeof(cls[i]));
		cls[i].fd = -1;
	}
	for (;;) {
		int n = 0, idx[CTL_CLIENTS_MAX];

		p[n++] = (struct pollfd){ .fd = c->stop_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = c->lfd, .events = POLLIN };
		for (int i = 0; i < CTL_CLIENTS_MAX; i++) {
			struct client *cl = &cls[i];

			if (cl->fd == -1)
				continue;
			/* Backpressure: no new request while answers wait. */
			idx[n - 2] = i;
			p[n++] = (struct pollfd){ .fd = cl->fd,
				.events = cl->out_len > 0 ? POLLOUT : POLLIN };
		}
		if (poll(p, n, -1) == -1) {
			if (errno == EINTR)
				continue;
			LOG(ERR, CONTROL, "poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents)
			break;
		if (p[1].revents & POLLIN)
			client_accept(c, cls);
		for (int j = 2; j < n; j++) {
			struct client *cl = &cls[idx[j - 2]];

			if (p[j].revents == 0)
				continue;
			if (p[j].revents & (POLLIN | POLLHUP | POLLERR)) {
				if (cl->out_len == 0)
					client_read(c, cl);
				else
					cl->closing = true;
			}
			client_flush(cl);
			if (cl->closing && cl->out_len == 0)
				client_close(cl);
		}
	}
	for (int i = 0; i < CTL_CLIENTS_MAX; i++)
		if (cls[i].fd != -1)
			client_close(&cls[i]);
	return NULL;
}

/* ---- start and stop ---------------------------------------------------- */

/* The socket file at <path>: none (0), a stale one removed (0), a live
 * server (-EADDRINUSE) or something else (-EEXIST). */
static int
clear_stale(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(sun->sun_path, &st) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	if (unlink(sun->sun_path) == -1 && errno != ENOENT)
		return -errno;
	return 0;
}

static int
open_socket(struct ctl *c, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = c->conf.socket_path;
	char tmp[sizeof(sun.sun_path)];
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "[control] socket %s: longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -1;
	}
	strcpy(sun.sun_path, path);
	rc = clear_stale(&sun);
	if (rc != 0) {
		snprintf(err, errlen, "[control] socket %s: %s", path,
			 rc == -EADDRINUSE ? "another server answers there" :
			 rc == -EEXIST ? "exists and is not a socket" : strerror(-rc));
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "[control] socket: %s", strerror(errno));
		return -1;
	}
	/* Made under a temporary name and renamed into place once its owner,
	 * mode and listen are set: whoever sees the path can use it, and sees
	 * it with the right permissions. (When the name does not fit, in
	 * place.) */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) >= sizeof(tmp))
		strcpy(tmp, path);
	strcpy(sun.sun_path, tmp);
	unlink(tmp);
	/* Linux creates the file with the socket inode's mode less the umask:
	 * set it first, so the file is never more open than asked. */
	if (fchmod(fd, c->conf.mode) == -1 ||
	    bind(fd, (const struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(err, errlen, "[control] socket %s: %s", path, strerror(errno));
		goto out_close;
	}
	if ((c->conf.uid != (uid_t)-1 || c->conf.gid != (gid_t)-1) &&
	    chown(tmp, c->conf.uid, c->conf.gid) == -1) {
		snprintf(err, errlen, "[control] socket_owner/socket_group on %s: %s", path,
			 strerror(errno));
		goto out_unlink;
	}
	if (chmod(tmp, c->conf.mode) == -1 || listen(fd, CTL_BACKLOG) == -1 ||
	    rename(tmp, path) == -1) {
		snprintf(err, errlen, "[control] socket %s: %s", path, strerror(errno));
		goto out_unlink;
	}
	c->lfd = fd;
	return 0;

out_unlink:
	unlink(tmp);
out_close:
	close(fd);
	return -1;
}

static char *
dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

struct ctl *
ctl_start(const struct ctl_config *cfg, struct engine *e, struct db *db, char *err,
	  size_t errlen)
{
	struct ctl *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL) {
		snprintf(err, errlen, "control: out of memory");
		return NULL;
	}
	c->lfd = -1;
	c->stop_fd = -1;
	c->e = e;
	c->db = db;
	c->conf = *cfg;
	c->path = dup_or_empty(cfg->socket_path);
	c->htdigest = dup_or_empty(cfg->htdigest);
	c->realm = dup_or_empty(cfg->realm);
	c->domain = dup_or_empty(cfg->domain);
	c->nlcores = engine_nlcores(e);
	c->lcores = calloc(c->nlcores, sizeof(*c->lcores));
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->publock, NULL);
	pthread_mutex_init(&c->synclock, NULL);
	if (c->path == NULL || c->htdigest == NULL || c->realm == NULL || c->domain == NULL ||
	    c->lcores == NULL) {
		snprintf(err, errlen, "control: out of memory");
		goto out_free;
	}
	c->conf.socket_path = c->path;
	c->conf.htdigest = c->htdigest;
	c->conf.realm = c->realm;
	c->conf.domain = c->domain;
	c->started_ms = clock_real_ms();
	c->started_mono_ms = clock_mono_ms();
	rc = ctl_rooms_init(c);
	if (rc != 0) {
		snprintf(err, errlen, "control: the room catalog does not load: %s",
			 strerror(-rc));
		goto out_free;
	}
	if (open_socket(c, err, errlen) != 0)
		goto out_free;
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd == -1) {
		snprintf(err, errlen, "control: eventfd: %s", strerror(errno));
		goto out_free;
	}
	rc = pthread_create(&c->thread, NULL, ctl_thread, c);
	if (rc != 0) {
		snprintf(err, errlen, "control: thread: %s", strerror(rc));
		goto out_free;
	}
	pthread_setname_np(c->thread, "parley-ctl");
	c->running = true;
	ctl_tel_register(c);
	LOG(NOTICE, CONTROL, "control socket %s (mode %04o)", c->path, (unsigned)c->conf.mode);
	return c;

out_free:
	ctl_stop(c);
	return NULL;
}

void
ctl_stop(struct ctl *c)
{
	static const uint64_t one = 1;

	if (c == NULL)
		return;
	ctl_tel_unregister();
	if (c->running) {
		if (write(c->stop_fd, &one, sizeof(one)) == -1)
			LOG(ERR, CONTROL, "stop: %s", strerror(errno));
		pthread_join(c->thread, NULL);
	}
	if (c->lfd != -1) {
		close(c->lfd);
		unlink(c->path);
	}
	if (c->stop_fd != -1)
		close(c->stop_fd);
	ctl_rooms_fini(c);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->publock);
	pthread_mutex_destroy(&c->synclock);
	free(c->lcores);
	free(c->path);
	free(c->htdigest);
	free(c->realm);
	free(c->domain);
	free(c);
}

void
ctl_set_exporter(struct ctl *c, struct export *x)
{
	pthread_mutex_lock(&c->lock);
	c->exporter = x;
	pthread_mutex_unlock(&c->lock);
}
