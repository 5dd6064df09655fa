/* The frames nodes of an array send each other over their peer links.
 *
 * A frame is a fixed header and a payload, all integers big-endian:
 *
 *	offset	size	field
 *	0	4	length of the frame after this field (header rest + payload)
 *	4	1	version (PEERFRAME_VERSION; any other is refused)
 *	5	1	type (enum peerframe_type; any other is refused)
 *	6	2	code (a reason on answers: enum peerframe_code; 0 elsewhere)
 *	8	4	sender's node id
 *	12	16	room id, raw (storage/catalog.h CATALOG_ID_RAW; zero when none)
 *	28	8	epoch: the etcd revision of the room's home key (fencing token)
 *	36	8	seq: the room's sequence number (or the first one wanted)
 *	44	8	ref: the sender's request id that an answer echoes
 *	52	...	payload, laid out per type (below)
 *
 * Payloads (str16 = u16 length + bytes, blob32 = u32 length + bytes):
 *	HELLO		u16 protocol version, str16 cluster name (1..PEERFRAME_CLUSTER_MAX)
 *	POST_FWD	u64 time (ms), str16 author URI, blob32 body (the grpchat inner
 *			XML), blob32 text (plain text, for compliance), str16 extra
 *			attributes of <grpchat> (0..PEERFRAME_ATTRS_MAX)
 *	RELAY		u64 time (ms), str16 author URI, blob32 body: the XCCOS
 *			document as the home built it once (seq = assigned)
 *	JOIN, PART	u8 flags (PEERFRAME_USER_*), str16 user URI
 *	JOIN_ACK	users: the present members (flags MANAGER; n unused), seq =
 *			the room's last seq
 *	RESYNC_REQ	users: the sender's present users, n = dialogs each (the
 *			home replaces the sender's roster with it); seq = first wanted
 *	PRESENCE	blob32 body: an ntc:join/bjoin/part document the home built
 *			once; seq = the node of the member it is about, ref = its
 *			dialog there (not told)
 *	HISTORY		u16 count, then count times: u64 seq, u64 time, str16 author, blob32 body
 *	HISTORY_REQ	u8 flags (0), str16 the asking user's URI: seq = how many of
 *			the last posts (bccontext); the home records the BACKCHAT
 *			event, then answers one HISTORY with ref echoed
 *	REPL		as POST_FWD (text = the compliance content, extra empty):
 *			one durable event of the room for its replica; seq = the
 *			room seq (0: a probe, answered with what the replica
 *			holds), ref = the event type (storage/wal.h; CHAT)
 *	REPL_ACK	empty: seq = the highest room seq durable on the replica
 *	others		empty
 * users = u16 count (..PEERFRAME_USERS_MAX), then count times: u8 flags,
 * u32 n, str16 URI.
 * Every length is checked against what is left; a payload must be consumed
 * exactly. Decoding never copies: the decoded frame points into the input.
 *
 * Pure functions over buffers: any thread, no allocation, no logging. */
#ifndef PARLEY_PEERFRAME_H
#define PARLEY_PEERFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PEERFRAME_VERSION	1
#define PEERFRAME_HDR		52		/* bytes before the payload */
#define PEERFRAME_ROOM_LEN	16		/* == CATALOG_ID_RAW */
#define PEERFRAME_CLUSTER_MAX	64
#define PEERFRAME_URI_MAX	1024
#define PEERFRAME_MAX_DEFAULT	(1u << 20)	/* [array] peer_frame_max default */
#define PEERFRAME_MAX_LIMIT	(16u << 20)	/* no configuration may exceed this */
#define PEERFRAME_HISTORY_MAX	1024		/* records in one HISTORY frame */
#define PEERFRAME_USERS_MAX	8192		/* users in one JOIN_ACK or RESYNC_REQ */
#define PEERFRAME_ATTRS_MAX	4096		/* POST_FWD's extra attributes */

/* JOIN/PART and users flags. */
#define PEERFRAME_USER_MANAGER	0x01		/* a manager of the room */
#define PEERFRAME_USER_BATCH	0x02		/* JOIN: from a bjoin (ntc:bjoin) */
#define PEERFRAME_USER_FLAGS	0x03		/* any other bit is refused */

enum peerframe_type {
	PEERFRAME_HELLO = 1,	/* both ends, first frame after the TLS handshake */
	PEERFRAME_POST_FWD,	/* origin -> home: a post to sequence; ref = origin's id */
	PEERFRAME_POST_ACK,	/* home -> origin: code, seq assigned; ref echoed */
	PEERFRAME_RELAY,	/* home -> nodes with present members: the sequenced post */
	PEERFRAME_JOIN,		/* origin -> home: a user became present in the room */
	PEERFRAME_JOIN_ACK,	/* home -> origin: code; ref echoed */
	PEERFRAME_PART,		/* origin -> home: a user left the room */
	PEERFRAME_PART_ACK,	/* home -> origin: code; ref echoed */
	PEERFRAME_RESYNC_REQ,	/* -> home: send me the room's posts from seq on */
	PEERFRAME_HISTORY,	/* home -> requester: a batch of posts; code MORE or OK (last) */
	PEERFRAME_PING,		/* keepalive; ref = nonce */
	PEERFRAME_PONG,		/* ref echoed */
	PEERFRAME_PRESENCE,	/* home -> nodes with present members: a notice */
	PEERFRAME_HISTORY_REQ,	/* -> home: the last seq posts (bccontext); ref = asker's */
	PEERFRAME_REPL,		/* home -> replica: a durable post to keep a copy of */
	PEERFRAME_REPL_ACK,	/* replica -> home: code, durable up to seq */
	PEERFRAME_TYPE_MAX,
};

