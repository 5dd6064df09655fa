/* The array's peer links (control/peerlink.c) between endpoints in one process
 * on 127.0.0.1: a full mesh carrying 10,000 frames each way in order;
 * peers with a foreign certificate or none refused while the mesh stays up;
 * garbage and an oversized frame closing only their own connection; a
 * receiver that stops reading cut at the sender's bound (resync callback)
 * and the link back once it reads again; links restored after an endpoint
 * is destroyed and created again; the send ring filled to its bound while
 * the link thread is held (refusals counted, every accepted frame delivered
 * once, in order, across the ring's end) and filled from two threads at
 * once. Certificates (a cluster CA, node
 * certificates, a foreign CA) are made with the openssl CLI per test. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/peerlink.h"
#include "dataplane/base/clock.h"
#include "dataplane/peer/peerframe.h"

#define IDS	16
#define STREAMS	4	/* a RELAY's seq >> 40: one ordered stream per sending thread */

struct ep {
	struct peerlink	*p;
	uint32_t	id;
	uint16_t	port;
	char		cert[64];
	atomic_ullong	got[IDS];	/* RELAY frames received, per sender */
	atomic_ullong	disorder;	/* RELAY seq not above the last one of its stream */
	atomic_ullong	skips;		/* RELAY seq not the last one + 1 of its stream */
	atomic_ullong	body_bytes;	/* RELAY bodies received, all senders */
	uint64_t	last[IDS][STREAMS];	/* link thread only */
	atomic_int	up[IDS];
	atomic_int	resyncs;
	atomic_bool	stall;		/* recv blocks while set */
	uint64_t	sent[IDS];	/* test thread: next seq per destination */
};

static char dir[] = "/tmp/parley-peer-XXXXXX";

static void
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void
make_certs(void)
{
	cr_assert_not_null(mkdtemp(dir));
	sh("cd %s && ("
	   "ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	   "-keyout $1.key -out $1.pem -days 2 -subj /CN=$1; } && "
	   "leaf() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	   "-keyout $1.key -out $1.csr -subj /CN=$1 && openssl x509 -req -in $1.csr "
	   "-CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem -days 2; } && "
	   "ca ca && ca foreign && for n in n1 n2 n3 n4; do leaf $n ca; done && "
	   "leaf alien foreign) >/dev/null 2>&1", dir);
}

static void
rm_certs(void)
{
	sh("rm -rf %s", dir);
}

static void
on_recv(void *arg, uint32_t node, const struct peerframe *f)
{
	struct ep *e = arg;
	unsigned s = (unsigned)(f->seq >> 40) % STREAMS;
	uint64_t *last;

	if (f->type != PEERFRAME_RELAY || node >= IDS)
		return;
	last = &e->last[node][s];
	if (f->seq <= *last && *last != 0)
		atomic_fetch_add(&e->disorder, 1);
	if (f->seq != (*last != 0 ? *last + 1 : ((uint64_t)s << 40) + 1))
		atomic_fetch_add(&e->skips, 1);
	*last = f->seq;
	atomic_fetch_add(&e->body_bytes, f->u.post.body_len);
	atomic_fetch_add(&e->got[node], 1);
	while (atomic_load(&e->stall))
		usleep(1000);
}

static void
on_state(void *arg, uint32_t node, bool up)
{
	struct ep *e = arg;

	if (node < IDS)
		atomic_store(&e->up[node], up);
}

static void
on_resync(void *arg, uint32_t node)
{
	struct ep *e = arg;

	atomic_fetch_add(&e->resyncs, 1);
}

/* An endpoint with node id <id> and the certificate <cert> ("n1", ...),
 * trusting <ca>, on <port> (0: any). <cfg> (optional) gives limits. */
