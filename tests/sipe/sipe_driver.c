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

#include "tests/sipe/sipe_driver.h"

#define UI_ID		"parley-sipe-test"
#define PRPL_ID		"prpl-sipe"

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

struct drv_state drv = {
	.host = "127.0.0.1",
	.user = "alice@example.com",
	.password = "alice-pw",
	.timeout_s = 20,
	.exit_code = 0,
};

static void step_next(void);
static void step_check(void);

void
drv_out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* One line: control characters other than space become escapes. */
char *
drv_oneline(const char *s)
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
/* ---- steps ------------------------------------------------------------------- */

static gboolean
step_timeout(gpointer unused)
{
	drv.step_timer = 0;
	if (drv.cur < drv.nsteps) {
		const struct step *s = &drv.steps[drv.cur];
		char *a1 = drv_oneline(s->arg1), *a2 = drv_oneline(s->arg2);

		drv_out("TIMEOUT %s%s%s%s%s%s", s->name, s->arg1 ? " " : "", a1,
		    s->arg2 ? " " : "", a2,
		    s->kind == ST_ROOMLIST && !drv.gc_connected ?
			    " (Group Chat never connected: no provisioning data in the SUBSCRIBE 200,"
			    " no 200 to INVITE ocschat, no rpl:requri, or no 200 to the Channel"
			    " INVITE; PARLEY_SIPE_DEBUG=1 shows the SIP exchange)" : "");
		g_free(a1);
		g_free(a2);
	} else {
		drv_out("TIMEOUT sign-on (REGISTER got no 200; PARLEY_SIPE_DEBUG=1 shows the SIP "
		    "exchange)");
	}
	drv_finish(3);
	return G_SOURCE_REMOVE;
}

static void
arm_timer(void)
{
	if (drv.step_timer != 0)
		g_source_remove(drv.step_timer);
	drv.step_timer = g_timeout_add_seconds(drv.timeout_s, step_timeout, NULL);
}

static void
step_next(void)
{
	drv.cur++;
	drv.step_started = false;
	if (drv.retry_timer != 0) {
		g_source_remove(drv.retry_timer);
		drv.retry_timer = 0;
	}
	step_check();
}

