/* Rooms declared in the configuration ([room:NAME]) are made to exist in
 * the catalog at start: created with a fresh id when absent, brought in
 * line with the configuration when present (the id never changes). Rooms
 * made otherwise (control socket) are left alone. Boot only. */
#ifndef PARLEY_ROOMS_BOOT_H
#define PARLEY_ROOMS_BOOT_H

#include <stddef.h>

struct db;
struct config;

/* 0, or -1 with a sentence for the operator in <err>. */
int rooms_boot_sync(struct db *db, const struct config *c, char *err, size_t errlen);

#endif
