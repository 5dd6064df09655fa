/* SipHash-2-4 (Aumasson and Bernstein, 2012) over little-endian words, and a
 * fixed-layout 4-tuple hash built on it. */
#include <string.h>

#include "dataplane/base/siphash.h"
#include "dataplane/tcp/utcp_hash.h"

uint64_t
utcp_hash_siphash(const uint8_t key[16], const void *data, size_t len)
{
	return siphash24(key, data, len);
}

uint64_t
utcp_hash_tuple(const uint8_t key[16], uint32_t laddr, uint16_t lport, uint32_t raddr,
		uint16_t rport, uint32_t extra)
{
	uint8_t b[16];

	memcpy(b, &laddr, 4);
	memcpy(b + 4, &raddr, 4);
	memcpy(b + 8, &lport, 2);
	memcpy(b + 10, &rport, 2);
	memcpy(b + 12, &extra, 4);
	return utcp_hash_siphash(key, b, sizeof(b));
}
