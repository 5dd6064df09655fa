/* Our record layer against a hostile peer: records forged under the
 * client's real keys after the hand-off (the test copies the server's
 * secrets through tlsterm_int.h), and the server's output opened the same
 * way. Floods of KeyUpdates, empty records and warning alerts, and a peer
 * that does not read. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlsrec.h"
#include "dataplane/tls/tlsterm.h"
#include "dataplane/tls/tlsterm_int.h"
#include "tests/dataplane/tls/tlspair.h"

static char dir[] = "/tmp/test_tlshostile.XXXXXX";
static char cert[256], key[256];

static void
setup(void)
{
	char err[256];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/a.crt", dir);
	snprintf(key, sizeof(key), "%s/a.key", dir);
	cr_assert_eq(tlscert_ensure(cert, key, "chat.example.com", 30, err, sizeof(err)), 1, "%s",
		     err);
}

static void
teardown(void)
{
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

TestSuite(hostile, .init = setup, .fini = teardown);

/* A handed-off session, and the client's keys to forge with. */
struct forge {
	struct tlsterm_ctx *ctx;
	SSL_CTX *cc;
	struct tlspair p;
	struct tlsrec_dir cw;	/* the client's write direction */
	struct tlsrec_dir sr;	/* the client's read direction */
	unsigned char buf[1 << 20];	/* records to feed */
	size_t len;
};

/* A handed-off session; the client offers only TLS 1.3 <suites> unless NULL. */
static void
forge_init_suites(struct forge *f, bool own, uint32_t out_max, const char *suites)
{
	struct tlsterm_settings s = {
		.cert_file = cert, .key_file = key, .session_cache = 128, .tickets = true,
		.own_records = own, .out_max = out_max,
	};
	char err[512] = "";

	memset(f, 0, sizeof(*f));
	f->ctx = tlsterm_ctx_create(&s, err, sizeof(err));
	cr_assert_not_null(f->ctx, "%s", err);
	f->cc = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(f->cc);
	if (suites != NULL)
		cr_assert_eq(SSL_CTX_set_ciphersuites(f->cc, suites), 1);
	tp_pair_init(&f->p, f->ctx, f->cc, NULL);
	tp_handshake(&f->p);
	if (!own)
		return;
	cr_assert(tlsterm_handed_off(f->p.t));
	tp_echo(&f->p, 100, 100);
	cr_assert_eq(tlsrec_init(&f->cw, f->p.t->rd.suite, f->p.t->rd.secret,
				 f->p.t->rd.secret_len, f->p.t->rd.seq, true), 0);
	cr_assert_eq(tlsrec_init(&f->sr, f->p.t->wr.suite, f->p.t->wr.secret,
				 f->p.t->wr.secret_len, f->p.t->wr.seq, false), 0);
	(void)tlsterm_take_events(f->p.t);
}

static void
forge_init(struct forge *f, bool own, uint32_t out_max)
{
	forge_init_suites(f, own, out_max, NULL);
}

static void
forge_fini(struct forge *f)
{
	tlsrec_wipe(&f->cw);
	tlsrec_wipe(&f->sr);
	tp_pair_fini(&f->p);
	SSL_CTX_free(f->cc);
	tlsterm_ctx_put(f->ctx);
}

/* Appends one record of <type> to the bytes to feed. */
static void
rec(struct forge *f, uint8_t type, const void *p, size_t n)
{
	ssize_t r;

	cr_assert_leq(f->len + tlsrec_sealed_len(n), sizeof(f->buf));
	r = tlsrec_seal(&f->cw, type, p, n, f->buf + f->len);
	cr_assert_gt(r, 0);
	f->len += (size_t)r;
}

static void
key_update(struct forge *f, bool request)
{
	const uint8_t msg[5] = { 24, 0, 0, 1, request };

	rec(f, TLSREC_CT_HANDSHAKE, msg, sizeof(msg));
	cr_assert_eq(tlsrec_update(&f->cw), 0);
}

static void
alert(struct forge *f, uint8_t level, uint8_t desc)
{
	const uint8_t a[2] = { level, desc };

	rec(f, TLSREC_CT_ALERT, a, sizeof(a));
}

/* Feeds what was forged and reads it all: the last tlsterm_read() result
 * that was not a positive count; the plaintext goes to p.srv_rx. */
