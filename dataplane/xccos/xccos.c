/* XCCOS codec: parses client envelopes (<cmd>, <grpchat>) into a DOM and
 * writes the server's envelopes as text (shared/protocol/xccos.md §b).
 *
 * Parsing, in this order, each step before the next one costs anything:
 *  1. size: over max_doc is -E2BIG, before any byte is read;
 *  2. DTD: a document holding "<!DOCTYPE" or "<!ENTITY" anywhere is refused
 *     (-EPERM) before libxml2 sees it, so no entity is ever declared,
 *     expanded or fetched (billion laughs, XXE). The scan is over raw bytes
 *     and therefore assumes an ASCII-compatible encoding; libxml2 is told
 *     the input is UTF-8 and to ignore the declared encoding, so a UTF-16 or
 *     EBCDIC document cannot hide a DTD from the scan: it is simply not
 *     well-formed;
 *  3. libxml2 (no network, no entity substitution, no DTD loading, none of
 *     XML_PARSE_HUGE's lifted limits), with a no-op error handler for this
 *     thread so that nothing reaches stderr; the reason goes to <err>;
 *  4. the tree: no DTD node (second line of defence), depth, envelope.
 *
 * A parsed message owns its libxml2 document (doc_). chan_uri, author and
 * ts point into that document, like xccos_attr() results; text is an
 * xmlChar string from xmlNodeGetContent (xmlFree), extra_attrs comes from an
 * xbuf (free); inner points into the caller's buffer. xccos_msg_free()
 * releases all of it.
 *
 * No global state of ours; any thread. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include "dataplane/xccos/xccos.h"

/* Used when <lim> is NULL or one of its fields is 0. */
#define DEFAULT_MAX_DOC		(64u * 1024)
#define DEFAULT_MAX_DEPTH	32u

/* See the top of the file. XML_PARSE_NOENT, XML_PARSE_DTDLOAD and
 * XML_PARSE_HUGE must never be added here. */
#define PARSE_OPTIONS	(XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | \
			 XML_PARSE_IGNORE_ENC)

#define TS_MAX_SECS	UINT64_C(253402300799)	/* 9999-12-31T23:59:59Z */
#define TS_UNITS	UINT64_C(10000000)	/* 100 ns per second */

/* ---- envelopes ---- */

void
xccos_begin(struct xbuf *b, uint64_t envid)
{
	xbuf_printf(b, "<xccos ver=\"1\" envid=\"%" PRIu64 "\" xmlns=\"" XCCOS_NS "\">", envid);
}

void
xccos_end(struct xbuf *b)
{
	xbuf_str(b, "</xccos>");
}

void
xccos_rpl_begin(struct xbuf *b, const char *name, const char *seqid, const char *cmd_envid,
		int code)
{
	if (seqid == NULL)
		seqid = "1";
	xbuf_str(b, "<rpl id=\"rpl:");
	xbuf_esc_attr(b, name, strlen(name));
	xbuf_raw(b, "\"", 1);
	xbuf_attr(b, "seqid", seqid);
	xbuf_str(b, "><commandid");
	xbuf_attr(b, "seqid", seqid);
	xbuf_attr(b, "envid", cmd_envid != NULL ? cmd_envid : "");
	xbuf_printf(b, "/><resp code=\"%d\">%s</resp><data>", code, xccos_code_text(code));
}

void
xccos_rpl_end(struct xbuf *b)
{
	xbuf_str(b, "</data></rpl>");
}

void
xccos_ntc_begin(struct xbuf *b, const char *name)
{
	xbuf_str(b, "<ntc id=\"ntc:");
	xbuf_esc_attr(b, name, strlen(name));
	xbuf_str(b, "\" seqid=\"1\"><data>");
}

void
xccos_ntc_end(struct xbuf *b)
{
	xbuf_str(b, "</data></ntc>");
}

