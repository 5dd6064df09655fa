/* The Group Chat layer's counters (engine/ctr.h explains the scheme): ids
 * continue after the session layer's. One list per stage. */
#ifndef PARLEY_CHAT_CTR_H
#define PARLEY_CHAT_CTR_H

#include "dataplane/session/session_ctr.h"

/* channel.c: XCCOS commands and replies. Each command's counter is named in
 * its row of the command table (xcmds in channel.c), each result code's in
 * the xres table there. */
#define CHANNEL_CTRS(X) \
	/* commands and posts received */ \
	X(CTR_XCCOS_COMMANDS,		"xccos_commands") \
	/* answered with a non-200 code */ \
	X(CTR_XCCOS_ERRORS,		"xccos_errors") \
	/* did not parse */ \
	X(CTR_XCCOS_MALFORMED,		"xccos_malformed") \
	/* posts accepted from local clients */ \
	X(CTR_POSTS_IN,			"posts_in") \
	X(CTR_POSTS_REFUSED,		"posts_refused") \
	X(CTR_XCMD_REQURI,		"xccos_cmd_requri") \
	X(CTR_XCMD_GETSERVERINFO,	"xccos_cmd_getserverinfo") \
	X(CTR_XCMD_CHANSRCH,		"xccos_cmd_chansrch") \
	X(CTR_XCMD_JOIN,		"xccos_cmd_join") \
	X(CTR_XCMD_BJOIN,		"xccos_cmd_bjoin") \
	X(CTR_XCMD_PART,		"xccos_cmd_part") \
	X(CTR_XCMD_BCCONTEXT,		"xccos_cmd_bccontext") \
	X(CTR_XCMD_GETINV,		"xccos_cmd_getinv") \
	X(CTR_XCMD_GETPREF,		"xccos_cmd_getpref") \
	X(CTR_XCMD_SETPREF,		"xccos_cmd_setpref") \
	X(CTR_XCMD_NODESPERMCREATECHILD, "xccos_cmd_nodespermcreatechild") \
	X(CTR_XCMD_GETFUTOK,		"xccos_cmd_getfutok") \
	X(CTR_XCMD_GETFDTOK,		"xccos_cmd_getfdtok") \
	X(CTR_XCMD_GRPCHAT,		"xccos_cmd_grpchat") \
	X(CTR_XCMD_OTHER,		"xccos_cmd_other") \
	X(CTR_XRES_200,			"xccos_result_200") \
	X(CTR_XRES_400,			"xccos_result_400") \
	X(CTR_XRES_403,			"xccos_result_403") \
	X(CTR_XRES_404,			"xccos_result_404") \
	X(CTR_XRES_413,			"xccos_result_413") \
	X(CTR_XRES_500,			"xccos_result_500") \
	X(CTR_XRES_501,			"xccos_result_501") \
	X(CTR_XRES_503,			"xccos_result_503") \
	X(CTR_XRES_OTHER,		"xccos_result_other")

/* fanout.c, fanout_presence.c: rooms across lcores and the storage thread. */
#define FANOUT_CTRS(X) \
	/* posts this lcore sequenced as home */ \
	X(CTR_POSTS_SEQUENCED,		"posts_sequenced") \
	/* post INFOs written to local members */ \
	X(CTR_DELIVERIES,		"deliveries") \
	/* ntc:* written to local members */ \
	X(CTR_NOTICES,			"notices") \
	X(CTR_JOINS,			"joins") \
	X(CTR_PARTS,			"parts") \
	/* a burst did not fit a ring; kept staged */ \
	X(CTR_RING_FULL,		"ring_full") \
	/* the storage thread reported an error */ \
	X(CTR_STORAGE_FAILED,		"storage_failed") \
	/* refused: the compliance log is at its cap */ \
	X(CTR_POSTS_COMPLIANCE_CAP,	"posts_compliance_cap") \
	PEER_CTRS(X)

