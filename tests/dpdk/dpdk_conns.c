/* Many concurrent TLS connections to parleyd, for tests/dpdk/run.sh: opens
 * N connections (at most C handshakes in flight), keeps them all open, then
 * sends a SIP keepalive (double CRLF, RFC 5626) on every one and counts the
 * pongs, holds them H seconds, pings them all again and closes.
 *
 *   dpdk_conns HOST PORT N C H [SRCADDR]
 *
 * Prints "opened=X pong1=Y pong2=Z failed=F" and exits 0 when every
 * connection answered both rounds. Non-blocking sockets, OpenSSL on them,
 * one epoll loop. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dataplane/base/clock.h"

enum phase { P_IDLE, P_CONNECTING, P_HANDSHAKE, P_OPEN, P_PINGED, P_FAILED };

struct cn {
	int fd;
	SSL *ssl;
	enum phase ph;
	int pongs;
};

static struct sockaddr_in dst, src;
static bool have_src;
static SSL_CTX *ctx;
static int ep;

static void
fail(struct cn *c, int *inflight)
{
	if (c->ph == P_CONNECTING || c->ph == P_HANDSHAKE)
		(*inflight)--;
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->ph = P_FAILED;
}

static int
start(struct cn *c)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd == -1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (have_src && bind(c->fd, (struct sockaddr *)&src, sizeof(src)) == -1)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) == -1 && errno != EINPROGRESS)
		return -1;
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Drives the handshake; 1 done, 0 in progress, -1 failed. */
static int
handshake(struct cn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	int rc = SSL_do_handshake(c->ssl);

	if (rc == 1) {
		ev.events = EPOLLIN;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		return 1;
	}
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		ev.events = EPOLLIN;
		break;
	case SSL_ERROR_WANT_WRITE:
		ev.events = EPOLLOUT;
		break;
	default:
		return -1;
	}
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

/* Reads what is there: counts "\r\n" pongs; -1 when the peer closed. */
static int
readable(struct cn *c)
{
	char buf[4096];

	for (;;) {
		int n = SSL_read(c->ssl, buf, sizeof(buf));

		if (n > 0) {
			for (int i = 0; i + 1 < n; i++)
				if (buf[i] == '\r' && buf[i + 1] == '\n')
					c->pongs++;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			return 0;
		default:
			return -1;
		}
	}
}

static void
loop(struct cn *cs, int n, int conc, int *opened, int *failed, long long deadline)
{
	struct epoll_event evs[256];
	int next = 0, inflight = 0;

	while (*opened + *failed < n && (long long)clock_mono_ms() < deadline) {
		while (inflight < conc && next < n) {
			cs[next].ph = P_CONNECTING;
			inflight++;
			if (start(&cs[next]) != 0) {
				fail(&cs[next], &inflight);
				(*failed)++;
			}
			next++;
		}
		int k = epoll_wait(ep, evs, 256, 100);

		for (int i = 0; i < k; i++) {
			struct cn *c = evs[i].data.ptr;
			int rc, err = 0;
			socklen_t l = sizeof(err);

			if (c->ph == P_CONNECTING) {
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
				if (err != 0) {
					fail(c, &inflight);
					(*failed)++;
					continue;
				}
				c->ssl = SSL_new(ctx);
				SSL_set_fd(c->ssl, c->fd);
				SSL_set_connect_state(c->ssl);
				c->ph = P_HANDSHAKE;
			}
			if (c->ph == P_HANDSHAKE) {
				rc = handshake(c);
				if (rc < 0) {
					fail(c, &inflight);
					(*failed)++;
				} else if (rc == 1) {
					c->ph = P_OPEN;
					inflight--;
					(*opened)++;
				}
				continue;
			}
			if (c->ph == P_OPEN && readable(c) < 0) {
				c->ph = P_FAILED;	/* closed by the server */
				(*opened)--;
				(*failed)++;
			}
		}
	}
}

/* Pings every open connection; returns how many answered within <ms>. */
static int
ping_all(struct cn *cs, int n, int ms)
{
	struct epoll_event evs[256];
	long long end = clock_mono_ms() + ms;
	int want = 0, got = 0;

	for (int i = 0; i < n; i++) {
		if (cs[i].ph != P_OPEN)
			continue;
		cs[i].pongs = 0;
		if (SSL_write(cs[i].ssl, "\r\n\r\n", 4) == 4)
			want++;
	}
	while (got < want && (long long)clock_mono_ms() < end) {
		int k = epoll_wait(ep, evs, 256, 100);

		for (int i = 0; i < k; i++) {
			struct cn *c = evs[i].data.ptr;
			int before = c->pongs;

			if (c->ph != P_OPEN)
				continue;
			if (readable(c) < 0)
				c->ph = P_FAILED;
			if (before == 0 && c->pongs > 0)
				got++;
		}
	}
	return got;
}

int
main(int argc, char **argv)
{
	int n, conc, hold, opened = 0, failed = 0, p1, p2;
	struct rlimit rl;
	struct cn *cs;
	long long t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 6) {
		fprintf(stderr, "usage: dpdk_conns HOST PORT N CONC HOLD_S [SRCADDR]\n");
		return 2;
	}
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1)
		return 2;
	n = atoi(argv[3]);
	conc = atoi(argv[4]);
	hold = atoi(argv[5]);
	if (argc > 6) {
		src.sin_family = AF_INET;
		if (inet_pton(AF_INET, argv[6], &src.sin_addr) != 1)
			return 2;
		have_src = true;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)n + 64 > rl.rlim_cur) {
		fprintf(stderr, "dpdk_conns: %d connections need %d descriptors; the limit is %llu: "
			"use more processes\n", n, n + 64, (unsigned long long)rl.rlim_cur);
		return 2;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ep = epoll_create1(0);
	cs = calloc(n, sizeof(*cs));
	for (int i = 0; i < n; i++)
		cs[i].fd = -1;
	t0 = clock_mono_ms();
	loop(cs, n, conc, &opened, &failed, t0 + 240000);
	printf("dpdk_conns: %d of %d open after %.1f s (%d failed)\n", opened, n,
	       ((long long)clock_mono_ms() - t0) / 1000.0, failed);
	p1 = ping_all(cs, n, 30000);
	sleep(hold);
	p2 = ping_all(cs, n, 30000);
	printf("opened=%d pong1=%d pong2=%d failed=%d\n", opened, p1, p2, failed);
	for (int i = 0; i < n; i++) {
		if (cs[i].ssl)
			SSL_free(cs[i].ssl);
		if (cs[i].fd != -1)
			close(cs[i].fd);
	}
	free(cs);
	SSL_CTX_free(ctx);
	return opened == n && p1 == n && p2 == n ? 0 : 1;
}
