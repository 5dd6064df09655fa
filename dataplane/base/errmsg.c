/* See errmsg.h. */
#include <stdarg.h>
#include <stdio.h>

#include "dataplane/base/errmsg.h"

void
errmsg_set(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}
