#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "storage/catalog.h"
#include "storage/db.h"
#include "dbfixture.h"


TestSuite(catalog, .init = setup, .fini = teardown);

static struct catalog_room *
full_room(const char *name)
{
	struct catalog_room *r = catalog_room_new("example.com", name);

	cr_assert_not_null(r);
	cr_assert_eq(catalog_room_set(r, CATALOG_DESCRIPTION, "Builds & \"releases\""), 0);
	cr_assert_eq(catalog_room_set(r, CATALOG_TOPIC, "green"), 0);
	cr_assert_eq(catalog_room_set(r, CATALOG_CATEGORY, "ma-cat://example.com/root"), 0);
	r->privacy = CATALOG_CLOSED;
	r->props = CATALOG_PROP_FILEPOST | CATALOG_PROP_LOGGED;
	cr_assert_eq(catalog_strset_add(&r->members, "sip:alice@example.com"), 0);
	cr_assert_eq(catalog_strset_add(&r->members, "sip:bob@example.com"), 0);
	cr_assert_eq(catalog_strset_add(&r->members, "SIP:Alice@example.com"), 0);	/* dup */
	cr_assert_eq(catalog_strset_add(&r->managers, "sip:alice@example.com"), 0);
	return r;
}

static void
assert_same(const struct catalog_room *a, const struct catalog_room *b)
{
	cr_assert_str_eq(a->id, b->id);
	cr_assert_str_eq(a->uri, b->uri);
	cr_assert_str_eq(a->name, b->name);
	cr_assert_str_eq(a->description, b->description);
	cr_assert_str_eq(a->topic, b->topic);
	cr_assert_str_eq(a->category, b->category);
	cr_assert_eq(a->privacy, b->privacy);
	cr_assert_eq(a->props, b->props);
	cr_assert_eq(a->created_ms, b->created_ms);
	cr_assert_eq(a->members.n, b->members.n);
	for (size_t i = 0; i < a->members.n; i++)
		cr_assert(catalog_strset_has(&b->members, a->members.v[i]));
	cr_assert_eq(a->managers.n, b->managers.n);
}

Test(catalog, new_room_has_v4_guid_and_canonical_uri)
{
	struct catalog_room *r = catalog_room_new("example.com", "Build");
	uint8_t raw[CATALOG_ID_RAW];
	char back[CATALOG_ID_LEN + 1];
	char want[128];

	cr_assert_not_null(r);
	cr_assert_eq(strlen(r->id), 36);
	cr_assert_eq(r->id[14], '4');
	cr_assert(strchr("89ab", r->id[19]) != NULL);
	for (const char *p = r->id; *p; p++)
		cr_assert(!(*p >= 'A' && *p <= 'Z'));
	snprintf(want, sizeof(want), "ma-chan://example.com/%s", r->id);
	cr_assert_str_eq(r->uri, want);
	cr_assert_eq(catalog_id_pack(r->id, raw), 0);
	catalog_id_unpack(raw, back);
	cr_assert_str_eq(back, r->id);
	cr_assert_eq(catalog_id_pack("5B0C7C1E-0000-4000-8000-000000000000", raw), -EINVAL);
	cr_assert_eq(catalog_id_pack("5b0c7c1e-0000-4000-8000-00000000000", raw), -EINVAL);
	cr_assert(r->props & CATALOG_PROP_LOGGED);
	cr_assert_gt(r->created_ms, 1600000000000ull);
	catalog_room_free(r);
	cr_assert_null(catalog_room_new("example.com", ""));
}

Test(catalog, put_get_roundtrip_and_reopen_keeps_ids)
{
	struct catalog_room *r = full_room("Build"), *g = NULL;
	char id[CATALOG_ID_LEN + 1];

	cr_assert_eq(r->members.n, 2);
	cr_assert_eq(catalog_put(db, r), 0);
	cr_assert_eq(catalog_get(db, r->id, &g), 0);
	assert_same(r, g);
	catalog_room_free(g);
	memcpy(id, r->id, sizeof(id));

	db_close(db);
	open_db();
	cr_assert_eq(catalog_get(db, id, &g), 0);
	assert_same(r, g);
	catalog_room_free(g);
	cr_assert_eq(catalog_get_by_name(db, "bUILD", &g), 0);
	cr_assert_str_eq(g->id, id);
	catalog_room_free(g);
	catalog_room_free(r);
}

