/* The user table, loaded from an Apache htdigest file (see htdigest.h).
 *
 * A table is the whole file read into one buffer, cut in place into strings
 * (':' and line ends become NULs), plus an array of entries sorted by (user
 * folded to ASCII lower case, realm as bytes) that points into that buffer.
 * Lookups are a binary search over it and allocate nothing. A table never
 * changes after htdigest_load returns; the refcount is atomic because tables
 * are shared by all lcores.
 *
 * htdigest_set_user edits the file as text: lines of other users, comments
 * and blank lines are written back byte for byte. It computes HA1 itself with
 * OpenSSL EVP (storage links before the data plane, so not via digest.c). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "dataplane/base/bug.h"
#include "dataplane/base/errmsg.h"
#include "storage/htdigest.h"

struct ht_entry {
	const char *user;		/* spelling of the first line seen */
	uint32_t ulen;
	const char *realm;
	uint32_t rlen;
	const char *ha1[DIGEST_ALG__COUNT];	/* lower-case hex or NULL */
};

struct htdigest {
	_Atomic uint32_t refs;		/* shared by lcores: atomic */
	size_t nent;
	size_t nusers;			/* distinct user names, case-insensitively */
	struct ht_entry *ent;		/* sorted; owned */
	char *buf;			/* the file's text, cut into strings; owned */
};

/* One parsed line, before lines are merged into entries. */
struct ht_line {
	const char *user, *realm, *ha1;
	uint32_t ulen, rlen;
	enum digest_alg alg;
	unsigned lineno;
};

static int
fold(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int
cmp_user(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i, n = alen < blen ? alen : blen;

	for (i = 0; i < n; i++) {
		int d = fold((unsigned char)a[i]) - fold((unsigned char)b[i]);

		if (d != 0)
			return d;
	}
	return alen < blen ? -1 : alen > blen;
}

static int
cmp_realm(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int d = n > 0 ? memcmp(a, b, n) : 0;

	if (d != 0)
		return d;
	return alen < blen ? -1 : alen > blen;
}

static int
cmp_line(const void *pa, const void *pb)
{
	const struct ht_line *a = pa, *b = pb;
	int d;

	d = cmp_user(a->user, a->ulen, b->user, b->ulen);
	if (d == 0)
		d = cmp_realm(a->realm, a->rlen, b->realm, b->rlen);
	if (d == 0)
		d = (int)a->alg - (int)b->alg;
	if (d == 0)
		d = a->lineno < b->lineno ? -1 : a->lineno > b->lineno;
	return d;
}

static bool
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!((ch >= '0' && ch <= '9') || (fold(ch) >= 'a' && fold(ch) <= 'f')))
			return false;
	}
	return true;
}

/* Reads the whole of <path> into a NUL-terminated malloc'd buffer (caller
 * frees). 0 or -errno. */
