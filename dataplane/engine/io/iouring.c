/* The kernel-socket I/O backend on io_uring ([io] kernel_io = io_uring): the
 * same sockets and listener as io/kernel.c, fewer system calls.
 *
 * Per lcore one ring. The listener has one multishot accept; every
 * connection one multishot receive into buffers the lcore provides (a
 * buffer ring: the kernel picks a free buffer per completion, the lcore
 * hands it back once conn_input() took the bytes). Output is copied out of
 * tlsterm into a send buffer of the lcore's and queued as one send per
 * connection; everything queued in a loop turn goes to the kernel in the
 * next io_uring_enter, which also waits for completions: one system call per
 * loop turn where epoll needs epoll_wait plus a read per readable and a send
 * per written connection. The wake-up eventfd is read by the ring too.
 *
 * Lifetimes: every operation the kernel still holds for a connection holds
 * the connection (conn_hold); its last completion releases it, so a closed
 * connection's memory outlives its late completions. Closing cancels them.
 *
 * Degrades: iouring_usable() says whether this kernel has what the backend
 * needs (rings, buffer rings, multishot accept and receive: Linux 6.0); the
 * engine falls back to epoll with a log line when it does not. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include <liburing.h>

#include "dataplane/base/log.h"
#include "dataplane/engine/engine_int.h"
#include "dataplane/engine/io/iouring.h"
#include "dataplane/tls/tlsterm.h"

#define BGID		1		/* our buffer group */
#define SEND_CHUNK	(64 * 1024)	/* most bytes one send takes from tlsterm */
#define SEND_SMALL	(4096 - 32)	/* a small send buffer's bytes (one page) */
#define LARGE_KEPT	64		/* large send buffers kept for reuse */

/* What a completion is about: the low 3 bits of its user_data. Connection
 * operations carry the struct conn pointer above them (objects are 8-byte
 * aligned); the lcore's own carry a generation. */
enum {
	OP_RECV = 1,
	OP_SEND,
	OP_ACCEPT,
	OP_WAKE,
	OP_IGNORE,		/* cancellations */
};
#define OP_MASK		7u

/* A send in flight: bytes copied out of tlsterm, sent from <off>. Small
 * (SEND_SMALL bytes, most deliveries) or large (SEND_CHUNK). */
struct sendbuf {
	struct sendbuf *next;		/* on the free list */
	uint32_t len, off;
	bool large;
	char data[];
};

struct uring_lc {
	struct io_uring ring;
	bool enabled;			/* the ring was enabled on the lcore thread */
	struct io_uring_buf_ring *br;
	char *bufs;
	uint32_t nbufs, bufsz;
	unsigned recycled;		/* buffers given back since the last advance */
	uint64_t accept_gen;		/* user_data of the armed accept */
	bool accept_armed;
	uint64_t wake_val;
	struct sendbuf *free_sb[2];	/* small, large: kept for reuse, not zeroed */
	uint32_t nfree_sb[2];
};

static inline struct uring_lc *
ulc(const struct lcore_ctx *lc)
{
	return lc->io_lcore;
}

static inline uint64_t
conn_tag(struct conn *c, unsigned op)
{
	return (uint64_t)(uintptr_t)c | op;
}

/* An SQE, submitting what is queued when the ring is full. NULL only when
 * even that fails. */
