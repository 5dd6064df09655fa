/* Rooms across the nodes of an array, the plumbing: see fanout_peer.h. The
 * link thread copies each frame into one allocation (struct pmsg) and pushes
 * it to the room's local home lcore (or, for an answer, to the lcore whose
 * ref it echoes); the lcores take their list each turn and hand it to
 * fanout_peer_room.c. Also the pending requests and the helpers that file
 * and fanout_peer_sync.c use. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/base/log.h"
#include "dataplane/chat/fanout_int.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/chat/fanout_peer_int.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/peer/peerframe.h"

#define INBOX_MAX	65536		/* frames waiting for one lcore: more are dropped */
#define REF_LCORE_SHIFT	48

struct fanout_peer_ops fo_peer_ops;
static _Atomic uint64_t dropped;

void
fanout_peer_register(const struct fanout_peer_ops *o)
{
	fo_peer_ops = *o;
}

bool
fo_peer_active(void)
{
	return fo_peer_ops.send != NULL;
}

uint64_t
fanout_peer_dropped(void)
{
	return atomic_load_explicit(&dropped, memory_order_relaxed);
}

/* ---- the link thread's side ------------------------------------------- */

static void
push(struct engine *e, uint32_t idx, struct pmsg *m)
{
	struct fanout_lc *fo = fo_lc(engine_lcore(e, idx));
	struct pmsg *head = atomic_load_explicit(&fo->inbox, memory_order_relaxed);

	if (m->kind == PM_FRAME &&
	    atomic_load_explicit(&fo->inbox_n, memory_order_relaxed) >= INBOX_MAX) {
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		free(m);
		return;
	}
	atomic_fetch_add_explicit(&fo->inbox_n, 1, memory_order_relaxed);
	do
		m->next = head;
	while (!atomic_compare_exchange_weak_explicit(&fo->inbox, &head, m, memory_order_release,
						      memory_order_relaxed));
	lcore_wake(engine_lcore(e, idx));
}

static uint8_t *
copy(uint8_t *at, const void *src, size_t n, const void **dst)
{
	*dst = at;
	if (n > 0)
		memcpy(at, src, n);
	return at + n;
}

/* One allocation holding <f> and everything it points to. */
static struct pmsg *
pmsg_copy(uint32_t node, const struct peerframe *f)
{
	size_t extra = 0, pos;
	struct peerframe_user u;
	struct peerframe_post r;
	uint32_t nu = 0, nr = 0;
	struct pmsg *m;
	uint8_t *at;

	switch (f->type) {
	case PEERFRAME_POST_FWD:
	case PEERFRAME_RELAY:
	case PEERFRAME_REPL:
		extra = f->u.post.author_len + (size_t)f->u.post.body_len + f->u.post.text_len +
			f->u.post.extra_len;
		break;
	case PEERFRAME_JOIN:
	case PEERFRAME_PART:
		extra = f->u.user.uri_len;
		break;
	case PEERFRAME_PRESENCE:
		extra = f->u.notice.body_len;
		break;
	case PEERFRAME_JOIN_ACK:
	case PEERFRAME_RESYNC_REQ:
		for (pos = 0; peerframe_users_next(f, &pos, &u); nu++)
			extra += sizeof(u) + u.uri_len;
		break;
	case PEERFRAME_HISTORY:
		for (pos = 0; peerframe_history_next(f, &pos, &r); nr++)
			extra += sizeof(r) + r.author_len + r.body_len;
		break;
	default:
		break;
	}
	m = malloc(sizeof(*m) + extra + 8);
	if (m == NULL)
		return NULL;
	m->kind = PM_FRAME;
	m->node = node;
	m->f = *f;
	m->nusers = nu;
	m->nrecs = nr;
	m->users = (struct peerframe_user *)m->data;
	m->recs = (struct peerframe_post *)m->data;
	at = (uint8_t *)m->data + (size_t)nu * sizeof(u) + (size_t)nr * sizeof(r);
	switch (f->type) {
	case PEERFRAME_POST_FWD:
	case PEERFRAME_RELAY:
	case PEERFRAME_REPL:
		at = copy(at, f->u.post.author, f->u.post.author_len,
			  (const void **)&m->f.u.post.author);
		at = copy(at, f->u.post.body, f->u.post.body_len, (const void **)&m->f.u.post.body);
		at = copy(at, f->u.post.text, f->u.post.text_len, (const void **)&m->f.u.post.text);
		copy(at, f->u.post.extra, f->u.post.extra_len, (const void **)&m->f.u.post.extra);
		break;
	case PEERFRAME_JOIN:
	case PEERFRAME_PART:
		copy(at, f->u.user.uri, f->u.user.uri_len, (const void **)&m->f.u.user.uri);
		break;
	case PEERFRAME_PRESENCE:
		copy(at, f->u.notice.body, f->u.notice.body_len,
		     (const void **)&m->f.u.notice.body);
		break;
	case PEERFRAME_JOIN_ACK:
	case PEERFRAME_RESYNC_REQ:
		for (pos = 0, nu = 0; peerframe_users_next(f, &pos, &u); nu++) {
			m->users[nu] = u;
			at = copy(at, u.uri, u.uri_len, (const void **)&m->users[nu].uri);
		}
		break;
	case PEERFRAME_HISTORY:
		for (pos = 0, nr = 0; peerframe_history_next(f, &pos, &r); nr++) {
			m->recs[nr] = r;
			at = copy(at, r.author, r.author_len, (const void **)&m->recs[nr].author);
			at = copy(at, r.body, r.body_len, (const void **)&m->recs[nr].body);
		}
		break;
	default:
		break;
	}
	return m;
}

