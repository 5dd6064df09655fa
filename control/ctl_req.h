/* A control socket request line, parsed: "/parley/<command>[,<params>]"
 * (see ctl.h for the protocol). Pure functions over the line, no socket or
 * engine: the control thread uses them, and so does tests/fuzz. */
#ifndef PARLEY_CTL_REQ_H
#define PARLEY_CTL_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* A command's arguments: the params as a JSON object (a plain-string
 * params becomes {"arg": <string>}). Borrowed for the call. <op> is the
 * variant the command table names for a function that serves several
 * commands (0 for the others); ctl_req_args leaves it alone. */
struct ctl_args {
	json_t	*obj;
	int	op;
};

/* Cuts <line> (NUL-terminated, without its newline; modified in place)
 * into the command name *<cmd> and the raw params *<params> (NULL when the
 * line has none); trailing blanks and CR are dropped. False for a line that
 * holds nothing (ignored, no answer). */
bool ctl_req_split(char *line, char **cmd, char **params);

/* Fills <a> from raw <params> (NULL or "": an empty object; "{...}": a JSON
 * object, duplicate keys refused; anything else: {"arg": params}). 0 with a
 * new reference in a->obj that the caller releases (json_decref), or -1
 * with the reason in <err> and a->obj NULL. */
int ctl_req_args(const char *params, struct ctl_args *a, char *err, size_t errlen);

/* The string argument <key>, or when absent and <main> is set, the plain
 * params string. NULL when neither is there or it is not a string. */
const char *ctl_arg_str(const struct ctl_args *a, const char *key, bool main);

#endif
