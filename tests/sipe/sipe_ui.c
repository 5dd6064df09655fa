/* sipe_driver's libpurple UI side: the GLib event loop libpurple runs on,
 * its debug, notify and request ops, the room list, the conversations of
 * the joined room and the connection's signals, each turned into the event
 * lines sipe_driver.c documents (drv_out). See sipe_driver.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <purple.h>

#include "tests/sipe/sipe_driver.h"

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
	s = drv_oneline(text);
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
	return drv.debug;
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
	char *a = drv_oneline(title), *b = drv_oneline(primary), *c = drv_oneline(secondary);

	drv_out("NOTIFY %s %s | %s | %s", t, a, b, c);
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
	char *a = drv_oneline(title), *b = drv_oneline(primary);

	drv_out("PROMPT %s | %s", a, b);
	g_free(a);
	g_free(b);
	if (!drv.accept_prompts) {
		drv_out("ERROR unexpected prompt (the pinned certificate was not used?)");
		drv_finish(1);
		return NULL;
	}
	for (size_t i = 0; i < action_count; i++) {
		const char *label = va_arg(actions, const char *);
		PurpleRequestActionCb cb = va_arg(actions, PurpleRequestActionCb);

		if ((int)i == default_action) {
			drv_out("PROMPT_ANSWER %s", label);
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

	if (list != drv.roomlist)
		return;
	drv.rooms++;
	uri = room_field(list, room, "uri", &t);
	users = room_field(list, room, "users", &t);
	inv = room_field(list, room, "invite", &t);
	priv = room_field(list, room, "private", &t);
	logged = room_field(list, room, "logged", &t);
	desc = room_field(list, room, "description", &t);
	name = drv_oneline(purple_roomlist_room_get_name(room));
	dsc = drv_oneline(desc);
	drv_out("ROOMLIST name=%s uri=%s users=%u flags=%s%s%s description=%s", name,
	    uri ? uri : "", GPOINTER_TO_UINT(users), inv ? "invite," : "",
	    priv ? "private," : "", logged ? "logged" : "", dsc);
	g_free(name);
	g_free(dsc);
}

static void
roomlist_in_progress(PurpleRoomlist *list, gboolean flag)
{
	if (list != drv.roomlist || flag)
		return;
	drv_out("ROOMLIST_DONE n=%u", drv.rooms);
	drv.roomlist_done = true;
	drv_step_kick();
}

static PurpleRoomlistUiOps roomlist_ops = {
	.add_room = roomlist_add_room,
	.in_progress = roomlist_in_progress,
};

gboolean
drv_roomlist_try(gpointer unused)
{
	PurpleConnection *gc = purple_account_get_connection(drv.account);
	PurpleRoomlist *list;

	drv.retry_timer = 0;
	if (gc == NULL)
		return G_SOURCE_REMOVE;
	if (drv.roomlist != NULL) {
		purple_roomlist_unref(drv.roomlist);
		drv.roomlist = NULL;
	}
	drv.rooms = 0;
	drv.roomlist_done = false;
	/* sipe refuses (NULL) until its Channel dialog is up. */
	list = purple_roomlist_get_list(gc);
	if (list == NULL) {
		drv.retry_timer = g_timeout_add(RETRY_MS, drv_roomlist_try, NULL);
		return G_SOURCE_REMOVE;
	}
	purple_roomlist_ref(list);	/* sipe drops its reference when the reply is in */
	drv.roomlist = list;
	if (!drv.gc_connected) {
		drv.gc_connected = true;
		drv_out("GROUPCHAT_CONNECTED");
	}
	/* A reply that came synchronously has already ended the listing. */
	if (!purple_roomlist_get_in_progress(list))
		roomlist_in_progress(list, FALSE);
	return G_SOURCE_REMOVE;
}

PurpleRoomlistRoom *
drv_roomlist_find(const char *name)
{
	if (drv.roomlist == NULL)
		return NULL;
	/* libpurple 2 keeps the rooms in the public struct. */
	for (GList *l = drv.roomlist->rooms; l != NULL; l = l->next) {
		PurpleRoomlistRoom *room = l->data;

		if (strcmp(purple_roomlist_room_get_name(room), name) == 0)
			return room;
	}
	return NULL;
}

/* ---- conversations ------------------------------------------------------- */

void
drv_msgs_clear(void)
{
	if (drv.msgs != NULL)
		g_ptr_array_free(drv.msgs, TRUE);
	drv.msgs = NULL;
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

	drv_out("JOINED %s", name);
	if (drv.room_name != NULL && strcmp(name, drv.room_name) == 0) {
		drv.conv = conv;
		if (drv.msgs == NULL)
			drv.msgs = g_ptr_array_new_with_free_func(msg_free);
		drv_step_kick();
	}
}

