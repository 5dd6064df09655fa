/* The Web service end to end (xccos.md §e, option A): a real parleyd, tokens
 * from the test client (getfutok/getfdtok over XCCOS), curl as the HTTPS
 * client (and a raw TLS client for what curl will not send), the files,
 * their records and the compliance output checked afterwards.
 *
 * The HTTP/1.1 parser's own tests are unit tests: tests/dataplane/http. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "perf/gcclient.h"
#include "storage/db.h"
#include "storage/files.h"
#include "tests/integration/chatkit.h"
#include "tests/integration/harness.h"

#define G1 "5b0c7c1e-1111-4222-8333-444455556666"
#define G2 "0988239a-bb66-4616-90a4-b07771a2097c"

/* ---- a server with the Web service ---------------------------------- */

struct web {
	struct server	s;
	uint16_t	port;		/* HTTPS */
	char		base[128];	/* https://127.0.0.1:PORT/filestore/ */
	char		cacert[400];
};

/* The Web service starts after the SIP listener: wait for it too. */
static void
wait_web(struct web *w)
{
	for (int i = 0; i < 100; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(w->port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

		close(fd);
		if (ok)
			return;
		usleep(50000);
	}
	cr_assert_fail("the Web service does not listen on %u", w->port);
}

static void
web_start(struct web *w, const char *extra)
{
	char ini[2048];

	w->port = server_free_port();
	snprintf(ini, sizeof(ini), "[web]\nlisten = 127.0.0.1:%u\n%s", w->port, extra ? extra : "");
	server_start(&w->s, ini);
	snprintf(w->base, sizeof(w->base), "https://127.0.0.1:%u/filestore/", w->port);
	snprintf(w->cacert, sizeof(w->cacert), "%s/tls/cert.pem", w->s.dir);
	wait_web(w);
}

static struct gc *
login(struct web *w, const char *aor, const char *pw)
{
	char err[256];
	struct gc *g = gc_open("127.0.0.1", w->s.port, aor, pw, err, sizeof(err));

	cr_assert_not_null(g, "%s: %s", aor, err);
	return g;
}

/* The ma-chan URI of the room called <name>. */
static void
room_uri(struct gc *g, const char *name, char *uri, size_t cap)
{
	char q[256], *b;

	snprintf(q, sizeof(q), "<qib qtype=\"BYNAME\" criteria=\"%s\" extended=\"false\"/>", name);
	cr_assert_eq(gc_cmd(g, "chansrch", q), 200);
	b = gc_wait(g, 5000, "rpl:chansrch", NULL);
	cr_assert(b && gc_room_uri(b, name, uri, cap), "no room %s", name);
	free(b);
}

static const char *
room_id(const char *uri)
{
	return strrchr(uri, '/') + 1;
}

static void
attr(const char *body, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), " %s=\"", name);
	p = strstr(body, pat);
	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(pat);
	q = strchr(p, '"');
	snprintf(out, cap, "%.*s", (int)(q - p), p);
}

/* getfutok (<up>) or getfdtok for <file> in room <uri>: the reply's code,
 * the token and the repository name. */
static int
token(struct gc *g, bool up, const char *uri, const char *file, char *tok, char *name)
{
	char data[512], code[8], *b;
	int st;

	snprintf(data, sizeof(data), "<ftdb channelUri=\"%s\" fileUrl=\"%s\"/>", uri, file);
	st = gc_cmd(g, up ? "getfutok" : "getfdtok", data);
	cr_assert_eq(st, 200, "%s %s: SIP %d", up ? "getfutok" : "getfdtok", file, st);
	b = gc_wait(g, 5000, "rpl:getftok", NULL);
	cr_assert_not_null(b, "no rpl:getftok");
	attr(b, "code", code, sizeof(code));
	if (tok != NULL)
		attr(b, "token", tok, 40);
	if (name != NULL)
		attr(b, "fileUrl", name, 64);
	free(b);
	return atoi(code);
}

/* Runs curl (verifying our certificate); its HTTP status, 0 when it got
 * none. <args> go before the URL. */
