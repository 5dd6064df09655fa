/* ARP (RFC 826): replies for our address, learning, resolution with
 * rate-limited requests, expiry, eviction, malformed frames. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/arp.h"

#define OUR_IP	0xc6120002u
#define PEER_IP	0xc6120001u

static const uint8_t our_mac[6] = { 0x02, 0, 0xc6, 0x12, 0, 0x02 };
static const uint8_t peer_mac[6] = { 0x02, 0, 0xc6, 0x12, 0, 0x01 };

static struct arp_cache *
mk(uint32_t entries)
{
	struct arp_config cfg = { .ip = OUR_IP, .entries = entries, .ttl_us = 10000000,
				  .retry_us = 1000000 };

	memcpy(cfg.mac, our_mac, 6);
	return arp_create(&cfg);
}

static void
frame(uint8_t *f, uint16_t oper, const uint8_t *smac, uint32_t sip, uint32_t tip)
{
	memset(f, 0, ARP_FRAME_LEN);
	memset(f, 0xff, 6);
	memcpy(f + 6, smac, 6);
	f[12] = 0x08; f[13] = 0x06;
	f[15] = 1;
	f[16] = 0x08;
	f[18] = 6; f[19] = 4;
	f[21] = (uint8_t)oper;
	memcpy(f + 22, smac, 6);
	f[28] = (uint8_t)(sip >> 24); f[29] = (uint8_t)(sip >> 16);
	f[30] = (uint8_t)(sip >> 8); f[31] = (uint8_t)sip;
	f[38] = (uint8_t)(tip >> 24); f[39] = (uint8_t)(tip >> 16);
	f[40] = (uint8_t)(tip >> 8); f[41] = (uint8_t)tip;
}

Test(arp, replies_to_request_and_learns)
{
	struct arp_cache *a = mk(16);
	uint8_t f[64], r[ARP_FRAME_LEN], mac[6], req[ARP_FRAME_LEN];
	size_t rl;

	frame(f, 1, peer_mac, PEER_IP, OUR_IP);
	cr_assert_eq(arp_input(a, f, ARP_FRAME_LEN, 0, r), ARP_FRAME_LEN);
	cr_assert_arr_eq(r, peer_mac, 6, "unicast back to the asker");
	cr_assert_arr_eq(r + 6, our_mac, 6);
	cr_assert_eq(r[21], 2, "reply");
	cr_assert_arr_eq(r + 22, our_mac, 6);
	cr_assert_eq(r[28], 0xc6);
	cr_assert_eq(r[31], 0x02, "sender IP is ours");
	cr_assert_arr_eq(r + 32, peer_mac, 6);
	cr_assert_eq(r[41], 0x01);
	/* The asker was learnt (RFC 826 merge). */
	cr_assert_eq(arp_resolve(a, PEER_IP, 1, mac, req, &rl), 0);
	cr_assert_arr_eq(mac, peer_mac, 6);
	cr_assert_eq(rl, 0);
	cr_assert_eq(arp_count(a, 1), 1);
	arp_destroy(a);
	arp_destroy(NULL);
}

Test(arp, ignores_requests_for_others_and_junk)
{
	struct arp_cache *a = mk(16);
	uint8_t f[64], r[ARP_FRAME_LEN], bc[6] = { 1, 0, 0x5e, 0, 0, 1 };

	frame(f, 1, peer_mac, PEER_IP, 0xc6120003u);
	cr_assert_eq(arp_input(a, f, ARP_FRAME_LEN, 0, r), 0);
	cr_assert_eq(arp_count(a, 0), 0, "not for us, not cached before: not learnt");
	cr_assert_eq(arp_input(a, f, 20, 0, r), -EINVAL);
	frame(f, 1, peer_mac, PEER_IP, OUR_IP);
	f[16] = 0x86; f[17] = 0xdd;		/* not IPv4 */
	cr_assert_eq(arp_input(a, f, ARP_FRAME_LEN, 0, r), -EINVAL);
	frame(f, 3, peer_mac, PEER_IP, OUR_IP);	/* RARP opcode */
	cr_assert_eq(arp_input(a, f, ARP_FRAME_LEN, 0, r), -EINVAL);
	frame(f, 1, bc, PEER_IP, OUR_IP);	/* multicast sender MAC */
	cr_assert_eq(arp_input(a, f, ARP_FRAME_LEN, 0, r), 0);
	frame(f, 2, peer_mac, OUR_IP, OUR_IP);	/* someone claims our address */
	cr_assert_eq(arp_input(a, f, ARP_FRAME_LEN, 0, r), 0);
	cr_assert_eq(arp_count(a, 0), 0);
	arp_destroy(a);
}

