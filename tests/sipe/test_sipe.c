/* A real Group Chat client against a real parleyd: pidgin-sipe (through
 * sipe_driver, libpurple without UI) signs in as alice@example.com, lists the
 * rooms, joins Lobby, reads its history, posts and sees its post come back,
 * and receives a post from bob@example.com, who speaks XCCOS through the test
 * client library (perf/gcclient.h, on perf/client.h) from this process.
 *
 * The driver prints one event per line (see sipe_driver.c); this file reads
 * them and echoes them to stderr as "alice| ..." so that a failing run shows
 * the whole transcript. PARLEY_SIPE_DEBUG=1 adds sipe's own debug output
 * (every SIP message it sends and receives) to stderr. On failure the tail of
 * parleyd's log (-v) is printed too. The tests run one at a time (--jobs=1 in
 * meson.build) so that the transcripts do not interleave.
 *
 * Noise to ignore: "GLib-CRITICAL **: g_hash_table_destroy: assertion
 * 'hash_table != NULL' failed" at every sign-off comes from pidgin-sipe 1.25
 * itself (sipe_core_deallocate frees tables that only exist after presence
 * publication, which parleyd does not offer). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "dataplane/base/clock.h"
#include "perf/gcclient.h"
#include "tests/integration/harness.h"

#define LINE_WAIT_MS	30000	/* per expected driver line; the driver's own step limit is 20 s */
#define INFO_WAIT_MS	10000	/* per expected XCCOS reply to bob */

static struct server srv;
static bool passed;

/* ---- the pidgin-sipe driver as a child process --------------------------- */

struct driver {
	pid_t pid;
	int fd;			/* its stdout */
	char buf[16384];
	size_t len;
	char **lines;		/* transcript */
	size_t nlines;
};

static struct driver drv = { .pid = -1, .fd = -1 };

/* Starts the driver as <user> with the steps in <steps> (NULL-terminated). */
static void
driver_start(const char *user, const char *pw, const char *const *steps)
{
	char port[16], cert[400];
	const char *argv[64];
	int n = 0, p[2];

	snprintf(port, sizeof(port), "%u", srv.port);
	snprintf(cert, sizeof(cert), "%s/tls/cert.pem", srv.dir);
	cr_assert(access(cert, R_OK) == 0, "parleyd did not write its certificate to %s", cert);
	cr_assert(access(sipe_driver_path(), X_OK) == 0, "no driver at %s", sipe_driver_path());
	argv[n++] = "sipe_driver";
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--cert";
	argv[n++] = cert;
	argv[n++] = "--user";
	argv[n++] = user;
	argv[n++] = "--password";
	argv[n++] = pw;
	argv[n++] = "--timeout";
	argv[n++] = "20";
	for (int i = 0; steps[i] != NULL && n < 63; i++)
		argv[n++] = steps[i];
	argv[n] = NULL;

	cr_assert(pipe(p) == 0);
	drv.pid = fork();
	cr_assert(drv.pid >= 0);
	if (drv.pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		char *av[64];

		memcpy(av, argv, sizeof(av));	/* execv's prototype is not const-correct */
		execv(sipe_driver_path(), av);
		fprintf(stderr, "exec %s: %s\n", sipe_driver_path(), strerror(errno));
		_exit(127);
	}
	close(p[1]);
	drv.fd = p[0];
	drv.len = 0;
	fcntl(drv.fd, F_SETFL, fcntl(drv.fd, F_GETFL) | O_NONBLOCK);
}

static void
driver_kill(void)
{
	if (drv.pid > 0) {
		kill(drv.pid, SIGTERM);
		for (int i = 0; i < 30 && waitpid(drv.pid, NULL, WNOHANG) == 0; i++)
			usleep(100000);
		kill(drv.pid, SIGKILL);
		waitpid(drv.pid, NULL, 0);
		drv.pid = -1;
	}
	if (drv.fd >= 0)
		close(drv.fd);
	drv.fd = -1;
	for (size_t i = 0; i < drv.nlines; i++)
		free(drv.lines[i]);
	free(drv.lines);
	drv.lines = NULL;
	drv.nlines = 0;
}

