/* The Web service's TLS context: the server's one TLS policy (tlspolicy.c,
 * as the SIP side's tlsterm.c) for an OpenSSL context of its own, since
 * libevent's OpenSSL bufferevents need a plain SSL_CTX. See webtls.h. */
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dataplane/tls/tlspolicy.h"
#include "dataplane/tls/tlsticket.h"
#include "dataplane/tls/webtls.h"

#define WEBTLS_SESSION_CACHE	1024

/* HTTP/1.1 is all we speak: select it when offered, else no ALPN. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
	    unsigned int inlen, void *arg)
{
	static const unsigned char h11[] = "\x08http/1.1";
	unsigned char *o = NULL;

	if (SSL_select_next_proto(&o, outlen, h11, sizeof(h11) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

static void
ssl_err(char *err, size_t errlen, const char *what, const char *file)
{
	char reason[256] = "";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(err, errlen, "[web] %s%s%s%s%s", what, file ? " " : "", file ? file : "",
		 reason[0] ? ": " : "", reason);
	ERR_clear_error();
}

SSL_CTX *
webtls_ctx_new(const char *cert, const char *key, const char *ciphers, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "parley-web";
	char why[256];
	SSL_CTX *c;

	ERR_clear_error();
	c = SSL_CTX_new(TLS_server_method());
	if (c == NULL) {
		ssl_err(err, errlen, "cannot create a TLS context", NULL);
		return NULL;
	}
	if (tlspolicy_apply(c, ciphers, NULL, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "[web] %s", why);
		goto out_free;
	}
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(c, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(c, WEBTLS_SESSION_CACHE);
	SSL_CTX_set_alpn_select_cb(c, alpn_select, NULL);
	if (tlsticket_attach(c) != 0) {
		ssl_err(err, errlen, "cannot set up the session ticket keys", NULL);
		goto out_free;
	}
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
		ssl_err(err, errlen, "cannot load the certificate chain from", cert);
		goto out_free;
	}
	if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		ssl_err(err, errlen, "cannot load a private key matching the certificate from",
			key);
		goto out_free;
	}
	return c;

out_free:
	SSL_CTX_free(c);
	return NULL;
}

