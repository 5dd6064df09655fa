/* What the Web service does with a request (xccos.md §e, option A): check
 * the target, take the token, re-check the room, then stream an upload to
 * its file or a file to the client, with the compliance event durable
 * before the answer. Connections and framing are web.c's.
 *
 * The order of checks: the target's shape (400, 404 for other paths),
 * framing and size (411, 413, 417), the token (403: unknown, used,
 * expired, or bound to another direction, room or file), the room as the
 * catalog has it now (404 gone, 403 no filepost or no longer a member of
 * a closed or secret room), then the file (404, 409).
 *
 * The filesystem is reached only through <files_dir>'s descriptor, with
 * names that passed http1_filestore_target (a GUID folder, a GUID-plus-
 * extension file: no '/', no dot segment, no '%') and O_NOFOLLOW: a request
 * cannot name anything outside <files_dir>.
 *
 * An upload, step by step (each durable before the next):
 *   1. the body streams into <files_dir>/<room>/.tmp-<name> (created
 *      O_EXCL), hashed (SHA-256) on the way; Content-Length bytes exactly;
 *   2. fsync, rename to <name> (never over an existing file), fsync of the
 *      room folder;
 *   3. the record, state pending (files.h);
 *   4. the FILEUPLOAD event (storage thread, group commit);
 *   5. the record, state ready; 201.
 * A failure in 1-4 undoes what was done (temp file, file, record), so a
 * cut-off, oversize or failed upload leaves nothing. A crash in 1-2 leaves a
 * temp file that the next boot removes (webfile_sweep); in 3-5 a pending
 * record that is never served (files.h).
 *
 * A download: its FILEDOWNLOAD event is durable before the first byte is
 * sent (durable before visible, as for posts): a reader cannot get bytes
 * that the compliance log could lose track of, for the cost of one group
 * commit (a millisecond or two) per download. A 416 sends no file bytes and
 * logs nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/evp.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/web/web_int.h"
#include "dataplane/web/webfetch.h"
#include "storage/catalog.h"

/* ---- helpers -------------------------------------------------------- */

static const char *
skip_scheme(const char *u)
{
	if (strncasecmp(u, "sip:", 4) == 0)
		return u + 4;
	if (strncasecmp(u, "sips:", 5) == 0)
		return u + 5;
	return u;
}

static bool
in_set(const struct catalog_strset *s, const char *user)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcasecmp(skip_scheme(s->v[i]), skip_scheme(user)) == 0)
			return true;
	return false;
}

/* The room as the catalog has it now: 0, 404 (gone), 403 (<user> may not
 * read it, or <upload> and it does not allow file posting) or 500. */
static int
room_check(struct web *w, const char *room_id, const char *user, bool upload)
{
	struct catalog_room *r;
	bool ok;
	int rc = catalog_get(w->db, room_id, &r);

	if (rc == -ENOENT)
		return 404;
	if (rc != 0)
		return 500;
	ok = r->privacy == CATALOG_OPEN || in_set(&r->members, user) ||
	     in_set(&r->managers, user);
	if (upload && !(r->props & CATALOG_PROP_FILEPOST))
		ok = false;
	catalog_room_free(r);
	return ok ? 0 : 403;
}

/* The room's folder, created (and made durable) when <create>. The fd, or
 * -errno. */
