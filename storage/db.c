/* Opening and closing the node database; see db.h.
 *
 * Open lists the families already on disk, opens those plus any of ours
 * that are missing (RocksDB refuses to open a database without naming all
 * of its families, so families of a newer schema are opened too, only to be
 * able to read its schema version and refuse it with a clear message).
 *
 * Options aim at a chat server on a small box: a modest shared LRU block
 * cache, two background jobs, a bounded number of info logs, default
 * point-in-time WAL recovery (with synced writes nothing acknowledged is
 * lost). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "dataplane/base/be.h"
#include "dataplane/base/errmsg.h"
#include "dataplane/base/log.h"
#include "storage/acked.h"
#include "storage/db.h"

#define DEFAULT_CACHE_BYTES	(32u << 20)
#define MAX_FAMILIES		32

struct db {
	rocksdb_t			*rocks;
	rocksdb_options_t		*opts;
	rocksdb_cache_t			*cache;
	rocksdb_block_based_table_options_t *bbto;
	rocksdb_readoptions_t		*ropts;
	rocksdb_writeoptions_t		*wsync;
	rocksdb_writeoptions_t		*wnosync;
	rocksdb_column_family_handle_t	*cf[DB_CF_MAX];
	rocksdb_column_family_handle_t	*handles[MAX_FAMILIES];	/* all opened, for close */
	int				nhandles;
	uint64_t			node_id;
	uint64_t			schema;
	struct acked			*acked;
};

static const char *const cf_names[DB_CF_MAX] = {
	[DB_CF_USERS] = "users",
	[DB_CF_CATALOG] = "catalog",
	[DB_CF_HISTORY] = "history",
	[DB_CF_COMPLIANCE] = "compliance",
	[DB_CF_PREFS] = "prefs",
	[DB_CF_FILES] = "files",
	[DB_CF_META] = "meta",
};

const char *
db_cf_name(enum db_cf cf)
{
	return (unsigned)cf < DB_CF_MAX ? cf_names[cf] : "?";
}

rocksdb_t *
db_rocks(const struct db *db)
{
	return db->rocks;
}

rocksdb_column_family_handle_t *
db_cf(const struct db *db, enum db_cf cf)
{
	return db->cf[cf];
}

uint64_t
db_node_id(const struct db *db)
{
	return db->node_id;
}

uint64_t
db_schema_version(const struct db *db)
{
	return db->schema;
}

const rocksdb_readoptions_t *
db_ropts(const struct db *db)
{
	return db->ropts;
}

int
db_scan_end(rocksdb_iterator_t *it, rocksdb_readoptions_t *ro, const char *what)
{
	char *err = NULL;

	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (ro != NULL)
		rocksdb_readoptions_destroy(ro);
	if (err == NULL)
		return 0;
	LOG(ERR, STORAGE, "%s scan failed: %s", what, err);
	rocksdb_free(err);
	return -EIO;
}

char *
db_json_text(struct json_t *o, size_t *len)
{
	char *s;

	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (s != NULL && len != NULL)
		*len = strlen(s);
	return s;
}

int
db_write(struct db *db, rocksdb_writebatch_t *wb, bool sync)
{
	char *err = NULL;

	rocksdb_write(db->rocks, sync ? db->wsync : db->wnosync, wb, &err);
	if (err != NULL) {
		LOG(ERR, STORAGE, "write of %d records failed: %s (check disk space and permissions)",
		    rocksdb_writebatch_count(wb), err);
		rocksdb_free(err);
		return -EIO;
	}
	return 0;
}

int
db_meta_get_u64(struct db *db, const char *name, uint64_t *val)
{
	char *err = NULL;
	size_t len;
	char *v;

	v = rocksdb_get_cf(db->rocks, db->ropts, db->cf[DB_CF_META], name, strlen(name), &len,
			   &err);
	if (err != NULL) {
		LOG(ERR, STORAGE, "reading meta %s: %s", name, err);
		rocksdb_free(err);
		return -EIO;
	}
	if (v == NULL)
		return -ENOENT;
	if (len != 8) {
		rocksdb_free(v);
		return -EBADMSG;
	}
	*val = be_get64(v);
	rocksdb_free(v);
	return 0;
}