static int
curl(struct web *w, const char *args, const char *path)
{
	char cmd[4096], out[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "curl -s --max-time 120 --cacert %s %s "
		 "-w '%%{http_code}' %s '%s%s'", w->cacert, strstr(args, "-o ") ? "" : "-o /dev/null",
		 args, w->base, path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (fgets(out, sizeof(out), p) == NULL)
		out[0] = '\0';
	pclose(p);
	return atoi(out);
}

static int
put(struct web *w, const char *file, const char *uri, const char *name, const char *tok)
{
	char args[600], path[300];

	snprintf(args, sizeof(args), "-T %s", file);
	snprintf(path, sizeof(path), "%s/%s?token=%s", room_id(uri), name, tok);
	return curl(w, args, path);
}

static int
get(struct web *w, const char *out, const char *extra, const char *uri, const char *name,
    const char *tok)
{
	char args[700], path[300];

	/* curl writes no file for an empty body: start from an empty one. */
	cr_assert_eq(run(": > %s", out), 0);
	snprintf(args, sizeof(args), "-o %s %s", out, extra ? extra : "");
	snprintf(path, sizeof(path), "%s/%s?token=%s", room_id(uri), name, tok);
	return curl(w, args, path);
}

static void
sha256_file(const char *path, char hex[65])
{
	unsigned char buf[65536], md[32];
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	unsigned int ml;
	size_t n;
	FILE *f = fopen(path, "rb");

	cr_assert_not_null(f, "%s", path);
	EVP_DigestInit_ex(x, EVP_sha256(), NULL);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(x, buf, n);
	EVP_DigestFinal_ex(x, md, &ml);
	EVP_MD_CTX_free(x);
	fclose(f);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static void
make_file(const char *path, size_t bytes)
{
	cr_assert_eq(run("head -c %zu /dev/urandom > %s", bytes, path), 0);
}

static bool
exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool
exists(const char *fmt, ...)
{
	char path[1024];
	struct stat st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return lstat(path, &st) == 0;
}

/* Entries of the room's folder (temp files included). */
static int
room_entries(struct web *w, const char *uri)
{
	char path[600];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/files/%s", w->s.dir, room_id(uri));
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* Runs parleyctl on the server; its exit status. */
static int
ctl(struct web *w, const char *args)
{
	return run("%s/control/parleyctl -c %s %s > %s/ctl.out 2>&1", getenv("PARLEY_BUILDDIR"),
		   w->s.conf, args, w->s.dir);
}

/* ---- compliance output ---------------------------------------------- */


/* Stops the server gracefully (it exports what is left) and reads the
 * compliance output. The data directory stays. */
static void
stop_and_export(struct web *w, struct kit_evs *e)
{
	char dir[400];

	server_kill(&w->s, SIGTERM);
	snprintf(dir, sizeof(dir), "%s/compliance", w->s.dir);
	kit_read_export(dir, e);
}

static int
record(struct web *w, const char *name, struct files_rec *r)
{
	char path[400], err[512];
	struct db *db;
	int rc;

	snprintf(path, sizeof(path), "%s/db", w->s.dir);
	db = db_open(path, NULL, err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
	rc = files_get(db, name, r);
	db_close(db);
	return rc;
}

/* ---- a raw TLS client, for what curl will not send ------------------ */

struct raw {
	int	fd;
	SSL_CTX	*ctx;
	SSL	*ssl;
};

static bool
raw_open(struct raw *r, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };

	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(r->fd >= 0);
	cr_assert_eq(connect(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r->ctx = SSL_CTX_new(TLS_client_method());
	r->ssl = SSL_new(r->ctx);
	SSL_set_fd(r->ssl, r->fd);
	return SSL_connect(r->ssl) == 1;
}

static void
raw_send(struct raw *r, const void *buf, size_t len)
{
	cr_assert_eq(SSL_write(r->ssl, buf, (int)len), (int)len);
}

/* Reads until the server closes or <timeout_s> pass; the bytes (NUL-
 * terminated) and whether the server closed. */
static bool
raw_read(struct raw *r, char *buf, size_t cap, int timeout_s)
{
	size_t n = 0;
	time_t end = time(NULL) + timeout_s;

	buf[0] = '\0';
	while (n + 1 < cap && time(NULL) <= end) {
		int k = SSL_read(r->ssl, buf + n, (int)(cap - 1 - n));

		if (k > 0) {
			n += (size_t)k;
			buf[n] = '\0';
			continue;
		}
		if (SSL_get_error(r->ssl, k) == SSL_ERROR_ZERO_RETURN ||
		    SSL_get_error(r->ssl, k) == SSL_ERROR_SYSCALL) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				continue;	/* SO_RCVTIMEO */
			return true;
		}
		return true;
	}
	return false;
}

static void
raw_close(struct raw *r)
{
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	close(r->fd);
}

/* One raw request; the status of the first response line, or 0. Reads
 * the head and Content-Length bytes of body, then hangs up (a refused
 * request may keep its connection, or linger). */
static int
raw_status(struct web *w, const char *req, size_t len)
{
	struct raw r;
	char buf[4096];
	size_t n = 0;
	int st = 0;

	cr_assert(raw_open(&r, w->port));
	raw_send(&r, req, len);
	while (n + 1 < sizeof(buf)) {
		int k = SSL_read(r.ssl, buf + n, (int)(sizeof(buf) - 1 - n));
		const char *end, *cl;

		if (k <= 0)
			break;
		n += (size_t)k;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
		cl = strstr(buf, "Content-Length: ");
		if (end != NULL && cl != NULL && cl < end &&
		    n >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10))
			break;
	}
	buf[n] = '\0';
	if (strncmp(buf, "HTTP/1.1 ", 9) == 0)
		st = atoi(buf + 9);
	raw_close(&r);
	return st;
}

/* <tmpl> with every "{R}" replaced by <room> and "{N}" by <name>. */
static void
subst(const char *tmpl, const char *room, const char *name, char *out, size_t cap)
{
	size_t o = 0;

	for (const char *p = tmpl; *p && o + 1 < cap;) {
		const char *v = !strncmp(p, "{R}", 3) ? room : !strncmp(p, "{N}", 3) ? name : NULL;

		if (v != NULL) {
			o += (size_t)snprintf(out + o, cap - o, "%s", v);
			p += 3;
		} else {
			out[o++] = *p++;
		}
	}
	out[o < cap ? o : cap - 1] = '\0';
}

/* ---- tests ---------------------------------------------------------- */

Test(web, upload_download_roundtrip_and_compliance, .timeout = 180)
{
	static const size_t sizes[] = { 0, 4321, 50u << 20 };
	char lobby[200], in[3][300], out[400], name[3][64], tok[40], h1[65], h2[65];
	struct files_rec rec;
	struct kit_evs *e = calloc(1, sizeof(*e));
	struct web w;
	struct gc *a;

	web_start(&w, NULL);
	a = login(&w, "alice@example.com", "alice-pw");
	room_uri(a, "Lobby", lobby, sizeof(lobby));
	for (int i = 0; i < 3; i++) {
		snprintf(in[i], sizeof(in[i]), "%s/in%d.bin", w.s.dir, i);
		make_file(in[i], sizes[i]);
		cr_assert_eq(token(a, true, lobby, "report.bin", tok, name[i]), 200);
		cr_assert_eq(strlen(name[i]), 40, "GUID + .bin: %s", name[i]);
		cr_assert_eq(put(&w, in[i], lobby, name[i], tok), 201, "upload of %zu bytes",
			     sizes[i]);
		cr_assert(exists("%s/files/%s/%s", w.s.dir, room_id(lobby), name[i]));
		/* Down again: the same bytes. */
		cr_assert_eq(token(a, false, lobby, name[i], tok, NULL), 200);
		snprintf(out, sizeof(out), "%s/out.bin", w.s.dir);
		cr_assert_eq(get(&w, out, NULL, lobby, name[i], tok), 200);
		sha256_file(in[i], h1);
		sha256_file(out, h2);
		cr_assert_str_eq(h1, h2, "%zu bytes came back different", sizes[i]);
	}
	/* One range (206), one unsatisfiable range (416). */
	cr_assert_eq(token(a, false, lobby, name[1], tok, NULL), 200);
	cr_assert_eq(get(&w, out, "-r 100-1099", lobby, name[1], tok), 206);
	cr_assert_eq(run("cmp -s -n 1000 -i 100:0 %s %s && test $(stat -c %%s %s) -eq 1000",
			 in[1], out, out), 0, "the range is not bytes 100..1099");
	cr_assert_eq(token(a, false, lobby, name[1], tok, NULL), 200);
	cr_assert_eq(get(&w, out, "-r 5000-", lobby, name[1], tok), 416);
	cr_assert_eq(token(a, false, lobby, name[1], tok, NULL), 200);
	cr_assert_eq(get(&w, out, "-r -21", lobby, name[1], tok), 206);
	cr_assert_eq(run("test $(stat -c %%s %s) -eq 21", out), 0);
	gc_close(a);

	stop_and_export(&w, e);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(kit_count(e, "FILEUPLOAD", name[i]), 1, "FILEUPLOAD %s", name[i]);
		/* 1 whole download each; the second file also two ranges (the 416
		 * sent no bytes and logs nothing). */
		cr_assert_eq(kit_count(e, "FILEDOWNLOAD", name[i]), i == 1 ? 3 : 1, "FILEDOWNLOAD %s",
			     name[i]);
		cr_assert(exists("%s/compliance/Attachment/%s", w.s.dir, name[i]),
			  "no Attachment copy of %s", name[i]);
		sha256_file(in[i], h1);
		snprintf(out, sizeof(out), "%s/compliance/Attachment/%s", w.s.dir, name[i]);
		sha256_file(out, h2);
		cr_assert_str_eq(h1, h2);
		cr_assert_eq(record(&w, name[i], &rec), 0);
		cr_assert_eq(rec.state, FILES_READY);
		cr_assert_eq(rec.size, sizes[i]);
		cr_assert_str_eq(rec.sha256, h1);
		cr_assert_str_eq(rec.room_id, room_id(lobby));
		cr_assert_str_eq(rec.uploader, "sip:alice@example.com");
		cr_assert_str_eq(rec.name, "report.bin");
	}
	for (size_t i = 0; i < e->n; i++)
		cr_assert_str_eq(e->v[i].user, "alice@example.com");
	kit_evs_free(e);
	free(e);
	run("rm -rf %s", w.s.dir);
}

Test(web, token_refusals, .timeout = 120)
{
	char lobby[200], other[200], nofiles[200], closed[200], f[300], out[300];
	char ta[40], tb[40], t[40], na[64], nb[64], n[64], nc[64];
	struct web w;
	struct gc *a, *b;

	web_start(&w, "token_ttl_s = 2\n"
		  "[room:Other]\nfilepost = true\n"
		  "[room:NoFiles]\nfilepost = false\n"
		  "[room:Closed]\nprivacy = closed\nfilepost = true\nmembers = sip:alice@example.com\n");
	a = login(&w, "alice@example.com", "alice-pw");
	b = login(&w, "bob@example.com", "bob-pw");
	room_uri(a, "Lobby", lobby, sizeof(lobby));
	room_uri(a, "Other", other, sizeof(other));
	room_uri(a, "NoFiles", nofiles, sizeof(nofiles));
	room_uri(a, "Closed", closed, sizeof(closed));
	snprintf(f, sizeof(f), "%s/f.txt", w.s.dir);
	snprintf(out, sizeof(out), "%s/out.txt", w.s.dir);
	make_file(f, 1000);

	/* Wrong user: bob puts his file with alice's token. */
	cr_assert_eq(token(a, true, lobby, "a.txt", ta, na), 200);
	cr_assert_eq(token(b, true, lobby, "b.txt", tb, nb), 200);
	cr_assert_eq(put(&w, f, lobby, nb, ta), 403);
	cr_assert_eq(put(&w, f, lobby, na, ta), 403, "a misused token is burnt");
	cr_assert_eq(put(&w, f, lobby, nb, tb), 201);
	/* ... and downloads with alice's download token for bob's file. */
	cr_assert_eq(token(a, false, lobby, na, ta, NULL), 200);
	cr_assert_eq(get(&w, out, NULL, lobby, nb, ta), 403);

	/* Other room: the token is bound to Lobby. */
	cr_assert_eq(token(a, true, lobby, "a.txt", t, n), 200);
	cr_assert_eq(put(&w, f, other, n, t), 403);
	cr_assert(!exists("%s/files/%s/%s", w.s.dir, room_id(other), n));

	/* Reused. */
	cr_assert_eq(token(a, true, lobby, "a.txt", t, n), 200);
	cr_assert_eq(put(&w, f, lobby, n, t), 201);
	cr_assert_eq(put(&w, f, lobby, n, t), 403);
	cr_assert_eq(token(a, false, lobby, n, t, NULL), 200);
	cr_assert_eq(get(&w, out, NULL, lobby, n, t), 200);
	cr_assert_eq(get(&w, out, NULL, lobby, n, t), 403);

	/* Direction swapped: a download token to upload, an upload token to
	 * download. */
	cr_assert_eq(token(a, true, lobby, "c.txt", t, na), 200);
	cr_assert_eq(token(a, false, lobby, na, tb, NULL), 200);
	cr_assert_eq(put(&w, f, lobby, na, tb), 403);
	cr_assert_eq(token(a, true, lobby, "c.txt", t, na), 200);
	cr_assert_eq(get(&w, out, NULL, lobby, nb, t), 403);
	cr_assert_eq(token(a, true, lobby, "c.txt", t, na), 200);
	cr_assert_eq(get(&w, out, NULL, lobby, na, t), 403);

	/* No filepost: refused at issue; a forged upload is refused too. */
	cr_assert_eq(token(a, true, nofiles, "x.txt", NULL, NULL), 403);
	cr_assert_eq(put(&w, f, nofiles, G2 ".txt", G1), 403);
	cr_assert_eq(token(a, true, lobby, "x.txt", t, n), 200);
	cr_assert_eq(put(&w, f, nofiles, n, t), 403);
	cr_assert_eq(room_entries(&w, nofiles), 0);

	/* A closed room: only members get tokens. */
	cr_assert_eq(token(b, true, closed, "x.txt", NULL, NULL), 403);
	cr_assert_eq(token(b, false, closed, G2 ".txt", NULL, NULL), 403);
	cr_assert_eq(token(a, true, closed, "x.txt", t, nc), 200);
	cr_assert_eq(put(&w, f, closed, nc, t), 201);

	/* The room is checked again at the request, as the catalog has it
	 * now: filepost turned off, a member removed after the token. */
	cr_assert_eq(token(a, true, other, "x.txt", t, n), 200);
	cr_assert_eq(ctl(&w, "room set Other filepost=false"), 0);
	cr_assert_eq(put(&w, f, other, n, t), 403);
	cr_assert_eq(token(a, false, closed, nc, t, NULL), 200);
	cr_assert_eq(ctl(&w, "room member del Closed sip:alice@example.com"), 0);
	cr_assert_eq(get(&w, out, NULL, closed, nc, t), 403);

	/* Unknown file: 404 (with a good token). */
	cr_assert_eq(token(a, false, lobby, G2 ".txt", t, NULL), 200);
	cr_assert_eq(get(&w, out, NULL, lobby, G2 ".txt", t), 404);

	/* Expired (token_ttl_s = 2). */
	cr_assert_eq(token(a, true, lobby, "late.txt", t, n), 200);
	cr_assert_eq(token(a, false, lobby, nb, tb, NULL), 200);
	sleep(3);
	cr_assert_eq(put(&w, f, lobby, n, t), 403);
	cr_assert_eq(get(&w, out, NULL, lobby, nb, tb), 403);
	cr_assert(!exists("%s/files/%s/%s", w.s.dir, room_id(lobby), n));

	gc_close(a);
	gc_close(b);
	cr_assert_eq(server_stop(&w.s), 0);
}

Test(web, oversize_and_cut_off_uploads_leave_nothing, .timeout = 120)
{
	char lobby[200], f[300], t[40], n1[64], n2[64], n3[64], req[600], buf[2048];
	struct files_rec rec;
	struct kit_evs *e = calloc(1, sizeof(*e));
	static char chunk[65536];
	struct raw r;
	struct web w;
	struct gc *a;

	web_start(&w, "max_upload_bytes = 1048576\nread_timeout_s = 2\n");
	a = login(&w, "alice@example.com", "alice-pw");
	room_uri(a, "Lobby", lobby, sizeof(lobby));
	snprintf(f, sizeof(f), "%s/big.bin", w.s.dir);
	make_file(f, 2u << 20);

	/* Oversize: 413 from Content-Length, before any body byte. */
	cr_assert_eq(token(a, true, lobby, "big.bin", t, n1), 200);
	cr_assert_eq(put(&w, f, lobby, n1, t), 413);
	cr_assert_eq(room_entries(&w, lobby), 0);

	/* Cut off halfway: the client announces 1000000 bytes, sends half and
	 * disconnects. */
	cr_assert_eq(token(a, true, lobby, "cut.bin", t, n2), 200);
	cr_assert(raw_open(&r, w.port));
	snprintf(req, sizeof(req), "PUT /filestore/%s/%s?token=%s HTTP/1.1\r\nHost: x\r\n"
		 "Content-Length: 1000000\r\n\r\n", room_id(lobby), n2, t);
	raw_send(&r, req, strlen(req));
	for (int i = 0; i < 8; i++)
		raw_send(&r, chunk, sizeof(chunk));
	usleep(300000);
	cr_assert_eq(room_entries(&w, lobby), 1, "the temp file while it streams");
	raw_close(&r);
	for (int i = 0; i < 50 && room_entries(&w, lobby) > 0; i++)
		usleep(100000);
	cr_assert_eq(room_entries(&w, lobby), 0, "a cut upload left a file");

	/* Stalled halfway: the read timeout (2 s) drops it the same way. */
	cr_assert_eq(token(a, true, lobby, "stall.bin", t, n3), 200);
	cr_assert(raw_open(&r, w.port));
	snprintf(req, sizeof(req), "PUT /filestore/%s/%s?token=%s HTTP/1.1\r\nHost: x\r\n"
		 "Content-Length: 1000000\r\n\r\n", room_id(lobby), n3, t);
	raw_send(&r, req, strlen(req));
	raw_send(&r, chunk, sizeof(chunk));
	cr_assert(raw_read(&r, buf, sizeof(buf), 5), "the server did not drop a stalled upload");
	raw_close(&r);
	cr_assert_eq(room_entries(&w, lobby), 0);

	gc_close(a);
	stop_and_export(&w, e);
	cr_assert_eq(kit_count(e, "FILEUPLOAD", NULL), 0);
	cr_assert_eq(record(&w, n1, &rec), -ENOENT);
	cr_assert_eq(record(&w, n2, &rec), -ENOENT);
	cr_assert_eq(record(&w, n3, &rec), -ENOENT);
	cr_assert(!exists("%s/compliance/Attachment/%s", w.s.dir, n2));
	kit_evs_free(e);
	free(e);
	run("rm -rf %s", w.s.dir);
}

/* A slow upload in the background (curl --limit-rate); its pid. */
static pid_t
slow_put(struct web *w, const char *file, const char *uri, const char *name, const char *tok)
{
	char url[600];
	pid_t pid;

	snprintf(url, sizeof(url), "%s%s/%s?token=%s", w->base, room_id(uri), name, tok);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		execlp("curl", "curl", "-s", "-o", "/dev/null", "--limit-rate", "1M", "--cacert",
		       w->cacert, "-T", file, url, (char *)NULL);
		_exit(127);
	}
	return pid;
}

Test(web, stop_or_crash_during_an_upload_leaves_nothing, .timeout = 120)
{
	char lobby[200], f[300], t[40], n[64];
	struct kit_evs *e = calloc(1, sizeof(*e));
	struct files_rec rec;
	struct web w;
	struct gc *a;
	pid_t curl_pid;
	int st;

	web_start(&w, NULL);
	a = login(&w, "alice@example.com", "alice-pw");
	room_uri(a, "Lobby", lobby, sizeof(lobby));
	snprintf(f, sizeof(f), "%s/slow.bin", w.s.dir);
	make_file(f, 20u << 20);

	/* SIGKILL mid-upload leaves a temp file; the next start removes it. */
	cr_assert_eq(token(a, true, lobby, "slow.bin", t, n), 200);
	curl_pid = slow_put(&w, f, lobby, n, t);
	usleep(800000);
	cr_assert_eq(room_entries(&w, lobby), 1);
	gc_abort(a);
	server_kill(&w.s, SIGKILL);
	waitpid(curl_pid, &st, 0);
	cr_assert(exists("%s/files/%s/.tmp-%s", w.s.dir, room_id(lobby), n));
	server_restart(&w.s);
	wait_web(&w);
	for (int i = 0; i < 50 && exists("%s/files/%s/.tmp-%s", w.s.dir, room_id(lobby), n); i++)
		usleep(100000);
	cr_assert(!exists("%s/files/%s/.tmp-%s", w.s.dir, room_id(lobby), n));

	/* A graceful stop waits drain_timeout_s (3 s here), then cuts it. */
	a = login(&w, "alice@example.com", "alice-pw");
	cr_assert_eq(token(a, true, lobby, "slow.bin", t, n), 200);
	curl_pid = slow_put(&w, f, lobby, n, t);
	usleep(800000);
	cr_assert_eq(room_entries(&w, lobby), 1);
	gc_close(a);
	kill(w.s.pid, SIGTERM);
	cr_assert_eq(waitpid(w.s.pid, &st, 0), w.s.pid);
	w.s.pid = 0;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "parleyd did not stop cleanly");
	waitpid(curl_pid, &st, 0);
	cr_assert_eq(room_entries(&w, lobby), 0);
	kit_read_export((snprintf(f, sizeof(f), "%s/compliance", w.s.dir), f), e);
	cr_assert_eq(kit_count(e, "FILEUPLOAD", NULL), 0);
	cr_assert_eq(record(&w, n, &rec), -ENOENT);
	kit_evs_free(e);
	free(e);
	run("rm -rf %s", w.s.dir);
}

