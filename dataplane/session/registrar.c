/* Registrar: REGISTER with Digest, and the SUBSCRIBEs a client sends right
 * after signing on (see shared/protocol/sipe-signon.md).
 *
 * Challenge rule: 407 Proxy-Authenticate by default ([auth] challenge =
 * proxy). pidgin-sipe answers only proxy challenges, and RFC 3261 clients
 * (sipp, linphone) answer 407 as well; [auth] challenge = www switches to 401
 * WWW-Authenticate. Credentials are accepted from either header whatever
 * the challenge was.
 *
 * Nonces are stateless (digest.c) and bound to the connection they were
 * issued on; the connection remembers the highest nc accepted per nonce, so
 * a replayed request is challenged again (stale=true) instead of accepted.
 * Success binds the identity to the TLS connection: later requests are
 * trusted by connection, and a different From gets 403 (sipconn.c).
 *
 * Failed logins are limited per source address and per user (ratelimit.c);
 * while limited, REGISTER gets 403 without the password being checked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/base/log.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/session/registrar.h"
#include "dataplane/session/sipconn.h"
#include "dataplane/session/placement.h"
#include "dataplane/sip/digest.h"
#include "dataplane/sip/ratelimit.h"
#include "dataplane/sip/sipmsg.h"
#include "storage/htdigest.h"

#define PROVISIONING_EVENT	"vnd-microsoft-provisioning-v2"
#define ALLOW_EVENTS		PROVISIONING_EVENT ",vnd-microsoft-roaming-contacts," \
				"vnd-microsoft-roaming-self,presence"

/* What every lcore of an engine shares: read-only but for the limiters. */
struct registrar_shared {
	uint8_t		nonce_key[DIGEST_KEY_LEN];
	struct ratelimit *rl_addr;	/* failed logins per source address */
	struct ratelimit *rl_user;	/* failed logins per user */
};

