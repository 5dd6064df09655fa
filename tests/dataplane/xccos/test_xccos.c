/* Unit tests for dataplane/xccos/xccos.c, the parser: every command shape
 * of shared/protocol/xccos.md §b.6, grpchat and its verbatim inner slice,
 * hostile documents (DTDs, depth, size, not well-formed). The builders,
 * escaping and timestamps are test_xccos_build.c's (the same suite).
 *
 * Every document handed to xccos_parse is copied to a malloc()ed buffer of
 * its exact length, without a NUL, so that ASan catches any read past the
 * end (the parser must never assume NUL termination). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "dataplane/base/clock.h"
#include "dataplane/xccos/xccos.h"
#include "tests/dataplane/xccos/test_xccos.h"

#define ENV_OPEN	"<xccos ver=\"1\" envid=\"1804289383\" xmlns=\"urn:parlano:xml:ns:xccos\">"
#define ENV(body)	ENV_OPEN body "</xccos>"

static const struct xccos_limits lim = { .max_doc = 65536, .max_depth = 32 };

static struct xccos_msg msg;
static char *held;		/* the exact-size copy msg.inner points into */
static size_t held_len;
static char err[256];

static void
release(void)
{
	xccos_msg_free(&msg);
	free(held);
	held = NULL;
}

static void
setup(void)
{
	xccos_global_init();
}

TestSuite(xccos, .init = setup, .fini = release);

static int
parse_lim(const char *s, size_t len, const struct xccos_limits *l)
{
	release();
	held = malloc(len > 0 ? len : 1);
	cr_assert_not_null(held);
	memcpy(held, s, len);
	held_len = len;
	strcpy(err, "untouched");
	return xccos_parse(held, len, l, &msg, err, sizeof(err));
}

static int
parse(const char *s)
{
	return parse_lim(s, strlen(s), &lim);
}

int
test_xccos_parse(const char *s, size_t len)
{
	return parse_lim(s, len, &lim);
}

static void
expect_ok(const char *doc)
{
	int rc = parse(doc);

	cr_assert_eq(rc, 0, "rc %d (%s) for: %s", rc, err, doc);
	cr_assert_str_empty(err);
}

static void
expect_fail_n(const char *doc, size_t len, int want)
{
	static const char zero[sizeof(struct xccos_msg)];
	int rc = parse_lim(doc, len, &lim);

	cr_assert_eq(rc, want, "rc %d (%s), want %d for: %.200s", rc, err, want, doc);
	cr_assert_str_neq(err, "untouched");
	cr_assert_str_not_empty(err, "no reason given");
	cr_assert_null(strchr(err, '\n'), "reason not one line: %s", err);
	cr_assert_eq(memcmp(&msg, zero, sizeof(msg)), 0, "msg not left zeroed");
}

static void
expect_fail(const char *doc, int want)
{
	expect_fail_n(doc, strlen(doc), want);
}

static void
assert_inner(const char *want)
{
	cr_assert_eq(msg.inner_len, strlen(want), "inner \"%.*s\", want \"%s\"",
		     (int)msg.inner_len, msg.inner, want);
	cr_assert_eq(memcmp(msg.inner, want, msg.inner_len), 0, "inner \"%.*s\", want \"%s\"",
		     (int)msg.inner_len, msg.inner, want);
	cr_assert(msg.inner >= held && msg.inner + msg.inner_len <= held + held_len,
		  "inner does not point into the input");
}

/* ---- commands (§b.6) ---- */

static const struct {
	const char *cmd;	/* as shown in xccos.md */
	const char *name;
	const char *block;	/* first element in <data>, NULL when empty */
	const char *attr, *value;
} cmds[] = {
	{ "<cmd id=\"cmd:requri\" seqid=\"1\"><data/></cmd>", "requri", NULL, NULL, NULL },
	{ "<cmd id=\"cmd:getserverinfo\" seqid=\"1\"><data>\n"
	  "  <sib domain=\"example.com\" infoType=\"123\"/></data></cmd>",
	  "getserverinfo", "sib", "infoType", "123" },
	{ "<cmd id=\"cmd:chansrch\" seqid=\"1\"><data>\n"
	  "  <qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/></data></cmd>",
	  "chansrch", "qib", "criteria", "" },
	{ "<cmd id=\"cmd:join\" seqid=\"1\"><data>\n"
	  "  <chanid key=\"0\" domain=\"example.com\" "
	  "value=\"5b0c7c1e-1111-4a6e-9d6b-2f0d5e7f0a01\"/></data></cmd>",
	  "join", "chanid", "value", "5b0c7c1e-1111-4a6e-9d6b-2f0d5e7f0a01" },
	{ "<cmd id=\"cmd:bjoin\" seqid=\"1\"><data>\n"
	  "  <chanid key=\"0\" domain=\"example.com\" value=\"5b0c7c1e-...\"/>\n"
	  "  <chanid key=\"1\" domain=\"example.com\" value=\"77aa0c3d-...\"/></data></cmd>",
	  "bjoin", "chanid", "value", "5b0c7c1e-..." },
	{ "<cmd id=\"cmd:part\" seqid=\"1\"><data><chanib "
	  "uri=\"ma-chan://example.com/5b0c7c1e-...\"/></data></cmd>",
	  "part", "chanib", "uri", "ma-chan://example.com/5b0c7c1e-..." },
	{ "<cmd id=\"cmd:bccontext\" seqid=\"1\"><data>\n"
	  "  <chanib uri=\"ma-chan://example.com/5b0c7c1e-...\"/>\n"
	  "  <bcq><last cnt=\"25\"/></bcq></data></cmd>",
	  "bccontext", "chanib", "uri", "ma-chan://example.com/5b0c7c1e-..." },
	{ "<cmd id=\"cmd:getinv\" seqid=\"1\"><data><inv inviteId=\"1\" "
	  "domain=\"example.com\"/></data></cmd>",
	  "getinv", "inv", "inviteId", "1" },
	{ "<cmd id=\"cmd:getpref\" seqid=\"1\"><data>\n"
	  "  <pref label=\"alice.GroupChannels\" seqid=\"71\" createdefault=\"true\"/></data></cmd>",
	  "getpref", "pref", "label", "alice.GroupChannels" },
	{ "<cmd id=\"cmd:setpref\" seqid=\"1\"><data>\n"
	  "  <pref label=\"alice.GroupChannels\" seqid=\"71\" createdefault=\"false\" "
	  "content=\"PD94bWwg...\"/></data></cmd>",
	  "setpref", "pref", "content", "PD94bWwg..." },
	{ "<cmd id=\"cmd:nodespermcreatechild\" seqid=\"1\"><data/></cmd>",
	  "nodespermcreatechild", NULL, NULL, NULL },
	{ "<cmd id=\"cmd:getfutok\" seqid=\"1\"><data>\n"
	  "  <ftdb channelUri=\"ma-chan://example.com/5b0c7c1e-...\" "
	  "fileUrl=\"report.txt\"/></data></cmd>",
	  "getfutok", "ftdb", "fileUrl", "report.txt" },
	{ "<cmd id=\"cmd:getfdtok\" seqid=\"1\"><data>\n"
	  "  <ftdb channelUri=\"ma-chan://example.com/5b0c7c1e-...\" "
	  "fileUrl=\"report-copy.txt\"/></data></cmd>",
	  "getfdtok", "ftdb", "fileUrl", "report-copy.txt" },
};

