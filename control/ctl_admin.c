/* Users, drain, reload and the log level for the control socket.
 *
 * User commands rewrite the htdigest file atomically (htdigest_set_user:
 * temp file, fsync, rename), then load it and hand it to the engine, and
 * return once every lcore uses the new table (chatctl_settle): a login
 * right after `user add` succeeds, one right after `user del` fails.
 * Sessions already signed in stay signed in. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control/array.h"
#include "control/catalog_sync.h"
#include "control/ctl_int.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/chatctl.h"
#include "dataplane/engine/engine.h"
#include "storage/htdigest.h"

#define USER_MAX	160

bool
ctl_admin_user_norm(const struct ctl *c, const char *in, bool sip, char *out, size_t cap,
		    char *err, size_t errlen)
{
	const char *u = in;
	bool bare;

	if (u != NULL && strncasecmp(u, "sip:", 4) == 0)
		u += 4;
	if (u == NULL || u[0] == '\0' || u[0] == '@') {
		snprintf(err, errlen, "user: give a user (alice or alice@%s)", c->conf.domain);
		return false;
	}
	for (const char *p = u; *p; p++)
		if (isspace((unsigned char)*p) || strchr(":,;<>\"'\\/", *p) != NULL ||
		    (unsigned char)*p < 0x20) {
			snprintf(err, errlen, "user: '%s' is not a SIP address", in);
			return false;
		}
	bare = strchr(u, '@') == NULL;
	if ((size_t)snprintf(out, cap, "%s%s%s%s", sip ? "sip:" : "", u, bare ? "@" : "",
			     bare ? c->conf.domain : "") >= cap) {
		snprintf(err, errlen, "user: too long");
		return false;
	}
	return true;
}

/* Loads the file and makes every lcore use it. The table (one reference)
 * in *<out> when not NULL. 0 or -1 with a reason. */
static int
users_reload(struct ctl *c, bool settle, struct htdigest **out, char *err, size_t errlen)
{
	char why[512];
	struct htdigest *h = htdigest_load(c->conf.htdigest, true, why, sizeof(why));

	if (h == NULL) {
		snprintf(err, errlen, "written, but the file does not load: %s", why);
		return -1;
	}
	engine_reload(c->e, NULL, h);
	if (settle && chatctl_settle(c->e, CTL_LCORE_TIMEOUT_MS) != 0)
		LOG(WARNING, CONTROL, "an lcore did not confirm the new user table in %d ms; it "
		    "switches at its next loop turn", CTL_LCORE_TIMEOUT_MS);
	if (out != NULL)
		*out = h;
	else
		htdigest_put(h);
	return 0;
}

int
ctl_admin_users_reload(struct ctl *c, bool settle, char *err, size_t errlen)
{
	return users_reload(c, settle, NULL, err, errlen);
}

static int
user_exists(struct ctl *c, const char *user, bool *yes, char *err, size_t errlen)
{
	char why[512];
	struct htdigest *h = htdigest_load(c->conf.htdigest, true, why, sizeof(why));

	if (h == NULL) {
		snprintf(err, errlen, "the user table does not load: %s", why);
		return -1;
	}
	*yes = htdigest_has_user(h, user, strlen(user), c->conf.realm, strlen(c->conf.realm));
	htdigest_put(h);
	return 0;
}

int
ctl_admin_user_change(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
		      size_t errlen)
{
	enum ctl_admin_user_op op = a->op;
	static const char *const what[] = { "added", "password changed", "removed" };
	const char *pw = ctl_arg_str(a, "password", false);
	struct catalog_sync_done done = { 0 };
	struct catalog_sync *s;
	struct htdigest *h;
	char user[USER_MAX];
	bool exists;
	int held, rc;

	if (!ctl_admin_user_norm(c, ctl_arg_str(a, "user", true), false, user, sizeof(user), err,
				 errlen))
		return -1;
	if (op != CTL_USER_DEL &&
	    (pw == NULL || pw[0] == '\0' || strpbrk(pw, "\r\n") != NULL)) {
		snprintf(err, errlen, "password: give a non-empty password on one line");
		return -1;
	}
	held = catalog_sync_hold(c, &s, err, errlen);
	if (held < 0)
		return -1;
	if (held > 0) {
		/* In an array: etcd's users, applied by every node. */
		rc = catalog_sync_user(s, user, c->conf.realm, (enum catalog_sync_user_op)op, pw,
				       &done, err, errlen);
		catalog_sync_release(c);
		if (rc != 0)
			return -1;
		h = htdigest_load(c->conf.htdigest, true, err, errlen);
		if (h == NULL)
			return -1;
		LOG(NOTICE, CONTROL, "user %s: %s (array revision %lld)", user, what[op],
		    (long long)done.revision);
		goto answer;
	}
	if (user_exists(c, user, &exists, err, errlen) != 0)
		return -1;
	if (op == CTL_USER_ADD && exists) {
		snprintf(err, errlen, "%s exists (parleyctl user passwd changes a password)", user);
		return -1;
	}
	if (op != CTL_USER_ADD && !exists) {
		snprintf(err, errlen, "no user %s in %s (realm %s)", user, c->conf.htdigest,
			 c->conf.realm);
		return -1;
	}
	rc = htdigest_set_user(c->conf.htdigest, user, c->conf.realm,
			       op == CTL_USER_DEL ? NULL : pw);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot be written (%s)", c->conf.htdigest,
			 strerror(-rc));
		return -1;
	}
	if (users_reload(c, true, &h, err, errlen) != 0)
		return -1;
	LOG(NOTICE, CONTROL, "user %s: %s", user, what[op]);
