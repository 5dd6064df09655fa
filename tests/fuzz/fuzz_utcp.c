/* libFuzzer target: the user-space TCP core's input (dataplane/tcp/),
 * utcp_input() on a stack with a listener on port 5061.
 *
 * A fresh stack per input. A scripted peer first completes one handshake
 * (SYN with MSS, window scale, SACK-permitted and timestamps; ACK of the
 * SYN-ACK), so that the fuzzed input starts on an established connection.
 * The input is then a list of operations, each an opcode byte and its
 * arguments (missing bytes read as zero):
 *   segment      on one of 8 peer flows (flow 0 is the established one):
 *                flags, sequence and acknowledgment as offsets from what
 *                each side has sent (or the peer's previous ACK again, for
 *                duplicate ACKs), window, options (timestamps, SACK
 *                blocks, or raw bytes), payload length; checksums right;
 *                to the listener, to the port of an active open towards
 *                that flow, or to a fuzzed port;
 *   corrupt      the same, then one byte of the IPv4/TCP header set to a
 *                fuzzed value, checksums fixed or not;
 *   raw          arbitrary bytes handed over as an IPv4 packet;
 *   icmp         an ICMP message with a correct checksum;
 *   time         the clock moves on, timers run;
 *   app          write, read, peek/consume, shutdown, close, abort,
 *                connect, listen/unlisten, the zero-copy hook's appetite, a
 *                full tx queue (output -ENOBUFS) on or off, utcp_flush().
 * Every packet the stack emits is checked (IPv4 header, lengths,
 * checksums), and every connection the app holds is released at the end
 * before the stack is destroyed, so LeakSanitizer sees what is lost. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/base/be.h"
#include "dataplane/tcp/utcp.h"
#include "dataplane/tcp/utcp_csum.h"
#include "tests/fuzz/fuzz.h"

#define LOCAL	0xc6120002u	/* 198.18.0.2 */
#define PEER	0xc6120001u
#define LPORT	5061
#define NFLOW	8
#define NCONN	32		/* > max_conns: the table never overflows */

enum { OP_SEG, OP_CORRUPT, OP_RAW, OP_ICMP, OP_TIME, OP_APP, OP__COUNT };

struct flow {
	uint16_t port;
	uint32_t snd_nxt;	/* the peer's next sequence number */
	uint32_t stack_nxt;	/* highest seq + len the stack sent on this flow */
	uint32_t stack_ts;	/* its last TSval */
	uint32_t last_ack;	/* the last acknowledgment the peer sent */
	uint16_t active_lport;	/* our port of an active open to this flow */
	bool seen;
};

struct fz {
	struct utcp_stack *st;
	uint64_t now;
	struct utcp_conn *conn[NCONN];
	bool closed[NCONN];
	struct flow flow[NFLOW];
	uint32_t ts;
	size_t zc_max;
	bool auto_read;
	bool dev_full;		/* output answers -ENOBUFS (tx queue full) */
	struct fz_in in;
};

static struct fz F;
static uint8_t pkt[70000];
static uint8_t scratch[65536];

static uint8_t
rd8(void)
{
	return fz_rd8(&F.in);
}

static uint16_t
rd16(void)
{
	return (uint16_t)(rd8() << 8 | rd8());
}

static uint32_t
rd32(void)
{
	return (uint32_t)rd16() << 16 | rd16();
}

static bool
seq_gt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

static struct flow *
flow_of(uint16_t port)
{
	int i;

	for (i = 0; i < NFLOW; i++)
		if (F.flow[i].port == port)
			return &F.flow[i];
	return NULL;
}

