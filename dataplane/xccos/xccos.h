/* XCCOS: the XML of Group Chat commands, replies and notices
 * (shared/protocol/xccos.md §b).
 *
 * Parsing (xccos_parse) uses libxml2's DOM, hardened for hostile input: no
 * network, no DTD (a document with <!DOCTYPE or <!ENTITY is refused before
 * libxml2 sees it, so nothing is expanded and no file is read), a size and a
 * depth limit, and parse errors go to the caller's buffer, never to stderr.
 * The root must be <xccos> (namespace urn:parlano:xml:ns:xccos, or none) with
 * ver="1", holding one <cmd> or one <grpchat>.
 *
 * Building (struct xbuf and the xccos_*_begin/end helpers) writes the
 * server's envelopes as text: escaping is explicit, and one serialization
 * serves every recipient of a post.
 *
 * Threads: any; a parsed message belongs to the thread that parsed it.
 * xccos_global_init() once at boot, before any thread parses. */
#ifndef PARLEY_XCCOS_H
#define PARLEY_XCCOS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#define XCCOS_NS		"urn:parlano:xml:ns:xccos"
#define XCCOS_NAME_MAX		48
#define XCCOS_ID_MAX		32	/* seqid / envid as sent, digits */

enum xccos_kind {
	XCCOS_CMD = 1,		/* <cmd id="cmd:NAME" seqid=".."><data>..</data></cmd> */
	XCCOS_GRPCHAT,		/* <grpchat chanUri author ts ...>inner</grpchat> */
};

struct xccos_limits {
	size_t		max_doc;	/* bytes of the whole document */
	unsigned	max_depth;	/* element nesting */
};

struct xccos_msg {
	enum xccos_kind	kind;
	/* cmd: the command name without "cmd:" ("join"); grpchat: "grpchat".
	 * A cmd whose id lacks the "cmd:" prefix keeps the id as sent. */
	char		name[XCCOS_NAME_MAX];
	char		seqid[XCCOS_ID_MAX];	/* as sent; "1" when absent */
	char		envid[XCCOS_ID_MAX];	/* envelope id as sent; "" when absent */
	xmlNodePtr	data;			/* cmd: its <data> element, or NULL */

	/* grpchat only. Strings are NUL-terminated and owned by the message;
	 * NULL when the attribute is absent. */
	const char	*chan_uri;
	const char	*author;
	const char	*ts;
	/* The bytes between the grpchat start tag and its end tag, verbatim
	 * from the input buffer (entity references and all); relayed and
	 * stored as they came. Points into the buffer given to xccos_parse. */
	const char	*inner;
	size_t		inner_len;
	/* Plain text of the first <chat> child (entities decoded), for the
	 * size limit and compliance content; "" when there is no <chat>. */
	char		*text;
	size_t		text_len;
	/* Attributes of grpchat other than id, seqid, chanUri, author and ts,
	 * serialized as ' name="escaped value"' ... (relayed verbatim in
	 * meaning); "" when none. */
	char		*extra_attrs;

	xmlDocPtr	doc_;			/* private */
};

/* Once at boot: libxml2's global initialisation. */
void xccos_global_init(void);

/* Parses <len> bytes at <buf> (not necessarily NUL-terminated; must stay
 * untouched while <out> is in use because inner points into it).
 *   0            *out filled; release with xccos_msg_free
 *   -E2BIG       over lim->max_doc or lim->max_depth
 *   -EPERM       a DTD or entity declaration: refused unparsed
 *   -EBADMSG     not well-formed, wrong root, ver != 1, no cmd/grpchat child
 *   -ENOTSUP     a well-formed envelope holding something else (rpl, ntc)
 *   -ENOMEM
 * On error a one-line reason goes to <err> (may be NULL). */
int xccos_parse(const char *buf, size_t len, const struct xccos_limits *lim,
		struct xccos_msg *out, char *err, size_t errlen);
void xccos_msg_free(struct xccos_msg *m);	/* accepts a zeroed or freed msg */

