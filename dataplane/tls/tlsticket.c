/* See tlsticket.h.
 *
 * The ring: three slots, period E's key in slot E % 3. While E is current,
 * tickets of E and E - 1 are accepted, so slot (E + 1) % 3 = (E - 2) % 3
 * is free, and the first handshake of period E + 1 writes its key there
 * (whoever wins the <rotating> flag; the others seal under E meanwhile,
 * which is still accepted). Each slot carries its period in an atomic
 * that is invalid while the key is written and read twice around a copy
 * of the key (a sequence lock), so a reader never uses a half-written key.
 *
 * Key name: 8 random bytes of the ring, then the period, big-endian. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "dataplane/tls/tlsticket.h"

#define SLOTS		3
#define NO_EPOCH	UINT64_MAX
/* Sessions whose tickets may no longer resume (tlsticket_revoke()): the
 * newest REVOKED_MAX, by the first 8 bytes of their id (random). */
#define REVOKED_MAX	512

struct slot {
	_Atomic uint64_t epoch;		/* NO_EPOCH while written */
	uint8_t aes[32];
	uint8_t hmac[32];
};

struct ring {
	uint64_t period_s;
	uint8_t prefix[8];
	_Atomic int64_t skew_s;		/* tlsticket_advance() */
	_Atomic uint64_t ready;		/* newest period with a key; 0: none */
	atomic_bool rotating;
	struct slot slot[SLOTS];
	_Atomic uint32_t revoked_next;
	_Atomic uint64_t revoked[REVOKED_MAX];	/* 0: free */
};

static CRYPTO_ONCE index_once = CRYPTO_ONCE_STATIC_INIT;
static int ring_index = -1;

static void
ring_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr != NULL)
		OPENSSL_clear_free(ptr, sizeof(struct ring));
}

static void
index_new(void)
{
	ring_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ring_free);
}

static struct ring *
ring_of(SSL_CTX *c)
{
	return ring_index < 0 ? NULL : SSL_CTX_get_ex_data(c, ring_index);
}

/* The current period; periods count from 1 so that 0 means "none". */
static uint64_t
epoch_now(struct ring *r)
{
	struct timespec ts;
	int64_t s;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	s = (int64_t)ts.tv_sec + atomic_load_explicit(&r->skew_s, memory_order_relaxed);
	return (uint64_t)(s < 0 ? 0 : s) / r->period_s + 1;
}

/* Copies the key of period <e> out of its slot: false when the slot holds
 * another period's key (or is being written). */
static bool
key_get(struct ring *r, uint64_t e, uint8_t aes[32], uint8_t hmac[32])
{
	struct slot *s = &r->slot[e % SLOTS];

	if (atomic_load_explicit(&s->epoch, memory_order_acquire) != e)
		return false;
	memcpy(aes, s->aes, 32);
	memcpy(hmac, s->hmac, 32);
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&s->epoch, memory_order_relaxed) == e;
}

/* Makes the key of period <e> if no one has: true when it exists. */
static bool
key_make(struct ring *r, uint64_t e)
{
	struct slot *s = &r->slot[e % SLOTS];
	uint8_t fresh[64];
	bool ok = false;

	if (atomic_load_explicit(&r->ready, memory_order_acquire) >= e)
		return true;
	if (atomic_exchange_explicit(&r->rotating, true, memory_order_acquire))
		return false;	/* another thread is at it */
	if (atomic_load_explicit(&r->ready, memory_order_acquire) < e &&
	    RAND_bytes(fresh, sizeof(fresh)) == 1) {
		atomic_store_explicit(&s->epoch, NO_EPOCH, memory_order_relaxed);
		atomic_thread_fence(memory_order_release);
		memcpy(s->aes, fresh, 32);	/* the old key of this slot is gone */
		memcpy(s->hmac, fresh + 32, 32);
		atomic_store_explicit(&s->epoch, e, memory_order_release);
		atomic_store_explicit(&r->ready, e, memory_order_release);
		ok = true;
	}
	OPENSSL_cleanse(fresh, sizeof(fresh));
	atomic_store_explicit(&r->rotating, false, memory_order_release);
	return ok || atomic_load_explicit(&r->ready, memory_order_acquire) >= e;
}

static int
set_keys(EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, const uint8_t aes[32], uint8_t hmac[32],
	 unsigned char *iv, bool enc)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, hmac, 32);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	if (EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv, enc ? 1 : 0) != 1)
		return -1;
	return 0;
}

/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb):
 * 1 sealed / opened, 2 opened under the previous key (renew the ticket),
 * 0 unknown or expired key (full handshake) or, sealing, no key (no
 * ticket), -1 error. */
