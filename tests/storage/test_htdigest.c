/* htdigest: loading (incl. files written by Apache's htdigest(1)), errors
 * with line numbers, lookups, refcounts, and atomic rewrites. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "storage/htdigest.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	strcpy(dir, "/tmp/parley-htdigest-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users", dir);
}

static void
teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

TestSuite(htdigest, .init = setup, .fini = teardown);

static void
write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static char *
slurp(const char *p)
{
	static char buf[8192];
	FILE *f = fopen(p, "r");
	size_t n;

	cr_assert_not_null(f, "%s", p);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* HA1 computed independently of the code under test. */
static void
ha1(const EVP_MD *md, const char *user, const char *realm, const char *pw, char *out)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n, i;
	char in[512];

	snprintf(in, sizeof(in), "%s:%s:%s", user, realm, pw);
	cr_assert_eq(EVP_Digest(in, strlen(in), d, &n, md, NULL), 1);
	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static struct htdigest *
load(bool missing_ok)
{
	char err[512] = "";
	struct htdigest *h = htdigest_load(path, missing_ok, err, sizeof(err));

	cr_assert_not_null(h, "%s", err);
	return h;
}

static const char *
get(struct htdigest *h, const char *user, const char *realm, enum digest_alg alg)
{
	return htdigest_ha1(h, user, strlen(user), realm, strlen(realm), alg);
}

#define MD5_A	"939e7578ed9e3c518a452acee763bce9"
#define SHA_A	"7987c5f1d0e7a2b1b5e2c5b3f0b1f8f7a9c5d0e2b1f3a4c5d6e7f8091a2b3c4d"

Test(htdigest, loads_lines_comments_blanks)
{
	struct htdigest *h;

	write_file(path,
		   "# users\n"
		   "\n"
		   "alice@example.com:Parley:" MD5_A "\n"
		   "alice@example.com:Parley:" SHA_A "\n"
		   "   \n"
		   "bob.smith@example.com:Parley:0123456789ABCDEF0123456789abcdef\r\n"
		   "bob.smith@example.com:Other:00000000000000000000000000000000\n"
		   "carol@example.com:Parley:" MD5_A);		/* no final newline */
	h = load(false);
	cr_assert_eq(htdigest_count(h), 3);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_MD5), MD5_A);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_SHA256), SHA_A);
	/* Stored lower case, whatever the file had. */
	cr_assert_str_eq(get(h, "bob.smith@example.com", "Parley", DIGEST_MD5),
			 "0123456789abcdef0123456789abcdef");
	cr_assert_null(get(h, "bob.smith@example.com", "Parley", DIGEST_SHA256));
	cr_assert_str_eq(get(h, "bob.smith@example.com", "Other", DIGEST_MD5),
			 "00000000000000000000000000000000");
	cr_assert_str_eq(get(h, "carol@example.com", "Parley", DIGEST_MD5), MD5_A);
	cr_assert_null(get(h, "dave@example.com", "Parley", DIGEST_MD5));
	cr_assert_null(get(h, "carol@example.com", "Other", DIGEST_MD5));
	cr_assert(htdigest_has_user(h, "carol@example.com", 17, "Parley", 6));
	cr_assert_not(htdigest_has_user(h, "carol@example.co", 16, "Parley", 6));
	cr_assert_not(htdigest_has_user(h, "carol@example.com", 17, "Parle", 5));
	htdigest_put(h);
}

Test(htdigest, user_case_insensitive_realm_case_sensitive)
{
	struct htdigest *h;
	/* Lookups take views: no NUL after the name. */
	const char view[] = "ALICE@Example.COM;tag";

	write_file(path, "Alice@example.com:Parley:" MD5_A "\n");
	h = load(false);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_MD5), MD5_A);
	cr_assert_str_eq(htdigest_ha1(h, view, 17, "Parley!", 6, DIGEST_MD5), MD5_A);
	cr_assert_null(get(h, "alice@example.com", "parley", DIGEST_MD5));
	cr_assert_null(get(h, "alice@example.com", "PARLEY", DIGEST_MD5));
	htdigest_put(h);
}

