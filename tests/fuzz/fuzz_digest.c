/* libFuzzer target: Digest credentials (dataplane/sip/digest.c) as the
 * registrar handles an Authorization header value: parse, check the nonce
 * against a fixed key, verify the response. Also the nonce decoder on the
 * raw input. Every buffer is malloc()ed at its exact length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/sip/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[DIGEST_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

static void
inside(struct sip_str s, const char *lo, const char *hi)
{
	if (s.len > 0 && (s.p < lo || s.p + s.len > hi))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest_creds c;
	char *b, *hi;
	char ha1[65];

	if (size > 8192)
		return 0;
	b = malloc(size > 0 ? size : 1);
	if (b == NULL)
		return 0;
	memcpy(b, data, size);
	hi = b + size;
	(void)digest_nonce_check(key, (struct sip_str){ b, (uint32_t)size }, 1000, 7, 30);
	memset(&c, 0xa5, sizeof(c));
	if (digest_parse_creds((struct sip_str){ b, (uint32_t)size }, &c) == 0) {
		inside(c.username, b, hi);
		inside(c.realm, b, hi);
		inside(c.nonce, b, hi);
		inside(c.uri, b, hi);
		inside(c.response, b, hi);
		inside(c.cnonce, b, hi);
		inside(c.opaque, b, hi);
		inside(c.qop, b, hi);
		inside(c.nc, b, hi);
		if (c.alg >= DIGEST_ALG__COUNT)
			abort();
		(void)digest_nonce_check(key, c.nonce, 1000, 7, 30);
		digest_ha1(c.alg, "alice", "parley", "secret", ha1);
		(void)digest_verify(&c, "REGISTER", ha1);
	}
	free(b);
	return 0;
}
