/* The compliance exporter; see export.h for the file format, the order of
 * the steps and the guarantees.
 *
 * A run (export_run_once) holds run_mu for its whole length, so runs never
 * overlap; it reads the log with one wal_iter, keeps one batch of events in
 * memory (copied out of the iterator: conversations group events by room,
 * so the whole batch is needed before the first byte is written), writes
 * the attachments and the XML, then moves the checkpoint. Everything a run
 * allocates is freed before it returns.
 *
 * The status fields that only a run knows (errors, counters) live in
 * struct export_shared under st_mu, which a run takes only to copy them in;
 * the lag is read from the database by export_status() itself, so a reader
 * never waits for a run.
 *
 * Thread: sleeps on thr_cv (CLOCK_MONOTONIC) between runs, so export_stop()
 * wakes it at once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/base/be.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "storage/catalog.h"
#include "storage/acked.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/wal.h"

#include "storage/export_int.h"

const char *
export_errstr(int err, char *buf, size_t len)
{
	return strerror_r(err < 0 ? -err : err, buf, len);
}

/* Records the first failure of the run; later ones are consequences. */
int __attribute__((format(printf, 4, 5)))
export_run_fail(struct run *r, int err, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	if (r->err != 0)
		return r->err;
	r->err = err;
	r->err_seq = seq;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	LOG(ERR, COMPLIANCE, "export: %s", r->text);
	return err;
}

static bool
name_ok(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max || (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == '\0')
			return false;
	return true;
}

/* ---- the output directory ---- */

