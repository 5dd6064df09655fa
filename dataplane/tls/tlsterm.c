/* TLS termination with OpenSSL over memory BIOs.
 *
 * Each struct tlsterm wraps one server-side SSL whose read BIO (rbio) holds
 * ciphertext fed from the wire and whose write BIO (wbio) collects
 * ciphertext for the wire. Both are BIO_s_mem, so OpenSSL never blocks and
 * never touches a socket: the I/O backend moves the bytes.
 *
 * Output queue. OpenSSL 3.0's BIO_s_mem keeps a read pointer separate from
 * its buffer, and every BIO_write first memmoves the unread bytes back to
 * the start of the buffer. Consuming a slow reader's output piecewise with
 * BIO_read (a copy) or BIO_seek (then a memmove of the whole rest on the next
 * record) would cost O(queued) per step, quadratic in total. So the wbio is
 * never read: tlsterm keeps its own offset <out_off> into the wbio's data
 * and tells the BIO about it (BIO_seek) only when the output is fully
 * drained, which costs nothing, or when at least half of the buffer has been
 * sent, so that the memmove that follows copies no more than was consumed.
 *
 * Ownership. A struct tlsterm belongs to the lcore of its connection. It
 * holds one reference to its struct tlsterm_ctx; the SSL holds its own on
 * the SSL_CTX. A struct tlsterm_ctx is built on a boot or control thread,
 * never changed afterwards, and shared by all lcores.
 *
 * Errors. OpenSSL's error queue is per thread. Every failure path clears
 * the queue, and every SSL call here whose outcome is read back through the
 * queue (SSL_get_error(), handshake and setup calls) starts with
 * ERR_clear_error(), so that an error on one connection is never read as
 * another one's. The per-record calls that only look at their return value
 * (BIO_write into the rbio, SSL_write_ex) skip the leading clear: it would
 * cost a thread-local lookup per record for nothing.
 *
 * Our own record layer ([tls] record_layer = parley). An idle SSL object
 * costs ~15 KB; a TLS 1.3 session after its handshake needs only a traffic
 * secret, key, IV and sequence number per direction. So once a TLS 1.3
 * session is quiet, tlsterm keeps those (two struct tlsrec_dir, tlsrec.c)
 * and frees the SSL with its BIOs: the "hand-off". From then on feed/read
 * open records from <in>, write/shutdown seal records into <out>
 * (tlsterm_own.c; tlsterm_int.h holds what the two files share).
 *
 *  - Secrets: the keylog callback hands us CLIENT_/SERVER_TRAFFIC_SECRET_0.
 *  - Sequence numbers: OpenSSL 3.0 does not expose them, so we count the
 *    records it protects with those secrets. The message callback reports
 *    every record header OpenSSL reads or writes (SSL3_RT_HEADER) and every
 *    handshake message: the server switches to its application key right
 *    after writing its Finished, and reads with the client's application
 *    key right after reading the client's Finished (RFC 8446 §7.2; no
 *    client certificates, no 0.5-RTT data, no early data here). Each header
 *    after those points is one record under the application keys. Any other
 *    post-handshake message (KeyUpdate, a ticket from the client), any
 *    alert, or any record read whose inner content type (which OpenSSL
 *    reports too) is not application data makes the session stay on
 *    OpenSSL for good: a handshake fragment shorter than a message header
 *    waits inside OpenSSL without any other callback.
 *  - A second count checks the first: feed_scan() walks the record headers
 *    of the ciphertext we feed; the type-23 records after the client's first
 *    one (its Finished) must equal the records OpenSSL read after Finished.
 *    On the write side, where an undercount would reuse a nonce under the
 *    same key, out_scan() walks the headers of the bytes that leave
 *    (tlsterm_consume_out()): their type-23 records must equal those the
 *    message callback reported writing, under any key.
 *  - Only on the OpenSSL versions the suite runs against (3.0.x; 3.2
 *    rewrote the record layer and the callbacks this relies on): on any
 *    other, the switch is off and the log says so once.
 *  - Hand-off only when nothing is in flight: the fed stream is at a record
 *    boundary and OpenSSL took all of it and holds no unread plaintext nor
 *    partial record, the output is drained, no close_notify either way.
 * A count that was wrong would show as an authentication failure on the
 * next record: counted (TLSTERM_EV_BAD_MAC) and the connection closed. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dataplane/base/bug.h"
#include "dataplane/base/log.h"
#include "dataplane/tls/tlsterm.h"
#include "dataplane/tls/tlserr.h"
#include "dataplane/tls/tlspolicy.h"
#include "dataplane/tls/tlsticket.h"
#include "dataplane/tls/tlsrec.h"
#include "dataplane/tls/tlsterm_int.h"

static const unsigned char session_id_ctx[] = "parley";
/* The version warning of tlsterm_ctx_create() went out (once a process). */
static atomic_bool version_said;