Test(xccos, every_cmd_shape_of_b6_parses)
{
	char doc[1024];
	size_t k;

	for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		xmlNodePtr blk;

		snprintf(doc, sizeof(doc), "%s\n %s</xccos>", ENV_OPEN, cmds[k].cmd);
		expect_ok(doc);
		cr_assert_eq(msg.kind, XCCOS_CMD);
		cr_assert_str_eq(msg.name, cmds[k].name);
		cr_assert_str_eq(msg.seqid, "1");
		cr_assert_str_eq(msg.envid, "1804289383");
		cr_assert_not_null(msg.data, "%s: no data", cmds[k].name);
		cr_assert_str_eq((const char *)msg.data->name, "data");
		cr_assert_null(msg.chan_uri);
		cr_assert_null(msg.text);
		cr_assert_null(msg.extra_attrs);
		cr_assert_null(msg.inner);
		blk = xccos_child(msg.data, NULL);
		if (cmds[k].block == NULL) {
			cr_assert_null(blk, "%s: data not empty", cmds[k].name);
			continue;
		}
		blk = xccos_child(msg.data, cmds[k].block);
		cr_assert_not_null(blk, "%s: no <%s>", cmds[k].name, cmds[k].block);
		cr_assert_str_eq(xccos_attr(blk, cmds[k].attr), cmds[k].value);
	}
}

Test(xccos, bjoin_blocks_walk_in_order)
{
	static const char *const want[] = { "5b0c7c1e-...", "77aa0c3d-..." };
	char doc[1024];
	xmlNodePtr c;
	int n = 0;

	snprintf(doc, sizeof(doc), ENV("%s"), cmds[4].cmd);
	expect_ok(doc);
	for (c = xccos_child(msg.data, "chanid"); c != NULL; c = xccos_next(c, "chanid")) {
		cr_assert_lt(n, 2);
		cr_assert_str_eq(xccos_attr(c, "value"), want[n]);
		cr_assert_str_eq(xccos_attr(c, "domain"), "example.com");
		n++;
	}
	cr_assert_eq(n, 2);
}

Test(xccos, bccontext_nested_blocks)
{
	xmlNodePtr bcq, last;

	expect_ok(ENV("<cmd id=\"cmd:bccontext\" seqid=\"1\"><data>"
		      "<chanib uri=\"ma-chan://example.com/x\"/><!-- c --><bcq><last cnt=\"25\"/>"
		      "</bcq></data></cmd>"));
	bcq = xccos_child(msg.data, "bcq");
	cr_assert_not_null(bcq);
	cr_assert_eq(xccos_next(xccos_child(msg.data, "chanib"), NULL), bcq);
	last = xccos_child(bcq, "last");
	cr_assert_str_eq(xccos_attr(last, "cnt"), "25");
	cr_assert_null(xccos_attr(last, "missing"));
	cr_assert_null(xccos_attr(NULL, "cnt"));
	cr_assert_null(xccos_child(NULL, "x"));
	cr_assert_null(xccos_next(NULL, "x"));
}