static struct io_uring_sqe *
sqe_get(struct lcore_ctx *lc)
{
	struct uring_lc *u = ulc(lc);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (sqe == NULL && u->enabled) {
		ctr_inc(lc, CTR_IO_SYSCALLS);
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	if (sqe == NULL)
		LOG(ERR, IO, "lcore %u: io_uring submission queue full", lc->pub.idx);
	return sqe;
}

/* Send buffers for <n> bytes come from a free list of small or large ones
 * (no zeroing); as many small ones as the ring has entries are kept, and
 * LARGE_KEPT large ones. */
static struct sendbuf *
sb_get(struct uring_lc *u, size_t n)
{
	bool large = n > SEND_SMALL;
	struct sendbuf *sb = u->free_sb[large];

	if (sb == NULL) {
		sb = malloc(sizeof(*sb) + (large ? SEND_CHUNK : SEND_SMALL));
		if (sb != NULL)
			sb->large = large;
		return sb;
	}
	u->free_sb[large] = sb->next;
	u->nfree_sb[large]--;
	return sb;
}

static void
sb_put(struct lcore_ctx *lc, struct sendbuf *sb)
{
	struct uring_lc *u = ulc(lc);
	uint32_t keep = sb->large ? LARGE_KEPT : lc->e->conf.uring_entries;

	if (u->nfree_sb[sb->large] >= keep) {
		free(sb);
		return;
	}
	sb->next = u->free_sb[sb->large];
	u->free_sb[sb->large] = sb;
	u->nfree_sb[sb->large]++;
}

/* ---- what the kernel offers ------------------------------------------- */

int
iouring_usable(char *why, size_t whylen)
{
	struct utsname u;
	struct io_uring ring;
	struct io_uring_probe *p;
	unsigned major = 0, minor = 0;
	int rc;

	if (uname(&u) == 0)
		sscanf(u.release, "%u.%u", &major, &minor);
	if (major < 6) {
		snprintf(why, whylen, "kernel %s lacks multishot receive (needs Linux 6.0)",
			 u.release);
		return -ENOTSUP;
	}
	rc = io_uring_queue_init(8, &ring, 0);
	if (rc < 0) {
		snprintf(why, whylen, "io_uring_setup: %s%s", strerror(-rc),
			 rc == -EPERM ? " (kernel.io_uring_disabled, or a seccomp filter)" : "");
		return rc;
	}
	p = io_uring_get_probe_ring(&ring);
	rc = 0;
	if (p == NULL || !io_uring_opcode_supported(p, IORING_OP_ACCEPT) ||
	    !io_uring_opcode_supported(p, IORING_OP_RECV) ||
	    !io_uring_opcode_supported(p, IORING_OP_SEND) ||
	    !io_uring_opcode_supported(p, IORING_OP_READ) ||
	    !io_uring_opcode_supported(p, IORING_OP_ASYNC_CANCEL)) {
		snprintf(why, whylen, "io_uring lacks accept, recv, send, read or cancel");
		rc = -ENOTSUP;
	}
	if (p != NULL)
		io_uring_free_probe(p);
	io_uring_queue_exit(&ring);
	return rc;
}

/* ---- arming ----------------------------------------------------------- */

static void
arm_accept(struct lcore_ctx *lc)
{
	struct uring_lc *u = ulc(lc);
	struct io_uring_sqe *sqe;

	if (lc->listen_fd == -1 || u->accept_armed || (sqe = sqe_get(lc)) == NULL)
		return;
	/* Blocking sockets: the ring does the waiting, never a read(). */
	io_uring_prep_multishot_accept(sqe, lc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	u->accept_gen += 8;
	io_uring_sqe_set_data64(sqe, u->accept_gen | OP_ACCEPT);
	u->accept_armed = true;
}

static void
arm_wake(struct lcore_ctx *lc)
{
	struct io_uring_sqe *sqe = sqe_get(lc);

	if (sqe == NULL)
		return;
	io_uring_prep_read(sqe, lc->wake_fd, &ulc(lc)->wake_val, sizeof(uint64_t), 0);
	io_uring_sqe_set_data64(sqe, OP_WAKE);
}

static void
arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->rx_armed || c->rd_eof || c->fd == -1 || (sqe = sqe_get(c->lc)) == NULL)
		return;
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, conn_tag(c, OP_RECV));
	c->rx_armed = true;
	conn_hold(c);
}

static void
cancel(struct lcore_ctx *lc, uint64_t tag)
{
	struct io_uring_sqe *sqe = sqe_get(lc);

	if (sqe == NULL)
		return;
	io_uring_prep_cancel64(sqe, tag, 0);
	io_uring_sqe_set_data64(sqe, OP_IGNORE);
}

