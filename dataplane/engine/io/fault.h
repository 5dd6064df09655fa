/* A seeded fault layer for the dpdk backend's tests: decides, packet by
 * packet, to pass, drop, duplicate or hold back (reorder) a frame, from a
 * spec such as "drop=20,dup=10,reorder=50,seed=7" (rates per thousand).
 * The lcore applies the decision to its rx and tx paths (io/dpdk.c); a held
 * frame leaves after the next one or after <hold_us>, so the peer sees it
 * late and out of order.
 *
 * "delay_us=D,jitter_us=J" add a delay line behind those decisions, because
 * the test kernels have no netem: every frame that would leave is kept until
 * now + D + a uniform 0..J (seeded), so with jitter frames may leave out of
 * order, as through netem with jitter. The line holds FAULT_DELAY_MAX frames;
 * a frame that finds it full is refused and the caller drops it (counted in
 * delay_full), as netem drops over its limit: a full queue is congestion, and
 * letting the frame through undelayed would only add reordering.
 *
 * Pure: no DPDK, no I/O, no allocation; frames are opaque pointers the caller
 * owns again when they come out (or are refused). One state per lcore and
 * direction, owned by that lcore. */
#ifndef PARLEY_IO_FAULT_H
#define PARLEY_IO_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#define FAULT_DELAY_MAX		512	/* frames in one delay line at most */
#define FAULT_DELAY_US_MAX	1000000	/* delay_us and jitter_us, each */

struct fault_delayed {
	void *pkt;
	uint64_t due_us;
	uint64_t seq;			/* ties on due_us leave in arrival order */
};

struct fault {
	uint16_t drop, dup, reorder;	/* per thousand */
	uint32_t hold_us;		/* longest a held frame waits; default 2000 */
	uint32_t delay_us, jitter_us;	/* the delay line; 0, 0: none */
	uint64_t rng;			/* xorshift state, never 0 */
	uint64_t dropped, duplicated, reordered;
	uint64_t delayed, delay_full;	/* frames taken by the line, refused by it */

	/* Min-heap on (due_us, seq): the root leaves first. */
	uint32_t nheld;
	uint64_t seq;
	struct fault_delayed heap[FAULT_DELAY_MAX];
};

enum fault_act {
	FAULT_PASS = 0,
	FAULT_DROP,
	FAULT_DUP,
	FAULT_HOLD,
};

/* Parses <spec> into <f> (zeroed first); <salt> varies the seed per lcore
 * and direction. 0, or -EINVAL for an unknown key, a value that is not a
 * number, a rate over 1000 or a delay over FAULT_DELAY_US_MAX. */
int fault_parse(struct fault *f, const char *spec, uint64_t salt);
/* True when <f> injects anything. */
bool fault_active(const struct fault *f);
/* The decision for the next frame. */
enum fault_act fault_roll(struct fault *f);

/* True when <f> delays frames: they go through fault_delay_push(). */
bool fault_delays(const struct fault *f);
/* Keeps <pkt> until <now_us> + delay_us + a draw in 0..jitter_us. 0, or
 * -ENOBUFS when the line is full: <pkt> is still the caller's to drop. */
int fault_delay_push(struct fault *f, void *pkt, uint64_t now_us);
/* The held frame due first if it is due at <now_us>, taken out of the line
 * (the caller owns it again); NULL when none is due. UINT64_MAX empties the
 * line at teardown. */
void *fault_delay_pop(struct fault *f, uint64_t now_us);
/* When the next held frame is due; UINT64_MAX when the line is empty. */
uint64_t fault_delay_next(const struct fault *f);

#endif
