/* Inside the array's catalog: what catalog_sync.c (start, stop, the
 * thread that applies changes) and catalog_sync_change.c (the changes the
 * control socket makes) share. */
#ifndef PARLEY_CATALOG_SYNC_INT_H
#define PARLEY_CATALOG_SYNC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "control/catalog_sync.h"

#define CATALOG_SYNC_KEY_MAX	512
#define CATALOG_SYNC_PREFIX_MAX	256	/* P/catalog/ and the like */

struct array;
struct etcd;

struct catalog_sync {
	struct ctl		*c;
	struct array		*a;
	struct catalog_sync_config conf;
	char			*etcd_list;
	char			cat[CATALOG_SYNC_PREFIX_MAX];	/* P/catalog/ */
	char			acks[CATALOG_SYNC_PREFIX_MAX];	/* P/acks/ */
	char			nodes[CATALOG_SYNC_PREFIX_MAX];	/* P/nodes/ */
	char			ack[CATALOG_SYNC_PREFIX_MAX];	/* P/acks/<id> */
	struct etcd		*thr;		/* the thread's requests */
	struct etcd		*watch;		/* the thread's watch */
	struct etcd		*cmd;		/* the control thread's */
	pthread_t		thread;
	bool			running;
	_Atomic bool		stop;

	_Atomic int64_t		applied;	/* every change up to this is applied */
	int64_t			acked;		/* what P/acks/<id> says */
	int64_t			ack_lease;	/* the lease it was written under */
	bool			watch_lost;	/* logged once per loss */
	bool			serving;	/* the lcores run (not at start) */

	/* What the last change applied here did (catalog_sync_done). */
	_Atomic int64_t		last_rev;
	_Atomic int		last_evicted;
	_Atomic int		last_notified;

	_Atomic uint64_t	n_applied, n_bad, n_full, n_lost;
};

#endif
