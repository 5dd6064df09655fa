/* SipHash-2-4 (Aumasson and Bernstein, 2012): the keyed hash behind the
 * login rate limiter's table, TCP ISNs and SYN cookies, the 4-tuple table
 * and flow steering. Pure; any thread. */
#ifndef PARLEY_SIPHASH_H
#define PARLEY_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN	16

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len);

#endif
