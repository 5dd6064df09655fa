/* The etcd client (control/etcd.c) against a real etcd (tests/array/etcdfix.h):
 * keys, prefixes, create-if-absent, leases, failover between endpoints and
 * the errors it gives when etcd cannot be reached. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/cmark.h"
#include "control/etcd.h"
#include "storage/export.h"
#include "tests/array/etcdfix.h"

static struct etcdfix fix;
static struct etcd *cl;
static char err[2048];

static void
setup(void)
{
	cr_assert(etcdfix_start(&fix, err, sizeof(err)) == 0, "%s", err);
	cl = etcd_open(fix.url, 2000, err, sizeof(err));
	cr_assert(cl != NULL, "%s", err);
}

static void
teardown(void)
{
	etcd_close(cl);
	cl = NULL;
	etcdfix_stop(&fix);
}

/* etcdctl compact <rev> against the fixture. */
static int
run_compact(int64_t rev)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 etcdctl --endpoints %s compact %lld "
		 ">/dev/null 2>&1", fix.url, (long long)rev);
	return system(cmd);
}

TestSuite(etcd, .init = setup, .fini = teardown, .timeout = 60);

Test(etcd, put_get_delete)
{
	struct etcd_kvs kvs;
	int64_t n;
	static const char bin[] = { 'a', 0, (char)0xff, 'b' };

	cr_assert(etcd_put(cl, "/t/a", "one", 3, 0, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_put(cl, "/t/b", bin, sizeof(bin), 0, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_put(cl, "/u", "x", 1, 0, err, sizeof(err)) == 0, "%s", err);

	cr_assert(etcd_get(cl, "/t/a", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 1);
	cr_assert_str_eq(kvs.kv[0].key, "/t/a");
	cr_assert_str_eq(kvs.kv[0].value, "one");
	cr_assert_eq(kvs.kv[0].version, 1);
	cr_assert_gt(kvs.kv[0].create_revision, 0);
	cr_assert_eq(kvs.kv[0].lease, 0);
	cr_assert_geq(kvs.revision, kvs.kv[0].mod_revision);
	etcd_kvs_free(&kvs);

	/* A prefix: both /t/ keys, sorted, not /u; binary values intact. */
	cr_assert(etcd_get(cl, "/t/", true, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 2);
	cr_assert_str_eq(kvs.kv[0].key, "/t/a");
	cr_assert_str_eq(kvs.kv[1].key, "/t/b");
	cr_assert_eq(kvs.kv[1].value_len, sizeof(bin));
	cr_assert(memcmp(kvs.kv[1].value, bin, sizeof(bin)) == 0);
	etcd_kvs_free(&kvs);

	/* Absent: no keys, not an error. */
	cr_assert(etcd_get(cl, "/none", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 0);
	etcd_kvs_free(&kvs);

	cr_assert(etcd_delete(cl, "/t/", true, &n, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(n, 2);
	cr_assert(etcd_delete(cl, "/u", false, &n, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(n, 1);
	cr_assert(etcd_get(cl, "/", true, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 0);
	etcd_kvs_free(&kvs);
}

Test(etcd, create_if_absent)
{
	struct etcd_kv other;

	cr_assert(etcd_create(cl, "/n/1", "first", 5, 0, &other, err, sizeof(err)) == 0, "%s",
		  err);
	cr_assert_null(other.key);
	/* The second creator is refused and told what is there. */
	cr_assert_eq(etcd_create(cl, "/n/1", "second", 6, 0, &other, err, sizeof(err)), -EEXIST);
	cr_assert_str_eq(other.key, "/n/1");
	cr_assert_str_eq(other.value, "first");
	etcd_kv_free(&other);
	/* Deleted, it can be created again. */
	cr_assert(etcd_delete(cl, "/n/1", false, NULL, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_create(cl, "/n/1", "third", 5, 0, NULL, err, sizeof(err)) == 0, "%s", err);
}

/* Read-modify-write on mod_revision: the second writer of one version
 * is refused and must read again; a delete likewise. */
Test(etcd, compare_and_swap)
{
	struct etcd_kvs kvs;
	int64_t rev, rev2;

	cr_assert(etcd_cas(cl, "/c/1", 0, "a", 1, 0, &rev, err, sizeof(err)) == 0, "%s", err);
	cr_assert_gt(rev, 0);
	/* Created already: "absent" no longer holds. */
	cr_assert_eq(etcd_cas(cl, "/c/1", 0, "b", 1, 0, NULL, err, sizeof(err)), -ECANCELED);
	cr_assert(etcd_cas(cl, "/c/1", rev, "b", 1, 0, &rev2, err, sizeof(err)) == 0, "%s", err);
	cr_assert_gt(rev2, rev);
	/* A writer that read <rev> lost the race. */
	cr_assert_eq(etcd_cas(cl, "/c/1", rev, "c", 1, 0, NULL, err, sizeof(err)), -ECANCELED);
	cr_assert(strstr(err, "changed") != NULL, "%s", err);
	cr_assert(etcd_get(cl, "/c/1", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_str_eq(kvs.kv[0].value, "b");
	cr_assert_eq(kvs.kv[0].mod_revision, rev2);
	etcd_kvs_free(&kvs);
	cr_assert_eq(etcd_cas(cl, "/c/1", rev, NULL, 0, 0, NULL, err, sizeof(err)), -ECANCELED);
	cr_assert(etcd_cas(cl, "/c/1", rev2, NULL, 0, 0, NULL, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_get(cl, "/c/1", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 0);
	etcd_kvs_free(&kvs);
}

/* A transaction of several keys: all of it or nothing. */
Test(etcd, transaction)
{
	struct etcd_kvs kvs;
	int64_t rev;
	json_t *cmp, *ops;

	cr_assert(etcd_put(cl, "/t2/a", "1", 1, 0, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_get(cl, "/t2/a", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	rev = kvs.kv[0].mod_revision;
	etcd_kvs_free(&kvs);
	/* /t2/b must be absent, and is not: nothing runs. */
	cr_assert(etcd_put(cl, "/t2/b", "x", 1, 0, err, sizeof(err)) == 0, "%s", err);
	cmp = json_pack("[o, o]", etcd_cmp_mod("/t2/a", rev), etcd_cmp_mod("/t2/b", 0));
	ops = json_pack("[o, o]", etcd_op_put("/t2/a", "2", 1), etcd_op_delete("/t2/b"));
	cr_assert_eq(etcd_txn(cl, cmp, ops, NULL, err, sizeof(err)), -ECANCELED);
	cr_assert(etcd_get(cl, "/t2/", true, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 2);
	cr_assert_str_eq(kvs.kv[0].value, "1");
	etcd_kvs_free(&kvs);
	/* Both hold: both operations. */
	cr_assert(etcd_delete(cl, "/t2/b", false, NULL, err, sizeof(err)) == 0, "%s", err);
	cmp = json_pack("[o, o]", etcd_cmp_mod("/t2/a", rev), etcd_cmp_mod("/t2/b", 0));
	ops = json_pack("[o, o]", etcd_op_put("/t2/a", "2", 1), etcd_op_put("/t2/c", "3", 1));
	cr_assert(etcd_txn(cl, cmp, ops, &rev, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_get(cl, "/t2/", true, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 2);
	cr_assert_str_eq(kvs.kv[0].value, "2");
	cr_assert_eq(kvs.kv[0].mod_revision, rev);
	cr_assert_str_eq(kvs.kv[1].key, "/t2/c");
	etcd_kvs_free(&kvs);
}

/* What a watch saw, in order. */
struct seen {
	char	what[16][32];
	int	n;
	int	stop_after;
};

static int
on_watch(void *arg, const struct etcd_event *ev, size_t n)
{
	struct seen *s = arg;

	for (size_t i = 0; i < n && s->n < 16; i++)
		snprintf(s->what[s->n++], sizeof(s->what[0]), "%s %s=%s",
			 ev[i].deleted ? "del" : "put", ev[i].kv.key, ev[i].kv.value);
	return s->n >= s->stop_after ? 1 : 0;
}

static _Atomic bool stop_flag;

static void *
stopper(void *arg)
{
	usleep(300000);
	atomic_store(&stop_flag, true);
	return NULL;
}

/* A watch from a past revision replays what happened under the prefix,
 * in order, and nothing else; a stop flag ends it; a compacted start
 * revision is -ERANGE with the compaction revision. */
Test(etcd, watch)
{
	struct seen s = { .stop_after = 3 };
	struct etcd *w = etcd_open(fix.url, 2000, err, sizeof(err));
	struct etcd_kvs kvs;
	int64_t start, compact;
	pthread_t t;

	cr_assert_not_null(w, "%s", err);
	cr_assert(etcd_get(cl, "/w/", true, &kvs, err, sizeof(err)) == 0, "%s", err);
	start = kvs.revision + 1;
	etcd_kvs_free(&kvs);
	cr_assert(etcd_put(cl, "/w/a", "1", 1, 0, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_put(cl, "/x", "no", 2, 0, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_put(cl, "/w/b", "2", 1, 0, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_delete(cl, "/w/a", false, NULL, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(etcd_watch(w, "/w/", start, on_watch, &s, NULL, 5000, NULL, err,
				sizeof(err)), 1, "%s", err);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.what[0], "put /w/a=1");
	cr_assert_str_eq(s.what[1], "put /w/b=2");
	cr_assert_str_eq(s.what[2], "del /w/a=");

	/* Nothing new: the stop flag ends it. */
	s.n = 0;
	atomic_store(&stop_flag, false);
	pthread_create(&t, NULL, stopper, NULL);
	cr_assert_eq(etcd_watch(w, "/w/", start + 10, on_watch, &s, &stop_flag, 10000, NULL, err,
				sizeof(err)), -ECANCELED);
	pthread_join(t, NULL);
	cr_assert_eq(s.n, 0);

	/* Compacted history. */
	cr_assert(etcd_get(cl, "/w/", true, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(run_compact(kvs.revision), 0);
	etcd_kvs_free(&kvs);
	cr_assert_eq(etcd_watch(w, "/w/", start, on_watch, &s, NULL, 5000, &compact, err,
				sizeof(err)), -ERANGE, "%s", err);
	cr_assert_gt(compact, start);
	etcd_close(w);
}

Test(etcd, leases)
{
	struct etcd_kvs kvs;
	int64_t id, ttl, id2;

	cr_assert(etcd_lease_grant(cl, 2, &id, &ttl, err, sizeof(err)) == 0, "%s", err);
	cr_assert_neq(id, 0);
	cr_assert_eq(ttl, 2);
	cr_assert(etcd_create(cl, "/l/a", "v", 1, id, NULL, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_get(cl, "/l/a", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 1);
	cr_assert_eq(kvs.kv[0].lease, id);
	etcd_kvs_free(&kvs);

	/* Kept alive past its TTL, the key stays. */
	for (int i = 0; i < 4; i++) {
		usleep(700000);
		cr_assert(etcd_lease_keepalive(cl, id, &ttl, err, sizeof(err)) == 0, "%s", err);
		cr_assert_eq(ttl, 2);
	}
	cr_assert(etcd_get(cl, "/l/a", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 1);
	etcd_kvs_free(&kvs);

	/* Revoked: the key goes at once; the lease is unknown afterwards. */
	cr_assert(etcd_lease_revoke(cl, id, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_get(cl, "/l/a", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 0);
	etcd_kvs_free(&kvs);
	cr_assert_eq(etcd_lease_keepalive(cl, id, NULL, err, sizeof(err)), -ENOENT);
	cr_assert_eq(etcd_lease_revoke(cl, id, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "not found") != NULL, "%s", err);
	/* A put under a lease that is gone is refused. */
	cr_assert_eq(etcd_put(cl, "/l/b", "v", 1, id, err, sizeof(err)), -ENOENT);

	/* Left alone, a lease expires and takes its keys. */
	cr_assert(etcd_lease_grant(cl, 2, &id2, NULL, err, sizeof(err)) == 0, "%s", err);
	cr_assert(etcd_put(cl, "/l/c", "v", 1, id2, err, sizeof(err)) == 0, "%s", err);
	sleep(4);
	cr_assert(etcd_get(cl, "/l/c", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 0);
	etcd_kvs_free(&kvs);
	cr_assert_eq(etcd_lease_keepalive(cl, id2, NULL, err, sizeof(err)), -ENOENT);
}

/* A dead first endpoint: the request goes to the next, which is kept. */
Test(etcd, failover)
{
	char list[256];
	struct etcd *two;
	struct etcd_kvs kvs;

	snprintf(list, sizeof(list), "http://127.0.0.1:%u , %s/", etcdfix_free_port(), fix.url);
	two = etcd_open(list, 1000, err, sizeof(err));
	cr_assert(two != NULL, "%s", err);
	cr_assert(etcd_put(two, "/f", "1", 1, 0, err, sizeof(err)) == 0, "%s", err);
	cr_assert_str_eq(etcd_endpoint(two), fix.url);
	cr_assert(etcd_get(two, "/f", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	cr_assert_eq(kvs.n, 1);
	etcd_kvs_free(&kvs);
	etcd_close(two);
}

/* Nothing listening: -EHOSTUNREACH, naming every endpoint and why. */
Test(etcd, unreachable)
{
	char list[256];
	struct etcd *none;
	struct etcd_kvs kvs;
	uint16_t p1 = etcdfix_free_port(), p2 = etcdfix_free_port();

	snprintf(list, sizeof(list), "http://127.0.0.1:%u,http://127.0.0.1:%u", p1, p2);
	none = etcd_open(list, 500, err, sizeof(err));
	cr_assert(none != NULL, "%s", err);
	cr_assert_eq(etcd_get(none, "/x", false, &kvs, err, sizeof(err)), -EHOSTUNREACH);
	cr_assert(strstr(err, "etcd unreachable") != NULL, "%s", err);
	snprintf(list, sizeof(list), "http://127.0.0.1:%u", p1);
	cr_assert(strstr(err, list) != NULL, "%s", err);
	snprintf(list, sizeof(list), "http://127.0.0.1:%u", p2);
	cr_assert(strstr(err, list) != NULL, "%s", err);
	cr_assert(strstr(err, "onnect") != NULL, "%s", err);
	etcd_close(none);
}

/* An etcd that stops answering (SIGSTOP): the request times out within
 * the client's timeout, and works again once etcd continues. */
Test(etcd, timeout)
{
	struct etcd *quick = etcd_open(fix.url, 300, err, sizeof(err));
	struct etcd_kvs kvs;
	struct timespec t0, t1;
	long ms;

	cr_assert(quick != NULL, "%s", err);
	cr_assert(etcd_get(quick, "/x", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	etcd_kvs_free(&kvs);
	cr_assert(etcdfix_signal(&fix, SIGSTOP) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(etcd_get(quick, "/x", false, &kvs, err, sizeof(err)), -EHOSTUNREACH);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	cr_assert_lt(ms, 2000, "took %ld ms", ms);
	cr_assert(strstr(err, "imeout") != NULL || strstr(err, "imed out") != NULL, "%s", err);
	cr_assert(etcdfix_signal(&fix, SIGCONT) == 0);
	cr_assert(etcd_get(quick, "/x", false, &kvs, err, sizeof(err)) == 0, "%s", err);
	etcd_kvs_free(&kvs);
	etcd_close(quick);
}

/* Bad endpoint lists are refused when the client is made. */
Test(etcd, bad_endpoints)
{
	cr_assert_null(etcd_open("", 1000, err, sizeof(err)));
	cr_assert(strstr(err, "no endpoint") != NULL, "%s", err);
	cr_assert_null(etcd_open("127.0.0.1:2379", 1000, err, sizeof(err)));
	cr_assert(strstr(err, "not an http") != NULL, "%s", err);
	cr_assert_null(etcd_open("http://a:1,,http://b:2", 1000, err, sizeof(err)));
	cr_assert(strstr(err, "empty") != NULL, "%s", err);
}

/* Compliance export marks (control/cmark.h) against etcd: a mark moves
 * only up, whoever writes it; a record at or below it changes nothing. */
Test(etcd, cmark_moves_only_up)
{
	static const uint8_t room[16] = { 0x0b, 0xad, 0xc0, 0xde, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0,
					  0, 0, 1 };
	static const char id[] = "0badc0de-0000-4000-8000-000000000001";
	struct cmark *a = cmark_open(fix.url, "/t", 1, 2000, err, sizeof(err));
	struct cmark *b = cmark_open(fix.url, "/t", 2, 2000, err, sizeof(err));
	struct etcd_kvs kvs = { 0 };
	struct cmark_val mv = { 0 };
	uint64_t seq = 99, cut = 0;

	cr_assert(a != NULL && b != NULL, "%s", err);
	cr_assert_eq(cmark_read(a, id, &seq), 0);
	cr_assert_eq(seq, 0, "no mark yet reads as 0");
	cr_assert_eq(cmark_record(a, room, 10), 0);
	cr_assert_eq(cmark_record(a, room, 10), 0);	/* a batch written again */
	cr_assert_eq(cmark_record(b, room, 25), 0);
	cr_assert_eq(cmark_record(a, room, 12), 0);	/* below: nothing */
	cr_assert_eq(cmark_read(b, id, &seq), 0);
	cr_assert_eq(seq, 25);
	cr_assert_eq(etcd_get(cl, "/t/exported/0badc0de-0000-4000-8000-000000000001", false, &kvs,
			      err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(kvs.n, 1);
	cr_assert_eq(kvs.kv[0].lease, 0, "a mark must outlive its writer");
	cr_assert_eq(cmark_parse(kvs.kv[0].value, kvs.kv[0].value_len, &mv), 0);
	cr_assert_eq(mv.node, 2);
	cr_assert_eq(mv.seq, 25);
	etcd_kvs_free(&kvs);
	/* Only the room's home moves the mark (none: a room deleted). */
	{
		static const char hkey[] = "/t/homes/0badc0de-0000-4000-8000-000000000001";
		char v[128];
		uint64_t mark = 0;

		cr_assert_eq(cmark_home(a, room, &mark, &cut), -EAGAIN);
		cr_assert_eq(mark, 25);
		cr_assert_eq(cut, 0);
		snprintf(v, sizeof(v), "{\"node\":3,\"room\":\"%s\"}", id);
		cr_assert_eq(etcd_put(cl, hkey, v, strlen(v), 0, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(cmark_home(a, room, &mark, &cut), EXPORT_HOME_OTHER);
		cr_assert_eq(cmark_record(a, room, 40), -ESTALE);
		cr_assert_eq(cmark_cut(a, room, 40), -ESTALE, "only the home sets a cut");
		cr_assert_eq(cmark_record(a, room, 20), 0, "at or below the mark: nothing to do");
		snprintf(v, sizeof(v), "{\"node\":1,\"room\":\"%s\"}", id);
		cr_assert_eq(etcd_put(cl, hkey, v, strlen(v), 0, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(cmark_home(a, room, &mark, &cut), EXPORT_HOME_HERE);
		cr_assert_eq(cmark_record(a, room, 40), 0);
		cr_assert_eq(cmark_read(b, id, &seq), 0);
		cr_assert_eq(seq, 40);
		/* A cut: set above the seq, kept by a record below it, cleared by
		 * one that reaches it, replaced by a newer one. */
		cr_assert_eq(cmark_cut(a, room, 40), 0, "at the seq: nothing");
		cr_assert_eq(cmark_home(a, room, &mark, &cut), EXPORT_HOME_HERE);
		cr_assert(mark == 40 && cut == 0, "mark %lu cut %lu", mark, cut);
		cr_assert_eq(cmark_cut(a, room, 55), 0);
		cr_assert_eq(cmark_home(b, room, &mark, &cut), EXPORT_HOME_OTHER);
		cr_assert(mark == 40 && cut == 55, "mark %lu cut %lu", mark, cut);
		cr_assert_eq(cmark_record(a, room, 48), 0);
		cr_assert_eq(cmark_home(b, room, &mark, &cut), EXPORT_HOME_OTHER);
		cr_assert(mark == 48 && cut == 55, "mark %lu cut %lu", mark, cut);
		cr_assert_eq(cmark_cut(a, room, 52), 0);
		cr_assert_eq(cmark_home(b, room, &mark, &cut), EXPORT_HOME_OTHER);
		cr_assert(mark == 48 && cut == 52, "a newer cut replaces: mark %lu cut %lu", mark,
			  cut);
		cr_assert_eq(cmark_record(a, room, 52), 0);
		cr_assert_eq(cmark_home(b, room, &mark, &cut), EXPORT_HOME_OTHER);
		cr_assert(mark == 52 && cut == 0, "mark %lu cut %lu", mark, cut);
		cr_assert_eq(cmark_read(b, id, &seq), 0);
		cr_assert_eq(seq, 52);
	}
	/* Garbage under the key is reported, never overwritten blindly. */
	cr_assert_eq(etcd_put(cl, "/t/exported/0badc0de-0000-4000-8000-000000000001", "x", 1, 0, err,
			      sizeof(err)), 0);
	cr_assert_eq(cmark_record(a, room, 60), -EPROTO);
	cr_assert_eq(cmark_cut(a, room, 70), -EPROTO);
	cr_assert_eq(cmark_read(a, id, &seq), -EPROTO);
	cmark_close(a);
	cmark_close(b);
}
