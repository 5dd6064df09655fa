/* The compliance exporter on one node: XML against tests/data/compliance.xsd,
 * fields of every event type, file naming and per-room files, exactly once
 * across a crash between rename and checkpoint, corrupt records, a missing,
 * unwritable or full output directory, attachments (copied before the XML,
 * missing source), the retry thread, the storage thread as the writer, and
 * the per-room export marks. In a node array: test_export_array.c; the
 * fixture and helpers both use: exportkit.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include "storage/acked.h"
#include "storage/catalog.h"
#include "storage/commit.h"
#include "storage/db.h"
#include "storage/export.h"
#include "storage/wal.h"
#include "exportkit.h"

/* ---- pure helpers ---- */

Test(export, time_forms_match_the_documented_sample)
{
	char iso[40];
	uint64_t ticks;

	/* xccos.md §d.2: 1212610540953 = 2008-06-04T20:15:40.953..Z; the sample's
	 * extra sub-millisecond digits are not in since1970, so they are 0 here. */
	cr_assert_eq(export_time_forms(1212610540953ull, iso, sizeof(iso), &ticks), 0);
	cr_assert_str_eq(iso, "2008-06-04T20:15:40.9530000Z");
	cr_assert_eq(ticks, 633482073409530000ull);
	cr_assert_eq(export_time_forms(0, iso, sizeof(iso), &ticks), 0);
	cr_assert_str_eq(iso, "1970-01-01T00:00:00.0000000Z");
	cr_assert_eq(ticks, EK_TICKS_1970);
	cr_assert_eq(export_time_forms(253402300799999ull, iso, sizeof(iso), &ticks), 0);
	cr_assert_str_eq(iso, "9999-12-31T23:59:59.9990000Z");
	cr_assert_eq(export_time_forms(253402300800000ull, iso, sizeof(iso), &ticks), -EOVERFLOW);
}

Test(export, user_id_is_stable_and_31_bit)
{
	uint32_t a = export_user_id("sip:alice@example.com", 21);

	cr_assert_eq(export_user_id("alice@example.com", 17), a);
	cr_assert_eq(export_user_id("SIP:Alice@Example.COM", 21), a);
	cr_assert_eq(export_user_id("sips:alice@example.com;transport=tls", 36), a);
	cr_assert_neq(export_user_id("sip:bob@example.com", 19), a);
	cr_assert(a > 0 && a <= 0x7fffffffu);
	cr_assert(export_user_id("", 0) > 0);
}

Test(export, create_rejects_bad_config)
{
	struct export_config cfg = { .output_dir = ek_out, .files_dir = ek_files };
	int err = 0;

	cfg.sender_name_attr = "username";
	cr_assert_null(export_create(ek_db, &cfg, &err));
	cr_assert_eq(err, -EINVAL);
	cfg.sender_name_attr = NULL;
	cfg.adapter = "../x";
	cr_assert_null(export_create(ek_db, &cfg, &err));
	cfg.adapter = NULL;
	cfg.files_dir = NULL;
	cr_assert_null(export_create(ek_db, &cfg, &err));
	cfg.files_dir = ek_files;
	cfg.retry_min_ms = 10;
	cfg.retry_max_ms = 5;
	cr_assert_null(export_create(ek_db, &cfg, &err));
}

/* ---- the format ---- */

