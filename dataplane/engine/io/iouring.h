/* The io_uring flavour of the kernel-socket backend (io/iouring.c), and
 * what it shares with the epoll one (io/kernel.c). Engine only. */
#ifndef PARLEY_IOURING_H
#define PARLEY_IOURING_H

#include <stddef.h>

struct engine_conf;
struct io_ops;

/* io/iouring.c: the backend ([io] kernel_io = io_uring). */
extern const struct io_ops io_iouring_ops;

/* Boot thread: 0 when this kernel and process can run io_iouring_ops
 * (io_uring allowed, buffer rings, multishot accept and receive), else
 * -errno with the reason in <why>. */
int iouring_usable(char *why, size_t whylen);

/* io/kernel.c: a non-blocking listening socket on [sip] listen with
 * SO_REUSEPORT (one per lcore), or -errno with a message in <err>. */
int io_kernel_listen_socket(const struct engine_conf *cf, char *err, size_t errlen);

#endif
