/* SYN cookies (see utcp_syncookie.h). The hash input includes the MSS index
 * and the full period counter, so neither can be altered by the peer. */
#include <errno.h>
#include <string.h>

#include "dataplane/tcp/utcp_hash.h"
#include "dataplane/tcp/utcp_syncookie.h"

static const uint16_t mss_table[8] = { 536, 1024, 1200, 1300, 1360, 1400, 1440, 1460 };

#define TS_OPT_MARK	0x20u
#define TS_OPT_SACK	0x10u
#define TS_OPT_WSNONE	0x0fu

static uint32_t
cookie_hash(const uint8_t key[16], uint32_t laddr, uint16_t lport, uint32_t raddr,
	    uint16_t rport, uint32_t peer_isn, uint32_t count, uint32_t idx)
{
	uint8_t b[24];

	memcpy(b, &laddr, 4);
	memcpy(b + 4, &raddr, 4);
	memcpy(b + 8, &lport, 2);
	memcpy(b + 10, &rport, 2);
	memcpy(b + 12, &peer_isn, 4);
	memcpy(b + 16, &count, 4);
	memcpy(b + 20, &idx, 4);
	return (uint32_t)utcp_hash_siphash(key, b, sizeof(b)) & 0xffffffu;
}

uint32_t
utcp_syncookie_make(const uint8_t key[16], uint32_t laddr, uint16_t lport, uint32_t raddr,
		    uint16_t rport, uint32_t peer_isn, uint16_t peer_mss, uint64_t now_us,
		    uint16_t *mss)
{
	uint32_t count = (uint32_t)(now_us / UTCP_SYNCOOKIE_PERIOD_US);
	uint32_t idx = 0, i;

	for (i = 0; i < 8; i++)
		if (mss_table[i] <= peer_mss)
			idx = i;
	*mss = mss_table[idx];
	return (count & 0x1f) << 27 | idx << 24 |
	       cookie_hash(key, laddr, lport, raddr, rport, peer_isn, count, idx);
}

int
utcp_syncookie_check(const uint8_t key[16], uint32_t laddr, uint16_t lport, uint32_t raddr,
		     uint16_t rport, uint32_t peer_isn, uint32_t cookie, uint64_t now_us,
		     uint16_t *mss)
{
	uint32_t now_count = (uint32_t)(now_us / UTCP_SYNCOOKIE_PERIOD_US);
	uint32_t idx = (cookie >> 24) & 7, c5 = cookie >> 27, count;
	int age;

	for (age = 0; age < 2; age++) {
		count = now_count - (uint32_t)age;
		if ((count & 0x1f) != c5 || (age == 1 && now_count == 0))
			continue;
		if (cookie_hash(key, laddr, lport, raddr, rport, peer_isn, count, idx) ==
		    (cookie & 0xffffffu)) {
			*mss = mss_table[idx];
			return 0;
		}
	}
	return -EINVAL;
}

uint32_t
utcp_syncookie_tsval(uint32_t ts_now, int wscale, bool sack)
{
	uint32_t bits = TS_OPT_MARK | (wscale < 0 ? TS_OPT_WSNONE : (uint32_t)wscale & 0x0f);
	uint32_t ts;

	if (sack)
		bits |= TS_OPT_SACK;
	ts = (ts_now & ~0x3fu) | bits;
	/* Never a TSval ahead of our clock: the peer's PAWS would reject the next. */
	if ((int32_t)(ts - ts_now) > 0)
		ts -= 64;
	return ts;
}

bool
utcp_syncookie_tsdecode(uint32_t tsecr, int *wscale, bool *sack)
{
	if (!(tsecr & TS_OPT_MARK))
		return false;
	*wscale = (tsecr & 0x0f) == TS_OPT_WSNONE ? -1 : (int)(tsecr & 0x0f);
	if (*wscale > 14)
		*wscale = 14;
	*sack = (tsecr & TS_OPT_SACK) != 0;
	return true;
}