static int
room_dir(struct web *w, const char *room, bool create)
{
	int fd;

	if (create) {
		if (mkdirat(w->files_fd, room, 0750) == 0)
			fsync(w->files_fd);	/* the new folder's entry */
		else if (errno != EEXIST)
			return -errno;
	}
	fd = openat(w->files_fd, room, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
disk_status(int err)
{
	return (err == -ENOSPC || err == -EDQUOT) ? 507 : 500;
}

void
webfile_release(struct wconn *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->tmp[0] != '\0' && c->dirfd >= 0) {
		/* A partial upload: nothing of it stays. */
		if (unlinkat(c->dirfd, c->tmp, 0) == -1 && errno != ENOENT)
			LOG(ERR, WEB, "cannot remove %s/%s/%s: %s", c->w->files_dir, c->room,
			    c->tmp, strerror(errno));
		WEB_INC(c->w, uploads_aborted);
	}
	c->tmp[0] = '\0';
	c->fetched = false;
	if (c->dirfd >= 0) {
		close(c->dirfd);
		c->dirfd = -1;
	}
	if (c->sha != NULL) {
		EVP_MD_CTX_free(c->sha);
		c->sha = NULL;
	}
}

/* Removes a stored upload (file and record) after a later step failed. */
static void
unstore(struct wconn *c)
{
	struct web *w = c->w;

	if (files_delete(w->db, c->name, true) != 0)
		LOG(ERR, WEB, "file %s: its record could not be removed", c->name);
	if (unlinkat(c->dirfd, c->name, 0) == -1 && errno != ENOENT)
		LOG(ERR, WEB, "cannot remove %s/%s/%s: %s", w->files_dir, c->room, c->name,
		    strerror(errno));
	fsync(c->dirfd);
	WEB_INC(w, uploads_aborted);
}

/* Takes the request's token (single use: gone whatever follows); false
 * after answering 403. */
static bool
take_token(struct wconn *c, const char *token, enum ftoken_dir dir)
{
	int rc = token[0] == '\0' ? -ENOENT :
		 ftoken_take(c->w->tokens, token, dir, c->room, c->name, clock_mono_s_coarse(), &c->tok);

	if (rc == 0)
		return true;
	LOG(INFO, WEB, "%s %s/%s: token refused (%s)", dir == FTOKEN_UPLOAD ? "PUT" : "GET",
	    c->room, c->name, token[0] == '\0' ? "none" : rc == -EACCES ?
	    "issued for another direction, room or file" : "unknown, used or expired");
	web_respond_error(c, 403);
	return false;
}

/* ---- upload --------------------------------------------------------- */

static void
upload_fail(struct wconn *c, int status)
{
	webfile_release(c);	/* the temp file goes */
	web_respond_error(c, status);
}

/* The body is all in the temp file: make it the file (steps 2-4). */
static void
upload_stored(struct wconn *c)
{
	struct web *w = c->w;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc;

	web_pause_reading(c);
	if (fsync(c->fd) == -1) {
		rc = -errno;
		LOG(ERR, WEB, "fsync of an upload to %s/%s: %s", w->files_dir, c->room,
		    strerror(-rc));
		upload_fail(c, disk_status(rc));
		return;
	}
	close(c->fd);
	c->fd = -1;
	EVP_DigestFinal_ex(c->sha, md, &mdlen);
	memset(&c->rec, 0, sizeof(c->rec));
	for (unsigned i = 0; i < mdlen && i < 32; i++)
		snprintf(c->rec.sha256 + 2 * i, 3, "%02x", md[i]);
	/* Never over an existing file (names are unique, but be sure). */
	if (renameat2(c->dirfd, c->tmp, c->dirfd, c->name, RENAME_NOREPLACE) == -1) {
		rc = errno;
		if (rc == EINVAL || rc == ENOSYS) {	/* no RENAME_NOREPLACE here */
			rc = linkat(c->dirfd, c->tmp, c->dirfd, c->name, 0) == -1 ? errno : 0;
			if (rc == 0)
				unlinkat(c->dirfd, c->tmp, 0);
		}
		if (rc != 0) {
			LOG(ERR, WEB, "cannot rename an upload to %s/%s/%s: %s", w->files_dir,
			    c->room, c->name, strerror(rc));
			upload_fail(c, rc == EEXIST ? 409 : 500);
			return;
		}
	}
	c->tmp[0] = '\0';
	if (fsync(c->dirfd) == -1) {
		unstore(c);
		upload_fail(c, 500);
		return;
	}
	snprintf(c->rec.id, sizeof(c->rec.id), "%s", c->name);
	snprintf(c->rec.room_id, sizeof(c->rec.room_id), "%s", c->room);
	snprintf(c->rec.uploader, sizeof(c->rec.uploader), "%s", c->tok.user);
	snprintf(c->rec.name, sizeof(c->rec.name), "%s", c->tok.orig);
	c->rec.size = c->got;
	c->rec.state = FILES_PENDING;
	c->rec.ts_ms = clock_real_ms();
	if (files_put(w->db, &c->rec, true) != 0) {
		unstore(c);
		upload_fail(c, 500);
		return;
	}
	if (web_commit(c, WAL_EV_FILEUPLOAD) != 0) {
		unstore(c);
		upload_fail(c, 503);
	}
}

void
webfile_body(struct wconn *c)
{
	struct web *w = c->w;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);

	if (n > c->want - c->got)
		n = (size_t)(c->want - c->got);	/* the rest is the next request */
	while (n > 0) {
		struct evbuffer_iovec v[16];
		int k = evbuffer_peek(in, (ev_ssize_t)n, NULL, v, 16);
		size_t done = 0;

		if (k > 16)
			k = 16;
		for (int i = 0; i < k && done < n; i++) {
			size_t l = v[i].iov_len < n - done ? v[i].iov_len : n - done;
			int rc;

			EVP_DigestUpdate(c->sha, v[i].iov_base, l);
			rc = write_all(c->fd, v[i].iov_base, l);
			if (rc != 0) {
				LOG(ERR, WEB, "writing an upload to %s/%s: %s", w->files_dir,
				    c->room, strerror(-rc));
				upload_fail(c, disk_status(rc));
				return;
			}
			done += l;
		}
		evbuffer_drain(in, done);
		n -= done;
		c->got += done;
		WEB_ADD(w, bytes_in, done);
	}
	/* Start writeback now and then, so that the final fsync is short. */
	if (c->got - c->synced >= WEB_SYNC_EVERY) {
		sync_file_range(c->fd, (off64_t)c->synced, (off64_t)(c->got - c->synced),
				SYNC_FILE_RANGE_WRITE);
		c->synced = c->got;
	}
	if (c->got == c->want) {
		c->body_read = true;
		upload_stored(c);
	}
}