static ssize_t
feed_read(struct forge *f)
{
	unsigned char tmp[20000];
	ssize_t n;

	cr_assert_eq(tlsterm_feed(f->p.t, f->buf, f->len), 0);
	f->len = 0;
	f->p.srv_rx.len = 0;
	while ((n = tlsterm_read(f->p.t, tmp, sizeof(tmp))) > 0)
		tp_buf_add(&f->p.srv_rx, tmp, (size_t)n);
	return n;
}

/* What the server sent, opened: the record types in <types> (a string of
 * 'H' handshake, 'A' alert, 'D' data), following its KeyUpdates; the last
 * alert's description in *alert_desc. Consumes the output. */
static void
server_out(struct forge *f, char *types, size_t cap, int *alert_desc)
{
	const void *p;
	size_t len = tlsterm_pending_out(f->p.t, &p), off = 0, k = 0;
	uint8_t tmp[TLSREC_MAX_CIPHER], type;

	while (off < len) {
		const uint8_t *r = (const uint8_t *)p + off;
		size_t rlen = TLSREC_HDR + ((size_t)r[3] << 8 | r[4]);
		ssize_t n;

		cr_assert_leq(off + rlen, len);
		n = tlsrec_open(&f->sr, r, rlen, tmp, &type);
		cr_assert_geq(n, 0, "server record %zu does not open: %zd", k, n);
		cr_assert_lt(k + 1, cap);
		types[k++] = type == TLSREC_CT_HANDSHAKE ? 'H' : type == TLSREC_CT_ALERT ? 'A' : 'D';
		if (type == TLSREC_CT_HANDSHAKE) {
			cr_assert_eq(n, 5);
			cr_assert_eq(tmp[0], 24);
			cr_assert_eq(tmp[4], 0, "the server must not request an update");
			cr_assert_eq(tlsrec_update(&f->sr), 0);
		}
		if (type == TLSREC_CT_ALERT && alert_desc != NULL)
			*alert_desc = tmp[1];
		off += rlen;
	}
	types[k] = '\0';
	tlsterm_consume_out(f->p.t, len);
}

/* Many KeyUpdate requests in a row: one answer, and the keys still agree. */
Test(hostile, key_update_requests_answered_once)
{
	struct forge *f = calloc(1, sizeof(*f));
	char types[64];

	forge_init(f, true, 0);
	for (int i = 0; i < 10; i++)
		key_update(f, true);
	rec(f, TLSREC_CT_APPDATA, "hi", 2);
	cr_assert_eq(feed_read(f), 0);
	cr_assert_eq(f->p.srv_rx.len, 2);
	cr_assert_eq(tlsterm_take_events(f->p.t), TLSTERM_EV_KEY_UPDATE);
	server_out(f, types, sizeof(types), NULL);
	cr_assert_str_eq(types, "H", "server sent %s", types);
	/* Both directions are in step afterwards. */
	rec(f, TLSREC_CT_APPDATA, "again", 5);
	cr_assert_eq(feed_read(f), 0);
	cr_assert_eq(f->p.srv_rx.len, 5);
	cr_assert_eq(tlsterm_write(f->p.t, "yo", 2), 2);
	server_out(f, types, sizeof(types), NULL);
	cr_assert_str_eq(types, "D");
	forge_fini(f);
	free(f);
}

/* Requests with nothing else: answered when the read returns (and only
 * once), so that a peer that waits for the answer gets it. */
Test(hostile, key_update_request_answered_without_data)
{
	struct forge *f = calloc(1, sizeof(*f));
	char types[64];

	forge_init(f, true, 0);
	key_update(f, true);
	key_update(f, true);
	cr_assert_eq(feed_read(f), 0);
	server_out(f, types, sizeof(types), NULL);
	cr_assert_str_eq(types, "H");
	forge_fini(f);
	free(f);
}

/* TLSTERM_KEY_UPDATES_MAX KeyUpdates without data between them pass (and
 * the run starts over after data); one more is unexpected_message. */
Test(hostile, key_update_flood_closes)
{
	struct forge *f = calloc(1, sizeof(*f));
	char types[64];
	int desc = -1;

	forge_init(f, true, 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < TLSTERM_KEY_UPDATES_MAX; i++)
			key_update(f, i % 2);
		rec(f, TLSREC_CT_APPDATA, "x", 1);
	}
	cr_assert_eq(feed_read(f), 0);
	cr_assert_eq(f->p.srv_rx.len, 2);
	server_out(f, types, sizeof(types), NULL);
	/* One answer per read that returned data. */
	cr_assert_str_eq(types, "HH", "server sent %s", types);
	for (int i = 0; i <= TLSTERM_KEY_UPDATES_MAX; i++)
		key_update(f, true);
	rec(f, TLSREC_CT_APPDATA, "x", 1);
	cr_assert_eq(feed_read(f), -EPROTO);
	cr_assert_eq(f->p.srv_rx.len, 0);
	server_out(f, types, sizeof(types), &desc);
	cr_assert_str_eq(types, "A", "server sent %s", types);
	cr_assert_eq(desc, SSL_AD_UNEXPECTED_MESSAGE);
	forge_fini(f);
	free(f);
}

