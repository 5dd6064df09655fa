/* A self-signed certificate for the embedded default.
 *
 * The certificate is a leaf (CA:FALSE, keyUsage digitalSignature,
 * extendedKeyUsage serverAuth) that clients pin or add as a trust anchor:
 * OpenSSL 3.0 accepts a self-signed leaf found in its trust store, e.g.
 * `openssl s_client -verify_return_error -CAfile cert.pem -verify_ip 127.0.0.1`.
 *
 * Files are written crash-safely: each goes to a temporary name in its own
 * directory, is fsynced, and is renamed into place, key first; then the
 * directories are fsynced. A crash can leave a stray temporary file, never a
 * torn certificate or key. Boot thread only. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "dataplane/tls/tlscert.h"
#include "dataplane/tls/tlserr.h"

#define SERIAL_BYTES	16

/* 1 when <path> exists, 0 when it does not, -errno when we cannot tell. */
static int
exists(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

static int
add_name(GENERAL_NAMES *gens, const char *name)
{
	GENERAL_NAME *g;
	ASN1_OCTET_STRING *ip;
	ASN1_IA5STRING *dns;

	g = GENERAL_NAME_new();
	if (g == NULL)
		return -1;
	/* A CN that is an address literal becomes an IP name, not a DNS one. */
	ip = a2i_IPADDRESS(name);
	if (ip != NULL) {
		GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
	} else {
		ERR_clear_error();
		dns = ASN1_IA5STRING_new();
		if (dns == NULL || ASN1_STRING_set(dns, name, -1) != 1) {
			ASN1_IA5STRING_free(dns);
			GENERAL_NAME_free(g);
			return -1;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, dns);
	}
	if (sk_GENERAL_NAME_push(gens, g) == 0) {
		GENERAL_NAME_free(g);
		return -1;
	}
	return 0;
}

/* subjectAltName: <cn>, localhost, 127.0.0.1 and ::1, without duplicates. */
static int
add_san(X509 *x, const char *cn)
{
	static const char *const fixed[] = { "localhost", "127.0.0.1", "::1" };
	GENERAL_NAMES *gens;
	bool dup = false;
	size_t i;
	int ret = -1;

	gens = sk_GENERAL_NAME_new_null();
	if (gens == NULL)
		return -1;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		dup |= strcmp(cn, fixed[i]) == 0;
	if (!dup && add_name(gens, cn) != 0)
		goto out_free_gens;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (add_name(gens, fixed[i]) != 0)
			goto out_free_gens;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		goto out_free_gens;
	ret = 0;
out_free_gens:
	GENERAL_NAMES_free(gens);
	return ret;
}

static int
add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static int
set_serial(X509 *x)
{
	unsigned char raw[SERIAL_BYTES];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	raw[0] = (raw[0] & 0x7f) | 0x40;	/* positive, full length, non-zero */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn == NULL)
		return -1;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

/* A new self-signed certificate for <pkey>; NULL on failure (error queue
 * says why). The caller frees it with X509_free(). */
static X509 *
make_cert(EVP_PKEY *pkey, const char *cn, int days)
{
	X509V3_CTX v3;
	X509_NAME *name;
	X509 *x;

	x = X509_new();
	if (x == NULL)
		return NULL;
	if (X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x) != 0)
		goto out_free_x;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL)
		goto out_free_x;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
				       -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, pkey) != 1)
		goto out_free_x;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") != 0 ||
	    add_ext(x, &v3, NID_ext_key_usage, "serverAuth") != 0 ||
	    add_ext(x, &v3, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(x, &v3, NID_authority_key_identifier, "keyid:always") != 0 ||
	    add_san(x, cn) != 0)
		goto out_free_x;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto out_free_x;
	return x;

out_free_x:
	X509_free(x);
	return NULL;
}

/* Writes the PEM of <pkey> (when non-NULL) or <x> to a new temporary file
 * next to <path>, with <mode>, and fsyncs it. Its name goes to <tmp>. */