/* Something unusual: <t> stays on OpenSSL for good, and the traffic
 * secrets captured for a hand-off go now rather than when it closes. */
static void
stay(struct tlsterm *t)
{
	t->never = true;
	tlsrec_wipe(&t->rd);
	tlsrec_wipe(&t->wr);
	t->have_rd = t->have_wr = false;
}

/* Keylog callback: keeps the application traffic secrets of TLS 1.3
 * ("CLIENT_TRAFFIC_SECRET_0 <client random> <secret>", hex). */
static void
keylog_cb(const SSL *ssl, const char *line)
{
	static const char cli[] = "CLIENT_TRAFFIC_SECRET_0 ", srv[] = "SERVER_TRAFFIC_SECRET_0 ";
	struct tlsterm *t = SSL_get_app_data(ssl);
	struct tlsrec_dir *d;
	const char *hex;
	size_t n = 0;
	bool *have;

	if (t == NULL || t->never)
		return;
	if (strncmp(line, cli, sizeof(cli) - 1) == 0) {
		d = &t->rd;
		have = &t->have_rd;
	} else if (strncmp(line, srv, sizeof(srv) - 1) == 0) {
		d = &t->wr;
		have = &t->have_wr;
	} else {
		return;
	}
	hex = strrchr(line, ' ') + 1;
	for (; hex[0] != '\0' && hex[1] != '\0' && n < sizeof(d->secret); hex += 2) {
		int hi = OPENSSL_hexchar2int((unsigned char)hex[0]);
		int lo = OPENSSL_hexchar2int((unsigned char)hex[1]);

		if (hi < 0 || lo < 0)
			break;
		d->secret[n++] = (uint8_t)(hi << 4 | lo);
	}
	if (hex[0] != '\0' || n == 0 || *have || (t->secret_len != 0 && t->secret_len != n)) {
		stay(t);	/* a second generation or a garbled line */
		return;
	}
	t->secret_len = (uint8_t)n;
	*have = true;
}

/* Message callback: counts the records OpenSSL protects with the
 * application keys, and notices anything after the handshake that would
 * change them (see the top of this file). */