static void
ep_start(struct ep *e, uint32_t id, const char *cert, const char *ca, uint16_t port,
	 const struct peerlink_config *cfg)
{
	struct peerlink_callbacks cb = { .recv = on_recv, .state = on_state, .resync = on_resync,
				     .arg = e };
	struct peerlink_config c = cfg != NULL ? *cfg : (struct peerlink_config){ 0 };
	char listen[32], cap[128], certp[128], keyp[128], err[512] = "";

	e->id = id;
	snprintf(e->cert, sizeof(e->cert), "%s", cert);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(cap, sizeof(cap), "%s/%s.pem", dir, ca);
	snprintf(certp, sizeof(certp), "%s/%s.pem", dir, cert);
	snprintf(keyp, sizeof(keyp), "%s/%s.key", dir, cert);
	c.node_id = id;
	c.cluster = c.cluster != NULL ? c.cluster : "test";
	c.listen = listen;
	c.ca = cap;
	c.cert = certp;
	c.key = keyp;
	e->p = peerlink_create(&c, &cb, err, sizeof(err));
	cr_assert_not_null(e->p, "peerlink_create: %s", err);
	e->port = peerlink_port(e->p);
}

static void
ep_stop(struct ep *e)
{
	peerlink_destroy(e->p);
	e->p = NULL;
}

/* Each of <n> endpoints gets all of them as members. */
static void
mesh(struct ep **es, unsigned n)
{
	struct peerlink_member m[8];
	unsigned i;

	for (i = 0; i < n; i++) {
		m[i].id = es[i]->id;
		snprintf(m[i].addr, sizeof(m[i].addr), "127.0.0.1:%u", es[i]->port);
	}
	/* the lower id dials: tell the higher ids first, so that no first
	 * dial meets a listener that does not know its dialer yet (it would be
	 * refused and redialed, and a link would come up twice) */
	for (i = n; i-- > 0;)
		cr_assert_eq(peerlink_set_members(es[i]->p, m, n), 0);
}

static struct peerlink_stats
link_of(struct ep *e, uint32_t id, struct peerlink_totals *g)
{
	struct peerlink_stats st[PEERLINK_NODES_MAX], none = { .id = id };
	unsigned n = peerlink_links(e->p, st, PEERLINK_NODES_MAX, g), i;

	for (i = 0; i < n && i < PEERLINK_NODES_MAX; i++)
		if (st[i].id == id)
			return st[i];
	return none;
}

