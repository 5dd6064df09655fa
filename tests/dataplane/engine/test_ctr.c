/* The counter tables (engine/ctr.h, session/session_ctr.h, chat/chat_ctr.h):
 * ids are contiguous across the layers, every id has one unique, non-empty
 * name, the names stats prints are the ones it always printed, and the
 * totals are the sums of the per-lcore values. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/chat/chat.h"
#include "dataplane/chat/chat_ctr.h"
#include "dataplane/engine/engine_int.h"
#include "dataplane/session/session_ctr.h"
#include "dataplane/session/sipconn.h"

/* What `parleyctl stats` printed before the counters moved to their layers,
 * in the old order; scripts and tests read these names. */
static const char *const known[] = {
	"conn_accepted", "conn_closed", "conn_refused_limit", "tls_handshakes", "tls_resumed",
	"tls_failures", "tls_handoffs", "tls_bad_mac", "tls_key_updates", "bytes_in", "bytes_out",
	"sip_requests", "sip_responses_out", "sip_responses_in", "sip_keepalives", "sip_400",
	"register_ok", "register_challenged", "register_denied", "register_ratelimited",
	"drop_outq", "drop_too_big", "drop_framing", "drop_idle", "drop_handshake_timeout",
	"drop_identity", "dialogs_open", "dialogs_expired", "xccos_commands", "xccos_errors",
	"xccos_malformed", "posts_in", "posts_refused", "posts_sequenced", "deliveries", "notices",
	"joins", "parts", "ring_full", "storage_failed", "posts_compliance_cap", "sip_req_other",
	"sip_req_invite", "sip_req_ack", "sip_req_bye", "sip_req_cancel", "sip_req_options",
	"sip_req_register", "sip_req_info", "sip_req_update", "sip_req_subscribe",
	"sip_req_notify", "sip_req_message", "sip_req_prack", "sip_req_refer", "sip_req_publish",
	"sip_resp_1xx", "sip_resp_2xx", "sip_resp_3xx", "sip_resp_4xx", "sip_resp_5xx",
	"sip_resp_6xx", "xccos_cmd_requri", "xccos_cmd_getserverinfo", "xccos_cmd_chansrch",
	"xccos_cmd_join", "xccos_cmd_bjoin", "xccos_cmd_part", "xccos_cmd_bccontext",
	"xccos_cmd_getinv", "xccos_cmd_getpref", "xccos_cmd_setpref",
	"xccos_cmd_nodespermcreatechild", "xccos_cmd_getfutok", "xccos_cmd_getfdtok",
	"xccos_cmd_grpchat", "xccos_cmd_other", "xccos_result_200", "xccos_result_400",
	"xccos_result_403", "xccos_result_404", "xccos_result_413", "xccos_result_500",
	"xccos_result_501", "xccos_result_503", "xccos_result_other",
	"io_syscalls",	/* added with [io] kernel_io */
	/* added since: rooms across the nodes of an array (fanout_peer.c) */
	"peer_posts_forwarded", "peer_joins_forwarded", "peer_posts_in", "peer_joins_in",
	"peer_relays_out", "peer_relays_in", "peer_notices_out", "peer_notices_in",
	"peer_relays_dropped", "peer_refused", "peer_refusals_in", "peer_failed",
	"peer_send_failed", "peer_resyncs", "peer_resyncs_in", "peer_resync_posts",
	/* added since: each room's copy on its replica (fanout_repl.c) */
	"repl_posts_out", "repl_catchup_posts", "repl_posts_acked", "repl_probes",
	"repl_refused_alone", "repl_unreplicated", "repl_failed", "repl_copies_stored",
	"repl_refused", "repl_rehomed_resyncs",
	"io_naps",	/* added with [io] kernel_nap_us */
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

static const struct ctr_table *const tables[] = {
	&engine_ctr_table, &session_ctr_table, &chat_ctr_table,
};

static void
register_layers(void)
{
	sipconn_register();
	chat_register();
}

Test(ctr, layers_are_contiguous)
{
	unsigned int next = 0;

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		cr_assert_eq(tables[i]->first, next, "layer %zu starts at %u, not %u", i,
			     tables[i]->first, next);
		cr_assert_gt(tables[i]->n, 0);
		next += tables[i]->n;
	}
	cr_assert_eq(engine_ctr_table.n, ENGINE_CTR__END);
	cr_assert_eq(session_ctr_table.first + session_ctr_table.n, SESSION_CTR__END);
	cr_assert_eq(next, CHAT_CTR__END);
	cr_assert_leq(next, CTR_MAX);
}

Test(ctr, names_unique_and_non_empty, .init = register_layers)
{
	unsigned int id;

	for (id = 0; engine_counter_name(id) != NULL; id++) {
		const char *a = engine_counter_name(id);

		cr_assert_gt(strlen(a), 0, "counter %u has an empty name", id);
		for (unsigned int j = 0; j < id; j++)
			cr_assert_str_neq(a, engine_counter_name(j), "counters %u and %u: both %s",
					  j, id, a);
	}
	cr_assert_eq(id, CHAT_CTR__END, "names end at %u, ids at %u", id, CHAT_CTR__END);
}

