/* The failure path of BUG_ON(); see bug.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/base/bug.h"

void
bug_fail(const char *file, int line, const char *cond)
{
	char msg[512];

	/* One write(2), no stdio buffer: the process is about to abort. */
	if (snprintf(msg, sizeof(msg), "BUG at %s:%d: %s\n", file, line, cond) > 0)
		(void)!write(STDERR_FILENO, msg, strlen(msg));
	abort();
}