Test(export, every_event_type_with_its_fields)
{
	/* Characters XML must escape, and some that XML 1.0 cannot carry. */
	static const char nasty[] = "<a & b> \"q\" 'x'\n\tz\r \x01 \xff \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	static const char back[] = "<a & b> \"q\" 'x'\n\tz\r \xef\xbf\xbd \xef\xbf\xbd \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	struct export_status st;
	struct ek_parsed p;
	char name[200];
	bool types[WAL_EV_MAX] = { false };

	ek_make_rooms();
	ek_log_mix(24);
	ek_log_ev(WAL_EV_CHAT, 1, 1, nasty, sizeof(nasty) - 1, back);
	ek_log_text(WAL_EV_BACKCHAT, 2, 2, "search: \"budget\" & <plans>");
	ek_flush_events();
	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), 26);

	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 1);
	ek_file_name(name, sizeof(name), 1, 26, NULL);
	cr_assert_str_eq(p.names[0], name);
	ek_assert_exactly_once(&p, 1, 26, false);
	for (size_t i = 0; i < p.n; i++)
		for (int t = 1; t < WAL_EV_MAX; t++)
			if (strcmp(p.m[i].type, wal_event_name((enum wal_event)t)) == 0)
				types[t] = true;
	for (int t = 1; t < WAL_EV_MAX; t++)
		cr_assert(types[t], "%s missing", wal_event_name((enum wal_event)t));
	/* One conversation per room: 3 distinct channels, each one contiguous. */
	for (size_t i = 1; i < p.n; i++)
		if (strcmp(p.m[i].room_uri, p.m[i - 1].room_uri) != 0)
			for (size_t k = i + 1; k < p.n; k++)
				cr_assert_str_neq(p.m[k].room_uri, p.m[i - 1].room_uri);
	ek_parsed_free(&p);

	cr_assert_eq(ek_checkpoint(), 27);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.lag_events, 0);
	cr_assert_eq(st.files_written, 1);
	cr_assert_eq(st.events_exported, 26);
	cr_assert_eq(st.consecutive_failures, 0);
	cr_assert_neq(st.last_success_ms, 0);
	/* Exported records are trimmed. */
	{
		int err;
		struct wal_iter *it = wal_iter_open(ek_db, 1, &err);
		struct wal_rec rec;

		cr_assert_eq(wal_iter_next(it, &rec), 0);
		wal_iter_close(it);
	}
	/* Nothing new: no file, no error. */
	cr_assert_eq(export_run_once(ek_ex), 0);
	cr_assert_eq(ek_count_entries(ek_out, "parley_"), 1);
}

Test(export, sender_name_attribute_switch)
{
	ek_make_rooms();
	ek_log_mix(8);
	ek_new_exporter(false, "UserName", 0);
	ek_export_expect(8, ek_out, 1, 8, true);
}

Test(export, per_room_files)
{
	struct ek_parsed p;
	char name[200];

	ek_make_rooms();
	ek_log_mix(30);
	ek_new_exporter(true, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), 30);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, EK_NROOMS);
	for (int r = 0; r < EK_NROOMS; r++) {
		bool found = false;

		ek_file_name(name, sizeof(name), 1, 30, ek_rooms[r].id);
		for (size_t i = 0; i < p.nfiles; i++)
			found |= strcmp(p.names[i], name) == 0;
		cr_assert(found, "%s missing", name);
	}
	for (size_t i = 0; i < p.n; i++) {	/* each file holds only its room */
		const struct ek_room *t = &ek_rooms[ek_exps[ek_seq_of(&p.m[i]) - 1].room];

		cr_assert_not_null(strstr(p.m[i].file, t->id));
	}
	ek_assert_exactly_once(&p, 1, 30, false);
	ek_parsed_free(&p);
}

Test(export, batches_of_max_events_per_file)
{
	struct ek_parsed p;
	char name[200];

	ek_make_rooms();
	ek_log_mix(25);
	ek_new_exporter(false, NULL, 10);
	cr_assert_eq(export_run_once(ek_ex), 25);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 3);
	ek_file_name(name, sizeof(name), 1, 10, NULL);
	cr_assert_str_eq(p.names[0], name);
	ek_file_name(name, sizeof(name), 11, 20, NULL);
	cr_assert_str_eq(p.names[1], name);
	ek_file_name(name, sizeof(name), 21, 25, NULL);
	cr_assert_str_eq(p.names[2], name);
	ek_assert_exactly_once(&p, 1, 25, false);
	ek_parsed_free(&p);
}

/* ---- exactly once ---- */