Test(htdigest, many_users_binary_search)
{
	char text[64 * 1024], user[64], *p = text;
	struct htdigest *h;
	int i;

	for (i = 999; i >= 0; i--)
		p += sprintf(p, "u%d@example.com:R%d:%032d\n", i, i % 3, i);
	write_file(path, text);
	h = load(false);
	cr_assert_eq(htdigest_count(h), 1000);
	for (i = 0; i < 1000; i++) {
		char realm[8], want[40];

		snprintf(user, sizeof(user), "U%d@EXAMPLE.com", i);
		snprintf(realm, sizeof(realm), "R%d", i % 3);
		snprintf(want, sizeof(want), "%032d", i);
		cr_assert_str_eq(get(h, user, realm, DIGEST_MD5), want);
		snprintf(realm, sizeof(realm), "R%d", (i + 1) % 3);
		cr_assert_null(get(h, user, realm, DIGEST_MD5));
	}
	htdigest_put(h);
}

Test(htdigest, missing_file)
{
	char err[512] = "";
	struct htdigest *h;

	h = htdigest_load(path, true, err, sizeof(err));
	cr_assert_not_null(h, "%s", err);
	cr_assert_eq(htdigest_count(h), 0);
	cr_assert_null(get(h, "a", "b", DIGEST_MD5));
	cr_assert_not(htdigest_has_user(h, "a", 1, "b", 1));
	htdigest_put(h);

	h = htdigest_load(path, false, err, sizeof(err));
	cr_assert_null(h);
	cr_assert_not_null(strstr(err, path), "%s", err);
	cr_assert_not_null(strstr(err, strerror(ENOENT)), "%s", err);

	/* Only a missing file is forgiven, not an unreadable one. */
	h = htdigest_load(dir, true, err, sizeof(err));
	cr_assert_null(h);
	cr_assert_not_null(strstr(err, dir), "%s", err);
}

Test(htdigest, empty_file)
{
	struct htdigest *h;

	write_file(path, "");
	h = load(false);
	cr_assert_eq(htdigest_count(h), 0);
	htdigest_put(h);
}

static void
expect_bad(const char *text, unsigned line, const char *reason)
{
	char err[512] = "", want[256];
	struct htdigest *h;

	write_file(path, text);
	h = htdigest_load(path, false, err, sizeof(err));
	cr_assert_null(h, "accepted: %s", text);
	snprintf(want, sizeof(want), "%s:%u: ", path, line);
	cr_assert_eq(strncmp(err, want, strlen(want)), 0, "got \"%s\", want \"%s...\"", err, want);
	cr_assert_not_null(strstr(err, reason), "%s", err);
}

Test(htdigest, bad_lines_name_file_and_line)
{
	const char *ok = "# c\nalice@example.com:Parley:" MD5_A "\n";
	char text[512];

	snprintf(text, sizeof(text), "%s%s", ok, "bob@example.com:Parley\n");
	expect_bad(text, 3, "user:realm:HA1");
	snprintf(text, sizeof(text), "%s%s", ok, "bob@example.com\n");
	expect_bad(text, 3, "user:realm:HA1");
	snprintf(text, sizeof(text), "%s\n%s", ok, "bob@example.com:Parley:1234\n");
	expect_bad(text, 4, "32 (MD5) or 64 (SHA-256)");
	snprintf(text, sizeof(text), "%s%s", ok,
		 "bob@example.com:Parley:zz9e7578ed9e3c518a452acee763bce9\n");
	expect_bad(text, 3, "not hexadecimal");
	snprintf(text, sizeof(text), "%s%s", ok, ":Parley:" MD5_A "\n");
	expect_bad(text, 3, "empty user");
	snprintf(text, sizeof(text), "%s%s", ok, "bob::" MD5_A "\n");
	expect_bad(text, 3, "empty realm");
	/* A ':' inside the realm or HA1 field shifts the HA1. */
	snprintf(text, sizeof(text), "%s%s", ok, "bob:Par:ley:" MD5_A "\n");
	expect_bad(text, 3, "hex");
	expect_bad("bob@example.com:Parley:" MD5_A "\nBOB@example.com:Parley:" MD5_A "\n", 2,
		   "duplicate");
}

