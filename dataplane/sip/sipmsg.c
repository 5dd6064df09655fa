/* SIP message framing and in-place parsing (RFC 3261 §7, §20, §25).
 *
 * Every byte read is bounds-checked against the length the caller gives: the
 * buffer is never assumed to be NUL-terminated, and the input comes straight
 * from the internet. The only write into the caller's buffer is unfolding
 * (the CR and LF of a folded header line become spaces).
 *
 * Line endings: RFC 3261 requires CRLF, but we are liberal in what we accept
 * and also take a bare LF as a line end (a CR directly before it is dropped).
 * A header section therefore ends at the first empty line, "\r\n" or "\n".
 * A bare CR that is not followed by LF is an ordinary byte; inside a header
 * value it is a control character and the message is rejected.
 *
 * Where RFC 4475 lets an element choose between rejecting and being robust,
 * this file chooses:
 *  - trailing SP/HTAB at the end of the start line: ignored (trws);
 *  - Max-Forwards above 255: treated as absent, max_forwards = -1 (scalar02);
 *  - Expires not a number or above INT32_MAX: treated as absent, -1
 *    (scalar02: the registrar then applies its default);
 *  - Via without branch: accepted, via_branch empty (RFC 2543 and in-dialog
 *    requests of real clients).
 *
 * Pure functions over buffers: no allocation, no global state, any thread. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/sip/siplex.h"
#include "dataplane/sip/sipmsg.h"

#define CL_HUGE UINT64_C(0x100000000)	/* any Content-Length above uint32 */

/* Header names the stack knows, full and compact forms. */
static const struct {
	const char *name;
	char compact;
	enum sip_hdr_id id;
} hdr_names[] = {
	{ "Via", 'v', SIP_H_VIA },
	{ "From", 'f', SIP_H_FROM },
	{ "To", 't', SIP_H_TO },
	{ "Call-ID", 'i', SIP_H_CALL_ID },
	{ "CSeq", 0, SIP_H_CSEQ },
	{ "Contact", 'm', SIP_H_CONTACT },
	{ "Content-Length", 'l', SIP_H_CONTENT_LENGTH },
	{ "Content-Type", 'c', SIP_H_CONTENT_TYPE },
	{ "Content-Encoding", 'e', SIP_H_CONTENT_ENCODING },
	{ "Max-Forwards", 0, SIP_H_MAX_FORWARDS },
	{ "Expires", 0, SIP_H_EXPIRES },
	{ "Authorization", 0, SIP_H_AUTHORIZATION },
	{ "Proxy-Authorization", 0, SIP_H_PROXY_AUTHORIZATION },
	{ "Supported", 'k', SIP_H_SUPPORTED },
	{ "Require", 0, SIP_H_REQUIRE },
	{ "Proxy-Require", 0, SIP_H_PROXY_REQUIRE },
	{ "Session-Expires", 'x', SIP_H_SESSION_EXPIRES },
	{ "Min-SE", 0, SIP_H_MIN_SE },
	{ "Event", 'o', SIP_H_EVENT },
	{ "User-Agent", 0, SIP_H_USER_AGENT },
	{ "Route", 0, SIP_H_ROUTE },
	{ "Record-Route", 0, SIP_H_RECORD_ROUTE },
	{ "Accept", 0, SIP_H_ACCEPT },
	{ "Allow", 0, SIP_H_ALLOW },
	{ "Subject", 's', SIP_H_SUBJECT },
};

static enum sip_hdr_id
hdr_id(struct sip_str name)
{
	size_t i;

	if (name.len == 1) {
		for (i = 0; i < sizeof(hdr_names) / sizeof(hdr_names[0]); i++)
			if (hdr_names[i].compact == lower(name.p[0]))
				return hdr_names[i].id;
		return SIP_H_OTHER;
	}
	for (i = 0; i < sizeof(hdr_names) / sizeof(hdr_names[0]); i++)
		if (sip_str_ieq(name, hdr_names[i].name))
			return hdr_names[i].id;
	return SIP_H_OTHER;
}

