/* parleyd configuration: an INI file (libinih) plus command-line overrides.
 *
 * Every key has a default and a range; config_load() reports the first bad
 * key as "FILE:LINE: [section] key: reason". Boot thread only; the result is
 * read-only once the lcores start (SIGHUP reloads only the certificate and
 * the htdigest file, whose paths do not change). */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dataplane/engine/engine.h"

#define CONFIG_PATH_MAX	512
#define CONFIG_NAME_MAX	256
#define CONFIG_ROOMS_MAX 256

/* A room declared as [room:NAME]; created on start when absent. */
struct config_room {
	char name[CONFIG_NAME_MAX];
	char description[CONFIG_NAME_MAX];
	char topic[CONFIG_NAME_MAX];
	char privacy[16];		/* open | closed | secret */
	char *members;			/* comma-separated SIP URIs, malloc'd or NULL */
	char *managers;
	bool filepost;
	bool logged;
	bool invite;
};

/* The keys of the engine ([server] domain and node_id, [sip], [auth] but
 * its file, [net], [chat], [io], most of [dpdk]) are read straight into
 * <engine>; config_finish() derives the rest of it (realm, the SIP address,
 * the compliance cap), and boot the Web address. The other keys belong to
 * boot and the services it starts. */
struct config {
	struct engine_conf engine;

	/* [server] (domain, node_id, drain_timeout_s: engine) */
	char data_dir[CONFIG_PATH_MAX];
	char log_level[16];

	/* [sip] (limits, expiries: engine) */
	char sip_listen[CONFIG_NAME_MAX];	/* host:port; engine.sip_host, sip_port */

	/* [tls] */
	char tls_cert[CONFIG_PATH_MAX];
	char tls_key[CONFIG_PATH_MAX];
	char tls_ciphers[CONFIG_NAME_MAX];
	uint32_t tls_session_cache;
	uint32_t tls_session_timeout_s;
	bool tls_tickets;
	bool tls_core_dumps;			/* false: PR_SET_DUMPABLE 0 (no secrets in cores) */
	char tls_record_layer[16];		/* parley | openssl */

	/* [auth] (realm, challenge, nonces, login failures: engine) */
	char htdigest[CONFIG_PATH_MAX];

	/* [storage] (commit_depth, sync_interval_us, durability_unsafe_no_fsync: engine) */
	char db_dir[CONFIG_PATH_MAX];		/* default data_dir/db */

	/* [compliance] (cap_events: engine.compliance_cap, 0 when disabled) */
	bool compliance_enabled;		/* run the exporter on this node */
	char compliance_dir[CONFIG_PATH_MAX];	/* default data_dir/compliance (created) */
	bool compliance_dir_default;		/* set by config_finish */
	uint32_t compliance_interval_s;
	bool compliance_per_room;
	char compliance_sender_attr[16];
	uint32_t compliance_retry_max_s;	/* longest wait between failed exports */
	char files_dir[CONFIG_PATH_MAX];	/* uploaded files: data_dir/files */

	/* [web] (the HTTPS file service, dataplane/web/web.h; max_conns: engine) */
	bool web_enabled;
	char web_listen[CONFIG_NAME_MAX];	/* host:port */
	char web_url[CONFIG_NAME_MAX];		/* serveruri; "" = https://<listen>/filestore/ */
	uint32_t web_max_upload;		/* bytes; larger uploads get 413 */
	uint32_t web_max_header_bytes;		/* request line + headers */
	uint32_t web_max_headers;		/* header lines */
	uint32_t web_header_timeout_s;		/* TLS handshake + request head */
	uint32_t web_read_timeout_s;		/* idle while receiving a body */
	uint32_t web_write_timeout_s;		/* no progress while sending */
	uint32_t web_keepalive_timeout_s;	/* idle between requests */
	uint32_t web_keepalive_requests;	/* requests per connection */
	uint32_t web_token_ttl_s;		/* file tokens expire after */
	uint32_t web_max_tokens;		/* tokens alive at once */

	/* [control] */
	char control_socket[CONFIG_PATH_MAX];
	char control_socket_mode[8];		/* octal, "0660" */
	char control_socket_owner[CONFIG_NAME_MAX];	/* user name or uid; "" keeps ours */
	char control_socket_group[CONFIG_NAME_MAX];	/* group name or gid; "" keeps ours */
	uint32_t control_mode;			/* derived: socket_mode */
	int64_t control_uid, control_gid;	/* derived: -1 keeps the process's */

	/* [metrics] */
	char metrics_listen[CONFIG_NAME_MAX];	/* host:port of GET /metrics; "" = off */

	/* [dpdk] (the port, its address, lcores: engine) */
	char dpdk_eal[CONFIG_PATH_MAX];

	/* [array] (the node array through etcd, control/array.h); etcd empty:
	 * a standalone node */
	char array_etcd[1024];			/* endpoints: URL[,URL...] */
	char array_prefix[CONFIG_NAME_MAX];	/* "" = /parley/<domain> (set by config_finish) */
	char array_peer_listen[CONFIG_NAME_MAX];	/* host:port of the node-to-node port */
	char array_advertise_sip[CONFIG_NAME_MAX];	/* "" = [sip] listen (config_finish) */
	char array_ca[CONFIG_PATH_MAX];		/* the cluster CA (peer links) */
	char array_cert[CONFIG_PATH_MAX];	/* "" = [tls] cert (config_finish) */
	char array_key[CONFIG_PATH_MAX];	/* "" = [tls] key */
	uint32_t array_lease_ttl_s;
	uint32_t array_keepalive_s;
	uint32_t array_timeout_ms;		/* one etcd request */
	uint32_t array_failover_grace_ms;	/* others wait this long for a replica's takeover */
	uint32_t array_claim_delay_ms;		/* after joining, before claiming homes */
	uint32_t array_catalog_timeout_ms;	/* a catalog change waits for every node */
	uint32_t array_catalog_record_max;	/* bytes of one catalog record */
	uint32_t array_peer_frame_max;		/* largest peer frame accepted */
	uint32_t array_peer_queue_max;		/* unwritten bytes per peer before a cut */
	char array_peer_name_prefix[CONFIG_NAME_MAX];	/* peer certs name <prefix><id>; "" off */

	/* [room:NAME] */
	struct config_room rooms[CONFIG_ROOMS_MAX];
	uint32_t nrooms;

	/* where keys came from, for messages */
	char source[CONFIG_PATH_MAX];
};

/* Fills <c> with the embedded defaults. */
void config_defaults(struct config *c);

/* Reads <path> over the current values of <c>. 0, or -1 with the reason
 * (naming the file, line and key) in <err>. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/* Applies "section.key=value" (room keys: "room:NAME.key=value"). 0 or -1
 * with the reason in <err>. */
int config_set(struct config *c, const char *assignment, char *err, size_t errlen);

/* Derives what depends on other keys (realm = domain, paths under
 * data_dir, the engine's SIP address and compliance cap) and checks
 * cross-key rules. 0 or -1 with the reason in <err>. */
int config_finish(struct config *c, char *err, size_t errlen);

/* Frees what config_load() allocated (room member lists). */
void config_free(struct config *c);

/* Every key of the table, one line each: section, name, type (string,
 * integer, boolean, host:port, choice), default, allowed values ("1..65535",
 * "a|b|c", "true|false" or empty) and a one-line description, separated by
 * tabs. The source of parleyd.ini(5) and of the shipped parleyd.ini
 * (dist/gen_config.py), so that neither drifts from the code. */
void config_dump_keys(FILE *f);

/* Splits "host:port" / "[v6]:port". 0 or -1. */
int config_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
