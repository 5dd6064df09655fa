/* parleyd end to end: a real server process on 127.0.0.1, real TLS, real
 * sockets. Each test starts its own server (see harness.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "dataplane/sip/digest.h"
#include "perf/client.h"
#include "tests/integration/harness.h"

static struct server srv;

static void
up(void)
{
	server_start(&srv, NULL);
}

static void
down(void)
{
	cr_expect_eq(server_stop(&srv), 0, "parleyd exits 0 after SIGTERM");
}

static int
request(struct pc_conn *c, const char *method, const char *ruri, const char *aor,
	struct pc_dialog *d, const char *extra, struct sipmsg *m)
{
	char buf[8192];
	ssize_t n;
	char to[300];

	/* A REGISTER's To is the address being registered. */
	if (strcmp(method, "REGISTER") == 0)
		snprintf(to, sizeof(to), "sip:%s", aor);
	else
		snprintf(to, sizeof(to), "%s", ruri);
	n = pc_build(buf, sizeof(buf), method, ruri, aor, to, d, extra, NULL, NULL);
	cr_assert(n > 0);
	return server_roundtrip(c, buf, n, m);
}

static struct pc_conn *
login(const char *aor, const char *pw)
{
	struct pc_conn *c = server_connect(&srv, NULL);
	char warn[256];

	cr_assert_eq(pc_register(c, aor, pw, 3600, warn, sizeof(warn)), 200, "REGISTER %s", aor);
	return c;
}

TestSuite(parleyd, .init = up, .fini = down, .timeout = 60);

Test(parleyd, register_challenge_then_200)
{
	struct pc_conn *c = server_connect(&srv, NULL);
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	char v[512];

	/* Without credentials: a proxy challenge, the only kind pidgin-sipe answers. */
	cr_assert_eq(request(c, "REGISTER", "sip:example.com", "alice@example.com", &d,
			     "Expires: 3600\r\n", &m), 407);
	cr_assert(pc_header(&m, "Proxy-Authenticate", v, sizeof(v)));
	cr_assert(strstr(v, "Digest ") == v, "%s", v);
	cr_assert(strstr(v, "realm=\"example.com\"") != NULL, "%s", v);
	cr_assert(strstr(v, "qop=\"auth\"") != NULL, "%s", v);
	cr_assert(strstr(v, "algorithm=MD5") != NULL, "%s", v);
	pc_close(c);

	c = server_connect(&srv, NULL);
	cr_assert_eq(pc_register(c, "alice@example.com", "alice-pw", 3600, NULL, 0), 200);
	pc_close(c);
}

/* Drives REGISTER by hand so the final 200 itself can be inspected. */
static void
register_by_hand(struct pc_conn *c, const char *aor, const char *pw, struct sipmsg *m)
{
	struct pc_dialog d = { .cseq = 1 };
	char req[4096], extra[1024], chal[512], nonce[128], ha1[65], resp[65], to[300];
	const char *p, *e;
	ssize_t n;

	snprintf(to, sizeof(to), "sip:%s", aor);
	n = pc_build(req, sizeof(req), "REGISTER", "sip:example.com", aor, to, &d,
		     "Expires: 1200\r\n", NULL, NULL);
	cr_assert_eq(server_roundtrip(c, req, n, m), 407);
	cr_assert(pc_header(m, "Proxy-Authenticate", chal, sizeof(chal)));
	p = strstr(chal, "nonce=\"");
	cr_assert(p != NULL);
	p += 7;
	e = strchr(p, '"');
	cr_assert(e != NULL && (size_t)(e - p) < sizeof(nonce));
	snprintf(nonce, sizeof(nonce), "%.*s", (int)(e - p), p);
	digest_ha1(DIGEST_MD5, aor, "example.com", pw, ha1);
	digest_response(DIGEST_MD5, ha1, nonce, "00000001", "abcdef", "auth", "REGISTER",
			"sip:example.com", resp);
	snprintf(extra, sizeof(extra),
		 "Expires: 1200\r\nProxy-Authorization: Digest username=\"%s\", "
		 "realm=\"example.com\", nonce=\"%s\", uri=\"sip:example.com\", "
		 "response=\"%s\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abcdef\"\r\n",
		 aor, nonce, resp);
	d.cseq++;
	n = pc_build(req, sizeof(req), "REGISTER", "sip:example.com", aor, to, &d, extra, NULL,
		     NULL);
	cr_assert_eq(server_roundtrip(c, req, n, m), 200);
}

