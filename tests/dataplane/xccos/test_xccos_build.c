/* Unit tests for dataplane/xccos/xccos.c, the output side: the builders
 * re-parsed with libxml2, xbuf, escaping of hostile strings, and
 * timestamps (shared/protocol/xccos.md §b.9). The suite (xccos) and the
 * parser's tests are test_xccos.c's. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "dataplane/xccos/xccos.h"
#include "tests/dataplane/xccos/test_xccos.h"

/* ---- builders ---- */

static xmlDocPtr
reparse(const char *p, size_t len)
{
	xmlDocPtr doc = xmlReadMemory(p, (int)len, NULL, "UTF-8", XML_PARSE_NONET);

	cr_assert_not_null(doc, "not well-formed: %.*s", (int)len, p);
	return doc;
}

static const char *
prop(xmlNodePtr n, const char *name, char *tmp, size_t cap)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);

	cr_assert_not_null(v, "no %s on <%s>", name, (const char *)n->name);
	snprintf(tmp, cap, "%s", (const char *)v);
	xmlFree(v);
	return tmp;
}

Test(xccos, builds_reply_exactly)
{
	struct xbuf b;
	char *p;
	size_t len;

	xbuf_init(&b, 0);
	xccos_begin(&b, UINT64_C(7962449779256945056));
	xccos_rpl_begin(&b, "requri", "1", "1804289383", 200);
	xbuf_str(&b, "<uib");
	xbuf_attr(&b, "uri", "sip:chan1@example.com");
	xbuf_str(&b, "/>");
	xccos_rpl_end(&b);
	xccos_end(&b);
	p = xbuf_take(&b, &len);
	cr_assert_str_eq(p, "<xccos ver=\"1\" envid=\"7962449779256945056\" "
			 "xmlns=\"urn:parlano:xml:ns:xccos\"><rpl id=\"rpl:requri\" seqid=\"1\">"
			 "<commandid seqid=\"1\" envid=\"1804289383\"/><resp code=\"200\">SUCCESS_OK"
			 "</resp><data><uib uri=\"sip:chan1@example.com\"/></data></rpl></xccos>");
	cr_assert_eq(len, strlen(p));
	free(p);
	xbuf_free(&b);
}

Test(xccos, reply_reparses_to_the_expected_tree)
{
	struct xbuf b;
	xmlDocPtr doc;
	xmlNodePtr root, rpl, c;
	char t[128], *p;
	size_t len;

	xbuf_init(&b, 0);
	xccos_begin(&b, 100);
	xccos_rpl_begin(&b, "ge\"t<s>&'", "12&3", "e<nv", 404);
	xbuf_str(&b, "<chanib");
	xbuf_attr(&b, "name", "D\"ev <&> 'x'");
	xbuf_str(&b, "><info id=\"urn:parlano:ma:info:ucnt\">");
	xbuf_esc(&b, "3 < 4 & ]]>", 11);
	xbuf_str(&b, "</info></chanib>");
	xccos_rpl_end(&b);
	xccos_end(&b);
	cr_assert(xbuf_ok(&b));
	p = xbuf_take(&b, &len);

	doc = reparse(p, len);
	root = xmlDocGetRootElement(doc);
	cr_assert_str_eq((const char *)root->name, "xccos");
	cr_assert_not_null(root->ns);
	cr_assert_str_eq((const char *)root->ns->href, XCCOS_NS);
	cr_assert_str_eq(prop(root, "ver", t, sizeof(t)), "1");
	cr_assert_str_eq(prop(root, "envid", t, sizeof(t)), "100");
	rpl = xccos_child(root, NULL);
	cr_assert_str_eq((const char *)rpl->name, "rpl");
	cr_assert_str_eq(prop(rpl, "id", t, sizeof(t)), "rpl:ge\"t<s>&'");
	cr_assert_str_eq(prop(rpl, "seqid", t, sizeof(t)), "12&3");
	c = xccos_child(rpl, NULL);
	cr_assert_str_eq((const char *)c->name, "commandid");
	cr_assert_str_eq(prop(c, "seqid", t, sizeof(t)), "12&3");
	cr_assert_str_eq(prop(c, "envid", t, sizeof(t)), "e<nv");
	c = xccos_next(c, NULL);
	cr_assert_str_eq((const char *)c->name, "resp");
	cr_assert_str_eq(prop(c, "code", t, sizeof(t)), "404");
	cr_assert_str_eq((const char *)c->children->content, "ERR_NOT_FOUND");
	c = xccos_next(c, NULL);
	cr_assert_str_eq((const char *)c->name, "data");
	cr_assert_null(xccos_next(c, NULL));
	c = xccos_child(c, "chanib");
	cr_assert_str_eq(prop(c, "name", t, sizeof(t)), "D\"ev <&> 'x'");
	c = xccos_child(c, "info");
	cr_assert_str_eq((const char *)c->children->content, "3 < 4 & ]]>");
	xmlFreeDoc(doc);

	/* a reply is refused as client input, but as a reply, not as garbage */
	cr_assert_eq(test_xccos_parse(p, len), -ENOTSUP);
	free(p);
}

