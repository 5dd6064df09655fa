/* The hand-off from OpenSSL's record layer to ours (tlsterm.c with
 * own_records), against a real OpenSSL client in the same process: the
 * client never knows, so every record after the hand-off checks our keys
 * and sequence numbers against OpenSSL's. */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlsterm.h"
#include "dataplane/tls/tlsterm_int.h"
#include "tests/dataplane/tls/tlspair.h"

static char dir[] = "/tmp/test_tlshandoff.XXXXXX";
static char cert[TP_PATH_MAX], key[TP_PATH_MAX];

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	tp_cert_make(dir, "a", "chat.example.com", cert, key);
}

static void
teardown(void)
{
	tp_dir_remove(dir);
}

TestSuite(handoff, .init = setup, .fini = teardown);

static struct tlsterm_ctx *
ctx_new(bool own, const char *suites)
{
	struct tlsterm_settings s = {
		.cert_file = cert,
		.key_file = key,
		.ciphersuites = suites,
		.session_cache = 128,
		.session_timeout_s = 300,
		.tickets = true,
		.own_records = own,
	};
	struct tlsterm_ctx *c;
	char err[512] = "";

	c = tlsterm_ctx_create(&s, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	return c;
}

static SSL_CTX *
client_ctx(int maxv, const char *suites)
{
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());

	cr_assert_not_null(cc);
	cr_assert_eq(SSL_CTX_set_max_proto_version(cc, maxv), 1);
	if (suites != NULL)
		cr_assert_eq(SSL_CTX_set_ciphersuites(cc, suites), 1);
	return cc;
}

