/* pidgin-sipe in the array: the unmodified client (tests/sipe/sipe_driver,
 * libpurple without UI), configured with node 1, is redirected by node 1's
 * 301 to the user's node, signs on there and lists the rooms. Every node
 * serves the same certificate (node 1's), as an array's nodes share a name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/array/arraykit.h"

TestSuite(array_sipe, .init = ak_setup, .fini = ak_teardown, .timeout = 150);

static const char *
driver_path(void)
{
	const char *p = getenv("PARLEY_SIPE_DRIVER");
	static char path[512];

	if (p != NULL)
		return p;
	snprintf(path, sizeof(path), "%s/tests/sipe/sipe_driver",
		 getenv("PARLEY_BUILDDIR") ? getenv("PARLEY_BUILDDIR") : "build");
	return path;
}

Test(array_sipe, redirected_and_signed_on)
{
	char tls[1024], cert[300], out[300], aor[64];
	int u, target = 0, st;

	ak_node_start(0, 5, NULL);
	snprintf(cert, sizeof(cert), "%s/tls/cert.pem", ak_node[0].dir);
	snprintf(tls, sizeof(tls), "[tls]\ncert = %s/tls/cert.pem\nkey = %s/tls/key.pem\n",
		 ak_node[0].dir, ak_node[0].dir);
	ak_node_start(1, 5, tls);
	ak_node_start(2, 5, tls);
	usleep(1500000);	/* every node's placement table has all three */

	/* A user whose node is not node 1 (the test client finds one). */
	for (u = 0; u < 50 && target == 0; u++)
		target = ak_place(0, u, NULL);
	u--;
	cr_assert_neq(target, 0, "every user placed on node 1");
	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	usleep(1500000);	/* that connection is gone from the loads again */

	snprintf(out, sizeof(out), "%s/sipe.out", ak_node[0].dir);
	st = run("timeout 120 %s --port %u --cert %s --user %s --password pw --timeout 20 "
		 "roomlist > %s", driver_path(), ak_node[0].port, cert, aor, out);
	run("sed 's/^/sipe| /' %s >&2", out);
	cr_assert_eq(st, 0, "sipe_driver exit status %d", st);
	cr_assert_eq(run("grep -q '^SIGNED_ON %s' %s", aor, out), 0, "not signed on");
	cr_assert_eq(run("grep -q '^ROOMLIST_DONE' %s", out), 0, "no room list");
	cr_assert_eq(run("grep -q '^DONE' %s", out), 0);
	/* Node 1 sent it on; the user's node served it. */
	cr_assert_eq(run("grep -q '%s redirected to 127.0.0.1:%u' %s", aor,
			 ak_node[target].port, ak_node[0].log), 0, "node 1 did not redirect %s",
		     aor);
	cr_assert_eq(run("grep -q '%s registered' %s", aor, ak_node[target].log), 0,
		     "%s did not register at node %d", aor, target + 1);
}