Test(hostile, empty_record_flood_closes)
{
	struct forge *f = calloc(1, sizeof(*f));
	char types[64];
	int desc = -1;

	forge_init(f, true, 0);
	for (int i = 0; i < TLSTERM_EMPTY_RECORDS_MAX; i++)
		rec(f, TLSREC_CT_APPDATA, "", 0);
	rec(f, TLSREC_CT_APPDATA, "x", 1);
	for (int i = 0; i < TLSTERM_EMPTY_RECORDS_MAX; i++)
		rec(f, TLSREC_CT_APPDATA, "", 0);
	rec(f, TLSREC_CT_APPDATA, "y", 1);
	cr_assert_eq(feed_read(f), 0);
	cr_assert_eq(f->p.srv_rx.len, 2);
	for (int i = 0; i <= TLSTERM_EMPTY_RECORDS_MAX; i++)
		rec(f, TLSREC_CT_APPDATA, "", 0);
	cr_assert_eq(feed_read(f), -EPROTO);
	server_out(f, types, sizeof(types), &desc);
	cr_assert_str_eq(types, "A");
	cr_assert_eq(desc, SSL_AD_UNEXPECTED_MESSAGE);
	forge_fini(f);
	free(f);
}

Test(hostile, user_canceled_flood_closes)
{
	struct forge *f = calloc(1, sizeof(*f));
	char types[64];
	int desc = -1;

	forge_init(f, true, 0);
	for (int i = 0; i < TLSTERM_WARN_ALERTS_MAX; i++)
		alert(f, 1, SSL_AD_USER_CANCELLED);
	rec(f, TLSREC_CT_APPDATA, "x", 1);
	for (int i = 0; i < TLSTERM_WARN_ALERTS_MAX; i++)
		alert(f, 1, SSL_AD_USER_CANCELLED);
	rec(f, TLSREC_CT_APPDATA, "y", 1);
	cr_assert_eq(feed_read(f), 0);
	cr_assert_eq(f->p.srv_rx.len, 2);
	for (int i = 0; i <= TLSTERM_WARN_ALERTS_MAX; i++)
		alert(f, 1, SSL_AD_USER_CANCELLED);
	cr_assert_eq(feed_read(f), -EPROTO);
	server_out(f, types, sizeof(types), &desc);
	cr_assert_str_eq(types, "A");
	cr_assert_eq(desc, SSL_AD_UNEXPECTED_MESSAGE);
	forge_fini(f);
	free(f);
}

/* A peer that asks for KeyUpdates but does not read: once our output is
 * over out_max, a read that would answer fails. */
Test(hostile, output_bound_on_read)
{
	struct forge *f = calloc(1, sizeof(*f));
	unsigned char big[5000];
	const void *p;

	forge_init(f, true, 4096);
	memset(big, 'z', sizeof(big));
	cr_assert_eq(tlsterm_write(f->p.t, big, 4000), 4000);
	cr_assert_lt(tlsterm_pending_out(f->p.t, &p), 4096);
	key_update(f, true);
	rec(f, TLSREC_CT_APPDATA, "x", 1);
	cr_assert_eq(feed_read(f), 0);		/* answered */
	cr_assert_eq(tlsterm_write(f->p.t, big, 1000), 1000);
	cr_assert_gt(tlsterm_pending_out(f->p.t, &p), 4096);
	rec(f, TLSREC_CT_APPDATA, "x", 1);
	cr_assert_eq(feed_read(f), 0);		/* nothing to answer */
	key_update(f, true);
	rec(f, TLSREC_CT_APPDATA, "x", 1);
	cr_assert_eq(feed_read(f), -EPROTO);
	forge_fini(f);
	free(f);
}

/* The same on OpenSSL's layer, which answers each request at a later
 * read. */
