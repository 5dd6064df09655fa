/* sipe_driver: runs the unmodified pidgin-sipe plugin (prpl-sipe) headlessly
 * through libpurple against a parleyd, and prints one line per observed event
 * on stdout, so that a test can follow a real Group Chat client.
 *
 *   sipe_driver --port N --cert CERT.pem [options] [STEP ...]
 *
 * Options:
 *   --host H         server host (default 127.0.0.1); the pinned certificate is
 *                    stored under this name, which is what libpurple checks
 *   --port N         server port (required)
 *   --user AOR       sign-in address (default alice@example.com)
 *   --login NAME     login for authentication (default: the sign-in address)
 *   --password PW    (default alice-pw)
 *   --cert FILE      the server's certificate (PEM), pinned for --host
 *   --timeout S      seconds each step (and the sign-on) may take (default 20)
 *   --accept-prompts answer any libpurple prompt with its default action;
 *                    without it a prompt is a failure (with the certificate
 *                    pinned, none is expected)
 *
 * Steps, run in order once signed on (arguments are separate words):
 *   roomlist             list rooms (retried until Group Chat is connected)
 *   join NAME            join the room NAME from the last room list
 *   expect AUTHOR TEXT   wait until a message TEXT from AUTHOR arrived in the
 *                        joined room (since the join, history included);
 *                        AUTHOR "self" is sip:<user>, "any" matches anyone
 *   count N              wait until N messages arrived in the joined room
 *   send TEXT            post TEXT (plain text) to the joined room
 *   part                 leave the joined room
 *   sleep MS             let the client run for MS milliseconds
 *
 * Output lines (stdout, line-buffered):
 *   SIGNED_ON <account>
 *   GROUPCHAT_CONNECTED                  sipe accepted the room list request
 *   ROOMLIST name=<n> uri=<u> users=<c> flags=<invite,private,logged> description=<d>
 *   ROOMLIST_DONE n=<rooms>
 *   JOINED <room>
 *   USER_JOINED <room> <uri>  /  USER_LEFT <room> <uri>
 *   TOPIC <room> <topic>
 *   MSG <room> author=<uri> text=<text>    (newlines shown as \n)
 *   SENT <room> text=<text>
 *   PARTED <room>
 *   CONV_ERROR <room> <text>     e.g. "This message was not delivered ..."
 *   CONV_SYSTEM <room> <text>
 *   NOTIFY <type> <title> | <primary> | <secondary>
 *   PROMPT <title> | <primary>   (then PROMPT_ANSWER <label>, or ERROR)
 *   STEP <name>                  a step starts
 *   ERROR <what>                 fatal; exit 1
 *   TIMEOUT <step>               exit 3
 *   DONE                         all steps passed; exit 0 after signing off
 * Exit status 2: usage or setup error (no plugin, no certificate, ...); 4: SIGTERM
 * or SIGINT (signs off and removes its directory first).
 *
 * Environment: PARLEY_SIPE_DEBUG=1 sends libpurple's and sipe's debug output
 * (including every SIP message) to stderr. PARLEY_SIPE_KEEP=1 keeps the
 * temporary libpurple directory and says where it is. PARLEY_SIPE_NO_SAX_FIX=1
 * turns the libxml2 workaround below off (to check whether it is still needed).
 *
 * libxml2 workaround: Debian 12's libxml2 2.9.14+dfsg-1.3~deb12u6 no longer
 * parses a handler marked XML_SAX2_MAGIC with only SAX1 element callbacks the
 * SAX1 way, which is the handler pidgin-sipe's XML wrapper uses; every XML body
 * then parses as empty and the client never reaches Group Chat. This
 * executable exports its own xmlSAXUserParseMemory (linked with a dynamic
 * list, so the plugin binds to it) that hands libxml2 a copy of exactly that
 * kind of handler marked as SAX1 (shared/protocol/sipe-signon.md). */
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib-unix.h>
#include <libxml/parser.h>
#include <purple.h>

#define UI_ID		"parley-sipe-test"
#define PRPL_ID		"prpl-sipe"
#define RETRY_MS	500

/* ---- libxml2 SAX1 workaround ------------------------------------------- */

typedef int sax_parse_fn(xmlSAXHandlerPtr sax, void *user_data, const char *buffer, int size);

int xmlSAXUserParseMemory(xmlSAXHandlerPtr sax, void *user_data, const char *buffer, int size);