Test(htdigest, nul_byte_is_an_error)
{
	static const char text[] = "a:b:" MD5_A "\nc:d\0e:" MD5_A "\n";
	char err[512] = "";
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_neq(fd, -1);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	cr_assert_null(htdigest_load(path, false, err, sizeof(err)));
	cr_assert_not_null(strstr(err, ":2: "), "%s", err);
}

Test(htdigest, refcount)
{
	struct htdigest *h;

	write_file(path, "a@x:R:" MD5_A "\n");
	h = load(false);
	htdigest_get(h);
	htdigest_put(h);
	cr_assert_str_eq(get(h, "a@x", "R", DIGEST_MD5), MD5_A);	/* still alive */
	htdigest_put(h);
	htdigest_put(NULL);
}

static unsigned
count_dir_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(htdigest, set_user_add_change_remove)
{
	char md5[65] = "", sha[65] = "", md5b[65] = "", shab[65] = "";
	struct htdigest *h;
	struct stat st;

	/* Add to a file that does not exist yet. */
	cr_assert_eq(htdigest_set_user(path, "alice@example.com", "Parley", "pw1"), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	ha1(EVP_md5(), "alice@example.com", "Parley", "pw1", md5);
	ha1(EVP_sha256(), "alice@example.com", "Parley", "pw1", sha);
	h = load(false);
	cr_assert_eq(htdigest_count(h), 1);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_MD5), md5);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_SHA256), sha);
	htdigest_put(h);

	/* Other lines stay as they are, in place. */
	{
		char text[1024];

		snprintf(text, sizeof(text), "# keep me\n%s\nzed@example.com:Parley:" MD5_A "\n",
			 slurp(path));
		/* slurp's text ends in "\n": the blank line above is kept too. */
		write_file(path, text);
		chmod(path, 0640);
	}
	cr_assert_eq(htdigest_set_user(path, "ALICE@example.com", "Parley", "pw2"), 0);
	ha1(EVP_md5(), "ALICE@example.com", "Parley", "pw2", md5b);
	ha1(EVP_sha256(), "ALICE@example.com", "Parley", "pw2", shab);
	{
		char want[1024];

		snprintf(want, sizeof(want),
			 "# keep me\nALICE@example.com:Parley:%s\nALICE@example.com:Parley:%s\n"
			 "\nzed@example.com:Parley:" MD5_A "\n", md5b, shab);
		cr_assert_str_eq(slurp(path), want);
	}
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640);	/* mode kept */
	h = load(false);
	cr_assert_eq(htdigest_count(h), 2);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_MD5), md5b);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_SHA256), shab);
	htdigest_put(h);

	/* Same user, another realm: a separate entry. */
	cr_assert_eq(htdigest_set_user(path, "alice@example.com", "Other", "pw3"), 0);
	h = load(false);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_MD5), md5b);
	cr_assert_not_null(get(h, "alice@example.com", "Other", DIGEST_SHA256));
	cr_assert_eq(htdigest_count(h), 2);
	htdigest_put(h);

	/* Remove. */
	cr_assert_eq(htdigest_set_user(path, "alice@EXAMPLE.com", "Parley", NULL), 0);
	cr_assert_eq(htdigest_set_user(path, "alice@example.com", "Parley", NULL), -ENOENT);
	cr_assert_eq(htdigest_set_user(path, "nobody@example.com", "Parley", NULL), -ENOENT);
	h = load(false);
	cr_assert_not(htdigest_has_user(h, "alice@example.com", 17, "Parley", 6));
	cr_assert(htdigest_has_user(h, "alice@example.com", 17, "Other", 5));
	cr_assert(htdigest_has_user(h, "zed@example.com", 15, "Parley", 6));
	htdigest_put(h);
	cr_assert_not_null(strstr(slurp(path), "# keep me\n"));

	/* No temporary files left behind. */
	cr_assert_eq(count_dir_entries(), 1);
}

