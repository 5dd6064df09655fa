/* libFuzzer target: the SIP value syntax of dataplane/sip/sipuri.c and
 * the string helpers of sipmsg.c, over one exact-size buffer: URIs and
 * AORs, name-addr, parameter lists, comma-separated lists, integers.
 * Each view a function returns must lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/sip/sipmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *buf_lo, *buf_hi;

static void
inside(struct sip_str s)
{
	if (s.len == 0)
		return;
	if (s.p < buf_lo || s.p + s.len > buf_hi)
		abort();
}

static void
uri(struct sip_str s)
{
	struct sip_uri u;
	struct sip_str v;
	char aor[128];
	ssize_t n;

	if (sip_uri_parse(s, &u) == 0) {
		inside(u.scheme);
		inside(u.user);
		inside(u.password);
		inside(u.host);
		inside(u.params);
		inside(u.headers);
		if (u.port < -1 || u.port > 65535)
			abort();
		if (sip_param_get(u.params, "transport", &v))
			inside(v);
		if (sip_param_get(u.params, "lr", &v))
			inside(v);
	}
	/* The user part is not checked for control characters here (the
	 * header parser refuses them), so the AOR may hold a NUL: only its
	 * terminator and bound are checked. */
	n = sip_uri_aor(s, aor, sizeof(aor));
	if (n >= 0 && ((size_t)n >= sizeof(aor) || aor[n] != '\0'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *b;
	struct sip_str s, rest, item, v;
	struct sip_nameaddr na;
	uint32_t u32;
	unsigned items = 0;

	if (size > 65536)
		return 0;
	b = malloc(size > 0 ? size : 1);
	if (b == NULL)
		return 0;
	memcpy(b, data, size);
	buf_lo = b;
	buf_hi = b + size;
	s = (struct sip_str){ b, (uint32_t)size };

	uri(s);
	if (sip_nameaddr_parse(s, &na) == 0) {
		inside(na.display);
		inside(na.uri);
		inside(na.params);
		uri(na.uri);
		if (sip_param_get(na.params, "tag", &v))
			inside(v);
		if (sip_param_get(na.params, "expires", &v))
			inside(v);
	}
	if (sip_param_get(s, "branch", &v))
		inside(v);
	rest = s;
	while (sip_list_next(&rest, &item)) {
		inside(item);
		if (++items > size + 1)
			abort();	/* no progress */
		if (sip_nameaddr_parse(item, &na) == 0)
			uri(na.uri);
	}
	(void)sip_str_u32(s, &u32);
	(void)sip_method_from(s);
	inside(sip_str_trim(s));
	free(b);
	return 0;
}