static int
parse_seq(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	for (int i = 0; i < SEQ_DIGITS; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return 0;
}

/* "<adapter>_<node>_" */
void
export_file_prefix(const struct export *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s_%" PRIu64 "_", e->adapter, e->node_id);
}

/* Lists our files whose first seq is at or past <ckpt>, and removes our
 * temporary files left by a crash (they were never renamed, so nobody
 * reads them). */
static int
scan_output(struct run *r, uint64_t ckpt)
{
	struct export *e = r->e;
	char prefix[ADAPTER_MAX + 32], tprefix[sizeof(prefix) + 8], eb[64];
	size_t plen, tplen;
	struct dirent *de;
	int fd;
	DIR *d;

	export_file_prefix(e, prefix, sizeof(prefix));
	snprintf(tprefix, sizeof(tprefix), TMP_PREFIX "%s", prefix);
	plen = strlen(prefix);
	tplen = strlen(tprefix);
	fd = openat(r->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		int err = -errno;

		if (fd != -1)
			close(fd);
		return export_run_fail(r, err, 0, "cannot list output directory %s: %s", e->output_dir,
				export_errstr(err, eb, sizeof(eb)));
	}
	for (;;) {
		const char *n, *t;
		struct found f = { 0 };
		size_t len;

		errno = 0;	/* readdir's only way to tell an error from the end */
		if ((de = readdir(d)) == NULL)
			break;
		n = de->d_name;
		len = strlen(n);
		if (strncmp(n, tprefix, tplen) == 0) {
			unlinkat(r->dirfd, n, 0);
			continue;
		}
		if (strncmp(n, prefix, plen) != 0 || len < plen + 2 * SEQ_DIGITS + 1 + 4)
			continue;
		t = n + plen;
		if (parse_seq(t, &f.first) != 0 || t[SEQ_DIGITS] != '-' ||
		    parse_seq(t + SEQ_DIGITS + 1, &f.last) != 0)
			continue;
		t += 2 * SEQ_DIGITS + 1;
		if (strcmp(t, ".xml") == 0)
			f.per_room = false;
		else if (t[0] == '_' && strlen(t) == 1 + CATALOG_ID_LEN + 4 &&
			 strcmp(t + 1 + CATALOG_ID_LEN, ".xml") == 0)
			f.per_room = true;
		else
			continue;
		if (f.first < ckpt || f.first > f.last)
			continue;
		if (r->nfound == r->capfound) {
			size_t cap = r->capfound ? 2 * r->capfound : 8;
			struct found *v = realloc(r->found, cap * sizeof(*v));

			if (v == NULL)
				goto nomem;
			r->found = v;
			r->capfound = cap;
		}
		f.name = strdup(n);
		if (f.name == NULL)
			goto nomem;
		r->found[r->nfound++] = f;
	}
	if (errno != 0) {
		int err = -errno;

		closedir(d);
		return export_run_fail(r, err, 0, "cannot list output directory %s: %s", e->output_dir,
				export_errstr(err, eb, sizeof(eb)));
	}
	closedir(d);
	return 0;

nomem:
	closedir(d);
	return export_run_fail(r, -ENOMEM, 0, "out of memory listing %s", e->output_dir);
}

/* Renames <tmp> to <name> in <dirfd> after syncing <fd>, which it closes. */
int
export_sync_close_rename(int dirfd, int fd, const char *tmp, const char *name)
{
	int err = 0;

	if (fsync(fd) == -1)
		err = -errno;
	if (close(fd) == -1 && err == 0)
		err = -errno;
	if (err == 0 && renameat(dirfd, tmp, dirfd, name) == -1)
		err = -errno;
	if (err != 0)
		unlinkat(dirfd, tmp, 0);	/* give the space back */
	return err;
}

/* ---- attachments ---- */

static int
open_attach_dir(struct run *r)
{
	struct export *e = r->e;
	char eb[64];
	int err;

	if (r->adirfd != -1)
		return 0;
	if (mkdirat(r->dirfd, ATTACH_DIR, 0755) == 0) {
		if (fsync(r->dirfd) == -1)	/* the new directory's entry */
			goto fail;
	} else if (errno != EEXIST) {
		goto fail;
	}
	r->adirfd = openat(r->dirfd, ATTACH_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->adirfd == -1)
		goto fail;
	return 0;

fail:
	err = -errno;
	return export_run_fail(r, err, 0, "cannot open %s/" ATTACH_DIR ": %s", e->output_dir,
			export_errstr(err, eb, sizeof(eb)));
}

static int
copy_fd(int in, int out, char *buf)
{
	for (;;) {
		ssize_t n = read(in, buf, WBUF_LEN), off = 0;

		if (n == 0)
			return 0;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (off < n) {
			ssize_t k = write(out, buf + off, (size_t)(n - off));

			if (k == -1) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			off += k;
		}
	}
}

/* Copies the file that FILEUPLOAD <ev> names into Attachment/. 1 when a
 * copy was made, 0 when an identical-size one was already there. */
static int
copy_attachment(struct run *r, const struct ev *ev)
{
	struct export *e = r->e;
	const char *name = r->b.bytes + ev->content_off;
	char id[CATALOG_ID_LEN + 1], eb[64], fname[NAME_MAX + 1], tmp[NAME_MAX + 64];
	char path[PATH_MAX];
	struct stat sst, dst;
	int in, out, rc;

	if (!name_ok(name, ev->content_len, NAME_MAX - 32))
		return export_run_fail(r, -EINVAL, ev->seq, "FILEUPLOAD seq %" PRIu64 ": content is not "
				"a repository file name; not copied, export stops here", ev->seq);
	memcpy(fname, name, ev->content_len);
	fname[ev->content_len] = '\0';
	catalog_id_unpack(ev->room, id);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", e->files_dir, id, fname) >=
	    sizeof(path))
		return export_run_fail(r, -ENAMETOOLONG, ev->seq, "attachment path too long for seq %"
				PRIu64, ev->seq);
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in == -1 || fstat(in, &sst) == -1)
		rc = -errno;
	else
		rc = S_ISREG(sst.st_mode) ? 0 : -EINVAL;
	if (rc != 0) {
		if (in != -1)
			close(in);
		return export_run_fail(r, rc, ev->seq, "attachment %s of FILEUPLOAD seq %" PRIu64
				" cannot be read (%s); export stops until it is there", path,
				ev->seq, export_errstr(rc, eb, sizeof(eb)));
	}
	if ((rc = open_attach_dir(r)) != 0)
		goto out_in;
	if (fstatat(r->adirfd, fname, &dst, 0) == 0 && S_ISREG(dst.st_mode) &&
	    dst.st_size == sst.st_size) {
		close(in);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%" PRIu64 "-%s", e->node_id, fname);
	out = openat(r->adirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out == -1) {
		rc = -errno;
		goto out_fail;
	}
	rc = copy_fd(in, out, r->iobuf);
	if (rc != 0) {
		close(out);
		unlinkat(r->adirfd, tmp, 0);
		goto out_fail;
	}
	rc = export_sync_close_rename(r->adirfd, out, tmp, fname);
	if (rc != 0)
		goto out_fail;
	close(in);
	return 1;

out_fail:
	export_run_fail(r, rc, ev->seq, "cannot copy attachment %s to %s/" ATTACH_DIR "/: %s", path,
		 e->output_dir, export_errstr(rc, eb, sizeof(eb)));
out_in:
	close(in);
	return rc;
}

