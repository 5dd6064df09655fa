/* etcd v3 watches over the HTTP/JSON gateway; see etcd.h.
 *
 * POST /v3/watch with {"create_request":{...}} answers a stream of JSON
 * messages, one per line: {"result":{"header":..,"created":true}} first,
 * then {"result":{"header":..,"events":[{"type":"DELETE"?,"kv":{..}},..]}}
 * per change, or {"result":{..,"canceled":true,"compact_revision":"N"}}
 * when the start revision was compacted. Each watch runs on a curl handle
 * of its own (the client's keeps serving requests of the same thread
 * between watches); the progress callback lets a stop flag end it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "control/etcd.h"
#include "control/etcd_int.h"

json_t *
etcd_req_watch(const char *prefix, int64_t start)
{
	char *end = malloc(strlen(prefix) + 1);
	size_t n;
	json_t *o = NULL;

	if (end == NULL)
		return NULL;
	n = etcd_prefix_end(prefix, end);
	/* "" stands for etcd's "\0": every key from <prefix> on. */
	o = json_pack("{s:{s:o, s:o, s:o}}", "create_request",
		      "key", etcd_b64_json(prefix, strlen(prefix)),
		      "range_end", etcd_b64_json(n ? end : "", n ? n : 1),
		      "start_revision", etcd_i64_json(start));
	free(end);
	return o;
}

void
etcd_events_free(struct etcd_event *ev, size_t n)
{
	for (size_t i = 0; ev != NULL && i < n; i++)
		etcd_kv_free(&ev[i].kv);
	free(ev);
}

int
etcd_parse_watch(const json_t *msg, struct etcd_event **ev, size_t *n, int64_t *revision,
		 bool *canceled, int64_t *compact, char *why, size_t whylen)
{
	const json_t *res = json_object_get(msg, "result"), *evs;
	size_t k;
	int rc = 0;

	*ev = NULL;
	*n = 0;
	*revision = 0;
	*canceled = false;
	*compact = 0;
	if (res == NULL) {
		if (etcd_parse_error(json_object_get(msg, "error"), why, whylen) >= 0)
			return -EREMOTEIO;
		return -EPROTO;
	}
	evs = json_object_get(res, "events");
	if (!json_is_object(res) || (evs != NULL && !json_is_array(evs)) ||
	    etcd_json_i64(json_object_get(json_object_get(res, "header"), "revision"),
			  revision) != 0 ||
	    etcd_json_i64(json_object_get(res, "compact_revision"), compact) != 0)
		return -EPROTO;
	*canceled = json_is_true(json_object_get(res, "canceled"));
	if (json_array_size(evs) == 0)
		return 0;
	*ev = calloc(json_array_size(evs), sizeof(**ev));
	if (*ev == NULL)
		return -ENOMEM;
	for (k = 0; k < json_array_size(evs) && rc == 0; k++) {
		const json_t *e = json_array_get(evs, k);
		const json_t *type = json_object_get(e, "type");

		if (!json_is_object(e) || (type != NULL && !json_is_string(type))) {
			rc = -EPROTO;
			break;
		}
		(*ev)[k].deleted = type != NULL && strcmp(json_string_value(type), "DELETE") == 0;
		rc = etcd_parse_kv(json_object_get(e, "kv"), &(*ev)[k].kv);
		if (rc == 0)
			(*n)++;
	}
	if (rc != 0) {
		etcd_events_free(*ev, *n);
		*ev = NULL;
		*n = 0;
	}
	return rc;
}

/* One watch in progress. */
struct watch {
	etcd_watch_fn		*fn;
	void			*arg;
	const _Atomic bool	*stop;
	char			*buf;
	size_t			len, cap;
	bool			created;
	int			rc;		/* what ends it, once set */
	int64_t			compact;
	char			*err;
	size_t			errlen;
};

/* Each complete message at the start of the buffer. 0 to go on, or the
 * watch's end. */
