/* Rooms and invitations for the control socket: rooms, room, room
 * create|set|del, member and manager add|del, invite.
 *
 * A change is written to the catalog (RocksDB, synchronously), then a new
 * room table is built from the whole catalog and published to the lcores,
 * and the command returns only once every running lcore uses it
 * (chatctl_settle): the next join, post or chansrch sees the change.
 * Rooms declared in the configuration file are written again from it at
 * the next start (rooms_boot_sync), so changes to those last until then. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "control/array.h"
#include "control/catalog_sync.h"
#include "control/ctl_int.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/chatctl.h"
#include "dataplane/engine/engine.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/xccos/xccos.h"
#include "storage/catalog.h"
#include "storage/prefs.h"

#define USER_MAX	160

/* ---- the room table ------------------------------------------------------ */

static struct roomtab *
build_table(struct ctl *c, int *err)
{
	struct catalog_room **rooms;
	struct roomtab *t;
	size_t n;

	*err = catalog_load_all(c->db, &rooms, &n);
	if (*err != 0)
		return NULL;
	t = roomtab_build(rooms, n, c->nlcores);
	if (t == NULL) {
		*err = -ENOMEM;
	} else if (c->array != NULL) {
		roomtab_set_array(t, array_node_id(c->array));
		array_fill_homes(c->array, t);
	}
	return t;
}

int
ctl_rooms_init(struct ctl *c)
{
	int rc;

	c->rooms = build_table(c, &rc);
	return c->rooms ? 0 : rc;
}

void
ctl_rooms_fini(struct ctl *c)
{
	roomtab_put(c->rooms);
	c->rooms = NULL;
}

int
ctl_rooms_publish(struct ctl *c, char *err, size_t errlen)
{
	return ctl_rooms_publish_at(c, true, err, errlen);
}

int
ctl_rooms_publish_at(struct ctl *c, bool settle, char *err, size_t errlen)
{
	struct roomtab *t, *old;
	int rc;

	pthread_mutex_lock(&c->publock);
	t = build_table(c, &rc);
	if (t == NULL) {
		pthread_mutex_unlock(&c->publock);
		snprintf(err, errlen, "stored, but the room table cannot be rebuilt (%s): it "
			 "takes effect at the next start", strerror(-rc));
		return -1;
	}
	engine_snapshot_publish(c->e, t);
	pthread_mutex_lock(&c->lock);
	old = c->rooms;
	c->rooms = t;
	pthread_mutex_unlock(&c->lock);
	roomtab_put(old);
	pthread_mutex_unlock(&c->publock);
	if (settle && chatctl_settle(c->e, CTL_LCORE_TIMEOUT_MS) != 0)
		LOG(WARNING, CONTROL, "an lcore did not confirm the new room table in %d ms; "
		    "it switches at its next loop turn", CTL_LCORE_TIMEOUT_MS);
	return 0;
}

/* The home lcore of room <raw> in the table last published. */
static bool
home_of(struct ctl *c, const uint8_t raw[CATALOG_ID_RAW], uint32_t *home)
{
	const struct roomtab_ent *r;

	pthread_mutex_lock(&c->lock);
	r = c->rooms ? roomtab_find_raw(c->rooms, raw) : NULL;
	if (r != NULL)
		*home = r->home;
	pthread_mutex_unlock(&c->lock);
	return r != NULL;
}

/* ---- arguments ------------------------------------------------------------ */

/* A user as rooms store it: "sip:user@domain". */
static bool
norm_user(const struct ctl *c, const char *in, char *out, size_t cap, char *err, size_t errlen)
{
	return ctl_admin_user_norm(c, in, true, out, cap, err, errlen);
}

/* The room named by <spec>: its ma-chan URI, its id or its name. */
static int
find_room(struct ctl *c, const char *spec, struct catalog_room **out, char *err, size_t errlen)
{
	const char *id = spec;
	uint8_t raw[CATALOG_ID_RAW];
	int rc = -ENOENT;

	if (spec == NULL || spec[0] == '\0') {
		snprintf(err, errlen, "room: give a room name, id or ma-chan URI");
		return -1;
	}
	if (strncasecmp(spec, "ma-chan://", 10) == 0) {
		id = strrchr(spec, '/') + 1;
		if (catalog_id_pack(id, raw) != 0) {
			snprintf(err, errlen, "room: '%s' is not a room URI", spec);
			return -1;
		}
	}
	if (catalog_id_pack(id, raw) == 0)
		rc = catalog_get(c->db, id, out);
	if (rc == -ENOENT && id == spec)
		rc = catalog_get_by_name(c->db, spec, out);
	if (rc == 0)
		return 0;
	if (rc == -ENOENT)
		snprintf(err, errlen, "no room %s", spec);
	else
		snprintf(err, errlen, "room %s: the catalog cannot be read (%s)", spec,
			 strerror(-rc));
	return -1;
}