Test(xccos, cmd_defaults_and_variants)
{
	/* no seqid, no envid, no ver, no namespace */
	expect_ok("<xccos><cmd id=\"cmd:requri\"><data/></cmd></xccos>");
	cr_assert_str_eq(msg.name, "requri");
	cr_assert_str_eq(msg.seqid, "1");
	cr_assert_str_eq(msg.envid, "");

	/* an id without the prefix is kept as sent */
	expect_ok(ENV("<cmd id=\"requri\" seqid=\"7\"><data/></cmd>"));
	cr_assert_str_eq(msg.name, "requri");
	cr_assert_str_eq(msg.seqid, "7");

	/* no <data>: parsed, the caller replies 400 */
	expect_ok(ENV("<cmd id=\"cmd:join\" seqid=\"1\"/>"));
	cr_assert_null(msg.data);

	/* prefixed namespace, declaration, comments and PIs around */
	expect_ok("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- hi -->\n"
		  "<x:xccos xmlns:x=\"urn:parlano:xml:ns:xccos\" ver=\"1\" envid=\"42\">"
		  "<?pi x?><!-- c --> text <x:cmd id=\"cmd:part\" seqid=\"3\"><x:data>"
		  "<x:chanib uri=\"u\"/></x:data></x:cmd></x:xccos>\n<!-- after -->\n");
	cr_assert_str_eq(msg.name, "part");
	cr_assert_str_eq(msg.envid, "42");
	cr_assert_str_eq(msg.seqid, "3");
	cr_assert_str_eq(xccos_attr(xccos_child(msg.data, "chanib"), "uri"), "u");

	/* attribute values are decoded */
	expect_ok(ENV("<cmd id=\"cmd:chansrch\"><data><qib criteria=\"a &amp; b &#x3C; &quot;\"/>"
		      "</data></cmd>"));
	cr_assert_str_eq(xccos_attr(xccos_child(msg.data, "qib"), "criteria"), "a & b < \"");
}

Test(xccos, field_lengths)
{
	char doc[512];
	char s47[48], s48[49], s31[32], s32[33];

	memset(s47, 'a', 47);
	s47[47] = '\0';
	memset(s48, 'a', 48);
	s48[48] = '\0';
	memset(s31, '9', 31);
	s31[31] = '\0';
	memset(s32, '9', 32);
	s32[32] = '\0';

	snprintf(doc, sizeof(doc), ENV("<cmd id=\"cmd:%s\" seqid=\"%s\"/>"), s47, s31);
	expect_ok(doc);
	cr_assert_str_eq(msg.name, s47);
	cr_assert_str_eq(msg.seqid, s31);

	snprintf(doc, sizeof(doc), ENV("<cmd id=\"cmd:%s\"/>"), s48);
	expect_fail(doc, -EBADMSG);
	snprintf(doc, sizeof(doc), ENV("<cmd id=\"cmd:x\" seqid=\"%s\"/>"), s32);
	expect_fail(doc, -EBADMSG);
	snprintf(doc, sizeof(doc), "<xccos ver=\"1\" envid=\"%s\"><cmd id=\"cmd:x\"/></xccos>", s31);
	expect_ok(doc);
	cr_assert_str_eq(msg.envid, s31);
	snprintf(doc, sizeof(doc), "<xccos ver=\"1\" envid=\"%s\"><cmd id=\"cmd:x\"/></xccos>", s32);
	expect_fail(doc, -EBADMSG);
	snprintf(doc, sizeof(doc),
		 ENV("<grpchat seqid=\"%s\" chanUri=\"c\" author=\"a\"><chat>x</chat></grpchat>"), s32);
	expect_fail(doc, -EBADMSG);
}

/* ---- grpchat (§b.6.6) ---- */

Test(xccos, grpchat_sipe_post)
{
	expect_ok("<xccos ver=\"1\" envid=\"1804289390\" xmlns=\"urn:parlano:xml:ns:xccos\">\n"
		  " <grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"ma-chan://example.com/5b0c7c1e-...\"\n"
		  "          author=\"sip:alice@example.com\" ts=\"2010-09-21T09:48:10Z\">\n"
		  "   <chat>Build is green &amp; tagged</chat></grpchat></xccos>");
	cr_assert_eq(msg.kind, XCCOS_GRPCHAT);
	cr_assert_str_eq(msg.name, "grpchat");
	cr_assert_str_eq(msg.seqid, "1");
	cr_assert_str_eq(msg.envid, "1804289390");
	cr_assert_str_eq(msg.chan_uri, "ma-chan://example.com/5b0c7c1e-...");
	cr_assert_str_eq(msg.author, "sip:alice@example.com");
	cr_assert_str_eq(msg.ts, "2010-09-21T09:48:10Z");
	cr_assert_str_eq(msg.text, "Build is green & tagged");
	cr_assert_eq(msg.text_len, strlen("Build is green & tagged"));
	cr_assert_str_eq(msg.extra_attrs, "");
	cr_assert_null(msg.data);
	assert_inner("\n   <chat>Build is green &amp; tagged</chat>");
}

Test(xccos, grpchat_with_declaration_bom_and_comments)
{
	expect_ok("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
		  "<!-- <grpchat> in a comment > -->\r\n<?pi <grpchat>?>\r\n"
		  ENV_OPEN "<!-- <grpchat/> --><?p ?><![CDATA[<grpchat>]]>"
		  "<grpchat chanUri=\"c\" author=\"a\" ts=\"t\"><chat>hi</chat></grpchat>"
		  "</xccos><!-- </grpchat> -->\r\n");
	cr_assert_str_eq(msg.text, "hi");
	assert_inner("<chat>hi</chat>");
}

