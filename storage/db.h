/* The node's RocksDB database: one directory, one column family per table of
 * ARCHITECTURE.md "Storage" (users, catalog, history, compliance, prefs,
 * files, meta), opened together and created when missing.
 *
 * The meta family holds the schema version (big-endian u64 under
 * "schema_version") and the node id ("node_id"). A database written by a
 * newer schema than DB_SCHEMA_VERSION is refused, with a message that says
 * so, before anything is written to it.
 *
 * The WAL is always on. Writes that must survive a power cut (a post and its
 * compliance event, the export checkpoint, catalog changes) go through
 * db_write() with <sync> true, which fsyncs the WAL before returning.
 *
 * A struct db may be used from any thread (RocksDB is thread-safe); it must
 * outlive every user. Open and close belong to boot code. */
#ifndef PARLEY_DB_H
#define PARLEY_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

#define DB_SCHEMA_VERSION	1

enum db_cf {
	DB_CF_USERS = 0,
	DB_CF_CATALOG,
	DB_CF_HISTORY,
	DB_CF_COMPLIANCE,
	DB_CF_PREFS,
	DB_CF_FILES,
	DB_CF_META,
	DB_CF_MAX,
};

struct db_config {
	size_t		block_cache_bytes;	/* 0: 32 MiB, shared by all families */
	uint64_t	node_id;		/* 0: keep the stored one, or make one */
};

struct db;
struct acked;

/* Opens (creating if missing) the database in directory <dir>. <cfg> may be
 * NULL for defaults. A nonzero cfg->node_id is stored in a new database and
 * must match the stored one in an existing database. On failure returns NULL
 * and writes a sentence for the operator to <errbuf>. Boot only. */
struct db *db_open(const char *dir, const struct db_config *cfg, char *errbuf, size_t errlen);

/* Flushes every family's memtable to disk and closes. Accepts NULL. All
 * users (commit thread, iterators) must be gone. */
void db_close(struct db *db);

rocksdb_t *db_rocks(const struct db *db);
rocksdb_column_family_handle_t *db_cf(const struct db *db, enum db_cf cf);
const char *db_cf_name(enum db_cf cf);
uint64_t db_node_id(const struct db *db);
uint64_t db_schema_version(const struct db *db);
/* The database's table of what the rooms' homes made visible
 * (storage/acked.h), for the lcores and the exporter; lives as long as
 * the database. */
struct acked *db_acked(const struct db *db);

/* Shared default read options (no snapshot, checksums verified). */
const rocksdb_readoptions_t *db_ropts(const struct db *db);

/* Writes <wb> atomically. <sync> fsyncs the RocksDB WAL first: use it for
 * everything that "durable before visible" covers. 0 or -EIO (logged). */
int db_write(struct db *db, rocksdb_writebatch_t *wb, bool sync);

/* Ends a scan: destroys <it> and <ro> (NULL when the scan used db_ropts).
 * 0, or -EIO when the iterator met an error (logged as "<what> scan
 * failed"). */
int db_scan_end(rocksdb_iterator_t *it, rocksdb_readoptions_t *ro, const char *what);

/* Big-endian u64 under <name> in the meta family. get: 0, -ENOENT, -EBADMSG
 * (not 8 bytes) or -EIO. put: synchronous, 0 or -EIO. */
int db_meta_get_u64(struct db *db, const char *name, uint64_t *val);
int db_meta_put_u64(struct db *db, const char *name, uint64_t val);

/* The value encodings of storage/ are JSON: the compact, key-sorted text of
 * <o>, malloc'd (the caller frees it), its length in *<len> when <len> is
 * not NULL. Takes <o>'s reference; NULL when <o> is NULL or out of memory. */
struct json_t;
char *db_json_text(struct json_t *o, size_t *len);

#endif
