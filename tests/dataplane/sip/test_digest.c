/* Digest: credentials parser, response against RFC vectors, nonces. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/sip/digest.h"

/* A heap copy of exactly strlen(s) bytes, without a NUL, so ASan catches a
 * parser that reads past value.len. The caller frees .p. */
static struct sip_str
exact(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	memcpy(p, s, n);
	return (struct sip_str){ p, (uint32_t)n };
}

static void
unexact(struct sip_str v)
{
	free((void *)(uintptr_t)v.p);
}

/* The views in <c> point into the copy, which stays alive until the next
 * parse() or the end of the test. */
static struct sip_str last;

static void
free_last(void)
{
	unexact(last);
	last = SIP_STR_NULL;
}

TestSuite(digest, .fini = free_last);

static int
parse(const char *s, struct digest_creds *c)
{
	free_last();
	last = exact(s);
	return digest_parse_creds(last, c);
}

static bool
str_is(struct sip_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

#define RFC2617 "Digest username=\"Mufasa\",\n" \
	"                 realm=\"testrealm@host.com\",\n" \
	"                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\n" \
	"                 uri=\"/dir/index.html\",\n" \
	"                 qop=auth,\n" \
	"                 nc=00000001,\n" \
	"                 cnonce=\"0a4f113b\",\n" \
	"                 response=\"6629fae49393a05397450978507c4ef1\",\n" \
	"                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""

/* The same, as it arrives after header unfolding: newlines become spaces. */
static const char rfc2617_hdr[] =
	"Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
	"nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", "
	"qop=auth, nc=00000001, cnonce=\"0a4f113b\", "
	"response=\"6629fae49393a05397450978507c4ef1\", "
	"opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

Test(digest, hexlen_and_names)
{
	cr_assert_eq(digest_hexlen(DIGEST_MD5), 32);
	cr_assert_eq(digest_hexlen(DIGEST_SHA256), 64);
	cr_assert_str_eq(digest_alg_name(DIGEST_MD5), "MD5");
	cr_assert_str_eq(digest_alg_name(DIGEST_SHA256), "SHA-256");
}

Test(digest, parses_rfc2617_example)
{
	struct digest_creds c;

	cr_assert_eq(parse(rfc2617_hdr, &c), 0);
	cr_assert(str_is(c.username, "Mufasa"));
	cr_assert(str_is(c.realm, "testrealm@host.com"));
	cr_assert(str_is(c.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093"));
	cr_assert(str_is(c.uri, "/dir/index.html"));
	cr_assert(str_is(c.qop, "auth"));
	cr_assert(str_is(c.nc, "00000001"));
	cr_assert(str_is(c.cnonce, "0a4f113b"));
	cr_assert(str_is(c.response, "6629fae49393a05397450978507c4ef1"));
	cr_assert(str_is(c.opaque, "5ccc069c403ebaf9f0171e9517f40e41"));
	cr_assert_eq(c.alg, DIGEST_MD5);
	cr_assert_eq(c.nc_val, 1);
}

Test(digest, rfc2617_vector)
{
	struct digest_creds c;
	char ha1[65], resp[65];

	digest_ha1(DIGEST_MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", ha1);
	cr_assert_str_eq(ha1, "939e7578ed9e3c518a452acee763bce9");
	digest_response(DIGEST_MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001",
			"0a4f113b", "auth", "GET", "/dir/index.html", resp);
	cr_assert_str_eq(resp, "6629fae49393a05397450978507c4ef1");

	cr_assert_eq(parse(rfc2617_hdr, &c), 0);
	cr_assert(digest_verify(&c, "GET", ha1));
	cr_assert_not(digest_verify(&c, "POST", ha1));
	digest_ha1(DIGEST_MD5, "Mufasa", "testrealm@host.com", "Circle of Life", ha1);
	cr_assert_not(digest_verify(&c, "GET", ha1));
}

Test(digest, folded_header_with_newlines_is_rejected_not_overread)
{
	struct digest_creds c;

	/* sipmsg unfolds continuation lines into spaces before we see them; a
	 * raw line break is not whitespace here. */
	cr_assert_eq(parse(RFC2617, &c), -EINVAL);
}

#define RFC7616_FMT "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", " \
	"uri=\"/dir/index.html\", algorithm=%s, " \
	"nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, " \
	"cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, " \
	"response=\"%s\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""

static void
check_rfc7616(enum digest_alg alg, const char *algname, const char *want)
{
	struct digest_creds c;
	char hdr[1024], ha1[65], resp[65];

	digest_ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life", ha1);
	cr_assert_eq(strlen(ha1), digest_hexlen(alg));
	digest_response(alg, ha1, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001",
			"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth", "GET",
			"/dir/index.html", resp);
	cr_assert_str_eq(resp, want);

	snprintf(hdr, sizeof(hdr), RFC7616_FMT, algname, want);
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert_eq(c.alg, alg);
	cr_assert(digest_verify(&c, "GET", ha1));
	/* An HA1 of the other algorithm's length never matches. */
	digest_ha1(alg == DIGEST_MD5 ? DIGEST_SHA256 : DIGEST_MD5, "Mufasa",
		   "http-auth@example.org", "Circle of Life", ha1);
	cr_assert_not(digest_verify(&c, "GET", ha1));
}

Test(digest, rfc7616_sha256_vector)
{
	check_rfc7616(DIGEST_SHA256, "SHA-256",
		      "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

Test(digest, rfc7616_md5_vector)
{
	check_rfc7616(DIGEST_MD5, "MD5", "8ca523f5e9506fed4657c9700eebdbec");
}

Test(digest, algorithm_names_case_insensitive_and_quoted)
{
	struct digest_creds c;
	char hdr[1024];

	snprintf(hdr, sizeof(hdr), RFC7616_FMT, "\"sha-256\"", "x");
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert_eq(c.alg, DIGEST_SHA256);
	snprintf(hdr, sizeof(hdr), RFC7616_FMT, "md5", "x");
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert_eq(c.alg, DIGEST_MD5);
}

Test(digest, unsupported_algorithms)
{
	static const char *const algs[] = { "MD5-sess", "SHA-256-sess", "SHA-512-256",
					    "\"MD5-sess\"", "AKAv1-MD5" };
	struct digest_creds c;
	char hdr[1024];
	size_t i;

	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		snprintf(hdr, sizeof(hdr), RFC7616_FMT, algs[i], "x");
		cr_assert_eq(parse(hdr, &c), -EPROTONOSUPPORT, "%s", algs[i]);
	}
}

/* pidgin-sipe: 407 challenge answered with uri="(null)"; hash it as sent. */
Test(digest, sipe_null_uri)
{
	struct digest_creds c;
	char ha1[65], resp[65], hdr[512];

	digest_ha1(DIGEST_MD5, "alice@example.com", "Parley", "secret", ha1);
	digest_response(DIGEST_MD5, ha1, "abcdef", "00000001", "c0ffee", "auth", "REGISTER",
			"(null)", resp);
	snprintf(hdr, sizeof(hdr),
		 "Digest username=\"alice@example.com\", realm=\"Parley\", nonce=\"abcdef\", "
		 "uri=\"(null)\", qop=auth, nc=00000001, cnonce=\"c0ffee\", "
		 "response=\"%s\", algorithm=MD5", resp);
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert(str_is(c.uri, "(null)"));
	cr_assert(digest_verify(&c, "REGISTER", ha1));

	/* Hashing any other uri (e.g. the Request-URI) would not match. */
	digest_response(DIGEST_MD5, ha1, "abcdef", "00000001", "c0ffee", "auth", "REGISTER",
			"sip:example.com", resp);
	snprintf(hdr, sizeof(hdr),
		 "Digest username=\"alice@example.com\", realm=\"Parley\", nonce=\"abcdef\", "
		 "uri=\"(null)\", qop=auth, nc=00000001, cnonce=\"c0ffee\", "
		 "response=\"%s\"", resp);
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert_not(digest_verify(&c, "REGISTER", ha1));
}

Test(digest, rfc2069_form_without_qop)
{
	struct digest_creds c;
	char ha1[65], resp[65], hdr[512];

	digest_ha1(DIGEST_SHA256, "bob", "r", "pw", ha1);
	digest_response(DIGEST_SHA256, ha1, "n1", NULL, NULL, NULL, "REGISTER",
			"sip:example.com", resp);
	cr_assert_eq(strlen(resp), 64);
	snprintf(hdr, sizeof(hdr),
		 "Digest username=bob,realm=r,nonce=n1,uri=\"sip:example.com\","
		 "response=%s,algorithm=SHA-256", resp);
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert_eq(c.qop.len, 0);
	cr_assert_eq(c.nc_val, 0);
	cr_assert(digest_verify(&c, "REGISTER", ha1));
}

Test(digest, response_compare_ignores_hex_case)
{
	struct digest_creds c;
	char ha1[65], hdr[1024];

	digest_ha1(DIGEST_MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", ha1);
	snprintf(hdr, sizeof(hdr),
		 "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
		 "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", "
		 "qop=auth, nc=00000001, cnonce=\"0a4f113b\", "
		 "response=\"6629FAE49393A05397450978507C4EF1\"");
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert(digest_verify(&c, "GET", ha1));
	/* A stored HA1 in upper case works too. */
	for (char *p = ha1; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	cr_assert(digest_verify(&c, "GET", ha1));
}

Test(digest, verify_rejects_bad_lengths)
{
	struct digest_creds c;
	char ha1[65];

	digest_ha1(DIGEST_MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", ha1);
	cr_assert_eq(parse("Digest username=Mufasa, realm=\"testrealm@host.com\", "
			   "nonce=dcd98b7102dd2f0e8b11d0f600bfb0c093, uri=\"/dir/index.html\", "
			   "qop=auth, nc=00000001, cnonce=0a4f113b, "
			   "response=6629fae49393a05397450978507c4ef", &c), 0);
	cr_assert_not(digest_verify(&c, "GET", ha1));
	cr_assert_not(digest_verify(&c, "GET", "939e7578"));
	cr_assert_not(digest_verify(&c, "GET", ""));
}

Test(digest, scheme_and_whitespace)
{
	struct digest_creds c;

	cr_assert_eq(parse("digest username=a,realm=b,nonce=c,uri=d,response=e", &c), 0);
	cr_assert_eq(parse("  DIGEST\tusername = \"a\" ,\trealm= b ,nonce =c,uri=d ,response=e  ",
			   &c), 0);
	cr_assert(str_is(c.username, "a"));
	cr_assert(str_is(c.realm, "b"));
	cr_assert(str_is(c.response, "e"));
	cr_assert_eq(parse("Digest ,username=a,,realm=b, ,nonce=c,uri=d,response=e,", &c), 0);
	cr_assert_eq(parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", &c), -EINVAL);
	cr_assert_eq(parse("Digestusername=a,realm=b,nonce=c,uri=d,response=e", &c), -EINVAL);
	cr_assert_eq(parse("Digest", &c), -EINVAL);
	cr_assert_eq(parse("Digest ", &c), -EINVAL);
	cr_assert_eq(parse("", &c), -EINVAL);
	cr_assert_eq(digest_parse_creds(SIP_STR_NULL, &c), -EINVAL);
}

Test(digest, syntax_errors)
{
	static const char *const bad[] = {
		"Digest username=a realm=b,nonce=c,uri=d,response=e",	/* no comma */
		"Digest username=\"a\"x,realm=b,nonce=c,uri=d,response=e",
		"Digest username=\"a,realm=b,nonce=c,uri=d,response=e",	/* unterminated */
		"Digest username=a,realm=b,nonce=c,uri=d,response=",
		"Digest username=a,realm=b,nonce=c,uri=d,response",
		"Digest =a,realm=b,nonce=c,uri=d,response=e",
		"Digest user name=a,realm=b,nonce=c,uri=d,response=e",
		"Digest username=a,realm=b,nonce=c,uri=d,response=\"e\\",
		"Digest username=\"a\rb\",realm=b,nonce=c,uri=d,response=e",
	};
	struct digest_creds c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], &c), -EINVAL, "%s", bad[i]);
}

Test(digest, missing_required)
{
	static const char *const bad[] = {
		"Digest realm=b,nonce=c,uri=d,response=e",
		"Digest username=a,nonce=c,uri=d,response=e",
		"Digest username=a,realm=b,uri=d,response=e",
		"Digest username=a,realm=b,nonce=c,response=e",
		"Digest username=a,realm=b,nonce=c,uri=d",
	};
	struct digest_creds c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], &c), -EINVAL, "%s", bad[i]);
}

Test(digest, duplicates_rejected_unknown_ignored)
{
	struct digest_creds c;

	cr_assert_eq(parse("Digest username=a,realm=b,nonce=c,uri=d,response=e,username=x", &c),
		     -EINVAL);
	cr_assert_eq(parse("Digest username=a,realm=b,nonce=c,uri=d,response=e,NONCE=x", &c),
		     -EINVAL);
	cr_assert_eq(parse("Digest username=a,realm=b,nonce=c,uri=d,response=e,"
			   "algorithm=MD5,algorithm=MD5", &c), -EINVAL);
	cr_assert_eq(parse("Digest username=a,realm=b,nonce=c,uri=d,response=e,"
			   "targetname=\"x\",gssapi-data=\"\",foo=bar,foo=baz", &c), 0);
	cr_assert(str_is(c.username, "a"));
	cr_assert_eq(parse("Digest USERNAME=a,Realm=b,nOnce=c,URI=d,Response=e", &c), 0);
	cr_assert(str_is(c.nonce, "c"));
}

Test(digest, quoted_escapes_stay_in_view)
{
	struct digest_creds c;

	cr_assert_eq(parse("Digest username=\"a\\\"b,c\",realm=\"x y\",nonce=c,uri=d,response=e",
			   &c), 0);
	cr_assert(str_is(c.username, "a\\\"b,c"));
	cr_assert(str_is(c.realm, "x y"));
	cr_assert_eq(parse("Digest username=\"\",realm=b,nonce=c,uri=d,response=e", &c), 0);
	cr_assert_eq(c.username.len, 0);
}

Test(digest, qop_rules)
{
	struct digest_creds c;
	const char *base = "Digest username=a,realm=b,nonce=c,uri=d,response=e,";
	char hdr[256];

	snprintf(hdr, sizeof(hdr), "%sqop=\"auth\",nc=0000000A,cnonce=x", base);
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert_eq(c.nc_val, 10);
	snprintf(hdr, sizeof(hdr), "%sqop=auth,nc=ffffffff,cnonce=x", base);
	cr_assert_eq(parse(hdr, &c), 0);
	cr_assert_eq(c.nc_val, 0xffffffffu);
	snprintf(hdr, sizeof(hdr), "%sqop=auth-int,nc=00000001,cnonce=x", base);
	cr_assert_eq(parse(hdr, &c), -EINVAL);
	snprintf(hdr, sizeof(hdr), "%sqop=auth,cnonce=x", base);
	cr_assert_eq(parse(hdr, &c), -EINVAL);
	snprintf(hdr, sizeof(hdr), "%sqop=auth,nc=00000001", base);
	cr_assert_eq(parse(hdr, &c), -EINVAL);
	snprintf(hdr, sizeof(hdr), "%sqop=auth,nc=0000001,cnonce=x", base);
	cr_assert_eq(parse(hdr, &c), -EINVAL);
	snprintf(hdr, sizeof(hdr), "%sqop=auth,nc=000000001,cnonce=x", base);
	cr_assert_eq(parse(hdr, &c), -EINVAL);
	snprintf(hdr, sizeof(hdr), "%sqop=auth,nc=0000000g,cnonce=x", base);
	cr_assert_eq(parse(hdr, &c), -EINVAL);
	snprintf(hdr, sizeof(hdr), "%sqop=auth,nc=00000001,cnonce=\"\"", base);
	cr_assert_eq(parse(hdr, &c), -EINVAL);
}

/* Every prefix of a valid header, each in an exact-size heap buffer: no
 * overread (ASan), and only the full header parses. */
Test(digest, truncations_never_overread)
{
	size_t n = strlen(rfc2617_hdr), i;
	struct digest_creds c;

	for (i = 0; i < n; i++) {
		char *p = malloc(i ? i : 1);

		cr_assert_not_null(p);
		memcpy(p, rfc2617_hdr, i);
		(void)digest_parse_creds((struct sip_str){ p, (uint32_t)i }, &c);
		free(p);
	}
	/* Cut inside the opaque value: unterminated quote. */
	{
		struct sip_str v = exact(rfc2617_hdr);

		v.len -= 2;
		cr_assert_eq(digest_parse_creds(v, &c), -EINVAL);
		unexact(v);
	}
}

/* ---- nonces ---- */

static uint8_t key[DIGEST_KEY_LEN];
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
nonce_setup(void)
{
	cr_assert_eq(digest_key_init(key), 0);
}

static struct sip_str
ns(const char *s)
{
	return (struct sip_str){ s, (uint32_t)strlen(s) };
}

Test(nonce, round_trip, .init = nonce_setup)
{
	char n1[DIGEST_NONCE_MAX], n2[DIGEST_NONCE_MAX];
	size_t i;

	digest_nonce_make(key, 1700000000, 42, n1);
	digest_nonce_make(key, 1700000000, 42, n2);
	cr_assert_lt(strlen(n1), DIGEST_NONCE_MAX);
	cr_assert_eq(strlen(n1), 54);
	cr_assert_str_neq(n1, n2);		/* random part */
	for (i = 0; n1[i]; i++)
		cr_assert(strchr(b64, n1[i]) != NULL);
	cr_assert_eq(digest_nonce_check(key, ns(n1), 1700000000, 42, 30), 0);
	cr_assert_eq(digest_nonce_check(key, ns(n2), 1700000030, 42, 30), 0);
}

Test(nonce, expiry_and_future, .init = nonce_setup)
{
	char n[DIGEST_NONCE_MAX];

	digest_nonce_make(key, 1000, 7, n);
	cr_assert_eq(digest_nonce_check(key, ns(n), 1030, 7, 30), 0);
	cr_assert_eq(digest_nonce_check(key, ns(n), 1031, 7, 30), -ESTALE);
	cr_assert_eq(digest_nonce_check(key, ns(n), 999999, 7, 30), -ESTALE);
	cr_assert_eq(digest_nonce_check(key, ns(n), 998, 7, 30), 0);	/* small skew */
	cr_assert_eq(digest_nonce_check(key, ns(n), 900, 7, 30), -EINVAL);
}

Test(nonce, binding_and_key, .init = nonce_setup)
{
	uint8_t other[DIGEST_KEY_LEN];
	char n[DIGEST_NONCE_MAX];

	digest_nonce_make(key, 1000, 7, n);
	cr_assert_eq(digest_nonce_check(key, ns(n), 1000, 8, 30), -EINVAL);
	cr_assert_eq(digest_key_init(other), 0);
	cr_assert_eq(digest_nonce_check(other, ns(n), 1000, 7, 30), -EINVAL);
	/* Expired but forged is forged, not stale. */
	cr_assert_eq(digest_nonce_check(other, ns(n), 5000, 7, 30), -EINVAL);
}

Test(nonce, tampering, .init = nonce_setup)
{
	char n[DIGEST_NONCE_MAX], t[DIGEST_NONCE_MAX];
	size_t i, len;

	digest_nonce_make(key, 1000, 7, n);
	len = strlen(n);
	for (i = 0; i < len; i++) {
		memcpy(t, n, len + 1);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		cr_assert_eq(digest_nonce_check(key, ns(t), 1000, 7, 30), -EINVAL, "pos %zu", i);
	}
	/* Unused low bits of the last character must be zero. */
	memcpy(t, n, len + 1);
	t[len - 1] = b64[(strchr(b64, n[len - 1]) - b64) | 1];
	cr_assert_eq(digest_nonce_check(key, ns(t), 1000, 7, 30), -EINVAL);
	for (i = 0; i < len; i++) {
		struct sip_str v = exact(n);

		v.len = (uint32_t)i;
		cr_assert_eq(digest_nonce_check(key, v, 1000, 7, 30), -EINVAL);
		unexact(v);
	}
	cr_assert_eq(digest_nonce_check(key, ns("dcd98b7102dd2f0e8b11d0f600bfb0c093"), 1000, 7, 30),
		     -EINVAL);
	cr_assert_eq(digest_nonce_check(key, SIP_STR_NULL, 1000, 7, 30), -EINVAL);
	memcpy(t, n, len + 1);
	t[3] = '+';
	cr_assert_eq(digest_nonce_check(key, ns(t), 1000, 7, 30), -EINVAL);
}
