/* The etcd client's codec alone (control/etcd.h): base64 (RFC 4648 test
 * vectors), prefix range ends, the gateway's int64-as-string numbers,
 * request bodies and answers as the etcd 3.4 gateway writes them. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/etcd.h"

static void
enc_is(const char *in, const char *want)
{
	char out[64];

	cr_assert_eq(etcd_b64_encode(in, strlen(in), out), strlen(want));
	cr_assert_str_eq(out, want);
}

Test(etcd_codec, b64_encode_rfc4648)
{
	enc_is("", "");
	enc_is("f", "Zg==");
	enc_is("fo", "Zm8=");
	enc_is("foo", "Zm9v");
	enc_is("foob", "Zm9vYg==");
	enc_is("fooba", "Zm9vYmE=");
	enc_is("foobar", "Zm9vYmFy");
}

static void
dec_is(const char *in, const char *want)
{
	char out[64];

	cr_assert_eq(etcd_b64_decode(in, strlen(in), out), (ssize_t)strlen(want), "%s", in);
	cr_assert_str_eq(out, want);
}

Test(etcd_codec, b64_decode_rfc4648)
{
	dec_is("", "");
	dec_is("Zg==", "f");
	dec_is("Zm8=", "fo");
	dec_is("Zm9v", "foo");
	dec_is("Zm9vYg==", "foob");
	dec_is("Zm9vYmE=", "fooba");
	dec_is("Zm9vYmFy", "foobar");
}

Test(etcd_codec, b64_round_trip_every_byte)
{
	char in[256], enc[ETCD_B64_LEN(256) + 1], dec[256 + 1];

	for (int i = 0; i < 256; i++)
		in[i] = (char)i;
	for (size_t n = 0; n <= sizeof(in); n++) {
		size_t e = etcd_b64_encode(in, n, enc);

		cr_assert_eq(e, ETCD_B64_LEN(n));
		cr_assert_eq(etcd_b64_decode(enc, e, dec), (ssize_t)n);
		cr_assert(memcmp(in, dec, n) == 0);
	}
}

Test(etcd_codec, b64_decode_refuses)
{
	static const char *const bad[] = {
		"Zg=", "Zg", "Z===", "====", "Zm9v=", "Zg==Zg==", "Zm=v", "Zm9*", "Zm9v\n",
		"Zm 9v", "=Zm9",
	};
	char out[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(etcd_b64_decode(bad[i], strlen(bad[i]), out), -1, "%s", bad[i]);
}

Test(etcd_codec, prefix_end)
{
	char out[16];

	cr_assert_eq(etcd_prefix_end("/a/", out), 3);
	cr_assert_str_eq(out, "/a0");
	cr_assert_eq(etcd_prefix_end("ab", out), 2);
	cr_assert_str_eq(out, "ac");
	cr_assert_eq(etcd_prefix_end("a\xff", out), 1);
	cr_assert_str_eq(out, "b");
	cr_assert_eq(etcd_prefix_end("\xff\xff", out), 0);
	cr_assert_eq(etcd_prefix_end("", out), 0);
}

Test(etcd_codec, json_i64)
{
	int64_t v;
	json_t *j;

	cr_assert_eq(etcd_json_i64(NULL, &v), 0);
	cr_assert_eq(v, 0);
	j = json_string("4111120479926620166");	/* a lease id: above 2^53 */
	cr_assert_eq(etcd_json_i64(j, &v), 0);
	cr_assert_eq(v, 4111120479926620166LL);
	json_decref(j);
	j = json_integer(42);
	cr_assert_eq(etcd_json_i64(j, &v), 0);
	cr_assert_eq(v, 42);
	json_decref(j);
	j = json_string("12x");
	cr_assert_eq(etcd_json_i64(j, &v), -1);
	json_decref(j);
	j = json_string("");
	cr_assert_eq(etcd_json_i64(j, &v), -1);
	json_decref(j);
	j = json_true();
	cr_assert_eq(etcd_json_i64(j, &v), -1);
	json_decref(j);
}

static char *
dump(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(v);
	return s;
}

