/* Compliance export marks in a node array: the last room seq of each room
 * whose CHAT events are in an export file of some node (README "Compliance
 * across nodes, the rule", part 1).
 *
 *	<prefix>/exported/<room id> = {"node":N,"seq":S[,"cut":L]}
 *
 * <node> is the node that wrote the value last, <seq> the highest room seq
 * exported. <cut>, above <seq>, is where the room's home said, before it
 * renamed its files of the room's events from S + 1 on, that its last one
 * ends (README "Compliance across nodes", part 5): if it died before it
 * recorded them, the next home cuts its copy files there and so writes the
 * same files again. A record clears the cut once the seq reaches it; a new
 * cut replaces an older one (only the latest writer's files can be
 * unrecorded). No lease: the mark outlives its writer, so the room's next home
 * knows where the dead one stopped. The mark only moves up: a record of a
 * seq at or below the present mark changes nothing (a batch written again
 * after a crash between the etcd write and the local checkpoint). The write
 * is a compare-and-set on the key's mod_revision, retried a few times when
 * another node moved it in between.
 *
 * The exporter (storage/export.h room_mark) calls cmark_cut before it
 * renames a batch's files of a room homed here, and cmark_record after
 * they are renamed and fsynced and before its checkpoint moves;
 * an etcd that does not answer fails the run, which the exporter retries
 * with backoff (the log stays unexported meanwhile, bounded by
 * [compliance] cap_events).
 *
 * Threads: one cmark is used by one thread at a time (it owns an etcd
 * client); cmark_parse and cmark_format are pure. */
#ifndef PARLEY_CMARK_H
#define PARLEY_CMARK_H

#include <stddef.h>
#include <stdint.h>

struct cmark;

#define CMARK_VALUE_MAX	96

struct cmark_val {
	uint64_t	node;
	uint64_t	seq;	/* 0: none exported yet */
	uint64_t	cut;	/* 0: none pending; else above seq */
};

/* Reads a mark's value (<len> bytes, not NUL-terminated) into *<out>: 0,
 * or -EINVAL for anything else than a JSON object with "node"
 * (1..2^32-1), "seq" and optionally "cut" as non-negative integers, of
 * which "seq" or "cut" is at least 1. A cut at or below the seq reads as
 * 0. */
int cmark_parse(const char *v, size_t len, struct cmark_val *out);

/* Writes <m> into <buf> (at least CMARK_VALUE_MAX bytes; the cut only when
 * above the seq); its length. */
size_t cmark_format(char *buf, size_t cap, const struct cmark_val *m);

/* A writer for node <node_id> under <prefix> ("/parley/example.com") with
 * its own etcd client of <endpoints> and <timeout_ms> per request. NULL
 * with the reason in <err>. Boot only. */
struct cmark *cmark_open(const char *endpoints, const char *prefix, uint64_t node_id,
			 unsigned timeout_ms, char *err, size_t errlen);
/* Accepts NULL. */
void cmark_close(struct cmark *m);

/* Raises the mark of room <room> (16 raw GUID bytes) to <seq> unless it is
 * there already or higher (a cut above <seq> stays); only while the room's
 * home key names this node (or there is none: a room deleted), in one
 * transaction with the home key unchanged. 0, -ESTALE (another node homes
 * the room), or a negative errno of etcd.h (logged with the reason). Has
 * the signature of export_config.room_mark (<arg> is the cmark). */
int cmark_record(void *arg, const uint8_t *room, uint64_t seq);

/* Sets the cut of room <room> at <last> (replacing another), unless <last>
 * is at or below its seq or the cut is there already; under the same
 * conditions and with the same results as cmark_record.
 * export_config.room_cut. */
int cmark_cut(void *arg, const uint8_t *room, uint64_t last);

/* export_config.room_home: who homes <room> now (<prefix>/homes/<id>,
 * control/homes.h): EXPORT_HOME_HERE, EXPORT_HOME_OTHER or -EAGAIN (no
 * key), and its mark in *<mark> (0: none) and *<cut> (0: none). Other
 * errors as etcd.h. */
int cmark_home(void *arg, const uint8_t *room, uint64_t *mark, uint64_t *cut);

/* The mark of <room> (the id string) into *<seq> (0: none yet). 0 or a
 * negative errno of etcd.h (-EPROTO for a value cmark_parse refuses). */
int cmark_read(struct cmark *m, const char *room, uint64_t *seq);

#endif