Test(xccos, grpchat_namespace_prefixes)
{
	expect_ok("<x:xccos xmlns:x=\"urn:parlano:xml:ns:xccos\" ver=\"1\" envid=\"5\">"
		  "<x:grpchat x:foo=\"1\" chanUri=\"c\" author=\"a\" ts=\"t\" seqid=\"2\">"
		  "<x:chat>hello <x:b>bold</x:b></x:chat></x:grpchat ></x:xccos>");
	cr_assert_str_eq(msg.text, "hello bold");
	cr_assert_str_eq(msg.seqid, "2");
	/* x is declared on the root: the relay declares it on its grpchat */
	cr_assert_str_eq(msg.extra_attrs, " xmlns:x=\"urn:parlano:xml:ns:xccos\" x:foo=\"1\"");
	assert_inner("<x:chat>hello <x:b>bold</x:b></x:chat>");

	/* a prefix on grpchat, the default namespace on the root */
	expect_ok(ENV("<g:grpchat xmlns:g=\"urn:parlano:xml:ns:xccos\" chanUri=\"c\" author=\"a\">"
		      "<chat>x</chat></g:grpchat>"));
	cr_assert_str_eq(msg.extra_attrs, " xmlns:g=\"urn:parlano:xml:ns:xccos\"");
	assert_inner("<chat>x</chat>");
}

Test(xccos, grpchat_attributes_holding_gt_and_slash_gt)
{
	expect_ok("<xccos ver=\"1\" note=\"a>b/>c\" other='/>' xmlns=\"urn:parlano:xml:ns:xccos\">"
		  "<grpchat label='x/>' other=\"y>\" chanUri=\"c>/>\" author=\"a\" ts=\"t\">"
		  "<chat title=\"/>\">q</chat></grpchat></xccos>");
	cr_assert_str_eq(msg.chan_uri, "c>/>");
	cr_assert_str_eq(msg.extra_attrs, " label=\"x/&gt;\" other=\"y&gt;\"");
	assert_inner("<chat title=\"/>\">q</chat>");
}

Test(xccos, grpchat_inner_is_verbatim)
{
	static const char inner[] =
		"\n  <chat>a &amp; b &lt;c&gt; &#x1F600; &#60; &quot;q&quot; \xc3\xa9</chat>"
		"<!-- </grpchat> --><![CDATA[ </grpchat> <grpchat> ]]>"
		"<grpchat>nested</grpchat><y:grpchat xmlns:y=\"urn:y\"/>"
		"<story title=\"T\"><p>x</p></story><?pi </grpchat>?>\n";

	expect_ok(ENV("<grpchat chanUri=\"c\" author=\"a\" ts=\"t\">" "\n  <chat>a &amp; b &lt;c&gt; "
		      "&#x1F600; &#60; &quot;q&quot; \xc3\xa9</chat><!-- </grpchat> --><![CDATA[ "
		      "</grpchat> <grpchat> ]]><grpchat>nested</grpchat><y:grpchat xmlns:y=\"urn:y\"/>"
		      "<story title=\"T\"><p>x</p></story><?pi </grpchat>?>\n</grpchat>"
		      "<grpchat><chat>second</chat></grpchat><!-- </grpchat> -->"));
	assert_inner(inner);
	cr_assert_str_eq(msg.text, "a & b <c> \xf0\x9f\x98\x80 < \"q\" \xc3\xa9");
}

Test(xccos, grpchat_cdata_text)
{
	expect_ok(ENV("<grpchat chanUri=\"c\" author=\"a\"><chat>x<![CDATA[a </grpchat> & <b>]]>y"
		      "</chat></grpchat>"));
	cr_assert_str_eq(msg.text, "xa </grpchat> & <b>y");
	assert_inner("<chat>x<![CDATA[a </grpchat> & <b>]]>y</chat>");
	cr_assert_null(msg.ts);
}

Test(xccos, grpchat_self_closing_and_empty)
{
	expect_ok(ENV("<grpchat chanUri=\"c\" author=\"a\" ts=\"t\" note=\"/>\"/>"));
	cr_assert_eq(msg.inner_len, 0);
	cr_assert_not_null(msg.inner);
	cr_assert_str_eq(msg.text, "");
	cr_assert_eq(msg.text_len, 0);
	cr_assert_str_eq(msg.extra_attrs, " note=\"/&gt;\"");

	expect_ok(ENV("<grpchat\n\tchanUri=\"c\"\n></grpchat\n>"));
	cr_assert_eq(msg.inner_len, 0);
	cr_assert_null(msg.author);
	cr_assert_null(msg.ts);
	cr_assert_str_eq(msg.seqid, "1");
}

Test(xccos, grpchat_without_chat_and_mixed_text)
{
	expect_ok(ENV("<grpchat chanUri=\"c\" author=\"a\"><alert level=\"high\"/></grpchat>"));
	cr_assert_str_eq(msg.text, "");
	assert_inner("<alert level=\"high\"/>");

	/* the FIRST chat, all of its text */
	expect_ok(ENV("<grpchat chanUri=\"c\" author=\"a\"><chat>a<b>c</b>d\r\ne</chat>"
		      "<chat>no</chat></grpchat>"));
	cr_assert_str_eq(msg.text, "acd\ne");	/* the parser turns CRLF into LF */
}

Test(xccos, grpchat_extra_attrs)
{
	expect_ok(ENV("<grpchat xmlns:e=\"urn:e\" id=\"grpchat\" seqid=\"1\" chanUri=\"c\" author=\"a\" "
		      "ts=\"t\" alert=\"true\" e:x=\"q&quot;&lt;&amp;'\" tab=\"a&#9;b&#10;c\" "
		      "xml:lang=\"en\" e:ts=\"not-ours\"><chat>x</chat></grpchat>"));
	cr_assert_str_eq(msg.extra_attrs,
			 " xmlns:e=\"urn:e\" alert=\"true\" e:x=\"q&quot;&lt;&amp;&apos;\""
			 " tab=\"a&#9;b&#10;c\" xml:lang=\"en\" e:ts=\"not-ours\"");
	cr_assert_str_eq(msg.ts, "t");
}

