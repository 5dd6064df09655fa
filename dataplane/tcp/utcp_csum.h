/* The Internet checksum (RFC 1071) for IPv4, TCP and ICMP. Pure. */
#ifndef PARLEY_UTCP_CSUM_H
#define PARLEY_UTCP_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* Adds <len> bytes at <data> (big-endian 16-bit words) to the running <sum>. */
uint32_t utcp_csum_add(uint32_t sum, const void *data, size_t len);
/* Folds and complements: the value to store in a header. */
uint16_t utcp_csum_fold(uint32_t sum);
/* Sum of the IPv4 pseudo-header for protocol <proto> over <len> bytes. */
uint32_t utcp_csum_pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t len);
/* Checksum over a whole TCP segment with its pseudo-header (field included:
 * 0 means a received segment is valid). */
uint16_t utcp_csum_tcp(uint32_t saddr, uint32_t daddr, const void *seg, size_t len);

#endif
