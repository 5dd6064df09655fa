/* parleyd configuration: table-driven keys over libinih. See config.h. */
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/config.h"

enum key_type {
	KEY_STR,
	KEY_UINT,	/* an unsigned integer of the field's width, in min..max */
	KEY_BOOL,
	KEY_HOSTPORT,
	KEY_ENUM,	/* string restricted to <choices> */
	KEY_CHOICE,	/* one of <choices>, stored as its index (an enum) */
};

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t off;
	size_t size;		/* of the field */
	const char *dflt;
	uint32_t min, max;	/* for KEY_UINT */
	const char *choices;	/* for KEY_ENUM, KEY_CHOICE: "a|b|c" */
	const char *help;	/* one line for parleyd.ini(5) and the shipped file */
};

#define FIELD(fld) offsetof(struct config, fld), sizeof(((struct config *)0)->fld)
#define S(sec, nm, fld, d, h) { sec, nm, KEY_STR, FIELD(fld), d, 0, 0, NULL, h }
#define U(sec, nm, fld, d, lo, hi, h) { sec, nm, KEY_UINT, FIELD(fld), d, lo, hi, NULL, h }
#define B(sec, nm, fld, d, h) { sec, nm, KEY_BOOL, FIELD(fld), d, 0, 0, NULL, h }
#define H(sec, nm, fld, d, h) { sec, nm, KEY_HOSTPORT, FIELD(fld), d, 0, 0, NULL, h }
#define E(sec, nm, fld, d, ch, h) { sec, nm, KEY_ENUM, FIELD(fld), d, 0, 0, ch, h }
#define C(sec, nm, fld, d, ch, h) { sec, nm, KEY_CHOICE, FIELD(fld), d, 0, 0, ch, h }

_Static_assert(ENGINE_CHALLENGE_PROXY == 0 && ENGINE_CHALLENGE_WWW == 1,
	       "[auth] challenge's choices are in the order of enum engine_challenge");