/* What an answer says. Anything but OK/MORE is a refusal the sender can act
 * on: WRONG_HOME and STALE_EPOCH mean re-resolve the room's home and retry. */
enum peerframe_code {
	PEERFRAME_OK = 0,
	PEERFRAME_MORE,		/* HISTORY: more batches follow */
	PEERFRAME_WRONG_HOME,	/* the receiver does not home the room */
	PEERFRAME_STALE_EPOCH,	/* the frame's epoch is older than the room's */
	PEERFRAME_OVERLOAD,	/* try later */
	PEERFRAME_NOT_MEMBER,	/* the author/user may not do this in the room */
	PEERFRAME_TOO_LARGE,	/* the body exceeds the room's limit */
	PEERFRAME_NO_HISTORY,	/* RESYNC_REQ: seq older than history keeps */
	PEERFRAME_CODE_MAX,
};

/* Decoding errors (negative return values of peerframe_decode). */
enum peerframe_err {
	PEERFRAME_ETOOBIG = 1,	/* length over the receiver's maximum */
	PEERFRAME_ESHORT,	/* length below the header size */
	PEERFRAME_EVERSION,	/* version not PEERFRAME_VERSION */
	PEERFRAME_ETYPE,	/* unknown type */
	PEERFRAME_ECODE,	/* unknown code */
	PEERFRAME_EPAYLOAD,	/* payload malformed for its type */
};

/* A post: POST_FWD and RELAY payloads, and one HISTORY record. */
struct peerframe_post {
	uint64_t	seq;		/* HISTORY records only */
	uint64_t	time_ms;
	const char	*author;	/* not NUL-terminated */
	uint16_t	author_len;
	const uint8_t	*body;
	uint32_t	body_len;
	/* POST_FWD only */
	const uint8_t	*text;
	uint32_t	text_len;
	const char	*extra;		/* not NUL-terminated */
	uint16_t	extra_len;
};

/* One user of a users list (JOIN_ACK, RESYNC_REQ). */
struct peerframe_user {
	uint8_t		flags;		/* PEERFRAME_USER_* */
	uint32_t	n;		/* RESYNC_REQ: the user's dialogs on the sender */
	const char	*uri;		/* not NUL-terminated */
	uint16_t	uri_len;
};

struct peerframe {
	uint8_t		type;		/* enum peerframe_type */
	uint8_t		version;	/* set by decode; encode writes PEERFRAME_VERSION */
	uint16_t	code;		/* enum peerframe_code */
	uint32_t	node;		/* sender */
	uint8_t		room[PEERFRAME_ROOM_LEN];
	uint64_t	epoch;
	uint64_t	seq;
	uint64_t	ref;
	union {
		struct {
			uint16_t	proto;
			const char	*cluster;	/* not NUL-terminated */
			uint16_t	cluster_len;
		} hello;
		struct peerframe_post post;	/* POST_FWD, RELAY */
		struct {
			uint8_t		flags;		/* PEERFRAME_USER_* */
			const char	*uri;		/* not NUL-terminated */
			uint16_t	uri_len;
		} user;				/* JOIN, PART, HISTORY_REQ */
		struct {
			/* encode: <count> users at <v>; decode: <count>, and
			 * the users through peerframe_users_next() */
			const struct peerframe_user	*v;
			uint16_t			count;
			const uint8_t			*raw;	/* decode only */
		} users;			/* JOIN_ACK, RESYNC_REQ */
		struct {
			const uint8_t	*body;
			uint32_t	body_len;
		} notice;			/* PRESENCE */
		struct {
			/* encode: <count> records at <recs>; decode: <count>, and
			 * the records through peerframe_history_next() */
			const struct peerframe_post	*recs;
			uint16_t			count;
			const uint8_t			*raw;	/* decode only */
		} history;
	} u;
	uint32_t	payload_len;	/* set by decode */
};

/* The whole encoded size of <f> (header included), or 0 when a field is out
 * of range (a string too long, a HISTORY count over PEERFRAME_HISTORY_MAX,
 * an unknown type or code, or a frame over PEERFRAME_MAX_LIMIT). */
size_t peerframe_size(const struct peerframe *f);

/* Writes <f> into <buf> of <cap> bytes. Returns the bytes written, or
 * -EINVAL when peerframe_size() says 0, -ENOSPC when <cap> is too small. */
ssize_t peerframe_encode(const struct peerframe *f, uint8_t *buf, size_t cap);

/* Decodes the first frame of <buf> (<len> bytes) into <f>, refusing frames
 * longer than <max> bytes in all. Returns the bytes the frame took (> 0),
 * 0 when <buf> does not hold a whole frame yet (and its length prefix, if
 * complete, is acceptable), or -enum peerframe_err. An error is final: the
 * stream cannot be resynchronised after it. <f>'s pointers point into
 * <buf>. */
ssize_t peerframe_decode(const uint8_t *buf, size_t len, size_t max, struct peerframe *f);

/* The next HISTORY record of a decoded frame <f>: <*pos> (a byte offset
 * the function advances) starts at 0. Returns false after the last record.
 * The frame was checked whole by peerframe_decode, so this cannot fail
 * otherwise. */
bool peerframe_history_next(const struct peerframe *f, size_t *pos, struct peerframe_post *out);

/* The next user of a decoded JOIN_ACK or RESYNC_REQ <f>, as
 * peerframe_history_next. */
bool peerframe_users_next(const struct peerframe *f, size_t *pos, struct peerframe_user *out);

/* "HELLO", "POST_FWD", ... or "?". */
const char *peerframe_type_name(unsigned type);
/* "OK", "WRONG_HOME", ... or "?". */
const char *peerframe_code_name(unsigned code);
/* A sentence for -<err> of peerframe_decode. */
const char *peerframe_strerror(int err);

#endif
