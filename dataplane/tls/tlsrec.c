/* TLS 1.3 record protection: see tlsrec.h.
 *
 * Keys (RFC 8446 §7.3): key = HKDF-Expand-Label(secret, "key", "", keylen),
 * iv = HKDF-Expand-Label(secret, "iv", "", 12); the next generation of a
 * secret (§7.2) is HKDF-Expand-Label(secret, "traffic upd", "", hashlen).
 * Nonce (§5.3): the IV XOR the 64-bit sequence number, big-endian, aligned
 * right. Additional data (§5.2): the 5-byte record header. The content is
 * followed by its one-byte type and optional zero padding, which we never
 * send and strip when we receive.
 *
 * The AEAD context holds the key; each record sets only the nonce, as
 * OpenSSL's own TLS 1.3 record layer does. */
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "dataplane/tls/tlsrec.h"

#define IV_LEN		12
/* RFC 8446 §5.5: AES-GCM may protect 2^24.5 full-size records per key;
 * change keys a little earlier. ChaCha20-Poly1305 has no practical limit. */
#define GCM_RECORDS_MAX	(UINT64_C(1) << 24)

struct suite {
	uint16_t id;
	uint8_t key_len;
	uint8_t hash_len;
	const char *md;
	const EVP_CIPHER *(*cipher)(void);
};

static const struct suite suites[] = {
	{ TLSREC_AES_128_GCM_SHA256, 16, 32, "SHA256", EVP_aes_128_gcm },
	{ TLSREC_AES_256_GCM_SHA384, 32, 48, "SHA384", EVP_aes_256_gcm },
	{ TLSREC_CHACHA20_POLY1305_SHA256, 32, 32, "SHA256", EVP_chacha20_poly1305 },
};

static const struct suite *
suite_find(uint16_t id)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].id == id)
			return &suites[i];
	return NULL;
}

bool
tlsrec_suite_supported(uint16_t suite)
{
	return suite_find(suite) != NULL;
}

size_t
tlsrec_secret_len(uint16_t suite)
{
	const struct suite *s = suite_find(suite);

	return s != NULL ? s->hash_len : 0;
}

/* The HKDF implementation, fetched once per process: a fetch looks the
 * name up in the provider store under a lock, which cost more than the
 * derivation itself. Never freed (a process-lifetime object). */
static CRYPTO_ONCE hkdf_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_KDF *hkdf;

