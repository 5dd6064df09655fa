/* One TLS policy (tlspolicy.c): the SIP side's context (tlsterm) and the
 * Web service's (webtls) offer the same protocol versions, cipher suites,
 * groups, options and security level, with and without a configured cipher
 * list. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlspolicy.h"
#include "dataplane/tls/tlsterm.h"
#include "dataplane/tls/tlsterm_int.h"
#include "dataplane/tls/webtls.h"

static char dir[] = "/tmp/test_tlspolicy.XXXXXX";
static char cert[256], key[256];

static void
setup(void)
{
	char err[256];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/a.crt", dir);
	snprintf(key, sizeof(key), "%s/a.key", dir);
	cr_assert_eq(tlscert_ensure(cert, key, "chat.example.com", 30, err, sizeof(err)), 1,
		     "%s", err);
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(tlspolicy, .init = setup, .fini = teardown);

/* True when a client of <cc> completes a handshake with a server of <sc>
 * (memory BIOs, both in this thread). */
static bool
handshake(SSL_CTX *sc, SSL_CTX *cc)
{
	SSL *s = SSL_new(sc), *c = SSL_new(cc);
	BIO *s2c = BIO_new(BIO_s_mem()), *c2s = BIO_new(BIO_s_mem());
	int rs = 0, rc = 0;
	bool ok, stuck = false;

	cr_assert(s != NULL && c != NULL && s2c != NULL && c2s != NULL);
	BIO_up_ref(s2c);
	BIO_up_ref(c2s);
	SSL_set_bio(s, c2s, s2c);
	SSL_set_bio(c, s2c, c2s);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	/* SSL_get_error() right after each call: the other side's next write
	 * clears the retry flag of the shared BIO. */
	for (int i = 0; i < 20 && !stuck && (rs != 1 || rc != 1); i++) {
		if (rc != 1 && (rc = SSL_do_handshake(c)) != 1)
			stuck = SSL_get_error(c, rc) != SSL_ERROR_WANT_READ;
		if (!stuck && rs != 1 && (rs = SSL_do_handshake(s)) != 1)
			stuck = SSL_get_error(s, rs) != SSL_ERROR_WANT_READ;
	}
	ok = rs == 1 && rc == 1;
	SSL_free(s);
	SSL_free(c);
	ERR_clear_error();
	return ok;
}

/* A client of one protocol version <v> and, when not NULL, the groups
 * <groups> only. */
static SSL_CTX *
client(int v, const char *groups)
{
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());

	cr_assert_not_null(cc);
	/* Level 0, so that the client itself would speak TLS 1.0 and 1.1. */
	SSL_CTX_set_security_level(cc, 0);
	cr_assert_eq(SSL_CTX_set_min_proto_version(cc, v), 1);
	cr_assert_eq(SSL_CTX_set_max_proto_version(cc, v), 1);
	cr_assert_eq(SSL_CTX_set_cipher_list(cc, "ALL:@SECLEVEL=0"), 1);
	if (groups != NULL)
		cr_assert_eq(SSL_CTX_set1_groups_list(cc, groups), 1, "%s", groups);
	return cc;
}

/* What a context lets a client negotiate, as text: its settings, and the
 * versions and groups that real handshakes get through. */
static void
describe(SSL_CTX *c, char *out, size_t len)
{
	static const int versions[] = { TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION,
					TLS1_3_VERSION };
	static const char *const groups[] = { "X25519", "P-256", "X448", "P-521", "P-384",
					      "ffdhe2048", "ffdhe3072", "ffdhe4096" };
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(c);
	size_t n;

	n = (size_t)snprintf(out, len, "min %lx max %lx opts %llx sec %d ciphers",
			     SSL_CTX_get_min_proto_version(c), SSL_CTX_get_max_proto_version(c),
			     (unsigned long long)(SSL_CTX_get_options(c) & ~SSL_OP_NO_TICKET),
			     SSL_CTX_get_security_level(c));
	for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++)
		n += (size_t)snprintf(out + n, len - n, " %s",
				      SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i)));
	n += (size_t)snprintf(out + n, len - n, " versions");
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		SSL_CTX *cc = client(versions[i], NULL);

		n += (size_t)snprintf(out + n, len - n, " %x:%d", versions[i],
				      handshake(c, cc));
		SSL_CTX_free(cc);
	}
	n += (size_t)snprintf(out + n, len - n, " groups");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		SSL_CTX *cc = client(TLS1_3_VERSION, groups[i]);

		n += (size_t)snprintf(out + n, len - n, " %s:%d", groups[i], handshake(c, cc));
		SSL_CTX_free(cc);
	}
	cr_assert_lt(n, len);
}

