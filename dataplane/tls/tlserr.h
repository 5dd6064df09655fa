/* Error messages for the TLS stage: the caller's text plus OpenSSL's reason. */
#ifndef PARLEY_TLSERR_H
#define PARLEY_TLSERR_H

#include <stddef.h>

/* Formats <fmt> into <errbuf> (when non-NULL), appends ": <reason>" of the
 * last OpenSSL error if there is one, and clears this thread's OpenSSL error
 * queue either way. Boot or control thread. */
void tlserr_set(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
