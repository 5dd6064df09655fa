/* libFuzzer target: our TLS 1.3 record layer after the hand-off
 * (dataplane/tls/tlsterm_own.c over tlsrec.c). Every input starts a session
 * on our layer, by its first byte: with its high four bits set, a real one
 * (an in-memory handshake with an OpenSSL client, the hand-off, then the
 * client's keys taken through tlsterm_int.h as
 * tests/dataplane/tls/test_tlshostile.c does, and the client's SSL gone);
 * otherwise one put on our layer at once under fixed traffic secrets (40
 * times faster). The rest of the byte picks the suite: AES-128-GCM,
 * AES-256-GCM or ChaCha20-Poly1305.
 *
 * Input after the first byte: a list of operations, one byte each and its
 * arguments (missing bytes read as 0):
 *   0 record: inner type, length choice, padding choice, flags (declared
 *     length off by a signed byte; split the feed with a read between):
 *     sealed under the client's key, lengths from a table at and around
 *     every limit (0, 2^14, 2^14 + 1 inner plaintext, 2^14 + 256
 *     ciphertext) or two bytes
 *   1 KeyUpdate: its request byte, optionally split over two records
 *   2 alert: level, description, length 1, 2 or 3
 *   3 raw bytes (length byte, bytes) or a sealed record with one byte
 *     flipped: nothing authentic
 *   4 read with a buffer size from a table
 *   5 the server writes (size from a table)
 *   6 the client opens all the server's output
 *   7 tlsterm_trim(), or a run of empty records
 * The fuzzer keeps a model of what the server must do with each record
 * (RFC 8446 and the limits in tlsterm.h). Checks: the plaintext read is
 * exactly the application data sealed before the first record the model
 * refuses (never anything not sealed, never a record whose tag fails, never
 * an over-long one); once a read fails, every later read fails and nothing
 * more is accepted; a refusal is the model's (the fatal alert it names, or
 * none after the peer's own fatal alert, close_notify -ECONNRESET); the
 * server's output always opens, follows its KeyUpdates, carries exactly
 * what it wrote, and nothing follows its fatal alert; a session that did
 * not fail still reads a new record and writes one afterwards (both
 * directions after any number of KeyUpdates), and answered a KeyUpdate
 * request. The certificate is generated once, on tmpfs under a name unique
 * to the process. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlsrec.h"
#include "dataplane/tls/tlsterm.h"
#include "dataplane/tls/tlsterm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FEED_MAX	(4u << 20)	/* bytes fed per input */
#define WRITE_MAX	(256u << 10)	/* server writes per input: far below out_max */
#define MARK		"fuzz-tlsrec-mark"

static char dir[64], cert[96], key[96];
static struct tlsterm_ctx *ctx;
static SSL_CTX *cctx;

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* What the server must do with the records sealed so far (tlsterm_own.c's
 * rules, restated). */
struct model {
	bool done;		/* refused or closed: later records count for nothing */
	bool closed;		/* ... by close_notify */
	int alert;		/* the fatal alert the server sends; -1 none */
	bool unknown;		/* raw bytes fed: from here only a bound holds */
	uint8_t hs[5], hs_have;
	unsigned ku_run, empty_run, warn_run, ku_requests;
};

struct run {
	struct tlsterm *t;
	struct tlsrec_dir cw, sr;	/* the client's write and read directions */
	uint16_t suite;
	struct model m;
	struct buf exp;		/* application data sealed, in order */
	struct buf got;		/* what the server read */
	struct buf sent;	/* what the server wrote */
	struct buf cli;		/* what the client opened */
	size_t fed, written;
	bool read_failed;	/* a read returned < 0 */
	ssize_t fail_ret;
	bool srv_alert;		/* the server's output held an alert */
	int srv_alert_desc;
	unsigned srv_key_updates;
	uint8_t *rec;		/* scratch for one record */
};