/* ---- the lcore -------------------------------------------------------- */

static int
setup_ring(struct lcore_ctx *lc, char *err, size_t errlen)
{
	struct uring_lc *u = ulc(lc);
	const struct engine_conf *cf = &lc->e->conf;
	struct io_uring_params p;
	struct io_uring_buf_reg reg;
	size_t brsz;
	int rc;

	/* One submitter, task work only when we wait: fewer interruptions.
	 * Enabled later on the lcore's own thread (R_DISABLED). Older kernels
	 * get the plain ring. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
	p.cq_entries = cf->uring_entries * 4;
	rc = io_uring_queue_init_params(cf->uring_entries, &u->ring, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = cf->uring_entries * 4;
		rc = io_uring_queue_init_params(cf->uring_entries, &u->ring, &p);
		u->enabled = rc == 0;
	}
	if (rc < 0) {
		u->ring.ring_fd = -1;
		snprintf(err, errlen, "io_uring_setup: %s", strerror(-rc));
		return rc;
	}
	/* The buffer ring and its buffers; pages are touched as used. */
	u->nbufs = cf->uring_bufs;
	u->bufsz = cf->uring_buf_size;
	brsz = u->nbufs * sizeof(struct io_uring_buf);
	if (posix_memalign((void **)&u->br, 4096, (brsz + 4095) & ~(size_t)4095) != 0 ||
	    (u->bufs = malloc((size_t)u->nbufs * u->bufsz)) == NULL) {
		snprintf(err, errlen, "io_uring: out of memory for %u receive buffers", u->nbufs);
		return -ENOMEM;
	}
	io_uring_buf_ring_init(u->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)u->br;
	reg.ring_entries = u->nbufs;
	reg.bgid = BGID;
	rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (rc < 0) {
		snprintf(err, errlen, "io_uring: cannot register the buffer ring: %s",
			 strerror(-rc));
		return rc;
	}
	for (uint32_t i = 0; i < u->nbufs; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * u->bufsz, u->bufsz, (uint16_t)i,
				      io_uring_buf_ring_mask(u->nbufs), (int)i);
	io_uring_buf_ring_advance(u->br, (int)u->nbufs);
	return 0;
}

static int
uring_listen_open(struct lcore_ctx *lc, char *err, size_t errlen)
{
	int fd = io_kernel_listen_socket(&lc->e->conf, err, errlen);

	if (fd < 0)
		return fd;
	lc->listen_fd = fd;
	arm_accept(lc);
	return 0;
}