Test(etcd_codec, requests)
{
	char *s;

	s = dump(etcd_req_put("foo", "bar", 3, 0));
	cr_assert_str_eq(s, "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}");
	free(s);
	s = dump(etcd_req_put("foo", "bar", 3, 4111120479926620166LL));
	cr_assert_str_eq(s, "{\"key\":\"Zm9v\",\"lease\":\"4111120479926620166\","
			 "\"value\":\"YmFy\"}");
	free(s);
	s = dump(etcd_req_range("foo", NULL));
	cr_assert_str_eq(s, "{\"key\":\"Zm9v\"}");
	free(s);
	s = dump(etcd_req_range("/a/", "/a0"));
	cr_assert_str_eq(s, "{\"key\":\"L2Ev\",\"range_end\":\"L2Ew\"}");
	free(s);
	/* "" is etcd's "\0": every key from <key> on. */
	s = dump(etcd_req_range("\xff", ""));
	cr_assert_str_eq(s, "{\"key\":\"/w==\",\"range_end\":\"AA==\"}");
	free(s);
	s = dump(etcd_req_create("foo", "bar", 3, 7));
	cr_assert_str_eq(s, "{\"compare\":[{\"create_revision\":\"0\",\"key\":\"Zm9v\","
			 "\"result\":\"EQUAL\",\"target\":\"CREATE\"}],"
			 "\"failure\":[{\"request_range\":{\"key\":\"Zm9v\"}}],"
			 "\"success\":[{\"request_put\":{\"key\":\"Zm9v\",\"lease\":\"7\","
			 "\"value\":\"YmFy\"}}]}");
	free(s);
}

/* An answer of etcd 3.4's gateway, as captured. */
Test(etcd_codec, range_answer)
{
	static const char ans[] =
		"{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"
		"\"13668033151171901709\",\"revision\":\"5\",\"raft_term\":\"2\"},\"kvs\":["
		"{\"key\":\"eQ==\",\"create_revision\":\"5\",\"mod_revision\":\"5\",\"version\":"
		"\"1\",\"value\":\"YmFy\",\"lease\":\"4111120479926620174\"},"
		"{\"key\":\"eg==\",\"create_revision\":\"3\",\"mod_revision\":\"4\",\"version\":"
		"\"2\"}],\"count\":\"2\"}";
	json_t *j = json_loads(ans, 0, NULL);
	struct etcd_kvs kvs;

	cr_assert_not_null(j);
	cr_assert_eq(etcd_parse_kvs(j, &kvs), 0);
	cr_assert_eq(kvs.revision, 5);
	cr_assert_eq(kvs.n, 2);
	cr_assert_str_eq(kvs.kv[0].key, "y");
	cr_assert_str_eq(kvs.kv[0].value, "bar");
	cr_assert_eq(kvs.kv[0].value_len, 3);
	cr_assert_eq(kvs.kv[0].lease, 4111120479926620174LL);
	cr_assert_eq(kvs.kv[0].create_revision, 5);
	/* proto3 leaves out empty values and zero numbers. */
	cr_assert_str_eq(kvs.kv[1].key, "z");
	cr_assert_str_eq(kvs.kv[1].value, "");
	cr_assert_eq(kvs.kv[1].value_len, 0);
	cr_assert_eq(kvs.kv[1].lease, 0);
	cr_assert_eq(kvs.kv[1].version, 2);
	etcd_kvs_free(&kvs);
	json_decref(j);
}

Test(etcd_codec, range_answer_empty_and_bad)
{
	static const char *const bad[] = {
		"{\"header\":{\"revision\":\"x\"}}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":{}}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"!!\"}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"eQ==\",\"value\":7}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"eQ==\",\"version\":\"v\"}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[7]}",
	};
	struct etcd_kvs kvs;
	json_t *j = json_loads("{\"header\":{\"revision\":\"9\"}}", 0, NULL);

	cr_assert_eq(etcd_parse_kvs(j, &kvs), 0);
	cr_assert_eq(kvs.n, 0);
	cr_assert_eq(kvs.revision, 9);
	etcd_kvs_free(&kvs);
	json_decref(j);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, NULL);
		cr_assert_not_null(j, "%s", bad[i]);
		cr_assert_eq(etcd_parse_kvs(j, &kvs), -EPROTO, "%s", bad[i]);
		cr_assert_eq(kvs.n, 0);
		json_decref(j);
	}
}

Test(etcd_codec, error_answer)
{
	char msg[128];
	json_t *j = json_loads("{\"error\":\"etcdserver: requested lease not found\","
			       "\"message\":\"etcdserver: requested lease not found\",\"code\":5}",
			       0, NULL);

	cr_assert_eq(etcd_parse_error(j, msg, sizeof(msg)), 5);
	cr_assert_str_eq(msg, "etcdserver: requested lease not found");
	json_decref(j);
	j = json_loads("{\"header\":{}}", 0, NULL);
	cr_assert_eq(etcd_parse_error(j, msg, sizeof(msg)), -1);
	json_decref(j);
	cr_assert_eq(etcd_parse_error(NULL, msg, sizeof(msg)), -1);
}

