/* etcd v3 over the HTTP/JSON gateway; see etcd.h.
 *
 * Every call is one POST of a JSON body to <endpoint>/v3/<service>/<method>
 * and one JSON answer: 200 with the result, or an error status with
 * {"error","message","code"} (a gRPC code). The gateway's lease keepalive
 * is a stream; with one request in the body it answers one line
 * {"result":{...}} and ends. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "control/etcd.h"
#include "control/etcd_int.h"



/* ---- base64 ------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
etcd_b64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int
b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t
etcd_b64_decode(const char *in, size_t n, char *out)
{
	size_t o = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		bool last = i + 4 == n;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && last && k >= 2 && (k == 3 || in[i + 3] == '=')) {
				v[k] = 0;
				pad++;
				continue;
			}
			v[k] = b64_val(in[i + k]);
			if (v[k] < 0 || pad > 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];

		out[o++] = (char)(w >> 16);
		if (pad < 2)
			out[o++] = (char)(w >> 8);
		if (pad < 1)
			out[o++] = (char)w;
	}
	out[o] = '\0';
	return (ssize_t)o;
}

size_t
etcd_prefix_end(const char *prefix, char *out)
{
	size_t n = strlen(prefix);

	memcpy(out, prefix, n + 1);
	while (n > 0) {
		unsigned char c = (unsigned char)out[n - 1];

		if (c < 0xff) {
			out[n - 1] = (char)(c + 1);
			out[n] = '\0';
			return n;
		}
		out[--n] = '\0';
	}
	return 0;
}

/* ---- JSON -------------------------------------------------------------- */

int
etcd_json_i64(const json_t *v, int64_t *out)
{
	char *end;
	long long n;

	*out = 0;
	if (v == NULL)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	errno = 0;
	n = strtoll(json_string_value(v), &end, 10);
	if (errno != 0 || end == json_string_value(v) || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

/* A base64 JSON string of <p> (<n> bytes); NULL when out of memory. */
json_t *
etcd_b64_json(const void *p, size_t n)
{
	char *s = malloc(ETCD_B64_LEN(n) + 1);
	json_t *v;

	if (s == NULL)
		return NULL;
	etcd_b64_encode(p, n, s);
	v = json_string(s);
	free(s);
	return v;
}

json_t *
etcd_i64_json(int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)v);
	return json_string(s);
}

