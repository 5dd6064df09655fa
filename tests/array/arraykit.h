/* Array test kit: see arraykit.c. */
#ifndef PARLEY_TEST_ARRAYKIT_H
#define PARLEY_TEST_ARRAYKIT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "tests/array/etcdfix.h"
#include "tests/integration/harness.h"

#define AK_NODES	3

struct pc_conn;

extern struct etcdfix ak_etcd;
extern struct server ak_node[AK_NODES];
extern bool ak_up[AK_NODES];	/* started by ak_node_start, stopped by ak_teardown */

/* Criterion .init / .fini: etcd up; every node and etcd down. */
void ak_setup(void);
void ak_teardown(void);

/* Node <i> (node_id i + 1) with [array] etcd and a lease of <ttl_s>, and
 * <more> (config text, may be NULL) appended; returns once it is in the
 * array and caught up with the array's catalog. */
void ak_node_start(int i, uint32_t ttl_s, const char *more);

/* Writes a node config ([server], [sip], [web] on free ports, then
 * <extra>) into a fresh directory (no etcd fixture needed) and runs parleyd
 * on it to the end; its exit status, its log in <log>. */
int ak_run_node(const char *extra, char *log, size_t loglen);

/* `parleyctl array` on node <i>, which must succeed (caller decrefs). */
json_t *ak_array(int i);
/* The record of node <id> in an array answer, or NULL. Borrowed. */
json_t *ak_find(json_t *a, int id);
/* Node <id> is in node <on>'s view of the array. */
bool ak_present(int on, int id);

/* Registers user<u> at node <at>, following one 301 the way an RFC 3261
 * client does (the Contact, with the mark, as the new Request-URI). The
 * index of the node that served it; the connection stays open in *<keep>
 * when not NULL. */
int ak_place(int at, int u, struct pc_conn **keep);

/* A cluster CA and certificates for node1..node4 signed by it (CN=node<i>),
 * ECDSA P-256, made with openssl(1) into a fresh directory <dir> (of <cap>
 * bytes, at least 32); removed with `rm -rf`. */
void ak_pki_make(char *dir, size_t cap);
/* Node <i> as ak_node_start, with peer links (a free peer port, returned
 * in *<port> when not NULL, and its certificate of <pki>'s CA) and <more>. */
void ak_peer_node_start(int i, const char *pki, const char *more, uint16_t *port);
/* Waits until every pair of the nodes in <mask> has its link up. */
void ak_wait_links(unsigned mask);
/* Waits until node <on> knows a home for every room of its catalog. */
void ak_wait_homed(int on);

/* Waits until node <on> sees node <id> with draining == <want>, then for
 * the placement tables to take it in. */
void ak_wait_draining(int on, int id, bool want);

#endif
