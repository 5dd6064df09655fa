/* The compliance exporter: turns the compliance log (wal.h) into the XML
 * files of xccos.md §d.2, with a copy of every uploaded file in
 * <output_dir>/Attachment/ (§d.3), exactly once.
 *
 * One export batch is a contiguous seq range [first, last] of the log, read
 * from the checkpoint. Its events become one file, or with per_room_files
 * one file per room:
 *
 *	<adapter>_<node>_<first:020>-<last:020>.xml
 *	<adapter>_<node>_<first:020>-<last:020>_<room-id>.xml	(per room)
 *
 * <node> is the node id in decimal, the seqs are zero-padded to 20 digits
 * (so the names sort by seq), <room-id> is the lower-case room GUID. The file
 * holds nothing that depends on when it was written, so writing a batch
 * again gives the same names and the same bytes.
 *
 * Order of a batch, each step durable before the next:
 *   0. its range is recorded in the meta family ("compliance.export_batch",
 *      first | last, 16 bytes big-endian);
 *   1. every FILEUPLOAD's file is copied from <files_dir>/<room-id>/<name>
 *      to <output_dir>/Attachment/<name> (temp name, fsync, rename, fsync
 *      of the directory); a copy already there with the source's size is
 *      kept (an earlier attempt made it);
 *   2. the XML files are written to ".tmp-<name>" in <output_dir>, fsynced,
 *      renamed, and <output_dir> is fsynced;
 *   3. the checkpoint advances past <last> (wal_checkpoint_advance) and
 *      the exported records are trimmed (wal_trim).
 * A crash between 2 and 3 leaves files whose first seq is the checkpoint.
 * The next run exports exactly their range again, rewriting the same names
 * with the same bytes: nothing is lost, nothing doubled. It takes the range
 * from a file of ours in <output_dir> that starts at the checkpoint, else
 * from the range recorded in step 0 (the files may already have been taken
 * away by the archiver), and a new batch never runs into the range of a
 * file of ours that is still there. A consumer must therefore treat a file
 * that arrives again under a name it has seen as a replacement (the bytes
 * are the same unless the room was renamed in between: Channel name is
 * read from the catalog at export time).
 *
 * Failures stop the run before the checkpoint moves, and the next run (the
 * thread retries with exponential backoff) starts over from the checkpoint:
 *   - <output_dir> missing (it is never created here: a missing mount must
 *     not be replaced by a local directory), unwritable or full;
 *   - an attachment's source file missing or unreadable: never skipped,
 *     because the archive would then name a file it does not hold;
 *   - a FILEUPLOAD whose content is not a plain file name (contains '/',
 *     is "." or "..", or is empty): reported with its seq, not copied;
 *   - a torn or corrupt record (wal_iter_next error): the events before it
 *     are exported, the checkpoint stops at its seq, and the error and seq
 *     are logged and kept in the status (last_err and friends describe
 *     the most recent failure and stay after recovery; consecutive_failures
 *     says whether it is current).
 *
 * Field mapping (§d.2): Channel name is the room's catalog name and
 * islogged its "logged" property; a room missing from the catalog gets its
 * URI as name and islogged="". The sender's name is the user part of the
 * SIP URI (the users family has no display names yet); its id is
 * export_user_id() of the URI; email is user@domain when the URI has an
 * '@'; internal is "true"; uri is the SIP URI without "sip:"/"sips:".
 * Message id is the room seq for CHAT and 0 otherwise. Text that XML 1.0
 * cannot carry (control characters other than tab, LF, CR; invalid UTF-8;
 * U+FFFE/U+FFFF) is written as U+FFFD. Conversations (one per room with
 * activity in the batch) are ordered by room id, messages by seq.
 *
 * In a node array (room_home set; README "Compliance across nodes"): a
 * room's CHAT events are exported by its home. A run first exports, for
 * each room homed here, the copies this node keeps as a replica (the
 * commit.h "rcmp/" keys) above the room's mark, into
 *
 *	<adapter>_<home>_<room-id>_<first:020>-<last:020>.xml
 *
 * (<home>: the node that sequenced them, <first>-<last>: room seqs; the
 * same XML; at most max_events_per_file copies from the mark + 1 on, cut
 * also where the home changes), records the mark and deletes those copies;
 * copies at or below the mark are deleted on every node (exported by
 * someone). Then the log as above, except that the CHAT events of the
 * rooms homed here go into files named the same way (<home> this node, per
 * room, at most max_events_per_file from the room's first event in the
 * batch, which follows its mark), with the same bytes as a copies pass
 * writes for the same events: a file renamed here and not recorded is
 * written again by the room's next home under its name (room_cut records,
 * before the renames, where this node's last file of the room ends, and
 * the next home's copy files end there too). A CHAT event of a room homed
 * here at or below its mark is left out (someone's recorded file holds
 * it). A CHAT event of a
 * room another node homes now is left out (that node exports it from its copy: it is the replica that
 * took the room over, or this node drained it), and one of a room with no
 * home at the moment fails the run until the room has one again (a room
 * gone from the catalog excepted: exported here).
 *
 * Threads: one exporter per database. export_run_once() may be called from
 * any thread (calls are serialised); export_status() from any thread at any
 * time: it reads the database and a small record that the exporter locks
 * only to copy a few fields in. */
