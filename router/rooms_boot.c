/* Configured rooms into the catalog; see rooms_boot.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/base/log.h"
#include "router/config.h"
#include "router/rooms_boot.h"
#include "storage/catalog.h"

/* "sip:a@x, b@y" -> the set {sip:a@x, sip:b@y}. */
static int
fill_set(struct catalog_strset *set, const char *list)
{
	char *copy, *save = NULL, *tok;
	int rc = 0;

	for (size_t i = 0; i < set->n; i++)
		free(set->v[i]);
	set->n = 0;
	if (list == NULL)
		return 0;
	copy = strdup(list);
	if (copy == NULL)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char uri[300];
		size_t n;

		while (isspace((unsigned char)*tok))
			tok++;
		n = strlen(tok);
		while (n > 0 && isspace((unsigned char)tok[n - 1]))
			tok[--n] = '\0';
		if (n == 0)
			continue;
		snprintf(uri, sizeof(uri), "%s%s", strncasecmp(tok, "sip:", 4) ? "sip:" : "", tok);
		rc = catalog_strset_add(set, uri);
	}
	free(copy);
	return rc;
}

static int
apply(struct catalog_room *r, const struct config_room *cr)
{
	int rc;

	rc = catalog_room_set(r, CATALOG_DESCRIPTION, cr->description[0] ? cr->description : NULL);
	if (rc == 0)
		rc = catalog_room_set(r, CATALOG_TOPIC, cr->topic[0] ? cr->topic : NULL);
	if (rc != 0)
		return rc;
	r->privacy = !strcasecmp(cr->privacy, "secret") ? CATALOG_SECRET :
		     !strcasecmp(cr->privacy, "closed") ? CATALOG_CLOSED : CATALOG_OPEN;
	r->props = (cr->filepost ? CATALOG_PROP_FILEPOST : 0) |
		   (cr->invite ? CATALOG_PROP_INVITE : 0) |
		   (cr->logged ? CATALOG_PROP_LOGGED : 0);
	rc = fill_set(&r->members, cr->members);
	if (rc == 0)
		rc = fill_set(&r->managers, cr->managers);
	return rc;
}

int
rooms_boot_sync(struct db *db, const struct config *c, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < c->nrooms; i++) {
		const struct config_room *cr = &c->rooms[i];
		struct catalog_room *r = NULL;
		bool created = false;
		int rc = catalog_get_by_name(db, cr->name, &r);

		if (rc == -ENOENT) {
			r = catalog_room_new_named(c->engine.domain, cr->name);
			created = true;
			rc = r ? 0 : -ENOMEM;
		}
		if (rc == 0)
			rc = apply(r, cr);
		if (rc == 0)
			rc = catalog_put(db, r);
		if (rc != 0) {
			snprintf(err, errlen, "[room:%s]: cannot store the room: %s", cr->name,
				 strerror(-rc));
			catalog_room_free(r);
			return -1;
		}
		LOG(INFO, ROUTER, "room %s: %s (%s)", cr->name, r->uri,
		    created ? "created" : "from the configuration");
		catalog_room_free(r);
	}
	return 0;
}
