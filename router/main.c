/* parleyd: boot code. Parses the configuration, prepares the data directory,
 * the certificate and the user table, initialises DPDK's EAL, launches one
 * engine loop per worker lcore and then supervises: SIGHUP reloads the
 * certificate and the htdigest file, SIGINT/SIGTERM drain and exit.
 *
 * Runs in the foreground; errors that stop it say what to fix. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include "control/ctl.h"
#include "dataplane/base/log.h"
#include "dataplane/engine/engine.h"
#include "dataplane/chat/ftoken.h"
#include "dataplane/web/web.h"
#include "dataplane/chat/rooms.h"
#include "dataplane/tls/tlscert.h"
#include "dataplane/xccos/xccos.h"
#include "dataplane/tls/tlsterm.h"
#include "router/config.h"
#include "router/rooms_boot.h"
#include "storage/catalog.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/htdigest.h"
#include "storage/wal.h"

#define EAL_ARGS_MAX 64

struct boot {
	struct config conf;
	struct engine *engine;
	struct db *db;
	struct export *exporter;	/* NULL when [compliance] enabled = false */
	struct ctl *ctl;		/* the control socket */
	struct web *web;		/* the HTTPS file service, or NULL */
	struct ftoken_store *ftokens;	/* its tokens, issued by the Channel service */
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: parleyd [-c FILE] [--check-config] [options]\n"
		"  -c, --config FILE      INI configuration (default: the embedded default)\n"
		"      --check-config     validate the configuration and exit 0 (good) or 1\n"
		"  -s, --set SEC.KEY=VAL  override one configuration key (repeatable)\n"
		"  -l, --listen HOST:PORT same as --set sip.listen=HOST:PORT\n"
		"  -d, --data-dir DIR     same as --set server.data_dir=DIR\n"
		"      --domain NAME      same as --set server.domain=NAME\n"
		"      --lcores N         same as --set dpdk.lcores=N\n"
		"  -v, --verbose          log at debug level\n"
		"  -h, --help\n");
}

