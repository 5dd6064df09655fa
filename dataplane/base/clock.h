/* The clocks, in the units callers count in. Monotonic clocks measure
 * intervals and deadlines; realtime clocks stamp what a person or a file
 * reads (post times, log lines, export names). The coarse variants read the
 * kernel's tick (a few ms) without the vDSO's arithmetic: for the lcore
 * loop, which refreshes its clock every turn. Any thread. */
#ifndef PARLEY_CLOCK_H
#define PARLEY_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
clock_ns_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Monotonic, nanoseconds. */
static inline uint64_t
clock_mono_ns(void)
{
	return clock_ns_of(CLOCK_MONOTONIC);
}

/* Monotonic, microseconds. */
static inline uint64_t
clock_mono_us(void)
{
	return clock_mono_ns() / 1000;
}

/* Monotonic, milliseconds. */
static inline uint64_t
clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}

/* Monotonic, whole seconds, from the coarse clock. */
static inline uint64_t
clock_mono_s_coarse(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

/* Realtime, milliseconds since the epoch. */
static inline uint64_t
clock_real_ms(void)
{
	return clock_ns_of(CLOCK_REALTIME) / 1000000;
}

/* Realtime, milliseconds since the epoch, from the coarse clock. */
static inline uint64_t
clock_real_ms_coarse(void)
{
	return clock_ns_of(CLOCK_REALTIME_COARSE) / 1000000;
}

/* Realtime, 100 ns units since the epoch (XCCOS timestamps count in them). */
static inline uint64_t
clock_real_100ns(void)
{
	return clock_ns_of(CLOCK_REALTIME) / 100;
}

#endif
