/* The compliance exporter: XML against tests/data/compliance.xsd, fields of
 * every event type, file naming and per-room files, exactly once across a
 * crash between rename and checkpoint, corrupt records, a missing,
 * unwritable or full output directory, attachments (copied before the XML,
 * missing source), the retry thread, and the storage thread as the writer.
 *
 * Events written here get ts = T0 + seq * 1001 ms, so every message in the
 * output maps back to its seq through since1970. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include "storage/acked.h"
#include "storage/catalog.h"
#include "storage/commit.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/wal.h"
#include "dbfixture.h"

#define T0		1700000000000ull
#define TS_STEP		1001
#define TICKS_1970	621355968000000000ull
#define NROOMS		3

static char root[256], out[320], files[320];
static struct export *ex;

struct troom {
	char		id[CATALOG_ID_LEN + 1];
	uint8_t		raw[CATALOG_ID_RAW];
	char		uri[128];
	const char	*name;		/* NULL: not in the catalog */
	bool		logged;
};
static struct troom rooms[NROOMS];

/* What was logged, by seq (index seq - 1). */
struct exp {
	enum wal_event	type;
	int		room;
	const char	*user;
	char		*content;	/* as logged */
	size_t		clen;
	char		*want;		/* as it must read back from the XML */
	uint64_t	msg_id;
};
static struct exp *exps;
static uint64_t nexp;
static uint64_t room_seq[NROOMS];
static rocksdb_writebatch_t *pending;

static const char *const users[] = {
	"sip:alice@example.com",
	"sip:Bob.Smith@example.com",
	"sips:carol@other.org;transport=tls",
};

static void
ex_setup(void)
{
	setup();
	tmpdb_make(root, sizeof(root));
	snprintf(out, sizeof(out), "%s/out", root);
	snprintf(files, sizeof(files), "%s/files", root);
	cr_assert_eq(mkdir(out, 0755), 0);
	cr_assert_eq(mkdir(files, 0755), 0);
	exps = NULL;
	nexp = 0;
	memset(room_seq, 0, sizeof(room_seq));
	xmlInitParser();
}

static void
ex_teardown(void)
{
	export_destroy(ex);
	ex = NULL;
	teardown();
	tmpdb_remove(root);
}

TestSuite(export, .init = ex_setup, .fini = ex_teardown, .timeout = 120);

/* ---- writing events ---- */

static void
make_rooms(void)
{
	static const char *const names[NROOMS] = { "Room A", "Room <B> & \"co\"", NULL };

	for (int i = 0; i < NROOMS; i++) {
		struct troom *t = &rooms[i];

		t->name = names[i];
		t->logged = i == 0;
		if (names[i] != NULL) {
			struct catalog_room *r = catalog_room_new("example.com", names[i]);

			cr_assert_not_null(r);
			if (!t->logged)
				r->props &= ~CATALOG_PROP_LOGGED;
			cr_assert_eq(catalog_put(db, r), 0);
			memcpy(t->id, r->id, sizeof(t->id));
			snprintf(t->uri, sizeof(t->uri), "%.127s", r->uri);
			catalog_room_free(r);
		} else {
			char id[sizeof(t->id)];

			/* Through a copy: GCC at -O0 takes t->id and t->uri for one object. */
			snprintf(id, sizeof(id), "0badc0de-0000-4000-8000-00000000000%d", i);
			memcpy(t->id, id, sizeof(id));
			snprintf(t->uri, sizeof(t->uri), "ma-chan://example.com/%.36s", id);
		}
		cr_assert_eq(catalog_id_pack(t->id, t->raw), 0);
	}
}

static void
flush_events(void)
{
	if (pending == NULL)
		return;
	cr_assert_eq(db_write(db, pending, true), 0);
	rocksdb_writebatch_destroy(pending);
	pending = NULL;
}

/* Logs one event with the next seq (buffered until flush_events). */
static uint64_t
log_ev(enum wal_event t, int room, int user, const char *content, size_t clen, const char *want)
{
	uint64_t seq = ++nexp;
	struct exp *x;
	struct wal_rec r;

	exps = realloc(exps, nexp * sizeof(*exps));
	cr_assert_not_null(exps);
	x = &exps[seq - 1];
	x->type = t;
	x->room = room;
	x->user = users[user];
	x->content = malloc(clen + 1);
	memcpy(x->content, content, clen);
	x->content[clen] = '\0';
	x->clen = clen;
	x->want = strdup(want != NULL ? want : x->content);
	x->msg_id = t == WAL_EV_CHAT ? ++room_seq[room] : 0;

	memset(&r, 0, sizeof(r));
	r.type = t;
	r.ts_ms = T0 + seq * TS_STEP;
	r.msg_id = x->msg_id;
	memcpy(r.room, rooms[room].raw, WAL_ROOM_RAW);
	r.room_uri = rooms[room].uri;
	r.room_uri_len = strlen(rooms[room].uri);
	r.user = x->user;
	r.user_len = strlen(x->user);
	r.content = x->content;
	r.content_len = clen;
	if (pending == NULL)
		pending = rocksdb_writebatch_create();
	cr_assert_eq(wal_batch_put(db, pending, seq, &r), 0);
	return seq;
}

static void
log_text(enum wal_event t, int room, int user, const char *content)
{
	log_ev(t, room, user, content, strlen(content), NULL);
}

/* Puts a file into the file store and logs its FILEUPLOAD. */
static void
log_upload(int room, int user, const char *name, size_t size)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", files, rooms[room].id);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", files, rooms[room].id, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (size_t i = 0; i < size; i++)
		fputc((int)('a' + (i * 7 + strlen(name)) % 26), f);
	cr_assert_eq(fclose(f), 0);
	log_text(WAL_EV_FILEUPLOAD, room, user, name);
}

/* Cycles through every event type and room. */
static void
log_mix(unsigned n)
{
	char buf[64];

	for (unsigned i = 0; i < n; i++) {
		enum wal_event t = (enum wal_event)(1 + (nexp + 1) % (WAL_EV_MAX - 1));
		int room = (int)((nexp + 1) % NROOMS), user = (int)((nexp / 3) % 3);

		switch (t) {
		case WAL_EV_JOIN:
		case WAL_EV_PART:
			log_text(t, room, user, "");
			break;
		case WAL_EV_FILEUPLOAD:
			snprintf(buf, sizeof(buf), "5b0c7c1e-aaaa-4bbb-8ccc-%012llx.txt",
				 (unsigned long long)nexp + 1);
			log_upload(room, user, buf, 100 + nexp);
			break;
		case WAL_EV_FILEDOWNLOAD:
			log_text(t, room, user, "006074ca-24f0-4b35-8bd8-98006a2d1aa8.txt");
			break;
		default:
			snprintf(buf, sizeof(buf), "%s %llu", t == WAL_EV_CHAT ? "hello" :
				 "history viewed", (unsigned long long)nexp + 1);
			log_text(t, room, user, buf);
		}
	}
	flush_events();
}

static void
new_exporter(bool per_room, const char *attr, uint64_t max_events)
{
	struct export_config cfg = {
		.output_dir = out,
		.files_dir = files,
		.per_room_files = per_room,
		.sender_name_attr = attr,
		.max_events_per_file = max_events,
		.retry_min_ms = 20,
		.retry_max_ms = 100,
		.interval_s = 1,
	};
	int err = 0;

	export_destroy(ex);
	ex = export_create(db, &cfg, &err);
	cr_assert_not_null(ex, "export_create: %d", err);
}

static uint64_t
checkpoint(void)
{
	uint64_t c;

	cr_assert_eq(wal_checkpoint(db, &c), 0);
	return c;
}

/* ---- reading the output ---- */

