/* One simulated Group Chat user of parley-bench: a state machine over one
 * non-blocking TLS connection that signs in (REGISTER, 407, REGISTER with
 * Digest), opens the Lookup dialog (INVITE sip:ocschat@, ACK, cmd:requri,
 * BYE), opens the Channel dialog (INVITE, ACK), joins its room, and then
 * posts or asks for history when its worker tells it to. Every server INFO
 * is answered with 200 (xccos.md a.2); posts received are matched by the
 * poster and sequence number written into their text.
 *
 * Owned by one worker thread; every function runs on that thread. */
#ifndef PARLEY_PERF_AGENT_H
#define PARLEY_PERF_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "perf/bench-t.h"
#include "perf/client.h"
#include "perf/loadkit.h"

#define AGENT_PEND	64	/* posts in flight per client, at most */

enum agent_state {
	AG_IDLE,	/* not connected; may be started */
	AG_CONNECTING,	/* TCP and TLS */
	AG_REG1,	/* REGISTER sent, waiting for the challenge */
	AG_REG2,	/* REGISTER with credentials sent */
	AG_LOOKUP,	/* INVITE sip:ocschat@ sent */
	AG_REQURI,	/* cmd:requri sent, waiting for rpl:requri */
	AG_LOOKUP_BYE,	/* BYE on the Lookup dialog sent */
	AG_CHANNEL,	/* INVITE to the Channel URI sent */
	AG_CHANSRCH,	/* user-space mode, first client: cmd:chansrch sent */
	AG_JOIN,	/* cmd:join sent */
	AG_READY,	/* joined: may post */
	AG_FAILED,	/* gave up */
};

struct agent {
	struct nbconn	c;
	struct worker	*w;
	uint32_t	gid;		/* 0 .. total-1 */
	uint32_t	room;
	enum agent_state state;
	uint8_t		tries;
	bool		bcc_busy;	/* history: a request is out */
	uint16_t	inflight;
	uint32_t	regs_left;
	uint32_t	join_cseq;
	uint32_t	srch_cseq;	/* cmd:chansrch's INFO (user-space mode) */
	uint32_t	post_seq;
	uint64_t	envid;
	uint64_t	deadline;	/* setup step must finish by then (ns) */
	uint64_t	bcc_sent;
	char		aor[200];
	char		chan_uri[BENCH_URI_MAX];	/* the Channel service URI */
	char		target[BENCH_URI_MAX];		/* Contact of the current dialog */
	struct pc_dialog reg, look, chan;
	struct {
		uint32_t cseq;
		uint64_t sent;
	} pend[AGENT_PEND];
	struct rxwin	*rx;		/* [members] */
};

/* Sets the agent up for client <gid> of worker <w>; no I/O. 0 or -ENOMEM. */
int agent_init(struct agent *a, struct worker *w, uint32_t gid);
void agent_fini(struct agent *a);

/* Starts connecting (from AG_IDLE). false when the connect could not even
 * start (the agent is then AG_IDLE or AG_FAILED). */
bool agent_start(struct agent *a, uint64_t now);

/* epoll reported <events> on the agent's socket. */
void agent_io(struct agent *a, uint32_t events, uint64_t now);

/* Sends one post now; <due> is when it was scheduled. false when the agent
 * cannot post (not joined, or AGENT_PEND / inflight posts unacknowledged). */
bool agent_post(struct agent *a, uint64_t due, uint64_t now);
bool agent_can_post(const struct agent *a);

/* History: sends cmd:bccontext unless one is already out. */
bool agent_bccontext(struct agent *a, uint64_t now);

/* Every 100 ms or so: setup timeouts. */
void agent_tick(struct agent *a, uint64_t now);

/* Closes the connection (end of run). */
void agent_stop(struct agent *a);

static inline bool
agent_in_setup(const struct agent *a)
{
	return a->state >= AG_CONNECTING && a->state < AG_READY;
}

#endif
