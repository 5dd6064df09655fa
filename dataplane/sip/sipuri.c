/* SIP value syntax (RFC 3261 §25): comma-separated lists, name-addr,
 * parameters and URIs, over views into the caller's buffer. The message
 * framing and header extraction that use them are in sipmsg.c; see the
 * top of that file for the liberal choices both make.
 *
 * Pure functions over buffers: no allocation, no global state, any thread. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/sip/siplex.h"
#include "dataplane/sip/sipmsg.h"

/* Skips a quoted string starting at s.p[*i] == '"'. Returns false when it
 * is not terminated; *i then points past the closing quote. */
static bool
skip_quoted(struct sip_str s, uint32_t *i)
{
	uint32_t k = *i + 1;

	while (k < s.len) {
		if (s.p[k] == '\\') {
			k += 2;
			continue;
		}
		if (s.p[k] == '"') {
			*i = k + 1;
			return true;
		}
		k++;
	}
	return false;
}

bool
sip_list_next(struct sip_str *rest, struct sip_str *item)
{
	struct sip_str s = sip_str_trim(*rest);
	uint32_t i = 0;
	bool in_angle = false;

	if (s.len == 0) {
		*rest = mkstr(s.p, 0);
		return false;
	}
	while (i < s.len) {
		char c = s.p[i];

		if (c == '"' && !in_angle) {
			if (!skip_quoted(s, &i)) {
				i = s.len;	/* unterminated: the rest is one item */
				break;
			}
			continue;
		}
		if (c == '<')
			in_angle = true;
		else if (c == '>')
			in_angle = false;
		else if (c == ',' && !in_angle)
			break;
		i++;
	}
	*item = sip_str_trim(mkstr(s.p, i));
	if (i < s.len)
		*rest = mkstr(s.p + i + 1, s.len - i - 1);
	else
		*rest = mkstr(s.p + s.len, 0);
	return true;
}

/* Display name as tokens separated by LWS (RFC 3261 §25.1 display-name). */
static bool
token_words(struct sip_str s)
{
	uint32_t i;

	for (i = 0; i < s.len; i++)
		if (!is_token(s.p[i]) && !is_wsp(s.p[i]))
			return false;
	return true;
}


int
sip_nameaddr_parse(struct sip_str s, struct sip_nameaddr *na)
{
	uint32_t i = 0, lt, gt;
	struct sip_str rest;

	*na = (struct sip_nameaddr){ SIP_STR_NULL, SIP_STR_NULL, SIP_STR_NULL };
	s = sip_str_trim(s);
	if (s.len == 0)
		return -EBADMSG;
	if (s.p[0] == '"') {
		if (!skip_quoted(s, &i))
			return -EBADMSG;
		na->display = mkstr(s.p + 1, i - 2);
		while (i < s.len && is_wsp(s.p[i]))
			i++;
		if (i >= s.len || s.p[i] != '<')
			return -EBADMSG;
		lt = i;
	} else {
		for (lt = 0; lt < s.len && s.p[lt] != '<'; lt++)
			if (s.p[lt] == '"')
				return -EBADMSG;
		if (lt == s.len) {
			/* addr-spec: the URI ends at the first ';' */
			for (i = 0; i < s.len && s.p[i] != ';'; i++)
				;
			na->uri = sip_str_trim(mkstr(s.p, i));
			if (na->uri.len == 0 || siplex_has_space(na->uri))
				return -EBADMSG;
			na->params = i < s.len ? mkstr(s.p + i, s.len - i) : mkstr(s.p + s.len, 0);
			return 0;
		}
		na->display = sip_str_trim(mkstr(s.p, lt));
		if (!token_words(na->display))
			return -EBADMSG;
	}
	for (gt = lt + 1; gt < s.len && s.p[gt] != '>'; gt++)
		;
	if (gt >= s.len)
		return -EBADMSG;
	na->uri = mkstr(s.p + lt + 1, gt - lt - 1);
	if (na->uri.len == 0 || siplex_has_space(na->uri))
		return -EBADMSG;
	rest = sip_str_trim(mkstr(s.p + gt + 1, s.len - gt - 1));
	if (rest.len > 0 && rest.p[0] != ';')
		return -EBADMSG;
	na->params = rest;
	return 0;
}

/* One parameter of a ";a=1;b;c=\"x\"" list at *<s>; advances *<s>. Returns
 * false at the end of the list, or on a syntax error (*bad set). */
