/* The Internet checksum (RFC 1071) for IPv4, TCP and ICMP, and the IPv4
 * header that carries one. Pure. */
#ifndef PARLEY_UTCP_CSUM_H
#define PARLEY_UTCP_CSUM_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/base/be.h"

/* Adds <len> bytes at <data> (big-endian 16-bit words) to the running <sum>. */
uint32_t utcp_csum_add(uint32_t sum, const void *data, size_t len);
/* Folds and complements: the value to store in a header. */
uint16_t utcp_csum_fold(uint32_t sum);
/* Sum of the IPv4 pseudo-header for protocol <proto> over <len> bytes. */
uint32_t utcp_csum_pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t len);
/* Checksum over a whole TCP segment with its pseudo-header (field included:
 * 0 means a received segment is valid). */
uint16_t utcp_csum_tcp(uint32_t saddr, uint32_t daddr, const void *seg, size_t len);

/* Writes at <p> the 20-byte IPv4 header of a packet of <total> bytes from
 * <saddr> to <daddr> carrying <proto>, with <id>, DF (path MTU is done by
 * MSS only), TTL 64 and its checksum. */
static inline void
utcp_csum_ip_header(uint8_t *p, uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t total,
		    uint16_t id)
{
	p[0] = 0x45;
	p[1] = 0;
	be_put16(p + 2, total);
	be_put16(p + 4, id);
	be_put16(p + 6, 0x4000);
	p[8] = 64;
	p[9] = proto;
	be_put16(p + 10, 0);
	be_put32(p + 12, saddr);
	be_put32(p + 16, daddr);
	/* Summed from the fields, not read back from the bytes just stored
	 * (a load over several narrower stores waits for them to retire). */
	be_put16(p + 10, utcp_csum_fold(0x4500u + total + id + 0x4000u + (64u << 8 | proto) +
					(saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) +
					(daddr & 0xffff)));
}

#endif
