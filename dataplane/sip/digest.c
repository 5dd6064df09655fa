/* HTTP Digest for SIP: credentials parser, response computation and
 * stateless nonces (see digest.h for the contracts).
 *
 * The parser returns views into the caller's header value; it never copies
 * and never reads past value.len. Quoted values are returned without their
 * quotes but otherwise as sent: a backslash escape stays in the view (the
 * value is not rewritten), so it is hashed as received, which is what the
 * clients we know do when they compute the response.
 *
 * Hashing goes through OpenSSL EVP; OpenSSL allocates a digest context per
 * computation, which only happens on a REGISTER challenge answer. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "dataplane/base/be.h"
#include "dataplane/sip/digest.h"

#define HASH_MAX	32	/* bytes of the largest hash (SHA-256) */
#define HEX_MAX		(2 * HASH_MAX)

/* Nonce layout before encoding: issue time, binding, random, MAC. */
#define NONCE_T_OFF	0
#define NONCE_B_OFF	8
#define NONCE_R_OFF	16
#define NONCE_MAC_OFF	24
#define NONCE_MAC_LEN	16
#define NONCE_RAW_LEN	(NONCE_MAC_OFF + NONCE_MAC_LEN)		/* 40 */
#define NONCE_B64_LEN	((NONCE_RAW_LEN * 4 + 2) / 3)		/* 54, unpadded */
#define NONCE_SKEW_S	5	/* a nonce from the future by more is refused */

_Static_assert(NONCE_B64_LEN < DIGEST_NONCE_MAX, "nonce must fit DIGEST_NONCE_MAX");

static const char hexdig[] = "0123456789abcdef";
static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
digest_hexlen(enum digest_alg alg)
{
	return alg == DIGEST_SHA256 ? 64 : 32;
}

const char *
digest_alg_name(enum digest_alg alg)
{
	return alg == DIGEST_SHA256 ? "SHA-256" : "MD5";
}

static const EVP_MD *
alg_md(enum digest_alg alg)
{
	return alg == DIGEST_SHA256 ? EVP_sha256() : EVP_md5();
}

/* ---- hashing ---- */

/* A hash over several pieces, written as lower-case hex (NUL-terminated) into
 * <out>. The pieces are separated by ':'. On an OpenSSL failure <out> is an
 * empty string, which never matches a response. */
static void
hash_hex(enum digest_alg alg, const struct sip_str *parts, size_t n, char *out)
{
	unsigned char md[HASH_MAX];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	size_t i;
	bool ok;

	out[0] = '\0';
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return;
	ok = EVP_DigestInit_ex(ctx, alg_md(alg), NULL) == 1;
	for (i = 0; ok && i < n; i++) {
		if (i > 0)
			ok = EVP_DigestUpdate(ctx, ":", 1) == 1;
		if (ok && parts[i].len > 0)
			ok = EVP_DigestUpdate(ctx, parts[i].p, parts[i].len) == 1;
	}
	if (ok)
		ok = EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen > HASH_MAX)
		return;
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = hexdig[md[i] >> 4];
		out[2 * i + 1] = hexdig[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
}

static struct sip_str
cstr(const char *s)
{
	size_t n = strlen(s);

	return (struct sip_str){ s, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n };
}

void
digest_ha1(enum digest_alg alg, const char *user, const char *realm, const char *password,
	   char *out)
{
	struct sip_str parts[3] = { cstr(user), cstr(realm), cstr(password) };

	hash_hex(alg, parts, 3, out);
}

/* Response from views; <qop> with len 0 selects the RFC 2069 form. */
static void
response_hex(enum digest_alg alg, struct sip_str ha1, struct sip_str nonce, struct sip_str nc,
	     struct sip_str cnonce, struct sip_str qop, struct sip_str method,
	     struct sip_str uri, char *out)
{
	char ha2[HEX_MAX + 1];
	struct sip_str a2[2] = { method, uri };
	struct sip_str kd[6];