/* engine.*: read straight into the engine's configuration. */
static const struct key keys[] = {
	S("server", "domain", engine.domain, "example.com",
	  "SIP domain served; user names are user@domain"),
	S("server", "data_dir", data_dir, "./var",
	  "directory for the database, TLS files, users, control socket and compliance "
	  "output (created 0750)"),
	U("server", "node_id", engine.node_id, "1", 1, 65535,
	  "this node's number, in compliance file names and the Channel service URI"),
	U("server", "drain_timeout_s", engine.drain_timeout_s, "5", 0, 3600,
	  "seconds a SIGTERM drain waits for connections to finish"),
	E("server", "log_level", log_level, "notice", "err|warning|notice|info|debug",
	  "log level at start (parleyctl loglevel changes it)"),

	H("sip", "listen", sip_listen, "127.0.0.1:5061",
	  "address and port of SIP over TLS"),
	U("sip", "max_message", engine.sip_lim.max_msg, "65536", 1024, 16 << 20,
	  "bytes; a larger SIP message closes the connection"),
	U("sip", "max_headers", engine.sip_lim.max_headers, "64", 8, 128,
	  "header lines per SIP message"),
	U("sip", "register_expires", engine.register_expires, "3600", 60, 86400,
	  "seconds granted to a REGISTER at most"),
	U("sip", "register_min_expires", engine.register_min_expires, "60", 1, 86400,
	  "seconds; a REGISTER asking for less gets 423"),
	U("sip", "session_expires", engine.session_expires, "1800", 90, 86400,
	  "seconds of a Lookup/Channel dialog's session timer (refresher=uac)"),
	U("sip", "max_dialogs_per_conn", engine.max_dialogs_per_conn, "16", 1, 1024,
	  "INVITE dialogs one connection may hold"),

	S("tls", "cert", tls_cert, "",
	  "PEM certificate chain; cert and key both empty: generated into data_dir/tls"),
	S("tls", "key", tls_key, "",
	  "PEM private key of cert"),
	S("tls", "ciphers", tls_ciphers, "",
	  "TLS 1.2 cipher list (OpenSSL syntax); empty: the built-in AEAD list"),
	U("tls", "session_cache", tls_session_cache, "20000", 0, 10000000,
	  "TLS sessions cached for resumption"),
	U("tls", "session_timeout_s", tls_session_timeout_s, "7200", 1, 604800,
	  "seconds a cached TLS session or ticket stays valid"),
	B("tls", "tickets", tls_tickets, "true",
	  "offer TLS session tickets"),
	B("tls", "core_dumps", tls_core_dumps, "false",
	  "false: the process is not dumpable (no keys in core dumps)"),
	E("tls", "record_layer", tls_record_layer, "parley", "parley|openssl",
	  "parley: quiet TLS 1.3 connections use Parley's record layer and free OpenSSL's "
	  "state; openssl: OpenSSL throughout"),

	S("auth", "htdigest", htdigest, "",
	  "Apache htdigest user file; empty: data_dir/users.htdigest"),
	S("auth", "realm", engine.realm, "",
	  "Digest realm; empty: the domain"),
	C("auth", "challenge", engine.challenge, "proxy", "proxy|www",
	  "proxy: 407 Proxy-Authenticate (what pidgin-sipe answers); www: 401"),
	U("auth", "nonce_ttl_s", engine.nonce_ttl_s, "300", 10, 86400,
	  "seconds a Digest nonce stays valid"),
	U("auth", "fail_max", engine.fail_max, "10", 1, 1000000,
	  "failed logins per window, per source address and per user, before 403"),
	U("auth", "fail_window_s", engine.fail_window_s, "60", 1, 86400,
	  "seconds of the failed-login window"),

	U("net", "max_conns", engine.max_conns, "60000", 1, 10000000,
	  "connections per lcore; more are refused at accept"),
	U("net", "outq_max", engine.outq_max, "1048576", 4096, 1 << 30,
	  "bytes queued for one peer before it is dropped as a slow reader"),
	U("net", "idle_timeout_s", engine.idle_timeout_s, "3600", 5, 604800,
	  "seconds without traffic before a connection is closed"),
	U("net", "handshake_timeout_s", engine.handshake_timeout_s, "10", 1, 3600,
	  "seconds for the TLS handshake"),
	U("net", "backlog", engine.backlog, "4096", 16, 65535,
	  "listen(2) backlog of the SIP socket"),

	U("chat", "message_size_limit", engine.chat_max, "8192", 16, 1 << 20,
	  "bytes of a post's text (getserverinfo messageSizeLimit); larger: 413"),
	U("chat", "story_size_limit", engine.story_max, "65536", 16, 1 << 20,
	  "bytes of a story post's text"),
	U("chat", "history_max", engine.history_max, "200", 0, 100000,
	  "messages one bccontext returns at most"),
	U("chat", "search_limit", engine.search_limit, "999", 1, 100000,
	  "rooms one chansrch returns at most"),
	U("chat", "rooms_per_dialog", engine.rooms_per_dialog, "500", 1, 100000,
	  "rooms one Channel dialog may join"),
	U("chat", "ring_size", engine.ring_size, "16384", 64, 1 << 22,
	  "entries per lcore-to-lcore ring (a power of two)"),
	U("chat", "posts_inflight_max", engine.posts_inflight_max, "8192", 1, 1 << 20,
	  "posts and joins one lcore has sent to their rooms and not yet seen stored; more are "
	  "refused (xccos 503), so an overload never builds a backlog"),
	U("chat", "post_queue_ms", engine.post_queue_ms, "500", 0, 600000,
	  "while an lcore's posts take longer than this from receipt to stored, it refuses new "
	  "ones (xccos 503) until they are fast again; 0: no bound"),

	S("storage", "db", db_dir, "",
	  "RocksDB directory; empty: data_dir/db"),
	U("storage", "commit_depth", engine.commit_depth, "8192", 16, 1 << 20,
	  "storage requests in flight per lcore"),
	U("storage", "sync_interval_us", engine.sync_interval_us, "0", 0, 100000,
	  "least time between two fsync'd group commits: posts that come meanwhile wait and "
	  "share the next fsync (up to this much later); 0: off"),
	B("storage", "durability_unsafe_no_fsync", engine.durability_unsafe_no_fsync, "false",
	  "benchmarks only: posts are shown before they are on disk"),

	B("compliance", "enabled", compliance_enabled, "true",
	  "must stay true: false is refused at start (no other node exports this node's events)"),
	S("compliance", "output_dir", compliance_dir, "",
	  "where the XML files go; empty: data_dir/compliance (created); a configured one "
	  "must exist"),
	U("compliance", "interval_s", compliance_interval_s, "60", 1, 86400,
	  "seconds between compliance files"),
	B("compliance", "per_room_files", compliance_per_room, "false",
	  "one file per room and interval"),
	E("compliance", "sender_name_attr", compliance_sender_attr, "userName", "userName|UserName",
	  "userName (OCS 2007 R2) or UserName (Lync)"),
	U("compliance", "cap_events", engine.compliance_cap, "1000000", 1, 4000000000u,
	  "unexported events at which new posts are refused (503)"),
	U("compliance", "retry_max_s", compliance_retry_max_s, "60", 1, 3600,
	  "longest wait between retries while the output directory fails"),

	B("web", "enabled", web_enabled, "true",
	  "serve file posting over HTTPS"),
	H("web", "listen", web_listen, "127.0.0.1:8443",
	  "address and port of the HTTPS file service"),
	S("web", "url", web_url, "",
	  "serveruri in file tokens; empty: https://<listen>/filestore/"),
	U("web", "max_upload_bytes", web_max_upload, "104857600", 0, 4000000000u,
	  "largest upload; larger: 413"),
	U("web", "max_header_bytes", web_max_header_bytes, "16384", 1024, 1 << 20,
	  "request line and headers; larger: 431"),
	U("web", "max_headers", web_max_headers, "64", 8, 1000,
	  "header lines per request"),
	U("web", "max_conns", engine.web_max_conns, "1024", 1, 1000000,
	  "HTTPS connections at once; more are closed at accept"),
	U("web", "header_timeout_s", web_header_timeout_s, "10", 1, 3600,
	  "seconds for the TLS handshake and the request head"),
	U("web", "read_timeout_s", web_read_timeout_s, "30", 1, 3600,
	  "seconds an upload body may stall"),
	U("web", "write_timeout_s", web_write_timeout_s, "30", 1, 3600,
	  "seconds a download may make no progress"),
	U("web", "keepalive_timeout_s", web_keepalive_timeout_s, "15", 1, 3600,
	  "seconds idle between requests"),
	U("web", "keepalive_requests", web_keepalive_requests, "100", 1, 1000000,
	  "requests per connection"),
	U("web", "token_ttl_s", web_token_ttl_s, "300", 1, 86400,
	  "seconds a file token stays valid"),
	U("web", "max_tokens", web_max_tokens, "10000", 1, 10000000,
	  "file tokens alive at once; past it getfutok/getfdtok answer 503"),

	S("control", "socket", control_socket, "",
	  "path of the control socket; empty: data_dir/parleyd.sock"),
	S("control", "socket_mode", control_socket_mode, "0660",
	  "octal mode of the control socket"),
	S("control", "socket_owner", control_socket_owner, "",
	  "user name or uid owning the socket; empty: parleyd's own"),
	S("control", "socket_group", control_socket_group, "",
	  "group name or gid of the socket (e.g. parley, for the operators)"),

	S("metrics", "listen", metrics_listen, "",
	  "host:port of the plain-HTTP Prometheus endpoint GET /metrics; empty: off"),

	E("io", "backend", engine.io_backend, "kernel", "kernel|dpdk",
	  "kernel: kernel sockets; dpdk: a DPDK port with Parley's user-space TCP"),
	E("io", "kernel_io", engine.kernel_io, "epoll", "epoll|io_uring",
	  "kernel backend: epoll (a system call per read and per send) or io_uring (one per "
	  "loop turn; Linux 6.0 or later, else epoll with a warning)"),
	U("io", "kernel_nap_us", engine.kernel_nap_us, "0", 0, 10000,
	  "epoll: when events come close together, an idle lcore naps this long and takes all "
	  "that came at once (fewer wake-ups; events up to this much later); 0: off"),
	U("io", "uring_entries", engine.uring_entries, "4096", 64, 32768,
	  "io_uring: submission queue entries per lcore (completions: 4 times as many)"),
	U("io", "uring_bufs", engine.uring_bufs, "1024", 16, 32768,
	  "io_uring: receive buffers per lcore, a power of two"),
	U("io", "uring_buf_size", engine.uring_buf_size, "8192", 1024, 1 << 20,
	  "io_uring: bytes of one receive buffer"),

	S("dpdk", "eal", dpdk_eal, "--no-huge --no-pci --no-shconf",
	  "DPDK EAL arguments"),
	S("dpdk", "port", engine.dpdk_port, "",
	  "dpdk backend: a vdev spec (given as --vdev) or a PCI address (-a)"),
	S("dpdk", "addr", engine.dpdk_addr, "",
	  "dpdk backend: our IPv4 address on the port"),
	S("dpdk", "netmask", engine.dpdk_netmask, "255.255.255.0",
	  "dpdk backend: netmask of addr"),
	S("dpdk", "gateway", engine.dpdk_gateway, "",
	  "dpdk backend: next hop for other subnets; empty: none"),
	U("dpdk", "mtu", engine.dpdk_mtu, "1500", 576, 9000,
	  "dpdk backend: MTU of the port"),
	U("dpdk", "idle_sleep_us", engine.dpdk_idle_sleep_us, "200", 0, 100000,
	  "dpdk backend: longest sleep of an idle lcore; 0: busy-poll"),
	U("dpdk", "tcp_buf_mem_mb", engine.dpdk_tcp_buf_mem_mb, "2048", 0, 1 << 20,
	  "dpdk backend: TCP buffer memory per lcore"),
	U("dpdk", "tcp_delack_us", engine.dpdk_tcp_delack_us, "40000", 1000, 200000,
	  "dpdk backend: longest delay of an ACK that carries no data (a client's 200 is "
	  "acknowledged by the next delivery when one follows within it)"),
	U("dpdk", "lcores", engine.nlcores, "1", 1, 64,
	  "engine lcores (threads); rooms are spread over them"),

	S("array", "etcd", array_etcd, "",
	  "URL[,URL...] of etcd's client endpoints (HTTP/JSON gateway); empty: standalone node"),
	S("array", "prefix", array_prefix, "",
	  "etcd key prefix of the array; empty: /parley/<domain>"),
	S("array", "peer_listen", array_peer_listen, "",
	  "ADDR:PORT of the node-to-node port (peer links); empty: none"),
	S("array", "advertise_sip", array_advertise_sip, "",
	  "HOST:PORT clients are redirected to; empty: [sip] listen"),
	S("array", "ca", array_ca, "",
	  "PEM: the cluster CA; peers must present a certificate it signed"),
	S("array", "cert", array_cert, "",
	  "PEM: this node's certificate for peer links; empty: [tls] cert"),
	S("array", "key", array_key, "",
	  "PEM: the key of cert; empty: [tls] key"),
	U("array", "lease_ttl_s", array_lease_ttl_s, "5", 2, 3600,
	  "seconds: a node that stops renewing its etcd lease leaves the array after this"),
	U("array", "keepalive_s", array_keepalive_s, "1", 1, 1800,
	  "seconds between lease renewals (below lease_ttl_s)"),
	U("array", "timeout_ms", array_timeout_ms, "1000", 50, 60000,
	  "one etcd request, per endpoint tried"),
	U("array", "claim_delay_ms", array_claim_delay_ms, "3000", 0, 600000,
	  "ms a node waits after joining before it claims rooms without a home, so that "
	  "nodes started together share the rooms"),
	C("array", "alone", engine.array_alone, "refuse", "refuse|unreplicated",
	  "a home with no other live node to keep a copy of its rooms: refuse posts (503, "
	  "retryable; never accepted and lost) or take them durable on this node only"),
	U("array", "failover_grace_ms", array_failover_grace_ms, "2000", 0, 600000,
	  "ms a node waits before claiming a room whose home died when the room's replica "
	  "is still live (the replica claims at once: it holds the room's copy)"),
	U("array", "catalog_timeout_ms", array_catalog_timeout_ms, "5000", 100, 600000,
	  "a room, user or invite command waits this long for every live node to apply it"),
	U("array", "catalog_record_max", array_catalog_record_max, "1048576", 4096, 16777216,
	  "bytes: the largest catalog record (a room with its members) kept in etcd"),
	U("array", "peer_frame_max", array_peer_frame_max, "1048576", 4096, 16777216,
	  "bytes: the largest peer frame accepted"),
	U("array", "peer_queue_max", array_peer_queue_max, "8388608", 65536, 1073741824,
	  "bytes waiting for one peer before its link is cut and resynchronised"),
	S("array", "peer_name_prefix", array_peer_name_prefix, "",
	  "when set, a peer's certificate must name it <prefix><node_id> (SAN DNS or CN)"),
};