#ifndef PARLEY_EXPORT_H
#define PARLEY_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct export;

#define EXPORT_ADAPTER_DEFAULT		"parley"
#define EXPORT_INTERVAL_DEFAULT_S	60
#define EXPORT_MAX_EVENTS_DEFAULT	100000
#define EXPORT_MAX_BYTES_DEFAULT	(64u << 20)	/* record bytes per batch */
#define EXPORT_RETRY_MIN_DEFAULT_MS	1000
#define EXPORT_RETRY_MAX_DEFAULT_MS	60000
#define EXPORT_ERRTEXT_MAX		256

struct export_config {
	const char	*output_dir;		/* required; must exist */
	const char	*files_dir;		/* required: <files_dir>/<room-id>/<name> */
	unsigned	interval_s;		/* thread period; 0: EXPORT_INTERVAL_DEFAULT_S */
	bool		per_room_files;
	const char	*sender_name_attr;	/* "userName" (NULL: default) or "UserName" */
	uint64_t	node_id;		/* 0: db_node_id() */
	const char	*adapter;		/* file name prefix; NULL: "parley" */
	unsigned	retry_min_ms;		/* 0: EXPORT_RETRY_MIN_DEFAULT_MS */
	unsigned	retry_max_ms;		/* 0: EXPORT_RETRY_MAX_DEFAULT_MS */
	uint64_t	max_events_per_file;	/* 0: EXPORT_MAX_EVENTS_DEFAULT */
	size_t		max_bytes_per_file;	/* 0: EXPORT_MAX_BYTES_DEFAULT */
	/* In a node array: after a batch's files are renamed and fsynced and
	 * before the checkpoint moves, called once for each room with CHAT
	 * events in the batch, with the room's raw id (16 bytes) and the
	 * highest room seq among them. Nonzero fails the run (the checkpoint
	 * stays; the batch is written again on retry). NULL: not called. On
	 * the exporter's thread, one call at a time. */
	int		(*room_mark)(void *arg, const uint8_t *room, uint64_t last_seq);
	void		*room_mark_arg;
	/* In a node array (with room_mark; same <arg>): who homes room
	 * <room> now: EXPORT_HOME_HERE, EXPORT_HOME_OTHER or -EAGAIN (no
	 * home at the moment), with the room's export mark in *<mark> (0:
	 * none) and a cut above it in *<cut> (0: none, see room_cut; the
	 * caller zeroes it); another negative errno: cannot tell. See "In a node array"
	 * above. NULL: not in an array. */
	int		(*room_home)(void *arg, const uint8_t *room, uint64_t *mark,
				     uint64_t *cut);
	/* In a node array (with room_mark; same <arg>): before the first of
	 * a batch's files that hold CHAT events of room <room> (homed here)
	 * is renamed, called with the highest room seq among them: where the
	 * room's next home is to cut its copy files if this node dies before
	 * room_mark (*<cut> of room_home; 0 there: none). Nonzero fails the
	 * run. NULL: not called. */
	int		(*room_cut)(void *arg, const uint8_t *room, uint64_t last_seq);
	/* In a node array (with room_mark): a room homed here has its own
	 * CHAT events exported only up to the seq its home settled (answered
	 * and delivered, or refused: storage/acked.h, db_acked), for events
	 * logged after export_create; a batch ends before the first one
	 * above it, and the rest waits for the next run. So a home never
	 * exports a post that its replica did not acknowledge before it died
	 * (its next home numbers that seq anew). */
	bool		hold_unsettled;
};

