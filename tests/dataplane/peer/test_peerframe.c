/* The peer frame codec: round trips of every type, and strict refusal of
 * malformed input (short, long, unknown type/version/code, lengths that
 * overrun, payloads with bytes left over), byte by byte where it matters. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "dataplane/peer/peerframe.h"

static uint8_t buf[1 << 16];

static struct peerframe
base(unsigned type)
{
	struct peerframe f = { .type = type, .node = 7, .epoch = 0x1122334455667788ull,
			       .seq = 42, .ref = 9 };

	memcpy(f.room, "0123456789abcdef", PEERFRAME_ROOM_LEN);
	return f;
}

static ssize_t
enc(const struct peerframe *f)
{
	ssize_t n = peerframe_encode(f, buf, sizeof(buf));

	cr_assert_gt(n, 0, "encode %s", peerframe_type_name(f->type));
	cr_assert_eq((size_t)n, peerframe_size(f));
	return n;
}

static void
check_hdr(const struct peerframe *a, const struct peerframe *b)
{
	cr_assert_eq(a->type, b->type);
	cr_assert_eq(b->version, PEERFRAME_VERSION);
	cr_assert_eq(a->code, b->code);
	cr_assert_eq(a->node, b->node);
	cr_assert_eq(memcmp(a->room, b->room, PEERFRAME_ROOM_LEN), 0);
	cr_assert_eq(a->epoch, b->epoch);
	cr_assert_eq(a->seq, b->seq);
	cr_assert_eq(a->ref, b->ref);
}

Test(peerframe, hello_round_trip)
{
	struct peerframe f = base(PEERFRAME_HELLO), d;
	ssize_t n;

	f.u.hello.proto = 1;
	f.u.hello.cluster = "prod-eu";
	f.u.hello.cluster_len = 7;
	n = enc(&f);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	check_hdr(&f, &d);
	cr_assert_eq(d.u.hello.proto, 1);
	cr_assert_eq(d.u.hello.cluster_len, 7);
	cr_assert_eq(memcmp(d.u.hello.cluster, "prod-eu", 7), 0);
}

Test(peerframe, post_relay_user_and_empty_round_trip)
{
	static const unsigned types[] = { PEERFRAME_POST_FWD, PEERFRAME_RELAY };
	static const unsigned empty[] = { PEERFRAME_POST_ACK, PEERFRAME_PART_ACK,
					  PEERFRAME_PING, PEERFRAME_PONG };
	struct peerframe f, d;
	unsigned i;
	ssize_t n;

	for (i = 0; i < 2; i++) {
		f = base(types[i]);
		f.u.post = (struct peerframe_post){ .time_ms = 123456, .author = "sip:a@x",
						    .author_len = 7, .body = (const uint8_t *)"hi",
						    .body_len = 2 };
		n = enc(&f);
		cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
		check_hdr(&f, &d);
		cr_assert_eq(d.u.post.time_ms, 123456);
		cr_assert_eq(d.u.post.author_len, 7);
		cr_assert_eq(memcmp(d.u.post.author, "sip:a@x", 7), 0);
		cr_assert_eq(d.u.post.body_len, 2);
		cr_assert_eq(memcmp(d.u.post.body, "hi", 2), 0);
		cr_assert_eq(d.u.post.text_len, 0);
		cr_assert_eq(d.u.post.extra_len, 0);
	}
	/* POST_FWD carries the text and extra attributes too */
	f = base(PEERFRAME_POST_FWD);
	f.u.post = (struct peerframe_post){ .time_ms = 1, .author = "sip:a@x", .author_len = 7,
					    .body = (const uint8_t *)"<chat>hi</chat>", .body_len = 15,
					    .text = (const uint8_t *)"hi", .text_len = 2,
					    .extra = " alert=\"1\"", .extra_len = 10 };
	n = enc(&f);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	cr_assert_eq(d.u.post.text_len, 2);
	cr_assert_eq(memcmp(d.u.post.text, "hi", 2), 0);
	cr_assert_eq(d.u.post.extra_len, 10);
	cr_assert_eq(memcmp(d.u.post.extra, " alert=\"1\"", 10), 0);
	f.u.post.extra_len = PEERFRAME_ATTRS_MAX + 1;
	cr_assert_eq(peerframe_encode(&f, buf, sizeof(buf)), -EINVAL);
	f = base(PEERFRAME_HISTORY_REQ);
	f.u.user.uri = "sip:c@x";
	f.u.user.uri_len = 7;
	n = enc(&f);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	check_hdr(&f, &d);
	cr_assert_eq(memcmp(d.u.user.uri, "sip:c@x", 7), 0);
	f = base(PEERFRAME_PART);
	f.u.user.uri = "sip:b@x";
	f.u.user.uri_len = 7;
	f.u.user.flags = PEERFRAME_USER_MANAGER | PEERFRAME_USER_BATCH;
	n = enc(&f);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	cr_assert_eq(d.u.user.uri_len, 7);
	cr_assert_eq(d.u.user.flags, PEERFRAME_USER_MANAGER | PEERFRAME_USER_BATCH);
	cr_assert_eq(memcmp(d.u.user.uri, "sip:b@x", 7), 0);
	buf[PEERFRAME_HDR] = 0x80;	/* an unknown flag */
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	f.u.user.flags = 0x80;
	cr_assert_eq(peerframe_encode(&f, buf, sizeof(buf)), -EINVAL);
	f = base(PEERFRAME_PRESENCE);
	f.u.notice.body = (const uint8_t *)"<ntc/>";
	f.u.notice.body_len = 6;
	n = enc(&f);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	check_hdr(&f, &d);
	cr_assert_eq(d.u.notice.body_len, 6);
	cr_assert_eq(memcmp(d.u.notice.body, "<ntc/>", 6), 0);
	for (i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		f = base(empty[i]);
		f.code = PEERFRAME_STALE_EPOCH;
		n = enc(&f);
		cr_assert_eq(n, PEERFRAME_HDR);
		cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
		check_hdr(&f, &d);
		cr_assert_str_eq(peerframe_code_name(d.code), "STALE_EPOCH");
	}
}