struct pmsg {
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

struct parsed {
	struct pmsg	*m;
	size_t		n;
	char		**names;	/* the .xml files, sorted */
	size_t		nfiles;
};

static xmlSchemaPtr schema;

static xmlSchemaPtr
get_schema(void)
{
	char path[512];
	const char *src = getenv("PARLEY_SRCDIR");
	xmlSchemaParserCtxtPtr pc;

	if (schema != NULL)
		return schema;
	snprintf(path, sizeof(path), "%s/tests/data/compliance.xsd", src != NULL ? src : ".");
	pc = xmlSchemaNewParserCtxt(path);
	cr_assert_not_null(pc);
	schema = xmlSchemaParse(pc);
	xmlSchemaFreeParserCtxt(pc);
	cr_assert_not_null(schema, "cannot parse %s", path);
	return schema;
}

static char *
prop(xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	char *s;

	if (v == NULL)
		return NULL;
	s = strdup((const char *)v);
	xmlFree(v);
	return s;
}

static xmlNode *
next_elem(xmlNode *n)
{
	while (n != NULL && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

static bool
is(xmlNode *n, const char *name)
{
	return n != NULL && strcmp((const char *)n->name, name) == 0;
}

/* Checks that the three forms of a time element agree; returns since1970. */
static uint64_t
check_time(xmlNode *n)
{
	char *s = prop(n, "since1970"), *iso = prop(n, "string"), *l = prop(n, "long");
	unsigned long long ms, ticks;
	struct tm tm = { 0 };
	unsigned frac;
	char z = 0;

	cr_assert(s != NULL && iso != NULL && l != NULL);
	ms = strtoull(s, NULL, 10);
	ticks = strtoull(l, NULL, 10);
	cr_assert_eq(ticks, ms * 10000 + TICKS_1970, "%s: long %s vs since1970 %s", n->name, l, s);
	cr_assert_eq(strlen(iso), 28, "%s", iso);
	cr_assert_eq(sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d.%7u%c", &tm.tm_year, &tm.tm_mon,
			    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac, &z), 8);
	cr_assert_eq(z, 'Z');
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	cr_assert_eq((unsigned long long)timegm(&tm) * 1000 + frac / 10000, ms, "%s vs %s", iso, s);
	cr_assert_eq(frac % 10000, 0);
	free(s);
	free(iso);
	free(l);
	return ms;
}

static void
read_message(xmlNode *n, struct pmsg *m)
{
	xmlNode *snd = next_elem(n->children), *dt;
	char *t = prop(n, "type"), *id = prop(n, "id"), *u1, *u2, *sid;

	memset(m, 0, sizeof(*m));
	cr_assert_not_null(t);
	snprintf(m->type, sizeof(m->type), "%s", t);
	free(t);
	m->content = prop(n, "content");
	cr_assert_not_null(m->content);
	m->id = strtoll(id, NULL, 10);
	free(id);
	cr_assert(is(snd, "Sender"));
	u1 = prop(snd, "userName");
	u2 = prop(snd, "UserName");
	cr_assert((u1 == NULL) != (u2 == NULL), "exactly one of userName/UserName");
	m->upper = u2 != NULL;
	m->uname = u1 != NULL ? u1 : u2;
	sid = prop(snd, "id");
	m->sid = strtoll(sid, NULL, 10);
	free(sid);
	m->email = prop(snd, "email");
	m->internal = prop(snd, "internal");
	m->suri = prop(snd, "uri");
	dt = next_elem(snd->next);
	cr_assert(is(dt, "DateTimeUTC"));
	m->ms = check_time(dt);
	cr_assert_null(next_elem(dt->next));
}

static bool
same_msg(const struct pmsg *a, const struct pmsg *b)
{
	return strcmp(a->type, b->type) == 0 && strcmp(a->content, b->content) == 0 &&
	       a->id == b->id && a->upper == b->upper && strcmp(a->uname, b->uname) == 0 &&
	       a->sid == b->sid && strcmp(a->suri, b->suri) == 0 && a->ms == b->ms &&
	       (a->email == NULL) == (b->email == NULL) &&
	       (a->email == NULL || strcmp(a->email, b->email) == 0);
}

static void
free_msg(struct pmsg *m)
{
	free(m->content);
	free(m->uname);
	free(m->email);
	free(m->internal);
	free(m->suri);
	free(m->room_uri);
	free(m->chan_name);
	free(m->islogged);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
parse_file(struct parsed *p, const char *dirpath, const char *name)
{
	char path[700];
	xmlSchemaValidCtxtPtr vc;
	xmlDocPtr doc;
	xmlNode *conv;

	snprintf(path, sizeof(path), "%s/%s", dirpath, name);
	vc = xmlSchemaNewValidCtxt(get_schema());
	cr_assert_eq(xmlSchemaValidateFile(vc, path, 0), 0, "%s does not validate", path);
	xmlSchemaFreeValidCtxt(vc);
	doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
	cr_assert_not_null(doc);
	cr_assert(is(xmlDocGetRootElement(doc), "Conversations"));
	for (conv = next_elem(xmlDocGetRootElement(doc)->children); conv != NULL;
	     conv = next_elem(conv->next)) {
		xmlNode *ch = next_elem(conv->children), *fm, *msgs, *st, *en, *m;
		struct pmsg first;
		size_t start = p->n;

		cr_assert(is(conv, "Conversation"));
		fm = next_elem(ch->next);
		msgs = next_elem(fm->next);
		st = next_elem(msgs->next);
		en = next_elem(st->next);
		cr_assert(is(ch, "Channel") && is(fm, "FirstMessage") && is(msgs, "Messages") &&
			  is(st, "StartTimeUTC") && is(en, "EndTimeUTC"));
		read_message(fm, &first);
		for (m = next_elem(msgs->children); m != NULL; m = next_elem(m->next)) {
			struct pmsg *pm;

			p->m = realloc(p->m, (p->n + 1) * sizeof(*p->m));
			pm = &p->m[p->n++];
			read_message(m, pm);
			pm->room_uri = prop(ch, "uri");
			pm->chan_name = prop(ch, "name");
			pm->islogged = prop(ch, "islogged");
			snprintf(pm->file, sizeof(pm->file), "%s", name);
			/* Seq order inside a conversation: times never go back
			 * (events of one storage group share a millisecond). */
			if (p->n - 1 > start)
				cr_assert_geq(pm->ms, p->m[p->n - 2].ms);
		}
		cr_assert_gt(p->n, start);
		cr_assert(same_msg(&first, &p->m[start]), "FirstMessage is the first Message");
		cr_assert_eq(check_time(st), p->m[start].ms);
		cr_assert_eq(check_time(en), p->m[p->n - 1].ms);
		free_msg(&first);
	}
	xmlFreeDoc(doc);
}

/* Validates and reads every .xml file of <dirpath>, in name order. */
static void
parse_dir(struct parsed *p, const char *dirpath)
{
	DIR *d = opendir(dirpath);
	struct dirent *de;

	memset(p, 0, sizeof(*p));
	cr_assert_not_null(d, "%s", dirpath);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 4 || strcmp(de->d_name + len - 4, ".xml") != 0)
			continue;
		p->names = realloc(p->names, (p->nfiles + 1) * sizeof(*p->names));
		p->names[p->nfiles++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(p->names, p->nfiles, sizeof(*p->names), cmp_name);
	for (size_t i = 0; i < p->nfiles; i++)
		parse_file(p, dirpath, p->names[i]);
}

static void
parsed_free(struct parsed *p)
{
	for (size_t i = 0; i < p->n; i++)
		free_msg(&p->m[i]);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->names[i]);
	free(p->m);
	free(p->names);
}

static uint64_t
seq_of(const struct pmsg *m)
{
	cr_assert_geq(m->ms, T0 + TS_STEP);
	cr_assert_eq((m->ms - T0) % TS_STEP, 0);
	return (m->ms - T0) / TS_STEP;
}

/* Compares a message with what was logged under its seq. */
static void
check_fields(const struct pmsg *m, uint64_t seq, bool upper)
{
	const struct exp *x = &exps[seq - 1];
	const struct troom *t = &rooms[x->room];
	const char *addr = strchr(x->user, ':') + 1;
	size_t alen = strcspn(addr, ";");
	char want_email[128];

	cr_assert_str_eq(m->type, wal_event_name(x->type), "seq %llu", (unsigned long long)seq);
	cr_assert_str_eq(m->content, x->want, "seq %llu", (unsigned long long)seq);
	cr_assert_eq(m->id, (long long)x->msg_id);
	cr_assert_eq(m->upper, upper);
	cr_assert_eq(strlen(m->uname), strcspn(addr, "@"));
	cr_assert_eq(strncmp(m->uname, addr, strlen(m->uname)), 0);
	cr_assert_eq(m->sid, (long long)export_user_id(x->user, strlen(x->user)));
	cr_assert(m->sid > 0 && m->sid <= 0x7fffffff);
	snprintf(want_email, sizeof(want_email), "%.*s", (int)alen, addr);
	cr_assert_not_null(m->email);
	cr_assert_str_eq(m->email, want_email);
	cr_assert_str_eq(m->internal, "true");
	cr_assert_str_eq(m->suri, addr, "uri without sip:");
	cr_assert_str_eq(m->room_uri, t->uri);
	cr_assert_str_eq(m->chan_name, t->name != NULL ? t->name : t->uri);
	cr_assert_str_eq(m->islogged, t->name == NULL ? "" : t->logged ? "true" : "false");
}

/* Every seq in [from, to] exactly once across all files, nothing else. */
static void
assert_exactly_once(const struct parsed *p, uint64_t from, uint64_t to, bool upper)
{
	unsigned *seen = calloc(to + 2, sizeof(*seen));

	for (size_t i = 0; i < p->n; i++) {
		uint64_t s = seq_of(&p->m[i]);

		cr_assert(s >= from && s <= to, "seq %llu outside [%llu, %llu]",
			  (unsigned long long)s, (unsigned long long)from, (unsigned long long)to);
		seen[s]++;
		check_fields(&p->m[i], s, upper);
	}
	for (uint64_t s = from; s <= to; s++)
		cr_assert_eq(seen[s], 1, "seq %llu seen %u times", (unsigned long long)s, seen[s]);
	free(seen);
}

/* One export run that takes <n> events, after which <where> holds events
 * <first>..<last> exactly once each. */
static void
export_expect(int n, const char *where, uint64_t first, uint64_t last, bool upper)
{
	struct parsed p;

	cr_assert_eq(export_run_once(ex), n);
	parse_dir(&p, where);
	assert_exactly_once(&p, first, last, upper);
	parsed_free(&p);
}

static void
file_name(char *buf, size_t len, uint64_t first, uint64_t last, const char *room)
{
	snprintf(buf, len, "parley_%llu_%020llu-%020llu%s%.36s.xml", (unsigned long long)db_node_id(db),
		 (unsigned long long)first, (unsigned long long)last, room != NULL ? "_" : "",
		 room != NULL ? room : "");
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static unsigned
count_entries(const char *dirpath, const char *prefix)
{
	DIR *d = opendir(dirpath);
	struct dirent *de;
	unsigned n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

/* ---- raw access to the log, for crashes and corruption ---- */

struct saved {
	char	**v;
	size_t	*len;
	uint64_t n;
};

/* The log as it is before an export ... */
static void
save_log(struct saved *s)
{
	s->n = nexp;
	s->v = calloc(nexp + 1, sizeof(*s->v));
	s->len = calloc(nexp + 1, sizeof(*s->len));
	for (uint64_t q = 1; q <= nexp; q++)
		s->v[q] = raw_get(q, &s->len[q]);
}

/* ... and put back after it: the state of a crash after the files were
 * renamed and before the checkpoint moved (and so before the trim). */
static void
restore_log(struct saved *s)
{
	for (uint64_t q = 1; q <= s->n; q++) {
		raw_put(q, s->v[q], s->len[q]);
		rocksdb_free(s->v[q]);
	}
	free(s->v);
	free(s->len);
	cr_assert_eq(db_meta_put_u64(db, "compliance.trimmed", 0), 0);
	cr_assert_eq(db_meta_put_u64(db, "compliance.checkpoint", 1), 0);
}

/* ---- pure helpers ---- */

Test(export, time_forms_match_the_documented_sample)
{
	char iso[40];
	uint64_t ticks;

	/* xccos.md §d.2: 1212610540953 = 2008-06-04T20:15:40.953..Z; the sample's
	 * extra sub-millisecond digits are not in since1970, so they are 0 here. */
	cr_assert_eq(export_time_forms(1212610540953ull, iso, sizeof(iso), &ticks), 0);
	cr_assert_str_eq(iso, "2008-06-04T20:15:40.9530000Z");
	cr_assert_eq(ticks, 633482073409530000ull);
	cr_assert_eq(export_time_forms(0, iso, sizeof(iso), &ticks), 0);
	cr_assert_str_eq(iso, "1970-01-01T00:00:00.0000000Z");
	cr_assert_eq(ticks, TICKS_1970);
	cr_assert_eq(export_time_forms(253402300799999ull, iso, sizeof(iso), &ticks), 0);
	cr_assert_str_eq(iso, "9999-12-31T23:59:59.9990000Z");
	cr_assert_eq(export_time_forms(253402300800000ull, iso, sizeof(iso), &ticks), -EOVERFLOW);
}

Test(export, user_id_is_stable_and_31_bit)
{
	uint32_t a = export_user_id("sip:alice@example.com", 21);

	cr_assert_eq(export_user_id("alice@example.com", 17), a);
	cr_assert_eq(export_user_id("SIP:Alice@Example.COM", 21), a);
	cr_assert_eq(export_user_id("sips:alice@example.com;transport=tls", 36), a);
	cr_assert_neq(export_user_id("sip:bob@example.com", 19), a);
	cr_assert(a > 0 && a <= 0x7fffffffu);
	cr_assert(export_user_id("", 0) > 0);
}

Test(export, create_rejects_bad_config)
{
	struct export_config cfg = { .output_dir = out, .files_dir = files };
	int err = 0;

	cfg.sender_name_attr = "username";
	cr_assert_null(export_create(db, &cfg, &err));
	cr_assert_eq(err, -EINVAL);
	cfg.sender_name_attr = NULL;
	cfg.adapter = "../x";
	cr_assert_null(export_create(db, &cfg, &err));
	cfg.adapter = NULL;
	cfg.files_dir = NULL;
	cr_assert_null(export_create(db, &cfg, &err));
	cfg.files_dir = files;
	cfg.retry_min_ms = 10;
	cfg.retry_max_ms = 5;
	cr_assert_null(export_create(db, &cfg, &err));
}

/* ---- the format ---- */

Test(export, every_event_type_with_its_fields)
{
	/* Characters XML must escape, and some that XML 1.0 cannot carry. */
	static const char nasty[] = "<a & b> \"q\" 'x'\n\tz\r \x01 \xff \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	static const char back[] = "<a & b> \"q\" 'x'\n\tz\r \xef\xbf\xbd \xef\xbf\xbd \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	struct export_status st;
	struct parsed p;
	char name[200];
	bool types[WAL_EV_MAX] = { false };

	make_rooms();
	log_mix(24);
	log_ev(WAL_EV_CHAT, 1, 1, nasty, sizeof(nasty) - 1, back);
	log_text(WAL_EV_BACKCHAT, 2, 2, "search: \"budget\" & <plans>");
	flush_events();
	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), 26);

	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 1);
	file_name(name, sizeof(name), 1, 26, NULL);
	cr_assert_str_eq(p.names[0], name);
	assert_exactly_once(&p, 1, 26, false);
	for (size_t i = 0; i < p.n; i++)
		for (int t = 1; t < WAL_EV_MAX; t++)
			if (strcmp(p.m[i].type, wal_event_name((enum wal_event)t)) == 0)
				types[t] = true;
	for (int t = 1; t < WAL_EV_MAX; t++)
		cr_assert(types[t], "%s missing", wal_event_name((enum wal_event)t));
	/* One conversation per room: 3 distinct channels, each one contiguous. */
	for (size_t i = 1; i < p.n; i++)
		if (strcmp(p.m[i].room_uri, p.m[i - 1].room_uri) != 0)
			for (size_t k = i + 1; k < p.n; k++)
				cr_assert_str_neq(p.m[k].room_uri, p.m[i - 1].room_uri);
	parsed_free(&p);

	cr_assert_eq(checkpoint(), 27);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.lag_events, 0);
	cr_assert_eq(st.files_written, 1);
	cr_assert_eq(st.events_exported, 26);
	cr_assert_eq(st.consecutive_failures, 0);
	cr_assert_neq(st.last_success_ms, 0);
	/* Exported records are trimmed. */
	{
		int err;
		struct wal_iter *it = wal_iter_open(db, 1, &err);
		struct wal_rec rec;

		cr_assert_eq(wal_iter_next(it, &rec), 0);
		wal_iter_close(it);
	}
	/* Nothing new: no file, no error. */
	cr_assert_eq(export_run_once(ex), 0);
	cr_assert_eq(count_entries(out, "parley_"), 1);
}

