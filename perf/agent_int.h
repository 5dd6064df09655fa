/* What perf/agent.c (life, requests, sign-in, load) and perf/agent_rx.c
 * (what the server sends) share. Only perf/agent*.c include this. Every
 * function runs on the agent's worker thread. */
#ifndef PARLEY_PERF_AGENT_INT_H
#define PARLEY_PERF_AGENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perf/agent.h"

struct sipmsg;

static inline const struct bench_conf *
agent_conf(const struct agent *a)
{
	return &a->w->b->c;
}

/* agent.c */

/* Moves <a> to state <s>, with a new step deadline, keeping the worker's
 * count of agents in setup. */
void agent_set_state(struct agent *a, enum agent_state s, uint64_t now);

/* Keeps the worker's first error (the agent and its state, then <fmt>). */
void agent_note_error(struct agent *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The connection is gone or unusable: closes it and retries, or gives up,
 * as the mode and the phase say. */
void agent_fail(struct agent *a, const char *why, uint64_t now);

/* Builds a request into the connection's output (pc_build); false when it
 * does not fit or does not build. */
bool agent_send_req(struct agent *a, const char *method, const char *ruri, const char *to,
		    struct pc_dialog *d, const char *extra, const char *ctype, const char *body);

/* cmd:join for the agent's room on the Channel dialog; -> AG_JOIN. */
void agent_send_join(struct agent *a, uint64_t now);

/* agent_rx.c */

/* A request the full parse read: answered with 200 (an INFO's body then
 * handled), ACK ignored. */
void agent_rx_request(struct agent *a, const struct sipmsg *m, uint64_t now);

/* A server INFO, answered and handled without a full parse (the generator's
 * cost per delivery). false when <msg> is not an INFO or looks unusual: the
 * full parse then handles it. */
bool agent_rx_info_fast(struct agent *a, const char *msg, size_t len, uint64_t now);

#endif
