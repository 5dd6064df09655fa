/* Files across the nodes of an array: see webfetch.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dataplane/base/log.h"
#include "dataplane/web/web_int.h"
#include "dataplane/web/webfetch.h"

#define FETCH_QUEUE_MAX		64	/* fetches waiting at once */
#define FETCH_TIMEOUT_S		120	/* one whole transfer */
#define FETCH_CONNECT_S		5
#define PEERS_MAX		64

struct fjob {
	struct fjob	*next;
	struct wconn	*c;
	char		room[HTTP1_ROOM_LEN + 1];
	char		name[HTTP1_NAME_MAX];
	int		status;		/* 0, -ENOENT (no node has it), -EIO */
};

struct webfetch {
	struct web	*w;
	int		done_fd[2];	/* pipe: finished jobs back to the Web thread */
	struct event	*done_ev;
	unsigned	inflight;	/* Web thread */

	/* Set once by web_set_array, before the thread starts. */
	_Atomic bool	on;
	uint32_t	self;
	uint8_t		secret[WEBFETCH_SECRET_MAX];
	size_t		secret_len;
	web_peers_fn	*peers;
	void		*peers_arg;

	pthread_t	thr;
	bool		started;
	pthread_mutex_t	lock;		/* the queue and stop */
	pthread_cond_t	cond;
	struct fjob	*head, *tail;
	bool		stop;
	uint64_t	ntmp;		/* temp file names (fetch thread) */
};

/* ---- the shared signature ------------------------------------------- */