answer:
	*out = json_pack("{s:s, s:s, s:s, s:s, s:I}", "user", user, "realm", c->conf.realm,
			 "file", c->conf.htdigest, "done", what[op],
			 "users", (json_int_t)htdigest_count(h));
	if (held > 0)
		json_object_set_new(*out, "revision", json_integer(done.revision));
	htdigest_put(h);
	return 0;
}

int
ctl_admin_drain(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	const char *arg = ctl_arg_str(a, "drain", true);
	bool resume = arg != NULL && (!strcasecmp(arg, "off") || !strcasecmp(arg, "false"));

	if (arg != NULL && !resume && strcasecmp(arg, "on") && strcasecmp(arg, "true")) {
		snprintf(err, errlen, "drain takes no parameter, or \"off\" to accept again");
		return -1;
	}
	/* This node's listeners; in an array, the node's record says
	 * draining too, and the other nodes stop placing clients here. */
	engine_set_accepting(c->e, resume);
	if (chatctl_settle(c->e, CTL_LCORE_TIMEOUT_MS) != 0)
		LOG(WARNING, CONTROL, "an lcore did not confirm %s in %d ms", resume ?
		    "accepting" : "the drain", CTL_LCORE_TIMEOUT_MS);
	pthread_mutex_lock(&c->lock);
	array_kick(c->array);	/* the array learns it now, not at the next turn */
	pthread_mutex_unlock(&c->lock);
	LOG(NOTICE, CONTROL, "%s", resume ? "accepting new connections again" :
	    "drain: not accepting new connections; existing sessions continue");
	*out = json_pack("{s:b, s:b}", "accepting", engine_accepting(c->e), "draining", !resume);
	return 0;
}

int
ctl_admin_reload(struct ctl *c, const struct ctl_args *a, json_t **out, char *err, size_t errlen)
{
	struct ctl_reload_result res = { false, false, 0 };

	if (c->conf.reload == NULL) {
		snprintf(err, errlen, "this server has no reload");
		return -1;
	}
	c->conf.reload(c->conf.reload_arg, &res);
	if (chatctl_settle(c->e, CTL_LCORE_TIMEOUT_MS) != 0)
		LOG(WARNING, CONTROL, "an lcore did not confirm the reload in %d ms",
		    CTL_LCORE_TIMEOUT_MS);
	if (!res.tls || !res.users) {
		snprintf(err, errlen, "certificate %s, users %s: the server log says why",
			 res.tls ? "reloaded" : "kept (load failed)",
			 res.users ? "reloaded" : "kept (load failed)");
		return -1;
	}
	*out = json_pack("{s:s, s:s, s:I}", "certificate", "reloaded", "users", "reloaded",
			 "user_count", (json_int_t)res.nusers);
	return 0;
}

int
ctl_admin_loglevel(struct ctl *c, const struct ctl_args *a, json_t **out, char *err,
		   size_t errlen)
{
	const char *name = ctl_arg_str(a, "level", true);
	int lvl, old;

	if (name == NULL) {
		*out = json_pack("{s:s}", "level", log_level_name(atomic_load(&log_level_cur)));
		return 0;
	}
	lvl = log_level_parse(name);
	if (lvl < 0) {
		snprintf(err, errlen, "level: err, warning, notice, info or debug");
		return -1;
	}
	old = log_set_level(lvl);
	LOG(NOTICE, CONTROL, "log level %s (was %s)", log_level_name(lvl), log_level_name(old));
	*out = json_pack("{s:s, s:s}", "level", log_level_name(lvl), "previous",
			 log_level_name(old));
	return 0;
}
