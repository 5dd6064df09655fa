/* HTTP Digest for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760): credentials
 * parsing, response computation, and stateless nonces.
 *
 * Nonces are self-validating: base64url(issue time || binding || random ||
 * HMAC-SHA256(key, the rest)), so any lcore can check a nonce without shared
 * state. The binding (a connection id) ties a nonce to the connection that was
 * challenged; replay of one nonce+nc on that connection is caught by the
 * caller, which keeps the highest nc seen per nonce.
 *
 * Pure functions; any thread. */
#ifndef PARLEY_DIGEST_H
#define PARLEY_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/sip/sipmsg.h"

enum digest_alg {
	DIGEST_MD5 = 0,
	DIGEST_SHA256,
	DIGEST_ALG__COUNT,
};

/* Hex length of a hash (32 for MD5, 64 for SHA-256). */
size_t digest_hexlen(enum digest_alg alg);
/* "MD5" / "SHA-256" */
const char *digest_alg_name(enum digest_alg alg);

/* Credentials as sent in Authorization / Proxy-Authorization. */
struct digest_creds {
	struct sip_str username, realm, nonce, uri, response, cnonce, opaque, qop, nc;
	enum digest_alg alg;	/* MD5 when the algorithm parameter is absent */
	uint32_t nc_val;	/* nc parsed as hex; 0 when absent */
};

/* Parses `Digest k=v, k="v", ...`. Returns 0; -EINVAL for another scheme,
 * a syntax error, or a missing username/realm/nonce/uri/response;
 * -EPROTONOSUPPORT for an algorithm other than MD5/SHA-256 (incl. -sess);
 * qop, when present, must be "auth" and then nc and cnonce are required
 * (-EINVAL otherwise). */
int digest_parse_creds(struct sip_str value, struct digest_creds *c);

/* HA1 = H(user ":" realm ":" password), lower-case hex, NUL-terminated, into
 * <out> (at least 65 bytes). */
void digest_ha1(enum digest_alg alg, const char *user, const char *realm,
		const char *password, char *out);

/* Computes the expected response for <c> given the stored <ha1_hex> and the
 * request <method> (HA2 = H(method ":" uri-as-received)), and compares it in
 * constant time with c->response. */
bool digest_verify(const struct digest_creds *c, const char *method, const char *ha1_hex);

/* Computes the response value a client would send; lower-case hex into <out>
 * (65 bytes). qop/nc/cnonce may be NULL for the RFC 2069 form. Used by the
 * test client and the load generator. */
void digest_response(enum digest_alg alg, const char *ha1_hex, const char *nonce,
		     const char *nc, const char *cnonce, const char *qop,
		     const char *method, const char *uri, char *out);

#define DIGEST_KEY_LEN 32
#define DIGEST_NONCE_MAX 80	/* bytes including the NUL */

/* Fills <key> with random bytes (boot). 0 or -EIO. */
int digest_key_init(uint8_t key[DIGEST_KEY_LEN]);

/* Writes a fresh nonce issued at <now_s> and bound to <binding> into <out>
 * (DIGEST_NONCE_MAX bytes), NUL-terminated. */
void digest_nonce_make(const uint8_t key[DIGEST_KEY_LEN], uint64_t now_s, uint64_t binding,
		       char *out);

/* 0 when <nonce> was made with <key> for <binding> and is at most <ttl_s>
 * seconds old at <now_s>; -ESTALE when authentic but expired; -EINVAL when
 * forged, malformed, or made for another binding. */
int digest_nonce_check(const uint8_t key[DIGEST_KEY_LEN], struct sip_str nonce, uint64_t now_s,
		       uint64_t binding, uint32_t ttl_s);

#endif