static gboolean
sleep_done(gpointer unused)
{
	drv.retry_timer = 0;
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
	const char *want = strcmp(author, "self") == 0 ? drv.self_uri : author;
	char *crlf = drv_oneline(text);
	bool found = false;

	for (guint i = 0; drv.msgs != NULL && i < drv.msgs->len && !found; i++) {
		const struct chat_msg *m = g_ptr_array_index(drv.msgs, i);

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
	drv.kick = 0;
	step_check();
	return G_SOURCE_REMOVE;
}

/* Steps advance from the main loop, never inside a libpurple or sipe callback:
 * "chat-joined", for one, fires before sipe has finished setting up the
 * conversation, and a "part" step run from there would pull it away. */
void
drv_step_kick(void)
{
	if (drv.kick == 0)
		drv.kick = g_idle_add(kick_cb, NULL);
}

/* Starts the current step if needed, and advances while steps are satisfied. */
static void
step_check(void)
{
	PurpleConnection *gc;

	if (drv.finishing || drv.account == NULL)
		return;
	gc = purple_account_get_connection(drv.account);
	if (gc == NULL || purple_connection_get_state(gc) != PURPLE_CONNECTED)
		return;
	while (drv.cur < drv.nsteps) {
		const struct step *s = &drv.steps[drv.cur];

		if (!drv.step_started) {
			char *a1 = drv_oneline(s->arg1), *a2 = drv_oneline(s->arg2);

			drv.step_started = true;
			drv_out("STEP %s%s%s%s%s", s->name, s->arg1 ? " " : "", a1,
			    s->arg2 ? " " : "", a2);
			g_free(a1);
			g_free(a2);
			arm_timer();
			switch (s->kind) {
			case ST_ROOMLIST:
				drv_roomlist_try(NULL);
				break;
			case ST_JOIN: {
				PurpleRoomlistRoom *room = drv_roomlist_find(s->arg1);

				if (room == NULL) {
					drv_out("ERROR join %s: not in the room list (run "
					    "'roomlist' first)", s->arg1);
					drv_finish(1);
					return;
				}
				g_free(drv.room_name);
				drv.room_name = g_strdup(s->arg1);
				drv.conv = NULL;
				drv_msgs_clear();
				/* What a UI does with a room picked from the list. */
				purple_roomlist_room_join(drv.roomlist, room);
				break;
			}
			case ST_SEND: {
				char *html;

				if (drv.conv == NULL) {
					drv_out("ERROR send: no room joined");
					drv_finish(1);
					return;
				}
				/* As a UI hands it over: HTML, line breaks as <br>. */
				html = send_html(s->arg1);
				purple_conv_chat_send(PURPLE_CONV_CHAT(drv.conv), html);
				g_free(html);
				html = drv_oneline(s->arg1);
				drv_out("SENT %s text=%s", purple_conversation_get_name(drv.conv),
				    html);
				g_free(html);
				step_next();
				return;
			}
			case ST_PART:
				if (drv.conv == NULL) {
					drv_out("ERROR part: no room joined");
					drv_finish(1);
					return;
				}
				/* Closing the window: libpurple calls the prpl's chat_leave. */
				purple_conversation_destroy(drv.conv);
				drv.conv = NULL;
				drv_msgs_clear();
				drv_out("PARTED %s", drv.room_name);
				step_next();
				return;
			case ST_SLEEP:
				drv.retry_timer = g_timeout_add(strtoul(s->arg1, NULL, 10),
								sleep_done, NULL);
				return;
			case ST_EXPECT:
			case ST_COUNT:
				if (drv.conv == NULL && drv.room_name == NULL) {
					drv_out("ERROR %s: no room joined", s->name);
					drv_finish(1);
					return;
				}
				break;
			}
		}
		switch (s->kind) {
		case ST_ROOMLIST:
			if (!drv.roomlist_done)
				return;
			break;
		case ST_JOIN:
			if (drv.conv == NULL)
				return;
			break;
		case ST_EXPECT:
			if (!have_msg(s->arg1, s->arg2))
				return;
			break;
		case ST_COUNT:
			if (drv.msgs == NULL || drv.msgs->len < strtoul(s->arg1, NULL, 10))
				return;
			break;
		default:
			return;		/* finished by its own callback */
		}
		drv.cur++;
		drv.step_started = false;
	}
	if (drv.step_timer != 0) {
		g_source_remove(drv.step_timer);
		drv.step_timer = 0;
	}
	drv_out("DONE");
	drv_finish(0);
}

/* ---- setup and teardown ---------------------------------------------------- */

static gboolean
quit_loop(gpointer unused)
{
	g_main_loop_quit(drv.loop);
	return G_SOURCE_REMOVE;
}

void
drv_finish(int code)
{
	if (drv.finishing)
		return;
	drv.finishing = true;
	drv.exit_code = code;
	if (drv.step_timer != 0) {
		g_source_remove(drv.step_timer);
		drv.step_timer = 0;
	}
	if (drv.retry_timer != 0) {
		g_source_remove(drv.retry_timer);
		drv.retry_timer = 0;
	}
	if (drv.kick != 0) {
		g_source_remove(drv.kick);
		drv.kick = 0;
	}
	/* Sign off the way a user does (sipe sends BYE, unSUBSCRIBE, unREGISTER),
	 * then give the writes a moment before leaving the loop. */
	if (!drv.conn_error && drv.account != NULL &&
	    purple_account_get_connection(drv.account) != NULL)
		purple_account_set_enabled(drv.account, UI_ID, FALSE);
	g_timeout_add(500, quit_loop, NULL);
}

/* SIGTERM / SIGINT (a test giving up): sign off and clean up as usual. */
static gboolean
on_signal(gpointer unused)
{
	drv_out("ERROR terminated by a signal");
	drv_finish(4);
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
	char *dir = g_build_filename(drv.user_dir, "certificates", "x509", "tls_peers", NULL);
	char *dst = g_build_filename(dir, drv.host, NULL);
	gchar *pem = NULL;
	gsize len = 0;
	GError *err = NULL;
	bool ok = false;

	if (g_mkdir_with_parents(dir, 0700) != 0) {
		drv_out("ERROR mkdir %s: %s", dir, g_strerror(errno));
		goto out;
	}
	if (!g_file_get_contents(drv.cert, &pem, &len, &err) ||
	    !g_file_set_contents(dst, pem, len, &err)) {
		drv_out("ERROR certificate %s: %s", drv.cert, err->message);
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
	if (drv.debug)
		fprintf(stderr, "sipe_driver: %s options: %s\n", PRPL_ID, all->str);
	for (size_t i = 0; i < G_N_ELEMENTS(needed); i++) {
		bool found = false;

		for (GList *l = info->protocol_options; l != NULL; l = l->next)
			if (strcmp(purple_account_option_get_setting(l->data), needed[i]) == 0)
				found = true;
		if (!found) {
			drv_out("ERROR %s has no account option '%s' (options: %s)", PRPL_ID,
			    needed[i], all->str);
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

	drv.steps = g_new0(struct step, argc + 1);
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
		drv.steps[drv.nsteps] = (struct step){
			.kind = table[k].kind,
			.name = table[k].name,
			.arg1 = table[k].nargs > 0 ? argv[i + 1] : NULL,
			.arg2 = table[k].nargs > 1 ? argv[i + 2] : NULL,
		};
		drv.nsteps++;
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
		case 'H': drv.host = optarg; break;
		case 'p': drv.port = strtoul(optarg, NULL, 10); break;
		case 'u': drv.user = optarg; break;
		case 'l': drv.login = optarg; break;
		case 'w': drv.password = optarg; break;
		case 'c': drv.cert = optarg; break;
		case 't': drv.timeout_s = strtoul(optarg, NULL, 10); break;
		case 'a': drv.accept_prompts = true; break;
		default: return false;
		}
	}
	if (drv.port == 0 || drv.port > 65535 || drv.cert == NULL || drv.timeout_s == 0 ||
	    strchr(drv.user, '@') == NULL)
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

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!parse_args(argc, argv)) {
		usage();
		return 2;
	}
	env = getenv("PARLEY_SIPE_DEBUG");
	drv.debug = env != NULL && strcmp(env, "0") != 0 && *env != '\0';
	env = getenv("PARLEY_SIPE_KEEP");
	drv.keep = env != NULL && strcmp(env, "0") != 0 && *env != '\0';
	drv.self_uri = g_strdup_printf("sip:%s", drv.user);

	drv.user_dir = g_build_filename(g_get_tmp_dir(), "parley-sipe-XXXXXX", NULL);
	if (g_mkdtemp(drv.user_dir) == NULL) {
		fprintf(stderr, "sipe_driver: mkdtemp: %s\n", g_strerror(errno));
		return 2;
	}
	if (!pin_certificate()) {
		drv.exit_code = 2;
		goto out_rm;
	}

	drv.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_signal, NULL);
	g_unix_signal_add(SIGINT, on_signal, NULL);
	purple_util_set_user_dir(drv.user_dir);
	drv_ui_set_ops();
	if (!purple_core_init(UI_ID)) {
		drv_out("ERROR libpurple core init failed");
		drv.exit_code = 2;
		goto out_rm;
	}
	purple_set_blist(purple_blist_new());
	purple_blist_load();
	purple_prefs_set_bool("/purple/logging/log_chats", FALSE);
	purple_prefs_set_bool("/purple/logging/log_ims", FALSE);
	purple_prefs_set_bool("/purple/logging/log_system", FALSE);

	prpl = purple_plugins_find_with_id(PRPL_ID);
	if (prpl == NULL) {
		drv_out("ERROR no %s plugin (install pidgin-sipe)", PRPL_ID);
		drv.exit_code = 2;
		goto out_core;
	}
	if (!purple_plugin_is_loaded(prpl) && !purple_plugin_load(prpl)) {
		drv_out("ERROR cannot load %s from %s", PRPL_ID, prpl->path);
		drv.exit_code = 2;
		goto out_core;
	}
	if (!check_protocol_options(prpl)) {
		drv.exit_code = 2;
		goto out_core;
	}

	drv_ui_connect();

	/* sipe's account name is "<sign-in address>,<login>". */
	username = g_strdup_printf("%s,%s", drv.user, drv.login ? drv.login : drv.user);
	server = g_strdup_printf("%s:%u", drv.host, drv.port);
	drv.account = purple_account_new(username, PRPL_ID);
	purple_account_set_password(drv.account, drv.password);
	purple_account_set_remember_password(drv.account, FALSE);
	purple_account_set_string(drv.account, "server", server);
	purple_account_set_string(drv.account, "transport", "tls");
	/* "authentication" stays at its default: it picks what sipe answers a
	 * 401 with (NTLM, Kerberos, TLS-DSK); a 407 Proxy-Authenticate Digest,
	 * which parleyd sends, is answered whatever it says. */
	purple_accounts_add(drv.account);
	g_free(server);
	g_free(username);

	arm_timer();	/* sign-on deadline; drv.cur == drv.nsteps is not yet meaningful */
	drv.cur = drv.nsteps;
	purple_account_set_enabled(drv.account, UI_ID, TRUE);
	status = purple_savedstatus_new(NULL, PURPLE_STATUS_AVAILABLE);
	purple_savedstatus_activate(status);

	g_main_loop_run(drv.loop);

	if (drv.roomlist != NULL)
		purple_roomlist_unref(drv.roomlist);
	drv.roomlist = NULL;
	drv_msgs_clear();
out_core:
	purple_core_quit();
out_rm:
	if (drv.keep)
		fprintf(stderr, "sipe_driver: libpurple directory kept: %s\n", drv.user_dir);
	else
		nftw(drv.user_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	g_free(drv.user_dir);
	g_free(drv.self_uri);
	g_free(drv.room_name);
	g_free(drv.steps);
	return drv.exit_code;
}
