/* See fault.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/io/fault.h"

int
fault_parse(struct fault *f, const char *spec, uint64_t salt)
{
	char buf[256], *save = NULL, *tok;
	uint64_t seed = 1;

	memset(f, 0, sizeof(*f));
	f->hold_us = 2000;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		char *eq = strchr(tok, '=');
		unsigned long v;

		if (eq == NULL)
			return -EINVAL;
		*eq = '\0';
		v = strtoul(eq + 1, NULL, 10);
		if (strcmp(tok, "seed") == 0)
			seed = v;
		else if (strcmp(tok, "hold_us") == 0)
			f->hold_us = (uint32_t)v;
		else if (v > 1000)
			return -EINVAL;
		else if (strcmp(tok, "drop") == 0)
			f->drop = (uint16_t)v;
		else if (strcmp(tok, "dup") == 0)
			f->dup = (uint16_t)v;
		else if (strcmp(tok, "reorder") == 0)
			f->reorder = (uint16_t)v;
		else
			return -EINVAL;
	}
	if (f->drop + f->dup + f->reorder > 1000)
		return -EINVAL;
	f->rng = (seed * 0x9e3779b97f4a7c15ull) ^ (salt * 0xbf58476d1ce4e5b9ull);
	if (f->rng == 0)
		f->rng = 1;
	return 0;
}

bool
fault_active(const struct fault *f)
{
	return f->drop + f->dup + f->reorder > 0;
}

enum fault_act
fault_roll(struct fault *f)
{
	uint32_t r;

	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	r = (uint32_t)(f->rng % 1000);
	if (r < f->drop) {
		f->dropped++;
		return FAULT_DROP;
	}
	r -= f->drop;
	if (r < f->dup) {
		f->duplicated++;
		return FAULT_DUP;
	}
	r -= f->dup;
	if (r < f->reorder) {
		f->reordered++;
		return FAULT_HOLD;
	}
	return FAULT_PASS;
}
