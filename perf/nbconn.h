/* One non-blocking SIP-over-TLS client connection for the load generator.
 *
 * A TCP socket in an epoll set, OpenSSL on the socket in non-blocking mode,
 * or (nbconn_start_unet) a connection of the worker's user-space TCP stack
 * (perf/unet.h) with OpenSSL on an in-memory BIO over its buffers,
 * a plaintext input buffer framed with the server's own SIP parser
 * (dataplane/sip/sipmsg.h) and a plaintext output buffer that callers fill
 * and flush once per batch, so that many small messages leave in few TLS
 * records and few write() calls.
 *
 * Owned by one thread (the one whose epoll set holds it). The epoll event's
 * data.ptr is the <owner> given to nbconn_start(). */
#ifndef PARLEY_PERF_NBCONN_H
#define PARLEY_PERF_NBCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "dataplane/sip/sipmsg.h"

struct unet;
struct utcp_conn;

enum nbconn_state {
	NBCONN_IDLE = 0,	/* no socket */
	NBCONN_CONNECTING,	/* TCP connect in progress */
	NBCONN_HANDSHAKE,	/* TLS handshake in progress */
	NBCONN_OPEN,		/* application data flows */
};

struct nbconn {
	int		fd;
	int		ep;
	void		*owner;		/* epoll data.ptr */
	SSL		*ssl;
	enum nbconn_state state;
	uint32_t	events;		/* registered with epoll */
	bool		write_wants_read; /* SSL_write said WANT_READ */
	bool		read_wants_write; /* SSL_read said WANT_WRITE */
	char		*in;		/* received plaintext */
	size_t		in_len, in_cap, in_used; /* in_used: bytes of messages handed out */
	char		*out;		/* plaintext waiting to be written */
	size_t		out_len, out_cap, out_off;
	const char	*why;		/* static text of the last failure */
	/* User-space mode: no fd; TLS reads and writes the utcp_conn through
	 * a BIO of ours (owned by the SSL). */
	struct unet	*un;
	struct utcp_conn *uc;
	BIO		*bio;
};

/* Results of nbconn_io(). */
#define NBCONN_ERR	(-1)	/* failed or closed: see c->why; call nbconn_close() */
#define NBCONN_WAIT	0	/* nothing new */
#define NBCONN_UP	1	/* the TLS handshake just completed */
#define NBCONN_DATA	2	/* new plaintext in the input buffer */

/* Starts a TCP connect from <src> (NULL: any; port 0 is chosen at connect
 * time) to <dst> and adds the socket to <ep>. 0, or -errno with c->why set. */
int nbconn_start(struct nbconn *c, int ep, void *owner, const struct sockaddr_in *dst,
		 const struct sockaddr_in *src, SSL_CTX *ctx);

/* The same over the user-space TCP of <un> (perf/unet.h): <dst> must be
 * the address unet_resolve() resolved. unet events on the connection call
 * nbconn_io() through the owner. 0, or -errno with c->why set. */
int nbconn_start_unet(struct nbconn *c, struct unet *un, void *owner,
		      const struct sockaddr_in *dst, SSL_CTX *ctx);

/* Drives the connection after epoll reported <events>: finishes connect and
 * the handshake, flushes pending output, reads what TLS has decrypted. */
int nbconn_io(struct nbconn *c, uint32_t events);

/* The next complete SIP message in the input, parsed into <m> (views into
 * the buffer, valid until the next nbconn_io or nbconn_next). 1, 0 when
 * none is complete, -1 when framing is lost. */
int nbconn_next(struct nbconn *c, struct sipmsg *m);
/* The same in two steps: the next complete message, framed only (a view
 * valid until the next nbconn_io; 1, 0 or -1 as above), and its parse
 * (0, or -1 with c->why set). */
int nbconn_next_raw(struct nbconn *c, char **msg, size_t *len);
int nbconn_parse(struct nbconn *c, char *msg, size_t len, struct sipmsg *m);

/* Room for <n> bytes at the end of the output buffer (NULL when out of
 * memory); then nbconn_commit() the bytes actually written there. */
char *nbconn_reserve(struct nbconn *c, size_t n);
void nbconn_commit(struct nbconn *c, size_t n);
/* Writes what is queued, as far as the socket takes it. 0 or NBCONN_ERR. */
int nbconn_flush(struct nbconn *c);
static inline bool
nbconn_pending(const struct nbconn *c)
{
	return c->out_len > c->out_off;
}

/* Sends close_notify when it can, closes the socket, frees the buffers and
 * the SSL. <abort>: reset (SO_LINGER 0) instead of a graceful close, which
 * keeps no TIME_WAIT entry on our side. The struct may be started again. */
void nbconn_close(struct nbconn *c, bool abort);

/* Frees the input buffer while the connection is idle (idle benchmark). */
void nbconn_trim(struct nbconn *c);

#endif