static int
uring_lcore_init(struct lcore_ctx *lc, char *err, size_t errlen)
{
	struct uring_lc *u = calloc(1, sizeof(*u));
	int rc;

	if (u == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	u->ring.ring_fd = -1;
	lc->io_lcore = u;
	rc = setup_ring(lc, err, errlen);
	if (rc != 0)
		return rc;
	lc->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (lc->wake_fd == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	arm_wake(lc);
	return uring_listen_open(lc, err, errlen);
}

static void
uring_listen_close(struct lcore_ctx *lc)
{
	struct uring_lc *u = ulc(lc);

	if (lc->listen_fd == -1)
		return;
	if (u->accept_armed)
		cancel(lc, u->accept_gen | OP_ACCEPT);
	close(lc->listen_fd);
	lc->listen_fd = -1;
}

static void
uring_lcore_fini(struct lcore_ctx *lc)
{
	struct uring_lc *u = ulc(lc);

	if (lc->listen_fd != -1)
		close(lc->listen_fd);
	lc->listen_fd = -1;
	if (u != NULL) {
		if (u->ring.ring_fd != -1)
			io_uring_queue_exit(&u->ring);	/* cancels what is left */
		for (int k = 0; k < 2; k++)
			while (u->free_sb[k] != NULL) {
				struct sendbuf *sb = u->free_sb[k];

				u->free_sb[k] = sb->next;
				free(sb);
			}
		free(u->br);
		free(u->bufs);
		free(u);
	}
	lc->io_lcore = NULL;
	if (lc->wake_fd != -1)
		close(lc->wake_fd);
	lc->wake_fd = -1;
}

/* ---- connections ------------------------------------------------------ */

static void
accepted(struct lcore_ctx *lc, int fd)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct conn *c;
	int one = 1;

	if (lc->listen_fd == -1) {	/* arrived after the listener closed */
		close(fd);
		return;
	}
	memset(&peer, 0, sizeof(peer));
	getpeername(fd, (struct sockaddr *)&peer, &plen);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(lc, fd, &peer);
	if (c == NULL) {
		close(fd);
		return;
	}
	arm_recv(c);
}

static int
uring_flush(struct conn *c)
{
	struct uring_lc *u = ulc(c->lc);
	struct io_uring_sqe *sqe;
	struct sendbuf *sb;
	const void *p;
	size_t n;

	if (c->tx_busy || c->fd == -1)
		return 0;	/* the completion flushes the rest */
	n = tlsterm_pending_out(c->tls, &p);
	if (n == 0)
		return 0;
	sb = sb_get(u, n);
	if (sb == NULL)
		return -1;
	sb->len = n < (sb->large ? SEND_CHUNK : SEND_SMALL) ? (uint32_t)n :
		  (sb->large ? SEND_CHUNK : SEND_SMALL);
	sb->off = 0;
	memcpy(sb->data, p, sb->len);
	tlsterm_consume_out(c->tls, sb->len);
	sqe = sqe_get(c->lc);
	if (sqe == NULL) {
		sb_put(c->lc, sb);
		return -1;
	}
	io_uring_prep_send(sqe, c->fd, sb->data, sb->len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, conn_tag(c, OP_SEND));
	c->io_handle = sb;
	c->tx_busy = true;
	conn_hold(c);
	return 0;
}

static void
uring_close(struct conn *c)
{
	if (c->fd == -1)
		return;
	/* The kernel holds the socket while an operation does: cancel them
	 * (their completions release the connection). */
	if (c->rx_armed)
		cancel(c->lc, conn_tag(c, OP_RECV));
	if (c->tx_busy)
		cancel(c->lc, conn_tag(c, OP_SEND));
	if (c->rx_armed || c->tx_busy) {
		/* A draining lcore waits for those completions too. */
		c->io_closing = true;
		c->lc->io_streams++;
	}
	close(c->fd);
	c->fd = -1;
}

/* An operation of <c> ended: the last one of a closed connection no
 * longer keeps its lcore from finishing a drain. */
static void
op_ended(struct conn *c)
{
	if (c->io_closing && !c->rx_armed && !c->tx_busy) {
		c->io_closing = false;
		c->lc->io_streams--;
	}
}

static void
recv_done(struct lcore_ctx *lc, struct conn *c, const struct io_uring_cqe *cqe)
{
	struct uring_lc *u = ulc(lc);
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

		if (cqe->res > 0 && c->fd != -1 && c->state != CONN_DEAD)
			conn_input(c, u->bufs + (size_t)bid * u->bufsz, (size_t)cqe->res);
		/* conn_input copied what it needs: the buffer goes back. */
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * u->bufsz, u->bufsz, bid,
				      io_uring_buf_ring_mask(u->nbufs), (int)u->recycled);
		u->recycled++;
	}
	if (cqe->res == 0 && c->fd != -1 && c->state != CONN_DEAD) {
		/* The peer closed its side: flush what we owe, then close. */
		c->rd_eof = true;
		conn_close(c, true);
	} else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED &&
		   c->fd != -1 && c->state != CONN_DEAD) {
		conn_close(c, false);
	}
	if (more)
		return;
	c->rx_armed = false;
	/* Out of buffers (given back by now), or the kernel ended it: again,
	 * while the connection lives. */
	if (c->fd != -1 && c->state != CONN_DEAD && !c->rd_eof)
		arm_recv(c);
	op_ended(c);
	conn_release(c);
}

