/* The control socket's view of the node array (array.h): `array`. */
#include <stdio.h>

#include "control/array.h"
#include "control/catalog_sync.h"
#include "control/ctl_int.h"
#include "dataplane/base/log.h"

/* The array thread read new room homes: a new table for the lcores. */
static void
republish(void *arg)
{
	struct ctl *c = arg;
	char err[512];

	if (ctl_rooms_publish(c, err, sizeof(err)) != 0)
		LOG(WARNING, CONTROL, "room homes changed: %s", err);
}

void
ctl_set_array(struct ctl *c, struct array *a)
{
	pthread_mutex_lock(&c->lock);
	c->array = a;
	pthread_mutex_unlock(&c->lock);
	if (a != NULL)
		array_set_republish(a, republish, c);
}

int
ctl_array_show(struct ctl *c, const struct ctl_args *args, json_t **out, char *err,
	      size_t errlen)
{
	struct array *a;

	pthread_mutex_lock(&c->lock);
	a = c->array;
	pthread_mutex_unlock(&c->lock);
	if (a == NULL) {
		snprintf(err, errlen, "this node is standalone: its configuration has no [array] "
			 "etcd");
		return -1;
	}
	if (array_nodes(a, out, err, errlen) != 0)
		return -1;
	/* Each node's applied catalog revision, when this node runs the
	 * catalog (not while it catches up), and etcd answered the node list
	 * (a lost etcd is not asked twice). */
	pthread_mutex_lock(&c->synclock);
	if (c->sync != NULL)
		catalog_sync_show(c->sync, *out, json_is_array(json_object_get(*out, "nodes")));
	pthread_mutex_unlock(&c->synclock);
	return 0;
}