Test(web, twenty_concurrent_uploads, .timeout = 120)
{
	enum { N = 20 };
	char lobby[200], t[N][40], n[N][64], script[600], h1[65], h2[65], path[2048];
	struct web w;
	struct gc *a;
	FILE *sh;

	web_start(&w, NULL);
	a = login(&w, "alice@example.com", "alice-pw");
	room_uri(a, "Lobby", lobby, sizeof(lobby));
	snprintf(script, sizeof(script), "%s/up.sh", w.s.dir);
	sh = fopen(script, "w");
	cr_assert_not_null(sh);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%s/c%d.bin", w.s.dir, i);
		make_file(path, (1u << 20) + (size_t)i * 4099);
		cr_assert_eq(token(a, true, lobby, "c.bin", t[i], n[i]), 200);
		fprintf(sh, "curl -s --max-time 60 --cacert %s -o /dev/null -w '%%{http_code}' "
			"-T %s '%s%s/%s?token=%s' > %s/c%d.code &\n", w.cacert, path, w.base,
			room_id(lobby), n[i], t[i], w.s.dir, i);
	}
	fprintf(sh, "wait\n");
	fclose(sh);
	cr_assert_eq(run("sh %s", script), 0);
	for (int i = 0; i < N; i++) {
		char code[16] = "";
		FILE *f;

		snprintf(path, sizeof(path), "%s/c%d.code", w.s.dir, i);
		f = fopen(path, "r");
		cr_assert_not_null(f);
		cr_assert_not_null(fgets(code, sizeof(code), f));
		fclose(f);
		cr_assert_str_eq(code, "201", "upload %d: %s", i, code);
		snprintf(path, sizeof(path), "%s/c%d.bin", w.s.dir, i);
		sha256_file(path, h1);
		snprintf(path, sizeof(path), "%s/files/%s/%s", w.s.dir, room_id(lobby), n[i]);
		sha256_file(path, h2);
		cr_assert_str_eq(h1, h2, "upload %d stored different bytes", i);
	}
	cr_assert_eq(room_entries(&w, lobby), N);
	gc_close(a);
	cr_assert_eq(server_stop(&w.s), 0);
}