/* fanout_peer.c: rooms across the nodes of an array. */
#define PEER_CTRS(X) \
	/* posts and joins sent to the room's home node */ \
	X(CTR_PEER_POSTS_FWD,		"peer_posts_forwarded") \
	X(CTR_PEER_JOINS_FWD,		"peer_joins_forwarded") \
	/* posts and joins this node homes that came from another node */ \
	X(CTR_PEER_POSTS_IN,		"peer_posts_in") \
	X(CTR_PEER_JOINS_IN,		"peer_joins_in") \
	/* RELAY and PRESENCE frames sent (one per node) and received */ \
	X(CTR_PEER_RELAYS_OUT,		"peer_relays_out") \
	X(CTR_PEER_RELAYS_IN,		"peer_relays_in") \
	X(CTR_PEER_NOTICES_OUT,		"peer_notices_out") \
	X(CTR_PEER_NOTICES_IN,		"peer_notices_in") \
	/* relays not delivered: already seen, stale epoch, resync under way */ \
	X(CTR_PEER_RELAYS_DROPPED,	"peer_relays_dropped") \
	/* frames this home refused (wrong home, stale epoch, not a member...) */ \
	X(CTR_PEER_REFUSED,		"peer_refused") \
	/* refusals received from a home */ \
	X(CTR_PEER_REFUSALS_IN,		"peer_refusals_in") \
	/* posts, joins, history requests failed: link down or not sendable */ \
	X(CTR_PEER_FAILED,		"peer_failed") \
	X(CTR_PEER_SEND_FAILED,		"peer_send_failed") \
	/* resyncs asked (link up) and answered, posts delivered from them */ \
	X(CTR_PEER_RESYNCS,		"peer_resyncs") \
	X(CTR_PEER_RESYNCS_IN,		"peer_resyncs_in") \
	X(CTR_PEER_RESYNC_POSTS,	"peer_resync_posts") \
	REPL_CTRS(X)

/* fanout_repl.c: each room's copy on its replica node (array failover). */
#define REPL_CTRS(X) \
	/* home: posts sent to the replica live, and from history (catch-up) */ \
	X(CTR_REPL_OUT,			"repl_posts_out") \
	X(CTR_REPL_CATCHUP,		"repl_catchup_posts") \
	/* home: posts the replica acknowledged (then answered and delivered) */ \
	X(CTR_REPL_ACKED,		"repl_posts_acked") \
	/* home: probes (what do you hold?) sent to a new or silent replica */ \
	X(CTR_REPL_PROBES,		"repl_probes") \
	/* home: posts refused with no replica ([array] alone = refuse) */ \
	X(CTR_REPL_REFUSED_ALONE,	"repl_refused_alone") \
	/* home: posts taken durable here only ([array] alone = unreplicated) */ \
	X(CTR_REPL_UNREPLICATED,	"repl_unreplicated") \
	/* home: held posts failed (the room moved away meanwhile) */ \
	X(CTR_REPL_FAILED,		"repl_failed") \
	/* replica: copies stored, and frames refused (stale epoch, wrong home) */ \
	X(CTR_REPL_STORED,		"repl_copies_stored") \
	X(CTR_REPL_REFUSED,		"repl_refused") \
	/* members here: resyncs with a room's new home (failover, drain) */ \
	X(CTR_REPL_REHOMED,		"repl_rehomed_resyncs")

#define CHAT_CTRS(X) CHANNEL_CTRS(X) FANOUT_CTRS(X)

enum chat_ctr_id {
	CHAT_CTR__BASE = SESSION_CTR__END - 1,		/* the next one is the first */
	CHAT_CTRS(CTR_ENUM)
	CHAT_CTR__END
};

_Static_assert(CHAT_CTR__END <= CTR_MAX, "CTR_MAX (engine/ctr.h) too small for every layer");

/* The chat layer's counters, ids SESSION_CTR__END .. CHAT_CTR__END-1
 * (service.c). */
extern const struct ctr_table chat_ctr_table;

#endif
