/* The compliance exporter's XML (xccos.md §d.2): the three time forms, the
 * sender's id, a buffered writer with a sticky error, and the files of one
 * batch written to a temporary name, fsynced and renamed. See export.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/base/log.h"
#include "storage/catalog.h"
#include "storage/db.h"
#include "storage/export_int.h"

/* ---- small pure helpers ---- */

int
export_time_forms(uint64_t ms, char *iso, size_t isolen, uint64_t *ticks)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	int n;

	if (ms >= MS_YEAR_10000 || gmtime_r(&secs, &tm) == NULL)
		return -EOVERFLOW;
	n = snprintf(iso, isolen, "%04d-%02d-%02dT%02d:%02d:%02d.%07uZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (unsigned)(ms % 1000) * 10000);
	if (n < 0 || (size_t)n >= isolen)
		return -EOVERFLOW;
	*ticks = ms * 10000 + TICKS_1970;
	return 0;
}

/* Length of a "sip:" or "sips:" scheme at the start of <s>, else 0. */
static size_t
scheme_len(const char *s, size_t len)
{
	if (len >= 4 && strncasecmp(s, "sip:", 4) == 0)
		return 4;
	if (len >= 5 && strncasecmp(s, "sips:", 5) == 0)
		return 5;
	return 0;
}

/* The address part of a SIP URI: after the scheme, before ';' or '?'. */
static void
uri_addr(const char *s, size_t len, const char **addr, size_t *alen)
{
	size_t skip = scheme_len(s, len), n = 0;

	s += skip;
	len -= skip;
	while (n < len && s[n] != ';' && s[n] != '?')
		n++;
	*addr = s;
	*alen = n;
}

uint32_t
export_user_id(const char *uri, size_t len)
{
	const char *a;
	size_t alen;
	uint32_t h = 2166136261u;

	uri_addr(uri, len, &a, &alen);
	for (size_t i = 0; i < alen; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 16777619u;
	}
	h &= 0x7fffffffu;
	return h != 0 ? h : 1;
}


/* ---- buffered writer with a sticky error ---- */

static void
wb_flush(struct wbuf *w)
{
	size_t off = 0;

	while (w->err == 0 && off < w->n) {
		ssize_t k = write(w->fd, w->buf + off, w->n - off);

		if (k == -1) {
			if (errno != EINTR)
				w->err = -errno;
			continue;
		}
		off += (size_t)k;
	}
	w->n = 0;
}

static void
wb_put(struct wbuf *w, const void *p, size_t len)
{
	const char *s = p;

	while (len > 0 && w->err == 0) {
		size_t k = sizeof(w->buf) - w->n;

		if (k > len)
			k = len;
		memcpy(w->buf + w->n, s, k);
		w->n += k;
		s += k;
		len -= k;
		if (w->n == sizeof(w->buf))
			wb_flush(w);
	}
}