Test(htdigest, set_user_remove_from_missing_file)
{
	cr_assert_eq(htdigest_set_user(path, "a@x", "R", NULL), -ENOENT);
	cr_assert_eq(access(path, F_OK), -1);
	cr_assert_eq(count_dir_entries(), 0);
}

Test(htdigest, set_user_rejects_bad_fields)
{
	cr_assert_eq(htdigest_set_user(path, "a:b", "R", "pw"), -EINVAL);
	cr_assert_eq(htdigest_set_user(path, "a", "R:S", "pw"), -EINVAL);
	cr_assert_eq(htdigest_set_user(path, "", "R", "pw"), -EINVAL);
	cr_assert_eq(htdigest_set_user(path, "a\nb", "R", "pw"), -EINVAL);
	cr_assert_eq(htdigest_set_user(path, "#a", "R", "pw"), -EINVAL);
	cr_assert_eq(htdigest_set_user(path, "a", "R", "p\nw"), -EINVAL);
	cr_assert_eq(count_dir_entries(), 0);
}

Test(htdigest, set_user_appends_after_unterminated_last_line)
{
	char want[512], md5[65] = "", sha[65] = "";

	write_file(path, "zed@x:R:" MD5_A);
	cr_assert_eq(htdigest_set_user(path, "a@x", "R", "pw"), 0);
	ha1(EVP_md5(), "a@x", "R", "pw", md5);
	ha1(EVP_sha256(), "a@x", "R", "pw", sha);
	snprintf(want, sizeof(want), "zed@x:R:" MD5_A "\na@x:R:%s\na@x:R:%s\n", md5, sha);
	cr_assert_str_eq(slurp(path), want);
}

/* Runs htdigest(1) on a pseudo-terminal (it reads the password from the
 * terminal), answering each password prompt with <pw>. 0 on success. */
