/* File-system helpers; see fs.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dataplane/base/fs.h"

int
fs_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp; *p; p++) {
		if (*p != '/' || p == tmp)
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) == -1 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

int
fs_dirname(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return snprintf(out, cap, ".") >= (int)cap ? -ENAMETOOLONG : 0;
	if ((size_t)(slash - path) >= cap)
		return -ENAMETOOLONG;
	memcpy(out, path, slash - path);
	out[slash - path] = '\0';
	return 0;
}
