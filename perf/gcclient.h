/* A Group Chat client on top of client.h, for tests and the load
 * generator: sign-in (REGISTER with Digest), the Lookup dialog (requri),
 * the Channel dialog, commands and posts as XCCOS in INFO, and the server's
 * INFOs (replies, notices, posts), each answered with 200 and queued for
 * the caller.
 *
 * Blocking, one struct gc per thread. Bodies handed out are malloc'd. */
#ifndef PARLEY_GCCLIENT_H
#define PARLEY_GCCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gc;
struct pc_conn;

/* Connects, registers <aor> with <password>, INVITEs sip:ocschat@<domain>,
 * sends cmd:requri, BYEs the Lookup leg and INVITEs the Channel URI it
 * named. NULL with a reason in <err>. */
struct gc *gc_open(const char *host, uint16_t port, const char *aor, const char *password,
		   char *err, size_t errlen);
/* The same with REGISTER's Request-URI <ruri> (NULL: sip:<domain>), e.g.
 * with the array's placement mark to be served where it lands. */
struct gc *gc_open_to(const char *host, uint16_t port, const char *aor, const char *password,
		      const char *ruri, char *err, size_t errlen);
/* BYE on the channel dialog, then close. Accepts NULL. */
void gc_close(struct gc *g);
/* Close without BYE (a client that vanished). */
void gc_abort(struct gc *g);

const char *gc_channel_uri(const struct gc *g);
const char *gc_aor(const struct gc *g);
struct pc_conn *gc_conn(struct gc *g);

/* Sends <body> (an XCCOS document) in an INFO on the channel dialog and
 * waits for the SIP response: its status, or -1. */
int gc_info(struct gc *g, const char *body);
/* <cmd id="cmd:NAME" seqid="1"><data>DATA</data></cmd> in an envelope. */
int gc_cmd(struct gc *g, const char *name, const char *data);
/* A post: grpchat with chanUri, author (this user, unless <author> is
 * given) and a client ts; <text> is escaped. Returns the SIP status. */
int gc_post(struct gc *g, const char *room_uri, const char *text, const char *author);
/* A request on the channel dialog without body (UPDATE, BYE...). */
int gc_request(struct gc *g, const char *method);

/* The first queued or arriving server INFO whose body contains every one
 * of the NULL-terminated needles (in any order), removed from the queue;
 * NULL after <timeout_ms>. */
char *gc_wait(struct gc *g, int timeout_ms, ...) __attribute__((sentinel));
/* Reads whatever arrives within <timeout_ms> into the queue; the number of
 * queued bodies. */
int gc_pump(struct gc *g, int timeout_ms);
/* Removes and returns the oldest queued body, or NULL. */
char *gc_next(struct gc *g);
/* Counts queued bodies containing <needle> (not removing them). */
int gc_count(struct gc *g, const char *needle);

/* The uri of the room called <name> in a chansrch reply body, into <out>. */
bool gc_room_uri(const char *chansrch_body, const char *name, char *out, size_t cap);
/* Joins the room with ma-chan URI <uri>: the rpl:join body, or NULL. */
char *gc_join(struct gc *g, const char *uri, int timeout_ms);

#endif
