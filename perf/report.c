/* parley-bench results; see report.h. */
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/report.h"

#define KV_MAX	64

/* The result as an ordered list of pairs; numbers keep their text. */
struct kv {
	const char *k[KV_MAX];
	char v[KV_MAX][96];
	bool str[KV_MAX];
	unsigned n;
};

static void
kv_s(struct kv *kv, const char *k, const char *v)
{
	if (kv->n == KV_MAX)
		return;
	kv->k[kv->n] = k;
	snprintf(kv->v[kv->n], sizeof(kv->v[0]), "%s", v);
	kv->str[kv->n++] = true;
}

static void
kv_u(struct kv *kv, const char *k, uint64_t v)
{
	if (kv->n == KV_MAX)
		return;
	kv->k[kv->n] = k;
	snprintf(kv->v[kv->n], sizeof(kv->v[0]), "%" PRIu64, v);
	kv->str[kv->n++] = false;
}

static void
kv_f(struct kv *kv, const char *k, double v, int prec)
{
	if (kv->n == KV_MAX)
		return;
	kv->k[kv->n] = k;
	if (!isfinite(v))
		v = 0;
	snprintf(kv->v[kv->n], sizeof(kv->v[0]), "%.*f", prec, v);
	kv->str[kv->n++] = false;
}

static bool
is_number(const char *s)
{
	char *end;

	if (*s == '\0')
		return false;
	strtod(s, &end);
	return *end == '\0';
}

static void
kv_print(const struct kv *kv, const struct bench_conf *c)
{
	if (!c->json) {
		for (unsigned i = 0; i < kv->n; i++)
			printf("%s%s=%s", i ? " " : "", kv->k[i], kv->v[i]);
		for (unsigned i = 0; i < c->ntags; i++)
			printf(" %s", c->tags[i]);
		printf("\n");
		return;
	}
	printf("{");
	for (unsigned i = 0; i < kv->n; i++)
		printf("%s\"%s\": %s%s%s", i ? ", " : "", kv->k[i], kv->str[i] ? "\"" : "",
		       kv->v[i], kv->str[i] ? "\"" : "");
	for (unsigned i = 0; i < c->ntags; i++) {
		const char *eq = strchr(c->tags[i], '=');
		bool num = is_number(eq + 1);

		printf(", \"%.*s\": %s%s%s", (int)(eq - c->tags[i]), c->tags[i], num ? "" : "\"",
		       eq + 1, num ? "" : "\"");
	}
	printf("}\n");
}

static double
ms(uint64_t ns)
{
	return ns / 1e6;
}

static void
latencies(struct kv *kv, const struct hist *h, const char *p50, const char *p90,
	  const char *p99, const char *p999, const char *max)
{
	kv_f(kv, p50, ms(hist_quantile(h, 0.50)), 3);
	if (p90)
		kv_f(kv, p90, ms(hist_quantile(h, 0.90)), 3);
	kv_f(kv, p99, ms(hist_quantile(h, 0.99)), 3);
	if (p999)
		kv_f(kv, p999, ms(hist_quantile(h, 0.999)), 3);
	if (max)
		kv_f(kv, max, ms(h->max), 3);
}

/* The generator's own load over the window: the busiest worker thread, or
 * the whole process over the CPUs it may use, whichever is higher. */
static double
gen_busy(struct bench *b, const struct sample *s0, const struct sample *s1, double win)
{
	unsigned ncpu = 1, use;
	double busiest = 0, proc;
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		ncpu = (unsigned)CPU_COUNT(&set);
	for (unsigned i = 0; i < b->c.nthreads; i++) {
		double f = (s1->thread_cpu[i] - s0->thread_cpu[i]) / win;

		if (f > busiest)
			busiest = f;
	}
	use = b->c.nthreads < ncpu ? b->c.nthreads : ncpu;
	proc = (s1->proc_cpu - s0->proc_cpu) / win / use;
	return proc > busiest ? proc : busiest;
}