	hash_hex(alg, a2, 2, ha2);
	if (qop.len > 0) {
		kd[0] = ha1;
		kd[1] = nonce;
		kd[2] = nc;
		kd[3] = cnonce;
		kd[4] = qop;
		kd[5] = cstr(ha2);
		hash_hex(alg, kd, 6, out);
	} else {
		kd[0] = ha1;
		kd[1] = nonce;
		kd[2] = cstr(ha2);
		hash_hex(alg, kd, 3, out);
	}
}

void
digest_response(enum digest_alg alg, const char *ha1_hex, const char *nonce, const char *nc,
		const char *cnonce, const char *qop, const char *method, const char *uri,
		char *out)
{
	struct sip_str q = qop != NULL ? cstr(qop) : SIP_STR_NULL;

	response_hex(alg, cstr(ha1_hex), cstr(nonce), nc != NULL ? cstr(nc) : SIP_STR_NULL,
		     cnonce != NULL ? cstr(cnonce) : SIP_STR_NULL, q, cstr(method), cstr(uri),
		     out);
}

static char
lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

bool
digest_verify(const struct digest_creds *c, const char *method, const char *ha1_hex)
{
	char ha1[HEX_MAX + 1], want[HEX_MAX + 1], got[HEX_MAX];
	size_t hl, i;
	bool ok;

	if (c == NULL || method == NULL || ha1_hex == NULL ||
	    (unsigned)c->alg >= DIGEST_ALG__COUNT)
		return false;
	hl = digest_hexlen(c->alg);
	if (strnlen(ha1_hex, hl + 1) != hl || c->response.len != hl)
		return false;
	/* The stored HA1 enters the next hash as text: it must be lower case. */
	for (i = 0; i < hl; i++)
		ha1[i] = lower(ha1_hex[i]);
	ha1[hl] = '\0';
	response_hex(c->alg, (struct sip_str){ ha1, (uint32_t)hl }, c->nonce, c->nc, c->cnonce,
		     c->qop, cstr(method), c->uri, want);
	if (strlen(want) != hl)
		return false;
	for (i = 0; i < hl; i++)
		got[i] = lower(c->response.p[i]);
	ok = CRYPTO_memcmp(got, want, hl) == 0;
	OPENSSL_cleanse(ha1, sizeof(ha1));
	return ok;
}

/* ---- credentials parser ---- */

