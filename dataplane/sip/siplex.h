/* Lexical helpers shared by the SIP parser's files (sipmsg.c: messages and
 * headers; sipuri.c: lists, name-addr, parameters, URIs). Internal to
 * dataplane/sip. Pure functions; any thread. */
#ifndef PARLEY_SIPLEX_H
#define PARLEY_SIPLEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/sip/sipmsg.h"

static inline char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static inline bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3261 token: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" */
static inline bool
is_token(char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("-.!%*_+`'~", c) != NULL);
}

static inline bool
all_token(const char *p, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!is_token(p[i]))
			return false;
	return true;
}

static inline struct sip_str
mkstr(const char *p, size_t n)
{
	return (struct sip_str){ p, (uint32_t)n };
}

/* True when <s> holds whitespace or a line break. */
static inline bool
siplex_has_space(struct sip_str s)
{
	uint32_t i;

	for (i = 0; i < s.len; i++)
		if (is_wsp(s.p[i]) || s.p[i] == '\r' || s.p[i] == '\n')
			return true;
	return false;
}

/* True when <params> is a well-formed ";name[=value]..." list (possibly
 * empty). In sipuri.c. */
bool siplex_params_valid(struct sip_str params);

#endif
