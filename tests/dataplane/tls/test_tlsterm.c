/* tlsterm and tlscert against a real OpenSSL client in the same process.
 *
 * The client is an ordinary SSL with its own memory BIOs; tp_pump() moves bytes
 * between it and a struct tlsterm the way an I/O backend would, optionally
 * taking only a few bytes of the server's output per round (a slow reader).
 * Certificates come from tlscert_ensure() in a fresh temporary directory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlsterm.h"
#include "dataplane/tls/tlsterm_int.h"
#include "dataplane/tls/tlsticket.h"
#include "dataplane/tls/webtls.h"
#include "tests/dataplane/tls/tlspair.h"

static char dir[] = "/tmp/test_tlsterm.XXXXXX";
static char cert_a[TP_PATH_MAX], key_a[TP_PATH_MAX], cert_b[TP_PATH_MAX], key_b[TP_PATH_MAX];

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	tp_cert_make(dir, "a", "chat.example.com", cert_a, key_a);
	tp_cert_make(dir, "b", "other.example.com", cert_b, key_b);
}

static void
teardown(void)
{
	tp_dir_remove(dir);
}

static struct tlsterm_settings
settings(const char *cert, const char *key)
{
	struct tlsterm_settings s = {
		.cert_file = cert,
		.key_file = key,
		.session_cache = 128,
		.session_timeout_s = 300,
		.tickets = true,
		/* The "tlsterm-parley" test runs everything on our record
		 * layer after the hand-off (see test_tlshandoff.c). */
		.own_records = getenv("TLSTERM_OWN_RECORDS") != NULL,
	};
	return s;
}

static struct tlsterm_ctx *
ctx_new(const struct tlsterm_settings *s)
{
	struct tlsterm_ctx *c;
	char err[512] = "";

	c = tlsterm_ctx_create(s, err, sizeof(err));
	cr_assert_not_null(c, "tlsterm_ctx_create: %s", err);
	return c;
}

/* A client context that verifies the server against <cafile> (when set) as
 * `openssl s_client -verify_return_error -CAfile <cafile> -verify_ip <ip>`. */
static SSL_CTX *
client_ctx(int minv, int maxv, const char *cafile, const char *ip)
{
	SSL_CTX *cc;

	cc = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(cc);
	cr_assert_eq(SSL_CTX_set_min_proto_version(cc, minv), 1);
	cr_assert_eq(SSL_CTX_set_max_proto_version(cc, maxv), 1);
	if (cafile != NULL) {
		cr_assert_eq(SSL_CTX_load_verify_locations(cc, cafile, NULL), 1);
		SSL_CTX_set_verify(cc, SSL_VERIFY_PEER, NULL);
	}
	if (ip != NULL)
		cr_assert_eq(X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(cc), ip), 1);
	SSL_CTX_set_session_cache_mode(cc, SSL_SESS_CACHE_CLIENT);
	return cc;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f;
	char *b;
	long n;

	f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

TestSuite(tlscert, .init = setup, .fini = teardown);
TestSuite(tlsterm, .init = setup, .fini = teardown);

Test(tlscert, generates_once_and_keeps_files)
{
	char err[256], *c1, *k1, *c2, *k2;
	size_t cl1, kl1, cl2, kl2;
	struct stat st1, st2;

	c1 = slurp(cert_a, &cl1);
	k1 = slurp(key_a, &kl1);
	cr_assert_eq(stat(key_a, &st1), 0);
	cr_assert_eq(st1.st_mode & 0777, 0600);
	cr_assert_eq(stat(cert_a, &st1), 0);
	cr_assert_eq(tlscert_ensure(cert_a, key_a, "chat.example.com", 30, err, sizeof(err)), 0);
	cr_assert_eq(stat(cert_a, &st2), 0);
	cr_assert_eq(st1.st_ino, st2.st_ino);
	c2 = slurp(cert_a, &cl2);
	k2 = slurp(key_a, &kl2);
	cr_assert(cl1 == cl2 && memcmp(c1, c2, cl1) == 0, "certificate changed");
	cr_assert(kl1 == kl2 && memcmp(k1, k2, kl1) == 0, "key changed");
	free(c1);
	free(k1);
	free(c2);
	free(k2);
}

