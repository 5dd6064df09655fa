/* Unit tests for dataplane/sip/sipout.c: responses built from parsed
 * requests are parsed back with sipmsg_parse(); overflow is sticky. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/sip/sipout.h"
#include "tests/dataplane/sip/sipstr.h"

static const struct sipmsg_limits lim = { .max_msg = 65536, .max_headers = SIPMSG_HDR_CAP };

static struct sipmsg req, resp;

static char reqbuf[] =
	"REGISTER sip:example.com SIP/2.0\r\n"
	"Via: SIP/2.0/tls 192.0.2.7:51234\r\n"
	"v: SIP/2.0/TLS proxy.example.com;branch=z9hG4bKp1, SIP/2.0/TLS p2.example.com;branch=z9hG4bKp2\r\n"
	"Max-Forwards: 70\r\n"
	"f: \"Alice\" <sip:alice@example.com>;tag=a73kszlfl\r\n"
	"To: <sip:alice@example.com>\r\n"
	"i: 1j9FpLxk3uxtm8tn@192.0.2.7\r\n"
	"CSeq: 0001\r\n  REGISTER\r\n"
	"Contact: <sip:alice@192.0.2.7:51234;transport=tls>\r\n"
	"l: 0\r\n\r\n";

static void
parse_req(void)
{
	cr_assert_eq(sipmsg_parse(&req, reqbuf, sizeof(reqbuf) - 1, &lim), 0);
}

Test(sipout, response_roundtrip)
{
	char out[2048];
	struct sipout o;
	ssize_t n;
	const struct sip_hdr *h;
	const char *vias[] = { "SIP/2.0/tls 192.0.2.7:51234",
			       "SIP/2.0/TLS proxy.example.com;branch=z9hG4bKp1, "
			       "SIP/2.0/TLS p2.example.com;branch=z9hG4bKp2" };
	int i = 0;
	static const char xml[] = "<provisionGroupList/>";

	parse_req();
	sipout_init(&o, out, sizeof(out));
	sipout_response_start(&o, &req, 200, NULL, "srv42");
	sipout_header(&o, "Expires", "%d", 3600);
	sipout_cstr(&o, "Supported: msrtc-event-categories\r\n");
	sipout_end(&o, "application/vnd-microsoft-roaming-provisioning-v2+xml", xml, sizeof(xml) - 1);
	n = sipout_finish(&o);
	cr_assert(n > 0);
	cr_assert_eq(sipmsg_frame(out, (size_t)n, &lim), n);
	cr_assert_eq(sipmsg_parse(&resp, out, (size_t)n, &lim), 0);

	cr_assert(!resp.is_request);
	cr_assert_eq(resp.status, 200);
	assert_str(resp.reason, "OK");
	for (h = sipmsg_find(&resp, SIP_H_VIA); h != NULL; h = sipmsg_find_next(&resp, h), i++) {
		cr_assert(i < 2);
		assert_str(h->value, vias[i]);
	}
	cr_assert_eq(i, 2);
	assert_str(resp.via_transport, "tls");
	cr_assert_eq(resp.via_branch.len, 0);
	assert_str(resp.from_uri, "sip:alice@example.com");
	assert_str(resp.from_tag, "a73kszlfl");
	assert_str(resp.to_uri, "sip:alice@example.com");
	assert_str(resp.to_tag, "srv42");
	assert_str(resp.call_id, "1j9FpLxk3uxtm8tn@192.0.2.7");
	cr_assert_eq(resp.cseq, 1);
	cr_assert_eq(resp.cseq_method, SIP_M_REGISTER);
	cr_assert_eq(resp.expires, 3600);
	cr_assert_eq(resp.content_length, (int32_t)sizeof(xml) - 1);
	assert_str(resp.body, xml);
	h = sipmsg_find(&resp, SIP_H_CONTENT_TYPE);
	assert_str(h->value, "application/vnd-microsoft-roaming-provisioning-v2+xml");
	assert_str(sipmsg_find(&resp, SIP_H_SUPPORTED)->value, "msrtc-event-categories");
}

Test(sipout, existing_to_tag_kept)
{
	static char r[] = "BYE sip:b@example.com SIP/2.0\r\n"
			  "Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bKx\r\n"
			  "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=old\r\n"
			  "Call-ID: c1\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n";
	char out[1024];
	struct sipout o;
	ssize_t n;

	cr_assert_eq(sipmsg_parse(&req, r, sizeof(r) - 1, &lim), 0);
	sipout_init(&o, out, sizeof(out));
	sipout_response_start(&o, &req, 481, NULL, "new");
	sipout_end(&o, "text/plain", NULL, 0);
	n = sipout_finish(&o);
	cr_assert(n > 0);
	cr_assert_eq(sipmsg_parse(&resp, out, (size_t)n, &lim), 0);
	assert_str(resp.to_tag, "old");
	assert_str(resp.reason, "Call/Transaction Does Not Exist");
	assert_str(resp.via_branch, "z9hG4bKx");
	cr_assert_null(sipmsg_find(&resp, SIP_H_CONTENT_TYPE));	/* empty body */
	cr_assert_eq(resp.content_length, 0);
	cr_assert_eq(resp.body.len, 0);
}

