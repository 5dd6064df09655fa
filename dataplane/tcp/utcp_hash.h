/* SipHash-2-4 for the TCP core: ISNs (RFC 6528), SYN cookies, the 4-tuple
 * table and flow steering. Pure functions; any thread. */
#ifndef PARLEY_UTCP_HASH_H
#define PARLEY_UTCP_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t utcp_hash_siphash(const uint8_t key[16], const void *data, size_t len);

/* Keyed hash of a connection's 4-tuple plus <extra> (0 when unused). */
uint64_t utcp_hash_tuple(const uint8_t key[16], uint32_t laddr, uint16_t lport,
			 uint32_t raddr, uint16_t rport, uint32_t extra);

#endif
