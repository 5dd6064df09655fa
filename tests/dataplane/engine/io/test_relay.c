/* Byte relays between utcp connections and socketpairs (dataplane/io/relay.h),
 * seen from both ends: a client app on stack A talks TCP over an in-memory
 * link to stack B, whose listener belongs to a relay set wired into B's
 * callbacks as the dpdk backend does it (dpdk.c); the "service" is whatever
 * holds the fds the adopt callback received, and reads and writes them as
 * it would an accepted socket.
 *
 * The link is a FIFO of packets on a simulated clock: a step delivers every
 * queued packet (and what they provoke), runs relay_poll, then moves the
 * clock 1 ms and ticks both stacks. The sockets are real AF_UNIX
 * socketpairs, so their buffers, EAGAIN and EOF/ECONNRESET are the kernel's.
 *
 * Cases: 2 MB each way byte for byte; back-pressure both ways (nothing lost,
 * nothing read ahead); client half-close; service close after a response
 * (FIN, not RST); client reset; a full set and a refusing service (no fd
 * leaked); relay_set_destroy with open relays; data and FIN riding the
 * handshake; the service closing on an unread request (RST); the client
 * vanishing (timeout); client bytes crossing the service's close (the
 * answer first, then RST). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "dataplane/engine/io/relay.h"
#include "dataplane/tcp/utcp.h"
#include "tests/dataplane/tcp/stream_byte.h"

#define A_ADDR		0x0a000001u
#define B_ADDR		0x0a000002u
#define WEB_PORT	443
#define MAXCLI		8
#define MAXSVC		8
#define STEPS_MAX	60000		/* simulated ms before a wait gives up */
#define CHUNK		65536

/* ---- the link, the clock and the two stacks ---- */

struct lpkt {
	struct utcp_stack *to;
	size_t len;
	uint8_t *data;
	struct lpkt *next;
};

struct cli {
	struct utcp_conn *c;		/* NULL once released */
	bool connected, closed;
	int err;			/* utcp_conn_error() at UTCP_EV_CLOSED */
};

/* Criterion runs each test in its own process: one harness per process. */
static struct {
	uint64_t now;
	struct lpkt *head, **tail;
	struct utcp_stack *a, *b;
	struct relay_set *rs;
	struct cli cli[MAXCLI];
	int ncli;
	int svc[MAXSVC];		/* fds the service adopted, in order; -1 closed */
	int nsvc;
	int adopt_ret;			/* what the service answers to adopt */
	bool link_down;			/* the link loses every packet */
	struct utcp_conn *b_last;	/* B's side of the last accepted connection */
} N;

static int
output(void *arg, const void *pkt, size_t len)
{
	struct lpkt *p;

	if (N.link_down)
		return 0;		/* lost on the wire */
	p = malloc(sizeof(*p));
	cr_assert_not_null(p);
	p->data = malloc(len);
	cr_assert_not_null(p->data);
	memcpy(p->data, pkt, len);
	p->len = len;
	p->to = arg == &N.a ? N.b : N.a;
	p->next = NULL;
	*N.tail = p;
	N.tail = &p->next;
	return 0;
}

static uint64_t
clock_us(void *arg)
{
	(void)arg;
	return N.now;
}

/* Stack A: a plain app. The handle stays ours after UTCP_EV_CLOSED (bytes
 * that arrived before a reset stay readable) until the test closes it. */
static void
a_event(void *arg, struct utcp_conn *c, enum utcp_event ev)
{
	struct cli *k = utcp_conn_user(c);

	(void)arg;
	if (k == NULL)
		return;
	if (ev == UTCP_EV_CONNECTED)
		k->connected = true;
	if (ev == UTCP_EV_CLOSED) {
		k->closed = true;
		k->err = utcp_conn_error(c);
	}
}

/* Stack B: as dpdk.c's event_cb/recv_cb route the Web relay set's share. */
static void
b_event(void *arg, struct utcp_conn *c, enum utcp_event ev)
{
	void *user = utcp_conn_user(c);

	(void)arg;
	if (ev == UTCP_EV_ACCEPTED) {
		cr_assert(N.rs != NULL && user == N.rs, "only the relay set listens on B");
		N.b_last = c;
		relay_accepted(N.rs, c);
		return;
	}
	if (relay_owns(N.rs, user))
		relay_event(N.rs, c, ev);
}