static json_t *
strset_json(const struct catalog_strset *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(a, json_string(s->v[i]));
	return a;
}

static json_t *
jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *
room_json(struct ctl *c, const struct catalog_room *r)
{
	uint8_t raw[CATALOG_ID_RAW];
	uint32_t home;
	json_t *o;

	o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:o, s:o}",
		      "id", r->id, "uri", r->uri, "name", r->name,
		      "privacy", catalog_privacy_name(r->privacy),
		      "filepost", (r->props & CATALOG_PROP_FILEPOST) != 0,
		      "logged", (r->props & CATALOG_PROP_LOGGED) != 0,
		      "invite", (r->props & CATALOG_PROP_INVITE) != 0,
		      "created_ms", (json_int_t)r->created_ms,
		      "members", strset_json(&r->members), "managers", strset_json(&r->managers));
	json_object_set_new(o, "description", jstr_or_null(r->description));
	json_object_set_new(o, "topic", jstr_or_null(r->topic));
	json_object_set_new(o, "category", jstr_or_null(r->category));
	if (catalog_id_pack(r->id, raw) == 0) {
		json_object_set_new(o, "present",
				    json_integer(chatctl_present_count(c->e, raw)));
		json_object_set_new(o, "home_lcore", home_of(c, raw, &home) ?
				    json_integer(home) : json_null());
	}
	return o;
}

/* ---- rooms, room ---------------------------------------------------------- */

static int
list_one(void *arg, const struct catalog_room *r)
{
	struct ctl *c = ((void **)arg)[0];

	json_array_append_new(((void **)arg)[1], room_json(c, r));
	return 0;
}

int
ctl_rooms_list(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	json_t *list = json_array();
	void *arg[2] = { c, list };
	int rc = catalog_foreach(c->db, list_one, arg);

	if (rc != 0) {
		json_decref(list);
		snprintf(err, errlen, "the catalog cannot be read (%s)", strerror(-rc));
		return -1;
	}
	*out = json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(list), "rooms", list);
	return 0;
}

int
ctl_rooms_show(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	struct catalog_room *r;
	struct chatctl_member_snap *v = NULL;
	uint8_t raw[CATALOG_ID_RAW];
	uint32_t home, n = 64, total = 0;
	json_t *o, *list;
	int rc = -ENOENT;

	if (find_room(c, ctl_arg_str(a, "room", true), &r, err, errlen) != 0)
		return -1;
	o = room_json(c, r);
	list = json_array();
	if (catalog_id_pack(r->id, raw) == 0 && home_of(c, raw, &home)) {
		/* The roster may grow between two looks: retry with room for it. */
		for (int tries = 0; tries < 4; tries++) {
			free(v);
			v = calloc(n, sizeof(*v));
			if (v == NULL)
				break;
			rc = chatctl_roster(c->e, home, raw, v, n, &total, CTL_LCORE_TIMEOUT_MS);
			if (rc != 0 || total <= n)
				break;
			n = total + 64;
		}
		for (uint32_t i = 0; rc == 0 && v != NULL && i < total && i < n; i++)
			json_array_append_new(list, json_pack("{s:s, s:I, s:b}", "uri", v[i].uri,
							      "lcore", (json_int_t)v[i].lcore,
							      "manager", v[i].manager));
		free(v);
	}
	json_object_set_new(o, "present_members", list);
	json_object_set_new(o, "roster_complete", json_boolean(rc == 0));
	catalog_room_free(r);
	*out = o;
	return 0;
}

/* ---- create and set -------------------------------------------------------- */

