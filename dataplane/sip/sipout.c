/* Building SIP messages into a caller-provided buffer.
 *
 * Every writer is a no-op once the buffer has overflowed; sipout_finish()
 * reports it. The buffer is not NUL-terminated. No allocation; any thread. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/sip/sipout.h"

void
sipout_init(struct sipout *o, char *buf, size_t cap)
{
	o->buf = buf;
	o->cap = cap;
	o->len = 0;
	o->overflow = false;
}

void
sipout_raw(struct sipout *o, const void *p, size_t n)
{
	if (o->overflow)
		return;
	if (n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	if (n > 0)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
}

void
sipout_str(struct sipout *o, struct sip_str s)
{
	sipout_raw(o, s.p, s.len);
}

void
sipout_cstr(struct sipout *o, const char *s)
{
	sipout_raw(o, s, strlen(s));
}

/* vsnprintf() needs room for its NUL, so a text that would fill the buffer
 * to the last byte counts as overflow; that byte stays usable by
 * sipout_raw(). */
static void __attribute__((format(printf, 2, 0)))
out_vprintf(struct sipout *o, const char *fmt, va_list ap)
{
	size_t avail;
	int n;

	if (o->overflow)
		return;
	avail = o->cap - o->len;
	n = vsnprintf(o->buf + o->len, avail, fmt, ap);
	if (n < 0 || (size_t)n >= avail) {
		o->overflow = true;
		return;
	}
	o->len += (size_t)n;
}

void
sipout_printf(struct sipout *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_vprintf(o, fmt, ap);
	va_end(ap);
}

void
sipout_header(struct sipout *o, const char *name, const char *fmt, ...)
{
	va_list ap;

	sipout_cstr(o, name);
	sipout_raw(o, ": ", 2);
	va_start(ap, fmt);
	out_vprintf(o, fmt, ap);
	va_end(ap);
	sipout_raw(o, "\r\n", 2);
}

static void
copy_header(struct sipout *o, const char *name, struct sip_str value)
{
	sipout_cstr(o, name);
	sipout_raw(o, ": ", 2);
	sipout_str(o, value);
	sipout_raw(o, "\r\n", 2);
}

void
sipout_response_start(struct sipout *o, const struct sipmsg *req, int status,
		      const char *reason, const char *to_tag)
{
	const struct sip_hdr *h;

	sipout_printf(o, "SIP/2.0 %03d %s\r\n", status, reason != NULL ? reason : sip_reason(status));
	/* each Via line as received, in order: a line may hold several values */
	for (h = sipmsg_find(req, SIP_H_VIA); h != NULL; h = sipmsg_find_next(req, h))
		copy_header(o, "Via", h->value);
	if ((h = sipmsg_find(req, SIP_H_FROM)) != NULL)
		copy_header(o, "From", h->value);
	if ((h = sipmsg_find(req, SIP_H_TO)) != NULL) {
		sipout_cstr(o, "To: ");
		sipout_str(o, h->value);
		if (req->to_tag.len == 0 && to_tag != NULL) {
			sipout_cstr(o, ";tag=");
			sipout_cstr(o, to_tag);
		}
		sipout_raw(o, "\r\n", 2);
	}
	if ((h = sipmsg_find(req, SIP_H_CALL_ID)) != NULL)
		copy_header(o, "Call-ID", h->value);
	if (req->cseq_method_name.len > 0)
		sipout_printf(o, "CSeq: %u %.*s\r\n", req->cseq, (int)req->cseq_method_name.len,
			      req->cseq_method_name.p);
	else if ((h = sipmsg_find(req, SIP_H_CSEQ)) != NULL)
		copy_header(o, "CSeq", h->value);
}

void
sipout_request_start(struct sipout *o, const char *method, const char *ruri)
{
	sipout_printf(o, "%s %s SIP/2.0\r\n", method, ruri);
}

void
sipout_end(struct sipout *o, const char *ctype, const void *body, size_t blen)
{
	if (ctype != NULL && blen > 0)
		sipout_header(o, "Content-Type", "%s", ctype);
	sipout_printf(o, "Content-Length: %zu\r\n\r\n", blen);
	sipout_raw(o, body, blen);
}

ssize_t
sipout_finish(const struct sipout *o)
{
	return o->overflow ? -ENOSPC : (ssize_t)o->len;
}

static const struct {
	int code;
	const char *text;
} reasons[] = {
	{ 100, "Trying" },
	{ 180, "Ringing" },
	{ 181, "Call Is Being Forwarded" },
	{ 182, "Queued" },
	{ 183, "Session Progress" },
	{ 199, "Early Dialog Terminated" },
	{ 200, "OK" },
	{ 202, "Accepted" },
	{ 204, "No Notification" },
	{ 300, "Multiple Choices" },
	{ 301, "Moved Permanently" },
	{ 302, "Moved Temporarily" },
	{ 305, "Use Proxy" },
	{ 380, "Alternative Service" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 402, "Payment Required" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" },
	{ 407, "Proxy Authentication Required" },
	{ 408, "Request Timeout" },
	{ 410, "Gone" },
	{ 412, "Conditional Request Failed" },
	{ 413, "Request Entity Too Large" },
	{ 414, "Request-URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 416, "Unsupported URI Scheme" },
	{ 417, "Unknown Resource-Priority" },
	{ 420, "Bad Extension" },
	{ 421, "Extension Required" },
	{ 422, "Session Interval Too Small" },
	{ 423, "Interval Too Brief" },
	{ 428, "Use Identity Header" },
	{ 429, "Provide Referrer Identity" },
	{ 433, "Anonymity Disallowed" },
	{ 436, "Bad Identity-Info" },
	{ 437, "Unsupported Certificate" },
	{ 438, "Invalid Identity Header" },
	{ 439, "First Hop Lacks Outbound Support" },
	{ 440, "Max-Breadth Exceeded" },
	{ 469, "Bad Info Package" },
	{ 470, "Consent Needed" },
	{ 480, "Temporarily Unavailable" },
	{ 481, "Call/Transaction Does Not Exist" },
	{ 482, "Loop Detected" },
	{ 483, "Too Many Hops" },
	{ 484, "Address Incomplete" },
	{ 485, "Ambiguous" },
	{ 486, "Busy Here" },
	{ 487, "Request Terminated" },
	{ 488, "Not Acceptable Here" },
	{ 489, "Bad Event" },
	{ 491, "Request Pending" },
	{ 493, "Undecipherable" },
	{ 494, "Security Agreement Required" },
	{ 500, "Server Internal Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Server Time-out" },
	{ 505, "Version Not Supported" },
	{ 513, "Message Too Large" },
	{ 580, "Precondition Failure" },
	{ 600, "Busy Everywhere" },
	{ 603, "Decline" },
	{ 604, "Does Not Exist Anywhere" },
	{ 606, "Not Acceptable" },
	{ 607, "Unwanted" },
};

const char *
sip_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == status)
			return reasons[i].text;
	return "Unknown";
}