static bool
wait_for(bool (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t end = clock_mono_ms() + ms;

	while (clock_mono_ms() < end) {
		if (cond(arg))
			return true;
		usleep(10000);
	}
	return cond(arg);
}

struct meshq {
	struct ep	**es;
	unsigned	n;
};

static bool
all_up(void *arg)
{
	struct meshq *q = arg;
	unsigned i, j;

	for (i = 0; i < q->n; i++)
		for (j = 0; j < q->n; j++)
			if (i != j && (!atomic_load(&q->es[i]->up[q->es[j]->id]) ||
				       link_of(q->es[i], q->es[j]->id, NULL).state != PEERLINK_UP))
				return false;
	return true;
}

static void
wait_mesh(struct ep **es, unsigned n)
{
	struct meshq q = { es, n };

	cr_assert(wait_for(all_up, &q, 15000), "the mesh did not come up");
}

/* A RELAY of <body_len> bytes with the next seq for <to>. */
static int
send_relay(struct ep *from, struct ep *to, size_t body_len)
{
	static uint8_t body[16384];
	struct peerframe f = { .type = PEERFRAME_RELAY, .epoch = 1 };
	int rc;

	memcpy(f.room, "roomroomroomroom", PEERFRAME_ROOM_LEN);
	f.seq = from->sent[to->id] + 1;
	f.u.post = (struct peerframe_post){ .time_ms = 1, .author = "sip:a@t", .author_len = 7,
					    .body = body, .body_len = (uint32_t)body_len };
	rc = peerlink_send(from->p, to->id, &f);
	if (rc == 0)
		from->sent[to->id]++;
	return rc;
}

/* Sends <n> frames, waiting out -ENOBUFS. */
static void
send_many(struct ep *from, struct ep *to, unsigned n)
{
	unsigned i;
	int rc;

	for (i = 0; i < n; i++) {
		while ((rc = send_relay(from, to, 64 + i % 200)) == -ENOBUFS)
			usleep(1000);
		cr_assert_eq(rc, 0);
	}
}

struct gotq {
	struct ep	*e;
	uint32_t	from;
	uint64_t	want;
};

static bool
got_all(void *arg)
{
	struct gotq *q = arg;

	return atomic_load(&q->e->got[q->from]) >= q->want;
}

static void
wait_got(struct ep *e, struct ep *from, uint64_t want)
{
	struct gotq q = { e, from->id, want };

	cr_assert(wait_for(got_all, &q, 30000), "node %u got %llu of %llu frames from node %u",
		  e->id, (unsigned long long)atomic_load(&e->got[from->id]),
		  (unsigned long long)want, from->id);
	cr_assert_eq(atomic_load(&e->got[from->id]), want, "frames doubled");
	cr_assert_eq(atomic_load(&e->disorder), 0, "frames out of order");
}

static struct ep eps[5];

TestSuite(peerlink, .init = make_certs, .fini = rm_certs, .timeout = 120);

Test(peerlink, mesh_of_three_carries_10000_frames_each_way)
{
	struct ep *es[3] = { &eps[0], &eps[1], &eps[2] };
	unsigned i, j, k;

	ep_start(es[0], 1, "n1", "ca", 0, NULL);
	ep_start(es[1], 2, "n2", "ca", 0, NULL);
	ep_start(es[2], 3, "n3", "ca", 0, NULL);
	mesh(es, 3);
	wait_mesh(es, 3);
	for (k = 0; k < 10; k++)
		for (i = 0; i < 3; i++)
			for (j = 0; j < 3; j++)
				if (i != j)
					send_many(es[i], es[j], 1000);
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++)
			if (i != j)
				wait_got(es[j], es[i], 10000);
	/* one frame to both others, encoded once */
	for (k = 0; k < 1000; k++) {
		static const uint32_t both[2] = { 2, 3 };
		struct peerframe f = { .type = PEERFRAME_RELAY, .seq = 10001 + k };
		int rc;

		f.u.post = (struct peerframe_post){ .author = "sip:a@t", .author_len = 7 };
		while ((rc = peerlink_send_many(es[0]->p, both, 2, &f)) == -ENOBUFS)
			usleep(1000);
		cr_assert_eq(rc, 0);
	}
	wait_got(es[1], es[0], 11000);
	wait_got(es[2], es[0], 11000);
	for (i = 1; i < 3; i++) {
		struct peerlink_stats st = link_of(es[0], es[i]->id, NULL);

		cr_assert_eq(st.ups, 1, "one connection per pair, up once");
		cr_assert_geq(st.frames_out, 10000);
		cr_log_info("node 1 to %u: %llu frames in %llu writes", es[i]->id,
			    (unsigned long long)st.frames_out, (unsigned long long)st.batches);
		cr_assert_lt(st.batches, st.frames_out / 2, "frames leave in batches");
		cr_assert_eq(st.drops, 0);
		cr_assert_eq(st.cuts, 0);
	}
	for (i = 0; i < 3; i++)
		ep_stop(es[i]);
}

/* A TLS client on 127.0.0.1:<port> trusting <ca>, showing <cert> (or no
 * certificate when NULL), that writes <len> bytes of <data> once the
 * handshake is done and reads until the server closes. Returns true when
 * the server closed the connection within 5 s. */
