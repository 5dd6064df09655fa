/* An etcd v3 client over etcd's HTTP/JSON gateway (etcd 3.4: POST /v3/...),
 * with libcurl and jansson: no gRPC stack.
 *
 * The gateway speaks JSON whose keys and values are base64 and whose 64-bit
 * numbers are strings ("revision":"42"); this file hides both. A client
 * holds one or more endpoints ("http://127.0.0.1:2379,http://10.0.0.2:2379"):
 * a request goes to the endpoint that answered last, and when that one
 * cannot be reached (connection refused, timeout, an etcd without a leader)
 * to the next, each at most once per request. An answer from etcd that
 * refuses the request (a lease not found, a bad request) is final: it is
 * the same on every member.
 *
 * Threads: a client is used by one thread at a time (it owns one curl
 * handle and its connections); open one per thread. Calls block for at
 * most the client's timeout per endpoint tried. Never on an lcore.
 *
 * Errors: every call returns 0 or a negative errno, and writes a reason
 * into <err> that names the endpoint and what etcd or the network said:
 *	-EHOSTUNREACH	no endpoint answered (each one's failure in <err>)
 *	-ENOENT		etcd answered "not found" (a lease that expired)
 *	-EEXIST		etcd_create(): the key exists
 *	-ECANCELED	etcd_cas(): the key changed since it was read
 *	-ERANGE		etcd_watch(): the revision to start from was compacted
 *	-EREMOTEIO	etcd refused the request (its message in <err>)
 *	-EPROTO		an answer that is not what the gateway sends
 *	-ENOMEM, -EINVAL */
#ifndef PARLEY_ETCD_H
#define PARLEY_ETCD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct etcd;

#define ETCD_ENDPOINTS_MAX	16
#define ETCD_BODY_MAX		(16u << 20)	/* larger answers are refused */

/* One key and its value as etcd holds them. <key> and <value> are
 * NUL-terminated copies (the value may hold other NULs; <value_len> is its
 * length). */
struct etcd_kv {
	char	*key;
	char	*value;
	size_t	value_len;
	int64_t	create_revision;
	int64_t	mod_revision;
	int64_t	version;
	int64_t	lease;		/* 0: none */
};

/* What a range read found; etcd_kvs_free() releases it. */
struct etcd_kvs {
	struct etcd_kv	*kv;
	size_t		n;
	int64_t		revision;	/* the store's revision at the read */
};

/* ---- the client -------------------------------------------------------- */

/* A client for <endpoints> (comma-separated http:// or https:// URLs;
 * spaces around commas are ignored). <timeout_ms> bounds one request to one
 * endpoint, connection included. NULL with the reason in <err>. */
struct etcd *etcd_open(const char *endpoints, unsigned int timeout_ms, char *err,
			 size_t errlen);
/* Accepts NULL. */
void etcd_close(struct etcd *e);

/* The endpoint that answered last (or the first), for messages. */
const char *etcd_endpoint(const struct etcd *e);

/* Sets <key> to <value> (<len> bytes), bound to <lease> (0: none). */
int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
	     char *err, size_t errlen);

/* Creates <key> = <value> bound to <lease> only if the key does not exist
 * (one transaction: compare create_revision == 0). 0 when created;
 * -EEXIST when it exists, with the present key in *<existing> (when not
 * NULL; free it with etcd_kv_free). */
int etcd_create(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
		struct etcd_kv *existing, char *err, size_t errlen);

/* Reads <key>, or with <prefix> every key that starts with it, into
 * *<out> (sorted by key). */
int etcd_get(struct etcd *e, const char *key, bool prefix, struct etcd_kvs *out, char *err,
	     size_t errlen);

/* Deletes <key> (or every key under it with <prefix>); *<deleted> (may be
 * NULL) is how many. */
int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted, char *err,
		size_t errlen);

/* A lease of <ttl_s> seconds: its id in *<id> and the TTL etcd granted in
 * *<granted_s> (may be NULL). */
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted_s, char *err,
		     size_t errlen);

/* Renews <id> once; *<ttl_s> (may be NULL) is its TTL again. -ENOENT when
 * the lease has expired or was revoked (its keys are gone). */
int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl_s, char *err, size_t errlen);

/* Revokes <id>: every key bound to it is deleted. -ENOENT when it was
 * gone already. */
int etcd_lease_revoke(struct etcd *e, int64_t id, char *err, size_t errlen);

/* Puts <n> keys in one transaction (at most ETCD_BATCH_MAX; etcd's
 * default --max-txn-ops is 128): <keys>[i] = <values>[i] (<lens>[i]
 * bytes), no lease. All or none. */
#define ETCD_BATCH_MAX	64
int etcd_put_batch(struct etcd *e, const char *const *keys, const char *const *values,
		   const size_t *lens, size_t n, char *err, size_t errlen);

/* Read-modify-write: sets <key> to <value> (<len> bytes; <value> NULL
 * deletes the key) bound to <lease>, only if the key's mod_revision is
 * still <expect> (0: the key must not exist). One transaction. 0 with the
 * store's revision after the change in *<revision> (may be NULL): the
 * key's new mod_revision; -ECANCELED when another writer changed the key
 * since (read it again and retry). */
int etcd_cas(struct etcd *e, const char *key, int64_t expect, const void *value, size_t len,
	     int64_t lease, int64_t *revision, char *err, size_t errlen);

