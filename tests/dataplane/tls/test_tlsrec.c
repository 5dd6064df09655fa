/* tlsrec against the RFC 8448 traces (§3, "Simple 1-RTT Handshake"):
 * traffic keys and IVs derived from the application traffic secrets, and
 * the application data records both sides send there. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/kdf.h>

#include "dataplane/tls/tlsrec.h"

/* Counts the KDF fetches of tlsrec.c, and fails derivations on request:
 * these definitions take the place of libcrypto's for the whole executable
 * and pass the call on. */
static int kdf_fetches;
static bool kdf_fail;

int
EVP_KDF_derive(EVP_KDF_CTX *ctx, unsigned char *key, size_t keylen, const OSSL_PARAM params[])
{
	int (*real)(EVP_KDF_CTX *, unsigned char *, size_t, const OSSL_PARAM[]);

	if (kdf_fail)
		return 0;
	*(void **)&real = dlsym(RTLD_NEXT, "EVP_KDF_derive");
	return real(ctx, key, keylen, params);
}

EVP_KDF *
EVP_KDF_fetch(OSSL_LIB_CTX *libctx, const char *algorithm, const char *properties)
{
	EVP_KDF *(*real)(OSSL_LIB_CTX *, const char *, const char *);

	kdf_fetches++;
	*(void **)&real = dlsym(RTLD_NEXT, "EVP_KDF_fetch");
	return real(libctx, algorithm, properties);
}

static size_t
unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*h != '\0') {
		unsigned v;

		if (*h == ' ' || *h == '\n') {
			h++;
			continue;
		}
		cr_assert_eq(sscanf(h, "%2x", &v), 1);
		cr_assert_lt(n, cap);
		out[n++] = (uint8_t)v;
		h += 2;
	}
	return n;
}

#define CLI_AP_SECRET "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"
#define SRV_AP_SECRET "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"

/* The client's record (sequence number 0) and the server's (sequence number
 * 1, after its NewSessionTicket) with the 50 bytes 00..31 as content. */
#define CLI_RECORD								\
	"17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea"	\
	"42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b"	\
	"62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4"
#define SRV_RECORD								\
	"17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc"	\
	"32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8"	\
	"fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d"

static void
check_keys(const char *secret_hex, const char *key_hex, const char *iv_hex)
{
	uint8_t secret[32], key[16], iv[12], want_key[16], want_iv[12];

	cr_assert_eq(unhex(secret_hex, secret, sizeof(secret)), 32);
	unhex(key_hex, want_key, sizeof(want_key));
	unhex(iv_hex, want_iv, sizeof(want_iv));
	cr_assert_eq(tlsrec_expand_label("SHA256", secret, 32, "key", NULL, 0, key, 16), 0);
	cr_assert_eq(tlsrec_expand_label("SHA256", secret, 32, "iv", NULL, 0, iv, 12), 0);
	cr_assert_arr_eq(key, want_key, 16);
	cr_assert_arr_eq(iv, want_iv, 12);
}

Test(tlsrec, rfc8448_application_keys)
{
	check_keys(CLI_AP_SECRET, "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9");
	check_keys(SRV_AP_SECRET, "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984");
}

static void
check_record(const char *secret_hex, uint64_t seq, const char *record_hex)
{
	struct tlsrec_dir enc = { 0 }, dec = { 0 };
	uint8_t secret[32], want[128], out[128], content[50];
	size_t wlen;
	ssize_t n;
	uint8_t type = 0;

	for (size_t i = 0; i < sizeof(content); i++)
		content[i] = (uint8_t)i;
	unhex(secret_hex, secret, sizeof(secret));
	wlen = unhex(record_hex, want, sizeof(want));
	cr_assert_eq(tlsrec_init(&enc, TLSREC_AES_128_GCM_SHA256, secret, 32, seq, true), 0);
	cr_assert_eq(tlsrec_init(&dec, TLSREC_AES_128_GCM_SHA256, secret, 32, seq, false), 0);
	n = tlsrec_seal(&enc, TLSREC_CT_APPDATA, content, sizeof(content), out);
	cr_assert_eq(n, (ssize_t)wlen);
	cr_assert_arr_eq(out, want, wlen);
	/* Opened in place. */
	n = tlsrec_open(&dec, want, wlen, want + TLSREC_HDR, &type);
	cr_assert_eq(n, (ssize_t)sizeof(content));
	cr_assert_eq(type, TLSREC_CT_APPDATA);
	cr_assert_arr_eq(want + TLSREC_HDR, content, sizeof(content));
	cr_assert_eq(enc.seq, seq + 1);
	cr_assert_eq(dec.seq, seq + 1);
	/* The same record again: the next sequence number, so it fails. */
	unhex(record_hex, want, sizeof(want));
	cr_assert_eq(tlsrec_open(&dec, want, wlen, out, &type), -EBADMSG);
	tlsrec_wipe(&enc);
	tlsrec_wipe(&dec);
	cr_assert_null(enc.aead);
}