static const char *const method_names[SIP_M__COUNT] = {
	[SIP_M_UNKNOWN] = "UNKNOWN",
	[SIP_M_INVITE] = "INVITE",
	[SIP_M_ACK] = "ACK",
	[SIP_M_BYE] = "BYE",
	[SIP_M_CANCEL] = "CANCEL",
	[SIP_M_OPTIONS] = "OPTIONS",
	[SIP_M_REGISTER] = "REGISTER",
	[SIP_M_INFO] = "INFO",
	[SIP_M_UPDATE] = "UPDATE",
	[SIP_M_SUBSCRIBE] = "SUBSCRIBE",
	[SIP_M_NOTIFY] = "NOTIFY",
	[SIP_M_MESSAGE] = "MESSAGE",
	[SIP_M_PRACK] = "PRACK",
	[SIP_M_REFER] = "REFER",
	[SIP_M_PUBLISH] = "PUBLISH",
};

enum sip_method
sip_method_from(struct sip_str name)
{
	int i;

	/* Methods are case-sensitive (RFC 3261 §7.1). */
	for (i = SIP_M_UNKNOWN + 1; i < SIP_M__COUNT; i++)
		if (sip_str_eq(name, method_names[i]))
			return (enum sip_method)i;
	return SIP_M_UNKNOWN;
}

const char *
sip_method_name(enum sip_method m)
{
	if ((int)m < 0 || m >= SIP_M__COUNT)
		return method_names[SIP_M_UNKNOWN];
	return method_names[m];
}

bool
sip_str_eq(struct sip_str a, const char *s)
{
	size_t n = strlen(s);

	return a.len == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

bool
sip_str_ieq(struct sip_str a, const char *s)
{
	size_t i, n = strlen(s);

	if (a.len != n)
		return false;
	for (i = 0; i < n; i++)
		if (lower(a.p[i]) != lower(s[i]))
			return false;
	return true;
}

bool
sip_str_ieq2(struct sip_str a, struct sip_str b)
{
	uint32_t i;

	if (a.len != b.len)
		return false;
	for (i = 0; i < a.len; i++)
		if (lower(a.p[i]) != lower(b.p[i]))
			return false;
	return true;
}

struct sip_str
sip_str_trim(struct sip_str s)
{
	if (s.p == NULL)
		return s;
	while (s.len > 0 && (is_wsp(s.p[0]) || s.p[0] == '\r' || s.p[0] == '\n')) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && (is_wsp(s.p[s.len - 1]) || s.p[s.len - 1] == '\r' ||
			     s.p[s.len - 1] == '\n'))
		s.len--;
	return s;
}

int
sip_str_u32(struct sip_str s, uint32_t *out)
{
	uint64_t v = 0;
	uint32_t i;

	s = sip_str_trim(s);
	if (s.len == 0)
		return -EINVAL;
	for (i = 0; i < s.len; i++) {
		if (!is_digit(s.p[i]))
			return -EINVAL;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
		if (v > UINT32_MAX) {
			/* keep checking the syntax: "99999x" is -EINVAL */
			for (; i < s.len; i++)
				if (!is_digit(s.p[i]))
					return -EINVAL;
			return -ERANGE;
		}
	}
	*out = (uint32_t)v;
	return 0;
}

size_t
sipmsg_skip_keepalive(const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return i;
}

/* Offset just past the empty line that ends the header section, or 0 when
 * none is within the first <len> bytes. */
static size_t
hdr_end(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p = nl + 1;
		if (p < end && *p == '\n')
			return (size_t)(p + 1 - buf);
		if (p + 1 < end && p[0] == '\r' && p[1] == '\n')
			return (size_t)(p + 2 - buf);
	}
	return 0;
}

/* End of the line that starts at <p> (the LF, or <end>), and the end of its
 * content (before an optional CR). */
static const char *
line_end(const char *p, const char *end, const char **content_end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	if (nl == NULL)
		nl = end;
	*content_end = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
	return nl;
}

/* End of a logical header line (folded continuation lines included) that
 * starts at <p>; returns the position just past its final LF (or <end>). */
static const char *
logical_end(const char *p, const char *end)
{
	const char *ce, *nl;

	for (;;) {
		nl = line_end(p, end, &ce);
		if (nl >= end)
			return end;
		p = nl + 1;
		if (p >= end || !is_wsp(*p))
			return p;
	}
}

/* Decimal Content-Length value in [p, end), which may contain folding
 * whitespace around the digits. Returns 0 and *v (capped at CL_HUGE), or
 * -EBADMSG. */
