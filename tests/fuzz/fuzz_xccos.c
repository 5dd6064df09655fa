/* libFuzzer target: the XCCOS codec's parser (dataplane/xccos/xccos.c) as
 * channel.c drives it on a SIP INFO body: an exact-size buffer, the
 * router's limits (64 KiB, depth 32), then the decoded message used the
 * way the engine uses it (DOM helpers, attributes, timestamps).
 *
 * A grpchat that parses is then relayed the way fanout.c builds a post
 * (our envelope, our grpchat start tag with extra_attrs, the inner bytes
 * verbatim) and the relayed document must parse again to the same inner
 * bytes: a post the server accepts must reach every member readable. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/xccos/xccos.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
static const struct xccos_limits lim = { .max_doc = 65536, .max_depth = 32 };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xccos_global_init();
	return 0;
}

/* Walks the <data> of a command like the command handlers do. */
static void
walk(xmlNodePtr n, int depth)
{
	xmlNodePtr c;
	uint64_t t;
	const char *v;

	if (n == NULL || depth > 40)
		return;
	for (c = xccos_child(n, NULL); c != NULL; c = xccos_next(c, NULL)) {
		(void)xccos_attr(c, "uri");
		(void)xccos_attr(c, "key");
		if ((v = xccos_attr(c, "ts")) != NULL)
			(void)xccos_ts_parse(v, &t);
		walk(c, depth + 1);
	}
}

static void
relay(const struct xccos_msg *m)
{
	static char err[256];
	struct xccos_msg again;
	struct xbuf b;
	char ts[XCCOS_TS_LEN], *doc;
	size_t len;
	int rc;

	xbuf_init(&b, 0);
	xccos_ts_format(UINT64_C(12846816776206356), ts);
	xccos_begin(&b, 42);
	xbuf_str(&b, "<grpchat id=\"grpchat\" seqid=\"1\"");
	xbuf_attr(&b, "chanUri", "ma-chan://example.com/5b0c7c1e");
	xbuf_attr(&b, "author", "sip:alice@example.com");
	xbuf_attr(&b, "ts", ts);
	xbuf_str(&b, m->extra_attrs);
	xbuf_str(&b, ">");
	xbuf_raw(&b, m->inner, m->inner_len);
	xbuf_str(&b, "</grpchat>");
	xccos_end(&b);
	fz_check(xbuf_ok(&b));
	doc = xbuf_take(&b, &len);
	fz_check(doc != NULL);
	/* The relayed post grows by our envelope only; no limit to trip. */
	rc = xccos_parse(doc, len, &(struct xccos_limits){ .max_doc = 1 << 20, .max_depth = 64 },
			 &again, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "relayed post does not parse (%d: %s):\n%.*s\n", rc, err,
			(int)len, doc);
		abort();
	}
	fz_check(again.kind == XCCOS_GRPCHAT);
	fz_check(again.inner_len == m->inner_len &&
	      memcmp(again.inner, m->inner, m->inner_len) == 0);
	xccos_msg_free(&again);
	free(doc);
	xbuf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct xccos_msg m;
	static char err[256];
	char *buf;
	uint64_t t;
	int rc;

	if (size > lim.max_doc + 16)
		return 0;
	buf = malloc(size > 0 ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	rc = xccos_parse(buf, size, &lim, &m, err, sizeof(err));
	fz_check(rc == 0 || rc == -E2BIG || rc == -EPERM || rc == -EBADMSG || rc == -ENOTSUP ||
	      rc == -ENOMEM);
	fz_check(strlen(err) < sizeof(err));
	if (rc == 0) {
		fz_check(m.kind == XCCOS_CMD || m.kind == XCCOS_GRPCHAT);
		fz_check(strlen(m.name) < sizeof(m.name) && strlen(m.seqid) < sizeof(m.seqid));
		if (m.kind == XCCOS_CMD) {
			walk(m.data, 0);
		} else {
			fz_check(m.inner != NULL && m.inner >= buf &&
			      m.inner + m.inner_len <= buf + size);
			fz_check(m.text != NULL && strlen(m.text) == m.text_len);
			fz_check(m.extra_attrs != NULL);
			if (m.ts != NULL)
				(void)xccos_ts_parse(m.ts, &t);
			relay(&m);
		}
	}
	xccos_msg_free(&m);
	xccos_msg_free(&m);	/* a freed message may be freed again */
	free(buf);
	return 0;
}