/* DOM helpers; elements are matched by local name, in any namespace. */
xmlNodePtr xccos_child(xmlNodePtr parent, const char *name);	/* first element child */
xmlNodePtr xccos_next(xmlNodePtr node, const char *name);	/* next element sibling */
/* The attribute's value (pointer into the document, valid while the message
 * lives), or NULL when absent. Attributes are matched without namespace. */
const char *xccos_attr(xmlNodePtr n, const char *name);

/* A growable output buffer that remembers failure: build, then check
 * xbuf_ok() once. <max> bounds its size (0: 16 MiB). */
struct xbuf {
	char	*p;
	size_t	len, cap, max;
	bool	failed;		/* out of memory or over max */
};

void xbuf_init(struct xbuf *b, size_t max);
void xbuf_free(struct xbuf *b);
void xbuf_reset(struct xbuf *b);		/* len = 0, keeps memory and failed cleared */
bool xbuf_ok(const struct xbuf *b);
void xbuf_raw(struct xbuf *b, const void *p, size_t n);
void xbuf_str(struct xbuf *b, const char *s);
void xbuf_printf(struct xbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* XML-escapes <n> bytes: & < > " ' and CR become references; control
 * characters other than TAB, CR and LF, which XML 1.0 cannot carry even as
 * references, become U+FFFD, as do invalid UTF-8, U+FFFE and U+FFFF.
 * Safe for attribute values and text (xbuf_attr also writes TAB and LF as
 * references, so that attribute-value normalisation keeps them). */
void xbuf_esc(struct xbuf *b, const char *s, size_t n);
/* As xbuf_esc, for a part of an attribute value (TAB and LF as references). */
void xbuf_esc_attr(struct xbuf *b, const char *s, size_t n);
/* ' name="escaped value"' */
void xbuf_attr(struct xbuf *b, const char *name, const char *value);
/* Detaches the buffer (NUL-terminated, caller frees); the xbuf is reset to
 * empty. NULL when failed. */
char *xbuf_take(struct xbuf *b, size_t *len);

/* Envelopes, as §b.1-b.4 show them:
 *   <xccos ver="1" envid="ENVID" xmlns="urn:parlano:xml:ns:xccos"> ... </xccos>
 *   <rpl id="rpl:NAME" seqid="SEQID"><commandid seqid="SEQID" envid="CMDENV"/>
 *     <resp code="CODE">TEXT</resp><data> ... </data></rpl>
 *   <ntc id="ntc:NAME" seqid="1"><data> ... </data></ntc>
 * xccos_rpl_begin leaves the <data> element open; xccos_rpl_end closes it
 * and the rpl. A reply with nothing in data may be closed at once. */
void xccos_begin(struct xbuf *b, uint64_t envid);
void xccos_end(struct xbuf *b);
void xccos_rpl_begin(struct xbuf *b, const char *name, const char *seqid, const char *cmd_envid,
		     int code);
void xccos_rpl_end(struct xbuf *b);
void xccos_ntc_begin(struct xbuf *b, const char *name);
void xccos_ntc_end(struct xbuf *b);

/* §b.8: 200 "SUCCESS_OK", 400 "ERR_BAD_REQUEST", 403 "ERR_ACCESS_DENIED",
 * 404 "ERR_NOT_FOUND", 409 "ERR_ALREADY_EXISTS", 413 "ERR_TOO_LARGE",
 * 500 "OPERATION_FAILED", 501 "ERR_NOT_IMPLEMENTED", 503
 * "ERR_SERVICE_UNAVAILABLE"; others "OPERATION_FAILED". */
const char *xccos_code_text(int code);

/* Timestamps (§b.9). Format: Unix time in 100 ns units ->
 * "2010-09-14T14:26:17.6206356Z" (28 chars + NUL). Parse: ISO 8601 UTC with
 * or without fractional seconds (up to 7 digits kept) and with or without
 * Z; 0 and *out_100ns, or -EINVAL. */
#define XCCOS_TS_LEN	29
void xccos_ts_format(uint64_t unix_100ns, char out[XCCOS_TS_LEN]);
int xccos_ts_parse(const char *s, uint64_t *out_100ns);

#endif