static void
hkdf_fetch(void)
{
	hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

int
tlsrec_expand_label(const char *md, const uint8_t *secret, size_t secret_len, const char *label,
		    const uint8_t *context, size_t context_len, uint8_t *out, size_t outlen)
{
	static const char prefix[] = "tls13 ";
	uint8_t info[2 + 1 + 255 + 1 + 255], key[TLSREC_SECRET_MAX];
	char mdname[16];
	size_t llen = strlen(label), plen = sizeof(prefix) - 1, n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, ret = -ENOMEM;
	OSSL_PARAM params[5];
	EVP_KDF_CTX *kctx;

	if (plen + llen > 255 || context_len > 255 || outlen > 0xffff ||
	    secret_len > sizeof(key) || strlen(md) >= sizeof(mdname))
		return -EINVAL;
	/* OSSL_PARAM takes non-const pointers: pass copies. */
	memcpy(mdname, md, strlen(md) + 1);
	/* struct HkdfLabel { uint16 length; opaque label<7..255>;
	 * opaque context<0..255>; } */
	info[n++] = (uint8_t)(outlen >> 8);
	info[n++] = (uint8_t)outlen;
	info[n++] = (uint8_t)(plen + llen);
	memcpy(info + n, prefix, plen);
	n += plen;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = (uint8_t)context_len;
	if (context_len > 0)
		memcpy(info + n, context, context_len);
	n += context_len;

	if (!CRYPTO_THREAD_run_once(&hkdf_once, hkdf_fetch) || hkdf == NULL)
		return -ENOMEM;
	kctx = EVP_KDF_CTX_new(hkdf);
	if (kctx == NULL)
		return -ENOMEM;
	memcpy(key, secret, secret_len);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, mdname, 0);
	params[1] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key, secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	params[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		ret = 0;
	else
		ret = -EINVAL;
	EVP_KDF_CTX_free(kctx);
	OPENSSL_cleanse(key, sizeof(key));
	return ret;
}

/* Derives key and IV of <d> from its secret. */
static int
derive(struct tlsrec_dir *d, const struct suite *s)
{
	int ret;

	ret = tlsrec_expand_label(s->md, d->secret, d->secret_len, "key", NULL, 0, d->key,
				  s->key_len);
	if (ret == 0)
		ret = tlsrec_expand_label(s->md, d->secret, d->secret_len, "iv", NULL, 0, d->iv,
					  IV_LEN);
	return ret;
}

int
tlsrec_init(struct tlsrec_dir *d, uint16_t suite, const uint8_t *secret, size_t secret_len,
	    uint64_t seq, bool enc)
{
	const struct suite *s = suite_find(suite);

	if (s == NULL || secret_len != s->hash_len)
		return -EINVAL;
	tlsrec_trim(d);
	memmove(d->secret, secret, secret_len);
	d->secret_len = (uint8_t)secret_len;
	d->suite = suite;
	d->key_len = s->key_len;
	d->seq = seq;
	d->enc = enc;
	return derive(d, s);
}

int
tlsrec_update(struct tlsrec_dir *d)
{
	const struct suite *s = suite_find(d->suite);
	uint8_t next[TLSREC_SECRET_MAX];
	int ret;

	if (s == NULL)
		return -EINVAL;
	ret = tlsrec_expand_label(s->md, d->secret, d->secret_len, "traffic upd", NULL, 0, next,
				  d->secret_len);
	if (ret == 0) {
		memcpy(d->secret, next, d->secret_len);
		ret = derive(d, s);
	}
	OPENSSL_cleanse(next, sizeof(next));
	tlsrec_trim(d);		/* the context holds the old key */
	d->seq = 0;
	if (ret != 0)
		tlsrec_wipe(d);	/* no old key at sequence number 0: dead */
	return ret;
}

/* The AEAD context of <d> with its key set; NULL on allocation failure. */
static EVP_CIPHER_CTX *
aead(struct tlsrec_dir *d)
{
	const struct suite *s;

	if (d->aead != NULL)
		return d->aead;
	s = suite_find(d->suite);
	if (s == NULL)
		return NULL;
	d->aead = EVP_CIPHER_CTX_new();
	if (d->aead == NULL)
		return NULL;
	if (EVP_CipherInit_ex(d->aead, s->cipher(), NULL, d->key, NULL, d->enc ? 1 : 0) != 1) {
		EVP_CIPHER_CTX_free(d->aead);
		d->aead = NULL;
	}
	return d->aead;
}

static void
nonce(const struct tlsrec_dir *d, uint8_t out[IV_LEN])
{
	memcpy(out, d->iv, IV_LEN);
	for (int i = 0; i < 8; i++)
		out[IV_LEN - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

ssize_t
tlsrec_seal(struct tlsrec_dir *d, uint8_t type, const void *in, size_t n, uint8_t *out)
{
	size_t clen = n + 1 + TLSREC_TAG;
	EVP_CIPHER_CTX *c;
	uint8_t iv[IV_LEN];
	int l;

	if (n > TLSREC_MAX_PLAIN)
		return -EMSGSIZE;
	if (d->seq == UINT64_MAX)
		return -EOVERFLOW;	/* RFC 8446 §5.3: never wrap */
	c = aead(d);
	if (c == NULL)
		return -ENOMEM;
	out[0] = TLSREC_CT_APPDATA;
	out[1] = 0x03;
	out[2] = 0x03;
	out[3] = (uint8_t)(clen >> 8);
	out[4] = (uint8_t)clen;
	nonce(d, iv);
	if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &l, out, TLSREC_HDR) != 1 ||
	    (n > 0 && EVP_EncryptUpdate(c, out + TLSREC_HDR, &l, in, (int)n) != 1) ||
	    EVP_EncryptUpdate(c, out + TLSREC_HDR + n, &l, &type, 1) != 1 ||
	    EVP_EncryptFinal_ex(c, out + TLSREC_HDR + n + 1, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TLSREC_TAG,
				out + TLSREC_HDR + n + 1) != 1)
		return -EIO;
	d->seq++;
	return (ssize_t)(TLSREC_HDR + clen);
}

ssize_t
tlsrec_open(struct tlsrec_dir *d, const uint8_t *rec, size_t len, uint8_t *out, uint8_t *type)
{
	size_t clen, plen;
	EVP_CIPHER_CTX *c;
	uint8_t iv[IV_LEN], tag[TLSREC_TAG];
	int l;

	if (len < TLSREC_HDR)
		return -EMSGSIZE;
	clen = len - TLSREC_HDR;
	if (rec[0] != TLSREC_CT_APPDATA || rec[1] != 0x03 || rec[2] != 0x03)
		return -EPROTO;
	if (clen != ((size_t)rec[3] << 8 | rec[4]))
		return -EMSGSIZE;
	/* RFC 8446 §5.2: length over 2^14 + 256 is record_overflow; the
	 * inner plaintext (content and type) is at most 2^14 + 1 bytes. */
	if (clen > TLSREC_MAX_CIPHER || clen < 1 + TLSREC_TAG ||
	    clen - TLSREC_TAG > TLSREC_MAX_PLAIN + 1)
		return -EMSGSIZE;
	if (d->seq == UINT64_MAX)
		return -EOVERFLOW;
	c = aead(d);
	if (c == NULL)
		return -ENOMEM;
	plen = clen - TLSREC_TAG;
	memcpy(tag, rec + TLSREC_HDR + plen, TLSREC_TAG);	/* before <out> may overlap */
	nonce(d, iv);
	if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &l, rec, TLSREC_HDR) != 1 ||
	    EVP_DecryptUpdate(c, out, &l, rec + TLSREC_HDR, (int)plen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TLSREC_TAG, tag) != 1) {
		OPENSSL_cleanse(out, plen);
		return -EIO;
	}
	if (EVP_DecryptFinal_ex(c, out + plen, &l) != 1) {
		/* The stream cipher already wrote the unauthenticated
		 * plaintext to <out>, maybe the caller's buffer. */
		OPENSSL_cleanse(out, plen);
		return -EBADMSG;
	}
	d->seq++;
	/* struct TLSInnerPlaintext { content; ContentType type; zeros[]; } */
	while (plen > 0 && out[plen - 1] == 0)
		plen--;
	if (plen == 0)
		return -EPROTO;
	*type = out[plen - 1];
	return (ssize_t)(plen - 1);
}

bool
tlsrec_wants_update(const struct tlsrec_dir *d)
{
	return d->suite != TLSREC_CHACHA20_POLY1305_SHA256 && d->seq >= GCM_RECORDS_MAX;
}

void
tlsrec_trim(struct tlsrec_dir *d)
{
	EVP_CIPHER_CTX_free(d->aead);	/* cleanses its key schedule */
	d->aead = NULL;
}

void
tlsrec_wipe(struct tlsrec_dir *d)
{
	tlsrec_trim(d);
	OPENSSL_cleanse(d, sizeof(*d));
}