int
db_meta_put_u64(struct db *db, const char *name, uint64_t val)
{
	rocksdb_writebatch_t *wb;
	unsigned char b[8];
	int rc;

	be_put64(b, val);
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_put_cf(wb, db->cf[DB_CF_META], name, strlen(name), (const char *)b, 8);
	rc = db_write(db, wb, true);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

static void
make_options(struct db *db, const struct db_config *cfg)
{
	size_t cache = cfg != NULL && cfg->block_cache_bytes ? cfg->block_cache_bytes
							      : DEFAULT_CACHE_BYTES;

	db->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(db->opts, 1);
	rocksdb_options_set_create_missing_column_families(db->opts, 1);
	rocksdb_options_set_paranoid_checks(db->opts, 1);
	rocksdb_options_increase_parallelism(db->opts, 2);
	rocksdb_options_set_max_background_jobs(db->opts, 2);
	rocksdb_options_set_max_open_files(db->opts, 512);
	rocksdb_options_set_keep_log_file_num(db->opts, 4);
	rocksdb_options_set_max_log_file_size(db->opts, 8u << 20);
	rocksdb_options_set_max_total_wal_size(db->opts, 256u << 20);
	rocksdb_options_set_write_buffer_size(db->opts, 16u << 20);
	db->cache = rocksdb_cache_create_lru(cache);
	db->bbto = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(db->bbto, db->cache);
	rocksdb_options_set_block_based_table_factory(db->opts, db->bbto);

	db->ropts = rocksdb_readoptions_create();
	db->wsync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(db->wsync, 1);
	db->wnosync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(db->wnosync, 0);
}

static void
free_options(struct db *db)
{
	rocksdb_writeoptions_destroy(db->wnosync);
	rocksdb_writeoptions_destroy(db->wsync);
	rocksdb_readoptions_destroy(db->ropts);
	rocksdb_options_destroy(db->opts);
	rocksdb_block_based_options_destroy(db->bbto);
	rocksdb_cache_destroy(db->cache);
}

/* Names to open: "default", the families on disk, then ours not yet there.
 * Returns the count, or -1 when there are too many. <names> point into
 * <disk> or static strings. */
static int
family_list(char **disk, size_t ndisk, const char **names)
{
	int n = 0;

	names[n++] = "default";
	for (size_t i = 0; i < ndisk; i++) {
		if (strcmp(disk[i], "default") == 0)
			continue;
		if (n == MAX_FAMILIES)
			return -1;
		names[n++] = disk[i];
	}
	for (int c = 0; c < DB_CF_MAX; c++) {
		int j;

		for (j = 0; j < n && strcmp(names[j], cf_names[c]) != 0; j++)
			;
		if (j < n)
			continue;
		if (n == MAX_FAMILIES)
			return -1;
		names[n++] = cf_names[c];
	}
	return n;
}

/* Checks or writes schema version and node id. 0 or -1 with <errbuf> set. */
static int
check_meta(struct db *db, const char *dir, const struct db_config *cfg, char *errbuf,
	   size_t errlen)
{
	uint64_t want = cfg != NULL ? cfg->node_id : 0;
	rocksdb_writebatch_t *wb;
	unsigned char b[8];
	int rc;

	rc = db_meta_get_u64(db, "schema_version", &db->schema);
	if (rc == 0) {
		if (db->schema > DB_SCHEMA_VERSION) {
			errmsg_set(errbuf, errlen,
			       "database %s has schema version %llu, newer than the %d this "
			       "parleyd understands: run a newer parleyd or point storage at "
			       "another directory", dir, (unsigned long long)db->schema,
			       DB_SCHEMA_VERSION);
			return -1;
		}
		rc = db_meta_get_u64(db, "node_id", &db->node_id);
		if (rc != 0) {
			errmsg_set(errbuf, errlen, "database %s: meta node_id unreadable (%s)", dir,
			       strerror(-rc));
			return -1;
		}
		if (want != 0 && want != db->node_id) {
			errmsg_set(errbuf, errlen,
			       "database %s belongs to node %llu, configured node id is %llu: "
			       "fix the config or use another directory", dir,
			       (unsigned long long)db->node_id, (unsigned long long)want);
			return -1;
		}
		return 0;
	}
	if (rc != -ENOENT) {
		errmsg_set(errbuf, errlen, "database %s: meta schema_version unreadable (%s)", dir,
		       strerror(-rc));
		return -1;
	}

	/* New database: stamp it. */
	db->schema = DB_SCHEMA_VERSION;
	db->node_id = want;
	while (db->node_id == 0) {
		if (RAND_bytes(b, sizeof(b)) != 1) {
			errmsg_set(errbuf, errlen, "cannot draw a random node id (OpenSSL RAND_bytes)");
			return -1;
		}
		db->node_id = be_get64(b) >> 1;	/* fits an int64 for the control JSON */
	}
	wb = rocksdb_writebatch_create();
	be_put64(b, db->schema);
	rocksdb_writebatch_put_cf(wb, db->cf[DB_CF_META], "schema_version", 14, (const char *)b, 8);
	be_put64(b, db->node_id);
	rocksdb_writebatch_put_cf(wb, db->cf[DB_CF_META], "node_id", 7, (const char *)b, 8);
	rc = db_write(db, wb, true);
	rocksdb_writebatch_destroy(wb);
	if (rc != 0) {
		errmsg_set(errbuf, errlen, "database %s: cannot write meta (disk full or read-only?)",
		       dir);
		return -1;
	}
	return 0;
}

struct db *
db_open(const char *dir, const struct db_config *cfg, char *errbuf, size_t errlen)
{
	const rocksdb_options_t *fopts[MAX_FAMILIES];
	const char *names[MAX_FAMILIES];
	char **disk = NULL;
	size_t ndisk = 0;
	char *err = NULL;
	struct db *db;
	int n;

	db = calloc(1, sizeof(*db));
	if (db != NULL && (db->acked = acked_create()) == NULL) {
		free(db);
		db = NULL;
	}
	if (db == NULL) {
		errmsg_set(errbuf, errlen, "out of memory opening %s", dir);
		return NULL;
	}
	make_options(db, cfg);

	disk = rocksdb_list_column_families(db->opts, dir, &ndisk, &err);
	if (err != NULL) {
		/* No database there yet: every family gets created. (RocksDB
		 * still hands back an empty array to free.) */
		rocksdb_free(err);
		err = NULL;
		if (disk != NULL)
			rocksdb_list_column_families_destroy(disk, 0);
		disk = NULL;
		ndisk = 0;
	}
	n = family_list(disk, ndisk, names);
	if (n < 0) {
		errmsg_set(errbuf, errlen, "database %s has more than %d column families", dir,
		       MAX_FAMILIES);
		goto out_free_list;
	}
	for (int i = 0; i < n; i++)
		fopts[i] = db->opts;
	db->rocks = rocksdb_open_column_families(db->opts, dir, n, names, fopts, db->handles,
						 &err);
	if (err != NULL) {
		errmsg_set(errbuf, errlen, "cannot open database %s: %s (check the path, its "
		       "permissions, and that no other parleyd holds its LOCK)", dir, err);
		rocksdb_free(err);
		goto out_free_list;
	}
	db->nhandles = n;
	for (int c = 0; c < DB_CF_MAX; c++)
		for (int i = 0; i < n; i++)
			if (strcmp(names[i], cf_names[c]) == 0)
				db->cf[c] = db->handles[i];
	if (disk != NULL)
		rocksdb_list_column_families_destroy(disk, ndisk);
	disk = NULL;

	if (check_meta(db, dir, cfg, errbuf, errlen) != 0)
		goto out_close;
	return db;

out_close:
	for (int i = 0; i < db->nhandles; i++)
		rocksdb_column_family_handle_destroy(db->handles[i]);
	rocksdb_close(db->rocks);
out_free_list:
	if (disk != NULL)
		rocksdb_list_column_families_destroy(disk, ndisk);
	free_options(db);
	acked_destroy(db->acked);
	free(db);
	return NULL;
}

void
db_close(struct db *db)
{
	rocksdb_flushoptions_t *fo;
	char *err = NULL;

	if (db == NULL)
		return;
	fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	for (int c = 0; c < DB_CF_MAX; c++) {
		rocksdb_flush_cf(db->rocks, fo, db->cf[c], &err);
		if (err != NULL) {
			LOG(WARNING, STORAGE, "flush of %s on close failed: %s (the WAL still "
			    "holds it)", cf_names[c], err);
			rocksdb_free(err);
			err = NULL;
		}
	}
	rocksdb_flushoptions_destroy(fo);
	for (int i = 0; i < db->nhandles; i++)
		rocksdb_column_family_handle_destroy(db->handles[i]);
	rocksdb_close(db->rocks);
	free_options(db);
	acked_destroy(db->acked);
	free(db);
}

struct acked *
db_acked(const struct db *db)
{
	return db->acked;
}
