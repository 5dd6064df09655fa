/* The peer frame codec: see peerframe.h for the layout. Decoding checks
 * every length against what is left before it reads, and a payload must be
 * consumed exactly; nothing is copied. */
#include <errno.h>
#include <string.h>

#include "dataplane/peer/peerframe.h"

static const char *const type_names[PEERFRAME_TYPE_MAX] = {
	[PEERFRAME_HELLO] = "HELLO",		[PEERFRAME_POST_FWD] = "POST_FWD",
	[PEERFRAME_POST_ACK] = "POST_ACK",	[PEERFRAME_RELAY] = "RELAY",
	[PEERFRAME_JOIN] = "JOIN",		[PEERFRAME_JOIN_ACK] = "JOIN_ACK",
	[PEERFRAME_PART] = "PART",		[PEERFRAME_PART_ACK] = "PART_ACK",
	[PEERFRAME_RESYNC_REQ] = "RESYNC_REQ",	[PEERFRAME_HISTORY] = "HISTORY",
	[PEERFRAME_PING] = "PING",		[PEERFRAME_PONG] = "PONG",
	[PEERFRAME_PRESENCE] = "PRESENCE",	[PEERFRAME_HISTORY_REQ] = "HISTORY_REQ",
	[PEERFRAME_REPL] = "REPL",		[PEERFRAME_REPL_ACK] = "REPL_ACK",
};

static const char *const code_names[PEERFRAME_CODE_MAX] = {
	[PEERFRAME_OK] = "OK",			[PEERFRAME_MORE] = "MORE",
	[PEERFRAME_WRONG_HOME] = "WRONG_HOME",	[PEERFRAME_STALE_EPOCH] = "STALE_EPOCH",
	[PEERFRAME_OVERLOAD] = "OVERLOAD",	[PEERFRAME_NOT_MEMBER] = "NOT_MEMBER",
	[PEERFRAME_TOO_LARGE] = "TOO_LARGE",	[PEERFRAME_NO_HISTORY] = "NO_HISTORY",
};

const char *
peerframe_type_name(unsigned type)
{
	return type > 0 && type < PEERFRAME_TYPE_MAX ? type_names[type] : "?";
}

const char *
peerframe_code_name(unsigned code)
{
	return code < PEERFRAME_CODE_MAX ? code_names[code] : "?";
}

const char *
peerframe_strerror(int err)
{
	switch (-err) {
	case PEERFRAME_ETOOBIG:
		return "frame longer than the maximum";
	case PEERFRAME_ESHORT:
		return "frame shorter than its header";
	case PEERFRAME_EVERSION:
		return "unknown frame version";
	case PEERFRAME_ETYPE:
		return "unknown frame type";
	case PEERFRAME_ECODE:
		return "unknown answer code";
	case PEERFRAME_EPAYLOAD:
		return "malformed payload";
	}
	return "unknown error";
}

/* Big-endian writers; the caller has checked the room. */
static uint8_t *
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
	return p + 2;
}

static uint8_t *
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
	return p + 4;
}

static uint8_t *
put64(uint8_t *p, uint64_t v)
{
	p = put32(p, v >> 32);
	return put32(p, (uint32_t)v);
}