Test(export, crash_between_rename_and_checkpoint_rewrites_the_same_files)
{
	struct ek_saved s;
	struct ek_parsed p;
	char *before[3], path[700];
	size_t blen[3];

	ek_make_rooms();
	ek_log_mix(20);
	ek_save_log(&s);
	ek_new_exporter(false, NULL, 8);
	cr_assert_eq(export_run_once(ek_ex), 20);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 3);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", ek_out, p.names[i]);
		before[i] = ek_slurp(path, &blen[i]);
	}
	ek_parsed_free(&p);

	ek_restore_log(&s);
	ek_log_mix(5);	/* events that arrive after the restart */
	/* A different batch size after the restart must not change the ranges. */
	ek_new_exporter(false, NULL, 100);
	cr_assert_eq(export_run_once(ek_ex), 25);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 4);
	for (int i = 0; i < 3; i++) {
		size_t len;
		char *now;

		snprintf(path, sizeof(path), "%s/%s", ek_out, p.names[i]);
		now = ek_slurp(path, &len);
		cr_assert(len == blen[i] && memcmp(now, before[i], len) == 0,
			  "%s rewritten with other bytes", p.names[i]);
		free(now);
		free(before[i]);
	}
	ek_assert_exactly_once(&p, 1, 25, false);
	ek_parsed_free(&p);
	cr_assert_eq(ek_checkpoint(), 26);
}

Test(export, crash_after_a_consumer_took_the_file_away)
{
	struct ek_saved s;
	struct ek_parsed p;
	char name[200], path[700], moved[700], *before, *now;
	size_t blen, nlen;

	ek_make_rooms();
	ek_log_mix(10);
	ek_save_log(&s);
	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), 10);
	ek_restore_log(&s);
	/* The archiver picked the file up before the exporter restarted. */
	ek_file_name(name, sizeof(name), 1, 10, NULL);
	snprintf(path, sizeof(path), "%s/%s", ek_out, name);
	snprintf(moved, sizeof(moved), "%s/archived.xml", ek_root);
	cr_assert_eq(rename(path, moved), 0);
	ek_log_mix(4);
	cr_assert_eq(export_run_once(ek_ex), 14);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 2);
	cr_assert_str_eq(p.names[0], name, "the same range again, under the same name");
	ek_assert_exactly_once(&p, 1, 14, false);
	ek_parsed_free(&p);
	before = ek_slurp(moved, &blen);
	now = ek_slurp(path, &nlen);
	cr_assert(blen == nlen && memcmp(before, now, blen) == 0);
	free(before);
	free(now);
}

Test(export, crash_in_the_middle_of_per_room_renames)
{
	struct ek_saved s;
	char name[200], path[700], real[700];

	ek_make_rooms();
	ek_log_mix(12);
	ek_save_log(&s);
	ek_new_exporter(true, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), 12);
	ek_restore_log(&s);
	/* The crash came after the first room's rename only. */
	ek_file_name(name, sizeof(name), 1, 12, ek_rooms[1].id);
	snprintf(path, sizeof(path), "%s/%s", ek_out, name);
	cr_assert_eq(unlink(path), 0);
	ek_file_name(name, sizeof(name), 1, 12, ek_rooms[2].id);	/* and one half-written */
	snprintf(real, sizeof(real), "%s/%s", ek_out, name);
	snprintf(path, sizeof(path), "%s/.tmp-%s", ek_out, name);
	cr_assert_eq(rename(real, path), 0);
	cr_assert_eq(truncate(path, 10), 0);
	ek_log_mix(3);
	ek_export_expect(15, ek_out, 1, 15, false);
	cr_assert_eq(ek_count_entries(ek_out, ".tmp-"), 0, "crashed temp files are removed");
}

Test(export, crash_then_restart_with_the_other_file_layout)
{
	struct ek_saved s;
	struct ek_parsed p;

	ek_make_rooms();
	ek_log_mix(12);
	ek_save_log(&s);
	ek_new_exporter(true, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), 12);
	ek_restore_log(&s);
	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), 12);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 1);
	ek_assert_exactly_once(&p, 1, 12, false);
	ek_parsed_free(&p);
}