Test(export, sender_name_attribute_switch)
{
	make_rooms();
	log_mix(8);
	new_exporter(false, "UserName", 0);
	export_expect(8, out, 1, 8, true);
}

Test(export, per_room_files)
{
	struct parsed p;
	char name[200];

	make_rooms();
	log_mix(30);
	new_exporter(true, NULL, 0);
	cr_assert_eq(export_run_once(ex), 30);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, NROOMS);
	for (int r = 0; r < NROOMS; r++) {
		bool found = false;

		file_name(name, sizeof(name), 1, 30, rooms[r].id);
		for (size_t i = 0; i < p.nfiles; i++)
			found |= strcmp(p.names[i], name) == 0;
		cr_assert(found, "%s missing", name);
	}
	for (size_t i = 0; i < p.n; i++) {	/* each file holds only its room */
		const struct troom *t = &rooms[exps[seq_of(&p.m[i]) - 1].room];

		cr_assert_not_null(strstr(p.m[i].file, t->id));
	}
	assert_exactly_once(&p, 1, 30, false);
	parsed_free(&p);
}

Test(export, batches_of_max_events_per_file)
{
	struct parsed p;
	char name[200];

	make_rooms();
	log_mix(25);
	new_exporter(false, NULL, 10);
	cr_assert_eq(export_run_once(ex), 25);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 3);
	file_name(name, sizeof(name), 1, 10, NULL);
	cr_assert_str_eq(p.names[0], name);
	file_name(name, sizeof(name), 11, 20, NULL);
	cr_assert_str_eq(p.names[1], name);
	file_name(name, sizeof(name), 21, 25, NULL);
	cr_assert_str_eq(p.names[2], name);
	assert_exactly_once(&p, 1, 25, false);
	parsed_free(&p);
}

/* ---- exactly once ---- */

Test(export, crash_between_rename_and_checkpoint_rewrites_the_same_files)
{
	struct saved s;
	struct parsed p;
	char *before[3], path[700];
	size_t blen[3];

	make_rooms();
	log_mix(20);
	save_log(&s);
	new_exporter(false, NULL, 8);
	cr_assert_eq(export_run_once(ex), 20);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 3);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", out, p.names[i]);
		before[i] = slurp(path, &blen[i]);
	}
	parsed_free(&p);

	restore_log(&s);
	log_mix(5);	/* events that arrive after the restart */
	/* A different batch size after the restart must not change the ranges. */
	new_exporter(false, NULL, 100);
	cr_assert_eq(export_run_once(ex), 25);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 4);
	for (int i = 0; i < 3; i++) {
		size_t len;
		char *now;

		snprintf(path, sizeof(path), "%s/%s", out, p.names[i]);
		now = slurp(path, &len);
		cr_assert(len == blen[i] && memcmp(now, before[i], len) == 0,
			  "%s rewritten with other bytes", p.names[i]);
		free(now);
		free(before[i]);
	}
	assert_exactly_once(&p, 1, 25, false);
	parsed_free(&p);
	cr_assert_eq(checkpoint(), 26);
}

Test(export, crash_after_a_consumer_took_the_file_away)
{
	struct saved s;
	struct parsed p;
	char name[200], path[700], moved[700], *before, *now;
	size_t blen, nlen;

	make_rooms();
	log_mix(10);
	save_log(&s);
	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), 10);
	restore_log(&s);
	/* The archiver picked the file up before the exporter restarted. */
	file_name(name, sizeof(name), 1, 10, NULL);
	snprintf(path, sizeof(path), "%s/%s", out, name);
	snprintf(moved, sizeof(moved), "%s/archived.xml", root);
	cr_assert_eq(rename(path, moved), 0);
	log_mix(4);
	cr_assert_eq(export_run_once(ex), 14);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 2);
	cr_assert_str_eq(p.names[0], name, "the same range again, under the same name");
	assert_exactly_once(&p, 1, 14, false);
	parsed_free(&p);
	before = slurp(moved, &blen);
	now = slurp(path, &nlen);
	cr_assert(blen == nlen && memcmp(before, now, blen) == 0);
	free(before);
	free(now);
}