Test(parleyd, register_200_carries_what_pidgin_sipe_needs)
{
	struct pc_conn *c = server_connect(&srv, NULL);
	struct sipmsg m;
	char v[512];
	bool supported = false;

	register_by_hand(c, "alice@example.com", "alice-pw", &m);
	/* Expires > 0: without it pidgin-sipe never signs on. */
	cr_assert(pc_header(&m, "Expires", v, sizeof(v)));
	cr_assert_eq(strtoul(v, NULL, 10), 1200);
	/* Supported: msrtc-event-categories as a header line of its own. */
	for (const struct sip_hdr *h = sipmsg_find(&m, SIP_H_SUPPORTED); h != NULL;
	     h = sipmsg_find_next(&m, h))
		if (sip_str_eq(h->value, "msrtc-event-categories"))
			supported = true;
	cr_assert(supported, "Supported: msrtc-event-categories");
	/* Allow-Events with the provisioning event, comma-separated without blanks. */
	cr_assert(pc_header(&m, "Allow-Events", v, sizeof(v)));
	cr_assert(strstr(v, "vnd-microsoft-provisioning-v2") != NULL, "%s", v);
	cr_assert(strchr(v, ' ') == NULL, "no blanks in Allow-Events: %s", v);
	/* Server, if present, must not claim RTC/6 or later. */
	cr_assert(pc_header(&m, "Server", v, sizeof(v)));
	cr_assert(strstr(v, "RTC/") == NULL, "%s", v);
	cr_assert(pc_header(&m, "Contact", v, sizeof(v)));
	cr_assert(strstr(v, "expires=1200") != NULL, "%s", v);
	pc_close(c);
}

Test(parleyd, register_refresh_on_bound_connection_is_challenged)
{
	struct pc_conn *c = login("alice@example.com", "alice-pw");
	struct pc_dialog d = { .cseq = 9 };
	struct sipmsg m;

	/* No credentials on a refresh: challenged again, identity still bound. */
	cr_assert_eq(request(c, "REGISTER", "sip:example.com", "alice@example.com", &d,
			     "Expires: 900\r\n", &m), 407);
	d.cseq++;
	cr_assert_eq(request(c, "OPTIONS", "sip:example.com", "bob@example.com", &d, NULL, &m), 403);
	pc_close(c);
}

Test(parleyd, cancel_after_answer_200_unknown_481)
{
	struct pc_conn *c = login("alice@example.com", "alice-pw");
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	char req[4096], cancel[4096];
	ssize_t n;
	char *p;

	n = pc_build(req, sizeof(req), "INVITE", "sip:ocschat@example.com", "alice@example.com",
		     "sip:ocschat@example.com", &d, NULL, NULL, NULL);
	cr_assert_eq(server_roundtrip(c, req, n, &m), 200);
	/* Same branch, Call-ID and CSeq number, method CANCEL (RFC 3261 §9.1). */
	memcpy(cancel, "CANCEL", 6);
	memcpy(cancel + 6, req + 6, n - 6);
	cancel[n] = '\0';
	p = strstr(cancel, "CSeq: 1 INVITE");
	cr_assert(p != NULL);
	memcpy(p + 8, "CANCEL", 6);
	cr_assert_eq(server_roundtrip(c, cancel, n, &m), 200, "CANCEL of an answered INVITE: 200, no effect");
	memset(&d, 0, sizeof(d));
	d.cseq = 1;
	cr_assert_eq(request(c, "CANCEL", "sip:ocschat@example.com", "alice@example.com", &d, NULL,
			     &m), 481);
	pc_close(c);
}

