/* Group Chat clients on the nodes of the array kit: see akchat.h. */
#include <stdio.h>

#include <criterion/criterion.h>

#include "tests/array/akchat.h"
#include "tests/array/arraykit.h"
#include "tests/integration/harness.h"

struct gc *
akchat_open(int i, int u)
{
	char aor[64], err[256];
	struct gc *g;

	snprintf(aor, sizeof(aor), "user%d@example.com", u);
	g = gc_open_to("127.0.0.1", ak_node[i].port, aor, "pw", AKCHAT_PLACED, err, sizeof(err));
	if (g == NULL)
		run("tail -n 30 %s >&2", ak_node[i].log);
	cr_assert_not_null(g, "%s at node %d: %s", aor, i + 1, err);
	return g;
}
