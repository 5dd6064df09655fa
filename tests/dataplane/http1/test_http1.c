/* The HTTP/1.1 request parser of the Web service (dataplane/http/http1.h):
 * what curl sends, request smuggling and junk, filestore targets, ranges. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/http1/http1.h"

/* ---- the parser, without a server ----------------------------------- */

static int
head(const char *s, struct http1_req *r)
{
	struct http1_limits lim = { .max_headers = 8 };

	return http1_parse_head(s, strlen(s), &lim, r);
}

Test(http1, parses_what_curl_sends)
{
	struct http1_req r;

	cr_assert_eq(head("PUT /filestore/a/b?token=x HTTP/1.1\r\nHost: h\r\nUser-Agent: curl\r\n"
			  "Content-Length: 12\r\nExpect: 100-continue\r\n\r\n", &r), 0);
	cr_assert_eq(r.method, HTTP1_PUT);
	cr_assert_str_eq(r.target, "/filestore/a/b?token=x");
	cr_assert(r.has_length && r.length == 12 && r.expect_continue && !r.conn_close);
	cr_assert_eq(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nRange: bytes=1-2\r\n\r\n",
			  &r), 0);
	cr_assert(r.method == HTTP1_GET && r.minor == 0 && r.conn_keepalive && r.has_range);
	cr_assert_str_eq(r.range, "bytes=1-2");
	cr_assert_eq(head("DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", &r), 0);
	cr_assert_eq(r.method, HTTP1_OTHER);
}

/* X-Parley-Peer (a node of the array fetching a file): kept when there is
 * exactly one that fits, dropped (and counted) otherwise. */
Test(http1, peer_header)
{
	struct http1_req r;
	char big[400];

	cr_assert_eq(head("GET /f HTTP/1.1\r\nHost: h\r\nx-parley-peer: 2.99.abc\r\n\r\n", &r), 0);
	cr_assert(r.has_peer && r.npeer == 1);
	cr_assert_str_eq(r.peer, "2.99.abc");
	cr_assert_eq(head("GET /f HTTP/1.1\r\nHost: h\r\nX-Parley-Peer: a\r\n"
			  "X-Parley-Peer: b\r\n\r\n", &r), 0);
	cr_assert(!r.has_peer && r.npeer == 2);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	{
		char req[600];

		snprintf(req, sizeof(req), "GET /f HTTP/1.1\r\nHost: h\r\nX-Parley-Peer: %s\r\n\r\n",
			 big);
		cr_assert_eq(head(req, &r), 0);
		cr_assert(!r.has_peer && r.npeer == 1);
	}
	cr_assert_eq(head("GET /f HTTP/1.1\r\nHost: h\r\n\r\n", &r), 0);
	cr_assert(!r.has_peer && r.npeer == 0);
}