static const char *const type_names[] = {
	[KEY_STR] = "string", [KEY_UINT] = "integer", [KEY_BOOL] = "boolean",
	[KEY_HOSTPORT] = "host:port", [KEY_ENUM] = "choice", [KEY_CHOICE] = "choice",
};

void
config_dump_keys(FILE *f)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		char allowed[64] = "";

		if (k->type == KEY_UINT)
			snprintf(allowed, sizeof(allowed), "%u..%u", k->min, k->max);
		else if (k->type == KEY_BOOL)
			snprintf(allowed, sizeof(allowed), "true|false");
		fprintf(f, "%s\t%s\t%s\t%s\t%s\t%s\n", k->section, k->name, type_names[k->type],
			k->dflt, k->choices != NULL ? k->choices : allowed, k->help);
	}
}

static const struct key *
find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcasecmp(keys[i].section, section) == 0 &&
		    strcasecmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool
section_known(const char *section)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcasecmp(keys[i].section, section) == 0)
			return true;
	return false;
}

static int
parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") ||
		 !strcmp(v, "0"))
		*out = false;
	else
		return -1;
	return 0;
}

/* The index of <v> in <choices> ("a|b|c", any case), or -1. */
static int
choice_index(const char *choices, const char *v)
{
	size_t vl = strlen(v);
	const char *p = choices;

	for (int i = 0; *p; i++) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);

		if (l == vl && strncasecmp(p, v, l) == 0)
			return i;
		if (!bar)
			break;
		p = bar + 1;
	}
	return -1;
}

