/* What the SIP tests compare parsed strings with: a struct sip_str against a
 * C string, and an assertion that prints both. */
#ifndef PARLEY_TEST_SIPSTR_H
#define PARLEY_TEST_SIPSTR_H

#include <stdbool.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/sip/sipmsg.h"

static inline bool
str_is(struct sip_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

#define assert_str(s, want) \
	cr_assert(str_is((s), (want)), "got \"%.*s\", want \"%s\"", (int)(s).len, \
		  (s).p != NULL ? (s).p : "", (want))

#endif
