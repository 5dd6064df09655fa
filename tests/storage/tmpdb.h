/* Test helpers: a fresh database directory under $TMPDIR, removed at the
 * end. Header-only so each test links only the modules it tests. */
#ifndef PARLEY_TESTS_TMPDB_H
#define PARLEY_TESTS_TMPDB_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

static int
tmpdb_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Fills <buf> with a new empty directory's path. */
static inline void
tmpdb_make(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");

	snprintf(buf, len, "%s/parley-storage-XXXXXX", base != NULL ? base : "/tmp");
	cr_assert_not_null(mkdtemp(buf), "mkdtemp %s", buf);
}

static inline void
tmpdb_remove(const char *dir)
{
	nftw(dir, tmpdb_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