Test(web, path_traversal_is_refused_in_every_segment, .timeout = 120)
{
	char lobby[200], t[40], n[64], f[300], tail[600], path[1024], req[1500];
	const char *tails[] = {
		/* right after the prefix */
		"../canary", "..%2fcanary", "%2e%2e/canary", "..", "%2e%2e%2f%2e%2e%2fcanary",
		/* the room segment */
		"../{N}", "%2e%2e/{N}", "..%2f..%2f..%2fcanary/{N}", "%2F/{N}", "{R}/../{N}",
		"/{N}", "./{N}", "%00/{N}", "{R}%00/{N}", "{R}%2f/{N}", "/canary/{N}",
		/* the name segment */
		"{R}/../../canary", "{R}/..%2f..%2fcanary", "{R}/%2e%2e%2fcanary", "{R}/..",
		"{R}/.", "{R}/{N}%00.txt", "{R}/{N}/../x", "{R}/.tmp-x", "{R}/{N}%2f", "{R}/{N}\\..\\x",
		"{R}//canary", "{R}/%2fcanary",
	};
	const char *raw_targets[] = {
		/* the prefix itself */
		"/../filestore/{R}/{N}", "/x/../filestore/{R}/{N}", "/%66ilestore/{R}/{N}",
		"/filestore/./{R}/{N}", "//filestore/{R}/{N}", "/filestore\\{R}/{N}",
		/* segments with bytes curl would clean up */
		"/filestore/{R}/..\\..\\canary", "/filestore/{R}\\..\\{N}",
	};
	struct web w;
	struct gc *a;
	size_t len;

	web_start(&w, NULL);
	a = login(&w, "alice@example.com", "alice-pw");
	room_uri(a, "Lobby", lobby, sizeof(lobby));
	snprintf(f, sizeof(f), "%s/f.bin", w.s.dir);
	make_file(f, 100);
	cr_assert_eq(token(a, true, lobby, "f.bin", t, n), 200);
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		char args[400];
		int up, down;

		subst(tails[i], room_id(lobby), n, tail, sizeof(tail));
		snprintf(path, sizeof(path), "%s?token=%s", tail, t);
		snprintf(args, sizeof(args), "--path-as-is -T %s", f);
		up = curl(&w, args, path);
		down = curl(&w, "--path-as-is", path);
		cr_assert(up == 400 || up == 404, "PUT %s: %d", tail, up);
		cr_assert(down == 400 || down == 404, "GET %s: %d", tail, down);
	}
	for (size_t i = 0; i < sizeof(raw_targets) / sizeof(raw_targets[0]); i++) {
		subst(raw_targets[i], room_id(lobby), n, tail, sizeof(tail));
		snprintf(req, sizeof(req), "PUT %s?token=%s HTTP/1.1\r\nHost: x\r\n"
			 "Content-Length: 0\r\n\r\n", tail, t);
		len = strlen(req);
		cr_assert(raw_status(&w, req, len) / 100 == 4, "%s", req);
	}
	/* What curl will not send: a raw NUL in the name, absolute-form, an
	 * over-long name. */
	len = (size_t)snprintf(req, sizeof(req), "GET /filestore/%s/%s", room_id(lobby), n);
	req[len++] = '\0';
	len += (size_t)snprintf(req + len, sizeof(req) - len, "/x?token=%s HTTP/1.1\r\nHost: x\r\n\r\n",
				t);
	cr_assert_eq(raw_status(&w, req, len), 400);
	snprintf(req, sizeof(req), "GET https://127.0.0.1:%u/filestore/%s/%s?token=%s HTTP/1.1\r\n"
		 "Host: x\r\n\r\n", w.port, room_id(lobby), n, t);
	cr_assert_eq(raw_status(&w, req, strlen(req)), 400);
	snprintf(req, sizeof(req), "GET /filestore/%s/%s%0300d?token=%s HTTP/1.1\r\nHost: x\r\n\r\n",
		 room_id(lobby), n, 0, t);
	cr_assert_eq(raw_status(&w, req, strlen(req)), 400);
	cr_assert(!exists("%s/canary", w.s.dir));
	cr_assert(!exists("%s/files/canary", w.s.dir));
	cr_assert_eq(room_entries(&w, lobby), 0, "a refused request touched the room folder");
	/* The token was never taken: the real upload still works. */
	cr_assert_eq(put(&w, f, lobby, n, t), 201);
	gc_close(a);
	cr_assert_eq(server_stop(&w.s), 0);
}

