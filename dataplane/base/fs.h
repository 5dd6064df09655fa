/* File-system helpers for boot and service threads (they block on disk). */
#ifndef PARLEY_FS_H
#define PARLEY_FS_H

#include <stddef.h>
#include <sys/types.h>

/* Creates <path> and every missing directory above it with <mode>, like
 * `mkdir -p`; existing ones are left as they are. 0, or -errno
 * (-ENAMETOOLONG for a path of 4096 bytes or more). */
int fs_mkdir_p(const char *path, mode_t mode);

/* The directory part of <path> into <out> ("." when it has no slash; "" for
 * "/x"). 0, or -ENAMETOOLONG when it does not fit in <cap>. */
int fs_dirname(const char *path, char *out, size_t cap);

#endif