Test(tlscert, only_one_file_is_an_error)
{
	char err[512] = "", lone[300], other[300];
	FILE *f;

	snprintf(lone, sizeof(lone), "%s/lone.crt", dir);
	snprintf(other, sizeof(other), "%s/lone.key", dir);
	f = fopen(lone, "w");
	cr_assert_not_null(f);
	fclose(f);
	cr_assert_lt(tlscert_ensure(lone, other, "x", 30, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, other), "%s", err);
	cr_assert_neq(access(other, F_OK), 0);
}

Test(tlscert, certificate_contents)
{
	X509 *x;
	FILE *f;
	BASIC_CONSTRAINTS *bc;
	EXTENDED_KEY_USAGE *eku;
	GENERAL_NAMES *gens;
	EVP_PKEY *pk;
	char name[128];
	int crit;

	f = fopen(cert_a, "r");
	cr_assert_not_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x);
	cr_assert_eq(X509_get_version(x), X509_VERSION_3);
	cr_assert_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	pk = X509_get0_pubkey(x);
	cr_assert_eq(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
	cr_assert(EVP_PKEY_get_group_name(pk, name, sizeof(name), NULL));
	cr_assert_str_eq(name, "prime256v1");
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, name, sizeof(name));
	cr_assert_str_eq(name, "chat.example.com");
	cr_assert_eq(X509_cmp_current_time(X509_get0_notBefore(x)), -1);
	cr_assert_eq(X509_cmp_current_time(X509_get0_notAfter(x)), 1);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	cr_assert(bc != NULL && !bc->ca && crit == 1);
	BASIC_CONSTRAINTS_free(bc);
	cr_assert(X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	cr_assert(eku != NULL && sk_ASN1_OBJECT_num(eku) == 1 &&
		  OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) == NID_server_auth);
	EXTENDED_KEY_USAGE_free(eku);
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	cr_assert(gens != NULL && sk_GENERAL_NAME_num(gens) == 4);
	GENERAL_NAMES_free(gens);
	cr_assert_eq(X509_check_host(x, "chat.example.com", 0, 0, NULL), 1);
	cr_assert_eq(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	cr_assert_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	cr_assert_eq(X509_check_ip_asc(x, "::1", 0), 1);
	cr_assert_eq(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
	X509_free(x);
}

/* What `openssl s_client -verify_return_error -CAfile a.crt -verify_ip
 * 127.0.0.1` does: verify the self-signed leaf against itself as anchor. */
Test(tlscert, verifies_as_own_anchor_for_127_0_0_1)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc;
	struct tlspair p;

	cc = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, cert_a, "127.0.0.1");
	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	cr_assert_eq(SSL_get_verify_result(p.c), X509_V_OK);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);

	/* The check is real: another address or another anchor fails. */
	cc = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, cert_a, "10.1.2.3");
	tp_pair_init(&p, ctx, cc, NULL);
	tp_settle(&p);
	cr_assert_eq(p.cli_err, SSL_ERROR_SSL);
	cr_assert_eq(SSL_get_verify_result(p.c), X509_V_ERR_IP_ADDRESS_MISMATCH);
	cr_assert_eq(p.srv_err, -EPROTO);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	ERR_clear_error();

	cc = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, cert_b, "127.0.0.1");
	tp_pair_init(&p, ctx, cc, NULL);
	tp_settle(&p);
	cr_assert_eq(p.cli_err, SSL_ERROR_SSL);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	ERR_clear_error();
	tlsterm_ctx_put(ctx);
}

static void
check_echo(int version, const char *want)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc = client_ctx(version, version, cert_a, "127.0.0.1");
	struct tlspair p;
	char desc[128];

	tp_pair_init(&p, ctx, cc, NULL);
	cr_assert_eq(tlsterm_write(p.t, "x", 1), -EAGAIN);
	tp_handshake(&p);
	cr_assert_eq(SSL_version(p.c), version);
	tlsterm_describe(p.t, desc, sizeof(desc));
	cr_assert_not_null(strstr(desc, want), "%s", desc);
	cr_assert_not(tlsterm_session_reused(p.t));
	tp_echo(&p, 1, 1);
	tp_echo(&p, 5000, 5000);
	tp_echo(&p, 1 << 20, 7001);
	tlsterm_trim(p.t);
	tp_echo(&p, 1 << 20, 1 << 20);
	p.out_chunk = 1000;	/* slow reader */
	tp_echo(&p, 300000, 4096);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(tlsterm, tls13_handshake_and_echo)
{
	check_echo(TLS1_3_VERSION, "TLSv1.3 TLS_");
}

