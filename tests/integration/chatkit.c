/* Shared Group Chat test helpers; see chatkit.h. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>

#include "tests/integration/chatkit.h"

struct gc *
kit_login(const struct server *s, const char *aor, const char *pw)
{
	char err[256];
	struct gc *g = gc_open("127.0.0.1", s->port, aor, pw, err, sizeof(err));

	if (g == NULL)
		run("tail -50 %s >&2", s->log);
	cr_assert_not_null(g, "%s: %s", aor, err);
	return g;
}

struct gc *
kit_user(const struct server *s, int i)
{
	char aor[64];

	snprintf(aor, sizeof(aor), "user%d@example.com", i);
	return kit_login(s, aor, "pw");
}

char *
kit_chansrch(struct gc *g, const char *criteria)
{
	char q[512], *b;

	snprintf(q, sizeof(q), "<qib qtype=\"BYNAME\" criteria=\"%s\" extended=\"false\"/>",
		 criteria ? criteria : "");
	cr_assert_eq(gc_cmd(g, "chansrch", q), 200);
	b = gc_wait(g, 5000, "rpl:chansrch", NULL);
	cr_assert_not_null(b, "no rpl:chansrch");
	return b;
}

bool
kit_room_uri(struct gc *g, const char *name, char *uri, size_t cap)
{
	char *b = kit_chansrch(g, "");
	bool ok = gc_room_uri(b, name, uri, cap);

	free(b);
	return ok;
}

void
kit_join_ok(struct gc *g, const char *uri)
{
	char *b = gc_join(g, uri, 5000);

	cr_assert_not_null(b, "%s: no rpl:join", gc_aor(g));
	cr_assert(strstr(b, "code=\"200\"") != NULL, "%s: join: %s", gc_aor(g), b);
	free(b);
}

int
kit_resp_code(const char *body)
{
	const char *p = body ? strstr(body, "<resp code=\"") : NULL;

	return p ? atoi(p + 12) : -1;
}

static void
ev_add(struct kit_evs *e, const struct kit_ev *x)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 256;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
		cr_assert_not_null(e->v);
	}
	e->v[e->n++] = *x;
}

static void
prop(xmlNodePtr n, const char *name, char *out, size_t cap)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);

	snprintf(out, cap, "%s", v ? (const char *)v : "");
	xmlFree(v);
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
read_messages(xmlNodePtr conv, struct kit_evs *out)
{
	char room[128] = "";

	for (xmlNodePtr k = conv->children; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (!strcmp((const char *)k->name, "Channel"))
			prop(k, "uri", room, sizeof(room));
		if (strcmp((const char *)k->name, "Messages"))
			continue;
		for (xmlNodePtr m = k->children; m; m = m->next) {
			struct kit_ev x = { 0 };
			char id[32];

			if (m->type != XML_ELEMENT_NODE)
				continue;
			prop(m, "type", x.type, sizeof(x.type));
			prop(m, "content", x.content, sizeof(x.content));
			prop(m, "id", id, sizeof(id));
			x.id = atol(id);
			snprintf(x.room, sizeof(x.room), "%s", room);
			for (xmlNodePtr sn = m->children; sn; sn = sn->next) {
				char t[32];

				if (sn->type != XML_ELEMENT_NODE)
					continue;
				if (!strcmp((const char *)sn->name, "Sender"))
					prop(sn, "uri", x.user, sizeof(x.user));
				if (!strcmp((const char *)sn->name, "DateTimeUTC")) {
					prop(sn, "since1970", t, sizeof(t));
					x.ms = strtoll(t, NULL, 10);
				}
			}
			ev_add(out, &x);
		}
	}
}

void
kit_read_export(const char *dir, struct kit_evs *out)
{
	char xsd[600], **names = NULL;
	xmlSchemaParserCtxtPtr pc;
	xmlSchemaPtr schema;
	struct dirent *de;
	size_t nn = 0, cap = 0;
	DIR *d;

	snprintf(xsd, sizeof(xsd), "%s/tests/data/compliance.xsd", getenv("PARLEY_SRCDIR"));
	pc = xmlSchemaNewParserCtxt(xsd);
	schema = xmlSchemaParse(pc);
	xmlSchemaFreeParserCtxt(pc);
	cr_assert_not_null(schema, "the XSD %s does not load", xsd);
	d = opendir(dir);
	cr_assert_not_null(d, "no output directory %s", dir);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strstr(de->d_name, ".xml") == NULL)
			continue;
		if (nn == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			cr_assert_not_null(names);
		}
		names[nn++] = strdup(de->d_name);
	}
	closedir(d);
	if (nn > 0)
		qsort(names, nn, sizeof(names[0]), by_name);
	for (size_t f = 0; f < nn; f++) {
		char path[1200];
		xmlSchemaValidCtxtPtr vc;
		xmlDocPtr doc;

		snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
		doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
		cr_assert_not_null(doc, "%s is not XML", path);
		vc = xmlSchemaNewValidCtxt(schema);
		cr_assert_eq(xmlSchemaValidateDoc(vc, doc), 0, "%s does not validate", path);
		xmlSchemaFreeValidCtxt(vc);
		for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c; c = c->next)
			if (c->type == XML_ELEMENT_NODE)
				read_messages(c, out);
		xmlFreeDoc(doc);
		out->files++;
		free(names[f]);
	}
	free(names);
	xmlSchemaFree(schema);
}

int
kit_count(const struct kit_evs *e, const char *type, const char *content)
{
	int n = 0;

	for (size_t i = 0; i < e->n; i++)
		n += !strcmp(e->v[i].type, type) && (content == NULL || !strcmp(e->v[i].content, content));
	return n;
}

void
kit_evs_free(struct kit_evs *e)
{
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}