static int
bool_val(json_t *v, bool *out)
{
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1")) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0")) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* A list of users: a JSON array of strings, or one comma-separated string. */
static int
fill_users(struct ctl *c, struct catalog_strset *set, json_t *v, char *err, size_t errlen)
{
	char u[USER_MAX];

	while (set->n > 0)
		catalog_strset_remove(set, set->v[set->n - 1]);
	if (json_is_string(v)) {
		char *copy = strdup(json_string_value(v)), *save = NULL, *tok;
		int rc = 0;

		if (copy == NULL)
			return -1;
		for (tok = strtok_r(copy, ", ", &save); tok != NULL && rc == 0;
		     tok = strtok_r(NULL, ", ", &save)) {
			if (!norm_user(c, tok, u, sizeof(u), err, errlen))
				rc = -1;
			else if (catalog_strset_add(set, u) != 0)
				rc = -1;
		}
		free(copy);
		return rc;
	}
	if (!json_is_array(v)) {
		snprintf(err, errlen, "members/managers: a list of users");
		return -1;
	}
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *e = json_array_get(v, i);

		if (!json_is_string(e) || !norm_user(c, json_string_value(e), u, sizeof(u), err,
						     errlen))
			return -1;
		if (catalog_strset_add(set, u) != 0)
			return -1;
	}
	return 0;
}

static const struct {
	const char	*key;
	unsigned	prop;
} props[] = {
	{ "filepost", CATALOG_PROP_FILEPOST },
	{ "logged", CATALOG_PROP_LOGGED },
	{ "invite", CATALOG_PROP_INVITE },
};

/* Applies every settable key of <o> to <r>; <skip> is a key that belongs to
 * the command ("room" for set). */
static int
apply_keys(struct ctl *c, struct catalog_room *r, json_t *o, const char *skip, char *err,
	   size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		bool b;
		size_t i;

		if (skip != NULL && strcmp(key, skip) == 0)
			continue;
		if (!strcmp(key, "name") || !strcmp(key, "description") || !strcmp(key, "topic")) {
			enum catalog_text f = key[0] == 'n' ? CATALOG_NAME :
					      key[0] == 'd' ? CATALOG_DESCRIPTION : CATALOG_TOPIC;
			const char *s = json_is_string(v) ? json_string_value(v) : NULL;

			if (!json_is_string(v) && !(json_is_null(v) && f != CATALOG_NAME)) {
				snprintf(err, errlen, "%s: a string", key);
				return -1;
			}
			if (f == CATALOG_NAME && (s[0] == '\0' || strlen(s) >= CATALOG_NAME_MAX)) {
				snprintf(err, errlen, "name: 1 to %d bytes", CATALOG_NAME_MAX - 1);
				return -1;
			}
			/* An empty description or topic clears it. */
			if (catalog_room_set(r, f, s != NULL && s[0] != '\0' ? s : NULL) != 0) {
				snprintf(err, errlen, "%s: cannot be set", key);
				return -1;
			}
			continue;
		}
		if (!strcmp(key, "privacy")) {
			const char *s = json_is_string(v) ? json_string_value(v) : "";

			if (!strcasecmp(s, "open"))
				r->privacy = CATALOG_OPEN;
			else if (!strcasecmp(s, "closed"))
				r->privacy = CATALOG_CLOSED;
			else if (!strcasecmp(s, "secret"))
				r->privacy = CATALOG_SECRET;
			else {
				snprintf(err, errlen, "privacy: open, closed or secret");
				return -1;
			}
			continue;
		}
		if (!strcmp(key, "members") || !strcmp(key, "managers")) {
			if (fill_users(c, key[1] == 'e' ? &r->members : &r->managers, v, err,
				       errlen) != 0) {
				if (err[0] == '\0')
					snprintf(err, errlen, "%s: out of memory", key);
				return -1;
			}
			continue;
		}
		for (i = 0; i < sizeof(props) / sizeof(props[0]); i++)
			if (!strcmp(key, props[i].key))
				break;
		if (i == sizeof(props) / sizeof(props[0])) {
			snprintf(err, errlen, "unknown key '%s' (room keys: name, description, "
				 "topic, privacy, members, managers, filepost, logged, invite)",
				 key);
			return -1;
		}
		if (bool_val(v, &b) != 0) {
			snprintf(err, errlen, "%s: true or false", key);
			return -1;
		}
		r->props = b ? r->props | props[i].prop : r->props & ~props[i].prop;
	}
	return 0;
}