static int
read_file(const char *path, char **out, size_t *outlen)
{
	size_t cap = 4096, len = 0;
	char *buf, *nb;
	ssize_t n;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	buf = malloc(cap);
	if (buf == NULL) {
		err = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		if (cap - len < 2) {
			nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
			if (nb == NULL) {
				err = -ENOMEM;
				goto out_free;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;

out_free:
	free(buf);
out_close:
	close(fd);
	return err;
}

/* Cuts one line of <buf> (already NUL-terminated at its end, without the line
 * break) into <ln>. Returns NULL or a reason for the error message. */
static const char *
parse_line(char *line, size_t len, struct ht_line *ln)
{
	char *c1, *c2;
	size_t hl, i;

	if (memchr(line, '\0', len) != NULL)
		return "NUL byte in line";
	c1 = memchr(line, ':', len);
	if (c1 == NULL)
		return "expected user:realm:HA1";
	c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line));
	if (c2 == NULL)
		return "expected user:realm:HA1";
	if (c1 == line)
		return "empty user name";
	if (c2 == c1 + 1)
		return "empty realm";
	hl = len - (size_t)(c2 + 1 - line);
	if (hl == 32)
		ln->alg = DIGEST_MD5;
	else if (hl == 64)
		ln->alg = DIGEST_SHA256;
	else
		return "HA1 must be 32 (MD5) or 64 (SHA-256) hex digits";
	if (!is_hex(c2 + 1, hl))
		return "HA1 is not hexadecimal";
	*c1 = '\0';
	*c2 = '\0';
	for (i = 0; i < hl; i++)
		c2[1 + i] = (char)fold((unsigned char)c2[1 + i]);
	ln->user = line;
	ln->ulen = (uint32_t)(c1 - line);
	ln->realm = c1 + 1;
	ln->rlen = (uint32_t)(c2 - c1 - 1);
	ln->ha1 = c2 + 1;
	return NULL;
}

/* Builds the sorted entries from <lines> (sorted in place). */
static const char *
build_entries(struct htdigest *h, struct ht_line *lines, size_t n, unsigned *badline)
{
	struct ht_entry *e = NULL;
	size_t i;

	qsort(lines, n, sizeof(*lines), cmp_line);
	for (i = 0; i < n; i++) {
		struct ht_line *ln = &lines[i];

		if (e == NULL || cmp_user(e->user, e->ulen, ln->user, ln->ulen) != 0 ||
		    cmp_realm(e->realm, e->rlen, ln->realm, ln->rlen) != 0) {
			if (e == NULL || cmp_user(e->user, e->ulen, ln->user, ln->ulen) != 0)
				h->nusers++;
			e = &h->ent[h->nent++];
			e->user = ln->user;
			e->ulen = ln->ulen;
			e->realm = ln->realm;
			e->rlen = ln->rlen;
		} else if (e->ha1[ln->alg] != NULL) {
			*badline = ln->lineno;
			return "duplicate entry for this user, realm and algorithm";
		}
		e->ha1[ln->alg] = ln->ha1;
	}
	return NULL;
}

struct htdigest *
htdigest_load(const char *path, bool missing_ok, char *errbuf, size_t errlen)
{
	struct htdigest *h;
	struct ht_line *lines = NULL;
	size_t len = 0, nlines = 0, cap = 0, off;
	unsigned lineno = 0, badline = 0;
	const char *why;
	char *buf = NULL;
	int rc;

	rc = read_file(path, &buf, &len);
	if (rc == -ENOENT && missing_ok) {
		buf = calloc(1, 1);
		if (buf == NULL) {
			errmsg_set(errbuf, errlen, "%s: out of memory", path);
			return NULL;
		}
	} else if (rc < 0) {
		errmsg_set(errbuf, errlen, "%s: %s", path, strerror(-rc));
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto out_oom;
	h->buf = buf;
	atomic_init(&h->refs, 1);

	for (off = 0; off < len;) {
		char *line = buf + off, *nl;
		size_t ll, skip;

		lineno++;
		nl = memchr(line, '\n', len - off);
		ll = nl != NULL ? (size_t)(nl - line) : len - off;
		off += ll + (nl != NULL);
		line[ll] = '\0';
		/* Tolerate CRLF files and trailing blanks. */
		while (ll > 0 && (line[ll - 1] == '\r' || line[ll - 1] == ' ' ||
				  line[ll - 1] == '\t'))
			line[--ll] = '\0';
		for (skip = 0; skip < ll && (line[skip] == ' ' || line[skip] == '\t'); skip++)
			;
		if (skip == ll || line[skip] == '#')
			continue;
		if (ll > UINT32_MAX) {
			why = "line too long";
			badline = lineno;
			goto out_bad;
		}
		if (nlines == cap) {
			struct ht_line *nl2;

			cap = cap ? cap * 2 : 64;
			nl2 = reallocarray(lines, cap, sizeof(*lines));
			if (nl2 == NULL)
				goto out_oom;
			lines = nl2;
		}
		why = parse_line(line, ll, &lines[nlines]);
		if (why != NULL) {
			badline = lineno;
			goto out_bad;
		}
		lines[nlines].lineno = lineno;
		nlines++;
	}

	if (nlines > 0) {
		h->ent = calloc(nlines, sizeof(*h->ent));
		if (h->ent == NULL)
			goto out_oom;
		why = build_entries(h, lines, nlines, &badline);
		if (why != NULL)
			goto out_bad;
	}
	free(lines);
	return h;

out_bad:
	errmsg_set(errbuf, errlen, "%s:%u: %s", path, badline, why);
	goto out_free;
out_oom:
	errmsg_set(errbuf, errlen, "%s: out of memory", path);
out_free:
	free(lines);
	if (h != NULL) {
		free(h->ent);
		free(h);
	}
	free(buf);
	return NULL;
}

void
htdigest_get(struct htdigest *h)
{
	atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

void
htdigest_put(struct htdigest *h)
{
	uint32_t old;

	if (h == NULL)
		return;
	old = atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel);
	BUG_ON(old == 0);	/* put once more than taken */
	if (old != 1)
		return;
	free(h->ent);
	free(h->buf);
	free(h);
}

size_t
htdigest_count(const struct htdigest *h)
{
	return h != NULL ? h->nusers : 0;
}

static const struct ht_entry *
find(const struct htdigest *h, const char *user, size_t ulen, const char *realm, size_t rlen)
{
	size_t lo = 0, hi;

	if (h == NULL || user == NULL || realm == NULL)
		return NULL;
	hi = h->nent;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ht_entry *e = &h->ent[mid];
		int d = cmp_user(e->user, e->ulen, user, ulen);

		if (d == 0)
			d = cmp_realm(e->realm, e->rlen, realm, rlen);
		if (d == 0)
			return e;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *
htdigest_ha1(const struct htdigest *h, const char *user, size_t ulen, const char *realm,
	     size_t rlen, enum digest_alg alg)
{
	const struct ht_entry *e = find(h, user, ulen, realm, rlen);

	if (e == NULL || (unsigned)alg >= DIGEST_ALG__COUNT)
		return NULL;
	return e->ha1[alg];
}

bool
htdigest_has_user(const struct htdigest *h, const char *user, size_t ulen, const char *realm,
		  size_t rlen)
{
	return find(h, user, ulen, realm, rlen) != NULL;
}

/* ---- rewriting the file ---- */

/* Appends "user:realm:HA1\n" for <alg> to <f>. 0 or -EIO. */
static int
put_line(FILE *f, enum digest_alg alg, const char *user, const char *realm,
	 const char *password)
{
	static const char hexdig[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int mdlen = 0, i;
	char *in;
	size_t inlen;
	int n, rc = 0;

	n = asprintf(&in, "%s:%s:%s", user, realm, password);
	if (n < 0)
		return -ENOMEM;
	inlen = (size_t)n;
	if (EVP_Digest(in, inlen, md, &mdlen, alg == DIGEST_SHA256 ? EVP_sha256() : EVP_md5(),
		       NULL) != 1)
		rc = -EIO;
	OPENSSL_cleanse(in, inlen);
	free(in);
	if (rc < 0)
		return rc;
	for (i = 0; i < mdlen; i++) {
		hex[2 * i] = hexdig[md[i] >> 4];
		hex[2 * i + 1] = hexdig[md[i] & 0xf];
	}
	hex[2 * mdlen] = '\0';
	if (fprintf(f, "%s:%s:%s\n", user, realm, hex) < 0)
		return -EIO;
	return 0;
}

/* A user's two lines, MD5 then SHA-256. 0 or -errno. */
static int
put_lines(FILE *f, const char *user, const char *realm, const char *password)
{
	int rc = put_line(f, DIGEST_MD5, user, realm, password);

	return rc == 0 ? put_line(f, DIGEST_SHA256, user, realm, password) : rc;
}

static bool
valid_field(const char *s)
{
	/* A leading '#' would turn the line into a comment when read back. */
	return s != NULL && s[0] != '\0' && s[0] != '#' && strpbrk(s, ":\r\n") == NULL;
}

/* True when <line> (<ll> bytes, no line break) is an entry for user/realm. */
static bool
line_is_user(const char *line, size_t ll, const char *user, const char *realm)
{
	const char *c1, *c2;
	size_t rlen = strlen(realm);

	while (ll > 0 && (line[ll - 1] == '\r'))
		ll--;
	c1 = memchr(line, ':', ll);
	if (c1 == NULL)
		return false;
	c2 = memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - line));
	if (c2 == NULL)
		return false;
	return cmp_user(line, (size_t)(c1 - line), user, strlen(user)) == 0 &&
	       cmp_realm(c1 + 1, (size_t)(c2 - c1 - 1), realm, rlen) == 0;
}

/* Writes the new contents of the file to <f>: <old> with the user's lines
 * replaced (or dropped). Sets *found when a line of the user was there. */
static int
write_new(FILE *f, const char *old, size_t oldlen, const char *user, const char *realm,
	  const char *password, const char *lines, bool *found)
{
	bool placed = false;
	size_t off = 0;
	int rc;

	*found = false;
	while (off < oldlen) {
		const char *line = old + off, *nl;
		size_t ll, take;

		nl = memchr(line, '\n', oldlen - off);
		ll = nl != NULL ? (size_t)(nl - line) : oldlen - off;
		take = ll + (nl != NULL);
		off += take;
		if (!line_is_user(line, ll, user, realm)) {
			if (fwrite(line, 1, ll, f) != ll || fputc('\n', f) == EOF)
				return -EIO;
			continue;
		}
		*found = true;
		if ((password != NULL || lines != NULL) && !placed) {
			/* The new lines take the place of the first old one. */
			rc = lines != NULL ? (fputs(lines, f) == EOF ? -EIO : 0) :
			     put_lines(f, user, realm, password);
			if (rc < 0)
				return rc;
			placed = true;
		}
	}
	if (lines != NULL && !placed)
		return fputs(lines, f) == EOF ? -EIO : 0;
	if (password != NULL && !placed)
		return put_lines(f, user, realm, password);
	return 0;
}

int
htdigest_user_lines(const char *user, const char *realm, const char *password, char **out)
{
	size_t len;
	FILE *f;
	int rc;

	*out = NULL;
	if (!valid_field(user) || !valid_field(realm) || password == NULL ||
	    strpbrk(password, "\r\n") != NULL)
		return -EINVAL;
	f = open_memstream(out, &len);
	if (f == NULL)
		return -ENOMEM;
	rc = put_lines(f, user, realm, password);
	if (fclose(f) == EOF && rc == 0)
		rc = -ENOMEM;
	if (rc != 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* True when <lines> is one or more "user:realm:HA1\n" lines of <user> in
 * <realm>, each HA1 32 or 64 hex digits. */
static bool
valid_lines(const char *lines, const char *user, const char *realm)
{
	const char *p = lines;

	if (*p == '\0')
		return false;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n'), *c2;
		size_t ll, hl;

		if (nl == NULL || !line_is_user(p, (size_t)(nl - p), user, realm))
			return false;
		ll = (size_t)(nl - p);
		/* line_is_user found both colons: the HA1 follows the last. */
		c2 = memrchr(p, ':', ll);
		hl = (size_t)(nl - c2 - 1);
		if (hl != 32 && hl != 64)
			return false;
		for (const char *h = c2 + 1; h < nl; h++)
			if (!isxdigit((unsigned char)*h))
				return false;
		p = nl + 1;
	}
	return true;
}

static int
rewrite(const char *path, const char *user, const char *realm, const char *password,
	const char *lines)
{
	char dir[PATH_MAX], tmp[PATH_MAX];
	char *old = NULL, *slash;
	size_t oldlen = 0;
	mode_t mode = 0600;
	struct stat st;
	bool found;
	FILE *f;
	int rc, fd, dfd;

	if (path == NULL || !valid_field(user) || !valid_field(realm) ||
	    (password != NULL && strpbrk(password, "\r\n") != NULL) ||
	    (lines != NULL && !valid_lines(lines, user, realm)))
		return -EINVAL;
	rc = read_file(path, &old, &oldlen);
	if (rc == -ENOENT) {
		if (password == NULL && lines == NULL)
			return -ENOENT;
	} else if (rc < 0) {
		return rc;
	} else if (stat(path, &st) == 0) {
		mode = st.st_mode & 07777;
	}

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		rc = -ENAMETOOLONG;
		goto out_free_old;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		goto out_free_old;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1) {
		rc = -errno;
		goto out_free_old;
	}
	if (fchmod(fd, mode) == -1) {
		rc = -errno;
		close(fd);
		goto out_unlink;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		rc = -errno;
		close(fd);
		goto out_unlink;
	}
	rc = write_new(f, old, oldlen, user, realm, password, lines, &found);
	if (rc == 0 && password == NULL && lines == NULL && !found)
		rc = -ENOENT;
	if (rc == 0 && fflush(f) == EOF)
		rc = -errno;
	if (rc == 0 && fsync(fileno(f)) == -1)
		rc = -errno;
	if (fclose(f) == EOF && rc == 0)
		rc = -errno;
	if (rc < 0)
		goto out_unlink;
	if (rename(tmp, path) == -1) {
		rc = -errno;
		goto out_unlink;
	}
	/* The rename is durable only once the directory is on disk. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1) {
		rc = -errno;
		goto out_free_old;
	}
	if (fsync(dfd) == -1)
		rc = -errno;
	close(dfd);
	goto out_free_old;

out_unlink:
	unlink(tmp);
out_free_old:
	free(old);
	return rc;
}

int
htdigest_set_user(const char *path, const char *user, const char *realm, const char *password)
{
	return rewrite(path, user, realm, password, NULL);
}

int
htdigest_set_user_lines(const char *path, const char *user, const char *realm,
			const char *lines)
{
	return rewrite(path, user, realm, NULL, lines);
}