Test(xccos, empty_reply_and_notice)
{
	struct xbuf b;
	xmlDocPtr doc;
	xmlNodePtr root, n;
	char t[64], *p;
	size_t len;

	xbuf_init(&b, 0);
	xccos_begin(&b, 1);
	xccos_rpl_begin(&b, "nodespermcreatechild", NULL, NULL, 200);
	xccos_rpl_end(&b);
	xccos_ntc_begin(&b, "part");
	xbuf_str(&b, "<chanib uri=\"ma-chan://e/x\"><uib uri=\"sip:c@e\"/></chanib>");
	xccos_ntc_end(&b);
	xccos_end(&b);
	p = xbuf_take(&b, &len);
	cr_assert_not_null(strstr(p, "<rpl id=\"rpl:nodespermcreatechild\" seqid=\"1\"><commandid "
				  "seqid=\"1\" envid=\"\"/><resp code=\"200\">SUCCESS_OK</resp>"
				  "<data></data></rpl><ntc id=\"ntc:part\" seqid=\"1\"><data>"), "%s", p);

	doc = reparse(p, len);
	root = xmlDocGetRootElement(doc);
	n = xccos_child(root, "rpl");
	cr_assert_null(xccos_child(xccos_child(n, "data"), NULL));
	n = xccos_next(n, NULL);
	cr_assert_str_eq((const char *)n->name, "ntc");
	cr_assert_str_eq(prop(n, "id", t, sizeof(t)), "ntc:part");
	cr_assert_str_eq(prop(n, "seqid", t, sizeof(t)), "1");
	cr_assert_null(xccos_child(n, "commandid"));
	n = xccos_child(xccos_child(xccos_child(n, "data"), "chanib"), "uib");
	cr_assert_str_eq(prop(n, "uri", t, sizeof(t)), "sip:c@e");
	xmlFreeDoc(doc);
	free(p);
}

Test(xccos, code_text_table)
{
	static const struct {
		int code;
		const char *text;
	} t[] = {
		{ 200, "SUCCESS_OK" }, { 400, "ERR_BAD_REQUEST" }, { 403, "ERR_ACCESS_DENIED" },
		{ 404, "ERR_NOT_FOUND" }, { 409, "ERR_ALREADY_EXISTS" }, { 413, "ERR_TOO_LARGE" },
		{ 500, "OPERATION_FAILED" }, { 501, "ERR_NOT_IMPLEMENTED" },
		{ 503, "ERR_SERVICE_UNAVAILABLE" }, { 0, "OPERATION_FAILED" },
		{ -1, "OPERATION_FAILED" }, { 201, "OPERATION_FAILED" }, { 418, "OPERATION_FAILED" },
	};
	size_t k;

	for (k = 0; k < sizeof(t) / sizeof(t[0]); k++)
		cr_assert_str_eq(xccos_code_text(t[k].code), t[k].text);
}

/* ---- xbuf ---- */

Test(xccos, xbuf_grows_and_formats)
{
	struct xbuf b;
	char want[5000], *p;
	size_t len, n = 0;
	int i;

	xbuf_init(&b, 0);
	cr_assert_eq(b.max, (size_t)16 * 1024 * 1024);
	for (i = 0; i < 500; i++) {
		xbuf_printf(&b, "%d,", i);
		n += (size_t)snprintf(want + n, sizeof(want) - n, "%d,", i);
	}
	/* one format far larger than the free space: the retry path */
	xbuf_printf(&b, "%s|%0300d", "big", 7);
	n += (size_t)snprintf(want + n, sizeof(want) - n, "%s|%0300d", "big", 7);
	xbuf_raw(&b, "", 0);
	xbuf_str(&b, "");
	cr_assert(xbuf_ok(&b));
	cr_assert_eq(b.len, n);
	p = xbuf_take(&b, &len);
	cr_assert_eq(len, n);
	cr_assert_str_eq(p, want);
	cr_assert_null(b.p);
	cr_assert_eq(b.len, 0);
	free(p);

	/* take on an empty buffer: "" */
	p = xbuf_take(&b, &len);
	cr_assert_not_null(p);
	cr_assert_str_eq(p, "");
	cr_assert_eq(len, 0);
	free(p);
	xbuf_free(&b);
	xbuf_free(&b);
	xbuf_free(NULL);
}

