/* The load generators' shared pieces; see loadkit.h. */
#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>

#include "perf/loadkit.h"

bool
loadkit_rx_mark(struct rxwin *r, uint32_t s)
{
	uint32_t d;

	if (s > r->last) {
		d = s - r->last;
		r->seen = d >= 64 ? 0 : r->seen << d;
		r->seen |= 1;
		r->last = s;
		return true;
	}
	d = r->last - s;
	if (d >= 64)
		return true;	/* too old to tell */
	if (r->seen & (1ull << d))
		return false;
	r->seen |= 1ull << d;
	return true;
}

uint64_t
loadkit_num(const char **p, const char *end, bool *ok)
{
	const char *s = *p;
	uint64_t v = 0;

	while (s < end && *s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	if (s == *p || s >= end || *s != ' ')
		*ok = false;
	*p = s + 1;
	return v;
}

int
loadkit_probe(const struct sockaddr_in *dst)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(err);

	if (fd == -1)
		return errno;
	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) == -1) {
		if (errno != EINPROGRESS)
			err = errno;
		else if (poll(&p, 1, 3000) != 1)
			err = ETIMEDOUT;
		else
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	}
	close(fd);
	return err;
}
