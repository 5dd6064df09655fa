/* parleyd: the command line and the configuration, then the boot steps
 * (boot.h), then supervision until a signal: SIGHUP reloads the certificate
 * and the htdigest file, SIGINT/SIGTERM drain and exit.
 *
 * Runs in the foreground; errors that stop it say what to fix. */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include <rte_launch.h>
#include <rte_lcore.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/engine/engine.h"
#include "dataplane/web/web.h"
#include "router/boot.h"
#include "router/config.h"
#include "router/sdnotify.h"

#define SETS_MAX 64

/* What the command line asks for. */
struct options {
	const char *cfile;		/* -c, or NULL: the embedded default */
	char *sets[SETS_MAX];		/* SEC.KEY=VAL, in order */
	char *owned[SETS_MAX];		/* those of sets[] made from shorthands */
	int nsets, nowned;
	bool check;
	bool verbose;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: parleyd [-c FILE] [options]\n"
		"       parleyd --check-config [-c] FILE\n"
		"       parleyd --dump-keys\n"
		"  -c, --config FILE      INI configuration (default: the embedded default)\n"
		"      --check-config     validate the configuration and exit 0 (good) or 1\n"
		"      --dump-keys        print every configuration key (tab-separated) and exit\n"
		"  -s, --set SEC.KEY=VAL  override one configuration key (repeatable)\n"
		"  -l, --listen HOST:PORT same as --set sip.listen=HOST:PORT\n"
		"  -d, --data-dir DIR     same as --set server.data_dir=DIR\n"
		"      --domain NAME      same as --set server.domain=NAME\n"
		"      --lcores N         same as --set dpdk.lcores=N\n"
		"  -v, --verbose          log at debug level\n"
		"  -h, --help\n");
}

/* -1 to go on, else the exit status. */
static int
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "dump-keys", no_argument, NULL, 'K' },
		{ "set", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "domain", required_argument, NULL, 'D' },
		{ "lcores", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "c:s:l:d:vh", opts, NULL)) != -1) {
		char buf[CONFIG_PATH_MAX + 32];

		buf[0] = '\0';
		switch (opt) {
		case 'c': o->cfile = optarg; break;
		case 'C': o->check = true; break;
		case 'K': config_dump_keys(stdout); return 0;
		case 's': if (o->nsets < SETS_MAX) o->sets[o->nsets++] = optarg; break;
		case 'l': snprintf(buf, sizeof(buf), "sip.listen=%s", optarg); break;
		case 'd': snprintf(buf, sizeof(buf), "server.data_dir=%s", optarg); break;
		case 'D': snprintf(buf, sizeof(buf), "server.domain=%s", optarg); break;
		case 'L': snprintf(buf, sizeof(buf), "dpdk.lcores=%s", optarg); break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (buf[0] != '\0' && o->nsets < SETS_MAX)
			o->sets[o->nsets++] = o->owned[o->nowned++] = strdup(buf);
	}
	if (o->check && o->cfile == NULL && optind == argc - 1)
		o->cfile = argv[optind++];	/* parleyd --check-config FILE */
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

/* The embedded defaults, the file over them, the command line over both. 0,
 * or -1 with the reason on stderr. */
static int
configure(struct config *c, const struct options *o)
{
	char err[1024];

	config_defaults(c);
	if (o->cfile != NULL && config_load(c, o->cfile, err, sizeof(err)) != 0) {
		fprintf(stderr, "parleyd: %s\n", err);
		return -1;
	}
	for (int i = 0; i < o->nsets; i++)
		if (config_set(c, o->sets[i], err, sizeof(err)) != 0) {
			fprintf(stderr, "parleyd: %s\n", err);
			return -1;
		}
	if (config_finish(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "parleyd: %s%s%s\n", o->cfile ? o->cfile : "",
			o->cfile ? ": " : "", err);
		return -1;
	}
	return 0;
}

/* systemd's watchdog (WatchdogSec=): WATCHDOG=1 every half interval while
 * every lcore turns its loop; a stuck lcore stops the pings and systemd
 * restarts the service. */
struct watchdog {
	uint64_t period_ms;	/* 0: no watchdog */
	uint64_t next_ms;
};

static void
watchdog_tick(struct watchdog *w, struct boot *b)
{
	uint64_t now = clock_mono_ms();
	int wait_ms;

	if (w->period_ms == 0 || now < w->next_ms)
		return;
	wait_ms = (int)(w->period_ms < 2000 ? w->period_ms / 2 : 1000);
	if (boot_lcores_alive(b, wait_ms))
		sdnotify("WATCHDOG=1");
	else
		LOG(ERR, ROUTER, "systemd watchdog: an lcore did not turn its loop in %d ms",
		    wait_ms);
	w->next_ms = now + w->period_ms;
}

/* Waits for signals until a drain is requested and every worker returned. */
static void
supervise(struct boot *b)
{
	bool draining = false;
	struct watchdog wd = { sdnotify_watchdog_usec() / 2000, 0 };
	int poll_ms = 200;

	if (wd.period_ms > 0 && wd.period_ms < (uint64_t)poll_ms)
		poll_ms = wd.period_ms > 10 ? (int)wd.period_ms : 10;
	for (;;) {
		struct pollfd p = { .fd = b->sfd, .events = POLLIN };
		struct signalfd_siginfo si;
		bool busy = false;
		unsigned int id;

		watchdog_tick(&wd, b);
		boot_update_compliance(b);
		/* Workers return only once drained. */
		RTE_LCORE_FOREACH_WORKER(id)
			if (rte_eal_get_lcore_state(id) != WAIT)
				busy = true;
		if (draining && !busy)
			return;
		if (poll(&p, 1, poll_ms) <= 0)
			continue;
		if (read(b->sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			sdnotify("RELOADING=1");
			boot_reload(b);
			sdnotify("READY=1");
		} else if (!draining) {
			sdnotify("STOPPING=1\nSTATUS=draining");
			LOG(NOTICE, ROUTER, "%s: draining (up to %u s)", strsignal(si.ssi_signo),
			    b->conf.engine.drain_timeout_s);
			engine_drain(b->engine);
			/* The Web service drains alongside: with the dpdk
			 * backend, lcores wait for its connections to end. */
			web_begin_stop(b->web);
			draining = true;
		}
	}
}

int
main(int argc, char **argv)
{
	static struct boot b;	/* large (the configuration): not on the stack */
	struct options o = { 0 };
	int rc;

	rc = parse_options(argc, argv, &o);
	if (rc >= 0)
		return rc;
	rc = configure(&b.conf, &o);
	while (o.nowned > 0)
		free(o.owned[--o.nowned]);
	if (rc != 0)
		return 1;
	if (o.check) {
		printf("parleyd: configuration %s is valid\n",
		       o.cfile ? o.cfile : "(embedded default)");
		return 0;
	}
	log_set_level(o.verbose ? LOG_LVL_DEBUG : log_level_parse(b.conf.log_level));
	if (boot_start(&b) != 0)
		return 1;
	supervise(&b);
	boot_stop(&b);
	config_free(&b.conf);
	LOG(NOTICE, ROUTER, "parleyd: stopped");
	return 0;
}
