/* A TLS 1.3 connection's I/O once it is on our own record layer (the
 * hand-off, see the top of tlsterm.c): records opened from <in>, sealed
 * into <out>, KeyUpdate, alerts.
 *
 * A hostile peer. Every record costs the peer about as much as it costs
 * us, except what we answer: a KeyUpdate(update_requested) costs a key
 * derivation each way and a record of output. So (RFC 8446 allows all of
 * it): one read answers any number of requests with one KeyUpdate of our
 * own, sent when the read returns or before our next application data
 * (§4.6.3 asks no more); more than TLSTERM_KEY_UPDATES_MAX KeyUpdates,
 * TLSTERM_EMPTY_RECORDS_MAX empty application records or
 * TLSTERM_WARN_ALERTS_MAX user_canceled alerts without application data in
 * between close the connection (unexpected_message), as OpenSSL's layer
 * does for the last two (tlsterm.c applies the KeyUpdate limit on
 * OpenSSL's layer too); and a read that would answer while the output
 * holds more than the context's out_max fails instead. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "dataplane/tls/tlsterm_int.h"

/* Appends fed ciphertext to <in> (own layer). */
int
tlsterm_own_feed(struct tlsterm *t, const void *buf, size_t len)
{
	size_t keep = t->pl_len > 0 ? t->pl_off : t->in_off;
	size_t live = t->in_len - keep;

	if (len == 0)
		return 0;
	if (live == 0) {
		t->in_len = t->in_off = t->pl_off = 0;	/* all taken: start over */
	} else if (t->in_len + len > t->in_cap && keep > 0) {
		/* What was opened and read or skipped goes; at most a record
		 * and a partial one move. The old tail may hold content
		 * opened in place and not yet read: wiped. */
		memmove(t->in, t->in + keep, live);
		OPENSSL_cleanse(t->in + live, t->in_len - live);
		t->in_len = live;
		t->in_off -= keep;
		t->pl_off = t->pl_len > 0 ? t->pl_off - keep : 0;
	}
	if (t->in_len + len > t->in_cap) {
		size_t cap = t->in_cap * 2;
		unsigned char *nb;

		if (cap < t->in_len + len)
			cap = t->in_len + len;
		if (cap < IN_CHUNK)
			cap = IN_CHUNK;
		/* Not realloc(): the old buffer may hold opened content and
		 * is wiped before it goes back to the allocator. */
		nb = malloc(cap);	/* freed by trim or tlsterm_free() */
		if (nb == NULL)
			return -ENOMEM;
		if (t->in != NULL) {
			memcpy(nb, t->in, t->in_len);
			OPENSSL_clear_free(t->in, t->in_cap);
		}
		t->in = nb;
		t->in_cap = cap;
	}
	memcpy(t->in + t->in_len, buf, len);
	t->in_len += len;
	return 0;
}

/* Makes room for <n> more bytes of output (own layer). */
static int
out_reserve(struct tlsterm *t, size_t n)
{
	size_t cap;
	unsigned char *nb;

	if (t->out_len + n <= t->out_cap)
		return 0;
	cap = t->out_cap * 2;
	if (cap < t->out_len + n)
		cap = t->out_len + n;
	if (cap < IN_CHUNK)
		cap = IN_CHUNK;
	nb = realloc(t->out, cap);	/* freed when drained and idle, or by tlsterm_free() */
	if (nb == NULL)
		return -ENOMEM;
	t->out = nb;
	t->out_cap = cap;
	return 0;
}

/* Seals one record of <type> into the output (own layer). */
int
tlsterm_own_seal(struct tlsterm *t, uint8_t type, const void *p, size_t n)
{
	ssize_t r;

	if (out_reserve(t, tlsrec_sealed_len(n)) != 0)
		return -ENOMEM;
	r = tlsrec_seal(&t->wr, type, p, n, t->out + t->out_len);
	if (r < 0)
		return (int)r;
	t->out_len += (size_t)r;
	return 0;
}

/* Sends a KeyUpdate and moves to our next write key (RFC 8446 §4.6.3). */
static int
own_key_update(struct tlsterm *t, bool request)
{
	const uint8_t msg[5] = { HS_KEY_UPDATE, 0, 0, 1, request ? 1 : 0 };
	int ret;

	ret = tlsterm_own_seal(t, SSL3_RT_HANDSHAKE, msg, sizeof(msg));
	if (ret == 0)
		ret = tlsrec_update(&t->wr);
	return ret;
}