/* Lower-case hex HMAC-SHA256 of "<node>.<exp>.<room>/<name>". */
static bool
sign(const struct webfetch *f, uint32_t node, uint64_t exp, const char *room, const char *name,
     char hex[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;
	char msg[64 + HTTP1_ROOM_LEN + HTTP1_NAME_MAX];
	int n = snprintf(msg, sizeof(msg), "%" PRIu32 ".%" PRIu64 ".%s/%s", node, exp, room, name);

	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    HMAC(EVP_sha256(), f->secret, (int)f->secret_len, (const uint8_t *)msg, (size_t)n, md,
		 &mdlen) == NULL || mdlen != sizeof(md))
		return false;
	for (unsigned i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return true;
}

bool
webfetch_peer_ok(struct web *w, const char *value, const char *room, const char *name)
{
	struct webfetch *f = w->fetch;
	char want[65];
	unsigned long long node, exp;
	const char *mac;
	char *end;
	uint64_t now = (uint64_t)time(NULL);

	if (f == NULL || !atomic_load(&f->on))
		return false;
	node = strtoull(value, &end, 10);
	if (end == value || *end != '.' || node == 0 || node > UINT32_MAX)
		return false;
	exp = strtoull(end + 1, &end, 10);
	if (*end != '.' || exp < now || exp > now + WEBFETCH_SKEW_S)
		return false;
	mac = end + 1;
	if (strlen(mac) != 64 || !sign(f, (uint32_t)node, exp, room, name, want))
		return false;
	return CRYPTO_memcmp(want, mac, 64) == 0;
}

/* ---- the fetch thread ------------------------------------------------ */

struct transfer {
	int		fd;
	uint64_t	got, max;
	EVP_MD_CTX	*sha;
	bool		too_big, write_failed;
	char		sha256[65], uploader[160], name[256];
	uint64_t	size, ts_ms;
	bool		have_size;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n, off = 0;

	if (t->got + len > t->max) {
		t->too_big = true;
		return 0;
	}
	while (off < len) {
		ssize_t k = write(t->fd, p + off, len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			t->write_failed = true;
			return 0;
		}
		off += (size_t)k;
	}
	EVP_DigestUpdate(t->sha, p, len);
	t->got += len;
	return len;
}

/* <src> into <dst> of <cap> bytes when it fits; else "" (the record check
 * refuses what is missing). */
static void
set(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = 0;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* One X-Parley-* header of the answer into <t>. */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n, nl;
	const char *colon = memchr(p, ':', len), *v;
	char val[300];

	if (colon == NULL)
		return len;
	nl = (size_t)(colon - p);
	v = colon + 1;
	while (v < p + len && (*v == ' ' || *v == '\t'))
		v++;
	snprintf(val, sizeof(val), "%.*s", (int)(p + len - v), v);
	val[strcspn(val, "\r\n")] = '\0';
	if (nl == 15 && strncasecmp(p, "X-Parley-SHA256", nl) == 0)
		set(t->sha256, sizeof(t->sha256), val);
	else if (nl == 17 && strncasecmp(p, "X-Parley-Uploader", nl) == 0)
		set(t->uploader, sizeof(t->uploader), val);
	else if (nl == 13 && strncasecmp(p, "X-Parley-Name", nl) == 0)
		set(t->name, sizeof(t->name), val);
	else if (nl == 11 && strncasecmp(p, "X-Parley-Ts", nl) == 0)
		t->ts_ms = strtoull(val, NULL, 10);
	else if (nl == 13 && strncasecmp(p, "X-Parley-Size", nl) == 0) {
		t->size = strtoull(val, NULL, 10);
		t->have_size = true;
	}
	return len;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct webfetch *f = arg;
	bool stop;

	(void)dt, (void)dn, (void)ut, (void)un;
	pthread_mutex_lock(&f->lock);
	stop = f->stop;
	pthread_mutex_unlock(&f->lock);
	return stop;
}

/* The room's folder, created if missing. An fd or -errno. */
static int
room_dir(struct web *w, const char *room)
{
	int fd;

	if (mkdirat(w->files_fd, room, 0750) == 0)
		fsync(w->files_fd);
	else if (errno != EEXIST)
		return -errno;
	fd = openat(w->files_fd, room, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

/* Asks node <p> for the file of <j>. 0 (stored here now), -ENOENT (it has
 * none), -EIO (it failed, or what came is not the file it recorded). */
static int
fetch_from(struct webfetch *f, CURL *h, const struct web_peer *p, struct fjob *j)
{
	struct web *w = f->w;
	struct transfer t = { .fd = -1, .max = w->cfg.max_upload_bytes };
	struct curl_slist *hdrs = NULL;
	char url[600], hdr[HTTP1_PEER_MAX + 32], mac[65], tmp[HTTP1_NAME_MAX + 48];
	uint64_t exp = (uint64_t)time(NULL) + 60;
	uint8_t md[32];
	char hex[65];
	long code = 0;
	int dfd, rc = -EIO;
	CURLcode cc;

	if (p->pin[0] == '\0' || !sign(f, f->self, exp, j->room, j->name, mac))
		return -EIO;
	snprintf(url, sizeof(url), "%s%s%s/%s", p->url,
		 p->url[0] && p->url[strlen(p->url) - 1] == '/' ? "" : "/", j->room, j->name);
	snprintf(hdr, sizeof(hdr), "X-Parley-Peer: %u.%" PRIu64 ".%s", f->self, exp, mac);
	dfd = room_dir(w, j->room);
	if (dfd < 0)
		return -EIO;
	snprintf(tmp, sizeof(tmp), ".tmp-fetch%" PRIu64 "-%s", ++f->ntmp, j->name);
	t.fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	t.sha = EVP_MD_CTX_new();
	if (t.fd == -1 || t.sha == NULL || EVP_DigestInit_ex(t.sha, EVP_sha256(), NULL) != 1)
		goto out;
	hdrs = curl_slist_append(hdrs, hdr);
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, f);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)FETCH_CONNECT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)FETCH_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	/* The peer is who it says by the key it published in etcd. */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, p->pin);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (cc == CURLE_OK && code == 404) {
		rc = -ENOENT;
		goto out;
	}
	if (cc != CURLE_OK || code != 200) {
		LOG(WARNING, WEB, "fetching %s/%s from node %u: %s", j->room, j->name, p->node_id,
		    cc != CURLE_OK ? curl_easy_strerror(cc) : "an unexpected status");
		goto out;
	}
	EVP_DigestFinal_ex(t.sha, md, NULL);
	for (unsigned i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (!t.have_size || t.size != t.got || strcasecmp(hex, t.sha256) != 0) {
		LOG(ERR, WEB, "fetching %s/%s from node %u: %llu bytes, SHA-256 %s; its record "
		    "says %llu, %s: not kept", j->room, j->name, p->node_id,
		    (unsigned long long)t.got, hex, (unsigned long long)t.size, t.sha256);
		goto out;
	}
	if (fsync(t.fd) != 0)
		goto out;
	/* Never over a copy that is there already (another fetch won). */
	if (linkat(dfd, tmp, dfd, j->name, 0) != 0 && errno != EEXIST)
		goto out;
	fsync(dfd);
	{
		struct files_rec r = { .size = t.got, .state = FILES_READY, .ts_ms = t.ts_ms };

		snprintf(r.id, sizeof(r.id), "%s", j->name);
		snprintf(r.room_id, sizeof(r.room_id), "%s", j->room);
		snprintf(r.uploader, sizeof(r.uploader), "%s", t.uploader);
		snprintf(r.name, sizeof(r.name), "%s", t.name);
		snprintf(r.sha256, sizeof(r.sha256), "%s", hex);
		if (files_put(w->db, &r, true) != 0)
			goto out;
	}
	LOG(INFO, WEB, "fetched %s/%s (%llu bytes) from node %u", j->room, j->name,
	    (unsigned long long)t.got, p->node_id);
	rc = 0;
out:
	if (t.fd != -1) {
		close(t.fd);
		unlinkat(dfd, tmp, 0);
	}
	close(dfd);
	EVP_MD_CTX_free(t.sha);
	curl_slist_free_all(hdrs);
	return rc;
}