Test(hostile, output_bound_on_read_openssl)
{
	struct forge *f = calloc(1, sizeof(*f));
	unsigned char big[5000];
	const void *p;
	int i;

	forge_init(f, false, 4096);
	memset(big, 'z', sizeof(big));
	cr_assert_eq(tlsterm_write(f->p.t, big, 5000), 5000);
	for (i = 0; i < 10 && f->p.srv_err == 0; i++) {
		cr_assert_eq(SSL_key_update(f->p.c, SSL_KEY_UPDATE_REQUESTED), 1);
		cr_assert_eq(SSL_write(f->p.c, "x", 1), 1);
		tp_pump_in(&f->p);
		tp_server_read(&f->p);
	}
	cr_assert_eq(f->p.srv_err, -EPROTO, "%d requests answered past the bound", i);
	cr_assert_lt(tlsterm_pending_out(f->p.t, &p), 5100);
	forge_fini(f);
	free(f);
}

/* Feeds one forged record of <type> with <p>, reads, and expects a fatal
 * alert <desc> back. */
static void
check_fatal(struct forge *f, uint8_t type, const void *p, size_t n, int desc)
{
	char types[64];
	int got = -1;

	rec(f, type, p, n);
	cr_assert_eq(feed_read(f), -EPROTO);
	server_out(f, types, sizeof(types), &got);
	cr_assert_str_eq(types, "A");
	cr_assert_eq(got, desc, "alert %d, not %d", got, desc);
}

/* RFC 8446 §5.1: a handshake message may span records; a key change ends
 * its record. */
Test(hostile, key_update_split_across_records)
{
	struct forge *f = calloc(1, sizeof(*f));
	char types[64];

	forge_init(f, true, 0);
	rec(f, TLSREC_CT_HANDSHAKE, "\x18\x00", 2);
	rec(f, TLSREC_CT_HANDSHAKE, "\x00\x01", 2);
	rec(f, TLSREC_CT_HANDSHAKE, "\x01", 1);
	cr_assert_eq(tlsrec_update(&f->cw), 0);
	rec(f, TLSREC_CT_APPDATA, "ok", 2);
	cr_assert_eq(feed_read(f), 0);
	cr_assert_eq(f->p.srv_rx.len, 2);
	server_out(f, types, sizeof(types), NULL);
	cr_assert_str_eq(types, "H");
	forge_fini(f);
	free(f);
}

Test(hostile, key_update_with_more_in_its_record)
{
	struct forge *f = calloc(1, sizeof(*f));

	forge_init(f, true, 0);
	check_fatal(f, TLSREC_CT_HANDSHAKE, "\x18\x00\x00\x01\x00\x18", 6,
		    SSL_AD_UNEXPECTED_MESSAGE);
	forge_fini(f);
	free(f);
}

Test(hostile, key_update_wrong_length)
{
	struct forge *f = calloc(1, sizeof(*f));

	forge_init(f, true, 0);
	check_fatal(f, TLSREC_CT_HANDSHAKE, "\x18\x00\x00\x02\x00\x00", 6, SSL_AD_DECODE_ERROR);
	forge_fini(f);
	free(f);
}

Test(hostile, key_update_bad_request_value)
{
	struct forge *f = calloc(1, sizeof(*f));

	forge_init(f, true, 0);
	check_fatal(f, TLSREC_CT_HANDSHAKE, "\x18\x00\x00\x01\x02", 5, SSL_AD_ILLEGAL_PARAMETER);
	forge_fini(f);
	free(f);
}

Test(hostile, other_handshake_message)
{
	struct forge *f = calloc(1, sizeof(*f));

	forge_init(f, true, 0);
	check_fatal(f, TLSREC_CT_HANDSHAKE, "\x04\x00\x00\x00", 4, SSL_AD_UNEXPECTED_MESSAGE);
	forge_fini(f);
	free(f);
}

Test(hostile, data_inside_a_split_key_update)
{
	struct forge *f = calloc(1, sizeof(*f));

	forge_init(f, true, 0);
	rec(f, TLSREC_CT_HANDSHAKE, "\x18\x00", 2);
	check_fatal(f, TLSREC_CT_APPDATA, "x", 1, SSL_AD_UNEXPECTED_MESSAGE);
	forge_fini(f);
	free(f);
}

Test(hostile, empty_handshake_record)
{
	struct forge *f = calloc(1, sizeof(*f));

	forge_init(f, true, 0);
	check_fatal(f, TLSREC_CT_HANDSHAKE, "", 0, SSL_AD_UNEXPECTED_MESSAGE);
	forge_fini(f);
	free(f);
}

/* The KeyUpdate limit on OpenSSL's layer: <n> updates from a real client,
 * then one byte, all in one feed. */
