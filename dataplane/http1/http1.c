/* HTTP/1.1 request heads, filestore targets and byte ranges; see http1.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dataplane/http1/http1.h"

/* RFC 9110 tchar. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value bytes: visible ASCII, obs-text, SP and HTAB. */
static bool
is_vbyte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The comma-separated list <v> has the token <tok> (case-insensitive). */
static bool
list_has(const char *v, size_t vl, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	while (i < vl) {
		size_t s, e;

		while (i < vl && (is_ows(v[i]) || v[i] == ','))
			i++;
		s = i;
		while (i < vl && v[i] != ',')
			i++;
		e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return true;
	}
	return false;
}

static bool
name_is(const char *n, size_t nl, const char *want)
{
	return nl == strlen(want) && strncasecmp(n, want, nl) == 0;
}

/* Content-Length: 1*DIGIT. 0, 400 or 413 (beyond 64 bits). */
static int
parse_length(const char *v, size_t vl, uint64_t *out)
{
	uint64_t n = 0;

	if (vl == 0)
		return 400;
	for (size_t i = 0; i < vl; i++) {
		unsigned d;

		if (v[i] < '0' || v[i] > '9')
			return 400;
		d = (unsigned)(v[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return 413;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* One header line <l>[0..<ll>) (no CRLF). 0 or a status. */
static int
header(struct http1_req *r, const char *l, size_t ll)
{
	const char *colon = memchr(l, ':', ll), *v, *end = l + ll;
	size_t nl, vl;

	if (colon == NULL || colon == l)
		return 400;
	nl = colon - l;
	for (size_t i = 0; i < nl; i++)
		if (!is_tchar((unsigned char)l[i]))
			return 400;	/* also a space before the colon (RFC 9112 5.1) */
	v = colon + 1;
	while (v < end && is_ows(*v))
		v++;
	while (end > v && is_ows(end[-1]))
		end--;
	vl = end - v;
	for (size_t i = 0; i < vl; i++)
		if (!is_vbyte((unsigned char)v[i]))
			return 400;

	if (name_is(l, nl, "host")) {
		if (r->has_host)
			return 400;
		r->has_host = true;
	} else if (name_is(l, nl, "content-length")) {
		uint64_t n;
		int rc;

		if (r->has_length)
			return 400;
		rc = parse_length(v, vl, &n);
		if (rc != 0)
			return rc;
		r->has_length = true;
		r->length = n;
	} else if (name_is(l, nl, "transfer-encoding")) {
		r->has_te = true;
	} else if (name_is(l, nl, "connection")) {
		if (list_has(v, vl, "close"))
			r->conn_close = true;
		if (list_has(v, vl, "keep-alive"))
			r->conn_keepalive = true;
	} else if (name_is(l, nl, "expect")) {
		if (vl == 12 && strncasecmp(v, "100-continue", 12) == 0)
			r->expect_continue = true;
		else
			r->expect_other = true;
	} else if (name_is(l, nl, "range")) {
		/* Kept only when there is exactly one and it fits. */
		if (r->nrange++ == 0 && vl < sizeof(r->range)) {
			memcpy(r->range, v, vl);
			r->range[vl] = '\0';
			r->has_range = true;
		} else {
			r->has_range = false;
		}
	} else if (name_is(l, nl, "x-parley-peer")) {
		if (r->npeer++ == 0 && vl < sizeof(r->peer)) {
			memcpy(r->peer, v, vl);
			r->peer[vl] = '\0';
			r->has_peer = true;
		} else {
			r->has_peer = false;
		}
	}
	return 0;
}

/* "METHOD SP target SP HTTP/1.x". 0 or a status. */
static int
request_line(struct http1_req *r, const char *l, size_t ll)
{
	const char *sp1 = memchr(l, ' ', ll), *sp2, *ver, *end = l + ll;
	size_t ml, tl;

	if (sp1 == NULL || sp1 == l)
		return 400;
	ml = sp1 - l;
	for (size_t i = 0; i < ml; i++)
		if (!is_tchar((unsigned char)l[i]))
			return 400;
	sp2 = memchr(sp1 + 1, ' ', end - sp1 - 1);
	if (sp2 == NULL)
		return 400;
	tl = sp2 - sp1 - 1;
	if (tl == 0)
		return 400;
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)sp1[1 + i];

		if (c <= 0x20 || c >= 0x7f)
			return 400;
	}
	if (tl > HTTP1_TARGET_MAX)
		return 414;
	ver = sp2 + 1;
	if (end - ver != 8 || memcmp(ver, "HTTP/", 5) != 0 || ver[6] != '.' ||
	    ver[5] < '0' || ver[5] > '9' || ver[7] < '0' || ver[7] > '9')
		return 400;
	if (ver[5] != '1')
		return 505;
	r->minor = ver[7] - '0';
	if (r->minor > 1)
		r->minor = 1;	/* a later 1.x is answered as 1.1 (RFC 9110 2.5) */
	if (ml == 3 && !memcmp(l, "GET", 3))
		r->method = HTTP1_GET;
	else if (ml == 3 && !memcmp(l, "PUT", 3))
		r->method = HTTP1_PUT;
	else
		r->method = HTTP1_OTHER;
	memcpy(r->target, sp1 + 1, tl);
	r->target[tl] = '\0';
	return 0;
}

int
http1_parse_head(const char *buf, size_t len, const struct http1_limits *lim,
		 struct http1_req *req)
{
	const char *p = buf, *end;
	uint32_t nh = 0;
	bool first = true;
	int rc;

	memset(req, 0, sizeof(*req));
	if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0)
		return 400;
	if (memchr(buf, '\0', len) != NULL)
		return 400;
	end = buf + len - 2;	/* the final CRLF */
	while (p < end) {
		const char *cr = memchr(p, '\r', end - p);
		size_t ll;

		if (cr == NULL || cr[1] != '\n')
			return 400;	/* a bare CR */
		ll = cr - p;
		if (memchr(p, '\n', ll) != NULL)
			return 400;	/* a bare LF */
		if (first) {
			rc = request_line(req, p, ll);
			first = false;
		} else if (ll == 0 || is_ows(p[0])) {
			rc = 400;	/* obs-fold, or whitespace before the first name */
		} else if (++nh > lim->max_headers) {
			rc = 431;
		} else {
			rc = header(req, p, ll);
		}
		if (rc != 0)
			return rc;
		p = cr + 2;
	}
	if (first)
		return 400;
	if (req->minor == 1 && !req->has_host)
		return 400;	/* RFC 9112 3.2 */
	if (req->has_te && req->has_length)
		return 400;	/* RFC 9112 6.1: a smuggling attempt, at best */
	return 0;
}

static bool
hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A lower-case GUID text of exactly <n> = 36 bytes at <s>. */
static bool
guid_ok(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!hex_lower(s[i])) {
			return false;
		}
	}
	return true;
}