Test(tlsrec, rfc8448_application_records)
{
	check_record(CLI_AP_SECRET, 0, CLI_RECORD);
	check_record(SRV_AP_SECRET, 1, SRV_RECORD);
}

/* Every suite: round trips, padding stripped, limits, tampering, update. */
Test(tlsrec, suites_round_trip_and_limits)
{
	static const uint16_t ids[] = { TLSREC_AES_128_GCM_SHA256, TLSREC_AES_256_GCM_SHA384,
					TLSREC_CHACHA20_POLY1305_SHA256 };
	static uint8_t plain[TLSREC_MAX_PLAIN + 1], rec[TLSREC_MAX_CIPHER + 64],
		back[TLSREC_MAX_PLAIN + 64];
	uint8_t secret[48];

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7);
	memset(secret, 0x5a, sizeof(secret));
	for (size_t s = 0; s < 3; s++) {
		struct tlsrec_dir e = { 0 }, d = { 0 };
		size_t slen = tlsrec_secret_len(ids[s]);
		static const size_t sizes[] = { 0, 1, 100, TLSREC_MAX_PLAIN };
		uint8_t type;
		ssize_t n;

		cr_assert(tlsrec_suite_supported(ids[s]));
		cr_assert_eq(tlsrec_init(&e, ids[s], secret, slen - 1, 0, true), -EINVAL);
		cr_assert_eq(tlsrec_init(&e, ids[s], secret, slen, 7, true), 0);
		cr_assert_eq(tlsrec_init(&d, ids[s], secret, slen, 7, false), 0);
		for (size_t k = 0; k < 4; k++) {
			n = tlsrec_seal(&e, TLSREC_CT_APPDATA, plain, sizes[k], rec);
			cr_assert_eq(n, (ssize_t)tlsrec_sealed_len(sizes[k]));
			n = tlsrec_open(&d, rec, (size_t)n, back, &type);
			cr_assert_eq(n, (ssize_t)sizes[k]);
			cr_assert_eq(type, TLSREC_CT_APPDATA);
			cr_assert_arr_eq(back, plain, sizes[k]);
		}
		cr_assert_eq(tlsrec_seal(&e, TLSREC_CT_APPDATA, plain, TLSREC_MAX_PLAIN + 1, rec),
			     -EMSGSIZE);
		/* Tampering with the header (the additional data) or the body. */
		n = tlsrec_seal(&e, TLSREC_CT_HANDSHAKE, plain, 5, rec);
		rec[TLSREC_HDR + 2] ^= 1;
		cr_assert_eq(tlsrec_open(&d, rec, (size_t)n, back, &type), -EBADMSG);
		/* Both move to the next generation and agree again. */
		cr_assert_eq(tlsrec_update(&e), 0);
		cr_assert_eq(tlsrec_update(&d), 0);
		cr_assert_eq(e.seq, 0);
		n = tlsrec_seal(&e, TLSREC_CT_ALERT, plain, 2, rec);
		cr_assert_eq(tlsrec_open(&d, rec, (size_t)n, back, &type), 2);
		cr_assert_eq(type, TLSREC_CT_ALERT);
		/* Not the outer type 23, or a length the header does not say. */
		n = tlsrec_seal(&e, TLSREC_CT_APPDATA, plain, 3, rec);
		rec[0] = TLSREC_CT_HANDSHAKE;
		cr_assert_eq(tlsrec_open(&d, rec, (size_t)n, back, &type), -EPROTO);
		rec[0] = TLSREC_CT_APPDATA;
		cr_assert_eq(tlsrec_open(&d, rec, (size_t)n - 1, back, &type), -EMSGSIZE);
		tlsrec_trim(&e);	/* idle: the context goes, the keys stay */
		cr_assert_null(e.aead);
		cr_assert_eq(tlsrec_seal(&e, TLSREC_CT_APPDATA, plain, 1, rec), 23);
		cr_assert_eq(tlsrec_wants_update(&e), false);
		tlsrec_wipe(&e);
		tlsrec_wipe(&d);
	}
	cr_assert_not(tlsrec_suite_supported(0x1304));	/* TLS_AES_128_CCM_SHA256 */
}