Test(export, crash_in_the_middle_of_per_room_renames)
{
	struct saved s;
	char name[200], path[700], real[700];

	make_rooms();
	log_mix(12);
	save_log(&s);
	new_exporter(true, NULL, 0);
	cr_assert_eq(export_run_once(ex), 12);
	restore_log(&s);
	/* The crash came after the first room's rename only. */
	file_name(name, sizeof(name), 1, 12, rooms[1].id);
	snprintf(path, sizeof(path), "%s/%s", out, name);
	cr_assert_eq(unlink(path), 0);
	file_name(name, sizeof(name), 1, 12, rooms[2].id);	/* and one half-written */
	snprintf(real, sizeof(real), "%s/%s", out, name);
	snprintf(path, sizeof(path), "%s/.tmp-%s", out, name);
	cr_assert_eq(rename(real, path), 0);
	cr_assert_eq(truncate(path, 10), 0);
	log_mix(3);
	export_expect(15, out, 1, 15, false);
	cr_assert_eq(count_entries(out, ".tmp-"), 0, "crashed temp files are removed");
}

Test(export, crash_then_restart_with_the_other_file_layout)
{
	struct saved s;
	struct parsed p;

	make_rooms();
	log_mix(12);
	save_log(&s);
	new_exporter(true, NULL, 0);
	cr_assert_eq(export_run_once(ex), 12);
	restore_log(&s);
	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), 12);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 1);
	assert_exactly_once(&p, 1, 12, false);
	parsed_free(&p);
}

/* ---- faults ---- */

Test(export, corrupt_record_stops_the_export_before_it)
{
	struct export_status st;
	struct parsed p;
	char name[200], *v, *good;
	size_t len;

	make_rooms();
	log_mix(10);
	v = raw_get(6, &len);
	good = malloc(len);
	memcpy(good, v, len);
	v[30] ^= 0x40;	/* inside the room id: the CRC catches it */
	raw_put(6, v, len);
	rocksdb_free(v);

	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), -EBADMSG);
	cr_assert_eq(checkpoint(), 6);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.last_err, -EBADMSG);
	cr_assert_eq(st.last_err_seq, 6);
	cr_assert_not_null(strstr(st.last_err_text, " 6 "), "%s", st.last_err_text);
	cr_assert_eq(st.lag_events, 5);
	cr_assert_eq(st.consecutive_failures, 1);
	cr_assert_eq(st.events_exported, 5);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 1);
	file_name(name, sizeof(name), 1, 5, NULL);
	cr_assert_str_eq(p.names[0], name);
	assert_exactly_once(&p, 1, 5, false);
	parsed_free(&p);

	/* Again: the same error at once, nothing written. */
	cr_assert_eq(export_run_once(ex), -EBADMSG);
	cr_assert_eq(checkpoint(), 6);
	cr_assert_eq(count_entries(out, "parley_"), 1);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.consecutive_failures, 2);

	/* Repaired: the rest goes out, once. */
	raw_put(6, good, len);
	free(good);
	export_expect(5, out, 1, 10, false);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.consecutive_failures, 0);
}

Test(export, torn_first_record_exports_nothing)
{
	struct export_status st;
	char *v;
	size_t len;

	make_rooms();
	log_mix(4);
	v = raw_get(1, &len);
	raw_put(1, v, len - 3);
	rocksdb_free(v);
	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), -ENODATA);
	cr_assert_eq(checkpoint(), 1);
	cr_assert_eq(count_entries(out, "parley_"), 0);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.last_err_seq, 1);
	cr_assert_eq(st.lag_events, 4);
}

/* Root ignores permission bits, so "unwritable" is a path through a file. */
static void
fault_then_fix(const char *bad_dir, void (*fix)(void))
{
	struct export_config cfg = { .output_dir = bad_dir, .files_dir = files };
	struct export_status st;
	int err;

	make_rooms();
	log_mix(9);
	ex = export_create(db, &cfg, &err);
	cr_assert_not_null(ex);
	cr_assert_lt(export_run_once(ex), 0);
	cr_assert_lt(export_run_once(ex), 0);
	cr_assert_eq(checkpoint(), 1);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.lag_events, 9);
	/* The events are from 2023: the oldest is years old. */
	cr_assert_gt(st.lag_s, 86400);
	cr_assert_eq(st.consecutive_failures, 2);
	cr_assert_neq(st.last_err, 0);
	cr_assert_neq(st.last_err_text[0], '\0');
	cr_assert_eq(st.files_written, 0);

	fix();
	export_expect(9, bad_dir, 1, 9, false);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.lag_events, 0);
	cr_assert_eq(st.lag_s, 0);
	cr_assert_eq(st.consecutive_failures, 0);
}

static char blocker[400], bad[450];

static void
fix_blocker(void)
{
	cr_assert_eq(unlink(blocker), 0);
	cr_assert_eq(mkdir(blocker, 0755), 0);
	cr_assert_eq(mkdir(bad, 0755), 0);
}

Test(export, output_dir_under_a_file_then_fixed)
{
	FILE *f;

	snprintf(blocker, sizeof(blocker), "%s/blocker", root);
	snprintf(bad, sizeof(bad), "%s/out", blocker);
	f = fopen(blocker, "w");
	fclose(f);
	fault_then_fix(bad, fix_blocker);
}

static void
fix_file_as_dir(void)
{
	cr_assert_eq(unlink(bad), 0);
	cr_assert_eq(mkdir(bad, 0755), 0);
}

Test(export, output_dir_is_a_file_then_fixed)
{
	FILE *f;

	snprintf(bad, sizeof(bad), "%s/notadir", root);
	f = fopen(bad, "w");
	fclose(f);
	fault_then_fix(bad, fix_file_as_dir);
}

static void
fix_missing(void)
{
	cr_assert_eq(mkdir(bad, 0755), 0);
}

Test(export, output_dir_missing_then_created)
{
	snprintf(bad, sizeof(bad), "%s/later", root);
	fault_then_fix(bad, fix_missing);
}

Test(export, output_dir_full_then_grown)
{
	struct export_status st;
	static char big[3000];

	if (unshare(CLONE_NEWNS) == -1 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", out, "tmpfs", 0, "size=64k") == -1)
		cr_skip_test("cannot mount a small tmpfs here: %s", strerror(errno));
	make_rooms();
	memset(big, 'x', sizeof(big) - 1);
	for (int i = 0; i < 60; i++)
		log_text(WAL_EV_CHAT, i % NROOMS, i % 3, big);
	flush_events();
	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), -ENOSPC);
	cr_assert_eq(checkpoint(), 1);
	cr_assert_eq(count_entries(out, ".tmp-"), 0, "the partial temp file is removed");
	cr_assert_eq(count_entries(out, "parley_"), 0);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.last_err, -ENOSPC);
	cr_assert_eq(st.lag_events, 60);

	cr_assert_eq(mount("tmpfs", out, "tmpfs", MS_REMOUNT, "size=16m"), 0);
	export_expect(60, out, 1, 60, false);
	umount2(out, MNT_DETACH);
}

/* ---- attachments ---- */

Test(export, attachment_is_copied_before_the_xml_that_names_it)
{
	static const char att[] = "0988239a-bb66-4616-90a4-b07771a2097c.txt";
	char adir[400], src[700], dst[700], buf[4096], xml[200];
	const struct inotify_event *ev;
	int ifd, wout, watt, order = 0, att_at = 0, xml_at = 0;
	char *a, *b;
	size_t alen, blen;
	ssize_t n;

	make_rooms();
	log_text(WAL_EV_JOIN, 0, 0, "");
	log_upload(0, 0, att, 5000);
	log_text(WAL_EV_FILEDOWNLOAD, 0, 1, att);
	flush_events();
	snprintf(adir, sizeof(adir), "%s/Attachment", out);
	cr_assert_eq(mkdir(adir, 0755), 0);
	ifd = inotify_init1(IN_NONBLOCK);
	cr_assert_geq(ifd, 0);
	wout = inotify_add_watch(ifd, out, IN_MOVED_TO);
	watt = inotify_add_watch(ifd, adir, IN_MOVED_TO);
	cr_assert(wout >= 0 && watt >= 0);

	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), 3);
	file_name(xml, sizeof(xml), 1, 3, NULL);
	n = read(ifd, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	for (char *q = buf; q < buf + n; q += sizeof(*ev) + ev->len) {
		ev = (const struct inotify_event *)(void *)q;
		order++;
		if (ev->wd == watt && strcmp(ev->name, att) == 0)
			att_at = order;
		if (ev->wd == wout && strcmp(ev->name, xml) == 0)
			xml_at = order;
	}
	close(ifd);
	cr_assert(att_at > 0 && xml_at > 0 && att_at < xml_at, "attachment %d, xml %d", att_at,
		  xml_at);
	snprintf(src, sizeof(src), "%s/%s/%s", files, rooms[0].id, att);
	snprintf(dst, sizeof(dst), "%s/%s", adir, att);
	a = slurp(src, &alen);
	b = slurp(dst, &blen);
	cr_assert(alen == 5000 && alen == blen && memcmp(a, b, alen) == 0);
	free(a);
	free(b);
	cr_assert_eq(count_entries(adir, ".tmp-"), 0);
}