static bool
is_ws(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool
is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* A token value may be a bit wider than a strict token (some clients send an
 * unquoted uri): any visible character but the list and quote delimiters. */
static bool
is_valchar(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != ',' && ch != '"';
}

static bool
str_ieq(struct sip_str s, const char *lit)
{
	size_t n = strlen(lit), i;

	if (s.len != n)
		return false;
	for (i = 0; i < n; i++)
		if (lower(s.p[i]) != lower(lit[i]))
			return false;
	return true;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = lower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

enum param {
	P_USERNAME,
	P_REALM,
	P_NONCE,
	P_URI,
	P_RESPONSE,
	P_CNONCE,
	P_OPAQUE,
	P_QOP,
	P_NC,
	P_ALGORITHM,
	P__COUNT,
};

static const char *const param_names[P__COUNT] = {
	[P_USERNAME] = "username",
	[P_REALM] = "realm",
	[P_NONCE] = "nonce",
	[P_URI] = "uri",
	[P_RESPONSE] = "response",
	[P_CNONCE] = "cnonce",
	[P_OPAQUE] = "opaque",
	[P_QOP] = "qop",
	[P_NC] = "nc",
	[P_ALGORITHM] = "algorithm",
};

static struct sip_str *
param_slot(struct digest_creds *c, enum param p)
{
	switch (p) {
	case P_USERNAME:	return &c->username;
	case P_REALM:		return &c->realm;
	case P_NONCE:		return &c->nonce;
	case P_URI:		return &c->uri;
	case P_RESPONSE:	return &c->response;
	case P_CNONCE:		return &c->cnonce;
	case P_OPAQUE:		return &c->opaque;
	case P_QOP:		return &c->qop;
	case P_NC:		return &c->nc;
	default:		return NULL;
	}
}

/* Parses one `name = value` at s[*pos]; on success advances *pos past it. */
static int
parse_param(const char *s, uint32_t len, uint32_t *pos, struct sip_str *name,
	    struct sip_str *val)
{
	uint32_t i = *pos, start;

	start = i;
	while (i < len && is_tchar((unsigned char)s[i]))
		i++;
	if (i == start)
		return -EINVAL;
	*name = (struct sip_str){ s + start, i - start };
	while (i < len && is_ws(s[i]))
		i++;
	if (i >= len || s[i] != '=')
		return -EINVAL;
	i++;
	while (i < len && is_ws(s[i]))
		i++;
	if (i < len && s[i] == '"') {
		start = ++i;
		for (;;) {
			unsigned char ch;

			if (i >= len)
				return -EINVAL;		/* unterminated */
			ch = (unsigned char)s[i];
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (i + 1 >= len)
					return -EINVAL;
				ch = (unsigned char)s[i + 1];
				i++;
			}
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return -EINVAL;
			i++;
		}
		*val = (struct sip_str){ s + start, i - start };
		i++;				/* closing quote */
	} else {
		start = i;
		while (i < len && is_valchar((unsigned char)s[i]))
			i++;
		if (i == start)
			return -EINVAL;
		*val = (struct sip_str){ s + start, i - start };
	}
	*pos = i;
	return 0;
}

int
digest_parse_creds(struct sip_str value, struct digest_creds *c)
{
	const char *s = value.p;
	uint32_t len = value.len, i = 0, seen = 0;
	bool alg_unsupported = false;
	struct sip_str name, val, algv = SIP_STR_NULL;
	int rc, p, k;

	memset(c, 0, sizeof(*c));
	c->alg = DIGEST_MD5;
	if (s == NULL)
		return -EINVAL;
	while (i < len && is_ws(s[i]))
		i++;
	if (len - i < 6 || !str_ieq((struct sip_str){ s + i, 6 }, "Digest"))
		return -EINVAL;
	i += 6;
	if (i >= len || !is_ws(s[i]))
		return -EINVAL;
	for (;;) {
		/* Empty list elements (",,") are allowed by the #rule. */
		while (i < len && (is_ws(s[i]) || s[i] == ','))
			i++;
		if (i >= len)
			break;
		rc = parse_param(s, len, &i, &name, &val);
		if (rc < 0)
			return rc;
		/* The next character must end the element. */
		while (i < len && is_ws(s[i]))
			i++;
		if (i < len && s[i] != ',')
			return -EINVAL;
		for (p = 0; p < P__COUNT; p++)
			if (str_ieq(name, param_names[p]))
				break;
		if (p == P__COUNT)
			continue;		/* unknown: ignored */
		if (seen & (1u << p))
			return -EINVAL;
		seen |= 1u << p;
		if (p == P_ALGORITHM)
			algv = val;
		else
			*param_slot(c, (enum param)p) = val;
	}

	if (seen & (1u << P_ALGORITHM)) {
		if (str_ieq(algv, "MD5"))
			c->alg = DIGEST_MD5;
		else if (str_ieq(algv, "SHA-256"))
			c->alg = DIGEST_SHA256;
		else
			alg_unsupported = true;
	}
	if (alg_unsupported)
		return -EPROTONOSUPPORT;
	for (p = P_USERNAME; p <= P_RESPONSE; p++)
		if (!(seen & (1u << p)))
			return -EINVAL;
	if (seen & (1u << P_NC)) {
		if (c->nc.len != 8)
			return -EINVAL;
		for (k = 0; k < 8; k++) {
			int h = hexval(c->nc.p[k]);

			if (h < 0)
				return -EINVAL;
			c->nc_val = (c->nc_val << 4) | (uint32_t)h;
		}
	}
	if (seen & (1u << P_QOP)) {
		if (!str_ieq(c->qop, "auth"))
			return -EINVAL;
		if (!(seen & (1u << P_NC)) || !(seen & (1u << P_CNONCE)) || c->cnonce.len == 0)
			return -EINVAL;
	}
	return 0;
}

/* ---- nonces ---- */

int
digest_key_init(uint8_t key[DIGEST_KEY_LEN])
{
	return RAND_bytes(key, DIGEST_KEY_LEN) == 1 ? 0 : -EIO;
}

static bool
nonce_mac(const uint8_t key[DIGEST_KEY_LEN], const uint8_t *raw, uint8_t mac[NONCE_MAC_LEN])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int flen = 0;

	if (HMAC(EVP_sha256(), key, DIGEST_KEY_LEN, raw, NONCE_MAC_OFF, full, &flen) == NULL ||
	    flen < NONCE_MAC_LEN)
		return false;
	memcpy(mac, full, NONCE_MAC_LEN);
	OPENSSL_cleanse(full, sizeof(full));
	return true;
}