static void
upload_begin(struct wconn *c, const char *token)
{
	struct web *w = c->w;
	int rc;

	if (c->req.has_te || !c->req.has_length) {
		web_respond_error(c, 411);	/* we need the size before the body */
		return;
	}
	if (c->req.length > w->cfg.max_upload_bytes) {
		web_respond_error(c, 413);
		return;
	}
	if (c->req.expect_other) {
		web_respond_error(c, 417);
		return;
	}
	if (!take_token(c, token, FTOKEN_UPLOAD))
		return;
	rc = room_check(w, c->room, c->tok.user, true);
	if (rc != 0) {
		web_respond_error(c, rc);
		return;
	}
	rc = room_dir(w, c->room, true);
	if (rc < 0) {
		LOG(ERR, WEB, "room folder %s/%s: %s", w->files_dir, c->room, strerror(-rc));
		web_respond_error(c, disk_status(rc));
		return;
	}
	c->dirfd = rc;
	if (faccessat(c->dirfd, c->name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		web_respond_error(c, 409);
		return;
	}
	snprintf(c->tmp, sizeof(c->tmp), ".tmp-%s", c->name);
	c->fd = openat(c->dirfd, c->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       0640);
	if (c->fd == -1 && errno == EEXIST) {	/* left by a crash: ours to replace */
		unlinkat(c->dirfd, c->tmp, 0);
		c->fd = openat(c->dirfd, c->tmp,
			       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	}
	if (c->fd == -1) {
		rc = -errno;
		c->tmp[0] = '\0';
		LOG(ERR, WEB, "cannot create an upload in %s/%s: %s", w->files_dir, c->room,
		    strerror(-rc));
		web_respond_error(c, disk_status(rc));
		return;
	}
	c->sha = EVP_MD_CTX_new();
	if (c->sha == NULL || EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL) != 1) {
		upload_fail(c, 500);
		return;
	}
	c->want = c->req.length;
	c->got = c->synced = 0;
	web_begin_body(c);
}

/* ---- download ------------------------------------------------------- */

static void download_open(struct wconn *c);

/* After files_get() answered <rc> for c->name: opens the file when its
 * record is ready and in c->room, and it matches the record. 0, or the
 * HTTP status to answer (404, 500). */
static int
open_recorded(struct wconn *c, int rc)
{
	struct web *w = c->w;
	struct stat st;

	if (rc != 0 || c->rec.state != FILES_READY || strcmp(c->rec.room_id, c->room) != 0)
		return rc == 0 || rc == -ENOENT ? 404 : 500;
	rc = room_dir(w, c->room, false);
	if (rc < 0)
		return rc == -ENOENT ? 404 : 500;
	c->dirfd = rc;
	c->fd = openat(c->dirfd, c->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (c->fd == -1)
		return errno == ENOENT ? 404 : 500;
	if (fstat(c->fd, &st) == -1 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != c->rec.size) {
		LOG(ERR, WEB, "%s/%s/%s does not match its record (%llu bytes)", w->files_dir,
		    c->room, c->name, (unsigned long long)c->rec.size);
		return 500;
	}
	return 0;
}

static void
download_begin(struct wconn *c, const char *token)
{
	struct web *w = c->w;
	int rc;

	if (!c->body_read) {
		web_respond_error(c, 400);	/* a GET has no body here */
		return;
	}
	if (c->req.expect_other) {
		web_respond_error(c, 417);
		return;
	}
	if (!take_token(c, token, FTOKEN_DOWNLOAD))
		return;
	rc = room_check(w, c->room, c->tok.user, false);
	if (rc != 0) {
		web_respond_error(c, rc);
		return;
	}
	download_open(c);
}

void
webfile_fetched(struct wconn *c, int status)
{
	if (status == 0 || status == -ENOENT) {
		download_open(c);	/* 404 now if no node had it */
		return;
	}
	WEB_INC(c->w, errors_5xx);
	web_respond(c, 502, "Content-Type: text/plain\r\n",
		    "502 the node that stores this file did not hand it over\n", 56);
}

/* The file of a GET whose token and room passed: open it and start the
 * answer, after its FILEDOWNLOAD event is durable (webfile_commit_done).
 * Not stored here and in an array: fetched from the node that stores it
 * first (webfetch.h), once. */
static void
download_open(struct wconn *c)
{
	struct web *w = c->w;
	int rc;

	rc = files_get(w->db, c->name, &c->rec);
	if (rc == -ENOENT && !c->fetched) {
		rc = webfetch_submit(c);
		if (rc == 0)
			return;
		if (rc == -EBUSY) {
			web_respond_error(c, 503);
			return;
		}
		rc = -ENOENT;
	}
	rc = open_recorded(c, rc);
	if (rc != 0) {
		web_respond_error(c, rc);
		return;
	}
	c->size = c->rec.size;
	c->status = 200;
	c->first = 0;
	c->off = 0;
	c->end = c->size;
	if (c->req.has_range) {
		uint64_t a, b;

		switch (http1_parse_range(c->req.range, c->size, &a, &b)) {
		case HTTP1_RANGE_OK:
			c->status = 206;
			c->first = c->off = a;
			c->end = b + 1;
			break;
		case HTTP1_RANGE_UNSAT: {
			char h[96];

			snprintf(h, sizeof(h), "Content-Range: bytes */%llu\r\n"
				 "Content-Type: text/plain\r\n", (unsigned long long)c->size);
			WEB_INC(w, errors_4xx);
			web_respond(c, 416, h, "416 Range Not Satisfiable\n", 26);
			return;
		}
		case HTTP1_RANGE_NONE:
			break;
		}
	}
	if (web_commit(c, WAL_EV_FILEDOWNLOAD) != 0)
		web_respond_error(c, 503);
}

int
webfile_fill(struct wconn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (c->off < c->end && evbuffer_get_length(out) < WEB_SEND_HIGH) {
		uint64_t want = c->end - c->off;
		struct evbuffer_iovec v;
		ssize_t n;

		if (want > WEB_CHUNK)
			want = WEB_CHUNK;
		if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) < 1)
			return -1;
		if (v.iov_len > want)
			v.iov_len = want;
		n = pread(c->fd, v.iov_base, v.iov_len, (off_t)c->off);
		if (n <= 0) {
			/* The head is out: all that is left is to close short. */
			LOG(ERR, WEB, "reading %s/%s/%s: %s", c->w->files_dir, c->room, c->name,
			    n == 0 ? "the file shrank" : strerror(errno));
			return -1;
		}
		v.iov_len = (size_t)n;
		evbuffer_commit_space(out, &v, 1);
		c->off += (uint64_t)n;
		WEB_ADD(c->w, bytes_out, (uint64_t)n);
	}
	return c->off >= c->end ? 1 : 0;
}