static void
compare(const char *ciphers, char *sip, char *web, size_t len)
{
	struct tlsterm_settings s = {
		.cert_file = cert, .key_file = key, .ciphers = ciphers,
		.session_cache = 128, .tickets = false, .own_records = true,
	};
	struct tlsterm_ctx *t;
	SSL_CTX *w;
	char err[512] = "";

	t = tlsterm_ctx_create(&s, err, sizeof(err));
	cr_assert_not_null(t, "%s", err);
	w = webtls_ctx_new(cert, key, ciphers, err, sizeof(err));
	cr_assert_not_null(w, "%s", err);
	describe(t->ssl_ctx, sip, len);
	describe(w, web, len);
	cr_assert_str_eq(sip, web);
	SSL_CTX_free(w);
	tlsterm_ctx_put(t);
}

Test(tlspolicy, sip_and_web_agree)
{
	char sip[4096], web[4096];

	compare(NULL, sip, web, sizeof(sip));
	/* And it is the policy of tlspolicy.h. */
	cr_assert_not_null(strstr(sip, "min 303 max 304 "), "%s", sip);
	cr_assert_not_null(strstr(sip, " ciphers TLS_AES_256_GCM_SHA384 "
				  "TLS_CHACHA20_POLY1305_SHA256 TLS_AES_128_GCM_SHA256 "
				  "ECDHE-ECDSA-AES128-GCM-SHA256 "), "%s", sip);
	cr_assert_not_null(strstr(sip, " versions 301:0 302:0 303:1 304:1 groups X25519:1 "
				  "P-256:1 X448:1 P-521:1 P-384:1 ffdhe2048:0 ffdhe3072:0 "
				  "ffdhe4096:0"), "%s", sip);
}

Test(tlspolicy, sip_and_web_agree_with_configured_ciphers)
{
	char sip[4096], web[4096];

	compare("ECDHE-ECDSA-AES256-GCM-SHA384", sip, web, sizeof(sip));
	cr_assert_not_null(strstr(sip, "TLS_AES_128_GCM_SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 "
				  "versions"), "%s", sip);
}

Test(tlspolicy, options)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	uint64_t want = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA;

	cr_assert_not_null(c);
	cr_assert_eq(tlspolicy_apply(c, NULL, NULL, NULL, 0), 0);
	cr_assert_eq(SSL_CTX_get_options(c) & want, want);
	SSL_CTX_free(c);
	c = SSL_CTX_new(TLS_server_method());
	cr_assert_eq(tlspolicy_apply(c, "NOSUCHCIPHER", NULL, NULL, 0), -EINVAL);
	SSL_CTX_free(c);
}

/* Security level 2 whatever the system's OpenSSL configuration says (here
 * one that lowers it to 1), unless the cipher list asks otherwise. */
Test(tlspolicy, security_level_2)
{
	static const char conf[] = "openssl_conf = openssl_init\n"
				   "[openssl_init]\nssl_conf = ssl_sect\n"
				   "[ssl_sect]\nsystem_default = system_default_sect\n"
				   "[system_default_sect]\nCipherString = DEFAULT@SECLEVEL=1\n";
	char path[300];
	SSL_CTX *c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/openssl.cnf", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(conf, f);
	fclose(f);
	cr_assert_eq(CONF_modules_load_file(path, NULL, 0), 1);
	c = SSL_CTX_new(TLS_server_method());
	cr_assert_eq(SSL_CTX_get_security_level(c), 1, "the config did not apply");
	cr_assert_eq(tlspolicy_apply(c, NULL, NULL, NULL, 0), 0);
	cr_assert_eq(SSL_CTX_get_security_level(c), 2);
	SSL_CTX_free(c);
	c = webtls_ctx_new(cert, key, NULL, path, sizeof(path));
	cr_assert_not_null(c, "%s", path);
	cr_assert_eq(SSL_CTX_get_security_level(c), 2);
	SSL_CTX_free(c);
	c = SSL_CTX_new(TLS_server_method());
	cr_assert_eq(tlspolicy_apply(c, "ECDHE-ECDSA-AES128-GCM-SHA256:@SECLEVEL=3", NULL, NULL, 0),
		     0);
	cr_assert_eq(SSL_CTX_get_security_level(c), 3);
	SSL_CTX_free(c);
	unlink(path);
}