int
ctl_rooms_evict(struct ctl *c, const struct catalog_room *r, bool all)
{
	uint8_t raw[CATALOG_ID_RAW];
	uint32_t missed = 0;
	int n;

	if (catalog_id_pack(r->id, raw) != 0)
		return 0;
	n = chatctl_evict(c->e, raw, all, &missed, CTL_LCORE_TIMEOUT_MS);
	if (missed > 0)
		LOG(WARNING, CONTROL, "room %s: %u lcore%s did not answer; who is present there "
		    "stays until the next change", r->name, missed, missed == 1 ? "" : "s");
	if (n > 0)
		LOG(NOTICE, CONTROL, "room %s: %d presence%s ended", r->name, n, n == 1 ? "" : "s");
	return n;
}

/* Stores <r> and publishes the catalog; whoever it no longer admits leaves
 * it. The answer is the room as stored, with "evicted". */
static int
store(struct ctl *c, struct catalog_room *r, const char *what, json_t **out, char *err,
      size_t errlen)
{
	int n, rc = catalog_put(c->db, r);

	if (rc != 0) {
		if (rc == -EEXIST)
			snprintf(err, errlen, "another room is named %s", r->name);
		else
			snprintf(err, errlen, "room %s: cannot be stored (%s)", r->name,
				 strerror(-rc));
		return -1;
	}
	if (ctl_rooms_publish(c, err, errlen) != 0)
		return -1;
	LOG(NOTICE, CONTROL, "room %s (%s): %s", r->name, r->uri, what);
	n = ctl_rooms_evict(c, r, false);
	*out = room_json(c, r);
	json_object_set_new(*out, "evicted", json_integer(n));
	return 0;
}

/* Applies <op> for user <u> to <r>. 0, or -1 with the reason. */
static int
member_change(struct catalog_room *r, enum ctl_rooms_set_op op, const char *u, char *err,
	      size_t errlen)
{
	int rc = 0;

	switch (op) {
	case CTL_MEMBER_ADD:
		rc = catalog_strset_add(&r->members, u);
		break;
	case CTL_MANAGER_ADD:
		rc = catalog_strset_add(&r->managers, u);
		break;
	case CTL_MEMBER_DEL:
		/* Managers are members too: no longer a member, no longer either. */
		rc = catalog_strset_remove(&r->members, u);
		if (catalog_strset_remove(&r->managers, u) == 0)
			rc = 0;
		break;
	case CTL_MANAGER_DEL:
		rc = catalog_strset_remove(&r->managers, u);
		break;
	}
	if (rc == -ENOENT)
		snprintf(err, errlen, "%s is not a %s of %s", u,
			 op == CTL_MANAGER_DEL ? "manager" : "member", r->name);
	else if (rc != 0)
		snprintf(err, errlen, "out of memory");
	return rc == 0 ? 0 : -1;
}

/* ---- in an array: through the array's catalog (catalog_sync.h) ---------- */

/* One change to a room, redone on etcd's copy of it. */
struct change {
	struct ctl			*c;
	const struct ctl_args		*a;
	const char			*skip;		/* set: the key naming the room */
	const struct catalog_room	*fresh;		/* create: the new room */
	enum ctl_rooms_set_op		op;		/* member and manager changes */
	const char			*user;
};

static struct catalog_room *
room_copy(const struct catalog_room *r)
{
	struct catalog_room *c = NULL;
	size_t len;
	char *v = catalog_encode(r, &len);

	if (v != NULL && catalog_decode(v, len, &c) != 0)
		c = NULL;
	free(v);
	return c;
}

/* A name another room of this node's catalog (the array's, caught up)
 * holds. */
static bool
name_taken(struct ctl *c, const struct catalog_room *r, char *err, size_t errlen)
{
	struct catalog_room *other;
	bool taken = false;

	if (catalog_get_by_name(c->db, r->name, &other) == 0) {
		taken = strcmp(other->id, r->id) != 0;
		if (taken)
			snprintf(err, errlen, "another room is named %s (%s)", other->name,
				 other->uri);
		catalog_room_free(other);
	}
	return taken;
}