Test(parleyd, wrong_password_403_with_warning)
{
	struct pc_conn *c = server_connect(&srv, NULL);
	char warn[256] = "";

	cr_assert_eq(pc_register(c, "alice@example.com", "wrong", 3600, warn, sizeof(warn)), 403);
	cr_assert(strstr(warn, "Invalid user name or password") != NULL, "Warning: %s", warn);
	pc_close(c);
	/* Unknown users look the same. */
	c = server_connect(&srv, NULL);
	cr_assert_eq(pc_register(c, "mallory@example.com", "x", 3600, warn, sizeof(warn)), 403);
	pc_close(c);
}

Test(parleyd, from_mismatch_after_login_403)
{
	struct pc_conn *c = login("alice@example.com", "alice-pw");
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	char warn[256];

	cr_assert_eq(request(c, "OPTIONS", "sip:example.com", "bob@example.com", &d, NULL, &m), 403);
	cr_assert(pc_header(&m, "Warning", warn, sizeof(warn)));
	/* Alice herself is still served on the same connection. */
	memset(&d, 0, sizeof(d));
	d.cseq = 1;
	cr_assert_eq(request(c, "OPTIONS", "sip:example.com", "alice@example.com", &d, NULL, &m),
		     200);
	pc_close(c);
}

Test(parleyd, options_200_with_allow)
{
	struct pc_conn *c = server_connect(&srv, NULL);
	struct pc_dialog d = { .cseq = 7 };
	struct sipmsg m;
	char allow[256];

	cr_assert_eq(request(c, "OPTIONS", "sip:example.com", "alice@example.com", &d, NULL, &m),
		     200);
	cr_assert(pc_header(&m, "Allow", allow, sizeof(allow)));
	cr_assert(strstr(allow, "REGISTER") && strstr(allow, "INFO"), "%s", allow);
	cr_assert_eq(m.cseq, 7);
	cr_assert(sip_str_eq(m.call_id, d.call_id));
	pc_close(c);
}

Test(parleyd, crlf_keepalive_gets_pong)
{
	struct pc_conn *c = server_connect(&srv, NULL);
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;

	cr_assert_eq(pc_send(c, "\r\n\r\n", 4), 0);
	/* The pong is skipped by the framer; the next response still comes. */
	cr_assert_eq(request(c, "OPTIONS", "sip:example.com", "alice@example.com", &d, NULL, &m),
		     200);
	pc_close(c);
}

Test(parleyd, malformed_request_400_while_other_connection_works)
{
	struct pc_conn *bad = server_connect(&srv, NULL);
	struct pc_conn *good = login("bob@example.com", "bob-pw");
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	static const char broken[] =
		"OPTIONS sip:example.com SIP/2.0\r\n"
		"Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKbroken1\r\n"
		"From: <sip:alice@example.com>;tag=1\r\n"
		"To: <sip:example.com>\r\n"
		"Call-ID: broken-1\r\n"
		"CSeq: 1 INVITE\r\n"	/* method mismatch: malformed */
		"Content-Length: 0\r\n\r\n";

	cr_assert_eq(server_roundtrip(bad, broken, sizeof(broken) - 1, &m), 400);
	cr_assert_eq(request(good, "OPTIONS", "sip:example.com", "bob@example.com", &d, NULL, &m),
		     200);
	/* The bad connection itself keeps working after its 400. */
	memset(&d, 0, sizeof(d));
	d.cseq = 2;
	cr_assert_eq(request(bad, "OPTIONS", "sip:example.com", "alice@example.com", &d, NULL, &m),
		     200);
	pc_close(bad);
	pc_close(good);
}

Test(parleyd, garbage_closes_only_that_connection)
{
	struct pc_conn *bad = server_connect(&srv, NULL);
	struct pc_conn *good = server_connect(&srv, NULL);
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	static const char junk[] = "\x01\x02 this is not SIP at all\r\nContent-Length: x\r\n\r\n";

	cr_assert_eq(pc_send(bad, junk, sizeof(junk) - 1), 0);
	cr_assert(pc_wait_closed(bad, 5000), "server closes a connection whose framing is lost");
	cr_assert_eq(request(good, "OPTIONS", "sip:example.com", "bob@example.com", &d, NULL, &m),
		     200);
	pc_close(bad);
	pc_close(good);
}

