/* Inside the etcd client: what etcd.c and etcd_watch.c share. */
#ifndef PARLEY_ETCD_INT_H
#define PARLEY_ETCD_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "control/etcd.h"

/* gRPC status codes the gateway returns in "code". */
#define GRPC_NOT_FOUND		5
#define GRPC_UNAVAILABLE	14

struct etcd {
	CURL			*curl;
	struct curl_slist	*headers;
	char			*ep[ETCD_ENDPOINTS_MAX];
	unsigned int		nep;
	unsigned int		cur;		/* the endpoint that answered last */
	unsigned int		timeout_ms;
	/* The answer being received. */
	char			*body;
	size_t			len, cap;
	bool			too_big;
};

/* Appends "; " and a printf'd text to <err> (one failure per endpoint). */
void etcd_err_add(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A base64 JSON string of <p> (<n> bytes), a JSON string of <v>; NULL when
 * out of memory. */
json_t *etcd_b64_json(const void *p, size_t n);
json_t *etcd_i64_json(int64_t v);

/* One key of an answer ({"key":..,"value":..,...}) into <kv>. 0 or -EPROTO,
 * -ENOMEM. */
int etcd_parse_kv(const json_t *o, struct etcd_kv *kv);

#endif