static int
ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
	  EVP_MAC_CTX *hctx, int enc)
{
	struct ring *r = ring_of(SSL_get_SSL_CTX(ssl));
	uint8_t aes[32], hmac[32];
	uint64_t now, e = 0;
	int ret = -1;

	if (r == NULL)
		return -1;
	now = epoch_now(r);
	if (enc) {
		e = key_make(r, now) ? now : now - 1;	/* another thread rotates */
		if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_256_cbc())) != 1)
			goto out;
		if (!key_get(r, e, aes, hmac)) {
			ret = 0;	/* no key this instant: no ticket this time */
			goto out;
		}
		memcpy(name, r->prefix, 8);
		for (int i = 0; i < 8; i++)
			name[8 + i] = (uint8_t)(e >> (56 - 8 * i));
		ret = set_keys(cctx, hctx, aes, hmac, iv, true) == 0 ? 1 : -1;
		goto out;
	}
	if (memcmp(name, r->prefix, 8) != 0)
		return 0;
	for (int i = 0; i < 8; i++)
		e = e << 8 | name[8 + i];
	if ((e != now && e + 1 != now) || !key_get(r, e, aes, hmac))
		return 0;
	if (set_keys(cctx, hctx, aes, hmac, iv, false) != 0)
		goto out;
	ret = e == now ? 1 : 2;
out:
	OPENSSL_cleanse(aes, sizeof(aes));
	OPENSSL_cleanse(hmac, sizeof(hmac));
	return ret;
}

/* The revocation key of session id <id>: its first 8 bytes, never 0. */
static uint64_t
revoke_key(const unsigned char *id, size_t len)
{
	uint64_t k = 0;

	for (size_t i = 0; i < len && i < 8; i++)
		k = k << 8 | id[i];
	return k != 0 ? k : 1;
}

/* OpenSSL's decrypt_ticket_cb: a ticket that opened but belongs to a
 * revoked session does not resume (a full handshake, and a new ticket);
 * anything else as OpenSSL would decide. */
static SSL_TICKET_RETURN
decrypt_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *name, size_t name_len,
	   SSL_TICKET_STATUS status, void *arg)
{
	struct ring *r = ring_of(SSL_get_SSL_CTX(ssl));
	const unsigned char *id;
	unsigned int len = 0;
	uint64_t k;

	(void)name;
	(void)name_len;
	(void)arg;
	if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	if (r != NULL && sess != NULL) {
		id = SSL_SESSION_get_id(sess, &len);
		k = revoke_key(id, len);
		for (int i = 0; len > 0 && i < REVOKED_MAX; i++)
			if (atomic_load_explicit(&r->revoked[i], memory_order_relaxed) == k)
				return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
}

void
tlsticket_revoke(SSL_CTX *c, const unsigned char *id, size_t len)
{
	struct ring *r = ring_of(c);
	uint32_t i;

	if (r == NULL || len == 0)
		return;
	i = atomic_fetch_add_explicit(&r->revoked_next, 1, memory_order_relaxed) % REVOKED_MAX;
	atomic_store_explicit(&r->revoked[i], revoke_key(id, len), memory_order_relaxed);
}

int
tlsticket_attach(SSL_CTX *c)
{
	struct ring *r;
	long timeout = SSL_CTX_get_timeout(c);

	if (!CRYPTO_THREAD_run_once(&index_once, index_new) || ring_index < 0)
		return -ENOMEM;
	r = OPENSSL_zalloc(sizeof(*r));	/* freed with <c> (ring_free) */
	if (r == NULL)
		return -ENOMEM;
	r->period_s = timeout > TLSTICKET_PERIOD_MIN_S ? (uint64_t)timeout
							 : TLSTICKET_PERIOD_MIN_S;
	for (int i = 0; i < SLOTS; i++)
		atomic_init(&r->slot[i].epoch, NO_EPOCH);
	if (RAND_bytes(r->prefix, sizeof(r->prefix)) != 1 ||
	    SSL_CTX_set_ex_data(c, ring_index, r) != 1) {
		OPENSSL_clear_free(r, sizeof(*r));
		return -ENOMEM;
	}
	/* From here <c> owns <r>. */
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(c, ticket_cb) != 1 ||
	    SSL_CTX_set_session_ticket_cb(c, NULL, decrypt_cb, NULL) != 1)
		return -ENOMEM;
	return 0;
}

void
tlsticket_advance(SSL_CTX *c, int64_t s)
{
	struct ring *r = ring_of(c);

	if (r != NULL)
		atomic_fetch_add(&r->skew_s, s);
}

uint64_t
tlsticket_epoch(SSL_CTX *c)
{
	struct ring *r = ring_of(c);

	return r != NULL ? atomic_load(&r->ready) : 0;
}