int
xmlSAXUserParseMemory(xmlSAXHandlerPtr sax, void *user_data, const char *buffer, int size)
{
	static sax_parse_fn *real;
	static int off = -1;	/* PARLEY_SIPE_NO_SAX_FIX=1: pass everything through */

	if (off < 0) {
		const char *e = getenv("PARLEY_SIPE_NO_SAX_FIX");

		off = e != NULL && *e != '\0' && strcmp(e, "0") != 0;
	}
	if (real == NULL) {
		*(void **)&real = dlsym(RTLD_NEXT, "xmlSAXUserParseMemory");
		if (real == NULL) {
			fprintf(stderr, "sipe_driver: no xmlSAXUserParseMemory after ours: %s\n",
				dlerror());
			abort();
		}
	}
	if (!off && sax != NULL && sax->initialized == XML_SAX2_MAGIC && sax->startElementNs == NULL &&
	    sax->endElementNs == NULL && (sax->startElement != NULL || sax->endElement != NULL)) {
		xmlSAXHandler sax1 = *sax;	/* SAX1 reads only the V1 part */

		sax1.initialized = 0;
		return real(&sax1, user_data, buffer, size);
	}
	return real(sax, user_data, buffer, size);
}

/* ---- state -------------------------------------------------------------- */

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

static struct {
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
} d = {
	.host = "127.0.0.1",
	.user = "alice@example.com",
	.password = "alice-pw",
	.timeout_s = 20,
	.exit_code = 0,
};

static void step_next(void);
static void step_check(void);
static void step_kick(void);
static void finish(int code);

static void
out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* One line: control characters other than space become escapes. */
static char *
oneline(const char *s)
{
	GString *g = g_string_new(NULL);

	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '\n')
			g_string_append(g, "\\n");
		else if (*s == '\r')
			g_string_append(g, "\\r");
		else if ((unsigned char)*s < 0x20)
			g_string_append_printf(g, "\\x%02x", (unsigned char)*s);
		else
			g_string_append_c(g, *s);
	}
	return g_string_free(g, FALSE);
}

/* A chat line as libpurple hands it to a UI to plain text on one line. sipe
 * passes the XCCOS text entity-escaped, with the CRLF of a line break kept
 * raw: entities and <br> are decoded, CRLF becomes \n. */
static char *
plain_text(const char *html)
{
	char *text = purple_unescape_html(html);
	char *r, *w, *s;

	for (r = w = text; *r != '\0'; r++)
		if (!(r[0] == '\r' && r[1] == '\n'))
			*w++ = *r;
	*w = '\0';
	s = oneline(text);
	g_free(text);
	return s;
}

/* ---- GLib event loop for libpurple ------------------------------------- */

#define READ_COND  (G_IO_IN | G_IO_HUP | G_IO_ERR)
#define WRITE_COND (G_IO_OUT | G_IO_HUP | G_IO_ERR | G_IO_NVAL)

struct io_watch {
	PurpleInputFunction fn;
	gpointer data;
};

static gboolean
io_ready(GIOChannel *ch, GIOCondition cond, gpointer data)
{
	struct io_watch *w = data;
	PurpleInputCondition pc = 0;

	if (cond & READ_COND)
		pc |= PURPLE_INPUT_READ;
	if (cond & WRITE_COND)
		pc |= PURPLE_INPUT_WRITE;
	w->fn(w->data, g_io_channel_unix_get_fd(ch), pc);
	return TRUE;
}

static guint
io_add(gint fd, PurpleInputCondition cond, PurpleInputFunction fn, gpointer data)
{
	struct io_watch *w = g_new0(struct io_watch, 1);	/* freed by the source */
	GIOCondition gc = 0;
	GIOChannel *ch;
	guint id;

	w->fn = fn;
	w->data = data;
	if (cond & PURPLE_INPUT_READ)
		gc |= READ_COND;
	if (cond & PURPLE_INPUT_WRITE)
		gc |= WRITE_COND;
	ch = g_io_channel_unix_new(fd);
	id = g_io_add_watch_full(ch, G_PRIORITY_DEFAULT, gc, io_ready, w, g_free);
	g_io_channel_unref(ch);
	return id;
}

static PurpleEventLoopUiOps eventloop_ops = {
	.timeout_add = g_timeout_add,
	.timeout_remove = g_source_remove,
	.input_add = io_add,
	.input_remove = g_source_remove,
	.timeout_add_seconds = g_timeout_add_seconds,
};

/* ---- debug, notify, request -------------------------------------------- */

static void
debug_print(PurpleDebugLevel level, const char *category, const char *msg)
{
	static const char *const names[] = { "all", "misc", "info", "warning", "error", "fatal" };

	fprintf(stderr, "[purple %s] %s: %s\n",
		level < G_N_ELEMENTS(names) ? names[level] : "?", category ? category : "-", msg);
}

static gboolean
debug_enabled(PurpleDebugLevel level, const char *category)
{
	return d.debug;
}

static PurpleDebugUiOps debug_ops = {
	.print = debug_print,
	.is_enabled = debug_enabled,
};