/* Relays <doc>'s grpchat as the channel service does (its own envelope and
 * ts around the client's extra attributes and inner bytes) and parses the
 * copy into <m2>: what every receiver's parser sees. */
static int
relay_copy(struct xccos_msg *m2, char **out)
{
	struct xbuf b;
	size_t len;

	xbuf_init(&b, 0);
	xccos_begin(&b, 7);
	xbuf_str(&b, "<grpchat id=\"grpchat\"");
	xbuf_attr(&b, "chanUri", msg.chan_uri);
	xbuf_attr(&b, "author", msg.author);
	xbuf_str(&b, msg.extra_attrs);
	xbuf_raw(&b, ">", 1);
	xbuf_raw(&b, msg.inner, msg.inner_len);
	xbuf_str(&b, "</grpchat>");
	xccos_end(&b);
	cr_assert(xbuf_ok(&b));
	*out = xbuf_take(&b, &len);
	memset(m2, 0, sizeof(*m2));
	return xccos_parse(*out, len, &lim, m2, err, sizeof(err));
}

/* Prefixes the client declared above grpchat (on xccos or on grpchat
 * itself) and used inside it still resolve in the relayed copy. */
Test(xccos, grpchat_relay_keeps_namespace_prefixes)
{
	static const char *const docs[] = {
		"<x:xccos xmlns:x=\"urn:parlano:xml:ns:xccos\" xmlns:r=\"urn:rich\" ver=\"1\">"
		"<x:grpchat r:style=\"b\" chanUri=\"c\" author=\"a\"><x:chat>hi</x:chat>"
		"<r:fmt r:k=\"1\"/></x:grpchat></x:xccos>",
		ENV("<grpchat xmlns:e=\"urn:e\" chanUri=\"c\" author=\"a\" e:x=\"1\">"
		    "<chat>yo</chat><e:meta/></grpchat>"),
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct xccos_msg m2;
		char *out, *text;

		expect_ok(docs[i]);
		text = strdup(msg.text);
		cr_assert_eq(relay_copy(&m2, &out), 0, "doc %zu: the relayed copy does not parse: "
			     "%s: %s", i, err, out);
		cr_assert_str_eq(m2.text, text);
		cr_assert_eq(m2.inner_len, msg.inner_len);
		xccos_msg_free(&m2);
		free(out);
		free(text);
	}
}

/* The relay the channel service does: its own envelope and ts around the
 * client's extra attributes and inner bytes. The copy must read back the
 * same. */
Test(xccos, grpchat_relay_round_trip)
{
	struct xccos_msg m2;
	struct xbuf b;
	char *out, *chan, *author, *extra, *text, *inner;
	char ts[XCCOS_TS_LEN];
	size_t len, inner_len;

	expect_ok(ENV("<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"ma-chan://e.com/&quot;x&quot;\" "
		      "author=\"sip:a@e.com\" ts=\"2010-09-21T09:48:10Z\" rich=\"1 &lt; 2\">"
		      "<chat>Build &amp; &lt;tag&gt;\r\nok</chat><story t=\"&amp;\">s</story>"
		      "</grpchat>"));
	chan = strdup(msg.chan_uri);
	author = strdup(msg.author);
	extra = strdup(msg.extra_attrs);
	text = strdup(msg.text);
	inner_len = msg.inner_len;
	inner = malloc(inner_len);
	memcpy(inner, msg.inner, inner_len);

	xccos_ts_format(UINT64_C(12848705901234567), ts);
	xbuf_init(&b, 0);
	xccos_begin(&b, 101);
	xbuf_str(&b, "<grpchat id=\"grpchat\"");
	xbuf_attr(&b, "seqid", msg.seqid);
	xbuf_attr(&b, "chanUri", msg.chan_uri);
	xbuf_attr(&b, "author", msg.author);
	xbuf_attr(&b, "ts", ts);
	xbuf_str(&b, msg.extra_attrs);
	xbuf_raw(&b, ">", 1);
	xbuf_raw(&b, msg.inner, msg.inner_len);
	xbuf_str(&b, "</grpchat>");
	xccos_end(&b);
	cr_assert(xbuf_ok(&b));
	out = xbuf_take(&b, &len);
	cr_assert_not_null(out);

	memset(&m2, 0, sizeof(m2));
	cr_assert_eq(xccos_parse(out, len, &lim, &m2, err, sizeof(err)), 0, "%s: %s", err, out);
	cr_assert_str_eq(m2.envid, "101");
	cr_assert_str_eq(m2.chan_uri, chan);
	cr_assert_str_eq(m2.author, author);
	cr_assert_str_eq(m2.ts, ts);
	cr_assert_str_eq(m2.extra_attrs, extra);
	cr_assert_str_eq(m2.text, text);
	cr_assert_eq(m2.inner_len, inner_len);
	cr_assert_eq(memcmp(m2.inner, inner, inner_len), 0);
	xccos_msg_free(&m2);
	free(out);
	free(chan);
	free(author);
	free(extra);
	free(text);
	free(inner);
}

/* ---- refused documents ---- */