Test(tlsterm, tls12_handshake_and_echo)
{
	check_echo(TLS1_2_VERSION, "TLSv1.2 ECDHE-ECDSA-");
}

Test(tlsterm, tls12_default_ciphers_are_modern)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, NULL, NULL);
	struct tlspair p;

	/* A client offering only CBC suites finds nothing in common. */
	cr_assert_eq(SSL_CTX_set_cipher_list(cc, "ECDHE-ECDSA-AES128-SHA256:AES128-SHA"), 1);
	tp_pair_init(&p, ctx, cc, NULL);
	tp_settle(&p);
	cr_assert_eq(p.srv_err, -EPROTO);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	ERR_clear_error();
	tlsterm_ctx_put(ctx);
}

/* The server's output piles up while the reader takes odd amounts, with
 * writes in between: exercises the consumed-offset compaction. */
Test(tlsterm, slow_reader_interleaved)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL);
	unsigned char *data;
	size_t piece = 3000, total = 1000 * piece, off, i;
	struct tlspair p;

	data = malloc(total);
	tp_fill(data, total, 3);
	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	for (off = 0, i = 0; off < total; off += piece, i++) {
		cr_assert_eq(tlsterm_write(p.t, data + off, piece), (ssize_t)piece);
		p.out_chunk = 1 + (i * 7919) % 5000;	/* a bit less than written, on average */
		tp_pump_out(&p);
		tp_client_step(&p);
		if (i % 97 == 0)
			tlsterm_trim(p.t);	/* must not drop anything not yet sent */
	}
	p.out_chunk = 0;
	tp_settle(&p);
	cr_assert_eq(p.cli_rx.len, total, "got %zu of %zu, client error %d", p.cli_rx.len, total,
		     p.cli_err);
	cr_assert_eq(memcmp(p.cli_rx.p, data, total), 0);
	cr_assert_eq(tlsterm_pending_out(p.t, &(const void *){ NULL }), 0);
	free(data);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

/* tlsterm_in_empty() says whether another tlsterm_read() could produce
 * anything: fed bytes or decrypted plaintext left, not a partial record. */
Test(tlsterm, in_empty_tracks_what_is_left)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL);
	unsigned char wire[4096];
	char tmp[256];
	struct tlspair p;
	int n;

	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	cr_assert(tlsterm_in_empty(p.t));
	/* Two records in one feed; read in pieces. */
	cr_assert_eq(SSL_write(p.c, "0123456789", 10), 10);
	cr_assert_eq(SSL_write(p.c, "abcdef", 6), 6);
	cr_assert(tp_pump_in(&p));
	cr_assert_not(tlsterm_in_empty(p.t));
	cr_assert_eq(tlsterm_read(p.t, tmp, 4), 4);
	cr_assert_not(tlsterm_in_empty(p.t));		/* plaintext left */
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), 6);
	cr_assert_not(tlsterm_in_empty(p.t));		/* the second record */
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), 6);
	cr_assert(tlsterm_in_empty(p.t));
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), 0);
	/* A record fed in two parts: nothing to do between them. */
	cr_assert_eq(SSL_write(p.c, "xyz", 3), 3);
	n = BIO_read(p.cout, wire, sizeof(wire));
	cr_assert_gt(n, 8);
	cr_assert_eq(tlsterm_feed(p.t, wire, 3), 0);
	/* OpenSSL has yet to take the bytes; our layer sees at once that a
	 * partial record needs more. */
	cr_assert(tlsterm_in_empty(p.t) == tlsterm_handed_off(p.t));
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), 0);
	cr_assert(tlsterm_in_empty(p.t));
	cr_assert_eq(tlsterm_feed(p.t, wire + 3, (size_t)n - 3), 0);
	cr_assert_not(tlsterm_in_empty(p.t));
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), 3);
	cr_assert_eq(memcmp(tmp, "xyz", 3), 0);
	cr_assert(tlsterm_in_empty(p.t));
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(tlsterm, tls11_client_is_refused)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc = client_ctx(TLS1_VERSION, TLS1_1_VERSION, NULL, NULL);
	const void *alert;
	struct tlspair p;

	/* OpenSSL 3.0 offers TLS < 1.2 only at security level 0. */
	SSL_CTX_set_security_level(cc, 0);
	cr_assert_eq(SSL_CTX_set_cipher_list(cc, "DEFAULT:@SECLEVEL=0"), 1);
	tp_pair_init(&p, ctx, cc, NULL);
	tp_client_step(&p);
	cr_assert(tp_pump_in(&p));
	cr_assert_eq(tlsterm_read(p.t, (char[16]){ 0 }, 16), -EPROTO);
	cr_assert_gt(tlsterm_pending_out(p.t, &alert), 0);
	cr_assert_eq(((const unsigned char *)alert)[0], 21, "expected an alert record");
	cr_assert_eq(tlsterm_read(p.t, (char[16]){ 0 }, 16), -EPROTO);	/* stays failed */
	cr_assert_eq(tlsterm_write(p.t, "x", 1), -EPROTO);
	tlsterm_shutdown(p.t);
	tp_pump_out(&p);
	tp_client_step(&p);
	cr_assert_eq(p.cli_err, SSL_ERROR_SSL);
	cr_assert_not(tlsterm_handshake_done(p.t));
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	ERR_clear_error();
	tlsterm_ctx_put(ctx);
}