/* ---- faults ---- */

Test(export, corrupt_record_stops_the_export_before_it)
{
	struct export_status st;
	struct ek_parsed p;
	char name[200], *v, *good;
	size_t len;

	ek_make_rooms();
	ek_log_mix(10);
	v = ek_raw_get(6, &len);
	good = malloc(len);
	memcpy(good, v, len);
	v[30] ^= 0x40;	/* inside the room id: the CRC catches it */
	ek_raw_put(6, v, len);
	rocksdb_free(v);

	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), -EBADMSG);
	cr_assert_eq(ek_checkpoint(), 6);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.last_err, -EBADMSG);
	cr_assert_eq(st.last_err_seq, 6);
	cr_assert_not_null(strstr(st.last_err_text, " 6 "), "%s", st.last_err_text);
	cr_assert_eq(st.lag_events, 5);
	cr_assert_eq(st.consecutive_failures, 1);
	cr_assert_eq(st.events_exported, 5);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 1);
	ek_file_name(name, sizeof(name), 1, 5, NULL);
	cr_assert_str_eq(p.names[0], name);
	ek_assert_exactly_once(&p, 1, 5, false);
	ek_parsed_free(&p);

	/* Again: the same error at once, nothing written. */
	cr_assert_eq(export_run_once(ek_ex), -EBADMSG);
	cr_assert_eq(ek_checkpoint(), 6);
	cr_assert_eq(ek_count_entries(ek_out, "parley_"), 1);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.consecutive_failures, 2);

	/* Repaired: the rest goes out, once. */
	ek_raw_put(6, good, len);
	free(good);
	ek_export_expect(5, ek_out, 1, 10, false);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.consecutive_failures, 0);
}

Test(export, torn_first_record_exports_nothing)
{
	struct export_status st;
	char *v;
	size_t len;

	ek_make_rooms();
	ek_log_mix(4);
	v = ek_raw_get(1, &len);
	ek_raw_put(1, v, len - 3);
	rocksdb_free(v);
	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), -ENODATA);
	cr_assert_eq(ek_checkpoint(), 1);
	cr_assert_eq(ek_count_entries(ek_out, "parley_"), 0);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.last_err_seq, 1);
	cr_assert_eq(st.lag_events, 4);
}

/* Root ignores permission bits, so "unwritable" is a path through a file. */
static void
fault_then_fix(const char *bad_dir, void (*fix)(void))
{
	struct export_config cfg = { .output_dir = bad_dir, .files_dir = ek_files };
	struct export_status st;
	int err;

	ek_make_rooms();
	ek_log_mix(9);
	ek_ex = export_create(ek_db, &cfg, &err);
	cr_assert_not_null(ek_ex);
	cr_assert_lt(export_run_once(ek_ex), 0);
	cr_assert_lt(export_run_once(ek_ex), 0);
	cr_assert_eq(ek_checkpoint(), 1);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.lag_events, 9);
	/* The events are from 2023: the oldest is years old. */
	cr_assert_gt(st.lag_s, 86400);
	cr_assert_eq(st.consecutive_failures, 2);
	cr_assert_neq(st.last_err, 0);
	cr_assert_neq(st.last_err_text[0], '\0');
	cr_assert_eq(st.files_written, 0);

	fix();
	ek_export_expect(9, bad_dir, 1, 9, false);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.lag_events, 0);
	cr_assert_eq(st.lag_s, 0);
	cr_assert_eq(st.consecutive_failures, 0);
}

static char blocker[400], bad[450];

static void
fix_blocker(void)
{
	cr_assert_eq(unlink(blocker), 0);
	cr_assert_eq(mkdir(blocker, 0755), 0);
	cr_assert_eq(mkdir(bad, 0755), 0);
}