static void
run_job(struct webfetch *f, CURL *h, struct fjob *j)
{
	struct web_peer *p = calloc(PEERS_MAX, sizeof(*p));
	unsigned n = p ? f->peers(f->peers_arg, p, PEERS_MAX) : 0;

	j->status = -ENOENT;
	for (unsigned i = 0; i < n && i < PEERS_MAX && j->status != 0; i++) {
		int rc;

		if (p[i].node_id == f->self)
			continue;
		rc = fetch_from(f, h, &p[i], j);
		if (rc == 0 || j->status == -ENOENT)
			j->status = rc;
	}
	if (p == NULL)
		j->status = -EIO;
	free(p);
}

static void *
fetch_thread(void *arg)
{
	struct webfetch *f = arg;
	CURL *h = curl_easy_init();

	for (;;) {
		struct fjob *j;

		pthread_mutex_lock(&f->lock);
		while (f->head == NULL && !f->stop)
			pthread_cond_wait(&f->cond, &f->lock);
		j = f->head;
		if (j != NULL && !f->stop) {
			f->head = j->next;
			if (f->head == NULL)
				f->tail = NULL;
		}
		pthread_mutex_unlock(&f->lock);
		if (f->stop)
			break;
		if (h == NULL)
			j->status = -EIO;
		else
			run_job(f, h, j);
		/* A pointer is far below PIPE_BUF: written whole. */
		if (write(f->done_fd[1], &j, sizeof(j)) != (ssize_t)sizeof(j))
			LOG(ERR, WEB, "fetch: cannot hand a result back: %s", strerror(errno));
	}
	if (h != NULL)
		curl_easy_cleanup(h);
	return NULL;
}

/* ---- the Web thread's side ------------------------------------------ */

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct webfetch *f = arg;
	struct fjob *j;

	(void)fd, (void)what;
	while (read(f->done_fd[0], &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		struct wconn *c = j->c;

		f->inflight--;
		c->in_fetch = false;
		if (c->dead) {
			webfile_release(c);
			free(c);
		} else {
			webfile_fetched(c, j->status);
		}
		free(j);
	}
}