Test(tlsterm, garbage_before_handshake)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	struct tlsterm *t = tlsterm_new(ctx);
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	char tmp[64];

	cr_assert_eq(tlsterm_read(t, tmp, sizeof(tmp)), 0);	/* nothing yet */
	cr_assert_eq(tlsterm_feed(t, http, 3), 0);
	cr_assert_eq(tlsterm_feed(t, http + 3, sizeof(http) - 4), 0);
	cr_assert_eq(tlsterm_read(t, tmp, sizeof(tmp)), -EPROTO);
	cr_assert_eq(ERR_peek_error(), 0, "error queue left behind");
	tlsterm_free(t);
	tlsterm_ctx_put(ctx);
}

Test(tlsterm, bad_record_after_handshake)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, NULL, NULL);
	unsigned char rec[5 + 64] = { 23, 3, 3, 0, 64 };
	char tmp[64];
	struct tlspair p, q;

	tp_pair_init(&p, ctx, cc, NULL);
	tp_pair_init(&q, ctx, cc, NULL);
	tp_handshake(&p);
	tp_handshake(&q);
	tp_fill(rec + 5, 64, 9);
	cr_assert_eq(tlsterm_feed(p.t, rec, sizeof(rec)), 0);
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), -EPROTO);
	cr_assert_eq(ERR_peek_error(), 0, "error queue left behind");
	/* The other connection on the same thread is unaffected. */
	tp_echo(&q, 1000, 1000);
	tp_pair_fini(&p);
	tp_pair_fini(&q);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(tlsterm, close_notify_both_ways)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, NULL, NULL);
	struct tlspair p;
	char tmp[16];

	/* Client closes: data before the close_notify still arrives. */
	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	cr_assert_eq(SSL_write(p.c, "bye", 3), 3);
	SSL_shutdown(p.c);
	tp_pump_in(&p);
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), 3);
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), -ECONNRESET);
	cr_assert_eq(tlsterm_read(p.t, tmp, sizeof(tmp)), -ECONNRESET);
	tlsterm_shutdown(p.t);
	tp_pump_out(&p);
	cr_assert_eq(SSL_shutdown(p.c), 1);
	tp_pair_fini(&p);

	/* Server closes. */
	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	tlsterm_shutdown(p.t);
	tp_pump_out(&p);
	tp_client_step(&p);
	cr_assert_eq(p.cli_err, SSL_ERROR_ZERO_RETURN);
	cr_assert_eq(tlsterm_write(p.t, "x", 1), -EPROTO);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