Test(arp, resolve_requests_rate_limited_then_reply_fills)
{
	struct arp_cache *a = mk(16);
	uint8_t f[64], r[ARP_FRAME_LEN], mac[6], req[ARP_FRAME_LEN];
	size_t rl;

	cr_assert_eq(arp_resolve(a, PEER_IP, 0, mac, req, &rl), -EAGAIN);
	cr_assert_eq(rl, ARP_FRAME_LEN);
	cr_assert_eq(memcmp(req, "\xff\xff\xff\xff\xff\xff", 6), 0, "broadcast");
	cr_assert_eq(req[21], 1);
	cr_assert_eq(req[41], 0x01, "target is the address asked for");
	cr_assert_eq(arp_resolve(a, PEER_IP, 500000, mac, req, &rl), -EAGAIN);
	cr_assert_eq(rl, 0, "one request per retry interval");
	cr_assert_eq(arp_resolve(a, PEER_IP, 1000000, mac, req, &rl), -EAGAIN);
	cr_assert_eq(rl, ARP_FRAME_LEN);
	/* The reply (not addressed to a request of theirs) fills the pending entry. */
	frame(f, 2, peer_mac, PEER_IP, OUR_IP);
	cr_assert_eq(arp_input(a, f, ARP_FRAME_LEN, 1100000, r), 0);
	cr_assert_eq(arp_resolve(a, PEER_IP, 1200000, mac, req, &rl), 0);
	cr_assert_arr_eq(mac, peer_mac, 6);
	arp_destroy(a);
}

Test(arp, entries_expire)
{
	struct arp_cache *a = mk(16);
	uint8_t f[64], r[ARP_FRAME_LEN], mac[6], req[ARP_FRAME_LEN];
	size_t rl;

	frame(f, 1, peer_mac, PEER_IP, OUR_IP);
	arp_input(a, f, ARP_FRAME_LEN, 0, r);
	cr_assert_eq(arp_resolve(a, PEER_IP, 9999999, mac, req, &rl), 0);
	cr_assert_eq(arp_resolve(a, PEER_IP, 10000000, mac, req, &rl), -EAGAIN, "TTL over");
	cr_assert_eq(rl, ARP_FRAME_LEN, "asks again");
	/* Seeing the peer again refreshes the entry. */
	arp_input(a, f, ARP_FRAME_LEN, 10000001, r);
	cr_assert_eq(arp_resolve(a, PEER_IP, 19000000, mac, req, &rl), 0);
	arp_destroy(a);
}

Test(arp, bounded_cache_evicts)
{
	struct arp_cache *a = mk(8);
	uint8_t f[64], r[ARP_FRAME_LEN], mac[6] = { 2, 0, 0, 0, 0, 0 };
	uint32_t i;

	for (i = 0; i < 100; i++) {
		mac[5] = (uint8_t)i;
		frame(f, 1, mac, 0x0a000000u + i, OUR_IP);
		cr_assert_eq(arp_input(a, f, ARP_FRAME_LEN, i, r), ARP_FRAME_LEN);
	}
	cr_assert_leq(arp_count(a, 100), 8, "fixed memory");
	cr_assert_geq(arp_count(a, 100), 2);
	arp_destroy(a);
}
