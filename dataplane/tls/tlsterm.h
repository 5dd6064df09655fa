/* TLS termination with OpenSSL over memory BIOs.
 *
 * The I/O backend owns the bytes on the wire; this stage only transforms
 * them. Ciphertext that arrived goes in with tlsterm_feed(); plaintext comes
 * out of tlsterm_read(); plaintext to send goes in with tlsterm_write();
 * ciphertext to put on the wire comes out of tlsterm_pending_out() /
 * tlsterm_consume_out(). The same code therefore serves the kernel-socket and
 * the DPDK backends.
 *
 * A struct tlsterm belongs to one connection and so to one lcore. The
 * struct tlsterm_ctx (certificate, key, settings) is shared read-only by all
 * lcores and refcounted atomically (it crosses lcores on reload). */
#ifndef PARLEY_TLSTERM_H
#define PARLEY_TLSTERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tlsterm_ctx;
struct tlsterm;

struct tlsterm_settings {
	const char *cert_file;	/* PEM chain */
	const char *key_file;	/* PEM private key */
	const char *ciphers;	/* TLS 1.2 cipher list; NULL = modern default */
	const char *ciphersuites; /* TLS 1.3 suites; NULL = OpenSSL default */
	uint32_t session_cache;	/* server-side session cache entries; 0 = off */
	uint32_t session_timeout_s;
	bool tickets;		/* stateless session tickets (resumption) */
	/* [tls] record_layer = parley: once a TLS 1.3 connection is quiet
	 * after its handshake, its records are protected by tlsrec.c and the
	 * SSL object is freed. false: OpenSSL's record layer throughout. */
	bool own_records;
	/* Output (bytes for the wire not yet consumed) past which a read
	 * that would add to it (a KeyUpdate answer) fails: a peer that asks
	 * but does not read must not queue output without bound. 0:
	 * TLSTERM_OUT_MAX. The engine passes its [net] outq_max. */
	uint32_t out_max;
};

/* Defaults of the limits on what a peer may send without application data
 * in between (RFC 8446 sets none; OpenSSL's own layer: 32 empty records, 5
 * warning alerts, KeyUpdates without limit). One more closes the
 * connection with unexpected_message. */
#define TLSTERM_OUT_MAX			(1024 * 1024)	/* as [net] outq_max */
#define TLSTERM_KEY_UPDATES_MAX		32	/* consecutive KeyUpdates */
#define TLSTERM_EMPTY_RECORDS_MAX	32	/* consecutive empty application records */
#define TLSTERM_WARN_ALERTS_MAX		4	/* user_canceled alerts (OpenSSL fails the 5th) */

/* Boot thread, before any key is loaded or generated. <allow> false: the
 * process leaves no core dump, so traffic secrets, ticket keys and the
 * private key cannot end up in one (prctl PR_SET_DUMPABLE 0; also stops
 * other non-root processes from attaching a debugger). 0 or -errno. */
int tlsterm_set_core_dumps(bool allow);

/* Boot or control thread. NULL on error with a message naming the file that
 * failed in <errbuf>. Refcount starts at 1. */
struct tlsterm_ctx *tlsterm_ctx_create(const struct tlsterm_settings *s, char *errbuf,
				       size_t errlen);
void tlsterm_ctx_get(struct tlsterm_ctx *c);
void tlsterm_ctx_put(struct tlsterm_ctx *c);	/* accepts NULL */

/* A server-side session (accept state). Holds a reference to <ctx>. NULL on
 * allocation failure. Owning lcore only from here on. */
struct tlsterm *tlsterm_new(struct tlsterm_ctx *ctx);
void tlsterm_free(struct tlsterm *t);	/* accepts NULL */

/* Takes <len> bytes of ciphertext from the wire. 0 or -ENOMEM. */
int tlsterm_feed(struct tlsterm *t, const void *buf, size_t len);

/* Drives the handshake and decrypts. Returns > 0 plaintext bytes, 0 when no
 * plaintext is available yet (handshake in progress or a partial record),
 * -ECONNRESET when the peer sent close_notify, -EPROTO on a TLS error (the
 * handshake failed or a record was bad: the connection must be closed after
 * sending what tlsterm_pending_out() holds, which may be an alert). */
ssize_t tlsterm_read(struct tlsterm *t, void *buf, size_t len);

/* True when tlsterm_read() has nothing to work on: every fed byte has been
 * taken by OpenSSL and no decrypted plaintext waits (a partial record may
 * sit in OpenSSL's buffer: it needs more bytes first). False after a fatal
 * error, whose report tlsterm_read() still owes. Lets a caller skip the read
 * that would only return 0. Costs no OpenSSL error-queue work. */
bool tlsterm_in_empty(const struct tlsterm *t);

/* Encrypts <len> bytes of plaintext. Returns <len>, or -EAGAIN before the
 * handshake is complete, or -EPROTO. Records queue up in the output until
 * taken with tlsterm_pending_out(). */
ssize_t tlsterm_write(struct tlsterm *t, const void *buf, size_t len);

/* Ciphertext waiting to go on the wire: a pointer to the contiguous bytes at
 * the head of the output and their count (0 when none). Stays valid until
 * the next call on <t>. */
size_t tlsterm_pending_out(struct tlsterm *t, const void **p);
/* Marks <n> bytes of the pending output as sent. */
void tlsterm_consume_out(struct tlsterm *t, size_t n);

/* Queues a close_notify alert. */
void tlsterm_shutdown(struct tlsterm *t);

bool tlsterm_handshake_done(const struct tlsterm *t);
bool tlsterm_session_reused(const struct tlsterm *t);
/* Short description of the negotiated protocol and cipher, for debug logs. */
const char *tlsterm_describe(const struct tlsterm *t, char *buf, size_t len);

/* Releases OpenSSL's read/write buffers while the connection is idle
 * (SSL_MODE_RELEASE_BUFFERS does that between records; this also frees the
 * memory BIOs' spare capacity). Cheap; call when the connection goes idle.
 * With own_records, this is also where a TLS 1.3 session leaves OpenSSL
 * (the "hand-off", see tlsterm.c); it may also happen when
 * tlsterm_consume_out() drains the output. */
void tlsterm_trim(struct tlsterm *t);

/* True once the session runs on our own record layer (tlsrec.c). */
bool tlsterm_handed_off(const struct tlsterm *t);

/* Events since the last call, for the caller's counters; cleared. */
#define TLSTERM_EV_HANDOFF	0x01	/* the session left OpenSSL */
#define TLSTERM_EV_BAD_MAC	0x02	/* a record failed authentication on our layer */
#define TLSTERM_EV_KEY_UPDATE	0x04	/* a KeyUpdate was processed on our layer */
unsigned tlsterm_take_events(struct tlsterm *t);

#endif
