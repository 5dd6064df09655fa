/* The registrar: REGISTER with Digest, and the SUBSCRIBEs a client sends
 * right after signing on (registrar.c). Owning lcore only. */
#ifndef PARLEY_REGISTRAR_H
#define PARLEY_REGISTRAR_H

struct conn;
struct sipmsg;

void registrar_register(struct conn *c, const struct sipmsg *m);
void registrar_subscribe(struct conn *c, const struct sipmsg *m);

#endif
