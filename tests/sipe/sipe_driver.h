/* What the two files of sipe_driver share: sipe_driver.c (the options,
 * the steps, setup and teardown, main) and sipe_ui.c (libpurple's UI side:
 * its event loop, debug, notify and request ops, the room list, the
 * conversations and the connection's signals). One thread (GLib's main
 * loop); for this test program only. */
#ifndef PARLEY_TEST_SIPE_DRIVER_H
#define PARLEY_TEST_SIPE_DRIVER_H

#include <stdbool.h>

#include <glib.h>
#include <purple.h>

#define RETRY_MS	500

enum step_kind { ST_ROOMLIST, ST_JOIN, ST_EXPECT, ST_COUNT, ST_SEND, ST_PART, ST_SLEEP };

struct step {
	enum step_kind kind;
	const char *name;	/* for messages */
	const char *arg1;
	const char *arg2;
};

struct chat_msg {
	char *author;
	char *text;		/* plain text */
};

/* The driver's state (sipe_driver.c defines it with the defaults). */
struct drv_state {
	/* options */
	const char *host, *user, *login, *password, *cert;
	unsigned port, timeout_s;
	bool accept_prompts, debug, keep;

	char *user_dir;
	char *self_uri;		/* sip:<user> */
	GMainLoop *loop;
	PurpleAccount *account;
	int exit_code;
	bool finishing;
	bool conn_error;	/* libpurple is already tearing the connection down */

	struct step *steps;
	unsigned nsteps, cur;
	bool step_started;
	guint step_timer;	/* step deadline */
	guint retry_timer;	/* roomlist retry / sleep */
	guint kick;		/* pending idle step_check */

	PurpleRoomlist *roomlist;	/* ours (referenced) while listing or joining */
	unsigned rooms;
	bool roomlist_done;
	bool gc_connected;

	char *room_name;		/* the room being joined / joined */
	PurpleConversation *conv;	/* joined room */
	GPtrArray *msgs;		/* struct chat_msg *, since the join */
};

extern struct drv_state drv;

/* sipe_driver.c */
/* Prints one event line (printf-style) on stdout and flushes it. */
void drv_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* <s> on one line: control characters other than space become escapes
 * (g_free the result). <s> may be NULL. */
char *drv_oneline(const char *s);
/* Checks the current step again from the main loop (soon, once). */
void drv_step_kick(void);
/* Ends the run with exit status <code>: signs off, then leaves the loop.
 * Only the first call counts. */
void drv_finish(int code);

/* sipe_ui.c */
/* Sets libpurple's UI ops (debug, event loop, notify, request, room list,
 * conversations); before purple_core_init(). */
void drv_ui_set_ops(void);
/* Connects the connection's and the conversations' signals; once the
 * plugin is loaded, before the account is enabled. */
void drv_ui_connect(void);
/* Asks for the room list (GSourceFunc: retried every RETRY_MS until sipe's
 * Group Chat is up). */
gboolean drv_roomlist_try(gpointer unused);
/* The room called <name> in the last room list, or NULL. */
PurpleRoomlistRoom *drv_roomlist_find(const char *name);
/* Forgets the messages received in the joined room. */
void drv_msgs_clear(void);

#endif
