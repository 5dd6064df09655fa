/* Internals of tlsterm shared by tlsterm.c (OpenSSL, the handshake, the
 * hand-off) and tlsterm_own.c (the connection's I/O once it is on our own
 * record layer). Not for other files: they see tlsterm.h. */
#ifndef PARLEY_TLSTERM_INT_H
#define PARLEY_TLSTERM_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "dataplane/tls/tlsrec.h"
#include "dataplane/tls/tlsterm.h"

/* Consumed output below this stays in the wbio until it drains fully. */
#define OUT_COMPACT_MIN		(16 * 1024)
/* A drained wbio keeps at most this much capacity between bursts. */
#define OUT_KEEP_MAX		(64 * 1024)
/* Our input buffer grows by at least this much. */
#define IN_CHUNK		(16 * 1024 + 512)

/* RFC 8446 §6: alert levels and the descriptions we send. */
#define ALERT_WARNING		1
#define ALERT_FATAL		2
#define AD_CLOSE_NOTIFY		0
#define AD_UNEXPECTED_MESSAGE	10
#define AD_BAD_RECORD_MAC	20
#define AD_RECORD_OVERFLOW	22
#define AD_DECODE_ERROR		50
#define AD_ILLEGAL_PARAMETER	47
#define AD_INTERNAL_ERROR	80
#define AD_USER_CANCELED	90
#define HS_KEY_UPDATE		24

struct tlsterm_ctx {
	SSL_CTX *ssl_ctx;
	bool own_records;
	size_t out_max;		/* tlsterm_settings.out_max */
	/* Atomic: a reload on the control thread drops its reference while
	 * lcores still hold theirs through live sessions. */
	atomic_uint refs;
};

struct tlsterm {
	SSL *ssl;		/* NULL after the hand-off */
	BIO *rbio;		/* owned by ssl */
	BIO *wbio;		/* owned by ssl */
	struct tlsterm_ctx *ctx;	/* one reference */
	size_t out_off;		/* bytes at the head of the output already sent */
	bool failed;		/* fatal TLS error seen; only pending output remains */

	/* Before the hand-off (own_records only). */
	bool never;		/* something unusual: stays on OpenSSL */
	bool rd_on, wr_on;	/* the client's / our Finished went through */
	bool have_rd, have_wr;	/* traffic secrets from the keylog */
	uint8_t secret_len;
	uint8_t f_have;		/* header bytes of the fed record collected */
	bool f_seen23;		/* the client's first type-23 record was fed */
	uint8_t f_hdr[TLSREC_HDR];
	uint32_t f_body;	/* bytes of the fed record's body still to come */
	uint64_t f_app;		/* type-23 records fed after the first one */
	uint64_t rd_seq, wr_seq;	/* application records OpenSSL read / wrote */
	uint64_t wr_all;	/* type-23 records OpenSSL reported writing, all keys */
	uint8_t o_have;		/* header bytes of the sent record collected */
	uint8_t o_hdr[TLSREC_HDR];
	uint32_t o_body;	/* bytes of the sent record's body still to go */
	uint64_t o_all;		/* type-23 records that left (consumed), all keys */

	/* After the hand-off. */
	bool own;
	bool reused;
	bool peer_closed;	/* close_notify received */
	bool sent_close;	/* close_notify queued */
	uint8_t hs_have;	/* bytes of a KeyUpdate split across records */
	uint8_t hs[5];		/* its header and body */
	bool ku_owed;		/* a KeyUpdate(update_requested) awaits our one answer */
	uint8_t ku_run;		/* KeyUpdates since the last application data */
	bool ku_flood;		/* more than that under OpenSSL: fail the read */
	uint8_t empty_run;	/* empty application records since then */
	uint8_t warn_run;	/* user_canceled alerts since then */
	uint8_t events;		/* TLSTERM_EV_* */
	char desc[48];		/* tlsterm_describe() of the SSL */
	uint8_t sid_len;	/* the session's id in the server cache, to */
	uint8_t sid[SSL_MAX_SSL_SESSION_ID_LENGTH];	/* drop it after a fatal error */
	struct tlsrec_dir rd, wr;	/* rd.secret / wr.secret also before */
	unsigned char *in;	/* ciphertext fed, and opened content */
	size_t in_len, in_cap;
	size_t in_off;		/* next record */
	size_t pl_off, pl_len;	/* opened content not yet read */
	unsigned char *out;	/* records for the wire; out_off is sent */
	size_t out_len, out_cap;
};

/* True for the OpenSSL versions (OpenSSL_version_num()) whose record
 * layer the hand-off has been tested against: 3.0.x. */
bool tlsterm_handoff_version_ok(unsigned long v);
/* The same, and on the first "no" of the process a warning in the log
 * (tlsterm_ctx_create() with own_records asks it). */
bool tlsterm_own_records_allowed(unsigned long v);

/* tlsterm_own.c: feed, read, write and consume once handed off (see the
 * top of tlsterm.c), and sealing one record of <type> into the output. */
int tlsterm_own_feed(struct tlsterm *t, const void *buf, size_t len);
ssize_t tlsterm_own_read(struct tlsterm *t, unsigned char *buf, size_t len);
ssize_t tlsterm_own_write(struct tlsterm *t, const unsigned char *p, size_t len);
void tlsterm_own_consume(struct tlsterm *t, size_t n);
int tlsterm_own_seal(struct tlsterm *t, uint8_t type, const void *p, size_t n);
/* tlsterm.c: after a fatal error on our layer, the session may not be
 * resumed (as OpenSSL does on a fatal alert). */
void tlsterm_forget_session(struct tlsterm *t);

#endif