static uint8_t *
putmem(uint8_t *p, const void *src, size_t n)
{
	if (n > 0)
		memcpy(p, src, n);
	return p + n;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* The payload size of a post record, 0 if a field is out of range. */
static size_t
post_size(const struct peerframe_post *p, bool with_seq)
{
	if (p->author_len > PEERFRAME_URI_MAX || p->body_len > PEERFRAME_MAX_LIMIT)
		return 0;
	return (with_seq ? 8 : 0) + 8 + 2 + p->author_len + 4 + (size_t)p->body_len;
}

/* POST_FWD's text and extra attributes after the post record, 0 if out of
 * range. */
static size_t
fwd_size(const struct peerframe_post *p)
{
	if (p->text_len > PEERFRAME_MAX_LIMIT || p->extra_len > PEERFRAME_ATTRS_MAX)
		return 0;
	return 4 + (size_t)p->text_len + 2 + p->extra_len;
}

/* A users list's size, 0 if out of range. */
static size_t
users_size(const struct peerframe_user *v, unsigned count)
{
	size_t n = 2;

	if (count > PEERFRAME_USERS_MAX)
		return 0;
	for (unsigned i = 0; i < count; i++) {
		if (v[i].uri_len == 0 || v[i].uri_len > PEERFRAME_URI_MAX ||
		    (v[i].flags & ~PEERFRAME_USER_FLAGS))
			return 0;
		n += 1 + 4 + 2 + v[i].uri_len;
		if (n > PEERFRAME_MAX_LIMIT)
			return 0;
	}
	return n;
}

static uint8_t *
post_put(uint8_t *p, const struct peerframe_post *r, bool with_seq)
{
	if (with_seq)
		p = put64(p, r->seq);
	p = put64(p, r->time_ms);
	p = put16(p, r->author_len);
	p = putmem(p, r->author, r->author_len);
	p = put32(p, r->body_len);
	return putmem(p, r->body, r->body_len);
}

size_t
peerframe_size(const struct peerframe *f)
{
	size_t n = PEERFRAME_HDR, r;
	unsigned i;

	if (f->code >= PEERFRAME_CODE_MAX)
		return 0;
	switch (f->type) {
	case PEERFRAME_HELLO:
		if (f->u.hello.cluster_len == 0 || f->u.hello.cluster_len > PEERFRAME_CLUSTER_MAX)
			return 0;
		n += 2 + 2 + f->u.hello.cluster_len;
		break;
	case PEERFRAME_POST_FWD:
	case PEERFRAME_RELAY:
	case PEERFRAME_REPL:
		r = post_size(&f->u.post, false);
		if (r == 0)
			return 0;
		n += r;
		if (f->type != PEERFRAME_RELAY) {
			r = fwd_size(&f->u.post);
			if (r == 0)
				return 0;
			n += r;
		}
		break;
	case PEERFRAME_JOIN:
	case PEERFRAME_PART:
	case PEERFRAME_HISTORY_REQ:
		if (f->u.user.uri_len == 0 || f->u.user.uri_len > PEERFRAME_URI_MAX ||
		    (f->u.user.flags & ~PEERFRAME_USER_FLAGS))
			return 0;
		n += 1 + 2 + f->u.user.uri_len;
		break;
	case PEERFRAME_JOIN_ACK:
	case PEERFRAME_RESYNC_REQ:
		r = users_size(f->u.users.v, f->u.users.count);
		if (r == 0)
			return 0;
		n += r;
		break;
	case PEERFRAME_PRESENCE:
		if (f->u.notice.body_len > PEERFRAME_MAX_LIMIT)
			return 0;
		n += 4 + (size_t)f->u.notice.body_len;
		break;
	case PEERFRAME_HISTORY:
		if (f->u.history.count > PEERFRAME_HISTORY_MAX)
			return 0;
		n += 2;
		for (i = 0; i < f->u.history.count; i++) {
			r = post_size(&f->u.history.recs[i], true);
			if (r == 0 || n + r > PEERFRAME_MAX_LIMIT)
				return 0;
			n += r;
		}
		break;
	case PEERFRAME_POST_ACK:
	case PEERFRAME_PART_ACK:
	case PEERFRAME_REPL_ACK:
	case PEERFRAME_PING:
	case PEERFRAME_PONG:
		break;
	default:
		return 0;
	}
	return n > PEERFRAME_MAX_LIMIT ? 0 : n;
}

ssize_t
peerframe_encode(const struct peerframe *f, uint8_t *buf, size_t cap)
{
	size_t n = peerframe_size(f);
	uint8_t *p = buf;
	unsigned i;

	if (n == 0)
		return -EINVAL;
	if (n > cap)
		return -ENOSPC;
	p = put32(p, (uint32_t)(n - 4));
	*p++ = PEERFRAME_VERSION;
	*p++ = f->type;
	p = put16(p, f->code);
	p = put32(p, f->node);
	p = putmem(p, f->room, PEERFRAME_ROOM_LEN);
	p = put64(p, f->epoch);
	p = put64(p, f->seq);
	p = put64(p, f->ref);
	switch (f->type) {
	case PEERFRAME_HELLO:
		p = put16(p, f->u.hello.proto);
		p = put16(p, f->u.hello.cluster_len);
		p = putmem(p, f->u.hello.cluster, f->u.hello.cluster_len);
		break;
	case PEERFRAME_POST_FWD:
	case PEERFRAME_RELAY:
	case PEERFRAME_REPL:
		p = post_put(p, &f->u.post, false);
		if (f->type != PEERFRAME_RELAY) {
			p = put32(p, f->u.post.text_len);
			p = putmem(p, f->u.post.text, f->u.post.text_len);
			p = put16(p, f->u.post.extra_len);
			p = putmem(p, f->u.post.extra, f->u.post.extra_len);
		}
		break;
	case PEERFRAME_JOIN:
	case PEERFRAME_PART:
	case PEERFRAME_HISTORY_REQ:
		*p++ = f->u.user.flags;
		p = put16(p, f->u.user.uri_len);
		p = putmem(p, f->u.user.uri, f->u.user.uri_len);
		break;
	case PEERFRAME_JOIN_ACK:
	case PEERFRAME_RESYNC_REQ:
		p = put16(p, f->u.users.count);
		for (i = 0; i < f->u.users.count; i++) {
			const struct peerframe_user *u = &f->u.users.v[i];

			*p++ = u->flags;
			p = put32(p, u->n);
			p = put16(p, u->uri_len);
			p = putmem(p, u->uri, u->uri_len);
		}
		break;
	case PEERFRAME_PRESENCE:
		p = put32(p, f->u.notice.body_len);
		p = putmem(p, f->u.notice.body, f->u.notice.body_len);
		break;
	case PEERFRAME_HISTORY:
		p = put16(p, f->u.history.count);
		for (i = 0; i < f->u.history.count; i++)
			p = post_put(p, &f->u.history.recs[i], true);
		break;
	default:
		break;
	}
	return p - buf;
}

/* A cursor over a payload: every take checks what is left first. */
struct cur {
	const uint8_t	*p;
	size_t		left;
	bool		bad;
};

static const uint8_t *
take(struct cur *c, size_t n)
{
	const uint8_t *p = c->p;

	if (c->bad || n > c->left) {
		c->bad = true;
		return NULL;
	}
	c->p += n;
	c->left -= n;
	return p;
}

static uint16_t
take16(struct cur *c)
{
	const uint8_t *p = take(c, 2);

	return p != NULL ? get16(p) : 0;
}

static uint32_t
take32(struct cur *c)
{
	const uint8_t *p = take(c, 4);

	return p != NULL ? get32(p) : 0;
}

static uint64_t
take64(struct cur *c)
{
	const uint8_t *p = take(c, 8);

	return p != NULL ? get64(p) : 0;
}

static uint8_t
take8(struct cur *c)
{
	const uint8_t *p = take(c, 1);

	return p != NULL ? *p : 0;
}

static void
take_user(struct cur *c, struct peerframe_user *u)
{
	u->flags = take8(c);
	u->n = take32(c);
	u->uri_len = take16(c);
	if (u->uri_len == 0 || u->uri_len > PEERFRAME_URI_MAX || (u->flags & ~PEERFRAME_USER_FLAGS))
		c->bad = true;
	u->uri = (const char *)take(c, u->uri_len);
}

static void
take_post(struct cur *c, struct peerframe_post *r, bool with_seq)
{
	r->seq = with_seq ? take64(c) : 0;
	r->time_ms = take64(c);
	r->author_len = take16(c);
	if (r->author_len > PEERFRAME_URI_MAX)
		c->bad = true;
	r->author = (const char *)take(c, r->author_len);
	r->body_len = take32(c);
	r->body = take(c, r->body_len);
	r->text = NULL;
	r->text_len = 0;
	r->extra = NULL;
	r->extra_len = 0;
}

ssize_t
peerframe_decode(const uint8_t *buf, size_t len, size_t max, struct peerframe *f)
{
	struct cur c;
	uint32_t flen;
	unsigned i;

	if (len < 4)
		return 0;
	flen = get32(buf);
	if (max > PEERFRAME_MAX_LIMIT)
		max = PEERFRAME_MAX_LIMIT;
	if ((size_t)flen + 4 > max)
		return -PEERFRAME_ETOOBIG;
	if (flen + 4 < PEERFRAME_HDR)
		return -PEERFRAME_ESHORT;
	/* the fixed header is refused as soon as it is in, before the payload */
	if (len < PEERFRAME_HDR)
		return 0;
	memset(f, 0, sizeof(*f));
	f->version = buf[4];
	f->type = buf[5];
	f->code = get16(buf + 6);
	if (f->version != PEERFRAME_VERSION)
		return -PEERFRAME_EVERSION;
	if (f->type == 0 || f->type >= PEERFRAME_TYPE_MAX)
		return -PEERFRAME_ETYPE;
	if (f->code >= PEERFRAME_CODE_MAX)
		return -PEERFRAME_ECODE;
	if (len < (size_t)flen + 4)
		return 0;
	f->node = get32(buf + 8);
	memcpy(f->room, buf + 12, PEERFRAME_ROOM_LEN);
	f->epoch = get64(buf + 28);
	f->seq = get64(buf + 36);
	f->ref = get64(buf + 44);
	f->payload_len = flen + 4 - PEERFRAME_HDR;
	c = (struct cur){ .p = buf + PEERFRAME_HDR, .left = f->payload_len };
	switch (f->type) {
	case PEERFRAME_HELLO:
		f->u.hello.proto = take16(&c);
		f->u.hello.cluster_len = take16(&c);
		if (f->u.hello.cluster_len == 0 || f->u.hello.cluster_len > PEERFRAME_CLUSTER_MAX)
			c.bad = true;
		f->u.hello.cluster = (const char *)take(&c, f->u.hello.cluster_len);
		break;
	case PEERFRAME_POST_FWD:
	case PEERFRAME_RELAY:
	case PEERFRAME_REPL:
		take_post(&c, &f->u.post, false);
		if (f->type != PEERFRAME_RELAY) {
			f->u.post.text_len = take32(&c);
			f->u.post.text = take(&c, f->u.post.text_len);
			f->u.post.extra_len = take16(&c);
			if (f->u.post.extra_len > PEERFRAME_ATTRS_MAX)
				c.bad = true;
			f->u.post.extra = (const char *)take(&c, f->u.post.extra_len);
		}
		break;
	case PEERFRAME_JOIN:
	case PEERFRAME_PART:
	case PEERFRAME_HISTORY_REQ:
		f->u.user.flags = take8(&c);
		if (f->u.user.flags & ~PEERFRAME_USER_FLAGS)
			c.bad = true;
		f->u.user.uri_len = take16(&c);
		if (f->u.user.uri_len == 0 || f->u.user.uri_len > PEERFRAME_URI_MAX)
			c.bad = true;
		f->u.user.uri = (const char *)take(&c, f->u.user.uri_len);
		break;
	case PEERFRAME_JOIN_ACK:
	case PEERFRAME_RESYNC_REQ: {
		struct peerframe_user u;

		f->u.users.count = take16(&c);
		if (f->u.users.count > PEERFRAME_USERS_MAX)
			c.bad = true;
		f->u.users.raw = c.p;
		for (i = 0; i < f->u.users.count && !c.bad; i++)
			take_user(&c, &u);
		break;
	}
	case PEERFRAME_PRESENCE:
		f->u.notice.body_len = take32(&c);
		f->u.notice.body = take(&c, f->u.notice.body_len);
		break;
	case PEERFRAME_HISTORY: {
		struct peerframe_post r;

		f->u.history.count = take16(&c);
		if (f->u.history.count > PEERFRAME_HISTORY_MAX)
			c.bad = true;
		f->u.history.raw = c.p;
		for (i = 0; i < f->u.history.count && !c.bad; i++)
			take_post(&c, &r, true);
		break;
	}
	default:
		break;
	}
	if (c.bad || c.left != 0)
		return -PEERFRAME_EPAYLOAD;
	return (ssize_t)flen + 4;
}

bool
peerframe_history_next(const struct peerframe *f, size_t *pos, struct peerframe_post *out)
{
	struct cur c;
	size_t end;

	if (f->type != PEERFRAME_HISTORY || f->payload_len < 2)
		return false;
	end = f->payload_len - 2;
	if (*pos >= end)
		return false;
	c = (struct cur){ .p = f->u.history.raw + *pos, .left = end - *pos };
	take_post(&c, out, true);
	*pos = end - c.left;
	return !c.bad;
}

bool
peerframe_users_next(const struct peerframe *f, size_t *pos, struct peerframe_user *out)
{
	struct cur c;
	size_t end;

	if ((f->type != PEERFRAME_JOIN_ACK && f->type != PEERFRAME_RESYNC_REQ) ||
	    f->payload_len < 2)
		return false;
	end = f->payload_len - 2;
	if (*pos >= end)
		return false;
	c = (struct cur){ .p = f->u.users.raw + *pos, .left = end - *pos };
	take_user(&c, out);
	*pos = end - c.left;
	return !c.bad;
}