static bool
enum_ok(const char *choices, const char *v)
{
	return choice_index(choices, v) >= 0;
}

/* <n> into the unsigned integer field <base> of <size> bytes. */
static void
store_uint(void *base, size_t size, uint64_t n)
{
	switch (size) {
	case sizeof(uint16_t): *(uint16_t *)base = (uint16_t)n; break;
	case sizeof(uint32_t): *(uint32_t *)base = (uint32_t)n; break;
	case sizeof(uint64_t): *(uint64_t *)base = n; break;
	default: abort();	/* a table row on a field of another width */
	}
}

int
config_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon;
	size_t hl;
	char *end;
	unsigned long p;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = rb - s - 1;
		s++;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hl = colon - s;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p == 0 || p > 65535)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int
set_key(struct config *c, const struct key *k, const char *v, char *why, size_t whylen)
{
	char *base = (char *)c + k->off;

	switch (k->type) {
	case KEY_STR:
	case KEY_ENUM:
	case KEY_HOSTPORT:
		if (strlen(v) >= k->size) {
			snprintf(why, whylen, "value longer than %zu bytes", k->size - 1);
			return -1;
		}
		if (k->type == KEY_ENUM && !enum_ok(k->choices, v)) {
			snprintf(why, whylen, "'%s' is not one of %s", v, k->choices);
			return -1;
		}
		if (k->type == KEY_HOSTPORT) {
			char host[256];
			uint16_t port;

			if (config_hostport(v, host, sizeof(host), &port) != 0) {
				snprintf(why, whylen, "'%s' is not host:port", v);
				return -1;
			}
		}
		strcpy(base, v);
		return 0;
	case KEY_CHOICE: {
		int i = choice_index(k->choices, v);

		if (i < 0) {
			snprintf(why, whylen, "'%s' is not one of %s", v, k->choices);
			return -1;
		}
		store_uint(base, k->size, (uint64_t)i);
		return 0;
	}
	case KEY_UINT: {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-') {
			snprintf(why, whylen, "'%s' is not a whole number", v);
			return -1;
		}
		if (n < k->min || n > k->max) {
			snprintf(why, whylen, "%llu is outside %u..%u", n, k->min, k->max);
			return -1;
		}
		store_uint(base, k->size, n);
		return 0;
	}
	case KEY_BOOL:
		if (parse_bool(v, (bool *)base) != 0) {
			snprintf(why, whylen, "'%s' is not true or false", v);
			return -1;
		}
		return 0;
	}
	return -1;
}