static int
copy_attachments(struct run *r)
{
	bool copied = false;
	char eb[64];

	for (size_t i = 0; i < r->b.n; i++) {
		const struct ev *ev = &r->b.ev[i];
		int rc;

		if (ev->type != WAL_EV_FILEUPLOAD)
			continue;
		if (r->iobuf == NULL && (r->iobuf = malloc(WBUF_LEN)) == NULL)
			return export_run_fail(r, -ENOMEM, ev->seq, "out of memory copying attachments");
		rc = copy_attachment(r, ev);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			copied = true;
			r->attachments++;
		}
	}
	if (copied && fsync(r->adirfd) == -1) {
		int err = -errno;

		return export_run_fail(r, err, 0, "cannot sync %s/" ATTACH_DIR ": %s", r->e->output_dir,
				export_errstr(err, eb, sizeof(eb)));
	}
	return 0;
}

/* ---- collecting a batch ---- */

int
export_batch_add(struct batch *b, const struct wal_rec *rec)
{
	size_t need = rec->room_uri_len + rec->user_len + rec->content_len + 1;
	struct ev *ev;

	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		struct ev *v = realloc(b->ev, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		b->ev = v;
		b->cap = cap;
	}
	if (b->bcap - b->blen < need) {
		size_t cap = b->bcap ? 2 * b->bcap : 65536;
		char *v;

		while (cap - b->blen < need)
			cap *= 2;
		v = realloc(b->bytes, cap);
		if (v == NULL)
			return -ENOMEM;
		b->bytes = v;
		b->bcap = cap;
	}
	ev = &b->ev[b->n++];
	ev->seq = rec->seq;
	ev->ts_ms = rec->ts_ms;
	ev->msg_id = rec->msg_id;
	ev->type = rec->type;
	memcpy(ev->room, rec->room, WAL_ROOM_RAW);
#define TAKE(field, ptr, len) do {						\
		ev->field##_off = b->blen;					\
		ev->field##_len = (len);					\
		if ((len) > 0)							\
			memcpy(b->bytes + b->blen, (ptr), (len));		\
		b->blen += (len);						\
	} while (0)
	TAKE(uri, rec->room_uri, rec->room_uri_len);
	TAKE(user, rec->user, rec->user_len);
	TAKE(content, rec->content, rec->content_len);
#undef TAKE
	b->bytes[b->blen++] = '\0';	/* ends the content: attachment names use it */
	return 0;
}

static const struct found *
found_at(const struct run *r, uint64_t first)
{
	for (size_t i = 0; i < r->nfound; i++)
		if (r->found[i].first == first)
			return &r->found[i];
	return NULL;
}

/* Plans the batch starting at <cur>: its last seq, and whether an earlier
 * attempt fixes it (a file of ours that starts at <cur>, or else the range
 * recorded before that attempt wrote anything). */
static uint64_t
plan_last(const struct run *r, uint64_t cur, uint64_t end, bool *fixed)
{
	const struct found *f = found_at(r, cur);
	uint64_t last;

	*fixed = true;
	if (f != NULL)
		return f->last;
	if (r->has_intent && r->intent_first == cur && r->intent_last >= cur)
		return r->intent_last;
	*fixed = false;
	last = end - 1;
	if (last - cur >= r->e->max_events)
		last = cur + r->e->max_events - 1;
	for (size_t i = 0; i < r->nfound; i++)	/* never overlap an earlier attempt's file */
		if (r->found[i].first > cur && r->found[i].first <= last)
			last = r->found[i].first - 1;
	return last;
}

/* Reads [cur, *last] into r->b. On a bad record at S past <cur> (and no
 * fixed range) the batch is cut to [cur, S-1] and *stop holds the error,
 * already recorded; at an own CHAT event not settled yet (hold_unsettled)
 * it is cut before it and *held is set; returned errors leave nothing to
 * export. */