/* ---- another node of the array fetches a file (webfetch.h) ---------- */

/* Copies <s> into <out> as a header value: control characters become '_'. */
static void
header_safe(char *out, size_t cap, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < cap && s[i] != '\0'; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '_' : s[i];
	out[i] = '\0';
}

/* A GET signed by a node of the array: the file and its record, no token,
 * no FILEDOWNLOAD here (the node that serves the member logs it). */
static void
peer_serve(struct wconn *c, const char *token)
{
	struct web *w = c->w;
	char hdrs[900], uploader[160], name[256];
	int rc;

	if (c->req.method != HTTP1_GET || token[0] != '\0' || !c->req.has_peer ||
	    !webfetch_peer_ok(w, c->req.peer, c->room, c->name)) {
		WEB_INC(w, denied);
		web_respond_error(c, 403);
		return;
	}
	if (!c->body_read) {
		web_respond_error(c, 400);
		return;
	}
	rc = open_recorded(c, files_get(w->db, c->name, &c->rec));
	if (rc != 0) {
		web_respond_error(c, rc);
		return;
	}
	header_safe(uploader, sizeof(uploader), c->rec.uploader);
	header_safe(name, sizeof(name), c->rec.name);
	snprintf(hdrs, sizeof(hdrs), "Content-Type: application/octet-stream\r\n"
		 "X-Parley-SHA256: %s\r\nX-Parley-Size: %llu\r\nX-Parley-Uploader: %s\r\n"
		 "X-Parley-Name: %s\r\nX-Parley-Ts: %llu\r\n", c->rec.sha256,
		 (unsigned long long)c->rec.size, uploader, name,
		 (unsigned long long)c->rec.ts_ms);
	c->size = c->rec.size;
	c->status = 200;
	c->first = c->off = 0;
	c->end = c->size;
	web_respond_stream(c, 200, hdrs, c->size);
}

