/* See tlspolicy.h. One function, so that the SIP side and the Web service
 * cannot drift apart: anything that decides what a client may negotiate
 * belongs here, anything about sessions or buffers stays with the caller. */
#include <errno.h>

#include <openssl/ssl.h>

#include "dataplane/tls/tlserr.h"
#include "dataplane/tls/tlspolicy.h"

int
tlspolicy_apply(SSL_CTX *c, const char *ciphers, const char *ciphersuites, char *errbuf,
		size_t errlen)
{
	if (ciphers == NULL)
		ciphers = TLSPOLICY_CIPHERS;
	if (ciphersuites == NULL)
		ciphersuites = TLSPOLICY_CIPHERSUITES;
	if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
		tlserr_set(errbuf, errlen, "cannot restrict TLS versions to 1.2 and 1.3");
		return -EINVAL;
	}
	/* Before the cipher list, so that "@SECLEVEL=n" there still wins;
	 * not the system's default (openssl.cnf may lower it). */
	SSL_CTX_set_security_level(c, TLSPOLICY_SECLEVEL);
	if (SSL_CTX_set_cipher_list(c, ciphers) != 1) {
		tlserr_set(errbuf, errlen, "invalid TLS 1.2 cipher list \"%s\"", ciphers);
		return -EINVAL;
	}
	if (SSL_CTX_set_ciphersuites(c, ciphersuites) != 1) {
		tlserr_set(errbuf, errlen, "invalid TLS 1.3 ciphersuites \"%s\"", ciphersuites);
		return -EINVAL;
	}
	if (SSL_CTX_set1_groups_list(c, TLSPOLICY_GROUPS) != 1) {
		tlserr_set(errbuf, errlen, "cannot set the key exchange groups \"%s\"",
			   TLSPOLICY_GROUPS);
		return -EINVAL;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
	return 0;
}