Test(export, output_dir_under_a_file_then_fixed)
{
	FILE *f;

	snprintf(blocker, sizeof(blocker), "%s/blocker", ek_root);
	snprintf(bad, sizeof(bad), "%s/out", blocker);
	f = fopen(blocker, "w");
	fclose(f);
	fault_then_fix(bad, fix_blocker);
}

static void
fix_file_as_dir(void)
{
	cr_assert_eq(unlink(bad), 0);
	cr_assert_eq(mkdir(bad, 0755), 0);
}

Test(export, output_dir_is_a_file_then_fixed)
{
	FILE *f;

	snprintf(bad, sizeof(bad), "%s/notadir", ek_root);
	f = fopen(bad, "w");
	fclose(f);
	fault_then_fix(bad, fix_file_as_dir);
}

static void
fix_missing(void)
{
	cr_assert_eq(mkdir(bad, 0755), 0);
}

Test(export, output_dir_missing_then_created)
{
	snprintf(bad, sizeof(bad), "%s/later", ek_root);
	fault_then_fix(bad, fix_missing);
}

Test(export, output_dir_full_then_grown)
{
	struct export_status st;
	static char big[3000];

	if (unshare(CLONE_NEWNS) == -1 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", ek_out, "tmpfs", 0, "size=64k") == -1)
		cr_skip_test("cannot mount a small tmpfs here: %s", strerror(errno));
	ek_make_rooms();
	memset(big, 'x', sizeof(big) - 1);
	for (int i = 0; i < 60; i++)
		ek_log_text(WAL_EV_CHAT, i % EK_NROOMS, i % 3, big);
	ek_flush_events();
	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), -ENOSPC);
	cr_assert_eq(ek_checkpoint(), 1);
	cr_assert_eq(ek_count_entries(ek_out, ".tmp-"), 0, "the partial temp file is removed");
	cr_assert_eq(ek_count_entries(ek_out, "parley_"), 0);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.last_err, -ENOSPC);
	cr_assert_eq(st.lag_events, 60);

	cr_assert_eq(mount("tmpfs", ek_out, "tmpfs", MS_REMOUNT, "size=16m"), 0);
	ek_export_expect(60, ek_out, 1, 60, false);
	umount2(ek_out, MNT_DETACH);
}

/* ---- attachments ---- */

Test(export, attachment_is_copied_before_the_xml_that_names_it)
{
	static const char att[] = "0988239a-bb66-4616-90a4-b07771a2097c.txt";
	char adir[400], src[700], dst[700], buf[4096], xml[200];
	const struct inotify_event *ev;
	int ifd, wout, watt, order = 0, att_at = 0, xml_at = 0;
	char *a, *b;
	size_t alen, blen;
	ssize_t n;

	ek_make_rooms();
	ek_log_text(WAL_EV_JOIN, 0, 0, "");
	ek_log_upload(0, 0, att, 5000);
	ek_log_text(WAL_EV_FILEDOWNLOAD, 0, 1, att);
	ek_flush_events();
	snprintf(adir, sizeof(adir), "%s/Attachment", ek_out);
	cr_assert_eq(mkdir(adir, 0755), 0);
	ifd = inotify_init1(IN_NONBLOCK);
	cr_assert_geq(ifd, 0);
	wout = inotify_add_watch(ifd, ek_out, IN_MOVED_TO);
	watt = inotify_add_watch(ifd, adir, IN_MOVED_TO);
	cr_assert(wout >= 0 && watt >= 0);

	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), 3);
	ek_file_name(xml, sizeof(xml), 1, 3, NULL);
	n = read(ifd, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	for (char *q = buf; q < buf + n; q += sizeof(*ev) + ev->len) {
		ev = (const struct inotify_event *)(void *)q;
		order++;
		if (ev->wd == watt && strcmp(ev->name, att) == 0)
			att_at = order;
		if (ev->wd == wout && strcmp(ev->name, xml) == 0)
			xml_at = order;
	}
	close(ifd);
	cr_assert(att_at > 0 && xml_at > 0 && att_at < xml_at, "attachment %d, xml %d", att_at,
		  xml_at);
	snprintf(src, sizeof(src), "%s/%s/%s", ek_files, ek_rooms[0].id, att);
	snprintf(dst, sizeof(dst), "%s/%s", adir, att);
	a = ek_slurp(src, &alen);
	b = ek_slurp(dst, &blen);
	cr_assert(alen == 5000 && alen == blen && memcmp(a, b, alen) == 0);
	free(a);
	free(b);
	cr_assert_eq(ek_count_entries(adir, ".tmp-"), 0);
}

