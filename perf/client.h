/* A small SIP-over-TLS client for tests and the load generator.
 *
 * Blocking sockets with timeouts; OpenSSL on the socket directly. One
 * struct pc_conn per TCP connection, used by one thread. Messages are
 * framed with the same parser the server uses (dataplane/sip/sipmsg.h). */
#ifndef PARLEY_CLIENT_H
#define PARLEY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/sip/sipmsg.h"

struct pc_conn;

struct pc_opts {
	int min_tls;		/* 0 = library default, else TLS1_2_VERSION etc. */
	int max_tls;
	const char *cafile;	/* verify the server against this; NULL = no verification */
	void *session;		/* SSL_SESSION to resume, or NULL */
};

/* Connects and completes the TLS handshake within <timeout_ms>. NULL with
 * a reason in <err>. */
struct pc_conn *pc_connect(const char *host, uint16_t port, const struct pc_opts *o,
			   int timeout_ms, char *err, size_t errlen);
void pc_close(struct pc_conn *c);	/* accepts NULL */

/* Sends raw bytes. 0 or -1. */
int pc_send(struct pc_conn *c, const void *buf, size_t len);

/* Receives one SIP message into the connection's buffer and parses it into
 * <m> (strings point into that buffer until the next pc_recv). Returns 1,
 * 0 on timeout, -1 when the peer closed or on error. */
int pc_recv(struct pc_conn *c, struct sipmsg *m, int timeout_ms);

/* False once the peer closed the connection (without waiting). */
bool pc_conn_alive(struct pc_conn *c);

/* True when the peer closed the connection within <timeout_ms>. */
bool pc_wait_closed(struct pc_conn *c, int timeout_ms);

/* The peer certificate's SHA-256 fingerprint in hex (65 bytes). */
void pc_peer_fingerprint(struct pc_conn *c, char *out);
bool pc_resumed(struct pc_conn *c);
void *pc_get_session(struct pc_conn *c);	/* SSL_SESSION*, caller frees with SSL_SESSION_free */

/* Header value of <m> by name as a NUL-terminated copy in <out>; false when absent. */
bool pc_header(const struct sipmsg *m, const char *name, char *out, size_t cap);

/* A minimal request from <aor> ("alice@example.com"):
 *   METHOD ruri / Via with a fresh branch / From with tag / To / Call-ID /
 *   CSeq / Max-Forwards / Contact / extra headers / body.
 * <to_tag> may be NULL. Returns its length or -1. */
struct pc_dialog {
	char call_id[64];
	char from_tag[32];
	char to_tag[80];
	uint32_t cseq;
};
ssize_t pc_build(char *out, size_t cap, const char *method, const char *ruri, const char *aor,
		 const char *to_uri, struct pc_dialog *d, const char *extra_hdrs,
		 const char *ctype, const char *body);

/* Full REGISTER with Digest (answers a 401 or 407). Returns the final status
 * (200, 403, ...), or -1 on transport error. <warning> (may be NULL) gets
 * the Warning header if any. */
int pc_register(struct pc_conn *c, const char *aor, const char *password, uint32_t expires,
		char *warning, size_t wcap);
/* The same with Request-URI <ruri> (NULL: sip:<domain of aor>), and the
 * final answer's header <hname> (e.g. "Contact") copied into <hval> (may be
 * NULL; "" when absent). */
int pc_register_to(struct pc_conn *c, const char *aor, const char *password, uint32_t expires,
		   const char *ruri, const char *hname, char *hval, size_t hcap);

#endif
