/* Counters: the engine owns one per-lcore array of them (lcore.h: ctr_inc,
 * ctr_add); each layer names its own in an X-macro list next to the code
 * that counts them, and its ids continue after the layer below:
 *
 *   engine  ENGINE_CTRS   here                       0 .. ENGINE_CTR__END-1
 *   session SESSION_CTRS  session/session_ctr.h      .. SESSION_CTR__END-1
 *   chat    CHAT_CTRS     chat/chat_ctr.h            .. CHAT_CTR__END-1
 *
 * The same list makes a layer's enum and the names stats prints (a
 * struct ctr_table), so the two cannot drift apart. An upper layer hands its
 * table to the engine with its hooks (lcore.h: struct engine_proto and
 * struct engine_service); engine_counter_name() then knows every id.
 * A list entry is X(identifier, "name as stats prints it"). */
#ifndef PARLEY_CTR_H
#define PARLEY_CTR_H

/* Room in the per-lcore array for the counters of every layer. */
#define CTR_MAX		160

/* The counters of one layer: ids <first> .. <first>+<n>-1, named
 * names[0] .. names[n-1]. */
struct ctr_table {
	unsigned int		first;
	unsigned int		n;
	const char *const	*names;
};

/* For the enum and the names built from a list. */
#define CTR_ENUM(id, name)	id,
#define CTR_NAME(id, name)	name,

/* conn.c and io/: connections, TLS, bytes, and what the engine drops. */
#define ENGINE_CTRS(X) \
	X(CTR_CONN_ACCEPTED,		"conn_accepted") \
	X(CTR_CONN_CLOSED,		"conn_closed") \
	/* over max_conns */ \
	X(CTR_CONN_REFUSED_LIMIT,	"conn_refused_limit") \
	X(CTR_TLS_HANDSHAKES,		"tls_handshakes") \
	X(CTR_TLS_RESUMED,		"tls_resumed") \
	X(CTR_TLS_FAILURES,		"tls_failures") \
	/* sessions moved to our record layer */ \
	X(CTR_TLS_HANDOFFS,		"tls_handoffs") \
	/* records that failed authentication there */ \
	X(CTR_TLS_BAD_MAC,		"tls_bad_mac") \
	/* KeyUpdates handled there */ \
	X(CTR_TLS_KEY_UPDATES,		"tls_key_updates") \
	X(CTR_BYTES_IN,			"bytes_in") \
	X(CTR_BYTES_OUT,		"bytes_out") \
	/* slow reader past outq_max */ \
	X(CTR_DROP_OUTQ,		"drop_outq") \
	/* SIP message over max_message */ \
	X(CTR_DROP_TOO_BIG,		"drop_too_big") \
	X(CTR_DROP_IDLE,		"drop_idle") \
	X(CTR_DROP_HANDSHAKE_TIMEOUT,	"drop_handshake_timeout") \
	/* kernel backend: system calls that waited or moved bytes \
	 * (epoll_wait, read, send; io_uring_enter) */ \
	X(CTR_IO_SYSCALLS,		"io_syscalls") \
	/* epoll: naps taken instead of blocking ([io] kernel_nap_us) */ \
	X(CTR_IO_NAPS,			"io_naps")

enum ctr_id {
	ENGINE_CTRS(CTR_ENUM)
	ENGINE_CTR__END
};

/* The engine's counters, ids 0 .. ENGINE_CTR__END-1. */
extern const struct ctr_table engine_ctr_table;

#endif
