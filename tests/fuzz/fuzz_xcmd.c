/* libFuzzer target: the XCCOS command dispatcher (dataplane/chat/channel.c's
 * command table and every command behind it, channel_relay.c's through the
 * fan-out) as a client's INFO requests reach it: through dialog_request()
 * on an open Channel or Lookup dialog, with a real room table (catalog rooms
 * with fixed ids: open Lobby, closed Team with the user a member, Secret
 * without him, Quiet unlogged), a real storage thread on a database in
 * /dev/shm (prefs, history, invitations, compliance events) and file
 * tokens, on one fake lcore as tests/dataplane/chat/fanout_fixture.h builds
 * them (no EAL). The connection's TLS session is on our record layer under
 * fixed secrets, so everything the server sends is read back and opened.
 *
 * Input: the first byte picks the dialog (odd: Lookup); the rest is a list
 * of XCCOS documents separated by NUL bytes, each the body of one INFO (the
 * whole request malloc()ed at its exact length). Room URIs in seeds:
 * ma-chan://example.com/11111111-1111-4111-8111-11111111111N, N = 1..4.
 * Checks, per document, once the lcore and the storage thread settled:
 * exactly one SIP 200 and exactly one XCCOS reply (rpl), whose code is one
 * of xccos.md §b.8's (200 400 403 404 413 500 501 503), whose name is the
 * command's (or its reply alias) and whose seqid is the command's when
 * they are plain (a post that is stored: its 200 and no reply; a malformed
 * document: 400 or 413); everything the server sends opens and is whole
 * SIP messages. FUZZ_XCMD_TRACE=1 in the environment prints what the
 * server sent for each document. */
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "dataplane/base/log.h"
#include "dataplane/chat/channel.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/chat/ftoken.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/engine_int.h"
#include "dataplane/session/dialog.h"
#include "dataplane/sip/sipmsg.h"
#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlsrec.h"
#include "dataplane/tls/tlsterm.h"
#include "dataplane/tls/tlsterm_int.h"
#include "dataplane/xccos/xccos.h"
#include "storage/catalog.h"
#include "storage/commit.h"
#include "storage/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NROOMS	4
#define DOCS_MAX 64

static struct {
	char dir[64], dbdir[96], cert[96], key[96];
	struct db *db;
	struct commit *commit;
	struct engine *e;
	struct lcore_ctx *lc;
	struct roomtab *rooms;
	struct tlsterm_ctx *tls;
} fx;

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
cleanup(void)
{
	if (nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "fuzz_xcmd: cannot remove %s\n", fx.dir);
}

static struct catalog_room *
room(int i, const char *name, enum catalog_privacy priv, unsigned props)
{
	struct catalog_room *r = catalog_room_new("example.com", name);

	if (r == NULL)
		abort();
	snprintf(r->id, sizeof(r->id), "11111111-1111-4111-8111-11111111111%d", i);
	free(r->uri);
	if (asprintf(&r->uri, "ma-chan://example.com/%s", r->id) < 0)
		abort();
	r->privacy = priv;
	r->props = props;
	return r;
}

