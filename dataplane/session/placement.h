/* Placement: whether a new registration is served on this node or sent to
 * another node of the array (301 with the chosen node's SIP address), as
 * OCS directors send users to their home pool.
 *
 * The registrar (layer 4) asks; the node array (control/array.c, layer 7)
 * decides, through the function it registers here at boot. A node without
 * the array registers nothing and serves every registration.
 *
 * A redirected client is sent to
 *	sip:HOST:PORT;transport=tls;parley-placed
 * and a REGISTER whose Request-URI carries the parley-placed mark is served
 * wherever it arrives (clients that follow the 301 with that URI never
 * loop; pidgin-sipe keeps only host, port and transport, and relies on the
 * chosen node choosing itself). */
#ifndef PARLEY_PLACEMENT_H
#define PARLEY_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>

#define PLACEMENT_MARK		"parley-placed"
#define PLACEMENT_WHERE_MAX	256

/* The decision for a new registration of <aor> ("alice@example.com"):
 * false to serve it here, or true with the chosen node's "HOST:PORT" in
 * <where> (<cap> bytes). Runs on an lcore: must not block, lock or
 * allocate. */
typedef bool placement_fn(void *arg, const char *aor, char *where, size_t cap);

/* Boot thread, before the lcores run (or after they returned): sets the
 * decision function, or none with NULL. */
void placement_set(placement_fn *fn, void *arg);

/* Lcores: the decision as above; false (serve here) when none is set. */
bool placement_redirect(const char *aor, char *where, size_t cap);

#endif