static void
send_done(struct lcore_ctx *lc, struct conn *c, int res)
{
	struct sendbuf *sb = c->io_handle;

	if (res > 0 && c->fd != -1) {
		ctr_add(lc, CTR_BYTES_OUT, res);
		c->last_io_s = lc->pub.now_s;
		sb->off += (uint32_t)res;
		if (sb->off < sb->len) {	/* short send: the rest first */
			struct io_uring_sqe *sqe = sqe_get(lc);

			if (sqe != NULL) {
				io_uring_prep_send(sqe, c->fd, sb->data + sb->off, sb->len - sb->off,
						   MSG_NOSIGNAL);
				io_uring_sqe_set_data64(sqe, conn_tag(c, OP_SEND));
				return;
			}
			res = -ENOMEM;
		}
	}
	sb_put(c->lc, sb);
	c->io_handle = NULL;
	c->tx_busy = false;
	if (res <= 0 && c->fd != -1 && c->state != CONN_DEAD)
		conn_close(c, false);
	else if (c->fd != -1)
		conn_kick(c);	/* what queued meanwhile; the reaper also ends a CLOSING one */
	op_ended(c);
	conn_release(c);
}

static void
completion(struct lcore_ctx *lc, const struct io_uring_cqe *cqe)
{
	struct uring_lc *u = ulc(lc);
	uint64_t tag = io_uring_cqe_get_data64(cqe);

	switch (tag & OP_MASK) {
	case OP_RECV:
		recv_done(lc, (struct conn *)(uintptr_t)(tag & ~(uint64_t)OP_MASK), cqe);
		break;
	case OP_SEND:
		send_done(lc, (struct conn *)(uintptr_t)(tag & ~(uint64_t)OP_MASK), cqe->res);
		break;
	case OP_ACCEPT:
		if (cqe->res >= 0)
			accepted(lc, cqe->res);
		else if (cqe->res == -EMFILE || cqe->res == -ENFILE)
			LOG(WARNING, IO, "accept: %s (raise the open-file limit)",
			    strerror(-cqe->res));
		if (!(cqe->flags & IORING_CQE_F_MORE) && tag == (u->accept_gen | OP_ACCEPT)) {
			u->accept_armed = false;
			arm_accept(lc);		/* while listening */
		}
		break;
	case OP_WAKE:
		arm_wake(lc);
		break;
	default:
		break;
	}
}

static void
uring_poll(struct lcore_ctx *lc, int timeout_ms)
{
	struct uring_lc *u = ulc(lc);
	struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
					.tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int rc;

	if (!u->enabled) {
		/* First turn, on the lcore's thread: it becomes the submitter. */
		/* liburing 2.3 declares io_uring_enable_rings() but does not
		 * export it: the system call itself. */
		rc = (int)syscall(__NR_io_uring_register, u->ring.ring_fd,
				  IORING_REGISTER_ENABLE_RINGS, NULL, 0);
		if (rc == -1)
			rc = -errno;
		if (rc < 0)
			LOG(ERR, IO, "lcore %u: io_uring_enable_rings: %s", lc->pub.idx,
			    strerror(-rc));
		u->enabled = true;
	}
	/* Everything queued since the last turn goes in, and we wait for
	 * something to happen: one system call. */
	ctr_inc(lc, CTR_IO_SYSCALLS);
	if (timeout_ms > 0)
		rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	else
		rc = io_uring_submit_and_get_events(&u->ring);
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
		LOG(ERR, IO, "lcore %u: io_uring_enter: %s", lc->pub.idx, strerror(-rc));
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		completion(lc, cqe);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
	if (u->recycled > 0) {
		io_uring_buf_ring_advance(u->br, (int)u->recycled);
		u->recycled = 0;
	}
}

const struct io_ops io_iouring_ops = {
	.name = "kernel",
	.lcore_init = uring_lcore_init,
	.lcore_fini = uring_lcore_fini,
	.listen_open = uring_listen_open,
	.listen_close = uring_listen_close,
	.poll = uring_poll,
	.flush = uring_flush,
	.close = uring_close,
};
