/* The one TLS policy of the server: protocol versions, cipher suites, key
 * exchange groups and protocol options, applied to every server context
 * (the SIP side's tlsterm.c and the Web service's webtls.c). Boot and
 * control threads (a context is built before any lcore or the Web service
 * sees it). */
#ifndef PARLEY_TLSPOLICY_H
#define PARLEY_TLSPOLICY_H

#include <stddef.h>

struct ssl_ctx_st;

/* TLS 1.2 suites when none are configured: forward secrecy and AEAD only. */
#define TLSPOLICY_CIPHERS						\
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"	\
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"	\
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3 suites when none are configured: OpenSSL 3.0's default list,
 * spelled out so that a library with another default does not change it
 * (all three run on our record layer, tlsrec.c). */
#define TLSPOLICY_CIPHERSUITES						\
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
/* Key exchange: the elliptic-curve groups of OpenSSL's default, in its
 * order; no finite-field groups (slow, and a cheap way to load a server). */
#define TLSPOLICY_GROUPS	"X25519:P-256:X448:P-521:P-384"

/* OpenSSL security level 2: 112-bit keys (RSA/DH >= 2048 bits, ECC >= 224),
 * no SHA-1 signatures. A cipher list ending in "@SECLEVEL=n" overrides it. */
#define TLSPOLICY_SECLEVEL	2

/* Applies the policy to the server context <c>: TLS 1.2 and 1.3 only, the
 * TLS 1.2 suites <ciphers> (NULL: TLSPOLICY_CIPHERS), the TLS 1.3 suites
 * <ciphersuites> (NULL: TLSPOLICY_CIPHERSUITES), TLSPOLICY_GROUPS, no
 * compression or renegotiation, the server's preference (ChaCha20 first
 * for a client that prefers it), TLSPOLICY_SECLEVEL. Session caching, tickets, modes and
 * credentials are the caller's. 0, or -EINVAL with a sentence naming the
 * setting at fault in <errbuf>. */
int tlspolicy_apply(struct ssl_ctx_st *c, const char *ciphers, const char *ciphersuites,
		    char *errbuf, size_t errlen);

#endif