Test(parleyd, oversize_message_closes_connection_server_fine)
{
	struct pc_conn *big = server_connect(&srv, NULL);
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	size_t n = 200000;
	char *req = malloc(n + 1024);
	int len;

	cr_assert(req != NULL);
	len = sprintf(req, "OPTIONS sip:example.com SIP/2.0\r\nX-Big: ");
	memset(req + len, 'a', n);
	len += n;
	len += sprintf(req + len, "\r\n\r\n");
	pc_send(big, req, len);		/* may fail half-way once the server closes */
	cr_assert(pc_wait_closed(big, 5000), "oversize message closes the connection");
	free(req);
	pc_close(big);

	struct pc_conn *c = server_connect(&srv, NULL);

	cr_assert_eq(request(c, "OPTIONS", "sip:example.com", "bob@example.com", &d, NULL, &m),
		     200);
	pc_close(c);
}

Test(parleyd, unknown_method_501_unserved_405)
{
	struct pc_conn *c = login("alice@example.com", "alice-pw");
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;

	cr_assert_eq(request(c, "FROBNICATE", "sip:example.com", "alice@example.com", &d, NULL, &m),
		     501);
	d.cseq++;
	cr_assert_eq(request(c, "MESSAGE", "sip:example.com", "alice@example.com", &d, NULL, &m),
		     405);
	pc_close(c);
}

Test(parleyd, requests_before_register_403)
{
	struct pc_conn *c = server_connect(&srv, NULL);
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;

	cr_assert_eq(request(c, "INVITE", "sip:ocschat@example.com", "alice@example.com", &d, NULL,
			     &m), 403);
	pc_close(c);
}

Test(parleyd, provisioning_subscribe_answered_with_data)
{
	struct pc_conn *c = login("alice@example.com", "alice-pw");
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	char v[256];

	cr_assert_eq(request(c, "SUBSCRIBE", "sip:alice@example.com", "alice@example.com", &d,
			     "Event: vnd-microsoft-provisioning-v2\r\n"
			     "Accept: application/vnd-microsoft-roaming-provisioning-v2+xml\r\n"
			     "Expires: 0\r\n", &m), 200);
	/* Expires: 0 is an unsubscribe: no data. A real subscription: */
	d.cseq++;
	cr_assert_eq(request(c, "SUBSCRIBE", "sip:alice@example.com", "alice@example.com", &d,
			     "Event: vnd-microsoft-provisioning-v2\r\nExpires: 3600\r\n", &m), 200);
	cr_assert(pc_header(&m, "Event", v, sizeof(v)));
	cr_assert_str_eq(v, "vnd-microsoft-provisioning-v2");
	cr_assert(pc_header(&m, "ms-piggyback-cseq", v, sizeof(v)));
	cr_assert(m.body.len > 0);
	cr_assert(memmem(m.body.p, m.body.len, "provisionGroupList", 18) != NULL);
	d.cseq++;
	cr_assert_eq(request(c, "SUBSCRIBE", "sip:alice@example.com", "alice@example.com", &d,
			     "Event: vnd-microsoft-roaming-contacts\r\n", &m), 200);
	cr_assert(pc_header(&m, "Expires", v, sizeof(v)));
	cr_assert_str_eq(v, "0");
	pc_close(c);
}

