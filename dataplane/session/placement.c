/* See placement.h. The function is set once at boot, before the lcores
 * start (rte_eal_mp_remote_launch orders the stores before them), and read
 * without synchronisation afterwards. */
#include "dataplane/session/placement.h"

static placement_fn *place_fn;
static void *place_arg;

void
placement_set(placement_fn *fn, void *arg)
{
	place_fn = fn;
	place_arg = arg;
}

bool
placement_redirect(const char *aor, char *where, size_t cap)
{
	return place_fn != NULL && place_fn(place_arg, aor, where, cap);
}