#define EXPORT_HOME_OTHER	0
#define EXPORT_HOME_HERE	1

struct export_status {
	uint64_t	checkpoint;		/* next seq to export */
	uint64_t	lag_events;		/* logged, not yet exported */
	uint64_t	lag_s;			/* age of the oldest unexported event */
	int		last_err;		/* 0 (never failed), or -errno of the latest failure */
	uint64_t	last_err_seq;		/* the record at fault, 0 if none */
	char		last_err_text[EXPORT_ERRTEXT_MAX];
	uint64_t	consecutive_failures;
	uint64_t	runs;			/* completed export_run_once calls */
	uint64_t	files_written;		/* XML files renamed into place */
	uint64_t	attachments_copied;
	uint64_t	events_exported;	/* events checkpointed by this exporter */
	uint64_t	last_success_ms;	/* Unix ms, 0: never */
	bool		running;		/* the thread is started */
};

/* Checks and copies <cfg> (the strings too). NULL with *err = -EINVAL (a
 * missing directory name, a sender_name_attr other than the two spellings,
 * an adapter name that is not [A-Za-z0-9.-]+, retry_min above retry_max)
 * or -ENOMEM. <db> must outlive the exporter. Boot only. */
struct export *export_create(struct db *db, const struct export_config *cfg, int *err);

/* Starts the thread: export_run_once() now and then every interval_s;
 * after a failure again after retry_min_ms, doubling up to retry_max_ms,
 * until a run succeeds. 0, -EALREADY, or -errno of pthread_create. */
int export_start(struct export *e);

/* Wakes and joins the thread (a run in progress finishes first). Does not
 * export what is left: call export_run_once() after the last event is
 * committed for that. Idempotent. */
void export_stop(struct export *e);

/* Stops if needed and frees. Accepts NULL. */
void export_destroy(struct export *e);

/* Exports every event from the checkpoint up to the end of the log as it
 * is when the call starts, in batches of at most max_events_per_file
 * events. Returns the number of events exported (and checkpointed), or
 * -errno of the first failure (batches before it stay exported; see the
 * status for the details). Any thread; calls are serialised. */
long export_run_once(struct export *e);

/* A snapshot of the status, from any thread, without waiting for a run.
 * The lag fields are read from the database; if that read fails they are
 * left 0 and the function returns -EIO, otherwise 0. */
int export_status(struct export *e, struct export_status *st);

/* The Sender id written for <uri> (<len> bytes, "sip:" optional): FNV-1a
 * 32 of the URI without scheme, ASCII lower-cased, with the top bit
 * cleared, and 0 mapped to 1. Stable across nodes and restarts, so a user
 * has the same id in every file; distinct users may collide (31 bits). */
uint32_t export_user_id(const char *uri, size_t len);

/* Writes <ms> (Unix ms) as the three forms of §d.2: "string" (ISO 8601,
 * 7 fractional digits, Z) into <iso> (at least 29 bytes) and .NET ticks
 * (unix_100ns + 621355968000000000) into *ticks. 0, or -EOVERFLOW for a
 * time gmtime cannot represent. */
int export_time_forms(uint64_t ms, char *iso, size_t isolen, uint64_t *ticks);

#endif