void
config_defaults(struct config *c)
{
	char why[128];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (set_key(c, &keys[i], keys[i].dflt, why, sizeof(why)) != 0)
			abort();	/* a default outside its own range is a bug */
	/* The embedded default declares one open room. */
	c->nrooms = 1;
	snprintf(c->rooms[0].name, sizeof(c->rooms[0].name), "Lobby");
	snprintf(c->rooms[0].description, sizeof(c->rooms[0].description),
		 "Open room for everyone");
	snprintf(c->rooms[0].privacy, sizeof(c->rooms[0].privacy), "open");
	c->rooms[0].logged = true;
	c->rooms[0].filepost = true;
	c->rooms[0].invite = true;
}

static struct config_room *
room_for(struct config *c, const char *name, char *why, size_t whylen)
{
	if (name[0] == '\0') {
		snprintf(why, whylen, "room section needs a name: [room:NAME]");
		return NULL;
	}
	for (uint32_t i = 0; i < c->nrooms; i++)
		if (strcasecmp(c->rooms[i].name, name) == 0)
			return &c->rooms[i];
	if (c->nrooms == CONFIG_ROOMS_MAX) {
		snprintf(why, whylen, "more than %d rooms declared", CONFIG_ROOMS_MAX);
		return NULL;
	}
	if (strlen(name) >= CONFIG_NAME_MAX) {
		snprintf(why, whylen, "room name too long");
		return NULL;
	}
	struct config_room *r = &c->rooms[c->nrooms++];

	memset(r, 0, sizeof(*r));
	strcpy(r->name, name);
	strcpy(r->privacy, "open");
	r->logged = true;
	r->invite = true;
	return r;
}

