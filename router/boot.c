/* parleyd's boot steps; see boot.h. Errors that stop the boot say what to
 * fix. Each start either succeeds or undoes its own part before it returns
 * -1; its stop undoes it after success and accepts what a later step took
 * over (the engine takes the certificate, users and rooms). */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include "control/array.h"
#include "control/catalog_sync.h"
#include "control/cmark.h"
#include "control/ctl.h"
#include "control/metrics.h"
#include "dataplane/base/fs.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/ftoken.h"
#include "dataplane/chat/chat.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/engine.h"
#include "dataplane/session/sipconn.h"
#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlsterm.h"
#include "dataplane/web/web.h"
#include "dataplane/xccos/xccos.h"
#include "router/boot.h"
#include "router/rooms_boot.h"
#include "router/sdnotify.h"
#include "storage/catalog.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/htdigest.h"
#include "storage/wal.h"

#define EAL_ARGS_MAX 64

typedef int boot_start_fn(struct boot *b);	/* 0, or -1: logged, own part undone */
typedef void boot_stop_fn(struct boot *b);

struct boot_step {
	const char *name;
	boot_start_fn *start;
	boot_stop_fn *stop;	/* NULL: nothing to undo */
};

/* ---- signals -------------------------------------------------------------- */

/* Signals go to a signalfd read by the main lcore. Blocked before any
 * thread starts (RocksDB's, the storage thread, the lcores), so that every
 * thread inherits the mask and none of them dies of SIGTERM. */
static int
signals_start(struct boot *b)
{
	sigset_t sigs;

	if (sigemptyset(&sigs) == -1 || sigaddset(&sigs, SIGINT) == -1 ||
	    sigaddset(&sigs, SIGTERM) == -1 || sigaddset(&sigs, SIGHUP) == -1 ||
	    sigprocmask(SIG_BLOCK, &sigs, NULL) == -1 ||
	    (b->sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) == -1 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		LOG(ERR, ROUTER, "signals: %s", strerror(errno));
		if (b->sfd != -1)
			close(b->sfd);
		b->sfd = -1;
		return -1;
	}
	return 0;
}

static void
signals_stop(struct boot *b)
{
	close(b->sfd);
	b->sfd = -1;
}

/* ---- data directory, certificate, users ----------------------------------- */

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
		.out_max = c->engine.outq_max,
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
		    c->engine.realm, c->engine.domain);
	return h;
}

/* The directory of <path> exists (0700: it holds the key). 0 or -errno. */
static int
mkdir_above(const char *path)
{
	char dir[CONFIG_PATH_MAX];
	int rc = fs_dirname(path, dir, sizeof(dir));

	return rc != 0 ? rc : fs_mkdir_p(dir, 0700);
}

/* The data directory; the certificate (generated when missing) and the
 * users, loaded for the engine. */
static int
credentials_start(struct boot *b)
{
	const struct config *c = &b->conf;
	char err[1024];
	int rc;

	rc = fs_mkdir_p(c->data_dir, 0750);
	if (rc != 0) {
		LOG(ERR, ROUTER, "[server] data_dir %s: %s", c->data_dir, strerror(-rc));
		return -1;
	}
	rc = mkdir_above(c->tls_cert);
	if (rc == 0)
		rc = mkdir_above(c->tls_key);
	if (rc != 0) {
		LOG(ERR, ROUTER, "[tls] cannot create the directory of %s: %s", c->tls_cert,
		    strerror(-rc));
		return -1;
	}
	if (tlsterm_set_core_dumps(c->tls_core_dumps) != 0)
		LOG(WARNING, ROUTER, "[tls] core_dumps: cannot change: %s", strerror(errno));
	/* 397 days: what browsers and scanners (testssl) accept for a leaf. */
	rc = tlscert_ensure(c->tls_cert, c->tls_key, c->engine.domain, 397, err, sizeof(err));
	if (rc < 0) {
		LOG(ERR, ROUTER, "[tls] %s", err);
		return -1;
	}
	LOG(NOTICE, ROUTER, "TLS certificate %s, key %s%s", c->tls_cert, c->tls_key,
	    rc == 1 ? " (self-signed, generated now)" : "");
	/* Both, so that both say what is wrong. */
	b->tls = load_tls(c);
	b->users = load_users(c);
	if (b->tls == NULL || b->users == NULL) {
		tlsterm_ctx_put(b->tls);
		htdigest_put(b->users);
		b->tls = NULL;
		b->users = NULL;
		return -1;
	}
	return 0;
}

