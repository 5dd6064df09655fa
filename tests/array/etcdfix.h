/* A throwaway etcd for tests: one member on 127.0.0.1 (free client and
 * peer ports), its data in a fresh temporary directory (on /dev/shm if
 * writable, else /tmp), stopped and removed
 * at the end; also when the test process dies (a reaper process, parent
 * of etcd, watches a pipe from the test and cleans up when it closes).
 * Needs Debian's etcd-server (/usr/bin/etcd, 3.4). No Criterion: usable
 * from any test or tool. */
#ifndef PARLEY_TEST_ETCDFIX_H
#define PARLEY_TEST_ETCDFIX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct etcdfix {
	pid_t		pid;		/* etcd */
	pid_t		reaper;		/* etcd's parent; cleans up */
	int		hold_fd;	/* closing it tells the reaper to clean up */
	uint16_t	client_port, peer_port;
	char		dir[64];	/* data/ and etcd.log under it */
	char		url[64];	/* http://127.0.0.1:<client_port> */
	char		log[96];	/* etcd's output */
};

/* Starts etcd and returns once /health says true (up to 20 s). 0, or -1
 * with the reason (and the end of etcd's log) in <err>; nothing is left
 * running then. */
int etcdfix_start(struct etcdfix *f, char *err, size_t errlen);

/* Stops etcd (SIGKILL: tests need no graceful stop) and removes its
 * directory; waits for both. Safe to call twice. */
void etcdfix_stop(struct etcdfix *f);

/* Sends <sig> to etcd (SIGSTOP / SIGCONT: etcd stops answering and comes
 * back). 0 or -1. */
int etcdfix_signal(struct etcdfix *f, int sig);

/* True when GET <url>/health answers {"health":"true"} within 1 s. */
int etcdfix_healthy(const char *url);

/* A TCP port on 127.0.0.1 that is free now; 0 on failure. */
uint16_t etcdfix_free_port(void);

#endif