Test(export, attachment_already_there_is_not_copied_again)
{
	struct export_status st;
	struct saved s;

	make_rooms();
	log_mix(12);	/* two FILEUPLOADs */
	save_log(&s);
	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), 12);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.attachments_copied, 2);
	restore_log(&s);
	cr_assert_eq(export_run_once(ex), 12);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.attachments_copied, 2);
}

Test(export, missing_attachment_source_stops_the_export)
{
	static const char att[] = "11111111-2222-4333-8444-555555555555.pdf";
	struct export_status st;
	char src[700], hidden[700];

	make_rooms();
	log_text(WAL_EV_CHAT, 0, 0, "before");
	log_upload(0, 1, att, 1234);
	log_text(WAL_EV_CHAT, 0, 0, "after");
	flush_events();
	snprintf(src, sizeof(src), "%s/%s/%s", files, rooms[0].id, att);
	snprintf(hidden, sizeof(hidden), "%s/hidden", root);
	cr_assert_eq(rename(src, hidden), 0);

	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), -ENOENT);
	cr_assert_eq(checkpoint(), 1);
	cr_assert_eq(count_entries(out, "parley_"), 0, "no XML names a file the archive lacks");
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.last_err, -ENOENT);
	cr_assert_eq(st.last_err_seq, 2);
	cr_assert_not_null(strstr(st.last_err_text, att), "%s", st.last_err_text);
	cr_assert_eq(st.lag_events, 3);

	cr_assert_eq(rename(hidden, src), 0);
	export_expect(3, out, 1, 3, false);
}

Test(export, upload_name_with_a_slash_is_refused)
{
	struct export_status st;

	make_rooms();
	log_text(WAL_EV_FILEUPLOAD, 0, 0, "../../etc/passwd");
	flush_events();
	new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ex), -EINVAL);
	cr_assert_eq(checkpoint(), 1);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert_eq(st.last_err_seq, 1);
}

/* ---- the thread ---- */

static void
wait_for(bool (*cond)(const struct export_status *), const char *what)
{
	struct export_status st;

	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(export_status(ex, &st), 0);
		if (cond(&st))
			return;
		usleep(10000);
	}
	cr_assert_fail("timed out waiting for %s", what);
}

static bool
failed_thrice(const struct export_status *st)
{
	return st->consecutive_failures >= 3;
}

static bool
caught_up(const struct export_status *st)
{
	return st->lag_events == 0 && st->consecutive_failures == 0;
}

Test(export, thread_retries_with_backoff_and_recovers)
{
	struct export_config cfg = {
		.files_dir = files, .interval_s = 1, .retry_min_ms = 10, .retry_max_ms = 50,
	};
	struct export_status st;
	struct parsed p;
	int err;

	snprintf(bad, sizeof(bad), "%s/later", root);
	cfg.output_dir = bad;
	make_rooms();
	log_mix(15);
	ex = export_create(db, &cfg, &err);
	cr_assert_not_null(ex);
	cr_assert_eq(export_start(ex), 0);
	cr_assert_eq(export_start(ex), -EALREADY);
	wait_for(failed_thrice, "three failures");
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert(st.running);
	cr_assert_eq(st.lag_events, 15);
	cr_assert_eq(st.last_err, -ENOENT);
	cr_assert_eq(mkdir(bad, 0755), 0);
	wait_for(caught_up, "the export after the fix");
	log_mix(5);	/* the next interval picks these up */
	wait_for(caught_up, "the next interval");
	export_stop(ex);
	cr_assert_eq(export_status(ex, &st), 0);
	cr_assert(!st.running);
	parse_dir(&p, bad);
	assert_exactly_once(&p, 1, 20, false);
	parsed_free(&p);
}

/* ---- with the storage thread as the writer ---- */

#define POSTS	3000

struct runner {
	struct export	*e;
	atomic_bool	stop;
	long		exported;
	long		err;		/* first failure; asserted on the main thread */
};

static void *
export_loop(void *arg)
{
	struct runner *r = arg;

	while (!atomic_load(&r->stop)) {
		long n = export_run_once(r->e);

		if (n < 0 && r->err == 0)
			r->err = n;
		if (n > 0)
			r->exported += n;
	}
	return NULL;
}

Test(export, posts_through_the_storage_thread_exactly_once_in_room_order, .timeout = 300)
{
	struct commit_config cc = { .nproducers = 1, .depth = 256 };
	struct commit_producer *prod;
	static char bodies[POSTS][32];
	struct runner run = { 0 };
	uint64_t last_id[NROOMS] = { 0 }, count[NROOMS] = { 0 };
	unsigned sent = 0, done = 0;
	struct commit *c;
	struct parsed p;
	pthread_t th;
	int err;

	make_rooms();
	c = commit_create(db, &cc, &err);
	cr_assert_not_null(c, "commit_create %d", err);
	prod = commit_producer(c, 0);
	new_exporter(false, NULL, 500);
	run.e = ex;
	cr_assert_eq(pthread_create(&th, NULL, export_loop, &run), 0);
	while (done < POSTS) {
		struct commit_req *q, *got[64];
		unsigned n;

		while (sent < POSTS && (q = commit_req_get(prod)) != NULL) {
			int room = (int)(sent % NROOMS);

			snprintf(bodies[sent], sizeof(bodies[sent]), "post %u", sent);
			q->op = sent % 10 == 9 ? COMMIT_EVENT : COMMIT_POST;
			q->ev = WAL_EV_JOIN;
			q->logged = true;
			memcpy(q->room, rooms[room].raw, 16);
			q->room_seq = q->op == COMMIT_POST ? ++room_seq[room] : 0;
			q->room_uri = rooms[room].uri;
			q->room_uri_len = strlen(rooms[room].uri);
			q->user = users[0];
			q->user_len = strlen(users[0]);
			q->body = q->content = bodies[sent];
			q->body_len = q->content_len = q->op == COMMIT_POST ? strlen(bodies[sent]) : 0;
			if (commit_submit(prod, &q, 1) != 1) {
				commit_req_put(prod, q);
				break;
			}
			sent++;
		}
		n = commit_poll(prod, got, 64);
		for (unsigned k = 0; k < n; k++) {
			cr_assert_eq(got[k]->status, 0);
			commit_req_put(prod, got[k]);
		}
		done += n;
		if (n == 0)
			sched_yield();
	}
	commit_stop(c);
	atomic_store(&run.stop, true);
	pthread_join(th, NULL);
	cr_assert_eq(run.err, 0);
	run.exported += export_run_once(ex);
	cr_assert_eq(run.exported, POSTS);
	commit_destroy(c);

	/* Every post once, and per room in room order across all the files. */
	parse_dir(&p, out);
	cr_assert_eq(p.n, POSTS);
	for (size_t i = 0; i < p.n; i++) {
		int room = -1;

		for (int r = 0; r < NROOMS; r++)
			if (strcmp(p.m[i].room_uri, rooms[r].uri) == 0)
				room = r;
		cr_assert_geq(room, 0);
		if (strcmp(p.m[i].type, "CHAT") != 0)
			continue;
		cr_assert_eq((uint64_t)p.m[i].id, last_id[room] + 1, "room %d: %lld after %llu",
			     room, p.m[i].id, (unsigned long long)last_id[room]);
		last_id[room] = (uint64_t)p.m[i].id;
		count[room]++;
	}
	for (int r = 0; r < NROOMS; r++)
		cr_assert_eq(count[r], room_seq[r]);
	parsed_free(&p);
}

/* export_config.room_mark (a node array's per-room export marks): once per
 * room with CHAT events in a batch, with its highest room seq, after the
 * files are in place and before the checkpoint moves; a failure keeps the
 * checkpoint and the retry writes the same files. */
static struct { uint8_t room[WAL_ROOM_RAW]; uint64_t last; } marks[16];
static unsigned nmarks, mark_calls;
static int mark_rc;

static int
record_mark(void *arg, const uint8_t *room, uint64_t last)
{
	unsigned k;

	cr_assert_eq(arg, &nmarks);
	mark_calls++;
	for (k = 0; k < nmarks && memcmp(marks[k].room, room, WAL_ROOM_RAW) != 0; k++)
		;
	cr_assert_lt(k, 16);
	if (mark_rc != 0)
		return mark_rc;
	if (k == nmarks)
		memcpy(marks[nmarks++].room, room, WAL_ROOM_RAW);
	cr_assert_gt(last, marks[k].last, "a mark moved back");
	marks[k].last = last;
	return 0;
}