static void
check_suite(const char *suite)
{
	struct tlsterm_ctx *ctx = ctx_new(true, suite);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	struct tlspair p;
	char desc[128];

	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	/* The tickets drained: that quiet moment already handed off. */
	cr_assert(tlsterm_handed_off(p.t));
	cr_assert_eq(tlsterm_take_events(p.t), TLSTERM_EV_HANDOFF);
	tlsterm_describe(p.t, desc, sizeof(desc));
	cr_assert_not_null(strstr(desc, suite), "%s", desc);
	cr_assert_not_null(strstr(desc, "parley-records"), "%s", desc);
	tp_echo(&p, 5000, 100);		/* many records */
	tp_echo(&p, 100000, 100000);	/* one 100 KB write: 7 records */
	tp_echo(&p, 16384, 16384);		/* one full record */
	tp_echo(&p, 16385, 16385);		/* a full record and a 1-byte one */
	tlsterm_trim(p.t);
	tp_echo(&p, 300, 300);		/* contexts rebuilt after a trim */
	cr_assert_eq(tlsterm_take_events(p.t), 0);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(handoff, aes128gcm)
{
	check_suite("TLS_AES_128_GCM_SHA256");
}

Test(handoff, aes256gcm)
{
	check_suite("TLS_AES_256_GCM_SHA384");
}

Test(handoff, chacha20poly1305)
{
	check_suite("TLS_CHACHA20_POLY1305_SHA256");
}

/* Records under OpenSSL both ways before the hand-off: the counts carry. */
Test(handoff, after_openssl_traffic)
{
	struct tlsterm_ctx *ctx = ctx_new(true, NULL);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	unsigned char msg[300];
	struct tlspair p;
	int i;

	tp_pair_init(&p, ctx, cc, NULL);
	/* Handshake by hand, keeping the server's tickets back. */
	for (i = 0; i < 10 && !tlsterm_handshake_done(p.t); i++) {
		tp_client_step(&p);
		tp_pump_in(&p);
		tp_server_read(&p);
		if (!tlsterm_handshake_done(p.t))
			tp_pump_out(&p);
	}
	cr_assert(tlsterm_handshake_done(p.t));
	cr_assert_not(tlsterm_handed_off(p.t));
	tp_fill(msg, sizeof(msg), 1);
	for (i = 0; i < 5; i++)
		cr_assert_eq(SSL_write(p.c, msg, 60), 60);
	tp_pump_in(&p);
	tp_server_read(&p);
	cr_assert_eq(p.srv_rx.len, 300);
	for (i = 0; i < 3; i++)
		cr_assert_eq(tlsterm_write(p.t, msg, 100), 100);
	tlsterm_trim(p.t);	/* output pending: refused */
	cr_assert_not(tlsterm_handed_off(p.t));
	tp_settle(&p);
	cr_assert(tlsterm_handed_off(p.t));
	cr_assert_eq(p.cli_rx.len, 300);
	tp_echo(&p, 20000, 700);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

/* Fed but unread data keeps the session on OpenSSL until it is read. */
Test(handoff, refused_while_pending)
{
	struct tlsterm_ctx *ctx = ctx_new(true, NULL);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	unsigned char msg[2000], rd[10];
	struct tlspair p;
	size_t n;
	int i;

	tp_pair_init(&p, ctx, cc, NULL);
	for (i = 0; i < 10 && !tlsterm_handshake_done(p.t); i++) {
		tp_client_step(&p);
		tp_pump_in(&p);
		tp_server_read(&p);
		if (!tlsterm_handshake_done(p.t))
			tp_pump_out(&p);
	}
	tp_fill(msg, sizeof(msg), 2);
	cr_assert_eq(SSL_write(p.c, msg, 1000), 1000);
	/* Half a record fed: the server's tickets drain, no hand-off. */
	n = (size_t)BIO_read(p.cout, msg, sizeof(msg));
	cr_assert_eq(tlsterm_feed(p.t, msg, 500), 0);
	cr_assert_eq(tlsterm_read(p.t, rd, sizeof(rd)), 0);
	while (tp_pump_out(&p))
		;
	tlsterm_trim(p.t);
	cr_assert_not(tlsterm_handed_off(p.t));
	/* The rest fed, some read: plaintext waits in OpenSSL. */
	cr_assert_eq(tlsterm_feed(p.t, msg + 500, n - 500), 0);
	cr_assert_eq(tlsterm_read(p.t, rd, sizeof(rd)), (ssize_t)sizeof(rd));
	tlsterm_trim(p.t);
	cr_assert_not(tlsterm_handed_off(p.t));
	tp_server_read(&p);
	cr_assert_eq(p.srv_rx.len, 1000 - sizeof(rd));
	tlsterm_trim(p.t);
	cr_assert(tlsterm_handed_off(p.t));
	tp_client_step(&p);
	tp_echo(&p, 3000, 1000);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

/* TLS 1.2, a suite we do not implement, or the switch off: OpenSSL stays. */
static void
check_stays(struct tlsterm_ctx *ctx, SSL_CTX *cc)
{
	struct tlspair p;

	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	tlsterm_trim(p.t);
	cr_assert_not(tlsterm_handed_off(p.t));
	tp_echo(&p, 40000, 3000);
	tlsterm_trim(p.t);
	cr_assert_not(tlsterm_handed_off(p.t));
	cr_assert_eq(tlsterm_take_events(p.t), 0);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(handoff, refused_for_tls12)
{
	check_stays(ctx_new(true, NULL), client_ctx(TLS1_2_VERSION, NULL));
}

Test(handoff, refused_for_ccm_suite)
{
	check_stays(ctx_new(true, "TLS_AES_128_CCM_SHA256"),
		    client_ctx(TLS1_3_VERSION, "TLS_AES_128_CCM_SHA256"));
}

Test(handoff, not_with_openssl_record_layer)
{
	check_stays(ctx_new(false, NULL), client_ctx(TLS1_3_VERSION, NULL));
}

/* A KeyUpdate under OpenSSL before the hand-off: the secrets we hold are
 * stale, so it never hands off. */
Test(handoff, refused_after_key_update_under_openssl)
{
	struct tlsterm_ctx *ctx = ctx_new(true, NULL);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	struct tlspair p;
	int i;

	tp_pair_init(&p, ctx, cc, NULL);
	for (i = 0; i < 10 && !tlsterm_handshake_done(p.t); i++) {
		tp_client_step(&p);
		tp_pump_in(&p);
		tp_server_read(&p);
		if (!tlsterm_handshake_done(p.t))
			tp_pump_out(&p);
	}
	cr_assert_eq(SSL_key_update(p.c, SSL_KEY_UPDATE_REQUESTED), 1);
	cr_assert_eq(SSL_write(p.c, "x", 1), 1);
	tp_settle(&p);
	tlsterm_trim(p.t);
	cr_assert_not(tlsterm_handed_off(p.t));
	tp_echo(&p, 2000, 500);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

static void
handed_off_pair(struct tlspair *p, struct tlsterm_ctx **ctx, SSL_CTX **cc)
{
	*ctx = ctx_new(true, NULL);
	*cc = client_ctx(TLS1_3_VERSION, NULL);
	tp_pair_init(p, *ctx, *cc, NULL);
	tp_handshake(p);
	cr_assert(tlsterm_handed_off(p->t));
	(void)tlsterm_take_events(p->t);
}

/* Record boundaries anywhere: the client's records fed a byte at a time,
 * and read through a buffer smaller than a record. */
Test(handoff, byte_by_byte_and_small_reads)
{
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc;
	struct tlspair p;

	handed_off_pair(&p, &ctx, &cc);
	p.feed_chunk = 1;
	tp_echo(&p, 3000, 250);
	p.feed_chunk = 7;
	tp_echo(&p, 40000, 16384);
	p.feed_chunk = 0;
	p.read_len = 100;
	tp_echo(&p, 40000, 16384);
	cr_assert(tlsterm_in_empty(p.t));
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

static void
key_update(int req)
{
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc;
	struct tlspair p;

	handed_off_pair(&p, &ctx, &cc);
	tp_echo(&p, 1000, 100);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(SSL_key_update(p.c, req), 1);
		tp_echo(&p, 3000, 1000);	/* the client's update goes with its first record */
		cr_assert_eq(tlsterm_take_events(p.t), TLSTERM_EV_KEY_UPDATE);
	}
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(handoff, client_key_update_not_requested)
{
	key_update(SSL_KEY_UPDATE_NOT_REQUESTED);
}

Test(handoff, client_key_update_requested)
{
	key_update(SSL_KEY_UPDATE_REQUESTED);
}

Test(handoff, close_notify_from_client)
{
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc;
	struct tlspair p;

	handed_off_pair(&p, &ctx, &cc);
	tp_echo(&p, 1000, 1000);
	cr_assert_eq(SSL_shutdown(p.c), 0);
	tp_pump_in(&p);
	tp_server_read(&p);
	cr_assert_eq(p.srv_err, -ECONNRESET);
	cr_assert_not(tlsterm_in_empty(p.t));
	tlsterm_shutdown(p.t);	/* what conn_close(c, true) does */
	tp_pump_out(&p);
	cr_assert_eq(SSL_shutdown(p.c), 1);	/* our close_notify arrived */
	cr_assert_eq(tlsterm_write(p.t, "x", 1), -EPROTO);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(handoff, close_notify_from_server)
{
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc;
	struct tlspair p;

	handed_off_pair(&p, &ctx, &cc);
	cr_assert_eq(tlsterm_write(p.t, "bye", 3), 3);
	tlsterm_shutdown(p.t);
	tlsterm_shutdown(p.t);	/* only one */
	tp_pump_out(&p);
	tp_client_step(&p);
	cr_assert_eq(p.cli_err, SSL_ERROR_ZERO_RETURN);
	cr_assert_eq(p.cli_rx.len, 3);
	cr_assert_eq(tlsterm_write(p.t, "x", 1), -EPROTO);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

/* A corrupted record: an error, counted, and a bad_record_mac alert that
 * the client understands. */
Test(handoff, corrupted_record)
{
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc;
	unsigned char rec[200];
	struct tlspair p;
	int n;

	handed_off_pair(&p, &ctx, &cc);
	tp_echo(&p, 100, 100);
	cr_assert_eq(SSL_write(p.c, "hello", 5), 5);
	n = BIO_read(p.cout, rec, sizeof(rec));
	cr_assert_gt(n, 10);
	rec[n - 3] ^= 0x40;
	cr_assert_eq(tlsterm_feed(p.t, rec, (size_t)n), 0);
	cr_assert_not(tlsterm_in_empty(p.t));
	tp_server_read(&p);
	cr_assert_eq(p.srv_err, -EPROTO);
	cr_assert_eq(tlsterm_take_events(p.t), TLSTERM_EV_BAD_MAC);
	cr_assert_not(tlsterm_in_empty(p.t));
	cr_assert_eq(tlsterm_read(p.t, rec, sizeof(rec)), -EPROTO);
	tp_pump_out(&p);
	tp_client_step(&p);
	cr_assert_eq(p.cli_err, SSL_ERROR_SSL);
	cr_assert_eq(ERR_GET_REASON(ERR_peek_error()), SSL_R_SSLV3_ALERT_BAD_RECORD_MAC);
	ERR_clear_error();
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

/* A record header longer than TLS allows is an error before its body. */
Test(handoff, oversized_record)
{
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc;
	const unsigned char hdr[5] = { 23, 3, 3, 0x48, 0x01 };	/* 2^14 + 2049 */
	struct tlspair p;

	handed_off_pair(&p, &ctx, &cc);
	cr_assert_eq(tlsterm_feed(p.t, hdr, sizeof(hdr)), 0);
	cr_assert_not(tlsterm_in_empty(p.t));
	tp_server_read(&p);
	cr_assert_eq(p.srv_err, -EPROTO);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

static size_t
heap_used(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

/* What an idle handed-off session still holds, against one on OpenSSL. */
static size_t
idle_bytes(bool own)
{
	enum { N = 100 };
	struct tlsterm_ctx *ctx = ctx_new(own, NULL);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	static struct tlspair p[N];
	size_t total = 0;

	for (int i = 0; i < N; i++) {
		tp_pair_init(&p[i], ctx, cc, NULL);
		tp_handshake(&p[i]);
		tp_echo(&p[i], 2000, 700);
		tlsterm_trim(p[i].t);
		cr_assert_eq(tlsterm_handed_off(p[i].t), own);
		SSL_free(p[i].c);
		p[i].c = NULL;
		free(p[i].srv_rx.p);
		free(p[i].cli_rx.p);
	}
	for (int i = 0; i < N; i++) {
		size_t before = heap_used();

		tlsterm_free(p[i].t);
		total += before - heap_used();
	}
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
	return total / N;
}

Test(handoff, idle_memory)
{
	size_t openssl = idle_bytes(false), own = idle_bytes(true);

	cr_log_info("idle session: %zu bytes on OpenSSL, %zu handed off", openssl, own);
#ifndef __SANITIZE_ADDRESS__	/* ASan's allocator is not glibc's: no mallinfo2 */
	cr_assert_gt(own, 0);
	cr_assert_lt(own, 4096, "%zu bytes per handed-off session", own);
	cr_assert_lt(own * 4, openssl);
#endif
}

/* HelloRetryRequest: the client's key share is for ffdhe2048, which the
 * policy (tlspolicy.h) does not take; X25519, its second group, is. The
 * retry changes no application-key count. */
static int server_hellos;

static void
count_server_hellos(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
		    void *arg)
{
	(void)version;
	(void)ssl;
	(void)arg;
	if (!write_p && type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const unsigned char *)buf)[0] == SSL3_MT_SERVER_HELLO)
		server_hellos++;
}

Test(handoff, after_hello_retry_request)
{
	struct tlsterm_ctx *ctx = ctx_new(true, NULL);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	struct tlspair p;

	cr_assert_eq(SSL_CTX_set1_groups_list(cc, "ffdhe2048:X25519"), 1);
	SSL_CTX_set_msg_callback(cc, count_server_hellos);
	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	cr_assert_eq(server_hellos, 2, "no HelloRetryRequest (%d ServerHellos)", server_hellos);
	cr_assert(tlsterm_handed_off(p.t));
	tp_echo(&p, 20000, 3000);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

/* The server's records under its application key as the message callback
 * counted them: one fewer than went out (a callback that missed one) must
 * keep the session on OpenSSL, not reuse a nonce on our layer. */
static void
check_write_count(int delta)
{
	struct tlsterm_ctx *ctx = ctx_new(true, NULL);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	struct tlspair p;

	tp_pair_init(&p, ctx, cc, NULL);
	tp_client_step(&p);		/* ClientHello */
	tp_pump_in(&p);
	tp_server_read(&p);		/* ServerHello ... Finished */
	tp_pump_out(&p);
	tp_client_step(&p);		/* the client's Finished */
	tp_pump_in(&p);
	tp_server_read(&p);		/* and the server's ticket, not yet sent */
	cr_assert(tlsterm_handshake_done(p.t));
	cr_assert_not(tlsterm_handed_off(p.t));
	cr_assert_gt(p.t->wr_seq, 0);
	p.t->wr_seq += (uint64_t)delta;
	p.t->wr_all += (uint64_t)delta;
	tp_handshake(&p);
	tlsterm_trim(p.t);
	cr_assert_not(tlsterm_handed_off(p.t), "handed off with a wrong write count");
	tp_echo(&p, 5000, 1000);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(handoff, refused_when_write_count_low)
{
	check_write_count(-1);
}

Test(handoff, refused_when_write_count_high)
{
	check_write_count(1);
}

/* Only the OpenSSL versions the suite runs against. */
Test(handoff, openssl_versions)
{
	cr_assert(tlsterm_handoff_version_ok(0x30000000UL));	/* 3.0.0 */
	cr_assert(tlsterm_handoff_version_ok(0x30000160UL));	/* 3.0.22 */
	cr_assert(tlsterm_handoff_version_ok(OpenSSL_version_num()));	/* this suite's */
	cr_assert_not(tlsterm_handoff_version_ok(0x30100000UL));	/* 3.1.0 */
	cr_assert_not(tlsterm_handoff_version_ok(0x30200000UL));	/* 3.2.0 */
	cr_assert_not(tlsterm_handoff_version_ok(0x30500010UL));
	cr_assert_not(tlsterm_handoff_version_ok(0x1010117fUL));	/* 1.1.1w */
	cr_assert_not(tlsterm_handoff_version_ok(0x40000000UL));
}

/* A KeyUpdate split so that its first record holds 2 bytes, fed before the
 * hand-off: OpenSSL keeps the piece, so the session must stay there and
 * take the rest (which our layer, without the piece, would refuse). */
Test(handoff, refused_with_handshake_fragment_held)
{
	static const uint8_t head[2] = { 24, 0 }, tail[3] = { 0, 1, 0 };
	struct tlsterm_ctx *ctx = ctx_new(true, NULL);
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	struct tlsrec_dir cw = { 0 };
	uint8_t rec[64];
	unsigned char got[16];
	struct tlspair p;
	ssize_t n;
	uint16_t suite;

	tp_pair_init(&p, ctx, cc, NULL);
	tp_client_step(&p);
	tp_pump_in(&p);
	tp_server_read(&p);
	tp_pump_out(&p);
	tp_client_step(&p);
	tp_pump_in(&p);
	tp_server_read(&p);		/* Finished read; the ticket waits */
	cr_assert(tlsterm_handshake_done(p.t));
	cr_assert(p.t->have_rd);
	suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p.t->ssl));
	cr_assert_eq(tlsrec_init(&cw, suite, p.t->rd.secret, p.t->secret_len, 0, true), 0);
	n = tlsrec_seal(&cw, TLSREC_CT_HANDSHAKE, head, sizeof(head), rec);
	cr_assert_eq(tlsterm_feed(p.t, rec, (size_t)n), 0);
	cr_assert_eq(tlsterm_read(p.t, got, sizeof(got)), 0);
	while (tp_pump_out(&p))		/* drained: the moment it would hand off */
		;
	tlsterm_trim(p.t);
	cr_assert_not(tlsterm_handed_off(p.t));
	n = tlsrec_seal(&cw, TLSREC_CT_HANDSHAKE, tail, sizeof(tail), rec);
	cr_assert_eq(tlsterm_feed(p.t, rec, (size_t)n), 0);
	cr_assert_eq(tlsrec_update(&cw), 0);
	n = tlsrec_seal(&cw, TLSREC_CT_APPDATA, "hi", 2, rec);
	cr_assert_eq(tlsterm_feed(p.t, rec, (size_t)n), 0);
	cr_assert_eq(tlsterm_read(p.t, got, sizeof(got)), 2);
	cr_assert_eq(memcmp(got, "hi", 2), 0);
	tlsrec_wipe(&cw);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

static bool
all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* A TLS 1.3 session that stays on OpenSSL (a suite we do not implement)
 * does not keep the traffic secrets captured for a hand-off. */
Test(handoff, secrets_wiped_when_staying)
{
	struct tlsterm_ctx *ctx = ctx_new(true, "TLS_AES_128_CCM_SHA256");
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, "TLS_AES_128_CCM_SHA256");
	struct tlspair p;

	tp_pair_init(&p, ctx, cc, NULL);
	tp_handshake(&p);
	tlsterm_trim(p.t);
	cr_assert_not(tlsterm_handed_off(p.t));
	cr_assert(all_zero(p.t->rd.secret, sizeof(p.t->rd.secret)), "client secret kept");
	cr_assert(all_zero(p.t->wr.secret, sizeof(p.t->wr.secret)), "server secret kept");
	tp_echo(&p, 1000, 1000);
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

/* Content opened in our input buffer (a read buffer smaller than the
 * record) is wiped there once read. */
Test(handoff, read_plaintext_not_left_in_buffer)
{
	static const char marker[] = "PLAINTEXT-MARKER-0123456789";
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc;
	struct tlspair p;
	char msg[3000];

	handed_off_pair(&p, &ctx, &cc);
	for (size_t i = 0; i + sizeof(marker) <= sizeof(msg); i += sizeof(marker) - 1)
		memcpy(msg + i, marker, sizeof(marker) - 1);
	memset(msg + sizeof(msg) - 100, 'x', 100);
	p.read_len = 100;
	cr_assert_eq(SSL_write(p.c, msg, sizeof(msg)), (int)sizeof(msg));
	tp_settle(&p);
	cr_assert_eq(p.srv_rx.len, sizeof(msg));
	cr_assert_not_null(p.t->in);
	cr_assert_null(memmem(p.t->in, p.t->in_cap, "MARKER", 6), "plaintext left in <in>");
	tp_pair_fini(&p);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

/* One session of <ctx> resuming <sess> (NULL: none); its client's session
 * back in *out when <out> is not NULL. True when it was resumed. */
static bool
session_round(struct tlsterm_ctx *ctx, SSL_CTX *cc, SSL_SESSION *sess, SSL_SESSION **out,
	      bool corrupt)
{
	unsigned char rec[200];
	struct tlspair p;
	bool reused;
	int n;

	tp_pair_init(&p, ctx, cc, sess);
	tp_handshake(&p);
	tp_echo(&p, 100, 100);		/* the client has read its ticket */
	cr_assert(tlsterm_handed_off(p.t));
	reused = tlsterm_session_reused(p.t);
	if (out != NULL)
		*out = SSL_get1_session(p.c);
	if (corrupt) {
		cr_assert_eq(SSL_write(p.c, "hello", 5), 5);
		n = BIO_read(p.cout, rec, sizeof(rec));
		rec[n - 3] ^= 0x40;
		cr_assert_eq(tlsterm_feed(p.t, rec, (size_t)n), 0);
		tp_server_read(&p);
		cr_assert_eq(p.srv_err, -EPROTO);
	}
	/* The client keeps offering the session: its SSL_free() would mark
	 * it not resumable unless shut down. */
	SSL_set_shutdown(p.c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	tp_pair_fini(&p);
	return reused;
}

/* After a fatal error on our layer, the session leaves the server's cache
 * (or, with stateless tickets, is revoked): a client that comes back with
 * it gets a full handshake. */
static void
check_not_resumable(bool tickets)
{
	struct tlsterm_settings s = {
		.cert_file = cert, .key_file = key, .session_cache = tickets ? 0 : 128,
		.session_timeout_s = 300, .tickets = tickets, .own_records = true,
	};
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc = client_ctx(TLS1_3_VERSION, NULL);
	SSL_SESSION *sess, *again;
	char err[256];

	SSL_CTX_set_session_cache_mode(cc, SSL_SESS_CACHE_CLIENT);
	ctx = tlsterm_ctx_create(&s, err, sizeof(err));
	cr_assert_not_null(ctx, "%s", err);
	/* A sound session resumes, also after the hand-off... */
	cr_assert_not(session_round(ctx, cc, NULL, &sess, false));
	cr_assert(session_round(ctx, cc, sess, &again, false));
	SSL_SESSION_free(sess);
	SSL_SESSION_free(again);
	/* ...but not one that ended in a bad record on our layer. */
	cr_assert_not(session_round(ctx, cc, NULL, &sess, true));
	cr_assert_not(session_round(ctx, cc, sess, &again, false), "resumed after a fatal error");
	SSL_SESSION_free(sess);
	SSL_SESSION_free(again);
	SSL_CTX_free(cc);
	tlsterm_ctx_put(ctx);
}

Test(handoff, not_resumable_after_fatal_error)
{
	check_not_resumable(false);
}

Test(handoff, not_resumable_after_fatal_error_stateless)
{
	check_not_resumable(true);
}

/* Another version: no hand-off, and the log says so once. */
Test(handoff, other_openssl_version_logged_once)
{
	char line[512] = "";
	FILE *f = tmpfile();
	int saved, n = 0;

	cr_assert_not_null(f);
	saved = dup(STDERR_FILENO);
	cr_assert_neq(dup2(fileno(f), STDERR_FILENO), -1);	/* LOG writes to fd 2 */
	cr_assert(tlsterm_own_records_allowed(OpenSSL_version_num()));
	cr_assert_not(tlsterm_own_records_allowed(0x30200000UL));
	cr_assert_not(tlsterm_own_records_allowed(0x30200000UL));
	cr_assert_not(tlsterm_own_records_allowed(0x30400010UL));
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, "OpenSSL 3.0.x only") != NULL;
	fclose(f);
	cr_assert_eq(n, 1, "%d warnings", n);
}