const char *
xccos_code_text(int code)
{
	switch (code) {
	case 200: return "SUCCESS_OK";
	case 400: return "ERR_BAD_REQUEST";
	case 403: return "ERR_ACCESS_DENIED";
	case 404: return "ERR_NOT_FOUND";
	case 409: return "ERR_ALREADY_EXISTS";
	case 413: return "ERR_TOO_LARGE";
	case 501: return "ERR_NOT_IMPLEMENTED";
	case 503: return "ERR_SERVICE_UNAVAILABLE";
	default:  return "OPERATION_FAILED";
	}
}

/* ---- timestamps ---- */

static char *
put_dec(char *p, unsigned v, int width)
{
	int i;

	for (i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

/* Instants after year 9999 do not fit the fixed 28-character form and are
 * clamped to its last one. */
void
xccos_ts_format(uint64_t unix_100ns, char out[XCCOS_TS_LEN])
{
	uint64_t secs = unix_100ns / TS_UNITS;
	unsigned frac = (unsigned)(unix_100ns % TS_UNITS);
	struct tm tm;
	time_t t;
	char *p = out;

	if (secs > TS_MAX_SECS) {
		secs = TS_MAX_SECS;
		frac = (unsigned)(TS_UNITS - 1);
	}
	t = (time_t)secs;
	if (gmtime_r(&t, &tm) == NULL) {
		memset(&tm, 0, sizeof(tm));	/* only with a 32-bit time_t */
		tm.tm_year = 70;
		tm.tm_mday = 1;
		frac = 0;
	}
	p = put_dec(p, (unsigned)tm.tm_year + 1900, 4);
	*p++ = '-';
	p = put_dec(p, (unsigned)tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_dec(p, (unsigned)tm.tm_mday, 2);
	*p++ = 'T';
	p = put_dec(p, (unsigned)tm.tm_hour, 2);
	*p++ = ':';
	p = put_dec(p, (unsigned)tm.tm_min, 2);
	*p++ = ':';
	p = put_dec(p, (unsigned)tm.tm_sec, 2);
	*p++ = '.';
	p = put_dec(p, frac, 7);
	*p++ = 'Z';
	*p = '\0';
}

static bool
dec(const char *s, int n, unsigned *v)
{
	unsigned x = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	*v = x;
	return true;
}

static bool
is_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Leap years in 1..y-1. */
static unsigned
leaps_before(unsigned y)
{
	y--;
	return y / 4 - y / 100 + y / 400;
}

/* Strict "YYYY-MM-DDTHH:MM:SS[.F+][Z]", UTC, year 1970-9999. Fraction
 * digits beyond the seventh are dropped; second 60 (a leap second) counts
 * as the first second of the next minute, as timegm() would. */
int
xccos_ts_parse(const char *s, uint64_t *out_100ns)
{
	static const unsigned cum[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, sec, frac = 0, fd = 0, dim;
	uint64_t days;

	if (s == NULL || strnlen(s, 19) < 19)
		return -EINVAL;
	if (!dec(s, 4, &y) || s[4] != '-' || !dec(s + 5, 2, &mo) || s[7] != '-' ||
	    !dec(s + 8, 2, &d) || s[10] != 'T' || !dec(s + 11, 2, &h) || s[13] != ':' ||
	    !dec(s + 14, 2, &mi) || s[16] != ':' || !dec(s + 17, 2, &sec))
		return -EINVAL;
	s += 19;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (fd < 7) {
				frac = frac * 10 + (unsigned)(*s - '0');
				fd++;
			}
		}
		for (; fd < 7; fd++)
			frac *= 10;
	}
	if (*s == 'Z')
		s++;
	if (*s != '\0')
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	dim = mdays[mo - 1] + (mo == 2 && is_leap(y));
	if (d < 1 || d > dim)
		return -EINVAL;
	days = 365 * (uint64_t)(y - 1970) + leaps_before(y) - leaps_before(1970) +
	       cum[mo - 1] + (mo > 2 && is_leap(y)) + d - 1;
	*out_100ns = ((days * 86400 + h * 3600 + mi * 60 + sec) * TS_UNITS) + frac;
	return 0;
}

/* ---- DOM helpers ---- */

/* <name> NULL matches any element (used here for "the first child"). */
static bool
is_elem(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       (name == NULL || xmlStrEqual(n->name, (const xmlChar *)name));
}

/* The first element named <name> (NULL: any) from <n> on among its
 * siblings. */
static xmlNodePtr
first_elem(xmlNodePtr n, const char *name)
{
	for (; n != NULL; n = n->next)
		if (is_elem(n, name))
			return n;
	return NULL;
}

xmlNodePtr
xccos_child(xmlNodePtr parent, const char *name)
{
	return parent != NULL ? first_elem(parent->children, name) : NULL;
}

xmlNodePtr
xccos_next(xmlNodePtr node, const char *name)
{
	return node != NULL ? first_elem(node->next, name) : NULL;
}

/* An attribute value is a list of nodes; without a DTD libxml2 folds the
 * predefined and character references into one text node (or none for "").
 * check_tree() refuses any other shape, so a pointer can be handed out. */
static const char *
attr_value(xmlAttrPtr a)
{
	xmlNodePtr t = a->children;

	if (t == NULL)
		return "";
	if (t->type == XML_TEXT_NODE && t->next == NULL && t->content != NULL)
		return (const char *)t->content;
	return NULL;
}

const char *
xccos_attr(xmlNodePtr n, const char *name)
{
	xmlAttrPtr a;

	if (n == NULL || n->type != XML_ELEMENT_NODE)
		return NULL;
	for (a = n->properties; a != NULL; a = a->next)
		if (a->ns == NULL && xmlStrEqual(a->name, (const xmlChar *)name))
			return attr_value(a);
	return NULL;
}

/* ---- raw scanning ---- */

static bool
starts(const char *buf, size_t len, size_t i, const char *pat)
{
	size_t m = strlen(pat);

	return i <= len && len - i >= m && memcmp(buf + i, pat, m) == 0;
}

/* Offset of <pat> in buf[from..len), or len. */
static size_t
find(const char *buf, size_t len, size_t from, const char *pat)
{
	const char *p;

	if (from >= len)
		return len;
	p = memmem(buf + from, len - from, pat, strlen(pat));
	return p != NULL ? (size_t)(p - buf) : len;
}

static bool
has_dtd(const char *buf, size_t len)
{
	return find(buf, len, 0, "<!DOCTYPE") < len || find(buf, len, 0, "<!ENTITY") < len;
}

/* At buf[i] == '<': the offset just past a comment, a processing
 * instruction (the XML declaration too) or a CDATA section, or 0 when it is
 * a tag. The document is known well-formed, so each terminator exists. */
static size_t
skip_special(const char *buf, size_t len, size_t i)
{
	static const struct {
		const char *open, *close;
	} sp[] = {
		{ "<!--", "-->" },
		{ "<![CDATA[", "]]>" },
		{ "<?", "?>" },
	};
	size_t k, e;

	for (k = 0; k < sizeof(sp) / sizeof(sp[0]); k++) {
		if (!starts(buf, len, i, sp[k].open))
			continue;
		e = find(buf, len, i + strlen(sp[k].open), sp[k].close);
		return e < len ? e + strlen(sp[k].close) : len;
	}
	return 0;
}

/* At buf[i] == '<' of a tag: the offset just past its '>'. Quoted
 * attribute values may hold '>' and "/>" and are stepped over; *empty tells
 * a self-closing tag. */
static size_t
skip_tag(const char *buf, size_t len, size_t i, bool *empty)
{
	char q = 0;

	*empty = false;
	for (i++; i < len; i++) {
		char c = buf[i];

		if (q != 0) {
			if (c == q)
				q = 0;
		} else if (c == '"' || c == '\'') {
			q = c;
		} else if (c == '>') {
			*empty = buf[i - 1] == '/';
			return i + 1;
		}
	}
	return len;
}

/* The next '<' that opens a tag at or after <i>, stepping over text,
 * comments, PIs and CDATA; len when there is none. */
static size_t
next_tag(const char *buf, size_t len, size_t i)
{
	for (;;) {
		const char *p;
		size_t s;

		if (i >= len)
			return len;
		p = memchr(buf + i, '<', len - i);
		if (p == NULL)
			return len;
		i = (size_t)(p - buf);
		s = skip_special(buf, len, i);
		if (s == 0)
			return i;
		i = s;
	}
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Finds grpchat's content in the original bytes, so that it can be relayed
 * exactly as it came. The root is known to be well-formed, without DTD, and
 * its first element child is grpchat, so a small tokenizer is exact: skip
 * the prolog (BOM, XML declaration, comments, PIs), the root's start tag,
 * anything up to the first start tag (grpchat's), then follow the nesting
 * of what follows until the end tag at depth 0. Counting depth, rather
 * than taking the last "</grpchat>", stays right when a comment or CDATA
 * inside holds that text, or when more elements follow grpchat. */
static int
inner_slice(const char *buf, size_t len, struct xccos_msg *m)
{
	size_t i = 0, name, qlen, start, e, depth = 0;
	bool empty;

	if (starts(buf, len, 0, "\xef\xbb\xbf"))
		i = 3;
	i = next_tag(buf, len, i);				/* root start tag */
	if (i >= len)
		return -EBADMSG;
	i = skip_tag(buf, len, i, &empty);
	if (empty)
		return -EBADMSG;
	i = next_tag(buf, len, i);				/* grpchat start tag */
	if (i + 1 >= len || buf[i + 1] == '/')
		return -EBADMSG;
	name = i + 1;
	for (qlen = 0; name + qlen < len; qlen++) {
		char c = buf[name + qlen];

		if (is_space(c) || c == '/' || c == '>')
			break;
	}
	if (!(qlen == 7 || (qlen > 8 && buf[name + qlen - 8] == ':')) ||
	    memcmp(buf + name + qlen - 7, "grpchat", 7) != 0)
		return -EBADMSG;
	start = skip_tag(buf, len, i, &empty);
	if (empty) {
		m->inner = buf + start;
		m->inner_len = 0;
		return 0;
	}
	for (i = start;; ) {
		i = next_tag(buf, len, i);
		if (i + 1 >= len)
			return -EBADMSG;
		if (buf[i + 1] == '/') {
			if (depth-- > 0) {
				i = skip_tag(buf, len, i, &empty);
				continue;
			}
			/* Well-formedness says it is ours: check anyway. */
			e = i + 2;
			if (len - e < qlen || memcmp(buf + e, buf + name, qlen) != 0)
				return -EBADMSG;
			for (e += qlen; e < len && is_space(buf[e]); e++)
				;
			if (e >= len || buf[e] != '>')
				return -EBADMSG;
			m->inner = buf + start;
			m->inner_len = i - start;
			return 0;
		}
		i = skip_tag(buf, len, i, &empty);
		if (!empty)
			depth++;
	}
}

/* ---- parsing ---- */

/* Writes the reason as one printable line: libxml2 messages end in, and
 * sometimes contain, newlines, and may quote bytes of the input. */
static __attribute__((format(printf, 4, 5))) int
fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	size_t i, n;

	if (err == NULL || errlen == 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (i = 0; err[i] != '\0'; i++)
		if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f)
			err[i] = ' ';
	for (n = i; n > 0 && err[n - 1] == ' '; n--)
		err[n - 1] = '\0';
	return rc;
}

static void
quiet(void *ctx, xmlErrorPtr e)
{
}

static void
quiet_generic(void *ctx, const char *msg, ...)
{
}

/* Element depth (root = 1) over max_depth is -E2BIG; an attribute value
 * that is not plain text is -EBADMSG (see attr_value). Iterative: the depth
 * is bounded by libxml2, but the stack of an lcore is not ours to spend. */
static int
check_tree(xmlNodePtr root, unsigned max_depth)
{
	xmlNodePtr n = root;
	unsigned depth = 1;
	xmlAttrPtr a;

	for (;;) {
		if (n->type == XML_ELEMENT_NODE) {
			if (depth > max_depth)
				return -E2BIG;
			for (a = n->properties; a != NULL; a = a->next)
				if (attr_value(a) == NULL)
					return -EBADMSG;
			/* Only elements are entered: an entity reference's
			 * children belong to its declaration, not the tree. */
			if (n->children != NULL) {
				n = n->children;
				depth++;
				continue;
			}
		}
		while (n != root && n->next == NULL) {
			n = n->parent;
			depth--;
		}
		if (n == root)
			return 0;
		n = n->next;
	}
}

static int
copy_id(char *dst, size_t cap, const char *src, const char *what, char *err, size_t errlen)
{
	size_t n = strlen(src);

	if (n >= cap)
		return fail(err, errlen, -EBADMSG, "%s of %zu bytes exceeds %zu", what, n, cap - 1);
	memcpy(dst, src, n + 1);
	return 0;
}

static int
decode_cmd(struct xccos_msg *m, xmlNodePtr cmd, char *err, size_t errlen)
{
	const char *id = xccos_attr(cmd, "id"), *seqid = xccos_attr(cmd, "seqid");
	int rc;

	if (id == NULL)
		return fail(err, errlen, -EBADMSG, "cmd without id");
	if (strncmp(id, "cmd:", 4) == 0)
		id += 4;
	rc = copy_id(m->name, sizeof(m->name), id, "cmd id", err, errlen);
	if (rc == 0)
		rc = copy_id(m->seqid, sizeof(m->seqid), seqid != NULL ? seqid : "1", "seqid",
			     err, errlen);
	if (rc < 0)
		return rc;
	m->kind = XCCOS_CMD;
	m->data = xccos_child(cmd, "data");
	return 0;
}

static bool
is_known_attr(xmlAttrPtr a)
{
	static const char *const known[] = { "id", "seqid", "chanUri", "author", "ts" };
	size_t k;

	if (a->ns != NULL)
		return false;
	for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		if (xmlStrEqual(a->name, (const xmlChar *)known[k]))
			return true;
	return false;
}

/* The attributes we do not set ourselves, as the relay writes them back on
 * its own grpchat. First every prefixed namespace in scope at grpchat
 * (declared on it or on an ancestor: xccos, cmd, data), since the relayed
 * element loses its ancestors and the inner bytes and namespaced
 * attributes may use their prefixes; a receiver's parser would otherwise
 * refuse the message (unbound prefix). Default namespaces are not carried:
 * the relay's envelope declares xccos's, and one declared inside the inner
 * content travels with it. Then the attributes; a namespaced one keeps its
 * prefix. */
static char *
extra_attrs(xmlNodePtr g)
{
	xmlNsPtr *ns = xmlGetNsList(g->doc, g);
	struct xbuf b;
	xmlAttrPtr a;

	xbuf_init(&b, 0);
	for (size_t i = 0; ns != NULL && ns[i] != NULL; i++) {
		if (ns[i]->prefix == NULL || xmlStrEqual(ns[i]->prefix, (const xmlChar *)"xml"))
			continue;
		xbuf_str(&b, " xmlns:");
		xbuf_str(&b, (const char *)ns[i]->prefix);
		xbuf_raw(&b, "=\"", 2);
		xbuf_esc_attr(&b, (const char *)ns[i]->href, strlen((const char *)ns[i]->href));
		xbuf_raw(&b, "\"", 1);
	}
	xmlFree(ns);
	for (a = g->properties; a != NULL; a = a->next) {
		const char *v = attr_value(a);	/* not NULL: check_tree() */

		if (is_known_attr(a))
			continue;
		xbuf_raw(&b, " ", 1);
		if (a->ns != NULL && a->ns->prefix != NULL) {
			xbuf_str(&b, (const char *)a->ns->prefix);
			xbuf_raw(&b, ":", 1);
		}
		xbuf_str(&b, (const char *)a->name);
		xbuf_raw(&b, "=\"", 2);
		xbuf_esc_attr(&b, v, strlen(v));
		xbuf_raw(&b, "\"", 1);
	}
	return xbuf_take(&b, NULL);
}

static int
decode_grpchat(struct xccos_msg *m, xmlNodePtr g, const char *buf, size_t len,
	       char *err, size_t errlen)
{
	const char *seqid = xccos_attr(g, "seqid");
	xmlNodePtr chat;
	int rc;

	rc = copy_id(m->seqid, sizeof(m->seqid), seqid != NULL ? seqid : "1", "seqid", err, errlen);
	if (rc < 0)
		return rc;
	m->kind = XCCOS_GRPCHAT;
	strcpy(m->name, "grpchat");
	m->chan_uri = xccos_attr(g, "chanUri");
	m->author = xccos_attr(g, "author");
	m->ts = xccos_attr(g, "ts");
	chat = xccos_child(g, "chat");
	/* Both allocate with xmlMalloc; xccos_msg_free uses xmlFree. */
	m->text = (char *)(chat != NULL ? xmlNodeGetContent(chat) : xmlStrdup((const xmlChar *)""));
	if (m->text == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	m->text_len = strlen(m->text);
	m->extra_attrs = extra_attrs(g);
	if (m->extra_attrs == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	if (inner_slice(buf, len, m) < 0)
		return fail(err, errlen, -EBADMSG, "cannot locate the grpchat content");
	return 0;
}

static int
decode(struct xccos_msg *m, const char *buf, size_t len, unsigned max_depth,
       char *err, size_t errlen)
{
	xmlDocPtr doc = m->doc_;
	xmlNodePtr root = xmlDocGetRootElement(doc), child;
	const char *ver, *envid;
	int rc;

	if (doc->intSubset != NULL || doc->extSubset != NULL)
		return fail(err, errlen, -EPERM, "DTD refused");
	if (root == NULL)
		return fail(err, errlen, -EBADMSG, "no root element");
	rc = check_tree(root, max_depth);
	if (rc == -E2BIG)
		return fail(err, errlen, rc, "elements nested deeper than %u", max_depth);
	if (rc < 0)
		return fail(err, errlen, rc, "attribute value with entity references");
	if (!xmlStrEqual(root->name, (const xmlChar *)"xccos"))
		return fail(err, errlen, -EBADMSG, "root element <%.40s>, not <xccos>",
			    (const char *)root->name);
	if (root->ns != NULL && !xmlStrEqual(root->ns->href, (const xmlChar *)XCCOS_NS))
		return fail(err, errlen, -EBADMSG, "root namespace \"%.60s\", not " XCCOS_NS,
			    (const char *)root->ns->href);
	ver = xccos_attr(root, "ver");
	if (ver != NULL && strcmp(ver, "1") != 0)
		return fail(err, errlen, -EBADMSG, "unsupported ver=\"%.20s\"", ver);
	envid = xccos_attr(root, "envid");
	rc = copy_id(m->envid, sizeof(m->envid), envid != NULL ? envid : "", "envid", err, errlen);
	if (rc < 0)
		return rc;

	child = xccos_child(root, NULL);
	if (child == NULL)
		return fail(err, errlen, -EBADMSG, "empty envelope");
	if (is_elem(child, "cmd"))
		return decode_cmd(m, child, err, errlen);
	if (is_elem(child, "grpchat"))
		return decode_grpchat(m, child, buf, len, err, errlen);
	if (is_elem(child, "rpl") || is_elem(child, "ntc"))
		return fail(err, errlen, -ENOTSUP, "<%s> is not accepted from clients",
			    (const char *)child->name);
	return fail(err, errlen, -EBADMSG, "unexpected <%.40s> in envelope",
		    (const char *)child->name);
}

static int
parse_doc(const char *buf, size_t len, unsigned max_depth, xmlDocPtr *doc,
	  char *err, size_t errlen)
{
	xmlParserCtxtPtr ctxt;
	const xmlError *e;
	int rc = 0;

	ctxt = xmlNewParserCtxt();
	if (ctxt == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	*doc = xmlCtxtReadMemory(ctxt, buf, (int)len, NULL, "UTF-8", PARSE_OPTIONS);
	e = xmlCtxtGetLastError(ctxt);
	if (*doc != NULL && ctxt->nsWellFormed)
		goto out_free_ctxt;
	if (*doc != NULL) {
		/* An undeclared prefix is only a namespace error to libxml2,
		 * but such a document is no XCCOS and would be relayed broken. */
		xmlFreeDoc(*doc);
		*doc = NULL;
		rc = fail(err, errlen, -EBADMSG, "namespace error: line %d: %s",
			  e != NULL ? e->line : 0, e != NULL && e->message != NULL ? e->message : "");
		goto out_free_ctxt;
	}
	/* The element stack at the failure point tells a nesting overflow,
	 * ours or libxml2's own (xmlParserMaxDepth, 256), from a syntax error. */
	if (ctxt->nameNr > 0 && ((unsigned)ctxt->nameNr > max_depth ||
				 (unsigned)ctxt->nameNr > xmlParserMaxDepth))
		rc = fail(err, errlen, -E2BIG, "elements nested deeper than %u", max_depth);
	else if (e != NULL && e->code == XML_ERR_NO_MEMORY)
		rc = fail(err, errlen, -ENOMEM, "out of memory");
	else if (e != NULL && e->message != NULL)
		rc = fail(err, errlen, -EBADMSG, "not well-formed: line %d: %s", e->line,
			  e->message);
	else
		rc = fail(err, errlen, -EBADMSG, "not well-formed");

out_free_ctxt:
	xmlFreeParserCtxt(ctxt);
	return rc;
}

void
xccos_global_init(void)
{
	xmlInitParser();
}

int
xccos_parse(const char *buf, size_t len, const struct xccos_limits *lim,
	    struct xccos_msg *out, char *err, size_t errlen)
{
	size_t max_doc = lim != NULL && lim->max_doc != 0 ? lim->max_doc : DEFAULT_MAX_DOC;
	unsigned max_depth = lim != NULL && lim->max_depth != 0 ? lim->max_depth : DEFAULT_MAX_DEPTH;
	xmlStructuredErrorFunc prev_serror;
	xmlGenericErrorFunc prev_gerror;
	void *prev_sctx, *prev_gctx;
	xmlDocPtr doc = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (max_doc > INT_MAX)
		max_doc = INT_MAX;	/* libxml2 takes an int */
	if (len > max_doc)
		return fail(err, errlen, -E2BIG, "document of %zu bytes exceeds %zu", len, max_doc);
	if (buf == NULL || len == 0)
		return fail(err, errlen, -EBADMSG, "empty document");
	if (has_dtd(buf, len))
		return fail(err, errlen, -EPERM, "DOCTYPE or ENTITY declaration refused");

	/* Both handlers are per thread in threaded libxml2 builds (as
	 * Debian's is), so this does not disturb other threads. The generic
	 * one is a second net: libxml2 falls back to it (and so to stderr)
	 * wherever no structured handler is consulted. */
	prev_serror = xmlStructuredError;
	prev_sctx = xmlStructuredErrorContext;
	prev_gerror = xmlGenericError;
	prev_gctx = xmlGenericErrorContext;
	xmlSetStructuredErrorFunc(NULL, quiet);
	xmlSetGenericErrorFunc(NULL, quiet_generic);

	rc = parse_doc(buf, len, max_depth, &doc, err, errlen);
	if (rc == 0) {
		out->doc_ = doc;
		rc = decode(out, buf, len, max_depth, err, errlen);
		if (rc < 0)
			xccos_msg_free(out);
	}

	xmlSetGenericErrorFunc(prev_gctx, prev_gerror);
	xmlSetStructuredErrorFunc(prev_sctx, prev_serror);
	return rc;
}

void
xccos_msg_free(struct xccos_msg *m)
{
	if (m == NULL)
		return;
	if (m->text != NULL)
		xmlFree(m->text);
	free(m->extra_attrs);
	if (m->doc_ != NULL)
		xmlFreeDoc(m->doc_);
	memset(m, 0, sizeof(*m));
}
