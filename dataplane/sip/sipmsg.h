/* SIP message framing and parsing (RFC 3261 §7, §20, §25), in place.
 *
 * The parser never copies: every string it returns is a view into the
 * caller's buffer, which must stay alive and unmodified (other than by the
 * parser itself) as long as the struct sipmsg is used. Folded header lines are
 * unfolded in place (CRLF + WSP becomes spaces), which is why the buffer is
 * not const.
 *
 * Stream use (one connection's decrypted bytes):
 *	skip = sipmsg_skip_keepalive(buf, len);       leading CRLFs (RFC 5626)
 *	n = sipmsg_frame(buf + skip, len - skip, &lim);
 *	n == 0: need more bytes; n < 0: close the connection (framing lost);
 *	n > 0: sipmsg_parse(&m, buf + skip, n, &lim), then consume skip + n.
 *
 * Pure functions over buffers: no allocation, no global state, any thread. */
#ifndef PARLEY_SIPMSG_H
#define PARLEY_SIPMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A view into a buffer; not NUL-terminated. */
struct sip_str {
	const char *p;
	uint32_t len;
};

#define SIP_STR_NULL ((struct sip_str){ NULL, 0 })
#define SIP_STR_LIT(s) ((struct sip_str){ (s), sizeof(s) - 1 })

enum sip_method {
	SIP_M_UNKNOWN = 0,	/* a well-formed token we do not know (method_name has it) */
	SIP_M_INVITE,
	SIP_M_ACK,
	SIP_M_BYE,
	SIP_M_CANCEL,
	SIP_M_OPTIONS,
	SIP_M_REGISTER,
	SIP_M_INFO,
	SIP_M_UPDATE,
	SIP_M_SUBSCRIBE,
	SIP_M_NOTIFY,
	SIP_M_MESSAGE,
	SIP_M_PRACK,
	SIP_M_REFER,
	SIP_M_PUBLISH,
	SIP_M__COUNT,
};

/* Headers the stack reads. Compact forms map here too (v f t i l c m k s e). */
enum sip_hdr_id {
	SIP_H_OTHER = 0,
	SIP_H_VIA,
	SIP_H_FROM,
	SIP_H_TO,
	SIP_H_CALL_ID,
	SIP_H_CSEQ,
	SIP_H_CONTACT,
	SIP_H_CONTENT_LENGTH,
	SIP_H_CONTENT_TYPE,
	SIP_H_CONTENT_ENCODING,
	SIP_H_MAX_FORWARDS,
	SIP_H_EXPIRES,
	SIP_H_AUTHORIZATION,
	SIP_H_PROXY_AUTHORIZATION,
	SIP_H_SUPPORTED,
	SIP_H_REQUIRE,
	SIP_H_PROXY_REQUIRE,
	SIP_H_SESSION_EXPIRES,	/* compact form x */
	SIP_H_MIN_SE,
	SIP_H_EVENT,		/* compact form o */
	SIP_H_USER_AGENT,
	SIP_H_ROUTE,
	SIP_H_RECORD_ROUTE,
	SIP_H_ACCEPT,
	SIP_H_ALLOW,
	SIP_H_SUBJECT,
	SIP_H__COUNT,
};

/* Hard upper bound of headers a struct sipmsg can hold; the configured limit
 * (struct sipmsg_limits.max_headers) may be lower. */
#define SIPMSG_HDR_CAP 128

struct sip_hdr {
	enum sip_hdr_id id;
	struct sip_str name;	/* as received */
	struct sip_str value;	/* leading/trailing whitespace trimmed, unfolded */
};

struct sipmsg_limits {
	uint32_t max_msg;	/* whole message, headers + body, bytes */
	uint16_t max_headers;	/* header lines, <= SIPMSG_HDR_CAP */
};

struct sipmsg {
	bool is_request;
	/* request */
	enum sip_method method;
	struct sip_str method_name;
	struct sip_str ruri;
	/* response */
	int status;
	struct sip_str reason;

	uint16_t nhdr;
	struct sip_hdr hdr[SIPMSG_HDR_CAP];
	int16_t first[SIP_H__COUNT];	/* index into hdr[] of the first header of each id, or -1 */

	/* Mandatory headers, already taken apart. */
	struct sip_str call_id;
	uint32_t cseq;
	enum sip_method cseq_method;
	struct sip_str cseq_method_name;
	struct sip_str from_uri;	/* addr-spec inside <...> or the bare URI */
	struct sip_str from_tag;	/* empty when absent */
	struct sip_str to_uri;
	struct sip_str to_tag;
	struct sip_str via_branch;	/* top Via's branch, empty when absent */
	struct sip_str via_transport;	/* top Via's transport token ("TLS", "tls", ...) */
	int32_t content_length;		/* -1 when the header is absent */
	int32_t max_forwards;		/* -1 when absent */
	int32_t expires;		/* Expires header, -1 when absent */

