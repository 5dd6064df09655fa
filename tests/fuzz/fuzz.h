/* What the libFuzzer targets share: the entry point, the check that stops
 * a run, and the input read as a stream of bytes. */
#ifndef PARLEY_TESTS_FUZZ_H
#define PARLEY_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run when <cond> is false: libFuzzer keeps the input. */
static inline void
fz_check(int cond)
{
	if (!cond)
		abort();
}

/* The input read front to back. */
struct fz_in {
	const uint8_t *p;
	size_t len, pos;
};

/* The next byte of <in>; 0 past its end. */
static inline uint8_t
fz_rd8(struct fz_in *in)
{
	return in->pos < in->len ? in->p[in->pos++] : 0;
}

/* Writes <size> bytes of <data> as the whole file <path> (tmpfs, per
 * process): for targets whose code under test reads a file. */
static inline bool
fz_write_file(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (f == NULL)
		return false;
	ok = fwrite(data, 1, size, f) == size;
	return fclose(f) == 0 && ok;
}

#endif