Test(export, room_marks_after_the_files_before_the_checkpoint)
{
	struct export_config cfg = {
		.output_dir = out, .files_dir = files, .max_events_per_file = 12,
		.retry_min_ms = 20, .retry_max_ms = 100, .interval_s = 1,
		.room_mark = record_mark, .room_mark_arg = &nmarks,
	};
	struct parsed p;
	int err = 0;

	make_rooms();
	log_mix(30);
	ex = export_create(db, &cfg, &err);
	cr_assert_not_null(ex, "export_create: %d", err);
	mark_rc = -EIO;
	cr_assert_eq(export_run_once(ex), -EIO);
	cr_assert_eq(checkpoint(), 1, "the checkpoint moved past an unrecorded mark");
	cr_assert_gt(mark_calls, 0);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 1, "the file comes before its marks");
	parsed_free(&p);

	mark_rc = 0;
	mark_calls = 0;
	cr_assert_eq(export_run_once(ex), 30);
	cr_assert_eq(checkpoint(), 31);
	parse_dir(&p, out);
	cr_assert_eq(p.nfiles, 3);	/* 12 + 12 + 6, the first written again */
	assert_exactly_once(&p, 1, 30, false);
	parsed_free(&p);
	for (int r = 0; r < NROOMS; r++) {
		unsigned k;

		for (k = 0; k < nmarks && memcmp(marks[k].room, rooms[r].raw, WAL_ROOM_RAW); k++)
			;
		if (room_seq[r] == 0) {
			cr_assert_eq(k, nmarks, "room %d has no CHAT but a mark", r);
			continue;
		}
		cr_assert_lt(k, nmarks, "room %d: no mark", r);
		cr_assert_eq(marks[k].last, room_seq[r], "room %d: mark %llu, last CHAT %llu", r,
			     (unsigned long long)marks[k].last, (unsigned long long)room_seq[r]);
	}
	/* At most one call per room and batch. */
	cr_assert_leq(mark_calls, 3 * NROOMS);
}

/* In a node array (room_home): the copies of a room homed here above its
 * mark go into a file named by the home that sequenced them, are recorded
 * and deleted; copies at or below a mark are deleted; the log's CHAT events
 * of a room another node homes are left out, its other events stay. */
static uint64_t arr_mark[NROOMS];

static int
arr_home(void *arg, const uint8_t *room, uint64_t *mark, uint64_t *cut)
{
	for (int i = 0; i < NROOMS; i++)
		if (memcmp(room, rooms[i].raw, WAL_ROOM_RAW) == 0) {
			*mark = arr_mark[i];
			return i == 1 ? EXPORT_HOME_OTHER : EXPORT_HOME_HERE;
		}
	return -EAGAIN;
}

static int
arr_record(void *arg, const uint8_t *room, uint64_t last)
{
	for (int i = 0; i < NROOMS; i++)
		if (memcmp(room, rooms[i].raw, WAL_ROOM_RAW) == 0 && last > arr_mark[i])
			arr_mark[i] = last;
	return 0;
}

static void
put_copy(int room, uint64_t seq, uint32_t home, const char *text)
{
	uint8_t key[COMMIT_REPLICA_KEY_LEN], buf[512];
	struct wal_rec r = {
		.type = WAL_EV_CHAT, .ts_ms = T0 + seq, .msg_id = seq,
		.room_uri = rooms[room].uri, .room_uri_len = strlen(rooms[room].uri),
		.user = users[0], .user_len = strlen(users[0]),
		.content = text, .content_len = strlen(text),
	};
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	ssize_t n;

	memcpy(r.room, rooms[room].raw, WAL_ROOM_RAW);
	n = wal_encode(0, &r, buf, sizeof(buf) - 4);
	cr_assert_gt(n, 0);
	buf[n] = (uint8_t)(home >> 24);
	buf[n + 1] = (uint8_t)(home >> 16);
	buf[n + 2] = (uint8_t)(home >> 8);
	buf[n + 3] = (uint8_t)home;
	commit_replica_key(key, rooms[room].raw, seq);
	rocksdb_writebatch_put_cf(wb, db_cf(db, DB_CF_META), (const char *)key, sizeof(key),
				  (const char *)buf, (size_t)n + 4);
	cr_assert_eq(db_write(db, wb, true), 0);
	rocksdb_writebatch_destroy(wb);
}

static bool
has_copy(int room, uint64_t seq)
{
	uint8_t key[COMMIT_REPLICA_KEY_LEN];
	char *v, *err = NULL;
	size_t len;

	commit_replica_key(key, rooms[room].raw, seq);
	v = rocksdb_get_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_META), (const char *)key,
			   sizeof(key), &len, &err);
	cr_assert_null(err);
	rocksdb_free(v);
	return v != NULL;
}

Test(export, array_copies_above_the_mark_and_other_homes_left_out)
{
	struct export_config cfg = {
		.output_dir = out, .files_dir = files, .retry_min_ms = 20, .retry_max_ms = 100,
		.interval_s = 1, .room_mark = arr_record, .room_home = arr_home,
	};
	char want[300], text[32];
	struct parsed p;
	size_t chat1 = 0, other1 = 0, copies = 0;
	int err = 0;

	make_rooms();
	log_mix(30);
	arr_mark[0] = 2;	/* room 0: homed here, its old home exported 1-2 */
	arr_mark[1] = 2;	/* room 1: another node's; 1-2 exported by someone */
	for (uint64_t s = 1; s <= 5; s++) {
		snprintf(text, sizeof(text), "copy %llu", (unsigned long long)s);
		put_copy(0, s, 7, text);
		put_copy(1, s, 7, text);
	}
	ex = export_create(db, &cfg, &err);
	cr_assert_not_null(ex, "export_create: %d", err);
	cr_assert_eq(export_run_once(ex), 30);
	cr_assert_eq(checkpoint(), 31);

	snprintf(want, sizeof(want), "parley_7_%s_%020d-%020d.xml", rooms[0].id, 3, 5);
	parse_dir(&p, out);
	for (size_t i = 0; i < p.n; i++) {
		const struct pmsg *m = &p.m[i];
		bool r1 = !strcmp(m->room_uri, rooms[1].uri);

		if (!strcmp(m->file, want)) {
			cr_assert_str_eq(m->type, "CHAT");
			cr_assert_str_eq(m->room_uri, rooms[0].uri);
			snprintf(text, sizeof(text), "copy %lld", m->id);
			cr_assert_str_eq(m->content, text, "copy %lld carries %s", m->id, m->content);
			cr_assert(m->id >= 3 && m->id <= 5);
			copies++;
			continue;
		}
		chat1 += r1 && !strcmp(m->type, "CHAT");
		other1 += r1 && strcmp(m->type, "CHAT") != 0;
	}
	cr_assert_eq(copies, 3, "%zu messages, not copies 3-5, in %s", copies, want);
	cr_assert_eq(chat1, 0, "a CHAT of a room another node homes was exported here");
	cr_assert_gt(other1, 0, "that room's other events are this node's to export");
	parsed_free(&p);
	cr_assert_geq(arr_mark[0], 5);
	for (uint64_t s = 1; s <= 5; s++) {
		cr_assert(!has_copy(0, s), "room 0: copy %llu not deleted after its export",
			  (unsigned long long)s);
		cr_assert_eq(has_copy(1, s), s > 2, "room 1: copy %llu", (unsigned long long)s);
	}
	/* A second run finds nothing more to do. */
	cr_assert_eq(export_run_once(ex), 0);
}

/* A home's own CHAT events in a node array are written per room, named and
 * cut as its replica, once the room's next home, writes its copies of the
 * same events: same names, same bytes. So a file the home renamed but did
 * not record (killed before its mark) is written again by the next home
 * under its name, not beside it. */
#define HOME_NODE	5
#define NEXT_NODE	6

static uint64_t hm_mark[NROOMS], hm_cutv[NROOMS];
static int hm_rc;

static int
hm_home(void *arg, const uint8_t *room, uint64_t *mark, uint64_t *cut)
{
	for (int i = 0; i < NROOMS; i++)
		if (memcmp(room, rooms[i].raw, WAL_ROOM_RAW) == 0) {
			*mark = hm_mark[i];
			*cut = hm_cutv[i];
			return EXPORT_HOME_HERE;
		}
	return -EAGAIN;
}

static int
hm_record(void *arg, const uint8_t *room, uint64_t last)
{
	if (hm_rc != 0)
		return hm_rc;
	for (int i = 0; i < NROOMS; i++)
		if (memcmp(room, rooms[i].raw, WAL_ROOM_RAW) == 0 && last > hm_mark[i]) {
			hm_mark[i] = last;
			if (hm_cutv[i] <= last)
				hm_cutv[i] = 0;
		}
	return 0;
}

/* room_cut as cmark_cut: before the renames, even when the record after
 * them fails (hm_rc). */
static int
hm_cut(void *arg, const uint8_t *room, uint64_t last)
{
	for (int i = 0; i < NROOMS; i++)
		if (memcmp(room, rooms[i].raw, WAL_ROOM_RAW) == 0 && last > hm_mark[i])
			hm_cutv[i] = last;
	return 0;
}

/* The replica's copy of logged event <seq> (a CHAT) in <d>, as commit.c
 * keeps it: the logged record, then the home's node id. */
static void
copy_logged(struct db *d, uint64_t seq, uint32_t home)
{
	const struct exp *x = &exps[seq - 1];
	uint8_t key[COMMIT_REPLICA_KEY_LEN], buf[1024];
	struct wal_rec r = {
		.type = x->type, .ts_ms = T0 + seq * TS_STEP, .msg_id = x->msg_id,
		.room_uri = rooms[x->room].uri, .room_uri_len = strlen(rooms[x->room].uri),
		.user = x->user, .user_len = strlen(x->user),
		.content = x->content, .content_len = x->clen,
	};
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	ssize_t n;

	memcpy(r.room, rooms[x->room].raw, WAL_ROOM_RAW);
	n = wal_encode(0, &r, buf, sizeof(buf) - 4);
	cr_assert_gt(n, 0);
	buf[n] = (uint8_t)(home >> 24);
	buf[n + 1] = (uint8_t)(home >> 16);
	buf[n + 2] = (uint8_t)(home >> 8);
	buf[n + 3] = (uint8_t)home;
	commit_replica_key(key, rooms[x->room].raw, x->msg_id);
	rocksdb_writebatch_put_cf(wb, db_cf(d, DB_CF_META), (const char *)key, sizeof(key),
				  (const char *)buf, (size_t)n + 4);
	cr_assert_eq(db_write(d, wb, true), 0);
	rocksdb_writebatch_destroy(wb);
}

