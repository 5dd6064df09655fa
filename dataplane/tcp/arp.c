/* ARP cache and responder (see arp.h).
 *
 * The cache is 4-way set-associative: an address hashes to one set of four
 * entries, so lookups and inserts are O(1) and memory is fixed. A full set
 * gives up its stale or oldest entry. Entries waiting for a reply (pending)
 * remember when the last request went out. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/base/be.h"
#include "dataplane/tcp/arp.h"

#define WAYS	4

enum { E_FREE = 0, E_PENDING, E_VALID };

struct arp_entry {
	uint32_t ip;
	uint8_t mac[6];
	uint8_t state;
	uint64_t stamp;		/* learnt (valid) or last request (pending) */
};

struct arp_cache {
	struct arp_config cfg;
	uint32_t nsets;
	struct arp_entry e[];
};

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

struct arp_cache *
arp_create(const struct arp_config *cfg)
{
	struct arp_cache *a;
	uint32_t n = cfg->entries ? cfg->entries : 256;

	n = (n + WAYS - 1) / WAYS;
	a = calloc(1, sizeof(*a) + (size_t)n * WAYS * sizeof(a->e[0]));
	if (a == NULL)
		return NULL;
	a->cfg = *cfg;
	a->nsets = n;
	if (a->cfg.ttl_us == 0)
		a->cfg.ttl_us = 300ull * 1000000;
	if (a->cfg.retry_us == 0)
		a->cfg.retry_us = 1000000;
	return a;
}

void
arp_destroy(struct arp_cache *a)
{
	free(a);
}

static struct arp_entry *
set_of(struct arp_cache *a, uint32_t ip)
{
	uint32_t h = ip * 2654435761u;

	return &a->e[(size_t)((h >> 8) % a->nsets) * WAYS];
}

static struct arp_entry *
find(struct arp_cache *a, uint32_t ip)
{
	struct arp_entry *s = set_of(a, ip);
	int i;

	for (i = 0; i < WAYS; i++)
		if (s[i].state != E_FREE && s[i].ip == ip)
			return &s[i];
	return NULL;
}

static bool
fresh(const struct arp_cache *a, const struct arp_entry *e, uint64_t now)
{
	return e->state == E_VALID && now - e->stamp < a->cfg.ttl_us;
}

/* A slot for <ip>: its own, a free one, an expired one, else the oldest. */
static struct arp_entry *
slot(struct arp_cache *a, uint32_t ip, uint64_t now)
{
	struct arp_entry *s = set_of(a, ip), *victim = NULL;
	int i;

	for (i = 0; i < WAYS; i++)
		if (s[i].state != E_FREE && s[i].ip == ip)
			return &s[i];
	for (i = 0; i < WAYS; i++) {
		if (s[i].state == E_FREE || (s[i].state == E_VALID && !fresh(a, &s[i], now)))
			return &s[i];
		if (victim == NULL || s[i].stamp < victim->stamp)
			victim = &s[i];
	}
	return victim;
}

static void
learn(struct arp_cache *a, struct arp_entry *e, uint32_t ip, const uint8_t *mac, uint64_t now)
{
	e->ip = ip;
	memcpy(e->mac, mac, 6);
	e->state = E_VALID;
	e->stamp = now;
}

static void
build(uint8_t *f, const uint8_t *eth_dst, const uint8_t *src_mac, uint16_t oper,
      uint32_t sip, const uint8_t *tha, uint32_t tip)
{
	memcpy(f, eth_dst, 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	f[14] = 0;
	f[15] = 1;		/* Ethernet */
	f[16] = 0x08;
	f[17] = 0x00;		/* IPv4 */
	f[18] = 6;
	f[19] = 4;
	f[20] = 0;
	f[21] = (uint8_t)oper;
	memcpy(f + 22, src_mac, 6);
	be_put32(f + 28, sip);
	memcpy(f + 32, tha, 6);
	be_put32(f + 38, tip);
}

int
arp_input(struct arp_cache *a, const void *frame, size_t len, uint64_t now,
	  uint8_t reply[ARP_FRAME_LEN])
{
	const uint8_t *f = frame;
	uint32_t sip, tip;
	struct arp_entry *e;
	uint16_t oper;

	if (len < ARP_FRAME_LEN || f[12] != 0x08 || f[13] != 0x06 || f[14] != 0 || f[15] != 1 ||
	    f[16] != 0x08 || f[17] != 0x00 || f[18] != 6 || f[19] != 4)
		return -EINVAL;
	oper = (uint16_t)(f[20] << 8 | f[21]);
	sip = be_get32(f + 28);
	tip = be_get32(f + 38);
	if (oper != 1 && oper != 2)
		return -EINVAL;
	/* Never learn a broadcast/multicast sender, or one claiming our address. */
	if ((f[22] & 1) || sip == 0 || sip == a->cfg.ip)
		return 0;
	e = find(a, sip);
	if (e != NULL)
		learn(a, e, sip, f + 22, now);
	else if (tip == a->cfg.ip)
		learn(a, slot(a, sip, now), sip, f + 22, now);
	if (oper == 1 && tip == a->cfg.ip) {
		build(reply, f + 22, a->cfg.mac, 2, a->cfg.ip, f + 22, sip);
		return ARP_FRAME_LEN;
	}
	return 0;
}

int
arp_resolve(struct arp_cache *a, uint32_t ip, uint64_t now, uint8_t mac[6],
	    uint8_t req[ARP_FRAME_LEN], size_t *req_len)
{
	static const uint8_t zero[6];
	struct arp_entry *e = find(a, ip);

	*req_len = 0;
	if (e != NULL && fresh(a, e, now)) {
		memcpy(mac, e->mac, 6);
		return 0;
	}
	if (e == NULL || e->state == E_VALID) {
		e = slot(a, ip, now);
		e->ip = ip;
		e->state = E_PENDING;
		e->stamp = now;
	} else if (now - e->stamp < a->cfg.retry_us) {
		return -EAGAIN;			/* a request is already out */
	} else {
		e->stamp = now;
	}
	build(req, bcast, a->cfg.mac, 1, a->cfg.ip, zero, ip);
	*req_len = ARP_FRAME_LEN;
	return -EAGAIN;
}

uint32_t
arp_count(const struct arp_cache *a, uint64_t now)
{
	uint32_t i, n = 0;

	for (i = 0; i < a->nsets * WAYS; i++)
		if (fresh(a, &a->e[i], now))
			n++;
	return n;
}
