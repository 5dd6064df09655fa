/* Unit tests for dataplane/sip/sipmsg.c: RFC 4475 torture messages, hostile
 * inputs, a deterministic mutation loop and the string helpers.
 *
 * Files are read from $PARLEY_SRCDIR/tests/data/sip/. Every buffer handed to
 * the parser is malloc()ed at its exact length, so that ASan catches any read
 * past the end (the parser must never assume NUL termination). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/sip/sipmsg.h"
#include "tests/dataplane/sip/sipstr.h"

static const struct sipmsg_limits lim = { .max_msg = 65536, .max_headers = SIPMSG_HDR_CAP };

static struct sipmsg msg;	/* large: keep it off the stack */

static char *
load(const char *sub, const char *name, size_t *len)
{
	const char *src = getenv("PARLEY_SRCDIR");
	char path[1024];
	FILE *f;
	long n;
	char *buf;

	snprintf(path, sizeof(path), "%s/tests/data/sip/%s/%s", src != NULL ? src : ".", sub, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n > 0 ? (size_t)n : 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Exact-size heap copy of a literal. */
static char *
dup_exact(const char *s, size_t n)
{
	char *b = malloc(n > 0 ? n : 1);

	cr_assert_not_null(b);
	memcpy(b, s, n);
	return b;
}

/* Frames and parses a whole corpus file that must be one valid message. */
static char *
parse_valid(const char *name, size_t *len)
{
	char *buf = load("rfc4475", name, len);
	ssize_t n = sipmsg_frame(buf, *len, &lim);

	cr_assert_eq(n, (ssize_t)*len, "%s: frame %zd of %zu", name, n, *len);
	cr_assert_eq(sipmsg_parse(&msg, buf, *len, &lim), 0, "%s does not parse", name);
	return buf;
}

/* ---- RFC 4475 corpus, table-driven ------------------------------------- */

enum frame_want {
	F_ALL,		/* the file is exactly one message */
	F_PREFIX,	/* a complete message shorter than the file */
	F_WAIT,		/* 0: a stream transport waits for more bytes */
	F_BADMSG,	/* -EBADMSG: framing lost, close the connection */
};

static const struct corpus_case {
	const char *name;
	enum frame_want frame;
	int parse;	/* sipmsg_parse() on the framed length, or on the whole file */
	const char *why;
} rfc4475[] = {
	/* 3.1.1 valid */
	{ "wsinv", F_ALL, 0, "3.1.1.1" },
	{ "intmeth", F_ALL, 0, "3.1.1.2" },
	{ "esc01", F_ALL, 0, "3.1.1.3" },
	{ "escnull", F_ALL, 0, "3.1.1.4" },
	{ "esc02", F_ALL, 0, "3.1.1.5" },
	{ "lwsdisp", F_ALL, 0, "3.1.1.6" },
	{ "longreq", F_ALL, 0, "3.1.1.7" },
	{ "dblreq", F_PREFIX, 0, "3.1.1.8: two requests in one buffer" },
	{ "semiuri", F_ALL, 0, "3.1.1.9" },
	{ "transports", F_ALL, 0, "3.1.1.10" },
	{ "mpart01", F_ALL, 0, "3.1.1.11" },
	{ "unreason", F_ALL, 0, "3.1.1.12" },
	{ "noreason", F_ALL, 0, "3.1.1.13" },
	/* 3.1.2 invalid */
	{ "badinv01", F_ALL, -EBADMSG, "3.1.2.1: empty Via params -> 400" },
	{ "clerr", F_WAIT, -EBADMSG,
	  "3.1.2.2: Content-Length larger than the message: a stream waits (then times out); "
	  "parsed whole, the body is short" },
	{ "ncl", F_BADMSG, -EBADMSG, "3.1.2.3: negative Content-Length" },
	{ "scalar02", F_ALL, -EBADMSG, "3.1.2.4: CSeq > 2^32-1 -> 400" },
	{ "scalarlg", F_ALL, -EBADMSG, "3.1.2.5: response with CSeq > 2^32-1: dropped" },
	{ "quotbal", F_ALL, -EBADMSG, "3.1.2.6: unterminated quoted string -> 400" },
	{ "ltgtruri", F_ALL, -EBADMSG, "3.1.2.7: <> around Request-URI -> 400" },
	{ "lwsruri", F_ALL, -EBADMSG, "3.1.2.8: LWS inside Request-URI -> 400" },
	{ "lwsstart", F_ALL, -EBADMSG, "3.1.2.9: multiple SP in Request-Line -> 400" },
	{ "trws", F_ALL, 0, "3.1.2.10: trailing SP on Request-Line: we choose to be robust" },
	{ "escruri", F_ALL, -EBADMSG, "3.1.2.11: headers in Request-URI -> 400" },
	{ "baddate", F_ALL, 0,
	  "3.1.2.12: non-GMT Date: this layer does not read Date; the transaction user "
	  "ignores it (or answers 400)" },
	{ "regbadct", F_ALL, 0,
	  "3.1.2.13: Contact addr-spec with '?': the registrar parses Contact and answers 400" },
	{ "badaspec", F_ALL, -EBADMSG, "3.1.2.14: spaces inside <> -> 400" },
	/* The archived baddn lacks the empty line that ends its header section:
	 * a stream waits for it. With it, the display name is rejected (below). */
	{ "baddn", F_WAIT, -EBADMSG, "3.1.2.15: unquoted display name with ',' -> 400" },
	{ "badvers", F_ALL, -EPROTONOSUPPORT, "3.1.2.16: SIP/7.0 -> 505" },
	{ "mismatch01", F_ALL, -EBADMSG, "3.1.2.17: CSeq method != request method -> 400" },
	{ "mismatch02", F_ALL, -EBADMSG, "3.1.2.18: unknown method, CSeq mismatch -> 400" },
	{ "bigcode", F_ALL, -EBADMSG, "3.1.2.19: status code 4294967301: response dropped" },
	/* 3.2 transaction layer */
	{ "badbranch", F_ALL, 0,
	  "3.2.1: branch is only the magic cookie: valid syntax; the transaction layer "
	  "matches it like any other branch (we match by Call-ID + CSeq anyway)" },
	/* 3.3 application layer */
	{ "insuf", F_ALL, -EBADMSG, "3.3.1: missing From/To/Call-ID: 400 impossible, drop" },
	{ "unkscm", F_ALL, 0, "3.3.2: unknown Request-URI scheme: the TU answers 416" },
	{ "novelsc", F_ALL, 0, "3.3.3: unknown scheme soap.beep: the TU answers 416" },
	{ "unksm2", F_ALL, 0, "3.3.4: To/From of unknown scheme: the TU accepts or answers 416" },
	{ "bext01", F_ALL, 0, "3.3.5: unknown Require/Proxy-Require: the TU answers 420" },
	{ "invut", F_ALL, 0, "3.3.6: unknown Content-Type: the TU answers 415" },
	{ "regaut01", F_ALL, 0, "3.3.7: unknown auth scheme: the registrar challenges (407)" },
	{ "multi01", F_ALL, -EBADMSG, "3.3.8: several Call-ID/CSeq/From/To -> 400" },
	{ "mcl01", F_BADMSG, -EBADMSG, "3.3.9: two different Content-Length: framing lost" },
	{ "bcast", F_ALL, 0, "3.3.10: response with broadcast Via: the transaction layer drops it" },
	{ "zeromf", F_ALL, 0, "3.3.11: Max-Forwards 0: a proxy answers 483, the UAS answers" },
	{ "cparam01", F_ALL, 0, "3.3.12: Contact param outside <>: registrar semantics" },
	{ "cparam02", F_ALL, 0, "3.3.13: Contact param inside <>: registrar semantics" },
	{ "regescrt", F_ALL, 0, "3.3.14: escaped headers in Contact: the registrar answers 400" },
	{ "sdp01", F_ALL, 0, "3.3.15: Accept without SDP: the TU answers 415/488" },
	/* 3.4 backward compatibility */
	{ "inv2543", F_PREFIX, 0,
	  "3.4.1: RFC 2543 INVITE without Content-Length: on a stream the SDP then "
	  "becomes the next (garbage) message, which fails to parse" },
};

Test(sipmsg_rfc4475, corpus_table)
{
	size_t i, len;

	for (i = 0; i < sizeof(rfc4475) / sizeof(rfc4475[0]); i++) {
		const struct corpus_case *c = &rfc4475[i];
		char file[64];
		char *buf;
		ssize_t n;
		size_t plen;
		int rc;

		snprintf(file, sizeof(file), "%s.sip", c->name);
		buf = load("rfc4475", file, &len);
		n = sipmsg_frame(buf, len, &lim);
		switch (c->frame) {
		case F_ALL:
			cr_expect_eq(n, (ssize_t)len, "%s (%s): frame %zd, file %zu", c->name, c->why,
				     n, len);
			break;
		case F_PREFIX:
			cr_expect(n > 0 && (size_t)n < len, "%s: frame %zd, file %zu", c->name, n,
				  len);
			break;
		case F_WAIT:
			cr_expect_eq(n, 0, "%s: frame %zd", c->name, n);
			break;
		case F_BADMSG:
			cr_expect_eq(n, -EBADMSG, "%s: frame %zd", c->name, n);
			break;
		}
		plen = n > 0 ? (size_t)n : len;
		rc = sipmsg_parse(&msg, buf, plen, &lim);
		cr_expect_eq(rc, c->parse, "%s (%s): parse %d, want %d", c->name, c->why, rc,
			     c->parse);
		free(buf);
	}
}

/* Every file in the directory is in the table (none forgotten). */
Test(sipmsg_rfc4475, corpus_complete)
{
	size_t len, i, nfiles = 49;

	cr_assert_eq(sizeof(rfc4475) / sizeof(rfc4475[0]), nfiles);
	for (i = 0; i < nfiles; i++) {
		char file[64];

		snprintf(file, sizeof(file), "%s.sip", rfc4475[i].name);
		free(load("rfc4475", file, &len));
	}
}

Test(sipmsg_rfc4475, wsinv)
{
	size_t len;
	char *buf = parse_valid("wsinv.sip", &len);
	const struct sip_hdr *h;
	struct sip_nameaddr na;
	struct sip_str v, rest, item;
	int nvia = 0;

	cr_assert(msg.is_request);
	cr_assert_eq(msg.method, SIP_M_INVITE);
	assert_str(msg.ruri, "sip:vivekg@chair-dnrc.example.com;unknownparam");
	assert_str(msg.call_id, "wsinv.ndaksdj@192.0.2.1");
	cr_assert_eq(msg.cseq, 9);
	cr_assert_eq(msg.cseq_method, SIP_M_INVITE);
	assert_str(msg.to_uri, "sip:vivekg@chair-dnrc.example.com");
	assert_str(msg.to_tag, "1918181833n");
	assert_str(msg.from_uri, "sip:jdrosen@example.com");
	assert_str(msg.from_tag, "98asjd8");
	cr_assert_eq(msg.max_forwards, 68);
	cr_assert_eq(msg.content_length, 150);
	cr_assert_eq(msg.body.len, 150);
	cr_assert(msg.body.p + msg.body.len == buf + len);
	cr_assert(memcmp(msg.body.p, "v=0\r\n", 5) == 0);
	assert_str(msg.via_transport, "UDP");
	assert_str(msg.via_branch, "390skdjuw");

	/* escaped characters in the quoted display name are kept as is */
	h = sipmsg_find(&msg, SIP_H_FROM);
	cr_assert_not_null(h);
	cr_assert_eq(sip_nameaddr_parse(h->value, &na), 0);
	assert_str(na.display, "J Rosenberg \\\\\\\"");
	/* folded values are unfolded in place: CRLF became two spaces */
	h = sipmsg_find_name(&msg, "NewFangledHeader");
	cr_assert_not_null(h);
	assert_str(h->value, "newfangled value   continued newfangled value");
	h = sipmsg_find(&msg, SIP_H_CSEQ);
	assert_str(h->value, "0009    INVITE");
	h = sipmsg_find_name(&msg, "UnknownHeaderWithUnusualValue");
	assert_str(h->value, ";;,,;;,;");
	h = sipmsg_find(&msg, SIP_H_SUBJECT);
	cr_assert_not_null(h);
	assert_str(h->name, "s");
	assert_str(h->value, "");
	h = sipmsg_find(&msg, SIP_H_ROUTE);
	assert_str(h->value, "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>");

	/* three Via values over two header lines, long and compact form */
	for (h = sipmsg_find(&msg, SIP_H_VIA); h != NULL; h = sipmsg_find_next(&msg, h)) {
		rest = h->value;
		while (sip_list_next(&rest, &item))
			nvia++;
	}
	cr_assert_eq(nvia, 3);

	h = sipmsg_find(&msg, SIP_H_CONTACT);
	cr_assert_not_null(h);
	assert_str(h->name, "m");
	cr_assert_eq(sip_nameaddr_parse(h->value, &na), 0);
	assert_str(na.display, "Quoted string \\\"\\\"");
	assert_str(na.uri, "sip:jdrosen@example.com");
	cr_assert(sip_param_get(na.params, "newparam", &v));
	assert_str(v, "newvalue");
	cr_assert(sip_param_get(na.params, "secondparam", &v));
	assert_str(v, "");
	cr_assert(sip_param_get(na.params, "Q", &v));
	assert_str(v, "0.33");
	cr_assert_eq(msg.nhdr, 14);
	free(buf);
}

Test(sipmsg_rfc4475, intmeth)
{
	size_t len;
	char *buf = parse_valid("intmeth.sip", &len);
	const struct sip_hdr *h;
	struct sip_uri u;
	struct sip_nameaddr na;
	struct sip_str v;

	cr_assert_eq(msg.method, SIP_M_UNKNOWN);
	assert_str(msg.method_name, "!interesting-Method0123456789_*+`.%indeed'~");
	assert_str(msg.cseq_method_name, "!interesting-Method0123456789_*+`.%indeed'~");
	cr_assert_eq(msg.cseq, 139122385);
	cr_assert_eq(msg.max_forwards, 255);
	assert_str(msg.call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
	assert_str(msg.via_branch, "z9hG4bK-.!%66*_+`'~");
	assert_str(msg.from_tag, "_token~1'+`*%!-.");
	cr_assert_eq(sip_uri_parse(msg.ruri, &u), 0);
	assert_str(u.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
	assert_str(u.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
	assert_str(u.host, "example.com");
	/* quoted NUL, BEL and DEL survive inside the To display name */
	h = sipmsg_find(&msg, SIP_H_TO);
	cr_assert_eq(sip_nameaddr_parse(h->value, &na), 0);
	cr_assert_eq(na.display.len, 20);
	cr_assert(memcmp(na.display.p, "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f", 20) == 0);
	h = sipmsg_find(&msg, SIP_H_FROM);
	cr_assert_eq(sip_nameaddr_parse(h->value, &na), 0);
	assert_str(na.display, "token1~` token2'+_ token3*%!.-");
	cr_assert(sip_param_get(na.params, "fromParam''~+*_!.-%", &v));
	cr_assert_eq(v.len, 20);	/* UTF-8 Cyrillic, quotes stripped */
	h = sipmsg_find_name(&msg, "extensionHeader-!.%*+_`'~");
	cr_assert_not_null(h);
	assert_str(h->value, "\xEF\xBB\xBF\xE5\xA4\xA7\xE5\x81\x9C\xE9\x9B\xBB");
	cr_assert_eq(msg.content_length, 0);
	cr_assert_eq(msg.body.len, 0);
	free(buf);
}

Test(sipmsg_rfc4475, escapes)
{
	size_t len;
	char *buf;
	struct sip_uri u;
	const struct sip_hdr *h;
	char aor[128];

	buf = parse_valid("esc01.sip", &len);
	assert_str(msg.ruri, "sip:sips%3Auser%40example.com@example.net");
	cr_assert_eq(sip_uri_parse(msg.ruri, &u), 0);
	assert_str(u.user, "sips%3Auser%40example.com");	/* escapes not decoded */
	assert_str(u.host, "example.net");
	assert_str(msg.to_uri, "sip:%75se%72@example.com");
	cr_assert_eq(sip_uri_aor(msg.from_uri, aor, sizeof(aor)), 29);
	cr_assert_str_eq(aor, "I%20have%20spaces@example.net");
	cr_assert_eq(msg.body.len, 150);
	free(buf);

	buf = parse_valid("escnull.sip", &len);
	assert_str(msg.to_uri, "sip:null-%00-null@example.com");
	cr_assert_eq(sipmsg_find_next(&msg, sipmsg_find(&msg, SIP_H_CONTACT)) != NULL, true);
	free(buf);

	buf = parse_valid("esc02.sip", &len);
	cr_assert_eq(msg.method, SIP_M_UNKNOWN);	/* %-escapes do not make REGISTER */
	assert_str(msg.method_name, "RE%47IST%45R");
	assert_str(msg.cseq_method_name, "RE%47IST%45R");
	h = sipmsg_find_name(&msg, "C%6Fntact");
	cr_assert_not_null(h);
	cr_assert_eq(h->id, SIP_H_OTHER);
	free(buf);
}

Test(sipmsg_rfc4475, lwsdisp_longreq_semiuri)
{
	size_t len;
	char *buf;
	struct sip_nameaddr na;
	struct sip_uri u;
	const struct sip_hdr *h;
	int nvia = 0;

	buf = parse_valid("lwsdisp.sip", &len);
	cr_assert_eq(sip_nameaddr_parse(sipmsg_find(&msg, SIP_H_FROM)->value, &na), 0);
	assert_str(na.display, "caller");
	assert_str(msg.from_tag, "323");
	free(buf);

	buf = parse_valid("longreq.sip", &len);
	for (h = sipmsg_find(&msg, SIP_H_VIA); h != NULL; h = sipmsg_find_next(&msg, h))
		nvia++;
	cr_assert_eq(nvia, 34);
	cr_assert_eq(msg.via_branch.len, 0);	/* the top Via has none */
	assert_str(msg.via_transport, "TCP");
	cr_assert_eq(msg.from_tag.len, 2 + 150 + 3);
	cr_assert_eq(msg.call_id.len, 11 + 120 + 10);
	cr_assert_eq(msg.body.len, 150);
	free(buf);

	buf = parse_valid("semiuri.sip", &len);
	cr_assert_eq(sip_uri_parse(msg.ruri, &u), 0);
	assert_str(u.user, "user;par=u%40example.net");
	assert_str(u.host, "example.com");
	cr_assert_eq(u.params.len, 0);
	free(buf);
}

Test(sipmsg_rfc4475, dblreq_frames_first)
{
	size_t len;
	char *buf = load("rfc4475", "dblreq.sip", &len);
	ssize_t n = sipmsg_frame(buf, len, &lim), n2;
	size_t skip;

	cr_assert(n > 0 && (size_t)n < len);
	cr_assert_eq(sipmsg_parse(&msg, buf, (size_t)n, &lim), 0);
	cr_assert_eq(msg.method, SIP_M_REGISTER);
	assert_str(msg.call_id, "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
	/* Over UDP the rest is noise (RFC 3261 §18.3); on a stream it is the
	 * next message: a CRLF, then an INVITE whose body is longer than its
	 * Content-Length, so its tail becomes garbage in turn. */
	skip = sipmsg_skip_keepalive(buf + n, len - (size_t)n);
	cr_assert_eq(skip, 2);
	n2 = sipmsg_frame(buf + n + skip, len - (size_t)n - skip, &lim);
	cr_assert(n2 > 0 && (size_t)n2 < len - (size_t)n - skip);
	cr_assert_eq(sipmsg_parse(&msg, buf + n + skip, (size_t)n2, &lim), 0);
	cr_assert_eq(msg.method, SIP_M_INVITE);
	cr_assert_eq(msg.body.len, 150);
	/* and the whole buffer is not one message */
	cr_assert_eq(sipmsg_parse(&msg, buf, len, &lim), -EBADMSG);
	free(buf);
}

Test(sipmsg_rfc4475, transports_mpart_responses)
{
	size_t len;
	char *buf;
	const struct sip_hdr *h;
	const char *want[] = { "UDP ", "SCTP ", "TLS ", "UNKNOWN ", "TCP " };
	int i = 0;

	buf = parse_valid("transports.sip", &len);
	assert_str(msg.via_transport, "UDP");
	for (h = sipmsg_find(&msg, SIP_H_VIA); h != NULL; h = sipmsg_find_next(&msg, h), i++) {
		cr_assert(i < 5);
		cr_assert(h->value.len > 8 + strlen(want[i]) &&
			  memcmp(h->value.p + 8, want[i], strlen(want[i])) == 0, "via %d", i);
	}
	cr_assert_eq(i, 5);
	free(buf);

	buf = parse_valid("mpart01.sip", &len);
	cr_assert_eq(msg.content_length, (int32_t)msg.body.len);
	cr_assert(msg.body.p + msg.body.len == buf + len);
	h = sipmsg_find(&msg, SIP_H_CONTENT_TYPE);
	cr_assert(h->value.len > 16 && memcmp(h->value.p, "multipart/mixed;", 16) == 0);
	free(buf);

	buf = parse_valid("unreason.sip", &len);
	cr_assert(!msg.is_request);
	cr_assert_eq(msg.status, 200);
	cr_assert(msg.reason.len > 14 && memcmp(msg.reason.p, "= 2**3 * 5**2 ", 14) == 0);
	cr_assert_eq(msg.body.len, 154);
	cr_assert(!sipmsg_can_reply(&msg));	/* a response */
	free(buf);

	buf = parse_valid("noreason.sip", &len);
	cr_assert_eq(msg.status, 100);
	cr_assert_eq(msg.reason.len, 0);
	assert_str(msg.to_tag, "902jndnke3");
	free(buf);
}

Test(sipmsg_rfc4475, invalid_details)
{
	size_t len;
	char *buf;

	/* insuf: no From/To/Call-ID: a 400 cannot even be built */
	buf = load("rfc4475", "insuf.sip", &len);
	cr_assert_eq(sipmsg_parse(&msg, buf, len, &lim), -EBADMSG);
	cr_assert(!sipmsg_can_reply(&msg));
	cr_assert_eq(msg.cseq, 193942);
	free(buf);

	/* badvers: 505 can be answered */
	buf = load("rfc4475", "badvers.sip", &len);
	cr_assert_eq(sipmsg_parse(&msg, buf, len, &lim), -EPROTONOSUPPORT);
	assert_str(msg.call_id, "badvers.31417@c.example.com");
	free(buf);

	/* mismatch01: fields filled, a 400 can be built */
	buf = load("rfc4475", "mismatch01.sip", &len);
	cr_assert_eq(sipmsg_parse(&msg, buf, len, &lim), -EBADMSG);
	cr_assert(sipmsg_can_reply(&msg));
	free(buf);

	/* scalar02: Max-Forwards 300 and a huge Expires count as absent */
	buf = load("rfc4475", "scalar02.sip", &len);
	cr_assert_eq(sipmsg_parse(&msg, buf, len, &lim), -EBADMSG);
	cr_assert_eq(msg.max_forwards, -1);
	cr_assert_eq(msg.expires, -1);
	free(buf);

	/* clerr: a stream keeps waiting; with the body short, -EBADMSG */
	buf = load("rfc4475", "clerr.sip", &len);
	cr_assert_eq(sipmsg_frame(buf, len, &lim), 0);
	cr_assert_eq(sipmsg_parse(&msg, buf, len, &lim), -EBADMSG);
	free(buf);

	/* baddn completed with its empty line: the display name fails */
	buf = load("rfc4475", "baddn.sip", &len);
	{
		char *b = malloc(len + 2);

		memcpy(b, buf, len);
		memcpy(b + len, "\r\n", 2);
		cr_assert_eq(sipmsg_frame(b, len + 2, &lim), (ssize_t)len + 2);
		cr_assert_eq(sipmsg_parse(&msg, b, len + 2, &lim), -EBADMSG);
		cr_assert(msg.from_uri.len == 0 && msg.to_uri.len == 0);
		assert_str(msg.call_id, "baddn.31415@c.example.com");
		free(b);
	}
	free(buf);

	/* inv2543: no Content-Length, no branch, no Max-Forwards */
	buf = load("rfc4475", "inv2543.sip", &len);
	len = (size_t)sipmsg_frame(buf, len, &lim);
	cr_assert_eq(sipmsg_parse(&msg, buf, len, &lim), 0);
	cr_assert_eq(msg.content_length, -1);
	cr_assert_eq(msg.max_forwards, -1);
	cr_assert_eq(msg.via_branch.len, 0);
	free(buf);
}

/* ---- hostile inputs ------------------------------------------------------ */

static const struct hostile_case {
	const char *name;
	ssize_t frame;		/* 1: the whole file; 2: a prefix */
	int parse;		/* on the framed length, or the whole file */
} hostile[] = {
	{ "no_colon.sip", 1, -EBADMSG },
	{ "cl_huge.sip", -E2BIG, -EBADMSG },
	{ "cl_negative.sip", -EBADMSG, -EBADMSG },
	{ "cl_two_values.sip", -EBADMSG, -EBADMSG },
	{ "cl_empty.sip", -EBADMSG, -EBADMSG },
	{ "cl_junk.sip", -EBADMSG, -EBADMSG },
	{ "nul_in_value.sip", 1, -EBADMSG },
	{ "nul_in_name.sip", 1, -EBADMSG },
	{ "start_garbage.sip", 1, -EBADMSG },
	{ "start_http.sip", 1, -EBADMSG },
	{ "start_folded.sip", 1, -EBADMSG },
	{ "status_short.sip", 1, -EBADMSG },
	{ "status_noint.sip", 1, -EBADMSG },
	{ "version_21.sip", 1, -EPROTONOSUPPORT },
	{ "no_via.sip", 1, -EBADMSG },
	{ "cseq_nonnum.sip", 1, -EBADMSG },
	{ "cseq_nomethod.sip", 1, -EBADMSG },
	{ "bare_cr_in_value.sip", 1, -EBADMSG },
	{ "via_bad_proto.sip", 1, -EBADMSG },
	{ "empty_name.sip", 1, -EBADMSG },
	{ "truncated_headers.sip", 0, -EBADMSG },
	{ "truncated_body.sip", 0, -EBADMSG },
	{ "trailing_bytes.sip", 2, 0 },
};

Test(sipmsg_hostile, table)
{
	static const struct sipmsg_limits small = { .max_msg = 4096, .max_headers = 64 };
	size_t i, len;

	for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const struct hostile_case *c = &hostile[i];
		char *buf = load("hostile", c->name, &len);
		ssize_t n = sipmsg_frame(buf, len, &lim);
		int rc;

		if (c->frame == 1)
			cr_expect_eq(n, (ssize_t)len, "%s: frame %zd", c->name, n);
		else if (c->frame == 2)
			cr_expect(n > 0 && (size_t)n < len, "%s: frame %zd", c->name, n);
		else
			cr_expect_eq(n, c->frame, "%s: frame %zd", c->name, n);
		rc = sipmsg_parse(&msg, buf, n > 0 ? (size_t)n : len, &lim);
		cr_expect_eq(rc, c->parse, "%s: parse %d", c->name, rc);
		free(buf);
	}

	/* binary junk without an empty line: wait, then too big */
	{
		char *buf = load("hostile", "binary_junk.sip", &len);

		cr_assert_eq(sipmsg_frame(buf, 100, &small), 0);
		cr_assert_eq(sipmsg_frame(buf, len, &small), -E2BIG);
		cr_assert_eq(sipmsg_parse(&msg, buf, len, &lim), -EBADMSG);
		cr_assert_eq(sipmsg_parse(&msg, buf, len, &small), -E2BIG);
		free(buf);
	}
}

#define HDRS "INVITE sip:b@example.com SIP/2.0\r\n" \
	"Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\n" \
	"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n" \
	"Call-ID: x1\r\nCSeq: 1 INVITE\r\n"

Test(sipmsg_hostile, huge_line_and_many_headers)
{
	const size_t big = 1 << 20;
	static const struct sipmsg_limits large = { .max_msg = 4u << 20, .max_headers = 64 };
	char *buf = malloc(big + 200), *p;
	size_t n, i;

	/* a 1 MB header line */
	cr_assert_not_null(buf);
	p = buf;
	memcpy(p, HDRS, sizeof(HDRS) - 1);
	p += sizeof(HDRS) - 1;
	memcpy(p, "X-Big: ", 7);
	p += 7;
	memset(p, 'a', big);
	p += big;
	memcpy(p, "\r\nContent-Length: 0\r\n\r\n", 23);
	p += 23;
	n = (size_t)(p - buf);
	cr_assert_eq(sipmsg_frame(buf, n, &lim), -E2BIG);
	cr_assert_eq(sipmsg_frame(buf, 60000, &lim), 0);	/* not yet at the limit */
	cr_assert_eq(sipmsg_frame(buf, n, &large), (ssize_t)n);
	cr_assert_eq(sipmsg_parse(&msg, buf, n, &lim), -E2BIG);
	cr_assert_eq(sipmsg_parse(&msg, buf, n, &large), 0);
	cr_assert_eq(sipmsg_find_name(&msg, "x-big")->value.len, big);
	free(buf);

	/* 10 000 headers */
	buf = malloc(10000 * 9 + 300);
	cr_assert_not_null(buf);
	p = buf;
	memcpy(p, HDRS, sizeof(HDRS) - 1);
	p += sizeof(HDRS) - 1;
	for (i = 0; i < 10000; i++) {
		memcpy(p, "X: 1234\r\n", 9);
		p += 9;
	}
	memcpy(p, "\r\n", 2);
	p += 2;
	n = (size_t)(p - buf);
	cr_assert_eq(sipmsg_frame(buf, n, &lim), -E2BIG);	/* 90 KB > 64 KB */
	cr_assert_eq(sipmsg_frame(buf, n, &large), (ssize_t)n);
	cr_assert_eq(sipmsg_parse(&msg, buf, n, &large), -E2BIG);
	cr_assert_eq(msg.nhdr, 64);
	cr_assert(sipmsg_can_reply(&msg));	/* the mandatory ones came first */
	free(buf);
}

Test(sipmsg_hostile, every_truncation)
{
	size_t len, k;
	char *full = load("rfc4475", "wsinv.sip", &len);

	/* Every prefix: frame waits, parse fails; never reads past the end. */
	for (k = 0; k < len; k++) {
		char *b = dup_exact(full, k);

		cr_assert_eq(sipmsg_frame(b, k, &lim), 0, "prefix %zu", k);
		cr_assert_neq(sipmsg_parse(&msg, b, k, &lim), 0, "prefix %zu", k);
		free(b);
	}
	free(full);
}

/* ---- deterministic mutation loop ---------------------------------------- */

static uint64_t rng = 0x4475c0ffee123457ULL;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static bool
inside(const char *buf, size_t n, struct sip_str s)
{
	if (s.len == 0)
		return true;
	return s.p >= buf && s.p + s.len <= buf + n;
}

Test(sipmsg_fuzz, mutations, .timeout = 110)
{
	static const char *seeds[] = { "wsinv.sip", "intmeth.sip", "esc01.sip", "longreq.sip",
				       "dblreq.sip", "mpart01.sip", "unreason.sip", "noreason.sip",
				       "transports.sip", "semiuri.sip", "escnull.sip" };
	static const char special[] = ":;,\"<>\\\r\n \t\0@?=/0-9";
	char *src[11];
	size_t srclen[11];
	unsigned it, accepted = 0, k;
	size_t i;

	for (i = 0; i < 11; i++)
		src[i] = load("rfc4475", seeds[i], &srclen[i]);
	for (it = 0; it < 20000; it++) {
		size_t s = rnd() % 11, n = srclen[s], pos;
		char *b = malloc(n + 64);
		unsigned nmut = 1 + rnd() % 4;
		ssize_t f;
		size_t skip;
		int rc;

		memcpy(b, src[s], n);
		for (k = 0; k < nmut && n > 0; k++) {
			pos = rnd() % n;
			switch (rnd() % 6) {
			case 0:
				b[pos] = (char)rnd();
				break;
			case 1:
				b[pos] = special[rnd() % (sizeof(special) - 1)];
				break;
			case 2:	/* delete a run */
			{
				size_t d = 1 + rnd() % 16;

				if (d > n - pos)
					d = n - pos;
				memmove(b + pos, b + pos + d, n - pos - d);
				n -= d;
				break;
			}
			case 3:	/* insert a special byte */
				if (n < srclen[s] + 60) {
					memmove(b + pos + 1, b + pos, n - pos);
					b[pos] = special[rnd() % (sizeof(special) - 1)];
					n++;
				}
				break;
			case 4:	/* truncate */
				n = pos;
				break;
			default: /* duplicate a digit run into Content-Length-ish places */
				b[pos] = (char)('0' + rnd() % 10);
				break;
			}
		}
		/* exact-size copy so that ASan sees any over-read */
		{
			char *e = dup_exact(b, n);

			free(b);
			b = e;
		}
		skip = sipmsg_skip_keepalive(b, n);
		cr_assert(skip <= n);
		f = sipmsg_frame(b + skip, n - skip, &lim);
		cr_assert(f <= (ssize_t)(n - skip));
		cr_assert(f >= 0 || f == -EBADMSG || f == -E2BIG, "frame %zd", f);
		if (f > 0) {
			const char *m0 = b + skip;

			rc = sipmsg_parse(&msg, b + skip, (size_t)f, &lim);
			cr_assert(rc == 0 || rc == -EBADMSG || rc == -E2BIG ||
				  rc == -EPROTONOSUPPORT, "rc %d", rc);
			cr_assert(msg.nhdr <= SIPMSG_HDR_CAP);
			for (k = 0; k < msg.nhdr; k++) {
				cr_assert(inside(m0, (size_t)f, msg.hdr[k].name));
				cr_assert(inside(m0, (size_t)f, msg.hdr[k].value));
			}
			cr_assert(inside(m0, (size_t)f, msg.call_id));
			cr_assert(inside(m0, (size_t)f, msg.from_uri));
			cr_assert(inside(m0, (size_t)f, msg.to_tag));
			cr_assert(inside(m0, (size_t)f, msg.via_branch));
			if (rc == 0) {
				accepted++;
				cr_assert_eq(msg.len, (uint32_t)f);
				cr_assert(inside(m0, (size_t)f, msg.body));
				cr_assert_eq(msg.body.len,
					     msg.content_length > 0 ? (uint32_t)msg.content_length : 0);
				if (msg.body.len > 0)
					cr_assert(msg.body.p + msg.body.len == m0 + f);
				cr_assert(msg.first[SIP_H_VIA] >= 0);
				cr_assert(msg.call_id.len > 0);
				cr_assert(msg.from_uri.len > 0 && msg.to_uri.len > 0);
				if (msg.is_request) {
					cr_assert(sipmsg_can_reply(&msg));
					cr_assert(str_is(msg.cseq_method_name, "") ||
						  (msg.cseq_method_name.len == msg.method_name.len &&
						   memcmp(msg.cseq_method_name.p, msg.method_name.p,
							  msg.method_name.len) == 0));
				} else {
					cr_assert(msg.status >= 100 && msg.status <= 699);
				}
			}
		}
		free(b);
	}
	cr_assert(accepted > 100, "only %u mutants accepted", accepted);
	for (i = 0; i < 11; i++)
		free(src[i]);
}

/* ---- framing and wire habits --------------------------------------------- */

Test(sipmsg_frame, keepalive_and_bytewise)
{
	static const char two[] = "\r\n\r\n\r\n" HDRS "Content-Length: 4\r\n\r\nbody" "\r\n\r\n";
	size_t n = sizeof(two) - 1, skip, k;
	char *b = dup_exact(two, n);
	ssize_t f;

	skip = sipmsg_skip_keepalive(b, n);
	cr_assert_eq(skip, 6);
	f = sipmsg_frame(b + skip, n - skip, &lim);
	cr_assert_eq((size_t)f, n - skip - 4);
	/* byte by byte: 0 until the last byte of the body has come */
	for (k = 0; k < (size_t)f; k++) {
		char *p = dup_exact(b + skip, k);

		cr_assert_eq(sipmsg_frame(p, k, &lim), 0, "at %zu", k);
		free(p);
	}
	cr_assert_eq(sipmsg_parse(&msg, b + skip, (size_t)f, &lim), 0);
	assert_str(msg.body, "body");
	cr_assert_eq(sipmsg_skip_keepalive(b + skip + f, 4), 4);
	cr_assert_eq(sipmsg_skip_keepalive(b, 0), 0);
	free(b);
}

Test(sipmsg_frame, limits)
{
	static const char m[] = HDRS "Content-Length: 100\r\n\r\n";
	struct sipmsg_limits tiny = { .max_msg = 200, .max_headers = 3 };
	char *b = dup_exact(m, sizeof(m) - 1);

	cr_assert_eq(sipmsg_frame(b, sizeof(m) - 1, &tiny), -E2BIG);	/* announced too big */
	tiny.max_msg = 100;
	cr_assert_eq(sipmsg_frame(b, sizeof(m) - 1, &tiny), -E2BIG);	/* headers too big */
	tiny.max_msg = 4096;
	cr_assert_eq(sipmsg_frame(b, sizeof(m) - 1, &tiny), 0);
	free(b);
}

/* LF-only line ends are accepted, folding included. */
Test(sipmsg_frame, lf_only)
{
	static const char m[] = "MESSAGE sip:b@example.com SIP/2.0\n"
				"Via: SIP/2.0/TLS 192.0.2.1\n ;branch=z9hG4bKlf\n"
				"From: <sip:a@example.com>;tag=9\nTo: <sip:b@example.com>\n"
				"Call-ID: lf1\nCSeq: 7 MESSAGE\nContent-Length: 2\n\nhi";
	char *b = dup_exact(m, sizeof(m) - 1);

	cr_assert_eq(sipmsg_frame(b, sizeof(m) - 1, &lim), (ssize_t)sizeof(m) - 1);
	cr_assert_eq(sipmsg_parse(&msg, b, sizeof(m) - 1, &lim), 0);
	assert_str(msg.via_branch, "z9hG4bKlf");
	assert_str(msg.body, "hi");
	cr_assert_eq(msg.method, SIP_M_MESSAGE);
	free(b);
}

/* What pidgin-sipe sends in-dialog: lower-case tls, no branch. */
Test(sipmsg_frame, sipe_habits)
{
	static const char m[] = "BYE sip:ocschat@example.com SIP/2.0\r\n"
				"Via: SIP/2.0/tls 192.0.2.7:51234\r\n"
				"Max-Forwards: 70\r\n"
				"From: <sip:alice@example.com>;tag=abc;epid=01\r\n"
				"To: <sip:ocschat@example.com>;tag=srv1\r\n"
				"Call-ID: 9f8e\r\nCSeq: 4 BYE\r\n"
				"k: ms-sender\r\no: registration\r\nx: 1800\r\ne: gzip\r\n"
				"Expires: 0\r\nContent-Length: 0\r\n\r\n";
	char *b = dup_exact(m, sizeof(m) - 1);

	cr_assert_eq(sipmsg_parse(&msg, b, sizeof(m) - 1, &lim), 0);
	assert_str(msg.via_transport, "tls");
	cr_assert_eq(msg.via_branch.len, 0);
	cr_assert_eq(msg.expires, 0);
	cr_assert_eq(msg.max_forwards, 70);
	cr_assert_not_null(sipmsg_find(&msg, SIP_H_SUPPORTED));
	cr_assert_not_null(sipmsg_find(&msg, SIP_H_EVENT));
	cr_assert_not_null(sipmsg_find(&msg, SIP_H_SESSION_EXPIRES));
	cr_assert_not_null(sipmsg_find(&msg, SIP_H_CONTENT_ENCODING));
	cr_assert_not_null(sipmsg_find_name(&msg, "session-expires"));
	cr_assert_not_null(sipmsg_find_name(&msg, "CALL-ID"));
	cr_assert_null(sipmsg_find_name(&msg, "Require"));
	cr_assert_null(sipmsg_find(&msg, SIP_H_REQUIRE));
	free(b);
}

/* ---- helpers ------------------------------------------------------------- */

Test(sipmsg_helpers, list_next)
{
	struct sip_str rest = SIP_STR_LIT(" \"a,\\\"b\" <sip:x@y;p=1,2>;q=1 , c, , <d,e> ,");
	struct sip_str item;

	cr_assert(sip_list_next(&rest, &item));
	assert_str(item, "\"a,\\\"b\" <sip:x@y;p=1,2>;q=1");
	cr_assert(sip_list_next(&rest, &item));
	assert_str(item, "c");
	cr_assert(sip_list_next(&rest, &item));
	assert_str(item, "");
	cr_assert(sip_list_next(&rest, &item));
	assert_str(item, "<d,e>");
	cr_assert(!sip_list_next(&rest, &item));
	rest = SIP_STR_NULL;
	cr_assert(!sip_list_next(&rest, &item));
	rest = SIP_STR_LIT("\"unterminated, still one");
	cr_assert(sip_list_next(&rest, &item));
	assert_str(item, "\"unterminated, still one");
	cr_assert(!sip_list_next(&rest, &item));
}

Test(sipmsg_helpers, nameaddr_params)
{
	struct sip_nameaddr na;
	struct sip_str v;

	cr_assert_eq(sip_nameaddr_parse(SIP_STR_LIT("\"Bob\" <sip:b@x>;tag=1"), &na), 0);
	assert_str(na.display, "Bob");
	assert_str(na.uri, "sip:b@x");
	assert_str(na.params, ";tag=1");
	cr_assert_eq(sip_nameaddr_parse(SIP_STR_LIT("sip:b@x;tag=1"), &na), 0);
	assert_str(na.uri, "sip:b@x");
	assert_str(na.params, ";tag=1");
	cr_assert_eq(sip_nameaddr_parse(SIP_STR_LIT("<sip:b@x>"), &na), 0);
	cr_assert_eq(na.display.len, 0);
	cr_assert_eq(na.params.len, 0);
	cr_assert_eq(sip_nameaddr_parse(SIP_STR_LIT("<sip:b@x"), &na), -EBADMSG);
	cr_assert_eq(sip_nameaddr_parse(SIP_STR_LIT("\"x <sip:b@x>"), &na), -EBADMSG);
	cr_assert_eq(sip_nameaddr_parse(SIP_STR_LIT("<sip:b@x> junk"), &na), -EBADMSG);
	cr_assert_eq(sip_nameaddr_parse(SIP_STR_LIT(""), &na), -EBADMSG);

	cr_assert(sip_param_get(SIP_STR_LIT(";a=1;B;c=\"x;y\""), "b", &v));
	assert_str(v, "");
	cr_assert(sip_param_get(SIP_STR_LIT(";a=1;B;c=\"x;y\""), "C", &v));
	assert_str(v, "x;y");
	cr_assert(!sip_param_get(SIP_STR_LIT(";a=1;B"), "tag", &v));
	cr_assert(!sip_param_get(SIP_STR_NULL, "tag", &v));
	cr_assert(!sip_param_get(SIP_STR_LIT(";a=\"unterminated;tag=1"), "tag", &v));
}

Test(sipmsg_helpers, uri)
{
	struct sip_uri u;
	char out[64];

	cr_assert_eq(sip_uri_parse(SIP_STR_LIT("sips:alice:pw@[2001:db8::1]:5061;transport=tls?h=1"),
				   &u), 0);
	assert_str(u.scheme, "sips");
	assert_str(u.user, "alice");
	assert_str(u.password, "pw");
	assert_str(u.host, "[2001:db8::1]");
	cr_assert_eq(u.port, 5061);
	assert_str(u.params, ";transport=tls");
	assert_str(u.headers, "h=1");
	cr_assert_eq(sip_uri_parse(SIP_STR_LIT("tel:+1-555-0100"), &u), 0);
	assert_str(u.user, "+1-555-0100");
	cr_assert_eq(u.port, -1);
	cr_assert_eq(sip_uri_parse(SIP_STR_LIT("sip:example.com"), &u), 0);
	cr_assert_eq(u.user.len, 0);
	cr_assert_eq(sip_uri_parse(SIP_STR_LIT("sip:a@b:99999"), &u), -EBADMSG);
	cr_assert_eq(sip_uri_parse(SIP_STR_LIT("sip:a@"), &u), -EBADMSG);
	cr_assert_eq(sip_uri_parse(SIP_STR_LIT("<sip:a@b>"), &u), -EBADMSG);
	cr_assert_eq(sip_uri_parse(SIP_STR_LIT("nocolon"), &u), -EBADMSG);

	cr_assert_eq(sip_uri_aor(SIP_STR_LIT("sip:Alice@Example.COM:5061;transport=tls"), out,
				 sizeof(out)), 17);
	cr_assert_str_eq(out, "Alice@example.com");
	cr_assert_eq(sip_uri_aor(SIP_STR_LIT("sip:Alice@Example.COM"), out, 17), -ENOSPC);
	cr_assert_eq(sip_uri_aor(SIP_STR_LIT("sip:Alice@Example.COM"), out, 18), 17);
	cr_assert_eq(sip_uri_aor(SIP_STR_LIT("tel:+15550100"), out, sizeof(out)), -EBADMSG);
	/* No control character (a NUL least of all) in an AoR's user part. */
	{
		static const char nul[] = "sip:a\0b@h", tab[] = "sip:a\tb@h", del[] = "sip:a\x7f@h";

		cr_assert_eq(sip_uri_aor((struct sip_str){ nul, sizeof(nul) - 1 }, out, sizeof(out)),
			     -EBADMSG);
		cr_assert_eq(sip_uri_aor((struct sip_str){ tab, sizeof(tab) - 1 }, out, sizeof(out)),
			     -EBADMSG);
		cr_assert_eq(sip_uri_aor((struct sip_str){ del, sizeof(del) - 1 }, out, sizeof(out)),
			     -EBADMSG);
	}
	cr_assert_eq(sip_uri_aor(SIP_STR_LIT("SIP:HOST.example"), out, sizeof(out)), 12);
	cr_assert_str_eq(out, "host.example");
}

Test(sipmsg_helpers, strings_and_methods)
{
	uint32_t v;

	cr_assert_eq(sip_str_u32(SIP_STR_LIT(" 0068 "), &v), 0);
	cr_assert_eq(v, 68);
	cr_assert_eq(sip_str_u32(SIP_STR_LIT("4294967295"), &v), 0);
	cr_assert_eq(v, UINT32_MAX);
	cr_assert_eq(sip_str_u32(SIP_STR_LIT("4294967296"), &v), -ERANGE);
	cr_assert_eq(sip_str_u32(SIP_STR_LIT("36893488147419103232"), &v), -ERANGE);
	cr_assert_eq(sip_str_u32(SIP_STR_LIT("-1"), &v), -EINVAL);
	cr_assert_eq(sip_str_u32(SIP_STR_LIT(""), &v), -EINVAL);
	cr_assert_eq(sip_str_u32(SIP_STR_LIT("1 2"), &v), -EINVAL);
	cr_assert(sip_str_ieq(SIP_STR_LIT("Call-ID"), "call-id"));
	cr_assert(!sip_str_eq(SIP_STR_LIT("Call-ID"), "call-id"));
	cr_assert(sip_str_ieq2(SIP_STR_LIT("aBc"), SIP_STR_LIT("AbC")));
	assert_str(sip_str_trim(SIP_STR_LIT(" \t x y \r\n")), "x y");

	cr_assert_eq(sip_method_from(SIP_STR_LIT("REGISTER")), SIP_M_REGISTER);
	cr_assert_eq(sip_method_from(SIP_STR_LIT("register")), SIP_M_UNKNOWN);
	cr_assert_eq(sip_method_from(SIP_STR_LIT("IN%56ITE")), SIP_M_UNKNOWN);
	cr_assert_str_eq(sip_method_name(SIP_M_PUBLISH), "PUBLISH");
	cr_assert_str_eq(sip_method_name(SIP_M__COUNT), "UNKNOWN");
	for (int i = 1; i < SIP_M__COUNT; i++)
		cr_assert_eq(sip_method_from((struct sip_str){ sip_method_name((enum sip_method)i),
			(uint32_t)strlen(sip_method_name((enum sip_method)i)) }), i);
}
