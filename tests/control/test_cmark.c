/* The values of the compliance export marks (control/cmark.h), without
 * etcd: what is written is read back, anything else is refused. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "control/cmark.h"

static int
parse(const char *v, uint64_t *node, uint64_t *seq)
{
	return cmark_parse(v, strlen(v), node, seq);
}

Test(cmark, format_then_parse)
{
	static const uint64_t cases[][2] = { { 1, 1 }, { 3, 42 }, { 4294967295u, 1 },
					     { 7, 9007199254740993ull } };
	char buf[CMARK_VALUE_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t node = 0, seq = 0;
		size_t len = cmark_format(buf, sizeof(buf), cases[i][0], cases[i][1]);

		cr_assert_eq(len, strlen(buf));
		cr_assert_eq(cmark_parse(buf, len, &node, &seq), 0, "%s", buf);
		cr_assert_eq(node, cases[i][0]);
		cr_assert_eq(seq, cases[i][1], "%s", buf);
	}
	cmark_format(buf, sizeof(buf), 2, 17);
	cr_assert_str_eq(buf, "{\"node\":2,\"seq\":17}");
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
	};
	uint64_t node = 77, seq = 88;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], &node, &seq), -EINVAL, "accepted %s", bad[i]);
	cr_assert_eq(cmark_parse(NULL, 0, &node, &seq), -EINVAL);
	cr_assert_eq(node, 77, "a refused mark changed the output");
	cr_assert_eq(seq, 88);
}