static void *
notify_message(PurpleNotifyMsgType type, const char *title, const char *primary,
	       const char *secondary)
{
	const char *t = type == PURPLE_NOTIFY_MSG_ERROR ? "error" :
			type == PURPLE_NOTIFY_MSG_WARNING ? "warning" : "info";
	char *a = oneline(title), *b = oneline(primary), *c = oneline(secondary);

	out("NOTIFY %s %s | %s | %s", t, a, b, c);
	g_free(a);
	g_free(b);
	g_free(c);
	return NULL;
}

static void *
notify_formatted(const char *title, const char *primary, const char *secondary,
		 const char *text)
{
	return notify_message(PURPLE_NOTIFY_MSG_INFO, title, primary, secondary);
}

static PurpleNotifyUiOps notify_ops = {
	.notify_message = notify_message,
	.notify_formatted = notify_formatted,
};

static void *
request_action(const char *title, const char *primary, const char *secondary,
	       int default_action, PurpleAccount *account, const char *who,
	       PurpleConversation *conv, void *user_data, size_t action_count, va_list actions)
{
	char *a = oneline(title), *b = oneline(primary);

	out("PROMPT %s | %s", a, b);
	g_free(a);
	g_free(b);
	if (!d.accept_prompts) {
		out("ERROR unexpected prompt (the pinned certificate was not used?)");
		finish(1);
		return NULL;
	}
	for (size_t i = 0; i < action_count; i++) {
		const char *label = va_arg(actions, const char *);
		PurpleRequestActionCb cb = va_arg(actions, PurpleRequestActionCb);

		if ((int)i == default_action) {
			out("PROMPT_ANSWER %s", label);
			if (cb != NULL)
				cb(user_data, default_action);
			break;
		}
	}
	return NULL;
}

static PurpleRequestUiOps request_ops = {
	.request_action = request_action,
};

/* ---- room list ----------------------------------------------------------- */

static const char *
room_field(PurpleRoomlist *list, PurpleRoomlistRoom *room, const char *key,
	   PurpleRoomlistFieldType *type)
{
	GList *f = purple_roomlist_get_fields(list);
	GList *v = purple_roomlist_room_get_fields(room);

	for (; f != NULL && v != NULL; f = f->next, v = v->next) {
		PurpleRoomlistField *field = f->data;

		if (strcmp(field->name, key) == 0) {	/* no accessor in libpurple 2 */
			*type = purple_roomlist_field_get_type(field);
			return v->data;
		}
	}
	*type = PURPLE_ROOMLIST_FIELD_STRING;
	return NULL;
}

static void
roomlist_add_room(PurpleRoomlist *list, PurpleRoomlistRoom *room)
{
	PurpleRoomlistFieldType t;
	const char *uri, *desc, *users, *inv, *priv, *logged;
	char *name, *dsc;

	if (list != d.roomlist)
		return;
	d.rooms++;
	uri = room_field(list, room, "uri", &t);
	users = room_field(list, room, "users", &t);
	inv = room_field(list, room, "invite", &t);
	priv = room_field(list, room, "private", &t);
	logged = room_field(list, room, "logged", &t);
	desc = room_field(list, room, "description", &t);
	name = oneline(purple_roomlist_room_get_name(room));
	dsc = oneline(desc);
	out("ROOMLIST name=%s uri=%s users=%u flags=%s%s%s description=%s", name,
	    uri ? uri : "", GPOINTER_TO_UINT(users), inv ? "invite," : "",
	    priv ? "private," : "", logged ? "logged" : "", dsc);
	g_free(name);
	g_free(dsc);
}

static void
roomlist_in_progress(PurpleRoomlist *list, gboolean flag)
{
	if (list != d.roomlist || flag)
		return;
	out("ROOMLIST_DONE n=%u", d.rooms);
	d.roomlist_done = true;
	step_kick();
}

static PurpleRoomlistUiOps roomlist_ops = {
	.add_room = roomlist_add_room,
	.in_progress = roomlist_in_progress,
};

static gboolean
roomlist_try(gpointer unused)
{
	PurpleConnection *gc = purple_account_get_connection(d.account);
	PurpleRoomlist *list;

	d.retry_timer = 0;
	if (gc == NULL)
		return G_SOURCE_REMOVE;
	if (d.roomlist != NULL) {
		purple_roomlist_unref(d.roomlist);
		d.roomlist = NULL;
	}
	d.rooms = 0;
	d.roomlist_done = false;
	/* sipe refuses (NULL) until its Channel dialog is up. */
	list = purple_roomlist_get_list(gc);
	if (list == NULL) {
		d.retry_timer = g_timeout_add(RETRY_MS, roomlist_try, NULL);
		return G_SOURCE_REMOVE;
	}
	purple_roomlist_ref(list);	/* sipe drops its reference when the reply is in */
	d.roomlist = list;
	if (!d.gc_connected) {
		d.gc_connected = true;
		out("GROUPCHAT_CONNECTED");
	}
	/* A reply that came synchronously has already ended the listing. */
	if (!purple_roomlist_get_in_progress(list))
		roomlist_in_progress(list, FALSE);
	return G_SOURCE_REMOVE;
}