/* A fatal error on our layer: queues alert <desc> (none when < 0) and
 * reports it. */
static ssize_t
own_fail(struct tlsterm *t, int desc)
{
	if (desc >= 0 && !t->sent_close) {
		const uint8_t alert[2] = { ALERT_FATAL, (uint8_t)desc };

		(void)tlsterm_own_seal(t, SSL3_RT_ALERT, alert, sizeof(alert));
		t->sent_close = true;
	}
	t->failed = true;
	tlsterm_forget_session(t);
	return -EPROTO;
}

/* Handles one opened non-application record (own layer): 0 to go on,
 * -ECONNRESET, or a fatal error. */
static ssize_t
own_control(struct tlsterm *t, uint8_t type, const uint8_t *p, ssize_t n)
{
	switch (type) {
	case SSL3_RT_ALERT:
		if (n != 2)
			return own_fail(t, AD_DECODE_ERROR);
		if (p[1] == AD_CLOSE_NOTIFY) {
			t->peer_closed = true;
			return -ECONNRESET;
		}
		if (p[1] == AD_USER_CANCELED) {
			/* A close_notify should follow, not more of these. */
			if (++t->warn_run > TLSTERM_WARN_ALERTS_MAX)
				return own_fail(t, AD_UNEXPECTED_MESSAGE);
			return 0;
		}
		return own_fail(t, -1);	/* the peer gave up: nothing to answer */
	case SSL3_RT_HANDSHAKE:
		/* Only KeyUpdate may come from a client now. It may be split
		 * across records (RFC 8446 §5.1), but a key change ends its
		 * record; no zero-length handshake records. */
		if (n == 0)
			return own_fail(t, AD_UNEXPECTED_MESSAGE);
		while (n > 0) {
			if (t->hs_have == sizeof(t->hs))
				return own_fail(t, AD_UNEXPECTED_MESSAGE);	/* after a KeyUpdate */
			t->hs[t->hs_have++] = *p++;
			n--;
			if (t->hs[0] != HS_KEY_UPDATE)
				return own_fail(t, AD_UNEXPECTED_MESSAGE);
			if (t->hs_have == 4 && (t->hs[1] != 0 || t->hs[2] != 0 || t->hs[3] != 1))
				return own_fail(t, AD_DECODE_ERROR);
		}
		if (t->hs_have < sizeof(t->hs))
			return 0;	/* the rest comes in the next record */
		t->hs_have = 0;
		if (t->hs[4] > 1)
			return own_fail(t, AD_ILLEGAL_PARAMETER);
		if (++t->ku_run > TLSTERM_KEY_UPDATES_MAX)
			return own_fail(t, AD_UNEXPECTED_MESSAGE);
		if (tlsrec_update(&t->rd) != 0)
			return own_fail(t, AD_INTERNAL_ERROR);
		t->events |= TLSTERM_EV_KEY_UPDATE;
		if (t->hs[4] == 1)
			t->ku_owed = true;	/* answered once, see the top */
		return 0;
	default:
		return own_fail(t, AD_UNEXPECTED_MESSAGE);
	}
}

/* Sends the KeyUpdate a peer's request left owed, if any: 0, or a fatal
 * error. */
static int
answer_key_update(struct tlsterm *t)
{
	if (!t->ku_owed || t->sent_close || t->failed)
		return 0;
	/* A peer that asks but does not read: no alert either. */
	if (t->out_len - t->out_off > t->ctx->out_max)
		return (int)own_fail(t, -1);
	t->ku_owed = false;
	if (own_key_update(t, false) != 0)
		return (int)own_fail(t, -1);
	return 0;
}

