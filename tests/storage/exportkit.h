/* What the compliance exporter's tests (test_export.c, test_export_array.c)
 * share: the `export` suite's fixture (a fresh database, an output and a file
 * store directory per test; defined in exportkit.c), writing events to the
 * log, and reading the XML output back against tests/data/compliance.xsd.
 *
 * Events written here get ts = EK_T0 + seq * EK_TS_STEP ms, so every message
 * in the output maps back to its seq through since1970. */
#ifndef PARLEY_TESTS_EXPORTKIT_H
#define PARLEY_TESTS_EXPORTKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/catalog.h"
#include "storage/wal.h"

#define EK_T0		1700000000000ull
#define EK_TS_STEP	1001
#define EK_TICKS_1970	621355968000000000ull
#define EK_NROOMS	3
#define EK_USERS	3

struct db;
struct export;

struct ek_room {
	char		id[CATALOG_ID_LEN + 1];
	uint8_t		raw[CATALOG_ID_RAW];
	char		uri[128];
	const char	*name;		/* NULL: not in the catalog */
	bool		logged;
};

/* What was logged, by seq (index seq - 1). */
struct ek_exp {
	enum wal_event	type;
	int		room;
	const char	*user;
	char		*content;	/* as logged */
	size_t		clen;
	char		*want;		/* as it must read back from the XML */
	uint64_t	msg_id;
};

/* One Message of the output, with its Channel's attributes. */
struct ek_msg {
	char		type[16];
	char		*content;
	long long	id;
	bool		upper;		/* UserName rather than userName */
	char		*uname, *email, *suri;
	long long	sid;
	char		*internal;
	uint64_t	ms;
	char		*room_uri, *chan_name, *islogged;
	char		file[300];
};

struct ek_parsed {
	struct ek_msg	*m;
	size_t		n;
	char		**names;	/* the .xml files, sorted */
	size_t		nfiles;
};

/* The compliance records of the log, as stored (ek_save_log). */
struct ek_saved {
	char	**v;
	size_t	*len;
	uint64_t n;
};

/* Set up before each test of the suite: the database, <ek_root> with
 * <ek_out> (output_dir) and <ek_files> (files_dir) in it. <ek_ex> is the
 * exporter of ek_new_exporter(), destroyed after the test. */
extern char ek_root[256], ek_out[320], ek_files[320];
extern struct export *ek_ex;
extern struct db *ek_db;
extern struct ek_room ek_rooms[EK_NROOMS];	/* filled by ek_make_rooms() */
extern struct ek_exp *ek_exps;			/* what was logged, by seq - 1 */
extern uint64_t ek_nexp;			/* the last seq logged */
extern uint64_t ek_room_seq[EK_NROOMS];		/* the last CHAT msg id per room */
extern const char *const ek_users[EK_USERS];

/* ---- writing events ---- */

/* Three rooms: "Room A" (logged), one with markup in its name (not logged),
 * and one not in the catalog. */
void ek_make_rooms(void);
/* Writes what ek_log_*() buffered, synced. */
void ek_flush_events(void);
/* Logs one event with the next seq in <room> by ek_users[<user>] (buffered
 * until ek_flush_events); <want> (NULL: <content>) is how it must read back
 * from the XML. Returns the seq. */
uint64_t ek_log_ev(enum wal_event t, int room, int user, const char *content, size_t clen,
		   const char *want);
void ek_log_text(enum wal_event t, int room, int user, const char *content);
/* Puts a file of <size> bytes into the file store and logs its FILEUPLOAD. */
void ek_log_upload(int room, int user, const char *name, size_t size);
/* <n> events cycling through every event type and room, flushed. */
void ek_log_mix(unsigned n);
/* Replaces ek_ex by a new exporter of ek_db into ek_out (retries 20..100 ms). */
void ek_new_exporter(bool per_room, const char *attr, uint64_t max_events);
/* The log's compliance checkpoint. */
uint64_t ek_checkpoint(void);

/* ---- reading the output ---- */

/* Validates and reads every .xml file of <dirpath>, in name order, into <p>
 * (free with ek_parsed_free). */
void ek_parse_dir(struct ek_parsed *p, const char *dirpath);
void ek_parsed_free(struct ek_parsed *p);
/* The seq a message was logged under (from its time). */
uint64_t ek_seq_of(const struct ek_msg *m);
/* Compares a message with what was logged under <seq>. */
void ek_check_fields(const struct ek_msg *m, uint64_t seq, bool upper);
/* Every seq in [<from>, <to>] exactly once across all files, nothing else. */
void ek_assert_exactly_once(const struct ek_parsed *p, uint64_t from, uint64_t to, bool upper);
/* One export run that takes <n> events, after which <where> holds events
 * <first>..<last> exactly once each. */
void ek_export_expect(int n, const char *where, uint64_t first, uint64_t last, bool upper);
/* The name of this node's file for seqs <first>..<last> (of <room>, if not NULL). */
void ek_file_name(char *buf, size_t len, uint64_t first, uint64_t last, const char *room);
/* The whole file at <path> (free it), its length in <len>. */
char *ek_slurp(const char *path, size_t *len);
/* Entries of <dirpath> whose name starts with <prefix>. */
unsigned ek_count_entries(const char *dirpath, const char *prefix);

/* ---- raw access to the log, for crashes and corruption ---- */

/* The log as it is before an export ... */
void ek_save_log(struct ek_saved *s);
/* ... and put back after it: the state of a crash after the files were
 * renamed and before the checkpoint moved (and so before the trim). */
void ek_restore_log(struct ek_saved *s);
/* Stores <len> bytes at <v> as compliance record <seq>, synced. */
void ek_raw_put(uint64_t seq, const void *v, size_t len);
/* Compliance record <seq> as stored (rocksdb_free it); it must exist. */
char *ek_raw_get(uint64_t seq, size_t *len);

#endif