	struct sip_str body;		/* exactly content_length bytes (or 0) */
	uint32_t len;			/* bytes of the whole message */
};

/* Number of leading CR/LF bytes in <buf> (keep-alives between messages). */
size_t sipmsg_skip_keepalive(const char *buf, size_t len);

/* Finds the end of the message that starts at <buf>. Returns its length (> 0)
 * when the header section and the whole body (per Content-Length) are in
 * <buf>; 0 when more bytes are needed; -E2BIG when the header section or the
 * announced message exceeds <lim>->max_msg; -EBADMSG when Content-Length is
 * missing a value, negative, or not a number (framing cannot be recovered). A
 * message without Content-Length has an empty body (stream transports require
 * the header; we accept its absence as length 0). */
ssize_t sipmsg_frame(const char *buf, size_t len, const struct sipmsg_limits *lim);

/* Parses one framed message of exactly <len> bytes in place.
 * Returns 0, or:
 *  -EBADMSG  malformed start line or header syntax, or a mandatory header
 *            (Via, From, To, Call-ID, CSeq; Max-Forwards is optional) missing
 *            or unparsable, or CSeq method != request method;
 *  -E2BIG    more than <lim>->max_headers headers;
 *  -EPROTONOSUPPORT  SIP version other than 2.0.
 * On -EBADMSG the fields that did parse are filled in (is_request, method,
 * Via, Call-ID, CSeq, From, To where present), so that a caller can decide
 * whether a 400 response can be built (see sipmsg_can_reply). */
int sipmsg_parse(struct sipmsg *m, char *buf, size_t len, const struct sipmsg_limits *lim);

/* True when <m> (possibly partially parsed) holds what a response needs:
 * a request with at least one Via, From, To, Call-ID and CSeq. */
bool sipmsg_can_reply(const struct sipmsg *m);

/* First header with <id>, or NULL. */
const struct sip_hdr *sipmsg_find(const struct sipmsg *m, enum sip_hdr_id id);
/* Next header with the same id as hdr[<prev>], or NULL. */
const struct sip_hdr *sipmsg_find_next(const struct sipmsg *m, const struct sip_hdr *prev);
/* First header whose name matches <name> case-insensitively (full form), or NULL. */
const struct sip_hdr *sipmsg_find_name(const struct sipmsg *m, const char *name);

/* Splits a comma-separated header value, honouring quoted strings and <...>.
 * Call with *<rest> = the value; each call stores the next trimmed element in
 * <item> and returns true, false when none is left. */
bool sip_list_next(struct sip_str *rest, struct sip_str *item);

/* name-addr / addr-spec with parameters ("Bob" <sip:b@x>;tag=1 or sip:b@x;tag=1). */
struct sip_nameaddr {
	struct sip_str display;	/* without quotes; empty when absent */
	struct sip_str uri;	/* without < > */
	struct sip_str params;	/* after the URI (or '>'), starting at the first ';', or empty */
};
/* 0 or -EBADMSG. */
int sip_nameaddr_parse(struct sip_str s, struct sip_nameaddr *na);

/* Looks up <name> (case-insensitive) in a ";a=1;b;c=\"x\"" parameter list.
 * Returns true when present; <val> gets the value (quotes stripped), empty
 * for a flag parameter. */
bool sip_param_get(struct sip_str params, const char *name, struct sip_str *val);

struct sip_uri {
	struct sip_str scheme;	/* "sip", "sips", "tel", ... */
	struct sip_str user;	/* empty when absent */
	struct sip_str password;
	struct sip_str host;	/* IPv6 references keep their brackets */
	int32_t port;		/* -1 when absent */
	struct sip_str params;	/* ";..." or empty */
	struct sip_str headers;	/* "?..." without the '?', or empty */
};
/* 0 or -EBADMSG. Accepts any scheme "token:" but parses user@host only for
 * sip and sips; for others everything after "scheme:" is in <user>. */
int sip_uri_parse(struct sip_str s, struct sip_uri *u);

/* The address of record of a sip/sips URI: "user@host", lower-cased host,
 * without scheme, port or parameters, written to <out> NUL-terminated.
 * Returns its length, or -ENOSPC / -EBADMSG. */
ssize_t sip_uri_aor(struct sip_str uri, char *out, size_t cap);

enum sip_method sip_method_from(struct sip_str name);
const char *sip_method_name(enum sip_method m);

bool sip_str_eq(struct sip_str a, const char *s);	/* case-sensitive */
bool sip_str_ieq(struct sip_str a, const char *s);	/* ASCII case-insensitive */
bool sip_str_ieq2(struct sip_str a, struct sip_str b);
/* Parses a decimal uint32 occupying all of <s> (after trimming). 0 or -EINVAL/-ERANGE. */
int sip_str_u32(struct sip_str s, uint32_t *out);
struct sip_str sip_str_trim(struct sip_str s);

#endif
