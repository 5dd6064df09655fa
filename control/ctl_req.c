/* Request lines of the control socket; see ctl_req.h. */
#include <stdio.h>
#include <string.h>

#include "control/ctl_req.h"

bool
ctl_req_split(char *line, char **cmd, char **params)
{
	size_t n = strlen(line);
	char *p;

	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (n == 0)
		return false;
	p = strchr(line, ',');
	if (p != NULL)
		*p++ = '\0';
	*cmd = line;
	*params = p;
	return true;
}

int
ctl_req_args(const char *params, struct ctl_args *a, char *err, size_t errlen)
{
	json_error_t je;

	if (params == NULL || params[0] == '\0') {
		a->obj = json_object();
	} else if (params[0] == '{') {
		a->obj = json_loads(params, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(a->obj)) {
			snprintf(err, errlen, "params: not a JSON object (%s at column %d)",
				 je.text, je.column);
			json_decref(a->obj);
			a->obj = NULL;
			return -1;
		}
	} else {
		a->obj = json_pack("{s:s}", "arg", params);
	}
	if (a->obj == NULL) {
		snprintf(err, errlen, "params: out of memory, or not valid UTF-8");
		return -1;
	}
	return 0;
}

const char *
ctl_arg_str(const struct ctl_args *a, const char *key, bool main)
{
	json_t *v = a->obj ? json_object_get(a->obj, key) : NULL;

	if (v == NULL && main && a->obj != NULL)
		v = json_object_get(a->obj, "arg");
	return json_is_string(v) ? json_string_value(v) : NULL;
}