/* Next line of the driver's output into <out>. false on timeout or EOF. */
static bool
driver_line(char *out, size_t cap, int timeout_ms)
{
	uint64_t t0 = clock_mono_ms();

	for (;;) {
		char *nl = memchr(drv.buf, '\n', drv.len);
		struct pollfd pfd = { .fd = drv.fd, .events = POLLIN };
		int left;
		ssize_t r;

		if (nl != NULL) {
			size_t l = nl - drv.buf;

			snprintf(out, cap, "%.*s", (int)l, drv.buf);
			memmove(drv.buf, nl + 1, drv.len - l - 1);
			drv.len -= l + 1;
			fprintf(stderr, "alice| %s\n", out);
			drv.lines = realloc(drv.lines, (drv.nlines + 1) * sizeof(*drv.lines));
			drv.lines[drv.nlines++] = strdup(out);
			return true;
		}
		left = timeout_ms - (int)(clock_mono_ms() - t0);
		if (left <= 0 || drv.len == sizeof(drv.buf))
			return false;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		r = read(drv.fd, drv.buf + drv.len, sizeof(drv.buf) - drv.len);
		if (r == 0)
			return false;
		if (r > 0)
			drv.len += r;
	}
}

static bool
is_fatal(const char *line)
{
	return strncmp(line, "ERROR", 5) == 0 || strncmp(line, "TIMEOUT", 7) == 0 ||
	       strncmp(line, "CONV_ERROR", 10) == 0 || strncmp(line, "NOTIFY error", 12) == 0;
}

/* Reads driver lines until one equals <want> (or starts with it when <prefix>).
 * A fatal line, EOF or the time limit fails the test, naming <why>. */
static void
driver_expect(const char *want, bool prefix, const char *why)
{
	char line[4096];

	for (;;) {
		if (!driver_line(line, sizeof(line), LINE_WAIT_MS))
			cr_assert_fail("%s: pidgin-sipe never printed \"%s\" (driver ended or "
				       "stayed silent for %d s)", why, want, LINE_WAIT_MS / 1000);
		if (prefix ? strncmp(line, want, strlen(want)) == 0 : strcmp(line, want) == 0)
			return;
		if (is_fatal(line))
			cr_assert_fail("%s: pidgin-sipe reported \"%s\" while waiting for \"%s\"",
				       why, line, want);
	}
}

static bool
transcript_has(const char *line)
{
	for (size_t i = 0; i < drv.nlines; i++)
		if (strcmp(drv.lines[i], line) == 0)
			return true;
	return false;
}

