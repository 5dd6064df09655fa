/* HTTP/1.1 request heads for the Web service (web.c): a strict parser of
 * the small subset that the filestore serves (xccos.md §e, option A), plus
 * the filestore's request targets and single byte ranges.
 *
 * Strict on purpose: what request smuggling and path tricks need is refused
 * rather than interpreted. No obs-fold, no bare CR or LF, no NUL, no space
 * before the colon, one Host, one Content-Length, never Content-Length
 * together with Transfer-Encoding, origin-form targets of visible ASCII
 * only, and no percent-decoding at all: the filestore's names are GUIDs
 * plus an extension, so a '%' can only be a trick.
 *
 * Pure functions over caller buffers; any thread. */
#ifndef PARLEY_HTTP1_H
#define PARLEY_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_TARGET_MAX	2048	/* longer request targets: 414 */
#define HTTP1_RANGE_MAX		128	/* a longer Range header is ignored */
#define HTTP1_ROOM_LEN		36	/* lower-case GUID */
#define HTTP1_NAME_MAX		64	/* repository name, with its NUL */
#define HTTP1_TOKEN_LEN		36
#define HTTP1_EXT_MAX		16	/* extension after the GUID */
#define HTTP1_PEER_MAX		160	/* X-Parley-Peer value */

enum http1_method {
	HTTP1_GET = 1,
	HTTP1_PUT,
	HTTP1_OTHER,		/* a well-formed method we do not serve: 405 */
};

struct http1_limits {
	uint32_t	max_headers;	/* header lines; more: 431 */
};

struct http1_req {
	enum http1_method	method;
	int			minor;		/* HTTP/1.<minor>: 0 or 1 */
	char			target[HTTP1_TARGET_MAX + 1];
	bool			has_host;
	bool			has_length;
	uint64_t		length;		/* Content-Length */
	bool			has_te;		/* any Transfer-Encoding */
	bool			conn_close;	/* Connection: close */
	bool			conn_keepalive;	/* Connection: keep-alive (1.0) */
	bool			expect_continue;
	bool			expect_other;	/* an Expect we do not know: 417 */
	bool			has_range;	/* exactly one Range, and it fit in range[] */
	char			range[HTTP1_RANGE_MAX];
	/* X-Parley-Peer: another node of the array fetching a file (webfetch.h);
	 * kept only when there is exactly one and it fits. */
	bool			has_peer;
	unsigned		npeer;
	char			peer[HTTP1_PEER_MAX];
	unsigned		nrange;		/* Range header lines seen */
};

/* Parses the head <buf>[0..<len>), which ends with the blank line
 * ("\r\n\r\n" included in <len>). 0 and <req> filled, or the HTTP status
 * to refuse it with: 400 (malformed; also a Host problem, duplicated or
 * conflicting lengths), 413 (a Content-Length beyond 2^64), 414 (target
 * too long), 431 (too many header lines), 505 (not HTTP/1.x). */
int http1_parse_head(const char *buf, size_t len, const struct http1_limits *lim,
		     struct http1_req *req);

/* Splits a filestore target "<prefix><room-id>/<name>[?query]" where
 * <prefix> is the URL path of the service ("/filestore/"). <room> gets the
 * lower-case GUID of the room, <name> the repository name (lower-case GUID,
 * optionally '.' and 1..HTTP1_EXT_MAX of [A-Za-z0-9]), <token> the value of
 * the one "token" query parameter when it has the shape of a token (else
 * ""). 0, 404 (not under <prefix>) or 400 (anything else: extra or empty
 * segments, dot segments, '%', '\', other characters, over-long names). */
int http1_filestore_target(const char *target, const char *prefix, char room[HTTP1_ROOM_LEN + 1],
			   char name[HTTP1_NAME_MAX], char token[HTTP1_TOKEN_LEN + 1]);

/* True when <s> is a repository name as http1_filestore_target accepts. */
bool http1_repo_name_ok(const char *s);

enum http1_range {
	HTTP1_RANGE_NONE = 0,	/* absent, malformed, several ranges: send it all (200) */
	HTTP1_RANGE_OK,		/* 206 for [*first, *last] */
	HTTP1_RANGE_UNSAT,	/* 416 */
};

/* Reads a Range header value against a representation of <size> bytes:
 * "bytes=a-b", "bytes=a-" or "bytes=-n", one range only (RFC 9110 14.1.2,
 * 14.2: a server may ignore what it does not support). */
enum http1_range http1_parse_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last);

/* The reason phrase of <status> ("Forbidden"); "Unknown" for others. */
const char *http1_reason(int status);

#endif
