#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "storage/db.h"
#include "tmpdb.h"

static char dir[256];

static void
setup(void)
{
	tmpdb_make(dir, sizeof(dir));
}

static void
teardown(void)
{
	tmpdb_remove(dir);
}

TestSuite(db, .init = setup, .fini = teardown);

Test(db, creates_all_families_and_stamps_meta)
{
	char err[256] = "";
	struct db *db = db_open(dir, NULL, err, sizeof(err));
	uint64_t v;

	cr_assert_not_null(db, "%s", err);
	for (int c = 0; c < DB_CF_MAX; c++)
		cr_assert_not_null(db_cf(db, c), "family %s", db_cf_name(c));
	cr_assert_str_eq(db_cf_name(DB_CF_COMPLIANCE), "compliance");
	cr_assert_eq(db_schema_version(db), DB_SCHEMA_VERSION);
	cr_assert_neq(db_node_id(db), 0);
	cr_assert_eq(db_meta_get_u64(db, "schema_version", &v), 0);
	cr_assert_eq(v, DB_SCHEMA_VERSION);
	db_close(db);
}

Test(db, reopen_keeps_node_id_and_data)
{
	char err[256] = "";
	struct db *db = db_open(dir, NULL, err, sizeof(err));
	uint64_t id, v;

	cr_assert_not_null(db, "%s", err);
	id = db_node_id(db);
	cr_assert_eq(db_meta_put_u64(db, "test.x", 0x0102030405060708ull), 0);
	db_close(db);

	db = db_open(dir, NULL, err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(db_node_id(db), id);
	cr_assert_eq(db_meta_get_u64(db, "test.x", &v), 0);
	cr_assert_eq(v, 0x0102030405060708ull);
	cr_assert_eq(db_meta_get_u64(db, "test.missing", &v), -ENOENT);
	db_close(db);
}

Test(db, configured_node_id_is_stored_and_checked)
{
	struct db_config cfg = { .node_id = 42 };
	char err[256] = "";
	struct db *db = db_open(dir, &cfg, err, sizeof(err));

	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(db_node_id(db), 42);
	db_close(db);

	cfg.node_id = 43;
	db = db_open(dir, &cfg, err, sizeof(err));
	cr_assert_null(db);
	cr_assert_not_null(strstr(err, "node 42"), "%s", err);

	cfg.node_id = 0;	/* keep the stored one */
	db = db_open(dir, &cfg, err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(db_node_id(db), 42);
	db_close(db);
}

Test(db, refuses_newer_schema)
{
	char err[256] = "";
	struct db *db = db_open(dir, NULL, err, sizeof(err));

	cr_assert_not_null(db, "%s", err);
	cr_assert_eq(db_meta_put_u64(db, "schema_version", DB_SCHEMA_VERSION + 1), 0);
	db_close(db);

	db = db_open(dir, NULL, err, sizeof(err));
	cr_assert_null(db);
	cr_assert_not_null(strstr(err, "schema version 2"), "%s", err);
	cr_assert_not_null(strstr(err, "newer"), "%s", err);
}

Test(db, opens_a_database_with_an_unknown_family)
{
	rocksdb_options_t *o = rocksdb_options_create();
	char *rerr = NULL, err[256] = "";
	rocksdb_column_family_handle_t *h;
	rocksdb_t *raw;
	struct db *db;

	rocksdb_options_set_create_if_missing(o, 1);
	raw = rocksdb_open(o, dir, &rerr);
	cr_assert_null(rerr, "%s", rerr);
	h = rocksdb_create_column_family(raw, o, "from_the_future", &rerr);
	cr_assert_null(rerr, "%s", rerr);
	rocksdb_column_family_handle_destroy(h);
	rocksdb_close(raw);
	rocksdb_options_destroy(o);

	db = db_open(dir, NULL, err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
	cr_assert_not_null(db_cf(db, DB_CF_META));
	db_close(db);
}

Test(db, bad_path_says_what_to_check)
{
	char err[256] = "";
	struct db *db = db_open("/proc/definitely/not/here", NULL, err, sizeof(err));

	cr_assert_null(db);
	cr_assert_not_null(strstr(err, "cannot open database"), "%s", err);
}