static const char *const not_well_formed[] = {
	ENV("<cmd id=\"cmd:join\"><data></cmd>"),
	ENV("<cmd id=\"cmd:join\"><data/></cmd>") "<xccos/>",
	"<xccos ver=\"1\"><cmd id=\"cmd:join\"/>",
	"<xccos ver=\"1\"><cmd id=\"cmd:join/></xccos>",
	"<xccos ver=\"1\"><cmd id=\"cmd:join\" id=\"x\"/></xccos>",
	"<xccos ver=\"1\"><cmd id=\"a<b\"/></xccos>",
	"<xccos ver=\"1\"><grpchat><chat>a & b</chat></grpchat></xccos>",
	"<xccos ver=\"1\"><grpchat><chat>&bogus;</chat></grpchat></xccos>",
	"<xccos ver=\"1\"><grpchat><chat>&#1;</chat></grpchat></xccos>",
	"<xccos ver=\"1\"><grpchat><chat>\xc3\x28</chat></grpchat></xccos>",
	"<xccos ver=\"1\"><cmd id=\"cmd:x\" a=\"&ext;\"/></xccos>",
	"<xccos ver=\"1\"><p:cmd id=\"cmd:x\"/></xccos>",
	/* undeclared prefixes: only namespace errors to libxml2 */
	ENV("<grpchat chanUri=\"c\"><chat>x</chat><u:alert/></grpchat>"),
	"<xccos ver=\"1\" u:x=\"1\"><cmd id=\"cmd:x\"/></xccos>",
	"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><xccos><cmd id=\"\xe9\"/></xccos>",
	"hello",
	"   \r\n",
	"<",
	"<xccos",
	"\xef\xbb\xbf",
	"</xccos>",
};

Test(xccos, refuses_not_well_formed)
{
	size_t k;

	for (k = 0; k < sizeof(not_well_formed) / sizeof(not_well_formed[0]); k++)
		expect_fail(not_well_formed[k], -EBADMSG);
	expect_fail_n("", 0, -EBADMSG);
	expect_fail_n("<xccos>\0</xccos>", 16, -EBADMSG);
	cr_assert_eq(xccos_parse(NULL, 0, &lim, &msg, err, sizeof(err)), -EBADMSG);
	/* no err buffer at all */
	release();
	held = malloc(5);
	memcpy(held, "junk!", 5);
	cr_assert_eq(xccos_parse(held, 5, &lim, &msg, NULL, 0), -EBADMSG);
}

Test(xccos, refuses_wrong_envelopes)
{
	expect_fail("<foo ver=\"1\"><cmd id=\"cmd:join\"/></foo>", -EBADMSG);
	expect_fail("<xccos ver=\"1\" xmlns=\"urn:other\"><cmd id=\"cmd:join\"/></xccos>", -EBADMSG);
	expect_fail("<x:xccos xmlns:x=\"urn:parlano:xml:ns:xccosX\"><x:cmd id=\"cmd:join\"/></x:xccos>",
		    -EBADMSG);
	expect_fail("<p:foo xmlns:p=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:join\"/></p:foo>",
		    -EBADMSG);
	expect_fail("<xccos ver=\"2\"><cmd id=\"cmd:join\"/></xccos>", -EBADMSG);
	expect_fail("<xccos ver=\"\"><cmd id=\"cmd:join\"/></xccos>", -EBADMSG);
	expect_fail("<xccos ver=\" 1\"><cmd id=\"cmd:join\"/></xccos>", -EBADMSG);
	expect_fail(ENV(""), -EBADMSG);
	expect_fail(ENV("text only <!-- c -->"), -EBADMSG);
	expect_fail(ENV("<foo/>"), -EBADMSG);
	expect_fail(ENV("<cmd seqid=\"1\"><data/></cmd>"), -EBADMSG);
	expect_fail(ENV("<rpl id=\"rpl:join\" seqid=\"1\"><data/></rpl>"), -ENOTSUP);
	expect_fail(ENV("<ntc id=\"ntc:join\" seqid=\"1\"><data/></ntc>"), -ENOTSUP);

	/* with a namespace-qualified ver the root has no plain ver: version 1 */
	expect_ok("<xccos xmlns:q=\"urn:q\" q:ver=\"2\"><cmd id=\"cmd:requri\"/></xccos>");
}

static double
elapsed(uint64_t t0_ns)
{
	return (double)(clock_mono_ns() - t0_ns) / 1e9;
}

Test(xccos, refuses_billion_laughs_fast)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE xccos [\n"
		" <!ENTITY lol \"lol\">\n"
		" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		" <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
		" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
		" <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
		" <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
		" <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
		" <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
		" <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
		" <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
		"]>\n"
		ENV("<grpchat chanUri=\"c\" author=\"a\"><chat>&lol9;</chat></grpchat>");
	uint64_t t0;

	t0 = clock_mono_ns();
	expect_fail(doc, -EPERM);
	cr_assert_lt(elapsed(t0), 0.5);
}

Test(xccos, refuses_external_entities)
{
	expect_fail("<?xml version=\"1.0\"?><!DOCTYPE xccos [<!ENTITY xxe SYSTEM "
		    "\"file:///etc/passwd\">]>"
		    ENV("<grpchat chanUri=\"c\" author=\"a\"><chat>&xxe;</chat></grpchat>"), -EPERM);
	expect_fail("<!DOCTYPE xccos SYSTEM \"file:///etc/passwd\">"
		    ENV("<cmd id=\"cmd:x\"/>"), -EPERM);
	expect_fail("<!DOCTYPE xccos [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x.dtd\"> %p;]>"
		    ENV("<cmd id=\"cmd:x\"/>"), -EPERM);
	expect_fail("<!DOCTYPE xccos>" ENV("<cmd id=\"cmd:x\"/>"), -EPERM);
	/* anywhere in the bytes, even where it would be harmless */
	expect_fail(ENV("<grpchat chanUri=\"c\"><chat><![CDATA[<!ENTITY x>]]></chat></grpchat>"),
		    -EPERM);
	expect_fail(ENV("<!-- <!DOCTYPE --><cmd id=\"cmd:x\"/>"), -EPERM);
}