static PurpleRoomlistRoom *
roomlist_find(const char *name)
{
	if (d.roomlist == NULL)
		return NULL;
	/* libpurple 2 keeps the rooms in the public struct. */
	for (GList *l = d.roomlist->rooms; l != NULL; l = l->next) {
		PurpleRoomlistRoom *room = l->data;

		if (strcmp(purple_roomlist_room_get_name(room), name) == 0)
			return room;
	}
	return NULL;
}

/* ---- conversations ------------------------------------------------------- */

static void
msgs_clear(void)
{
	if (d.msgs != NULL)
		g_ptr_array_free(d.msgs, TRUE);
	d.msgs = NULL;
}

static void
msg_free(gpointer p)
{
	struct chat_msg *m = p;

	g_free(m->author);
	g_free(m->text);
	g_free(m);
}

static void
on_chat_joined(PurpleConversation *conv, gpointer unused)
{
	const char *name = purple_conversation_get_name(conv);

	out("JOINED %s", name);
	if (d.room_name != NULL && strcmp(name, d.room_name) == 0) {
		d.conv = conv;
		if (d.msgs == NULL)
			d.msgs = g_ptr_array_new_with_free_func(msg_free);
		step_kick();
	}
}

static void
on_chat_msg(PurpleAccount *account, const char *sender, const char *message,
	    PurpleConversation *conv, PurpleMessageFlags flags, gpointer unused)
{
	char *text = plain_text(message);

	out("MSG %s author=%s text=%s", purple_conversation_get_name(conv), sender, text);
	if (conv == d.conv && d.msgs != NULL) {
		struct chat_msg *m = g_new0(struct chat_msg, 1);

		m->author = g_strdup(sender);
		m->text = text;
		g_ptr_array_add(d.msgs, m);
		step_kick();
		return;
	}
	g_free(text);
}

static void
on_buddy_joined(PurpleConversation *conv, const char *name, PurpleConvChatBuddyFlags flags,
		gboolean new_arrival, gpointer unused)
{
	out("USER_JOINED %s %s%s", purple_conversation_get_name(conv), name,
	    new_arrival ? " new" : "");
}

static void
on_buddy_left(PurpleConversation *conv, const char *name, const char *reason, gpointer unused)
{
	out("USER_LEFT %s %s", purple_conversation_get_name(conv), name);
}

static void
on_topic(PurpleConversation *conv, const char *who, const char *topic, gpointer unused)
{
	char *t = oneline(topic);

	out("TOPIC %s %s", purple_conversation_get_name(conv), t);
	g_free(t);
}

/* Chat lines go through the signals above; this sees the rest (errors such as
 * "This message was not delivered to chat room", system lines). */
static void
write_conv(PurpleConversation *conv, const char *name, const char *alias, const char *message,
	   PurpleMessageFlags flags, time_t mtime)
{
	char *text;

	if (!(flags & (PURPLE_MESSAGE_ERROR | PURPLE_MESSAGE_SYSTEM)))
		return;
	text = plain_text(message);
	out("%s %s %s", (flags & PURPLE_MESSAGE_ERROR) ? "CONV_ERROR" : "CONV_SYSTEM",
	    purple_conversation_get_name(conv), text);
	g_free(text);
}

static void
write_chat(PurpleConversation *conv, const char *who, const char *message,
	   PurpleMessageFlags flags, time_t mtime)
{
	/* Seen by on_chat_msg already; error or system lines go to write_conv. */
	if (flags & (PURPLE_MESSAGE_ERROR | PURPLE_MESSAGE_SYSTEM))
		write_conv(conv, who, NULL, message, flags, mtime);
}

static PurpleConversationUiOps conv_ops = {
	.write_chat = write_chat,
	.write_conv = write_conv,
};

/* ---- connection ------------------------------------------------------------ */

static void
on_signed_on(PurpleConnection *gc, gpointer unused)
{
	out("SIGNED_ON %s", purple_account_get_username(purple_connection_get_account(gc)));
	if (d.step_timer != 0) {
		g_source_remove(d.step_timer);
		d.step_timer = 0;
	}
	d.cur = 0;
	d.step_started = false;
	step_kick();
}