/* Opens records until there is content for the caller (own layer). */
static ssize_t
read_records(struct tlsterm *t, unsigned char *buf, size_t len)
{
	for (;;) {
		size_t avail, rlen;
		unsigned char *rec, *dst;
		uint8_t type = 0;
		ssize_t n;

		if (t->pl_len > 0) {
			n = (ssize_t)(len < t->pl_len ? len : t->pl_len);
			memcpy(buf, t->in + t->pl_off, (size_t)n);
			/* Read plaintext does not stay behind in <in>. */
			OPENSSL_cleanse(t->in + t->pl_off, (size_t)n);
			t->pl_off += (size_t)n;
			t->pl_len -= (size_t)n;
			return n;
		}
		if (t->peer_closed)
			return -ECONNRESET;
		avail = t->in_len - t->in_off;
		if (avail < TLSREC_HDR)
			return 0;
		rec = t->in + t->in_off;
		rlen = (size_t)rec[3] << 8 | rec[4];
		if (rlen > TLSREC_MAX_CIPHER)
			return own_fail(t, AD_RECORD_OVERFLOW);
		if (avail < TLSREC_HDR + rlen)
			return 0;
		/* The alerts OpenSSL's TLS 1.3 layer sends for these. */
		if (rec[0] != SSL3_RT_APPLICATION_DATA)
			return own_fail(t, AD_UNEXPECTED_MESSAGE);
		if (rec[1] != 0x03 || rec[2] != 0x03)
			return own_fail(t, AD_DECODE_ERROR);
		if (rlen < 1 + TLSREC_TAG)	/* cannot be authenticated */
			return own_fail(t, AD_BAD_RECORD_MAC);
		/* Open straight into the caller's buffer when the record fits:
		 * one copy less. */
		dst = rlen >= TLSREC_TAG && len >= rlen - TLSREC_TAG ? buf : rec + TLSREC_HDR;
		n = tlsrec_open(&t->rd, rec, TLSREC_HDR + rlen, dst, &type);
		t->in_off += TLSREC_HDR + rlen;
		if (n == -EBADMSG) {
			t->events |= TLSTERM_EV_BAD_MAC;
			return own_fail(t, AD_BAD_RECORD_MAC);
		}
		if (n == -EMSGSIZE)
			return own_fail(t, AD_RECORD_OVERFLOW);
		if (n < 0)
			return own_fail(t, n == -EPROTO ? AD_UNEXPECTED_MESSAGE : AD_INTERNAL_ERROR);
		/* Nothing between the pieces of a handshake message. */
		if (t->hs_have > 0 && type != SSL3_RT_HANDSHAKE)
			return own_fail(t, AD_UNEXPECTED_MESSAGE);
		if (type != SSL3_RT_APPLICATION_DATA) {
			n = own_control(t, type, dst, n);
			if (n != 0)
				return n;
			continue;
		}
		if (n == 0) {
			if (++t->empty_run > TLSTERM_EMPTY_RECORDS_MAX)
				return own_fail(t, AD_UNEXPECTED_MESSAGE);
			continue;
		}
		t->ku_run = t->empty_run = t->warn_run = 0;
		if (dst == buf)
			return n;
		t->pl_off = (size_t)(dst - t->in);
		t->pl_len = (size_t)n;
	}
}

/* tlsterm_read() on our layer. */
ssize_t
tlsterm_own_read(struct tlsterm *t, unsigned char *buf, size_t len)
{
	ssize_t n = read_records(t, buf, len);

	if (n >= 0 && t->ku_owed && answer_key_update(t) != 0)
		return -EPROTO;
	return n;
}

/* tlsterm_write() on our layer. */
ssize_t
tlsterm_own_write(struct tlsterm *t, const unsigned char *p, size_t len)
{
	size_t done = 0, n;

	if (t->sent_close)
		return -EPROTO;
	if (len == 0)
		return 0;
	if (answer_key_update(t) != 0)	/* RFC 8446 §4.6.3: before our next data */
		return -EPROTO;
	/* All records at once: one reallocation at most. */
	if (out_reserve(t, len + (len / TLSREC_MAX_PLAIN + 1) * tlsrec_sealed_len(0)) != 0)
		return -EPROTO;
	while (done < len) {
		if (tlsrec_wants_update(&t->wr) && own_key_update(t, false) != 0)
			return own_fail(t, -1);
		n = len - done < TLSREC_MAX_PLAIN ? len - done : TLSREC_MAX_PLAIN;
		if (tlsterm_own_seal(t, SSL3_RT_APPLICATION_DATA, p + done, n) != 0)
			return own_fail(t, -1);
		done += n;
	}
	return (ssize_t)len;
}

/* Our output after <n> more bytes were sent: the same policy as the wbio's. */
void
tlsterm_own_consume(struct tlsterm *t, size_t n)
{
	if (n > t->out_len - t->out_off)
		n = t->out_len - t->out_off;
	t->out_off += n;
	if (t->out_off == t->out_len) {
		t->out_off = t->out_len = 0;
		if (t->out_cap > OUT_KEEP_MAX) {
			free(t->out);
			t->out = NULL;
			t->out_cap = 0;
		}
	} else if (t->out_off >= OUT_COMPACT_MIN && t->out_off >= t->out_len - t->out_off) {
		memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
		t->out_len -= t->out_off;
		t->out_off = 0;
	}
}
