/* One's-complement sums, 16 bits at a time with a 32-bit accumulator folded
 * as it goes (no overflow for any packet size we handle). */
#include "dataplane/tcp/utcp_csum.h"

uint32_t
utcp_csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t s = sum;

	while (len >= 2) {
		s += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

uint16_t
utcp_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint32_t
utcp_csum_pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t len)
{
	uint32_t s = 0;

	s += saddr >> 16;
	s += saddr & 0xffff;
	s += daddr >> 16;
	s += daddr & 0xffff;
	s += proto;
	s += len;
	return s;
}

uint16_t
utcp_csum_tcp(uint32_t saddr, uint32_t daddr, const void *seg, size_t len)
{
	return utcp_csum_fold(utcp_csum_add(utcp_csum_pseudo(saddr, daddr, 6, (uint16_t)len),
					    seg, len));
}