Test(xccos, xbuf_max_and_failure)
{
	struct xbuf b;
	char *p;
	size_t len = 99;

	xbuf_init(&b, 5);
	xbuf_str(&b, "12345");
	cr_assert(xbuf_ok(&b));
	cr_assert_str_eq(b.p, "12345");
	xbuf_raw(&b, "6", 1);
	cr_assert_not(xbuf_ok(&b));
	xbuf_str(&b, "");	/* sticky */
	cr_assert_not(xbuf_ok(&b));
	cr_assert_null(xbuf_take(&b, &len));
	cr_assert_eq(len, 0);
	cr_assert(xbuf_ok(&b));

	xbuf_printf(&b, "%s", "toolong");
	cr_assert_not(xbuf_ok(&b));
	xbuf_reset(&b);
	cr_assert(xbuf_ok(&b));
	cr_assert_eq(b.len, 0);
	xbuf_printf(&b, "%d", 42);
	p = xbuf_take(&b, NULL);
	cr_assert_str_eq(p, "42");
	free(p);

	/* escaping that grows past max fails the buffer too */
	xbuf_esc(&b, "&&", 2);
	cr_assert_not(xbuf_ok(&b));
	xbuf_free(&b);
}

/* ---- escaping ---- */

static char *
escaped(const char *s, size_t n, bool attr)
{
	struct xbuf b;

	xbuf_init(&b, 0);
	if (attr) {
		char *v = malloc(n + 1);

		memcpy(v, s, n);
		v[n] = '\0';
		xbuf_attr(&b, "a", v);
		free(v);
	} else {
		xbuf_esc(&b, s, n);
	}
	cr_assert(xbuf_ok(&b));
	return xbuf_take(&b, NULL);
}

#define assert_esc(in, want) do {						\
		char *e_ = escaped((in), sizeof(in) - 1, false);		\
		cr_assert_str_eq(e_, (want));					\
		free(e_);							\
	} while (0)