Test(sipout, request_roundtrip)
{
	char out[1024];
	struct sipout o;
	ssize_t n;

	sipout_init(&o, out, sizeof(out));
	sipout_request_start(&o, "NOTIFY", "sip:alice@192.0.2.7:51234;transport=tls");
	sipout_header(&o, "Via", "SIP/2.0/TLS %s;branch=z9hG4bK%u", "srv.example.com", 77u);
	sipout_header(&o, "From", "<sip:%s>;tag=%s", "alice@example.com", "s1");
	sipout_header(&o, "To", "<sip:alice@example.com>;tag=a1");
	sipout_header(&o, "Call-ID", "n1");
	sipout_header(&o, "CSeq", "%u NOTIFY", 3u);
	sipout_header(&o, "Event", "vnd-microsoft-provisioning-v2");
	sipout_end(&o, "text/plain", "x", 1);
	n = sipout_finish(&o);
	cr_assert(n > 0);
	cr_assert_eq(sipmsg_parse(&resp, out, (size_t)n, &lim), 0);
	cr_assert(resp.is_request);
	cr_assert_eq(resp.method, SIP_M_NOTIFY);
	assert_str(resp.ruri, "sip:alice@192.0.2.7:51234;transport=tls");
	assert_str(resp.via_branch, "z9hG4bK77");
	assert_str(resp.body, "x");
	assert_str(sipmsg_find(&resp, SIP_H_EVENT)->value, "vnd-microsoft-provisioning-v2");
}

Test(sipout, overflow_is_sticky)
{
	char out[64];
	struct sipout o;
	size_t cap;

	parse_req();
	sipout_init(&o, out, sizeof(out));
	sipout_response_start(&o, &req, 200, "OK", "t");
	sipout_end(&o, NULL, NULL, 0);
	cr_assert(o.overflow);
	cr_assert_eq(sipout_finish(&o), -ENOSPC);
	cr_assert(o.len <= sizeof(out));

	/* every cut of a message that fits: overflow exactly when too short */
	{
		char full[2048];
		ssize_t need;

		sipout_init(&o, full, sizeof(full));
		sipout_response_start(&o, &req, 200, "OK", "t");
		sipout_end(&o, "text/plain", "abc", 3);
		need = sipout_finish(&o);
		cr_assert(need > 0);
		for (cap = 0; cap < (size_t)need; cap++) {
			char *b = malloc(cap + 1);

			sipout_init(&o, b, cap);
			sipout_response_start(&o, &req, 200, "OK", "t");
			sipout_end(&o, "text/plain", "abc", 3);
			cr_assert_eq(sipout_finish(&o), -ENOSPC, "cap %zu", cap);
			cr_assert(o.len <= cap);
			free(b);
		}
	}

	/* raw writes fill the buffer to the last byte */
	sipout_init(&o, out, 4);
	sipout_raw(&o, "abcd", 4);
	cr_assert_eq(sipout_finish(&o), 4);
	sipout_raw(&o, "e", 1);
	cr_assert_eq(sipout_finish(&o), -ENOSPC);
	sipout_raw(&o, "", 0);
	cr_assert_eq(sipout_finish(&o), -ENOSPC);
}

Test(sipout, reasons)
{
	cr_assert_str_eq(sip_reason(200), "OK");
	cr_assert_str_eq(sip_reason(400), "Bad Request");
	cr_assert_str_eq(sip_reason(407), "Proxy Authentication Required");
	cr_assert_str_eq(sip_reason(505), "Version Not Supported");
	cr_assert_str_eq(sip_reason(299), "Unknown");
	cr_assert_str_eq(sip_reason(-1), "Unknown");
}

/* A 400 can be built from a partially parsed request. */
Test(sipout, bad_request_reply)
{
	static char r[] = "OPTIONS sip:b@example.com SIP/2.0\r\n"
			  "Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bKq\r\n"
			  "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
			  "Call-ID: c2\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n";
	char out[1024];
	struct sipout o;
	ssize_t n;

	cr_assert_eq(sipmsg_parse(&req, r, sizeof(r) - 1, &lim), -EBADMSG);
	cr_assert(sipmsg_can_reply(&req));
	sipout_init(&o, out, sizeof(out));
	sipout_response_start(&o, &req, 400, NULL, "z");
	sipout_end(&o, NULL, NULL, 0);
	n = sipout_finish(&o);
	cr_assert(n > 0);
	cr_assert_eq(sipmsg_parse(&resp, out, (size_t)n, &lim), 0);
	cr_assert_eq(resp.status, 400);
	assert_str(resp.reason, "Bad Request");
	cr_assert_eq(resp.cseq_method, SIP_M_INVITE);
	assert_str(resp.to_tag, "z");
}