/* A transaction: if every comparison of <compare> holds, every operation
 * of <success> runs (both JSON arrays, taken; build them with the
 * functions below). 0 with the store's revision after it in *<revision>
 * (may be NULL); -ECANCELED when a comparison failed (nothing ran). */
int etcd_txn(struct etcd *e, json_t *compare, json_t *success, int64_t *revision, char *err,
	     size_t errlen);
/* A comparison: <key>'s mod_revision is <rev> (0: the key does not
 * exist). */
json_t *etcd_cmp_mod(const char *key, int64_t rev);
/* Operations: put <key> = <value> (<len> bytes, no lease); delete <key>. */
json_t *etcd_op_put(const char *key, const void *value, size_t len);
/* The same, the key bound to lease <lease> (0: none). */
json_t *etcd_op_put_lease(const char *key, const void *value, size_t len, int64_t lease);
json_t *etcd_op_delete(const char *key);

/* One change a watch saw. For a delete, <kv> holds the key and its
 * mod_revision only. */
struct etcd_event {
	bool		deleted;
	struct etcd_kv	kv;
};

/* Called with the events of one watch answer (<n> may be 0: the watch was
 * created). A nonzero return ends the watch with that value. */
typedef int etcd_watch_fn(void *arg, const struct etcd_event *ev, size_t n);

/* Watches every key under <prefix> from revision <start> on, calling <fn>
 * for each answer, until <stop> (may be NULL) turns true (-ECANCELED; seen
 * within about a second, at libcurl's progress callback), <max_ms> (0: no
 * limit) have passed or etcd ends the stream (0: watch again from the next
 * revision), the revision was compacted (-ERANGE, the oldest revision kept
 * in *<compact>), <fn> returned nonzero (that value), or an error. Runs on
 * a curl handle of its own with <e>'s endpoints; <e> must not be used by
 * another thread meanwhile. Messages over ETCD_BODY_MAX are refused
 * (-EPROTO). */
int etcd_watch(struct etcd *e, const char *prefix, int64_t start, etcd_watch_fn *fn, void *arg,
	       const _Atomic bool *stop, unsigned int max_ms, int64_t *compact, char *err,
	       size_t errlen);

void etcd_kv_free(struct etcd_kv *kv);
void etcd_kvs_free(struct etcd_kvs *kvs);
void etcd_events_free(struct etcd_event *ev, size_t n);

/* ---- the codec (pure functions, unit-tested alone) ---------------------- */

/* Base64 (RFC 4648, with padding) of <n> bytes of <in> into <out>, which
 * holds ETCD_B64_LEN(n) + 1 bytes; NUL-terminated. Returns the length. */
#define ETCD_B64_LEN(n)	(((n) + 2) / 3 * 4)
size_t etcd_b64_encode(const void *in, size_t n, char *out);
/* Decodes <n> characters of <in> into <out> (at least n / 4 * 3 + 1 bytes;
 * NUL-terminated). The length, or -1 for anything that is not padded
 * base64. */
ssize_t etcd_b64_decode(const char *in, size_t n, char *out);

/* The end of the range of keys that start with <prefix> (etcd's
 * range_end: the prefix with its last byte below 0xff incremented), into
 * <out> (strlen(prefix) + 1 bytes). "" for "every key" (an empty or all-0xff
 * prefix: range_end "\0"). Returns its length. */
size_t etcd_prefix_end(const char *prefix, char *out);

/* A 64-bit number of a gateway answer: a JSON string of digits (how the
 * gateway writes int64) or an integer; absent (NULL) is 0, as proto3 omits
 * zero values. 0, or -1 when it is neither. */
int etcd_json_i64(const json_t *v, int64_t *out);

/* Request bodies, as JSON objects (new references; NULL when out of memory).
 * <range_end> may be NULL (one key), or "" for every key from <key> on
 * (etcd's range_end "\0"). */
json_t *etcd_req_put(const char *key, const void *value, size_t len, int64_t lease);
json_t *etcd_req_range(const char *key, const char *range_end);
json_t *etcd_req_create(const char *key, const void *value, size_t len, int64_t lease);

/* The transaction of etcd_cas(). */
json_t *etcd_req_cas(const char *key, int64_t expect, const void *value, size_t len,
		     int64_t lease);
/* A watch's create_request for the keys under <prefix> from <start>. */
json_t *etcd_req_watch(const char *prefix, int64_t start);

/* One message of a watch stream ({"result":{...}}, or {"error":{...}})
 * into a malloc'd array of its events (*<ev>, *<n>; free with
 * etcd_events_free), the header's revision in *<revision>, and, when etcd
 * cancelled the watch, *<canceled> with the compaction revision in
 * *<compact> (0: cancelled for another reason). 0, -EPROTO, -ENOMEM, or
 * -EREMOTEIO for an error message (its text in <msg>). */
int etcd_parse_watch(const json_t *msg, struct etcd_event **ev, size_t *n, int64_t *revision,
		     bool *canceled, int64_t *compact, char *why, size_t whylen);

/* The keys of a range answer (a /v3/kv/range body, or a txn's
 * response_range) into *<out>. 0 or -EPROTO/-ENOMEM. */
int etcd_parse_kvs(const json_t *range, struct etcd_kvs *out);

/* An error answer ({"error":..,"message":..,"code":N}): its gRPC code
 * (5 not found, 14 unavailable, ...) and message into <msg>. The code, or
 * -1 when <body> is not one. */
int etcd_parse_error(const json_t *body, char *msg, size_t msglen);

#endif
