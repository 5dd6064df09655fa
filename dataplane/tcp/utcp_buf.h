/* Byte buffers of one TCP connection, in stream offsets (not sequence
 * numbers), so they are testable alone.
 *
 * utcp_sbuf: the send buffer, a ring holding the bytes from the oldest
 * unacknowledged one onwards; the app appends, ACKs consume, (re)transmission
 * peeks at any offset.
 *
 * utcp_rbuf: the receive buffer, a ring holding the in-order bytes the app has
 * not read, followed by room for out-of-order bytes, which are written in
 * place at their final position. A short list of [start, end) ranges (absolute
 * stream offsets) says which bytes past the in-order end are present; when
 * in-order data reaches a range the range joins the in-order part without a
 * copy. Overlapping and duplicate data are harmless (same bytes, same place).
 * The out-of-order bytes are capped per buffer; a write past the cap or past
 * the range limit is refused whole.
 *
 * Owned by one connection; storage is provided by the caller at init.
 *
 * utcp_buf_pool: where that storage comes from. Fixed-size blocks (one per
 * connection: send ring then receive ring) on a free list; when the list is
 * empty a slab of blocks is allocated, up to a cap in blocks. Blocks go back
 * on the list, slabs are freed only by utcp_buf_pool_fini(). So memory grows
 * with the largest number of connections open at once, never with
 * max_conns, and nothing is allocated per packet. With -Dpools=passthrough
 * every block is its own malloc()/free(), for ASan. One pool per stack: not
 * thread-safe. */
#ifndef PARLEY_UTCP_BUF_H
#define PARLEY_UTCP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTCP_OOO_RANGES	8	/* out-of-order ranges kept; 3-4 fit in SACK */

struct utcp_sbuf {
	uint8_t *data;
	uint32_t cap, head, len;	/* head: ring index of the oldest byte */
};

struct utcp_range {
	uint64_t start, end;		/* absolute stream offsets, [start, end) */
	uint32_t stamp;			/* when last extended, for SACK order */
};

struct utcp_rbuf {
	uint8_t *data;
	uint32_t cap, head, len;	/* len: in-order bytes not yet read */
	uint64_t nxt;			/* stream offset of the next in-order byte */
	uint32_t ooo_bytes, ooo_max;
	uint32_t stamp;
	uint8_t nranges;		/* sorted by start, disjoint, not adjacent */
	struct utcp_range r[UTCP_OOO_RANGES];
};

struct utcp_buf_pool {
	size_t blk;			/* bytes per block (multiple of 64) */
	uint32_t per_slab;		/* blocks per slab */
	uint32_t max_blocks;		/* the cap */
	uint32_t nblocks;		/* blocks carved out (or malloc'd) so far */
	uint32_t used;			/* blocks handed out */
	void *free;			/* free list, linked through each block */
	void **slabs;
	uint32_t nslabs, max_slabs;
};

/* Boot path: a pool of blocks of <blk> bytes, at most <max_blocks> of them.
 * Nothing but the slab table is allocated yet. 0 or -ENOMEM. */
int utcp_buf_pool_init(struct utcp_buf_pool *p, size_t blk, uint32_t max_blocks);
/* Frees every slab; blocks still out become invalid. Accepts a zeroed pool. */
void utcp_buf_pool_fini(struct utcp_buf_pool *p);
/* A block, or NULL at the cap (or when a new slab cannot be allocated). */
void *utcp_buf_pool_get(struct utcp_buf_pool *p);
/* Gives <blk> back. Accepts NULL. */
void utcp_buf_pool_put(struct utcp_buf_pool *p, void *blk);
/* Bytes the pool holds from the system (slabs or passthrough blocks). */
size_t utcp_buf_pool_bytes(const struct utcp_buf_pool *p);

void utcp_buf_sinit(struct utcp_sbuf *b, uint8_t *mem, uint32_t cap);
/* Appends up to <n> bytes; returns the count taken. */
uint32_t utcp_buf_sappend(struct utcp_sbuf *b, const void *src, uint32_t n);
/* Copies <n> bytes starting <off> bytes after the oldest; the caller keeps
 * off + n <= len. */
void utcp_buf_speek(const struct utcp_sbuf *b, uint32_t off, void *dst, uint32_t n);
void utcp_buf_sconsume(struct utcp_sbuf *b, uint32_t n);

static inline uint32_t
utcp_buf_sfree(const struct utcp_sbuf *b)
{
	return b->cap - b->len;
}

void utcp_buf_rinit(struct utcp_rbuf *b, uint8_t *mem, uint32_t cap, uint32_t ooo_max);
/* Stores <n> bytes that belong <off> bytes past the in-order end (off 0: in
 * order). Bytes beyond the free space are cut off. Returns the number of
 * bytes the in-order part grew by (0 for out-of-order data), or -ENOBUFS when
 * out-of-order data would exceed the cap or the range limit (nothing stored). */
int utcp_buf_rwrite(struct utcp_rbuf *b, uint32_t off, const void *src, uint32_t n);
/* Copies up to <n> in-order bytes out and frees them. Returns the count. */
uint32_t utcp_buf_rread(struct utcp_rbuf *b, void *dst, uint32_t n);
/* Up to two spans of in-order bytes; returns the number of spans. */
int utcp_buf_rpeek(const struct utcp_rbuf *b, const void *ptr[2], size_t len[2]);
void utcp_buf_rconsume(struct utcp_rbuf *b, uint32_t n);
/* The in-order part is empty and the app took the next <n> in-order bytes
 * straight from the packet: move past them without storing them (ranges
 * they reach join the in-order part). Returns the bytes the in-order part
 * grew by from such ranges. */
uint32_t utcp_buf_rskip(struct utcp_rbuf *b, uint32_t n);
/* Out-of-order ranges, most recently extended first (RFC 2018 §4 order).
 * Returns the count written (<= max). */
int utcp_buf_rsack(const struct utcp_rbuf *b, struct utcp_range *out, int max);
/* Drops every out-of-order byte (the in-order part stays). */
void utcp_buf_rflush_ooo(struct utcp_rbuf *b);

/* Space left for data past the in-order part (the receive window). */
static inline uint32_t
utcp_buf_rfree(const struct utcp_rbuf *b)
{
	return b->cap - b->len;
}

#endif