static int
ch_create(void *arg, struct catalog_room **r, char *err, size_t errlen)
{
	struct change *ch = arg;

	if (*r != NULL) {
		snprintf(err, errlen, "room %s exists", (*r)->id);
		return -1;
	}
	*r = room_copy(ch->fresh);
	if (*r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
ch_set(void *arg, struct catalog_room **r, char *err, size_t errlen)
{
	struct change *ch = arg;

	if (*r == NULL) {
		snprintf(err, errlen, "the room is not in the array's catalog (deleted "
			 "meanwhile?)");
		return -1;
	}
	if (apply_keys(ch->c, *r, ch->a->obj, ch->skip, err, errlen) != 0)
		return -1;
	return name_taken(ch->c, *r, err, errlen) ? -1 : 0;
}

static int
ch_member(void *arg, struct catalog_room **r, char *err, size_t errlen)
{
	struct change *ch = arg;

	if (*r == NULL) {
		snprintf(err, errlen, "the room is not in the array's catalog (deleted "
			 "meanwhile?)");
		return -1;
	}
	return member_change(*r, ch->op, ch->user, err, errlen);
}

static int
ch_del(void *arg, struct catalog_room **r, char *err, size_t errlen)
{
	catalog_room_free(*r);
	*r = NULL;
	return 0;
}

/* Runs <fn> on room <id> through the array's catalog; the answer is the
 * room as this node now has it (or <gone> for a deletion). */
static int
array_change(struct ctl *c, struct catalog_sync *s, const char *id, catalog_sync_room_fn *fn,
	     struct change *ch, json_t *gone, json_t **out, char *err, size_t errlen)
{
	struct catalog_sync_done done;
	struct catalog_room *r;

	if (catalog_sync_room(s, id, fn, ch, &done, err, errlen) != 0) {
		json_decref(gone);
		return -1;
	}
	if (gone != NULL) {
		*out = gone;
	} else if (catalog_get(c->db, id, &r) == 0) {
		*out = room_json(c, r);
		catalog_room_free(r);
	} else {
		snprintf(err, errlen, "stored in the array's catalog (revision %lld), but this "
			 "node does not have the room", (long long)done.revision);
		return -1;
	}
	json_object_set_new(*out, "evicted", json_integer(done.evicted));
	json_object_set_new(*out, "revision", json_integer(done.revision));
	json_object_set_new(*out, "nodes_confirmed", json_integer(done.nodes));
	return 0;
}

int
ctl_rooms_create(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
		 size_t errlen)
{
	const char *name = ctl_arg_str(a, "name", true);
	struct catalog_room *r, *old = NULL;
	struct catalog_sync *s;
	struct change ch = { .c = c, .a = a };
	int held, rc;

	if (name == NULL || name[0] == '\0' || strlen(name) >= CATALOG_NAME_MAX) {
		snprintf(err, errlen, "name: give the new room's name (1 to %d bytes)",
			 CATALOG_NAME_MAX - 1);
		return -1;
	}
	if (catalog_get_by_name(c->db, name, &old) == 0) {
		snprintf(err, errlen, "a room named %s exists (%s)", old->name, old->uri);
		catalog_room_free(old);
		return -1;
	}
	r = catalog_room_new(c->conf.domain, name);
	if (r == NULL) {
		snprintf(err, errlen, "the room cannot be made (no memory or randomness)");
		return -1;
	}
	/* Defaults as for a room of the configuration file. */
	r->props = CATALOG_PROP_LOGGED | CATALOG_PROP_INVITE | CATALOG_PROP_FILEPOST;
	rc = apply_keys(c, r, a->obj, "arg", err, errlen);
	held = rc == 0 ? catalog_sync_hold(c, &s, err, errlen) : 0;
	if (held < 0) {
		rc = -1;
	} else if (held > 0) {
		ch.fresh = r;
		rc = name_taken(c, r, err, errlen) ? -1 :
		     array_change(c, s, r->id, ch_create, &ch, NULL, out, err, errlen);
		catalog_sync_release(c);
	} else if (rc == 0) {
		rc = store(c, r, "created", out, err, errlen);
	}
	catalog_room_free(r);
	return rc;
}

int
ctl_rooms_set(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
	      size_t errlen)
{
	struct catalog_room *r;
	struct catalog_sync *s;
	struct change ch = { .c = c, .a = a };
	int held, rc;

	if (find_room(c, ctl_arg_str(a, "room", true), &r, err, errlen) != 0)
		return -1;
	if (json_object_size(a->obj) < 2) {
		snprintf(err, errlen, "nothing to set (keys: name, description, topic, privacy, "
			 "members, managers, filepost, logged, invite)");
		catalog_room_free(r);
		return -1;
	}
	ch.skip = json_object_get(a->obj, "room") ? "room" : "arg";
	held = catalog_sync_hold(c, &s, err, errlen);
	if (held != 0) {
		rc = held < 0 ? -1 : array_change(c, s, r->id, ch_set, &ch, NULL, out, err, errlen);
		if (held > 0)
			catalog_sync_release(c);
		catalog_room_free(r);
		return rc;
	}
	rc = apply_keys(c, r, a->obj, ch.skip, err, errlen);
	if (rc == 0)
		rc = store(c, r, "changed", out, err, errlen);
	catalog_room_free(r);
	return rc;
}

int
ctl_rooms_del(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
	      size_t errlen)
{
	struct catalog_room *r;
	struct catalog_sync *s;
	struct change ch = { .c = c, .a = a };
	int held, n, rc;

	if (find_room(c, ctl_arg_str(a, "room", true), &r, err, errlen) != 0)
		return -1;
	held = catalog_sync_hold(c, &s, err, errlen);
	if (held != 0) {
		rc = held < 0 ? -1 :
		     array_change(c, s, r->id, ch_del, &ch,
				  json_pack("{s:s, s:s, s:s, s:b}", "id", r->id, "uri", r->uri,
					    "name", r->name, "deleted", 1), out, err, errlen);
		if (held > 0)
			catalog_sync_release(c);
		catalog_room_free(r);
		return rc;
	}
	/* Everyone leaves first, while the lcores still know the room's home
	 * and URI (the parts and their compliance events need them). */
	n = ctl_rooms_evict(c, r, true);
	rc = catalog_delete(c->db, r->id);
	if (rc != 0) {
		snprintf(err, errlen, "room %s: cannot be deleted (%s)", r->name, strerror(-rc));
		catalog_room_free(r);
		return -1;
	}
	rc = ctl_rooms_publish(c, err, errlen);
	if (rc == 0) {
		LOG(NOTICE, CONTROL, "room %s (%s): deleted", r->name, r->uri);
		*out = json_pack("{s:s, s:s, s:s, s:b, s:i}", "id", r->id, "uri", r->uri, "name",
				 r->name, "deleted", 1, "evicted", n);
	}
	catalog_room_free(r);
	return rc;
}

/* ---- members and managers -------------------------------------------------- */

int
ctl_rooms_set_change(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
		     size_t errlen)
{
	enum ctl_rooms_set_op op = a->op;
	static const char *const what[] = { "member added", "member removed", "manager added",
					     "manager removed" };
	struct catalog_room *r;
	struct catalog_sync *s;
	char u[USER_MAX], msg[USER_MAX + 32];
	int held, rc = 0;

	if (!norm_user(c, ctl_arg_str(a, "user", false), u, sizeof(u), err, errlen))
		return -1;
	if (find_room(c, ctl_arg_str(a, "room", true), &r, err, errlen) != 0)
		return -1;
	held = catalog_sync_hold(c, &s, err, errlen);
	if (held != 0) {
		struct change ch = { .c = c, .a = a, .op = op, .user = u };

		rc = held < 0 ? -1 : array_change(c, s, r->id, ch_member, &ch, NULL, out, err,
						  errlen);
		if (held > 0)
			catalog_sync_release(c);
	} else {
		rc = member_change(r, op, u, err, errlen);
		if (rc == 0) {
			snprintf(msg, sizeof(msg), "%s %s", what[op], u);
			rc = store(c, r, msg, out, err, errlen);
		}
	}
	catalog_room_free(r);
	return rc == 0 ? 0 : -1;
}

/* ---- invitations ------------------------------------------------------------- */

static bool
listed(const struct catalog_room *r, const char *u)
{
	return catalog_strset_has(&r->members, u) || catalog_strset_has(&r->managers, u);
}

/* The ntc:inv of xccos.md §b.7: the <inv .../> block getinv lists. */
static char *
invite_notice(struct ctl *c, const struct catalog_room *r, const struct invite *inv,
	      ssize_t invite_id, size_t *len)
{
	char ts[XCCOS_TS_LEN], id[24];
	struct xbuf b;
	char *doc;

	xccos_ts_format(inv->ts_ms * 10000, ts);
	snprintf(id, sizeof(id), "%zd", invite_id);
	xbuf_init(&b, 0);
	/* Envelope ids of their own, apart from the data plane's. */
	xccos_begin(&b, (2ull << 40) + ++c->ntc_envid);
	xccos_ntc_begin(&b, "inv");
	xbuf_str(&b, "<inv");
	xbuf_attr(&b, "inviteId", id);
	xbuf_attr(&b, "domain", c->conf.domain);
	xbuf_attr(&b, "chanUri", r->uri);
	xbuf_attr(&b, "author", inv->author);
	xbuf_attr(&b, "ts", ts);
	xbuf_str(&b, "/>");
	xccos_ntc_end(&b);
	xccos_end(&b);
	doc = xbuf_ok(&b) ? xbuf_take(&b, len) : NULL;
	xbuf_free(&b);
	return doc;
}

/* The inviteId of <u>'s invitation to <room_id>: its place in the user's
 * getinv list (0: none). */
static ssize_t
invite_id_of(struct ctl *c, const char *u, const char *room_id)
{
	struct invite *list = NULL;
	ssize_t n = invite_list(c->db, u, &list), id = 0;

	for (ssize_t i = 0; i < n; i++)
		if (strcmp(list[i].room_id, room_id) == 0)
			id = i + 1;
	free(list);
	return id;
}

int
ctl_rooms_invite_notify(struct ctl *c, const struct catalog_room *r, const char *u,
			const struct invite *inv, uint32_t *missed)
{
	uint32_t miss = 0;
	size_t len;
	char *doc;
	int sent = 0;

	/* A secret room is not shown to a non-member, here as in getinv. */
	if (r->privacy == CATALOG_SECRET && !listed(r, u))
		return 0;
	doc = invite_notice(c, r, inv, invite_id_of(c, u, r->id), &len);
	if (doc != NULL)
		sent = chatctl_notice_user(c->e, u, doc, len, &miss, CTL_LCORE_TIMEOUT_MS);
	free(doc);
	if (missed != NULL)
		*missed = miss;
	LOG(NOTICE, CONTROL, "room %s (%s): %s invited by %s, %d notice%s", r->name, r->uri, u,
	    inv->author, sent, sent == 1 ? "" : "s");
	return sent;
}

int
ctl_rooms_invite(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	const char *from = ctl_arg_str(a, "author", false);
	struct catalog_sync_done done = { 0 };
	struct catalog_sync *s;
	struct invite inv;
	struct catalog_room *r;
	char u[USER_MAX], author[USER_MAX];
	uint32_t missed = 0;
	bool visible, may_join;
	int held, rc, sent = 0;

	if (!norm_user(c, ctl_arg_str(a, "user", false), u, sizeof(u), err, errlen))
		return -1;
	if (from == NULL)
		snprintf(author, sizeof(author), "sip:admin@%s", c->conf.domain);
	else if (!norm_user(c, from, author, sizeof(author), err, errlen))
		return -1;
	if (find_room(c, ctl_arg_str(a, "room", true), &r, err, errlen) != 0)
		return -1;
	memset(&inv, 0, sizeof(inv));
	snprintf(inv.room_id, sizeof(inv.room_id), "%s", r->id);
	snprintf(inv.author, sizeof(inv.author), "%s", author);
	inv.ts_ms = clock_real_ms();
	held = catalog_sync_hold(c, &s, err, errlen);
	if (held != 0) {
		/* Every node stores it and tells the user's dialogs there. */
		rc = held < 0 ? -1 : catalog_sync_invite(s, u, &inv, &done, err, errlen);
		if (held > 0)
			catalog_sync_release(c);
		sent = done.notified;
	} else {
		rc = invite_put(c->db, u, &inv);
		if (rc != 0)
			snprintf(err, errlen, "the invitation cannot be stored (%s)",
				 strerror(-rc));
		else
			sent = ctl_rooms_invite_notify(c, r, u, &inv, &missed);
	}
	if (rc != 0) {
		catalog_room_free(r);
		return -1;
	}
	visible = r->privacy != CATALOG_SECRET || listed(r, u);
	may_join = r->privacy == CATALOG_OPEN || listed(r, u);
	*out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:I, s:b, s:b}",
			 "room", r->uri, "name", r->name, "user", u, "author", author,
			 "invite_id", (json_int_t)invite_id_of(c, u, r->id),
			 "ts_ms", (json_int_t)inv.ts_ms,
			 "notified", sent, "unreachable_lcores", (json_int_t)missed,
			 "visible", visible, "may_join", may_join);
	if (held > 0)
		json_object_set_new(*out, "revision", json_integer(done.revision));
	catalog_room_free(r);
	return 0;
}