static int
cl_value(const char *p, const char *end, uint64_t *v)
{
	uint64_t n = 0;
	bool any = false;

	while (p < end && (is_wsp(*p) || *p == '\r' || *p == '\n'))
		p++;
	while (p < end && is_digit(*p)) {
		if (n < CL_HUGE)
			n = n * 10 + (uint64_t)(*p - '0');
		if (n > CL_HUGE)
			n = CL_HUGE;
		any = true;
		p++;
	}
	while (p < end && (is_wsp(*p) || *p == '\r' || *p == '\n'))
		p++;
	if (!any || p != end)
		return -EBADMSG;
	*v = n;
	return 0;
}

ssize_t
sipmsg_frame(const char *buf, size_t len, const struct sipmsg_limits *lim)
{
	const char *p, *end, *colon, *le;
	size_t scan = len, hlen;
	uint64_t cl = 0, v;
	bool have_cl = false;
	struct sip_str name;

	if (scan > lim->max_msg)
		scan = lim->max_msg;
	hlen = hdr_end(buf, scan);
	if (hlen == 0)
		return len >= lim->max_msg ? -E2BIG : 0;

	end = buf + hlen;
	p = memchr(buf, '\n', hlen);
	p = p != NULL ? p + 1 : end;		/* skip the start line */
	while (p < end) {
		le = logical_end(p, end);
		colon = memchr(p, ':', (size_t)(le - p));
		if (colon != NULL) {
			name = sip_str_trim(mkstr(p, (size_t)(colon - p)));
			if (hdr_id(name) == SIP_H_CONTENT_LENGTH) {
				if (cl_value(colon + 1, le, &v) != 0)
					return -EBADMSG;
				if (have_cl && v != cl)
					return -EBADMSG;
				cl = v;
				have_cl = true;
			}
		}
		p = le;
	}
	if (cl >= CL_HUGE || hlen + cl > lim->max_msg)
		return -E2BIG;
	if (hlen + cl > len)
		return 0;
	return (ssize_t)(hlen + cl);
}

const struct sip_hdr *
sipmsg_find(const struct sipmsg *m, enum sip_hdr_id id)
{
	if ((int)id <= SIP_H_OTHER || id >= SIP_H__COUNT || m->first[id] < 0)
		return NULL;
	return &m->hdr[m->first[id]];
}

const struct sip_hdr *
sipmsg_find_next(const struct sipmsg *m, const struct sip_hdr *prev)
{
	size_t i;

	if (prev < m->hdr || prev >= m->hdr + m->nhdr)
		return NULL;
	for (i = (size_t)(prev - m->hdr) + 1; i < m->nhdr; i++)
		if (m->hdr[i].id == prev->id)
			return &m->hdr[i];
	return NULL;
}

const struct sip_hdr *
sipmsg_find_name(const struct sipmsg *m, const char *name)
{
	enum sip_hdr_id id = hdr_id(mkstr(name, strlen(name)));
	uint16_t i;

	if (id != SIP_H_OTHER)
		return sipmsg_find(m, id);
	for (i = 0; i < m->nhdr; i++)
		if (sip_str_ieq(m->hdr[i].name, name))
			return &m->hdr[i];
	return NULL;
}

bool
sipmsg_can_reply(const struct sipmsg *m)
{
	return m->is_request && m->first[SIP_H_VIA] >= 0 && m->from_uri.len > 0 &&
	       m->to_uri.len > 0 && m->call_id.len > 0 && m->cseq_method_name.len > 0;
}

/* Start line. Request: Method SP Request-URI SP SIP-Version; response:
 * SIP-Version SP Status-Code SP Reason-Phrase. Exactly one SP between the
 * elements (RFC 4475 lwsstart, lwsruri, ltgtruri are rejected). */
