/* Session-ticket keys that rotate on a schedule, for a server SSL_CTX (the
 * SIP side's and the Web service's).
 *
 * OpenSSL's own ticket keys are made with the SSL_CTX and live as long as
 * it does, so a key that leaked would open every ticket until the next
 * reload. Here a key serves for one period (the context's session timeout,
 * at least TLSTICKET_PERIOD_MIN_S): tickets are sealed with the current
 * period's key and accepted under it or the previous one (then renewed);
 * older keys are overwritten. Rotation happens in the ticket callback
 * itself, on the first handshake of a new period, so no loop has to call
 * anything. Lock-free: handshakes on any lcore may run it. */
#ifndef PARLEY_TLSTICKET_H
#define PARLEY_TLSTICKET_H

#include <stddef.h>
#include <stdint.h>

struct ssl_ctx_st;

#define TLSTICKET_PERIOD_MIN_S	60

/* Boot or control thread, before <c> is shared. Installs the key ring and
 * its callback on <c>, with the period SSL_CTX_get_timeout(<c>) (so set the
 * timeout first). The ring goes, wiped, with <c>. 0 or -ENOMEM. */
int tlsticket_attach(struct ssl_ctx_st *c);

/* Any thread. The tickets of the session with id <id> (<len> bytes) no
 * longer resume on <c> (the newest 512 revocations are kept: enough for
 * the fatal errors of one ticket lifetime on a sane server). */
void tlsticket_revoke(struct ssl_ctx_st *c, const unsigned char *id, size_t len);

/* Tests only: moves <c>'s ticket clock <s> seconds ahead. */
void tlsticket_advance(struct ssl_ctx_st *c, int64_t s);

/* The number of the period whose key seals tickets now; for tests and
 * counters. 0 before the first ticket. */
uint64_t tlsticket_epoch(struct ssl_ctx_st *c);

#endif
