/* See tlspair.h. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tls/tlscert.h"
#include "tests/dataplane/tls/tlspair.h"

void
tp_buf_add(struct tp_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		cr_assert_not_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void
tp_pair_init(struct tlspair *p, struct tlsterm_ctx *ctx, SSL_CTX *cc, SSL_SESSION *resume)
{
	memset(p, 0, sizeof(*p));
	p->t = tlsterm_new(ctx);
	cr_assert_not_null(p->t);
	p->c = SSL_new(cc);
	cr_assert_not_null(p->c);
	p->cin = BIO_new(BIO_s_mem());
	p->cout = BIO_new(BIO_s_mem());
	cr_assert(p->cin != NULL && p->cout != NULL);
	SSL_set_bio(p->c, p->cin, p->cout);
	SSL_set_connect_state(p->c);
	cr_assert_eq(SSL_set_tlsext_host_name(p->c, "localhost"), 1);
	if (resume != NULL)
		cr_assert_eq(SSL_set_session(p->c, resume), 1);
}

void
tp_pair_fini(struct tlspair *p)
{
	tlsterm_free(p->t);
	SSL_free(p->c);
	free(p->srv_rx.p);
	free(p->cli_rx.p);
}

bool
tp_pump_in(struct tlspair *p)
{
	unsigned char tmp[16384];
	bool moved = false;
	int n;

	while ((n = BIO_read(p->cout, tmp, sizeof(tmp))) > 0) {
		size_t chunk = p->feed_chunk ? p->feed_chunk : (size_t)n;

		for (size_t off = 0; off < (size_t)n; off += chunk) {
			size_t k = (size_t)n - off < chunk ? (size_t)n - off : chunk;

			cr_assert_eq(tlsterm_feed(p->t, tmp + off, k), 0);
			if (p->feed_chunk != 0)
				tp_server_read(p);	/* small feeds: read after each */
		}
		moved = true;
	}
	return moved;
}

void
tp_server_read(struct tlspair *p)
{
	static unsigned char tmp[20000];
	size_t len = p->read_len ? p->read_len : sizeof(tmp);
	ssize_t n;

	while ((n = tlsterm_read(p->t, tmp, len)) > 0)
		tp_buf_add(&p->srv_rx, tmp, (size_t)n);
	if (n < 0)
		p->srv_err = n;
}

bool
tp_pump_out(struct tlspair *p)
{
	const void *data;
	size_t n = tlsterm_pending_out(p->t, &data);

	if (n == 0)
		return false;
	if (p->out_chunk != 0 && n > p->out_chunk)
		n = p->out_chunk;
	cr_assert_eq(BIO_write(p->cin, data, (int)n), (int)n);
	tlsterm_consume_out(p->t, n);
	return true;
}

void
tp_client_step(struct tlspair *p)
{
	unsigned char tmp[20000];
	int ret;

	if (p->cli_err != 0)
		return;
	if (!SSL_is_init_finished(p->c)) {
		ret = SSL_do_handshake(p->c);
		if (ret != 1) {
			ret = SSL_get_error(p->c, ret);
			if (ret != SSL_ERROR_WANT_READ)
				p->cli_err = ret;
			return;
		}
	}
	while ((ret = SSL_read(p->c, tmp, sizeof(tmp))) > 0)
		tp_buf_add(&p->cli_rx, tmp, (size_t)ret);
	ret = SSL_get_error(p->c, ret);
	if (ret != SSL_ERROR_WANT_READ)
		p->cli_err = ret;
}

bool
tp_pump(struct tlspair *p)
{
	bool moved;

	tp_client_step(p);
	moved = tp_pump_in(p);
	tp_server_read(p);
	moved |= tp_pump_out(p);
	tp_client_step(p);
	moved |= tp_pump_in(p);
	tp_server_read(p);
	return moved;
}

void
tp_settle(struct tlspair *p)
{
	int i;

	for (i = 0; i < TP_MAX_ROUNDS && tp_pump(p); i++)
		;
	cr_assert_lt(i, TP_MAX_ROUNDS, "no quiescence");
}

void
tp_handshake(struct tlspair *p)
{
	tp_settle(p);
	cr_assert_eq(p->srv_err, 0, "server error %zd", p->srv_err);
	cr_assert_eq(p->cli_err, 0, "client error %d", p->cli_err);
	cr_assert(tlsterm_handshake_done(p->t));
	cr_assert(SSL_is_init_finished(p->c));
}

void
tp_fill(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
}

void
tp_echo(struct tlspair *p, size_t n, size_t piece)
{
	unsigned char *data = malloc(n);
	size_t off, k;

	cr_assert_not_null(data);
	tp_fill(data, n, (unsigned)(n + piece));
	p->srv_rx.len = 0;
	p->cli_rx.len = 0;
	for (off = 0; off < n; off += k) {
		k = n - off < piece ? n - off : piece;
		cr_assert_eq(SSL_write(p->c, data + off, (int)k), (int)k);
		tp_pump(p);
	}
	tp_settle(p);
	cr_assert_eq(p->srv_err, 0);
	cr_assert_eq(p->srv_rx.len, n);
	cr_assert_eq(memcmp(p->srv_rx.p, data, n), 0);
	for (off = 0; off < n; off += k) {
		k = n - off < piece ? n - off : piece;
		cr_assert_eq(tlsterm_write(p->t, data + off, k), (ssize_t)k);
		tp_pump(p);
	}
	tp_settle(p);
	cr_assert_eq(p->cli_err, 0, "client error %d", p->cli_err);
	cr_assert_eq(p->cli_rx.len, n);
	cr_assert_eq(memcmp(p->cli_rx.p, data, n), 0);
	free(data);
}

void
tp_cert_make(const char *dir, const char *name, const char *cn, char *cert, char *key)
{
	char err[256];

	snprintf(cert, TP_PATH_MAX, "%s/%s.crt", dir, name);
	snprintf(key, TP_PATH_MAX, "%s/%s.key", dir, name);
	cr_assert_eq(tlscert_ensure(cert, key, cn, 30, err, sizeof(err)), 1, "%s", err);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void
tp_dir_remove(const char *dir)
{
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

char tp_dir[] = "/tmp/test_tls.XXXXXX";
char tp_cert[TP_PATH_MAX], tp_key[TP_PATH_MAX];

void
tp_fixture_init(void)
{
	cr_assert_not_null(mkdtemp(tp_dir));
	tp_cert_make(tp_dir, "a", "chat.example.com", tp_cert, tp_key);
}

void
tp_fixture_fini(void)
{
	tp_dir_remove(tp_dir);
}