void
fanout_peer_in(struct engine *e, uint32_t node, const struct peerframe *f)
{
	uint32_t n = engine_nlcores(e), idx;
	struct pmsg *m;

	if (engine_svc(e) == NULL || n == 0)
		return;
	/* An answer goes to the lcore that asked (its ref says which); the
	 * rest to the room's local home lcore (roomtab.c's hash). */
	if ((f->type == PEERFRAME_POST_ACK || f->type == PEERFRAME_JOIN_ACK ||
	     f->type == PEERFRAME_PART_ACK || f->type == PEERFRAME_HISTORY) && f->ref != 0)
		idx = (uint32_t)(f->ref >> REF_LCORE_SHIFT) - 1;
	else
		idx = fo_raw_hash(f->room) % n;
	if (idx >= n) {
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		return;
	}
	m = pmsg_copy(node, f);
	if (m == NULL) {
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		return;
	}
	push(e, idx, m);
}

static void
broadcast(struct engine *e, uint32_t kind, uint32_t node)
{
	if (engine_svc(e) == NULL)
		return;
	for (uint32_t i = 0; i < engine_nlcores(e); i++) {
		struct pmsg *m = calloc(1, sizeof(*m));

		if (m == NULL) {
			LOG(ERR, FANOUT, "out of memory telling lcore %u of node %u's link", i,
			    node);
			continue;
		}
		m->kind = kind;
		m->node = node;
		push(e, i, m);
	}
}

void
fanout_peer_link(struct engine *e, uint32_t node, bool up)
{
	broadcast(e, up ? PM_UP : PM_DOWN, node);
}

void
fanout_peer_gone(struct engine *e, uint32_t node)
{
	broadcast(e, PM_GONE, node);
}

/* ---- pending requests ------------------------------------------------- */

uint64_t
fo_pend_add(struct lcore_ctx *lc, uint32_t node, uint32_t kind, void *ptr)
{
	struct fanout_lc *fo = fo_lc(lc);
	uint64_t ref;

	if (fo->npend == fo->pcap) {
		uint32_t cap = fo->pcap ? fo->pcap * 2 : 64;
		struct fo_pend *v = realloc(fo->pend, cap * sizeof(*v));

		if (v == NULL)
			return 0;
		fo->pend = v;
		fo->pcap = cap;
	}
	ref = (uint64_t)(lcore_idx(lc) + 1) << REF_LCORE_SHIFT |
	      (++fo->next_ref & ((1ull << REF_LCORE_SHIFT) - 1));
	fo->pend[fo->npend++] = (struct fo_pend){ .ref = ref, .node = node, .kind = kind,
						  .ptr = ptr };
	return ref;
}

void *
fo_pend_take(struct lcore_ctx *lc, uint64_t ref, uint32_t kind)
{
	struct fanout_lc *fo = fo_lc(lc);

	for (uint32_t i = 0; i < fo->npend; i++)
		if (fo->pend[i].ref == ref && fo->pend[i].kind == kind) {
			void *p = fo->pend[i].ptr;

			fo->pend[i] = fo->pend[--fo->npend];
			return p;
		}
	return NULL;
}

bool
fo_node_up(struct fanout_lc *fo, uint32_t node)
{
	for (uint32_t i = 0; i < fo->nup; i++)
		if (fo->up[i] == node)
			return true;
	return false;
}

/* ---- helpers ----------------------------------------------------------- */

void
fo_frame_init(struct peerframe *f, unsigned type, const uint8_t raw[CATALOG_ID_RAW], uint64_t epoch)
{
	memset(f, 0, sizeof(*f));
	f->type = (uint8_t)type;
	memcpy(f->room, raw, PEERFRAME_ROOM_LEN);
	f->epoch = epoch;
}

int
fo_peer_send(struct lcore_ctx *lc, uint32_t node, const struct peerframe *f)
{
	int rc = fo_peer_ops.send(fo_peer_ops.arg, node, f);

	if (rc != 0)
		ctr_inc(lc, CTR_PEER_SEND_FAILED);
	return rc;
}

/* Nodes with present users of <lr> (home). */
unsigned
fo_nodes_of(const struct fo_roomstate *lr, uint32_t *out)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < lr->nnodes; i++)
		if (lr->nodes[i].n > 0)
			out[n++] = lr->nodes[i].node;
	return n;
}