json_t *
etcd_req_put(const char *key, const void *value, size_t len, int64_t lease)
{
	json_t *o = json_object();

	if (o == NULL || json_object_set_new(o, "key", etcd_b64_json(key, strlen(key))) != 0 ||
	    json_object_set_new(o, "value", etcd_b64_json(value, len)) != 0 ||
	    (lease != 0 && json_object_set_new(o, "lease", etcd_i64_json(lease)) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
etcd_req_range(const char *key, const char *range_end)
{
	json_t *o = json_object();
	/* "" stands for etcd's "\0": every key from <key> on. */
	size_t n = range_end == NULL ? 0 : range_end[0] == '\0' ? 1 : strlen(range_end);

	if (o == NULL || json_object_set_new(o, "key", etcd_b64_json(key, strlen(key))) != 0 ||
	    (range_end != NULL &&
	     json_object_set_new(o, "range_end", etcd_b64_json(range_end, n)) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
etcd_req_create(const char *key, const void *value, size_t len, int64_t lease)
{
	json_t *put = etcd_req_put(key, value, len, lease);
	json_t *range = etcd_req_range(key, NULL);
	json_t *k = etcd_b64_json(key, strlen(key));
	json_t *o = NULL;

	/* Succeeds only where the key was never created (or was deleted
	 * since): create_revision == 0. */
	if (put != NULL && range != NULL && k != NULL)
		o = json_pack("{s:[{s:O, s:s, s:s, s:s}], s:[{s:O}], s:[{s:O}]}",
			      "compare", "key", k, "target", "CREATE", "result", "EQUAL",
			      "create_revision", "0",
			      "success", "request_put", put,
			      "failure", "request_range", range);
	json_decref(put);
	json_decref(range);
	json_decref(k);
	return o;
}

json_t *
etcd_req_cas(const char *key, int64_t expect, const void *value, size_t len, int64_t lease)
{
	json_t *op = value != NULL ? etcd_req_put(key, value, len, lease) :
		     etcd_req_range(key, NULL);
	json_t *k = etcd_b64_json(key, strlen(key));
	json_t *o = NULL;

	if (op != NULL && k != NULL)
		o = json_pack("{s:[{s:O, s:s, s:s, s:o}], s:[{s:O}]}",
			      "compare", "key", k, "target", "MOD", "result", "EQUAL",
			      "mod_revision", etcd_i64_json(expect),
			      "success", value != NULL ? "request_put" : "request_delete_range",
			      op);
	json_decref(op);
	json_decref(k);
	return o;
}

/* A base64 field of <o> into a new NUL-terminated string; 0 or -EPROTO. */
static int
b64_field(const json_t *o, const char *name, char **out, size_t *len)
{
	const json_t *v = json_object_get(o, name);
	const char *s = v ? json_string_value(v) : "";
	size_t n;
	ssize_t r;

	if (s == NULL)
		return -EPROTO;
	n = strlen(s);
	*out = malloc(n / 4 * 3 + 1);
	if (*out == NULL)
		return -ENOMEM;
	r = etcd_b64_decode(s, n, *out);
	if (r < 0) {
		free(*out);
		*out = NULL;
		return -EPROTO;
	}
	if (len != NULL)
		*len = (size_t)r;
	return 0;
}

int
etcd_parse_kv(const json_t *o, struct etcd_kv *kv)
{
	int rc;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o))
		return -EPROTO;
	rc = b64_field(o, "key", &kv->key, NULL);
	if (rc == 0)
		rc = b64_field(o, "value", &kv->value, &kv->value_len);
	if (rc == 0 &&
	    (etcd_json_i64(json_object_get(o, "create_revision"), &kv->create_revision) ||
	     etcd_json_i64(json_object_get(o, "mod_revision"), &kv->mod_revision) ||
	     etcd_json_i64(json_object_get(o, "version"), &kv->version) ||
	     etcd_json_i64(json_object_get(o, "lease"), &kv->lease)))
		rc = -EPROTO;
	if (rc != 0)
		etcd_kv_free(kv);
	return rc;
}

int
etcd_parse_kvs(const json_t *range, struct etcd_kvs *out)
{
	const json_t *kvs = json_object_get(range, "kvs");
	size_t n = json_array_size(kvs);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(range) || (kvs != NULL && !json_is_array(kvs)) ||
	    etcd_json_i64(json_object_get(json_object_get(range, "header"), "revision"),
			  &out->revision) != 0)
		return -EPROTO;
	if (n == 0)
		return 0;
	out->kv = calloc(n, sizeof(*out->kv));
	if (out->kv == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = etcd_parse_kv(json_array_get(kvs, i), &out->kv[i]);
		if (rc == 0)
			out->n++;
	}
	if (rc != 0)
		etcd_kvs_free(out);
	return rc;
}

int
etcd_parse_error(const json_t *body, char *msg, size_t msglen)
{
	const json_t *m, *c;

	if (!json_is_object(body))
		return -1;
	c = json_object_get(body, "code");
	m = json_object_get(body, "message");
	if (!json_is_string(m))
		m = json_object_get(body, "error");
	if (!json_is_integer(c) || !json_is_string(m))
		return -1;
	snprintf(msg, msglen, "%s", json_string_value(m));
	return (int)json_integer_value(c);
}

void
etcd_kv_free(struct etcd_kv *kv)
{
	if (kv == NULL)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void
etcd_kvs_free(struct etcd_kvs *kvs)
{
	if (kvs == NULL)
		return;
	for (size_t i = 0; i < kvs->n; i++)
		etcd_kv_free(&kvs->kv[i]);
	free(kvs->kv);
	memset(kvs, 0, sizeof(*kvs));
}

/* ---- the client -------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct etcd *e = arg;
	size_t n = size * nmemb;

	if (e->len + n > ETCD_BODY_MAX) {
		e->too_big = true;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	if (e->len + n + 1 > e->cap) {
		size_t cap = e->cap ? e->cap : 4096;
		char *b;

		while (cap < e->len + n + 1)
			cap *= 2;
		b = realloc(e->body, cap);
		if (b == NULL)
			return 0;
		e->body = b;
		e->cap = cap;
	}
	memcpy(e->body + e->len, p, n);
	e->len += n;
	e->body[e->len] = '\0';
	return n;
}

/* Splits <list> into e->ep[]. 0 or -1 with <err>. */
static int
parse_endpoints(struct etcd *e, const char *list, char *err, size_t errlen)
{
	const char *p = list;

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '/'))
			n--;
		if (n == 0) {
			snprintf(err, errlen, "etcd endpoints \"%s\": an empty entry", list);
			return -1;
		}
		if (e->nep == ETCD_ENDPOINTS_MAX) {
			snprintf(err, errlen, "etcd endpoints: more than %d", ETCD_ENDPOINTS_MAX);
			return -1;
		}
		if (!((n > 7 && strncmp(p, "http://", 7) == 0) ||
		      (n > 8 && strncmp(p, "https://", 8) == 0))) {
			snprintf(err, errlen, "etcd endpoint \"%.*s\": not an http:// or https:// URL",
				 (int)n, p);
			return -1;
		}
		e->ep[e->nep] = strndup(p, n);
		if (e->ep[e->nep] == NULL) {
			snprintf(err, errlen, "etcd: out of memory");
			return -1;
		}
		e->nep++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if (e->nep == 0) {
		snprintf(err, errlen, "etcd: no endpoint given");
		return -1;
	}
	return 0;
}

struct etcd *
etcd_open(const char *endpoints, unsigned int timeout_ms, char *err, size_t errlen)
{
	struct etcd *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		snprintf(err, errlen, "etcd: out of memory");
		return NULL;
	}
	e->timeout_ms = timeout_ms ? timeout_ms : 1000;
	if (parse_endpoints(e, endpoints, err, errlen) != 0)
		goto out_free;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "etcd: libcurl: %s", curl_easy_strerror(curl_init_rc));
		goto out_free;
	}
	e->curl = curl_easy_init();
	e->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (e->curl == NULL || e->headers == NULL) {
		snprintf(err, errlen, "etcd: libcurl: out of memory");
		goto out_free;
	}
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e->curl, CURLOPT_TCP_NODELAY, 1L);
	return e;