static int
set_room_key(struct config *c, const char *room, const char *name, const char *v, char *why,
	     size_t whylen)
{
	struct config_room *r = room_for(c, room, why, whylen);
	char **list = NULL;

	if (r == NULL)
		return -1;
	if (!strcasecmp(name, "description") || !strcasecmp(name, "topic")) {
		char *dst = !strcasecmp(name, "topic") ? r->topic : r->description;

		if (strlen(v) >= CONFIG_NAME_MAX) {
			snprintf(why, whylen, "value longer than %d bytes", CONFIG_NAME_MAX - 1);
			return -1;
		}
		strcpy(dst, v);
		return 0;
	}
	if (!strcasecmp(name, "privacy")) {
		if (!enum_ok("open|closed|secret", v)) {
			snprintf(why, whylen, "'%s' is not one of open|closed|secret", v);
			return -1;
		}
		snprintf(r->privacy, sizeof(r->privacy), "%s", v);
		for (char *p = r->privacy; *p; p++)
			*p = (char)(*p | 0x20);
		return 0;
	}
	if (!strcasecmp(name, "filepost") || !strcasecmp(name, "logged") ||
	    !strcasecmp(name, "invite")) {
		bool *dst = !strcasecmp(name, "filepost") ? &r->filepost :
			    !strcasecmp(name, "logged") ? &r->logged : &r->invite;

		if (parse_bool(v, dst) != 0) {
			snprintf(why, whylen, "'%s' is not true or false", v);
			return -1;
		}
		return 0;
	}
	if (!strcasecmp(name, "members"))
		list = &r->members;
	else if (!strcasecmp(name, "managers"))
		list = &r->managers;
	if (list == NULL) {
		snprintf(why, whylen, "unknown key (room keys: description, topic, privacy, "
			 "members, managers, filepost, logged, invite)");
		return -1;
	}
	free(*list);
	*list = strdup(v);
	if (*list == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

/* One key from any source. 0 or -1 with <why>. */
static int
apply(struct config *c, const char *section, const char *name, const char *value, char *why,
      size_t whylen)
{
	const struct key *k;

	if (strncasecmp(section, "room:", 5) == 0)
		return set_room_key(c, section + 5, name, value, why, whylen);
	k = find_key(section, name);
	if (k == NULL) {
		snprintf(why, whylen, section_known(section) ? "unknown key" : "unknown section");
		return -1;
	}
	return set_key(c, k, value, why, whylen);
}

struct load_state {
	struct config *c;
	char *err;
	size_t errlen;
	const char *path;
	int failed;
	FILE *f;
	int lineno;	/* Debian's inih passes no line number: count them here */
};

static char *
read_line(char *str, int num, void *stream)
{
	struct load_state *st = stream;
	char *r = fgets(str, num, st->f);

	if (r != NULL)
		st->lineno++;
	return r;
}

static int
ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *st = user;
	int lineno = st->lineno;
	char why[256];

	if (st->failed)
		return 0;
	if (name == NULL) {	/* a section header alone: check the section exists */
		if (strncasecmp(section, "room:", 5) == 0) {
			if (room_for(st->c, section + 5, why, sizeof(why)) != NULL)
				return 1;
		} else if (section_known(section)) {
			return 1;
		} else {
			snprintf(why, sizeof(why), "unknown section");
		}
		snprintf(st->err, st->errlen, "%s:%d: [%s]: %s", st->path, lineno, section, why);
		st->failed = 1;
		return 0;
	}
	if (apply(st->c, section, name, value, why, sizeof(why)) != 0) {
		snprintf(st->err, st->errlen, "%s:%d: [%s] %s: %s", st->path, lineno, section,
			 name, why);
		st->failed = 1;
		return 0;
	}
	return 1;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct load_state st = { c, err, errlen, path, 0, NULL, 0 };
	int rc;

	st.f = fopen(path, "r");
	if (st.f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(read_line, &st, ini_cb, &st);
	fclose(st.f);
	if (st.failed)
		return -1;
	if (rc != 0) {
		snprintf(err, errlen, "%s:%d: syntax error", path, rc);
		return -1;
	}
	snprintf(c->source, sizeof(c->source), "%s", path);
	return 0;
}

int
config_set(struct config *c, const char *assignment, char *err, size_t errlen)
{
	char buf[1024], why[256];
	char *dot, *eq;

	if (strlen(assignment) >= sizeof(buf)) {
		snprintf(err, errlen, "--set %.40s...: too long", assignment);
		return -1;
	}
	strcpy(buf, assignment);
	eq = strchr(buf, '=');
	if (eq == NULL) {
		snprintf(err, errlen, "--set %s: expected section.key=value", assignment);
		return -1;
	}
	*eq = '\0';
	dot = strrchr(buf, '.');
	if (dot == NULL || dot == buf) {
		snprintf(err, errlen, "--set %s: expected section.key=value", assignment);
		return -1;
	}
	*dot = '\0';
	if (apply(c, buf, dot + 1, eq + 1, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "--set [%s] %s: %s", buf, dot + 1, why);
		return -1;
	}
	return 0;
}

static int
path_under(char *dst, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(dst, cap, "%s/%s", dir, name);

	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

/* A user or group name, or a number; -1 for "". 0 or -1. */
static int
owner_id(const char *s, bool group, int64_t *out)
{
	char *end;
	unsigned long long n;

	*out = -1;
	if (s[0] == '\0')
		return 0;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (*end == '\0' && errno == 0 && s[0] != '-' && n < UINT32_MAX) {
		*out = (int64_t)n;
		return 0;
	}
	if (group) {
		struct group *g = getgrnam(s);

		if (g != NULL)
			*out = g->gr_gid;
	} else {
		struct passwd *p = getpwnam(s);

		if (p != NULL)
			*out = p->pw_uid;
	}
	return *out == -1 ? -1 : 0;
}

/* [control]: mode, owner and group of the socket. */
static int
control_finish(struct config *c, char *err, size_t errlen)
{
	const char *m = c->control_socket_mode;
	char *end;
	unsigned long mode;

	errno = 0;
	mode = strtoul(m, &end, 8);
	if (m[0] == '\0' || *end != '\0' || errno != 0 || mode > 0777 || m[0] == '-') {
		snprintf(err, errlen, "[control] socket_mode: '%s' is not an octal mode (0660)", m);
		return -1;
	}
	c->control_mode = (uint32_t)mode;
	if (owner_id(c->control_socket_owner, false, &c->control_uid) != 0) {
		snprintf(err, errlen, "[control] socket_owner: no user '%s'",
			 c->control_socket_owner);
		return -1;
	}
	if (owner_id(c->control_socket_group, true, &c->control_gid) != 0) {
		snprintf(err, errlen, "[control] socket_group: no group '%s'",
			 c->control_socket_group);
		return -1;
	}
	return 0;
}

/* [array]: what defaults to other keys, and the rules between them. Only
 * when [array] etcd is set: otherwise the node is standalone and the other
 * [array] keys are not read. */
static int
array_finish(struct config *c, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;

	if (c->array_etcd[0] == '\0') {
		/* Other [array] keys without etcd would leave a node the
		 * operator meant for the array running standalone. */
		if (c->array_prefix[0] || c->array_peer_listen[0] || c->array_advertise_sip[0] ||
		    c->array_ca[0] || c->array_cert[0] || c->array_key[0]) {
			snprintf(err, errlen, "[array] etcd: not set, but other [array] keys are: "
				 "set etcd = URL[,URL...] to join the array, or remove [array]");
			return -1;
		}
		return 0;
	}
	for (const char *p = c->array_etcd; *p != '\0';) {
		size_t n = strcspn(p, ",");

		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		if (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0) {
			snprintf(err, errlen, "[array] etcd: '%.*s' is not an http:// or https:// URL "
				 "(URL[,URL...])", (int)n, p);
			return -1;
		}
		p += n + (p[n] == ',');
	}
	if (c->array_prefix[0] == '\0') {
		if (strlen(c->engine.domain) + 8 >= sizeof(c->array_prefix)) {
			snprintf(err, errlen, "[array] prefix: /parley/<domain> is too long: set one");
			return -1;
		}
		snprintf(c->array_prefix, sizeof(c->array_prefix), "/parley/%.*s",
			 (int)(sizeof(c->array_prefix) - 9), c->engine.domain);
	}
	if (c->array_prefix[0] != '/' || c->array_prefix[strlen(c->array_prefix) - 1] == '/') {
		snprintf(err, errlen, "[array] prefix: '%s' must start with / and not end with one",
			 c->array_prefix);
		return -1;
	}
	if (c->array_advertise_sip[0] == '\0')
		snprintf(c->array_advertise_sip, sizeof(c->array_advertise_sip), "%s",
			 c->sip_listen);
	if (config_hostport(c->array_advertise_sip, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "[array] advertise_sip: '%s' is not host:port",
			 c->array_advertise_sip);
		return -1;
	}
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
		snprintf(err, errlen, "[array] advertise_sip: %s is where clients are sent: set it "
			 "to an address they can reach, not %s", c->array_advertise_sip, host);
		return -1;
	}
	if (c->array_peer_listen[0] != '\0' &&
	    config_hostport(c->array_peer_listen, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "[array] peer_listen: '%s' is not host:port",
			 c->array_peer_listen);
		return -1;
	}
	if (c->array_peer_listen[0] != '\0' && c->array_ca[0] == '\0') {
		snprintf(err, errlen, "[array] ca: required with peer_listen (the nodes "
			 "authenticate each other with certificates of the cluster CA)");
		return -1;
	}
	if ((c->array_cert[0] == '\0') != (c->array_key[0] == '\0')) {
		snprintf(err, errlen, "[array] %s: set both cert and key, or neither ([tls]'s)",
			 c->array_cert[0] ? "key" : "cert");
		return -1;
	}
	if (c->array_cert[0] == '\0') {
		snprintf(c->array_cert, sizeof(c->array_cert), "%s", c->tls_cert);
		snprintf(c->array_key, sizeof(c->array_key), "%s", c->tls_key);
	}
	if (c->array_keepalive_s >= c->array_lease_ttl_s) {
		snprintf(err, errlen, "[array] keepalive_s: %u is not below lease_ttl_s %u (the "
			 "lease would expire between two renewals)", c->array_keepalive_s,
			 c->array_lease_ttl_s);
		return -1;
	}
	return 0;
}

int
config_finish(struct config *c, char *err, size_t errlen)
{
	struct engine_conf *e = &c->engine;

	if (e->domain[0] == '\0' || strchr(e->domain, ' ') || strchr(e->domain, '@')) {
		snprintf(err, errlen, "[server] domain: '%s' is not a domain name", e->domain);
		return -1;
	}
	if (c->data_dir[0] == '\0') {
		snprintf(err, errlen, "[server] data_dir: must not be empty");
		return -1;
	}
	if (e->realm[0] == '\0')
		snprintf(e->realm, sizeof(e->realm), "%s", e->domain);
	if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
		snprintf(err, errlen, "[tls] %s: set both cert and key, or neither",
			 c->tls_cert[0] ? "key" : "cert");
		return -1;
	}
	if (c->tls_cert[0] == '\0' &&
	    (path_under(c->tls_cert, sizeof(c->tls_cert), c->data_dir, "tls/cert.pem") ||
	     path_under(c->tls_key, sizeof(c->tls_key), c->data_dir, "tls/key.pem"))) {
		snprintf(err, errlen, "[server] data_dir: path too long");
		return -1;
	}
	if (c->htdigest[0] == '\0' &&
	    path_under(c->htdigest, sizeof(c->htdigest), c->data_dir, "users.htdigest")) {
		snprintf(err, errlen, "[server] data_dir: path too long");
		return -1;
	}
	if (c->control_socket[0] == '\0' &&
	    path_under(c->control_socket, sizeof(c->control_socket), c->data_dir,
		       "parleyd.sock")) {
		snprintf(err, errlen, "[server] data_dir: path too long");
		return -1;
	}
	if (strcmp(c->compliance_sender_attr, "userName") != 0 &&
	    strcmp(c->compliance_sender_attr, "UserName") != 0) {
		snprintf(err, errlen, "[compliance] sender_name_attr: '%s' is not userName or UserName "
			 "(the case matters: it is the XML attribute's name)", c->compliance_sender_attr);
		return -1;
	}
	c->compliance_dir_default = c->compliance_dir[0] == '\0';
	if (c->compliance_dir[0] == '\0' &&
	    path_under(c->compliance_dir, sizeof(c->compliance_dir), c->data_dir, "compliance")) {
		snprintf(err, errlen, "[server] data_dir: path too long");
		return -1;
	}
	if (c->files_dir[0] == '\0' &&
	    path_under(c->files_dir, sizeof(c->files_dir), c->data_dir, "files")) {
		snprintf(err, errlen, "[server] data_dir: path too long");
		return -1;
	}
	if (c->metrics_listen[0] != '\0') {
		char host[256];
		uint16_t port;

		if (config_hostport(c->metrics_listen, host, sizeof(host), &port) != 0) {
			snprintf(err, errlen, "[metrics] listen: '%s' is not host:port "
				 "(or empty: off)", c->metrics_listen);
			return -1;
		}
	}
	if (control_finish(c, err, errlen) != 0)
		return -1;
	if (c->db_dir[0] == '\0' && path_under(c->db_dir, sizeof(c->db_dir), c->data_dir, "db")) {
		snprintf(err, errlen, "[server] data_dir: path too long");
		return -1;
	}
	if (e->uring_bufs & (e->uring_bufs - 1)) {
		snprintf(err, errlen, "[io] uring_bufs: %u is not a power of two", e->uring_bufs);
		return -1;
	}
	if (e->ring_size & (e->ring_size - 1)) {
		snprintf(err, errlen, "[chat] ring_size: %u is not a power of two", e->ring_size);
		return -1;
	}
	if (e->register_min_expires > e->register_expires) {
		snprintf(err, errlen, "[sip] register_min_expires: %u is above register_expires %u",
			 e->register_min_expires, e->register_expires);
		return -1;
	}
	/* Checked as host:port when set: cannot fail here. */
	if (config_hostport(c->sip_listen, e->sip_host, sizeof(e->sip_host), &e->sip_port) != 0)
		abort();
	/* No other node exports this one's events (in an array a room's home
	 * exports its CHAT events, and each node the joins, parts, history
	 * views and files it logs): with the exporter off they would pile up
	 * unexported without bound while every post still waits for them.
	 * Refused rather than that, standalone or in an array. */
	if (!c->compliance_enabled) {
		snprintf(err, errlen, "[compliance] enabled = false: no other node exports this "
			 "node's events (%s), so they would pile up unexported; remove the key: "
			 "every node exports what it logs",
			 c->array_etcd[0] != '\0' ? "in an array each node exports the posts of "
			 "the rooms it homes and the other events of its own users" :
			 "a standalone node");
		return -1;
	}
	return array_finish(c, err, errlen);	/* after [tls]'s defaults */
}

void
config_free(struct config *c)
{
	for (uint32_t i = 0; i < c->nrooms; i++) {
		free(c->rooms[i].members);
		free(c->rooms[i].managers);
		c->rooms[i].members = NULL;
		c->rooms[i].managers = NULL;
	}
}