Test(xccos, esc_markup_and_controls)
{
	assert_esc("plain text", "plain text");
	assert_esc("&<>\"'", "&amp;&lt;&gt;&quot;&apos;");
	assert_esc("]]>", "]]&gt;");
	assert_esc("a\tb\nc\r\nd", "a\tb\nc&#13;\nd");
	assert_esc("\x01" "a\x1f" "b\x0b\x0c", "\xef\xbf\xbd" "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
	assert_esc("nul\0end", "nul\xef\xbf\xbd" "end");
	assert_esc("del\x7f", "del\x7f");		/* allowed in XML 1.0 */
	assert_esc("\xc2\x85", "\xc2\x85");		/* C1 NEL: allowed too */

	{
		char *e = escaped("\t\r\n<", 4, true);

		cr_assert_str_eq(e, " a=\"&#9;&#13;&#10;&lt;\"");
		free(e);
	}
}

Test(xccos, esc_invalid_utf8)
{
	assert_esc("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_esc("\xef\xbf\xbd", "\xef\xbf\xbd");
	assert_esc("\xef\xbf\xbe", "\xef\xbf\xbd");			/* U+FFFE */
	assert_esc("\xef\xbf\xbf", "\xef\xbf\xbd");			/* U+FFFF */
	assert_esc("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");		/* U+10FFFF */
	assert_esc("a\x80" "b", "a\xef\xbf\xbd" "b");			/* lone continuation */
	assert_esc("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");		/* overlong '/' */
	assert_esc("\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_esc("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");	/* surrogate */
	assert_esc("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_esc("\xf5\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_esc("\xe2\x82" "A", "\xef\xbf\xbd" "A");		/* truncated: one U+FFFD */
	assert_esc("\xf0\x9f\x98", "\xef\xbf\xbd");			/* truncated at the end */
	assert_esc("\xe2\x82<", "\xef\xbf\xbd&lt;");
}

/* Hostile strings as text and as an attribute value: the result must be
 * well-formed, and read back as the original, or, where XML cannot carry a
 * byte, with U+FFFD in its place. */
Test(xccos, esc_hostile_strings_reparse)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "\"/><script>alert(1)</script>", NULL },
		{ "]]><![CDATA[x", NULL },
		{ "&amp;&#38;&lt;", NULL },
		{ "<!DOCTYPE x [<!ENTITY a \"b\">]>", NULL },
		{ "' onload='x", NULL },
		{ "line1\r\nline2\ttab\rcr", NULL },
		{ "</xccos></grpchat>", NULL },
		{ "\x01\x02\x08\x1b[31m", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd[31m" },
		{ "\xfe\xff\xc3", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xef\xbf\xbe\xef\xbf\xbf", "\xef\xbf\xbd\xef\xbf\xbd" },
	};
	size_t k;

	for (k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		const char *want = t[k].out != NULL ? t[k].out : t[k].in;
		char *a = escaped(t[k].in, strlen(t[k].in), true);
		char *x = escaped(t[k].in, strlen(t[k].in), false);
		char doc[1024];
		xmlDocPtr d;
		xmlChar *v;

		snprintf(doc, sizeof(doc), "<r%s>%s</r>", a, x);
		d = reparse(doc, strlen(doc));
		v = xmlGetNoNsProp(xmlDocGetRootElement(d), (const xmlChar *)"a");
		cr_assert_str_eq((const char *)v, want, "attribute of case %zu", k);
		xmlFree(v);
		v = xmlNodeGetContent(xmlDocGetRootElement(d));
		cr_assert_str_eq((const char *)v, want, "text of case %zu", k);
		xmlFree(v);
		xmlFreeDoc(d);
		free(a);
		free(x);
	}
}

/* Random bytes, escaped, always give a well-formed document. */
Test(xccos, esc_random_bytes_always_well_formed)
{
	uint32_t seed = 12345;
	unsigned char in[64];
	int round;

	xmlSetStructuredErrorFunc(NULL, test_xccos_quiet);
	for (round = 0; round < 3000; round++) {
		size_t n = (seed >> 8) % sizeof(in), k;
		char *a, *x, *doc;
		xmlDocPtr d;

		for (k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			in[k] = (unsigned char)(seed >> 16);
			/* bias towards the interesting bytes */
			if (round % 3 == 0 && (in[k] & 0x40))
				in[k] = (unsigned char)(0x80 | (in[k] & 0x7f));
		}
		seed = seed * 1103515245u + 12345u;
		a = escaped((const char *)in, n, false);
		x = escaped((const char *)in, n, false);
		doc = malloc(strlen(a) + strlen(x) + 32);
		cr_assert_not_null(doc);
		sprintf(doc, "<r a=\"%s\">%s</r>", a, x);
		d = xmlReadMemory(doc, (int)strlen(doc), NULL, "UTF-8", XML_PARSE_NONET);
		cr_assert_not_null(d, "round %d not well-formed: %s", round, doc);
		xmlFreeDoc(d);
		free(doc);
		free(a);
		free(x);
	}
	xmlSetStructuredErrorFunc(NULL, NULL);
}

/* ---- timestamps (§b.9) ---- */

static uint64_t
ref_100ns(int y, int mo, int d, int h, int mi, int s, unsigned frac)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return (uint64_t)timegm(&tm) * 10000000u + frac;
}

Test(xccos, ts_format)
{
	char out[XCCOS_TS_LEN];

	xccos_ts_format(0, out);
	cr_assert_str_eq(out, "1970-01-01T00:00:00.0000000Z");
	cr_assert_eq(strlen(out), 28);
	xccos_ts_format(ref_100ns(2010, 9, 14, 14, 26, 17, 6206356), out);
	cr_assert_str_eq(out, "2010-09-14T14:26:17.6206356Z");
	xccos_ts_format(ref_100ns(2024, 2, 29, 23, 59, 59, 9999999), out);
	cr_assert_str_eq(out, "2024-02-29T23:59:59.9999999Z");
	xccos_ts_format(ref_100ns(9999, 12, 31, 23, 59, 59, 1), out);
	cr_assert_str_eq(out, "9999-12-31T23:59:59.0000001Z");
	/* beyond four-digit years: clamped, never longer */
	xccos_ts_format(UINT64_MAX, out);
	cr_assert_str_eq(out, "9999-12-31T23:59:59.9999999Z");
	xccos_ts_format(ref_100ns(10000, 1, 1, 0, 0, 0, 0), out);
	cr_assert_str_eq(out, "9999-12-31T23:59:59.9999999Z");
}

Test(xccos, ts_parse_forms)
{
	static const struct {
		const char *s;
		uint64_t frac;
	} ok[] = {
		{ "2010-09-21T09:48:10Z", 0 },
		{ "2010-09-21T09:48:10", 0 },
		{ "2010-09-21T09:48:10.1Z", 1000000 },
		{ "2010-09-21T09:48:10.1", 1000000 },
		{ "2010-09-21T09:48:10.0000001Z", 1 },
		{ "2010-09-21T09:48:10.9999999Z", 9999999 },
		{ "2010-09-21T09:48:10.1234567", 1234567 },
		{ "2010-09-21T09:48:10.123456789Z", 1234567 },	/* digits past 7 dropped */
		{ "2010-09-21T09:48:10.000Z", 0 },
	};
	uint64_t base = ref_100ns(2010, 9, 21, 9, 48, 10, 0), v;
	size_t k;

	for (k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
		v = 0;
		cr_assert_eq(xccos_ts_parse(ok[k].s, &v), 0, "%s", ok[k].s);
		cr_assert_eq(v, base + ok[k].frac, "%s", ok[k].s);
	}
	cr_assert_eq(xccos_ts_parse("1970-01-01T00:00:00Z", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(xccos_ts_parse("2000-02-29T00:00:00Z", &v), 0);
	cr_assert_eq(v, ref_100ns(2000, 2, 29, 0, 0, 0, 0));
	cr_assert_eq(xccos_ts_parse("2024-02-29T12:00:00Z", &v), 0);
	cr_assert_eq(v, ref_100ns(2024, 2, 29, 12, 0, 0, 0));
	cr_assert_eq(xccos_ts_parse("9999-12-31T23:59:59.9999999Z", &v), 0);
	cr_assert_eq(v, ref_100ns(9999, 12, 31, 23, 59, 59, 9999999));
	cr_assert_eq(xccos_ts_parse("2016-12-31T23:59:60Z", &v), 0);
	cr_assert_eq(v, ref_100ns(2017, 1, 1, 0, 0, 0, 0));
}

Test(xccos, ts_parse_rejects_garbage)
{
	static const char *const bad[] = {
		"", "Z", "2010", "2010-09-21", "2010-09-21T09:48", "2010-09-21T09:48:1",
		"2010-09-21 09:48:10Z", "2010-09-21t09:48:10Z", "2010/09/21T09:48:10Z",
		"2010-09-21T09:48:10ZZ", "2010-09-21T09:48:10z", "2010-09-21T09:48:10.Z",
		"2010-09-21T09:48:10.", "2010-09-21T09:48:10.12a", "2010-09-21T09:48:10+01:00",
		"2010-09-21T09:48:10-00:00", " 2010-09-21T09:48:10Z", "2010-09-21T09:48:10Z ",
		"+010-09-21T09:48:10Z", "2010-+9-21T09:48:10Z", "2010-09-21T09:48:-1Z",
		"2010-00-21T09:48:10Z", "2010-13-21T09:48:10Z", "2010-09-00T09:48:10Z",
		"2010-09-31T09:48:10Z", "2023-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
		"2010-09-21T24:00:00Z", "2010-09-21T09:60:10Z", "2010-09-21T09:48:61Z",
		"1969-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2010-09-21T09:48:10\n",
		"2010-09-21T09:48:10.1234567\xc2\xa0", "\xef\xbf\xbd",
	};
	uint64_t v = 77;
	size_t k;

	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		cr_assert_eq(xccos_ts_parse(bad[k], &v), -EINVAL, "accepted \"%s\"", bad[k]);
	cr_assert_eq(v, 77, "written on failure");
	cr_assert_eq(xccos_ts_parse(NULL, &v), -EINVAL);
}

Test(xccos, ts_round_trip)
{
	const uint64_t max = UINT64_C(253402300799) * 10000000u + 9999999u;
	uint64_t x = UINT64_C(0x9e3779b97f4a7c15), v, back;
	char out[XCCOS_TS_LEN];
	struct tm tm;
	time_t t;
	int i;

	for (i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = i < 1000 ? (uint64_t)i * 9999991u : x % (max + 1);
		xccos_ts_format(v, out);
		cr_assert_eq(strlen(out), 28);
		cr_assert_eq(xccos_ts_parse(out, &back), 0, "%s", out);
		cr_assert_eq(back, v, "%s: %" PRIu64 " != %" PRIu64, out, back, v);
		if (i % 97 == 0) {
			/* and against the C library */
			t = (time_t)(v / 10000000u);
			gmtime_r(&t, &tm);
			cr_assert_eq(ref_100ns(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
					       tm.tm_min, tm.tm_sec, (unsigned)(v % 10000000u)), v);
		}
	}
}
