/* Hashed timer wheel (see utcp_timer.h).
 *
 * A timer due at tick E sits in slot E & mask, or in the slot of the current
 * tick when E is already past. A run visits the slots from w->cur to the
 * tick of <now> (at most one lap), detaching each slot's list first so that
 * callbacks may arm and cancel freely; timers found not yet due go back. */
#include <errno.h>
#include <stdlib.h>

#include "dataplane/tcp/utcp_timer.h"

int
utcp_timer_wheel_init(struct utcp_wheel *w, uint32_t nslots, uint32_t tick_us, uint64_t now)
{
	uint32_t n = 1;

	while (n < nslots && n < (1u << 24))
		n <<= 1;
	w->slot = calloc(n, sizeof(*w->slot));
	if (w->slot == NULL)
		return -ENOMEM;
	w->mask = n - 1;
	w->tick_us = tick_us ? tick_us : 1000;
	w->cur = now / w->tick_us;
	w->armed = 0;
	return 0;
}

void
utcp_timer_wheel_fini(struct utcp_wheel *w)
{
	free(w->slot);
	w->slot = NULL;
}

static void
link_slot(struct utcp_timer **head, struct utcp_timer *t)
{
	t->next = *head;
	if (t->next)
		t->next->pprev = &t->next;
	*head = t;
	t->pprev = head;
}

static void
unlink_timer(struct utcp_timer *t)
{
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->next = NULL;
	t->pprev = NULL;
}

void
utcp_timer_arm(struct utcp_wheel *w, struct utcp_timer *t, uint64_t expire)
{
	uint64_t tick = expire / w->tick_us;

	if (t->pprev)
		unlink_timer(t);
	else
		w->armed++;
	if (tick < w->cur)
		tick = w->cur;
	t->expire = expire;
	link_slot(&w->slot[tick & w->mask], t);
}

void
utcp_timer_cancel(struct utcp_wheel *w, struct utcp_timer *t)
{
	if (t->pprev == NULL)
		return;
	unlink_timer(t);
	w->armed--;
}

void
utcp_timer_run(struct utcp_wheel *w, uint64_t now, utcp_timer_fn *fn, void *arg)
{
	uint64_t target = now / w->tick_us, tick, last;
	struct utcp_timer *list, *t;

	if (target < w->cur)
		return;
	last = target - w->cur > w->mask ? w->cur + w->mask : target;
	for (tick = w->cur; tick <= last; tick++) {
		w->cur = tick;
		list = w->slot[tick & w->mask];
		if (list == NULL)
			continue;
		w->slot[tick & w->mask] = NULL;
		list->pprev = &list;
		while ((t = list) != NULL) {
			unlink_timer(t);
			if (t->expire <= now) {
				w->armed--;
				fn(arg, t);
			} else {
				link_slot(&w->slot[(t->expire / w->tick_us < w->cur ?
						    w->cur : t->expire / w->tick_us) & w->mask], t);
			}
		}
	}
	w->cur = target;
}
