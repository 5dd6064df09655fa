/* Group Chat clients on the nodes of the array kit (arraykit.h): what the
 * array tests that sign users in share. Linked with chatkit (the array
 * tests without chat clients link neither). Criterion asserts inside; for
 * test programs only. */
#ifndef PARLEY_TEST_AKCHAT_H
#define PARLEY_TEST_AKCHAT_H

#include "perf/gcclient.h"

/* The Request-URI a client sends to be served by the node it reached (the
 * placement mark: no redirect to another node). */
#define AKCHAT_PLACED	"sip:example.com;parley-placed"

/* user<u>@example.com (password "pw") signed in at node <i> (an index into
 * ak_node), served there (AKCHAT_PLACED). Asserts, with the tail of the
 * node's log, when it cannot sign in. The caller closes the client. */
struct gc *akchat_open(int i, int u);

#endif