static void
init_once(void)
{
	struct commit_config cc = { .nproducers = 1, .depth = 256,
				    .durability_unsafe_no_fsync = true };
	struct catalog_room **v = calloc(NROOMS, sizeof(*v));	/* roomtab_build takes it */
	struct tlsterm_settings ts = { .own_records = true };
	struct engine_conf *cf;
	char err[256] = "";
	int rc = 0;

	if (getenv("FUZZ_XCMD_TRACE") == NULL)
		log_set_level(LOG_LVL_ERR);	/* refused posts log a notice each */
	snprintf(fx.dir, sizeof(fx.dir), "/dev/shm/fuzz-xcmd-%d", (int)getpid());
	snprintf(fx.dbdir, sizeof(fx.dbdir), "%s/db", fx.dir);
	snprintf(fx.cert, sizeof(fx.cert), "%s/a.crt", fx.dir);
	snprintf(fx.key, sizeof(fx.key), "%s/a.key", fx.dir);
	if (mkdir(fx.dir, 0700) != 0 && errno != EEXIST)
		abort();
	atexit(cleanup);
	if (tlscert_ensure(fx.cert, fx.key, "example.com", 30, err, sizeof(err)) < 0)
		abort();
	ts.cert_file = fx.cert;
	ts.key_file = fx.key;
	fx.tls = tlsterm_ctx_create(&ts, err, sizeof(err));
	fx.db = db_open(fx.dbdir, NULL, err, sizeof(err));
	if (fx.tls == NULL || fx.db == NULL) {
		fprintf(stderr, "fuzz_xcmd: %s\n", err);
		abort();
	}
	fx.commit = commit_create(fx.db, &cc, &rc);
	fx.e = calloc(1, sizeof(*fx.e) + sizeof(fx.e->lcores[0]));
	fx.lc = aligned_alloc(64, (sizeof(*fx.lc) + 63) & ~(size_t)63);
	if (fx.commit == NULL || fx.e == NULL || fx.lc == NULL || v == NULL)
		abort();
	cf = &fx.e->conf;
	cf->nlcores = 1;
	cf->ring_size = 1024;
	snprintf(cf->domain, sizeof(cf->domain), "example.com");
	snprintf(cf->realm, sizeof(cf->realm), "example.com");
	snprintf(cf->sip_host, sizeof(cf->sip_host), "127.0.0.1");
	cf->sip_port = 5061;
	snprintf(cf->web_url, sizeof(cf->web_url), "https://127.0.0.1:8443/filestore/");
	cf->sip_lim.max_msg = 65536;
	cf->sip_lim.max_headers = 64;
	cf->chat_max = 8192;
	cf->story_max = 65536;
	cf->history_max = 200;
	cf->search_limit = 999;
	cf->rooms_per_dialog = 500;
	cf->outq_max = 1u << 30;
	cf->session_expires = 1800;
	cf->compliance_cap = 1000000;
	fx.e->db = fx.db;
	fx.e->commit = fx.commit;
	fx.e->ftokens = ftoken_store_create(300, 10000);
	memset(fx.lc, 0, sizeof(*fx.lc));
	fx.lc->e = fx.lc->pub.e = fx.e;
	fx.lc->pub.conf = cf;
	fx.lc->pub.idx = 0;
	fx.lc->wake_fd = -1;
	fx.lc->pub.now_real_ms = 1700000000000ull;
	fx.lc->pub.now_s = 1000;
	fx.e->lcores[0] = fx.lc;
	v[0] = room(1, "Lobby", CATALOG_OPEN,
		    CATALOG_PROP_LOGGED | CATALOG_PROP_FILEPOST | CATALOG_PROP_INVITE);
	v[1] = room(2, "Team", CATALOG_CLOSED, CATALOG_PROP_LOGGED);
	v[2] = room(3, "Secret", CATALOG_SECRET, CATALOG_PROP_LOGGED);
	v[3] = room(4, "Quiet", CATALOG_OPEN, 0);
	if (catalog_strset_add(&v[1]->members, "sip:alice@example.com") != 0 ||
	    catalog_strset_add(&v[2]->members, "sip:bob@example.com") != 0)
		abort();
	fx.rooms = roomtab_build(v, NROOMS, 1);
	if (fx.rooms == NULL || fx.e->ftokens == NULL)
		abort();
	fx.lc->pub.snap = fx.rooms;
	if (channel_init() != 0 || fanout_init(fx.e, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_xcmd: %s\n", err);
		abort();
	}
}

/* The lcore's turns until the fan-out and the storage thread are done. */
static void
pump(void)
{
	for (int spin = 0; spin < 1000000; spin++) {
		fanout_poll(fx.lc);
		fanout_flush(fx.lc);
		if (fanout_settled(fx.lc))
			return;
		if (spin > 100)
			sched_yield();
	}
	abort();	/* never settles */
}

/* One connection with one dialog, its TLS session on our layer. */
struct client {
	struct conn c;
	struct dialog d;
	struct tlsrec_dir sr;	/* opens what the server sends */
	uint32_t cseq;
	char *out;		/* plaintext the server sent, not yet looked at */
	size_t out_len;
};

static void
client_init(struct client *cl, bool lookup)
{
	uint8_t s[TLSREC_SECRET_MAX];
	size_t len = tlsrec_secret_len(TLSREC_AES_128_GCM_SHA256);
	struct tlsterm *t = tlsterm_new(fx.tls);

	if (t == NULL)
		abort();
	memset(cl, 0, sizeof(*cl));
	memset(s, 0x33, sizeof(s));
	SSL_free(t->ssl);
	t->ssl = NULL;
	t->rbio = t->wbio = NULL;
	t->secret_len = (uint8_t)len;
	if (tlsrec_init(&t->rd, TLSREC_AES_128_GCM_SHA256, s, len, 0, false) != 0 ||
	    tlsrec_init(&t->wr, TLSREC_AES_128_GCM_SHA256, s, len, 0, true) != 0 ||
	    tlsrec_init(&cl->sr, TLSREC_AES_128_GCM_SHA256, s, len, 0, false) != 0)
		abort();
	t->own = true;
	cl->c.lc = fx.lc;
	cl->c.state = CONN_OPEN;
	cl->c.id = 1;
	cl->c.tls = t;
	snprintf(cl->c.peer_str, sizeof(cl->c.peer_str), "192.0.2.1:40000");
	snprintf(cl->c.aor, sizeof(cl->c.aor), "alice@example.com");
	cl->c.dialogs = &cl->d;
	cl->c.ndialogs = 1;
	cl->d.conn = &cl->c;
	cl->d.svc = lookup ? DIALOG_LOOKUP : DIALOG_CHANNEL;
	cl->d.uid = ++fx.lc->pub.proto_seq;
	cl->d.confirmed = true;
	cl->d.remote_cseq = 1;
	cl->d.session_expires = 1800;
	cl->d.expires_at_s = 1000 + 1800;
	cl->d.envid = 1;
	snprintf(cl->d.local_tag, sizeof(cl->d.local_tag), "L1");
	snprintf(cl->d.call_id, sizeof(cl->d.call_id), "c1@192.0.2.1");
	snprintf(cl->d.remote_tag, sizeof(cl->d.remote_tag), "t1");
	snprintf(cl->d.remote_uri, sizeof(cl->d.remote_uri), "sip:alice@example.com");
	dialog_service_uri(&fx.e->conf, cl->d.svc, cl->d.local_uri, sizeof(cl->d.local_uri));
	snprintf(cl->d.target, sizeof(cl->d.target), "sip:alice@192.0.2.1:40000;transport=tls");
	cl->cseq = 1;
}

static void
client_fini(struct client *cl)
{
	/* The dialog ends: it leaves every room (channel.c on_closed). */
	while (cl->d.nrooms > 0) {
		uint8_t raw[CATALOG_ID_RAW];

		memcpy(raw, cl->d.rooms[cl->d.nrooms - 1], CATALOG_ID_RAW);
		fanout_part(fx.lc, &cl->d, raw);
	}
	pump();
	free(cl->d.rooms);
	free(cl->d.info_a);
	tlsterm_free(cl->c.tls);
	tlsrec_wipe(&cl->sr);
	free(cl->out);
	fx.lc->dirty = NULL;	/* no reaper here */
}

/* Opens what the server sent and appends the plaintext to cl->out. */
static void
drain(struct client *cl)
{
	static uint8_t tmp[TLSREC_MAX_CIPHER];
	const void *p;
	size_t len = tlsterm_pending_out(cl->c.tls, &p), off = 0;
	uint8_t type;

	while (off < len) {
		const uint8_t *rec = (const uint8_t *)p + off;
		size_t rlen;
		ssize_t n;

		if (len - off < TLSREC_HDR)
			abort();
		rlen = TLSREC_HDR + ((size_t)rec[3] << 8 | rec[4]);
		if (off + rlen > len)
			abort();
		n = tlsrec_open(&cl->sr, rec, rlen, tmp, &type);
		if (n < 0 || type != TLSREC_CT_APPDATA)
			abort();	/* the server only sends data here */
		cl->out = realloc(cl->out, cl->out_len + (size_t)n + 1);
		if (cl->out == NULL)
			abort();
		memcpy(cl->out + cl->out_len, tmp, (size_t)n);
		cl->out_len += (size_t)n;
		cl->out[cl->out_len] = '\0';
		off += rlen;
	}
	tlsterm_consume_out(cl->c.tls, len);
}

struct tally {
	unsigned ok200;		/* SIP 200 responses */
	unsigned other;		/* other SIP responses */
	unsigned rpl;		/* XCCOS replies */
	int code;		/* of the last one */
	char name[64], seqid[64];
};

/* The value of attribute <attr> right after <from> in <doc>, into <out>. */
static void
attr_after(const char *from, const char *attr, char *out, size_t cap)
{
	const char *a = strstr(from, attr), *e;

	out[0] = '\0';
	if (a == NULL)
		return;
	a += strlen(attr);
	e = strchr(a, '"');
	if (e != NULL && (size_t)(e - a) < cap)
		snprintf(out, cap, "%.*s", (int)(e - a), a);
}

/* Splits what the server sent into SIP messages and counts them. */
static void
tally(struct client *cl, struct tally *t)
{
	size_t off = 0;

	memset(t, 0, sizeof(*t));
	while (off < cl->out_len) {
		char *m = cl->out + off, *eoh = strstr(m, "\r\n\r\n"), *cl_hdr, *body;
		size_t blen;

		if (eoh == NULL)
			abort();	/* whole messages only */
		*eoh = '\0';
		cl_hdr = strstr(m, "\r\nContent-Length: ");
		if (cl_hdr == NULL)
			abort();
		blen = strtoul(cl_hdr + 18, NULL, 10);
		body = eoh + 4;
		if (body + blen > cl->out + cl->out_len)
			abort();
		if (strncmp(m, "SIP/2.0 ", 8) == 0) {
			if (strncmp(m + 8, "200 ", 4) == 0)
				t->ok200++;
			else
				t->other++;
		} else if (strncmp(m, "INFO ", 5) == 0) {
			char save = body[blen];
			const char *r;

			body[blen] = '\0';
			r = strstr(body, "<rpl id=\"rpl:");
			if (r != NULL) {
				char code[8];

				const char *after_id;

				t->rpl++;
				attr_after(r, "<rpl id=\"rpl:", t->name, sizeof(t->name));
				/* seqid after the id's value, which may itself hold
				 * "seqid=" (a command named so is echoed there). */
				after_id = strchr(r + strlen("<rpl id=\"rpl:"), '"');
				attr_after(after_id ? after_id : r, " seqid=\"", t->seqid,
					   sizeof(t->seqid));
				attr_after(r, "<resp code=\"", code, sizeof(code));
				t->code = atoi(code);
			}
			body[blen] = save;
		} else {
			abort();
		}
		off = (size_t)(body + blen - cl->out);
	}
	cl->out_len = 0;
}

/* Letters and digits only: written back unescaped. */
static bool
plain(const char *s)
{
	if (*s == '\0')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") ==
	       strlen(s);
}

/* The reply name a command gets (channel.c's table). */
static const char *
reply_name(const char *cmd)
{
	if (strcmp(cmd, "getserverinfo") == 0)
		return "getservinfo";
	if (strcmp(cmd, "getfutok") == 0 || strcmp(cmd, "getfdtok") == 0)
		return "getftok";
	return cmd;
}

/* One INFO carrying <doc>, and what it must be answered with. */
static void
command(struct client *cl, const uint8_t *doc, size_t len)
{
	static const char fmt[] =
		"INFO %s SIP/2.0\r\n"
		"Via: SIP/2.0/TLS 192.0.2.1:40000;branch=z9hG4bK%u\r\n"
		"Max-Forwards: 70\r\n"
		"From: <sip:alice@example.com>;tag=t1\r\n"
		"To: <%s>;tag=L1\r\n"
		"Call-ID: c1@192.0.2.1\r\n"
		"CSeq: %u INFO\r\n"
		"Content-Type: text/plain\r\n"
		"Content-Length: %zu\r\n\r\n";
	struct sipmsg_limits lim = fx.e->conf.sip_lim;
	struct xccos_limits xl = { .max_doc = lim.max_msg, .max_depth = 32 };
	struct xccos_msg xm = { 0 };
	struct sipmsg m;
	struct tally t;
	char err[160];
	bool parsed;
	int hlen;
	char *msg;

	cl->cseq++;
	hlen = snprintf(NULL, 0, fmt, cl->d.local_uri, cl->cseq, cl->d.local_uri, cl->cseq, len);
	msg = malloc((size_t)hlen + len + 1);
	if (msg == NULL)
		abort();
	snprintf(msg, (size_t)hlen + 1, fmt, cl->d.local_uri, cl->cseq, cl->d.local_uri, cl->cseq,
		 len);
	memcpy(msg + hlen, doc, len);
	if (sipmsg_parse(&m, msg, (size_t)hlen + len, &lim) != 0) {
		free(msg);
		return;		/* the framing layer would not let it through */
	}
	parsed = xccos_parse(m.body.p, m.body.len, &xl, &xm, err, sizeof(err)) == 0;
	dialog_request(&cl->c, &m);
	pump();
	drain(cl);
	if (getenv("FUZZ_XCMD_TRACE") != NULL)	/* what the server sent */
		fprintf(stderr, "%.*s\n----\n", (int)cl->out_len, cl->out);
	tally(cl, &t);
	if (len == 0) {
		if (t.ok200 != 1 || t.rpl != 0 || t.other != 0)
			abort();	/* an empty INFO: 200 only */
		goto out;
	}
	if (t.ok200 != 1 || t.other != 0)
		abort();	/* exactly one 200 */
	/* A post the Channel service stores is answered by its 200 alone
	 * (and its copy to the room); a refused one gets a reply too. */
	if (parsed && xm.kind == XCCOS_GRPCHAT && cl->d.svc == DIALOG_CHANNEL && t.rpl == 0)
		goto out;
	if (t.rpl != 1)
		abort();	/* exactly one reply */
	switch (t.code) {
	case 200: case 400: case 403: case 404: case 413: case 500: case 501: case 503:
		break;
	default:
		abort();
	}
	if (parsed && plain(xm.name) && strcmp(t.name, reply_name(xm.name)) != 0 &&
	    strcmp(t.name, xm.name) != 0)
		abort();
	if (parsed && plain(xm.seqid) && strcmp(t.seqid, xm.seqid) != 0)
		abort();
	if (!parsed && t.code != 400 && t.code != 413)
		abort();
out:
	if (parsed)
		xccos_msg_free(&xm);
	free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client cl;
	const uint8_t *p, *end = data + size;
	unsigned docs = 0;

	if (size == 0 || size > 65536)
		return 0;
	if (fx.e == NULL)
		init_once();
	client_init(&cl, data[0] & 1);
	for (p = data + 1; p < end && docs < DOCS_MAX; docs++) {
		const uint8_t *q = memchr(p, '\0', (size_t)(end - p));
		size_t n = q != NULL ? (size_t)(q - p) : (size_t)(end - p);

		command(&cl, p, n);
		p += n + 1;
	}
	client_fini(&cl);
	return 0;
}