/* Checks and records every packet the stack sends. */
static int
out_cb(void *arg, const void *p_, size_t len)
{
	const uint8_t *p = p_, *th, *o;
	size_t tl, hl, i;
	struct flow *f;
	uint32_t end;

	fz_check(len >= 20 && p[0] == 0x45 && be_get16(p + 2) == len);
	fz_check(utcp_csum_fold(utcp_csum_add(0, p, 20)) == 0);
	fz_check(be_get32(p + 12) == LOCAL);
	if (F.dev_full)
		return -ENOBUFS;	/* not sent: the stack offers it again */
	if (p[9] != 6)
		return 0;
	th = p + 20;
	tl = len - 20;
	fz_check(tl >= 20 && utcp_csum_tcp(LOCAL, be_get32(p + 16), th, tl) == 0);
	hl = (size_t)(th[12] >> 4) * 4;
	fz_check(hl >= 20 && hl <= tl);
	for (o = th + 20, i = 0; i < hl - 20;) {	/* options well-formed */
		if (o[i] == 0)
			break;
		if (o[i] == 1) {
			i++;
			continue;
		}
		fz_check(i + 1 < hl - 20 && o[i + 1] >= 2 && i + o[i + 1] <= hl - 20);
		if (o[i] == 8 && o[i + 1] == 10)
			if ((f = flow_of(be_get16(th + 2))) != NULL)
				f->stack_ts = be_get32(o + i + 2);
		i += o[i + 1];
	}
	f = flow_of(be_get16(th + 2));
	if (f != NULL && be_get32(p + 16) == PEER && be_get16(th) != LPORT && (th[13] & 0x02))
		f->active_lport = be_get16(th);	/* our SYN: the flow's replies go there */
	if (f != NULL && be_get32(p + 16) == PEER) {
		end = be_get32(th + 4) + (uint32_t)(tl - hl) + !!(th[13] & 0x02) + !!(th[13] & 0x01);
		if (!f->seen || seq_gt(end, f->stack_nxt))
			f->stack_nxt = end;
		f->seen = true;
	}
	return 0;
}

static int
slot_of(const struct utcp_conn *c)
{
	int i;

	for (i = 0; i < NCONN; i++)
		if (F.conn[i] == c)
			return i;
	return -1;
}

static void
ev_cb(void *arg, struct utcp_conn *c, enum utcp_event ev)
{
	ssize_t n;
	int i;

	switch (ev) {
	case UTCP_EV_ACCEPTED:
		fz_check(slot_of(c) < 0);
		i = slot_of(NULL);
		fz_check(i >= 0);
		F.conn[i] = c;
		F.closed[i] = false;
		break;
	case UTCP_EV_READABLE:
		if (F.auto_read)
			while ((n = utcp_read(c, scratch, sizeof(scratch))) > 0)
				fz_check((size_t)n <= sizeof(scratch));
		break;
	case UTCP_EV_CLOSED:
		if ((i = slot_of(c)) >= 0)
			F.closed[i] = true;
		break;
	default:
		break;
	}
}

static size_t
recv_cb(void *arg, struct utcp_conn *c, const void *d, size_t len)
{
	size_t n = len < F.zc_max ? len : F.zc_max;

	if (n > 0)	/* touch it all: ASan checks the span */
		memcpy(scratch, d, n < sizeof(scratch) ? n : sizeof(scratch));
	return n;
}

static uint64_t
clock_cb(void *arg)
{
	return F.now;
}

/* Builds IPv4 + TCP into pkt[]; returns the length. */
static size_t
build(uint32_t saddr, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
      uint8_t flags, uint16_t wnd, const uint8_t *opt, size_t ol, size_t plen)
{
	uint8_t *th = pkt + 20;
	size_t hl = 20 + ol, tl = hl + plen, i;

	utcp_csum_ip_header(pkt, saddr, LOCAL, 6, (uint16_t)(20 + tl), 1);
	be_put16(th, sport);
	be_put16(th + 2, dport);
	be_put32(th + 4, seq);
	be_put32(th + 8, ack);
	th[12] = (uint8_t)((hl / 4) << 4);
	th[13] = flags;
	be_put16(th + 14, wnd);
	be_put32(th + 16, 0);
	memcpy(th + 20, opt, ol);
	for (i = 0; i < plen; i++)
		th[hl + i] = (uint8_t)(seq + i);
	be_put16(th + 16, utcp_csum_tcp(saddr, LOCAL, th, tl));
	return 20 + tl;
}

static void
input(size_t len)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);	/* exact size: ASan sees overreads */

	if (copy == NULL)
		return;
	memcpy(copy, pkt, len);
	utcp_input(F.st, copy, len);
	free(copy);
}