void
digest_nonce_make(const uint8_t key[DIGEST_KEY_LEN], uint64_t now_s, uint64_t binding, char *out)
{
	uint8_t raw[NONCE_RAW_LEN];
	uint32_t acc = 0;
	int bits = 0;
	size_t i, o = 0;

	be_put64(raw + NONCE_T_OFF, now_s);
	be_put64(raw + NONCE_B_OFF, binding);
	/* A failing RNG leaves the nonce unique per (time, binding) only; the MAC
	 * still makes it unforgeable, so carry on rather than fail a challenge. */
	if (RAND_bytes(raw + NONCE_R_OFF, 8) != 1)
		memset(raw + NONCE_R_OFF, 0, 8);
	if (!nonce_mac(key, raw, raw + NONCE_MAC_OFF))
		memset(raw + NONCE_MAC_OFF, 0, NONCE_MAC_LEN);	/* never verifies */
	for (i = 0; i < NONCE_RAW_LEN; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		out[o++] = b64url[(acc << (6 - bits)) & 0x3f];
	out[o] = '\0';
}

static int
b64val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/* Strict: exactly NONCE_B64_LEN characters and zero padding bits, so each
 * nonce has one spelling (the caller's replay table is keyed by the text). */
static bool
nonce_decode(struct sip_str s, uint8_t raw[NONCE_RAW_LEN])
{
	uint32_t acc = 0, i;
	int bits = 0;
	size_t o = 0;

	if (s.p == NULL || s.len != NONCE_B64_LEN)
		return false;
	for (i = 0; i < s.len; i++) {
		int v = b64val(s.p[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o < NONCE_RAW_LEN)
				raw[o] = (uint8_t)(acc >> bits);
			o++;
		}
	}
	return o == NONCE_RAW_LEN && (acc & ((1u << bits) - 1)) == 0;
}

int
digest_nonce_check(const uint8_t key[DIGEST_KEY_LEN], struct sip_str nonce, uint64_t now_s,
		   uint64_t binding, uint32_t ttl_s)
{
	uint8_t raw[NONCE_RAW_LEN], mac[NONCE_MAC_LEN];
	uint64_t issued;

	if (!nonce_decode(nonce, raw))
		return -EINVAL;
	if (!nonce_mac(key, raw, mac) ||
	    CRYPTO_memcmp(mac, raw + NONCE_MAC_OFF, NONCE_MAC_LEN) != 0)
		return -EINVAL;
	if (be_get64(raw + NONCE_B_OFF) != binding)
		return -EINVAL;
	issued = be_get64(raw + NONCE_T_OFF);
	if (issued > now_s) {
		if (issued - now_s > NONCE_SKEW_S)
			return -EINVAL;
		return 0;
	}
	if (now_s - issued > ttl_s)
		return -ESTALE;
	return 0;
}