int
registrar_init(struct engine *e, char *err, size_t errlen)
{
	const struct engine_conf *cf = engine_conf(e);
	struct registrar_shared *rs = calloc(1, sizeof(*rs));

	if (rs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	engine_set_proto_state(e, rs);
	if (digest_key_init(rs->nonce_key) != 0) {
		snprintf(err, errlen, "no randomness for the nonce key");
		return -EIO;
	}
	rs->rl_addr = ratelimit_create(65536, cf->fail_max, cf->fail_window_s);
	rs->rl_user = ratelimit_create(65536, cf->fail_max, cf->fail_window_s);
	if (rs->rl_addr == NULL || rs->rl_user == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void
registrar_fini(struct engine *e)
{
	struct registrar_shared *rs = engine_proto_state(e);

	if (rs == NULL)
		return;
	ratelimit_destroy(rs->rl_addr);
	ratelimit_destroy(rs->rl_user);
	free(rs);
	engine_set_proto_state(e, NULL);
}

static const struct registrar_shared *
shared(const struct conn *c)
{
	return engine_proto_state(lcore_engine(c->lc));
}

static uint64_t
str_hash(struct sip_str s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint32_t i = 0; i < s.len; i++) {
		h ^= (unsigned char)s.p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void
challenge(struct conn *c, const struct sipmsg *m, const char *aor, bool stale)
{
	const struct engine_conf *cf = lcore_conf(c->lc);
	const char *hname = cf->challenge == ENGINE_CHALLENGE_WWW ? "WWW-Authenticate" :
			    "Proxy-Authenticate";
	char nonce[DIGEST_NONCE_MAX], hdrs[1024];
	int n = 0;

	digest_nonce_make(shared(c)->nonce_key, lcore_now_s(c->lc), c->id, nonce);
	/* RFC 8760 §2.4: the preferred algorithm first. SHA-256 is offered only
	 * to users who have a SHA-256 HA1 (htdigest(1) writes MD5 only). */
	if (htdigest_ha1(lcore_users(c->lc), aor, strlen(aor), cf->realm, strlen(cf->realm),
			 DIGEST_SHA256) != NULL)
		n = snprintf(hdrs, sizeof(hdrs),
			     "%s: Digest realm=\"%s\", nonce=\"%s\", qop=\"auth\", "
			     "algorithm=SHA-256%s\r\n", hname, cf->realm, nonce,
			     stale ? ", stale=true" : "");
	snprintf(hdrs + n, sizeof(hdrs) - n,
		 "%s: Digest realm=\"%s\", nonce=\"%s\", qop=\"auth\", algorithm=MD5%s\r\n",
		 hname, cf->realm, nonce, stale ? ", stale=true" : "");
	ctr_inc(c->lc, CTR_REGISTER_CHALLENGED);
	sipconn_reply(c, m, cf->challenge == ENGINE_CHALLENGE_WWW ? 401 : 407, NULL, hdrs,
		      NULL, NULL, 0);
}

static void
deny(struct conn *c, const struct sipmsg *m, const char *aor, const char *why)
{
	const struct engine_conf *cf = lcore_conf(c->lc);
	char hdr[300];

	ratelimit_fail(shared(c)->rl_addr, c->peer_str, strlen(c->peer_str), lcore_now_s(c->lc));
	ratelimit_fail(shared(c)->rl_user, aor, strlen(aor), lcore_now_s(c->lc));
	ctr_inc(c->lc, CTR_REGISTER_DENIED);
	LOG(INFO, REGISTRAR, "%s: REGISTER %s refused: %s", c->peer_str, aor, why);
	snprintf(hdr, sizeof(hdr), "Warning: 399 %s \"%s\"\r\n", cf->domain, why);
	sipconn_reply(c, m, 403, NULL, hdr, NULL, NULL, 0);
}

/* Picks the credentials for our realm among Authorization and
 * Proxy-Authorization headers. 0, -ENOENT (none), or the parse error. */
static int
find_creds(const struct sipmsg *m, const char *realm, struct digest_creds *cr)
{
	static const enum sip_hdr_id ids[] = { SIP_H_PROXY_AUTHORIZATION, SIP_H_AUTHORIZATION };
	int rc = -ENOENT;

	for (size_t i = 0; i < 2; i++) {
		for (const struct sip_hdr *h = sipmsg_find(m, ids[i]); h != NULL;
		     h = sipmsg_find_next(m, h)) {
			int r = digest_parse_creds(h->value, cr);

			if (r == 0 && sip_str_eq(cr->realm, realm))
				return 0;
			if (r != 0 && rc == -ENOENT)
				rc = r;
		}
	}
	return rc;
}

/* Expiry the client asked for: Expires header, else the first Contact's
 * expires parameter, else -1. */
static int64_t
requested_expires(const struct sipmsg *m)
{
	const struct sip_hdr *h = sipmsg_find(m, SIP_H_CONTACT);
	struct sip_nameaddr na;
	struct sip_str v;
	uint32_t n;

	if (m->expires >= 0)
		return m->expires;
	if (h != NULL && sip_nameaddr_parse(h->value, &na) == 0 &&
	    sip_param_get(na.params, "expires", &v) && sip_str_u32(v, &n) == 0)
		return n;
	return -1;
}

/* Replay check: true when (nonce, nc) is new on this connection; records it. */
static bool
nonce_fresh(struct conn *c, const struct digest_creds *cr)
{
	uint64_t h = str_hash(cr->nonce);
	bool qop = cr->qop.len > 0;

	for (int i = 0; i < CONN_NONCES; i++) {
		struct nonce_seen *s = &c->nonces[i];

		if (s->hash != h)
			continue;
		if (!qop || cr->nc_val <= s->nc)
			return false;
		s->nc = cr->nc_val;
		return true;
	}
	c->nonces[c->nonce_next].hash = h;
	c->nonces[c->nonce_next].nc = qop ? cr->nc_val : 0;
	c->nonce_next = (c->nonce_next + 1) % CONN_NONCES;
	return true;
}

/* True when the Request-URI carries the node array's mark: a client we
 * redirected, served wherever it lands (placement.h). */
static bool
placed(const struct sipmsg *m)
{
	static const char mark[] = ";" PLACEMENT_MARK;
	const size_t n = sizeof(mark) - 1;

	for (uint32_t i = 0; i + n <= m->ruri.len; i++)
		if (strncasecmp(m->ruri.p + i, mark, n) == 0 &&
		    (i + n == m->ruri.len || m->ruri.p[i + n] == ';' || m->ruri.p[i + n] == '='))
			return true;
	return false;
}

/* 301 to the node the array chose for <aor>. */
static void
redirect(struct conn *c, const struct sipmsg *m, const char *aor, const char *where)
{
	char hdr[PLACEMENT_WHERE_MAX + 64];

	LOG(INFO, REGISTRAR, "%s: %s redirected to %s", c->peer_str, aor, where);
	snprintf(hdr, sizeof(hdr), "Contact: <sip:%s;transport=tls;" PLACEMENT_MARK ">\r\n",
		 where);
	sipconn_reply(c, m, 301, NULL, hdr, NULL, NULL, 0);
}

static void
accept_register(struct conn *c, const struct sipmsg *m, const char *aor)
{
	const struct engine_conf *cf = lcore_conf(c->lc);
	int64_t want = requested_expires(m);
	const struct sip_hdr *ct = sipmsg_find(m, SIP_H_CONTACT);
	struct sip_nameaddr na;
	char hdrs[1024], where[PLACEMENT_WHERE_MAX];
	uint32_t exp;
	int n;

	if (c->aor[0] != '\0' && strcasecmp(c->aor, aor) != 0) {
		deny(c, m, aor, "this connection is already authenticated as another user");
		return;
	}
	if (want == 0) {		/* sign-off */
		LOG(INFO, REGISTRAR, "%s: %s unregistered", c->peer_str, aor);
		c->aor[0] = '\0';
		c->registered_until_s = 0;
		sipconn_reply(c, m, 200, NULL, "Expires: 0\r\n", NULL, NULL, 0);
		return;
	}
	if (want > 0 && want < cf->register_min_expires) {
		snprintf(hdrs, sizeof(hdrs), "Min-Expires: %u\r\n", cf->register_min_expires);
		sipconn_reply(c, m, 423, NULL, hdrs, NULL, NULL, 0);
		return;
	}
	/* A new registration (not a refresh) may belong on another node. */
	if (c->aor[0] == '\0' && !placed(m) && placement_redirect(aor, where, sizeof(where))) {
		redirect(c, m, aor, where);
		return;
	}
	exp = (want < 0 || want > cf->register_expires) ? cf->register_expires : (uint32_t)want;
	snprintf(c->aor, sizeof(c->aor), "%s", aor);
	c->registered_until_s = lcore_now_s(c->lc) + exp;
	ctr_inc(c->lc, CTR_REGISTER_OK);
	LOG(INFO, REGISTRAR, "%s: %s registered for %u s", c->peer_str, aor, exp);

	n = 0;
	if (ct != NULL && sip_nameaddr_parse(ct->value, &na) == 0 && na.uri.len < 512)
		n = snprintf(hdrs, sizeof(hdrs), "Contact: <%.*s>;expires=%u\r\n",
			     (int)na.uri.len, na.uri.p, exp);
	/* What pidgin-sipe needs to sign on: Expires > 0, this exact Supported
	 * line, and Allow-Events with the provisioning event, no blanks. */
	snprintf(hdrs + n, sizeof(hdrs) - n,
		 "Expires: %u\r\n"
		 "Supported: msrtc-event-categories\r\n"
		 "Allow-Events: " ALLOW_EVENTS "\r\n", exp);
	sipconn_reply(c, m, 200, NULL, hdrs, NULL, NULL, 0);
}

void
registrar_register(struct conn *c, const struct sipmsg *m)
{
	const struct engine_conf *cf = lcore_conf(c->lc);
	struct digest_creds cr;
	char aor[CONN_AOR_MAX], from[CONN_AOR_MAX];
	const char *ha1;
	uint32_t wait;
	int rc;

	if (sip_uri_aor(m->to_uri, aor, sizeof(aor)) < 0) {
		sipconn_reply(c, m, 400, "Bad To address", NULL, NULL, NULL, 0);
		return;
	}
	if (sip_uri_aor(m->from_uri, from, sizeof(from)) < 0 || strcasecmp(from, aor) != 0) {
		sipconn_reply(c, m, 403, NULL,
			      "Warning: 399 parley \"Third-party registration is not allowed\"\r\n",
			      NULL, NULL, 0);
		return;
	}
	wait = ratelimit_retry_after(shared(c)->rl_addr, c->peer_str, strlen(c->peer_str),
				     lcore_now_s(c->lc));
	if (wait == 0)
		wait = ratelimit_retry_after(shared(c)->rl_user, aor, strlen(aor),
					     lcore_now_s(c->lc));
	if (wait > 0) {
		char hdr[400];

		ctr_inc(c->lc, CTR_REGISTER_RATELIMITED);
		LOG(NOTICE, REGISTRAR, "%s: REGISTER %s refused: too many failed logins", c->peer_str,
		    aor);
		snprintf(hdr, sizeof(hdr),
			 "Warning: 399 %s \"Too many failed logins; try again in %u s\"\r\n"
			 "Retry-After: %u\r\n", cf->domain, wait, wait);
		sipconn_reply(c, m, 403, NULL, hdr, NULL, NULL, 0);
		return;
	}

	rc = find_creds(m, cf->realm, &cr);
	if (rc == -ENOENT || rc == -EPROTONOSUPPORT) {
		challenge(c, m, aor, false);
		return;
	}
	if (rc != 0) {
		sipconn_reply(c, m, 400, "Malformed credentials", NULL, NULL, NULL, 0);
		return;
	}
	rc = digest_nonce_check(shared(c)->nonce_key, cr.nonce, lcore_now_s(c->lc), c->id,
				cf->nonce_ttl_s);
	if (rc != 0) {
		/* Expired, or not ours for this connection: a fresh challenge. */
		challenge(c, m, aor, rc == -ESTALE);
		return;
	}
	if (!sip_str_ieq(cr.username, aor)) {
		deny(c, m, aor, "The user name does not match the address being registered");
		return;
	}
	ha1 = htdigest_ha1(lcore_users(c->lc), aor, strlen(aor), cf->realm, strlen(cf->realm),
			   cr.alg);
	if (ha1 == NULL || !digest_verify(&cr, sip_method_name(SIP_M_REGISTER), ha1)) {
		deny(c, m, aor, "Invalid user name or password");
		return;
	}
	if (!nonce_fresh(c, &cr)) {
		challenge(c, m, aor, true);	/* a replay: make it prove itself again */
		return;
	}
	accept_register(c, m, aor);
}

void
registrar_subscribe(struct conn *c, const struct sipmsg *m)
{
	const struct sip_hdr *ev = sipmsg_find(m, SIP_H_EVENT);
	struct sip_str event = SIP_STR_NULL;
	char hdrs[512];
	uint32_t exp;

	if (ev != NULL) {
		event = ev->value;
		for (uint32_t i = 0; i < event.len; i++)
			if (event.p[i] == ';') {
				event.len = i;
				break;
			}
		event = sip_str_trim(event);
	}
	if (ev == NULL) {
		sipconn_reply(c, m, 489, NULL, "Allow-Events: " ALLOW_EVENTS "\r\n", NULL, NULL, 0);
		return;
	}
	/* pidgin-sipe fetches provisioning once with Expires: 0 outside a dialog
	 * (a fetch, RFC 6665 §4.1.2.3, which still gets the data); only an
	 * in-dialog Expires: 0 is an unsubscribe. */
	if (!sip_str_ieq(event, PROVISIONING_EVENT) || (m->expires == 0 && m->to_tag.len > 0)) {
		/* Events we do not serve: accepted with no subscription, which
		 * pidgin-sipe tolerates (a 488 on roaming-contacts would not be). */
		sipconn_reply(c, m, 200, NULL, "Expires: 0\r\n", NULL, NULL, 0);
		return;
	}
	static const char body[] =
		"<provisionGroupList xmlns=\"http://schemas.microsoft.com/2006/09/sip/"
		"provisiongrouplist-notification\"/>";

	if (m->expires == 0)
		exp = 0;
	else if (m->expires > 0 && (uint32_t)m->expires < lcore_conf(c->lc)->register_expires)
		exp = (uint32_t)m->expires;
	else
		exp = lcore_conf(c->lc)->register_expires;
	/* Group Chat starts only after this data arrives (sipe-signon.md). */
	snprintf(hdrs, sizeof(hdrs),
		 "Event: " PROVISIONING_EVENT "\r\n"
		 "ms-piggyback-cseq: %u\r\n"
		 "Expires: %u\r\n", m->cseq, exp);
	sipconn_reply(c, m, 200, NULL, hdrs, "application/vnd-microsoft-roaming-provisioning-v2+xml",
		      body, sizeof(body) - 1);
}