out_free:
	etcd_close(e);
	return NULL;
}

void
etcd_close(struct etcd *e)
{
	if (e == NULL)
		return;
	if (e->curl != NULL)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->headers);
	for (unsigned int i = 0; i < e->nep; i++)
		free(e->ep[i]);
	free(e->body);
	free(e);
}

const char *
etcd_endpoint(const struct etcd *e)
{
	return e->ep[e->cur];
}

void
etcd_err_add(char *err, size_t errlen, const char *fmt, ...)
{
	size_t used = strlen(err);
	va_list ap;

	if (used + 3 >= errlen)
		return;
	if (used > 0) {
		strcpy(err + used, "; ");
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

/* One POST of <req> to one endpoint. 0 with the answer in *<resp>; 1 when
 * the endpoint cannot serve (try the next; the reason added to <err>); or a
 * final negative errno with <err>. */
static int
post_one(struct etcd *e, unsigned int i, const char *path, const char *req, json_t **resp,
	 char *err, size_t errlen)
{
	char url[1024], msg[512];
	long status = 0;
	json_error_t je;
	json_t *body;
	CURLcode rc;
	int code;

	snprintf(url, sizeof(url), "%s%s", e->ep[i], path);
	e->len = 0;
	e->too_big = false;
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, req);
	rc = curl_easy_perform(e->curl);
	if (rc != CURLE_OK) {
		if (e->too_big) {
			etcd_err_add(err, errlen, "%s: an answer over %u bytes", e->ep[i],
				     ETCD_BODY_MAX);
			return -EPROTO;
		}
		etcd_err_add(err, errlen, "%s: %s", e->ep[i], curl_easy_strerror(rc));
		return 1;
	}
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	body = e->len > 0 ? json_loadb(e->body, e->len, 0, &je) : NULL;
	if (status == 200 && json_is_object(body)) {
		*resp = body;
		return 0;
	}
	code = etcd_parse_error(body, msg, sizeof(msg));
	json_decref(body);
	if (code < 0) {
		/* Not the gateway: a proxy, another service on the port, an
		 * etcd without the v3 gateway. Another endpoint may do. */
		etcd_err_add(err, errlen, "%s: HTTP %ld%s%.*s", e->ep[i], status,
			e->len ? ", " : "", e->len > 120 ? 120 : (int)e->len,
			e->body ? e->body : "");
		return status >= 500 || status == 404 ? 1 : -EPROTO;
	}
	etcd_err_add(err, errlen, "%s: %s", e->ep[i], msg);
	if (code == GRPC_UNAVAILABLE)
		return 1;	/* no leader, shutting down: ask another member */
	return code == GRPC_NOT_FOUND ? -ENOENT : -EREMOTEIO;
}

/* POSTs <req> (stolen) to <path>, failing over between endpoints. */
static int
call(struct etcd *e, const char *path, json_t *req, json_t **resp, char *err, size_t errlen)
{
	char *text;
	int rc = 1;

	*resp = NULL;
	err[0] = '\0';
	if (req == NULL) {
		snprintf(err, errlen, "etcd: out of memory");
		return -ENOMEM;
	}
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL) {
		snprintf(err, errlen, "etcd: out of memory");
		return -ENOMEM;
	}
	for (unsigned int k = 0; k < e->nep && rc == 1; k++) {
		unsigned int i = (e->cur + k) % e->nep;

		rc = post_one(e, i, path, text, resp, err, errlen);
		if (rc != 1)
			e->cur = i;
	}
	free(text);
	if (rc == 1) {
		/* Every endpoint failed: <err> lists each one's reason. */
		char why[1024];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "etcd unreachable (%s)", why);
		return -EHOSTUNREACH;
	}
	if (rc == 0)
		err[0] = '\0';
	return rc;
}