static void
msg_cb(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl, void *arg)
{
	struct tlsterm *t = SSL_get_app_data(ssl);
	const unsigned char *b = buf;

	(void)version;
	(void)arg;
	if (t == NULL)
		return;
	/* The KeyUpdate limit on OpenSSL's layer (which has none): past it,
	 * stop OpenSSL at this record by emptying the rbio (it reads one
	 * record at a time from it); tlsterm_read() then fails. */
	if (type == SSL3_RT_HANDSHAKE && !write_p && len >= 1 && b[0] == SSL3_MT_KEY_UPDATE &&
	    ++t->ku_run > TLSTERM_KEY_UPDATES_MAX) {
		t->ku_flood = true;
		(void)BIO_reset(t->rbio);
	}
	if (t->never)
		return;
	switch (type) {
	case SSL3_RT_HEADER:
		if (write_p && len >= TLSREC_HDR && b[0] == SSL3_RT_APPLICATION_DATA)
			t->wr_all++;
		if (write_p ? !t->wr_on : !t->rd_on)
			return;
		if (len < TLSREC_HDR || b[0] != SSL3_RT_APPLICATION_DATA)
			stay(t);
		else if (write_p)
			t->wr_seq++;
		else
			t->rd_seq++;
		return;
	case SSL3_RT_HANDSHAKE:
		if (len < 1)
			return;
		if (b[0] == SSL3_MT_FINISHED && !(write_p ? t->wr_on : t->rd_on)) {
			if (write_p)
				t->wr_on = true;
			else
				t->rd_on = true;
			return;
		}
		/* Our tickets are the only handshake messages after Finished
		 * that leave the keys as they are. */
		if ((t->wr_on || t->rd_on) && !(write_p && b[0] == SSL3_MT_NEWSESSION_TICKET))
			stay(t);
		return;
	case SSL3_RT_ALERT:
		stay(t);
		return;
	case SSL3_RT_INNER_CONTENT_TYPE:
		/* Anything but data after Finished, even a piece of a
		 * handshake header too short for a message callback, which
		 * OpenSSL holds and the hand-off would lose. */
		if (!write_p && t->rd_on && (len != 1 || b[0] != SSL3_RT_APPLICATION_DATA))
			stay(t);
		return;
	default:
		return;
	}
}

/* Applies the TLS policy (tlspolicy.c) and the session and mode settings
 * of <s>. */
static int
configure(SSL_CTX *c, const struct tlsterm_settings *s, char *errbuf, size_t errlen)
{
	int ret;

	ret = tlspolicy_apply(c, s->ciphers, s->ciphersuites, errbuf, errlen);
	if (ret != 0)
		return ret;
	if (!s->tickets)
		SSL_CTX_set_options(c, SSL_OP_NO_TICKET);

	/* The memory wbio never pushes back, so SSL_write always takes the
	 * whole buffer and partial writes would only add round trips through
	 * tlsterm_write()'s loop; moving buffers is allowed all the same. */
	/* Record buffers stay while a connection is busy (no allocation per
	 * record); tlsterm_trim() gives them back once it is idle. */
	SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

	if (SSL_CTX_set_session_id_context(c, session_id_ctx, sizeof(session_id_ctx) - 1) != 1) {
		tlserr_set(errbuf, errlen, "cannot set the session id context");
		return -EINVAL;
	}
	if (s->session_cache > 0) {
		SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(c, s->session_cache);
	} else {
		SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	}
	if (s->session_timeout_s > 0)
		SSL_CTX_set_timeout(c, s->session_timeout_s);
	if (s->tickets && tlsticket_attach(c) != 0) {
		tlserr_set(errbuf, errlen, "cannot set up the session ticket keys");
		return -ENOMEM;
	}
	/* TLS 1.3 resumes with tickets: stateless ones when tickets are on,
	 * references into the session cache otherwise. One per handshake is
	 * enough for a client that keeps one connection; none when neither
	 * way could resume. */
	SSL_CTX_set_num_tickets(c, (s->tickets || s->session_cache > 0) ? 1 : 0);
	/* No 0-RTT (the default, spelled out: the hand-off counts on it). */
	SSL_CTX_set_max_early_data(c, 0);
	SSL_CTX_set_msg_callback(c, msg_cb);	/* also the KeyUpdate limit */
	if (s->own_records)
		SSL_CTX_set_keylog_callback(c, keylog_cb);
	return 0;
}