static int
drain(struct watch *w)
{
	size_t off = 0;
	int rc = 0;

	while (rc == 0 && off < w->len) {
		struct etcd_event *ev;
		json_error_t je;
		json_t *m;
		size_t n;
		int64_t rev, compact;
		bool canceled;
		char why[256];

		while (off < w->len && (w->buf[off] == '\n' || w->buf[off] == '\r' ||
					w->buf[off] == ' '))
			off++;
		if (off == w->len)
			break;
		m = json_loadb(w->buf + off, w->len - off, JSON_DISABLE_EOF_CHECK, &je);
		if (m == NULL) {
			if (json_error_code(&je) == json_error_premature_end_of_input)
				break;	/* the rest comes later */
			snprintf(w->err, w->errlen, "a watch message that is not JSON (%s)",
				 je.text);
			rc = -EPROTO;
			break;
		}
		off += (size_t)je.position;
		rc = etcd_parse_watch(m, &ev, &n, &rev, &canceled, &compact, why, sizeof(why));
		json_decref(m);
		if (rc == -EREMOTEIO) {
			snprintf(w->err, w->errlen, "the watch: %s", why);
			break;
		}
		if (rc != 0) {
			snprintf(w->err, w->errlen, "a watch message that is not etcd's");
			break;
		}
		if (canceled) {
			etcd_events_free(ev, n);
			w->compact = compact;
			snprintf(w->err, w->errlen, compact > 0 ? "revisions up to %lld were "
				 "compacted" : "etcd cancelled the watch (%lld)",
				 (long long)compact);
			rc = compact > 0 ? -ERANGE : -EREMOTEIO;
			break;
		}
		w->created = true;
		rc = w->fn(w->arg, ev, n);
		etcd_events_free(ev, n);
	}
	memmove(w->buf, w->buf + off, w->len - off);
	w->len -= off;
	return rc;
}

static size_t
on_stream(char *p, size_t size, size_t nmemb, void *arg)
{
	struct watch *w = arg;
	size_t n = size * nmemb;

	if (w->len + n + 1 > ETCD_BODY_MAX) {
		snprintf(w->err, w->errlen, "a watch message over %u bytes", ETCD_BODY_MAX);
		w->rc = -EPROTO;
		return 0;
	}
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		char *b;

		while (cap < w->len + n + 1)
			cap *= 2;
		b = realloc(w->buf, cap);
		if (b == NULL) {
			w->rc = -ENOMEM;
			return 0;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->rc = drain(w);
	return w->rc == 0 ? n : 0;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct watch *w = arg;

	if (w->stop != NULL && atomic_load(w->stop)) {
		w->rc = -ECANCELED;
		return 1;
	}
	return 0;
}

int
etcd_watch(struct etcd *e, const char *prefix, int64_t start, etcd_watch_fn *fn, void *arg,
	   const _Atomic bool *stop, unsigned int max_ms, int64_t *compact, char *err,
	   size_t errlen)
{
	struct watch w = { .fn = fn, .arg = arg, .stop = stop, .err = err, .errlen = errlen };
	json_t *req = etcd_req_watch(prefix, start);
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	CURL *h = curl_easy_init();
	char url[1024];
	int rc = -EHOSTUNREACH;

	json_decref(req);
	err[0] = '\0';
	if (compact != NULL)
		*compact = 0;
	if (text == NULL || h == NULL) {
		snprintf(err, errlen, "etcd watch: out of memory");
		rc = -ENOMEM;
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)max_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
	for (unsigned int k = 0; k < e->nep; k++) {
		unsigned int i = (e->cur + k) % e->nep;
		char why[512];
		CURLcode c;
		long status = 0;

		snprintf(url, sizeof(url), "%s/v3/watch", e->ep[i]);
		curl_easy_setopt(h, CURLOPT_URL, url);
		w.len = 0;
		w.rc = 0;
		w.created = false;
		why[0] = '\0';
		c = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (w.rc != 0) {
			/* Ended by us: stop, compaction, a bad message, <fn>. */
			rc = w.rc;
			if (compact != NULL)
				*compact = w.compact;
			break;
		}
		if (w.created && (c == CURLE_OK || c == CURLE_OPERATION_TIMEDOUT)) {
			rc = 0;		/* the stream ended or ran its time */
			e->cur = i;
			break;
		}
		if (c == CURLE_OK && status != 200) {
			snprintf(why, sizeof(why), "HTTP %ld", status);
		} else {
			snprintf(why, sizeof(why), "%s", curl_easy_strerror(c));
		}
		etcd_err_add(err, errlen, "%s: %s", e->ep[i], why);
	}
	if (rc == -EHOSTUNREACH) {
		char why[1024];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "etcd watch: no endpoint answered (%s)", why);
	}
out:
	if (h != NULL)
		curl_easy_cleanup(h);
	free(text);
	free(w.buf);
	return rc;
}
