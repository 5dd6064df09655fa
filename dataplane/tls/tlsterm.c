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
 * cost a thread-local lookup per record for nothing. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dataplane/tls/tlsterm.h"
#include "dataplane/tls/tlserr.h"

/* TLS 1.2 suites when none are configured: forward secrecy and AEAD only. */
#define DEFAULT_CIPHERS							\
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"	\
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"	\
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Consumed output below this stays in the wbio until it drains fully. */
#define OUT_COMPACT_MIN		(16 * 1024)
/* A drained wbio keeps at most this much capacity between bursts. */
#define OUT_KEEP_MAX		(64 * 1024)

static const unsigned char session_id_ctx[] = "parley";

struct tlsterm_ctx {
	SSL_CTX *ssl_ctx;
	/* Atomic: a reload on the control thread drops its reference while
	 * lcores still hold theirs through live sessions. */
	atomic_uint refs;
};

struct tlsterm {
	SSL *ssl;
	BIO *rbio;		/* owned by ssl */
	BIO *wbio;		/* owned by ssl */
	struct tlsterm_ctx *ctx;	/* one reference */
	size_t out_off;		/* bytes at the head of wbio already sent */
	bool failed;		/* fatal TLS error seen; only pending output remains */
};

/* Applies the protocol, cipher, session and mode settings of <s>. */
static int
configure(SSL_CTX *c, const struct tlsterm_settings *s, char *errbuf, size_t errlen)
{
	const char *ciphers = s->ciphers != NULL ? s->ciphers : DEFAULT_CIPHERS;
	uint64_t opts;

	if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
		tlserr_set(errbuf, errlen, "cannot restrict TLS versions to 1.2 and 1.3");
		return -EINVAL;
	}
	if (SSL_CTX_set_cipher_list(c, ciphers) != 1) {
		tlserr_set(errbuf, errlen, "invalid TLS 1.2 cipher list \"%s\"", ciphers);
		return -EINVAL;
	}
	if (s->ciphersuites != NULL && SSL_CTX_set_ciphersuites(c, s->ciphersuites) != 1) {
		tlserr_set(errbuf, errlen, "invalid TLS 1.3 ciphersuites \"%s\"", s->ciphersuites);
		return -EINVAL;
	}

	opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	       SSL_OP_PRIORITIZE_CHACHA;
	if (!s->tickets)
		opts |= SSL_OP_NO_TICKET;
	SSL_CTX_set_options(c, opts);

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
	/* TLS 1.3 resumes with tickets: stateless ones when tickets are on,
	 * references into the session cache otherwise. One per handshake is
	 * enough for a client that keeps one connection; none when neither
	 * way could resume. */
	SSL_CTX_set_num_tickets(c, (s->tickets || s->session_cache > 0) ? 1 : 0);
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
	if (c == NULL)
		return;
	/* Release our uses of <c> before the count drops; the thread that
	 * takes it to zero acquires everyone else's before freeing. */
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_release) != 1)
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
	free(t);
	ERR_clear_error();
}

int
tlsterm_feed(struct tlsterm *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int chunk;

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
	size_t got = 0;
	int ret;

	if (t->failed)
		return -EPROTO;
	if (len == 0)
		return 0;
	ERR_clear_error();
	ret = SSL_read_ex(t->ssl, buf, len > SSIZE_MAX ? SSIZE_MAX : len, &got);
	if (ret == 1)
		return (ssize_t)got;
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
	return !t->failed && BIO_ctrl_pending(t->rbio) == 0 && SSL_pending(t->ssl) == 0;
}

ssize_t
tlsterm_write(struct tlsterm *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t done = 0, n;

	if (t->failed)
		return -EPROTO;
	if (!SSL_is_init_finished(t->ssl))
		return -EAGAIN;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
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

void
tlsterm_consume_out(struct tlsterm *t, size_t n)
{
	size_t len;

	len = (size_t)BIO_ctrl_pending(t->wbio);
	if (n > len - t->out_off)
		n = len - t->out_off;
	t->out_off += n;
	if (t->out_off == len) {
		out_compact(t);
		release_empty(t->wbio, OUT_KEEP_MAX);
	} else if (t->out_off >= OUT_COMPACT_MIN && t->out_off >= len - t->out_off) {
		out_compact(t);
	}
}

void
tlsterm_shutdown(struct tlsterm *t)
{
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
	return SSL_is_init_finished(t->ssl);
}

bool
tlsterm_session_reused(const struct tlsterm *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

const char *
tlsterm_describe(const struct tlsterm *t, char *buf, size_t len)
{
	const SSL_CIPHER *cipher;

	if (len == 0)
		return buf;
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
