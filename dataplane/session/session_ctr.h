/* The session layer's counters (engine/ctr.h explains the scheme): ids
 * continue after the engine's. One list per stage, in the file that counts. */
#ifndef PARLEY_SESSION_CTR_H
#define PARLEY_SESSION_CTR_H

#include "dataplane/engine/ctr.h"

/* sipconn.c: framing, requests and responses. The per-method counters
 * follow enum sip_method, the per-class ones 1xx .. 6xx. */
#define SIPCONN_CTRS(X) \
	X(CTR_SIP_REQUESTS,		"sip_requests") \
	X(CTR_SIP_RESPONSES_OUT,	"sip_responses_out") \
	X(CTR_SIP_RESPONSES_IN,		"sip_responses_in") \
	X(CTR_SIP_KEEPALIVES,		"sip_keepalives") \
	X(CTR_SIP_400,			"sip_400") \
	/* framing lost */ \
	X(CTR_DROP_FRAMING,		"drop_framing") \
	/* From mismatch after login */ \
	X(CTR_DROP_IDENTITY,		"drop_identity") \
	X(CTR_SIP_REQ_UNKNOWN,		"sip_req_other") \
	X(CTR_SIP_REQ_INVITE,		"sip_req_invite") \
	X(CTR_SIP_REQ_ACK,		"sip_req_ack") \
	X(CTR_SIP_REQ_BYE,		"sip_req_bye") \
	X(CTR_SIP_REQ_CANCEL,		"sip_req_cancel") \
	X(CTR_SIP_REQ_OPTIONS,		"sip_req_options") \
	X(CTR_SIP_REQ_REGISTER,		"sip_req_register") \
	X(CTR_SIP_REQ_INFO,		"sip_req_info") \
	X(CTR_SIP_REQ_UPDATE,		"sip_req_update") \
	X(CTR_SIP_REQ_SUBSCRIBE,	"sip_req_subscribe") \
	X(CTR_SIP_REQ_NOTIFY,		"sip_req_notify") \
	X(CTR_SIP_REQ_MESSAGE,		"sip_req_message") \
	X(CTR_SIP_REQ_PRACK,		"sip_req_prack") \
	X(CTR_SIP_REQ_REFER,		"sip_req_refer") \
	X(CTR_SIP_REQ_PUBLISH,		"sip_req_publish") \
	X(CTR_SIP_RESP_1XX,		"sip_resp_1xx") \
	X(CTR_SIP_RESP_2XX,		"sip_resp_2xx") \
	X(CTR_SIP_RESP_3XX,		"sip_resp_3xx") \
	X(CTR_SIP_RESP_4XX,		"sip_resp_4xx") \
	X(CTR_SIP_RESP_5XX,		"sip_resp_5xx") \
	X(CTR_SIP_RESP_6XX,		"sip_resp_6xx")

/* registrar.c */
#define REGISTRAR_CTRS(X) \
	X(CTR_REGISTER_OK,		"register_ok") \
	X(CTR_REGISTER_CHALLENGED,	"register_challenged") \
	X(CTR_REGISTER_DENIED,		"register_denied") \
	X(CTR_REGISTER_RATELIMITED,	"register_ratelimited")

/* dialog.c */
#define DIALOG_CTRS(X) \
	X(CTR_DIALOGS_OPEN,		"dialogs_open") \
	X(CTR_DIALOGS_EXPIRED,		"dialogs_expired")

#define SESSION_CTRS(X) SIPCONN_CTRS(X) REGISTRAR_CTRS(X) DIALOG_CTRS(X)

enum session_ctr_id {
	SESSION_CTR__BASE = ENGINE_CTR__END - 1,	/* the next one is the first */
	SESSION_CTRS(CTR_ENUM)
	SESSION_CTR__END
};

/* The session layer's counters, ids ENGINE_CTR__END .. SESSION_CTR__END-1
 * (sipconn.c). */
extern const struct ctr_table session_ctr_table;

#endif
