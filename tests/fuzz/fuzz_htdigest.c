/* libFuzzer target: the user table (storage/htdigest.c) as parleyd loads an
 * htdigest file an operator wrote: load it, look up the users it names and a
 * few that it may not, then rewrite it with one user changed and one removed,
 * and load the result again: every user the first load found must still be
 * there with the same HA1 (the rewrite keeps other lines byte for byte).
 * The file lives on tmpfs under a name unique to the process. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/htdigest.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "alice", "Bob", "", "carol:x", "d\xc3\xa9" };
	struct htdigest *h, *h2;
	char err[256];
	size_t i;

	if (size > 16384)
		return 0;
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/dev/shm/fuzz-htdigest-%d", (int)getpid());
	if (!fz_write_file(path, data, size))
		abort();
	h = htdigest_load(path, false, err, sizeof(err));
	if (h == NULL) {
		if (err[0] == '\0')
			abort();	/* a refusal says why */
		return 0;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *ha1 = htdigest_ha1(h, names[i], strlen(names[i]), "parley", 6,
					       DIGEST_MD5);

		if (ha1 != NULL && !htdigest_has_user(h, names[i], strlen(names[i]), "parley", 6))
			abort();
	}
	if (htdigest_set_user(path, "zed", "parley", "secret") == 0) {
		h2 = htdigest_load(path, false, err, sizeof(err));
		if (h2 == NULL)
			abort();	/* what we wrote must load */
		if (htdigest_ha1(h2, "zed", 3, "parley", 6, DIGEST_MD5) == NULL)
			abort();
		if (htdigest_count(h2) < htdigest_count(h))
			abort();
		htdigest_put(h2);
	}
	htdigest_put(h);
	unlink(path);
	return 0;
}