/* Options: 0 timestamps, 1 none, 2 timestamps + SACK blocks, 3 raw bytes,
 * 4 the SYN set (MSS, window scale, SACK-permitted, timestamps). */
static size_t
options(struct flow *f, uint8_t *o)
{
	uint8_t mode = rd8() % 5, n, k;
	size_t ol = 0;

	if (mode == 0 || mode == 2 || mode == 4) {
		if (mode == 4) {
			o[ol++] = 2;
			o[ol++] = 4;
			be_put16(o + ol, (uint16_t)(rd16() % 9000));
			ol += 2;
			o[ol++] = 1;
			o[ol++] = 3;
			o[ol++] = 3;
			o[ol++] = rd8() % 16;
			o[ol++] = 1;
			o[ol++] = 1;
			o[ol++] = 4;
			o[ol++] = 2;
		}
		o[ol++] = 1;
		o[ol++] = 1;
		o[ol++] = 8;
		o[ol++] = 10;
		F.ts += rd8();
		be_put32(o + ol, F.ts);
		be_put32(o + ol + 4, f->stack_ts + (uint32_t)(int8_t)rd8());
		ol += 8;
	}
	if (mode == 2) {
		n = 1 + rd8() % 3;
		o[ol++] = 1;
		o[ol++] = 1;
		o[ol++] = 5;
		o[ol++] = (uint8_t)(2 + 8 * n);
		for (k = 0; k < n; k++) {
			uint32_t a = f->stack_nxt + (uint32_t)(int16_t)rd16();

			be_put32(o + ol, a);
			be_put32(o + ol + 4, a + rd16());
			ol += 8;
		}
	}
	if (mode == 3) {
		n = rd8() % 41;
		for (k = 0; k < n; k++)
			o[ol++] = rd8();
		while (ol % 4 != 0)
			o[ol++] = 0;
	}
	return ol;
}

/* A segment on flow <f>; returns its length in pkt[]. */
static size_t
segment(void)
{
	struct flow *f = &F.flow[rd8() % NFLOW];
	uint8_t flags = rd8(), o[64], misc = rd8();
	int16_t dseq = (int16_t)rd16(), dack = (int16_t)rd16();
	uint16_t wnd = rd16(), plen;
	uint16_t dport = (misc & 0x80) ? rd16() : LPORT;
	uint32_t saddr = (misc & 0x40) ? rd32() : PEER;
	uint32_t seq = f->snd_nxt + (uint32_t)dseq, ack;
	size_t ol = options(f, o);

	if ((misc & 0x20) && f->active_lport != 0)
		dport = f->active_lport;
	ack = (misc & 0x10) ? f->last_ack : f->stack_nxt + (uint32_t)dack;
	if (flags & 0x10)
		f->last_ack = ack;

	plen = rd16() % 3000;
	if (flags & 0x02)
		plen = (misc & 1) ? plen : 0;
	/* The peer believes in-sequence segments: what it sent is sent. */
	if (dseq == 0 && !(flags & 0x04) && (flags & 0x10 || flags & 0x02) &&
	    (dport == LPORT || dport == f->active_lport) && saddr == PEER)
		f->snd_nxt += plen + !!(flags & 0x02) + !!(flags & 0x01);
	return build(saddr, f->port, dport, seq, ack, flags, wnd, o, ol, plen);
}

static void
op_corrupt(void)
{
	size_t len = segment(), at = rd16() % len;
	uint8_t how = rd8();

	pkt[at] = rd8();
	if (how & 1) {
		be_put16(pkt + 10, 0);
		be_put16(pkt + 10, utcp_csum_fold(utcp_csum_add(0, pkt, 20)));
	}
	if ((how & 2) && len >= 40) {
		be_put16(pkt + 36, 0);
		be_put16(pkt + 36, utcp_csum_tcp(be_get32(pkt + 12), LOCAL, pkt + 20, len - 20));
	}
	if (how & 4)
		len = len - rd16() % (len + 1);		/* truncated on the wire */
	input(len);
}