/* Zero padding after the type is stripped; all-zero content is an error. */
Test(tlsrec, padding_and_missing_type)
{
	struct tlsrec_dir e = { 0 }, d = { 0 };
	uint8_t secret[32] = { 1 }, rec[64], back[64], padded[8] = { 'h', 'i', 23, 0, 0, 0 };
	uint8_t type;
	ssize_t n;

	cr_assert_eq(tlsrec_init(&e, TLSREC_AES_128_GCM_SHA256, secret, 32, 0, true), 0);
	cr_assert_eq(tlsrec_init(&d, TLSREC_AES_128_GCM_SHA256, secret, 32, 0, false), 0);
	/* Seal "hi" + type 23 + zeros as the content of a type-0 record: the
	 * inner plaintext is then exactly "hi", 23, 0, 0, 0, 0. */
	n = tlsrec_seal(&e, 0, padded, 5, rec);
	cr_assert_eq(tlsrec_open(&d, rec, (size_t)n, back, &type), 2);
	cr_assert_eq(type, 23);
	n = tlsrec_seal(&e, 0, padded + 3, 3, rec);
	cr_assert_eq(tlsrec_open(&d, rec, (size_t)n, back, &type), -EPROTO);
	tlsrec_wipe(&e);
	tlsrec_wipe(&d);
}

/* A KeyUpdate costs a key derivation, not a fetch of the KDF from the
 * provider store (once per process). */
Test(tlsrec, kdf_fetched_once)
{
	struct tlsrec_dir d = { 0 };
	uint8_t secret[48] = { 1 };

	cr_assert_eq(tlsrec_init(&d, TLSREC_AES_256_GCM_SHA384, secret, 48, 0, true), 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(tlsrec_update(&d), 0);
	cr_assert_leq(kdf_fetches, 1, "%d fetches for 101 key schedules", kdf_fetches);
	tlsrec_wipe(&d);
}

/* A key update that fails leaves the direction dead: sealing or opening
 * with the old key at sequence number 0 would reuse a nonce. */
Test(tlsrec, failed_update_is_dead)
{
	struct tlsrec_dir e = { 0 }, d = { 0 };
	uint8_t secret[32] = { 2 }, rec[64], back[64], type;
	ssize_t n;

	cr_assert_eq(tlsrec_init(&e, TLSREC_AES_128_GCM_SHA256, secret, 32, 5, true), 0);
	cr_assert_eq(tlsrec_init(&d, TLSREC_AES_128_GCM_SHA256, secret, 32, 5, false), 0);
	n = tlsrec_seal(&e, TLSREC_CT_APPDATA, "abc", 3, rec);
	cr_assert_eq(tlsrec_open(&d, rec, (size_t)n, back, &type), 3);
	kdf_fail = true;
	cr_assert_lt(tlsrec_update(&e), 0);
	cr_assert_lt(tlsrec_update(&d), 0);
	kdf_fail = false;
	cr_assert_lt(tlsrec_seal(&e, TLSREC_CT_APPDATA, "abc", 3, rec), 0);
	memcpy(rec, "\x17\x03\x03\x00\x14", 5);
	cr_assert_lt(tlsrec_open(&d, rec, 25, back, &type), 0);
	for (size_t i = 0; i < sizeof(e.key); i++)
		cr_assert_eq(e.key[i] | d.key[i], 0);
}

/* A record that fails authentication leaves no plaintext behind in the
 * buffer it was opened into (the caller's, on our layer). */
Test(tlsrec, failed_tag_wipes_output)
{
	struct tlsrec_dir e = { 0 }, d = { 0 };
	static const char msg[] = "attack at dawn, bring the secret";
	uint8_t secret[32] = { 3 }, rec[128], back[128], type;
	ssize_t n;

	cr_assert_eq(tlsrec_init(&e, TLSREC_CHACHA20_POLY1305_SHA256, secret, 32, 0, true), 0);
	cr_assert_eq(tlsrec_init(&d, TLSREC_CHACHA20_POLY1305_SHA256, secret, 32, 0, false), 0);
	n = tlsrec_seal(&e, TLSREC_CT_APPDATA, msg, sizeof(msg), rec);
	rec[n - 1] ^= 1;		/* the tag only: the body decrypts fine */
	memset(back, 0xaa, sizeof(back));
	cr_assert_eq(tlsrec_open(&d, rec, (size_t)n, back, &type), -EBADMSG);
	cr_assert_null(memmem(back, sizeof(back), "attack", 6), "plaintext left in the buffer");
	for (size_t i = 0; i < sizeof(msg) + 1; i++)
		cr_assert_eq(back[i], 0);
	tlsrec_wipe(&e);
	tlsrec_wipe(&d);
}