Test(export, attachment_already_there_is_not_copied_again)
{
	struct export_status st;
	struct ek_saved s;

	ek_make_rooms();
	ek_log_mix(12);	/* two FILEUPLOADs */
	ek_save_log(&s);
	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), 12);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.attachments_copied, 2);
	ek_restore_log(&s);
	cr_assert_eq(export_run_once(ek_ex), 12);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.attachments_copied, 2);
}

Test(export, missing_attachment_source_stops_the_export)
{
	static const char att[] = "11111111-2222-4333-8444-555555555555.pdf";
	struct export_status st;
	char src[700], hidden[700];

	ek_make_rooms();
	ek_log_text(WAL_EV_CHAT, 0, 0, "before");
	ek_log_upload(0, 1, att, 1234);
	ek_log_text(WAL_EV_CHAT, 0, 0, "after");
	ek_flush_events();
	snprintf(src, sizeof(src), "%s/%s/%s", ek_files, ek_rooms[0].id, att);
	snprintf(hidden, sizeof(hidden), "%s/hidden", ek_root);
	cr_assert_eq(rename(src, hidden), 0);

	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), -ENOENT);
	cr_assert_eq(ek_checkpoint(), 1);
	cr_assert_eq(ek_count_entries(ek_out, "parley_"), 0, "no XML names a file the archive lacks");
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.last_err, -ENOENT);
	cr_assert_eq(st.last_err_seq, 2);
	cr_assert_not_null(strstr(st.last_err_text, att), "%s", st.last_err_text);
	cr_assert_eq(st.lag_events, 3);

	cr_assert_eq(rename(hidden, src), 0);
	ek_export_expect(3, ek_out, 1, 3, false);
}

Test(export, upload_name_with_a_slash_is_refused)
{
	struct export_status st;

	ek_make_rooms();
	ek_log_text(WAL_EV_FILEUPLOAD, 0, 0, "../../etc/passwd");
	ek_flush_events();
	ek_new_exporter(false, NULL, 0);
	cr_assert_eq(export_run_once(ek_ex), -EINVAL);
	cr_assert_eq(ek_checkpoint(), 1);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert_eq(st.last_err_seq, 1);
}

/* ---- the thread ---- */

static void
wait_for(bool (*cond)(const struct export_status *), const char *what)
{
	struct export_status st;

	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(export_status(ek_ex, &st), 0);
		if (cond(&st))
			return;
		usleep(10000);
	}
	cr_assert_fail("timed out waiting for %s", what);
}

static bool
failed_thrice(const struct export_status *st)
{
	return st->consecutive_failures >= 3;
}

static bool
caught_up(const struct export_status *st)
{
	return st->lag_events == 0 && st->consecutive_failures == 0;
}