static int
mkdir_p(const char *path, mode_t mode)
{
	char tmp[CONFIG_PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static int
dirname_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return snprintf(out, cap, ".") < 0 ? -1 : 0;
	if ((size_t)(slash - path) >= cap)
		return -1;
	memcpy(out, path, slash - path);
	out[slash - path] = '\0';
	return 0;
}

static struct tlsterm_ctx *
load_tls(const struct config *c)
{
	struct tlsterm_settings s = {
		.cert_file = c->tls_cert,
		.key_file = c->tls_key,
		.ciphers = c->tls_ciphers[0] ? c->tls_ciphers : NULL,
		.session_cache = c->tls_session_cache,
		.session_timeout_s = c->tls_session_timeout_s,
		.tickets = c->tls_tickets,
		.own_records = strcmp(c->tls_record_layer, "parley") == 0,
		.out_max = c->outq_max,
	};
	char err[512];
	struct tlsterm_ctx *t = tlsterm_ctx_create(&s, err, sizeof(err));

	if (t == NULL)
		LOG(ERR, ROUTER, "TLS: %s", err);
	return t;
}

static struct htdigest *
load_users(const struct config *c)
{
	char err[512];
	struct htdigest *h = htdigest_load(c->htdigest, true, err, sizeof(err));

	if (h == NULL)
		LOG(ERR, ROUTER, "users: %s", err);
	else if (htdigest_count(h) == 0)
		LOG(WARNING, ROUTER, "no users in %s yet: add one with "
		    "`htdigest %s %s alice@%s` and send SIGHUP", c->htdigest, c->htdigest,
		    c->realm, c->domain);
	return h;
}

/* "0000:01:00.0" or "01:00.0": a PCI address rather than a vdev spec. */
static bool
dpdk_port_is_pci(const char *port)
{
	return strchr(port, ',') == NULL && strchr(port, ':') != NULL &&
	       strchr(port, '.') != NULL && strncmp(port, "net_", 4) != 0;
}

/* The EAL arguments: [dpdk] eal, plus an lcore map that lets main + N
 * workers float over the CPUs this process may use (so `taskset` pins the
 * whole server), unless the operator gave one. With [io] backend = dpdk,
 * the port: --vdev=SPEC for a vdev, -a ADDR (and no --no-pci) for a PCI
 * device, and -m 512 without hugepages unless memory was given. */
static int
eal_args(const struct config *c, char *store, size_t cap, char **argv)
{
	int argc = 0;
	bool has_lcores = false, has_prefix = false, has_log = false;
	bool has_mem = false, has_vdev = false, no_huge = false;
	bool dpdk = strcmp(c->io_backend, "dpdk") == 0 && c->dpdk_port[0] != '\0';
	bool pci = dpdk && dpdk_port_is_pci(c->dpdk_port);
	char *save = NULL, *tok;
	cpu_set_t cpus;
	char cpulist[256] = "";
	size_t used;

	snprintf(store, cap, "%s", c->dpdk_eal);
	static char prog[] = "parleyd";
	used = strlen(store) + 1;	/* before strtok cuts it into tokens */

	argv[argc++] = prog;
	for (tok = strtok_r(store, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
		if (argc >= EAL_ARGS_MAX - 8)
			return -1;
		if (!strcmp(tok, "-l") || !strncmp(tok, "--lcores", 8) || !strcmp(tok, "-c"))
			has_lcores = true;
		if (!strncmp(tok, "--file-prefix", 13))
			has_prefix = true;
		if (!strncmp(tok, "--log-level", 11))
			has_log = true;
		if (!strncmp(tok, "-m", 2) || !strncmp(tok, "--socket-mem", 12))
			has_mem = true;
		if (!strncmp(tok, "--vdev", 6))
			has_vdev = true;
		if (!strcmp(tok, "--no-huge"))
			no_huge = true;
		if (pci && !strcmp(tok, "--no-pci"))
			continue;	/* the port is a PCI device */
		argv[argc++] = tok;
	}
	/* [io] backend = dpdk: the port's device, and room for its mbufs
	 * (without hugepages EAL has only 64 MiB unless told otherwise). */
	if (dpdk && !has_vdev) {
		argv[argc] = store + used;
		used += snprintf(store + used, cap - used, pci ? "-a%s" : "--vdev=%s",
				 c->dpdk_port) + 1;
		argc++;
	}
	if (dpdk && no_huge && !has_mem) {
		argv[argc] = store + used;
		used += snprintf(store + used, cap - used, "-m512") + 1;
		argc++;
	}
	if (!has_lcores) {
		int n = 0;

		if (sched_getaffinity(0, sizeof(cpus), &cpus) == -1)
			return -1;
		for (int i = 0; i < CPU_SETSIZE && n < 200; i++)
			if (CPU_ISSET(i, &cpus))
				n += snprintf(cpulist + n, sizeof(cpulist) - n, "%s%d", n ? "," : "", i);
		argv[argc] = store + used;
		used += snprintf(store + used, cap - used, "--lcores=(0-%u)@(%s)", c->lcores,
				 cpulist) + 1;
		argc++;
	}
	if (!has_prefix) {
		argv[argc] = store + used;
		used += snprintf(store + used, cap - used, "--file-prefix=parleyd-%d",
				 (int)getpid()) + 1;
		argc++;
	}
	if (!has_log) {
		argv[argc] = store + used;
		used += snprintf(store + used, cap - used, "--log-level=lib.eal:warning") + 1;
		argc++;
	}
	if (used > cap)
		return -1;
	argv[argc] = NULL;
	return argc;
}

static int
lcore_entry(void *arg)
{
	struct boot *b = arg;
	unsigned int idx = rte_lcore_index(rte_lcore_id());

	/* Index 0 is the main lcore; workers are 1..N. */
	return engine_lcore_run(b->engine, idx - 1);
}

/* Where the Web service listens and the serveruri its tokens name. With
 * the kernel backend, [web] listen as written; with dpdk, its port on the
 * DPDK address (like [sip] listen), since the lcores' TCP carries it. */
static void
web_where(const struct config *c, char *url, size_t ucap, char *listen, size_t lcap,
	  uint16_t *port)
{
	char host[256], buf[320];

	*port = 0;
	if (config_hostport(c->web_listen, host, sizeof(host), port) != 0)
		*port = 0;
	if (strcmp(c->io_backend, "dpdk") == 0)
		snprintf(buf, sizeof(buf), "%s:%u", c->dpdk_addr, *port);
	else
		snprintf(buf, sizeof(buf), "%s", c->web_listen);
	if (listen != NULL)
		snprintf(listen, lcap, "%s", buf);
	web_url_pick(c->web_url, buf, url, ucap);
}

static void
fill_engine_conf(const struct config *c, struct engine_conf *ec)
{
	memset(ec, 0, sizeof(*ec));
	snprintf(ec->domain, sizeof(ec->domain), "%s", c->domain);
	snprintf(ec->realm, sizeof(ec->realm), "%s", c->realm);
	ec->node_id = c->node_id;
	ec->nlcores = c->lcores;
	config_hostport(c->sip_listen, ec->sip_host, sizeof(ec->sip_host), &ec->sip_port);
	ec->backlog = c->backlog;
	ec->sip_lim.max_msg = c->sip_max_msg;
	ec->sip_lim.max_headers = (uint16_t)c->sip_max_headers;
	ec->max_conns = c->max_conns;
	ec->outq_max = c->outq_max;
	ec->idle_timeout_s = c->idle_timeout_s;
	ec->handshake_timeout_s = c->handshake_timeout_s;
	ec->drain_timeout_s = c->drain_timeout_s;
	ec->challenge = strcasecmp(c->challenge, "www") == 0 ? ENGINE_CHALLENGE_WWW :
			ENGINE_CHALLENGE_PROXY;
	ec->nonce_ttl_s = c->nonce_ttl_s;
	ec->fail_max = c->fail_max;
	ec->fail_window_s = c->fail_window_s;
	ec->register_expires = c->register_expires;
	ec->register_min_expires = c->register_min_expires;
	ec->session_expires = c->session_expires;
	ec->max_dialogs_per_conn = c->max_dialogs_per_conn;
	ec->chat_max = c->chat_max;
	ec->story_max = c->story_max;
	ec->history_max = c->history_max;
	ec->search_limit = c->search_limit;
	ec->rooms_per_dialog = c->rooms_per_dialog;
	ec->ring_size = c->ring_size;
	ec->commit_depth = c->commit_depth;
	ec->durability_unsafe_no_fsync = c->durability_unsafe_no_fsync;
	ec->compliance_cap = c->compliance_enabled ? c->compliance_cap : 0;
	if (c->web_enabled)
		web_where(c, ec->web_url, sizeof(ec->web_url), NULL, 0, &ec->web_port);
	ec->web_max_conns = c->web_max_conns;
	if (strcmp(c->io_backend, "dpdk") != 0)
		ec->web_port = 0;	/* the Web thread listens on a kernel socket */
	snprintf(ec->io_backend, sizeof(ec->io_backend), "%s", c->io_backend);
	snprintf(ec->dpdk_port, sizeof(ec->dpdk_port), "%s", c->dpdk_port);
	snprintf(ec->dpdk_addr, sizeof(ec->dpdk_addr), "%s", c->dpdk_addr);
	snprintf(ec->dpdk_netmask, sizeof(ec->dpdk_netmask), "%s", c->dpdk_netmask);
	snprintf(ec->dpdk_gateway, sizeof(ec->dpdk_gateway), "%s", c->dpdk_gateway);
	ec->dpdk_mtu = c->dpdk_mtu;
	ec->dpdk_idle_sleep_us = c->dpdk_idle_sleep_us;
	ec->dpdk_tcp_buf_mem_mb = c->dpdk_tcp_buf_mem_mb;
}

/* The compliance exporter ([compliance]); its output directory is created
 * only when it is the default under data_dir: a configured one that is
 * missing (an unmounted share) is an error the exporter reports and
 * retries, never silently replaced by a local directory. */
static int
start_exporter(struct boot *b)
{
	struct export_config ec = {
		.output_dir = b->conf.compliance_dir,
		.files_dir = b->conf.files_dir,
		.interval_s = b->conf.compliance_interval_s,
		.per_room_files = b->conf.compliance_per_room,
		.sender_name_attr = b->conf.compliance_sender_attr,
		.node_id = b->conf.node_id,
		.retry_max_ms = b->conf.compliance_retry_max_s * 1000,
	};
	int err;

	if (!b->conf.compliance_enabled) {
		LOG(NOTICE, ROUTER, "[compliance] enabled = false: events are logged here and "
		    "exported by another node");
		return 0;
	}
	if (mkdir_p(b->conf.files_dir, 0750) != 0 ||
	    (b->conf.compliance_dir_default && mkdir_p(b->conf.compliance_dir, 0750) != 0)) {
		LOG(ERR, ROUTER, "[compliance] %s: %s", b->conf.compliance_dir, strerror(errno));
		return -1;
	}
	b->exporter = export_create(b->db, &ec, &err);
	if (b->exporter == NULL || export_start(b->exporter) != 0) {
		LOG(ERR, ROUTER, "[compliance] the exporter cannot start: %s", strerror(-err));
		return -1;
	}
	LOG(NOTICE, ROUTER, "[compliance] exporting to %s every %u s", b->conf.compliance_dir,
	    b->conf.compliance_interval_s);
	return 0;
}

/* Tells the engine how far the exporter got, for the cap on posts. */
static void
update_compliance(struct boot *b)
{
	uint64_t next;

	if (b->exporter == NULL)
		return;
	if (wal_checkpoint(b->db, &next) == 0)
		engine_compliance_floor(b->engine, next);
}

/* The database, the configured rooms in it, and the data plane's first
 * room table. NULL (logged) on failure. */
static struct roomtab *
open_storage(struct boot *b)
{
	struct db_config dc = { .node_id = b->conf.node_id };
	struct catalog_room **rooms;
	struct roomtab *t;
	char err[1024];
	size_t n;
	int rc;

	if (mkdir_p(b->conf.db_dir, 0750) != 0) {
		LOG(ERR, ROUTER, "[storage] db %s: %s", b->conf.db_dir, strerror(errno));
		return NULL;
	}
	b->db = db_open(b->conf.db_dir, &dc, err, sizeof(err));
	if (b->db == NULL) {
		LOG(ERR, ROUTER, "[storage] db %s: %s", b->conf.db_dir, err);
		return NULL;
	}
	if (rooms_boot_sync(b->db, &b->conf, err, sizeof(err)) != 0) {
		LOG(ERR, ROUTER, "%s", err);
		return NULL;
	}
	rc = catalog_load_all(b->db, &rooms, &n);
	if (rc != 0) {
		LOG(ERR, ROUTER, "[storage] the room catalog does not load: %s", strerror(-rc));
		return NULL;
	}
	t = roomtab_build(rooms, n, b->conf.lcores);
	if (t == NULL)
		LOG(ERR, ROUTER, "[storage] the room table cannot be built");
	else
		LOG(NOTICE, ROUTER, "%zu room%s in %s", n, n == 1 ? "" : "s", b->conf.db_dir);
	if (b->conf.durability_unsafe_no_fsync)
		LOG(WARNING, ROUTER, "[storage] durability_unsafe_no_fsync = true: posts are shown "
		    "before they are on disk; a power cut can lose posts members saw. "
		    "For benchmarks only.");
	return t;
}

/* SIGHUP, and the control socket's reload (<res> may be NULL). */
static void
reload(void *arg, struct ctl_reload_result *res)
{
	struct boot *b = arg;
	struct tlsterm_ctx *t = load_tls(&b->conf);
	struct htdigest *u = load_users(&b->conf);

	/* A file that fails to load keeps the running one: never worse off. */
	engine_reload(b->engine, t, u);
	web_reload(b->web);	/* the same files, for the HTTPS side */
	LOG(NOTICE, ROUTER, "SIGHUP: certificate %s, users %s (%zu)",
	    t ? "reloaded" : "kept (load failed)", u ? "reloaded" : "kept (load failed)",
	    u ? htdigest_count(u) : (size_t)0);
	if (res != NULL)
		*res = (struct ctl_reload_result){ t != NULL, u != NULL,
						   u ? htdigest_count(u) : 0 };
	tlsterm_ctx_put(t);
	htdigest_put(u);
}

/* The control socket ([control]), once the engine exists. 0 or -1 (logged). */
static int
start_control(struct boot *b)
{
	struct ctl_config cc = {
		.socket_path = b->conf.control_socket,
		.mode = b->conf.control_mode,
		.uid = (uid_t)b->conf.control_uid,
		.gid = (gid_t)b->conf.control_gid,
		.htdigest = b->conf.htdigest,
		.realm = b->conf.realm,
		.domain = b->conf.domain,
		.node_id = b->conf.node_id,
		.reload = reload,
		.reload_arg = b,
	};
	char err[512];

	b->ctl = ctl_start(&cc, b->engine, b->db, err, sizeof(err));
	if (b->ctl == NULL) {
		LOG(ERR, ROUTER, "%s", err);
		return -1;
	}
	ctl_set_exporter(b->ctl, b->exporter);	/* its lag in parleyctl stats */
	return 0;
}

/* A Web connection accepted by an lcore of the dpdk backend (engine.h). */
static int
web_adopt_cb(void *arg, int fd)
{
	return web_adopt(arg, fd);
}

/* The Web service ([web]): HTTPS file posting on a thread of its own, and
 * the token store that the Channel service issues into (set before the
 * lcores run). An address already taken leaves the node running without it
 * (file tokens answer 503); other failures are configuration errors. 0 or
 * -1 (logged). */
static int
start_web(struct boot *b)
{
	const struct config *c = &b->conf;
	char url[256], listen[320], err[512] = "[web] out of memory";
	bool dpdk = strcmp(c->io_backend, "dpdk") == 0;
	uint16_t port;
	struct web_config wc = {
		.listen = listen, .no_listener = dpdk, .url = url, .files_dir = c->files_dir,
		.cert_file = c->tls_cert, .key_file = c->tls_key,
		.ciphers = c->tls_ciphers[0] ? c->tls_ciphers : NULL,
		.max_upload_bytes = c->web_max_upload,
		.max_header_bytes = c->web_max_header_bytes, .max_headers = c->web_max_headers,
		.max_conns = c->web_max_conns, .header_timeout_s = c->web_header_timeout_s,
		.read_timeout_s = c->web_read_timeout_s, .write_timeout_s = c->web_write_timeout_s,
		.keepalive_timeout_s = c->web_keepalive_timeout_s,
		.keepalive_requests = c->web_keepalive_requests,
		.drain_timeout_s = c->drain_timeout_s,
	};
	int rc = -ENOMEM;

	if (!c->web_enabled)
		return 0;
	web_where(c, url, sizeof(url), listen, sizeof(listen), &port);
	b->ftokens = ftoken_store_create(c->web_token_ttl_s, c->web_max_tokens);
	if (b->ftokens != NULL)
		b->web = web_create(&wc, b->ftokens, b->db, engine_extra_producer(b->engine, 0),
				    &rc, err, sizeof(err));
	if (b->web != NULL && (rc = web_start(b->web)) == 0) {
		engine_set_ftokens(b->engine, b->ftokens);
		if (dpdk)
			engine_set_web(b->engine, web_adopt_cb, b->web);
		return 0;
	}
	if (b->web != NULL)
		snprintf(err, sizeof(err), "[web] cannot start its thread: %s", strerror(-rc));
	web_destroy(b->web);
	b->web = NULL;
	ftoken_store_destroy(b->ftokens);
	b->ftokens = NULL;
	/* Like the SIP listener: a service that was asked for and cannot
	 * start stops the node, rather than running half of it. */
	LOG(ERR, ROUTER, "%s%s", err, rc == -EADDRINUSE ?
	    " (set [web] listen to a free address, or [web] enabled = false)" : "");
	return -1;
}

/* Waits for signals until a drain is requested and every worker returned. */
static void
supervise(struct boot *b, int sfd)
{
	bool draining = false;

	for (;;) {
		struct pollfd p = { .fd = sfd, .events = POLLIN };
		struct signalfd_siginfo si;
		bool busy = false;
		unsigned int id;

		update_compliance(b);
		/* Workers return only once drained. */
		RTE_LCORE_FOREACH_WORKER(id)
			if (rte_eal_get_lcore_state(id) != WAIT)
				busy = true;
		if (draining && !busy)
			return;
		if (poll(&p, 1, 200) <= 0)
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			reload(b, NULL);
		} else if (!draining) {
			LOG(NOTICE, ROUTER, "%s: draining (up to %u s)", strsignal(si.ssi_signo),
			    b->conf.drain_timeout_s);
			engine_drain(b->engine);
			/* The Web service drains alongside: with the dpdk
			 * backend, lcores wait for its connections to end. */
			web_begin_stop(b->web);
			draining = true;
		}
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "set", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "domain", required_argument, NULL, 'D' },
		{ "lcores", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct boot b;	/* large (room table): not on the stack */
	char err[1024], dir[CONFIG_PATH_MAX], ealstore[2048];
	char *sets[64], *owned[64], *eargv[EAL_ARGS_MAX];
	int nowned = 0;
	const char *cfile = NULL;
	struct tlsterm_ctx *tls;
	struct htdigest *users;
	struct roomtab *rooms;
	struct engine_conf ec;
	bool check = false, verbose = false;
	int nsets = 0, opt, eargc, rc, sfd;
	sigset_t sigs;

	while ((opt = getopt_long(argc, argv, "c:s:l:d:vh", opts, NULL)) != -1) {
		char buf[CONFIG_PATH_MAX + 32];

		buf[0] = '\0';
		switch (opt) {
		case 'c': cfile = optarg; break;
		case 'C': check = true; break;
		case 's': if (nsets < 64) sets[nsets++] = optarg; break;
		case 'l': snprintf(buf, sizeof(buf), "sip.listen=%s", optarg); break;
		case 'd': snprintf(buf, sizeof(buf), "server.data_dir=%s", optarg); break;
		case 'D': snprintf(buf, sizeof(buf), "server.domain=%s", optarg); break;
		case 'L': snprintf(buf, sizeof(buf), "dpdk.lcores=%s", optarg); break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (buf[0] != '\0' && nsets < 64)
			sets[nsets++] = owned[nowned++] = strdup(buf);
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	config_defaults(&b.conf);
	if (cfile != NULL && config_load(&b.conf, cfile, err, sizeof(err)) != 0) {
		fprintf(stderr, "parleyd: %s\n", err);
		return 1;
	}
	/* Command-line options override the file. */
	for (int i = 0; i < nsets; i++)
		if (config_set(&b.conf, sets[i], err, sizeof(err)) != 0) {
			fprintf(stderr, "parleyd: %s\n", err);
			return 1;
		}
	if (config_finish(&b.conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "parleyd: %s%s%s\n", cfile ? cfile : "", cfile ? ": " : "", err);
		return 1;
	}
	while (nowned > 0)
		free(owned[--nowned]);
	if (check) {
		printf("parleyd: configuration %s is valid\n", cfile ? cfile : "(embedded default)");
		return 0;
	}
	log_set_level(verbose ? LOG_LVL_DEBUG : log_level_parse(b.conf.log_level));

	/* Signals go to a signalfd read by the main lcore. Blocked before any
	 * thread starts (RocksDB's, the storage thread, the lcores), so that
	 * every thread inherits the mask and none of them dies of SIGTERM. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);

	/* Data directory, certificate, users. */
	if (mkdir_p(b.conf.data_dir, 0750) != 0) {
		LOG(ERR, ROUTER, "[server] data_dir %s: %s", b.conf.data_dir, strerror(errno));
		return 1;
	}
	if (dirname_of(b.conf.tls_cert, dir, sizeof(dir)) != 0 || mkdir_p(dir, 0700) != 0 ||
	    dirname_of(b.conf.tls_key, dir, sizeof(dir)) != 0 || mkdir_p(dir, 0700) != 0) {
		LOG(ERR, ROUTER, "[tls] cannot create the directory of %s: %s", b.conf.tls_cert,
		    strerror(errno));
		return 1;
	}
	if (tlsterm_set_core_dumps(b.conf.tls_core_dumps) != 0)
		LOG(WARNING, ROUTER, "[tls] core_dumps: cannot change: %s", strerror(errno));
	rc = tlscert_ensure(b.conf.tls_cert, b.conf.tls_key, b.conf.domain, 825, err, sizeof(err));
	if (rc < 0) {
		LOG(ERR, ROUTER, "[tls] %s", err);
		return 1;
	}
	LOG(NOTICE, ROUTER, "TLS certificate %s, key %s%s", b.conf.tls_cert, b.conf.tls_key,
	    rc == 1 ? " (self-signed, generated now)" : "");
	tls = load_tls(&b.conf);
	users = load_users(&b.conf);
	if (tls == NULL || users == NULL)
		return 1;
	xccos_global_init();
	rooms = open_storage(&b);
	if (rooms == NULL) {
		db_close(b.db);
		return 1;
	}


	eargc = eal_args(&b.conf, ealstore, sizeof(ealstore), eargv);
	if (eargc < 0) {
		LOG(ERR, ROUTER, "[dpdk] eal: too many arguments");
		return 1;
	}
	if (rte_eal_init(eargc, eargv) < 0) {
		LOG(ERR, ROUTER, "[dpdk] eal: EAL initialisation failed (%s): check the EAL "
		    "arguments \"%s\"", rte_strerror(rte_errno), b.conf.dpdk_eal);
		return 1;
	}
	if (rte_lcore_count() != b.conf.lcores + 1) {
		LOG(ERR, ROUTER, "[dpdk] lcores = %u but EAL has %u lcores (main + workers): "
		    "make the EAL lcore list match", b.conf.lcores, rte_lcore_count());
		rte_eal_cleanup();
		return 1;
	}

	fill_engine_conf(&b.conf, &ec);
	b.engine = engine_create(&ec, tls, users, b.db, rooms, err, sizeof(err));
	tlsterm_ctx_put(tls);
	htdigest_put(users);
	roomtab_put(rooms);
	if (b.engine == NULL) {
		LOG(ERR, ROUTER, "%s", err);
		db_close(b.db);
		rte_eal_cleanup();
		return 1;
	}
	if (start_exporter(&b) != 0) {
		engine_destroy(b.engine);
		db_close(b.db);
		rte_eal_cleanup();
		return 1;
	}
	update_compliance(&b);
	if (start_control(&b) != 0) {
		engine_destroy(b.engine);
		export_destroy(b.exporter);
		db_close(b.db);
		rte_eal_cleanup();
		return 1;
	}
	if (start_web(&b) != 0) {
		ctl_stop(b.ctl);
		engine_destroy(b.engine);
		export_destroy(b.exporter);
		db_close(b.db);
		rte_eal_cleanup();
		return 1;
	}
	LOG(NOTICE, ROUTER, "parleyd: domain %s, SIP over TLS on %s, %u lcore%s, data in %s",
	    b.conf.domain, b.conf.sip_listen, b.conf.lcores, b.conf.lcores == 1 ? "" : "s",
	    b.conf.data_dir);
	rte_eal_mp_remote_launch(lcore_entry, &b, SKIP_MAIN);
	supervise(&b, sfd);
	rte_eal_mp_wait_lcore();
	web_stop(b.web);		/* a storage producer: stops before the storage thread */
	ctl_stop(b.ctl);
	engine_destroy(b.engine);	/* the storage thread writes what is queued */
	web_destroy(b.web);
	ftoken_store_destroy(b.ftokens);
	if (b.exporter != NULL) {
		/* One last export of what the shutdown committed. */
		export_stop(b.exporter);
		export_run_once(b.exporter);
		export_destroy(b.exporter);
	}
	db_close(b.db);
	config_free(&b.conf);
	rte_eal_cleanup();
	LOG(NOTICE, ROUTER, "parleyd: stopped");
	close(sfd);
	return 0;
}