Test(catalog, names_are_unique_regardless_of_case)
{
	struct catalog_room *a = full_room("Build"), *b = full_room("build"), *g = NULL;

	cr_assert_eq(catalog_put(db, a), 0);
	cr_assert_eq(catalog_put(db, b), -EEXIST);
	cr_assert_eq(catalog_get(db, b->id, &g), -ENOENT);

	/* Renaming a frees its old name for b. */
	cr_assert_eq(catalog_room_set(a, CATALOG_NAME, "Release"), 0);
	cr_assert_eq(catalog_put(db, a), 0);
	cr_assert_eq(catalog_get_by_name(db, "BUILD", &g), -ENOENT);
	cr_assert_eq(catalog_put(db, b), 0);
	cr_assert_eq(catalog_get_by_name(db, "release", &g), 0);
	cr_assert_str_eq(g->id, a->id);
	catalog_room_free(g);

	/* Re-putting a room under its own name is an update, not a clash. */
	cr_assert_eq(catalog_room_set(a, CATALOG_TOPIC, "new topic"), 0);
	cr_assert_eq(catalog_put(db, a), 0);
	cr_assert_eq(catalog_get(db, a->id, &g), 0);
	cr_assert_str_eq(g->topic, "new topic");
	catalog_room_free(g);
	catalog_room_free(a);
	catalog_room_free(b);
}

Test(catalog, delete_removes_room_and_name)
{
	struct catalog_room *a = full_room("Build"), *g = NULL;

	cr_assert_eq(catalog_put(db, a), 0);
	cr_assert_eq(catalog_delete(db, a->id), 0);
	cr_assert_eq(catalog_get(db, a->id, &g), -ENOENT);
	cr_assert_eq(catalog_get_by_name(db, "Build", &g), -ENOENT);
	cr_assert_eq(catalog_delete(db, a->id), -ENOENT);
	catalog_room_free(a);
}

static int
count_rooms(void *arg, const struct catalog_room *r)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

Test(catalog, load_all_returns_every_room)
{
	struct catalog_room **all = NULL;
	char name[32];
	size_t n = 0;
	int seen = 0;

	for (int i = 0; i < 20; i++) {
		struct catalog_room *r;

		snprintf(name, sizeof(name), "room %d", i);
		r = full_room(name);
		cr_assert_eq(catalog_put(db, r), 0);
		catalog_room_free(r);
	}
	cr_assert_eq(catalog_load_all(db, &all, &n), 0);
	cr_assert_eq(n, 20);
	for (size_t i = 1; i < n; i++)
		cr_assert_lt(strcmp(all[i - 1]->id, all[i]->id), 0);
	cr_assert_eq(all[0]->members.n, 2);
	catalog_rooms_free(all, n);
	cr_assert_eq(catalog_foreach(db, count_rooms, &seen), 0);
	cr_assert_eq(seen, 20);
}

Test(catalog, decode_refuses_newer_and_malformed)
{
	struct catalog_room *r = full_room("Build"), *g = NULL;
	const char *newer = "{\"v\":2,\"id\":\"x\"}";
	char *enc;
	size_t len;

	enc = catalog_encode(r, &len);
	cr_assert_not_null(enc);
	cr_assert_not_null(strstr(enc, "\"v\":1"));
	cr_assert_eq(catalog_decode(enc, len, &g), 0);
	assert_same(r, g);
	catalog_room_free(g);
	cr_assert_eq(catalog_decode(enc, len / 2, &g), -EBADMSG);
	cr_assert_eq(catalog_decode(newer, strlen(newer), &g), -EPROTONOSUPPORT);
	free(enc);
	catalog_room_free(r);
}
