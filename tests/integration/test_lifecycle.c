/* parleyd end to end, part two: nonce replay, SIGHUP reload, drain on
 * SIGTERM, --check-config, and real TLS clients (openssl s_client). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "dataplane/sip/digest.h"
#include "perf/client.h"
#include "tests/integration/harness.h"

static struct server srv;

static void
nonce_of(const struct sipmsg *m, char *out, size_t cap)
{
	char v[512];
	const char *p, *e;

	cr_assert(pc_header(m, "Proxy-Authenticate", v, sizeof(v)));
	p = strstr(v, "nonce=\"");
	cr_assert(p != NULL);
	p += 7;
	e = strchr(p, '"');
	cr_assert(e != NULL && (size_t)(e - p) < cap);
	memcpy(out, p, e - p);
	out[e - p] = '\0';
}

static ssize_t
register_with(char *buf, size_t cap, struct pc_dialog *d, const char *nonce, const char *nc)
{
	char ha1[65], resp[65], extra[1024];

	digest_ha1(DIGEST_MD5, "alice@example.com", "example.com", "alice-pw", ha1);
	digest_response(DIGEST_MD5, ha1, nonce, nc, "c0ffee", "auth", "REGISTER",
			"sip:example.com", resp);
	snprintf(extra, sizeof(extra),
		 "Expires: 3600\r\nProxy-Authorization: Digest username=\"alice@example.com\", "
		 "realm=\"example.com\", nonce=\"%s\", uri=\"sip:example.com\", response=\"%s\", "
		 "algorithm=MD5, qop=auth, nc=%s, cnonce=\"c0ffee\"\r\n", nonce, resp, nc);
	return pc_build(buf, cap, "REGISTER", "sip:example.com", "alice@example.com",
			"sip:alice@example.com", d, extra, NULL, NULL);
}

Test(lifecycle, replayed_nonce_is_challenged_again, .timeout = 60)
{
	struct pc_dialog d = { .cseq = 1 };
	char req[4096], nonce[128], v[512];
	struct pc_conn *c, *other;
	struct sipmsg m;
	ssize_t n;

	server_start(&srv, NULL);
	c = server_connect(&srv, NULL);
	n = pc_build(req, sizeof(req), "REGISTER", "sip:example.com", "alice@example.com",
		     "sip:alice@example.com", &d, "Expires: 3600\r\n", NULL, NULL);
	cr_assert_eq(server_roundtrip(c, req, n, &m), 407);
	nonce_of(&m, nonce, sizeof(nonce));

	d.cseq++;
	n = register_with(req, sizeof(req), &d, nonce, "00000001");
	cr_assert_eq(server_roundtrip(c, req, n, &m), 200);

	/* The same credentials again (new CSeq, same nonce and nc): a replay. */
	d.cseq++;
	n = register_with(req, sizeof(req), &d, nonce, "00000001");
	cr_assert_eq(server_roundtrip(c, req, n, &m), 407);
	cr_assert(pc_header(&m, "Proxy-Authenticate", v, sizeof(v)));
	cr_assert(strstr(v, "stale=true") != NULL, "%s", v);

	/* A higher nc with the same nonce is a legitimate reuse (RFC 7616). */
	d.cseq++;
	n = register_with(req, sizeof(req), &d, nonce, "00000002");
	cr_assert_eq(server_roundtrip(c, req, n, &m), 200);

	/* The nonce is bound to its connection: on another one it is not accepted. */
	other = server_connect(&srv, NULL);
	d.cseq++;
	n = register_with(req, sizeof(req), &d, nonce, "00000003");
	cr_assert_eq(server_roundtrip(other, req, n, &m), 407);
	pc_close(other);
	pc_close(c);
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, sighup_reloads_certificate_without_dropping, .timeout = 90)
{
	char fp1[65], fp2[65], fp3[65];
	struct pc_dialog d = { .cseq = 1 };
	struct pc_conn *old, *c;
	char req[2048];
	struct sipmsg m;
	ssize_t n;

	server_start(&srv, NULL);
	old = server_connect(&srv, NULL);
	cr_assert_eq(pc_register(old, "alice@example.com", "alice-pw", 3600, NULL, 0), 200);
	pc_peer_fingerprint(old, fp1);

	/* A new certificate in place of the generated one. */
	cr_assert_eq(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			 "-keyout %s/tls/key.pem.new -out %s/tls/cert.pem.new -days 2 "
			 "-subj /CN=reloaded.example.com 2>/dev/null && "
			 "mv %s/tls/key.pem.new %s/tls/key.pem && mv %s/tls/cert.pem.new "
			 "%s/tls/cert.pem", srv.dir, srv.dir, srv.dir, srv.dir, srv.dir, srv.dir), 0);
	server_signal(&srv, SIGHUP);
	/* The lcore takes it at its next turn (within ~100 ms). */
	for (int i = 0; i < 50; i++) {
		usleep(100000);
		c = server_connect(&srv, NULL);
		pc_peer_fingerprint(c, fp2);
		pc_close(c);
		if (strcmp(fp1, fp2) != 0)
			break;
	}
	cr_assert_str_neq(fp1, fp2, "new connections get the new certificate");
	/* The old connection kept its session and identity. */
	pc_peer_fingerprint(old, fp3);
	cr_assert_str_eq(fp1, fp3);
	n = pc_build(req, sizeof(req), "OPTIONS", "sip:example.com", "alice@example.com",
		     "sip:example.com", &d, NULL, NULL, NULL);
	cr_assert_eq(server_roundtrip(old, req, n, &m), 200);
	pc_close(old);
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, sighup_reloads_users, .timeout = 60)
{
	struct pc_conn *c;

	server_start(&srv, NULL);
	c = server_connect(&srv, NULL);
	cr_assert_eq(pc_register(c, "carol@example.com", "carol-pw", 3600, NULL, 0), 403);
	pc_close(c);
	cr_assert_eq(run("%s/tests/integration/htdigest_add.py %s/users.htdigest example.com "
			 "carol@example.com carol-pw", getenv("PARLEY_SRCDIR"), srv.dir), 0,
		     "htdigest(1) from apache2-utils adds a user");
	server_signal(&srv, SIGHUP);
	usleep(500000);
	c = server_connect(&srv, NULL);
	cr_assert_eq(pc_register(c, "carol@example.com", "carol-pw", 3600, NULL, 0), 200);
	pc_close(c);
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, sigterm_drains_and_says_goodbye, .timeout = 60)
{
	struct pc_conn *c;

	server_start(&srv, NULL);
	c = server_connect(&srv, NULL);
	cr_assert_eq(pc_register(c, "alice@example.com", "alice-pw", 3600, NULL, 0), 200);
	server_signal(&srv, SIGTERM);
	/* The open connection gets close_notify and a close, well within the
	 * 3 s drain timeout of the test config. */
	cr_assert(pc_wait_closed(c, 5000));
	pc_close(c);
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, tls_versions_and_resumption, .timeout = 60)
{
	struct pc_opts o12 = { .min_tls = TLS1_2_VERSION, .max_tls = TLS1_2_VERSION };
	struct pc_opts o11 = { .max_tls = TLS1_1_VERSION };
	char err[256], cafile[400];
	struct pc_conn *c;

	server_start(&srv, NULL);
	/* TLS 1.3 by default, verified against the generated certificate. */
	snprintf(cafile, sizeof(cafile), "%s/tls/cert.pem", srv.dir);
	struct pc_opts ov = { .cafile = cafile };

	c = server_connect(&srv, &ov);
	pc_close(c);
	/* TLS 1.2 and 1.3 sessions resume (real client: openssl s_client). */
	cr_assert_eq(run("cd %s && echo | timeout 10 openssl s_client -connect 127.0.0.1:%u -tls1_2 "
			 "-sess_out s12.pem >/dev/null 2>&1 && echo | timeout 10 openssl s_client "
			 "-connect 127.0.0.1:%u -tls1_2 -sess_in s12.pem 2>/dev/null | "
			 "grep -q '^Reused, TLSv1.2'", srv.dir, srv.port, srv.port), 0,
		     "TLS 1.2 session resumption");
	cr_assert_eq(run("cd %s && (sleep 0.5; echo) | timeout 10 openssl s_client -connect "
			 "127.0.0.1:%u -tls1_3 -sess_out s13.pem >/dev/null 2>&1 && echo | timeout 10 "
			 "openssl s_client -connect 127.0.0.1:%u -tls1_3 -sess_in s13.pem 2>/dev/null "
			 "| grep -q '^Reused, TLSv1.3'", srv.dir, srv.port, srv.port), 0,
		     "TLS 1.3 session resumption");
	c = server_connect(&srv, &o12);
	pc_close(c);
	/* TLS 1.1 is refused; the server keeps serving. */
	c = pc_connect("127.0.0.1", srv.port, &o11, 5000, err, sizeof(err));
	cr_assert_null(c, "TLS 1.1 must be refused");
	cr_assert_eq(run("echo | timeout 10 openssl s_client -connect 127.0.0.1:%u -tls1_3 "
			 "-CAfile %s -verify_return_error -verify_ip 127.0.0.1 >/dev/null 2>&1",
			 srv.port, cafile), 0, "openssl s_client verifies the generated certificate");
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, check_config, .timeout = 30)
{
	char dir[] = "/tmp/parley-cfg-XXXXXX";

	cr_assert(mkdtemp(dir) != NULL);
	cr_assert_eq(run("printf '[server]\\ndomain = example.org\\n[sip]\\nlisten = 127.0.0.1:5070\\n'"
			 " > %s/good.ini && %s --check-config -c %s/good.ini >/dev/null", dir,
			 server_binary(), dir), 0);
	cr_assert_eq(run("printf '[server]\\ndomain = example.org\\n[sip]\\nlistne = x\\n' > "
			 "%s/bad.ini && %s --check-config -c %s/bad.ini 2>%s/err; "
			 "test $? -eq 1 && grep -q 'bad.ini:4: \\[sip\\] listne: unknown key' %s/err",
			 dir, server_binary(), dir, dir, dir), 0);
	cr_assert_eq(run("printf '[net]\\noutq_max = 12\\n' > %s/range.ini && %s --check-config "
			 "-c %s/range.ini 2>%s/err; test $? -eq 1 && grep -q 'outq_max: 12 is outside'"
			 " %s/err", dir, server_binary(), dir, dir, dir), 0);
	/* A node that would keep compliance events nothing exports is refused. */
	cr_assert_eq(run("printf '[compliance]\\nenabled = false\\n' > %s/nocomp.ini && %s "
			 "--check-config -c %s/nocomp.ini 2>%s/err; test $? -eq 1 && grep -q "
			 "'enabled = false: no other node exports' %s/err", dir, server_binary(), dir,
			 dir, dir), 0);
	/* Command-line overrides win and are validated too. */
	cr_assert_eq(run("%s --check-config -c %s/good.ini --set sip.listen=nohostport 2>/dev/null",
			 server_binary(), dir), 1);
	run("rm -rf %s", dir);
}

