/* TCP sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4): a < b when
 * (int32_t)(a - b) < 0, valid for numbers less than 2^31 apart. Pure. */
#ifndef PARLEY_UTCP_SEQ_H
#define PARLEY_UTCP_SEQ_H

#include <stdbool.h>
#include <stdint.h>

static inline bool
utcp_seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool
utcp_seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

static inline bool
utcp_seq_gt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

static inline bool
utcp_seq_ge(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) >= 0;
}

/* lo <= x <= hi, all modulo 2^32, with hi - lo taken as the span. */
static inline bool
utcp_seq_between(uint32_t lo, uint32_t x, uint32_t hi)
{
	return x - lo <= hi - lo;
}

static inline uint32_t
utcp_seq_max(uint32_t a, uint32_t b)
{
	return utcp_seq_gt(a, b) ? a : b;
}

static inline uint32_t
utcp_seq_min(uint32_t a, uint32_t b)
{
	return utcp_seq_lt(a, b) ? a : b;
}

#endif
