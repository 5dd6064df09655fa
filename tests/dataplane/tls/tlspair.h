/* A server session (struct tlsterm) and a real OpenSSL client in the same
 * process, joined the way an I/O backend joins them: the client is an
 * ordinary SSL with its own memory BIOs, tp_pump() moves the bytes both
 * ways. Options: feed the client's bytes a few at a time, read with a small
 * buffer, take only a few bytes of the server's output per round (a slow
 * reader). Shared by the TLS unit tests; assertions are Criterion's. */
#ifndef PARLEY_TESTS_TLSPAIR_H
#define PARLEY_TESTS_TLSPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "dataplane/tls/tlsterm.h"

#define TP_MAX_ROUNDS	20000

struct tp_buf {
	unsigned char *p;
	size_t len, cap;
};

struct tlspair {
	struct tlsterm *t;
	SSL *c;
	BIO *cin;		/* client reads the server's ciphertext from here */
	BIO *cout;		/* client writes its ciphertext here */
	struct tp_buf srv_rx;	/* plaintext the server read */
	struct tp_buf cli_rx;	/* plaintext the client read */
	ssize_t srv_err;	/* last negative tlsterm_read() */
	int cli_err;		/* SSL_get_error() of the client's last failure */
	size_t feed_chunk;	/* client bytes per tlsterm_feed(), read after each; 0 = all */
	size_t read_len;	/* tlsterm_read() buffer; 0 = 20000 */
	size_t out_chunk;	/* server output taken per round; 0 = all */
};

void tp_buf_add(struct tp_buf *b, const void *p, size_t n);
/* A new session of <ctx> and a client of <cc> (SNI "localhost"), resuming
 * <resume> when not NULL. */
void tp_pair_init(struct tlspair *p, struct tlsterm_ctx *ctx, SSL_CTX *cc, SSL_SESSION *resume);
void tp_pair_fini(struct tlspair *p);
/* Client output to the server; true when bytes moved. */
bool tp_pump_in(struct tlspair *p);
/* The server reads all it can into srv_rx (srv_err on an error). */
void tp_server_read(struct tlspair *p);
/* Server output to the client; true when bytes moved. */
bool tp_pump_out(struct tlspair *p);
/* The client advances its handshake or reads all it can into cli_rx. */
void tp_client_step(struct tlspair *p);
/* One round trip of everything pending; true when bytes moved. */
bool tp_pump(struct tlspair *p);
/* Pumps until nothing moves (asserts it does stop). */
void tp_settle(struct tlspair *p);
/* Settles and asserts both handshakes completed without an error. */
void tp_handshake(struct tlspair *p);
/* A pattern of <n> bytes from <seed>. */
void tp_fill(unsigned char *b, size_t n, unsigned seed);
/* <n> bytes each way in <piece>-sized writes (client first, then the
 * server echoes); both ends must see exactly the bytes sent. */
void tp_echo(struct tlspair *p, size_t n, size_t piece);

#define TP_PATH_MAX	256

/* A self-signed certificate for <cn> (30 days) as <dir>/<name>.crt and its
 * key as <dir>/<name>.key, generated now; their paths into <cert> and <key>
 * (TP_PATH_MAX bytes each). */
void tp_cert_make(const char *dir, const char *name, const char *cn, char *cert, char *key);
/* Removes <dir> and everything in it. */
void tp_dir_remove(const char *dir);

/* The fixture of a suite that needs one certificate, for TestSuite's .init
 * and .fini: tp_fixture_init() makes a fresh temporary directory <tp_dir>
 * holding a self-signed certificate for chat.example.com (<tp_cert>,
 * <tp_key>); tp_fixture_fini() removes it. */
extern char tp_dir[], tp_cert[TP_PATH_MAX], tp_key[TP_PATH_MAX];
void tp_fixture_init(void);
void tp_fixture_fini(void);

#endif