Test(lifecycle, two_lcores_serve, .timeout = 60)
{
	struct pc_conn *c[8];

	server_start(&srv, "[dpdk]\nlcores = 2\n");
	/* SO_REUSEPORT spreads connections over both lcores' listeners. */
	for (int i = 0; i < 8; i++) {
		c[i] = server_connect(&srv, NULL);
		cr_assert_eq(pc_register(c[i], i % 2 ? "bob@example.com" : "alice@example.com",
					 i % 2 ? "bob-pw" : "alice-pw", 3600, NULL, 0), 200);
	}
	for (int i = 0; i < 8; i++)
		pc_close(c[i]);
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, slow_reader_is_disconnected_others_served, .timeout = 90)
{
	struct pc_dialog d = { .cseq = 1 };
	struct pc_conn *slow, *ok;
	char req[1024];
	struct sipmsg m;
	bool closed = false;

	server_start(&srv, "[net]\noutq_max = 65536\n");
	slow = server_connect(&srv, NULL);
	/* Requests whose answers it never reads: once the socket buffers are
	 * full, the server's queue passes outq_max and it drops the reader. */
	for (int i = 0; i < 200000 && !closed; i++) {
		ssize_t n = pc_build(req, sizeof(req), "OPTIONS", "sip:example.com",
				     "alice@example.com", "sip:example.com", &d, NULL, NULL, NULL);

		d.cseq++;
		if (pc_send(slow, req, n) != 0)
			closed = true;
	}
	cr_assert(closed || pc_wait_closed(slow, 5000), "slow reader disconnected");
	pc_close(slow);
	ok = server_connect(&srv, NULL);
	memset(&d, 0, sizeof(d));
	d.cseq = 1;
	ssize_t n = pc_build(req, sizeof(req), "OPTIONS", "sip:example.com", "bob@example.com",
			     "sip:example.com", &d, NULL, NULL, NULL);
	cr_assert_eq(server_roundtrip(ok, req, n, &m), 200);
	pc_close(ok);
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, handshake_timeout_closes_silent_tcp, .timeout = 60)
{
	server_start(&srv, "[net]\nhandshake_timeout_s = 1\n");
	/* A TCP connection that never starts TLS is closed after the timeout. */
	cr_assert_eq(run("python3 -c 'import socket,time; s=socket.create_connection((\"127.0.0.1\",%u));"
			 " s.settimeout(8); t=time.time(); d=s.recv(1); "
			 "exit(0 if d==b\"\" and time.time()-t<6 else 1)'", srv.port), 0);
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, idle_timeout_closes_silent_sessions_only, .timeout = 60)
{
	struct pc_conn *quiet, *busy;
	char err[256];

	server_start(&srv, "[net]\nidle_timeout_s = 5\n");
	quiet = pc_connect("127.0.0.1", srv.port, NULL, 5000, err, sizeof(err));
	busy = pc_connect("127.0.0.1", srv.port, NULL, 5000, err, sizeof(err));
	cr_assert(quiet && busy, "%s", err);
	/* One stays silent after TLS; the other keeps talking (CRLF pings). */
	for (int i = 0; i < 14; i++) {
		struct sipmsg m;

		cr_assert_eq(pc_send(busy, "\r\n\r\n", 4), 0, "the active session was dropped");
		pc_recv(busy, &m, 500);
	}
	cr_assert(pc_wait_closed(quiet, 3000), "a silent session outlived idle_timeout_s");
	cr_assert_eq(pc_send(busy, "\r\n\r\n", 4), 0);
	cr_assert(!pc_wait_closed(busy, 300), "the active session was closed");
	pc_close(quiet);
	pc_close(busy);
	cr_assert_eq(server_stop(&srv), 0);
}

Test(lifecycle, web_port_taken_stops_the_node, .timeout = 60)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char dir[] = "/tmp/parley-web-XXXXXX";
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* Someone else holds the port the Web service is told to use. */
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 1) == 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	cr_assert(mkdtemp(dir) != NULL);
	cr_assert_eq(run("printf '[server]\\ndata_dir = %s\\n[sip]\\nlisten = 127.0.0.1:%u\\n"
			 "[web]\\nlisten = 127.0.0.1:%u\\n' > %s/p.ini; timeout 30 %s -c %s/p.ini "
			 "2> %s/log; test $? -eq 1 && grep -q 'set \\[web\\] listen' %s/log",
			 dir, server_free_port(), ntohs(a.sin_port), dir, server_binary(),
			 dir, dir, dir), 0,
		     "parleyd ran on without its Web service");
	close(fd);
	run("rm -rf %s", dir);
}
