/* The fixture the storage tests share: a fresh database in a temporary
 * directory before each test, closed and removed after it. Header-only, like
 * tmpdb.h, so each test links only the modules it tests.
 *
 *	TestSuite(name, .init = setup, .fini = teardown);
 * and open_db() to reopen after db_close(db) inside a test; raw_put() and
 * raw_get() write and read a compliance record as stored, bypassing the
 * WAL codec (to plant torn or corrupt records). */
#ifndef PARLEY_TESTS_DBFIXTURE_H
#define PARLEY_TESTS_DBFIXTURE_H

#include <criterion/criterion.h>

#include "dataplane/base/be.h"
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

/* Stores <len> bytes at <v> as compliance record <seq>, synced. */
static inline void
raw_put(uint64_t seq, const void *v, size_t len)
{
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	unsigned char key[8];
	char *err = NULL;

	rocksdb_writeoptions_set_sync(wo, 1);
	be_put64(key, seq);
	rocksdb_put_cf(db_rocks(db), wo, db_cf(db, DB_CF_COMPLIANCE), (const char *)key, 8, v, len,
		       &err);
	rocksdb_writeoptions_destroy(wo);
	cr_assert_null(err, "%s", err);
}

/* Compliance record <seq> as stored (rocksdb_free it); it must exist. */
static inline char *
raw_get(uint64_t seq, size_t *len)
{
	unsigned char key[8];
	char *err = NULL, *v;

	be_put64(key, seq);
	v = rocksdb_get_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_COMPLIANCE),
			   (const char *)key, 8, len, &err);
	cr_assert_null(err);
	cr_assert_not_null(v, "seq %llu", (unsigned long long)seq);
	return v;
}

#endif