static ssize_t
openssl_key_updates(struct forge *f, int n)
{
	for (int i = 0; i < n; i++) {
		cr_assert_eq(SSL_key_update(f->p.c, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
		cr_assert_eq(SSL_do_handshake(f->p.c), 1);	/* sends it */
	}
	cr_assert_eq(SSL_write(f->p.c, "x", 1), 1);
	f->p.srv_rx.len = 0;
	f->p.srv_err = 0;
	tp_pump_in(&f->p);
	tp_server_read(&f->p);
	return f->p.srv_err;
}

Test(hostile, key_update_flood_closes_on_openssl_layer)
{
	struct forge *f = calloc(1, sizeof(*f));

	forge_init(f, false, 0);
	cr_assert_eq(openssl_key_updates(f, TLSTERM_KEY_UPDATES_MAX), 0);
	cr_assert_eq(f->p.srv_rx.len, 1);
	cr_assert_eq(openssl_key_updates(f, TLSTERM_KEY_UPDATES_MAX), 0);
	cr_assert_eq(f->p.srv_rx.len, 1);
	cr_assert_eq(openssl_key_updates(f, TLSTERM_KEY_UPDATES_MAX * 10), -EPROTO);
	cr_assert_eq(f->p.srv_rx.len, 0);
	/* OpenSSL stopped at the first one over: no key schedule for the rest. */
	cr_assert_eq(f->p.t->ku_run, TLSTERM_KEY_UPDATES_MAX + 1);
	forge_fini(f);
	free(f);
}

/* Feeds raw bytes (a header we made up) and expects fatal alert <desc>. */
static void
check_raw(const uint8_t *p, size_t n, int desc)
{
	struct forge *f = calloc(1, sizeof(*f));
	char types[64];
	int got = -1;

	forge_init(f, true, 0);
	memcpy(f->buf, p, n);
	f->len = n;
	cr_assert_eq(feed_read(f), -EPROTO);
	server_out(f, types, sizeof(types), &got);
	cr_assert_str_eq(types, "A");
	cr_assert_eq(got, desc, "alert %d, not %d", got, desc);
	forge_fini(f);
	free(f);
}

/* Outer headers as OpenSSL's TLS 1.3 layer answers them: a plaintext
 * record type, a wrong version, a record too short for its tag. */
Test(hostile, outer_header_alerts)
{
	static const uint8_t hs[] = { 22, 3, 3, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				      0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t ver[] = { 23, 3, 1, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				       0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t shortrec[] = { 23, 3, 3, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					    0, 0, 0, 0, 0, 0 };

	check_raw(hs, sizeof(hs), SSL_AD_UNEXPECTED_MESSAGE);
	check_raw(ver, sizeof(ver), SSL_AD_DECODE_ERROR);
	check_raw(shortrec, sizeof(shortrec), SSL_AD_BAD_RECORD_MAC);
}

/* The server's own rekey at the AES-GCM record limit (RFC 8446 §5.5): with
 * its write sequence put just below 2^24 records, two writes go out under
 * the old key, then a KeyUpdate (not requesting one) and the next data
 * under the new key, which the client opens; the client's data still
 * reads. ChaCha20-Poly1305 has no such limit: no KeyUpdate there. */
Test(hostile, server_rekeys_at_the_gcm_record_limit)
{
	static const char *const suites[] = { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
					      "TLS_CHACHA20_POLY1305_SHA256" };
	struct forge *f = calloc(1, sizeof(*f));
	char types[64];

	for (size_t i = 0; i < 3; i++) {
		const uint64_t near = (UINT64_C(1) << 24) - 2;

		forge_init_suites(f, true, 0, suites[i]);
		f->p.t->wr.seq = near;		/* through the internal header */
		f->sr.seq = near;		/* the client reads in step */
		for (int k = 0; k < 3; k++)
			cr_assert_eq(tlsterm_write(f->p.t, "x", 1), 1);
		server_out(f, types, sizeof(types), NULL);
		if (i < 2) {
			cr_assert_str_eq(types, "DDHD", "%s: server sent %s", suites[i], types);
			cr_assert_eq(f->p.t->wr.seq, 1, "new key, second record");
		} else {
			cr_assert_str_eq(types, "DDD", "%s: server sent %s", suites[i], types);
		}
		rec(f, TLSREC_CT_APPDATA, "after", 5);
		cr_assert_eq(feed_read(f), 0);
		cr_assert_eq(f->p.srv_rx.len, 5);
		forge_fini(f);
		memset(f, 0, sizeof(*f));
	}
	free(f);
}
