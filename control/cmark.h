/* Compliance export marks in a node array: the last room seq of each room
 * whose CHAT events are in an export file of some node (README "Compliance
 * across nodes, the rule", part 1).
 *
 *	<prefix>/exported/<room id> = {"node":N,"seq":S}
 *
 * <node> is the node that recorded the mark, <seq> the highest room seq it
 * exported. No lease: the mark outlives its writer, so the room's next home
 * knows where the dead one stopped. The mark only moves up: a record of a
 * seq at or below the present mark changes nothing (a batch written again
 * after a crash between the etcd write and the local checkpoint). The write
 * is a compare-and-set on the key's mod_revision, retried a few times when
 * another node moved it in between.
 *
 * The exporter (storage/export.h room_mark) calls cmark_record after a
 * batch's files are renamed and fsynced and before its checkpoint moves;
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

#define CMARK_VALUE_MAX	64

/* Reads a mark's value (<len> bytes, not NUL-terminated): 0 with *<node>
 * and *<seq>, or -EINVAL for anything else than a JSON object with
 * "node" (1..2^32-1) and "seq" (>= 1) as non-negative integers. */
int cmark_parse(const char *v, size_t len, uint64_t *node, uint64_t *seq);

/* Writes a mark's value into <buf> (at least CMARK_VALUE_MAX bytes); its
 * length. */
size_t cmark_format(char *buf, size_t cap, uint64_t node, uint64_t seq);

/* A writer for node <node_id> under <prefix> ("/parley/example.com") with
 * its own etcd client of <endpoints> and <timeout_ms> per request. NULL
 * with the reason in <err>. Boot only. */
struct cmark *cmark_open(const char *endpoints, const char *prefix, uint64_t node_id,
			 unsigned timeout_ms, char *err, size_t errlen);
/* Accepts NULL. */
void cmark_close(struct cmark *m);

/* Raises the mark of room <room> (16 raw GUID bytes) to <seq> unless it is
 * there already or higher; only while the room's home key names this node
 * (or there is none: a room deleted), in one transaction with the home key
 * unchanged. 0, -ESTALE (another node homes the room), or a negative errno
 * of etcd.h (logged with the reason). Has the signature of
 * export_config.room_mark (<arg> is the cmark). */
int cmark_record(void *arg, const uint8_t *room, uint64_t seq);

/* export_config.room_home: who homes <room> now (<prefix>/homes/<id>,
 * control/homes.h): EXPORT_HOME_HERE, EXPORT_HOME_OTHER or -EAGAIN (no
 * key), and its mark in *<mark> (0: none). Other errors as etcd.h. */
int cmark_home(void *arg, const uint8_t *room, uint64_t *mark);

/* The mark of <room> (the id string) into *<seq> (0: none yet). 0 or a
 * negative errno of etcd.h (-EPROTO for a value cmark_parse refuses). */
int cmark_read(struct cmark *m, const char *room, uint64_t *seq);

#endif