static int
write_tmp(const char *path, char *tmp, size_t tmplen, mode_t mode, EVP_PKEY *pkey, X509 *x,
	  char *errbuf, size_t errlen)
{
	BIO *bio;
	int fd, ok, err;

	if ((size_t)snprintf(tmp, tmplen, "%s.tmpXXXXXX", path) >= tmplen) {
		tlserr_set(errbuf, errlen, "path too long: %s", path);
		return -ENAMETOOLONG;
	}
	fd = mkstemp(tmp);	/* mode 0600 from the start: no window for the key */
	if (fd == -1) {
		err = -errno;
		tlserr_set(errbuf, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return err;
	}
	if (fchmod(fd, mode) == -1) {
		err = -errno;
		tlserr_set(errbuf, errlen, "cannot chmod %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	bio = BIO_new_fd(fd, BIO_NOCLOSE);
	if (bio == NULL) {
		err = -ENOMEM;
		tlserr_set(errbuf, errlen, "cannot write %s", tmp);
		goto out_unlink;
	}
	if (pkey != NULL)
		ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_bio_X509(bio, x);
	ok = ok == 1 && BIO_flush(bio) == 1;
	BIO_free(bio);
	if (!ok) {
		err = -EIO;
		tlserr_set(errbuf, errlen, "cannot write %s", tmp);
		goto out_unlink;
	}
	if (fsync(fd) == -1) {
		err = -errno;
		tlserr_set(errbuf, errlen, "cannot fsync %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	if (close(fd) == -1) {
		err = -errno;
		fd = -1;
		tlserr_set(errbuf, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	return 0;

out_unlink:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return err;
}

/* Makes the rename of <path> durable. */
static int
sync_dir_of(const char *path, char *errbuf, size_t errlen)
{
	char copy[PATH_MAX];
	const char *dir;
	int fd, err;

	if ((size_t)snprintf(copy, sizeof(copy), "%s", path) >= sizeof(copy))
		return -ENAMETOOLONG;
	dir = dirname(copy);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fsync(fd) == -1) {
		err = -errno;
		tlserr_set(errbuf, errlen, "cannot fsync directory %s: %s", dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return err;
	}
	close(fd);
	return 0;
}

int
tlscert_ensure(const char *cert_path, const char *key_path, const char *cn, int days,
	       char *errbuf, size_t errlen)
{
	char cert_tmp[PATH_MAX], key_tmp[PATH_MAX];
	EVP_PKEY *pkey;
	X509 *x;
	int have_cert, have_key, err;

	ERR_clear_error();
	have_cert = exists(cert_path);
	if (have_cert < 0) {
		tlserr_set(errbuf, errlen, "cannot stat %s: %s", cert_path, strerror(-have_cert));
		return have_cert;
	}
	have_key = exists(key_path);
	if (have_key < 0) {
		tlserr_set(errbuf, errlen, "cannot stat %s: %s", key_path, strerror(-have_key));
		return have_key;
	}
	if (have_cert && have_key)
		return 0;
	if (have_cert || have_key) {
		const char *there = have_cert ? cert_path : key_path;
		const char *gone = have_cert ? key_path : cert_path;

		tlserr_set(errbuf, errlen,
			  "%s exists but %s does not: restore it, or remove %s for a new pair",
			  there, gone, there);
		return -ENOENT;
	}
	if (cn == NULL || cn[0] == '\0' || days <= 0) {
		tlserr_set(errbuf, errlen, "self-signed certificate needs a name and days > 0");
		return -EINVAL;
	}

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL) {
		tlserr_set(errbuf, errlen, "cannot generate an ECDSA P-256 key for %s", key_path);
		return -EIO;
	}
	x = make_cert(pkey, cn, days);
	if (x == NULL) {
		tlserr_set(errbuf, errlen, "cannot build a certificate for %s", cert_path);
		err = -EIO;
		goto out_free_pkey;
	}
	err = write_tmp(key_path, key_tmp, sizeof(key_tmp), 0600, pkey, NULL, errbuf, errlen);
	if (err != 0)
		goto out_free_x;
	err = write_tmp(cert_path, cert_tmp, sizeof(cert_tmp), 0644, NULL, x, errbuf, errlen);
	if (err != 0)
		goto out_unlink_key_tmp;
	/* Key first: a crash between the renames leaves a key without a
	 * certificate, which the next start reports instead of serving a
	 * certificate whose key is lost. */
	if (rename(key_tmp, key_path) == -1) {
		err = -errno;
		tlserr_set(errbuf, errlen, "cannot rename %s to %s: %s", key_tmp, key_path,
			  strerror(errno));
		goto out_unlink_cert_tmp;
	}
	if (rename(cert_tmp, cert_path) == -1) {
		err = -errno;
		tlserr_set(errbuf, errlen, "cannot rename %s to %s: %s", cert_tmp, cert_path,
			  strerror(errno));
		unlink(key_path);
		goto out_unlink_cert_tmp;
	}
	err = sync_dir_of(key_path, errbuf, errlen);
	if (err == 0)
		err = sync_dir_of(cert_path, errbuf, errlen);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return err == 0 ? 1 : err;

out_unlink_cert_tmp:
	unlink(cert_tmp);
out_unlink_key_tmp:
	unlink(key_tmp);
out_free_x:
	X509_free(x);
out_free_pkey:
	EVP_PKEY_free(pkey);
	return err;
}
