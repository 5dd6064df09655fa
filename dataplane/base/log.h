/* One line per event: "<time> <level> <component>: message" on stderr; when
 * stderr is systemd's journal stream ($JOURNAL_STREAM names it), instead
 * "<P><component>: message" with P the syslog priority (sd-daemon(3): err 3,
 * warning 4, notice 5, info 6, debug 7) and no time (the journal has it).
 *
 * LOG() is rate-limited per call site: at most LOG_BURST lines per
 * LOG_WINDOW_S seconds from one site, then one "suppressed N" line when the
 * window turns over. A flood of bad input therefore costs one line a second,
 * not one per packet. Safe from any thread; never blocks longer than one
 * write(2) to stderr. */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARNING,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

#define LOG_BURST	10
#define LOG_WINDOW_S	1

struct log_site {
	_Atomic uint64_t window;	/* second the current window started */
	_Atomic uint32_t count;		/* lines in this window */
	_Atomic uint32_t suppressed;
};

extern _Atomic int log_level_cur;

/* Sets the level; returns the previous one. Any thread. */
int log_set_level(int level);
/* "err", "warning", "notice", "info", "debug" -> level, or -1. */
int log_level_parse(const char *name);
const char *log_level_name(int level);

/* One line (newline included) into <line>, in the journal's format when
 * <journal_fmt>, else the terminal's; snprintf's result. */
int log_format(char *line, size_t cap, bool journal_fmt, int level, const char *comp,
	       const char *msg);

void log_emit(struct log_site *site, int level, const char *comp, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define LOG(lvl, comp, ...) do {						\
	if (LOG_LVL_##lvl <= atomic_load_explicit(&log_level_cur,		\
						  memory_order_relaxed)) {	\
		static struct log_site log_site_;				\
		log_emit(&log_site_, LOG_LVL_##lvl, #comp, __VA_ARGS__);	\
	}									\
} while (0)

#endif
