/* A lock-free table of 16-byte keys (room ids), open addressing with
 * linear probing, that never deletes: used for the per-room counters that
 * lcores publish and other threads read (the presence counts of
 * dataplane/chat/fanout.c, the settled seqs of storage/acked.h). The
 * caller owns the slots: an array of <n> (a power of two) structs of
 * <stride> bytes, zeroed, each beginning with a struct keyslot, followed
 * by its atomic value(s). */
#ifndef PARLEY_KEYSLOT_H
#define PARLEY_KEYSLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYSLOT_KEY	16

struct keyslot {
	_Atomic uint32_t	state;		/* 0 free, 1 being claimed, 2 ready */
	uint8_t			key[KEYSLOT_KEY];
};

/* FNV-1a 32 of <key>. */
uint32_t keyslot_hash(const uint8_t key[KEYSLOT_KEY]);

/* The slot of <key> in <slots>, claimed if absent and <claim>. NULL when
 * absent (and not <claim>) or the table is full. Any thread; a thread
 * that meets a slot being claimed waits until its key is written. */
struct keyslot *keyslot_find(void *slots, size_t stride, uint32_t n,
			     const uint8_t key[KEYSLOT_KEY], bool claim);

#endif