static void
check_resumption(int version, uint32_t cache, bool tickets)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc = client_ctx(version, version, cert_a, "127.0.0.1");
	SSL_SESSION *sess;
	struct tlspair p;
	char desc[128];

	s.session_cache = cache;
	s.tickets = tickets;
	ctx = ctx_new(&s);
	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	tp_echo(&p, 100, 100);	/* TLS 1.3 tickets arrive after the handshake */
	cr_assert_not(tlsterm_session_reused(p.t));
	sess = SSL_get1_session(p.c);
	cr_assert_not_null(sess);
	cr_assert(SSL_SESSION_is_resumable(sess));
	/* TLS 1.3 always resumes by ticket: a stateless one, or a reference
	 * into the server's cache. */
	cr_assert_eq(SSL_SESSION_has_ticket(sess), tickets || version == TLS1_3_VERSION);
	tlsterm_shutdown(p.t);
	SSL_shutdown(p.c);
	tp_settle(&p);
	tp_pair_fini(&p);

	tp_pair_init(&p, ctx, cc, sess);
	tp_handshake(&p);
	cr_assert(tlsterm_session_reused(p.t));
	cr_assert(SSL_session_reused(p.c));
	cr_assert_not_null(strstr(tlsterm_describe(p.t, desc, sizeof(desc)), "resumed"));
	tp_echo(&p, 10000, 3000);
	tp_pair_fini(&p);
	SSL_SESSION_free(sess);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(tlsterm, resume_tls12_session_id)
{
	check_resumption(TLS1_2_VERSION, 128, false);
}

Test(tlsterm, resume_tls12_ticket)
{
	check_resumption(TLS1_2_VERSION, 0, true);
}

Test(tlsterm, resume_tls13_ticket)
{
	check_resumption(TLS1_3_VERSION, 0, true);
}

Test(tlsterm, resume_tls13_stateful)
{
	check_resumption(TLS1_3_VERSION, 128, false);
}

Test(tlsterm, no_resumption_when_off)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, NULL, NULL);
	SSL_SESSION *sess;
	struct tlspair p;

	s.session_cache = 0;
	s.tickets = false;
	ctx = ctx_new(&s);
	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	sess = SSL_get1_session(p.c);
	tp_pair_fini(&p);
	tp_pair_init(&p, ctx, cc, sess);
	tp_handshake(&p);
	cr_assert_not(tlsterm_session_reused(p.t));
	tp_pair_fini(&p);
	SSL_SESSION_free(sess);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(tlsterm, reload_keeps_old_sessions)
{
	struct tlsterm_settings sa = settings(cert_a, key_a), sb = settings(cert_b, key_b);
	struct tlsterm_ctx *a = ctx_new(&sa), *b;
	SSL_CTX *cca = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, cert_a, "127.0.0.1");
	SSL_CTX *ccb = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, cert_b, "127.0.0.1");
	struct tlspair old, neu;
	X509 *want, *got;
	FILE *f;

	tp_pair_init(&old, a, cca, NULL);
	tp_handshake(&old);
	b = ctx_new(&sb);
	tlsterm_ctx_put(a);	/* the reload drops the old context */
	tp_pair_init(&neu, b, ccb, NULL);
	tp_handshake(&neu);

	f = fopen(cert_b, "r");
	want = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	got = SSL_get1_peer_certificate(neu.c);
	cr_assert_eq(X509_cmp(want, got), 0, "new session does not use the new certificate");
	X509_free(want);
	X509_free(got);

	tp_echo(&old, 70000, 9000);
	tp_echo(&neu, 70000, 9000);
	tp_pair_fini(&old);	/* last reference to a: freed here */
	tp_echo(&neu, 100, 100);
	tp_pair_fini(&neu);
	SSL_CTX_free(cca);
	SSL_CTX_free(ccb);
	tlsterm_ctx_put(b);
}

Test(tlsterm, refcount)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	struct tlsterm *t;

	tlsterm_ctx_get(ctx);
	tlsterm_ctx_put(ctx);
	t = tlsterm_new(ctx);
	tlsterm_ctx_put(ctx);
	tlsterm_free(t);	/* frees ctx; ASan reports a leak or double free otherwise */
	tlsterm_ctx_put(NULL);
	tlsterm_free(NULL);
}

