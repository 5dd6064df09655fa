/* Send and receive rings of a TCP connection and the pool their storage
 * comes from (see utcp_buf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/tcp/utcp_buf.h"

#ifdef PARLEY_POOLS_PASSTHROUGH
#define POOL_PASSTHROUGH true
#else
#define POOL_PASSTHROUGH false
#endif
#define SLAB_BYTES	(1u << 20)	/* a slab holds about this much */

/* ---- the block pool ---- */

int
utcp_buf_pool_init(struct utcp_buf_pool *p, size_t blk, uint32_t max_blocks)
{
	memset(p, 0, sizeof(*p));
	p->blk = (blk + 63) & ~(size_t)63;	/* keeps every block 64-byte aligned */
	if (p->blk < sizeof(void *))
		p->blk = 64;
	p->max_blocks = max_blocks;
	p->per_slab = POOL_PASSTHROUGH || p->blk >= SLAB_BYTES ? 1 : (uint32_t)(SLAB_BYTES / p->blk);
	p->max_slabs = POOL_PASSTHROUGH ? 0 : (max_blocks + p->per_slab - 1) / p->per_slab;
	if (p->max_slabs == 0)
		return 0;
	p->slabs = calloc(p->max_slabs, sizeof(*p->slabs));	/* freed by _fini */
	return p->slabs != NULL ? 0 : -ENOMEM;
}

void
utcp_buf_pool_fini(struct utcp_buf_pool *p)
{
	uint32_t i;

	for (i = 0; i < p->nslabs; i++)
		free(p->slabs[i]);
	free(p->slabs);
	memset(p, 0, sizeof(*p));
}

/* Carves a new slab into the free list; false at the cap or without memory. */
static bool
pool_grow(struct utcp_buf_pool *p)
{
	uint32_t n = p->max_blocks - p->nblocks, i;
	uint8_t *slab;

	if (n == 0 || p->nslabs == p->max_slabs)
		return false;
	if (n > p->per_slab)
		n = p->per_slab;
	slab = aligned_alloc(64, n * p->blk);		/* freed by _fini */
	if (slab == NULL)
		return false;
	p->slabs[p->nslabs++] = slab;
	p->nblocks += n;
	for (i = n; i-- > 0;) {
		*(void **)(void *)(slab + i * p->blk) = p->free;
		p->free = slab + i * p->blk;
	}
	return true;
}

void *
utcp_buf_pool_get(struct utcp_buf_pool *p)
{
	void *b;

	if (POOL_PASSTHROUGH) {
		if (p->used >= p->max_blocks)
			return NULL;
		b = aligned_alloc(64, p->blk);		/* freed by _put */
		if (b != NULL)
			p->used++;
		return b;
	}
	if (p->free == NULL && !pool_grow(p))
		return NULL;
	b = p->free;
	p->free = *(void **)b;
	p->used++;
	return b;
}

void
utcp_buf_pool_put(struct utcp_buf_pool *p, void *b)
{
	if (b == NULL)
		return;
	p->used--;
	if (POOL_PASSTHROUGH) {
		free(b);
		return;
	}
	*(void **)b = p->free;
	p->free = b;
}

size_t
utcp_buf_pool_bytes(const struct utcp_buf_pool *p)
{
	return (POOL_PASSTHROUGH ? p->used : p->nblocks) * p->blk;
}

/* ---- rings ---- */

/* Copies <n> bytes into ring <data> of <cap> at index <at> (may wrap). */
static void
ring_put(uint8_t *data, uint32_t cap, uint32_t at, const uint8_t *src, uint32_t n)
{
	uint32_t first;

	at %= cap;
	first = cap - at < n ? cap - at : n;
	memcpy(data + at, src, first);
	if (n > first)
		memcpy(data, src + first, n - first);
}

static void
ring_get(const uint8_t *data, uint32_t cap, uint32_t at, uint8_t *dst, uint32_t n)
{
	uint32_t first;

	at %= cap;
	first = cap - at < n ? cap - at : n;
	memcpy(dst, data + at, first);
	if (n > first)
		memcpy(dst + first, data, n - first);
}

void
utcp_buf_sinit(struct utcp_sbuf *b, uint8_t *mem, uint32_t cap)
{
	b->data = mem;
	b->cap = cap;
	b->head = 0;
	b->len = 0;
}

uint32_t
utcp_buf_sappend(struct utcp_sbuf *b, const void *src, uint32_t n)
{
	if (n > b->cap - b->len)
		n = b->cap - b->len;
	if (n == 0)
		return 0;
	ring_put(b->data, b->cap, b->head + b->len, src, n);
	b->len += n;
	return n;
}

void
utcp_buf_speek(const struct utcp_sbuf *b, uint32_t off, void *dst, uint32_t n)
{
	if (n)
		ring_get(b->data, b->cap, b->head + off, dst, n);
}

void
utcp_buf_sconsume(struct utcp_sbuf *b, uint32_t n)
{
	if (n > b->len)
		n = b->len;
	b->head = (b->head + n) % b->cap;
	b->len -= n;
	if (b->len == 0)
		b->head = 0;
}

void
utcp_buf_rinit(struct utcp_rbuf *b, uint8_t *mem, uint32_t cap, uint32_t ooo_max)
{
	memset(b, 0, sizeof(*b));
	b->data = mem;
	b->cap = cap;
	b->ooo_max = ooo_max;
}

static void
range_remove(struct utcp_rbuf *b, int i)
{
	b->ooo_bytes -= (uint32_t)(b->r[i].end - b->r[i].start);
	memmove(&b->r[i], &b->r[i + 1], (size_t)(b->nranges - i - 1) * sizeof(b->r[0]));
	b->nranges--;
}