static void
wb_str(struct wbuf *w, const char *s)
{
	wb_put(w, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
wb_fmt(struct wbuf *w, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		wb_put(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Length of the valid UTF-8 sequence at <s> encoding an XML 1.0 Char, or 0. */
static size_t
utf8_char(const unsigned char *s, size_t len)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (len < n)
		return 0;
	cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

/* Writes <s> as the inside of a double-quoted attribute value. */
static void
wb_attr(struct wbuf *w, const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, run = 0;

	while (i < len) {
		unsigned char c = s[i];
		const char *rep = NULL;
		size_t k = 1;

		if (c >= 0x80) {
			k = utf8_char(s + i, len - i);
			if (k == 0) {
				rep = "\xef\xbf\xbd";	/* U+FFFD */
				k = 1;
			}
		} else if (c == '&') {
			rep = "&amp;";
		} else if (c == '<') {
			rep = "&lt;";
		} else if (c == '>') {
			rep = "&gt;";
		} else if (c == '"') {
			rep = "&quot;";
		} else if (c == '\t') {
			rep = "&#9;";	/* literal ones would be normalised to spaces */
		} else if (c == '\n') {
			rep = "&#10;";
		} else if (c == '\r') {
			rep = "&#13;";
		} else if (c < 0x20) {
			rep = "\xef\xbf\xbd";
		}
		if (rep != NULL) {
			wb_put(w, s + i - run, run);
			wb_str(w, rep);
			run = 0;
		} else {
			run += k;
		}
		i += k;
	}
	wb_put(w, s + len - run, run);
}

static int
cmp_order(const void *pa, const void *pb, void *arg)
{
	const struct batch *b = arg;
	const struct ev *x = &b->ev[*(const size_t *)pa], *y = &b->ev[*(const size_t *)pb];
	size_t n = x->uri_len < y->uri_len ? x->uri_len : y->uri_len;
	int c;

	if ((c = memcmp(x->room, y->room, WAL_ROOM_RAW)) != 0)
		return c;
	if ((c = memcmp(b->bytes + x->uri_off, b->bytes + y->uri_off, n)) != 0)
		return c;
	if (x->uri_len != y->uri_len)
		return x->uri_len < y->uri_len ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A home's own CHAT events in a node array (export.h "In a node array"):
 * by room, room URI and room seq, as the copies pass orders copies. */
static int
cmp_room_seq(const void *pa, const void *pb, void *arg)
{
	const struct batch *b = arg;
	const struct ev *x = &b->ev[*(const size_t *)pa], *y = &b->ev[*(const size_t *)pb];
	size_t n = x->uri_len < y->uri_len ? x->uri_len : y->uri_len;
	int c;

	if ((c = memcmp(x->room, y->room, WAL_ROOM_RAW)) != 0)
		return c;
	if ((c = memcmp(b->bytes + x->uri_off, b->bytes + y->uri_off, n)) != 0)
		return c;
	if (x->uri_len != y->uri_len)
		return x->uri_len < y->uri_len ? -1 : 1;
	return x->msg_id < y->msg_id ? -1 : x->msg_id > y->msg_id;
}

static bool
own_chat(const struct export *e, const struct ev *ev)
{
	return e->room_home != NULL && ev->type == WAL_EV_CHAT && ev->msg_id != 0;
}

static bool
same_conv(const struct batch *b, const struct ev *x, const struct ev *y)
{
	return memcmp(x->room, y->room, WAL_ROOM_RAW) == 0 && x->uri_len == y->uri_len &&
	       memcmp(b->bytes + x->uri_off, b->bytes + y->uri_off, x->uri_len) == 0;
}

/* ---- XML ---- */

static void
put_time(struct wbuf *w, const char *indent, const char *elem, uint64_t ms)
{
	char iso[40];
	uint64_t ticks = 0;

	export_time_forms(ms, iso, sizeof(iso), &ticks);	/* checked in collect() */
	wb_fmt(w, "%s<%s since1970=\"%" PRIu64 "\" string=\"%s\" long=\"%" PRIu64 "\" />\n",
	       indent, elem, ms, iso, ticks);
}

static void
put_message(struct wbuf *w, const struct export *e, const struct batch *b, const struct ev *ev,
	    const char *indent, const char *elem)
{
	const char *user = b->bytes + ev->user_off, *addr, *at;
	size_t sl = scheme_len(user, ev->user_len), alen;

	uri_addr(user, ev->user_len, &addr, &alen);
	at = memchr(addr, '@', alen);
	wb_fmt(w, "%s<%s type=\"%s\" content=\"", indent, elem, wal_event_name(ev->type));
	wb_attr(w, b->bytes + ev->content_off, ev->content_len);
	wb_fmt(w, "\" id=\"%" PRIu64 "\">\n", ev->type == WAL_EV_CHAT ? ev->msg_id : 0);
	wb_fmt(w, "%s  <Sender %s=\"", indent, e->name_attr);
	wb_attr(w, addr, at != NULL ? (size_t)(at - addr) : alen);
	wb_fmt(w, "\" id=\"%" PRIu32 "\"", export_user_id(user, ev->user_len));
	if (at != NULL) {
		wb_str(w, " email=\"");
		wb_attr(w, addr, alen);
		wb_str(w, "\"");
	}
	wb_str(w, " internal=\"true\" uri=\"");
	wb_attr(w, user + sl, ev->user_len - sl);
	wb_str(w, "\" />\n");
	wb_str(w, indent);
	put_time(w, "  ", "DateTimeUTC", ev->ts_ms);
	wb_fmt(w, "%s</%s>\n", indent, elem);
}

/* The catalog's view of a room, looked up once per room and batch. */
struct chan {
	struct catalog_room	*room;		/* NULL: not in the catalog */
};

static int
chan_lookup(struct run *r, const uint8_t raw[WAL_ROOM_RAW], struct chan *c)
{
	char id[CATALOG_ID_LEN + 1], eb[64];
	int rc;

	c->room = NULL;
	catalog_id_unpack(raw, id);
	rc = catalog_get(r->e->db, id, &c->room);
	if (rc == 0 || rc == -ENOENT)
		return 0;
	if (rc == -EBADMSG || rc == -EPROTONOSUPPORT) {
		LOG(WARNING, COMPLIANCE, "export: catalog entry of room %s unreadable (%s); "
		    "its conversations carry the room URI as name", id, export_errstr(rc, eb, sizeof(eb)));
		return 0;
	}
	return export_run_fail(r, rc, 0, "cannot read room %s from the catalog: %s", id,
			export_errstr(rc, eb, sizeof(eb)));
}

/* Writes the conversation made of order[i..j). */
static void
put_conversation(struct wbuf *w, const struct export *e, const struct batch *b,
		 const struct chan *c, size_t i, size_t j)
{
	const struct ev *first = &b->ev[b->order[i]], *last = &b->ev[b->order[j - 1]];

	wb_str(w, "  <Conversation>\n    <Channel uri=\"");
	wb_attr(w, b->bytes + first->uri_off, first->uri_len);
	wb_str(w, "\" name=\"");
	if (c->room != NULL)
		wb_attr(w, c->room->name, strlen(c->room->name));
	else
		wb_attr(w, b->bytes + first->uri_off, first->uri_len);
	wb_fmt(w, "\" islogged=\"%s\" />\n", c->room == NULL ? "" :
	       (c->room->props & CATALOG_PROP_LOGGED) ? "true" : "false");
	put_message(w, e, b, first, "    ", "FirstMessage");
	wb_str(w, "    <Messages>\n");
	for (size_t k = i; k < j; k++)
		put_message(w, e, b, &b->ev[b->order[k]], "      ", "Message");
	wb_str(w, "    </Messages>\n");
	put_time(w, "    ", "StartTimeUTC", first->ts_ms);
	put_time(w, "    ", "EndTimeUTC", last->ts_ms);
	wb_str(w, "  </Conversation>\n");
}

/* Writes the conversations of order[i..j) into <name>: temp name, fsync,
 * rename. The directory is synced by the caller, once per batch. */
static int
write_file(struct run *r, struct wbuf *w, const char *name, size_t i, size_t j)
{
	struct export *e = r->e;
	const struct batch *b = &r->b;
	char tmp[NAME_MAX + 64], eb[64];
	struct chan c = { NULL };
	const uint8_t *croom = NULL;
	int rc;

	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s", name);
	w->fd = openat(r->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd == -1) {
		rc = -errno;
		return export_run_fail(r, rc, 0, "cannot create %s/%s: %s", e->output_dir, tmp,
				export_errstr(rc, eb, sizeof(eb)));
	}
	w->err = 0;
	w->n = 0;
	wb_str(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		  "<Conversations xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
		  "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n");
	while (i < j) {
		const struct ev *first = &b->ev[b->order[i]];
		size_t k = i + 1;

		while (k < j && same_conv(b, first, &b->ev[b->order[k]]))
			k++;
		if (croom == NULL || memcmp(croom, first->room, WAL_ROOM_RAW) != 0) {
			catalog_room_free(c.room);
			if ((rc = chan_lookup(r, first->room, &c)) != 0)
				goto out_unlink;
			croom = first->room;
		}
		put_conversation(w, e, b, &c, i, k);
		i = k;
	}
	wb_str(w, "</Conversations>\n");
	wb_flush(w);
	catalog_room_free(c.room);
	c.room = NULL;
	if (w->err != 0) {
		rc = w->err;
		export_run_fail(r, rc, 0, "cannot write %s/%s: %s", e->output_dir, tmp,
			 export_errstr(rc, eb, sizeof(eb)));
		goto out_unlink;
	}
	rc = export_sync_close_rename(r->dirfd, w->fd, tmp, name);
	w->fd = -1;
	if (rc != 0)
		return export_run_fail(r, rc, 0, "cannot sync or rename %s/%s: %s", e->output_dir, tmp,
				export_errstr(rc, eb, sizeof(eb)));
	r->files++;
	return 0;

out_unlink:
	catalog_room_free(c.room);
	close(w->fd);
	w->fd = -1;
	unlinkat(r->dirfd, tmp, 0);
	return rc;
}

int
export_write_one(struct run *r, const char *name)
{
	struct batch *b = &r->b;
	struct wbuf *w;
	char eb[64];
	int rc;

	b->order = malloc(b->n * sizeof(*b->order));
	w = malloc(sizeof(*w));
	if (b->order == NULL || w == NULL) {
		rc = export_run_fail(r, -ENOMEM, 0, "out of memory writing a batch");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		b->order[i] = i;
	qsort_r(b->order, b->n, sizeof(*b->order), cmp_order, b);
	rc = write_file(r, w, name, 0, b->n);
	if (rc == 0 && fsync(r->dirfd) == -1) {
		rc = -errno;
		export_run_fail(r, rc, 0, "cannot sync output directory %s: %s", r->e->output_dir,
				export_errstr(rc, eb, sizeof(eb)));
	}
out:
	free(w);
	free(b->order);
	b->order = NULL;
	return rc;
}

/* The own CHAT events, order[<from>..n), one room's at a time in files of
 * at most max_events, named as the room's next home would name its copy
 * files of the same events: <adapter>_<node>_<room-id>_<first>-<last>.xml,
 * room seqs (export.h "In a node array"). Before the first of a room's
 * files is renamed, its last seq is recorded as the room's cut. */
static int
write_own(struct run *r, struct wbuf *w, size_t from)
{
	struct export *e = r->e;
	struct batch *b = &r->b;
	char name[NAME_MAX + 1], id[CATALOG_ID_LEN + 1], eb[64];
	int rc = 0;

	for (size_t i = from, end; rc == 0 && i < b->n; i = end) {
		const struct ev *f = &b->ev[b->order[i]];
		uint64_t last;

		for (end = i + 1; end < b->n; end++)
			if (memcmp(b->ev[b->order[end]].room, f->room, WAL_ROOM_RAW) != 0)
				break;
		catalog_id_unpack(f->room, id);
		last = b->ev[b->order[end - 1]].msg_id;
		if (e->room_cut != NULL && (rc = e->room_cut(e->room_mark_arg, f->room, last)) != 0)
			return export_run_fail(r, rc, 0, "room %s: cannot record where its files "
					       "end (room seq %" PRIu64 "): %s", id, last,
					       export_errstr(rc, eb, sizeof(eb)));
		for (size_t j, k = i; rc == 0 && k < end; k = j) {
			j = k + e->max_events < end ? k + e->max_events : end;
			snprintf(name, sizeof(name), "%s_%" PRIu64 "_%s_%020" PRIu64 "-%020" PRIu64
				 ".xml", e->adapter, e->node_id, id, b->ev[b->order[k]].msg_id,
				 b->ev[b->order[j - 1]].msg_id);
			rc = write_file(r, w, name, k, j);
		}
	}
	return rc;
}

int
export_write_batch(struct run *r, uint64_t first, uint64_t last, bool fixed)
{
	struct export *e = r->e;
	struct batch *b = &r->b;
	char base[ADAPTER_MAX + 96], name[NAME_MAX + 1], id[CATALOG_ID_LEN + 1], eb[64];
	struct wbuf *w;
	size_t nlog = 0;
	int rc = 0;

	b->order = malloc(b->n * sizeof(*b->order));
	w = malloc(sizeof(*w));
	if (b->order == NULL || w == NULL) {
		rc = export_run_fail(r, -ENOMEM, 0, "out of memory writing a batch");
		goto out;
	}
	/* The log's events first, then (in an array) the own CHAT events. */
	for (size_t i = 0; i < b->n; i++)
		if (!own_chat(e, &b->ev[i]))
			b->order[nlog++] = i;
	for (size_t i = 0, k = nlog; i < b->n; i++)
		if (own_chat(e, &b->ev[i]))
			b->order[k++] = i;
	qsort_r(b->order, nlog, sizeof(*b->order), cmp_order, b);
	qsort_r(b->order + nlog, b->n - nlog, sizeof(*b->order), cmp_room_seq, b);

	export_file_prefix(e, base, sizeof(base));
	snprintf(base + strlen(base), sizeof(base) - strlen(base),
		 "%020" PRIu64 "-%020" PRIu64, first, last);
	if (nlog == 0) {
		rc = 0;		/* all of them own CHAT events */
	} else if (!e->per_room) {
		snprintf(name, sizeof(name), "%s.xml", base);
		rc = write_file(r, w, name, 0, nlog);
	} else {
		for (size_t i = 0, j; rc == 0 && i < nlog; i = j) {
			const uint8_t *room = b->ev[b->order[i]].room;

			for (j = i + 1; j < nlog; j++)
				if (memcmp(b->ev[b->order[j]].room, room, WAL_ROOM_RAW) != 0)
					break;
			catalog_id_unpack(room, id);
			snprintf(name, sizeof(name), "%s_%s.xml", base, id);
			rc = write_file(r, w, name, i, j);
		}
	}
	if (rc == 0)
		rc = write_own(r, w, nlog);
	if (rc != 0)
		goto out;
	/* An earlier attempt at this range with the other per_room setting left
	 * files this one did not rewrite; they hold the same events. */
	for (size_t i = 0; fixed && i < r->nfound; i++)
		if (r->found[i].first == first && r->found[i].last == last &&
		    r->found[i].per_room != e->per_room)
			unlinkat(r->dirfd, r->found[i].name, 0);
	if (fsync(r->dirfd) == -1) {
		rc = -errno;
		export_run_fail(r, rc, 0, "cannot sync output directory %s: %s", e->output_dir,
			 export_errstr(rc, eb, sizeof(eb)));
	}
out:
	free(w);
	free(b->order);
	b->order = NULL;
	return rc;
}