static size_t
b_recv(void *arg, struct utcp_conn *c, const void *data, size_t len)
{
	(void)arg;
	if (relay_owns(N.rs, utcp_conn_user(c)))
		return relay_recv(N.rs, c, data, len);
	return 0;
}

static int
adopt(void *arg, int fd)
{
	cr_assert_eq(arg, &N);
	if (N.adopt_ret != 0)
		return N.adopt_ret;	/* the relay closes <fd> */
	cr_assert_lt(N.nsvc, MAXSVC);
	N.svc[N.nsvc++] = fd;
	return 0;
}

static int
fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void
setup(void)
{
	struct utcp_config cfg;
	struct utcp_callbacks ca = { output, a_event, clock_us, &N.a, NULL };
	struct utcp_callbacks cb = { output, b_event, clock_us, &N.b, b_recv };

	memset(&N, 0, sizeof(N));
	N.tail = &N.head;
	N.now = 1000000;
	utcp_config_init(&cfg);
	cfg.max_conns = 16;
	cfg.tw_us = 100000;
	cfg.max_retries = 5;		/* a dead link times out in seconds */
	cfg.rto_max_us = 2000000;
	cfg.local_addr = A_ADDR;
	cfg.isn_secret[0] = 1;
	N.a = utcp_stack_create(&cfg, &ca);
	cfg.local_addr = B_ADDR;
	cfg.isn_secret[0] = 2;
	N.b = utcp_stack_create(&cfg, &cb);
	cr_assert(N.a != NULL && N.b != NULL);
	N.rs = relay_set_create(4, adopt, &N);
	cr_assert_not_null(N.rs);
	cr_assert_eq(utcp_listen(N.b, WEB_PORT, N.rs), 0);
}

/* Replaces the (idle) set by one of <max>, on the same port. */
static void
resize_set(uint32_t max)
{
	cr_assert_eq(relay_count(N.rs), 0);
	cr_assert_eq(utcp_unlisten(N.b, WEB_PORT), 0);
	relay_set_destroy(N.rs);
	N.rs = relay_set_create(max, adopt, &N);
	cr_assert_not_null(N.rs);
	cr_assert_eq(utcp_listen(N.b, WEB_PORT, N.rs), 0);
}

static void step(void);

static void
teardown(void)
{
	struct lpkt *p;

	for (int i = 0; i < N.ncli; i++)
		if (N.cli[i].c != NULL)
			utcp_abort(N.cli[i].c);
	relay_set_destroy(N.rs);
	N.rs = NULL;
	for (int i = 0; i < N.nsvc; i++)
		if (N.svc[i] != -1)
			close(N.svc[i]);
	/* Let the resets land so that no connection is left: in a
	 * -Dpools=passthrough build utcp_stack_destroy() does not free the
	 * buffers of connections still open (LeakSanitizer reports them). */
	for (int i = 0; i < 1000 && (utcp_conn_count(N.a) || utcp_conn_count(N.b)); i++)
		step();
	while ((p = N.head) != NULL) {
		N.head = p->next;
		free(p->data);
		free(p);
	}
	utcp_stack_destroy(N.a);
	utcp_stack_destroy(N.b);
}

/* Delivers every queued packet, and what answering them queues. */
static void
deliver(void)
{
	struct lpkt *p;

	for (int i = 0; (p = N.head) != NULL; i++) {
		cr_assert_lt(i, 1000000, "packet storm on the link");
		N.head = p->next;
		if (N.head == NULL)
			N.tail = &N.head;
		utcp_input(p->to, p->data, p->len);
		free(p->data);
		free(p);
	}
}

/* One loop turn of both hosts, then 1 simulated ms. */
static void
step(void)
{
	deliver();
	relay_poll(N.rs);
	deliver();
	N.now += 1000;
	utcp_tick(N.a);
	utcp_tick(N.b);
	deliver();
}

static void
steps(int n)
{
	while (n-- > 0)
		step();
}

/* Opens a client connection; returns its index once it is established and,
 * when <expect_svc>, once the service holds its fd (N.svc[N.nsvc - 1]). */