/* A malformed answer from <e>'s current endpoint. */
static int
proto_err(struct etcd *e, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: an answer to %s that is not etcd's", etcd_endpoint(e), what);
	return -EPROTO;
}

int
etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
	 char *err, size_t errlen)
{
	json_t *r;
	int rc = call(e, "/v3/kv/put", etcd_req_put(key, value, len, lease), &r, err, errlen);

	json_decref(r);
	return rc;
}

int
etcd_create(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
	    struct etcd_kv *existing, char *err, size_t errlen)
{
	json_t *r, *range;
	struct etcd_kvs kvs;
	int rc = call(e, "/v3/kv/txn", etcd_req_create(key, value, len, lease), &r, err, errlen);

	if (existing != NULL)
		memset(existing, 0, sizeof(*existing));
	if (rc != 0)
		return rc;
	if (json_is_true(json_object_get(r, "succeeded"))) {
		json_decref(r);
		return 0;
	}
	/* The failure branch: the range of the key that is there. */
	range = json_object_get(json_array_get(json_object_get(r, "responses"), 0),
				"response_range");
	if (range == NULL || etcd_parse_kvs(range, &kvs) != 0) {
		json_decref(r);
		return proto_err(e, "a transaction", err, errlen);
	}
	json_decref(r);
	if (kvs.n == 1 && existing != NULL) {
		*existing = kvs.kv[0];
		kvs.n = 0;	/* moved out */
	}
	etcd_kvs_free(&kvs);
	snprintf(err, errlen, "%s exists", key);
	return -EEXIST;
}