static int
collect(struct run *r, struct wal_iter *it, uint64_t cur, uint64_t *last, bool fixed,
	int *stop, bool *held)
{
	struct batch *b = &r->b;
	char eb[64], iso[40];
	uint64_t ticks;

	b->n = 0;
	b->blen = 0;
	for (uint64_t want = cur; want <= *last; want++) {
		struct wal_rec rec;
		int rc = wal_iter_next(it, &rec);

		if (rc == 1 && rec.seq != want)
			rc = -ENOENT;
		if (rc == 1 && export_time_forms(rec.ts_ms, iso, sizeof(iso), &ticks) != 0)
			rc = -EOVERFLOW;
		if (rc == 0)
			rc = -ENOENT;	/* shorter than wal_next_seq said: a record vanished */
		if (rc < 0) {
			export_run_fail(r, rc, want, "compliance record %" PRIu64 " cannot be exported (%s); "
				 "the checkpoint stays at or before it until it is repaired", want,
				 rc == -ENODATA ? "torn" : rc == -EOVERFLOW ?
				 "time out of range" : export_errstr(rc, eb, sizeof(eb)));
			if (fixed || b->n == 0)
				return rc;
			*last = want - 1;
			*stop = rc;
			return 0;
		}
		if (r->e->room_home != NULL && rec.type == WAL_EV_CHAT) {
			int home;
			uint64_t mark;

			if (export_void(r, &rec))
				continue;	/* never acknowledged; numbered anew */
			rc = export_room_home(r, rec.room, &home, &mark, NULL);
			if (rc == -EAGAIN) {
				char id[CATALOG_ID_LEN + 1];

				catalog_id_unpack(rec.room, id);
				return export_run_fail(r, rc, want, "room %s has no home at the "
						       "moment; its CHAT events wait for one", id);
			}
			if (rc < 0)
				return rc;
			if (home == EXPORT_HOME_OTHER)
				continue;	/* its home exports it from its copy */
			if (rc != EXPORT_ROOM_GONE && rec.msg_id != 0 && rec.msg_id <= mark)
				continue;	/* in a file recorded by someone */
			if (r->e->hold_unsettled && !fixed && rc != EXPORT_ROOM_GONE &&
			    want >= r->e->own_from &&
			    rec.msg_id > acked_get(db_acked(r->e->db), rec.room)) {
				*last = want - 1;	/* not settled yet: the next run */
				*held = true;
				return 0;
			}
		}
		if (export_batch_add(b, &rec) != 0)
			return export_run_fail(r, -ENOMEM, want, "out of memory collecting a batch");
		if (!fixed && b->blen >= r->e->max_bytes) {
			*last = want;
			break;
		}
	}
	return 0;
}

/* ---- a run ---- */

/* The range of the batch being exported, recorded before any of its files
 * is written, so that a re-export after a crash uses the same range even
 * when a consumer has already taken the files away. 0, -ENOENT, -EIO. */
static int
intent_get(struct db *db, uint64_t *first, uint64_t *last)
{
	char *v, *err = NULL;
	size_t len;

	v = rocksdb_get_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_META), META_INTENT,
			   strlen(META_INTENT), &len, &err);
	if (err != NULL) {
		LOG(ERR, COMPLIANCE, "export: cannot read %s: %s", META_INTENT, err);
		rocksdb_free(err);
		return -EIO;
	}
	if (v == NULL)
		return -ENOENT;
	if (len != 16) {
		rocksdb_free(v);
		return -ENOENT;	/* not ours to interpret: plan afresh */
	}
	*first = be_get64(v);
	*last = be_get64(v + 8);
	rocksdb_free(v);
	return 0;
}

static int
intent_put(struct run *r, uint64_t first, uint64_t last)
{
	rocksdb_writebatch_t *wb;
	unsigned char v[16];
	char eb[64];
	int rc;

	if (r->has_intent && r->intent_first == first && r->intent_last == last)
		return 0;
	be_put64(v, first);
	be_put64(v + 8, last);
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_put_cf(wb, db_cf(r->e->db, DB_CF_META), META_INTENT,
				  strlen(META_INTENT), (const char *)v, sizeof(v));
	rc = db_write(r->e->db, wb, true);
	rocksdb_writebatch_destroy(wb);
	if (rc != 0)
		return export_run_fail(r, rc, 0, "cannot record the export range: %s",
				export_errstr(rc, eb, sizeof(eb)));
	r->has_intent = true;
	r->intent_first = first;
	r->intent_last = last;
	return 0;
}

