/* libFuzzer target: ARP input and resolution (dataplane/tcp/arp.c) on a
 * small cache (8 entries, so sets collide and entries are evicted). The
 * input is a list of operations: a received frame (fuzzed bytes, or a
 * well-formed ARP frame with fuzzed fields), a resolution, the clock
 * moving on. Checked: a reply is a well-formed ARP reply from us to the
 * asker, a resolved MAC is never a group address, a request is a
 * broadcast ARP request for the address asked. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/tcp/arp.h"
#include "tests/fuzz/fuzz.h"

#define OUR_IP	0x0a000001u

static const uint8_t our_mac[6] = { 0x02, 0, 0, 0, 0, 1 };
static struct fz_in in;

static uint8_t
rd8(void)
{
	return fz_rd8(&in);
}

static uint32_t
rd_ip(void)
{
	uint8_t b = rd8();

	/* Mostly a few addresses near ours, so that they meet in the cache. */
	if (b & 0x80)
		return (uint32_t)rd8() << 24 | (uint32_t)rd8() << 16 | (uint32_t)rd8() << 8 | rd8();
	return 0x0a000000u | (b & 0x1f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arp_config cfg = { .ip = OUR_IP, .entries = 8, .ttl_us = 5000000,
				  .retry_us = 1000000 };
	struct arp_cache *a;
	uint8_t reply[ARP_FRAME_LEN], req[ARP_FRAME_LEN], mac[6], fr[64], *copy;
	uint64_t now = 1000000;
	size_t n, i, req_len;
	uint32_t ip;
	int rc, ops = 0;

	memcpy(cfg.mac, our_mac, 6);
	a = arp_create(&cfg);
	fz_check(a != NULL);
	in = (struct fz_in){ data, size, 0 };
	while (in.pos < in.len && ops++ < 2048) {
		switch (rd8() % 4) {
		case 0:		/* raw frame */
			n = rd8() % 64;
			for (i = 0; i < n; i++)
				fr[i] = rd8();
			goto feed;
		case 1:		/* an ARP frame with fuzzed fields */
			memset(fr, 0, sizeof(fr));
			memset(fr, 0xff, 6);
			fr[6] = 0x02;
			fr[12] = 0x08;
			fr[13] = 0x06;
			fr[15] = 1;
			fr[16] = 0x08;
			fr[18] = 6;
			fr[19] = 4;
			fr[21] = (uint8_t)(1 + rd8() % 3);
			for (i = 22; i < 28; i++)
				fr[i] = rd8() & 0x03;
			ip = rd_ip();
			fr[28] = (uint8_t)(ip >> 24), fr[29] = (uint8_t)(ip >> 16);
			fr[30] = (uint8_t)(ip >> 8), fr[31] = (uint8_t)ip;
			ip = (rd8() & 1) ? OUR_IP : rd_ip();
			fr[38] = (uint8_t)(ip >> 24), fr[39] = (uint8_t)(ip >> 16);
			fr[40] = (uint8_t)(ip >> 8), fr[41] = (uint8_t)ip;
			n = ARP_FRAME_LEN + rd8() % 4;
		feed:
			copy = malloc(n > 0 ? n : 1);	/* exact size: ASan sees overreads */
			fz_check(copy != NULL);
			memcpy(copy, fr, n);
			memset(reply, 0xee, sizeof(reply));
			rc = arp_input(a, copy, n, now, reply);
			fz_check(rc == 0 || rc == ARP_FRAME_LEN || rc == -EINVAL);
			if (rc == ARP_FRAME_LEN) {
				fz_check(reply[21] == 2 && memcmp(reply + 6, our_mac, 6) == 0);
				fz_check(memcmp(reply, copy + 22, 6) == 0);	/* to the asker */
				fz_check(memcmp(reply + 28, copy + 38, 4) == 0);	/* our IP */
			}
			free(copy);
			break;
		case 2:		/* resolve */
			ip = rd_ip();
			rc = arp_resolve(a, ip, now, mac, req, &req_len);
			fz_check(rc == 0 || rc == -EAGAIN);
			if (rc == 0)
				fz_check(!(mac[0] & 1) && req_len == 0);
			else if (req_len != 0)
				fz_check(req_len == ARP_FRAME_LEN && req[21] == 1 &&
				      memcmp(req, "\xff\xff\xff\xff\xff\xff", 6) == 0 &&
				      req[38] == (uint8_t)(ip >> 24) && req[41] == (uint8_t)ip);
			break;
		case 3:		/* time */
			now += (uint64_t)rd8() * 100000;
			fz_check(arp_count(a, now) <= 8);
			break;
		}
	}
	arp_destroy(a);
	return 0;
}