Test(parleyd, dialog_invite_ack_update_info_bye)
{
	struct pc_conn *c = login("alice@example.com", "alice-pw");
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	char v[256], req[4096];
	ssize_t n;
	const char *lookup = "sip:ocschat@example.com";

	cr_assert_eq(request(c, "INVITE", lookup, "alice@example.com", &d,
			     "Supported: ms-sender\r\n", &m), 200);
	cr_assert(pc_header(&m, "Session-Expires", v, sizeof(v)));
	cr_assert(strtoul(v, NULL, 10) >= 90, "Session-Expires: %s", v);
	cr_assert(pc_header(&m, "Contact", v, sizeof(v)));
	cr_assert(m.to_tag.len > 0);
	snprintf(d.to_tag, sizeof(d.to_tag), "%.*s", (int)m.to_tag.len, m.to_tag.p);

	/* ACK: no answer. Then an in-dialog UPDATE, INFO, BYE. */
	n = pc_build(req, sizeof(req), "ACK", lookup, "alice@example.com", lookup, &d, NULL, NULL,
		     NULL);
	cr_assert_eq(pc_send(c, req, n), 0);
	d.cseq++;
	cr_assert_eq(request(c, "UPDATE", lookup, "alice@example.com", &d, NULL, &m), 200);
	cr_assert(pc_header(&m, "Session-Expires", v, sizeof(v)));
	d.cseq++;
	cr_assert_eq(request(c, "INFO", lookup, "alice@example.com", &d, NULL, &m), 200);
	d.cseq++;
	cr_assert_eq(request(c, "BYE", lookup, "alice@example.com", &d, NULL, &m), 200);
	d.cseq++;
	/* The dialog is gone: 481, which makes a client reconnect cleanly. */
	cr_assert_eq(request(c, "INFO", lookup, "alice@example.com", &d, NULL, &m), 481);
	/* INVITE to a URI we do not serve. */
	memset(&d, 0, sizeof(d));
	d.cseq = 1;
	cr_assert_eq(request(c, "INVITE", "sip:nobody@example.com", "alice@example.com", &d, NULL,
			     &m), 404);
	pc_close(c);
}

Test(parleyd, session_expires_below_min_se_422)
{
	struct pc_conn *c = login("alice@example.com", "alice-pw");
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	char v[64];

	cr_assert_eq(request(c, "INVITE", "sip:ocschat@example.com", "alice@example.com", &d,
			     "Session-Expires: 30\r\n", &m), 422);
	cr_assert(pc_header(&m, "Min-SE", v, sizeof(v)));
	pc_close(c);
}

Test(parleyd, retransmission_absorbed_same_answer)
{
	struct pc_conn *c = login("alice@example.com", "alice-pw");
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	char req[4096], tag1[80];
	ssize_t n;

	n = pc_build(req, sizeof(req), "INVITE", "sip:ocschat@example.com", "alice@example.com",
		     "sip:ocschat@example.com", &d, NULL, NULL, NULL);
	cr_assert_eq(server_roundtrip(c, req, n, &m), 200);
	snprintf(tag1, sizeof(tag1), "%.*s", (int)m.to_tag.len, m.to_tag.p);
	/* Exactly the same bytes again (same branch): same status, same tag,
	 * and no second dialog. */
	cr_assert_eq(server_roundtrip(c, req, n, &m), 200);
	cr_assert(sip_str_eq(m.to_tag, tag1));
	pc_close(c);
}

Test(parleyd, require_unknown_extension_420)
{
	struct pc_conn *c = server_connect(&srv, NULL);
	struct pc_dialog d = { .cseq = 1 };
	struct sipmsg m;
	char v[128];

	cr_assert_eq(request(c, "OPTIONS", "sip:example.com", "alice@example.com", &d,
			     "Require: foo-bar\r\n", &m), 420);
	cr_assert(pc_header(&m, "Unsupported", v, sizeof(v)));
	cr_assert_str_eq(v, "foo-bar");
	pc_close(c);
}

Test(parleyd, failed_logins_rate_limited)
{
	char warn[256];

	/* The default allows 10 failures a minute per address and per user. */
	for (int i = 0; i < 10; i++) {
		struct pc_conn *c = server_connect(&srv, NULL);

		cr_assert_eq(pc_register(c, "bob@example.com", "guess", 3600, warn, sizeof(warn)), 403);
		pc_close(c);
	}
	struct pc_conn *c = server_connect(&srv, NULL);

	/* Now even the right password is refused without being checked. */
	cr_assert_eq(pc_register(c, "bob@example.com", "bob-pw", 3600, warn, sizeof(warn)), 403);
	cr_assert(strstr(warn, "Too many failed logins") != NULL, "Warning: %s", warn);
	pc_close(c);
}