json_t *
etcd_cmp_mod(const char *key, int64_t rev)
{
	return json_pack("{s:o, s:s, s:s, s:o}", "key", etcd_b64_json(key, strlen(key)),
			 "target", "MOD", "result", "EQUAL", "mod_revision", etcd_i64_json(rev));
}

json_t *
etcd_op_put(const char *key, const void *value, size_t len)
{
	return etcd_op_put_lease(key, value, len, 0);
}

json_t *
etcd_op_put_lease(const char *key, const void *value, size_t len, int64_t lease)
{
	return json_pack("{s:o}", "request_put", etcd_req_put(key, value, len, lease));
}

json_t *
etcd_op_delete(const char *key)
{
	return json_pack("{s:o}", "request_delete_range", etcd_req_range(key, NULL));
}

int
etcd_txn(struct etcd *e, json_t *compare, json_t *success, int64_t *revision, char *err,
	 size_t errlen)
{
	json_t *r;
	int64_t rev = 0;
	int rc = call(e, "/v3/kv/txn", compare && success ? json_pack("{s:o, s:o}", "compare",
				compare, "success", success) : NULL, &r, err, errlen);

	if (compare == NULL || success == NULL) {
		json_decref(compare);
		json_decref(success);
	}
	if (revision != NULL)
		*revision = 0;
	if (rc != 0)
		return rc;
	if (etcd_json_i64(json_object_get(json_object_get(r, "header"), "revision"), &rev) != 0) {
		json_decref(r);
		return proto_err(e, "a transaction", err, errlen);
	}
	rc = json_is_true(json_object_get(r, "succeeded")) ? 0 : -ECANCELED;
	json_decref(r);
	if (rc != 0)
		snprintf(err, errlen, "a key changed since it was read");
	else if (revision != NULL)
		*revision = rev;
	return rc;
}

int
etcd_put_batch(struct etcd *e, const char *const *keys, const char *const *values,
	       const size_t *lens, size_t n, char *err, size_t errlen)
{
	json_t *ops = json_array(), *r;
	int rc;

	if (n > ETCD_BATCH_MAX) {
		json_decref(ops);
		snprintf(err, errlen, "etcd: over %d puts in one transaction", ETCD_BATCH_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; ops != NULL && i < n; i++)
		if (json_array_append_new(ops, json_pack("{s:o}", "request_put",
							 etcd_req_put(keys[i], values[i], lens[i],
								      0))) != 0) {
			json_decref(ops);
			ops = NULL;
		}
	rc = call(e, "/v3/kv/txn", ops ? json_pack("{s:o}", "success", ops) : NULL, &r, err,
		  errlen);
	json_decref(r);
	return rc;
}

int
etcd_cas(struct etcd *e, const char *key, int64_t expect, const void *value, size_t len,
	 int64_t lease, int64_t *revision, char *err, size_t errlen)
{
	json_t *r;
	int64_t rev = 0;
	int rc = call(e, "/v3/kv/txn", etcd_req_cas(key, expect, value, len, lease), &r, err,
		      errlen);

	if (revision != NULL)
		*revision = 0;
	if (rc != 0)
		return rc;
	if (etcd_json_i64(json_object_get(json_object_get(r, "header"), "revision"), &rev) != 0) {
		json_decref(r);
		return proto_err(e, "a transaction", err, errlen);
	}
	if (!json_is_true(json_object_get(r, "succeeded"))) {
		json_decref(r);
		snprintf(err, errlen, "%s changed since it was read (revision %lld expected)", key,
			 (long long)expect);
		return -ECANCELED;
	}
	json_decref(r);
	if (revision != NULL)
		*revision = rev;
	return 0;
}

int
etcd_get(struct etcd *e, const char *key, bool prefix, struct etcd_kvs *out, char *err,
	 size_t errlen)
{
	char *end = prefix ? malloc(strlen(key) + 1) : NULL;
	json_t *r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (prefix && end == NULL)
		return -ENOMEM;
	if (prefix)
		etcd_prefix_end(key, end);	/* "": every key (etcd_req_range) */
	rc = call(e, "/v3/kv/range", etcd_req_range(key, prefix ? end : NULL), &r, err, errlen);
	free(end);
	if (rc != 0)
		return rc;
	rc = etcd_parse_kvs(r, out);
	json_decref(r);
	if (rc == -EPROTO)
		return proto_err(e, "a range read", err, errlen);
	return rc;
}

int
etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted, char *err,
	    size_t errlen)
{
	char *end = prefix ? malloc(strlen(key) + 1) : NULL;
	json_t *r;
	int64_t n = 0;
	int rc;

	if (prefix && end == NULL)
		return -ENOMEM;
	if (prefix)
		etcd_prefix_end(key, end);
	rc = call(e, "/v3/kv/deleterange", etcd_req_range(key, prefix ? end : NULL), &r, err,
		  errlen);
	free(end);
	if (rc != 0)
		return rc;
	if (etcd_json_i64(json_object_get(r, "deleted"), &n) != 0)
		rc = proto_err(e, "a delete", err, errlen);
	json_decref(r);
	if (deleted != NULL)
		*deleted = n;
	return rc;
}

