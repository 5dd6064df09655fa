/* The values of the compliance export marks (control/cmark.h), without
 * etcd: what is written is read back, anything else is refused. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/cmark.h"

static int
parse(const char *v, uint64_t *node, uint64_t *seq)
{
	struct cmark_val m;
	int rc = cmark_parse(v, strlen(v), &m);

	if (rc == 0) {
		*node = m.node;
		*seq = m.seq;
	}
	return rc;
}

Test(cmark, format_then_parse)
{
	static const uint64_t cases[][2] = { { 1, 1 }, { 3, 42 }, { 4294967295u, 1 },
					     { 7, 9007199254740993ull } };
	char buf[CMARK_VALUE_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cmark_val in = { cases[i][0], cases[i][1], 0 }, m = { 0 };
		size_t len = cmark_format(buf, sizeof(buf), &in);

		cr_assert_eq(len, strlen(buf));
		cr_assert_eq(cmark_parse(buf, len, &m), 0, "%s", buf);
		cr_assert_eq(m.node, cases[i][0]);
		cr_assert_eq(m.seq, cases[i][1], "%s", buf);
		cr_assert_eq(m.cut, 0);
	}
	cmark_format(buf, sizeof(buf), &(struct cmark_val){ 2, 17, 0 });
	cr_assert_str_eq(buf, "{\"node\":2,\"seq\":17}");
}

/* A cut is written and read only above the seq; with no seq yet, a cut
 * alone is a mark. The longest value fits. */
Test(cmark, cut_above_the_seq)
{
	char buf[CMARK_VALUE_MAX];
	struct cmark_val m = { 0 };
	size_t len;

	len = cmark_format(buf, sizeof(buf), &(struct cmark_val){ 3, 40, 52 });
	cr_assert_str_eq(buf, "{\"node\":3,\"seq\":40,\"cut\":52}");
	cr_assert_eq(cmark_parse(buf, len, &m), 0);
	cr_assert(m.node == 3 && m.seq == 40 && m.cut == 52);
	cmark_format(buf, sizeof(buf), &(struct cmark_val){ 3, 40, 40 });
	cr_assert_str_eq(buf, "{\"node\":3,\"seq\":40}", "a cut at the seq is none");
	len = cmark_format(buf, sizeof(buf), &(struct cmark_val){ 1, 0, 9 });
	cr_assert_eq(cmark_parse(buf, len, &m), 0, "%s", buf);
	cr_assert(m.seq == 0 && m.cut == 9);
	cr_assert_eq(cmark_parse("{\"node\":1,\"seq\":7,\"cut\":3}", 26, &m), 0);
	cr_assert(m.seq == 7 && m.cut == 0, "a cut below the seq reads as none");
	len = cmark_format(buf, sizeof(buf), &(struct cmark_val){ 4294967295u, UINT64_MAX - 1,
								  UINT64_MAX });
	cr_assert_lt(len, sizeof(buf) - 1, "%s", buf);
}

Test(cmark, parse_takes_other_key_orders_and_spaces)
{
	uint64_t node = 0, seq = 0;

	cr_assert_eq(parse(" { \"seq\" : 5 , \"node\" : 2 , \"by\":\"x\" } ", &node, &seq), 0);
	cr_assert_eq(node, 2);
	cr_assert_eq(seq, 5);
}

Test(cmark, parse_refuses_what_is_not_a_mark)
{
	static const char *const bad[] = {
		"", "null", "[]", "17", "{}", "{\"node\":1}", "{\"seq\":1}",
		"{\"node\":0,\"seq\":1}", "{\"node\":1,\"seq\":0}", "{\"node\":-1,\"seq\":1}",
		"{\"node\":1,\"seq\":-5}", "{\"node\":4294967296,\"seq\":1}",
		"{\"node\":\"1\",\"seq\":1}", "{\"node\":1,\"seq\":\"1\"}", "{\"node\":1,\"seq\":1.5}",
		"{\"node\":1,\"seq\":1,\"seq\":2}", "{\"node\":1,\"seq\":1", "{\"node\":1,\"seq\":1}x",
		"{\"node\":1,\"seq\":0,\"cut\":0}", "{\"node\":1,\"seq\":2,\"cut\":-1}",
		"{\"node\":1,\"seq\":2,\"cut\":\"3\"}", "{\"node\":1,\"cut\":3}",
	};
	uint64_t node = 77, seq = 88;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], &node, &seq), -EINVAL, "accepted %s", bad[i]);
	cr_assert_eq(cmark_parse(NULL, 0, &(struct cmark_val){ 0 }), -EINVAL);
	cr_assert_eq(node, 77, "a refused mark changed the output");
	cr_assert_eq(seq, 88);
}
