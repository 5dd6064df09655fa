/* systemd's service notification protocol (sd_notify(3)), without
 * libsystemd: one datagram "KEY=VALUE\n..." to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). Outside
 * systemd (no $NOTIFY_SOCKET) every call is a no-op.
 *
 * Any thread; the environment is read, never changed. */
#ifndef PARLEY_SDNOTIFY_H
#define PARLEY_SDNOTIFY_H

#include <stdint.h>

/* Sends <state> ("READY=1", "STOPPING=1\nSTATUS=draining", "WATCHDOG=1").
 * 1 sent, 0 no $NOTIFY_SOCKET, -errno when it cannot be sent. */
int sdnotify(const char *state);

/* The watchdog interval systemd asks for ($WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or ours), in microseconds; 0: none. */
uint64_t sdnotify_watchdog_usec(void);

#endif
