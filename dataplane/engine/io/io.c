/* The table of I/O backends the engine can run on (engine_int.h: struct io_ops). */
#include <stddef.h>
#include <string.h>

#include "dataplane/engine/engine_int.h"

/* io/dpdk.c */
extern const struct io_ops io_dpdk_ops;

static const struct io_ops *const backends[] = {
	&io_kernel_ops,
	&io_dpdk_ops,
};

const struct io_ops *
io_backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}