/* Moves ranges that the in-order end has reached into the in-order part. */
static uint32_t
absorb(struct utcp_rbuf *b)
{
	uint32_t grown = 0;

	while (b->nranges && b->r[0].start <= b->nxt) {
		if (b->r[0].end > b->nxt) {
			grown += (uint32_t)(b->r[0].end - b->nxt);
			b->nxt = b->r[0].end;
		}
		range_remove(b, 0);
	}
	b->len += grown;
	return grown;
}

/* Would adding [s, e) keep us within the cap and the range limit? Computes
 * the result of the merge without changing anything. */
static bool
ooo_fits(const struct utcp_rbuf *b, uint64_t s, uint64_t e)
{
	uint64_t ms = s, me = e, covered = 0;
	int i, merged = 0;

	for (i = 0; i < b->nranges; i++) {
		if (b->r[i].end < s || b->r[i].start > e)
			continue;
		merged++;
		covered += b->r[i].end - b->r[i].start;
		if (b->r[i].start < ms)
			ms = b->r[i].start;
		if (b->r[i].end > me)
			me = b->r[i].end;
	}
	if (b->nranges - merged + 1 > UTCP_OOO_RANGES)
		return false;
	return b->ooo_bytes - covered + (me - ms) <= b->ooo_max;
}

static void
ooo_add(struct utcp_rbuf *b, uint64_t s, uint64_t e)
{
	int i = 0, j;

	while (i < b->nranges && b->r[i].end < s)
		i++;
	/* r[i] is the first range that touches or follows [s, e). */
	if (i == b->nranges || b->r[i].start > e) {
		memmove(&b->r[i + 1], &b->r[i], (size_t)(b->nranges - i) * sizeof(b->r[0]));
		b->nranges++;
		b->r[i].start = s;
		b->r[i].end = e;
	} else {
		if (s < b->r[i].start)
			b->r[i].start = s;
		if (e > b->r[i].end)
			b->r[i].end = e;
		while (i + 1 < b->nranges && b->r[i + 1].start <= b->r[i].end) {
			if (b->r[i + 1].end > b->r[i].end)
				b->r[i].end = b->r[i + 1].end;
			memmove(&b->r[i + 1], &b->r[i + 2],
				(size_t)(b->nranges - i - 2) * sizeof(b->r[0]));
			b->nranges--;
		}
	}
	b->ooo_bytes = 0;
	for (j = 0; j < b->nranges; j++)
		b->ooo_bytes += (uint32_t)(b->r[j].end - b->r[j].start);
	b->r[i].stamp = ++b->stamp;
}

int
utcp_buf_rwrite(struct utcp_rbuf *b, uint32_t off, const void *src, uint32_t n)
{
	uint32_t room = b->cap - b->len;
	uint64_t s, e;

	if (off >= room)
		return off == 0 ? 0 : -ENOBUFS;
	if (n > room - off)
		n = room - off;
	if (n == 0)
		return 0;
	s = b->nxt + off;
	e = s + n;
	if (off > 0 && !ooo_fits(b, s, e))
		return -ENOBUFS;
	ring_put(b->data, b->cap, b->head + b->len + off, src, n);
	if (off > 0) {
		ooo_add(b, s, e);
		return 0;
	}
	b->nxt = e;
	b->len += n;
	return (int)(n + absorb(b));
}

uint32_t
utcp_buf_rread(struct utcp_rbuf *b, void *dst, uint32_t n)
{
	if (n > b->len)
		n = b->len;
	if (n == 0)
		return 0;
	ring_get(b->data, b->cap, b->head, dst, n);
	utcp_buf_rconsume(b, n);
	return n;
}

int
utcp_buf_rpeek(const struct utcp_rbuf *b, const void *ptr[2], size_t len[2])
{
	uint32_t first;

	if (b->len == 0)
		return 0;
	first = b->cap - b->head < b->len ? b->cap - b->head : b->len;
	ptr[0] = b->data + b->head;
	len[0] = first;
	if (first == b->len)
		return 1;
	ptr[1] = b->data;
	len[1] = b->len - first;
	return 2;
}

void
utcp_buf_rconsume(struct utcp_rbuf *b, uint32_t n)
{
	if (n > b->len)
		n = b->len;
	b->head = (b->head + n) % b->cap;
	b->len -= n;
}

uint32_t
utcp_buf_rskip(struct utcp_rbuf *b, uint32_t n)
{
	uint32_t grown;

	/* Ring index of stream offset x is head + len + (x - nxt): moving nxt
	 * and head together keeps the out-of-order bytes where they are. */
	b->head = (uint32_t)(((uint64_t)b->head + n) % b->cap);
	b->nxt += n;
	grown = absorb(b);
	return grown;
}

int
utcp_buf_rsack(const struct utcp_rbuf *b, struct utcp_range *out, int max)
{
	struct utcp_range tmp[UTCP_OOO_RANGES], r;
	int n = b->nranges, i, j;

	/* Insertion sort by descending stamp; the signed difference keeps the
	 * order right across a wrap of the 32-bit counter. */
	for (i = 0; i < n; i++) {
		r = b->r[i];
		for (j = i; j > 0 && (int32_t)(r.stamp - tmp[j - 1].stamp) > 0; j--)
			tmp[j] = tmp[j - 1];
		tmp[j] = r;
	}
	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		out[i] = tmp[i];
	return n;
}

void
utcp_buf_rflush_ooo(struct utcp_rbuf *b)
{
	b->nranges = 0;
	b->ooo_bytes = 0;
}
