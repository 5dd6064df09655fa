/* SIP-over-TLS test and load client; see client.h. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dataplane/sip/digest.h"
#include "dataplane/sip/sipmsg.h"
#include "perf/client.h"

#define BUF_CAP (1 << 20)

struct pc_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char *buf;		/* received plaintext */
	size_t len;
	size_t consumed;	/* bytes of the message returned last time */
	bool dead;		/* the peer closed, or the connection failed */
};

static const struct sipmsg_limits client_lim = { BUF_CAP, SIPMSG_HDR_CAP };

static int
wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };

	return poll(&p, 1, timeout_ms);
}

struct pc_conn *
pc_connect(const char *host, uint16_t port, const struct pc_opts *o, int timeout_ms, char *err,
	   size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct pc_conn *c;
	char portstr[8];
	int one = 1, rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = -1;
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (getaddrinfo(host, portstr, &hints, &ai) != 0) {
		snprintf(err, errlen, "cannot resolve %s", host);
		goto out_free;
	}
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd == -1 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		snprintf(err, errlen, "connect %s:%u: %s", host, port, strerror(errno));
		goto out_free;
	}
	freeaddrinfo(ai);
	ai = NULL;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL)
		goto out_ssl;
	if (o != NULL && o->min_tls)
		SSL_CTX_set_min_proto_version(c->ctx, o->min_tls);
	if (o != NULL && o->max_tls)
		SSL_CTX_set_max_proto_version(c->ctx, o->max_tls);
	if (o != NULL && o->max_tls && o->max_tls < TLS1_2_VERSION)
		SSL_CTX_set_security_level(c->ctx, 0);
	if (o != NULL && o->cafile) {
		if (SSL_CTX_load_verify_locations(c->ctx, o->cafile, NULL) != 1)
			goto out_ssl;
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	}
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_CLIENT);
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL)
		goto out_ssl;
	if (o != NULL && o->cafile)
		SSL_set1_host(c->ssl, host);
	if (o != NULL && o->session)
		SSL_set_session(c->ssl, o->session);
	SSL_set_fd(c->ssl, c->fd);
	/* Blocking handshake bounded by a receive timeout on the socket. */
	{
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	rc = SSL_connect(c->ssl);
	if (rc != 1)
		goto out_ssl;
	/* TLS 1.3 tickets arrive after the handshake: read them now, briefly,
	 * so that pc_get_session() returns a resumable session. */
	c->buf = malloc(BUF_CAP);
	if (c->buf == NULL)
		goto out_ssl;
	return c;

out_ssl:
	snprintf(err, errlen, "TLS handshake with %s:%u failed: %s", host, port,
		 ERR_reason_error_string(ERR_peek_last_error()) ?
		 ERR_reason_error_string(ERR_peek_last_error()) : "connection closed");
	ERR_clear_error();
out_free:
	if (ai)
		freeaddrinfo(ai);
	pc_close(c);
	return NULL;
}

void
pc_close(struct pc_conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl) {
		/* Without a close_notify OpenSSL marks the session not resumable. */
		SSL_set_quiet_shutdown(c->ssl, 0);
		if (SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
	}
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->fd != -1)
		close(c->fd);
	free(c->buf);
	free(c);
}

int
pc_send(struct pc_conn *c, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		int n = SSL_write(c->ssl, (const char *)buf + off, (int)(len - off));

		if (n <= 0)
			return -1;
		off += n;
	}
	return 0;
}

/* Reads more plaintext within <timeout_ms>: 1, 0 timeout, -1 closed. */
static int
fill(struct pc_conn *c, int timeout_ms)
{
	int n;

	if (c->len >= BUF_CAP)
		return -1;
	if (SSL_pending(c->ssl) == 0) {
		int r = wait_fd(c->fd, POLLIN, timeout_ms);

		if (r == 0)
			return 0;
		if (r < 0) {
			c->dead = true;
			return -1;
		}
	}
	n = SSL_read(c->ssl, c->buf + c->len, (int)(BUF_CAP - c->len));
	if (n <= 0) {
		int e = SSL_get_error(c->ssl, n);

		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ)
			return 1;	/* a non-application record (ticket) */
		c->dead = true;
		return -1;
	}
	c->len += n;
	return 1;
}

int
pc_recv(struct pc_conn *c, struct sipmsg *m, int timeout_ms)
{
	if (c->consumed) {
		memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
		c->len -= c->consumed;
		c->consumed = 0;
	}
	for (;;) {
		size_t skip = sipmsg_skip_keepalive(c->buf, c->len);
		ssize_t n;
		int r;

		if (skip) {
			memmove(c->buf, c->buf + skip, c->len - skip);
			c->len -= skip;
		}
		n = sipmsg_frame(c->buf, c->len, &client_lim);
		if (n < 0)
			return -1;
		if (n > 0) {
			if (sipmsg_parse(m, c->buf, n, &client_lim) != 0)
				return -1;
			c->consumed = n;
			return 1;
		}
		r = fill(c, timeout_ms);
		if (r <= 0)
			return r;
	}
}

bool
pc_conn_alive(struct pc_conn *c)
{
	return !c->dead;
}

bool
pc_wait_closed(struct pc_conn *c, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		int r = fill(c, 50);

		if (r < 0)
			return true;
	}
	return false;
}

void
pc_peer_fingerprint(struct pc_conn *c, char *out)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (x == NULL)
		return;
	X509_digest(x, EVP_sha256(), md, &n);
	for (unsigned int i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	X509_free(x);
}

bool
pc_resumed(struct pc_conn *c)
{
	return SSL_session_reused(c->ssl) == 1;
}