static void
on_connection_error(PurpleConnection *gc, PurpleConnectionError err, const char *desc,
		    gpointer unused)
{
	char *t = oneline(desc);

	out("ERROR connection %d: %s", (int)err, t);
	g_free(t);
	d.conn_error = true;
	finish(1);
}

static void
on_signed_off(PurpleConnection *gc, gpointer unused)
{
	if (!d.finishing) {
		out("ERROR signed off unexpectedly");
		finish(1);
	}
}

/* ---- steps ------------------------------------------------------------------- */

static gboolean
step_timeout(gpointer unused)
{
	d.step_timer = 0;
	if (d.cur < d.nsteps) {
		const struct step *s = &d.steps[d.cur];
		char *a1 = oneline(s->arg1), *a2 = oneline(s->arg2);

		out("TIMEOUT %s%s%s%s%s%s", s->name, s->arg1 ? " " : "", a1, s->arg2 ? " " : "", a2,
		    s->kind == ST_ROOMLIST && !d.gc_connected ?
			    " (Group Chat never connected: no provisioning data in the SUBSCRIBE 200,"
			    " no 200 to INVITE ocschat, no rpl:requri, or no 200 to the Channel"
			    " INVITE; PARLEY_SIPE_DEBUG=1 shows the SIP exchange)" : "");
		g_free(a1);
		g_free(a2);
	} else {
		out("TIMEOUT sign-on (REGISTER got no 200; PARLEY_SIPE_DEBUG=1 shows the SIP exchange)");
	}
	finish(3);
	return G_SOURCE_REMOVE;
}

static void
arm_timer(void)
{
	if (d.step_timer != 0)
		g_source_remove(d.step_timer);
	d.step_timer = g_timeout_add_seconds(d.timeout_s, step_timeout, NULL);
}

static void
step_next(void)
{
	d.cur++;
	d.step_started = false;
	if (d.retry_timer != 0) {
		g_source_remove(d.retry_timer);
		d.retry_timer = 0;
	}
	step_check();
}

static gboolean
sleep_done(gpointer unused)
{
	d.retry_timer = 0;
	step_next();
	return G_SOURCE_REMOVE;
}

static char *
send_html(const char *text)
{
	char *esc = g_markup_escape_text(text, -1);
	char **lines = g_strsplit(esc, "\n", -1);
	char *html = g_strjoinv("<br>", lines);

	g_strfreev(lines);
	g_free(esc);
	return html;
}

/* <text> as given on the command line (a real line break or a written \n);
 * received texts are stored in the one-line form printed on MSG lines. */
static bool
have_msg(const char *author, const char *text)
{
	const char *want = strcmp(author, "self") == 0 ? d.self_uri : author;
	char *crlf = oneline(text);
	bool found = false;

	for (guint i = 0; d.msgs != NULL && i < d.msgs->len && !found; i++) {
		const struct chat_msg *m = g_ptr_array_index(d.msgs, i);

		if ((strcmp(want, "any") == 0 || g_ascii_strcasecmp(m->author, want) == 0) &&
		    (strcmp(m->text, text) == 0 || strcmp(m->text, crlf) == 0))
			found = true;
	}
	g_free(crlf);
	return found;
}

static gboolean
kick_cb(gpointer unused)
{
	d.kick = 0;
	step_check();
	return G_SOURCE_REMOVE;
}

/* Steps advance from the main loop, never inside a libpurple or sipe callback:
 * "chat-joined", for one, fires before sipe has finished setting up the
 * conversation, and a "part" step run from there would pull it away. */
static void
step_kick(void)
{
	if (d.kick == 0)
		d.kick = g_idle_add(kick_cb, NULL);
}

