/* INVITE dialogs (RFC 3261 §12, §13) with session timers (RFC 4028), the
 * carrier of the Lookup and Channel services (shared/protocol/xccos.md §a).
 *
 * A dialog lives on the connection that created it. It is identified by
 * Call-ID, the client's tag (From) and our tag (To). The client refreshes it
 * with UPDATE (or a re-INVITE) before Session-Expires runs out; a dialog that
 * was not refreshed in time is dropped silently, and the client's next
 * request on it gets 481, which makes it reconnect cleanly. The server never
 * sends BYE to a live client (pidgin-sipe would not recover).
 *
 * Service URIs: sip:ocschat@<domain> (Lookup) and the Channel service
 * sip:parley-channel-<node>@<domain>. The XCCOS commands inside INFO are the
 * Group Chat service's: this layer hands each INFO to the
 * service registered under the dialog's name (dialog_service_register),
 * which answers it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/base/log.h"
#include "dataplane/session/dialog.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/sip/sipmsg.h"
#include "dataplane/sip/sipout.h"

#define MIN_SE		90	/* RFC 4028 §4 */

/* The services by enum dialog_service: their names and what registered. */
static struct {
	const char				*name;
	const struct dialog_service_ops		*ops;
} services[DIALOG__SERVICES] = {
	[DIALOG_LOOKUP] = { "lookup", NULL },
	[DIALOG_CHANNEL] = { "channel", NULL },
};

int
dialog_service_register(const char *name, const struct dialog_service_ops *ops)
{
	for (int i = 0; i < DIALOG__SERVICES; i++)
		if (strcmp(services[i].name, name) == 0) {
			services[i].ops = ops;
			return 0;
		}
	return -ENOENT;
}

static bool
str_copy(char *dst, size_t cap, struct sip_str s)
{
	if (s.len >= cap)
		return false;
	memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
	return true;
}

static bool
str_is(const char *a, struct sip_str s)
{
	return strlen(a) == s.len && memcmp(a, s.p, s.len) == 0;
}

/* Which service the Request-URI names, or -1. */
static int
service_of(const struct conn *c, struct sip_str ruri)
{
	const struct engine_conf *cf = lcore_conf(c->lc);
	struct sip_uri u;
	char chan[64];

	if (sip_uri_parse(ruri, &u) != 0 || !sip_str_ieq(u.host, cf->domain))
		return -1;
	if (sip_str_ieq(u.user, "ocschat"))
		return services[DIALOG_LOOKUP].ops ? DIALOG_LOOKUP : -1;
	snprintf(chan, sizeof(chan), "parley-channel-%u", cf->node_id);
	if (sip_str_ieq(u.user, chan))
		return services[DIALOG_CHANNEL].ops ? DIALOG_CHANNEL : -1;
	return -1;
}

void
dialog_service_uri(const struct engine_conf *cf, enum dialog_service svc, char *out, size_t cap)
{
	if (svc == DIALOG_LOOKUP)
		snprintf(out, cap, "sip:ocschat@%s", cf->domain);
	else
		snprintf(out, cap, "sip:parley-channel-%u@%s", cf->node_id, cf->domain);
}

static struct dialog *
find(struct conn *c, const struct sipmsg *m)
{
	for (struct dialog *d = c->dialogs; d != NULL; d = d->next)
		if (str_is(d->call_id, m->call_id) && str_is(d->remote_tag, m->from_tag) &&
		    str_is(d->local_tag, m->to_tag))
			return d;
	return NULL;
}

