/* XML text output: a growable buffer that remembers failure, and escaping
 * for text and attribute values (see xccos.h: struct xbuf).
 *
 * Escaping (xbuf_esc): XML 1.0 has no way to carry most C0 controls, not
 * even as character references (&#x1; is a well-formedness error), so they
 * are replaced by U+FFFD, like invalid UTF-8 and the non-characters U+FFFE
 * and U+FFFF. CR is always written as &#13; because parsers turn a literal
 * CR into LF (SIPE sends CRLF line breaks); inside attribute values TAB and
 * LF are written as references too, because attribute-value normalisation
 * would turn them into spaces.
 *
 *
 * No global state; any thread. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/xccos/xccos.h"

#define XBUF_DEFAULT_MAX	((size_t)16 * 1024 * 1024)
#define FFFD			"\xef\xbf\xbd"

/* ---- output buffer ---- */

void
xbuf_init(struct xbuf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max != 0 ? max : XBUF_DEFAULT_MAX;
	b->failed = false;
}

void
xbuf_free(struct xbuf *b)
{
	if (b == NULL)
		return;
	free(b->p);
	xbuf_init(b, b->max);
}

void
xbuf_reset(struct xbuf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
	b->failed = false;
}

bool
xbuf_ok(const struct xbuf *b)
{
	return !b->failed;
}

/* Room for <n> more bytes and a NUL. Invariant: len <= max, and p[len] is
 * NUL whenever p is allocated. */
static bool
reserve(struct xbuf *b, size_t n)
{
	size_t need, cap, limit;
	char *p;

	if (b->failed)
		return false;
	if (n > b->max - b->len) {
		b->failed = true;
		return false;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return true;
	limit = b->max < SIZE_MAX ? b->max + 1 : SIZE_MAX;
	cap = b->cap != 0 ? b->cap : 256;
	while (cap < need && cap <= limit / 2)
		cap *= 2;
	if (cap < need || cap > limit)
		cap = cap < need ? need : limit;
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	if (b->p == NULL)
		p[0] = '\0';
	b->p = p;
	b->cap = cap;
	return true;
}

void
xbuf_raw(struct xbuf *b, const void *p, size_t n)
{
	if (n == 0 || !reserve(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
xbuf_str(struct xbuf *b, const char *s)
{
	xbuf_raw(b, s, strlen(s));
}

void
xbuf_printf(struct xbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t avail;
	int n;

	if (!reserve(b, 0))
		return;
	avail = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, avail, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->p[b->len] = '\0';
		b->failed = true;
		return;
	}
	if ((size_t)n >= avail) {
		/* Truncated: grow to the exact size and format again. */
		if (!reserve(b, (size_t)n)) {
			b->p[b->len] = '\0';
			return;
		}
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

char *
xbuf_take(struct xbuf *b, size_t *len)
{
	char *p;

	if (len != NULL)
		*len = 0;
	if (b->failed) {
		xbuf_free(b);
		return NULL;
	}
	if (b->p == NULL && !reserve(b, 0)) {
		xbuf_free(b);
		return NULL;
	}
	p = b->p;
	if (len != NULL)
		*len = b->len;
	xbuf_init(b, b->max);
	return p;
}

/* ---- escaping ---- */

/* The length (1-4) of the well-formed UTF-8 sequence at <s> (<n> > 0
 * bytes), or 0 with *bad set to the length of its maximal ill-formed
 * subpart, which the caller replaces by one U+FFFD (Unicode's recommended
 * practice, so a truncated sequence costs one replacement, not several).
 * U+FFFE and U+FFFF are well-formed UTF-8 but not XML characters. */
static size_t
utf8_len(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, k;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (c == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;		/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;		/* above U+10FFFF */
	} else {
		*bad = 1;
		return 0;
	}
	for (k = 1; k < need; k++) {
		if (k >= n || s[k] < lo || s[k] > hi) {
			*bad = k;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	if (c == 0xef && s[1] == 0xbf && s[2] >= 0xbe) {
		*bad = 3;
		return 0;
	}
	return need;
}

static void
esc(struct xbuf *b, const char *s, size_t n, bool attr)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < n) {
		const char *rep;
		size_t adv = 1, bad = 1;

		if (u[i] >= 0x80) {
			adv = utf8_len(u + i, n - i, &bad);
			if (adv != 0) {
				i += adv;
				continue;
			}
			rep = FFFD;
			adv = bad;
		} else {
			switch (u[i]) {
			case '&':  rep = "&amp;"; break;
			case '<':  rep = "&lt;"; break;
			case '>':  rep = "&gt;"; break;
			case '"':  rep = "&quot;"; break;
			case '\'': rep = "&apos;"; break;
			case '\r': rep = "&#13;"; break;
			case '\t': rep = attr ? "&#9;" : NULL; break;
			case '\n': rep = attr ? "&#10;" : NULL; break;
			default:   rep = u[i] < 0x20 ? FFFD : NULL; break;
			}
			if (rep == NULL) {
				i++;
				continue;
			}
		}
		xbuf_raw(b, s + run, i - run);
		xbuf_str(b, rep);
		i += adv;
		run = i;
	}
	xbuf_raw(b, s + run, n - run);
}

void
xbuf_esc(struct xbuf *b, const char *s, size_t n)
{
	esc(b, s, n, false);
}

void
xbuf_esc_attr(struct xbuf *b, const char *s, size_t n)
{
	esc(b, s, n, true);
}

void
xbuf_attr(struct xbuf *b, const char *name, const char *value)
{
	xbuf_raw(b, " ", 1);
	xbuf_str(b, name);
	xbuf_raw(b, "=\"", 2);
	if (value != NULL)
		esc(b, value, strlen(value), true);
	xbuf_raw(b, "\"", 1);
}

