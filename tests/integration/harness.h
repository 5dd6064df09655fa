/* Starts and stops a real parleyd for integration tests: 127.0.0.1 on a free
 * port, a fresh temporary data directory, users alice@example.com (password
 * "alice-pw"), bob@example.com ("bob-pw") and user0 .. user<HARNESS_USERS-1>
 * @example.com (password "pw") in its htdigest file. */
#ifndef PARLEY_TEST_HARNESS_H
#define PARLEY_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct server {
	pid_t pid;
	uint16_t port;
	char dir[256];		/* data_dir */
	char conf[300];		/* config file */
	char log[300];		/* its stderr */
};

#define HARNESS_USERS	300

/* Writes the config (with <extra> appended, may be NULL) and starts parleyd;
 * returns once the port accepts connections. Asserts on failure. */
void server_start(struct server *s, const char *extra);
/* SIGTERM and wait; returns the exit status (or -1). Removes the directory. */
int server_stop(struct server *s);
/* Kills with <sig> and waits; the data directory stays. */
void server_kill(struct server *s, int sig);
/* Starts parleyd again on the same configuration, port and data. */
void server_restart(struct server *s);
/* Sends a signal. */
void server_signal(struct server *s, int sig);
/* True while the process runs. */
bool server_alive(struct server *s);
/* A TCP port on 127.0.0.1 that is free now. */
uint16_t server_free_port(void);
/* Path of the parleyd binary. */
const char *server_binary(void);
/* Runs a shell command; returns its exit status. */
int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
