/* Starts and stops a real parleyd for integration tests: 127.0.0.1 on a free
 * port, a fresh temporary data directory, users alice@example.com (password
 * "alice-pw"), bob@example.com ("bob-pw") and user0 .. user<HARNESS_USERS-1>
 * @example.com (password "pw") in its htdigest file. */
#ifndef PARLEY_TEST_HARNESS_H
#define PARLEY_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pc_conn;
struct pc_opts;
struct sipmsg;

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
/* <rel> under the build directory ($PARLEY_BUILDDIR, else ./build), in
 * <out>; returns <out>. */
const char *build_path(char *out, size_t cap, const char *rel);
/* Path of the parleyd binary. */
const char *server_binary(void);
/* Path of the pidgin-sipe driver: $PARLEY_SIPE_DRIVER, else
 * tests/sipe/sipe_driver under the build directory. */
const char *sipe_driver_path(void);
/* A TLS connection to <s> with options <o> (NULL: the defaults); the test
 * fails when there is none within 5 s. */
struct pc_conn *server_connect(const struct server *s, const struct pc_opts *o);
/* Sends <len> bytes at <req> on <c> and reads the response into <m>; its
 * status. The test fails when none comes within 5 s. */
int server_roundtrip(struct pc_conn *c, const char *req, size_t len, struct sipmsg *m);
/* Runs a shell command; returns its exit status. */
int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