Test(tlsterm, bad_files_are_named)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	char err[512], missing[300];

	snprintf(missing, sizeof(missing), "%s/nope.crt", dir);
	s.cert_file = missing;
	err[0] = '\0';
	cr_assert_null(tlsterm_ctx_create(&s, err, sizeof(err)));
	cr_assert_not_null(strstr(err, missing), "%s", err);

	s = settings(cert_a, missing);
	err[0] = '\0';
	cr_assert_null(tlsterm_ctx_create(&s, err, sizeof(err)));
	cr_assert_not_null(strstr(err, missing), "%s", err);

	s = settings(cert_a, key_b);	/* key of another certificate */
	err[0] = '\0';
	cr_assert_null(tlsterm_ctx_create(&s, err, sizeof(err)));
	cr_assert_not_null(strstr(err, key_b), "%s", err);
	cr_assert_not_null(strstr(err, "does not match"), "%s", err);

	s = settings(key_a, key_a);	/* a key where the certificate should be */
	err[0] = '\0';
	cr_assert_null(tlsterm_ctx_create(&s, err, sizeof(err)));
	cr_assert_not_null(strstr(err, key_a), "%s", err);

	s = settings(cert_a, key_a);
	s.ciphers = "NO-SUCH-CIPHER";
	err[0] = '\0';
	cr_assert_null(tlsterm_ctx_create(&s, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "NO-SUCH-CIPHER"), "%s", err);
	cr_assert_eq(ERR_peek_error(), 0, "error queue left behind");
}

/* Heap bytes held by one idle, established server session: 1000 sessions
 * are set up and trimmed, then freed, and the heap difference divided. */
