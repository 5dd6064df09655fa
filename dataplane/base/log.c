/* Rate-limited line logger; see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"

_Atomic int log_level_cur = LOG_LVL_NOTICE;

static const char *const level_names[] = {
	"err", "warning", "notice", "info", "debug",
};

int
log_set_level(int level)
{
	if (level < LOG_LVL_ERR)
		level = LOG_LVL_ERR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	return atomic_exchange(&log_level_cur, level);
}

int
log_level_parse(const char *name)
{
	for (int i = 0; i <= LOG_LVL_DEBUG; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < 0 || level > LOG_LVL_DEBUG)
		return "?";
	return level_names[level];
}

/* -1 not known yet, 0 the terminal's format, 1 the journal's. */
static _Atomic int journal = -1;

/* systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
 * stderr; a stderr redirected elsewhere since does not match. */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return st.st_dev == dev && st.st_ino == ino;
}

int
log_format(char *line, size_t cap, bool journal_fmt, int level, const char *comp,
	   const char *msg)
{
	/* syslog(3) priorities, as sd-daemon(3) reads them */
	static const int prio[] = { 3, 4, 5, 6, 7 };
	uint64_t ms;
	time_t s;
	struct tm tm;

	if (journal_fmt)
		return snprintf(line, cap, "<%d>%s: %s\n", prio[level], comp, msg);
	ms = clock_real_ms();
	s = (time_t)(ms / 1000);
	gmtime_r(&s, &tm);
	return snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: %s\n",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec, (long)(ms % 1000), level_names[level], comp, msg);
}

static void
write_line(int level, const char *comp, const char *msg)
{
	char line[1200];
	int j = atomic_load_explicit(&journal, memory_order_relaxed);
	int n;

	if (j < 0) {	/* racing threads find the same answer */
		j = stderr_is_journal();
		atomic_store_explicit(&journal, j, memory_order_relaxed);
	}
	n = log_format(line, sizeof(line), j == 1, level, comp, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write per line so that lines from several threads never interleave. */
	if (write(STDERR_FILENO, line, n) == -1)
		return;
}

void
log_emit(struct log_site *site, int level, const char *comp, const char *fmt, ...)
{
	uint64_t now = (uint64_t)time(NULL) / LOG_WINDOW_S;
	uint64_t win = atomic_load_explicit(&site->window, memory_order_relaxed);
	char msg[1024];
	va_list ap;

	if (win != now &&
	    atomic_compare_exchange_strong(&site->window, &win, now)) {
		uint32_t sup = atomic_exchange(&site->suppressed, 0);

		atomic_store(&site->count, 0);
		if (sup > 0) {
			snprintf(msg, sizeof(msg), "suppressed %u similar lines", sup);
			write_line(level, comp, msg);
		}
	}
	if (atomic_fetch_add(&site->count, 1) >= LOG_BURST) {
		atomic_fetch_add(&site->suppressed, 1);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	write_line(level, comp, msg);
}