Test(export, thread_retries_with_backoff_and_recovers)
{
	struct export_config cfg = {
		.files_dir = ek_files, .interval_s = 1, .retry_min_ms = 10, .retry_max_ms = 50,
	};
	struct export_status st;
	struct ek_parsed p;
	int err;

	snprintf(bad, sizeof(bad), "%s/later", ek_root);
	cfg.output_dir = bad;
	ek_make_rooms();
	ek_log_mix(15);
	ek_ex = export_create(ek_db, &cfg, &err);
	cr_assert_not_null(ek_ex);
	cr_assert_eq(export_start(ek_ex), 0);
	cr_assert_eq(export_start(ek_ex), -EALREADY);
	wait_for(failed_thrice, "three failures");
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert(st.running);
	cr_assert_eq(st.lag_events, 15);
	cr_assert_eq(st.last_err, -ENOENT);
	cr_assert_eq(mkdir(bad, 0755), 0);
	wait_for(caught_up, "the export after the fix");
	ek_log_mix(5);	/* the next interval picks these up */
	wait_for(caught_up, "the next interval");
	export_stop(ek_ex);
	cr_assert_eq(export_status(ek_ex, &st), 0);
	cr_assert(!st.running);
	ek_parse_dir(&p, bad);
	ek_assert_exactly_once(&p, 1, 20, false);
	ek_parsed_free(&p);
}

/* ---- with the storage thread as the writer ---- */

#define POSTS	3000

struct runner {
	struct export	*e;
	atomic_bool	stop;
	long		exported;
	long		err;		/* first failure; asserted on the main thread */
};

static void *
export_loop(void *arg)
{
	struct runner *r = arg;

	while (!atomic_load(&r->stop)) {
		long n = export_run_once(r->e);

		if (n < 0 && r->err == 0)
			r->err = n;
		if (n > 0)
			r->exported += n;
	}
	return NULL;
}

Test(export, posts_through_the_storage_thread_exactly_once_in_room_order, .timeout = 300)
{
	struct commit_config cc = { .nproducers = 1, .depth = 256 };
	struct commit_producer *prod;
	static char bodies[POSTS][32];
	struct runner run = { 0 };
	uint64_t last_id[EK_NROOMS] = { 0 }, count[EK_NROOMS] = { 0 };
	unsigned sent = 0, done = 0;
	struct commit *c;
	struct ek_parsed p;
	pthread_t th;
	int err;

	ek_make_rooms();
	c = commit_create(ek_db, &cc, &err);
	cr_assert_not_null(c, "commit_create %d", err);
	prod = commit_producer(c, 0);
	ek_new_exporter(false, NULL, 500);
	run.e = ek_ex;
	cr_assert_eq(pthread_create(&th, NULL, export_loop, &run), 0);
	while (done < POSTS) {
		struct commit_req *q, *got[64];
		unsigned n;

		while (sent < POSTS && (q = commit_req_get(prod)) != NULL) {
			int room = (int)(sent % EK_NROOMS);

			snprintf(bodies[sent], sizeof(bodies[sent]), "post %u", sent);
			q->op = sent % 10 == 9 ? COMMIT_EVENT : COMMIT_POST;
			q->ev = WAL_EV_JOIN;
			q->logged = true;
			memcpy(q->room, ek_rooms[room].raw, 16);
			q->room_seq = q->op == COMMIT_POST ? ++ek_room_seq[room] : 0;
			q->room_uri = ek_rooms[room].uri;
			q->room_uri_len = strlen(ek_rooms[room].uri);
			q->user = ek_users[0];
			q->user_len = strlen(ek_users[0]);
			q->body = q->content = bodies[sent];
			q->body_len = q->content_len = q->op == COMMIT_POST ? strlen(bodies[sent]) : 0;
			if (commit_submit(prod, &q, 1) != 1) {
				commit_req_put(prod, q);
				break;
			}
			sent++;
		}
		n = commit_poll(prod, got, 64);
		for (unsigned k = 0; k < n; k++) {
			cr_assert_eq(got[k]->status, 0);
			commit_req_put(prod, got[k]);
		}
		done += n;
		if (n == 0)
			sched_yield();
	}
	commit_stop(c);
	atomic_store(&run.stop, true);
	pthread_join(th, NULL);
	cr_assert_eq(run.err, 0);
	run.exported += export_run_once(ek_ex);
	cr_assert_eq(run.exported, POSTS);
	commit_destroy(c);

	/* Every post once, and per room in room order across all the files. */
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.n, POSTS);
	for (size_t i = 0; i < p.n; i++) {
		int room = -1;

		for (int r = 0; r < EK_NROOMS; r++)
			if (strcmp(p.m[i].room_uri, ek_rooms[r].uri) == 0)
				room = r;
		cr_assert_geq(room, 0);
		if (strcmp(p.m[i].type, "CHAT") != 0)
			continue;
		cr_assert_eq((uint64_t)p.m[i].id, last_id[room] + 1, "room %d: %lld after %llu",
			     room, p.m[i].id, (unsigned long long)last_id[room]);
		last_id[room] = (uint64_t)p.m[i].id;
		count[room]++;
	}
	for (int r = 0; r < EK_NROOMS; r++)
		cr_assert_eq(count[r], ek_room_seq[r]);
	ek_parsed_free(&p);
}