/* Waits for the driver to exit; returns its exit status (or -1). */
static int
driver_exit(int timeout_ms)
{
	char line[4096];
	int st;

	while (driver_line(line, sizeof(line), timeout_ms))
		;
	for (int i = 0; i < timeout_ms / 100; i++) {
		if (waitpid(drv.pid, &st, WNOHANG) == drv.pid) {
			drv.pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		usleep(100000);
	}
	return -1;
}

/* ---- bob: perf/gcclient.h --------------------------------------------------- */

static struct gc *bob;

static struct gc *
bob_open(void)
{
	char err[256];
	struct gc *g = gc_open("127.0.0.1", srv.port, "bob@example.com", "bob-pw", err,
			       sizeof(err));

	cr_assert(g != NULL, "bob: sign-in, Lookup or Channel dialog failed: %s", err);
	return g;
}

/* chansrch: the uri of room <name>. */
static void
bob_room_uri(const char *name, char *uri, size_t cap)
{
	char *b;

	cr_assert_eq(gc_cmd(bob, "chansrch",
			    "<qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/>"), 200,
		     "bob: INFO cmd:chansrch not answered 200");
	b = gc_wait(bob, INFO_WAIT_MS, "rpl:chansrch", NULL);
	cr_assert(b != NULL, "bob: no rpl:chansrch");
	cr_assert(gc_room_uri(b, name, uri, cap), "bob: room %s not in rpl:chansrch: %s", name, b);
	free(b);
	cr_assert(strncmp(uri, "ma-chan://", 10) == 0, "room URI %s", uri);
}

static void
bob_join(const char *uri)
{
	char *b = gc_join(bob, uri, INFO_WAIT_MS);

	cr_assert(b != NULL, "bob: no rpl:join for %s", uri);
	cr_assert(strstr(b, "<resp code=\"200\"") != NULL && strstr(b, uri) != NULL,
		  "bob: join %s failed: %s", uri, b);
	free(b);
}

static void
bob_post(const char *uri, const char *text)
{
	cr_assert_eq(gc_post(bob, uri, text, NULL), 200, "bob: INFO grpchat not answered 200");
}

/* Waits for the fan-out of a post by <author> (a sip: URI) with <text>. */
static void
bob_expect_post(const char *uri, const char *author, const char *text)
{
	char chan[300], who[200], chat[600];
	char *b;

	snprintf(chan, sizeof(chan), "chanUri=\"%s\"", uri);
	snprintf(who, sizeof(who), "author=\"%s\"", author);
	snprintf(chat, sizeof(chat), ">%s</chat>", text);
	b = gc_wait(bob, INFO_WAIT_MS, "<grpchat", chan, who, chat, NULL);
	cr_assert(b != NULL, "bob: no grpchat from %s with \"%s\" in %s", author, text, uri);
	free(b);
}

/* ---- fixtures ----------------------------------------------------------------- */

static void
up(void)
{
	passed = false;
	server_start(&srv, NULL);
}

static void
down(void)
{
	driver_kill();
	gc_close(bob);
	bob = NULL;
	if (!passed)
		run("echo '--- parleyd log (tail) ---' >&2; tail -n 150 %s >&2", srv.log);
	cr_expect_eq(server_stop(&srv), 0, "parleyd exits 0 after SIGTERM");
}

TestSuite(sipe, .init = up, .fini = down, .timeout = 150);

/* Sign-in only: TLS with the pinned certificate, REGISTER with 407 Digest,
 * the provisioning SUBSCRIBE; then a clean sign-off. */
Test(sipe, signon)
{
	static const char *const steps[] = { NULL };

	driver_start("alice@example.com", "alice-pw", steps);
	driver_expect("SIGNED_ON alice@example.com,alice@example.com", false, "sign-on");
	driver_expect("DONE", false, "sign-on");
	cr_assert_eq(driver_exit(10000), 0, "driver exit status");
	cr_assert(server_alive(&srv), "parleyd still running after the client signed off");
	passed = true;
}

/* A wrong password: the client must get the 403 and give up, not hang. */
Test(sipe, wrong_password)
{
	static const char *const steps[] = { NULL };
	char line[4096], last[4096] = "(nothing)";
	bool error = false;

	driver_start("alice@example.com", "not-alices-pw", steps);
	while (driver_line(line, sizeof(line), LINE_WAIT_MS)) {
		cr_assert(strncmp(line, "SIGNED_ON", 9) != 0, "signed on with a wrong password");
		if (strncmp(line, "ERROR connection", 16) == 0)
			error = true;
		snprintf(last, sizeof(last), "%s", line);
	}
	cr_assert(error, "pidgin-sipe got no authentication error (a 403) for a wrong password; "
		  "its last word: %s", last);
	cr_assert_eq(driver_exit(10000), 1, "driver exit status");
	passed = true;
}

/* Lookup → Channel → chansrch: the room list a user sees in Pidgin. */
Test(sipe, roomlist)
{
	static const char *const steps[] = { "roomlist", NULL };

	driver_start("alice@example.com", "alice-pw", steps);
	driver_expect("SIGNED_ON ", true, "sign-on");
	driver_expect("GROUPCHAT_CONNECTED", false,
		      "Group Chat (INVITE ocschat, cmd:requri, INVITE channel)");
	driver_expect("ROOMLIST name=Lobby uri=ma-chan://example.com/", true, "room list");
	driver_expect("ROOMLIST_DONE", true, "room list");
	driver_expect("DONE", false, "room list");
	cr_assert_eq(driver_exit(10000), 0, "driver exit status");
	passed = true;
}

/* The whole Group Chat round: history, own post echoed, a post from bob. */
Test(sipe, groupchat)
{
	char lobby[256], seed[64], hello[64], live[64], line[600];
	unsigned nonce = (unsigned)getpid() ^ (unsigned)time(NULL);
	char *b;

	snprintf(seed, sizeof(seed), "history from bob %u", nonce);
	snprintf(hello, sizeof(hello), "hello from alice %u", nonce);
	snprintf(live, sizeof(live), "live from bob %u", nonce);

	/* bob: into Lobby, and leave a message in its history. */
	bob = bob_open();
	bob_room_uri("Lobby", lobby, sizeof(lobby));
	bob_join(lobby);
	bob_post(lobby, seed);
	bob_expect_post(lobby, "sip:bob@example.com", seed);

	/* alice, with pidgin-sipe. */
	{
		const char *const steps[] = {
			"roomlist",
			"join", "Lobby",
			"expect", "sip:bob@example.com", seed,
			"send", hello,
			"expect", "self", hello,
			"expect", "sip:bob@example.com", live,
			NULL,
		};

		driver_start("alice@example.com", "alice-pw", steps);
	}
	driver_expect("SIGNED_ON ", true, "sign-on");
	driver_expect("GROUPCHAT_CONNECTED", false,
		      "Group Chat (INVITE ocschat, cmd:requri, INVITE channel)");
	snprintf(line, sizeof(line), "ROOMLIST name=Lobby uri=%s ", lobby);
	driver_expect(line, true, "room list (same Lobby URI as bob's chansrch)");
	driver_expect("JOINED Lobby", false, "cmd:join");
	snprintf(line, sizeof(line), "MSG Lobby author=sip:bob@example.com text=%s", seed);
	driver_expect(line, false, "history (cmd:bccontext)");
	snprintf(line, sizeof(line), "MSG Lobby author=sip:alice@example.com text=%s", hello);
	driver_expect(line, false, "alice's own post echoed back (grpchat fan-out includes the sender)");
	cr_assert(transcript_has("USER_JOINED Lobby sip:bob@example.com"),
		  "rpl:join did not list bob, who is in Lobby, as present");

	/* bob sees alice arrive and post, then posts live. */
	b = gc_wait(bob, INFO_WAIT_MS, "ntc:join", "sip:alice@example.com", NULL);
	cr_assert(b != NULL, "bob: no ntc:join for alice in Lobby");
	free(b);
	bob_expect_post(lobby, "sip:alice@example.com", hello);
	bob_post(lobby, live);
	bob_expect_post(lobby, "sip:bob@example.com", live);

	snprintf(line, sizeof(line), "MSG Lobby author=sip:bob@example.com text=%s", live);
	driver_expect(line, false, "bob's live post");
	driver_expect("DONE", false, "scenario");
	cr_assert_eq(driver_exit(10000), 0, "driver exit status");

	/* alice signed off (BYE on the Channel dialog): bob is told she left. */
	b = gc_wait(bob, INFO_WAIT_MS, "ntc:part", "sip:alice@example.com", NULL);
	cr_assert(b != NULL, "bob: no ntc:part for alice after her BYE");
	free(b);
	gc_close(bob);
	bob = NULL;
	passed = true;
}