/* ---- dispatch ------------------------------------------------------- */

void
webfile_request(struct wconn *c)
{
	struct web *w = c->w;
	char token[HTTP1_TOKEN_LEN + 1];
	int rc;

	if (c->req.method == HTTP1_OTHER) {
		web_respond_error(c, 405);
		return;
	}
	rc = http1_filestore_target(c->req.target, w->prefix, c->room, c->name, token);
	if (rc != 0) {
		web_respond_error(c, rc);
		return;
	}
	if (c->req.has_peer || c->req.npeer > 0)
		peer_serve(c, token);
	else if (c->req.method == HTTP1_PUT)
		upload_begin(c, token);
	else
		download_begin(c, token);
}

void
webfile_commit_done(struct wconn *c, int status)
{
	struct web *w = c->w;
	char hdrs[512], body[256];
	int n;

	if (c->req.method == HTTP1_PUT) {
		if (status != 0) {
			LOG(ERR, WEB, "FILEUPLOAD %s could not be logged: %s", c->name,
			    strerror(-status));
			unstore(c);
			web_respond_error(c, 503);
			return;
		}
		c->rec.state = FILES_READY;
		if (files_put(w->db, &c->rec, true) != 0) {
			/* Logged, stored, but never served: see files.h. */
			LOG(ERR, WEB, "file %s is logged but its record stays pending", c->name);
			web_respond_error(c, 500);
			return;
		}
		WEB_INC(w, uploads);
		LOG(INFO, WEB, "upload %s/%s by %s: %llu bytes", c->room, c->name, c->tok.user,
		    (unsigned long long)c->rec.size);
		snprintf(hdrs, sizeof(hdrs), "Location: %s%s/%s\r\nContent-Type: application/json\r\n",
			 w->prefix, c->room, c->name);
		n = snprintf(body, sizeof(body), "{\"name\":\"%s\",\"size\":%llu,\"sha256\":\"%s\"}\n",
			     c->name, (unsigned long long)c->rec.size, c->rec.sha256);
		web_respond(c, 201, hdrs, body, (size_t)n);
		return;
	}
	if (status != 0) {
		LOG(ERR, WEB, "FILEDOWNLOAD %s could not be logged: %s", c->name, strerror(-status));
		web_respond_error(c, 503);
		return;
	}
	WEB_INC(w, downloads);
	n = snprintf(hdrs, sizeof(hdrs), "Content-Type: application/octet-stream\r\n"
		     "Accept-Ranges: bytes\r\nX-Content-Type-Options: nosniff\r\n");
	if (c->status == 206)
		snprintf(hdrs + n, sizeof(hdrs) - (size_t)n, "Content-Range: bytes %llu-%llu/%llu\r\n",
			 (unsigned long long)c->first, (unsigned long long)(c->end - 1),
			 (unsigned long long)c->size);
	web_respond_stream(c, c->status, hdrs, c->end - c->off);
}

/* ---- boot ----------------------------------------------------------- */

void
webfile_sweep(struct web *w)
{
	DIR *top;
	struct dirent *de;
	int fd = dup(w->files_fd);

	top = fd >= 0 ? fdopendir(fd) : NULL;
	if (top == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(top)) != NULL) {
		int rfd;
		DIR *room;
		struct dirent *fe;

		if (de->d_name[0] == '.')
			continue;
		rfd = openat(w->files_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		room = rfd >= 0 ? fdopendir(rfd) : NULL;
		if (room == NULL) {
			if (rfd >= 0)
				close(rfd);
			continue;
		}
		while ((fe = readdir(room)) != NULL)
			if (strncmp(fe->d_name, ".tmp-", 5) == 0) {
				LOG(NOTICE, WEB, "removing %s/%s/%s, an upload cut by a stop",
				    w->files_dir, de->d_name, fe->d_name);
				unlinkat(rfd, fe->d_name, 0);
			}
		closedir(room);
	}
	closedir(top);
}
