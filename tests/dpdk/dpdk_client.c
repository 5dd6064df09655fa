/* Linux-side client for the dpdk backend tests (tests/dpdk/run.sh): runs in
 * the test's network namespace and talks to parleyd over the user-space TCP
 * with the client library of perf/ (client.h, gcclient.h).
 *
 *   dpdk_client register HOST PORT           TLS + REGISTER with Digest: 200
 *   dpdk_client chat HOST PORT               alice and bob join the Lobby; a
 *                                            post of each reaches both
 *   dpdk_client stream HOST PORT N SIZE      alice and bob each post N messages
 *                                            of SIZE bytes; every receiver
 *                                            must see every author's posts
 *                                            exactly once and in order, and
 *                                            the SHA-256 of each author's
 *                                            stream must match what was sent
 *   dpdk_client token HOST PORT up|down FILE alice asks for a file token in
 *                                            the Lobby (getfutok/getfdtok) and
 *                                            prints "<room-id>/<name>?token=<T>",
 *                                            the path under the Web service's url
 *
 * Exit 0 on success, 1 with a reason on stderr. Under injected loss a SIP
 * response may take longer than the library's 5 s: a post whose 200 does not
 * come in time is never re-sent (that could double it); its own echo to the
 * author decides instead. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dataplane/base/clock.h"
#include "perf/client.h"
#include "perf/gcclient.h"

#define AUTHORS		2
#define OPEN_TRIES	6

static const char *const aors[AUTHORS] = { "alice@example.com", "bob@example.com" };
static const char *const pws[AUTHORS] = { "alice-pw", "bob-pw" };

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "dpdk_client: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* Sign-in, retried: a lost SYN or handshake flight under 20% loss can take
 * longer than the library's 5 s timeout. */
static struct gc *
open_as(const char *host, uint16_t port, int who)
{
	char err[256] = "";

	for (int i = 0; i < OPEN_TRIES; i++) {
		struct gc *g = gc_open(host, port, aors[who], pws[who], err, sizeof(err));

		if (g != NULL)
			return g;
		fprintf(stderr, "dpdk_client: %s: sign-in attempt %d: %s\n", aors[who], i + 1, err);
	}
	die("%s: cannot sign in: %s", aors[who], err);
	return NULL;
}

static void
lobby_uri(struct gc *g, char *uri, size_t cap)
{
	char *b = NULL;

	for (int i = 0; i < OPEN_TRIES && b == NULL; i++) {
		if (gc_cmd(g, "chansrch",
			   "<qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/>") != 200)
			continue;
		b = gc_wait(g, 10000, "rpl:chansrch", NULL);
	}
	if (b == NULL || !gc_room_uri(b, "Lobby", uri, cap))
		die("no Lobby in chansrch");
	free(b);
}

static void
join(struct gc *g, const char *uri)
{
	char *b = gc_join(g, uri, 20000);

	if (b == NULL || strstr(b, "code=\"200\"") == NULL)
		die("%s: join %s: %s", gc_aor(g), uri, b ? b : "no reply");
	free(b);
}

static int
cmd_register(const char *host, uint16_t port)
{
	char err[256], warn[256] = "";
	struct pc_conn *c = pc_connect(host, port, NULL, 10000, err, sizeof(err));
	int st;

	if (c == NULL)
		die("TLS connect %s:%u: %s", host, port, err);
	st = pc_register(c, aors[0], pws[0], 600, warn, sizeof(warn));
	pc_close(c);
	if (st != 200)
		die("REGISTER: %d %s", st, warn);
	printf("register: 200\n");
	return 0;
}

static int
cmd_chat(const char *host, uint16_t port)
{
	struct gc *a = open_as(host, port, 0), *b = open_as(host, port, 1);
	char lobby[256], *m;

	lobby_uri(a, lobby, sizeof(lobby));
	join(a, lobby);
	join(b, lobby);
	if (gc_post(a, lobby, "hello from alice over dpdk", NULL) != 200)
		die("alice's post was not accepted");
	m = gc_wait(a, 10000, "<grpchat", "hello from alice over dpdk", NULL);
	if (m == NULL)
		die("alice did not get her own post back");
	free(m);
	m = gc_wait(b, 10000, "<grpchat", "hello from alice over dpdk", NULL);
	if (m == NULL)
		die("bob did not get alice's post");
	free(m);
	if (gc_post(b, lobby, "and bob answers", NULL) != 200)
		die("bob's post was not accepted");
	m = gc_wait(a, 10000, "<grpchat", "and bob answers", NULL);
	if (m == NULL)
		die("alice did not get bob's post");
	free(m);
	gc_close(a);
	gc_close(b);
	printf("chat: a post of each of two clients reached both\n");
	return 0;
}