/* Starts the current step if needed, and advances while steps are satisfied. */
static void
step_check(void)
{
	PurpleConnection *gc;

	if (d.finishing || d.account == NULL)
		return;
	gc = purple_account_get_connection(d.account);
	if (gc == NULL || purple_connection_get_state(gc) != PURPLE_CONNECTED)
		return;
	while (d.cur < d.nsteps) {
		const struct step *s = &d.steps[d.cur];

		if (!d.step_started) {
			char *a1 = oneline(s->arg1), *a2 = oneline(s->arg2);

			d.step_started = true;
			out("STEP %s%s%s%s%s", s->name, s->arg1 ? " " : "", a1, s->arg2 ? " " : "", a2);
			g_free(a1);
			g_free(a2);
			arm_timer();
			switch (s->kind) {
			case ST_ROOMLIST:
				roomlist_try(NULL);
				break;
			case ST_JOIN: {
				PurpleRoomlistRoom *room = roomlist_find(s->arg1);

				if (room == NULL) {
					out("ERROR join %s: not in the room list (run 'roomlist' first)",
					    s->arg1);
					finish(1);
					return;
				}
				g_free(d.room_name);
				d.room_name = g_strdup(s->arg1);
				d.conv = NULL;
				msgs_clear();
				/* What a UI does with a room picked from the list. */
				purple_roomlist_room_join(d.roomlist, room);
				break;
			}
			case ST_SEND: {
				char *html;

				if (d.conv == NULL) {
					out("ERROR send: no room joined");
					finish(1);
					return;
				}
				/* As a UI hands it over: HTML, line breaks as <br>. */
				html = send_html(s->arg1);
				purple_conv_chat_send(PURPLE_CONV_CHAT(d.conv), html);
				g_free(html);
				html = oneline(s->arg1);
				out("SENT %s text=%s", purple_conversation_get_name(d.conv), html);
				g_free(html);
				step_next();
				return;
			}
			case ST_PART:
				if (d.conv == NULL) {
					out("ERROR part: no room joined");
					finish(1);
					return;
				}
				/* Closing the window: libpurple calls the prpl's chat_leave. */
				purple_conversation_destroy(d.conv);
				d.conv = NULL;
				msgs_clear();
				out("PARTED %s", d.room_name);
				step_next();
				return;
			case ST_SLEEP:
				d.retry_timer = g_timeout_add(strtoul(s->arg1, NULL, 10), sleep_done,
							      NULL);
				return;
			case ST_EXPECT:
			case ST_COUNT:
				if (d.conv == NULL && d.room_name == NULL) {
					out("ERROR %s: no room joined", s->name);
					finish(1);
					return;
				}
				break;
			}
		}
		switch (s->kind) {
		case ST_ROOMLIST:
			if (!d.roomlist_done)
				return;
			break;
		case ST_JOIN:
			if (d.conv == NULL)
				return;
			break;
		case ST_EXPECT:
			if (!have_msg(s->arg1, s->arg2))
				return;
			break;
		case ST_COUNT:
			if (d.msgs == NULL || d.msgs->len < strtoul(s->arg1, NULL, 10))
				return;
			break;
		default:
			return;		/* finished by its own callback */
		}
		d.cur++;
		d.step_started = false;
	}
	if (d.step_timer != 0) {
		g_source_remove(d.step_timer);
		d.step_timer = 0;
	}
	out("DONE");
	finish(0);
}

/* ---- setup and teardown ---------------------------------------------------- */

static gboolean
quit_loop(gpointer unused)
{
	g_main_loop_quit(d.loop);
	return G_SOURCE_REMOVE;
}

static void
finish(int code)
{
	if (d.finishing)
		return;
	d.finishing = true;
	d.exit_code = code;
	if (d.step_timer != 0) {
		g_source_remove(d.step_timer);
		d.step_timer = 0;
	}
	if (d.retry_timer != 0) {
		g_source_remove(d.retry_timer);
		d.retry_timer = 0;
	}
	if (d.kick != 0) {
		g_source_remove(d.kick);
		d.kick = 0;
	}
	/* Sign off the way a user does (sipe sends BYE, unSUBSCRIBE, unREGISTER),
	 * then give the writes a moment before leaving the loop. */
	if (!d.conn_error && d.account != NULL && purple_account_get_connection(d.account) != NULL)
		purple_account_set_enabled(d.account, UI_ID, FALSE);
	g_timeout_add(500, quit_loop, NULL);
}

