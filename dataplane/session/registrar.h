/* The registrar: REGISTER with Digest, and the SUBSCRIBEs a client sends
 * right after signing on (registrar.c). Owning lcore only. */
#ifndef PARLEY_REGISTRAR_H
#define PARLEY_REGISTRAR_H

#include <stddef.h>

struct conn;
struct engine;
struct sipmsg;

/* Boot thread, the protocol's init and fini hooks (sipconn.c): the Digest
 * nonce key and the failed-login limits every lcore of <e> shares. 0 or
 * -errno with a message in <err>; registrar_fini accepts what a failed
 * init left, or nothing. */
int registrar_init(struct engine *e, char *err, size_t errlen);
void registrar_fini(struct engine *e);

void registrar_register(struct conn *c, const struct sipmsg *m);
void registrar_subscribe(struct conn *c, const struct sipmsg *m);

#endif
