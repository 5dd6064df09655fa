/* Building SIP messages into a caller-provided buffer.
 *
 * A struct sipout writes into a fixed buffer and remembers overflow instead
 * of failing at every call: build the whole message, then check
 * sipout_finish() once. No allocation; any thread. */
#ifndef PARLEY_SIPOUT_H
#define PARLEY_SIPOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/sip/sipmsg.h"

struct sipout {
	char *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

void sipout_init(struct sipout *o, char *buf, size_t cap);
void sipout_raw(struct sipout *o, const void *p, size_t n);
void sipout_str(struct sipout *o, struct sip_str s);
void sipout_cstr(struct sipout *o, const char *s);
void sipout_printf(struct sipout *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "Name: value\r\n" */
void sipout_header(struct sipout *o, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Starts a response to request <req>: status line, every Via in order, From,
 * To (with ";tag=<to_tag>" appended when <req> has no To tag and <to_tag> is
 * non-NULL), Call-ID, CSeq. The caller then adds its own headers and calls
 * sipout_end() with the body. */
void sipout_response_start(struct sipout *o, const struct sipmsg *req, int status,
			   const char *reason, const char *to_tag);

/* Starts a request line "METHOD uri SIP/2.0\r\n"; the caller adds headers. */
void sipout_request_start(struct sipout *o, const char *method, const char *ruri);

/* Writes "Content-Type" (when <ctype> is non-NULL and <blen> > 0),
 * "Content-Length", the blank line and the body. */
void sipout_end(struct sipout *o, const char *ctype, const void *body, size_t blen);

/* Length of the finished message, or -ENOSPC when anything overflowed. */
ssize_t sipout_finish(const struct sipout *o);

/* Standard reason phrase for <status> ("OK", "Bad Request", ...); "Unknown"
 * for codes not in RFC 3261 and its common extensions. */
const char *sip_reason(int status);

#endif