static bool
raw_client(uint16_t port, const char *ca, const char *cert, const void *data, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	char path[128], buf[256];
	bool closed = false;
	SSL_CTX *x;
	SSL *s;
	int fd, r;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_neq(fd, -1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (ca == NULL) {	/* not TLS at all */
		cr_assert_eq(write(fd, data, len), (ssize_t)len);
		closed = read(fd, buf, sizeof(buf)) >= 0 || errno != EAGAIN;
		close(fd);
		return closed;
	}
	x = SSL_CTX_new(TLS_client_method());
	snprintf(path, sizeof(path), "%s/%s.pem", dir, ca);
	cr_assert_eq(SSL_CTX_load_verify_locations(x, path, NULL), 1);
	if (cert != NULL) {
		snprintf(path, sizeof(path), "%s/%s.pem", dir, cert);
		cr_assert_eq(SSL_CTX_use_certificate_chain_file(x, path), 1);
		snprintf(path, sizeof(path), "%s/%s.key", dir, cert);
		cr_assert_eq(SSL_CTX_use_PrivateKey_file(x, path, SSL_FILETYPE_PEM), 1);
	}
	s = SSL_new(x);
	SSL_set_fd(s, fd);
	if (SSL_connect(s) == 1) {
		if (len > 0)
			SSL_write(s, data, (int)len);
		while ((r = SSL_read(s, buf, sizeof(buf))) > 0)
			;
		r = SSL_get_error(s, r);
		closed = r != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE;
	} else {
		closed = true;
	}
	ERR_clear_error();
	SSL_free(s);
	SSL_CTX_free(x);
	close(fd);
	return closed;
}

struct ctrq {
	struct ep	*e;
	uint64_t	tls, bad;
};

static bool
counted(void *arg)
{
	struct ctrq *q = arg;
	struct peerlink_totals g;

	link_of(q->e, 0, &g);
	return g.refused_tls >= q->tls && g.bad_frames >= q->bad;
}

/* Waits until <e> counted at least <tls> refused handshakes and <bad> bad
 * frames; returns the refused handshakes. */
static uint64_t
wait_counted(struct ep *e, uint64_t tls, uint64_t bad)
{
	struct ctrq q = { e, tls, bad };
	struct peerlink_totals g;

	cr_assert(wait_for(counted, &q, 10000), "refusals not counted");
	link_of(e, 0, &g);
	cr_assert_eq(g.bad_frames, bad);
	return g.refused_tls;
}

Test(peerlink, foreign_and_missing_certificates_are_refused)
{
	struct ep *es[2] = { &eps[0], &eps[1] };
	struct ep *alien = &eps[2];
	struct peerlink_member m;
	uint64_t refused;

	ep_start(es[0], 5, "n1", "ca", 0, NULL);
	ep_start(es[1], 6, "n2", "ca", 0, NULL);
	mesh(es, 2);
	wait_mesh(es, 2);
	/* node 2 with a foreign CA's certificate dials node 5 (lower dials) */
	ep_start(alien, 2, "alien", "ca", 0, NULL);
	m.id = 5;
	snprintf(m.addr, sizeof(m.addr), "127.0.0.1:%u", es[0]->port);
	cr_assert_eq(peerlink_set_members(alien->p, &m, 1), 0);
	wait_counted(es[0], 1, 0);
	ep_stop(alien);	/* it redials with backoff until now */
	refused = wait_counted(es[0], 1, 0);
	/* a client without a certificate */
	cr_assert(raw_client(es[0]->port, "ca", NULL, "x", 1));
	cr_assert_eq(wait_counted(es[0], refused + 1, 0), refused + 1);
	cr_assert_eq(link_of(es[0], 2, NULL).ups, 0);
	/* the mesh is still up and carries frames */
	cr_assert_eq(link_of(es[0], 6, NULL).state, PEERLINK_UP);
	send_many(es[0], es[1], 100);
	send_many(es[1], es[0], 100);
	wait_got(es[1], es[0], 100);
	wait_got(es[0], es[1], 100);
	cr_assert_eq(link_of(es[0], 6, NULL).ups, 1);
	ep_stop(es[0]);
	ep_stop(es[1]);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

Test(peerlink, garbage_and_oversized_frames_close_only_their_connection)
{
	struct peerlink_config c = { .frame_max = 65536 };
	struct ep *es[2] = { &eps[0], &eps[1] };
	uint8_t bad[PEERFRAME_HDR] = { 0 };
	const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	ep_start(es[0], 1, "n1", "ca", 0, &c);
	ep_start(es[1], 2, "n2", "ca", 0, &c);
	mesh(es, 2);
	wait_mesh(es, 2);
	/* not TLS at all: the handshake fails */
	cr_assert(raw_client(es[1]->port, NULL, NULL, junk, sizeof(junk) - 1));
	cr_assert_eq(wait_counted(es[1], 1, 0), 1);
	/* TLS with a cluster certificate, then text: its length prefix is huge */
	cr_assert(raw_client(es[1]->port, "ca", "n4", junk, sizeof(junk) - 1));
	wait_counted(es[1], 1, 1);
	/* an unknown version */
	put32(bad, PEERFRAME_HDR - 4);
	bad[4] = 9;
	bad[5] = PEERFRAME_HELLO;
	cr_assert(raw_client(es[1]->port, "ca", "n4", bad, sizeof(bad)));
	wait_counted(es[1], 1, 2);
	/* a frame one byte over frame_max */
	put32(bad, 65536 - 4 + 1);
	bad[4] = PEERFRAME_VERSION;
	cr_assert(raw_client(es[1]->port, "ca", "n4", bad, sizeof(bad)));
	wait_counted(es[1], 1, 3);
	/* the link between 1 and 2 never noticed */
	send_many(es[0], es[1], 500);
	send_many(es[1], es[0], 500);
	wait_got(es[1], es[0], 500);
	wait_got(es[0], es[1], 500);
	cr_assert_eq(link_of(es[1], 1, NULL).ups, 1);
	ep_stop(es[0]);
	ep_stop(es[1]);
}

static bool
resynced(void *arg)
{
	struct ep *e = arg;

	return atomic_load(&e->resyncs) > 0;
}

/* The stats are published at the end of the loop turn that ran the callback. */
static bool
cut_seen(void *arg)
{
	return link_of(arg, 2, NULL).cuts > 0;
}

struct upsq {
	struct ep	*a, *b;
	uint64_t	ups;
};

static bool
up_again(void *arg)
{
	struct upsq *q = arg;

	return link_of(q->a, q->b->id, NULL).ups >= q->ups &&
	       link_of(q->a, q->b->id, NULL).state == PEERLINK_UP &&
	       link_of(q->b, q->a->id, NULL).state == PEERLINK_UP;
}

Test(peerlink, a_receiver_that_stops_reading_is_cut_and_comes_back)
{
	struct peerlink_config c = { .queue_max = 256 << 10, .dead_ms = 60000 };
	struct ep *es[2] = { &eps[0], &eps[1] };
	struct upsq q = { &eps[0], &eps[1], 2 };
	struct peerlink_stats st;
	uint64_t before, i;
	int rc;

	ep_start(es[0], 1, "n1", "ca", 0, &c);
	ep_start(es[1], 2, "n2", "ca", 0, &c);
	mesh(es, 2);
	wait_mesh(es, 2);
	atomic_store(&es[1]->stall, true);
	/* 8 KiB frames until the sender's bound cuts the link (kernel buffers
	 * on loopback take a few MB first) */
	for (i = 0; i < 100000 && !resynced(es[0]); i++) {
		rc = send_relay(es[0], es[1], 8192);
		if (rc == -ENOBUFS)
			usleep(1000);
		else
			cr_assert_eq(rc, 0);
	}
	cr_assert(wait_for(resynced, es[0], 10000), "the slow receiver was not cut");
	cr_assert(wait_for(cut_seen, es[0], 1000), "the cut is not in the stats");
	st = link_of(es[0], 2, NULL);
	cr_assert_eq(st.cuts, 1);
	cr_assert_gt(st.drops, 0);
	cr_assert_eq(atomic_load(&es[0]->resyncs), 1);
	atomic_store(&es[1]->stall, false);
	cr_assert(wait_for(up_again, &q, 20000), "the link did not come back");
	before = atomic_load(&es[1]->got[1]);
	send_many(es[0], es[1], 100);
	wait_got(es[1], es[0], before + 100);
	ep_stop(es[0]);
	ep_stop(es[1]);
}

Test(peerlink, links_come_back_after_an_endpoint_restarts)
{
	struct ep *es[2] = { &eps[0], &eps[1] };
	uint16_t port;

	ep_start(es[0], 1, "n1", "ca", 0, NULL);
	ep_start(es[1], 2, "n2", "ca", 0, NULL);
	mesh(es, 2);
	wait_mesh(es, 2);
	send_many(es[0], es[1], 100);
	wait_got(es[1], es[0], 100);
	/* the accepting side goes away and comes back on the same port */
	port = es[1]->port;
	ep_stop(es[1]);
	memset(es[1], 0, sizeof(*es[1]));
	ep_start(es[1], 2, "n2", "ca", port, NULL);
	mesh(es, 2);
	wait_mesh(es, 2);
	cr_assert_geq(link_of(es[0], 2, NULL).ups, 2);
	send_many(es[0], es[1], 100);
	send_many(es[1], es[0], 100);
	wait_got(es[1], es[0], 100);
	wait_got(es[0], es[1], 100);
	/* the dialling side too */
	port = es[0]->port;
	ep_stop(es[0]);
	memset(es[0], 0, sizeof(*es[0]));
	es[0]->sent[2] = 200;	/* node 2 checks that seqs keep rising */
	ep_start(es[0], 1, "n1", "ca", port, NULL);
	mesh(es, 2);
	wait_mesh(es, 2);
	send_many(es[0], es[1], 100);
	wait_got(es[1], es[0], 200);
	ep_stop(es[0]);
	ep_stop(es[1]);
}

static bool
down_seen(void *arg)
{
	struct ep *e = arg;

	return link_of(e, 2, NULL).state != PEERLINK_UP && !atomic_load(&e->up[2]);
}

Test(peerlink, a_silent_peer_is_cut_after_dead_ms)
{
	struct peerlink_config c = { .ping_ms = 100, .dead_ms = 400 };
	struct ep *es[2] = { &eps[0], &eps[1] };
	struct upsq q = { &eps[0], &eps[1], 2 };

	ep_start(es[0], 1, "n1", "ca", 0, &c);
	ep_start(es[1], 2, "n2", "ca", 0, &c);
	mesh(es, 2);
	wait_mesh(es, 2);
	usleep(600 * 1000);	/* pings keep a quiet link up */
	cr_assert_eq(link_of(es[0], 2, NULL).ups, 1);
	atomic_store(&es[1]->stall, true);	/* node 2's thread stops, pings too */
	send_many(es[0], es[1], 1);
	cr_assert(wait_for(down_seen, es[0], 5000), "the silent peer was not cut");
	cr_assert_eq(link_of(es[0], 2, NULL).cuts, 0, "not a queue cut");
	atomic_store(&es[1]->stall, false);
	cr_assert(wait_for(up_again, &q, 10000), "the link did not come back");
	ep_stop(es[0]);
	ep_stop(es[1]);
}

struct helloq {
	struct ep	*e;
	uint64_t	want;
};

static bool
hello_refused(void *arg)
{
	struct helloq *q = arg;
	struct peerlink_totals g;

	link_of(q->e, 0, &g);
	return g.refused_hello >= q->want;
}

static bool
either_refused(void *arg)
{
	struct helloq *qs = arg;

	return hello_refused(&qs[0]) || hello_refused(&qs[1]);
}

Test(peerlink, another_cluster_is_refused_at_hello)
{
	struct peerlink_config other = { .cluster = "other" };
	struct ep *es[2] = { &eps[0], &eps[1] };
	struct helloq qs[2] = { { &eps[0], 1 }, { &eps[1], 1 } };

	ep_start(es[0], 1, "n1", "ca", 0, NULL);
	ep_start(es[1], 2, "n2", "ca", 0, &other);
	mesh(es, 2);
	/* whichever end reads the other's HELLO first refuses it and closes,
	 * maybe before its own HELLO left */
	cr_assert(wait_for(either_refused, qs, 5000));
	usleep(300 * 1000);	/* redials are refused too */
	cr_assert_eq(link_of(es[0], 2, NULL).ups, 0);
	cr_assert_eq(link_of(es[1], 1, NULL).ups, 0);
	ep_stop(es[0]);
	ep_stop(es[1]);
}

Test(peerlink, with_a_name_prefix_a_certificate_must_name_its_node)
{
	struct peerlink_config named = { .name_prefix = "n" };
	struct ep *es[3] = { &eps[0], &eps[1], &eps[2] };
	struct helloq q = { &eps[0], 1 };
	struct ep *two[2] = { &eps[0], &eps[1] };

	/* certificates CN=n1 and CN=n2: their own names */
	ep_start(es[0], 1, "n1", "ca", 0, &named);
	ep_start(es[1], 2, "n2", "ca", 0, &named);
	mesh(two, 2);
	wait_mesh(two, 2);
	/* node 3 showing the certificate of n4 */
	ep_start(es[2], 3, "n4", "ca", 0, &named);
	mesh(es, 3);
	cr_assert(wait_for(hello_refused, &q, 5000));
	cr_assert_eq(link_of(es[0], 3, NULL).ups, 0);
	cr_assert_eq(link_of(es[0], 2, NULL).state, PEERLINK_UP);
	ep_stop(es[0]);
	ep_stop(es[1]);
	ep_stop(es[2]);
}

Test(peerlink, frames_near_frame_max_pass_whole)
{
	struct peerlink_config c = { .queue_max = 32 << 20 };
	struct ep *es[2] = { &eps[0], &eps[1] };
	const size_t big = PEERFRAME_MAX_DEFAULT - PEERFRAME_HDR - 64;
	struct peerframe f = { .type = PEERFRAME_RELAY };
	uint8_t *body = calloc(1, big);
	struct peerframe_post post = { .author = "sip:a@t", .author_len = 7, .body = body };
	unsigned i;

	cr_assert_not_null(body);
	ep_start(es[0], 1, "n1", "ca", 0, &c);
	ep_start(es[1], 2, "n2", "ca", 0, &c);
	mesh(es, 2);
	wait_mesh(es, 2);
	for (i = 0; i < 20; i++) {
		post.body_len = (uint32_t)(big - i);
		f.u.post = post;
		f.seq = i + 1;
		cr_assert_eq(peerlink_send(es[0]->p, 2, &f), 0);
	}
	post.body_len = (uint32_t)PEERFRAME_MAX_DEFAULT;	/* over frame_max */
	f.u.post = post;
	cr_assert_eq(peerlink_send(es[0]->p, 2, &f), -EINVAL);
	wait_got(es[1], es[0], 20);
	cr_assert_eq(atomic_load(&es[1]->body_bytes), 20 * big - 190);
	cr_assert_eq(link_of(es[0], 2, NULL).ups, 1);
	free(body);
	ep_stop(es[0]);
	ep_stop(es[1]);
}

/* The bytes a RELAY of <body_len> from node 1 takes in the send ring for one
 * destination (see peerlink.h, send_max). */
static size_t
ring_bytes(size_t body_len)
{
	struct peerframe f = { .type = PEERFRAME_RELAY, .epoch = 1, .node = 1, .seq = 1 };

	f.u.post = (struct peerframe_post){ .time_ms = 1, .author = "sip:a@t", .author_len = 7,
					    .body_len = (uint32_t)body_len };
	return (peerframe_size(&f) + 12 + 4 + 63) / 64 * 64;
}

/* Holds node <e>'s link thread in its recv callback: a RELAY from <from>
 * arrives while <e> stalls. */
static void
hold_link_thread(struct ep *e, struct ep *from)
{
	uint64_t before = atomic_load(&e->got[from->id]);

	atomic_store(&e->stall, true);
	cr_assert_eq(send_relay(from, e, 64), 0);
	wait_got(e, from, before + 1);
}

Test(peerlink, a_full_send_ring_refuses_and_loses_nothing_it_took)
{
	struct peerlink_config c = { .send_max = 64 << 10, .frame_max = 4096 };
	struct ep *es[2] = { &eps[0], &eps[1] };
	struct peerlink_totals g;
	uint64_t taken = 0, bodies = 0, refused = 0;
	size_t used, len;
	unsigned round, i;
	int rc;

	ep_start(es[0], 1, "n1", "ca", 0, &c);
	ep_start(es[1], 2, "n2", "ca", 0, &c);
	mesh(es, 2);
	wait_mesh(es, 2);
	/* three rounds: the second and third start near the ring's end */
	for (round = 0; round < 3; round++) {
		hold_link_thread(es[0], es[1]);
		used = 0;
		for (i = 0;; i++) {
			len = 40 + (i * 37) % 300;
			rc = send_relay(es[0], es[1], len);
			if (rc == -ENOBUFS)
				break;
			cr_assert_eq(rc, 0);
			used += ring_bytes(len);
			bodies += len;
			taken++;
		}
		refused++;
		cr_log_info("round %u: %u frames, %zu ring bytes taken", round, i, used);
		cr_assert_gt(i, 0);
		cr_assert_leq(used, (size_t)c.send_max, "the ring took more than send_max");
		/* from position 0, full means the next one does not fit; later
		 * rounds cross the ring's end, where at most one record's worth
		 * is padding */
		cr_assert_gt(used + ring_bytes(len) + (round == 0 ? 0 : ring_bytes(339)),
			     (size_t)c.send_max, "refused with room left");
		/* still full: refused again, counted, nothing taken */
		cr_assert_eq(send_relay(es[0], es[1], len), -ENOBUFS);
		refused++;
		peerlink_links(es[0]->p, NULL, 0, &g);
		cr_assert_eq(g.send_refused, refused);
		cr_assert_eq(atomic_load(&es[1]->got[1]), taken - i, "sent while held");
		atomic_store(&es[0]->stall, false);
		wait_got(es[1], es[0], taken);
	}
	cr_assert_eq(atomic_load(&es[1]->body_bytes), bodies);
	cr_assert_eq(atomic_load(&es[1]->skips), 0, "a frame lost or doubled");
	cr_assert_eq(link_of(es[0], 2, NULL).drops, 0);
	ep_stop(es[0]);
	ep_stop(es[1]);
}

struct sender {
	struct ep	*from;
	uint32_t	to;
	unsigned	stream, n;
	uint64_t	bodies, refused;
};

/* Sends <n> RELAYs numbered in its own stream, waiting out -ENOBUFS. */
static void *
sender_run(void *arg)
{
	struct sender *s = arg;
	struct peerframe f = { .type = PEERFRAME_RELAY, .epoch = 1 };
	static const uint8_t body[512];
	unsigned i;
	int rc;

	memcpy(f.room, "roomroomroomroom", PEERFRAME_ROOM_LEN);
	for (i = 0; i < s->n; i++) {
		f.seq = ((uint64_t)s->stream << 40) + i + 1;
		f.u.post = (struct peerframe_post){ .time_ms = 1, .author = "sip:a@t",
						    .author_len = 7, .body = body,
						    .body_len = 16 + (i * 13 + s->stream) % 400 };
		while ((rc = peerlink_send(s->from->p, s->to, &f)) == -ENOBUFS) {
			s->refused++;
			sched_yield();
		}
		if (rc != 0)
			return (void *)(intptr_t)rc;
		s->bodies += f.u.post.body_len;
	}
	return NULL;
}

Test(peerlink, two_threads_sending_at_once_deliver_every_frame_once)
{
	struct peerlink_config c = { .send_max = 32 << 10, .frame_max = 4096 };
	struct ep *es[2] = { &eps[0], &eps[1] };
	struct sender s[2] = { { &eps[0], 2, 1, 20000, 0, 0 }, { &eps[0], 2, 2, 20000, 0, 0 } };
	pthread_t t[2];
	struct peerlink_totals g;
	void *rc;
	unsigned i;

	ep_start(es[0], 1, "n1", "ca", 0, &c);
	ep_start(es[1], 2, "n2", "ca", 0, &c);
	mesh(es, 2);
	wait_mesh(es, 2);
	for (i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, sender_run, &s[i]), 0);
	for (i = 0; i < 2; i++) {
		cr_assert_eq(pthread_join(t[i], &rc), 0);
		cr_assert_null(rc, "peerlink_send returned %d", (int)(intptr_t)rc);
	}
	wait_got(es[1], es[0], s[0].n + s[1].n);
	cr_assert_eq(atomic_load(&es[1]->skips), 0, "a frame lost or doubled");
	/* wait_got's atomic read orders these after the link thread's writes */
	cr_assert_eq(es[1]->last[1][1], ((uint64_t)1 << 40) + s[0].n);
	cr_assert_eq(es[1]->last[1][2], ((uint64_t)2 << 40) + s[1].n);
	cr_assert_eq(atomic_load(&es[1]->body_bytes), s[0].bodies + s[1].bodies);
	peerlink_links(es[0]->p, NULL, 0, &g);
	cr_assert_eq(g.send_refused, s[0].refused + s[1].refused);
	cr_log_info("%llu refusals (ring full) on the way",
		    (unsigned long long)g.send_refused);
	cr_assert_eq(link_of(es[0], 2, NULL).drops, 0);
	ep_stop(es[0]);
	ep_stop(es[1]);
}
