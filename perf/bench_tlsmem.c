/* What one idle TLS connection costs the server in memory, TLS alone: N
 * server ends (struct tlsterm, the code parleyd runs) complete a handshake
 * with in-memory OpenSSL clients, are trimmed as an idle connection is
 * (tlsterm_trim: record buffers and BIO capacity given back); then each is
 * freed and the heap it gives back is counted (glibc mallinfo2): what an
 * idle connection's TLS holds, our struct, OpenSSL's SSL object (with its
 * session and cipher contexts) and the two memory BIOs.
 *
 *   bench_tlsmem [N]     (default 2000)
 *
 * Twice: with OpenSSL's record layer throughout ([tls] record_layer =
 * openssl), then with ours (record_layer = parley: the trim hands each TLS
 * 1.3 session off and frees its SSL, see dataplane/tls/tlsterm.c). One
 * line: tls_bytes_per_conn=... (OpenSSL) parley_bytes_per_conn=...
 * handed_off=K conns=N openssl=<version>. No network, no files but a
 * temporary certificate. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlsterm.h"

static size_t
heap_used(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

/* Moves bytes between client <c> (memory BIOs <cr>, <cw>) and server <t>
 * until both handshakes are done. 0, or -1 if they stall. */
static int
handshake(SSL *c, BIO *cr, BIO *cw, struct tlsterm *t)
{
	char buf[16384];
	int n;

	for (int round = 0; round < 20; round++) {
		const void *p;
		size_t len;

		SSL_do_handshake(c);
		while ((n = BIO_read(cw, buf, sizeof(buf))) > 0)
			if (tlsterm_feed(t, buf, (size_t)n) < 0)
				return -1;
		(void)tlsterm_read(t, buf, sizeof(buf));	/* drives the server's handshake */
		while ((len = tlsterm_pending_out(t, &p)) > 0) {
			BIO_write(cr, p, (int)len);
			tlsterm_consume_out(t, len);
		}
		if (SSL_is_init_finished(c) && tlsterm_handshake_done(t))
			return 0;
	}
	return -1;
}

/* Average bytes one idle trimmed server session holds, over <n> of them;
 * <handed> counts those on our record layer. 0 on failure. */
static size_t
measure(const struct tlsterm_settings *s, SSL_CTX *cc, int n, int *handed)
{
	struct tlsterm_ctx *ctx;
	struct tlsterm **ts;
	char err[512];
	size_t total = 0;

	ctx = tlsterm_ctx_create(s, err, sizeof(err));
	ts = calloc((size_t)n, sizeof(*ts));
	if (ctx == NULL || ts == NULL) {
		fprintf(stderr, "bench_tlsmem: %s\n", ctx == NULL ? err : "out of memory");
		return 0;
	}
	*handed = 0;
	for (int i = 0; i < n; i++) {
		SSL *c = SSL_new(cc);
		BIO *cr = BIO_new(BIO_s_mem()), *cw = BIO_new(BIO_s_mem());

		SSL_set_bio(c, cr, cw);
		SSL_set_connect_state(c);
		ts[i] = tlsterm_new(ctx);
		if (ts[i] == NULL || handshake(c, cr, cw, ts[i]) != 0) {
			fprintf(stderr, "bench_tlsmem: handshake %d failed\n", i);
			return 0;
		}
		tlsterm_trim(ts[i]);
		*handed += tlsterm_handed_off(ts[i]);
		SSL_free(c);
	}
	for (int i = 0; i < n; i++) {
		size_t before = heap_used();

		tlsterm_free(ts[i]);
		total += before - heap_used();
	}
	free(ts);
	tlsterm_ctx_put(ctx);
	return total / (size_t)n;
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000, handed;
	char dir[] = "/tmp/parley-tlsmem-XXXXXX", cert[64], key[64], err[512];
	struct tlsterm_settings s = { 0 };
	size_t openssl_bytes, own_bytes;
	SSL_CTX *cc;

	if (n <= 0 || mkdtemp(dir) == NULL)
		return 2;
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	if (tlscert_ensure(cert, key, "example.com", 2, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_tlsmem: %s\n", err);
		return 1;
	}
	s.cert_file = cert;
	s.key_file = key;
	/* parleyd's [tls] defaults: a session cache, stateless tickets. */
	s.session_cache = 20000;
	s.session_timeout_s = 7200;
	s.tickets = true;
	cc = SSL_CTX_new(TLS_client_method());
	if (cc == NULL)
		return 1;
	s.own_records = false;
	openssl_bytes = measure(&s, cc, n, &handed);
	s.own_records = true;
	own_bytes = measure(&s, cc, n, &handed);
	if (openssl_bytes == 0 || own_bytes == 0)
		return 1;
	printf("tls_bytes_per_conn=%zu parley_bytes_per_conn=%zu handed_off=%d conns=%d "
	       "openssl=\"%s\"\n", openssl_bytes, own_bytes, handed, n,
	       OpenSSL_version(OPENSSL_VERSION));
	SSL_CTX_free(cc);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	return 0;
}