static int
run_batches(struct run *r)
{
	struct export *e = r->e;
	struct wal_iter *it = NULL;
	uint64_t cur, end;
	char eb[64];
	int rc;

	/* The copies first: the log read below (up to <end>) then holds no
	 * event of a room homed here that was sequenced before this node
	 * exported the room's copies, so its mark never passes them. */
	if (e->room_home != NULL && (rc = export_copies(r)) != 0)
		return rc;
	r->log_pass = true;
	if ((rc = wal_checkpoint(e->db, &cur)) != 0 || (rc = wal_next_seq(e->db, &end)) != 0)
		return export_run_fail(r, rc, 0, "cannot read the compliance checkpoint: %s",
				export_errstr(rc, eb, sizeof(eb)));
	if (e->room_home != NULL && (rc = export_voids_load(r, cur)) != 0)
		return rc;
	if (cur >= end)
		return 0;
	if (r->dirfd == -1)
		r->dirfd = open(e->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd == -1) {
		rc = -errno;
		return export_run_fail(r, rc, 0, "cannot open output directory %s: %s", e->output_dir,
				export_errstr(rc, eb, sizeof(eb)));
	}
	if ((rc = scan_output(r, cur)) != 0)
		return rc;
	rc = intent_get(e->db, &r->intent_first, &r->intent_last);
	if (rc == -EIO)
		return export_run_fail(r, rc, 0, "cannot read the export range from the database");
	r->has_intent = rc == 0;
	it = wal_iter_open(e->db, cur, &rc);
	if (it == NULL)
		return export_run_fail(r, rc, cur, "cannot read the compliance log: %s",
				export_errstr(rc, eb, sizeof(eb)));
	while (cur < end) {
		bool fixed;
		uint64_t last = plan_last(r, cur, end, &fixed);
		bool held = false;
		int stop = 0;

		if (last >= end) {
			rc = export_run_fail(r, -ESTALE, cur, "seqs %" PRIu64 "-%" PRIu64 " were exported "
				      "before but the log ends at %" PRIu64 "; was the database "
				      "restored from an older copy?", cur, last, end - 1);
			break;
		}
		if ((rc = collect(r, it, cur, &last, fixed, &stop, &held)) != 0)
			break;
		if (held && last < cur)
			break;		/* its first event is not settled yet */
		if (r->b.n == 0) {
			/* Every event of the range is another home's (array): no
			 * file, and none left from an earlier attempt. */
			for (size_t i = 0; i < r->nfound; i++)
				if (r->found[i].first == cur && r->found[i].last == last)
					unlinkat(r->dirfd, r->found[i].name, 0);
			if (r->nfound > 0 && fsync(r->dirfd) == -1) {
				rc = export_run_fail(r, -errno, 0, "cannot sync output directory %s",
						     e->output_dir);
				break;
			}
		} else if ((rc = intent_put(r, cur, last)) != 0 ||
		    (rc = copy_attachments(r)) != 0 ||
		    (rc = export_write_batch(r, cur, last, fixed)) != 0 ||
		    (rc = export_record_marks(r)) != 0)
			break;
		rc = wal_checkpoint_advance(e->db, last + 1);
		if (rc != 0) {
			export_run_fail(r, rc, 0, "cannot advance the compliance checkpoint to %" PRIu64
				 ": %s", last + 1, export_errstr(rc, eb, sizeof(eb)));
			break;
		}
		r->events += last + 1 - cur;
		if (wal_trim(e->db, last + 1) != 0)	/* the next trim covers this range too */
			LOG(WARNING, COMPLIANCE, "export: cannot trim the compliance log below %"
			    PRIu64 "; it will be retried", last + 1);
		cur = last + 1;
		if (stop != 0) {
			rc = stop;
			break;
		}
		if (held)
			break;
	}
	wal_iter_close(it);
	return rc;
}

long
export_run_once(struct export *e)
{
	struct run r = { .e = e, .dirfd = -1, .adirfd = -1 };
	struct export_shared *sh = &e->sh;
	int rc;

	pthread_mutex_lock(&e->run_mu);
	rc = run_batches(&r);
	if (r.adirfd != -1)
		close(r.adirfd);
	if (r.dirfd != -1)
		close(r.dirfd);
	for (size_t i = 0; i < r.nfound; i++)
		free(r.found[i].name);
	free(r.found);
	free(r.rh);
	free(r.voids);
	free(r.b.ev);
	free(r.b.bytes);
	free(r.iobuf);

	pthread_mutex_lock(&e->st_mu);
	sh->runs++;
	sh->files_written += r.files;
	sh->attachments_copied += r.attachments;
	sh->events_exported += r.events;
	if (rc == 0) {
		sh->consecutive_failures = 0;
		sh->failing_since_ms = 0;
		sh->last_success_ms = clock_real_ms();
	} else {
		if (sh->consecutive_failures++ == 0)
			sh->failing_since_ms = clock_real_ms();
		sh->last_err = r.err != 0 ? r.err : rc;
		sh->last_err_seq = r.err_seq;
		memcpy(sh->last_err_text, r.text, sizeof(sh->last_err_text));
	}
	pthread_mutex_unlock(&e->st_mu);
	pthread_mutex_unlock(&e->run_mu);
	return rc != 0 ? rc : (long)r.events;
}