static void
on_chat_msg(PurpleAccount *account, const char *sender, const char *message,
	    PurpleConversation *conv, PurpleMessageFlags flags, gpointer unused)
{
	char *text = plain_text(message);

	drv_out("MSG %s author=%s text=%s", purple_conversation_get_name(conv), sender, text);
	if (conv == drv.conv && drv.msgs != NULL) {
		struct chat_msg *m = g_new0(struct chat_msg, 1);

		m->author = g_strdup(sender);
		m->text = text;
		g_ptr_array_add(drv.msgs, m);
		drv_step_kick();
		return;
	}
	g_free(text);
}

static void
on_buddy_joined(PurpleConversation *conv, const char *name, PurpleConvChatBuddyFlags flags,
		gboolean new_arrival, gpointer unused)
{
	drv_out("USER_JOINED %s %s%s", purple_conversation_get_name(conv), name,
	    new_arrival ? " new" : "");
}

static void
on_buddy_left(PurpleConversation *conv, const char *name, const char *reason, gpointer unused)
{
	drv_out("USER_LEFT %s %s", purple_conversation_get_name(conv), name);
}

static void
on_topic(PurpleConversation *conv, const char *who, const char *topic, gpointer unused)
{
	char *t = drv_oneline(topic);

	drv_out("TOPIC %s %s", purple_conversation_get_name(conv), t);
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
	drv_out("%s %s %s", (flags & PURPLE_MESSAGE_ERROR) ? "CONV_ERROR" : "CONV_SYSTEM",
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
	drv_out("SIGNED_ON %s", purple_account_get_username(purple_connection_get_account(gc)));
	if (drv.step_timer != 0) {
		g_source_remove(drv.step_timer);
		drv.step_timer = 0;
	}
	drv.cur = 0;
	drv.step_started = false;
	drv_step_kick();
}

static void
on_connection_error(PurpleConnection *gc, PurpleConnectionError err, const char *desc,
		    gpointer unused)
{
	char *t = drv_oneline(desc);

	drv_out("ERROR connection %d: %s", (int)err, t);
	g_free(t);
	drv.conn_error = true;
	drv_finish(1);
}

static void
on_signed_off(PurpleConnection *gc, gpointer unused)
{
	if (!drv.finishing) {
		drv_out("ERROR signed off unexpectedly");
		drv_finish(1);
	}
}

/* ---- setting it up ------------------------------------------------------- */

void
drv_ui_set_ops(void)
{
	/* Never g_print() debug lines to stdout (our event stream): sipe and
	 * libpurple reach stderr through debug_ops only, and only when asked.
	 * "unsafe" makes sipe log whole SIP messages. */
	purple_debug_set_enabled(FALSE);
	purple_debug_set_ui_ops(&debug_ops);
	if (drv.debug) {
		purple_debug_set_verbose(TRUE);
		purple_debug_set_unsafe(TRUE);
	}
	purple_eventloop_set_ui_ops(&eventloop_ops);
	purple_notify_set_ui_ops(&notify_ops);
	purple_request_set_ui_ops(&request_ops);
	purple_roomlist_set_ui_ops(&roomlist_ops);
	purple_conversations_set_ui_ops(&conv_ops);
}

void
drv_ui_connect(void)
{
	void *handle;

	handle = purple_connections_get_handle();
	purple_signal_connect(handle, "signed-on", &drv, PURPLE_CALLBACK(on_signed_on), NULL);
	purple_signal_connect(handle, "signed-off", &drv, PURPLE_CALLBACK(on_signed_off), NULL);
	purple_signal_connect(handle, "connection-error", &drv,
			      PURPLE_CALLBACK(on_connection_error), NULL);
	handle = purple_conversations_get_handle();
	purple_signal_connect(handle, "chat-joined", &drv, PURPLE_CALLBACK(on_chat_joined), NULL);
	purple_signal_connect(handle, "received-chat-msg", &drv, PURPLE_CALLBACK(on_chat_msg),
			      NULL);
	purple_signal_connect(handle, "chat-buddy-joined", &drv, PURPLE_CALLBACK(on_buddy_joined),
			      NULL);
	purple_signal_connect(handle, "chat-buddy-left", &drv, PURPLE_CALLBACK(on_buddy_left),
			      NULL);
	purple_signal_connect(handle, "chat-topic-changed", &drv, PURPLE_CALLBACK(on_topic), NULL);
}