static bool
repo_name_ok(const char *s, size_t n)
{
	if (n < 36 || n >= HTTP1_NAME_MAX || !guid_ok(s, 36))
		return false;
	if (n == 36)
		return true;
	if (s[36] != '.' || n - 37 < 1 || n - 37 > HTTP1_EXT_MAX)
		return false;
	for (size_t i = 37; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

bool
http1_repo_name_ok(const char *s)
{
	return repo_name_ok(s, strlen(s));
}

int
http1_filestore_target(const char *target, const char *prefix, char room[HTTP1_ROOM_LEN + 1],
		       char name[HTTP1_NAME_MAX], char token[HTTP1_TOKEN_LEN + 1])
{
	size_t plen = strlen(prefix), rl, nl;
	const char *rest, *q, *slash, *nm;
	bool seen = false;

	room[0] = name[0] = token[0] = '\0';
	if (target[0] != '/')
		return 400;	/* absolute-form, asterisk-form */
	if (strncmp(target, prefix, plen) != 0)
		return 404;
	rest = target + plen;
	q = strchr(rest, '?');
	if (q == NULL)
		q = rest + strlen(rest);
	slash = memchr(rest, '/', q - rest);
	if (slash == NULL)
		return 400;
	rl = slash - rest;
	nm = slash + 1;
	nl = q - nm;
	if (!guid_ok(rest, rl) || !repo_name_ok(nm, nl))
		return 400;	/* also every '/', '.', '%' and '\' in either segment */
	memcpy(room, rest, rl);
	room[rl] = '\0';
	memcpy(name, nm, nl);
	name[nl] = '\0';
	if (*q != '?')
		return 0;
	for (const char *p = q + 1; *p != '\0';) {
		const char *amp = strchr(p, '&'), *e = amp ? amp : p + strlen(p);

		if (e - p > 6 && !memcmp(p, "token=", 6)) {
			const char *v = p + 6;
			size_t vl = e - v;

			/* A second token parameter spoils both. */
			if (seen || !guid_ok(v, vl))
				token[0] = '\0';
			else
				memcpy(token, v, vl), token[vl] = '\0';
			seen = true;
		}
		p = amp ? amp + 1 : e;
	}
	return 0;
}

/* Digits at *p into *out (saturating); false when there are none. */
static bool
number(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*p = s;
	*out = n;
	return true;
}

enum http1_range
http1_parse_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last)
{
	const char *p = v;
	uint64_t a, b;

	if (strncasecmp(p, "bytes", 5) != 0)
		return HTTP1_RANGE_NONE;
	p += 5;
	while (is_ows(*p))
		p++;
	if (*p++ != '=')
		return HTTP1_RANGE_NONE;
	while (is_ows(*p))
		p++;
	if (*p == '-') {		/* suffix: the last n bytes */
		p++;
		if (!number(&p, &b))
			return HTTP1_RANGE_NONE;
		while (is_ows(*p))
			p++;
		if (*p != '\0')
			return HTTP1_RANGE_NONE;	/* several ranges, or junk */
		if (b == 0 || size == 0)
			return HTTP1_RANGE_UNSAT;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return HTTP1_RANGE_OK;
	}
	if (!number(&p, &a) || *p++ != '-')
		return HTTP1_RANGE_NONE;
	b = UINT64_MAX;
	if (*p >= '0' && *p <= '9')
		number(&p, &b);
	while (is_ows(*p))
		p++;
	if (*p != '\0' || b < a)
		return HTTP1_RANGE_NONE;
	if (a >= size)
		return HTTP1_RANGE_UNSAT;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return HTTP1_RANGE_OK;
}

const char *
http1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	}
	return "Unknown";
}