/* ---- status ---- */

/* Time of the record at <seq>, or -1 when it is missing or does not decode. */
static int
record_time(struct db *db, uint64_t seq, uint64_t *ts)
{
	unsigned char key[8];
	struct wal_rec rec;
	char *v, *err = NULL;
	size_t len;
	int rc;

	be_put64(key, seq);
	v = rocksdb_get_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_COMPLIANCE),
			   (const char *)key, 8, &len, &err);
	if (err != NULL) {
		rocksdb_free(err);
		return -EIO;
	}
	if (v == NULL)
		return -ENOENT;
	rc = wal_decode(seq, v, len, &rec);
	if (rc == 0)
		*ts = rec.ts_ms;
	rocksdb_free(v);
	return rc;
}

int
export_status(struct export *e, struct export_status *st)
{
	uint64_t failing_since, ckpt, lag, ts, now = clock_real_ms();
	int rc;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&e->st_mu);
	st->last_err = e->sh.last_err;
	st->last_err_seq = e->sh.last_err_seq;
	memcpy(st->last_err_text, e->sh.last_err_text, sizeof(st->last_err_text));
	st->consecutive_failures = e->sh.consecutive_failures;
	st->runs = e->sh.runs;
	st->files_written = e->sh.files_written;
	st->attachments_copied = e->sh.attachments_copied;
	st->events_exported = e->sh.events_exported;
	st->last_success_ms = e->sh.last_success_ms;
	failing_since = e->sh.failing_since_ms;
	pthread_mutex_unlock(&e->st_mu);
	pthread_mutex_lock(&e->thr_mu);
	st->running = e->running;
	pthread_mutex_unlock(&e->thr_mu);

	if ((rc = wal_checkpoint(e->db, &ckpt)) != 0 || (rc = wal_lag(e->db, &lag)) != 0)
		return -EIO;
	st->checkpoint = ckpt;
	st->lag_events = lag;
	if (lag == 0)
		return 0;
	rc = record_time(e->db, ckpt, &ts);
	if (rc == 0)
		st->lag_s = now > ts ? (now - ts) / 1000 : 0;
	else if (failing_since != 0)	/* the oldest does not decode: a lower bound */
		st->lag_s = (now - failing_since) / 1000;
	return rc == -EIO ? -EIO : 0;
}

/* ---- the thread ---- */