/* SIGTERM / SIGINT (a test giving up): sign off and clean up as usual. */
static gboolean
on_signal(gpointer unused)
{
	out("ERROR terminated by a signal");
	finish(4);
	return G_SOURCE_CONTINUE;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* Pins the server certificate for <host> in libpurple's tls_peers pool, the
 * same store "Accept" on a certificate prompt writes to. */
static bool
pin_certificate(void)
{
	char *dir = g_build_filename(d.user_dir, "certificates", "x509", "tls_peers", NULL);
	char *dst = g_build_filename(dir, d.host, NULL);
	gchar *pem = NULL;
	gsize len = 0;
	GError *err = NULL;
	bool ok = false;

	if (g_mkdir_with_parents(dir, 0700) != 0) {
		out("ERROR mkdir %s: %s", dir, g_strerror(errno));
		goto out;
	}
	if (!g_file_get_contents(d.cert, &pem, &len, &err) ||
	    !g_file_set_contents(dst, pem, len, &err)) {
		out("ERROR certificate %s: %s", d.cert, err->message);
		g_error_free(err);
		goto out;
	}
	ok = true;
out:
	g_free(pem);
	g_free(dst);
	g_free(dir);
	return ok;
}

static bool
check_protocol_options(PurplePlugin *prpl)
{
	PurplePluginProtocolInfo *info = PURPLE_PLUGIN_PROTOCOL_INFO(prpl);
	static const char *const needed[] = { "server", "transport" };
	GString *all = g_string_new(NULL);
	bool ok = true;

	for (GList *l = info->protocol_options; l != NULL; l = l->next)
		g_string_append_printf(all, "%s%s", all->len ? "," : "",
				       purple_account_option_get_setting(l->data));
	if (d.debug)
		fprintf(stderr, "sipe_driver: %s options: %s\n", PRPL_ID, all->str);
	for (size_t i = 0; i < G_N_ELEMENTS(needed); i++) {
		bool found = false;

		for (GList *l = info->protocol_options; l != NULL; l = l->next)
			if (strcmp(purple_account_option_get_setting(l->data), needed[i]) == 0)
				found = true;
		if (!found) {
			out("ERROR %s has no account option '%s' (options: %s)", PRPL_ID, needed[i],
			    all->str);
			ok = false;
		}
	}
	g_string_free(all, TRUE);
	return ok;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: sipe_driver --port N --cert CERT.pem [--host H] [--user AOR] [--login L]\n"
		"                   [--password PW] [--timeout S] [--accept-prompts] [STEP ...]\n"
		"steps: roomlist | join NAME | expect AUTHOR TEXT | count N | send TEXT | part |\n"
		"       sleep MS\n");
}

static bool
parse_steps(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum step_kind kind;
		int nargs;
	} table[] = {
		{ "roomlist", ST_ROOMLIST, 0 }, { "join", ST_JOIN, 1 },
		{ "expect", ST_EXPECT, 2 },	{ "count", ST_COUNT, 1 },
		{ "send", ST_SEND, 1 },		{ "part", ST_PART, 0 },
		{ "sleep", ST_SLEEP, 1 },
	};

	d.steps = g_new0(struct step, argc + 1);
	for (int i = 0; i < argc;) {
		size_t k;

		for (k = 0; k < G_N_ELEMENTS(table); k++)
			if (strcmp(argv[i], table[k].name) == 0)
				break;
		if (k == G_N_ELEMENTS(table)) {
			fprintf(stderr, "sipe_driver: unknown step '%s'\n", argv[i]);
			return false;
		}
		if (i + table[k].nargs >= argc) {
			fprintf(stderr, "sipe_driver: step '%s' needs %d argument(s)\n", argv[i],
				table[k].nargs);
			return false;
		}
		d.steps[d.nsteps] = (struct step){
			.kind = table[k].kind,
			.name = table[k].name,
			.arg1 = table[k].nargs > 0 ? argv[i + 1] : NULL,
			.arg2 = table[k].nargs > 1 ? argv[i + 2] : NULL,
		};
		d.nsteps++;
		i += 1 + table[k].nargs;
	}
	return true;
}

static bool
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "user", required_argument, NULL, 'u' },
		{ "login", required_argument, NULL, 'l' },
		{ "password", required_argument, NULL, 'w' },
		{ "cert", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "accept-prompts", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'H': d.host = optarg; break;
		case 'p': d.port = strtoul(optarg, NULL, 10); break;
		case 'u': d.user = optarg; break;
		case 'l': d.login = optarg; break;
		case 'w': d.password = optarg; break;
		case 'c': d.cert = optarg; break;
		case 't': d.timeout_s = strtoul(optarg, NULL, 10); break;
		case 'a': d.accept_prompts = true; break;
		default: return false;
		}
	}
	if (d.port == 0 || d.port > 65535 || d.cert == NULL || d.timeout_s == 0 ||
	    strchr(d.user, '@') == NULL)
		return false;
	return parse_steps(argc - optind, argv + optind);
}

