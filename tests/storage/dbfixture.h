/* The fixture the storage tests share: a fresh database in a temporary
 * directory before each test, closed and removed after it. Header-only, like
 * tmpdb.h, so each test links only the modules it tests.
 *
 *	TestSuite(name, .init = setup, .fini = teardown);
 * and open_db() to reopen after db_close(db) inside a test. */
#ifndef PARLEY_TESTS_DBFIXTURE_H
#define PARLEY_TESTS_DBFIXTURE_H

#include <criterion/criterion.h>

#include "storage/db.h"
#include "tmpdb.h"

static char dir[256];
static struct db *db;

static inline void
open_db(void)
{
	char err[256] = "";

	db = db_open(dir, NULL, err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
}

static inline void
setup(void)
{
	tmpdb_make(dir, sizeof(dir));
	open_db();
}

static inline void
teardown(void)
{
	db_close(db);
	tmpdb_remove(dir);
}

#endif