static bool
param_next(struct sip_str *s, struct sip_str *name, struct sip_str *val, bool *bad)
{
	uint32_t i = 0, st;
	const char *p = s->p;
	uint32_t n = s->len;

	*bad = false;
	while (i < n && (is_wsp(p[i]) || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i >= n)
		return false;
	if (p[i] != ';') {
		*bad = true;
		return false;
	}
	i++;
	while (i < n && is_wsp(p[i]))
		i++;
	st = i;
	while (i < n && is_token(p[i]))
		i++;
	*name = mkstr(p + st, i - st);
	if (name->len == 0) {
		*bad = true;
		return false;
	}
	while (i < n && is_wsp(p[i]))
		i++;
	*val = mkstr(p + i, 0);
	if (i < n && p[i] == '=') {
		i++;
		while (i < n && is_wsp(p[i]))
			i++;
		if (i < n && p[i] == '"') {
			st = i;
			if (!skip_quoted(mkstr(p, n), &i)) {
				*bad = true;
				return false;
			}
			*val = mkstr(p + st + 1, i - st - 2);
		} else {
			st = i;
			while (i < n && p[i] != ';' && !is_wsp(p[i]) && p[i] != ',')
				i++;
			*val = mkstr(p + st, i - st);
			if (val->len == 0) {
				*bad = true;
				return false;
			}
		}
		while (i < n && is_wsp(p[i]))
			i++;
	}
	*s = mkstr(p + i, n - i);
	return true;
}

bool
siplex_params_valid(struct sip_str params)
{
	struct sip_str name, val;
	bool bad;

	while (param_next(&params, &name, &val, &bad))
		;
	return !bad;
}

bool
sip_param_get(struct sip_str params, const char *name, struct sip_str *val)
{
	struct sip_str n, v;
	bool bad;

	if (params.p == NULL)
		return false;
	while (param_next(&params, &n, &v, &bad)) {
		if (sip_str_ieq(n, name)) {
			if (val != NULL)
				*val = v;
			return true;
		}
	}
	return false;
}

int
sip_uri_parse(struct sip_str s, struct sip_uri *u)
{
	uint32_t i, at, hs, he, q;
	const char *p;
	uint32_t port = 0;

	*u = (struct sip_uri){ .port = -1 };
	s = sip_str_trim(s);
	if (s.len == 0 || !is_alpha(s.p[0]))
		return -EBADMSG;
	for (i = 1; i < s.len && (is_alpha(s.p[i]) || is_digit(s.p[i]) ||
				  s.p[i] == '+' || s.p[i] == '-' || s.p[i] == '.'); i++)
		;
	if (i >= s.len || s.p[i] != ':' || siplex_has_space(s))
		return -EBADMSG;
	u->scheme = mkstr(s.p, i);
	p = s.p + i + 1;
	s = mkstr(p, s.len - i - 1);
	if (!sip_str_ieq(u->scheme, "sip") && !sip_str_ieq(u->scheme, "sips")) {
		u->user = s;
		return 0;
	}

	/* userinfo may hold '?', ';' and ':' (RFC 4475 intmeth), never a bare '@' */
	for (at = 0; at < s.len && p[at] != '@'; at++)
		;
	hs = 0;
	if (at < s.len) {
		for (i = 0; i < at && p[i] != ':'; i++)
			;
		u->user = mkstr(p, i);
		if (i < at)
			u->password = mkstr(p + i + 1, at - i - 1);
		if (u->user.len == 0)
			return -EBADMSG;
		hs = at + 1;
	}
	if (hs < s.len && p[hs] == '[') {
		for (he = hs; he < s.len && p[he] != ']'; he++)
			;
		if (he >= s.len)
			return -EBADMSG;
		he++;
	} else {
		for (he = hs; he < s.len && p[he] != ':' && p[he] != ';' && p[he] != '?'; he++)
			if (!is_alpha(p[he]) && !is_digit(p[he]) && p[he] != '-' &&
			    p[he] != '.' && p[he] != '_')
				return -EBADMSG;
	}
	u->host = mkstr(p + hs, he - hs);
	if (u->host.len == 0)
		return -EBADMSG;
	i = he;
	if (i < s.len && p[i] == ':') {
		i++;
		if (i >= s.len || !is_digit(p[i]))
			return -EBADMSG;
		while (i < s.len && is_digit(p[i])) {
			port = port * 10 + (uint32_t)(p[i] - '0');
			if (port > 65535)
				return -EBADMSG;
			i++;
		}
		u->port = (int32_t)port;
	}
	for (q = i; q < s.len && p[q] != '?'; q++)
		;
	if (i < q) {
		if (p[i] != ';')
			return -EBADMSG;
		u->params = mkstr(p + i, q - i);
	}
	if (q < s.len)
		u->headers = mkstr(p + q + 1, s.len - q - 1);
	return 0;
}

ssize_t
sip_uri_aor(struct sip_str uri, char *out, size_t cap)
{
	struct sip_uri u;
	size_t n, k = 0;
	uint32_t i;

	if (sip_uri_parse(uri, &u) != 0)
		return -EBADMSG;
	if (!sip_str_ieq(u.scheme, "sip") && !sip_str_ieq(u.scheme, "sips"))
		return -EBADMSG;
	/* An address of record is compared and printed as a C string: a
	 * control character (a NUL from a quoted "\<NUL>" escape, say) in
	 * the user part has no place in one (RFC 3261 §25.1). */
	for (i = 0; i < u.user.len; i++)
		if ((unsigned char)u.user.p[i] < 0x20 || u.user.p[i] == 0x7f)
			return -EBADMSG;
	n = u.host.len + (u.user.len > 0 ? u.user.len + 1 : 0);
	if (n + 1 > cap)
		return -ENOSPC;
	if (u.user.len > 0) {
		memcpy(out, u.user.p, u.user.len);
		k = u.user.len;
		out[k++] = '@';
	}
	for (i = 0; i < u.host.len; i++)
		out[k++] = lower(u.host.p[i]);
	out[k] = '\0';
	return (ssize_t)k;
}