static void *
export_main(void *arg)
{
	struct export *e = arg;
	uint64_t backoff = 0;

	pthread_mutex_lock(&e->thr_mu);
	while (!e->stop) {
		struct timespec dl;
		uint64_t wait_ms, until_ns;
		long rc;

		pthread_mutex_unlock(&e->thr_mu);
		rc = export_run_once(e);
		if (rc < 0) {
			backoff = backoff == 0 ? e->retry_min_ms : backoff * 2;
			if (backoff > e->retry_max_ms)
				backoff = e->retry_max_ms;
			wait_ms = backoff;
		} else {
			backoff = 0;
			wait_ms = (uint64_t)e->interval_s * 1000;
		}
		/* The condition variable waits on CLOCK_MONOTONIC. */
		until_ns = clock_mono_ns() + wait_ms * 1000000;
		dl = (struct timespec){ (time_t)(until_ns / 1000000000u),
					(long)(until_ns % 1000000000u) };
		pthread_mutex_lock(&e->thr_mu);
		while (!e->stop && pthread_cond_timedwait(&e->thr_cv, &e->thr_mu, &dl) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&e->thr_mu);
	return NULL;
}

int
export_start(struct export *e)
{
	int rc;

	pthread_mutex_lock(&e->thr_mu);
	if (e->running) {
		pthread_mutex_unlock(&e->thr_mu);
		return -EALREADY;
	}
	e->stop = false;
	rc = pthread_create(&e->thread, NULL, export_main, e);
	if (rc == 0)
		e->running = true;
	pthread_mutex_unlock(&e->thr_mu);
	return -rc;
}

void
export_stop(struct export *e)
{
	pthread_mutex_lock(&e->thr_mu);
	if (!e->running) {
		pthread_mutex_unlock(&e->thr_mu);
		return;
	}
	e->stop = true;
	pthread_cond_signal(&e->thr_cv);
	pthread_mutex_unlock(&e->thr_mu);
	pthread_join(e->thread, NULL);
	pthread_mutex_lock(&e->thr_mu);
	e->running = false;
	pthread_mutex_unlock(&e->thr_mu);
}

/* ---- life ---- */

static bool
adapter_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ADAPTER_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

struct export *
export_create(struct db *db, const struct export_config *cfg, int *err)
{
	const char *attr = cfg->sender_name_attr != NULL ? cfg->sender_name_attr : "userName";
	const char *adapter = cfg->adapter != NULL ? cfg->adapter : EXPORT_ADAPTER_DEFAULT;
	pthread_condattr_t ca;
	struct export *e;

	if (db == NULL || cfg->output_dir == NULL || cfg->output_dir[0] == '\0' ||
	    cfg->files_dir == NULL || cfg->files_dir[0] == '\0' ||
	    (strcmp(attr, "userName") != 0 && strcmp(attr, "UserName") != 0) ||
	    !adapter_ok(adapter)) {
		*err = -EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));	/* boot: freed by export_destroy */
	if (e == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	e->db = db;
	e->node_id = cfg->node_id != 0 ? cfg->node_id : db_node_id(db);
	e->interval_s = cfg->interval_s != 0 ? cfg->interval_s : EXPORT_INTERVAL_DEFAULT_S;
	e->retry_min_ms = cfg->retry_min_ms != 0 ? cfg->retry_min_ms : EXPORT_RETRY_MIN_DEFAULT_MS;
	e->retry_max_ms = cfg->retry_max_ms != 0 ? cfg->retry_max_ms : EXPORT_RETRY_MAX_DEFAULT_MS;
	e->max_events = cfg->max_events_per_file != 0 ? cfg->max_events_per_file :
			EXPORT_MAX_EVENTS_DEFAULT;
	e->max_bytes = cfg->max_bytes_per_file != 0 ? cfg->max_bytes_per_file :
		       EXPORT_MAX_BYTES_DEFAULT;
	e->per_room = cfg->per_room_files;
	e->room_mark = cfg->room_mark;
	e->room_mark_arg = cfg->room_mark_arg;
	e->room_home = cfg->room_mark != NULL ? cfg->room_home : NULL;
	e->room_cut = cfg->room_mark != NULL ? cfg->room_cut : NULL;
	e->hold_unsettled = cfg->room_mark != NULL && cfg->hold_unsettled;
	if (e->hold_unsettled && wal_next_seq(db, &e->own_from) != 0)
		e->own_from = UINT64_MAX;	/* cannot tell: hold nothing */
	if (e->retry_min_ms > e->retry_max_ms) {
		free(e);
		*err = -EINVAL;
		return NULL;
	}
	e->output_dir = strdup(cfg->output_dir);
	e->files_dir = strdup(cfg->files_dir);
	e->adapter = strdup(adapter);
	e->name_attr = strdup(attr);
	if (e->output_dir == NULL || e->files_dir == NULL || e->adapter == NULL ||
	    e->name_attr == NULL)
		goto out_nomem;
	pthread_mutex_init(&e->run_mu, NULL);
	pthread_mutex_init(&e->st_mu, NULL);
	pthread_mutex_init(&e->thr_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->thr_cv, &ca);
	pthread_condattr_destroy(&ca);
	return e;

out_nomem:
	free(e->output_dir);
	free(e->files_dir);
	free(e->adapter);
	free(e->name_attr);
	free(e);
	*err = -ENOMEM;
	return NULL;
}

void
export_destroy(struct export *e)
{
	if (e == NULL)
		return;
	export_stop(e);
	pthread_cond_destroy(&e->thr_cv);
	pthread_mutex_destroy(&e->thr_mu);
	pthread_mutex_destroy(&e->st_mu);
	pthread_mutex_destroy(&e->run_mu);
	free(e->output_dir);
	free(e->files_dir);
	free(e->adapter);
	free(e->name_attr);
	free(e);
}