/* ---- stream ---- */

struct stream {
	size_t size;
	unsigned long n;
	char *text;			/* scratch for one message */
	EVP_MD_CTX *sent[AUTHORS];	/* what each author posted */
	EVP_MD_CTX *got[AUTHORS][AUTHORS];	/* [receiver][author] */
	unsigned long next[AUTHORS][AUTHORS];	/* next seq expected */
	unsigned long long bytes_up, bytes_down;
};

/* "S|<author>|<seq>|<payload>|E", payload in [a-z0-9] (no XML escaping). */
static size_t
make_text(struct stream *s, int author, unsigned long seq)
{
	uint64_t x = (uint64_t)author * 0x9e3779b97f4a7c15ull + seq * 0xbf58476d1ce4e5b9ull + 1;
	size_t n = (size_t)snprintf(s->text, s->size + 64, "S|%d|%lu|", author, seq);

	while (n < s->size) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		s->text[n++] = "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36];
	}
	n += (size_t)snprintf(s->text + n, 8, "|E");
	return n;
}

static void
digest_hex(EVP_MD_CTX *ctx, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *copy = EVP_MD_CTX_new();

	EVP_MD_CTX_copy_ex(copy, ctx);
	EVP_DigestFinal_ex(copy, md, &len);
	EVP_MD_CTX_free(copy);
	for (unsigned int i = 0; i < len && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* One delivered body at receiver <r>: check order and hash it. */
static void
take(struct stream *s, int r, char *body)
{
	char *p = strstr(body, "<grpchat"), *t, *e;
	unsigned long seq;
	int author;

	if (p == NULL || (t = strstr(p, "S|")) == NULL) {
		free(body);
		return;		/* a notice (join) */
	}
	e = strstr(t, "|E");
	if (e == NULL || sscanf(t, "S|%d|%lu|", &author, &seq) != 2 || author < 0 ||
	    author >= AUTHORS)
		die("%s got a malformed post: %.200s", aors[r], t);
	if (seq != s->next[r][author])
		die("%s got post %lu of %s, expected %lu (%s)", aors[r], seq, aors[author],
		    s->next[r][author], seq < s->next[r][author] ? "duplicate or reordered" : "gap");
	s->next[r][author]++;
	EVP_DigestUpdate(s->got[r][author], t, (size_t)(e + 2 - t));
	s->bytes_down += (unsigned long long)(e + 2 - t);
	free(body);
}

static void
drain(struct stream *s, struct gc *g[AUTHORS])
{
	for (int r = 0; r < AUTHORS; r++) {
		char *b;

		while ((b = gc_next(g[r])) != NULL)
			take(s, r, b);
	}
}

static bool
all_in(const struct stream *s, unsigned long n)
{
	for (int r = 0; r < AUTHORS; r++)
		for (int a = 0; a < AUTHORS; a++)
			if (s->next[r][a] < n)
				return false;
	return true;
}

static int
cmd_stream(const char *host, uint16_t port, unsigned long n, size_t size)
{
	struct gc *g[AUTHORS];
	struct stream s = { .size = size, .n = n };
	char lobby[256];
	long long t0, last;
	int late = 0;
	long long stall_ms = getenv("DPDK_STALL_S") ? atoll(getenv("DPDK_STALL_S")) * 1000 : 60000;

	s.text = malloc(size + 64);
	for (int a = 0; a < AUTHORS; a++) {
		s.sent[a] = EVP_MD_CTX_new();
		EVP_DigestInit_ex(s.sent[a], EVP_sha256(), NULL);
		for (int r = 0; r < AUTHORS; r++) {
			s.got[r][a] = EVP_MD_CTX_new();
			EVP_DigestInit_ex(s.got[r][a], EVP_sha256(), NULL);
		}
		g[a] = open_as(host, port, a);
	}
	lobby_uri(g[0], lobby, sizeof(lobby));
	for (int a = 0; a < AUTHORS; a++)
		join(g[a], lobby);
	t0 = clock_mono_ms();
	for (unsigned long i = 0; i < n; i++) {
		for (int a = 0; a < AUTHORS; a++) {
			size_t len = make_text(&s, a, i);
			int st;

			EVP_DigestUpdate(s.sent[a], s.text, len);
			s.bytes_up += len;
			st = gc_post(g[a], lobby, s.text, NULL);
			if (st == -1) {
				/* No 200 in time (loss): never re-send; wait for the echo. */
				long long end = clock_mono_ms() + stall_ms;

				late++;
				while (s.next[a][a] <= i && (long long)clock_mono_ms() < end) {
					gc_pump(g[a], 200);
					drain(&s, g);
				}
				if (s.next[a][a] <= i)
					die("post %lu of %s: no 200 and no echo in %lld s", i, aors[a],
					    stall_ms / 1000);
			} else if (st != 200) {
				die("post %lu of %s: status %d", i, aors[a], st);
			}
		}
		drain(&s, g);
	}
	/* The rest of the deliveries; give up after 60 s without progress. */
	last = clock_mono_ms();
	while (!all_in(&s, n)) {
		unsigned long long before = s.bytes_down;

		for (int r = 0; r < AUTHORS; r++)
			gc_pump(g[r], 50);
		drain(&s, g);
		if (s.bytes_down != before)
			last = clock_mono_ms();
		else if ((long long)clock_mono_ms() - last > stall_ms)
			break;
	}
	for (int r = 0; r < AUTHORS; r++)
		for (int a = 0; a < AUTHORS; a++)
			if (s.next[r][a] != n)
				die("%s got %lu of %lu posts of %s", aors[r], s.next[r][a], n, aors[a]);
	for (int a = 0; a < AUTHORS; a++) {
		char hs[65], hr[65];

		digest_hex(s.sent[a], hs);
		for (int r = 0; r < AUTHORS; r++) {
			digest_hex(s.got[r][a], hr);
			if (strcmp(hs, hr) != 0)
				die("sha256 of %s's stream at %s: %s, sent %s", aors[a], aors[r], hr, hs);
		}
		printf("stream: %s sent %lu posts, sha256 %s, received identically by all\n",
		       aors[a], n, hs);
	}
	printf("stream: %llu bytes up, %llu bytes down in %.1f s; %d posts answered late\n",
	       s.bytes_up, s.bytes_down, ((long long)clock_mono_ms() - t0) / 1000.0, late);
	for (int a = 0; a < AUTHORS; a++) {
		gc_close(g[a]);
		EVP_MD_CTX_free(s.sent[a]);
		for (int r = 0; r < AUTHORS; r++)
			EVP_MD_CTX_free(s.got[r][a]);
	}
	free(s.text);
	return 0;
}

/* The value of attribute <name> in <body>, or "". */
static void
attr(const char *body, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), " %s=\"", name);
	out[0] = '\0';
	p = strstr(body, pat);
	if (p == NULL)
		return;
	p += strlen(pat);
	q = strchr(p, '"');
	if (q != NULL)
		snprintf(out, cap, "%.*s", (int)(q - p), p);
}