static void
credentials_stop(struct boot *b)
{
	tlsterm_ctx_put(b->tls);
	htdigest_put(b->users);
	b->tls = NULL;
	b->users = NULL;
}

/* ---- storage -------------------------------------------------------------- */

static void
storage_stop(struct boot *b)
{
	roomtab_put(b->rooms);
	b->rooms = NULL;
	db_close(b->db);
	b->db = NULL;
}

/* The database, the configured rooms in it, and the data plane's first
 * room table. libxml2 is set up first: the chat services parse with it. */
static int
storage_start(struct boot *b)
{
	const struct config *c = &b->conf;
	struct db_config dc = { .node_id = c->engine.node_id };
	struct catalog_room **rooms;
	char err[1024];
	size_t n;
	int rc;

	xccos_global_init();
	rc = fs_mkdir_p(c->db_dir, 0750);
	if (rc != 0) {
		LOG(ERR, ROUTER, "[storage] db %s: %s", c->db_dir, strerror(-rc));
		return -1;
	}
	b->db = db_open(c->db_dir, &dc, err, sizeof(err));
	if (b->db == NULL) {
		LOG(ERR, ROUTER, "[storage] db %s: %s", c->db_dir, err);
		return -1;
	}
	if (rooms_boot_sync(b->db, c, err, sizeof(err)) != 0) {
		LOG(ERR, ROUTER, "%s", err);
		goto out_close;
	}
	rc = catalog_load_all(b->db, &rooms, &n);
	if (rc != 0) {
		LOG(ERR, ROUTER, "[storage] the room catalog does not load: %s", strerror(-rc));
		goto out_close;
	}
	b->rooms = roomtab_build(rooms, n, c->engine.nlcores);
	if (b->rooms == NULL) {
		LOG(ERR, ROUTER, "[storage] the room table cannot be built");
		goto out_close;
	}
	/* In an array no room is sequenced here before the array says this
	 * node homes it (ctl_rooms_publish fills the homes in). */
	if (c->array_etcd[0] != '\0')
		roomtab_set_array(b->rooms, c->engine.node_id);
	LOG(NOTICE, ROUTER, "%zu room%s in %s", n, n == 1 ? "" : "s", c->db_dir);
	if (c->engine.durability_unsafe_no_fsync)
		LOG(WARNING, ROUTER, "[storage] durability_unsafe_no_fsync = true: posts are shown "
		    "before they are on disk; a power cut can lose posts members saw. "
		    "For benchmarks only.");
	return 0;

out_close:
	storage_stop(b);
	return -1;
}