static size_t
idle_bytes(bool trim, int version)
{
	enum { N = 1000 };
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	SSL_CTX *cc = client_ctx(version, version, NULL, NULL);
	struct tlspair *p = calloc(N, sizeof(*p));
	size_t before, after;
	int i;

	for (i = 0; i < N; i++) {
		tp_pair_init(&p[i], ctx, cc, NULL);
		tp_handshake(&p[i]);
		tp_echo(&p[i], 300, 300);
		if (trim)
			tlsterm_trim(p[i].t);
	}
	before = mallinfo2().uordblks;
	for (i = 0; i < N; i++) {
		tlsterm_free(p[i].t);
		p[i].t = NULL;
	}
	after = mallinfo2().uordblks;
	for (i = 0; i < N; i++)
		tp_pair_fini(&p[i]);
	free(p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
	return before > after ? (before - after) / N : 0;
}

/* Heap bytes of a session that has not seen a byte yet. */
static size_t
fresh_bytes(void)
{
	enum { N = 1000 };
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx = ctx_new(&s);
	struct tlsterm **t = calloc(N, sizeof(*t));
	size_t before, after;
	int i;

	before = mallinfo2().uordblks;
	for (i = 0; i < N; i++)
		t[i] = tlsterm_new(ctx);
	after = mallinfo2().uordblks;
	for (i = 0; i < N; i++)
		tlsterm_free(t[i]);
	free(t);
	tlsterm_ctx_put(ctx);
	return after > before ? (after - before) / N : 0;
}

Test(tlsterm, idle_memory)
{
	size_t t13, u13, t12, f;

	t13 = idle_bytes(true, TLS1_3_VERSION);
	u13 = idle_bytes(false, TLS1_3_VERSION);
	t12 = idle_bytes(true, TLS1_2_VERSION);
	f = fresh_bytes();
	fprintf(stderr, "idle server session: TLS 1.3 %zu bytes trimmed, %zu untrimmed; "
		"TLS 1.2 %zu bytes trimmed; before any handshake %zu\n", t13, u13, t12, f);
#ifndef __SANITIZE_ADDRESS__
	cr_assert_gt(t13, 0);
	cr_assert_lt(t13, 16384, "%zu bytes per idle session", t13);
	cr_assert_leq(t13, u13);
#endif
}

/* One session of <ctx> for a client of <cc> resuming <sess> (NULL: none);
 * the client's new session in *out. True when resumed. */
static bool
ticket_round(struct tlsterm_ctx *ctx, SSL_CTX *cc, SSL_SESSION *sess, SSL_SESSION **out)
{
	struct tlspair p;
	bool reused;

	tp_pair_init(&p, ctx, cc, sess);
	tp_handshake(&p);
	tp_echo(&p, 100, 100);	/* TLS 1.3 tickets arrive after the handshake */
	reused = tlsterm_session_reused(p.t);
	*out = SSL_get1_session(p.c);
	cr_assert_not_null(*out);
	tlsterm_shutdown(p.t);
	SSL_shutdown(p.c);
	tp_settle(&p);
	tp_pair_fini(&p);
	return reused;
}

/* Ticket keys change every period (the session timeout): a ticket opens
 * under the current key or the one before (and is renewed), not older
 * ones. The test moves the ticket clock, not OpenSSL's. A TLS 1.3 client
 * uses a ticket once, so each step starts with a fresh one. */
static void
check_ticket_rotation(int version)
{
	struct tlsterm_settings s = settings(cert_a, key_a);
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc = client_ctx(version, version, NULL, NULL);
	SSL_SESSION *t0, *t1, *t2;
	uint64_t e;

	s.session_cache = 0;
	s.tickets = true;
	s.session_timeout_s = 300;
	ctx = ctx_new(&s);
	cr_assert_not(ticket_round(ctx, cc, NULL, &t0));
	e = tlsticket_epoch(ctx->ssl_ctx);
	cr_assert_gt(e, 0);
	cr_assert(ticket_round(ctx, cc, t0, &t1), "same period");
	SSL_SESSION_free(t0);
	SSL_SESSION_free(t1);

	cr_assert_not(ticket_round(ctx, cc, NULL, &t0));
	tlsticket_advance(ctx->ssl_ctx, 300);
	cr_assert(ticket_round(ctx, cc, t0, &t1), "previous period");
	cr_assert_eq(tlsticket_epoch(ctx->ssl_ctx), e + 1, "not rotated");
	cr_assert(SSL_SESSION_is_resumable(t1), "no renewed ticket");
	cr_assert(ticket_round(ctx, cc, t1, &t2), "renewed ticket");	/* sealed under e + 1 */
	SSL_SESSION_free(t0);
	SSL_SESSION_free(t1);
	SSL_SESSION_free(t2);

	cr_assert_not(ticket_round(ctx, cc, NULL, &t0));
	tlsticket_advance(ctx->ssl_ctx, 600);
	cr_assert_not(ticket_round(ctx, cc, t0, &t1), "a key two periods old still opens");
	cr_assert_eq(tlsticket_epoch(ctx->ssl_ctx), e + 3);
	SSL_SESSION_free(t0);
	SSL_SESSION_free(t1);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(tlsterm, ticket_keys_rotate_tls13)
{
	check_ticket_rotation(TLS1_3_VERSION);
}

Test(tlsterm, ticket_keys_rotate_tls12)
{
	check_ticket_rotation(TLS1_2_VERSION);
}

/* The Web service's context has the same rotating keys: a ticket from it
 * carries the ring's key name. */
Test(tlsterm, web_ticket_keys_rotate)
{
	char err[512];
	SSL_CTX *w = webtls_ctx_new(cert_a, key_a, NULL, err, sizeof(err));

	cr_assert_not_null(w, "%s", err);
	cr_assert_eq(tlsticket_epoch(w), 0);
	{
		SSL_CTX *cc = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL);
		SSL *sv = SSL_new(w), *cl = SSL_new(cc);
		BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
		char buf[64];

		BIO_up_ref(a);
		BIO_up_ref(b);
		SSL_set_bio(sv, a, b);
		SSL_set_bio(cl, b, a);
		SSL_set_accept_state(sv);
		SSL_set_connect_state(cl);
		for (int i = 0; i < 10; i++) {
			SSL_do_handshake(cl);
			SSL_do_handshake(sv);
		}
		cr_assert(SSL_is_init_finished(sv) && SSL_is_init_finished(cl));
		SSL_read(cl, buf, sizeof(buf));	/* the ticket */
		cr_assert_gt(tlsticket_epoch(w), 0, "the Web context sealed no ticket with the ring");
		SSL_free(sv);
		SSL_free(cl);
		SSL_CTX_free(cc);
	}
	SSL_CTX_free(w);
}

/* [tls] core_dumps = false: the process is not dumpable. */
Test(tlsterm, core_dumps_switch)
{
	cr_assert_eq(tlsterm_set_core_dumps(false), 0);
	cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	cr_assert_eq(tlsterm_set_core_dumps(true), 0);
	cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
}