Test(web, http_limits_keepalive_and_slow_clients, .timeout = 120)
{
	char lobby[200], t[40], n[64], f[300], buf[4096], req[40000];
	struct raw r, many[4];
	struct web w;
	struct gc *a;
	size_t len;

	web_start(&w, "header_timeout_s = 1\nmax_conns = 4\nmax_headers = 16\n"
		  "max_header_bytes = 8192\n");
	a = login(&w, "alice@example.com", "alice-pw");
	room_uri(a, "Lobby", lobby, sizeof(lobby));
	snprintf(f, sizeof(f), "%s/f.bin", w.s.dir);
	make_file(f, 5000);

	/* Keep-alive and pipelining: two requests in one write, two answers
	 * on one connection. */
	snprintf(req, sizeof(req), "GET /filestore/x HTTP/1.1\r\nHost: x\r\n\r\n"
		 "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	cr_assert(raw_open(&r, w.port));
	raw_send(&r, req, strlen(req));
	cr_assert(raw_read(&r, buf, sizeof(buf), 5));
	cr_assert(strstr(buf, "HTTP/1.1 400") == buf, "%s", buf);
	cr_assert_not_null(strstr(buf + 1, "HTTP/1.1 404"), "%s", buf);
	raw_close(&r);

	/* A head too large, too many header lines: 431. */
	len = (size_t)snprintf(req, sizeof(req), "GET /filestore/x HTTP/1.1\r\nHost: x\r\nX: ");
	memset(req + len, 'a', 9000);
	strcpy(req + len + 9000, "\r\n\r\n");
	cr_assert_eq(raw_status(&w, req, strlen(req)), 431);
	len = (size_t)snprintf(req, sizeof(req), "GET /filestore/x HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 20; i++)
		len += (size_t)sprintf(req + len, "X-%d: 1\r\n", i);
	strcpy(req + len, "\r\n");
	cr_assert_eq(raw_status(&w, req, strlen(req)), 431);
	/* Framing that could smuggle, and chunked uploads (411). */
	snprintf(req, sizeof(req), "PUT /filestore/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
	cr_assert_eq(raw_status(&w, req, strlen(req)), 400);
	cr_assert_eq(token(a, true, lobby, "f.bin", t, n), 200);
	snprintf(req, sizeof(req), "PUT /filestore/%s/%s?token=%s HTTP/1.1\r\nHost: x\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", room_id(lobby), n, t);
	cr_assert_eq(raw_status(&w, req, strlen(req)), 411);
	snprintf(req, sizeof(req), "GET / HTTP/3.0\r\nHost: x\r\n\r\n");
	cr_assert_eq(raw_status(&w, req, strlen(req)), 505);

	/* A slow head (slowloris): 408 and closed after header_timeout_s. */
	cr_assert(raw_open(&r, w.port));
	raw_send(&r, "GET /filestore/", 15);
	cr_assert(raw_read(&r, buf, sizeof(buf), 4), "a slow head kept its connection");
	cr_assert(strstr(buf, "HTTP/1.1 408") == buf, "%s", buf);
	raw_close(&r);
	/* A connection that never says anything is closed too. */
	cr_assert(raw_open(&r, w.port));
	cr_assert(raw_read(&r, buf, sizeof(buf), 4), "an idle connection was kept");
	raw_close(&r);

	/* max_conns = 4: a fifth connection is refused while four are open. */
	usleep(300000);		/* the connections above are gone */
	for (int i = 0; i < 4; i++)
		cr_assert(raw_open(&many[i], w.port));
	cr_assert(!raw_open(&r, w.port), "a fifth connection got through");
	raw_close(&r);
	for (int i = 0; i < 4; i++)
		raw_close(&many[i]);
	usleep(200000);
	/* And the upload still works afterwards, through curl. */
	cr_assert_eq(put(&w, f, lobby, n, t), 201);
	gc_close(a);
	cr_assert_eq(server_stop(&w.s), 0);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Not a check: upload and download throughput of a 50 MiB file over
 * loopback (curl's time_total: TLS handshake, transfer, and for an upload
 * the fsyncs and the FILEUPLOAD commit), median of PARLEY_WEB_BENCH runs;
 * skipped without it. The figures in perf/RESULTS.md come from here. */
Test(web, throughput_50mib, .timeout = 900)
{
	const char *env = getenv("PARLEY_WEB_BENCH");
	int runs = env ? atoi(env) : 0;
	char lobby[200], f[300], t[40], n[64], cmd[1200], res[64];
	double up[64], down[64];
	struct web w;
	struct gc *a;

	if (runs <= 0 || runs > 64)
		cr_skip_test("PARLEY_WEB_BENCH=N (1..64) measures the throughput");
	web_start(&w, NULL);
	a = login(&w, "alice@example.com", "alice-pw");
	room_uri(a, "Lobby", lobby, sizeof(lobby));
	snprintf(f, sizeof(f), "%s/bench.bin", w.s.dir);
	make_file(f, 50u << 20);
	for (int i = 0; i < 2 * runs; i++) {
		bool is_up = i % 2 == 0;
		double secs = 0;
		int code = 0;
		FILE *p;

		cr_assert_eq(token(a, is_up, lobby, is_up ? "bench.bin" : n, t, is_up ? n : NULL),
			     200);
		snprintf(cmd, sizeof(cmd), "curl -s --cacert %s %s%s -o /dev/null -w "
			 "'%%{http_code} %%{time_total}' '%s%s/%s?token=%s'", w.cacert,
			 is_up ? "-T " : "", is_up ? f : "", w.base, room_id(lobby), n, t);
		p = popen(cmd, "r");
		cr_assert(p != NULL && fgets(res, sizeof(res), p) != NULL);
		pclose(p);
		cr_assert_eq(sscanf(res, "%d %lf", &code, &secs), 2);
		cr_assert_eq(code, is_up ? 201 : 200);
		(is_up ? up : down)[i / 2] = 50.0 / secs;
	}
	qsort(up, (size_t)runs, sizeof(up[0]), cmp_double);
	qsort(down, (size_t)runs, sizeof(down[0]), cmp_double);
	fprintf(stderr, "web throughput, 50 MiB, %d runs: upload median %.1f MiB/s (", runs,
		up[runs / 2]);
	for (int i = 0; i < runs; i++)
		fprintf(stderr, "%s%.1f", i ? " " : "", up[i]);
	fprintf(stderr, "), download median %.1f MiB/s (", down[runs / 2]);
	for (int i = 0; i < runs; i++)
		fprintf(stderr, "%s%.1f", i ? " " : "", down[i]);
	fprintf(stderr, ")\n");
	gc_close(a);
	cr_assert_eq(server_stop(&w.s), 0);
}