static int
parse_start(struct sipmsg *m, const char *p, size_t n)
{
	const char *sp1, *sp2;
	struct sip_str ver, code;
	struct sip_uri u;
	uint32_t i;

	if (n >= 4 && lower(p[0]) == 's' && lower(p[1]) == 'i' && lower(p[2]) == 'p' &&
	    p[3] == '/') {
		m->is_request = false;
		sp1 = memchr(p, ' ', n);
		if (sp1 == NULL)
			return -EBADMSG;
		ver = mkstr(p, (size_t)(sp1 - p));
		sp1++;
		sp2 = memchr(sp1, ' ', n - (size_t)(sp1 - p));
		code = mkstr(sp1, (size_t)((sp2 != NULL ? sp2 : p + n) - sp1));
		if (code.len != 3 || !is_digit(code.p[0]) || !is_digit(code.p[1]) ||
		    !is_digit(code.p[2]) || code.p[0] < '1' || code.p[0] > '6')
			return -EBADMSG;
		m->status = (code.p[0] - '0') * 100 + (code.p[1] - '0') * 10 + (code.p[2] - '0');
		m->reason = sp2 != NULL ? mkstr(sp2 + 1, n - (size_t)(sp2 + 1 - p))
					: mkstr(p + n, 0);
		for (i = 0; i < m->reason.len; i++)
			if ((unsigned char)m->reason.p[i] < 0x20 && m->reason.p[i] != '\t')
				return -EBADMSG;
	} else {
		m->is_request = true;
		while (n > 0 && is_wsp(p[n - 1]))	/* trws: be robust */
			n--;
		sp1 = memchr(p, ' ', n);
		if (sp1 == NULL)
			return -EBADMSG;
		m->method_name = mkstr(p, (size_t)(sp1 - p));
		if (!all_token(m->method_name.p, m->method_name.len))
			return -EBADMSG;
		m->method = sip_method_from(m->method_name);
		for (sp2 = p + n; sp2 > sp1 && sp2[-1] != ' '; sp2--)
			;
		if (sp2 <= sp1 + 1)
			return -EBADMSG;
		m->ruri = mkstr(sp1 + 1, (size_t)(sp2 - 1 - (sp1 + 1)));
		ver = mkstr(sp2, (size_t)(p + n - sp2));
		/* escruri: a Request-URI cannot carry headers (RFC 3261 §19.1.1) */
		if (siplex_has_space(m->ruri) || sip_uri_parse(m->ruri, &u) != 0 || u.headers.len > 0)
			return -EBADMSG;
	}
	if (ver.len < 5 || lower(ver.p[0]) != 's' || lower(ver.p[1]) != 'i' ||
	    lower(ver.p[2]) != 'p' || ver.p[3] != '/')
		return -EBADMSG;
	if (!sip_str_eq(mkstr(ver.p + 4, ver.len - 4), "2.0"))
		return -EPROTONOSUPPORT;
	return 0;
}

/* A header value may hold control characters only as quoted-pairs inside a
 * quoted string (RFC 4475 intmeth puts BEL, NUL and DEL there). */