uint64_t
fo_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The xccos-level meaning of a refusal code, as -errno for post_done. */
int
fo_code_errno(unsigned code)
{
	switch (code) {
	case PEERFRAME_OK:
		return 0;
	case PEERFRAME_NOT_MEMBER:
		return -EACCES;
	case PEERFRAME_TOO_LARGE:
		return -EMSGSIZE;
	case PEERFRAME_WRONG_HOME:
	case PEERFRAME_STALE_EPOCH:
		return -ESTALE;
	default:
		return -EAGAIN;
	}
}

void
fo_refused(struct lcore_ctx *lc, const uint8_t raw[CATALOG_ID_RAW], unsigned code)
{
	ctr_inc(lc, CTR_PEER_REFUSALS_IN);
	if ((code == PEERFRAME_WRONG_HOME || code == PEERFRAME_STALE_EPOCH) &&
	    fo_peer_ops.rehome != NULL)
		fo_peer_ops.rehome(fo_peer_ops.arg, raw);
}

/* Why the home refuses a frame about <r> with <epoch>, or OK. */
unsigned
fo_home_check(const struct roomtab *t, const struct roomtab_ent *r, uint64_t epoch)
{
	if (r == NULL || !roomtab_homed_here(t, r))
		return PEERFRAME_WRONG_HOME;
	if (epoch < r->epoch)
		return PEERFRAME_STALE_EPOCH;
	if (epoch > r->epoch)		/* the sender knows a newer home than ours */
		return PEERFRAME_WRONG_HOME;
	return PEERFRAME_OK;
}

/* A post to deliver here with room for <extra> more bytes. */
void
fo_deliver_local(struct lcore_ctx *lc, struct fo_roomstate *lr, struct fanout_post *p)
{
	for (uint32_t l = 0; l < lcore_conf(lc)->nlcores; l++)
		if (lr->per_lcore[l] > 0) {
			atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
			fo_send_msg(lc, l, FM_DELIVER, p, 0);
		}
	fanout_post_put(p);
}

bool
fo_has_local(const struct fo_roomstate *lr)
{
	/* Local entries are the ones counted per lcore: no walk of the
	 * roster per relay. */
	for (uint32_t l = 0; l < FANOUT_LCORES_MAX; l++)
		if (lr->per_lcore[l] > 0)
			return true;
	return false;
}

/* ---- the lcore's loop ---------------------------------------------------- */

/* A frame or link event for this lcore: replication's frames go to
 * fanout_repl.c, the rest to fanout_peer_room.c. True when <m> was kept. */
static bool
frame(struct lcore_ctx *lc, struct pmsg *m)
{
	if (m->kind == PM_FRAME && m->f.type == PEERFRAME_REPL) {
		fo_repl_got(lc, m->node, &m->f);
		return false;
	}
	if (m->kind == PM_FRAME && m->f.type == PEERFRAME_REPL_ACK) {
		fo_repl_got_ack(lc, m->node, &m->f);
		return false;
	}
	return fo_peer_frame(lc, m);
}

void
fo_peer_poll(struct lcore_ctx *lc, unsigned *work)
{
	struct fanout_lc *fo = fo_lc(lc);
	struct pmsg *m, *rev = NULL;
	uint32_t n = 0;

	if (roomtab_of(lc) != NULL && roomtab_of(lc)->self != 0) {
		/* A new room table may carry moved homes: look at once. */
		if (roomtab_of(lc) != fo->seen_tab) {
			fo->seen_tab = roomtab_of(lc);
			fo->homes_checked_ms = 0;
		}
		fo_homes_check(lc);
	}
	if (atomic_load_explicit(&fo->inbox, memory_order_relaxed) == NULL)
		return;
	m = atomic_exchange_explicit(&fo->inbox, NULL, memory_order_acquire);
	while (m != NULL) {		/* pushed newest first: in arrival order again */
		struct pmsg *next = m->next;

		m->next = rev;
		rev = m;
		m = next;
		n++;
	}
	atomic_fetch_sub_explicit(&fo->inbox_n, n, memory_order_relaxed);
	*work += n;
	while (rev != NULL) {
		struct pmsg *next = rev->next;

		if (!frame(lc, rev))
			free(rev);
		rev = next;
	}
}

bool
fo_peer_idle(struct lcore_ctx *lc)
{
	return atomic_load_explicit(&fo_lc(lc)->inbox, memory_order_relaxed) == NULL;
}

void
fo_peer_fini(struct fanout_lc *fo)
{
	struct pmsg *m = atomic_exchange(&fo->inbox, NULL);

	while (m != NULL) {
		struct pmsg *next = m->next;

		free(m);
		m = next;
	}
	/* What still waited for another node at shutdown: the memory goes
	 * (the connections went with the lcores). */
	for (uint32_t i = 0; i < fo->npend; i++) {
		if (fo->pend[i].kind == PEND_POST) {
			fanout_post_put(fo->pend[i].ptr);
		} else if (fo->pend[i].kind == PEND_HIST) {
			struct fanout_histreq *h = fo->pend[i].ptr;

			free(h->recs);
			free(h->mem);
			free(h);
		}
	}
	free(fo->pend);
	fo->pend = NULL;
	fo->npend = fo->pcap = 0;
}