Test(ctr, names_are_the_known_ones, .init = register_layers)
{
	cr_assert_eq(CHAT_CTR__END, NKNOWN);
	for (size_t k = 0; k < NKNOWN; k++) {
		bool found = false;

		for (unsigned int id = 0; id < CHAT_CTR__END && !found; id++)
			found = strcmp(engine_counter_name(id), known[k]) == 0;
		cr_assert(found, "counter %s is gone", known[k]);
	}
}

Test(ctr, identifiers_name_their_counters, .init = register_layers)
{
	cr_assert_str_eq(engine_counter_name(CTR_CONN_ACCEPTED), "conn_accepted");
	cr_assert_str_eq(engine_counter_name(CTR_DROP_HANDSHAKE_TIMEOUT), "drop_handshake_timeout");
	cr_assert_str_eq(engine_counter_name(CTR_SIP_REQUESTS), "sip_requests");
	cr_assert_str_eq(engine_counter_name(CTR_SIP_REQ_UNKNOWN), "sip_req_other");
	cr_assert_str_eq(engine_counter_name(CTR_SIP_RESP_6XX), "sip_resp_6xx");
	cr_assert_str_eq(engine_counter_name(CTR_DIALOGS_EXPIRED), "dialogs_expired");
	cr_assert_str_eq(engine_counter_name(CTR_POSTS_IN), "posts_in");
	cr_assert_str_eq(engine_counter_name(CTR_XCMD_JOIN), "xccos_cmd_join");
	cr_assert_str_eq(engine_counter_name(CTR_XRES_200), "xccos_result_200");
	cr_assert_str_eq(engine_counter_name(CTR_POSTS_COMPLIANCE_CAP), "posts_compliance_cap");
	cr_assert_null(engine_counter_name(CHAT_CTR__END));
	cr_assert_null(engine_counter_name(CTR_MAX + 5));
}

/* An engine with <n> lcores and nothing else: enough for the counters. */
static struct engine *
bare_engine(uint32_t n)
{
	struct engine *e = calloc(1, sizeof(*e) + n * sizeof(e->lcores[0]));

	cr_assert_not_null(e);
	e->conf.nlcores = n;
	for (uint32_t i = 0; i < n; i++) {
		struct lcore_ctx *lc = aligned_alloc(64, (sizeof(*lc) + 63) & ~(size_t)63);

		cr_assert_not_null(lc);
		memset(lc, 0, sizeof(*lc));
		lc->e = e;
		lc->pub.e = e;
		lc->pub.conf = &e->conf;
		lc->pub.idx = i;
		e->lcores[i] = lc;
	}
	return e;
}

static void
bare_free(struct engine *e)
{
	for (uint32_t i = 0; i < e->conf.nlcores; i++)
		free(e->lcores[i]);
	free(e);
}

Test(ctr, totals_sum_the_lcores)
{
	struct engine *e = bare_engine(3);
	const unsigned int ids[] = { CTR_CONN_ACCEPTED, CTR_BYTES_IN, CTR_SIP_RESP_2XX,
				     CTR_POSTS_IN, CHAT_CTR__END - 1 };

	for (uint32_t i = 0; i < 3; i++) {
		struct lcore_ctx *lc = engine_lcore(e, i);

		cr_assert_eq(lcore_idx(lc), i);
		cr_assert_eq(lcore_engine(lc), e);
		for (uint32_t k = 0; k <= i; k++)
			ctr_inc(lc, CTR_CONN_ACCEPTED);
		ctr_add(lc, CTR_BYTES_IN, 1000 * (i + 1));
		ctr_inc(lc, CTR_SIP_RESP_2XX);
		ctr_add(lc, CTR_POSTS_IN, 7);
		ctr_inc(lc, CHAT_CTR__END - 1);
	}
	cr_assert_eq(engine_counter(e, CTR_CONN_ACCEPTED), 1 + 2 + 3);
	cr_assert_eq(engine_counter(e, CTR_BYTES_IN), 6000);
	cr_assert_eq(engine_counter(e, CTR_SIP_RESP_2XX), 3);
	cr_assert_eq(engine_counter(e, CTR_POSTS_IN), 21);
	cr_assert_eq(engine_counter(e, CHAT_CTR__END - 1), 3);
	cr_assert_eq(engine_counter(e, CTR_DROP_IDLE), 0);
	for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
		uint64_t sum = 0;

		for (uint32_t i = 0; i < 3; i++)
			sum += engine_lcore_counter(e, i, ids[k]);
		cr_assert_eq(sum, engine_counter(e, ids[k]));
	}
	cr_assert_eq(engine_lcore_counter(e, 1, CTR_CONN_ACCEPTED), 2);
	cr_assert_eq(engine_lcore_counter(e, 3, CTR_CONN_ACCEPTED), 0, "no such lcore");
	cr_assert_eq(engine_counter(e, CTR_MAX), 0, "no such counter");
	cr_assert_eq(engine_lcore_counter(e, 0, CTR_MAX), 0, "no such counter");
	bare_free(e);
}