static int
cli_open(bool expect_svc)
{
	struct cli *k = &N.cli[N.ncli];
	int nsvc = N.nsvc, i;

	cr_assert_lt(N.ncli, MAXCLI);
	cr_assert_eq(utcp_connect(N.a, B_ADDR, WEB_PORT, 0, k, &k->c), 0);
	N.ncli++;
	for (i = 0; i < 100 && !(k->connected && (!expect_svc || N.nsvc > nsvc)); i++)
		step();
	cr_assert(k->connected, "client %d: no handshake", N.ncli - 1);
	if (expect_svc)
		cr_assert_eq(N.nsvc, nsvc + 1, "client %d: the service got no fd", N.ncli - 1);
	return N.ncli - 1;
}

/* ---- patterned streams: byte i of stream <seed> ---- */

struct stream {
	uint32_t seed;
	uint64_t total;		/* bytes to send (sender side) */
	uint64_t off;		/* bytes sent / received and checked */
	bool eagain;		/* the last write was refused for want of room */
	bool eof;
	int err;		/* reader: -errno seen */
};

static void
fill(const struct stream *s, uint8_t *buf, size_t n)
{
	for (size_t j = 0; j < n; j++)
		buf[j] = stream_byte(s->seed, s->off + j);
}

static void
check(struct stream *s, const uint8_t *buf, size_t n, const char *who)
{
	for (size_t j = 0; j < n; j++)
		if (buf[j] != stream_byte(s->seed, s->off + j))
			cr_assert_fail("%s: byte %llu differs", who,
				       (unsigned long long)(s->off + j));
	s->off += n;
}

/* One end's I/O as utcp has it: bytes moved, 0 at EOF (reads), or -errno. */
typedef ssize_t stream_io_fn(void *end, void *buf, size_t n);

static ssize_t
cli_io_write(void *end, void *buf, size_t n)
{
	return utcp_write(((struct cli *)end)->c, buf, n);
}

static ssize_t
cli_io_read(void *end, void *buf, size_t n)
{
	return utcp_read(((struct cli *)end)->c, buf, n);
}

static ssize_t
svc_io_write(void *end, void *buf, size_t n)
{
	ssize_t w = send(*(int *)end, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	return w == -1 ? -errno : w;
}

static ssize_t
svc_io_read(void *end, void *buf, size_t n)
{
	ssize_t r = read(*(int *)end, buf, n);

	return r == -1 ? -errno : r;
}

/* Writes what <end> takes of <s> (<who> names it in a failure); returns the
 * bytes taken. */
static size_t
stream_write(stream_io_fn *wr, void *end, struct stream *s, const char *who)
{
	static uint8_t buf[CHUNK];
	size_t took = 0;

	s->eagain = false;
	while (s->off < s->total) {
		size_t n = s->total - s->off < CHUNK ? (size_t)(s->total - s->off) : CHUNK;
		ssize_t w;

		fill(s, buf, n);
		w = wr(end, buf, n);
		if (w == -EAGAIN) {
			s->eagain = true;
			break;
		}
		cr_assert_gt(w, 0, "%s write: %zd", who, w);
		s->off += (uint64_t)w;
		took += (size_t)w;
	}
	return took;
}

/* Reads all there is at <end> (at most <max> bytes) and checks it against
 * <s>; sets eof/err. */
static size_t
stream_read(stream_io_fn *rd, void *end, struct stream *s, size_t max, const char *who)
{
	static uint8_t buf[CHUNK];
	size_t got = 0;

	while (got < max) {
		ssize_t n = rd(end, buf, max - got < CHUNK ? max - got : CHUNK);

		if (n > 0) {
			check(s, buf, (size_t)n, who);
			got += (size_t)n;
		} else if (n == 0) {
			s->eof = true;
			break;
		} else {
			if (n != -EAGAIN)
				s->err = (int)n;
			break;
		}
	}
	cr_assert_leq(s->off, s->total, "%s got more than was sent", who);
	return got;
}

/* Client writes what utcp takes; returns the bytes taken. */
static size_t
cli_write(struct cli *k, struct stream *s)
{
	return stream_write(cli_io_write, k, s, "client");
}

/* Client reads all there is (at most <max> bytes); sets eof/err. */
static size_t
cli_read_max(struct cli *k, struct stream *s, size_t max)
{
	return stream_read(cli_io_read, k, s, max, "client");
}

static size_t
cli_read(struct cli *k, struct stream *s)
{
	return cli_read_max(k, s, SIZE_MAX);
}

static size_t
svc_write(int fd, struct stream *s)
{
	return stream_write(svc_io_write, &fd, s, "service");
}

static size_t
svc_read(int fd, struct stream *s)
{
	return stream_read(svc_io_read, &fd, s, SIZE_MAX, "service");
}

/* Steps until <cond> (evaluated once per step: it may do the apps' reads
 * and writes) holds, up to STEPS_MAX simulated ms. */
#define WAIT(cond, what) do {							\
	bool ok_ = false;							\
	for (int w_ = 0; w_ < STEPS_MAX; w_++) {				\
		if ((cond)) {							\
			ok_ = true;						\
			break;							\
		}								\
		step();								\
	}									\
	cr_assert(ok_, "timed out waiting for %s", what);			\
} while (0)

