/* libFuzzer target: a control socket request line (control/ctl_req.c) as
 * the control thread reads it from a client: split it into command and
 * params, build the arguments, read them the way commands do. Checks: the
 * command is a prefix of the line, the arguments are always an object when
 * accepted and absent when refused with a reason, and an accepted object
 * survives a dump and reload unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_args a = { NULL };
	char err[512] = "";
	char *line, *cmd, *params;
	char *dump;

	if (size > 65536 || memchr(data, '\0', size) != NULL)
		return 0;	/* the socket cuts lines at the first NUL */
	line = malloc(size + 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (!ctl_req_split(line, &cmd, &params))
		goto out;
	if (cmd != line || (params != NULL && (params <= cmd || params > line + size)))
		abort();
	if (ctl_req_args(params, &a, err, sizeof(err)) != 0) {
		if (a.obj != NULL || err[0] == '\0')
			abort();
		goto out;
	}
	if (!json_is_object(a.obj))
		abort();
	(void)ctl_arg_str(&a, "room", true);
	(void)ctl_arg_str(&a, "user", false);
	dump = json_dumps(a.obj, JSON_SORT_KEYS | JSON_COMPACT);
	if (dump != NULL) {
		json_error_t je;
		json_t *again = json_loads(dump, JSON_REJECT_DUPLICATES, &je);

		if (again == NULL || !json_equal(again, a.obj))
			abort();
		json_decref(again);
		free(dump);
	}
	json_decref(a.obj);
out:
	free(line);
	return 0;
}
