/* The data plane's room table: an immutable snapshot of the catalog; see
 * roomtab.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/chat/roomtab.h"

static int
cmp_room(const void *a, const void *b)
{
	return memcmp(((const struct roomtab_ent *)a)->raw, ((const struct roomtab_ent *)b)->raw,
		      CATALOG_ID_RAW);
}

/* FNV-1a over the id: stable across restarts and builds, so a room keeps
 * its home lcore as long as the lcore count stays. */
static uint32_t
home_of(const uint8_t raw[CATALOG_ID_RAW], uint32_t nlcores)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < CATALOG_ID_RAW; i++)
		h = (h ^ raw[i]) * 16777619u;
	return nlcores ? h % nlcores : 0;
}

struct roomtab *
roomtab_build(struct catalog_room **rooms, size_t n, uint32_t nlcores)
{
	struct roomtab *t = calloc(1, sizeof(*t));
	size_t i;

	if (t == NULL || (n > 0 && (t->v = calloc(n, sizeof(*t->v))) == NULL))
		goto out_fail;
	for (i = 0; i < n; i++) {
		if (catalog_id_pack(rooms[i]->id, t->v[i].raw) != 0)
			goto out_fail;
		t->v[i].cat = rooms[i];
		t->v[i].home = home_of(t->v[i].raw, nlcores);
		rooms[i] = NULL;
		t->n++;
	}
	qsort(t->v, t->n, sizeof(*t->v), cmp_room);
	atomic_init(&t->refs, 1);
	t->nlcores = nlcores;
	free(rooms);
	return t;

out_fail:
	for (i = 0; i < n; i++)
		catalog_room_free(rooms[i]);
	free(rooms);
	if (t != NULL) {
		for (i = 0; i < t->n; i++)
			catalog_room_free(t->v[i].cat);
		free(t->v);
		free(t);
	}
	return NULL;
}

void
roomtab_set_array(struct roomtab *t, uint32_t self)
{
	t->self = self;
	for (size_t i = 0; i < t->n; i++) {
		t->v[i].node = ROOMTAB_NODE_NONE;
		t->v[i].epoch = 0;
		t->v[i].replica = ROOMTAB_NODE_NONE;
	}
}

void
roomtab_get(struct roomtab *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void
roomtab_put(struct roomtab *t)
{
	if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < t->n; i++)
		catalog_room_free(t->v[i].cat);
	free(t->v);
	free(t);
}

const struct roomtab_ent *
roomtab_find_raw(const struct roomtab *t, const uint8_t raw[CATALOG_ID_RAW])
{
	struct roomtab_ent key;

	memcpy(key.raw, raw, CATALOG_ID_RAW);
	return bsearch(&key, t->v, t->n, sizeof(*t->v), cmp_room);
}

const struct roomtab_ent *
roomtab_find_id(const struct roomtab *t, const char *s, size_t len)
{
	char id[CATALOG_ID_LEN + 1];
	uint8_t raw[CATALOG_ID_RAW];

	if (len != CATALOG_ID_LEN)
		return NULL;
	memcpy(id, s, len);
	id[len] = '\0';
	/* Stored ids are lower case; a client that upper-cased one still
	 * means the same room. */
	for (size_t i = 0; i < len; i++)
		if (id[i] >= 'A' && id[i] <= 'F')
			id[i] = (char)(id[i] - 'A' + 'a');
	if (catalog_id_pack(id, raw) != 0)
		return NULL;
	return roomtab_find_raw(t, raw);
}

const struct roomtab_ent *
roomtab_find_uri(const struct roomtab *t, const char *s, size_t len)
{
	const struct roomtab_ent *r;

	if (len <= CATALOG_ID_LEN)
		return NULL;
	r = roomtab_find_id(t, s + len - CATALOG_ID_LEN, CATALOG_ID_LEN);
	if (r == NULL || strlen(r->cat->uri) != len || strncasecmp(r->cat->uri, s, len) != 0)
		return NULL;
	return r;
}

static const char *
skip_scheme(const char *s)
{
	return strncasecmp(s, "sip:", 4) == 0 ? s + 4 : s;
}

bool
roomtab_user_eq(const char *a, const char *b)
{
	return strcasecmp(skip_scheme(a), skip_scheme(b)) == 0;
}

static bool
in_set(const struct catalog_strset *s, const char *aor)
{
	for (size_t i = 0; i < s->n; i++)
		if (roomtab_user_eq(s->v[i], aor))
			return true;
	return false;
}

bool
roomtab_is_manager(const struct roomtab_ent *r, const char *aor)
{
	return in_set(&r->cat->managers, aor);
}

bool
roomtab_is_member(const struct roomtab_ent *r, const char *aor)
{
	return in_set(&r->cat->members, aor) || in_set(&r->cat->managers, aor);
}

bool
roomtab_may_see(const struct roomtab_ent *r, const char *aor)
{
	return r->cat->privacy != CATALOG_SECRET || roomtab_is_member(r, aor);
}

bool
roomtab_may_join(const struct roomtab_ent *r, const char *aor)
{
	return r->cat->privacy == CATALOG_OPEN || roomtab_is_member(r, aor);
}
