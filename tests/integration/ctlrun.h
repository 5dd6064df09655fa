/* Running parleyctl against a harness server (harness.h) from a test, and
 * reading the JSON it prints. */
#ifndef PARLEY_TEST_CTLRUN_H
#define PARLEY_TEST_CTLRUN_H

#include <jansson.h>

#include "tests/integration/harness.h"

/* server_start(), then waits until the control socket <sock> (NULL: the
 * default, <s->dir>/parleyd.sock) exists: parleyd opens it just after its
 * SIP listener, so the port answering is not enough. */
void ctl_server_start(struct server *s, const char *extra, const char *sock);

/* Path of the parleyctl binary. */
const char *ctl_binary(void);

/* Runs `parleyctl -j -c <s->conf> ARGS` (ARGS printf-style, shell words)
 * and parses what it printed on stdout into *<out> (NULL when it printed
 * no JSON; may be NULL to ignore it). Its stderr goes to <s->dir>/ctl.err.
 * Returns the exit status. */
int ctl(struct server *s, json_t **out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same, prefixed with <prefix> (e.g. a setpriv command) and with -s
 * <socket> instead of -c. */
int ctl_as(const char *prefix, const char *socket, json_t **out, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ctl() that must exit 0 and print JSON: the JSON (caller decrefs). */
json_t *ctl_ok(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Value at a dotted path ("total.posts_in", "lcores.1.conns"); NULL when
 * absent. Borrowed. */
json_t *jget(json_t *v, const char *path);
/* Integer at a dotted path; asserts that it is one. */
long long jint(json_t *v, const char *path);
/* String at a dotted path; asserts that it is one. */
const char *jstr(json_t *v, const char *path);

#endif