int
report(struct bench *b, const struct procstat *base, const struct sample *s0,
       const struct sample *s1)
{
	const struct bench_conf *c = &b->c;
	static struct hist lat, ack, lag, hlat, lat_local, lat_remote;
	struct kv kv = { .n = 0 };
	double win = (s1->t - s0->t) / 1e9, busy, srv_cpu = 0, other;
	bool srv = s0->srv_ok && s1->srv_ok, lagging = false, stalled = false, skewed;
	uint64_t errors, missing = 0, busy_max = 0, oversleep_max = 0;
	uint64_t ws = atomic_load(&b->ws_ns), we = atomic_load(&b->we_ns);
	double want = we > ws ? (double)(we - ws) / 1e9 : 0;
	int rc = 0;

	/* The samples (server CPU, the machine's) are taken by the main
	 * thread at the window's ends; the workers count deliveries by the
	 * window's times. A main thread that woke late (its worker held the
	 * CPU: a saturated generator, worse under SCHED_FIFO) measured
	 * another span than the counts: nothing per delivery is valid. */
	skewed = want > 0 && (win < 0.9 * want ||
			      (double)((int64_t)s0->t - (int64_t)ws) / 1e9 > 0.1 * want);
	if (win <= 0)
		win = 1e-9;
	for (unsigned i = 0; i < c->nthreads; i++) {
		hist_merge(&lat, &b->w[i].lat);
		hist_merge(&ack, &b->w[i].ack);
		hist_merge(&lag, &b->w[i].lag);
		hist_merge(&hlat, &b->w[i].hlat);
		hist_merge(&lat_local, &b->w[i].lat_local);
		hist_merge(&lat_remote, &b->w[i].lat_remote);
	}
	busy = gen_busy(b, s0, s1, win);
	for (unsigned i = 0; i < c->nthreads; i++) {
		if (b->w[i].busy_max > busy_max)
			busy_max = b->w[i].busy_max;
		if (b->w[i].oversleep_max > oversleep_max)
			oversleep_max = b->w[i].oversleep_max;
	}
	if (srv)
		srv_cpu = s1->srv.cpu_s - s0->srv.cpu_s;
	/* Under a --profile (overload) a refused post is the server pushing
	 * back, not an error; it is reported as refused either way. */
	errors = bench_sum(b, C_SETUP_FAILED) + bench_sum(b, C_DISCONNECTS) + bench_sum(b, C_POST_ERRORS) +
		 (c->profile.n ? 0 : bench_sum(b, C_POSTS_REFUSED)) + bench_sum(b, C_MISROUTED) + bench_sum(b, C_BAD_DELIVERY) +
		 bench_sum(b, C_OTHER_ERRORS) + bench_sum(b, C_CONN_ERRORS) + bench_sum(b, C_HIST_ERRORS);

	kv_s(&kv, "scenario", c->mode == MODE_FANOUT ? "fanout" : c->mode == MODE_CONNECT ?
	     "connect" : c->mode == MODE_IDLE ? "idle" : "history");
	if (c->mode == MODE_FANOUT) {
		uint64_t exp = bench_sum(b, C_EXPECTED), del = bench_sum(b, C_DELIVERED);
		uint64_t dwin = bench_sum(b, C_DELIVERED_WIN), ewin = bench_sum(b, C_ECHO_WIN);

		missing = exp > del ? exp - del : 0;
		lagging = c->rate > 0 && ms(hist_quantile(&lag, 0.99)) > c->lag_threshold_ms;
		kv_u(&kv, "rooms", c->rooms);
		kv_u(&kv, "members", c->members);
		kv_u(&kv, "size", c->size);
		kv_u(&kv, "threads", c->nthreads);
		kv_f(&kv, "duration_s", win, 2);
		kv_f(&kv, "offered_posts_per_s", c->rate, 1);
		kv_f(&kv, "offered_deliv_per_s", c->rate * c->members, 0);
		kv_f(&kv, "posts_per_s", lag.count / win, 1);
		kv_f(&kv, "delivered_per_s", dwin / win, 0);
		kv_f(&kv, "delivered_others_per_s", (dwin - ewin) / win, 0);
		latencies(&kv, &lat, "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms");
		if (c->ndst > 1) {
			/* Same node as the author, and across nodes, side by side. */
			kv_f(&kv, "local_p50_ms", ms(hist_quantile(&lat_local, 0.50)), 3);
			kv_f(&kv, "local_p99_ms", ms(hist_quantile(&lat_local, 0.99)), 3);
			kv_f(&kv, "remote_p50_ms", ms(hist_quantile(&lat_remote, 0.50)), 3);
			kv_f(&kv, "remote_p99_ms", ms(hist_quantile(&lat_remote, 0.99)), 3);
		}
		kv_f(&kv, "ack_p50_ms", ms(hist_quantile(&ack, 0.50)), 3);
		kv_f(&kv, "ack_p99_ms", ms(hist_quantile(&ack, 0.99)), 3);
		kv_f(&kv, "lag_p99_ms", ms(hist_quantile(&lag, 0.99)), 3);
		kv_u(&kv, "posts_sent", bench_sum(b, C_POSTS_SENT));
		kv_u(&kv, "posts_ok", bench_sum(b, C_POSTS_OK));
		kv_u(&kv, "expected", exp);
		kv_u(&kv, "delivered", del);
		kv_u(&kv, "missing", missing);
		kv_u(&kv, "dup", bench_sum(b, C_DUP));
		kv_u(&kv, "refused", bench_sum(b, C_POSTS_REFUSED));
		kv_u(&kv, "throttled", bench_sum(b, C_THROTTLED));
		kv_u(&kv, "errors", errors);
		if (srv) {
			kv_f(&kv, "server_cpu_s", srv_cpu, 2);
			kv_f(&kv, "server_cpu_s_per_M", dwin ? srv_cpu / (dwin / 1e6) : 0, 2);
			kv_f(&kv, "server_cpu_s_per_M_others",
			     dwin > ewin ? srv_cpu / ((dwin - ewin) / 1e6) : 0, 2);
			kv_u(&kv, "server_rss_kb", s1->srv.rss_kb);
		}
		/* The generator's own CPU per delivery, all its threads. */
		kv_f(&kv, "gen_cpu_s_per_M", dwin ? (s1->proc_cpu - s0->proc_cpu) / (dwin / 1e6) : 0,
		     2);
		kv_s(&kv, "net", c->dpdk_port[0] != '\0' ? "dpdk" : "kernel");
		if (c->dpdk_port[0] != '\0') {
			kv_u(&kv, "net_rx_frames", bench_sum(b, C_NET_RX));
			kv_u(&kv, "net_tx_frames", bench_sum(b, C_NET_TX));
			kv_u(&kv, "net_retransmits", bench_sum(b, C_NET_RTX));
			kv_u(&kv, "net_retransmits_win", bench_sum(b, C_NET_RTX_WIN));
			kv_u(&kv, "net_naps", bench_sum(b, C_NET_NAPS));
			kv_u(&kv, "net_tx_drop", bench_sum(b, C_NET_TX_DROP));
			kv_u(&kv, "net_tx_refused", bench_sum(b, C_NET_TX_REFUSED));
			kv_u(&kv, "net_polls", bench_sum(b, C_NET_POLLS));
		}
	} else if (c->mode == MODE_CONNECT) {
		uint64_t h = bench_sum(b, C_HANDSHAKES_WIN), r = bench_sum(b, C_REGISTERS_WIN);

		kv_u(&kv, "clients", c->clients);
		kv_u(&kv, "regs_per_conn", c->regs_per_conn);
		kv_u(&kv, "threads", c->nthreads);
		kv_f(&kv, "duration_s", win, 2);
		kv_f(&kv, "handshakes_per_s", h / win, 0);
		kv_f(&kv, "registers_per_s", r / win, 0);
		kv_u(&kv, "handshakes", bench_sum(b, C_HANDSHAKES));
		kv_u(&kv, "registers", bench_sum(b, C_REGISTERS));
		kv_u(&kv, "errors", errors);
		if (srv) {
			kv_f(&kv, "server_cpu_s", srv_cpu, 2);
			kv_f(&kv, "server_cpu_ms_per_op", (c->regs_per_conn ? r : h) ?
			     srv_cpu * 1e3 / (double)(c->regs_per_conn ? r : h) : 0, 4);
			kv_u(&kv, "server_rss_kb", s1->srv.rss_kb);
		}
	} else if (c->mode == MODE_IDLE) {
		uint64_t joined = bench_sum(b, C_JOINED);

		kv_u(&kv, "conns", b->total);
		kv_u(&kv, "rooms", c->rooms);
		kv_u(&kv, "members", c->members);
		kv_u(&kv, "joined", joined);
		kv_u(&kv, "lost", bench_sum(b, C_DISCONNECTS));
		kv_u(&kv, "errors", errors);
		kv_f(&kv, "duration_s", win, 2);
		if (srv && base != NULL) {
			double per = joined ? ((double)s1->srv.rss_kb - (double)base->rss_kb) *
				     1024.0 / (double)joined : 0;

			kv_u(&kv, "server_rss_base_kb", base->rss_kb);
			kv_u(&kv, "server_rss_kb", s1->srv.rss_kb);
			kv_u(&kv, "server_hwm_kb", s1->srv.hwm_kb);
			kv_f(&kv, "server_bytes_per_conn", per, 0);
			kv_f(&kv, "server_cpu_idle_s", srv_cpu, 2);
		}
	} else {
		uint64_t r = bench_sum(b, C_HIST_REPLIES_WIN), all = bench_sum(b, C_HIST_REPLIES);

		kv_u(&kv, "clients", b->total);
		kv_u(&kv, "cnt", c->hist_cnt);
		kv_u(&kv, "threads", c->nthreads);
		kv_f(&kv, "duration_s", win, 2);
		kv_f(&kv, "requests_per_s", r / win, 0);
		latencies(&kv, &hlat, "p50_ms", "p90_ms", "p99_ms", NULL, "max_ms");
		kv_f(&kv, "msgs_per_reply", all ? (double)bench_sum(b, C_HIST_MSGS) / (double)all : 0, 1);
		kv_u(&kv, "requests", all);
		kv_u(&kv, "errors", errors);
		if (srv) {
			kv_f(&kv, "server_cpu_s", srv_cpu, 2);
			kv_f(&kv, "server_cpu_ms_per_req", r ? srv_cpu * 1e3 / (double)r : 0, 4);
			kv_u(&kv, "server_rss_kb", s1->srv.rss_kb);
		}
	}
	/* Everything else on the machine, in CPUs: other tenants' noise. */
	other = (s1->sys_busy - s0->sys_busy) - (s1->proc_cpu - s0->proc_cpu) - (srv ? srv_cpu : 0);
	other = other > 0 ? other / win : 0;
	kv_f(&kv, "gen_cpu", busy, 2);
	kv_f(&kv, "other_cpu", other, 2);
	kv_f(&kv, "gen_stall_max_ms", ms(busy_max > oversleep_max ? busy_max : oversleep_max), 1);
	/* User-space mode: retransmissions inside the window (the sign-in
	 * before it may lose SYNs to full rings) on a link that loses nothing mean a
	 * side stalled (a full ring dropped frames, or timers fired while a
	 * process waited for a CPU): not the steady state being measured. */
	if (c->dpdk_port[0] != '\0' && bench_sum(b, C_NET_TX_WIN) > 0 &&
	    bench_sum(b, C_NET_RTX_WIN) * 100 > bench_sum(b, C_NET_TX_WIN))
		stalled = true;
	kv_u(&kv, "gen_bottleneck", busy >= 0.9 || lagging || stalled || skewed);

	if (busy >= 0.9)
		fprintf(stderr, "parley-bench: WARNING: the generator was the bottleneck: a worker "
			"was busy %.0f%% of the window; give it more CPUs (-c) or offer less\n",
			busy * 100);
	if (lagging)
		fprintf(stderr, "parley-bench: WARNING: posts left late (send lag p99 %.1f ms > "
			"%.1f ms): the generator did not keep the offered schedule%s\n",
			ms(hist_quantile(&lag, 0.99)), c->lag_threshold_ms,
			busy < 0.5 && other > 0.25 ? ", though it was mostly idle: other processes "
			"took its CPU (see other_cpu)" : "");
	if (skewed)
		fprintf(stderr, "parley-bench: WARNING: the samples span %.2f s from %.2f s into a "
			"%.2f s window: the main thread did not get its CPU in time (the workers "
			"held it); the per-delivery figures are not valid\n", win,
			(double)((int64_t)s0->t - (int64_t)ws) / 1e9, want);
	if (stalled)
		fprintf(stderr, "parley-bench: WARNING: TCP retransmitted %.1f%% of the generator's window "
			"frames over a lossless link: a side was starved (a full ring dropped frames, "
			"or timers fired while it waited for a CPU; see other_cpu); not a steady state\n",
			100.0 * (double)bench_sum(b, C_NET_RTX_WIN) / (double)bench_sum(b, C_NET_TX_WIN));
	if (other > 0.25)
		fprintf(stderr, "parley-bench: note: other processes used %.2f CPUs during the "
			"window: the machine was shared, expect noise\n", other);
	if (c->mode == MODE_FANOUT && bench_sum(b, C_THROTTLED) > 0)
		fprintf(stderr, "parley-bench: note: %" PRIu64 " due posts found every client "
			"waiting for acknowledgements (server push-back)\n", bench_sum(b, C_THROTTLED));
	if (c->server_pid > 0 && !srv)
		fprintf(stderr, "parley-bench: WARNING: could not read /proc/%d: did the server "
			"exit?\n", (int)c->server_pid);
	if (errors > 0 || missing > 0 || bench_sum(b, C_DUP) > 0) {
		for (unsigned i = 0; i < c->nthreads; i++)
			if (b->w[i].first_error[0] != '\0') {
				fprintf(stderr, "parley-bench: first error: %s\n",
					b->w[i].first_error);
				break;
			}
		rc = 1;
	}
	fflush(stderr);
	kv_print(&kv, c);
	fflush(stdout);
	return rc;
}