static void
op_raw(void)
{
	size_t len = rd16() % 2048, i;

	for (i = 0; i < len; i++)
		pkt[i] = rd8();
	input(len);
}

static void
op_icmp(void)
{
	size_t plen = rd16() % 1500, i;
	uint8_t *ic = pkt + 20;

	pkt[0] = 0x45;
	pkt[1] = 0;
	be_put16(pkt + 2, (uint16_t)(28 + plen));
	be_put32(pkt + 4, 0);
	pkt[8] = 64;
	pkt[9] = 1;
	be_put16(pkt + 10, 0);
	be_put32(pkt + 12, PEER);
	be_put32(pkt + 16, LOCAL);
	be_put16(pkt + 10, utcp_csum_fold(utcp_csum_add(0, pkt, 20)));
	ic[0] = rd8() & 0x0f;	/* 8: echo request */
	ic[1] = rd8() & 0x03;
	be_put16(ic + 2, 0);
	be_put32(ic + 4, rd32());
	for (i = 0; i < plen; i++)
		ic[8 + i] = (uint8_t)i;
	be_put16(ic + 2, utcp_csum_fold(utcp_csum_add(0, ic, 8 + plen)));
	input(28 + plen);
}

static void
op_time(void)
{
	static const uint64_t scale[4] = { 1000, 10000, 100000, 1000000 };
	uint8_t b = rd8();
	uint64_t us = (uint64_t)(b >> 2) * scale[b & 3] + 1;
	uint64_t end = F.now + us, step = us / 64 > 1000 ? us / 64 : 1000;

	while (F.now < end) {	/* like a poll loop, a bit late under load */
		F.now = F.now + step < end ? F.now + step : end;
		utcp_tick(F.st);
	}
}

static void
release(int i, bool abortive)
{
	if (F.conn[i] == NULL)
		return;
	if (abortive)
		utcp_abort(F.conn[i]);
	else
		utcp_close(F.conn[i]);
	F.conn[i] = NULL;
	F.closed[i] = false;
}

static void
op_app(void)
{
	uint8_t sub = rd8() % 12, idx = rd8() % NCONN;
	struct utcp_conn *c = F.conn[idx], *nc;
	const void *ptr[2];
	size_t len[2], n;
	ssize_t r;
	int k;

	switch (sub) {
	case 0:		/* write */
		if (c != NULL) {
			n = rd16() % sizeof(scratch);
			memset(scratch, 'w', n);
			r = utcp_write(c, scratch, n);
			fz_check(r <= (ssize_t)n);
		}
		break;
	case 1:		/* read everything */
		if (c != NULL)
			while ((r = utcp_read(c, scratch, 1 + rd16() % sizeof(scratch))) > 0)
				;
		break;
	case 2:		/* peek, consume a part */
		if (c != NULL && (k = utcp_peek(c, ptr, len)) > 0) {
			fz_check(k <= 2);
			n = len[0] + (k > 1 ? len[1] : 0);
			fz_check(n <= utcp_conn_readable(c));
			memcpy(scratch, ptr[0], len[0] < sizeof(scratch) ? len[0] : sizeof(scratch));
			utcp_consume(c, rd16() % (n + 1));
		}
		break;
	case 3:
		if (c != NULL)
			(void)utcp_shutdown(c);
		break;
	case 4:
		release(idx, false);
		break;
	case 5:
		release(idx, true);
		break;
	case 6:		/* active open to a peer flow */
		k = slot_of(NULL);
		if (k >= 0 && utcp_connect(F.st, PEER, F.flow[idx % NFLOW].port, 0, NULL, &nc) == 0)
			F.conn[k] = nc;
		break;
	case 7:
		if (rd8() & 1)
			(void)utcp_unlisten(F.st, LPORT);
		else
			(void)utcp_listen(F.st, LPORT, NULL);
		break;
	case 8:
		F.zc_max = rd16();
		break;
	case 9:
		F.auto_read = !F.auto_read;
		break;
	case 10:
		F.dev_full = !F.dev_full;
		break;
	case 11:
		utcp_flush(F.st);
		break;
	}
	if (c != NULL && F.conn[idx] == c) {
		struct utcp_conn_info info;

		utcp_conn_info(c, &info);
		(void)utcp_conn_sendable(c);
		(void)utcp_conn_readable(c);
		(void)utcp_state_name(info.state);
	}
}