Test(http1, refuses_smuggling_and_junk)
{
	struct http1_req r;

	/* Two lengths, length with chunked, space before the colon, obs-fold. */
	cr_assert_eq(head("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", &r), 400);
	cr_assert_eq(head("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), 400);
	cr_assert_eq(head("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length : 1\r\n\r\n", &r), 400);
	cr_assert_eq(head("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", &r), 400);
	cr_assert_eq(head("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", &r), 400);
	cr_assert_eq(head("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", &r), 413);
	/* Bare LF or CR, no Host, two Hosts, bad versions, bad targets. */
	cr_assert_eq(head("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", &r), 400);
	cr_assert_eq(head("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", &r), 400);
	cr_assert_eq(head("GET / HTTP/1.1\r\n\r\n", &r), 400);
	cr_assert_eq(head("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &r), 400);
	cr_assert_eq(head("GET / HTTP/2.0\r\nHost: h\r\n\r\n", &r), 505);
	cr_assert_eq(head("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", &r), 400);
	cr_assert_eq(head("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", &r), 400);
	cr_assert_eq(head("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", &r), 400);
	cr_assert_eq(head("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n"
			  "F: 1\r\nG: 1\r\nH: 1\r\n\r\n", &r), 431);
	{
		char big[HTTP1_TARGET_MAX + 100];

		snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\nHost: h\r\n\r\n",
			 HTTP1_TARGET_MAX, 0);
		cr_assert_eq(head(big, &r), 414);
	}
	{
		static const char nul[] = "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n";
		struct http1_limits lim = { .max_headers = 8 };

		cr_assert_eq(http1_parse_head(nul, sizeof(nul) - 1, &lim, &r), 400);
	}
}

#define G1 "5b0c7c1e-1111-4222-8333-444455556666"
#define G2 "0988239a-bb66-4616-90a4-b07771a2097c"

Test(http1, filestore_targets)
{
	char room[HTTP1_ROOM_LEN + 1], name[HTTP1_NAME_MAX], tok[HTTP1_TOKEN_LEN + 1];
	const char *bad[] = {
		"/filestore/" G1 "/../" G2 ".txt", "/filestore/../" G2 ".txt",
		"/filestore/%2e%2e/" G2, "/filestore/" G1 "%2f..%2f/" G2, "/filestore/" G1 "/%2e%2e",
		"/filestore/" G1 "/..", "/filestore/" G1 "/.", "/filestore/" G1 "/" G2 "/x",
		"/filestore/" G1 "//" G2, "/filestore//" G1 "/" G2, "/filestore/" G1 "/" G2 "%00.txt",
		"/filestore/" G1 "/" G2 ".txt%00", "/filestore/" G1 "/" G2 ".tx\\t",
		"/filestore/" G1 "/" G2 ".abcdefghijklmnopq", "/filestore/" G1 "/" G2 ".",
		"/filestore/" G1 "/" G2 "..txt", "/filestore/" G1 "/x" G2,
		"/filestore/5B0C7C1E-1111-4222-8333-444455556666/" G2, "/filestore/" G1,
		"/filestore/" G1 "/", "/filestore/" G1 "/.tmp-" G2,
	};

	cr_assert_eq(http1_filestore_target("/filestore/" G1 "/" G2 ".txt?token=" G2, "/filestore/",
					    room, name, tok), 0);
	cr_assert_str_eq(room, G1);
	cr_assert_str_eq(name, G2 ".txt");
	cr_assert_str_eq(tok, G2);
	cr_assert_eq(http1_filestore_target("/filestore/" G1 "/" G2 "?a=b&token=" G2 "&token=" G2,
					    "/filestore/", room, name, tok), 0);
	cr_assert_str_eq(tok, "", "two tokens spoil both");
	cr_assert_eq(http1_filestore_target("/filestore/" G1 "/" G2 "?token=../x", "/filestore/",
					    room, name, tok), 0);
	cr_assert_str_eq(tok, "");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(http1_filestore_target(bad[i], "/filestore/", room, name, tok), 400,
			     "%s", bad[i]);
	cr_assert_eq(http1_filestore_target("/other/" G1 "/" G2, "/filestore/", room, name, tok), 404);
	cr_assert_eq(http1_filestore_target("https://h/filestore/" G1 "/" G2, "/filestore/", room,
					    name, tok), 400);
	cr_assert_eq(http1_filestore_target("/filestore%2f" G1 "/" G2, "/filestore/", room, name,
					    tok), 404);
}

Test(http1, ranges)
{
	uint64_t a, b;

	cr_assert_eq(http1_parse_range("bytes=0-9", 100, &a, &b), HTTP1_RANGE_OK);
	cr_assert(a == 0 && b == 9);
	cr_assert_eq(http1_parse_range("bytes=90-", 100, &a, &b), HTTP1_RANGE_OK);
	cr_assert(a == 90 && b == 99);
	cr_assert_eq(http1_parse_range("bytes=-10", 100, &a, &b), HTTP1_RANGE_OK);
	cr_assert(a == 90 && b == 99);
	cr_assert_eq(http1_parse_range("bytes=-1000", 100, &a, &b), HTTP1_RANGE_OK);
	cr_assert(a == 0 && b == 99);
	cr_assert_eq(http1_parse_range("bytes=50-1000", 100, &a, &b), HTTP1_RANGE_OK);
	cr_assert(a == 50 && b == 99);
	cr_assert_eq(http1_parse_range("bytes=100-", 100, &a, &b), HTTP1_RANGE_UNSAT);
	cr_assert_eq(http1_parse_range("bytes=-0", 100, &a, &b), HTTP1_RANGE_UNSAT);
	cr_assert_eq(http1_parse_range("bytes=0-", 0, &a, &b), HTTP1_RANGE_UNSAT);
	cr_assert_eq(http1_parse_range("bytes=5-1", 100, &a, &b), HTTP1_RANGE_NONE);
	cr_assert_eq(http1_parse_range("bytes=0-1,5-6", 100, &a, &b), HTTP1_RANGE_NONE);
	cr_assert_eq(http1_parse_range("items=0-1", 100, &a, &b), HTTP1_RANGE_NONE);
	cr_assert_eq(http1_parse_range("bytes=x", 100, &a, &b), HTTP1_RANGE_NONE);
}