static void
svc_close(int i)
{
	cr_assert_neq(N.svc[i], -1);
	close(N.svc[i]);
	N.svc[i] = -1;
}

/* ---- cases ---- */

TestSuite(relay, .init = setup, .fini = teardown, .timeout = 60);

/* 2 MB up, then 2 MB down, interleaving writes, reads and loop turns as
 * the two apps would; every byte checked, counters exact. */
Test(relay, round_trip_2mb_each_way)
{
	struct stream up_tx = { .seed = 11, .total = 2u << 20 }, up_rx = up_tx;
	struct stream dn_tx = { .seed = 12, .total = 2u << 20 }, dn_rx = dn_tx;
	struct cli *k = &N.cli[cli_open(true)];
	int fd = N.svc[0];
	const uint64_t *st = relay_stats(N.rs);

	cr_assert_eq(relay_count(N.rs), 1);
	cr_assert_eq(st[RELAY_ACCEPTED], 1);
	WAIT((cli_write(k, &up_tx), svc_read(fd, &up_rx), up_rx.off == up_rx.total),
	     "the service to read 2 MB");
	cr_assert(!up_rx.eof && up_rx.err == 0);
	WAIT((svc_write(fd, &dn_tx), cli_read(k, &dn_rx), dn_rx.off == dn_rx.total),
	     "the client to read 2 MB");
	cr_assert(!dn_rx.eof && dn_rx.err == 0);
	cr_assert_eq(st[RELAY_BYTES_UP], 2u << 20);
	cr_assert_eq(st[RELAY_BYTES_DOWN], 2u << 20);
	cr_assert_eq(st[RELAY_RESETS], 0);
	cr_assert_eq(st[RELAY_REFUSED], 0);

	/* Both at once too: full duplex, 2 MB more each way. */
	up_tx.total = up_rx.total = 4u << 20;
	dn_tx.total = dn_rx.total = 4u << 20;
	WAIT((cli_write(k, &up_tx), svc_write(fd, &dn_tx), svc_read(fd, &up_rx), cli_read(k, &dn_rx),
	      up_rx.off == up_rx.total && dn_rx.off == dn_rx.total), "2 MB more each way");
	cr_assert_eq(st[RELAY_BYTES_UP], 4u << 20);
	cr_assert_eq(st[RELAY_BYTES_DOWN], 4u << 20);
	cr_assert(!k->closed);
}

/* Client -> service with the service not reading: the socket fills, then
 * B's receive ring (the window closes), then A's send buffer: utcp_write
 * says -EAGAIN and stays so. A FIN sent while blocked waits behind the
 * bytes. Then the service reads all of it, intact, and EOF. */
Test(relay, backpressure_up)
{
	struct stream tx = { .seed = 21, .total = 8u << 20 }, rx = tx;
	struct cli *k = &N.cli[cli_open(true)];
	struct utcp_conn_info bi;
	int fd = N.svc[0];
	size_t took = 0;

	for (int i = 0; i < 2000; i++) {
		took = cli_write(k, &tx);
		step();
	}
	cr_assert_lt(tx.off, tx.total, "8 MB went nowhere: no back-pressure");
	cr_assert(tx.eagain && took == 0, "the client's writes keep being refused");
	cr_assert_eq(utcp_conn_sendable(k->c), 0);
	utcp_conn_info(N.b_last, &bi);
	cr_assert_eq(bi.rcv_wnd, 0, "B's window closed (ring full: %zu)",
		     utcp_conn_readable(N.b_last));
	cr_assert_eq(utcp_stats(N.b)[UTCP_STAT_OOO_DROP], 0);
	cr_log_info("blocked after %llu bytes: %llu relayed into the socket\n",
		    (unsigned long long)tx.off,
		    (unsigned long long)relay_stats(N.rs)[RELAY_BYTES_UP]);

	tx.total = tx.off;		/* what the client managed to write */
	rx.total = tx.off;
	cr_assert_eq(utcp_shutdown(k->c), 0);
	steps(50);
	WAIT((svc_read(fd, &rx), rx.eof), "the service to read EOF");
	cr_assert_eq(rx.off, tx.total, "EOF came after every byte");
	cr_assert_eq(rx.err, 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_BYTES_UP], tx.total);
	cr_assert(!k->closed);
}

