/* A reproducible byte stream for transfer tests: byte <i> of the stream of
 * <seed> is a byte of splitmix64 of its 8-byte word, so a receiver checks
 * any byte without keeping what was sent. Shared by test_utcp_loopback.c
 * and tests/dataplane/engine/io/test_relay.c. */
#ifndef PARLEY_TESTS_STREAM_BYTE_H
#define PARLEY_TESTS_STREAM_BYTE_H

#include <stdint.h>

static inline uint8_t
stream_byte(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + (i >> 3) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (uint8_t)(z >> (8 * (i & 7)));
}

#endif