int
main(int argc, char **argv)
{
	PurpleSavedStatus *status;
	PurplePlugin *prpl;
	char *username, *server;
	const char *env;
	void *handle;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!parse_args(argc, argv)) {
		usage();
		return 2;
	}
	env = getenv("PARLEY_SIPE_DEBUG");
	d.debug = env != NULL && strcmp(env, "0") != 0 && *env != '\0';
	env = getenv("PARLEY_SIPE_KEEP");
	d.keep = env != NULL && strcmp(env, "0") != 0 && *env != '\0';
	d.self_uri = g_strdup_printf("sip:%s", d.user);

	d.user_dir = g_build_filename(g_get_tmp_dir(), "parley-sipe-XXXXXX", NULL);
	if (g_mkdtemp(d.user_dir) == NULL) {
		fprintf(stderr, "sipe_driver: mkdtemp: %s\n", g_strerror(errno));
		return 2;
	}
	if (!pin_certificate()) {
		d.exit_code = 2;
		goto out_rm;
	}

	d.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_signal, NULL);
	g_unix_signal_add(SIGINT, on_signal, NULL);
	purple_util_set_user_dir(d.user_dir);
	/* Never g_print() debug lines to stdout (our event stream): sipe and
	 * libpurple reach stderr through debug_ops only, and only when asked.
	 * "unsafe" makes sipe log whole SIP messages. */
	purple_debug_set_enabled(FALSE);
	purple_debug_set_ui_ops(&debug_ops);
	if (d.debug) {
		purple_debug_set_verbose(TRUE);
		purple_debug_set_unsafe(TRUE);
	}
	purple_eventloop_set_ui_ops(&eventloop_ops);
	purple_notify_set_ui_ops(&notify_ops);
	purple_request_set_ui_ops(&request_ops);
	purple_roomlist_set_ui_ops(&roomlist_ops);
	purple_conversations_set_ui_ops(&conv_ops);
	if (!purple_core_init(UI_ID)) {
		out("ERROR libpurple core init failed");
		d.exit_code = 2;
		goto out_rm;
	}
	purple_set_blist(purple_blist_new());
	purple_blist_load();
	purple_prefs_set_bool("/purple/logging/log_chats", FALSE);
	purple_prefs_set_bool("/purple/logging/log_ims", FALSE);
	purple_prefs_set_bool("/purple/logging/log_system", FALSE);

	prpl = purple_plugins_find_with_id(PRPL_ID);
	if (prpl == NULL) {
		out("ERROR no %s plugin (install pidgin-sipe)", PRPL_ID);
		d.exit_code = 2;
		goto out_core;
	}
	if (!purple_plugin_is_loaded(prpl) && !purple_plugin_load(prpl)) {
		out("ERROR cannot load %s from %s", PRPL_ID, prpl->path);
		d.exit_code = 2;
		goto out_core;
	}
	if (!check_protocol_options(prpl)) {
		d.exit_code = 2;
		goto out_core;
	}

	handle = purple_connections_get_handle();
	purple_signal_connect(handle, "signed-on", &d, PURPLE_CALLBACK(on_signed_on), NULL);
	purple_signal_connect(handle, "signed-off", &d, PURPLE_CALLBACK(on_signed_off), NULL);
	purple_signal_connect(handle, "connection-error", &d,
			      PURPLE_CALLBACK(on_connection_error), NULL);
	handle = purple_conversations_get_handle();
	purple_signal_connect(handle, "chat-joined", &d, PURPLE_CALLBACK(on_chat_joined), NULL);
	purple_signal_connect(handle, "received-chat-msg", &d, PURPLE_CALLBACK(on_chat_msg), NULL);
	purple_signal_connect(handle, "chat-buddy-joined", &d, PURPLE_CALLBACK(on_buddy_joined),
			      NULL);
	purple_signal_connect(handle, "chat-buddy-left", &d, PURPLE_CALLBACK(on_buddy_left), NULL);
	purple_signal_connect(handle, "chat-topic-changed", &d, PURPLE_CALLBACK(on_topic), NULL);

	/* sipe's account name is "<sign-in address>,<login>". */
	username = g_strdup_printf("%s,%s", d.user, d.login ? d.login : d.user);
	server = g_strdup_printf("%s:%u", d.host, d.port);
	d.account = purple_account_new(username, PRPL_ID);
	purple_account_set_password(d.account, d.password);
	purple_account_set_remember_password(d.account, FALSE);
	purple_account_set_string(d.account, "server", server);
	purple_account_set_string(d.account, "transport", "tls");
	/* "authentication" stays at its default: it picks what sipe answers a
	 * 401 with (NTLM, Kerberos, TLS-DSK); a 407 Proxy-Authenticate Digest,
	 * which parleyd sends, is answered whatever it says. */
	purple_accounts_add(d.account);
	g_free(server);
	g_free(username);

	arm_timer();	/* sign-on deadline; d.cur == d.nsteps is not yet meaningful */
	d.cur = d.nsteps;
	purple_account_set_enabled(d.account, UI_ID, TRUE);
	status = purple_savedstatus_new(NULL, PURPLE_STATUS_AVAILABLE);
	purple_savedstatus_activate(status);

	g_main_loop_run(d.loop);

	if (d.roomlist != NULL)
		purple_roomlist_unref(d.roomlist);
	d.roomlist = NULL;
	msgs_clear();
out_core:
	purple_core_quit();
out_rm:
	if (d.keep)
		fprintf(stderr, "sipe_driver: libpurple directory kept: %s\n", d.user_dir);
	else
		nftw(d.user_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	g_free(d.user_dir);
	g_free(d.self_uri);
	g_free(d.room_name);
	g_free(d.steps);
	return d.exit_code;
}
