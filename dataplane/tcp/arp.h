/* ARP for the DPDK glue (RFC 826): answers requests for our address, learns
 * senders, resolves next hops with a bounded, expiring cache and rate-limited
 * requests. Frames are whole Ethernet frames (no VLAN). Pure: no I/O, time
 * passed in. One cache per lcore (or one per port on a single lcore). */
#ifndef PARLEY_ARP_H
#define PARLEY_ARP_H

#include <stddef.h>
#include <stdint.h>

#define ARP_FRAME_LEN	42	/* Ethernet header + ARP for IPv4 over Ethernet */

struct arp_cache;

struct arp_config {
	uint32_t ip;		/* ours, host order */
	uint8_t mac[6];		/* ours */
	uint32_t entries;	/* rounded up to a multiple of 4; default 256 */
	uint64_t ttl_us;	/* an entry's life after it was learnt; default 300 s */
	uint64_t retry_us;	/* at most one request per address per interval; default 1 s */
};

/* Boot path. NULL on allocation failure. */
struct arp_cache *arp_create(const struct arp_config *cfg);
void arp_destroy(struct arp_cache *a);	/* accepts NULL */

/* Handles one received frame. Learns the sender's mapping (RFC 826 merge:
 * refreshed if cached, added when the frame targets us). A request for our
 * address yields a reply built into <reply>: returns ARP_FRAME_LEN. Returns 0
 * when nothing is to be sent, -EINVAL for a frame that is not IPv4-over-
 * Ethernet ARP. */
int arp_input(struct arp_cache *a, const void *frame, size_t len, uint64_t now,
	      uint8_t reply[ARP_FRAME_LEN]);

/* 0 with <mac> filled when <ip> is cached and fresh. Otherwise -EAGAIN, and
 * *<req_len> is ARP_FRAME_LEN when a request was built into <req> to be sent
 * (0 when one went out less than retry_us ago). */
int arp_resolve(struct arp_cache *a, uint32_t ip, uint64_t now, uint8_t mac[6],
		uint8_t req[ARP_FRAME_LEN], size_t *req_len);

/* Number of fresh entries at <now>. */
uint32_t arp_count(const struct arp_cache *a, uint64_t now);

#endif
