/* The compliance exporter's internals, shared by export.c (runs, the
 * output directory, attachments, the thread) and export_xml.c (the XML
 * files). Not for other modules: they see export.h. */
#ifndef PARLEY_EXPORT_INT_H
#define PARLEY_EXPORT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/export.h"
#include "storage/wal.h"

#define ADAPTER_MAX	64
#define SEQ_DIGITS	20
#define ATTACH_DIR	"Attachment"
#define TMP_PREFIX	".tmp-"
#define WBUF_LEN	(64u << 10)
#define TICKS_1970	621355968000000000ull
#define MS_YEAR_10000	253402300800000ull	/* .NET DateTime ends before year 10000 */
#define META_INTENT	"compliance.export_batch"	/* first | last, big-endian */

struct export_shared {
	int		last_err;
	uint64_t	last_err_seq;
	char		last_err_text[EXPORT_ERRTEXT_MAX];
	uint64_t	consecutive_failures;
	uint64_t	runs;
	uint64_t	files_written;
	uint64_t	attachments_copied;
	uint64_t	events_exported;
	uint64_t	last_success_ms;
	uint64_t	failing_since_ms;	/* first failure of the current run of them */
};

struct export {
	struct db		*db;
	char			*output_dir;
	char			*files_dir;
	char			*adapter;
	char			*name_attr;
	uint64_t		node_id;
	unsigned		interval_s;
	unsigned		retry_min_ms;
	unsigned		retry_max_ms;
	uint64_t		max_events;
	size_t			max_bytes;
	bool			per_room;
	bool			hold_unsettled;
	uint64_t		own_from;	/* first log seq of this process */
	int			(*room_mark)(void *arg, const uint8_t *room, uint64_t last_seq);
	void			*room_mark_arg;
	int			(*room_home)(void *arg, const uint8_t *room, uint64_t *mark,
					     uint64_t *cut);
	int			(*room_cut)(void *arg, const uint8_t *room, uint64_t last_seq);

	pthread_mutex_t		run_mu;		/* one run at a time */

	pthread_mutex_t		st_mu;		/* held only to copy <sh> in or out */
	struct export_shared	sh;

	pthread_mutex_t		thr_mu;
	pthread_cond_t		thr_cv;
	pthread_t		thread;
	bool			running;	/* under thr_mu */
	bool			stop;		/* under thr_mu */
};

/* One event of the batch; the strings are offsets into batch.bytes, which
 * moves when it grows. */
struct ev {
	uint64_t	seq;
	uint64_t	ts_ms;
	uint64_t	msg_id;
	enum wal_event	type;
	uint8_t		room[WAL_ROOM_RAW];
	size_t		uri_off, uri_len;
	size_t		user_off, user_len;
	size_t		content_off, content_len;
};

struct batch {
	struct ev	*ev;
	size_t		n, cap;
	char		*bytes;
	size_t		blen, bcap;
	size_t		*order;		/* ev indices by room, room URI, seq */
};

/* A file of ours found in the output directory at the start of a run. */
struct found {
	uint64_t	first, last;
	bool		per_room;
	char		*name;
};

/* A room's home as one run saw it first (export.h room_home). */
struct roomhome {
	uint8_t		room[WAL_ROOM_RAW];
	int		home;		/* EXPORT_HOME_* or -errno */
	uint64_t	mark;
	uint64_t	cut;		/* above mark, or 0 */
	bool		log_pass;	/* asked again for the log pass */
	bool		gone;		/* no home and not in the catalog: deleted */
};

/* A void range of this node's own log (storage/commit.h
 * COMMIT_REPLICA_TRUNCATE): the CHAT events of <room> logged before
 * <log_next> with a room seq at or above <from>. */
struct voidrange {
	uint8_t		room[WAL_ROOM_RAW];
	uint64_t	log_next;
	uint64_t	from;
};

struct run {
	struct export	*e;
	struct roomhome	*rh;
	size_t		nrh;
	struct voidrange *voids;
	size_t		nvoids;
	bool		log_pass;	/* the copies pass is done */
	uint64_t	copies;		/* replica copies exported */
	int		dirfd;		/* output_dir */
	int		adirfd;		/* output_dir/Attachment, -1 until needed */
	struct found	*found;
	size_t		nfound, capfound;
	struct batch	b;
	bool		has_intent;
	uint64_t	intent_first, intent_last;
	char		*iobuf;		/* WBUF_LEN, for copying attachments */
	int		err;		/* the first failure */
	uint64_t	err_seq;
	char		text[EXPORT_ERRTEXT_MAX];
	uint64_t	files, attachments, events;
};

struct wbuf {
	int		fd;
	int		err;		/* sticky -errno */
	size_t		n;
	char		buf[WBUF_LEN];
};

const char *export_errstr(int err, char *buf, size_t len);
/* Records the run's first failure (logged); returns <err>. */
int export_run_fail(struct run *r, int err, uint64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void export_file_prefix(const struct export *e, char *buf, size_t len);
/* fsync <fd>, close it, rename <tmp> to <name> in <dirfd>, fsync <dirfd>. */
int export_sync_close_rename(int dirfd, int fd, const char *tmp, const char *name);
/* Adds <rec> to <b>. 0 or -ENOMEM. */
int export_batch_add(struct batch *b, const struct wal_rec *rec);
/* The home of <room> for this run (asked once per run). 0 with *<home>,
 * *<mark> and *<cut> (NULL: not wanted), or EXPORT_ROOM_GONE with them for a room deleted (no home,
 * not in the catalog: EXPORT_HOME_HERE for the log, whose events nobody
 * else has); -EAGAIN when it has no home at the moment; or another -errno
 * (recorded). */
#define EXPORT_ROOM_GONE	1
int export_room_home(struct run *r, const uint8_t *room, int *home, uint64_t *mark,
		     uint64_t *cut);
/* export.h room_mark: once per room with CHAT events in the collected
 * batch, its highest room seq (export_copies.c). */
int export_record_marks(struct run *r);
/* Reads the void ranges that still void events at or after the checkpoint
 * <ckpt> into r->voids, and deletes the others (export_copies.c). */
int export_voids_load(struct run *r, uint64_t ckpt);
/* Whether the CHAT event <rec> (from the log) is void: never acknowledged,
 * its room seq numbered anew by a later home. */
bool export_void(const struct run *r, const struct wal_rec *rec);
/* Exports the replica copies of the rooms homed here (export_copies.c). */
int export_copies(struct run *r);
/* Writes the collected batch into one file <name> and syncs the directory
 * (export_xml.c). */
int export_write_one(struct run *r, const char *name);
/* Writes the XML file(s) of the collected batch [first, last] (export_xml.c). */
int export_write_batch(struct run *r, uint64_t first, uint64_t last, bool fixed);

#endif
