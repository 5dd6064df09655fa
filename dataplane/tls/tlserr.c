/* See tlserr.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "dataplane/tls/tlserr.h"

void
tlserr_set(char *errbuf, size_t errlen, const char *fmt, ...)
{
	unsigned long e;
	char reason[256];
	size_t n;
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
		e = ERR_peek_last_error();
		if (e != 0) {
			ERR_error_string_n(e, reason, sizeof(reason));
			n = strlen(errbuf);
			if (n < errlen)
				snprintf(errbuf + n, errlen - n, ": %s", reason);
		}
	}
	ERR_clear_error();
}