/* Service -> client with the client not reading: A's ring fills, B's send
 * buffer fills, the relay stops reading the socket, and the service's
 * writes hit EAGAIN and stay so. Then the client reads it all. */
Test(relay, backpressure_down)
{
	struct stream tx = { .seed = 31, .total = 8u << 20 }, rx = tx;
	struct cli *k = &N.cli[cli_open(true)];
	int fd = N.svc[0];
	size_t took = 0;

	for (int i = 0; i < 2000; i++) {
		took = svc_write(fd, &tx);
		step();
	}
	cr_assert_lt(tx.off, tx.total, "8 MB went nowhere: no back-pressure");
	cr_assert(tx.eagain && took == 0, "the service's writes keep being refused");
	cr_assert_eq(utcp_stats(N.a)[UTCP_STAT_OOO_DROP], 0);
	cr_log_info("blocked after %llu bytes: %llu relayed into TCP\n", (unsigned long long)tx.off,
		    (unsigned long long)relay_stats(N.rs)[RELAY_BYTES_DOWN]);

	/* The client reads a little at a time: each read opens the window,
	 * the relay refills from the socket, the service writes again. */
	WAIT((svc_write(fd, &tx), cli_read_max(k, &rx, 4000), rx.off == rx.total),
	     "the client to read 8 MB");
	cr_assert_eq(rx.err, 0);
	cr_assert(!rx.eof);
	cr_assert_eq(relay_stats(N.rs)[RELAY_BYTES_DOWN], tx.total);
}

/* The client sends a request and half-closes; the service reads it and
 * EOF, answers, closes; the client reads the answer and EOF, no reset. */
Test(relay, client_half_close)
{
	struct stream rq = { .seed = 41, .total = 300000 }, rq_rx = rq;
	struct stream an = { .seed = 42, .total = 500000 }, an_rx = an;
	struct cli *k = &N.cli[cli_open(true)];
	int fd = N.svc[0];

	/* More than the socket and both TCP buffers hold: the service reads
	 * while the client writes, and the FIN goes after the last byte. */
	WAIT((cli_write(k, &rq), svc_read(fd, &rq_rx), rq.off == rq.total),
	     "the client to write its request");
	cr_assert_eq(utcp_shutdown(k->c), 0);
	WAIT((svc_read(fd, &rq_rx), rq_rx.eof || rq_rx.err != 0), "the service to read EOF");
	cr_assert_eq(rq_rx.off, rq.total);
	cr_assert_eq(rq_rx.err, 0);

	/* Half-closed, the service can still answer. */
	WAIT((svc_write(fd, &an), cli_read(k, &an_rx), an.off == an.total), "the answer to go");
	svc_close(0);
	WAIT((cli_read(k, &an_rx), an_rx.eof || an_rx.err != 0), "the client to read EOF");
	cr_assert_eq(an_rx.err, 0);
	cr_assert_eq(an_rx.off, an.total, "all of the answer, then EOF");
	cr_assert_eq(relay_count(N.rs), 0);
	cr_assert_eq(utcp_stats(N.a)[UTCP_STAT_RST_IN], 0, "orderly, not reset");

	/* The client closes; both stacks wind down. */
	utcp_close(k->c);
	k->c = NULL;
	WAIT(utcp_conn_count(N.a) == 0 && utcp_conn_count(N.b) == 0, "both stacks to empty");
	cr_assert_eq(utcp_stats(N.a)[UTCP_STAT_RST_IN] + utcp_stats(N.b)[UTCP_STAT_RST_IN], 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_RESETS], 0);
}