static void
cleanup(void)
{
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

static void
init_once(void)
{
	struct tlsterm_settings s = {
		.cert_file = cert, .key_file = key, .session_cache = 0, .tickets = false,
		.own_records = true,
	};
	char err[512] = "";

	snprintf(dir, sizeof(dir), "/dev/shm/fuzz-tlsrec-%d", (int)getpid());
	snprintf(cert, sizeof(cert), "%s/a.crt", dir);
	snprintf(key, sizeof(key), "%s/a.key", dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		abort();
	if (tlscert_ensure(cert, key, "chat.example.com", 30, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_tlsrec: %s\n", err);
		abort();
	}
	atexit(cleanup);
	ctx = tlsterm_ctx_create(&s, err, sizeof(err));
	cctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || cctx == NULL) {
		fprintf(stderr, "fuzz_tlsrec: %s\n", err);
		abort();
	}
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
}

/* A session handed off to our layer, and the client's keys. */
static void
session(struct run *r, unsigned pick)
{
	static const char *const suites[] = {
		"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
		"TLS_CHACHA20_POLY1305_SHA256",
	};
	uint8_t tmp[16384];
	SSL *c = SSL_new(cctx);
	BIO *cin = BIO_new(BIO_s_mem()), *cout = BIO_new(BIO_s_mem());
	int rounds, n;

	r->t = tlsterm_new(ctx);
	if (c == NULL || cin == NULL || cout == NULL || r->t == NULL)
		abort();
	SSL_set_bio(c, cin, cout);
	SSL_set_connect_state(c);
	if (SSL_set_ciphersuites(c, suites[pick % 3]) != 1)
		abort();
	for (rounds = 0; rounds < 100; rounds++) {
		const void *p;
		size_t k;
		bool moved = false;

		if (!SSL_is_init_finished(c))
			(void)SSL_do_handshake(c);
		else
			while (SSL_read(c, tmp, sizeof(tmp)) > 0)
				;
		while ((n = BIO_read(cout, tmp, sizeof(tmp))) > 0) {
			if (tlsterm_feed(r->t, tmp, (size_t)n) != 0)
				abort();
			moved = true;
		}
		if (tlsterm_read(r->t, tmp, sizeof(tmp)) < 0)
			abort();
		k = tlsterm_pending_out(r->t, &p);
		if (k > 0) {
			if (BIO_write(cin, p, (int)k) != (int)k)
				abort();
			tlsterm_consume_out(r->t, k);
			moved = true;
		}
		if (!moved && SSL_is_init_finished(c))
			break;
	}
	ERR_clear_error();
	if (!tlsterm_handed_off(r->t))
		tlsterm_trim(r->t);
	if (!tlsterm_handed_off(r->t))
		abort();	/* OpenSSL 3.0.x, TLS 1.3, quiet: must hand off */
	r->suite = r->t->rd.suite;
	if (tlsrec_init(&r->cw, r->suite, r->t->rd.secret, r->t->rd.secret_len, r->t->rd.seq,
			true) != 0 ||
	    tlsrec_init(&r->sr, r->suite, r->t->wr.secret, r->t->wr.secret_len, r->t->wr.seq,
			false) != 0)
		abort();
	SSL_free(c);
	(void)tlsterm_take_events(r->t);
}

/* The same without OpenSSL's handshake (about forty times faster): a new
 * session whose SSL goes at once, put on our layer under fixed traffic
 * secrets the way try_handoff() does (tlsterm.c). */
static void
session_fixed(struct run *r, unsigned pick)
{
	static const uint16_t suites[] = {
		TLSREC_AES_128_GCM_SHA256, TLSREC_AES_256_GCM_SHA384,
		TLSREC_CHACHA20_POLY1305_SHA256,
	};
	uint8_t cs[TLSREC_SECRET_MAX], ss[TLSREC_SECRET_MAX];
	size_t len;

	r->suite = suites[pick % 3];
	len = tlsrec_secret_len(r->suite);
	memset(cs, 0x11, sizeof(cs));
	memset(ss, 0x22, sizeof(ss));
	r->t = tlsterm_new(ctx);
	if (r->t == NULL)
		abort();
	SSL_free(r->t->ssl);
	r->t->ssl = NULL;
	r->t->rbio = r->t->wbio = NULL;
	r->t->secret_len = (uint8_t)len;
	if (tlsrec_init(&r->t->rd, r->suite, cs, len, 0, false) != 0 ||
	    tlsrec_init(&r->t->wr, r->suite, ss, len, 2, true) != 0 ||
	    tlsrec_init(&r->cw, r->suite, cs, len, 0, true) != 0 ||
	    tlsrec_init(&r->sr, r->suite, ss, len, 2, false) != 0)
		abort();
	r->t->own = true;
}

static const EVP_CIPHER *
cipher_of(uint16_t suite)
{
	switch (suite) {
	case TLSREC_AES_128_GCM_SHA256: return EVP_aes_128_gcm();
	case TLSREC_AES_256_GCM_SHA384: return EVP_aes_256_gcm();
	default: return EVP_chacha20_poly1305();
	}
}

/* Seals <content> of type <type> with <pad> zeros under the client's key,
 * the header's length off by <delta>, into r->rec. Returns the record's
 * length (0 when the length does not fit the header). */
static size_t
seal(struct run *r, uint8_t type, const uint8_t *content, size_t n, size_t pad, int delta)
{
	size_t clen = n + 1 + pad + TLSREC_TAG, decl = clen + (size_t)(ssize_t)delta;
	uint8_t *out = r->rec, iv[12];
	EVP_CIPHER_CTX *c;
	int l;

	if (clen > 65535 || (ssize_t)clen + delta < 0 || decl > 65535)
		return 0;
	memcpy(iv, r->cw.iv, sizeof(iv));
	for (int i = 0; i < 8; i++)
		iv[11 - i] ^= (uint8_t)(r->cw.seq >> (8 * i));
	out[0] = TLSREC_CT_APPDATA;
	out[1] = 0x03;
	out[2] = 0x03;
	out[3] = (uint8_t)(decl >> 8);
	out[4] = (uint8_t)decl;
	if (n > 0)
		memcpy(out + TLSREC_HDR, content, n);
	out[TLSREC_HDR + n] = type;
	memset(out + TLSREC_HDR + n + 1, 0, pad);
	c = EVP_CIPHER_CTX_new();
	if (c == NULL ||
	    EVP_EncryptInit_ex(c, cipher_of(r->suite), NULL, r->cw.key, iv) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &l, out, TLSREC_HDR) != 1 ||
	    EVP_EncryptUpdate(c, out + TLSREC_HDR, &l, out + TLSREC_HDR, (int)(n + 1 + pad)) != 1 ||
	    EVP_EncryptFinal_ex(c, out + TLSREC_HDR + n + 1 + pad, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TLSREC_TAG,
				out + TLSREC_HDR + n + 1 + pad) != 1)
		abort();
	EVP_CIPHER_CTX_free(c);
	r->cw.seq++;
	return TLSREC_HDR + clen;
}

static void
refuse(struct model *m, int alert)
{
	m->done = true;
	m->alert = alert;
}

/* The model's verdict on one authentic record with the inner plaintext
 * <in> of <len> bytes (content, type, padding). True when it completed a
 * KeyUpdate (the client's key moves on). */
static bool
model_record(struct run *r, const uint8_t *in, size_t len)
{
	struct model *m = &r->m;
	size_t n = len;
	uint8_t type;

	if (m->done || m->unknown)
		return false;
	if (len > TLSREC_MAX_PLAIN + 1) {
		refuse(m, AD_RECORD_OVERFLOW);
		return false;
	}
	while (n > 0 && in[n - 1] == 0)
		n--;
	if (n == 0) {
		refuse(m, AD_UNEXPECTED_MESSAGE);
		return false;
	}
	type = in[--n];
	if (m->hs_have > 0 && type != TLSREC_CT_HANDSHAKE) {
		refuse(m, AD_UNEXPECTED_MESSAGE);
		return false;
	}
	switch (type) {
	case TLSREC_CT_APPDATA:
		if (n == 0) {
			if (++m->empty_run > TLSTERM_EMPTY_RECORDS_MAX)
				refuse(m, AD_UNEXPECTED_MESSAGE);
			return false;
		}
		m->ku_run = m->empty_run = m->warn_run = 0;
		buf_add(&r->exp, in, n);
		return false;
	case TLSREC_CT_ALERT:
		if (n != 2) {
			refuse(m, AD_DECODE_ERROR);
		} else if (in[1] == AD_CLOSE_NOTIFY) {
			refuse(m, -1);
			m->closed = true;
		} else if (in[1] == AD_USER_CANCELED) {
			if (++m->warn_run > TLSTERM_WARN_ALERTS_MAX)
				refuse(m, AD_UNEXPECTED_MESSAGE);
		} else {
			refuse(m, -1);
		}
		return false;
	case TLSREC_CT_HANDSHAKE:
		if (n == 0) {
			refuse(m, AD_UNEXPECTED_MESSAGE);
			return false;
		}
		for (size_t i = 0; i < n; i++) {
			if (m->hs_have == sizeof(m->hs)) {
				refuse(m, AD_UNEXPECTED_MESSAGE);
				return false;
			}
			m->hs[m->hs_have++] = in[i];
			if (m->hs[0] != HS_KEY_UPDATE) {
				refuse(m, AD_UNEXPECTED_MESSAGE);
				return false;
			}
			if (m->hs_have == 4 && (m->hs[1] != 0 || m->hs[2] != 0 || m->hs[3] != 1)) {
				refuse(m, AD_DECODE_ERROR);
				return false;
			}
		}
		if (m->hs_have < sizeof(m->hs))
			return false;
		m->hs_have = 0;
		if (m->hs[4] > 1) {
			refuse(m, AD_ILLEGAL_PARAMETER);
			return false;
		}
		if (++m->ku_run > TLSTERM_KEY_UPDATES_MAX) {
			refuse(m, AD_UNEXPECTED_MESSAGE);
			return false;
		}
		m->ku_requests += m->hs[4];
		return true;
	default:
		refuse(m, AD_UNEXPECTED_MESSAGE);
		return false;
	}
}

/* From here on nothing authentic can follow: only a bound holds. */
static void
go_unknown(struct run *r)
{
	r->m.unknown = true;
}

static void
do_read(struct run *r, size_t len)
{
	static uint8_t tmp[20000];
	ssize_t n;

	do {
		n = tlsterm_read(r->t, tmp, len);
		if (n > 0) {
			if (r->read_failed || (size_t)n > len)
				abort();	/* nothing after a failure */
			buf_add(&r->got, tmp, (size_t)n);
			/* Only what was sealed, in order. */
			if (r->got.len > r->exp.len ||
			    memcmp(r->got.p + r->got.len - n, r->exp.p + r->got.len - n, n) != 0)
				abort();
		} else if (n < 0) {
			if (n != -EPROTO && n != -ECONNRESET)
				abort();
			if (r->read_failed && r->fail_ret == -EPROTO && n != -EPROTO)
				abort();
			if (!r->read_failed)
				r->fail_ret = n;
			r->read_failed = true;
		}
	} while (n > 0 && len > 0);
}

static void
feed(struct run *r, const uint8_t *p, size_t n)
{
	if (n == 0 || r->fed + n > FEED_MAX)
		return;
	if (tlsterm_feed(r->t, p, n) != 0)
		abort();
	r->fed += n;
}

/* Opens the server's output as the client. */
static void
open_output(struct run *r)
{
	const void *p;
	size_t len = tlsterm_pending_out(r->t, &p), off = 0;
	static uint8_t tmp[TLSREC_MAX_CIPHER];
	uint8_t type;

	while (off < len) {
		const uint8_t *rec = (const uint8_t *)p + off;
		size_t rlen;
		ssize_t n;

		if (len - off < TLSREC_HDR)
			abort();	/* the server queues whole records */
		rlen = TLSREC_HDR + ((size_t)rec[3] << 8 | rec[4]);
		if (off + rlen > len || r->srv_alert)
			abort();	/* nothing after a fatal alert */
		n = tlsrec_open(&r->sr, rec, rlen, tmp, &type);
		if (n < 0)
			abort();	/* our own records always open */
		if (type == TLSREC_CT_APPDATA) {
			buf_add(&r->cli, tmp, (size_t)n);
			if (r->cli.len > r->sent.len ||
			    memcmp(r->cli.p + r->cli.len - n, r->sent.p + r->cli.len - n, n) != 0)
				abort();
		} else if (type == TLSREC_CT_HANDSHAKE) {
			/* Only KeyUpdate(update_not_requested) */
			if (n != 5 || memcmp(tmp, "\x18\x00\x00\x01\x00", 5) != 0)
				abort();
			if (tlsrec_update(&r->sr) != 0)
				abort();
			r->srv_key_updates++;
		} else if (type == TLSREC_CT_ALERT) {
			if (n != 2 || tmp[0] != ALERT_FATAL)
				abort();
			r->srv_alert = true;
			r->srv_alert_desc = tmp[1];
		} else {
			abort();
		}
		off += rlen;
	}
	tlsterm_consume_out(r->t, len);
}

static void
do_write(struct run *r, size_t n)
{
	static uint8_t tmp[40000];
	ssize_t w;

	if (r->written + n > WRITE_MAX)
		return;
	for (size_t i = 0; i < n; i++)
		tmp[i] = (uint8_t)(r->written + i * 7);
	w = tlsterm_write(r->t, tmp, n);
	if (w == (ssize_t)n) {
		buf_add(&r->sent, tmp, n);
		r->written += n;
		if (r->read_failed && r->fail_ret == -EPROTO && n > 0)
			abort();	/* a failed session writes nothing */
	} else if (w != -EPROTO) {
		abort();
	}
}

/* Input cursor: missing bytes read as 0. */
struct in {
	const uint8_t *p;
	size_t n, off;
};

static uint8_t
u8(struct in *in)
{
	return in->off < in->n ? in->p[in->off++] : 0;
}

static size_t
u16(struct in *in)
{
	size_t hi = u8(in);

	return hi << 8 | u8(in);
}

static size_t
pick_len(struct in *in)
{
	static const size_t lens[] = {
		0, 1, 2, 5, 17, 255, 256, 1000, TLSREC_MAX_PLAIN - 1, TLSREC_MAX_PLAIN,
		TLSREC_MAX_PLAIN + 1, TLSREC_MAX_CIPHER - TLSREC_TAG - 1, TLSREC_MAX_CIPHER,
	};
	uint8_t c = u8(in);

	if (c < sizeof(lens) / sizeof(lens[0]))
		return lens[c];
	return c < 0x80 ? c : u16(in) % (TLSREC_MAX_CIPHER + 2);
}

static size_t
pick_pad(struct in *in, size_t n)
{
	/* inner plaintext: n + 1 + pad; limits 2^14 + 1 and, as ciphertext,
	 * 2^14 + 256 */
	size_t at_plain = TLSREC_MAX_PLAIN + 1, at_cipher = TLSREC_MAX_CIPHER - TLSREC_TAG;

	switch (u8(in) % 8) {
	case 0: return 0;
	case 1: return 1;
	case 2: return 255;
	case 3: return n + 1 <= at_plain ? at_plain - n - 1 : 0;
	case 4: return n + 1 <= at_plain ? at_plain - n : 0;
	case 5: return n + 1 <= at_cipher ? at_cipher - n - 1 : 0;
	case 6: return n + 1 <= at_cipher ? at_cipher - n : 1;
	default: return u8(in);
	}
}

/* Seals and feeds one record; the model follows it. */
static void
record(struct run *r, uint8_t type, const uint8_t *content, size_t n, size_t pad, int delta,
       size_t split)
{
	size_t len;

	if (r->fed + TLSREC_HDR + n + 1 + pad + TLSREC_TAG > FEED_MAX)
		return;	/* neither sealed nor fed: the keys stay in step */
	len = seal(r, type, content, n, pad, delta);
	if (len == 0)
		return;
	if (delta != 0) {
		go_unknown(r);
	} else {
		/* the inner plaintext, as the server will see it */
		uint8_t *inner = malloc(n + 1 + pad);

		if (inner == NULL)
			abort();
		if (n > 0)
			memcpy(inner, content, n);
		inner[n] = type;
		memset(inner + n + 1, 0, pad);
		if (model_record(r, inner, n + 1 + pad) && tlsrec_update(&r->cw) != 0)
			abort();
		free(inner);
	}
	if (split > 0 && split < len) {
		feed(r, r->rec, split);
		do_read(r, 20000);
		feed(r, r->rec + split, len - split);
	} else {
		feed(r, r->rec, len);
	}
}

static void
op_record(struct run *r, struct in *in)
{
	static uint8_t content[TLSREC_MAX_CIPHER + 2];
	static const uint8_t types[] = { 23, 23, 23, 23, 21, 22, 0, 20 };
	uint8_t t = u8(in), flags;
	size_t n, pad, split = 0;
	int delta = 0;

	t = t < 8 ? types[t] : t;
	n = pick_len(in);
	pad = pick_pad(in, n);
	flags = u8(in);
	if (flags & 1)
		delta = (int8_t)u8(in);
	if (flags & 2)
		split = u16(in);
	for (size_t i = 0; i < n; i++)
		content[i] = (uint8_t)(r->exp.len + i * 13 + 1);
	if (n > 0 && (flags & 4))
		content[n - 1] = 0;	/* trailing zeros before the type */
	record(r, t, content, n, pad, delta, split);
}

static void
op_key_update(struct run *r, struct in *in)
{
	uint8_t req = u8(in), how = u8(in);
	uint8_t msg[5] = { HS_KEY_UPDATE, 0, 0, 1, req & 0x80 ? req : req & 1 };

	if (how % 4 == 1) {
		size_t cut = 1 + u8(in) % 4;

		record(r, TLSREC_CT_HANDSHAKE, msg, cut, 0, 0, 0);
		record(r, TLSREC_CT_HANDSHAKE, msg + cut, 5 - cut, 0, 0, 0);
	} else if (how % 4 == 2) {
		uint8_t two[10];

		memcpy(two, msg, 5);
		memcpy(two + 5, msg, 5);
		record(r, TLSREC_CT_HANDSHAKE, two, 10, 0, 0, 0);	/* two in one: refused */
	} else {
		record(r, TLSREC_CT_HANDSHAKE, msg, 5, how >> 4, 0, 0);
	}
}

static void
op_alert(struct run *r, struct in *in)
{
	uint8_t a[3] = { u8(in), u8(in), 0 };
	uint8_t l = u8(in) % 3 + 1;

	if (a[1] % 4 == 0)
		a[1] = AD_USER_CANCELED;	/* the one a run of is allowed */
	else if (a[1] % 4 == 1)
		a[1] = AD_CLOSE_NOTIFY;
	record(r, TLSREC_CT_ALERT, a, l == 3 ? 3 : l == 1 ? 1 : 2, 0, 0, 0);
}

static void
op_raw(struct run *r, struct in *in)
{
	uint8_t how = u8(in);

	if (how & 1) {
		/* a sealed data record with one byte flipped */
		static const uint8_t d[] = "flipped";
		size_t pos = u16(in), len = seal(r, TLSREC_CT_APPDATA, d, sizeof(d), 0, 0);

		r->rec[pos % len] ^= (uint8_t)(1u << (how >> 5));
		go_unknown(r);
		feed(r, r->rec, len);
	} else {
		size_t n = how >> 1;

		if (n > in->n - in->off)
			n = in->n - in->off;
		if (n > 0)
			go_unknown(r);
		feed(r, in->p + in->off, n);
		in->off += n;
	}
}

static void
op_misc(struct run *r, struct in *in)
{
	uint8_t c = u8(in);

	if (c & 1) {
		tlsterm_trim(r->t);
		return;
	}
	for (unsigned i = 0; i < (unsigned)(c >> 1) % 40; i++)
		record(r, TLSREC_CT_APPDATA, NULL, 0, 0, 0, 0);
}

/* What must hold once everything was read. */
static void
final_checks(struct run *r)
{
	struct model *m = &r->m;
	size_t want = r->exp.len;	/* it stops at the first refused or raw record */

	do_read(r, 20000);
	open_output(r);
	if (r->got.len != want)
		abort();	/* all of it up to the first refusal */
	if (m->unknown)
		return;		/* refused or still waiting: the bound held */
	if (m->done != r->read_failed)
		abort();
	if (m->done) {
		if (r->fail_ret != (m->closed ? -ECONNRESET : -EPROTO))
			abort();
		if (m->alert >= 0 && (!r->srv_alert || r->srv_alert_desc != m->alert))
			abort();
		if (m->alert < 0 && r->srv_alert)
			abort();
		return;
	}
	if (m->hs_have > 0)
		return;		/* half a KeyUpdate: data now would be refused */
	if (m->ku_requests > 0 && r->srv_key_updates == 0)
		abort();	/* a request is answered */
	/* Both directions still work. */
	record(r, TLSREC_CT_APPDATA, (const uint8_t *)MARK, sizeof(MARK) - 1, 0, 0, 0);
	do_read(r, 20000);
	if (r->read_failed || r->got.len != r->exp.len ||
	    memcmp(r->got.p + r->got.len - (sizeof(MARK) - 1), MARK, sizeof(MARK) - 1) != 0)
		abort();
	r->written = 0;
	do_write(r, sizeof(MARK) - 1);
	open_output(r);
	if (r->cli.len != r->sent.len || r->srv_alert)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t reads[] = { 1, 5, 16, 100, 4096, 16383, 16384, 20000 };
	static const size_t writes[] = { 0, 1, 100, 16383, 16384, 16385, 40000, 5000 };
	struct in in = { data, size, 1 };
	struct run r;

	if (size == 0 || size > 8192)
		return 0;
	if (ctx == NULL)
		init_once();
	memset(&r, 0, sizeof(r));
	r.m.alert = -1;
	r.rec = malloc(65536 + TLSREC_HDR);
	if (r.rec == NULL)
		abort();
	if ((data[0] & 0xf0) == 0xf0)
		session(&r, data[0]);
	else
		session_fixed(&r, data[0]);
	while (in.off < in.n) {
		switch (u8(&in) % 8) {
		case 0: op_record(&r, &in); break;
		case 1: op_key_update(&r, &in); break;
		case 2: op_alert(&r, &in); break;
		case 3: op_raw(&r, &in); break;
		case 4: do_read(&r, reads[u8(&in) % 8]); break;
		case 5: do_write(&r, writes[u8(&in) % 8]); break;
		case 6: open_output(&r); break;
		default: op_misc(&r, &in); break;
		}
	}
	final_checks(&r);
	tlsterm_free(r.t);
	tlsrec_wipe(&r.cw);
	tlsrec_wipe(&r.sr);
	free(r.rec);
	free(r.exp.p);
	free(r.got.p);
	free(r.sent.p);
	free(r.cli.p);
	return 0;
}
