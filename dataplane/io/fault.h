/* A seeded fault layer for the dpdk backend's tests: decides, packet by
 * packet, to pass, drop, duplicate or hold back (reorder) a frame, from a
 * spec such as "drop=20,dup=10,reorder=50,seed=7" (rates per thousand).
 * The lcore applies the decision to its rx and tx paths (io/dpdk.c); a held
 * frame leaves after the next one or after <hold_us>, so the peer sees it
 * late and out of order. Pure: no DPDK, no I/O. One state per lcore and
 * direction, owned by that lcore. */
#ifndef PARLEY_IO_FAULT_H
#define PARLEY_IO_FAULT_H

#include <stdbool.h>
#include <stdint.h>

struct fault {
	uint16_t drop, dup, reorder;	/* per thousand */
	uint32_t hold_us;		/* longest a held frame waits; default 2000 */
	uint64_t rng;			/* xorshift state, never 0 */
	uint64_t dropped, duplicated, reordered;
};

enum fault_act {
	FAULT_PASS = 0,
	FAULT_DROP,
	FAULT_DUP,
	FAULT_HOLD,
};

/* Parses <spec> into <f> (zeroed first); <salt> varies the seed per lcore
 * and direction. 0, or -EINVAL for an unknown key or a rate over 1000. */
int fault_parse(struct fault *f, const char *spec, uint64_t salt);
/* True when <f> injects anything. */
bool fault_active(const struct fault *f);
/* The decision for the next frame. */
enum fault_act fault_roll(struct fault *f);

#endif
