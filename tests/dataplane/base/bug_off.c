/* BUG_ON as a build without -Dstrict compiles it: nothing, and <cond> is
 * not evaluated. Its own file, so that test_base.c can see the strict one. */
#undef PARLEY_STRICT
#include "dataplane/base/bug.h"
#include "tests/dataplane/base/bug_off.h"

int
bug_off_check(int *evaluated)
{
	BUG_ON((*evaluated)++ >= 0);
	return 0;
}
