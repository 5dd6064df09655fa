/* What the two load generators share (parley-bench over SIP, mqtt-bench
 * over MQTT): the check that the server is there before any client starts,
 * and reading the "<poster> <seq> <time> " head of each delivered post with
 * the window that tells a duplicate delivery from a new one. */
#ifndef PARLEY_PERF_LOADKIT_H
#define PARLEY_PERF_LOADKIT_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

/* Which sequence numbers of one poster were seen: bit i is last - i. */
struct rxwin {
	uint32_t	last;		/* highest sequence number seen */
	uint64_t	seen;
};

/* Marks sequence number <s> seen; false when it was already. One older
 * than 64 below the highest counts as new (too old to tell). */
bool loadkit_rx_mark(struct rxwin *r, uint32_t s);

/* The decimal number at *<p> (below <end>), which must end with a space;
 * *<p> moves past the space. Clears *<ok> when there is none. */
uint64_t loadkit_num(const char **p, const char *end, bool *ok);

/* A plain TCP connect to <dst> (3 s at most): 0, or the errno it failed
 * with, so that an absent server gets a clear message before the load. */
int loadkit_probe(const struct sockaddr_in *dst);

#endif
