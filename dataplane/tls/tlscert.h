/* A self-signed certificate for the embedded default.
 *
 * When no certificate is configured, parleyd generates one key (ECDSA P-256)
 * and one self-signed certificate once into the data directory and reuses
 * them on every later start. Boot thread only. */
#ifndef PARLEY_TLSCERT_H
#define PARLEY_TLSCERT_H

#include <stddef.h>

/* Makes sure <cert_path> and <key_path> exist: when both are there, does
 * nothing and returns 0; when neither is, generates a key and a certificate
 * valid for <days> days with CN <cn> and subjectAltNames DNS:<cn>,
 * DNS:localhost, IP:127.0.0.1 and IP:::1, writes them (key file mode 0600,
 * temp file then rename) and returns 1. Returns -errno with a message in
 * <errbuf> on failure, or when only one of the two files exists. */
int tlscert_ensure(const char *cert_path, const char *key_path, const char *cn, int days,
		   char *errbuf, size_t errlen);

#endif