/* REPL (a copy for a room's replica) is laid out as POST_FWD; REPL_ACK is
 * empty; a REPL cut short or with a byte left over is refused. */
Test(peerframe, repl_round_trip_and_refusals)
{
	struct peerframe f = base(PEERFRAME_REPL), d;
	ssize_t n;

	f.ref = 1;		/* the event type (CHAT) */
	f.u.post = (struct peerframe_post){ .time_ms = 77, .author = "sip:a@x", .author_len = 7,
					    .body = (const uint8_t *)"<chat>hi</chat>", .body_len = 15,
					    .text = (const uint8_t *)"hi", .text_len = 2 };
	n = enc(&f);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	check_hdr(&f, &d);
	cr_assert_str_eq(peerframe_type_name(d.type), "REPL");
	cr_assert_eq(d.u.post.time_ms, 77);
	cr_assert_eq(d.u.post.body_len, 15);
	cr_assert_eq(memcmp(d.u.post.text, "hi", 2), 0);
	cr_assert_eq(d.u.post.extra_len, 0);
	cr_assert_eq(peerframe_decode(buf, n - 1, PEERFRAME_MAX_DEFAULT, &d), 0);
	buf[3]++;		/* one byte more than the payload holds */
	buf[n] = 0;
	cr_assert_eq(peerframe_decode(buf, n + 1, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	f = base(PEERFRAME_REPL_ACK);
	f.code = PEERFRAME_STALE_EPOCH;
	n = enc(&f);
	cr_assert_eq(n, PEERFRAME_HDR);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	check_hdr(&f, &d);
	cr_assert_str_eq(peerframe_type_name(d.type), "REPL_ACK");
	/* an empty type with a payload is refused */
	buf[3]++;
	buf[n] = 0;
	cr_assert_eq(peerframe_decode(buf, n + 1, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
}

Test(peerframe, history_round_trip)
{
	struct peerframe_post recs[3] = {
		{ .seq = 5, .time_ms = 1, .author = "sip:a@x", .author_len = 7 },
		{ .seq = 6, .time_ms = 2, .author = "sip:b@x", .author_len = 7,
		  .body = (const uint8_t *)"<b>x</b>", .body_len = 8 },
		{ .seq = 7, .time_ms = 3, .author = "sip:c@x", .author_len = 7,
		  .body = (const uint8_t *)"y", .body_len = 1 },
	};
	struct peerframe f = base(PEERFRAME_HISTORY), d;
	struct peerframe_post r;
	size_t pos = 0;
	unsigned i = 0;
	ssize_t n;

	f.code = PEERFRAME_MORE;
	f.u.history.recs = recs;
	f.u.history.count = 3;
	n = enc(&f);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	cr_assert_eq(d.u.history.count, 3);
	while (peerframe_history_next(&d, &pos, &r)) {
		cr_assert_lt(i, 3);
		cr_assert_eq(r.seq, recs[i].seq);
		cr_assert_eq(r.time_ms, recs[i].time_ms);
		cr_assert_eq(r.body_len, recs[i].body_len);
		cr_assert_eq(memcmp(r.author, recs[i].author, 7), 0);
		i++;
	}
	cr_assert_eq(i, 3);
	f.u.history.count = 0;
	n = enc(&f);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
	pos = 0;
	cr_assert_not(peerframe_history_next(&d, &pos, &r));
}

/* JOIN_ACK and RESYNC_REQ: a users list, walked like HISTORY's records;
 * every bound is checked both ways. */
Test(peerframe, users_round_trip_and_refusals)
{
	static const unsigned types[] = { PEERFRAME_JOIN_ACK, PEERFRAME_RESYNC_REQ };
	struct peerframe_user v[2] = {
		{ .flags = PEERFRAME_USER_MANAGER, .n = 3, .uri = "sip:a@x", .uri_len = 7 },
		{ .flags = 0, .n = 1, .uri = "sip:bb@x", .uri_len = 8 },
	};
	struct peerframe f, d;
	struct peerframe_user u;
	size_t pos;
	unsigned i, k;
	ssize_t n;

	for (k = 0; k < 2; k++) {
		f = base(types[k]);
		f.u.users.v = v;
		f.u.users.count = 2;
		n = enc(&f);
		cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
		check_hdr(&f, &d);
		cr_assert_eq(d.u.users.count, 2);
		for (pos = 0, i = 0; peerframe_users_next(&d, &pos, &u); i++) {
			cr_assert_lt(i, 2);
			cr_assert_eq(u.flags, v[i].flags);
			cr_assert_eq(u.n, v[i].n);
			cr_assert_eq(u.uri_len, v[i].uri_len);
			cr_assert_eq(memcmp(u.uri, v[i].uri, u.uri_len), 0);
		}
		cr_assert_eq(i, 2);
		/* one user announced more than there are */
		buf[PEERFRAME_HDR + 1] = 3;
		cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d),
			     -PEERFRAME_EPAYLOAD);
		buf[PEERFRAME_HDR + 1] = 2;
		buf[PEERFRAME_HDR + 2] = 0x40;	/* an unknown flag */
		cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d),
			     -PEERFRAME_EPAYLOAD);
		buf[PEERFRAME_HDR + 2] = PEERFRAME_USER_MANAGER;
		buf[PEERFRAME_HDR + 7] = 0;	/* an empty URI */
		buf[PEERFRAME_HDR + 8] = 0;
		cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d),
			     -PEERFRAME_EPAYLOAD);
		/* no users at all is fine */
		f.u.users.count = 0;
		n = enc(&f);
		cr_assert_eq(n, PEERFRAME_HDR + 2);
		cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
		pos = 0;
		cr_assert_not(peerframe_users_next(&d, &pos, &u));
	}
	f.u.users.count = PEERFRAME_USERS_MAX + 1;
	cr_assert_eq(peerframe_encode(&f, buf, sizeof(buf)), -EINVAL);
	v[1].uri_len = 0;
	f.u.users.count = 2;
	cr_assert_eq(peerframe_encode(&f, buf, sizeof(buf)), -EINVAL);
}