static int
cmd_token(const char *host, uint16_t port, bool up, const char *file)
{
	struct gc *a = open_as(host, port, 0);
	char lobby[256], data[512], code[8], tok[64], name[128], *b;

	lobby_uri(a, lobby, sizeof(lobby));
	join(a, lobby);
	snprintf(data, sizeof(data), "<ftdb channelUri=\"%s\" fileUrl=\"%s\"/>", lobby, file);
	if (gc_cmd(a, up ? "getfutok" : "getfdtok", data) != 200)
		die("%s was not accepted", up ? "getfutok" : "getfdtok");
	b = gc_wait(a, 10000, "rpl:getftok", NULL);
	if (b == NULL)
		die("no rpl:getftok");
	attr(b, "code", code, sizeof(code));
	attr(b, "token", tok, sizeof(tok));
	attr(b, "fileUrl", name, sizeof(name));
	if (strcmp(code, "200") != 0 || tok[0] == '\0' || name[0] == '\0')
		die("rpl:getftok: %s", b);
	free(b);
	printf("%s/%s?token=%s\n", strrchr(lobby, '/') + 1, name, tok);
	gc_close(a);
	return 0;
}

int
main(int argc, char **argv)
{
	uint16_t port;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4) {
		fprintf(stderr, "usage: dpdk_client register|chat HOST PORT\n"
			"       dpdk_client stream HOST PORT N SIZE\n"
			"       dpdk_client token HOST PORT up|down FILE\n");
		return 2;
	}
	port = (uint16_t)atoi(argv[3]);
	srand((unsigned int)getpid());
	if (strcmp(argv[1], "register") == 0)
		return cmd_register(argv[2], port);
	if (strcmp(argv[1], "chat") == 0)
		return cmd_chat(argv[2], port);
	if (strcmp(argv[1], "stream") == 0 && argc == 6)
		return cmd_stream(argv[2], port, strtoul(argv[4], NULL, 10),
				  strtoul(argv[5], NULL, 10));
	if (strcmp(argv[1], "token") == 0 && argc == 6)
		return cmd_token(argv[2], port, strcmp(argv[4], "up") == 0, argv[5]);
	fprintf(stderr, "dpdk_client: unknown command %s\n", argv[1]);
	return 2;
}
