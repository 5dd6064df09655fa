/* libFuzzer target: the peer frame decoder (dataplane/peer/peerframe.c) as
 * control/peer.c drives it: frames taken one after another from a stream
 * with a 64 KiB maximum until one errs or more is needed. Every frame it
 * takes must re-encode to the very same bytes, and HISTORY records and
 * JOIN_ACK / RESYNC_REQ users must walk to exactly the count the frame
 * announced. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/peer/peerframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[1 << 16];

static void
check(int cond)
{
	if (!cond)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peerframe f;
	struct peerframe_post r;
	struct peerframe_user u;
	size_t off = 0, pos;
	unsigned n;
	ssize_t got;

	while (off < size) {
		got = peerframe_decode(data + off, size - off, sizeof(out), &f);
		if (got <= 0) {
			check(got == 0 || (got < 0 && got >= -PEERFRAME_EPAYLOAD));
			break;
		}
		check((size_t)got <= size - off && (size_t)got >= PEERFRAME_HDR);
		check(f.type > 0 && f.type < PEERFRAME_TYPE_MAX);
		(void)peerframe_type_name(f.type);
		(void)peerframe_code_name(f.code);
		if (f.type == PEERFRAME_HISTORY) {
			pos = 0;
			n = 0;
			while (peerframe_history_next(&f, &pos, &r))
				n++;
			check(n == f.u.history.count);
		} else if (f.type == PEERFRAME_JOIN_ACK || f.type == PEERFRAME_RESYNC_REQ) {
			pos = 0;
			n = 0;
			while (peerframe_users_next(&f, &pos, &u))
				n++;
			check(n == f.u.users.count);
		} else {
			check(peerframe_encode(&f, out, sizeof(out)) == got);
			check(memcmp(out, data + off, (size_t)got) == 0);
		}
		off += (size_t)got;
	}
	return 0;
}
