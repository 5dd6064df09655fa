/* The compliance exporter tests' kit (see exportkit.h): the `export`
 * suite's fixture, writing events, reading the XML output back. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include "storage/catalog.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/wal.h"
#include "dbfixture.h"
#include "exportkit.h"

char ek_root[256], ek_out[320], ek_files[320];
struct export *ek_ex;
struct db *ek_db;

struct ek_room ek_rooms[EK_NROOMS];

struct ek_exp *ek_exps;
uint64_t ek_nexp;
uint64_t ek_room_seq[EK_NROOMS];
static rocksdb_writebatch_t *pending;

const char *const ek_users[EK_USERS] = {
	"sip:alice@example.com",
	"sip:Bob.Smith@example.com",
	"sips:carol@other.org;transport=tls",
};

static void
ex_setup(void)
{
	setup();
	ek_db = db;
	tmpdb_make(ek_root, sizeof(ek_root));
	snprintf(ek_out, sizeof(ek_out), "%s/out", ek_root);
	snprintf(ek_files, sizeof(ek_files), "%s/files", ek_root);
	cr_assert_eq(mkdir(ek_out, 0755), 0);
	cr_assert_eq(mkdir(ek_files, 0755), 0);
	ek_exps = NULL;
	ek_nexp = 0;
	memset(ek_room_seq, 0, sizeof(ek_room_seq));
	xmlInitParser();
}

static void
ex_teardown(void)
{
	export_destroy(ek_ex);
	ek_ex = NULL;
	teardown();
	tmpdb_remove(ek_root);
}

TestSuite(export, .init = ex_setup, .fini = ex_teardown, .timeout = 120);

/* ---- writing events ---- */

void
ek_make_rooms(void)
{
	static const char *const names[EK_NROOMS] = { "Room A", "Room <B> & \"co\"", NULL };

	for (int i = 0; i < EK_NROOMS; i++) {
		struct ek_room *t = &ek_rooms[i];

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

void
ek_flush_events(void)
{
	if (pending == NULL)
		return;
	cr_assert_eq(db_write(db, pending, true), 0);
	rocksdb_writebatch_destroy(pending);
	pending = NULL;
}

/* Logs one event with the next seq (buffered until ek_flush_events). */
uint64_t
ek_log_ev(enum wal_event t, int room, int user, const char *content, size_t clen, const char *want)
{
	uint64_t seq = ++ek_nexp;
	struct ek_exp *x;
	struct wal_rec r;

	ek_exps = realloc(ek_exps, ek_nexp * sizeof(*ek_exps));
	cr_assert_not_null(ek_exps);
	x = &ek_exps[seq - 1];
	x->type = t;
	x->room = room;
	x->user = ek_users[user];
	x->content = malloc(clen + 1);
	memcpy(x->content, content, clen);
	x->content[clen] = '\0';
	x->clen = clen;
	x->want = strdup(want != NULL ? want : x->content);
	x->msg_id = t == WAL_EV_CHAT ? ++ek_room_seq[room] : 0;

	memset(&r, 0, sizeof(r));
	r.type = t;
	r.ts_ms = EK_T0 + seq * EK_TS_STEP;
	r.msg_id = x->msg_id;
	memcpy(r.room, ek_rooms[room].raw, WAL_ROOM_RAW);
	r.room_uri = ek_rooms[room].uri;
	r.room_uri_len = strlen(ek_rooms[room].uri);
	r.user = x->user;
	r.user_len = strlen(x->user);
	r.content = x->content;
	r.content_len = clen;
	if (pending == NULL)
		pending = rocksdb_writebatch_create();
	cr_assert_eq(wal_batch_put(db, pending, seq, &r), 0);
	return seq;
}

void
ek_log_text(enum wal_event t, int room, int user, const char *content)
{
	ek_log_ev(t, room, user, content, strlen(content), NULL);
}

/* Puts a file into the file store and logs its FILEUPLOAD. */
void
ek_log_upload(int room, int user, const char *name, size_t size)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", ek_files, ek_rooms[room].id);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", ek_files, ek_rooms[room].id, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (size_t i = 0; i < size; i++)
		fputc((int)('a' + (i * 7 + strlen(name)) % 26), f);
	cr_assert_eq(fclose(f), 0);
	ek_log_text(WAL_EV_FILEUPLOAD, room, user, name);
}

/* Cycles through every event type and room. */
void
ek_log_mix(unsigned n)
{
	char buf[64];

	for (unsigned i = 0; i < n; i++) {
		enum wal_event t = (enum wal_event)(1 + (ek_nexp + 1) % (WAL_EV_MAX - 1));
		int room = (int)((ek_nexp + 1) % EK_NROOMS), user = (int)((ek_nexp / 3) % 3);

		switch (t) {
		case WAL_EV_JOIN:
		case WAL_EV_PART:
			ek_log_text(t, room, user, "");
			break;
		case WAL_EV_FILEUPLOAD:
			snprintf(buf, sizeof(buf), "5b0c7c1e-aaaa-4bbb-8ccc-%012llx.txt",
				 (unsigned long long)ek_nexp + 1);
			ek_log_upload(room, user, buf, 100 + ek_nexp);
			break;
		case WAL_EV_FILEDOWNLOAD:
			ek_log_text(t, room, user, "006074ca-24f0-4b35-8bd8-98006a2d1aa8.txt");
			break;
		default:
			snprintf(buf, sizeof(buf), "%s %llu", t == WAL_EV_CHAT ? "hello" :
				 "history viewed", (unsigned long long)ek_nexp + 1);
			ek_log_text(t, room, user, buf);
		}
	}
	ek_flush_events();
}

void
ek_new_exporter(bool per_room, const char *attr, uint64_t max_events)
{
	struct export_config cfg = {
		.output_dir = ek_out,
		.files_dir = ek_files,
		.per_room_files = per_room,
		.sender_name_attr = attr,
		.max_events_per_file = max_events,
		.retry_min_ms = 20,
		.retry_max_ms = 100,
		.interval_s = 1,
	};
	int err = 0;

	export_destroy(ek_ex);
	ek_ex = export_create(db, &cfg, &err);
	cr_assert_not_null(ek_ex, "export_create: %d", err);
}

uint64_t
ek_checkpoint(void)
{
	uint64_t c;

	cr_assert_eq(wal_checkpoint(db, &c), 0);
	return c;
}

/* ---- reading the output ---- */

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
	cr_assert_eq(ticks, ms * 10000 + EK_TICKS_1970, "%s: long %s vs since1970 %s", n->name, l, s);
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
read_message(xmlNode *n, struct ek_msg *m)
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
same_msg(const struct ek_msg *a, const struct ek_msg *b)
{
	return strcmp(a->type, b->type) == 0 && strcmp(a->content, b->content) == 0 &&
	       a->id == b->id && a->upper == b->upper && strcmp(a->uname, b->uname) == 0 &&
	       a->sid == b->sid && strcmp(a->suri, b->suri) == 0 && a->ms == b->ms &&
	       (a->email == NULL) == (b->email == NULL) &&
	       (a->email == NULL || strcmp(a->email, b->email) == 0);
}

static void
free_msg(struct ek_msg *m)
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
parse_file(struct ek_parsed *p, const char *dirpath, const char *name)
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
		struct ek_msg first;
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
			struct ek_msg *pm;

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
void
ek_parse_dir(struct ek_parsed *p, const char *dirpath)
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

void
ek_parsed_free(struct ek_parsed *p)
{
	for (size_t i = 0; i < p->n; i++)
		free_msg(&p->m[i]);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->names[i]);
	free(p->m);
	free(p->names);
}

