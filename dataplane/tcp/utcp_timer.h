/* Hashed timer wheel (Varghese and Lauck, scheme 6): O(1) arm and cancel,
 * run cost proportional to the slots passed (at most one lap) plus the
 * timers visited. Timers further away than one lap stay in their slot and
 * are passed over until due. Intrusive: the owner embeds struct utcp_timer.
 * One wheel per lcore; not thread-safe. */
#ifndef PARLEY_UTCP_TIMER_H
#define PARLEY_UTCP_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct utcp_timer {
	struct utcp_timer *next;
	struct utcp_timer **pprev;	/* NULL when not armed */
	uint64_t expire;		/* absolute, µs */
	uint8_t kind;			/* owner's tag, for the fire callback */
};

struct utcp_wheel {
	struct utcp_timer **slot;	/* owned; nslots heads */
	uint32_t mask;			/* nslots - 1 */
	uint32_t tick_us;
	uint64_t cur;			/* tick the next run starts from */
	uint32_t armed;			/* timers currently armed */
};

/* Called with <t> already disarmed; it may re-arm or free its owner. */
typedef void utcp_timer_fn(void *arg, struct utcp_timer *t);

/* <nslots> is rounded up to a power of two. 0 or -ENOMEM. Boot path. */
int utcp_timer_wheel_init(struct utcp_wheel *w, uint32_t nslots, uint32_t tick_us,
			  uint64_t now);
void utcp_timer_wheel_fini(struct utcp_wheel *w);

/* Arms (or re-arms) <t> to fire at the first run with now >= <expire>. */
void utcp_timer_arm(struct utcp_wheel *w, struct utcp_timer *t, uint64_t expire);
/* Disarms <t>; harmless when not armed. */
void utcp_timer_cancel(struct utcp_wheel *w, struct utcp_timer *t);
/* Fires every timer due at <now>. */
void utcp_timer_run(struct utcp_wheel *w, uint64_t now, utcp_timer_fn *fn, void *arg);

static inline bool
utcp_timer_armed(const struct utcp_timer *t)
{
	return t->pprev != 0;
}

#endif
