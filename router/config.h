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

struct config {
	/* [server] */
	char domain[CONFIG_NAME_MAX];
	char data_dir[CONFIG_PATH_MAX];
	uint32_t node_id;
	uint32_t drain_timeout_s;
	char log_level[16];

	/* [sip] */
	char sip_listen[CONFIG_NAME_MAX];	/* host:port */
	uint32_t sip_max_msg;			/* bytes */
	uint32_t sip_max_headers;
	uint32_t register_expires;		/* granted when the client asks for more or none */
	uint32_t register_min_expires;
	uint32_t session_expires;		/* INVITE dialogs */
	uint32_t max_dialogs_per_conn;

	/* [tls] */
	char tls_cert[CONFIG_PATH_MAX];
	char tls_key[CONFIG_PATH_MAX];
	char tls_ciphers[CONFIG_NAME_MAX];
	uint32_t tls_session_cache;
	uint32_t tls_session_timeout_s;
	bool tls_tickets;
	bool tls_core_dumps;			/* false: PR_SET_DUMPABLE 0 (no secrets in cores) */
	char tls_record_layer[16];		/* parley | openssl */

	/* [auth] */
	char htdigest[CONFIG_PATH_MAX];
	char realm[CONFIG_NAME_MAX];
	char challenge[16];			/* proxy (407) | www (401) */
	uint32_t nonce_ttl_s;
	uint32_t fail_max;			/* failed logins per window, per address and per user */
	uint32_t fail_window_s;

	/* [net] (kernel backend and limits common to both backends) */
	uint32_t max_conns;			/* per lcore */
	uint32_t outq_max;			/* bytes queued per connection before it is dropped */
	uint32_t idle_timeout_s;		/* no bytes in either direction */
	uint32_t handshake_timeout_s;		/* TCP accept to TLS established */
	uint32_t backlog;

	/* [chat] */
	uint32_t chat_max;			/* messageSizeLimit: bytes of a post's text */
	uint32_t story_max;
	uint32_t history_max;			/* messages one history request returns at most */
	uint32_t search_limit;
	uint32_t rooms_per_dialog;
	uint32_t ring_size;			/* lcore-to-lcore ring entries (power of two) */

	/* [storage] */
	char db_dir[CONFIG_PATH_MAX];		/* default data_dir/db */
	uint32_t commit_depth;
	bool durability_unsafe_no_fsync;	/* benchmarks only: posts visible before fsync */

	/* [compliance] */
	bool compliance_enabled;		/* run the exporter on this node */
	char compliance_dir[CONFIG_PATH_MAX];	/* default data_dir/compliance (created) */
	bool compliance_dir_default;		/* set by config_finish */
	uint32_t compliance_interval_s;
	bool compliance_per_room;
	char compliance_sender_attr[16];
	uint32_t compliance_cap;		/* unexported events before posts are refused */
	uint32_t compliance_retry_max_s;	/* longest wait between failed exports */
	char files_dir[CONFIG_PATH_MAX];	/* uploaded files: data_dir/files */

	/* [web] (the HTTPS file service, dataplane/http/web.h) */
	bool web_enabled;
	char web_listen[CONFIG_NAME_MAX];	/* host:port */
	char web_url[CONFIG_NAME_MAX];		/* serveruri; "" = https://<listen>/filestore/ */
	uint32_t web_max_upload;		/* bytes; larger uploads get 413 */
	uint32_t web_max_header_bytes;		/* request line + headers */
	uint32_t web_max_headers;		/* header lines */
	uint32_t web_max_conns;
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

	/* [io] */
	char io_backend[16];			/* kernel | dpdk */

	/* [dpdk] */
	char dpdk_eal[CONFIG_PATH_MAX];
	char dpdk_port[CONFIG_NAME_MAX];	/* PCI address or vdev spec (dpdk backend) */
	char dpdk_addr[64];			/* IPv4 address of the port */
	char dpdk_netmask[64];
	char dpdk_gateway[64];
	uint32_t dpdk_mtu;
	uint32_t dpdk_idle_sleep_us;
	uint32_t dpdk_tcp_buf_mem_mb;		/* TCP send+receive buffers per lcore */
	uint32_t lcores;			/* engine lcores (workers) */

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
 * data_dir) and checks cross-key rules. 0 or -1 with the reason in <err>. */
int config_finish(struct config *c, char *err, size_t errlen);

/* Frees what config_load() allocated (room member lists). */
void config_free(struct config *c);

/* Splits "host:port" / "[v6]:port". 0 or -1. */
int config_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
