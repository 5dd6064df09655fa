/* The "reason for the operator" buffers that boot-time and service calls
 * fill (char *err, size_t errlen). */
#ifndef PARLEY_ERRMSG_H
#define PARLEY_ERRMSG_H

#include <stddef.h>

/* printf into <buf> of <len> bytes (truncated); nothing when <buf> is NULL
 * or <len> is 0. Any thread. */
void errmsg_set(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