/* Loads the certificate chain and the key of <s> into <c>. */
static int
load_credentials(SSL_CTX *c, const struct tlsterm_settings *s, char *errbuf, size_t errlen)
{
	if (s->cert_file == NULL || s->key_file == NULL) {
		tlserr_set(errbuf, errlen, "no TLS certificate or key file configured");
		return -EINVAL;
	}
	if (SSL_CTX_use_certificate_chain_file(c, s->cert_file) != 1) {
		tlserr_set(errbuf, errlen, "cannot load certificate chain from %s", s->cert_file);
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(c, s->key_file, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL already compares the key with the certificate here. */
		if (ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_X509 &&
		    ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
			tlserr_set(errbuf, errlen, "private key %s does not match certificate %s",
				  s->key_file, s->cert_file);
		else
			tlserr_set(errbuf, errlen, "cannot load private key from %s",
				  s->key_file);
		return -EINVAL;
	}
	if (SSL_CTX_check_private_key(c) != 1) {
		tlserr_set(errbuf, errlen, "private key %s does not match certificate %s",
			  s->key_file, s->cert_file);
		return -EINVAL;
	}
	return 0;
}

int
tlsterm_set_core_dumps(bool allow)
{
	return prctl(PR_SET_DUMPABLE, allow ? 1 : 0, 0, 0, 0) == -1 ? -errno : 0;
}

bool
tlsterm_handoff_version_ok(unsigned long v)
{
	/* 0xMNN00PPSL: major, minor, patch, status. */
	return (v & 0xfff00000UL) == 0x30000000UL;
}

bool
tlsterm_own_records_allowed(unsigned long v)
{
	if (tlsterm_handoff_version_ok(v))
		return true;
	if (!atomic_exchange(&version_said, true))
		LOG(WARNING, TLS, "[tls] record_layer = parley is tested with OpenSSL 3.0.x only; "
		    "running %lx: TLS stays on OpenSSL's record layer", v);
	return false;
}

struct tlsterm_ctx *
tlsterm_ctx_create(const struct tlsterm_settings *s, char *errbuf, size_t errlen)
{
	struct tlsterm_ctx *c;

	ERR_clear_error();
	c = calloc(1, sizeof(*c));	/* freed by the last tlsterm_ctx_put() */
	if (c == NULL) {
		tlserr_set(errbuf, errlen, "out of memory for the TLS context");
		return NULL;
	}
	c->ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (c->ssl_ctx == NULL) {
		tlserr_set(errbuf, errlen, "cannot create a TLS context");
		goto out_free_c;
	}
	if (configure(c->ssl_ctx, s, errbuf, errlen) != 0)
		goto out_free_ssl_ctx;
	if (load_credentials(c->ssl_ctx, s, errbuf, errlen) != 0)
		goto out_free_ssl_ctx;
	c->own_records = s->own_records && tlsterm_own_records_allowed(OpenSSL_version_num());
	c->out_max = s->out_max != 0 ? s->out_max : TLSTERM_OUT_MAX;
	atomic_init(&c->refs, 1);
	return c;

out_free_ssl_ctx:
	SSL_CTX_free(c->ssl_ctx);
out_free_c:
	free(c);
	ERR_clear_error();
	return NULL;
}

void
tlsterm_ctx_get(struct tlsterm_ctx *c)
{
	/* Relaxed: the caller already holds a reference, so no ordering is
	 * needed to keep the object alive. */
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void
tlsterm_ctx_put(struct tlsterm_ctx *c)
{
	unsigned int old;

	if (c == NULL)
		return;
	/* Release our uses of <c> before the count drops; the thread that
	 * takes it to zero acquires everyone else's before freeing. */
	old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_release);
	BUG_ON(old == 0);	/* put once more than taken */
	if (old != 1)
		return;
	atomic_thread_fence(memory_order_acquire);
	SSL_CTX_free(c->ssl_ctx);
	free(c);
}

struct tlsterm *
tlsterm_new(struct tlsterm_ctx *ctx)
{
	struct tlsterm *t;

	ERR_clear_error();
	t = calloc(1, sizeof(*t));	/* freed by tlsterm_free() */
	if (t == NULL)
		return NULL;
	t->ssl = SSL_new(ctx->ssl_ctx);
	if (t->ssl == NULL)
		goto out_free_t;
	t->rbio = BIO_new(BIO_s_mem());
	if (t->rbio == NULL)
		goto out_free_ssl;
	t->wbio = BIO_new(BIO_s_mem());
	if (t->wbio == NULL)
		goto out_free_rbio;
	/* Empty memory BIOs report "retry", which SSL turns into WANT_READ
	 * (the BIO_s_mem default, spelled out because the code relies on it). */
	BIO_set_mem_eof_return(t->rbio, -1);
	BIO_set_mem_eof_return(t->wbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);	/* ssl owns both from here */
	SSL_set_accept_state(t->ssl);
	SSL_set_app_data(t->ssl, t);	/* for keylog_cb() and msg_cb() */
	t->never = !ctx->own_records;
	tlsterm_ctx_get(ctx);
	t->ctx = ctx;
	return t;

out_free_rbio:
	BIO_free(t->rbio);
out_free_ssl:
	SSL_free(t->ssl);
out_free_t:
	free(t);
	ERR_clear_error();
	return NULL;
}

void
tlsterm_free(struct tlsterm *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	tlsterm_ctx_put(t->ctx);
	tlsrec_wipe(&t->rd);
	tlsrec_wipe(&t->wr);
	if (t->in != NULL)
		OPENSSL_clear_free(t->in, t->in_cap);	/* may hold opened content */
	free(t->out);
	free(t);
	ERR_clear_error();
}

/* Walks the record headers of fed ciphertext (see the top of this file). */
static void
feed_scan(struct tlsterm *t, const unsigned char *p, size_t len)
{
	while (len > 0 && !t->never) {
		if (t->f_body > 0) {
			size_t n = len < t->f_body ? len : t->f_body;

			p += n;
			len -= n;
			t->f_body -= (uint32_t)n;
			continue;
		}
		t->f_hdr[t->f_have++] = *p++;
		len--;
		if (t->f_have < TLSREC_HDR)
			continue;
		t->f_have = 0;
		t->f_body = (uint32_t)t->f_hdr[3] << 8 | t->f_hdr[4];
		if (t->f_hdr[0] < SSL3_RT_CHANGE_CIPHER_SPEC || t->f_hdr[0] > SSL3_RT_APPLICATION_DATA ||
		    t->f_hdr[1] != 0x03 || t->f_body > TLSREC_MAX_CIPHER)
			stay(t);	/* OpenSSL will fail it; we need not follow */
		else if (t->f_hdr[0] == SSL3_RT_APPLICATION_DATA && t->f_seen23)
			t->f_app++;
		else if (t->f_hdr[0] == SSL3_RT_APPLICATION_DATA)
			t->f_seen23 = true;
	}
}

/* Walks the record headers of output that leaves (see the top of this
 * file): counts every type-23 record in <t>->o_all. */
static void
out_scan(struct tlsterm *t, const unsigned char *p, size_t len)
{
	while (len > 0) {
		if (t->o_body > 0) {
			size_t n = len < t->o_body ? len : t->o_body;

			p += n;
			len -= n;
			t->o_body -= (uint32_t)n;
			continue;
		}
		t->o_hdr[t->o_have++] = *p++;
		len--;
		if (t->o_have < TLSREC_HDR)
			continue;
		t->o_have = 0;
		t->o_body = (uint32_t)t->o_hdr[3] << 8 | t->o_hdr[4];
		if (t->o_hdr[0] == SSL3_RT_APPLICATION_DATA)
			t->o_all++;
	}
}

int
tlsterm_feed(struct tlsterm *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int chunk;

	if (t->own)
		return tlsterm_own_feed(t, buf, len);
	if (!t->never)
		feed_scan(t, buf, len);
	while (len > 0) {
		chunk = len > INT_MAX ? INT_MAX : (int)len;
		if (BIO_write(t->rbio, p, chunk) != chunk) {
			ERR_clear_error();
			return -ENOMEM;
		}
		p += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

ssize_t
tlsterm_read(struct tlsterm *t, void *buf, size_t len)
{
	size_t got = 0, before, after;
	int ret;

	if (t->failed)
		return -EPROTO;
	if (len == 0)
		return 0;
	if (t->own)
		return tlsterm_own_read(t, buf, len);
	before = (size_t)BIO_ctrl_pending(t->wbio);
	ERR_clear_error();
	ret = SSL_read_ex(t->ssl, buf, len > SSIZE_MAX ? SSIZE_MAX : len, &got);
	/* OpenSSL answered on its own (a KeyUpdate request, one per read at
	 * most) past the output bound: a peer that asks but does not read. */
	after = (size_t)BIO_ctrl_pending(t->wbio);
	if ((after > before && after - t->out_off > t->ctx->out_max) || t->ku_flood) {
		t->failed = true;
		ERR_clear_error();
		return -EPROTO;
	}
	if (ret == 1) {
		t->ku_run = 0;
		return (ssize_t)got;
	}
	switch (SSL_get_error(t->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:	/* not with a memory wbio; harmless */
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	default:
		/* Handshake failure, bad record, or a peer that stopped
		 * without close_notify. Any alert is already in the wbio. */
		t->failed = true;
		ERR_clear_error();
		return -EPROTO;
	}
}

bool
tlsterm_in_empty(const struct tlsterm *t)
{
	size_t avail;

	if (t->failed)
		return false;
	if (!t->own)
		return BIO_ctrl_pending(t->rbio) == 0 && SSL_pending(t->ssl) == 0;
	if (t->pl_len > 0 || t->peer_closed)
		return false;
	avail = t->in_len - t->in_off;
	if (avail < TLSREC_HDR)
		return true;
	avail -= TLSREC_HDR;
	/* A complete record, or a header that is already wrong, needs a read. */
	return avail < ((size_t)t->in[t->in_off + 3] << 8 | t->in[t->in_off + 4]) &&
	       ((size_t)t->in[t->in_off + 3] << 8 | t->in[t->in_off + 4]) <= TLSREC_MAX_CIPHER;
}

ssize_t
tlsterm_write(struct tlsterm *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t done = 0, n;

	if (t->failed)
		return -EPROTO;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (t->own)
		return tlsterm_own_write(t, buf, len);
	if (!SSL_is_init_finished(t->ssl))
		return -EAGAIN;
	while (done < len) {
		n = 0;
		if (SSL_write_ex(t->ssl, p + done, len - done, &n) != 1) {
			/* Out of memory, or we or the peer already shut down. */
			ERR_clear_error();
			return -EPROTO;
		}
		done += n;
	}
	return (ssize_t)len;
}

size_t
tlsterm_pending_out(struct tlsterm *t, const void **p)
{
	char *data = NULL;
	long len;

	if (t->own) {
		*p = t->out_len > t->out_off ? t->out + t->out_off : NULL;
		return t->out_len - t->out_off;
	}
	len = BIO_get_mem_data(t->wbio, &data);
	if (len <= 0 || (size_t)len <= t->out_off) {
		*p = NULL;
		return 0;
	}
	*p = data + t->out_off;
	return (size_t)len - t->out_off;
}

/* Drops the <t>->out_off bytes already sent from the wbio. Costs nothing
 * itself; the next record written moves what is left to the front. */
static void
out_compact(struct tlsterm *t)
{
	long pos;

	/* BIO_seek positions are counted from the start of the buffer, not
	 * from the read pointer that an earlier compaction may have moved. */
	pos = BIO_ctrl(t->wbio, BIO_C_FILE_TELL, 0, NULL);
	BIO_ctrl(t->wbio, BIO_C_FILE_SEEK, pos + (long)t->out_off, NULL);
	t->out_off = 0;
}

/* Frees the buffer behind the empty memory BIO <b>, keeping <keep> bytes of
 * capacity. The next write allocates again. */
static void
release_empty(BIO *b, size_t keep)
{
	BUF_MEM *bm = NULL, *fresh;

	if (BIO_ctrl_pending(b) != 0)
		return;
	BIO_get_mem_ptr(b, &bm);
	if (bm == NULL || bm->max <= keep)
		return;
	fresh = BUF_MEM_new();
	if (fresh == NULL) {
		ERR_clear_error();
		return;		/* keep the old buffer; nothing is lost */
	}
	BIO_set_mem_buf(b, fresh, BIO_CLOSE);	/* frees the old BUF_MEM */
}

/* Moves the session from OpenSSL to our layer if it is quiet and every
 * count is known (see the top of this file). True when it did. */
static bool
try_handoff(struct tlsterm *t)
{
	const SSL_CIPHER *cipher;
	SSL_SESSION *sess;
	unsigned int sid_len = 0;
	uint16_t suite;
	char desc[sizeof(t->desc)];

	if (t->never || t->failed || !SSL_is_init_finished(t->ssl))
		return false;
	if (SSL_version(t->ssl) != TLS1_3_VERSION) {
		stay(t);
		return false;
	}
	cipher = SSL_get_current_cipher(t->ssl);
	suite = cipher != NULL ? SSL_CIPHER_get_protocol_id(cipher) : 0;
	if (!tlsrec_suite_supported(suite) || !t->have_rd || !t->have_wr ||
	    t->secret_len != tlsrec_secret_len(suite) || !t->rd_on || !t->wr_on) {
		stay(t);
		return false;
	}
	/* Quiet: nothing fed that OpenSSL has not fully processed, nothing
	 * it wrote that has not been sent, no shutdown either way. */
	if (BIO_ctrl_pending(t->rbio) != 0 || t->f_have != 0 || t->f_body != 0 ||
	    SSL_pending(t->ssl) != 0 || SSL_has_pending(t->ssl) ||
	    (size_t)BIO_ctrl_pending(t->wbio) != t->out_off || SSL_get_shutdown(t->ssl) != 0)
		return false;
	if (t->f_app != t->rd_seq || t->o_all != t->wr_all || t->o_have != 0 || t->o_body != 0) {
		stay(t);	/* the two counts disagree: leave it to OpenSSL */
		return false;
	}
	if (tlsrec_init(&t->rd, suite, t->rd.secret, t->secret_len, t->rd_seq, false) != 0 ||
	    tlsrec_init(&t->wr, suite, t->wr.secret, t->secret_len, t->wr_seq, true) != 0) {
		/* Out of memory, most likely: try again later. */
		tlsrec_trim(&t->rd);
		tlsrec_trim(&t->wr);
		return false;
	}
	snprintf(desc, sizeof(desc), "%s %s", SSL_get_version(t->ssl), SSL_CIPHER_get_name(cipher));
	memcpy(t->desc, desc, sizeof(desc));
	t->reused = SSL_session_reused(t->ssl) == 1;
	sess = SSL_get_session(t->ssl);
	if (sess != NULL) {
		const unsigned char *id = SSL_SESSION_get_id(sess, &sid_len);

		if (sid_len <= sizeof(t->sid)) {
			memcpy(t->sid, id, sid_len);
			t->sid_len = (uint8_t)sid_len;
		}
	}
	/* SSL_free() drops the session from the server's cache unless it
	 * was shut down: the session is sound, its stateful tickets must go
	 * on resuming. The flag sends nothing. */
	SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN);
	SSL_free(t->ssl);	/* with both BIOs */
	t->ssl = NULL;
	t->rbio = t->wbio = NULL;
	t->out_off = 0;
	t->own = true;
	t->events |= TLSTERM_EV_HANDOFF;
	ERR_clear_error();
	return true;
}

void
tlsterm_forget_session(struct tlsterm *t)
{
	SSL_SESSION *key;

	if (t->sid_len == 0)
		return;
	/* The cache looks sessions up by version and id: a stand-in with
	 * those finds ours. Stateless tickets carry the id too: revoked. */
	tlsticket_revoke(t->ctx->ssl_ctx, t->sid, t->sid_len);
	key = SSL_SESSION_new();
	if (key != NULL && SSL_SESSION_set1_id(key, t->sid, t->sid_len) == 1 &&
	    SSL_SESSION_set_protocol_version(key, TLS1_3_VERSION) == 1)
		SSL_CTX_remove_session(t->ctx->ssl_ctx, key);
	SSL_SESSION_free(key);
	t->sid_len = 0;
	ERR_clear_error();
}

void
tlsterm_consume_out(struct tlsterm *t, size_t n)
{
	char *data = NULL;
	size_t len;

	if (t->own) {
		tlsterm_own_consume(t, n);
		return;
	}
	len = (size_t)BIO_get_mem_data(t->wbio, &data);
	if (n > len - t->out_off)
		n = len - t->out_off;
	if (!t->never && n > 0)
		out_scan(t, (const unsigned char *)data + t->out_off, n);
	t->out_off += n;
	if (t->out_off == len) {
		out_compact(t);
		release_empty(t->wbio, OUT_KEEP_MAX);
		/* Drained: a quiet moment, maybe the first after the
		 * handshake (its tickets just left). */
		if (!t->never)
			try_handoff(t);
	} else if (t->out_off >= OUT_COMPACT_MIN && t->out_off >= len - t->out_off) {
		out_compact(t);
	}
}

void
tlsterm_shutdown(struct tlsterm *t)
{
	if (t->own) {
		const uint8_t alert[2] = { ALERT_WARNING, AD_CLOSE_NOTIFY };

		if (t->failed || t->sent_close)
			return;
		if (tlsterm_own_seal(t, SSL3_RT_ALERT, alert, sizeof(alert)) != 0)
			t->failed = true;
		t->sent_close = true;
		return;
	}
	/* Before the handshake completes or after a fatal error there is no
	 * session to close: OpenSSL refuses, and the caller just closes. */
	if (t->failed || !SSL_is_init_finished(t->ssl))
		return;
	ERR_clear_error();
	if (SSL_shutdown(t->ssl) < 0)
		ERR_clear_error();
}

bool
tlsterm_handshake_done(const struct tlsterm *t)
{
	return t->own || SSL_is_init_finished(t->ssl);
}

bool
tlsterm_session_reused(const struct tlsterm *t)
{
	return t->own ? t->reused : SSL_session_reused(t->ssl) == 1;
}

const char *
tlsterm_describe(const struct tlsterm *t, char *buf, size_t len)
{
	const SSL_CIPHER *cipher;

	if (len == 0)
		return buf;
	if (t->own) {
		snprintf(buf, len, "%s%s parley-records", t->desc, t->reused ? " resumed" : "");
		return buf;
	}
	if (!SSL_is_init_finished(t->ssl)) {
		snprintf(buf, len, "%s", t->failed ? "failed handshake" : "handshake");
		return buf;
	}
	cipher = SSL_get_current_cipher(t->ssl);
	snprintf(buf, len, "%s %s%s", SSL_get_version(t->ssl),
		 cipher != NULL ? SSL_CIPHER_get_name(cipher) : "?",
		 SSL_session_reused(t->ssl) == 1 ? " resumed" : "");
	return buf;
}

void
tlsterm_trim(struct tlsterm *t)
{
	if (!t->own && !t->never && try_handoff(t))
		ERR_clear_error();
	if (t->own) {
		/* Keys stay; the AEAD contexts, drained buffers and opened
		 * content already read go. */
		tlsrec_trim(&t->rd);
		tlsrec_trim(&t->wr);
		if (t->out_off == t->out_len) {
			free(t->out);
			t->out = NULL;
			t->out_cap = t->out_len = t->out_off = 0;
		}
		if (t->pl_len == 0 && t->in_off == t->in_len && t->in != NULL) {
			OPENSSL_clear_free(t->in, t->in_cap);
			t->in = NULL;
			t->in_cap = t->in_len = t->in_off = t->pl_off = 0;
		}
		return;
	}
	/* OpenSSL's record buffers (kept only when empty: SSL_free_buffers
	 * refuses otherwise), then the BIOs' capacity. */
	SSL_free_buffers(t->ssl);
	release_empty(t->rbio, 0);
	if (t->out_off == (size_t)BIO_ctrl_pending(t->wbio)) {
		if (t->out_off != 0)
			out_compact(t);
		release_empty(t->wbio, 0);
	}
}

bool
tlsterm_handed_off(const struct tlsterm *t)
{
	return t->own;
}

unsigned
tlsterm_take_events(struct tlsterm *t)
{
	unsigned ev = t->events;

	t->events = 0;
	return ev;
}