/* The service answers a request and closes its fd at once (HTTP/1.0
 * style): the client gets the whole answer, then end of stream by FIN. */
Test(relay, service_closes_after_response)
{
	struct stream rq = { .seed = 51, .total = 2000 }, rq_rx = rq;
	struct stream an = { .seed = 52, .total = 200000 }, an_rx = an;
	struct cli *k = &N.cli[cli_open(true)];
	int fd = N.svc[0];

	cli_write(k, &rq);
	cr_assert_eq(rq.off, rq.total);
	WAIT((svc_read(fd, &rq_rx), rq_rx.off == rq.total), "the request");
	/* Closed as soon as the last byte is in the socket: most of the
	 * answer is still there, behind the TCP send buffer, with the EOF. */
	WAIT((svc_write(fd, &an), an.off == an.total), "the answer to go into the socket");
	svc_close(0);
	WAIT((cli_read(k, &an_rx), an_rx.eof || an_rx.err != 0), "the client to read EOF");
	cr_assert_eq(an_rx.err, 0, "end of stream, not %d", an_rx.err);
	cr_assert_eq(an_rx.off, an.total);
	cr_assert(!k->closed || k->err == 0);
	cr_assert_eq(utcp_stats(N.a)[UTCP_STAT_RST_IN], 0, "FIN, not RST");
	cr_assert_eq(relay_count(N.rs), 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_RESETS], 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_BYTES_DOWN], an.total);

	utcp_close(k->c);
	k->c = NULL;
	WAIT(utcp_conn_count(N.a) == 0 && utcp_conn_count(N.b) == 0, "both stacks to empty");
}

/* The client resets mid-stream: the service's fd reports EOF or
 * ECONNRESET, the relay is gone and counted as a reset. */
Test(relay, client_reset)
{
	struct stream rq = { .seed = 61, .total = 100000 }, rq_rx = rq;
	struct stream an = { .seed = 62, .total = 100000 };
	struct cli *k = &N.cli[cli_open(true)];
	int fd = N.svc[0];
	int fds;

	WAIT((cli_write(k, &rq), svc_read(fd, &rq_rx), rq_rx.off == rq.total), "the request");
	svc_write(fd, &an);		/* in flight when the reset comes */
	fds = fd_count();
	utcp_abort(k->c);
	k->c = NULL;
	WAIT((svc_read(fd, &rq_rx), rq_rx.eof || rq_rx.err != 0), "the service to see the end");
	cr_assert(rq_rx.eof || rq_rx.err == -ECONNRESET, "EOF or ECONNRESET, not %d", rq_rx.err);
	cr_assert_eq(rq_rx.off, rq.total, "nothing more arrived");
	cr_assert_eq(relay_count(N.rs), 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_RESETS], 1);
	cr_assert_eq(fd_count(), fds - 1, "the relay closed its end");
	WAIT(utcp_conn_count(N.b) == 0, "B to release the connection");
}

/* A set of one: the second connection is reset at accept, the first keeps
 * working, and the slot is reused once the first is gone. */
Test(relay, set_full_refuses)
{
	struct stream tx = { .seed = 71, .total = 300000 }, rx = tx;
	struct stream dn = { .seed = 72, .total = 300000 }, dn_rx = dn;
	struct cli *k0, *k1, *k2;
	int fds;

	resize_set(1);
	k0 = &N.cli[cli_open(true)];
	fds = fd_count();
	k1 = &N.cli[cli_open(false)];
	WAIT(k1->closed, "the second connection to be reset");
	cr_assert_eq(k1->err, -ECONNRESET);
	cr_assert_eq(N.nsvc, 1, "no fd for the refused one");
	cr_assert_eq(relay_stats(N.rs)[RELAY_REFUSED], 1);
	cr_assert_eq(relay_stats(N.rs)[RELAY_ACCEPTED], 1);
	cr_assert_eq(relay_count(N.rs), 1);
	cr_assert_eq(fd_count(), fds, "no fd leaked");

	/* The first is untouched. */
	WAIT((cli_write(k0, &tx), svc_read(N.svc[0], &rx), svc_write(N.svc[0], &dn),
	      cli_read(k0, &dn_rx), rx.off == tx.total && dn_rx.off == dn.total),
	     "the first connection to carry 300 kB each way");
	cr_assert(!k0->closed);

	/* Once it is gone, its slot serves the next. */
	svc_close(0);
	WAIT((cli_read(k0, &dn_rx), dn_rx.eof), "the first to end");
	cr_assert_eq(relay_count(N.rs), 0);
	k2 = &N.cli[cli_open(true)];
	cr_assert(!k2->closed);
	cr_assert_eq(relay_count(N.rs), 1);
}