Test(etcd_codec, cas_and_watch_requests)
{
	char *s;

	s = dump(etcd_req_cas("foo", 12, "bar", 3, 0));
	cr_assert_str_eq(s, "{\"compare\":[{\"key\":\"Zm9v\",\"mod_revision\":\"12\","
			 "\"result\":\"EQUAL\",\"target\":\"MOD\"}],"
			 "\"success\":[{\"request_put\":{\"key\":\"Zm9v\",\"value\":\"YmFy\"}}]}");
	free(s);
	/* No value: a delete, still only if unchanged. */
	s = dump(etcd_req_cas("foo", 0, NULL, 0, 0));
	cr_assert_str_eq(s, "{\"compare\":[{\"key\":\"Zm9v\",\"mod_revision\":\"0\","
			 "\"result\":\"EQUAL\",\"target\":\"MOD\"}],"
			 "\"success\":[{\"request_delete_range\":{\"key\":\"Zm9v\"}}]}");
	free(s);
	s = dump(etcd_cmp_mod("foo", 3));
	cr_assert_str_eq(s, "{\"key\":\"Zm9v\",\"mod_revision\":\"3\",\"result\":\"EQUAL\","
			 "\"target\":\"MOD\"}");
	free(s);
	s = dump(etcd_op_put("foo", "bar", 3));
	cr_assert_str_eq(s, "{\"request_put\":{\"key\":\"Zm9v\",\"value\":\"YmFy\"}}");
	free(s);
	s = dump(etcd_op_delete("foo"));
	cr_assert_str_eq(s, "{\"request_delete_range\":{\"key\":\"Zm9v\"}}");
	free(s);
	s = dump(etcd_req_watch("/a/", 7));
	cr_assert_str_eq(s, "{\"create_request\":{\"key\":\"L2Ev\",\"range_end\":\"L2Ew\","
			 "\"start_revision\":\"7\"}}");
	free(s);
}

/* Watch messages of etcd 3.4's gateway, as captured. */
Test(etcd_codec, watch_messages)
{
	static const char created[] =
		"{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":"
		"\"1\",\"raft_term\":\"2\"},\"created\":true}}";
	static const char events[] =
		"{\"result\":{\"header\":{\"revision\":\"3\"},\"events\":["
		"{\"kv\":{\"key\":\"L3AvYy9h\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
		"\"version\":\"1\",\"value\":\"eA==\"}},"
		"{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3AvYy9h\",\"mod_revision\":\"3\"}}]}}";
	static const char compacted[] =
		"{\"result\":{\"header\":{\"raft_term\":\"2\"},\"canceled\":true,"
		"\"compact_revision\":\"5\"}}";
	static const char *const bad[] = {
		"{}",
		"{\"result\":{\"header\":{\"revision\":\"x\"}}}",
		"{\"result\":{\"header\":{\"revision\":\"1\"},\"events\":{}}}",
		"{\"result\":{\"header\":{\"revision\":\"1\"},\"events\":[{\"type\":7}]}}",
		"{\"result\":{\"header\":{\"revision\":\"1\"},\"events\":["
		"{\"kv\":{\"key\":\"!\"}}]}}",
	};
	struct etcd_event *ev;
	int64_t rev, compact;
	bool canceled;
	size_t n;
	char why[128];
	json_t *j;

	j = json_loads(created, 0, NULL);
	cr_assert_eq(etcd_parse_watch(j, &ev, &n, &rev, &canceled, &compact, why, sizeof(why)),
		     0);
	cr_assert_eq(n, 0);
	cr_assert_eq(rev, 1);
	cr_assert(!canceled);
	json_decref(j);

	j = json_loads(events, 0, NULL);
	cr_assert_eq(etcd_parse_watch(j, &ev, &n, &rev, &canceled, &compact, why, sizeof(why)),
		     0);
	cr_assert_eq(n, 2);
	cr_assert_eq(rev, 3);
	cr_assert(!ev[0].deleted);
	cr_assert_str_eq(ev[0].kv.key, "/p/c/a");
	cr_assert_str_eq(ev[0].kv.value, "x");
	cr_assert_eq(ev[0].kv.mod_revision, 2);
	cr_assert(ev[1].deleted);
	cr_assert_str_eq(ev[1].kv.key, "/p/c/a");
	cr_assert_eq(ev[1].kv.mod_revision, 3);
	etcd_events_free(ev, n);
	json_decref(j);

	j = json_loads(compacted, 0, NULL);
	cr_assert_eq(etcd_parse_watch(j, &ev, &n, &rev, &canceled, &compact, why, sizeof(why)),
		     0);
	cr_assert(canceled);
	cr_assert_eq(compact, 5);
	json_decref(j);

	j = json_loads("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"x\","
		       "\"code\":14}}", 0, NULL);
	cr_assert_eq(etcd_parse_watch(j, &ev, &n, &rev, &canceled, &compact, why, sizeof(why)),
		     -EREMOTEIO);
	json_decref(j);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, NULL);
		cr_assert_not_null(j, "%s", bad[i]);
		cr_assert_eq(etcd_parse_watch(j, &ev, &n, &rev, &canceled, &compact, why,
					      sizeof(why)), -EPROTO, "%s", bad[i]);
		cr_assert_eq(n, 0);
		json_decref(j);
	}
}