/* A UTF-16 document hides "<!DOCTYPE" from a byte scan. libxml2 is told the
 * input is UTF-8, so it must not be read as UTF-16 at all. */
Test(xccos, utf16_cannot_smuggle_a_dtd)
{
	static const char src[] = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>"
				  "<!DOCTYPE xccos [<!ENTITY e \"boom\">]>"
				  "<xccos ver=\"1\"><grpchat chanUri=\"c\"><chat>&e;</chat></grpchat></xccos>";
	char doc[2 * sizeof(src) + 2];
	size_t k, n;

	for (int bom = 0; bom < 2; bom++) {
		for (int be = 0; be < 2; be++) {
			n = 0;
			if (bom) {
				doc[n++] = be ? (char)0xfe : (char)0xff;
				doc[n++] = be ? (char)0xff : (char)0xfe;
			}
			for (k = 0; k < sizeof(src) - 1; k++) {
				doc[n++] = be ? 0 : src[k];
				doc[n++] = be ? src[k] : 0;
			}
			expect_fail_n(doc, n, -EBADMSG);
		}
	}
}

static char *
nest(unsigned depth, size_t *len)
{
	static const char open[] = ENV_OPEN "<cmd id=\"cmd:x\"><data>";
	static const char close[] = "</data></cmd></xccos>";
	size_t n = 0;
	char *p = malloc(sizeof(open) + sizeof(close) + (size_t)depth * 7);
	unsigned i;

	cr_assert_not_null(p);
	memcpy(p, open, sizeof(open) - 1);
	n = sizeof(open) - 1;
	for (i = 0; i < depth; i++, n += 3)
		memcpy(p + n, "<a>", 3);
	for (i = 0; i < depth; i++, n += 4)
		memcpy(p + n, "</a>", 4);
	memcpy(p + n, close, sizeof(close) - 1);
	*len = n + sizeof(close) - 1;
	return p;
}

Test(xccos, depth_limit)
{
	struct xccos_limits big = { .max_doc = 1 << 20, .max_depth = 32 };
	uint64_t t0;
	size_t len;
	char *d;

	/* xccos, cmd, data: three levels before the <a>s */
	d = nest(29, &len);
	cr_assert_eq(parse_lim(d, len, &lim), 0, "%s", err);
	free(d);
	d = nest(30, &len);
	expect_fail_n(d, len, -E2BIG);
	free(d);

	/* far past libxml2's own limit: stopped early, still -E2BIG */
	t0 = clock_mono_ns();
	d = nest(100000, &len);
	cr_assert_eq(parse_lim(d, len, &big), -E2BIG, "%s", err);
	free(d);
	cr_assert_lt(elapsed(t0), 1.0);

	/* within ours, past libxml2's (256 without XML_PARSE_HUGE) */
	big.max_depth = 1000;
	d = nest(300, &len);
	cr_assert_eq(parse_lim(d, len, &big), -E2BIG, "%s", err);
	free(d);
	d = nest(200, &len);
	cr_assert_eq(parse_lim(d, len, &big), 0, "%s", err);
	free(d);
}

Test(xccos, size_limit)
{
	struct xccos_limits small;
	const char *doc = ENV("<cmd id=\"cmd:requri\"><data/></cmd>");
	size_t n = strlen(doc);

	small.max_doc = n;
	small.max_depth = 8;
	cr_assert_eq(parse_lim(doc, n, &small), 0, "%s", err);
	small.max_doc = n - 1;
	cr_assert_eq(parse_lim(doc, n, &small), -E2BIG);
	cr_assert_str_not_empty(err);
	/* checked before anything else: even a DTD gets -E2BIG */
	small.max_doc = 4;
	cr_assert_eq(parse_lim("<!DOCTYPE x>", 12, &small), -E2BIG);
}

Test(xccos, default_limits)
{
	size_t len;
	char *d;

	cr_assert_eq(parse_lim(ENV("<cmd id=\"cmd:x\"/>"), strlen(ENV("<cmd id=\"cmd:x\"/>")), NULL),
		     0);
	d = nest(40, &len);
	cr_assert_eq(parse_lim(d, len, NULL), -E2BIG);
	free(d);
	d = calloc(1, 70000);
	memset(d, ' ', 70000);
	cr_assert_eq(parse_lim(d, 70000, NULL), -E2BIG);
	free(d);
}

/* Every refused document above, again, with stderr captured: libxml2 must
 * not have printed a word. */
Test(xccos, nothing_reaches_stderr, .init = cr_redirect_stderr)
{
	struct xccos_limits big = { .max_doc = 1 << 20, .max_depth = 1000 };
	size_t k, len;
	char *d;

	xccos_global_init();
	for (k = 0; k < sizeof(not_well_formed) / sizeof(not_well_formed[0]); k++)
		cr_assert_eq(parse(not_well_formed[k]), -EBADMSG);
	cr_assert_eq(parse("<foo/>"), -EBADMSG);
	cr_assert_eq(parse(ENV("<rpl/>")), -ENOTSUP);
	cr_assert_eq(parse("<!DOCTYPE x [<!ENTITY a SYSTEM \"file:///etc/passwd\">]><x>&a;</x>"),
		     -EPERM);
	cr_assert_eq(parse("<?xml version=\"1.0\"?><xccos><grpchat>\xff\xfe</grpchat></xccos>"),
		     -EBADMSG);
	d = nest(100000, &len);
	cr_assert_eq(parse_lim(d, len, &big), -E2BIG);
	free(d);
	release();
	fflush(stderr);
	cr_assert_stderr_eq_str("");
}