/* export_config.room_mark (a node array's per-room export marks): once per
 * room with CHAT events in a batch, with its highest room seq, after the
 * files are in place and before the checkpoint moves; a failure keeps the
 * checkpoint and the retry writes the same files. */
static struct { uint8_t room[WAL_ROOM_RAW]; uint64_t last; } marks[16];
static unsigned nmarks, mark_calls;
static int mark_rc;

static int
record_mark(void *arg, const uint8_t *room, uint64_t last)
{
	unsigned k;

	cr_assert_eq(arg, &nmarks);
	mark_calls++;
	for (k = 0; k < nmarks && memcmp(marks[k].room, room, WAL_ROOM_RAW) != 0; k++)
		;
	cr_assert_lt(k, 16);
	if (mark_rc != 0)
		return mark_rc;
	if (k == nmarks)
		memcpy(marks[nmarks++].room, room, WAL_ROOM_RAW);
	cr_assert_gt(last, marks[k].last, "a mark moved back");
	marks[k].last = last;
	return 0;
}

Test(export, room_marks_after_the_files_before_the_checkpoint)
{
	struct export_config cfg = {
		.output_dir = ek_out, .files_dir = ek_files, .max_events_per_file = 12,
		.retry_min_ms = 20, .retry_max_ms = 100, .interval_s = 1,
		.room_mark = record_mark, .room_mark_arg = &nmarks,
	};
	struct ek_parsed p;
	int err = 0;

	ek_make_rooms();
	ek_log_mix(30);
	ek_ex = export_create(ek_db, &cfg, &err);
	cr_assert_not_null(ek_ex, "export_create: %d", err);
	mark_rc = -EIO;
	cr_assert_eq(export_run_once(ek_ex), -EIO);
	cr_assert_eq(ek_checkpoint(), 1, "the checkpoint moved past an unrecorded mark");
	cr_assert_gt(mark_calls, 0);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 1, "the file comes before its marks");
	ek_parsed_free(&p);

	mark_rc = 0;
	mark_calls = 0;
	cr_assert_eq(export_run_once(ek_ex), 30);
	cr_assert_eq(ek_checkpoint(), 31);
	ek_parse_dir(&p, ek_out);
	cr_assert_eq(p.nfiles, 3);	/* 12 + 12 + 6, the first written again */
	ek_assert_exactly_once(&p, 1, 30, false);
	ek_parsed_free(&p);
	for (int r = 0; r < EK_NROOMS; r++) {
		unsigned k;

		for (k = 0; k < nmarks && memcmp(marks[k].room, ek_rooms[r].raw, WAL_ROOM_RAW); k++)
			;
		if (ek_room_seq[r] == 0) {
			cr_assert_eq(k, nmarks, "room %d has no CHAT but a mark", r);
			continue;
		}
		cr_assert_lt(k, nmarks, "room %d: no mark", r);
		cr_assert_eq(marks[k].last, ek_room_seq[r], "room %d: mark %llu, last CHAT %llu", r,
			     (unsigned long long)marks[k].last, (unsigned long long)ek_room_seq[r]);
	}
	/* At most one call per room and batch. */
	cr_assert_leq(mark_calls, 3 * EK_NROOMS);
}