void *
pc_get_session(struct pc_conn *c)
{
	return SSL_get1_session(c->ssl);
}

bool
pc_header(const struct sipmsg *m, const char *name, char *out, size_t cap)
{
	const struct sip_hdr *h = sipmsg_find_name(m, name);

	if (h == NULL)
		return false;
	snprintf(out, cap, "%.*s", (int)h->value.len, h->value.p);
	return true;
}

static void
rand_hex(char *out, size_t nbytes)
{
	unsigned char r[32];

	RAND_bytes(r, (int)nbytes);
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

ssize_t
pc_build(char *out, size_t cap, const char *method, const char *ruri, const char *aor,
	 const char *to_uri, struct pc_dialog *d, const char *extra_hdrs, const char *ctype,
	 const char *body)
{
	char branch[33];
	size_t blen = body ? strlen(body) : 0;
	int n;

	if (d->call_id[0] == '\0')
		rand_hex(d->call_id, 16);
	if (d->from_tag[0] == '\0')
		rand_hex(d->from_tag, 8);
	rand_hex(branch, 12);
	n = snprintf(out, cap,
		     "%s %s SIP/2.0\r\n"
		     "Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK%s\r\n"
		     "Max-Forwards: 70\r\n"
		     "From: <sip:%s>;tag=%s\r\n"
		     "To: <%s>%s%s\r\n"
		     "Call-ID: %s\r\n"
		     "CSeq: %u %s\r\n"
		     "Contact: <sip:%s;transport=tls>\r\n"
		     "User-Agent: parley-client/0.1\r\n"
		     "%s"
		     "%s%s%s"
		     "Content-Length: %zu\r\n\r\n%s",
		     method, ruri, branch, aor, d->from_tag, to_uri,
		     d->to_tag[0] ? ";tag=" : "", d->to_tag, d->call_id, d->cseq, method, aor,
		     extra_hdrs ? extra_hdrs : "",
		     ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
		     blen, body ? body : "");
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

/* Value of parameter <name> in a challenge header ("Digest a="b", c=d"). */
static bool
chal_param(const char *h, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = h;

	while ((p = strcasestr(p, name)) != NULL) {
		if ((p == h || p[-1] == ' ' || p[-1] == ',') && p[nl] == '=') {
			const char *v = p + nl + 1, *e;

			if (*v == '"') {
				v++;
				e = strchr(v, '"');
			} else {
				e = v + strcspn(v, ", ");
			}
			if (e == NULL || (size_t)(e - v) >= cap)
				return false;
			memcpy(out, v, e - v);
			out[e - v] = '\0';
			return true;
		}
		p += nl;
	}
	return false;
}

int
pc_register(struct pc_conn *c, const char *aor, const char *password, uint32_t expires,
	    char *warning, size_t wcap)
{
	return pc_register_to(c, aor, password, expires, NULL, "Warning", warning, wcap);
}

int
pc_register_to(struct pc_conn *c, const char *aor, const char *password, uint32_t expires,
	       const char *to_ruri, const char *hname, char *hval, size_t hcap)
{
	char req[4096], ruri[300], to[300], extra[1024], chal[1024];
	char realm[256], nonce[128], alg[32] = "MD5", ha1[65], resp[65], cnonce[17];
	struct pc_dialog d = { .cseq = 1 };
	const char *domain = strchr(aor, '@');
	struct sipmsg m;
	bool proxy;
	ssize_t n;

	if (domain == NULL)
		return -1;
	snprintf(ruri, sizeof(ruri), "%s%s", to_ruri ? "" : "sip:", to_ruri ? to_ruri : domain + 1);
	snprintf(to, sizeof(to), "sip:%s", aor);
	snprintf(extra, sizeof(extra), "Expires: %u\r\n", expires);
	n = pc_build(req, sizeof(req), "REGISTER", ruri, aor, to, &d, extra, NULL, NULL);
	if (n < 0 || pc_send(c, req, n) != 0 || pc_recv(c, &m, 5000) != 1)
		return -1;
	if (m.status != 401 && m.status != 407)
		goto out;
	proxy = m.status == 407;
	if (!pc_header(&m, proxy ? "Proxy-Authenticate" : "WWW-Authenticate", chal, sizeof(chal)) ||
	    !chal_param(chal, "realm", realm, sizeof(realm)) ||
	    !chal_param(chal, "nonce", nonce, sizeof(nonce)))
		return -1;
	chal_param(chal, "algorithm", alg, sizeof(alg));
	{
		enum digest_alg a = strcasecmp(alg, "SHA-256") == 0 ? DIGEST_SHA256 : DIGEST_MD5;

		rand_hex(cnonce, 8);
		digest_ha1(a, aor, realm, password, ha1);
		digest_response(a, ha1, nonce, "00000001", cnonce, "auth", "REGISTER", ruri, resp);
		snprintf(extra, sizeof(extra),
			 "Expires: %u\r\n"
			 "%s: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
			 "response=\"%s\", algorithm=%s, qop=auth, nc=00000001, cnonce=\"%s\"\r\n",
			 expires, proxy ? "Proxy-Authorization" : "Authorization", aor, realm,
			 nonce, ruri, resp, alg, cnonce);
	}
	d.cseq++;
	n = pc_build(req, sizeof(req), "REGISTER", ruri, aor, to, &d, extra, NULL, NULL);
	if (n < 0 || pc_send(c, req, n) != 0 || pc_recv(c, &m, 5000) != 1)
		return -1;
out:
	if (hval != NULL && !pc_header(&m, hname, hval, hcap))
		hval[0] = '\0';
	return m.status;
}