/* The service refuses (adopt says -EAGAIN): the connection is reset, both
 * ends of the socketpair closed; a later connection is served. */
Test(relay, adopt_refused)
{
	struct stream tx = { .seed = 81, .total = 10000 }, rx = tx;
	int fds = fd_count();
	struct cli *k;

	N.adopt_ret = -EAGAIN;
	k = &N.cli[cli_open(false)];
	WAIT(k->closed, "the refused connection to be reset");
	cr_assert_eq(k->err, -ECONNRESET);
	cr_assert_eq(N.nsvc, 0);
	cr_assert_eq(relay_count(N.rs), 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_REFUSED], 1);
	cr_assert_eq(relay_stats(N.rs)[RELAY_ACCEPTED], 0);
	cr_assert_eq(fd_count(), fds, "no fd leaked");
	WAIT(utcp_conn_count(N.b) == 0, "B to release it");

	N.adopt_ret = 0;
	k = &N.cli[cli_open(true)];
	WAIT((cli_write(k, &tx), svc_read(N.svc[0], &rx), rx.off == tx.total), "the next one");
	cr_assert_eq(relay_stats(N.rs)[RELAY_ACCEPTED], 1);
}

/* Destroying the set with relays open (one busy both ways, one idle):
 * the service's fds end, the clients are reset, nothing is left. */
Test(relay, destroy_with_open_relays)
{
	struct stream up = { .seed = 91, .total = 8u << 20 }, dn = { .seed = 92, .total = 8u << 20 };
	struct stream up_rx = up, idle_rx = { .seed = 0, .total = 0 };
	int fds = fd_count();
	struct cli *k0, *k1;

	k0 = &N.cli[cli_open(true)];
	k1 = &N.cli[cli_open(true)];
	cr_assert_eq(fd_count(), fds + 4, "a socketpair each: the service's end, the set's");
	for (int i = 0; i < 20; i++) {
		cli_write(k0, &up);
		svc_write(N.svc[0], &dn);
		step();
	}
	svc_read(N.svc[0], &up_rx);
	cr_assert_eq(relay_count(N.rs), 2);

	relay_set_destroy(N.rs);
	N.rs = NULL;
	cr_assert_eq(fd_count(), fds + 4 - 3, "the set closed its ends and its epoll fd");
	WAIT((svc_read(N.svc[0], &up_rx), svc_read(N.svc[1], &idle_rx),
	      (up_rx.eof || up_rx.err != 0) && (idle_rx.eof || idle_rx.err != 0)),
	     "both service fds to end");
	cr_assert(up_rx.eof || up_rx.err == -ECONNRESET, "busy: %d", up_rx.err);
	cr_assert(idle_rx.eof, "idle: EOF, not %d", idle_rx.err);
	WAIT(k0->closed && k1->closed, "both clients to be reset");
	cr_assert_eq(k0->err, -ECONNRESET);
	cr_assert_eq(k1->err, -ECONNRESET);
	WAIT(utcp_conn_count(N.b) == 0, "B to release both");
	svc_close(0);
	svc_close(1);
	cr_assert_eq(fd_count(), fds - 1, "only the set's epoll fd is gone");
}

/* The client writes and half-closes before the handshake is over: the
 * bytes ride the handshake's last ACK, in the same input as the accept
 * (the listener's user is still the set when the receive hook sees them).
 * The service gets them all, then EOF. */
Test(relay, data_and_fin_with_handshake)
{
	struct stream rq = { .seed = 101, .total = 5000 }, rq_rx = rq;
	struct cli *k = &N.cli[N.ncli++];

	cr_assert_eq(utcp_connect(N.a, B_ADDR, WEB_PORT, 0, k, &k->c), 0);
	cli_write(k, &rq);
	cr_assert_eq(rq.off, rq.total);
	cr_assert_eq(utcp_shutdown(k->c), 0);
	WAIT(N.nsvc == 1, "the service to get the connection");
	WAIT((svc_read(N.svc[0], &rq_rx), rq_rx.eof || rq_rx.err != 0), "the service to read EOF");
	cr_assert_eq(rq_rx.err, 0);
	cr_assert_eq(rq_rx.off, rq.total);
	cr_assert_eq(relay_stats(N.rs)[RELAY_BYTES_UP], rq.total);
}

