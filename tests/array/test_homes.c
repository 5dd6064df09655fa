/* Room homes (control/homes.c) end to end: three real parleyd nodes with
 * the same configured rooms, a real etcd; the homes as `parleyctl array`
 * shows them on each node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/array/arraykit.h"
#include "tests/integration/ctlrun.h"

#define NROOMS	30

TestSuite(homes, .init = ak_setup, .fini = ak_teardown, .timeout = 120);

/* [room:R0] .. [room:R29]: the same rooms, so the same ids, on every node. */
static const char *
rooms_conf(void)
{
	static char buf[NROOMS * 32];
	size_t len = 0;

	for (int i = 0; i < NROOMS; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "[room:R%d]\nprivacy = open\n",
					 i);
	return buf;
}

static int nrooms;	/* the catalog's: NROOMS and the harness's own */

struct home {
	char		room[40];
	int		node;
	long long	epoch;
};

/* Node <on>'s homes, sorted by room (as etcd lists them); how many. */
static int
homes_of(int on, struct home *v, int max, int *unhomed)
{
	json_t *a = ak_array(on), *rooms = jget(a, "homes.rooms"), *r;
	size_t k;
	int n = 0;

	cr_assert_not_null(rooms, "node %d: no homes in array", on + 1);
	memset(v, 0, sizeof(*v) * (size_t)max);	/* compared with memcmp, padding too */
	*unhomed = (int)jint(a, "homes.unhomed");
	json_array_foreach(rooms, k, r) {
		if (n == max)
			break;
		snprintf(v[n].room, sizeof(v[n].room), "%s",
			 json_string_value(json_object_get(r, "room")));
		v[n].node = (int)json_integer_value(json_object_get(r, "node"));
		v[n].epoch = json_integer_value(json_object_get(r, "epoch"));
		n++;
	}
	json_decref(a);
	return n;
}

/* Waits until every node in <live> (a bitmask) sees all the catalog's rooms homed,
 * on live nodes only, the same homes everywhere; copies them into <v>. */
static void
wait_homed(unsigned live, struct home *v)
{
	struct home w[NROOMS + 8];
	bool ok = false;

	for (int t = 0; t < 150 && !ok; t++) {
		ok = true;
		for (int on = 0; on < AK_NODES && ok; on++) {
			int unhomed, n;

			if (!(live & (1u << on)))
				continue;
			n = homes_of(on, w, NROOMS + 8, &unhomed);
			ok = n == nrooms && unhomed == 0;
			for (int i = 0; ok && i < n; i++)
				ok = (live & (1u << (w[i].node - 1))) && w[i].epoch > 0;
			if (ok && v[0].room[0] != '\0' && on > 0)
				ok = memcmp(w, v, sizeof(*v) * (size_t)nrooms) == 0;
			if (ok)
				memcpy(v, w, sizeof(*v) * (size_t)nrooms);
		}
		if (!ok) {
			memset(v, 0, sizeof(*v) * (size_t)nrooms);
			usleep(100000);
		}
	}
	if (!ok) {
		for (int on = 0; on < AK_NODES; on++) {
			json_t *a;

			if (!(live & (1u << on)))
				continue;
			a = ak_array(on);
			fprintf(stderr, "node %d: homes %s\n", on + 1,
				json_dumps(jget(a, "homes"), JSON_COMPACT));
			json_decref(a);
			run("grep -i 'home\\|ARRAY' %s | tail -5 >&2", ak_node[on].log);
		}
	}
	cr_assert(ok, "the homes never settled on the live nodes (mask %x)", live);
}

/* Every room gets exactly one home, all nodes agree on it, rooms spread
 * over the nodes; a node that leaves hands its rooms to the others with
 * a higher epoch while the others' rooms stay put; a node that comes back
 * takes nothing away from anyone (homes are sticky while their node
 * lives). */
Test(homes, one_home_per_room_spread_and_moved)
{
	struct home first[NROOMS + 8], second[NROOMS + 8], third[NROOMS + 8];
	int per[AK_NODES + 1] = { 0 };
	json_t *list;

	for (int i = 0; i < AK_NODES; i++)
		ak_node_start(i, 3, rooms_conf());
	list = ctl_ok(&ak_node[0], "rooms");
	nrooms = (int)jint(list, "count");
	json_decref(list);
	cr_assert(nrooms >= NROOMS && nrooms <= NROOMS + 8, "%d rooms", nrooms);
	memset(first, 0, sizeof(first));
	wait_homed(7, first);
	for (int i = 0; i < nrooms; i++)
		per[first[i].node]++;
	for (int id = 1; id <= AK_NODES; id++)
		cr_assert_geq(per[id], 2, "node %d homes %d of %d rooms: not spread", id, per[id],
			      nrooms);

	/* Node 3 stops cleanly: its rooms move, the others' stay. */
	cr_assert_eq(server_stop(&ak_node[2]), 0);
	ak_up[2] = false;
	memset(second, 0, sizeof(second));
	wait_homed(3, second);
	for (int i = 0; i < nrooms; i++) {
		cr_assert_str_eq(second[i].room, first[i].room);
		if (first[i].node != 3) {
			cr_assert_eq(second[i].node, first[i].node, "room %s moved from node %d",
				     first[i].room, first[i].node);
			cr_assert_eq(second[i].epoch, first[i].epoch);
		} else {
			cr_assert_gt(second[i].epoch, first[i].epoch, "room %s: a new home with "
				     "an epoch not above the old one", first[i].room);
		}
	}

	/* Node 3 back: nothing moves to it. */
	ak_node_start(2, 3, rooms_conf());
	memset(third, 0, sizeof(third));
	wait_homed(7, third);
	for (int i = 0; i < nrooms; i++)
		if (third[i].node != second[i].node || third[i].epoch != second[i].epoch)
			fprintf(stderr, "room %s: node %d epoch %lld -> node %d epoch %lld\n",
				third[i].room, second[i].node, second[i].epoch, third[i].node,
				third[i].epoch);
	cr_assert_eq(memcmp(third, second, sizeof(*third) * (size_t)nrooms), 0, "homes moved when node 3 came back");
}
