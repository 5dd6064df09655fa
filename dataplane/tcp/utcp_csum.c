/* One's-complement sums. The sum is independent of byte order (RFC 1071
 * §2(B)): the bytes are added as native 32-bit words into a 64-bit
 * accumulator (no overflow below 16 GiB), folded to 16 bits and swapped to
 * network order at the end, several bytes per instruction instead of two. */
#include <string.h>

#include "dataplane/tcp/utcp_csum.h"

static inline uint32_t
load32(const uint8_t *p)
{
	uint32_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

static inline uint32_t
fold16(uint64_t s)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/* A 16-bit one's-complement value between network and native order. */
static inline uint32_t
swap16(uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (v >> 8 | v << 8) & 0xffff;
#else
	return v;
#endif
}

uint32_t
utcp_csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t a = 0, b = 0;

	while (len >= 32) {
		a += load32(p);
		b += load32(p + 4);
		a += load32(p + 8);
		b += load32(p + 12);
		a += load32(p + 16);
		b += load32(p + 20);
		a += load32(p + 24);
		b += load32(p + 28);
		p += 32;
		len -= 32;
	}
	while (len >= 4) {
		a += load32(p);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t h;

		memcpy(&h, p, 2);
		b += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* The odd last byte is the high byte of a network-order word
		 * padded with zero: at its own address, as memory has it. */
		uint8_t pad[2] = { p[0], 0 };
		uint16_t h;

		memcpy(&h, pad, 2);
		b += h;
	}
	a = fold16(a) + (uint64_t)fold16(b);
	return fold16(swap16(fold16(a)) + (uint64_t)sum);
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