int
webfetch_init(struct web *w)
{
	struct webfetch *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -ENOMEM;
	f->w = w;
	f->done_fd[0] = f->done_fd[1] = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (pipe2(f->done_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
		int rc = -errno;

		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return rc;
	}
	f->done_ev = event_new(w->base, f->done_fd[0], EV_READ | EV_PERSIST, done_cb, f);
	if (f->done_ev == NULL || event_add(f->done_ev, NULL) != 0) {
		w->fetch = f;
		webfetch_fini(w);
		return -ENOMEM;
	}
	w->fetch = f;
	return 0;
}

void
webfetch_fini(struct web *w)
{
	struct webfetch *f = w->fetch;
	struct fjob *j;

	if (f == NULL)
		return;
	if (f->started) {
		pthread_mutex_lock(&f->lock);
		f->stop = true;
		pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->lock);
		pthread_join(f->thr, NULL);
	}
	/* Finished or never started: the Web thread has stopped, so the
	 * requests that waited are freed here. */
	while (f->done_fd[0] >= 0 && read(f->done_fd[0], &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		j->next = f->head;
		f->head = j;
	}
	while ((j = f->head) != NULL) {
		f->head = j->next;
		if (j->c->dead) {
			webfile_release(j->c);
			free(j->c);
		} else {
			j->c->in_fetch = false;
		}
		free(j);
	}
	if (f->done_ev != NULL)
		event_free(f->done_ev);
	if (f->done_fd[0] >= 0) {
		close(f->done_fd[0]);
		close(f->done_fd[1]);
	}
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
	w->fetch = NULL;
}

int
webfetch_submit(struct wconn *c)
{
	struct webfetch *f = c->w->fetch;
	struct fjob *j;

	if (f == NULL || !atomic_load(&f->on))
		return -ENOTSUP;
	if (f->inflight >= FETCH_QUEUE_MAX)
		return -EBUSY;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -EBUSY;
	j->c = c;
	snprintf(j->room, sizeof(j->room), "%s", c->room);
	snprintf(j->name, sizeof(j->name), "%s", c->name);
	pthread_mutex_lock(&f->lock);
	if (f->tail != NULL)
		f->tail->next = j;
	else
		f->head = j;
	f->tail = j;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	f->inflight++;
	c->in_fetch = true;
	c->fetched = true;
	c->st = WC_FETCH;
	web_pause_reading(c);
	return 0;
}

unsigned
webfetch_inflight(const struct web *w)
{
	return w->fetch ? w->fetch->inflight : 0;
}

int
web_set_array(struct web *w, uint32_t self, const void *secret, size_t len, web_peers_fn *fn,
	      void *arg)
{
	struct webfetch *f = w->fetch;
	int rc;

	if (f == NULL || f->started || self == 0 || fn == NULL || len < 16 ||
	    len > sizeof(f->secret))
		return -EINVAL;
	f->self = self;
	memcpy(f->secret, secret, len);
	f->secret_len = len;
	f->peers = fn;
	f->peers_arg = arg;
	rc = pthread_create(&f->thr, NULL, fetch_thread, f);
	if (rc != 0)
		return -rc;
	pthread_setname_np(f->thr, "parley-fetch");
	f->started = true;
	atomic_store(&f->on, true);
	return 0;
}

int
web_cert_pin(const char *cert_file, char *out, size_t cap)
{
	FILE *fp = fopen(cert_file, "r");
	X509 *x = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
	uint8_t *der = NULL, md[32];
	unsigned char b64[64];
	int len = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;
	int rc = -EINVAL;

	if (fp != NULL)
		fclose(fp);
	if (len > 0 && EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL) == 1 &&
	    EVP_EncodeBlock(b64, md, sizeof(md)) > 0 &&
	    (size_t)snprintf(out, cap, "sha256//%s", b64) < cap)
		rc = 0;
	OPENSSL_free(der);
	X509_free(x);
	return rc;
}
