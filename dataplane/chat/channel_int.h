/* The Channel service's internals, shared by channel.c (replies, the
 * command table, the commands answered locally) and channel_relay.c (the
 * commands that go through the fan-out). Not for other modules. */
#ifndef PARLEY_CHANNEL_INT_H
#define PARLEY_CHANNEL_INT_H

#include <stdbool.h>

struct conn;
struct dialog;
struct lcore_ctx;
struct xccos_msg;
struct sipmsg;
struct xbuf;
struct roomtab_ent;
struct fanout_joinbatch;
struct fanout_post;

/* One command being handled. */
struct cmdctx {
	struct conn		*c;
	struct dialog		*d;
	struct lcore_ctx	*lc;
	const struct xccos_msg	*x;
	const char		*rpl;	/* reply name, usually the command's */
	const struct sipmsg	*m;	/* the INFO that carried it */
};

/* channel.c: replies on <x>'s dialog, counted by result code. */
/* A reply with no data: errors, and the commands that only acknowledge. */
void channel_reply_code(struct cmdctx *x, int code);
/* The INFO's SIP 200 and an error reply with <code>: a command that is not
 * carried out (a refused post counts as one). */
void channel_refuse(struct cmdctx *x, int code);
/* A reply with data: begin (initialises <b>), the caller adds the data,
 * end (sends it and frees <b>). */
void channel_begin_reply(struct cmdctx *x, struct xbuf *b, int code);
void channel_end_reply(struct cmdctx *x, struct xbuf *b);
/* <chanib ...> of room <r> with info and prop children; left open when
 * <open>. */
void channel_put_chanib(struct lcore_ctx *lc, struct xbuf *b, const struct roomtab_ent *r,
			bool open);
/* The room a command's <chanib uri> names, or NULL. */
const struct roomtab_ent *channel_room_of_chanib(struct cmdctx *x);

/* channel_relay.c: the command handlers (struct xcmd) ... */
void channel_cmd_join(struct cmdctx *x);
void channel_cmd_bjoin(struct cmdctx *x);
void channel_cmd_part(struct cmdctx *x);
void channel_cmd_grpchat(struct cmdctx *x);
/* ... and the fan-out's callbacks (struct fanout_ops), origin lcore. */
void channel_join_done(struct lcore_ctx *lc, struct fanout_joinbatch *jb);
void channel_post_done(struct lcore_ctx *lc, struct fanout_post *p);

#endif