static void
unlink_dialog(struct conn *c, struct dialog *d)
{
	for (struct dialog **pp = &c->dialogs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	c->ndialogs--;
	free(d->rooms);
	free(d->info_a);
	objcache_put(lcore_proto_cache(c->lc), d);
}

static void
drop(struct conn *c, struct dialog *d, const char *why)
{
	const struct dialog_service_ops *ops = services[d->svc].ops;

	LOG(DEBUG, DIALOG, "%s: %s dialog %s of %s ended: %s", c->peer_str,
	    services[d->svc].name, d->call_id, c->aor, why);
	/* Leaving by BYE, expiry or connection loss counts as part. */
	if (ops->closed != NULL)
		ops->closed(c, d);
	unlink_dialog(c, d);
}

/* Session interval for a (re-)INVITE or UPDATE: ours, or the client's if it
 * asked for a shorter one. 0 and a 422 sent when it asked below Min-SE. */
static uint32_t
session_interval(struct conn *c, const struct sipmsg *m)
{
	const struct sip_hdr *h = sipmsg_find(m, SIP_H_SESSION_EXPIRES);
	uint32_t se = lcore_conf(c->lc)->session_expires, want;
	struct sip_str v;

	if (h == NULL)
		return se;
	v = h->value;
	for (uint32_t i = 0; i < v.len; i++)
		if (v.p[i] == ';') {
			v.len = i;
			break;
		}
	if (sip_str_u32(v, &want) != 0)
		return se;
	if (want < MIN_SE) {
		char hdr[40];

		snprintf(hdr, sizeof(hdr), "Min-SE: %u\r\n", MIN_SE);
		sipconn_reply(c, m, 422, NULL, hdr, NULL, NULL, 0);
		return 0;
	}
	return want < se ? want : se;
}

static void
answer_session(struct conn *c, const struct sipmsg *m, struct dialog *d, bool sdp)
{
	static const char answer[] =
		"v=0\r\n"
		"o=- 0 0 IN IP4 127.0.0.1\r\n"
		"s=session\r\n"
		"c=IN IP4 127.0.0.1\r\n"
		"t=0 0\r\n"
		"m=message 5061 sip null\r\n"
		"a=accept-types:text/plain\r\n";
	char hdrs[512];

	/* refresher=uac: pidgin-sipe answers a server UPDATE with 501. The same
	 * Session-Expires goes in the Lookup and the Channel 200 (xccos.md a.1). */
	snprintf(hdrs, sizeof(hdrs),
		 "Contact: <%s;transport=tls>\r\n"
		 "Session-Expires: %u;refresher=uac\r\n"
		 "Supported: timer\r\n", d->local_uri, d->session_expires);
	sipconn_reply(c, m, 200, NULL, hdrs, sdp ? "application/sdp" : NULL,
		      sdp ? answer : NULL, sdp ? sizeof(answer) - 1 : 0);
}

static void
on_invite(struct conn *c, const struct sipmsg *m)
{
	struct dialog *d;
	struct sip_nameaddr na;
	uint32_t se;
	int svc;

	if (m->to_tag.len > 0) {	/* re-INVITE: a refresh */
		d = find(c, m);
		if (d == NULL) {
			sipconn_reply(c, m, 481, NULL, NULL, NULL, NULL, 0);
			return;
		}
		se = session_interval(c, m);
		if (se == 0)
			return;
		d->session_expires = se;
		d->expires_at_s = lcore_now_s(c->lc) + se;
		d->remote_cseq = m->cseq;
		answer_session(c, m, d, true);
		return;
	}
	svc = service_of(c, m->ruri);
	if (svc < 0) {
		sipconn_reply(c, m, 404, NULL, NULL, NULL, NULL, 0);
		return;
	}
	if (c->ndialogs >= lcore_conf(c->lc)->max_dialogs_per_conn) {
		sipconn_reply(c, m, 486, "Too many sessions on this connection", NULL, NULL, NULL, 0);
		return;
	}
	se = session_interval(c, m);
	if (se == 0)
		return;
	d = objcache_get(lcore_proto_cache(c->lc));
	if (d == NULL) {
		sipconn_reply(c, m, 500, NULL, "Retry-After: 5\r\n", NULL, NULL, 0);
		return;
	}
	d->svc = (enum dialog_service)svc;
	d->conn = c;
	d->uid = ((uint64_t)lcore_idx(c->lc) << 56) | lcore_proto_seq_next(c->lc);
	d->session_expires = se;
	d->expires_at_s = lcore_now_s(c->lc) + se;
	d->remote_cseq = m->cseq;
	d->envid = 1;
	sipconn_tag(c, m, d->local_tag, sizeof(d->local_tag));
	dialog_service_uri(lcore_conf(c->lc), d->svc, d->local_uri, sizeof(d->local_uri));
	if (!str_copy(d->call_id, sizeof(d->call_id), m->call_id) ||
	    !str_copy(d->remote_tag, sizeof(d->remote_tag), m->from_tag) ||
	    !str_copy(d->remote_uri, sizeof(d->remote_uri), m->from_uri)) {
		objcache_put(lcore_proto_cache(c->lc), d);
		sipconn_reply(c, m, 400, "Call-ID, tag or address too long", NULL, NULL, NULL, 0);
		return;
	}
	{
		const struct sip_hdr *ct = sipmsg_find(m, SIP_H_CONTACT);

		if (ct == NULL || sip_nameaddr_parse(ct->value, &na) != 0 ||
		    !str_copy(d->target, sizeof(d->target), na.uri))
			snprintf(d->target, sizeof(d->target), "%s", d->remote_uri);
	}
	d->next = c->dialogs;
	c->dialogs = d;
	c->ndialogs++;
	ctr_inc(c->lc, CTR_DIALOGS_OPEN);
	LOG(DEBUG, DIALOG, "%s: %s opened %s dialog %s", c->peer_str, c->aor,
	    services[d->svc].name, d->call_id);
	answer_session(c, m, d, true);
}

void
dialog_request(struct conn *c, const struct sipmsg *m)
{
	struct dialog *d;

	if (m->method == SIP_M_INVITE) {
		on_invite(c, m);
		return;
	}
	d = find(c, m);
	if (m->method == SIP_M_ACK) {
		if (d != NULL)
			d->confirmed = true;
		return;			/* ACK is never answered */
	}
	if (d == NULL) {
		sipconn_reply(c, m, 481, NULL, NULL, NULL, NULL, 0);
		return;
	}
	if (m->cseq <= d->remote_cseq && m->method != SIP_M_BYE) {
		/* §12.2.2: out of order. Retransmissions were absorbed earlier. */
		sipconn_reply(c, m, 500, "CSeq out of order", "Retry-After: 1\r\n", NULL, NULL, 0);
		return;
	}
	d->remote_cseq = m->cseq;
	switch (m->method) {
	case SIP_M_BYE:
		sipconn_reply(c, m, 200, NULL, NULL, NULL, NULL, 0);
		drop(c, d, "BYE");
		return;
	case SIP_M_UPDATE: {
		uint32_t se = session_interval(c, m);

		if (se == 0)
			return;
		d->session_expires = se;
		d->expires_at_s = lcore_now_s(c->lc) + se;
		answer_session(c, m, d, false);
		return;
	}
	case SIP_M_INFO:
		/* Every client INFO gets exactly 200 (xccos.md a.2), from the
		 * service: a post's 200 waits until it is durable. */
		d->expires_at_s = lcore_now_s(c->lc) + d->session_expires;
		services[d->svc].ops->info(c, d, m);
		return;
	default:
		sipconn_reply(c, m, 405, NULL, NULL, NULL, NULL, 0);
		return;
	}
}

void
dialog_response(struct conn *c, const struct sipmsg *m)
{
	struct dialog *d;

	/* Responses to our in-dialog requests: From is us, To is the client. */
	for (d = c->dialogs; d != NULL; d = d->next)
		if (str_is(d->call_id, m->call_id) && str_is(d->local_tag, m->from_tag))
			break;
	if (d == NULL)
		return;
	/* xccos.md a.1: 481, 487 or a timeout means the client dropped it. */
	if (m->status == 481 || m->status == 487 || m->status == 408)
		drop(c, d, "the client no longer knows it");
}

struct dialog *
dialog_by_uid(struct conn *c, uint64_t uid)
{
	for (struct dialog *d = c->dialogs; d != NULL; d = d->next)
		if (d->uid == uid)
			return d;
	return NULL;
}

/* Per lcore thread: where a small INFO is assembled. */
static __thread char scratch[16384];

/* The two constant parts of our INFOs on <d>, once. 0 or -ENOMEM. */
static int
info_template(struct conn *c, struct dialog *d)
{
	char a[1024], b[1024];
	int na, nb;

	na = snprintf(a, sizeof(a), "INFO %s SIP/2.0\r\nVia: SIP/2.0/TLS %s:%u;branch=z9hG4bK%016llx",
		      d->target, lcore_conf(c->lc)->sip_host, lcore_conf(c->lc)->sip_port,
		      (unsigned long long)c->id);
	nb = snprintf(b, sizeof(b), "\r\nMax-Forwards: 70\r\nFrom: <%s>;tag=%s\r\n"
		      "To: <%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: ", d->local_uri, d->local_tag,
		      d->remote_uri, d->remote_tag, d->call_id);
	if (na < 0 || nb < 0 || (size_t)na >= sizeof(a) || (size_t)nb >= sizeof(b))
		return -ENOSPC;
	d->info_a = malloc((size_t)na + (size_t)nb);
	if (d->info_a == NULL)
		return -ENOMEM;
	memcpy(d->info_a, a, na);
	memcpy(d->info_a + na, b, nb);
	d->info_b = d->info_a + na;
	d->info_a_len = (uint16_t)na;
	d->info_b_len = (uint16_t)nb;
	return 0;
}

/* Decimal digits of <v> at <p>; their count. */
static size_t
put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

int
dialog_send_info(struct conn *c, struct dialog *d, const char *body, size_t blen)
{
	static const char hex[] = "0123456789abcdef";
	static const char tail[] = " INFO\r\nContent-Type: text/plain\r\nContent-Length: ";
	char *p = scratch;
	uint32_t cseq;
	size_t hlen;

	if (!conn_usable(c))
		return -EPIPE;
	if (d->info_a == NULL && info_template(c, d) != 0)
		return -ENOSPC;
	/* The header: template A, branch suffix (the CSeq in hex), template
	 * B, CSeq, the tail, the length. Called once per delivery, so no
	 * printf here. */
	cseq = ++d->local_cseq;
	memcpy(p, d->info_a, d->info_a_len);
	p += d->info_a_len;
	for (int i = 7; i >= 0; i--)
		*p++ = hex[(cseq >> (4 * i)) & 0xf];
	memcpy(p, d->info_b, d->info_b_len);
	p += d->info_b_len;
	p += put_u64(p, cseq);
	memcpy(p, tail, sizeof(tail) - 1);
	p += sizeof(tail) - 1;
	p += put_u64(p, blen);
	memcpy(p, "\r\n\r\n", 4);
	p += 4;
	hlen = (size_t)(p - scratch);
	/* The body (shared by every recipient of a post) follows in the same
	 * buffer when it fits: one TLS record for the message. */
	if (hlen + blen <= sizeof(scratch)) {
		memcpy(p, body, blen);
		return conn_send(c, scratch, hlen + blen) == 0 ? 0 : -EPIPE;
	}
	if (conn_send(c, scratch, hlen) != 0 || conn_send(c, body, blen) != 0)
		return -EPIPE;
	return 0;
}

void
dialog_conn_closed(struct conn *c)
{
	while (c->dialogs != NULL)
		drop(c, c->dialogs, "connection closed");
}

void
dialog_sweep(struct conn *c, uint64_t now_s)
{
	struct dialog *d, *next;

	for (d = c->dialogs; d != NULL; d = next) {
		next = d->next;
		if (now_s >= d->expires_at_s) {
			ctr_inc(c->lc, CTR_DIALOGS_EXPIRED);
			drop(c, d, "session expired without refresh");
		}
	}
}
