/* What the Group Chat integration tests share: signing users in, finding
 * and joining rooms, reading reply codes, and reading the compliance
 * output (validated against tests/data/compliance.xsd). Criterion asserts
 * inside; for test programs only. */
#ifndef PARLEY_TEST_CHATKIT_H
#define PARLEY_TEST_CHATKIT_H

#include <stdbool.h>
#include <stddef.h>

#include "perf/gcclient.h"
#include "tests/integration/harness.h"

/* Signs <aor> in through Lookup to the Channel service; asserts (with the
 * server log's tail) on failure. */
struct gc *kit_login(const struct server *s, const char *aor, const char *pw);
/* user<i>@example.com, password "pw" (harness.h). */
struct gc *kit_user(const struct server *s, int i);

/* The rpl:chansrch body for <criteria> as <g> sees it (caller frees). */
char *kit_chansrch(struct gc *g, const char *criteria);
/* The URI of the room called exactly <name> that <g> can see. */
bool kit_room_uri(struct gc *g, const char *name, char *uri, size_t cap);
/* Joins and asserts code 200. */
void kit_join_ok(struct gc *g, const char *uri);
/* The code attribute of the first <resp> in <body>, or -1 (also for NULL). */
int kit_resp_code(const char *body);

/* One compliance event as exported. */
struct kit_ev {
	char	type[16];
	char	content[128];
	char	user[64];	/* Sender uri (no sip:) */
	char	room[128];	/* Channel uri */
	long	id;
	long long ms;	/* DateTimeUTC since1970 */
};

struct kit_evs {
	struct kit_ev	*v;
	size_t		n, cap;
	int		files;
};

/* Appends every Message of every XML file in <dir>, files in name (that is
 * sequence) order, each validated against the XSD first. */
void kit_read_export(const char *dir, struct kit_evs *out);
/* Events of <type> (and <content>, unless NULL). */
int kit_count(const struct kit_evs *e, const char *type, const char *content);
void kit_evs_free(struct kit_evs *e);

#endif
