/* SYN cookies: the stateless answer to a SYN when the SYN queue is full.
 *
 * Our ISN carries what the connection needs to be rebuilt from the final ACK:
 * bits 31-27 a 64-second counter, bits 26-24 an MSS table index, bits 23-0 a
 * keyed hash of the 4-tuple, the peer's ISN, the counter and the index. A
 * cookie is valid during the period it was made in and the next one.
 * When both sides use timestamps, the low 6 bits of our TSval carry the
 * peer's window scale and SACK-permitted, which come back in TSecr.
 * Pure functions; any thread. */
#ifndef PARLEY_UTCP_SYNCOOKIE_H
#define PARLEY_UTCP_SYNCOOKIE_H

#include <stdbool.h>
#include <stdint.h>

#define UTCP_SYNCOOKIE_PERIOD_US	(64ull * 1000000ull)

/* Returns our ISN for the SYN-ACK; *<mss> the MSS the cookie stands for (the
 * largest table entry not above <peer_mss>). */
uint32_t utcp_syncookie_make(const uint8_t key[16], uint32_t laddr, uint16_t lport,
			     uint32_t raddr, uint16_t rport, uint32_t peer_isn,
			     uint16_t peer_mss, uint64_t now_us, uint16_t *mss);
/* Checks <cookie> (the ACK's ack - 1) against <peer_isn> (its seq - 1).
 * Returns 0 and the MSS, or -EINVAL. */
int utcp_syncookie_check(const uint8_t key[16], uint32_t laddr, uint16_t lport,
			 uint32_t raddr, uint16_t rport, uint32_t peer_isn, uint32_t cookie,
			 uint64_t now_us, uint16_t *mss);

/* A TSval not after <ts_now> whose low bits encode <wscale> (-1: none) and <sack>. */
uint32_t utcp_syncookie_tsval(uint32_t ts_now, int wscale, bool sack);
/* Decodes an echoed TSval; false when it does not carry options. */
bool utcp_syncookie_tsdecode(uint32_t tsecr, int *wscale, bool *sack);

#endif
