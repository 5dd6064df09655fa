/* dataplane/base: the clocks, the file-system helpers, BUG_ON and the log format. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#ifndef PARLEY_STRICT
#define PARLEY_STRICT 1		/* this file checks the strict BUG_ON */
#endif
#include "dataplane/base/bug.h"
#include "dataplane/base/clock.h"
#include "dataplane/base/fs.h"
#include "dataplane/base/log.h"
#include "tests/dataplane/base/bug_off.h"

Test(clock, units_agree)
{
	uint64_t ns = clock_mono_ns(), us = clock_mono_us(), ms = clock_mono_ms();
	struct timespec ts;

	cr_assert_geq(us, ns / 1000);
	cr_assert_geq(ms, ns / 1000000);
	cr_assert_leq(ms, us / 1000 + 1000, "ms %llu us %llu", (unsigned long long)ms,
		      (unsigned long long)us);
	cr_assert_leq(clock_mono_s_coarse(), clock_mono_ms() / 1000 + 1);
	cr_assert_geq(clock_mono_s_coarse() + 1, ms / 1000);
	clock_gettime(CLOCK_REALTIME, &ts);
	cr_assert_geq(clock_real_ms(), (uint64_t)ts.tv_sec * 1000);
	cr_assert_leq(clock_real_ms(), (uint64_t)ts.tv_sec * 1000 + 10000);
	cr_assert_leq(clock_real_ms_coarse(), clock_real_ms() + 1000);
	cr_assert_geq(clock_real_ms_coarse() + 1000, clock_real_ms());
	cr_assert_geq(clock_real_100ns() / 10000, (uint64_t)ts.tv_sec * 1000);
}

Test(clock, monotonic_goes_forward)
{
	uint64_t t0 = clock_mono_ns();

	usleep(20000);
	cr_assert_geq(clock_mono_ns() - t0, 20000000u);
	cr_assert_lt(clock_mono_ns() - t0, 10000000000u);
}

static char tmp[PATH_MAX];

static void
mktmp(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/parley-base-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
}

static void
rmtmp(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	cr_assert_eq(system(cmd), 0);
}

Test(fs, mkdir_p_makes_every_level, .init = mktmp, .fini = rmtmp)
{
	char path[PATH_MAX + 32];
	struct stat st;

	snprintf(path, sizeof(path), "%s/a/b//c/", tmp);
	cr_assert_eq(fs_mkdir_p(path, 0750), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 0777 & ~0022, 0750 & ~0022);
	/* Again: what exists is fine. */
	cr_assert_eq(fs_mkdir_p(path, 0750), 0);
}

Test(fs, mkdir_p_says_why, .init = mktmp, .fini = rmtmp)
{
	char path[PATH_MAX + 64], file[PATH_MAX + 32], *longp;
	FILE *f;

	snprintf(file, sizeof(file), "%s/file", tmp);
	f = fopen(file, "w");
	cr_assert_not_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/sub", file);
	cr_assert_eq(fs_mkdir_p(path, 0750), -ENOTDIR);
	/* EEXIST is not an error, whatever exists: the caller's open() says. */
	cr_assert_eq(fs_mkdir_p(file, 0750), 0);
	cr_assert_eq(fs_mkdir_p("", 0750), -ENOENT);
	longp = malloc(PATH_MAX + 2);
	cr_assert_not_null(longp);
	memset(longp, 'a', PATH_MAX + 1);
	longp[PATH_MAX + 1] = '\0';
	cr_assert_eq(fs_mkdir_p(longp, 0750), -ENAMETOOLONG);
	free(longp);
}

Test(fs, dirname)
{
	char out[16];

	cr_assert_eq(fs_dirname("a/b/c.pem", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "a/b");
	cr_assert_eq(fs_dirname("c.pem", out, sizeof(out)), 0);
	cr_assert_str_eq(out, ".");
	cr_assert_eq(fs_dirname("/c.pem", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(fs_dirname("0123456789abcdef/x", out, sizeof(out)), -ENAMETOOLONG);
}

Test(bug, strict_bug_on_aborts, .signal = SIGABRT)
{
	int x = 1;

	BUG_ON(x == 2);
	BUG_ON(x == 1);
}

Test(bug, off_bug_on_is_nothing)
{
	int evaluated = 0;

	cr_assert_eq(bug_off_check(&evaluated), 0);
	cr_assert_eq(evaluated, 0, "the condition was evaluated");
}

/* The journal's format (stderr under systemd): "<P>COMP: msg\n" with the
 * syslog priority of each level and no time; the terminal's keeps its
 * ISO time and level name. */
Test(log, journal_and_terminal_formats)
{
	static const char *const want[] = { "<3>", "<4>", "<5>", "<6>", "<7>" };
	char line[256];
	int n;

	for (int lvl = LOG_LVL_ERR; lvl <= LOG_LVL_DEBUG; lvl++) {
		char expect[64];

		n = log_format(line, sizeof(line), true, lvl, "ROUTER", "hello");
		snprintf(expect, sizeof(expect), "%sROUTER: hello\n", want[lvl]);
		cr_assert_str_eq(line, expect);
		cr_assert_eq(n, (int)strlen(expect));
	}
	n = log_format(line, sizeof(line), false, LOG_LVL_WARNING, "WEB", "x");
	cr_assert_gt(n, 0);
	cr_assert(line[4] == '-' && line[10] == 'T' && line[23] == 'Z', "%s", line);
	cr_assert_str_eq(line + 24, " warning WEB: x\n");
}