/* ---- DPDK's EAL ----------------------------------------------------------- */

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
	const struct engine_conf *e = &c->engine;
	int argc = 0;
	bool has_lcores = false, has_prefix = false, has_log = false;
	bool has_mem = false, has_vdev = false, no_huge = false;
	bool dpdk = strcmp(e->io_backend, "dpdk") == 0 && e->dpdk_port[0] != '\0';
	bool pci = dpdk && dpdk_port_is_pci(e->dpdk_port);
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
				 e->dpdk_port) + 1;
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
		used += snprintf(store + used, cap - used, "--lcores=(0-%u)@(%s)", e->nlcores,
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
eal_start(struct boot *b)
{
	const struct config *c = &b->conf;
	char store[2048], *argv[EAL_ARGS_MAX];
	int argc = eal_args(c, store, sizeof(store), argv);

	if (argc < 0) {
		LOG(ERR, ROUTER, "[dpdk] eal: too many arguments");
		return -1;
	}
	if (rte_eal_init(argc, argv) < 0) {
		LOG(ERR, ROUTER, "[dpdk] eal: EAL initialisation failed (%s): check the EAL "
		    "arguments \"%s\"", rte_strerror(rte_errno), c->dpdk_eal);
		return -1;
	}
	if (rte_lcore_count() != c->engine.nlcores + 1) {
		LOG(ERR, ROUTER, "[dpdk] lcores = %u but EAL has %u lcores (main + workers): "
		    "make the EAL lcore list match", c->engine.nlcores, rte_lcore_count());
		rte_eal_cleanup();
		return -1;
	}
	return 0;
}

static void
eal_stop(struct boot *b)
{
	rte_eal_cleanup();
}

/* ---- the compliance exporter ---------------------------------------------- */

/* [compliance]; its output directory is created only when it is the
 * default under data_dir: a configured one that is missing (an unmounted
 * share) is an error the exporter reports and retries, never silently
 * replaced by a local directory. */
static int
exporter_start(struct boot *b)
{
	const struct config *c = &b->conf;
	struct export_config ec = {
		.output_dir = c->compliance_dir,
		.files_dir = c->files_dir,
		.interval_s = c->compliance_interval_s,
		.per_room_files = c->compliance_per_room,
		.sender_name_attr = c->compliance_sender_attr,
		.node_id = c->engine.node_id,
		.retry_max_ms = c->compliance_retry_max_s * 1000,
	};
	char err[256];
	int rc;

	rc = fs_mkdir_p(c->files_dir, 0750);
	if (rc == 0 && c->compliance_dir_default)
		rc = fs_mkdir_p(c->compliance_dir, 0750);
	if (rc != 0) {
		LOG(ERR, ROUTER, "[compliance] %s: %s", c->compliance_dir, strerror(-rc));
		return -1;
	}
	if (c->array_etcd[0] != '\0') {
		/* Each room's export mark in etcd (control/cmark.h). */
		b->cmark = cmark_open(c->array_etcd, c->array_prefix, c->engine.node_id,
				      c->array_timeout_ms, err, sizeof(err));
		if (b->cmark == NULL) {
			LOG(ERR, ROUTER, "[compliance] export marks: %s", err);
			return -1;
		}
		ec.room_mark = cmark_record;
		ec.room_mark_arg = b->cmark;
		ec.room_home = cmark_home;
		ec.room_cut = cmark_cut;
		ec.hold_unsettled = true;
	}
	b->exporter = export_create(b->db, &ec, &rc);
	if (b->exporter != NULL && (rc = export_start(b->exporter)) != 0) {
		export_destroy(b->exporter);
		b->exporter = NULL;
	}
	if (b->exporter == NULL) {
		LOG(ERR, ROUTER, "[compliance] the exporter cannot start: %s", strerror(-rc));
		cmark_close(b->cmark);
		b->cmark = NULL;
		return -1;
	}
	LOG(NOTICE, ROUTER, "[compliance] exporting to %s every %u s", c->compliance_dir,
	    c->compliance_interval_s);
	return 0;
}

static void
exporter_stop(struct boot *b)
{
	if (b->exporter == NULL)
		return;
	export_stop(b->exporter);
	/* One last export of what the shutdown committed (the engine, stopped
	 * before, wrote what was queued). */
	if (b->served)
		export_run_once(b->exporter);
	export_destroy(b->exporter);
	b->exporter = NULL;
	cmark_close(b->cmark);
	b->cmark = NULL;
}

void
boot_update_compliance(struct boot *b)
{
	uint64_t next;

	if (b->exporter == NULL)
		return;
	if (wal_checkpoint(b->db, &next) == 0)
		engine_compliance_floor(b->engine, next);
}

/* ---- the engine ----------------------------------------------------------- */

/* Where the Web service listens and the serveruri its tokens name. With
 * the kernel backend, [web] listen as written; with dpdk, its port on the
 * DPDK address (like [sip] listen), since the lcores' TCP carries it. 0, or
 * -1 (logged) when the serveruri does not fit in <ucap>. */
static int
web_where(const struct config *c, char *url, size_t ucap, char *listen, size_t lcap,
	  uint16_t *port)
{
	char host[256], buf[320];

	*port = 0;
	if (config_hostport(c->web_listen, host, sizeof(host), port) != 0)
		*port = 0;
	if (strcmp(c->engine.io_backend, "dpdk") == 0)
		snprintf(buf, sizeof(buf), "%s:%u", c->engine.dpdk_addr, *port);
	else
		snprintf(buf, sizeof(buf), "%s", c->web_listen);
	if (listen != NULL)
		snprintf(listen, lcap, "%s", buf);
	if (web_url_pick(c->web_url, buf, url, ucap) != 0) {
		LOG(ERR, ROUTER, "[web] url: the serveruri for %s is longer than %zu bytes", buf,
		    ucap - 1);
		return -1;
	}
	return 0;
}

/* The engine takes its own references to the certificate, the users and
 * the rooms: ours go. Its configuration is the table's, but for the Web
 * service's address (which depends on the backend). */
static int
engine_start(struct boot *b)
{
	struct engine_conf *ec = &b->conf.engine;
	char err[1024];

	if (b->conf.web_enabled &&
	    web_where(&b->conf, ec->web_url, sizeof(ec->web_url), NULL, 0, &ec->web_port) != 0)
		return -1;
	if (strcmp(ec->io_backend, "dpdk") != 0)
		ec->web_port = 0;	/* the Web thread listens on a kernel socket */
	sipconn_register();		/* SIP on every connection */
	if (chat_register() != 0)	/* Group Chat on every lcore and dialog */
		snprintf(err, sizeof(err), "cannot register the Group Chat services");
	else
		b->engine = engine_create(ec, b->tls, b->users, b->db, b->rooms, err,
					  sizeof(err));
	credentials_stop(b);
	roomtab_put(b->rooms);
	b->rooms = NULL;
	if (b->engine == NULL) {
		LOG(ERR, ROUTER, "%s", err);
		return -1;
	}
	boot_update_compliance(b);
	return 0;
}

static void
engine_stop(struct boot *b)
{
	engine_destroy(b->engine);	/* the storage thread writes what is queued */
	b->engine = NULL;
}

/* ---- the control socket --------------------------------------------------- */

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

void
boot_reload(struct boot *b)
{
	reload(b, NULL);
}

/* [control], once the engine exists. */
static int
control_start(struct boot *b)
{
	const struct config *c = &b->conf;
	struct ctl_config cc = {
		.socket_path = c->control_socket,
		.mode = c->control_mode,
		.uid = (uid_t)c->control_uid,
		.gid = (gid_t)c->control_gid,
		.htdigest = c->htdigest,
		.realm = c->engine.realm,
		.domain = c->engine.domain,
		.node_id = c->engine.node_id,
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

static void
control_stop(struct boot *b)
{
	ctl_stop(b->ctl);
	b->ctl = NULL;
}

/* ---- the Prometheus endpoint ---------------------------------------------- */

/* [metrics] listen, when set: GET /metrics on a thread of its own. */
static int
metrics_boot_start(struct boot *b)
{
	char err[512];

	if (b->conf.metrics_listen[0] == '\0')
		return 0;
	b->metrics = metrics_start(b->ctl, b->conf.metrics_listen, err, sizeof(err));
	if (b->metrics == NULL) {
		LOG(ERR, ROUTER, "%s", err);
		return -1;
	}
	return 0;
}

static void
metrics_boot_stop(struct boot *b)
{
	metrics_stop(b->metrics);
	b->metrics = NULL;
}

/* ---- the Web service ------------------------------------------------------ */

/* A Web connection accepted by an lcore of the dpdk backend (engine.h). */
static int
web_adopt_cb(void *arg, int fd)
{
	return web_adopt(arg, fd);
}

static void
web_service_stop(struct boot *b)
{
	web_stop(b->web);	/* a storage producer: stops before the storage thread */
	web_destroy(b->web);
	b->web = NULL;
	ftoken_store_destroy(b->ftokens);
	b->ftokens = NULL;
}

/* [web]: HTTPS file posting on a thread of its own, and the token store
 * that the Channel service issues into (set before the lcores run). A
 * service that was asked for and cannot start stops the node (an address
 * already taken included), rather than running half of it. */
static int
web_service_start(struct boot *b)
{
	const struct config *c = &b->conf;
	char url[256], listen[320], err[512] = "[web] out of memory";
	bool dpdk = strcmp(c->engine.io_backend, "dpdk") == 0;
	uint16_t port;
	struct web_config wc = {
		.listen = listen, .no_listener = dpdk, .url = url, .files_dir = c->files_dir,
		.cert_file = c->tls_cert, .key_file = c->tls_key,
		.ciphers = c->tls_ciphers[0] ? c->tls_ciphers : NULL,
		.max_upload_bytes = c->web_max_upload,
		.max_header_bytes = c->web_max_header_bytes, .max_headers = c->web_max_headers,
		.max_conns = c->engine.web_max_conns, .header_timeout_s = c->web_header_timeout_s,
		.read_timeout_s = c->web_read_timeout_s, .write_timeout_s = c->web_write_timeout_s,
		.keepalive_timeout_s = c->web_keepalive_timeout_s,
		.keepalive_requests = c->web_keepalive_requests,
		.drain_timeout_s = c->engine.drain_timeout_s,
	};
	int rc = -ENOMEM;

	if (!c->web_enabled)
		return 0;
	if (web_where(c, url, sizeof(url), listen, sizeof(listen), &port) != 0)
		return -1;
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
	web_service_stop(b);
	LOG(ERR, ROUTER, "%s%s", err, rc == -EADDRINUSE ?
	    " (set [web] listen to a free address, or [web] enabled = false)" : "");
	return -1;
}

/* ---- the lcores ----------------------------------------------------------- */

static int
lcore_entry(void *arg)
{
	struct boot *b = arg;
	unsigned int idx = rte_lcore_index(rte_lcore_id());

	/* Index 0 is the main lcore; workers are 1..N. */
	return engine_lcore_run(b->engine, idx - 1);
}

static int
lcores_start(struct boot *b)
{
	const struct config *c = &b->conf;
	int rc;

	LOG(NOTICE, ROUTER, "parleyd: domain %s, SIP over TLS on %s, %u lcore%s, data in %s",
	    c->engine.domain, c->sip_listen, c->engine.nlcores,
	    c->engine.nlcores == 1 ? "" : "s", c->data_dir);
	rc = rte_eal_mp_remote_launch(lcore_entry, b, SKIP_MAIN);
	if (rc != 0) {	/* none started */
		LOG(ERR, ROUTER, "[dpdk] the lcores cannot start: %s", strerror(-rc));
		return -1;
	}
	b->served = true;
	return 0;
}

/* Workers return once drained (engine_drain). */
static void
lcores_stop(struct boot *b)
{
	rte_eal_mp_wait_lcore();
}

/* ---- systemd ------------------------------------------------------------ */

static void
lcore_noop(struct lcore_ctx *lc, void *arg)
{
}

bool
boot_lcores_alive(struct boot *b, int timeout_ms)
{
	for (uint32_t i = 0; i < b->conf.engine.nlcores; i++) {
		int rc = engine_lcore_call(b->engine, i, lcore_noop, NULL, timeout_ms);

		/* -ENODEV: its loop returned, which it does only once drained. */
		if (rc == -ETIMEDOUT)
			return false;
	}
	return true;
}

/* Last: every lcore has turned its loop once (so its listener is polled:
 * the kernel backend's listeners exist since engine_create, the dpdk
 * backend's once the lcore runs), the database is open, the control socket
 * and the Web service listen. Then systemd (Type=notify) hears READY=1. */
static int
notify_start(struct boot *b)
{
	char state[CONFIG_NAME_MAX + 64];
	int rc;

	if (!boot_lcores_alive(b, 10000)) {
		LOG(ERR, ROUTER, "an lcore did not start its loop within 10 s");
		return -1;
	}
	snprintf(state, sizeof(state), "READY=1\nSTATUS=serving SIP over TLS on %s",
		 b->conf.sip_listen);
	rc = sdnotify(state);
	if (rc < 0)
		LOG(WARNING, ROUTER, "systemd: NOTIFY_SOCKET: %s", strerror(-rc));
	else if (rc > 0)
		LOG(INFO, ROUTER, "systemd: told READY=1");
	return 0;
}

static void
notify_stop(struct boot *b)
{
	sdnotify("STOPPING=1");	/* again, if a drain said it already */
}

/* ---- the table ------------------------------------------------------------ */

/* The node array ([array] etcd set): joins through etcd before the lcores
 * serve anyone, so that a node whose etcd is unreachable or whose node_id
 * is live elsewhere stops here (exit 1) rather than running standalone.
 * Without [array] etcd: nothing (a standalone node). */
static int
array_step_start(struct boot *b)
{
	const struct config *c = &b->conf;
	struct array_config ac = {
		.etcd = c->array_etcd, .prefix = c->array_prefix, .node_id = c->engine.node_id,
		.advertise_sip = c->array_advertise_sip, .peer_listen = c->array_peer_listen,
		.lease_ttl_s = c->array_lease_ttl_s, .keepalive_s = c->array_keepalive_s,
		.timeout_ms = c->array_timeout_ms,
		.claim_delay_ms = c->array_claim_delay_ms,
		.failover_grace_ms = c->array_failover_grace_ms,
		.ca = c->array_ca, .cert = c->array_cert, .key = c->array_key,
		.peer_frame_max = c->array_peer_frame_max,
		.peer_queue_max = c->array_peer_queue_max,
		.peer_name_prefix = c->array_peer_name_prefix,
		.web_cert = c->tls_cert,
	};
	char err[2048], url[256] = "";
	uint16_t port;
	int rc;

	if (c->array_etcd[0] == '\0')
		return 0;
	if (b->web != NULL && web_where(c, url, sizeof(url), NULL, 0, &port) == 0)
		ac.web_url = url;
	b->array = array_start(&ac, b->engine, err, sizeof(err));
	if (b->array == NULL) {
		LOG(ERR, ROUTER, "%s", err);
		return -1;
	}
	if (b->web != NULL && (rc = array_web_attach(b->array, b->web)) != 0) {
		LOG(ERR, ROUTER, "[array] the Web service cannot fetch files from other nodes: %s",
		    strerror(-rc));
		array_stop(b->array);
		b->array = NULL;
		return -1;
	}
	ctl_set_array(b->ctl, b->array);
	return 0;
}

/* After the lcores returned: leaves the array (revokes the lease). */
static void
array_step_stop(struct boot *b)
{
	if (b->array == NULL)
		return;
	ctl_set_array(b->ctl, NULL);
	array_stop(b->array);
	b->array = NULL;
}

/* The array's catalog: caught up (or seeded) before the lcores serve. */
static int
catalog_step_start(struct boot *b)
{
	const struct config *c = &b->conf;
	struct catalog_sync_config cc = {
		.etcd = c->array_etcd, .prefix = c->array_prefix, .node_id = c->engine.node_id,
		.timeout_ms = c->array_timeout_ms, .wait_ms = c->array_catalog_timeout_ms,
		.record_max = c->array_catalog_record_max,
	};
	char err[2048];

	if (b->array == NULL)
		return 0;
	if (catalog_sync_start(b->ctl, &cc, err, sizeof(err)) != 0) {
		LOG(ERR, ROUTER, "%s", err);
		return -1;
	}
	return 0;
}

static void
catalog_step_stop(struct boot *b)
{
	catalog_sync_stop(b->ctl);
}

static const struct boot_step steps[] = {
	{ "signals",		signals_start,		signals_stop },
	{ "credentials",	credentials_start,	credentials_stop },
	{ "storage",		storage_start,		storage_stop },
	{ "eal",		eal_start,		eal_stop },
	{ "exporter",		exporter_start,		exporter_stop },
	{ "engine",		engine_start,		engine_stop },
	{ "control",		control_start,		control_stop },
	{ "metrics",		metrics_boot_start,	metrics_boot_stop },
	{ "web",		web_service_start,	web_service_stop },
	{ "array",		array_step_start,	array_step_stop },
	{ "catalog",		catalog_step_start,	catalog_step_stop },
	{ "lcores",		lcores_start,		lcores_stop },
	{ "notify",		notify_start,		notify_stop },
};

#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

int
boot_start(struct boot *b)
{
	b->sfd = -1;
	for (b->nstarted = 0; b->nstarted < NSTEPS; b->nstarted++) {
		LOG(DEBUG, ROUTER, "boot: starting %s", steps[b->nstarted].name);
		if (steps[b->nstarted].start(b) != 0) {
			LOG(DEBUG, ROUTER, "boot: %s failed", steps[b->nstarted].name);
			boot_stop(b);
			return -1;
		}
	}
	return 0;
}

void
boot_stop(struct boot *b)
{
	while (b->nstarted > 0) {
		const struct boot_step *s = &steps[--b->nstarted];

		LOG(DEBUG, ROUTER, "boot: stopping %s", s->name);
		if (s->stop != NULL)
			s->stop(b);
	}
}
