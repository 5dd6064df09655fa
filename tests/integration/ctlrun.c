/* See ctlrun.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "tests/integration/ctlrun.h"

const char *
ctl_binary(void)
{
	static char path[512];

	return build_path(path, sizeof(path), "control/parleyctl");
}

void
ctl_server_start(struct server *s, const char *extra, const char *sock)
{
	char path[400];

	server_start(s, extra);
	snprintf(path, sizeof(path), "%s", sock ? sock : s->dir);
	if (sock == NULL)
		strncat(path, "/parleyd.sock", sizeof(path) - strlen(path) - 1);
	for (int i = 0; i < 100; i++) {
		if (access(path, F_OK) == 0)
			return;
		usleep(50000);
	}
	run("cat %s >&2", s->log);
	cr_assert_fail("no control socket %s", path);
}

/* Runs <cmd>, parses its stdout. */
static int
run_json(const char *cmd, json_t **out)
{
	FILE *p = popen(cmd, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	int st;

	cr_assert_not_null(p, "popen %s", cmd);
	do {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		n = fread(buf + len, 1, cap - len - 1, p);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	st = pclose(p);
	if (out != NULL)
		*out = json_loads(buf, 0, NULL);
	free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
ctl(struct server *s, json_t **out, const char *fmt, ...)
{
	char args[2048], cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s -j -c %s %s 2>>%s/ctl.err", ctl_binary(), s->conf, args,
		 s->dir);
	return run_json(cmd, out);
}

int
ctl_as(const char *prefix, const char *socket, json_t **out, const char *fmt, ...)
{
	char args[2048], cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s %s -j -s %s %s", prefix, ctl_binary(), socket, args);
	return run_json(cmd, out);
}

json_t *
ctl_ok(struct server *s, const char *fmt, ...)
{
	char args[2048];
	json_t *v = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	rc = ctl(s, &v, "%s", args);
	if (rc != 0 || v == NULL)
		run("cat %s/ctl.err >&2; tail -20 %s >&2", s->dir, s->log);
	cr_assert_eq(rc, 0, "parleyctl %s: exit %d", args, rc);
	cr_assert_not_null(v, "parleyctl %s: no JSON", args);
	return v;
}

json_t *
jget(json_t *v, const char *path)
{
	char key[128];

	while (v != NULL && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		if (json_is_array(v))
			v = json_array_get(v, strtoul(key, NULL, 10));
		else
			v = json_object_get(v, key);
		path += n + (dot ? 1 : 0);
	}
	return v;
}

long long
jint(json_t *v, const char *path)
{
	json_t *x = jget(v, path);

	cr_assert(json_is_integer(x), "%s: not an integer", path);
	return json_integer_value(x);
}

const char *
jstr(json_t *v, const char *path)
{
	json_t *x = jget(v, path);

	cr_assert(json_is_string(x), "%s: not a string", path);
	return json_string_value(x);
}
