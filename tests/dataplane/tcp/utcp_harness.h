/* Test harness for the TCP core: one stack under test, a scripted peer that
 * builds segments byte by byte (own header and option encoder, checksums
 * included), the stack's output captured and parsed, an injected clock. */
#ifndef PARLEY_TEST_UTCP_HARNESS_H
#define PARLEY_TEST_UTCP_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/tcp/utcp.h"

#define TH_LOCAL	0xc6120002u	/* 198.18.0.2: the stack */
#define TH_PEER		0xc6120001u	/* 198.18.0.1: the scripted peer */
#define TH_PORT		5061
#define TH_QMAX		512
#define TH_EVMAX	1024

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

/* A segment as the peer sends it. Zero fields: no option. */
struct pseg {
	uint32_t saddr;			/* 0: TH_PEER */
	uint16_t sport, dport;		/* dport 0: TH_PORT */
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	uint16_t mss;
	bool has_ws;
	uint8_t ws;
	bool sackok;
	bool ts;
	uint32_t tsval, tsecr;
	int nsack;
	uint32_t sack[4][2];
	const void *data;
	size_t len;
};

/* A segment the stack sent, parsed. */
struct oseg {
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	uint16_t mss;			/* 0: absent */
	int ws;				/* -1: absent */
	bool sackok, ts;
	uint32_t tsval, tsecr;
	int nsack;
	uint32_t sack[4][2];
	uint8_t data[9100];
	size_t len;
	uint8_t proto;			/* 6 TCP, 1 ICMP */
	uint8_t raw[9200];
	size_t rawlen;
};

struct th_event {
	struct utcp_conn *c;
	enum utcp_event ev;
};

struct th {
	struct utcp_stack *st;
	struct utcp_config cfg;
	uint64_t now;
	uint8_t *q[TH_QMAX];
	size_t qlen[TH_QMAX];
	int qhead, qtail;
	struct th_event ev[TH_EVMAX];
	int nev;
	struct utcp_conn *accepted;	/* last UTCP_EV_ACCEPTED */
	bool drop_output;		/* make the output callback fail (packet lost) */
	/* A device with a full tx queue: while dev_limit is set the output
	 * callback takes dev_room more packets, then answers -ENOBUFS. */
	bool dev_limit;
	int dev_room;
	int dev_refused;		/* -ENOBUFS answers so far */
	bool auto_read;			/* read everything on READABLE into rx */
	uint8_t *rx;
	size_t rxlen, rxcap;
	bool rx_eof;
	/* The zero-copy receive hook: takes up to zc_max bytes per call into
	 * zc (zc_max 0: declines, the stack's normal path). */
	size_t zc_max;
	uint8_t zc[65536];
	size_t zclen;
	int zc_calls;
};

/* Default test config: small buffers, fixed keys. */
void th_config(struct utcp_config *cfg);
/* Creates the stack (cfg NULL: th_config defaults) at time 1 s. */
void th_init(struct th *t, const struct utcp_config *cfg);
void th_fini(struct th *t);
/* th_fini then th_init with <cfg>: a test that wants other settings than
 * the ones its suite made the stack with. */
void th_reinit(struct th *t, const struct utcp_config *cfg);

/* The stack of a suite that makes one per test, and a byte pattern to send:
 * TestSuite(name, .init = th_suite_init, .fini = th_suite_fini) makes th_s
 * with the th_config defaults and fills th_pat before each test, and frees
 * th_s after it. */
#define TH_PAT_LEN	70000
extern struct th th_s;
extern uint8_t th_pat[TH_PAT_LEN];
void th_suite_init(void);
void th_suite_fini(void);
/* Moves the clock on and runs timers. */
void th_advance(struct th *t, uint64_t us);

/* Builds and injects a segment from the peer. */
void th_send(struct th *t, const struct pseg *s);
/* Builds a raw IPv4+TCP packet for <s> into <buf>; returns its length. */
size_t th_build(const struct pseg *s, uint8_t *buf, size_t cap);
void th_inject(struct th *t, const void *pkt, size_t len);

/* Next captured packet, parsed and checked (IP and TCP checksums). */
bool th_pop(struct th *t, struct oseg *o);
int th_pending(const struct th *t);
void th_drain(struct th *t);
/* Count of events <ev> seen for <c> (NULL: any connection). */
int th_events(const struct th *t, const struct utcp_conn *c, enum utcp_event ev);

/* Passive handshake: the peer (port <sport>) connects with the options in
 * <syn> (flags/seq/ports filled in). Returns the accepted connection and
 * fills *<peer_seq> (the peer's next sequence), *<our_seq> (the stack's next
 * sequence) and the SYN-ACK in <synack> when non-NULL. */
struct utcp_conn *th_accept(struct th *t, uint16_t sport, struct pseg *syn,
			    uint32_t *peer_seq, uint32_t *our_seq, struct oseg *synack);

#endif
