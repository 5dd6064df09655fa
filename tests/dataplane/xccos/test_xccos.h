/* What the two files of the xccos suite share (test_xccos.c, the parser;
 * test_xccos_build.c, the builders, escaping and timestamps): defined in
 * test_xccos.c, which also holds the suite's .init and .fini. */
#ifndef PARLEY_TEST_XCCOS_H
#define PARLEY_TEST_XCCOS_H

#include <stddef.h>

#include <libxml/xmlerror.h>

/* xccos_parse() of an exact-size malloc()ed copy of <s> (<len> bytes, no
 * NUL) with the suite's limits into the suite's message (freed at the
 * next parse and by .fini); its return value. */
int test_xccos_parse(const char *s, size_t len);

/* A libxml2 structured error handler that drops every error (for
 * xmlSetStructuredErrorFunc while a test feeds libxml2 garbage). */
void test_xccos_quiet(void *ctx, xmlErrorPtr e);

#endif