Test(peerframe, encode_refuses_out_of_range)
{
	struct peerframe f = base(PEERFRAME_HELLO);

	f.u.hello.cluster = "x";
	f.u.hello.cluster_len = 0;
	cr_assert_eq(peerframe_encode(&f, buf, sizeof(buf)), -EINVAL);
	f.u.hello.cluster_len = PEERFRAME_CLUSTER_MAX + 1;
	cr_assert_eq(peerframe_encode(&f, buf, sizeof(buf)), -EINVAL);
	f = base(PEERFRAME_TYPE_MAX);
	cr_assert_eq(peerframe_encode(&f, buf, sizeof(buf)), -EINVAL);
	f = base(PEERFRAME_PING);
	f.code = PEERFRAME_CODE_MAX;
	cr_assert_eq(peerframe_encode(&f, buf, sizeof(buf)), -EINVAL);
	f.code = 0;
	cr_assert_eq(peerframe_encode(&f, buf, PEERFRAME_HDR - 1), -ENOSPC);
}

/* Every proper prefix of a good frame asks for more, never errs. */
Test(peerframe, prefixes_need_more)
{
	struct peerframe f = base(PEERFRAME_RELAY), d;
	ssize_t n;
	size_t i;

	f.u.post = (struct peerframe_post){ .author = "sip:a@x", .author_len = 7,
					    .body = (const uint8_t *)"hello", .body_len = 5 };
	n = enc(&f);
	for (i = 0; i < (size_t)n; i++)
		cr_assert_eq(peerframe_decode(buf, i, PEERFRAME_MAX_DEFAULT, &d), 0,
			     "prefix %zu", i);
	/* two frames back to back: the first is taken alone */
	memcpy(buf + n, buf, n);
	cr_assert_eq(peerframe_decode(buf, 2 * n, PEERFRAME_MAX_DEFAULT, &d), n);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

Test(peerframe, header_refusals)
{
	struct peerframe f = base(PEERFRAME_PING), d;
	ssize_t n = enc(&f);

	/* too big is known from the 4 length bytes alone */
	put32(buf, 1u << 30);
	cr_assert_eq(peerframe_decode(buf, 4, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_ETOOBIG);
	put32(buf, 4096);
	cr_assert_eq(peerframe_decode(buf, 4, 4096, &d), -PEERFRAME_ETOOBIG);
	put32(buf, PEERFRAME_HDR - 5);
	cr_assert_eq(peerframe_decode(buf, 4, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_ESHORT);
	put32(buf, 0);
	cr_assert_eq(peerframe_decode(buf, 4, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_ESHORT);
	n = enc(&f);
	buf[4] = 2;
	cr_assert_eq(peerframe_decode(buf, PEERFRAME_HDR, PEERFRAME_MAX_DEFAULT, &d),
		     -PEERFRAME_EVERSION);
	n = enc(&f);
	buf[5] = 0;
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_ETYPE);
	buf[5] = PEERFRAME_TYPE_MAX;
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_ETYPE);
	buf[5] = 0xff;
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_ETYPE);
	n = enc(&f);
	buf[6] = 0x01;
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_ECODE);
	/* a PING with a payload byte left over */
	n = enc(&f);
	put32(buf, PEERFRAME_HDR - 4 + 1);
	buf[PEERFRAME_HDR] = 0;
	cr_assert_eq(peerframe_decode(buf, n + 1, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	cr_assert_str_neq(peerframe_strerror(-PEERFRAME_EPAYLOAD), "unknown error");
}

/* A post whose inner lengths overrun, or fall short of, the frame. */
Test(peerframe, payload_lengths_checked)
{
	struct peerframe f = base(PEERFRAME_POST_FWD), d;
	uint8_t save[256];
	ssize_t n;
	size_t author_at = PEERFRAME_HDR + 8, body_at = author_at + 2 + 7;

	f.u.post = (struct peerframe_post){ .author = "sip:a@x", .author_len = 7,
					    .body = (const uint8_t *)"hello", .body_len = 5 };
	n = enc(&f);
	memcpy(save, buf, n);
	buf[author_at + 1] = 200;	/* author runs past the end */
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	memcpy(buf, save, n);
	buf[author_at] = 0xff;		/* author over PEERFRAME_URI_MAX */
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	memcpy(buf, save, n);
	put32(buf + body_at, 6);	/* body one past the end */
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	memcpy(buf, save, n);
	put32(buf + body_at, 0xffffffffu);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	memcpy(buf, save, n);
	put32(buf + body_at, 4);	/* one byte left over */
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	memcpy(buf, save, n);
	/* a frame cut short inside its payload, lengths shrunk to match */
	put32(buf, (uint32_t)(n - 4 - 3));
	cr_assert_eq(peerframe_decode(buf, n - 3, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	memcpy(buf, save, n);
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), n);
}

Test(peerframe, hello_and_history_refusals)
{
	struct peerframe f = base(PEERFRAME_HELLO), d;
	ssize_t n;

	f.u.hello.cluster = "c";
	f.u.hello.cluster_len = 1;
	n = enc(&f);
	buf[PEERFRAME_HDR + 3] = 0;	/* empty cluster name */
	put32(buf, (uint32_t)(n - 4 - 1));
	cr_assert_eq(peerframe_decode(buf, n - 1, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	f = base(PEERFRAME_HISTORY);
	n = enc(&f);
	buf[PEERFRAME_HDR] = 0xff;	/* count over the maximum */
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
	buf[PEERFRAME_HDR] = 0;
	buf[PEERFRAME_HDR + 1] = 1;	/* one record announced, none there */
	cr_assert_eq(peerframe_decode(buf, n, PEERFRAME_MAX_DEFAULT, &d), -PEERFRAME_EPAYLOAD);
}

/* Random bytes never crash the decoder, and whatever it takes re-encodes to
 * the same bytes. */
Test(peerframe, random_input_is_safe)
{
	uint8_t out[1 << 16];
	struct peerframe d;
	uint32_t x = 12345;
	unsigned round, i;
	ssize_t n;

	for (round = 0; round < 20000; round++) {
		size_t len = 4 + (x % 200);

		for (i = 0; i < len; i++) {
			x = x * 1103515245 + 12345;
			buf[i] = x >> 16;
		}
		if (round % 2 == 0) {	/* make the header plausible half the time */
			put32(buf, (uint32_t)(len - 4));
			buf[4] = PEERFRAME_VERSION;
			buf[5] = 1 + buf[5] % (PEERFRAME_TYPE_MAX - 1);
			buf[6] = 0;
			buf[7] %= PEERFRAME_CODE_MAX;
		}
		n = peerframe_decode(buf, len, 4096, &d);
		if (n > 0 && d.type != PEERFRAME_HISTORY && d.type != PEERFRAME_JOIN_ACK &&
		    d.type != PEERFRAME_RESYNC_REQ) {
			cr_assert_eq(peerframe_encode(&d, out, sizeof(out)), n);
			cr_assert_eq(memcmp(out, buf, n), 0);
		}
	}
}
