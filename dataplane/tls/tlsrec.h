/* TLS 1.3 record protection (RFC 8446 §5.2-5.5) and traffic keys (§7.1-7.3).
 *
 * One struct tlsrec_dir is one direction of one connection: the current
 * traffic secret, the key and IV derived from it, and the sequence number of
 * the next record. Pure crypto: EVP AEAD and the HKDF KDF of OpenSSL, no SSL
 * object. tlsterm.c uses two of them to replace OpenSSL's record layer once a
 * TLS 1.3 handshake is over.
 *
 * The AEAD context is created on the first record and freed by tlsrec_trim(),
 * so an idle direction costs only the struct. Secrets and keys are wiped by
 * tlsrec_wipe(). */
#ifndef PARLEY_TLSREC_H
#define PARLEY_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TLSREC_HDR		5
#define TLSREC_TAG		16
#define TLSREC_MAX_PLAIN	16384			/* 2^14 */
#define TLSREC_MAX_CIPHER	(TLSREC_MAX_PLAIN + 256)	/* TLSCiphertext.length */
#define TLSREC_SECRET_MAX	48

/* Record content types (RFC 8446 §5.1). */
#define TLSREC_CT_CCS		20
#define TLSREC_CT_ALERT		21
#define TLSREC_CT_HANDSHAKE	22
#define TLSREC_CT_APPDATA	23

/* TLS 1.3 cipher suites this layer implements (their IANA numbers). */
#define TLSREC_AES_128_GCM_SHA256	0x1301
#define TLSREC_AES_256_GCM_SHA384	0x1302
#define TLSREC_CHACHA20_POLY1305_SHA256	0x1303

struct evp_cipher_ctx_st;

/* Fields are tlsrec.c's; the struct is public only so that it can be
 * embedded. A zeroed struct is "not initialised" and safe to wipe. */
struct tlsrec_dir {
	struct evp_cipher_ctx_st *aead;	/* NULL while idle */
	uint64_t seq;			/* of the next record */
	uint16_t suite;
	uint8_t secret_len;
	uint8_t key_len;
	bool enc;			/* seals (true) or opens */
	uint8_t secret[TLSREC_SECRET_MAX];
	uint8_t key[32];
	uint8_t iv[12];
};

/* True for the three suites above. */
bool tlsrec_suite_supported(uint16_t suite);
/* Length of the suite's hash (and so of its traffic secrets); 0 if unknown. */
size_t tlsrec_secret_len(uint16_t suite);

/* HKDF-Expand-Label(secret, label, context, outlen) with the hash named
 * <md> ("SHA256", "SHA384"); <label> without the "tls13 " prefix. 0 or
 * -EINVAL / -ENOMEM. */
int tlsrec_expand_label(const char *md, const uint8_t *secret, size_t secret_len,
			const char *label, const uint8_t *context, size_t context_len,
			uint8_t *out, size_t outlen);

/* Sets <d> to traffic secret <secret> (may alias d->secret) of <suite>, with
 * <seq> the number of the next record; <enc>: this side seals. 0, or
 * -EINVAL (unsupported suite, wrong secret length) or -ENOMEM. */
int tlsrec_init(struct tlsrec_dir *d, uint16_t suite, const uint8_t *secret, size_t secret_len,
		uint64_t seq, bool enc);

/* Moves <d> to the next traffic secret (RFC 8446 §7.2, "traffic upd") with
 * sequence number 0, as a KeyUpdate requires. 0 or -errno; on error <d> is
 * wiped and every later seal or open fails. */
int tlsrec_update(struct tlsrec_dir *d);

/* Bytes one record with <n> bytes of content takes on the wire. */
static inline size_t
tlsrec_sealed_len(size_t n)
{
	return TLSREC_HDR + n + 1 + TLSREC_TAG;
}

/* Seals <n> <= TLSREC_MAX_PLAIN bytes of content of type <type> into one
 * record (header included) at <out>, which has room for
 * tlsrec_sealed_len(n) bytes and does not overlap <in>. No padding. Returns
 * the record's length, or -EOVERFLOW (sequence numbers exhausted), -ENOMEM,
 * -EIO. */
ssize_t tlsrec_seal(struct tlsrec_dir *d, uint8_t type, const void *in, size_t n, uint8_t *out);

/* Opens the record <rec> of <len> bytes (header included; len is exactly
 * TLSREC_HDR plus the header's length). The content goes to <out>, which
 * has room for len - TLSREC_HDR - TLSREC_TAG bytes and may be rec +
 * TLSREC_HDR (in place) or not overlap <rec> at all; its type to *type.
 * Returns the content length, or -EBADMSG (authentication failed; <out>
 * is zeroed, it held unauthenticated plaintext),
 * -EMSGSIZE (too long or too short), -EPROTO (wrong outer type or version,
 * or no content type: unexpected_message / decode_error), -EOVERFLOW,
 * -ENOMEM, -EIO. */
ssize_t tlsrec_open(struct tlsrec_dir *d, const uint8_t *rec, size_t len, uint8_t *out,
		    uint8_t *type);

/* True when <d>, a sealing direction, has protected enough records with its
 * key that the key should change (RFC 8446 §5.5: AES-GCM, 2^24 records). */
bool tlsrec_wants_update(const struct tlsrec_dir *d);

/* Frees the AEAD context of an idle direction (recreated on the next
 * record). */
void tlsrec_trim(struct tlsrec_dir *d);
/* Frees everything and zeroes the secret, key and IV. */
void tlsrec_wipe(struct tlsrec_dir *d);

#endif