static char *
dir_file_bytes(const char *dirpath, const char *name, size_t *len)
{
	char path[700];
	char *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dirpath, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool
listed(const struct parsed *p, const char *name)
{
	for (size_t i = 0; i < p->nfiles; i++)
		if (strcmp(p->names[i], name) == 0)
			return true;
	return false;
}

/* The replica of the home's rooms: a second database with the same catalog
 * and copies of the CHAT events logged at <from> and later. */
static struct db *
open_replica(const char *path, uint64_t from)
{
	char err[256] = "";
	struct db *d;

	cr_assert_eq(mkdir(path, 0755), 0);
	d = db_open(path, NULL, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	for (int i = 0; i < NROOMS; i++) {
		struct catalog_room *cr = NULL;

		if (rooms[i].name == NULL)
			continue;
		cr_assert_eq(catalog_get(db, rooms[i].id, &cr), 0);
		cr_assert_eq(catalog_put(d, cr), 0);
		catalog_room_free(cr);
	}
	for (uint64_t s = from; s <= nexp; s++)
		if (exps[s - 1].type == WAL_EV_CHAT)
			copy_logged(d, s, HOME_NODE);
	return d;
}

/* Exports the replica's copies as the room's next home into <odir>, and
 * checks that the home's room files named in <want> (in out) are all there
 * byte for byte, and that it wrote no other file (<more> false) or none
 * with a CHAT event of those (<more> true: it holds later ones too). */
static void
next_home_writes_the_same(struct db *d, const char *odir, char **want, size_t nwant, bool more)
{
	struct export_config cfg = {
		.output_dir = odir, .files_dir = files, .node_id = NEXT_NODE,
		.max_events_per_file = 12, .retry_min_ms = 20, .retry_max_ms = 100,
		.interval_s = 1, .room_mark = hm_record, .room_home = hm_home, .room_cut = hm_cut,
	};
	struct export *e2;
	struct parsed p2;
	int err = 0;

	cr_assert_eq(mkdir(odir, 0755), 0);
	e2 = export_create(d, &cfg, &err);
	cr_assert_not_null(e2, "export_create: %d", err);
	hm_rc = 0;
	cr_assert_eq(export_run_once(e2), 0);	/* no log: only copies */
	export_destroy(e2);
	parse_dir(&p2, odir);
	if (!more)
		cr_assert_eq(p2.nfiles, nwant, "the next home wrote %zu files, the home %zu",
			     p2.nfiles, nwant);
	else
		cr_assert_gt(p2.nfiles, nwant, "the next home wrote %zu files, the home %zu",
			     p2.nfiles, nwant);
	for (size_t i = 0; i < nwant; i++) {
		size_t l1, l2;
		char *a, *b;

		cr_assert(listed(&p2, want[i]), "the next home did not write %s", want[i]);
		a = dir_file_bytes(out, want[i], &l1);
		b = dir_file_bytes(odir, want[i], &l2);
		cr_assert(l1 == l2 && memcmp(a, b, l1) == 0, "%s differs between the home "
			  "and the next home", want[i]);
		free(a);
		free(b);
	}
	if (more) {
		struct parsed p1;

		parse_dir(&p1, out);
		for (size_t i = 0; i < p2.n; i++) {
			const struct pmsg *m = &p2.m[i];
			bool wanted = false;

			for (size_t k = 0; k < nwant; k++)
				wanted |= strcmp(m->file, want[k]) == 0;
			for (size_t k = 0; !wanted && k < p1.n; k++)
				cr_assert(strcmp(p1.m[k].room_uri, m->room_uri) != 0 ||
					  p1.m[k].id != m->id || strcmp(p1.m[k].type, "CHAT") != 0,
					  "CHAT %lld of %s is in %s and in the home's %s", m->id,
					  m->room_uri, m->file, p1.m[k].file);
		}
		parsed_free(&p1);
	}
	parsed_free(&p2);
}

/* The home's files named by a room and room seqs (first above <mark> of
 * their room), into *<v>; checks that every CHAT is in one and nothing
 * else is. */
static size_t
room_files(const struct parsed *p, char ***v)
{
	size_t n = 0;
	char pre[64];

	snprintf(pre, sizeof(pre), "parley_%d_", HOME_NODE);
	*v = NULL;
	for (size_t i = 0; i < p->nfiles; i++) {
		const char *t = p->names[i] + strlen(pre);

		cr_assert_eq(strncmp(p->names[i], pre, strlen(pre)), 0);
		if (strlen(t) < CATALOG_ID_LEN + 1 || t[CATALOG_ID_LEN] != '_' || t[8] != '-')
			continue;
		for (int r = 0; r < NROOMS; r++) {
			uint64_t first = strtoull(t + CATALOG_ID_LEN + 1, NULL, 10);

			if (strncmp(t, rooms[r].id, CATALOG_ID_LEN) == 0 && first > hm_mark[r]) {
				*v = realloc(*v, (n + 1) * sizeof(**v));
				(*v)[n++] = p->names[i];
			}
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct pmsg *m = &p->m[i];
		const char *t = m->file + strlen(pre);
		bool room_file = strlen(t) > CATALOG_ID_LEN && t[CATALOG_ID_LEN] == '_';

		cr_assert_eq(room_file, strcmp(m->type, "CHAT") == 0, "%s %lld in %s", m->type,
			     m->id, m->file);
		if (room_file) {
			char want[300];
			int r;

			for (r = 0; r < NROOMS && strcmp(m->room_uri, rooms[r].uri) != 0; r++)
				;
			cr_assert_lt(r, NROOMS);
			snprintf(want, sizeof(want), "parley_%d_%s_", HOME_NODE, rooms[r].id);
			cr_assert_eq(strncmp(m->file, want, strlen(want)), 0, "CHAT %lld of room %d "
				     "in %s", m->id, r, m->file);
		}
	}
	return n;
}

/* <n> events of every type, then a CHAT in each room. */
static void
log_mix_chat(unsigned n)
{
	char buf[64];

	log_mix(n);
	for (int r = 0; r < NROOMS; r++) {
		snprintf(buf, sizeof(buf), "to room %d & <all> %llu", r,
			 (unsigned long long)nexp + 1);
		log_text(WAL_EV_CHAT, r, r % 3, buf);
	}
	flush_events();
}

static struct export *
home_exporter(void)
{
	struct export_config cfg = {
		.output_dir = out, .files_dir = files, .node_id = HOME_NODE,
		.max_events_per_file = 12, .retry_min_ms = 20, .retry_max_ms = 100,
		.interval_s = 1, .room_mark = hm_record, .room_home = hm_home, .room_cut = hm_cut,
	};
	struct export *e;
	int err = 0;

	e = export_create(db, &cfg, &err);
	cr_assert_not_null(e, "export_create: %d", err);
	return e;
}

Test(export, array_home_files_are_named_and_cut_as_the_next_homes_copy_files)
{
	char rdb[400], rout[400], **want;
	struct parsed p;
	struct db *d;
	size_t n;

	make_rooms();
	memset(hm_mark, 0, sizeof(hm_mark));
	hm_rc = 0;
	log_mix_chat(8);	/* one batch: the rooms' CHAT events in one file each */
	ex = home_exporter();
	cr_assert_eq(export_run_once(ex), 11);
	parse_dir(&p, out);
	assert_exactly_once(&p, 1, 11, false);
	memset(hm_mark, 0, sizeof(hm_mark));	/* the next home's view: as before */
	n = room_files(&p, &want);
	cr_assert_geq(n, 2, "CHAT in %zu rooms", n);
	snprintf(rdb, sizeof(rdb), "%s/replica", root);
	snprintf(rout, sizeof(rout), "%s/rout", root);
	d = open_replica(rdb, 1);
	next_home_writes_the_same(d, rout, want, n, false);
	db_close(d);
	tmpdb_remove(rdb);
	free(want);
	parsed_free(&p);
}

/* The home exports, records, logs more and is killed between the rename
 * and the etcd transaction; <later> more events per room are logged (and
 * replicated) after that run read the log. The next home, holding copies
 * of all of them, writes the home's unrecorded room files again, the same
 * names and bytes (then, with <later>, files of the later posts alone). */
static void
killed_after_rename(unsigned later)
{
	char rdb[400], rout[400], **want;
	uint64_t recorded[NROOMS];
	struct parsed p;
	struct db *d;
	size_t n;

	make_rooms();
	memset(hm_mark, 0, sizeof(hm_mark));
	hm_rc = 0;
	log_mix_chat(9);
	ex = home_exporter();
	cr_assert_eq(export_run_once(ex), 12);	/* recorded */
	memcpy(recorded, hm_mark, sizeof(recorded));
	log_mix_chat(7);
	hm_rc = -EIO;	/* killed between the rename and the etcd transaction */
	cr_assert_eq(export_run_once(ex), -EIO);
	cr_assert_eq(memcmp(recorded, hm_mark, sizeof(recorded)), 0);
	parse_dir(&p, out);
	if (later == 0) {
		cr_assert_eq(checkpoint(), 13);
		assert_exactly_once(&p, 1, 22, false);
	} else {
		for (int r = 0; r < NROOMS; r++)
			if (rooms[r].name != NULL)
				cr_assert_gt(hm_cutv[r], hm_mark[r], "room %d: no cut above its "
					     "mark", r);
	}
	n = room_files(&p, &want);	/* the unrecorded ones: above the marks */
	cr_assert_geq(n, 2, "CHAT in %zu rooms", n);
	if (later > 0)
		log_mix_chat(later);
	snprintf(rdb, sizeof(rdb), "%s/replica", root);
	snprintf(rout, sizeof(rout), "%s/rout", root);
	d = open_replica(rdb, 1);	/* copies at or below the marks are trimmed */
	next_home_writes_the_same(d, rout, want, n, later > 0);
	db_close(d);
	tmpdb_remove(rdb);
	free(want);
	parsed_free(&p);
}

Test(export, array_home_renamed_but_not_recorded_then_the_next_home_same_files)
{
	killed_after_rename(0);
}

/* As above, and the home had sequenced more posts of the rooms after the
 * run read the log's end: the next home holds copies of them too. It cuts
 * its first files where the dead home said (room_cut, before its renames)
 * that its own ended. */
Test(export, array_home_renamed_not_recorded_next_home_holds_more)
{
	killed_after_rename(5);
}

/* A room homed here again whose mark another home moved past some of the
 * CHAT events this node logged (it exported them from its copies, or
 * numbered them anew): the log leaves those out; the rest of the log, the
 * events above the mark, and the other types are exported once. */
Test(export, array_home_leaves_out_chat_at_or_below_the_mark)
{
	uint64_t mark[NROOMS];
	struct parsed p;
	size_t chat = 0;

	make_rooms();
	hm_rc = 0;
	log_mix_chat(10);
	log_mix_chat(4);
	for (int r = 0; r < NROOMS; r++)
		mark[r] = hm_mark[r] = room_seq[r] > 1 ? room_seq[r] - 1 : 0;
	ex = home_exporter();
	cr_assert_eq(export_run_once(ex), (long)nexp);
	parse_dir(&p, out);
	for (uint64_t s = 1; s <= nexp; s++) {
		const struct exp *x = &exps[s - 1];
		size_t found = 0;

		for (size_t i = 0; i < p.n; i++)
			if (seq_of(&p.m[i]) == s) {
				check_fields(&p.m[i], s, false);
				found++;
			}
		if (x->type != WAL_EV_CHAT || x->msg_id > mark[x->room])
			cr_assert_eq(found, 1, "event %lu (%s): %zu times", s,
				     wal_event_name(x->type), found);
		else
			cr_assert_eq(found, 0, "CHAT %lu of room %d at or below its mark %lu "
				     "exported", x->msg_id, x->room, mark[x->room]);
		chat += x->type == WAL_EV_CHAT && x->msg_id > mark[x->room];
	}
	cr_assert_geq(chat, 2);
	parsed_free(&p);
}

/* One request through the storage thread, waited for. */
static void
commit_one(struct commit_producer *prod, enum commit_op op, int room, uint64_t seq,
	   const char *body)
{
	struct commit_req *q = commit_req_get(prod), *got;

	cr_assert_not_null(q);
	q->op = op;
	q->ev = WAL_EV_CHAT;
	q->logged = true;
	memcpy(q->room, rooms[room].raw, 16);
	q->room_seq = seq;
	q->room_uri = rooms[room].uri;
	q->room_uri_len = strlen(rooms[room].uri);
	q->user = users[0];
	q->user_len = strlen(users[0]);
	q->body = q->content = body;
	q->body_len = q->content_len = strlen(body);
	cr_assert_eq(commit_submit(prod, &q, 1), 1);
	while (commit_poll(prod, &got, 1) == 0)
		sched_yield();
	cr_assert_eq(got->status, 0);
	commit_req_put(prod, got);
}

/* A home's tail that no replica acknowledged and a later home numbered
 * anew (this node truncated it when that home probed it as its replica,
 * COMMIT_REPLICA_TRUNCATE): its CHAT events are void, and when the room is
 * homed here again the log pass leaves them out, while what was logged
 * before (below the seq) and after (numbered anew, here or as copies) is
 * exported once. The void range goes once the checkpoint passed it. */
Test(export, array_void_tail_left_out)
{
	struct commit_config cc = { .nproducers = 1, .depth = 16 };
	static const char *const old[] = { "a1", "a2", "a3", "tail4", "tail5", "tail6" };
	static const char *const other[] = { "b1", "b2", "b3", "b4", "b5", "b6" };
	struct commit_producer *prod;
	struct commit *c;
	struct parsed p;
	rocksdb_iterator_t *it;
	int err;

	make_rooms();
	c = commit_create(db, &cc, &err);
	cr_assert_not_null(c, "commit_create %d", err);
	prod = commit_producer(c, 0);
	for (uint64_t s = 1; s <= 6; s++) {
		commit_one(prod, COMMIT_POST, 0, s, old[s - 1]);
		commit_one(prod, COMMIT_POST, 1, s, other[s - 1]);
	}
	commit_one(prod, COMMIT_REPLICA_TRUNCATE, 0, 4, "");
	commit_one(prod, COMMIT_POST, 0, 4, "new4");
	commit_one(prod, COMMIT_POST, 0, 5, "new5");
	commit_stop(c);
	commit_destroy(c);

	ex = home_exporter();
	cr_assert_eq(export_run_once(ex), 14);
	parse_dir(&p, out);
	cr_assert_eq(p.n, 11, "%zu events exported", p.n);
	for (size_t i = 0; i < p.n; i++) {
		cr_assert_str_eq(p.m[i].type, "CHAT");
		cr_assert(strstr(p.m[i].content, "tail") == NULL, "void %s exported",
			  p.m[i].content);
		if (strcmp(p.m[i].room_uri, rooms[0].uri) == 0 && p.m[i].id >= 4)
			cr_assert(strncmp(p.m[i].content, "new", 3) == 0, "%lld: %s", p.m[i].id,
				  p.m[i].content);
	}
	parsed_free(&p);
	cr_assert_eq(export_run_once(ex), 0);	/* the checkpoint passed it */
	it = rocksdb_create_iterator_cf(db_rocks(db), db_ropts(db), db_cf(db, DB_CF_META));
	rocksdb_iter_seek(it, COMMIT_VOID_PREFIX, 6);
	if (rocksdb_iter_valid(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);

		cr_assert(klen < 6 || memcmp(k, COMMIT_VOID_PREFIX, 6) != 0,
			  "a spent void range is still there");
	}
	rocksdb_iter_destroy(it);
}

/* hold_unsettled: a home's own CHAT event logged after the exporter was
 * created waits until its room's home settled its seq (storage/acked.h);
 * the batch ends before it, other rooms' and other types' events before it
 * go out, and the next run takes the rest once it is settled. Events
 * logged before the exporter (an earlier process) are not held. */
Test(export, array_home_holds_what_its_home_did_not_settle)
{
	struct export_config cfg = {
		.output_dir = out, .files_dir = files, .node_id = HOME_NODE,
		.max_events_per_file = 100, .retry_min_ms = 20, .retry_max_ms = 100,
		.interval_s = 1, .room_mark = hm_record, .room_home = hm_home, .room_cut = hm_cut,
		.hold_unsettled = true,
	};
	struct acked *t = db_acked(db);
	uint64_t before, held_at = 0;
	struct parsed p;
	int err = 0;

	make_rooms();
	log_mix_chat(4);	/* an earlier process's: not held */
	before = nexp;
	ex = export_create(db, &cfg, &err);
	cr_assert_not_null(ex, "export_create: %d", err);
	log_mix_chat(6);
	for (uint64_t s = before + 1; s <= nexp && held_at == 0; s++)
		if (exps[s - 1].type == WAL_EV_CHAT && exps[s - 1].room == 0)
			held_at = s;
	cr_assert_neq(held_at, 0);
	for (int r = 1; r < NROOMS; r++)
		acked_publish(t, rooms[r].raw, room_seq[r]);
	acked_publish(t, rooms[0].raw, exps[held_at - 1].msg_id - 1);
	cr_assert_eq(export_run_once(ex), (long)held_at - 1, "exported up to the held one");
	cr_assert_eq(checkpoint(), held_at);
	cr_assert_eq(export_run_once(ex), 0, "still held");
	acked_publish(t, rooms[0].raw, room_seq[0]);
	cr_assert_eq(export_run_once(ex), (long)(nexp - held_at + 1));
	parse_dir(&p, out);
	assert_exactly_once(&p, 1, nexp, false);
	parsed_free(&p);
}

/* The table itself: none, then the highest published; many rooms. */
Test(export, acked_table)
{
	struct acked *t = acked_create();
	uint8_t room[16] = { 0xff };

	make_rooms();
	cr_assert_not_null(t);
	cr_assert_eq(acked_get(t, rooms[0].raw), 0);
	acked_publish(t, rooms[0].raw, 7);
	acked_publish(t, rooms[0].raw, 5);
	cr_assert_eq(acked_get(t, rooms[0].raw), 7);
	for (uint32_t i = 0; i < 5000; i++) {
		memcpy(room + 1, &i, sizeof(i));
		acked_publish(t, room, i + 1);
	}
	for (uint32_t i = 0; i < 5000; i++) {
		memcpy(room + 1, &i, sizeof(i));
		cr_assert_eq(acked_get(t, room), i + 1, "room %u: %lu", i, acked_get(t, room));
	}
	cr_assert_eq(acked_get(t, rooms[1].raw), 0);
	acked_destroy(t);
}