static int
run_htdigest(bool create, const char *file, const char *realm, const char *user,
	     const char *pw)
{
	char out[4096];
	size_t olen = 0;
	unsigned prompts = 0, answered = 0;
	int master, status;
	pid_t pid;

	pid = forkpty(&master, NULL, NULL, NULL);
	if (pid == -1)
		return -1;
	if (pid == 0) {
		if (create)
			execlp("htdigest", "htdigest", "-c", file, realm, user, (char *)NULL);
		else
			execlp("htdigest", "htdigest", file, realm, user, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		struct pollfd pfd = { .fd = master, .events = POLLIN };
		ssize_t n;
		char *p;

		if (poll(&pfd, 1, 10000) <= 0)
			break;				/* hung: give up */
		n = read(master, out + olen, sizeof(out) - 1 - olen);
		if (n <= 0)
			break;				/* EIO once the child is gone */
		olen += (size_t)n;
		out[olen] = '\0';
		prompts = 0;
		for (p = out; (p = strstr(p, "password:")) != NULL; p++)
			prompts++;
		while (answered < prompts) {
			if (write(master, pw, strlen(pw)) == -1 || write(master, "\n", 1) == -1)
				break;
			answered++;
		}
		if (olen >= sizeof(out) - 1)
			olen = 0;
	}
	kill(pid, SIGKILL);		/* no-op when it has exited */
	waitpid(pid, &status, 0);
	close(master);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

Test(htdigest, compatible_with_apache_htdigest, .timeout = 60)
{
	char md5[65] = "", md5b[65] = "", line[256];
	struct htdigest *h;

	if (access("/usr/bin/htdigest", X_OK) != 0)
		cr_skip_test("htdigest(1) not installed (apache2-utils)");
	cr_assert_eq(run_htdigest(true, path, "Parley", "alice@example.com", "s3cret pw"), 0);
	ha1(EVP_md5(), "alice@example.com", "Parley", "s3cret pw", md5);
	snprintf(line, sizeof(line), "alice@example.com:Parley:%s\n", md5);
	cr_assert_str_eq(slurp(path), line);

	/* What htdigest wrote, we load. */
	h = load(false);
	cr_assert_str_eq(get(h, "Alice@Example.com", "Parley", DIGEST_MD5), md5);
	cr_assert_null(get(h, "alice@example.com", "Parley", DIGEST_SHA256));
	htdigest_put(h);

	/* What we wrote, htdigest keeps while adding another user. */
	cr_assert_eq(htdigest_set_user(path, "bob.b@example.com", "Parley", "pw"), 0);
	cr_assert_eq(run_htdigest(false, path, "Parley", "carol@example.com", "x"), 0);
	ha1(EVP_md5(), "carol@example.com", "Parley", "x", md5b);
	h = load(false);
	cr_assert_eq(htdigest_count(h), 3);
	cr_assert_str_eq(get(h, "alice@example.com", "Parley", DIGEST_MD5), md5);
	cr_assert_not_null(get(h, "bob.b@example.com", "Parley", DIGEST_SHA256));
	cr_assert_str_eq(get(h, "carol@example.com", "Parley", DIGEST_MD5), md5b);
	htdigest_put(h);

	/* htdigest changing a password rewrites only the MD5 line; a SHA-256
	 * line we wrote for the same user stays (and is now stale). */
	cr_assert_eq(run_htdigest(false, path, "Parley", "bob.b@example.com", "new"), 0);
	ha1(EVP_md5(), "bob.b@example.com", "Parley", "new", md5b);
	h = load(false);
	cr_assert_str_eq(get(h, "bob.b@example.com", "Parley", DIGEST_MD5), md5b);
	htdigest_put(h);
}

/* A user's lines made elsewhere (another node of an array) written as they
 * are: the same file as htdigest_set_user would write; lines that are not
 * that user's htdigest lines are refused and change nothing. */
Test(htdigest, set_user_lines)
{
	char *lines = NULL, want[1024];
	struct htdigest *h;

	write_file(path, "# keep\nzed@example.com:Parley:" MD5_A "\n");
	cr_assert_eq(htdigest_user_lines("bob@example.com", "Parley", "pw", &lines), 0);
	cr_assert_eq(htdigest_set_user_lines(path, "bob@example.com", "Parley", lines), 0);
	snprintf(want, sizeof(want), "# keep\nzed@example.com:Parley:" MD5_A "\n%s", lines);
	cr_assert_str_eq(slurp(path), want);
	h = load(false);
	cr_assert(htdigest_has_user(h, "bob@example.com", 15, "Parley", 6));
	cr_assert_eq(htdigest_count(h), 2);
	htdigest_put(h);
	/* Again, in place, whatever the case of the name asked for. */
	cr_assert_eq(htdigest_set_user_lines(path, "BOB@example.com", "Parley", lines), 0);
	cr_assert_str_eq(slurp(path), want);
	free(lines);

	cr_assert_eq(htdigest_set_user_lines(path, "bob@example.com", "Parley",
					     "eve@example.com:Parley:" MD5_A "\n"), -EINVAL);
	cr_assert_eq(htdigest_set_user_lines(path, "bob@example.com", "Parley",
					     "bob@example.com:Other:" MD5_A "\n"), -EINVAL);
	cr_assert_eq(htdigest_set_user_lines(path, "bob@example.com", "Parley",
					     "bob@example.com:Parley:xyz\n"), -EINVAL);
	cr_assert_eq(htdigest_set_user_lines(path, "bob@example.com", "Parley",
					     "bob@example.com:Parley:" MD5_A), -EINVAL);
	cr_assert_eq(htdigest_set_user_lines(path, "bob@example.com", "Parley", ""), -EINVAL);
	cr_assert_str_eq(slurp(path), want);

	cr_assert_eq(htdigest_set_user_lines(path, "bob@example.com", "Parley", NULL), 0);
	cr_assert_eq(htdigest_set_user_lines(path, "bob@example.com", "Parley", NULL), -ENOENT);
	cr_assert_str_eq(slurp(path), "# keep\nzed@example.com:Parley:" MD5_A "\n");
	cr_assert_eq(htdigest_user_lines("a:b", "Parley", "pw", &lines), -EINVAL);
	cr_assert_eq(count_dir_entries(), 1);
}