/* The handshake of flow 0: SYN with the usual options, ACK of the SYN-ACK. */
static void
handshake(void)
{
	static const uint8_t syn_opt[] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2,
					   1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0 };
	uint8_t ack_opt[12] = { 1, 1, 8, 10 };
	struct flow *f = &F.flow[0];

	input(build(PEER, f->port, LPORT, f->snd_nxt, 0, 0x02, 65535, syn_opt, sizeof(syn_opt), 0));
	f->snd_nxt++;
	be_put32(ack_opt + 4, 2);
	be_put32(ack_opt + 8, f->stack_ts);
	input(build(PEER, f->port, LPORT, f->snd_nxt, f->stack_nxt, 0x10, 65535, ack_opt,
		    sizeof(ack_opt), 0));
	F.ts = 2;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct utcp_callbacks cb = { out_cb, ev_cb, clock_cb, NULL, recv_cb };
	struct utcp_config cfg;
	int i, ops = 0;

	memset(&F, 0, sizeof(F));
	F.in = (struct fz_in){ data, size, 0 };
	F.now = 1000000;
	for (i = 0; i < NFLOW; i++) {
		F.flow[i].port = (uint16_t)(40000 + i);
		F.flow[i].snd_nxt = 1000000u + 7919u * (uint32_t)i;
	}
	utcp_config_init(&cfg);
	cfg.local_addr = LOCAL;
	cfg.max_conns = 16;
	cfg.sndbuf = 16384;
	cfg.rcvbuf = 16384;
	cfg.synq_max = 4;
	cfg.max_tw = 8;
	for (i = 0; i < 16; i++) {
		cfg.isn_secret[i] = (uint8_t)(i * 7 + 1);
		cfg.steer_key[i] = (uint8_t)(i * 13 + 5);
	}
	if (size > 0 && (data[0] & 0x80)) {	/* a second stack personality */
		cfg.no_timestamps = data[0] & 1;
		cfg.no_wscale = data[0] & 2;
		cfg.no_sack = data[0] & 4;
		cfg.syncookies = !(data[0] & 8);
		cfg.ooo_max = 4096;
		cfg.buf_mem_max = 3 * 32768;
		F.in.pos = 1;
	}
	F.st = utcp_stack_create(&cfg, &cb);
	fz_check(F.st != NULL);
	fz_check(utcp_listen(F.st, LPORT, NULL) == 0);
	handshake();
	fz_check(F.conn[0] != NULL);	/* a well-formed handshake is accepted */

	while (F.in.pos < F.in.len && ops++ < 4096) {
		switch (rd8() % OP__COUNT) {
		case OP_SEG:
			input(segment());
			break;
		case OP_CORRUPT:
			op_corrupt();
			break;
		case OP_RAW:
			op_raw();
			break;
		case OP_ICMP:
			op_icmp();
			break;
		case OP_TIME:
			op_time();
			break;
		case OP_APP:
			op_app();
			break;
		}
		for (i = 0; i < NCONN; i++) {
			if (F.closed[i]) {	/* an app closes what is over */
				release(i, false);
			} else if (F.conn[i] != NULL) {
				struct utcp_conn_info info;

				/* The congestion window's unit: at least the
				 * stack's floor (64), at most our MSS. */
				utcp_conn_info(F.conn[i], &info);
				fz_check(info.mss >= 64 && info.mss <= cfg.mss);
				fz_check(utcp_conn_readable(F.conn[i]) <= cfg.rcvbuf);
			}
		}
	}
	for (i = 0; i < NCONN; i++)
		release(i, i & 1);
	/* Let closing connections run their course, then tear down. */
	for (i = 0; i < 8; i++) {
		F.now += 20000000;
		utcp_tick(F.st);
	}
	utcp_stack_destroy(F.st);
	F.st = NULL;
	return 0;
}
