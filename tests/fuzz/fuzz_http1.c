/* libFuzzer target: the Web service's HTTP/1.1 request head parser
 * (dataplane/http/http1.c), as web.c drives it: the head is the input up
 * to and including the first "\r\n\r\n" (an input without one gets it
 * appended), copied to an exact-size buffer. A head that parses then has
 * its target split as a filestore path and its Range read against a few
 * representation sizes; the results must keep the documented bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/http1/http1.h"
#include "tests/fuzz/fuzz.h"

static struct http1_req req;
static const struct http1_limits lim = { .max_headers = 64 };	/* web max_headers default */

static void
range(const char *v, uint64_t size)
{
	uint64_t a = 0, b = 0;

	if (http1_parse_range(v, size, &a, &b) == HTTP1_RANGE_OK)
		fz_check(a <= b && b < size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *e = memmem(data, size, "\r\n\r\n", 4);
	size_t hlen = e != NULL ? (size_t)(e - data) + 4 : size + 4;
	char *head, room[HTTP1_ROOM_LEN + 1], name[HTTP1_NAME_MAX], token[HTTP1_TOKEN_LEN + 1];
	int rc;

	if (size > 65536)
		return 0;
	head = malloc(hlen);
	if (head == NULL)
		return 0;
	if (e != NULL) {
		memcpy(head, data, hlen);
	} else {
		memcpy(head, data, size);
		memcpy(head + size, "\r\n\r\n", 4);
	}
	rc = http1_parse_head(head, hlen, &lim, &req);
	fz_check(rc == 0 || rc == 400 || rc == 413 || rc == 414 || rc == 431 || rc == 505);
	if (rc == 0) {
		fz_check(req.method >= HTTP1_GET && req.method <= HTTP1_OTHER);
		fz_check(req.minor == 0 || req.minor == 1);
		fz_check(strlen(req.target) <= HTTP1_TARGET_MAX);
		fz_check(!(req.has_te && req.has_length));
		rc = http1_filestore_target(req.target, "/filestore/", room, name, token);
		fz_check(rc == 0 || rc == 400 || rc == 404);
		if (rc == 0) {
			fz_check(strlen(room) == HTTP1_ROOM_LEN && http1_repo_name_ok(name));
			fz_check(token[0] == '\0' || strlen(token) == HTTP1_TOKEN_LEN);
		}
		if (req.has_range) {
			fz_check(strlen(req.range) < HTTP1_RANGE_MAX);
			range(req.range, 0);
			range(req.range, 1);
			range(req.range, 1000);
			range(req.range, UINT64_MAX);
		}
	}
	(void)http1_reason(rc);
	free(head);
	return 0;
}