/* The service closes without reading the request (as on a parse error
 * with more input pending): the client's bytes were lost, so the client is
 * reset rather than told an orderly end; the answer written before the
 * close may or may not arrive first. */
Test(relay, service_closes_on_unread_request)
{
	struct stream rq = { .seed = 111, .total = 20000 };
	struct stream an = { .seed = 112, .total = 3000 }, an_rx = an;
	struct cli *k = &N.cli[cli_open(true)];

	cli_write(k, &rq);
	steps(5);
	cr_assert_eq(relay_stats(N.rs)[RELAY_BYTES_UP], rq.total, "the request is in the socket");
	svc_write(N.svc[0], &an);
	svc_close(0);
	WAIT(k->closed, "the client to be reset");
	cr_assert_eq(k->err, -ECONNRESET);
	cli_read(k, &an_rx);
	cr_assert_leq(an_rx.off, an.total);
	cr_assert_eq(relay_count(N.rs), 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_RESETS], 1);
}

/* The client vanishes (the link goes dead) while the service is sending:
 * B retransmits, gives up, and the service's fd ends; counted as a reset. */
Test(relay, client_vanishes)
{
	struct stream an = { .seed = 121, .total = 1u << 20 };
	struct stream none = { .seed = 0, .total = 0 };
	struct cli *k = &N.cli[cli_open(true)];
	int fd = N.svc[0];

	N.link_down = true;
	svc_write(fd, &an);
	cr_assert(an.eagain, "more than fits in the socket and B's buffer");
	WAIT((svc_read(fd, &none), none.eof || none.err != 0), "the service's fd to end");
	cr_assert(none.eof || none.err == -ECONNRESET, "EOF or ECONNRESET, not %d", none.err);
	cr_assert_eq(relay_count(N.rs), 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_RESETS], 1);
	cr_assert_eq(utcp_stats(N.b)[UTCP_STAT_TIMEOUT_RESET], 1);
	cr_assert_eq(utcp_conn_count(N.b), 0);
	cr_assert(!k->closed, "A never heard");
	cr_log_info("timed out after %.1f simulated s\n", (double)(N.now - 1000000) / 1e6);
}

/* The service answers and closes; the client's next bytes cross the close
 * and reach B before the lcore's relay_poll has read the answer (input
 * comes first in a loop turn). The client must still get the answer, then
 * the reset its unread bytes call for. It used to get the reset alone: the
 * late bytes met the closed socket in relay_up, which reset at once and
 * dropped the answer still in the socket. */
Test(relay, answer_before_reset_when_client_bytes_cross_close)
{
	struct stream rq = { .seed = 131, .total = 100 }, rq_rx = rq;
	struct stream more = { .seed = 133, .total = 100 };
	struct stream an = { .seed = 132, .total = 3000 }, an_rx = an;
	struct cli *k = &N.cli[cli_open(true)];

	cli_write(k, &rq);
	WAIT((svc_read(N.svc[0], &rq_rx), rq_rx.off == rq.total), "the request");
	svc_write(N.svc[0], &an);
	cr_assert_eq(an.off, an.total);
	svc_close(0);
	cli_write(k, &more);		/* crosses the close */
	deliver();			/* input before relay_poll, as in the lcore loop */
	WAIT(k->closed, "the client to be reset");
	cr_assert_eq(k->err, -ECONNRESET, "its bytes were never read: reset");
	cli_read(k, &an_rx);
	cr_assert_eq(an_rx.off, an.total, "the answer came first (%llu of %llu bytes)",
		     (unsigned long long)an_rx.off, (unsigned long long)an.total);
	cr_assert_eq(relay_count(N.rs), 0);
	cr_assert_eq(relay_stats(N.rs)[RELAY_BYTES_DOWN], an.total);
	cr_assert_eq(relay_stats(N.rs)[RELAY_RESETS], 1);
}