static bool
value_valid(struct sip_str v)
{
	uint32_t i;
	bool q = false;

	for (i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (q && c == '\\' && i + 1 < v.len) {
			i++;
			continue;
		}
		if (c == '"')
			q = !q;
		else if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* One Via element: sent-protocol LWS sent-by *( SEMI via-params ). */
static int
parse_via(struct sip_str v, struct sip_str *transport, struct sip_str *branch)
{
	struct sip_str part[3];
	uint32_t i = 0, st, k;
	struct sip_str params;

	for (k = 0; k < 3; k++) {
		while (i < v.len && is_wsp(v.p[i]))
			i++;
		if (k > 0) {
			if (i >= v.len || v.p[i] != '/')
				return -EBADMSG;
			i++;
			while (i < v.len && is_wsp(v.p[i]))
				i++;
		}
		st = i;
		while (i < v.len && is_token(v.p[i]))
			i++;
		part[k] = mkstr(v.p + st, i - st);
		if (part[k].len == 0)
			return -EBADMSG;
	}
	if (!sip_str_ieq(part[0], "SIP") || !sip_str_eq(part[1], "2.0"))
		return -EBADMSG;
	if (i >= v.len || !is_wsp(v.p[i]))
		return -EBADMSG;
	while (i < v.len && is_wsp(v.p[i]))
		i++;
	st = i;
	while (i < v.len && v.p[i] != ';' && !is_wsp(v.p[i]))
		i++;
	if (i == st)
		return -EBADMSG;
	params = mkstr(v.p + i, v.len - i);
	if (!siplex_params_valid(params))
		return -EBADMSG;
	*transport = part[2];
	if (!sip_param_get(params, "branch", branch))
		*branch = mkstr(v.p + v.len, 0);
	return 0;
}

static int
parse_fromto(struct sip_str v, struct sip_str *uri, struct sip_str *tag)
{
	struct sip_nameaddr na;
	struct sip_uri u;

	if (sip_nameaddr_parse(v, &na) != 0 || sip_uri_parse(na.uri, &u) != 0 ||
	    !siplex_params_valid(na.params))
		return -EBADMSG;
	*uri = na.uri;
	if (!sip_param_get(na.params, "tag", tag))
		*tag = mkstr(na.uri.p + na.uri.len, 0);
	return 0;
}

static int
parse_cseq(struct sipmsg *m, struct sip_str v)
{
	uint32_t i = 0, n;

	while (i < v.len && is_digit(v.p[i]))
		i++;
	if (i == 0 || i >= v.len || !is_wsp(v.p[i]) ||
	    sip_str_u32(mkstr(v.p, i), &n) != 0)
		return -EBADMSG;
	m->cseq_method_name = sip_str_trim(mkstr(v.p + i, v.len - i));
	if (!all_token(m->cseq_method_name.p, m->cseq_method_name.len)) {
		m->cseq_method_name = SIP_STR_NULL;
		return -EBADMSG;
	}
	m->cseq = n;
	m->cseq_method = sip_method_from(m->cseq_method_name);
	return 0;
}

/* Count of headers with <id>. */
static unsigned
hdr_count(const struct sipmsg *m, enum sip_hdr_id id)
{
	const struct sip_hdr *h;
	unsigned n = 0;

	for (h = sipmsg_find(m, id); h != NULL; h = sipmsg_find_next(m, h))
		n++;
	return n;
}

/* Takes the mandatory and well-known headers apart. */
static int
extract(struct sipmsg *m)
{
	const struct sip_hdr *h;
	struct sip_str rest, item, tr, br;
	uint32_t v;
	int rc = 0, r;
	bool top = true;

	for (h = sipmsg_find(m, SIP_H_VIA); h != NULL; h = sipmsg_find_next(m, h)) {
		rest = h->value;
		if (rest.len == 0)
			rc = -EBADMSG;
		while (sip_list_next(&rest, &item)) {
			if (parse_via(item, &tr, &br) != 0) {
				rc = -EBADMSG;
			} else if (top) {
				m->via_transport = tr;
				m->via_branch = br;
			}
			top = false;
		}
	}
	if (top)
		rc = -EBADMSG;		/* no Via */

	/* From, To, Call-ID and CSeq appear exactly once (RFC 4475 multi01) */
	if (hdr_count(m, SIP_H_FROM) != 1 || hdr_count(m, SIP_H_TO) != 1 ||
	    hdr_count(m, SIP_H_CALL_ID) != 1 || hdr_count(m, SIP_H_CSEQ) != 1)
		rc = -EBADMSG;
	if ((h = sipmsg_find(m, SIP_H_FROM)) != NULL &&
	    parse_fromto(h->value, &m->from_uri, &m->from_tag) != 0)
		rc = -EBADMSG;
	if ((h = sipmsg_find(m, SIP_H_TO)) != NULL &&
	    parse_fromto(h->value, &m->to_uri, &m->to_tag) != 0)
		rc = -EBADMSG;
	if ((h = sipmsg_find(m, SIP_H_CALL_ID)) != NULL) {
		if (h->value.len == 0 || siplex_has_space(h->value))
			rc = -EBADMSG;
		else
			m->call_id = h->value;
	}
	if ((h = sipmsg_find(m, SIP_H_CSEQ)) != NULL && parse_cseq(m, h->value) != 0)
		rc = -EBADMSG;
	if (m->is_request && m->cseq_method_name.len > 0 && m->method_name.len > 0 &&
	    (m->cseq_method_name.len != m->method_name.len ||
	     memcmp(m->cseq_method_name.p, m->method_name.p, m->method_name.len) != 0))
		rc = -EBADMSG;

	for (h = sipmsg_find(m, SIP_H_CONTENT_LENGTH); h != NULL; h = sipmsg_find_next(m, h)) {
		r = sip_str_u32(h->value, &v);
		if (r != 0 || v > INT32_MAX ||
		    (m->content_length >= 0 && (uint32_t)m->content_length != v))
			return -EBADMSG;	/* framing is lost: say nothing more */
		m->content_length = (int32_t)v;
	}
	if ((h = sipmsg_find(m, SIP_H_MAX_FORWARDS)) != NULL) {
		r = sip_str_u32(h->value, &v);
		if (r == -EINVAL)
			rc = -EBADMSG;
		else if (r == 0 && v <= 255)
			m->max_forwards = (int32_t)v;
	}
	if ((h = sipmsg_find(m, SIP_H_EXPIRES)) != NULL && sip_str_u32(h->value, &v) == 0 &&
	    v <= INT32_MAX)
		m->expires = (int32_t)v;
	return rc;
}

/* Unfolds the logical header line [p, le) in place: every CR or LF that is
 * followed (possibly after the CR) by SP/HTAB becomes a space. */
static void
unfold(char *p, char *le)
{
	char *q;

	for (q = p; q < le; q++) {
		if (*q == '\n' && q + 1 < le && is_wsp(q[1])) {
			*q = ' ';
			if (q > p && q[-1] == '\r')
				q[-1] = ' ';
		}
	}
}

int
sipmsg_parse(struct sipmsg *m, char *buf, size_t len, const struct sipmsg_limits *lim)
{
	char *p, *end, *le, *colon;
	const char *ce, *nl;
	struct sip_hdr *h;
	size_t hlen, body;
	unsigned max = lim->max_headers < SIPMSG_HDR_CAP ? lim->max_headers : SIPMSG_HDR_CAP;
	int rc, r;
	int i;

	memset(m, 0, offsetof(struct sipmsg, hdr));
	for (i = 0; i < SIP_H__COUNT; i++)
		m->first[i] = -1;
	m->call_id = m->cseq_method_name = m->from_uri = m->from_tag = SIP_STR_NULL;
	m->to_uri = m->to_tag = m->via_branch = m->via_transport = m->body = SIP_STR_NULL;
	m->cseq = 0;
	m->cseq_method = SIP_M_UNKNOWN;
	m->content_length = m->max_forwards = m->expires = -1;
	m->len = (uint32_t)len;

	if (len > lim->max_msg || len > UINT32_MAX)
		return -E2BIG;
	hlen = hdr_end(buf, len);
	if (hlen == 0)
		return -EBADMSG;
	end = buf + hlen;

	nl = line_end(buf, end, &ce);
	rc = parse_start(m, buf, (size_t)(ce - buf));
	p = (char *)(uintptr_t)nl + 1;
	if (p < end && is_wsp(*p))
		rc = -EBADMSG;		/* a start line cannot be folded */

	while (p < end) {
		le = (char *)(uintptr_t)logical_end(p, end);
		line_end(p, le, &ce);
		if (le == end || ce == p)
			break;		/* the empty line */
		if (m->nhdr >= max) {
			if (rc == 0)
				rc = -E2BIG;
			break;
		}
		colon = memchr(p, ':', (size_t)(le - p));
		if (colon == NULL) {
			rc = -EBADMSG;
			break;
		}
		h = &m->hdr[m->nhdr];
		h->name = sip_str_trim(mkstr(p, (size_t)(colon - p)));
		if (!all_token(h->name.p, h->name.len) ||
		    h->name.p != p /* leading LWS in a name */) {
			rc = -EBADMSG;
			break;
		}
		unfold(colon + 1, le);
		h->value = sip_str_trim(mkstr(colon + 1, (size_t)(le - colon - 1)));
		if (!value_valid(h->value)) {
			rc = -EBADMSG;
			break;
		}
		h->id = hdr_id(h->name);
		if (h->id != SIP_H_OTHER && m->first[h->id] < 0)
			m->first[h->id] = (int16_t)m->nhdr;
		m->nhdr++;
		p = le;
	}

	r = extract(m);
	if (rc == 0)
		rc = r;
	body = len - hlen;
	if (rc == 0 && body != (size_t)(m->content_length > 0 ? m->content_length : 0))
		rc = -EBADMSG;		/* not the framed length: truncated or trailing bytes */
	if (rc == 0 && m->content_length > 0)
		m->body = mkstr(buf + hlen, (size_t)m->content_length);
	else
		m->body = mkstr(buf + hlen, 0);
	return rc;
}
