/* See fault.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/engine/io/fault.h"

/* xorshift64: cheap, and the same spec and salt give the same faults. */
static uint64_t
next_rand(struct fault *f)
{
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return f->rng;
}

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
		char *eq = strchr(tok, '='), *end;
		unsigned long v;

		/* strtoul alone would take "drop=x" as 0 and "-1" as huge. */
		if (eq == NULL || eq[1] < '0' || eq[1] > '9')
			return -EINVAL;
		*eq = '\0';
		errno = 0;
		v = strtoul(eq + 1, &end, 10);
		if (*end != '\0' || errno != 0)
			return -EINVAL;
		if (strcmp(tok, "seed") == 0)
			seed = v;
		else if (strcmp(tok, "hold_us") == 0)
			f->hold_us = (uint32_t)v;
		else if (strcmp(tok, "delay_us") == 0 && v <= FAULT_DELAY_US_MAX)
			f->delay_us = (uint32_t)v;
		else if (strcmp(tok, "jitter_us") == 0 && v <= FAULT_DELAY_US_MAX)
			f->jitter_us = (uint32_t)v;
		else if (v > 1000)	/* also a delay over FAULT_DELAY_US_MAX */
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
	return f->drop + f->dup + f->reorder > 0 || fault_delays(f);
}

enum fault_act
fault_roll(struct fault *f)
{
	uint32_t r;

	r = (uint32_t)(next_rand(f) % 1000);
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

/* ---- the delay line ---- */

bool
fault_delays(const struct fault *f)
{
	return f->delay_us + f->jitter_us > 0;
}

static bool
before(const struct fault_delayed *a, const struct fault_delayed *b)
{
	return a->due_us < b->due_us || (a->due_us == b->due_us && a->seq < b->seq);
}

int
fault_delay_push(struct fault *f, void *pkt, uint64_t now_us)
{
	struct fault_delayed e;
	uint32_t i;

	if (f->nheld == FAULT_DELAY_MAX) {
		f->delay_full++;
		return -ENOBUFS;
	}
	e.pkt = pkt;
	e.due_us = now_us + f->delay_us;
	if (f->jitter_us > 0)
		e.due_us += next_rand(f) % ((uint64_t)f->jitter_us + 1);
	e.seq = f->seq++;
	/* Sift up from the new leaf. */
	for (i = f->nheld++; i > 0 && before(&e, &f->heap[(i - 1) / 2]); i = (i - 1) / 2)
		f->heap[i] = f->heap[(i - 1) / 2];
	f->heap[i] = e;
	f->delayed++;
	return 0;
}

void *
fault_delay_pop(struct fault *f, uint64_t now_us)
{
	struct fault_delayed last;
	void *pkt;
	uint32_t i, c;

	if (f->nheld == 0 || f->heap[0].due_us > now_us)
		return NULL;
	pkt = f->heap[0].pkt;
	last = f->heap[--f->nheld];
	/* Sift the last leaf down from the root. */
	for (i = 0; (c = 2 * i + 1) < f->nheld; i = c) {
		if (c + 1 < f->nheld && before(&f->heap[c + 1], &f->heap[c]))
			c++;
		if (!before(&f->heap[c], &last))
			break;
		f->heap[i] = f->heap[c];
	}
	f->heap[i] = last;
	return pkt;
}

uint64_t
fault_delay_next(const struct fault *f)
{
	return f->nheld > 0 ? f->heap[0].due_us : UINT64_MAX;
}