int
etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted_s, char *err,
		 size_t errlen)
{
	json_t *r;
	int64_t ttl = 0;
	int rc = call(e, "/v3/lease/grant", json_pack("{s:o}", "TTL", etcd_i64_json(ttl_s)), &r,
		      err, errlen);

	*id = 0;
	if (rc != 0)
		return rc;
	if (etcd_json_i64(json_object_get(r, "ID"), id) != 0 || *id == 0 ||
	    etcd_json_i64(json_object_get(r, "TTL"), &ttl) != 0)
		rc = proto_err(e, "a lease grant", err, errlen);
	json_decref(r);
	if (granted_s != NULL)
		*granted_s = ttl;
	return rc;
}

int
etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl_s, char *err, size_t errlen)
{
	json_t *r, *res;
	int64_t ttl = 0;
	int rc = call(e, "/v3/lease/keepalive", json_pack("{s:o}", "ID", etcd_i64_json(id)), &r,
		      err, errlen);

	if (ttl_s != NULL)
		*ttl_s = 0;
	if (rc != 0)
		return rc;
	/* A stream of one: {"result":{...}}, or {"error":{...}} inside it. */
	res = json_object_get(r, "result");
	if (res == NULL) {
		char msg[256];
		int code = etcd_parse_error(json_object_get(r, "error"), msg, sizeof(msg));

		json_decref(r);
		if (code < 0)
			return proto_err(e, "a lease keepalive", err, errlen);
		snprintf(err, errlen, "%s: %s", etcd_endpoint(e), msg);
		return code == GRPC_NOT_FOUND ? -ENOENT : -EREMOTEIO;
	}
	if (etcd_json_i64(json_object_get(res, "TTL"), &ttl) != 0) {
		json_decref(r);
		return proto_err(e, "a lease keepalive", err, errlen);
	}
	json_decref(r);
	if (ttl_s != NULL)
		*ttl_s = ttl;
	/* An expired or unknown lease answers without a TTL (0). */
	if (ttl <= 0) {
		snprintf(err, errlen, "%s: lease %llx has expired", etcd_endpoint(e),
			 (unsigned long long)id);
		return -ENOENT;
	}
	return 0;
}

int
etcd_lease_revoke(struct etcd *e, int64_t id, char *err, size_t errlen)
{
	json_t *r;
	int rc = call(e, "/v3/lease/revoke", json_pack("{s:o}", "ID", etcd_i64_json(id)), &r,
		      err, errlen);

	json_decref(r);
	return rc;
}