static int serror_calls, gerror_calls;

static void
count_serror(void *ctx, xmlErrorPtr e)
{
	serror_calls++;
}

static void
count_gerror(void *ctx, const char *m, ...)
{
	gerror_calls++;
}

/* The caller's handlers are left exactly as they were. */
Test(xccos, restores_error_handlers)
{
	xmlDocPtr doc;
	int tag;

	xmlSetStructuredErrorFunc(&tag, count_serror);
	xmlSetGenericErrorFunc(&tag, count_gerror);
	expect_fail("<xccos><unclosed></xccos>", -EBADMSG);
	cr_assert_eq(serror_calls, 0);
	cr_assert_eq(gerror_calls, 0);
	cr_assert_eq(xmlStructuredError, count_serror);
	cr_assert_eq(xmlStructuredErrorContext, &tag);
	cr_assert_eq(xmlGenericError, count_gerror);
	cr_assert_eq(xmlGenericErrorContext, &tag);

	doc = xmlReadMemory("<a><b></a>", 10, NULL, NULL, 0);
	cr_assert_null(doc);
	cr_assert_gt(serror_calls, 0);
	xmlSetStructuredErrorFunc(NULL, NULL);
	xmlSetGenericErrorFunc(NULL, NULL);
}

Test(xccos, msg_free_is_idempotent)
{
	struct xccos_msg m;

	memset(&m, 0, sizeof(m));
	xccos_msg_free(&m);
	xccos_msg_free(NULL);
	expect_ok(ENV("<grpchat chanUri=\"c\"><chat>x</chat></grpchat>"));
	xccos_msg_free(&msg);
	cr_assert_null(msg.doc_);
	cr_assert_null(msg.text);
	xccos_msg_free(&msg);
}

/* A deterministic mutation loop over a few seeds: byte flips, deletions,
 * duplications and truncation. Whatever comes out must be a documented
 * code, and an accepted grpchat's inner slice must lie inside the input and
 * be well-formed content on its own. */
void
test_xccos_quiet(void *ctx, xmlErrorPtr e)
{
}

Test(xccos, mutation_loop)
{
	static const char *const seeds[] = {
		"<?xml version=\"1.0\"?>" ENV("<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"c\" "
		"author=\"a\" ts=\"2010-09-21T09:48:10Z\" x='&gt;/>'><chat>a &amp; b<![CDATA[<x>]]>"
		"</chat><!-- </grpchat> --><grpchat>n</grpchat><b/></grpchat>"),
		"<x:xccos xmlns:x=\"urn:parlano:xml:ns:xccos\"><x:grpchat a=\"/>\"><x:chat>q</x:chat>"
		"</x:grpchat ></x:xccos>",
		ENV("<cmd id=\"cmd:bccontext\" seqid=\"1\"><data><chanib uri=\"u\"/><bcq>"
		    "<last cnt=\"25\"/></bcq></data></cmd>"),
	};
	static const char alphabet[] = "<>/\"'&;!?-[]: =x\xc3\xa9\x80";
	uint32_t seed = 1;
	char buf[512];
	int round, accepted = 0;

	for (round = 0; round < 30000; round++) {
		const char *src = seeds[round % 3];
		size_t n = strlen(src), k;
		int edits, rc;

		memcpy(buf, src, n);
		seed = seed * 1103515245u + 12345u;
		for (edits = 1 + (int)((seed >> 16) % 3); edits > 0; edits--) {
			size_t at;
			char c;

			if (n < 2)
				break;
			seed = seed * 1103515245u + 12345u;
			at = (seed >> 8) % n;
			c = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
			switch ((seed >> 28) % 4) {
			case 0:
				buf[at] = c;
				break;
			case 1:
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
				break;
			case 2:
				if (n + 1 < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, n - at);
					buf[at] = c;
					n++;
				}
				break;
			default:
				n = at + 1;
				break;
			}
		}
		rc = parse_lim(buf, n, &lim);
		cr_assert(rc == 0 || rc == -EBADMSG || rc == -ENOTSUP || rc == -EPERM ||
			  rc == -E2BIG, "rc %d for %.*s", rc, (int)n, buf);
		if (rc != 0 || msg.kind != XCCOS_GRPCHAT)
			continue;
		accepted++;
		cr_assert(msg.inner >= held && msg.inner + msg.inner_len <= held + held_len);
		{
			char wrap[600];
			xmlDocPtr d;

			k = (size_t)snprintf(wrap, sizeof(wrap), "<r>%.*s</r>", (int)msg.inner_len,
					     msg.inner);
			xmlSetStructuredErrorFunc(NULL, test_xccos_quiet);
			d = xmlReadMemory(wrap, (int)k, NULL, "UTF-8", XML_PARSE_NONET);
			xmlSetStructuredErrorFunc(NULL, NULL);
			cr_assert_not_null(d, "inner not well-formed: %s (from %.*s)", wrap, (int)n, buf);
			xmlFreeDoc(d);
		}
	}
	cr_assert_gt(accepted, 500);
}