uint64_t
ek_seq_of(const struct ek_msg *m)
{
	cr_assert_geq(m->ms, EK_T0 + EK_TS_STEP);
	cr_assert_eq((m->ms - EK_T0) % EK_TS_STEP, 0);
	return (m->ms - EK_T0) / EK_TS_STEP;
}

/* Compares a message with what was logged under its seq. */
void
ek_check_fields(const struct ek_msg *m, uint64_t seq, bool upper)
{
	const struct ek_exp *x = &ek_exps[seq - 1];
	const struct ek_room *t = &ek_rooms[x->room];
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
void
ek_assert_exactly_once(const struct ek_parsed *p, uint64_t from, uint64_t to, bool upper)
{
	unsigned *seen = calloc(to + 2, sizeof(*seen));

	for (size_t i = 0; i < p->n; i++) {
		uint64_t s = ek_seq_of(&p->m[i]);

		cr_assert(s >= from && s <= to, "seq %llu outside [%llu, %llu]",
			  (unsigned long long)s, (unsigned long long)from, (unsigned long long)to);
		seen[s]++;
		ek_check_fields(&p->m[i], s, upper);
	}
	for (uint64_t s = from; s <= to; s++)
		cr_assert_eq(seen[s], 1, "seq %llu seen %u times", (unsigned long long)s, seen[s]);
	free(seen);
}

/* One export run that takes <n> events, after which <where> holds events
 * <first>..<last> exactly once each. */
void
ek_export_expect(int n, const char *where, uint64_t first, uint64_t last, bool upper)
{
	struct ek_parsed p;

	cr_assert_eq(export_run_once(ek_ex), n);
	ek_parse_dir(&p, where);
	ek_assert_exactly_once(&p, first, last, upper);
	ek_parsed_free(&p);
}

void
ek_file_name(char *buf, size_t len, uint64_t first, uint64_t last, const char *room)
{
	snprintf(buf, len, "parley_%llu_%020llu-%020llu%s%.36s.xml", (unsigned long long)db_node_id(db),
		 (unsigned long long)first, (unsigned long long)last, room != NULL ? "_" : "",
		 room != NULL ? room : "");
}

char *
ek_slurp(const char *path, size_t *len)
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

unsigned
ek_count_entries(const char *dirpath, const char *prefix)
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

/* The log as it is before an export ... */
void
ek_save_log(struct ek_saved *s)
{
	s->n = ek_nexp;
	s->v = calloc(ek_nexp + 1, sizeof(*s->v));
	s->len = calloc(ek_nexp + 1, sizeof(*s->len));
	for (uint64_t q = 1; q <= ek_nexp; q++)
		s->v[q] = raw_get(q, &s->len[q]);
}

/* ... and put back after it: the state of a crash after the files were
 * renamed and before the checkpoint moved (and so before the trim). */
void
ek_restore_log(struct ek_saved *s)
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

void
ek_raw_put(uint64_t seq, const void *v, size_t len)
{
	raw_put(seq, v, len);
}

char *
ek_raw_get(uint64_t seq, size_t *len)
{
	return raw_get(seq, len);
}
