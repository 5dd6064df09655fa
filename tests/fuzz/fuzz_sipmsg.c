/* libFuzzer target: SIP stream framing and message parsing
 * (dataplane/sip/sipmsg.c, sipuri.c), as sipconn.c drives them on one
 * connection's decrypted bytes: skip keep-alives, frame, parse in place,
 * consume, repeat. Each parsed message is then taken apart the way the
 * stack does (URIs, AORs, name-addrs, parameters, header lists), and
 * Authorization values go through the Digest parser.
 *
 * Every buffer given to the code under test is malloc()ed at its exact
 * length, so ASan sees a read one byte past the end. Invariants of the API
 * (a frame never exceeds what it was given, a parsed body is the framed
 * remainder) abort, so libFuzzer records them as crashes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/sip/digest.h"
#include "dataplane/sip/sipmsg.h"
#include "tests/fuzz/fuzz.h"

static struct sipmsg msg;	/* large: keep it off the stack */

/* The router's defaults (router/config.c: sip max_message, max_headers). */
static const struct sipmsg_limits lim = { .max_msg = 65536, .max_headers = 64 };

static void
take_uri(struct sip_str s)
{
	struct sip_uri u;
	char aor[256];
	ssize_t n;

	if (sip_uri_parse(s, &u) == 0) {
		fz_check(u.host.len <= s.len && u.user.len <= s.len);
		(void)sip_param_get(u.params, "transport", &(struct sip_str){ 0 });
		(void)sip_param_get(u.params, "maddr", &(struct sip_str){ 0 });
	}
	n = sip_uri_aor(s, aor, sizeof(aor));
	if (n >= 0)
		fz_check((size_t)n < sizeof(aor) && aor[n] == '\0');
}

static void
take_apart(const struct sipmsg *m)
{
	const struct sip_hdr *h;
	struct sip_str rest, item, val;
	struct sip_nameaddr na;
	struct digest_creds cr;
	uint16_t i;

	(void)sipmsg_can_reply(m);
	(void)sipmsg_find_name(m, "X-Fuzz");
	(void)sipmsg_find_name(m, "Contact");
	if (m->is_request)
		take_uri(m->ruri);
	take_uri(m->from_uri);
	take_uri(m->to_uri);
	for (i = 0; i < m->nhdr; i++) {
		h = &m->hdr[i];
		rest = h->value;
		while (sip_list_next(&rest, &item)) {
			fz_check(item.len <= h->value.len);
			if (h->id == SIP_H_CONTACT || h->id == SIP_H_ROUTE ||
			    h->id == SIP_H_RECORD_ROUTE) {
				if (sip_nameaddr_parse(item, &na) == 0) {
					take_uri(na.uri);
					(void)sip_param_get(na.params, "expires", &val);
					(void)sip_param_get(na.params, "+sip.instance", &val);
				}
			}
		}
		if (h->id == SIP_H_AUTHORIZATION || h->id == SIP_H_PROXY_AUTHORIZATION)
			(void)digest_parse_creds(h->value, &cr);
		if (h->id == SIP_H_SESSION_EXPIRES || h->id == SIP_H_MIN_SE) {
			uint32_t v;

			(void)sip_str_u32(h->value, &v);
		}
	}
	(void)sipmsg_find_next(m, sipmsg_find(m, SIP_H_VIA));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *stream, *one;
	size_t off = 0, skip;
	ssize_t n;
	int rc;

	stream = malloc(size > 0 ? size : 1);
	if (stream == NULL)
		return 0;
	memcpy(stream, data, size);
	while (off < size) {
		skip = sipmsg_skip_keepalive(stream + off, size - off);
		fz_check(skip <= size - off);
		off += skip;
		if (off == size)
			break;
		n = sipmsg_frame(stream + off, size - off, &lim);
		if (n <= 0)
			break;		/* need more, or close the connection */
		fz_check((size_t)n <= size - off && (size_t)n <= lim.max_msg);
		one = malloc((size_t)n);
		if (one == NULL)
			break;
		memcpy(one, stream + off, (size_t)n);
		rc = sipmsg_parse(&msg, one, (size_t)n, &lim);
		if (rc == 0) {
			fz_check(msg.len == (uint32_t)n);
			fz_check(msg.body.p + msg.body.len == one + n);
			fz_check(msg.body.len == (uint32_t)(msg.content_length > 0 ?
							  msg.content_length : 0));
			fz_check(msg.call_id.len > 0 && msg.nhdr <= lim.max_headers);
		}
		if (rc == 0 || rc == -EBADMSG)
			take_apart(&msg);
		free(one);
		off += (size_t)n;
	}
	/* The same bytes handed to the parser unframed, as one message. */
	if (size <= lim.max_msg) {
		one = malloc(size > 0 ? size : 1);
		if (one != NULL) {
			memcpy(one, data, size);
			if (sipmsg_parse(&msg, one, size, &lim) == -EBADMSG)
				take_apart(&msg);
			free(one);
		}
	}
	free(stream);
	return 0;
}
