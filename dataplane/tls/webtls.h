/* The Web service's TLS server context. Boot and the Web service's thread
 * (reload). */
#ifndef PARLEY_WEBTLS_H
#define PARLEY_WEBTLS_H

#include <stddef.h>

struct ssl_ctx_st;

/* A server context with the server's one TLS policy (tlspolicy.h, as the
 * SIP side): TLS 1.2 and 1.3 only, the TLS 1.2 suites <ciphers> (NULL:
 * TLSPOLICY_CIPHERS), TLSPOLICY_CIPHERSUITES, TLSPOLICY_GROUPS, no
 * compression or renegotiation, server preference; then a session cache, ALPN
 * "http/1.1" (or none), and the PEM chain <cert> with its key <key>. NULL
 * with a sentence naming the file at fault in <err>. Free with
 * SSL_CTX_free. */
struct ssl_ctx_st *webtls_ctx_new(const char *cert, const char *key, const char *ciphers,
				  char *err, size_t errlen);

#endif
